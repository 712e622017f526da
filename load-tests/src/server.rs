//! The server under test, in a process of its own (`cau-load serve`), so that the CPU time
//! and memory read from `/proc` are the server's alone and not the load generator's.

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use serde_json::Value;

/// What `cau-load serve` runs: line monitoring on or off, and how many participants one
/// room takes (the ramp puts more than a meeting's 58 in one room).
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub monitoring: bool,
    pub max_participants_per_room: usize,
    /// Bandwidth estimation, and with it str0m's pacer: production's default, off in
    /// every test server (see `cau_tests::server`).
    pub bandwidth_estimation: bool,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            monitoring: true,
            max_participants_per_room: 64,
            bandwidth_estimation: false,
        }
    }
}

/// Runs a server on free loopback ports, prints its signaling URL and HTTP address, and
/// waits until the parent kills it.
pub async fn serve(options: ServeOptions) -> anyhow::Result<()> {
    let config = format!(
        "{}\n[monitoring]\nenabled = {}\n[limits]\nmax_participants_per_room = {}\n[media]\nbandwidth_estimation = {}\n",
        cau_tests::api::admin_config(),
        options.monitoring,
        options.max_participants_per_room,
        options.bandwidth_estimation,
    );
    let server = cau_tests::server::start_test_server_with(&config).await?;
    println!("{}", server.ws_url());
    println!("{}", server.http_addr());
    // The parent kills this process when done; stop also on Ctrl-C.
    tokio::signal::ctrl_c().await?;
    Ok(())
}

/// A server in a process of its own, killed when dropped.
pub struct ServerProcess {
    child: tokio::process::Child,
    pub pid: u32,
    pub ws_url: String,
    pub http_addr: SocketAddr,
}

impl ServerProcess {
    pub async fn start(options: &ServeOptions) -> anyhow::Result<ServerProcess> {
        let mut child = tokio::process::Command::new(std::env::current_exe()?)
            .arg("serve")
            .arg("--monitoring")
            .arg(if options.monitoring { "on" } else { "off" })
            .arg("--max-participants-per-room")
            .arg(options.max_participants_per_room.to_string())
            .arg("--estimation")
            .arg(if options.bandwidth_estimation {
                "on"
            } else {
                "off"
            })
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("cannot start the server process")?;
        let pid = child.id().context("the server process has no id")?;
        let stdout = child.stdout.take().context("no server stdout")?;
        let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stdout));
        let mut next = async || {
            tokio::time::timeout(Duration::from_secs(30), lines.next_line())
                .await
                .context("the server did not start")??
                .context("the server printed nothing")
        };
        let ws_url = next().await?;
        let http_addr = next().await?.parse().context("not an address")?;
        Ok(ServerProcess {
            child,
            pid,
            ws_url,
            http_addr,
        })
    }

    /// The server's CPU seconds so far, from /proc.
    pub fn cpu_seconds(&self) -> anyhow::Result<f64> {
        cpu_seconds(self.pid)
    }

    /// The server's resident set size now, from /proc.
    pub fn rss_kib(&self) -> anyhow::Result<u64> {
        rss_kib(self.pid)
    }

    /// `GET /api/status`.
    pub async fn status(&self) -> anyhow::Result<Value> {
        let (_, status) =
            cau_tests::api::request(self.http_addr, "GET", "/api/status", None).await?;
        Ok(status)
    }

    /// The RTP packets the SFU has forwarded since it started (`/api/status`).
    pub async fn packets_forwarded(&self) -> anyhow::Result<u64> {
        self.status().await?["packets_forwarded"]
            .as_u64()
            .context("no packets_forwarded in /api/status")
    }

    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.child.kill().await?;
        Ok(())
    }
}

/// One reading of the server's CPU time and forwarded packets, to subtract from a later one.
#[derive(Debug, Clone, Copy)]
pub struct Reading {
    pub cpu_s: f64,
    pub forwarded: u64,
    pub at: std::time::Instant,
}

impl Reading {
    pub async fn take(server: &ServerProcess) -> anyhow::Result<Reading> {
        Ok(Reading {
            cpu_s: server.cpu_seconds()?,
            forwarded: server.packets_forwarded().await?,
            at: std::time::Instant::now(),
        })
    }
}

/// Open file descriptors of process `pid` (sockets, files, the database), from /proc.
pub fn open_fds(pid: u32) -> anyhow::Result<usize> {
    Ok(std::fs::read_dir(format!("/proc/{pid}/fd"))
        .context("reading /proc/<pid>/fd")?
        .count())
}

/// Resident set size of process `pid`, from /proc.
pub fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS in /proc status")
}

/// CPU seconds (user + system) process `pid` has used, from /proc.
pub fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').context("odd /proc stat")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields
        .get(11..13)
        .context("short /proc stat")?
        .iter()
        .map(|f| f.parse::<f64>().unwrap_or(0.0))
        .sum();
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Ok(ticks / per_second)
}

/// UDP datagrams the kernel dropped because a socket's receive buffer was full, and
/// failed sends, counted for this network namespace (`/proc/net/snmp`): the server's
/// socket and every simulated site's alike. Loss with these rising is the machine's
/// (a starved receiver not reading in time), not packets the SFU failed to forward.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct UdpDrops {
    pub receive_buffer_errors: u64,
    pub send_buffer_errors: u64,
}

impl UdpDrops {
    pub fn read() -> anyhow::Result<UdpDrops> {
        let snmp = std::fs::read_to_string("/proc/net/snmp")?;
        let mut udp = snmp.lines().filter(|line| line.starts_with("Udp:"));
        let names: Vec<&str> = udp
            .next()
            .context("no Udp in /proc/net/snmp")?
            .split_whitespace()
            .collect();
        let values: Vec<&str> = udp
            .next()
            .context("no Udp values")?
            .split_whitespace()
            .collect();
        let field = |name: &str| -> u64 {
            names
                .iter()
                .position(|n| *n == name)
                .and_then(|i| values.get(i))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        Ok(UdpDrops {
            receive_buffer_errors: field("RcvbufErrors"),
            send_buffer_errors: field("SndbufErrors"),
        })
    }

    pub fn since(self, before: UdpDrops) -> UdpDrops {
        UdpDrops {
            receive_buffer_errors: self
                .receive_buffer_errors
                .saturating_sub(before.receive_buffer_errors),
            send_buffer_errors: self
                .send_buffer_errors
                .saturating_sub(before.send_buffer_errors),
        }
    }
}
