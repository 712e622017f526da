//! Persistence: the site directory, meetings, their invitations and join tokens,
//! attendance and the server's secrets, in SQLite through sqlx.
//!
//! One [`Store`] per server, over a small pool of connections to
//! `<data_dir>/cau.sqlite3` in WAL mode with foreign keys on. The schema lives in
//! `signaling/migrations/`, embedded and applied at open; the default directory is
//! seeded on the very first start.
//!
//! **Invariant:** every write that touches more than one row runs in one transaction,
//! so a crash or a refused request leaves nothing half-written. Writes that check
//! before they write (a site's free time, a meeting's status) begin with
//! `BEGIN IMMEDIATE`, which takes SQLite's write lock at once: two requests cannot
//! both find a site free and both book it. The SQL is plain enough for PostgreSQL,
//! where these transactions would run at `SERIALIZABLE` instead.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Row, Sqlite, Transaction};

use crate::directory::DirectoryError;
use crate::line_test::{Figures, LineTestRecord, Reason, ReasonCode, Verdict};
use crate::meeting::RunState;
use crate::model::{
    AttendanceRecord, AttendanceStatus, FloorMode, InputError, Invitation, MAX_REASON_CHARS,
    Meeting, MeetingDraft, MeetingId, MeetingStatus, Millis, Role, Site, SiteAttendance, SiteCode,
    SiteKind, SiteName, Tier,
};

/// The database file inside the data directory.
pub const DATABASE_FILE: &str = "cau.sqlite3";

/// How long a write waits for another connection's write lock before giving up.
/// Writes are short; this only bites if the disk stalls.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections in the pool: WAL lets readers run beside the one writer.
const MAX_CONNECTIONS: u32 = 8;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Why the store refused or failed an operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The data directory could not be created.
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The schema could not be brought up to date.
    #[error("cannot migrate the database: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The shipped site directory is broken (a build defect).
    #[error("cannot seed the site directory: {0}")]
    Seed(#[from] DirectoryError),
    /// A value the caller passed is invalid.
    #[error(transparent)]
    Input(#[from] InputError),
    /// Codes that name no site of the directory (or a deleted one).
    #[error("unknown site codes: {}", .0.join(", "))]
    UnknownSites(Vec<String>),
    /// The site does not exist (or was deleted).
    #[error("site {0} does not exist")]
    SiteNotFound(String),
    /// A site with this code exists already.
    #[error("site {0} exists already")]
    SiteExists(String),
    /// The site is invited to meetings that are not over, so it cannot be deleted.
    #[error("site {site} is invited to meetings that are not over: {}", .meetings.join(", "))]
    SiteInUse { site: String, meetings: Vec<String> },
    /// No meeting has this id.
    #[error("meeting {0} does not exist")]
    MeetingNotFound(String),
    /// The meeting was cancelled and can no longer be changed.
    #[error("meeting {0} is cancelled")]
    MeetingCancelled(String),
    /// Some of the sites are invited to other meetings at the same time.
    #[error("{}", conflict_message(.0))]
    Conflict(Vec<Conflict>),
    /// The site is not invited to the meeting.
    #[error("site {site} is not invited to meeting {meeting}")]
    NotInvited { meeting: String, site: String },
    /// A chair or participant link asked for a site whose invitation has another role.
    #[error("site {site} is invited as {invited}, not as {asked}")]
    RoleMismatch {
        site: String,
        invited: &'static str,
        asked: &'static str,
    },
    /// No active join token has this id in this meeting.
    #[error("no active join link {0} in this meeting")]
    TokenNotFound(String),
    /// A row holds a value this version cannot read.
    #[error("the database holds an unreadable value: {0}")]
    Corrupt(String),
    /// The database failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

/// Another meeting at the same time as the one being scheduled, and the sites the two
/// share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    pub meeting: MeetingId,
    pub title: String,
    pub starts_at: Millis,
    pub ends_at: Millis,
    pub sites: Vec<SiteCode>,
}

fn conflict_message(conflicts: &[Conflict]) -> String {
    let Some(first) = conflicts.first() else {
        return "the meeting overlaps another".to_owned();
    };
    let sites: Vec<&str> = first.sites.iter().map(SiteCode::as_str).collect();
    let mut message = format!(
        "site{} {} {} invited to meeting {} ({:?}, {} to {}) at the same time",
        if sites.len() == 1 { "" } else { "s" },
        sites.join(", "),
        if sites.len() == 1 { "is" } else { "are" },
        first.meeting,
        first.title,
        crate::model::format_time(first.starts_at),
        crate::model::format_time(first.ends_at),
    );
    if conflicts.len() > 1 {
        message.push_str(&format!(
            ", and {} other meetings overlap too",
            conflicts.len() - 1
        ));
    }
    message
}

/// One issued join token, as the store keeps it: the JWT's `jti` and what it admits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedToken {
    pub id: String,
    pub meeting: MeetingId,
    pub site: SiteCode,
    pub role: Role,
    pub issued_at: Millis,
    pub revoked_at: Option<Millis>,
}

/// Which meetings to list: those that end after `from` and start before `to`.
#[derive(Debug, Clone, Copy)]
pub struct MeetingRange {
    pub from: Millis,
    pub to: Millis,
}

impl MeetingRange {
    pub const ALL: MeetingRange = MeetingRange {
        from: Millis::MIN,
        to: Millis::MAX,
    };
}

/// The database of one server. Cloning shares the pool.
#[derive(Clone)]
pub struct Store {
    pool: SqlitePool,
}

type Tx = Transaction<'static, Sqlite>;

