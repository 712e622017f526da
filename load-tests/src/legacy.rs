//! The first benchmarks: join latency in Chromium, server memory, and the cost of line
//! monitoring. Each prints its figures and one line of JSON.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use cau_tests::client::{ClientConfig, MediaKind, TestClient, warm_up};
use serde_json::json;

use crate::server::{ServeOptions, ServerProcess, cpu_seconds, rss_kib};

pub async fn join_latency(joins: u32) -> anyhow::Result<()> {
    let server = cau_tests::server::start_test_server().await?;
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("browser/join-latency.mjs");
    println!("join-latency: {joins} joins against {}", server.base_url());
    let output = tokio::process::Command::new("node")
        .arg(&script)
        .arg(server.base_url())
        .arg("bench")
        .arg(joins.to_string())
        .stderr(Stdio::inherit())
        .output()
        .await
        .context("cannot run node")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report: serde_json::Value = stdout
        .lines()
        .rev()
        .find_map(|line| serde_json::from_str(line).ok())
        .with_context(|| format!("no report from the script: {stdout}"))?;
    if !output.status.success() {
        bail!("the join-latency script failed: {report}");
    }
    for (index, sample) in report["samples"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        println!(
            "  join {:>2}: {:>5} ms from join, {:>5} ms from navigation",
            index + 1,
            sample["from_join_ms"],
            sample["from_navigation_ms"]
        );
    }
    println!(
        "median: {} ms from join (socket open) to first remote frame; {} ms from navigation",
        report["median_from_join_ms"], report["median_from_navigation_ms"]
    );
    println!(
        "{}",
        json!({
            "benchmark": "join-latency",
            "joins": joins,
            "median_from_join_ms": report["median_from_join_ms"],
            "median_from_navigation_ms": report["median_from_navigation_ms"],
            "chromium": report["chromium"],
        })
    );
    server.shutdown(Duration::from_secs(1)).await;
    Ok(())
}

