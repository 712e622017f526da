//! A small HTTP/1.1 client for the REST API tests: any method, headers and a body, one
//! request per connection, on plain HTTP over loopback.
//!
//! Written here rather than taken from a crate: the tests need one request at a time
//! to a server they started, and every byte of it visible.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long a reply may take on loopback, with a wide margin for a loaded machine.
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// A response: status, headers (names in lower case) and the body, de-chunked.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first header named `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as text (lossy: the API answers UTF-8).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends one request and reads the whole response. `headers` are added after `Host`,
/// `Connection: close` and, with a body, `Content-Length`.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> anyhow::Result<HttpResponse> {
    let stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to {addr} for {method} {path}"))?;
    exchange(stream, addr, method, path, headers, body).await
}

/// [`request`] from the loopback address `local` (any of 127.0.0.0/8), for tests of
/// per-address limits: each address is another client.
pub async fn request_from(
    local: std::net::IpAddr,
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> anyhow::Result<HttpResponse> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket
        .bind(SocketAddr::new(local, 0))
        .with_context(|| format!("binding to {local}"))?;
    let stream = socket
        .connect(addr)
        .await
        .with_context(|| format!("connecting from {local} to {addr} for {method} {path}"))?;
    exchange(stream, addr, method, path, headers, body).await
}

async fn exchange(
    mut stream: TcpStream,
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> anyhow::Result<HttpResponse> {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some(body) = body {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await?;
    if let Some(body) = body {
        stream.write_all(body).await?;
    }
    let mut raw = Vec::new();
    tokio::time::timeout(REPLY_TIMEOUT, stream.read_to_end(&mut raw))
        .await
        .with_context(|| format!("no response to {method} {path} within {REPLY_TIMEOUT:?}"))??;
    parse(&raw).with_context(|| format!("the response to {method} {path}"))
}

fn parse(raw: &[u8]) -> anyhow::Result<HttpResponse> {
    let Some(split) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        bail!("no end of headers in {:?}", String::from_utf8_lossy(raw));
    };
    let head = std::str::from_utf8(&raw[..split]).context("headers are not UTF-8")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("not a status line: {status_line:?}"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    let rest = &raw[split + 4..];
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let body = if chunked {
        dechunk(rest)?
    } else {
        rest.to_vec()
    };
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

fn dechunk(mut rest: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .context("a chunk size line without its end")?;
        let size_text = std::str::from_utf8(&rest[..line_end])?;
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .with_context(|| format!("a bad chunk size {size_text:?}"))?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Ok(body);
        }
        if rest.len() < size + 2 {
            bail!("a chunk shorter than its size");
        }
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_and_chunked_bodies() {
        let plain = parse(b"HTTP/1.1 201 Created\r\nContent-Type: a/b\r\n\r\nhello").unwrap();
        assert_eq!(plain.status, 201);
        assert_eq!(plain.header("content-type"), Some("a/b"));
        assert_eq!(plain.body, b"hello");
        let chunked =
            parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n1\r\n!\r\n0\r\n\r\n")
                .unwrap();
        assert_eq!(chunked.body, b"hello!");
    }
}
