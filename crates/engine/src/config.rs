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
    /// Freeze the graph into its search layout (`frozen.rs`) once this
    /// many live points are outside the frozen graph (they are scanned
    /// exactly at query time until then) ...
    pub freeze_delta_points: usize,
    /// ... or this fraction of the tenant's points, if more ...
    pub freeze_delta_fraction: f64,
    /// ... but never more than this many.
    pub freeze_delta_max: usize,
    /// Bytes the loaded tenants may hold (their tables and graphs, see
    /// `Tenant::resident_bytes`) before the least recently used unpinned
    /// ones are evicted to cold. 0: no budget. Default: half of RAM.
    pub memory_budget_bytes: u64,
    /// Threads that run background maintenance (rebuilds, freezes,
    /// snapshots) for all tenants together, tenants taking turns. 0: one
    /// per CPU. (Half the CPUs left tombstones of busy tenants waiting
    /// behind each other's rebuilds on 2 cores.)
    pub maintenance_threads: usize,
    /// Days a tenant's access log keeps its entries.
    pub access_log_retention_days: u64,
}

impl EngineConfig {
    /// The background pool's size (see `maintenance_threads`).
    pub(crate) fn maintenance_workers(&self) -> usize {
        match self.maintenance_threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
        .max(1)
    }

    /// Points outside the frozen graph that make a tenant of `points`
    /// points due for a freeze.
    pub(crate) fn freeze_threshold(&self, points: usize) -> usize {
        let by_fraction = (points as f64 * self.freeze_delta_fraction) as usize;
        by_fraction
            .max(self.freeze_delta_points)
            .min(self.freeze_delta_max.max(1))
    }
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
            freeze_delta_points: 256,
            freeze_delta_fraction: 1.0 / 32.0,
            freeze_delta_max: 16_384,
            memory_budget_bytes: total_memory_bytes().map_or(0, |total| total / 2),
            maintenance_threads: 0,
            access_log_retention_days: 90,
        }
    }
}

/// This machine's RAM, from /proc/meminfo (None elsewhere).
pub fn total_memory_bytes() -> Option<u64> {
    let info = fs_err::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
