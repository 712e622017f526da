//! Per-peer line figures, gathered from str0m's statistics.
//!
//! str0m reports, once per stats interval, one `PeerStats` and then one
//! `MediaIngressStats` / `MediaEgressStats` per stream, all within the same drain of
//! the peer's outputs. [`LinkMeter`] collects one such batch and, when the drain ends,
//! gives a [`LineCheck`] (the loss towards the peer now, for the core's quick reaction
//! to a line that fills up) and, once per sample interval, a [`LinkSample`]: figures
//! over the interval since the previous one. With bandwidth estimation on, str0m's
//! batches come several times per sample (see `CHECKS_PER_SAMPLE` in `core.rs`).
//!
//! Counters in str0m's reports are totals since the connection began; a sample holds
//! their differences. Loss and jitter are the latest receiver-report values, which
//! already describe a recent window.

use std::time::{Duration, Instant};

use str0m::stats::{MediaEgressStats, MediaIngressStats, PeerStats};

use crate::MediaKind;

/// The line of one peer over one stats interval, in both directions. "In" is from the
/// peer to the SFU (its uplink), "out" from the SFU to the peer (its downlink).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LinkSample {
    /// The span these figures cover.
    pub interval: Duration,
    /// Round-trip time between the SFU and the peer: the least of the streams'
    /// receiver-report figures (a report held back by the peer only adds to them).
    pub rtt: Option<Duration>,
    /// Fraction (0..1) of the peer's packets lost on the way to the SFU during the
    /// interval, counted by the core from the gaps in what arrived: its audio's, which
    /// is never retransmitted and so shows the line's own loss, else its worst video
    /// stream's; failing both, the last receiver report's.
    pub loss_in: Option<f32>,
    /// Fraction (0..1) of the SFU's packets lost on the way to the peer: from
    /// transport-wide congestion control feedback when the peer gives it, which counts
    /// only packets the SFU actually sent; else from the peer's receiver reports, which
    /// also count packets lost before they reached the SFU (forwarded gaps).
    pub loss_out: Option<f32>,
    /// Interarrival jitter of the peer's streams at the SFU (the worst stream).
    pub jitter_in: Option<Duration>,
    /// Interarrival jitter the peer reports for the SFU's streams (the worst stream).
    pub jitter_out: Option<Duration>,
    /// Media bytes received from and sent to the peer during the interval.
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Of `bytes_in`, those of the peer's video.
    pub video_bytes_in: u64,
    /// Every byte received from the peer, media or not (RTCP, ICE, DTLS): zero means
    /// nothing at all arrived during the interval.
    pub transport_bytes_in: u64,
    /// RTP packets received from and sent to the peer during the interval.
    pub packets_in: u64,
    pub packets_out: u64,
    /// Retransmission requests the SFU sent the peer, and the peer sent the SFU.
    pub nacks_in: u64,
    pub nacks_out: u64,
    /// Keyframe requests (PLI and FIR) the SFU sent the peer, and the peer sent.
    pub keyframe_requests_in: u64,
    pub keyframe_requests_out: u64,
    /// The SFU's estimate of the bandwidth towards the peer, bit/s, when known.
    pub bandwidth_out: Option<u64>,
}

/// Totals since the connection began, kept to take differences.
#[derive(Debug, Clone, Copy, Default)]
struct Totals {
    bytes_in: u64,
    bytes_out: u64,
    video_bytes_in: u64,
    transport_bytes_in: u64,
    packets_in: u64,
    packets_out: u64,
    nacks_in: u64,
    nacks_out: u64,
    keyframe_requests_in: u64,
    keyframe_requests_out: u64,
}

/// The line towards a peer as one batch of str0m statistics shows it: what the core
/// checks for a line that fills up, more often than samples are taken.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct LineCheck {
    pub at: Instant,
    /// Fraction (0..1) lost towards the peer lately, as in [`LinkSample::loss_out`]:
    /// transport-wide feedback covers the last second whenever it is read.
    pub loss_out: Option<f32>,
    /// Every byte sent to the peer since the connection began.
    pub bytes_out_total: u64,
}

