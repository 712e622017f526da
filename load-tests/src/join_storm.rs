//! `join-storm`: every site of the all-hands meeting joins within a couple of seconds,
//! the way a province's communes do when the meeting starts; each site's join time is
//! from its signaling socket opening to the first media packet it receives.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use serde::Serialize;

use crate::all_hands::{CauRun, print_delivery, today, write_json};
use crate::cau;
use crate::figures::{Delivery, Percentiles, round3};
use crate::media::{MediaPlan, now_ns};
use crate::scenario::Scenario;
use crate::server::{ServeOptions, ServerProcess};

#[derive(Debug, Clone)]
pub struct Options {
    pub communes: usize,
    /// Joins start spread evenly over this long.
    pub spread: Duration,
    /// How long a site may take to receive its first media before it counts as failed.
    pub deadline: Duration,
    /// After every site receives media, the meeting runs this long, measured.
    pub seconds: u64,
    pub plan: MediaPlan,
    pub json: Option<std::path::PathBuf>,
    /// The stack simulating the sites.
    pub client: crate::cau::ClientKind,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub benchmark: &'static str,
    pub date: String,
    /// The stack that simulated the sites: `webrtc-rs` or `light`.
    pub client: &'static str,
    pub sites: usize,
    pub spread_s: f64,
    /// Socket open to first media packet received, over the sites that received any.
    pub join_to_first_media: Percentiles,
    /// Socket open to the first packet of every stream the site must receive.
    pub join_to_all_streams: Percentiles,
    pub sites_with_media: usize,
    pub sites_within_3_s: usize,
    /// Sites whose `join` failed, with the reason.
    pub failed_joins: Vec<String>,
    /// Codes of the sites that received nothing before the deadline.
    pub sites_without_media: Vec<String>,
    /// What arrived over the measured seconds after the storm.
    pub after_storm: Delivery,
}

