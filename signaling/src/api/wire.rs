//! The REST API's JSON, as it goes over the wire: the only place the API derives serde,
//! and where the OpenAPI schemas come from. Requests become checked model values here
//! (or an error with a stable code); model values become responses here.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::access::Tokens;
use crate::line_test::{LineTestRecord, Verdict};
use crate::model::{
    self, AttendanceStatus, DraftFields, InputError, Meeting, MeetingDraft, MeetingStatus, Role,
    Site, SiteAttendance, SiteCode, SiteName, format_time, parse_time,
};
use crate::store::{Conflict, IssuedToken};

/// A site's tier in the government network.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    Central,
    Province,
    Commune,
}

/// For the commune tier: a ward (phường) or a commune (xã).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Ward,
    Commune,
}

/// `chair`: the chair gives the floor; `open`: everyone may speak.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FloorMode {
    #[default]
    Chair,
    Open,
}

/// What a join link lets its site do.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LinkRole {
    Chair,
    Participant,
    /// IT staff: see and hear, never heard.
    Observer,
}

#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Scheduled,
    Cancelled,
}

#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Attendance {
    NotCalled,
    Present,
    Late,
    Left,
    Absent,
}

/// A site of the directory.
#[derive(Debug, Serialize, ToSchema)]
pub struct SiteView {
    /// ASCII slug, unique, e.g. `quang-lam`.
    #[schema(example = "quang-lam")]
    pub code: String,
    /// The name, with diacritics.
    #[schema(example = "Xã Quảng Lâm")]
    pub name: String,
    pub tier: Tier,
    /// Present for the commune tier only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<Kind>,
}

/// A new site.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSite {
    /// 1 to 64 lowercase ASCII letters and digits, words joined by single hyphens.
    #[schema(example = "quang-lam")]
    pub code: String,
    /// 1 to 120 characters.
    #[schema(example = "Xã Quảng Lâm")]
    pub name: String,
    pub tier: Tier,
    /// Only for the commune tier.
    #[serde(default)]
    pub kind: Option<Kind>,
}

/// A site's new name and tier; its code stays.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SiteChange {
    pub name: String,
    pub tier: Tier,
    #[serde(default)]
    pub kind: Option<Kind>,
}

/// A meeting to create, or the whole new state of one being edited.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MeetingRequest {
    /// 1 to 200 characters, stored and returned exactly as given.
    #[schema(example = "Giao ban trực tuyến tháng 7")]
    pub title: String,
    /// Up to 10,000 characters.
    #[serde(default)]
    pub agenda: String,
    /// RFC 3339 with an offset.
    #[schema(example = "2026-07-01T08:00:00+07:00")]
    pub start: String,
    /// RFC 3339 with an offset; after `start`, at most 24 hours later.
    #[schema(example = "2026-07-01T10:00:00+07:00")]
    pub end: String,
    /// The chairing site's code. The chair is always invited; listing it in `sites`
    /// too is allowed.
    #[schema(example = "cao-bang")]
    pub chair: String,
    /// Codes of the invited sites, each once.
    #[serde(default)]
    #[schema(example = json!(["quang-lam", "ly-bon"]))]
    pub sites: Vec<String>,
    /// Also invite every site of the commune tier.
    #[serde(default)]
    pub all_communes: bool,
    #[serde(default)]
    pub floor_mode: FloorMode,
}

/// An invited site and its role.
#[derive(Debug, Serialize, ToSchema)]
pub struct InvitedSite {
    pub code: String,
    pub name: String,
    pub tier: Tier,
    pub role: LinkRole,
}

/// One site's join link.
#[derive(Debug, Serialize, ToSchema)]
pub struct JoinLink {
    pub site: String,
    pub role: LinkRole,
    /// The token's id (`jti`), to revoke this link alone.
    pub token_id: String,
    /// `<public_url>/m/<meeting id>?token=<JWT>`.
    pub url: String,
}

