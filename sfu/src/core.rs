//! The sans-IO forwarding core.
//!
//! [`Sfu`] owns every peer's str0m [`Rtc`], in RTP mode: packets are forwarded as
//! packets, never reassembled into frames, which keeps latency and CPU per packet low.
//! It routes each datagram to its peer by remote address, or for a new address by the
//! ICE username of a STUN request, with hash lookups only. It negotiates with each peer
//! as the only offerer after the peer's first offer, so offers never cross.
//!
//! The rule that keeps it correct is str0m's: after every input, drain the outputs of
//! every peer the input touched until each yields a timeout.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::{Duration, Instant};

// The core's maps are looked up several times per forwarded packet (about 5% of the
// server's time went to SipHash under load); foldhash is also seeded at random, so
// hostile keys (source addresses, mids) still cannot be chosen to collide.
use foldhash::HashMap;
use str0m::bwe::{Bitrate, BweKind};
use str0m::change::SdpPendingOffer;
use str0m::crypto::CryptoProvider;
use str0m::format::PayloadParams;
use str0m::ice::StunMessage;
use str0m::media::{Direction, KeyframeRequestKind, Mid, Pt, Rid};
use str0m::net::{DatagramRecv, Protocol, Receive, TcpType, Transmit};
use str0m::rtp::{RtpPacket, RtpWrite, SeqNo};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc};

use crate::line_probe::LineProbe;
use crate::line_test::{self, LineTest};
use crate::link::{Arrivals, ArrivalsMark, LineCheck, LinkMeter, LinkSample};
use crate::opus;
use crate::simulcast::{self, LayerInfo, LayerSwitch, SourcePacket, TrackDemand};
use crate::throttle::KeyframeThrottle;
use crate::voice::{self, LEVEL_INTERVAL, VoiceMeter};
use crate::vp8;
use crate::{
    AnswerSdp, Command, GoneReason, LineTestPlan, MediaKind, OfferSdp, OutgoingTrack, PeerEvent,
    PeerId, PublishedLayer, RoomId, SfuError, Subscriptions,
};

/// How often layer bitrates are measured and every subscriber's layers chosen again.
const LAYER_INTERVAL: Duration = Duration::from_millis(500);
/// A layer no subscriber has wanted for this long is paused at its publisher. Long
/// enough that a subscriber stepping down and up again does not wait for the
/// publisher's encoder to restart.
const UNWANTED_LAYER_HOLD: Duration = Duration::from_secs(4);
/// A layer silent this long while its publisher was asked to send it is taken as
/// stopped by the publisher's own encoder.
const LAYER_SILENCE: Duration = Duration::from_millis(1500);
/// A layer its publisher's encoder dropped on its own (it fell silent while it was to
/// be sent) within this long, when it starts again (on its own, or resumed for a
/// subscriber), is switched to, up from a layer still flowing, only once it has come
/// for [`LAYER_SETTLE`]. Asked to resume such a layer, a browser on a capped uplink sent
/// its keyframe and dropped it again at once; a subscriber switched to it at that
/// keyframe was left on a frozen picture until the layer counted as silent (up to 1.9 s,
/// four times in a 20 s cap of the capped-publisher scenario).
const DROPPED_LAYER_MEMORY: Duration = Duration::from_secs(30);
const LAYER_SETTLE: Duration = Duration::from_secs(1);
/// Loss on the way from a publisher, beyond its line's usual, above which its uplink
/// counts as full: over one round of layers ([`LAYER_INTERVAL`]), over every stream it
/// sends, of at least [`UPLINK_MIN_EXPECTED`] packets. A browser whose uplink was capped
/// below what it sent lost half of it and more in the first second, until its own
/// estimator stepped its encoder down.
const UPLINK_LOSING_SHARE: f32 = 0.1;
const UPLINK_MIN_EXPECTED: u64 = 20;
/// Rounds of layers over which a publisher's usual uplink loss is the median (ten
/// seconds): as for the downlink ([`LOSS_FLOOR_SAMPLES`]), a lossy line is not a full
/// one.
const UPLINK_LOSS_FLOOR_ROUNDS: usize = 20;
/// How long after its last losing round a publisher's uplink still counts as full.
/// Meanwhile its subscribers get its lowest layer only, and only that layer's lost
/// packets are asked for again: its browser is stepping its encoder down (in about
/// half a second, by what Chromium showed), and every resend of a higher layer it was
/// asked for went into the same full line as its audio. One capped browser was asked
/// for so many that it sent more resends than video for a second and a half, its
/// audio lost its place in the line's queue, and the resends kept the layers it had
/// stopped looking alive to the server.
const UPLINK_LOSING_HOLD: Duration = Duration::from_secs(2);
/// With bandwidth estimation on, str0m's statistics come this many times per line
/// sample: the core checks for a line that fills up at each, from the loss
/// transport-wide feedback shows over the last second. A line capped below what is
/// sent loses a fifth of it and more; each second of that before the video steps down
/// costs audio too, which shares the line's queue.
const CHECKS_PER_SAMPLE: u32 = 4;
/// A video that fell on a losing line (paused while the line drains) gets at most its
/// lowest layer this long. The estimate lags behind the line (on a line capped at
/// 300 kbit/s it takes about a second to come down from 500), and raising the video
/// again on it would overfill the line at once; audio pays for that.
const FALL_HOLD: Duration = Duration::from_secs(2);
/// The resend cache of an outgoing video stream, as str0m sets it by default: the
/// packets, and how old, it can resend when the subscriber asks; and the share of
/// resent bytes beyond which it gives up resending (see `str0m::rtp::StreamTx::set_rtx_cache`).
/// Set again, to empty the cache, when the stream's layer falls.
const RTX_CACHE_PACKETS: usize = 2000;
const RTX_CACHE_AGE: Duration = Duration::from_secs(3);
const RTX_RATIO_CAP: Option<f32> = Some(0.15);
/// After its line stopped losing, what it delivered at its last losing check still caps
/// a subscriber's estimate this long: str0m's estimate is the mean of its last 3 s, and
/// on a line that just filled up it still remembers the rate before; raising the video
/// on it fills the line again, and audio pays.
const LOSING_CEILING_HOLD: Duration = Duration::from_secs(3);
/// A subscriber that wants more video than its estimate allows, on a line that loses
/// nothing, whose estimate has not moved for this long has its estimator restarted
/// from that estimate. str0m raises an estimate only so far above what is sent (half as
/// much again) unless it probes, and decides whether it may probe from the state its
/// estimator was in when the estimate last changed: an estimate cut while the line was
/// congested, left above what the audio alone reaches once the video paused, never
/// changes again, and the video never comes back. A restarted estimator probes at
/// once, from the estimate it had.
const ESTIMATE_STUCK_AFTER: Duration = Duration::from_secs(2);
/// What str0m lets its estimate reach beyond half as much again as is sent.
const APP_LIMITED_HEADROOM_BPS: u64 = 10_000;
/// Loss towards a peer, beyond the line's usual loss, above which its line counts as
/// full: a layer it receives is then given up as soon as the estimate says it does
/// not fit whole.
const LOSING_SHARE: f32 = 0.05;
/// Line samples over which a peer's usual loss is the median. A mountain line may lose
/// a few percent whatever is sent; that is not the line filling up, and reading it so
/// would keep such a site's video paused for as long as its line stays lossy. A line
/// that fills up loses far more than its usual share, at once, and stops losing once
/// the video stepped down: the median of ten seconds moves only if it kept losing for
/// more than five.
const LOSS_FLOOR_SAMPLES: usize = 10;
/// What one audio track is assumed to take of a subscriber's bandwidth, before any
/// video, until its rate is measured: Opus voice at 32 kbit/s and 50 packets a second
/// with their overhead.
const AUDIO_RESERVE_BPS: u64 = 56_000;
/// Bytes a forwarded packet takes on the line beyond its payload: IPv4, UDP, RTP with
/// its header extensions, and the SRTP tag. Counted into measured rates so that they
/// compare with the estimate, which is of everything sent.
const PACKET_OVERHEAD_BYTES: u64 = 60;
/// Bitrates assumed for a layer not yet measured, lowest layer first: what the web
/// client asks its encoder for (180p, 360p, 720p).
const NOMINAL_LAYER_BPS: [u64; 3] = [150_000, 500_000, 1_500_000];
/// The remote addresses one peer may introduce over its connection's life. Every good
/// ICE check from a new address leaves str0m a remote candidate that it keeps until the
/// connection ends and scans on every later check, so without a limit a client that
/// knows its password could make each of its checks, on the media thread every room
/// shares, as dear as it liked (80 µs with 1,000 addresses, 680 µs with 12,000, in a
/// debug build) and the peer's memory grow without end. Forgetting the oldest address
/// instead would not help: str0m can only mark a candidate discarded, never drop it.
/// A browser shows a handful of addresses per network (one per local interface and
/// NAT mapping, one per ICE-TCP connection) and a few more at each network change, so
/// 32 carries a site through many changes; a client past the limit loses the new path,
/// its connection fails and the page reconnects as a new peer, with a fresh allowance.
pub(crate) const MAX_PEER_ADDRESSES: usize = 32;
/// Candidates signaling may trickle for one peer. Each also stays in str0m's list for
/// the connection's life; a browser trickles one per local interface and protocol.
pub(crate) const MAX_TRICKLED_CANDIDATES: usize = 32;

/// How the core is set up.
#[derive(Debug, Clone)]
pub struct SfuConfig {
    /// The address browsers send media to: the host candidate in every SDP, and the
    /// destination of every datagram handed to [`Sfu::handle_datagram`].
    pub candidate_addr: SocketAddr,
    /// The passive TCP candidate (ICE-TCP, RFC 6544) for sites whose firewall blocks
    /// UDP: the destination of every packet handed to [`Sfu::handle_tcp_packet`].
    /// `None`: UDP only.
    pub tcp_candidate_addr: Option<SocketAddr>,
    /// A connected peer silent this long is dropped.
    pub peer_timeout: Duration,
    /// A peer that never connects is dropped after this long: ICE and DTLS over a slow
    /// line take a few round trips, so this is longer than `peer_timeout`.
    pub connect_timeout: Duration,
    /// At most one keyframe request per track per interval reaches a publisher.
    pub keyframe_request_interval: Duration,
    /// How often each peer's line figures are reported ([`PeerEvent::Link`]); `None`
    /// turns line monitoring off, and with it str0m's statistics.
    pub link_stats_interval: Option<Duration>,
    /// The bandwidth estimate, in bits per second, each peer's connection starts from;
    /// `None` turns bandwidth estimation off, and with it str0m's pacer: each video
    /// then goes in the layer its shown size calls for, whatever the line.
    pub initial_estimate: Option<u64>,
    /// Forward only the audio of this many sites of each room, the loudest, besides
    /// those pinned (`Command::SetAudioPinned`); `None`: every site's audio. In an open
    /// discussion of 58 sites, 57 rooms' background noise would otherwise reach every
    /// site, and 57 audio streams every commune's downlink.
    pub loudest_audio: Option<usize>,
}

/// Counters over the core's life.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SfuStats {
    pub peers: usize,
    pub rooms: usize,
    /// RTP packets received from publishers.
    pub packets_received: u64,
    /// RTP packets handed to subscribers' connections (one per subscriber).
    pub packets_forwarded: u64,
    /// Audio packets not forwarded because their sender does not hold the floor or,
    /// in a room with more speakers than `loudest_audio`, is not among the loudest.
    pub packets_withheld: u64,
    /// Datagrams that were not STUN, DTLS, RTP or RTCP.
    pub datagrams_malformed: u64,
    /// Datagrams from an unknown address that named no known peer.
    pub datagrams_unroutable: u64,
    /// ICE checks of the line probe answered (`crate::line_probe`).
    pub line_probes_answered: u64,
    /// ICE checks from a new address refused because their peer has introduced as many
    /// addresses as it may (`MAX_PEER_ADDRESSES`).
    pub addresses_refused: u64,
    /// Keyframe requests that reached publishers.
    pub keyframe_requests_sent: u64,
    /// Audio packets that arrived as redundant audio (RED): how many sites' browsers
    /// protect their audio that way.
    pub red_packets_received: u64,
    /// RTP payload bytes handed to subscribers' connections.
    pub bytes_forwarded: u64,
}

