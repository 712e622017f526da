//! The secretary schedules, edits, lists and cancels meetings through the REST API;
//! each invited site gets its own join link, and titles come back exactly as given.

use anyhow::{Context, ensure};
use cau_tests::rest::{ApiServer, link_of, time_from_now, token_of};
use serde_json::{Value, json};

#[tokio::test]
async fn meetings_are_scheduled_edited_cancelled_and_listed() -> anyhow::Result<()> {
    let server = ApiServer::start().await?;
    let api = server.admin();

    // Markup, quotes, an ampersand and a comma: stored and returned verbatim; showing
    // it as text is the page's job.
    let title = r#"<script>alert("x")</script> Giao ban, "họp" & tháng 7"#;
    let created = api
        .post(
            "/api/meetings",
            &json!({
                "title": title,
                "agenda": "1. Báo cáo\n2. Thảo luận; biểu quyết",
                "start": time_from_now(30),
                "end": time_from_now(150),
                "chair": "cao-bang",
                "sites": ["quang-lam", "ly-bon"],
                "floor_mode": "chair",
            }),
        )
        .await?;
    let meeting = created.expect(201)?;
    let id = meeting["id"].as_str().context("no id")?.to_owned();
    ensure!(
        created.response.header("location") == Some(&format!("/api/meetings/{id}")),
        "Location is {:?}",
        created.response.header("location")
    );
    ensure!(
        meeting["title"] == title,
        "title came back as {}",
        meeting["title"]
    );
    ensure!(meeting["status"] == "scheduled" && meeting["floor_mode"] == "chair");
    let invited: Vec<(&str, &str)> = meeting["sites"]
        .as_array()
        .context("no sites")?
        .iter()
        .map(|s| {
            (
                s["code"].as_str().unwrap_or(""),
                s["role"].as_str().unwrap_or(""),
            )
        })
        .collect();
    ensure!(
        invited
            == [
                ("cao-bang", "chair"),
                ("quang-lam", "participant"),
                ("ly-bon", "participant")
            ],
        "invited: {invited:?}"
    );
    ensure!(meeting["sites"][1]["name"] == "Xã Quảng Lâm");

    // One link per invited site, each its own token, each pointing at this meeting.
    let links = meeting["links"].as_array().context("no links")?;
    ensure!(links.len() == 3, "links: {links:?}");
    let prefix = format!("{}/m/{id}?token=", server.server().base_url());
    let mut tokens = Vec::new();
    for link in links {
        let url = link["url"].as_str().context("no url")?;
        ensure!(url.starts_with(&prefix), "{url} should start with {prefix}");
        tokens.push(token_of(url)?);
    }
    tokens.sort();
    tokens.dedup();
    ensure!(tokens.len() == 3, "tokens are not distinct");
    let quang_lam = token_of(&link_of(&meeting, "quang-lam")?)?;
    let invitation = server
        .anonymous()
        .get(&format!("/api/invitation?token={quang_lam}"))
        .await?
        .expect(200)?;
    ensure!(invitation["role"] == "participant", "{invitation}");
    ensure!(invitation["site"]["name"] == "Xã Quảng Lâm", "{invitation}");
    ensure!(invitation["meeting"]["title"] == title, "{invitation}");

    // All communes in one click: the chair, the central point, and the 56 communes.
    let all = api
        .post(
            "/api/meetings",
            &json!({
                "title": "Hội nghị toàn tỉnh",
                "start": time_from_now(24 * 60),
                "end": time_from_now(26 * 60),
                "chair": "cao-bang",
                "sites": ["chinh-phu"],
                "all_communes": true,
                "floor_mode": "open",
            }),
        )
        .await?
        .expect(201)?;
    ensure!(
        all["sites"].as_array().map(Vec::len) == Some(58),
        "{}",
        all["sites"]
    );
    ensure!(all["links"].as_array().map(Vec::len) == Some(58));
    ensure!(all["floor_mode"] == "open");

    // The list: by start time, without links.
    let list = api.get("/api/meetings").await?.expect(200)?;
    let ids: Vec<&str> = list
        .as_array()
        .context("not a list")?
        .iter()
        .filter_map(|m| m["id"].as_str())
        .collect();
    ensure!(
        ids == [id.as_str(), all["id"].as_str().unwrap_or("")],
        "{ids:?}"
    );
    ensure!(list[0].get("links").is_none(), "the list shows links");
    ensure!(list[0]["title"] == title);

    // Edit: new times and title, ly-bon out, bao-lam in. Unchanged sites keep their link.
    let edited = api
        .put(
            &format!("/api/meetings/{id}"),
            &json!({
                "title": "Giao ban (dời lịch)",
                "start": time_from_now(20),
                "end": time_from_now(140),
                "chair": "cao-bang",
                "sites": ["quang-lam", "bao-lam"],
            }),
        )
        .await?
        .expect(200)?;
    ensure!(edited["title"] == "Giao ban (dời lịch)");
    let codes: Vec<&str> = edited["sites"]
        .as_array()
        .context("no sites")?
        .iter()
        .filter_map(|s| s["code"].as_str())
        .collect();
    ensure!(codes == ["cao-bang", "quang-lam", "bao-lam"], "{codes:?}");
    ensure!(
        token_id(&meeting, "quang-lam") == token_id(&edited, "quang-lam"),
        "quang-lam's link changed on an edit that kept it"
    );
    let ly_bon = token_of(&link_of(&meeting, "ly-bon")?)?;
    server
        .anonymous()
        .get(&format!("/api/invitation?token={ly_bon}"))
        .await?
        .expect_error(401, "token_revoked")?;
    let bao_lam = token_of(&link_of(&edited, "bao-lam")?)?;
    server
        .anonymous()
        .get(&format!("/api/invitation?token={bao_lam}"))
        .await?
        .expect(200)?;
    let fetched = api.get(&format!("/api/meetings/{id}")).await?.expect(200)?;
    ensure!(
        fetched["links"] == edited["links"],
        "GET and PUT disagree on links"
    );

    // iCalendar, for the admin and for an invited site's token.
    let ics = api.get(&format!("/api/meetings/{id}.ics")).await?;
    ensure!(ics.status() == 200, "ics: {}", ics.text());
    ensure!(
        ics.response
            .header("content-type")
            .is_some_and(|t| t.starts_with("text/calendar")),
        "{:?}",
        ics.response.headers
    );
    let text = ics.text().replace("\r\n ", "");
    ensure!(text.contains(&format!("\r\nUID:{id}@cau\r\n")), "{text}");
    ensure!(
        text.contains("\r\nSUMMARY:Giao ban (dời lịch)\r\n"),
        "{text}"
    );
    ensure!(
        text.contains("\r\nLOCATION:UBND tỉnh Cao Bằng\r\n"),
        "{text}"
    );
    server
        .anonymous()
        .get(&format!("/api/meetings/{id}.ics?token={quang_lam}"))
        .await?
        .expect_status(200)?;

    // Cancel: still listed, as cancelled; no longer editable; its links admit no one.
    let cancelled = api
        .post_empty(&format!("/api/meetings/{id}/cancel"))
        .await?
        .expect(200)?;
    ensure!(cancelled["status"] == "cancelled");
    let list = api.get("/api/meetings").await?.expect(200)?;
    ensure!(list[0]["id"] == id.as_str() && list[0]["status"] == "cancelled");
    ensure!(list[1]["status"] == "scheduled");
    api.put(
        &format!("/api/meetings/{id}"),
        &json!({
            "title": "x", "start": time_from_now(20), "end": time_from_now(140),
            "chair": "cao-bang", "sites": ["quang-lam"],
        }),
    )
    .await?
    .expect_error(409, "meeting_cancelled")?;
    server
        .anonymous()
        .get(&format!("/api/invitation?token={quang_lam}"))
        .await?
        .expect_error(403, "meeting_cancelled")?;
    api.get("/api/meetings/0000000000000000")
        .await?
        .expect_error(404, "meeting_not_found")?;
    Ok(())
}

fn token_id<'a>(meeting: &'a Value, site: &str) -> Option<&'a str> {
    meeting["links"]
        .as_array()?
        .iter()
        .find(|link| link["site"] == site)?["token_id"]
        .as_str()
}
