//! A site's line test, run by a webrtc-rs client as `docs/signaling.md` describes it.
//!
//! [`run_line_test`] opens the signaling socket, sends `start_line_test` with the join
//! link's token, and offers a connection like a browser's on the test page: `sendonly`
//! Opus and VP8 (a microphone and a camera, whose packets it then sends at a low rate)
//! and the three data channels of the test. It echoes every probe unchanged, sends on
//! `cau-bulk` at the pace the server asks when told to upload, counts what it receives,
//! and returns the server's `line_test_result` with everything it saw on the way.
//!
//! Like [`crate::client`], it binds its media socket to one loopback address, which
//! [`crate::shaping`] can give a line of its own.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::{Bytes, BytesMut};
use futures_util::{SinkExt, StreamExt};
use rtc::peer_connection::configuration::media_engine::{MIME_TYPE_OPUS, MIME_TYPE_VP8};
use rtc::rtp;
use rtc::rtp_transceiver::RTCRtpTransceiverDirection;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters, RTCRtpEncodingParameters,
    RtpCodecKind,
};
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use webrtc::data_channel::{DataChannel, DataChannelEvent, RTCDataChannelInit};
use webrtc::media_stream::MediaStreamTrack;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionEventHandler, RTCIceCandidateInit, RTCPeerConnectionIceEvent,
    RTCSessionDescription,
};
use webrtc::rtp_transceiver::{RTCRtpTransceiverInit, RtpSender};

/// How long the whole test may take, from the socket's opening to the result: the
/// server's plan is about 12 s; the rest is margin for a loaded two-core machine and a
/// slow line, where the channels open late.
const TEST_TIMEOUT: Duration = Duration::from_secs(60);

/// The upload keeps at most this much of its rate unacknowledged, as the server does
/// with the download.
const BACKLOG: Duration = Duration::from_millis(500);

/// Bytes per upload message: one SCTP packet each.
const CHUNK_BYTES: usize = 1000;

/// How a test site runs its line test.
#[derive(Debug, Clone)]
pub struct LineTestConfig {
    /// `ws://127.0.0.1:PORT/ws`.
    pub ws_url: String,
    /// The site's join token.
    pub token: String,
    /// The loopback address its media socket binds.
    pub local_ip: Ipv4Addr,
}

/// What one run saw.
#[derive(Debug, Clone)]
pub struct LineTestOutcome {
    /// The `line_test_started` message.
    pub started: Value,
    /// The `line_test_result` message.
    pub result: Value,
    /// The phase messages of `cau-control`, in order.
    pub phases: Vec<Value>,
    /// Probes echoed, and download bytes received on `cau-bulk`.
    pub probes_echoed: u64,
    pub download_bytes: u64,
    /// Upload bytes handed to `cau-bulk`.
    pub upload_bytes: u64,
    /// From the socket's opening to the result.
    pub elapsed: Duration,
}

impl LineTestOutcome {
    /// The verdict: `ready`, `marginal` or `not_ready`.
    pub fn verdict(&self) -> &str {
        self.result["verdict"].as_str().unwrap_or_default()
    }

    /// The reasons' codes, worst first.
    pub fn reason_codes(&self) -> Vec<String> {
        self.result["reasons"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|reason| reason["code"].as_str().map(str::to_owned))
            .collect()
    }
}

/// Runs one line test. Fails if the server refuses, or sends no result in time.
pub async fn run_line_test(config: LineTestConfig) -> anyhow::Result<LineTestOutcome> {
    tokio::time::timeout(TEST_TIMEOUT, run(config))
        .await
        .with_context(|| format!("no line test result within {TEST_TIMEOUT:?}"))?
}

