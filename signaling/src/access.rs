//! Who may do what: the admin token of the scheduling API, and the signed join tokens
//! that let one site into one meeting with one role.
//!
//! A join token is a JWT (HS256) with the meeting id, the site code, the role, an id
//! (`jti`) and the window it admits in (`nbf`, `exp`: from the start less
//! `meetings.join_before_start_minutes` until the end). The signing key is made once
//! and kept in the database. The store keeps every issued token's id, so a link can be
//! revoked: [`Tokens::verify`] accepts a token only if its signature holds, its id is on
//! record and not revoked, its meeting is not cancelled, and `now` is inside the
//! meeting's window as stored now. The window is read from the meeting rather than the
//! token, so a rescheduled meeting keeps its links; the `nbf` and `exp` a token carries
//! are those of the meeting when the link was shown.
//!
//! The admin token is compared by its SHA-256 hash; a generated one is stored only as
//! that hash.

use std::net::SocketAddr;
use std::time::Duration;

use cau_config::{Config, TlsMode};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::model::{Meeting, MeetingId, MeetingStatus, Millis, Role, Site, SiteCode};
use crate::store::{IssuedToken, Store, StoreError};

/// The name of the join-token signing key among the store's secrets.
const SIGNING_KEY_SECRET: &str = "join_token_hs256_key";
/// The name of the generated admin token's hash among the store's secrets.
const ADMIN_HASH_SECRET: &str = "admin_token_sha256";

/// Why a join token was refused. [`AccessError::code`] is the stable code the API and
/// the signaling protocol answer with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AccessError {
    /// Not a JWT of ours at all: bad encoding, wrong algorithm, missing claims.
    #[error("the join token is malformed")]
    Malformed,
    /// A well-formed token whose signature does not hold: not made by this server.
    #[error("the join token is not signed by this server")]
    Forged,
    /// The link was revoked or reissued, or its site deleted.
    #[error("this join link was revoked; ask the secretary for the current one")]
    Revoked,
    /// The meeting is over.
    #[error("the meeting ended at {}", crate::model::format_time(*.ended_at))]
    Expired { ended_at: Millis },
    /// The link admits its site only from some time before the start.
    #[error("this link admits its site from {}", crate::model::format_time(*.opens_at))]
    NotYetValid { opens_at: Millis },
    /// The meeting was cancelled.
    #[error("the meeting was cancelled")]
    MeetingCancelled,
    /// The database failed while checking.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl AccessError {
    /// The stable code, as `docs/signaling.md` lists it.
    pub fn code(&self) -> &'static str {
        match self {
            AccessError::Malformed | AccessError::Forged => "invalid_token",
            AccessError::Revoked => "token_revoked",
            AccessError::Expired { .. } => "token_expired",
            AccessError::NotYetValid { .. } => "token_not_yet_valid",
            AccessError::MeetingCancelled => "meeting_cancelled",
            AccessError::Store(_) => "internal",
        }
    }
}

/// What a verified join token admits: this site, into this meeting, with this role.
#[derive(Debug, Clone)]
pub struct JoinClaims {
    /// The token's id (`jti`), for logs and for revoking it.
    pub token_id: String,
    pub role: Role,
    /// The site, as the directory has it now.
    pub site: Site,
    /// The meeting, as stored now (scheduled, with its invited sites).
    pub meeting: Meeting,
}

/// Signs and verifies join tokens, and makes join links. One per server.
pub struct Tokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    join_before: Millis,
    public_url: String,
}

/// What a token signed by this server names, before the store is asked about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedClaims {
    pub meeting: MeetingId,
    pub site: SiteCode,
    pub role: Role,
    /// The token's id (`jti`), looked up in the store.
    pub token_id: String,
}

/// The claims of a join token, as serialized in the JWT.
#[derive(Serialize, Deserialize)]
struct WireClaims {
    meeting: String,
    site: String,
    role: String,
    jti: String,
    iat: i64,
    nbf: i64,
    exp: i64,
}

