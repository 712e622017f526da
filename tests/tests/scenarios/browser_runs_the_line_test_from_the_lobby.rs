//! A commune waiting in the lobby runs its line test in headless Chromium (fake camera
//! and microphone) and is shown a verdict, with its camera and microphone confirmed by
//! the server; the chair's roll call shows the commune with the same verdict; and the
//! link's line-test page of its own runs the test too.

use anyhow::bail;
use cau_tests::api::{admin_config, link_for, now_millis, schedule};
use cau_tests::browser::run_script;
use cau_tests::server::start_test_server_with;

#[tokio::test(flavor = "multi_thread")]
async fn browser_runs_the_line_test_from_the_lobby() -> anyhow::Result<()> {
    let server = start_test_server_with(&admin_config()).await?;
    // Half an hour ahead: the links admit their sites, and the commune waits in the lobby.
    let start = now_millis() + 30 * 60 * 1000;
    let meeting = schedule(server.http_addr(), start, start + 3_600_000, &["ha-quang"]).await?;
    let chair = link_for(&meeting, "cao-bang")?;
    let commune = link_for(&meeting, "ha-quang")?;
    let report = run_script("line-test.mjs", &[&server.base_url(), &chair, &commune]).await?;
    println!("{report}");
    if report["ok"] != true {
        bail!("the line-test script did not pass: {report}");
    }
    Ok(())
}
