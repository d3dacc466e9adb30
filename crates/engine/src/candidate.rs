//! A search candidate: a distance and an id, ordered by distance, then id.
//! The frozen graph's traversal (dense `u32` node ids) and the planner's
//! exact scans (`u64` internal ids) share it, and so break ties alike.

use std::collections::BinaryHeap;

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Scored<Id>(pub(crate) f32, pub(crate) Id);

impl<Id: Ord> Eq for Scored<Id> {}

impl<Id: Ord> PartialOrd for Scored<Id> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl<Id: Ord> Ord for Scored<Id> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0).then(self.1.cmp(&other.1))
    }
}

/// The k closest of (id, distance) candidates, closest first (a max-heap
/// keeps the current worst on top).
pub(crate) fn top_k(k: usize, candidates: impl Iterator<Item = (u64, f32)>) -> Vec<(u64, f32)> {
    let mut heap = BinaryHeap::with_capacity(k + 1);
    for (id, d) in candidates {
        if heap.len() < k {
            heap.push(Scored(d, id));
        } else if heap.peek().is_some_and(|worst| Scored(d, id) < *worst) {
            heap.pop();
            heap.push(Scored(d, id));
        }
    }
    heap.into_sorted_vec()
        .into_iter()
        .map(|Scored(d, id)| (id, d))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_keeps_the_closest_and_breaks_ties_by_id() {
        let found = top_k(
            3,
            [(7, 0.5), (3, 0.1), (9, 0.5), (1, 0.9), (4, 0.5)].into_iter(),
        );
        assert_eq!(found, vec![(3, 0.1), (4, 0.5), (7, 0.5)]);
        assert!(top_k(0, [(1, 0.0)].into_iter()).is_empty());
    }
}
