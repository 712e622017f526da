//! The light client: a site on str0m's sans-IO `Rtc` in RTP mode, for scenarios where the
//! webrtc-rs clients ([`cau_tests::client::TestClient`]) would cost the machine more than
//! the server they measure.
//!
//! It joins as a `TestClient` does, through the real signaling protocol: the WebSocket,
//! `join` with the site's token, its one offer (Opus and VP8 `sendonly`, the video in the
//! three simulcast layers `l`, `m`, `h` when asked, str0m writing the MID and RID header
//! extensions the SFU reads the layers by), its host candidate on 127.0.0.1 in the offer
//! and trickled, the answer; then it answers every server offer, reports the sizes it
//! shows each video at (`video_sizes`) and obeys `publish_layers`.
//!
//! Each client is one tokio task that owns its `Rtc` and its UDP socket and drains the
//! `Rtc` after every input (a batch of datagrams, the packets its publisher queued, a
//! signaling message, a timeout); two small tasks read and write its WebSocket. Publishers hand it payloads over
//! a channel, already stamped: the channel is the client's RTP stack's entrance, as
//! webrtc-rs's `write_rtp` queues for its own driver task. What arrives goes straight to
//! the site's [`Receiver`], the tally the webrtc-rs clients feed through their sink.
//!
//! str0m is also the server's stack, so a bug the two share would pass unseen here: the
//! webrtc-rs clients stay the default and stay in use for that reason.

use std::collections::HashMap;
use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use cau_tests::client::{LayerSend, MediaKind, RemoteTrack, SIMULCAST_RIDS, VideoSizer};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use str0m::change::{SdpAnswer, SdpOffer};
use str0m::format::Codec;
use str0m::media::{Direction, MediaKind as StrKind, Mid, Pt, Rid, Simulcast, SimulcastLayer};
use str0m::net::{DatagramRecv, Protocol, Receive};
use str0m::rtp::{RtpWrite, SeqNo};
use str0m::{Candidate, Event, Input, Output, Rtc};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::media::{MediaOutput, Receiver};

/// How long joining waits for each server reply and for ICE and DTLS, as `TestClient`.
const STEP_TIMEOUT: Duration = Duration::from_secs(10);

/// How often the client pings over the WebSocket: the server closes a session silent for
/// 30 s.
const PING_INTERVAL: Duration = Duration::from_secs(10);

/// Datagrams read per wake-up before the client drains and sends: enough to take a
/// wall's burst of 57 videos in a few reads, few enough that sending is not held up.
const READ_BATCH: usize = 64;

/// Queued packets written per wake-up before the client drains: a keyframe of the high
/// layer is about 40 packets.
const WRITE_BATCH: usize = 64;

/// Opus's RTP clock advances by 960 per 20 ms packet.
const AUDIO_TIMESTAMP_STEP: u32 = 960;

/// VP8's 90 kHz clock advances by 3,600 per frame at the publishers' 25 frames a second.
const VIDEO_TIMESTAMP_STEP: u32 = 3600;

/// What a light client joins with and publishes.
#[derive(Clone)]
pub struct LightConfig {
    pub ws_url: String,
    /// The site's join token.
    pub token: String,
    pub publish_audio: bool,
    pub publish_video: bool,
    /// Whether the video goes out in the three layers of [`SIMULCAST_RIDS`].
    pub simulcast: bool,
    /// The heights the site reports for the videos it receives, after each server offer.
    pub video_sizes: Option<VideoSizer>,
    /// Where every received payload goes.
    pub receiver: Arc<Receiver>,
}

/// A site on str0m, joined; see the module docs. Dropping it stops its tasks.
pub struct LightClient {
    /// To the client's driver task: stamped payloads to send.
    media: mpsc::UnboundedSender<ToDriver>,
    /// To the WebSocket writer task.
    outgoing: mpsc::UnboundedSender<String>,
    shared: Arc<Shared>,
    /// Whether the client publishes audio, and how many video layers (0: no video).
    audio: bool,
    video_layers: usize,
    tasks: Vec<JoinHandle<()>>,
}

/// What the driver task tells the client's owner and its publisher.
#[derive(Debug, Default)]
struct Shared {
    /// Per video layer, lowest first: false while the server has it paused.
    paused: [AtomicBool; SIMULCAST_RIDS.len()],
    publish_layers_messages: AtomicUsize,
    /// Things that went wrong in the background, for the summary.
    failures: AtomicUsize,
}

/// Work for a client's driver task.
#[derive(Debug)]
enum ToDriver {
    /// One packet on stream `stream` (0 audio, 1 + layer for video), payload stamped.
    Rtp {
        stream: usize,
        payload: Vec<u8>,
        marker: bool,
    },
    /// A paused layer's frame ended: its clock runs on, as a paused camera's does.
    FrameHeldBack { stream: usize },
}

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

