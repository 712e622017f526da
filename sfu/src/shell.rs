//! The IO shell: one thread that owns the media socket and drives the [`Sfu`] core.
//!
//! Media runs on a dedicated OS thread, not on the async runtime: forwarding is a tight
//! loop of receive, decrypt, encrypt, send, and sharing a runtime with HTTP would let a
//! slow request delay packets. The thread waits on the socket and on a waker with mio;
//! signaling's commands arrive over a channel and wake it at once. Growing to one worker
//! per core means one such thread per core, each with its own core and socket.
//!
//! Events for a peer go back to signaling over that peer's own tokio channel, registered
//! with the command that creates the peer.
//!
//! The socket is read and written in batches, through quinn-udp: up to [`RECV_BATCH`]
//! datagrams per receive call (recvmmsg), and what one such batch produced is sent
//! grouped by destination, each run of equal-sized datagrams to one address in one
//! segmentation-offload send (see [`crate::batch`]). On these machines the kernel's cost
//! per send is several times the SRTP work of a packet, so the number of sends, not the
//! forwarding code, sets the CPU per forwarded packet.
//!
//! The same thread accepts ICE-TCP connections on the media TCP port, when one is
//! configured, and carries their packets to and from the core ([`crate::tcp`]).

use std::collections::HashMap;
use std::io::{ErrorKind, IoSliceMut};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, UdpSocket};
use mio::{Events, Interest, Poll, Token, Waker};
use quinn_udp::{RecvMeta, UdpSocketState};
use str0m::IceCreds;
use str0m::net::{Protocol, Transmit};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use crate::batch;
use crate::core::{Sfu, SfuConfig, SfuStats};
use crate::tcp::Connections;
use crate::{Command, LineTestPlan, OfferSdp, PeerEvent, PeerId, RoomId, Subscriptions};

const SOCKET: Token = Token(0);
const WAKER: Token = Token(1);
const TCP_LISTENER: Token = Token(2);
/// Accepted ICE-TCP connections take tokens from here up.
const FIRST_TCP_CONNECTION: usize = 3;

/// The largest datagram we accept. WebRTC keeps packets under the path MTU (about
/// 1,200 bytes); anything larger is not ours, and is dropped.
const MAX_DATAGRAM: usize = 2048;

/// Datagrams taken from the socket in one receive call. What one call brings is handled,
/// then sent, before the next: the wait it adds to a packet is the handling of at most
/// this many others (a few hundred microseconds at full load, nothing when idle).
const RECV_BATCH: usize = quinn_udp::BATCH_SIZE;

/// Room for one receive slot. The socket may coalesce datagrams of one flow into a slot
/// (GRO, which quinn-udp turns on), up to a UDP datagram's 64 KiB.
const RECV_SLOT: usize = 1 << 16;

/// The handle signaling uses to talk to the media thread. Cheap to clone.
#[derive(Clone)]
pub struct SfuHandle {
    commands: mpsc::Sender<ShellCommand>,
    waker: Arc<Waker>,
    local_addr: SocketAddr,
    tcp_local_addr: Option<SocketAddr>,
    shared: Arc<SharedStats>,
    line_probe: Arc<IceCreds>,
}

/// Receive calls in one go before timers and commands get their turn.
const READ_TURNS: usize = 8;

/// Figures the media thread publishes for the rest of the process (metrics, tests).
#[derive(Default)]
struct SharedStats {
    peers: AtomicUsize,
    rooms: AtomicUsize,
    packets_received: AtomicU64,
    packets_forwarded: AtomicU64,
    bytes_forwarded: AtomicU64,
    packets_withheld: AtomicU64,
    datagrams_malformed: AtomicU64,
    datagrams_unroutable: AtomicU64,
    addresses_refused: AtomicU64,
    line_probes_answered: AtomicU64,
    keyframe_requests_sent: AtomicU64,
    red_packets_received: AtomicU64,
}

enum ShellCommand {
    Core(Command),
    AddPeer {
        peer: PeerId,
        room: RoomId,
        offer: OfferSdp,
        audio_allowed: bool,
        subscriptions: Subscriptions,
        screen_mid: Option<String>,
        events: UnboundedSender<PeerEvent>,
    },
    AddLineTest {
        peer: PeerId,
        offer: OfferSdp,
        plan: LineTestPlan,
        events: UnboundedSender<PeerEvent>,
    },
    Shutdown,
}

