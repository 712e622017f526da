//! The monitoring endpoints: the dashboard's live socket, a site's history and
//! events, the current state of every site, and `/metrics`. All take the admin token.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::ws::{Message, Utf8Bytes, WebSocket};
use axum::extract::{Path, Query, State, WebSocketUpgrade};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast::error::RecvError;

use super::history::{self, Resolution};
use super::{LinkEvent, LiveMessage, SampleRow, SiteLink};
use crate::AppState;
use crate::api::{Admin, ApiError};
use crate::model::{Millis, SiteCode, parse_time};

/// The most rows one history answer carries: a day of 5-second samples.
const MAX_ROWS: i64 = 17_280;
/// The first message of a dashboard socket must come within this time.
const AUTH_TIMEOUT: Duration = Duration::from_secs(10);
/// How often a dashboard is told the feed is alive when nothing else happens.
const HEARTBEAT: Duration = Duration::from_secs(10);
/// The dashboard sends nothing but its token: anything larger is refused.
const MAX_DASHBOARD_FRAME: usize = 4096;

pub(crate) fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/api/monitor/live", get(live))
        .route("/api/monitor/sites", get(sites))
        .route("/api/sites/{code}/link", get(site_link))
        .route("/api/sites/{code}/link/events", get(site_events))
}

/// Prometheus text exposition: per-site gauges, server counters, process figures.
async fn metrics(_: Admin, State(state): State<Arc<AppState>>) -> Response {
    let text = state
        .monitor
        .metrics
        .render(&state.sfu.stats(), state.rooms.participant_count());
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RangeQuery {
    from: Option<String>,
    to: Option<String>,
}

/// A site's line over a time range.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct LinkHistory {
    site: String,
    /// Seconds each sample covers: 5 for raw samples, 60 for roll-ups.
    resolution_s: u32,
    samples: Vec<SampleRow>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct LinkEvents {
    site: String,
    events: Vec<LinkEvent>,
}

/// Every site's line now, as the dashboard's first message has it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct SitesNow {
    sites: Vec<SiteLink>,
}

/// The current line of every site of the directory.
#[utoipa::path(get, path = "/api/monitor/sites", tag = "monitoring", security(("admin" = [])),
    responses(
        (status = 200, body = SitesNow),
        (status = 401, body = crate::api::ErrorBody, description = "No or wrong admin token"),
    ))]
pub(crate) async fn sites(_: Admin, State(state): State<Arc<AppState>>) -> Json<SitesNow> {
    let sites = match state.monitor.snapshot().await {
        LiveMessage::Snapshot { sites, .. } => sites,
        _ => Vec::new(),
    };
    Json(SitesNow { sites })
}

/// A site's line history: 5-second samples when the range lies within the raw
/// retention (24 hours by default), else 1-minute roll-ups. `from` defaults to an hour
/// before `to`, `to` to now.
#[utoipa::path(get, path = "/api/sites/{code}/link", tag = "monitoring", security(("admin" = [])),
    params(
        ("code" = String, Path, description = "Site code"),
        ("from" = Option<String>, Query, description = "RFC 3339 start (inclusive)"),
        ("to" = Option<String>, Query, description = "RFC 3339 end (exclusive)"),
    ),
    responses(
        (status = 200, body = LinkHistory),
        (status = 400, body = crate::api::ErrorBody, description = "`invalid_query`, `invalid_range`"),
        (status = 401, body = crate::api::ErrorBody, description = "No or wrong admin token"),
        (status = 404, body = crate::api::ErrorBody, description = "`site_not_found`"),
        (status = 422, body = crate::api::ErrorBody, description = "`invalid_time`"),
    ))]
pub(crate) async fn site_link(
    _: Admin,
    State(state): State<Arc<AppState>>,
    Path(code): Path<String>,
    query: Result<Query<RangeQuery>, QueryRejection>,
) -> Result<Json<LinkHistory>, ApiError> {
    let site = known_site(&state, &code).await?;
    let (from, to) = range(query?.0)?;
    let now = crate::admission::now_millis();
    let raw_from = now - state.config.monitoring.raw_retention().as_millis() as Millis;
    let (resolution, resolution_s) = if from >= raw_from {
        (
            Resolution::Raw,
            state.config.monitoring.sample_interval().as_secs() as u32,
        )
    } else {
        (Resolution::Minute, 60)
    };
    let pool = state.monitor.store().pool();
    let samples = history::samples(pool, &site, from, to, resolution, MAX_ROWS)
        .await
        .map_err(internal)?;
    Ok(Json(LinkHistory {
        site,
        resolution_s,
        samples,
    }))
}

/// What happened to a site's line: joins, leaves, drops, reconnections, level changes.
#[utoipa::path(get, path = "/api/sites/{code}/link/events", tag = "monitoring", security(("admin" = [])),
    params(
        ("code" = String, Path, description = "Site code"),
        ("from" = Option<String>, Query, description = "RFC 3339 start (inclusive)"),
        ("to" = Option<String>, Query, description = "RFC 3339 end (exclusive)"),
    ),
    responses(
        (status = 200, body = LinkEvents),
        (status = 400, body = crate::api::ErrorBody, description = "`invalid_query`, `invalid_range`"),
        (status = 401, body = crate::api::ErrorBody, description = "No or wrong admin token"),
        (status = 404, body = crate::api::ErrorBody, description = "`site_not_found`"),
    ))]
