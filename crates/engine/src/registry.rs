//! The registry: tenant name -> tenant. A tenant's data is reached only
//! through a handle the registry gives: [`Registry::authorize`] (a token
//! bound to the tenant) for the data plane, [`Registry::tenant`] for
//! in-process callers; every data operation is a method on that handle.
//!
//! Tenants start cold: opening the registry reads their records only. A
//! tenant's points and graph are loaded on its first use, and concurrent
//! first requests share one load. When the loaded tenants hold more than
//! the memory budget, the least recently used unpinned ones are evicted to
//! cold again (snapshotted first, so the next load maps, never rebuilds).

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use bulkhead_storage::{Storage, TenantRecord};
use parking_lot::{Mutex, RwLock};

use super::config::EngineConfig;
use super::contract::Contract;
use super::credentials::{Credentials, IssuedToken, TokenInfo};
use super::error::{EngineError, Result};
use super::name::TenantName;
use super::quota::{Limits, Quotas};
use super::spec::{TenantSettings, TenantSpec};
use super::tenant::Tenant;

mod lineage;
use lineage::Lineage;
pub use lineage::{AssignTarget, ModelInfo};

/// Whether a tenant's data is in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TenantState {
    /// Loaded: points and graph in memory.
    Active,
    /// On disk only; loaded on first use. Its counts are those of its last
    /// eviction on this node (0 if it was not loaded since the node
    /// started).
    Cold,
}

/// What the admin plane sees of a tenant (list and describe).
#[derive(Debug, Clone, PartialEq)]
pub struct TenantInfo {
    pub name: String,
    pub spec: TenantSpec,
    pub state: TenantState,
    pub points: usize,
    /// Graph nodes including tombstones not yet rebuilt away.
    pub graph_nodes: usize,
    /// Bytes the loaded tenant holds in memory (0 when cold): what the
    /// memory budget counts.
    pub resident_bytes: u64,
    /// Bytes of JSON payload its points hold (as of its last load when
    /// cold).
    pub payload_bytes: u64,
    pub quotas: Quotas,
    /// Never evicted by the memory budget.
    pub pinned: bool,
    /// The tenant's incarnation (engine-internal; never sent to clients).
    pub incarnation: u64,
    /// Nodes of the frozen search layout (0 before the first freeze).
    pub frozen_nodes: usize,
    /// Live points written since the last freeze (scanned exactly).
    pub unfrozen_points: usize,
    pub created_unix_ms: u64,
    /// Last use through the registry; None if not used since the node
    /// started.
    pub last_used_unix_ms: Option<u64>,
    pub contract: Contract,
}

/// One tenant of the registry, cold or active.
struct Slot {
    name: TenantName,
    record: TenantRecord,
    spec: TenantSpec,
    pinned: AtomicBool,
    /// What the tenant's data may influence (changed by the admin only).
    contract: RwLock<Contract>,
    /// Quotas and their counters, shared by every load of the tenant.
    limits: Arc<Limits>,
    loaded: RwLock<Option<Arc<Tenant>>>,
    /// Earlier loads, evicted, that a request may still hold (marked
    /// dropped if the tenant is).
    evicted: Mutex<Vec<Weak<Tenant>>>,
    /// Points and payload bytes at the last eviction, shown while cold.
    last_known: Mutex<(usize, u64)>,
    /// Unix ms of the last data-plane or admin use through the registry
    /// (0: not used since this node started).
    last_used: AtomicU64,
    /// The registry's use counter at the last use: the eviction order
    /// (milliseconds tie).
    last_tick: AtomicU64,
    /// Held while loading, so concurrent first requests share one load;
    /// true once the tenant is dropped (nothing may load it after).
    loading: Mutex<bool>,
}

impl Slot {
    fn loaded(&self) -> Option<Arc<Tenant>> {
        self.loaded.read().clone()
    }
}

