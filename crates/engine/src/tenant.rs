//! A tenant: one HNSW graph, one column family, one folder. A `Tenant` is
//! reached only through the [`Registry`](super::Registry), and every method
//! reads or writes this tenant alone.
//!
//! Writes of one tenant are serialized by its writer lock: a batch is made
//! durable in the column family first, then inserted into the graph, then
//! made visible in the point table. Searches never take the writer lock.

use std::collections::{BinaryHeap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;

use bulkhead_storage::{PointWrite, StoredPoint, TenantRecord, TenantStore};
use parking_lot::{Mutex, RwLock};

use super::config::EngineConfig;
use super::cursor::{self, CursorKey};
use super::error::{EngineError, Result};
use super::filter::Filter;
use super::frozen::{FrozenGraph, Kernel};
use super::graph::Graph;
use super::metric::{Metric, MetricDistance};
use super::name::TenantName;
use super::point::{
    Payload, Point, PointInput, ScoredPoint, check_id, check_vector, validate_batch,
};
use super::quota::{Limits, SearchPermit};
use super::spec::TenantSpec;
use super::table::{LivePoint, PointTable};

pub const MAX_K: usize = 1_024;
pub const MAX_EF: usize = 8_192;
pub const DEFAULT_EF: usize = 64;
/// Results of a search that asks for none in particular.
pub const DEFAULT_K: usize = 10;
pub const MAX_SCROLL_LIMIT: usize = 1_000;
/// Points of a scroll page that asks for no number in particular.
pub const DEFAULT_SCROLL_LIMIT: usize = 100;
pub const MAX_IDS_PER_REQUEST: usize = 10_000;

/// A nearest-neighbour query.
#[derive(Debug, Clone)]
pub struct SearchRequest {
    pub vector: Vec<f32>,
    /// Results wanted: 1..=1024.
    pub k: usize,
    /// Candidate list size of the graph search (default 64; raised to k).
    pub ef: Option<usize>,
    pub filter: Option<Filter>,
    pub with_payload: bool,
    pub with_vector: bool,
}

impl SearchRequest {
    pub fn new(vector: Vec<f32>, k: usize) -> Self {
        SearchRequest {
            vector,
            k,
            ef: None,
            filter: None,
            with_payload: false,
            with_vector: false,
        }
    }

    /// `k`, or [`DEFAULT_K`] when it is 0 (a wire request that sets none).
    pub fn k_or_default(k: usize) -> usize {
        if k == 0 { DEFAULT_K } else { k }
    }

    /// What the search gate charges for this search: its candidate list
    /// size, the graph work it asks for.
    pub fn cost(&self) -> u64 {
        self.ef.unwrap_or(DEFAULT_EF).max(self.k) as u64
    }
}

/// One page of a scroll; pass `next_cursor` back for the next page.
#[derive(Debug, Clone, PartialEq)]
pub struct ScrollPage {
    pub points: Vec<Point>,
    pub next_cursor: Option<String>,
}

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
    /// None while the tenant has at most `full_scan_points` points (every
    /// search is an exact scan); built in the background when it grows.
    graph: RwLock<Option<Arc<Graph>>>,
    /// True while the graph is None only because it was not loaded: its
    /// snapshot is on disk and the frozen graph answers searches.
    graph_on_disk: AtomicBool,
    writer: Mutex<WriterState>,
    dropped: AtomicBool,
    /// Set when the registry moved the tenant out of memory: this handle
    /// still reads, but writes go to the tenant's next load.
    evicted: AtomicBool,
    limits: Arc<Limits>,
    maintaining: AtomicBool,
    maintenance: Mutex<Option<JoinHandle<()>>>,
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

/// An exact-scan candidate, ordered by distance then id (a max-heap keeps
/// the current worst on top).
#[derive(Debug, PartialEq)]
struct Candidate(f32, u64);

impl Eq for Candidate {}

impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Candidate {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0).then(self.1.cmp(&other.1))
    }
}

