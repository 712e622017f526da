//! From a join link's token to a seat in a running meeting.
//!
//! The token is checked by [`crate::access::Tokens::verify`] (signature, revocation,
//! the meeting's window and status); this turns what it admits into the [`Admission`]
//! the session and the meeting core work with, and its refusals into protocol errors.

use crate::AppState;
use crate::access::AccessError;
use crate::meeting::{InvitedSite, MeetingPlan, Resume};
use crate::meetings::{Admission, MeetingWrite};
use crate::model::{MeetingId, Millis};
use crate::protocol::{ErrorCode, ProtocolError};
use crate::store::{Store, StoreError};

/// A site entering after the start plus this long is marked late.
const LATE_AFTER: Millis = 5 * 60 * 1000;

/// The chair is shown line tests from this long before the start on: an older test
/// says little about the line today.
const LINE_TEST_FRESHNESS: Millis = 24 * 60 * 60 * 1000;

/// Checks `token` now and describes the seat it admits to.
pub(crate) async fn admit(state: &AppState, token: &str) -> Result<Admission, ProtocolError> {
    let claims = state
        .tokens
        .verify(&state.store, token, now_millis())
        .await
        .map_err(refusal)?;
    let meeting = claims.meeting;
    // The chair sees how ready each site is; a store failure here costs that view,
    // never the site its seat.
    let since = meeting.starts_at.saturating_sub(LINE_TEST_FRESHNESS);
    let line_tests = match state.store.latest_line_tests(&meeting.id, since).await {
        Ok(records) => records,
        Err(error) => {
            tracing::warn!(meeting = %meeting.id, %error, "cannot read the sites' line tests");
            Vec::new()
        }
    };
    // Only the admission that starts the meeting's core needs its earlier run: a join
    // storm into a running meeting reads nothing more.
    let resume = if state.meetings.is_running(meeting.id.as_str()) {
        Ok(Resume::default())
    } else {
        resume(&state.store, &meeting.id).await
    };
    let resume = match resume {
        Ok(resume) => resume,
        Err(error) => {
            // Without it the meeting starts afresh: seats and the chair's decisions of
            // an earlier run are lost, but the site gets in.
            tracing::error!(meeting = %meeting.id, %error, "cannot read the meeting's earlier run");
            Resume::default()
        }
    };
    let plan = MeetingPlan {
        mode: meeting.floor_mode,
        starts_at: meeting.starts_at,
        late_after: LATE_AFTER,
        reconnect_grace: state.config.meetings.reconnect_grace().as_millis() as Millis,
        resume,
        sites: meeting
            .invited
            .iter()
            .map(|invitation| InvitedSite {
                code: invitation.site.code.as_str().to_owned(),
                name: invitation.site.name.as_str().to_owned(),
                role: invitation.role,
            })
            .collect(),
    };
    Ok(Admission {
        meeting_id: meeting.id.as_str().to_owned(),
        title: meeting.title.clone(),
        site_code: claims.site.code.as_str().to_owned(),
        site_name: claims.site.name.as_str().to_owned(),
        role: claims.role,
        plan,
        line_tests,
    })
}

/// What an earlier run of the server stored of the meeting: its roll call and the
/// chair's decisions, for the admission that starts the meeting's core.
async fn resume(store: &Store, meeting: &MeetingId) -> Result<Resume, StoreError> {
    let attendance = store
        .attendance(meeting)
        .await?
        .into_iter()
        .map(|line| (line.site.code.as_str().to_owned(), line.record))
        .collect();
    let run = store.meeting_run(meeting).await?;
    Ok(Resume { run, attendance })
}

fn refusal(error: AccessError) -> ProtocolError {
    let code = match error {
        AccessError::Malformed | AccessError::Forged => ErrorCode::InvalidToken,
        AccessError::Revoked => ErrorCode::TokenRevoked,
        AccessError::Expired { .. } => ErrorCode::TokenExpired,
        AccessError::NotYetValid { .. } => ErrorCode::TokenNotYetValid,
        AccessError::MeetingCancelled => ErrorCode::MeetingCancelled,
        _ => {
            tracing::error!("checking a join token failed: {error}");
            return ProtocolError::new(ErrorCode::Internal, "the join link could not be checked");
        }
    };
    ProtocolError::new(code, error.to_string())
}

/// Writes roll-call records and the chair's decisions in the order the meetings made
/// them, off the sessions' path: a slow disk delays the record, never a meeting.
pub(crate) async fn write_meetings(
    store: Store,
    mut writes: tokio::sync::mpsc::UnboundedReceiver<MeetingWrite>,
) {
    while let Some(write) = writes.recv().await {
        match write {
            MeetingWrite::Attendance {
                meeting_id,
                site,
                record,
            } => {
                let Some(meeting) = MeetingId::parse(&meeting_id) else {
                    continue;
                };
                let Ok(code) = crate::model::SiteCode::parse(&site) else {
                    continue;
                };
                if let Err(error) = store.save_attendance(&meeting, &code, &record).await {
                    tracing::error!(meeting = %meeting_id, site = %site, "cannot store attendance: {error}");
                }
            }
            MeetingWrite::Run { meeting_id, run } => {
                let Some(meeting) = MeetingId::parse(&meeting_id) else {
                    continue;
                };
                if let Err(error) = store.save_meeting_run(&meeting, &run, now_millis()).await {
                    tracing::error!(meeting = %meeting_id, "cannot store the meeting's state: {error}");
                }
            }
            MeetingWrite::Flush(done) => {
                let _ = done.send(());
            }
        }
    }
}

/// The wall clock in milliseconds since the Unix epoch.
pub(crate) fn now_millis() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as Millis)
}
