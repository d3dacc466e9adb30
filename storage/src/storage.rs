//! The whole of a node's storage: the `meta` instance and the shelves.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use parking_lot::{Mutex, RwLock};

use crate::audit::AuditLog;
use crate::error::{Result, StorageError};
use crate::layout::{Layout, sync_dir};
use crate::meta::{MetaStore, ShelfId, ShelfRecord, TenantRecord, TokenRecord};
use crate::shelf::Shelf;
use crate::tenant_store::TenantStore;

#[derive(Debug, Clone)]
pub struct StorageOptions {
    /// Most tenant column families one shelf (RocksDB instance) holds.
    pub tenants_per_shelf: usize,
}

impl Default for StorageOptions {
    fn default() -> Self {
        // Measured (benches/tenant.rs, create_tenant_on_a_shelf_of): one create
        // costs ~13 ms on a shelf of 25 column families, ~47 ms at 100 and
        // ~140 ms at 400, growing linearly with the shelf. 100 bounds a create
        // or drop well under 0.1 s while keeping 10,000 tenants on 100 shelves.
        StorageOptions {
            tenants_per_shelf: 100,
        }
    }
}

#[derive(Debug)]
pub struct Storage {
    layout: Layout,
    options: StorageOptions,
    meta: MetaStore,
    audit: AuditLog,
    shelves: RwLock<BTreeMap<ShelfId, Arc<Shelf>>>,
    /// Serializes tenant creation and drop (placement, counters, folders).
    placement: Mutex<()>,
}

/// Opens the shelves on as many threads as there are cores: opening one is
/// CPU work (RocksDB parses and rewrites its options for every column
/// family), and shelves are independent.
fn open_shelves(
    layout: &Layout,
    records: Vec<(ShelfId, ShelfRecord)>,
) -> Result<BTreeMap<ShelfId, Arc<Shelf>>> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(records.len().max(1));
    let next = std::sync::atomic::AtomicUsize::new(0);
    type Opened = Vec<(ShelfId, Arc<Shelf>)>;
    let opened: Vec<Result<Opened>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut mine: Opened = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some((id, record)) = records.get(i) else {
                            return Ok(mine);
                        };
                        let shelf = Shelf::open(*id, &record.trust_class, &layout.shelf(*id))?;
                        mine.push((*id, Arc::new(shelf)));
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| {
                w.join()
                    .unwrap_or_else(|_| Err(StorageError::Corrupt("a shelf failed to open".into())))
            })
            .collect()
    });
    let mut shelves = BTreeMap::new();
    for batch in opened {
        shelves.extend(batch?);
    }
    Ok(shelves)
}

impl Storage {
    /// Opens (or creates) the storage under `root`. Leftovers of a create or
    /// drop interrupted by a crash (a column family or folder with no tenant
    /// record) are removed, so a tenant is always wholly there or wholly gone.
    pub fn open(root: &Path, options: StorageOptions) -> Result<Self> {
        let layout = Layout::new(root);
        for dir in [layout.shelves(), layout.tenants()] {
            fs_err::create_dir_all(&dir)?;
        }
        let meta = MetaStore::open(&layout.meta())?;
        let shelves = open_shelves(&layout, meta.shelves()?)?;
        let audit = AuditLog::open(&layout.audit_log())?;
        let storage = Storage {
            layout,
            options,
            meta,
            audit,
            shelves: RwLock::new(shelves),
            placement: Mutex::new(()),
        };
        storage.remove_orphans()?;
        Ok(storage)
    }

