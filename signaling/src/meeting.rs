//! A running meeting between sites: lobby, roll call, floor control and layout.
//!
//! Sans-IO, like the SFU's core: the session shell tells it who connected, who left and
//! what each site asked for, with `now`; it answers with outputs to carry out (let a
//! site in, withhold or forward a site's audio, store an attendance record) and a state
//! snapshot to show. It never touches a socket, the clock or the database, so every
//! rule here is tested in plain unit tests.
//!
//! The rules, from the brief:
//! - Sites that connect before the chair opens the meeting wait in the lobby; the chair
//!   opens the meeting (everyone waiting enters) or admits sites one by one. The chair
//!   and IT observers never wait.
//! - Roll call: a site is `not_called` until it enters, then `present` (or `late`, if
//!   it enters after the start plus the grace period), `left` when it goes, or `absent`
//!   with a reason the chair's side enters.
//! - Floor: in `chair` mode only the chair and the floor holder are heard; sites ask for
//!   the floor and wait in a queue, in order; the chair grants and revokes it. In `open`
//!   mode everyone is heard. In both, the chair can mute any site, and observers are
//!   never heard.
//! - Reconnection: a site whose connection is lost (its socket or media went silent,
//!   rather than it leaving) keeps its seat for the reconnect grace period: its roll
//!   call, its place in the floor queue and the floor itself stay, everyone is shown
//!   it `reconnecting`, and when it connects again it enters at once, lobby or not.
//!   Only when the grace runs out is it `left`, as of when it was lost.
//! - Restarts: a meeting resumed from the store (its roll call and its run state: open
//!   or not, floor, queue, layout, muted sites) treats the sites that were in it as
//!   lost at the resumption, so they get their seats back by reconnecting.
//! - Layout: the chair picks up to four sites that everyone shows large; empty means
//!   automatic: the chair and the active speaker, or the floor holder when the chair
//!   speaks or no one does.
//! - Active speaker: from the voice levels the SFU reports for the sites that may be
//!   heard, with hysteresis (`speaker.rs`); announced to every site.
//! - What each site receives follows from the above: participants receive the video of
//!   the main screen's sites and the audio of those who may be heard; the chair and
//!   observers receive every site's video.

use std::collections::{BTreeMap, HashSet, VecDeque};

use cau_sfu::{MediaKind, PeerId};

use crate::model::{AttendanceRecord, AttendanceStatus, FloorMode, Millis, Role};
use crate::speaker::ActiveSpeaker;

/// The publishers and kinds one connection receives.
type Sources = HashSet<(PeerId, MediaKind)>;

/// The most sites the chair can put on the main screen.
pub const MAX_LAYOUT: usize = 4;

/// What the meeting is, as scheduled.
#[derive(Debug, Clone)]
pub struct MeetingPlan {
    pub mode: FloorMode,
    pub starts_at: Millis,
    /// A site entering later than `starts_at + late_after` is `late`.
    pub late_after: Millis,
    /// How long a lost site keeps its seat.
    pub reconnect_grace: Millis,
    pub sites: Vec<InvitedSite>,
    /// What the meeting had reached before this server started, if it ran before.
    pub resume: Resume,
}

/// A meeting's stored state from an earlier run of the server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resume {
    pub run: Option<RunState>,
    /// Each site's roll-call record, by site code.
    pub attendance: Vec<(String, AttendanceRecord)>,
}

/// What the chair has decided, kept so that a restart loses none of it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunState {
    pub opened: bool,
    pub floor: Option<String>,
    pub queue: Vec<String>,
    pub layout: Vec<String>,
    /// Sites the chair muted.
    pub muted: Vec<String>,
}

/// How a site's connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Departure {
    /// The site left: it said so, or its browser closed the page.
    Left,
    /// The connection was lost (its socket or its media went silent): the site keeps its
    /// seat for the reconnect grace period.
    Lost,
}

#[derive(Debug, Clone)]
pub struct InvitedSite {
    pub code: String,
    pub name: String,
    pub role: Role,
}

/// What a site asks of the meeting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Open,
    Admit { site: String },
    RequestFloor,
    CancelFloorRequest,
    GrantFloor { site: String },
    RevokeFloor,
    Mute { site: String },
    Unmute { site: String },
    SetLayout { sites: Vec<String> },
    MarkAbsent { site: String, reason: String },
}

/// What the shell must carry out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// The site's connection may enter the media room now.
    Admit { site: String, peer: PeerId },
    /// An older connection of the site was replaced by a newer one: close it.
    Replaced { peer: PeerId },
    /// Forward or withhold the audio of this connection in the SFU.
    AudioForwarding { peer: PeerId, allowed: bool },
    /// Forward this connection's audio even when it is not among the room's loudest:
    /// the chair's and the floor holder's.
    AudioPinned { peer: PeerId, pinned: bool },
    /// Send this connection exactly these publishers' tracks.
    Subscriptions {
        peer: PeerId,
        sources: HashSet<(PeerId, MediaKind)>,
    },
    /// Store this run state: the chair's decisions changed.
    Run(RunState),
    /// Store this roll-call record.
    Attendance {
        site: String,
        record: AttendanceRecord,
    },
    /// The snapshot changed: show everyone the new one.
    StateChanged,
    /// The active speaker changed: tell everyone. Only this changed, so the shell sends
    /// this small message rather than the whole state.
    ActiveSpeaker { site: Option<String> },
}

/// Where a connecting site goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    Lobby,
    Admitted,
}

/// Why the meeting refused something.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MeetingError {
    /// The site is not invited to this meeting.
    #[error("site {0} is not invited to this meeting")]
    NotInvited(String),
    /// The site's role may not do this.
    #[error("only the chair may do this")]
    ChairOnly,
    /// Observers watch; they do not take part.
    #[error("observers cannot ask for the floor")]
    ObserverCannot,
    /// The chair is always heard and gives the floor; it does not ask for it.
    #[error("the chair is always heard and does not ask for the floor")]
    ChairAlwaysHeard,
    /// The action names a site that is not in the meeting now.
    #[error("site {0} is not connected")]
    NotConnected(String),
    /// The action does not apply in this floor mode.
    #[error("the floor is open to everyone in this meeting")]
    OpenFloor,
    /// The layout holds at most four sites, each invited, none twice.
    #[error("a layout holds 0 to 4 distinct invited sites")]
    BadLayout,
    /// A connected site cannot be marked absent.
    #[error("site {0} is here and cannot be marked absent")]
    Present(String),
    /// Reasons are short text.
    #[error("a reason has 1 to 200 characters")]
    BadReason,
}

/// A running meeting. See the module documentation.
pub struct Meeting {
    mode: FloorMode,
    starts_at: Millis,
    late_after: Millis,
    reconnect_grace: Millis,
    opened: bool,
    sites: BTreeMap<String, SiteState>,
    floor: Option<String>,
    queue: VecDeque<String>,
    layout: Vec<String>,
    speaker: ActiveSpeaker,
    /// The run state as last handed out for storing.
    stored_run: RunState,
    outputs: VecDeque<Output>,
}

#[derive(Debug)]
struct SiteState {
    name: String,
    role: Role,
    connection: Option<Connection>,
    /// Lost at this time and holding its seat: never set while `connection` is.
    lost_at: Option<Millis>,
    attendance: AttendanceRecord,
    muted_by_chair: bool,
}

#[derive(Debug, Clone)]
struct Connection {
    peer: PeerId,
    admitted: bool,
    /// The audio gate last given to the SFU for this connection.
    audio_allowed: Option<bool>,
    /// Whether the SFU was last told to forward its audio however quiet it is.
    audio_pinned: Option<bool>,
    /// The subscriptions last given to the SFU for this connection.
    sources: Option<HashSet<(PeerId, MediaKind)>>,
}

