//! The figures a run reports, computed from what publishers sent and receivers tallied.

use cau_tests::client::MediaKind;
use serde::Serialize;

use crate::media::{LayerCounters, Receiver, SendCounters, StreamKey};
use crate::scenario::Expectation;

/// Percentiles of a set of durations, in milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Percentiles {
    pub samples: usize,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Percentiles {
    /// From microseconds; sorts them.
    pub fn of_us(values: &mut [u32]) -> Percentiles {
        values.sort_unstable();
        let at = |q: f64| -> f64 {
            if values.is_empty() {
                return f64::NAN;
            }
            let index = ((values.len() - 1) as f64 * q).round() as usize;
            f64::from(values[index]) / 1000.0
        };
        Percentiles {
            samples: values.len(),
            p50_ms: at(0.50),
            p90_ms: at(0.90),
            p99_ms: at(0.99),
            max_ms: at(1.0),
        }
    }

    /// From milliseconds.
    pub fn of_ms(values: &[f64]) -> Percentiles {
        let mut us: Vec<u32> = values.iter().map(|ms| (ms * 1000.0) as u32).collect();
        Percentiles::of_us(&mut us)
    }
}

/// What arrived of what was expected, over the measured window.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Delivery {
    /// Packets that should have arrived: for each expected stream, what its publisher sent.
    pub expected_packets: u64,
    /// Distinct packets that arrived on expected streams.
    pub received_packets: u64,
    pub loss_percent: f64,
    pub duplicates: u64,
    /// Packets on streams the scenario says the receiver must not get.
    pub unexpected_packets: u64,
    pub video_frames_expected: u64,
    pub video_frames_complete: u64,
    /// Mean of the streams' RFC 3550 jitter.
    pub jitter_ms_mean: f64,
    /// End to end: handed to the publisher's RTP stack to delivered by the receiver's.
    pub latency: Percentiles,
    /// The same, of audio packets alone.
    pub audio_latency: Percentiles,
    /// Expected streams of which not one packet arrived in the window.
    pub silent_streams: usize,
}

/// Compares what each receiver got with what the expected publishers sent in the window.
/// `receivers[i]` is site i's; `senders[j]` publisher j's.
pub fn delivery(
    expected: &[Expectation],
    receivers: &[&Receiver],
    senders: &[&SendCounters],
) -> Delivery {
    let mut delivery = Delivery::default();
    let mut latencies = Vec::new();
    let mut audio_latencies = Vec::new();
    let mut jitters = Vec::new();
    for (index, receiver) in receivers.iter().enumerate() {
        // Only the receivers `expected` speaks of: a caller may ask about some of them.
        if !expected.iter().any(|e| e.receiver == index) {
            continue;
        }
        let reception = receiver.lock();
        latencies.extend_from_slice(&reception.latencies_us);
        audio_latencies.extend_from_slice(&reception.audio_latencies_us);
        for (key, stream) in &reception.streams {
            let wanted = expected.iter().any(|e| {
                e.receiver == index
                    && e.publisher == usize::from(key.publisher)
                    && e.kind == key.kind
            });
            if !wanted {
                delivery.unexpected_packets += stream.received;
            }
        }
        for e in expected.iter().filter(|e| e.receiver == index) {
            let Some(sender) = senders.get(e.publisher) else {
                continue;
            };
            // The layers of the stream that arrived in the window: one, unless the server
            // switched the receiver's layer in the window. Each counts against what its
            // publisher sent of it; a switch inside the window so reads as loss.
            let arrived: Vec<(&StreamKey, &crate::media::StreamReception)> = reception
                .streams
                .iter()
                .filter(|(key, stream)| {
                    usize::from(key.publisher) == e.publisher
                        && key.kind == e.kind
                        && stream.received > 0
                })
                .collect();
            let mut expect_layer = |layer: u8| {
                if let Some(counters) = sender.layer(layer) {
                    delivery.expected_packets += LayerCounters::load(&counters.packets);
                    delivery.video_frames_expected += LayerCounters::load(&counters.frames);
                }
            };
            match e.kind {
                MediaKind::Audio => delivery.expected_packets += sender.audio_in_window(),
                // Nothing arrived: held against the lowest layer, which always flows to
                // a subscriber.
                MediaKind::Video if arrived.is_empty() => expect_layer(0),
                MediaKind::Video => arrived.iter().for_each(|(key, _)| expect_layer(key.layer)),
            }
            if arrived.is_empty() {
                delivery.silent_streams += 1;
            }
            for (_, stream) in arrived {
                delivery.received_packets += stream.received;
                delivery.duplicates += stream.duplicates;
                delivery.video_frames_complete += stream.complete_frames();
                jitters.push(stream.jitter_ns / 1e6);
            }
        }
    }
    delivery.loss_percent = if delivery.expected_packets == 0 {
        100.0
    } else {
        (1.0 - delivery.received_packets as f64 / delivery.expected_packets as f64) * 100.0
    };
    delivery.jitter_ms_mean = if jitters.is_empty() {
        f64::NAN
    } else {
        jitters.iter().sum::<f64>() / jitters.len() as f64
    };
    delivery.latency = Percentiles::of_us(&mut latencies);
    delivery.audio_latency = Percentiles::of_us(&mut audio_latencies);
    delivery
}

