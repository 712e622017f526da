//! A bare WebSocket and a bare HTTP GET, for tests that send what no real client would.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, client_async, connect_async};

/// How long a reply may take on loopback, with a wide margin for a loaded machine.
const REPLY_TIMEOUT: Duration = Duration::from_secs(5);

/// A signaling WebSocket driven by hand.
pub struct RawSocket {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl RawSocket {
    pub async fn connect(ws_url: &str) -> anyhow::Result<RawSocket> {
        let (socket, _) = connect_async(ws_url)
            .await
            .with_context(|| format!("connecting to {ws_url}"))?;
        Ok(RawSocket { socket })
    }

    /// Connects from the loopback address `local` (any of 127.0.0.0/8), for tests of
    /// per-address limits: each address is another client.
    pub async fn connect_from(ws_url: &str, local: IpAddr) -> anyhow::Result<RawSocket> {
        let request = ws_url.into_client_request()?;
        let host = request.uri().host().context("no host in the URL")?;
        let port = request.uri().port_u16().context("no port in the URL")?;
        let server = SocketAddr::new(host.parse().context("the URL's host is no address")?, port);
        let tcp = tokio::net::TcpSocket::new_v4()?;
        tcp.bind(SocketAddr::new(local, 0))
            .with_context(|| format!("binding to {local}"))?;
        let stream = tcp.connect(server).await?;
        let (socket, _) = client_async(request, MaybeTlsStream::Plain(stream))
            .await
            .with_context(|| format!("connecting to {ws_url} from {local}"))?;
        Ok(RawSocket { socket })
    }

    /// Connects with `Origin: origin`, as a browser on a page of that origin would.
    pub async fn connect_with_origin(ws_url: &str, origin: &str) -> anyhow::Result<RawSocket> {
        let mut request = ws_url.into_client_request()?;
        request
            .headers_mut()
            .insert("Origin", origin.parse().context("not a header value")?);
        let (socket, _) = connect_async(request)
            .await
            .with_context(|| format!("connecting to {ws_url} with Origin {origin}"))?;
        Ok(RawSocket { socket })
    }

    pub async fn send_text(&mut self, text: impl Into<String>) -> anyhow::Result<()> {
        let text: String = text.into();
        self.socket
            .send(Message::text(text))
            .await
            .context("sending a text frame")
    }

    pub async fn send_binary(&mut self, bytes: Vec<u8>) -> anyhow::Result<()> {
        self.socket
            .send(Message::binary(bytes))
            .await
            .context("sending a binary frame")
    }

    /// The next JSON message from the server, skipping pings. `None` if the server closed.
    pub async fn next_json(&mut self) -> anyhow::Result<Option<Value>> {
        loop {
            let frame = tokio::time::timeout(REPLY_TIMEOUT, self.socket.next())
                .await
                .context("no reply from the server")?;
            match frame {
                None | Some(Ok(Message::Close(_))) | Some(Err(_)) => return Ok(None),
                Some(Ok(Message::Text(text))) => {
                    return serde_json::from_str(text.as_str())
                        .map(Some)
                        .with_context(|| format!("the server sent invalid JSON: {text}"));
                }
                Some(Ok(_)) => continue,
            }
        }
    }

    /// Reads and discards what the server sends until it has been quiet for `quiet`.
    pub async fn drain(&mut self, quiet: Duration) {
        while let Ok(Some(_)) = tokio::time::timeout(quiet, self.socket.next()).await {}
    }

    /// The next message of type `kind`, skipping others (such as room news).
    pub async fn expect_type(&mut self, kind: &str) -> anyhow::Result<Value> {
        loop {
            match self.next_json().await? {
                Some(message) if message["type"] == kind => return Ok(message),
                Some(_) => continue,
                None => bail!("the server closed the socket while we waited for `{kind}`"),
            }
        }
    }

    /// Sends `text` and expects an `error` with `code` and a non-empty message in reply.
    pub async fn expect_refusal(
        &mut self,
        text: impl Into<String>,
        code: &str,
    ) -> anyhow::Result<Value> {
        let text: String = text.into();
        let shown: String = text.chars().take(60).collect();
        self.send_text(text).await?;
        let reply = self
            .expect_type("error")
            .await
            .with_context(|| format!("after sending {shown:?}"))?;
        if reply["code"] != code {
            bail!("sent {shown:?}, expected error {code}, got {reply}");
        }
        if reply["message"].as_str().is_none_or(str::is_empty) {
            bail!("error {code} came without a readable message: {reply}");
        }
        Ok(reply)
    }

    /// Waits for the server to close the socket; fails if it sends anything but errors first.
    pub async fn expect_closed(&mut self) -> anyhow::Result<()> {
        loop {
            match self.next_json().await? {
                None => return Ok(()),
                Some(message) if message["type"] == "error" => continue,
                Some(message) => bail!("expected the socket to close, got {message}"),
            }
        }
    }
}

/// A plain HTTP/1.1 GET on loopback; returns the status code and the body.
pub async fn http_get(addr: std::net::SocketAddr, path: &str) -> anyhow::Result<(u16, String)> {
    let mut stream = TcpStream::connect(addr)
        .await
        .context("connecting for HTTP")?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut response = Vec::new();
    tokio::time::timeout(REPLY_TIMEOUT, stream.read_to_end(&mut response))
        .await
        .context("no HTTP response")??;
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("not an HTTP response: {text:.80}"))?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}
