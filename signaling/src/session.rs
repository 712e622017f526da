//! One participant's signaling session: one WebSocket, one task.
//!
//! The task waits on three things at once: frames from the browser, messages queued
//! for it by others (its outbox), and events about its media from the SFU. Whatever
//! ends the session (leave, close, silence, a media failure) goes through one cleanup
//! path, so the room and the SFU always forget the participant.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use cau_sfu::{AnswerSdp, Command, GoneReason, OfferSdp, PeerEvent, PeerId, RoomId, SfuError};
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};
use tokio::time::{Instant, interval_at, sleep_until};

use crate::AppState;
use crate::admission::now_millis;
use crate::limits::MessageRate;
use crate::meeting::{Action, Departure, Entry};
use crate::meetings::{Admission, role_name};
use crate::protocol::{
    ClientMessage, DisplayName, ErrorCode, Kind, LeaveReason, LineProbe, MAX_VIDEO_SIZES,
    MeetingRef, ProtocolError, PublishLayer, RoomName, ServerMessage, SiteRef, Track,
    parse_client_message,
};
use crate::rooms::RoomKey;

/// What others (the room, the meeting) put on a session's outbox.
#[derive(Debug)]
pub(crate) enum Outbound {
    /// Send this text frame, a [`ServerMessage`] serialized by [`wire_text`], to the
    /// browser. Serialized once by whoever sends it to many: a meeting's state, with a
    /// line per site, goes to every site at each change, and serializing it per
    /// recipient cost a sixth of the server's CPU in a 58-site meeting.
    Text(Utf8Bytes),
    /// The chair let this site in (or it needed no admission): enter the media room.
    Admitted,
    /// Tell the browser why, and end the session.
    Close(ProtocolError),
}

/// `message` as the text of a WebSocket frame; cheap to clone, for sending one message
/// to many sessions. None only if it cannot be serialized, which our own types always
/// can: logged rather than taking a session down.
pub(crate) fn wire_text(message: &ServerMessage) -> Option<Utf8Bytes> {
    match serde_json::to_string(message) {
        Ok(text) => Some(Utf8Bytes::from(text)),
        Err(e) => {
            tracing::error!("cannot serialize {message:?}: {e}");
            None
        }
    }
}

/// A session with no frame at all from the browser this long is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// How often the server pings, so a healthy but quiet browser never looks idle.
const PING_INTERVAL: Duration = Duration::from_secs(10);
/// The close code a client gives when it closes its socket to connect again (its media
/// failed, say): the site is then lost, not gone, and keeps its seat. Any other close
/// frame is the site leaving (the page closed). docs/signaling.md.
const CLOSE_TO_RECONNECT: u16 = 4000;
/// The close code of a server that is stopping to restart (RFC 6455, "service restart").
const CLOSE_SERVER_RESTART: u16 = 1012;
/// When a stopping server suggests clients try again.
const RETRY_AFTER_STOP: Duration = Duration::from_secs(1);
/// Offers the SFU may refuse on one connection before it takes no more. A browser's
/// offer is accepted the first time; each refused one cost the media thread a parse
/// (up to some 5 ms within `protocol::MAX_OFFER_BYTES`), and without a limit a client
/// could repeat it at the connection's message rate. A new `join` is needed after, and
/// joins are limited per address.
const MAX_REFUSED_OFFERS: u32 = 3;

/// Every live session, counted, and the signal that the server is stopping.
pub(crate) struct Sessions {
    live: Arc<std::sync::atomic::AtomicUsize>,
    stopping: tokio::sync::watch::Sender<bool>,
}

