//! A tenant: one HNSW graph, one column family, one folder. A `Tenant` is
//! reached only through the [`Registry`](crate::Registry), and every method
//! reads or writes this tenant alone.
//!
//! Writes of one tenant are serialized by its writer lock: a batch is made
//! durable in the column family first, then inserted into the graph, then
//! made visible in the point table. Searches never take the writer lock.
//!
//! - [`liveness`]: live, evicted or dropped.
//! - [`index`]: hnsw_rs's graph, not built, on disk or loaded.
//! - [`write`]: upsert and delete.
//! - [`read`]: get, count, scroll and search (planned by
//!   [`planner`](crate::planner)).
//! - [`maintenance`]: the background steps that rebuild, freeze and
//!   snapshot, on the node's bounded pool; [`lifecycle`]: close, evict and drop, which wait for it.

use std::sync::{Arc, Weak};

use bulkhead_storage::{TenantRecord, TenantStore};
use parking_lot::{Mutex, RwLock};

use crate::background::Background;
use crate::config::EngineConfig;
use crate::cursor::CursorKey;
use crate::error::{EngineError, Result};
use crate::frozen::FrozenGraph;
use crate::name::TenantName;
use crate::point::Payload;
use crate::quota::{Limits, SearchPermit};
use crate::spec::TenantSpec;
use crate::table::{LivePoint, PointTable};

mod index;
mod lifecycle;
mod liveness;
mod maintenance;
mod read;
mod write;

use index::{Index, load_graph};
pub(crate) use liveness::Life;
use liveness::Liveness;
use maintenance::Maintenance;

#[derive(Debug)]
struct WriterState {
    /// The next internal id to hand out; ids are never reused.
    next_internal: u64,
    /// Points inserted into the graph since the last snapshot.
    since_snapshot: u64,
}

pub struct Tenant {
    name: TenantName,
    record: TenantRecord,
    spec: TenantSpec,
    cursor_key: CursorKey,
    config: Arc<EngineConfig>,
    store: TenantStore,
    table: RwLock<PointTable>,
    index: RwLock<Index>,
    writer: Mutex<WriterState>,
    life: Liveness,
    limits: Arc<Limits>,
    maintenance: Maintenance,
    background: Background,
    this: Weak<Tenant>,
}

impl std::fmt::Debug for Tenant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tenant")
            .field("name", &self.name)
            .field("incarnation", &self.record.incarnation)
            .finish_non_exhaustive()
    }
}

/// What the registry hands a tenant's load.
pub(crate) struct Opening<'a> {
    pub(crate) name: TenantName,
    pub(crate) record: TenantRecord,
    pub(crate) spec: TenantSpec,
    pub(crate) store: TenantStore,
    pub(crate) config: Arc<EngineConfig>,
    pub(crate) node_secret: &'a [u8; 32],
    pub(crate) limits: Arc<Limits>,
    pub(crate) background: Background,
}

impl Tenant {
    /// Opens a tenant: its points from the column family, its graph from the
    /// latest snapshot plus the points written after it (or, without a usable
    /// snapshot, rebuilt from the column family).
    pub(crate) fn open(opening: Opening<'_>) -> Result<Arc<Tenant>> {
        let Opening {
            name,
            record,
            spec,
            store,
            config,
            node_secret,
            limits,
            background,
        } = opening;
        let next_internal = store.next_internal_id()?;
        let mut table = read_points(&store)?;
        let (index, replayed) =
            open_index(&name, &spec, &store, &config, &mut table, next_internal);
        tracing::debug!(tenant = %name, points = table.len(), replayed, "tenant opened");
        let cursor_key = CursorKey::new(node_secret, record.incarnation);
        Ok(Arc::new_cyclic(|this| Tenant {
            name,
            record,
            spec,
            cursor_key,
            config,
            store,
            table: RwLock::new(table),
            index: RwLock::new(index),
            writer: Mutex::new(WriterState {
                next_internal,
                since_snapshot: replayed,
            }),
            life: Liveness::new(),
            limits,
            maintenance: Maintenance::default(),
            background,
            this: this.clone(),
        }))
    }

    pub fn name(&self) -> &TenantName {
        &self.name
    }

    pub fn spec(&self) -> &TenantSpec {
        &self.spec
    }

    /// The tenant's incarnation: assigned at creation, never reused.
    pub fn incarnation(&self) -> u64 {
        self.record.incarnation
    }

    /// Whether this load is live, evicted or dropped.
    pub(crate) fn life(&self) -> Life {
        self.life.get()
    }

    /// Counts a search against the tenant's `max_concurrent_searches`
    /// quota until the permit drops. The server takes one before queueing
    /// a search; in-process callers need not.
    pub fn begin_search(&self) -> Result<SearchPermit> {
        self.limits.begin_search()
    }

