//! str0m's DTLS on aws-lc, with dimpl's configuration built once instead of per peer.
//!
//! Why: str0m's aws-lc provider builds a new `dimpl::Config` for every peer, and building
//! one checks the crypto provider: an ECDH exchange on P-256, P-384 and X25519 and an
//! ECDSA verification, about a millisecond, paid on the media thread that every room's
//! packets wait on (`docs/fuzzing.md` found it; `docs/benchmarks.md` has the figures).
//! The configuration is the same for every peer (no cookie, as str0m's: ICE has already
//! checked the return path), so it is built the first time and shared; everything else
//! is str0m's provider unchanged, and each peer still gets its own DTLS state and keys.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use str0m::config::{CryptoProvider, DtlsCert};
use str0m::crypto::CryptoError;
use str0m::crypto::dtls::{
    DtlsImplError, DtlsInstance, DtlsOutput, DtlsProvider, DtlsVersion, ProtocolVersion,
};

/// The crypto the core gives every peer: str0m's aws-lc provider, with
/// [`SharedConfigDtls`] for DTLS.
pub fn crypto_provider() -> CryptoProvider {
    CryptoProvider {
        dtls_provider: &SHARED_CONFIG_DTLS,
        ..str0m::crypto::from_feature_flags()
    }
}

static SHARED_CONFIG_DTLS: SharedConfigDtls = SharedConfigDtls {
    config: Mutex::new(None),
};

/// Makes each peer's DTLS from one `dimpl::Config` per MTU (in practice, one).
#[derive(Debug)]
pub(crate) struct SharedConfigDtls {
    config: Mutex<Option<(Option<usize>, Arc<dimpl::Config>)>>,
}

impl SharedConfigDtls {
    fn config(&self, mtu: Option<usize>) -> Result<Arc<dimpl::Config>, CryptoError> {
        // A poisoned lock only means another thread panicked while building: the value
        // inside is still either absent or whole.
        let mut cached = self.config.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((cached_mtu, config)) = cached.as_ref()
            && *cached_mtu == mtu
        {
            return Ok(config.clone());
        }
        let mut builder = dimpl::Config::builder().use_server_cookie(false);
        if let Some(mtu) = mtu {
            builder = builder.mtu(mtu);
        }
        let config = Arc::new(
            builder
                .build()
                .map_err(|e| CryptoError::Other(format!("dimpl config creation failed: {e}")))?,
        );
        *cached = Some((mtu, config.clone()));
        Ok(config)
    }
}

impl DtlsProvider for SharedConfigDtls {
    fn generate_certificate(&self) -> Option<DtlsCert> {
        dimpl::certificate::generate_self_signed_certificate().ok()
    }

    fn new_dtls(
        &self,
        cert: &DtlsCert,
        now: Instant,
        dtls_version: DtlsVersion,
        mtu: Option<usize>,
    ) -> Result<Box<dyn DtlsInstance>, CryptoError> {
        let config = self.config(mtu)?;
        let cert = cert.clone();
        let dtls = match dtls_version {
            DtlsVersion::Dtls12 => dimpl::Dtls::new_12(config, cert, now),
            DtlsVersion::Dtls13 => dimpl::Dtls::new_13(config, cert, now),
            DtlsVersion::Auto => dimpl::Dtls::new_auto(config, cert, now),
            other => {
                return Err(CryptoError::Other(format!(
                    "unsupported DTLS version: {other}"
                )));
            }
        };
        Ok(Box::new(PeerDtls(dtls)))
    }
}

/// One peer's DTLS: dimpl's, as str0m's own provider wraps it.
struct PeerDtls(dimpl::Dtls);

impl std::fmt::Debug for PeerDtls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerDtls").finish_non_exhaustive()
    }
}

impl DtlsInstance for PeerDtls {
    fn set_active(&mut self, active: bool) {
        self.0.set_active(active);
    }

    fn handle_packet(&mut self, packet: &[u8]) -> Result<(), DtlsImplError> {
        self.0.handle_packet(packet)
    }

    fn poll_output<'a>(&mut self, buf: &'a mut [u8]) -> DtlsOutput<'a> {
        self.0.poll_output(buf)
    }

    fn handle_timeout(&mut self, now: Instant) -> Result<(), DtlsImplError> {
        self.0.handle_timeout(now)
    }

    fn send_application_data(&mut self, data: &[u8]) -> Result<usize, DtlsImplError> {
        self.0.send_application_data(data)
    }

    fn is_active(&self) -> bool {
        self.0.is_active()
    }

    fn protocol_version(&self) -> Option<ProtocolVersion> {
        self.0.protocol_version()
    }

    fn is_closing(&self) -> bool {
        self.0.is_closing()
    }

    fn is_closed(&self) -> bool {
        self.0.is_closed()
    }

    fn close(&mut self) -> Result<(), DtlsImplError> {
        self.0.close()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_share_one_configuration_per_mtu() {
        let dtls = SharedConfigDtls {
            config: Mutex::new(None),
        };
        let first = dtls.config(Some(1150)).unwrap();
        let second = dtls.config(Some(1150)).unwrap();
        assert!(Arc::ptr_eq(&first, &second), "built again for the same MTU");
        let other = dtls.config(Some(1200)).unwrap();
        assert!(
            !Arc::ptr_eq(&first, &other),
            "another MTU got the old configuration"
        );
        assert_eq!(other.mtu(), 1200);
    }
}
