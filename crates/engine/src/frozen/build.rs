//! Freezing: hnsw_rs's graph copied into the frozen layout.

use std::collections::HashMap;
use std::sync::atomic::AtomicUsize;

use anndists::dist::Distance;
use hnsw_rs::hnsw::Hnsw;
use parking_lot::Mutex;

use super::memory::NodeMemory;
use super::{FrozenGraph, UpperLayer, liveness};
use crate::metric::{Kernel, Metric, normalized};

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
        let mut words = NodeMemory::zeroed(points.len() * block + 16);
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
}
