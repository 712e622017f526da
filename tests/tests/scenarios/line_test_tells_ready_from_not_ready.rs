//! Two sites test their lines half an hour before a meeting, with their join links, in
//! a network namespace made by this test: one on a clean line, one whose line is capped
//! at 200 kbit/s (an htb class on its loopback address, both ways: real shaping of its
//! UDP). The clean site is told `ready`; the capped one `not_ready`, with throughput
//! among the reasons, in plain words. Both results are stored (the admin API lists
//! them) and the chair, already connected, sees each site's verdict in the meeting's
//! state.

use std::net::Ipv4Addr;
use std::time::Duration;

use anyhow::{Context, ensure};
use cau_tests::api::{admin_config, link_for, now_millis, request, schedule, token_in};
use cau_tests::client::{ClientConfig, TestClient};
use cau_tests::line_test::{LineTestConfig, LineTestOutcome, run_line_test};
use cau_tests::server::start_test_server_with;
use cau_tests::shaping::{Direction, Shaper, run_in_private_network};
use serde_json::Value;

const CLEAN: (&str, Ipv4Addr) = ("ha-quang", Ipv4Addr::new(127, 0, 0, 2));
const CAPPED: (&str, Ipv4Addr) = ("tra-linh", Ipv4Addr::new(127, 0, 0, 3));
const CHAIR: &str = "cao-bang";

#[test]
fn line_test_tells_ready_from_not_ready() -> anyhow::Result<()> {
    run_in_private_network(scenario)
}

async fn scenario() -> anyhow::Result<()> {
    Shaper::new().cap(CAPPED.1, Direction::Both, 200)?;
    let server = start_test_server_with(&admin_config()).await?;
    let addr = server.http_addr();
    // Links admit their sites from an hour before the start (the default).
    let start = now_millis() + 30 * 60 * 1000;
    let meeting = schedule(addr, start, start + 60 * 60 * 1000, &[CLEAN.0, CAPPED.0]).await?;
    let ws = server.ws_url();

    // The chair never waits in the lobby: it sees the meeting's state before the start.
    let chair = TestClient::join(ClientConfig::with_token(
        ws.clone(),
        token_in(&link_for(&meeting, CHAIR)?)?,
    ))
    .await
    .context("the chair could not connect")?;

    let (clean, capped) = tokio::join!(
        test_line(&ws, &meeting, CLEAN),
        test_line(&ws, &meeting, CAPPED)
    );
    let (clean, capped) = (clean?, capped?);
    println!("clean: {} in {:?}", clean.result, clean.elapsed);
    println!("capped: {} in {:?}", capped.result, capped.elapsed);

    check_clean(&clean)?;
    check_capped(&capped)?;

    // Stored: IT staff read each site's history.
    for (site, verdict) in [(CLEAN.0, "ready"), (CAPPED.0, "not_ready")] {
        let (status, history) =
            request(addr, "GET", &format!("/api/sites/{site}/line-tests"), None).await?;
        ensure!(
            status == 200,
            "{site}'s line tests answered {status}: {history}"
        );
        let tests = history.as_array().context("a list of line tests")?;
        ensure!(tests.len() == 1, "{site} has one test on record: {history}");
        ensure!(
            tests[0]["verdict"] == verdict,
            "{site}'s stored verdict: {history}"
        );
        ensure!(
            tests[0]["meeting"] == meeting["id"],
            "{site}'s test names its meeting: {history}"
        );
    }
    let (status, history) = request(
        addr,
        "GET",
        &format!("/api/sites/{}/line-tests", CAPPED.0),
        None,
    )
    .await?;
    ensure!(status == 200);
    let stored_codes: Vec<&str> = history[0]["reasons"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["code"].as_str())
        .collect();
    ensure!(
        stored_codes
            .iter()
            .any(|c| *c == "download_low" || *c == "upload_low"),
        "the stored reasons name throughput: {history}"
    );

    // The chair sees both verdicts beside the sites in the meeting's state.
    chair
        .wait_until(
            "the line tests in the chair's meeting state",
            Duration::from_secs(10),
            |c| {
                c.messages_of_type("meeting_state")
                    .last()
                    .is_some_and(|state| {
                        verdict_of(state, CLEAN.0) == Some("ready")
                            && verdict_of(state, CAPPED.0) == Some("not_ready")
                    })
            },
        )
        .await?;
    chair.leave().await?;
    server.shutdown(Duration::from_secs(2)).await;
    Ok(())
}

