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

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use anndists::dist::Distance;
use hnsw_rs::hnsw::Hnsw;
use parking_lot::Mutex;
use simsimd::SpatialSimilarity;

use super::metric::Metric;

/// How the frozen graph compares a prepared query with a stored vector.
/// Orders like [`Metric::graph_distance`]; not necessarily equal to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kernel {
    /// 1 - dot of unit vectors (stored vectors and the query normalized).
    Cosine,
    /// Squared Euclidean distance.
    L2,
    /// Negated inner product.
    Dot,
}

impl Kernel {
    pub(crate) fn of(metric: Metric) -> Kernel {
        match metric {
            Metric::Cosine => Kernel::Cosine,
            Metric::L2 => Kernel::L2,
            Metric::Dot => Kernel::Dot,
        }
    }

    /// The query as the kernel wants it (unit length for cosine).
    pub(crate) fn prepare(self, query: &[f32]) -> Vec<f32> {
        match self {
            Kernel::Cosine => normalized(query),
            Kernel::L2 | Kernel::Dot => query.to_vec(),
        }
    }

    /// Distance between a prepared query and a frozen (prepared) vector.
    #[inline]
    fn distance(self, query: &[f32], stored: &[f32]) -> f32 {
        let d = match self {
            Kernel::Cosine => 1.0 - f32::dot(query, stored).unwrap_or(f64::NAN),
            Kernel::L2 => f32::sqeuclidean(query, stored).unwrap_or(f64::NAN),
            Kernel::Dot => -f32::dot(query, stored).unwrap_or(f64::NAN),
        };
        if d.is_nan() { f32::MAX } else { d as f32 }
    }

    /// Distance between a prepared query and a vector as the user sent it
    /// (points written after the freeze); equal to [`Kernel::distance`] of
    /// the same vector frozen, up to rounding.
    #[inline]
    pub(crate) fn distance_raw(self, query: &[f32], vector: &[f32]) -> f32 {
        let d = match self {
            Kernel::Cosine => f32::cosine(query, vector).unwrap_or(f64::NAN),
            Kernel::L2 | Kernel::Dot => return self.distance(query, vector),
        };
        if d.is_nan() { f32::MAX } else { d as f32 }
    }
}

fn normalized(v: &[f32]) -> Vec<f32> {
    let norm = v
        .iter()
        .map(|x| f64::from(*x) * f64::from(*x))
        .sum::<f64>()
        .sqrt();
    if norm == 0.0 || !norm.is_finite() {
        return v.to_vec();
    }
    v.iter().map(|x| (f64::from(*x) / norm) as f32).collect()
}

/// The frozen graph's words: an anonymous map that asks for transparent
/// huge pages (a search touches blocks all over the graph, and with 4 KiB
/// pages most of those touches miss the TLB), or a plain vector when the
/// map cannot be made.
enum Words {
    Mapped(memmap2::MmapMut),
    Owned(Vec<u32>),
    /// A frozen graph read back from its file: `len` words at byte
    /// `offset` (a multiple of 64) of the map.
    File {
        map: memmap2::Mmap,
        offset: usize,
        len: usize,
    },
}

impl Words {
    fn zeroed(len: usize) -> Words {
        if len >= 1 << 16
            && let Ok(map) = memmap2::MmapMut::map_anon(len * 4)
        {
            #[cfg(target_os = "linux")]
            let _ = map.advise(memmap2::Advice::HugePage);
            return Words::Mapped(map);
        }
        Words::Owned(vec![0; len])
    }

    fn as_slice(&self) -> &[u32] {
        match self {
            Words::Mapped(map) => bytemuck::cast_slice(&map[..]),
            Words::Owned(v) => v,
            Words::File { map, offset, len } => bytemuck::cast_slice(&map[*offset..][..*len * 4]),
        }
    }

