//! Cầu's selective forwarding unit.
//!
//! The SFU forwards each participant's RTP audio and video, untouched but for the
//! header fields WebRTC requires per connection, to every other participant of the
//! same room. It never decodes or transcodes.
//!
//! It has two halves, in str0m's style:
//! - [`Sfu`], a sans-IO core: datagrams, commands and `now` go in; datagrams to send,
//!   events for signaling and the next timeout come out. It owns every peer's str0m
//!   [`str0m::Rtc`] and never reads the clock, touches a socket or spawns anything, so
//!   its logic runs in tests on simulated time.
//! - [`spawn`], the IO shell: one thread that owns the UDP socket and drives the core,
//!   and the [`SfuHandle`] through which the async signaling side talks to it.
//!
//! The SFU knows nothing of meetings, sites or names: a room is a number, a peer is a
//! number, and signaling decides who they are.

mod batch;
mod core;
mod dtls;
#[doc(hidden)]
pub mod fuzzing;
mod line_probe;
mod line_test;
mod link;
mod opus;
mod red;
mod shell;
mod simulcast;
mod tcp;
mod throttle;
mod voice;
mod vp8;

#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::fmt;

use str0m::change::{SdpAnswer, SdpOffer};

pub use crate::core::{Sfu, SfuConfig, SfuStats};
pub use crate::dtls::crypto_provider;
pub use crate::line_test::{BULK_LABEL, CONTROL_LABEL, LineTestPlan, LineTestReport, PROBE_LABEL};
pub use crate::link::LinkSample;
pub use crate::shell::{SfuHandle, spawn};

/// Identifies one participant's media connection. Chosen by signaling, never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerId(pub u64);

/// Identifies a forwarding group: media flows between peers of one room only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RoomId(pub u64);

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Audio, camera video, or a shared screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaKind {
    Audio,
    Video,
    /// A shared screen or window: video on a media line of its own, which the
    /// publisher named in its offer (`AddPeer::screen_mid`). Subscribed to apart from
    /// the camera, and served ahead of cameras when bandwidth is short.
    Screen,
}

impl MediaKind {
    /// Camera or screen: carried as video.
    pub fn is_video(self) -> bool {
        matches!(self, MediaKind::Video | MediaKind::Screen)
    }
}

/// An offer from a browser, parsed where it arrived. str0m's SDP parser costs some 45 µs
/// a KiB: parsed in the session that received it, an offer costs that session's task,
/// not the media thread that every room's packets wait on (`docs/security.md`, threats
/// 24 and 26).
#[derive(Debug)]
pub struct OfferSdp {
    parsed: Result<SdpOffer, String>,
    /// It has an SCTP line, without which a line test's data channels never open.
    data_channels: bool,
}

impl OfferSdp {
    pub fn parse(text: &str) -> OfferSdp {
        OfferSdp {
            parsed: SdpOffer::from_sdp_string(text).map_err(|e| e.to_string()),
            data_channels: text.contains("m=application"),
        }
    }
}

/// An answer to the SFU's offer, parsed where it arrived, like [`OfferSdp`]. An answer
/// cannot be capped in size as an offer is (it has a section for every track the
/// participant receives, so it grows with the room); parsing it off the media thread
/// is what keeps a large or hostile one from holding up the others' media.
#[derive(Debug)]
pub struct AnswerSdp(Result<SdpAnswer, String>);

impl AnswerSdp {
    pub fn parse(text: &str) -> AnswerSdp {
        AnswerSdp(SdpAnswer::from_sdp_string(text).map_err(|e| e.to_string()))
    }
}

/// What signaling asks of the SFU.
#[derive(Debug)]
pub enum Command {
    /// A new participant offers the tracks it publishes. The SFU answers with
    /// [`PeerEvent::Answer`], or [`PeerEvent::Rejected`] if the offer is unusable.
    AddPeer {
        peer: PeerId,
        room: RoomId,
        offer: OfferSdp,
        /// Whether its audio is forwarded from the start (see `SetAudioForwarding`).
        audio_allowed: bool,
        /// Which of the room's tracks it receives.
        subscriptions: Subscriptions,
        /// The mid of the offer's video line that carries a shared screen, if any.
        screen_mid: Option<String>,
    },
    /// The participant's answer to the SFU's latest [`PeerEvent::Offer`].
    Answer { peer: PeerId, answer: AnswerSdp },
    /// A trickled ICE candidate of the participant (`candidate:...`, with or without `a=`).
    RemoteCandidate { peer: PeerId, candidate: String },
    /// The participant left: forget it and stop forwarding its tracks to the others.
    RemovePeer { peer: PeerId },
    /// Forward the participant's audio to the others, or withhold it, whatever the
    /// participant itself sends: how a chair's floor control is enforced.
    SetAudioForwarding { peer: PeerId, allowed: bool },
    /// Forward the participant's audio whether or not it is among the room's loudest
    /// (`SfuConfig::loudest_audio`): the chair and the floor holder are always heard.
    SetAudioPinned { peer: PeerId, pinned: bool },
    /// Change which tracks the participant receives. The SFU renegotiates to match.
    SetSubscriptions {
        peer: PeerId,
        subscriptions: Subscriptions,
    },
    /// The sizes at which the participant shows the videos it receives, by the media
    /// line's mid: a height in CSS pixels, 0 for a video it does not show. The SFU
    /// sends each video in the smallest simulcast layer that fills its size, and
    /// nothing of a video not shown. A mid not listed is assumed shown large.
    SetVideoSizes {
        peer: PeerId,
        heights: Vec<(String, u32)>,
    },
    /// A site tests its line: a peer in no room that forwards nothing, publishes its
    /// camera and microphone and opens the line test's data channels. The SFU answers
    /// with [`PeerEvent::Answer`], runs `plan`, and reports [`PeerEvent::LineTestDone`];
    /// signaling then removes the peer with `RemovePeer`.
    AddLineTest {
        peer: PeerId,
        offer: OfferSdp,
        plan: LineTestPlan,
    },
}