/// The server's cost over the measured window.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ServerCost {
    pub window_s: f64,
    pub cpu_s: f64,
    /// CPU seconds per wall second: 1.0 is one core busy.
    pub cores: f64,
    pub packets_forwarded: u64,
    pub forwarded_per_s: f64,
    /// Server CPU per forwarded packet, in microseconds (×1000: per 1,000 packets).
    pub cpu_us_per_forwarded: f64,
    pub cpu_ms_per_1000_forwarded: f64,
    /// Video down-tracks of 500 kbit/s one core would carry at this cost per packet.
    pub video_down_tracks_per_core: f64,
    pub rss_idle_kib: u64,
    pub rss_loaded_kib: u64,
    pub rss_mib_per_site: f64,
}

impl ServerCost {
    pub fn new(
        before: &crate::server::Reading,
        after: &crate::server::Reading,
        video_packets_per_down_track: f64,
    ) -> ServerCost {
        let window_s = after.at.duration_since(before.at).as_secs_f64();
        let cpu_s = after.cpu_s - before.cpu_s;
        let packets_forwarded = after.forwarded.saturating_sub(before.forwarded);
        let per_packet_s = cpu_s / packets_forwarded.max(1) as f64;
        ServerCost {
            window_s,
            cpu_s,
            cores: cpu_s / window_s,
            packets_forwarded,
            forwarded_per_s: packets_forwarded as f64 / window_s,
            cpu_us_per_forwarded: per_packet_s * 1e6,
            cpu_ms_per_1000_forwarded: per_packet_s * 1e6,
            video_down_tracks_per_core: 1.0 / (per_packet_s * video_packets_per_down_track),
            ..ServerCost::default()
        }
    }

    pub fn with_rss(mut self, idle_kib: u64, loaded_kib: u64, sites: usize) -> ServerCost {
        self.rss_idle_kib = idle_kib;
        self.rss_loaded_kib = loaded_kib;
        self.rss_mib_per_site = loaded_kib.saturating_sub(idle_kib) as f64 / 1024.0 / sites as f64;
        self
    }
}

/// Rounds for JSON and summaries: figures to three significant decimals are enough.
pub fn round3(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_pick_the_nearest_rank() {
        let mut values: Vec<u32> = (1..=100).map(|v| v * 1000).collect();
        let p = Percentiles::of_us(&mut values);
        assert_eq!(p.samples, 100);
        assert_eq!(p.p50_ms, 51.0);
        assert_eq!(p.p99_ms, 99.0);
        assert_eq!(p.max_ms, 100.0);
        assert!(Percentiles::of_us(&mut []).p50_ms.is_nan());
    }
}
