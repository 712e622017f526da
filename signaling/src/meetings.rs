//! The scheduled meetings running on this server: each a [`Meeting`] core, driven here.
//!
//! Like the room registry, this lives behind one mutex in the shell: every operation
//! feeds one input to one meeting's core and carries out its outputs (messages onto the
//! sessions' outboxes, audio gates to the SFU, roll-call records to the store's writer)
//! without awaiting. Commands to the SFU go out under the lock, so a gate change and a
//! site's first offer reach the media thread in the order they were decided.
//!
//! The cores' timers (the active speaker's hysteresis) are driven by one clock task,
//! [`run_clock`], which sleeps until the earliest timeout of any meeting and is woken
//! whenever a meeting's timeout moves.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use cau_sfu::{Command, MediaKind, OfferSdp, PeerEvent, PeerId, RoomId, SfuHandle, Subscriptions};
use tokio::sync::Notify;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};

use crate::AppState;
use crate::admission::now_millis;
use crate::line_test::{LineTestRecord, result_message};
use crate::meeting::{
    Action, Departure, Entry, Meeting, MeetingError, MeetingPlan, Output, RunState, Snapshot,
};
use crate::model::{AttendanceRecord, Millis, Role};
use crate::protocol::{
    AttendanceState, ErrorCode, MeetingSite, MeetingState, ProtocolError, ServerMessage,
};
use crate::session::{Outbound, wire_text};

/// Who a join token admits, with what the session and the meeting need to know.
#[derive(Debug, Clone)]
pub(crate) struct Admission {
    pub meeting_id: String,
    pub title: String,
    pub site_code: String,
    pub site_name: String,
    pub role: Role,
    /// The meeting as scheduled, to start its core on the first connection.
    pub plan: MeetingPlan,
    /// The latest line test of each invited site, as stored when the token was checked.
    pub line_tests: Vec<LineTestRecord>,
}

/// What the store's writer is handed, in the order the meetings decided it.
#[derive(Debug)]
pub(crate) enum MeetingWrite {
    /// A roll-call record.
    Attendance {
        meeting_id: String,
        site: String,
        record: AttendanceRecord,
    },
    /// What the chair decided, so that a restart resumes it.
    Run { meeting_id: String, run: RunState },
    /// Everything before this is written: say so (a server stopping waits for it).
    Flush(tokio::sync::oneshot::Sender<()>),
}

pub(crate) struct Meetings {
    inner: Mutex<HashMap<String, Running>>,
    sfu: SfuHandle,
    writes: UnboundedSender<MeetingWrite>,
    /// Wakes the clock task when a meeting's timeout moved.
    clock: Arc<Notify>,
}

struct Running {
    core: Meeting,
    /// The core's timeout as the clock task last learnt it.
    timeout: Option<Millis>,
    links: HashMap<PeerId, Link>,
    /// The latest line test of each invited site that has one, by site code: shown
    /// with the site in `meeting_state`. Kept here, not in the core, since it decides
    /// nothing in the meeting.
    line_tests: HashMap<String, LineTestRecord>,
}

/// One site's connection, as the meeting shell knows it.
struct Link {
    outbox: UnboundedSender<Outbound>,
    admitted: bool,
    audio_allowed: bool,
    /// Heard however quiet (`Output::AudioPinned`), as the meeting last decided.
    audio_pinned: bool,
    /// The tracks this connection receives, as the meeting last decided.
    subscriptions: HashSet<(PeerId, MediaKind)>,
    /// The SFU holds this peer: gate changes must reach it.
    in_sfu: bool,
    /// The chair or an observer: shown every site's line test. Participants are not,
    /// which keeps `meeting_state` small on their often slow lines.
    oversees: bool,
}

impl Meetings {
    pub(crate) fn new(sfu: SfuHandle, writes: UnboundedSender<MeetingWrite>) -> Meetings {
        Meetings {
            inner: Mutex::new(HashMap::new()),
            sfu,
            writes,
            clock: Arc::new(Notify::new()),
        }
    }