impl Store {
    /// Opens (creating if needed) the database in `data_dir`, applies the migrations,
    /// and seeds the default site directory if the database has never held a site.
    pub async fn open(data_dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|source| StoreError::DataDir {
            path: data_dir.to_owned(),
            source,
        })?;
        let options = SqliteConnectOptions::new()
            .filename(data_dir.join(DATABASE_FILE))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a meeting the API answered 201 for survives a power cut too.
            // Writes are a few a minute; the cost is nothing.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .connect_with(options)
            .await?;
        MIGRATOR.run(&pool).await?;
        let store = Store { pool };
        store.seed(&crate::directory::default_sites()?).await?;
        Ok(store)
    }

    /// Waits for the connections to finish and closes them, so another store can open
    /// the same directory.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// The pool, for the modules that keep their own tables (line history).
    pub(crate) fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Writes `sites` if the directory has never held a site, deleted ones included:
    /// an administrator who deleted every site does not get them back on restart.
    async fn seed(&self, sites: &[Site]) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sites")
            .fetch_one(&mut *tx)
            .await?;
        if count > 0 {
            return Ok(());
        }
        for (position, site) in sites.iter().enumerate() {
            insert_site(&mut tx, site, position as i64).await?;
        }
        tx.commit().await?;
        tracing::info!(sites = sites.len(), "seeded the default site directory");
        Ok(())
    }

    async fn begin_write(&self) -> Result<Tx, StoreError> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    // ---- Sites ----

    /// The directory in its order, deleted sites left out.
    pub async fn sites(&self) -> Result<Vec<Site>, StoreError> {
        let rows = sqlx::query(
            "SELECT code, name, tier, kind FROM sites WHERE retired = FALSE ORDER BY position",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(site_from_row).collect()
    }

    /// One site of the directory, if it exists and was not deleted.
    pub async fn site(&self, code: &SiteCode) -> Result<Option<Site>, StoreError> {
        let row = sqlx::query(
            "SELECT code, name, tier, kind FROM sites WHERE code = $1 AND retired = FALSE",
        )
        .bind(code.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(site_from_row).transpose()
    }

    /// Adds a site at the end of the directory. A deleted site's code brings that site
    /// back with the new name and tier: codes are never reused for another place.
    pub async fn create_site(&self, site: &Site) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        let retired: Option<bool> = sqlx::query_scalar("SELECT retired FROM sites WHERE code = $1")
            .bind(site.code.as_str())
            .fetch_optional(&mut *tx)
            .await?;
        let position: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(position), -1) + 1 FROM sites")
            .fetch_one(&mut *tx)
            .await?;
        match retired {
            Some(false) => return Err(StoreError::SiteExists(site.code.to_string())),
            Some(true) => {
                sqlx::query(
                    "UPDATE sites SET name = $2, tier = $3, kind = $4, position = $5, \
                     retired = FALSE WHERE code = $1",
                )
                .bind(site.code.as_str())
                .bind(site.name.as_str())
                .bind(site.tier.as_str())
                .bind(site.kind.map(SiteKind::as_str))
                .bind(position)
                .execute(&mut *tx)
                .await?;
            }
            None => insert_site(&mut tx, site, position).await?,
        }
        tx.commit().await?;
        Ok(())
    }

    /// Renames a site or changes its tier; its code stays.
    pub async fn update_site(&self, site: &Site) -> Result<(), StoreError> {
        let result = sqlx::query(
            "UPDATE sites SET name = $2, tier = $3, kind = $4 WHERE code = $1 AND retired = FALSE",
        )
        .bind(site.code.as_str())
        .bind(site.name.as_str())
        .bind(site.tier.as_str())
        .bind(site.kind.map(SiteKind::as_str))
        .execute(&self.pool)
        .await?;
        if result.rows_affected() == 0 {
            return Err(StoreError::SiteNotFound(site.code.to_string()));
        }
        Ok(())
    }

    /// Deletes a site from the directory, unless it is invited to a meeting that is
    /// not cancelled and not over at `now`. The row stays, marked deleted, so past
    /// meetings and their attendance still name it; its remaining join links are revoked.
    pub async fn delete_site(&self, code: &SiteCode, now: Millis) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        let exists: Option<bool> = sqlx::query_scalar("SELECT retired FROM sites WHERE code = $1")
            .bind(code.as_str())
            .fetch_optional(&mut *tx)
            .await?;
        if exists != Some(false) {
            return Err(StoreError::SiteNotFound(code.to_string()));
        }
        let meetings: Vec<String> = sqlx::query_scalar(
            "SELECT m.id FROM invitations i JOIN meetings m ON m.id = i.meeting_id \
             WHERE i.site_code = $1 AND m.status = 'scheduled' AND m.ends_at > $2 \
             ORDER BY m.starts_at",
        )
        .bind(code.as_str())
        .bind(now)
        .fetch_all(&mut *tx)
        .await?;
        if !meetings.is_empty() {
            return Err(StoreError::SiteInUse {
                site: code.to_string(),
                meetings,
            });
        }
        sqlx::query("UPDATE sites SET retired = TRUE WHERE code = $1")
            .bind(code.as_str())
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE join_tokens SET revoked_at = $2 WHERE site_code = $1 AND revoked_at IS NULL",
        )
        .bind(code.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    // ---- Meetings ----

    /// Schedules a meeting and issues a join token for each invited site, all or
    /// nothing. Refuses unknown sites and sites busy in an overlapping meeting.
    pub async fn create_meeting(
        &self,
        draft: &MeetingDraft,
        now: Millis,
    ) -> Result<MeetingId, StoreError> {
        let id = MeetingId::random();
        let mut tx = self.begin_write().await?;
        let invited = resolve_invitations(&mut tx, draft).await?;
        check_free(&mut tx, draft, &invited, None).await?;
        sqlx::query(
            "INSERT INTO meetings (id, title, agenda, starts_at, ends_at, chair_site, \
             floor_mode, status, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'scheduled', $8, $8)",
        )
        .bind(id.as_str())
        .bind(draft.title())
        .bind(draft.agenda())
        .bind(draft.starts_at())
        .bind(draft.ends_at())
        .bind(draft.chair().as_str())
        .bind(draft.floor_mode().as_str())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        for (site, role) in &invited {
            insert_invitation(&mut tx, &id, site, *role).await?;
            issue_in(&mut tx, &id, site, *role, now).await?;
        }
        tx.commit().await?;
        Ok(id)
    }

    /// Replaces a scheduled meeting's details and invitations. Sites no longer invited
    /// lose their links; newly invited sites get one; a site whose role changes (a new
    /// chair, or the old one) gets a new link and loses the old. Links of unchanged
    /// sites stay valid: their window follows the meeting's new times.
    pub async fn update_meeting(
        &self,
        id: &MeetingId,
        draft: &MeetingDraft,
        now: Millis,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        require_scheduled(&mut tx, id).await?;
        let invited = resolve_invitations(&mut tx, draft).await?;
        check_free(&mut tx, draft, &invited, Some(id)).await?;
        sqlx::query(
            "UPDATE meetings SET title = $2, agenda = $3, starts_at = $4, ends_at = $5, \
             chair_site = $6, floor_mode = $7, updated_at = $8 WHERE id = $1",
        )
        .bind(id.as_str())
        .bind(draft.title())
        .bind(draft.agenda())
        .bind(draft.starts_at())
        .bind(draft.ends_at())
        .bind(draft.chair().as_str())
        .bind(draft.floor_mode().as_str())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let before: BTreeMap<SiteCode, Role> =
            sqlx::query("SELECT site_code, role FROM invitations WHERE meeting_id = $1")
                .bind(id.as_str())
                .fetch_all(&mut *tx)
                .await?
                .iter()
                .map(|row| Ok((code_column(row, "site_code")?, role_column(row)?)))
                .collect::<Result<_, StoreError>>()?;
        let after: BTreeMap<SiteCode, Role> = invited.into_iter().collect();
        for (site, role) in &before {
            if after.get(site) == Some(role) {
                continue;
            }
            sqlx::query("DELETE FROM invitations WHERE meeting_id = $1 AND site_code = $2")
                .bind(id.as_str())
                .bind(site.as_str())
                .execute(&mut *tx)
                .await?;
            revoke_invitation_tokens(&mut tx, id, site, now).await?;
        }
        for (site, role) in &after {
            if before.get(site) == Some(role) {
                continue;
            }
            insert_invitation(&mut tx, id, site, *role).await?;
            issue_in(&mut tx, id, site, *role, now).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Cancels a meeting: it stays listed, frees its sites and admits no one. Cancelling
    /// a cancelled meeting changes nothing.
    pub async fn cancel_meeting(&self, id: &MeetingId, now: Millis) -> Result<(), StoreError> {
        let result = sqlx::query(
            "UPDATE meetings SET status = 'cancelled', updated_at = $2 \
             WHERE id = $1 AND status = 'scheduled'",
        )
        .bind(id.as_str())
        .bind(now)
        .execute(&self.pool)
        .await?;
        if result.rows_affected() == 0 {
            self.meeting(id).await?;
        }
        Ok(())
    }

    /// One meeting with its invited sites.
    pub async fn meeting(&self, id: &MeetingId) -> Result<Meeting, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let row = sqlx::query(&format!("{MEETING_SELECT} WHERE id = $1"))
            .bind(id.as_str())
            .fetch_optional(&mut *conn)
            .await?
            .ok_or_else(|| StoreError::MeetingNotFound(id.to_string()))?;
        let invited = invitations_of(&mut conn, id).await?;
        meeting_from_row(&row, invited)
    }

    /// Meetings that overlap `range`, cancelled ones included, by start time.
    pub async fn meetings(&self, range: MeetingRange) -> Result<Vec<Meeting>, StoreError> {
        let rows = sqlx::query(&format!(
            "{MEETING_SELECT} WHERE ends_at > $1 AND starts_at < $2 ORDER BY starts_at, id"
        ))
        .bind(range.from)
        .bind(range.to)
        .fetch_all(&self.pool)
        .await?;
        let invitation_rows = sqlx::query(
            "SELECT i.meeting_id, i.role, s.code, s.name, s.tier, s.kind \
             FROM invitations i JOIN sites s ON s.code = i.site_code \
             JOIN meetings m ON m.id = i.meeting_id \
             WHERE m.ends_at > $1 AND m.starts_at < $2 \
             ORDER BY i.meeting_id, CASE WHEN i.role = 'chair' THEN 0 ELSE 1 END, s.position",
        )
        .bind(range.from)
        .bind(range.to)
        .fetch_all(&self.pool)
        .await?;
        let mut invited: BTreeMap<String, Vec<Invitation>> = BTreeMap::new();
        for row in &invitation_rows {
            let meeting: String = row.try_get("meeting_id")?;
            invited
                .entry(meeting)
                .or_default()
                .push(invitation_from_row(row)?);
        }
        rows.iter()
            .map(|row| {
                let id: String = row.try_get("id")?;
                meeting_from_row(row, invited.remove(&id).unwrap_or_default())
            })
            .collect()
    }

    // ---- Join tokens ----

    /// The meeting's tokens that are not revoked, by site then issue time.
    pub async fn active_tokens(&self, meeting: &MeetingId) -> Result<Vec<IssuedToken>, StoreError> {
        let rows = sqlx::query(
            "SELECT t.id, t.meeting_id, t.site_code, t.role, t.issued_at, t.revoked_at \
             FROM join_tokens t JOIN sites s ON s.code = t.site_code \
             WHERE t.meeting_id = $1 AND t.revoked_at IS NULL \
             ORDER BY CASE t.role WHEN 'chair' THEN 0 WHEN 'participant' THEN 1 ELSE 2 END, \
             s.position, t.issued_at, t.id",
        )
        .bind(meeting.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(token_from_row).collect()
    }

    /// The token with this id, revoked or not.
    pub async fn token(&self, id: &str) -> Result<Option<IssuedToken>, StoreError> {
        let row = sqlx::query(
            "SELECT id, meeting_id, site_code, role, issued_at, revoked_at \
             FROM join_tokens WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(token_from_row).transpose()
    }

    /// Issues one more token for a meeting that is not cancelled. An observer link may
    /// go to any site of the directory (its IT staff); a chair or participant link only
    /// to a site invited with that role.
    pub async fn issue_token(
        &self,
        meeting: &MeetingId,
        site: &SiteCode,
        role: Role,
        now: Millis,
    ) -> Result<IssuedToken, StoreError> {
        let mut tx = self.begin_write().await?;
        require_scheduled(&mut tx, meeting).await?;
        require_site(&mut tx, site).await?;
        if role != Role::Observer {
            match invited_role(&mut tx, meeting, site).await? {
                Some(invited) if invited == role => {}
                Some(invited) => {
                    return Err(StoreError::RoleMismatch {
                        site: site.to_string(),
                        invited: invited.as_str(),
                        asked: role.as_str(),
                    });
                }
                None => {
                    return Err(StoreError::NotInvited {
                        meeting: meeting.to_string(),
                        site: site.to_string(),
                    });
                }
            }
        }
        let token = issue_in(&mut tx, meeting, site, role, now).await?;
        tx.commit().await?;
        Ok(token)
    }

    /// Revokes every token of an invited site in the meeting (observer links included)
    /// and issues one new token with its invitation's role.
    pub async fn reissue(
        &self,
        meeting: &MeetingId,
        site: &SiteCode,
        now: Millis,
    ) -> Result<IssuedToken, StoreError> {
        let mut tx = self.begin_write().await?;
        require_scheduled(&mut tx, meeting).await?;
        let Some(role) = invited_role(&mut tx, meeting, site).await? else {
            return Err(StoreError::NotInvited {
                meeting: meeting.to_string(),
                site: site.to_string(),
            });
        };
        sqlx::query(
            "UPDATE join_tokens SET revoked_at = $3 \
             WHERE meeting_id = $1 AND site_code = $2 AND revoked_at IS NULL",
        )
        .bind(meeting.as_str())
        .bind(site.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let token = issue_in(&mut tx, meeting, site, role, now).await?;
        tx.commit().await?;
        Ok(token)
    }

    /// Revokes one token of the meeting.
    pub async fn revoke_token(
        &self,
        meeting: &MeetingId,
        token: &str,
        now: Millis,
    ) -> Result<(), StoreError> {
        let result = sqlx::query(
            "UPDATE join_tokens SET revoked_at = $3 \
             WHERE id = $2 AND meeting_id = $1 AND revoked_at IS NULL",
        )
        .bind(meeting.as_str())
        .bind(token)
        .bind(now)
        .execute(&self.pool)
        .await?;
        if result.rows_affected() == 0 {
            return Err(StoreError::TokenNotFound(token.chars().take(40).collect()));
        }
        Ok(())
    }

    // ---- Attendance ----

    /// Stores a site's roll-call record in a meeting, replacing the previous one.
    pub async fn save_attendance(
        &self,
        meeting: &MeetingId,
        site: &SiteCode,
        record: &AttendanceRecord,
    ) -> Result<(), StoreError> {
        if record
            .reason
            .as_deref()
            .is_some_and(|reason| reason.chars().count() > MAX_REASON_CHARS)
        {
            return Err(InputError::Reason.into());
        }
        let mut tx = self.begin_write().await?;
        let known: Option<String> = sqlx::query_scalar("SELECT id FROM meetings WHERE id = $1")
            .bind(meeting.as_str())
            .fetch_optional(&mut *tx)
            .await?;
        if known.is_none() {
            return Err(StoreError::MeetingNotFound(meeting.to_string()));
        }
        let site_known: Option<String> =
            sqlx::query_scalar("SELECT code FROM sites WHERE code = $1")
                .bind(site.as_str())
                .fetch_optional(&mut *tx)
                .await?;
        if site_known.is_none() {
            return Err(StoreError::SiteNotFound(site.to_string()));
        }
        sqlx::query(
            "INSERT INTO attendance (meeting_id, site_code, status, joined_at, left_at, reason) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (meeting_id, site_code) DO UPDATE SET status = excluded.status, \
             joined_at = excluded.joined_at, left_at = excluded.left_at, reason = excluded.reason",
        )
        .bind(meeting.as_str())
        .bind(site.as_str())
        .bind(record.status.as_str())
        .bind(record.joined_at)
        .bind(record.left_at)
        .bind(record.reason.as_deref())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The roll call of a meeting: every invited site (the chair first, then in
    /// directory order) with its record, `not_called` if none was stored, then any
    /// site with a record that is no longer invited.
    pub async fn attendance(&self, meeting: &MeetingId) -> Result<Vec<SiteAttendance>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let known: Option<String> = sqlx::query_scalar("SELECT id FROM meetings WHERE id = $1")
            .bind(meeting.as_str())
            .fetch_optional(&mut *conn)
            .await?;
        if known.is_none() {
            return Err(StoreError::MeetingNotFound(meeting.to_string()));
        }
        let rows = sqlx::query(
            "SELECT s.code, s.name, s.tier, s.kind, a.status, a.joined_at, a.left_at, a.reason, \
             CASE WHEN i.role = 'chair' THEN 0 WHEN i.role IS NULL THEN 2 ELSE 1 END AS rank \
             FROM sites s \
             LEFT JOIN invitations i ON i.site_code = s.code AND i.meeting_id = $1 \
             LEFT JOIN attendance a ON a.site_code = s.code AND a.meeting_id = $1 \
             WHERE i.site_code IS NOT NULL OR a.site_code IS NOT NULL \
             ORDER BY rank, s.position",
        )
        .bind(meeting.as_str())
        .fetch_all(&mut *conn)
        .await?;
        rows.iter()
            .map(|row| {
                let status: Option<String> = row.try_get("status")?;
                let record = match status {
                    None => AttendanceRecord::not_called(),
                    Some(status) => AttendanceRecord {
                        status: AttendanceStatus::from_name(&status)
                            .ok_or_else(|| corrupt("attendance status", &status))?,
                        joined_at: row.try_get("joined_at")?,
                        left_at: row.try_get("left_at")?,
                        reason: row.try_get("reason")?,
                    },
                };
                Ok(SiteAttendance {
                    site: site_from_row(row)?,
                    record,
                })
            })
            .collect()
    }

    // ---- Running meetings ----

    /// Stores what the chair of a running meeting has decided, replacing the previous.
    pub async fn save_meeting_run(
        &self,
        meeting: &MeetingId,
        run: &RunState,
        now: Millis,
    ) -> Result<(), StoreError> {
        let join = |codes: &[String]| codes.join(",");
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO meeting_runs (meeting_id, opened, floor, queue, layout, muted, saved_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (meeting_id) DO UPDATE SET opened = excluded.opened, \
             floor = excluded.floor, queue = excluded.queue, layout = excluded.layout, \
             muted = excluded.muted, saved_at = excluded.saved_at",
        )
        .bind(meeting.as_str())
        .bind(run.opened)
        .bind(run.floor.as_deref())
        .bind(join(&run.queue))
        .bind(join(&run.layout))
        .bind(join(&run.muted))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// What the chair of `meeting` had decided when it last ran, if it has run.
    pub async fn meeting_run(&self, meeting: &MeetingId) -> Result<Option<RunState>, StoreError> {
        let row = sqlx::query(
            "SELECT opened, floor, queue, layout, muted FROM meeting_runs WHERE meeting_id = $1",
        )
        .bind(meeting.as_str())
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let list = |column: &str| -> Result<Vec<String>, StoreError> {
            let text: String = row.try_get(column)?;
            Ok(text
                .split(',')
                .filter(|code| !code.is_empty())
                .map(str::to_owned)
                .collect())
        };
        Ok(Some(RunState {
            opened: row.try_get("opened")?,
            floor: row.try_get("floor")?,
            queue: list("queue")?,
            layout: list("layout")?,
            muted: list("muted")?,
        }))
    }

    // ---- Line tests ----

    /// Keeps one finished line test.
    pub async fn save_line_test(&self, record: &LineTestRecord) -> Result<(), StoreError> {
        let figures = &record.figures;
        sqlx::query(
            "INSERT INTO line_tests (site_code, meeting_id, tested_at, verdict, reasons, \
             connected, completed, rtt_ms, jitter_ms, loss_percent, download_kbps, \
             upload_kbps, download_needed_kbps, upload_needed_kbps, audio, video, duration_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
        )
        .bind(record.site.as_str())
        .bind(record.meeting.as_ref().map(MeetingId::as_str))
        .bind(record.at)
        .bind(record.verdict.as_str())
        .bind(reasons_json(&record.reasons))
        .bind(figures.connected)
        .bind(figures.completed)
        .bind(figures.rtt_ms)
        .bind(figures.jitter_ms)
        .bind(figures.loss_percent)
        .bind(figures.download_kbps)
        .bind(figures.upload_kbps)
        .bind(i64::try_from(record.download_needed_kbps).unwrap_or(i64::MAX))
        .bind(i64::try_from(record.upload_needed_kbps).unwrap_or(i64::MAX))
        .bind(figures.audio)
        .bind(figures.video)
        .bind(figures.duration_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A site's line tests, newest first, at most `limit`.
    pub async fn line_tests(
        &self,
        site: &SiteCode,
        limit: u32,
    ) -> Result<Vec<LineTestRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "{LINE_TEST_SELECT} WHERE site_code = $1 ORDER BY tested_at DESC LIMIT $2"
        ))
        .bind(site.as_str())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(line_test_from_row).collect()
    }

    /// The latest line test since `since` of every site `meeting` invites.
    pub async fn latest_line_tests(
        &self,
        meeting: &MeetingId,
        since: Millis,
    ) -> Result<Vec<LineTestRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "{LINE_TEST_SELECT} t WHERE tested_at >= $2 AND site_code IN \
             (SELECT site_code FROM invitations WHERE meeting_id = $1) \
             AND tested_at = (SELECT MAX(tested_at) FROM line_tests l \
             WHERE l.site_code = t.site_code)"
        ))
        .bind(meeting.as_str())
        .bind(since)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(line_test_from_row).collect()
    }

    // ---- Secrets ----

    /// The secret named `name`, or `value` stored under that name if there was none.
    /// Whichever is returned is the one kept, even if two servers race on one file.
    pub async fn secret_or_insert(&self, name: &str, value: &str) -> Result<String, StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(value)
        .execute(&mut *tx)
        .await?;
        let kept: String = sqlx::query_scalar("SELECT value FROM secrets WHERE name = $1")
            .bind(name)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(kept)
    }

    /// The secret named `name`, if one was stored.
    pub async fn secret(&self, name: &str) -> Result<Option<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT value FROM secrets WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?,
        )
    }
}

