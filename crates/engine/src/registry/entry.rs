//! One tenant of the registry, cold or loaded: its record and settings,
//! the load in memory if any, and what the admin plane sees of it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use bulkhead_storage::TenantRecord;
use parking_lot::{Mutex, RwLock};

use super::{TenantInfo, TenantState};
use crate::contract::{Contract, Telemetry};
use crate::name::TenantName;
use crate::quota::Limits;
use crate::spec::{TenantSettings, TenantSpec};
use crate::tenant::Tenant;

/// One tenant of the registry, cold or active.
pub(super) struct TenantEntry {
    pub(super) name: TenantName,
    pub(super) record: TenantRecord,
    pub(super) spec: TenantSpec,
    pub(super) pinned: AtomicBool,
    /// What the tenant's data may influence (changed by the admin only).
    pub(super) contract: RwLock<Contract>,
    /// Quotas and their counters, shared by every load of the tenant.
    pub(super) limits: Arc<Limits>,
    pub(super) loaded: RwLock<Option<Arc<Tenant>>>,
    /// Earlier loads, evicted, that a request may still hold (marked
    /// dropped if the tenant is).
    pub(super) evicted: Mutex<Vec<Weak<Tenant>>>,
    /// Points and payload bytes at the last eviction, shown while cold.
    pub(super) last_known: Mutex<(usize, u64)>,
    /// Unix ms of the last data-plane or admin use through the registry
    /// (0: not used since this node started).
    pub(super) last_used: AtomicU64,
    /// The registry's use counter at the last use: the eviction order
    /// (milliseconds tie).
    pub(super) last_tick: AtomicU64,
    /// Held while loading, so concurrent first requests share one load;
    /// true once the tenant is dropped (nothing may load it after).
    pub(super) loading: Mutex<bool>,
}

impl TenantEntry {
    pub(super) fn loaded(&self) -> Option<Arc<Tenant>> {
        self.loaded.read().clone()
    }

    pub(super) fn cold(
        name: TenantName,
        record: TenantRecord,
        settings: TenantSettings,
    ) -> TenantEntry {
        TenantEntry {
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

    pub(super) fn info(&self) -> TenantInfo {
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
        if info.contract.telemetry == Telemetry::None {
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
