//! A tenant's HNSW graph (hnsw_rs). hnsw_rs cannot delete: a replaced or
//! deleted point stays in the graph as a tombstone, skipped inside the
//! traversal by the liveness filter, until the graph is rebuilt.

use hnsw_rs::hnsw::{Hnsw, Neighbour};

use super::metric::MetricDistance;
use super::spec::TenantSpec;

const MAX_LAYERS: usize = 16;

pub(crate) struct Graph {
    hnsw: Hnsw<'static, f32, MetricDistance>,
}

impl std::fmt::Debug for Graph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Graph").field("nodes", &self.len()).finish()
    }
}

impl Graph {
    pub(crate) fn new(spec: &TenantSpec, capacity_hint: usize) -> Self {
        let hnsw = Hnsw::new(
            spec.index.m as usize,
            capacity_hint.max(1_024),
            MAX_LAYERS,
            spec.index.ef_construction as usize,
            MetricDistance(spec.metric),
        );
        Graph { hnsw }
    }

    pub(crate) fn from_hnsw(hnsw: Hnsw<'static, f32, MetricDistance>) -> Self {
        Graph { hnsw }
    }

    pub(crate) fn hnsw(&self) -> &Hnsw<'static, f32, MetricDistance> {
        &self.hnsw
    }

    /// The most neighbours a layer-0 node has (hnsw_rs keeps 2·M there).
    pub(crate) fn max_degree0(&self) -> usize {
        2 * usize::from(self.hnsw.get_max_nb_connection())
    }

    /// Nodes in the graph, tombstones included.
    pub(crate) fn len(&self) -> usize {
        self.hnsw.get_nb_point()
    }

    /// Inserts points (internal id, vector); in parallel for large batches.
    pub(crate) fn insert(&self, points: &[(u64, &[f32])]) {
        if points.len() < 16 {
            for &(id, v) in points {
                self.hnsw.insert_slice((v, id as usize));
            }
        } else {
            let data: Vec<(&[f32], usize)> =
                points.iter().map(|(id, v)| (*v, *id as usize)).collect();
            self.hnsw.parallel_insert_slice(&data);
        }
    }

    /// The k nearest nodes for which `keep` holds, filtered inside the
    /// traversal. Returns (internal id, graph distance), closest first.
    pub(crate) fn search(
        &self,
        query: &[f32],
        k: usize,
        ef: usize,
        keep: Option<&dyn Fn(u64) -> bool>,
    ) -> Vec<(u64, f32)> {
        let found: Vec<Neighbour> = match keep {
            None => self.hnsw.search(query, k, ef),
            Some(keep) => {
                let filter = |id: &usize| keep(*id as u64);
                self.hnsw.search_filter(query, k, ef, Some(&filter))
            }
        };
        found
            .into_iter()
            .map(|n| (n.d_id as u64, n.distance))
            .collect()
    }
}