/// Binds the media socket (and, with `tcp_listen`, the ICE-TCP listener) and starts the
/// media thread.
///
/// `config.candidate_addr` may name a port of 0: it is replaced by the bound port. With
/// `tcp_listen`, `config.tcp_candidate_addr` becomes the candidate address's IP with the
/// TCP listener's bound port.
pub fn spawn(
    listen: SocketAddr,
    tcp_listen: Option<SocketAddr>,
    mut config: SfuConfig,
) -> std::io::Result<SfuHandle> {
    let std_socket = bind_media_socket(listen)?;
    let local_addr = std_socket.local_addr()?;
    config.candidate_addr.set_port(local_addr.port());
    let mut socket = UdpSocket::from_std(std_socket);
    let poll = Poll::new()?;
    poll.registry()
        .register(&mut socket, SOCKET, Interest::READABLE)?;
    let mut tcp = None;
    let mut tcp_local_addr = None;
    if let Some(tcp_listen) = tcp_listen {
        let mut listener = TcpListener::bind(tcp_listen)?;
        let bound = listener.local_addr()?;
        poll.registry()
            .register(&mut listener, TCP_LISTENER, Interest::READABLE)?;
        config.tcp_candidate_addr = Some(SocketAddr::new(config.candidate_addr.ip(), bound.port()));
        tcp_local_addr = Some(bound);
        tcp = Some(Connections::new(listener, FIRST_TCP_CONNECTION));
    }
    let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
    let (commands, receiver) = mpsc::channel();
    let shared = Arc::new(SharedStats::default());
    let udp = UdpSocketState::new((&socket).into())?;
    let core = Sfu::new(config);
    let line_probe = Arc::new(core.line_probe().clone());
    let worker = Worker {
        socket,
        udp,
        poll,
        commands: receiver,
        core,
        sinks: HashMap::new(),
        shared: shared.clone(),
        slots: vec![0; RECV_SLOT * RECV_BATCH],
        meta: [RecvMeta::default(); RECV_BATCH],
        outbox: Vec::new(),
        segments: Vec::with_capacity(batch::MAX_SEGMENTED_BYTES),
        tcp,
        tcp_scratch: vec![0; 1 << 16],
        idle_checked: Instant::now(),
    };
    thread::Builder::new()
        .name("cau-media".into())
        .spawn(move || worker.run())?;
    Ok(SfuHandle {
        commands,
        waker,
        local_addr,
        tcp_local_addr,
        shared,
        line_probe,
    })
}

/// The socket buffers asked of the kernel (it caps them at `net.core.rmem_max` and
/// `wmem_max`). The default, about 200 KiB, holds under a second of a 58-site meeting's
/// traffic and overflows when keyframes from many sites, or a flood of garbage, arrive
/// while the media thread is busy: every datagram dropped there is media lost.
const SOCKET_BUFFER: usize = 4 << 20;

/// Binds the media socket, non-blocking, with large buffers.
fn bind_media_socket(listen: SocketAddr) -> std::io::Result<std::net::UdpSocket> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(listen),
        socket2::Type::DGRAM,
        Some(socket2::Protocol::UDP),
    )?;
    // A smaller buffer than asked for is still a working socket: log, do not fail.
    if let Err(e) = socket.set_recv_buffer_size(SOCKET_BUFFER) {
        tracing::warn!("cannot enlarge the media receive buffer: {e}");
    }
    if let Err(e) = socket.set_send_buffer_size(SOCKET_BUFFER) {
        tracing::warn!("cannot enlarge the media send buffer: {e}");
    }
    socket.bind(&listen.into())?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

impl SfuHandle {
    /// Creates a peer from its offer. The answer, and every later event about the peer,
    /// arrive on the returned channel; it closes after [`PeerEvent::Gone`] or removal.
    /// The offer comes parsed ([`OfferSdp::parse`]) by the caller, so that the media
    /// thread never pays for a parse.
    pub fn add_peer(
        &self,
        peer: PeerId,
        room: RoomId,
        offer: OfferSdp,
        audio_allowed: bool,
        subscriptions: Subscriptions,
        screen_mid: Option<String>,
    ) -> UnboundedReceiver<PeerEvent> {
        let (events, receiver) = unbounded_channel();
        self.send(ShellCommand::AddPeer {
            peer,
            room,
            offer,
            audio_allowed,
            subscriptions,
            screen_mid,
            events,
        });
        receiver
    }

