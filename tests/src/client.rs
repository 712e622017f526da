//! A meeting participant for end-to-end tests, built on webrtc-rs rather than on str0m.
//!
//! The server's media core is str0m. A test client on str0m would share its reading of the
//! specs and its bugs, so a wrong SDP or a wrong SRTP context could pass unnoticed. webrtc-rs
//! (the `webrtc` crate, an async layer over the sans-IO `rtc` core) is an independent
//! implementation of ICE, DTLS, SRTP and SDP negotiation, so a test that passes between the
//! two has been checked by a second opinion.
//!
//! [`TestClient`] speaks the signaling protocol of `docs/signaling.md` over a real WebSocket:
//! it joins, makes its one offer with `sendonly` Opus and VP8 media lines, trickles its ICE
//! candidates, answers every server offer, and records every signaling message and every RTP
//! packet it receives so that tests can compare what arrived with what was sent, byte for byte.
//! Media is written as raw RTP ([`TrackLocalStaticRTP`]): the tests choose each payload, so
//! they can tag it with the sender and an index and check it on arrival.
//!
//! The client binds its one UDP socket to 127.0.0.1: webrtc-rs expands a wildcard address
//! into the machine's interfaces *without* loopback, and inside a sealed network namespace
//! loopback is the only interface there is.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use bytes::Bytes;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use rtc::ice::mdns::MulticastDnsMode;
use rtc::peer_connection::configuration::media_engine::{MIME_TYPE_OPUS, MIME_TYPE_VP8};
use rtc::rtp;
use rtc::rtp_transceiver::RTCRtpTransceiverDirection;
use rtc::rtp_transceiver::RTCRtpTransceiverId;
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters,
    RTCRtpEncodingParameters, RtpCodecKind,
};
use rtc::sdp::extmap::{SDES_MID_URI, SDES_RTP_STREAM_ID_URI};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use webrtc::media_stream::MediaStreamTrack;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCConfigurationBuilder, RTCIceCandidateInit, RTCPeerConnectionIceEvent,
    RTCPeerConnectionState, RTCSessionDescription, Registry, SettingEngineBuilder,
    register_default_interceptors,
};
use webrtc::rtp_transceiver::{RTCRtpReceiverId, RTCRtpTransceiverInit, RtpSender, RtpTransceiver};

/// How long `join` waits for each server reply (`joined`, `answer`) and for ICE and DTLS to
/// connect. Everything is on loopback, where each takes milliseconds; the margin is for a
/// loaded two-core CI machine running several clients and a debug build.
const STEP_TIMEOUT: Duration = Duration::from_secs(10);

/// How long `leave` waits for the server's `left` or its closing of the socket.
const LEAVE_TIMEOUT: Duration = Duration::from_secs(5);

/// How often the client pings over the WebSocket. The server closes a session that sends no
/// frame for 30 s, and a test may sit idle (say, waiting on media) for longer than that.
const PING_INTERVAL: Duration = Duration::from_secs(10);

/// How often `wait_until` re-checks its condition: short next to every timeout, long enough
/// not to compete with the clients for the two cores.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// The Opus payload type we offer. The server answers our offer, so it keeps our numbers;
/// the one actually used is read back from the negotiated sender parameters all the same.
const OPUS_PAYLOAD_TYPE: u8 = 111;

/// The VP8 payload type we offer; see [`OPUS_PAYLOAD_TYPE`].
const VP8_PAYLOAD_TYPE: u8 = 96;

/// Opus's RTP clock (48 kHz) advances by 960 per 20 ms packet.
const AUDIO_TIMESTAMP_STEP: u32 = 960;

/// VP8's RTP clock (90 kHz) advances by 3000 per frame at 30 frames a second.
const VIDEO_TIMESTAMP_STEP: u32 = 3000;

/// What a [`TestClient`] joins and publishes.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The server's signaling endpoint, `ws://127.0.0.1:PORT/ws`.
    pub ws_url: String,
    /// The room to join.
    pub room: String,
    /// The display name sent in `join`.
    pub name: String,
    /// Whether the one offer has a `sendonly` Opus media line.
    pub publish_audio: bool,
    /// Whether the one offer has a `sendonly` VP8 media line.
    pub publish_video: bool,
    /// A meeting's join token: when set, `join` carries it instead of room and name.
    pub token: Option<String>,
    /// The loopback address the client's media socket binds: any of 127.0.0.0/8. A
    /// site of its own address can be given a line of its own with [`crate::shaping`].
    pub local_ip: Ipv4Addr,
    /// When set, every RTP packet received goes to this function as it arrives instead
    /// of being recorded: a load test receiving for minutes would otherwise hold every
    /// payload in memory, and it needs the arrival time, which the record lacks.
    pub packet_sink: Option<PacketSink>,
    /// Whether the video goes out in the three simulcast layers of [`SIMULCAST_RIDS`], as
    /// the web client sends its camera, rather than in one. A simulcast client also obeys
    /// `publish_layers`: it stops sending a layer the server pauses, and resumes when told.
    pub simulcast: bool,
    /// When set, the client reports the height it shows each received video at
    /// (`video_sizes`) after answering each server offer, as a browser does once it has
    /// laid out its tiles. Without it the client says nothing, and the server takes every
    /// video as shown large.
    pub video_sizes: Option<VideoSizer>,
}

/// The RIDs of a simulcast client's video layers, lowest first, as the web client names
/// its camera's layers (`CAMERA_LAYERS` in `web/assets/call.js`): a quarter, half and the
/// whole of the camera's size.
pub const SIMULCAST_RIDS: [&str; 3] = ["l", "m", "h"];

/// The picture size (width, height) of each simulcast layer, lowest first, from a 1280x720
/// camera, as the keyframes of [`TestClient::send_tagged_on_layer`] declare it. The server
/// reads a layer's height from its keyframes to match it with the size a video is shown at.
pub const SIMULCAST_SIZES: [(u16, u16); 3] = [(320, 180), (640, 360), (1280, 720)];

/// The height in device pixels at which a client shows a received video, 0 for one it does
/// not show; see [`ClientConfig::video_sizes`]. Called with the media line and the site
/// code of its participant, when the client has seen one (a meeting's participants have
/// one, an ad-hoc room's do not).
#[derive(Clone)]
pub struct VideoSizer(pub Arc<ShownHeight>);

/// See [`VideoSizer`]: the media line and its participant's site code in, a height out.
pub type ShownHeight = dyn Fn(&RemoteTrack, Option<&str>) -> u32 + Send + Sync;

impl std::fmt::Debug for VideoSizer {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("VideoSizer")
    }
}

/// What a client sent and held back of one of its video layers, since it joined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerCount {
    /// The layer's RID; `None` for video sent without simulcast.
    pub rid: Option<String>,
    /// Whether the layer is being sent: the server has not paused it.
    pub active: bool,
    /// Packets handed to the RTP stack, and their RTP payload bytes.
    pub packets_sent: u64,
    pub bytes_sent: u64,
    /// Packets asked for while the layer was paused, and not sent.
    pub packets_paused: u64,
    pub bytes_paused: u64,
}

/// Whether [`TestClient::send_video_layer`] sent the packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerSend {
    Sent,
    /// The server paused the layer (`publish_layers`): no one receives it.
    Paused,
}

/// A function called with each RTP packet as it arrives; see [`ClientConfig::packet_sink`].
#[derive(Clone)]
pub struct PacketSink(pub Arc<dyn Fn(&ReceivedPacket) + Send + Sync>);

impl std::fmt::Debug for PacketSink {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("PacketSink")
    }
}