/// The forwarding core. See the module documentation.
pub struct Sfu {
    config: SfuConfig,
    /// One crypto provider for every peer, chosen once rather than looked up per peer.
    crypto: Arc<CryptoProvider>,
    pub(crate) peers: HashMap<PeerId, Peer>,
    rooms: HashMap<RoomId, Vec<PeerId>>,
    /// Remote address to peer, learnt when a peer's ICE agent first answers that address.
    pub(crate) by_address: HashMap<SocketAddr, PeerId>,
    /// Our ICE username fragment of each peer, to route a STUN request from a new address.
    by_ufrag: HashMap<String, PeerId>,
    /// Answers the ICE checks of pages waiting for their line to come back.
    line_probe: LineProbe,
    /// Peers touched by the current input that still need draining.
    dirty: Vec<PeerId>,
    /// Inside [`Sfu::handle_datagrams`]: peers touched by forwarding are drained once
    /// the batch is done, not after every datagram.
    deferring: bool,
    transmits: VecDeque<Transmit>,
    events: VecDeque<(PeerId, PeerEvent)>,
    stats: SfuStats,
    /// When the voice meters' windows are next folded; `None` while every meter rests,
    /// so a meeting of silent sites costs no wake-ups.
    pub(crate) voice_due: Option<Instant>,
    /// When layers are next measured and chosen; `None` while no video is published.
    layers_due: Option<Instant>,
}

pub(crate) struct Peer {
    room: RoomId,
    rtc: Rtc,
    pub(crate) local_ufrag: String,
    /// Remote addresses bound to this peer in `Sfu::by_address`.
    addresses: Vec<SocketAddr>,
    /// Remote addresses bound to this peer over its life, those since taken by another
    /// peer included: str0m keeps every one until the connection ends.
    addresses_learnt: usize,
    /// Candidates signaling trickled, which str0m keeps as long.
    candidates_trickled: usize,
    created: Instant,
    last_heard: Option<Instant>,
    connected: bool,
    /// str0m's next timeout for this peer.
    rtc_timeout: Instant,
    /// Tracks this peer publishes, by their mid in this peer's SDP.
    tracks_in: HashMap<Mid, TrackIn>,
    /// Other peers' tracks sent to this peer, by source.
    tracks_out: HashMap<TrackKey, TrackOut>,
    /// Whether this peer's audio is forwarded (floor control).
    audio_allowed: bool,
    /// Forwarded even when not among the loudest (the chair, the floor holder).
    audio_pinned: bool,
    /// Among the room's loudest `loudest_audio` sites, so its audio is forwarded.
    audible: bool,
    /// Which of the room's tracks this peer receives.
    subscriptions: Subscriptions,
    /// The peer's own first offer has been answered; from now on the SFU offers.
    may_offer: bool,
    pending_offer: Option<SdpPendingOffer>,
    negotiation_needed: bool,
    is_dirty: bool,
    /// Gathers str0m's statistics into line samples.
    link: LinkMeter,
    /// The level of the audio this peer publishes, as far as it is forwarded.
    voice: VoiceMeter,
    /// A line-test peer's engine, which takes all its events: such a peer is in no
    /// room, publishes and receives nothing, and is never offered to.
    line_test: Option<Box<LineTest>>,
    /// str0m's latest estimate of the bandwidth towards this peer, bits per second,
    /// while it can probe (the peer sends transport-wide feedback).
    estimate: Option<u64>,
    /// When str0m last gave a new estimate towards this peer, or its estimator was
    /// last restarted (see [`ESTIMATE_STUCK_AFTER`]).
    estimate_moved_at: Instant,
    /// The height at which the peer shows each video it receives, by our mid.
    shown_heights: HashMap<Mid, u32>,
    /// What the peer was last told of paused video ([`PeerEvent::VideoPaused`]).
    video_paused: bool,
    /// The rates last handed to str0m's estimator: (minimum, desired).
    bwe_rates: Option<(u64, u64)>,
    /// At the last check of its line, more than [`LOSING_SHARE`] beyond its usual loss
    /// of what was sent to this peer lately was lost (transport-wide feedback over the
    /// last second, else receiver reports).
    losing: bool,
    /// The loss towards this peer over its last [`LOSS_FLOOR_SAMPLES`] line samples,
    /// newest last: their median is the line's usual loss.
    recent_loss: VecDeque<f32>,
    /// What of the last second's bytes arrived at the line's last losing check, in bits
    /// per second, and until when that caps the estimate: the line carries no more,
    /// whatever the estimate (which lags) says, while it loses and for
    /// [`LOSING_CEILING_HOLD`] after.
    ceiling: Option<(u64, Instant)>,
    /// The bytes sent to this peer in total at the last few checks, newest last:
    /// what was sent over the last second.
    sent: VecDeque<(Instant, u64)>,
    /// The mid of the video line on which this peer shares its screen, if it said.
    screen_mid: Option<Mid>,
    /// The loss on the way from this peer over its last [`UPLINK_LOSS_FLOOR_ROUNDS`]
    /// rounds of layers, newest last: their median is its uplink's usual loss.
    uplink_recent_loss: VecDeque<f32>,
    /// Until when its uplink counts as full ([`UPLINK_LOSING_HOLD`]).
    uplink_losing_until: Option<Instant>,
}

/// Where a packet goes.
enum Route {
    /// To this peer: its address is bound, or it is an ICE check naming the peer.
    Peer(PeerId),
    /// Nowhere: an ICE check from a new address naming a peer that has introduced
    /// [`MAX_PEER_ADDRESSES`] addresses already.
    Full,
    /// Nowhere: from an unknown address, and no ICE check naming a peer.
    Nowhere,
    /// An ICE check naming the line probe, answered without a peer.
    LineProbe,
}

/// What signaling says of a new participant besides its offer.
struct PeerSetup {
    audio_allowed: bool,
    subscriptions: Subscriptions,
    screen_mid: Option<Mid>,
}

impl Peer {
    /// Checks the line towards this peer for filling up, from one batch of str0m's
    /// statistics; returns whether its layers must be chosen again.
    fn check_line(&mut self, check: LineCheck) -> bool {
        self.sent.push_back((check.at, check.bytes_out_total));
        if self.sent.len() > CHECKS_PER_SAMPLE as usize + 1 {
            self.sent.pop_front();
        }
        let usual_loss = median(&self.recent_loss).unwrap_or(0.0);
        // The loss beyond the line's usual: what filling it up costs.
        let excess = check.loss_out.map(|loss| (loss - usual_loss).max(0.0));
        let losing = excess.is_some_and(|excess| excess > LOSING_SHARE);
        let changed = self.losing != losing || losing;
        self.losing = losing;
        let delivered = match (losing, excess, self.sent.front()) {
            (true, Some(excess), Some(&(since, bytes_then))) if check.at > since => {
                let span = check.at.saturating_duration_since(since).as_secs_f64();
                let sent = check.bytes_out_total.saturating_sub(bytes_then) as f64 * 8.0 / span;
                // What arrived, less the share the line was losing (room for its queue
                // to drain): a second that began before the line filled up reads both
                // too high, and one reading must be enough to step down far enough.
                let kept = f64::from(1.0 - excess.clamp(0.0, 1.0));
                Some((sent * kept * kept) as u64)
            }
            _ => None,
        };
        if let Some(delivered) = delivered {
            self.ceiling = Some((delivered, check.at + LOSING_CEILING_HOLD));
        }
        if losing {
            tracing::debug!(loss_out = ?check.loss_out, ?delivered, "line losing");
        }
        changed
    }

    /// Measures the loss on the way from this peer over the round of layers that
    /// ends now, from every stream it sends; returns whether its uplink counts as full.
    fn check_uplink(&mut self, id: PeerId, now: Instant) -> bool {
        let (mut expected, mut lost) = (0, 0);
        for layer in self
            .tracks_in
            .values_mut()
            .flat_map(|t| t.layers.iter_mut())
        {
            if let Some((e, l)) = layer.arrivals.take_counts(&mut layer.round_mark) {
                expected += e;
                lost += l;
            }
        }
        if expected >= UPLINK_MIN_EXPECTED {
            let loss = lost as f32 / expected as f32;
            let usual = median(&self.uplink_recent_loss).unwrap_or(0.0);
            if loss - usual > UPLINK_LOSING_SHARE {
                if !self.uplink_losing(now) {
                    tracing::debug!(peer = %id, loss, usual, "uplink losing");
                }
                self.uplink_losing_until = Some(now + UPLINK_LOSING_HOLD);
            }
            self.uplink_recent_loss.push_back(loss);
            if self.uplink_recent_loss.len() > UPLINK_LOSS_FLOOR_ROUNDS {
                self.uplink_recent_loss.pop_front();
            }
        }
        self.uplink_losing(now)
    }

    /// Whether this peer's uplink counts as full.
    fn uplink_losing(&self, now: Instant) -> bool {
        self.uplink_losing_until.is_some_and(|until| now < until)
    }

    /// Bits per second sent to this peer over about the last second (its last line
    /// checks); `None` before two checks.
    fn sent_rate(&self) -> Option<u64> {
        let (&(since, then), &(at, total)) = (self.sent.front()?, self.sent.back()?);
        let span = at.checked_duration_since(since)?.as_secs_f64();
        (span > 0.0).then(|| (total.saturating_sub(then) as f64 * 8.0 / span) as u64)
    }

    /// Puts into a line sample the loss on the way from this peer over the sample's
    /// interval: our own count of the gaps rather than the last receiver report's; the
    /// audio's, which is never retransmitted, else the worst video stream's.
    fn count_uplink_loss(&mut self, sample: &mut LinkSample) {
        let (mut audio, mut video) = (None::<f32>, None::<f32>);
        for (track, layer) in self
            .tracks_in
            .values_mut()
            .flat_map(|t| t.layers.iter_mut().map(|l| (t.kind, l)))
        {
            let Some(loss) = layer.arrivals.take_loss(&mut layer.sample_mark) else {
                continue;
            };
            let slot = match track {
                MediaKind::Audio => &mut audio,
                MediaKind::Video | MediaKind::Screen => &mut video,
            };
            *slot = Some(slot.map_or(loss, |l| l.max(loss)));
        }
        sample.loss_in = audio.or(video).or(sample.loss_in);
    }

    /// A peer whose connection is not up yet: it receives nothing, its audio is
    /// withheld and it is offered nothing until its own first offer is answered.
    fn new(room: RoomId, rtc: Rtc, local_ufrag: String, link: LinkMeter, now: Instant) -> Peer {
        Peer {
            room,
            rtc,
            local_ufrag,
            addresses: Vec::new(),
            addresses_learnt: 0,
            candidates_trickled: 0,
            created: now,
            last_heard: None,
            connected: false,
            rtc_timeout: now,
            tracks_in: HashMap::default(),
            tracks_out: HashMap::default(),
            audio_allowed: false,
            audio_pinned: false,
            audible: false,
            subscriptions: Subscriptions::Only(Default::default()),
            may_offer: false,
            pending_offer: None,
            negotiation_needed: false,
            is_dirty: false,
            link,
            voice: VoiceMeter::default(),
            line_test: None,
            estimate: None,
            estimate_moved_at: now,
            shown_heights: HashMap::default(),
            video_paused: false,
            bwe_rates: None,
            losing: false,
            recent_loss: VecDeque::new(),
            ceiling: None,
            sent: VecDeque::new(),
            screen_mid: None,
            uplink_recent_loss: VecDeque::new(),
            uplink_losing_until: None,
        }
    }
}

/// A published track: the publishing peer and the track's mid in its SDP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct TrackKey {
    peer: PeerId,
    mid: Mid,
}

struct TrackIn {
    kind: MediaKind,
    /// The encodings it arrives in, lowest first: one without a rid unless the
    /// publisher sends simulcast.
    layers: Vec<LayerIn>,
    /// Which layers the publisher was last told to send.
    announced: Option<Vec<bool>>,
    /// Audio packets not forwarded (floor control, not among the loudest). Forwarded
    /// packets are numbered as if these had never been sent, so a subscriber's
    /// receiver reports count no loss where the SFU chose to send nothing.
    withheld: u64,
}

