//! Residency: which tenants are in memory. Loads on first use (concurrent
//! first requests share one), the memory budget and its evictions, pin,
//! warm and cool, and writes that follow a tenant to its next load.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::audit::AuditEvent;
use super::entry::TenantEntry;
use super::{Registry, TenantInfo, now_unix_ms};
use bulkhead_storage::TenantStore;

use crate::error::{EngineError, Result};
use crate::name::TenantName;
use crate::tenant::{Life, Opening, Tenant};

/// How many loads of a tenant a write tries before it gives up with
/// `TryAgain`. A write retries only when the load it ran on was evicted
/// under it; eight evictions of one tenant during one write means the
/// memory budget is far too small for the working set, and the caller is
/// better told than kept waiting.
const MAX_LOADS_PER_WRITE: usize = 8;

impl Registry {
    /// Marks a use of `entry`: its last-use time and place in the eviction order.
    pub(super) fn touch(&self, entry: &TenantEntry) {
        entry.last_used.store(now_unix_ms(), Ordering::Relaxed);
        let tick = self.uses.fetch_add(1, Ordering::Relaxed) + 1;
        entry.last_tick.store(tick, Ordering::Relaxed);
    }

    /// Opens a load of `entry`'s tenant over its column family and makes
    /// it the entry's loaded one: the one place a `Tenant` is built, for a
    /// create and for a cold load.
    pub(super) fn open_load(&self, entry: &TenantEntry, store: TenantStore) -> Result<Arc<Tenant>> {
        let tenant = Tenant::open(Opening {
            name: entry.name.clone(),
            record: entry.record.clone(),
            spec: entry.spec.clone(),
            store,
            config: Arc::clone(&self.config),
            node_secret: &self.node_secret,
            limits: Arc::clone(&entry.limits),
            background: self.background.clone(),
        })?;
        *entry.loaded.write() = Some(Arc::clone(&tenant));
        Ok(tenant)
    }

    /// The entry's tenant, loading it if it is cold (then evicting others
    /// if the budget is exceeded). A tenant dropped while a caller waited
    /// for its load is `TenantNotFound`.
    pub(super) fn load(&self, entry: &TenantEntry) -> Result<Arc<Tenant>> {
        self.touch(entry);
        if let Some(tenant) = entry.loaded() {
            return Ok(tenant);
        }
        let tenant = {
            let dropped = entry.loading.lock();
            if *dropped {
                return Err(EngineError::TenantNotFound);
            }
            if let Some(tenant) = entry.loaded() {
                return Ok(tenant);
            }
            let started = std::time::Instant::now();
            let store = self.storage.open_tenant(&entry.record)?;
            let tenant = self.open_load(entry, store)?;
            tracing::debug!(tenant = %entry.name, ms = started.elapsed().as_millis() as u64, "tenant loaded");
            tenant
        };
        if let Err(e) = self.enforce_memory_budget_keeping(Some(&entry.name)) {
            tracing::warn!(error = %e, "evicting to the memory budget failed");
        }
        Ok(tenant)
    }

    /// Runs the write `op` on `tenant`, and again on the tenant's next load
    /// if this load was evicted under it: a write does not fail because of
    /// eviction (unless the tenant is evicted [`MAX_LOADS_PER_WRITE`] times
    /// meanwhile). `tenant` must come from this registry (its caller was
    /// authorized).
    pub fn write<T>(&self, tenant: &Arc<Tenant>, op: impl Fn(&Tenant) -> Result<T>) -> Result<T> {
        let mut current = Arc::clone(tenant);
        for _ in 0..MAX_LOADS_PER_WRITE {
            match op(&current) {
                Err(_) if current.life() == Life::Evicted => {}
                done => return done,
            }
            let entry = self.entry(current.name().as_str())?;
            if entry.record.incarnation != current.incarnation() {
                return Err(EngineError::TenantNotFound);
            }
            current = self.load(&entry)?;
        }
        Err(EngineError::TryAgain)
    }

    /// Evicts least recently used, unpinned tenants until the loaded ones
    /// fit the memory budget. Returns how many were evicted. The server
    /// calls it periodically (writes grow tenants without loading any);
    /// loads call it themselves.
    pub fn enforce_memory_budget(&self) -> Result<usize> {
        self.enforce_memory_budget_keeping(None)
    }