pub struct Registry {
    storage: Storage,
    config: Arc<EngineConfig>,
    tenants: RwLock<HashMap<TenantName, Arc<Slot>>>,
    credentials: Credentials,
    node_secret: [u8; 32],
    /// Serializes create, drop and settings changes, so a name is never
    /// half created.
    lifecycle: Mutex<()>,
    /// Held while the memory budget is enforced: one pass at a time.
    evicting: Mutex<()>,
    /// Counts tenant uses, to order them for eviction.
    uses: AtomicU64,
    /// Registered models and their assignments.
    lineage: Lineage,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("tenants", &self.tenants.read().len())
            .finish_non_exhaustive()
    }
}

impl Registry {
    /// Opens the registry under `data_dir`. Tenants start cold: only their
    /// records are read.
    pub fn open(data_dir: &Path, config: EngineConfig) -> Result<Registry> {
        let storage = Storage::open(data_dir, config.storage.clone())?;
        let mut fresh = None;
        let node_secret = storage.node_secret(|| {
            let made = super::credentials::random_bytes::<32>();
            let secret = made.as_ref().map_or([0u8; 32], |s| *s);
            fresh = Some(made);
            secret
        })?;
        if let Some(Err(e)) = fresh {
            return Err(e);
        }
        let config = Arc::new(config);
        let mut tenants = HashMap::new();
        for record in storage.tenants()? {
            let name = TenantName::parse(&record.name)?;
            let settings = TenantSettings::decode(&record.settings)?;
            tenants.insert(name.clone(), Arc::new(Slot::cold(name, record, settings)));
        }
        tracing::info!(
            tenants = tenants.len(),
            shelves = storage.shelf_count(),
            "registry open"
        );
        let credentials = Credentials::new(storage.tokens()?);
        let lineage = Lineage::load(&storage)?;
        Ok(Registry {
            storage,
            config,
            tenants: RwLock::new(tenants),
            credentials,
            node_secret,
            lifecycle: Mutex::new(()),
            evicting: Mutex::new(()),
            uses: AtomicU64::new(0),
            lineage,
        })
    }

    /// Creates a tenant without quotas.
    pub fn create_tenant(&self, name: &str, spec: TenantSpec) -> Result<Arc<Tenant>> {
        self.create_tenant_with_quotas(name, spec, Quotas::default())
    }

    /// Creates a tenant with quotas (see [`Quotas`]; 0 is unlimited).
    pub fn create_tenant_with_quotas(
        &self,
        name: &str,
        spec: TenantSpec,
        quotas: Quotas,
    ) -> Result<Arc<Tenant>> {
        self.create_tenant_with(name, spec, quotas, Contract::default())
    }

    /// Creates a tenant with quotas and a contract (its version is set
    /// to 1).
    pub fn create_tenant_with(
        &self,
        name: &str,
        spec: TenantSpec,
        quotas: Quotas,
        contract: Contract,
    ) -> Result<Arc<Tenant>> {
        let name = TenantName::parse(name)?;
        spec.validate()?;
        contract.validate(&name)?;
        let contract = Contract {
            version: 1,
            ..contract
        };
        let _lifecycle = self.lifecycle.lock();
        if self.tenants.read().contains_key(&name) {
            return Err(EngineError::TenantExists);
        }
        let settings = TenantSettings {
            spec: spec.clone(),
            quotas,
            pinned: false,
            contract,
        };
        let (record, store) = self
            .storage
            .create_tenant(name.as_str(), spec.trust_class.as_str(), settings.encode()?)?
            .ok_or(EngineError::TenantExists)?;
        let slot = Slot::cold(name.clone(), record, settings);
        let tenant = Tenant::open(
            name.clone(),
            slot.record.clone(),
            spec,
            store,
            Arc::clone(&self.config),
            &self.node_secret,
            Arc::clone(&slot.limits),
        )?;
        *slot.loaded.write() = Some(Arc::clone(&tenant));
        self.tenants.write().insert(name.clone(), Arc::new(slot));
        self.audit("tenant.create", name.as_str(), None)?;
        tracing::info!(tenant = %name, "tenant created");
        Ok(tenant)
    }

    /// The handle of one tenant. A name that breaks the naming rule is an
    /// invalid argument; a valid name with no tenant is `TenantNotFound`.
    pub fn tenant(&self, name: &str) -> Result<Arc<Tenant>> {
        let slot = self.slot(name)?;
        self.load(&slot)
    }

