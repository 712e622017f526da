//! Entry points for the fuzz targets in `fuzz/` (see `docs/fuzzing.md`): the SDP and
//! candidates signaling hands the core, and the datagrams that reach the media socket.
//!
//! They drive a real [`Sfu`] with a real str0m client standing in for a browser, on
//! simulated time. They are public only because the fuzz crate, a workspace of its
//! own, must reach them; the server never calls them. Each panics when an invariant of
//! the core breaks, since a panic is what a fuzzer reports; the tests at the end replay
//! what the fuzzers found, and a sample of their corpora, through the same functions.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::ice::{StunMessage, TransId};
use str0m::media::{Direction, MediaKind as StrKind};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Input, Output, Rtc};

use crate::core::MAX_PEER_ADDRESSES;
use crate::{
    AnswerSdp, Command, OfferSdp, PeerEvent, PeerId, RoomId, Sfu, SfuConfig, Subscriptions,
};

/// What an entry point made of its input (here and in signaling's fuzzing module).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Parsed, and every check passed: for an offer, the core answered.
    Accepted,
    /// Refused, with the error the sender would see.
    Refused(String),
}

/// At most this many corpus files are replayed per target by [`replay_corpus`]: a
/// sample spread over the whole corpus keeps the replay well under a second.
const SAMPLE: usize = 150;

/// Replays a sample of a committed corpus (`fuzz/corpus/<target>`) through `entry`, for
/// the crates' tests, and checks that the sample holds inputs it accepts and inputs it
/// refuses: a corpus of one kind only would no longer exercise the parser.
pub fn replay_corpus(dir: &Path, entry: impl Fn(&[u8]) -> Option<Outcome>) {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("a readable directory entry").path())
        .collect();
    files.sort();
    assert!(
        files.len() >= 10,
        "{} has {} files",
        dir.display(),
        files.len()
    );
    let step = files.len().div_ceil(SAMPLE);
    let (mut accepted, mut refused) = (0, 0);
    for path in files.iter().step_by(step) {
        let input = std::fs::read(path).expect("a readable corpus file");
        match entry(&input) {
            Some(Outcome::Accepted) => accepted += 1,
            Some(Outcome::Refused(_)) => refused += 1,
            None => {}
        }
    }
    assert!(
        accepted > 0,
        "{}: no sampled input was accepted",
        dir.display()
    );
    assert!(
        refused > 0,
        "{}: no sampled input was refused",
        dir.display()
    );
}

const SERVER: &str = "10.0.0.1:5000";
const CLIENT: &str = "10.0.1.1:4000";
/// Where [`Source::Stranger`]'s datagrams come from; ICE checks come from other ports
/// of [`checking_stranger`]'s address.
const STRANGER: &str = "10.0.3.3:9";
const PUBLISHER: PeerId = PeerId(1);
/// The peer an [`answer`] answers for: it receives [`PUBLISHER`]'s tracks.
const SUBSCRIBER: PeerId = PeerId(2);
/// In an [`answer`] input, `$MID0`, `$MID1`, ... stand for the mids of the core's
/// outstanding offer, in the order of its media sections.
const MID_TOKEN: &str = "$MID";
/// In an [`answer`] input, these stand for the subscriber's own ICE username fragment,
/// ICE password and DTLS fingerprint (`sha-256 AB:CD:...`), those of its first offer:
/// an answer that changes them is refused as an ICE restart.
const UFRAG_TOKEN: &str = "$UFRAG";
const PASSWORD_TOKEN: &str = "$PASSWORD";
const FINGERPRINT_TOKEN: &str = "$FINGERPRINT";

/// The `sdp` target: the first byte chooses an [`offer`] (even) or a [`candidate`]
/// (odd), the rest is its text. Answers have a target of their own, [`answer`].
pub fn sdp(data: &[u8]) -> Option<Outcome> {
    let (&which, rest) = data.split_first()?;
    // Signaling hands the core strings from JSON text frames, which are UTF-8.
    let text = std::str::from_utf8(rest).ok()?;
    Some(match which % 2 {
        0 => offer(text),
        _ => candidate(text),
    })
}

