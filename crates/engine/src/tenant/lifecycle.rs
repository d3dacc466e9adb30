//! The ends of a load: close, evict and drop. Each waits for the tenant's
//! background work and takes the writer lock, so no write or snapshot runs
//! during or after it.

use super::{Index, Tenant};
use crate::error::Result;
use crate::table::PointTable;

impl Tenant {
    /// Waits for a running background rebuild or snapshot (tests, shutdown).
    pub fn wait_for_maintenance(&self) {
        self.maintenance.join();
    }

    /// Waits for background work, then snapshots the graph if it changed.
    pub(crate) fn close(&self) -> Result<()> {
        self.maintenance.join();
        let mut writer = self.writer.lock();
        if writer.since_snapshot > 0 && self.life.check_readable().is_ok() {
            self.save_snapshot(&mut writer, true)?;
        }
        Ok(())
    }

    /// Moves this load out of memory: refuses later writes (they go to the
    /// tenant's next load), waits for background work and writes, and
    /// snapshots the graph if it changed, so the next load maps it instead
    /// of replaying. Readers holding this handle keep reading what it had.
    pub(crate) fn evict(&self) -> Result<()> {
        if !self.life.evict() {
            return Ok(());
        }
        self.maintenance.join();
        let mut writer = self.writer.lock();
        if writer.since_snapshot > 0
            && let Err(e) = self.save_snapshot(&mut writer, false)
        {
            self.life.unevict();
            return Err(e);
        }
        Ok(())
    }

    /// Marks the tenant dropped and runs `erase` with the writer lock held,
    /// so no write or snapshot of this tenant can run during or after it.
    pub(crate) fn drop_with(&self, erase: impl FnOnce() -> Result<()>) -> Result<()> {
        self.life.drop_tenant();
        let _writer = self.writer.lock();
        if let Err(e) = erase() {
            // Not dropped after all (or the registry decides otherwise).
            self.life.undrop();
            return Err(e);
        }
        *self.table.write() = PointTable::default();
        *self.index.write() = Index::None;
        Ok(())
    }

    /// Undoes a drop whose erase failed before its commit point.
    pub(crate) fn undrop(&self) {
        self.life.undrop();
    }

    /// Marks a load dropped (an evicted one, or one whose erase failed
    /// after the commit point), so its last readers see the tenant gone.
    pub(crate) fn mark_dropped(&self) {
        self.life.drop_tenant();
    }
}
