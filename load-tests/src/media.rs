//! Synthetic media: what publishers send, and what receivers make of what arrives.
//!
//! Every payload ends with a [`Stamp`]: who sent it, which stream and layer, its sequence
//! number in that stream, its frame, and the send time on this process's clock. Publishers
//! and receivers live in one process, so a receiver computes end-to-end latency, loss,
//! jitter and complete frames from the stamp alone, whatever the server did to the RTP
//! header on the way.
//!
//! Audio is Opus-sized: one packet of [`AUDIO_PAYLOAD_BYTES`] every 20 ms. Video follows
//! an encoder's shape: frames at a steady rate whose sizes add up to the layer's bitrate,
//! a keyframe every [`VideoPlan::keyframe_every`] frames that is [`VideoPlan::keyframe_factor`]
//! times a delta frame, each frame split into packets of at most [`MAX_PACKET_BYTES`], the
//! marker bit on its last packet, and a VP8 payload descriptor and frame header in front,
//! so that a server which looks for keyframes finds them.
//!
//! With three layers ([`SIMULCAST_LAYERS`]) a publisher sends every layer's frames on its
//! RID, as a browser's simulcast encoder does, and stops a layer while the server has it
//! paused (`publish_layers`); a layer that resumes starts with a keyframe, as an encoder's
//! does. [`SendCounters`] keeps, per layer, what was sent and what would have been sent
//! without pausing: the uplink the pausing saves.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::bail;
use cau_tests::client::{LayerSend, MediaKind, PacketSink, TestClient};

/// Every time in a stamp is nanoseconds since this instant, the first use of the clock.
static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

/// Nanoseconds on the process's monotonic clock that stamps use.
pub fn now_ns() -> u64 {
    EPOCH.elapsed().as_nanos() as u64
}

/// An Opus packet of 20 ms at about 32 kbit/s with headers.
pub const AUDIO_PAYLOAD_BYTES: usize = 100;

/// The largest RTP payload a publisher sends, as browsers keep packets under the MTU.
pub const MAX_PACKET_BYTES: usize = 1200;

/// Audio packets and video frames are sent on a 20 ms tick; video on every other one.
pub const TICK: Duration = Duration::from_millis(20);

/// One video layer as a simulcast encoder sends it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VideoLayer {
    pub name: &'static str,
    pub kbps: u32,
    /// The picture height its keyframes declare: the server matches it with the height
    /// a subscriber shows the video at.
    pub height: u16,
}

/// The three layers a browser sends with simulcast: thumbnail, main, full screen.
pub const SIMULCAST_LAYERS: [VideoLayer; 3] = [
    VideoLayer {
        name: "low",
        kbps: 150,
        height: 180,
    },
    VideoLayer {
        name: "middle",
        kbps: 500,
        height: 360,
    },
    VideoLayer {
        name: "high",
        kbps: 1500,
        height: 720,
    },
];

/// The layers a publisher sends for `--layers N`: one, the 500 kbit/s middle layer sent
/// to everyone, or the three of a browser's simulcast, sent on RIDs `l`, `m` and `h`, of
/// which the server picks one per subscriber and pauses those no one wants.
pub fn layers(count: u8) -> anyhow::Result<Vec<VideoLayer>> {
    match count {
        1 => Ok(vec![SIMULCAST_LAYERS[1]]),
        3 => Ok(SIMULCAST_LAYERS.to_vec()),
        other => bail!("--layers takes 1 or 3, not {other}"),
    }
}

/// What every publisher sends.
#[derive(Debug, Clone)]
pub struct MediaPlan {
    pub audio: bool,
    pub video: Vec<VideoLayer>,
    pub video_plan: VideoPlan,
}

impl MediaPlan {
    /// Audio and the given video layers, at 25 frames a second, a keyframe every 2 s.
    pub fn new(layers: Vec<VideoLayer>) -> MediaPlan {
        MediaPlan {
            audio: true,
            video: layers,
            video_plan: VideoPlan::default(),
        }
    }
}