/// One encoding of a published track, on a stream of its own.
struct LayerIn {
    rid: Option<Rid>,
    keyframes: KeyframeThrottle,
    /// Its packets received, for the uplink's loss and to tell new ones from resends.
    arrivals: Arrivals,
    /// Where the last line sample's interval of them ended (the uplink's loss), and the
    /// last round of layers' (a full uplink).
    sample_mark: ArrivalsMark,
    round_mark: ArrivalsMark,
    /// Bytes on the line (payload and overhead) since the last measurement.
    bytes: u64,
    /// Measured bits per second on the line; kept while the layer is paused.
    bitrate: Option<u64>,
    /// The picture height its last keyframe declared.
    height: Option<u16>,
    /// When a subscriber last received or awaited it.
    wanted_at: Instant,
    /// When its last new packet arrived (beyond the highest seen; not a resend).
    last_packet: Option<Instant>,
    /// When it was published or last told to resume: until a while after, it counts
    /// as coming even though nothing arrived yet.
    expected_from: Instant,
    /// When its publisher's encoder last dropped it ([`DROPPED_LAYER_MEMORY`]).
    dropped_at: Option<Instant>,
    /// When it last started again after it was dropped ([`LAYER_SETTLE`]).
    restarted_at: Option<Instant>,
    /// Whether str0m is told not to ask the publisher to resend its lost packets: no
    /// subscriber receives the layer, or its encoder stopped it, or the publisher's
    /// uplink is full and this is not its lowest layer. On an uplink that just filled
    /// up, resends of layers the browser stopped took as much of the line as the video
    /// it still sent, for pictures no one would see, and audio lost its room in the
    /// line's queue.
    nacks_suppressed: bool,
}

impl TrackIn {
    /// The layers' indices, lowest first: by the picture heights their keyframes
    /// declared once every layer has sent one, until then in the order the publisher
    /// listed them (the web client lists its layers lowest first; a SDP library may
    /// not keep that order, which is why heights win).
    fn lowest_first(&self) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.layers.len()).collect();
        if self.layers.iter().all(|layer| layer.height.is_some()) {
            order.sort_by_key(|&index| self.layers[index].height);
        }
        order
    }

    /// Whether a subscriber may be switched to layer `index`: it arrives, or it is
    /// paused on our word and resumes when asked, or it was only just published or
    /// resumed. A layer the publisher stopped on its own (its encoder dropped it for
    /// lack of uplink) is none of these, and waiting for its keyframe would freeze the
    /// video.
    fn is_available(&self, index: usize, now: Instant) -> bool {
        let Some(layer) = self.layers.get(index) else {
            return false;
        };
        !self.announced_active(index)
            || now.saturating_duration_since(layer.expected_from) < LAYER_SILENCE
            || layer
                .last_packet
                .is_some_and(|t| now.saturating_duration_since(t) < LAYER_SILENCE)
    }

    /// Whether the publisher was last told to send layer `index` (or told nothing yet).
    fn announced_active(&self, index: usize) -> bool {
        self.announced
            .as_ref()
            .is_none_or(|announced| announced.get(index).copied().unwrap_or(true))
    }

    /// Notes the layers its publisher's encoder has dropped since they last came: those
    /// silent for [`LAYER_SILENCE`] while they were to be sent.
    fn note_dropped_layers(&mut self, now: Instant) {
        for index in 0..self.layers.len() {
            let announced_active = self.announced_active(index);
            let layer = &mut self.layers[index];
            let Some(last) = layer.last_packet else {
                continue;
            };
            if announced_active
                && now.saturating_duration_since(layer.expected_from) >= LAYER_SILENCE
                && now.saturating_duration_since(last) >= LAYER_SILENCE
                && layer.dropped_at.is_none_or(|at| at < last)
            {
                layer.dropped_at = Some(now);
            }
        }
    }

    /// Whether layer `index` started again less than [`LAYER_SETTLE`] ago after its
    /// publisher had dropped it.
    fn is_settling(&self, index: usize, now: Instant) -> bool {
        self.layers
            .get(index)
            .and_then(|layer| layer.restarted_at)
            .is_some_and(|at| now.saturating_duration_since(at) < LAYER_SETTLE)
    }
}

impl LayerIn {
    fn new(rid: Option<Rid>, keyframe_interval: Duration, now: Instant) -> LayerIn {
        LayerIn {
            rid,
            keyframes: KeyframeThrottle::new(keyframe_interval),
            arrivals: Arrivals::default(),
            sample_mark: ArrivalsMark::default(),
            round_mark: ArrivalsMark::default(),
            bytes: 0,
            bitrate: None,
            height: None,
            wanted_at: now,
            last_packet: None,
            expected_from: now,
            dropped_at: None,
            restarted_at: None,
            nacks_suppressed: false,
        }
    }
}

struct TrackOut {
    kind: MediaKind,
    state: OutState,
    /// The source peer left, or the subscriber stopped wanting the track, while this
    /// line was being negotiated: stop it after.
    source_gone: bool,
    /// Wanted again while its stop was being negotiated: open a new line after.
    wanted_again: bool,
    /// Source payload type to ours, learnt on first sight of each source type.
    payload_types: Vec<(Pt, Option<OutPayload>)>,
    /// Audio: subtracted from the source's extended sequence numbers so that this
    /// connection's numbering starts in rollover period zero, as SRTP expects of a
    /// new stream, however long the source has been sending.
    seq_base: Option<u64>,
    /// Video: which of the source's layers goes out, and the rewriting that makes
    /// layer switches invisible.
    switch: LayerSwitch,
    /// Fell on a losing line: held at most at its lowest layer until then
    /// ([`FALL_HOLD`]).
    held_until: Option<Instant>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OutState {
    /// Waiting for the next offer.
    ToOpen,
    /// In an offer awaiting its answer.
    Negotiating(Mid),
    Open(Mid),
    /// To be stopped in the next offer.
    ToStop(Mid),
    /// Stopped in an offer awaiting its answer.
    Stopping(Mid),
}

impl Sfu {
    pub fn new(config: SfuConfig) -> Sfu {
        Sfu {
            config,
            crypto: Arc::new(crate::dtls::crypto_provider()),
            peers: HashMap::default(),
            rooms: HashMap::default(),
            by_address: HashMap::default(),
            by_ufrag: HashMap::default(),
            line_probe: LineProbe::new(),
            dirty: Vec::new(),
            deferring: false,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: SfuStats::default(),
            voice_due: None,
            layers_due: None,
        }
    }

    /// The line probe's credentials, for signaling to hand to each site (`crate::line_probe`).
    pub fn line_probe(&self) -> &str0m::IceCreds {
        self.line_probe.credentials()
    }

    /// Carries out one command from signaling.
    pub fn handle_command(&mut self, command: Command, now: Instant) {
        match command {
            Command::AddPeer {
                peer,
                room,
                offer,
                audio_allowed,
                subscriptions,
                screen_mid,
            } => {
                let screen_mid = screen_mid.as_deref().map(Mid::from);
                let setup = PeerSetup {
                    audio_allowed,
                    subscriptions,
                    screen_mid,
                };
                self.add_peer(peer, room, offer, setup, now);
            }
            Command::SetSubscriptions {
                peer,
                subscriptions,
            } => self.set_subscriptions(peer, subscriptions),
            Command::Answer { peer, answer } => self.accept_answer(peer, answer, now),
            Command::RemoteCandidate { peer, candidate } => self.add_candidate(peer, &candidate),
            Command::SetAudioForwarding { peer, allowed } => match self.peers.get_mut(&peer) {
                Some(p) => {
                    p.audio_allowed = allowed;
                    p.audible &= allowed;
                }
                None => self.reject(peer, SfuError::UnknownPeer(peer)),
            },
            Command::SetAudioPinned { peer, pinned } => match self.peers.get_mut(&peer) {
                Some(p) => p.audio_pinned = pinned,
                None => self.reject(peer, SfuError::UnknownPeer(peer)),
            },
            Command::RemovePeer { peer } => {
                self.remove_peer(peer, None);
            }
            Command::AddLineTest { peer, offer, plan } => {
                self.add_line_test(peer, offer, plan, now)
            }
            Command::SetVideoSizes { peer, heights } => self.set_video_sizes(peer, &heights, now),
        }
        self.drain_dirty(now);
    }

    /// Handles one datagram that arrived on the media socket from `source`.
    pub fn handle_datagram(&mut self, source: SocketAddr, data: &[u8], now: Instant) {
        self.handle_packet(Protocol::Udp, source, data, now);
    }

    /// Handles datagrams that arrived together (one read of the socket), as
    /// [`Sfu::handle_datagram`] would one by one, but drains each subscriber they reach
    /// once at the end instead of after every datagram: a subscriber fed by many
    /// publishers (the province's wall of 56 communes) would otherwise be polled, and
    /// every one of its streams looked at, once per forwarded packet. Nothing goes out
    /// later for it: the shell sends what a read produced only after the whole read.
    pub fn handle_datagrams<'a>(
        &mut self,
        datagrams: impl IntoIterator<Item = (SocketAddr, &'a [u8])>,
        now: Instant,
    ) {
        self.deferring = true;
        for (source, data) in datagrams {
            self.handle_packet(Protocol::Udp, source, data, now);
        }
        self.deferring = false;
        self.drain_dirty(now);
    }

    /// Handles one packet that arrived over a TCP connection from `source`, already cut
    /// out of the stream (RFC 4571 framing). Outputs to such a peer come back as
    /// [`Transmit`]s whose `proto` is TCP, for the shell to frame onto the connection.
    pub fn handle_tcp_packet(&mut self, source: SocketAddr, data: &[u8], now: Instant) {
        if self.config.tcp_candidate_addr.is_none() {
            self.stats.datagrams_unroutable += 1;
            return;
        }
        self.handle_packet(Protocol::Tcp, source, data, now);
    }

    fn handle_packet(&mut self, proto: Protocol, source: SocketAddr, data: &[u8], now: Instant) {
        let destination = match (proto, self.config.tcp_candidate_addr) {
            (Protocol::Tcp, Some(tcp)) => tcp,
            _ => self.config.candidate_addr,
        };
        let Ok(contents) = DatagramRecv::try_from(data) else {
            self.stats.datagrams_malformed += 1;
            return;
        };
        let id = match self.route(source, data) {
            Route::Peer(id) => id,
            Route::Full => {
                self.stats.addresses_refused += 1;
                return;
            }
            Route::Nowhere => {
                self.stats.datagrams_unroutable += 1;
                return;
            }
            Route::LineProbe => {
                self.answer_line_probe(proto, source, destination, data);
                return;
            }
        };
        let receive = Receive {
            proto,
            source,
            destination,
            contents,
        };
        if self.deferring && self.peers.get(&id).is_some_and(|p| p.is_dirty) {
            // str0m takes input only once it was polled to a timeout since the last
            // change: what this batch forwarded to the peer goes first.
            self.drain_now(id, now);
        }
        let Some(peer) = self.peers.get_mut(&id) else {
            return;
        };
        peer.last_heard = Some(now);
        let result = catch_unwind(AssertUnwindSafe(|| {
            peer.rtc.handle_input(Input::Receive(now, receive))
        }));
        match result {
            Ok(Ok(())) => {}
            // A bad packet is the sender's problem, and the sender may be an attacker
            // spoofing this peer's address: it must not cost the peer its connection.
            Ok(Err(e)) => tracing::debug!(peer = %id, "input refused: {e}"),
            Err(_) => {
                tracing::error!(peer = %id, "str0m panicked on input; dropping the peer");
                self.remove_peer(id, Some(GoneReason::MediaFailed));
                return;
            }
        }
        if self.deferring {
            // The publisher is drained at once, which forwards its packet; those it
            // reached wait for the end of the batch.
            self.drain_now(id, now);
        } else {
            self.mark_dirty(id);
            self.drain_dirty(now);
        }
    }

    /// Drains one peer now, whether or not it waits among the dirty ones (where it
    /// stays, to be drained again cheaply if touched since).
    fn drain_now(&mut self, id: PeerId, now: Instant) {
        if let Some(peer) = self.peers.get_mut(&id) {
            peer.is_dirty = false;
        }
        self.negotiate_if_needed(id);
        self.drain(id, now);
    }

