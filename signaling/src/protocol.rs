//! The signaling protocol's wire types, as `docs/signaling.md` specifies them.
//!
//! This is the one place that derives serde for signaling: every frame from a browser
//! is parsed here into a [`ClientMessage`] or refused with a [`ProtocolError`] carrying
//! the stable error code the client sees. Names and rooms become newtypes here, so the
//! rest of signaling never sees an unchecked string.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Every message type a client may send, as named on the wire.
const CLIENT_TYPES: &[&str] = &[
    "join",
    "offer",
    "answer",
    "candidate",
    "mute",
    "leave",
    "open_meeting",
    "admit",
    "request_floor",
    "cancel_floor_request",
    "grant_floor",
    "revoke_floor",
    "mute_site",
    "unmute_site",
    "set_layout",
    "mark_absent",
    "client_stats",
    "start_line_test",
    "video_sizes",
];

/// A parsed message from a client.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    /// An ad-hoc room (`room` and `name`) or a scheduled meeting (`token`).
    Join {
        #[serde(default)]
        room: Option<String>,
        #[serde(default)]
        name: Option<String>,
        #[serde(default)]
        token: Option<String>,
    },
    Offer {
        sdp: String,
        /// The mid of the offer's video line reserved for sharing a screen, if any.
        #[serde(default)]
        screen_mid: Option<String>,
    },
    Answer {
        sdp: String,
    },
    Candidate {
        candidate: String,
        #[serde(default)]
        sdp_mid: Option<String>,
    },
    Mute {
        kind: Kind,
        muted: bool,
    },
    Leave {},
    OpenMeeting {},
    Admit {
        site: String,
    },
    RequestFloor {},
    CancelFloorRequest {},
    GrantFloor {
        site: String,
    },
    RevokeFloor {},
    MuteSite {
        site: String,
    },
    UnmuteSite {
        site: String,
    },
    SetLayout {
        sites: Vec<String>,
    },
    MarkAbsent {
        site: String,
        reason: String,
    },
    /// What the browser's `getStats()` says of its line, every few seconds.
    ClientStats {
        stats: ClientStats,
    },
    /// Test this site's line with its join link's token, instead of joining.
    StartLineTest {
        token: String,
    },
    /// The heights at which the client shows the videos it receives, by the media
    /// line's mid; 0 for a video not shown. The server picks each video's layer by it.
    VideoSizes {
        sizes: Vec<VideoSize>,
    },
}

/// One received video's shown size, in `video_sizes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VideoSize {
    pub mid: String,
    /// In CSS pixels.
    pub height: u32,
}

/// `video_sizes` names at most this many videos: more than a meeting's sites.
pub const MAX_VIDEO_SIZES: usize = 128;

/// A summary of the browser's own `getStats()`, sent every few seconds over signaling.
/// Every figure is optional: browsers differ in what they report.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientStats {
    /// Video frames decoded, dropped and frozen, over every received video.
    #[serde(default)]
    pub frames_decoded: Option<f64>,
    #[serde(default)]
    pub frames_dropped: Option<f64>,
    #[serde(default)]
    pub freeze_count: Option<f64>,
    #[serde(default)]
    pub freeze_seconds: Option<f64>,
    /// Mean jitter-buffer delay of received audio, milliseconds.
    #[serde(default)]
    pub jitter_buffer_ms: Option<f64>,
    /// Share of received audio samples that were concealed (0..1).
    #[serde(default)]
    pub concealed_ratio: Option<f64>,
    /// Packets the browser counted lost on what it receives.
    #[serde(default)]
    pub packets_lost: Option<f64>,
    /// Round-trip time the browser measures, milliseconds.
    #[serde(default)]
    pub rtt_ms: Option<f64>,
    /// Its ICE connection state, and how many times it changed.
    #[serde(default)]
    pub ice_state: Option<String>,
    #[serde(default)]
    pub ice_state_changes: Option<f64>,
}

