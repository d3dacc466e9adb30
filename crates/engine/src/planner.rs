//! The search planner: how a tenant answers a nearest-neighbour query from
//! its point table and whatever graph it has. It only reads what it is
//! given (no lock, no tenant), so tests drive it with a table alone.
//!
//! - A tenant of at most `full_scan_points` points is scanned exactly.
//! - A filter that matches at most `full_scan_limit` points (a count, or a
//!   fraction of the tenant) is answered by an exact scan of the matching
//!   points; a broader one by a graph search filtered inside the traversal.
//! - The graph search uses the frozen graph plus an exact scan of the points
//!   written after it when there is one, else hnsw_rs's graph (whose nodes
//!   not in the table are tombstones), else nothing.
//! - A graph search that finds fewer than min(k, candidates) falls back to
//!   the exact scan, so a search never returns fewer than it could.

use std::collections::HashSet;

use super::candidate::top_k;
use super::config::EngineConfig;
use super::filter::Filter;
use super::frozen::FrozenGraph;
use super::graph::Graph;
use super::metric::Metric;
use super::table::PointTable;
use super::work::Work;

/// When an exact scan beats the graph.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ScanPolicy {
    /// A tenant with at most this many points is always scanned exactly.
    pub(crate) full_scan_points: usize,
    /// A filter matching at most this fraction of the points (or at most
    /// `full_scan_points`) is answered by an exact scan of its matches.
    pub(crate) full_scan_fraction: f64,
}

impl ScanPolicy {
    pub(crate) fn of(config: &EngineConfig) -> ScanPolicy {
        ScanPolicy {
            full_scan_points: config.full_scan_points,
            full_scan_fraction: config.full_scan_fraction,
        }
    }

    /// The most matching points a filtered search scans exactly.
    fn full_scan_limit(&self, points: usize) -> usize {
        let by_fraction = (points as f64 * self.full_scan_fraction) as usize;
        self.full_scan_points.max(by_fraction)
    }

    /// The plan for a tenant of `points` points; `matching` is how many a
    /// filter matches, None without a filter.
    pub(crate) fn choose(&self, points: usize, matching: Option<usize>) -> Plan {
        match matching {
            Some(m) if m <= self.full_scan_limit(points) => Plan::ExactOfMatches,
            Some(_) => Plan::FilteredGraph,
            None if points <= self.full_scan_points => Plan::Exact,
            None => Plan::Graph,
        }
    }
}

/// How one search is answered; each graph plan falls back to its exact
/// scan when the graph finds too few.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Plan {
    /// An exact scan of every point.
    Exact,
    /// An exact scan of the points the filter matches.
    ExactOfMatches,
    /// A graph search.
    Graph,
    /// A graph search that skips points the filter does not match.
    FilteredGraph,
}

/// A query as the planner runs it (already validated).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Query<'a> {
    pub(crate) metric: Metric,
    pub(crate) vector: &'a [f32],
    pub(crate) k: usize,
    pub(crate) ef: usize,
}

/// The k nearest live points of `table` matching `filter`, closest first,
/// as (internal id, distance); ties go to the lower id. Its distances and
/// payload evaluations are counted against `work`; once `work` is
/// cancelled its scans end early and the answer is incomplete.
pub(crate) fn search(
    table: &PointTable,
    graph: Option<&Graph>,
    policy: &ScanPolicy,
    query: &Query<'_>,
    filter: Option<&Filter>,
    work: &Work,
) -> Vec<(u64, f32)> {
    let scan = |ids: &mut dyn Iterator<Item = u64>| exact(table, query, &mut work.meter(ids));
    let Some(filter) = filter else {
        if policy.choose(table.len(), None) == Plan::Exact {
            return scan(&mut table.iter().map(|(i, _)| i));
        }
        let found = graph_search(table, graph, query, None, work);
        return if found.len() < query.k.min(table.len()) {
            scan(&mut table.iter().map(|(i, _)| i))
        } else {
            found
        };
    };
    let matching: Vec<u64> = work
        .meter(table.iter())
        .filter(|(_, p)| filter.matches(&p.payload))
        .map(|(i, _)| i)
        .collect();
    if work.is_cancelled() {
        // The scan ended early: its matches are partial, and the caller
        // answers Cancelled anyway.
        return Vec::new();
    }
    if policy.choose(table.len(), Some(matching.len())) == Plan::ExactOfMatches {
        return scan(&mut matching.iter().copied());
    }
    let allowed: HashSet<u64> = matching.iter().copied().collect();
    let keep = |id: u64| allowed.contains(&id);
    let found = graph_search(table, graph, query, Some(&keep), work);
    if found.len() < query.k.min(matching.len()) {
        scan(&mut matching.iter().copied())
    } else {
        found
    }
}

