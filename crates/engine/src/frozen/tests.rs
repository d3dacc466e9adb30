use hnsw_rs::hnsw::Hnsw;

use super::format::FormatError;
use super::*;
use crate::metric::{Metric, MetricDistance};
use crate::work::Work;
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
            let found = frozen.search(&prepared, 10, 128, None, &Work::new());
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
    let frozen = FrozenGraph::freeze(&hnsw, Metric::L2, 16, u64::MAX, |id| !id.is_multiple_of(5));
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
        let found = frozen.search(q, 10, 200, Some(&even), &Work::new());
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
    let first = frozen.search(q, 5, 50, None, &Work::new());
    // Enough searches to wrap the u16 epoch.
    for _ in 0..70_000 {
        frozen.search(q, 1, 1, None, &Work::new());
    }
    assert_eq!(frozen.search(q, 5, 50, None, &Work::new()), first);
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
            let mut want = frozen.search(&q, 10, 64, None, &Work::new());
            want.retain(|(id, _)| *id != 7);
            let got = back.search(&q, 10, 64, None, &Work::new());
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
                let found = graph.search(q, 5, 32, None, &Work::new());
                assert!(found.len() <= 5);
            }
        }
    }
}

/// The header's words: magic, kernel, dim, n, block, links_at, entry,
/// covers_below, layers.
fn header_word(bytes: &[u8], i: usize) -> usize {
    u64::from_le_bytes(bytes[i * 8..i * 8 + 8].try_into().unwrap()) as usize
}

#[test]
fn a_file_whose_neighbour_list_exceeds_the_traversal_is_refused() {
    // M = 128: layer-0 rows of 2M + 1 = 257 words, padded to 272, the
    // widest a header may claim; the traversal holds 256 neighbours.
    let points = data(400, 16, 10);
    let hnsw = Hnsw::new(128, points.len(), 16, 100, MetricDistance(Metric::L2));
    let data: Vec<(&[f32], usize)> = points
        .iter()
        .enumerate()
        .map(|(i, v)| (&v[..], i))
        .collect();
    hnsw.parallel_insert_slice(&data);
    let mut bytes = FrozenGraph::freeze(&hnsw, Metric::L2, 16, 1_000, |_| true).to_bytes();
    let (n, block, links_at) = (
        header_word(&bytes, 3),
        header_word(&bytes, 4),
        header_word(&bytes, 5),
    );
    assert_eq!(block - links_at, 272);
    let blocks = (9 + n) * 8;
    let blocks = blocks.next_multiple_of(64);
    // The entry node's list: 270 distinct neighbours, in range.
    let entry = header_word(&bytes, 6);
    let row = blocks + (entry * block + links_at) * 4;
    let mut words = vec![270u32];
    words.extend((0..270u32).map(|i| (i + 1) % n as u32));
    for (i, word) in words.iter().enumerate() {
        bytes[row + i * 4..row + i * 4 + 4].copy_from_slice(&word.to_le_bytes());
    }
    let refused = FrozenGraph::from_file(mapped(&bytes), Metric::L2, 16, |_| true);
    assert!(
        matches!(refused, Err(FormatError::OutOfRange(_))),
        "{:?}",
        refused.err()
    );
}

#[test]
fn a_header_claiming_more_nodes_than_the_file_holds_is_refused_before_allocating() {
    let points = data(200, 16, 11);
    let hnsw = build(&points, Metric::L2);
    let mut bytes = FrozenGraph::freeze(&hnsw, Metric::L2, 16, 1_000, |_| true).to_bytes();
    // n = 4 billion nodes: 32 GB of ids the file does not have.
    bytes[24..32].copy_from_slice(&(u32::MAX as u64).to_le_bytes());
    let refused = FrozenGraph::from_file(mapped(&bytes), Metric::L2, 16, |_| true);
    assert!(
        matches!(
            refused,
            Err(FormatError::Truncated(_) | FormatError::Inconsistent(_))
        ),
        "{:?}",
        refused.err()
    );
}