impl Tokens {
    /// Loads the signing key from the store, making and storing one on the first start.
    /// `public_url` is the base of join links, without a trailing slash.
    pub async fn load(
        store: &Store,
        join_before_start: Duration,
        public_url: String,
    ) -> Result<Tokens, StoreError> {
        let key = store
            .secret_or_insert(SIGNING_KEY_SECRET, &random_hex(32))
            .await?;
        Ok(Tokens::with_key(&key, join_before_start, public_url))
    }

    /// Signs and verifies with `key`, as [`Tokens::load`] does with the stored one.
    pub fn with_key(key: &str, join_before_start: Duration, public_url: String) -> Tokens {
        let mut validation = Validation::new(Algorithm::HS256);
        // Times are checked against the meeting as stored, with the caller's `now`;
        // the library would check the token's copy against the system clock.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        Tokens {
            encoding: EncodingKey::from_secret(key.as_bytes()),
            decoding: DecodingKey::from_secret(key.as_bytes()),
            validation,
            join_before: Millis::try_from(join_before_start.as_millis()).unwrap_or(Millis::MAX),
            public_url,
        }
    }

    /// The window in which the meeting's links admit: from `join_before_start` before
    /// its start until its end.
    pub fn window(&self, meeting: &Meeting) -> (Millis, Millis) {
        (
            meeting.starts_at.saturating_sub(self.join_before),
            meeting.ends_at,
        )
    }

    /// The JWT of an issued token, with the meeting's current window.
    pub fn sign(&self, token: &IssuedToken, meeting: &Meeting) -> String {
        let (opens, ends) = self.window(meeting);
        let claims = WireClaims {
            meeting: token.meeting.to_string(),
            site: token.site.to_string(),
            role: token.role.as_str().to_owned(),
            jti: token.id.clone(),
            iat: token.issued_at.div_euclid(1000),
            nbf: opens.div_euclid(1000),
            // Rounded up, so the token's own `exp` never falls before the end.
            exp: (ends + 999).div_euclid(1000),
        };
        // HS256 signing of a serializable struct with an HMAC key cannot fail: the
        // key has no format to get wrong and the claims are plain strings and numbers.
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 signing of plain claims succeeds")
    }

    /// The join link of a signed token: `<public_url>/m/<meeting>?token=<jwt>`.
    pub fn link(&self, meeting: &MeetingId, jwt: &str) -> String {
        // A JWT is base64url and dots: nothing in it needs escaping in a query.
        format!("{}/m/{}?token={}", self.public_url, meeting, jwt)
    }

    /// Checks a join token at `now`. See the module documentation for what is checked;
    /// each refusal has its own [`AccessError`].
    pub async fn verify(
        &self,
        store: &Store,
        token: &str,
        now: Millis,
    ) -> Result<JoinClaims, AccessError> {
        let issued = self.authenticate(store, token).await?;
        let meeting = match store.meeting(&issued.meeting).await {
            Ok(meeting) => meeting,
            Err(StoreError::MeetingNotFound(_)) => return Err(AccessError::Revoked),
            Err(error) => return Err(error.into()),
        };
        if meeting.status == MeetingStatus::Cancelled {
            return Err(AccessError::MeetingCancelled);
        }
        let (opens_at, ended_at) = self.window(&meeting);
        if now < opens_at {
            return Err(AccessError::NotYetValid { opens_at });
        }
        if now >= ended_at {
            return Err(AccessError::Expired { ended_at });
        }
        let Some(site) = store.site(&issued.site).await? else {
            return Err(AccessError::Revoked);
        };
        Ok(JoinClaims {
            token_id: issued.id,
            role: issued.role,
            site,
            meeting,
        })
    }

    /// Checks only that a token is ours and still on record, unrevoked: what the
    /// token is, regardless of when it is used and of its meeting's status.
    pub async fn authenticate(
        &self,
        store: &Store,
        token: &str,
    ) -> Result<IssuedToken, AccessError> {
        let claims = self.decode(token)?;
        // A signed token whose id is not on record predates the database (a restored
        // backup, say): it is as good as revoked.
        let Some(issued) = store.token(&claims.token_id).await? else {
            return Err(AccessError::Revoked);
        };
        if issued.meeting != claims.meeting
            || issued.site != claims.site
            || issued.role != claims.role
        {
            return Err(AccessError::Forged);
        }
        if issued.revoked_at.is_some() {
            return Err(AccessError::Revoked);
        }
        Ok(issued)
    }

    /// Checks a token's signature and reads its claims, without the store: the part of
    /// [`Tokens::authenticate`] that parses what the browser sent.
    pub fn decode(&self, token: &str) -> Result<SignedClaims, AccessError> {
        let claims = jsonwebtoken::decode::<WireClaims>(token, &self.decoding, &self.validation)
            .map_err(|error| match error.kind() {
                jsonwebtoken::errors::ErrorKind::InvalidSignature => AccessError::Forged,
                _ => AccessError::Malformed,
            })?
            .claims;
        Ok(SignedClaims {
            meeting: MeetingId::parse(&claims.meeting).ok_or(AccessError::Malformed)?,
            site: SiteCode::parse(&claims.site).map_err(|_| AccessError::Malformed)?,
            role: Role::from_name(&claims.role).ok_or(AccessError::Malformed)?,
            token_id: claims.jti,
        })
    }
}

