//! The `cau` binary as a process of its own, for tests that kill it (SIGKILL) or stop
//! it (SIGTERM) the way an operator or a crash would, and start it again on the same
//! data directory and ports.
//!
//! The binary is the one `cargo build --workspace --all-targets` (the first step of
//! `scripts/test.sh`) leaves next to the test binary, in `target/<profile>/cau`: cargo
//! builds a package's own binaries for its integration tests, but not another
//! package's.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::process::{Child, Command};

/// How long a start may take until `/healthz` answers.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A running `cau serve`. Killed when dropped.
pub struct ServerProcess {
    child: Child,
    http: SocketAddr,
}

/// A free TCP port and a free UDP port on `ip`, for a server that must come back on the
/// same ones after a restart.
pub fn free_ports(ip: Ipv4Addr) -> anyhow::Result<(u16, u16)> {
    let tcp = TcpListener::bind((ip, 0))?.local_addr()?.port();
    let udp = UdpSocket::bind((ip, 0))?.local_addr()?.port();
    Ok((tcp, udp))
}

/// The `cau` binary next to the running test binary.
pub fn cau_binary() -> anyhow::Result<PathBuf> {
    let test_binary = std::env::current_exe()?;
    // target/<profile>/deps/<test binary> -> target/<profile>/cau
    let profile_dir = test_binary
        .parent()
        .and_then(Path::parent)
        .context("the test binary is not in target/<profile>/deps")?;
    let binary = profile_dir.join("cau");
    if !binary.exists() {
        bail!(
            "{} is missing: build it first (`cargo build -p cau-signaling`, or \
             scripts/test.sh, which builds every target)",
            binary.display()
        );
    }
    Ok(binary)
}

impl ServerProcess {
    /// Starts `cau serve --config <config_file>` and waits until it answers on `http`.
    /// Its output goes to `log`, appended, so that a failing test can show it.
    pub async fn start(
        config_file: &Path,
        http: SocketAddr,
        log: &Path,
    ) -> anyhow::Result<ServerProcess> {
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)?;
        let child = Command::new(cau_binary()?)
            .arg("serve")
            .arg("--config")
            .arg(config_file)
            .env("RUST_LOG", "info,str0m=warn")
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .kill_on_drop(true)
            .spawn()
            .context("cannot start the cau binary")?;
        let mut server = ServerProcess { child, http };
        let started = Instant::now();
        loop {
            if let Ok((200, _)) = crate::raw::http_get(http, "/healthz").await {
                return Ok(server);
            }
            if let Some(status) = server.child.try_wait()? {
                bail!(
                    "the server exited ({status}) while starting: see {}",
                    log.display()
                );
            }
            if started.elapsed() > START_TIMEOUT {
                bail!(
                    "the server did not answer within {START_TIMEOUT:?}: see {}",
                    log.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn http_addr(&self) -> SocketAddr {
        self.http
    }

    /// Kills the process outright (SIGKILL), as a crash or a power cut would.
    pub async fn kill(mut self) -> anyhow::Result<()> {
        self.child.kill().await.context("killing the server")
    }

    /// Asks the process to stop (SIGTERM) and waits up to `limit` for it to exit.
    pub async fn terminate(mut self, limit: Duration) -> anyhow::Result<ExitStatus> {
        let pid = self.child.id().context("the server has already exited")?;
        // SAFETY: kill(2) with a pid this test started and has not yet reaped.
        if unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) } != 0 {
            bail!(
                "cannot signal the server: {}",
                std::io::Error::last_os_error()
            );
        }
        tokio::time::timeout(limit, self.child.wait())
            .await
            .with_context(|| format!("the server did not exit within {limit:?} of SIGTERM"))?
            .context("waiting for the server")
    }
}