const LINE_TEST_SELECT: &str = "SELECT site_code, meeting_id, tested_at, verdict, reasons, \
    connected, completed, rtt_ms, jitter_ms, loss_percent, download_kbps, upload_kbps, \
    download_needed_kbps, upload_needed_kbps, audio, video, duration_ms FROM line_tests";

/// A line test's reasons as the JSON the `reasons` column holds.
fn reasons_json(reasons: &[Reason]) -> String {
    let list: Vec<serde_json::Value> = reasons
        .iter()
        .map(|reason| {
            serde_json::json!({
                "code": reason.code.as_str(),
                "severity": reason.severity.as_str(),
                "measured": reason.measured,
                "limit": reason.limit,
            })
        })
        .collect();
    serde_json::Value::Array(list).to_string()
}

fn reasons_from_json(text: &str) -> Result<Vec<Reason>, StoreError> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|_| corrupt("line test reasons", text))?;
    let list = value
        .as_array()
        .ok_or_else(|| corrupt("line test reasons", text))?;
    list.iter()
        .map(|item| {
            let name = |key: &str| item.get(key).and_then(serde_json::Value::as_str);
            let code = name("code").and_then(ReasonCode::parse);
            let severity = name("severity").and_then(Verdict::parse);
            let (Some(code), Some(severity)) = (code, severity) else {
                return Err(corrupt("line test reason", &item.to_string()));
            };
            Ok(Reason {
                code,
                severity,
                measured: item.get("measured").and_then(serde_json::Value::as_f64),
                limit: item.get("limit").and_then(serde_json::Value::as_f64),
            })
        })
        .collect()
}