/// A meeting.
#[derive(Debug, Serialize, ToSchema)]
pub struct MeetingView {
    #[schema(example = "3f9a0c1d2e4b5a67")]
    pub id: String,
    /// Exactly as given: clients must show it as text, never as markup.
    pub title: String,
    pub agenda: String,
    /// RFC 3339, UTC.
    pub start: String,
    /// RFC 3339, UTC.
    pub end: String,
    pub chair: String,
    pub floor_mode: FloorMode,
    pub status: Status,
    /// Every invited site, the chair first.
    pub sites: Vec<InvitedSite>,
    /// The active join links (single-meeting answers only), the chair's first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub links: Option<Vec<JoinLink>>,
}

/// An extra join link.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkRequest {
    /// Any site of the directory for `observer`; for `chair` and `participant`, a
    /// site invited with that role.
    pub site: String,
    pub role: LinkRole,
}

/// What a join link admits, for the join page.
#[derive(Debug, Serialize, ToSchema)]
pub struct InvitationView {
    pub meeting: InvitationMeeting,
    pub site: InvitationSite,
    pub role: LinkRole,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InvitationMeeting {
    pub id: String,
    pub title: String,
    pub start: String,
    pub end: String,
    pub floor_mode: FloorMode,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InvitationSite {
    pub code: String,
    pub name: String,
    pub tier: Tier,
}

/// One line of the roll call.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttendanceLine {
    pub site: SiteView,
    pub status: Attendance,
    /// RFC 3339, UTC: when the site first entered.
    pub joined_at: Option<String>,
    /// RFC 3339, UTC: when the site last left.
    pub left_at: Option<String>,
    /// Why an absent site is absent.
    pub reason: Option<String>,
}

/// A line test's verdict.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LineTestVerdict {
    Ready,
    /// A meeting works, with less: lower video, some delay, the odd glitch.
    Marginal,
    NotReady,
}

/// One line test of a site, as it measured and concluded.
#[derive(Debug, Serialize, ToSchema)]
pub struct LineTestView {
    /// RFC 3339, UTC: when the test ended.
    pub at: String,
    /// The meeting whose join link ran the test.
    pub meeting: Option<String>,
    pub verdict: LineTestVerdict,
    /// Why it is not ready, or only marginal; worst first, empty when ready.
    pub reasons: Vec<LineTestReasonView>,
    /// False when no media connection came up: the figures are then all zero.
    pub connected: bool,
    /// Median round-trip time of the probes, under the test's load.
    pub rtt_ms: Option<f64>,
    /// Mean change between consecutive round trips.
    pub jitter_ms: Option<f64>,
    /// Probes that never came back.
    pub loss_percent: Option<f64>,
    /// What reached the site, and what it needed for a meeting.
    pub download_kbps: f64,
    pub download_needed_kbps: u64,
    /// What reached the server from the site, and what it needed.
    pub upload_kbps: f64,
    pub upload_needed_kbps: u64,
    /// Whether the microphone's sound and the camera's picture reached the server.
    pub audio: bool,
    pub video: bool,
    pub duration_ms: i64,
}

/// Why a line is not ready, or only marginal.
#[derive(Debug, Serialize, ToSchema)]
pub struct LineTestReasonView {
    /// `no_connection`, `incomplete`, `no_reply`, `download_low`, `upload_low`,
    /// `rtt_high`, `loss_high`, `jitter_high`, `no_audio` or `no_video`.
    #[schema(example = "upload_low")]
    pub code: String,
    /// `marginal` or `not_ready`.
    pub severity: String,
    /// The figure measured: kbit/s, ms or percent, by the code.
    pub measured: Option<f64>,
    /// For throughput, what a meeting needs; otherwise the threshold crossed.
    pub limit: Option<f64>,
    #[schema(example = "upload 190 kbit/s, a meeting needs 540 kbit/s")]
    pub message: String,
}

