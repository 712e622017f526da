//! The floor: the least CPU any SFU on this machine can spend per forwarded packet.
//!
//! Forwarding a packet means at least encrypting it for its receiver (SRTP, AES-CM with
//! HMAC-SHA1-80, the profile every browser offers) and handing it to the kernel. This
//! benchmark does only that, with a maintained SRTP implementation (webrtc-rs's
//! `rtc-srtp` on aws-lc, the crypto library our server links) and quinn-udp's
//! `sendmsg`, to a receiver on loopback: once with one send per packet, and once with 32
//! packets to one destination in one GSO send (`UDP_SEGMENT`). Comparing the SFU's CPU
//! per forwarded packet with this floor says how much of its cost is its own.
//!
//! CPU time is the sending thread's own (`getrusage(RUSAGE_THREAD)`): it includes the
//! kernel's work of the send, which on loopback runs to the receiver's socket queue in
//! the sender's system call, and excludes the receiving thread, which stands in for the
//! far end of the line.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rtc::srtp::context::Context as SrtpContext;
use rtc::srtp::protection_profile::ProtectionProfile;
use serde_json::json;

/// Size of the RTP packet before protection: a typical full video packet.
const PACKET_SIZE: usize = 1200;
/// Packets to one destination sent in one GSO send.
const GSO_BATCH: usize = 32;
/// An RTP header without CSRCs or extensions.
const RTP_HEADER_SIZE: usize = 12;
/// No round may run longer than this, whatever the machine's load.
const ROUND_TIME_LIMIT: Duration = Duration::from_secs(30);

/// How much work one measurement does.
#[derive(Clone, Copy, Debug)]
pub struct FloorConfig {
    /// Packets protected (and sent) per mode and round.
    pub packets: usize,
    /// Rounds; each runs every mode once, and the figures are the medians.
    pub rounds: usize,
}

/// Median CPU microseconds per packet of each mode.
#[derive(Clone, Copy, Debug)]
pub struct FloorFigures {
    /// SRTP protect alone.
    pub protect_us: f64,
    /// One UDP send of an already protected packet, alone.
    pub send_us: f64,
    /// SRTP protect plus one UDP send per packet: the floor.
    pub protect_send_us: f64,
    /// SRTP protect plus one GSO send per 32 packets: the floor with batched sends.
    pub protect_gso_us: f64,
    /// Segments per GSO send the kernel accepts (1 if it has no GSO).
    pub max_gso_segments: usize,
    /// Share of the sent packets the receiver got, over the whole run.
    pub delivered: f64,
}

/// The four things measured, each for `packets` packets.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    Protect,
    Send,
    ProtectSend,
    ProtectGso,
}

const MODES: [Mode; 4] = [
    Mode::Protect,
    Mode::Send,
    Mode::ProtectSend,
    Mode::ProtectGso,
];

/// Runs `cau-load floor`: prints each round, the medians, and one line of JSON.
pub fn run(config: FloorConfig) -> anyhow::Result<()> {
    println!(
        "floor: SRTP (AES_CM_128_HMAC_SHA1_80) protect of {PACKET_SIZE}-byte RTP packets and UDP sends to a loopback receiver, {} packets per mode, {} rounds; sending thread's CPU time",
        config.packets, config.rounds
    );
    let figures = measure(config, true)?;
    print_summary(&figures);
    println!(
        "{}",
        json!({
            "benchmark": "floor",
            "packet_bytes": PACKET_SIZE,
            "packets_per_mode": config.packets,
            "rounds": config.rounds,
            "protect_us": round_to(figures.protect_us, 3),
            "send_us": round_to(figures.send_us, 3),
            "protect_send_us": round_to(figures.protect_send_us, 3),
            "protect_gso32_us": round_to(figures.protect_gso_us, 3),
            "max_gso_segments": figures.max_gso_segments,
            "delivered": round_to(figures.delivered, 4),
        })
    );
    Ok(())
}

/// Prints the medians in one readable block (also used by `janus-compare`).
pub fn print_summary(figures: &FloorFigures) {
    println!(
        "floor medians: protect {:.2} us, send {:.2} us; protect + one send {:.2} us per packet; protect + GSO-{GSO_BATCH} {:.2} us per packet (kernel takes up to {} segments; receiver got {:.1}% of the packets)",
        figures.protect_us,
        figures.send_us,
        figures.protect_send_us,
        figures.protect_gso_us,
        figures.max_gso_segments,
        figures.delivered * 100.0
    );
}

