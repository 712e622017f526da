//! The line test: before a meeting, a site measures its line to this very server.
//!
//! A line-test peer is a WebRTC connection like a participant's, over the same UDP
//! socket, ICE, DTLS and SCTP, so the test crosses the path media will take. But it is
//! in no room and forwards nothing: its [`LineTest`] engine consumes its events. The
//! site's client publishes its microphone and camera and opens three data channels
//! (labels fixed by `docs/signaling.md`):
//! - `cau-probe`, unordered and without retransmission: the server sends a small probe
//!   every `probe_interval` and the client echoes it unchanged. Round-trip time, loss
//!   and jitter come from the echoes, the way an audio packet would fare.
//! - `cau-bulk`, reliable: the server writes bytes paced at the download target, and
//!   the client writes bytes paced at the upload target when told to.
//! - `cau-control`, reliable: the client sends `{"ready":true}` once its three channels
//!   are open, and the test starts; the server tells the client each phase as JSON
//!   text, `{"phase":"probe","ms":3000}`, `{"phase":"download","ms":4000,"kbps":540}`,
//!   `{"phase":"upload","ms":4000,"kbps":540}`, `{"phase":"done"}`.
//!
//! Every figure is measured on the server, so a client cannot flatter its line:
//! - download: bytes the client's SCTP has acknowledged. str0m's buffered amount is
//!   released on acknowledgement (sctp-proto's SACK handling), not on sending, so
//!   written minus buffered is what reached the site;
//! - upload: bytes that arrived, on `cau-bulk` and in RTP (the camera and microphone
//!   share the uplink in a meeting too), during a window of the phase's length that
//!   opens with the first bulk byte;
//! - microphone and camera: whether RTP of each kind arrived at all.
//!
//! The phases run one after another so that the directions do not compete: probes
//! alone, download, a short settle for the last acknowledgements, upload. Probes run
//! throughout, so the round-trip time is that of a line carrying a meeting's load.
//! Sans-IO like the rest of the core: it is handed the peer's `Rtc`, events and `now`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::change::SdpAnswer;
use str0m::channel::ChannelId;
use str0m::crypto::CryptoProvider;
use str0m::media::Mid;
use str0m::{Candidate, Event, Rtc};

use crate::{MediaKind, OfferSdp, SfuError};

/// The data channel the probes go over.
pub const PROBE_LABEL: &str = "cau-probe";
/// The data channel the bulk bytes go over, both ways.
pub const BULK_LABEL: &str = "cau-bulk";
/// The data channel of the phase messages.
pub const CONTROL_LABEL: &str = "cau-control";

/// A probe: its sequence number (4 bytes, big-endian), then padding to the size of a
/// small audio packet's payload, so that probes fare like voice would.
const PROBE_BYTES: usize = 32;

/// Bulk bytes are written in messages this large: one SCTP packet each, well under
/// str0m's 1150-byte MTU once SCTP and DTLS add their headers.
const CHUNK_BYTES: usize = 1000;

/// How often the download is topped up to its pace.
const PACE_TICK: Duration = Duration::from_millis(10);

/// The download keeps at most this much of its rate unacknowledged. Enough for the
/// full rate up to a 500 ms round trip, and no more, so a slow line ends the download
/// with half a second of backlog rather than seconds of it.
const BACKLOG: Duration = Duration::from_millis(500);

/// Probes sent in the test's last second are counted only if answered: their echo
/// had no time to come back.
const ECHO_GRACE: Duration = Duration::from_secs(1);

/// The upload window opens with the first upload byte, or this long after the client
/// was told to start if none has come by then.
const UPLOAD_START_WAIT: Duration = Duration::from_secs(1);

/// A client whose three data channels are not open this long after it was added gets
/// an incomplete report.
const OPEN_TIMEOUT: Duration = Duration::from_secs(10);

/// What a line test measures, and for how long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineTestPlan {
    /// One probe every this long, throughout the test.
    pub probe_interval: Duration,
    /// Probes alone, before any load.
    pub probe_phase: Duration,
    /// The server sends to the site for this long ...
    pub download: Duration,
    /// ... at this rate, in bits per second: what a meeting sends a site.
    pub download_bps: u64,
    /// The site sends to the server for this long ...
    pub upload: Duration,
    /// ... at this rate: what a site sends in a meeting.
    pub upload_bps: u64,
}