/// How video frames are shaped.
#[derive(Debug, Clone, Copy)]
pub struct VideoPlan {
    /// One frame every this many 20 ms ticks: 2 is 25 frames a second.
    pub ticks_per_frame: u32,
    /// A keyframe every this many frames.
    pub keyframe_every: u32,
    /// A keyframe is this many times the size of a delta frame.
    pub keyframe_factor: u32,
}

impl Default for VideoPlan {
    fn default() -> Self {
        VideoPlan {
            ticks_per_frame: 2,
            keyframe_every: 50,
            keyframe_factor: 8,
        }
    }
}

impl VideoPlan {
    pub fn fps(&self) -> f64 {
        1.0 / (TICK.as_secs_f64() * f64::from(self.ticks_per_frame))
    }

    /// Frame `frame` of `layer`: whether it is a keyframe, and its size in bytes. Over one
    /// keyframe interval the sizes add up to the layer's bitrate; delta frames vary by up
    /// to ±25%, as an encoder's do with the picture.
    pub fn frame(&self, layer: VideoLayer, frame: u32) -> (bool, usize) {
        let average = f64::from(layer.kbps) * 1000.0 / 8.0 / self.fps();
        let n = f64::from(self.keyframe_every);
        let delta = average * n / (n - 1.0 + f64::from(self.keyframe_factor));
        let keyframe = frame.is_multiple_of(self.keyframe_every);
        if keyframe {
            return (true, self.keyframe_size(layer));
        }
        // A cheap deterministic wobble in [-0.25, 0.25).
        let wobble = (frame.wrapping_mul(2_654_435_761) >> 16) as f64 / 65_536.0 / 2.0 - 0.25;
        (false, (delta * (1.0 + wobble)) as usize)
    }

    /// The size of a keyframe of `layer`, in bytes: at the interval's start, or when an
    /// encoder resumes a paused layer.
    pub fn keyframe_size(&self, layer: VideoLayer) -> usize {
        let average = f64::from(layer.kbps) * 1000.0 / 8.0 / self.fps();
        let n = f64::from(self.keyframe_every);
        let delta = average * n / (n - 1.0 + f64::from(self.keyframe_factor));
        (delta * f64::from(self.keyframe_factor)) as usize
    }

    /// Packets per second one subscriber of `layer` receives on average.
    pub fn packets_per_second(&self, layer: VideoLayer) -> f64 {
        let frames = self.keyframe_every;
        let packets: usize = (0..frames)
            .map(|f| {
                let (keyframe, size) = self.frame(layer, f);
                video_payloads(layer, size, keyframe).len()
            })
            .sum();
        packets as f64 / f64::from(frames) * self.fps()
    }
}

/// The bytes a [`Stamp`] takes at the end of each payload.
pub const STAMP_BYTES: usize = 32;

const MAGIC: [u8; 4] = *b"CAU1";

/// What every payload says about itself, in its last [`STAMP_BYTES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// The publishing site's index in its scenario.
    pub publisher: u16,
    pub kind: MediaKind,
    /// The video layer's index (0 for audio).
    pub layer: u8,
    pub keyframe: bool,
    /// The packet's number in its stream (publisher, kind, layer), from 0.
    pub sequence: u32,
    /// The video frame it belongs to (audio: equal to `sequence`).
    pub frame: u32,
    pub packet_in_frame: u16,
    pub packets_in_frame: u16,
    /// When it was handed to the client's RTP stack, by [`now_ns`].
    pub sent_ns: u64,
}

impl Stamp {
    fn write(&self, out: &mut [u8; STAMP_BYTES]) {
        out[0..4].copy_from_slice(&MAGIC);
        out[4..6].copy_from_slice(&self.publisher.to_be_bytes());
        out[6] = match self.kind {
            MediaKind::Audio => 0,
            MediaKind::Video => 1,
        };
        out[7] = self.layer;
        out[8] = u8::from(self.keyframe);
        out[9] = 0;
        out[10..14].copy_from_slice(&self.sequence.to_be_bytes());
        out[14..18].copy_from_slice(&self.frame.to_be_bytes());
        out[18..20].copy_from_slice(&self.packet_in_frame.to_be_bytes());
        out[20..22].copy_from_slice(&self.packets_in_frame.to_be_bytes());
        out[22..30].copy_from_slice(&self.sent_ns.to_be_bytes());
        out[30..32].copy_from_slice(&[0, 0]);
    }