    /// Advances time: str0m timers, deferred keyframe requests and peer timeouts.
    pub fn handle_timeout(&mut self, now: Instant) {
        let mut due = Vec::new();
        let mut silent = Vec::new();
        for (&id, peer) in &self.peers {
            if self.is_silent(peer, now) {
                silent.push(id);
            } else if peer.rtc_timeout <= now {
                due.push(id);
            }
        }
        for id in silent {
            self.remove_peer(id, Some(GoneReason::Timeout));
        }
        for id in due {
            let Some(peer) = self.peers.get_mut(&id) else {
                continue;
            };
            let result = catch_unwind(AssertUnwindSafe(|| {
                peer.rtc.handle_input(Input::Timeout(now))
            }));
            if result.is_err() {
                tracing::error!(peer = %id, "str0m panicked on timeout; dropping the peer");
                self.remove_peer(id, Some(GoneReason::MediaFailed));
                continue;
            }
            self.mark_dirty(id);
        }
        self.run_line_tests(now);
        if self.voice_due.is_some_and(|due| due <= now) {
            self.report_voice_levels(now);
        }
        if self.layers_due.is_some_and(|due| due <= now) {
            self.choose_layers(now);
        }
        self.release_deferred_keyframe_requests(now);
        self.drain_dirty(now);
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event for signaling.
    pub fn poll_event(&mut self) -> Option<(PeerId, PeerEvent)> {
        self.events.pop_front()
    }

    /// When [`Sfu::handle_timeout`] must next be called, if anything waits on time.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        let mut consider = |t: Instant| next = Some(next.map_or(t, |n| n.min(t)));
        if let Some(t) = self.voice_due {
            consider(t);
        }
        if let Some(t) = self.layers_due {
            consider(t);
        }
        for peer in self.peers.values() {
            consider(peer.rtc_timeout);
            consider(self.silence_deadline(peer));
            if let Some(t) = peer.line_test.as_ref().and_then(|test| test.deadline()) {
                consider(t);
            }
            for layer in peer.tracks_in.values().flat_map(|track| &track.layers) {
                if let Some(t) = layer.keyframes.deadline() {
                    consider(t);
                }
            }
        }
        next
    }

    pub fn stats(&self) -> SfuStats {
        SfuStats {
            peers: self.peers.len(),
            rooms: self.rooms.len(),
            ..self.stats
        }
    }

    fn add_peer(
        &mut self,
        id: PeerId,
        room: RoomId,
        offer: OfferSdp,
        setup: PeerSetup,
        now: Instant,
    ) {
        if self.peers.contains_key(&id) {
            self.reject(id, SfuError::DuplicatePeer(id));
            return;
        }
        let offer = match offer.parsed {
            Ok(offer) => offer,
            Err(e) => return self.reject(id, SfuError::BadOffer(e)),
        };
        let mut rtc = Rtc::builder()
            .set_crypto_provider(self.crypto.clone())
            .set_rtp_mode(true)
            // The SFU has one public address and answers ICE checks only: ICE-lite keeps
            // it from probing browsers' private addresses.
            .set_ice_lite(true)
            .clear_codecs()
            // In-band FEC, and redundant audio (RED) with browsers that offer it: one
            // lost packet on a mountain line costs no audio. DTX: see `opus.rs`.
            .enable_opus(true, true)
            .enable_vp8(true)
            .set_stats_interval(self.config.link_stats_interval.map(|interval| {
                if self.config.initial_estimate.is_some() {
                    interval / CHECKS_PER_SAMPLE
                } else {
                    interval
                }
            }))
            .enable_bwe(self.config.initial_estimate.map(Bitrate::bps))
            .build(now);
        let candidate = match Candidate::host(self.config.candidate_addr, "udp") {
            Ok(c) => c,
            Err(e) => {
                return self.reject(
                    id,
                    SfuError::BadOffer(format!("no usable local candidate: {e}")),
                );
            }
        };
        rtc.add_local_candidate(candidate);
        if let Some(tcp) = self.config.tcp_candidate_addr {
            // Passive: the browser connects to us. A site whose firewall passes UDP
            // prefers the UDP candidate (ICE ranks UDP higher); one that blocks UDP
            // still gets through.
            match Candidate::builder()
                .tcp()
                .host(tcp)
                .tcptype(TcpType::Passive)
                .build()
            {
                Ok(candidate) => {
                    rtc.add_local_candidate(candidate);
                }
                Err(e) => tracing::warn!("no TCP candidate: {e}"),
            }
        }
        let accepted = catch_unwind(AssertUnwindSafe(|| rtc.sdp_api().accept_offer(offer)));
        let answer = match accepted {
            Ok(Ok(answer)) => answer,
            Ok(Err(e)) => return self.reject(id, SfuError::BadOffer(e.to_string())),
            Err(_) => {
                return self.reject(
                    id,
                    SfuError::BadOffer("the offer could not be processed".into()),
                );
            }
        };
        let local_ufrag = rtc.direct_api().local_ice_credentials().ufrag;
        let link = LinkMeter::new(self.config.link_stats_interval.unwrap_or_default());
        let mut peer = Peer::new(room, rtc, local_ufrag.clone(), link, now);
        peer.audio_allowed = setup.audio_allowed;
        peer.subscriptions = setup.subscriptions;
        peer.screen_mid = setup.screen_mid;
        self.peers.insert(id, peer);
        self.by_ufrag.insert(local_ufrag, id);
        self.rooms.entry(room).or_default().push(id);
        self.events.push_back((
            id,
            PeerEvent::Answer {
                sdp: opus::ask_for_dtx(&answer.to_sdp_string()),
            },
        ));

        // Subscribe the newcomer to every track already published in the room. Its own
        // tracks reach the others when draining it reports them as added media.
        let existing: Vec<(TrackKey, MediaKind)> = self
            .room_members(room)
            .filter(|&other| other != id)
            .filter_map(|other| self.peers.get(&other).map(|p| (other, p)))
            .flat_map(|(other, p)| {
                p.tracks_in
                    .iter()
                    .map(move |(&mid, track)| (TrackKey { peer: other, mid }, track.kind))
            })
            .collect();
        if let Some(peer) = self.peers.get_mut(&id) {
            for (key, kind) in existing {
                if peer.subscriptions.wants(key.peer, kind) {
                    peer.tracks_out.insert(key, TrackOut::new(kind));
                }
            }
            peer.may_offer = true;
            peer.negotiation_needed = !peer.tracks_out.is_empty();
        }
        self.mark_dirty(id);
    }

    /// Creates a line-test peer: connected like a participant, in no room.
    fn add_line_test(&mut self, id: PeerId, offer: OfferSdp, plan: LineTestPlan, now: Instant) {
        if self.peers.contains_key(&id) {
            return self.reject(id, SfuError::DuplicatePeer(id));
        }
        let (mut rtc, answer) = match line_test::accept_offer(
            self.crypto.clone(),
            self.config.candidate_addr,
            offer,
            now,
        ) {
            Ok(accepted) => accepted,
            Err(error) => return self.reject(id, error),
        };
        let local_ufrag = rtc.direct_api().local_ice_credentials().ufrag;
        // Never entered in `rooms`: a room that happens to share the number has no
        // member to forward to it, and it publishes nothing there.
        let link = LinkMeter::new(Duration::ZERO);
        let mut peer = Peer::new(RoomId(u64::MAX), rtc, local_ufrag.clone(), link, now);
        peer.line_test = Some(Box::new(LineTest::new(plan, now)));
        self.peers.insert(id, peer);
        self.by_ufrag.insert(local_ufrag, id);
        self.events.push_back((
            id,
            PeerEvent::Answer {
                sdp: answer.to_sdp_string(),
            },
        ));
        self.mark_dirty(id);
    }

    /// Advances every line test whose timer is due.
    fn run_line_tests(&mut self, now: Instant) {
        let due: Vec<PeerId> = self
            .peers
            .iter()
            .filter(|(_, peer)| {
                let deadline = peer.line_test.as_ref().and_then(|test| test.deadline());
                deadline.is_some_and(|t| t <= now)
            })
            .map(|(&id, _)| id)
            .collect();
        for id in due {
            self.step_line_test(id, |test, rtc| test.handle_timeout(rtc, now));
        }
    }

    /// Runs one step of a peer's line test, isolating a panic to that peer, and passes
    /// on its report when it has one. The peer stays until signaling removes it, so
    /// that the test's last message still goes out.
    fn step_line_test(&mut self, id: PeerId, step: impl FnOnce(&mut LineTest, &mut Rtc)) {
        let Some(peer) = self.peers.get_mut(&id) else {
            return;
        };
        let Some(test) = peer.line_test.as_mut() else {
            return;
        };
        let rtc = &mut peer.rtc;
        if catch_unwind(AssertUnwindSafe(|| step(&mut *test, &mut *rtc))).is_err() {
            tracing::error!(peer = %id, "the line test panicked; dropping the peer");
            self.remove_peer(id, Some(GoneReason::MediaFailed));
            return;
        }
        if let Some(report) = test.poll_report() {
            self.events.push_back((id, PeerEvent::LineTestDone(report)));
        }
        self.mark_dirty(id);
    }

    fn accept_answer(&mut self, id: PeerId, answer: AnswerSdp, now: Instant) {
        let Some(peer) = self.peers.get_mut(&id) else {
            return self.reject(id, SfuError::UnknownPeer(id));
        };
        let Some(pending) = peer.pending_offer.take() else {
            return self.reject(id, SfuError::NoPendingOffer);
        };
        let accepted = answer.0.and_then(|answer| {
            catch_unwind(AssertUnwindSafe(|| {
                peer.rtc.sdp_api().accept_answer(pending, answer)
            }))
            .map_err(|_| "the answer could not be processed".to_owned())?
            .map_err(|e| e.to_string())
        });
        if let Err(message) = accepted {
            // The offer is void: what it carried goes into the next one.
            for track in peer.tracks_out.values_mut() {
                track.state = match track.state {
                    OutState::Negotiating(_) => OutState::ToOpen,
                    OutState::Stopping(mid) => OutState::ToStop(mid),
                    other => other,
                };
            }
            peer.negotiation_needed = true;
            self.mark_dirty(id);
            return self.reject(id, SfuError::BadAnswer(message));
        }
        let mut opened = Vec::new();
        let mut reopen = Vec::new();
        peer.tracks_out.retain(|key, track| match track.state {
            OutState::Negotiating(mid) if track.source_gone => {
                track.state = OutState::ToStop(mid);
                true
            }
            OutState::Negotiating(mid) => {
                track.state = OutState::Open(mid);
                opened.push(*key);
                true
            }
            OutState::Stopping(_) => {
                if track.wanted_again {
                    reopen.push((*key, track.kind));
                }
                false
            }
            _ => true,
        });
        for (key, kind) in reopen {
            peer.tracks_out.insert(key, TrackOut::new(kind));
        }
        peer.negotiation_needed |= peer.tracks_out.values().any(TrackOut::awaits_offer);
        self.mark_dirty(id);
        // Newly opened video gets its layer now rather than at the next round: the
        // choice asks for the keyframe a new subscriber needs before it shows anything.
        if !opened.is_empty() {
            self.allocate_layers(id, now);
        }
    }

    /// Records the sizes at which a peer shows its videos and chooses its layers again.
    fn set_video_sizes(&mut self, id: PeerId, heights: &[(String, u32)], now: Instant) {
        let Some(peer) = self.peers.get_mut(&id) else {
            return self.reject(id, SfuError::UnknownPeer(id));
        };
        peer.shown_heights.clear();
        for (mid, height) in heights {
            // A mid is at most 16 bytes in str0m; a longer one names no line of ours.
            if mid.is_empty() || mid.len() > 16 {
                continue;
            }
            peer.shown_heights.insert(Mid::from(mid.as_str()), *height);
        }
        self.allocate_layers(id, now);
    }

