//! An offer too large to parse cheaply is refused as `bad_sdp` before the SFU sees it,
//! and a connection whose offers the SFU refused three times may offer no more: the
//! media thread every room shares parses each offer.

use anyhow::bail;
use cau_tests::raw::RawSocket;
use cau_tests::server::start_test_server;
use serde_json::json;

fn offer(sdp: &str) -> String {
    json!({"type": "offer", "sdp": sdp}).to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn offers_beyond_the_limits_are_refused() -> anyhow::Result<()> {
    let server = start_test_server().await?;
    let mut client = RawSocket::connect(&server.ws_url()).await?;
    client
        .send_text(r#"{"type": "join", "room": "sdp", "name": "x"}"#)
        .await?;
    client.expect_type("joined").await?;

    // Beyond the limits of docs/signaling.md, yet within a message's 64 KiB: refused
    // where the frame is parsed, so they count as no refused offer of the SFU's.
    let large = format!("v=0\r\na=x:{}\r\n", "y".repeat(40 * 1024));
    let many_lines = "a=rtcp-mux\r\n".repeat(700);
    let many_sections = "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n".repeat(17);
    let many_candidates = "a=candidate:1 1 udp 1 10.0.0.1 9 typ host\r\n".repeat(33);
    for sdp in [large, many_lines, many_sections, many_candidates] {
        let refusal = client.expect_refusal(offer(&sdp), "bad_sdp").await?;
        if !refusal["message"]
            .as_str()
            .unwrap_or("")
            .contains("at most")
        {
            bail!("the refusal does not say the limit: {refusal}");
        }
    }

    // Three offers the SFU refuses, then no more on this connection.
    for _ in 0..3 {
        client.expect_refusal(offer("not SDP"), "bad_sdp").await?;
    }
    client
        .expect_refusal(offer("not SDP either"), "negotiation_refused")
        .await?;
    Ok(())
}
