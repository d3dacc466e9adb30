//! Server configuration. Each setting comes from, in rising precedence: the
//! embedded default, the `--config` file (TOML), the environment, the flag.
//!
//! ```toml
//! # bulkhead.toml
//! data_dir = "/var/lib/bulkhead"
//! listen = "127.0.0.1:50551"
//! tenants_per_shelf = 100
//! memory_budget_mib = 8192         # loaded tenants; LRU ones go cold beyond
//! tls_cert = "/etc/bulkhead/server.pem"
//! tls_key = "/etc/bulkhead/server.key"             # mode 0600
//! tls_client_ca = "/etc/bulkhead/clients-ca.pem"   # requires client certificates
//! embedder_secret_file = "/etc/bulkhead/embedder.secret"  # mode 0600
//! embedder_ca_cert = "/etc/bulkhead/embedder-ca.pem"
//! metrics_listen = "127.0.0.1:9551"                # Prometheus text at GET /metrics
//!
//! [embedders]                      # trust class -> embedding sidecar
//! default = "https://embedder.internal:50552"
//! ```
//!
//! With no `[embedders]`, the server starts a local sidecar for every trust
//! class if the default model is in `models_dir` (`local_embedder = false`
//! turns that off).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use crate::tls::TlsFiles;

/// What stops `bulkhead serve` from starting (a bad setting, a file that
/// cannot be read, an embedder address): the message says what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(String);

impl ConfigError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        ConfigError(message.into())
    }
}

/// Where the server keeps its data when nothing else is said.
pub const DEFAULT_DATA_DIR: &str = "bulkhead-data";
/// The server listens on loopback only unless told otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:50551";

/// `bulkhead serve` flags; unset ones fall back to the file, then defaults.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServeArgs {
    /// Data directory, created if missing [default: ./bulkhead-data].
    #[arg(long, env = "BULKHEAD_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// gRPC listen address [default: 127.0.0.1:50551].
    #[arg(long, env = "BULKHEAD_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Most tenants per shelf (RocksDB instance) [default: 100].
    #[arg(long, env = "BULKHEAD_TENANTS_PER_SHELF")]
    pub tenants_per_shelf: Option<usize>,
    /// MiB the loaded tenants may hold before the least recently used go
    /// cold; 0 for no budget [default: half of RAM].
    #[arg(long, env = "BULKHEAD_MEMORY_BUDGET_MIB")]
    pub memory_budget_mib: Option<u64>,
    /// An embedding sidecar for a trust class, as CLASS=URL (repeatable).
    #[arg(long = "embedder", env = "BULKHEAD_EMBEDDERS", value_delimiter = ',')]
    pub embedders: Vec<String>,
    /// A file (mode 0600) holding the shared secret the embedding sidecars
    /// expect. Never on the command line, where every local user sees it.
    #[arg(long, env = "BULKHEAD_EMBEDDER_SECRET_FILE")]
    pub embedder_secret_file: Option<PathBuf>,
    /// CA certificates (PEM) that sign the sidecars' certificates, for
    /// https:// sidecars [default: the system's roots].
    #[arg(long, env = "BULKHEAD_EMBEDDER_CA_CERT")]
    pub embedder_ca_cert: Option<PathBuf>,
    /// A client certificate (PEM) the server presents to sidecars that
    /// require one.
    #[arg(
        long,
        env = "BULKHEAD_EMBEDDER_TLS_CERT",
        requires = "embedder_tls_key"
    )]
    pub embedder_tls_cert: Option<PathBuf>,
    /// Its private key (PEM, mode 0600).
    #[arg(
        long,
        env = "BULKHEAD_EMBEDDER_TLS_KEY",
        requires = "embedder_tls_cert"
    )]
    pub embedder_tls_key: Option<PathBuf>,
    /// The server's TLS certificate chain (PEM). With --tls-key, the
    /// server speaks only TLS; SIGHUP reloads both.
    #[arg(long, env = "BULKHEAD_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM, mode 0600).
    #[arg(long, env = "BULKHEAD_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// CA certificates (PEM): every client must present a certificate they
    /// sign (mutual TLS). Needs --tls-cert.
    #[arg(long, env = "BULKHEAD_TLS_CLIENT_CA")]
    pub tls_client_ca: Option<PathBuf>,
    /// Serve the operator's metrics (Prometheus text, `GET /metrics`) on
    /// this address, apart from the tenants' port [default: none].
    #[arg(long, env = "BULKHEAD_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// Serve plaintext on an address other than loopback. Without TLS,
    /// tokens and data cross the network readable by anyone on the path.
    #[arg(long, env = "BULKHEAD_INSECURE")]
    pub insecure: bool,
    /// Where models live [default: ~/.cache/bulkhead/models].
    #[arg(long, env = "BULKHEAD_MODELS_DIR")]
    pub models_dir: Option<PathBuf>,
    /// Do not start a local embedding sidecar when none is configured.
    #[arg(long, env = "BULKHEAD_NO_LOCAL_EMBEDDER")]
    pub no_local_embedder: bool,
    /// A TOML file with any of the settings above.
    #[arg(long, env = "BULKHEAD_CONFIG")]
    pub config: Option<PathBuf>,
}