/// What everyone is shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub opened: bool,
    pub mode: FloorMode,
    pub floor: Option<String>,
    pub queue: Vec<String>,
    pub layout: Vec<String>,
    pub active_speaker: Option<String>,
    pub sites: Vec<SiteSnapshot>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteSnapshot {
    pub code: String,
    pub name: String,
    pub role: Role,
    pub connected: bool,
    /// Lost, holding its seat until it reconnects or the grace runs out.
    pub reconnecting: bool,
    pub in_lobby: bool,
    pub muted_by_chair: bool,
    pub attendance: AttendanceRecord,
}

impl Meeting {
    /// Starts the meeting's core at `now`, resuming what `plan.resume` holds.
    pub fn new(plan: MeetingPlan, now: Millis) -> Meeting {
        let mut attendance: BTreeMap<String, AttendanceRecord> =
            plan.resume.attendance.into_iter().collect();
        let run = plan.resume.run.unwrap_or_default();
        let sites = plan
            .sites
            .into_iter()
            .map(|site| {
                let record = attendance
                    .remove(&site.code)
                    .unwrap_or_else(AttendanceRecord::not_called);
                // In the meeting when the server stopped: its seat waits for it.
                let was_in = matches!(
                    record.status,
                    AttendanceStatus::Present | AttendanceStatus::Late
                ) && record.left_at.is_none();
                let state = SiteState {
                    name: site.name,
                    role: site.role,
                    connection: None,
                    lost_at: (was_in && site.role != Role::Observer).then_some(now),
                    attendance: record,
                    muted_by_chair: run.muted.contains(&site.code),
                };
                (site.code, state)
            })
            .collect::<BTreeMap<_, _>>();
        let invited = |code: &String| sites.contains_key(code);
        let floor = run.floor.clone().filter(invited);
        let queue = run.queue.iter().filter(|c| invited(c)).cloned().collect();
        let layout = run.layout.iter().filter(|c| invited(c)).cloned().collect();
        Meeting {
            mode: plan.mode,
            starts_at: plan.starts_at,
            late_after: plan.late_after,
            reconnect_grace: plan.reconnect_grace,
            opened: run.opened,
            sites,
            floor,
            queue,
            layout,
            speaker: ActiveSpeaker::default(),
            stored_run: run,
            outputs: VecDeque::new(),
        }
    }

    /// A site's connection arrives. The chair and observers enter at once, as does
    /// everyone once the meeting is open; others wait in the lobby.
    pub fn connect(
        &mut self,
        site: &str,
        peer: PeerId,
        now: Millis,
    ) -> Result<Entry, MeetingError> {
        let opened = self.opened;
        let state = self
            .sites
            .get_mut(site)
            .ok_or_else(|| MeetingError::NotInvited(site.to_owned()))?;
        // A site that was in and lost its connection, or whose new connection overtook
        // its old one, takes its seat again without waiting in the lobby.
        let mut returning = state.lost_at.take().is_some();
        if let Some(old) = state.connection.take() {
            returning |= old.admitted;
            self.outputs.push_back(Output::Replaced { peer: old.peer });
        }
        let enters = opened || state.role != Role::Participant || returning;
        state.connection = Some(Connection {
            peer,
            admitted: false,
            audio_allowed: None,
            audio_pinned: None,
            sources: None,
        });
        // The SFU meters the new connection afresh and reports nothing while it is
        // silent: a level kept from the old one would never be taken back.
        if self.speaker.forget(site, now) {
            self.announce_speaker();
        }
        if enters {
            self.enter(site, now);
        }
        self.changed(now);
        Ok(if enters {
            Entry::Admitted
        } else {
            Entry::Lobby
        })
    }

    /// An IT observer's connection arrives. Observer links may be issued for any site of
    /// the directory, invited or not: an uninvited one joins the meeting as an observer.
    pub fn connect_observer(
        &mut self,
        site: &str,
        name: &str,
        peer: PeerId,
        now: Millis,
    ) -> Result<Entry, MeetingError> {
        self.sites
            .entry(site.to_owned())
            .or_insert_with(|| SiteState {
                name: name.to_owned(),
                role: Role::Observer,
                connection: None,
                lost_at: None,
                attendance: AttendanceRecord::not_called(),
                muted_by_chair: false,
            });
        self.connect(site, peer, now)
    }

    /// A site's connection ended, as `departure` says. Ignored if a newer connection
    /// replaced it.
    pub fn disconnect(&mut self, site: &str, peer: PeerId, departure: Departure, now: Millis) {
        let Some(state) = self.sites.get_mut(site) else {
            return;
        };
        let current = state.connection.as_ref().is_some_and(|c| c.peer == peer);
        if !current {
            return;
        }
        let was_in = state.connection.as_ref().is_some_and(|c| c.admitted);
        state.connection = None;
        if was_in && state.role != Role::Observer && departure == Departure::Lost {
            // The seat waits: roll call, floor and queue stay until the grace runs out.
            state.lost_at = Some(now);
            tracing::debug!(site, "lost; holding its seat");
        } else {
            self.leave_seat(site, now);
        }
        self.changed(now);
    }

    /// The site is gone for good as of `at`: the roll call says `left` (if it was in),
    /// and it gives up its place in the floor queue and the floor.
    fn leave_seat(&mut self, site: &str, at: Millis) {
        let Some(state) = self.sites.get_mut(site) else {
            return;
        };
        state.lost_at = None;
        let on_roll = state.attendance.joined_at.is_some()
            && matches!(
                state.attendance.status,
                AttendanceStatus::Present | AttendanceStatus::Late
            );
        if on_roll && state.role != Role::Observer {
            state.attendance.status = AttendanceStatus::Left;
            state.attendance.left_at = Some(at);
            let record = state.attendance.clone();
            self.outputs.push_back(Output::Attendance {
                site: site.to_owned(),
                record,
            });
        }
        self.queue.retain(|s| s != site);
        if self.floor.as_deref() == Some(site) {
            self.floor = None;
        }
    }

