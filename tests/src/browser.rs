//! Running the Playwright scripts of `tests/browser/` against a test server.
//!
//! The scripts drive Debian's headless Chromium with a fake camera and microphone and
//! print one line of JSON with what they measured. `scripts/test.sh` installs Chromium
//! and the scripts' npm packages; without them these tests fail and say so.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::Value;

/// Every script bounds itself well below this.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(90);

/// Runs `tests/browser/<script>` with `args`; returns its JSON report. Fails, with the
/// report and the script's error output, if the script's own checks failed.
pub async fn run_script(script: &str, args: &[&str]) -> anyhow::Result<Value> {
    let directory = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("browser");
    if !directory.join("node_modules/playwright-core").exists() {
        bail!(
            "tests/browser/node_modules is missing: run scripts/test.sh, which installs \
             Chromium and playwright-core"
        );
    }
    let child = tokio::process::Command::new("node")
        .arg(directory.join(script))
        .args(args)
        .current_dir(&directory)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("cannot run node")?;
    let output = tokio::time::timeout(SCRIPT_TIMEOUT, child.wait_with_output())
        .await
        .with_context(|| format!("{script} did not finish within {SCRIPT_TIMEOUT:?}"))??;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let report: Option<Value> = stdout
        .lines()
        .rev()
        .find_map(|line| serde_json::from_str(line.trim()).ok());
    match (output.status.success(), report) {
        (true, Some(report)) => Ok(report),
        (_, report) => bail!(
            "{script} failed ({}):\nreport: {}\nstdout: {stdout}\nstderr: {stderr}",
            output.status,
            report
                .map(|r| r.to_string())
                .unwrap_or_else(|| "none".into()),
        ),
    }
}