/// Measures the floor: every mode once per round, in an order that rotates between
/// rounds so that a change in the machine's load favours no mode; medians per mode.
pub fn measure(config: FloorConfig, verbose: bool) -> anyhow::Result<FloorFigures> {
    if config.packets < GSO_BATCH || config.rounds == 0 {
        bail!("the floor needs at least {GSO_BATCH} packets and one round");
    }
    let receiver = Receiver::start()?;
    let mut sender = Sender::new(receiver.address)?;
    let mut per_mode: [Vec<f64>; 4] = Default::default();
    for round in 0..config.rounds {
        let mut line = format!("  round {}:", round + 1);
        for step in 0..MODES.len() {
            let mode = MODES[(round + step) % MODES.len()];
            let cpu = sender.run(mode, config.packets)?;
            let us = cpu.as_secs_f64() * 1e6 / config.packets as f64;
            per_mode[MODES.iter().position(|m| *m == mode).unwrap_or(0)].push(us);
            line += &format!(" {mode:?} {us:.2} us;");
        }
        if verbose {
            println!("{line}");
        }
    }
    let sent = sender.packets_sent;
    let delivered = receiver.stop();
    let [protect, send, protect_send, protect_gso] = per_mode.map(|mut v| median(&mut v));
    Ok(FloorFigures {
        protect_us: protect,
        send_us: send,
        protect_send_us: protect_send,
        protect_gso_us: protect_gso,
        max_gso_segments: sender.state.max_gso_segments(),
        delivered: delivered as f64 / sent.max(1) as f64,
    })
}

/// The forwarding side: one SRTP context, one socket, and the packet it sends.
struct Sender {
    srtp: SrtpContext,
    socket: UdpSocket,
    state: quinn_udp::UdpSocketState,
    destination: SocketAddr,
    /// The plain RTP packet; its sequence number changes for each protect.
    plain: Vec<u8>,
    /// One protected packet, for the send-only mode.
    protected: Vec<u8>,
    /// Up to 32 protected packets back to back, for GSO.
    batch: Vec<u8>,
    sequence: u16,
    packets_sent: u64,
}

impl Sender {
    fn new(destination: SocketAddr) -> anyhow::Result<Sender> {
        let provider = rtc::crypto::default_provider().context("no SRTP crypto provider")?;
        // Fixed keys: the cost of AES and HMAC does not depend on them.
        let master_key = [0x2bu8; 16];
        let master_salt = [0x5au8; 14];
        let srtp = SrtpContext::new(
            &master_key,
            &master_salt,
            ProtectionProfile::Aes128CmHmacSha1_80,
            None,
            None,
            provider.crypto(),
        )
        .context("cannot make the SRTP context")?;
        let socket = UdpSocket::bind("127.0.0.1:0").context("cannot bind the sender")?;
        let state = quinn_udp::UdpSocketState::new((&socket).into())
            .context("cannot set up the sender socket")?;
        // quinn-udp makes the socket non-blocking; a blocking send never drops a packet
        // for a full buffer, so every mode sends all of its packets.
        socket.set_nonblocking(false)?;
        let mut plain = vec![0u8; PACKET_SIZE];
        plain[0] = 0x80; // Version 2, no padding, no extension, no CSRC.
        plain[1] = 96; // A dynamic payload type, as VP8's usually is.
        plain[8..12].copy_from_slice(&0x1234_5678u32.to_be_bytes());
        for (index, byte) in plain[RTP_HEADER_SIZE..].iter_mut().enumerate() {
            *byte = index as u8;
        }
        let mut sender = Sender {
            srtp,
            socket,
            state,
            destination,
            plain,
            protected: Vec::new(),
            batch: Vec::with_capacity(GSO_BATCH * (PACKET_SIZE + 10)),
            sequence: 0,
            packets_sent: 0,
        };
        sender.protected = sender.protect_next()?.to_vec();
        Ok(sender)
    }

