//! The command line: `bulkhead admin ...` and `bulkhead client ...`, both
//! thin layers over the Rust SDK (bulkhead-client). Output is for people by
//! default and JSON with `--json`; errors are one line on stderr and a
//! non-zero exit code.

mod admin;
pub mod audit;
mod client;
mod export;

pub use admin::AdminArgs;
pub use client::ClientArgs;

/// The server's address when none is given.
pub const DEFAULT_ADDR: &str = "http://127.0.0.1:50551";

/// Where the server is and how to reach it: shared by `admin` and `client`.
#[derive(Debug, Clone, clap::Args)]
pub struct Connection {
    /// Server address: http://host:port, or https://host:port for TLS.
    #[arg(long, env = "BULKHEAD_ADDR", default_value = DEFAULT_ADDR, global = true)]
    pub addr: String,
    /// The CA certificates (PEM) that sign the server's certificate; without
    /// it an https:// address trusts the system's roots.
    #[arg(long, env = "BULKHEAD_CA_CERT", global = true)]
    pub ca_cert: Option<std::path::PathBuf>,
    /// A client certificate (PEM), for a server that requires one.
    #[arg(
        long,
        env = "BULKHEAD_CLIENT_CERT",
        global = true,
        requires = "client_key"
    )]
    pub client_cert: Option<std::path::PathBuf>,
    /// The client certificate's private key (PEM; mode 0600).
    #[arg(
        long,
        env = "BULKHEAD_CLIENT_KEY",
        global = true,
        requires = "client_cert"
    )]
    pub client_key: Option<std::path::PathBuf>,
}

impl Connection {
    /// A channel to the server, over TLS when the address is https://.
    pub async fn channel(&self) -> CliResult<tonic::transport::Channel> {
        let tls = bulkhead_client::Tls::from_files(
            self.ca_cert.as_deref(),
            self.client_cert.as_deref(),
            self.client_key.as_deref(),
        )?;
        Ok(bulkhead_client::connect(self.addr.clone(), &tls).await?)
    }
}

/// A command's failure, printed as one line.
pub type CliResult<T = ()> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Bytes as lowercase hex (digests in manifests and output).
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Prints `value` as JSON on stdout.
fn print_json(value: &serde_json::Value) {
    println!("{value}");
}

/// Runs an async command on a small runtime.
pub fn block_on(f: impl std::future::Future<Output = CliResult>) -> CliResult {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(f)
}

/// Which page of an access log to read (admin and client alike).
#[derive(Debug, Clone, clap::Args)]
pub struct AccessLogPage {
    /// Entries from this time on (Unix milliseconds).
    #[arg(long, default_value_t = 0)]
    since_ms: u64,
    /// The previous page's next cursor.
    #[arg(long)]
    cursor: Option<String>,
    #[arg(long, default_value_t = 100)]
    limit: u32,
}

/// Prints a page of an access log: JSON, or one tab-separated line per
/// entry (first call, last call, token id, RPC, code, calls, items).
fn print_access_log(
    json: bool,
    entries: &[bulkhead_client::proto::AccessLogEntry],
    next_cursor: &str,
) {
    if json {
        let list: Vec<_> = entries
            .iter()
            .map(|e| {
                serde_json::json!({
                    "first_unix_ms": e.first_unix_ms,
                    "last_unix_ms": e.last_unix_ms,
                    "token_id": e.token_id,
                    "rpc": e.rpc,
                    "code": e.code,
                    "calls": e.calls,
                    "items": e.items,
                })
            })
            .collect();
        print_json(&serde_json::json!({ "entries": list, "next_cursor": next_cursor }));
    } else {
        for e in entries {
            println!(
                "{}\t{}\t{}\t{}\t{}\t{}\t{}",
                e.first_unix_ms, e.last_unix_ms, e.token_id, e.rpc, e.code, e.calls, e.items
            );
        }
        if !next_cursor.is_empty() {
            eprintln!("next: --cursor {next_cursor}");
        }
    }
}