impl LightClient {
    /// Connects, joins with the token, offers, applies the answer and returns once ICE and
    /// DTLS are up, as `TestClient::join` does.
    pub async fn join(config: LightConfig) -> anyhow::Result<LightClient> {
        let (socket, _response) = tokio_tungstenite::connect_async(config.ws_url.as_str())
            .await
            .with_context(|| format!("connecting the WebSocket to {}", config.ws_url))?;
        let (sink, mut stream) = socket.split();
        let (outgoing, outgoing_rx) = mpsc::unbounded_channel();
        let mut tasks = vec![tokio::spawn(write_socket(sink, outgoing_rx))];
        let mut sites = HashMap::new();

        send_json(&outgoing, json!({ "type": "join", "token": config.token }))?;
        let joined = next_message_of_type(&mut stream, &mut sites, "joined").await?;
        joined
            .get("participant_id")
            .and_then(Value::as_str)
            .context("`joined` without a string `participant_id`")?;

        let udp = bind_media_socket().context("binding the media socket")?;
        let local = udp.local_addr()?;
        let now = Instant::now();
        let mut rtc = new_rtc(now);
        let candidate = Candidate::host(local, "udp").context("a host candidate")?;
        rtc.add_local_candidate(candidate.clone());
        let offer = Offer::build(&mut rtc, &config)?;
        send_json(&outgoing, json!({ "type": "offer", "sdp": offer.sdp }))?;
        // The offer carries the candidate already; trickling it too is what a browser does.
        send_json(
            &outgoing,
            json!({ "type": "candidate", "candidate": candidate.to_sdp_string() }),
        )?;

        let answer = next_message_of_type(&mut stream, &mut sites, "answer").await?;
        let sdp = answer
            .get("sdp")
            .and_then(Value::as_str)
            .context("`answer` without a string `sdp`")?;
        let answer = SdpAnswer::from_sdp_string(sdp).context("parsing the server's answer")?;
        rtc.sdp_api()
            .accept_answer(offer.pending, answer)
            .context("applying the server's answer")?;

        let streams = offer
            .streams
            .iter()
            .map(|declared| {
                declared
                    .as_ref()
                    .map(|s| OutStream::new(&rtc, s.mid, s.rid, s.kind))
                    .transpose()
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let shared = Arc::new(Shared::default());
        let (media, media_rx) = mpsc::unbounded_channel();
        let (connected_tx, connected_rx) = oneshot::channel();
        let driver = Driver {
            rtc,
            udp,
            local,
            receiver: config.receiver.clone(),
            outgoing: outgoing.clone(),
            shared: shared.clone(),
            video_mid: offer.video_mid,
            simulcast: config.simulcast,
            streams,
            sites,
            video_sizes: config.video_sizes.clone(),
            connected: Some(connected_tx),
            next_timeout: now,
        };
        // The WebSocket is read in a task of its own: polling it costs a clear of its
        // read buffer each time (tungstenite), and the driver wakes for every datagram.
        let (signaling, signaling_rx) = mpsc::unbounded_channel();
        tasks.push(tokio::spawn(read_socket(stream, signaling)));
        tasks.push(tokio::spawn(driver.run(signaling_rx, media_rx)));
        let client = LightClient {
            media,
            outgoing,
            shared,
            audio: config.publish_audio,
            video_layers: match (config.publish_video, config.simulcast) {
                (false, _) => 0,
                (true, false) => 1,
                (true, true) => SIMULCAST_RIDS.len(),
            },
            tasks,
        };
        match tokio::time::timeout(STEP_TIMEOUT, connected_rx).await {
            Ok(Ok(())) => Ok(client),
            Ok(Err(_)) => bail!("the light client's media connection ended before connecting"),
            Err(_) => bail!("the media connection did not come up within {STEP_TIMEOUT:?}"),
        }
    }

    /// Sends a text frame as it is (the chair's moves).
    pub fn send_raw(&self, text: &str) -> anyhow::Result<()> {
        self.outgoing
            .send(text.to_owned())
            .map_err(|_| anyhow!("the WebSocket writer has stopped"))
    }

    /// `publish_layers` messages received so far.
    pub fn publish_layers_messages(&self) -> usize {
        self.shared.publish_layers_messages.load(Ordering::Relaxed)
    }

    /// Things that went wrong in the background: a message that could not be handled, an
    /// error from the server, a str0m error.
    pub fn failures(&self) -> usize {
        self.shared.failures.load(Ordering::Relaxed)
    }

    /// Stops the client's tasks without `leave`, as `TestClient::drop_abruptly`.
    pub fn stop(&self) {
        for task in &self.tasks {
            task.abort();
        }
    }

    fn queue(&self, message: ToDriver) -> anyhow::Result<()> {
        self.media
            .send(message)
            .map_err(|_| anyhow!("the light client's driver has stopped"))
    }
}

impl Drop for LightClient {
    fn drop(&mut self) {
        self.stop();
    }
}

impl MediaOutput for LightClient {
    async fn send_audio(&self, payload: &[u8]) -> anyhow::Result<()> {
        if !self.audio {
            bail!("this client does not publish audio");
        }
        self.queue(ToDriver::Rtp {
            stream: 0,
            payload: payload.to_vec(),
            marker: false,
        })
    }

    async fn send_video(
        &self,
        layer: u8,
        payload: &[u8],
        marker: bool,
    ) -> anyhow::Result<LayerSend> {
        let layer = usize::from(layer);
        if layer >= self.video_layers {
            bail!("this client has no video layer {layer}");
        }
        let stream = 1 + layer;
        if !self.layer_active(layer as u8) {
            if marker {
                self.queue(ToDriver::FrameHeldBack { stream })?;
            }
            return Ok(LayerSend::Paused);
        }
        self.queue(ToDriver::Rtp {
            stream,
            payload: payload.to_vec(),
            marker,
        })?;
        Ok(LayerSend::Sent)
    }

    fn layer_active(&self, layer: u8) -> bool {
        usize::from(layer) < self.video_layers
            && !self
                .shared
                .paused
                .get(usize::from(layer))
                .is_some_and(|paused| paused.load(Ordering::Relaxed))
    }
}

/// The receive buffer asked of the kernel for a client's media socket, as the server
/// asks for its own (the kernel caps it at `net.core.rmem_max`). The default, about
/// 200 KiB, holds 50 ms of what a wall receives (57 videos): a client task kept waiting
/// that long by a busy machine would lose packets in its own socket, and the loss would
/// read as the server's.
const RECEIVE_BUFFER: usize = 4 << 20;

/// A non-blocking UDP socket on 127.0.0.1, port chosen by the kernel, with a large
/// receive buffer.
fn bind_media_socket() -> anyhow::Result<UdpSocket> {
    let socket = socket2::Socket::new(
        socket2::Domain::IPV4,
        socket2::Type::DGRAM,
        Some(socket2::Protocol::UDP),
    )?;
    // A smaller buffer than asked for still works: the default, as the webrtc-rs clients.
    if let Err(error) = socket.set_recv_buffer_size(RECEIVE_BUFFER) {
        tracing::debug!(%error, "cannot enlarge a light client's receive buffer");
    }
    socket.bind(&SocketAddr::from((Ipv4Addr::LOCALHOST, 0)).into())?;
    socket.set_nonblocking(true)?;
    Ok(UdpSocket::from_std(socket.into())?)
}

/// A str0m `Rtc` as the light client uses it: RTP mode (the load tool packetises its own
/// payloads), Opus without RED and VP8, as `TestClient` offers.
fn new_rtc(now: Instant) -> Rtc {
    Rtc::builder()
        .set_crypto_provider(Arc::new(str0m::crypto::from_feature_flags()))
        .set_rtp_mode(true)
        .clear_codecs()
        .enable_opus(true, false)
        .enable_vp8(true)
        .build(now)
}

/// One stream the client sends, as the offer declared it.
#[derive(Debug, Clone)]
struct Declared {
    mid: Mid,
    rid: Option<Rid>,
    kind: MediaKind,
}

/// The client's one offer and what it declared.
struct Offer {
    sdp: String,
    pending: str0m::change::SdpPendingOffer,
    video_mid: Option<Mid>,
    /// Audio first (`None` when not published), then each video layer.
    streams: Vec<Option<Declared>>,
}

impl Offer {
    /// `sendonly` audio and video as `config` says, the video in three layers on RIDs
    /// `l`, `m`, `h` (lowest first) when simulcast; one `recvonly` audio line for a site
    /// that sends nothing, as the protocol asks.
    fn build(rtc: &mut Rtc, config: &LightConfig) -> anyhow::Result<Offer> {
        let mut change = rtc.sdp_api();
        let mut streams = vec![None];
        let mut video_mid = None;
        if config.publish_audio {
            let mid = change.add_media(StrKind::Audio, Direction::SendOnly, None, None, None);
            streams[0] = Some(Declared {
                mid,
                rid: None,
                kind: MediaKind::Audio,
            });
        }
        if config.publish_video {
            let simulcast = config.simulcast.then(|| {
                let mut simulcast = Simulcast::new();
                for rid in SIMULCAST_RIDS {
                    simulcast.add_send_layer(SimulcastLayer::new(rid));
                }
                simulcast
            });
            let rids: Vec<Option<Rid>> = if config.simulcast {
                SIMULCAST_RIDS
                    .iter()
                    .map(|&rid| Some(Rid::from(rid)))
                    .collect()
            } else {
                vec![None]
            };
            let mid = change.add_media(StrKind::Video, Direction::SendOnly, None, None, simulcast);
            video_mid = Some(mid);
            streams.extend(rids.into_iter().map(|rid| {
                Some(Declared {
                    mid,
                    rid,
                    kind: MediaKind::Video,
                })
            }));
        }
        if !config.publish_audio && !config.publish_video {
            change.add_media(StrKind::Audio, Direction::RecvOnly, None, None, None);
        }
        let (offer, pending) = change.apply().context("an offer with no change")?;
        Ok(Offer {
            sdp: offer.to_sdp_string(),
            pending,
            video_mid,
            streams,
        })
    }
}

/// One stream the client sends, with the RTP numbering it owns.
#[derive(Debug)]
struct OutStream {
    mid: Mid,
    rid: Option<Rid>,
    kind: MediaKind,
    pt: Pt,
    numbering: Numbering,
}

impl OutStream {
    /// Stream `declared` with the payload type the answer settled on for its codec.
    fn new(rtc: &Rtc, mid: Mid, rid: Option<Rid>, kind: MediaKind) -> anyhow::Result<OutStream> {
        let codec = match kind {
            MediaKind::Audio => Codec::Opus,
            MediaKind::Video => Codec::Vp8,
        };
        let pt = rtc
            .codec_config()
            .params()
            .iter()
            .find(|p| p.spec().codec == codec)
            .map(|p| p.pt())
            .with_context(|| format!("no {codec:?} payload type"))?;
        Ok(OutStream {
            mid,
            rid,
            kind,
            pt,
            numbering: Numbering::random(mid, rid),
        })
    }
}

/// The next sequence number and timestamp of a stream. Both start at arbitrary values,
/// as RFC 3550 asks; the sequence number within the first rollover period, so that the
/// receiver needs no word of the SRTP rollover counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Numbering {
    sequence: u64,
    timestamp: u32,
}

impl Numbering {
    fn random(mid: Mid, rid: Option<Rid>) -> Numbering {
        use std::hash::BuildHasher;
        let seed = std::collections::hash_map::RandomState::new()
            .hash_one((mid.to_string(), rid.map(|r| r.to_string())));
        Numbering {
            // Far enough below 65,536 for hours of packets before the ROC turns.
            sequence: seed % 16_384,
            timestamp: (seed >> 32) as u32,
        }
    }

