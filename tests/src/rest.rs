//! The REST API from a test's side: a server with its own data directory and admin
//! token, which can be restarted on the same data, and a JSON client for it.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use serde_json::Value;

use crate::http::{HttpResponse, request};
use crate::server::{RunningServer, start_test_server_with};

/// A test server for the API. Its data directory is removed when this is dropped.
pub struct ApiServer {
    server: Option<RunningServer>,
    data_dir: PathBuf,
    /// Empty when the server is to generate its own.
    admin_token: String,
    extra: String,
}

impl ApiServer {
    /// A server with a fresh data directory and a random admin token.
    pub async fn start() -> anyhow::Result<ApiServer> {
        ApiServer::start_with("").await
    }

    /// The same, with `extra` TOML laid over the test configuration.
    pub async fn start_with(extra: &str) -> anyhow::Result<ApiServer> {
        ApiServer::launch(random_hex(), extra).await
    }

    /// A server with no admin token configured, which generates one on its first start.
    pub async fn start_without_admin_token() -> anyhow::Result<ApiServer> {
        ApiServer::launch(String::new(), "").await
    }

    async fn launch(admin_token: String, extra: &str) -> anyhow::Result<ApiServer> {
        let data_dir = std::env::temp_dir().join(format!("cau-api-test-{}", random_hex()));
        let mut server = ApiServer {
            server: None,
            data_dir,
            admin_token,
            extra: extra.to_owned(),
        };
        server.start_again().await?;
        Ok(server)
    }

    /// The running server. Panics between [`ApiServer::stop`] and
    /// [`ApiServer::start_again`], which is a mistake in the test.
    pub fn server(&self) -> &RunningServer {
        self.server
            .as_ref()
            .expect("the test server is running: start_again follows stop")
    }

    pub fn addr(&self) -> SocketAddr {
        self.server().http_addr()
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The configured admin token (empty for [`ApiServer::start_without_admin_token`]).
    pub fn admin_token(&self) -> &str {
        &self.admin_token
    }

    /// A client with the admin token.
    pub fn admin(&self) -> Api {
        self.with_bearer(&self.admin_token)
    }

    /// A client without any token.
    pub fn anonymous(&self) -> Api {
        Api {
            addr: self.addr(),
            bearer: None,
        }
    }

    /// A client presenting `token` as its bearer token.
    pub fn with_bearer(&self, token: &str) -> Api {
        Api {
            addr: self.addr(),
            bearer: Some(token.to_owned()),
        }
    }

    /// Shuts the server down; its data directory stays.
    pub async fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown(Duration::from_secs(1)).await;
        }
    }

    /// Starts a server on the same data directory and configuration (on new ports).
    pub async fn start_again(&mut self) -> anyhow::Result<()> {
        self.stop().await;
        let admin = if self.admin_token.is_empty() {
            String::new()
        } else {
            format!("[admin]\ntoken = {:?}\n", self.admin_token)
        };
        let text = format!(
            "[storage]\ndata_dir = {:?}\n{admin}{}",
            self.data_dir.display().to_string(),
            self.extra
        );
        self.server = Some(start_test_server_with(&text).await?);
        Ok(())
    }

    /// [`ApiServer::stop`], then [`ApiServer::start_again`].
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.stop().await;
        self.start_again().await
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

/// A JSON client of one server, with or without a bearer token.
#[derive(Clone)]
pub struct Api {
    addr: SocketAddr,
    bearer: Option<String>,
}