impl ClientConfig {
    /// A participant that publishes both audio and video, as a browser with camera and
    /// microphone would.
    pub fn new(
        ws_url: impl Into<String>,
        room: impl Into<String>,
        name: impl Into<String>,
    ) -> Self {
        ClientConfig {
            ws_url: ws_url.into(),
            room: room.into(),
            name: name.into(),
            publish_audio: true,
            publish_video: true,
            token: None,
            local_ip: Ipv4Addr::LOCALHOST,
            packet_sink: None,
            simulcast: false,
            video_sizes: None,
        }
    }

    /// A site joining a scheduled meeting with its join link's token. `join` returns once
    /// the site is in the meeting: after the chair admits it if it waits in the lobby.
    pub fn with_token(ws_url: impl Into<String>, token: impl Into<String>) -> Self {
        ClientConfig {
            token: Some(token.into()),
            ..ClientConfig::new(ws_url, "", "")
        }
    }
}

/// Audio or video, as the signaling protocol spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MediaKind {
    /// Opus.
    Audio,
    /// VP8.
    Video,
}

impl MediaKind {
    /// The protocol's spelling: `"audio"` or `"video"`.
    pub fn as_str(self) -> &'static str {
        match self {
            MediaKind::Audio => "audio",
            MediaKind::Video => "video",
        }
    }

    fn parse(text: &str) -> Option<MediaKind> {
        match text {
            "audio" => Some(MediaKind::Audio),
            "video" => Some(MediaKind::Video),
            _ => None,
        }
    }
}

/// One media line the server sends to this client, from the `tracks` of its latest offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteTrack {
    /// The media line's `a=mid`.
    pub mid: String,
    /// Whose track it carries.
    pub participant_id: String,
    /// What it carries.
    pub kind: MediaKind,
}

/// One RTP packet received from the server, after SRTP decryption.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedPacket {
    /// The participant it came from: by the media line's `mid` in the server's `tracks` list
    /// when known, otherwise by the media stream id, which the protocol also makes the
    /// participant id.
    pub from: String,
    /// The media stream id (`a=msid`) of the track it arrived on.
    pub stream_id: String,
    /// The `mid` of the media line it arrived on, if webrtc-rs could tell.
    pub mid: Option<String>,
    /// Audio or video, from the media line.
    pub kind: MediaKind,
    /// The whole RTP payload.
    pub payload: Vec<u8>,
    /// The RTP sequence number, as the server rewrote it.
    pub sequence_number: u16,
    /// The RTP timestamp, as the server rewrote it.
    pub timestamp: u32,
    /// The RTP payload type.
    pub payload_type: u8,
    /// The RTP marker bit.
    pub marker: bool,
    /// The RTP SSRC, the server's for this forwarded stream.
    pub ssrc: u32,
}

/// A webrtc-rs participant connected to a Cầu server. See the module docs.
pub struct TestClient {
    participant_id: String,
    recorder: Arc<Recorder>,
    outgoing: mpsc::UnboundedSender<Outgoing>,
    peer_connection: Arc<dyn PeerConnection>,
    audio: Option<Arc<LocalTrack>>,
    /// Shared with the socket reader, which pauses and resumes its layers.
    video: Option<Arc<LocalTrack>>,
    connection_state: watch::Receiver<RTCPeerConnectionState>,
    tasks: Tasks,
}

impl TestClient {
    /// Connects the WebSocket, sends `join`, creates the peer connection with `sendonly` Opus
    /// and VP8 transceivers as configured, sends the one offer, applies the answer, trickles
    /// ICE candidates, and returns once ICE and DTLS are connected. From then on a background
    /// task answers every server `offer` (renegotiation) and records every signaling message.
    ///
    /// Waiting for the connection here means a test can send media as soon as `join` returns.
    /// It matters because webrtc-rs's `write_rtp` succeeds once the packet is queued for its
    /// driver: whatever the core then refuses (no SRTP context yet, an unknown SSRC or payload
    /// type) is only logged, so a packet sent too early vanishes without an error.
    pub async fn join(config: ClientConfig) -> anyhow::Result<TestClient> {
        let (socket, _response) = tokio_tungstenite::connect_async(config.ws_url.as_str())
            .await
            .with_context(|| format!("connecting the WebSocket to {}", config.ws_url))?;
        let (sink, mut stream) = socket.split();
        let recorder = Arc::new(Recorder {
            sink: config.packet_sink.clone(),
            ..Recorder::default()
        });
        let mut tasks = Tasks::default();
        let (outgoing, outgoing_rx) = mpsc::unbounded_channel();
        tasks.push(tokio::spawn(write_socket(
            sink,
            outgoing_rx,
            recorder.clone(),
        )));

        let join = match &config.token {
            Some(token) => json!({ "type": "join", "token": token }),
            None => json!({ "type": "join", "room": config.room, "name": config.name }),
        };
        send_json(&outgoing, join)?;
        let joined = next_message_of_type(&mut stream, &recorder, "joined").await?;
        let participant_id = joined
            .get("participant_id")
            .and_then(Value::as_str)
            .context("`joined` without a string `participant_id`")?
            .to_owned();

        let (candidates, mut candidates_rx) = mpsc::unbounded_channel();
        let (state_tx, connection_state) = watch::channel(RTCPeerConnectionState::New);
        let peer_connection_cell = Arc::new(OnceLock::new());
        let handler = Handler {
            recorder: recorder.clone(),
            candidates,
            connection_state: state_tx,
            peer_connection: peer_connection_cell.clone(),
        };
        let peer_connection = build_peer_connection(handler, config.local_ip).await?;
        // The handler holds a weak reference: the connection owns the handler, and a strong
        // one would keep both alive forever.
        let _ = peer_connection_cell.set(Arc::downgrade(&peer_connection));

        let mut audio = None;
        if config.publish_audio {
            let rids = [None];
            audio = Some(
                add_local_track(&peer_connection, &config.name, MediaKind::Audio, &rids).await?,
            );
        }
        let mut video = None;
        if config.publish_video {
            let rids: Vec<Option<&str>> = if config.simulcast {
                SIMULCAST_RIDS.iter().copied().map(Some).collect()
            } else {
                vec![None]
            };
            video = Some(
                add_local_track(&peer_connection, &config.name, MediaKind::Video, &rids).await?,
            );
        }

        let offer = peer_connection
            .create_offer(None)
            .await
            .context("creating the offer")?;
        peer_connection
            .set_local_description(offer)
            .await
            .context("applying our offer")?;
        let offer = peer_connection
            .local_description()
            .await
            .context("no local description after applying our offer")?;
        send_json(&outgoing, json!({ "type": "offer", "sdp": offer.sdp }))?;

        // Candidates gathered before the offer went out waited in the channel: the protocol
        // takes them only after the offer.
        let candidate_outgoing = outgoing.clone();
        tasks.push(tokio::spawn(async move {
            while let Some(candidate) = candidates_rx.recv().await {
                let mut message = json!({ "type": "candidate", "candidate": candidate.candidate });
                if let Some(mid) = candidate.sdp_mid.filter(|mid| !mid.is_empty()) {
                    message["sdp_mid"] = Value::String(mid);
                }
                if send_json(&candidate_outgoing, message).is_err() {
                    break;
                }
            }
        }));

        let answer = next_message_of_type(&mut stream, &recorder, "answer").await?;
        let sdp = answer
            .get("sdp")
            .and_then(Value::as_str)
            .context("`answer` without a string `sdp`")?;
        let answer =
            RTCSessionDescription::answer(sdp.to_owned()).context("parsing the server's answer")?;
        peer_connection
            .set_remote_description(answer)
            .await
            .context("applying the server's answer")?;

        for track in audio.iter_mut().chain(video.iter_mut()) {
            track.payload_type = negotiated_payload_type(&track.sender, track.kind).await?;
            if track.encodings.len() > 1 {
                track.extensions = Some(simulcast_extensions(track).await?);
            }
        }
        let audio = audio.map(Arc::new);
        let video = video.map(Arc::new);

        tasks.push(tokio::spawn(read_socket(
            stream,
            Reader {
                outgoing: outgoing.clone(),
                peer_connection: peer_connection.clone(),
                recorder: recorder.clone(),
                video: video.clone().filter(|track| track.encodings.len() > 1),
                video_sizes: config.video_sizes.clone(),
            },
        )));

        let mut client = TestClient {
            participant_id,
            recorder,
            outgoing,
            peer_connection,
            audio,
            video,
            connection_state,
            tasks,
        };
        client.wait_connected().await?;
        Ok(client)
    }

