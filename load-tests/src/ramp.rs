//! `ramp`: subscribers join a meeting step by step until loss passes a limit or the p99
//! latency does, and the step where that happened is reported.
//!
//! The chair and `shown` communes publish audio and video and are on the chair's layout;
//! every subscriber is a commune that receives their video (4 streams of 500 kbit/s by
//! default) and the chair's and floor holder's audio, and publishes a microphone the
//! server does not forward (chair mode). The directory has 56 communes; the ramp adds
//! more through the REST API as the secretary would (`tai-001`, ...).

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use cau_tests::api::request;
use cau_tests::client::MediaKind;
use serde::Serialize;
use serde_json::json;

use crate::all_hands::{Baseline, CauRun, today, write_json};
use crate::cau;
use crate::figures::{Delivery, ServerCost, round3};
use crate::media::MediaPlan;
use crate::scenario::Scenario;
use crate::server::{Reading, ServeOptions, ServerProcess, UdpDrops, cpu_seconds};

#[derive(Debug, Clone)]
pub struct Options {
    /// Communes on the layout with the chair, publishing video.
    pub shown: usize,
    /// Subscribers added per step.
    pub step: usize,
    /// The measured window of each step.
    pub step_seconds: u64,
    pub max_subscribers: usize,
    pub loss_limit_percent: f64,
    pub p99_limit_ms: f64,
    pub plan: MediaPlan,
    pub json: Option<std::path::PathBuf>,
    /// The stack simulating the sites.
    pub client: crate::cau::ClientKind,
}

/// The figures of one step.
#[derive(Debug, Serialize)]
pub struct Step {
    pub subscribers: usize,
    pub video_down_tracks: usize,
    pub audio_down_tracks: usize,
    pub server: ServerCost,
    /// CPU of this load generator (all the simulated sites) over the window, in cores:
    /// near 2 on this machine means the clients, not the server, are the limit.
    pub load_generator_cores: f64,
    pub sfu_path: Delivery,
    pub direct_path: Delivery,
    pub added_latency_p99_ms: f64,
    /// UDP drops in this network namespace over the window.
    pub udp_drops: UdpDrops,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub benchmark: &'static str,
    pub date: String,
    /// The stack that simulated the sites: `webrtc-rs` or `light`.
    pub client: &'static str,
    pub shown: usize,
    pub loss_limit_percent: f64,
    pub p99_limit_ms: f64,
    pub steps: Vec<Step>,
    /// Why the ramp stopped.
    pub stopped: String,
    /// The most subscribers measured within both limits.
    pub last_within_limits: Option<usize>,
}

