//! The REST API under `/api`: the site directory, meetings, join links, attendance,
//! the join page's invitation check, and the OpenAPI document describing them.
//!
//! Everything but `GET /api/sites`, `GET /api/invitation` and `GET /api/openapi.json`
//! takes the admin token as `Authorization: Bearer <token>` (a meeting's `.ics` also
//! takes one of its join tokens as `?token=`). Every refusal is JSON
//! `{"code", "message"}` with a 4xx status and a stable code; a server fault is a 500
//! with code `internal`, its details only in the log.

pub(crate) mod wire;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use utoipa::OpenApi;

use crate::AppState;
use crate::access::AccessError;
use crate::model::{InputError, MeetingId, Millis, SiteCode, parse_time};
use crate::store::{MeetingRange, StoreError};
pub(crate) use wire::ErrorBody;
use wire::{
    AttendanceLine, ConflictView, InvitationMeeting, InvitationSite, InvitationView, JoinLink,
    LineTestView, LinkRequest, MeetingRequest, MeetingView, NewSite, SiteChange, SiteView,
};

/// Requests carry at most a meeting: an agenda of 10,000 characters is under 40 KiB
/// even in Vietnamese, and 58 site codes are a few hundred bytes more.
const BODY_LIMIT: usize = 256 * 1024;

/// The API's routes, to be merged into the server's router.
pub(crate) fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/openapi.json", get(openapi))
        .route("/api/sites", get(list_sites).post(create_site))
        .route("/api/sites/{code}", put(update_site).delete(delete_site))
        .route("/api/sites/{code}/line-tests", get(line_tests))
        .route("/api/meetings", get(list_meetings).post(create_meeting))
        // `{id}` also matches `<id>.ics`: the router has no suffix patterns.
        .route(
            "/api/meetings/{id}",
            get(meeting_or_ics).put(update_meeting),
        )
        .route("/api/meetings/{id}/cancel", post(cancel_meeting))
        .route("/api/meetings/{id}/links", post(create_link))
        .route("/api/meetings/{id}/links/{token_id}", delete(revoke_link))
        .route(
            "/api/meetings/{id}/sites/{code}/reissue",
            post(reissue_link),
        )
        .route("/api/meetings/{id}/attendance", get(attendance))
        .route("/api/meetings/{id}/attendance.csv", get(attendance_csv))
        .route("/api/invitation", get(invitation))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
}

/// A refusal or a fault, answered as JSON.
pub(crate) struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    conflicts: Vec<ConflictView>,
}