/// The k closest of `points` to `query`, closest first.
fn exact_top_k<'a>(
    metric: Metric,
    query: &[f32],
    k: usize,
    points: impl Iterator<Item = (u64, &'a [f32])>,
) -> Vec<(u64, f32)> {
    top_k(
        k,
        points.map(|(id, vector)| (id, metric.graph_distance(query, vector))),
    )
}

/// The k closest of (id, distance) candidates, closest first.
fn top_k(k: usize, candidates: impl Iterator<Item = (u64, f32)>) -> Vec<(u64, f32)> {
    let mut heap = BinaryHeap::with_capacity(k + 1);
    for (id, d) in candidates {
        if heap.len() < k {
            heap.push(Candidate(d, id));
        } else if heap.peek().is_some_and(|worst| Candidate(d, id) < *worst) {
            heap.pop();
            heap.push(Candidate(d, id));
        }
    }
    heap.into_sorted_vec()
        .into_iter()
        .map(|Candidate(d, id)| (id, d))
        .collect()
}

/// The k nearest live points for which `keep` holds: the frozen graph's
/// answer merged with an exact scan of the points written after it.
/// Returns (internal id, kernel distance), closest first.
fn search_frozen(
    frozen: &FrozenGraph,
    table: &PointTable,
    query: &[f32],
    k: usize,
    ef: usize,
    keep: Option<&dyn Fn(u64) -> bool>,
) -> Vec<(u64, f32)> {
    let kernel: Kernel = frozen.kernel();
    let prepared = kernel.prepare(query);
    let found = frozen.search(&prepared, k, ef, keep);
    if table.delta_len() == 0 {
        return found;
    }
    let delta = table
        .delta()
        .filter(|&id| keep.is_none_or(|keep| keep(id)))
        .filter_map(|id| {
            let point = table.get(id)?;
            Some((id, kernel.distance_raw(&prepared, &point.vector)))
        });
    top_k(k, found.into_iter().chain(delta))
}

