//! The directory starts as the 58 sites of the brief and is edited through the admin
//! API: sites are added, renamed, moved between tiers, and deleted only when no
//! meeting still to come invites them.

use std::collections::BTreeSet;

use anyhow::{Context, ensure};
use cau_tests::rest::{Api, ApiServer, time_from_now};
use serde_json::{Value, json};

async fn sites(api: &Api) -> anyhow::Result<Vec<Value>> {
    Ok(api
        .get("/api/sites")
        .await?
        .expect(200)?
        .as_array()
        .context("not a list")?
        .clone())
}

fn find<'a>(sites: &'a [Value], code: &str) -> Option<&'a Value> {
    sites.iter().find(|s| s["code"] == code)
}

#[tokio::test]
async fn site_directory_is_seeded_and_edited() -> anyhow::Result<()> {
    let server = ApiServer::start().await?;
    let admin = server.admin();
    let anyone = server.anonymous();

    let seeded = sites(&anyone).await?;
    ensure!(seeded.len() == 58, "{} sites", seeded.len());
    ensure!(seeded[0] == json!({"code": "chinh-phu", "name": "Chính phủ", "tier": "central"}));
    ensure!(
        seeded[1] == json!({"code": "cao-bang", "name": "UBND tỉnh Cao Bằng", "tier": "province"})
    );
    let communes: Vec<&Value> = seeded.iter().filter(|s| s["tier"] == "commune").collect();
    ensure!(communes.len() == 56);
    let wards: Vec<&str> = communes
        .iter()
        .filter(|s| s["kind"] == "ward")
        .filter_map(|s| s["name"].as_str())
        .collect();
    ensure!(
        wards
            == [
                "Phường Thục Phán",
                "Phường Nùng Trí Cao",
                "Phường Tân Giang"
            ],
        "{wards:?}"
    );
    ensure!(communes.iter().filter(|s| s["kind"] == "commune").count() == 53);
    ensure!(find(&seeded, "quang-uyen").is_some_and(|s| s["name"] == "Xã Quảng Uyên"));
    ensure!(find(&seeded, "dam-thuy").is_some_and(|s| s["name"] == "Xã Đàm Thủy"));
    let codes: BTreeSet<&str> = seeded.iter().filter_map(|s| s["code"].as_str()).collect();
    ensure!(codes.len() == 58, "codes are not unique");

    // Add.
    let added = admin
        .post("/api/sites", &json!({"code": "trung-tam-du-phong", "name": "Trung tâm dự phòng", "tier": "province"}))
        .await?
        .expect(201)?;
    ensure!(added["name"] == "Trung tâm dự phòng");
    ensure!(
        sites(&anyone)
            .await?
            .last()
            .is_some_and(|s| s["code"] == "trung-tam-du-phong")
    );
    admin
        .post(
            "/api/sites",
            &json!({"code": "quang-lam", "name": "Trùng", "tier": "commune"}),
        )
        .await?
        .expect_error(409, "site_exists")?;
    admin
        .post(
            "/api/sites",
            &json!({"code": "Xã Mới", "name": "Xã Mới", "tier": "commune"}),
        )
        .await?
        .expect_error(422, "invalid_site_code")?;
    admin
        .post(
            "/api/sites",
            &json!({"code": "moi", "name": " ", "tier": "commune"}),
        )
        .await?
        .expect_error(422, "invalid_site_name")?;
    admin
        .post(
            "/api/sites",
            &json!({"code": "moi", "name": "Mới", "tier": "province", "kind": "ward"}),
        )
        .await?
        .expect_error(422, "invalid_kind")?;
    admin
        .post(
            "/api/sites",
            &json!({"code": "moi", "name": "Mới", "tier": "district"}),
        )
        .await?
        .expect_error(400, "invalid_body")?;

    // Rename, and change tier.
    admin
        .put(
            "/api/sites/ly-bon",
            &json!({"name": "Xã Lý Bôn (mới)", "tier": "commune", "kind": "commune"}),
        )
        .await?
        .expect(200)?;
    admin
        .put(
            "/api/sites/trung-tam-du-phong",
            &json!({"name": "Trung tâm dự phòng", "tier": "commune", "kind": "ward"}),
        )
        .await?
        .expect(200)?;
    let now = sites(&anyone).await?;
    ensure!(find(&now, "ly-bon").is_some_and(|s| s["name"] == "Xã Lý Bôn (mới)"));
    ensure!(
        find(&now, "trung-tam-du-phong")
            .is_some_and(|s| s["tier"] == "commune" && s["kind"] == "ward")
    );
    admin
        .put(
            "/api/sites/khong-co",
            &json!({"name": "Không có", "tier": "commune"}),
        )
        .await?
        .expect_error(404, "site_not_found")?;

    // A site a meeting still to come invites cannot go; once that meeting is cancelled
    // it can, and a meeting already over keeps naming it.
    let past = admin
        .post(
            "/api/meetings",
            &json!({"title": "Đã họp", "start": time_from_now(-120), "end": time_from_now(-60),
                    "chair": "cao-bang", "sites": ["ly-bon", "son-lo"]}),
        )
        .await?
        .expect(201)?;
    let future = admin
        .post(
            "/api/meetings",
            &json!({"title": "Sắp họp", "start": time_from_now(60), "end": time_from_now(120),
                    "chair": "cao-bang", "sites": ["ly-bon"]}),
        )
        .await?
        .expect(201)?;
    let future_id = future["id"].as_str().context("no id")?;
    let refused = admin
        .delete("/api/sites/ly-bon")
        .await?
        .expect_error(409, "site_in_use")?;
    ensure!(
        refused["message"]
            .as_str()
            .is_some_and(|m| m.contains(future_id)),
        "{refused}"
    );
    admin.delete("/api/sites/son-lo").await?.expect(204)?;
    admin
        .post_empty(&format!("/api/meetings/{future_id}/cancel"))
        .await?
        .expect(200)?;
    admin.delete("/api/sites/ly-bon").await?.expect(204)?;
    let now = sites(&anyone).await?;
    ensure!(now.len() == 57 && find(&now, "ly-bon").is_none() && find(&now, "son-lo").is_none());
    let past_id = past["id"].as_str().context("no id")?;
    let kept = admin
        .get(&format!("/api/meetings/{past_id}"))
        .await?
        .expect(200)?;
    ensure!(kept["sites"][1]["name"] == "Xã Lý Bôn (mới)", "{kept}");
    admin
        .delete("/api/sites/ly-bon")
        .await?
        .expect_error(404, "site_not_found")?;

    // A deleted site cannot be invited; adding its code again brings it back.
    admin
        .post(
            "/api/meetings",
            &json!({"title": "x", "start": time_from_now(300), "end": time_from_now(360),
                    "chair": "cao-bang", "sites": ["ly-bon"]}),
        )
        .await?
        .expect_error(422, "unknown_sites")?;
    admin
        .post(
            "/api/sites",
            &json!({"code": "ly-bon", "name": "Xã Lý Bôn", "tier": "commune", "kind": "commune"}),
        )
        .await?
        .expect(201)?;
    ensure!(find(&sites(&anyone).await?, "ly-bon").is_some());
    Ok(())
}
