//! With no admin token configured, the first start generates one and hands it out
//! once; later starts show nothing, and the same token keeps working.

use anyhow::{Context, ensure};
use cau_tests::rest::ApiServer;

#[tokio::test]
async fn generated_admin_token_is_shown_once() -> anyhow::Result<()> {
    let mut server = ApiServer::start_without_admin_token().await?;
    let token = server
        .server()
        .generated_admin_token()
        .context("the first start shows no token")?
        .to_owned();
    ensure!(token.len() >= 32, "a short token: {token}");
    server
        .with_bearer(&token)
        .get("/api/meetings")
        .await?
        .expect(200)?;
    server
        .with_bearer("not-it")
        .get("/api/meetings")
        .await?
        .expect_error(401, "admin_token_invalid")?;

    server.restart().await?;
    ensure!(
        server.server().generated_admin_token().is_none(),
        "a restart showed a token again"
    );
    server
        .with_bearer(&token)
        .get("/api/meetings")
        .await?
        .expect(200)?;
    // Only its hash is kept.
    let database = std::fs::read(server.data_dir().join("cau.sqlite3"))?;
    let wal = std::fs::read(server.data_dir().join("cau.sqlite3-wal")).unwrap_or_default();
    for bytes in [&database, &wal] {
        ensure!(
            !bytes.windows(token.len()).any(|w| w == token.as_bytes()),
            "the token is stored in clear"
        );
    }
    Ok(())
}
