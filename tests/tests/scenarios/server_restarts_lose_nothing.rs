//! The server is killed (SIGKILL) mid-meeting and started again, then stopped with
//! SIGTERM and started again: each time the chair's and the commune's browsers come back
//! by themselves within 10 s of the server answering again, to the same meeting, open,
//! with the commune still holding the floor and the same roll call; SIGTERM tells the
//! browsers the server is stopping, and the process exits cleanly.
//!
//! The server is the `cau` binary run as a child process (`tests/src/process.rs`), on
//! fixed ports and one data directory, so that a restarted server is where the old one
//! was.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use cau_tests::api::{admin_config, link_for, now_millis, request, schedule};
use cau_tests::browser::InteractiveScript;
use cau_tests::process::{ServerProcess, free_ports};
use cau_tests::server::fresh_data_dir;
use serde_json::Value;

const COMMUNE: &str = "ha-quang";
/// The bound: clients back within this long of the server coming back.
const BACK_WITHIN_MS: u64 = 10_000;

#[tokio::test(flavor = "multi_thread")]
async fn server_restarts_lose_nothing() -> anyhow::Result<()> {
    let (http_port, media_port) = free_ports(Ipv4Addr::LOCALHOST)?;
    let http = SocketAddr::from((Ipv4Addr::LOCALHOST, http_port));
    let data_dir = fresh_data_dir()?;
    let config_file = data_dir.join("cau.toml");
    let log = data_dir.join("server.log");
    std::fs::write(
        &config_file,
        format!(
            "{}[http]\nlisten = \"{http}\"\n\
             [media]\nudp_listen = \"127.0.0.1:{media_port}\"\nadvertised_ip = \"127.0.0.1\"\n\
             [storage]\ndata_dir = {:?}\n",
            admin_config(),
            data_dir.display().to_string()
        ),
    )?;
    let server = ServerProcess::start(&config_file, http, &log).await?;
    let now = now_millis();
    let meeting = schedule(http, now - 60_000, now + 3_600_000, &[COMMUNE]).await?;
    let id = meeting["id"].as_str().context("no meeting id")?.to_owned();
    let base_url = format!("http://{http}");
    let chair_link = link_for(&meeting, "cao-bang")?;
    let commune_link = link_for(&meeting, COMMUNE)?;
    let mut script = InteractiveScript::start(
        "server-restart.mjs",
        &[&base_url, &chair_link, &commune_link],
    )?;
    let before = script.expect("in_meeting", Duration::from_secs(60)).await?;
    if before["floor"] != COMMUNE || before["attendance"]["status"] != "present" {
        bail!("the commune should be in with the floor: {before}");
    }
    let joined_at = before["attendance"]["joined_at"].clone();

    // A crash: nothing is told, nothing is flushed.
    server.kill().await?;
    let server = restart(&config_file, http, &log).await?;
    let back = back_in_time(&mut script, "killed").await?;
    check_same_meeting(&back, &joined_at, "killed")?;
    if back["told_of_stop"]["chair"] == true || back["told_of_stop"]["commune"] == true {
        bail!("a killed server cannot have told anyone it was stopping: {back}");
    }

    // A graceful stop: the browsers are told, the records written, the process ends well.
    let status = server.terminate(Duration::from_secs(10)).await?;
    if !status.success() {
        bail!(
            "the server stopped with {status} after SIGTERM: see {}",
            log.display()
        );
    }
    let server = restart(&config_file, http, &log).await?;
    let back = back_in_time(&mut script, "stopped").await?;
    check_same_meeting(&back, &joined_at, "stopped")?;
    if back["told_of_stop"]["chair"] != true || back["told_of_stop"]["commune"] != true {
        bail!("SIGTERM should have told both pages that the server was stopping: {back}");
    }

    // The stored roll call agrees: present since the first arrival, never left.
    let (_, roll) = request(http, "GET", &format!("/api/meetings/{id}/attendance"), None).await?;
    for code in ["cao-bang", COMMUNE] {
        let line = roll
            .as_array()
            .and_then(|lines| lines.iter().find(|l| l["site"]["code"] == code))
            .with_context(|| format!("no roll-call line for {code}: {roll}"))?;
        if line["status"] != "present" || !line["left_at"].is_null() {
            bail!("after two restarts {code} should still be present: {line}");
        }
    }
    script.say("done").await?;
    script.finish(Duration::from_secs(20)).await?;
    server.terminate(Duration::from_secs(10)).await?;
    Ok(())
}

/// Starts the server again on the same ports and data; tells the script once it answers.
async fn restart(
    config_file: &Path,
    http: SocketAddr,
    log: &Path,
) -> anyhow::Result<ServerProcess> {
    let started = Instant::now();
    let server = ServerProcess::start(config_file, http, log).await?;
    eprintln!(
        "the server answered {} ms after its start",
        started.elapsed().as_millis()
    );
    Ok(server)
}

/// Tells the script the server is back and returns its `back` event, once each page's
/// media is back within the bound.
async fn back_in_time(script: &mut InteractiveScript, how: &str) -> anyhow::Result<Value> {
    script.say("server_back").await?;
    let back = script.expect("back", Duration::from_secs(30)).await?;
    eprintln!("{how}: media back after {}", back["media_back_ms"]);
    for (what, ms) in back["media_back_ms"]
        .as_object()
        .context("no media figures")?
    {
        let ms = ms.as_u64().with_context(|| {
            format!("after the server was {how}, {what} never came back: {back}")
        })?;
        if ms > BACK_WITHIN_MS {
            bail!(
                "after the server was {how}, {what} took {ms} ms (at most {BACK_WITHIN_MS}): {back}"
            );
        }
    }
    Ok(back)
}

/// The meeting the pages came back to is the one they left: open, the commune holding
/// the floor, its roll-call record unchanged.
fn check_same_meeting(back: &Value, joined_at: &Value, how: &str) -> anyhow::Result<()> {
    let same = back["opened"] == true
        && back["floor"] == COMMUNE
        && back["commune_holds_floor"] == true
        && back["connected"] == true
        && back["attendance"]["status"] == "present"
        && back["attendance"]["joined_at"] == *joined_at;
    if !same {
        bail!(
            "after the server was {how} the meeting is not as it was (joined at {joined_at}): {back}"
        );
    }
    Ok(())
}
