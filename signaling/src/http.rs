//! The HTTP surface: pages, assets, health, status and the signaling WebSocket, behind
//! the abuse limits of `limits.rs`: security headers on every response, the Origin
//! check on every WebSocket upgrade, and the per-address rate of API calls.

use std::sync::Arc;

use std::net::SocketAddr;

use axum::Router;
use axum::extract::{ConnectInfo, Path, State, WebSocketUpgrade};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use serde::Serialize;

use crate::AppState;
use crate::limits;
use crate::protocol::RoomName;
use crate::session;

/// Frames above this are cut off by the WebSocket layer itself. It is set well above
/// the configured message limit so that a merely too-long message still gets our
/// clear `message_too_large` error before the socket closes.
const HARD_FRAME_LIMIT: usize = 1 << 20;
/// How much a WebSocket read asks of the kernel at a time. tungstenite zero-fills this
/// much of its buffer before every read, also when nothing has come (a session's task
/// wakes for its outbox and timers too): with the default 128 KiB that zero-filling was
/// 4.5% of the server's CPU in a 58-site meeting (perf). Signaling frames are small; an
/// offer of 10 to 30 KiB just takes a few reads.
pub(crate) const SOCKET_READ_BUFFER: usize = 8 * 1024;

pub(crate) fn router(state: Arc<AppState>) -> Router {
    // Every API call counts against its address's rate; pages, assets and /healthz do
    // not (they cost nothing and a monitoring probe must always get through).
    let api = crate::api::router()
        .merge(crate::monitor::http::router())
        .route("/api/status", get(status))
        .route_layer(from_fn_with_state(state.clone(), limits::limit_api_calls));
    Router::new()
        .route("/", get(|| async { page("index.html") }))
        .route("/join/{room}", get(join_page))
        // A site's join link: the page reads the meeting and token from its address.
        .route("/m/{meeting}", get(|| async { page("site.html") }))
        // The same link's line test on a page of its own, for IT staff.
        .route(
            "/m/{meeting}/test",
            get(|| async { page("line-test.html") }),
        )
        .route("/schedule", get(|| async { page("schedule.html") }))
        .route("/monitor", get(|| async { page("monitor.html") }))
        .route("/assets/{*path}", get(asset))
        .route("/healthz", get(|| async { "ok" }))
        .route("/ws", get(websocket))
        .merge(api)
        .fallback(|| async { (StatusCode::NOT_FOUND, "not found") })
        .layer(from_fn_with_state(
            state.clone(),
            limits::check_websocket_origin,
        ))
        .layer(from_fn(limits::security_headers))
        .with_state(state)
}

async fn join_page(Path(room): Path<String>) -> Response {
    match RoomName::parse(&room) {
        Ok(_) => page("join.html"),
        Err(e) => (StatusCode::BAD_REQUEST, e.message).into_response(),
    }
}

async fn asset(Path(path): Path<String>) -> Response {
    page(&path)
}

fn page(path: &str) -> Response {
    let Some(asset) = cau_web::asset(path) else {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    };
    let mut response = asset.body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    // The client is small and changes with the server: always revalidate.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

#[derive(Serialize)]
struct Status {
    peers: usize,
    participants: usize,
    rooms: usize,
    packets_forwarded: u64,
}

async fn status(State(state): State<Arc<AppState>>) -> Json<Status> {
    let sfu = state.sfu.stats();
    Json(Status {
        peers: sfu.peers,
        participants: state.rooms.participant_count(),
        rooms: state.rooms.room_count(),
        packets_forwarded: sfu.packets_forwarded,
    })
}

async fn websocket(
    ws: WebSocketUpgrade,
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
) -> Response {
    ws.max_message_size(HARD_FRAME_LIMIT)
        .max_frame_size(HARD_FRAME_LIMIT)
        .read_buffer_size(SOCKET_READ_BUFFER)
        .on_upgrade(move |socket| session::run(socket, state, peer.ip()))
}
