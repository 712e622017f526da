//! The direct-path baseline: two webrtc-rs peer connections in this process, connected to
//! each other over loopback with no server between them, carrying one publisher's media.
//!
//! End-to-end latency through the SFU includes the clients' own work: webrtc-rs's RTP
//! pipeline, SRTP, its tasks waiting for a loaded CPU. The same packets over a direct
//! connection, sent while the scenario runs, take all of that but the SFU's hop, so
//! "added latency" is the SFU path's percentile minus the direct path's, both from the
//! same window of the same run.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use cau_tests::client::{LayerSend, MediaKind, codec, loopback_peer_connection};
use rtc::rtp;
use rtc::rtp_transceiver::RTCRtpTransceiverDirection;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use tokio::sync::{mpsc, watch};
use webrtc::media_stream::MediaStreamTrack;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionEventHandler, RTCIceCandidateInit, RTCPeerConnectionIceEvent,
    RTCPeerConnectionState,
};
use webrtc::rtp_transceiver::RTCRtpTransceiverInit;

use crate::media::{MediaOutput, Receiver};

/// How long the two peers get to connect.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// A publisher's end of a direct connection: sends on its own audio and video tracks.
pub struct DirectSender {
    audio: Track,
    video: Track,
    connections: [Arc<dyn PeerConnection>; 2],
}

/// One local track and its RTP numbering (also the Janus client's, in `janus.rs`).
pub(crate) struct Track {
    local: Arc<TrackLocalStaticRTP>,
    ssrc: u32,
    payload_type: u8,
    /// RTP clock ticks per packet (audio) or per frame (video).
    clock_step: u32,
    /// Next sequence number and timestamp.
    next: Mutex<(u16, u32)>,
}

impl Track {
    /// Sends one packet; `advance` moves the timestamp on (every audio packet, the last
    /// packet of a video frame).
    pub(crate) async fn send(
        &self,
        payload: &[u8],
        marker: bool,
        advance: bool,
    ) -> anyhow::Result<()> {
        let header = {
            let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
            let header = rtp::header::Header {
                version: 2,
                marker,
                payload_type: self.payload_type,
                sequence_number: next.0,
                timestamp: next.1,
                ssrc: self.ssrc,
                ..Default::default()
            };
            next.0 = next.0.wrapping_add(1);
            if advance {
                next.1 = next.1.wrapping_add(self.clock_step);
            }
            header
        };
        self.local
            .write_rtp(rtp::packet::Packet {
                header,
                payload: Bytes::copy_from_slice(payload),
            })
            .await
            .context("writing RTP")
    }
}

impl MediaOutput for DirectSender {
    async fn send_audio(&self, payload: &[u8]) -> anyhow::Result<()> {
        self.audio.send(payload, false, true).await
    }

    async fn send_video(
        &self,
        layer: u8,
        payload: &[u8],
        marker: bool,
    ) -> anyhow::Result<LayerSend> {
        if layer != 0 {
            bail!("the direct path sends one video layer");
        }
        self.video.send(payload, marker, marker).await?;
        Ok(LayerSend::Sent)
    }
}

impl DirectSender {
    pub async fn close(&self) {
        for connection in &self.connections {
            let _ = connection.close().await;
        }
    }
}

