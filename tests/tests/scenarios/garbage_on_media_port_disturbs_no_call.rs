//! Random bytes, forged ICE checks and fake RTP and DTLS sent to the media port from many addresses during a call lose the call no packet, and the server keeps serving.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use cau_tests::client::{ClientConfig, MediaKind, TestClient, warm_up};
use cau_tests::garbage::{self, Lcg, kernel_drops};
use cau_tests::raw::http_get;
use cau_tests::server::start_test_server;
use tokio::net::UdpSocket;

const TIMEOUT: Duration = Duration::from_secs(10);
const PACKETS: u32 = 100;
/// Garbage datagrams sent in all, and the most time spent sending them.
const GARBAGE: usize = 20_000;
const GARBAGE_TIME: Duration = Duration::from_secs(5);
/// Addresses the garbage comes from, 127.0.2.1 and up.
const SOURCES: usize = 16;

#[tokio::test(flavor = "multi_thread")]
async fn garbage_on_media_port_disturbs_no_call() -> anyhow::Result<()> {
    let server = start_test_server().await?;
    let anh = TestClient::join(ClientConfig::new(server.ws_url(), "call", "anh")).await?;
    let binh = TestClient::join(ClientConfig::new(server.ws_url(), "call", "binh")).await?;
    warm_up(&[&anh, &binh], TIMEOUT).await?;
    let anh_ufrag = server_ufrag(&anh)?;

    let media_addr = server.media_addr();
    let attacker = tokio::spawn(async move {
        // Sixteen attackers on addresses of their own, each new to the server: forged
        // checks from unknown addresses must bind none of them to a session.
        let mut sockets = Vec::new();
        for host in 1..=SOURCES {
            sockets.push(UdpSocket::bind(format!("127.0.2.{host}:0")).await?);
        }
        let mut random = Lcg(0x5eed);
        let started = Instant::now();
        let mut sent = 0;
        while sent < GARBAGE && started.elapsed() < GARBAGE_TIME {
            let datagram = garbage::datagram(sent as u64, &anh_ufrag, &mut random);
            let socket = &sockets[sent % sockets.len()];
            // The OS may refuse when its buffer is full; the flood goes on regardless.
            let _ = socket.send_to(&datagram, media_addr).await;
            sent += 1;
            // About 10,000 a second, spread over the whole call rather than one burst.
            if sent % 200 == 0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        anyhow::Ok((sent, started.elapsed()))
    });

    for index in 0..PACKETS {
        for (client, tag) in [(&anh, "anh"), (&binh, "binh")] {
            client.send_tagged(tag, MediaKind::Audio, index).await?;
            client.send_tagged(tag, MediaKind::Video, index).await?;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (sent, spent) = attacker.await.context("the flood task")??;
    println!(
        "sent {sent} garbage datagrams in {spent:?} ({:.0}/s) during the call",
        sent as f64 / spent.as_secs_f64()
    );
    if sent < 1000 {
        bail!("only {sent} garbage datagrams went out: the test proved little");
    }

    for (receiver, sender, tag) in [(&anh, &binh, "binh"), (&binh, &anh, "anh")] {
        for kind in [MediaKind::Audio, MediaKind::Video] {
            let _ = receiver
                .wait_until("every packet of the call", TIMEOUT, |c| {
                    c.check_received_exactly(sender.participant_id(), kind, tag, PACKETS)
                        .is_ok()
                })
                .await;
            receiver
                .check_received_exactly(sender.participant_id(), kind, tag, PACKETS)
                .with_context(|| {
                    format!(
                        "the server's media socket dropped {:?} datagrams in the kernel",
                        kernel_drops(media_addr.port())
                    )
                })?;
        }
    }
    let stats = server.sfu_stats();
    if stats.datagrams_malformed + stats.datagrams_unroutable == 0 {
        bail!("the server counted none of the garbage: {stats:?}");
    }
    let (status, _) = http_get(server.http_addr(), "/healthz").await?;
    if status != 200 {
        bail!("/healthz answered {status} after the flood");
    }
    if server.peer_count() != 2 {
        bail!(
            "the flood changed the peer count to {}",
            server.peer_count()
        );
    }
    anh.leave().await?;
    binh.leave().await?;
    Ok(())
}

/// The server's ICE username fragment in the answer it gave `client`.
fn server_ufrag(client: &TestClient) -> anyhow::Result<String> {
    let answers = client.messages_of_type("answer");
    let sdp = answers
        .first()
        .and_then(|m| m["sdp"].as_str())
        .context("no answer recorded")?;
    garbage::ice_ufrag(sdp)
        .map(str::to_owned)
        .context("no ice-ufrag in the server's answer")
}
