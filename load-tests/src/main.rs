//! `cau-load`: Cầu's benchmarks and load tests. Each prints its figures; the scenarios
//! (`all-hands`, `ramp`, `join-storm`) show progress on stderr, a summary on stdout and
//! write their figures as JSON with `--json PATH`.
//!
//! Figures are measured, never asserted: these machines are shared and noisy, so the
//! benchmarks report medians and leave judging them to people (docs/benchmarks.md).
//!
//! The modules, for reuse by other scenarios and other servers:
//! - `scenario`: sites, roles, who publishes and which streams each site must receive;
//! - `media`: the synthetic publisher (stamped audio and video) and the receiver's tally;
//! - `figures`: loss, latency percentiles, jitter, frames, the server's CPU and memory;
//! - `cau`: a scenario on a Cầu server (REST scheduling, join links, the chair's moves);
//! - `server`: the server in a process of its own (`cau-load serve`), read from /proc;
//! - `direct`: the direct-path baseline (two webrtc-rs peers, no server between);
//! - `light`: the light client, a site on str0m's sans-IO core (`--client light`);
//! - `all_hands`, `ramp`, `join_storm`: the scenarios; `legacy`: the first benchmarks.

mod all_hands;
mod cau;
mod direct;
mod figures;
mod flood;
mod floor;
mod janus;
mod join_storm;
mod legacy;
mod light;
mod media;
mod peer_setup;
mod ramp;
mod scenario;
mod server;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cau-load", about = "Benchmarks of the Cầu server")]
struct Cli {
    #[command(subcommand)]
    command: Benchmark,
}