/// A connection's callbacks: its candidates go to `candidates` (the other end, or Janus
/// in `janus.rs`); remote tracks to `receiver`.
pub(crate) struct Handler {
    pub(crate) candidates: mpsc::UnboundedSender<RTCIceCandidateInit>,
    pub(crate) state: watch::Sender<RTCPeerConnectionState>,
    pub(crate) receiver: Option<Arc<Receiver>>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_candidate(&self, event: RTCPeerConnectionIceEvent) {
        if let Ok(candidate) = event.candidate.to_json() {
            let _ = self.candidates.send(candidate);
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        self.state.send_replace(state);
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let Some(receiver) = self.receiver.clone() else {
            return;
        };
        tokio::spawn(async move {
            while let Some(event) = track.poll().await {
                match event {
                    TrackRemoteEvent::OnRtpPacket(packet) => receiver.on_payload(&packet.payload),
                    TrackRemoteEvent::OnEnded => break,
                    _ => {}
                }
            }
        });
    }
}

/// Adds a send-only track of `kind` with the given SSRC to `connection`, its stream and
/// track ids made from `name`.
pub(crate) async fn add_track(
    connection: &Arc<dyn PeerConnection>,
    kind: MediaKind,
    name: &str,
    ssrc: u32,
) -> anyhow::Result<Track> {
    let codec_kind = match kind {
        MediaKind::Audio => RtpCodecKind::Audio,
        MediaKind::Video => RtpCodecKind::Video,
    };
    let parameters = codec(kind);
    let local = Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
        format!("{name}-stream"),
        format!("{name}-{}", kind.as_str()),
        format!("{name} {}", kind.as_str()),
        codec_kind,
        vec![RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters {
                ssrc: Some(ssrc),
                ..Default::default()
            },
            codec: parameters.rtp_codec.clone(),
            ..Default::default()
        }],
    )));
    connection
        .add_transceiver_from_track(
            local.clone() as Arc<dyn TrackLocal>,
            Some(RTCRtpTransceiverInit {
                direction: RTCRtpTransceiverDirection::Sendonly,
                ..Default::default()
            }),
        )
        .await
        .context("adding a transceiver")?;
    Ok(Track {
        local,
        ssrc,
        payload_type: parameters.payload_type,
        clock_step: match kind {
            MediaKind::Audio => 960,
            MediaKind::Video => 3000,
        },
        next: Mutex::new((1000, 1000)),
    })
}

/// Connects a sending and a receiving peer connection directly, each on its own
/// loopback socket; what the receiving one gets goes to `receiver`.
pub async fn connect(receiver: Arc<Receiver>) -> anyhow::Result<DirectSender> {
    let (a_candidates, mut a_candidates_rx) = mpsc::unbounded_channel();
    let (b_candidates, mut b_candidates_rx) = mpsc::unbounded_channel();
    let (a_state, _) = watch::channel(RTCPeerConnectionState::New);
    let (b_state, mut b_state_rx) = watch::channel(RTCPeerConnectionState::New);
    let local_ip = std::net::Ipv4Addr::LOCALHOST;
    let sender = loopback_peer_connection(
        Arc::new(Handler {
            candidates: a_candidates,
            state: a_state,
            receiver: None,
        }),
        local_ip,
    )
    .await?;
    let receiving = loopback_peer_connection(
        Arc::new(Handler {
            candidates: b_candidates,
            state: b_state,
            receiver: Some(receiver),
        }),
        local_ip,
    )
    .await?;
    let audio = add_track(&sender, MediaKind::Audio, "direct", 0x000a_0d10).await?;
    let video = add_track(&sender, MediaKind::Video, "direct", 0x000a_0d11).await?;
    let offer = sender.create_offer(None).await?;
    sender.set_local_description(offer).await?;
    let offer = sender.local_description().await.context("no local offer")?;
    receiving.set_remote_description(offer).await?;
    let answer = receiving.create_answer(None).await?;
    receiving.set_local_description(answer).await?;
    let answer = receiving
        .local_description()
        .await
        .context("no local answer")?;
    sender.set_remote_description(answer).await?;
    // Trickle both ways until connected.
    let wait = async {
        loop {
            tokio::select! {
                Some(candidate) = a_candidates_rx.recv() => {
                    receiving.add_ice_candidate(candidate).await?;
                }
                Some(candidate) = b_candidates_rx.recv() => {
                    sender.add_ice_candidate(candidate).await?;
                }
                changed = b_state_rx.changed() => {
                    changed?;
                    match *b_state_rx.borrow() {
                        RTCPeerConnectionState::Connected => return anyhow::Ok(()),
                        RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed => {
                            bail!("the direct path failed to connect")
                        }
                        _ => {}
                    }
                }
            }
        }
    };
    tokio::time::timeout(CONNECT_TIMEOUT, wait)
        .await
        .context("the direct path did not connect")??;
    Ok(DirectSender {
        audio,
        video,
        connections: [sender, receiving],
    })
}