    /// A site's session arrives with its admission. It waits in the lobby, or is let in
    /// at once with [`Outbound::Admitted`] on its outbox.
    pub(crate) fn connect(
        &self,
        admission: &Admission,
        peer: PeerId,
        outbox: UnboundedSender<Outbound>,
        now: Millis,
    ) -> Result<Entry, ProtocolError> {
        let mut inner = self.lock();
        let running = inner
            .entry(admission.meeting_id.clone())
            .or_insert_with(|| Running {
                core: Meeting::new(admission.plan.clone(), now),
                timeout: None,
                links: HashMap::new(),
                line_tests: HashMap::new(),
            });
        // Each admission read the store afresh: keep whichever test is newer.
        for record in &admission.line_tests {
            running.remember_line_test(record);
        }
        running.links.insert(
            peer,
            Link {
                outbox,
                admitted: false,
                audio_allowed: false,
                audio_pinned: false,
                subscriptions: HashSet::new(),
                in_sfu: false,
                oversees: matches!(admission.role, Role::Chair | Role::Observer),
            },
        );
        let entry = match admission.role {
            Role::Observer => {
                running
                    .core
                    .connect_observer(&admission.site_code, &admission.site_name, peer, now)
            }
            Role::Chair | Role::Participant => {
                running.core.connect(&admission.site_code, peer, now)
            }
        };
        if entry.is_err() {
            running.links.remove(&peer);
        }
        self.dispatch(&admission.meeting_id, running);
        entry.map_err(refusal)
    }

    /// Whether the meeting's core is running on this server.
    pub(crate) fn is_running(&self, meeting_id: &str) -> bool {
        self.lock().contains_key(meeting_id)
    }

    /// `site` asks for `action`.
    pub(crate) fn act(
        &self,
        meeting_id: &str,
        site: &str,
        action: Action,
        now: Millis,
    ) -> Result<(), ProtocolError> {
        let mut inner = self.lock();
        let Some(running) = inner.get_mut(meeting_id) else {
            return Err(ProtocolError::new(
                ErrorCode::Internal,
                "the meeting is not running",
            ));
        };
        let result = running.core.act(site, action, now);
        self.dispatch(meeting_id, running);
        result.map_err(refusal)
    }

    /// A site's session ended, as `departure` says.
    pub(crate) fn disconnect(
        &self,
        meeting_id: &str,
        site: &str,
        peer: PeerId,
        departure: Departure,
        now: Millis,
    ) {
        let mut inner = self.lock();
        let Some(running) = inner.get_mut(meeting_id) else {
            return;
        };
        running.links.remove(&peer);
        running.core.disconnect(site, peer, departure, now);
        self.dispatch(meeting_id, running);
    }

    /// The SFU measured a new voice level for `peer`, `site`'s connection.
    pub(crate) fn audio_level(
        &self,
        meeting_id: &str,
        site: &str,
        peer: PeerId,
        level: u8,
        now: Millis,
    ) {
        let mut inner = self.lock();
        let Some(running) = inner.get_mut(meeting_id) else {
            return;
        };
        running.core.audio_level(site, peer, level, now);
        self.dispatch(meeting_id, running);
    }

