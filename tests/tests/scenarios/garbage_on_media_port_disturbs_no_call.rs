//! Random bytes, forged ICE checks and fake RTP and DTLS sent to the media port during a call lose the call no packet, and the server keeps serving.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use cau_tests::client::{ClientConfig, MediaKind, TestClient, warm_up};
use cau_tests::raw::http_get;
use cau_tests::server::start_test_server;
use tokio::net::UdpSocket;

const TIMEOUT: Duration = Duration::from_secs(10);
const PACKETS: u32 = 100;
/// Garbage datagrams sent in all, and the most time spent sending them.
const GARBAGE: usize = 20_000;
const GARBAGE_TIME: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread")]
async fn garbage_on_media_port_disturbs_no_call() -> anyhow::Result<()> {
    let server = start_test_server().await?;
    let anh = TestClient::join(ClientConfig::new(server.ws_url(), "call", "anh")).await?;
    let binh = TestClient::join(ClientConfig::new(server.ws_url(), "call", "binh")).await?;
    warm_up(&[&anh, &binh], TIMEOUT).await?;
    let anh_ufrag = server_ufrag(&anh)?;

    let media_addr = server.media_addr();
    let attacker = tokio::spawn(async move {
        let socket = UdpSocket::bind("127.0.0.1:0").await?;
        let mut random = Lcg(0x5eed);
        let started = Instant::now();
        let mut sent = 0;
        while sent < GARBAGE && started.elapsed() < GARBAGE_TIME {
            let length = random.below(1400);
            let datagram = match sent % 5 {
                0 => random.bytes(1 + length),
                // An ICE check naming a real session, with a forged MESSAGE-INTEGRITY.
                1 => stun_binding_request(&format!("{anh_ufrag}:evil"), &mut random),
                2 => stun_binding_request("nobody:evil", &mut random),
                // RTP-looking (version 2) and DTLS-looking (content type 22) noise.
                3 => [vec![0x80, 0x60], random.bytes(10 + length % 1000)].concat(),
                _ => [vec![22, 0xfe, 0xfd], random.bytes(10 + length % 300)].concat(),
            };
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

/// Datagrams the kernel dropped for the UDP socket bound to `port` (its receive buffer
/// was full), from /proc/net/udp, to tell loss in the server from loss elsewhere.
fn kernel_drops(port: u16) -> Option<u64> {
    let table = std::fs::read_to_string("/proc/net/udp").ok()?;
    let local = format!(":{port:04X}");
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let bound_here = fields
            .get(1)
            .is_some_and(|address| address.ends_with(&local));
        bound_here.then(|| fields.last()?.parse().ok()).flatten()
    })
}

/// The server's ICE username fragment in the answer it gave `client`.
fn server_ufrag(client: &TestClient) -> anyhow::Result<String> {
    let answers = client.messages_of_type("answer");
    let sdp = answers
        .first()
        .and_then(|m| m["sdp"].as_str())
        .context("no answer recorded")?;
    sdp.lines()
        .find_map(|line| line.trim().strip_prefix("a=ice-ufrag:"))
        .map(str::to_owned)
        .context("no ice-ufrag in the server's answer")
}

/// A well-formed STUN binding request (RFC 8489) for `username`, with a random
/// MESSAGE-INTEGRITY and a correct FINGERPRINT, so it passes parsing and reaches the
/// credential check, where it must fail.
fn stun_binding_request(username: &str, random: &mut Lcg) -> Vec<u8> {
    fn attribute(out: &mut Vec<u8>, kind: u16, value: &[u8]) {
        out.extend_from_slice(&kind.to_be_bytes());
        out.extend_from_slice(&(value.len() as u16).to_be_bytes());
        out.extend_from_slice(value);
        while !out.len().is_multiple_of(4) {
            out.push(0);
        }
    }
    let mut body = Vec::new();
    attribute(&mut body, 0x0006, username.as_bytes());
    attribute(&mut body, 0x0024, &random.bytes(4));
    attribute(&mut body, 0x802a, &random.bytes(8));
    attribute(&mut body, 0x0008, &random.bytes(20));
    let mut message = Vec::new();
    message.extend_from_slice(&0x0001u16.to_be_bytes());
    message.extend_from_slice(&((body.len() + 8) as u16).to_be_bytes());
    message.extend_from_slice(&0x2112_a442u32.to_be_bytes());
    message.extend_from_slice(&random.bytes(12));
    message.extend_from_slice(&body);
    let fingerprint = crc32(&message) ^ 0x5354_554e;
    attribute(&mut message, 0x8028, &fingerprint.to_be_bytes());
    message
}

/// CRC-32 (ISO-HDLC), as STUN's FINGERPRINT uses.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A small seeded generator: the same garbage every run.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

#[test]
fn crc32_matches_the_standard_check_value() {
    assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
}
