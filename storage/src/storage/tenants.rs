//! A tenant's storage: its column family on a shelf of its trust class and
//! its folder, created, opened and dropped. The tenant's record in `meta`
//! is the commit point: written last on create, removed first on drop.

use std::time::{SystemTime, UNIX_EPOCH};

use super::Storage;
use crate::error::{AtPath, Result, StorageError};
use crate::faults::check;
use crate::layout::sync_dir;
use crate::meta::TenantRecord;
use crate::tenant_store::TenantStore;

impl Storage {
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
        std::fs::create_dir(&dir).at(&dir)?;
        sync_dir(&self.layout.tenants())?;
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
            std::fs::remove_dir_all(&dir).at(&dir)?;
        }
        sync_dir(&self.layout.tenants())?;
        self.meta.flush()?;
        Ok(())
    }
}
