//! The core on simulated time: str0m clients, standing in for browsers, talk to an
//! [`Sfu`] through an in-memory network with a fixed one-way delay. Nothing reads the
//! clock or opens a socket, so seconds of meeting run in milliseconds, the same way
//! every time.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::format::Codec;
use str0m::ice::{StunMessage, TransId};
use str0m::media::{
    Direction, Frequency, KeyframeRequestKind, MediaKind as StrKind, MediaTime, Mid,
};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc};

use crate::{
    AnswerSdp, Command, GoneReason, MediaKind, OfferSdp, PeerEvent, PeerId, RoomId, Sfu, SfuConfig,
    Subscriptions,
};

/// The addresses one peer may introduce, and a client that moves.
mod addresses;
/// The line probe's ICE checks, answered without a peer.
mod line_probe;
/// The line test, on a line of its own (clean or capped).
mod line_test;
/// Simulcast layers chosen by shown size, switched at keyframes, paused when unwatched.
mod simulcast;
/// Voice levels read from the audio level of forwarded packets.
mod voice;

const SERVER: &str = "10.0.0.1:5000";
const ONE_WAY: Duration = Duration::from_millis(5);
const TICK: Duration = Duration::from_millis(1);
/// What a capped downlink ([`Client::downlink_bps`]) queues before it drops.
const DOWNLINK_QUEUE: Duration = Duration::from_millis(250);

/// A simulated participant: a str0m client in frame mode that publishes audio and video.
struct Client {
    peer: PeerId,
    rtc: Rtc,
    addr: SocketAddr,
    audio: Mid,
    video: Mid,
    pending: Option<SdpPendingOffer>,
    /// Our mid to the peer whose track it carries, from the server's offers.
    sources: HashMap<String, PeerId>,
    /// Our mid to the kind of track it carries, from the server's offers.
    kinds: HashMap<String, MediaKind>,
    /// Every frame received: (source peer, kind, bytes).
    received: Vec<(PeerId, MediaKind, Vec<u8>)>,
    /// The source of every audio frame that str0m found not contiguous with the one
    /// before it: a gap in the sequence numbers, which a receiver counts as loss.
    audio_gaps: Vec<PeerId>,
    keyframe_requests: usize,
    /// Still taking part: a muted network drops everything to and from it.
    online: bool,
    /// When not zero, every this-many-th datagram the client sends is lost.
    drop_every: u64,
    sent: u64,
    /// When not zero, every this-many-th datagram sent to the client is lost: a lossy
    /// downlink.
    drop_received_every: u64,
    received_datagrams: u64,
    /// When set, the client's downlink carries this many bits per second, through a
    /// queue that holds a quarter of a second, beyond which datagrams are dropped: a
    /// capped line, as a slow modem is.
    downlink_bps: Option<u64>,
    /// When the capped downlink has sent what is queued on it.
    downlink_free_at: Instant,
    gone: Option<GoneReason>,
    events: Vec<PeerEvent>,
    /// When not zero, the client answers this many of the server's offers with
    /// garbage instead of its answer (and does not apply them).
    garbage_answers: u32,
    /// The resend requests (NACKs) the client received for each layer it sends, by
    /// rid ("" without simulcast), as of str0m's last statistics.
    nacks_by_rid: HashMap<String, u64>,
}

/// The core's configuration in these tests: monitoring on, estimation off.
fn test_config() -> SfuConfig {
    SfuConfig {
        candidate_addr: SERVER.parse().unwrap(),
        peer_timeout: Duration::from_secs(3),
        connect_timeout: Duration::from_secs(10),
        keyframe_request_interval: Duration::from_millis(500),
        link_stats_interval: Some(Duration::from_secs(1)),
        initial_estimate: None,
        tcp_candidate_addr: None,
        loudest_audio: None,
    }
}

struct World {
    now: Instant,
    start: Instant,
    sfu: Sfu,
    clients: Vec<Client>,
    /// Datagrams in flight: (due, from, to, bytes).
    network: VecDeque<(Instant, SocketAddr, SocketAddr, Vec<u8>)>,
    /// Whether clients joining from now on offer redundant audio (RED), as Chromium
    /// does; str0m then sends every audio packet as RED.
    offer_red: bool,
}

impl World {
    fn new() -> World {
        let now = Instant::now();
        let sfu = Sfu::new(test_config());
        World {
            now,
            start: now,
            sfu,
            clients: Vec::new(),
            network: VecDeque::new(),
            offer_red: true,
        }
    }

    /// Adds a client to `room` and runs the first offer/answer exchange.
    fn join(&mut self, room: u64) -> usize {
        self.join_with(room, Subscriptions::All)
    }