/// Collects batches of str0m statistics; yields a check per batch and a sample per
/// sample interval.
#[derive(Debug)]
pub(crate) struct LinkMeter {
    /// How often a sample is taken.
    every: Duration,
    previous: Totals,
    previous_at: Option<Instant>,
    /// The latest batch: str0m's figures are totals, so the latest batch is all a
    /// sample needs.
    batch: Option<Batch>,
    /// A batch arrived since the last [`LinkMeter::finish`].
    fresh: bool,
}

#[derive(Debug, Default)]
struct Batch {
    at: Option<Instant>,
    totals: Totals,
    rtt: Option<Duration>,
    bandwidth_out: Option<u64>,
    loss_in: Option<f32>,
    loss_out: WeightedMean,
    twcc_loss_out: Option<f32>,
    jitter_in: Option<Duration>,
    jitter_out: Option<Duration>,
    rtt_streams: Option<Duration>,
}

/// A mean of per-stream loss fractions, weighted by each stream's packets so that a
/// video stream's loss counts for more than a quiet audio stream's.
#[derive(Debug, Default)]
struct WeightedMean {
    sum: f64,
    weight: f64,
}

impl WeightedMean {
    fn add(&mut self, value: f32, weight: u64) {
        // A stream that sent nothing this interval still counts a little, so a
        // fraction reported for it is not lost entirely.
        let weight = weight.max(1) as f64;
        self.sum += f64::from(value) * weight;
        self.weight += weight;
    }

    fn mean(&self) -> Option<f32> {
        (self.weight > 0.0).then(|| (self.sum / self.weight).clamp(0.0, 1.0) as f32)
    }
}

impl LinkMeter {
    /// A meter that takes a sample every `every`.
    pub(crate) fn new(every: Duration) -> LinkMeter {
        LinkMeter {
            every,
            previous: Totals::default(),
            previous_at: None,
            batch: None,
            fresh: false,
        }
    }

    /// The first report of a batch: a batch replaces the one before.
    pub(crate) fn peer_stats(&mut self, stats: &PeerStats) {
        self.fresh = true;
        let batch = self.batch.insert(Batch::default());
        batch.at = Some(stats.timestamp);
        batch.totals.bytes_in = stats.bytes_rx;
        batch.totals.bytes_out = stats.bytes_tx;
        batch.totals.transport_bytes_in = stats.peer_bytes_rx;
        batch.rtt = stats.rtt;
        batch.bandwidth_out = stats.bwe_tx.map(|b| b.as_u64());
        batch.twcc_loss_out = stats.egress_loss_fraction;
    }

    pub(crate) fn ingress(&mut self, stats: &MediaIngressStats, kind: Option<MediaKind>) {
        self.fresh = true;
        let batch = self.batch.get_or_insert_with(Batch::default);
        let t = &mut batch.totals;
        t.packets_in += stats.packets;
        if kind.is_some_and(MediaKind::is_video) {
            t.video_bytes_in += stats.bytes;
        }
        t.nacks_in += stats.nacks;
        t.keyframe_requests_in += stats.plis + stats.firs;
        if let Some(loss) = stats.loss {
            batch.loss_in = Some(batch.loss_in.map_or(loss, |l| l.max(loss)));
        }
        if let Some(kind) = kind {
            let jitter = rtp_units_to_duration(stats.jitter, kind);
            batch.jitter_in = Some(batch.jitter_in.map_or(jitter, |j| j.max(jitter)));
        }
        if let Some(rtt) = stats.rtt {
            batch.rtt_streams = Some(batch.rtt_streams.map_or(rtt, |r| r.min(rtt)));
        }
    }

