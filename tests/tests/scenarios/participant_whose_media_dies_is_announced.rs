//! A participant whose media path goes silent while its signaling socket stays open is
//! dropped by the SFU after its peer timeout (4 s) and announced to the others, with
//! reason `timeout`, within 5 s.
//!
//! Silent, not closed: its UDP is cut (iptables in the test's own network namespace),
//! as a line that goes dead would, so no DTLS close or RTCP BYE tells the server. (A
//! peer that closes its media connection properly is gone at once, as `disconnected`.)

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use anyhow::bail;
use cau_tests::client::{ClientConfig, TestClient, warm_up};
use cau_tests::server::start_test_server;
use cau_tests::shaping::{Shaper, run_in_private_network};

const TIMEOUT: Duration = Duration::from_secs(10);
const ANNOUNCE_WITHIN: Duration = Duration::from_secs(5);
const BINH: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 3);

#[test]
fn participant_whose_media_dies_is_announced() -> anyhow::Result<()> {
    run_in_private_network(scenario)
}

async fn scenario() -> anyhow::Result<()> {
    let server = start_test_server().await?;
    let anh = TestClient::join(ClientConfig::new(server.ws_url(), "media", "anh")).await?;
    let mut binh_config = ClientConfig::new(server.ws_url(), "media", "binh");
    binh_config.local_ip = BINH;
    let binh = TestClient::join(binh_config).await?;
    warm_up(&[&anh, &binh], TIMEOUT).await?;

    let binh_id = binh.participant_id().to_owned();
    let cut_at = Instant::now();
    Shaper::new().cut(BINH)?;
    anh.wait_until("binh's departure", ANNOUNCE_WITHIN, |c| {
        c.messages_of_type("participant_left")
            .iter()
            .any(|m| m["participant_id"] == binh_id.as_str() && m["reason"] == "timeout")
    })
    .await?;
    println!("media loss announced after {:?}", cut_at.elapsed());
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