    /// Adds a client that receives only what `subscriptions` names.
    fn join_with(&mut self, room: u64, subscriptions: Subscriptions) -> usize {
        self.join_publishing(room, subscriptions, None)
    }

    /// Adds a client whose video is sent in the layers `simulcast` names, if any.
    fn join_publishing(
        &mut self,
        room: u64,
        subscriptions: Subscriptions,
        simulcast: Option<str0m::media::Simulcast>,
    ) -> usize {
        let index = self.clients.len();
        let peer = PeerId(index as u64 + 1);
        let addr: SocketAddr = format!("10.0.1.{}:4000", index + 1).parse().unwrap();
        let mut rtc = Rtc::builder()
            .set_crypto_provider(Arc::new(str0m::crypto::from_feature_flags()))
            .enable_opus(true, self.offer_red)
            .set_stats_interval(Some(Duration::from_millis(100)))
            .build(self.now);
        rtc.add_local_candidate(Candidate::host(addr, "udp").unwrap());
        let mut change = rtc.sdp_api();
        let audio = change.add_media(StrKind::Audio, Direction::SendOnly, None, None, None);
        let video = change.add_media(StrKind::Video, Direction::SendOnly, None, None, simulcast);
        let (offer, pending) = change.apply().unwrap();
        self.clients.push(Client {
            peer,
            rtc,
            addr,
            audio,
            video,
            pending: Some(pending),
            sources: HashMap::new(),
            kinds: HashMap::new(),
            received: Vec::new(),
            audio_gaps: Vec::new(),
            keyframe_requests: 0,
            online: true,
            drop_every: 0,
            sent: 0,
            drop_received_every: 0,
            received_datagrams: 0,
            downlink_bps: None,
            downlink_free_at: self.now,
            gone: None,
            events: Vec::new(),
            garbage_answers: 0,
            nacks_by_rid: HashMap::new(),
        });
        self.sfu.handle_command(
            Command::AddPeer {
                peer,
                room: RoomId(room),
                offer: OfferSdp::parse(&offer.to_sdp_string()),
                audio_allowed: true,
                subscriptions,
                screen_mid: None,
            },
            self.now,
        );
        self.dispatch_events();
        index
    }

    /// Hands the SFU's events to the clients, as signaling would.
    fn dispatch_events(&mut self) {
        while let Some((peer, event)) = self.sfu.poll_event() {
            let client = &mut self.clients[peer.0 as usize - 1];
            client.events.push(event.clone());
            match event {
                PeerEvent::Answer { sdp } => {
                    let answer = SdpAnswer::from_sdp_string(&sdp).unwrap();
                    let pending = client.pending.take().unwrap();
                    client.rtc.sdp_api().accept_answer(pending, answer).unwrap();
                }
                PeerEvent::Offer { sdp, tracks } => {
                    for track in tracks {
                        client.kinds.insert(track.mid.clone(), track.kind);
                        client.sources.insert(track.mid, track.source);
                    }
                    let text = if client.garbage_answers > 0 {
                        client.garbage_answers -= 1;
                        "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nm=garbage".to_owned()
                    } else {
                        let offer = SdpOffer::from_sdp_string(&sdp).unwrap();
                        let answer = client.rtc.sdp_api().accept_offer(offer).unwrap();
                        answer.to_sdp_string()
                    };
                    self.sfu.handle_command(
                        Command::Answer {
                            peer,
                            answer: AnswerSdp::parse(&text),
                        },
                        self.now,
                    );
                }
                PeerEvent::Gone { reason } => client.gone = Some(reason),
                _ => {}
            }
        }
    }

    /// Runs the world for `duration`, calling `each_tick` every simulated millisecond.
    fn run(&mut self, duration: Duration, mut each_tick: impl FnMut(&mut World)) {
        let end = self.now + duration;
        while self.now < end {
            each_tick(self);
            self.step();
            self.now += TICK;
        }
    }

    fn step(&mut self) {
        let now = self.now;
        // Deliver what is due: to the server in one batch, as the shell hands it what
        // one read of its socket brought.
        let mut to_server = Vec::new();
        while self.network.front().is_some_and(|(due, ..)| *due <= now) {
            let (_, from, to, bytes) = self.network.pop_front().unwrap();
            if to == SERVER.parse().unwrap() {
                to_server.push((from, bytes));
            } else if let Some(client) = self.clients.iter_mut().find(|c| c.addr == to) {
                let receive = Receive::new(Protocol::Udp, from, to, &bytes).unwrap();
                client
                    .rtc
                    .handle_input(Input::Receive(now, receive))
                    .unwrap();
            }
        }
        self.sfu.handle_datagrams(
            to_server
                .iter()
                .map(|(from, bytes)| (*from, bytes.as_slice())),
            now,
        );
        if self.sfu.poll_timeout().is_some_and(|t| t <= now) {
            self.sfu.handle_timeout(now);
        }
        self.dispatch_events();
        while let Some(t) = self.sfu.poll_transmit() {
            self.send(t.source, t.destination, t.contents.to_vec());
        }
        for index in 0..self.clients.len() {
            self.drain_client(index);
        }
    }