    fn slot(&self, name: &str) -> Result<Arc<Slot>> {
        let name = TenantName::parse(name)?;
        self.tenants
            .read()
            .get(&name)
            .cloned()
            .ok_or(EngineError::TenantNotFound)
    }

    /// The slot's tenant, loading it if it is cold (then evicting others
    /// if the budget is exceeded). A tenant dropped while a caller waited
    /// for its load is `TenantNotFound`.
    /// Marks a use of `slot`: its last-use time and place in the eviction order.
    fn touch(&self, slot: &Slot) {
        slot.last_used.store(now_unix_ms(), Ordering::Relaxed);
        let tick = self.uses.fetch_add(1, Ordering::Relaxed) + 1;
        slot.last_tick.store(tick, Ordering::Relaxed);
    }

    fn load(&self, slot: &Slot) -> Result<Arc<Tenant>> {
        self.touch(slot);
        if let Some(tenant) = slot.loaded() {
            return Ok(tenant);
        }
        let tenant = {
            let dropped = slot.loading.lock();
            if *dropped {
                return Err(EngineError::TenantNotFound);
            }
            if let Some(tenant) = slot.loaded() {
                return Ok(tenant);
            }
            let started = std::time::Instant::now();
            let store = self.storage.open_tenant(&slot.record)?;
            let tenant = Tenant::open(
                slot.name.clone(),
                slot.record.clone(),
                slot.spec.clone(),
                store,
                Arc::clone(&self.config),
                &self.node_secret,
                Arc::clone(&slot.limits),
            )?;
            *slot.loaded.write() = Some(Arc::clone(&tenant));
            tracing::debug!(tenant = %slot.name, ms = started.elapsed().as_millis() as u64, "tenant loaded");
            tenant
        };
        if let Err(e) = self.enforce_memory_budget_keeping(Some(&slot.name)) {
            tracing::warn!(error = %e, "evicting to the memory budget failed");
        }
        Ok(tenant)
    }