async fn run(config: LineTestConfig) -> anyhow::Result<LineTestOutcome> {
    let began = Instant::now();
    let (socket, _) = tokio_tungstenite::connect_async(config.ws_url.as_str())
        .await
        .with_context(|| format!("connecting the WebSocket to {}", config.ws_url))?;
    let (mut sink, mut stream) = socket.split();
    let start = json!({ "type": "start_line_test", "token": config.token });
    sink.send(Message::text(start.to_string())).await?;
    let started = next_message(&mut stream, "line_test_started").await?;

    let (candidates, mut candidates_rx) = mpsc::unbounded_channel();
    let peer_connection = build_peer_connection(Handler { candidates }, config.local_ip).await?;
    let probe = peer_connection
        .create_data_channel(
            "cau-probe",
            Some(RTCDataChannelInit {
                ordered: false,
                max_retransmits: Some(0),
                ..Default::default()
            }),
        )
        .await
        .context("creating cau-probe")?;
    let bulk = peer_connection
        .create_data_channel("cau-bulk", None)
        .await
        .context("creating cau-bulk")?;
    let control = peer_connection
        .create_data_channel("cau-control", None)
        .await
        .context("creating cau-control")?;
    let audio = add_track(&peer_connection, RtpCodecKind::Audio).await?;
    let video = add_track(&peer_connection, RtpCodecKind::Video).await?;

    let offer = peer_connection.create_offer(None).await?;
    peer_connection.set_local_description(offer).await?;
    let offer = peer_connection
        .local_description()
        .await
        .context("no local description after our offer")?;
    sink.send(Message::text(
        json!({ "type": "offer", "sdp": offer.sdp }).to_string(),
    ))
    .await?;
    let answer = next_message(&mut stream, "answer").await?;
    let sdp = answer["sdp"].as_str().context("`answer` without `sdp`")?;
    peer_connection
        .set_remote_description(RTCSessionDescription::answer(sdp.to_owned())?)
        .await
        .context("applying the server's answer")?;

    let counters = Arc::new(Counters::default());
    let (opened_tx, opened) = watch::channel(0usize);
    let opened_rx = opened.clone();
    let opened_tx = Arc::new(opened_tx);
    let (phases_tx, mut phases_rx) = mpsc::unbounded_channel();
    let mut tasks = Tasks(Vec::new());
    tasks.0.push(tokio::spawn(echo_probes(
        probe,
        counters.clone(),
        opened_tx.clone(),
    )));
    tasks.0.push(tokio::spawn(read_bulk(
        bulk.clone(),
        counters.clone(),
        opened_tx.clone(),
    )));
    tasks.0.push(tokio::spawn(follow_control(
        control,
        bulk,
        counters.clone(),
        opened_tx,
        opened,
        phases_tx,
    )));
    tasks
        .0
        .push(tokio::spawn(send_media(audio, video, opened_rx)));

    // Trickle our candidates, and wait for the result.
    let result = loop {
        tokio::select! {
            Some(candidate) = candidates_rx.recv() => {
                let mut message = json!({ "type": "candidate", "candidate": candidate.candidate });
                if let Some(mid) = candidate.sdp_mid.filter(|mid| !mid.is_empty()) {
                    message["sdp_mid"] = Value::String(mid);
                }
                sink.send(Message::text(message.to_string())).await?;
            }
            frame = stream.next() => {
                let message = match frame {
                    Some(Ok(Message::Text(text))) => serde_json::from_str::<Value>(&text)?,
                    Some(Ok(Message::Close(frame))) => bail!("the server closed the socket before the result: {frame:?}"),
                    Some(Ok(_)) => continue,
                    Some(Err(error)) => bail!("reading the WebSocket: {error}"),
                    None => bail!("the server closed the socket before the result"),
                };
                match message["type"].as_str() {
                    Some("line_test_result") => break message,
                    Some("error") => bail!("the server refused: {message}"),
                    _ => {}
                }
            }
        }
    };
    let mut phases = Vec::new();
    while let Ok(phase) = phases_rx.try_recv() {
        phases.push(phase);
    }
    drop(tasks);
    let _ = peer_connection.close().await;
    Ok(LineTestOutcome {
        started,
        result,
        phases,
        probes_echoed: counters.probes_echoed.load(Ordering::Relaxed),
        download_bytes: counters.download_bytes.load(Ordering::Relaxed),
        upload_bytes: counters.upload_bytes.load(Ordering::Relaxed),
        elapsed: began.elapsed(),
    })
}

#[derive(Default)]
struct Counters {
    probes_echoed: AtomicU64,
    download_bytes: AtomicU64,
    upload_bytes: AtomicU64,
}

/// The test's tasks, stopped when the test ends however it ends.
struct Tasks(Vec<JoinHandle<()>>);

