//! `janus-compare`: the same scenario on Cầu and on Janus's VideoRoom, alternated over
//! several rounds in one run on this machine, with the floor measured in the same run.
//!
//! Janus (libnice) gathers no candidate on loopback, so the whole comparison runs in a
//! network namespace the tool makes for itself: the command re-runs itself in a child
//! made with `unshare(CLONE_NEWNET)` (before that child has a thread), which brings `lo`
//! up and adds a veth pair with 10.255.0.1, an address that exists only in that
//! namespace. Janus and its clients use 10.255.0.1, Cầu and its clients 127.0.0.1; both
//! are local addresses, so both servers' packets take the loopback path.
//!
//! Both servers get the same sites, the same synthetic publishers (`media::publish`) and
//! the same receivers' tally, and each receiver is subscribed on Janus to exactly the
//! streams the scenario says Cầu sends it. A Janus site is two peer connections (its
//! publisher handle and one multistream subscriber handle); a Cầu site is one. The
//! figure is the server process's CPU time over the window (`/proc/PID/stat`, all
//! threads) divided by the packets the subscribers received in that window, counted the
//! same way for both servers. Latency is end to end from the stamps, and "added" is the
//! SFU path minus a direct webrtc-rs path sending beside it in the same window.
//!
//! Janus's configuration is generated at run time from the installed package's
//! (`/etc/janus`); nothing of Janus is part of this repository.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use cau_tests::client::{LayerSend, MediaKind, loopback_peer_connection};
use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use webrtc::peer_connection::{
    PeerConnection, RTCIceCandidateInit, RTCPeerConnectionState, RTCSessionDescription,
};

use crate::all_hands::{Baseline, CauRun, print_delivery, today, write_json};
use crate::cau::ClientKind;
use crate::direct::{Handler, Track};
use crate::figures::{Delivery, round3};
use crate::floor::{FloorConfig, FloorFigures};
use crate::media::{MediaOutput, MediaPlan, Receiver, publish};
use crate::scenario::Scenario;
use crate::server::{ServeOptions, ServerProcess, cpu_seconds};
use crate::{cau, media};

/// The address Janus and its clients use: on the namespace's veth, so libnice gathers it.
const JANUS_IP: Ipv4Addr = Ipv4Addr::new(10, 255, 0, 1);
/// Janus's WebSocket transport, on [`JANUS_IP`].
const JANUS_WS_PORT: u16 = 8188;
/// How long Janus gets to open its WebSocket port.
const JANUS_START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long any one Janus request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a peer connection gets to connect.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
/// Sites joined at once.
const JOIN_BATCH: usize = 8;
/// Where the installed package keeps its configuration, copied and edited per run.
const JANUS_CONFIG: &str = "/etc/janus";
const JANUS_PLUGINS: &str = "/usr/lib/x86_64-linux-gnu/janus/plugins";
const JANUS_TRANSPORTS: &str = "/usr/lib/x86_64-linux-gnu/janus/transports";

/// What the command line sets.
#[derive(Debug, Clone)]
pub struct Options {
    pub communes: usize,
    pub seconds: u64,
    pub rounds: usize,
    pub baseline_pairs: usize,
    pub plan: MediaPlan,
    pub json: Option<PathBuf>,
    /// Set in the child that runs inside the namespace.
    pub inside_namespace: bool,
}

/// Runs `cau-load janus-compare`: outside the namespace, re-runs itself inside a new one.
pub async fn run(options: Options) -> anyhow::Result<()> {
    if !options.inside_namespace {
        return run_in_new_namespace().await;
    }
    compare(options).await
}