impl ClientStats {
    /// Whether every figure is a plausible number and the state a short word: the
    /// message comes from a browser and is hostile until checked.
    pub fn is_valid(&self) -> bool {
        let figures = [
            self.frames_decoded,
            self.frames_dropped,
            self.freeze_count,
            self.freeze_seconds,
            self.jitter_buffer_ms,
            self.concealed_ratio,
            self.packets_lost,
            self.rtt_ms,
            self.ice_state_changes,
        ];
        let numbers_ok = figures
            .iter()
            .flatten()
            .all(|v| v.is_finite() && *v >= 0.0 && *v < 1e12);
        let state_ok = self
            .ice_state
            .as_ref()
            .is_none_or(|s| s.len() <= 16 && s.chars().all(|c| c.is_ascii_lowercase()));
        numbers_ok && state_ok
    }
}

/// The media socket's line probe (`cau_sfu`'s `line_probe` module): ICE credentials that
/// the server answers checks for without a peer. A page whose line dropped makes an
/// RTCPeerConnection whose remote description names them and the server's UDP candidate;
/// when ICE connects, the line is back.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LineProbe {
    pub ufrag: String,
    pub pwd: String,
}

/// A message to a client.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    Joined {
        participant_id: String,
        room: String,
        participants: Vec<Participant>,
        /// What the page needs to tell, with ICE checks, when its line is back after a drop.
        line_probe: LineProbe,
    },
    Answer {
        sdp: String,
    },
    Offer {
        sdp: String,
        tracks: Vec<Track>,
    },
    ParticipantJoined {
        participant: Participant,
    },
    ParticipantLeft {
        participant_id: String,
        reason: LeaveReason,
    },
    TrackPublished {
        participant_id: String,
        kind: Kind,
    },
    TrackUnpublished {
        participant_id: String,
        kind: Kind,
    },
    Mute {
        participant_id: String,
        kind: Kind,
        muted: bool,
    },
    Left {},
    Lobby {
        meeting: MeetingRef,
        site: SiteRef,
        role: String,
    },
    MeetingState(MeetingState),
    /// The meeting's active speaker changed (a site code, or null for nobody).
    ActiveSpeaker {
        site: Option<String>,
    },
    /// The line test is admitted: offer now.
    LineTestStarted {
        meeting: MeetingRef,
        site: SiteRef,
        plan: LineTestPlanView,
    },
    /// The line test's verdict and figures; the server closes the socket after it.
    LineTestResult(LineTestResult),
    /// The server is stopping (to restart): it closes the socket next. The client keeps
    /// its seat by joining again, the first time after about `retry_after_ms`.
    ServerStopping {
        retry_after_ms: u64,
    },
    /// Whether some video this client should see is paused because its line cannot
    /// carry it (audio goes first): the client says so on screen.
    VideoPaused {
        paused: bool,
    },
    /// Which simulcast layers of one of its video tracks the client should encode; the
    /// others no one receives, and pausing them saves its uplink.
    PublishLayers {
        mid: String,
        layers: Vec<PublishLayer>,
    },
    Error {
        code: ErrorCode,
        message: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PublishLayer {
    /// The layer's rid, or null for a track sent without simulcast.
    pub rid: Option<String>,
    pub active: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Audio,
    Video,
    /// A shared screen: a video line of its own.
    Screen,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MeetingRef {
    pub id: String,
    pub title: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SiteRef {
    pub code: String,
    pub name: String,
}

/// The `meeting_state` message: see docs/signaling.md.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MeetingState {
    pub opened: bool,
    pub mode: String,
    pub floor: Option<String>,
    pub queue: Vec<String>,
    pub layout: Vec<String>,
    pub active_speaker: Option<String>,
    pub sites: Vec<MeetingSite>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MeetingSite {
    pub code: String,
    pub name: String,
    pub role: String,
    pub connected: bool,
    /// Its connection was lost and it holds its seat while it reconnects.
    pub reconnecting: bool,
    pub in_lobby: bool,
    pub muted_by_chair: bool,
    pub attendance: AttendanceState,
    /// The site's latest line test from the day before the start on, if any; only in
    /// what the chair and observers receive.
    pub line_test: Option<LineTestResult>,
}

/// The phases of a line test, for the site's progress bar.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LineTestPlanView {
    pub probe_ms: u64,
    pub download_ms: u64,
    pub upload_ms: u64,
    pub download_kbps: u64,
    pub upload_kbps: u64,
}

/// A line test's verdict (`ready`, `marginal`, `not_ready`), why, and its figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LineTestResult {
    pub verdict: String,
    /// When it ended, in milliseconds since the Unix epoch.
    pub at: i64,
    /// Worst first; empty when ready.
    pub reasons: Vec<LineTestReason>,
    pub figures: LineTestFigures,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LineTestReason {
    /// Stable: `no_connection`, `incomplete`, `no_reply`, `download_low`, `upload_low`,
    /// `rtt_high`, `loss_high`, `jitter_high`, `no_audio`, `no_video`.
    pub code: String,
    /// `marginal` or `not_ready`.
    pub severity: String,
    /// The figure measured (kbit/s, ms or percent, by the code).
    pub measured: Option<f64>,
    /// For throughput what a meeting needs; otherwise the threshold crossed.
    pub limit: Option<f64>,
    /// In English, with the figures.
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LineTestFigures {
    pub rtt_ms: Option<f64>,
    pub jitter_ms: Option<f64>,
    pub loss_percent: Option<f64>,
    pub download_kbps: f64,
    pub upload_kbps: f64,
    pub download_needed_kbps: u64,
    pub upload_needed_kbps: u64,
    /// Whether the microphone's and the camera's RTP reached the server.
    pub audio: bool,
    pub video: bool,
    pub duration_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttendanceState {
    pub status: String,
    pub joined_at: Option<i64>,
    pub left_at: Option<i64>,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Participant {
    pub id: String,
    pub name: String,
    /// The site code, for participants who joined a meeting by token.
    pub site: Option<String>,
    pub audio_muted: bool,
    pub video_muted: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Track {
    pub mid: String,
    pub participant_id: String,
    pub kind: Kind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LeaveReason {
    /// The participant said `leave`.
    Left,
    /// Its socket closed or went quiet without a `leave`.
    Disconnected,
    /// Its media path went silent.
    Timeout,
}

/// The stable error codes of `docs/signaling.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadJson,
    UnknownType,
    BinaryNotSupported,
    MessageTooLarge,
    NotJoined,
    AlreadyJoined,
    InvalidRoom,
    InvalidName,
    RoomFull,
    ServerFull,
    BadSdp,
    BadCandidate,
    NegotiationRefused,
    MediaFailed,
    InvalidToken,
    TokenExpired,
    TokenNotYetValid,
    TokenRevoked,
    MeetingCancelled,
    Forbidden,
    NotConnected,
    FloorOpen,
    BadLayout,
    BadReason,
    Replaced,
    LineTestBusy,
    /// Too many join attempts from the client's address (`[limits]`).
    RateLimited,
    /// Too many messages on this connection (`[limits]`); the message was dropped.
    TooManyMessages,
    Internal,
}

/// A refusal to send back to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ProtocolError {
    pub code: ErrorCode,
    pub message: String,
}

impl ProtocolError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ProtocolError {
        ProtocolError {
            code,
            message: message.into(),
        }
    }

    pub fn to_message(&self) -> ServerMessage {
        ServerMessage::Error {
            code: self.code,
            message: self.message.clone(),
        }
    }
}

/// Parses one text frame.
pub fn parse_client_message(text: &str) -> Result<ClientMessage, ProtocolError> {
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| ProtocolError::new(ErrorCode::BadJson, format!("not valid JSON: {e}")))?;
    let Some(kind) = value
        .get("type")
        .and_then(|t| t.as_str())
        .map(str::to_owned)
    else {
        return Err(ProtocolError::new(
            ErrorCode::BadJson,
            "a message must be a JSON object with a string field `type`",
        ));
    };
    if !CLIENT_TYPES.contains(&kind.as_str()) {
        // Echo at most a short, printable prefix of what the client sent.
        let shown: String = kind.chars().filter(|c| !c.is_control()).take(40).collect();
        return Err(ProtocolError::new(
            ErrorCode::UnknownType,
            format!("unknown message type `{shown}`"),
        ));
    }
    let message = serde_json::from_value(value).map_err(|e| {
        ProtocolError::new(ErrorCode::BadJson, format!("bad `{kind}` message: {e}"))
    })?;
    if let ClientMessage::Offer { sdp, .. } = &message {
        check_offer_size(sdp)?;
    }
    Ok(message)
}

/// The most an offer may hold: bytes, lines, media sections and candidates. str0m
/// parses an offer on the media thread every room shares, at some 45 µs a KiB and up
/// to 8 µs a line (a release build on the project's machine, `docs/security.md`, threat
/// 24), and adds each candidate at a cost that grows with their number; a 64 KiB offer
/// held the thread up to 15 ms, and a refused offer may be sent again. A browser's
/// offer of microphone, camera in three layers and an empty screen line is some 10 KiB
/// in 300 lines, 3 media sections and a few candidates, so these limits leave it room
/// (another codec, another interface) and cap the worst offer at a few milliseconds.
pub const MAX_OFFER_BYTES: usize = 32 * 1024;
/// See [`MAX_OFFER_BYTES`].
pub const MAX_OFFER_LINES: usize = 600;
/// See [`MAX_OFFER_BYTES`]. The web client offers 3, the line test 3.
pub const MAX_OFFER_MEDIA: usize = 16;
/// See [`MAX_OFFER_BYTES`]; the same as the SFU allows trickled.
pub const MAX_OFFER_CANDIDATES: usize = 32;

/// Refuses an offer beyond [`MAX_OFFER_BYTES`], [`MAX_OFFER_LINES`], [`MAX_OFFER_MEDIA`]
/// or [`MAX_OFFER_CANDIDATES`] before it costs the media thread a parse: one pass over
/// the bytes, here on the session's task.
fn check_offer_size(sdp: &str) -> Result<(), ProtocolError> {
    let refuse = |what: String| {
        Err(ProtocolError::new(
            ErrorCode::BadSdp,
            format!("offer refused: {what}"),
        ))
    };
    if sdp.len() > MAX_OFFER_BYTES {
        return refuse(format!("an offer may have at most {MAX_OFFER_BYTES} bytes"));
    }
    let (mut lines, mut media, mut candidates) = (0, 0, 0);
    for line in sdp.lines() {
        lines += 1;
        let line = line.trim_start();
        media += usize::from(line.starts_with("m="));
        candidates += usize::from(line.starts_with("a=candidate:"));
    }
    if lines > MAX_OFFER_LINES {
        return refuse(format!("an offer may have at most {MAX_OFFER_LINES} lines"));
    }
    if media > MAX_OFFER_MEDIA {
        return refuse(format!(
            "an offer may have at most {MAX_OFFER_MEDIA} media sections"
        ));
    }
    if candidates > MAX_OFFER_CANDIDATES {
        return refuse(format!(
            "an offer may have at most {MAX_OFFER_CANDIDATES} candidates"
        ));
    }
    Ok(())
}

/// A room name as the protocol allows it: 1 to 64 of `A-Z a-z 0-9 - _ .`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RoomName(String);

impl RoomName {
    pub fn parse(raw: &str) -> Result<RoomName, ProtocolError> {
        let valid = (1..=64).contains(&raw.len())
            && raw
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !valid {
            return Err(ProtocolError::new(
                ErrorCode::InvalidRoom,
                "a room name has 1 to 64 characters among A-Z, a-z, 0-9, '-', '_' and '.'",
            ));
        }
        Ok(RoomName(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RoomName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A display name: 1 to 64 characters once trimmed, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayName(String);

impl DisplayName {
    pub fn parse(raw: &str) -> Result<DisplayName, ProtocolError> {
        let trimmed = raw.trim();
        let count = trimmed.chars().count();
        if count == 0 || count > 64 || trimmed.chars().any(char::is_control) {
            return Err(ProtocolError::new(
                ErrorCode::InvalidName,
                "a display name has 1 to 64 characters and no control characters",
            ));
        }
        Ok(DisplayName(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: Result<ClientMessage, ErrorCode>) {
        let actual = parse_client_message(input).map_err(|e| e.code);
        assert_eq!(actual, expected, "parsing {input:?}");
    }

    #[test]
    fn parses_every_message_and_refuses_the_rest() {
        use ClientMessage::*;
        check(
            r#"{"type":"join","room":"r1","name":"Xã Quảng Lâm"}"#,
            Ok(Join {
                room: Some("r1".into()),
                name: Some("Xã Quảng Lâm".into()),
                token: None,
            }),
        );
        check(
            r#"{"type":"offer","sdp":"v=0"}"#,
            Ok(Offer {
                sdp: "v=0".into(),
                screen_mid: None,
            }),
        );
        check(
            r#"{"type":"answer","sdp":"v=0"}"#,
            Ok(Answer { sdp: "v=0".into() }),
        );
        check(
            r#"{"type":"candidate","candidate":"candidate:1 1 udp 1 127.0.0.1 5 typ host"}"#,
            Ok(Candidate {
                candidate: "candidate:1 1 udp 1 127.0.0.1 5 typ host".into(),
                sdp_mid: None,
            }),
        );
        check(
            r#"{"type":"mute","kind":"audio","muted":true}"#,
            Ok(Mute {
                kind: Kind::Audio,
                muted: true,
            }),
        );
        check(r#"{"type":"leave"}"#, Ok(Leave {}));
        check(
            r#"{"type":"join","token":"abc"}"#,
            Ok(Join {
                room: None,
                name: None,
                token: Some("abc".into()),
            }),
        );
        check(
            r#"{"type":"set_layout","sites":["ha-quang","tra-linh"]}"#,
            Ok(SetLayout {
                sites: vec!["ha-quang".into(), "tra-linh".into()],
            }),
        );
        check(
            r#"{"type":"grant_floor","site":"ha-quang"}"#,
            Ok(GrantFloor {
                site: "ha-quang".into(),
            }),
        );
        check(r#"{"type":"request_floor"}"#, Ok(RequestFloor {}));
        check(
            r#"{"type":"start_line_test","token":"abc"}"#,
            Ok(StartLineTest {
                token: "abc".into(),
            }),
        );
        check(r#"{"type":"start_line_test"}"#, Err(ErrorCode::BadJson));
        check(
            r#"{"type":"mark_absent","site":"x"}"#,
            Err(ErrorCode::BadJson),
        );
        check(
            r#"{"type":"set_layout","sites":"all"}"#,
            Err(ErrorCode::BadJson),
        );
        check(r#"{"type":"leave","extra":1}"#, Ok(Leave {}));

        check("", Err(ErrorCode::BadJson));
        check("{", Err(ErrorCode::BadJson));
        check("[1,2]", Err(ErrorCode::BadJson));
        check(r#"{"kind":"join"}"#, Err(ErrorCode::BadJson));
        check(r#"{"type":7}"#, Err(ErrorCode::BadJson));
        check(r#"{"type":"dance"}"#, Err(ErrorCode::UnknownType));
        check(
            r#"{"type":"join","room":5,"name":"x"}"#,
            Err(ErrorCode::BadJson),
        );
        check(r#"{"type":"offer"}"#, Err(ErrorCode::BadJson));
        check(
            r#"{"type":"mute","kind":"smell","muted":true}"#,
            Err(ErrorCode::BadJson),
        );
    }

    /// An offer of `lines` lines (or more, if the rest needs more): a session header,
    /// `media` media sections, `candidates` candidates, then attribute lines, one of
    /// which becomes a long padding line when that makes the whole `bytes` long.
    fn offer(bytes: usize, lines: usize, media: usize, candidates: usize) -> String {
        let mut sdp = vec!["v=0".to_owned(), "s=-".to_owned()];
        for m in 0..media {
            sdp.push("m=audio 9 UDP/TLS/RTP/SAVPF 111".to_owned());
            sdp.push(format!("a=mid:{m}"));
        }
        for c in 0..candidates {
            sdp.push(format!("a=candidate:{c} 1 udp 1 10.0.0.{c} 5000 typ host"));
        }
        while sdp.len() < lines {
            sdp.push("a=rtcp-mux".to_owned());
        }
        let mut text = sdp.join("\r\n") + "\r\n";
        if text.len() < bytes {
            // The padding line takes the place of one attribute line.
            text = text.replacen("a=rtcp-mux\r\n", "", 1);
            let pad = "x".repeat(bytes - text.len() - "a=x-pad:\r\n".len());
            text = text.replacen("s=-\r\n", &format!("s=-\r\na=x-pad:{pad}\r\n"), 1);
        }
        text
    }

    #[test]
    fn offers_beyond_the_limits_are_refused_before_the_sfu() {
        let check_offer = |sdp: String, accepted: bool| {
            let frame = serde_json::json!({"type": "offer", "sdp": sdp}).to_string();
            let result = parse_client_message(&frame).map_err(|e| e.code);
            match accepted {
                true => assert!(result.is_ok(), "{result:?}"),
                false => assert_eq!(result.err(), Some(ErrorCode::BadSdp)),
            }
        };
        let (bytes, lines) = (MAX_OFFER_BYTES, MAX_OFFER_LINES);
        let (media, candidates) = (MAX_OFFER_MEDIA, MAX_OFFER_CANDIDATES);
        check_offer(offer(bytes, lines, media, candidates), true);
        check_offer(offer(bytes + 1, lines, media, candidates), false);
        check_offer(offer(0, lines + 1, 1, 0), false);
        check_offer(offer(0, 0, media + 1, 0), false);
        check_offer(offer(0, 0, 1, candidates + 1), false);
        assert_eq!(offer(bytes, lines, media, candidates).len(), bytes);
        assert_eq!(
            offer(bytes, lines, media, candidates).lines().count(),
            lines
        );
        // Answers are bounded by the server's own offer, which grows with the room.
        let answer = serde_json::json!({"type": "answer", "sdp": offer(bytes + 1, 0, 1, 0)});
        assert!(parse_client_message(&answer.to_string()).is_ok());
    }

    #[test]
    fn room_and_display_names() {
        assert!(RoomName::parse("giao-ban.2026_11").is_ok());
        assert!(RoomName::parse("").is_err());
        assert!(RoomName::parse(&"a".repeat(65)).is_err());
        assert!(RoomName::parse("a b").is_err());
        assert!(RoomName::parse("phòng").is_err());
        assert!(RoomName::parse("../etc").is_err());
        assert_eq!(
            DisplayName::parse("  UBND xã Hà Quảng ").unwrap().as_str(),
            "UBND xã Hà Quảng"
        );
        assert!(DisplayName::parse("   ").is_err());
        assert!(DisplayName::parse("a\u{0}b").is_err());
        assert!(DisplayName::parse(&"ư".repeat(64)).is_ok());
        assert!(DisplayName::parse(&"ư".repeat(65)).is_err());
    }

    #[test]
    fn server_messages_serialize_as_documented() {
        let message = ServerMessage::ParticipantLeft {
            participant_id: "7".into(),
            reason: LeaveReason::Timeout,
        };
        assert_eq!(
            serde_json::to_string(&message).unwrap(),
            r#"{"type":"participant_left","participant_id":"7","reason":"timeout"}"#
        );
        let error = ProtocolError::new(ErrorCode::RoomFull, "full").to_message();
        assert_eq!(
            serde_json::to_string(&error).unwrap(),
            r#"{"type":"error","code":"room_full","message":"full"}"#
        );
        assert_eq!(
            serde_json::to_string(&ServerMessage::Left {}).unwrap(),
            r#"{"type":"left"}"#
        );
        let speaker = ServerMessage::ActiveSpeaker {
            site: Some("ha-quang".into()),
        };
        assert_eq!(
            serde_json::to_string(&speaker).unwrap(),
            r#"{"type":"active_speaker","site":"ha-quang"}"#
        );
        assert_eq!(
            serde_json::to_string(&ServerMessage::ActiveSpeaker { site: None }).unwrap(),
            r#"{"type":"active_speaker","site":null}"#
        );
    }
}
