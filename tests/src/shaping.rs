//! Lines of their own for test sites: a private network namespace per test, and the
//! traffic of one loopback address made lossy, capped or cut.
//!
//! [`run_in_private_network`] moves the calling thread into a fresh network namespace
//! (`unshare(CLONE_NEWNET)`) before any runtime, socket or thread exists, so that the
//! server, its media thread, the clients and any browser the test starts all live in
//! it, and nothing the test does to its network reaches another test or the host.
//! Every address of 127.0.0.0/8 reaches the loopback device, so each site binds an
//! address of its own (`ClientConfig::local_ip`) and [`Shaper`] gives that address a
//! line of its own.
//!
//! The kernel of these machines has no `sch_netem` (nor `prio`, nor tc actions), so:
//! random loss and cut lines are iptables' `statistic` match and `DROP` (in the
//! namespace's own tables), and rate caps are an `htb` class with u32 filters on the
//! address. A fixed delay, netem's other half, is iptables' `NFQUEUE`: the kernel hands
//! each matching packet's verdict to a thread of the test ([`Shaper::delay`]), which
//! accepts the packet once it has been held for the delay.
//!
//! Needs root (CAP_NET_ADMIN) and `iptables-legacy`, as `scripts/test.sh` provides.

use std::collections::VecDeque;
use std::future::Future;
use std::net::Ipv4Addr;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// Runs `body` on a multi-threaded runtime inside a network namespace of its own, with
/// loopback up. Call it from a plain `#[test]`, not from inside a runtime.
pub fn run_in_private_network<F, Fut>(body: F) -> anyhow::Result<()>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    // SAFETY: unshare has no memory-safety preconditions; it changes only this thread's
    // network namespace, and every thread started from here on inherits it.
    let result = unsafe { libc::unshare(libc::CLONE_NEWNET) };
    if result != 0 {
        bail!(
            "cannot make a private network namespace ({}): this test needs root",
            std::io::Error::last_os_error()
        );
    }
    run(&["ip", "link", "set", "lo", "up"])?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("building the runtime")?;
    runtime.block_on(body())
}

/// Which of a site's packets a rule applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Packets the site sends: its uplink.
    Uplink,
    /// Both ways.
    Both,
}

/// Gives loopback addresses lines of their own. Only inside [`run_in_private_network`].
#[derive(Debug, Default)]
pub struct Shaper {
    htb_installed: bool,
    next_class: u32,
    /// One per [`Shaper::delay`], on netfilter queue numbers 0, 1, ...
    delays: Vec<DelayLine>,
}

impl Shaper {
    pub fn new() -> Shaper {
        Shaper::default()
    }

    /// Drops each packet of `address` with probability `loss` (0..1), at random.
    pub fn lose(
        &mut self,
        address: Ipv4Addr,
        direction: Direction,
        loss: f64,
    ) -> anyhow::Result<()> {
        let probability = format!("{loss:.4}");
        for (flag, chain) in rules(direction) {
            run(&[
                "iptables-legacy",
                "-A",
                chain,
                flag,
                &address.to_string(),
                "-p",
                "udp",
                "-m",
                "statistic",
                "--mode",
                "random",
                "--probability",
                &probability,
                "-j",
                "DROP",
            ])?;
        }
        Ok(())
    }

    /// Cuts the address's UDP traffic both ways, as a line that goes down. Its
    /// signaling (TCP) is left alone, as a site's socket would linger for a while.
    pub fn cut(&mut self, address: Ipv4Addr) -> anyhow::Result<()> {
        for (flag, chain) in rules(Direction::Both) {
            run(&[
                "iptables-legacy",
                "-I",
                chain,
                "1",
                flag,
                &address.to_string(),
                "-p",
                "udp",
                "-j",
                "DROP",
            ])?;
        }
        Ok(())
    }

    /// Undoes [`Shaper::cut`].
    pub fn restore(&mut self, address: Ipv4Addr) -> anyhow::Result<()> {
        for (flag, chain) in rules(Direction::Both) {
            run(&[
                "iptables-legacy",
                "-D",
                chain,
                flag,
                &address.to_string(),
                "-p",
                "udp",
                "-j",
                "DROP",
            ])?;
        }
        Ok(())
    }

    /// Caps the address's traffic at `kbit` kbit/s in the given directions, with a
    /// queue of about `buffer_ms` of traffic beyond which packets are dropped, as a
    /// slow line's modem would.
    pub fn cap(
        &mut self,
        address: Ipv4Addr,
        direction: Direction,
        kbit: u32,
    ) -> anyhow::Result<()> {
        if !self.htb_installed {
            // Everything unmatched goes to class 1:1, which is as fast as loopback.
            run(&[
                "tc", "qdisc", "add", "dev", "lo", "root", "handle", "1:", "htb", "default", "1",
            ])?;
            run(&[
                "tc", "class", "add", "dev", "lo", "parent", "1:", "classid", "1:1", "htb", "rate",
                "100gbit", "quantum", "60000",
            ])?;
            self.htb_installed = true;
            self.next_class = 2;
        }
        let class = format!("1:{:x}", self.next_class);
        self.next_class += 1;
        let rate = format!("{kbit}kbit");
        run(&[
            "tc", "class", "add", "dev", "lo", "parent", "1:", "classid", &class, "htb", "rate",
            &rate, "ceil", &rate, "quantum", "1514",
        ])?;
        let ip = format!("{address}/32");
        let mut fields = vec!["src"];
        if direction == Direction::Both {
            fields.push("dst");
        }
        for field in fields {
            run(&[
                "tc", "filter", "add", "dev", "lo", "parent", "1:", "protocol", "ip", "prio", "1",
                "u32", "match", "ip", field, &ip, "flowid", &class,
            ])?;
        }
        Ok(())
    }