/// Adds communes to the directory until it has `wanted`; returns every commune's code.
async fn communes(server: &ServerProcess, wanted: usize) -> anyhow::Result<Vec<String>> {
    let directory = cau::directory(server.http_addr).await?;
    let mut codes: Vec<String> = directory
        .iter()
        .filter(|s| s.tier == "commune")
        .map(|s| s.code.clone())
        .collect();
    let mut number = 0;
    while codes.len() < wanted {
        number += 1;
        let code = format!("tai-{number:03}");
        let body = json!({"code": code, "name": format!("Xã Tải {number:03}"), "tier": "commune", "kind": "commune"});
        // A rate limit on the API, if the server has one, answers 429: wait and retry.
        let mut attempts = 0;
        loop {
            let (status, answer) =
                request(server.http_addr, "POST", "/api/sites", Some(&body)).await?;
            match status {
                201 => break,
                429 if attempts < 50 => {
                    attempts += 1;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                _ => bail!("adding site {code} answered {status}: {answer}"),
            }
        }
        codes.push(code);
    }
    Ok(codes)
}

/// CPU seconds this process has used.
fn own_cpu_seconds() -> anyhow::Result<f64> {
    cpu_seconds(std::process::id())
}

pub async fn run(options: Options) -> anyhow::Result<()> {
    let server = ServerProcess::start(&ServeOptions {
        max_participants_per_room: options.shown + options.max_subscribers + 8,
        ..ServeOptions::default()
    })
    .await?;
    let rss_idle = server.rss_kib()?;
    let directory = cau::directory(server.http_addr).await?;
    let chair = directory
        .iter()
        .find(|s| s.tier == "province")
        .context("no province in the directory")?
        .code
        .clone();
    let codes = communes(&server, options.shown + options.max_subscribers).await?;
    let (shown, subscribers) = codes.split_at(options.shown);
    let scenario = Scenario::ramp(&chair, shown, &subscribers[..options.max_subscribers]);
    let tokens = cau::schedule(server.http_addr, &scenario).await?;
    let mut run = CauRun::new(scenario, options.client);
    let until = Instant::now() + Duration::from_secs(3600);
    eprintln!(
        "ramp: the chair and {} shown communes publish; {} subscribers more per step, {} s per step, until loss > {}% or p99 > {} ms; server pid {}",
        options.shown,
        options.step,
        options.step_seconds,
        options.loss_limit_percent,
        options.p99_limit_ms,
        server.pid
    );
    // The publishers first: chair (who opens the meeting) and the shown communes.
    let publishers = 1 + options.shown;
    join_range(&mut run, &server, &tokens, 0..1, &options.plan, until).await?;
    join_range(
        &mut run,
        &server,
        &tokens,
        1..publishers,
        &options.plan,
        until,
    )
    .await?;
    cau::chair_arranges(run.chair_client()?, &run.scenario).await?;
    let baseline = Baseline::start(1, &options.plan, run.window.clone(), until).await?;

    let mut steps = Vec::new();
    let mut joined = publishers;
    let total = run.scenario.sites.len();
    let stopped = loop {
        let next = (joined + options.step).min(total);
        if next == joined {
            break format!("reached --max-subscribers {}", options.max_subscribers);
        }
        if let Err(error) = join_range(
            &mut run,
            &server,
            &tokens,
            joined..next,
            &options.plan,
            until,
        )
        .await
        {
            break format!(
                "joining failed at {} subscribers: {error:#}",
                next - publishers
            );
        }
        joined = next;
        let subscribers = joined - publishers;
        // Only the sites joined so far are expected to receive.
        let present = |i: usize| i < joined;
        let expected: Vec<_> = run
            .scenario
            .expected
            .iter()
            .copied()
            .filter(|e| present(e.receiver) && present(e.publisher))
            .collect();
        if let Err(error) = wait_for(&run, &expected, Duration::from_secs(30)).await {
            break format!("media did not reach every subscriber at {subscribers}: {error:#}");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        for receiver in &run.receivers {
            receiver.reset();
        }
        for counters in &run.counters {
            counters.reset();
        }
        baseline.reset();
        let own_before = own_cpu_seconds()?;
        let drops_before = UdpDrops::read()?;
        let before = Reading::take(&server).await?;
        run.window.open();
        tokio::time::sleep(Duration::from_secs(options.step_seconds)).await;
        run.window.close();
        let after = Reading::take(&server).await?;
        let own_after = own_cpu_seconds()?;
        let udp_drops = UdpDrops::read()?.since(drops_before);
        let rss = server.rss_kib()?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let video_pps = options
            .plan
            .video
            .first()
            .map_or(0.0, |l| options.plan.video_plan.packets_per_second(*l));
        let cost = ServerCost::new(&before, &after, video_pps).with_rss(rss_idle, rss, joined);
        let sfu_path = run.delivery_of(&expected);
        let direct_path = baseline.delivery();
        let step = Step {
            subscribers,
            video_down_tracks: expected
                .iter()
                .filter(|e| e.kind == MediaKind::Video)
                .count(),
            audio_down_tracks: expected
                .iter()
                .filter(|e| e.kind == MediaKind::Audio)
                .count(),
            load_generator_cores: round3((own_after - own_before) / cost.window_s),
            added_latency_p99_ms: round3(sfu_path.latency.p99_ms - direct_path.latency.p99_ms),
            server: cost,
            udp_drops,
            sfu_path,
            direct_path,
        };
        eprintln!(
            "  {:>4} subscribers: {:>6.0} forwarded/s, server {:.2} cores ({:.1} us/packet), clients {:.2} cores; loss {:.2}%, p50 {:.1} ms, p99 {:.1} ms (direct p99 {:.1} ms)",
            step.subscribers,
            step.server.forwarded_per_s,
            step.server.cores,
            step.server.cpu_us_per_forwarded,
            step.load_generator_cores,
            step.sfu_path.loss_percent,
            step.sfu_path.latency.p50_ms,
            step.sfu_path.latency.p99_ms,
            step.direct_path.latency.p99_ms,
        );
        let over = step.sfu_path.loss_percent > options.loss_limit_percent
            || step.sfu_path.latency.p99_ms > options.p99_limit_ms;
        steps.push(step);
        if over {
            let step = steps.last().map_or(0, |s| s.subscribers);
            break format!("limit passed at {step} subscribers");
        }
    };
    let last_within_limits = steps
        .iter()
        .filter(|s| {
            s.sfu_path.loss_percent <= options.loss_limit_percent
                && s.sfu_path.latency.p99_ms <= options.p99_limit_ms
        })
        .map(|s| s.subscribers)
        .max();
    let report = Report {
        benchmark: "ramp",
        date: today(),
        client: options.client.name(),
        shown: options.shown,
        loss_limit_percent: options.loss_limit_percent,
        p99_limit_ms: options.p99_limit_ms,
        steps,
        stopped,
        last_within_limits,
    };
    baseline.finish().await;
    run.finish().await;
    server.stop().await?;
    println!(
        "ramp on {} clients: chair + {} shown communes publishing, subscribers receiving {} video streams each",
        report.client,
        report.shown,
        report.shown + 1
    );
    println!(
        "  subscribers  down-tracks  forwarded/s  server cores  us/packet  client cores  loss %  p50 ms  p99 ms  direct p99 ms"
    );
    for s in &report.steps {
        println!(
            "  {:>11}  {:>11}  {:>11.0}  {:>12.2}  {:>9.1}  {:>12.2}  {:>6.2}  {:>6.1}  {:>6.1}  {:>13.1}  {:>12}",
            s.subscribers,
            s.video_down_tracks + s.audio_down_tracks,
            s.server.forwarded_per_s,
            s.server.cores,
            s.server.cpu_us_per_forwarded,
            s.load_generator_cores,
            s.sfu_path.loss_percent,
            s.sfu_path.latency.p50_ms,
            s.sfu_path.latency.p99_ms,
            s.direct_path.latency.p99_ms,
            s.udp_drops.receive_buffer_errors
        );
    }
    println!(
        "  stopped: {}; most subscribers within limits: {}",
        report.stopped,
        report
            .last_within_limits
            .map_or("none".to_owned(), |n| n.to_string())
    );
    write_json(&options.json, &report)?;
    Ok(())
}

/// Joins sites `range` of the scenario, eight at a time.
async fn join_range(
    run: &mut CauRun,
    server: &ServerProcess,
    tokens: &[String],
    range: std::ops::Range<usize>,
    plan: &MediaPlan,
    until: Instant,
) -> anyhow::Result<()> {
    let indices: Vec<usize> = range.collect();
    for group in indices.chunks(8) {
        let joins = group.iter().map(|&i| {
            let (ws, token) = (server.ws_url.clone(), tokens[i].clone());
            let (site, receiver) = (run.scenario.sites[i].clone(), run.receivers[i].clone());
            let video = cau::VideoSetup::of(&run.scenario, i, plan);
            let kind = run.client;
            async move { cau::join(&ws, &token, &site, &receiver, video, kind).await }
        });
        let joined = futures_util::future::join_all(joins).await;
        for (&i, client) in group.iter().zip(joined) {
            let client = std::sync::Arc::new(
                client.with_context(|| format!("{} joining", run.scenario.sites[i].code))?,
            );
            if Some(i) == run.scenario.chair() {
                client.send_raw(r#"{"type":"open_meeting"}"#).await?;
            }
            run.start_publishing(i, client.clone(), plan, until);
            run.clients[i] = Some(client);
        }
    }
    Ok(())
}

async fn wait_for(
    run: &CauRun,
    expected: &[crate::scenario::Expectation],
    timeout: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let missing = expected
            .iter()
            .filter(|e| {
                run.receivers[e.receiver]
                    .first_arrival(e.publisher as u16, e.kind)
                    .is_none()
            })
            .count();
        if missing == 0 {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!(
                "{missing} of {} streams delivered nothing within {timeout:?}",
                expected.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
