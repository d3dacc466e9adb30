use std::path::{Path, PathBuf};

/// What can go wrong below the engine. Messages never carry tenant names:
/// storage knows tenants only by incarnation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    #[error("rocksdb: {0}")]
    RocksDb(#[from] rocksdb::Error),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("corrupt data: {0}")]
    Corrupt(String),
    #[error("the tenant's storage is gone (dropped)")]
    Gone,
    #[error("graph snapshot: {0}")]
    Snapshot(String),
    /// The data directory holds tenant data but not the `meta` database
    /// that names it. Storage refuses to open rather than start empty and
    /// remove the data as orphans.
    #[error(
        "{}: the node's meta database is missing or empty, but shelves/ or tenants/ hold tenant data; nothing was changed. Restore meta/ from a backup, or move the data directory away to start an empty node",
        .0.display()
    )]
    MetaMissing(PathBuf),
    /// A file that holds a secret can be read or written by other users.
    #[error(
        "{}: holds a secret but its mode {:04o} lets other users at it; nothing was read. chmod 600 {}",
        .0.display(), .1, .0.display()
    )]
    LooseMode(PathBuf, u32),
}

pub type Result<T, E = StorageError> = std::result::Result<T, E>;

impl StorageError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        StorageError::Io {
            path: path.into(),
            source,
        }
    }
}

/// Names the file of a failed io operation. Storage has no
/// `From<io::Error>`, so every io error it returns says which path failed.
pub(crate) trait AtPath<T> {
    fn at(self, path: &Path) -> Result<T>;
}

impl<T> AtPath<T> for std::io::Result<T> {
    fn at(self, path: &Path) -> Result<T> {
        self.map_err(|e| StorageError::io(path, e))
    }
}
