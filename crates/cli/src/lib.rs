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