impl Api {
    pub async fn get(&self, path: &str) -> anyhow::Result<Reply> {
        self.send("GET", path, None).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> anyhow::Result<Reply> {
        self.send("POST", path, Some(body.to_string())).await
    }

    /// A POST with no body, for actions such as cancel.
    pub async fn post_empty(&self, path: &str) -> anyhow::Result<Reply> {
        self.send("POST", path, None).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> anyhow::Result<Reply> {
        self.send("PUT", path, Some(body.to_string())).await
    }

    pub async fn delete(&self, path: &str) -> anyhow::Result<Reply> {
        self.send("DELETE", path, None).await
    }

    /// Sends `body` as it is, with this content type: for bodies no JSON encoder makes.
    pub async fn send_raw(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: &[u8],
    ) -> anyhow::Result<Reply> {
        let mut headers = vec![("Content-Type", content_type.to_owned())];
        if let Some(token) = &self.bearer {
            headers.push(("Authorization", format!("Bearer {token}")));
        }
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let response = request(self.addr, method, path, &headers, Some(body)).await?;
        Ok(Reply {
            what: format!("{method} {path}"),
            response,
        })
    }

    async fn send(&self, method: &str, path: &str, body: Option<String>) -> anyhow::Result<Reply> {
        let mut headers = Vec::new();
        if body.is_some() {
            headers.push(("Content-Type", "application/json".to_owned()));
        }
        if let Some(token) = &self.bearer {
            headers.push(("Authorization", format!("Bearer {token}")));
        }
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let response = request(
            self.addr,
            method,
            path,
            &headers,
            body.as_deref().map(str::as_bytes),
        )
        .await?;
        Ok(Reply {
            what: format!("{method} {path}"),
            response,
        })
    }
}

/// A response, with the request it answers for error messages.
#[derive(Debug)]
pub struct Reply {
    what: String,
    pub response: HttpResponse,
}

impl Reply {
    pub fn status(&self) -> u16 {
        self.response.status
    }

    pub fn text(&self) -> String {
        self.response.text()
    }

    /// The body as JSON.
    pub fn json(&self) -> anyhow::Result<Value> {
        serde_json::from_slice(&self.response.body)
            .with_context(|| format!("{} answered non-JSON: {}", self.what, self.text()))
    }

    /// Fails unless the status is `status`.
    pub fn expect_status(&self, status: u16) -> anyhow::Result<()> {
        if self.status() != status {
            bail!(
                "{} answered {}, expected {status}: {}",
                self.what,
                self.status(),
                self.text()
            );
        }
        Ok(())
    }

    /// Fails unless the status is `status`; returns the JSON body (null if empty).
    pub fn expect(&self, status: u16) -> anyhow::Result<Value> {
        self.expect_status(status)?;
        if self.response.body.is_empty() {
            return Ok(Value::Null);
        }
        self.json()
    }

    /// Fails unless this is a refusal with `status`, JSON `code` and a readable message.
    pub fn expect_error(&self, status: u16, code: &str) -> anyhow::Result<Value> {
        let body = self.expect(status)?;
        if body["code"] != code {
            bail!(
                "{} was refused with {body}, expected code {code}",
                self.what
            );
        }
        if body["message"].as_str().is_none_or(str::is_empty) {
            bail!(
                "{} was refused without a readable message: {body}",
                self.what
            );
        }
        Ok(body)
    }
}

/// A time `minutes` from now (negative: ago), as RFC 3339 in Vietnam's time zone
/// (+07:00), whole seconds.
pub fn time_from_now(minutes: i64) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs() as i64;
    rfc3339_at_plus_7(now + minutes * 60)
}

/// Unix seconds as RFC 3339 at +07:00.
pub fn rfc3339_at_plus_7(unix_seconds: i64) -> String {
    let local = unix_seconds + 7 * 3600;
    let days = local.div_euclid(86_400);
    let seconds = local.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}+07:00",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    )
}

/// The proleptic Gregorian date of a day count from 1970-01-01 (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The `token` parameter of a join link.
pub fn token_of(link: &str) -> anyhow::Result<String> {
    let (_, query) = link
        .split_once('?')
        .with_context(|| format!("no query in link {link}"))?;
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix("token="))
        .map(str::to_owned)
        .with_context(|| format!("no token in link {link}"))
}

/// The join link of `site` in a meeting answer with `links`.
pub fn link_of(meeting: &Value, site: &str) -> anyhow::Result<String> {
    meeting["links"]
        .as_array()
        .with_context(|| format!("no links in {meeting}"))?
        .iter()
        .find(|link| link["site"] == site)
        .and_then(|link| link["url"].as_str())
        .map(str::to_owned)
        .with_context(|| format!("no link for {site} in {meeting}"))
}

/// 128 bits from the standard library's per-process random hasher keys: enough for
/// names and tokens that must not collide between tests.
fn random_hex() -> String {
    let half = || {
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u128(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos(),
        );
        hasher.finish()
    };
    format!("{:016x}{:016x}", half(), half())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_times_at_plus_7() {
        assert_eq!(rfc3339_at_plus_7(0), "1970-01-01T07:00:00+07:00");
        // 2026-07-01T01:00:00Z.
        assert_eq!(
            rfc3339_at_plus_7(1_782_867_600),
            "2026-07-01T08:00:00+07:00"
        );
        // 2024-02-29T20:30:05Z, a leap day, crossing midnight in Vietnam.
        assert_eq!(
            rfc3339_at_plus_7(1_709_238_605),
            "2024-03-01T03:30:05+07:00"
        );
    }
}