    /// After a packet: the sequence number always, the timestamp at a frame's end.
    fn advance(&mut self, kind: MediaKind, marker: bool) {
        self.sequence += 1;
        self.advance_timestamp(kind, marker);
    }

    /// Every audio packet is a whole 20 ms frame; a video frame ends at its marker.
    fn advance_timestamp(&mut self, kind: MediaKind, marker: bool) {
        match kind {
            MediaKind::Audio => self.timestamp = self.timestamp.wrapping_add(AUDIO_TIMESTAMP_STEP),
            MediaKind::Video if marker => {
                self.timestamp = self.timestamp.wrapping_add(VIDEO_TIMESTAMP_STEP)
            }
            MediaKind::Video => {}
        }
    }
}

/// The task that owns one client's `Rtc`, media socket and signaling reader.
struct Driver {
    rtc: Rtc,
    udp: UdpSocket,
    local: SocketAddr,
    receiver: Arc<Receiver>,
    outgoing: mpsc::UnboundedSender<String>,
    shared: Arc<Shared>,
    video_mid: Option<Mid>,
    simulcast: bool,
    /// Audio (`None` when not published), then the video layers; see [`ToDriver::Rtp`].
    streams: Vec<Option<OutStream>>,
    /// Participant id to site code, from `joined` and `participant_joined`.
    sites: HashMap<String, String>,
    video_sizes: Option<VideoSizer>,
    connected: Option<oneshot::Sender<()>>,
    next_timeout: Instant,
}

impl Driver {
    async fn run(
        mut self,
        mut signaling: mpsc::UnboundedReceiver<String>,
        mut media: mpsc::UnboundedReceiver<ToDriver>,
    ) {
        let mut buffer = vec![0u8; 2048];
        if let Err(error) = self.drain() {
            self.fail(format!("str0m: {error}"));
            return;
        }
        loop {
            let timeout = tokio::time::sleep_until(self.next_timeout.into());
            let result = tokio::select! {
                received = self.udp.recv_from(&mut buffer) => match received {
                    Ok((length, source)) => self.on_datagrams(&mut buffer, length, source),
                    Err(error) => Err(anyhow!("reading the media socket: {error}")),
                },
                message = media.recv() => match message {
                    Some(message) => self.on_media(message, &mut media),
                    // The client was dropped.
                    None => return,
                },
                text = signaling.recv() => match text {
                    Some(text) => {
                        if let Err(error) = self.on_message(&text) {
                            self.fail(format!("{error:#}"));
                        }
                        Ok(())
                    }
                    // The server closed the WebSocket, or it broke: the session is over.
                    None => return,
                },
                () = timeout => self.on_input(Input::Timeout(Instant::now())),
            };
            if let Err(error) = result {
                self.fail(format!("{error:#}"));
                return;
            }
        }
    }