/// The figures of one line test, all measured on the server.
#[derive(Debug, Clone, PartialEq)]
pub struct LineTestReport {
    /// The data channels opened and every phase ran. When false, the client never
    /// opened its channels and the throughput figures are zero.
    pub completed: bool,
    /// The median round trip of the answered probes.
    pub rtt: Option<Duration>,
    /// The mean difference between consecutive answered probes' round trips.
    pub jitter: Option<Duration>,
    /// The fraction (0..1) of probes without an echo; `None` if none was sent.
    pub loss: Option<f32>,
    /// Probes counted for loss, and how many of them were answered.
    pub probes_sent: u32,
    pub probes_answered: u32,
    /// Bits per second that the site acknowledged, over the download phase.
    pub download_bps: u64,
    /// Bits per second that arrived from the site, over the upload window.
    pub upload_bps: u64,
    /// RTP packets of the site's microphone and camera, over the whole test.
    pub audio_packets: u64,
    pub video_packets: u64,
    /// From the peer's creation to the end of the test.
    pub duration: Duration,
}

/// One line test's state. See the module documentation.
pub(crate) struct LineTest {
    plan: LineTestPlan,
    created: Instant,
    probe: Option<ChannelId>,
    bulk: Option<ChannelId>,
    control: Option<ChannelId>,
    phase: Phase,
    /// Every probe sent, by sequence number.
    probes: Vec<Probe>,
    next_probe: Option<Instant>,
    media_kinds: HashMap<Mid, MediaKind>,
    audio_packets: u64,
    video_packets: u64,
    /// Bulk bytes handed to SCTP during the download.
    download_written: u64,
    download_acked: u64,
    upload_bytes: u64,
    report: Option<LineTestReport>,
}

#[derive(Debug, Clone, Copy)]
struct Probe {
    sent_at: Instant,
    rtt: Option<Duration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for the client's three data channels and its word that it is ready.
    Opening,
    Probing {
        until: Instant,
    },
    Download {
        start: Instant,
        until: Instant,
        next_write: Instant,
    },
    /// The download's last bytes are acknowledged before the count is taken.
    Settling {
        until: Instant,
    },
    Upload {
        asked: Instant,
        /// When the window closes, once its first byte arrived (or the wait ran out).
        until: Option<Instant>,
    },
    Done,
}

/// The line-test peer's connection, set up like a participant's (RTP mode, ICE-lite,
/// Opus and VP8) so the test takes the path media takes, and the answer to its offer.
pub(crate) fn accept_offer(
    crypto: Arc<CryptoProvider>,
    candidate_addr: SocketAddr,
    offer: OfferSdp,
    now: Instant,
) -> Result<(Rtc, SdpAnswer), SfuError> {
    // Without an SCTP media line the data channels could never open.
    if !offer.data_channels {
        return Err(SfuError::BadOffer(
            "a line test's offer needs its data channels (m=application)".into(),
        ));
    }
    let offer = offer.parsed.map_err(SfuError::BadOffer)?;
    let mut rtc = Rtc::builder()
        .set_crypto_provider(crypto)
        .set_rtp_mode(true)
        .set_ice_lite(true)
        .clear_codecs()
        .enable_opus(true, false)
        .enable_vp8(true)
        .build(now);
    let candidate = Candidate::host(candidate_addr, "udp")
        .map_err(|e| SfuError::BadOffer(format!("no usable local candidate: {e}")))?;
    rtc.add_local_candidate(candidate);
    let answer = catch_unwind(AssertUnwindSafe(|| rtc.sdp_api().accept_offer(offer)))
        .map_err(|_| SfuError::BadOffer("the offer could not be processed".into()))?
        .map_err(|e| SfuError::BadOffer(e.to_string()))?;
    Ok((rtc, answer))
}

impl LineTest {
    pub(crate) fn new(plan: LineTestPlan, now: Instant) -> LineTest {
        LineTest {
            plan,
            created: now,
            probe: None,
            bulk: None,
            control: None,
            phase: Phase::Opening,
            probes: Vec::new(),
            next_probe: None,
            media_kinds: HashMap::new(),
            audio_packets: 0,
            video_packets: 0,
            download_written: 0,
            download_acked: 0,
            upload_bytes: 0,
            report: None,
        }
    }

