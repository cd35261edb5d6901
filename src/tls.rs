//! HTTPS on the public listener: rustls with a PEM chain and key (PKCS#8, PKCS#1 or
//! SEC1), TLS 1.2 and 1.3, ALPN `h2` then `http/1.1`. Loaded at validation, so `check`
//! reports a missing, unreadable or mismatched key, and again on every reload.

use std::path::Path;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Why a certificate and key cannot serve.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TlsError {
    #[error("cannot read certificates from {path}: {reason}")]
    Certificates { path: String, reason: String },
    #[error("no PEM certificate in {0}")]
    NoCertificate(String),
    #[error("cannot read a PEM private key (PKCS#8, PKCS#1 or SEC1) from {path}: {reason}")]
    Key { path: String, reason: String },
    #[error("the key does not fit the certificate: {0}")]
    Rejected(String),
}

/// The rustls configuration for `cert_file` and `key_file`.
pub(crate) fn server_config(
    cert_file: &Path,
    key_file: &Path,
) -> Result<Arc<ServerConfig>, TlsError> {
    let shown = |p: &Path| p.display().to_string();
    let certs = CertificateDer::pem_file_iter(cert_file)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|e| TlsError::Certificates {
            path: shown(cert_file),
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate(shown(cert_file)));
    }
    let key = PrivateKeyDer::from_pem_file(key_file).map_err(|e| TlsError::Key {
        path: shown(key_file),
        reason: e.to_string(),
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Rejected(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| TlsError::Rejected(e.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn fixture(name: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/tls")
            .join(name)
    }

    #[test]
    fn pkcs1_and_sec1_keys_load_with_their_certificates() {
        let rsa = server_config(&fixture("rsa.crt"), &fixture("rsa-pkcs1.key")).expect("PKCS#1");
        assert_eq!(rsa.alpn_protocols, [b"h2".to_vec(), b"http/1.1".to_vec()]);
        server_config(&fixture("ec.crt"), &fixture("ec-sec1.key")).expect("SEC1");
    }

    #[test]
    fn a_key_of_another_certificate_or_a_missing_file_is_refused() {
        let mismatch = server_config(&fixture("rsa.crt"), &fixture("ec-sec1.key"));
        assert!(
            matches!(mismatch, Err(TlsError::Rejected(_))),
            "{mismatch:?}"
        );
        let missing = server_config(&fixture("nope.crt"), &fixture("ec-sec1.key"));
        assert!(
            matches!(missing, Err(TlsError::Certificates { .. })),
            "{missing:?}"
        );
        let not_a_key = server_config(&fixture("ec.crt"), &fixture("ec.crt"));
        assert!(
            matches!(not_a_key, Err(TlsError::Key { .. })),
            "{not_a_key:?}"
        );
        let not_a_cert = server_config(&fixture("ec-sec1.key"), &fixture("ec-sec1.key"));
        assert!(
            matches!(not_a_cert, Err(TlsError::NoCertificate(_))),
            "{not_a_cert:?}"
        );
    }
}