/// The `media_datagram` target: [`Datagram::split`] then [`datagrams`].
pub fn media_datagram(data: &[u8]) -> Option<Outcome> {
    Some(datagrams(&Datagram::split(data)))
}

/// An offer as a browser sends it with `offer`: handed to the core with `AddPeer`.
/// When the core answers, its answer must be SDP a browser can read.
pub fn offer(sdp: &str) -> Outcome {
    let now = Instant::now();
    let mut sfu = new_sfu();
    sfu.handle_command(add_peer(PUBLISHER, sdp), now);
    let events = drain_events(&mut sfu);
    for (_, event) in &events {
        if let PeerEvent::Answer { sdp } = event {
            assert!(
                SdpAnswer::from_sdp_string(sdp).is_ok(),
                "our answer does not parse: {sdp}"
            );
        }
    }
    outcome(&events, PUBLISHER)
}

/// A trickled ICE candidate as a browser sends it with `candidate`.
pub fn candidate(line: &str) -> Outcome {
    let now = Instant::now();
    let mut sfu = new_sfu();
    sfu.handle_command(add_peer(PUBLISHER, &client_offer().sdp), now);
    while sfu.poll_event().is_some() {}
    sfu.handle_command(
        Command::RemoteCandidate {
            peer: PUBLISHER,
            candidate: line.to_owned(),
        },
        now,
    );
    let outcome = outcome(&drain_events(&mut sfu), PUBLISHER);
    sfu.handle_timeout(now + Duration::from_millis(10));
    assert_eq!(sfu.stats().peers, 1, "a candidate cost the peer");
    outcome
}

/// The `answer` target: what a subscriber sends back for the core's offer of another
/// site's tracks (`answer` in the signaling protocol), handed to the core with
/// `Command::Answer`.
///
/// An answer means something only to the offer it answers, whose mids str0m draws at
/// random; so the input's `$MID0`, `$MID1`, ... are replaced by the outstanding offer's
/// mids, and `$UFRAG`, `$PASSWORD` and `$FINGERPRINT` by the subscriber's own, which
/// lets a corpus of real answers stay valid from run to run. The core with
/// its connected publisher and the subscriber is set up once per thread and kept
/// across calls, as a fuzzer calls this millions of times; a refused answer leaves the
/// core offering again, and after an accepted one the subscriber joins anew, so every
/// call has an offer to answer.
///
/// Checks: no answer costs anyone their connection; a refused answer is followed by a
/// new offer of the same tracks, which parses; an accepted one leaves nothing waiting
/// to be offered.
pub fn answer(data: &[u8]) -> Option<Outcome> {
    let text = std::str::from_utf8(data).ok()?;
    thread_local! {
        static CALL: RefCell<Option<OfferedCall>> = const { RefCell::new(None) };
    }
    CALL.with(|cell| {
        let mut cell = cell.borrow_mut();
        let call = cell.get_or_insert_with(OfferedCall::new);
        let text = with_mids(text, &call.offer_mids)
            .replace(UFRAG_TOKEN, &call.ufrag)
            .replace(PASSWORD_TOKEN, &call.password)
            .replace(FINGERPRINT_TOKEN, &call.fingerprint);
        Some(call.answer(&text))
    })
}