/// The settings a config file may hold.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    data_dir: Option<PathBuf>,
    listen: Option<SocketAddr>,
    tenants_per_shelf: Option<usize>,
    memory_budget_mib: Option<u64>,
    embedder_secret_file: Option<PathBuf>,
    embedder_ca_cert: Option<PathBuf>,
    embedder_tls_cert: Option<PathBuf>,
    embedder_tls_key: Option<PathBuf>,
    #[serde(default)]
    embedders: HashMap<String, String>,
    models_dir: Option<PathBuf>,
    local_embedder: Option<bool>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    tls_client_ca: Option<PathBuf>,
    insecure: Option<bool>,
    metrics_listen: Option<SocketAddr>,
}

/// The resolved server configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct ServeConfig {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    pub tenants_per_shelf: usize,
    /// None: the engine's default (half of RAM); 0: no budget.
    pub memory_budget_mib: Option<u64>,
    /// Trust class -> embedding sidecar URL.
    pub embedders: HashMap<String, String>,
    /// Read from `embedder_secret_file`.
    pub embedder_secret: Option<String>,
    /// How the sidecars are reached over https://.
    pub embedder_tls: EmbedderTlsFiles,
    /// TLS on the listener; None serves plaintext.
    pub tls: Option<TlsFiles>,
    pub models_dir: PathBuf,
    /// Start a local sidecar when `embedders` is empty and the model is there.
    pub local_embedder: bool,
    /// Plaintext on a non-loopback address was asked for.
    pub insecure: bool,
    /// Where the operator's metrics are served; None: nowhere.
    pub metrics_listen: Option<SocketAddr>,
}

/// What the server trusts and presents on its https:// links to sidecars.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EmbedderTlsFiles {
    pub ca_cert: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