    /// Chooses the layer of every video a peer receives, from the bandwidth towards it
    /// and the sizes it shows them at; asks for the keyframes the switches need, tells
    /// the peer when video is paused for lack of bandwidth, and points str0m's
    /// estimator at the rate the peer would like to receive.
    fn allocate_layers(&mut self, id: PeerId, now: Instant) {
        let Some(peer) = self.peers.get(&id) else {
            return;
        };
        if peer.line_test.is_some() {
            return;
        }
        let mut keys = Vec::new();
        let mut demands = Vec::new();
        // For each track, which of the source's layers each offered layer is.
        let mut offered: Vec<Vec<usize>> = Vec::new();
        let mut audio = 0;
        for (key, track) in &peer.tracks_out {
            let OutState::Open(mid) = track.state else {
                continue;
            };
            let Some(publisher) = self.peers.get(&key.peer) else {
                continue;
            };
            let Some(source) = publisher.tracks_in.get(&key.mid) else {
                continue;
            };
            if track.kind == MediaKind::Audio {
                // Withheld audio (not the floor, muted by the chair) takes nothing.
                if publisher.audio_allowed {
                    audio += source.layers[0].bitrate.unwrap_or(AUDIO_RESERVE_BPS);
                }
                continue;
            }
            let order = source.lowest_first();
            let count = order.len();
            // A publisher whose uplink is full is dropping its higher layers: its
            // subscribers step down to its lowest now, not once those layers have gone
            // silent, and the lowest layer's keyframe is the one that fits its line.
            let lowest_only = publisher.uplink_losing(now);
            // A layer that just started again after its publisher dropped it waits to
            // be switched to while another flows, unless this subscriber is on it.
            let receiving = track.switch.current();
            let settled = |index: usize| {
                source.is_available(index, now)
                    && (!source.is_settling(index, now) || receiving == Some(index))
            };
            let any_settled = order.iter().any(|&index| settled(index));
            let mut layers = Vec::new();
            let mut indices = Vec::new();
            for (rank, &index) in order.iter().enumerate() {
                let layer = &source.layers[index];
                let usable = if any_settled {
                    settled(index)
                } else {
                    source.is_available(index, now)
                };
                if !usable || (lowest_only && rank > 0) {
                    continue;
                }
                let nominal = NOMINAL_LAYER_BPS[(NOMINAL_LAYER_BPS.len() + rank)
                    .saturating_sub(count)
                    .min(NOMINAL_LAYER_BPS.len() - 1)];
                layers.push(LayerInfo {
                    bitrate: layer.bitrate.unwrap_or(nominal),
                    height: layer.height,
                });
                indices.push(index);
            }
            let current = track
                .switch
                .current()
                .and_then(|current| indices.iter().position(|&i| i == current));
            keys.push(*key);
            offered.push(indices);
            demands.push(TrackDemand {
                shown_height: peer.shown_heights.get(&mid).copied(),
                layers,
                current,
                held: track.held_until.is_some_and(|until| now < until),
                screen: track.kind == MediaKind::Screen,
            });
        }
        let estimate = peer.estimate.map(|estimate| match peer.ceiling {
            Some((delivered, until)) if now < until => estimate.min(delivered),
            _ => estimate,
        });
        let allocation = simulcast::allocate(estimate, audio, &demands, peer.losing);
        let Some(peer) = self.peers.get_mut(&id) else {
            return;
        };
        let mut keyframes = Vec::new();
        for ((((key, choice), indices), demand), &fell) in keys
            .iter()
            .zip(&allocation.layers)
            .zip(&offered)
            .zip(&demands)
            .zip(&allocation.fell)
        {
            let Some(track) = peer.tracks_out.get_mut(key) else {
                continue;
            };
            let layer = choice.and_then(|choice| indices.get(choice).copied());
            // Falling for lack of bandwidth: stop the layer that does not fit at once
            // rather than push more of it into a full line until the lower layer's
            // keyframe comes; the picture holds still meanwhile. Stepping down because
            // the video is shown smaller keeps it until the switch.
            if layer != track.switch.target() {
                tracing::debug!(
                    subscriber = %id,
                    source = %key.peer,
                    from = ?track.switch.current(),
                    to = ?layer,
                    estimate = ?peer.estimate,
                    budget = ?estimate,
                    rates = ?demand.layers.iter().map(|l| l.bitrate).collect::<Vec<_>>(),
                    shown = ?demand.shown_height,
                    held = demand.held,
                    fell,
                    "layer target"
                );
            }
            if fell {
                track.switch.set_target(None);
                track.held_until = Some(now + FALL_HOLD);
                // And what of it was sent is not sent again: the subscriber asks for
                // the packets the full line dropped, and each one resent would take
                // the line's room from audio again, for pictures the keyframe it
                // resumes with replaces anyway. Setting the cache anew empties it.
                if let OutState::Open(mid) = track.state
                    && let Some(stream) = peer.rtc.direct_api().stream_tx_by_mid(mid, None)
                {
                    stream.set_rtx_cache(RTX_CACHE_PACKETS, RTX_CACHE_AGE, RTX_RATIO_CAP);
                }
            }
            track.switch.set_target(layer);
            let stand_ins = choice
                .and_then(|choice| indices.get(..choice))
                .unwrap_or(&[]);
            track.switch.set_stand_ins(stand_ins);
            if let (true, Some(layer)) = (track.switch.awaits_keyframe(), layer) {
                keyframes.push((*key, layer, false));
                // Nothing shown yet: the first keyframe of a lower layer that arrives
                // shows a picture until the target's comes (the target may not be
                // sent yet at all, by a publisher that just started).
                if track.switch.current().is_none() {
                    keyframes.extend(stand_ins.iter().map(|&lower| (*key, lower, true)));
                }
            }
        }
        if peer.video_paused != allocation.starved {
            peer.video_paused = allocation.starved;
            self.events.push_back((
                id,
                PeerEvent::VideoPaused {
                    paused: allocation.starved,
                },
            ));
        }
        if self.config.initial_estimate.is_some() {
            restart_stuck_estimator(id, peer, &allocation, now);
            // Probe towards everything the peer would show, with room above it so that
            // the estimate does not sit right at what the top layers need; but never pad
            // beyond what is sent: on a full line padding only adds delay and loss.
            let desired = (allocation.desired + audio) * 6 / 5;
            // str0m pads up to the minimum whatever is sent, and a layer chosen may
            // not flow yet (it waits for its keyframe): on a line that is losing,
            // that padding would go into a full queue, ahead of audio.
            let minimum = if peer.losing {
                0
            } else {
                allocation.allocated + audio
            };
            if peer.bwe_rates != Some((minimum, desired)) {
                peer.bwe_rates = Some((minimum, desired));
                peer.rtc
                    .bwe()
                    .set_bitrate(Bitrate::bps(minimum), Bitrate::bps(desired));
            }
        }
        self.mark_dirty(id);
        self.ask_for_keyframes(keyframes, now);
    }

    /// Asks for the keyframes that start subscribers' pictures: `(track, layer,
    /// stand_in)`, a target layer or a stand-in below it (see
    /// [`LayerSwitch::set_stand_ins`]).
    fn ask_for_keyframes(&mut self, requests: Vec<(TrackKey, usize, bool)>, now: Instant) {
        for (key, layer, stand_in) in requests {
            // The keyframe a switch waits for is repaired if its packets are lost,
            // though the layer was no one's until now.
            if let Some(publisher) = self.peers.get_mut(&key.peer)
                && let Some(track) = publisher.tracks_in.get_mut(&key.mid)
                && let Some(layer) = track.layers.get_mut(layer)
            {
                set_nacks_suppressed(&mut publisher.rtc, key.mid, layer, false);
            }
            if stand_in {
                // Only a stand-in that arrives now: one that does not would answer
                // after the target anyway.
                if self.layer_arrives(key, layer, now) {
                    self.request_keyframe(key, layer, KeyframeRequestKind::Pli, now);
                }
                continue;
            }
            // A layer paused at its publisher sends no keyframe until it is resumed:
            // tell the publisher now rather than at the next round.
            let paused = self
                .peers
                .get(&key.peer)
                .and_then(|publisher| publisher.tracks_in.get(&key.mid))
                .is_some_and(|track| !track.announced_active(layer));
            if paused {
                self.layers_due = Some(now);
            }
            self.request_keyframe(key, layer, KeyframeRequestKind::Pli, now);
        }
    }

    /// The periodic round of layers: measures every layer's bitrate, chooses every
    /// subscriber's layers again, and tells publishers which layers to encode.
    fn choose_layers(&mut self, now: Instant) {
        let seconds = LAYER_INTERVAL.as_secs_f64();
        let mut any_video = false;
        for (kind, layer) in self
            .peers
            .values_mut()
            .flat_map(|peer| peer.tracks_in.values_mut())
            .flat_map(|track| {
                let kind = track.kind;
                track.layers.iter_mut().map(move |l| (kind, l))
            })
        {
            any_video |= kind.is_video();
            if layer.bytes > 0 {
                let measured = (layer.bytes as f64 * 8.0 / seconds) as u64;
                // Smoothed over two rounds: a keyframe is a burst.
                layer.bitrate = Some(layer.bitrate.map_or(measured, |old| (old + measured) / 2));
                layer.bytes = 0;
            }
        }
        self.layers_due = any_video.then_some(now + LAYER_INTERVAL);
        for (&id, peer) in &mut self.peers {
            peer.check_uplink(id, now);
        }
        let receivers: Vec<PeerId> = self
            .peers
            .iter()
            .filter(|(_, peer)| peer.tracks_out.values().any(|track| track.kind.is_video()))
            .map(|(&id, _)| id)
            .collect();
        for id in receivers {
            self.allocate_layers(id, now);
        }
        // Which layers some subscriber receives or waits for; and the lowest layer of
        // every track anyone subscribes to, so that a subscriber whose line suddenly
        // fails can always step down to a layer already flowing, without waiting for
        // the publisher to resume one. It is the cheapest to keep.
        let mut wanted = Vec::new();
        for peer in self.peers.values() {
            for (key, track) in &peer.tracks_out {
                if !track.kind.is_video() {
                    continue;
                }
                let lowest = self
                    .peers
                    .get(&key.peer)
                    .and_then(|publisher| publisher.tracks_in.get(&key.mid))
                    .and_then(|source| source.lowest_first().first().copied());
                for layer in [lowest, track.switch.current(), track.switch.target()]
                    .into_iter()
                    .flatten()
                {
                    wanted.push((*key, layer));
                }
            }
        }
        for (key, layer) in wanted {
            if let Some(layer) = self
                .peers
                .get_mut(&key.peer)
                .and_then(|publisher| publisher.tracks_in.get_mut(&key.mid))
                .and_then(|track| track.layers.get_mut(layer))
            {
                layer.wanted_at = now;
            }
        }
        // Resends are asked only of layers someone receives or waits for, that still
        // come, and, while the publisher's uplink is full, of its lowest layer only:
        // for any other they would take the uplink for pictures no one sees.
        for peer in self.peers.values_mut() {
            let lowest_only = peer.uplink_losing(now);
            for (&mid, track) in &mut peer.tracks_in {
                if !track.kind.is_video() {
                    continue;
                }
                let lowest = track.lowest_first().first().copied();
                track.note_dropped_layers(now);
                for index in 0..track.layers.len() {
                    let suppress = track.layers[index].wanted_at != now
                        || !track.is_available(index, now)
                        || (lowest_only && Some(index) != lowest);
                    set_nacks_suppressed(&mut peer.rtc, mid, &mut track.layers[index], suppress);
                }
            }
        }
        for (&id, peer) in &mut self.peers {
            for (mid, track) in &mut peer.tracks_in {
                if !track.kind.is_video() {
                    continue;
                }
                let active: Vec<bool> = track
                    .layers
                    .iter()
                    .map(|layer| now - layer.wanted_at < UNWANTED_LAYER_HOLD)
                    .collect();
                if track.announced.as_ref() == Some(&active) {
                    continue;
                }
                for (layer, (&now_active, was_active)) in track.layers.iter_mut().zip(
                    active.iter().zip(
                        track
                            .announced
                            .iter()
                            .flatten()
                            .copied()
                            .chain(std::iter::repeat(false)),
                    ),
                ) {
                    if now_active && !was_active {
                        layer.expected_from = now;
                    }
                }
                let layers = track
                    .layers
                    .iter()
                    .zip(&active)
                    .map(|(layer, &active)| PublishedLayer {
                        rid: layer.rid.map(|rid| rid.to_string()),
                        active,
                    })
                    .collect();
                track.announced = Some(active);
                self.events.push_back((
                    id,
                    PeerEvent::PublishLayers {
                        mid: mid.to_string(),
                        layers,
                    },
                ));
            }
        }
    }