impl ApiError {
    pub(crate) fn new(
        status: StatusCode,
        code: &'static str,
        message: impl Into<String>,
    ) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            conflicts: Vec::new(),
        }
    }

    fn meeting_not_found(id: &str) -> ApiError {
        let shown: String = id.chars().take(40).collect();
        ApiError::new(
            StatusCode::NOT_FOUND,
            "meeting_not_found",
            format!("meeting {shown} does not exist"),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let unauthorized = self.status == StatusCode::UNAUTHORIZED;
        let body = ErrorBody {
            code: self.code.to_owned(),
            message: self.message,
            conflicts: self.conflicts,
        };
        let mut response = (self.status, Json(body)).into_response();
        if unauthorized {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<InputError> for ApiError {
    fn from(error: InputError) -> ApiError {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            error.code(),
            error.to_string(),
        )
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> ApiError {
        use StatusCode as S;
        let message = error.to_string();
        let (status, code) = match &error {
            StoreError::Input(input) => return input.clone().into(),
            StoreError::UnknownSites(_) => (S::UNPROCESSABLE_ENTITY, "unknown_sites"),
            StoreError::SiteNotFound(_) => (S::NOT_FOUND, "site_not_found"),
            StoreError::SiteExists(_) => (S::CONFLICT, "site_exists"),
            StoreError::SiteInUse { .. } => (S::CONFLICT, "site_in_use"),
            StoreError::MeetingNotFound(_) => (S::NOT_FOUND, "meeting_not_found"),
            StoreError::MeetingCancelled(_) => (S::CONFLICT, "meeting_cancelled"),
            StoreError::Conflict(conflicts) => {
                return ApiError {
                    conflicts: conflicts.iter().map(ConflictView::new).collect(),
                    ..ApiError::new(S::CONFLICT, "conflict", message)
                };
            }
            StoreError::NotInvited { .. } => (S::UNPROCESSABLE_ENTITY, "not_invited"),
            StoreError::RoleMismatch { .. } => (S::UNPROCESSABLE_ENTITY, "role_mismatch"),
            StoreError::TokenNotFound(_) => (S::NOT_FOUND, "link_not_found"),
            _ => {
                tracing::error!(%error, "the store failed");
                return ApiError::new(S::INTERNAL_SERVER_ERROR, "internal", "internal error");
            }
        };
        ApiError::new(status, code, message)
    }
}

impl From<AccessError> for ApiError {
    fn from(error: AccessError) -> ApiError {
        let status = match &error {
            AccessError::Store(_) => {
                tracing::error!(%error, "checking a join token failed");
                return ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error",
                );
            }
            // The credential is no good: present another.
            AccessError::Malformed
            | AccessError::Forged
            | AccessError::Revoked
            | AccessError::Expired { .. } => StatusCode::UNAUTHORIZED,
            // A good credential for something not open now.
            _ => StatusCode::FORBIDDEN,
        };
        ApiError::new(status, error.code(), error.to_string())
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> ApiError {
        let status = match rejection {
            JsonRejection::MissingJsonContentType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            JsonRejection::BytesRejection(_) => StatusCode::PAYLOAD_TOO_LARGE,
            _ => StatusCode::BAD_REQUEST,
        };
        ApiError::new(status, "invalid_body", rejection.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> ApiError {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            rejection.body_text(),
        )
    }
}

/// Proof that the request carries the admin token. Taken first by every admin
/// handler, so an unauthorized request learns nothing about its body or the data.
pub(crate) struct Admin;

impl FromRequestParts<Arc<AppState>> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Admin, ApiError> {
        require_admin(&parts.headers, state)
    }
}

fn require_admin(headers: &HeaderMap, state: &AppState) -> Result<Admin, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "admin_token_missing",
            "this needs the admin token: Authorization: Bearer <token>",
        ));
    };
    let presented = value
        .to_str()
        .ok()
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim);
    match presented {
        Some(token) if state.admin.verify(token) => Ok(Admin),
        _ => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "admin_token_invalid",
            "the admin token is not right",
        )),
    }
}

fn now() -> Millis {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Millis::try_from(since_epoch.as_millis()).unwrap_or(Millis::MAX)
}

fn meeting_id(text: &str) -> Result<MeetingId, ApiError> {
    MeetingId::parse(text).ok_or_else(|| ApiError::meeting_not_found(text))
}

type ApiResult<T> = Result<T, ApiError>;

// ---- OpenAPI ----

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Cầu",
        description = "Sites, scheduled meetings, join links and attendance of a Cầu server. \
                       Refusals are `{\"code\", \"message\"}` with a stable code."
    ),
    paths(
        list_sites, create_site, update_site, delete_site, list_meetings, create_meeting,
        get_meeting, meeting_ics, update_meeting, cancel_meeting, create_link, revoke_link,
        reissue_link, attendance, attendance_csv, invitation, openapi, line_tests,
        crate::monitor::http::sites, crate::monitor::http::site_link,
        crate::monitor::http::site_events
    ),
    modifiers(&AdminSecurity),
    tags(
        (name = "sites", description = "The directory of sites"),
        (name = "meetings", description = "Scheduling, join links and attendance"),
        (name = "join", description = "What the join page asks"),
        (name = "monitoring", description = "Every site's line: now, over time, and what happened to it"),
    )
)]
struct ApiDoc;

struct AdminSecurity;

impl utoipa::Modify for AdminSecurity {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "admin",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The OpenAPI 3 document of this API.
#[utoipa::path(get, path = "/api/openapi.json", tag = "meetings",
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json")))]
async fn openapi() -> Response {
    // Built once per request: it is small, and asked for rarely.
    match ApiDoc::openapi().to_pretty_json() {
        Ok(text) => ([(header::CONTENT_TYPE, "application/json")], text).into_response(),
        Err(error) => {
            tracing::error!(%error, "cannot serialize the OpenAPI document");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "internal error",
            )
            .into_response()
        }
    }
}

// ---- Sites ----