    /// `by` asks for `action`.
    pub fn act(&mut self, by: &str, action: Action, now: Millis) -> Result<(), MeetingError> {
        let role = self
            .sites
            .get(by)
            .map(|s| s.role)
            .ok_or_else(|| MeetingError::NotInvited(by.to_owned()))?;
        let chair_only = !matches!(action, Action::RequestFloor | Action::CancelFloorRequest);
        if chair_only && role != Role::Chair {
            return Err(MeetingError::ChairOnly);
        }
        match action {
            Action::Open => {
                self.opened = true;
                let waiting: Vec<String> = self
                    .sites
                    .iter()
                    .filter(|(_, s)| s.connection.as_ref().is_some_and(|c| !c.admitted))
                    .map(|(code, _)| code.clone())
                    .collect();
                for site in waiting {
                    self.enter(&site, now);
                }
            }
            Action::Admit { site } => {
                let waiting = self.connected(&site)?;
                if !waiting.admitted {
                    self.enter(&site, now);
                }
            }
            Action::RequestFloor => {
                match role {
                    Role::Observer => return Err(MeetingError::ObserverCannot),
                    Role::Chair => return Err(MeetingError::ChairAlwaysHeard),
                    Role::Participant => {}
                }
                if self.mode == FloorMode::Open {
                    return Err(MeetingError::OpenFloor);
                }
                self.connected(by)?;
                let holds = self.floor.as_deref() == Some(by);
                if !holds && !self.queue.iter().any(|s| s == by) {
                    self.queue.push_back(by.to_owned());
                }
            }
            Action::CancelFloorRequest => self.queue.retain(|s| s != by),
            Action::GrantFloor { site } => {
                if self.mode == FloorMode::Open {
                    return Err(MeetingError::OpenFloor);
                }
                self.connected(&site)?;
                self.queue.retain(|s| *s != site);
                self.floor = Some(site);
            }
            Action::RevokeFloor => self.floor = None,
            Action::Mute { site } | Action::Unmute { site } if !self.sites.contains_key(&site) => {
                return Err(MeetingError::NotInvited(site));
            }
            Action::Mute { site } => {
                if let Some(state) = self.sites.get_mut(&site) {
                    state.muted_by_chair = true;
                }
            }
            Action::Unmute { site } => {
                if let Some(state) = self.sites.get_mut(&site) {
                    state.muted_by_chair = false;
                }
            }
            Action::SetLayout { sites } => {
                let distinct = sites
                    .iter()
                    .enumerate()
                    .all(|(i, s)| !sites[..i].contains(s));
                let invited = sites.iter().all(|s| self.sites.contains_key(s));
                if sites.len() > MAX_LAYOUT || !distinct || !invited {
                    return Err(MeetingError::BadLayout);
                }
                self.layout = sites;
            }
            Action::MarkAbsent { site, reason } => {
                let reason = reason.trim().to_owned();
                if reason.is_empty() || reason.chars().count() > 200 {
                    return Err(MeetingError::BadReason);
                }
                let state = self
                    .sites
                    .get_mut(&site)
                    .ok_or_else(|| MeetingError::NotInvited(site.clone()))?;
                if state.connection.is_some() || state.lost_at.is_some() {
                    return Err(MeetingError::Present(site));
                }
                state.attendance.status = AttendanceStatus::Absent;
                state.attendance.reason = Some(reason);
                let record = state.attendance.clone();
                self.outputs.push_back(Output::Attendance { site, record });
            }
        }
        self.changed(now);
        Ok(())
    }

    /// The SFU measured a new voice level (0 silent, up to 127) for `peer`, `site`'s
    /// connection. Levels of a connection that is not the site's current one in the
    /// meeting, or of a site that may not be heard, are ignored: the SFU stops metering
    /// withheld audio, but a level may have been on its way when the gate closed.
    pub fn audio_level(&mut self, site: &str, peer: PeerId, level: u8, now: Millis) {
        let Some(state) = self.sites.get(site) else {
            return;
        };
        let current = state
            .connection
            .as_ref()
            .is_some_and(|c| c.peer == peer && c.admitted);
        if !current || !self.heard(site, state) {
            return;
        }
        if self.speaker.level(site, level, now) {
            self.speaker_changed();
        }
    }

    /// When [`Meeting::handle_timeout`] must next be called, if anything waits on time.
    pub fn poll_timeout(&self) -> Option<Millis> {
        let seats = self
            .sites
            .values()
            .filter_map(|s| s.lost_at)
            .map(|at| at + self.reconnect_grace);
        seats.chain(self.speaker.poll_timeout()).min()
    }

