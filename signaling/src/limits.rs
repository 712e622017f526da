//! Abuse limits at the server's edge, before a request or a message costs anything.
//!
//! Per client address: join attempts (`join` and `start_line_test` messages) and API
//! calls, each a token bucket (GCRA, from the `governor` crate) with the burst and the
//! steady rate of `[limits]`. Per signaling connection: messages a second. And, for every
//! response, the security headers of the pages, and for every WebSocket upgrade the
//! Origin check. `docs/security.md` says which threat each one answers.
//!
//! The address is the TCP peer's, never a header such as `X-Forwarded-For`, which any
//! client can write. Behind a reverse proxy every client would share the proxy's
//! address; Cầu serves browsers itself (it speaks HTTPS), so it trusts no proxy.

use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use cau_config::LimitsConfig;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::AppState;
use crate::api::ApiError;

/// The per-address buckets of the whole server.
pub(crate) struct AddressLimits {
    joins: DefaultKeyedRateLimiter<AddressKey>,
    api: DefaultKeyedRateLimiter<AddressKey>,
    clock: DefaultClock,
}

/// How long a refused client should wait before it tries again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RetryAfter(pub(crate) Duration);

/// A client address as the limits count it. An IPv6 host usually holds a whole /64 and
/// can pick any address in it, so the /64 is the unit there, as an IPv4 address is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct AddressKey(IpAddr);

impl AddressKey {
    fn of(address: IpAddr) -> AddressKey {
        match address {
            IpAddr::V4(v4) => AddressKey(IpAddr::V4(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                // A dual-stack socket shows IPv4 clients as ::ffff:a.b.c.d.
                Some(v4) => AddressKey(IpAddr::V4(v4)),
                None => {
                    let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                    AddressKey(IpAddr::V6(Ipv6Addr::from(prefix)))
                }
            },
        }
    }
}

impl AddressLimits {
    pub(crate) fn new(config: &LimitsConfig) -> AddressLimits {
        AddressLimits {
            joins: RateLimiter::keyed(per_minute(config.joins_per_minute, config.join_burst)),
            api: RateLimiter::keyed(per_minute(config.api_requests_per_minute, config.api_burst)),
            clock: DefaultClock::default(),
        }
    }

    /// Counts one join attempt from `address`.
    pub(crate) fn join(&self, address: IpAddr) -> Result<(), RetryAfter> {
        self.check(&self.joins, address)
    }

    /// Counts one API call from `address`.
    pub(crate) fn api_call(&self, address: IpAddr) -> Result<(), RetryAfter> {
        self.check(&self.api, address)
    }

    /// Forgets the addresses whose buckets are full again, so that the tables hold only
    /// the clients of the last minutes, however many addresses came and went.
    pub(crate) fn forget_idle(&self) {
        for limiter in [&self.joins, &self.api] {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }

    fn check(
        &self,
        limiter: &DefaultKeyedRateLimiter<AddressKey>,
        address: IpAddr,
    ) -> Result<(), RetryAfter> {
        limiter
            .check_key(&AddressKey::of(address))
            .map_err(|not_until| RetryAfter(not_until.wait_time_from(self.clock.now())))
    }
}

/// Forgets idle addresses once a minute, for as long as the server runs.
pub(crate) async fn forget_idle_addresses(state: std::sync::Weak<AppState>) {
    let mut ticks = tokio::time::interval(Duration::from_secs(60));
    loop {
        ticks.tick().await;
        let Some(state) = state.upgrade() else {
            return;
        };
        state.limits.forget_idle();
    }
}

/// The message rate of one signaling connection.
pub(crate) struct MessageRate(DefaultDirectRateLimiter);

impl MessageRate {
    pub(crate) fn new(config: &LimitsConfig) -> MessageRate {
        let quota = Quota::per_second(nonzero(config.messages_per_second))
            .allow_burst(nonzero(config.message_burst));
        MessageRate(RateLimiter::direct(quota))
    }