    fn as_mut_slice(&mut self) -> &mut [u32] {
        match self {
            Words::Mapped(map) => bytemuck::cast_slice_mut(&mut map[..]),
            Words::Owned(v) => v,
            // Only `freeze` writes words, and it never makes a file map.
            Words::File { .. } => &mut [],
        }
    }
}

/// The most layer-0 neighbours a node can have: 2 * M, M <= 128
/// (`TenantSpec` bounds M).
const MAX_DEGREE0: usize = 256;

/// Cache lines of a neighbour's vector requested ahead of its distance:
/// 8 (512 bytes, all of a 128-d vector) measured ~15% faster than all 24
/// lines of a 384-d one (three alternating runs), and not slower than 2 or
/// 4 lines at 128 dimensions.
const PREFETCH_LINES: usize = 8;

/// Asks the cache for the line at `at`, without waiting for it.
#[inline]
fn prefetch_line(at: *const i8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint: it never faults and reads nothing into
    // the program; callers pass pointers into live slices anyway.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(at)
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = at;
}

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

/// The first word of a frozen graph's file ("BHFROZN1").
const FILE_MAGIC: u64 = u64::from_le_bytes(*b"BHFROZN1");

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

/// A (distance, dense id) pair ordered by distance, then id.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Scored(f32, u32);

impl Eq for Scored {}

impl PartialOrd for Scored {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Scored {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0).then(self.1.cmp(&other.1))
    }
}

/// Per-search working memory, pooled per graph and reused.
#[derive(Debug, Default)]
struct Scratch {
    visited: Vec<u16>,
    epoch: u16,
    candidates: BinaryHeap<Reverse<Scored>>,
    results: BinaryHeap<Scored>,
}

impl Scratch {
    /// Starts a search over `n` nodes: nothing visited.
    fn reset(&mut self, n: usize) {
        if self.visited.len() < n {
            self.visited.resize(n, 0);
        }
        self.epoch = self.epoch.wrapping_add(1);
        if self.epoch == 0 {
            self.visited.fill(0);
            self.epoch = 1;
        }
        self.candidates.clear();
        self.results.clear();
    }

