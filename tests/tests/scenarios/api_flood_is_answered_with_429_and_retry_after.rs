//! API calls beyond an address's burst are answered with HTTP 429, `Retry-After` and a JSON `rate_limited` error, while other addresses, the pages, /healthz and a running call are not affected, and the address is served again after the wait it was told.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use cau_tests::api::{ADMIN_TOKEN, admin_config};
use cau_tests::client::{ClientConfig, MediaKind, TestClient, warm_up};
use cau_tests::http::{HttpResponse, request_from};
use cau_tests::server::start_test_server_with;

const TIMEOUT: Duration = Duration::from_secs(10);
const BURST: usize = 5;
const PACKETS: u32 = 50;

#[tokio::test(flavor = "multi_thread")]
async fn api_flood_is_answered_with_429_and_retry_after() -> anyhow::Result<()> {
    // Five calls at once, then one a second.
    let server = start_test_server_with(&format!(
        "{}[limits]\napi_burst = {BURST}\napi_requests_per_minute = 60\n",
        admin_config()
    ))
    .await?;
    let addr = server.http_addr();
    let anh = TestClient::join(ClientConfig::new(server.ws_url(), "call", "anh")).await?;
    let binh = TestClient::join(ClientConfig::new(server.ws_url(), "call", "binh")).await?;
    warm_up(&[&anh, &binh], TIMEOUT).await?;

    let flooder: IpAddr = "127.0.0.3".parse()?;
    let bearer = format!("Bearer {ADMIN_TOKEN}");
    let calls = [
        "/api/sites",
        "/api/meetings",
        "/api/status",
        "/metrics",
        "/api/sites",
    ];
    for path in calls {
        get(flooder, addr, path, &bearer).await?.status_is(200)?;
    }
    // The sixth, whatever the endpoint and even without a token, is refused before
    // anything else is looked at.
    let mut waits = Vec::new();
    for path in ["/api/meetings", "/api/sites", "/metrics"] {
        let refused = get(flooder, addr, path, "").await?;
        refused.status_is(429)?;
        let body: serde_json::Value =
            serde_json::from_slice(&refused.body).context("the 429's body is not JSON")?;
        ensure!(body["code"] == "rate_limited", "429 with {body}");
        ensure!(
            body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "429 without a message: {body}"
        );
        let wait: u64 = refused
            .header("retry-after")
            .context("a 429 without Retry-After")?
            .parse()
            .context("Retry-After is not whole seconds")?;
        ensure!(
            (1..=2).contains(&wait),
            "Retry-After {wait} s for one call a second"
        );
        waits.push(wait);
    }

    // Another address, the pages and the health check are served meanwhile.
    let neighbour: IpAddr = "127.0.0.4".parse()?;
    get(neighbour, addr, "/api/sites", &bearer)
        .await?
        .status_is(200)?;
    get(flooder, addr, "/healthz", "").await?.status_is(200)?;
    get(flooder, addr, "/", "").await?.status_is(200)?;

    // After the wait it was told, the address is served again.
    let longest = waits.into_iter().max().unwrap_or(1);
    tokio::time::sleep(Duration::from_secs(longest)).await;
    get(flooder, addr, "/api/sites", &bearer)
        .await?
        .status_is(200)
        .context("after waiting as Retry-After said")?;

    // The call went on throughout.
    for index in 0..PACKETS {
        anh.send_tagged("anh", MediaKind::Audio, index).await?;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    binh.wait_until("anh's audio after the API flood", TIMEOUT, |c| {
        c.check_received_exactly(anh.participant_id(), MediaKind::Audio, "anh", PACKETS)
            .is_ok()
    })
    .await?;
    anh.leave().await?;
    binh.leave().await?;
    Ok(())
}

async fn get(
    from: IpAddr,
    addr: SocketAddr,
    path: &str,
    authorization: &str,
) -> anyhow::Result<HttpResponse> {
    let headers: Vec<(&str, &str)> = if authorization.is_empty() {
        Vec::new()
    } else {
        vec![("Authorization", authorization)]
    };
    request_from(from, addr, "GET", path, &headers, None).await
}

trait StatusIs {
    fn status_is(&self, expected: u16) -> anyhow::Result<()>;
}

impl StatusIs for HttpResponse {
    fn status_is(&self, expected: u16) -> anyhow::Result<()> {
        if self.status != expected {
            bail!("expected {expected}, got {}: {}", self.status, self.text());
        }
        Ok(())
    }
}
