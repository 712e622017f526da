//! Invalid meetings are refused with a 4xx, a stable code and a message that says
//! what is wrong, and nothing is written: not on create, not on edit.

use anyhow::{Context, bail, ensure};
use cau_tests::rest::{Api, ApiServer, time_from_now};
use serde_json::{Value, json};

fn valid() -> Value {
    json!({
        "title": "Giao ban tháng 7",
        "agenda": "",
        "start": time_from_now(60),
        "end": time_from_now(180),
        "chair": "cao-bang",
        "sites": ["quang-lam", "ly-bon"],
        "floor_mode": "chair",
    })
}

/// Posts `valid()` changed by `change`; expects `status` and `code`, and a message
/// containing `says`.
async fn check(
    api: &Api,
    change: impl FnOnce(&mut Value),
    status: u16,
    code: &str,
    says: &str,
) -> anyhow::Result<()> {
    let mut body = valid();
    change(&mut body);
    let refused = api
        .post("/api/meetings", &body)
        .await?
        .expect_error(status, code)?;
    let message = refused["message"].as_str().unwrap_or("");
    if !message.contains(says) {
        bail!("{code}: the message {message:?} should say {says:?}");
    }
    Ok(())
}

async fn meetings(api: &Api) -> anyhow::Result<Vec<Value>> {
    let list = api.get("/api/meetings").await?.expect(200)?;
    Ok(list.as_array().context("not a list")?.clone())
}

#[tokio::test]
async fn invalid_meetings_are_refused_and_nothing_is_written() -> anyhow::Result<()> {
    let server = ApiServer::start().await?;
    let api = server.admin();

    check(
        &api,
        |b| b["end"] = b["start"].clone(),
        422,
        "end_before_start",
        "end after it starts",
    )
    .await?;
    check(
        &api,
        |b| b["end"] = json!(time_from_now(30)),
        422,
        "end_before_start",
        "end after",
    )
    .await?;
    check(
        &api,
        |b| b["end"] = json!(time_from_now(60 + 25 * 60)),
        422,
        "meeting_too_long",
        "24 hours",
    )
    .await?;
    check(
        &api,
        |b| b["sites"] = json!(["quang-lam", "ha-noi", "xa-khong-co"]),
        422,
        "unknown_sites",
        "ha-noi, xa-khong-co",
    )
    .await?;
    check(
        &api,
        |b| b["chair"] = json!("ubnd-ha-noi"),
        422,
        "unknown_sites",
        "ubnd-ha-noi",
    )
    .await?;
    check(
        &api,
        |b| b["sites"] = json!(["quang-lam", "ly-bon", "quang-lam"]),
        422,
        "duplicate_invitation",
        "quang-lam",
    )
    .await?;
    check(
        &api,
        |b| b["sites"] = json!(["Quảng Lâm"]),
        422,
        "invalid_site_code",
        "Quảng Lâm",
    )
    .await?;
    check(
        &api,
        |b| b["sites"] = json!([]),
        422,
        "no_invited_sites",
        "besides the chair",
    )
    .await?;
    check(
        &api,
        |b| b["sites"] = json!(["cao-bang"]),
        422,
        "no_invited_sites",
        "besides the chair",
    )
    .await?;
    check(
        &api,
        |b| b["title"] = json!(""),
        422,
        "title_empty",
        "title",
    )
    .await?;
    check(
        &api,
        |b| b["title"] = json!("ắ".repeat(201)),
        422,
        "title_too_long",
        "201 characters",
    )
    .await?;
    check(
        &api,
        |b| b["agenda"] = json!("x".repeat(10_001)),
        422,
        "agenda_too_long",
        "10001",
    )
    .await?;
    check(
        &api,
        |b| b["start"] = json!("2026-07-01T08:00:00"),
        422,
        "invalid_time",
        "offset",
    )
    .await?;
    check(
        &api,
        |b| b["start"] = json!("ngày mai"),
        422,
        "invalid_time",
        "start",
    )
    .await?;
    check(
        &api,
        |b| b["floor_mode"] = json!("democracy"),
        400,
        "invalid_body",
        "floor_mode",
    )
    .await?;
    check(
        &api,
        |b| b["room"] = json!("giao-ban"),
        400,
        "invalid_body",
        "room",
    )
    .await?;
    check(
        &api,
        |b| b["title"] = json!(42),
        400,
        "invalid_body",
        "title",
    )
    .await?;
    check(
        &api,
        |b| drop(b.as_object_mut().map(|o| o.remove("chair"))),
        400,
        "invalid_body",
        "chair",
    )
    .await?;

    let not_json = api
        .send_raw("POST", "/api/meetings", "application/json", b"{\"title\": ")
        .await?;
    not_json.expect_error(400, "invalid_body")?;
    let wrong_type = api
        .send_raw(
            "POST",
            "/api/meetings",
            "text/plain",
            valid().to_string().as_bytes(),
        )
        .await?;
    wrong_type.expect_error(415, "invalid_body")?;
    let mut huge = valid();
    huge["agenda"] = json!("x".repeat(300 * 1024));
    api.post("/api/meetings", &huge)
        .await?
        .expect_error(413, "invalid_body")?;

    ensure!(
        meetings(&api).await?.is_empty(),
        "a refused meeting was written"
    );

    // The limits themselves are allowed: 200 characters of Vietnamese (400+ bytes).
    let mut longest = valid();
    longest["title"] = json!("ắ".repeat(200));
    longest["agenda"] = json!("ư".repeat(10_000));
    let created = api.post("/api/meetings", &longest).await?.expect(201)?;
    let id = created["id"].as_str().context("no id")?;

    // Bad edits leave the meeting as it was, links included.
    let path = format!("/api/meetings/{id}");
    let bad_edits: [(Value, u16, &str); 4] = [
        (json!({"end": time_from_now(0)}), 422, "end_before_start"),
        (
            json!({"sites": ["quang-lam", "xa-la"]}),
            422,
            "unknown_sites",
        ),
        (
            json!({"sites": ["ly-bon", "ly-bon"]}),
            422,
            "duplicate_invitation",
        ),
        (json!({"title": "x".repeat(201)}), 422, "title_too_long"),
    ];
    for (change, status, code) in bad_edits {
        let mut body = longest.clone();
        for (key, value) in change.as_object().context("an object")? {
            body[key] = value.clone();
        }
        api.put(&path, &body).await?.expect_error(status, code)?;
    }
    let after = api.get(&path).await?.expect(200)?;
    ensure!(
        after == created,
        "a refused edit changed the meeting:\n{after}\n{created}"
    );
    ensure!(meetings(&api).await?.len() == 1);
    Ok(())
}