    /// Marks a node visited; false if it already was.
    #[inline]
    fn visit(&mut self, node: u32) -> bool {
        let tag = &mut self.visited[node as usize];
        if *tag == self.epoch {
            false
        } else {
            *tag = self.epoch;
            true
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
    data: Words,
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
    /// Freezes `hnsw`. The caller guarantees no insert runs meanwhile and
    /// that every node with an internal id below `covers_below` is in it;
    /// `live` says which nodes' points are live.
    pub(crate) fn freeze<D: Distance<f32> + Send + Sync>(
        hnsw: &Hnsw<'_, f32, D>,
        metric: Metric,
        dim: usize,
        covers_below: u64,
        live: impl Fn(u64) -> bool,
    ) -> FrozenGraph {
        let kernel = Kernel::of(metric);
        let indexation = hnsw.get_point_indexation();
        let mut points: Vec<_> = indexation.into_iter().collect();
        points.sort_unstable_by_key(|p| p.get_origin_id());
        points.dedup_by_key(|p| p.get_origin_id());
        let ids: Vec<u64> = points.iter().map(|p| p.get_origin_id() as u64).collect();
        let dense: HashMap<usize, u32> = points
            .iter()
            .enumerate()
            .map(|(i, p)| (p.get_origin_id(), i as u32))
            .collect();
        let m = usize::from(hnsw.get_max_nb_connection());
        let links_at = dim.next_multiple_of(16);
        let block = links_at + (2 * m + 1).next_multiple_of(16);
        let mut words = Words::zeroed(points.len() * block + 16);
        let data = words.as_mut_slice();
        let base = (64 - data.as_ptr() as usize % 64) % 64 / 4;
        let mut upper: Vec<UpperLayer> = Vec::new();
        let mut entry = (0u32, 0u8);
        for (node, point) in points.iter().enumerate() {
            let v = point.get_v();
            let prepared = match kernel {
                Kernel::Cosine => normalized(v),
                Kernel::L2 | Kernel::Dot => v.to_vec(),
            };
            let at = base + node * block;
            for (word, x) in data[at..][..dim].iter_mut().zip(prepared) {
                *word = x.to_bits();
            }
            let level = point.get_point_id().0;
            if node == 0 || level > entry.1 {
                entry = (node as u32, level);
            }
            for (layer, neighbours) in point.get_neighborhood_id().iter().enumerate() {
                if layer > usize::from(level) {
                    break;
                }
                let ids = neighbours
                    .iter()
                    .filter_map(|n| dense.get(&n.get_origin_id()).copied());
                if layer == 0 {
                    let row = &mut data[at + links_at..][..2 * m + 1];
                    let mut count = 0;
                    for (slot, id) in row[1..].iter_mut().zip(ids) {
                        *slot = id;
                        count += 1;
                    }
                    row[0] = count;
                } else {
                    while upper.len() < layer {
                        upper.push(UpperLayer {
                            stride: m + 1,
                            ..UpperLayer::default()
                        });
                    }
                    let table = &mut upper[layer - 1];
                    let row = table.rows.len() as u32;
                    table.rows.insert(node as u32, row);
                    let start = table.links.len();
                    table.links.resize(start + table.stride, 0);
                    let mut count = 0;
                    for (slot, id) in table.links[start + 1..].iter_mut().zip(ids) {
                        *slot = id;
                        count += 1;
                    }
                    table.links[start] = count;
                }
            }
        }
        let (alive, dead) = liveness(&ids, live);
        FrozenGraph {
            kernel,
            dim,
            ids,
            data: words,
            base,
            block,
            links_at,
            upper,
            entry: entry.0,
            alive,
            dead: AtomicUsize::new(dead),
            covers_below,
            scratch: Mutex::new(Vec::new()),
        }
    }

    /// The graph as bytes for its file (see [`FrozenGraph::from_file`]):
    /// a header of u64s, the internal ids, then the node blocks at a
    /// 64-byte aligned offset (so the file maps without a copy), then the
    /// upper layers. Little endian.
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        let n = self.ids.len();
        let header = [
            FILE_MAGIC,
            self.kernel as u64,
            self.dim as u64,
            n as u64,
            self.block as u64,
            self.links_at as u64,
            u64::from(self.entry),
            self.covers_below,
            self.upper.len() as u64,
        ];
        let mut out = Vec::new();
        for word in header.into_iter().chain(self.ids.iter().copied()) {
            out.extend_from_slice(&word.to_le_bytes());
        }
        out.resize(out.len().next_multiple_of(64), 0);
        let data = &self.data.as_slice()[self.base..][..n * self.block];
        for word in data {
            out.extend_from_slice(&word.to_le_bytes());
        }
        for layer in &self.upper {
            let mut nodes = vec![0u32; layer.rows.len()];
            for (&node, &row) in &layer.rows {
                nodes[row as usize] = node;
            }
            let words = [layer.stride as u32, nodes.len() as u32]
                .into_iter()
                .chain(nodes)
                .chain(layer.links.iter().copied());
            for word in words {
                out.extend_from_slice(&word.to_le_bytes());
            }
        }
        out
    }

    /// Reads a graph back from its mapped file without copying the node
    /// blocks. Every count and id is checked, so a damaged file is an
    /// error (the caller freezes again), never a panic in a search.
    pub(crate) fn from_file(
        map: memmap2::Mmap,
        metric: Metric,
        dim: usize,
        live: impl Fn(u64) -> bool,
    ) -> Result<FrozenGraph, String> {
        let bytes = &map[..];
        let mut at = 0usize;
        let u64_at = |at: &mut usize| -> Result<u64, String> {
            let word = bytes
                .get(*at..*at + 8)
                .ok_or("the file ends inside its header")?;
            *at += 8;
            Ok(u64::from_le_bytes(word.try_into().map_err(|_| "bad word")?))
        };
        let header: Vec<u64> = (0..9).map(|_| u64_at(&mut at)).collect::<Result<_, _>>()?;
        let [
            magic,
            kernel,
            file_dim,
            n,
            block,
            links_at,
            entry,
            covers_below,
            layers,
        ] = header[..]
        else {
            return Err("short header".into());
        };
        if magic != FILE_MAGIC {
            return Err("not a frozen graph file".into());
        }
        let kernel_now = Kernel::of(metric);
        if kernel != kernel_now as u64 || file_dim != dim as u64 {
            return Err("made for another metric or dimension".into());
        }
        let (n, block, links_at) = (n as usize, block as usize, links_at as usize);
        if links_at != dim.next_multiple_of(16)
            || block <= links_at + 1
            || block - links_at > MAX_DEGREE0 + 16
            || n > u32::MAX as usize
            || (n > 0 && entry >= n as u64)
            || layers > 64
        {
            return Err("inconsistent header".into());
        }
        let mut ids = Vec::with_capacity(n);
        for _ in 0..n {
            ids.push(u64_at(&mut at)?);
        }
        if ids.windows(2).any(|w| w[0] >= w[1]) {
            return Err("internal ids are not ascending".into());
        }
        let offset = at.next_multiple_of(64);
        let len = n.checked_mul(block).ok_or("size overflow")?;
        let end = offset
            .checked_add(len.checked_mul(4).ok_or("size overflow")?)
            .ok_or("size overflow")?;
        if end > bytes.len() {
            return Err("the file ends inside its node blocks".into());
        }
        let words: &[u32] = bytemuck::try_cast_slice(&bytes[offset..end])
            .map_err(|_| "node blocks are not aligned")?;
        let valid_list = |list: &[u32]| {
            let count = list[0] as usize;
            count < list.len() && list[1..=count].iter().all(|&id| (id as usize) < n)
        };
        if !words.chunks(block).all(|b| valid_list(&b[links_at..])) {
            return Err("a neighbour list is out of range".into());
        }
        let mut rest = &bytes[end..];
        let mut u32_next = || -> Result<u32, String> {
            let (word, tail) = rest
                .split_first_chunk::<4>()
                .ok_or("the file ends inside its upper layers")?;
            rest = tail;
            Ok(u32::from_le_bytes(*word))
        };
        let mut upper = Vec::with_capacity(layers as usize);
        for _ in 0..layers {
            let stride = u32_next()? as usize;
            let rows = u32_next()? as usize;
            if !(2..=MAX_DEGREE0 + 1).contains(&stride) || rows > n {
                return Err("inconsistent upper layer".into());
            }
            let mut layer = UpperLayer {
                stride,
                ..UpperLayer::default()
            };
            for row in 0..rows {
                let node = u32_next()?;
                if node as usize >= n || layer.rows.insert(node, row as u32).is_some() {
                    return Err("an upper-layer node is out of range or repeated".into());
                }
            }
            for _ in 0..rows * stride {
                layer.links.push(u32_next()?);
            }
            if !layer.links.chunks(stride).all(valid_list) {
                return Err("an upper-layer neighbour list is out of range".into());
            }
            upper.push(layer);
        }
        if !rest.is_empty() {
            return Err("trailing bytes".into());
        }
        let (alive, dead) = liveness(&ids, live);
        Ok(FrozenGraph {
            kernel: kernel_now,
            dim,
            ids,
            data: Words::File { map, offset, len },
            base: 0,
            block,
            links_at,
            upper,
            entry: entry as u32,
            alive,
            dead: AtomicUsize::new(dead),
            covers_below,
            scratch: Mutex::new(Vec::new()),
        })
    }

    /// Nodes, dead ones included.
    /// Bytes the graph holds in memory or maps: node blocks, ids and
    /// liveness bits (upper layers are a small fraction and not counted).
    pub(crate) fn byte_len(&self) -> usize {
        self.data.as_slice().len() * 4 + self.ids.len() * 8 + self.alive.len() * 8
    }

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
    fn is_alive(&self, node: u32) -> bool {
        let node = node as usize;
        self.alive[node / 64].load(Ordering::Relaxed) & (1 << (node % 64)) != 0
    }

    #[inline]
    fn block(&self, node: u32) -> &[u32] {
        &self.data.as_slice()[self.base + node as usize * self.block..][..self.block]
    }

    #[inline]
    fn vector(&self, node: u32) -> &[f32] {
        bytemuck::cast_slice(&self.block(node)[..self.dim])
    }

    #[inline]
    fn neighbours0(&self, node: u32) -> &[u32] {
        let row = &self.block(node)[self.links_at..];
        &row[1..=row[0] as usize]
    }

    /// Asks the cache for a node's vector.
    #[inline]
    fn prefetch(&self, node: u32) {
        let block = self.block(node);
        for line in block[..self.dim].chunks(16).take(PREFETCH_LINES) {
            prefetch_line(line.as_ptr().cast());
        }
    }

    /// The `k` nearest live nodes to a prepared query for which `keep`
    /// (given the internal id) holds, searched with a candidate list of
    /// `ef`. Returns (internal id, kernel distance), closest first.
    pub(crate) fn search(
        &self,
        query: &[f32],
        k: usize,
        ef: usize,
        keep: Option<&dyn Fn(u64) -> bool>,
    ) -> Vec<(u64, f32)> {
        if self.ids.is_empty() || k == 0 {
            return Vec::new();
        }
        let all_alive = self.dead.load(Ordering::Relaxed) == 0;
        match keep {
            None if all_alive => self.search_with(query, k, ef, |_| true),
            None => self.search_with(query, k, ef, |node| self.is_alive(node)),
            Some(keep) => self.search_with(query, k, ef, |node| {
                self.is_alive(node) && keep(self.ids[node as usize])
            }),
        }
    }

    fn search_with(
        &self,
        query: &[f32],
        k: usize,
        ef: usize,
        keep: impl Fn(u32) -> bool,
    ) -> Vec<(u64, f32)> {
        let ef = ef.max(k);
        let mut scratch = self.scratch.lock().pop().unwrap_or_default();
        scratch.reset(self.ids.len());
        // Greedy descent through the upper layers.
        let mut node = self.entry;
        let mut dist = self.kernel.distance(query, self.vector(node));
        for layer in self.upper.iter().rev() {
            let mut improved = true;
            while improved {
                improved = false;
                for &next in layer.neighbours(node) {
                    let d = self.kernel.distance(query, self.vector(next));
                    if d < dist {
                        (node, dist) = (next, d);
                        improved = true;
                    }
                }
            }
        }
        // Best-first search of layer 0 with a candidate list of ef.
        let mut candidates = std::mem::take(&mut scratch.candidates);
        let mut results = std::mem::take(&mut scratch.results);
        scratch.visit(node);
        candidates.push(Reverse(Scored(dist, node)));
        if keep(node) {
            results.push(Scored(dist, node));
        }
        let mut bound = if results.len() >= ef {
            dist
        } else {
            f32::INFINITY
        };
        while let Some(Reverse(Scored(d, current))) = candidates.pop() {
            if d > bound {
                break;
            }
            // Unvisited neighbours first, all their vectors requested at
            // once, then the distances: the loads overlap instead of
            // waiting one after another.
            let mut fresh = [0u32; MAX_DEGREE0];
            let mut count = 0;
            for &next in self.neighbours0(current) {
                if scratch.visit(next) {
                    self.prefetch(next);
                    fresh[count] = next;
                    count += 1;
                }
            }
            for &next in &fresh[..count] {
                let d = self.kernel.distance(query, self.vector(next));
                if results.len() < ef || d < bound {
                    candidates.push(Reverse(Scored(d, next)));
                    if keep(next) {
                        results.push(Scored(d, next));
                        if results.len() > ef {
                            results.pop();
                        }
                        if results.len() >= ef {
                            bound = results.peek().map_or(f32::INFINITY, |s| s.0);
                        }
                    }
                }
            }
        }
        while results.len() > k {
            results.pop();
        }
        let mut found: Vec<(u64, f32)> = Vec::with_capacity(results.len());
        found.extend(
            results
                .drain()
                .map(|Scored(d, node)| (self.ids[node as usize], d)),
        );
        found.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
        candidates.clear();
        scratch.candidates = candidates;
        scratch.results = results;
        self.scratch.lock().push(scratch);
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metric::MetricDistance;
    use rand::{Rng, SeedableRng};

    fn data(n: usize, dim: usize, seed: u64) -> Vec<Vec<f32>> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        (0..n)
            .map(|_| (0..dim).map(|_| rng.random_range(-1.0..1.0)).collect())
            .collect()
    }

    fn build(points: &[Vec<f32>], metric: Metric) -> Hnsw<'static, f32, MetricDistance> {
        let hnsw = Hnsw::new(16, points.len(), 16, 100, MetricDistance(metric));
        let data: Vec<(&[f32], usize)> = points
            .iter()
            .enumerate()
            .map(|(i, v)| (&v[..], i * 3 + 7))
            .collect();
        hnsw.parallel_insert_slice(&data);
        hnsw
    }

