//! The secretary adds, renames and deletes a site of the directory from the scheduling page in headless Chromium; a site invited to a coming meeting cannot be deleted, and the API agrees at every step.

use anyhow::bail;
use cau_tests::api::{ADMIN_TOKEN, admin_config};
use cau_tests::browser::run_script;
use cau_tests::server::start_test_server_with;

#[tokio::test(flavor = "multi_thread")]
async fn secretary_edits_the_site_directory() -> anyhow::Result<()> {
    let server = start_test_server_with(&admin_config()).await?;
    let report = run_script("site-directory.mjs", &[&server.base_url(), ADMIN_TOKEN]).await?;
    println!("{report}");
    if report["ok"] != true {
        bail!("the site-directory script did not pass: {report}");
    }
    Ok(())
}
