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

/// Runs `tests/browser/<script>` with `args` and at most `limit`; returns its JSON
/// report, like [`run_script`], for scripts that take longer than most.
pub async fn run_script_for(script: &str, args: &[&str], limit: Duration) -> anyhow::Result<Value> {
    run(script, args, limit).await
}

/// Runs `tests/browser/<script>` with `args`; returns its JSON report. Fails, with the
/// report and the script's error output, if the script's own checks failed.
pub async fn run_script(script: &str, args: &[&str]) -> anyhow::Result<Value> {
    run(script, args, SCRIPT_TIMEOUT).await
}

fn scripts_directory() -> anyhow::Result<PathBuf> {
    let directory = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("browser");
    if !directory.join("node_modules/playwright-core").exists() {
        bail!(
            "tests/browser/node_modules is missing: run scripts/test.sh, which installs \
             Chromium and playwright-core"
        );
    }
    Ok(directory)
}

async fn run(script: &str, args: &[&str], limit: Duration) -> anyhow::Result<Value> {
    let directory = scripts_directory()?;
    let child = tokio::process::Command::new("node")
        .arg(directory.join(script))
        .args(args)
        .current_dir(&directory)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("cannot run node")?;
    let output = tokio::time::timeout(limit, child.wait_with_output())
        .await
        .with_context(|| format!("{script} did not finish within {limit:?}"))??;
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

/// A script the test talks to while it runs: it prints events, one JSON object a line
/// with an `"event"` field, and reads commands, one a line, on its standard input; its
/// last line is its report, as for [`run_script`]. For scenarios where the test must act
/// (kill a server, say) at a point only the browser knows.
pub struct InteractiveScript {
    name: String,
    child: tokio::process::Child,
    lines: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
    stdin: tokio::process::ChildStdin,
    errors: tokio::task::JoinHandle<String>,
    /// The last JSON line seen, which is the report once the script has ended.
    last: Option<Value>,
}

impl InteractiveScript {
    pub fn start(script: &str, args: &[&str]) -> anyhow::Result<InteractiveScript> {
        use tokio::io::{AsyncBufReadExt, AsyncReadExt};
        let directory = scripts_directory()?;
        let mut child = tokio::process::Command::new("node")
            .arg(directory.join(script))
            .args(args)
            .current_dir(&directory)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("cannot run node")?;
        let stdout = child.stdout.take().context("no stdout")?;
        let stdin = child.stdin.take().context("no stdin")?;
        let mut stderr = child.stderr.take().context("no stderr")?;
        let errors = tokio::spawn(async move {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text).await;
            text
        });
        Ok(InteractiveScript {
            name: script.to_owned(),
            child,
            lines: tokio::io::BufReader::new(stdout).lines(),
            stdin,
            errors,
            last: None,
        })
    }

    /// Waits up to `limit` for the event `name`; returns it.
    pub async fn expect(&mut self, name: &str, limit: Duration) -> anyhow::Result<Value> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let line = match tokio::time::timeout_at(deadline, self.lines.next_line()).await {
                Ok(Ok(Some(line))) => line,
                Ok(Ok(None)) | Ok(Err(_)) => {
                    return Err(self.failure(&format!("ended before `{name}`")).await);
                }
                Err(_) => {
                    return Err(self
                        .failure(&format!("sent no `{name}` within {limit:?}"))
                        .await);
                }
            };
            let Ok(value) = serde_json::from_str::<Value>(line.trim()) else {
                continue;
            };
            if value["event"] == name {
                return Ok(value);
            }
            self.last = Some(value);
        }
    }

    /// Sends one command line.
    pub async fn say(&mut self, command: &str) -> anyhow::Result<()> {
        use tokio::io::AsyncWriteExt;
        self.stdin
            .write_all(format!("{command}\n").as_bytes())
            .await
            .with_context(|| format!("{} no longer listens", self.name))
    }

    /// Waits up to `limit` for the script to end; returns its report.
    pub async fn finish(mut self, limit: Duration) -> anyhow::Result<Value> {
        let deadline = tokio::time::Instant::now() + limit;
        while let Ok(Ok(Some(line))) =
            tokio::time::timeout_at(deadline, self.lines.next_line()).await
        {
            if let Ok(value) = serde_json::from_str::<Value>(line.trim()) {
                self.last = Some(value);
            }
        }
        let status = tokio::time::timeout_at(deadline, self.child.wait()).await;
        match (status, self.last.take()) {
            (Ok(Ok(status)), Some(report)) if status.success() => Ok(report),
            _ => Err(self.failure("failed").await),
        }
    }

    async fn failure(&mut self, what: &str) -> anyhow::Error {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
        // Whatever the script printed last is its report of what went wrong.
        while let Ok(Ok(Some(line))) =
            tokio::time::timeout(Duration::from_secs(1), self.lines.next_line()).await
        {
            if let Ok(value) = serde_json::from_str::<Value>(line.trim()) {
                self.last = Some(value);
            }
        }
        let errors = match tokio::time::timeout(Duration::from_secs(2), &mut self.errors).await {
            Ok(Ok(text)) => text,
            _ => String::new(),
        };
        let report = self
            .last
            .as_ref()
            .map_or_else(|| "none".to_owned(), Value::to_string);
        anyhow::anyhow!("{} {what}:\nreport: {report}\nstderr: {errors}", self.name)
    }
}
