//! `all-hands`: the province's meeting of 58 sites on a server in a process of its own,
//! with the direct-path baseline beside it, measured over one window.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use cau_tests::client::MediaKind;
use serde::Serialize;
use tokio::task::JoinHandle;

use crate::cau::{ClientKind, SiteClient};
use crate::figures::{Delivery, ServerCost, delivery, round3};
use crate::media::{LayerCounters, MediaPlan, Receiver, SendCounters, Window, publish};
use crate::scenario::{Expectation, Role, Scenario};
use crate::server::{Reading, ServeOptions, ServerProcess, UdpDrops};
use crate::{cau, direct};

/// What the command line sets.
#[derive(Debug, Clone)]
pub struct Options {
    /// Communes taking part (56 in Cao Bằng); sites are these plus the province and the
    /// central point.
    pub communes: usize,
    /// The measured window.
    pub seconds: u64,
    pub plan: MediaPlan,
    /// Direct-path baseline pairs sending beside the meeting.
    pub baseline_pairs: usize,
    pub json: Option<std::path::PathBuf>,
    /// The stack simulating the sites.
    pub client: ClientKind,
    /// The server runs with bandwidth estimation (`--estimation on`).
    pub estimation: bool,
}

/// A scenario joined to a Cầu server, its publishers sending.
pub struct CauRun {
    pub scenario: Scenario,
    pub window: Arc<Window>,
    pub receivers: Vec<Arc<Receiver>>,
    pub counters: Vec<Arc<SendCounters>>,
    /// The stack the sites join on.
    pub client: ClientKind,
    /// Each site's client once joined, by index in the scenario.
    pub clients: Vec<Option<Arc<SiteClient>>>,
    /// When each site started joining and when its `join` returned, by `now_ns`.
    pub join_started_ns: Vec<u64>,
    pub publishers: Vec<JoinHandle<()>>,
}

impl CauRun {
    /// The scenario's sites, to join on `client`'s stack.
    pub fn new(scenario: Scenario, client: ClientKind) -> CauRun {
        let window = Arc::new(Window::default());
        let sites = scenario.sites.len();
        CauRun {
            client,
            receivers: (0..sites).map(|_| Receiver::new(window.clone())).collect(),
            counters: (0..sites).map(|_| Arc::default()).collect(),
            clients: (0..sites).map(|_| None).collect(),
            join_started_ns: vec![0; sites],
            publishers: Vec::new(),
            scenario,
            window,
        }
    }