/// A real answer to the core's offer, from a str0m client that joined as the
/// subscriber, with the offer's mids written as `$MID0`, `$MID1`, ...: the seed of the
/// `answer` corpus, and the tests' accepted input.
pub fn answer_seed() -> String {
    let mut pair = ConnectedPair::new();
    let mut client = new_client(pair.now);
    let mut change = client.sdp_api();
    change.add_media(StrKind::Audio, Direction::SendOnly, None, None, None);
    let (first_offer, pending) = change.apply().expect("a client offer");
    let (answer, offer) = pair.join_subscriber(&first_offer.to_sdp_string());
    client
        .sdp_api()
        .accept_answer(
            pending,
            SdpAnswer::from_sdp_string(&answer).expect("our answer parses"),
        )
        .expect("the client accepts our answer");
    let reply = client
        .sdp_api()
        .accept_offer(SdpOffer::from_sdp_string(&offer).expect("our offer parses"))
        .expect("the client accepts our offer")
        .to_sdp_string();
    let mut seed = reply;
    let own = first_offer.to_sdp_string();
    let (ufrag, password) = ice_credentials(&own).expect("a str0m offer has ICE credentials");
    let fingerprint = fingerprint(&own).expect("a str0m offer has a fingerprint");
    seed = seed
        .replace(&fingerprint, FINGERPRINT_TOKEN)
        .replace(
            &format!("a=ice-ufrag:{ufrag}"),
            &format!("a=ice-ufrag:{UFRAG_TOKEN}"),
        )
        .replace(
            &format!("a=ice-pwd:{password}"),
            &format!("a=ice-pwd:{PASSWORD_TOKEN}"),
        );
    for (index, mid) in mids(&offer).iter().enumerate().rev() {
        seed = seed.replace(
            &format!("a=mid:{mid}"),
            &format!("a=mid:{MID_TOKEN}{index}"),
        );
        seed = seed.replace(&format!(" {mid}"), &format!(" {MID_TOKEN}{index}"));
    }
    seed
}

/// A core whose publisher is connected and whose subscriber has an offer of the
/// publisher's tracks outstanding.
struct OfferedCall {
    pair: ConnectedPair,
    /// The mids of the outstanding offer, in order.
    offer_mids: Vec<String>,
    /// The subscriber's own ICE credentials and fingerprint, read once from its offer.
    ufrag: String,
    password: String,
    fingerprint: String,
}

impl OfferedCall {
    fn new() -> OfferedCall {
        let mut pair = ConnectedPair::new();
        let own = &client_offer().sdp;
        let (_, offer) = pair.join_subscriber(own);
        let (ufrag, password) = ice_credentials(own).expect("a str0m offer has ICE credentials");
        OfferedCall {
            pair,
            offer_mids: mids(&offer),
            ufrag,
            password,
            fingerprint: fingerprint(own).expect("a str0m offer has a fingerprint"),
        }
    }

    fn answer(&mut self, text: &str) -> Outcome {
        self.pair.now += Duration::from_millis(1);
        let now = self.pair.now;
        let sfu = &mut self.pair.sfu;
        let command = Command::Answer {
            peer: SUBSCRIBER,
            answer: AnswerSdp::parse(text),
        };
        sfu.handle_command(command, now);
        let events = drain_events(sfu);
        for (peer, event) in &events {
            assert!(
                !matches!(event, PeerEvent::Gone { .. }),
                "an answer cost peer {peer} its connection"
            );
        }
        assert_eq!(sfu.stats().peers, 2, "an answer cost a peer");
        let outcome = outcome(&events, SUBSCRIBER);
        let offer = new_offer(&events);
        match &outcome {
            Outcome::Refused(_) => {
                let offer = offer.expect("a refused answer is followed by a new offer");
                SdpOffer::from_sdp_string(&offer).expect("our offer parses");
                assert_eq!(
                    mids(&offer).len(),
                    self.offer_mids.len(),
                    "the new offer carries the same tracks"
                );
                self.offer_mids = mids(&offer);
            }
            Outcome::Accepted => {
                assert!(offer.is_none(), "nothing waits to be offered");
                // The next call needs an offer to answer: the subscriber joins anew.
                sfu.handle_command(Command::RemovePeer { peer: SUBSCRIBER }, now);
                while sfu.poll_event().is_some() {}
                let (_, offer) = self.pair.join_subscriber(&client_offer().sdp);
                self.offer_mids = mids(&offer);
            }
        }
        outcome
    }
}

/// `text` with `$MID0`, `$MID1`, ... replaced by `mids`; the highest index first, so
/// that `$MID1` is not read as `$MID1` followed by a digit of `$MID10`.
fn with_mids(text: &str, mids: &[String]) -> String {
    let mut text = text.to_owned();
    for (index, mid) in mids.iter().enumerate().rev() {
        text = text.replace(&format!("{MID_TOKEN}{index}"), mid);
    }
    text
}

