//! What a new peer costs the media thread: the CPU time of the core's `AddPeer` for a
//! browser-like offer (audio, and video in three simulcast layers), which every room's
//! packets wait behind while it runs.
//!
//! Most of it is str0m setting up the connection: its ICE agent, a DTLS certificate and
//! DTLS state, and the answer. Beside the core's own figure, the benchmark builds the
//! same connection with str0m's aws-lc crypto provider, which builds dimpl's
//! configuration (and checks the crypto library) anew for each peer, and with the core's
//! provider (`cau_sfu::crypto_provider`), which builds it once; rounds alternate, and the
//! figures are medians.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use cau_sfu::{Command, OfferSdp, PeerEvent, PeerId, RoomId, Sfu, SfuConfig, Subscriptions};
use serde_json::json;
use str0m::change::SdpOffer;
use str0m::config::CryptoProvider;
use str0m::media::{Direction, MediaKind, Simulcast, SimulcastLayer};
use str0m::{Rtc, RtcConfig};

use crate::floor::{median, round_to, thread_cpu_time};

/// No round may run longer than this, whatever the machine's load.
const ROUND_TIME_LIMIT: Duration = Duration::from_secs(30);

/// How the connection of a new peer is made in one measurement.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Way {
    /// str0m's own aws-lc provider: dimpl's configuration built per peer.
    Str0mProvider,
    /// The core's provider: dimpl's configuration built once.
    CauProvider,
    /// The whole of the core's `AddPeer`, answer included.
    CoreAddPeer,
}

const WAYS: [Way; 3] = [Way::Str0mProvider, Way::CauProvider, Way::CoreAddPeer];

/// Runs `cau-load peer-setup`: prints each round, the medians, and one line of JSON.
pub fn run(peers: usize, rounds: usize) -> anyhow::Result<()> {
    if peers == 0 || rounds == 0 {
        bail!("peer-setup needs at least one peer and one round");
    }
    let offer = browser_like_offer()?;
    println!(
        "peer-setup: a new peer from an offer of {} bytes (audio, video in 3 simulcast layers), {peers} peers per way and round, {rounds} rounds; this thread's CPU time",
        offer.len()
    );
    let mut per_way: [Vec<f64>; 3] = Default::default();
    for round in 0..rounds {
        let mut line = format!("  round {}:", round + 1);
        for step in 0..WAYS.len() {
            let way = WAYS[(round + step) % WAYS.len()];
            let us = measure(way, &offer, peers)?;
            per_way[WAYS.iter().position(|w| *w == way).unwrap_or(0)].push(us);
            line += &format!(" {way:?} {us:.0} us;");
        }
        println!("{line}");
    }
    let [str0m_us, cau_us, core_us] = per_way.map(|mut v| median(&mut v));
    println!(
        "peer-setup medians: connection with str0m's provider {str0m_us:.0} us, with the core's {cau_us:.0} us ({:.2}x); the core's whole AddPeer {core_us:.0} us per peer",
        cau_us / str0m_us
    );
    println!(
        "{}",
        json!({
            "benchmark": "peer-setup",
            "offer_bytes": offer.len(),
            "peers_per_way": peers,
            "rounds": rounds,
            "str0m_provider_us": round_to(str0m_us, 1),
            "cau_provider_us": round_to(cau_us, 1),
            "core_add_peer_us": round_to(core_us, 1),
        })
    );
    Ok(())
}

/// CPU microseconds per peer of making `peers` peers one way.
fn measure(way: Way, offer: &str, peers: usize) -> anyhow::Result<f64> {
    // Parsed first, as the sessions do before the media thread sees an offer.
    let mut parsed: Vec<OfferSdp> = Vec::new();
    let mut parsed_plain: Vec<SdpOffer> = Vec::new();
    for _ in 0..peers {
        match way {
            Way::CoreAddPeer => parsed.push(OfferSdp::parse(offer)),
            _ => parsed_plain
                .push(SdpOffer::from_sdp_string(offer).context("our own offer does not parse")?),
        }
    }
    // Kept until measured, as the media thread keeps its peers: dropping is not setting up.
    let mut made = Vec::new();
    let mut kept_core = None;
    let started = Instant::now();
    let before = thread_cpu_time()?;
    match way {
        Way::Str0mProvider | Way::CauProvider => {
            let provider = Arc::new(match way {
                Way::Str0mProvider => str0m::crypto::from_feature_flags(),
                _ => cau_sfu::crypto_provider(),
            });
            for offer in parsed_plain {
                made.push(connection(&provider, offer)?);
                if started.elapsed() > ROUND_TIME_LIMIT {
                    bail!("a round ran past {ROUND_TIME_LIMIT:?}");
                }
            }
        }
        Way::CoreAddPeer => {
            let mut core = Sfu::new(SfuConfig {
                candidate_addr: "127.0.0.1:5000".parse()?,
                tcp_candidate_addr: None,
                peer_timeout: Duration::from_secs(30),
                connect_timeout: Duration::from_secs(30),
                keyframe_request_interval: Duration::from_millis(500),
                link_stats_interval: Some(Duration::from_secs(1)),
                initial_estimate: None,
                loudest_audio: None,
            });
            let now = Instant::now();
            for (id, offer) in parsed.into_iter().enumerate() {
                core.handle_command(
                    Command::AddPeer {
                        peer: PeerId(id as u64),
                        room: RoomId(1),
                        offer,
                        audio_allowed: true,
                        subscriptions: Subscriptions::All,
                        screen_mid: None,
                    },
                    now,
                );
                if started.elapsed() > ROUND_TIME_LIMIT {
                    bail!("a round ran past {ROUND_TIME_LIMIT:?}");
                }
            }
            let mut answers = 0;
            while let Some((_, event)) = core.poll_event() {
                answers += usize::from(matches!(event, PeerEvent::Answer { .. }));
            }
            if answers != peers {
                bail!("the core answered {answers} of {peers} offers");
            }
            kept_core = Some(core);
        }
    }
    let cpu = thread_cpu_time()? - before;
    drop((made, kept_core));
    Ok(cpu.as_secs_f64() * 1e6 / peers as f64)
}

/// A server-side connection answering `offer`, configured as the core's are.
fn connection(provider: &Arc<CryptoProvider>, offer: SdpOffer) -> anyhow::Result<Rtc> {
    let mut rtc = RtcConfig::new()
        .set_crypto_provider(provider.clone())
        .set_rtp_mode(true)
        .set_ice_lite(true)
        .clear_codecs()
        .enable_opus(true, true)
        .enable_vp8(true)
        .build(Instant::now());
    rtc.sdp_api()
        .accept_offer(offer)
        .context("str0m refused the offer")?;
    Ok(rtc)
}

/// An offer like a browser's: audio, and video in three simulcast layers, from str0m.
fn browser_like_offer() -> anyhow::Result<String> {
    let mut rtc = Rtc::new(Instant::now());
    rtc.add_local_candidate(
        str0m::Candidate::host("127.0.0.1:40000".parse()?, "udp").context("a host candidate")?,
    );
    let mut change = rtc.sdp_api();
    change.add_media(MediaKind::Audio, Direction::SendOnly, None, None, None);
    let mut simulcast = Simulcast::new();
    for rid in ["l", "m", "h"] {
        simulcast.add_send_layer(SimulcastLayer::new(rid));
    }
    change.add_media(
        MediaKind::Video,
        Direction::SendOnly,
        None,
        None,
        Some(simulcast),
    );
    let (offer, _pending) = change.apply().context("an offer with no change")?;
    Ok(offer.to_sdp_string())
}
