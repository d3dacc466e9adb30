//! Shelves: RocksDB instances of one trust class, each holding up to
//! `tenants_per_shelf` column families, opened on first use and closed
//! when no loaded tenant has used them for a while.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;

use super::{ShelfEntry, Storage};
use crate::error::{Result, StorageError};
use crate::meta::ShelfId;
use crate::shelf::{ClassMemory, Shelf};

impl Storage {
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
    pub(super) fn shelf(&self, entry: &ShelfEntry) -> Result<Arc<Shelf>> {
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

    pub(super) fn entry(&self, id: ShelfId) -> Result<Arc<ShelfEntry>> {
        self.shelves
            .read()
            .get(&id)
            .cloned()
            .ok_or_else(|| StorageError::Corrupt(format!("shelf {} is missing", id.0)))
    }

    pub(super) fn entries(&self) -> Vec<Arc<ShelfEntry>> {
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

    /// A shelf of the trust class with room for one more tenant (an open
    /// one first), or a new one. Callers hold `placement`.
    pub(super) fn shelf_with_room(
        &self,
        trust_class: &str,
    ) -> Result<(Arc<ShelfEntry>, Arc<Shelf>)> {
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
}