/// The value of an SDP's first `a=fingerprint:` line.
fn fingerprint(sdp: &str) -> Option<String> {
    sdp.lines()
        .find_map(|line| line.trim().strip_prefix("a=fingerprint:"))
        .map(str::to_owned)
}

/// The mids of an SDP's media sections, in order.
fn mids(sdp: &str) -> Vec<String> {
    sdp.lines()
        .filter_map(|line| line.trim().strip_prefix("a=mid:"))
        .map(str::to_owned)
        .collect()
}

/// The SDP of the offer among `events` for the subscriber, if one was made.
fn new_offer(events: &[(PeerId, PeerEvent)]) -> Option<String> {
    events.iter().find_map(|(peer, event)| match event {
        PeerEvent::Offer { sdp, .. } if *peer == SUBSCRIBER => Some(sdp.clone()),
        _ => None,
    })
}

/// Where a datagram of [`datagrams`] comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The connected client's own address (so, possibly, a spoofed one).
    Client,
    /// An address the core has never heard from.
    Stranger,
}

/// How [`datagrams`] builds a datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Datagram {
    /// These bytes, as they are.
    Raw(Source, Vec<u8>),
    /// An ICE check that names the connected peer's username, from a stranger's
    /// address, signed with the peer's real ICE password or not: only a check with the
    /// password may bind the stranger's address to the peer.
    Check {
        priority: u32,
        right_password: bool,
        port: u16,
    },
}

impl Datagram {
    /// Splits fuzzer bytes into datagrams: each is a kind byte, a two-byte length and
    /// that many bytes (or what is left).
    pub fn split(mut data: &[u8]) -> Vec<Datagram> {
        let mut out = Vec::new();
        while let [kind, high, low, rest @ ..] = data {
            let len = (usize::from(*high) << 8 | usize::from(*low)).min(rest.len());
            let (body, tail) = rest.split_at(len);
            data = tail;
            out.push(match kind % 3 {
                0 => Datagram::Raw(Source::Client, body.to_vec()),
                1 => Datagram::Raw(Source::Stranger, body.to_vec()),
                _ => {
                    let byte = |i: usize| body.get(i).copied().unwrap_or(0);
                    Datagram::Check {
                        priority: u32::from_be_bytes([byte(0), byte(1), byte(2), byte(3)]),
                        right_password: byte(4) & 1 == 1,
                        port: u16::from_be_bytes([byte(5), byte(6)]),
                    }
                }
            });
        }
        out
    }
}

/// Datagrams on the media socket while one client is connected (ICE, DTLS and SRTP up),
/// from its address and from strangers'.
///
/// The connected pair is set up once per thread and kept across calls, as a fuzzer
/// calls this millions of times. It is set up anew once good checks have bound as many
/// addresses to the peer as the core allows ([`MAX_PEER_ADDRESSES`]), which must never
/// be exceeded. Refused if the core counted any of the datagrams as malformed or
/// unroutable; accepted if it took them all.
pub fn datagrams(datagrams: &[Datagram]) -> Outcome {
    thread_local! {
        static PAIR: RefCell<Option<ConnectedPair>> = const { RefCell::new(None) };
    }
    PAIR.with(|cell| {
        let mut cell = cell.borrow_mut();
        let pair = cell.get_or_insert_with(ConnectedPair::new);
        let before = pair.sfu.stats();
        pair.feed(datagrams);
        let after = pair.sfu.stats();
        assert_eq!(after.peers, 1, "the connected peer is still there");
        let bound = pair.sfu.by_address.len();
        assert!(
            bound <= MAX_PEER_ADDRESSES,
            "{bound} addresses bound to one peer, more than the core allows"
        );
        // Past the limit every check from a new address is refused before str0m sees
        // it, so neither a good check nor the wrong-password check below would mean
        // anything more: start again with a fresh peer.
        if bound >= MAX_PEER_ADDRESSES {
            *cell = None;
        }
        let dropped = (after.datagrams_malformed - before.datagrams_malformed)
            + (after.datagrams_unroutable - before.datagrams_unroutable);
        match dropped {
            0 => Outcome::Accepted,
            n => Outcome::Refused(format!("{n} datagrams dropped")),
        }
    })
}

