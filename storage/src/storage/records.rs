//! The node's own records, kept in `meta` or beside it: the node secret,
//! tokens, lineage records, the audit log and the admin token.

use std::path::PathBuf;

use super::Storage;
use crate::error::{AtPath, Result, StorageError};
use crate::meta::TokenRecord;

impl Storage {
    /// A random secret of this node, made with `generate` the first time and
    /// kept in `meta` (it keys values handed to clients, such as cursors).
    pub fn node_secret(&self, generate: impl FnOnce() -> [u8; 32]) -> Result<[u8; 32]> {
        self.meta.node_secret(generate)
    }

    /// Every stored token (hashes only).
    pub fn tokens(&self) -> Result<Vec<TokenRecord>> {
        self.meta.tokens()
    }

    /// Stores a token record (issue or revoke); durable when it returns.
    pub fn put_token(&self, record: &TokenRecord) -> Result<()> {
        self.meta.put_token(record)
    }

    /// The engine's lineage records (models, assignments) under `prefix`,
    /// as (key, value); opaque here.
    pub fn lineage_records(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>> {
        self.meta.lineage_records(prefix)
    }

    /// Writes (Some) or deletes (None) one lineage record; durable when it
    /// returns.
    pub fn put_lineage_record(&self, key: &str, value: Option<&[u8]>) -> Result<()> {
        self.meta.put_lineage_record(key, value)
    }

    /// Appends one event to the audit log (`<data>/audit.log`, JSON lines),
    /// synced before it returns.
    pub fn audit(&self, event: &serde_json::Value) -> Result<()> {
        self.audit.append(event)
    }

    /// The admin token kept in `<data>/admin.token` (mode 0600), created
    /// with `generate` if there is none. Returns the token, the file (to
    /// name in logs, never the secret) and whether it was just created.
    pub fn admin_token(
        &self,
        generate: impl FnOnce() -> String,
    ) -> Result<(String, PathBuf, bool)> {
        let path = self.layout.admin_token();
        if path.exists() {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).at(&path)?.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(StorageError::LooseMode(path, mode));
            }
            let token = std::fs::read_to_string(&path).at(&path)?.trim().to_string();
            return Ok((token, path, false));
        }
        let token = generate();
        let mut file = {
            use std::os::unix::fs::OpenOptionsExt;
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true).mode(0o600);
            options.open(&path).at(&path)?
        };
        std::io::Write::write_all(&mut file, format!("{token}\n").as_bytes()).at(&path)?;
        file.sync_all().at(&path)?;
        Ok((token, path, true))
    }
}