    fn drain_client(&mut self, index: usize) {
        let now = self.now;
        let client = &mut self.clients[index];
        if client.gone.is_some() {
            return;
        }
        client.rtc.handle_input(Input::Timeout(now)).unwrap();
        let mut outgoing = Vec::new();
        loop {
            match client.rtc.poll_output().unwrap() {
                Output::Timeout(_) => break,
                Output::Transmit(t) => {
                    outgoing.push((t.source, t.destination, t.contents.to_vec()))
                }
                Output::Event(Event::MediaData(data)) => {
                    let source = client.sources.get(&data.mid.to_string()).copied();
                    let kind = if data.params.spec().codec == Codec::Opus {
                        MediaKind::Audio
                    } else {
                        MediaKind::Video
                    };
                    if let Some(source) = source {
                        if kind == MediaKind::Audio && !data.contiguous {
                            client.audio_gaps.push(source);
                        }
                        client.received.push((source, kind, data.data.to_vec()));
                    }
                }
                Output::Event(Event::KeyframeRequest(_)) => client.keyframe_requests += 1,
                Output::Event(Event::MediaEgressStats(stats)) => {
                    let rid = stats.rid.map(|rid| rid.to_string()).unwrap_or_default();
                    client.nacks_by_rid.insert(rid, stats.nacks);
                }
                Output::Event(_) => {}
            }
        }
        let online = client.online;
        for (from, to, bytes) in outgoing {
            if online {
                self.send(from, to, bytes);
            }
        }
    }

    fn send(&mut self, from: SocketAddr, to: SocketAddr, bytes: Vec<u8>) {
        if let Some(sender) = self.clients.iter_mut().find(|c| c.addr == from) {
            sender.sent += 1;
            if sender.drop_every != 0 && sender.sent.is_multiple_of(sender.drop_every) {
                return;
            }
        }
        if let Some(receiver) = self.clients.iter_mut().find(|c| c.addr == to) {
            receiver.received_datagrams += 1;
            let every = receiver.drop_received_every;
            if every != 0 && receiver.received_datagrams.is_multiple_of(every) {
                return;
            }
        }
        let receiver_online = self
            .clients
            .iter()
            .find(|c| c.addr == to)
            .is_none_or(|c| c.online);
        if !receiver_online {
            return;
        }
        let mut due = self.now + ONE_WAY;
        if let Some(receiver) = self.clients.iter_mut().find(|c| c.addr == to)
            && let Some(bps) = receiver.downlink_bps
        {
            let start = receiver.downlink_free_at.max(self.now);
            if start - self.now > DOWNLINK_QUEUE {
                return;
            }
            // The datagram with its IPv4 and UDP headers.
            let on_the_wire = Duration::from_secs_f64((bytes.len() + 28) as f64 * 8.0 / bps as f64);
            receiver.downlink_free_at = start + on_the_wire;
            due = receiver.downlink_free_at + ONE_WAY;
        }
        // Datagrams queued on a capped line arrive later than others sent after them.
        let at = self.network.partition_point(|(d, ..)| *d <= due);
        self.network.insert(at, (due, from, to, bytes));
    }

    /// Writes one audio frame and, every 5th call, one video frame tagged with the sender.
    fn publish_frame(&mut self, index: usize, count: u64) {
        let now = self.now;
        let elapsed = now - self.start;
        let client = &mut self.clients[index];
        let audio = frame_bytes(client.peer, MediaKind::Audio, count);
        let audio_time = MediaTime::new(count * 960, Frequency::FORTY_EIGHT_KHZ);
        if let Some(writer) = client.rtc.writer(client.audio) {
            let pt = writer
                .payload_params()
                .find(|p| p.spec().codec == Codec::Opus)
                .map(|p| p.pt());
            if let Some(pt) = pt {
                writer.write(pt, now, audio_time, audio).unwrap();
            }
        }
        if count.is_multiple_of(5) {
            let video = frame_bytes(client.peer, MediaKind::Video, count / 5);
            let video_time = MediaTime::from_90khz(elapsed.as_millis() as u64 * 90);
            if let Some(writer) = client.rtc.writer(client.video) {
                let pt = writer
                    .payload_params()
                    .find(|p| p.spec().codec == Codec::Vp8)
                    .map(|p| p.pt());
                if let Some(pt) = pt {
                    writer.write(pt, now, video_time, video).unwrap();
                }
            }
        }
    }