#[derive(Subcommand)]
enum Benchmark {
    /// The province's meeting: 58 sites, the province chairs, communes receive the chair's
    /// video and the floor holder's audio, the province and the central point receive
    /// every site. Server CPU per forwarded packet, latency against a direct path, loss.
    AllHands {
        /// Communes taking part, besides the province and the central point.
        #[arg(long, default_value_t = 56)]
        communes: usize,
        /// The measured window, once every stream flows.
        #[arg(long, default_value_t = 20)]
        seconds: u64,
        /// Video layers per publisher: 1 (500 kbit/s); 3 once the SFU has simulcast.
        #[arg(long, default_value_t = 1)]
        layers: u8,
        /// Direct-path baseline connections sending beside the meeting.
        #[arg(long, default_value_t = 2)]
        baseline_pairs: usize,
        /// Where to write the figures as JSON.
        /// The client stack simulating the sites: webrtc-rs (`TestClient`, the default) or
        /// light (str0m's sans-IO core, far less CPU per site).
        #[arg(long, value_enum, default_value_t = cau::ClientKind::WebrtcRs)]
        client: cau::ClientKind,
        #[arg(long)]
        json: Option<PathBuf>,
        /// `on` runs the server with bandwidth estimation (and str0m's pacer), as
        /// production's default is; off by default, as in every test server, since
        /// webrtc-rs clients' feedback makes str0m underestimate an idle loopback.
        #[arg(long, default_value = "off")]
        estimation: String,
    },
    /// Subscribers join step by step until loss passes --loss-limit or the p99 latency
    /// passes --p99-limit-ms; reports each step and where the limit was passed.
    Ramp {
        /// Communes shown with the chair (publishing video); each subscriber receives
        /// these and the chair.
        #[arg(long, default_value_t = 3)]
        shown: usize,
        /// Subscribers added per step.
        #[arg(long, default_value_t = 8)]
        step: usize,
        /// The measured window of each step.
        #[arg(long, default_value_t = 5)]
        step_seconds: u64,
        #[arg(long, default_value_t = 240)]
        max_subscribers: usize,
        #[arg(long, default_value_t = 1.0)]
        loss_limit: f64,
        #[arg(long, default_value_t = 50.0)]
        p99_limit_ms: f64,
        #[arg(long, default_value_t = 1)]
        layers: u8,
        /// The client stack simulating the sites: webrtc-rs (`TestClient`, the default) or
        /// light (str0m's sans-IO core, far less CPU per site).
        #[arg(long, value_enum, default_value_t = cau::ClientKind::WebrtcRs)]
        client: cau::ClientKind,
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// The all-hands meeting's sites all start joining within --spread-ms; each site's
    /// time from socket open to first media received.
    JoinStorm {
        #[arg(long, default_value_t = 56)]
        communes: usize,
        #[arg(long, default_value_t = 2000)]
        spread_ms: u64,
        /// How long a site may wait for media, after the last join starts.
        #[arg(long, default_value_t = 10)]
        deadline_s: u64,
        /// The meeting runs this long after the storm, measured.
        #[arg(long, default_value_t = 5)]
        seconds: u64,
        #[arg(long, default_value_t = 1)]
        layers: u8,
        /// The client stack simulating the sites: webrtc-rs (`TestClient`, the default) or
        /// light (str0m's sans-IO core, far less CPU per site).
        #[arg(long, value_enum, default_value_t = cau::ClientKind::WebrtcRs)]
        client: cau::ClientKind,
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// Join to first remote frame decoded in headless Chromium, over several joins.
    JoinLatency {
        #[arg(long, default_value_t = 10)]
        joins: u32,
    },
    /// Server RSS idle and with N webrtc-rs clients publishing audio and video.
    Rss {
        #[arg(long, default_value_t = 10)]
        clients: usize,
        /// How long the clients send media before RSS is read.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
    /// SFU process CPU with line monitoring on and off, for a meeting of N sites,
    /// alternating the two over several rounds in one run.
    MonitorCost {
        #[arg(long, default_value_t = 58)]
        sites: usize,
        /// How long each measured window lasts, after the sites are up.
        #[arg(long, default_value_t = 15)]
        seconds: u64,
        /// Rounds of (on, off); the medians of each are compared.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
    },
    /// The floor: CPU per packet of SRTP protect plus a UDP send to loopback, one send
    /// per packet and 32 packets per GSO send; medians over rounds.
    Floor {
        /// Packets per mode and round.
        #[arg(long, default_value_t = 50_000)]
        packets: usize,
        #[arg(long, default_value_t = 7)]
        rounds: usize,
    },
    /// What a new peer costs the media thread: CPU per peer of the core's `AddPeer`, and
    /// of the connection with str0m's crypto provider against the core's; medians over
    /// rounds.
    PeerSetup {
        /// Peers made per way and round.
        #[arg(long, default_value_t = 200)]
        peers: usize,
        #[arg(long, default_value_t = 5)]
        rounds: usize,
    },
    /// The same scenario on Cầu and on Janus's VideoRoom, alternated over rounds in one
    /// run, in a network namespace the tool makes (needs root and Debian's `janus`).
    JanusCompare {
        /// Communes taking part, besides the province and the central point.
        #[arg(long, default_value_t = 56)]
        communes: usize,
        /// The measured window of each round, once every stream flows.
        #[arg(long, default_value_t = 15)]
        seconds: u64,
        /// Rounds of (Cầu, Janus), alternating which goes first.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// Direct-path baseline connections sending beside the meeting.
        #[arg(long, default_value_t = 2)]
        baseline_pairs: usize,
        /// Where to write the figures as JSON.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Set by the tool when it re-runs itself inside its network namespace.
        #[arg(long, hide = true)]
        inside_namespace: bool,
    },
    /// Garbage UDP and forged STUN at the media port during a call, at a rate doubling
    /// step after step, until the call's loss passes 1%.
    Flood {
        /// The first step's rate, in datagrams a second (a first step without garbage
        /// is the baseline).
        #[arg(long, default_value_t = 5000)]
        start_rate: u64,
        /// The highest rate tried.
        #[arg(long, default_value_t = 640_000)]
        max_rate: u64,
        /// How long each step lasts.
        #[arg(long, default_value_t = 5)]
        seconds: u64,
    },
    /// Runs a server on free loopback ports and prints its signaling and HTTP addresses
    /// (the benchmarks start it to measure the server in a process of its own).
    Serve {
        /// `off` turns line monitoring off.
        #[arg(long, default_value = "on")]
        monitoring: String,
        #[arg(long, default_value_t = 64)]
        max_participants_per_room: usize,
        /// `on` turns bandwidth estimation on.
        #[arg(long, default_value = "off")]
        estimation: String,
    },
}

/// `on` or `off`, as the switches take them.
fn on_or_off(value: &str) -> anyhow::Result<bool> {
    match value {
        "on" => Ok(true),
        "off" => Ok(false),
        other => anyhow::bail!("expected on or off, not {other:?}"),
    }
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        match Cli::parse().command {
            Benchmark::AllHands {
                communes,
                seconds,
                layers,
                baseline_pairs,
                json,
                client,
                estimation,
            } => {
                all_hands::run(all_hands::Options {
                    communes,
                    seconds,
                    plan: media::MediaPlan::new(media::layers(layers)?),
                    baseline_pairs,
                    json,
                    client,
                    estimation: on_or_off(&estimation)?,
                })
                .await
            }
            Benchmark::Ramp {
                shown,
                step,
                step_seconds,
                max_subscribers,
                loss_limit,
                p99_limit_ms,
                layers,
                json,
                client,
            } => {
                ramp::run(ramp::Options {
                    shown,
                    step,
                    step_seconds,
                    max_subscribers,
                    loss_limit_percent: loss_limit,
                    p99_limit_ms,
                    plan: media::MediaPlan::new(media::layers(layers)?),
                    json,
                    client,
                })
                .await
            }
            Benchmark::JoinStorm {
                communes,
                spread_ms,
                deadline_s,
                seconds,
                layers,
                json,
                client,
            } => {
                join_storm::run(join_storm::Options {
                    communes,
                    spread: Duration::from_millis(spread_ms),
                    deadline: Duration::from_secs(deadline_s),
                    seconds,
                    plan: media::MediaPlan::new(media::layers(layers)?),
                    json,
                    client,
                })
                .await
            }
            Benchmark::JoinLatency { joins } => legacy::join_latency(joins).await,
            Benchmark::Rss { clients, seconds } => {
                legacy::rss(clients, Duration::from_secs(seconds)).await
            }
            Benchmark::MonitorCost {
                sites,
                seconds,
                rounds,
            } => legacy::monitor_cost(sites, Duration::from_secs(seconds), rounds).await,
            Benchmark::JanusCompare {
                communes,
                seconds,
                rounds,
                baseline_pairs,
                json,
                inside_namespace,
            } => {
                janus::run(janus::Options {
                    communes,
                    seconds,
                    rounds,
                    baseline_pairs,
                    plan: media::MediaPlan::new(media::layers(1)?),
                    json,
                    inside_namespace,
                })
                .await
            }
            Benchmark::Flood {
                start_rate,
                max_rate,
                seconds,
            } => flood::flood(start_rate, max_rate, seconds).await,
            Benchmark::Floor { packets, rounds } => {
                floor::run(floor::FloorConfig { packets, rounds })
            }
            Benchmark::PeerSetup { peers, rounds } => peer_setup::run(peers, rounds),
            Benchmark::Serve {
                monitoring,
                max_participants_per_room,
                estimation,
            } => {
                server::serve(server::ServeOptions {
                    monitoring: on_or_off(&monitoring)?,
                    max_participants_per_room,
                    bandwidth_estimation: on_or_off(&estimation)?,
                })
                .await
            }
        }
    })
}