    /// Joins every site, the chair first (who opens the meeting, so that the others enter
    /// at once rather than through the lobby), then the others `batch` at a time: a burst
    /// of 58 DTLS handshakes at once on two cores would measure the machine, not the
    /// server (`join-storm` measures that). Each site publishes from its join on, until
    /// `until`. Returns the seconds it took.
    pub async fn join_in_batches(
        &mut self,
        ws_url: &str,
        tokens: &[String],
        plan: &MediaPlan,
        until: Instant,
        batch: usize,
    ) -> anyhow::Result<f64> {
        let joining = Instant::now();
        let sites = self.scenario.sites.len();
        let chair = self.scenario.chair().context("no chair")?;
        let others: Vec<usize> = (0..sites).filter(|&i| i != chair).collect();
        let chair_alone = [chair];
        let groups = std::iter::once(&chair_alone[..]).chain(others.chunks(batch.max(1)));
        for group in groups {
            let joins = group.iter().map(|&i| {
                let (ws, token) = (ws_url.to_owned(), tokens[i].clone());
                let (site, receiver) = (self.scenario.sites[i].clone(), self.receivers[i].clone());
                let video = cau::VideoSetup::of(&self.scenario, i, plan);
                let kind = self.client;
                async move { cau::join(&ws, &token, &site, &receiver, video, kind).await }
            });
            let started = crate::media::now_ns();
            let joined = futures_util::future::join_all(joins).await;
            for (&i, client) in group.iter().zip(joined) {
                let code = &self.scenario.sites[i].code;
                let client = Arc::new(client.with_context(|| format!("{code} joining"))?);
                self.join_started_ns[i] = started;
                if i == chair {
                    client.send_raw(r#"{"type":"open_meeting"}"#).await?;
                }
                self.start_publishing(i, client.clone(), plan, until);
                self.clients[i] = Some(client);
            }
            let joined = self.clients.iter().flatten().count();
            eprintln!("  joined {joined} of {sites} sites");
        }
        Ok(joining.elapsed().as_secs_f64())
    }

    /// The chair's client, once joined.
    pub fn chair_client(&self) -> anyhow::Result<&SiteClient> {
        let chair = self.scenario.chair().context("no chair")?;
        self.client_of(chair)
    }

    /// Site `index`'s client, once joined.
    pub fn client_of(&self, index: usize) -> anyhow::Result<&SiteClient> {
        self.clients
            .get(index)
            .and_then(Option::as_deref)
            .context("that site has not joined")
    }

    /// Starts site `index`'s publisher, which sends until `until`.
    pub fn start_publishing(
        &mut self,
        index: usize,
        client: Arc<SiteClient>,
        plan: &MediaPlan,
        until: Instant,
    ) {
        let site = &self.scenario.sites[index];
        let mut plan = plan.clone();
        plan.audio &= site.audio;
        if !site.video {
            plan.video.clear();
        }
        let (window, counters) = (self.window.clone(), self.counters[index].clone());
        // Spread the publishers over one tick, as independent cameras would be.
        let phase = crate::media::TICK.mul_f64((index * 7 % 20) as f64 / 20.0);
        self.publishers.push(tokio::spawn(async move {
            publish(
                &*client,
                index as u16,
                &plan,
                &window,
                &counters,
                phase,
                until,
            )
            .await;
        }));
    }

    /// The expected streams not one packet of which has arrived yet, as
    /// (receiver, publisher, kind) site codes.
    pub fn missing_streams(&self) -> Vec<(String, String, MediaKind)> {
        self.scenario
            .expected
            .iter()
            .filter(|e| {
                self.receivers[e.receiver]
                    .first_arrival(e.publisher as u16, e.kind)
                    .is_none()
            })
            .map(|e| {
                (
                    self.scenario.sites[e.receiver].code.clone(),
                    self.scenario.sites[e.publisher].code.clone(),
                    e.kind,
                )
            })
            .collect()
    }

    /// Waits until every expected stream has delivered a packet.
    pub async fn wait_for_all_streams(&self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let missing = self.missing_streams();
            if missing.is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "{} of {} expected streams delivered nothing within {timeout:?}, e.g. (receiver, publisher, kind) {:?}",
                    missing.len(),
                    self.scenario.expected.len(),
                    &missing[..missing.len().min(5)]
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn delivery(&self) -> Delivery {
        self.delivery_of(&self.scenario.expected)
    }

    /// Delivery over some of the scenario's streams (the ramp's sites joined so far).
    pub fn delivery_of(&self, expected: &[Expectation]) -> Delivery {
        let receivers: Vec<&Receiver> = self.receivers.iter().map(|r| &**r).collect();
        let senders: Vec<&SendCounters> = self.counters.iter().map(|c| &**c).collect();
        delivery(expected, &receivers, &senders)
    }

    /// Stops publishing and drops every client without leaving (quick, and the server
    /// process is killed next anyway).
    pub async fn finish(self) {
        for publisher in &self.publishers {
            publisher.abort();
        }
        for publisher in self.publishers {
            let _ = publisher.await;
        }
        for client in self.clients.into_iter().flatten() {
            if let Ok(client) = Arc::try_unwrap(client) {
                client.drop_abruptly().await;
            }
        }
    }
}

/// The direct-path baseline: `pairs` connections each sending one publisher's media.
pub struct Baseline {
    pub window: Arc<Window>,
    receiver: Arc<Receiver>,
    counters: Vec<Arc<SendCounters>>,
    senders: Vec<Arc<direct::DirectSender>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Baseline {
    /// Connects the pairs and starts sending, sharing `window` with the scenario.
    pub async fn start(
        pairs: usize,
        plan: &MediaPlan,
        window: Arc<Window>,
        until: Instant,
    ) -> anyhow::Result<Baseline> {
        // One video layer: a direct connection has no server to pick one, and with
        // simulcast the 500 kbit/s middle layer is what a receiver gets on average.
        let mut plan = plan.clone();
        if plan.video.len() > 1 {
            plan.video = vec![crate::media::SIMULCAST_LAYERS[1]];
        }
        let plan = &plan;
        let receiver = Receiver::new(window.clone());
        let mut baseline = Baseline {
            window,
            receiver,
            counters: Vec::new(),
            senders: Vec::new(),
            tasks: Vec::new(),
        };
        for index in 0..pairs {
            let sender = Arc::new(direct::connect(baseline.receiver.clone()).await?);
            let counters = Arc::new(SendCounters::default());
            let (plan, window, s, c) = (
                plan.clone(),
                baseline.window.clone(),
                sender.clone(),
                counters.clone(),
            );
            let phase = crate::media::TICK.mul_f64(index as f64 / pairs.max(1) as f64);
            baseline.tasks.push(tokio::spawn(async move {
                publish(&*s, index as u16, &plan, &window, &c, phase, until).await;
            }));
            baseline.senders.push(sender);
            baseline.counters.push(counters);
        }
        Ok(baseline)
    }

    pub fn delivery(&self) -> Delivery {
        // One receiver gets every pair's streams: publisher i's audio and video.
        let expected: Vec<crate::scenario::Expectation> = (0..self.counters.len())
            .flat_map(|publisher| {
                [MediaKind::Audio, MediaKind::Video].map(|kind| crate::scenario::Expectation {
                    receiver: 0,
                    publisher,
                    kind,
                })
            })
            .collect();
        let senders: Vec<&SendCounters> = self.counters.iter().map(|c| &**c).collect();
        delivery(&expected, &[&*self.receiver], &senders)
    }

    pub fn reset(&self) {
        self.receiver.reset();
        for counters in &self.counters {
            counters.reset();
        }
    }

    pub async fn finish(self) {
        for task in &self.tasks {
            task.abort();
        }
        for sender in &self.senders {
            sender.close().await;
        }
    }
}

/// The figures of one all-hands run.
#[derive(Debug, Serialize)]
pub struct Report {
    pub benchmark: &'static str,
    pub date: String,
    /// The stack that simulated the sites: `webrtc-rs` or `light`.
    pub client: &'static str,
    /// Whether the server ran with bandwidth estimation.
    pub estimation: bool,
    pub sites: usize,
    pub layers: Vec<&'static str>,
    pub video_down_tracks: usize,
    pub audio_down_tracks: usize,
    pub server: ServerCost,
    pub sfu_path: Delivery,
    /// The same, split by receiver: communes (a few streams per connection, like the
    /// direct path) and the province and central point (57 video streams on one
    /// connection, whose client-side queueing is their own).
    pub sfu_path_to_communes: Delivery,
    pub sfu_path_to_wall: Delivery,
    pub direct_path: Delivery,
    /// SFU path minus direct path, per percentile, over every receiver.
    pub added_latency_p50_ms: f64,
    pub added_latency_p99_ms: f64,
    /// The same for audio packets alone, against the whole direct path.
    pub added_audio_latency_p50_ms: f64,
    pub added_audio_latency_p99_ms: f64,
    /// Joining every site, from the first socket opening to the last `join` returning.
    pub join_all_s: f64,
    /// Publisher ticks more than a tick late: the load generator falling behind.
    pub late_publisher_ticks: u64,
    /// CPU of this load generator (every simulated site) over the window, in cores.
    pub load_generator_cores: f64,
    /// Failures in the clients' background (offers not answered, server errors,
    /// broken sockets) from joining to the window's end, over every site.
    pub client_failures: usize,
    /// The server's resident set and open file descriptors when the window opened and
    /// when it closed: their drift over a long window (a soak) shows a leak.
    pub rss_kib_window: (u64, u64),
    pub open_fds_window: (usize, usize),
    /// UDP drops in this network namespace over the window (run the tool in a namespace
    /// of its own, `unshare -n`, for these to be its own).
    pub udp_drops: UdpDrops,
    /// The publishers' video uplink over the window, by role and overall: what they sent
    /// of each layer, against what every layer would have been had the server paused
    /// none. With one layer nothing is paused.
    pub uplink: Vec<Uplink>,
    /// The video streams the communes and the walls received in each layer (lowest
    /// first), by the layer that brought most of a stream's packets in the window.
    pub video_layers_to_communes: Vec<u64>,
    pub video_layers_to_wall: Vec<u64>,
    /// `publish_layers` messages the publishers received from joining to the window's
    /// end, in all and the most one received: more than a few each means the server
    /// paused and resumed layers over and over.
    pub publish_layers_messages: (usize, usize),
}

/// The video uplink of a group of publishers over the window.
#[derive(Debug, Clone, Serialize)]
pub struct Uplink {
    pub role: &'static str,
    pub sites: usize,
    pub layers: Vec<LayerUplink>,
    /// Per site, in kbit/s of RTP payload.
    pub sent_kbps_per_site: f64,
    pub unpaused_kbps_per_site: f64,
    pub sent_bytes: u64,
    pub unpaused_bytes: u64,
    /// The share of the unpaused uplink that pausing saved, in percent.
    pub saved_percent: f64,
}

/// One layer's part of an [`Uplink`].
#[derive(Debug, Clone, Serialize)]
pub struct LayerUplink {
    pub layer: &'static str,
    pub sent_kbps_per_site: f64,
    pub unpaused_kbps_per_site: f64,
}

impl Uplink {
    /// The uplink of `publishers` (indices into `counters`) over `window_s` seconds.
    fn of(
        role: &'static str,
        publishers: &[usize],
        counters: &[Arc<SendCounters>],
        plan: &MediaPlan,
        window_s: f64,
    ) -> Uplink {
        let sites = publishers.len();
        let kbps =
            |bytes: u64| round3(bytes as f64 * 8.0 / 1000.0 / window_s / sites.max(1) as f64);
        let mut sent_bytes = 0;
        let mut unpaused_bytes = 0;
        let layers = plan
            .video
            .iter()
            .enumerate()
            .map(|(index, layer)| {
                let sum = |field: fn(&LayerCounters) -> &std::sync::atomic::AtomicU64| {
                    publishers
                        .iter()
                        .filter_map(|&p| counters.get(p)?.layer(index as u8))
                        .map(|c| LayerCounters::load(field(c)))
                        .sum::<u64>()
                };
                let (sent, unpaused) = (sum(|c| &c.bytes), sum(|c| &c.planned_bytes));
                sent_bytes += sent;
                unpaused_bytes += unpaused;
                LayerUplink {
                    layer: layer.name,
                    sent_kbps_per_site: kbps(sent),
                    unpaused_kbps_per_site: kbps(unpaused),
                }
            })
            .collect();
        Uplink {
            role,
            sites,
            layers,
            sent_kbps_per_site: kbps(sent_bytes),
            unpaused_kbps_per_site: kbps(unpaused_bytes),
            sent_bytes,
            unpaused_bytes,
            saved_percent: round3((1.0 - sent_bytes as f64 / unpaused_bytes.max(1) as f64) * 100.0),
        }
    }
}

/// The scenario's publishers by role, then all of them: the chair, the floor holder, the
/// communes shown only as thumbnails, the central point (an observer, shown to the
/// province as a thumbnail).
fn uplink_by_role(run: &CauRun, plan: &MediaPlan, window_s: f64) -> Vec<Uplink> {
    let scenario = &run.scenario;
    let publishers = |keep: &dyn Fn(usize, &crate::scenario::Site) -> bool| -> Vec<usize> {
        (0..scenario.sites.len())
            .filter(|&i| scenario.sites[i].video && keep(i, &scenario.sites[i]))
            .collect()
    };
    let floor = scenario.floor;
    let groups: [(&'static str, Vec<usize>); 5] = [
        ("chair", publishers(&|_, s| s.role == Role::Chair)),
        ("floor holder", publishers(&|i, _| floor == Some(i))),
        (
            "thumbnail-only communes",
            publishers(&|i, s| {
                s.role == Role::Participant && floor != Some(i) && !scenario.layout.contains(&i)
            }),
        ),
        (
            "central point",
            publishers(&|_, s| s.role == Role::Observer),
        ),
        ("all publishers", publishers(&|_, _| true)),
    ];
    groups
        .into_iter()
        .filter(|(_, group)| !group.is_empty())
        .map(|(role, group)| Uplink::of(role, &group, &run.counters, plan, window_s))
        .collect()
}

/// How many of `expected`'s video streams arrived mostly in each layer, lowest first.
fn layers_received(run: &CauRun, expected: &[Expectation], layers: usize) -> Vec<u64> {
    let mut counts = vec![0; layers];
    for e in expected.iter().filter(|e| e.kind == MediaKind::Video) {
        let reception = run.receivers[e.receiver].lock();
        let most = reception
            .streams
            .iter()
            .filter(|(key, stream)| {
                usize::from(key.publisher) == e.publisher
                    && key.kind == MediaKind::Video
                    && stream.received > 0
            })
            .max_by_key(|(_, stream)| stream.received)
            .map(|(key, _)| usize::from(key.layer));
        if let Some(count) = most.and_then(|layer| counts.get_mut(layer)) {
            *count += 1;
        }
    }
    counts
}

pub async fn run(options: Options) -> anyhow::Result<()> {
    let server = ServerProcess::start(&ServeOptions {
        bandwidth_estimation: options.estimation,
        ..ServeOptions::default()
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_idle = server.rss_kib()?;
    let directory = cau::directory(server.http_addr).await?;
    let scenario = Scenario::all_hands(&directory, options.communes)?;
    let sites = scenario.sites.len();
    eprintln!(
        "all-hands: {sites} sites, {} video and {} audio down-tracks expected; server pid {}, idle RSS {} KiB; bandwidth estimation {}",
        scenario.down_tracks(MediaKind::Video),
        scenario.down_tracks(MediaKind::Audio),
        server.pid,
        rss_idle,
        if options.estimation { "on" } else { "off" }
    );
    let tokens = cau::schedule(server.http_addr, &scenario).await?;
    let mut run = CauRun::new(scenario, options.client);
    // Publishers send until the window is over, with room for joining and warming up.
    let until = Instant::now() + Duration::from_secs(options.seconds + 240);
    let join_all_s = run
        .join_in_batches(&server.ws_url, &tokens, &options.plan, until, 8)
        .await?;
    cau::chair_arranges(run.chair_client()?, &run.scenario).await?;
    run.wait_for_all_streams(Duration::from_secs(60)).await?;
    eprintln!("  every expected stream flows ({join_all_s:.1} s to join all); baseline connecting");
    let baseline = Baseline::start(
        options.baseline_pairs,
        &options.plan,
        run.window.clone(),
        until,
    )
    .await?;
    // Let the baseline's first keyframe and the settling after renegotiations pass; with
    // simulcast, also the 4 s after which the server pauses a layer no one wants, so that
    // the window sees the meeting's steady uplink.
    let settle = if options.plan.video.len() > 1 { 8 } else { 3 };
    tokio::time::sleep(Duration::from_secs(settle)).await;

    let own_before = crate::server::cpu_seconds(std::process::id())?;
    let drops_before = UdpDrops::read()?;
    let before = Reading::take(&server).await?;
    let (rss_start, fds_start) = (server.rss_kib()?, crate::server::open_fds(server.pid)?);
    run.window.open();
    let mut last = before;
    for second in 1..=options.seconds {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = Reading::take(&server).await?;
        let span = now.at.duration_since(last.at).as_secs_f64();
        eprintln!(
            "  {second:>3}/{} s: {:>6.0} forwarded/s, server {:.2} cores, {:.1} us CPU per forwarded packet",
            options.seconds,
            (now.forwarded - last.forwarded) as f64 / span,
            (now.cpu_s - last.cpu_s) / span,
            (now.cpu_s - last.cpu_s) / (now.forwarded - last.forwarded).max(1) as f64 * 1e6,
        );
        last = now;
        // A long window (a soak) also shows how memory and descriptors move.
        if second % 60 == 0 {
            eprintln!(
                "  {second:>5} s: server RSS {} KiB, {} open file descriptors",
                server.rss_kib()?,
                crate::server::open_fds(server.pid)?
            );
        }
    }
    let (rss_end, fds_end) = (server.rss_kib()?, crate::server::open_fds(server.pid)?);
    run.window.close();
    let after = Reading::take(&server).await?;
    let udp_drops = UdpDrops::read()?.since(drops_before);
    let load_generator_cores = (crate::server::cpu_seconds(std::process::id())? - own_before)
        / after.at.duration_since(before.at).as_secs_f64();
    let rss_loaded = server.rss_kib()?;
    // Packets sent just before the window closed are still on their way.
    tokio::time::sleep(Duration::from_millis(500)).await;

    // The extrapolation is in down-tracks of the 500 kbit/s layer, whatever was sent.
    let video_pps = options
        .plan
        .video_plan
        .packets_per_second(crate::media::SIMULCAST_LAYERS[1]);
    let cost = ServerCost::new(&before, &after, video_pps).with_rss(rss_idle, rss_loaded, sites);
    let sfu_path = run.delivery();
    let to = |participants: bool| -> Vec<Expectation> {
        run.scenario
            .expected
            .iter()
            .copied()
            .filter(|e| (run.scenario.sites[e.receiver].role == Role::Participant) == participants)
            .collect()
    };
    let sfu_path_to_communes = run.delivery_of(&to(true));
    let sfu_path_to_wall = run.delivery_of(&to(false));
    let direct_path = baseline.delivery();
    let uplink = uplink_by_role(&run, &options.plan, cost.window_s);
    let layer_count = options.plan.video.len();
    let video_layers_to_communes = layers_received(&run, &to(true), layer_count);
    let video_layers_to_wall = layers_received(&run, &to(false), layer_count);
    let per_publisher: Vec<usize> = run
        .clients
        .iter()
        .flatten()
        .map(|client| client.publish_layers_messages())
        .collect();
    let client_failures = run
        .clients
        .iter()
        .flatten()
        .map(|client| client.failures())
        .sum();
    let publish_layers_messages = (
        per_publisher.iter().sum(),
        per_publisher.iter().copied().max().unwrap_or(0),
    );
    let report = Report {
        benchmark: "all-hands",
        date: today(),
        client: options.client.name(),
        estimation: options.estimation,
        sites,
        layers: options.plan.video.iter().map(|l| l.name).collect(),
        video_down_tracks: run.scenario.down_tracks(MediaKind::Video),
        audio_down_tracks: run.scenario.down_tracks(MediaKind::Audio),
        added_latency_p50_ms: round3(sfu_path.latency.p50_ms - direct_path.latency.p50_ms),
        added_latency_p99_ms: round3(sfu_path.latency.p99_ms - direct_path.latency.p99_ms),
        added_audio_latency_p50_ms: round3(
            sfu_path.audio_latency.p50_ms - direct_path.latency.p50_ms,
        ),
        added_audio_latency_p99_ms: round3(
            sfu_path.audio_latency.p99_ms - direct_path.latency.p99_ms,
        ),
        server: cost,
        sfu_path,
        sfu_path_to_communes,
        sfu_path_to_wall,
        direct_path,
        join_all_s: round3(join_all_s),
        late_publisher_ticks: run
            .counters
            .iter()
            .map(|c| c.late_ticks.load(std::sync::atomic::Ordering::Relaxed))
            .sum(),
        load_generator_cores: round3(load_generator_cores),
        client_failures,
        rss_kib_window: (rss_start, rss_end),
        open_fds_window: (fds_start, fds_end),
        udp_drops,
        uplink,
        video_layers_to_communes,
        video_layers_to_wall,
        publish_layers_messages,
    };
    baseline.finish().await;
    run.finish().await;
    server.stop().await?;
    print_summary(&report, video_pps);
    write_json(&options.json, &report)?;
    if report.sfu_path.received_packets == 0 {
        bail!("no media arrived through the SFU in the window");
    }
    Ok(())
}

fn print_summary(report: &Report, video_pps: f64) {
    let s = &report.server;
    println!(
        "all-hands, {} sites on {} clients, video layer(s) {:?}, {} video + {} audio down-tracks, {:.0} s window",
        report.sites,
        report.client,
        report.layers,
        report.video_down_tracks,
        report.audio_down_tracks,
        s.window_s
    );
    println!(
        "  server CPU        {:.2} s = {:.2} cores; {:.0} packets forwarded/s",
        s.cpu_s, s.cores, s.forwarded_per_s
    );
    println!(
        "  CPU per packet    {:.2} us ({:.2} ms per 1,000 forwarded)",
        s.cpu_us_per_forwarded, s.cpu_ms_per_1000_forwarded
    );
    println!(
        "  per core          {:.0} video down-tracks of 500 kbit/s ({video_pps:.1} packets/s each), extrapolated",
        s.video_down_tracks_per_core
    );
    println!(
        "  RSS               {} KiB idle, {} KiB loaded: {:.2} MiB per site",
        s.rss_idle_kib, s.rss_loaded_kib, s.rss_mib_per_site
    );
    println!(
        "  over the window   RSS {} -> {} KiB, open file descriptors {} -> {}",
        report.rss_kib_window.0,
        report.rss_kib_window.1,
        report.open_fds_window.0,
        report.open_fds_window.1
    );
    print_delivery("SFU path   ", &report.sfu_path);
    print_delivery("  communes ", &report.sfu_path_to_communes);
    print_delivery("  wall     ", &report.sfu_path_to_wall);
    print_delivery("direct path", &report.direct_path);
    println!(
        "  added latency     p50 {:.2} ms, p99 {:.2} ms (SFU path minus direct path); audio alone p50 {:.2} ms, p99 {:.2} ms",
        report.added_latency_p50_ms,
        report.added_latency_p99_ms,
        report.added_audio_latency_p50_ms,
        report.added_audio_latency_p99_ms
    );
    println!(
        "  joining all sites {:.1} s; late publisher ticks {}; load generator {:.2} cores; client failures {}",
        report.join_all_s,
        report.late_publisher_ticks,
        report.load_generator_cores,
        report.client_failures
    );
    println!(
        "  UDP drops         {} receive-buffer overflows, {} send-buffer errors in this network namespace over the window",
        report.udp_drops.receive_buffer_errors, report.udp_drops.send_buffer_errors
    );
    println!(
        "  layers received   communes {:?}, walls {:?} (video streams per layer, lowest first); publish_layers messages {} in all, at most {} to one publisher",
        report.video_layers_to_communes,
        report.video_layers_to_wall,
        report.publish_layers_messages.0,
        report.publish_layers_messages.1
    );
    for uplink in &report.uplink {
        let layers: Vec<String> = uplink
            .layers
            .iter()
            .map(|l| {
                format!(
                    "{} {:.0}/{:.0}",
                    l.layer, l.sent_kbps_per_site, l.unpaused_kbps_per_site
                )
            })
            .collect();
        println!(
            "  uplink {:<24} {:>2} sites: {:.0} of {:.0} kbit/s per site sent, {:.1}% saved by pausing (per layer, sent/unpaused: {})",
            uplink.role,
            uplink.sites,
            uplink.sent_kbps_per_site,
            uplink.unpaused_kbps_per_site,
            uplink.saved_percent,
            layers.join(", ")
        );
    }
}

pub fn print_delivery(label: &str, d: &Delivery) {
    println!(
        "  {label}       latency p50 {:.2} / p90 {:.2} / p99 {:.2} / max {:.2} ms (audio alone p50 {:.2} / p99 {:.2} ms); loss {:.3}% ({} of {}); jitter {:.2} ms; frames complete {} of {}; silent streams {}, unexpected packets {}, duplicates {}",
        d.latency.p50_ms,
        d.latency.p90_ms,
        d.latency.p99_ms,
        d.latency.max_ms,
        d.audio_latency.p50_ms,
        d.audio_latency.p99_ms,
        d.loss_percent,
        d.expected_packets - d.received_packets.min(d.expected_packets),
        d.expected_packets,
        d.jitter_ms_mean,
        d.video_frames_complete,
        d.video_frames_expected,
        d.silent_streams,
        d.unexpected_packets,
        d.duplicates
    );
}

pub fn write_json(
    path: &Option<std::path::PathBuf>,
    report: &impl Serialize,
) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(report)?;
    if let Some(path) = path {
        std::fs::write(path, &text).with_context(|| format!("writing {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

/// Today's date (UTC), for the results table.
pub fn today() -> String {
    let days = cau_tests::api::now_millis() / 86_400_000;
    cau_signaling::model::format_time(days * 86_400_000)
        .split('T')
        .next()
        .unwrap_or_default()
        .to_owned()
}
