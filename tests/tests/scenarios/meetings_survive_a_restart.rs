//! Meetings, their join links, the roll call, what the chair decided (the meeting open,
//! the layout, a muted site) and edits to the site directory are all intact after the
//! server is stopped and started again on the same data directory.

use std::time::Duration;

use anyhow::{Context, bail};
use cau_tests::api::{admin_config, link_for, now_millis, request, schedule, token_in};
use cau_tests::raw::RawSocket;
use cau_tests::server::{fresh_data_dir, start_test_server_with};
use serde_json::{Value, json};

const TIMEOUT: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread")]
async fn meetings_survive_a_restart() -> anyhow::Result<()> {
    let data_dir = fresh_data_dir()?;
    let config = format!(
        "{}[storage]\ndata_dir = {:?}\n",
        admin_config(),
        data_dir.display().to_string()
    );
    let server = start_test_server_with(&config).await?;
    let addr = server.http_addr();
    let now = now_millis();
    let meeting = schedule(
        addr,
        now - 60_000,
        now + 3_600_000,
        &["ha-quang", "tra-linh"],
    )
    .await?;
    let id = meeting["id"].as_str().context("no id")?.to_owned();
    let (status, _) = request(
        addr,
        "PUT",
        "/api/sites/ha-quang",
        Some(&json!({"name": "Xã Hà Quảng (mới)", "tier": "commune", "kind": "commune"})),
    )
    .await?;
    if status != 200 {
        bail!("renaming a site answered {status}");
    }

    // The chair comes and marks tra-linh absent: both go into the roll call.
    let chair_token = token_in(&link_for(&meeting, "cao-bang")?)?;
    let mut chair = RawSocket::connect(&server.ws_url()).await?;
    chair
        .send_text(json!({"type": "join", "token": chair_token}).to_string())
        .await?;
    chair.expect_type("joined").await?;
    chair
        .send_text(
            json!({"type": "mark_absent", "site": "tra-linh", "reason": "mất điện"}).to_string(),
        )
        .await?;
    wait_for_roll_call(addr, &id, "present").await?;
    for decision in [
        json!({"type": "open_meeting"}),
        json!({"type": "set_layout", "sites": ["ha-quang"]}),
        json!({"type": "mute_site", "site": "ha-quang"}),
    ] {
        chair.send_text(decision.to_string()).await?;
    }
    chair.drain(Duration::from_millis(300)).await;
    // The chair leaves: its departure is recorded too, before the server stops.
    chair
        .send_text(json!({"type": "leave"}).to_string())
        .await?;
    chair.expect_type("left").await?;
    let roll_before = wait_for_roll_call(addr, &id, "left").await?;

    let meeting_before = request(addr, "GET", &format!("/api/meetings/{id}"), None)
        .await?
        .1;
    let sites_before = request(addr, "GET", "/api/sites", None).await?.1;
    server.shutdown(Duration::from_secs(1)).await;

    let server = start_test_server_with(&config).await?;
    let addr = server.http_addr();
    let meeting_after = request(addr, "GET", &format!("/api/meetings/{id}"), None)
        .await?
        .1;
    let sites_after = request(addr, "GET", "/api/sites", None).await?.1;
    let roll_after = request(addr, "GET", &format!("/api/meetings/{id}/attendance"), None)
        .await?
        .1;
    let same = |what: &str, before: &Value, after: &Value| {
        // Join links name the server's address, which a restart on port 0 changes.
        let strip = |v: &Value| v.to_string().replace(&before_host(before), "HOST");
        if strip(before) != strip(after).replace(&before_host(after), "HOST") {
            bail!("{what} changed across the restart:\nbefore {before}\nafter  {after}");
        }
        Ok(())
    };
    same("the meeting", &meeting_before, &meeting_after)?;
    same("the site directory", &sites_before, &sites_after)?;
    same("the roll call", &roll_before, &roll_after)?;
    if !sites_after.to_string().contains("Xã Hà Quảng (mới)") {
        bail!("the renamed site lost its name: {sites_after}");
    }

    // The old join link still admits its site.
    let mut chair = RawSocket::connect(&server.ws_url()).await?;
    chair
        .send_text(json!({"type": "join", "token": chair_token}).to_string())
        .await?;
    chair
        .expect_type("joined")
        .await
        .context("the chair's link after the restart")?;
    // The meeting resumes as the chair left it.
    let state = chair.expect_type("meeting_state").await?;
    let ha_quang = state["sites"]
        .as_array()
        .and_then(|sites| sites.iter().find(|s| s["code"] == "ha-quang"))
        .context("ha-quang is not in the meeting's state")?;
    if state["opened"] != true || state["layout"] != json!(["ha-quang"]) {
        bail!("the meeting did not resume open with its layout: {state}");
    }
    if ha_quang["muted_by_chair"] != true {
        bail!("ha-quang is no longer muted by the chair: {state}");
    }
    Ok(())
}

/// Polls the roll call until the chair's status is `chair` and tra-linh is absent
/// (records are written in the background, in order).
async fn wait_for_roll_call(
    addr: std::net::SocketAddr,
    id: &str,
    chair: &str,
) -> anyhow::Result<Value> {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let (_, roll) =
            request(addr, "GET", &format!("/api/meetings/{id}/attendance"), None).await?;
        let status_of = |code: &str| {
            roll.as_array()
                .and_then(|lines| lines.iter().find(|l| l["site"]["code"] == code))
                .map(|l| (l["status"].clone(), l["reason"].clone()))
        };
        let chair_present = status_of("cao-bang").is_some_and(|(s, _)| s == chair);
        let absent = status_of("tra-linh") == Some((json!("absent"), json!("mất điện")));
        if chair_present && absent {
            return Ok(roll);
        }
        if tokio::time::Instant::now() > deadline {
            bail!("the roll call never showed the chair {chair} and tra-linh absent: {roll}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The `host:port` join links carry, if any.
fn before_host(value: &Value) -> String {
    let text = value.to_string();
    text.split("://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .map(str::to_owned)
        .unwrap_or_else(|| "\u{0}".to_owned())
}
