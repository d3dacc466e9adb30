use std::path::PathBuf;

/// The model served when none is named.
pub const DEFAULT_MODEL: &str = "all-MiniLM-L6-v2";

/// `$BULKHEAD_MODELS_DIR`, else `~/.cache/bulkhead/models`.
pub fn models_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("BULKHEAD_MODELS_DIR") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".cache").join("bulkhead").join("models")
}
