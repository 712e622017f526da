//! `cau-load`: Cầu's benchmarks. Each prints its figures and one line of JSON.
//!
//! Figures are measured, never asserted: these machines are shared and noisy, so the
//! benchmarks report medians and leave judging them to people (docs/benchmarks.md).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use cau_tests::client::{ClientConfig, MediaKind, TestClient, warm_up};
use clap::{Parser, Subcommand};
use serde_json::json;

#[derive(Parser)]
#[command(name = "cau-load", about = "Benchmarks of the Cầu server")]
struct Cli {
    #[command(subcommand)]
    command: Benchmark,
}

#[derive(Subcommand)]
enum Benchmark {
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
    /// Runs a server on free loopback ports and prints its addresses (used by `rss`,
    /// which measures the server in a process of its own).
    Serve,
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
            Benchmark::JoinLatency { joins } => join_latency(joins).await,
            Benchmark::Rss { clients, seconds } => rss(clients, Duration::from_secs(seconds)).await,
            Benchmark::Serve => serve().await,
        }
    })
}

async fn join_latency(joins: u32) -> anyhow::Result<()> {
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

async fn serve() -> anyhow::Result<()> {
    let server = cau_tests::server::start_test_server().await?;
    println!("{}", server.ws_url());
    // The parent kills this process when done; stop also if it vanishes.
    tokio::signal::ctrl_c().await?;
    Ok(())
}

async fn rss(clients: usize, duration: Duration) -> anyhow::Result<()> {
    let mut child = tokio::process::Command::new(std::env::current_exe()?)
        .arg("serve")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("cannot start the server process")?;
    let pid = child.id().context("the server process has no id")?;
    let stdout = child.stdout.take().context("no server stdout")?;
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stdout));
    let ws_url = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .context("the server did not start")??
        .context("the server printed nothing")?;
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
    child.kill().await?;
    Ok(())
}

/// Resident set size of process `pid`, from /proc.
fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS in /proc status")
}
