//! Entry points for the fuzz targets in `fuzz/` (see `docs/fuzzing.md`).
//!
//! Each function runs one parser of outside input the way the server runs it: from the
//! text a browser, an API client or an operator sends, through our checks, to the value
//! the server goes on with or the refusal it answers with. They are public only because
//! the fuzz crate, a workspace of its own, must reach them; the server never calls them.
//!
//! Each panics when an invariant of ours breaks (a refusal without a message, a time
//! that does not survive its own formatting), since a panic is what a fuzzer reports.
//! The tests at the end replay what the fuzzers found, and a sample of their corpora,
//! through these same functions on every `cargo test`.

use std::time::Duration;

use axum::Json;
use axum::response::IntoResponse;
use cau_config::Config;
use cau_sfu::PeerId;

use crate::access::{AccessError, Tokens};
use crate::api::ApiError;
use crate::api::wire::{LinkRequest, MeetingRequest, NewSite, SiteChange};
use crate::meeting::{InvitedSite, MAX_LAYOUT, Meeting, MeetingPlan};
use crate::model::{FloorMode, MeetingId, Millis, Role, SiteCode, format_time, parse_time};
use crate::protocol::{ClientMessage, DisplayName, RoomName, parse_client_message};

/// What an entry point made of its input: accepted, or refused with the code (or for
/// a meeting action, the words) the sender would see.
pub use cau_sfu::fuzzing::Outcome;

/// The key the join-token target signs and verifies with. Fixed, so that a fuzzer can
/// build tokens that pass the signature check and reach the claims behind it.
pub const TOKEN_KEY: &str = "fuzzing-only-key-never-used-by-a-server";

/// The `signaling_message` target: a text frame, as [`client_frame`] reads it.
pub fn signaling_message(data: &[u8]) -> Option<Outcome> {
    // The WebSocket layer hands signaling only text frames, which are UTF-8.
    std::str::from_utf8(data).ok().map(client_frame)
}

/// The `join_token` target. The first byte chooses how the rest is read: as a token
/// (even), or as the JSON claims of a token signed with [`TOKEN_KEY`] (odd), so that the
/// claims behind a good signature are fuzzed too.
pub fn join_token_input(data: &[u8]) -> Option<Outcome> {
    let (&mode, rest) = data.split_first()?;
    if mode % 2 == 0 {
        return std::str::from_utf8(rest).ok().map(join_token);
    }
    let claims: serde_json::Value = serde_json::from_slice(rest).ok()?;
    let key = jsonwebtoken::EncodingKey::from_secret(TOKEN_KEY.as_bytes());
    let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    let token = jsonwebtoken::encode(&header, &claims, &key).ok()?;
    Some(join_token(&token))
}

/// The `api_body` target: the first byte chooses the [`ApiInput`], the rest is its bytes.
pub fn api_body(data: &[u8]) -> Option<Outcome> {
    let (&which, bytes) = data.split_first()?;
    let input = ApiInput::ALL[usize::from(which) % ApiInput::ALL.len()];
    Some(api_input(input, bytes))
}

/// The `config_file` target: the first byte chooses a `cau.toml` ([`config_file`]), a
/// site directory ([`sites_file`]) or a `CAU_*` variable written `NAME=value`
/// ([`config_variable`]); the rest is its text.
pub fn config_input(data: &[u8]) -> Option<Outcome> {
    let (&which, rest) = data.split_first()?;
    let text = std::str::from_utf8(rest).ok()?;
    Some(match which % 3 {
        0 => config_file(text),
        1 => sites_file(text),
        _ => {
            let (name, value) = text.split_once('=').unwrap_or((text, ""));
            config_variable(&format!("CAU_{}", name.to_uppercase()), value)
        }
    })
}

