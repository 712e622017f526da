//! The line probe: ICE checks the media socket answers for no peer, so that a browser
//! whose line dropped learns the moment it is back, without waiting on TCP's backoff.
//!
//! Why: a page that lost its line used to find out it was back only by asking the
//! server over HTTP. A TCP connection attempted while a line is down has its SYN lost,
//! and the kernel sends it again only after 1, 2, 4, 8, 16 s; Chromium may hand a later
//! check to such an attempt, so after a 30 s outage the page could wait a further 15 s.
//! An ICE check is a datagram a new RTCPeerConnection sends again and again by itself,
//! with nothing that backs off for seconds: the first one after the line returns gets
//! an answer. The page then opens its socket on a line known to work.
//!
//! The server has one probe username fragment and password for its life, handed to each
//! site in `joined` (docs/signaling.md). The page makes a connection whose remote
//! description names them and the server's candidates (UDP, and ICE-TCP for a site
//! whose firewall passes no UDP: a check over TCP is answered on its connection); a
//! check that names the probe fragment and carries a valid MESSAGE-INTEGRITY for the
//! probe password is answered with a binding success, signed with the same password, as
//! an ICE-lite peer would. Nothing
//! else happens: no peer, no address bound, no DTLS (the page closes the connection once
//! ICE says connected). A check without the password is not answered, so the socket is
//! no open STUN server, and the answer is about the size of the check (64 bytes; a
//! browser's check is over 100), so it amplifies nothing.

use std::net::SocketAddr;

use str0m::IceCreds;
use str0m::config::CryptoProvider;
use str0m::ice::StunMessage;

/// Longer than any answer: 20 bytes of header, XOR-MAPPED-ADDRESS (24 for IPv6),
/// MESSAGE-INTEGRITY (24) and FINGERPRINT (8).
const ANSWER_CAPACITY: usize = 128;

/// The probe's credentials, and what answers a check made with them.
#[derive(Debug, Clone)]
pub struct LineProbe {
    creds: IceCreds,
}

impl LineProbe {
    /// Credentials drawn at random, as str0m draws a peer's.
    pub fn new() -> LineProbe {
        LineProbe {
            creds: IceCreds::new(),
        }
    }

    /// The username fragment and password the page puts in its remote description.
    pub fn credentials(&self) -> &IceCreds {
        &self.creds
    }

    /// Whether `local`, our half of a check's USERNAME, names the probe.
    pub fn is_named(&self, local: &str) -> bool {
        local == self.creds.ufrag
    }

    /// The answer to a check from `source` that names the probe, or `None` when `data`
    /// is not a binding request with a valid MESSAGE-INTEGRITY for the probe password.
    pub fn answer(
        &self,
        source: SocketAddr,
        data: &[u8],
        crypto: &CryptoProvider,
    ) -> Option<Vec<u8>> {
        let hmac =
            |key: &[u8], payloads: &[&[u8]]| crypto.sha1_hmac_provider.sha1_hmac(key, payloads);
        let request = StunMessage::parse(data).ok()?;
        let (local, _remote) = request.split_username()?;
        if !request.is_binding_request() || !self.is_named(local) {
            return None;
        }
        if !request.verify(self.creds.pass.as_bytes(), hmac) {
            return None;
        }
        let reply = StunMessage::binding_reply(request.trans_id(), source);
        let mut answer = vec![0; ANSWER_CAPACITY];
        let len = reply
            .to_bytes(Some(self.creds.pass.as_bytes()), &mut answer, hmac)
            .ok()?;
        answer.truncate(len);
        Some(answer)
    }
}

impl Default for LineProbe {
    fn default() -> LineProbe {
        LineProbe::new()
    }
}
