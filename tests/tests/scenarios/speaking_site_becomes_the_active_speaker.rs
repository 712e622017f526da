//! Three headless Chromium sites in an open-discussion meeting: the site that speaks into its microphone, while the others' are off, is announced as the active speaker to every site within a few seconds, highlighted, and shown beside the chair on the others' main screens.

use anyhow::bail;
use cau_signaling::model::format_time;
use cau_tests::api::{admin_config, link_for, now_millis, request};
use cau_tests::browser::run_script;
use cau_tests::server::start_test_server_with;
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn speaking_site_becomes_the_active_speaker() -> anyhow::Result<()> {
    let server = start_test_server_with(&admin_config()).await?;
    let now = now_millis();
    // Open discussion: everyone is heard, so whoever speaks may become the speaker (in
    // chair mode only the chair and the floor holder can).
    let body = json!({
        "title": "Thảo luận trực tuyến",
        "start": format_time(now - 60_000),
        "end": format_time(now + 3_600_000),
        "chair": "cao-bang",
        "sites": ["ha-quang", "tra-linh"],
        "floor_mode": "open",
    });
    let (status, meeting) =
        request(server.http_addr(), "POST", "/api/meetings", Some(&body)).await?;
    if status != 201 {
        bail!("scheduling answered {status}: {meeting}");
    }
    let chair = link_for(&meeting, "cao-bang")?;
    let commune_a = link_for(&meeting, "ha-quang")?;
    let commune_b = link_for(&meeting, "tra-linh")?;
    let report = run_script(
        "active-speaker.mjs",
        &[&server.base_url(), &chair, &commune_a, &commune_b],
    )
    .await?;
    println!("{report}");
    if report["ok"] != true {
        bail!("the active-speaker script did not pass: {report}");
    }
    Ok(())
}