    /// The datagram in `buffer[..length]` and whatever else the socket holds, up to
    /// [`READ_BATCH`].
    fn on_datagrams(
        &mut self,
        buffer: &mut [u8],
        mut length: usize,
        mut source: SocketAddr,
    ) -> anyhow::Result<()> {
        for _ in 0..READ_BATCH {
            if let Ok(contents) = DatagramRecv::try_from(&buffer[..length]) {
                let receive = Receive {
                    proto: Protocol::Udp,
                    source,
                    destination: self.local,
                    contents,
                };
                // A datagram str0m refuses is the sender's problem, not the client's end.
                if let Err(error) = self
                    .rtc
                    .handle_input(Input::Receive(Instant::now(), receive))
                {
                    tracing::debug!(%error, "a light client refused a datagram");
                }
                self.drain()?;
            }
            match self.udp.try_recv_from(buffer) {
                Ok((next_length, next_source)) => (length, source) = (next_length, next_source),
                Err(error) if error.kind() == ErrorKind::WouldBlock => break,
                Err(error) => bail!("reading the media socket: {error}"),
            }
        }
        Ok(())
    }

    /// Writes `first` and what else is queued, up to [`WRITE_BATCH`], then drains.
    fn on_media(
        &mut self,
        first: ToDriver,
        queue: &mut mpsc::UnboundedReceiver<ToDriver>,
    ) -> anyhow::Result<()> {
        let mut next = Some(first);
        let mut written = 0;
        while let Some(message) = next.take() {
            self.write(message);
            written += 1;
            if written < WRITE_BATCH {
                next = queue.try_recv().ok();
            }
        }
        // Writing queues packets; a timeout now lets str0m send them.
        self.on_input(Input::Timeout(Instant::now()))
    }