pub async fn run(options: Options) -> anyhow::Result<()> {
    let server = ServerProcess::start(&ServeOptions::default()).await?;
    let directory = cau::directory(server.http_addr).await?;
    let scenario = Scenario::all_hands(&directory, options.communes)?;
    let sites = scenario.sites.len();
    let tokens = cau::schedule(server.http_addr, &scenario).await?;
    let mut run = CauRun::new(scenario, options.client);
    let chair = run.scenario.chair().unwrap_or(0);
    let until = Instant::now() + options.deadline + Duration::from_secs(options.seconds + 30);
    eprintln!(
        "join-storm: {sites} sites join within {:?}, the chair first; server pid {}",
        options.spread, server.pid
    );
    // The chair first, then every other site at its own moment of the spread: each join
    // runs in a task of its own, so a slow one holds up no other.
    let storm_start = Instant::now();
    let others: Vec<usize> = (0..sites).filter(|&i| i != chair).collect();
    let mut order = vec![chair];
    order.extend(others);
    let mut joins = Vec::new();
    for (position, &index) in order.iter().enumerate() {
        let at = storm_start
            + options
                .spread
                .mul_f64(position as f64 / (sites.max(2) - 1) as f64);
        let (ws, token) = (server.ws_url.clone(), tokens[index].clone());
        let (site, receiver) = (
            run.scenario.sites[index].clone(),
            run.receivers[index].clone(),
        );
        let is_chair = index == chair;
        let video = cau::VideoSetup::of(&run.scenario, index, &options.plan);
        let kind = run.client;
        joins.push(tokio::spawn(async move {
            tokio::time::sleep_until(at.into()).await;
            let started = now_ns();
            let client = cau::join(&ws, &token, &site, &receiver, video, kind).await;
            if let Ok(client) = &client
                && is_chair
            {
                client.send_raw(r#"{"type":"open_meeting"}"#).await?;
            }
            client.map(|c| (index, started, Arc::new(c)))
        }));
    }
    let mut failed_joins = Vec::new();
    for join in joins {
        match join.await {
            Ok(Ok((index, started, client))) => {
                run.join_started_ns[index] = started;
                run.start_publishing(index, client.clone(), &options.plan, until);
                run.clients[index] = Some(client);
            }
            Ok(Err(error)) => failed_joins.push(format!("{error:#}")),
            Err(error) => failed_joins.push(format!("a join task failed: {error}")),
        }
    }
    eprintln!(
        "  {} of {sites} joins returned after {:.1} s",
        sites - failed_joins.len(),
        storm_start.elapsed().as_secs_f64()
    );
    // Wait for every site's first media, or the deadline counted from the last join start.
    let deadline = storm_start + options.spread + options.deadline;
    loop {
        let waiting = (0..sites)
            .filter(|&i| run.receivers[i].lock().first_media_ns.is_none())
            .count();
        if waiting == 0 || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if let Ok(chair_client) = run.chair_client() {
        cau::chair_arranges(chair_client, &run.scenario).await?;
    }
    let _ = run.wait_for_all_streams(options.deadline).await;

    let mut first_media_ms = Vec::new();
    let mut all_streams_ms = Vec::new();
    let mut sites_without_media = Vec::new();
    for (index, receiver) in run.receivers.iter().enumerate() {
        let started = run.join_started_ns[index];
        let reception = receiver.lock();
        match reception.first_media_ns {
            Some(first) if started > 0 => {
                first_media_ms.push((first.saturating_sub(started)) as f64 / 1e6)
            }
            _ => sites_without_media.push(run.scenario.sites[index].code.clone()),
        }
        let arrivals: Option<Vec<u64>> = run
            .scenario
            .expected_by(index)
            .map(|e| {
                // In whichever video layer the server chose.
                reception
                    .streams
                    .iter()
                    .filter(|(key, _)| {
                        usize::from(key.publisher) == e.publisher && key.kind == e.kind
                    })
                    .filter_map(|(_, stream)| stream.first_arrival_ns)
                    .min()
            })
            .collect();
        if let Some(last) = arrivals.and_then(|a| a.into_iter().max())
            && started > 0
        {
            all_streams_ms.push(last.saturating_sub(started) as f64 / 1e6);
        }
    }
    // Then the meeting as it runs after the storm.
    run.window.open();
    for second in 1..=options.seconds {
        tokio::time::sleep(Duration::from_secs(1)).await;
        eprintln!("  after the storm {second}/{} s", options.seconds);
    }
    run.window.close();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let report = Report {
        benchmark: "join-storm",
        date: today(),
        client: options.client.name(),
        sites,
        spread_s: round3(options.spread.as_secs_f64()),
        sites_with_media: first_media_ms.len(),
        sites_within_3_s: first_media_ms.iter().filter(|&&ms| ms <= 3000.0).count(),
        join_to_first_media: Percentiles::of_ms(&first_media_ms),
        join_to_all_streams: Percentiles::of_ms(&all_streams_ms),
        failed_joins,
        sites_without_media,
        after_storm: run.delivery(),
    };
    run.finish().await;
    server.stop().await?;
    println!(
        "join-storm, {sites} sites on {} clients starting their joins within {:.1} s",
        report.client, report.spread_s
    );
    let p = &report.join_to_first_media;
    println!(
        "  socket open to first media   p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms; {} of {sites} sites within 3 s",
        p.p50_ms, p.p99_ms, p.max_ms, report.sites_within_3_s
    );
    let p = &report.join_to_all_streams;
    println!(
        "  socket open to every stream  p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms (video waits for a keyframe, every 2 s)",
        p.p50_ms, p.p99_ms, p.max_ms
    );
    println!(
        "  failed joins {}, sites without media {:?}",
        report.failed_joins.len(),
        report.sites_without_media
    );
    print_delivery("after storm", &report.after_storm);
    for failure in &report.failed_joins {
        eprintln!("  failed join: {failure}");
    }
    write_json(&options.json, &report)?;
    if report.sites_with_media == 0 {
        bail!("no site received any media");
    }
    Ok(())
}
