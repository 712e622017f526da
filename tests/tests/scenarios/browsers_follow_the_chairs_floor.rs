//! Three headless Chromium sites in a chair-controlled meeting: the communes wait in the lobby until the chair opens the meeting from its console; a commune's audio reaches the others only after the chair grants it the floor, and stops when the chair revokes it.

use anyhow::bail;
use cau_tests::api::{admin_config, link_for, now_millis, schedule};
use cau_tests::browser::run_script;
use cau_tests::server::start_test_server_with;

#[tokio::test(flavor = "multi_thread")]
async fn browsers_follow_the_chairs_floor() -> anyhow::Result<()> {
    let server = start_test_server_with(&admin_config()).await?;
    let now = now_millis();
    let meeting = schedule(
        server.http_addr(),
        now - 60_000,
        now + 3_600_000,
        &["ha-quang", "tra-linh"],
    )
    .await?;
    let chair = link_for(&meeting, "cao-bang")?;
    let commune_a = link_for(&meeting, "ha-quang")?;
    let commune_b = link_for(&meeting, "tra-linh")?;
    let report = run_script(
        "floor-control.mjs",
        &[&server.base_url(), &chair, &commune_a, &commune_b],
    )
    .await?;
    println!("{report}");
    if report["ok"] != true {
        bail!("the floor-control script did not pass: {report}");
    }
    Ok(())
}
