//! A site cannot be invited to two overlapping meetings: creating or editing such a
//! meeting is answered 409, naming the other meeting and the shared sites, and writes
//! nothing; meetings that only touch, and cancelled ones, do not conflict.

use anyhow::{Context, ensure};
use cau_tests::rest::{Api, ApiServer, time_from_now};
use serde_json::{Value, json};

const HOUR: i64 = 60;

fn meeting(title: &str, from_hour: i64, to_hour: i64, chair: &str, sites: &[&str]) -> Value {
    json!({
        "title": title,
        "start": time_from_now(24 * HOUR + from_hour * HOUR),
        "end": time_from_now(24 * HOUR + to_hour * HOUR),
        "chair": chair,
        "sites": sites,
    })
}

async fn count(api: &Api) -> anyhow::Result<usize> {
    let list = api.get("/api/meetings").await?.expect(200)?;
    Ok(list.as_array().context("not a list")?.len())
}

#[tokio::test]
async fn overlapping_invitations_are_refused_with_409() -> anyhow::Result<()> {
    let server = ApiServer::start().await?;
    let api = server.admin();
    let first = api
        .post(
            "/api/meetings",
            &meeting("Giao ban sáng", 0, 2, "cao-bang", &["quang-lam", "ly-bon"]),
        )
        .await?
        .expect(201)?;
    let first_id = first["id"].as_str().context("no id")?;

    // Another chair, but ly-bon is already booked from hour 1 to 2.
    let refused = api
        .post(
            "/api/meetings",
            &meeting("Họp chuyên đề", 1, 3, "chinh-phu", &["ly-bon", "bao-lam"]),
        )
        .await?
        .expect_error(409, "conflict")?;
    let conflict = &refused["conflicts"][0];
    ensure!(conflict["meeting"] == first_id, "{refused}");
    ensure!(conflict["title"] == "Giao ban sáng", "{refused}");
    ensure!(conflict["sites"] == json!(["ly-bon"]), "{refused}");
    let message = refused["message"].as_str().unwrap_or("");
    ensure!(
        message.contains(first_id) && message.contains("ly-bon"),
        "the message should name the meeting and the site: {message}"
    );
    ensure!(count(&api).await? == 1, "a refused meeting was written");

    // The chair is invited too: the province cannot chair two meetings at once.
    let refused = api
        .post(
            "/api/meetings",
            &meeting("Họp khác", 1, 2, "cao-bang", &["son-lo"]),
        )
        .await?
        .expect_error(409, "conflict")?;
    ensure!(
        refused["conflicts"][0]["sites"] == json!(["cao-bang"]),
        "{refused}"
    );

    // All communes at once collides on both communes of the first meeting.
    let mut everyone = meeting("Toàn tỉnh", 1, 3, "chinh-phu", &[]);
    everyone["all_communes"] = json!(true);
    let refused = api
        .post("/api/meetings", &everyone)
        .await?
        .expect_error(409, "conflict")?;
    ensure!(
        refused["conflicts"][0]["sites"] == json!(["quang-lam", "ly-bon"]),
        "{refused}"
    );
    ensure!(count(&api).await? == 1, "a refused meeting was written");

    // Back to back is not overlapping.
    let next = api
        .post(
            "/api/meetings",
            &meeting("Họp chiều", 2, 4, "chinh-phu", &["ly-bon", "bao-lam"]),
        )
        .await?
        .expect(201)?;
    let next_id = next["id"].as_str().context("no id")?;

    // Stretching the first meeting into the next is refused and changes nothing.
    let stretched = meeting(
        "Giao ban sáng (kéo dài)",
        0,
        3,
        "cao-bang",
        &["quang-lam", "ly-bon"],
    );
    let refused = api
        .put(&format!("/api/meetings/{first_id}"), &stretched)
        .await?
        .expect_error(409, "conflict")?;
    ensure!(refused["conflicts"][0]["meeting"] == next_id, "{refused}");
    let unchanged = api
        .get(&format!("/api/meetings/{first_id}"))
        .await?
        .expect(200)?;
    ensure!(unchanged["title"] == "Giao ban sáng", "{unchanged}");
    ensure!(unchanged["end"] == first["end"], "{unchanged}");
    ensure!(
        unchanged["links"] == first["links"],
        "links changed on a refused edit"
    );

    // An edit never conflicts with the meeting itself.
    api.put(
        &format!("/api/meetings/{first_id}"),
        &meeting(
            "Giao ban sáng",
            0,
            2,
            "cao-bang",
            &["quang-lam", "ly-bon", "son-lo"],
        ),
    )
    .await?
    .expect(200)?;

    // A cancelled meeting frees its sites.
    api.post_empty(&format!("/api/meetings/{next_id}/cancel"))
        .await?
        .expect(200)?;
    api.put(&format!("/api/meetings/{first_id}"), &stretched)
        .await?
        .expect(200)?;
    ensure!(count(&api).await? == 2);
    Ok(())
}
