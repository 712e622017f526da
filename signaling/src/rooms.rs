//! Who is in which room, and the outbox of each participant.
//!
//! Every session task reads and changes this, so it lives behind one mutex, in the
//! shell, as mini-redis keeps its `Db`: each operation is a few map updates, the lock
//! is never held across an `.await`, and messages to others are queued on their
//! unbounded outboxes rather than written to their sockets under the lock.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;

use cau_sfu::{PeerId, RoomId};
use tokio::sync::mpsc::UnboundedSender;

use crate::protocol::{
    DisplayName, ErrorCode, Kind, Participant, ProtocolError, RoomName, ServerMessage,
};
use crate::session::{Outbound, wire_text};

/// A media room: an ad-hoc room named by its participants, or a scheduled meeting's.
/// The two never mix, whatever name an ad-hoc participant types.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RoomKey {
    AdHoc(RoomName),
    Meeting(String),
}

impl fmt::Display for RoomKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RoomKey::AdHoc(name) => write!(f, "{name}"),
            RoomKey::Meeting(id) => write!(f, "meeting {id}"),
        }
    }
}

/// The registry of rooms.
pub struct Rooms {
    inner: Mutex<Inner>,
    max_per_room: usize,
    max_total: usize,
}

struct Inner {
    rooms: HashMap<RoomKey, Room>,
    next_room: u64,
    total: usize,
}

struct Room {
    id: RoomId,
    members: Vec<Member>,
}

struct Member {
    peer: PeerId,
    name: DisplayName,
    site: Option<String>,
    audio_muted: bool,
    video_muted: bool,
    /// Kinds whose track reached the SFU, to announce as unpublished at departure.
    published: Vec<Kind>,
    outbox: UnboundedSender<Outbound>,
}

/// What a participant learns when it enters a room.
pub struct Entry {
    pub room: RoomId,
    pub others: Vec<Participant>,
}

impl Rooms {
    pub fn new(max_per_room: usize, max_total: usize) -> Rooms {
        Rooms {
            inner: Mutex::new(Inner {
                rooms: HashMap::new(),
                next_room: 1,
                total: 0,
            }),
            max_per_room,
            max_total,
        }
    }

    /// Adds a participant and tells the others. Refused when the room or server is full.
    pub fn enter(
        &self,
        room: &RoomKey,
        peer: PeerId,
        name: DisplayName,
        site: Option<String>,
        outbox: UnboundedSender<Outbound>,
    ) -> Result<Entry, ProtocolError> {
        let mut inner = self.lock();
        if inner.total >= self.max_total {
            return Err(ProtocolError::new(
                ErrorCode::ServerFull,
                format!(
                    "the server has its maximum of {} participants",
                    self.max_total
                ),
            ));
        }
        if inner
            .rooms
            .get(room)
            .is_some_and(|r| r.members.len() >= self.max_per_room)
        {
            return Err(ProtocolError::new(
                ErrorCode::RoomFull,
                format!(
                    "room {room} has its maximum of {} participants",
                    self.max_per_room
                ),
            ));
        }
        let next_room = inner.next_room;
        let entry = inner.rooms.entry(room.clone()).or_insert_with(|| Room {
            id: RoomId(next_room),
            members: Vec::new(),
        });
        let created = entry.id == RoomId(next_room);
        let member = Member {
            peer,
            name,
            site,
            audio_muted: false,
            video_muted: false,
            published: Vec::new(),
            outbox,
        };
        let joined = ServerMessage::ParticipantJoined {
            participant: member.describe(),
        };
        let others = entry.members.iter().map(Member::describe).collect();
        if let Some(text) = wire_text(&joined) {
            for other in &entry.members {
                let _ = other.outbox.send(Outbound::Text(text.clone()));
            }
        }
        entry.members.push(member);
        let id = entry.id;
        if created {
            inner.next_room += 1;
        }
        inner.total += 1;
        Ok(Entry { room: id, others })
    }

    /// Removes a participant, if present, and tells the others why it left.
    pub fn leave(&self, room: &RoomKey, peer: PeerId, reason: crate::protocol::LeaveReason) {
        let mut inner = self.lock();
        let Some(entry) = inner.rooms.get_mut(room) else {
            return;
        };
        let Some(position) = entry.members.iter().position(|m| m.peer == peer) else {
            return;
        };
        let member = entry.members.remove(position);
        let mut news: Vec<ServerMessage> = member
            .published
            .iter()
            .map(|&kind| ServerMessage::TrackUnpublished {
                participant_id: peer.to_string(),
                kind,
            })
            .collect();
        news.push(ServerMessage::ParticipantLeft {
            participant_id: peer.to_string(),
            reason,
        });
        let news: Vec<_> = news.iter().filter_map(wire_text).collect();
        for other in &entry.members {
            for text in &news {
                let _ = other.outbox.send(Outbound::Text(text.clone()));
            }
        }
        if entry.members.is_empty() {
            inner.rooms.remove(room);
        }
        inner.total -= 1;
    }

    /// Sends `message` to every participant of `room` but `from`.
    pub fn broadcast(&self, room: &RoomKey, from: PeerId, message: ServerMessage) {
        let inner = self.lock();
        let Some(entry) = inner.rooms.get(room) else {
            return;
        };
        let Some(text) = wire_text(&message) else {
            return;
        };
        for other in entry.members.iter().filter(|m| m.peer != from) {
            let _ = other.outbox.send(Outbound::Text(text.clone()));
        }
    }

    /// Records that a participant's track of `kind` reached the SFU, and tells the others.
    pub fn publish(&self, room: &RoomKey, peer: PeerId, kind: Kind) {
        self.update_member(room, peer, |member| {
            if !member.published.contains(&kind) {
                member.published.push(kind);
            }
        });
        let message = ServerMessage::TrackPublished {
            participant_id: peer.to_string(),
            kind,
        };
        self.broadcast(room, peer, message);
    }

    /// Records a participant's mute state and tells the others.
    pub fn set_muted(&self, room: &RoomKey, peer: PeerId, kind: Kind, muted: bool) {
        self.update_member(room, peer, |member| match kind {
            Kind::Audio => member.audio_muted = muted,
            Kind::Video => member.video_muted = muted,
            // Sharing starts and stops are relayed; a newcomer sees a share by its
            // pictures arriving.
            Kind::Screen => {}
        });
        let message = ServerMessage::Mute {
            participant_id: peer.to_string(),
            kind,
            muted,
        };
        self.broadcast(room, peer, message);
    }

    /// Changes one member's record, if it is still in the room.
    fn update_member(&self, room: &RoomKey, peer: PeerId, change: impl FnOnce(&mut Member)) {
        let mut inner = self.lock();
        let member = inner
            .rooms
            .get_mut(room)
            .and_then(|r| r.members.iter_mut().find(|m| m.peer == peer));
        if let Some(member) = member {
            change(member);
        }
    }

    /// Participants in all rooms.
    pub fn participant_count(&self) -> usize {
        self.lock().total
    }

    pub fn room_count(&self) -> usize {
        self.lock().rooms.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding this lock would be a bug in the few map updates above;
        // the maps stay consistent between statements, so a poisoned lock is still usable.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Member {
    fn describe(&self) -> Participant {
        Participant {
            id: self.peer.to_string(),
            name: self.name.as_str().to_owned(),
            site: self.site.clone(),
            audio_muted: self.audio_muted,
            video_muted: self.video_muted,
        }
    }
}
