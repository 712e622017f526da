//! A participant whose connection drops without a word is announced as gone to the others within 5 s, the server forgets its peer, and the rest of the call goes on.

use std::time::{Duration, Instant};

use anyhow::bail;
use cau_tests::client::{ClientConfig, MediaKind, TestClient, warm_up};
use cau_tests::server::start_test_server;

const TIMEOUT: Duration = Duration::from_secs(10);
/// The bound on how soon the others must know.
const ANNOUNCE_WITHIN: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread")]
async fn closed_participant_is_announced() -> anyhow::Result<()> {
    let server = start_test_server().await?;
    let before = server.peer_count();
    let anh = TestClient::join(ClientConfig::new(server.ws_url(), "drop", "anh")).await?;
    let binh = TestClient::join(ClientConfig::new(server.ws_url(), "drop", "binh")).await?;
    let chi = TestClient::join(ClientConfig::new(server.ws_url(), "drop", "chi")).await?;
    warm_up(&[&anh, &binh, &chi], TIMEOUT).await?;
    assert_eq!(server.peer_count(), before + 3);

    let chi_id = chi.participant_id().to_owned();
    let dropped_at = Instant::now();
    chi.drop_abruptly().await;
    for client in [&anh, &binh] {
        client
            .wait_until("chi's departure", ANNOUNCE_WITHIN, |c| {
                c.messages_of_type("participant_left").iter().any(|m| {
                    m["participant_id"] == chi_id.as_str() && m["reason"] == "disconnected"
                })
            })
            .await?;
        // Both of chi's tracks are announced gone, before chi is.
        let messages = client.messages();
        let left_at = messages.iter().position(|m| {
            m["type"] == "participant_left" && m["participant_id"] == chi_id.as_str()
        });
        for kind in ["audio", "video"] {
            let unpublished_at = messages.iter().position(|m| {
                m["type"] == "track_unpublished"
                    && m["participant_id"] == chi_id.as_str()
                    && m["kind"] == kind
            });
            if unpublished_at.is_none() || unpublished_at > left_at {
                bail!(
                    "{}: chi's {kind} was not announced unpublished before chi left",
                    client.participant_id()
                );
            }
        }
    }
    let announced_after = dropped_at.elapsed();
    while server.peer_count() != before + 2 {
        if dropped_at.elapsed() > ANNOUNCE_WITHIN {
            bail!(
                "the server still holds {} peers, expected {}",
                server.peer_count(),
                before + 2
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!("departure announced after {announced_after:?}");

    // The others' call is whole.
    for index in 0..20 {
        binh.send_tagged("binh", MediaKind::Video, index).await?;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    anh.wait_until("binh's video after chi left", TIMEOUT, |c| {
        c.check_received_exactly(binh.participant_id(), MediaKind::Video, "binh", 20)
            .is_ok()
    })
    .await?;
    anh.leave().await?;
    binh.leave().await?;
    Ok(())
}
