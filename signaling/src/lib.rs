//! Cầu's signaling and coordination service, and the assembly of the whole server.
//!
//! [`start`] binds the media socket and starts the SFU's media thread, then serves over
//! HTTP (or HTTPS): the embedded web client, `GET /healthz`, a small status API, and the
//! WebSocket signaling of `docs/signaling.md` at `/ws`. Signaling decides who may enter
//! which room and relays session descriptions; it never touches a media packet.

pub mod access;
mod admission;
mod api;
pub mod directory;
mod export;
#[doc(hidden)]
pub mod fuzzing;
mod http;
mod limits;
mod line_test;
pub mod meeting;
mod meetings;
pub mod model;
mod monitor;
pub mod protocol;
mod rooms;
mod session;
mod speaker;
pub mod store;
mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use cau_config::{Config, TlsMode};
use cau_sfu::{PeerId, SfuConfig, SfuHandle};

use crate::access::{AdminToken, Tokens};
use crate::rooms::Rooms;
use crate::store::Store;

/// State shared by every request and session.
pub(crate) struct AppState {
    pub(crate) config: Config,
    pub(crate) sfu: SfuHandle,
    pub(crate) rooms: Rooms,
    pub(crate) store: Store,
    pub(crate) tokens: Tokens,
    pub(crate) admin: AdminToken,
    pub(crate) meetings: meetings::Meetings,
    pub(crate) monitor: Arc<monitor::Monitor>,
    /// The sites whose line test is running.
    pub(crate) line_tests: Arc<line_test::Running>,
    /// Join attempts and API calls per client address.
    pub(crate) limits: limits::AddressLimits,
    /// The live signaling sessions, told when the server stops.
    pub(crate) sessions: session::Sessions,
    /// The meetings' writer of roll calls and run states, for flushing it.
    meeting_writes: tokio::sync::mpsc::UnboundedSender<meetings::MeetingWrite>,
    next_peer: AtomicU64,
}

impl AppState {
    pub(crate) fn next_peer_id(&self) -> PeerId {
        PeerId(self.next_peer.fetch_add(1, Ordering::Relaxed))
    }
}

/// A server started by [`start`]. Dropping it does not stop it; call [`RunningServer::shutdown`].
pub struct RunningServer {
    http_addr: SocketAddr,
    tls: bool,
    state: Arc<AppState>,
    handle: axum_server::Handle<SocketAddr>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    generated_admin_token: Option<String>,
}

/// Starts the whole server: the media thread and the web server. Returns once both
/// are listening.
pub async fn start(config: Config) -> anyhow::Result<RunningServer> {
    // rustls needs a process-wide crypto provider, for HTTPS and the alert webhook's
    // client alike; aws-lc-rs is the one str0m uses too. Installing fails only if one is
    // installed already, which is as good.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let listener = std::net::TcpListener::bind(config.http.listen)
        .with_context(|| format!("cannot listen on {}", config.http.listen))?;
    let http_addr = listener.local_addr()?;
    let data_dir = &config.storage.data_dir;
    let store = Store::open(data_dir)
        .await
        .with_context(|| format!("cannot open the database in {}", data_dir.display()))?;
    let public_url = access::public_url(&config, http_addr);
    let tokens = Tokens::load(&store, config.meetings.join_before_start(), public_url).await?;
    let (admin, generated_admin_token) = AdminToken::load(&store, config.admin.token()).await?;
    let sfu_config = SfuConfig {
        candidate_addr: SocketAddr::new(config.media.advertised_ip, config.media.udp_listen.port()),
        peer_timeout: config.media.peer_timeout(),
        connect_timeout: config.media.peer_timeout().max(Duration::from_secs(15)),
        keyframe_request_interval: config.media.keyframe_request_interval(),
        link_stats_interval: config.monitoring.stats_interval(),
        initial_estimate: config.media.initial_estimate(),
        tcp_candidate_addr: None,
        loudest_audio: config.media.loudest_audio(),
    };
    let sfu = cau_sfu::spawn(
        config.media.udp_listen,
        config.media.tcp_listen(),
        sfu_config,
    )
    .with_context(|| format!("cannot bind the media socket {}", config.media.udp_listen))?;
    let monitor = monitor::Monitor::start(config.monitoring.clone(), store.clone())
        .await
        .context("cannot start line monitoring")?;
    let (meeting_writes, meeting_write_queue) = tokio::sync::mpsc::unbounded_channel();
    let state = Arc::new(AppState {
        rooms: Rooms::new(
            config.limits.max_participants_per_room,
            config.limits.max_peers,
        ),
        sfu: sfu.clone(),
        config: config.clone(),
        meetings: meetings::Meetings::new(sfu.clone(), meeting_writes.clone()),
        store: store.clone(),
        monitor,
        tokens,
        admin,
        line_tests: Arc::default(),
        limits: limits::AddressLimits::new(&config.limits),
        sessions: session::Sessions::new(),
        meeting_writes,
        next_peer: AtomicU64::new(1),
    });
    tokio::spawn(admission::write_meetings(store, meeting_write_queue));
    tokio::spawn(meetings::run_clock(Arc::downgrade(&state)));
    tokio::spawn(limits::forget_idle_addresses(Arc::downgrade(&state)));
    let app = http::router(state.clone());
    let handle = axum_server::Handle::new();
    let make_service = app.into_make_service_with_connect_info::<SocketAddr>();
    let task = match config.tls.mode {
        TlsMode::Off => {
            let server = axum_server::from_tcp(listener)?.handle(handle.clone());
            tokio::spawn(server.serve(make_service))
        }
        TlsMode::Files | TlsMode::SelfSigned => {
            let rustls = tls::rustls_config(&config.tls).await?;
            let server = axum_server::from_tcp_rustls(listener, rustls)?.handle(handle.clone());
            tokio::spawn(server.serve(make_service))
        }
    };
    tracing::info!(http = %http_addr, media = %sfu.local_addr(), "Cầu is listening");
    Ok(RunningServer {
        http_addr,
        tls: config.tls.mode != TlsMode::Off,
        state,
        handle,
        task,
        generated_admin_token,
    })
}