    fn enforce_memory_budget_keeping(&self, keep: Option<&TenantName>) -> Result<usize> {
        let budget = self.config.memory_budget_bytes;
        if budget == 0 {
            return Ok(0);
        }
        let Some(_pass) = self.evicting.try_lock() else {
            return Ok(0);
        };
        let entries: Vec<Arc<TenantEntry>> = self.tenants.read().values().cloned().collect();
        let mut total = 0u64;
        let mut candidates = Vec::new();
        for entry in entries {
            let Some(tenant) = entry.loaded() else {
                continue;
            };
            let bytes = tenant.resident_bytes();
            total += bytes;
            if !entry.pinned.load(Ordering::Acquire) && Some(&entry.name) != keep {
                candidates.push((entry.last_tick.load(Ordering::Relaxed), bytes, entry));
            }
        }
        if total <= budget {
            return Ok(0);
        }
        candidates.sort_by_key(|c| c.0);
        let mut evicted = 0;
        for (_, bytes, entry) in candidates {
            if total <= budget {
                break;
            }
            if self.evict(&entry)? {
                total = total.saturating_sub(bytes);
                evicted += 1;
            }
        }
        tracing::debug!(evicted, resident = total, budget, "memory budget enforced");
        Ok(evicted)
    }

    /// Closes the storage shelves (RocksDB instances) that no loaded tenant
    /// uses and that were idle for a while; the next load opens them again.
    /// Returns how many closed. The server calls it periodically.
    pub fn close_idle_shelves(&self) -> Result<usize> {
        Ok(self.storage.close_idle_shelves()?)
    }

    /// Storage shelves open now, and in all.
    pub fn shelves(&self) -> (usize, usize) {
        (self.storage.open_shelf_count(), self.storage.shelf_count())
    }

    /// Moves a loaded tenant to cold; false if it was not loaded. Loads of
    /// it wait until this is done.
    fn evict(&self, entry: &TenantEntry) -> Result<bool> {
        let dropped = entry.loading.lock();
        if *dropped {
            return Ok(false);
        }
        let Some(tenant) = entry.loaded.write().take() else {
            return Ok(false);
        };
        if let Err(e) = tenant.evict() {
            *entry.loaded.write() = Some(tenant);
            return Err(e);
        }
        *entry.last_known.lock() = (tenant.count(None).unwrap_or(0), tenant.payload_bytes());
        let mut evicted = entry.evicted.lock();
        evicted.retain(|w| w.strong_count() > 0);
        evicted.push(Arc::downgrade(&tenant));
        drop(evicted);
        drop(dropped);
        tracing::debug!(tenant = %entry.name, "tenant evicted to cold");
        Ok(true)
    }

    /// Pins or unpins a tenant: a pinned tenant is never evicted by the
    /// memory budget. Kept across restarts.
    pub fn pin_tenant(&self, name: &str, pinned: bool) -> Result<TenantInfo> {
        let entry = self.entry(name)?;
        let _lifecycle = self.lifecycle.lock();
        let was = entry.pinned.swap(pinned, Ordering::AcqRel);
        if let Err(e) = self.save_settings(&entry) {
            entry.pinned.store(was, Ordering::Release);
            return Err(e);
        }
        self.audit(AuditEvent::TenantPin {
            tenant: entry.name.as_str(),
            pinned,
        })?;
        Ok(entry.info())
    }

    /// Loads a tenant now, ahead of its first request.
    pub fn warm_tenant(&self, name: &str) -> Result<TenantInfo> {
        let entry = self.entry(name)?;
        self.load(&entry)?;
        Ok(entry.info())
    }

    /// Evicts a tenant to cold now. A pinned tenant must be unpinned first.
    pub fn cool_tenant(&self, name: &str) -> Result<TenantInfo> {
        let entry = self.entry(name)?;
        if entry.pinned.load(Ordering::Acquire) {
            return Err(EngineError::invalid(
                "the tenant is pinned: unpin it before cooling it",
            ));
        }
        self.evict(&entry)?;
        Ok(entry.info())
    }
}