    /// The stamp at the end of `payload`, or `None` if it has none.
    pub fn read(payload: &[u8]) -> Option<Stamp> {
        let at = payload.len().checked_sub(STAMP_BYTES)?;
        let s = &payload[at..];
        if s[0..4] != MAGIC {
            return None;
        }
        let u16_at = |i: usize| u16::from_be_bytes([s[i], s[i + 1]]);
        let u32_at = |i: usize| u32::from_be_bytes([s[i], s[i + 1], s[i + 2], s[i + 3]]);
        let mut sent = [0u8; 8];
        sent.copy_from_slice(&s[22..30]);
        Some(Stamp {
            publisher: u16_at(4),
            kind: match s[6] {
                0 => MediaKind::Audio,
                1 => MediaKind::Video,
                _ => return None,
            },
            layer: s[7],
            keyframe: s[8] == 1,
            sequence: u32_at(10),
            frame: u32_at(14),
            packet_in_frame: u16_at(18),
            packets_in_frame: u16_at(20),
            sent_ns: u64::from_be_bytes(sent),
        })
    }
}

/// The start of a VP8 keyframe (RFC 6386 §9.1): frame tag, start code, then the width and
/// height (16 bits each, little-endian) of a 16:9 picture `height` tall.
fn vp8_keyframe_header(height: u16) -> [u8; 10] {
    let width = (u32::from(height) * 16 / 9) as u16;
    let [w0, w1] = width.to_le_bytes();
    let [h0, h1] = height.to_le_bytes();
    [0x10, 0x00, 0x00, 0x9d, 0x01, 0x2a, w0, w1, h0, h1]
}

/// The bytes of a VP8 keyframe header.
const VP8_KEYFRAME_HEADER_BYTES: usize = 10;
/// The frame tag of a delta frame: bit 0 set means "not a keyframe".
const VP8_DELTA_HEADER: [u8; 3] = [0x11, 0x00, 0x00];

/// The payloads of one video frame: a VP8 payload descriptor (S bit on the first packet),
/// the frame header on the first, filler, and each packet's stamp, whose send time is
/// filled in just before sending. `size` is the frame's size in bytes.
fn video_payloads(layer: VideoLayer, size: usize, keyframe: bool) -> Vec<Vec<u8>> {
    let room = MAX_PACKET_BYTES - STAMP_BYTES - 1 - VP8_KEYFRAME_HEADER_BYTES;
    let count = size.div_ceil(room).max(1);
    let per_packet = size / count;
    (0..count)
        .map(|index| {
            let mut payload = Vec::with_capacity(MAX_PACKET_BYTES);
            payload.push(if index == 0 { 0x10 } else { 0x00 });
            if index == 0 {
                if keyframe {
                    payload.extend_from_slice(&vp8_keyframe_header(layer.height));
                } else {
                    payload.extend_from_slice(&VP8_DELTA_HEADER);
                }
            }
            let filler = per_packet.saturating_sub(payload.len()).max(1);
            payload.resize(payload.len() + filler, 0x5a);
            payload.extend_from_slice(&[0; STAMP_BYTES]);
            payload
        })
        .collect()
}

/// Writes `stamp` into the last bytes of `payload`.
fn stamp(payload: &mut [u8], stamp: &Stamp) {
    let at = payload.len() - STAMP_BYTES;
    let mut bytes = [0u8; STAMP_BYTES];
    stamp.write(&mut bytes);
    payload[at..].copy_from_slice(&bytes);
}