    /// Time passed: a site may take over as the speaker, a silent speaker go, or a lost
    /// site's seat be given up.
    pub fn handle_timeout(&mut self, now: Millis) {
        if self.speaker.handle_timeout(now) {
            self.speaker_changed();
        }
        let expired: Vec<(String, Millis)> = self
            .sites
            .iter()
            .filter_map(|(code, s)| Some((code.clone(), s.lost_at?)))
            .filter(|(_, at)| at + self.reconnect_grace <= now)
            .collect();
        if expired.is_empty() {
            return;
        }
        for (site, lost_at) in expired {
            tracing::debug!(site, "did not reconnect in time; left");
            self.leave_seat(&site, lost_at);
        }
        self.changed(now);
    }

    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            opened: self.opened,
            mode: self.mode,
            floor: self.floor.clone(),
            queue: self.queue.iter().cloned().collect(),
            layout: self.layout.clone(),
            active_speaker: self.speaker.current().map(str::to_owned),
            sites: self
                .sites
                .iter()
                .map(|(code, s)| SiteSnapshot {
                    code: code.clone(),
                    name: s.name.clone(),
                    role: s.role,
                    connected: s.connection.is_some(),
                    reconnecting: s.lost_at.is_some(),
                    in_lobby: s.connection.as_ref().is_some_and(|c| !c.admitted),
                    muted_by_chair: s.muted_by_chair,
                    attendance: s.attendance.clone(),
                })
                .collect(),
        }
    }

    /// The role of an invited site.
    pub fn role(&self, site: &str) -> Option<Role> {
        self.sites.get(site).map(|s| s.role)
    }

    fn connected(&self, site: &str) -> Result<Connection, MeetingError> {
        self.sites
            .get(site)
            .and_then(|s| s.connection.clone())
            .ok_or_else(|| MeetingError::NotConnected(site.to_owned()))
    }

    /// Lets a connected site's connection into the meeting and calls its roll.
    fn enter(&mut self, site: &str, now: Millis) {
        let late_from = self.starts_at + self.late_after;
        let Some(state) = self.sites.get_mut(site) else {
            return;
        };
        let Some(connection) = state.connection.as_mut() else {
            return;
        };
        connection.admitted = true;
        let peer = connection.peer;
        if state.role != Role::Observer {
            let record = &mut state.attendance;
            if record.joined_at.is_none() {
                record.joined_at = Some(now);
                record.status = if now > late_from {
                    AttendanceStatus::Late
                } else {
                    AttendanceStatus::Present
                };
            } else {
                // Back after leaving: keep the first arrival's status and time.
                record.status = if record.joined_at.is_some_and(|t| t > late_from) {
                    AttendanceStatus::Late
                } else {
                    AttendanceStatus::Present
                };
            }
            record.left_at = None;
            record.reason = None;
            let record = record.clone();
            self.outputs.push_back(Output::Attendance {
                site: site.to_owned(),
                record,
            });
        }
        self.outputs.push_back(Output::Admit {
            site: site.to_owned(),
            peer,
        });
    }

    /// Whether `site` may be heard now.
    fn heard(&self, code: &str, state: &SiteState) -> bool {
        match (state.role, self.mode) {
            (Role::Observer, _) => false,
            _ if state.muted_by_chair => false,
            (Role::Chair, _) | (_, FloorMode::Open) => true,
            (Role::Participant, FloorMode::Chair) => self.floor.as_deref() == Some(code),
        }
    }

    /// Whether the site leads the meeting's speech: the chair, or the site holding the
    /// floor. Their audio reaches everyone however many others speak at once.
    fn presents(&self, code: &str, state: &SiteState) -> bool {
        state.role == Role::Chair || self.floor.as_deref() == Some(code)
    }

    /// The tracks a site in `role` receives, given who is in the meeting now.
    fn sources_for(&self, own: &str, role: Role) -> HashSet<(PeerId, MediaKind)> {
        let in_meeting = || {
            self.sites.iter().filter_map(|(code, s)| {
                let connection = s.connection.as_ref().filter(|c| c.admitted)?;
                (code != own).then_some((code.as_str(), s, connection.peer))
            })
        };
        let shown = self.main_screen();
        let mut sources = HashSet::new();
        for (code, state, peer) in in_meeting() {
            let sees_all = role != Role::Participant;
            if sees_all || shown.contains(&code) {
                sources.insert((peer, MediaKind::Video));
            }
            if self.heard(code, state) {
                sources.insert((peer, MediaKind::Audio));
            }
        }
        sources
    }

    /// The sites every participant shows large: the chair's layout; without one, the
    /// chair and the active speaker, or the floor holder when the chair is the speaker
    /// or no one speaks (in chair mode the floor holder is the one expected to speak).
    fn main_screen(&self) -> Vec<&str> {
        if !self.layout.is_empty() {
            return self.layout.iter().map(String::as_str).collect();
        }
        let chairs: Vec<&str> = self
            .sites
            .iter()
            .filter(|(_, s)| s.role == Role::Chair)
            .map(|(code, _)| code.as_str())
            .collect();
        let speaker = self.speaker.current().filter(|s| !chairs.contains(s));
        let second = speaker.or(self.floor.as_deref());
        chairs.into_iter().chain(second).collect()
    }

    /// Something about the meeting changed at `now`: a site that may no longer be heard
    /// (it left, lost the floor, was muted) stops being a candidate for active speaker at
    /// once; then who is heard and who receives what is recomputed and the shell told.
    fn changed(&mut self, now: Millis) {
        let unheard: Vec<String> = self
            .sites
            .iter()
            .filter(|(code, state)| {
                let admitted = state.connection.as_ref().is_some_and(|c| c.admitted);
                !admitted || !self.heard(code, state)
            })
            .map(|(code, _)| code.clone())
            .collect();
        let mut speaker_changed = false;
        for site in unheard {
            speaker_changed |= self.speaker.forget(&site, now);
        }
        if speaker_changed {
            self.announce_speaker();
        }
        self.reconcile();
        let run = self.run_state();
        if run != self.stored_run {
            self.stored_run = run.clone();
            self.outputs.push_back(Output::Run(run));
        }
        self.outputs.push_back(Output::StateChanged);
    }

    /// The chair's decisions as they stand, for storing.
    fn run_state(&self) -> RunState {
        RunState {
            opened: self.opened,
            floor: self.floor.clone(),
            queue: self.queue.iter().cloned().collect(),
            layout: self.layout.clone(),
            muted: self
                .sites
                .iter()
                .filter(|(_, s)| s.muted_by_chair)
                .map(|(code, _)| code.clone())
                .collect(),
        }
    }

    /// The active speaker changed: the main screen may follow, and everyone is told.
    fn speaker_changed(&mut self) {
        self.announce_speaker();
        self.reconcile();
    }

    fn announce_speaker(&mut self) {
        let site = self.speaker.current().map(str::to_owned);
        self.outputs.push_back(Output::ActiveSpeaker { site });
    }

    /// Recomputes who is heard and who receives what, and tells the shell of every change.
    fn reconcile(&mut self) {
        let wanted: Vec<(String, bool, bool, Option<Sources>)> = self
            .sites
            .iter()
            .map(|(code, state)| {
                let admitted = state.connection.as_ref().is_some_and(|c| c.admitted);
                let sources = admitted.then(|| self.sources_for(code, state.role));
                let heard = self.heard(code, state);
                (
                    code.clone(),
                    heard,
                    heard && self.presents(code, state),
                    sources,
                )
            })
            .collect();
        for (code, heard, pinned, sources) in wanted {
            let Some(state) = self.sites.get_mut(&code) else {
                continue;
            };
            let Some(connection) = state.connection.as_mut() else {
                continue;
            };
            if let Some(sources) = sources.filter(|s| connection.sources.as_ref() != Some(s)) {
                connection.sources = Some(sources.clone());
                self.outputs.push_back(Output::Subscriptions {
                    peer: connection.peer,
                    sources,
                });
            }
            if connection.audio_allowed != Some(heard) {
                connection.audio_allowed = Some(heard);
                self.outputs.push_back(Output::AudioForwarding {
                    peer: connection.peer,
                    allowed: heard,
                });
            }
            if connection.audio_pinned != Some(pinned) {
                connection.audio_pinned = Some(pinned);
                self.outputs.push_back(Output::AudioPinned {
                    peer: connection.peer,
                    pinned,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const START: Millis = 1_000_000;
    const MINUTE: Millis = 60_000;
    const GRACE: Millis = 45_000;

    fn plan(mode: FloorMode) -> MeetingPlan {
        let site = |code: &str, role| InvitedSite {
            code: code.into(),
            name: code.to_uppercase(),
            role,
        };
        MeetingPlan {
            mode,
            starts_at: START,
            late_after: 5 * MINUTE,
            reconnect_grace: GRACE,
            sites: vec![
                site("cao-bang", Role::Chair),
                site("ha-quang", Role::Participant),
                site("tra-linh", Role::Participant),
                site("it", Role::Observer),
            ],
            resume: Resume::default(),
        }
    }

    fn drain(meeting: &mut Meeting) -> Vec<Output> {
        std::iter::from_fn(|| meeting.poll_output())
            .filter(|o| *o != Output::StateChanged)
            .collect()
    }

    fn gate(outputs: &[Output], peer: u64) -> Option<bool> {
        outputs.iter().rev().find_map(|o| match o {
            Output::AudioForwarding { peer: p, allowed } if *p == PeerId(peer) => Some(*allowed),
            _ => None,
        })
    }

    fn pinned(outputs: &[Output], peer: u64) -> Option<bool> {
        outputs.iter().rev().find_map(|o| match o {
            Output::AudioPinned { peer: p, pinned } if *p == PeerId(peer) => Some(*pinned),
            _ => None,
        })
    }

    fn status(meeting: &Meeting, site: &str) -> AttendanceStatus {
        meeting
            .snapshot()
            .sites
            .iter()
            .find(|s| s.code == site)
            .map(|s| s.attendance.status)
            .unwrap()
    }

    #[test]
    fn participants_wait_in_the_lobby_until_opened_or_admitted() {
        let mut meeting = Meeting::new(plan(FloorMode::Chair), START);
        assert_eq!(
            meeting.connect("ha-quang", PeerId(2), START - MINUTE),
            Ok(Entry::Lobby)
        );
        assert_eq!(
            meeting.connect("tra-linh", PeerId(3), START - MINUTE),
            Ok(Entry::Lobby)
        );
        assert_eq!(
            meeting.connect("it", PeerId(4), START - MINUTE),
            Ok(Entry::Admitted)
        );
        assert_eq!(
            meeting.connect("cao-bang", PeerId(1), START - MINUTE),
            Ok(Entry::Admitted)
        );
        let outputs = drain(&mut meeting);
        assert!(
            !outputs
                .iter()
                .any(|o| matches!(o, Output::Admit { site, .. } if site == "ha-quang"))
        );
        assert_eq!(status(&meeting, "ha-quang"), AttendanceStatus::NotCalled);

        // Participants cannot let themselves in.
        assert_eq!(
            meeting.act(
                "ha-quang",
                Action::Admit {
                    site: "ha-quang".into()
                },
                START
            ),
            Err(MeetingError::ChairOnly)
        );
        meeting
            .act(
                "cao-bang",
                Action::Admit {
                    site: "tra-linh".into(),
                },
                START,
            )
            .unwrap();
        let outputs = drain(&mut meeting);
        assert!(outputs.contains(&Output::Admit {
            site: "tra-linh".into(),
            peer: PeerId(3)
        }));
        assert!(
            !outputs
                .iter()
                .any(|o| matches!(o, Output::Admit { site, .. } if site == "ha-quang"))
        );

        meeting.act("cao-bang", Action::Open, START).unwrap();
        let outputs = drain(&mut meeting);
        assert!(outputs.contains(&Output::Admit {
            site: "ha-quang".into(),
            peer: PeerId(2)
        }));
        // After opening, newcomers enter at once.
        meeting.disconnect("ha-quang", PeerId(2), Departure::Left, START + MINUTE);
        assert_eq!(
            meeting.connect("ha-quang", PeerId(5), START + 2 * MINUTE),
            Ok(Entry::Admitted)
        );
    }

    #[test]
    fn roll_call_records_present_late_left_and_absent() {
        let mut meeting = Meeting::new(plan(FloorMode::Chair), START);
        meeting
            .act("cao-bang", Action::Open, START - 10 * MINUTE)
            .unwrap();
        meeting
            .connect("ha-quang", PeerId(2), START + MINUTE)
            .unwrap();
        assert_eq!(status(&meeting, "ha-quang"), AttendanceStatus::Present);
        meeting
            .connect("tra-linh", PeerId(3), START + 6 * MINUTE)
            .unwrap();
        assert_eq!(status(&meeting, "tra-linh"), AttendanceStatus::Late);
        meeting.disconnect("ha-quang", PeerId(2), Departure::Left, START + 30 * MINUTE);
        assert_eq!(status(&meeting, "ha-quang"), AttendanceStatus::Left);
        let saved = drain(&mut meeting);
        assert!(saved.contains(&Output::Attendance {
            site: "ha-quang".into(),
            record: AttendanceRecord {
                status: AttendanceStatus::Left,
                joined_at: Some(START + MINUTE),
                left_at: Some(START + 30 * MINUTE),
                reason: None,
            }
        }));
        // Coming back keeps the first arrival.
        meeting
            .connect("ha-quang", PeerId(4), START + 40 * MINUTE)
            .unwrap();
        assert_eq!(status(&meeting, "ha-quang"), AttendanceStatus::Present);
        // Observers are not on the roll.
        meeting.connect("it", PeerId(9), START).unwrap();
        assert_eq!(status(&meeting, "it"), AttendanceStatus::NotCalled);

        // Absent, with a reason, only for a site that is not here.
        assert_eq!(
            meeting.act(
                "cao-bang",
                Action::MarkAbsent {
                    site: "tra-linh".into(),
                    reason: "mất điện".into()
                },
                START
            ),
            Err(MeetingError::Present("tra-linh".into()))
        );
        meeting.disconnect("tra-linh", PeerId(3), Departure::Left, START + 50 * MINUTE);
        assert_eq!(
            meeting.act(
                "cao-bang",
                Action::MarkAbsent {
                    site: "tra-linh".into(),
                    reason: " ".into()
                },
                START
            ),
            Err(MeetingError::BadReason)
        );
        meeting
            .act(
                "cao-bang",
                Action::MarkAbsent {
                    site: "tra-linh".into(),
                    reason: "mất điện".into(),
                },
                START,
            )
            .unwrap();
        let snapshot = meeting.snapshot();
        let tra_linh = snapshot
            .sites
            .iter()
            .find(|s| s.code == "tra-linh")
            .unwrap();
        assert_eq!(tra_linh.attendance.status, AttendanceStatus::Absent);
        assert_eq!(tra_linh.attendance.reason.as_deref(), Some("mất điện"));
    }

    #[test]
    fn the_chair_and_the_floor_holder_are_heard_however_many_speak() {
        // Open discussion: everyone may speak, the SFU forwards the loudest, and the
        // chair is heard whatever the others do.
        let mut meeting = Meeting::new(plan(FloorMode::Open), START);
        meeting.connect("cao-bang", PeerId(1), START).unwrap();
        meeting.act("cao-bang", Action::Open, START).unwrap();
        meeting.connect("ha-quang", PeerId(2), START).unwrap();
        let outputs = drain(&mut meeting);
        assert_eq!(
            (gate(&outputs, 1), pinned(&outputs, 1)),
            (Some(true), Some(true))
        );
        assert_eq!(
            (gate(&outputs, 2), pinned(&outputs, 2)),
            (Some(true), Some(false))
        );

        // Chair mode: the floor holder is pinned while it holds the floor.
        let mut meeting = Meeting::new(plan(FloorMode::Chair), START);
        meeting.connect("cao-bang", PeerId(1), START).unwrap();
        meeting.act("cao-bang", Action::Open, START).unwrap();
        meeting.connect("ha-quang", PeerId(2), START).unwrap();
        meeting.connect("tra-linh", PeerId(3), START).unwrap();
        let outputs = drain(&mut meeting);
        assert_eq!(pinned(&outputs, 1), Some(true));
        assert_eq!(pinned(&outputs, 2), Some(false));
        let grant = Action::GrantFloor {
            site: "ha-quang".into(),
        };
        meeting.act("cao-bang", grant, START).unwrap();
        let outputs = drain(&mut meeting);
        assert_eq!(pinned(&outputs, 2), Some(true));
        assert_eq!(pinned(&outputs, 3), None, "tra-linh's pin did not change");
        meeting.act("cao-bang", Action::RevokeFloor, START).unwrap();
        let outputs = drain(&mut meeting);
        assert_eq!(pinned(&outputs, 2), Some(false));
    }

    #[test]
    fn in_chair_mode_only_the_chair_and_the_floor_holder_are_heard() {
        let mut meeting = Meeting::new(plan(FloorMode::Chair), START);
        meeting.connect("cao-bang", PeerId(1), START).unwrap();
        meeting.act("cao-bang", Action::Open, START).unwrap();
        meeting.connect("ha-quang", PeerId(2), START).unwrap();
        meeting.connect("tra-linh", PeerId(3), START).unwrap();
        meeting.connect("it", PeerId(4), START).unwrap();
        let outputs = drain(&mut meeting);
        assert_eq!(gate(&outputs, 1), Some(true));
        assert_eq!(gate(&outputs, 2), Some(false));
        assert_eq!(gate(&outputs, 3), Some(false));
        assert_eq!(gate(&outputs, 4), Some(false));

        // Requests queue in order; asking twice changes nothing.
        meeting
            .act("tra-linh", Action::RequestFloor, START)
            .unwrap();
        meeting
            .act("ha-quang", Action::RequestFloor, START)
            .unwrap();
        meeting
            .act("tra-linh", Action::RequestFloor, START)
            .unwrap();
        assert_eq!(meeting.snapshot().queue, vec!["tra-linh", "ha-quang"]);
        assert_eq!(
            meeting.act("it", Action::RequestFloor, START),
            Err(MeetingError::ObserverCannot)
        );
        assert_eq!(
            meeting.act(
                "ha-quang",
                Action::GrantFloor {
                    site: "ha-quang".into()
                },
                START
            ),
            Err(MeetingError::ChairOnly)
        );

        meeting
            .act(
                "cao-bang",
                Action::GrantFloor {
                    site: "ha-quang".into(),
                },
                START,
            )
            .unwrap();
        let outputs = drain(&mut meeting);
        assert_eq!(gate(&outputs, 2), Some(true));
        assert_eq!(gate(&outputs, 3), None, "an unchanged gate is not re-sent");
        assert_eq!(meeting.snapshot().queue, vec!["tra-linh"]);
        assert_eq!(meeting.snapshot().floor.as_deref(), Some("ha-quang"));

        // Muting the floor holder silences it; revoking the floor too.
        meeting
            .act(
                "cao-bang",
                Action::Mute {
                    site: "ha-quang".into(),
                },
                START,
            )
            .unwrap();
        assert_eq!(gate(&drain(&mut meeting), 2), Some(false));
        meeting
            .act(
                "cao-bang",
                Action::Unmute {
                    site: "ha-quang".into(),
                },
                START,
            )
            .unwrap();
        assert_eq!(gate(&drain(&mut meeting), 2), Some(true));
        meeting.act("cao-bang", Action::RevokeFloor, START).unwrap();
        assert_eq!(gate(&drain(&mut meeting), 2), Some(false));

        // Leaving drops the site from the queue.
        meeting.disconnect("tra-linh", PeerId(3), Departure::Left, START);
        assert!(meeting.snapshot().queue.is_empty());
    }

    #[test]
    fn in_open_mode_everyone_is_heard_unless_muted() {
        let mut meeting = Meeting::new(plan(FloorMode::Open), START);
        meeting.connect("cao-bang", PeerId(1), START).unwrap();
        meeting.act("cao-bang", Action::Open, START).unwrap();
        meeting.connect("ha-quang", PeerId(2), START).unwrap();
        meeting.connect("it", PeerId(4), START).unwrap();
        let outputs = drain(&mut meeting);
        assert_eq!(gate(&outputs, 2), Some(true));
        assert_eq!(gate(&outputs, 4), Some(false));
        assert_eq!(
            meeting.act("ha-quang", Action::RequestFloor, START),
            Err(MeetingError::OpenFloor)
        );
        meeting
            .act(
                "cao-bang",
                Action::Mute {
                    site: "ha-quang".into(),
                },
                START,
            )
            .unwrap();
        assert_eq!(gate(&drain(&mut meeting), 2), Some(false));
    }

    #[test]
    fn layout_holds_up_to_four_distinct_invited_sites() {
        let mut meeting = Meeting::new(plan(FloorMode::Chair), START);
        let check = |meeting: &mut Meeting, sites: &[&str], ok: bool| {
            let sites = sites.iter().map(|s| s.to_string()).collect();
            let result = meeting.act("cao-bang", Action::SetLayout { sites }, START);
            assert_eq!(result.is_ok(), ok, "{result:?}");
        };
        check(&mut meeting, &["ha-quang"], true);
        check(
            &mut meeting,
            &["cao-bang", "ha-quang", "tra-linh", "it"],
            true,
        );
        check(&mut meeting, &[], true);
        check(&mut meeting, &["ha-quang", "ha-quang"], false);
        check(&mut meeting, &["nowhere"], false);
        check(
            &mut meeting,
            &["cao-bang", "ha-quang", "tra-linh", "it", "cao-bang"],
            false,
        );
        assert!(meeting.snapshot().layout.is_empty());
        assert_eq!(
            meeting.act("ha-quang", Action::SetLayout { sites: vec![] }, START),
            Err(MeetingError::ChairOnly)
        );
    }

    #[test]
    fn a_new_connection_of_a_site_replaces_the_old_one() {
        let mut meeting = Meeting::new(plan(FloorMode::Chair), START);
        meeting.connect("cao-bang", PeerId(1), START).unwrap();
        drain(&mut meeting);
        meeting.connect("cao-bang", PeerId(7), START).unwrap();
        let outputs = drain(&mut meeting);
        assert!(outputs.contains(&Output::Replaced { peer: PeerId(1) }));
        // The old connection's end changes nothing.
        meeting.disconnect("cao-bang", PeerId(1), Departure::Left, START);
        assert!(
            meeting
                .snapshot()
                .sites
                .iter()
                .any(|s| s.code == "cao-bang" && s.connected)
        );
        assert_eq!(
            meeting.connect("nowhere", PeerId(8), START),
            Err(MeetingError::NotInvited("nowhere".into()))
        );
    }

    fn sources(outputs: &[Output], peer: u64) -> Option<Vec<(u64, MediaKind)>> {
        outputs.iter().rev().find_map(|o| match o {
            Output::Subscriptions { peer: p, sources } if *p == PeerId(peer) => {
                let mut list: Vec<(u64, MediaKind)> =
                    sources.iter().map(|(p, k)| (p.0, *k)).collect();
                list.sort_by_key(|(p, k)| (*p, *k == MediaKind::Video));
                Some(list)
            }
            _ => None,
        })
    }

    #[test]
    fn each_site_receives_what_the_floor_and_layout_call_for() {
        use MediaKind::{Audio, Video};
        let mut meeting = Meeting::new(plan(FloorMode::Chair), START);
        meeting.connect("cao-bang", PeerId(1), START).unwrap();
        meeting.act("cao-bang", Action::Open, START).unwrap();
        meeting.connect("ha-quang", PeerId(2), START).unwrap();
        meeting.connect("tra-linh", PeerId(3), START).unwrap();
        meeting.connect("it", PeerId(4), START).unwrap();
        let outputs = drain(&mut meeting);
        // Communes see and hear the chair only; the chair and IT see everyone.
        assert_eq!(sources(&outputs, 2), Some(vec![(1, Audio), (1, Video)]));
        assert_eq!(
            sources(&outputs, 1),
            Some(vec![(2, Video), (3, Video), (4, Video)])
        );
        assert_eq!(
            sources(&outputs, 4),
            Some(vec![(1, Audio), (1, Video), (2, Video), (3, Video)])
        );

        // The floor holder is heard by all and shown to the communes.
        meeting
            .act(
                "cao-bang",
                Action::GrantFloor {
                    site: "ha-quang".into(),
                },
                START,
            )
            .unwrap();
        let outputs = drain(&mut meeting);
        assert_eq!(
            sources(&outputs, 3),
            Some(vec![(1, Audio), (1, Video), (2, Audio), (2, Video)])
        );
        assert_eq!(
            sources(&outputs, 1),
            Some(vec![(2, Audio), (2, Video), (3, Video), (4, Video)])
        );

        // A layout replaces the automatic choice of video.
        meeting
            .act(
                "cao-bang",
                Action::SetLayout {
                    sites: vec!["tra-linh".into()],
                },
                START,
            )
            .unwrap();
        let outputs = drain(&mut meeting);
        assert_eq!(sources(&outputs, 2), Some(vec![(1, Audio), (3, Video)]));
    }

    #[test]
    fn an_uninvited_observer_watches_and_is_never_heard() {
        let mut meeting = Meeting::new(plan(FloorMode::Open), START);
        meeting.connect("cao-bang", PeerId(1), START).unwrap();
        assert_eq!(
            meeting.connect("chinh-phu", PeerId(5), START),
            Err(MeetingError::NotInvited("chinh-phu".into()))
        );
        assert_eq!(
            meeting.connect_observer("chinh-phu", "Chính phủ", PeerId(5), START),
            Ok(Entry::Admitted)
        );
        let outputs = drain(&mut meeting);
        assert_eq!(gate(&outputs, 5), Some(false));
        assert_eq!(meeting.role("chinh-phu"), Some(Role::Observer));
        assert_eq!(
            meeting.act("chinh-phu", Action::RequestFloor, START),
            Err(MeetingError::ObserverCannot)
        );
    }

    fn speakers(outputs: &[Output]) -> Vec<Option<String>> {
        outputs
            .iter()
            .filter_map(|o| match o {
                Output::ActiveSpeaker { site } => Some(site.clone()),
                _ => None,
            })
            .collect()
    }

    /// The chair, two communes and IT in an open meeting, everyone in.
    fn open_meeting() -> Meeting {
        let mut meeting = Meeting::new(plan(FloorMode::Open), START);
        meeting.connect("cao-bang", PeerId(1), START).unwrap();
        meeting.act("cao-bang", Action::Open, START).unwrap();
        meeting.connect("ha-quang", PeerId(2), START).unwrap();
        meeting.connect("tra-linh", PeerId(3), START).unwrap();
        meeting.connect("it", PeerId(4), START).unwrap();
        drain(&mut meeting);
        meeting
    }

    #[test]
    fn the_main_screen_shows_the_chair_and_the_active_speaker() {
        use MediaKind::{Audio, Video};
        let mut meeting = open_meeting();
        let t = START + MINUTE;
        meeting.audio_level("ha-quang", PeerId(2), 60, t);
        assert_eq!(drain(&mut meeting), vec![], "a second of speech first");
        assert_eq!(meeting.poll_timeout(), Some(t + 1_000));
        meeting.handle_timeout(t + 999);
        assert_eq!(drain(&mut meeting), vec![]);
        meeting.handle_timeout(t + 1_000);
        let outputs = drain(&mut meeting);
        assert_eq!(speakers(&outputs), vec![Some("ha-quang".to_owned())]);
        assert_eq!(
            meeting.snapshot().active_speaker.as_deref(),
            Some("ha-quang")
        );
        // The other commune now sees the speaker beside the chair; in open mode it
        // hears everyone anyway. The chair and IT already saw every site.
        assert_eq!(
            sources(&outputs, 3),
            Some(vec![(1, Audio), (1, Video), (2, Audio), (2, Video)])
        );
        assert_eq!(sources(&outputs, 1), None);
        assert_eq!(sources(&outputs, 4), None);

        // Silence: still the speaker for five seconds, then the chair alone.
        meeting.audio_level("ha-quang", PeerId(2), 0, t + 2_000);
        meeting.handle_timeout(t + 6_000);
        assert_eq!(drain(&mut meeting), vec![]);
        meeting.handle_timeout(t + 7_000);
        let outputs = drain(&mut meeting);
        assert_eq!(speakers(&outputs), vec![None]);
        assert_eq!(
            sources(&outputs, 3),
            Some(vec![(1, Audio), (1, Video), (2, Audio)])
        );
        assert_eq!(meeting.poll_timeout(), None);

        // The chair's layout wins over the speaker: a new speaker is announced, and
        // nobody's subscriptions change.
        meeting
            .act(
                "cao-bang",
                Action::SetLayout {
                    sites: vec!["cao-bang".into()],
                },
                t + 8_000,
            )
            .unwrap();
        drain(&mut meeting);
        meeting.audio_level("tra-linh", PeerId(3), 70, t + 9_000);
        meeting.handle_timeout(t + 10_000);
        let outputs = drain(&mut meeting);
        assert_eq!(speakers(&outputs), vec![Some("tra-linh".to_owned())]);
        assert!(
            !outputs
                .iter()
                .any(|o| matches!(o, Output::Subscriptions { .. })),
            "{outputs:?}"
        );
    }

    #[test]
    fn in_chair_mode_only_those_heard_can_be_the_active_speaker() {
        use MediaKind::{Audio, Video};
        let mut meeting = Meeting::new(plan(FloorMode::Chair), START);
        meeting.connect("cao-bang", PeerId(1), START).unwrap();
        meeting.act("cao-bang", Action::Open, START).unwrap();
        meeting.connect("ha-quang", PeerId(2), START).unwrap();
        meeting.connect("tra-linh", PeerId(3), START).unwrap();
        drain(&mut meeting);
        let t = START + MINUTE;
        // Nobody hears a commune without the floor: its level, on its way before the
        // SFU stopped metering it, is not a voice in the meeting.
        meeting.audio_level("ha-quang", PeerId(2), 90, t);
        meeting.handle_timeout(t + 2_000);
        assert_eq!(meeting.snapshot().active_speaker, None);
        assert_eq!(meeting.poll_timeout(), None);

        meeting
            .act(
                "cao-bang",
                Action::GrantFloor {
                    site: "ha-quang".into(),
                },
                t + 3_000,
            )
            .unwrap();
        drain(&mut meeting);
        meeting.audio_level("ha-quang", PeerId(2), 60, t + 3_000);
        meeting.handle_timeout(t + 4_000);
        assert_eq!(
            speakers(&drain(&mut meeting)),
            vec![Some("ha-quang".to_owned())]
        );
        // The chair speaks up, clearly louder: the speaker, and the main screen still
        // shows the floor holder beside it.
        meeting.audio_level("cao-bang", PeerId(1), 80, t + 5_000);
        meeting.handle_timeout(t + 6_000);
        let outputs = drain(&mut meeting);
        assert_eq!(speakers(&outputs), vec![Some("cao-bang".to_owned())]);
        assert_eq!(sources(&outputs, 3), None, "the main screen did not change");

        // The floor holder speaks again and takes over when the chair stops; revoking
        // its floor ends it as the speaker at once.
        meeting.audio_level("cao-bang", PeerId(1), 0, t + 7_000);
        meeting.handle_timeout(t + 8_000);
        assert_eq!(
            speakers(&drain(&mut meeting)),
            vec![Some("ha-quang".to_owned())]
        );
        meeting
            .act("cao-bang", Action::RevokeFloor, t + 9_000)
            .unwrap();
        let outputs = drain(&mut meeting);
        assert_eq!(speakers(&outputs), vec![None]);
        assert_eq!(sources(&outputs, 3), Some(vec![(1, Audio), (1, Video)]));
    }

    #[test]
    fn levels_of_a_replaced_or_departed_connection_are_ignored() {
        let mut meeting = open_meeting();
        let t = START + MINUTE;
        meeting.audio_level("ha-quang", PeerId(2), 60, t);
        meeting.handle_timeout(t + 1_000);
        drain(&mut meeting);
        // The site reconnects: the old connection's last level means nothing.
        meeting.connect("ha-quang", PeerId(7), t + 2_000).unwrap();
        let outputs = drain(&mut meeting);
        assert_eq!(
            speakers(&outputs),
            vec![None],
            "a new connection starts silent"
        );
        meeting.audio_level("ha-quang", PeerId(2), 60, t + 2_100);
        meeting.handle_timeout(t + 4_000);
        assert_eq!(meeting.snapshot().active_speaker, None);
        meeting.audio_level("nowhere", PeerId(9), 60, t + 4_000);
        assert_eq!(meeting.poll_timeout(), None);
        // The speaker leaving ends it at once.
        meeting.audio_level("tra-linh", PeerId(3), 60, t + 5_000);
        meeting.handle_timeout(t + 6_000);
        assert_eq!(
            meeting.snapshot().active_speaker.as_deref(),
            Some("tra-linh")
        );
        drain(&mut meeting);
        meeting.disconnect("tra-linh", PeerId(3), Departure::Left, t + 7_000);
        assert_eq!(speakers(&drain(&mut meeting)), vec![None]);
    }
    fn site(meeting: &Meeting, code: &str) -> SiteSnapshot {
        meeting
            .snapshot()
            .sites
            .into_iter()
            .find(|s| s.code == code)
            .unwrap()
    }

    #[test]
    fn a_lost_site_keeps_its_seat_floor_and_roll_call_until_the_grace_runs_out() {
        let mut meeting = Meeting::new(plan(FloorMode::Chair), START);
        meeting.connect("cao-bang", PeerId(1), START).unwrap();
        meeting.connect("ha-quang", PeerId(2), START).unwrap();
        meeting.connect("tra-linh", PeerId(3), START).unwrap();
        // Admitted one by one, not by opening: a returning site must not need it again.
        for code in ["ha-quang", "tra-linh"] {
            let admit = Action::Admit { site: code.into() };
            meeting.act("cao-bang", admit, START).unwrap();
        }
        let grant = Action::GrantFloor {
            site: "ha-quang".into(),
        };
        meeting.act("cao-bang", grant, START).unwrap();
        meeting
            .act("tra-linh", Action::RequestFloor, START)
            .unwrap();
        drain(&mut meeting);

        let lost = START + MINUTE;
        meeting.disconnect("ha-quang", PeerId(2), Departure::Lost, lost);
        let outputs = drain(&mut meeting);
        assert!(
            !outputs
                .iter()
                .any(|o| matches!(o, Output::Attendance { .. }))
        );
        let shown = site(&meeting, "ha-quang");
        assert!(shown.reconnecting && !shown.connected);
        assert_eq!(shown.attendance.status, AttendanceStatus::Present);
        assert_eq!(meeting.snapshot().floor.as_deref(), Some("ha-quang"));
        assert_eq!(meeting.poll_timeout(), Some(lost + GRACE));
        // Absent it is not: it is on its way back.
        let absent = Action::MarkAbsent {
            site: "ha-quang".into(),
            reason: "?".into(),
        };
        assert_eq!(
            meeting.act("cao-bang", absent, lost),
            Err(MeetingError::Present("ha-quang".into()))
        );

        // Back within the grace: straight in, same seat, same floor, same roll call.
        let back = lost + 30_000;
        meeting.handle_timeout(back);
        assert_eq!(
            meeting.connect("ha-quang", PeerId(5), back),
            Ok(Entry::Admitted)
        );
        let outputs = drain(&mut meeting);
        assert!(outputs.contains(&Output::Admit {
            site: "ha-quang".into(),
            peer: PeerId(5)
        }));
        assert_eq!(
            gate(&outputs, 5),
            Some(true),
            "the floor holder is heard again"
        );
        let shown = site(&meeting, "ha-quang");
        assert!(shown.connected && !shown.reconnecting);
        assert_eq!(shown.attendance.joined_at, Some(START));
        assert_eq!(shown.attendance.status, AttendanceStatus::Present);
        assert_eq!(meeting.snapshot().floor.as_deref(), Some("ha-quang"));

        // tra-linh is lost too and does not come back: left as of when it was lost, and
        // its request for the floor goes with it.
        meeting.disconnect("tra-linh", PeerId(3), Departure::Lost, back);
        meeting.handle_timeout(back + GRACE - 1);
        assert!(site(&meeting, "tra-linh").reconnecting);
        assert_eq!(meeting.snapshot().queue, ["tra-linh"]);
        meeting.handle_timeout(back + GRACE);
        let outputs = drain(&mut meeting);
        assert!(outputs.contains(&Output::Attendance {
            site: "tra-linh".into(),
            record: AttendanceRecord {
                status: AttendanceStatus::Left,
                joined_at: Some(START),
                left_at: Some(back),
                reason: None,
            }
        }));
        assert!(!site(&meeting, "tra-linh").reconnecting);
        assert!(meeting.snapshot().queue.is_empty());
        assert_eq!(meeting.poll_timeout(), None);
        // Now it waits in the lobby like any newcomer to an unopened meeting.
        assert_eq!(
            meeting.connect("tra-linh", PeerId(6), back + GRACE),
            Ok(Entry::Lobby)
        );
    }

    #[test]
    fn a_site_that_leaves_gives_up_its_seat_at_once() {
        let mut meeting = Meeting::new(plan(FloorMode::Chair), START);
        meeting.act("cao-bang", Action::Open, START).unwrap();
        meeting.connect("cao-bang", PeerId(1), START).unwrap();
        meeting.connect("ha-quang", PeerId(2), START).unwrap();
        let grant = Action::GrantFloor {
            site: "ha-quang".into(),
        };
        meeting.act("cao-bang", grant, START).unwrap();
        meeting.disconnect("ha-quang", PeerId(2), Departure::Left, START + MINUTE);
        assert_eq!(status(&meeting, "ha-quang"), AttendanceStatus::Left);
        assert!(!site(&meeting, "ha-quang").reconnecting);
        assert_eq!(meeting.snapshot().floor, None);
        // An observer lost holds no seat.
        meeting.connect("it", PeerId(4), START).unwrap();
        meeting.disconnect("it", PeerId(4), Departure::Lost, START + MINUTE);
        assert!(!site(&meeting, "it").reconnecting);
    }

    #[test]
    fn the_chairs_decisions_are_handed_out_for_storing_and_resume_after_a_restart() {
        let mut meeting = Meeting::new(plan(FloorMode::Chair), START);
        meeting.connect("cao-bang", PeerId(1), START).unwrap();
        meeting.act("cao-bang", Action::Open, START).unwrap();
        meeting.connect("ha-quang", PeerId(2), START).unwrap();
        meeting
            .connect("tra-linh", PeerId(3), START + 6 * MINUTE)
            .unwrap();
        let grant = Action::GrantFloor {
            site: "ha-quang".into(),
        };
        meeting.act("cao-bang", grant, START).unwrap();
        let mute = Action::Mute {
            site: "tra-linh".into(),
        };
        meeting.act("cao-bang", mute, START).unwrap();
        let layout = Action::SetLayout {
            sites: vec!["ha-quang".into()],
        };
        meeting.act("cao-bang", layout, START).unwrap();
        let outputs = drain(&mut meeting);
        let stored = outputs
            .iter()
            .rev()
            .find_map(|o| match o {
                Output::Run(run) => Some(run.clone()),
                _ => None,
            })
            .unwrap();
        assert_eq!(
            stored,
            RunState {
                opened: true,
                floor: Some("ha-quang".into()),
                queue: vec![],
                layout: vec!["ha-quang".into()],
                muted: vec!["tra-linh".into()],
            }
        );
        // Nothing changed, nothing to store.
        meeting.act("cao-bang", Action::RevokeFloor, START).unwrap();
        meeting
            .act(
                "cao-bang",
                Action::GrantFloor {
                    site: "ha-quang".into(),
                },
                START,
            )
            .unwrap();
        let run_outputs = drain(&mut meeting)
            .into_iter()
            .filter(|o| matches!(o, Output::Run(_)))
            .count();
        assert_eq!(run_outputs, 2);

        // The server restarts: the roll call and the run state come from the store.
        let records: Vec<(String, AttendanceRecord)> = meeting
            .snapshot()
            .sites
            .iter()
            .map(|s| (s.code.clone(), s.attendance.clone()))
            .collect();
        let restart = START + 20 * MINUTE;
        let mut resumed_plan = plan(FloorMode::Chair);
        resumed_plan.resume = Resume {
            run: Some(stored.clone()),
            attendance: records,
        };
        let mut resumed = Meeting::new(resumed_plan, restart);
        let snapshot = resumed.snapshot();
        assert!(snapshot.opened);
        assert_eq!(snapshot.floor.as_deref(), Some("ha-quang"));
        assert_eq!(snapshot.layout, ["ha-quang"]);
        for code in ["cao-bang", "ha-quang", "tra-linh"] {
            assert!(site(&resumed, code).reconnecting, "{code} holds its seat");
        }
        assert!(site(&resumed, "tra-linh").muted_by_chair);
        assert_eq!(
            site(&resumed, "tra-linh").attendance.status,
            AttendanceStatus::Late
        );
        assert_eq!(resumed.poll_timeout(), Some(restart + GRACE));

        // The sites come back and find everything as it was.
        resumed
            .connect("cao-bang", PeerId(11), restart + 2_000)
            .unwrap();
        resumed
            .connect("ha-quang", PeerId(12), restart + 2_000)
            .unwrap();
        let outputs = drain(&mut resumed);
        assert_eq!(gate(&outputs, 12), Some(true));
        assert_eq!(site(&resumed, "ha-quang").attendance.joined_at, Some(START));
        // Nothing the chair decided changed, so nothing is stored again.
        assert!(!outputs.iter().any(|o| matches!(o, Output::Run(_))));
        // tra-linh never comes back: left as of the restart.
        resumed.handle_timeout(restart + GRACE);
        assert_eq!(status(&resumed, "tra-linh"), AttendanceStatus::Left);
        assert_eq!(site(&resumed, "tra-linh").attendance.left_at, Some(restart));
    }
}