    fn exact(
        metric: Metric,
        points: &[Vec<f32>],
        q: &[f32],
        k: usize,
        keep: impl Fn(u64) -> bool,
    ) -> Vec<u64> {
        let mut all: Vec<(f32, u64)> = points
            .iter()
            .enumerate()
            .map(|(i, v)| (metric.graph_distance(q, v), (i * 3 + 7) as u64))
            .filter(|(_, id)| keep(*id))
            .collect();
        all.sort_by(|a, b| a.0.total_cmp(&b.0));
        all.into_iter().take(k).map(|(_, id)| id).collect()
    }

    fn recall(found: &[(u64, f32)], truth: &[u64]) -> f64 {
        let hit = found.iter().filter(|(id, _)| truth.contains(id)).count();
        hit as f64 / truth.len() as f64
    }

    #[test]
    fn finds_the_nearest_under_every_metric() {
        let points = data(3_000, 24, 1);
        let queries = data(50, 24, 2);
        for metric in [Metric::Cosine, Metric::L2, Metric::Dot] {
            let hnsw = build(&points, metric);
            let frozen = FrozenGraph::freeze(&hnsw, metric, 24, u64::MAX, |_| true);
            assert_eq!(frozen.len(), points.len());
            let mut total = 0.0;
            for q in &queries {
                let prepared = frozen.kernel().prepare(q);
                let found = frozen.search(&prepared, 10, 128, None);
                assert_eq!(found.len(), 10);
                assert!(
                    found.windows(2).all(|w| w[0].1 <= w[1].1),
                    "{metric}: not sorted"
                );
                total += recall(&found, &exact(metric, &points, q, 10, |_| true));
            }
            let recall = total / queries.len() as f64;
            assert!(recall > 0.95, "{metric}: recall@10 {recall}");
        }
    }