    /// The id the server gave us in `joined`.
    pub fn participant_id(&self) -> &str {
        &self.participant_id
    }

    /// Sends one RTP packet on the audio track, with our own sequence number and a timestamp
    /// that advances by one 20 ms Opus frame per packet. `payload` is the whole RTP payload.
    pub async fn send_audio(&self, payload: &[u8]) -> anyhow::Result<()> {
        let track = self
            .audio
            .as_ref()
            .context("this client does not publish audio")?;
        track.send(0, payload, false).await
    }

    /// Sends one RTP packet on the video track, with our own sequence number and a timestamp
    /// that advances after each packet with the marker bit (the last packet of a frame).
    /// `payload` is the whole RTP payload: the caller puts the VP8 payload descriptor first.
    /// A simulcast client sends it on its lowest layer, whether paused or not.
    pub async fn send_video(&self, payload: &[u8], marker: bool) -> anyhow::Result<()> {
        let track = self
            .video
            .as_ref()
            .context("this client does not publish video")?;
        track.send(0, payload, marker).await
    }

    /// Sends one RTP packet on video layer `layer` (an index into [`SIMULCAST_RIDS`], 0
    /// without simulcast), numbered as [`send_video`](Self::send_video) numbers, with the
    /// MID and RID header extensions by which the server tells the layers apart. Unless
    /// the server has paused the layer: then nothing is sent, as a browser's encoder stops,
    /// but the layer's timestamp still advances at each frame's end, as a paused camera's
    /// clock runs on.
    pub async fn send_video_layer(
        &self,
        layer: usize,
        payload: &[u8],
        marker: bool,
    ) -> anyhow::Result<LayerSend> {
        let track = self
            .video
            .as_ref()
            .context("this client does not publish video")?;
        let encoding = track
            .encodings
            .get(layer)
            .with_context(|| format!("this client has no video layer {layer}"))?;
        if !encoding.active.load(Ordering::SeqCst) {
            encoding.hold_back(payload.len(), marker);
            return Ok(LayerSend::Paused);
        }
        track.send(layer, payload, marker).await?;
        Ok(LayerSend::Sent)
    }

    /// Whether video layer `layer` is being sent: a simulcast layer the server paused is
    /// not. False for a layer this client does not have.
    pub fn video_layer_active(&self, layer: usize) -> bool {
        self.video
            .as_ref()
            .and_then(|track| track.encodings.get(layer))
            .is_some_and(|encoding| encoding.active.load(Ordering::SeqCst))
    }

    /// What each video layer sent and held back since joining, lowest first; empty
    /// without video.
    pub fn video_layer_counts(&self) -> Vec<LayerCount> {
        self.video
            .iter()
            .flat_map(|track| &track.encodings)
            .map(Encoding::count)
            .collect()
    }

    /// Whether this client publishes `kind`.
    pub fn publishes(&self, kind: MediaKind) -> bool {
        match kind {
            MediaKind::Audio => self.audio.is_some(),
            MediaKind::Video => self.video.is_some(),
        }
    }

    /// Sends the packet [`tagged_payload`] makes, each one a whole frame: a video packet has
    /// the marker bit.
    pub async fn send_tagged(&self, tag: &str, kind: MediaKind, index: u32) -> anyhow::Result<()> {
        let payload = tagged_payload(tag, kind, index);
        match kind {
            MediaKind::Audio => self.send_audio(&payload).await,
            MediaKind::Video => self.send_video(&payload, true).await,
        }
    }

    /// Sends the packet [`tagged_payload`] makes on video layer `layer`, a whole frame,
    /// its keyframe header declaring the layer's size of [`SIMULCAST_SIZES`]; see
    /// [`send_video_layer`](Self::send_video_layer). [`parse_tagged_payload`] reads its
    /// tag and index back, but finds it not intact: the size differs from the default.
    pub async fn send_tagged_on_layer(
        &self,
        tag: &str,
        layer: usize,
        index: u32,
    ) -> anyhow::Result<LayerSend> {
        let mut payload = tagged_payload(tag, MediaKind::Video, index);
        if let Some(&(width, height)) = SIMULCAST_SIZES.get(layer) {
            // After the descriptor byte, the frame tag (3) and the start code (3).
            payload[7..9].copy_from_slice(&width.to_le_bytes());
            payload[9..11].copy_from_slice(&height.to_le_bytes());
        }
        self.send_video_layer(layer, &payload, true).await
    }

    /// Checks that the packets of `kind` received from participant `from` and tagged `tag` are
    /// exactly indices `0..count`, once each, in order, every byte as sent, and with sequence
    /// numbers and timestamps advancing as the sender advanced them. The error lists what is
    /// missing, duplicated, corrupted or out of order.
    pub fn check_received_exactly(
        &self,
        from: &str,
        kind: MediaKind,
        tag: &str,
        count: u32,
    ) -> anyhow::Result<()> {
        let packets: Vec<(ReceivedPacket, TaggedPayload)> = self
            .received()
            .into_iter()
            .filter(|packet| packet.from == from && packet.kind == kind)
            .filter_map(|packet| {
                let tagged = parse_tagged_payload(kind, &packet.payload)?;
                (tagged.tag == tag).then_some((packet, tagged))
            })
            .collect();
        let indices: Vec<u32> = packets.iter().map(|(_, tagged)| tagged.index).collect();
        let expected: Vec<u32> = (0..count).collect();
        let corrupted: Vec<u32> = packets
            .iter()
            .filter(|(_, tagged)| !tagged.intact)
            .map(|(_, tagged)| tagged.index)
            .collect();
        let context = || {
            format!(
                "{} receiving {} {tag:?} from {from}",
                self.participant_id,
                kind.as_str()
            )
        };
        if indices != expected || !corrupted.is_empty() {
            let missing: Vec<u32> = expected
                .iter()
                .filter(|i| !indices.contains(i))
                .copied()
                .collect();
            let mut seen = std::collections::HashSet::new();
            let duplicated: Vec<u32> = indices
                .iter()
                .filter(|i| !seen.insert(**i))
                .copied()
                .collect();
            let in_order = indices.windows(2).all(|pair| pair[0] < pair[1]);
            let order = if in_order {
                "in order".to_owned()
            } else {
                format!("arrival order {indices:?}")
            };
            bail!(
                "{}: got {} packets for {count} sent; missing {missing:?}, duplicated {duplicated:?}, \
                 corrupted {corrupted:?}, {order}",
                context(),
                indices.len()
            );
        }
        let timestamp_step = match kind {
            MediaKind::Audio => AUDIO_TIMESTAMP_STEP,
            MediaKind::Video => VIDEO_TIMESTAMP_STEP,
        };
        for pair in packets.windows(2) {
            let (previous, next) = (&pair[0].0, &pair[1].0);
            if next.sequence_number != previous.sequence_number.wrapping_add(1)
                || next.timestamp != previous.timestamp.wrapping_add(timestamp_step)
            {
                bail!(
                    "{}: index {} has sequence number {} and timestamp {} after {} and {}; \
                     the sender advanced them by 1 and {timestamp_step}",
                    context(),
                    pair[1].1.index,
                    next.sequence_number,
                    next.timestamp,
                    previous.sequence_number,
                    previous.timestamp
                );
            }
        }
        Ok(())
    }