    fn write(&mut self, message: ToDriver) {
        let (index, payload, marker) = match message {
            ToDriver::Rtp {
                stream,
                payload,
                marker,
            } => (stream, payload, marker),
            ToDriver::FrameHeldBack { stream } => {
                if let Some(Some(out)) = self.streams.get_mut(stream) {
                    out.numbering.advance_timestamp(out.kind, true);
                }
                return;
            }
        };
        let Some(Some(out)) = self.streams.get_mut(index) else {
            return;
        };
        let numbering = out.numbering;
        out.numbering.advance(out.kind, marker);
        let (mid, rid, pt, kind) = (out.mid, out.rid, out.pt, out.kind);
        let mut direct = self.rtc.direct_api();
        let Some(tx) = direct.stream_tx_by_mid(mid, rid) else {
            self.fail(format!("no send stream for mid {mid} rid {rid:?}"));
            return;
        };
        tx.write_rtp(
            RtpWrite::new(
                pt,
                SeqNo::from(numbering.sequence),
                numbering.timestamp,
                Instant::now(),
                payload,
            )
            .marker(marker)
            .nackable(kind == MediaKind::Video),
        );
    }

    fn on_input(&mut self, input: Input) -> anyhow::Result<()> {
        self.rtc
            .handle_input(input)
            .context("str0m refused input")?;
        self.drain()
    }

    /// Polls the `Rtc` until it yields a timeout: sends its datagrams, tallies its
    /// packets.
    fn drain(&mut self) -> anyhow::Result<()> {
        loop {
            match self.rtc.poll_output().context("str0m")? {
                Output::Timeout(at) => {
                    self.next_timeout = at;
                    return Ok(());
                }
                Output::Transmit(transmit) => {
                    match self
                        .udp
                        .try_send_to(&transmit.contents, transmit.destination)
                    {
                        Ok(_) => {}
                        // A full send buffer drops the datagram, as a congested line
                        // would; the namespace's UDP counters count it.
                        Err(error) if error.kind() == ErrorKind::WouldBlock => {}
                        Err(error) => bail!("sending on the media socket: {error}"),
                    }
                }
                Output::Event(Event::RtpPacket(packet)) => {
                    self.receiver.on_payload(&packet.payload)
                }
                Output::Event(Event::Connected) => {
                    if let Some(connected) = self.connected.take() {
                        let _ = connected.send(());
                    }
                }
                Output::Event(_) => {}
            }
        }
    }

    /// One signaling message from the server.
    fn on_message(&mut self, text: &str) -> anyhow::Result<()> {
        let message = parse_message(text)?;
        record_sites(&message, &mut self.sites);
        match message.get("type").and_then(Value::as_str) {
            Some("offer") => {
                self.answer(&message)?;
                self.report_video_sizes(&message)
            }
            Some("publish_layers") => {
                self.shared
                    .publish_layers_messages
                    .fetch_add(1, Ordering::Relaxed);
                if !self.simulcast {
                    // A client of one layer keeps sending it, as `TestClient` does.
                    return Ok(());
                }
                let mid = self.video_mid.map(|mid| mid.to_string());
                for (layer, active) in publish_layers(&message, mid.as_deref())? {
                    if let Some(paused) = self.shared.paused.get(layer) {
                        paused.store(!active, Ordering::Relaxed);
                    }
                }
                Ok(())
            }
            Some("error") => bail!("the server refused something: {message}"),
            _ => Ok(()),
        }
    }