    /// Starts a line test from the site's offer (see [`Command::AddLineTest`]). Its
    /// answer, report and every other event arrive on the returned channel.
    pub fn add_line_test(
        &self,
        peer: PeerId,
        offer: OfferSdp,
        plan: LineTestPlan,
    ) -> UnboundedReceiver<PeerEvent> {
        let (events, receiver) = unbounded_channel();
        self.send(ShellCommand::AddLineTest {
            peer,
            offer,
            plan,
            events,
        });
        receiver
    }

    /// Passes a command about an existing peer to the media thread.
    pub fn command(&self, command: Command) {
        self.send(ShellCommand::Core(command));
    }

    /// Stops the media thread. Peers are dropped without notice.
    pub fn shutdown(&self) {
        self.send(ShellCommand::Shutdown);
    }

    /// The address the media socket is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The credentials of the media socket's line probe, which every site is given so
    /// that its page can tell, over UDP, when its line is back (`crate::line_probe`).
    pub fn line_probe(&self) -> &IceCreds {
        &self.line_probe
    }

    /// The address the ICE-TCP listener is bound to, if there is one.
    pub fn tcp_local_addr(&self) -> Option<SocketAddr> {
        self.tcp_local_addr
    }

    /// Peers currently held by the media thread.
    pub fn peer_count(&self) -> usize {
        self.shared.peers.load(Ordering::Relaxed)
    }

    /// The latest figures published by the media thread.
    pub fn stats(&self) -> SfuStats {
        SfuStats {
            peers: self.shared.peers.load(Ordering::Relaxed),
            rooms: self.shared.rooms.load(Ordering::Relaxed),
            packets_received: self.shared.packets_received.load(Ordering::Relaxed),
            packets_forwarded: self.shared.packets_forwarded.load(Ordering::Relaxed),
            bytes_forwarded: self.shared.bytes_forwarded.load(Ordering::Relaxed),
            packets_withheld: self.shared.packets_withheld.load(Ordering::Relaxed),
            datagrams_malformed: self.shared.datagrams_malformed.load(Ordering::Relaxed),
            datagrams_unroutable: self.shared.datagrams_unroutable.load(Ordering::Relaxed),
            addresses_refused: self.shared.addresses_refused.load(Ordering::Relaxed),
            line_probes_answered: self.shared.line_probes_answered.load(Ordering::Relaxed),
            keyframe_requests_sent: self.shared.keyframe_requests_sent.load(Ordering::Relaxed),
            red_packets_received: self.shared.red_packets_received.load(Ordering::Relaxed),
        }
    }

    fn send(&self, command: ShellCommand) {
        // A send fails only when the media thread has ended, at shutdown; there is
        // nobody left to act on the command then.
        if self.commands.send(command).is_ok()
            && let Err(e) = self.waker.wake()
        {
            tracing::error!("cannot wake the media thread: {e}");
        }
    }
}

struct Worker {
    socket: UdpSocket,
    /// quinn-udp's view of the socket: what the kernel supports (GSO, GRO) and how to
    /// fall back when a send with segmentation fails.
    udp: UdpSocketState,
    poll: Poll,
    commands: mpsc::Receiver<ShellCommand>,
    core: Sfu,
    sinks: HashMap<PeerId, UnboundedSender<PeerEvent>>,
    shared: Arc<SharedStats>,
    /// [`RECV_BATCH`] receive slots of [`RECV_SLOT`] bytes, end to end.
    slots: Vec<u8>,
    meta: [RecvMeta; RECV_BATCH],
    /// Datagrams the core produced, waiting to be sent together.
    outbox: Vec<Transmit>,
    /// One run of datagrams laid end to end for a segmented send.
    segments: Vec<u8>,
    /// ICE-TCP connections, when a TCP port is configured.
    tcp: Option<Connections>,
    tcp_scratch: Vec<u8>,
    /// When idle TCP connections were last looked for.
    idle_checked: Instant,
}

