//! A participant whose browser has neither camera nor microphone (an IT room's PC) still
//! joins: it offers a receive-only media section, sees and hears the others, and is shown
//! to them as a participant.

use anyhow::bail;
use cau_tests::browser::run_script;
use cau_tests::server::start_test_server;

#[tokio::test(flavor = "multi_thread")]
async fn browser_without_camera_or_microphone_takes_part() -> anyhow::Result<()> {
    let server = start_test_server().await?;
    let report = run_script("no-devices.mjs", &[&server.base_url(), "phong-may"]).await?;
    // The script checks these itself; checking again here keeps the proof in the Rust suite.
    let kiosk = &report["pages"]["Kiosk"];
    let grew = |field: &str| {
        let pair = &kiosk[field];
        matches!((pair[0].as_u64(), pair[1].as_u64()), (Some(a), Some(b)) if b > a)
    };
    if kiosk["media_status"] != "media.none" || !grew("frames_decoded") || !grew("audio_packets") {
        bail!("the page without devices did not take part: {report}");
    }
    server.shutdown(std::time::Duration::from_secs(1)).await;
    Ok(())
}