impl LineTestView {
    pub fn new(record: &LineTestRecord) -> LineTestView {
        let figures = &record.figures;
        LineTestView {
            at: format_time(record.at),
            meeting: record.meeting.as_ref().map(ToString::to_string),
            verdict: match record.verdict {
                Verdict::Ready => LineTestVerdict::Ready,
                Verdict::Marginal => LineTestVerdict::Marginal,
                Verdict::NotReady => LineTestVerdict::NotReady,
            },
            reasons: record
                .reasons
                .iter()
                .map(|reason| LineTestReasonView {
                    code: reason.code.as_str().to_owned(),
                    severity: reason.severity.as_str().to_owned(),
                    measured: reason.measured,
                    limit: reason.limit,
                    message: reason.message(),
                })
                .collect(),
            connected: figures.connected,
            rtt_ms: figures.rtt_ms,
            jitter_ms: figures.jitter_ms,
            loss_percent: figures.loss_percent,
            download_kbps: figures.download_kbps,
            download_needed_kbps: record.download_needed_kbps,
            upload_kbps: figures.upload_kbps,
            upload_needed_kbps: record.upload_needed_kbps,
            audio: figures.audio,
            video: figures.video,
            duration_ms: figures.duration_ms,
        }
    }
}

/// Every refusal: a stable code for programs and a message for people.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    #[schema(example = "end_before_start")]
    pub code: String,
    #[schema(example = "the meeting must end after it starts")]
    pub message: String,
    /// For `conflict`: the overlapping meetings and the sites they share.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub conflicts: Vec<ConflictView>,
}

/// An overlapping meeting and the sites it shares with the one refused.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConflictView {
    pub meeting: String,
    pub title: String,
    pub start: String,
    pub end: String,
    pub sites: Vec<String>,
}

impl NewSite {
    pub fn into_site(self) -> Result<Site, InputError> {
        Site::new(
            SiteCode::parse(&self.code)?,
            SiteName::parse(&self.name)?,
            self.tier.into(),
            self.kind.map(Into::into),
        )
    }
}

impl SiteChange {
    pub fn into_site(self, code: SiteCode) -> Result<Site, InputError> {
        Site::new(
            code,
            SiteName::parse(&self.name)?,
            self.tier.into(),
            self.kind.map(Into::into),
        )
    }
}

impl MeetingRequest {
    pub fn into_draft(self) -> Result<MeetingDraft, InputError> {
        let sites = self
            .sites
            .iter()
            .map(|code| SiteCode::parse(code))
            .collect::<Result<Vec<_>, _>>()?;
        MeetingDraft::new(DraftFields {
            starts_at: parse_time("start", &self.start)?,
            ends_at: parse_time("end", &self.end)?,
            chair: SiteCode::parse(&self.chair)?,
            title: self.title,
            agenda: self.agenda,
            sites,
            all_communes: self.all_communes,
            floor_mode: self.floor_mode.into(),
        })
    }
}

impl SiteView {
    pub fn new(site: &Site) -> SiteView {
        SiteView {
            code: site.code.to_string(),
            name: site.name.as_str().to_owned(),
            tier: site.tier.into(),
            kind: site.kind.map(Into::into),
        }
    }
}

impl MeetingView {
    /// The meeting, with its links signed if `tokens` are given.
    pub fn new(meeting: &Meeting, links: Option<(&Tokens, &[IssuedToken])>) -> MeetingView {
        MeetingView {
            id: meeting.id.to_string(),
            title: meeting.title.clone(),
            agenda: meeting.agenda.clone(),
            start: format_time(meeting.starts_at),
            end: format_time(meeting.ends_at),
            chair: meeting.chair.to_string(),
            floor_mode: meeting.floor_mode.into(),
            status: match meeting.status {
                MeetingStatus::Scheduled => Status::Scheduled,
                MeetingStatus::Cancelled => Status::Cancelled,
            },
            sites: meeting
                .invited
                .iter()
                .map(|invitation| InvitedSite {
                    code: invitation.site.code.to_string(),
                    name: invitation.site.name.as_str().to_owned(),
                    tier: invitation.site.tier.into(),
                    role: invitation.role.into(),
                })
                .collect(),
            links: links.map(|(tokens, issued)| {
                issued
                    .iter()
                    .map(|token| JoinLink::new(tokens, token, meeting))
                    .collect()
            }),
        }
    }
}

