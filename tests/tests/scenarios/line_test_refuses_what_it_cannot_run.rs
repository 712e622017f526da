//! A line test is refused with a clear code, and the session goes on, when its link does
//! not admit the site now (a bad token, a meeting two hours away) or the site's test is
//! already running; a running test takes only its offer, candidates and `leave`, and
//! refuses an offer without the test's data channels. No media flows: these are the
//! signaling rules alone.

use anyhow::ensure;
use cau_tests::api::{admin_config, link_for, now_millis, schedule, token_in};
use cau_tests::raw::RawSocket;
use cau_tests::server::start_test_server_with;
use serde_json::json;

/// An audio-only offer: a media line, but no `m=application` for the data channels.
const OFFER_WITHOUT_CHANNELS: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
    a=group:BUNDLE 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\n\
    a=mid:0\r\na=sendonly\r\na=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n\
    a=fingerprint:sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF\r\n\
    a=setup:actpass\r\na=rtcp-mux\r\na=rtpmap:111 opus/48000/2\r\n";

#[tokio::test]
async fn line_test_refuses_what_it_cannot_run() -> anyhow::Result<()> {
    let server = start_test_server_with(&admin_config()).await?;
    let addr = server.http_addr();
    let ws = server.ws_url();
    let now = now_millis();
    let soon = schedule(addr, now + 30 * 60_000, now + 90 * 60_000, &["ha-quang"]).await?;
    let later = schedule(addr, now + 120 * 60_000, now + 180 * 60_000, &["tra-linh"]).await?;
    let start = |token: &str| json!({ "type": "start_line_test", "token": token }).to_string();

    // Links that do not admit now are refused, and the session may try again.
    let mut socket = RawSocket::connect(&ws).await?;
    socket
        .expect_refusal(start("not-a-token"), "invalid_token")
        .await?;
    let too_early = token_in(&link_for(&later, "tra-linh")?)?;
    socket
        .expect_refusal(start(&too_early), "token_not_yet_valid")
        .await?;

    // A link that admits: the test starts, with its plan.
    let token = token_in(&link_for(&soon, "ha-quang")?)?;
    socket.send_text(start(&token)).await?;
    let started = socket.expect_type("line_test_started").await?;
    ensure!(started["site"]["code"] == "ha-quang", "{started}");
    ensure!(
        started["plan"]["upload_kbps"].as_u64() > Some(0),
        "{started}"
    );

    // One test per site at a time.
    let mut second = RawSocket::connect(&ws).await?;
    second
        .expect_refusal(start(&token), "line_test_busy")
        .await?;

    // During the test, only its own messages.
    socket
        .expect_refusal(
            json!({ "type": "join", "token": token }).to_string(),
            "already_joined",
        )
        .await?;
    socket
        .expect_refusal(r#"{"type":"request_floor"}"#, "forbidden")
        .await?;
    socket
        .expect_refusal(
            json!({ "type": "candidate", "candidate": "candidate:1 1 udp 1 127.0.0.1 9 typ host" })
                .to_string(),
            "negotiation_refused",
        )
        .await?;
    socket
        .expect_refusal(
            json!({ "type": "offer", "sdp": OFFER_WITHOUT_CHANNELS }).to_string(),
            "bad_sdp",
        )
        .await?;

    // Leaving ends the test, and the site may test again.
    socket.send_text(r#"{"type":"leave"}"#).await?;
    socket.expect_type("left").await?;
    socket.expect_closed().await?;
    let mut again = RawSocket::connect(&ws).await?;
    again.send_text(start(&token)).await?;
    again.expect_type("line_test_started").await?;
    server.shutdown(std::time::Duration::from_secs(2)).await;
    Ok(())
}