/// The directory, in its order.
#[utoipa::path(get, path = "/api/sites", tag = "sites",
    responses((status = 200, body = Vec<SiteView>)))]
async fn list_sites(State(state): State<Arc<AppState>>) -> ApiResult<Json<Vec<SiteView>>> {
    let sites = state.store.sites().await?;
    Ok(Json(sites.iter().map(SiteView::new).collect()))
}

/// Adds a site at the end of the directory.
#[utoipa::path(post, path = "/api/sites", tag = "sites", security(("admin" = [])),
    request_body = NewSite,
    responses(
        (status = 201, body = SiteView),
        (status = 401, body = ErrorBody, description = "No or wrong admin token"),
        (status = 409, body = ErrorBody, description = "`site_exists`"),
        (status = 422, body = ErrorBody, description = "`invalid_site_code`, `invalid_site_name`, `invalid_kind`"),
    ))]
async fn create_site(
    _: Admin,
    State(state): State<Arc<AppState>>,
    body: Result<Json<NewSite>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<SiteView>)> {
    let Json(body) = body?;
    let site = body.into_site()?;
    state.store.create_site(&site).await?;
    Ok((StatusCode::CREATED, Json(SiteView::new(&site))))
}

/// Renames a site or changes its tier.
#[utoipa::path(put, path = "/api/sites/{code}", tag = "sites", security(("admin" = [])),
    params(("code" = String, Path, description = "The site's code")),
    request_body = SiteChange,
    responses(
        (status = 200, body = SiteView),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "`site_not_found`"),
        (status = 422, body = ErrorBody),
    ))]
async fn update_site(
    _: Admin,
    State(state): State<Arc<AppState>>,
    Path(code): Path<String>,
    body: Result<Json<SiteChange>, JsonRejection>,
) -> ApiResult<Json<SiteView>> {
    let Json(body) = body?;
    let code = SiteCode::parse(&code).map_err(|_| site_not_found(&code))?;
    let site = body.into_site(code)?;
    state.store.update_site(&site).await?;
    Ok(Json(SiteView::new(&site)))
}

/// Deletes a site that no meeting still to come invites.
#[utoipa::path(delete, path = "/api/sites/{code}", tag = "sites", security(("admin" = [])),
    params(("code" = String, Path, description = "The site's code")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "`site_not_found`"),
        (status = 409, body = ErrorBody, description = "`site_in_use`: invited to meetings not over"),
    ))]
async fn delete_site(
    _: Admin,
    State(state): State<Arc<AppState>>,
    Path(code): Path<String>,
) -> ApiResult<StatusCode> {
    let code = SiteCode::parse(&code).map_err(|_| site_not_found(&code))?;
    state.store.delete_site(&code, now()).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
struct LineTestsQuery {
    /// At most this many, newest first: 1 to 500, 50 if not given.
    limit: Option<u32>,
}

/// A site's line tests, newest first: what each measured and concluded.
#[utoipa::path(get, path = "/api/sites/{code}/line-tests", tag = "sites", security(("admin" = [])),
    params(("code" = String, Path, description = "The site's code"), LineTestsQuery),
    responses(
        (status = 200, body = Vec<LineTestView>),
        (status = 400, body = ErrorBody, description = "`invalid_query`: a limit outside 1 to 500"),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "`site_not_found`"),
    ))]
async fn line_tests(
    _: Admin,
    State(state): State<Arc<AppState>>,
    Path(code): Path<String>,
    query: Result<Query<LineTestsQuery>, QueryRejection>,
) -> ApiResult<Json<Vec<LineTestView>>> {
    let Query(query) = query?;
    let limit = query.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            "limit is 1 to 500",
        ));
    }
    let code = SiteCode::parse(&code).map_err(|_| site_not_found(&code))?;
    if state.store.site(&code).await?.is_none() {
        return Err(site_not_found(code.as_str()));
    }
    let records = state.store.line_tests(&code, limit).await?;
    Ok(Json(records.iter().map(LineTestView::new).collect()))
}

fn site_not_found(code: &str) -> ApiError {
    let shown: String = code.chars().take(40).collect();
    ApiError::new(
        StatusCode::NOT_FOUND,
        "site_not_found",
        format!("site {shown} does not exist"),
    )
}

