//! A frozen copy of a tenant's HNSW graph, laid out for search.
//!
//! hnsw_rs builds the graph (and keeps taking inserts); its search is slow
//! (an `Arc` per candidate, visited ids in a `HashMap`, a lock per node).
//! Freezing copies the graph into one flat array: node ids are dense `u32`s
//! in internal-id order, and each node is a 64-byte aligned block of its
//! vector (normalized once for cosine, so a distance is one dot product)
//! followed by its layer-0 neighbours `[count, n1, n2, ...]`: the memory a
//! distance computation pulls in brings the node's neighbour list with it.
//! Upper layers are small per-layer tables. The traversal reuses an
//! epoch-tagged visited array and its heaps from a per-graph pool, computes
//! distances with simsimd and prefetches the next neighbour's vector.
//!
//! The frozen graph is immutable except for one liveness bit per node: a
//! point deleted or replaced after the freeze is cleared there and skipped
//! in results (its node still routes the traversal). Points written after
//! the freeze are not in it; the tenant scans them exactly and merges.

//!
//! - [`build`]: freezing hnsw_rs's graph.
//! - [`format`]: the graph's file, read back without a copy.
//! - [`memory`]: where the node blocks live.
//! - [`search`]: the traversal.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use parking_lot::Mutex;

use crate::metric::Kernel;

mod build;
mod format;
mod memory;
mod search;
#[cfg(test)]
mod tests;

use memory::NodeMemory;
use search::Scratch;

/// The most layer-0 neighbours a node can have: 2 * M, M <= 128
/// (`TenantSpec` bounds M).
const MAX_DEGREE0: usize = 256;

/// Hashes a dense node id with one multiplication (upper-layer lookups sit
/// on the search path; SipHash's collision resistance buys nothing here).
#[derive(Debug, Default, Clone, Copy)]
struct NodeHasher(u64);

impl std::hash::Hasher for NodeHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.0 = u64::from(n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

type NodeMap = HashMap<u32, u32, std::hash::BuildHasherDefault<NodeHasher>>;

/// One liveness bit per node, and the number of dead nodes.
fn liveness(ids: &[u64], live: impl Fn(u64) -> bool) -> (Vec<AtomicU64>, usize) {
    let mut alive: Vec<AtomicU64> = (0..ids.len().div_ceil(64))
        .map(|_| AtomicU64::new(0))
        .collect();
    let mut dead = 0;
    for (node, &id) in ids.iter().enumerate() {
        if live(id) {
            *alive[node / 64].get_mut() |= 1 << (node % 64);
        } else {
            dead += 1;
        }
    }
    (alive, dead)
}

/// One upper layer: the nodes on it and their neighbours there.
#[derive(Debug, Default)]
struct UpperLayer {
    /// dense id -> row in `links`.
    rows: NodeMap,
    /// Rows of `[count, n1, ..., n_stride-1]`.
    links: Vec<u32>,
    stride: usize,
}

impl UpperLayer {
    #[inline]
    fn neighbours(&self, node: u32) -> &[u32] {
        match self.rows.get(&node) {
            Some(&row) => {
                let row = &self.links[row as usize * self.stride..][..self.stride];
                &row[1..=row[0] as usize]
            }
            None => &[],
        }
    }
}

pub(crate) struct FrozenGraph {
    kernel: Kernel,
    dim: usize,
    /// dense id -> internal id, ascending.
    ids: Vec<u64>,
    /// Per node `block` words from `base` (64-byte aligned): `dim` floats
    /// (as bits) padded to 16 words, then `[count, n1, ..., n_2M]` padded.
    data: NodeMemory,
    base: usize,
    block: usize,
    /// Words before a block's neighbour list.
    links_at: usize,
    /// Layers 1.. (index 0 is layer 1).
    upper: Vec<UpperLayer>,
    entry: u32,
    /// One bit per node: set while its point is live.
    alive: Vec<AtomicU64>,
    dead: AtomicUsize,
    /// Every internal id below this that was in the graph is frozen here.
    covers_below: u64,
    scratch: Mutex<Vec<Scratch>>,
}

impl std::fmt::Debug for FrozenGraph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrozenGraph")
            .field("nodes", &self.ids.len())
            .field("layers", &(self.upper.len() + 1))
            .field("covers_below", &self.covers_below)
            .finish_non_exhaustive()
    }
}

impl FrozenGraph {
    /// Bytes the graph holds in memory or maps: node blocks, ids and
    /// liveness bits (upper layers are a small fraction and not counted).
    pub(crate) fn byte_len(&self) -> usize {
        self.data.as_slice().len() * 4 + self.ids.len() * 8 + self.alive.len() * 8
    }

    /// Nodes, dead ones included.
    pub(crate) fn len(&self) -> usize {
        self.ids.len()
    }

    pub(crate) fn kernel(&self) -> Kernel {
        self.kernel
    }

    /// Internal ids below this are frozen here (or were dead at the freeze).
    pub(crate) fn covers_below(&self) -> u64 {
        self.covers_below
    }

    /// Marks a point deleted or replaced. The caller holds the tenant's
    /// table write lock, so a search sees the table and this bit agree.
    pub(crate) fn kill(&self, internal: u64) {
        if let Ok(node) = self.ids.binary_search(&internal) {
            let bit = 1u64 << (node % 64);
            let before = self.alive[node / 64].fetch_and(!bit, Ordering::Relaxed);
            if before & bit != 0 {
                self.dead.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    #[inline]
    pub(super) fn is_alive(&self, node: u32) -> bool {
        let node = node as usize;
        self.alive[node / 64].load(Ordering::Relaxed) & (1 << (node % 64)) != 0
    }

    #[inline]
    pub(super) fn block(&self, node: u32) -> &[u32] {
        &self.data.as_slice()[self.base + node as usize * self.block..][..self.block]
    }

    #[inline]
    pub(super) fn vector(&self, node: u32) -> &[f32] {
        bytemuck::cast_slice(&self.block(node)[..self.dim])
    }

    #[inline]
    pub(super) fn neighbours0(&self, node: u32) -> &[u32] {
        let row = &self.block(node)[self.links_at..];
        &row[1..=row[0] as usize]
    }
}
