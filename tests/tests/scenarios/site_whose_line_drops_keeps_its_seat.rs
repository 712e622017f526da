//! A commune's line drops mid-meeting, for 10 s and then for 30 s, and comes back: its
//! browser reconnects by itself, media is back within 2 s of the line, it keeps its
//! seat (the same roll-call record) and the floor, and meanwhile the chair's roll call
//! shows it "reconnecting", never "left".
//!
//! The commune's Chromium runs in a network namespace of its own, behind a namespace
//! that is its line to the server; the drop is `ip link set down` on the line's link
//! towards the server (see `tests/src/netns.rs`), and while it is down the line loses
//! what the commune sends silently, as a failed mountain line does (no ICMP error to
//! tell its TCP that a connection attempt failed). The chair's Chromium runs beside the
//! server.

use std::time::Duration;

use anyhow::{Context, bail};
use cau_signaling::model::{format_time, parse_time};
use cau_tests::api::{admin_config, link_for, now_millis, request, schedule};
use cau_tests::browser::run_script_for;
use cau_tests::netns::{SiteNamespace, server_config};
use cau_tests::server::start_test_server_with;
use cau_tests::shaping::run_in_private_network;
use serde_json::Value;

const COMMUNE: &str = "ha-quang";
/// The bound: media back within this long of the line.
const MEDIA_BACK_WITHIN_MS: u64 = 2_000;

#[test]
fn site_whose_line_drops_keeps_its_seat() -> anyhow::Result<()> {
    run_in_private_network(scenario)
}

async fn scenario() -> anyhow::Result<()> {
    let mut namespace = SiteNamespace::create()?;
    let chromium = std::env::var("CAU_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let launcher = namespace.chromium_wrapper(&chromium)?;
    let config = admin_config() + &server_config("bandwidth_estimation = true\n");
    let server = start_test_server_with(&config).await?;
    let addr = server.http_addr();
    let now = now_millis();
    let meeting = schedule(addr, now - 60_000, now + 3_600_000, &[COMMUNE]).await?;
    let id = meeting["id"].as_str().context("no meeting id")?.to_owned();
    let chair_link = link_for(&meeting, "cao-bang")?;
    let commune_link = link_for(&meeting, COMMUNE)?;

    let report = run_script_for(
        "line-drop.mjs",
        &[
            &server.base_url(),
            &chair_link,
            &commune_link,
            namespace.line(),
            namespace.uplink(),
            &launcher.to_string_lossy(),
            "10,30",
        ],
        Duration::from_secs(160),
    )
    .await?;

    let drops = report["drops"]
        .as_array()
        .context("no drops in the report")?;
    if drops.len() != 2 {
        bail!("expected two drops: {report}");
    }
    for drop in drops {
        let seconds = &drop["seconds"];
        let before = &drop["before"];
        let joined_at = &before["attendance"]["joined_at"];
        if before["floor"] != COMMUNE || before["attendance"]["status"] != "present" {
            bail!(
                "before the {seconds} s drop the commune should be present with the floor: {drop}"
            );
        }
        // The chair's roll call while the line is down: reconnecting, never left.
        let during = drop["during"].as_array().context("no observations")?;
        let shown = |presence: &str| during.iter().any(|o| o["presence"] == presence);
        if !shown("reconnecting") || shown("offline") {
            bail!(
                "during the {seconds} s drop the chair should see the commune reconnecting, never offline: {drop}"
            );
        }
        if during.iter().any(|o| o["status"] != "present") {
            bail!("during the {seconds} s drop the roll call changed: {drop}");
        }
        // Media back within 2 s of the line, every way.
        for (what, ms) in drop["media_back_ms"]
            .as_object()
            .context("no media figures")?
        {
            let ms = ms
                .as_u64()
                .with_context(|| format!("{what} never came back: {drop}"))?;
            if ms > MEDIA_BACK_WITHIN_MS {
                bail!(
                    "after the {seconds} s drop, {what} took {ms} ms (at most {MEDIA_BACK_WITHIN_MS}): {drop}"
                );
            }
        }
        // The same seat: the same roll-call record, and the floor.
        let after = &drop["after"];
        if after["floor"] != COMMUNE || drop["commune_holds_floor"] != true {
            bail!("the commune lost the floor in the {seconds} s drop: {drop}");
        }
        if after["attendance"]["joined_at"] != *joined_at
            || after["attendance"]["status"] != "present"
            || after["presence"] != "connected"
        {
            bail!("the commune's seat changed in the {seconds} s drop: {drop}");
        }
    }
    let script_ended = now_millis();
    // The stored roll call agrees: present since the first arrival, and left only when
    // the script closed the commune's page at its end.
    let (_, roll) = request(addr, "GET", &format!("/api/meetings/{id}/attendance"), None).await?;
    let line = roll
        .as_array()
        .and_then(|lines| lines.iter().find(|l| l["site"]["code"] == COMMUNE))
        .with_context(|| format!("no roll-call line for the commune: {roll}"))?;
    let first_arrival = drops[0]["before"]["attendance"]["joined_at"]
        .as_i64()
        .context("no first arrival")?;
    let left_at = line["left_at"]
        .as_str()
        .and_then(|t| parse_time("left_at", t).ok());
    let left_at_the_end = left_at.is_some_and(|t| t >= script_ended - 10_000);
    if line["joined_at"] != format_time(first_arrival) || !left_at_the_end {
        bail!(
            "the stored roll call should have the commune in since {} and leaving at the \
             end only: {line}",
            format_time(first_arrival)
        );
    }
    eprintln!("figures: {}", figures(drops));
    server.shutdown(Duration::from_secs(1)).await;
    drop(namespace);
    Ok(())
}

/// The times to media, for the test's output.
fn figures(drops: &[Value]) -> String {
    drops
        .iter()
        .map(|d| {
            format!(
                "{} s drop: {}, the line known back by {}, the commune's states after the line returned: {}",
                d["seconds"], d["media_back_ms"], d["line_back_via"], d["commune_states"]
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}
