//! Join tokens, join links and the admin token never reach the server's logs, with its own crates at trace and its libraries at debug, through a meeting's whole life: scheduling, the invitation check, a join, a forged and a revoked token, the calendar link, the dashboard's sign-in and a wrong admin token.

use std::io::Write;
use std::sync::{Arc, Mutex};

use anyhow::{Context, ensure};
use cau_tests::client::{ClientConfig, TestClient};
use cau_tests::raw::RawSocket;
use cau_tests::rest::{ApiServer, link_of, time_from_now, token_of};
use serde_json::json;
use tracing_subscriber::EnvFilter;

/// Everything logged on this thread, as text.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut text) = self.0.lock() {
            text.extend_from_slice(bytes);
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn secrets_never_reach_the_logs() -> anyhow::Result<()> {
    let captured = Captured::default();
    let writer = captured.clone();
    // The server's own crates at their most verbose, and the HTTP, WebSocket and
    // database layers it runs on at debug, the most an operator turns on. (At trace,
    // tungstenite prints every frame's payload, a join token included: never run a
    // production server with RUST_LOG=trace; docs/security.md says so.) A subscriber for
    // this thread only, and a runtime on this thread only, so that every task of the
    // server logs here and no other test does.
    let filter = EnvFilter::new(
        "warn,cau_signaling=trace,cau_sfu=trace,cau_config=trace,axum=debug,axum_server=debug,\
         hyper=debug,tower=debug,sqlx=debug,tungstenite=debug,tokio_tungstenite=debug",
    );
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let guard = tracing::subscriber::set_default(subscriber);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let secrets = runtime.block_on(meeting_life())?;
    drop(runtime);
    drop(guard);

    let logs =
        String::from_utf8_lossy(&captured.0.lock().map_err(|_| anyhow::anyhow!("poisoned"))?)
            .into_owned();
    // The capture worked: the join and the refusals were logged.
    ensure!(
        logs.contains("site connected") && logs.contains("refused"),
        "the logs missed the session's own lines ({} bytes)",
        logs.len()
    );
    for (what, secret) in &secrets {
        ensure!(!secret.is_empty(), "{what} is empty");
        if let Some(at) = logs.find(secret.as_str()) {
            let line = logs[..at].rsplit('\n').next().unwrap_or_default();
            anyhow::bail!("{what} is in the logs, on the line starting {line:?}");
        }
    }
    println!(
        "{} bytes of logs, none of {} secrets in them",
        logs.len(),
        secrets.len()
    );
    Ok(())
}

/// Runs a meeting's life against a server; returns the secrets it used, by name.
async fn meeting_life() -> anyhow::Result<Vec<(String, String)>> {
    let server = ApiServer::start().await?;
    let admin = server.admin();
    let meeting = admin
        .post(
            "/api/meetings",
            &json!({
                "title": "Họp bí mật",
                "start": time_from_now(-5),
                "end": time_from_now(60),
                "chair": "cao-bang",
                "sites": ["quang-lam", "thuc-phan"],
            }),
        )
        .await?
        .expect(201)?;
    let id = meeting["id"].as_str().context("no id")?.to_owned();
    let chair_link = link_of(&meeting, "cao-bang")?;
    let chair = token_of(&chair_link)?;
    let commune = token_of(&link_of(&meeting, "quang-lam")?)?;
    let revoked_link = link_of(&meeting, "thuc-phan")?;
    let revoked = token_of(&revoked_link)?;

    server
        .anonymous()
        .get(&format!("/api/invitation?token={commune}"))
        .await?
        .expect(200)?;
    server
        .anonymous()
        .get(&format!("/api/meetings/{id}.ics?token={chair}"))
        .await?
        .expect_status(200)?;
    // The site's page, with its token in the address.
    server
        .anonymous()
        .get(&format!("/m/{id}?token={commune}"))
        .await?
        .expect_status(200)?;
    // Reissuing thuc-phan's link revokes the old one, and hands out a new secret.
    let reissued = admin
        .post_empty(&format!("/api/meetings/{id}/sites/thuc-phan/reissue"))
        .await?
        .expect(201)?;
    let reissued_link = reissued["url"].as_str().context("no url")?.to_owned();
    let wrong_admin = "wrong-admin-token-0123456789";
    server
        .with_bearer(wrong_admin)
        .get("/api/meetings")
        .await?
        .expect_status(401)?;

    let ws_url = format!("ws://{}/ws", server.addr());
    let chair_site =
        TestClient::join(ClientConfig::with_token(ws_url.clone(), chair.clone())).await?;
    // A forged token: the chair's with its signature changed.
    let forged = format!("{}x", &chair[..chair.len() - 1]);
    let mut socket = RawSocket::connect(&ws_url).await?;
    socket
        .expect_refusal(
            json!({"type": "join", "token": forged}).to_string(),
            "invalid_token",
        )
        .await?;
    let mut socket = RawSocket::connect(&ws_url).await?;
    socket
        .expect_refusal(
            json!({"type": "join", "token": revoked}).to_string(),
            "token_revoked",
        )
        .await?;
    // The dashboard signs in with the admin token as its first message.
    let mut dashboard =
        RawSocket::connect(&format!("ws://{}/api/monitor/live", server.addr())).await?;
    dashboard
        .send_text(json!({"type": "auth", "token": server.admin_token()}).to_string())
        .await?;
    dashboard
        .expect_type("snapshot")
        .await
        .context("the dashboard's sign-in")?;
    chair_site.leave().await?;

    Ok(vec![
        ("the admin token".into(), server.admin_token().to_owned()),
        ("a wrong admin token".into(), wrong_admin.into()),
        ("the chair's token".into(), chair),
        ("the chair's link".into(), chair_link),
        ("a commune's token".into(), commune),
        ("a revoked token".into(), revoked),
        ("a reissued link".into(), reissued_link),
        ("a forged token".into(), forged),
    ])
}