impl RunningServer {
    /// The address the web server listens on.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// The address the media socket is bound to.
    pub fn media_addr(&self) -> SocketAddr {
        self.state.sfu.local_addr()
    }

    /// `http://host:port` (or `https://`).
    pub fn base_url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.http_addr)
    }

    /// The signaling WebSocket's URL.
    pub fn ws_url(&self) -> String {
        let scheme = if self.tls { "wss" } else { "ws" };
        format!("{scheme}://{}/ws", self.http_addr)
    }

    /// Peers the SFU holds right now.
    pub fn peer_count(&self) -> usize {
        self.state.sfu.peer_count()
    }

    /// Participants signaling holds right now, in all rooms.
    pub fn participant_count(&self) -> usize {
        self.state.rooms.participant_count()
    }

    /// The SFU's latest figures.
    pub fn sfu_stats(&self) -> cau_sfu::SfuStats {
        self.state.sfu.stats()
    }

    /// The admin token this start generated, because none was configured or stored:
    /// shown to the operator once, kept nowhere but as a hash.
    pub fn generated_admin_token(&self) -> Option<&str> {
        self.generated_admin_token.as_deref()
    }

    /// Waits until the server stops (it stops only on error or shutdown).
    pub async fn wait(self) -> anyhow::Result<()> {
        self.task.await.context("the web server task failed")??;
        Ok(())
    }

    /// Stops the server gracefully, within about `grace`: every signaling session tells
    /// its client that the server is stopping and closes (the sites keep their seats,
    /// to take them again from the restarted server), then the web server stops, the
    /// roll calls, meeting states and line history handed over so far are written, the
    /// media thread stops and the database is closed.
    pub async fn shutdown(self, grace: Duration) {
        let deadline = tokio::time::Instant::now() + grace;
        self.state.sessions.stop();
        while self.state.sessions.live() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        self.handle.graceful_shutdown(Some(left));
        let _ = self.task.await;
        let flushed = async {
            let (done, written) = tokio::sync::oneshot::channel();
            if self
                .state
                .meeting_writes
                .send(meetings::MeetingWrite::Flush(done))
                .is_ok()
            {
                let _ = written.await;
            }
            self.state.monitor.flush().await;
        };
        // The disk gets a few seconds more than the grace: losing a roll call is worse
        // than a slow stop.
        if tokio::time::timeout(grace + Duration::from_secs(5), flushed)
            .await
            .is_err()
        {
            tracing::error!("stopping before every record was written");
        }
        self.state.sfu.shutdown();
        // Closing waits for queries in flight, so another server can open the same
        // data directory as soon as this returns.
        self.state.store.close().await;
    }
}
