//! Every page, script and API answer carries the security headers: a content security policy that allows only this server's own scripts, styles and connections and no framing, `nosniff`, `no-referrer` (join links carry their token) and `X-Frame-Options: DENY`.

use anyhow::{Context, ensure};
use cau_tests::http::request;
use cau_tests::server::start_test_server;

#[tokio::test(flavor = "multi_thread")]
async fn pages_carry_security_headers() -> anyhow::Result<()> {
    let server = start_test_server().await?;
    let addr = server.http_addr();
    for path in [
        "/",
        "/join/room-1",
        "/m/some-meeting?token=abc",
        "/schedule",
        "/monitor",
        "/assets/site.js",
        "/api/sites",
        "/api/meetings",
        "/no-such-page",
    ] {
        let response = request(addr, "GET", path, &[], None).await?;
        let policy = response
            .header("content-security-policy")
            .with_context(|| format!("{path} ({}) has no CSP", response.status))?;
        let directives: Vec<&str> = policy.split(';').map(str::trim).collect();
        for expected in [
            "default-src 'self'",
            "script-src 'self'",
            "connect-src 'self'",
            "object-src 'none'",
            "frame-ancestors 'none'",
        ] {
            ensure!(
                directives.contains(&expected),
                "{path}: CSP {policy:?} lacks {expected:?}"
            );
        }
        ensure!(
            !policy.contains("unsafe-inline") && !policy.contains("unsafe-eval"),
            "{path}: CSP allows inline code: {policy:?}"
        );
        for (name, value) in [
            ("x-content-type-options", "nosniff"),
            ("referrer-policy", "no-referrer"),
            ("x-frame-options", "DENY"),
        ] {
            ensure!(
                response.header(name) == Some(value),
                "{path}: {name} is {:?}",
                response.header(name)
            );
        }
    }
    Ok(())
}
