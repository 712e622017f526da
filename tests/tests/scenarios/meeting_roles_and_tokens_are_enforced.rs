//! Over the signaling socket, every role of a meeting is checked against every meeting action, and join tokens that are forged, revoked, not yet valid, expired or for a cancelled meeting are each refused with their own code.

use std::time::Duration;

use anyhow::{Context, bail};
use cau_tests::api::{admin_config, link_for, now_millis, request, schedule, token_in};
use cau_tests::raw::RawSocket;
use cau_tests::server::start_test_server_with;
use serde_json::{Value, json};

const QUIET: Duration = Duration::from_millis(300);
const MINUTE: i64 = 60_000;

#[tokio::test(flavor = "multi_thread")]
async fn meeting_roles_and_tokens_are_enforced() -> anyhow::Result<()> {
    let server = start_test_server_with(&admin_config()).await?;
    let addr = server.http_addr();
    let now = now_millis();
    let meeting = schedule(
        addr,
        now - MINUTE,
        now + 60 * MINUTE,
        &["ha-quang", "tra-linh"],
    )
    .await?;
    let id = meeting["id"].as_str().context("no id")?.to_owned();
    let (status, observer) = request(
        addr,
        "POST",
        &format!("/api/meetings/{id}/links"),
        Some(&json!({"site": "chinh-phu", "role": "observer"})),
    )
    .await?;
    if status != 201 && status != 200 {
        bail!("issuing an observer link answered {status}: {observer}");
    }
    let observer_token = token_in(observer["url"].as_str().context("no url")?)?;

    let ws = server.ws_url();
    let mut chair = join(&ws, &token_in(&link_for(&meeting, "cao-bang")?)?, "joined").await?;
    let mut commune = join(&ws, &token_in(&link_for(&meeting, "ha-quang")?)?, "lobby").await?;
    let mut it = join(&ws, &observer_token, "joined").await?;

    // Before the chair opens the meeting, a commune in the lobby can do nothing.
    expect(
        &mut commune,
        json!({"type": "request_floor"}),
        Err("forbidden"),
    )
    .await?;
    expect(&mut chair, json!({"type": "open_meeting"}), Ok(())).await?;
    commune.expect_type("joined").await?;

    // Every action by every role: Ok means done (a new meeting_state), Err the refusal code.
    let forbidden = Err("forbidden");
    let matrix: Vec<(Value, [Result<(), &str>; 3])> = vec![
        // action                                         chair            commune          observer
        (
            json!({"type": "open_meeting"}),
            [Ok(()), forbidden, forbidden],
        ),
        (
            json!({"type": "admit", "site": "tra-linh"}),
            [Err("not_connected"), forbidden, forbidden],
        ),
        (
            json!({"type": "request_floor"}),
            [forbidden, Ok(()), forbidden],
        ),
        (
            json!({"type": "cancel_floor_request"}),
            [Ok(()), Ok(()), Ok(())],
        ),
        (
            json!({"type": "grant_floor", "site": "ha-quang"}),
            [Ok(()), forbidden, forbidden],
        ),
        (
            json!({"type": "revoke_floor"}),
            [Ok(()), forbidden, forbidden],
        ),
        (
            json!({"type": "mute_site", "site": "ha-quang"}),
            [Ok(()), forbidden, forbidden],
        ),
        (
            json!({"type": "unmute_site", "site": "ha-quang"}),
            [Ok(()), forbidden, forbidden],
        ),
        (
            json!({"type": "set_layout", "sites": ["ha-quang"]}),
            [Ok(()), forbidden, forbidden],
        ),
        (
            json!({"type": "set_layout", "sites": ["a", "b", "c", "d", "e"]}),
            [Err("bad_layout"), forbidden, forbidden],
        ),
        (
            json!({"type": "mark_absent", "site": "tra-linh", "reason": "mất điện"}),
            [Ok(()), forbidden, forbidden],
        ),
        (
            json!({"type": "mark_absent", "site": "ha-quang", "reason": "x"}),
            [Err("forbidden"), forbidden, forbidden],
        ),
    ];
    for (action, expected) in matrix {
        for (socket, outcome) in [&mut chair, &mut commune, &mut it]
            .into_iter()
            .zip(expected)
        {
            expect(socket, action.clone(), outcome).await?;
        }
    }

    // Tokens: forged, revoked by a reissue, not yet valid, expired, cancelled meeting.
    let commune_token = token_in(&link_for(&meeting, "ha-quang")?)?;
    let mut forged = commune_token.clone();
    let last = forged.pop().context("an empty token")?;
    forged.push(if last == 'A' { 'B' } else { 'A' });
    refused(&ws, &forged, "invalid_token").await?;
    refused(&ws, "not.a.jwt", "invalid_token").await?;

    let (status, reissued) = request(
        addr,
        "POST",
        &format!("/api/meetings/{id}/sites/tra-linh/reissue"),
        None,
    )
    .await?;
    if status != 200 && status != 201 {
        bail!("reissuing answered {status}: {reissued}");
    }
    refused(
        &ws,
        &token_in(&link_for(&meeting, "tra-linh")?)?,
        "token_revoked",
    )
    .await?;
    join(
        &ws,
        &token_in(reissued["url"].as_str().context("no url")?)?,
        "joined",
    )
    .await
    .context("the reissued link")?;

    let later = schedule(addr, now + 180 * MINUTE, now + 240 * MINUTE, &["tra-linh"]).await?;
    refused(
        &ws,
        &token_in(&link_for(&later, "tra-linh")?)?,
        "token_not_yet_valid",
    )
    .await?;
    let over = schedule(addr, now - 180 * MINUTE, now - 120 * MINUTE, &["ha-quang"]).await?;
    refused(
        &ws,
        &token_in(&link_for(&over, "ha-quang")?)?,
        "token_expired",
    )
    .await?;
    let later_id = later["id"].as_str().context("no id")?;
    let (status, _) = request(
        addr,
        "POST",
        &format!("/api/meetings/{later_id}/cancel"),
        None,
    )
    .await?;
    if status >= 300 {
        bail!("cancelling answered {status}");
    }
    refused(
        &ws,
        &token_in(&link_for(&later, "tra-linh")?)?,
        "meeting_cancelled",
    )
    .await?;
    Ok(())
}

