//! The audit log: one JSON object per line, appended and synced.

use std::io::Write;
use std::path::Path;

use parking_lot::Mutex;

use crate::error::Result;

#[derive(Debug)]
pub(crate) struct AuditLog {
    file: Mutex<fs_err::File>,
}

impl AuditLog {
    pub(crate) fn open(path: &Path) -> Result<Self> {
        let file = fs_err::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(AuditLog {
            file: Mutex::new(file),
        })
    }

    pub(crate) fn append(&self, event: &serde_json::Value) -> Result<()> {
        let mut line = serde_json::to_vec(event)
            .map_err(|e| crate::StorageError::Corrupt(format!("audit event: {e}")))?;
        line.push(b'\n');
        let mut file = self.file.lock();
        file.write_all(&line)?;
        file.sync_data()?;
        Ok(())
    }
}