    /// Runs `op` on `tenant`, and again on the tenant's next load if this
    /// load was evicted under it: a write never fails because of eviction.
    /// `tenant` must come from this registry (its caller was authorized).
    pub fn run<T>(&self, tenant: &Arc<Tenant>, op: impl Fn(&Tenant) -> Result<T>) -> Result<T> {
        let mut current = Arc::clone(tenant);
        for _ in 0..8 {
            match op(&current) {
                Err(EngineError::Evicted) => {}
                other => return other,
            }
            let slot = self.slot(current.name().as_str())?;
            if slot.record.incarnation != current.incarnation() {
                return Err(EngineError::TenantNotFound);
            }
            current = self.load(&slot)?;
        }
        Err(EngineError::Evicted)
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
        let slots: Vec<Arc<Slot>> = self.tenants.read().values().cloned().collect();
        let mut total = 0u64;
        let mut candidates = Vec::new();
        for slot in slots {
            let Some(tenant) = slot.loaded() else {
                continue;
            };
            let bytes = tenant.resident_bytes();
            total += bytes;
            if !slot.pinned.load(Ordering::Acquire) && Some(&slot.name) != keep {
                candidates.push((slot.last_tick.load(Ordering::Relaxed), bytes, slot));
            }
        }
        if total <= budget {
            return Ok(0);
        }
        candidates.sort_by_key(|c| c.0);
        let mut evicted = 0;
        for (_, bytes, slot) in candidates {
            if total <= budget {
                break;
            }
            if self.evict(&slot)? {
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
    fn evict(&self, slot: &Slot) -> Result<bool> {
        let dropped = slot.loading.lock();
        if *dropped {
            return Ok(false);
        }
        let Some(tenant) = slot.loaded.write().take() else {
            return Ok(false);
        };
        if let Err(e) = tenant.evict() {
            *slot.loaded.write() = Some(tenant);
            return Err(e);
        }
        *slot.last_known.lock() = (tenant.count(None).unwrap_or(0), tenant.payload_bytes());
        let mut evicted = slot.evicted.lock();
        evicted.retain(|w| w.strong_count() > 0);
        evicted.push(Arc::downgrade(&tenant));
        drop(evicted);
        drop(dropped);
        tracing::debug!(tenant = %slot.name, "tenant evicted to cold");
        Ok(true)
    }

    /// Pins or unpins a tenant: a pinned tenant is never evicted by the
    /// memory budget. Kept across restarts.
    pub fn pin_tenant(&self, name: &str, pinned: bool) -> Result<TenantInfo> {
        let slot = self.slot(name)?;
        let _lifecycle = self.lifecycle.lock();
        let was = slot.pinned.swap(pinned, Ordering::AcqRel);
        if let Err(e) = self.save_settings(&slot) {
            slot.pinned.store(was, Ordering::Release);
            return Err(e);
        }
        self.audit(
            if pinned { "tenant.pin" } else { "tenant.unpin" },
            name,
            None,
        )?;
        Ok(slot.info())
    }

    /// Loads a tenant now, ahead of its first request.
    pub fn warm_tenant(&self, name: &str) -> Result<TenantInfo> {
        let slot = self.slot(name)?;
        self.load(&slot)?;
        Ok(slot.info())
    }

    /// Evicts a tenant to cold now. A pinned tenant must be unpinned first.
    pub fn cool_tenant(&self, name: &str) -> Result<TenantInfo> {
        let slot = self.slot(name)?;
        if slot.pinned.load(Ordering::Acquire) {
            return Err(EngineError::invalid(
                "the tenant is pinned: unpin it before cooling it",
            ));
        }
        self.evict(&slot)?;
        Ok(slot.info())
    }

    /// Replaces a tenant's quotas; they apply to requests from now on.
    pub fn set_quotas(&self, name: &str, quotas: Quotas) -> Result<TenantInfo> {
        let slot = self.slot(name)?;
        let _lifecycle = self.lifecycle.lock();
        let was = slot.limits.quotas();
        slot.limits.set(quotas);
        if let Err(e) = self.save_settings(&slot) {
            slot.limits.set(was);
            return Err(e);
        }
        self.audit("tenant.quotas", name, None)?;
        Ok(slot.info())
    }

    /// Writes the slot's settings to its record. Callers hold `lifecycle`.
    fn save_settings(&self, slot: &Slot) -> Result<()> {
        let settings = TenantSettings {
            spec: slot.spec.clone(),
            quotas: slot.limits.quotas(),
            pinned: slot.pinned.load(Ordering::Acquire),
            contract: slot.contract.read().clone(),
        };
        match self
            .storage
            .update_tenant_settings(&slot.record, settings.encode()?)
        {
            Ok(_) => Ok(()),
            Err(bulkhead_storage::StorageError::Gone) => Err(EngineError::TenantNotFound),
            Err(e) => Err(e.into()),
        }
    }

    /// Drops a tenant: its column family, files and memory are gone when this
    /// returns, and a later tenant of the same name shares nothing with it.
    pub fn drop_tenant(&self, name: &str) -> Result<()> {
        let name = TenantName::parse(name)?;
        let _lifecycle = self.lifecycle.lock();
        let slot = self.slot(name.as_str())?;
        // Wait out a load in progress and forbid later ones.
        let mut dropped = slot.loading.lock();
        *dropped = true;
        let erase = || Ok(self.storage.drop_tenant(&slot.record)?);
        let loaded = slot.loaded.write().take();
        let erased = match &loaded {
            Some(tenant) => tenant.drop_with(erase),
            None => erase(),
        };
        if erased.is_err() {
            // The record is the commit point: while it is there the tenant
            // is wholly there, so it stays usable; once it is gone, the
            // tenant is gone (what the failure left is removed when its
            // shelf next opens) and the error says the cleanup failed.
            let kept = matches!(
                self.storage.tenant(name.as_str()),
                Ok(Some(record)) if record.incarnation == slot.record.incarnation
            );
            if kept {
                *dropped = false;
                if let Some(tenant) = loaded {
                    tenant.undrop();
                    *slot.loaded.write() = Some(tenant);
                }
                return erased;
            }
            if let Err(e) = &erased {
                tracing::error!(tenant = %name, error = %e, "tenant dropped, but removing its data failed");
            }
            if let Some(tenant) = &loaded {
                tenant.mark_dropped();
            }
        }
        self.tenants.write().remove(&name);
        for earlier in slot.evicted.lock().drain(..) {
            if let Some(tenant) = earlier.upgrade() {
                tenant.mark_dropped();
            }
        }
        drop(dropped);
        if let Err(e) = erased {
            self.credentials.forget_incarnation(slot.record.incarnation);
            return Err(e);
        }
        self.credentials.forget_incarnation(slot.record.incarnation);
        self.audit("tenant.drop", name.as_str(), None)?;
        tracing::info!(tenant = %name, "tenant dropped");
        Ok(())
    }

    /// The handle of `tenant` if `token` is a valid token bound to it: the
    /// data plane's only way in. A token of another tenant and a tenant that
    /// does not exist give the same `PermissionDenied`.
    pub fn authorize(&self, token: &str, tenant: &str) -> Result<Arc<Tenant>> {
        let slot = self.authorized_slot(token, tenant)?;
        // Counted and loaded only for a caller whose token is bound to it.
        slot.limits.admit_request()?;
        self.load(&slot).map_err(|e| match e {
            EngineError::TenantNotFound => EngineError::PermissionDenied,
            other => other,
        })
    }

    /// As [`Registry::authorize`], for a caller that must not wait on a
    /// disk (an async worker): `None` when the tenant is not loaded, and
    /// then nothing is counted; `authorize` it where blocking is allowed.
    pub fn authorize_loaded(&self, token: &str, tenant: &str) -> Result<Option<Arc<Tenant>>> {
        let slot = self.authorized_slot(token, tenant)?;
        let Some(loaded) = slot.loaded() else {
            return Ok(None);
        };
        slot.limits.admit_request()?;
        self.touch(&slot);
        Ok(Some(loaded))
    }

    /// The slot of `tenant` if `token` is a valid token bound to it.
    fn authorized_slot(&self, token: &str, tenant: &str) -> Result<Arc<Slot>> {
        let name = TenantName::parse(tenant)?;
        let record = self.credentials.verify(token)?;
        let found = self.tenants.read().get(&name).cloned();
        match found {
            Some(slot)
                if record.tenant == name.as_str()
                    && record.incarnation == slot.record.incarnation =>
            {
                Ok(slot)
            }
            _ => Err(EngineError::PermissionDenied),
        }
    }

    /// Issues a token bound to `tenant`. The secret is returned once.
    pub fn issue_token(&self, tenant: &str) -> Result<IssuedToken> {
        let slot = self.slot(tenant)?;
        let (record, issued) =
            Credentials::mint(slot.name.as_str(), slot.record.incarnation, now_unix_ms())?;
        self.storage.put_token(&record)?;
        self.credentials.insert(record);
        self.audit("token.issue", slot.name.as_str(), Some(&issued.id))?;
        Ok(issued)
    }

    /// Revokes a token: it stops working at once and stays listed as revoked.
    pub fn revoke_token(&self, id: &str) -> Result<()> {
        let mut record = self.credentials.get(id).ok_or(EngineError::TokenNotFound)?;
        if !record.revoked {
            record.revoked = true;
            self.storage.put_token(&record)?;
            self.credentials.insert(record.clone());
        }
        self.audit("token.revoke", &record.tenant, Some(id))
    }

    /// The tokens of one tenant (ids and state, never secrets).
    pub fn list_tokens(&self, tenant: &str) -> Result<Vec<TokenInfo>> {
        let slot = self.slot(tenant)?;
        Ok(self.credentials.of_tenant(slot.name.as_str()))
    }

    fn audit(&self, event: &str, tenant: &str, token_id: Option<&str>) -> Result<()> {
        let mut entry = serde_json::json!({
            "unix_ms": now_unix_ms(),
            "event": event,
            "tenant": tenant,
        });
        if let Some(id) = token_id {
            entry["token_id"] = id.into();
        }
        Ok(self.storage.audit(&entry)?)
    }

    /// Every tenant, by name, without loading cold ones. For the admin
    /// plane only.
    pub fn list_tenants(&self) -> Vec<TenantInfo> {
        let slots: Vec<Arc<Slot>> = self.tenants.read().values().cloned().collect();
        let mut infos: Vec<TenantInfo> = slots.iter().map(|s| s.info()).collect();
        infos.sort_by(|a, b| a.name.cmp(&b.name));
        infos
    }

    /// One tenant's shape, state, size and quotas, without loading it.
    /// For the admin plane only.
    pub fn describe_tenant(&self, name: &str) -> Result<TenantInfo> {
        Ok(self.slot(name)?.info())
    }

    /// The admin token kept in the data directory (mode 0600), created with
    /// `generate` if there is none: (token, file, created now).
    pub fn admin_token_file(
        &self,
        generate: impl FnOnce() -> String,
    ) -> Result<(String, std::path::PathBuf, bool)> {
        Ok(self.storage.admin_token(generate)?)
    }

    /// Compacts all storage, so deleted bytes leave the files.
    pub fn compact(&self) -> Result<()> {
        Ok(self.storage.compact()?)
    }

    /// Waits for background work, snapshots changed graphs and flushes
    /// storage. The registry stays usable; call it before exit.
    pub fn close(&self) -> Result<()> {
        let tenants: Vec<Arc<Tenant>> = self
            .tenants
            .read()
            .values()
            .filter_map(|slot| slot.loaded())
            .collect();
        for tenant in tenants {
            tenant.close()?;
        }
        Ok(self.storage.flush()?)
    }
}

impl Drop for Registry {
    /// Joins background rebuilds and snapshots, so that once the registry
    /// is gone its storage can be opened again.
    fn drop(&mut self) {
        for slot in self.tenants.read().values() {
            if let Some(tenant) = slot.loaded() {
                tenant.wait_for_maintenance();
            }
        }
    }
}

fn now_unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Slot {
    fn cold(name: TenantName, record: TenantRecord, settings: TenantSettings) -> Slot {
        Slot {
            name,
            record,
            spec: settings.spec,
            pinned: AtomicBool::new(settings.pinned),
            contract: RwLock::new(settings.contract),
            limits: Limits::new(settings.quotas),
            loaded: RwLock::new(None),
            evicted: Mutex::new(Vec::new()),
            last_known: Mutex::new((0, 0)),
            last_used: AtomicU64::new(0),
            last_tick: AtomicU64::new(0),
            loading: Mutex::new(false),
        }
    }

    fn info(&self) -> TenantInfo {
        let (points, payload_bytes) = *self.last_known.lock();
        let mut info = TenantInfo {
            name: self.name.to_string(),
            spec: self.spec.clone(),
            state: TenantState::Cold,
            points,
            resident_bytes: 0,
            payload_bytes,
            quotas: self.limits.quotas(),
            pinned: self.pinned.load(Ordering::Acquire),
            incarnation: self.record.incarnation,
            graph_nodes: 0,
            frozen_nodes: 0,
            unfrozen_points: 0,
            created_unix_ms: self.record.created_unix_ms,
            last_used_unix_ms: Some(self.last_used.load(Ordering::Relaxed)).filter(|&ms| ms > 0),
            contract: self.contract.read().clone(),
        };
        // A tenant whose contract says no telemetry: no usage times leave
        // the node (its sizes and state stay: operating it needs them).
        if info.contract.telemetry == super::contract::Telemetry::None {
            info.last_used_unix_ms = None;
        }
        if let Some(tenant) = self.loaded() {
            info.state = TenantState::Active;
            info.points = tenant.count(None).unwrap_or(0);
            info.resident_bytes = tenant.resident_bytes();
            info.payload_bytes = tenant.payload_bytes();
            info.graph_nodes = tenant.graph_nodes();
            info.frozen_nodes = tenant.frozen_nodes();
            info.unfrozen_points = tenant.unfrozen_points();
        }
        info
    }
}