/// Something that sends RTP payloads: a Cầu [`TestClient`], a direct peer connection, or
/// (for the Janus comparison) a client of another server. Each call sends one packet
/// with the next sequence number of that track.
pub trait MediaOutput: Send + Sync {
    fn send_audio(&self, payload: &[u8]) -> impl Future<Output = anyhow::Result<()>> + Send;
    /// `layer` indexes [`MediaPlan::video`]. A layer the server paused is not sent.
    fn send_video(
        &self,
        layer: u8,
        payload: &[u8],
        marker: bool,
    ) -> impl Future<Output = anyhow::Result<LayerSend>> + Send;
    /// Whether `layer` is being sent: false while the server has it paused.
    fn layer_active(&self, _layer: u8) -> bool {
        true
    }
}

impl MediaOutput for TestClient {
    async fn send_audio(&self, payload: &[u8]) -> anyhow::Result<()> {
        TestClient::send_audio(self, payload).await
    }

    async fn send_video(
        &self,
        layer: u8,
        payload: &[u8],
        marker: bool,
    ) -> anyhow::Result<LayerSend> {
        TestClient::send_video_layer(self, usize::from(layer), payload, marker).await
    }

    fn layer_active(&self, layer: u8) -> bool {
        TestClient::video_layer_active(self, usize::from(layer))
    }
}

/// The measured window, by send time: packets stamped inside it count, others do not,
/// for publishers and receivers alike, so both sides count the same packets.
#[derive(Debug)]
pub struct Window {
    start_ns: AtomicU64,
    end_ns: AtomicU64,
}

impl Default for Window {
    fn default() -> Self {
        Window {
            start_ns: AtomicU64::new(u64::MAX),
            end_ns: AtomicU64::new(u64::MAX),
        }
    }
}

impl Window {
    /// Opens the window now; a window may be opened again after closing (the ramp
    /// measures one per step).
    pub fn open(&self) {
        // The start first: until the end is cleared, the window is empty.
        self.start_ns.store(now_ns(), Ordering::SeqCst);
        self.end_ns.store(u64::MAX, Ordering::SeqCst);
    }

    pub fn close(&self) {
        self.end_ns.store(now_ns(), Ordering::SeqCst);
    }

    pub fn contains(&self, sent_ns: u64) -> bool {
        sent_ns >= self.start_ns.load(Ordering::SeqCst)
            && sent_ns < self.end_ns.load(Ordering::SeqCst)
    }
}

/// What one publisher sent: in the window (to compare with what arrived) and in all.
#[derive(Debug, Default)]
pub struct SendCounters {
    pub audio_in_window: AtomicU64,
    /// Per video layer, by index in [`MediaPlan::video`].
    pub layers: [LayerCounters; SIMULCAST_LAYERS.len()],
    pub packets_total: AtomicU64,
    /// Sends the client refused (its stack closed, say).
    pub errors: AtomicU64,
    /// Ticks that came late by more than a tick: the load generator falling behind.
    pub late_ticks: AtomicU64,
}

impl SendCounters {
    /// Forgets the window's counts, before the window opens again.
    pub fn reset(&self) {
        self.audio_in_window.store(0, Ordering::Relaxed);
        for layer in &self.layers {
            layer.reset();
        }
    }

    /// Audio packets sent in the window.
    pub fn audio_in_window(&self) -> u64 {
        self.audio_in_window.load(Ordering::Relaxed)
    }

    /// The window's counts of video layer `layer`; a layer past the plan's counts nothing.
    pub fn layer(&self, layer: u8) -> Option<&LayerCounters> {
        self.layers.get(usize::from(layer))
    }
}

/// What one publisher sent of one video layer in the window, and what it would have sent
/// had the server never paused the layer.
#[derive(Debug, Default)]
pub struct LayerCounters {
    pub packets: AtomicU64,
    /// RTP payload bytes (VP8 descriptor, frame, stamp), as for every figure here.
    pub bytes: AtomicU64,
    /// Frames whose first packet was sent in the window.
    pub frames: AtomicU64,
    /// Packets and bytes of every frame of the layer in the window, sent or held back
    /// while paused: the layer's uplink without pausing.
    pub planned_packets: AtomicU64,
    pub planned_bytes: AtomicU64,
}

impl LayerCounters {
    fn reset(&self) {
        for counter in [
            &self.packets,
            &self.bytes,
            &self.frames,
            &self.planned_packets,
            &self.planned_bytes,
        ] {
            counter.store(0, Ordering::Relaxed);
        }
    }

