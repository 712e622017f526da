//! HTTPS for browsers on the LAN: browsers allow the camera only in a secure context,
//! and `http://` is one only for localhost.

use anyhow::Context;
use axum_server::tls_rustls::RustlsConfig;
use cau_config::{TlsConfig, TlsMode};

/// The rustls configuration for `config`'s mode (`files` or `self-signed`).
pub(crate) async fn rustls_config(config: &TlsConfig) -> anyhow::Result<RustlsConfig> {
    match config.mode {
        TlsMode::Files => RustlsConfig::from_pem_file(&config.cert, &config.key)
            .await
            .with_context(|| {
                format!(
                    "cannot load the TLS certificate {} and key {}",
                    config.cert.display(),
                    config.key.display()
                )
            }),
        TlsMode::SelfSigned => {
            let certified = rcgen::generate_simple_self_signed(config.self_signed_names.clone())
                .context("cannot generate a self-signed certificate")?;
            tracing::warn!(
                names = ?config.self_signed_names,
                "serving HTTPS with a self-signed certificate: browsers will warn until it is accepted"
            );
            RustlsConfig::from_pem(
                certified.cert.pem().into_bytes(),
                certified.signing_key.serialize_pem().into_bytes(),
            )
            .await
            .context("cannot use the generated certificate")
        }
        TlsMode::Off => anyhow::bail!("TLS is off"),
    }
}
