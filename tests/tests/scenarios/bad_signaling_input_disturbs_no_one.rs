//! Every kind of bad signaling input gets its documented error code and a readable message, while a call in the same room goes on untouched.

use std::time::Duration;

use anyhow::{Context, bail};
use cau_tests::client::{ClientConfig, MediaKind, TestClient, warm_up};
use cau_tests::raw::{RawSocket, http_get};
use cau_tests::server::start_test_server;

const TIMEOUT: Duration = Duration::from_secs(10);
const PACKETS: u32 = 50;

#[tokio::test(flavor = "multi_thread")]
async fn bad_signaling_input_disturbs_no_one() -> anyhow::Result<()> {
    let server = start_test_server().await?;
    let anh = TestClient::join(ClientConfig::new(server.ws_url(), "call", "anh")).await?;
    let binh = TestClient::join(ClientConfig::new(server.ws_url(), "call", "binh")).await?;
    warm_up(&[&anh, &binh], TIMEOUT).await?;

    // Before joining.
    let mut bad = RawSocket::connect(&server.ws_url()).await?;
    bad.expect_refusal("{not json", "bad_json").await?;
    bad.expect_refusal("[1, 2, 3]", "bad_json").await?;
    bad.expect_refusal(r#"{"type": 42}"#, "bad_json").await?;
    bad.expect_refusal(r#"{"type": "dance"}"#, "unknown_type")
        .await?;
    bad.expect_refusal(r#"{"type": "offer", "sdp": "v=0"}"#, "not_joined")
        .await?;
    bad.expect_refusal(r#"{"type": "join", "room": 7, "name": "x"}"#, "bad_json")
        .await?;
    bad.expect_refusal(
        r#"{"type": "join", "room": "../etc", "name": "x"}"#,
        "invalid_room",
    )
    .await?;
    bad.expect_refusal(
        r#"{"type": "join", "room": "call", "name": "  "}"#,
        "invalid_name",
    )
    .await?;
    let long_name = "x".repeat(65);
    bad.expect_refusal(
        format!(r#"{{"type": "join", "room": "call", "name": "{long_name}"}}"#),
        "invalid_name",
    )
    .await?;
    bad.send_binary(vec![0xde, 0xad, 0xbe, 0xef]).await?;
    let reply = bad.expect_type("error").await?;
    if reply["code"] != "binary_not_supported" {
        bail!("binary frame: expected binary_not_supported, got {reply}");
    }

    // Joined, then misbehaving. Markup in a name is only text to the others.
    bad.send_text(r#"{"type": "join", "room": "call", "name": "<b>kẻ phá</b>"}"#)
        .await?;
    let joined = bad.expect_type("joined").await?;
    let bad_id = joined["participant_id"]
        .as_str()
        .context("no participant id")?
        .to_owned();
    bad.expect_refusal(
        r#"{"type": "join", "room": "call", "name": "again"}"#,
        "already_joined",
    )
    .await?;
    bad.expect_refusal(r#"{"type": "answer", "sdp": "v=0"}"#, "negotiation_refused")
        .await?;
    bad.expect_refusal(
        r#"{"type": "candidate", "candidate": "candidate:1 1 udp 1 127.0.0.1 9 typ host"}"#,
        "negotiation_refused",
    )
    .await?;
    bad.expect_refusal(r#"{"type": "offer", "sdp": "this is not SDP"}"#, "bad_sdp")
        .await?;
    // A refused offer may be retried; garbage again is refused again.
    bad.expect_refusal(
        r#"{"type": "offer", "sdp": "v=0\r\nm=video 9 NOPE 0\r\n"}"#,
        "bad_sdp",
    )
    .await?;
    bad.expect_refusal(
        r#"{"type": "mute", "kind": "smell", "muted": true}"#,
        "bad_json",
    )
    .await?;
    bad.expect_refusal(r#"{"type": "mute", "kind": "audio"}"#, "bad_json")
        .await?;
    // Too long: refused with a clear error, then the socket is closed.
    let huge = format!(
        r#"{{"type": "offer", "sdp": "{}"}}"#,
        "a".repeat(100 * 1024)
    );
    bad.expect_refusal(huge, "message_too_large").await?;
    bad.expect_closed().await?;

    // The others saw the misbehaving participant come and go, with its name as sent.
    for client in [&anh, &binh] {
        client
            .wait_until("the bad participant to come and go", TIMEOUT, |c| {
                let came = c.messages_of_type("participant_joined").iter().any(|m| {
                    m["participant"]["id"] == bad_id.as_str()
                        && m["participant"]["name"] == "<b>kẻ phá</b>"
                });
                let went = c
                    .messages_of_type("participant_left")
                    .iter()
                    .any(|m| m["participant_id"] == bad_id.as_str());
                came && went
            })
            .await?;
    }

    // The call goes on: every packet sent now arrives intact.
    for index in 0..PACKETS {
        for (client, tag) in [(&anh, "anh"), (&binh, "binh")] {
            client.send_tagged(tag, MediaKind::Audio, index).await?;
            client.send_tagged(tag, MediaKind::Video, index).await?;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for (receiver, sender, tag) in [(&anh, &binh, "binh"), (&binh, &anh, "anh")] {
        for kind in [MediaKind::Audio, MediaKind::Video] {
            receiver
                .wait_until("the call's packets", TIMEOUT, |c| {
                    c.check_received_exactly(sender.participant_id(), kind, tag, PACKETS)
                        .is_ok()
                })
                .await?;
            receiver.check_received_exactly(sender.participant_id(), kind, tag, PACKETS)?;
        }
    }
    let (status, body) = http_get(server.http_addr(), "/healthz").await?;
    if status != 200 || body != "ok" {
        bail!("/healthz answered {status} {body:?} after the bad input");
    }
    anh.leave().await?;
    binh.leave().await?;
    Ok(())
}