/// Sends `action` on `socket` and checks the outcome.
async fn expect(
    socket: &mut RawSocket,
    action: Value,
    outcome: Result<(), &str>,
) -> anyhow::Result<()> {
    socket.drain(QUIET).await;
    socket.send_text(action.to_string()).await?;
    let reply = loop {
        let message = socket
            .next_json()
            .await?
            .context("the server closed the socket")?;
        if message["type"] == "error" || message["type"] == "meeting_state" {
            break message;
        }
    };
    let got = if reply["type"] == "error" {
        Err(reply["code"].as_str().unwrap_or_default().to_owned())
    } else {
        Ok(())
    };
    if got != outcome.map_err(str::to_owned) {
        bail!("{action} gave {reply}, expected {outcome:?}");
    }
    Ok(())
}

async fn join(ws: &str, token: &str, expected: &str) -> anyhow::Result<RawSocket> {
    let mut socket = RawSocket::connect(ws).await?;
    socket
        .send_text(json!({"type": "join", "token": token}).to_string())
        .await?;
    let reply = socket.next_json().await?.context("no reply to join")?;
    if reply["type"] != expected {
        bail!(
            "joining with {:?}: expected {expected}, got {reply}",
            json!({"type": "join", "token": token}).to_string()
        );
    }
    Ok(socket)
}

async fn refused(ws: &str, token: &str, code: &str) -> anyhow::Result<()> {
    let mut socket = RawSocket::connect(ws).await?;
    socket
        .expect_refusal(json!({"type": "join", "token": token}).to_string(), code)
        .await
        .map(|_| ())
}
