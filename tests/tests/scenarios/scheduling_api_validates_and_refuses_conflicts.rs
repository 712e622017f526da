//! The scheduling API creates, edits, lists and cancels meetings; answers a double-booked site with 409 naming the conflict; refuses bad input and missing or wrong admin tokens with a 4xx and a clear message, writing nothing; and exports iCalendar, CSV and its OpenAPI document.

use anyhow::{Context, bail};
use cau_signaling::model::format_time;
use cau_tests::api::{ADMIN_TOKEN, admin_config, now_millis, request, request_as};
use cau_tests::server::start_test_server_with;
use serde_json::{Value, json};

const HOUR: i64 = 3_600_000;

#[tokio::test(flavor = "multi_thread")]
async fn scheduling_api_validates_and_refuses_conflicts() -> anyhow::Result<()> {
    let server = start_test_server_with(&admin_config()).await?;
    let addr = server.http_addr();
    let day = now_millis() + 24 * HOUR;
    let body = |title: &str, start: i64, end: i64, sites: Value| {
        json!({
            "title": title, "agenda": "1. Báo cáo\n2. Thảo luận",
            "start": format_time(start), "end": format_time(end),
            "chair": "cao-bang", "sites": sites, "floor_mode": "chair",
        })
    };

    // Create, with markup in the title kept verbatim.
    let title = "Giao ban <b>tháng 12</b> & \"khẩn\"";
    let (status, created) = request(
        addr,
        "POST",
        "/api/meetings",
        Some(&body(title, day, day + HOUR, json!(["ha-quang"]))),
    )
    .await?;
    if status != 201 || created["title"] != title {
        bail!("create answered {status}: {created}");
    }
    let id = created["id"].as_str().context("no id")?.to_owned();
    let links = created["links"].as_array().map_or(0, Vec::len);
    if links != 2 {
        bail!("expected a link for the chair and ha-quang, got {links}: {created}");
    }

    // Edit, then read back.
    let (status, edited) = request(
        addr,
        "PUT",
        &format!("/api/meetings/{id}"),
        Some(&body(
            "Giao ban tháng 12",
            day,
            day + 2 * HOUR,
            json!(["ha-quang", "tra-linh"]),
        )),
    )
    .await?;
    if status != 200 || edited["sites"].as_array().map_or(0, Vec::len) != 3 {
        bail!("edit answered {status}: {edited}");
    }

    // A site cannot be in two overlapping meetings; 409 names the meeting and the site.
    let overlapping = body(
        "Họp khác",
        day + HOUR,
        day + 3 * HOUR,
        json!(["tra-linh", "quang-lam"]),
    );
    let (status, refused) = request(addr, "POST", "/api/meetings", Some(&overlapping)).await?;
    let message = refused["message"].as_str().unwrap_or_default();
    if status != 409
        || refused["code"] != "conflict"
        || !message.contains(&id)
        || !message.contains("tra-linh")
    {
        bail!("a double booking answered {status}: {refused}");
    }
    let after = body(
        "Họp sau",
        day + 2 * HOUR,
        day + 3 * HOUR,
        json!(["tra-linh"]),
    );
    let (status, _) = request(addr, "POST", "/api/meetings", Some(&after)).await?;
    if status != 201 {
        bail!("a meeting right after the first was refused: {status}");
    }

    // Bad input: a 4xx with a message, and nothing written.
    let count = || async {
        request(addr, "GET", "/api/meetings", None)
            .await
            .map(|(_, l)| l.as_array().map_or(0, Vec::len))
    };
    let before = count().await?;
    let long_title = "x".repeat(201);
    let bad: Vec<(&str, Value)> = vec![
        (
            "end before start",
            body(
                "Sai giờ",
                day + 5 * HOUR,
                day + 4 * HOUR,
                json!(["ha-quang"]),
            ),
        ),
        (
            "unknown site",
            body("Lạ", day + 5 * HOUR, day + 6 * HOUR, json!(["khong-co"])),
        ),
        (
            "duplicate invitation",
            body(
                "Trùng",
                day + 5 * HOUR,
                day + 6 * HOUR,
                json!(["ly-bon", "ly-bon"]),
            ),
        ),
        (
            "oversized title",
            body(
                &long_title,
                day + 5 * HOUR,
                day + 6 * HOUR,
                json!(["ly-bon"]),
            ),
        ),
        (
            "not a time",
            json!({"title": "x", "start": "tomorrow", "end": "later", "chair": "cao-bang"}),
        ),
        (
            "unknown field",
            json!({"title": "x", "start": format_time(day), "end": format_time(day + HOUR), "chair": "cao-bang", "room": 1}),
        ),
    ];
    for (what, request_body) in bad {
        let (status, answer) = request(addr, "POST", "/api/meetings", Some(&request_body)).await?;
        let message = answer["message"].as_str().unwrap_or_default();
        if !(400..500).contains(&status) || message.is_empty() {
            bail!("{what}: answered {status} {answer}");
        }
    }
    let (status, answer) = request_as(addr, "POST", "/api/meetings", None, Some(&after)).await?;
    if status != 401 {
        bail!("no token: answered {status} {answer}");
    }
    let (status, answer) = request_as(
        addr,
        "POST",
        "/api/meetings",
        Some("wrong-token-0123456789"),
        Some(&after),
    )
    .await?;
    if status != 401 {
        bail!("a wrong token: answered {status} {answer}");
    }
    if count().await? != before {
        bail!("a refused request wrote a meeting");
    }

    // Cancel: the meeting stays listed as cancelled and blocks no one.
    let (status, _) = request(addr, "POST", &format!("/api/meetings/{id}/cancel"), None).await?;
    let (_, cancelled) = request(addr, "GET", &format!("/api/meetings/{id}"), None).await?;
    if status >= 300 || cancelled["status"] != "cancelled" {
        bail!("cancel answered {status}: {cancelled}");
    }
    let in_its_place = body("Họp thay", day, day + HOUR, json!(["ha-quang"]));
    let (status, answer) = request(addr, "POST", "/api/meetings", Some(&in_its_place)).await?;
    if status != 201 {
        bail!("a cancelled meeting still blocks its sites: {status} {answer}");
    }

    // Exports.
    let (status, ics) = request_as(
        addr,
        "GET",
        &format!("/api/meetings/{id}.ics"),
        Some(ADMIN_TOKEN),
        None,
    )
    .await?;
    if status != 200
        || !ics.contains("BEGIN:VCALENDAR")
        || !ics.contains("SUMMARY:Giao ban tháng 12")
    {
        bail!("iCalendar export answered {status}: {ics:.300}");
    }
    let (status, csv) = request_as(
        addr,
        "GET",
        &format!("/api/meetings/{id}/attendance.csv"),
        Some(ADMIN_TOKEN),
        None,
    )
    .await?;
    if status != 200 || !csv.contains("tra-linh") {
        bail!("CSV export answered {status}: {csv:.300}");
    }
    let (status, openapi) = request_as(addr, "GET", "/api/openapi.json", None, None).await?;
    let openapi: Value = serde_json::from_str(&openapi).unwrap_or(Value::Null);
    if status != 200 || openapi["paths"]["/api/meetings"].is_null() || openapi["openapi"].is_null()
    {
        bail!("the OpenAPI document answered {status}");
    }
    Ok(())
}