    pub fn load(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// Sends `plan`'s media as publisher `index` through `output` until `until`: audio every
/// 20 ms, a video frame of each layer every [`VideoPlan::ticks_per_frame`] ticks. The
/// first tick waits `phase`, so that publishers started together do not all send at once.
pub async fn publish<O: MediaOutput>(
    output: &O,
    index: u16,
    plan: &MediaPlan,
    window: &Window,
    counters: &SendCounters,
    phase: Duration,
    until: Instant,
) {
    let start = tokio::time::Instant::now() + phase;
    let mut ticker = tokio::time::interval_at(start, TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut tick: u32 = 0;
    let mut audio_sequence: u32 = 0;
    let mut video_sequence = vec![0u32; plan.video.len()];
    // Whether each layer was paused at its last frame: a resumed layer starts with a
    // keyframe, as an encoder's does.
    let mut was_paused = vec![false; plan.video.len()];
    let mut frame: u32 = 0;
    while Instant::now() < until {
        let scheduled = ticker.tick().await;
        if scheduled.elapsed() > TICK {
            counters.late_ticks.fetch_add(1, Ordering::Relaxed);
        }
        if plan.audio {
            let mut payload = vec![0x33u8; AUDIO_PAYLOAD_BYTES];
            let sent_ns = now_ns();
            stamp(
                &mut payload,
                &Stamp {
                    publisher: index,
                    kind: MediaKind::Audio,
                    layer: 0,
                    keyframe: false,
                    sequence: audio_sequence,
                    frame: audio_sequence,
                    packet_in_frame: 0,
                    packets_in_frame: 1,
                    sent_ns,
                },
            );
            audio_sequence += 1;
            count(
                counters,
                window,
                sent_ns,
                output.send_audio(&payload).await,
                || &counters.audio_in_window,
            );
        }
        if tick.is_multiple_of(plan.video_plan.ticks_per_frame) {
            for (layer_index, layer) in plan.video.iter().enumerate() {
                let layer_id = layer_index as u8;
                let active = output.layer_active(layer_id);
                let resumed = active && was_paused[layer_index];
                was_paused[layer_index] = !active;
                let (keyframe, size) = match plan.video_plan.frame(*layer, frame) {
                    (false, _) if resumed => (true, plan.video_plan.keyframe_size(*layer)),
                    planned => planned,
                };
                let mut payloads = video_payloads(*layer, size, keyframe);
                let packets = payloads.len() as u16;
                let Some(layer_counters) = counters.layer(layer_id) else {
                    continue;
                };
                for (i, payload) in payloads.iter_mut().enumerate() {
                    let sent_ns = now_ns();
                    stamp(
                        payload,
                        &Stamp {
                            publisher: index,
                            kind: MediaKind::Video,
                            layer: layer_id,
                            keyframe,
                            sequence: video_sequence[layer_index],
                            frame,
                            packet_in_frame: i as u16,
                            packets_in_frame: packets,
                            sent_ns,
                        },
                    );
                    let last = i + 1 == usize::from(packets);
                    let sent = output.send_video(layer_id, payload, last).await;
                    let in_window = window.contains(sent_ns);
                    let bytes = payload.len() as u64;
                    if in_window {
                        layer_counters
                            .planned_packets
                            .fetch_add(1, Ordering::Relaxed);
                        layer_counters
                            .planned_bytes
                            .fetch_add(bytes, Ordering::Relaxed);
                    }
                    match sent {
                        Ok(LayerSend::Sent) => {
                            // Only what was sent takes a stream sequence number, so that
                            // a receiver's tally sees no gap where a layer was paused.
                            video_sequence[layer_index] += 1;
                            counters.packets_total.fetch_add(1, Ordering::Relaxed);
                            if in_window {
                                layer_counters.packets.fetch_add(1, Ordering::Relaxed);
                                layer_counters.bytes.fetch_add(bytes, Ordering::Relaxed);
                                if i == 0 {
                                    layer_counters.frames.fetch_add(1, Ordering::Relaxed);
                                }
                            }
                        }
                        Ok(LayerSend::Paused) => {}
                        Err(error) => failed(counters, error),
                    }
                }
            }
            frame += 1;
        }
        tick += 1;
    }
}

fn count<'a>(
    counters: &SendCounters,
    window: &Window,
    sent_ns: u64,
    sent: anyhow::Result<()>,
    in_window: impl FnOnce() -> &'a AtomicU64,
) {
    match sent {
        Ok(()) => {
            counters.packets_total.fetch_add(1, Ordering::Relaxed);
            if window.contains(sent_ns) {
                in_window().fetch_add(1, Ordering::Relaxed);
            }
        }
        Err(error) => failed(counters, error),
    }
}

/// Counts a refused send, and says so the first time.
fn failed(counters: &SendCounters, error: anyhow::Error) {
    if counters.errors.fetch_add(1, Ordering::Relaxed) == 0 {
        tracing::warn!(%error, "a publisher's send failed");
    }
}

/// One stream a receiver gets: a publisher's audio, or one layer of its video.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StreamKey {
    pub publisher: u16,
    pub kind: MediaKind,
    pub layer: u8,
}

/// What one receiver made of one stream.
#[derive(Debug, Default)]
pub struct StreamReception {
    /// Arrival of its first packet, by [`now_ns`], window or not.
    pub first_arrival_ns: Option<u64>,
    /// Distinct packets in the window.
    pub received: u64,
    pub duplicates: u64,
    sequences: HashSet<u32>,
    /// Frames in the window: packets arrived of packets in the frame.
    frames: HashMap<u32, (u16, u16)>,
    /// RFC 3550 interarrival jitter, in nanoseconds, from the stamps' send times.
    pub jitter_ns: f64,
    last_transit_ns: Option<i64>,
}

impl StreamReception {
    /// Video frames of the window of which every packet arrived.
    pub fn complete_frames(&self) -> u64 {
        self.frames.values().filter(|(got, of)| got >= of).count() as u64
    }
}

/// What one receiving site made of everything it got.
#[derive(Debug, Default)]
pub struct Reception {
    pub streams: HashMap<StreamKey, StreamReception>,
    /// End-to-end latency of every packet of the window, in microseconds.
    pub latencies_us: Vec<u32>,
    /// The same, of the audio packets alone: what a meeting's sites hear late.
    pub audio_latencies_us: Vec<u32>,
    /// Arrival of the first packet of any stream.
    pub first_media_ns: Option<u64>,
    /// Packets without a stamp: not ours, or damaged.
    pub unstamped: u64,
}

/// A receiving site's tally, fed by its client's packet sink.
#[derive(Debug)]
pub struct Receiver {
    reception: Mutex<Reception>,
    window: Arc<Window>,
}

impl Receiver {
    pub fn new(window: Arc<Window>) -> Arc<Receiver> {
        Arc::new(Receiver {
            reception: Mutex::new(Reception::default()),
            window,
        })
    }