pub(crate) async fn site_events(
    _: Admin,
    State(state): State<Arc<AppState>>,
    Path(code): Path<String>,
    query: Result<Query<RangeQuery>, QueryRejection>,
) -> Result<Json<LinkEvents>, ApiError> {
    let site = known_site(&state, &code).await?;
    let (from, to) = range(query?.0)?;
    let events = history::events(state.monitor.store().pool(), &site, from, to, 1000)
        .await
        .map_err(internal)?;
    Ok(Json(LinkEvents { site, events }))
}

async fn known_site(state: &AppState, code: &str) -> Result<String, ApiError> {
    let not_found = || {
        let shown: String = code.chars().take(40).collect();
        ApiError::new(
            StatusCode::NOT_FOUND,
            "site_not_found",
            format!("site {shown} does not exist"),
        )
    };
    let parsed = SiteCode::parse(code).map_err(|_| not_found())?;
    match state.store.site(&parsed).await {
        Ok(Some(_)) => Ok(parsed.as_str().to_owned()),
        Ok(None) => Err(not_found()),
        Err(error) => Err(error.into()),
    }
}

fn range(query: RangeQuery) -> Result<(Millis, Millis), ApiError> {
    let to = match &query.to {
        Some(text) => parse_time("to", text)?,
        None => crate::admission::now_millis(),
    };
    let from = match &query.from {
        Some(text) => parse_time("from", text)?,
        None => to - 3_600_000,
    };
    if from >= to {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_range",
            "`from` must be before `to`",
        ));
    }
    Ok((from, to))
}

fn internal(error: sqlx::Error) -> ApiError {
    tracing::error!(%error, "cannot read line history");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "internal error",
    )
}

/// The dashboard's socket. A browser cannot put a bearer token on a WebSocket
/// request, and a token in the address would end up in logs and history: so the
/// first message carries it, `{"type":"auth","token":"..."}`.
async fn live(ws: WebSocketUpgrade, State(state): State<Arc<AppState>>) -> Response {
    ws.max_message_size(MAX_DASHBOARD_FRAME)
        .read_buffer_size(crate::http::SOCKET_READ_BUFFER)
        .on_upgrade(move |socket| serve_dashboard(socket, state))
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum DashboardMessage {
    Auth { token: String },
}

/// The token of a dashboard's first message, or `None` if it is not an `auth` message.
pub(crate) fn auth_token(text: &str) -> Option<String> {
    match serde_json::from_str::<DashboardMessage>(text) {
        Ok(DashboardMessage::Auth { token }) => Some(token),
        Err(_) => None,
    }
}

async fn serve_dashboard(mut socket: WebSocket, state: Arc<AppState>) {
    let first = tokio::time::timeout(AUTH_TIMEOUT, socket.recv()).await;
    let authorized = match first {
        Ok(Some(Ok(Message::Text(text)))) => {
            auth_token(text.as_str()).is_some_and(|token| state.admin.verify(&token))
        }
        _ => false,
    };
    if !authorized {
        let refusal = LiveMessage::Error {
            code: "unauthorized",
            message: "send {\"type\":\"auth\",\"token\":\"<admin token>\"} first".into(),
        };
        let _ = send(&mut socket, &refusal).await;
        let _ = socket.send(Message::Close(None)).await;
        return;
    }
    // Subscribe before the snapshot, so nothing falls between the two.
    let mut updates = state.monitor.subscribe();
    let snapshot = state.monitor.snapshot().await;
    if !send(&mut socket, &snapshot).await {
        return;
    }
    // A quiet feed and a dead connection look alike to the page: a heartbeat tells
    // them apart.
    let mut heartbeat = tokio::time::interval(HEARTBEAT);
    heartbeat.tick().await;
    loop {
        tokio::select! {
            _ = heartbeat.tick() => {
                let beat = Utf8Bytes::from_static(r#"{"type":"heartbeat"}"#);
                if socket.send(Message::Text(beat)).await.is_err() {
                    return;
                }
            }
            update = updates.recv() => match update {
                Ok(text) => {
                    if socket.send(Message::Text(Utf8Bytes::from(&*text))).await.is_err() {
                        return;
                    }
                }
                // Too slow to keep up: start again from a fresh snapshot.
                Err(RecvError::Lagged(_)) => {
                    let snapshot = state.monitor.snapshot().await;
                    if !send(&mut socket, &snapshot).await {
                        return;
                    }
                }
                Err(RecvError::Closed) => return,
            },
            frame = socket.recv() => match frame {
                // The dashboard has nothing more to say; pings are answered by axum.
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                Some(Ok(_)) => {}
            },
        }
    }
}

async fn send(socket: &mut WebSocket, message: &LiveMessage) -> bool {
    match serde_json::to_string(message) {
        Ok(text) => socket
            .send(Message::Text(Utf8Bytes::from(text)))
            .await
            .is_ok(),
        Err(error) => {
            tracing::error!(%error, "cannot serialize a dashboard message");
            false
        }
    }
}
