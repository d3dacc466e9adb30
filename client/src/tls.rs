//! Clients over TLS: `https://` addresses, the CA bundle they trust and the
//! certificate they present for mutual TLS. rustls with ring: no OpenSSL.

use std::path::Path;

use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::{Error, Result};

/// Whom a client trusts and who it is, for `https://` addresses. The
/// default trusts the system's roots and presents no certificate.
#[derive(Clone, Default)]
pub struct Tls {
    ca: Option<Vec<u8>>,
    identity: Option<(Vec<u8>, Vec<u8>)>,
    domain: Option<String>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("ca", &self.ca.is_some())
            .field("client_identity", &self.identity.is_some())
            .field("domain", &self.domain)
            .finish()
    }
}

impl Tls {
    pub fn new() -> Self {
        Tls::default()
    }

    /// Trusts these PEM certificates (a CA bundle) instead of the system's
    /// roots.
    pub fn ca_certificate(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca = Some(pem.into());
        self
    }

    /// Presents this certificate chain and private key (PEM), for a server
    /// that requires client certificates.
    pub fn client_identity(
        mut self,
        cert_pem: impl Into<Vec<u8>>,
        key_pem: impl Into<Vec<u8>>,
    ) -> Self {
        self.identity = Some((cert_pem.into(), key_pem.into()));
        self
    }

    /// The name the server's certificate must carry, when it is not the
    /// address's host.
    pub fn domain_name(mut self, name: impl Into<String>) -> Self {
        self.domain = Some(name.into());
        self
    }

    /// A CA bundle and a client certificate and key from files, each
    /// optional. The key is refused when other users may read it
    /// ([`read_secret_file`]).
    pub fn from_files(ca: Option<&Path>, cert: Option<&Path>, key: Option<&Path>) -> Result<Self> {
        let mut tls = Tls::new();
        if let Some(ca) = ca {
            let pem = fs_err::read(ca)
                .map_err(|e| Error::InvalidArgument(format!("the CA certificate: {e}")))?;
            tls = tls.ca_certificate(pem);
        }
        match (cert, key) {
            (Some(cert), Some(key)) => {
                let cert = fs_err::read(cert)
                    .map_err(|e| Error::InvalidArgument(format!("the client certificate: {e}")))?;
                let key = read_secret_file(key)
                    .map_err(|e| Error::InvalidArgument(format!("the client key: {e}")))?;
                tls = tls.client_identity(cert, key);
            }
            (None, None) => {}
            _ => {
                return Err(Error::InvalidArgument(
                    "a client certificate needs its key and a key its certificate: give both"
                        .into(),
                ));
            }
        }
        Ok(tls)
    }

    /// Whether anything was set that only a TLS connection can use.
    fn is_set(&self) -> bool {
        self.ca.is_some() || self.identity.is_some() || self.domain.is_some()
    }

    fn config(&self) -> ClientTlsConfig {
        let mut config = ClientTlsConfig::new();
        config = match &self.ca {
            Some(pem) => config.ca_certificate(Certificate::from_pem(pem)),
            None => config.with_native_roots(),
        };
        if let Some((cert, key)) = &self.identity {
            config = config.identity(Identity::from_pem(cert, key));
        }
        if let Some(domain) = &self.domain {
            config = config.domain_name(domain.clone());
        }
        config
    }
}

/// An endpoint for `addr`: `http://host:port` in plaintext, or
/// `https://host:port` over TLS as `tls` says. TLS settings with an
/// `http://` address are refused rather than ignored.
pub fn endpoint(addr: impl Into<String>, tls: &Tls) -> Result<Endpoint> {
    let addr = addr.into();
    let endpoint = Endpoint::from_shared(addr.clone())
        .map_err(|e| Error::InvalidArgument(format!("bad server address {addr:?}: {e}")))?;
    match endpoint.uri().scheme_str() {
        Some("https") => endpoint
            .tls_config(tls.config())
            .map_err(|e| Error::InvalidArgument(format!("TLS settings for {addr}: {e}"))),
        Some("http") if tls.is_set() => Err(Error::InvalidArgument(format!(
            "{addr} is plaintext but a CA certificate or client certificate is given: use https://"
        ))),
        Some("http") => Ok(endpoint),
        _ => Err(Error::InvalidArgument(format!(
            "bad server address {addr:?}: use http://host:port or https://host:port"
        ))),
    }
}

/// Opens a channel to `addr` (see [`endpoint`]).
pub async fn connect(addr: impl Into<String>, tls: &Tls) -> Result<Channel> {
    Ok(endpoint(addr, tls)?.connect().await?)
}

/// Reads a file that holds a secret (a private key, a shared secret, a
/// token), refusing one whose mode lets other users read or write it: a
/// secret that every local user could read is not one.
pub fn read_secret_file(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read as _;
    let mut file = fs_err::File::open(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = file.metadata()?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                format!(
                    "{} holds a secret but its mode {mode:04o} lets other users at it: chmod 600 {}",
                    path.display(),
                    path.display()
                ),
            ));
        }
    }
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Whether a presented secret is the expected one, in time that depends on
/// neither: both are hashed (SHA-256) and the digests compared with no
/// early return, so neither a differing byte nor a differing length shows
/// in the time taken. For the servers' shared secrets and admin token.
pub fn secrets_equal(presented: &[u8], expected: &[u8]) -> bool {
    use sha2::Digest as _;
    let (a, b) = (
        sha2::Sha256::digest(presented),
        sha2::Sha256::digest(expected),
    );
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_equal_only_for_the_same_bytes() {
        assert!(secrets_equal(
            b"a-secret-of-some-length",
            b"a-secret-of-some-length"
        ));
        assert!(!secrets_equal(
            b"a-secret-of-some-length",
            b"a-secret-of-some-lengtH"
        ));
        assert!(!secrets_equal(b"a-secret", b"a-secret-of-some-length"));
        assert!(!secrets_equal(b"", b"a-secret"));
    }
}
