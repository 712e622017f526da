//! A WebSocket upgrade sent by a page of a foreign origin is refused with 403 and `origin_not_allowed`, on the signaling and the dashboard sockets; the server's own pages, a configured origin and clients that send no Origin (not browsers) connect and join.

use std::net::SocketAddr;

use anyhow::{Context, ensure};
use cau_tests::http::request;
use cau_tests::raw::RawSocket;
use cau_tests::server::start_test_server_with;

const PORTAL: &str = "https://portal.example.vn";

#[tokio::test(flavor = "multi_thread")]
async fn websocket_from_a_foreign_origin_is_refused() -> anyhow::Result<()> {
    let server =
        start_test_server_with(&format!("[limits]\nallowed_origins = [\"{PORTAL}\"]\n")).await?;
    let addr = server.http_addr();
    let own = format!("http://{addr}");

    for path in ["/ws", "/api/monitor/live"] {
        for foreign in [
            "http://evil.example",
            // The same host on another port is another origin.
            &format!("http://127.0.0.1:{}", addr.port().wrapping_add(1)),
            // A sandboxed frame or a file.
            "null",
        ] {
            let refused = refused_upgrade(addr, path, foreign).await?;
            ensure!(refused, "{path} did not refuse Origin {foreign} with 403");
        }
    }

    // Kept open to the end, so that the server counts all three at once.
    let mut joined = Vec::new();
    for origin in [own.as_str(), PORTAL] {
        let mut socket = RawSocket::connect_with_origin(&server.ws_url(), origin).await?;
        socket
            .send_text(r#"{"type": "join", "room": "lobby", "name": "anh"}"#)
            .await?;
        socket
            .expect_type("joined")
            .await
            .with_context(|| format!("joining with Origin {origin}"))?;
        joined.push(socket);
    }
    // No Origin at all: a program, not a browser page.
    let mut program = RawSocket::connect(&server.ws_url()).await?;
    program
        .send_text(r#"{"type": "join", "room": "lobby", "name": "binh"}"#)
        .await?;
    program.expect_type("joined").await?;
    ensure!(server.participant_count() == 3, "three joined");
    Ok(())
}

/// Sends a WebSocket upgrade with `Origin: origin`; true when it is refused with 403 and
/// the documented JSON error.
async fn refused_upgrade(addr: SocketAddr, path: &str, origin: &str) -> anyhow::Result<bool> {
    let response = request(
        addr,
        "GET",
        path,
        &[
            ("Connection", "Upgrade"),
            ("Upgrade", "websocket"),
            ("Sec-WebSocket-Version", "13"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ("Origin", origin),
        ],
        None,
    )
    .await?;
    if response.status != 403 {
        return Ok(false);
    }
    let body: serde_json::Value = serde_json::from_slice(&response.body)
        .with_context(|| format!("the 403 is not JSON: {}", response.text()))?;
    ensure!(
        body["code"] == "origin_not_allowed" && body["message"].as_str().is_some(),
        "403 with {body}"
    );
    Ok(true)
}