    /// Every RTP packet received so far, in arrival order.
    pub fn received(&self) -> Vec<ReceivedPacket> {
        lock(&self.recorder.received).clone()
    }

    /// Every signaling message received so far, in arrival order. Frames that were not JSON
    /// are not here; they are in [`failures`](Self::failures).
    pub fn messages(&self) -> Vec<Value> {
        lock(&self.recorder.messages).clone()
    }

    /// The signaling messages received so far whose `type` is `kind`.
    pub fn messages_of_type(&self, kind: &str) -> Vec<Value> {
        lock(&self.recorder.messages)
            .iter()
            .filter(|message| message.get("type").and_then(Value::as_str) == Some(kind))
            .cloned()
            .collect()
    }

    /// The media lines the server sends us, from the latest offer we answered (or are
    /// answering: the list is taken before the answer goes out, so that no packet on a new
    /// line can arrive before we know whose it is).
    pub fn remote_tracks(&self) -> Vec<RemoteTrack> {
        lock(&self.recorder.remote_tracks).clone()
    }

    /// How many server offers we have answered, counting only answers that went out.
    pub fn answered_offers(&self) -> usize {
        self.recorder.answered_offers.load(Ordering::SeqCst)
    }

    /// What went wrong in the background: a server offer we could not answer, a frame that was
    /// not JSON, a WebSocket error. A healthy session has none; tests assert that.
    pub fn failures(&self) -> Vec<String> {
        lock(&self.recorder.failures).clone()
    }

    /// Whether the server closed the WebSocket (or it broke).
    pub fn socket_closed(&self) -> bool {
        self.recorder.socket_closed.load(Ordering::SeqCst)
    }

    /// The peer connection's state as webrtc-rs last reported it.
    pub fn connection_state(&self) -> RTCPeerConnectionState {
        *self.connection_state.borrow()
    }

    /// Polls `predicate` until it holds or `timeout` passes. The error names `what`, so a
    /// failing test says what it was waiting for, and lists any background failures.
    pub async fn wait_until(
        &self,
        what: &str,
        timeout: Duration,
        predicate: impl Fn(&TestClient) -> bool,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if predicate(self) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "{} timed out after {timeout:?} waiting for {what}; background failures: {:?}",
                    self.participant_id,
                    self.failures()
                );
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// Sends a raw text frame, for bad-input tests, and returns without waiting for a reply.
    pub async fn send_raw(&self, text: &str) -> anyhow::Result<()> {
        self.outgoing
            .send(Outgoing::Text(text.to_owned()))
            .map_err(|_| anyhow!("the WebSocket writer has stopped"))
    }

    /// Sends `leave`, waits for the server's `left` (or its closing of the socket), then closes
    /// the peer connection and the socket. Fails if the server did not confirm.
    pub async fn leave(self) -> anyhow::Result<()> {
        send_json(&self.outgoing, json!({ "type": "leave" }))?;
        let confirmed = self
            .wait_until("`left` after `leave`", LEAVE_TIMEOUT, |client| {
                client.socket_closed() || !client.messages_of_type("left").is_empty()
            })
            .await;
        let closed = self
            .peer_connection
            .close()
            .await
            .context("closing the peer connection");
        // A polite close frame; the writer ends after sending it.
        let _ = self.outgoing.send(Outgoing::Close);
        self.tasks.finish_writer().await;
        confirmed?;
        closed
    }

    /// Closes everything without `leave`, as a crashed tab or a lost network would: the
    /// WebSocket's TCP connection is dropped without a close frame. The peer connection is
    /// closed to free its socket and driver task.
    pub async fn drop_abruptly(self) {
        self.tasks.abort_all();
        if let Err(error) = self.peer_connection.close().await {
            tracing::debug!(%error, "closing the peer connection of a dropped client");
        }
    }

    /// Closes the peer connection but keeps the WebSocket open, as when a site's media
    /// path fails while its signaling connection has not noticed yet.
    pub async fn close_media(&self) -> anyhow::Result<()> {
        self.peer_connection
            .close()
            .await
            .context("closing the peer connection")
    }

    async fn wait_connected(&mut self) -> anyhow::Result<()> {
        let failures = self.recorder.clone();
        let state = tokio::time::timeout(
            STEP_TIMEOUT,
            self.connection_state.wait_for(|state| {
                matches!(
                    state,
                    RTCPeerConnectionState::Connected
                        | RTCPeerConnectionState::Failed
                        | RTCPeerConnectionState::Closed
                )
            }),
        )
        .await
        .with_context(|| {
            format!(
                "the media connection did not come up within {STEP_TIMEOUT:?}; failures: {:?}",
                lock(&failures.failures)
            )
        })?
        .map(|state| *state)
        .context("the peer connection's state channel closed")?;
        if state != RTCPeerConnectionState::Connected {
            bail!("the media connection ended {state} instead of connecting");
        }
        Ok(())
    }
}

/// The VP8 payload descriptor byte of a packet that starts a frame: S=1, partition 0,
/// no extension fields (RFC 7741 §4.2).
pub const VP8_DESCRIPTOR_FRAME_START: u8 = 0x10;

/// The start of a VP8 keyframe (RFC 6386 §9.1): the frame tag (keyframe, version 0, shown),
/// the start code, and a 640x360 size. Tagged video looks like a keyframe so that a server
/// which waits for one before forwarding to a new subscriber forwards it.
const VP8_KEYFRAME_HEADER: [u8; 10] = [0x10, 0x00, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0x68, 0x01];

/// The tag of the packets [`warm_up`] sends from participant `participant_id`. It names the
/// sender, so that where a warm-up packet ends up can be checked without trusting the
/// server's word on whose it is.
pub fn warm_up_tag(participant_id: &str) -> String {
    format!("warm-up/{participant_id}")
}

/// What [`parse_tagged_payload`] read from a payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaggedPayload {
    /// The tag the sender chose, say a room and a name.
    pub tag: String,
    /// The sender's index of this packet.
    pub index: u32,
    /// Whether every byte is the one [`tagged_payload`] makes for this tag, kind and index.
    pub intact: bool,
}

/// A test payload that says what it is: `tag|kind|index|` as text, then bytes that depend on
/// all three, so a payload mixed up with another, cut short or altered on the way cannot
/// pass for the expected one. Lengths vary with the index (audio 40 to 119 bytes, video up to
/// about 1100) so that a server which mishandled some sizes would show it. Video starts with
/// a VP8 payload descriptor and keyframe header, as an encoder's first packet of a frame does.
///
/// `tag` must not contain `|`.
pub fn tagged_payload(tag: &str, kind: MediaKind, index: u32) -> Vec<u8> {
    let mut payload = Vec::new();
    let filler = match kind {
        MediaKind::Audio => 40 + (index % 80) as usize,
        MediaKind::Video => {
            payload.push(VP8_DESCRIPTOR_FRAME_START);
            payload.extend_from_slice(&VP8_KEYFRAME_HEADER);
            200 + (index as usize * 37) % 900
        }
    };
    let label = format!("{tag}|{}|{index}|", kind.as_str());
    payload.extend_from_slice(label.as_bytes());
    // FNV-1a of the label seeds an xorshift: cheap, deterministic and different per packet.
    let mut state = label.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    });
    for _ in 0..filler {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        payload.push(state as u8);
    }
    payload
}