    /// Runs `mode` over `packets` packets and returns the CPU time this thread spent.
    fn run(&mut self, mode: Mode, packets: usize) -> anyhow::Result<Duration> {
        let started = Instant::now();
        let before = thread_cpu_time()?;
        let mut done = 0;
        while done < packets {
            if started.elapsed() > ROUND_TIME_LIMIT {
                bail!("{mode:?} took more than {ROUND_TIME_LIMIT:?} for {packets} packets");
            }
            match mode {
                Mode::Protect => {
                    std::hint::black_box(self.protect_next()?);
                    done += 1;
                }
                Mode::Send => {
                    self.send(&self.protected, None)?;
                    self.packets_sent += 1;
                    done += 1;
                }
                Mode::ProtectSend => {
                    let packet = self.protect_next()?;
                    self.send(&packet, None)?;
                    self.packets_sent += 1;
                    done += 1;
                }
                Mode::ProtectGso => {
                    let count = GSO_BATCH.min(packets - done);
                    let mut batch = std::mem::take(&mut self.batch);
                    batch.clear();
                    for _ in 0..count {
                        batch.extend_from_slice(&self.protect_next()?);
                    }
                    // Every protected packet has the same size, so the kernel cuts the
                    // buffer into `count` datagrams of that size.
                    let segment = batch.len() / count;
                    let sent = self.send(&batch, Some(segment));
                    self.batch = batch;
                    sent?;
                    self.packets_sent += count as u64;
                    done += count;
                }
            }
        }
        Ok(thread_cpu_time()?.saturating_sub(before))
    }

    /// The next packet of the stream, SRTP-protected.
    fn protect_next(&mut self) -> anyhow::Result<bytes::BytesMut> {
        self.sequence = self.sequence.wrapping_add(1);
        self.plain[2..4].copy_from_slice(&self.sequence.to_be_bytes());
        let timestamp = u32::from(self.sequence).wrapping_mul(3000);
        self.plain[4..8].copy_from_slice(&timestamp.to_be_bytes());
        self.srtp
            .encrypt_rtp(&self.plain)
            .context("SRTP protect failed")
    }

    /// One `sendmsg`; with `segment_size`, one GSO send of `contents.len() / segment_size`
    /// datagrams.
    fn send(&self, contents: &[u8], segment_size: Option<usize>) -> anyhow::Result<()> {
        let transmit = quinn_udp::Transmit {
            destination: self.destination,
            ecn: None,
            contents,
            segment_size,
            src_ip: None,
        };
        self.state
            .try_send((&self.socket).into(), &transmit)
            .context("UDP send failed")?;
        Ok(())
    }
}

/// The far end of the line: a thread that drains a loopback socket and counts datagrams.
struct Receiver {
    address: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<u64>,
}

impl Receiver {
    fn start() -> anyhow::Result<Receiver> {
        let socket = UdpSocket::bind("127.0.0.1:0").context("cannot bind the receiver")?;
        // A deep queue, so that the receiver falling behind for a moment (it shares two
        // cores with the sender and everything else) drops fewer packets; root may go
        // past the system's limit. Failing that, the default queue still works.
        let depth: libc::c_int = 16 << 20;
        // SAFETY: a valid socket and a pointer to a c_int of the size given.
        unsafe {
            libc::setsockopt(
                std::os::fd::AsRawFd::as_raw_fd(&socket),
                libc::SOL_SOCKET,
                libc::SO_RCVBUFFORCE,
                (&depth as *const libc::c_int).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
        // Wakes up now and then to see whether the run is over.
        socket.set_read_timeout(Some(Duration::from_millis(50)))?;
        let address = socket.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::spawn({
            let stop = stop.clone();
            move || {
                let mut buffer = vec![0u8; 65536];
                let mut received = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    if socket.recv(&mut buffer).is_ok() {
                        received += 1;
                    }
                }
                // Whatever is still queued arrived too.
                let _ = socket.set_nonblocking(true);
                while socket.recv(&mut buffer).is_ok() {
                    received += 1;
                }
                received
            }
        });
        Ok(Receiver {
            address,
            stop,
            thread,
        })
    }

    /// Stops the thread and returns how many datagrams it received.
    fn stop(self) -> u64 {
        // Give datagrams in flight a moment to land in the queue.
        std::thread::sleep(Duration::from_millis(100));
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap_or(0)
    }
}

/// CPU time (user + system) of the calling thread.
pub(crate) fn thread_cpu_time() -> anyhow::Result<Duration> {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `usage` is a valid, writable rusage; RUSAGE_THREAD is supported on Linux.
    let status = unsafe { libc::getrusage(libc::RUSAGE_THREAD, usage.as_mut_ptr()) };
    if status != 0 {
        bail!("getrusage: {}", std::io::Error::last_os_error());
    }
    // SAFETY: getrusage succeeded, so it filled the struct.
    let usage = unsafe { usage.assume_init() };
    let time = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    Ok(time(usage.ru_utime) + time(usage.ru_stime))
}

pub(crate) fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

pub(crate) fn round_to(value: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (value * scale).round() / scale
}