    fn client(&self, index: usize) -> &Client {
        &self.clients[index]
    }
}

/// A recognisable frame: who sent it, what kind, which one; video frames span several
/// packets and start with a VP8 keyframe marker byte.
fn frame_bytes(peer: PeerId, kind: MediaKind, count: u64) -> Vec<u8> {
    let tag = format!("{peer}/{kind:?}/{count}/");
    let len = match kind {
        MediaKind::Audio => 80,
        MediaKind::Video | MediaKind::Screen => 2500,
    };
    let mut bytes = Vec::with_capacity(len);
    if kind == MediaKind::Video {
        // VP8 payload header: bit 0 clear marks a keyframe, which decoders wait for.
        bytes.extend_from_slice(&[0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a]);
    }
    while bytes.len() < len {
        bytes.extend_from_slice(tag.as_bytes());
    }
    bytes.truncate(len);
    bytes
}

/// Runs a meeting with every client publishing a frame every 20 ms for `duration`.
fn run_meeting(world: &mut World, duration: Duration) {
    let mut count = 0u64;
    world.run(duration, |world| {
        let elapsed = world.now - world.start;
        if elapsed.as_millis() % 20 == 0 && elapsed > Duration::from_millis(500) {
            for index in 0..world.clients.len() {
                if world.clients[index].online && world.clients[index].gone.is_none() {
                    world.publish_frame(index, count);
                }
            }
            count += 1;
        }
    });
}

fn frames_from(client: &Client, source: PeerId, kind: MediaKind) -> Vec<&Vec<u8>> {
    client
        .received
        .iter()
        .filter(|(s, k, _)| *s == source && *k == kind)
        .map(|(_, _, bytes)| bytes)
        .collect()
}

#[test]
fn participants_of_a_room_receive_each_others_frames_intact() {
    let mut world = World::new();
    let a = world.join(1);
    let b = world.join(1);
    let c = world.join(1);
    run_meeting(&mut world, Duration::from_secs(3));

    for receiver in [a, b, c] {
        for sender in [a, b, c] {
            if receiver == sender {
                continue;
            }
            let source = world.client(sender).peer;
            for kind in [MediaKind::Audio, MediaKind::Video] {
                let frames = frames_from(world.client(receiver), source, kind);
                assert!(
                    frames.len() >= 10,
                    "{receiver} got {} {kind:?} frames from {sender}",
                    frames.len()
                );
                for frame in frames {
                    let count: u64 = String::from_utf8_lossy(frame)
                        .split('/')
                        .nth(2)
                        .and_then(|c| c.parse().ok())
                        .expect("a tagged frame");
                    assert_eq!(
                        frame,
                        &frame_bytes(source, kind, count),
                        "frame content changed in transit"
                    );
                }
            }
        }
    }
}

#[test]
fn answer_asks_browsers_for_opus_dtx_and_in_band_fec() {
    let mut world = World::new();
    let a = world.join(1);
    let answer = world
        .client(a)
        .events
        .iter()
        .find_map(|event| match event {
            PeerEvent::Answer { sdp } => Some(sdp.clone()),
            _ => None,
        })
        .expect("an answer");
    let opus_pt = answer
        .lines()
        .find_map(|line| {
            let rest = line.strip_prefix("a=rtpmap:")?;
            let (pt, codec) = rest.split_once(' ')?;
            codec
                .to_ascii_lowercase()
                .starts_with("opus/")
                .then_some(pt.to_owned())
        })
        .expect("opus in the answer");
    let fmtp = answer
        .lines()
        .find_map(|line| line.strip_prefix(&format!("a=fmtp:{opus_pt} ")))
        .expect("an fmtp line for opus");
    let params: Vec<&str> = fmtp.split(';').map(str::trim).collect();
    assert!(params.contains(&"usedtx=1"), "no DTX asked: {fmtp}");
    assert!(params.contains(&"useinbandfec=1"), "no in-band FEC: {fmtp}");
}

#[test]
fn redundant_audio_reaches_a_subscriber_without_red_as_plain_opus() {
    let mut world = World::new();
    let with_red = world.join(1);
    world.offer_red = false;
    let without_red = world.join(1);
    run_meeting(&mut world, Duration::from_secs(3));

    // Both ways: RED unwrapped to its primary block, and plain Opus to a RED subscriber.
    for (receiver, sender) in [(without_red, with_red), (with_red, without_red)] {
        let source = world.client(sender).peer;
        let frames = frames_from(world.client(receiver), source, MediaKind::Audio);
        assert!(
            frames.len() >= 100,
            "{receiver} got {} audio frames",
            frames.len()
        );
        for (count, frame) in frames.iter().enumerate() {
            assert_eq!(
                *frame,
                &frame_bytes(source, MediaKind::Audio, count as u64),
                "audio frame {count} from {sender} changed in transit"
            );
        }
    }
    assert!(world.sfu.stats().red_packets_received >= 100);
}