    /// The tenant's live quotas (buckets and counters).
    pub(crate) fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Nodes in the graph, tombstones included.
    pub(crate) fn graph_nodes(&self) -> usize {
        match &*self.index.read() {
            Index::Loaded(graph) => graph.len(),
            Index::OnDisk => self.frozen_nodes(),
            Index::None => 0,
        }
    }

    /// Nodes in the frozen search layout, dead ones included.
    pub(crate) fn frozen_nodes(&self) -> usize {
        self.table.read().frozen().map_or(0, |f| f.len())
    }

    /// Live points outside the frozen graph.
    pub(crate) fn unfrozen_points(&self) -> usize {
        self.table.read().delta_len()
    }

    /// Bytes of JSON payload the tenant's points hold.
    pub(crate) fn payload_bytes(&self) -> u64 {
        self.table.read().payload_bytes()
    }

    /// Heap and mapped bytes this load of the tenant holds, roughly: the
    /// point table, the frozen graph and hnsw_rs's graph when loaded. What
    /// the memory budget counts.
    pub fn resident_bytes(&self) -> u64 {
        let (table, frozen) = {
            let table = self.table.read();
            (
                table.heap_bytes(),
                table.frozen().map_or(0, |f| f.byte_len()),
            )
        };
        let graph = self.index.read().loaded().map_or(0, |g| {
            // hnsw_rs keeps each vector and, per node, about 2M neighbour
            // entries (id, distance, Arc) on layer 0.
            let per_node =
                4 * self.spec.dimension as u64 + 2 * u64::from(self.spec.index.m) * 24 + 96;
            g.len() as u64 * per_node
        });
        table + frozen as u64 + graph
    }
}

/// The tenant's points, from its column family.
fn read_points(store: &TenantStore) -> Result<PointTable> {
    let mut table = PointTable::default();
    let mut bad_payload = None;
    store.for_each_point(|id, stored| match parse_payload(&stored.payload) {
        Ok(payload) => {
            table.insert(
                stored.internal_id,
                LivePoint {
                    id: id.into(),
                    vector: stored.vector.into(),
                    payload: Arc::new(payload),
                    payload_bytes: stored.payload.len() as u32,
                },
            );
        }
        Err(e) => bad_payload = Some(e),
    })?;
    match bad_payload {
        Some(e) => Err(e),
        None => Ok(table),
    }
}

/// The index a load starts with (the frozen graph goes into `table`), and
/// the points replayed into hnsw_rs's graph. A tenant small enough that
/// every search is an exact scan has no graph: none is loaded, built or
/// snapshotted until it grows. A larger one maps the frozen layout saved
/// with its snapshot (points after it are the delta) and leaves hnsw_rs's
/// graph on disk, unless enough points came after the freeze to freeze
/// again.
fn open_index(
    name: &TenantName,
    spec: &TenantSpec,
    store: &TenantStore,
    config: &EngineConfig,
    table: &mut PointTable,
    next_internal: u64,
) -> (Index, u64) {
    if table.len() <= config.full_scan_points {
        return (Index::None, 0);
    }
    match store.graph_snapshot().load_frozen() {
        Ok(Some(map)) => {
            match FrozenGraph::from_file(map, spec.metric, spec.dimension as usize, |id| {
                table.contains(id)
            }) {
                Ok(frozen) => table.set_frozen(Some(Arc::new(frozen))),
                Err(e) => {
                    tracing::warn!(tenant = %name, error = %e, "frozen graph file unusable, freezing again");
                }
            }
        }
        Ok(None) => {}
        Err(e) => {
            tracing::warn!(tenant = %name, error = %e, "frozen graph file unreadable, freezing again");
        }
    }
    if table.frozen().is_some() && !freeze_due(config, table) {
        // Searches need only the frozen graph: hnsw_rs's is loaded on the
        // first write (or freeze, or rebuild).
        return (Index::OnDisk, 0);
    }
    let (graph, replayed) = load_graph(name, spec, store, table);
    if freeze_due(config, table) {
        let frozen = FrozenGraph::freeze(
            graph.hnsw(),
            spec.metric,
            spec.dimension as usize,
            next_internal,
            |id| table.contains(id),
        );
        table.set_frozen(Some(Arc::new(frozen)));
    }
    (Index::Loaded(Arc::new(graph)), replayed)
}

/// Whether enough points live outside the frozen graph to freeze again.
fn freeze_due(config: &EngineConfig, table: &PointTable) -> bool {
    table.len() > config.full_scan_points
        && table.delta_len() >= config.freeze_threshold(table.len())
}

fn parse_payload(bytes: &[u8]) -> Result<Payload> {
    serde_json::from_slice(bytes).map_err(|e| {
        EngineError::Storage(bulkhead_storage::StorageError::Corrupt(format!(
            "stored payload is not a JSON object: {e}"
        )))
    })
}
