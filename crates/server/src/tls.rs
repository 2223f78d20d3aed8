//! TLS: the server's certificate chain and key from PEM files, for HTTPS and WSS on the
//! same port (rustls with the ring provider, HTTP/1.1 only).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Why the certificate or key could not be loaded; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The file could not be read.
    #[error("cannot read {what} {}: {source}", path.display())]
    Read {
        /// `tls.cert` or `tls.key`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not PEM, or holds a broken PEM section.
    #[error("{what} {}: not a valid PEM file: {message}", path.display())]
    Pem {
        /// `tls.cert` or `tls.key`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// No `CERTIFICATE` section in the certificate file.
    #[error("tls.cert {}: no CERTIFICATE in the file", path.display())]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// No private key section in the key file.
    #[error("tls.key {}: no PRIVATE KEY (PKCS#8, RSA or EC) in the file", path.display())]
    NoKey {
        /// The file.
        path: PathBuf,
    },
    /// rustls refused the pair (the key does not match the certificate, an unsupported
    /// key type...).
    #[error("tls.cert {} / tls.key {}: {source}", cert.display(), key.display())]
    Config {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// rustls' error.
        source: rustls::Error,
    },
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        what,
        path: path.to_owned(),
        source,
    })
}

/// Loads a PEM certificate chain (leaf first) and private key into a server
/// configuration that offers HTTP/1.1 by ALPN.
pub fn load(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let cert_pem = read("tls.cert", cert)?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            what: "tls.cert",
            path: cert.to_owned(),
            message: e.to_string(),
        })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: cert.to_owned(),
        });
    }
    let key_pem = read("tls.key", key)?;
    let private = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => TlsError::NoKey {
            path: key.to_owned(),
        },
        e => TlsError::Pem {
            what: "tls.key",
            path: key.to_owned(),
            message: e.to_string(),
        },
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config_err = |source| TlsError::Config {
        cert: cert.to_owned(),
        key: key.to_owned(),
        source,
    };
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(config_err)?
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .map_err(config_err)?;
    // Only HTTP/1.1 is served (WebSocket upgrades need it); offering h2 would break them.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
