//! The whole of a node's storage: the `meta` instance and the shelves.
//!
//! - [`shelves`]: the RocksDB instances, opened on first use and closed
//!   when idle;
//! - [`tenants`]: a tenant's column family and folder, created, opened and
//!   dropped (its record in `meta` is the commit point);
//! - [`records`]: the node's own records (secret, tokens, lineage, audit,
//!   admin token).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};

use crate::audit::AuditLog;
use crate::error::{AtPath, Result, StorageError};
use crate::faults::FaultInjector;
use crate::layout::Layout;
use crate::meta::{MetaStore, ShelfId, TenantRecord};
use crate::shelf::{ClassMemory, Shelf};

mod records;
mod shelves;
mod tenants;

#[derive(Debug, Clone)]
pub struct StorageOptions {
    /// Most tenant column families one shelf (RocksDB instance) holds.
    pub tenants_per_shelf: usize,
    /// A shelf none of whose tenants is loaded closes after this long
    /// unused (see [`Storage::close_idle_shelves`]).
    pub close_idle_shelf_after: Duration,
    /// Fault injection for tests (see [`FaultInjector`]); None in service.
    pub faults: Option<Arc<FaultInjector>>,
}

impl Default for StorageOptions {
    fn default() -> Self {
        // Measured (benches/tenant.rs, create_tenant_on_a_shelf_of): one create
        // costs ~13 ms on a shelf of 25 column families, ~47 ms at 100 and
        // ~140 ms at 400, growing linearly with the shelf. 100 bounds a create
        // or drop well under 0.1 s while keeping 10,000 tenants on 100 shelves.
        StorageOptions {
            tenants_per_shelf: 100,
            close_idle_shelf_after: Duration::from_secs(60),
            faults: None,
        }
    }
}

#[derive(Debug)]
pub struct Storage {
    layout: Layout,
    options: StorageOptions,
    meta: MetaStore,
    audit: AuditLog,
    shelves: RwLock<BTreeMap<ShelfId, Arc<ShelfEntry>>>,
    /// Serializes tenant creation and drop (placement, counters, folders).
    placement: Mutex<()>,
    /// Block cache and memtable budget per trust class.
    classes: Mutex<std::collections::HashMap<String, ClassMemory>>,
}

/// A shelf, open or not. Shelves open on first use (a tenant's load,
/// create or drop), so a node of 10,000 cold tenants opens in the time it
/// takes to read their records; RocksDB's state for a column family
/// (~70 KiB) is paid only while its shelf is open, and a shelf that no
/// loaded tenant uses closes again (`close_idle_shelves`).
#[derive(Debug)]
pub(super) struct ShelfEntry {
    pub(super) id: ShelfId,
    pub(super) trust_class: String,
    /// Incarnations with a tenant record on this shelf.
    pub(super) members: Mutex<BTreeSet<u64>>,
    /// The open shelf and its last use.
    pub(super) open: Mutex<Option<(Arc<Shelf>, Instant)>>,
}

impl Storage {
    /// Opens (or creates) the storage under `root`. Leftovers of a create or
    /// drop interrupted by a crash (a column family or folder with no tenant
    /// record) are removed, so a tenant is always wholly there or wholly gone.
    pub fn open(root: &Path, options: StorageOptions) -> Result<Self> {
        let layout = Layout::new(root);
        // The data directory is its owner's alone (0700), whatever mode it
        // was made with: every tenant's files are below it.
        {
            use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(root)
                .at(root)?;
            std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o700)).at(root)?;
        }
        for dir in [layout.shelves(), layout.tenants()] {
            std::fs::create_dir_all(&dir).at(&dir)?;
        }
        // A missing meta/ would be created empty, and every tenant folder
        // and column family would then look orphaned and be removed.
        let holds_data = non_empty(&layout.shelves())? || non_empty(&layout.tenants())?;
        if holds_data && !layout.meta().join("CURRENT").exists() {
            return Err(StorageError::MetaMissing(layout.meta()));
        }
        let meta = MetaStore::open(&layout.meta())?;
        if non_empty(&layout.shelves())? && meta.shelves()?.is_empty() {
            return Err(StorageError::MetaMissing(layout.meta()));
        }
        let mut shelves: BTreeMap<ShelfId, Arc<ShelfEntry>> = meta
            .shelves()?
            .into_iter()
            .map(|(id, record)| {
                let entry = ShelfEntry {
                    id,
                    trust_class: record.trust_class,
                    members: Mutex::new(BTreeSet::new()),
                    open: Mutex::new(None),
                };
                (id, Arc::new(entry))
            })
            .collect();
        for tenant in meta.tenants()? {
            match shelves.get_mut(&tenant.shelf) {
                Some(entry) => {
                    entry.members.lock().insert(tenant.incarnation);
                }
                None => {
                    return Err(StorageError::Corrupt(format!(
                        "shelf {} is missing",
                        tenant.shelf.0
                    )));
                }
            }
        }
        let audit = AuditLog::open(&layout.audit_log())?;
        let storage = Storage {
            layout,
            options,
            meta,
            audit,
            shelves: RwLock::new(shelves),
            placement: Mutex::new(()),
            classes: Mutex::new(std::collections::HashMap::new()),
        };
        storage.remove_orphans()?;
        Ok(storage)
    }

    /// Removes tenant folders with no tenant record. Column families with
    /// no record are removed when their shelf opens (`shelf`).
    fn remove_orphans(&self) -> Result<()> {
        let live: HashSet<u64> = self.meta.tenants()?.iter().map(|r| r.incarnation).collect();
        let tenants = self.layout.tenants();
        for entry in std::fs::read_dir(&tenants).at(&tenants)? {
            let entry = entry.at(&tenants)?;
            let orphan = match entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u64>().ok())
            {
                Some(incarnation) => !live.contains(&incarnation),
                None => true,
            };
            if orphan {
                tracing::warn!(path = %entry.path().display(), "removing orphaned tenant folder");
                std::fs::remove_dir_all(entry.path()).at(&entry.path())?;
            }
        }
        Ok(())
    }

    pub fn tenants(&self) -> Result<Vec<TenantRecord>> {
        self.meta.tenants()
    }

    pub fn tenant(&self, name: &str) -> Result<Option<TenantRecord>> {
        self.meta.tenant(name)
    }

    /// Compacts every shelf (opening closed ones) and `meta`: deleted
    /// bytes leave the SST files.
    pub fn compact(&self) -> Result<()> {
        for entry in self.entries() {
            let shelf = self.shelf(&entry)?;
            shelf.flush_all()?;
            shelf.compact_all()?;
        }
        Ok(())
    }

    /// Flushes every memtable of the open shelves, for a clean shutdown.
    pub fn flush(&self) -> Result<()> {
        for entry in self.entries() {
            let shelf = entry.open.lock().as_ref().map(|(s, _)| Arc::clone(s));
            if let Some(shelf) = shelf {
                shelf.flush_all()?;
            }
        }
        self.meta.flush()
    }
}

/// Whether `dir` has any entry.
fn non_empty(dir: &Path) -> Result<bool> {
    Ok(std::fs::read_dir(dir).at(dir)?.next().is_some())
}

#[cfg(test)]
mod tests;