#[test]
fn nothing_crosses_between_rooms() {
    let mut world = World::new();
    let a1 = world.join(1);
    let b1 = world.join(1);
    let a2 = world.join(2);
    let b2 = world.join(2);
    run_meeting(&mut world, Duration::from_secs(3));

    let room_of = |index: usize| if index == a1 || index == b1 { 1 } else { 2 };
    for receiver in [a1, b1, a2, b2] {
        let client = world.client(receiver);
        assert!(!client.received.is_empty(), "{receiver} received nothing");
        for (source, _, _) in &client.received {
            let sender = source.0 as usize - 1;
            assert_eq!(
                room_of(sender),
                room_of(receiver),
                "{sender}'s media reached {receiver}"
            );
        }
        let offered: Vec<PeerId> = client.sources.values().copied().collect();
        assert!(
            offered
                .iter()
                .all(|p| room_of(p.0 as usize - 1) == room_of(receiver))
        );
    }
}

#[test]
fn keyframe_requests_reach_the_publisher_throttled() {
    let mut world = World::new();
    let publisher = world.join(1);
    let subscribers: Vec<usize> = (0..4).map(|_| world.join(1)).collect();
    run_meeting(&mut world, Duration::from_secs(2));
    let before = world.client(publisher).keyframe_requests;

    // For one second, every subscriber asks for a keyframe every 10 ms: 400 requests.
    let publisher_peer = world.client(publisher).peer;
    let mut asked = 0;
    let mut count = 1000u64;
    world.run(Duration::from_secs(1), |world| {
        let elapsed = world.now - world.start;
        if elapsed.as_millis() % 20 == 0 {
            world.publish_frame(publisher, count);
            count += 1;
        }
        if elapsed.as_millis() % 10 == 0 {
            for &s in &subscribers {
                let client = &mut world.clients[s];
                let mid = client
                    .sources
                    .iter()
                    .find(|(mid, source)| {
                        **source == publisher_peer
                            && client
                                .rtc
                                .media(Mid::from(mid.as_str()))
                                .is_some_and(|m| m.kind() == StrKind::Video)
                    })
                    .map(|(mid, _)| Mid::from(mid.as_str()));
                if let Some(mid) = mid
                    && let Some(mut writer) = client.rtc.writer(mid)
                    && writer
                        .request_keyframe(None, KeyframeRequestKind::Pli)
                        .is_ok()
                {
                    asked += 1;
                }
            }
        }
    });
    let reached = world.client(publisher).keyframe_requests - before;
    assert!(asked >= 300, "subscribers managed only {asked} requests");
    // One per 500 ms interval, and the deferred one at its end: 2 or 3 in one second.
    assert!(
        (1..=3).contains(&reached),
        "{reached} of {asked} requests reached the publisher"
    );
}

#[test]
fn a_silent_peer_is_dropped_and_the_others_renegotiate() {
    let mut world = World::new();
    let a = world.join(1);
    let b = world.join(1);
    run_meeting(&mut world, Duration::from_secs(2));
    let offers_before = world
        .client(a)
        .events
        .iter()
        .filter(|e| matches!(e, PeerEvent::Offer { .. }))
        .count();
    assert_eq!(world.sfu.stats().peers, 2);

    world.clients[b].online = false;
    run_meeting(&mut world, Duration::from_secs(4));

    assert_eq!(world.client(b).gone, Some(GoneReason::Timeout));
    assert_eq!(world.sfu.stats().peers, 1);
    let offers = world
        .client(a)
        .events
        .iter()
        .filter(|e| matches!(e, PeerEvent::Offer { .. }))
        .count();
    assert!(
        offers > offers_before,
        "a was not offered the removal of b's tracks"
    );
    let last_tracks = world.client(a).events.iter().rev().find_map(|e| match e {
        PeerEvent::Offer { tracks, .. } => Some(tracks.clone()),
        _ => None,
    });
    assert_eq!(
        last_tracks,
        Some(vec![]),
        "b's tracks are still offered to a"
    );
}

