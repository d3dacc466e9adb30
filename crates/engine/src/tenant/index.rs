//! The tenant's hnsw_rs graph: not built, on disk, or loaded.

use std::sync::Arc;

use bulkhead_storage::TenantStore;

use crate::graph::Graph;
use crate::metric::MetricDistance;
use crate::name::TenantName;
use crate::spec::TenantSpec;
use crate::table::PointTable;

/// Where the tenant's hnsw_rs graph is. The frozen graph, when there is
/// one, lives in the point table and answers searches in every state.
#[derive(Debug, Clone, Default)]
pub(crate) enum Index {
    /// No graph: the tenant has at most `full_scan_points` points (every
    /// search is an exact scan), or it just grew and a rebuild will make
    /// one.
    #[default]
    None,
    /// Its snapshot is on disk and the frozen graph answers searches; it
    /// is loaded on the first write, freeze or rebuild.
    OnDisk,
    Loaded(Arc<Graph>),
}

impl Index {
    pub(crate) fn loaded(&self) -> Option<&Arc<Graph>> {
        match self {
            Index::Loaded(graph) => Some(graph),
            Index::None | Index::OnDisk => None,
        }
    }
}

/// The tenant's hnsw_rs graph from its snapshot plus the points written
/// after it, or rebuilt from the table when the snapshot is missing or
/// unusable. Returns the graph and the number of points replayed into it.
pub(crate) fn load_graph(
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
    let replayed = insert_written_since(&graph, table, covers_below);
    (graph, replayed)
}

/// Inserts into `graph` the table's points with internal ids from
/// `covers_below` on (those written after a snapshot or a rebuild's copy);
/// returns how many.
pub(crate) fn insert_written_since(graph: &Graph, table: &PointTable, covers_below: u64) -> u64 {
    let newer: Vec<(u64, &[f32])> = table
        .iter()
        .filter(|(internal, _)| *internal >= covers_below)
        .map(|(internal, p)| (internal, &p.vector[..]))
        .collect();
    graph.insert(&newer);
    newer.len() as u64
}