    /// Replaces which tracks a peer receives, and renegotiates the difference.
    fn set_subscriptions(&mut self, id: PeerId, subscriptions: Subscriptions) {
        let Some(peer) = self.peers.get(&id) else {
            return self.reject(id, SfuError::UnknownPeer(id));
        };
        let published: Vec<(TrackKey, MediaKind)> = self
            .room_members(peer.room)
            .filter(|&other| other != id)
            .filter_map(|other| self.peers.get(&other).map(|p| (other, p)))
            .flat_map(|(other, p)| {
                p.tracks_in
                    .iter()
                    .map(move |(&mid, track)| (TrackKey { peer: other, mid }, track.kind))
            })
            .collect();
        let Some(peer) = self.peers.get_mut(&id) else {
            return;
        };
        peer.subscriptions = subscriptions;
        let mut changed = false;
        let wants = |key: &TrackKey, kind| peer.subscriptions.wants(key.peer, kind);
        let mut keep = HashMap::with_capacity_and_hasher(peer.tracks_out.len(), Default::default());
        for (key, mut track) in std::mem::take(&mut peer.tracks_out) {
            let wanted = wants(&key, track.kind);
            let stopping = matches!(track.state, OutState::ToStop(_) | OutState::Stopping(_))
                || track.source_gone;
            if wanted && stopping {
                track.resubscribe();
                changed = true;
            } else if !wanted && !stopping {
                changed = true;
                if !track.unsubscribe() {
                    continue;
                }
            }
            keep.insert(key, track);
        }
        for (key, kind) in published {
            if wants(&key, kind) && !keep.contains_key(&key) {
                keep.insert(key, TrackOut::new(kind));
                changed = true;
            }
        }
        peer.tracks_out = keep;
        if changed {
            peer.negotiation_needed = true;
            self.mark_dirty(id);
        }
    }

    fn add_candidate(&mut self, id: PeerId, line: &str) {
        let Some(peer) = self.peers.get_mut(&id) else {
            return self.reject(id, SfuError::UnknownPeer(id));
        };
        let line = line.trim();
        let line = line.strip_prefix("a=").unwrap_or(line);
        if line.is_empty() {
            return; // End of candidates.
        }
        if peer.candidates_trickled >= MAX_TRICKLED_CANDIDATES {
            return self.reject(
                id,
                SfuError::BadCandidate(format!(
                    "more than {MAX_TRICKLED_CANDIDATES} candidates for one connection"
                )),
            );
        }
        match Candidate::from_sdp_string(line) {
            Ok(candidate) => {
                peer.candidates_trickled += 1;
                peer.rtc.add_remote_candidate(candidate);
            }
            Err(e) => self.reject(id, SfuError::BadCandidate(e.to_string())),
        }
    }

    /// Forgets a peer. With a reason, the peer is told it is gone; without, signaling
    /// asked for the removal and needs no answer.
    fn remove_peer(&mut self, id: PeerId, reason: Option<GoneReason>) {
        let Some(mut peer) = self.peers.remove(&id) else {
            return;
        };
        peer.rtc.disconnect();
        for address in &peer.addresses {
            self.by_address.remove(address);
        }
        self.by_ufrag.remove(&peer.local_ufrag);
        if let Some(members) = self.rooms.get_mut(&peer.room) {
            members.retain(|&m| m != id);
            if members.is_empty() {
                self.rooms.remove(&peer.room);
            }
        }
        let members: Vec<PeerId> = self.room_members(peer.room).collect();
        for other in members {
            let Some(subscriber) = self.peers.get_mut(&other) else {
                continue;
            };
            let mut changed = false;
            subscriber.tracks_out.retain(|key, track| {
                if key.peer != id {
                    return true;
                }
                changed = true;
                track.unsubscribe()
            });
            if changed {
                subscriber.negotiation_needed = true;
                self.mark_dirty(other);
            }
        }
        if let Some(reason) = reason {
            self.events.push_back((id, PeerEvent::Gone { reason }));
        }
    }

    fn reject(&mut self, id: PeerId, error: SfuError) {
        self.events.push_back((id, PeerEvent::Rejected { error }));
    }

    fn route(&self, source: SocketAddr, data: &[u8]) -> Route {
        if let Some(&id) = self.by_address.get(&source) {
            return Route::Peer(id);
        }
        // Only an ICE check may introduce a new address, and it names its peer by our
        // username fragment. The address is bound once that peer's ICE agent answers.
        let Ok(message) = StunMessage::parse(data) else {
            return Route::Nowhere;
        };
        let Some((local, _remote)) = message.split_username() else {
            return Route::Nowhere;
        };
        let Some(&id) = self.by_ufrag.get(local) else {
            if self.line_probe.is_named(local) {
                return Route::LineProbe;
            }
            return Route::Nowhere;
        };
        // Refused before str0m sees it: str0m would keep the address for good.
        let full = self
            .peers
            .get(&id)
            .is_some_and(|peer| peer.addresses_learnt >= MAX_PEER_ADDRESSES);
        if full { Route::Full } else { Route::Peer(id) }
    }

    fn answer_line_probe(
        &mut self,
        proto: Protocol,
        source: SocketAddr,
        destination: SocketAddr,
        data: &[u8],
    ) {
        let Some(answer) = self.line_probe.answer(source, data, &self.crypto) else {
            // Not a check made with the probe's password: as unroutable as any stranger's.
            self.stats.datagrams_unroutable += 1;
            return;
        };
        self.stats.line_probes_answered += 1;
        self.transmits.push_back(Transmit {
            proto,
            source: destination,
            destination: source,
            contents: answer.into(),
        });
    }

    fn room_members(&self, room: RoomId) -> impl Iterator<Item = PeerId> + '_ {
        self.rooms.get(&room).into_iter().flatten().copied()
    }

    fn is_silent(&self, peer: &Peer, now: Instant) -> bool {
        now >= self.silence_deadline(peer)
    }

    fn silence_deadline(&self, peer: &Peer) -> Instant {
        match (peer.connected, peer.last_heard) {
            (true, Some(heard)) => heard + self.config.peer_timeout,
            // Until it connects, a peer gets the longer connect timeout, counted from
            // whichever is later: its creation or the last packet heard.
            (_, heard) => {
                heard.unwrap_or(peer.created).max(peer.created) + self.config.connect_timeout
            }
        }
    }

    fn mark_dirty(&mut self, id: PeerId) {
        if let Some(peer) = self.peers.get_mut(&id)
            && !peer.is_dirty
        {
            peer.is_dirty = true;
            self.dirty.push(id);
        }
    }

    /// Drains every touched peer until each yields a timeout. Draining one peer may
    /// touch others (forwarded packets, keyframe requests), so this loops until no peer
    /// is left dirty.
    fn drain_dirty(&mut self, now: Instant) {
        while let Some(id) = self.dirty.pop() {
            if let Some(peer) = self.peers.get_mut(&id) {
                peer.is_dirty = false;
            }
            self.negotiate_if_needed(id);
            self.drain(id, now);
        }
    }

    fn drain(&mut self, id: PeerId, now: Instant) {
        loop {
            let Some(peer) = self.peers.get_mut(&id) else {
                return;
            };
            if !peer.rtc.is_alive() {
                self.remove_peer(id, Some(GoneReason::MediaFailed));
                return;
            }
            let output = match catch_unwind(AssertUnwindSafe(|| peer.rtc.poll_output())) {
                Ok(Ok(output)) => output,
                Ok(Err(e)) => {
                    tracing::warn!(peer = %id, "connection failed: {e}");
                    self.remove_peer(id, Some(GoneReason::MediaFailed));
                    return;
                }
                Err(_) => {
                    tracing::error!(peer = %id, "str0m panicked on output; dropping the peer");
                    self.remove_peer(id, Some(GoneReason::MediaFailed));
                    return;
                }
            };
            match output {
                Output::Timeout(at) => {
                    peer.rtc_timeout = at;
                    // str0m's statistics for one interval come out within one drain.
                    if let Some((check, sample)) = peer.link.finish() {
                        let changed = peer.check_line(check);
                        if let Some(mut sample) = sample {
                            peer.count_uplink_loss(&mut sample);
                            if let Some(loss) = sample.loss_out {
                                if peer.recent_loss.len() == LOSS_FLOOR_SAMPLES {
                                    peer.recent_loss.pop_front();
                                }
                                peer.recent_loss.push_back(loss.clamp(0.0, 1.0));
                            }
                            tracing::debug!(
                                peer = %id,
                                loss_out = ?sample.loss_out,
                                bytes_out = sample.bytes_out,
                                nacks_out = sample.nacks_out,
                                jitter_in = ?sample.jitter_in,
                                jitter_out = ?sample.jitter_out,
                                "line sample"
                            );
                            self.events.push_back((id, PeerEvent::Link(sample)));
                        }
                        if changed {
                            self.allocate_layers(id, now);
                        }
                    }
                    return;
                }
                Output::Transmit(transmit) => {
                    if !peer.addresses.contains(&transmit.destination) {
                        self.bind_address(id, transmit.destination);
                    }
                    self.transmits.push_back(transmit);
                }
                Output::Event(event) => self.handle_event(id, event, now),
            }
        }
    }

    fn bind_address(&mut self, id: PeerId, address: SocketAddr) {
        if let Some(previous) = self.by_address.insert(address, id)
            && previous != id
        {
            // The address moved to another peer (a client reusing a port).
            if let Some(old) = self.peers.get_mut(&previous) {
                old.addresses.retain(|a| *a != address);
            }
        }
        if let Some(peer) = self.peers.get_mut(&id) {
            peer.addresses.push(address);
            peer.addresses_learnt += 1;
        }
    }

    fn handle_event(&mut self, id: PeerId, event: Event, now: Instant) {
        if self
            .peers
            .get(&id)
            .is_some_and(|peer| peer.line_test.is_some())
        {
            return self.step_line_test(id, |test, rtc| test.handle_event(rtc, event, now));
        }
        match event {
            Event::RtpPacket(packet) => self.forward(id, packet, now),
            Event::MediaAdded(added) if added.direction.is_receiving() => {
                // The rids the publisher offered to send, in the order it listed them:
                // our client lists its layers lowest first.
                let rids: Vec<Rid> = added
                    .simulcast
                    .map(|simulcast| {
                        let layers = if simulcast.recv.is_empty() {
                            simulcast.send
                        } else {
                            simulcast.recv
                        };
                        layers.into_iter().map(|layer| layer.rid).collect()
                    })
                    .unwrap_or_default();
                let screen = self
                    .peers
                    .get(&id)
                    .is_some_and(|peer| peer.screen_mid == Some(added.mid));
                let kind = match kind_of(added.kind) {
                    MediaKind::Video if screen => MediaKind::Screen,
                    kind => kind,
                };
                self.publish(id, added.mid, kind, rids, now);
            }
            Event::KeyframeRequest(request) => {
                let Some(peer) = self.peers.get(&id) else {
                    return;
                };
                // The subscriber asks for a keyframe of the layer it receives, or of
                // the one it is about to switch to.
                let source = peer.tracks_out.iter().find_map(|(key, track)| {
                    let layer = track.switch.target().or(track.switch.current());
                    (track.state == OutState::Open(request.mid)).then_some((*key, layer))
                });
                if let Some((key, Some(layer))) = source {
                    self.request_keyframe(key, layer, request.kind, now);
                }
            }
            Event::EgressBitrateEstimate(BweKind::Twcc {
                estimate,
                can_probe,
            }) => {
                let Some(peer) = self.peers.get_mut(&id) else {
                    return;
                };
                let estimate = can_probe.then(|| estimate.as_u64());
                tracing::trace!(peer = %id, ?estimate, "bandwidth estimate");
                if peer.estimate != estimate {
                    peer.estimate = estimate;
                    peer.estimate_moved_at = now;
                    self.allocate_layers(id, now);
                }
            }
            Event::PeerStats(stats) => {
                if let Some(peer) = self.peers.get_mut(&id) {
                    peer.link.peer_stats(&stats);
                }
            }
            Event::MediaIngressStats(stats) => {
                if let Some(peer) = self.peers.get_mut(&id) {
                    let kind = peer.tracks_in.get(&stats.mid).map(|t| t.kind);
                    peer.link.ingress(&stats, kind);
                }
            }
            Event::MediaEgressStats(stats) => {
                if let Some(peer) = self.peers.get_mut(&id) {
                    let kind = peer
                        .tracks_out
                        .values()
                        .find(|t| t.mid() == Some(stats.mid))
                        .map(|t| t.kind);
                    peer.link.egress(&stats, kind);
                }
            }
            Event::IceConnectionStateChange(state) => {
                let connected = matches!(
                    state,
                    IceConnectionState::Connected | IceConnectionState::Completed
                );
                if let Some(peer) = self.peers.get_mut(&id)
                    && connected
                    && !peer.connected
                {
                    peer.connected = true;
                    self.events.push_back((id, PeerEvent::Connected));
                    // What it receives can start now: each video needs a keyframe, of
                    // its target or of a lower layer that arrives (a stand-in): the
                    // target may be paused at its publisher until this subscriber's
                    // wish reaches it.
                    let mut waiting: Vec<(TrackKey, usize, bool)> = Vec::new();
                    for (key, track) in &peer.tracks_out {
                        let Some(layer) = track.switch.target() else {
                            continue;
                        };
                        if track.switch.awaits_keyframe() {
                            waiting.push((*key, layer, false));
                            waiting.extend(track.switch.stand_ins().map(|l| (*key, l, true)));
                        }
                    }
                    self.ask_for_keyframes(waiting, now);
                }
            }
            _ => {}
        }
    }