    fn remove_orphans(&self) -> Result<()> {
        let live: std::collections::HashSet<u64> =
            self.meta.tenants()?.iter().map(|r| r.incarnation).collect();
        for shelf in self.all_shelves() {
            for incarnation in shelf.incarnations() {
                if !live.contains(&incarnation) {
                    tracing::warn!(
                        incarnation,
                        shelf = shelf.id.0,
                        "removing orphaned column family"
                    );
                    shelf.drop_tenant(incarnation)?;
                }
            }
        }
        for entry in fs_err::read_dir(self.layout.tenants())? {
            let entry = entry?;
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
                fs_err::remove_dir_all(entry.path())?;
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

    /// Number of shelves (RocksDB instances besides `meta`).
    pub fn shelf_count(&self) -> usize {
        self.shelves.read().len()
    }

    /// Creates a tenant's column family and folder on a shelf of its trust
    /// class, then commits its record. Returns `None` if the name is taken.
    pub fn create_tenant(
        &self,
        name: &str,
        trust_class: &str,
        settings: Vec<u8>,
    ) -> Result<Option<(TenantRecord, TenantStore)>> {
        let _placement = self.placement.lock();
        if self.meta.tenant(name)?.is_some() {
            return Ok(None);
        }
        let shelf = self.shelf_with_room(trust_class)?;
        let incarnation = self.meta.next_incarnation()?;
        let dir = self.layout.tenant_dir(incarnation);
        fs_err::create_dir(&dir)?;
        sync_dir(&self.layout.tenants()).map_err(|e| StorageError::io(self.layout.tenants(), e))?;
        shelf.create_tenant(incarnation)?;
        let record = TenantRecord {
            name: name.to_string(),
            incarnation,
            shelf: shelf.id,
            trust_class: trust_class.to_string(),
            created_unix_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0),
            settings,
        };
        // The commit point: before it, a crash leaves orphans that open() removes.
        self.meta.put_tenant(&record)?;
        Ok(Some((record, TenantStore::new(shelf, incarnation, dir))))
    }

    fn shelf_with_room(&self, trust_class: &str) -> Result<Arc<Shelf>> {
        let cap = self.options.tenants_per_shelf.max(1);
        if let Some(shelf) = self
            .shelves
            .read()
            .values()
            .find(|s| s.trust_class == trust_class && s.tenant_count() < cap)
        {
            return Ok(Arc::clone(shelf));
        }
        let id = self.meta.add_shelf(trust_class)?;
        let shelf = Arc::new(Shelf::open(id, trust_class, &self.layout.shelf(id))?);
        self.shelves.write().insert(id, Arc::clone(&shelf));
        tracing::info!(shelf = id.0, "opened a new shelf");
        Ok(shelf)
    }

    pub fn open_tenant(&self, record: &TenantRecord) -> Result<TenantStore> {
        let shelf = self
            .shelves
            .read()
            .get(&record.shelf)
            .cloned()
            .ok_or_else(|| StorageError::Corrupt(format!("shelf {} is missing", record.shelf.0)))?;
        Ok(TenantStore::new(
            shelf,
            record.incarnation,
            self.layout.tenant_dir(record.incarnation),
        ))
    }

    /// Replaces the engine's settings in a tenant's record (synced). Fails
    /// with `Gone` if the tenant was dropped meanwhile.
    pub fn update_tenant_settings(
        &self,
        record: &TenantRecord,
        settings: Vec<u8>,
    ) -> Result<TenantRecord> {
        let _placement = self.placement.lock();
        match self.meta.tenant(&record.name)? {
            Some(current) if current.incarnation == record.incarnation => {
                let updated = TenantRecord {
                    settings,
                    ..current
                };
                self.meta.put_tenant(&updated)?;
                Ok(updated)
            }
            _ => Err(StorageError::Gone),
        }
    }

    /// Removes a tenant: its record (the commit point), then its column family
    /// (flushing the shelf so the shared WAL lets go of its writes), then its
    /// folder. Returns once none of its bytes remain in live files.
    pub fn drop_tenant(&self, record: &TenantRecord) -> Result<()> {
        let _placement = self.placement.lock();
        match self.meta.tenant(&record.name)? {
            Some(current) if current.incarnation == record.incarnation => {
                self.meta.delete_tenant(&record.name, record.incarnation)?;
            }
            _ => return Err(StorageError::Gone),
        }
        let shelf = self.shelves.read().get(&record.shelf).cloned();
        if let Some(shelf) = shelf {
            shelf.drop_tenant(record.incarnation)?;
        }
        let dir = self.layout.tenant_dir(record.incarnation);
        if dir.exists() {
            fs_err::remove_dir_all(&dir)?;
        }
        sync_dir(&self.layout.tenants()).map_err(|e| StorageError::io(self.layout.tenants(), e))?;
        self.meta.flush()?;
        Ok(())
    }

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
            let token = fs_err::read_to_string(&path)?.trim().to_string();
            return Ok((token, path, false));
        }
        let token = generate();
        let mut file = {
            use fs_err::os::unix::fs::OpenOptionsExt;
            let mut options = fs_err::OpenOptions::new();
            options.write(true).create_new(true).mode(0o600);
            options.open(&path)?
        };
        std::io::Write::write_all(&mut file, format!("{token}\n").as_bytes())?;
        file.sync_all()?;
        Ok((token, path, true))
    }

    /// Compacts every shelf and `meta`: deleted bytes leave the SST files.
    pub fn compact(&self) -> Result<()> {
        for shelf in self.all_shelves() {
            shelf.flush_all()?;
            shelf.compact_all()?;
        }
        Ok(())
    }

    /// Flushes every memtable, for a clean shutdown.
    pub fn flush(&self) -> Result<()> {
        for shelf in self.all_shelves() {
            shelf.flush_all()?;
        }
        self.meta.flush()
    }

    fn all_shelves(&self) -> Vec<Arc<Shelf>> {
        self.shelves.read().values().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tenant_store::{PointWrite, StoredPoint};

    fn options(per_shelf: usize) -> StorageOptions {
        StorageOptions {
            tenants_per_shelf: per_shelf,
        }
    }

    #[test]
    fn shelves_are_bounded_and_hold_one_trust_class() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path(), options(2)).unwrap();
        let mut records = Vec::new();
        for (name, class) in [
            ("a1", "gold"),
            ("a2", "gold"),
            ("b1", "free"),
            ("a3", "gold"),
            ("a4", "gold"),
            ("a5", "gold"),
        ] {
            records.push(
                storage
                    .create_tenant(name, class, vec![])
                    .unwrap()
                    .unwrap()
                    .0,
            );
        }
        assert_eq!(
            storage.shelf_count(),
            4,
            "gold: 3 shelves of at most 2, free: 1"
        );
        for shelf in storage.shelves.read().values() {
            let classes: std::collections::HashSet<&str> = records
                .iter()
                .filter(|r| r.shelf == shelf.id)
                .map(|r| r.trust_class.as_str())
                .collect();
            assert_eq!(classes.len(), 1);
            assert!(shelf.tenant_count() <= 2);
        }
        assert!(
            storage
                .create_tenant("a1", "gold", vec![])
                .unwrap()
                .is_none(),
            "names are unique"
        );
        // A dropped slot is reused before a new shelf is opened.
        storage.drop_tenant(&records[0]).unwrap();
        let again = storage
            .create_tenant("a6", "gold", vec![])
            .unwrap()
            .unwrap()
            .0;
        assert_eq!(again.shelf, records[0].shelf);
        assert!(
            again.incarnation > records.iter().map(|r| r.incarnation).max().unwrap(),
            "incarnations are never reused"
        );
    }

    #[test]
    fn points_survive_reopen_and_stay_in_their_tenant() {
        let dir = tempfile::tempdir().unwrap();
        let point = |i: u64| StoredPoint {
            internal_id: i,
            vector: vec![i as f32, 1.0],
            payload: b"{}".to_vec(),
        };
        {
            let storage = Storage::open(dir.path(), options(100)).unwrap();
            let (_, a) = storage.create_tenant("a", "c", vec![1]).unwrap().unwrap();
            let (_, b) = storage.create_tenant("b", "c", vec![2]).unwrap().unwrap();
            a.commit(
                &[
                    PointWrite::Put {
                        id: "x".into(),
                        point: point(0),
                        text: None,
                    },
                    PointWrite::Put {
                        id: "y".into(),
                        point: point(1),
                        text: Some("why".into()),
                    },
                ],
                2,
            )
            .unwrap();
            b.commit(
                &[PointWrite::Put {
                    id: "x".into(),
                    point: point(7),
                    text: Some("ex".into()),
                }],
                8,
            )
            .unwrap();
            a.commit(&[PointWrite::Delete { id: "y".into() }], 2)
                .unwrap();
        }
        let storage = Storage::open(dir.path(), options(100)).unwrap();
        let records = storage.tenants().unwrap();
        assert_eq!(records.len(), 2);
        let a = storage
            .open_tenant(&storage.tenant("a").unwrap().unwrap())
            .unwrap();
        let b = storage
            .open_tenant(&storage.tenant("b").unwrap().unwrap())
            .unwrap();
        assert_eq!(a.next_internal_id().unwrap(), 2);
        assert_eq!(a.get("x").unwrap(), Some(point(0)));
        assert_eq!(a.get("y").unwrap(), None);
        assert_eq!(b.get("x").unwrap(), Some(point(7)));
        assert_eq!(b.text("x").unwrap().as_deref(), Some("ex"));
        assert_eq!(a.text("x").unwrap(), None, "b's text is not a's");
        assert_eq!(a.text("y").unwrap(), None, "deleted with its point");
        let mut seen = Vec::new();
        a.for_each_point(|id, p| seen.push((id, p.internal_id)))
            .unwrap();
        assert_eq!(seen, [("x".to_string(), 0)]);
    }

    #[test]
    fn leftovers_of_an_interrupted_create_are_removed_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let incarnation = {
            let storage = Storage::open(dir.path(), options(100)).unwrap();
            let (record, store) = storage.create_tenant("half", "c", vec![]).unwrap().unwrap();
            store.commit(&[], 0).unwrap();
            // As if the process died before the meta record was committed.
            storage
                .meta
                .delete_tenant("half", record.incarnation)
                .unwrap();
            record.incarnation
        };
        let storage = Storage::open(dir.path(), options(100)).unwrap();
        assert!(!storage.layout.tenant_dir(incarnation).exists());
        for shelf in storage.shelves.read().values() {
            assert!(!shelf.incarnations().contains(&incarnation));
        }
    }
}
