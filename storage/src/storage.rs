//! The whole of a node's storage: the `meta` instance and the shelves.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use parking_lot::{Mutex, RwLock};

use crate::audit::AuditLog;
use crate::error::{Result, StorageError};
use crate::faults::{FaultInjector, check};
use crate::layout::{Layout, sync_dir};
use crate::meta::{MetaStore, ShelfId, TenantRecord, TokenRecord};
use crate::shelf::{ClassMemory, Shelf};
use crate::tenant_store::TenantStore;

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
struct ShelfEntry {
    id: ShelfId,
    trust_class: String,
    /// Incarnations with a tenant record on this shelf.
    members: Mutex<BTreeSet<u64>>,
    /// The open shelf and its last use.
    open: Mutex<Option<(Arc<Shelf>, Instant)>>,
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

    /// Number of shelves open now.
    pub fn open_shelf_count(&self) -> usize {
        self.entries()
            .iter()
            .filter(|e| e.open.lock().is_some())
            .count()
    }

    /// The entry's shelf, opened now if it is closed. At open, column
    /// families with no tenant record (a create interrupted by a crash)
    /// are removed.
    fn shelf(&self, entry: &ShelfEntry) -> Result<Arc<Shelf>> {
        let mut open = entry.open.lock();
        if let Some((shelf, used)) = open.as_mut() {
            *used = Instant::now();
            return Ok(Arc::clone(shelf));
        }
        let started = Instant::now();
        let memory = self
            .classes
            .lock()
            .entry(entry.trust_class.clone())
            .or_insert_with(ClassMemory::new)
            .clone();
        let shelf = Arc::new(Shelf::open(
            entry.id,
            &entry.trust_class,
            &self.layout.shelf(entry.id),
            &memory,
        )?);
        let members = entry.members.lock().clone();
        for incarnation in shelf.incarnations() {
            if !members.contains(&incarnation) {
                tracing::warn!(
                    incarnation,
                    shelf = entry.id.0,
                    "removing orphaned column family"
                );
                shelf.drop_tenant(incarnation)?;
            }
        }
        tracing::debug!(
            shelf = entry.id.0,
            tenants = members.len(),
            ms = started.elapsed().as_millis() as u64,
            "shelf opened"
        );
        *open = Some((Arc::clone(&shelf), Instant::now()));
        Ok(shelf)
    }

    fn entry(&self, id: ShelfId) -> Result<Arc<ShelfEntry>> {
        self.shelves
            .read()
            .get(&id)
            .cloned()
            .ok_or_else(|| StorageError::Corrupt(format!("shelf {} is missing", id.0)))
    }

    fn entries(&self) -> Vec<Arc<ShelfEntry>> {
        self.shelves.read().values().cloned().collect()
    }

    /// Closes every shelf that no tenant store holds and that was not used
    /// for `close_idle_shelf_after`, memtables flushed first. Returns how
    /// many closed. The server calls it periodically.
    pub fn close_idle_shelves(&self) -> Result<usize> {
        let mut closed = 0;
        for entry in self.entries() {
            let mut open = entry.open.lock();
            let idle = open.as_ref().is_some_and(|(shelf, used)| {
                Arc::strong_count(shelf) == 1
                    && used.elapsed() >= self.options.close_idle_shelf_after
            });
            if idle && let Some((shelf, _)) = open.take() {
                if let Err(e) = shelf.flush_all() {
                    *open = Some((shelf, Instant::now()));
                    return Err(e);
                }
                drop(shelf);
                closed += 1;
                tracing::debug!(shelf = entry.id.0, "idle shelf closed");
            }
        }
        Ok(closed)
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
        check(self.options.faults.as_ref(), "tenant create")?;
        if self.meta.tenant(name)?.is_some() {
            return Ok(None);
        }
        let (entry, shelf) = self.shelf_with_room(trust_class)?;
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
        entry.members.lock().insert(incarnation);
        Ok(Some((
            record,
            TenantStore::new(shelf, incarnation, dir, self.options.faults.clone()),
        )))
    }

