//! Alert webhooks: each alert is POSTed as JSON to the configured URL, retried with
//! back-off, on a task of its own so that a slow or dead receiver delays nothing else.

use std::time::Duration;

use serde::Serialize;
use tokio::sync::mpsc::UnboundedReceiver;

use super::Alert;

/// A receiver that has not answered in this long is taken as failed, and tried again.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(60);

#[derive(Serialize)]
struct Body<'a> {
    source: &'static str,
    alert: &'a Alert,
}

pub(super) async fn deliver(url: String, attempts: u32, mut alerts: UnboundedReceiver<Alert>) {
    let client = match reqwest::Client::builder().timeout(ATTEMPT_TIMEOUT).build() {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(%error, "cannot build the webhook client: alerts stay on the dashboard");
            return;
        }
    };
    while let Some(alert) = alerts.recv().await {
        tokio::spawn(send(client.clone(), url.clone(), attempts.max(1), alert));
    }
}

async fn send(client: reqwest::Client, url: String, attempts: u32, alert: Alert) {
    let body = match serde_json::to_vec(&Body {
        source: "cau",
        alert: &alert,
    }) {
        Ok(body) => body,
        Err(error) => {
            tracing::error!(%error, "cannot serialize an alert");
            return;
        }
    };
    let mut backoff = FIRST_BACKOFF;
    for attempt in 1..=attempts {
        let result = client
            .post(&url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.clone())
            .send()
            .await;
        match result {
            Ok(response) if response.status().is_success() => {
                tracing::debug!(alert = alert.id, attempt, "webhook delivered");
                return;
            }
            Ok(response) => {
                tracing::warn!(alert = alert.id, attempt, status = %response.status(), "webhook refused");
            }
            Err(error) => {
                // Only the host: a URL may carry a secret in its path or query.
                tracing::warn!(alert = alert.id, attempt, error = %error.without_url(), "webhook failed");
            }
        }
        if attempt < attempts {
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }
    tracing::warn!(
        alert = alert.id,
        "webhook gave up after {attempts} attempts"
    );
}