#[test]
fn garbage_and_strangers_are_counted_and_change_nothing() {
    let mut world = World::new();
    let a = world.join(1);
    let b = world.join(1);
    run_meeting(&mut world, Duration::from_secs(1));
    let stranger: SocketAddr = "10.9.9.9:999".parse().unwrap();
    let known = world.client(a).addr;
    // Random bytes, from a stranger and from a participant's own address.
    world
        .sfu
        .handle_datagram(stranger, &[0xde, 0xad, 0xbe, 0xef], world.now);
    world.sfu.handle_datagram(known, &[0xff; 300], world.now);
    world.sfu.handle_datagram(known, &[], world.now);
    // ICE checks from a stranger: one naming a username nobody has, one naming a's
    // username with a forged MESSAGE-INTEGRITY.
    world
        .sfu
        .handle_datagram(stranger, &stun_request("nobody:whoever"), world.now);
    let a_ufrag = world.sfu.peers[&world.client(a).peer].local_ufrag.clone();
    world.sfu.handle_datagram(
        stranger,
        &stun_request(&format!("{a_ufrag}:whoever")),
        world.now,
    );
    // An RTP-looking packet from a stranger.
    world.sfu.handle_datagram(
        stranger,
        &[0x80, 0x60, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2, 1, 2, 3],
        world.now,
    );
    let mut to_stranger = 0;
    while let Some(t) = world.sfu.poll_transmit() {
        to_stranger += usize::from(t.destination == stranger);
    }
    assert_eq!(to_stranger, 0, "the SFU answered a forged check");
    let stats = world.sfu.stats();
    assert_eq!(stats.datagrams_malformed, 3, "{stats:?}");
    assert_eq!(stats.datagrams_unroutable, 2, "{stats:?}");
    assert!(
        !world.sfu.by_address.contains_key(&stranger),
        "a forged check bound the stranger's address"
    );

    let before = frames_from(world.client(b), world.client(a).peer, MediaKind::Audio).len();
    run_meeting(&mut world, Duration::from_secs(1));
    let after = frames_from(world.client(b), world.client(a).peer, MediaKind::Audio).len();
    assert!(
        after >= before + 40,
        "media stalled after garbage: {before} -> {after}"
    );
    assert_eq!(world.sfu.stats().peers, 2);
}

#[test]
fn withheld_audio_reaches_no_one_and_video_still_does() {
    let mut world = World::new();
    let speaker = world.join(1);
    let listener = world.join(1);
    let speaker_peer = world.client(speaker).peer;
    world.sfu.handle_command(
        Command::SetAudioForwarding {
            peer: speaker_peer,
            allowed: false,
        },
        world.now,
    );
    run_meeting(&mut world, Duration::from_secs(2));
    let heard = frames_from(world.client(listener), speaker_peer, MediaKind::Audio).len();
    let seen = frames_from(world.client(listener), speaker_peer, MediaKind::Video).len();
    assert_eq!(heard, 0, "withheld audio was forwarded");
    assert!(seen >= 10, "video stopped too: {seen} frames");
    assert!(world.sfu.stats().packets_withheld > 0);

    world.sfu.handle_command(
        Command::SetAudioForwarding {
            peer: speaker_peer,
            allowed: true,
        },
        world.now,
    );
    run_meeting(&mut world, Duration::from_secs(1));
    let heard = frames_from(world.client(listener), speaker_peer, MediaKind::Audio).len();
    assert!(heard >= 40, "audio did not resume: {heard} frames");
}

#[test]
fn subscriptions_decide_who_receives_what() {
    let mut world = World::new();
    let only = |pairs: &[(u64, MediaKind)]| {
        Subscriptions::Only(pairs.iter().map(|&(p, k)| (PeerId(p), k)).collect())
    };
    // Peers are numbered from 1 in joining order: the chair is 1.
    let chair = world.join(1);
    let chair_peer = world.client(chair).peer;
    let a = world.join_with(1, only(&[(1, MediaKind::Audio), (1, MediaKind::Video)]));
    let b = world.join_with(1, only(&[(1, MediaKind::Audio), (1, MediaKind::Video)]));
    let (a_peer, b_peer) = (world.client(a).peer, world.client(b).peer);
    run_meeting(&mut world, Duration::from_secs(2));

    let count = |world: &World, receiver, source, kind| {
        frames_from(world.client(receiver), source, kind).len()
    };
    for commune in [a, b] {
        assert!(count(&world, commune, chair_peer, MediaKind::Video) >= 10);
        assert!(count(&world, commune, chair_peer, MediaKind::Audio) >= 40);
    }
    assert_eq!(
        count(&world, a, b_peer, MediaKind::Audio),
        0,
        "a heard b unasked"
    );
    assert_eq!(
        count(&world, b, a_peer, MediaKind::Video),
        0,
        "b saw a unasked"
    );
    assert!(count(&world, chair, a_peer, MediaKind::Video) >= 10);
    assert!(count(&world, chair, b_peer, MediaKind::Audio) >= 40);

    // a gets the floor: b now hears a.
    world.sfu.handle_command(
        Command::SetSubscriptions {
            peer: b_peer,
            subscriptions: only(&[
                (1, MediaKind::Audio),
                (1, MediaKind::Video),
                (a_peer.0, MediaKind::Audio),
            ]),
        },
        world.now,
    );
    run_meeting(&mut world, Duration::from_secs(1));
    let heard = count(&world, b, a_peer, MediaKind::Audio);
    assert!(
        heard >= 30,
        "b hears a only {heard} frames after subscribing"
    );
    assert_eq!(count(&world, b, a_peer, MediaKind::Video), 0);

    // And no longer once a loses it; the media line is stopped in a new offer.
    world.sfu.handle_command(
        Command::SetSubscriptions {
            peer: b_peer,
            subscriptions: only(&[(1, MediaKind::Audio), (1, MediaKind::Video)]),
        },
        world.now,
    );
    run_meeting(&mut world, Duration::from_millis(300));
    let before = count(&world, b, a_peer, MediaKind::Audio);
    run_meeting(&mut world, Duration::from_secs(1));
    assert_eq!(
        count(&world, b, a_peer, MediaKind::Audio),
        before,
        "b still hears a"
    );
    let offered_a = world.client(b).events.iter().rev().find_map(|e| match e {
        PeerEvent::Offer { tracks, .. } => Some(tracks.iter().any(|t| t.source == a_peer)),
        _ => None,
    });
    assert_eq!(offered_a, Some(false), "a's line is still offered to b");
}