/// The k closest of the points `ids` names, closest first.
fn exact(
    table: &PointTable,
    query: &Query<'_>,
    ids: &mut dyn Iterator<Item = u64>,
) -> Vec<(u64, f32)> {
    top_k(
        query.k,
        ids.filter_map(|i| {
            let point = table.get(i)?;
            Some((i, query.metric.graph_distance(query.vector, &point.vector)))
        }),
    )
}

/// The graph's answer: the frozen graph and the points written after it
/// when there is one, else hnsw_rs's graph, whose nodes not in the table
/// are tombstones (or inserts whose batch is not visible yet). Without
/// either (a graph not built yet) it finds nothing.
fn graph_search(
    table: &PointTable,
    graph: Option<&Graph>,
    query: &Query<'_>,
    keep: Option<&dyn Fn(u64) -> bool>,
    work: &Work,
) -> Vec<(u64, f32)> {
    match (table.frozen(), graph) {
        (Some(frozen), _) => search_frozen(frozen, table, query, keep, work),
        (None, None) => Vec::new(),
        (None, Some(graph)) => {
            // hnsw_rs does not say how many distances it computed: charged
            // an estimate, ef expansions of a full layer-0 neighbour list
            // (a filtered search that skips many nodes may do more).
            work.add((query.ef * graph.max_degree0()) as u64);
            let live = |id: u64| table.contains(id) && keep.is_none_or(|keep| keep(id));
            let check = keep.is_some() || graph.len() > table.len();
            graph
                .search(
                    query.vector,
                    query.k,
                    query.ef,
                    if check { Some(&live) } else { None },
                )
                .into_iter()
                .filter(|(id, _)| table.contains(*id))
                .collect()
        }
    }
}