impl ServeArgs {
    /// Applies the config file and the defaults under the flags and env.
    pub fn resolve(self) -> Result<ServeConfig, ConfigError> {
        let file = match &self.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let default_listen: SocketAddr = DEFAULT_LISTEN
            .parse()
            .map_err(|e| ConfigError::new(format!("bad default address: {e}")))?;
        let tenants_per_shelf = self
            .tenants_per_shelf
            .or(file.tenants_per_shelf)
            .unwrap_or(bulkhead_storage::StorageOptions::default().tenants_per_shelf);
        if tenants_per_shelf == 0 {
            return Err(ConfigError::new("tenants_per_shelf must be at least 1"));
        }
        let mut embedders = file.embedders;
        for entry in &self.embedders {
            let (class, url) = entry
                .split_once('=')
                .ok_or_else(|| ConfigError::new(format!("--embedder {entry:?}: use CLASS=URL")))?;
            embedders.insert(class.to_string(), url.to_string());
        }
        let embedder_secret = match self.embedder_secret_file.or(file.embedder_secret_file) {
            Some(path) => Some(read_secret(&path, "--embedder-secret-file")?),
            None => None,
        };
        if !embedders.is_empty() && embedder_secret.is_none() {
            return Err(ConfigError::new(
                "embedders are configured but no shared secret: give --embedder-secret-file (a file of mode 0600 holding it)",
            ));
        }
        let embedder_tls = EmbedderTlsFiles {
            ca_cert: self.embedder_ca_cert.or(file.embedder_ca_cert),
            cert: self.embedder_tls_cert.or(file.embedder_tls_cert),
            key: self.embedder_tls_key.or(file.embedder_tls_key),
        };
        if embedder_tls.cert.is_some() != embedder_tls.key.is_some() {
            return Err(ConfigError::new(
                "embedder_tls_cert and embedder_tls_key go together: give both or neither",
            ));
        }
        let listen = self.listen.or(file.listen).unwrap_or(default_listen);
        let insecure = self.insecure || file.insecure.unwrap_or(false);
        for (class, url) in &embedders {
            if plaintext_beyond_loopback(url) && !insecure {
                return Err(ConfigError::new(format!(
                    "the embedder of trust class {class} ({url}) is plaintext beyond loopback: the shared secret and every text would cross the network in the clear; use https://, or pass --insecure"
                )));
            }
        }
        let tls = match (
            self.tls_cert.or(file.tls_cert),
            self.tls_key.or(file.tls_key),
            self.tls_client_ca.or(file.tls_client_ca),
        ) {
            (Some(cert), Some(key), client_ca) => Some(TlsFiles {
                cert,
                key,
                client_ca,
            }),
            (None, None, None) => None,
            (None, None, Some(_)) => {
                return Err(ConfigError::new(
                    "--tls-client-ca needs TLS: give --tls-cert and --tls-key too",
                ));
            }
            _ => {
                return Err(ConfigError::new(
                    "--tls-cert and --tls-key go together: give both or neither",
                ));
            }
        };
        if tls.is_none() && !listen.ip().is_loopback() && !insecure {
            return Err(ConfigError::new(format!(
                "listening on {listen} without TLS would send tokens and data in the clear: give --tls-cert and --tls-key, listen on loopback, or pass --insecure"
            )));
        }
        let local_embedder = !self.no_local_embedder && file.local_embedder.unwrap_or(true);
        let metrics_listen = self.metrics_listen.or(file.metrics_listen);
        if let Some(addr) = metrics_listen.filter(|a| !a.ip().is_loopback() && !insecure) {
            return Err(ConfigError::new(format!(
                "metrics on {addr} would show every tenant's name and load to anyone who can reach it: listen on loopback (and scrape through a tunnel or a local agent), or pass --insecure"
            )));
        }
        Ok(ServeConfig {
            metrics_listen,
            embedders,
            embedder_secret,
            embedder_tls,
            tls,
            insecure,
            models_dir: self
                .models_dir
                .or(file.models_dir)
                .unwrap_or_else(default_models_dir),
            local_embedder,
            data_dir: self
                .data_dir
                .or(file.data_dir)
                .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
            listen,
            tenants_per_shelf,
            memory_budget_mib: self.memory_budget_mib.or(file.memory_budget_mib),
        })
    }
}

/// `~/.cache/bulkhead/models`, where `scripts/fetch-model.sh` puts them.
pub fn default_models_dir() -> PathBuf {
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".cache").join("bulkhead").join("models")
}

/// Whether `url` is http:// to a host that is not loopback.
fn plaintext_beyond_loopback(url: &str) -> bool {
    let Ok(uri) = url.parse::<http::Uri>() else {
        // Refused later, with what is wrong with it.
        return false;
    };
    if uri.scheme_str() != Some("http") {
        return false;
    }
    let host = uri.host().unwrap_or_default();
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    !loopback
}

