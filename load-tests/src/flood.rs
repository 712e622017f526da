//! `cau-load flood`: the garbage rate the media port takes before a call suffers.
//!
//! Two webrtc-rs sites hold a call (audio and video, 50 packets a second each way) on a
//! server in this process, while sixteen sockets on addresses of their own send it the
//! hostile mix of `cau_tests::garbage` (random bytes, STUN checks with forged
//! credentials, RTP- and DTLS-looking noise), from two threads, at a rate that doubles
//! step after step.
//! Each step reports the call's loss; the run ends at the first step whose loss passes
//! 1%, or at the highest rate asked for. The sender competes with the server for the
//! same two cores, so the rate it reaches is reported beside the rate it aimed at.

use std::net::UdpSocket;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use cau_tests::client::{ClientConfig, MediaKind, TestClient, parse_tagged_payload, warm_up};
use cau_tests::garbage::{self, Lcg, kernel_drops};
use serde_json::json;

/// Loss above this ends the run: the bound for a call under a flood.
const LOSS_BOUND_PERCENT: f64 = 1.0;
/// Media packets a second, per kind and per site.
const MEDIA_RATE: u32 = 50;
/// Addresses the garbage comes from, 127.0.3.1 and up.
const SOURCES: u8 = 16;
/// Threads sending garbage, each with its share of the rate and of the addresses: one
/// thread alone reaches about 80,000 datagrams a second here.
const SENDER_THREADS: u8 = 2;
/// Distinct datagrams made before a step and sent round and round, so that making them
/// costs the sender nothing during the step.
const POOL: usize = 4096;
/// How long packets still on their way at the end of a step may take to arrive.
const GRACE: Duration = Duration::from_secs(1);

/// What one step measured.
struct Step {
    target_rate: u64,
    achieved_rate: f64,
    media_sent: u64,
    media_received: u64,
    kernel_drops: Option<u64>,
    counted_as_garbage: u64,
}

impl Step {
    fn loss_percent(&self) -> f64 {
        if self.media_sent == 0 {
            return 0.0;
        }
        100.0 * (self.media_sent - self.media_received.min(self.media_sent)) as f64
            / self.media_sent as f64
    }
}

/// Runs the steps: no garbage first, then `start_rate` datagrams a second, doubling up
/// to `max_rate`, each for `seconds`.
pub async fn flood(start_rate: u64, max_rate: u64, seconds: u64) -> anyhow::Result<()> {
    let server = cau_tests::server::start_test_server().await?;
    let media_addr = server.media_addr();
    let anh = TestClient::join(ClientConfig::new(server.ws_url(), "flood", "anh")).await?;
    let binh = TestClient::join(ClientConfig::new(server.ws_url(), "flood", "binh")).await?;
    warm_up(&[&anh, &binh], Duration::from_secs(10)).await?;
    let ufrag = anh
        .messages_of_type("answer")
        .first()
        .and_then(|answer| answer["sdp"].as_str().and_then(garbage::ice_ufrag))
        .map(str::to_owned)
        .context("no ice-ufrag in the server's answer")?;
    println!(
        "flood: a call of two sites on {media_addr}; garbage from {SOURCES} addresses, {seconds} s a step"
    );
    println!(
        "{:>10} {:>10} {:>8} {:>8} {:>8} {:>12} {:>12}",
        "target/s", "sent/s", "media", "lost", "loss %", "kernel drops", "as garbage"
    );

    let mut rates = vec![0];
    let mut rate = start_rate.max(1);
    while rate <= max_rate {
        rates.push(rate);
        rate *= 2;
    }
    let mut steps: Vec<Step> = Vec::new();
    for (index, &target_rate) in rates.iter().enumerate() {
        let drops_before = kernel_drops(media_addr.port());
        let stats_before = server.sfu_stats();
        let tag = format!("step{index}");
        let stop = Arc::new(AtomicBool::new(false));
        let senders: Vec<_> = (0..SENDER_THREADS)
            .map(|thread| {
                let (stop, ufrag) = (stop.clone(), ufrag.clone());
                let rate = target_rate / SENDER_THREADS as u64;
                std::thread::spawn(move || send_garbage(media_addr, &ufrag, thread, rate, &stop))
            })
            .collect();
        let media_sent = send_media(&[&anh, &binh], &tag, Duration::from_secs(seconds)).await?;
        stop.store(true, Ordering::Relaxed);
        let (mut datagrams, mut spent) = (0, Duration::ZERO);
        for sender in senders {
            let (sent, took) = sender
                .join()
                .map_err(|_| anyhow::anyhow!("a garbage sender panicked"))??;
            datagrams += sent;
            spent = spent.max(took);
        }
        tokio::time::sleep(GRACE).await;
        let media_received = received(&anh, &binh, &tag) + received(&binh, &anh, &tag);
        let stats_after = server.sfu_stats();
        let step = Step {
            target_rate,
            achieved_rate: datagrams as f64 / spent.as_secs_f64().max(1e-9),
            media_sent,
            media_received,
            kernel_drops: drops_before
                .zip(kernel_drops(media_addr.port()))
                .map(|(before, after)| after.saturating_sub(before)),
            counted_as_garbage: (stats_after.datagrams_malformed
                + stats_after.datagrams_unroutable)
                .saturating_sub(
                    stats_before.datagrams_malformed + stats_before.datagrams_unroutable,
                ),
        };
        println!(
            "{:>10} {:>10.0} {:>8} {:>8} {:>8.2} {:>12} {:>12}",
            step.target_rate,
            step.achieved_rate,
            step.media_sent,
            step.media_sent.saturating_sub(step.media_received),
            step.loss_percent(),
            step.kernel_drops
                .map_or_else(|| "?".to_owned(), |d| d.to_string()),
            step.counted_as_garbage,
        );
        let over = step.loss_percent() > LOSS_BOUND_PERCENT;
        steps.push(step);
        if over {
            break;
        }
        if server.peer_count() != 2 {
            println!(
                "the call lost a site ({} peers): stopping",
                server.peer_count()
            );
            break;
        }
    }

    let tolerated = steps
        .iter()
        .filter(|s| s.target_rate > 0 && s.loss_percent() <= LOSS_BOUND_PERCENT)
        .map(|s| s.achieved_rate)
        .fold(None, |best: Option<f64>, rate| {
            Some(best.map_or(rate, |b| b.max(rate)))
        });
    let failing = steps
        .iter()
        .find(|s| s.loss_percent() > LOSS_BOUND_PERCENT)
        .map(|s| s.achieved_rate);
    match (tolerated, failing) {
        (Some(ok), Some(bad)) => println!(
            "the call kept its loss within {LOSS_BOUND_PERCENT}% up to {ok:.0} garbage datagrams/s; at {bad:.0}/s it passed it"
        ),
        (Some(ok), None) => println!(
            "the call kept its loss within {LOSS_BOUND_PERCENT}% at every step, up to {ok:.0} garbage datagrams/s (the highest asked for or reached)"
        ),
        (None, _) => println!("the call lost more than {LOSS_BOUND_PERCENT}% at the first step"),
    }
    println!(
        "{}",
        json!({
            "benchmark": "flood",
            "seconds_per_step": seconds,
            "sources": SOURCES,
            "tolerated_datagrams_per_s": tolerated.map(|r| r.round()),
            "first_failing_datagrams_per_s": failing.map(|r| r.round()),
            "steps": steps.iter().map(|s| json!({
                "target_per_s": s.target_rate,
                "sent_per_s": s.achieved_rate.round(),
                "media_sent": s.media_sent,
                "media_received": s.media_received,
                "loss_percent": s.loss_percent(),
                "kernel_drops": s.kernel_drops,
                "counted_as_garbage": s.counted_as_garbage,
            })).collect::<Vec<_>>(),
        })
    );
    anh.leave().await?;
    binh.leave().await?;
    server.shutdown(Duration::from_secs(1)).await;
    Ok(())
}

