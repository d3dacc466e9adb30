use bulkhead_storage::StorageOptions;

/// Engine tuning. Defaults suit production; tests shrink the thresholds to
/// exercise rebuilds and the graph path on small data.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub storage: StorageOptions,
    /// Rebuild a tenant's graph in the background once this fraction of its
    /// nodes are tombstones (deleted or replaced points) ...
    pub rebuild_dead_fraction: f64,
    /// ... and there are at least this many of them.
    pub rebuild_min_dead: usize,
    /// Write a graph snapshot in the background after this many new points.
    pub snapshot_every_points: u64,
    /// Search by exact scan when at most this many points are candidates.
    pub full_scan_points: usize,
    /// A filter matching at most this fraction of the tenant's points is
    /// answered by an exact scan of the matches: graph traversal loses recall
    /// and speed when most nodes it walks are filtered out.
    pub full_scan_fraction: f64,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            storage: StorageOptions::default(),
            rebuild_dead_fraction: 0.2,
            rebuild_min_dead: 1_000,
            snapshot_every_points: 50_000,
            full_scan_points: 1_000,
            full_scan_fraction: 0.1,
        }
    }
}