/// Reads the tag and index of a payload made by [`tagged_payload`], and checks the rest.
/// `None` if it is not one.
pub fn parse_tagged_payload(kind: MediaKind, payload: &[u8]) -> Option<TaggedPayload> {
    let text = match kind {
        MediaKind::Audio => payload,
        MediaKind::Video => payload.get(1 + VP8_KEYFRAME_HEADER.len()..)?,
    };
    let mut fields = text.splitn(4, |&byte| byte == b'|');
    let tag = std::str::from_utf8(fields.next()?).ok()?;
    let kind_field = fields.next()?;
    let index: u32 = std::str::from_utf8(fields.next()?).ok()?.parse().ok()?;
    fields.next()?;
    if kind_field != kind.as_str().as_bytes() {
        return None;
    }
    Some(TaggedPayload {
        tag: tag.to_owned(),
        index,
        intact: payload == tagged_payload(tag, kind, index).as_slice(),
    })
}

/// Gets media flowing within `group`, one room's clients: each member sends a
/// [`warm_up_tag`] packet of every kind it publishes, round after round, until every member has
/// received one of each from every other.
///
/// The server forwards on a new media line only once the subscriber's answer for it is in,
/// and no message says when that is. Waiting for media itself is exact where a sleep would
/// be a guess: after this, packets sent are packets forwarded.
pub async fn warm_up(group: &[&TestClient], timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    let mut round = 0;
    loop {
        for client in group {
            for kind in [MediaKind::Audio, MediaKind::Video] {
                if client.publishes(kind) {
                    client
                        .send_tagged(&warm_up_tag(&client.participant_id), kind, round)
                        .await?;
                }
            }
        }
        round += 1;
        tokio::time::sleep(POLL_INTERVAL).await;
        let waiting = warm_up_missing(group);
        if waiting.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!(
                "media did not flow within {timeout:?}; still waiting for (receiver, sender, kind) {waiting:?}"
            );
        }
    }
}

/// The (receiver, sender, kind) triples of `group` that no warm-up packet has covered yet.
fn warm_up_missing(group: &[&TestClient]) -> Vec<(String, String, MediaKind)> {
    let mut missing = Vec::new();
    for receiver in group {
        let received = receiver.received();
        for sender in group {
            if sender.participant_id == receiver.participant_id {
                continue;
            }
            for kind in [MediaKind::Audio, MediaKind::Video] {
                let arrived = received.iter().any(|packet| {
                    packet.from == sender.participant_id
                        && packet.kind == kind
                        && parse_tagged_payload(kind, &packet.payload)
                            .is_some_and(|tagged| tagged.tag == warm_up_tag(&sender.participant_id))
                });
                if sender.publishes(kind) && !arrived {
                    missing.push((
                        receiver.participant_id.clone(),
                        sender.participant_id.clone(),
                        kind,
                    ));
                }
            }
        }
    }
    missing
}

/// What the background tasks observed, shared with the test's thread.
///
/// A test harness, not a core: the socket reader, one reader per remote track and the test
/// itself all touch it. Plain mutexes do, because no lock is ever held across an `await`.
#[derive(Default)]
struct Recorder {
    messages: Mutex<Vec<Value>>,
    received: Mutex<Vec<ReceivedPacket>>,
    remote_tracks: Mutex<Vec<RemoteTrack>>,
    answered_offers: AtomicUsize,
    failures: Mutex<Vec<String>>,
    socket_closed: AtomicBool,
    /// Takes the received packets instead of `received`, when set.
    sink: Option<PacketSink>,
}

impl Recorder {
    fn fail(&self, failure: String) {
        tracing::warn!(%failure, "test client");
        lock(&self.failures).push(failure);
    }

    /// The site code of participant `id`, from the `joined` and `participant_joined`
    /// messages seen so far.
    fn site_of(&self, id: &str) -> Option<String> {
        let messages = lock(&self.messages);
        let participants = messages.iter().flat_map(|message| {
            let joined = message.get("participants").and_then(Value::as_array);
            let one = message.get("participant");
            joined.into_iter().flatten().chain(one)
        });
        participants
            .filter(|participant| participant.get("id").and_then(Value::as_str) == Some(id))
            .find_map(|participant| participant.get("site").and_then(Value::as_str))
            .map(str::to_owned)
    }

    fn participant_of_mid(&self, mid: &str) -> Option<String> {
        lock(&self.remote_tracks)
            .iter()
            .find(|track| track.mid == mid)
            .map(|track| track.participant_id.clone())
    }
}

/// One of our `sendonly` tracks, with the RTP numbering we own.
struct LocalTrack {
    kind: MediaKind,
    track: Arc<TrackLocalStaticRTP>,
    sender: Arc<dyn RtpSender>,
    transceiver: Arc<dyn RtpTransceiver>,
    /// As negotiated; set once the answer is applied.
    payload_type: u8,
    /// One without a RID, or the simulcast layers lowest first.
    encodings: Vec<Encoding>,
    /// What a simulcast layer's packets carry to name their layer; set once the answer
    /// is applied.
    extensions: Option<SimulcastExtensions>,
}

/// One RTP stream of a local track: the track itself, or one simulcast layer of it.
struct Encoding {
    rid: Option<String>,
    ssrc: u32,
    numbering: Mutex<Numbering>,
    /// False while the server has the layer paused (`publish_layers`).
    active: AtomicBool,
    packets_sent: AtomicU64,
    bytes_sent: AtomicU64,
    packets_paused: AtomicU64,
    bytes_paused: AtomicU64,
}

/// The MID and RID header extensions (RFC 8843, RFC 8852) of a simulcast track. str0m, like
/// any SFU, learns which layer an SSRC carries from them: webrtc-rs writes no `a=ssrc` lines
/// for simulcast and its sender adds neither extension by itself, as a browser's does.
struct SimulcastExtensions {
    mid: Bytes,
    mid_id: u8,
    rid_id: u8,
}

/// The next sequence number and timestamp of a local track. Both start at random values,
/// as RFC 3550 asks, so a server that assumed they start at zero would be caught.
struct Numbering {
    sequence_number: u16,
    timestamp: u32,
}

