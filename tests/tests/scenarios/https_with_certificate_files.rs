//! With `tls.mode = "files"`, the server serves HTTPS and WSS with the configured certificate and key: a client that trusts only that certificate fetches a page and joins a room.

use std::sync::Arc;

use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use rustls::pki_types::ServerName;
use rustls::pki_types::pem::PemObject;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_tungstenite::tungstenite::Message;

use cau_tests::server::start_test_server_with;

#[tokio::test(flavor = "multi_thread")]
async fn https_with_certificate_files() -> anyhow::Result<()> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])?;
    let directory = std::env::temp_dir().join(format!("cau-tls-{}", std::process::id()));
    std::fs::create_dir_all(&directory)?;
    let cert_path = directory.join("cert.pem");
    let key_path = directory.join("key.pem");
    std::fs::write(&cert_path, certified.cert.pem())?;
    std::fs::write(&key_path, certified.signing_key.serialize_pem())?;

    let server = start_test_server_with(&format!(
        "[tls]\nmode = \"files\"\ncert = \"{}\"\nkey = \"{}\"",
        cert_path.display(),
        key_path.display()
    ))
    .await?;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(rustls::pki_types::CertificateDer::from_pem_slice(
        certified.cert.pem().as_bytes(),
    )?)?;
    let client_config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = TlsConnector::from(Arc::new(client_config));
    let name = ServerName::try_from("localhost")?;

    // A page over HTTPS.
    let tcp = TcpStream::connect(server.http_addr()).await?;
    let mut tls = connector
        .connect(name.clone(), tcp)
        .await
        .context("TLS handshake")?;
    tls.write_all(b"GET /join/giao-ban HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await?;
    let mut response = Vec::new();
    // A TLS peer may close without close_notify; what was read before counts.
    let _ = tls.read_to_end(&mut response).await;
    let response = String::from_utf8_lossy(&response);
    if !response.starts_with("HTTP/1.1 200") || !response.contains("<html") {
        bail!("the join page over HTTPS: {:.200}", response);
    }

    // Signaling over WSS.
    let tcp = TcpStream::connect(server.http_addr()).await?;
    let tls = connector
        .connect(name, tcp)
        .await
        .context("TLS handshake for WSS")?;
    let (mut socket, _) = tokio_tungstenite::client_async("wss://localhost/ws", tls).await?;
    socket
        .send(Message::text(
            r#"{"type":"join","room":"tls","name":"anh"}"#,
        ))
        .await?;
    let reply = tokio::time::timeout(std::time::Duration::from_secs(5), socket.next())
        .await
        .context("no reply over WSS")?
        .context("the WSS socket closed")??;
    let reply: serde_json::Value = serde_json::from_str(reply.to_text()?)?;
    if reply["type"] != "joined" {
        bail!("expected `joined` over WSS, got {reply}");
    }
    let _ = std::fs::remove_dir_all(&directory);
    Ok(())
}