    /// A shelf of the trust class with room for one more tenant (an open
    /// one first), or a new one. Callers hold `placement`.
    fn shelf_with_room(&self, trust_class: &str) -> Result<(Arc<ShelfEntry>, Arc<Shelf>)> {
        let cap = self.options.tenants_per_shelf.max(1);
        let mut room: Vec<Arc<ShelfEntry>> = self
            .entries()
            .into_iter()
            .filter(|e| e.trust_class == trust_class && e.members.lock().len() < cap)
            .collect();
        room.sort_by_key(|e| e.open.lock().is_none());
        if let Some(entry) = room.into_iter().next() {
            let shelf = self.shelf(&entry)?;
            return Ok((entry, shelf));
        }
        let id = self.meta.add_shelf(trust_class)?;
        let entry = Arc::new(ShelfEntry {
            id,
            trust_class: trust_class.to_string(),
            members: Mutex::new(BTreeSet::new()),
            open: Mutex::new(None),
        });
        let shelf = self.shelf(&entry)?;
        self.shelves.write().insert(id, Arc::clone(&entry));
        tracing::info!(shelf = id.0, "opened a new shelf");
        Ok((entry, shelf))
    }

    /// A tenant's store, opening its shelf if it is closed.
    pub fn open_tenant(&self, record: &TenantRecord) -> Result<TenantStore> {
        let entry = self.entry(record.shelf)?;
        let shelf = self.shelf(&entry)?;
        Ok(TenantStore::new(
            shelf,
            record.incarnation,
            self.layout.tenant_dir(record.incarnation),
            self.options.faults.clone(),
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
        check(self.options.faults.as_ref(), "tenant drop")?;
        match self.meta.tenant(&record.name)? {
            Some(current) if current.incarnation == record.incarnation => {
                self.meta.delete_tenant(&record.name, record.incarnation)?;
            }
            _ => return Err(StorageError::Gone),
        }
        let entry = self.entry(record.shelf)?;
        entry.members.lock().remove(&record.incarnation);
        // The record is gone: opening the shelf now would drop the column
        // family as an orphan; dropping it here does the same when it is
        // already open.
        self.shelf(&entry)?.drop_tenant(record.incarnation)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tenant_store::{PointWrite, StoredPoint};

    fn options(per_shelf: usize) -> StorageOptions {
        StorageOptions {
            tenants_per_shelf: per_shelf,
            ..StorageOptions::default()
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
        for entry in storage.entries() {
            let classes: std::collections::HashSet<&str> = records
                .iter()
                .filter(|r| r.shelf == entry.id)
                .map(|r| r.trust_class.as_str())
                .collect();
            assert_eq!(classes.len(), 1);
            assert!(entry.members.lock().len() <= 2);
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
        for entry in storage.entries() {
            let shelf = storage.shelf(&entry).unwrap();
            assert!(!shelf.incarnations().contains(&incarnation));
        }
    }

    #[test]
    fn shelves_open_on_first_use_and_close_when_idle() {
        let dir = tempfile::tempdir().unwrap();
        let point = StoredPoint {
            internal_id: 0,
            vector: vec![1.0],
            payload: b"{}".to_vec(),
        };
        {
            let storage = Storage::open(dir.path(), options(1)).unwrap();
            for name in ["a", "b"] {
                let (_, store) = storage.create_tenant(name, "c", vec![]).unwrap().unwrap();
                store
                    .commit(
                        &[PointWrite::Put {
                            id: name.into(),
                            point: point.clone(),
                            text: None,
                        }],
                        1,
                    )
                    .unwrap();
            }
            storage.flush().unwrap();
        }
        let storage = Storage {
            options: StorageOptions {
                close_idle_shelf_after: Duration::ZERO,
                ..options(1)
            },
            ..Storage::open(dir.path(), options(1)).unwrap()
        };
        assert_eq!(storage.shelf_count(), 2);
        assert_eq!(storage.open_shelf_count(), 0, "nothing opens until used");
        let a = storage
            .open_tenant(&storage.tenant("a").unwrap().unwrap())
            .unwrap();
        assert_eq!(storage.open_shelf_count(), 1);
        assert_eq!(
            storage.close_idle_shelves().unwrap(),
            0,
            "a's store holds it"
        );
        assert_eq!(a.get("a").unwrap(), Some(point.clone()));
        drop(a);
        assert_eq!(storage.close_idle_shelves().unwrap(), 1);
        assert_eq!(storage.open_shelf_count(), 0);
        // Reopened on the next use, with its data; a drop of a tenant on a
        // closed shelf opens it to drop the column family.
        let a = storage
            .open_tenant(&storage.tenant("a").unwrap().unwrap())
            .unwrap();
        assert_eq!(a.get("a").unwrap(), Some(point));
        storage
            .drop_tenant(&storage.tenant("b").unwrap().unwrap())
            .unwrap();
        let b_shelf = storage
            .entries()
            .into_iter()
            .find(|e| e.members.lock().is_empty());
        let b_shelf = storage.shelf(&b_shelf.unwrap()).unwrap();
        assert!(b_shelf.incarnations().is_empty());
    }
}