impl LocalTrack {
    /// Sends one packet on encoding `layer` (0 without simulcast).
    async fn send(&self, layer: usize, payload: &[u8], marker: bool) -> anyhow::Result<()> {
        let encoding = self
            .encodings
            .get(layer)
            .with_context(|| format!("no encoding {layer}"))?;
        let mut header = {
            let mut numbering = lock(&encoding.numbering);
            let header = rtp::header::Header {
                version: 2,
                marker,
                payload_type: self.payload_type,
                sequence_number: numbering.sequence_number,
                timestamp: numbering.timestamp,
                ssrc: encoding.ssrc,
                ..Default::default()
            };
            numbering.advance(self.kind, marker);
            header
        };
        if let (Some(extensions), Some(rid)) = (&self.extensions, &encoding.rid) {
            header
                .set_extension(extensions.mid_id, extensions.mid.clone())
                .context("adding the MID header extension")?;
            header
                .set_extension(extensions.rid_id, Bytes::from(rid.clone().into_bytes()))
                .context("adding the RID header extension")?;
        }
        let packet = rtp::packet::Packet {
            header,
            payload: Bytes::copy_from_slice(payload),
        };
        self.track.write_rtp(packet).await.with_context(|| {
            format!("writing an RTP packet on the {} track", self.kind.as_str())
        })?;
        encoding.packets_sent.fetch_add(1, Ordering::Relaxed);
        encoding
            .bytes_sent
            .fetch_add(payload.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Applies a `publish_layers` message to this track's layers, if it names our line.
    fn obey_publish_layers(&self, message: &Value) -> anyhow::Result<()> {
        let mid = message
            .get("mid")
            .and_then(Value::as_str)
            .context("`publish_layers` without a string `mid`")?;
        let ours = self.extensions.as_ref().map(|e| e.mid.as_ref());
        if ours != Some(mid.as_bytes()) {
            bail!("`publish_layers` for line {mid:?}, which is not our video");
        }
        let layers = message
            .get("layers")
            .and_then(Value::as_array)
            .context("`publish_layers` without an array `layers`")?;
        for layer in layers {
            let rid = layer.get("rid").and_then(Value::as_str);
            let active = layer
                .get("active")
                .and_then(Value::as_bool)
                .with_context(|| format!("a layer without a boolean `active`: {layer}"))?;
            let encoding = self
                .encodings
                .iter()
                .find(|encoding| encoding.rid.as_deref() == rid)
                .with_context(|| format!("`publish_layers` names a layer we lack: {layer}"))?;
            encoding.active.store(active, Ordering::SeqCst);
        }
        Ok(())
    }
}

impl Encoding {
    fn new(name: &str, kind: MediaKind, rid: Option<&str>) -> Encoding {
        let random = RandomState::new();
        Encoding {
            rid: rid.map(str::to_owned),
            ssrc: random.hash_one((name, kind, rid, "ssrc")) as u32,
            numbering: Mutex::new(Numbering {
                sequence_number: random.hash_one((name, kind, rid, "sequence")) as u16,
                timestamp: random.hash_one((name, kind, rid, "timestamp")) as u32,
            }),
            active: AtomicBool::new(true),
            packets_sent: AtomicU64::new(0),
            bytes_sent: AtomicU64::new(0),
            packets_paused: AtomicU64::new(0),
            bytes_paused: AtomicU64::new(0),
        }
    }

    /// Counts a packet not sent because the layer is paused.
    fn hold_back(&self, bytes: usize, marker: bool) {
        lock(&self.numbering).advance_timestamp(MediaKind::Video, marker);
        self.packets_paused.fetch_add(1, Ordering::Relaxed);
        self.bytes_paused.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    fn count(&self) -> LayerCount {
        LayerCount {
            rid: self.rid.clone(),
            active: self.active.load(Ordering::SeqCst),
            packets_sent: self.packets_sent.load(Ordering::Relaxed),
            bytes_sent: self.bytes_sent.load(Ordering::Relaxed),
            packets_paused: self.packets_paused.load(Ordering::Relaxed),
            bytes_paused: self.bytes_paused.load(Ordering::Relaxed),
        }
    }
}

impl Numbering {
    /// After a packet: the sequence number always, the timestamp at a frame's end.
    fn advance(&mut self, kind: MediaKind, marker: bool) {
        self.sequence_number = self.sequence_number.wrapping_add(1);
        self.advance_timestamp(kind, marker);
    }

    /// Every audio packet is a whole 20 ms frame; a video frame ends at its marker.
    fn advance_timestamp(&mut self, kind: MediaKind, marker: bool) {
        match kind {
            MediaKind::Audio => {
                self.timestamp = self.timestamp.wrapping_add(AUDIO_TIMESTAMP_STEP);
            }
            MediaKind::Video if marker => {
                self.timestamp = self.timestamp.wrapping_add(VIDEO_TIMESTAMP_STEP);
            }
            MediaKind::Video => {}
        }
    }
}

/// The peer connection's callbacks. They run on webrtc-rs's driver task, so each does
/// little and hands longer work to a task of its own.
struct Handler {
    recorder: Arc<Recorder>,
    /// Gathered candidates, sent as `candidate` messages once the offer is out.
    candidates: mpsc::UnboundedSender<RTCIceCandidateInit>,
    connection_state: watch::Sender<RTCPeerConnectionState>,
    /// To find the `mid` of a remote track's transceiver; set right after the build.
    peer_connection: Arc<OnceLock<Weak<dyn PeerConnection>>>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_candidate(&self, event: RTCPeerConnectionIceEvent) {
        match event.candidate.to_json() {
            Ok(candidate) => {
                // The receiver is gone only once the client is shutting down.
                let _ = self.candidates.send(candidate);
            }
            Err(error) => self
                .recorder
                .fail(format!("serialising a local candidate: {error}")),
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        tracing::debug!(%state, "test client peer connection");
        self.connection_state.send_replace(state);
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        // Reading inline would stall the driver that delivers the packets.
        tokio::spawn(read_track(
            track,
            self.recorder.clone(),
            self.peer_connection.clone(),
        ));
    }
}

/// Messages for the WebSocket writer task, the socket's one writer.
enum Outgoing {
    Text(String),
    /// Send a close frame and stop.
    Close,
}

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The client's background tasks, aborted when the client is dropped so that a failed test
/// leaves nothing running.
#[derive(Default)]
struct Tasks {
    /// The first is the WebSocket writer.
    handles: Vec<JoinHandle<()>>,
}

impl Tasks {
    fn push(&mut self, handle: JoinHandle<()>) {
        self.handles.push(handle);
    }

    /// Lets the writer send what is queued (ending with the close frame), then stops the rest.
    async fn finish_writer(mut self) {
        if !self.handles.is_empty() {
            let writer = self.handles.remove(0);
            if tokio::time::timeout(LEAVE_TIMEOUT, writer).await.is_err() {
                tracing::debug!("the WebSocket writer did not finish in time");
            }
        }
        self.abort_all();
    }

    fn abort_all(&self) {
        for handle in &self.handles {
            handle.abort();
        }
    }
}

impl Drop for Tasks {
    fn drop(&mut self) {
        self.abort_all();
    }
}

async fn build_peer_connection(
    handler: Handler,
    local_ip: Ipv4Addr,
) -> anyhow::Result<Arc<dyn PeerConnection>> {
    loopback_peer_connection(Arc::new(handler), local_ip).await
}

/// A webrtc-rs peer connection as every test client uses it: Opus and VP8, the
/// interceptors a browser has, no mDNS, no ICE servers, and one host candidate on
/// `local_ip` (any of 127.0.0.0/8).
pub async fn loopback_peer_connection(
    handler: Arc<dyn PeerConnectionEventHandler>,
    local_ip: Ipv4Addr,
) -> anyhow::Result<Arc<dyn PeerConnection>> {
    let mut media_engine = MediaEngine::default();
    media_engine
        .register_codec(codec(MediaKind::Audio), RtpCodecKind::Audio)
        .context("registering Opus")?;
    media_engine
        .register_codec(codec(MediaKind::Video), RtpCodecKind::Video)
        .context("registering VP8")?;
    // NACK, RTCP reports and transport-wide congestion control feedback, as a browser has:
    // the server hears from us on the media path even when we publish nothing.
    let registry = register_default_interceptors(Registry::new(), &mut media_engine)
        .context("registering the default interceptors")?;
    // mDNS is off: the server's candidate is an address literal, and the mDNS socket would
    // need a multicast route, which a sealed test namespace does not have.
    let setting_engine = SettingEngineBuilder::new()
        .with_multicast_dns_mode(MulticastDnsMode::Disabled)
        .build();
    // No ICE servers: nothing outside this machine may be reached, and the server is ICE-lite
    // with a host candidate, so host candidates are all there is.
    let configuration = RTCConfigurationBuilder::new().build();
    let peer_connection = PeerConnectionBuilder::new()
        .with_configuration(configuration)
        .with_media_engine(media_engine)
        .with_interceptor_registry(registry)
        .with_setting_engine(setting_engine)
        .with_handler(handler)
        // A concrete loopback address: webrtc-rs binds it as given and makes it our one host
        // candidate. `0.0.0.0` would be expanded to the non-loopback interfaces only, and
        // `SettingEngine::with_include_loopback_candidate` is read by nothing in 0.21.1.
        .with_udp_addrs(vec![SocketAddr::from((local_ip, 0))])
        .build()
        .await
        .context("building the peer connection")?;
    Ok(Arc::new(peer_connection))
}

/// The codec parameters every test client offers for `kind`: Opus, or VP8 with NACK,
/// PLI and FIR feedback.
pub fn codec(kind: MediaKind) -> RTCRtpCodecParameters {
    match kind {
        MediaKind::Audio => RTCRtpCodecParameters {
            rtp_codec: RTCRtpCodec {
                mime_type: MIME_TYPE_OPUS.to_owned(),
                clock_rate: 48000,
                channels: 2,
                sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
                rtcp_feedback: vec![],
            },
            payload_type: OPUS_PAYLOAD_TYPE,
        },
        MediaKind::Video => RTCRtpCodecParameters {
            rtp_codec: RTCRtpCodec {
                mime_type: MIME_TYPE_VP8.to_owned(),
                clock_rate: 90000,
                channels: 0,
                sdp_fmtp_line: String::new(),
                rtcp_feedback: ["nack", "nack pli", "ccm fir"]
                    .iter()
                    .map(|feedback| {
                        let (typ, parameter) = feedback.split_once(' ').unwrap_or((feedback, ""));
                        RTCPFeedback {
                            typ: typ.to_owned(),
                            parameter: parameter.to_owned(),
                        }
                    })
                    .collect(),
            },
            payload_type: VP8_PAYLOAD_TYPE,
        },
    }
}

/// Adds a `sendonly` track of `kind` in one encoding per entry of `rids`: `[None]` for
/// one stream, RIDs lowest first for simulcast. With several, webrtc-rs offers them as
/// `a=rid:<rid> send` lines and `a=simulcast:send l;m;h`, without `a=ssrc` lines.
async fn add_local_track(
    peer_connection: &Arc<dyn PeerConnection>,
    name: &str,
    kind: MediaKind,
    rids: &[Option<&str>],
) -> anyhow::Result<LocalTrack> {
    let encodings: Vec<Encoding> = rids
        .iter()
        .map(|&rid| Encoding::new(name, kind, rid))
        .collect();
    let codec_kind = match kind {
        MediaKind::Audio => RtpCodecKind::Audio,
        MediaKind::Video => RtpCodecKind::Video,
    };
    let codings = encodings
        .iter()
        .map(|encoding| RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters {
                rid: encoding.rid.clone().unwrap_or_default(),
                ssrc: Some(encoding.ssrc),
                ..Default::default()
            },
            codec: codec(kind).rtp_codec,
            ..Default::default()
        })
        .collect();
    let track = Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
        format!("{name}-stream"),
        format!("{name}-{}", kind.as_str()),
        format!("{name} {}", kind.as_str()),
        codec_kind,
        codings,
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
        .with_context(|| format!("adding the {} transceiver", kind.as_str()))?;
    let sender = transceiver
        .sender()
        .await
        .context("reading the sender of a new transceiver")?
        .context("a sendonly transceiver without a sender")?;
    Ok(LocalTrack {
        kind,
        track,
        sender,
        transceiver,
        payload_type: codec(kind).payload_type,
        encodings,
        extensions: None,
    })
}

/// The negotiated ids of the MID and RID header extensions, and the track's mid, once the
/// answer is applied. The server must have accepted both: without them it could not tell
/// the layers apart.
async fn simulcast_extensions(track: &LocalTrack) -> anyhow::Result<SimulcastExtensions> {
    let parameters = track
        .sender
        .get_parameters()
        .await
        .context("reading the sender's parameters")?;
    let id_of = |uri: &str| {
        parameters
            .rtp_parameters
            .header_extensions
            .iter()
            .find(|extension| extension.uri == uri)
            .and_then(|extension| u8::try_from(extension.id).ok())
            .with_context(|| format!("the answer accepted no {uri} for our simulcast video"))
    };
    let mid = track
        .transceiver
        .mid()
        .await
        .context("reading the video transceiver's mid")?
        .context("the video transceiver has no mid after the answer")?;
    Ok(SimulcastExtensions {
        mid: Bytes::from(mid.into_bytes()),
        mid_id: id_of(SDES_MID_URI)?,
        rid_id: id_of(SDES_RTP_STREAM_ID_URI)?,
    })
}

/// The payload type the answer settled on for our track's codec.
async fn negotiated_payload_type(
    sender: &Arc<dyn RtpSender>,
    kind: MediaKind,
) -> anyhow::Result<u8> {
    let wanted = codec(kind).rtp_codec.mime_type;
    let parameters = sender
        .get_parameters()
        .await
        .context("reading the sender's parameters")?;
    parameters
        .rtp_parameters
        .codecs
        .iter()
        .find(|codec| codec.rtp_codec.mime_type.eq_ignore_ascii_case(&wanted))
        .map(|codec| codec.payload_type)
        .with_context(|| {
            format!(
                "the answer accepted no {wanted} for our {} track",
                kind.as_str()
            )
        })
}

/// Reads frames until a message of type `wanted`, recording every message on the way.
/// Used only while joining, before the background reader owns the socket.
async fn next_message_of_type(
    stream: &mut SplitStream<Socket>,
    recorder: &Recorder,
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
                Message::Binary(_) => {
                    bail!("the server sent a binary frame while we waited for `{wanted}`")
                }
                _ => continue,
            };
            let message = parse_message(&text)?;
            lock(&recorder.messages).push(message.clone());
            let kind = message
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if kind == wanted {
                return Ok(message);
            }
            match kind {
                "error" => bail!("the server refused while we waited for `{wanted}`: {message}"),
                // Only one side may offer at a time: an offer now would be glare.
                "offer" => bail!("the server sent an offer while we waited for `{wanted}`"),
                _ => {}
            }
        }
    };
    tokio::time::timeout(STEP_TIMEOUT, read)
        .await
        .with_context(|| format!("no `{wanted}` within {STEP_TIMEOUT:?}"))?
}