    /// Runs the timeouts of every meeting that are due at `now`; returns the earliest
    /// timeout left.
    fn run_timeouts(&self, now: Millis) -> Option<Millis> {
        let mut inner = self.lock();
        let mut next: Option<Millis> = None;
        for (meeting_id, running) in inner.iter_mut() {
            if running.core.poll_timeout().is_some_and(|t| t <= now) {
                running.core.handle_timeout(now);
                self.dispatch(meeting_id, running);
            }
            running.timeout = running.core.poll_timeout();
            if let Some(t) = running.timeout {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        }
        next
    }

    /// Hands a site's offer to the SFU with the audio gate the meeting has decided.
    pub(crate) fn add_to_sfu(
        &self,
        meeting_id: &str,
        peer: PeerId,
        room: RoomId,
        offer: OfferSdp,
        screen_mid: Option<String>,
    ) -> UnboundedReceiver<PeerEvent> {
        let mut inner = self.lock();
        let link = inner
            .get_mut(meeting_id)
            .and_then(|running| running.links.get_mut(&peer));
        let (audio_allowed, audio_pinned, subscriptions) = match link {
            Some(link) => {
                link.in_sfu = true;
                (
                    link.audio_allowed,
                    link.audio_pinned,
                    link.subscriptions.clone(),
                )
            }
            None => (false, false, HashSet::new()),
        };
        let events = self.sfu.add_peer(
            peer,
            room,
            offer,
            audio_allowed,
            Subscriptions::Only(subscriptions),
            screen_mid,
        );
        if audio_pinned {
            // The media thread takes commands in order: the peer exists by then.
            self.sfu
                .command(Command::SetAudioPinned { peer, pinned: true });
        }
        events
    }

    /// Carries out everything the core decided.
    fn dispatch(&self, meeting_id: &str, running: &mut Running) {
        let mut changed = false;
        while let Some(output) = running.core.poll_output() {
            match output {
                Output::Admit { peer, .. } => {
                    if let Some(link) = running.links.get_mut(&peer) {
                        link.admitted = true;
                        let _ = link.outbox.send(Outbound::Admitted);
                    }
                }
                Output::Replaced { peer } => {
                    if let Some(link) = running.links.remove(&peer) {
                        let error = ProtocolError::new(
                            ErrorCode::Replaced,
                            "a newer connection of your site took this seat",
                        );
                        let _ = link.outbox.send(Outbound::Close(error));
                    }
                }
                Output::AudioForwarding { peer, allowed } => {
                    if let Some(link) = running.links.get_mut(&peer) {
                        link.audio_allowed = allowed;
                        if link.in_sfu {
                            self.sfu
                                .command(Command::SetAudioForwarding { peer, allowed });
                        }
                    }
                }
                Output::AudioPinned { peer, pinned } => {
                    if let Some(link) = running.links.get_mut(&peer) {
                        link.audio_pinned = pinned;
                        if link.in_sfu {
                            self.sfu.command(Command::SetAudioPinned { peer, pinned });
                        }
                    }
                }
                Output::Subscriptions { peer, sources } => {
                    if let Some(link) = running.links.get_mut(&peer) {
                        link.subscriptions = sources.clone();
                        if link.in_sfu {
                            self.sfu.command(Command::SetSubscriptions {
                                peer,
                                subscriptions: Subscriptions::Only(sources),
                            });
                        }
                    }
                }
                Output::Attendance { site, record } => {
                    let _ = self.writes.send(MeetingWrite::Attendance {
                        meeting_id: meeting_id.to_owned(),
                        site,
                        record,
                    });
                }
                Output::Run(run) => {
                    let _ = self.writes.send(MeetingWrite::Run {
                        meeting_id: meeting_id.to_owned(),
                        run,
                    });
                }
                Output::StateChanged => changed = true,
                Output::ActiveSpeaker { site } => {
                    let Some(text) = wire_text(&ServerMessage::ActiveSpeaker { site }) else {
                        continue;
                    };
                    for link in running.links.values().filter(|l| l.admitted) {
                        let _ = link.outbox.send(Outbound::Text(text.clone()));
                    }
                }
            }
        }
        let timeout = running.core.poll_timeout();
        if timeout != running.timeout {
            running.timeout = timeout;
            self.clock.notify_one();
        }
        if changed {
            running.show_state(&running.core.snapshot(), true);
        }
    }

    /// A site finished a line test: every running meeting that invites it shows the
    /// result to its sites at once.
    pub(crate) fn line_test_done(&self, record: &LineTestRecord) {
        let mut inner = self.lock();
        for (meeting_id, running) in inner.iter_mut() {
            let snapshot = running.core.snapshot();
            let invited = snapshot
                .sites
                .iter()
                .any(|site| site.code == record.site.as_str());
            if invited && running.remember_line_test(record) {
                running.show_state(&snapshot, false);
                tracing::debug!(meeting = %meeting_id, site = %record.site, "line test shown");
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Running>> {
        // The maps stay consistent between statements; a poisoned lock is still usable.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Running {
    /// Sends the meeting's state to every admitted site: with the sites' line tests to
    /// the chair and observers, without to the others (only if `everyone`).
    fn show_state(&self, snapshot: &Snapshot, everyone: bool) {
        let overseen = wire_text(&ServerMessage::MeetingState(state_message(
            snapshot,
            &self.line_tests,
        )));
        let plain = everyone
            .then(|| {
                wire_text(&ServerMessage::MeetingState(state_message(
                    snapshot,
                    &HashMap::new(),
                )))
            })
            .flatten();
        for link in self.links.values().filter(|l| l.admitted) {
            let text = match (&plain, &overseen, link.oversees) {
                (_, Some(overseen), true) => overseen,
                (Some(plain), _, false) => plain,
                _ => continue,
            };
            let _ = link.outbox.send(Outbound::Text(text.clone()));
        }
    }

    /// Keeps `record` if it is the site's newest; says whether it was.
    fn remember_line_test(&mut self, record: &LineTestRecord) -> bool {
        let site = record.site.as_str();
        let newer = self
            .line_tests
            .get(site)
            .is_none_or(|known| known.at < record.at);
        if newer {
            self.line_tests.insert(site.to_owned(), record.clone());
        }
        newer
    }
}

/// The wire form of a meeting's snapshot.
fn state_message(
    snapshot: &Snapshot,
    line_tests: &HashMap<String, LineTestRecord>,
) -> MeetingState {
    MeetingState {
        opened: snapshot.opened,
        mode: snapshot.mode.as_str().to_owned(),
        floor: snapshot.floor.clone(),
        queue: snapshot.queue.clone(),
        layout: snapshot.layout.clone(),
        active_speaker: snapshot.active_speaker.clone(),
        sites: snapshot
            .sites
            .iter()
            .map(|site| MeetingSite {
                code: site.code.clone(),
                name: site.name.clone(),
                role: role_name(site.role).to_owned(),
                connected: site.connected,
                reconnecting: site.reconnecting,
                in_lobby: site.in_lobby,
                muted_by_chair: site.muted_by_chair,
                attendance: AttendanceState {
                    status: site.attendance.status.as_str().to_owned(),
                    joined_at: site.attendance.joined_at,
                    left_at: site.attendance.left_at,
                    reason: site.attendance.reason.clone(),
                },
                line_test: line_tests.get(&site.code).map(result_message),
            })
            .collect(),
    }
}

/// Drives the meetings' timeouts until the server is gone: sleeps until the earliest
/// one, or until a meeting's timeout moves. Holds the state weakly, so a stopped
/// server is not kept alive by its clock.
pub(crate) async fn run_clock(state: Weak<AppState>) {
    let Some(clock) = state.upgrade().map(|s| s.meetings.clock.clone()) else {
        return;
    };
    loop {
        let next = match state.upgrade() {
            Some(state) => state.meetings.run_timeouts(now_millis()),
            None => return,
        };
        match next {
            Some(at) => {
                let wait = Duration::from_millis(u64::try_from(at - now_millis()).unwrap_or(0));
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = clock.notified() => {}
                }
            }
            None => clock.notified().await,
        }
    }
}

pub(crate) fn role_name(role: Role) -> &'static str {
    role.as_str()
}

/// The protocol's answer to a refusal of the meeting core.
fn refusal(error: MeetingError) -> ProtocolError {
    let code = match error {
        MeetingError::NotInvited(_) => ErrorCode::Forbidden,
        MeetingError::ChairOnly | MeetingError::ObserverCannot | MeetingError::ChairAlwaysHeard => {
            ErrorCode::Forbidden
        }
        MeetingError::NotConnected(_) => ErrorCode::NotConnected,
        MeetingError::OpenFloor => ErrorCode::FloorOpen,
        MeetingError::BadLayout => ErrorCode::BadLayout,
        MeetingError::BadReason => ErrorCode::BadReason,
        MeetingError::Present(_) => ErrorCode::Forbidden,
    };
    ProtocolError::new(code, error.to_string())
}
