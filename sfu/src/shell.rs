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

use std::collections::HashMap;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token, Waker};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use crate::core::{Sfu, SfuConfig, SfuStats};
use crate::{Command, LineTestPlan, PeerEvent, PeerId, RoomId, Subscriptions};

const SOCKET: Token = Token(0);
const WAKER: Token = Token(1);

/// The largest datagram we accept. WebRTC keeps packets under the path MTU (about
/// 1,200 bytes); anything larger is not ours, and is dropped when truncated.
const MAX_DATAGRAM: usize = 2048;

/// The handle signaling uses to talk to the media thread. Cheap to clone.
#[derive(Clone)]
pub struct SfuHandle {
    commands: mpsc::Sender<ShellCommand>,
    waker: Arc<Waker>,
    local_addr: SocketAddr,
    shared: Arc<SharedStats>,
}

/// Datagrams read in one go before timers and commands get their turn.
const READ_BATCH: usize = 256;

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
    keyframe_requests_sent: AtomicU64,
}

enum ShellCommand {
    Core(Command),
    AddPeer {
        peer: PeerId,
        room: RoomId,
        offer_sdp: String,
        audio_allowed: bool,
        subscriptions: Subscriptions,
        events: UnboundedSender<PeerEvent>,
    },
    AddLineTest {
        peer: PeerId,
        offer_sdp: String,
        plan: LineTestPlan,
        events: UnboundedSender<PeerEvent>,
    },
    Shutdown,
}

/// Binds the media socket and starts the media thread.
///
/// `config.candidate_addr` may name a port of 0: it is replaced by the bound port.
pub fn spawn(listen: SocketAddr, mut config: SfuConfig) -> std::io::Result<SfuHandle> {
    let std_socket = bind_media_socket(listen)?;
    let local_addr = std_socket.local_addr()?;
    config.candidate_addr.set_port(local_addr.port());
    let mut socket = UdpSocket::from_std(std_socket);
    let poll = Poll::new()?;
    poll.registry()
        .register(&mut socket, SOCKET, Interest::READABLE)?;
    let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
    let (commands, receiver) = mpsc::channel();
    let shared = Arc::new(SharedStats::default());
    let worker = Worker {
        socket,
        poll,
        commands: receiver,
        core: Sfu::new(config),
        sinks: HashMap::new(),
        shared: shared.clone(),
        buffer: vec![0; MAX_DATAGRAM],
    };
    thread::Builder::new()
        .name("cau-media".into())
        .spawn(move || worker.run())?;
    Ok(SfuHandle {
        commands,
        waker,
        local_addr,
        shared,
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
    pub fn add_peer(
        &self,
        peer: PeerId,
        room: RoomId,
        offer_sdp: String,
        audio_allowed: bool,
        subscriptions: Subscriptions,
    ) -> UnboundedReceiver<PeerEvent> {
        let (events, receiver) = unbounded_channel();
        self.send(ShellCommand::AddPeer {
            peer,
            room,
            offer_sdp,
            audio_allowed,
            subscriptions,
            events,
        });
        receiver
    }

    /// Starts a line test from the site's offer (see [`Command::AddLineTest`]). Its
    /// answer, report and every other event arrive on the returned channel.
    pub fn add_line_test(
        &self,
        peer: PeerId,
        offer_sdp: String,
        plan: LineTestPlan,
    ) -> UnboundedReceiver<PeerEvent> {
        let (events, receiver) = unbounded_channel();
        self.send(ShellCommand::AddLineTest {
            peer,
            offer_sdp,
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
            keyframe_requests_sent: self.shared.keyframe_requests_sent.load(Ordering::Relaxed),
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
    poll: Poll,
    commands: mpsc::Receiver<ShellCommand>,
    core: Sfu,
    sinks: HashMap<PeerId, UnboundedSender<PeerEvent>>,
    shared: Arc<SharedStats>,
    buffer: Vec<u8>,
}

impl Worker {
    fn run(mut self) {
        let mut events = Events::with_capacity(64);
        // The socket may hold more than one batch: then poll without waiting, since
        // edge-triggered readiness will not fire again for what is already there.
        let mut socket_backlog = false;
        loop {
            let timeout = if socket_backlog {
                Duration::ZERO
            } else {
                self.core
                    .poll_timeout()
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
            if !self.take_commands() {
                tracing::info!("media thread stopping");
                return;
            }
            self.core.handle_timeout(Instant::now());
            self.flush();
            self.publish_stats();
        }
    }

    /// Reads until the socket is empty or one batch is read; returns whether datagrams
    /// may remain. With edge-triggered readiness a datagram left behind would not wake
    /// us again, so the caller comes back at once; the batch limit keeps a socket that
    /// never empties under load from starving timers (RTCP, statistics, keyframe
    /// requests) and signaling's commands (answers, new peers).
    fn read_socket(&mut self) -> bool {
        for _ in 0..READ_BATCH {
            match self.socket.recv_from(&mut self.buffer) {
                Ok((len, source)) => {
                    if len >= MAX_DATAGRAM {
                        continue; // Truncated: not a WebRTC packet.
                    }
                    self.core
                        .handle_datagram(source, &self.buffer[..len], Instant::now());
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
                    offer_sdp,
                    audio_allowed,
                    subscriptions,
                    events,
                } => {
                    self.sinks.insert(peer, events);
                    self.core.handle_command(
                        Command::AddPeer {
                            peer,
                            room,
                            offer_sdp,
                            audio_allowed,
                            subscriptions,
                        },
                        now,
                    );
                }
                ShellCommand::AddLineTest {
                    peer,
                    offer_sdp,
                    plan,
                    events,
                } => {
                    self.sinks.insert(peer, events);
                    self.core.handle_command(
                        Command::AddLineTest {
                            peer,
                            offer_sdp,
                            plan,
                        },
                        now,
                    );
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
        self.shared
            .datagrams_malformed
            .store(stats.datagrams_malformed, Ordering::Relaxed);
        self.shared
            .datagrams_unroutable
            .store(stats.datagrams_unroutable, Ordering::Relaxed);
    }

    /// Sends what the core queued and hands its events to signaling.
    fn flush(&mut self) {
        while let Some(transmit) = self.core.poll_transmit() {
            match self
                .socket
                .send_to(&transmit.contents, transmit.destination)
            {
                Ok(_) => {}
                // The send buffer is full: UDP may drop, and so do we. WebRTC recovers
                // (NACK, keyframe requests) as it would from loss on the line.
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => tracing::debug!(to = %transmit.destination, "media send: {e}"),
            }
        }
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
}