fn line_test_from_row(row: &SqliteRow) -> Result<LineTestRecord, StoreError> {
    let verdict: String = row.try_get("verdict")?;
    let reasons: String = row.try_get("reasons")?;
    let meeting: Option<String> = row.try_get("meeting_id")?;
    let needed = |column: &str| -> Result<u64, StoreError> {
        let value: i64 = row.try_get(column)?;
        u64::try_from(value).map_err(|_| corrupt(column, &value.to_string()))
    };
    Ok(LineTestRecord {
        site: code_column(row, "site_code")?,
        meeting: meeting.as_deref().and_then(MeetingId::parse),
        at: row.try_get("tested_at")?,
        verdict: Verdict::parse(&verdict).ok_or_else(|| corrupt("line test verdict", &verdict))?,
        reasons: reasons_from_json(&reasons)?,
        figures: Figures {
            connected: row.try_get("connected")?,
            completed: row.try_get("completed")?,
            rtt_ms: row.try_get("rtt_ms")?,
            jitter_ms: row.try_get("jitter_ms")?,
            loss_percent: row.try_get("loss_percent")?,
            download_kbps: row.try_get("download_kbps")?,
            upload_kbps: row.try_get("upload_kbps")?,
            audio: row.try_get("audio")?,
            video: row.try_get("video")?,
            duration_ms: row.try_get("duration_ms")?,
        },
        download_needed_kbps: needed("download_needed_kbps")?,
        upload_needed_kbps: needed("upload_needed_kbps")?,
    })
}

