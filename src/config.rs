//! Server configuration: embedded defaults, overridden by environment
//! variables, overridden by command-line flags.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Where the server keeps its data when nothing else is said.
pub const DEFAULT_DATA_DIR: &str = "bulkhead-data";
/// The server listens on loopback only unless told otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:50551";

#[derive(Debug, Clone, clap::Args)]
pub struct ServeConfig {
    /// Data directory (created if missing).
    #[arg(long, env = "BULKHEAD_DATA_DIR", default_value = DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
    /// Address for the gRPC server.
    #[arg(long, env = "BULKHEAD_LISTEN", default_value = DEFAULT_LISTEN)]
    pub listen: SocketAddr,
}
