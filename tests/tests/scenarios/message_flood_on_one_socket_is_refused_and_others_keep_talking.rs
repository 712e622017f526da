//! A signaling connection sending more messages a second than `[limits]` allows has the extra ones dropped and answered with `too_many_messages`, keeps its session once it slows down, and disturbs nobody else's call.

use std::time::Duration;

use anyhow::{Context, bail, ensure};
use cau_tests::client::{ClientConfig, MediaKind, TestClient, warm_up};
use cau_tests::raw::RawSocket;
use cau_tests::server::start_test_server_with;

const TIMEOUT: Duration = Duration::from_secs(10);
const BURST: usize = 10;
const FLOOD: usize = 60;
const PACKETS: u32 = 50;

#[tokio::test(flavor = "multi_thread")]
async fn message_flood_on_one_socket_is_refused_and_others_keep_talking() -> anyhow::Result<()> {
    let server = start_test_server_with(&format!(
        "[limits]\nmessage_burst = {BURST}\nmessages_per_second = 2\n"
    ))
    .await?;
    let anh = TestClient::join(ClientConfig::new(server.ws_url(), "call", "anh")).await?;
    let binh = TestClient::join(ClientConfig::new(server.ws_url(), "call", "binh")).await?;
    warm_up(&[&anh, &binh], TIMEOUT).await?;

    let mut flood = RawSocket::connect(&server.ws_url()).await?;
    flood
        .send_text(r#"{"type": "join", "room": "elsewhere", "name": "chi"}"#)
        .await?;
    flood.expect_type("joined").await?;
    // Messages the server answers one for one: each is refused, either for what it
    // says (unknown_type) or for coming too fast (too_many_messages).
    for _ in 0..FLOOD {
        flood.send_text(r#"{"type": "no_such_thing"}"#).await?;
    }
    let (mut understood, mut too_many) = (0, 0);
    for _ in 0..FLOOD {
        let reply = flood.expect_type("error").await?;
        match reply["code"].as_str() {
            Some("unknown_type") => understood += 1,
            Some("too_many_messages") => too_many += 1,
            _ => bail!("unexpected reply to the flood: {reply}"),
        }
    }
    // The join used one of the burst; at two a second a few more may refill meanwhile.
    ensure!(
        (BURST - 1..=BURST + 4).contains(&understood),
        "{understood} messages were handled of a burst of {BURST}"
    );
    ensure!(too_many == FLOOD - understood, "{too_many} refused");

    // The session lives on: after a pause its messages are handled again.
    tokio::time::sleep(Duration::from_secs(2)).await;
    flood
        .expect_refusal(r#"{"type": "no_such_thing"}"#, "unknown_type")
        .await
        .context("after the flood slowed down")?;
    ensure!(
        server.participant_count() == 3,
        "the flooding session was dropped"
    );

    for index in 0..PACKETS {
        anh.send_tagged("anh", MediaKind::Audio, index).await?;
        binh.send_tagged("binh", MediaKind::Audio, index).await?;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for (receiver, sender, tag) in [(&anh, &binh, "binh"), (&binh, &anh, "anh")] {
        receiver
            .wait_until("the call's audio after the message flood", TIMEOUT, |c| {
                c.check_received_exactly(sender.participant_id(), MediaKind::Audio, tag, PACKETS)
                    .is_ok()
            })
            .await?;
    }
    println!("{too_many} of {FLOOD} flooded messages refused with too_many_messages");
    anh.leave().await?;
    binh.leave().await?;
    Ok(())
}