    /// A sink for [`cau_tests::client::ClientConfig::packet_sink`].
    pub fn sink(self: &Arc<Self>) -> PacketSink {
        let receiver = self.clone();
        PacketSink(Arc::new(move |packet| receiver.on_payload(&packet.payload)))
    }

    /// Tallies one payload as it arrives.
    pub fn on_payload(&self, payload: &[u8]) {
        let arrival_ns = now_ns();
        let mut reception = self.lock();
        let Some(stamp) = Stamp::read(payload) else {
            reception.unstamped += 1;
            return;
        };
        reception.first_media_ns.get_or_insert(arrival_ns);
        let key = StreamKey {
            publisher: stamp.publisher,
            kind: stamp.kind,
            layer: stamp.layer,
        };
        let in_window = self.window.contains(stamp.sent_ns);
        let latency_us = (arrival_ns.saturating_sub(stamp.sent_ns) / 1000).min(u64::from(u32::MAX));
        let stream = reception.streams.entry(key).or_default();
        stream.first_arrival_ns.get_or_insert(arrival_ns);
        // Jitter (RFC 3550 §6.4.1) on the stamps' clock, which is the receiver's too.
        let transit = arrival_ns as i64 - stamp.sent_ns as i64;
        if let Some(last) = stream.last_transit_ns {
            let d = (transit - last).abs() as f64;
            stream.jitter_ns += (d - stream.jitter_ns) / 16.0;
        }
        stream.last_transit_ns = Some(transit);
        if !in_window {
            return;
        }
        if !stream.sequences.insert(stamp.sequence) {
            stream.duplicates += 1;
            return;
        }
        stream.received += 1;
        if stamp.kind == MediaKind::Video {
            let frame = stream
                .frames
                .entry(stamp.frame)
                .or_insert((0, stamp.packets_in_frame));
            frame.0 += 1;
        }
        reception.latencies_us.push(latency_us as u32);
        if stamp.kind == MediaKind::Audio {
            reception.audio_latencies_us.push(latency_us as u32);
        }
    }

