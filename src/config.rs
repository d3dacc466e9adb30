//! Server configuration. Each setting comes from, in rising precedence: the
//! embedded default, the `--config` file (TOML), the environment, the flag.
//!
//! ```toml
//! # bulkhead.toml
//! data_dir = "/var/lib/bulkhead"
//! listen = "127.0.0.1:50551"
//! tenants_per_shelf = 100
//! memory_budget_mib = 8192         # loaded tenants; LRU ones go cold beyond
//! embedder_secret = "..."          # what the sidecars expect
//!
//! [embedders]                      # trust class -> embedding sidecar
//! default = "http://127.0.0.1:50552"
//! ```
//!
//! With no `[embedders]`, the server starts a local sidecar for every trust
//! class if the default model is in `models_dir` (`local_embedder = false`
//! turns that off).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

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
    /// The shared secret the embedding sidecars expect.
    #[arg(long, env = "BULKHEAD_EMBEDDER_SECRET", hide_env_values = true)]
    pub embedder_secret: Option<String>,
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
    embedder_secret: Option<String>,
    #[serde(default)]
    embedders: HashMap<String, String>,
    models_dir: Option<PathBuf>,
    local_embedder: Option<bool>,
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
    pub embedder_secret: Option<String>,
    pub models_dir: PathBuf,
    /// Start a local sidecar when `embedders` is empty and the model is there.
    pub local_embedder: bool,
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
        let embedder_secret = self.embedder_secret.or(file.embedder_secret);
        if !embedders.is_empty() && embedder_secret.is_none() {
            return Err(ConfigError::new(
                "embedders are configured but no embedder_secret (--embedder-secret or BULKHEAD_EMBEDDER_SECRET)",
            ));
        }
        let local_embedder = !self.no_local_embedder && file.local_embedder.unwrap_or(true);
        Ok(ServeConfig {
            embedders,
            embedder_secret,
            models_dir: self
                .models_dir
                .or(file.models_dir)
                .unwrap_or_else(default_models_dir),
            local_embedder,
            data_dir: self
                .data_dir
                .or(file.data_dir)
                .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
            listen: self.listen.or(file.listen).unwrap_or(default_listen),
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
}