    #[test]
    fn dead_nodes_and_filtered_nodes_are_never_returned() {
        let points = data(2_000, 16, 3);
        let hnsw = build(&points, Metric::L2);
        let frozen =
            FrozenGraph::freeze(&hnsw, Metric::L2, 16, u64::MAX, |id| !id.is_multiple_of(5));
        for id in (7..)
            .step_by(3)
            .take(points.len())
            .filter(|id: &u64| id.is_multiple_of(7))
        {
            frozen.kill(id);
        }
        let even = |id: u64| id.is_multiple_of(2);
        let mut total = 0.0;
        for q in data(30, 16, 4).iter() {
            let found = frozen.search(q, 10, 200, Some(&even));
            assert_eq!(found.len(), 10);
            for (id, _) in &found {
                assert!(
                    !id.is_multiple_of(5) && !id.is_multiple_of(7) && id.is_multiple_of(2),
                    "returned {id}"
                );
            }
            let truth = exact(Metric::L2, &points, q, 10, |id| {
                !id.is_multiple_of(5) && !id.is_multiple_of(7) && id.is_multiple_of(2)
            });
            total += recall(&found, &truth);
        }
        assert!(total / 30.0 > 0.9, "filtered recall {}", total / 30.0);
    }

    #[test]
    fn the_visited_set_is_reset_between_searches() {
        let points = data(500, 8, 5);
        let hnsw = build(&points, Metric::L2);
        let frozen = FrozenGraph::freeze(&hnsw, Metric::L2, 8, u64::MAX, |_| true);
        let q = &points[42];
        let first = frozen.search(q, 5, 50, None);
        // Enough searches to wrap the u16 epoch.
        for _ in 0..70_000 {
            frozen.search(q, 1, 1, None);
        }
        assert_eq!(frozen.search(q, 5, 50, None), first);
        assert_eq!(first[0].0, 42 * 3 + 7);
    }

