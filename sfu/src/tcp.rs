//! ICE-TCP's transport: media packets over TCP connections, each packet preceded by its
//! length in two bytes (RFC 4571), for sites whose firewall blocks UDP.
//!
//! [`Framer`] cuts packets out of what a connection delivers and is pure; [`Connections`]
//! holds the accepted connections of the media thread, reads and writes them without
//! blocking, and knows each by its peer's address, which is all the core sees.
//!
//! A TCP connection is outside input like a datagram: a frame larger than any WebRTC
//! packet, a connection that sends nothing the core accepts, more connections than
//! allowed, or a reader too slow for what it is sent, each ends that connection only.

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Registry, Token};

/// The largest packet a frame may carry: what the UDP path accepts too.
pub(crate) const MAX_PACKET: usize = 2048;
/// At most this many connections at once; more are closed as they come.
pub(crate) const MAX_CONNECTIONS: usize = 1024;
/// Bytes waiting to be written to one connection beyond which packets are dropped: a
/// line that cannot keep up loses packets, as a UDP one would, rather than the server
/// queueing without bound. About a second of a fully loaded site's downlink.
const MAX_PENDING_WRITE: usize = 512 * 1024;
/// A connection silent this long is closed: a browser sends ICE consent checks every
/// few seconds on a connection in use.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Cuts RFC 4571 frames out of a byte stream.
#[derive(Debug, Default)]
pub(crate) struct Framer {
    buffer: Vec<u8>,
}

/// The stream broke the framing: the connection is not ours to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FrameTooLarge(pub usize);

impl Framer {
    pub fn push(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    /// Hands each complete packet to `packet`, keeping a partial one for later.
    pub fn drain(&mut self, mut packet: impl FnMut(&[u8])) -> Result<(), FrameTooLarge> {
        let mut at = 0;
        while let Some(header) = self.buffer.get(at..at + 2) {
            let length = usize::from(u16::from_be_bytes([header[0], header[1]]));
            if length > MAX_PACKET {
                return Err(FrameTooLarge(length));
            }
            let Some(body) = self.buffer.get(at + 2..at + 2 + length) else {
                break;
            };
            // An empty frame carries nothing; skip it.
            if length > 0 {
                packet(body);
            }
            at += 2 + length;
        }
        self.buffer.drain(..at);
        Ok(())
    }
}

/// Appends `packet` to `out` as one frame. `None` if it is too large for one.
pub(crate) fn frame(packet: &[u8], out: &mut Vec<u8>) -> Option<()> {
    let length = u16::try_from(packet.len()).ok()?;
    out.extend_from_slice(&length.to_be_bytes());
    out.extend_from_slice(packet);
    Some(())
}

struct Connection {
    stream: TcpStream,
    remote: SocketAddr,
    framer: Framer,
    /// Framed bytes not yet accepted by the socket.
    pending: Vec<u8>,
    last_read: Instant,
}

/// The media thread's TCP connections.
pub(crate) struct Connections {
    listener: TcpListener,
    /// Tokens of connections start here; lower ones are the shell's.
    first_token: usize,
    next_token: usize,
    by_token: HashMap<Token, Connection>,
    by_remote: HashMap<SocketAddr, Token>,
}

impl Connections {
    pub fn new(listener: TcpListener, first_token: usize) -> Connections {
        Connections {
            listener,
            first_token,
            next_token: first_token,
            by_token: HashMap::new(),
            by_remote: HashMap::new(),
        }
    }

    pub fn owns(&self, token: Token) -> bool {
        token.0 >= self.first_token
    }

    /// Accepts every waiting connection.
    pub fn accept(&mut self, registry: &Registry, now: Instant) {
        loop {
            let (mut stream, remote) = match self.listener.accept() {
                Ok(accepted) => accepted,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    tracing::debug!("media TCP accept: {e}");
                    return;
                }
            };
            if self.by_token.len() >= MAX_CONNECTIONS {
                tracing::warn!(%remote, "media TCP connection refused: too many connections");
                continue; // Dropping the stream closes it.
            }
            let token = Token(self.next_token);
            self.next_token += 1;
            if let Err(e) = registry.register(&mut stream, token, Interest::READABLE) {
                tracing::debug!(%remote, "media TCP register: {e}");
                continue;
            }
            let _ = stream.set_nodelay(true);
            if let Some(old) = self.by_remote.insert(remote, token) {
                self.close(registry, old);
                self.by_remote.insert(remote, token);
            }
            self.by_token.insert(
                token,
                Connection {
                    stream,
                    remote,
                    framer: Framer::default(),
                    pending: Vec::new(),
                    last_read: now,
                },
            );
        }
    }