fn parse_message(text: &str) -> anyhow::Result<Value> {
    let message: Value = serde_json::from_str(text)
        .with_context(|| format!("the server sent a frame that is not JSON: {text:?}"))?;
    if message.get("type").and_then(Value::as_str).is_none() {
        bail!("the server sent a message without a string `type`: {text}");
    }
    Ok(message)
}

fn send_json(outgoing: &mpsc::UnboundedSender<Outgoing>, message: Value) -> anyhow::Result<()> {
    outgoing
        .send(Outgoing::Text(message.to_string()))
        .map_err(|_| anyhow!("the WebSocket writer has stopped"))
}

/// The socket's one writer: queued messages in order, and a ping every [`PING_INTERVAL`].
async fn write_socket(
    mut sink: SplitSink<Socket, Message>,
    mut outgoing: mpsc::UnboundedReceiver<Outgoing>,
    recorder: Arc<Recorder>,
) {
    let mut ping =
        tokio::time::interval_at(tokio::time::Instant::now() + PING_INTERVAL, PING_INTERVAL);
    loop {
        let result = tokio::select! {
            next = outgoing.recv() => match next {
                Some(Outgoing::Text(text)) => sink.send(Message::text(text)).await,
                Some(Outgoing::Close) | None => {
                    // The server may have closed first; nothing is lost if this fails.
                    let _ = sink.send(Message::Close(None)).await;
                    let _ = sink.close().await;
                    return;
                }
            },
            _ = ping.tick() => sink.send(Message::Ping(Bytes::new())).await,
        };
        if let Err(error) = result {
            // After the server closed the socket, writes fail; that is not news.
            if !recorder.socket_closed.load(Ordering::SeqCst) {
                recorder.fail(format!("writing the WebSocket: {error}"));
            }
            return;
        }
    }
}

/// What the socket reader needs besides the socket.
struct Reader {
    outgoing: mpsc::UnboundedSender<Outgoing>,
    peer_connection: Arc<dyn PeerConnection>,
    recorder: Arc<Recorder>,
    /// The video track whose layers `publish_layers` pauses: a simulcast one only. A
    /// client of one layer keeps sending it, as it always did, so that a test sees every
    /// packet it sends even while no one receives it.
    video: Option<Arc<LocalTrack>>,
    video_sizes: Option<VideoSizer>,
}