#[test]
fn bad_sdp_is_refused_without_creating_a_peer() {
    let mut world = World::new();
    for sdp in [
        "",
        "hello",
        "v=0\r\n",
        "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n",
    ] {
        world.sfu.handle_command(
            Command::AddPeer {
                peer: PeerId(77),
                room: RoomId(1),
                offer: OfferSdp::parse(sdp),
                audio_allowed: true,
                subscriptions: Subscriptions::All,
                screen_mid: None,
            },
            world.now,
        );
        let event = world.sfu.poll_event();
        assert!(
            matches!(event, Some((PeerId(77), PeerEvent::Rejected { .. }))),
            "{sdp:?} gave {event:?}"
        );
    }
    assert_eq!(world.sfu.stats().peers, 0);
    world.sfu.handle_command(
        Command::Answer {
            peer: PeerId(77),
            answer: AnswerSdp::parse("garbage"),
        },
        world.now,
    );
    assert!(matches!(
        world.sfu.poll_event(),
        Some((_, PeerEvent::Rejected { .. }))
    ));
}

/// A participant answers an offer with garbage: the answer is refused, the server
/// offers again, the second answer is taken, and the media it already received never
/// stopped.
#[test]
fn a_garbage_answer_costs_the_peer_nothing() {
    let mut world = World::new();
    let a = world.join(1);
    let listener = world.join(1);
    run_meeting(&mut world, Duration::from_secs(1));
    let a_peer = world.client(a).peer;
    let heard_before = frames_from(world.client(listener), a_peer, MediaKind::Audio).len();
    assert!(
        heard_before > 10,
        "no media before the test: {heard_before}"
    );

    // A newcomer's tracks make the server offer to the listener, who answers garbage.
    world.clients[listener].garbage_answers = 1;
    let b = world.join(1);
    run_meeting(&mut world, Duration::from_secs(2));
    let listener_client = world.client(listener);
    let refused = listener_client
        .events
        .iter()
        .filter(|e| matches!(e, PeerEvent::Rejected { .. }))
        .count();
    let offers = listener_client
        .events
        .iter()
        .filter(|e| matches!(e, PeerEvent::Offer { .. }))
        .count();
    assert_eq!(refused, 1, "{:?}", listener_client.events);
    assert!(
        offers >= 3,
        "the server should offer again: {offers} offers"
    );
    let b_peer = world.client(b).peer;
    assert!(
        frames_from(listener_client, b_peer, MediaKind::Audio).len() > 20,
        "the second answer was not taken"
    );
    let heard_after = frames_from(listener_client, a_peer, MediaKind::Audio).len();
    assert!(
        heard_after >= heard_before + 90,
        "the garbage answer stalled media: {heard_before} -> {heard_after}"
    );
    assert!(listener_client.gone.is_none());
}

/// A STUN binding request for `username` whose MESSAGE-INTEGRITY is forged.
fn stun_request(username: &str) -> Vec<u8> {
    let message = StunMessage::binding_request(username, TransId::new(), true, 1, 100, false);
    let mut buf = vec![0; 1500];
    let len = message
        .to_bytes(Some(b"not-the-password"), &mut buf, |_key, _parts| {
            [0x42; 20]
        })
        .unwrap();
    buf.truncate(len);
    buf
}

fn link_samples(client: &Client) -> Vec<&crate::LinkSample> {
    client
        .events
        .iter()
        .filter_map(|e| match e {
            PeerEvent::Link(sample) => Some(sample),
            _ => None,
        })
        .collect()
}