impl Worker {
    fn run(mut self) {
        let mut events = Events::with_capacity(64);
        // The socket may hold more than one batch: then poll without waiting, since
        // edge-triggered readiness will not fire again for what is already there.
        let mut socket_backlog = false;
        loop {
            let deadline = self.core.poll_timeout();
            let timeout = if socket_backlog {
                Duration::ZERO
            } else {
                deadline
                    .map(|at| at.saturating_duration_since(Instant::now()))
                    // Wake at least once a second so published figures stay fresh.
                    .map_or(Duration::from_secs(1), |d| d.min(Duration::from_secs(1)))
            };
            if let Err(e) = self.poll.poll(&mut events, Some(timeout)) {
                if e.kind() != ErrorKind::Interrupted {
                    tracing::error!("media poll failed: {e}");
                    thread::sleep(Duration::from_millis(10));
                }
                continue;
            }
            let readable = events.iter().any(|event| event.token() == SOCKET);
            if readable || socket_backlog {
                socket_backlog = self.read_socket();
            }
            if self.tcp.is_some() {
                self.handle_tcp(&events);
            }
            if !self.take_commands() {
                tracing::info!("media thread stopping");
                return;
            }
            // Timers only when one is due: the core looks at every peer to find them, and
            // under load most turns are woken by datagrams, not by time. A deadline that
            // the datagrams just moved earlier is seen at the next turn's `poll_timeout`.
            let now = Instant::now();
            if deadline.is_some_and(|at| at <= now) {
                self.core.handle_timeout(now);
            }
            self.flush();
            self.publish_stats();
        }
    }