/// One text frame on the signaling WebSocket, or the first message on the monitoring
/// dashboard's socket: parsed as `session.rs` and `monitor/http.rs` parse them, then
/// checked as the session checks what it acts on. A meeting action is carried out on a
/// running meeting's core, by the chair and by a participant.
pub fn client_frame(text: &str) -> Outcome {
    // The dashboard reads its first frame with a parser of its own; an `auth` message
    // is refused there only by the admin token's check, which is a hash comparison.
    let _ = crate::monitor::http::auth_token(text);
    let message = match parse_client_message(text) {
        Ok(message) => message,
        Err(error) => return refused_frame(error),
    };
    if let Some(action) = crate::session::meeting_action(&message) {
        let mut meeting = running_meeting();
        let mut refusal = None;
        for by in ["cao-bang", "ha-quang"] {
            if let Err(error) = meeting.act(by, action.clone(), START + 1) {
                assert!(
                    !error.to_string().is_empty(),
                    "a meeting refusal without words"
                );
                refusal.get_or_insert(format!("meeting: {error}"));
            }
            while meeting.poll_output().is_some() {}
            meeting.handle_timeout(START + 60_000);
            while meeting.poll_output().is_some() {}
        }
        let snapshot = meeting.snapshot();
        assert!(
            snapshot.layout.len() <= MAX_LAYOUT,
            "layout of {}",
            snapshot.layout.len()
        );
        for site in snapshot.layout.iter().chain(&snapshot.queue) {
            assert!(
                snapshot.sites.iter().any(|s| &s.code == site),
                "{site:?} is shown but not invited"
            );
        }
        return match refusal {
            Some(refusal) => Outcome::Refused(refusal),
            None => Outcome::Accepted,
        };
    }
    let checked = match &message {
        ClientMessage::Join {
            room: Some(room),
            name: Some(name),
            token: None,
        } => RoomName::parse(room)
            .and_then(|room| Ok((room, DisplayName::parse(name)?)))
            .map(|(room, name)| {
                assert!(!room.as_str().is_empty() && !name.as_str().is_empty());
            }),
        ClientMessage::Join {
            token: Some(token), ..
        }
        | ClientMessage::StartLineTest { token } => {
            let outcome = join_token(token);
            return outcome;
        }
        ClientMessage::ClientStats { stats } => {
            if stats.is_valid() {
                Ok(())
            } else {
                return Outcome::Refused("bad_json".into());
            }
        }
        _ => Ok(()),
    };
    match checked {
        Ok(()) => Outcome::Accepted,
        Err(error) => refused_frame(error),
    }
}

/// A join token as a browser presents it (`join`, `start_line_test`, a meeting's
/// `.ics`): its signature checked against [`TOKEN_KEY`] and its claims read, as
/// [`Tokens::authenticate`] does before it asks the store.
pub fn join_token(token: &str) -> Outcome {
    let tokens = Tokens::with_key(TOKEN_KEY, Duration::from_secs(3600), "http://x".into());
    match tokens.decode(token) {
        Ok(claims) => {
            // What a token names is checked before use: it parses again to itself.
            assert_eq!(
                MeetingId::parse(claims.meeting.as_str()),
                Some(claims.meeting)
            );
            assert_eq!(
                SiteCode::parse(claims.site.as_str()).as_ref(),
                Ok(&claims.site)
            );
            assert_eq!(Role::from_name(claims.role.as_str()), Some(claims.role));
            Outcome::Accepted
        }
        Err(error) => {
            assert!(
                matches!(error, AccessError::Malformed | AccessError::Forged),
                "a store-free check refused with {error:?}"
            );
            Outcome::Refused(error.code().to_owned())
        }
    }
}

/// Which input of the REST API [`api_input`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiInput {
    /// The body of `POST /api/sites`.
    NewSite,
    /// The body of `PUT /api/sites/{code}`.
    SiteChange,
    /// The body of `POST /api/meetings` and `PUT /api/meetings/{id}`.
    Meeting,
    /// The body of `POST /api/meetings/{id}/links`.
    Link,
    /// A path segment: a meeting id or a site code.
    PathSegment,
    /// A time in a query (`from`, `to`).
    Time,
}

impl ApiInput {
    pub const ALL: [ApiInput; 6] = [
        ApiInput::NewSite,
        ApiInput::SiteChange,
        ApiInput::Meeting,
        ApiInput::Link,
        ApiInput::PathSegment,
        ApiInput::Time,
    ];
}

