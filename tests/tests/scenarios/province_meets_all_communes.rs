//! A province-wide meeting of 57 webrtc-rs sites (the province chairs, all 56 communes and wards invited): every commune receives the chair's video and audio, the chair receives every commune's video, the floor holder is heard everywhere, and no commune receives another's video unasked.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use cau_signaling::model::format_time;
use cau_tests::api::{ADMIN_TOKEN, now_millis, request};
use cau_tests::client::{ClientConfig, MediaKind, TestClient, parse_tagged_payload};
use cau_tests::server::start_test_server_with;
use serde_json::json;

/// Joining 57 sites and renegotiating with each takes a while on two cores.
const TIMEOUT: Duration = Duration::from_secs(60);
/// The floor holder.
const SPEAKER: &str = "quang-lam";

#[tokio::test(flavor = "multi_thread")]
async fn province_meets_all_communes() -> anyhow::Result<()> {
    let started = Instant::now();
    let server = start_test_server_with(&format!(
        "[admin]\ntoken = \"{ADMIN_TOKEN}\"\n[limits]\nmax_participants_per_room = 64"
    ))
    .await?;
    let now = now_millis();
    let body = json!({
        "title": "Hội nghị trực tuyến toàn tỉnh",
        "start": format_time(now - 60_000),
        "end": format_time(now + 3_600_000),
        "chair": "cao-bang",
        "all_communes": true,
        "floor_mode": "chair",
    });
    let (status, meeting) =
        request(server.http_addr(), "POST", "/api/meetings", Some(&body)).await?;
    if status != 201 {
        bail!("creating the meeting answered {status}: {meeting}");
    }
    let links: Vec<(String, String)> = meeting["links"]
        .as_array()
        .context("no links")?
        .iter()
        .filter_map(|l| {
            let token = l["url"].as_str()?.split_once("token=")?.1.to_owned();
            Some((l["site"].as_str()?.to_owned(), token))
        })
        .collect();
    let communes: Vec<&(String, String)> = links
        .iter()
        .filter(|(site, _)| site != "cao-bang")
        .collect();
    if communes.len() != 56 {
        bail!("expected 56 communes invited, got {}", communes.len());
    }
    let chair_token = &links
        .iter()
        .find(|(site, _)| site == "cao-bang")
        .context("no chair link")?
        .1;

    let ws = server.ws_url();
    let chair = TestClient::join(ClientConfig::with_token(ws.clone(), chair_token.clone())).await?;
    chair.send_raw(r#"{"type":"open_meeting"}"#).await?;
    // Join in batches of eight: a burst of 56 DTLS handshakes at once on two cores
    // would measure the machine, not the server.
    let mut sites: Vec<(String, TestClient)> = Vec::new();
    for batch in communes.chunks(8) {
        let joins = batch.iter().map(|(site, token)| {
            let config = ClientConfig::with_token(ws.clone(), token.clone());
            async move {
                TestClient::join(config)
                    .await
                    .with_context(|| format!("{site} joining"))
            }
        });
        for (client, (site, _)) in futures_util::future::join_all(joins)
            .await
            .into_iter()
            .zip(batch)
        {
            sites.push((site.clone(), client?));
        }
    }
    println!("57 sites joined after {:?}", started.elapsed());
    let id_of = |code: &str| {
        sites
            .iter()
            .find(|(s, _)| s == code)
            .map(|(_, c)| c.participant_id().to_owned())
    };
    let speaker_id = id_of(SPEAKER).context("no floor holder")?;

    // The chair is seen and heard in every commune.
    let everyone_has_the_chair = || {
        sites.iter().all(|(_, c)| {
            count(c, chair.participant_id(), MediaKind::Video, "chair") >= 3
                && count(c, chair.participant_id(), MediaKind::Audio, "chair") >= 3
        })
    };
    let mut index = 0;
    send_until(&[&chair], "chair", &mut index, everyone_has_the_chair)
        .await
        .context("the chair did not reach every commune")?;
    println!(
        "every commune sees and hears the chair after {:?}",
        started.elapsed()
    );

    // Every commune is seen by the chair.
    let communes_only: Vec<&TestClient> = sites.iter().map(|(_, c)| c).collect();
    let chair_sees_all = || {
        sites
            .iter()
            .all(|(_, c)| count(&chair, c.participant_id(), MediaKind::Video, "site") >= 3)
    };
    let mut index = 0;
    send_until(&communes_only, "site", &mut index, chair_sees_all)
        .await
        .context("the chair did not receive every commune's video")?;

    // The floor holder is heard by the chair and by every other commune.
    chair
        .send_raw(&format!(r#"{{"type":"grant_floor","site":"{SPEAKER}"}}"#))
        .await?;
    let speaker = &sites
        .iter()
        .find(|(s, _)| s == SPEAKER)
        .context("no speaker")?
        .1;
    let all_hear_the_speaker = || {
        count(&chair, &speaker_id, MediaKind::Audio, "floor") >= 3
            && sites
                .iter()
                .filter(|(s, _)| s != SPEAKER)
                .all(|(_, c)| count(c, &speaker_id, MediaKind::Audio, "floor") >= 3)
    };
    let mut index = 0;
    send_until(&[speaker], "floor", &mut index, all_hear_the_speaker)
        .await
        .context("the floor holder was not heard everywhere")?;
    println!(
        "the floor holder is heard everywhere after {:?}",
        started.elapsed()
    );

    // No commune received another commune's video or audio, but the floor holder's.
    for (site, client) in &sites {
        let stray = client
            .received()
            .iter()
            .filter(|p| p.from != chair.participant_id() && p.from != speaker_id)
            .count();
        if stray > 0 {
            bail!("{site} received {stray} packets from communes it was not meant to");
        }
    }
    let stats = server.sfu_stats();
    println!("{stats:?}");
    Ok(())
}

/// Packets tagged `tag` of `kind` that `listener` received from participant `from`.
fn count(listener: &TestClient, from: &str, kind: MediaKind, tag: &str) -> usize {
    listener
        .received()
        .iter()
        .filter(|p| p.from == from && p.kind == kind)
        .filter(|p| {
            parse_tagged_payload(kind, &p.payload).is_some_and(|t| t.tag == tag && t.intact)
        })
        .count()
}

/// Every sender sends one tagged audio and video packet every 50 ms until `done` holds.
async fn send_until(
    senders: &[&TestClient],
    tag: &str,
    index: &mut u32,
    done: impl Fn() -> bool,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + TIMEOUT;
    while !done() {
        if Instant::now() > deadline {
            bail!("timed out after {TIMEOUT:?}");
        }
        for sender in senders {
            sender.send_tagged(tag, MediaKind::Audio, *index).await?;
            sender.send_tagged(tag, MediaKind::Video, *index).await?;
        }
        *index += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}
