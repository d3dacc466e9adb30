//! Where things live under the data directory. Paths are built from numbers
//! only (shelf ids, incarnations), never from tenant names.

use std::path::{Path, PathBuf};

use crate::error::{AtPath, Result};
use crate::meta::ShelfId;

#[derive(Debug, Clone)]
pub(crate) struct Layout {
    root: PathBuf,
}

impl Layout {
    pub(crate) fn new(root: &Path) -> Self {
        Layout {
            root: root.to_path_buf(),
        }
    }

    pub(crate) fn meta(&self) -> PathBuf {
        self.root.join("meta")
    }

    pub(crate) fn audit_log(&self) -> PathBuf {
        self.root.join("audit.log")
    }

    pub(crate) fn admin_token(&self) -> PathBuf {
        self.root.join("admin.token")
    }

    pub(crate) fn shelves(&self) -> PathBuf {
        self.root.join("shelves")
    }

    pub(crate) fn shelf(&self, id: ShelfId) -> PathBuf {
        self.shelves().join(format!("{:06}", id.0))
    }

    pub(crate) fn tenants(&self) -> PathBuf {
        self.root.join("tenants")
    }

    pub(crate) fn tenant_dir(&self, incarnation: u64) -> PathBuf {
        self.tenants().join(incarnation.to_string())
    }
}

/// The column family of a tenant on its shelf.
pub(crate) fn column_family(incarnation: u64) -> String {
    format!("t{incarnation}")
}

/// The incarnation named by a column family, if it is a tenant's.
pub(crate) fn incarnation_of(column_family: &str) -> Option<u64> {
    column_family.strip_prefix('t')?.parse().ok()
}

/// fsyncs a directory so that a rename or create inside it is durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir).and_then(|d| d.sync_all()).at(dir)
}