    /// Holds every UDP packet of `address` in the given directions for `delay` before it
    /// goes on, as netem's `delay` would. Packets keep their order; the delay is added
    /// to whatever [`Shaper::lose`] or [`Shaper::cap`] already do to them.
    pub fn delay(
        &mut self,
        address: Ipv4Addr,
        direction: Direction,
        delay: Duration,
    ) -> anyhow::Result<()> {
        let queue_number = u16::try_from(self.delays.len()).context("too many delayed lines")?;
        // The queue is bound before any packet is sent to it: the kernel drops what is
        // queued to a number no one listens on.
        self.delays.push(DelayLine::start(queue_number, delay)?);
        let queue_number = queue_number.to_string();
        for (flag, chain) in rules(direction) {
            run(&[
                "iptables-legacy",
                "-A",
                chain,
                flag,
                &address.to_string(),
                "-p",
                "udp",
                "-j",
                "NFQUEUE",
                "--queue-num",
                &queue_number,
            ])?;
        }
        Ok(())
    }
}

/// A thread that holds the packets of one netfilter queue for a fixed time. Stopped,
/// and what it holds let go, on drop.
struct DelayLine {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl DelayLine {
    fn start(queue_number: u16, delay: Duration) -> anyhow::Result<DelayLine> {
        let mut queue = nfq::Queue::open().context("opening a netfilter queue socket")?;
        queue
            .bind(queue_number)
            .with_context(|| format!("binding netfilter queue {queue_number}"))?;
        // Only the verdict is needed, not the packet: copy as little as netlink allows.
        queue.set_copy_range(queue_number, 64)?;
        // Room for a site's packets over the delay many times over (a 2 Mbit/s site
        // sends about 200 packets a second).
        queue.set_queue_max_len(queue_number, 8192)?;
        queue.set_nonblocking(true);
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::Builder::new()
            .name(format!("delay-line-{queue_number}"))
            .spawn({
                let stop = stop.clone();
                move || hold_and_release(queue, delay, &stop)
            })
            .context("starting the delay line's thread")?;
        Ok(DelayLine {
            stop,
            thread: Some(thread),
        })
    }
}

/// Takes every queued packet as it comes and accepts it `delay` later. The queue socket
/// has no readiness to wait on through `nfq`, so the thread polls it every millisecond:
/// the delay is exact to about a millisecond, which is what a test line needs.
fn hold_and_release(mut queue: nfq::Queue, delay: Duration, stop: &AtomicBool) {
    let mut held: VecDeque<(Instant, nfq::Message)> = VecDeque::new();
    while !stop.load(Ordering::Relaxed) {
        loop {
            match queue.recv() {
                Ok(message) => held.push_back((Instant::now() + delay, message)),
                Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(error) => {
                    eprintln!("delay line: reading the queue failed: {error}");
                    return;
                }
            }
        }
        let now = Instant::now();
        while held.front().is_some_and(|(due, _)| *due <= now) {
            if let Some((_, mut message)) = held.pop_front() {
                message.set_verdict(nfq::Verdict::Accept);
                if let Err(error) = queue.verdict(message) {
                    eprintln!("delay line: a verdict failed: {error}");
                }
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    // Let go of what is held, so the kernel's queue is empty when the thread ends.
    for (_, mut message) in held {
        message.set_verdict(nfq::Verdict::Accept);
        let _ = queue.verdict(message);
    }
}

impl Drop for DelayLine {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl std::fmt::Debug for DelayLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DelayLine").finish_non_exhaustive()
    }
}

/// The iptables match flag and chain of each direction. On loopback every packet
/// passes OUTPUT once, so matching the source there catches what the site sends, and
/// matching the destination catches what it receives.
fn rules(direction: Direction) -> Vec<(&'static str, &'static str)> {
    match direction {
        Direction::Uplink => vec![("-s", "OUTPUT")],
        Direction::Both => vec![("-s", "OUTPUT"), ("-d", "OUTPUT")],
    }
}

/// Runs a command, failing with its error output if it fails.
pub(crate) fn run(args: &[&str]) -> anyhow::Result<()> {
    let output = Command::new(args[0])
        .args(&args[1..])
        .output()
        .with_context(|| format!("cannot run {}", args[0]))?;
    if !output.status.success() {
        bail!(
            "`{}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}