/// Counts one session while it lives.
pub(crate) struct Counted(Arc<std::sync::atomic::AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

impl Sessions {
    pub(crate) fn new() -> Sessions {
        Sessions {
            live: Arc::default(),
            stopping: tokio::sync::watch::Sender::new(false),
        }
    }

    fn count(&self) -> Counted {
        self.live.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Counted(self.live.clone())
    }

    fn stopping(&self) -> tokio::sync::watch::Receiver<bool> {
        self.stopping.subscribe()
    }

    /// Tells every session that the server is stopping; each tells its client and ends.
    pub(crate) fn stop(&self) {
        self.stopping.send_replace(true);
    }

    pub(crate) fn live(&self) -> usize {
        self.live.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// Runs a session until it ends. `address` is the client's, for the limits it counts against.
pub async fn run(socket: WebSocket, state: Arc<AppState>, address: IpAddr) {
    let _counted = state.sessions.count();
    let (outbox, inbox) = unbounded_channel();
    let mut session = Session {
        socket,
        address,
        message_rate: MessageRate::new(&state.config.limits),
        state,
        outbox,
        inbox,
        joined: None,
        seat: None,
        media: None,
        offered: false,
        offers_refused: 0,
        camera_on: true,
    };
    let reason = session.serve().await;
    session.cleanup(reason).await;
}

struct Session {
    socket: WebSocket,
    /// The client's address: its join attempts count against it.
    address: IpAddr,
    /// This connection's messages a second.
    message_rate: MessageRate,
    state: Arc<AppState>,
    /// A clone goes into the room registry so that others can reach this session.
    outbox: tokio::sync::mpsc::UnboundedSender<Outbound>,
    inbox: UnboundedReceiver<Outbound>,
    /// In a media room.
    joined: Option<Joined>,
    /// A site's seat in a scheduled meeting, from the lobby on.
    seat: Option<Seat>,
    /// Events from the SFU about this participant, once it has offered.
    media: Option<UnboundedReceiver<PeerEvent>>,
    /// The client has made its one offer.
    offered: bool,
    /// Offers the SFU refused on this connection. Each cost the media thread a parse, so
    /// after [`MAX_REFUSED_OFFERS`] the connection may offer no more.
    offers_refused: u32,
    /// The browser says its camera is on: its video rate then counts in its line score.
    camera_on: bool,
}

struct Joined {
    room: RoomKey,
    room_id: RoomId,
    peer: PeerId,
}

struct Seat {
    admission: Admission,
    peer: PeerId,
}

/// Why a session ended, which decides what the others are told.
enum End {
    /// The site said `leave`.
    Left,
    /// The browser closed the socket (its page closed).
    Closed,
    /// The connection was lost: an error, silence, or a client closing to reconnect.
    Disconnected,
    MediaGone(GoneReason),
    /// The server is stopping: the site will be back once it runs again.
    ServerStopping,
}

impl End {
    /// What the meeting makes of it: only a site that meant to go gives up its seat.
    fn departure(&self) -> Departure {
        match self {
            End::Left | End::Closed => Departure::Left,
            End::Disconnected | End::MediaGone(_) | End::ServerStopping => Departure::Lost,
        }
    }
}

/// What handling one step decided.
enum Flow {
    Continue,
    Stop(End),
}

impl Session {
    async fn serve(&mut self) -> End {
        let mut pings = interval_at(Instant::now() + PING_INTERVAL, PING_INTERVAL);
        let mut idle_deadline = Instant::now() + IDLE_TIMEOUT;
        let mut stopping = self.state.sessions.stopping();
        loop {
            let flow = tokio::select! {
                // The sender lives in the state this session holds, so waiting ends only
                // when the server stops.
                _ = async { stopping.wait_for(|stopping| *stopping).await.is_ok() } => {
                    let retry_after_ms = RETRY_AFTER_STOP.as_millis() as u64;
                    self.send(&ServerMessage::ServerStopping { retry_after_ms }).await;
                    Flow::Stop(End::ServerStopping)
                }
                frame = self.socket.recv() => {
                    idle_deadline = Instant::now() + IDLE_TIMEOUT;
                    match frame {
                        Some(Ok(frame)) => self.handle_frame(frame).await,
                        // A protocol error (such as a frame over the hard size limit) or
                        // a closed connection: either way the browser is gone.
                        Some(Err(_)) | None => Flow::Stop(End::Disconnected),
                    }
                }
                Some(outbound) = self.inbox.recv() => self.handle_outbound(outbound).await,
                event = next_event(&mut self.media) => match event {
                    Some(event) => self.handle_media_event(event).await,
                    None => {
                        self.media = None;
                        Flow::Continue
                    }
                },
                _ = pings.tick() => {
                    match self.socket.send(Message::Ping(Default::default())).await {
                        Ok(()) => Flow::Continue,
                        Err(_) => Flow::Stop(End::Disconnected),
                    }
                }
                _ = sleep_until(idle_deadline) => Flow::Stop(End::Disconnected),
            };
            if let Flow::Stop(end) = flow {
                return end;
            }
        }
    }

    async fn handle_frame(&mut self, frame: Message) -> Flow {
        let text = match frame {
            Message::Text(text) => text,
            Message::Binary(_) => {
                return self
                    .refuse(ProtocolError::new(
                        ErrorCode::BinaryNotSupported,
                        "messages are JSON text frames",
                    ))
                    .await;
            }
            Message::Close(frame) => {
                let reconnecting = frame.is_some_and(|f| f.code == CLOSE_TO_RECONNECT);
                return Flow::Stop(if reconnecting {
                    End::Disconnected
                } else {
                    End::Closed
                });
            }
            Message::Ping(_) | Message::Pong(_) => return Flow::Continue,
        };
        let limit = self.state.config.limits.max_message_bytes;
        if text.len() > limit {
            let error = ProtocolError::new(
                ErrorCode::MessageTooLarge,
                format!("a message may have at most {limit} bytes"),
            );
            self.send(&error.to_message()).await;
            return Flow::Stop(End::Disconnected);
        }
        // Counted before parsing, so that a flood of garbage costs no more than a flood
        // of good messages.
        if !self.message_rate.allow() {
            let limits = &self.state.config.limits;
            return self
                .refuse(ProtocolError::new(
                    ErrorCode::TooManyMessages,
                    format!(
                        "more than {} messages a second on this connection; this one was dropped",
                        limits.messages_per_second
                    ),
                ))
                .await;
        }
        match parse_client_message(text.as_str()) {
            Ok(message) => {
                if let Err(refusal) = self.count_join_attempt(&message) {
                    return self.refuse(refusal).await;
                }
                self.handle_message(message).await
            }
            Err(error) => self.refuse(error).await,
        }
    }

    /// A `join` or `start_line_test`, good or bad, counts against the address's join
    /// rate: token guessing and join floods cost a database read each.
    fn count_join_attempt(&self, message: &ClientMessage) -> Result<(), ProtocolError> {
        if !matches!(
            message,
            ClientMessage::Join { .. } | ClientMessage::StartLineTest { .. }
        ) {
            return Ok(());
        }
        self.state.limits.join(self.address).map_err(|retry| {
            ProtocolError::new(
                ErrorCode::RateLimited,
                format!(
                    "too many join attempts from your address; try again in {} s",
                    retry.seconds()
                ),
            )
        })
    }

    async fn handle_outbound(&mut self, outbound: Outbound) -> Flow {
        match outbound {
            Outbound::Text(text) => self.send_text(text).await,
            Outbound::Admitted => match self.enter_meeting_room().await {
                Ok(()) => Flow::Continue,
                Err(error) => self.refuse(error).await,
            },
            Outbound::Close(error) => {
                self.send(&error.to_message()).await;
                Flow::Stop(End::Disconnected)
            }
        }
    }

    async fn handle_message(&mut self, message: ClientMessage) -> Flow {
        if let Some(action) = meeting_action(&message) {
            let result = match &self.seat {
                Some(seat) if self.joined.is_some() => self.state.meetings.act(
                    &seat.admission.meeting_id,
                    &seat.admission.site_code,
                    action,
                    now_millis(),
                ),
                Some(_) => Err(ProtocolError::new(
                    ErrorCode::Forbidden,
                    "wait in the lobby until the chair lets you in",
                )),
                None => Err(ProtocolError::new(
                    ErrorCode::Forbidden,
                    "this is a scheduled meeting's action: join with a meeting link",
                )),
            };
            return match result {
                Ok(()) => Flow::Continue,
                Err(error) => self.refuse(error).await,
            };
        }
        let waiting = self.seat.is_some() && self.joined.is_none();
        let result = match (&self.joined, message) {
            (None, ClientMessage::Join { .. }) if waiting => Err(ProtocolError::new(
                ErrorCode::AlreadyJoined,
                "this session waits in a meeting's lobby already",
            )),
            (
                None,
                ClientMessage::Join {
                    token: Some(token), ..
                },
            ) => self.join_meeting(&token).await,
            (
                None,
                ClientMessage::Join {
                    room: Some(room),
                    name: Some(name),
                    ..
                },
            ) => self.join(&room, &name).await,
            (None, ClientMessage::Join { .. }) => Err(ProtocolError::new(
                ErrorCode::BadJson,
                "`join` needs `room` and `name`, or a meeting's `token`",
            )),
            (Some(_), ClientMessage::Join { .. }) => Err(ProtocolError::new(
                ErrorCode::AlreadyJoined,
                "this session has joined a room already",
            )),
            // A line test takes the whole session: it ends with the result.
            (None, ClientMessage::StartLineTest { token }) if !waiting => {
                match crate::line_test::run(&mut self.socket, &self.state, &token).await {
                    Ok(()) => return Flow::Stop(End::Left),
                    Err(refusal) => Err(refusal),
                }
            }
            (_, ClientMessage::StartLineTest { .. }) => Err(ProtocolError::new(
                ErrorCode::AlreadyJoined,
                "this session is in a meeting already; run the line test in another",
            )),
            (None, ClientMessage::Leave {}) if waiting => {
                self.send(&ServerMessage::Left {}).await;
                return Flow::Stop(End::Left);
            }
            (None, _) if waiting => Err(ProtocolError::new(
                ErrorCode::NotJoined,
                "wait in the lobby until the chair lets you in",
            )),
            (None, _) => Err(ProtocolError::new(
                ErrorCode::NotJoined,
                "send `join` before anything else",
            )),
            (
                Some(_),
                ClientMessage::Offer {
                    screen_mid: Some(mid),
                    ..
                },
            ) if mid.is_empty() || mid.len() > 16 => Err(ProtocolError::new(
                ErrorCode::BadSdp,
                "screen_mid must be the mid of one of the offer's media lines",
            )),
            (Some(joined), ClientMessage::Offer { sdp, screen_mid }) => {
                if self.offered {
                    Err(ProtocolError::new(
                        ErrorCode::NegotiationRefused,
                        "the client offers once; after that the server offers",
                    ))
                } else if self.offers_refused >= MAX_REFUSED_OFFERS {
                    Err(ProtocolError::new(
                        ErrorCode::NegotiationRefused,
                        format!("{MAX_REFUSED_OFFERS} offers were refused; join again to retry"),
                    ))
                } else {
                    self.offered = true;
                    // Parsed here, on this connection's task, not on the media thread
                    // every room shares (and not under the meetings' lock).
                    let offer = OfferSdp::parse(&sdp);
                    let events = match &self.seat {
                        Some(seat) => self.state.meetings.add_to_sfu(
                            &seat.admission.meeting_id,
                            joined.peer,
                            joined.room_id,
                            offer,
                            screen_mid,
                        ),
                        None => self.state.sfu.add_peer(
                            joined.peer,
                            joined.room_id,
                            offer,
                            true,
                            cau_sfu::Subscriptions::All,
                            screen_mid,
                        ),
                    };
                    self.media = Some(events);
                    Ok(())
                }
            }
            (Some(_), ClientMessage::Answer { .. }) if !self.offered => Err(ProtocolError::new(
                ErrorCode::NegotiationRefused,
                "there is no server offer to answer before your own offer",
            )),
            (Some(joined), ClientMessage::Answer { sdp }) => {
                // Parsed here, on this connection's task: an answer grows with the
                // room and cannot be capped like an offer, and the media thread is
                // every room's.
                self.state.sfu.command(Command::Answer {
                    peer: joined.peer,
                    answer: AnswerSdp::parse(&sdp),
                });
                Ok(())
            }
            (Some(joined), ClientMessage::Candidate { candidate, .. }) => {
                if self.offered {
                    self.state.sfu.command(Command::RemoteCandidate {
                        peer: joined.peer,
                        candidate,
                    });
                    Ok(())
                } else {
                    Err(ProtocolError::new(
                        ErrorCode::NegotiationRefused,
                        "send your offer before your candidates",
                    ))
                }
            }
            (Some(joined), ClientMessage::Mute { kind, muted }) => {
                if kind == Kind::Video {
                    self.camera_on = !muted;
                }
                self.state
                    .rooms
                    .set_muted(&joined.room, joined.peer, kind, muted);
                Ok(())
            }
            (Some(_), ClientMessage::Leave {}) => {
                self.send(&ServerMessage::Left {}).await;
                return Flow::Stop(End::Left);
            }
            (Some(joined), ClientMessage::VideoSizes { sizes }) => {
                if sizes.len() > MAX_VIDEO_SIZES {
                    Err(ProtocolError::new(
                        ErrorCode::BadJson,
                        format!("video_sizes names at most {MAX_VIDEO_SIZES} videos"),
                    ))
                } else {
                    self.state.sfu.command(Command::SetVideoSizes {
                        peer: joined.peer,
                        heights: sizes.into_iter().map(|s| (s.mid, s.height)).collect(),
                    });
                    Ok(())
                }
            }
            (Some(joined), ClientMessage::ClientStats { stats }) => {
                if !stats.is_valid() {
                    Err(ProtocolError::new(
                        ErrorCode::BadJson,
                        "client_stats figures must be finite, non-negative numbers",
                    ))
                } else {
                    if let Some(seat) = &self.seat {
                        let site = &seat.admission.site_code;
                        self.state.monitor.client_stats(site, joined.peer, stats);
                    }
                    Ok(())
                }
            }
            // Handled above, before the match.
            (Some(_), _) => Ok(()),
        };
        match result {
            Ok(()) => Flow::Continue,
            Err(error) => self.refuse(error).await,
        }
    }

    /// Joins a scheduled meeting with a join link's token: into its lobby, or straight in.
    async fn join_meeting(&mut self, token: &str) -> Result<(), ProtocolError> {
        let admission = crate::admission::admit(&self.state, token).await?;
        let peer = self.state.next_peer_id();
        let entry =
            self.state
                .meetings
                .connect(&admission, peer, self.outbox.clone(), now_millis())?;
        tracing::info!(meeting = %admission.meeting_id, site = %admission.site_code, peer = %peer, ?entry, "site connected");
        let lobby = ServerMessage::Lobby {
            meeting: MeetingRef {
                id: admission.meeting_id.clone(),
                title: admission.title.clone(),
            },
            site: SiteRef {
                code: admission.site_code.clone(),
                name: admission.site_name.clone(),
            },
            role: role_name(admission.role).to_owned(),
        };
        self.seat = Some(Seat { admission, peer });
        if entry == Entry::Lobby {
            self.send(&lobby).await;
        }
        // Otherwise `Outbound::Admitted` is on its way through the outbox.
        Ok(())
    }

    /// The meeting let this site in: enter its media room.
    async fn enter_meeting_room(&mut self) -> Result<(), ProtocolError> {
        let Some(seat) = &self.seat else {
            return Ok(());
        };
        if self.joined.is_some() {
            return Ok(());
        }
        let room = RoomKey::Meeting(seat.admission.meeting_id.clone());
        let name = DisplayName::parse(&seat.admission.site_name)?;
        let peer = seat.peer;
        let site = Some(seat.admission.site_code.clone());
        let entry = self
            .state
            .rooms
            .enter(&room, peer, name, site, self.outbox.clone())?;
        let joined = ServerMessage::Joined {
            participant_id: peer.to_string(),
            room: seat.admission.meeting_id.clone(),
            participants: entry.others,
            line_probe: self.line_probe(),
        };
        self.joined = Some(Joined {
            room,
            room_id: entry.room,
            peer,
        });
        self.send(&joined).await;
        Ok(())
    }

    fn line_probe(&self) -> LineProbe {
        let creds = self.state.sfu.line_probe();
        LineProbe {
            ufrag: creds.ufrag.clone(),
            pwd: creds.pass.clone(),
        }
    }

    async fn join(&mut self, room: &str, name: &str) -> Result<(), ProtocolError> {
        let room = RoomKey::AdHoc(RoomName::parse(room)?);
        let name = DisplayName::parse(name)?;
        let peer = self.state.next_peer_id();
        let entry = self
            .state
            .rooms
            .enter(&room, peer, name, None, self.outbox.clone())?;
        tracing::info!(room = %room, peer = %peer, "joined");
        let joined = ServerMessage::Joined {
            participant_id: peer.to_string(),
            room: room.to_string(),
            participants: entry.others,
            line_probe: self.line_probe(),
        };
        self.joined = Some(Joined {
            room,
            room_id: entry.room,
            peer,
        });
        self.send(&joined).await;
        Ok(())
    }

    async fn handle_media_event(&mut self, event: PeerEvent) -> Flow {
        let Some(joined) = &self.joined else {
            return Flow::Continue;
        };
        match event {
            PeerEvent::Answer { sdp } => self.send(&ServerMessage::Answer { sdp }).await,
            PeerEvent::Offer { sdp, tracks } => {
                let tracks = tracks
                    .into_iter()
                    .map(|t| Track {
                        mid: t.mid,
                        participant_id: t.source.to_string(),
                        kind: kind_of(t.kind),
                    })
                    .collect();
                self.send(&ServerMessage::Offer { sdp, tracks }).await
            }
            PeerEvent::TrackPublished { kind } => {
                self.state
                    .rooms
                    .publish(&joined.room, joined.peer, kind_of(kind));
                Flow::Continue
            }
            PeerEvent::Connected => {
                tracing::info!(peer = %joined.peer, "media connected");
                if let Some(seat) = &self.seat {
                    let meeting = crate::monitor::MeetingView {
                        id: seat.admission.meeting_id.clone(),
                        title: seat.admission.title.clone(),
                    };
                    let site = &seat.admission.site_code;
                    self.state.monitor.connected(site, joined.peer, meeting);
                }
                Flow::Continue
            }
            // Line tests run on sessions of their own, never on a joined one.
            PeerEvent::LineTestDone(_) => Flow::Continue,
            PeerEvent::VideoPaused { paused } => {
                self.send(&ServerMessage::VideoPaused { paused }).await
            }
            PeerEvent::PublishLayers { mid, layers } => {
                let layers = layers
                    .into_iter()
                    .map(|layer| PublishLayer {
                        rid: layer.rid,
                        active: layer.active,
                    })
                    .collect();
                self.send(&ServerMessage::PublishLayers { mid, layers })
                    .await
            }
            // Only a meeting has an active speaker; an ad-hoc room shows everyone alike.
            PeerEvent::AudioLevel { level } => {
                if let Some(seat) = &self.seat {
                    self.state.meetings.audio_level(
                        &seat.admission.meeting_id,
                        &seat.admission.site_code,
                        joined.peer,
                        level,
                        now_millis(),
                    );
                }
                Flow::Continue
            }
            PeerEvent::Link(sample) => {
                if let Some(seat) = &self.seat {
                    let site = &seat.admission.site_code;
                    let camera_on = self.camera_on;
                    self.state
                        .monitor
                        .sample(site, joined.peer, &sample, camera_on);
                }
                Flow::Continue
            }
            PeerEvent::Rejected { error } => {
                let refusal = match &error {
                    SfuError::BadOffer(_) => {
                        // The peer was not created: the client may offer again, a
                        // few times.
                        self.offered = false;
                        self.offers_refused += 1;
                        self.media = None;
                        ProtocolError::new(ErrorCode::BadSdp, error.to_string())
                    }
                    SfuError::BadAnswer(_) => {
                        ProtocolError::new(ErrorCode::BadSdp, error.to_string())
                    }
                    SfuError::BadCandidate(_) => {
                        ProtocolError::new(ErrorCode::BadCandidate, error.to_string())
                    }
                    SfuError::NoPendingOffer => {
                        ProtocolError::new(ErrorCode::NegotiationRefused, error.to_string())
                    }
                    _ => ProtocolError::new(ErrorCode::Internal, error.to_string()),
                };
                self.refuse(refusal).await
            }
            PeerEvent::Gone { reason } => {
                let error = ProtocolError::new(
                    ErrorCode::MediaFailed,
                    match reason {
                        GoneReason::Timeout => {
                            "nothing arrived on your media connection for too long"
                        }
                        GoneReason::MediaFailed => "your media connection failed",
                    },
                );
                self.send(&error.to_message()).await;
                Flow::Stop(End::MediaGone(reason))
            }
        }
    }

    async fn refuse(&mut self, error: ProtocolError) -> Flow {
        self.state.monitor.metrics.signaling_errors.inc();
        tracing::debug!(code = ?error.code, "refused: {}", error.message);
        self.send(&error.to_message()).await
    }

    async fn send(&mut self, message: &ServerMessage) -> Flow {
        match wire_text(message) {
            Some(text) => self.send_text(text).await,
            None => Flow::Continue,
        }
    }

    async fn send_text(&mut self, text: Utf8Bytes) -> Flow {
        match self.socket.send(Message::Text(text)).await {
            Ok(()) => Flow::Continue,
            Err(_) => Flow::Stop(End::Disconnected),
        }
    }

    async fn cleanup(mut self, end: End) {
        if let End::ServerStopping = end {
            // Nobody left: the roll call, the rooms and the line monitor keep the sites
            // as they are, so that a restarted server resumes them. The process is
            // about to go, and the SFU with it.
            let frame = CloseFrame {
                code: CLOSE_SERVER_RESTART,
                reason: Utf8Bytes::from_static("server restarting"),
            };
            let _ = self.socket.send(Message::Close(Some(frame))).await;
            return;
        }
        if let (Some(seat), Some(joined)) = (&self.seat, &self.joined) {
            let ending = match end.departure() {
                Departure::Left => crate::monitor::Ending::Left,
                Departure::Lost => crate::monitor::Ending::Dropped,
            };
            let site = &seat.admission.site_code;
            self.state.monitor.ended(site, joined.peer, ending);
        }
        if let Some(seat) = self.seat.take() {
            self.state.meetings.disconnect(
                &seat.admission.meeting_id,
                &seat.admission.site_code,
                seat.peer,
                end.departure(),
                now_millis(),
            );
        }
        let Some(joined) = self.joined.take() else {
            let _ = self.socket.send(Message::Close(None)).await;
            return;
        };
        let (reason, sfu_knows) = match end {
            End::Left => (LeaveReason::Left, false),
            End::Closed | End::Disconnected | End::ServerStopping => {
                (LeaveReason::Disconnected, false)
            }
            // The SFU dropped the peer itself and needs no removal.
            End::MediaGone(GoneReason::Timeout) => (LeaveReason::Timeout, true),
            End::MediaGone(GoneReason::MediaFailed) => (LeaveReason::Disconnected, true),
        };
        if self.offered && !sfu_knows {
            self.state
                .sfu
                .command(Command::RemovePeer { peer: joined.peer });
        }
        self.state.rooms.leave(&joined.room, joined.peer, reason);
        tracing::info!(room = %joined.room, peer = %joined.peer, ?reason, "left");
        let _ = self.socket.send(Message::Close(None)).await;
    }
}

async fn next_event(media: &mut Option<UnboundedReceiver<PeerEvent>>) -> Option<PeerEvent> {
    match media {
        Some(events) => events.recv().await,
        None => std::future::pending().await,
    }
}

fn kind_of(kind: cau_sfu::MediaKind) -> Kind {
    match kind {
        cau_sfu::MediaKind::Audio => Kind::Audio,
        cau_sfu::MediaKind::Video => Kind::Video,
        cau_sfu::MediaKind::Screen => Kind::Screen,
    }
}

/// The meeting action a message asks for, if it is one.
pub(crate) fn meeting_action(message: &ClientMessage) -> Option<Action> {
    Some(match message {
        ClientMessage::OpenMeeting {} => Action::Open,
        ClientMessage::Admit { site } => Action::Admit { site: site.clone() },
        ClientMessage::RequestFloor {} => Action::RequestFloor,
        ClientMessage::CancelFloorRequest {} => Action::CancelFloorRequest,
        ClientMessage::GrantFloor { site } => Action::GrantFloor { site: site.clone() },
        ClientMessage::RevokeFloor {} => Action::RevokeFloor,
        ClientMessage::MuteSite { site } => Action::Mute { site: site.clone() },
        ClientMessage::UnmuteSite { site } => Action::Unmute { site: site.clone() },
        ClientMessage::SetLayout { sites } => Action::SetLayout {
            sites: sites.clone(),
        },
        ClientMessage::MarkAbsent { site, reason } => Action::MarkAbsent {
            site: site.clone(),
            reason: reason.clone(),
        },
        _ => return None,
    })
}
