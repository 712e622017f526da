//! With `tls.mode = "self-signed"`, two headless Chromium participants load the client over HTTPS, signal over WSS, and see and hear each other: the secure context a commune PC on the LAN needs for its camera.

use anyhow::bail;
use cau_tests::browser::run_script;
use cau_tests::server::start_test_server_with;

#[tokio::test(flavor = "multi_thread")]
async fn browsers_meet_over_https() -> anyhow::Result<()> {
    let server = start_test_server_with("[tls]\nmode = \"self-signed\"").await?;
    let base_url = server.base_url();
    if !base_url.starts_with("https://") {
        bail!("the server does not serve HTTPS: {base_url}");
    }
    let report = run_script("two-browsers.mjs", &[&base_url, "qua-tls"]).await?;
    println!("{report}");
    for name in ["Alice", "Bob"] {
        let page = &report["pages"][name];
        if page["frames_decoded_after"].as_u64() <= page["frames_decoded_before"].as_u64() {
            bail!("{name} decoded no video over HTTPS: {page}");
        }
    }
    Ok(())
}