/// One input of the REST API: a body read by axum's `Json` extractor and turned into a
/// checked model value by `api/wire.rs`, or a path segment or query time, with every
/// refusal rendered as the JSON error response the client would get.
pub fn api_input(input: ApiInput, bytes: &[u8]) -> Outcome {
    let checked: Result<(), ApiError> = match input {
        ApiInput::NewSite => Json::<NewSite>::from_bytes(bytes)
            .map_err(ApiError::from)
            .and_then(|Json(body)| Ok(body.into_site()?))
            .map(|site| assert!(SiteCode::parse(site.code.as_str()).is_ok())),
        ApiInput::SiteChange => {
            let code = SiteCode::parse("quang-lam").expect("a valid code");
            Json::<SiteChange>::from_bytes(bytes)
                .map_err(ApiError::from)
                .and_then(|Json(body)| Ok(body.into_site(code)?))
                .map(|_| ())
        }
        ApiInput::Meeting => Json::<MeetingRequest>::from_bytes(bytes)
            .map_err(ApiError::from)
            .and_then(|Json(body)| Ok(body.into_draft()?))
            .map(|draft| {
                assert!(draft.starts_at() < draft.ends_at());
                for time in [draft.starts_at(), draft.ends_at()] {
                    assert_time_round_trips(time);
                }
            }),
        ApiInput::Link => Json::<LinkRequest>::from_bytes(bytes)
            .map_err(ApiError::from)
            .and_then(|Json(body)| Ok(SiteCode::parse(&body.site)?))
            .map(|_| ()),
        ApiInput::PathSegment => {
            let text = String::from_utf8_lossy(bytes);
            let meeting = MeetingId::parse(&text).map(|id| assert_eq!(id.as_str(), text));
            let site = SiteCode::parse(&text).map(|code| assert_eq!(code.as_str(), text));
            match (meeting, site) {
                (None, Err(error)) => Err(error.into()),
                _ => Ok(()),
            }
        }
        ApiInput::Time => {
            let text = String::from_utf8_lossy(bytes);
            parse_time("from", &text)
                .map(assert_time_round_trips)
                .map_err(ApiError::from)
        }
    };
    match checked {
        Ok(()) => Outcome::Accepted,
        Err(error) => {
            let response = error.into_response();
            assert!(
                response.status().is_client_error(),
                "{input:?} answered {}",
                response.status()
            );
            // The code is read back from what the client would receive.
            let code = response_code(response);
            Outcome::Refused(code)
        }
    }
}

/// A user's `cau.toml`, laid over the defaults as `cau serve --config` does, and every
/// value the server derives from it.
pub fn config_file(text: &str) -> Outcome {
    config_layers(Some(text), std::iter::empty())
}

/// A `CAU_*` environment variable's value, for the option `name`.
pub fn config_variable(name: &str, value: &str) -> Outcome {
    config_layers(None, [(name.to_owned(), value.to_owned())])
}

/// A site directory in the format of `config/sites.toml`.
pub fn sites_file(text: &str) -> Outcome {
    match crate::directory::parse(text) {
        Ok(sites) => {
            for site in &sites {
                assert!(SiteCode::parse(site.code.as_str()).is_ok());
            }
            Outcome::Accepted
        }
        Err(error) => {
            assert!(!error.to_string().is_empty());
            Outcome::Refused("invalid_directory".into())
        }
    }
}

const START: Millis = 1_800_000_000_000;

/// A meeting with its chair and one participant connected and in, and a third site
/// invited but absent.
fn running_meeting() -> Meeting {
    let site = |code: &str, role| InvitedSite {
        code: code.into(),
        name: code.to_uppercase(),
        role,
    };
    let mut meeting = Meeting::new(
        MeetingPlan {
            mode: FloorMode::Chair,
            starts_at: START,
            late_after: 300_000,
            reconnect_grace: 45_000,
            sites: vec![
                site("cao-bang", Role::Chair),
                site("ha-quang", Role::Participant),
                site("tra-linh", Role::Participant),
            ],
            resume: Default::default(),
        },
        START,
    );
    // Both sites are invited, so connecting them cannot fail.
    let _ = meeting.connect("cao-bang", PeerId(1), START);
    let _ = meeting.act("cao-bang", crate::meeting::Action::Open, START);
    let _ = meeting.connect("ha-quang", PeerId(2), START);
    while meeting.poll_output().is_some() {}
    meeting
}