    /// Takes one event of the peer's connection.
    pub(crate) fn handle_event(&mut self, rtc: &mut Rtc, event: Event, now: Instant) {
        match event {
            Event::ChannelOpen(id, label) => {
                let slot = match label.as_str() {
                    PROBE_LABEL => &mut self.probe,
                    BULK_LABEL => &mut self.bulk,
                    CONTROL_LABEL => &mut self.control,
                    _ => return,
                };
                slot.get_or_insert(id);
            }
            // The client says it is ready once its own ends of the channels are open:
            // until then it could not echo a probe that overtook the channel's opening.
            Event::ChannelData(data) if Some(data.id) == self.control => {
                let all_open =
                    self.probe.is_some() && self.bulk.is_some() && self.control.is_some();
                if all_open && self.phase == Phase::Opening {
                    self.start(rtc, now);
                }
            }
            Event::ChannelData(data) if Some(data.id) == self.probe => {
                self.echo(&data.data, now);
            }
            Event::ChannelData(data) if Some(data.id) == self.bulk => {
                self.upload_arrived(data.data.len(), now, true);
            }
            Event::MediaAdded(added) if added.direction.is_receiving() => {
                let kind = match added.kind {
                    str0m::media::MediaKind::Audio => MediaKind::Audio,
                    str0m::media::MediaKind::Video => MediaKind::Video,
                };
                self.media_kinds.insert(added.mid, kind);
            }
            Event::RtpPacket(packet) => {
                let mid = rtc
                    .direct_api()
                    .stream_rx(&packet.header.ssrc)
                    .map(|stream| stream.mid());
                match mid.and_then(|mid| self.media_kinds.get(&mid)) {
                    Some(MediaKind::Audio) => self.audio_packets += 1,
                    Some(MediaKind::Video | MediaKind::Screen) => self.video_packets += 1,
                    None => {}
                }
                let bytes = packet.header.header_len + packet.payload.len();
                self.upload_arrived(bytes, now, false);
            }
            // Whatever else the client sends (text on the control channel, a channel
            // closed early) changes nothing: the plan runs to its end regardless.
            _ => {}
        }
    }

    /// Advances the plan to `now`: phase changes, probes and the download's pace.
    pub(crate) fn handle_timeout(&mut self, rtc: &mut Rtc, now: Instant) {
        match self.phase {
            Phase::Opening if now >= self.created + OPEN_TIMEOUT => {
                self.finish(rtc, now, false);
                return;
            }
            Phase::Probing { until } if now >= until => self.start_download(rtc, now),
            Phase::Download { until, .. } if now >= until => {
                // The last round trip's worth of bytes is still unacknowledged: wait
                // for it, a little longer than one round trip, before counting.
                let rtt = self.median_rtt().unwrap_or(Duration::from_millis(100));
                let settle = (rtt * 2).clamp(Duration::from_millis(100), Duration::from_secs(1));
                self.phase = Phase::Settling {
                    until: now + settle,
                };
            }
            Phase::Download {
                start,
                until,
                next_write,
            } if now >= next_write => {
                self.pace_download(rtc, start, now);
                self.phase = Phase::Download {
                    start,
                    until,
                    next_write: now + PACE_TICK,
                };
            }
            Phase::Settling { until } if now >= until => {
                self.download_acked = self.acknowledged(rtc);
                self.phase = Phase::Upload {
                    asked: now,
                    until: None,
                };
                let message = format!(
                    r#"{{"phase":"upload","ms":{},"kbps":{}}}"#,
                    self.plan.upload.as_millis(),
                    self.plan.upload_bps / 1000
                );
                self.tell(rtc, &message);
            }
            Phase::Upload { asked, until: None } if now >= asked + UPLOAD_START_WAIT => {
                self.phase = Phase::Upload {
                    asked,
                    until: Some(now + self.plan.upload),
                };
            }
            Phase::Upload {
                until: Some(until), ..
            } if now >= until => {
                self.finish(rtc, now, true);
                return;
            }
            _ => {}
        }
        self.send_probe_if_due(rtc, now);
    }