impl JoinLink {
    pub fn new(tokens: &Tokens, token: &IssuedToken, meeting: &Meeting) -> JoinLink {
        JoinLink {
            site: token.site.to_string(),
            role: token.role.into(),
            token_id: token.id.clone(),
            url: tokens.link(&meeting.id, &tokens.sign(token, meeting)),
        }
    }
}

impl AttendanceLine {
    pub fn new(line: &SiteAttendance) -> AttendanceLine {
        AttendanceLine {
            site: SiteView::new(&line.site),
            status: match line.record.status {
                AttendanceStatus::NotCalled => Attendance::NotCalled,
                AttendanceStatus::Present => Attendance::Present,
                AttendanceStatus::Late => Attendance::Late,
                AttendanceStatus::Left => Attendance::Left,
                AttendanceStatus::Absent => Attendance::Absent,
            },
            joined_at: line.record.joined_at.map(format_time),
            left_at: line.record.left_at.map(format_time),
            reason: line.record.reason.clone(),
        }
    }
}

impl ConflictView {
    pub fn new(conflict: &Conflict) -> ConflictView {
        ConflictView {
            meeting: conflict.meeting.to_string(),
            title: conflict.title.clone(),
            start: format_time(conflict.starts_at),
            end: format_time(conflict.ends_at),
            sites: conflict.sites.iter().map(SiteCode::to_string).collect(),
        }
    }
}

impl From<Tier> for model::Tier {
    fn from(tier: Tier) -> model::Tier {
        match tier {
            Tier::Central => model::Tier::Central,
            Tier::Province => model::Tier::Province,
            Tier::Commune => model::Tier::Commune,
        }
    }
}

impl From<model::Tier> for Tier {
    fn from(tier: model::Tier) -> Tier {
        match tier {
            model::Tier::Central => Tier::Central,
            model::Tier::Province => Tier::Province,
            model::Tier::Commune => Tier::Commune,
        }
    }
}

impl From<Kind> for model::SiteKind {
    fn from(kind: Kind) -> model::SiteKind {
        match kind {
            Kind::Ward => model::SiteKind::Ward,
            Kind::Commune => model::SiteKind::Commune,
        }
    }
}

impl From<model::SiteKind> for Kind {
    fn from(kind: model::SiteKind) -> Kind {
        match kind {
            model::SiteKind::Ward => Kind::Ward,
            model::SiteKind::Commune => Kind::Commune,
        }
    }
}

impl From<FloorMode> for model::FloorMode {
    fn from(mode: FloorMode) -> model::FloorMode {
        match mode {
            FloorMode::Chair => model::FloorMode::Chair,
            FloorMode::Open => model::FloorMode::Open,
        }
    }
}

impl From<model::FloorMode> for FloorMode {
    fn from(mode: model::FloorMode) -> FloorMode {
        match mode {
            model::FloorMode::Chair => FloorMode::Chair,
            model::FloorMode::Open => FloorMode::Open,
        }
    }
}

impl From<LinkRole> for Role {
    fn from(role: LinkRole) -> Role {
        match role {
            LinkRole::Chair => Role::Chair,
            LinkRole::Participant => Role::Participant,
            LinkRole::Observer => Role::Observer,
        }
    }
}

impl From<Role> for LinkRole {
    fn from(role: Role) -> LinkRole {
        match role {
            Role::Chair => LinkRole::Chair,
            Role::Participant => LinkRole::Participant,
            Role::Observer => LinkRole::Observer,
        }
    }
}