fn refused_frame(error: crate::protocol::ProtocolError) -> Outcome {
    assert!(!error.message.is_empty(), "a refusal without a message");
    let reply = serde_json::to_string(&error.to_message()).expect("an error message serializes");
    let value: serde_json::Value = serde_json::from_str(&reply).expect("our reply is JSON");
    assert_eq!(value["type"], "error");
    Outcome::Refused(value["code"].as_str().unwrap_or_default().to_owned())
}

fn assert_time_round_trips(time: Millis) {
    let text = format_time(time);
    assert_eq!(parse_time("t", &text), Ok(time), "{time} formats as {text}");
}

fn response_code(response: axum::response::Response) -> String {
    // The body of an error response is a buffer already: polling it once completes it.
    let bytes = futures_now(axum::body::to_bytes(response.into_body(), usize::MAX))
        .expect("an error body is in memory")
        .expect("an error body is in memory");
    let value: serde_json::Value = serde_json::from_slice(&bytes).expect("an error body is JSON");
    let code = value["code"].as_str().expect("an error body has a code");
    assert!(!value["message"].as_str().unwrap_or_default().is_empty());
    code.to_owned()
}

/// Polls a future once, for bodies that are already in memory.
fn futures_now<F: std::future::Future>(future: F) -> Option<F::Output> {
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    let mut future = std::pin::pin!(future);
    match future.as_mut().poll(&mut context) {
        std::task::Poll::Ready(output) => Some(output),
        std::task::Poll::Pending => None,
    }
}

fn config_layers(text: Option<&str>, env: impl IntoIterator<Item = (String, String)>) -> Outcome {
    match Config::from_layers(text.map(|text| ("cau.toml", text)), env) {
        Ok(config) => {
            // Every duration the server derives from the file, as it derives them.
            let _ = (
                config.media.peer_timeout(),
                config.media.keyframe_request_interval(),
                config.monitoring.stats_interval(),
                config.monitoring.sample_interval(),
                config.monitoring.raw_retention(),
                config.monitoring.rollup_retention(),
                config.monitoring.alert_after(),
                config.line_test.probe_phase(),
                config.line_test.download(),
                config.line_test.upload(),
                config.line_test.probe_interval(),
                config.meetings.join_before_start(),
                config.admin.token(),
            );
            Outcome::Accepted
        }
        Err(error) => {
            assert!(!error.to_string().is_empty());
            Outcome::Refused("invalid_config".into())
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use cau_sfu::fuzzing::replay_corpus;

    use super::*;

    fn corpus(target: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../fuzz/corpus")
            .join(target)
    }

    #[test]
    fn signaling_message_corpus_replays() {
        replay_corpus(&corpus("signaling_message"), signaling_message);
    }

    #[test]
    fn join_token_corpus_replays() {
        replay_corpus(&corpus("join_token"), join_token_input);
    }

    #[test]
    fn api_body_corpus_replays() {
        replay_corpus(&corpus("api_body"), api_body);
    }

    #[test]
    fn config_file_corpus_replays() {
        replay_corpus(&corpus("config_file"), config_input);
    }

    /// A crash input a fuzzer found, from `fuzz/regressions/<target>/<name>`.
    fn regression(target: &str, name: &str) -> Vec<u8> {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../fuzz/regressions")
            .join(target)
            .join(name);
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    #[test]
    fn api_body_regressions() {
        // A time whose offset moves it out of the four-digit years in UTC was accepted,
        // then written back as 1970-01-01.
        for name in ["time-past-year-9999-in-utc", "time-before-year-0-in-utc"] {
            assert_eq!(
                api_body(&regression("api_body", name)),
                Some(Outcome::Refused("invalid_time".into())),
                "{name}"
            );
        }
    }

    #[test]
    fn a_signed_token_with_good_claims_passes_the_store_free_check() {
        let claims = br#"{"meeting":"a1b2c3d4e5f6a7b8","site":"ha-quang","role":"participant","jti":"x","iat":0,"nbf":0,"exp":1}"#;
        let mut input = vec![1];
        input.extend_from_slice(claims);
        assert_eq!(join_token_input(&input), Some(Outcome::Accepted));
        let mut unsigned = vec![0];
        unsigned.extend_from_slice(b"eyJhbGciOiJub25lIn0.e30.");
        assert_eq!(
            join_token_input(&unsigned),
            Some(Outcome::Refused("invalid_token".into()))
        );
    }
}