/// Records every message after `join`, answers each server offer (and reports the sizes
/// of the videos it brings, when asked to), and obeys `publish_layers`.
async fn read_socket(mut stream: SplitStream<Socket>, reader: Reader) {
    let Reader {
        outgoing,
        peer_connection,
        recorder,
        video,
        video_sizes,
    } = reader;
    while let Some(frame) = stream.next().await {
        let text = match frame {
            Ok(Message::Text(text)) => text,
            Ok(Message::Binary(_)) => {
                recorder.fail("the server sent a binary frame".to_owned());
                continue;
            }
            Ok(Message::Close(_)) => break,
            Ok(_) => continue,
            Err(error) => {
                recorder.fail(format!("reading the WebSocket: {error}"));
                break;
            }
        };
        let message = match parse_message(&text) {
            Ok(message) => message,
            Err(error) => {
                recorder.fail(format!("{error:#}"));
                continue;
            }
        };
        lock(&recorder.messages).push(message.clone());
        match message.get("type").and_then(Value::as_str) {
            Some("offer") => {
                if let Err(error) =
                    answer_offer(&message, &peer_connection, &outgoing, &recorder).await
                {
                    recorder.fail(format!("answering a server offer: {error:#}"));
                    continue;
                }
                if let Some(sizer) = &video_sizes
                    && let Err(error) = report_video_sizes(sizer, &outgoing, &recorder)
                {
                    recorder.fail(format!("reporting video sizes: {error:#}"));
                }
            }
            Some("publish_layers") => {
                if let Some(video) = &video
                    && let Err(error) = video.obey_publish_layers(&message)
                {
                    recorder.fail(format!("obeying `publish_layers`: {error:#}"));
                }
            }
            _ => {}
        }
    }
    recorder.socket_closed.store(true, Ordering::SeqCst);
}

/// Sends `video_sizes` for every video line of the latest offer, as `sizer` lays them out.
fn report_video_sizes(
    sizer: &VideoSizer,
    outgoing: &mpsc::UnboundedSender<Outgoing>,
    recorder: &Recorder,
) -> anyhow::Result<()> {
    let tracks = lock(&recorder.remote_tracks).clone();
    let sizes: Vec<Value> = tracks
        .iter()
        .filter(|track| track.kind == MediaKind::Video)
        .map(|track| {
            let site = recorder.site_of(&track.participant_id);
            let height = (sizer.0)(track, site.as_deref());
            json!({ "mid": track.mid, "height": height })
        })
        .collect();
    if sizes.is_empty() {
        return Ok(());
    }
    send_json(outgoing, json!({ "type": "video_sizes", "sizes": sizes }))
}

async fn answer_offer(
    message: &Value,
    peer_connection: &Arc<dyn PeerConnection>,
    outgoing: &mpsc::UnboundedSender<Outgoing>,
    recorder: &Recorder,
) -> anyhow::Result<()> {
    let sdp = message
        .get("sdp")
        .and_then(Value::as_str)
        .context("`offer` without a string `sdp`")?;
    let tracks = parse_tracks(message.get("tracks").context("`offer` without `tracks`")?)?;
    let offer = RTCSessionDescription::offer(sdp.to_owned()).context("parsing the offer")?;
    // Taken before the answer goes out: the server forwards on a new line as soon as it has
    // our answer, and the first packet must find its sender here.
    *lock(&recorder.remote_tracks) = tracks;
    peer_connection
        .set_remote_description(offer)
        .await
        .context("applying the offer")?;
    let answer = peer_connection
        .create_answer(None)
        .await
        .context("creating the answer")?;
    peer_connection
        .set_local_description(answer)
        .await
        .context("applying our answer")?;
    let answer = peer_connection
        .local_description()
        .await
        .context("no local description after applying our answer")?;
    send_json(outgoing, json!({ "type": "answer", "sdp": answer.sdp }))?;
    recorder.answered_offers.fetch_add(1, Ordering::SeqCst);
    Ok(())
}

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
            let kind = field("kind")?;
            Ok(RemoteTrack {
                mid: field("mid")?.to_owned(),
                participant_id: field("participant_id")?.to_owned(),
                kind: MediaKind::parse(kind)
                    .with_context(|| format!("a track of unknown kind {kind:?}"))?,
            })
        })
        .collect()
}

/// Records every RTP packet of one remote track until it ends.
async fn read_track(
    track: Arc<dyn TrackRemote>,
    recorder: Arc<Recorder>,
    peer_connection: Arc<OnceLock<Weak<dyn PeerConnection>>>,
) {
    let kind = match track.kind().await {
        RtpCodecKind::Audio => MediaKind::Audio,
        RtpCodecKind::Video => MediaKind::Video,
        other => {
            recorder.fail(format!("a remote track of kind {other:?}"));
            return;
        }
    };
    let stream_id = track.stream_id().await;
    let mut mid = None;
    while let Some(event) = track.poll().await {
        match event {
            TrackRemoteEvent::OnOpen(init) => {
                mid = mid_of_receiver(&peer_connection, init.receiver_id).await;
            }
            TrackRemoteEvent::OnRtpPacket(packet) => {
                let from = mid
                    .as_deref()
                    .and_then(|mid| recorder.participant_of_mid(mid))
                    .unwrap_or_else(|| stream_id.clone());
                let packet = ReceivedPacket {
                    from,
                    stream_id: stream_id.clone(),
                    mid: mid.clone(),
                    kind,
                    payload: packet.payload.to_vec(),
                    sequence_number: packet.header.sequence_number,
                    timestamp: packet.header.timestamp,
                    payload_type: packet.header.payload_type,
                    marker: packet.header.marker,
                    ssrc: packet.header.ssrc,
                };
                match &recorder.sink {
                    Some(sink) => (sink.0)(&packet),
                    None => lock(&recorder.received).push(packet),
                }
            }
            TrackRemoteEvent::OnEnded => break,
            _ => {}
        }
    }
}

/// The `mid` of the transceiver a remote track arrived on. webrtc-rs numbers receivers and
/// transceivers alike, so the receiver id names its transceiver.
async fn mid_of_receiver(
    peer_connection: &OnceLock<Weak<dyn PeerConnection>>,
    receiver_id: RTCRtpReceiverId,
) -> Option<String> {
    let peer_connection = peer_connection.get()?.upgrade()?;
    for transceiver in peer_connection.get_transceivers().await {
        if transceiver.id() == RTCRtpTransceiverId::from(receiver_id) {
            return transceiver.mid().await.ok().flatten();
        }
    }
    None
}

/// Locks a recorder mutex. A poisoned lock means a thread panicked while pushing to a `Vec`,
/// which cannot leave it inconsistent, so the data is used as it is.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tagged_payloads_parse_back_and_catch_damage() {
        for kind in [MediaKind::Audio, MediaKind::Video] {
            for index in [0, 1, 79, 80, 999] {
                let mut payload = tagged_payload("room-a/anh", kind, index);
                let expected = TaggedPayload {
                    tag: "room-a/anh".to_owned(),
                    index,
                    intact: true,
                };
                assert_eq!(parse_tagged_payload(kind, &payload), Some(expected));
                assert!(
                    payload.len() < 1200,
                    "{} bytes do not fit one packet",
                    payload.len()
                );

                let last = payload.len() - 1;
                payload[last] ^= 1;
                let damaged = parse_tagged_payload(kind, &payload);
                assert_eq!(damaged.map(|tagged| tagged.intact), Some(false));
            }
        }
        let other = tagged_payload("a", MediaKind::Audio, 1);
        assert_ne!(other, tagged_payload("a", MediaKind::Audio, 2));
        assert_ne!(other, tagged_payload("b", MediaKind::Audio, 1));
        assert_eq!(parse_tagged_payload(MediaKind::Video, &other), None);
        assert_eq!(parse_tagged_payload(MediaKind::Audio, b"not tagged"), None);
    }
}