// ---- Meetings ----

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    /// Only meetings that end after this time (RFC 3339).
    from: Option<String>,
    /// Only meetings that start before this time (RFC 3339).
    to: Option<String>,
}

/// Meetings by start time, cancelled ones included.
#[utoipa::path(get, path = "/api/meetings", tag = "meetings", security(("admin" = [])),
    params(ListQuery),
    responses((status = 200, body = Vec<MeetingView>), (status = 401, body = ErrorBody)))]
async fn list_meetings(
    _: Admin,
    State(state): State<Arc<AppState>>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> ApiResult<Json<Vec<MeetingView>>> {
    let Query(query) = query?;
    let range = MeetingRange {
        from: match &query.from {
            Some(from) => parse_time("from", from)?,
            None => Millis::MIN,
        },
        to: match &query.to {
            Some(to) => parse_time("to", to)?,
            None => Millis::MAX,
        },
    };
    let meetings = state.store.meetings(range).await?;
    Ok(Json(
        meetings.iter().map(|m| MeetingView::new(m, None)).collect(),
    ))
}

/// Schedules a meeting; answers with every invited site's join link.
#[utoipa::path(post, path = "/api/meetings", tag = "meetings", security(("admin" = [])),
    request_body = MeetingRequest,
    responses(
        (status = 201, body = MeetingView, description = "Created, with `links`"),
        (status = 400, body = ErrorBody, description = "`invalid_body`: not JSON of this shape"),
        (status = 401, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "`conflict`: sites invited to an overlapping meeting, listed in `conflicts`"),
        (status = 422, body = ErrorBody, description = "`title_empty`, `title_too_long`, `agenda_too_long`, `invalid_time`, `end_before_start`, `meeting_too_long`, `invalid_site_code`, `unknown_sites`, `duplicate_invitation`, `no_invited_sites`"),
    ))]
async fn create_meeting(
    _: Admin,
    State(state): State<Arc<AppState>>,
    body: Result<Json<MeetingRequest>, JsonRejection>,
) -> ApiResult<Response> {
    let Json(body) = body?;
    let draft = body.into_draft()?;
    let id = state.store.create_meeting(&draft, now()).await?;
    let view = meeting_with_links(&state, &id).await?;
    let location = format!("/api/meetings/{id}");
    let mut response = (StatusCode::CREATED, Json(view)).into_response();
    if let Ok(location) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

async fn meeting_with_links(state: &AppState, id: &MeetingId) -> ApiResult<MeetingView> {
    let meeting = state.store.meeting(id).await?;
    let tokens = state.store.active_tokens(id).await?;
    Ok(MeetingView::new(&meeting, Some((&state.tokens, &tokens))))
}

#[derive(Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

async fn meeting_or_ics(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    query: Result<Query<TokenQuery>, QueryRejection>,
) -> Response {
    let result = match id.strip_suffix(".ics") {
        Some(id) => meeting_ics(&state, id, &headers, query).await,
        None => match require_admin(&headers, &state) {
            Ok(admin) => get_meeting(admin, &state, &id)
                .await
                .map(IntoResponse::into_response),
            Err(error) => Err(error),
        },
    };
    result.unwrap_or_else(IntoResponse::into_response)
}

/// A meeting with its active join links.
#[utoipa::path(get, path = "/api/meetings/{id}", tag = "meetings", security(("admin" = [])),
    params(("id" = String, Path, description = "The meeting's id")),
    responses(
        (status = 200, body = MeetingView, description = "With `links`"),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "`meeting_not_found`"),
    ))]
async fn get_meeting(_: Admin, state: &AppState, id: &str) -> ApiResult<Json<MeetingView>> {
    let id = meeting_id(id)?;
    Ok(Json(meeting_with_links(state, &id).await?))
}

/// The meeting as iCalendar (RFC 5545), for the admin or with one of its join tokens.
#[utoipa::path(get, path = "/api/meetings/{id}.ics", tag = "meetings",
    security(("admin" = []), ()),
    params(
        ("id" = String, Path, description = "The meeting's id"),
        ("token" = Option<String>, Query, description = "One of the meeting's join tokens, instead of the admin token"),
    ),
    responses(
        (status = 200, description = "One VEVENT", content_type = "text/calendar"),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ))]