async fn test_line(
    ws: &str,
    meeting: &Value,
    (site, ip): (&str, Ipv4Addr),
) -> anyhow::Result<LineTestOutcome> {
    let config = LineTestConfig {
        ws_url: ws.to_owned(),
        token: token_in(&link_for(meeting, site)?)?,
        local_ip: ip,
    };
    run_line_test(config)
        .await
        .with_context(|| format!("{site}'s line test"))
}

fn check_clean(outcome: &LineTestOutcome) -> anyhow::Result<()> {
    let result = &outcome.result;
    let figures = &result["figures"];
    ensure!(
        outcome.verdict() == "ready",
        "a clean line is ready: {result}"
    );
    ensure!(
        outcome.reason_codes().is_empty(),
        "and has no reason against it: {result}"
    );
    // The whole rate a meeting needs, both ways, on a line that can carry far more.
    let needed = figures["download_needed_kbps"]
        .as_f64()
        .context("a target")?;
    ensure!(
        needed >= 500.0,
        "the default target is a meeting's rate: {result}"
    );
    for direction in ["download_kbps", "upload_kbps"] {
        let measured = figures[direction].as_f64().context("a figure")?;
        ensure!(
            measured >= needed * 0.9,
            "{direction} near {needed}: {result}"
        );
    }
    let rtt = figures["rtt_ms"].as_f64().context("a round trip")?;
    ensure!(rtt < 100.0, "loopback answers at once: {result}");
    ensure!(
        figures["loss_percent"].as_f64() < Some(1.0),
        "no loss to speak of: {result}"
    );
    ensure!(
        figures["audio"] == true && figures["video"] == true,
        "devices work: {result}"
    );
    // About 12 s in all; the margin is for a loaded two-core machine.
    ensure!(
        outcome.elapsed < Duration::from_secs(20),
        "took {:?}",
        outcome.elapsed
    );
    ensure!(
        outcome.probes_echoed > 300,
        "probes went both ways: {}",
        outcome.probes_echoed
    );
    let phases: Vec<&str> = outcome
        .phases
        .iter()
        .filter_map(|p| p["phase"].as_str())
        .collect();
    ensure!(
        phases.starts_with(&["probe", "download", "upload"]),
        "the phases in order: {phases:?}"
    );
    Ok(())
}

fn check_capped(outcome: &LineTestOutcome) -> anyhow::Result<()> {
    let result = &outcome.result;
    ensure!(
        outcome.verdict() == "not_ready",
        "a 200 kbit/s line is not ready: {result}"
    );
    let throughput: Vec<&Value> = result["reasons"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["code"] == "download_low" || r["code"] == "upload_low")
        .collect();
    ensure!(
        !throughput.is_empty(),
        "throughput is among the reasons: {result}"
    );
    for reason in throughput {
        ensure!(
            reason["severity"] == "not_ready",
            "and a reason to be not ready: {result}"
        );
        let measured = reason["measured"].as_f64().context("a measured rate")?;
        ensure!(
            measured < 200.0,
            "no more than the cap got through: {result}"
        );
        let message = reason["message"].as_str().unwrap_or_default();
        ensure!(
            message.contains("kbit/s") && message.contains("a meeting needs"),
            "the reason says it in plain words: {message:?}"
        );
    }
    ensure!(
        result["figures"]["audio"] == true,
        "its devices still work: {result}"
    );
    Ok(())
}

/// The verdict of `site`'s line test in a `meeting_state` message.
fn verdict_of<'a>(state: &'a Value, site: &str) -> Option<&'a str> {
    state["sites"]
        .as_array()?
        .iter()
        .find(|s| s["code"] == site)?["line_test"]["verdict"]
        .as_str()
}
