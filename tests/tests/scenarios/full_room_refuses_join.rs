//! A join to a full room, or to a full server, is refused with `room_full` or `server_full`, and the participants already in keep their call.

use std::time::Duration;

use anyhow::{Context, bail};
use cau_tests::client::{ClientConfig, MediaKind, TestClient, warm_up};
use cau_tests::raw::RawSocket;
use cau_tests::server::start_test_server_with;

const TIMEOUT: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread")]
async fn full_room_refuses_join() -> anyhow::Result<()> {
    let server =
        start_test_server_with("[limits]\nmax_participants_per_room = 2\nmax_peers = 3").await?;
    let anh = TestClient::join(ClientConfig::new(server.ws_url(), "small", "anh")).await?;
    let binh = TestClient::join(ClientConfig::new(server.ws_url(), "small", "binh")).await?;
    warm_up(&[&anh, &binh], TIMEOUT).await?;

    let mut third = RawSocket::connect(&server.ws_url()).await?;
    let refusal = third
        .expect_refusal(
            r#"{"type": "join", "room": "small", "name": "chi"}"#,
            "room_full",
        )
        .await?;
    let message = refusal["message"].as_str().unwrap_or_default();
    if !message.contains("small") || !message.contains('2') {
        bail!("the refusal should name the room and its limit: {message:?}");
    }
    // The same socket may still go elsewhere: another room has space, until the server is full.
    third
        .send_text(r#"{"type": "join", "room": "other", "name": "chi"}"#)
        .await?;
    third
        .expect_type("joined")
        .await
        .context("joining another room")?;
    let mut fourth = RawSocket::connect(&server.ws_url()).await?;
    fourth
        .expect_refusal(
            r#"{"type": "join", "room": "another", "name": "dung"}"#,
            "server_full",
        )
        .await?;

    // Nobody in the full room heard of the refused participant, and the call goes on.
    for client in [&anh, &binh] {
        if client
            .messages_of_type("participant_joined")
            .iter()
            .any(|m| m["participant"]["name"] == "chi")
        {
            bail!(
                "{} was told of a participant who was refused",
                client.participant_id()
            );
        }
    }
    for index in 0..20 {
        anh.send_tagged("anh", MediaKind::Audio, index).await?;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    binh.wait_until("anh's audio after the refusals", TIMEOUT, |c| {
        c.check_received_exactly(anh.participant_id(), MediaKind::Audio, "anh", 20)
            .is_ok()
    })
    .await?;
    anh.leave().await?;
    binh.leave().await?;
    Ok(())
}