async fn meeting_ics(
    state: &AppState,
    id: &str,
    headers: &HeaderMap,
    query: Result<Query<TokenQuery>, QueryRejection>,
) -> ApiResult<Response> {
    let Query(query) = query?;
    match &query.token {
        // A site may fetch its meeting's calendar entry days before the link admits it,
        // so the window is not checked here; everything else is.
        Some(token) => {
            let issued = state.tokens.authenticate(&state.store, token).await?;
            if issued.meeting.as_str() != id {
                return Err(wrong_meeting());
            }
        }
        None => {
            require_admin(headers, state)?;
        }
    }
    let id = meeting_id(id)?;
    let meeting = state.store.meeting(&id).await?;
    let body = crate::export::icalendar(&meeting, now());
    let disposition = format!("attachment; filename=\"{id}.ics\"");
    Ok((
        [
            (
                header::CONTENT_TYPE,
                "text/calendar; charset=utf-8".to_owned(),
            ),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response())
}

fn wrong_meeting() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "wrong_meeting",
        "this join link is for another meeting",
    )
}

/// Replaces a scheduled meeting's details and invitations. Unchanged sites keep their
/// links; removed sites lose theirs; new sites and a new chair get new ones.
#[utoipa::path(put, path = "/api/meetings/{id}", tag = "meetings", security(("admin" = [])),
    params(("id" = String, Path, description = "The meeting's id")),
    request_body = MeetingRequest,
    responses(
        (status = 200, body = MeetingView, description = "With `links`"),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "`conflict`, or `meeting_cancelled`"),
        (status = 422, body = ErrorBody),
    ))]
async fn update_meeting(
    _: Admin,
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    body: Result<Json<MeetingRequest>, JsonRejection>,
) -> ApiResult<Json<MeetingView>> {
    let id = meeting_id(&id)?;
    let Json(body) = body?;
    let draft = body.into_draft()?;
    state.store.update_meeting(&id, &draft, now()).await?;
    Ok(Json(meeting_with_links(&state, &id).await?))
}

/// Cancels a meeting: its sites are free again and its links admit no one.
#[utoipa::path(post, path = "/api/meetings/{id}/cancel", tag = "meetings", security(("admin" = [])),
    params(("id" = String, Path, description = "The meeting's id")),
    responses(
        (status = 200, body = MeetingView),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ))]
async fn cancel_meeting(
    _: Admin,
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> ApiResult<Json<MeetingView>> {
    let id = meeting_id(&id)?;
    state.store.cancel_meeting(&id, now()).await?;
    let meeting = state.store.meeting(&id).await?;
    Ok(Json(MeetingView::new(&meeting, None)))
}

/// Issues one more link: an observer link for a site's IT staff, or a second link
/// for an invited site.
#[utoipa::path(post, path = "/api/meetings/{id}/links", tag = "meetings", security(("admin" = [])),
    params(("id" = String, Path, description = "The meeting's id")),
    request_body = LinkRequest,
    responses(
        (status = 201, body = JoinLink),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "`meeting_not_found`, `site_not_found`"),
        (status = 409, body = ErrorBody, description = "`meeting_cancelled`"),
        (status = 422, body = ErrorBody, description = "`not_invited`, `role_mismatch`"),
    ))]
async fn create_link(
    _: Admin,
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    body: Result<Json<LinkRequest>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<JoinLink>)> {
    let id = meeting_id(&id)?;
    let Json(body) = body?;
    let site = SiteCode::parse(&body.site)?;
    let token = state
        .store
        .issue_token(&id, &site, body.role.into(), now())
        .await?;
    let meeting = state.store.meeting(&id).await?;
    Ok((
        StatusCode::CREATED,
        Json(JoinLink::new(&state.tokens, &token, &meeting)),
    ))
}

/// Revokes one link.
#[utoipa::path(delete, path = "/api/meetings/{id}/links/{token_id}", tag = "meetings",
    security(("admin" = [])),
    params(
        ("id" = String, Path, description = "The meeting's id"),
        ("token_id" = String, Path, description = "The link's `token_id`"),
    ),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "`link_not_found`"),
    ))]
