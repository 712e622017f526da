//! A participant whose media path goes silent while its signaling socket stays open is dropped by the SFU after its peer timeout (4 s) and announced to the others, with reason `timeout`, within 5 s.

use std::time::{Duration, Instant};

use anyhow::bail;
use cau_tests::client::{ClientConfig, TestClient, warm_up};
use cau_tests::server::start_test_server;

const TIMEOUT: Duration = Duration::from_secs(10);
const ANNOUNCE_WITHIN: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread")]
async fn participant_whose_media_dies_is_announced() -> anyhow::Result<()> {
    let server = start_test_server().await?;
    let anh = TestClient::join(ClientConfig::new(server.ws_url(), "media", "anh")).await?;
    let binh = TestClient::join(ClientConfig::new(server.ws_url(), "media", "binh")).await?;
    warm_up(&[&anh, &binh], TIMEOUT).await?;

    let binh_id = binh.participant_id().to_owned();
    let closed_at = Instant::now();
    binh.close_media().await?;
    anh.wait_until("binh's departure", ANNOUNCE_WITHIN, |c| {
        c.messages_of_type("participant_left")
            .iter()
            .any(|m| m["participant_id"] == binh_id.as_str() && m["reason"] == "timeout")
    })
    .await?;
    println!("media loss announced after {:?}", closed_at.elapsed());
    // binh itself is told why, and its socket is closed.
    binh.wait_until("media_failed and the socket closed", ANNOUNCE_WITHIN, |c| {
        c.socket_closed()
            && c.messages_of_type("error")
                .iter()
                .any(|m| m["code"] == "media_failed")
    })
    .await?;
    if server.peer_count() != 1 || server.participant_count() != 1 {
        bail!(
            "the server holds {} peers and {} participants, expected 1 and 1",
            server.peer_count(),
            server.participant_count()
        );
    }
    anh.leave().await?;
    Ok(())
}
