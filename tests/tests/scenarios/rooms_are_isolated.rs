//! Two rooms in use at once never see each other's media or participants, while media flows fully within each.

use std::time::Duration;

use anyhow::{Context, bail};
use cau_tests::client::{ClientConfig, MediaKind, TestClient, parse_tagged_payload, warm_up};
use cau_tests::server::start_test_server;
use serde_json::Value;

/// Packets of each kind that each participant sends.
const PACKETS: u32 = 100;

/// The pause after each participant's pair of packets; see `webrtc_clients_exchange_media.rs`.
const PACE: Duration = Duration::from_millis(10);

/// How long media may take to start, and the last packet to arrive.
const TIMEOUT: Duration = Duration::from_secs(10);

const ROOMS: [(&str, [&str; 2]); 2] = [("east", ["anh", "binh"]), ("west", ["chau", "dung"])];

#[tokio::test(flavor = "multi_thread")]
async fn rooms_are_isolated() -> anyhow::Result<()> {
    let server = start_test_server().await?;

    // Joined alternately, so that each room's negotiation interleaves with the other's.
    let mut members: Vec<Member> = Vec::new();
    for seat in 0..2 {
        for (room, names) in ROOMS {
            let name = names[seat];
            let config = ClientConfig::new(server.ws_url(), room, name);
            let client = TestClient::join(config)
                .await
                .with_context(|| format!("{name} joining {room}"))?;
            members.push(Member { room, name, client });
        }
    }
    for (room, _) in ROOMS {
        let group: Vec<&TestClient> = members
            .iter()
            .filter(|member| member.room == room)
            .map(|member| &member.client)
            .collect();
        warm_up(&group, TIMEOUT)
            .await
            .with_context(|| format!("warming up {room}"))?;
    }

    // Both rooms send at once.
    let sends = members.iter().map(|member| async move {
        let tag = member.tag();
        for index in 0..PACKETS {
            member
                .client
                .send_tagged(&tag, MediaKind::Audio, index)
                .await?;
            member
                .client
                .send_tagged(&tag, MediaKind::Video, index)
                .await?;
            tokio::time::sleep(PACE).await;
        }
        anyhow::Ok(())
    });
    for sent in futures_util::future::join_all(sends).await {
        sent?;
    }

    let mut problems = Vec::new();
    for receiver in &members {
        let roommate = members
            .iter()
            .find(|other| other.room == receiver.room && other.name != receiver.name)
            .context("every room has two members")?;
        let roommate_tag = roommate.tag();
        let complete = |client: &TestClient| {
            let packets = client.received();
            [MediaKind::Audio, MediaKind::Video].iter().all(|&kind| {
                packets
                    .iter()
                    .filter(|packet| {
                        packet.kind == kind
                            && parse_tagged_payload(kind, &packet.payload)
                                .is_some_and(|tagged| tagged.tag == roommate_tag)
                    })
                    .count()
                    >= PACKETS as usize
            })
        };
        // On a timeout the checks below say what is missing.
        let _ = receiver
            .client
            .wait_until("every packet of the roommate", TIMEOUT, complete)
            .await;
        for kind in [MediaKind::Audio, MediaKind::Video] {
            if let Err(problem) = receiver.client.check_received_exactly(
                roommate.client.participant_id(),
                kind,
                &roommate_tag,
                PACKETS,
            ) {
                problems.push(format!("{problem:#}"));
            }
        }
        problems.extend(leaks_into(receiver, &members));
        for failure in receiver.client.failures() {
            problems.push(format!("{}: {failure}", receiver.describe()));
        }
    }

    for member in members {
        let who = member.describe();
        member
            .client
            .leave()
            .await
            .with_context(|| format!("{who} leaving"))?;
    }
    server.shutdown(Duration::from_secs(1)).await;
    if !problems.is_empty() {
        bail!("{} problems:\n{}", problems.len(), problems.join("\n"));
    }
    Ok(())
}

struct Member {
    room: &'static str,
    name: &'static str,
    client: TestClient,
}

impl Member {
    /// Names the room in every payload, so a packet that crossed rooms gives itself away.
    fn tag(&self) -> String {
        format!("{}/{}", self.room, self.name)
    }

    fn describe(&self) -> String {
        format!(
            "{} ({} in {})",
            self.client.participant_id(),
            self.name,
            self.room
        )
    }
}

/// Everything from the other room that reached `receiver`: media by the room or participant
/// its payload names, whoever the server said it was from, and participants named in
/// signaling (`joined`, `participant_joined`, the `tracks` of offers).
fn leaks_into(receiver: &Member, members: &[Member]) -> Vec<String> {
    let strangers: Vec<&str> = members
        .iter()
        .filter(|member| member.room != receiver.room)
        .map(|member| member.client.participant_id())
        .collect();
    let me = receiver.describe();
    let mut leaks = Vec::new();
    for packet in receiver.client.received() {
        let tag = parse_tagged_payload(packet.kind, &packet.payload).map(|tagged| tagged.tag);
        let tag_is_foreign = tag.as_deref().is_some_and(|tag| {
            let origin = tag.strip_prefix("warm-up/").unwrap_or(tag);
            let own_room = tag.starts_with(&format!("{}/", receiver.room));
            strangers.contains(&origin) || (!tag.starts_with("warm-up/") && !own_room)
        });
        if tag.is_none() || tag_is_foreign || strangers.contains(&packet.from.as_str()) {
            leaks.push(format!(
                "{me}: a {:?} packet tagged {tag:?}, said to be from {}",
                packet.kind, packet.from
            ));
        }
    }
    for message in receiver.client.messages() {
        let named = participants_named(&message);
        if named.iter().any(|id| strangers.contains(&id.as_str())) {
            leaks.push(format!(
                "{me}: a message names the other room's participants: {message}"
            ));
        }
    }
    leaks
}

/// The participant ids a server message names.
fn participants_named(message: &Value) -> Vec<String> {
    let mut ids = Vec::new();
    let mut add = |value: Option<&Value>| {
        if let Some(id) = value.and_then(Value::as_str) {
            ids.push(id.to_owned());
        }
    };
    add(message.get("participant_id"));
    add(message.pointer("/participant/id"));
    for list in ["participants", "tracks"] {
        for entry in message
            .get(list)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            add(entry.get("id"));
            add(entry.get("participant_id"));
        }
    }
    ids
}