/// A core with one peer whose connection is up, and the str0m client at its other end.
struct ConnectedPair {
    sfu: Sfu,
    client: Rtc,
    now: Instant,
    /// The core's ICE username fragment and password for this peer, from its answer.
    server_ufrag: String,
    server_password: String,
    client_ufrag: String,
}

impl ConnectedPair {
    fn new() -> ConnectedPair {
        let mut now = Instant::now();
        let mut sfu = new_sfu();
        let mut client = new_client(now);
        let mut change = client.sdp_api();
        change.add_media(StrKind::Audio, Direction::SendOnly, None, None, None);
        change.add_media(StrKind::Video, Direction::SendOnly, None, None, None);
        let (offer_sdp, pending) = change.apply().expect("a client offer");
        sfu.handle_command(add_peer(PUBLISHER, &offer_sdp.to_sdp_string()), now);
        let answer = std::iter::from_fn(|| sfu.poll_event())
            .find_map(|(_, event)| match event {
                PeerEvent::Answer { sdp } => Some(sdp),
                _ => None,
            })
            .expect("the core answers a str0m client's offer");
        let (server_ufrag, server_password) =
            ice_credentials(&answer).expect("our answer has ICE credentials");
        let client_ufrag = client.direct_api().local_ice_credentials().ufrag;
        let parsed = SdpAnswer::from_sdp_string(&answer).expect("our answer parses");
        client
            .sdp_api()
            .accept_answer(pending, parsed)
            .expect("the client accepts our answer");
        let mut pair = ConnectedPair {
            sfu,
            client,
            now,
            server_ufrag,
            server_password,
            client_ufrag,
        };
        let mut connected = false;
        for _ in 0..5_000 {
            now += Duration::from_millis(1);
            pair.now = now;
            pair.exchange();
            connected |= std::iter::from_fn(|| pair.sfu.poll_event())
                .any(|(_, event)| event == PeerEvent::Connected);
            if connected {
                break;
            }
        }
        assert!(
            connected,
            "the client connects within five simulated seconds"
        );
        // A few more rounds, so DTLS finishes on both sides and SRTP is keyed.
        for _ in 0..200 {
            pair.now += Duration::from_millis(1);
            pair.exchange();
        }
        pair
    }

    /// Adds [`SUBSCRIBER`], who offers `first_offer` and receives every track of the
    /// room; returns the core's answer to it and the offer of the publisher's tracks
    /// that follows.
    fn join_subscriber(&mut self, first_offer: &str) -> (String, String) {
        self.now += Duration::from_millis(1);
        self.sfu
            .handle_command(add_peer(SUBSCRIBER, first_offer), self.now);
        let events = drain_events(&mut self.sfu);
        let answer = events
            .iter()
            .find_map(|(peer, event)| match event {
                PeerEvent::Answer { sdp } if *peer == SUBSCRIBER => Some(sdp.clone()),
                _ => None,
            })
            .expect("the core answers the subscriber");
        let offer = new_offer(&events).expect("the core offers the publisher's tracks");
        (answer, offer)
    }

    fn feed(&mut self, datagrams: &[Datagram]) {
        let client: SocketAddr = CLIENT.parse().expect("a socket address");
        for datagram in datagrams {
            self.now += Duration::from_millis(1);
            match datagram {
                Datagram::Raw(Source::Client, bytes) => {
                    self.sfu.handle_datagram(client, bytes, self.now)
                }
                Datagram::Raw(Source::Stranger, bytes) => {
                    self.sfu
                        .handle_datagram(STRANGER.parse().expect("an address"), bytes, self.now)
                }
                Datagram::Check {
                    priority,
                    right_password,
                    port,
                } => {
                    let password = if *right_password {
                        self.server_password.clone()
                    } else {
                        format!("{}x", self.server_password)
                    };
                    let bytes = self.check(*priority, &password);
                    let from = checking_stranger(*port);
                    // The pair outlives one input: a good check in an earlier one may
                    // have bound this address already.
                    let bound_before = self.sfu.by_address.contains_key(&from);
                    self.sfu.handle_datagram(from, &bytes, self.now);
                    let bound = self.sfu.by_address.contains_key(&from);
                    assert!(
                        *right_password || bound_before || !bound,
                        "a check with the wrong password bound {from}"
                    );
                }
            }
            while self.sfu.poll_transmit().is_some() {}
            for (_, event) in std::iter::from_fn(|| self.sfu.poll_event()) {
                assert!(
                    !matches!(event, PeerEvent::Gone { .. }),
                    "a datagram cost the peer its connection: {datagram:?}"
                );
            }
            assert!(
                !self
                    .sfu
                    .by_address
                    .contains_key(&STRANGER.parse().expect("an address")),
                "a stranger's datagram bound its address"
            );
        }
        if self.sfu.poll_timeout().is_some_and(|t| t <= self.now) {
            self.sfu.handle_timeout(self.now);
        }
        // Keep the connection alive, as the browser would, so the peer never times out
        // between inputs.
        self.exchange();
        while self.sfu.poll_event().is_some() {}
    }