/// Starts this same command again with `--inside-namespace`, in a network namespace of
/// its own, and waits for it.
async fn run_in_new_namespace() -> anyhow::Result<()> {
    let mut command = tokio::process::Command::new(std::env::current_exe()?);
    command
        .args(std::env::args_os().skip(1))
        .arg("--inside-namespace")
        .kill_on_drop(true);
    // SAFETY: between fork and exec the child only calls unshare, which is
    // async-signal-safe and allocates nothing. The child is single-threaded there, so
    // the new namespace is the whole process's, and every thread and child it starts
    // after exec inherits it.
    unsafe {
        command.pre_exec(|| {
            if libc::unshare(libc::CLONE_NEWNET) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let status = command
        .status()
        .await
        .context("cannot start the benchmark in a network namespace of its own (needs root)")?;
    if !status.success() {
        bail!("janus-compare failed inside its namespace ({status})");
    }
    Ok(())
}

/// The namespace's network: loopback up, and a veth pair whose one end has [`JANUS_IP`].
fn set_up_network() -> anyhow::Result<()> {
    let ip = |args: &[&str]| -> anyhow::Result<()> {
        let output = std::process::Command::new("ip")
            .args(args)
            .output()
            .context("cannot run ip")?;
        if !output.status.success() {
            bail!(
                "ip {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(())
    };
    ip(&["link", "set", "lo", "up"])?;
    // Fails if v0 exists, which it cannot in a fresh namespace: a guard against running
    // this part anywhere else.
    ip(&["link", "add", "v0", "type", "veth", "peer", "name", "v1"])?;
    ip(&["addr", "add", &format!("{JANUS_IP}/32"), "dev", "v0"])?;
    ip(&["link", "set", "v0", "up"])?;
    ip(&["link", "set", "v1", "up"])?;
    Ok(())
}

/// Which server a round ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Server {
    Cau,
    Janus,
}

/// The figures of one server in one round.
#[derive(Debug, Clone, Serialize)]
struct RoundFigures {
    server: Server,
    round: usize,
    window_s: f64,
    cpu_s: f64,
    /// Packets the subscribers received in the window, on the streams they should get:
    /// the forwarded packets, counted the same way for both servers.
    received_packets: u64,
    cpu_us_per_received: f64,
    /// Cầu's own count of forwarded packets over the window, as a cross-check.
    server_counted_forwarded: Option<u64>,
    /// Datagrams the kernel dropped in the window because a socket's receive queue was
    /// full (`RcvbufErrors` of the namespace's /proc/net/snmp): the server's or a
    /// client's, so loss there is queueing at a receiver, not the network.
    receive_queue_drops: u64,
    added_latency_p50_ms: f64,
    added_latency_p99_ms: f64,
    sfu_path: Delivery,
    direct_path: Delivery,
}

/// What the JSON result holds.
#[derive(Debug, Serialize)]
struct Report {
    benchmark: &'static str,
    date: String,
    sites: usize,
    video_down_tracks: usize,
    audio_down_tracks: usize,
    window_s: u64,
    floor_us: FloorJson,
    rounds: Vec<RoundFigures>,
    median_cau_us_per_packet: f64,
    median_janus_us_per_packet: f64,
    /// Median of the per-round ratios Cầu / Janus of CPU per received packet.
    cpu_ratio_cau_to_janus: f64,
    cau_to_floor_one_send: f64,
    cau_to_floor_gso32: f64,
    median_cau_added_p50_ms: f64,
    median_cau_added_p99_ms: f64,
    median_janus_added_p50_ms: f64,
    median_janus_added_p99_ms: f64,
}

#[derive(Debug, Serialize)]
struct FloorJson {
    protect_send: f64,
    protect_gso32: f64,
}

async fn compare(options: Options) -> anyhow::Result<()> {
    set_up_network()?;
    let janus_version = janus_version()?;
    // Cầu's seed directory names the sites on both servers (on Janus, only as labels).
    let scenario = Scenario::all_hands(&seed_directory().await?, options.communes)?;
    eprintln!(
        "janus-compare: {} sites, {} video and {} audio down-tracks per round",
        scenario.sites.len(),
        scenario.down_tracks(MediaKind::Video),
        scenario.down_tracks(MediaKind::Audio)
    );
    // The floor first, on a quiet machine, in this same run.
    let floor = tokio::task::spawn_blocking(|| {
        crate::floor::measure(
            FloorConfig {
                packets: 20_000,
                rounds: 5,
            },
            false,
        )
    })
    .await??;
    crate::floor::print_summary(&floor);

    let mut rounds = Vec::new();
    for round in 0..options.rounds {
        // Alternate which server goes first, so drift in the machine's load favours neither.
        let order = if round % 2 == 0 {
            [Server::Cau, Server::Janus]
        } else {
            [Server::Janus, Server::Cau]
        };
        for server in order {
            eprintln!("round {} of {}: {server:?}", round + 1, options.rounds);
            let figures = match server {
                Server::Cau => cau_round(&options, round).await,
                Server::Janus => janus_round(&options, &scenario, round).await,
            }
            .with_context(|| format!("round {} on {server:?}", round + 1))?;
            println!(
                "  round {} {:>5}: {:.2} s CPU in {:.1} s, {} packets received by subscribers, {:.2} us CPU per packet{}; added latency p50 {:.2} ms, p99 {:.2} ms; loss {:.3}%; {} datagrams dropped at full receive queues",
                round + 1,
                format!("{server:?}"),
                figures.cpu_s,
                figures.window_s,
                figures.received_packets,
                figures.cpu_us_per_received,
                figures
                    .server_counted_forwarded
                    .map(|n| format!(" (server's own count: {n} forwarded)"))
                    .unwrap_or_default(),
                figures.added_latency_p50_ms,
                figures.added_latency_p99_ms,
                figures.sfu_path.loss_percent,
                figures.receive_queue_drops,
            );
            rounds.push(figures);
        }
    }
    let report = summarize(&options, &scenario, floor, rounds)?;
    print_summary(&report, &janus_version);
    write_json(&options.json, &report)?;
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

fn summarize(
    options: &Options,
    scenario: &Scenario,
    floor: FloorFigures,
    rounds: Vec<RoundFigures>,
) -> anyhow::Result<Report> {
    let of = |server: Server, value: fn(&RoundFigures) -> f64| -> Vec<f64> {
        rounds
            .iter()
            .filter(|r| r.server == server)
            .map(value)
            .collect()
    };
    let cau = of(Server::Cau, |r| r.cpu_us_per_received);
    let janus = of(Server::Janus, |r| r.cpu_us_per_received);
    let mut ratios: Vec<f64> = cau.iter().zip(&janus).map(|(c, j)| c / j).collect();
    let median_cau = median(&mut cau.clone());
    if rounds.is_empty() {
        bail!("no rounds");
    }
    Ok(Report {
        benchmark: "janus-compare",
        date: today(),
        sites: scenario.sites.len(),
        video_down_tracks: scenario.down_tracks(MediaKind::Video),
        audio_down_tracks: scenario.down_tracks(MediaKind::Audio),
        window_s: options.seconds,
        floor_us: FloorJson {
            protect_send: round3(floor.protect_send_us),
            protect_gso32: round3(floor.protect_gso_us),
        },
        median_cau_us_per_packet: round3(median_cau),
        median_janus_us_per_packet: round3(median(&mut janus.clone())),
        cpu_ratio_cau_to_janus: round3(median(&mut ratios)),
        cau_to_floor_one_send: round3(median_cau / floor.protect_send_us),
        cau_to_floor_gso32: round3(median_cau / floor.protect_gso_us),
        median_cau_added_p50_ms: round3(median(&mut of(Server::Cau, |r| r.added_latency_p50_ms))),
        median_cau_added_p99_ms: round3(median(&mut of(Server::Cau, |r| r.added_latency_p99_ms))),
        median_janus_added_p50_ms: round3(median(&mut of(Server::Janus, |r| {
            r.added_latency_p50_ms
        }))),
        median_janus_added_p99_ms: round3(median(&mut of(Server::Janus, |r| {
            r.added_latency_p99_ms
        }))),
        rounds,
    })
}

fn print_summary(report: &Report, janus_version: &str) {
    println!(
        "janus-compare, {} sites ({} rounds of {} s windows), Cầu vs {janus_version}, same clients, same machine:",
        report.sites,
        report.rounds.len() / 2,
        report.window_s
    );
    for round in &report.rounds {
        print_delivery(
            &format!("{:?} r{}", round.server, round.round + 1),
            &round.sfu_path,
        );
    }
    println!(
        "  CPU per packet received by subscribers (medians): Cầu {:.2} us, Janus {:.2} us; median per-round ratio Cầu/Janus {:.3} (target <= 0.2)",
        report.median_cau_us_per_packet,
        report.median_janus_us_per_packet,
        report.cpu_ratio_cau_to_janus
    );
    println!(
        "  floor in this run: {:.2} us (protect + one send), {:.2} us (GSO-32); Cầu / floor = {:.2} (target <= 2), {:.2} against GSO",
        report.floor_us.protect_send,
        report.floor_us.protect_gso32,
        report.cau_to_floor_one_send,
        report.cau_to_floor_gso32
    );
    println!(
        "  added latency (medians of rounds): Cầu p50 {:.2} ms / p99 {:.2} ms; Janus p50 {:.2} ms / p99 {:.2} ms",
        report.median_cau_added_p50_ms,
        report.median_cau_added_p99_ms,
        report.median_janus_added_p50_ms,
        report.median_janus_added_p99_ms
    );
}

/// The Janus package's version, for the report.
fn janus_version() -> anyhow::Result<String> {
    let output = std::process::Command::new("janus")
        .arg("--version")
        .output()
        .context("janus is not installed: apt-get install -y janus")?;
    let text = String::from_utf8_lossy(&output.stdout);
    Ok(text
        .lines()
        .find(|line| line.to_lowercase().contains("janus"))
        .unwrap_or("Janus")
        .trim()
        .to_owned())
}

/// Sites, publishers, receivers and the window, whichever server carries them.
struct Load {
    run: CauRun,
    baseline: Option<Baseline>,
    until: Instant,
}

/// One round on Cầu: a fresh server process, the scenario scheduled and joined through
/// the real signaling protocol, the chair's floor and layout.
async fn cau_round(options: &Options, round: usize) -> anyhow::Result<RoundFigures> {
    let server = ServerProcess::start(&ServeOptions::default()).await?;
    let directory = cau::directory(server.http_addr).await?;
    let scenario = Scenario::all_hands(&directory, options.communes)?;
    let tokens = cau::schedule(server.http_addr, &scenario).await?;
    let until = Instant::now() + Duration::from_secs(options.seconds + 240);
    let mut run = CauRun::new(scenario, ClientKind::WebrtcRs);
    run.join_in_batches(&server.ws_url, &tokens, &options.plan, until, JOIN_BATCH)
        .await?;
    cau::chair_arranges(run.chair_client()?, &run.scenario).await?;
    let mut load = Load {
        run,
        baseline: None,
        until,
    };
    let forwarded_before = server.packets_forwarded();
    let measured = measure(options, &mut load, server.pid, Some(forwarded_before)).await;
    let forwarded_after = server.packets_forwarded().await;
    if let Some(baseline) = load.baseline.take() {
        baseline.finish().await;
    }
    load.run.finish().await;
    server.stop().await?;
    let (mut figures, before) = measured?;
    figures.server = Server::Cau;
    figures.round = round;
    if let (Some(before), Ok(after)) = (before, forwarded_after) {
        figures.server_counted_forwarded = Some(after.saturating_sub(before));
    }
    Ok(figures)
}

/// Waits for every stream, starts the baseline, and measures the server `pid` over the
/// window. `forwarded` reads Cầu's own counter at the window's start.
async fn measure(
    options: &Options,
    load: &mut Load,
    pid: u32,
    forwarded: Option<impl Future<Output = anyhow::Result<u64>>>,
) -> anyhow::Result<(RoundFigures, Option<u64>)> {
    load.run
        .wait_for_all_streams(Duration::from_secs(90))
        .await?;
    load.baseline = Some(
        Baseline::start(
            options.baseline_pairs,
            &options.plan,
            load.run.window.clone(),
            load.until,
        )
        .await?,
    );
    // Let the baseline's first keyframe and any renegotiation settle.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let forwarded_before = match forwarded {
        Some(read) => Some(read.await?),
        None => None,
    };
    let cpu_before = cpu_seconds(pid)?;
    let drops_before = receive_queue_drops()?;
    let started = Instant::now();
    load.run.window.open();
    for second in 1..=options.seconds {
        tokio::time::sleep(Duration::from_secs(1)).await;
        if second % 5 == 0 {
            eprintln!(
                "  {second}/{} s: server {:.2} cores",
                options.seconds,
                (cpu_seconds(pid)? - cpu_before) / started.elapsed().as_secs_f64()
            );
        }
    }
    load.run.window.close();
    let cpu_s = cpu_seconds(pid)? - cpu_before;
    let receive_queue_drops = receive_queue_drops()?.saturating_sub(drops_before);
    let window_s = started.elapsed().as_secs_f64();
    // Packets sent just before the window closed are still on their way.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let sfu_path = load.run.delivery();
    let direct_path = load
        .baseline
        .as_ref()
        .map(Baseline::delivery)
        .unwrap_or_default();
    let received_packets = sfu_path.received_packets;
    if received_packets == 0 {
        bail!("no media arrived through the server in the window");
    }
    Ok((
        RoundFigures {
            server: Server::Cau,
            round: 0,
            window_s: round3(window_s),
            cpu_s: round3(cpu_s),
            received_packets,
            cpu_us_per_received: round3(cpu_s / received_packets as f64 * 1e6),
            server_counted_forwarded: None,
            receive_queue_drops,
            added_latency_p50_ms: round3(sfu_path.latency.p50_ms - direct_path.latency.p50_ms),
            added_latency_p99_ms: round3(sfu_path.latency.p99_ms - direct_path.latency.p99_ms),
            sfu_path,
            direct_path,
        },
        forwarded_before,
    ))
}

/// UDP datagrams dropped for a full receive queue so far, in this network namespace.
fn receive_queue_drops() -> anyhow::Result<u64> {
    let snmp = std::fs::read_to_string("/proc/net/snmp")?;
    let mut udp = snmp.lines().filter(|line| line.starts_with("Udp:"));
    let (names, values) = (udp.next(), udp.next());
    let (Some(names), Some(values)) = (names, values) else {
        bail!("no Udp lines in /proc/net/snmp");
    };
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(name, _)| *name == "RcvbufErrors")
        .and_then(|(_, value)| value.parse().ok())
        .context("no RcvbufErrors in /proc/net/snmp")
}

/// One round on Janus: a fresh Janus process, a room for the scenario's sites, each
/// site's publisher, then each site's subscription to exactly its expected streams.
async fn janus_round(
    options: &Options,
    scenario: &Scenario,
    round: usize,
) -> anyhow::Result<RoundFigures> {
    let janus = JanusProcess::start().await?;
    let scenario = scenario.clone();
    let sites = scenario.sites.len();
    let until = Instant::now() + Duration::from_secs(options.seconds + 240);
    let mut run = CauRun::new(scenario, ClientKind::WebrtcRs);
    let url = format!("ws://{JANUS_IP}:{JANUS_WS_PORT}");

    // A room of our own: the demo room 1234 takes only six publishers.
    let room: u64 = 4321;
    let admin = JanusSession::connect(&url).await?;
    let handle = admin.attach().await?;
    let created = admin
        .message(
            handle,
            json!({
                "request": "create", "room": room, "publishers": sites + 4,
                "audiocodec": "opus", "videocodec": "vp8", "bitrate": 0,
                "description": "cau-load janus-compare",
            }),
            None,
        )
        .await?;
    plugin_data(&created)?;

    let mut publishers: Vec<Option<JanusSite>> = (0..sites).map(|_| None).collect();
    for batch in (0..sites).collect::<Vec<_>>().chunks(JOIN_BATCH) {
        let joins = batch.iter().map(|&i| {
            let (url, name) = (url.clone(), run.scenario.sites[i].code.clone());
            async move { JanusSite::publish(&url, room, &name).await }
        });
        for (&i, site) in batch
            .iter()
            .zip(futures_util::future::join_all(joins).await)
        {
            let site = site.with_context(|| format!("{} publishing on Janus", i))?;
            let (output, window, counters) = (
                site.output.clone(),
                run.window.clone(),
                run.counters[i].clone(),
            );
            // What the site publishes, as `CauRun::start_publishing` decides it.
            let mut plan = options.plan.clone();
            plan.audio &= run.scenario.sites[i].audio;
            if !run.scenario.sites[i].video {
                plan.video.clear();
            }
            let phase = media::TICK.mul_f64((i * 7 % 20) as f64 / 20.0);
            run.publishers.push(tokio::spawn(async move {
                publish(&*output, i as u16, &plan, &window, &counters, phase, until).await;
            }));
            publishers[i] = Some(site);
        }
        eprintln!(
            "  {} of {sites} publishers up on Janus",
            publishers.iter().flatten().count()
        );
    }
    let publishers: Vec<JanusSite> = publishers.into_iter().flatten().collect();
    // Subscriptions, once every publisher is up (Janus answers `No such feed` before).
    let feeds: Vec<(u64, String, String)> = publishers
        .iter()
        .map(|p| (p.feed, p.audio_mid.clone(), p.video_mid.clone()))
        .collect();
    let mut subscribers = Vec::new();
    for batch in (0..sites).collect::<Vec<_>>().chunks(JOIN_BATCH) {
        let joins = batch.iter().map(|&i| {
            let streams: Vec<Value> = run
                .scenario
                .expected_by(i)
                .map(|e| {
                    let (feed, audio, video) = &feeds[e.publisher];
                    let mid = match e.kind {
                        MediaKind::Audio => audio,
                        MediaKind::Video => video,
                    };
                    json!({"feed": feed, "mid": mid})
                })
                .collect();
            let (session, receiver) = (publishers[i].session.clone(), run.receivers[i].clone());
            async move { subscribe(&session, room, streams, receiver).await }
        });
        for subscriber in futures_util::future::join_all(joins).await {
            subscribers.push(subscriber?);
        }
    }
    eprintln!("  {sites} subscribers up on Janus");
    let mut load = Load {
        run,
        baseline: None,
        until,
    };
    let none: Option<std::future::Ready<anyhow::Result<u64>>> = None;
    let measured = measure(options, &mut load, janus.pid, none).await;
    if let Some(baseline) = load.baseline.take() {
        baseline.finish().await;
    }
    for publisher in &load.run.publishers {
        publisher.abort();
    }
    for connection in subscribers
        .iter()
        .chain(publishers.iter().map(|p| &p.connection))
    {
        let _ = connection.close().await;
    }
    drop(admin);
    janus.stop().await;
    let (mut figures, _) = measured?;
    figures.server = Server::Janus;
    figures.round = round;
    Ok(figures)
}

/// The site directory of Cầu's seed, read from a short-lived server.
async fn seed_directory() -> anyhow::Result<Vec<crate::scenario::DirectoryEntry>> {
    let server = ServerProcess::start(&ServeOptions::default()).await?;
    let directory = cau::directory(server.http_addr).await;
    server.stop().await?;
    directory
}

/// Janus in a process of its own, on a configuration generated from the package's.
struct JanusProcess {
    child: tokio::process::Child,
    pid: u32,
    folder: PathBuf,
}

impl JanusProcess {
    async fn start() -> anyhow::Result<JanusProcess> {
        let folder = std::env::temp_dir().join(format!("cau-janus-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&folder);
        std::fs::create_dir_all(&folder)?;
        write_janus_config(&folder)?;
        let child = tokio::process::Command::new("janus")
            .arg("-F")
            .arg(&folder)
            .arg("-C")
            .arg(folder.join("janus.jcfg"))
            .args(["-o", "-N", "-L"])
            .arg(folder.join("janus.log"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("cannot start janus: apt-get install -y janus")?;
        let pid = child.id().context("janus has no process id")?;
        let mut process = JanusProcess { child, pid, folder };
        let deadline = Instant::now() + JANUS_START_TIMEOUT;
        let address = SocketAddr::from((JANUS_IP, JANUS_WS_PORT));
        while tokio::net::TcpStream::connect(address).await.is_err() {
            if let Ok(Some(status)) = process.child.try_wait() {
                bail!(
                    "janus exited at start ({status}); see {}",
                    process.folder.join("janus.log").display()
                );
            }
            if Instant::now() > deadline {
                bail!("janus did not open {address} within {JANUS_START_TIMEOUT:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(process)
    }

    async fn stop(mut self) {
        let _ = self.child.kill().await;
        let _ = std::fs::remove_dir_all(&self.folder);
    }
}

/// Copies the package's configuration into `folder` with what this benchmark needs:
/// the VideoRoom plugin and the WebSocket transport only, on [`JANUS_IP`], candidates
/// gathered on the veth only, warnings-only logging (as Cầu's), and no session timeout
/// (a round's sessions idle on signaling for longer than the default 60 s).
fn write_janus_config(folder: &Path) -> anyhow::Result<()> {
    let source = Path::new(JANUS_CONFIG);
    let others = |dir: &str, keep: &str| -> anyhow::Result<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .with_context(|| format!("reading {dir}"))?
            .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
            .filter(|name| name.ends_with(".so") && name != keep)
            .collect();
        names.sort();
        Ok(names.join(","))
    };
    let edit = |file: &str, edits: &[(&str, String)]| -> anyhow::Result<()> {
        let mut text = std::fs::read_to_string(source.join(file))
            .with_context(|| format!("reading {JANUS_CONFIG}/{file}"))?;
        for (from, to) in edits {
            if text.matches(from).count() != 1 {
                bail!("{JANUS_CONFIG}/{file} has not exactly one `{from}`: another Janus version?");
            }
            text = text.replace(from, to);
        }
        std::fs::write(folder.join(file), text)?;
        Ok(())
    };
    edit(
        "janus.jcfg",
        &[
            (
                "configs_folder = \"/etc/janus\"",
                format!("configs_folder = \"{}\"", folder.display()),
            ),
            ("debug_level = 4", "debug_level = 3".into()),
            ("#session_timeout = 60", "session_timeout = 0".into()),
            (
                "#rtp_port_range = \"20000-40000\"",
                "rtp_port_range = \"20000-40000\"".into(),
            ),
            (
                "ice_ignore_list = \"vmnet\"",
                "ice_enforce_list = \"v0\"".into(),
            ),
            (
                "#disable = \"libjanus_voicemail.so,libjanus_recordplay.so\"",
                format!(
                    "disable = \"{}\"",
                    others(JANUS_PLUGINS, "libjanus_videoroom.so")?
                ),
            ),
            (
                "#disable = \"libjanus_rabbitmq.so\"",
                format!(
                    "disable = \"{}\"",
                    others(JANUS_TRANSPORTS, "libjanus_websockets.so")?
                ),
            ),
            (
                "#disable = \"libjanus_jsonlog.so\"",
                "disable = \"libjanus_jsonlog.so\"".into(),
            ),
        ],
    )?;
    edit(
        "janus.transport.websockets.jcfg",
        &[(
            "#ws_ip = \"192.168.0.1\"",
            format!("ws_ip = \"{JANUS_IP}\""),
        )],
    )?;
    edit("janus.plugin.videoroom.jcfg", &[])?;
    Ok(())
}

/// A Janus session over its own WebSocket: requests matched to answers by transaction.
#[derive(Clone)]
struct JanusSession {
    inner: Arc<SessionInner>,
}

struct SessionInner {
    id: u64,
    outgoing: mpsc::UnboundedSender<Message>,
    pending: Arc<Mutex<HashMap<String, oneshot::Sender<Value>>>>,
    next_transaction: AtomicU64,
    reader: JoinHandle<()>,
    writer: JoinHandle<()>,
}

impl Drop for SessionInner {
    fn drop(&mut self) {
        self.reader.abort();
        self.writer.abort();
    }
}

impl JanusSession {
    async fn connect(url: &str) -> anyhow::Result<JanusSession> {
        let mut request = url.into_client_request()?;
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_static("janus-protocol"),
        );
        let (socket, _) = tokio_tungstenite::connect_async(request)
            .await
            .with_context(|| format!("cannot open Janus's WebSocket at {url}"))?;
        let (mut sink, mut stream) = socket.split();
        let (outgoing, mut outgoing_rx) = mpsc::unbounded_channel::<Message>();
        let writer = tokio::spawn(async move {
            while let Some(message) = outgoing_rx.recv().await {
                if sink.send(message).await.is_err() {
                    break;
                }
            }
        });
        let pending: Arc<Mutex<HashMap<String, oneshot::Sender<Value>>>> = Arc::default();
        let reader = tokio::spawn({
            let pending = pending.clone();
            async move {
                while let Some(Ok(message)) = stream.next().await {
                    let Message::Text(text) = message else {
                        continue;
                    };
                    let Ok(value) = serde_json::from_str::<Value>(&text) else {
                        continue;
                    };
                    // An `ack` only says the request was taken; the answer follows with
                    // the same transaction.
                    if value["janus"] == "ack" {
                        continue;
                    }
                    let Some(transaction) = value["transaction"].as_str() else {
                        continue;
                    };
                    let waiter = pending
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .remove(transaction);
                    if let Some(waiter) = waiter {
                        let _ = waiter.send(value);
                    }
                }
            }
        });
        let mut session = SessionInner {
            id: 0,
            outgoing,
            pending,
            next_transaction: AtomicU64::new(1),
            reader,
            writer,
        };
        let created = session.request(json!({"janus": "create"})).await?;
        session.id = created["data"]["id"]
            .as_u64()
            .context("Janus created a session without id")?;
        Ok(JanusSession {
            inner: Arc::new(session),
        })
    }

    /// Attaches a VideoRoom handle.
    async fn attach(&self) -> anyhow::Result<u64> {
        let attached = self
            .inner
            .request(json!({"janus": "attach", "plugin": "janus.plugin.videoroom"}))
            .await?;
        attached["data"]["id"]
            .as_u64()
            .context("Janus attached a handle without id")
    }

    /// A plugin request on `handle`, with an optional JSEP; returns the plugin's event.
    async fn message(
        &self,
        handle: u64,
        body: Value,
        jsep: Option<Value>,
    ) -> anyhow::Result<Value> {
        let mut request = json!({"janus": "message", "handle_id": handle, "body": body});
        if let Some(jsep) = jsep {
            request["jsep"] = jsep;
        }
        self.inner.request(request).await
    }

    /// Sends our ICE candidates on `handle` as they come, then `completed`.
    fn trickle(&self, handle: u64, mut candidates: mpsc::UnboundedReceiver<RTCIceCandidateInit>) {
        let session = self.clone();
        tokio::spawn(async move {
            while let Some(candidate) = candidates.recv().await {
                let message = json!({
                    "janus": "trickle", "session_id": session.inner.id, "handle_id": handle,
                    "transaction": "trickle",
                    "candidate": {
                        "candidate": candidate.candidate,
                        "sdpMid": candidate.sdp_mid,
                        "sdpMLineIndex": candidate.sdp_mline_index,
                    },
                });
                if session
                    .inner
                    .outgoing
                    .send(Message::text(message.to_string()))
                    .is_err()
                {
                    break;
                }
            }
        });
    }
}

impl SessionInner {
    /// Sends `request` with a fresh transaction (and the session, once there is one) and
    /// waits for its answer; Janus's errors become errors.
    async fn request(&self, mut request: Value) -> anyhow::Result<Value> {
        let transaction = format!("t{}", self.next_transaction.fetch_add(1, Ordering::Relaxed));
        request["transaction"] = Value::String(transaction.clone());
        if self.id != 0 {
            request["session_id"] = json!(self.id);
        }
        let (answer_tx, answer_rx) = oneshot::channel();
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(transaction, answer_tx);
        self.outgoing
            .send(Message::text(request.to_string()))
            .context("Janus's WebSocket closed")?;
        let answer = tokio::time::timeout(REQUEST_TIMEOUT, answer_rx)
            .await
            .with_context(|| format!("Janus did not answer {request}"))?
            .context("Janus's WebSocket closed")?;
        if answer["janus"] == "error" {
            bail!("Janus refused {}: {}", request["janus"], answer["error"]);
        }
        Ok(answer)
    }
}

/// The VideoRoom's answer inside a plugin event, or its error.
fn plugin_data(event: &Value) -> anyhow::Result<&Value> {
    let data = &event["plugindata"]["data"];
    if let Some(error) = data.get("error") {
        bail!("VideoRoom error {}: {error}", data["error_code"]);
    }
    if data.is_null() {
        bail!("a Janus event without plugin data: {event}");
    }
    Ok(data)
}

/// A site on Janus: its session and its publisher's connection and tracks.
struct JanusSite {
    session: JanusSession,
    connection: Arc<dyn PeerConnection>,
    output: Arc<JanusOutput>,
    /// The publisher's id in the room, which subscribers name as `feed`.
    feed: u64,
    audio_mid: String,
    video_mid: String,
}

impl JanusSite {
    /// Joins `room` as a publisher and sends an offer with one audio and one video track;
    /// returns once the connection is up.
    async fn publish(url: &str, room: u64, name: &str) -> anyhow::Result<JanusSite> {
        let session = JanusSession::connect(url).await?;
        let handle = session.attach().await?;
        let joined = session
            .message(
                handle,
                json!({"request": "join", "ptype": "publisher", "room": room, "display": name}),
                None,
            )
            .await?;
        let feed = plugin_data(&joined)?["id"]
            .as_u64()
            .context("joined without a publisher id")?;
        let (candidates, candidates_rx) = mpsc::unbounded_channel();
        let (state, mut state_rx) = watch::channel(RTCPeerConnectionState::New);
        let connection = loopback_peer_connection(
            Arc::new(Handler {
                candidates,
                state,
                receiver: None,
            }),
            JANUS_IP,
        )
        .await?;
        let audio = add_track(&connection, MediaKind::Audio, name).await?;
        let video = add_track(&connection, MediaKind::Video, name).await?;
        let offer = connection.create_offer(None).await?;
        connection.set_local_description(offer).await?;
        let offer = connection
            .local_description()
            .await
            .context("no local offer")?;
        let (audio_mid, video_mid) = mids_by_kind(&offer.sdp)?;
        let configured = session
            .message(
                handle,
                json!({"request": "configure", "audio": true, "video": true}),
                Some(json!({"type": "offer", "sdp": offer.sdp})),
            )
            .await?;
        plugin_data(&configured)?;
        session.trickle(handle, candidates_rx);
        let answer = configured["jsep"]["sdp"]
            .as_str()
            .context("Janus configured the publisher without an answer")?;
        connection
            .set_remote_description(RTCSessionDescription::answer(answer.to_owned())?)
            .await?;
        wait_connected(&mut state_rx).await?;
        Ok(JanusSite {
            session,
            connection,
            output: Arc::new(JanusOutput { audio, video }),
            feed,
            audio_mid,
            video_mid,
        })
    }
}

/// Subscribes to `streams` in `room` with one multistream handle on `session`; what
/// arrives goes to `receiver`. Returns the subscriber's connection, once up.
async fn subscribe(
    session: &JanusSession,
    room: u64,
    streams: Vec<Value>,
    receiver: Arc<Receiver>,
) -> anyhow::Result<Arc<dyn PeerConnection>> {
    let handle = session.attach().await?;
    let attached = session
        .message(
            handle,
            json!({"request": "join", "ptype": "subscriber", "room": room, "streams": streams}),
            None,
        )
        .await?;
    plugin_data(&attached)?;
    let offer = attached["jsep"]["sdp"]
        .as_str()
        .context("Janus attached a subscriber without an offer")?;
    let (candidates, candidates_rx) = mpsc::unbounded_channel();
    let (state, mut state_rx) = watch::channel(RTCPeerConnectionState::New);
    let connection = loopback_peer_connection(
        Arc::new(Handler {
            candidates,
            state,
            receiver: Some(receiver),
        }),
        JANUS_IP,
    )
    .await?;
    connection
        .set_remote_description(RTCSessionDescription::offer(offer.to_owned())?)
        .await?;
    let answer = connection.create_answer(None).await?;
    connection.set_local_description(answer).await?;
    let answer = connection
        .local_description()
        .await
        .context("no local answer")?;
    let started = session
        .message(
            handle,
            json!({"request": "start"}),
            Some(json!({"type": "answer", "sdp": answer.sdp})),
        )
        .await?;
    plugin_data(&started)?;
    session.trickle(handle, candidates_rx);
    wait_connected(&mut state_rx).await?;
    Ok(connection)
}

async fn wait_connected(state: &mut watch::Receiver<RTCPeerConnectionState>) -> anyhow::Result<()> {
    let wait = async {
        loop {
            match *state.borrow_and_update() {
                RTCPeerConnectionState::Connected => return anyhow::Ok(()),
                RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed => {
                    bail!("the connection to Janus failed")
                }
                _ => {}
            }
            state.changed().await?;
        }
    };
    tokio::time::timeout(CONNECT_TIMEOUT, wait)
        .await
        .context("the connection to Janus did not come up")?
}

/// The `a=mid` of the audio and of the video section of `sdp`.
fn mids_by_kind(sdp: &str) -> anyhow::Result<(String, String)> {
    let (mut kind, mut audio, mut video) = ("", None, None);
    for line in sdp.lines() {
        if let Some(media) = line.strip_prefix("m=") {
            kind = media.split(' ').next().unwrap_or("");
        } else if let Some(mid) = line.strip_prefix("a=mid:") {
            match kind {
                "audio" => audio = Some(mid.trim().to_owned()),
                "video" => video = Some(mid.trim().to_owned()),
                _ => {}
            }
        }
    }
    Ok((
        audio.context("no audio mid in our offer")?,
        video.context("no video mid in our offer")?,
    ))
}

/// A publisher's tracks on Janus.
struct JanusOutput {
    audio: Track,
    video: Track,
}

impl MediaOutput for JanusOutput {
    async fn send_audio(&self, payload: &[u8]) -> anyhow::Result<()> {
        self.audio.send(payload, false, true).await
    }

    async fn send_video(
        &self,
        layer: u8,
        payload: &[u8],
        marker: bool,
    ) -> anyhow::Result<LayerSend> {
        if layer != 0 {
            bail!("the Janus client sends one video layer");
        }
        self.video.send(payload, marker, marker).await?;
        Ok(LayerSend::Sent)
    }
}

async fn add_track(
    connection: &Arc<dyn PeerConnection>,
    kind: MediaKind,
    name: &str,
) -> anyhow::Result<Track> {
    // Distinct SSRCs per site and kind; Janus rewrites them for subscribers anyway.
    let ssrc = name
        .bytes()
        .fold(0x811c_9dc5u32, |hash, byte| {
            (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
        })
        .wrapping_add(kind as u32);
    crate::direct::add_track(connection, kind, name, ssrc).await
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}
