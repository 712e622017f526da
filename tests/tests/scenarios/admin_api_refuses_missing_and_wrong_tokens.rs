//! The admin and scheduling API answers only the admin token: every admin action,
//! tried with no token, a wrong one, another scheme, or a site's join token of any
//! role, is refused with 401 and its code, and changes nothing. The directory, the
//! OpenAPI document and the invitation check stay open.

use anyhow::{Context, bail, ensure};
use cau_tests::http::request;
use cau_tests::rest::{ApiServer, link_of, time_from_now, token_of};
use serde_json::{Value, json};

#[tokio::test]
async fn admin_api_refuses_missing_and_wrong_tokens() -> anyhow::Result<()> {
    let server = ApiServer::start().await?;
    let admin = server.admin();
    let meeting = admin
        .post(
            "/api/meetings",
            &json!({
                "title": "Giao ban",
                "start": time_from_now(10),
                "end": time_from_now(70),
                "chair": "cao-bang",
                "sites": ["quang-lam"],
            }),
        )
        .await?
        .expect(201)?;
    let id = meeting["id"].as_str().context("no id")?;
    let observer = admin
        .post(
            &format!("/api/meetings/{id}/links"),
            &json!({"site": "thuc-phan", "role": "observer"}),
        )
        .await?
        .expect(201)?;
    let observer_token = token_of(observer["url"].as_str().context("no url")?)?;
    let chair_token = token_of(&link_of(&meeting, "cao-bang")?)?;
    let participant_token = token_of(&link_of(&meeting, "quang-lam")?)?;
    let token_id = observer["token_id"].as_str().context("no token id")?;
    let before = admin
        .get(&format!("/api/meetings/{id}"))
        .await?
        .expect(200)?;

    let edit = json!({
        "title": "Đổi", "start": time_from_now(10), "end": time_from_now(70),
        "chair": "cao-bang", "sites": ["ly-bon"],
    });
    let new_site = json!({"code": "xa-moi", "name": "Xã Mới", "tier": "commune"});
    let rename = json!({"name": "Đổi tên", "tier": "commune", "kind": "commune"});
    let link = json!({"site": "quang-lam", "role": "observer"});
    let actions: Vec<(&str, String, Option<&Value>)> = vec![
        ("GET", "/api/meetings".into(), None),
        ("POST", "/api/meetings".into(), Some(&edit)),
        ("GET", format!("/api/meetings/{id}"), None),
        ("PUT", format!("/api/meetings/{id}"), Some(&edit)),
        ("POST", format!("/api/meetings/{id}/cancel"), None),
        ("GET", format!("/api/meetings/{id}.ics"), None),
        ("POST", format!("/api/meetings/{id}/links"), Some(&link)),
        (
            "DELETE",
            format!("/api/meetings/{id}/links/{token_id}"),
            None,
        ),
        (
            "POST",
            format!("/api/meetings/{id}/sites/quang-lam/reissue"),
            None,
        ),
        ("GET", format!("/api/meetings/{id}/attendance"), None),
        ("GET", format!("/api/meetings/{id}/attendance.csv"), None),
        ("POST", "/api/sites".into(), Some(&new_site)),
        ("PUT", "/api/sites/quang-lam".into(), Some(&rename)),
        ("DELETE", "/api/sites/ly-bon".into(), None),
    ];
    let wrong = "Bearer not-the-admin-token-at-all".to_owned();
    let basic = format!("Basic {}", server.admin_token());
    let credentials: Vec<(&str, Option<String>, &str)> = vec![
        ("no token", None, "admin_token_missing"),
        ("a wrong token", Some(wrong), "admin_token_invalid"),
        (
            "the admin token as Basic",
            Some(basic),
            "admin_token_invalid",
        ),
        (
            "the chair's join token",
            Some(format!("Bearer {chair_token}")),
            "admin_token_invalid",
        ),
        (
            "a participant's join token",
            Some(format!("Bearer {participant_token}")),
            "admin_token_invalid",
        ),
        (
            "an observer's join token",
            Some(format!("Bearer {observer_token}")),
            "admin_token_invalid",
        ),
    ];
    for (method, path, body) in &actions {
        for (who, authorization, code) in &credentials {
            let mut headers = vec![("Content-Type", "application/json")];
            if let Some(authorization) = authorization {
                headers.push(("Authorization", authorization.as_str()));
            }
            let body = body.map(|b| b.to_string());
            let response = request(
                server.addr(),
                method,
                path,
                &headers,
                body.as_deref().map(str::as_bytes),
            )
            .await?;
            let refusal: Value = serde_json::from_slice(&response.body).unwrap_or_default();
            if response.status != 401 || refusal["code"] != *code {
                bail!(
                    "{method} {path} with {who}: expected 401 {code}, got {} {}",
                    response.status,
                    response.text()
                );
            }
            ensure!(
                response.header("www-authenticate") == Some("Bearer"),
                "{method} {path}: a 401 without WWW-Authenticate"
            );
        }
    }

    // Nothing changed.
    let after = admin
        .get(&format!("/api/meetings/{id}"))
        .await?
        .expect(200)?;
    ensure!(
        after["status"] == "scheduled" && after["title"] == "Giao ban",
        "{after}"
    );
    ensure!(
        after == before,
        "the meeting or its links changed:\n{before}\n{after}"
    );
    let sites = server.anonymous().get("/api/sites").await?.expect(200)?;
    let sites = sites.as_array().context("not a list")?;
    ensure!(
        sites.len() == 58,
        "the directory changed: {} sites",
        sites.len()
    );
    ensure!(sites.iter().any(|s| s["code"] == "ly-bon"));
    ensure!(sites.iter().any(|s| s["name"] == "Xã Quảng Lâm"));
    ensure!(
        admin
            .get("/api/meetings")
            .await?
            .expect(200)?
            .as_array()
            .map(Vec::len)
            == Some(1),
        "a meeting was created"
    );

    // What stays open without the admin token.
    server
        .anonymous()
        .get("/api/openapi.json")
        .await?
        .expect(200)?;
    for token in [&chair_token, &participant_token, &observer_token] {
        server
            .anonymous()
            .get(&format!("/api/invitation?token={token}"))
            .await?
            .expect(200)?;
    }
    // The admin token itself works for every kind of request above.
    admin
        .get(&format!("/api/meetings/{id}/attendance"))
        .await?
        .expect(200)?;
    admin
        .get(&format!("/api/meetings/{id}.ics"))
        .await?
        .expect_status(200)?;
    Ok(())
}