    /// Reads until the socket is empty or [`READ_TURNS`] batches are read; returns whether
    /// datagrams may remain. With edge-triggered readiness a datagram left behind would
    /// not wake us again, so the caller comes back at once; the limit keeps a socket that
    /// never empties under load from starving timers (RTCP, statistics, keyframe
    /// requests) and signaling's commands (answers, new peers).
    fn read_socket(&mut self) -> bool {
        for _ in 0..READ_TURNS {
            let received = {
                let mut slices: Vec<IoSliceMut<'_>> = self
                    .slots
                    .chunks_exact_mut(RECV_SLOT)
                    .map(IoSliceMut::new)
                    .collect();
                self.udp
                    .recv((&self.socket).into(), &mut slices, &mut self.meta)
            };
            match received {
                Ok(count) => {
                    let now = Instant::now();
                    let datagrams = self
                        .slots
                        .chunks_exact(RECV_SLOT)
                        .zip(&self.meta[..count])
                        .flat_map(|(slot, meta)| {
                            let data = &slot[..meta.len.min(RECV_SLOT)];
                            // A slot holds one datagram, or several of one sender cut
                            // at `stride` when the kernel coalesced them.
                            let stride = if meta.stride == 0 {
                                data.len().max(1)
                            } else {
                                meta.stride
                            };
                            // Wider than a WebRTC packet: not one; skipped whole.
                            let usable = if stride > MAX_DATAGRAM { &[][..] } else { data };
                            usable.chunks(stride).map(move |d| (meta.addr, d))
                        });
                    self.core.handle_datagrams(datagrams, now);
                    self.flush();
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return false,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                // ICMP errors from earlier sends (a client gone away) surface here on
                // some systems; they concern one peer only.
                Err(e) => {
                    tracing::debug!("media socket receive: {e}");
                    continue;
                }
            }
        }
        true
    }

    /// Accepts, reads and writes ICE-TCP connections as `events` say.
    fn handle_tcp(&mut self, events: &Events) {
        let Some(tcp) = self.tcp.as_mut() else {
            return;
        };
        let registry = self.poll.registry();
        let now = Instant::now();
        for event in events {
            let token = event.token();
            if token == TCP_LISTENER {
                tcp.accept(registry, now);
            } else if tcp.owns(token) {
                if event.is_writable() {
                    tcp.write(registry, token);
                }
                if event.is_readable() || event.is_read_closed() || event.is_error() {
                    let core = &mut self.core;
                    tcp.read(
                        registry,
                        token,
                        &mut self.tcp_scratch,
                        now,
                        |remote, packet| core.handle_tcp_packet(remote, packet, now),
                    );
                }
            }
        }
        if now.saturating_duration_since(self.idle_checked) > Duration::from_secs(1) {
            self.idle_checked = now;
            tcp.close_idle(registry, now);
        }
        self.flush();
    }

    /// Carries out queued commands. Returns false at shutdown.
    fn take_commands(&mut self) -> bool {
        loop {
            let command = match self.commands.try_recv() {
                Ok(command) => command,
                Err(mpsc::TryRecvError::Empty) => return true,
                Err(mpsc::TryRecvError::Disconnected) => return false,
            };
            let now = Instant::now();
            match command {
                ShellCommand::Shutdown => return false,
                ShellCommand::AddPeer {
                    peer,
                    room,
                    offer,
                    audio_allowed,
                    subscriptions,
                    screen_mid,
                    events,
                } => {
                    self.sinks.insert(peer, events);
                    self.core.handle_command(
                        Command::AddPeer {
                            peer,
                            room,
                            offer,
                            audio_allowed,
                            subscriptions,
                            screen_mid,
                        },
                        now,
                    );
                }
                ShellCommand::AddLineTest {
                    peer,
                    offer,
                    plan,
                    events,
                } => {
                    self.sinks.insert(peer, events);
                    self.core
                        .handle_command(Command::AddLineTest { peer, offer, plan }, now);
                }
                ShellCommand::Core(command) => {
                    if let Command::RemovePeer { peer } = command {
                        self.sinks.remove(&peer);
                    }
                    self.core.handle_command(command, now);
                }
            }
            self.flush();
        }
    }

    /// Publishes the core's figures for the rest of the process: once per loop turn,
    /// not per datagram, since nobody reads them that often.
    fn publish_stats(&self) {
        let stats = self.core.stats();
        self.shared.peers.store(stats.peers, Ordering::Relaxed);
        self.shared.rooms.store(stats.rooms, Ordering::Relaxed);
        let shared = &self.shared;
        shared
            .packets_received
            .store(stats.packets_received, Ordering::Relaxed);
        shared
            .packets_forwarded
            .store(stats.packets_forwarded, Ordering::Relaxed);
        shared
            .bytes_forwarded
            .store(stats.bytes_forwarded, Ordering::Relaxed);
        shared
            .packets_withheld
            .store(stats.packets_withheld, Ordering::Relaxed);
        shared
            .keyframe_requests_sent
            .store(stats.keyframe_requests_sent, Ordering::Relaxed);
        shared
            .red_packets_received
            .store(stats.red_packets_received, Ordering::Relaxed);
        self.shared
            .datagrams_malformed
            .store(stats.datagrams_malformed, Ordering::Relaxed);
        self.shared
            .datagrams_unroutable
            .store(stats.datagrams_unroutable, Ordering::Relaxed);
        self.shared
            .addresses_refused
            .store(stats.addresses_refused, Ordering::Relaxed);
        self.shared
            .line_probes_answered
            .store(stats.line_probes_answered, Ordering::Relaxed);
    }

    /// Sends what the core queued and hands its events to signaling.
    fn flush(&mut self) {
        while let Some(transmit) = self.core.poll_transmit() {
            self.outbox.push(transmit);
        }
        self.send_outbox();
        while let Some((peer, event)) = self.core.poll_event() {
            let last = matches!(event, PeerEvent::Gone { .. });
            if let Some(sink) = self.sinks.get(&peer) {
                // The receiver is gone only if signaling already dropped the session.
                let _ = sink.send(event);
            }
            if last {
                self.sinks.remove(&peer);
            }
        }
    }

    /// Sends the outbox: each run of equal-sized datagrams to one destination in one
    /// segmented send when the kernel can, the rest one by one.
    fn send_outbox(&mut self) {
        if self.outbox.is_empty() {
            return;
        }
        // Packets for ICE-TCP peers go onto their connections, framed.
        if let Some(tcp) = self.tcp.as_mut() {
            let registry = self.poll.registry();
            self.outbox.retain(|transmit| {
                if transmit.proto != Protocol::Tcp {
                    return true;
                }
                tcp.send(registry, transmit.destination, &transmit.contents);
                false
            });
        }
        let runs = batch::plan(
            &mut self.outbox,
            |t| t.destination,
            |t| t.contents.len(),
            self.udp.max_gso_segments(),
        );
        for run in runs {
            let first = &self.outbox[run.start];
            let destination = first.destination;
            let (contents, segment_size): (&[u8], _) = if run.len() == 1 {
                (&first.contents, None)
            } else {
                self.segments.clear();
                for transmit in &self.outbox[run.clone()] {
                    self.segments.extend_from_slice(&transmit.contents);
                }
                (&self.segments, Some(first.contents.len()))
            };
            let transmit = quinn_udp::Transmit {
                destination,
                ecn: None,
                contents,
                segment_size,
                src_ip: None,
            };
            // quinn-udp stops segmenting if the kernel refuses it. A full send buffer is
            // left: UDP may drop, and so do we; WebRTC recovers (NACK, keyframe requests)
            // as from loss on the line. Other errors concern one destination.
            match self.udp.try_send((&self.socket).into(), &transmit) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => tracing::debug!(to = %destination, "media send: {e}"),
            }
        }
        self.outbox.clear();
    }
}