    pub(crate) fn egress(&mut self, stats: &MediaEgressStats, kind: Option<MediaKind>) {
        self.fresh = true;
        let batch = self.batch.get_or_insert_with(Batch::default);
        let t = &mut batch.totals;
        t.packets_out += stats.packets;
        t.nacks_out += stats.nacks;
        t.keyframe_requests_out += stats.plis + stats.firs;
        if let Some(loss) = stats.loss {
            batch.loss_out.add(loss, stats.packets);
        }
        if let (Some(remote), Some(kind)) = (&stats.remote, kind) {
            let jitter = rtp_units_to_duration(remote.jitter, kind);
            batch.jitter_out = Some(batch.jitter_out.map_or(jitter, |j| j.max(jitter)));
        }
        if let Some(rtt) = stats.rtt {
            batch.rtt_streams = Some(batch.rtt_streams.map_or(rtt, |r| r.min(rtt)));
        }
    }

    /// Ends the current batch, if one arrived: its check, and the sample, if one is
    /// due.
    pub(crate) fn finish(&mut self) -> Option<(LineCheck, Option<LinkSample>)> {
        if !std::mem::take(&mut self.fresh) {
            return None;
        }
        let batch = self.batch.as_ref()?;
        let at = batch.at?;
        let check = LineCheck {
            at,
            loss_out: batch.twcc_loss_out.or_else(|| batch.loss_out.mean()),
            bytes_out_total: batch.totals.bytes_out,
        };
        // str0m's timer drifts a little: a sample is due slightly early rather than a
        // whole batch late.
        let due = self.previous_at.is_none_or(|previous| {
            at.saturating_duration_since(previous) + self.every / 8 >= self.every
        });
        Some((check, if due { self.sample() } else { None }))
    }

    /// Turns the latest batch into a sample over the interval since the previous one.
    fn sample(&mut self) -> Option<LinkSample> {
        let batch = self.batch.take()?;
        let at = batch.at?;
        let previous_at = self.previous_at.replace(at);
        let (p, t) = (self.previous, batch.totals);
        // Streams that ended take their totals with them, so a total can shrink:
        // saturate rather than report a wrapped difference.
        let sample = LinkSample {
            interval: previous_at.map_or(Duration::ZERO, |p| at.saturating_duration_since(p)),
            rtt: batch.rtt_streams.or(batch.rtt),
            loss_in: batch.loss_in.map(|l| l.clamp(0.0, 1.0)),
            loss_out: batch.twcc_loss_out.or_else(|| batch.loss_out.mean()),
            jitter_in: batch.jitter_in,
            jitter_out: batch.jitter_out,
            bytes_in: t.bytes_in.saturating_sub(p.bytes_in),
            bytes_out: t.bytes_out.saturating_sub(p.bytes_out),
            video_bytes_in: t.video_bytes_in.saturating_sub(p.video_bytes_in),
            transport_bytes_in: t.transport_bytes_in.saturating_sub(p.transport_bytes_in),
            packets_in: t.packets_in.saturating_sub(p.packets_in),
            packets_out: t.packets_out.saturating_sub(p.packets_out),
            nacks_in: t.nacks_in.saturating_sub(p.nacks_in),
            nacks_out: t.nacks_out.saturating_sub(p.nacks_out),
            keyframe_requests_in: t
                .keyframe_requests_in
                .saturating_sub(p.keyframe_requests_in),
            keyframe_requests_out: t
                .keyframe_requests_out
                .saturating_sub(p.keyframe_requests_out),
            bandwidth_out: batch.bandwidth_out,
        };
        self.previous = t;
        // The first batch only sets the baseline: its differences would be totals.
        previous_at.map(|_| sample)
    }
}

/// RTP timestamp units to time, by the clock rate WebRTC uses for each kind
/// (Opus 48 kHz, video 90 kHz).
fn rtp_units_to_duration(units: u32, kind: MediaKind) -> Duration {
    let rate = match kind {
        MediaKind::Audio => 48_000,
        MediaKind::Video | MediaKind::Screen => 90_000,
    };
    Duration::from_micros(u64::from(units) * 1_000_000 / rate)
}