/// Which tracks of its room a peer receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subscriptions {
    /// Every track of every other peer (an ad-hoc room).
    All,
    /// Only the tracks of these kinds from these publishers (a meeting between sites,
    /// where the chair's layout and the floor decide who sees and hears whom).
    Only(HashSet<(PeerId, MediaKind)>),
}

impl Subscriptions {
    /// Whether the peer receives `publisher`'s track of `kind`. A shared screen is
    /// received from whoever the peer may receive a screen from, or hear: in a meeting
    /// the sites one hears are the ones presenting (the chair, the floor holder).
    pub fn wants(&self, publisher: PeerId, kind: MediaKind) -> bool {
        match self {
            Subscriptions::All => true,
            Subscriptions::Only(set) => {
                set.contains(&(publisher, kind))
                    || (kind == MediaKind::Screen && set.contains(&(publisher, MediaKind::Audio)))
            }
        }
    }
}

/// What the SFU tells signaling about one peer.
#[derive(Debug, Clone, PartialEq)]
pub enum PeerEvent {
    /// The answer to the peer's offer.
    Answer { sdp: String },
    /// A renegotiation: other peers' tracks are added or removed. `tracks` lists every
    /// media line the SFU now sends to this peer.
    Offer {
        sdp: String,
        tracks: Vec<OutgoingTrack>,
    },
    /// One of this peer's own tracks reached the SFU and is forwarded to the room.
    TrackPublished { kind: MediaKind },
    /// ICE and DTLS are up: media can flow.
    Connected,
    /// The peer's line over the last stats interval (when line monitoring is on).
    Link(LinkSample),
    /// The level of the peer's voice changed: smoothed over a few hundred milliseconds
    /// from the audio level its browser writes in every audio packet (RFC 6464), as
    /// loudness above digital silence: 0 when it is not speaking, or its audio is
    /// withheld or carries no level, up to 127 for the loudest. Sent only when the
    /// level moved noticeably, at most five times a second, so silent peers send none.
    AudioLevel { level: u8 },
    /// Whether some video this peer should see is paused because its downlink cannot
    /// carry it (audio is always served first). Sent on every change.
    VideoPaused { paused: bool },
    /// Which layers of one of its video tracks the peer should encode: those some
    /// subscriber receives or is about to. Sent on every change; a layer no one has
    /// wanted for a few seconds is paused, one wanted again resumes at once.
    PublishLayers {
        /// The track's mid in the peer's own SDP.
        mid: String,
        layers: Vec<PublishedLayer>,
    },
    /// A line-test peer's test has ended, with its figures.
    LineTestDone(LineTestReport),
    /// A command about this peer was refused; the peer itself goes on.
    Rejected { error: SfuError },
    /// The SFU dropped this peer. No more events follow.
    Gone { reason: GoneReason },
}

/// One media line the SFU sends to a peer, and whose track it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingTrack {
    /// The media line's `a=mid` in the SDP.
    pub mid: String,
    /// The peer whose track this is.
    pub source: PeerId,
    pub kind: MediaKind,
}

/// One layer of a published video track, and whether it should be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedLayer {
    /// The layer's `rid`; `None` for a track sent without simulcast.
    pub rid: Option<String>,
    pub active: bool,
}

/// Why the SFU dropped a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GoneReason {
    /// Nothing arrived on its media path for the configured peer timeout.
    Timeout,
    /// Its connection failed (DTLS, a fatal str0m error, or a fault isolated to it).
    MediaFailed,
}

/// Why a command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SfuError {
    /// The offer's SDP does not parse or cannot be accepted.
    #[error("offer refused: {0}")]
    BadOffer(String),
    /// The answer's SDP does not parse or does not fit the outstanding offer.
    #[error("answer refused: {0}")]
    BadAnswer(String),
    /// An answer came with no offer outstanding.
    #[error("no offer is waiting for an answer")]
    NoPendingOffer,
    /// The candidate line does not parse.
    #[error("candidate refused: {0}")]
    BadCandidate(String),
    /// A peer with this id exists already.
    #[error("peer {0} exists already")]
    DuplicatePeer(PeerId),
    /// The command names a peer the SFU does not have (it may just have gone).
    #[error("no such peer {0}")]
    UnknownPeer(PeerId),
}