/// The bearer token that opens the admin and scheduling API, kept as its hash.
pub struct AdminToken {
    hash: [u8; 32],
}

impl AdminToken {
    /// The configured token if there is one; otherwise the generated one whose hash the
    /// store keeps, generating it on the first start. A newly generated token is
    /// returned beside, to be shown once: it is kept nowhere else.
    pub async fn load(
        store: &Store,
        configured: Option<&str>,
    ) -> Result<(AdminToken, Option<String>), StoreError> {
        if let Some(token) = configured {
            return Ok((
                AdminToken {
                    hash: sha256(token),
                },
                None,
            ));
        }
        let fresh = random_hex(24);
        let fresh_hash = hex(&sha256(&fresh));
        let kept = store
            .secret_or_insert(ADMIN_HASH_SECRET, &fresh_hash)
            .await?;
        let hash = unhex32(&kept).ok_or_else(|| {
            StoreError::Corrupt(format!("secret {ADMIN_HASH_SECRET} is not a SHA-256 hash"))
        })?;
        let shown = (kept == fresh_hash).then_some(fresh);
        Ok((AdminToken { hash }, shown))
    }

    /// Whether `presented` is the admin token. Compares hashes without an early exit,
    /// so the time taken says nothing about how much of the token was right.
    pub fn verify(&self, presented: &str) -> bool {
        let presented = sha256(presented);
        presented
            .iter()
            .zip(self.hash.iter())
            .fold(0u8, |difference, (a, b)| difference | (a ^ b))
            == 0
    }
}

/// The base of join links: `auth.public_url`, or one made from the TLS mode and the
/// address the server listens on. An unspecified listening address (0.0.0.0) is
/// replaced by `media.advertised_ip`, the address browsers already have to reach.
pub fn public_url(config: &Config, http_addr: SocketAddr) -> String {
    if !config.auth.public_url.is_empty() {
        return config.auth.public_url.clone();
    }
    let scheme = match config.tls.mode {
        TlsMode::Off => "http",
        TlsMode::Files | TlsMode::SelfSigned => "https",
    };
    let ip = if http_addr.ip().is_unspecified() {
        config.media.advertised_ip
    } else {
        http_addr.ip()
    };
    format!("{scheme}://{}", SocketAddr::new(ip, http_addr.port()))
}

/// `bytes` random bytes from the operating system's generator, as lowercase hex.
pub fn random_hex(bytes: usize) -> String {
    let mut buffer = vec![0u8; bytes];
    // The system generator fails only if the OS has no entropy source at all, when
    // no secret this server could make would be safe: stopping is right.
    aws_lc_rs::rand::fill(&mut buffer).expect("the operating system provides randomness");
    hex(&buffer)
}

