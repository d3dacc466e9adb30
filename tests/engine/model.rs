//! Model-based test: random create / upsert / delete / search / drop across
//! tenants, checked against a brute-force model partitioned by tenant.

use std::collections::{BTreeMap, HashMap};

use bulkhead::engine::{Metric, PointInput, Registry, SearchRequest};
use proptest::prelude::*;
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::common::{brute_force, random_vector, small_config, spec};

const TENANTS: [(&str, Metric); 3] = [
    ("t-cos", Metric::Cosine),
    ("t-l2", Metric::L2),
    ("t-dot", Metric::Dot),
];
const DIM: usize = 8;

#[derive(Debug, Clone)]
enum Op {
    Create(usize),
    Drop(usize),
    Upsert(usize, Vec<(u8, u64)>),
    Delete(usize, Vec<u8>),
    Search(usize, u64, usize),
}

fn op() -> impl Strategy<Value = Op> {
    let t = 0..TENANTS.len();
    prop_oneof![
        1 => t.clone().prop_map(Op::Create),
        1 => t.clone().prop_map(Op::Drop),
        6 => (t.clone(), prop::collection::vec((0u8..80, any::<u64>()), 1..40)).prop_map(|(t, p)| Op::Upsert(t, p)),
        2 => (t.clone(), prop::collection::vec(0u8..80, 1..10)).prop_map(|(t, d)| Op::Delete(t, d)),
        6 => (t, any::<u64>(), 1usize..20).prop_map(|(t, q, k)| Op::Search(t, q, k)),
    ]
}

fn vector(seed: u64) -> Vec<f32> {
    random_vector(&mut StdRng::seed_from_u64(seed), DIM)
}

/// Runs one sequence; returns (relevant results found, results expected).
fn run(ops: &[Op]) -> (usize, usize) {
    let dir = tempfile::tempdir().unwrap();
    let reg = Registry::open(dir.path(), small_config()).unwrap();
    let mut model: HashMap<usize, BTreeMap<String, Vec<f32>>> = HashMap::new();
    let (mut found, mut expected) = (0, 0);
    for op in ops {
        match op.clone() {
            Op::Create(t) => {
                let created = reg.create_tenant(TENANTS[t].0, spec(DIM as u32, TENANTS[t].1));
                assert_eq!(created.is_ok(), !model.contains_key(&t));
                model.entry(t).or_default();
            }
            Op::Drop(t) => {
                assert_eq!(
                    reg.drop_tenant(TENANTS[t].0).is_ok(),
                    model.remove(&t).is_some()
                );
            }
            Op::Upsert(t, pts) => {
                let batch: Vec<PointInput> = pts
                    .iter()
                    .map(|(id, seed)| {
                        PointInput::new(format!("{}-{id}", TENANTS[t].0), vector(*seed))
                    })
                    .collect();
                let result = reg.tenant(TENANTS[t].0).and_then(|h| h.upsert(&batch));
                match model.get_mut(&t) {
                    Some(points) => {
                        result.unwrap();
                        for p in batch {
                            points.insert(p.id, p.vector);
                        }
                    }
                    None => assert!(result.is_err()),
                }
            }
            Op::Delete(t, ids) => {
                let ids: Vec<String> = ids
                    .iter()
                    .map(|i| format!("{}-{i}", TENANTS[t].0))
                    .collect();
                let result = reg.tenant(TENANTS[t].0).and_then(|h| h.delete(&ids));
                match model.get_mut(&t) {
                    Some(points) => {
                        let mut existed = 0;
                        let mut unique = ids.clone();
                        unique.sort();
                        unique.dedup();
                        for id in &unique {
                            existed += usize::from(points.remove(id).is_some());
                        }
                        assert_eq!(result.unwrap(), existed);
                    }
                    None => assert!(result.is_err()),
                }
            }
            Op::Search(t, q, k) => {
                let query = vector(q);
                let req = SearchRequest {
                    with_vector: true,
                    ..SearchRequest::new(query.clone(), k)
                };
                let result = reg.tenant(TENANTS[t].0).and_then(|h| h.search(&req));
                let Some(points) = model.get(&t) else {
                    assert!(result.is_err());
                    continue;
                };
                let hits = result.unwrap();
                // Every result is this tenant's, with this tenant's vector.
                for hit in &hits {
                    assert_eq!(
                        points.get(&hit.id),
                        hit.vector.as_ref(),
                        "{} returned {}",
                        TENANTS[t].0,
                        hit.id
                    );
                }
                let inputs: Vec<PointInput> = points
                    .iter()
                    .map(|(id, v)| PointInput::new(id.clone(), v.clone()))
                    .collect();
                let refs: Vec<&PointInput> = inputs.iter().collect();
                let truth = brute_force(TENANTS[t].1, &query, &refs, k);
                assert_eq!(hits.len(), truth.len(), "never fewer than min(k, points)");
                expected += truth.len();
                found += hits.iter().filter(|h| truth.contains(&h.id)).count();
            }
        }
        for (t, points) in &model {
            assert_eq!(
                reg.tenant(TENANTS[*t].0).unwrap().count(None).unwrap(),
                points.len()
            );
        }
    }
    (found, expected)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn invariant_2_queries_reach_only_their_tenant_and_match_the_model(
        ops in prop::collection::vec(op(), 10..60)
    ) {
        let mut all = vec![Op::Create(0), Op::Create(1), Op::Create(2)];
        all.extend(ops);
        let (found, expected) = run(&all);
        if expected > 0 {
            let recall = found as f64 / expected as f64;
            prop_assert!(recall >= 0.95, "recall@k {recall:.3} ({found}/{expected})");
        }
    }
}