/// Both sites send tagged audio and video at [`MEDIA_RATE`] for `duration`; returns the
/// packets sent in all.
async fn send_media(sites: &[&TestClient], tag: &str, duration: Duration) -> anyhow::Result<u64> {
    let mut ticks = tokio::time::interval(Duration::from_secs(1) / MEDIA_RATE);
    let count = (duration.as_secs_f64() * f64::from(MEDIA_RATE)) as u32;
    let mut sent = 0;
    for index in 0..count {
        ticks.tick().await;
        for site in sites {
            for kind in [MediaKind::Audio, MediaKind::Video] {
                site.send_tagged(tag, kind, index).await?;
                sent += 1;
            }
        }
    }
    Ok(sent)
}

/// Distinct intact packets `receiver` got from `sender` with `tag`, of both kinds.
fn received(receiver: &TestClient, sender: &TestClient, tag: &str) -> u64 {
    let mut seen = std::collections::HashSet::new();
    for packet in receiver.received() {
        if packet.from != sender.participant_id() {
            continue;
        }
        if let Some(tagged) = parse_tagged_payload(packet.kind, &packet.payload)
            && tagged.tag == tag
            && tagged.intact
        {
            seen.insert((packet.kind == MediaKind::Video, tagged.index));
        }
    }
    seen.len() as u64
}

/// Sends garbage at `rate` datagrams a second until `stop`; returns how many went out and
/// over how long. Paced by the clock: each millisecond it catches up with `rate` times the
/// time elapsed, so a slow moment is made up for rather than lost.
fn send_garbage(
    target: std::net::SocketAddr,
    ufrag: &str,
    thread: u8,
    rate: u64,
    stop: &AtomicBool,
) -> anyhow::Result<(u64, Duration)> {
    let sockets = (1..=SOURCES)
        .filter(|host| host % SENDER_THREADS == thread)
        .map(|host| UdpSocket::bind(("127.0.3.".to_owned() + &host.to_string(), 0)))
        .collect::<Result<Vec<_>, _>>()
        .context("binding the garbage sockets")?;
    let mut random = Lcg(0x5eed + u64::from(thread));
    let pool: Vec<Vec<u8>> = (0..POOL as u64)
        .map(|index| garbage::datagram(index, ufrag, &mut random))
        .collect();
    let started = Instant::now();
    let mut sent: u64 = 0;
    while !stop.load(Ordering::Relaxed) {
        let due = (started.elapsed().as_secs_f64() * rate as f64) as u64;
        while sent < due && !stop.load(Ordering::Relaxed) {
            let datagram = &pool[sent as usize % POOL];
            let socket = &sockets[sent as usize % sockets.len()];
            // A full send buffer refuses some: the flood goes on regardless.
            let _ = socket.send_to(datagram, target);
            sent += 1;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok((sent, started.elapsed()))
}
