//! The audit log: one JSON object per line, appended and synced.

use std::io::Write;
use std::path::{Path, PathBuf};

use parking_lot::Mutex;

use crate::error::{AtPath, Result};

#[derive(Debug)]
pub(crate) struct AuditLog {
    path: PathBuf,
    file: Mutex<std::fs::File>,
}

impl AuditLog {
    pub(crate) fn open(path: &Path) -> Result<Self> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .at(path)?;
        Ok(AuditLog {
            path: path.to_path_buf(),
            file: Mutex::new(file),
        })
    }

    pub(crate) fn append(&self, event: &serde_json::Value) -> Result<()> {
        let mut line = serde_json::to_vec(event)
            .map_err(|e| crate::StorageError::Corrupt(format!("audit event: {e}")))?;
        line.push(b'\n');
        let mut file = self.file.lock();
        file.write_all(&line).at(&self.path)?;
        file.sync_data().at(&self.path)?;
        Ok(())
    }
}