    fn mapped(bytes: &[u8]) -> memmap2::Mmap {
        let mut map = memmap2::MmapMut::map_anon(bytes.len().max(1)).unwrap();
        map[..bytes.len()].copy_from_slice(bytes);
        map.make_read_only().unwrap()
    }

    #[test]
    fn a_frozen_graph_read_back_from_its_file_answers_the_same() {
        let points = data(1_500, 20, 6);
        for metric in [Metric::Cosine, Metric::L2] {
            let hnsw = build(&points, metric);
            let frozen = FrozenGraph::freeze(&hnsw, metric, 20, 99_999, |_| true);
            let bytes = frozen.to_bytes();
            let back = FrozenGraph::from_file(mapped(&bytes), metric, 20, |id| id != 7).unwrap();
            assert_eq!((back.len(), back.covers_below()), (1_500, 99_999));
            for q in data(20, 20, 7) {
                let q = frozen.kernel().prepare(&q);
                let mut want = frozen.search(&q, 10, 64, None);
                want.retain(|(id, _)| *id != 7);
                let got = back.search(&q, 10, 64, None);
                assert_eq!(got[..want.len()], want[..], "{metric}");
            }
            assert!(
                FrozenGraph::from_file(mapped(&bytes), Metric::Dot, 20, |_| true).is_err(),
                "another metric's file is refused"
            );
        }
    }

    #[test]
    fn a_damaged_frozen_file_is_refused_or_searched_without_panicking() {
        let points = data(600, 16, 8);
        let hnsw = build(&points, Metric::L2);
        let bytes = FrozenGraph::freeze(&hnsw, Metric::L2, 16, 2_000, |_| true).to_bytes();
        let queries = data(3, 16, 9);
        let mut refused = 0;
        for cut in (0..bytes.len()).step_by(997) {
            refused += usize::from(
                FrozenGraph::from_file(mapped(&bytes[..cut]), Metric::L2, 16, |_| true).is_err(),
            );
        }
        assert_eq!(
            refused,
            bytes.len().div_ceil(997),
            "every truncation is refused"
        );
        for at in (0..bytes.len()).step_by(61) {
            let mut damaged = bytes.clone();
            damaged[at] ^= 0xA5;
            if let Ok(graph) = FrozenGraph::from_file(mapped(&damaged), Metric::L2, 16, |_| true) {
                for q in &queries {
                    let found = graph.search(q, 5, 32, None);
                    assert!(found.len() <= 5);
                }
            }
        }
    }
}
