//! `GET /api/openapi.json` is an OpenAPI 3 document describing every endpoint of the
//! REST API, with the admin token as its bearer security scheme.

use anyhow::{Context, ensure};
use cau_tests::rest::ApiServer;

#[tokio::test]
async fn openapi_document_describes_every_endpoint() -> anyhow::Result<()> {
    let server = ApiServer::start().await?;
    let document = server
        .anonymous()
        .get("/api/openapi.json")
        .await?
        .expect(200)?;
    let version = document["openapi"].as_str().context("no openapi field")?;
    ensure!(version.starts_with("3."), "OpenAPI {version}");
    let paths = document["paths"].as_object().context("no paths")?;
    let expected = [
        ("/api/sites", &["get", "post"][..]),
        ("/api/sites/{code}", &["put", "delete"]),
        ("/api/sites/{code}/line-tests", &["get"]),
        ("/api/sites/{code}/link", &["get"]),
        ("/api/sites/{code}/link/events", &["get"]),
        ("/api/monitor/sites", &["get"]),
        ("/api/meetings", &["get", "post"]),
        ("/api/meetings/{id}", &["get", "put"]),
        ("/api/meetings/{id}.ics", &["get"]),
        ("/api/meetings/{id}/cancel", &["post"]),
        ("/api/meetings/{id}/links", &["post"]),
        ("/api/meetings/{id}/links/{token_id}", &["delete"]),
        ("/api/meetings/{id}/sites/{code}/reissue", &["post"]),
        ("/api/meetings/{id}/attendance", &["get"]),
        ("/api/meetings/{id}/attendance.csv", &["get"]),
        ("/api/invitation", &["get"]),
        ("/api/openapi.json", &["get"]),
    ];
    for (path, methods) in expected {
        let item = paths
            .get(path)
            .with_context(|| format!("{path} is not described"))?;
        for method in methods {
            ensure!(
                item.get(*method).is_some(),
                "{method} {path} is not described"
            );
        }
    }
    ensure!(
        paths.len() == expected.len(),
        "undocumented or unexpected paths: {:?}",
        paths.keys().collect::<Vec<_>>()
    );
    ensure!(
        document["components"]["securitySchemes"]["admin"]["scheme"] == "bearer",
        "{}",
        document["components"]["securitySchemes"]
    );
    let schemas = document["components"]["schemas"]
        .as_object()
        .context("no schemas")?;
    for schema in [
        "MeetingRequest",
        "MeetingView",
        "SiteView",
        "InvitationView",
        "ErrorBody",
        "LineTestView",
    ] {
        ensure!(schemas.contains_key(schema), "no schema {schema}");
    }
    Ok(())
}