fn sha256(text: &str) -> [u8; 32] {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, text.as_bytes());
    let mut hash = [0u8; 32];
    hash.copy_from_slice(digest.as_ref());
    hash
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex32(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{DraftFields, FloorMode, MeetingDraft};
    use crate::store::tests::TempStore;

    const HOUR: Millis = 3_600_000;

    async fn meeting_with_tokens(temp: &TempStore) -> (Tokens, Meeting, Vec<IssuedToken>) {
        let store = &temp.store;
        let tokens = Tokens::load(store, Duration::from_secs(3600), "http://x".into())
            .await
            .unwrap();
        let draft = MeetingDraft::new(DraftFields {
            title: "Giao ban".into(),
            agenda: String::new(),
            starts_at: 10 * HOUR,
            ends_at: 12 * HOUR,
            chair: SiteCode::parse("cao-bang").unwrap(),
            sites: vec![SiteCode::parse("quang-lam").unwrap()],
            all_communes: false,
            floor_mode: FloorMode::Chair,
        })
        .unwrap();
        let id = store.create_meeting(&draft, 0).await.unwrap();
        let meeting = store.meeting(&id).await.unwrap();
        let issued = store.active_tokens(&id).await.unwrap();
        (tokens, meeting, issued)
    }

    #[tokio::test]
    async fn join_tokens_admit_only_inside_their_window() {
        let temp = TempStore::new().await;
        let (tokens, meeting, issued) = meeting_with_tokens(&temp).await;
        let jwt = tokens.sign(&issued[1], &meeting);
        let verify = |now| tokens.verify(&temp.store, &jwt, now);
        let code = |result: Result<JoinClaims, AccessError>| match result {
            Ok(claims) => claims.role.as_str(),
            Err(error) => error.code(),
        };
        assert_eq!(code(verify(9 * HOUR - 1).await), "token_not_yet_valid");
        assert_eq!(code(verify(9 * HOUR).await), "participant");
        assert_eq!(code(verify(12 * HOUR - 1).await), "participant");
        assert_eq!(code(verify(12 * HOUR).await), "token_expired");
        let mut forged = jwt.clone();
        forged.pop();
        forged.push(if jwt.ends_with('A') { 'B' } else { 'A' });
        assert_eq!(
            code(tokens.verify(&temp.store, &forged, 10 * HOUR).await),
            "invalid_token"
        );
        assert_eq!(
            code(tokens.verify(&temp.store, "abc", 10 * HOUR).await),
            "invalid_token"
        );
        temp.store
            .reissue(&meeting.id, &issued[1].site, 1)
            .await
            .unwrap();
        assert_eq!(code(verify(10 * HOUR).await), "token_revoked");
        temp.store.cancel_meeting(&meeting.id, 2).await.unwrap();
        let chair = tokens.sign(&issued[0], &meeting);
        assert_eq!(
            code(tokens.verify(&temp.store, &chair, 10 * HOUR).await),
            "meeting_cancelled"
        );
    }

    #[tokio::test]
    async fn admin_token_is_generated_once_and_kept_hashed() {
        let temp = TempStore::new().await;
        let (first, shown) = AdminToken::load(&temp.store, None).await.unwrap();
        let shown = shown.expect("the first start shows the new token");
        assert!(first.verify(&shown));
        assert!(!first.verify("wrong"));
        let (second, shown_again) = AdminToken::load(&temp.store, None).await.unwrap();
        assert_eq!(shown_again, None);
        assert!(second.verify(&shown));
        let stored = temp.store.secret(ADMIN_HASH_SECRET).await.unwrap().unwrap();
        assert!(!stored.contains(&shown));
        let (configured, _) = AdminToken::load(&temp.store, Some("configured-token-123"))
            .await
            .unwrap();
        assert!(configured.verify("configured-token-123"));
        assert!(!configured.verify(&shown));
    }
}
