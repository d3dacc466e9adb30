//! TLS on the server's listener: rustls with ring (no OpenSSL), the
//! certificate and key from PEM files, client certificates required when a
//! client CA is given (mutual TLS), and all of it reloaded from the same
//! files on SIGHUP. A reload changes what new connections are offered;
//! connections already made keep their session, so none is dropped.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{RootCertStore, ServerConfig};
use tokio_rustls::server::TlsStream;

use crate::config::ConfigError;

/// How long a client has to finish its handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshakes in progress at once; a connection past it is closed.
const MAX_HANDSHAKES: usize = 1_024;

/// Where the listener's certificate, key and client CA are (PEM).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain, the server's own first.
    pub cert: PathBuf,
    /// Its private key; refused if other users may read it.
    pub key: PathBuf,
    /// The CA certificates that sign client certificates: given, every
    /// client must present one they sign.
    pub client_ca: Option<PathBuf>,
}

/// The listener's TLS settings, swapped whole by [`ServerTls::reload`].
pub struct ServerTls {
    files: TlsFiles,
    current: RwLock<Arc<ServerConfig>>,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("files", &self.files)
            .finish()
    }
}

impl ServerTls {
    /// Reads the files; the message of a failure names the file and what
    /// is wrong with it.
    pub fn load(files: TlsFiles) -> Result<Arc<ServerTls>, ConfigError> {
        let config = server_config(&files)?;
        Ok(Arc::new(ServerTls {
            files,
            current: RwLock::new(Arc::new(config)),
        }))
    }

    /// Reads the files again and offers them to new connections. On a
    /// failure the settings in use stay.
    pub fn reload(&self) -> Result<(), ConfigError> {
        let config = server_config(&self.files)?;
        *self.current.write() = Arc::new(config);
        Ok(())
    }

    pub fn files(&self) -> &TlsFiles {
        &self.files
    }

    /// Whether clients must present a certificate.
    pub fn requires_client_certificates(&self) -> bool {
        self.files.client_ca.is_some()
    }

    fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(Arc::clone(&self.current.read()))
    }
}

fn server_config(files: &TlsFiles) -> Result<ServerConfig, ConfigError> {
    let certs = read_certificates(&files.cert, "--tls-cert")?;
    let key_pem = bulkhead_client::read_secret_file(&files.key)
        .map_err(|e| ConfigError::new(format!("--tls-key: {e}")))?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
        ConfigError::new(format!(
            "--tls-key {}: no PEM private key in it ({e})",
            files.key.display()
        ))
    })?;
    // rustls's provider from its crate features: ring, the only one built
    // (tokio-rustls's "ring"; no aws-lc, whose C build this project avoids).
    let builder = ServerConfig::builder();
    let builder = match &files.client_ca {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let mut roots = RootCertStore::empty();
            for cert in read_certificates(path, "--tls-client-ca")? {
                roots.add(cert).map_err(|e| {
                    ConfigError::new(format!("--tls-client-ca {}: {e}", path.display()))
                })?;
            }
            let verifier = WebPkiClientVerifier::builder(roots.into())
                .build()
                .map_err(|e| {
                    ConfigError::new(format!("--tls-client-ca {}: {e}", path.display()))
                })?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_single_cert(certs, key).map_err(|e| {
        ConfigError::new(format!(
            "--tls-cert {} and --tls-key {}: {e}",
            files.cert.display(),
            files.key.display()
        ))
    })?;
    // gRPC is HTTP/2, and gRPC clients insist that TLS negotiated it.
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}

fn read_certificates(
    path: &std::path::Path,
    flag: &str,
) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let pem = fs_err::read(path).map_err(|e| ConfigError::new(format!("{flag}: {e}")))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ConfigError::new(format!("{flag} {}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(ConfigError::new(format!(
            "{flag} {}: no PEM certificate in it",
            path.display()
        )));
    }
    Ok(certs)
}

/// The connections of `listener`, each past its TLS handshake. Every
/// handshake runs on a task of its own, so a slow or silent client delays
/// no other; one that fails or takes longer than [`HANDSHAKE_TIMEOUT`] is
/// closed (logged at debug: a port scan is not news). The task ends when
/// the receiver is dropped (the server stops).
pub(crate) fn incoming(
    listener: TcpListener,
    tls: Arc<ServerTls>,
) -> (
    tokio_stream::wrappers::ReceiverStream<std::io::Result<TlsStream<TcpStream>>>,
    tokio::task::JoinHandle<()>,
) {
    let (tx, rx) = mpsc::channel(64);
    let handshakes = Arc::new(Semaphore::new(MAX_HANDSHAKES));
    let task = tokio::spawn(async move {
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, a connection reset before
                    // accept: wait a moment rather than spin.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            if tx.is_closed() {
                return;
            }
            // Accepting never waits on the handshakes in progress: past
            // the limit a connection is closed at once, so clients that
            // open connections and stay silent cannot stop the accepts.
            let Ok(permit) = Arc::clone(&handshakes).try_acquire_owned() else {
                tracing::debug!(%peer, "too many TLS handshakes in progress; connection closed");
                continue;
            };
            // No Nagle delay (as for plaintext connections).
            let _ = stream.set_nodelay(true);
            let acceptor = tls.acceptor();
            let tx = tx.clone();
            tokio::spawn(async move {
                let _permit = permit;
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                    Ok(Ok(tls_stream)) => {
                        let _ = tx.send(Ok(tls_stream)).await;
                    }
                    Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                    Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                }
            });
        }
    });
    (tokio_stream::wrappers::ReceiverStream::new(rx), task)
}

/// Reloads `tls` from its files on every SIGHUP, logging the outcome.
/// Without TLS a SIGHUP is logged and otherwise ignored (its default
/// action would stop the server).
pub fn reload_on_sighup(
    tls: Option<Arc<ServerTls>>,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let mut hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    Ok(tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            let Some(tls) = &tls else {
                tracing::info!("SIGHUP: no TLS certificate to reload");
                continue;
            };
            let tls = Arc::clone(tls);
            match tokio::task::spawn_blocking(move || tls.reload()).await {
                Ok(Ok(())) => tracing::info!("SIGHUP: TLS certificate reloaded"),
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "SIGHUP: TLS certificate not reloaded; the old one stays")
                }
                Err(e) => tracing::error!(error = %e, "SIGHUP: TLS reload failed"),
            }
        }
    }))
}
