//! The registry: tenant name -> tenant. A tenant's data is reached only
//! through a handle the registry gives: [`Registry::authorize`] (a token
//! bound to the tenant) for the data plane, [`Registry::tenant`] for
//! in-process callers; every data operation is a method on that handle.
//!
//! - [`directory`]: create and drop (the tenant's record is the commit
//!   point), settings.
//! - [`residency`]: load, the memory budget, evict, pin, warm and cool.
//! - [`access`]: tokens and authorization; [`audit`]: the audit log.
//! - [`models`]: registered models and their assignments;
//!   [`contracts`]: tenant contracts and the checks they impose.
//!
//! Tenants start cold: opening the registry reads their records only. A
//! tenant's points and graph are loaded on its first use, and concurrent
//! first requests share one load. When the loaded tenants hold more than
//! the memory budget, the least recently used unpinned ones are evicted to
//! cold again (snapshotted first, so the next load maps, never rebuilds).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use bulkhead_storage::Storage;
use parking_lot::{Mutex, RwLock};

use crate::background::Background;
use crate::config::EngineConfig;
use crate::contract::Contract;
use crate::credentials::Credentials;
use crate::error::{EngineError, Result};
use crate::name::TenantName;
use crate::quota::Quotas;
use crate::spec::{TenantSettings, TenantSpec};
use crate::tenant::Tenant;

mod access;
pub mod access_log;
mod audit;
mod contracts;
mod directory;
mod entry;
mod models;
mod residency;

pub use access::Access;
use entry::TenantEntry;
use models::Models;
pub use models::{AssignTarget, ModelInfo};

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

pub struct Registry {
    storage: Storage,
    config: Arc<EngineConfig>,
    tenants: RwLock<HashMap<TenantName, Arc<TenantEntry>>>,
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
    models: Models,
    /// The workers every tenant's background maintenance runs on.
    background: Background,
    /// Data-plane calls not yet in their tenants' access logs.
    access_log: access_log::AccessBuffer,
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
            tenants.insert(
                name.clone(),
                Arc::new(TenantEntry::cold(name, record, settings)),
            );
        }
        tracing::info!(
            tenants = tenants.len(),
            shelves = storage.shelf_count(),
            "registry open"
        );
        let credentials = Credentials::new(storage.tokens()?);
        let models = Models::load(&storage)?;
        let background = Background::new(config.maintenance_workers());
        Ok(Registry {
            storage,
            config,
            tenants: RwLock::new(tenants),
            credentials,
            node_secret,
            lifecycle: Mutex::new(()),
            evicting: Mutex::new(()),
            uses: AtomicU64::new(0),
            models,
            background,
            access_log: access_log::AccessBuffer::default(),
        })
    }

    /// The handle of one tenant. A name that breaks the naming rule is an
    /// invalid argument; a valid name with no tenant is `TenantNotFound`.
    pub fn tenant(&self, name: &str) -> Result<Arc<Tenant>> {
        let entry = self.entry(name)?;
        self.load(&entry)
    }

    fn entry(&self, name: &str) -> Result<Arc<TenantEntry>> {
        let name = TenantName::parse(name)?;
        self.tenants
            .read()
            .get(&name)
            .cloned()
            .ok_or(EngineError::TenantNotFound)
    }

    /// Every tenant, by name, without loading cold ones. For the admin
    /// plane only.
    pub fn list_tenants(&self) -> Vec<TenantInfo> {
        let entries: Vec<Arc<TenantEntry>> = self.tenants.read().values().cloned().collect();
        let mut infos: Vec<TenantInfo> = entries.iter().map(|s| s.info()).collect();
        infos.sort_by(|a, b| a.name.cmp(&b.name));
        infos
    }

    /// One tenant's shape, state, size and quotas, without loading it.
    /// For the admin plane only.
    pub fn describe_tenant(&self, name: &str) -> Result<TenantInfo> {
        Ok(self.entry(name)?.info())
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
        // The access log must not keep the graphs and RocksDB from being
        // saved: its failure is logged, and the close goes on.
        if let Err(e) = self.flush_access_log(true) {
            tracing::warn!(error = %e, "writing the access logs at close failed; their last minute is lost");
        }
        let tenants: Vec<Arc<Tenant>> = self
            .tenants
            .read()
            .values()
            .filter_map(|entry| entry.loaded())
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
        for entry in self.tenants.read().values() {
            if let Some(tenant) = entry.loaded() {
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