    /// Forgets the window's tally (not first arrivals or jitter), before the window
    /// opens again.
    pub fn reset(&self) {
        let mut reception = self.lock();
        reception.latencies_us.clear();
        reception.audio_latencies_us.clear();
        for stream in reception.streams.values_mut() {
            stream.received = 0;
            stream.duplicates = 0;
            stream.sequences.clear();
            stream.frames.clear();
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, Reception> {
        self.reception
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// When the first packet of `publisher`'s `kind` arrived, in whichever video layer,
    /// if one has.
    pub fn first_arrival(&self, publisher: u16, kind: MediaKind) -> Option<u64> {
        self.lock()
            .streams
            .iter()
            .filter(|(key, _)| key.publisher == publisher && key.kind == kind)
            .filter_map(|(_, stream)| stream.first_arrival_ns)
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_read_back_from_the_end_of_a_payload() {
        let original = Stamp {
            publisher: 57,
            kind: MediaKind::Video,
            layer: 0,
            keyframe: true,
            sequence: 123_456,
            frame: 789,
            packet_in_frame: 3,
            packets_in_frame: 18,
            sent_ns: 9_876_543_210,
        };
        for mut payload in video_payloads(SIMULCAST_LAYERS[1], 20_000, true) {
            stamp(&mut payload, &original);
            assert!(payload.len() <= MAX_PACKET_BYTES);
            assert_eq!(Stamp::read(&payload), Some(original));
        }
        assert_eq!(Stamp::read(b"too short"), None);
        assert_eq!(Stamp::read(&[0u8; 64]), None);
    }

    #[test]
    fn each_simulcast_layer_declares_its_height_in_its_keyframes() {
        let three = layers(3).unwrap();
        assert_eq!(three, SIMULCAST_LAYERS.to_vec());
        for layer in three {
            let first = &video_payloads(layer, 5_000, true)[0];
            // Descriptor, frame tag, start code, then width and height (14 bits each).
            let height = u16::from_le_bytes([first[9], first[10]]) & 0x3fff;
            let width = u16::from_le_bytes([first[7], first[8]]) & 0x3fff;
            assert_eq!((width, height), (layer.height / 9 * 16, layer.height));
        }
        assert_eq!(layers(1).unwrap(), vec![SIMULCAST_LAYERS[1]]);
        assert!(layers(2).is_err());
    }

    #[test]
    fn video_adds_up_to_the_layer_bitrate() {
        let plan = VideoPlan::default();
        let layer = SIMULCAST_LAYERS[1];
        let bytes: usize = (0..plan.keyframe_every * 10)
            .map(|f| plan.frame(layer, f).1)
            .sum();
        let seconds = f64::from(plan.keyframe_every * 10) / plan.fps();
        let kbps = bytes as f64 * 8.0 / seconds / 1000.0;
        assert!((450.0..550.0).contains(&kbps), "{kbps} kbit/s");
        let (keyframe, key_size) = plan.frame(layer, 0);
        let (delta, delta_size) = plan.frame(layer, 1);
        assert!(keyframe && !delta && key_size > 5 * delta_size);
    }
}
