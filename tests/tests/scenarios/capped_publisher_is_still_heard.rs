//! A site whose uplink is capped at 400 kbit/s mid-meeting: the others still hear it
//! cleanly (audio loss under 1%), and its video still arrives, in whatever layers its
//! browser can still send.
//!
//! The capped site's Chromium runs in a network namespace of its own behind a "line"
//! namespace (`tests/src/netns.rs`); the cap is an htb class whose queue holds a quarter
//! of a second, on the line's link towards the server. The listening site's Chromium,
//! with no camera or microphone, runs beside the server.

use std::time::Duration;

use anyhow::{Context, bail};
use cau_tests::browser::run_script_for;
use cau_tests::netns::{SiteNamespace, server_config};
use cau_tests::server::start_test_server_with;
use cau_tests::shaping::run_in_private_network;

const CAP_KBIT: &str = "400";
const AUDIO_LOSS_BELOW_PERCENT: f64 = 1.0;
const HOLD_S: &str = "20";

#[test]
fn capped_publisher_is_still_heard() -> anyhow::Result<()> {
    run_in_private_network(scenario)
}

async fn scenario() -> anyhow::Result<()> {
    let mut namespace = SiteNamespace::create()?;
    let chromium = std::env::var("CAU_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let launcher = namespace.chromium_wrapper(&chromium)?;
    let config = server_config("bandwidth_estimation = true\n");
    let server = start_test_server_with(&config).await?;
    let report = run_script_for(
        "capped-line.mjs",
        &[
            &server.base_url(),
            "giao-ban",
            "uplink",
            namespace.line(),
            namespace.uplink(),
            &launcher.to_string_lossy(),
            CAP_KBIT,
            HOLD_S,
        ],
        Duration::from_secs(150),
    )
    .await?;
    server.shutdown(Duration::from_secs(1)).await;
    drop(namespace);

    let good = &report["pages"]["Good"];
    let audio = &good["audio_under_cap"];
    let received = audio["received"].as_u64().unwrap_or(0);
    let loss = audio["loss_percent"]
        .as_f64()
        .with_context(|| format!("no audio figures under the cap: {report}"))?;
    // Audio kept arriving over the 20 s hold: 50 packets a second while the fake
    // microphone sounds, a packet every 400 ms in its pauses (DTX), so at least half of
    // 50 a second (43 a second in the runs of 29 November).
    if received < 50 * 20 / 2 || loss >= AUDIO_LOSS_BELOW_PERCENT {
        bail!(
            "the capped site's audio reached the other at {loss:.2}% loss ({received} packets): \
             {report}"
        );
    }
    let frames = good["video_frames_under_cap"].as_u64().unwrap_or(0);
    if frames == 0 {
        bail!("the capped site's video stopped under the cap: {report}");
    }
    eprintln!(
        "figures: audio under the cap {audio}, {frames} video frames decoded, heights {}",
        good["heights"]
    );
    Ok(())
}