pub async fn rss(clients: usize, duration: Duration) -> anyhow::Result<()> {
    let server = ServerProcess::start(&ServeOptions::default()).await?;
    let (pid, ws_url) = (server.pid, server.ws_url.clone());
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle = rss_kib(pid)?;
    println!("rss: server pid {pid}, idle RSS {} KiB", idle);

    let mut group = Vec::new();
    for index in 0..clients {
        let name = format!("site-{index}");
        group.push(TestClient::join(ClientConfig::new(ws_url.clone(), "rss", &name)).await?);
    }
    let members: Vec<&TestClient> = group.iter().collect();
    warm_up(&members, Duration::from_secs(30)).await?;

    // Realistic rates: audio 50 packets/s; video about 500 kbit/s, 50 packets/s of 1,200 bytes.
    let started = Instant::now();
    let mut index = 0u32;
    let video_payload = vec![0x10u8; 1200];
    while started.elapsed() < duration {
        for client in &group {
            client.send_tagged("rss", MediaKind::Audio, index).await?;
            client.send_video(&video_payload, index % 3 == 2).await?;
        }
        index += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let loaded = rss_kib(pid)?;
    let per_client = (loaded.saturating_sub(idle)) as f64 / clients as f64 / 1024.0;
    println!(
        "rss: {} KiB with {clients} clients publishing audio and video for {duration:?}: {per_client:.2} MiB per client above idle",
        loaded
    );
    println!(
        "{}",
        json!({
            "benchmark": "rss",
            "clients": clients,
            "idle_kib": idle,
            "loaded_kib": loaded,
            "mib_per_client": (per_client * 100.0).round() / 100.0,
        })
    );
    for client in group {
        client.leave().await?;
    }
    server.stop().await
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

pub async fn monitor_cost(sites: usize, window: Duration, rounds: usize) -> anyhow::Result<()> {
    println!("monitor-cost: {sites} sites, {window:?} windows, {rounds} rounds of (on, off)");
    // Per round: CPU per 1,000 forwarded packets with monitoring on and off, and the
    // ratio of the two. The machine's load drifts between rounds; within a round the
    // two runs are back to back, so the median of the per-round ratios is the figure.
    let mut on = Vec::new();
    let mut off = Vec::new();
    let mut ratios = Vec::new();
    for round in 0..rounds {
        // Alternate which goes first, so drift in the machine's load favours neither.
        let order = if round % 2 == 0 {
            [true, false]
        } else {
            [false, true]
        };
        let mut pair = [0.0f64; 2];
        for monitoring in order {
            let run = meeting_cpu(sites, window, monitoring).await?;
            let per_kpkt_us = run.cpu_s / run.forwarded.max(1) as f64 * 1e9;
            println!(
                "  round {} monitoring {:>3}: {:.2} s CPU in {:.1} s ({:.2} cores), {} packets forwarded ({:.0}/s), {per_kpkt_us:.0} us CPU per 1,000",
                round + 1,
                if monitoring { "on" } else { "off" },
                run.cpu_s,
                run.wall_s,
                run.cpu_s / run.wall_s,
                run.forwarded,
                run.forwarded as f64 / run.wall_s,
            );
            pair[usize::from(!monitoring)] = per_kpkt_us;
        }
        on.push(pair[0]);
        off.push(pair[1]);
        ratios.push(pair[0] / pair[1]);
    }
    let (on, off, ratio) = (median(&mut on), median(&mut off), median(&mut ratios));
    let extra = (ratio - 1.0) * 100.0;
    println!(
        "median: {on:.0} us (on) vs {off:.0} us (off) of server CPU per 1,000 packets forwarded; median per-round ratio {ratio:.3}: monitoring costs {extra:+.1}%"
    );
    println!(
        "{}",
        json!({
            "benchmark": "monitor-cost",
            "sites": sites,
            "window_s": window.as_secs(),
            "rounds": rounds,
            "us_per_1000_forwarded_on": on.round(),
            "us_per_1000_forwarded_off": off.round(),
            "median_ratio": (ratio * 1000.0).round() / 1000.0,
            "extra_percent": (extra * 10.0).round() / 10.0,
        })
    );
    Ok(())
}

/// What one measured window of a meeting cost the server.
struct MeetingRun {
    cpu_s: f64,
    wall_s: f64,
    forwarded: u64,
}

/// Runs one meeting of `sites` sites in a fresh server and returns the server's CPU
/// seconds and forwarded packets over `window`, once every site is up.
async fn meeting_cpu(
    sites: usize,
    window: Duration,
    monitoring: bool,
) -> anyhow::Result<MeetingRun> {
    use cau_tests::api::{link_for, now_millis, request, token_in};
    let server = ServerProcess::start(&ServeOptions {
        monitoring,
        ..ServeOptions::default()
    })
    .await?;
    let addr = server.http_addr;
    let (_, directory) = request(addr, "GET", "/api/sites", None).await?;
    let codes: Vec<String> = directory
        .as_array()
        .context("no site list")?
        .iter()
        .filter_map(|s| s["code"].as_str().map(str::to_owned))
        .filter(|code| code != "cao-bang")
        .take(sites.saturating_sub(1))
        .collect();
    let now = now_millis();
    let body = json!({
        "title": "Đo chi phí giám sát",
        "start": cau_signaling::model::format_time(now - 60_000),
        "end": cau_signaling::model::format_time(now + 3_600_000),
        "chair": "cao-bang",
        "sites": codes,
        "floor_mode": "open",
    });
    let (status, meeting) = request(addr, "POST", "/api/meetings", Some(&body)).await?;
    if status != 201 {
        bail!("scheduling answered {status}: {meeting}");
    }
    let chair = TestClient::join(ClientConfig::with_token(
        server.ws_url.clone(),
        token_in(&link_for(&meeting, "cao-bang")?)?,
    ))
    .await?;
    chair.send_raw(r#"{"type":"open_meeting"}"#).await?;
    let mut group = vec![chair];
    for code in &codes {
        let token = token_in(&link_for(&meeting, code)?)?;
        group.push(TestClient::join(ClientConfig::with_token(server.ws_url.clone(), token)).await?);
    }
    // Every site sends audio (50 packets/s) and video (25 packets/s of 1,000 bytes).
    let send = async |group: &[TestClient], ticks: u32| -> anyhow::Result<()> {
        let audio = vec![0x55u8; 100];
        let video = vec![0x10u8; 1000];
        for tick in 0..ticks {
            let started = Instant::now();
            for client in group {
                client.send_audio(&audio).await?;
                if tick % 2 == 0 {
                    client.send_video(&video, true).await?;
                }
            }
            tokio::time::sleep(Duration::from_millis(20).saturating_sub(started.elapsed())).await;
        }
        Ok(())
    };
    // Warm up: connections settle, statistics start.
    send(&group, 150).await?;
    let status = async || -> anyhow::Result<u64> {
        let (_, status) = request(addr, "GET", "/api/status", None).await?;
        status["packets_forwarded"]
            .as_u64()
            .context("no packets_forwarded")
    };
    let (cpu_before, forwarded_before) = (cpu_seconds(server.pid)?, status().await?);
    let started = Instant::now();
    send(&group, (window.as_millis() / 20) as u32).await?;
    let wall_s = started.elapsed().as_secs_f64();
    let (cpu_after, forwarded_after) = (cpu_seconds(server.pid)?, status().await?);
    for client in group {
        client.drop_abruptly().await;
    }
    server.stop().await?;
    Ok(MeetingRun {
        cpu_s: cpu_after - cpu_before,
        wall_s,
        forwarded: forwarded_after - forwarded_before,
    })
}