impl Drop for Tasks {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

type Stream = futures_util::stream::SplitStream<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
>;

/// Reads until a message of type `wanted`; an `error` fails.
async fn next_message(stream: &mut Stream, wanted: &str) -> anyhow::Result<Value> {
    loop {
        let frame = stream
            .next()
            .await
            .with_context(|| format!("the server closed the socket before `{wanted}`"))??;
        let Message::Text(text) = frame else {
            continue;
        };
        let message: Value = serde_json::from_str(&text)?;
        match message["type"].as_str() {
            Some(kind) if kind == wanted => return Ok(message),
            Some("error") => bail!("the server refused while we waited for `{wanted}`: {message}"),
            _ => {}
        }
    }
}

/// Counts a channel as open; the count goes to whoever says `ready`.
fn opened(count: &watch::Sender<usize>) {
    count.send_modify(|n| *n += 1);
}

async fn echo_probes(
    probe: Arc<dyn DataChannel>,
    counters: Arc<Counters>,
    opened_count: Arc<watch::Sender<usize>>,
) {
    while let Some(event) = probe.poll().await {
        match event {
            DataChannelEvent::OnOpen => opened(&opened_count),
            DataChannelEvent::OnMessage(message) => {
                // The probe goes back as it came, at once.
                let echoed = probe.send(message.data).await.is_ok();
                counters
                    .probes_echoed
                    .fetch_add(u64::from(echoed), Ordering::Relaxed);
            }
            DataChannelEvent::OnClose => break,
            _ => {}
        }
    }
}

async fn read_bulk(
    bulk: Arc<dyn DataChannel>,
    counters: Arc<Counters>,
    opened_count: Arc<watch::Sender<usize>>,
) {
    while let Some(event) = bulk.poll().await {
        match event {
            DataChannelEvent::OnOpen => opened(&opened_count),
            DataChannelEvent::OnMessage(message) => {
                counters
                    .download_bytes
                    .fetch_add(message.data.len() as u64, Ordering::Relaxed);
            }
            DataChannelEvent::OnClose => break,
            _ => {}
        }
    }
}

/// Says `ready` once the three channels are open, then follows the server's phases:
/// uploads when told to.
async fn follow_control(
    control: Arc<dyn DataChannel>,
    bulk: Arc<dyn DataChannel>,
    counters: Arc<Counters>,
    opened_count: Arc<watch::Sender<usize>>,
    mut open: watch::Receiver<usize>,
    phases: mpsc::UnboundedSender<Value>,
) {
    let mut uploading: Option<JoinHandle<()>> = None;
    let mut ready_sent = false;
    loop {
        tokio::select! {
            event = control.poll() => match event {
                Some(DataChannelEvent::OnOpen) => opened(&opened_count),
                Some(DataChannelEvent::OnMessage(message)) => {
                    let Ok(phase) = serde_json::from_slice::<Value>(&message.data) else {
                        continue;
                    };
                    if phase["phase"] == "upload" {
                        let ms = phase["ms"].as_u64().unwrap_or_default();
                        let kbps = phase["kbps"].as_u64().unwrap_or_default();
                        uploading = Some(tokio::spawn(upload(
                            bulk.clone(),
                            Duration::from_millis(ms),
                            kbps * 1000,
                            counters.clone(),
                        )));
                    }
                    let _ = phases.send(phase);
                }
                Some(DataChannelEvent::OnClose) | None => break,
                Some(_) => {}
            },
            changed = open.changed(), if !ready_sent => {
                if changed.is_err() {
                    ready_sent = true;
                } else if *open.borrow() >= 3 {
                    ready_sent = true;
                    if let Err(error) = control.send_text(r#"{"ready":true}"#).await {
                        tracing::warn!(%error, "cannot say ready");
                    }
                }
            }
        }
    }
    if let Some(task) = uploading {
        task.abort();
    }
}

/// Sends on `bulk` at `bps` for `duration`, keeping the backlog short.
async fn upload(bulk: Arc<dyn DataChannel>, duration: Duration, bps: u64, counters: Arc<Counters>) {
    let start = tokio::time::Instant::now();
    let backlog = (bps as u128 * BACKLOG.as_micros() / 8_000_000) as usize;
    let mut sent: u64 = 0;
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    while start.elapsed() < duration {
        tick.tick().await;
        let allowed = (bps as u128 * start.elapsed().min(duration).as_micros() / 8_000_000) as u64;
        while sent + CHUNK_BYTES as u64 <= allowed {
            match bulk.outstanding_bytes().await {
                Ok(outstanding) if outstanding < backlog => {}
                _ => break,
            }
            if bulk.send(BytesMut::zeroed(CHUNK_BYTES)).await.is_err() {
                return;
            }
            sent += CHUNK_BYTES as u64;
            counters
                .upload_bytes
                .fetch_add(CHUNK_BYTES as u64, Ordering::Relaxed);
        }
    }
}

/// Our microphone and camera: a 20 ms Opus packet and, every 100 ms, a small VP8
/// keyframe packet, as a working device sends at its lowest. They start once a data
/// channel is open, so DTLS is up: webrtc-rs drops earlier RTP with a warning only.
async fn send_media(audio: LocalTrack, video: LocalTrack, mut open: watch::Receiver<usize>) {
    if open.wait_for(|count| *count > 0).await.is_err() {
        return;
    }
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let mut count: u32 = 0;
    loop {
        tick.tick().await;
        let _ = audio.send(&[0x55; 60], count, 960).await;
        if count.is_multiple_of(5) {
            let mut frame = vec![0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a];
            frame.resize(600, 0x33);
            let _ = video.send(&frame, count / 5, 9000).await;
        }
        count = count.wrapping_add(1);
    }
}

struct LocalTrack {
    track: Arc<TrackLocalStaticRTP>,
    sender: Arc<dyn RtpSender>,
    ssrc: u32,
    kind: RtpCodecKind,
    payload_type: AtomicUsize,
}

impl LocalTrack {
    async fn send(&self, payload: &[u8], index: u32, timestamp_step: u32) -> anyhow::Result<()> {
        if self.payload_type.load(Ordering::Relaxed) == 0 {
            let pt = negotiated_payload_type(&self.sender, self.kind).await?;
            self.payload_type.store(usize::from(pt), Ordering::Relaxed);
        }
        let packet = rtp::packet::Packet {
            header: rtp::header::Header {
                version: 2,
                marker: true,
                payload_type: self.payload_type.load(Ordering::Relaxed) as u8,
                sequence_number: index as u16,
                timestamp: index.wrapping_mul(timestamp_step),
                ssrc: self.ssrc,
                ..Default::default()
            },
            payload: Bytes::copy_from_slice(payload),
        };
        self.track.write_rtp(packet).await?;
        Ok(())
    }
}

fn codec(kind: RtpCodecKind) -> RTCRtpCodecParameters {
    match kind {
        RtpCodecKind::Video => RTCRtpCodecParameters {
            rtp_codec: RTCRtpCodec {
                mime_type: MIME_TYPE_VP8.to_owned(),
                clock_rate: 90000,
                channels: 0,
                sdp_fmtp_line: String::new(),
                rtcp_feedback: vec![],
            },
            payload_type: 96,
        },
        _ => RTCRtpCodecParameters {
            rtp_codec: RTCRtpCodec {
                mime_type: MIME_TYPE_OPUS.to_owned(),
                clock_rate: 48000,
                channels: 2,
                sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
                rtcp_feedback: vec![],
            },
            payload_type: 111,
        },
    }
}

async fn add_track(
    peer_connection: &Arc<dyn PeerConnection>,
    kind: RtpCodecKind,
) -> anyhow::Result<LocalTrack> {
    let ssrc = match kind {
        RtpCodecKind::Video => 0x7e57_0002,
        _ => 0x7e57_0001,
    };
    let name = if kind == RtpCodecKind::Video {
        "camera"
    } else {
        "microphone"
    };
    let track = Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
        "line-test".to_owned(),
        name.to_owned(),
        name.to_owned(),
        kind,
        vec![RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters {
                ssrc: Some(ssrc),
                ..Default::default()
            },
            codec: codec(kind).rtp_codec,
            ..Default::default()
        }],
    )));
    let transceiver = peer_connection
        .add_transceiver_from_track(
            track.clone(),
            Some(RTCRtpTransceiverInit {
                direction: RTCRtpTransceiverDirection::Sendonly,
                ..Default::default()
            }),
        )
        .await
        .with_context(|| format!("adding the {name} transceiver"))?;
    let sender = transceiver
        .sender()
        .await
        .context("reading the sender of a new transceiver")?
        .context("a sendonly transceiver without a sender")?;
    Ok(LocalTrack {
        track,
        sender,
        ssrc,
        kind,
        payload_type: AtomicUsize::new(0),
    })
}

async fn negotiated_payload_type(
    sender: &Arc<dyn RtpSender>,
    kind: RtpCodecKind,
) -> anyhow::Result<u8> {
    let wanted = codec(kind).rtp_codec.mime_type;
    let parameters = sender.get_parameters().await?;
    parameters
        .rtp_parameters
        .codecs
        .iter()
        .find(|codec| codec.rtp_codec.mime_type.eq_ignore_ascii_case(&wanted))
        .map(|codec| codec.payload_type)
        .with_context(|| format!("the answer accepted no {wanted}"))
}

struct Handler {
    candidates: mpsc::UnboundedSender<RTCIceCandidateInit>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_candidate(&self, event: RTCPeerConnectionIceEvent) {
        if let Ok(candidate) = event.candidate.to_json() {
            let _ = self.candidates.send(candidate);
        }
    }
}

async fn build_peer_connection(
    handler: Handler,
    local_ip: Ipv4Addr,
) -> anyhow::Result<Arc<dyn PeerConnection>> {
    crate::client::loopback_peer_connection(Arc::new(handler), local_ip).await
}