    /// Counts one message; false when it is one too many.
    pub(crate) fn allow(&mut self) -> bool {
        self.0.check().is_ok()
    }
}

fn per_minute(rate: u32, burst: u32) -> Quota {
    Quota::per_minute(nonzero(rate)).allow_burst(nonzero(burst))
}

/// The configuration refuses zero (`LimitsConfig::check`); one is the safe reading anyway.
fn nonzero(value: u32) -> NonZeroU32 {
    NonZeroU32::new(value).unwrap_or(NonZeroU32::MIN)
}

impl RetryAfter {
    /// Whole seconds, rounded up and at least one, as `Retry-After` takes them.
    pub(crate) fn seconds(self) -> u64 {
        self.0.as_millis().div_ceil(1000).max(1) as u64
    }
}

/// Middleware of the API routes: one call from the client's address, or 429.
pub(crate) async fn limit_api_calls(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    match state.limits.api_call(peer.ip()) {
        Ok(()) => next.run(request).await,
        Err(retry) => too_many_requests(retry),
    }
}

/// HTTP 429 with `Retry-After` and the API's JSON error.
fn too_many_requests(retry: RetryAfter) -> Response {
    let seconds = retry.seconds();
    let mut response = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        format!("too many requests from your address; try again in {seconds} s"),
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    response
}

/// Middleware of the whole router: refuses a WebSocket upgrade that a page of a foreign
/// origin asked for. A browser always sends `Origin` with a WebSocket; a page of another
/// site could otherwise open our socket with the visitor's network position (a commune's
/// LAN) and drive a session. Clients that send no `Origin` are not browsers, and could
/// write any origin they liked: refusing them would stop no attacker.
pub(crate) async fn check_websocket_origin(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let headers = request.headers();
    let is_upgrade = headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    if !is_upgrade {
        return next.run(request).await;
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return next.run(request).await;
    };
    if origin_allowed(origin, headers, &state.config) {
        return next.run(request).await;
    }
    let shown: String = origin
        .to_str()
        .unwrap_or("(not text)")
        .chars()
        .take(100)
        .collect();
    tracing::info!(origin = %shown, "WebSocket from a foreign origin refused");
    ApiError::new(
        StatusCode::FORBIDDEN,
        "origin_not_allowed",
        format!("pages of {shown} may not open this server's WebSocket"),
    )
    .into_response()
}

/// Same origin as the request's `Host`, or the configured public address, or one of
/// `limits.allowed_origins`.
fn origin_allowed(origin: &HeaderValue, headers: &HeaderMap, config: &cau_config::Config) -> bool {
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    // `null` (a sandboxed frame, a file) and anything without a scheme match nothing.
    let Some((_, authority)) = origin.split_once("://") else {
        return false;
    };
    let same_host = headers
        .get(header::HOST)
        .and_then(|host| host.to_str().ok())
        .is_some_and(|host| host.eq_ignore_ascii_case(authority));
    let trimmed = |s: &str| s.trim_end_matches('/').to_ascii_lowercase();
    let listed = config
        .limits
        .allowed_origins
        .iter()
        .chain(std::iter::once(&config.auth.public_url))
        .filter(|allowed| !allowed.is_empty())
        .any(|allowed| trimmed(allowed) == trimmed(origin));
    same_host || listed
}

/// The content security policy of every response. The pages load scripts, styles and
/// images only from this server, talk only to it (fetch and the WebSocket: `'self'`
/// covers `ws:`/`wss:` to the same host), and may be framed by no one. Camera and
/// microphone streams go to `<video>` through `srcObject`, which no directive governs.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; \
    connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
    frame-ancestors 'none'";

/// Middleware of the whole router: the security headers, on every response.
pub(crate) async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let set = |headers: &mut HeaderMap, name: HeaderName, value: &'static str| {
        headers.insert(name, HeaderValue::from_static(value));
    };
    set(
        headers,
        header::CONTENT_SECURITY_POLICY,
        CONTENT_SECURITY_POLICY,
    );
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    // Join links carry their token in the address: no page may hand it on.
    set(headers, header::REFERRER_POLICY, "no-referrer");
    // For browsers older than frame-ancestors.
    set(headers, header::X_FRAME_OPTIONS, "DENY");
    set(
        headers,
        HeaderName::from_static("permissions-policy"),
        "camera=(self), microphone=(self), geolocation=(), payment=()",
    );
    set(
        headers,
        HeaderName::from_static("cross-origin-opener-policy"),
        "same-origin",
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(joins_per_minute: u32, join_burst: u32) -> LimitsConfig {
        let mut config = cau_config::Config::defaults().limits;
        config.joins_per_minute = joins_per_minute;
        config.join_burst = join_burst;
        config
    }

    #[test]
    fn a_burst_passes_then_one_more_waits_for_the_steady_rate() {
        let limits = AddressLimits::new(&limits(60, 3));
        let address: IpAddr = "10.0.0.1".parse().unwrap();
        for _ in 0..3 {
            assert_eq!(limits.join(address), Ok(()));
        }
        let refused = limits.join(address).unwrap_err();
        // One a second: the next token is at most a second away.
        assert!(refused.0 <= Duration::from_secs(1), "{refused:?}");
        assert_eq!(refused.seconds(), 1);
        // Another address has its own bucket.
        assert_eq!(limits.join("10.0.0.2".parse().unwrap()), Ok(()));
        // And API calls a bucket of their own.
        assert_eq!(limits.api_call(address), Ok(()));
    }

    #[test]
    fn an_ipv6_host_is_counted_by_its_64_and_mapped_ipv4_as_ipv4() {
        let limits = AddressLimits::new(&limits(1, 1));
        assert_eq!(limits.join("2001:db8:1:2::1".parse().unwrap()), Ok(()));
        assert!(limits.join("2001:db8:1:2::ffff".parse().unwrap()).is_err());
        assert_eq!(limits.join("2001:db8:1:3::1".parse().unwrap()), Ok(()));
        assert_eq!(limits.join("192.0.2.7".parse().unwrap()), Ok(()));
        assert!(limits.join("::ffff:192.0.2.7".parse().unwrap()).is_err());
    }

    #[test]
    fn message_rate_allows_its_burst_only() {
        let mut config = cau_config::Config::defaults().limits;
        config.messages_per_second = 1;
        config.message_burst = 5;
        let mut rate = MessageRate::new(&config);
        let allowed = (0..10).filter(|_| rate.allow()).count();
        assert_eq!(allowed, 5);
    }

    #[test]
    fn origins_are_matched_by_host_or_by_the_list() {
        let check = |origin: &str, host: &str, listed: &[&str]| {
            let mut config = cau_config::Config::defaults();
            config.limits.allowed_origins = listed.iter().map(|s| s.to_string()).collect();
            let mut headers = HeaderMap::new();
            headers.insert(header::HOST, HeaderValue::from_str(host).unwrap());
            origin_allowed(&HeaderValue::from_str(origin).unwrap(), &headers, &config)
        };
        assert!(check("http://127.0.0.1:8080", "127.0.0.1:8080", &[]));
        assert!(check("https://Hop.Example.vn", "hop.example.vn", &[]));
        assert!(!check("http://evil.example", "127.0.0.1:8080", &[]));
        assert!(!check("http://127.0.0.1:8081", "127.0.0.1:8080", &[]));
        assert!(!check("null", "127.0.0.1:8080", &[]));
        assert!(check(
            "https://portal.example.vn",
            "127.0.0.1:8080",
            &["https://portal.example.vn"]
        ));
    }
}