    /// A peer's new track: subscribe every other peer of the room to it.
    fn publish(&mut self, id: PeerId, mid: Mid, kind: MediaKind, rids: Vec<Rid>, now: Instant) {
        let interval = self.config.keyframe_request_interval;
        let Some(peer) = self.peers.get_mut(&id) else {
            return;
        };
        if peer.tracks_in.contains_key(&mid) {
            return;
        }
        let layers = if rids.is_empty() || kind == MediaKind::Audio {
            vec![LayerIn::new(None, interval, now)]
        } else {
            rids.into_iter()
                .map(|rid| LayerIn::new(Some(rid), interval, now))
                .collect()
        };
        let announced = Some(vec![true; layers.len()]);
        peer.tracks_in.insert(
            mid,
            TrackIn {
                kind,
                layers,
                // A publisher starts sending every layer it offered.
                announced,
                withheld: 0,
            },
        );
        if kind.is_video() && self.layers_due.is_none() {
            self.layers_due = Some(now + LAYER_INTERVAL);
        }
        let room = peer.room;
        self.events
            .push_back((id, PeerEvent::TrackPublished { kind }));
        let members: Vec<PeerId> = self.room_members(room).filter(|&m| m != id).collect();
        for other in members {
            if let Some(subscriber) = self.peers.get_mut(&other) {
                if !subscriber.subscriptions.wants(id, kind) {
                    continue;
                }
                subscriber
                    .tracks_out
                    .insert(TrackKey { peer: id, mid }, TrackOut::new(kind));
                subscriber.negotiation_needed = true;
                self.mark_dirty(other);
            }
        }
    }

    /// Writes one received RTP packet into every subscriber's connection.
    fn forward(&mut self, id: PeerId, packet: RtpPacket, now: Instant) {
        self.stats.packets_received += 1;
        let Some(peer) = self.peers.get_mut(&id) else {
            return;
        };
        let Some((mid, rid)) = peer
            .rtc
            .direct_api()
            .stream_rx(&packet.header.ssrc)
            .map(|s| (s.mid(), s.rid()))
        else {
            return;
        };
        let Some(track) = peer.tracks_in.get_mut(&mid) else {
            return;
        };
        // A stream of a rid the publisher did not offer is not forwarded.
        let Some(layer_index) = track.layers.iter().position(|layer| layer.rid == rid) else {
            return;
        };
        // A video layer that starts (its first packet, a screen shared, an encoder
        // resumed) is chosen for the subscribers at once, before this packet is
        // forwarded: it is usually the keyframe a switch waits for. Only new packets
        // count: resends of what a layer sent before its encoder stopped it are not the
        // layer coming.
        let layer = &mut track.layers[layer_index];
        let new = layer.arrivals.packet(*packet.seq_no);
        let starts = new
            && track.kind.is_video()
            && layer
                .last_packet
                .is_none_or(|t| now.saturating_duration_since(t) >= LAYER_SILENCE);
        if starts
            && layer
                .dropped_at
                .is_some_and(|at| now.saturating_duration_since(at) < DROPPED_LAYER_MEMORY)
        {
            layer.restarted_at = Some(now);
        }
        if new {
            layer.last_packet = Some(now);
        }
        if starts {
            let room = peer.room;
            let subscribers: Vec<PeerId> = self
                .room_members(room)
                .filter(|&other| other != id)
                .filter(|other| {
                    self.peers
                        .get(other)
                        .is_some_and(|p| p.tracks_out.contains_key(&TrackKey { peer: id, mid }))
                })
                .collect();
            for subscriber in subscribers {
                self.allocate_layers(subscriber, now);
            }
            self.layers_due = Some(now);
        }
        let Some(peer) = self.peers.get_mut(&id) else {
            return;
        };
        let Some(track) = peer.tracks_in.get_mut(&mid) else {
            return;
        };
        let layer = &mut track.layers[layer_index];
        layer.bytes += packet.payload.len() as u64 + PACKET_OVERHEAD_BYTES;
        let is_audio = track.kind == MediaKind::Audio;
        // Read once here, not per subscriber: where a keyframe starts, its size, and
        // the picture numbering that layer switches rewrite.
        let vp8 = if is_audio {
            None
        } else {
            vp8::parse(&packet.payload)
        };
        if let Some(size) = vp8.and_then(|d| d.size) {
            layer.height = Some(size.1);
        }
        if is_audio && !peer.audio_allowed {
            track.withheld += 1;
            self.stats.packets_withheld += 1;
            return;
        }
        // Only audio that is forwarded is metered: a site whose audio is withheld (it
        // does not hold the floor, or the chair muted it) is heard by no one, so it is
        // not speaking to the meeting, however loud its room; it reads as silence.
        if is_audio
            && let Some(level) = packet.header.ext_vals.audio_level
            && peer.voice.packet(level.unsigned_abs())
            && self.voice_due.is_none()
        {
            self.voice_due = Some(now + LEVEL_INTERVAL);
        }
        let room = peer.room;
        // A packet without a level cannot be ranked by loudness, so its sender is
        // always heard (browsers put a level on every packet).
        let ranked = is_audio
            && self.config.loudest_audio.is_some()
            && !peer.audio_pinned
            && !peer.audible
            && packet.header.ext_vals.audio_level.is_some();
        if ranked {
            let voiced = packet
                .header
                .ext_vals
                .audio_level
                .is_some_and(|level| voice::is_voiced(level.unsigned_abs()));
            // A site that starts speaking while the room has a free place is heard
            // from its first word; otherwise it waits until the next ranking finds it
            // louder than one of those heard.
            if voiced && self.audible_place_free(room) {
                if let Some(peer) = self.peers.get_mut(&id) {
                    peer.audible = true;
                }
            } else {
                if let Some(track) = self
                    .peers
                    .get_mut(&id)
                    .and_then(|p| p.tracks_in.get_mut(&mid))
                {
                    track.withheld += 1;
                }
                self.stats.packets_withheld += 1;
                return;
            }
        }
        let Some(peer) = self.peers.get(&id) else {
            return;
        };
        let withheld = peer.tracks_in.get(&mid).map_or(0, |t| t.withheld);
        // The number this packet goes out with, before each subscriber's own base.
        let renumbered = (*packet.seq_no).saturating_sub(withheld);
        let key = TrackKey { peer: id, mid };
        let source_codecs = peer.rtc.codec_config().params();
        // A packet is in the codec's own payload type or, for audio, in its RED one.
        let (source_params, source_red) = match source_codecs
            .iter()
            .find(|p| p.pt() == packet.header.payload_type)
        {
            Some(params) => (Some(*params), false),
            None => (
                source_codecs
                    .iter()
                    .find(|p| p.red() == Some(packet.header.payload_type))
                    .copied(),
                true,
            ),
        };
        if source_red && source_params.is_some() {
            self.stats.red_packets_received += 1;
        }
        // Redundant audio is parsed once per packet, not once per subscriber: what does
        // not parse reaches no one, and the primary block is what subscribers without
        // RED get.
        let red_primary: Option<Arc<[u8]>> = if source_red {
            let Some(primary) = crate::red::primary(&packet.payload) else {
                return;
            };
            Some(primary.into())
        } else {
            None
        };
        let members = self.rooms.get(&room).map(Vec::as_slice).unwrap_or_default();
        for &other in members {
            if other == id {
                continue;
            }
            let Some(subscriber) = self.peers.get_mut(&other) else {
                continue;
            };
            // Nothing goes out before the subscriber's DTLS is up: str0m would drop it,
            // and a layer switch would take the keyframe it waits for as sent.
            if !subscriber.connected {
                continue;
            }
            let Some(track) = subscriber.tracks_out.get_mut(&key) else {
                continue;
            };
            let OutState::Open(out_mid) = track.state else {
                continue;
            };
            let Some(out_payload) = track.payload_type_for(
                packet.header.payload_type,
                source_params,
                source_red,
                &subscriber.rtc,
            ) else {
                continue;
            };
            let (pt, seq, timestamp, payload, ext_vals) = if is_audio {
                let seq_base = *track.seq_base.get_or_insert(renumbered & !0xffff);
                let Some(seq) = renumbered.checked_sub(seq_base) else {
                    continue; // Reordered from before this subscriber's first packet.
                };
                let Some((pt, payload)) = out_payload.apply(&packet.payload, red_primary.as_ref())
                else {
                    continue;
                };
                let mut ext_vals = packet.header.ext_vals.clone();
                // The source's media line is not this connection's: str0m writes ours
                // until the subscriber has bound the stream, and after that a stale
                // source mid would send the packets to whichever line of the
                // subscriber has that mid.
                ext_vals.mid = None;
                (pt, seq, packet.header.timestamp, payload, ext_vals)
            } else {
                let OutPayload::AsIs(pt) = out_payload else {
                    continue; // Redundant encodings are audio only.
                };
                let source = SourcePacket {
                    layer: layer_index,
                    seq: *packet.seq_no,
                    timestamp: packet.header.timestamp,
                    vp8: vp8.as_ref(),
                };
                let Some(out) = track.switch.packet(source, now) else {
                    continue;
                };
                // The payload is shared by every subscriber; it is copied only where
                // a layer switch moved the picture numbering.
                let payload = match &vp8 {
                    Some(descriptor)
                        if out.picture_id != descriptor.picture_id.map(|id| id.value)
                            || out.tl0_pic_idx != descriptor.tl0_pic_idx.map(|(_, v)| v) =>
                    {
                        let mut bytes = packet.payload.to_vec();
                        vp8::rewrite(
                            &mut bytes,
                            descriptor,
                            out.picture_id.unwrap_or_default(),
                            out.tl0_pic_idx.unwrap_or_default(),
                        );
                        bytes.into()
                    }
                    _ => packet.payload.clone(),
                };
                let mut ext_vals = packet.header.ext_vals.clone();
                // The subscriber's stream is not simulcast, and its media line is ours,
                // not the source's (see above).
                ext_vals.mid = None;
                ext_vals.rid = None;
                ext_vals.rid_repair = None;
                (pt, out.seq, out.timestamp, payload, ext_vals)
            };
            let mut direct = subscriber.rtc.direct_api();
            let Some(stream) = direct.stream_tx_by_mid(out_mid, None) else {
                continue;
            };
            let bytes = payload.len() as u64;
            stream.write_rtp(
                RtpWrite::new(pt, SeqNo::from(seq), timestamp, packet.timestamp, payload)
                    .marker(packet.header.marker)
                    .ext_vals(ext_vals)
                    .nackable(!is_audio),
            );
            self.stats.packets_forwarded += 1;
            self.stats.bytes_forwarded += bytes;
            if !subscriber.is_dirty {
                subscriber.is_dirty = true;
                self.dirty.push(other);
            }
        }
    }

    /// Asks the publisher of `key` for a keyframe of one layer, throttled per layer.
    fn request_keyframe(
        &mut self,
        key: TrackKey,
        layer: usize,
        kind: KeyframeRequestKind,
        now: Instant,
    ) {
        let Some(publisher) = self.peers.get_mut(&key.peer) else {
            return;
        };
        let Some(track) = publisher.tracks_in.get_mut(&key.mid) else {
            return;
        };
        if !track.kind.is_video() {
            return;
        }
        let Some(layer) = track.layers.get_mut(layer) else {
            return;
        };
        let rid = layer.rid;
        // A layer whose stream has not begun cannot be asked: its first picture is a
        // keyframe anyway. Not counting the request keeps the throttle free for when
        // it begins.
        let mut api = publisher.rtc.direct_api();
        let Some(stream) = api.stream_rx_by_mid(key.mid, rid) else {
            return;
        };
        if !layer.keyframes.request(now) {
            return;
        }
        stream.request_keyframe(kind);
        self.stats.keyframe_requests_sent += 1;
        self.mark_dirty(key.peer);
    }

