//! The traversal: a greedy descent through the upper layers, then a
//! best-first search of layer 0 with a pooled, epoch-tagged visited array,
//! prefetching each batch of neighbours before their distances.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::atomic::Ordering;

use super::{FrozenGraph, MAX_DEGREE0};
use crate::candidate::Scored;
use crate::work::Work;

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

/// Per-search working memory, pooled per graph and reused.
#[derive(Debug, Default)]
pub(super) struct Scratch {
    visited: Vec<u16>,
    epoch: u16,
    candidates: BinaryHeap<Reverse<Scored<u32>>>,
    results: BinaryHeap<Scored<u32>>,
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

impl FrozenGraph {
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
    /// `ef`. Returns (internal id, kernel distance), closest first; the
    /// distances it computed are counted against `work`.
    pub(crate) fn search(
        &self,
        query: &[f32],
        k: usize,
        ef: usize,
        keep: Option<&dyn Fn(u64) -> bool>,
        work: &Work,
    ) -> Vec<(u64, f32)> {
        if self.ids.is_empty() || k == 0 {
            return Vec::new();
        }
        let all_alive = self.dead.load(Ordering::Relaxed) == 0;
        let (found, distances) = match keep {
            None if all_alive => self.search_with(query, k, ef, |_| true),
            None => self.search_with(query, k, ef, |node| self.is_alive(node)),
            Some(keep) => self.search_with(query, k, ef, |node| {
                self.is_alive(node) && keep(self.ids[node as usize])
            }),
        };
        work.add(distances);
        found
    }

    /// The search, and how many distances it computed.
    fn search_with(
        &self,
        query: &[f32],
        k: usize,
        ef: usize,
        keep: impl Fn(u32) -> bool,
    ) -> (Vec<(u64, f32)>, u64) {
        let ef = ef.max(k);
        let mut scratch = self.scratch.lock().pop().unwrap_or_default();
        scratch.reset(self.ids.len());
        // Greedy descent through the upper layers.
        let mut node = self.entry;
        let mut dist = self.kernel.distance(query, self.vector(node));
        let mut distances = 1u64;
        for layer in self.upper.iter().rev() {
            let mut improved = true;
            while improved {
                improved = false;
                distances += layer.neighbours(node).len() as u64;
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
            distances += count as u64;
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
        (found, distances)
    }
}