    /// One round of the simulated network: the client's and the core's pending output
    /// delivered to each other at once.
    fn exchange(&mut self) {
        let server: SocketAddr = SERVER.parse().expect("a socket address");
        let now = self.now;
        if self.sfu.poll_timeout().is_some_and(|t| t <= now) {
            self.sfu.handle_timeout(now);
        }
        let _ = self.client.handle_input(Input::Timeout(now));
        let mut to_server = Vec::new();
        while let Ok(output) = self.client.poll_output() {
            match output {
                Output::Timeout(_) => break,
                Output::Transmit(t) => to_server.push(t.contents.to_vec()),
                Output::Event(_) => {}
            }
        }
        for bytes in to_server {
            self.sfu
                .handle_datagram(CLIENT.parse().expect("an address"), &bytes, now);
        }
        while let Some(t) = self.sfu.poll_transmit() {
            if t.destination.to_string() != CLIENT {
                continue;
            }
            if let Ok(receive) = Receive::new(Protocol::Udp, t.source, server, &t.contents) {
                let receive = Receive {
                    destination: CLIENT.parse().expect("an address"),
                    ..receive
                };
                let _ = self.client.handle_input(Input::Receive(now, receive));
            }
        }
    }

    /// An ICE connectivity check to the core, as a browser would send it.
    fn check(&self, priority: u32, password: &str) -> Vec<u8> {
        let username = format!("{}:{}", self.server_ufrag, self.client_ufrag);
        let message =
            StunMessage::binding_request(&username, TransId::new(), true, 0, priority, false);
        let mut buffer = vec![0u8; 1500];
        let crypto = str0m::crypto::from_feature_flags();
        let length = message
            .to_bytes(Some(password.as_bytes()), &mut buffer, |key, payloads| {
                crypto.sha1_hmac_provider.sha1_hmac(key, payloads)
            })
            .expect("a binding request fits in 1500 bytes");
        buffer.truncate(length);
        buffer
    }
}

/// An offer from a str0m client that publishes audio only, made once, for the peer a
/// [`candidate`] is trickled to. What the core does with a candidate does not depend on
/// the peer's media, and every candidate input parses this offer for its fresh core:
/// with video too it is 5,220 bytes instead of 1,209, and a candidate input cost twice
/// as much (`docs/fuzzing.md`).
struct ClientOffer {
    sdp: String,
}

fn client_offer() -> &'static ClientOffer {
    static OFFER: OnceLock<ClientOffer> = OnceLock::new();
    OFFER.get_or_init(|| {
        let mut client = new_client(Instant::now());
        let mut change = client.sdp_api();
        change.add_media(StrKind::Audio, Direction::SendOnly, None, None, None);
        let (offer, _pending): (SdpOffer, SdpPendingOffer) = change.apply().expect("an offer");
        ClientOffer {
            sdp: offer.to_sdp_string(),
        }
    })
}

fn new_client(now: Instant) -> Rtc {
    let mut client = Rtc::builder()
        .set_crypto_provider(Arc::new(str0m::crypto::from_feature_flags()))
        .build(now);
    let address: SocketAddr = CLIENT.parse().expect("a socket address");
    client.add_local_candidate(Candidate::host(address, "udp").expect("a host candidate"));
    client
}