async fn revoke_link(
    _: Admin,
    State(state): State<Arc<AppState>>,
    Path((id, token_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let id = meeting_id(&id)?;
    state.store.revoke_token(&id, &token_id, now()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Revokes every link of an invited site in the meeting and issues a new one.
#[utoipa::path(post, path = "/api/meetings/{id}/sites/{code}/reissue", tag = "meetings",
    security(("admin" = [])),
    params(
        ("id" = String, Path, description = "The meeting's id"),
        ("code" = String, Path, description = "The invited site's code"),
    ),
    responses(
        (status = 201, body = JoinLink, description = "The new link"),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "`meeting_cancelled`"),
        (status = 422, body = ErrorBody, description = "`not_invited`"),
    ))]
async fn reissue_link(
    _: Admin,
    State(state): State<Arc<AppState>>,
    Path((id, code)): Path<(String, String)>,
) -> ApiResult<(StatusCode, Json<JoinLink>)> {
    let id = meeting_id(&id)?;
    let site = SiteCode::parse(&code).map_err(|_| site_not_found(&code))?;
    let token = state.store.reissue(&id, &site, now()).await?;
    let meeting = state.store.meeting(&id).await?;
    Ok((
        StatusCode::CREATED,
        Json(JoinLink::new(&state.tokens, &token, &meeting)),
    ))
}

/// The roll call: every invited site with its attendance.
#[utoipa::path(get, path = "/api/meetings/{id}/attendance", tag = "meetings",
    security(("admin" = [])),
    params(("id" = String, Path, description = "The meeting's id")),
    responses(
        (status = 200, body = Vec<AttendanceLine>),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ))]
async fn attendance(
    _: Admin,
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<AttendanceLine>>> {
    let id = meeting_id(&id)?;
    let roll = state.store.attendance(&id).await?;
    Ok(Json(roll.iter().map(AttendanceLine::new).collect()))
}

/// The roll call as CSV: site_code, site_name, status, joined_at, left_at, reason.
#[utoipa::path(get, path = "/api/meetings/{id}/attendance.csv", tag = "meetings",
    security(("admin" = [])),
    params(("id" = String, Path, description = "The meeting's id")),
    responses(
        (status = 200, description = "UTF-8 with a byte order mark, CRLF lines", content_type = "text/csv"),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ))]
async fn attendance_csv(
    _: Admin,
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let id = meeting_id(&id)?;
    let roll = state.store.attendance(&id).await?;
    let disposition = format!("attachment; filename=\"attendance-{id}.csv\"");
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        crate::export::attendance_csv(&roll),
    )
        .into_response())
}

// ---- Join ----

#[derive(Deserialize, utoipa::IntoParams)]
struct InvitationQuery {
    /// The join token from the link.
    token: String,
    /// The meeting id from the link's path; if given, it must be the token's.
    meeting: Option<String>,
}

/// What a join link admits now: the join page's first question.
#[utoipa::path(get, path = "/api/invitation", tag = "join",
    params(InvitationQuery),
    responses(
        (status = 200, body = InvitationView),
        (status = 400, body = ErrorBody, description = "`invalid_query`: no token"),
        (status = 401, body = ErrorBody, description = "`invalid_token`, `token_revoked`, `token_expired`"),
        (status = 403, body = ErrorBody, description = "`token_not_yet_valid`, `meeting_cancelled`, `wrong_meeting`"),
    ))]
async fn invitation(
    State(state): State<Arc<AppState>>,
    query: Result<Query<InvitationQuery>, QueryRejection>,
) -> ApiResult<Json<InvitationView>> {
    let Query(query) = query?;
    let claims = state
        .tokens
        .verify(&state.store, &query.token, now())
        .await?;
    if query
        .meeting
        .as_deref()
        .is_some_and(|meeting| meeting != claims.meeting.id.as_str())
    {
        return Err(wrong_meeting());
    }
    let meeting = &claims.meeting;
    Ok(Json(InvitationView {
        meeting: InvitationMeeting {
            id: meeting.id.to_string(),
            title: meeting.title.clone(),
            start: crate::model::format_time(meeting.starts_at),
            end: crate::model::format_time(meeting.ends_at),
            floor_mode: meeting.floor_mode.into(),
        },
        site: InvitationSite {
            code: claims.site.code.to_string(),
            name: claims.site.name.as_str().to_owned(),
            tier: claims.site.tier.into(),
        },
        role: claims.role.into(),
    }))
}
