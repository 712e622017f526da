//! Calling the REST API as the secretary does: scheduling meetings and reading join links.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, bail};
use cau_signaling::model::format_time;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The admin token the meeting tests configure: `[admin] token = ...`.
pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

/// The configuration snippet that sets [`ADMIN_TOKEN`].
pub fn admin_config() -> String {
    format!("[admin]\ntoken = \"{ADMIN_TOKEN}\"\n")
}

/// Milliseconds since the Unix epoch, as the API's times are kept.
pub fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Schedules a chair-mode meeting chaired by the province, from `start` to `end`
/// (milliseconds), inviting `sites`; returns the API's answer, with every join link.
pub async fn schedule(
    addr: SocketAddr,
    start: i64,
    end: i64,
    sites: &[&str],
) -> anyhow::Result<Value> {
    let body = json!({
        "title": "Giao ban trực tuyến",
        "start": format_time(start),
        "end": format_time(end),
        "chair": "cao-bang",
        "sites": sites,
        "floor_mode": "chair",
    });
    let (status, meeting) = request(addr, "POST", "/api/meetings", Some(&body)).await?;
    if status != 201 {
        bail!("scheduling answered {status}: {meeting}");
    }
    Ok(meeting)
}

/// The join link of `site` in a meeting the API returned.
pub fn link_for(meeting: &Value, site: &str) -> anyhow::Result<String> {
    meeting["links"]
        .as_array()
        .and_then(|links| links.iter().find(|l| l["site"] == site))
        .and_then(|l| l["url"].as_str())
        .map(str::to_owned)
        .with_context(|| format!("no link for {site}"))
}

/// The token in a join link.
pub fn token_in(link: &str) -> anyhow::Result<String> {
    Ok(link
        .split_once("token=")
        .context("a link without a token")?
        .1
        .to_owned())
}

/// An HTTP request with the admin token and an optional JSON body; returns the status
/// and the JSON answer (null if the answer is not JSON).
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> anyhow::Result<(u16, Value)> {
    let (status, text) = request_as(addr, method, path, Some(ADMIN_TOKEN), body).await?;
    Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
}

/// An HTTP request with the bearer token `token` (none if `None`); returns the status
/// and the body as text.
pub async fn request_as(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> anyhow::Result<(u16, String)> {
    let body = body.map(Value::to_string).unwrap_or_default();
    let authorization = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{authorization}\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream.write_all(request.as_bytes()).await?;
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut response))
        .await
        .context("no HTTP answer")??;
    let text = String::from_utf8_lossy(&response);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("not an HTTP answer: {text:.80}"))?;
    let (_, body) = text.split_once("\r\n\r\n").context("no body")?;
    Ok((status, body.to_owned()))
}