const MEETING_SELECT: &str = "SELECT id, title, agenda, starts_at, ends_at, chair_site, \
                              floor_mode, status FROM meetings";

async fn insert_site(tx: &mut Tx, site: &Site, position: i64) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO sites (code, name, tier, kind, position) VALUES ($1, $2, $3, $4, $5)")
        .bind(site.code.as_str())
        .bind(site.name.as_str())
        .bind(site.tier.as_str())
        .bind(site.kind.map(SiteKind::as_str))
        .bind(position)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Who the draft invites, each once with its role: the chair, the listed sites, and
/// with `all_communes` every commune-tier site. Fails naming every unknown code.
async fn resolve_invitations(
    tx: &mut Tx,
    draft: &MeetingDraft,
) -> Result<Vec<(SiteCode, Role)>, StoreError> {
    let directory: Vec<(String, String)> =
        sqlx::query_as("SELECT code, tier FROM sites WHERE retired = FALSE ORDER BY position")
            .fetch_all(&mut **tx)
            .await?;
    let known: BTreeSet<&str> = directory.iter().map(|(code, _)| code.as_str()).collect();
    let mut unknown: Vec<String> = std::iter::once(draft.chair())
        .chain(draft.sites())
        .filter(|code| !known.contains(code.as_str()))
        .map(SiteCode::to_string)
        .collect();
    if !unknown.is_empty() {
        unknown.dedup();
        return Err(StoreError::UnknownSites(unknown));
    }
    let mut invited = vec![(draft.chair().clone(), Role::Chair)];
    let mut seen: BTreeSet<SiteCode> = BTreeSet::from([draft.chair().clone()]);
    let communes = directory
        .iter()
        .filter(|(_, tier)| draft.all_communes() && tier == Tier::Commune.as_str())
        .map(|(code, _)| SiteCode::parse(code))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| corrupt("site code", &e.to_string()))?;
    for site in draft.sites().iter().cloned().chain(communes) {
        if seen.insert(site.clone()) {
            invited.push((site, Role::Participant));
        }
    }
    Ok(invited)
}

