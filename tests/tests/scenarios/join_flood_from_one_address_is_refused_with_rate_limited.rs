//! Join attempts beyond an address's burst are refused with `rate_limited` and how long to wait, whether joins, bad tokens or line tests, while other addresses still join and the sites in a call keep their media.

use std::net::IpAddr;
use std::time::Duration;

use anyhow::{Context, bail};
use cau_tests::client::{ClientConfig, MediaKind, TestClient, warm_up};
use cau_tests::raw::RawSocket;
use cau_tests::server::start_test_server_with;

const TIMEOUT: Duration = Duration::from_secs(10);
const PACKETS: u32 = 50;

#[tokio::test(flavor = "multi_thread")]
async fn join_flood_from_one_address_is_refused_with_rate_limited() -> anyhow::Result<()> {
    // Four join attempts at once from one address, then one a minute: the test is over
    // long before another is allowed.
    let server = start_test_server_with("[limits]\njoin_burst = 4\njoins_per_minute = 1\n").await?;
    // Two sites in a call, from 127.0.0.1: two of its four attempts.
    let anh = TestClient::join(ClientConfig::new(server.ws_url(), "call", "anh")).await?;
    let binh = TestClient::join(ClientConfig::new(server.ws_url(), "call", "binh")).await?;
    warm_up(&[&anh, &binh], TIMEOUT).await?;

    // A refused join counts as much as a good one: a bad token, then a good join.
    let mut flood = RawSocket::connect(&server.ws_url()).await?;
    flood
        .expect_refusal(r#"{"type": "join", "token": "guess"}"#, "invalid_token")
        .await?;
    flood
        .send_text(r#"{"type": "join", "room": "elsewhere", "name": "chi"}"#)
        .await?;
    flood
        .expect_type("joined")
        .await
        .context("the fourth join")?;

    // The fifth attempt, on a new socket, is refused, and says how long to wait.
    let mut refused = 0;
    for attempt in 0..10 {
        let mut socket = RawSocket::connect(&server.ws_url()).await?;
        let join = format!(r#"{{"type": "join", "room": "flood", "name": "n{attempt}"}}"#);
        let reply = socket.expect_refusal(join, "rate_limited").await?;
        let message = reply["message"].as_str().unwrap_or_default();
        if !message.contains("try again in") {
            bail!("the refusal should say when to try again: {message:?}");
        }
        refused += 1;
    }
    // A line test is a join attempt too.
    let mut line_test = RawSocket::connect(&server.ws_url()).await?;
    line_test
        .expect_refusal(
            r#"{"type": "start_line_test", "token": "guess"}"#,
            "rate_limited",
        )
        .await?;
    if server.participant_count() != 3 {
        bail!(
            "refused joins changed the participants: {} instead of 3",
            server.participant_count()
        );
    }

    // Another address has its own allowance.
    let other: IpAddr = "127.0.0.2".parse()?;
    let mut neighbour = RawSocket::connect_from(&server.ws_url(), other).await?;
    neighbour
        .send_text(r#"{"type": "join", "room": "elsewhere", "name": "dung"}"#)
        .await?;
    neighbour
        .expect_type("joined")
        .await
        .context("a join from another address while 127.0.0.1 is limited")?;

    // The call was never disturbed.
    for index in 0..PACKETS {
        anh.send_tagged("anh", MediaKind::Audio, index).await?;
        binh.send_tagged("binh", MediaKind::Audio, index).await?;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for (receiver, sender, tag) in [(&anh, &binh, "binh"), (&binh, &anh, "anh")] {
        receiver
            .wait_until("the call's audio after the join flood", TIMEOUT, |c| {
                c.check_received_exactly(sender.participant_id(), MediaKind::Audio, tag, PACKETS)
                    .is_ok()
            })
            .await?;
    }
    println!("{refused} joins refused with rate_limited; the call and another address unaffected");
    anh.leave().await?;
    binh.leave().await?;
    Ok(())
}
