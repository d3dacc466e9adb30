//! Background work on one tenant: rebuild, freeze and snapshot, as steps
//! on the node's bounded [`Background`](crate::background::Background)
//! pool, at most one step of this tenant queued or running at a time.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use parking_lot::{Condvar, Mutex};

use super::index::insert_written_since;
use super::{Index, Tenant, WriterState, freeze_due, load_graph};
use crate::error::{EngineError, Result};
use crate::frozen::FrozenGraph;
use crate::graph::Graph;

/// The tenant's claim on background work: at most one step is queued or
/// running.
#[derive(Debug, Default)]
pub(super) struct Maintenance {
    claimed: Mutex<bool>,
    released: Condvar,
}

impl Maintenance {
    /// Claims the right to run; false if a step holds it.
    fn claim(&self) -> bool {
        !std::mem::replace(&mut *self.claimed.lock(), true)
    }

    fn release(&self) {
        *self.claimed.lock() = false;
        self.released.notify_all();
    }

    /// Waits until no step is queued or running.
    pub(super) fn join(&self) {
        let mut claimed = self.claimed.lock();
        while *claimed {
            self.released.wait(&mut claimed);
        }
    }
}

impl Tenant {
    /// The hnsw_rs graph for a write, a freeze or a snapshot, loaded now if
    /// it was left on disk; None for a tenant too small to have one. The
    /// writer lock (the caller's) keeps inserts out while it loads.
    pub(super) fn writable_graph(&self, writer: &mut WriterState) -> Option<Arc<Graph>> {
        match &*self.index.read() {
            Index::Loaded(graph) => return Some(Arc::clone(graph)),
            Index::None => return None,
            Index::OnDisk => {}
        }
        let started = std::time::Instant::now();
        let (graph, replayed) = {
            let table = self.table.read();
            load_graph(&self.name, &self.spec, &self.store, &table)
        };
        let graph = Arc::new(graph);
        *self.index.write() = Index::Loaded(Arc::clone(&graph));
        writer.since_snapshot += replayed;
        tracing::debug!(tenant = %self.name, replayed, ms = started.elapsed().as_millis() as u64, "graph loaded for writing");
        Some(graph)
    }

    /// Whether the graph should be rebuilt: too many tombstones, or a
    /// tenant without a graph has grown past `full_scan_points`.
    fn needs_rebuild(&self) -> bool {
        let nodes = match &*self.index.read() {
            Index::Loaded(graph) => graph.len(),
            Index::OnDisk => return false,
            Index::None => return self.table.read().len() > self.config.full_scan_points,
        };
        let dead = nodes.saturating_sub(self.table.read().len());
        dead >= self.config.rebuild_min_dead
            && dead as f64 >= nodes as f64 * self.config.rebuild_dead_fraction
    }

    fn freeze_due(&self) -> bool {
        freeze_due(&self.config, &self.table.read())
    }

    /// Queues a background rebuild, freeze or snapshot when one is due and
    /// none is queued or running. Callers may hold the writer lock (and
    /// say whether a snapshot is due): this does not take it.
    pub(super) fn maybe_maintain(&self, snapshot_due: bool) {
        if !(snapshot_due || self.freeze_due() || self.needs_rebuild())
            || self.life.check_writable().is_err()
            || !self.maintenance.claim()
        {
            return;
        }
        self.queue_step();
    }

    /// Whether any maintenance is due; takes the writer lock.
    fn maintenance_due(&self) -> bool {
        self.writer.lock().since_snapshot >= self.config.snapshot_every_points
            || self.freeze_due()
            || self.needs_rebuild()
    }

    /// Queues one step on the pool; the claim is held.
    fn queue_step(&self) {
        let Some(this) = self.this.upgrade() else {
            self.maintenance.release();
            return;
        };
        let step = Box::new(move || this.step());
        if self.background.submit(step).is_err() {
            self.maintenance.release();
        }
    }

    /// One step of background work; then, if more is due (writes that
    /// came meanwhile could not queue a step), queues again, behind the
    /// other tenants' steps. The next step is queued with the claim still
    /// held, so a wait for maintenance never returns between two steps. A
    /// panic in the step is caught here: the claim is released and the
    /// failure reported, so the tenant's later maintenance still runs.
    fn step(&self) {
        let outcome = catch_unwind(AssertUnwindSafe(|| self.maintain()));
        let succeeded = match outcome {
            Ok(Ok(())) => true,
            // Evicted or dropped meanwhile: nothing left to do.
            Ok(Err(EngineError::TryAgain | EngineError::TenantNotFound)) => false,
            Ok(Err(e)) => {
                tracing::warn!(tenant = %self.name, error = %e, "background maintenance failed");
                false
            }
            Err(_) => {
                tracing::error!(tenant = %self.name, "background maintenance panicked; it runs again after the next write");
                false
            }
        };
        let more = || succeeded && self.life.check_writable().is_ok() && self.maintenance_due();
        if more() {
            self.queue_step();
            return;
        }
        self.maintenance.release();
        // A write between the check above and the release could not queue
        // a step (the claim was held): look once more.
        if more() && self.maintenance.claim() {
            self.queue_step();
        }
    }

    fn maintain(&self) -> Result<()> {
        if self.needs_rebuild() {
            return self.rebuild();
        }
        let mut writer = self.writer.lock();
        self.life.check_writable()?;
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
        self.life.check_writable()?;
        let graph = Graph::new(&self.spec, live.len());
        let nodes: Vec<(u64, &[f32])> = live.iter().map(|(i, v)| (*i, &v[..])).collect();
        graph.insert(&nodes);
        drop(nodes);
        drop(live);
        let mut writer = self.writer.lock();
        self.life.check_writable()?;
        insert_written_since(&graph, &self.table.read(), covers_below);
        let nodes_before = self.graph_nodes();
        let nodes = graph.len();
        *self.index.write() = Index::Loaded(Arc::new(graph));
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
    pub(super) fn save_snapshot(&self, writer: &mut WriterState, refreeze: bool) -> Result<()> {
        self.life.check_readable()?;
        let graph = self.index.read().loaded().cloned();
        if let Some(graph) = graph {
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
}