/// Fails with every scheduled meeting (other than `except`) that overlaps the draft's
/// time and invites one of `invited`. Meetings that merely touch (one ends when the
/// other starts) do not overlap.
async fn check_free(
    tx: &mut Tx,
    draft: &MeetingDraft,
    invited: &[(SiteCode, Role)],
    except: Option<&MeetingId>,
) -> Result<(), StoreError> {
    let rows = sqlx::query(
        "SELECT m.id, m.title, m.starts_at, m.ends_at, i.site_code \
         FROM meetings m JOIN invitations i ON i.meeting_id = m.id \
         JOIN sites s ON s.code = i.site_code \
         WHERE m.status = 'scheduled' AND m.starts_at < $2 AND m.ends_at > $1 AND m.id <> $3 \
         ORDER BY m.starts_at, m.id, s.position",
    )
    .bind(draft.starts_at())
    .bind(draft.ends_at())
    .bind(except.map_or("", MeetingId::as_str))
    .fetch_all(&mut **tx)
    .await?;
    let wanted: BTreeSet<&str> = invited.iter().map(|(site, _)| site.as_str()).collect();
    let mut conflicts: Vec<Conflict> = Vec::new();
    for row in &rows {
        let site = code_column(row, "site_code")?;
        if !wanted.contains(site.as_str()) {
            continue;
        }
        let id: String = row.try_get("id")?;
        let meeting = MeetingId::parse(&id).ok_or_else(|| corrupt("meeting id", &id))?;
        match conflicts.last_mut() {
            Some(last) if last.meeting == meeting => last.sites.push(site),
            _ => conflicts.push(Conflict {
                meeting,
                title: row.try_get("title")?,
                starts_at: row.try_get("starts_at")?,
                ends_at: row.try_get("ends_at")?,
                sites: vec![site],
            }),
        }
    }
    if conflicts.is_empty() {
        Ok(())
    } else {
        Err(StoreError::Conflict(conflicts))
    }
}

async fn require_scheduled(tx: &mut Tx, id: &MeetingId) -> Result<(), StoreError> {
    let status: Option<String> = sqlx::query_scalar("SELECT status FROM meetings WHERE id = $1")
        .bind(id.as_str())
        .fetch_optional(&mut **tx)
        .await?;
    match status.as_deref().map(MeetingStatus::from_name) {
        None => Err(StoreError::MeetingNotFound(id.to_string())),
        Some(Some(MeetingStatus::Scheduled)) => Ok(()),
        Some(Some(MeetingStatus::Cancelled)) => Err(StoreError::MeetingCancelled(id.to_string())),
        Some(None) => Err(corrupt("meeting status", status.as_deref().unwrap_or(""))),
    }
}

async fn require_site(tx: &mut Tx, site: &SiteCode) -> Result<(), StoreError> {
    let found: Option<String> =
        sqlx::query_scalar("SELECT code FROM sites WHERE code = $1 AND retired = FALSE")
            .bind(site.as_str())
            .fetch_optional(&mut **tx)
            .await?;
    match found {
        Some(_) => Ok(()),
        None => Err(StoreError::SiteNotFound(site.to_string())),
    }
}