    /// Whether `layer` of the track `key` has sent a packet lately.
    fn layer_arrives(&self, key: TrackKey, layer: usize, now: Instant) -> bool {
        self.peers
            .get(&key.peer)
            .and_then(|publisher| publisher.tracks_in.get(&key.mid))
            .and_then(|track| track.layers.get(layer))
            .and_then(|layer| layer.last_packet)
            .is_some_and(|t| now.saturating_duration_since(t) < LAYER_SILENCE)
    }

    fn release_deferred_keyframe_requests(&mut self, now: Instant) {
        let mut due = Vec::new();
        for (&id, peer) in &mut self.peers {
            for (&mid, track) in &mut peer.tracks_in {
                for layer in &mut track.layers {
                    if layer.keyframes.poll_deferred(now) {
                        due.push((TrackKey { peer: id, mid }, layer.rid));
                    }
                }
            }
        }
        for (key, rid) in due {
            let Some(publisher) = self.peers.get_mut(&key.peer) else {
                continue;
            };
            if let Some(stream) = publisher.rtc.direct_api().stream_rx_by_mid(key.mid, rid) {
                stream.request_keyframe(KeyframeRequestKind::Pli);
                self.stats.keyframe_requests_sent += 1;
            }
            self.mark_dirty(key.peer);
        }
    }

    /// Folds every peer's voice window and reports the levels worth reporting; keeps
    /// folding while any meter is active.
    fn report_voice_levels(&mut self, now: Instant) {
        let mut active = false;
        for (&id, peer) in &mut self.peers {
            if let Some(level) = peer.voice.fold() {
                self.events.push_back((id, PeerEvent::AudioLevel { level }));
            }
            active |= peer.voice.is_active();
        }
        self.voice_due = active.then_some(now + LEVEL_INTERVAL);
        self.rank_speakers();
    }

    /// With `loudest_audio` set, decides afresh in every room which sites are heard:
    /// the loudest that speak, up to the limit. One already heard keeps its place
    /// against a newcomer up to [`voice::KEEP_HEARD_MARGIN`] louder, so two voices of
    /// about the same loudness do not take turns being cut.
    fn rank_speakers(&mut self) {
        let Some(limit) = self.config.loudest_audio else {
            return;
        };
        for members in self.rooms.values() {
            let mut speakers: Vec<(f32, PeerId)> = members
                .iter()
                .filter_map(|id| {
                    let peer = self.peers.get(id)?;
                    let level = peer.voice.speaking_level();
                    let ranked = peer.audio_allowed && !peer.audio_pinned && level > 0.0;
                    let bonus = if peer.audible {
                        voice::KEEP_HEARD_MARGIN
                    } else {
                        0.0
                    };
                    ranked.then_some((level + bonus, *id))
                })
                .collect();
            speakers.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.0.cmp(&b.1.0)));
            speakers.truncate(limit);
            for id in members {
                if let Some(peer) = self.peers.get_mut(id) {
                    peer.audible = speakers.iter().any(|(_, heard)| heard == id);
                }
            }
        }
    }

    /// Whether `room` has fewer sites heard by loudness than `loudest_audio`.
    fn audible_place_free(&self, room: RoomId) -> bool {
        let Some(limit) = self.config.loudest_audio else {
            return true;
        };
        let members = self.rooms.get(&room).map(Vec::as_slice).unwrap_or_default();
        let heard = members
            .iter()
            .filter_map(|id| self.peers.get(id))
            .filter(|p| p.audible && p.audio_allowed && !p.audio_pinned)
            .count();
        heard < limit
    }

    /// Sends an offer carrying every queued track change, unless one is outstanding.
    fn negotiate_if_needed(&mut self, id: PeerId) {
        let Some(peer) = self.peers.get_mut(&id) else {
            return;
        };
        if !peer.negotiation_needed || !peer.may_offer || peer.pending_offer.is_some() {
            return;
        }
        peer.negotiation_needed = false;
        let mut change = peer.rtc.sdp_api();
        for (key, track) in peer.tracks_out.iter_mut() {
            match track.state {
                OutState::ToOpen => {
                    let mid = change.add_media(
                        match track.kind {
                            MediaKind::Audio => str0m::media::MediaKind::Audio,
                            MediaKind::Video | MediaKind::Screen => str0m::media::MediaKind::Video,
                        },
                        Direction::SendOnly,
                        // The stream id is the source peer, so the client can tell
                        // whose track this is from the SDP alone.
                        Some(key.peer.to_string()),
                        Some(format!("{}-{}", key.peer, key.mid)),
                        None,
                    );
                    track.state = OutState::Negotiating(mid);
                }
                OutState::ToStop(mid) => {
                    change.stop_media(mid);
                    track.state = OutState::Stopping(mid);
                }
                _ => {}
            }
        }
        let Some((offer, pending)) = change.apply() else {
            return;
        };
        peer.pending_offer = Some(pending);
        let mut tracks: Vec<OutgoingTrack> = peer
            .tracks_out
            .iter()
            .filter_map(|(key, track)| match track.state {
                OutState::Negotiating(mid) | OutState::Open(mid) if !track.source_gone => {
                    Some(OutgoingTrack {
                        mid: mid.to_string(),
                        source: key.peer,
                        kind: track.kind,
                    })
                }
                _ => None,
            })
            .collect();
        tracks.sort_by(|a, b| a.mid.cmp(&b.mid));
        self.events.push_back((
            id,
            PeerEvent::Offer {
                sdp: opus::ask_for_dtx(&offer.to_sdp_string()),
                tracks,
            },
        ));
    }
}

impl TrackOut {
    /// Stops sending this track: at once if it was never offered, otherwise in the next
    /// offer. Returns whether the entry must be kept until then.
    fn unsubscribe(&mut self) -> bool {
        self.wanted_again = false;
        match self.state {
            OutState::ToOpen => false,
            OutState::Negotiating(_) => {
                self.source_gone = true;
                true
            }
            OutState::Open(mid) => {
                self.state = OutState::ToStop(mid);
                true
            }
            OutState::ToStop(_) | OutState::Stopping(_) => true,
        }
    }

    /// Sends this track again after an unsubscribe that has not completed.
    fn resubscribe(&mut self) {
        match self.state {
            OutState::ToStop(mid) => self.state = OutState::Open(mid),
            OutState::Negotiating(_) => self.source_gone = false,
            OutState::Stopping(_) => self.wanted_again = true,
            OutState::ToOpen | OutState::Open(_) => {}
        }
    }

    fn new(kind: MediaKind) -> TrackOut {
        TrackOut {
            kind,
            state: OutState::ToOpen,
            source_gone: false,
            wanted_again: false,
            payload_types: Vec::new(),
            seq_base: None,
            switch: LayerSwitch::default(),
            held_until: None,
        }
    }

    /// The media line this track is on, once it has one.
    fn mid(&self) -> Option<Mid> {
        match self.state {
            OutState::ToOpen => None,
            OutState::Negotiating(mid)
            | OutState::Open(mid)
            | OutState::ToStop(mid)
            | OutState::Stopping(mid) => Some(mid),
        }
    }

    fn awaits_offer(&self) -> bool {
        matches!(self.state, OutState::ToOpen | OutState::ToStop(_))
    }

    /// How the source's payload type goes out on this connection, matched by codec;
    /// `None` if we have no match. `source` is the source's codec, whose RED payload
    /// type `source_pt` is when `source_red`.
    fn payload_type_for(
        &mut self,
        source_pt: Pt,
        source: Option<PayloadParams>,
        source_red: bool,
        rtc: &Rtc,
    ) -> Option<OutPayload> {
        if let Some((_, ours)) = self.payload_types.iter().find(|(pt, _)| *pt == source_pt) {
            return *ours;
        }
        let ours = source.and_then(|source| {
            let spec = source.spec();
            let ours = rtc.codec_config().params().iter().find(|p| {
                let candidate = p.spec();
                candidate.codec == spec.codec
                    && candidate.clock_rate == spec.clock_rate
                    && candidate.channels == spec.channels
            })?;
            Some(match (source_red, ours.red()) {
                (false, _) => OutPayload::AsIs(ours.pt()),
                (true, Some(red)) => OutPayload::Red {
                    red,
                    primary: ours.pt(),
                    source_primary: source.pt(),
                },
                (true, None) => OutPayload::Primary(ours.pt()),
            })
        });
        self.payload_types.push((source_pt, ours));
        ours
    }
}

/// How a forwarded packet's payload goes out to one subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OutPayload {
    /// As it came, under this payload type.
    AsIs(Pt),
    /// Redundant audio to a subscriber that negotiated it: the payload whole under our
    /// RED payload type, its blocks renamed from the source's codec number to ours.
    Red {
        red: Pt,
        primary: Pt,
        source_primary: Pt,
    },
    /// Redundant audio to a subscriber that did not negotiate it: the primary block
    /// alone, as plain audio under this payload type.
    Primary(Pt),
}

impl OutPayload {
    /// The payload type and payload this subscriber gets, from the packet's payload
    /// and, for redundant audio, its primary block (parsed once per packet, which also
    /// proved the payload well-formed); `None` when a RED payload has no primary.
    fn apply(
        self,
        payload: &Arc<[u8]>,
        red_primary: Option<&Arc<[u8]>>,
    ) -> Option<(Pt, Arc<[u8]>)> {
        match self {
            OutPayload::AsIs(pt) => Some((pt, payload.clone())),
            OutPayload::Red {
                red,
                primary,
                source_primary,
            } if primary == source_primary => Some((red, payload.clone())),
            OutPayload::Red {
                red,
                primary,
                source_primary,
            } => {
                let retagged = crate::red::retag(payload, *source_primary, *primary)?;
                Some((red, retagged.into()))
            }
            OutPayload::Primary(pt) => Some((pt, red_primary?.clone())),
        }
    }
}

/// Restarts the estimator towards `peer` if its estimate is stuck below what it wants
/// (see [`ESTIMATE_STUCK_AFTER`]).
fn restart_stuck_estimator(
    id: PeerId,
    peer: &mut Peer,
    allocation: &simulcast::Allocation,
    now: Instant,
) {
    let Some(estimate) = peer.estimate else {
        return;
    };
    // A line that lost lately is not stuck: it is full.
    let lost_lately = peer.ceiling.is_some_and(|(_, until)| now < until);
    if allocation.next_step.is_none()
        || peer.losing
        || lost_lately
        || now.saturating_duration_since(peer.estimate_moved_at) < ESTIMATE_STUCK_AFTER
    {
        return;
    }
    // Only an estimate beyond what str0m can reach from what is sent is stuck; one
    // within reach moves as the rate sent does.
    if peer
        .sent_rate()
        .is_none_or(|sent| estimate.saturating_sub(APP_LIMITED_HEADROOM_BPS) < sent * 3 / 2)
    {
        return;
    }
    tracing::debug!(peer = %id, estimate, "estimate stuck: estimator restarted");
    peer.rtc.bwe().reset(Bitrate::bps(estimate));
    peer.estimate_moved_at = now;
}

/// Tells str0m whether to ask for resends of `layer`'s lost packets, if that changed.
/// A layer whose stream has not begun is left as it is: str0m has no stream to tell.
fn set_nacks_suppressed(rtc: &mut Rtc, mid: Mid, layer: &mut LayerIn, suppress: bool) {
    if layer.nacks_suppressed == suppress {
        return;
    }
    if let Some(stream) = rtc.direct_api().stream_rx_by_mid(mid, layer.rid) {
        stream.suppress_nack(suppress);
        layer.nacks_suppressed = suppress;
        tracing::debug!(%mid, rid = ?layer.rid, suppress, "resends of a layer");
    }
}

/// The median of `values` (the lower middle one of an even count); `None` if empty.
fn median(values: &VecDeque<f32>) -> Option<f32> {
    let mut sorted: Vec<f32> = values.iter().copied().collect();
    sorted.sort_by(f32::total_cmp);
    sorted.get(sorted.len().saturating_sub(1) / 2).copied()
}

fn kind_of(kind: str0m::media::MediaKind) -> MediaKind {
    match kind {
        str0m::media::MediaKind::Audio => MediaKind::Audio,
        str0m::media::MediaKind::Video => MediaKind::Video,
    }
}