fn new_sfu() -> Sfu {
    Sfu::new(SfuConfig {
        candidate_addr: SERVER.parse().expect("a socket address"),
        peer_timeout: Duration::from_secs(30),
        connect_timeout: Duration::from_secs(30),
        keyframe_request_interval: Duration::from_millis(500),
        link_stats_interval: Some(Duration::from_secs(1)),
        initial_estimate: None,
        tcp_candidate_addr: None,
        loudest_audio: None,
    })
}

fn add_peer(peer: PeerId, sdp: &str) -> Command {
    Command::AddPeer {
        peer,
        room: RoomId(1),
        offer: OfferSdp::parse(sdp),
        audio_allowed: true,
        subscriptions: Subscriptions::All,
        screen_mid: None,
    }
}

fn checking_stranger(port: u16) -> SocketAddr {
    SocketAddr::from(([10, 0, 2, 2], port))
}

fn drain_events(sfu: &mut Sfu) -> Vec<(PeerId, PeerEvent)> {
    std::iter::from_fn(|| sfu.poll_event()).collect()
}

/// Whether `events` refuse a command about `peer`.
fn outcome(events: &[(PeerId, PeerEvent)], peer: PeerId) -> Outcome {
    let refusal = events.iter().find_map(|(id, event)| match event {
        PeerEvent::Rejected { error } if *id == peer => Some(error.to_string()),
        _ => None,
    });
    match refusal {
        Some(message) => {
            assert!(!message.is_empty(), "a refusal without words");
            Outcome::Refused(message)
        }
        None => Outcome::Accepted,
    }
}

/// The `a=ice-ufrag` and `a=ice-pwd` of an SDP.
fn ice_credentials(sdp: &str) -> Option<(String, String)> {
    let value = |name: &str| {
        sdp.lines()
            .find_map(|line| line.trim().strip_prefix(name))
            .map(str::to_owned)
    };
    Some((value("a=ice-ufrag:")?, value("a=ice-pwd:")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corpus(target: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../fuzz/corpus")
            .join(target)
    }

    #[test]
    fn a_real_answer_is_accepted_and_the_next_call_has_an_offer_again() {
        let seed = answer_seed();
        assert!(seed.contains("a=mid:$MID1"), "{seed}");
        assert_eq!(answer(seed.as_bytes()), Some(Outcome::Accepted));
        assert_eq!(answer(seed.as_bytes()), Some(Outcome::Accepted));
        let refused = answer(b"v=0\r\n");
        assert!(matches!(refused, Some(Outcome::Refused(_))), "{refused:?}");
        assert_eq!(answer(seed.as_bytes()), Some(Outcome::Accepted));
    }

    #[test]
    fn answer_corpus_replays() {
        replay_corpus(&corpus("answer"), answer);
    }

    #[test]
    fn sdp_corpus_replays() {
        replay_corpus(&corpus("sdp"), sdp);
    }

    /// The fuzzer's one crash was the harness's: its check that a wrong password binds
    /// nothing forgot that the connected pair outlives an input, so an address bound by
    /// a good check of an earlier input looked newly bound.
    #[test]
    fn media_datagram_regression_replays() {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../fuzz/regressions/media_datagram/good-check-then-wrong-password");
        let input = std::fs::read(&path).expect("the regression input is committed");
        // A good check from port 65535 binds it; the crash input then comes from the
        // client, and a wrong-password check from the same port must not panic.
        let good = [2u8, 0, 7, 0, 0, 0, 1, 1, 0xff, 0xff];
        let wrong = [2u8, 0, 7, 0, 0, 0, 1, 0, 0xff, 0xff];
        assert!(media_datagram(&good).is_some());
        assert!(media_datagram(&input).is_some());
        assert_eq!(media_datagram(&wrong), Some(Outcome::Accepted));
    }

    #[test]
    fn media_datagram_corpus_replays_with_the_peer_connected() {
        // `datagrams` panics if an input costs the peer its connection or binds an
        // address it must not.
        replay_corpus(&corpus("media_datagram"), media_datagram);
    }
}