/// Counts one incoming stream's packets, to measure the uplink's loss over exactly an
/// interval: each reader of it (the line sample, the round of layers) keeps an
/// [`ArrivalsMark`] of where its last interval ended. Receiver reports cannot: str0m
/// sends them for audio only every 5 s, and a retransmitted video packet counts in them
/// as received. Audio is never retransmitted, so its gaps here are the line's own loss.
#[derive(Debug, Default)]
pub(crate) struct Arrivals {
    /// The first extended sequence number seen, and the highest.
    first: Option<u64>,
    highest: Option<u64>,
    /// Packets received in all.
    received: u64,
}

/// Where one reader's last interval of an [`Arrivals`] ended.
#[derive(Debug, Default)]
pub(crate) struct ArrivalsMark {
    /// The sequence number the next interval starts after, and the packets received
    /// in all by then.
    start_after: Option<u64>,
    received: u64,
}

impl Arrivals {
    /// Counts a packet; returns whether it is new, beyond every one seen before, and
    /// not a resend or a late arrival of one the sender moved on from.
    pub(crate) fn packet(&mut self, seq: u64) -> bool {
        self.received += 1;
        self.first.get_or_insert(seq);
        let new = self.highest.is_none_or(|h| seq > h);
        if new {
            self.highest = Some(seq);
        }
        new
    }

    /// The fraction lost since `mark`, if any packet was expected; moves `mark` on. A
    /// late packet from an earlier interval counts as received now, so a fraction errs
    /// low, never high.
    pub(crate) fn take_loss(&self, mark: &mut ArrivalsMark) -> Option<f32> {
        let (expected, lost) = self.take_counts(mark)?;
        (expected > 0).then(|| lost as f32 / expected as f32)
    }

    /// The packets expected since `mark` and how many of them were lost; moves `mark`
    /// on. `None` before the first packet.
    pub(crate) fn take_counts(&self, mark: &mut ArrivalsMark) -> Option<(u64, u64)> {
        let highest = self.highest?;
        // A reader's first interval starts just before the first packet ever.
        let start_after = mark
            .start_after
            .or_else(|| self.first.map(|first| first.saturating_sub(1)))?;
        let expected = highest.saturating_sub(start_after);
        let received = self.received.saturating_sub(mark.received);
        mark.start_after = Some(highest);
        mark.received = self.received;
        Some((expected, expected.saturating_sub(received)))
    }
}

#[cfg(test)]
mod tests {
    use super::{Arrivals, ArrivalsMark};

    #[test]
    fn a_resend_counts_as_received_but_not_as_new() {
        let mut arrivals = Arrivals::default();
        let mut mark = ArrivalsMark::default();
        assert!(arrivals.packet(10));
        assert!(arrivals.packet(11));
        // 12 and 13 lost on the line; 14 comes, then 12 resent, and 13 never.
        assert!(arrivals.packet(14));
        assert!(!arrivals.packet(12));
        assert_eq!(arrivals.take_counts(&mut mark), Some((5, 1)));
        // The next interval starts after 14: a late 13 counts as received in it, so
        // its loss errs low.
        assert!(!arrivals.packet(13));
        assert!(arrivals.packet(15));
        assert_eq!(arrivals.take_counts(&mut mark), Some((1, 0)));
        // Nothing expected since: no fraction to give.
        assert_eq!(arrivals.take_loss(&mut mark), None);
    }

    #[test]
    fn each_reader_counts_its_own_intervals() {
        let mut arrivals = Arrivals::default();
        let (mut often, mut seldom) = (ArrivalsMark::default(), ArrivalsMark::default());
        for seq in [100, 101, 103] {
            arrivals.packet(seq);
        }
        assert_eq!(arrivals.take_counts(&mut often), Some((4, 1)));
        for seq in [104, 107] {
            arrivals.packet(seq);
        }
        assert_eq!(arrivals.take_counts(&mut often), Some((4, 2)));
        // The other reader's first interval runs from before the first packet.
        assert_eq!(arrivals.take_counts(&mut seldom), Some((8, 3)));
        assert_eq!(arrivals.take_loss(&mut seldom), None);
    }
}
