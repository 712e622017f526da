//! The scheduling domain as checked values: sites, meetings, roles and attendance.
//!
//! Everything here is built once at an edge (the REST API, the default site file, a
//! database row) through a `parse` or `new` that refuses bad input with an
//! [`InputError`], and is trusted afterwards: a [`SiteCode`] is a slug, a
//! [`MeetingDraft`] ends after it starts and invites nobody twice. No I/O, no clock.

use std::fmt;

/// Milliseconds since the Unix epoch, UTC: how every time is kept and stored.
pub type Millis = i64;

/// The longest title a meeting may have, in characters.
pub const MAX_TITLE_CHARS: usize = 200;
/// The longest agenda a meeting may have, in characters.
pub const MAX_AGENDA_CHARS: usize = 10_000;
/// The longest site name, in characters: "UBND tỉnh Cao Bằng" has 18.
pub const MAX_SITE_NAME_CHARS: usize = 120;
/// The longest site code, in bytes.
pub const MAX_SITE_CODE_LEN: usize = 64;
/// The longest absence reason, in characters (the meeting core allows as many).
pub const MAX_REASON_CHARS: usize = 200;
/// The longest meeting. A longer one is almost surely a mistyped date, and it would
/// block every invited site for its whole length.
pub const MAX_MEETING_MILLIS: Millis = 24 * 60 * 60 * 1000;

/// Why a value from outside was refused. Each variant has a stable [`InputError::code`]
/// that the API returns; the message is for people.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InputError {
    /// A site code that is not a lowercase ASCII slug.
    #[error(
        "site code {0:?} must be 1 to 64 lowercase ASCII letters and digits in words joined by single hyphens, such as \"quang-lam\""
    )]
    SiteCode(String),
    /// A site name that is empty, too long or holds control characters.
    #[error("a site name has 1 to {MAX_SITE_NAME_CHARS} characters and no control characters")]
    SiteName,
    /// A tier other than `central`, `province` and `commune`.
    #[error("tier {0:?} is not one of central, province, commune")]
    Tier(String),
    /// A kind other than `ward` and `commune`, or a kind outside the commune tier.
    #[error("kind is \"ward\" or \"commune\", and only for sites of the commune tier")]
    Kind,
    /// An empty or blank title.
    #[error("a meeting needs a title")]
    TitleEmpty,
    /// A title over [`MAX_TITLE_CHARS`].
    #[error("the title has {0} characters; at most {MAX_TITLE_CHARS} are allowed")]
    TitleTooLong(usize),
    /// An agenda over [`MAX_AGENDA_CHARS`].
    #[error("the agenda has {0} characters; at most {MAX_AGENDA_CHARS} are allowed")]
    AgendaTooLong(usize),
    /// A time that is not RFC 3339 with an offset.
    #[error(
        "{field} {value:?} is not an RFC 3339 time with an offset, such as \"2026-07-01T08:00:00+07:00\""
    )]
    Time { field: &'static str, value: String },
    /// The end is not after the start.
    #[error("the meeting must end after it starts")]
    EndBeforeStart,
    /// A meeting longer than [`MAX_MEETING_MILLIS`].
    #[error("a meeting lasts at most 24 hours")]
    TooLong,
    /// The same site listed twice among the invited.
    #[error("site {0} is invited twice")]
    DuplicateInvitation(String),
    /// Nobody invited but the chair.
    #[error("invite at least one site besides the chair")]
    NoInvitedSites,
    /// A floor mode other than `chair` and `open`.
    #[error("floor mode {0:?} is not one of chair, open")]
    FloorMode(String),
    /// A role other than `chair`, `participant` and `observer`.
    #[error("role {0:?} is not one of chair, participant, observer")]
    Role(String),
    /// An absence reason that is too long.
    #[error("a reason has at most {MAX_REASON_CHARS} characters")]
    Reason,
}

