//! In a chair-controlled meeting between sites, a commune waits in the lobby until the chair opens the meeting, is heard by no one until the chair gives it the floor, is heard by everyone while it holds the floor, and by no one again once the chair takes it back.

use std::time::Duration;

use anyhow::{Context, bail};
use cau_tests::api::{admin_config, link_for, now_millis, schedule, token_in};
use cau_tests::client::{ClientConfig, MediaKind, TestClient, parse_tagged_payload};
use cau_tests::server::start_test_server_with;
use serde_json::{Value, json};

const TIMEOUT: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread")]
async fn chair_gives_and_takes_the_floor() -> anyhow::Result<()> {
    let server = start_test_server_with(&admin_config()).await?;
    let now = now_millis();
    let meeting = schedule(
        server.http_addr(),
        now - 60_000,
        now + 3_600_000,
        &["ha-quang", "tra-linh"],
    )
    .await?;
    let token = |site: &str| link_for(&meeting, site).and_then(|link| token_in(&link));

    // The communes wait in the lobby; the chair enters at once and opens the meeting.
    let ws = server.ws_url();
    let (ha_quang_token, tra_linh_token) = (token("ha-quang")?, token("tra-linh")?);
    let ha_quang = tokio::spawn(TestClient::join(ClientConfig::with_token(
        ws.clone(),
        ha_quang_token,
    )));
    let tra_linh = tokio::spawn(TestClient::join(ClientConfig::with_token(
        ws.clone(),
        tra_linh_token,
    )));
    let chair = TestClient::join(ClientConfig::with_token(ws.clone(), token("cao-bang")?)).await?;
    let chair_sees_lobby = chair
        .wait_until("both communes in the lobby", TIMEOUT, |c| {
            c.messages_of_type("meeting_state")
                .last()
                .is_some_and(|state| {
                    let waiting = |code: &str| {
                        state["sites"].as_array().is_some_and(|sites| {
                            sites
                                .iter()
                                .any(|s| s["code"] == code && s["in_lobby"] == true)
                        })
                    };
                    waiting("ha-quang") && waiting("tra-linh")
                })
        })
        .await;
    chair_sees_lobby?;
    if ha_quang.is_finished() || tra_linh.is_finished() {
        bail!("a commune got in before the chair opened the meeting");
    }
    chair.send_raw(r#"{"type":"open_meeting"}"#).await?;
    let ha_quang = ha_quang.await??;
    let tra_linh = tra_linh.await??;
    for commune in [&ha_quang, &tra_linh] {
        if commune.messages_of_type("lobby").is_empty() {
            bail!(
                "{} entered without waiting in the lobby",
                commune.participant_id()
            );
        }
    }

    // The chair is heard: its audio reaches both communes.
    let mut index = 0;
    for commune in [&ha_quang, &tra_linh] {
        keep_sending(&chair, "chair", &mut index, || {
            count_from(commune, chair.participant_id(), "chair") >= 5
        })
        .await
        .with_context(|| format!("{} never heard the chair", commune.participant_id()))?;
    }

    // Without the floor, ha-quang is heard by no one, whatever it sends.
    for i in 0..50 {
        ha_quang.send_tagged("unheard", MediaKind::Audio, i).await?;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    for listener in [&chair, &tra_linh] {
        let heard = count_from(listener, ha_quang.participant_id(), "unheard");
        if heard > 0 {
            bail!(
                "{} heard {heard} packets of ha-quang without the floor",
                listener.participant_id()
            );
        }
    }

    // ha-quang asks; the chair grants: now everyone hears it, intact.
    ha_quang.send_raw(r#"{"type":"request_floor"}"#).await?;
    chair
        .wait_until("ha-quang in the floor queue", TIMEOUT, |c| {
            c.messages_of_type("meeting_state")
                .last()
                .is_some_and(|s| s["queue"] == json!(["ha-quang"]))
        })
        .await?;
    chair
        .send_raw(r#"{"type":"grant_floor","site":"ha-quang"}"#)
        .await?;
    let mut index = 0;
    keep_sending(&ha_quang, "floor", &mut index, || {
        count_from(&chair, ha_quang.participant_id(), "floor") >= 20
            && count_from(&tra_linh, ha_quang.participant_id(), "floor") >= 20
    })
    .await
    .context("ha-quang was not heard with the floor")?;
    for listener in [&chair, &tra_linh] {
        let damaged = listener
            .received()
            .iter()
            .filter(|p| p.from == ha_quang.participant_id() && p.kind == MediaKind::Audio)
            .filter_map(|p| parse_tagged_payload(MediaKind::Audio, &p.payload))
            .filter(|t| t.tag == "floor" && !t.intact)
            .count();
        if damaged > 0 {
            bail!(
                "{} received {damaged} damaged packets",
                listener.participant_id()
            );
        }
    }

    // The chair takes the floor back: silence again.
    chair.send_raw(r#"{"type":"revoke_floor"}"#).await?;
    chair
        .wait_until("the floor to be free", TIMEOUT, |c| {
            c.messages_of_type("meeting_state")
                .last()
                .is_some_and(|s| s["floor"].is_null())
        })
        .await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before: Vec<usize> = [&chair, &tra_linh]
        .iter()
        .map(|l| count_from(l, ha_quang.participant_id(), "revoked"))
        .collect();
    for i in 0..50 {
        ha_quang.send_tagged("revoked", MediaKind::Audio, i).await?;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    for (listener, before) in [&chair, &tra_linh].iter().zip(before) {
        let after = count_from(listener, ha_quang.participant_id(), "revoked");
        if after != before || after != 0 {
            bail!(
                "{} still heard ha-quang after the floor was revoked ({after} packets)",
                listener.participant_id()
            );
        }
    }

    // The roll call saw all three arrive.
    let state = chair
        .messages_of_type("meeting_state")
        .last()
        .cloned()
        .unwrap_or(Value::Null);
    for code in ["cao-bang", "ha-quang", "tra-linh"] {
        let site = state["sites"]
            .as_array()
            .and_then(|s| s.iter().find(|s| s["code"] == code));
        let status = site.map(|s| s["attendance"]["status"].clone());
        if status != Some(json!("present")) {
            bail!("{code} should be present in the roll call: {site:?}");
        }
    }
    for client in [chair, ha_quang, tra_linh] {
        client.leave().await?;
    }
    Ok(())
}

/// Audio packets tagged `tag` that `listener` received from participant `from`.
fn count_from(listener: &TestClient, from: &str, tag: &str) -> usize {
    listener
        .received()
        .iter()
        .filter(|p| p.from == from && p.kind == MediaKind::Audio)
        .filter(|p| {
            parse_tagged_payload(MediaKind::Audio, &p.payload).is_some_and(|t| t.tag == tag)
        })
        .count()
}

/// Sends tagged audio every 20 ms until `done` holds: a new subscription takes one
/// renegotiation before packets flow, and no message says when it is complete.
async fn keep_sending(
    sender: &TestClient,
    tag: &str,
    index: &mut u32,
    done: impl Fn() -> bool,
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while !done() {
        if tokio::time::Instant::now() > deadline {
            bail!("timed out after {TIMEOUT:?}");
        }
        sender.send_tagged(tag, MediaKind::Audio, *index).await?;
        *index += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}