    /// When [`LineTest::handle_timeout`] must next run.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        let phase = match self.phase {
            Phase::Opening => Some(self.created + OPEN_TIMEOUT),
            Phase::Probing { until } | Phase::Settling { until } => Some(until),
            Phase::Download {
                until, next_write, ..
            } => Some(until.min(next_write)),
            Phase::Upload { asked, until: None } => Some(asked + UPLOAD_START_WAIT),
            Phase::Upload {
                until: Some(until), ..
            } => Some(until),
            Phase::Done => None,
        };
        match (phase, self.next_probe) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The figures, once, when the test has ended.
    pub(crate) fn poll_report(&mut self) -> Option<LineTestReport> {
        self.report.take()
    }

    fn start(&mut self, rtc: &mut Rtc, now: Instant) {
        self.phase = Phase::Probing {
            until: now + self.plan.probe_phase,
        };
        self.next_probe = Some(now);
        let message = format!(
            r#"{{"phase":"probe","ms":{}}}"#,
            self.plan.probe_phase.as_millis()
        );
        self.tell(rtc, &message);
        self.send_probe_if_due(rtc, now);
    }

    fn start_download(&mut self, rtc: &mut Rtc, now: Instant) {
        self.phase = Phase::Download {
            start: now,
            until: now + self.plan.download,
            next_write: now,
        };
        let message = format!(
            r#"{{"phase":"download","ms":{},"kbps":{}}}"#,
            self.plan.download.as_millis(),
            self.plan.download_bps / 1000
        );
        self.tell(rtc, &message);
        self.pace_download(rtc, now, now);
    }

    /// Writes what the pace allows by `now`, as long as the backlog is short.
    fn pace_download(&mut self, rtc: &mut Rtc, start: Instant, now: Instant) {
        let Some(id) = self.bulk else {
            return;
        };
        let Some(mut channel) = rtc.channel(id) else {
            return;
        };
        let elapsed = now.saturating_duration_since(start).min(self.plan.download);
        let allowed = bytes_at(self.plan.download_bps, elapsed);
        let backlog = bytes_at(self.plan.download_bps, BACKLOG).max(4 * CHUNK_BYTES as u64);
        static CHUNK: [u8; CHUNK_BYTES] = [0; CHUNK_BYTES];
        while self.download_written + CHUNK_BYTES as u64 <= allowed
            && (channel.buffered_amount() as u64) < backlog
        {
            match channel.write(true, &CHUNK) {
                Ok(true) => self.download_written += CHUNK_BYTES as u64,
                // str0m's own send buffer is full: the line is slower than the pace.
                Ok(false) => break,
                Err(e) => {
                    tracing::debug!("line test: download write refused: {e}");
                    break;
                }
            }
        }
    }

    /// Download bytes the site has acknowledged so far.
    fn acknowledged(&mut self, rtc: &mut Rtc) -> u64 {
        let buffered = self
            .bulk
            .and_then(|id| rtc.channel(id))
            .map_or(0, |mut channel| channel.buffered_amount() as u64);
        self.download_written.saturating_sub(buffered)
    }

    /// Counts bytes from the site that arrive in the upload window. Only bulk bytes
    /// open the window: media flows all along, and opening on it would start the
    /// window before the client even heard it was time to upload.
    fn upload_arrived(&mut self, bytes: usize, now: Instant, opens_window: bool) {
        let Phase::Upload { asked, until } = self.phase else {
            return;
        };
        let until = match until {
            Some(until) => until,
            None if !opens_window => return,
            None => {
                let until = now + self.plan.upload;
                self.phase = Phase::Upload {
                    asked,
                    until: Some(until),
                };
                until
            }
        };
        if now < until {
            self.upload_bytes += bytes as u64;
        }
    }

    fn send_probe_if_due(&mut self, rtc: &mut Rtc, now: Instant) {
        let (Some(due), Some(id)) = (self.next_probe, self.probe) else {
            return;
        };
        if now < due || self.phase == Phase::Done {
            return;
        }
        // A late timer sends one probe, not a burst: bursts would measure themselves.
        let mut next = due + self.plan.probe_interval;
        while next <= now {
            next += self.plan.probe_interval;
        }
        self.next_probe = Some(next);
        let Ok(sequence) = u32::try_from(self.probes.len()) else {
            return;
        };
        let mut probe = [0u8; PROBE_BYTES];
        probe[..4].copy_from_slice(&sequence.to_be_bytes());
        // A probe str0m cannot take (its buffer full) counts as sent and lost: the line
        // is too busy to carry it, as it would be too busy for voice.
        if let Some(mut channel) = rtc.channel(id)
            && let Err(e) = channel.write(true, &probe)
        {
            tracing::debug!("line test: probe write refused: {e}");
        }
        self.probes.push(Probe {
            sent_at: now,
            rtt: None,
        });
    }

    /// An echo came back. Anything malformed, unknown or repeated is ignored.
    fn echo(&mut self, data: &[u8], now: Instant) {
        let Some(sequence) = data.get(..4).and_then(|b| <[u8; 4]>::try_from(b).ok()) else {
            return;
        };
        let sequence = u32::from_be_bytes(sequence) as usize;
        if let Some(probe) = self.probes.get_mut(sequence)
            && probe.rtt.is_none()
        {
            probe.rtt = Some(now.saturating_duration_since(probe.sent_at));
        }
    }

    fn median_rtt(&self) -> Option<Duration> {
        let mut rtts: Vec<Duration> = self.probes.iter().filter_map(|p| p.rtt).collect();
        if rtts.is_empty() {
            return None;
        }
        rtts.sort_unstable();
        Some(rtts[rtts.len() / 2])
    }

    fn finish(&mut self, rtc: &mut Rtc, now: Instant, completed: bool) {
        self.phase = Phase::Done;
        self.next_probe = None;
        self.tell(rtc, r#"{"phase":"done"}"#);
        let counted: Vec<&Probe> = self
            .probes
            .iter()
            .filter(|p| p.rtt.is_some() || p.sent_at + ECHO_GRACE <= now)
            .collect();
        let answered: Vec<Duration> = counted.iter().filter_map(|p| p.rtt).collect();
        let jitter = (answered.len() >= 2).then(|| {
            let total: Duration = answered
                .windows(2)
                .map(|pair| pair[0].abs_diff(pair[1]))
                .sum();
            total / (answered.len() as u32 - 1)
        });
        let loss =
            (!counted.is_empty()).then(|| 1.0 - answered.len() as f32 / counted.len() as f32);
        self.report = Some(LineTestReport {
            completed,
            rtt: self.median_rtt(),
            jitter,
            loss,
            probes_sent: counted.len() as u32,
            probes_answered: answered.len() as u32,
            download_bps: rate(self.download_acked, self.plan.download),
            upload_bps: rate(self.upload_bytes, self.plan.upload),
            audio_packets: self.audio_packets,
            video_packets: self.video_packets,
            duration: now.saturating_duration_since(self.created),
        });
    }

    /// Sends a phase message on the control channel.
    fn tell(&mut self, rtc: &mut Rtc, message: &str) {
        let Some(mut channel) = self.control.and_then(|id| rtc.channel(id)) else {
            return;
        };
        match channel.write(false, message.as_bytes()) {
            Ok(true) => {}
            Ok(false) => tracing::debug!("line test: control message dropped, buffer full"),
            Err(e) => tracing::debug!("line test: control write refused: {e}"),
        }
    }
}

/// Bytes sent at `bps` bits per second over `duration`.
fn bytes_at(bps: u64, duration: Duration) -> u64 {
    (bps as u128 * duration.as_micros() / 8_000_000) as u64
}

/// Bits per second for `bytes` over `duration`.
fn rate(bytes: u64, duration: Duration) -> u64 {
    let micros = duration.as_micros().max(1);
    (bytes as u128 * 8_000_000 / micros) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_and_paces_agree() {
        assert_eq!(bytes_at(540_000, Duration::from_secs(4)), 270_000);
        assert_eq!(rate(270_000, Duration::from_secs(4)), 540_000);
        assert_eq!(bytes_at(200_000, Duration::from_millis(500)), 12_500);
        assert_eq!(rate(0, Duration::ZERO), 0);
    }
}