async fn invited_role(
    tx: &mut Tx,
    meeting: &MeetingId,
    site: &SiteCode,
) -> Result<Option<Role>, StoreError> {
    let role: Option<String> =
        sqlx::query_scalar("SELECT role FROM invitations WHERE meeting_id = $1 AND site_code = $2")
            .bind(meeting.as_str())
            .bind(site.as_str())
            .fetch_optional(&mut **tx)
            .await?;
    role.map(|role| Role::from_name(&role).ok_or_else(|| corrupt("role", &role)))
        .transpose()
}

async fn insert_invitation(
    tx: &mut Tx,
    meeting: &MeetingId,
    site: &SiteCode,
    role: Role,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO invitations (meeting_id, site_code, role) VALUES ($1, $2, $3)")
        .bind(meeting.as_str())
        .bind(site.as_str())
        .bind(role.as_str())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Revokes a site's chair and participant tokens in a meeting; its observer links stay.
async fn revoke_invitation_tokens(
    tx: &mut Tx,
    meeting: &MeetingId,
    site: &SiteCode,
    now: Millis,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE join_tokens SET revoked_at = $3 WHERE meeting_id = $1 AND site_code = $2 \
         AND role <> 'observer' AND revoked_at IS NULL",
    )
    .bind(meeting.as_str())
    .bind(site.as_str())
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn issue_in(
    tx: &mut Tx,
    meeting: &MeetingId,
    site: &SiteCode,
    role: Role,
    now: Millis,
) -> Result<IssuedToken, StoreError> {
    let token = IssuedToken {
        id: crate::access::random_hex(16),
        meeting: meeting.clone(),
        site: site.clone(),
        role,
        issued_at: now,
        revoked_at: None,
    };
    sqlx::query(
        "INSERT INTO join_tokens (id, meeting_id, site_code, role, issued_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&token.id)
    .bind(meeting.as_str())
    .bind(site.as_str())
    .bind(role.as_str())
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(token)
}

async fn invitations_of(
    conn: &mut sqlx::SqliteConnection,
    meeting: &MeetingId,
) -> Result<Vec<Invitation>, StoreError> {
    let rows = sqlx::query(
        "SELECT i.role, s.code, s.name, s.tier, s.kind \
         FROM invitations i JOIN sites s ON s.code = i.site_code \
         WHERE i.meeting_id = $1 \
         ORDER BY CASE WHEN i.role = 'chair' THEN 0 ELSE 1 END, s.position",
    )
    .bind(meeting.as_str())
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(invitation_from_row).collect()
}

fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Corrupt(format!("{what} {value:?}"))
}

fn code_column(row: &SqliteRow, column: &str) -> Result<SiteCode, StoreError> {
    let text: String = row.try_get(column)?;
    SiteCode::parse(&text).map_err(|_| corrupt("site code", &text))
}

fn role_column(row: &SqliteRow) -> Result<Role, StoreError> {
    let text: String = row.try_get("role")?;
    Role::from_name(&text).ok_or_else(|| corrupt("role", &text))
}

fn site_from_row(row: &SqliteRow) -> Result<Site, StoreError> {
    let name: String = row.try_get("name")?;
    let tier: String = row.try_get("tier")?;
    let kind: Option<String> = row.try_get("kind")?;
    let kind = match kind {
        None => None,
        Some(kind) => Some(SiteKind::from_name(&kind).ok_or_else(|| corrupt("kind", &kind))?),
    };
    Ok(Site {
        code: code_column(row, "code")?,
        name: SiteName::parse(&name).map_err(|_| corrupt("site name", &name))?,
        tier: Tier::from_name(&tier).ok_or_else(|| corrupt("tier", &tier))?,
        kind,
    })
}

fn invitation_from_row(row: &SqliteRow) -> Result<Invitation, StoreError> {
    Ok(Invitation {
        site: site_from_row(row)?,
        role: role_column(row)?,
    })
}

fn meeting_from_row(row: &SqliteRow, invited: Vec<Invitation>) -> Result<Meeting, StoreError> {
    let id: String = row.try_get("id")?;
    let floor_mode: String = row.try_get("floor_mode")?;
    let status: String = row.try_get("status")?;
    Ok(Meeting {
        id: MeetingId::parse(&id).ok_or_else(|| corrupt("meeting id", &id))?,
        title: row.try_get("title")?,
        agenda: row.try_get("agenda")?,
        starts_at: row.try_get("starts_at")?,
        ends_at: row.try_get("ends_at")?,
        chair: code_column(row, "chair_site")?,
        floor_mode: FloorMode::from_name(&floor_mode)
            .ok_or_else(|| corrupt("floor mode", &floor_mode))?,
        status: MeetingStatus::from_name(&status).ok_or_else(|| corrupt("status", &status))?,
        invited,
    })
}

fn token_from_row(row: &SqliteRow) -> Result<IssuedToken, StoreError> {
    let meeting: String = row.try_get("meeting_id")?;
    Ok(IssuedToken {
        id: row.try_get("id")?,
        meeting: MeetingId::parse(&meeting).ok_or_else(|| corrupt("meeting id", &meeting))?,
        site: code_column(row, "site_code")?,
        role: role_column(row)?,
        issued_at: row.try_get("issued_at")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::DraftFields;

    /// A store in a fresh directory that is removed when the value is dropped.
    pub(crate) struct TempStore {
        pub(crate) store: Store,
        pub(crate) dir: PathBuf,
    }

    impl TempStore {
        pub(crate) async fn new() -> TempStore {
            let dir = std::env::temp_dir().join(format!(
                "cau-store-test-{}-{}",
                std::process::id(),
                crate::access::random_hex(6)
            ));
            let store = Store::open(&dir).await.unwrap();
            TempStore { store, dir }
        }
    }

    impl Drop for TempStore {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    const HOUR: Millis = 3_600_000;

    fn code(text: &str) -> SiteCode {
        SiteCode::parse(text).unwrap()
    }

    fn draft(start_hour: i64, end_hour: i64, sites: &[&str]) -> MeetingDraft {
        MeetingDraft::new(DraftFields {
            title: "Giao ban".into(),
            agenda: String::new(),
            starts_at: start_hour * HOUR,
            ends_at: end_hour * HOUR,
            chair: code("cao-bang"),
            sites: sites.iter().map(|s| code(s)).collect(),
            all_communes: false,
            floor_mode: FloorMode::Chair,
        })
        .unwrap()
    }

    #[tokio::test]
    async fn seeds_the_directory_once() {
        let temp = TempStore::new().await;
        let sites = temp.store.sites().await.unwrap();
        assert_eq!(sites.len(), 58);
        temp.store.delete_site(&code("quang-lam"), 0).await.unwrap();
        temp.store.close().await;
        let reopened = Store::open(&temp.dir).await.unwrap();
        assert_eq!(reopened.sites().await.unwrap().len(), 57);
        reopened.close().await;
    }

    #[tokio::test]
    async fn a_meetings_run_state_round_trips_and_is_replaced() {
        let temp = TempStore::new().await;
        let store = &temp.store;
        let id = store
            .create_meeting(&draft(10, 12, &["quang-lam", "ly-bon"]), 0)
            .await
            .unwrap();
        assert_eq!(store.meeting_run(&id).await.unwrap(), None);
        let mut run = RunState {
            opened: true,
            floor: Some("quang-lam".into()),
            queue: vec!["ly-bon".into()],
            layout: vec![],
            muted: vec!["ly-bon".into(), "quang-lam".into()],
        };
        store.save_meeting_run(&id, &run, 1).await.unwrap();
        assert_eq!(store.meeting_run(&id).await.unwrap().as_ref(), Some(&run));
        run.floor = None;
        run.queue.clear();
        run.layout = vec!["cao-bang".into()];
        store.save_meeting_run(&id, &run, 2).await.unwrap();
        assert_eq!(store.meeting_run(&id).await.unwrap(), Some(run));
    }

    #[tokio::test]
    async fn meeting_rows_round_trip_with_tokens() {
        let temp = TempStore::new().await;
        let store = &temp.store;
        let id = store
            .create_meeting(&draft(10, 12, &["quang-lam", "ly-bon"]), 0)
            .await
            .unwrap();
        let meeting = store.meeting(&id).await.unwrap();
        let invited: Vec<(&str, Role)> = meeting
            .invited
            .iter()
            .map(|i| (i.site.code.as_str(), i.role))
            .collect();
        assert_eq!(
            invited,
            [
                ("cao-bang", Role::Chair),
                ("quang-lam", Role::Participant),
                ("ly-bon", Role::Participant)
            ]
        );
        assert_eq!(store.active_tokens(&id).await.unwrap().len(), 3);
        assert_eq!(store.meetings(MeetingRange::ALL).await.unwrap(), [meeting]);
    }

    #[tokio::test]
    async fn overlapping_meetings_conflict_and_write_nothing() {
        let temp = TempStore::new().await;
        let store = &temp.store;
        let first = store
            .create_meeting(&draft(10, 12, &["quang-lam"]), 0)
            .await
            .unwrap();
        let chair_busy = store
            .create_meeting(&draft(11, 13, &["ly-bon"]), 0)
            .await
            .unwrap_err();
        let StoreError::Conflict(conflicts) = chair_busy else {
            panic!("expected a conflict, got {chair_busy}");
        };
        assert_eq!(conflicts[0].meeting, first);
        assert_eq!(conflicts[0].sites, [code("cao-bang")]);
        // Touching is not overlapping.
        store
            .create_meeting(&draft(12, 13, &["ly-bon"]), 0)
            .await
            .unwrap();
        assert_eq!(store.meetings(MeetingRange::ALL).await.unwrap().len(), 2);
        // A cancelled meeting frees its sites.
        store.cancel_meeting(&first, 0).await.unwrap();
        store
            .create_meeting(&draft(10, 11, &["quang-lam"]), 0)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn editing_reissues_only_changed_invitations() {
        let temp = TempStore::new().await;
        let store = &temp.store;
        let id = store
            .create_meeting(&draft(10, 12, &["quang-lam", "ly-bon"]), 0)
            .await
            .unwrap();
        let before = store.active_tokens(&id).await.unwrap();
        store
            .update_meeting(&id, &draft(9, 12, &["quang-lam", "bao-lam"]), 1)
            .await
            .unwrap();
        let after = store.active_tokens(&id).await.unwrap();
        let kept = |site: &str| {
            let old = before
                .iter()
                .find(|t| t.site.as_str() == site)
                .map(|t| &t.id);
            let new = after
                .iter()
                .find(|t| t.site.as_str() == site)
                .map(|t| &t.id);
            (old.is_some(), new.is_some(), old == new)
        };
        assert_eq!(kept("cao-bang"), (true, true, true));
        assert_eq!(kept("quang-lam"), (true, true, true));
        assert_eq!(kept("ly-bon"), (true, false, false));
        assert_eq!(kept("bao-lam"), (false, true, false));
    }

    #[tokio::test]
    async fn attendance_lists_every_invited_site() {
        let temp = TempStore::new().await;
        let store = &temp.store;
        let id = store
            .create_meeting(&draft(10, 12, &["quang-lam", "ly-bon"]), 0)
            .await
            .unwrap();
        let present = AttendanceRecord {
            status: AttendanceStatus::Present,
            joined_at: Some(10 * HOUR),
            left_at: None,
            reason: None,
        };
        store
            .save_attendance(&id, &code("quang-lam"), &present)
            .await
            .unwrap();
        let roll = store.attendance(&id).await.unwrap();
        let summary: Vec<(&str, AttendanceStatus)> = roll
            .iter()
            .map(|a| (a.site.code.as_str(), a.record.status))
            .collect();
        assert_eq!(
            summary,
            [
                ("cao-bang", AttendanceStatus::NotCalled),
                ("quang-lam", AttendanceStatus::Present),
                ("ly-bon", AttendanceStatus::NotCalled)
            ]
        );
    }
}