impl InputError {
    /// The stable code the API answers with.
    pub fn code(&self) -> &'static str {
        match self {
            InputError::SiteCode(_) => "invalid_site_code",
            InputError::SiteName => "invalid_site_name",
            InputError::Tier(_) => "invalid_tier",
            InputError::Kind => "invalid_kind",
            InputError::TitleEmpty => "title_empty",
            InputError::TitleTooLong(_) => "title_too_long",
            InputError::AgendaTooLong(_) => "agenda_too_long",
            InputError::Time { .. } => "invalid_time",
            InputError::EndBeforeStart => "end_before_start",
            InputError::TooLong => "meeting_too_long",
            InputError::DuplicateInvitation(_) => "duplicate_invitation",
            InputError::NoInvitedSites => "no_invited_sites",
            InputError::FloorMode(_) => "invalid_floor_mode",
            InputError::Role(_) => "invalid_role",
            InputError::Reason => "invalid_reason",
        }
    }
}

/// A site's code: an ASCII slug such as `quang-lam`, unique in the directory. It appears
/// in join links, tokens, exports and logs, so it never holds anything but `[a-z0-9-]`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SiteCode(String);

impl SiteCode {
    pub fn parse(text: &str) -> Result<SiteCode, InputError> {
        let well_formed = !text.is_empty()
            && text.len() <= MAX_SITE_CODE_LEN
            && text.split('-').all(|word| {
                !word.is_empty()
                    && word
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            });
        if well_formed {
            Ok(SiteCode(text.to_owned()))
        } else {
            // Shown in an error message: cut, so a huge input does not come back whole.
            Err(InputError::SiteCode(text.chars().take(80).collect()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SiteCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A site's name as people read it, with its diacritics: "Xã Quảng Lâm".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteName(String);

impl SiteName {
    pub fn parse(text: &str) -> Result<SiteName, InputError> {
        let text = text.trim();
        let length = text.chars().count();
        if length == 0 || length > MAX_SITE_NAME_CHARS || text.chars().any(char::is_control) {
            return Err(InputError::SiteName);
        }
        Ok(SiteName(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Where a site stands in the government network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Tier {
    Central,
    Province,
    Commune,
}

/// What a site of the commune tier is: its name starts "Phường" or "Xã".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SiteKind {
    Ward,
    Commune,
}

/// One bridge point (*điểm cầu*) of the directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    pub code: SiteCode,
    pub name: SiteName,
    pub tier: Tier,
    /// Set for the commune tier only, so a ward can be told from a commune.
    pub kind: Option<SiteKind>,
}

impl Site {
    /// Checks that `kind` fits `tier`.
    pub fn new(
        code: SiteCode,
        name: SiteName,
        tier: Tier,
        kind: Option<SiteKind>,
    ) -> Result<Site, InputError> {
        if kind.is_some() && tier != Tier::Commune {
            return Err(InputError::Kind);
        }
        Ok(Site {
            code,
            name,
            tier,
            kind,
        })
    }
}

/// A meeting's identifier: 16 lowercase hexadecimal digits (64 random bits), so one
/// meeting's id says nothing about another's.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MeetingId(String);

impl MeetingId {
    /// A fresh random id.
    pub fn random() -> MeetingId {
        MeetingId(crate::access::random_hex(8))
    }

    /// `None` unless `text` is 16 lowercase hex digits: anything else names no meeting.
    pub fn parse(text: &str) -> Option<MeetingId> {
        let well_formed =
            text.len() == 16 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        well_formed.then(|| MeetingId(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MeetingId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Who may speak in a meeting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FloorMode {
    /// Chair-controlled: a site speaks when the chair gives it the floor.
    Chair,
    /// Open discussion: everyone may speak.
    Open,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MeetingStatus {
    Scheduled,
    /// Cancelled meetings are kept, block no site, and admit no one.
    Cancelled,
}

/// What a join link lets its site do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Chair,
    Participant,
    /// IT staff: watch and listen, never heard.
    Observer,
}

/// A meeting as the secretary asks for it, checked: what create and edit take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeetingDraft {
    title: String,
    agenda: String,
    starts_at: Millis,
    ends_at: Millis,
    chair: SiteCode,
    sites: Vec<SiteCode>,
    all_communes: bool,
    floor_mode: FloorMode,
}

/// The fields of a [`MeetingDraft`] before checking.
#[derive(Debug, Clone)]
pub struct DraftFields {
    pub title: String,
    pub agenda: String,
    pub starts_at: Millis,
    pub ends_at: Millis,
    pub chair: SiteCode,
    /// Invited sites besides the chair, who is always invited; listing it is allowed.
    pub sites: Vec<SiteCode>,
    /// Invite every site of the commune tier, in addition to `sites`.
    pub all_communes: bool,
    pub floor_mode: FloorMode,
}

impl MeetingDraft {
    /// Checks everything that needs no database: lengths, times and duplicates.
    /// Whether the sites exist and are free is the store's to check.
    pub fn new(fields: DraftFields) -> Result<MeetingDraft, InputError> {
        let DraftFields {
            title,
            agenda,
            starts_at,
            ends_at,
            chair,
            sites,
            all_communes,
            floor_mode,
        } = fields;
        if title.trim().is_empty() {
            return Err(InputError::TitleEmpty);
        }
        let title_chars = title.chars().count();
        if title_chars > MAX_TITLE_CHARS {
            return Err(InputError::TitleTooLong(title_chars));
        }
        let agenda_chars = agenda.chars().count();
        if agenda_chars > MAX_AGENDA_CHARS {
            return Err(InputError::AgendaTooLong(agenda_chars));
        }
        if ends_at <= starts_at {
            return Err(InputError::EndBeforeStart);
        }
        if ends_at - starts_at > MAX_MEETING_MILLIS {
            return Err(InputError::TooLong);
        }
        let mut seen = std::collections::BTreeSet::new();
        for site in &sites {
            if !seen.insert(site) {
                return Err(InputError::DuplicateInvitation(site.to_string()));
            }
        }
        let anyone_but_chair = all_communes || sites.iter().any(|site| *site != chair);
        if !anyone_but_chair {
            return Err(InputError::NoInvitedSites);
        }
        Ok(MeetingDraft {
            title,
            agenda,
            starts_at,
            ends_at,
            chair,
            sites,
            all_communes,
            floor_mode,
        })
    }

    pub fn title(&self) -> &str {
        &self.title
    }

    pub fn agenda(&self) -> &str {
        &self.agenda
    }

    pub fn starts_at(&self) -> Millis {
        self.starts_at
    }

    pub fn ends_at(&self) -> Millis {
        self.ends_at
    }

    pub fn chair(&self) -> &SiteCode {
        &self.chair
    }

    /// The sites listed by name, as given (the chair may be among them).
    pub fn sites(&self) -> &[SiteCode] {
        &self.sites
    }

    pub fn all_communes(&self) -> bool {
        self.all_communes
    }

    pub fn floor_mode(&self) -> FloorMode {
        self.floor_mode
    }
}

/// A site invited to a meeting, with the role its link carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invitation {
    pub site: Site,
    pub role: Role,
}

/// A stored meeting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meeting {
    pub id: MeetingId,
    pub title: String,
    pub agenda: String,
    pub starts_at: Millis,
    pub ends_at: Millis,
    pub chair: SiteCode,
    pub floor_mode: FloorMode,
    pub status: MeetingStatus,
    /// Every invited site, the chair first, then in directory order.
    pub invited: Vec<Invitation>,
}

/// A site's roll-call status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttendanceStatus {
    NotCalled,
    Present,
    Late,
    Left,
    Absent,
}

/// One site's roll-call record in one meeting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttendanceRecord {
    pub status: AttendanceStatus,
    /// When the site first entered the meeting.
    pub joined_at: Option<Millis>,
    /// When the site last left it.
    pub left_at: Option<Millis>,
    /// Why an absent site is absent, as the secretary entered it.
    pub reason: Option<String>,
}

impl AttendanceRecord {
    /// The record of a site nobody has called yet.
    pub fn not_called() -> AttendanceRecord {
        AttendanceRecord {
            status: AttendanceStatus::NotCalled,
            joined_at: None,
            left_at: None,
            reason: None,
        }
    }
}

/// One invited site's line of the roll call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteAttendance {
    pub site: Site,
    pub record: AttendanceRecord,
}

/// The names the database and the API give the enums: one table, both directions.
macro_rules! names {
    ($type:ty { $($variant:path => $name:literal),+ $(,)? }) => {
        impl $type {
            pub fn as_str(self) -> &'static str {
                match self {
                    $($variant => $name),+
                }
            }

            /// The value named `text`, if any.
            pub fn from_name(text: &str) -> Option<$type> {
                match text {
                    $($name => Some($variant),)+
                    _ => None,
                }
            }
        }
    };
}

names!(Tier {
    Tier::Central => "central",
    Tier::Province => "province",
    Tier::Commune => "commune",
});
names!(SiteKind {
    SiteKind::Ward => "ward",
    SiteKind::Commune => "commune",
});
names!(FloorMode {
    FloorMode::Chair => "chair",
    FloorMode::Open => "open",
});
names!(MeetingStatus {
    MeetingStatus::Scheduled => "scheduled",
    MeetingStatus::Cancelled => "cancelled",
});
names!(Role {
    Role::Chair => "chair",
    Role::Participant => "participant",
    Role::Observer => "observer",
});
names!(AttendanceStatus {
    AttendanceStatus::NotCalled => "not_called",
    AttendanceStatus::Present => "present",
    AttendanceStatus::Late => "late",
    AttendanceStatus::Left => "left",
    AttendanceStatus::Absent => "absent",
});

/// A short copy of a refused value, for an error message: a huge input does not come
/// back whole.
fn shown(text: &str) -> String {
    text.chars().take(40).collect()
}

impl Tier {
    pub fn parse(text: &str) -> Result<Tier, InputError> {
        Tier::from_name(text).ok_or_else(|| InputError::Tier(shown(text)))
    }
}

impl SiteKind {
    pub fn parse(text: &str) -> Result<SiteKind, InputError> {
        SiteKind::from_name(text).ok_or(InputError::Kind)
    }
}

impl FloorMode {
    pub fn parse(text: &str) -> Result<FloorMode, InputError> {
        FloorMode::from_name(text).ok_or_else(|| InputError::FloorMode(shown(text)))
    }
}

impl Role {
    pub fn parse(text: &str) -> Result<Role, InputError> {
        Role::from_name(text).ok_or_else(|| InputError::Role(shown(text)))
    }
}

/// Parses an RFC 3339 time with an offset into UTC milliseconds.
pub fn parse_time(field: &'static str, text: &str) -> Result<Millis, InputError> {
    let error = || InputError::Time {
        field,
        value: shown(text),
    };
    let time = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map_err(|_| error())?;
    // An offset can carry a time past the last four-digit year in UTC
    // (9999-12-31T23:59:59-23:59) or before the first: such a time could never be
    // written back in RFC 3339, so it is refused here rather than shown as 1970 later.
    let nanos = time.unix_timestamp_nanos();
    let utc_year = time::OffsetDateTime::from_unix_timestamp_nanos(nanos).map(|t| t.year());
    if !matches!(utc_year, Ok(0..=9999)) {
        return Err(error());
    }
    Millis::try_from(nanos / 1_000_000).map_err(|_| error())
}

/// Formats UTC milliseconds as RFC 3339 in UTC, e.g. `2026-07-01T01:00:00Z`.
pub fn format_time(millis: Millis) -> String {
    let time = utc(millis);
    time.format(&time::format_description::well_known::Rfc3339)
        // Formatting fails only for years outside 0..=9999, which parse_time cannot
        // produce: RFC 3339 has four-digit years.
        .unwrap_or_else(|_| millis.to_string())
}

/// UTC milliseconds as a date and time. Out-of-range values, which no parsed time
/// gives, clamp to the epoch rather than panic.
pub(crate) fn utc(millis: Millis) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(text: &str) -> SiteCode {
        SiteCode::parse(text).unwrap()
    }

    fn fields() -> DraftFields {
        DraftFields {
            title: "Giao ban".into(),
            agenda: String::new(),
            starts_at: 1_000_000,
            ends_at: 2_000_000,
            chair: code("cao-bang"),
            sites: vec![code("quang-lam")],
            all_communes: false,
            floor_mode: FloorMode::Chair,
        }
    }

    #[test]
    fn site_codes_are_slugs() {
        let check = |text: &str, ok: bool| {
            assert_eq!(SiteCode::parse(text).is_ok(), ok, "{text:?}");
        };
        check("quang-lam", true);
        check("cao-bang", true);
        check("xa1", true);
        check("", false);
        check("-quang", false);
        check("quang-", false);
        check("quang--lam", false);
        check("Quang-Lam", false);
        check("quảng-lâm", false);
        check("quang lam", false);
        check("<script>", false);
        check(&"a".repeat(65), false);
        check(&"a".repeat(64), true);
    }

    #[test]
    fn drafts_refuse_what_the_api_must_refuse() {
        let check = |change: &dyn Fn(&mut DraftFields), expected: &str| {
            let mut f = fields();
            change(&mut f);
            let code = MeetingDraft::new(f)
                .map(|_| "ok")
                .unwrap_or_else(|e| e.code());
            assert_eq!(code, expected);
        };
        check(&|_| {}, "ok");
        check(&|f| f.title = "   ".into(), "title_empty");
        check(&|f| f.title = "ắ".repeat(200), "ok");
        check(&|f| f.title = "ắ".repeat(201), "title_too_long");
        check(&|f| f.agenda = "x".repeat(10_001), "agenda_too_long");
        check(&|f| f.ends_at = f.starts_at, "end_before_start");
        check(&|f| f.ends_at = f.starts_at - 1, "end_before_start");
        check(
            &|f| f.ends_at = f.starts_at + MAX_MEETING_MILLIS + 1,
            "meeting_too_long",
        );
        check(&|f| f.sites.push(code("quang-lam")), "duplicate_invitation");
        check(&|f| f.sites = vec![code("cao-bang")], "no_invited_sites");
        check(
            &|f| {
                f.sites = vec![];
                f.all_communes = true;
            },
            "ok",
        );
        check(&|f| f.sites.push(code("cao-bang")), "ok");
    }

    #[test]
    fn times_are_rfc3339_with_offset() {
        assert_eq!(
            parse_time("start", "2026-07-01T08:00:00+07:00"),
            parse_time("start", "2026-07-01T01:00:00Z")
        );
        assert_eq!(
            format_time(parse_time("start", "2026-07-01T08:00:00+07:00").unwrap()),
            "2026-07-01T01:00:00Z"
        );
        assert!(parse_time("start", "2026-07-01T08:00:00").is_err());
        assert!(parse_time("start", "2026-07-01").is_err());
        assert!(parse_time("start", "tomorrow").is_err());
    }

    #[test]
    fn names_go_both_ways() {
        for role in [Role::Chair, Role::Participant, Role::Observer] {
            assert_eq!(Role::parse(role.as_str()), Ok(role));
        }
        assert_eq!(Role::parse("admin").unwrap_err().code(), "invalid_role");
        assert_eq!(
            AttendanceStatus::from_name("not_called"),
            Some(AttendanceStatus::NotCalled)
        );
    }

    #[test]
    fn kind_only_for_communes() {
        let site = |tier, kind| Site::new(code("x"), SiteName::parse("X").unwrap(), tier, kind);
        assert!(site(Tier::Commune, Some(SiteKind::Ward)).is_ok());
        assert!(site(Tier::Province, None).is_ok());
        assert_eq!(
            site(Tier::Province, Some(SiteKind::Ward)),
            Err(InputError::Kind)
        );
    }
}