/// The tenant's hnsw_rs graph from its snapshot plus the points written
/// after it, or rebuilt from the table when the snapshot is missing or
/// unusable. Returns the graph and the number of points replayed into it.
fn load_graph(
    name: &TenantName,
    spec: &TenantSpec,
    store: &TenantStore,
    table: &PointTable,
) -> (Graph, u64) {
    let (graph, covers_below) = match store.graph_snapshot().load(MetricDistance(spec.metric)) {
        Ok(Some(loaded)) => (Graph::from_hnsw(loaded.hnsw), loaded.covers_below),
        Ok(None) => (Graph::new(spec, table.len()), 0),
        Err(e) => {
            tracing::warn!(tenant = %name, error = %e, "graph snapshot unusable, rebuilding from storage");
            (Graph::new(spec, table.len()), 0)
        }
    };
    let replay: Vec<(u64, &[f32])> = table
        .iter()
        .filter(|(internal, _)| *internal >= covers_below)
        .map(|(internal, p)| (internal, &p.vector[..]))
        .collect();
    graph.insert(&replay);
    (graph, replay.len() as u64)
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

fn check_ids(ids: &[String]) -> Result<()> {
    if ids.len() > MAX_IDS_PER_REQUEST {
        return Err(EngineError::invalid(format!(
            "{} ids in one request, the limit is {MAX_IDS_PER_REQUEST}",
            ids.len()
        )));
    }
    for (i, id) in ids.iter().enumerate() {
        check_id(id).map_err(|r| EngineError::invalid(format!("ids[{i}]: {r}")))?;
    }
    Ok(())
}

impl Tenant {
    /// Opens a tenant: its points from the column family, its graph from the
    /// latest snapshot plus the points written after it (or, without a usable
    /// snapshot, rebuilt from the column family).
    pub(crate) fn open(
        name: TenantName,
        record: TenantRecord,
        spec: TenantSpec,
        store: TenantStore,
        config: Arc<EngineConfig>,
        node_secret: &[u8; 32],
        limits: Arc<Limits>,
    ) -> Result<Arc<Tenant>> {
        let next_internal = store.next_internal_id()?;
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
        if let Some(e) = bad_payload {
            return Err(e);
        }
        // A tenant small enough that every search is an exact scan has no
        // graph: none is loaded, built or snapshotted until it grows.
        let mut on_disk = false;
        let (graph, replayed) = if table.len() > config.full_scan_points {
            // The frozen layout saved with the snapshot maps without a copy
            // or a freeze; points after it are the delta.
            match store.graph_snapshot().load_frozen().map(|map| {
                map.map(|map| {
                    FrozenGraph::from_file(map, spec.metric, spec.dimension as usize, |id| {
                        table.contains(id)
                    })
                })
            }) {
                Ok(Some(Ok(frozen))) => table.set_frozen(Some(Arc::new(frozen))),
                Ok(None) => {}
                Ok(Some(Err(e))) => {
                    tracing::warn!(tenant = %name, error = %e, "frozen graph file unusable, freezing again");
                }
                Err(e) => {
                    tracing::warn!(tenant = %name, error = %e, "frozen graph file unreadable, freezing again");
                }
            }
            if table.frozen().is_some() && !freeze_due(&config, &table) {
                // Searches need only the frozen graph: hnsw_rs's is loaded
                // on the first write (or freeze, or rebuild).
                on_disk = true;
                (None, 0)
            } else {
                let (graph, replayed) = load_graph(&name, &spec, &store, &table);
                if freeze_due(&config, &table) {
                    let frozen = FrozenGraph::freeze(
                        graph.hnsw(),
                        spec.metric,
                        spec.dimension as usize,
                        next_internal,
                        |id| table.contains(id),
                    );
                    table.set_frozen(Some(Arc::new(frozen)));
                }
                (Some(Arc::new(graph)), replayed)
            }
        } else {
            (None, 0)
        };
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
            graph: RwLock::new(graph),
            graph_on_disk: AtomicBool::new(on_disk),
            writer: Mutex::new(WriterState {
                next_internal,
                since_snapshot: replayed,
            }),
            dropped: AtomicBool::new(false),
            evicted: AtomicBool::new(false),
            limits,
            maintaining: AtomicBool::new(false),
            maintenance: Mutex::new(None),
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

    /// Nodes in the graph, tombstones included.
    pub(crate) fn graph_nodes(&self) -> usize {
        match &*self.graph.read() {
            Some(graph) => graph.len(),
            None if self.graph_on_disk.load(Ordering::Acquire) => self.frozen_nodes(),
            None => 0,
        }
    }

    /// The hnsw_rs graph for a write, a freeze or a snapshot, loaded now if
    /// it was left on disk; None for a tenant too small to have one. The
    /// writer lock (the caller's) keeps inserts out while it loads.
    fn writable_graph(&self, writer: &mut WriterState) -> Option<Arc<Graph>> {
        if let Some(graph) = self.graph.read().clone() {
            return Some(graph);
        }
        if !self.graph_on_disk.load(Ordering::Acquire) {
            return None;
        }
        let started = std::time::Instant::now();
        let (graph, replayed) = {
            let table = self.table.read();
            load_graph(&self.name, &self.spec, &self.store, &table)
        };
        let graph = Arc::new(graph);
        *self.graph.write() = Some(Arc::clone(&graph));
        self.graph_on_disk.store(false, Ordering::Release);
        writer.since_snapshot += replayed;
        tracing::debug!(tenant = %self.name, replayed, ms = started.elapsed().as_millis() as u64, "graph loaded for writing");
        Some(graph)
    }

    /// Nodes in the frozen search layout, dead ones included.
    pub(crate) fn frozen_nodes(&self) -> usize {
        self.table.read().frozen().map_or(0, |f| f.len())
    }

    /// Live points outside the frozen graph.
    pub(crate) fn unfrozen_points(&self) -> usize {
        self.table.read().delta_len()
    }

    fn check_alive(&self) -> Result<()> {
        if self.dropped.load(Ordering::Acquire) {
            return Err(EngineError::TenantNotFound);
        }
        Ok(())
    }

    /// For writes and background work: the tenant is neither dropped nor
    /// evicted (an evicted handle's writes would race its next load).
    fn check_writable(&self) -> Result<()> {
        self.check_alive()?;
        if self.evicted.load(Ordering::Acquire) {
            return Err(EngineError::Evicted);
        }
        Ok(())
    }

    /// Counts a search against the tenant's `max_concurrent_searches`
    /// quota until the permit drops. The server takes one before queueing
    /// a search; in-process callers need not.
    pub fn begin_search(&self) -> Result<SearchPermit> {
        self.limits.begin_search()
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
        let graph = self.graph.read().as_ref().map_or(0, |g| {
            // hnsw_rs keeps each vector and, per node, about 2M neighbour
            // entries (id, distance, Arc) on layer 0.
            let per_node =
                4 * self.spec.dimension as u64 + 2 * u64::from(self.spec.index.m) * 24 + 96;
            g.len() as u64 * per_node
        });
        table + frozen as u64 + graph
    }

    /// Bytes of JSON payload the tenant's points hold.
    pub(crate) fn payload_bytes(&self) -> u64 {
        self.table.read().payload_bytes()
    }

    /// Whether this load was moved out of memory.
    pub(crate) fn is_evicted(&self) -> bool {
        self.evicted.load(Ordering::Acquire)
    }

    /// Checks that a batch keeps the tenant within its point and payload
    /// quotas. Called with the writer lock held, so the table cannot change
    /// between this check and the batch.
    fn check_quotas(&self, points: &[PointInput], payload_bytes: &[Vec<u8>]) -> Result<()> {
        let q = self.limits.quotas();
        if q.max_points == 0 && q.max_payload_bytes == 0 {
            return Ok(());
        }
        let table = self.table.read();
        // The last occurrence of an id in the batch is the one that stays.
        let mut last = std::collections::HashMap::new();
        for (i, p) in points.iter().enumerate() {
            last.insert(p.id.as_str(), i);
        }
        let mut added = 0u64;
        let mut payload = table.payload_bytes();
        for (id, &i) in &last {
            match table.by_id(id) {
                Some(old) => payload -= u64::from(old.payload_bytes),
                None => added += 1,
            }
            payload += payload_bytes[i].len() as u64;
        }
        let before = table.len() as u64;
        self.limits
            .check_size(before, before + added, table.payload_bytes(), payload)
    }

    /// Inserts or replaces points. The batch is applied whole or not at all;
    /// it is durable when this returns.
    pub fn upsert(&self, points: &[PointInput]) -> Result<()> {
        self.check_writable()?;
        let payload_bytes = validate_batch(&self.spec, points)?;
        let mut writer = self.writer.lock();
        self.check_writable()?;
        self.check_quotas(points, &payload_bytes)?;
        let sizes: Vec<u32> = payload_bytes.iter().map(|p| p.len() as u32).collect();
        let first = writer.next_internal;
        let writes: Vec<PointWrite> = points
            .iter()
            .zip(payload_bytes)
            .enumerate()
            .map(|(i, (p, payload))| PointWrite::Put {
                id: p.id.clone(),
                point: StoredPoint {
                    internal_id: first + i as u64,
                    vector: p.vector.clone(),
                    payload,
                },
                text: p.text.clone(),
            })
            .collect();
        let next = first + points.len() as u64;
        self.store.commit(&writes, next)?;
        writer.next_internal = next;
        let live: Vec<(u64, LivePoint)> = points
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let point = LivePoint {
                    id: p.id.as_str().into(),
                    vector: p.vector.as_slice().into(),
                    payload: Arc::new(p.payload.clone()),
                    payload_bytes: sizes[i],
                };
                (first + i as u64, point)
            })
            .collect();
        let nodes: Vec<(u64, &[f32])> = live.iter().map(|(i, p)| (*i, &p.vector[..])).collect();
        let graph = self.writable_graph(&mut writer);
        if let Some(graph) = &graph {
            graph.insert(&nodes);
        }
        drop(nodes);
        {
            let mut table = self.table.write();
            for (internal, point) in live {
                table.insert(internal, point);
            }
        }
        if graph.is_some() {
            writer.since_snapshot += points.len() as u64;
        }
        let snapshot_due = writer.since_snapshot >= self.config.snapshot_every_points;
        drop(writer);
        self.maybe_maintain(snapshot_due);
        Ok(())
    }

    /// Deletes points by id; returns how many existed.
    pub fn delete(&self, ids: &[String]) -> Result<usize> {
        self.check_writable()?;
        check_ids(ids)?;
        let writer = self.writer.lock();
        self.check_writable()?;
        let existing: Vec<String> = {
            let table = self.table.read();
            let mut seen = HashSet::new();
            ids.iter()
                .filter(|id| table.internal_id(id).is_some() && seen.insert(id.as_str()))
                .cloned()
                .collect()
        };
        self.delete_locked(&writer, existing)
    }

    /// Deletes every point that matches `filter`; returns how many.
    pub fn delete_by_filter(&self, filter: &Filter) -> Result<usize> {
        self.check_writable()?;
        let writer = self.writer.lock();
        self.check_writable()?;
        let matching: Vec<String> = self
            .table
            .read()
            .iter()
            .filter(|(_, p)| filter.matches(&p.payload))
            .map(|(_, p)| p.id.to_string())
            .collect();
        self.delete_locked(&writer, matching)
    }

    fn delete_locked(&self, writer: &WriterState, ids: Vec<String>) -> Result<usize> {
        if ids.is_empty() {
            return Ok(0);
        }
        let writes: Vec<PointWrite> = ids
            .iter()
            .map(|id| PointWrite::Delete { id: id.clone() })
            .collect();
        self.store.commit(&writes, writer.next_internal)?;
        let mut table = self.table.write();
        for id in &ids {
            table.remove(id);
        }
        drop(table);
        self.maybe_maintain(false);
        Ok(ids.len())
    }

    /// The points with these ids, in request order; missing ids are skipped.
    pub fn get(&self, ids: &[String], with_payload: bool, with_vector: bool) -> Result<Vec<Point>> {
        self.check_alive()?;
        check_ids(ids)?;
        let table = self.table.read();
        ids.iter()
            .filter_map(|id| table.by_id(id))
            .map(|p| self.to_point(p, with_payload, with_vector))
            .collect()
    }

    /// Number of points, or of points matching `filter`.
    pub fn count(&self, filter: Option<&Filter>) -> Result<usize> {
        self.check_alive()?;
        let table = self.table.read();
        Ok(match filter {
            None => table.len(),
            Some(f) => table.iter().filter(|(_, p)| f.matches(&p.payload)).count(),
        })
    }

    /// Points in id order, `limit` at a time.
    pub fn scroll(
        &self,
        cursor: Option<&str>,
        limit: usize,
        filter: Option<&Filter>,
        with_payload: bool,
        with_vector: bool,
    ) -> Result<ScrollPage> {
        self.check_alive()?;
        if !(1..=MAX_SCROLL_LIMIT).contains(&limit) {
            return Err(EngineError::invalid(format!(
                "limit must be between 1 and {MAX_SCROLL_LIMIT}, got {limit}"
            )));
        }
        let after = cursor
            .map(|c| cursor::decode(&self.cursor_key, c))
            .transpose()?;
        let table = self.table.read();
        let mut page: Vec<&LivePoint> = table
            .iter_from(after.as_deref())
            .filter(|p| filter.is_none_or(|f| f.matches(&p.payload)))
            .take(limit + 1)
            .collect();
        let next_cursor = if page.len() > limit {
            page.pop();
            page.last().map(|p| cursor::encode(&self.cursor_key, &p.id))
        } else {
            None
        };
        Ok(ScrollPage {
            points: page
                .into_iter()
                .map(|p| self.to_point(p, with_payload, with_vector))
                .collect::<Result<_>>()?,
            next_cursor,
        })
    }

    /// The k nearest points to the query vector, among those matching the
    /// filter. Never returns fewer than min(k, number of matching points).
    pub fn search(&self, request: &SearchRequest) -> Result<Vec<ScoredPoint>> {
        self.check_alive()?;
        check_vector(&self.spec, &request.vector)
            .map_err(|r| EngineError::invalid(format!("query {r}")))?;
        let k = request.k;
        if !(1..=MAX_K).contains(&k) {
            return Err(EngineError::invalid(format!(
                "k must be between 1 and {MAX_K}, got {k}"
            )));
        }
        let ef = request.ef.unwrap_or(DEFAULT_EF).max(k);
        if ef > MAX_EF {
            return Err(EngineError::invalid(format!(
                "ef must be at most {MAX_EF}, got {ef}"
            )));
        }
        let graph = self.graph.read().clone();
        let table = self.table.read();
        let metric = self.spec.metric;
        let query = &request.vector[..];
        let scan = |ids: &mut dyn Iterator<Item = u64>| {
            exact_top_k(
                metric,
                query,
                k,
                ids.filter_map(|i| table.get(i).map(|p| (i, &p.vector[..]))),
            )
        };
        // The graph search: the frozen graph and the points written after
        // it when there is one, else hnsw_rs's graph, whose nodes not in the
        // table are tombstones (or inserts whose batch is not visible yet).
        // Without either (a graph not built yet) it finds nothing, and the
        // exact scan below answers.
        let graph_search = |keep: Option<&dyn Fn(u64) -> bool>| match (table.frozen(), &graph) {
            (Some(frozen), _) => search_frozen(frozen, &table, query, k, ef, keep),
            (None, None) => Vec::new(),
            (None, Some(graph)) => {
                let live = |id: u64| table.contains(id) && keep.is_none_or(|keep| keep(id));
                let check = keep.is_some() || graph.len() > table.len();
                graph
                    .search(query, k, ef, if check { Some(&live) } else { None })
                    .into_iter()
                    .filter(|(id, _)| table.contains(*id))
                    .collect()
            }
        };
        let hits = match &request.filter {
            Some(filter) => {
                let matching: Vec<u64> = table
                    .iter()
                    .filter(|(_, p)| filter.matches(&p.payload))
                    .map(|(i, _)| i)
                    .collect();
                if matching.len() <= self.full_scan_limit(table.len()) {
                    scan(&mut matching.iter().copied())
                } else {
                    let allowed: HashSet<u64> = matching.iter().copied().collect();
                    let keep = |id: u64| allowed.contains(&id);
                    let found = graph_search(Some(&keep));
                    if found.len() < k.min(matching.len()) {
                        scan(&mut matching.iter().copied())
                    } else {
                        found
                    }
                }
            }
            None if table.len() <= self.config.full_scan_points => {
                scan(&mut table.iter().map(|(i, _)| i))
            }
            None => {
                let found = graph_search(None);
                if found.len() < k.min(table.len()) {
                    scan(&mut table.iter().map(|(i, _)| i))
                } else {
                    found
                }
            }
        };
        let mut scored = Vec::with_capacity(hits.len());
        for p in hits
            .into_iter()
            .filter_map(|(internal, _)| table.get(internal))
        {
            scored.push(ScoredPoint {
                id: p.id.to_string(),
                score: metric.score(query, &p.vector),
                payload: request.with_payload.then(|| (*p.payload).clone()),
                vector: request.with_vector.then(|| p.vector.to_vec()),
                text: self.text_of(p, request.with_payload)?,
            });
        }
        Ok(scored)
    }

    fn full_scan_limit(&self, points: usize) -> usize {
        let by_fraction = (points as f64 * self.config.full_scan_fraction) as usize;
        self.config.full_scan_points.max(by_fraction)
    }

    /// Whether the graph should be rebuilt: too many tombstones, or a
    /// tenant without a graph has grown past `full_scan_points`.
    fn needs_rebuild(&self) -> bool {
        let nodes = match &*self.graph.read() {
            Some(graph) => graph.len(),
            None => {
                return !self.graph_on_disk.load(Ordering::Acquire)
                    && self.table.read().len() > self.config.full_scan_points;
            }
        };
        let dead = nodes.saturating_sub(self.table.read().len());
        dead >= self.config.rebuild_min_dead
            && dead as f64 >= nodes as f64 * self.config.rebuild_dead_fraction
    }

    fn freeze_due(&self) -> bool {
        freeze_due(&self.config, &self.table.read())
    }

    /// Starts a background rebuild, freeze or snapshot when one is due and
    /// none runs.
    fn maybe_maintain(&self, snapshot_due: bool) {
        if !(snapshot_due || self.freeze_due() || self.needs_rebuild())
            || self.is_evicted()
            || self.maintaining.swap(true, Ordering::AcqRel)
        {
            return;
        }
        let Some(this) = self.this.upgrade() else {
            self.maintaining.store(false, Ordering::Release);
            return;
        };
        let spawned = std::thread::Builder::new()
            .name("bulkhead-maintain".into())
            .spawn(move || {
                loop {
                    let outcome = this.maintain();
                    this.maintaining.store(false, Ordering::Release);
                    match outcome {
                        Ok(()) => {}
                        // Evicted or dropped meanwhile: nothing left to do.
                        Err(EngineError::Evicted | EngineError::TenantNotFound) => break,
                        Err(e) => {
                            tracing::warn!(tenant = %this.name, error = %e, "background maintenance failed");
                            break;
                        }
                    }
                    // Writes that came while this ran did not start another
                    // run: do what they made due before leaving.
                    let due = this.writer.lock().since_snapshot
                        >= this.config.snapshot_every_points
                        || this.freeze_due()
                        || this.needs_rebuild();
                    if !due || this.maintaining.swap(true, Ordering::AcqRel) {
                        break;
                    }
                }
            });
        match spawned {
            Ok(handle) => *self.maintenance.lock() = Some(handle),
            Err(e) => {
                tracing::warn!(error = %e, "cannot start background maintenance");
                self.maintaining.store(false, Ordering::Release);
            }
        }
    }

    fn maintain(&self) -> Result<()> {
        if self.needs_rebuild() {
            return self.rebuild();
        }
        let mut writer = self.writer.lock();
        self.check_writable()?;
        if self.freeze_due() {
            self.freeze(&mut writer);
        }
        if writer.since_snapshot >= self.config.snapshot_every_points {
            self.save_snapshot(&mut writer, true)?;
        }
        Ok(())
    }

    /// Freezes the current graph for search. Holding the writer lock
    /// guarantees every live point is in the graph and none is being added.
    fn freeze(&self, writer: &mut WriterState) {
        let Some(graph) = self.writable_graph(writer) else {
            return;
        };
        let started = std::time::Instant::now();
        let frozen = {
            let table = self.table.read();
            FrozenGraph::freeze(
                graph.hnsw(),
                self.spec.metric,
                self.spec.dimension as usize,
                writer.next_internal,
                |id| table.contains(id),
            )
        };
        let nodes = frozen.len();
        self.table.write().set_frozen(Some(Arc::new(frozen)));
        tracing::debug!(tenant = %self.name, nodes, ms = started.elapsed().as_millis() as u64, "graph frozen");
    }

    /// Builds a graph of the live points without blocking reads or writes,
    /// then swaps it in under the writer lock, adding the points written
    /// meanwhile, and snapshots it.
    pub(crate) fn rebuild(&self) -> Result<()> {
        let (covers_below, live) = {
            let writer = self.writer.lock();
            let table = self.table.read();
            let live: Vec<(u64, Arc<[f32]>)> = table
                .iter()
                .map(|(i, p)| (i, Arc::clone(&p.vector)))
                .collect();
            (writer.next_internal, live)
        };
        self.check_writable()?;
        let graph = Graph::new(&self.spec, live.len());
        let nodes: Vec<(u64, &[f32])> = live.iter().map(|(i, v)| (*i, &v[..])).collect();
        graph.insert(&nodes);
        drop(nodes);
        drop(live);
        let mut writer = self.writer.lock();
        self.check_writable()?;
        {
            let table = self.table.read();
            let newer: Vec<(u64, &[f32])> = table
                .iter()
                .filter(|(i, _)| *i >= covers_below)
                .map(|(i, p)| (i, &p.vector[..]))
                .collect();
            graph.insert(&newer);
        }
        let nodes_before = self.graph_nodes();
        let nodes = graph.len();
        *self.graph.write() = Some(Arc::new(graph));
        self.graph_on_disk.store(false, Ordering::Release);
        tracing::info!(tenant = %self.name, nodes_before, nodes, "graph rebuilt");
        if self.table.read().len() > self.config.full_scan_points {
            self.freeze(&mut writer);
        }
        self.save_snapshot(&mut writer, true)
    }

    /// Writes the current graph as the tenant's snapshot, with its frozen
    /// layout (with `refreeze`, frozen again first if points came after
    /// it; without, the next load scans those points exactly, as this one
    /// does, and answers alike). Holding the writer lock guarantees no
    /// insert runs while hnsw_rs dumps.
    fn save_snapshot(&self, writer: &mut WriterState, refreeze: bool) -> Result<()> {
        self.check_alive()?;
        if let Some(graph) = self.graph.read().clone() {
            let stale = refreeze && {
                let table = self.table.read();
                table.delta_len() > 0 && table.len() > self.config.full_scan_points
            };
            if stale {
                self.freeze(writer);
            }
            let frozen = self.table.read().frozen().map(|f| f.to_bytes());
            self.store.graph_snapshot().save(
                graph.hnsw(),
                writer.next_internal,
                frozen.as_deref(),
            )?;
        }
        writer.since_snapshot = 0;
        Ok(())
    }

    /// Waits for background work, then snapshots the graph if it changed.
    pub(crate) fn close(&self) -> Result<()> {
        let running = self.maintenance.lock().take();
        if let Some(handle) = running {
            let _ = handle.join();
        }
        let mut writer = self.writer.lock();
        if writer.since_snapshot > 0 && !self.dropped.load(Ordering::Acquire) {
            self.save_snapshot(&mut writer, true)?;
        }
        Ok(())
    }

    /// Moves this load out of memory: refuses later writes (they go to the
    /// tenant's next load), waits for background work and writes, and
    /// snapshots the graph if it changed, so the next load maps it instead
    /// of replaying. Readers holding this handle keep reading what it had.
    pub(crate) fn evict(&self) -> Result<()> {
        self.evicted.store(true, Ordering::Release);
        self.wait_for_maintenance();
        let mut writer = self.writer.lock();
        if writer.since_snapshot > 0
            && !self.dropped.load(Ordering::Acquire)
            && let Err(e) = self.save_snapshot(&mut writer, false)
        {
            self.evicted.store(false, Ordering::Release);
            return Err(e);
        }
        Ok(())
    }

    /// Undoes a drop whose erase failed before its commit point.
    pub(crate) fn undrop(&self) {
        self.dropped.store(false, Ordering::Release);
    }

    /// Marks an evicted load dropped too, so its last readers see the
    /// tenant gone.
    pub(crate) fn mark_dropped(&self) {
        self.dropped.store(true, Ordering::Release);
    }

    /// Marks the tenant dropped and runs `erase` with the writer lock held,
    /// so no write or snapshot of this tenant can run during or after it.
    pub(crate) fn drop_with(&self, erase: impl FnOnce() -> Result<()>) -> Result<()> {
        self.dropped.store(true, Ordering::Release);
        let _writer = self.writer.lock();
        if let Err(e) = erase() {
            // Not dropped after all (or the registry decides otherwise).
            self.dropped.store(false, Ordering::Release);
            return Err(e);
        }
        *self.table.write() = PointTable::default();
        *self.graph.write() = None;
        self.graph_on_disk.store(false, Ordering::Release);
        Ok(())
    }

    /// Waits for a running background rebuild or snapshot (tests, shutdown).
    pub fn wait_for_maintenance(&self) {
        let running = self.maintenance.lock().take();
        if let Some(handle) = running {
            let _ = handle.join();
        }
    }
}

impl Tenant {
    fn to_point(&self, p: &LivePoint, with_payload: bool, with_vector: bool) -> Result<Point> {
        Ok(Point {
            id: p.id.to_string(),
            payload: with_payload.then(|| (*p.payload).clone()),
            vector: with_vector.then(|| p.vector.to_vec()),
            text: self.text_of(p, with_payload)?,
        })
    }

    /// A point's text comes with its payload; it is read from storage, not
    /// kept in memory.
    fn text_of(&self, p: &LivePoint, with_payload: bool) -> Result<Option<String>> {
        if with_payload {
            Ok(self.store.text(&p.id)?)
        } else {
            Ok(None)
        }
    }
}