/// With bandwidth estimation on, str0m's statistics come several times a second (the
/// core checks each line for filling up at each): the line samples still cover a
/// second each, and count what that second carried.
#[test]
fn lines_are_sampled_once_a_second_with_estimation_on() {
    let mut world = World::new();
    world.sfu = Sfu::new(SfuConfig {
        initial_estimate: Some(2_000_000),
        ..test_config()
    });
    let first = world.join(1);
    let second = world.join(1);
    run_meeting(&mut world, Duration::from_secs(10));
    for index in [first, second] {
        let samples = link_samples(world.client(index));
        assert!(
            (8..=11).contains(&samples.len()),
            "one sample a second, got {}",
            samples.len()
        );
        assert_each_covers_a_second_of_the_meeting(&samples[samples.len() - 3..]);
    }
}

/// Each of `samples` covers about a second, and counts what a second of
/// [`run_meeting`] sends each site: 50 audio frames and 10 video frames of two packets.
fn assert_each_covers_a_second_of_the_meeting(samples: &[&crate::LinkSample]) {
    for sample in samples {
        assert!(
            sample.interval >= Duration::from_millis(900)
                && sample.interval <= Duration::from_millis(1100),
            "{sample:?}"
        );
        assert!(
            sample.packets_out >= 50 && sample.bytes_out > 20_000,
            "{sample:?}"
        );
    }
}

#[test]
fn each_peer_line_is_measured_in_both_directions() {
    let mut world = World::new();
    let clean = world.join(1);
    let lossy = world.join(1);
    // One datagram in ten from this client never arrives: its uplink loses 10%.
    world.clients[lossy].drop_every = 10;
    run_meeting(&mut world, Duration::from_secs(10));

    for index in [clean, lossy] {
        let samples = link_samples(world.client(index));
        assert!(
            samples.len() >= 8,
            "one sample a second, got {}",
            samples.len()
        );
        assert_each_covers_a_second_of_the_meeting(&samples[samples.len() - 3..]);
        for sample in &samples[samples.len() - 3..] {
            // The same each way.
            assert!(
                sample.packets_in >= 50 && sample.bytes_in > 20_000,
                "{sample:?}"
            );
            let rtt = sample.rtt.expect("round-trip time measured");
            // Receiver reports carry time in 1/65536 s: allow a millisecond of rounding.
            assert!(
                rtt + Duration::from_millis(1) >= 2 * ONE_WAY
                    && rtt < 2 * ONE_WAY + Duration::from_millis(20),
                "{rtt:?}"
            );
        }
    }
    let late = |index: usize| {
        let samples = link_samples(world.client(index));
        samples[samples.len() - 3..]
            .iter()
            .map(|s| s.loss_in.expect("uplink loss measured"))
            .fold(0.0f32, f32::max)
    };
    assert!(
        late(clean) < 0.01,
        "clean uplink shows {} loss",
        late(clean)
    );
    // The clean site's downlink carries the lossy site's stream with its gaps, yet it
    // loses nothing itself: its own downlink must read clean.
    let clean_samples = link_samples(world.client(clean));
    for sample in &clean_samples[clean_samples.len() - 3..] {
        let loss_out = sample.loss_out.expect("downlink loss measured");
        assert!(loss_out < 0.01, "clean downlink shows {loss_out} loss");
    }
    // Every tenth datagram lost is 10% on average, but the fixed pattern falls on the
    // audio stream unevenly from one second to the next: judge the mean of the seconds.
    let series: Vec<f32> = link_samples(world.client(lossy))
        .iter()
        .skip(2)
        .map(|s| s.loss_in.expect("uplink loss measured"))
        .collect();
    let lossy_in = series.iter().sum::<f32>() / series.len() as f32;
    assert!(
        (0.07..=0.13).contains(&lossy_in),
        "a 10% lossy uplink shows {lossy_in} loss on average: {series:?}"
    );
}

#[test]
fn no_line_figures_when_monitoring_is_off() {
    let mut world = World::new();
    world.sfu = Sfu::new(SfuConfig {
        candidate_addr: SERVER.parse().unwrap(),
        peer_timeout: Duration::from_secs(3),
        connect_timeout: Duration::from_secs(10),
        keyframe_request_interval: Duration::from_millis(500),
        link_stats_interval: None,
        initial_estimate: None,
        tcp_candidate_addr: None,
        loudest_audio: None,
    });
    let a = world.join(1);
    let b = world.join(1);
    run_meeting(&mut world, Duration::from_secs(4));
    assert!(!frames_from(world.client(b), world.client(a).peer, MediaKind::Audio).is_empty());
    assert!(link_samples(world.client(a)).is_empty());
}