    fn answer(&mut self, message: &Value) -> anyhow::Result<()> {
        let sdp = message
            .get("sdp")
            .and_then(Value::as_str)
            .context("`offer` without a string `sdp`")?;
        let offer = SdpOffer::from_sdp_string(sdp).context("parsing the server's offer")?;
        let answer = self
            .rtc
            .sdp_api()
            .accept_offer(offer)
            .context("accepting the server's offer")?;
        send_json(
            &self.outgoing,
            json!({ "type": "answer", "sdp": answer.to_sdp_string() }),
        )?;
        self.drain()
    }

    fn report_video_sizes(&self, offer: &Value) -> anyhow::Result<()> {
        let Some(sizer) = &self.video_sizes else {
            return Ok(());
        };
        let tracks = parse_tracks(offer.get("tracks").context("`offer` without `tracks`")?)?;
        if let Some(message) = video_sizes(&tracks, &self.sites, sizer) {
            send_json(&self.outgoing, message)?;
        }
        Ok(())
    }

    fn fail(&self, failure: String) {
        if self.shared.failures.fetch_add(1, Ordering::Relaxed) == 0 {
            tracing::warn!(%failure, "a light client");
        } else {
            tracing::debug!(%failure, "a light client");
        }
    }
}

/// The `(layer index, active)` pairs of a `publish_layers` message for our video line
/// `mid`, layers by their index in [`SIMULCAST_RIDS`]; an error for a message that is
/// not for our line or names a layer we lack.
fn publish_layers(message: &Value, mid: Option<&str>) -> anyhow::Result<Vec<(usize, bool)>> {
    let theirs = message
        .get("mid")
        .and_then(Value::as_str)
        .context("`publish_layers` without a string `mid`")?;
    if mid != Some(theirs) {
        bail!("`publish_layers` for line {theirs:?}, which is not our video");
    }
    let layers = message
        .get("layers")
        .and_then(Value::as_array)
        .context("`publish_layers` without an array `layers`")?;
    layers
        .iter()
        .map(|layer| {
            let rid = layer.get("rid").and_then(Value::as_str);
            let active = layer
                .get("active")
                .and_then(Value::as_bool)
                .with_context(|| format!("a layer without a boolean `active`: {layer}"))?;
            let index = SIMULCAST_RIDS
                .iter()
                .position(|&ours| Some(ours) == rid)
                .with_context(|| format!("`publish_layers` names a layer we lack: {layer}"))?;
            Ok((index, active))
        })
        .collect()
}

/// The media lines of a server offer's `tracks`; a `screen` line counts as video.
fn parse_tracks(tracks: &Value) -> anyhow::Result<Vec<RemoteTrack>> {
    let tracks = tracks.as_array().context("`tracks` is not an array")?;
    tracks
        .iter()
        .map(|track| {
            let field = |name: &str| {
                track
                    .get(name)
                    .and_then(Value::as_str)
                    .with_context(|| format!("a track without a string `{name}`: {track}"))
            };
            let kind = match field("kind")? {
                "audio" => MediaKind::Audio,
                "video" | "screen" => MediaKind::Video,
                other => bail!("a track of unknown kind {other:?}"),
            };
            Ok(RemoteTrack {
                mid: field("mid")?.to_owned(),
                participant_id: field("participant_id")?.to_owned(),
                kind,
            })
        })
        .collect()
}

/// The `video_sizes` message for the video lines of `tracks`, as `sizer` lays them out;
/// `None` when there is no video.
fn video_sizes(
    tracks: &[RemoteTrack],
    sites: &HashMap<String, String>,
    sizer: &VideoSizer,
) -> Option<Value> {
    let sizes: Vec<Value> = tracks
        .iter()
        .filter(|track| track.kind == MediaKind::Video)
        .map(|track| {
            let site = sites.get(&track.participant_id).map(String::as_str);
            json!({ "mid": track.mid, "height": (sizer.0)(track, site) })
        })
        .collect();
    (!sizes.is_empty()).then(|| json!({ "type": "video_sizes", "sizes": sizes }))
}

/// Notes the site code of every participant `message` introduces.
fn record_sites(message: &Value, sites: &mut HashMap<String, String>) {
    let listed = message.get("participants").and_then(Value::as_array);
    let one = message.get("participant");
    for participant in listed.into_iter().flatten().chain(one) {
        let id = participant.get("id").and_then(Value::as_str);
        let site = participant.get("site").and_then(Value::as_str);
        if let (Some(id), Some(site)) = (id, site) {
            sites.insert(id.to_owned(), site.to_owned());
        }
    }
}

fn parse_message(text: &str) -> anyhow::Result<Value> {
    let message: Value = serde_json::from_str(text)
        .with_context(|| format!("the server sent a frame that is not JSON: {text:?}"))?;
    if message.get("type").and_then(Value::as_str).is_none() {
        bail!("the server sent a message without a string `type`: {text}");
    }
    Ok(message)
}

fn send_json(outgoing: &mpsc::UnboundedSender<String>, message: Value) -> anyhow::Result<()> {
    outgoing
        .send(message.to_string())
        .map_err(|_| anyhow!("the WebSocket writer has stopped"))
}

/// Reads frames until a message of type `wanted`, noting sites on the way; used while
/// joining, before the driver owns the socket.
async fn next_message_of_type(
    stream: &mut SplitStream<Socket>,
    sites: &mut HashMap<String, String>,
    wanted: &str,
) -> anyhow::Result<Value> {
    let read = async {
        loop {
            let frame = stream
                .next()
                .await
                .with_context(|| format!("the server closed the WebSocket before `{wanted}`"))?
                .with_context(|| format!("reading the WebSocket while waiting for `{wanted}`"))?;
            let text = match frame {
                Message::Text(text) => text,
                Message::Close(frame) => {
                    bail!("the server closed the WebSocket before `{wanted}`: {frame:?}")
                }
                _ => continue,
            };
            let message = parse_message(&text)?;
            record_sites(&message, sites);
            match message.get("type").and_then(Value::as_str) {
                Some(kind) if kind == wanted => return Ok(message),
                Some("error") => {
                    bail!("the server refused while we waited for `{wanted}`: {message}")
                }
                Some("offer") => bail!("the server sent an offer while we waited for `{wanted}`"),
                _ => {}
            }
        }
    };
    tokio::time::timeout(STEP_TIMEOUT, read)
        .await
        .with_context(|| format!("no `{wanted}` within {STEP_TIMEOUT:?}"))?
}

/// Hands every text frame to the driver until the socket closes or breaks (then the
/// channel closes, which ends the driver).
async fn read_socket(mut stream: SplitStream<Socket>, signaling: mpsc::UnboundedSender<String>) {
    while let Some(frame) = stream.next().await {
        match frame {
            Ok(Message::Text(text)) => {
                if signaling.send(text.as_str().to_owned()).is_err() {
                    return;
                }
            }
            Ok(Message::Close(_)) => break,
            Ok(_) => {}
            Err(error) => {
                tracing::debug!(%error, "a light client's WebSocket broke");
                break;
            }
        }
    }
}

/// The socket's one writer: queued messages in order, and a ping every
/// [`PING_INTERVAL`].
async fn write_socket(
    mut sink: SplitSink<Socket, Message>,
    mut outgoing: mpsc::UnboundedReceiver<String>,
) {
    let mut ping =
        tokio::time::interval_at(tokio::time::Instant::now() + PING_INTERVAL, PING_INTERVAL);
    loop {
        let result = tokio::select! {
            next = outgoing.recv() => match next {
                Some(text) => sink.send(Message::text(text)).await,
                None => {
                    let _ = sink.close().await;
                    return;
                }
            },
            _ = ping.tick() => sink.send(Message::Ping(Default::default())).await,
        };
        if let Err(error) = result {
            tracing::debug!(%error, "a light client's WebSocket writer stops");
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(simulcast: bool) -> LightConfig {
        LightConfig {
            ws_url: String::new(),
            token: String::new(),
            publish_audio: true,
            publish_video: true,
            simulcast,
            video_sizes: None,
            receiver: Receiver::new(Arc::default()),
        }
    }

    #[test]
    fn a_simulcast_offer_names_three_layers_lowest_first_with_mid_and_rid_extensions() {
        let mut rtc = new_rtc(Instant::now());
        rtc.add_local_candidate(Candidate::host("127.0.0.1:5000".parse().unwrap(), "udp").unwrap());
        let offer = Offer::build(&mut rtc, &config(true)).unwrap();
        let sdp = &offer.sdp;
        assert!(sdp.contains("a=simulcast:send l;m;h"), "{sdp}");
        for rid in SIMULCAST_RIDS {
            assert!(sdp.contains(&format!("a=rid:{rid} send")), "{sdp}");
        }
        assert!(sdp.contains("urn:ietf:params:rtp-hdrext:sdes:mid"), "{sdp}");
        assert!(
            sdp.contains("urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id"),
            "{sdp}"
        );
        assert!(
            sdp.contains("opus/48000/2") && sdp.contains("VP8/90000"),
            "{sdp}"
        );
        assert!(!sdp.contains("red/48000"), "no RED, as TestClient: {sdp}");
        assert!(sdp.contains("127.0.0.1 5000 typ host"), "{sdp}");
        assert_eq!(sdp.matches("a=sendonly").count(), 2, "{sdp}");
        let rids: Vec<Option<String>> = offer
            .streams
            .iter()
            .map(|s| s.as_ref().and_then(|s| s.rid).map(|r| r.to_string()))
            .collect();
        assert_eq!(
            rids,
            [None, Some("l".into()), Some("m".into()), Some("h".into())]
        );
    }

    #[test]
    fn an_offer_without_simulcast_or_media() {
        let mut rtc = new_rtc(Instant::now());
        let offer = Offer::build(&mut rtc, &config(false)).unwrap();
        assert!(!offer.sdp.contains("a=simulcast"), "{}", offer.sdp);
        assert_eq!(offer.streams.len(), 2);

        let mut rtc = new_rtc(Instant::now());
        let silent = LightConfig {
            publish_audio: false,
            publish_video: false,
            ..config(false)
        };
        let offer = Offer::build(&mut rtc, &silent).unwrap();
        assert!(offer.sdp.contains("a=recvonly"), "{}", offer.sdp);
        assert!(offer.streams.iter().all(Option::is_none));
    }

    #[test]
    fn publish_layers_is_read_for_our_line_only() {
        let check = |message: Value, expected: Option<Vec<(usize, bool)>>| {
            assert_eq!(
                publish_layers(&message, Some("1")).ok(),
                expected,
                "{message}"
            );
        };
        check(
            json!({"type": "publish_layers", "mid": "1", "layers": [
                {"rid": "l", "active": true}, {"rid": "m", "active": false},
                {"rid": "h", "active": false}]}),
            Some(vec![(0, true), (1, false), (2, false)]),
        );
        check(
            json!({"mid": "1", "layers": [{"rid": "h", "active": true}]}),
            Some(vec![(2, true)]),
        );
        check(json!({"mid": "0", "layers": []}), None);
        check(json!({"mid": 1, "layers": []}), None);
        check(json!({"mid": "1"}), None);
        check(
            json!({"mid": "1", "layers": [{"rid": "x", "active": true}]}),
            None,
        );
        check(
            json!({"mid": "1", "layers": [{"rid": null, "active": true}]}),
            None,
        );
        check(
            json!({"mid": "1", "layers": [{"rid": "l", "active": "yes"}]}),
            None,
        );
        assert!(publish_layers(&json!({"mid": "1", "layers": []}), None).is_err());
    }

    #[test]
    fn video_sizes_follow_the_sizer_by_site() {
        let tracks = parse_tracks(&json!([
            {"mid": "2", "participant_id": "p-chair", "kind": "video"},
            {"mid": "3", "participant_id": "p-chair", "kind": "audio"},
            {"mid": "4", "participant_id": "p-other", "kind": "video"},
            {"mid": "5", "participant_id": "p-unknown", "kind": "screen"},
        ]))
        .unwrap();
        let mut sites = HashMap::new();
        record_sites(
            &json!({"type": "joined", "participants": [
                {"id": "p-chair", "site": "TINH"}, {"id": "p-other", "site": "XA01"},
                {"id": "p-adhoc", "site": null}]}),
            &mut sites,
        );
        record_sites(
            &json!({"type": "participant_joined", "participant": {"id": "p-late", "site": "XA02"}}),
            &mut sites,
        );
        assert_eq!(sites.len(), 3);
        let sizer = VideoSizer(Arc::new(
            |_track: &RemoteTrack, site: Option<&str>| match site {
                Some("TINH") => 720,
                Some(_) => 180,
                None => 0,
            },
        ));
        let message = video_sizes(&tracks, &sites, &sizer).unwrap();
        assert_eq!(
            message,
            json!({"type": "video_sizes", "sizes": [
                {"mid": "2", "height": 720}, {"mid": "4", "height": 180},
                {"mid": "5", "height": 0}]})
        );
        assert_eq!(video_sizes(&tracks[1..2], &sites, &sizer), None);
    }

    #[test]
    fn bad_tracks_are_errors_not_panics() {
        for tracks in [
            json!({}),
            json!([{"mid": "1", "participant_id": "p"}]),
            json!([{"mid": 1, "participant_id": "p", "kind": "audio"}]),
            json!([{"mid": "1", "participant_id": "p", "kind": "hologram"}]),
        ] {
            assert!(parse_tracks(&tracks).is_err(), "{tracks}");
        }
        assert!(parse_message("not json").is_err());
        assert!(parse_message(r#"{"type": 3}"#).is_err());
    }

    #[test]
    fn numbering_advances_timestamps_by_frame() {
        let mut audio = Numbering {
            sequence: 10,
            timestamp: u32::MAX,
        };
        audio.advance(MediaKind::Audio, false);
        assert_eq!(
            audio,
            Numbering {
                sequence: 11,
                timestamp: 959
            }
        );
        let mut video = Numbering {
            sequence: 0,
            timestamp: 0,
        };
        video.advance(MediaKind::Video, false);
        video.advance(MediaKind::Video, true);
        video.advance_timestamp(MediaKind::Video, true);
        assert_eq!(
            video,
            Numbering {
                sequence: 2,
                timestamp: 7200
            }
        );
        let first = Numbering::random(Mid::from("1"), Some(Rid::from("h")));
        assert!(first.sequence < 16_384);
    }
}
