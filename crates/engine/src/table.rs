//! The live points of one tenant, in memory: by external id (ordered, for
//! scroll) and by internal id (the graph's node ids). A graph node whose
//! internal id is not here is a tombstone.
//!
//! The table also holds the tenant's frozen graph, if any, and the live
//! points written after it (the delta), so that a search that reads the
//! table sees the frozen graph's liveness bits, the delta and the points
//! agree: all three change under the table's write lock.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use super::frozen::FrozenGraph;
use super::point::Payload;

#[derive(Debug, Clone)]
pub(crate) struct LivePoint {
    pub(crate) id: Arc<str>,
    pub(crate) vector: Arc<[f32]>,
    pub(crate) payload: Arc<Payload>,
    /// Bytes of the payload's stored JSON (for the payload quota).
    pub(crate) payload_bytes: u32,
}

/// Heap bytes of one point besides its id, vector and payload: the
/// table's map entries, Arc headers and the delta set, roughly.
const POINT_OVERHEAD: usize = 160;

#[derive(Debug, Default)]
pub(crate) struct PointTable {
    by_id: BTreeMap<Arc<str>, u64>,
    by_internal: HashMap<u64, LivePoint>,
    frozen: Option<Arc<FrozenGraph>>,
    /// Live internal ids the frozen graph does not cover (all of them when
    /// there is no frozen graph).
    delta: HashSet<u64>,
    /// Sum of the live points' payload bytes.
    payload_bytes: u64,
    /// Sum of the live points' id and vector bytes.
    data_bytes: u64,
}

impl PointTable {
    pub(crate) fn len(&self) -> usize {
        self.by_internal.len()
    }

    pub(crate) fn internal_id(&self, id: &str) -> Option<u64> {
        self.by_id.get(id).copied()
    }

    pub(crate) fn get(&self, internal: u64) -> Option<&LivePoint> {
        self.by_internal.get(&internal)
    }

    pub(crate) fn contains(&self, internal: u64) -> bool {
        self.by_internal.contains_key(&internal)
    }

    pub(crate) fn by_id(&self, id: &str) -> Option<&LivePoint> {
        self.get(self.internal_id(id)?)
    }

    /// Inserts or replaces a point; returns the internal id it replaced.
    pub(crate) fn insert(&mut self, internal: u64, point: LivePoint) -> Option<u64> {
        let old = self.by_id.insert(Arc::clone(&point.id), internal);
        if let Some(old) = old {
            self.forget(old);
        }
        self.payload_bytes += u64::from(point.payload_bytes);
        self.data_bytes += data_bytes(&point);
        self.by_internal.insert(internal, point);
        if self
            .frozen
            .as_ref()
            .is_none_or(|f| internal >= f.covers_below())
        {
            self.delta.insert(internal);
        }
        old
    }

    pub(crate) fn remove(&mut self, id: &str) -> Option<u64> {
        let internal = self.by_id.remove(id)?;
        self.forget(internal);
        Some(internal)
    }

    fn forget(&mut self, internal: u64) {
        if let Some(point) = self.by_internal.remove(&internal) {
            self.payload_bytes -= u64::from(point.payload_bytes);
            self.data_bytes -= data_bytes(&point);
        }
        if !self.delta.remove(&internal)
            && let Some(frozen) = &self.frozen
        {
            frozen.kill(internal);
        }
    }

    /// Bytes of JSON payload the live points hold.
    pub(crate) fn payload_bytes(&self) -> u64 {
        self.payload_bytes
    }

    /// Heap bytes the table holds, roughly: ids, vectors, payloads (as
    /// parsed JSON, counted at twice their stored size) and map overhead.
    /// The frozen graph is not included.
    pub(crate) fn heap_bytes(&self) -> u64 {
        self.data_bytes + 2 * self.payload_bytes + (self.len() * POINT_OVERHEAD) as u64
    }

    /// The frozen graph searches see, if any.
    pub(crate) fn frozen(&self) -> Option<&Arc<FrozenGraph>> {
        self.frozen.as_ref()
    }

    /// Installs a frozen graph whose liveness matches this table; the
    /// points it covers leave the delta.
    pub(crate) fn set_frozen(&mut self, frozen: Option<Arc<FrozenGraph>>) {
        match &frozen {
            Some(f) => {
                let below = f.covers_below();
                self.delta.retain(|&i| i >= below);
            }
            None => self.delta = self.by_internal.keys().copied().collect(),
        }
        self.frozen = frozen;
    }

    /// Live internal ids not in the frozen graph.
    pub(crate) fn delta(&self) -> impl Iterator<Item = u64> + '_ {
        self.delta.iter().copied()
    }

    pub(crate) fn delta_len(&self) -> usize {
        self.delta.len()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (u64, &LivePoint)> {
        self.by_internal.iter().map(|(k, v)| (*k, v))
    }

    /// Points in id order, strictly after `after` when given.
    pub(crate) fn iter_from<'a>(
        &'a self,
        after: Option<&str>,
    ) -> impl Iterator<Item = &'a LivePoint> + 'a {
        use std::ops::Bound;
        let start: Bound<&str> = match after {
            Some(a) => Bound::Excluded(a),
            None => Bound::Unbounded,
        };
        self.by_id
            .range::<str, _>((start, Bound::Unbounded))
            .filter_map(|(_, internal)| self.by_internal.get(internal))
    }
}

fn data_bytes(point: &LivePoint) -> u64 {
    (point.id.len() + std::mem::size_of_val(&*point.vector)) as u64
}
