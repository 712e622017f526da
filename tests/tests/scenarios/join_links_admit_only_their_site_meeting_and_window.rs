//! A join link admits only its own site, into its own meeting, with its own role, and
//! only from an hour before the start until the end: `/api/invitation` answers a
//! forged, malformed, expired, early, revoked, reissued, wrong-meeting or cancelled
//! link with its own code.

use anyhow::{Context, ensure};
use cau_tests::rest::{Api, ApiServer, link_of, time_from_now, token_of};
use serde_json::{Value, json};

async fn create(api: &Api, chair: &str, site: &str, from: i64, to: i64) -> anyhow::Result<Value> {
    api.post(
        "/api/meetings",
        &json!({
            "title": format!("Họp {site}"),
            "start": time_from_now(from),
            "end": time_from_now(to),
            "chair": chair,
            "sites": [site],
        }),
    )
    .await?
    .expect(201)
}

#[tokio::test]
async fn join_links_admit_only_their_site_meeting_and_window() -> anyhow::Result<()> {
    let server = ApiServer::start().await?;
    let admin = server.admin();
    let anyone = server.anonymous();
    let ask = |token: String| {
        let anyone = anyone.clone();
        async move { anyone.get(&format!("/api/invitation?token={token}")).await }
    };

    // Under way: started 10 minutes ago, ends in an hour.
    let now = create(&admin, "cao-bang", "quang-lam", -10, 60).await?;
    let id = now["id"].as_str().context("no id")?.to_owned();
    let chair = token_of(&link_of(&now, "cao-bang")?)?;
    let participant = token_of(&link_of(&now, "quang-lam")?)?;
    let answer = ask(chair.clone()).await?.expect(200)?;
    ensure!(answer["role"] == "chair", "{answer}");
    ensure!(
        answer["site"]
            == json!({"code": "cao-bang", "name": "UBND tỉnh Cao Bằng", "tier": "province"})
    );
    ensure!(answer["meeting"]["id"] == id.as_str() && answer["meeting"]["floor_mode"] == "chair");
    ensure!(answer["meeting"]["title"] == "Họp quang-lam");
    let answer = ask(participant.clone()).await?.expect(200)?;
    ensure!(answer["role"] == "participant" && answer["site"]["code"] == "quang-lam");

    // IT staff of a site that is not invited get an observer link.
    let observer = admin
        .post(
            &format!("/api/meetings/{id}/links"),
            &json!({"site": "thuc-phan", "role": "observer"}),
        )
        .await?
        .expect(201)?;
    let observer_token = token_of(observer["url"].as_str().context("no url")?)?;
    let answer = ask(observer_token.clone()).await?.expect(200)?;
    ensure!(answer["role"] == "observer" && answer["site"]["name"] == "Phường Thục Phán");
    // But a participant link only for an invited site, and only with its role.
    admin
        .post(
            &format!("/api/meetings/{id}/links"),
            &json!({"site": "ly-bon", "role": "participant"}),
        )
        .await?
        .expect_error(422, "not_invited")?;
    admin
        .post(
            &format!("/api/meetings/{id}/links"),
            &json!({"site": "quang-lam", "role": "chair"}),
        )
        .await?
        .expect_error(422, "role_mismatch")?;

    // The link's own meeting only.
    anyone
        .get(&format!("/api/invitation?token={participant}&meeting={id}"))
        .await?
        .expect(200)?;
    anyone
        .get(&format!(
            "/api/invitation?token={participant}&meeting=0123456789abcdef"
        ))
        .await?
        .expect_error(403, "wrong_meeting")?;

    // Forged: a participant's claims with the role changed to chair; the chair's
    // signature on the participant's claims; no signature at all.
    let [header, payload, signature] = parts(&participant)?;
    let claims = String::from_utf8(base64url_decode(payload)?)?;
    ensure!(claims.contains("\"role\":\"participant\""), "{claims}");
    let promoted = base64url_encode(claims.replace("\"participant\"", "\"chair\"").as_bytes());
    ask(format!("{header}.{promoted}.{signature}"))
        .await?
        .expect_error(401, "invalid_token")?;
    let [_, _, chair_signature] = parts(&chair)?;
    ask(format!("{header}.{payload}.{chair_signature}"))
        .await?
        .expect_error(401, "invalid_token")?;
    let none = base64url_encode(br#"{"alg":"none","typ":"JWT"}"#);
    ask(format!("{none}.{payload}."))
        .await?
        .expect_error(401, "invalid_token")?;
    // Malformed.
    for garbage in ["", "abc", "a.b.c", "%00%ff", &"x".repeat(5000)] {
        ask(garbage.to_owned())
            .await?
            .expect_error(401, "invalid_token")?;
    }
    anyone
        .get("/api/invitation")
        .await?
        .expect_error(400, "invalid_query")?;

    // Over: ended an hour ago.
    let past = create(&admin, "cao-bang", "ly-bon", -180, -60).await?;
    ask(token_of(&link_of(&past, "ly-bon")?)?)
        .await?
        .expect_error(401, "token_expired")?;
    // Too early: starts in two hours, links open an hour before.
    let later = create(&admin, "cao-bang", "bao-lam", 120, 180).await?;
    let early = ask(token_of(&link_of(&later, "bao-lam")?)?)
        .await?
        .expect_error(403, "token_not_yet_valid")?;
    ensure!(
        early["message"]
            .as_str()
            .is_some_and(|m| m.contains("from")),
        "{early}"
    );
    // Inside the hour before the start: admitted, for the line test and the lobby.
    let soon = create(&admin, "chinh-phu", "son-lo", 30, 90).await?;
    let soon_token = token_of(&link_of(&soon, "son-lo")?)?;
    ask(soon_token.clone()).await?.expect(200)?;

    // Reissued: the old link is revoked, the new one admits.
    let reissued = admin
        .post_empty(&format!("/api/meetings/{id}/sites/quang-lam/reissue"))
        .await?
        .expect(201)?;
    let fresh = token_of(reissued["url"].as_str().context("no url")?)?;
    ask(participant.clone())
        .await?
        .expect_error(401, "token_revoked")?;
    let answer = ask(fresh).await?.expect(200)?;
    ensure!(answer["role"] == "participant" && answer["site"]["code"] == "quang-lam");
    admin
        .post_empty(&format!("/api/meetings/{id}/sites/ly-bon/reissue"))
        .await?
        .expect_error(422, "not_invited")?;
    // One link revoked alone.
    let observer_id = observer["token_id"].as_str().context("no token id")?;
    admin
        .delete(&format!("/api/meetings/{id}/links/{observer_id}"))
        .await?
        .expect(204)?;
    ask(observer_token)
        .await?
        .expect_error(401, "token_revoked")?;
    admin
        .delete(&format!("/api/meetings/{id}/links/{observer_id}"))
        .await?
        .expect_error(404, "link_not_found")?;
    // The chair's link was not touched by any of this.
    ask(chair.clone()).await?.expect(200)?;

    // Another meeting's calendar entry is not this token's to fetch.
    let soon_id = soon["id"].as_str().context("no id")?;
    anyone
        .get(&format!("/api/meetings/{soon_id}.ics?token={chair}"))
        .await?
        .expect_error(403, "wrong_meeting")?;

    // Cancelled.
    admin
        .post_empty(&format!("/api/meetings/{soon_id}/cancel"))
        .await?
        .expect(200)?;
    ask(soon_token)
        .await?
        .expect_error(403, "meeting_cancelled")?;
    admin
        .post_empty(&format!("/api/meetings/{soon_id}/sites/son-lo/reissue"))
        .await?
        .expect_error(409, "meeting_cancelled")?;
    Ok(())
}

fn parts(token: &str) -> anyhow::Result<[&str; 3]> {
    let parts: Vec<&str> = token.split('.').collect();
    parts
        .try_into()
        .map_err(|_| anyhow::anyhow!("{token} is not three dot-separated parts"))
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Unpadded base64url, as JWTs use.
fn base64url_encode(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

fn base64url_decode(text: &str) -> anyhow::Result<Vec<u8>> {
    let mut bits = 0u32;
    let mut count = 0;
    let mut out = Vec::new();
    for c in text.bytes() {
        let value = ALPHABET
            .iter()
            .position(|a| *a == c)
            .with_context(|| format!("{c} is not base64url"))?;
        bits = bits << 6 | value as u32;
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
        }
    }
    Ok(out)
}