/// The frozen graph's answer merged with an exact scan of the points
/// written after it. Distances are the frozen kernel's.
fn search_frozen(
    frozen: &FrozenGraph,
    table: &PointTable,
    query: &Query<'_>,
    keep: Option<&dyn Fn(u64) -> bool>,
    work: &Work,
) -> Vec<(u64, f32)> {
    let kernel = frozen.kernel();
    let prepared = kernel.prepare(query.vector);
    let found = frozen.search(&prepared, query.k, query.ef, keep, work);
    if table.delta_len() == 0 {
        return found;
    }
    let delta = work
        .meter(table.delta())
        .filter(|&id| keep.is_none_or(|keep| keep(id)))
        .filter_map(|id| {
            let point = table.get(id)?;
            Some((id, kernel.distance_raw(&prepared, &point.vector)))
        });
    top_k(query.k, found.into_iter().chain(delta))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    use serde_json::json;

    use super::*;
    use crate::spec::TenantSpec;
    use crate::table::LivePoint;

    const POLICY: ScanPolicy = ScanPolicy {
        full_scan_points: 100,
        full_scan_fraction: 0.1,
    };

    fn table(n: usize, dim: usize) -> PointTable {
        let mut rng = StdRng::seed_from_u64(7);
        let mut table = PointTable::default();
        for i in 0..n {
            let vector: Vec<f32> = (0..dim).map(|_| rng.random_range(-1.0..1.0)).collect();
            let payload = json!({ "group": i % 20 });
            table.insert(
                i as u64,
                LivePoint {
                    id: format!("p{i}").into(),
                    vector: vector.into(),
                    payload: Arc::new(payload.as_object().cloned().unwrap_or_default()),
                    payload_bytes: 12,
                },
            );
        }
        table
    }

    fn brute_force(table: &PointTable, query: &Query<'_>, group: Option<u64>) -> Vec<u64> {
        let mut all: Vec<(u64, f32)> = table
            .iter()
            .filter(|(_, p)| group.is_none_or(|g| p.payload["group"] == json!(g)))
            .map(|(i, p)| (i, query.metric.graph_distance(query.vector, &p.vector)))
            .collect();
        all.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
        all.into_iter().take(query.k).map(|(i, _)| i).collect()
    }

    fn ids(found: &[(u64, f32)]) -> Vec<u64> {
        found.iter().map(|(i, _)| *i).collect()
    }

    fn group_filter(group: u64) -> Filter {
        Filter::from_json(&json!({ "must": [{ "key": "group", "match": { "value": group } }] }))
            .expect("a valid filter")
    }

    #[test]
    fn the_plan_follows_the_tenant_size_and_the_filter_selectivity() {
        assert_eq!(POLICY.choose(100, None), Plan::Exact);
        assert_eq!(POLICY.choose(101, None), Plan::Graph);
        // 10% of 5,000 is 500 matches, above the 100-point floor.
        assert_eq!(POLICY.choose(5_000, Some(500)), Plan::ExactOfMatches);
        assert_eq!(POLICY.choose(5_000, Some(501)), Plan::FilteredGraph);
        assert_eq!(POLICY.choose(200, Some(100)), Plan::ExactOfMatches);
        assert_eq!(POLICY.choose(200, Some(101)), Plan::FilteredGraph);
    }

    #[test]
    fn without_a_graph_a_large_tenant_falls_back_to_the_exact_answer() {
        let table = table(400, 8);
        let vector = [0.3f32; 8];
        let query = Query {
            metric: Metric::L2,
            vector: &vector,
            k: 7,
            ef: 64,
        };
        let found = search(&table, None, &POLICY, &query, None, &Work::new());
        assert_eq!(ids(&found), brute_force(&table, &query, None));
        let broad = group_filter(3);
        // 20 matches of 400: an exact scan of them, whatever the graph.
        let found = search(&table, None, &POLICY, &query, Some(&broad), &Work::new());
        assert_eq!(ids(&found), brute_force(&table, &query, Some(3)));
    }

    #[test]
    fn a_graph_search_returns_only_matching_live_points() {
        let mut table = table(2_000, 8);
        let spec = TenantSpec::new(8, Metric::Cosine);
        let graph = Graph::new(&spec, table.len());
        let nodes: Vec<(u64, &[f32])> = table.iter().map(|(i, p)| (i, &p.vector[..])).collect();
        graph.insert(&nodes);
        drop(nodes);
        // A deleted point stays in hnsw_rs's graph as a tombstone.
        table.remove("p5");
        let vector = [0.9f32, 0.1, 0.4, 0.4, 0.2, 0.8, 0.5, 0.3];
        let query = Query {
            metric: Metric::Cosine,
            vector: &vector,
            k: 10,
            ef: 128,
        };
        // About 100 matches, above a 50-point floor and 1% of the tenant:
        // a graph search filtered inside the traversal.
        let policy = ScanPolicy {
            full_scan_points: 50,
            full_scan_fraction: 0.01,
        };
        let filter = group_filter(5);
        assert_eq!(policy.choose(table.len(), Some(99)), Plan::FilteredGraph);
        let found = search(
            &table,
            Some(&graph),
            &policy,
            &query,
            Some(&filter),
            &Work::new(),
        );
        assert_eq!(found.len(), 10);
        for (id, _) in &found {
            let point = table.get(*id).expect("a live point");
            assert_eq!(point.payload["group"], json!(5), "point {id}");
        }
        let unfiltered = search(&table, Some(&graph), &policy, &query, None, &Work::new());
        assert_eq!(unfiltered.len(), 10);
        assert!(unfiltered.iter().all(|(id, _)| table.contains(*id)));
        let truth = brute_force(&table, &query, None);
        let hits = ids(&unfiltered)
            .iter()
            .filter(|i| truth.contains(i))
            .count();
        assert!(hits >= 8, "recall@10 of the graph plan: {hits}/10");
    }
}