/// A secret from a file of mode 0600, without surrounding whitespace.
fn read_secret(path: &Path, flag: &str) -> Result<String, ConfigError> {
    let bytes = bulkhead_client::read_secret_file(path)
        .map_err(|e| ConfigError::new(format!("{flag}: {e}")))?;
    let secret = String::from_utf8(bytes)
        .map_err(|_| ConfigError::new(format!("{flag} {}: not UTF-8 text", path.display())))?;
    let secret = secret.trim();
    if secret.is_empty() {
        return Err(ConfigError::new(format!(
            "{flag} {}: empty",
            path.display()
        )));
    }
    Ok(secret.to_string())
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = fs_err::read_to_string(path).map_err(|e| ConfigError::new(e.to_string()))?;
    toml::from_str(&text).map_err(|e| ConfigError::new(format!("{}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_beat_the_file_which_beats_the_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bulkhead.toml");
        fs_err::write(
            &file,
            "listen = \"127.0.0.1:7000\"\ntenants_per_shelf = 7\n",
        )
        .unwrap();
        let args = ServeArgs {
            tenants_per_shelf: Some(9),
            config: Some(file.clone()),
            ..ServeArgs::default()
        };
        let config = args.resolve().unwrap();
        assert_eq!(config.listen, "127.0.0.1:7000".parse().unwrap());
        assert_eq!(config.tenants_per_shelf, 9);
        assert_eq!(config.data_dir, PathBuf::from(DEFAULT_DATA_DIR));

        fs_err::write(&file, "listen = 5\n").unwrap();
        let err = ServeArgs {
            config: Some(file.clone()),
            ..ServeArgs::default()
        }
        .resolve()
        .unwrap_err()
        .to_string();
        assert!(err.contains("bulkhead.toml"), "{err}");
        fs_err::write(&file, "listne = \"x\"\n").unwrap();
        let err = ServeArgs {
            config: Some(file),
            ..ServeArgs::default()
        }
        .resolve()
        .unwrap_err()
        .to_string();
        assert!(err.contains("unknown field"), "{err}");
    }

    #[test]
    fn plaintext_beyond_loopback_needs_insecure_and_tls_flags_go_in_pairs() {
        let wide: SocketAddr = "0.0.0.0:50551".parse().unwrap();
        let err = ServeArgs {
            listen: Some(wide),
            ..ServeArgs::default()
        }
        .resolve()
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("--tls-cert") && err.contains("--insecure"),
            "{err}"
        );
        let config = ServeArgs {
            listen: Some(wide),
            insecure: true,
            ..ServeArgs::default()
        }
        .resolve()
        .unwrap();
        assert!(config.insecure && config.tls.is_none());
        let config = ServeArgs {
            listen: Some(wide),
            tls_cert: Some("c.pem".into()),
            tls_key: Some("k.pem".into()),
            ..ServeArgs::default()
        }
        .resolve()
        .unwrap();
        assert_eq!(config.tls.map(|t| t.cert), Some(PathBuf::from("c.pem")));
        let err = ServeArgs {
            tls_cert: Some("c.pem".into()),
            ..ServeArgs::default()
        }
        .resolve()
        .unwrap_err()
        .to_string();
        assert!(err.contains("give both"), "{err}");
        let sidecar = |url: &str, insecure| {
            let dir = tempfile::tempdir().unwrap();
            let file = dir.path().join("secret");
            fs_err::write(&file, "a-shared-secret-0123456789").unwrap();
            use std::os::unix::fs::PermissionsExt as _;
            fs_err::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
            ServeArgs {
                embedders: vec![format!("default={url}")],
                embedder_secret_file: Some(file),
                insecure,
                ..ServeArgs::default()
            }
            .resolve()
        };
        let err = sidecar("http://10.0.0.5:50552", false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("plaintext beyond loopback"), "{err}");
        assert!(sidecar("http://10.0.0.5:50552", true).is_ok());
        assert!(sidecar("http://127.0.0.1:50552", false).is_ok());
        assert!(sidecar("http://[::1]:50552", false).is_ok());
        assert!(sidecar("https://10.0.0.5:50552", false).is_ok());
        let err = ServeArgs {
            tls_client_ca: Some("ca.pem".into()),
            ..ServeArgs::default()
        }
        .resolve()
        .unwrap_err()
        .to_string();
        assert!(err.contains("needs TLS"), "{err}");
    }

    #[test]
    fn the_embedder_secret_comes_from_a_private_file() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("secret");
        fs_err::write(&file, "a-shared-secret-0123456789\n").unwrap();
        fs_err::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let args = ServeArgs {
            embedders: vec!["default=https://10.0.0.5:50552".into()],
            embedder_secret_file: Some(file.clone()),
            ..ServeArgs::default()
        };
        let config = args.clone().resolve().unwrap();
        assert_eq!(
            config.embedder_secret.as_deref(),
            Some("a-shared-secret-0123456789")
        );
        fs_err::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).unwrap();
        let err = args.resolve().unwrap_err().to_string();
        assert!(err.contains("chmod 600"), "{err}");
        let err = ServeArgs {
            embedders: vec!["default=https://10.0.0.5:50552".into()],
            ..ServeArgs::default()
        }
        .resolve()
        .unwrap_err()
        .to_string();
        assert!(err.contains("--embedder-secret-file"), "{err}");
    }
}
