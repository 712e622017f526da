//! Two headless Chromium participants join one room through the web client (`/join/...&autojoin=1`), and each decodes the other's video and receives its audio through the server, which asks each browser's Opus encoder for DTX and in-band FEC; Chromium sends its audio as redundant audio (RED), which the server forwards.

use anyhow::bail;
use cau_tests::browser::run_script;
use cau_tests::server::start_test_server;

#[tokio::test(flavor = "multi_thread")]
async fn browsers_see_and_hear_each_other() -> anyhow::Result<()> {
    let server = start_test_server().await?;
    let report = run_script("two-browsers.mjs", &[&server.base_url(), "giao-ban"]).await?;
    println!("{report}");
    // The script checks these itself; checking again here keeps the proof in the Rust suite.
    for name in ["Alice", "Bob"] {
        let page = &report["pages"][name];
        let frames = (
            page["frames_decoded_before"].as_u64(),
            page["frames_decoded_after"].as_u64(),
        );
        let audio = (
            page["audio_packets_before"].as_u64(),
            page["audio_packets_after"].as_u64(),
        );
        let (Some(frames_before), Some(frames_after)) = frames else {
            bail!("{name}: no video figures in {page}");
        };
        let (Some(audio_before), Some(audio_after)) = audio else {
            bail!("{name}: no audio figures in {page}");
        };
        if frames_after <= frames_before || audio_after <= audio_before {
            bail!("{name}: media did not grow: {page}");
        }
        let opus = page["server_opus_fmtp"].as_str().unwrap_or_default();
        if !opus.split(';').any(|p| p.trim() == "usedtx=1") {
            bail!("{name}: the server did not ask for Opus DTX ({opus:?}): {page}");
        }
        if page["video_width"].as_u64().unwrap_or(0) == 0 {
            bail!("{name}: the remote <video> shows no picture: {page}");
        }
    }
    // Chromium's statistics name Opus for RED streams too; the server counts them.
    let stats = server.sfu_stats();
    println!("{stats:?}");
    if stats.red_packets_received < 50 {
        bail!("the browsers' audio did not arrive as RED: {stats:?}");
    }
    Ok(())
}