    /// Reads what `token`'s connection has, handing each packet to `packet` with the
    /// connection's remote address; closes the connection when it ends or breaks.
    pub fn read(
        &mut self,
        registry: &Registry,
        token: Token,
        scratch: &mut [u8],
        now: Instant,
        mut packet: impl FnMut(SocketAddr, &[u8]),
    ) {
        let Some(connection) = self.by_token.get_mut(&token) else {
            return;
        };
        let mut close = false;
        loop {
            match connection.stream.read(scratch) {
                Ok(0) => {
                    close = true;
                    break;
                }
                Ok(read) => {
                    connection.last_read = now;
                    connection.framer.push(&scratch[..read]);
                    let remote = connection.remote;
                    if let Err(FrameTooLarge(length)) =
                        connection.framer.drain(|body| packet(remote, body))
                    {
                        tracing::debug!(%remote, length, "media TCP frame too large; closing");
                        close = true;
                        break;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => {
                    close = true;
                    break;
                }
            }
        }
        if close {
            self.close(registry, token);
        }
    }

    /// Queues `packet` for the connection from `remote` and writes what the socket
    /// takes. Without such a connection, or with too much already waiting, the packet
    /// is dropped.
    pub fn send(&mut self, registry: &Registry, remote: SocketAddr, packet: &[u8]) {
        let Some(&token) = self.by_remote.get(&remote) else {
            return;
        };
        let Some(connection) = self.by_token.get_mut(&token) else {
            return;
        };
        if connection.pending.len() + packet.len() + 2 > MAX_PENDING_WRITE {
            return;
        }
        if frame(packet, &mut connection.pending).is_none() {
            return;
        }
        self.write(registry, token);
    }

    /// Writes what waits for `token`'s connection, as far as the socket takes it, and
    /// asks to be woken when it can take more.
    pub fn write(&mut self, registry: &Registry, token: Token) {
        let Some(connection) = self.by_token.get_mut(&token) else {
            return;
        };
        let mut written = 0;
        let mut broken = false;
        while written < connection.pending.len() {
            match connection.stream.write(&connection.pending[written..]) {
                Ok(0) => {
                    broken = true;
                    break;
                }
                Ok(n) => written += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => {
                    broken = true;
                    break;
                }
            }
        }
        connection.pending.drain(..written);
        if broken {
            self.close(registry, token);
            return;
        }
        let interest = if connection.pending.is_empty() {
            Interest::READABLE
        } else {
            Interest::READABLE | Interest::WRITABLE
        };
        let _ = registry.reregister(&mut connection.stream, token, interest);
    }

    /// Closes connections that have been silent too long.
    pub fn close_idle(&mut self, registry: &Registry, now: Instant) {
        let idle: Vec<Token> = self
            .by_token
            .iter()
            .filter(|(_, c)| now.saturating_duration_since(c.last_read) > IDLE_TIMEOUT)
            .map(|(&token, _)| token)
            .collect();
        for token in idle {
            self.close(registry, token);
        }
    }

    fn close(&mut self, registry: &Registry, token: Token) {
        if let Some(mut connection) = self.by_token.remove(&token) {
            let _ = registry.deregister(&mut connection.stream);
            if self.by_remote.get(&connection.remote) == Some(&token) {
                self.by_remote.remove(&connection.remote);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_cut_out_however_the_stream_is_split() {
        let mut stream = Vec::new();
        frame(b"first", &mut stream).unwrap();
        frame(&[7; 1200], &mut stream).unwrap();
        frame(b"", &mut stream).unwrap();
        frame(b"last", &mut stream).unwrap();
        for split in [1, 2, 3, 7, 100, stream.len()] {
            let mut framer = Framer::default();
            let mut packets = Vec::new();
            for piece in stream.chunks(split) {
                framer.push(piece);
                framer.drain(|p| packets.push(p.to_vec())).unwrap();
            }
            assert_eq!(packets.len(), 3, "split {split}");
            assert_eq!(packets[0], b"first");
            assert_eq!(packets[1], vec![7; 1200]);
            assert_eq!(packets[2], b"last");
        }
    }

    #[test]
    fn a_frame_larger_than_any_packet_breaks_the_connection() {
        let mut framer = Framer::default();
        framer.push(&[0xff, 0xff, 1, 2, 3]);
        assert_eq!(
            framer.drain(|_| panic!("no packet")),
            Err(FrameTooLarge(0xffff))
        );
    }

    #[test]
    fn a_packet_too_large_for_a_frame_is_not_framed() {
        let mut out = Vec::new();
        assert_eq!(frame(&vec![0; 70_000], &mut out), None);
        assert!(out.is_empty());
    }
}
