use bulkhead::engine::{Filter, Metric, PointInput, SearchRequest};
use serde_json::json;

use crate::common::{brute_force, open, points, spec};

#[test]
fn a_one_percent_filter_returns_exactly_the_brute_force_top_k() {
    let dir = tempfile::tempdir().unwrap();
    // Production thresholds: the selective filter takes the exact-scan path.
    let reg =
        bulkhead::engine::Registry::open(dir.path(), bulkhead::engine::EngineConfig::default())
            .unwrap();
    let t = reg
        .create_tenant("filtered", spec(32, Metric::Cosine))
        .unwrap();
    let pts = points(31, "f", 5_000, 32);
    for chunk in pts.chunks(1_000) {
        t.upsert(chunk).unwrap();
    }
    let filter =
        Filter::from_json(&json!({"must": [{"key": "bucket", "match": {"value": 17}}]})).unwrap();
    let matching: Vec<&PointInput> = pts.iter().filter(|p| p.payload["bucket"] == 17).collect();
    assert_eq!(matching.len(), 50, "1% of the points match");
    assert_eq!(t.count(Some(&filter)).unwrap(), 50);
    for q in points(32, "q", 20, 32) {
        let req = SearchRequest {
            filter: Some(filter.clone()),
            ..SearchRequest::new(q.vector.clone(), 10)
        };
        let got: Vec<String> = t.search(&req).unwrap().into_iter().map(|p| p.id).collect();
        assert_eq!(got, brute_force(Metric::Cosine, &q.vector, &matching, 10));
    }
    // k above the number of matches returns every match.
    let req = SearchRequest {
        filter: Some(filter),
        ..SearchRequest::new(pts[0].vector.clone(), 100)
    };
    assert_eq!(t.search(&req).unwrap().len(), 50);
}

#[test]
fn filters_in_the_graph_traversal_keep_recall_and_never_return_non_matches() {
    let dir = tempfile::tempdir().unwrap();
    let reg = open(dir.path()); // thresholds at zero: the graph path with the filter inside
    let t = reg
        .create_tenant("graphfilter", spec(16, Metric::L2))
        .unwrap();
    let pts = points(41, "g", 2_000, 16);
    t.upsert(&pts).unwrap();
    let filter = Filter::from_json(&json!({
        "must": [{"key": "i", "range": {"gte": 0, "lt": 1000}}],
        "must_not": [{"key": "tag", "match": {"any": ["t0", "t1"]}}]
    }))
    .unwrap();
    let matching: Vec<&PointInput> = pts.iter().filter(|p| filter.matches(&p.payload)).collect();
    let mut hits = 0;
    for q in points(42, "q", 20, 16) {
        let req = SearchRequest {
            filter: Some(filter.clone()),
            ef: Some(128),
            ..SearchRequest::new(q.vector.clone(), 10)
        };
        let got: Vec<String> = t.search(&req).unwrap().into_iter().map(|p| p.id).collect();
        assert_eq!(got.len(), 10);
        let truth = brute_force(Metric::L2, &q.vector, &matching, 10);
        assert!(
            got.iter().all(|id| matching.iter().any(|p| &p.id == id)),
            "non-matching point returned"
        );
        hits += got.iter().filter(|id| truth.contains(id)).count();
    }
    assert!(hits as f64 / 200.0 >= 0.9, "filtered recall {hits}/200");
    // Delete by filter removes exactly the matches.
    assert_eq!(t.delete_by_filter(&filter).unwrap(), matching.len());
    assert_eq!(t.count(None).unwrap(), 2_000 - matching.len());
}
