//! When a browser participant closes its page, the other browser's tile for it disappears within 5 s and the server's peer count returns to what it was.

use std::time::{Duration, Instant};

use anyhow::bail;
use cau_tests::browser::run_script;
use cau_tests::server::start_test_server;

#[tokio::test(flavor = "multi_thread")]
async fn browser_closing_page_is_announced() -> anyhow::Result<()> {
    let server = start_test_server().await?;
    let report = run_script("leave-notifies.mjs", &[&server.base_url(), "giao-ban"]).await?;
    println!("{report}");
    let removed_after = report["removed_after_ms"].as_u64().unwrap_or(u64::MAX);
    if removed_after > 5000 {
        bail!("the closed page's tile went away after {removed_after} ms: {report}");
    }
    // The script has ended and closed the other page too: the server must forget both.
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.peer_count() != 0 || server.participant_count() != 0 {
        if Instant::now() > deadline {
            bail!(
                "5 s after the browsers closed the server holds {} peers, {} participants",
                server.peer_count(),
                server.participant_count()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}
