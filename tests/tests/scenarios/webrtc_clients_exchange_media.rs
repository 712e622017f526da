//! Three webrtc-rs participants in one room each receive all of the other two's audio and video, every packet byte for byte, from the right sender.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Context, bail};
use cau_tests::client::{ClientConfig, MediaKind, TestClient, parse_tagged_payload, warm_up};
use cau_tests::server::start_test_server;

/// Packets of each kind that each participant sends.
const PACKETS: u32 = 100;

/// The pause after each participant's pair of packets (one audio, one video): half the
/// real audio rate, so the whole exchange takes about two seconds yet never piles up packets
/// faster than a loaded two-core machine drains its sockets.
const PACE: Duration = Duration::from_millis(10);

/// How long media may take to start, and the last packet to arrive. Loopback takes
/// milliseconds; the margin is for a loaded CI machine.
const TIMEOUT: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread")]
async fn webrtc_clients_exchange_media() -> anyhow::Result<()> {
    let server = start_test_server().await?;
    let names = ["anh", "binh", "chi"];
    let mut clients = Vec::new();
    for name in names {
        let config = ClientConfig::new(server.ws_url(), "hanoi", name);
        let client = TestClient::join(config)
            .await
            .with_context(|| format!("{name} joining"))?;
        clients.push(client);
    }
    let group: Vec<&TestClient> = clients.iter().collect();
    warm_up(&group, TIMEOUT).await?;

    // Everyone sends at once, as in a meeting.
    let sends = clients.iter().zip(names).map(|(client, name)| async move {
        for index in 0..PACKETS {
            client.send_tagged(name, MediaKind::Audio, index).await?;
            client.send_tagged(name, MediaKind::Video, index).await?;
            tokio::time::sleep(PACE).await;
        }
        anyhow::Ok(())
    });
    for sent in futures_util::future::join_all(sends).await {
        sent?;
    }

    let id_of_name: HashMap<&str, &str> = names
        .iter()
        .zip(&clients)
        .map(|(name, client)| (*name, client.participant_id()))
        .collect();
    let mut problems = Vec::new();
    for receiver in &clients {
        let expected = |client: &TestClient| {
            let packets = client.received();
            names.iter().all(|name| {
                id_of_name[name] == client.participant_id()
                    || [MediaKind::Audio, MediaKind::Video].iter().all(|&kind| {
                        let count = packets
                            .iter()
                            .filter(|packet| {
                                packet.kind == kind
                                    && parse_tagged_payload(kind, &packet.payload)
                                        .is_some_and(|tagged| tagged.tag == *name)
                            })
                            .count();
                        count >= PACKETS as usize
                    })
            })
        };
        // On a timeout the checks below say what is missing.
        let _ = receiver
            .wait_until("every packet of the other two", TIMEOUT, expected)
            .await;
        for (name, sender) in names.iter().zip(&clients) {
            if sender.participant_id() == receiver.participant_id() {
                continue;
            }
            for kind in [MediaKind::Audio, MediaKind::Video] {
                if let Err(problem) =
                    receiver.check_received_exactly(sender.participant_id(), kind, name, PACKETS)
                {
                    problems.push(format!("{problem:#}"));
                }
            }
        }
        problems.extend(attribution_problems(receiver, &id_of_name));
        for failure in receiver.failures() {
            problems.push(format!("{}: {failure}", receiver.participant_id()));
        }
    }

    for client in clients {
        let id = client.participant_id().to_owned();
        client
            .leave()
            .await
            .with_context(|| format!("{id} leaving"))?;
    }
    server.shutdown(Duration::from_secs(1)).await;
    if !problems.is_empty() {
        bail!("{} problems:\n{}", problems.len(), problems.join("\n"));
    }
    Ok(())
}

/// Checks that the server said truly whose each packet is: the payload names its sender,
/// and the `tracks` of the server's offer (by `mid`) and the stream id must both name the same
/// participant, who is never the receiver itself.
fn attribution_problems(receiver: &TestClient, id_of_name: &HashMap<&str, &str>) -> Vec<String> {
    let me = receiver.participant_id();
    let tracks = receiver.remote_tracks();
    let mut problems = Vec::new();
    for packet in receiver.received() {
        let Some(tagged) = parse_tagged_payload(packet.kind, &packet.payload) else {
            problems.push(format!(
                "{me}: an untagged {:?} packet from {}",
                packet.kind, packet.from
            ));
            continue;
        };
        let sender = tagged
            .tag
            .strip_prefix("warm-up/")
            .or_else(|| id_of_name.get(tagged.tag.as_str()).copied());
        let line = packet
            .mid
            .as_ref()
            .and_then(|mid| tracks.iter().find(|track| &track.mid == mid));
        let consistent = sender == Some(packet.from.as_str())
            && packet.stream_id == packet.from
            && packet.from != me
            && line
                .is_some_and(|line| line.participant_id == packet.from && line.kind == packet.kind);
        if !consistent {
            problems.push(format!(
                "{me}: packet tagged {:?} index {} attributed to {} (stream id {}, mid {:?}, line {line:?})",
                tagged.tag, tagged.index, packet.from, packet.stream_id, packet.mid
            ));
        }
    }
    problems
}
