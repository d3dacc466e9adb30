use bulkhead::engine::{
    EngineError, MAX_PAYLOAD_BYTES, MAX_RESPONSE_BYTES, Metric, PointInput, SearchRequest,
};
use serde_json::json;

use crate::common::{open, points, spec};

#[test]
fn crud_round_trip_with_payloads_and_vectors() {
    let dir = tempfile::tempdir().unwrap();
    let reg = open(dir.path());
    let t = reg.create_tenant("acme", spec(4, Metric::L2)).unwrap();
    t.upsert(&[
        PointInput::new("a", vec![0.0, 0.0, 0.0, 1.0]).with_payload(json!({"k": "v"})),
        PointInput::new("b", vec![0.0, 0.0, 1.0, 0.0]).with_text("bee"),
    ])
    .unwrap();
    let got = t
        .get(&["b".into(), "zz".into(), "a".into()], true, true)
        .unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].id, "b");
    assert_eq!(got[0].text.as_deref(), Some("bee"));
    assert_eq!(
        t.get(&["b".into()], false, false).unwrap()[0].text,
        None,
        "text comes with the payload"
    );
    assert_eq!(got[1].payload.as_ref().unwrap()["k"], "v");
    assert_eq!(got[1].vector.as_deref(), Some(&[0.0, 0.0, 0.0, 1.0][..]));

    // Upsert replaces: new vector, new payload, same count.
    t.upsert(&[PointInput::new("a", vec![1.0, 0.0, 0.0, 0.0]).with_payload(json!({"k": "w"}))])
        .unwrap();
    assert_eq!(t.count(None).unwrap(), 2);
    let hit = &t
        .search(&SearchRequest {
            with_payload: true,
            ..SearchRequest::new(vec![1.0, 0.0, 0.0, 0.0], 1)
        })
        .unwrap()[0];
    assert_eq!((hit.id.as_str(), hit.score), ("a", 0.0));
    assert_eq!(hit.payload.as_ref().unwrap()["k"], "w");

    assert_eq!(
        t.delete(&["a".into(), "a".into(), "nope".into()]).unwrap(),
        1
    );
    assert_eq!(t.count(None).unwrap(), 1);
    let ids: Vec<String> = t
        .search(&SearchRequest::new(vec![1.0, 0.0, 0.0, 0.0], 10))
        .unwrap()
        .into_iter()
        .map(|p| p.id)
        .collect();
    assert_eq!(ids, ["b"]);
}

#[test]
fn bad_points_are_rejected_with_index_and_reason_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let reg = open(dir.path());
    let t = reg.create_tenant("acme", spec(3, Metric::Cosine)).unwrap();
    let good = PointInput::new("ok", vec![1.0, 2.0, 3.0]);
    let big = "x".repeat(MAX_PAYLOAD_BYTES);
    let cases: Vec<(PointInput, &str)> = vec![
        (
            PointInput::new("p", vec![1.0, 2.0]),
            "has 2 dimensions, this tenant's vectors have 3",
        ),
        (
            PointInput::new("p", vec![1.0, f32::NAN, 0.0]),
            "NaN and infinity",
        ),
        (
            PointInput::new("p", vec![f32::INFINITY, 1.0, 0.0]),
            "NaN and infinity",
        ),
        (PointInput::new("p", vec![0.0, 0.0, 0.0]), "all zeros"),
        (PointInput::new("", vec![1.0, 0.0, 0.0]), "id is empty"),
        (
            PointInput::new("i".repeat(257), vec![1.0, 0.0, 0.0]),
            "limit is 256",
        ),
        (
            PointInput::new("p", vec![1.0, 0.0, 0.0]).with_payload(json!({"big": big})),
            "limit is 65536",
        ),
    ];
    for (bad, reason) in cases {
        let err = t.upsert(&[good.clone(), bad]).unwrap_err();
        let msg = err.to_string();
        assert!(
            matches!(err, EngineError::InvalidPoint { index: 1, .. }),
            "{msg}"
        );
        assert!(msg.contains(reason) && msg.starts_with("point 1:"), "{msg}");
        assert_eq!(t.count(None).unwrap(), 0, "a rejected batch wrote nothing");
    }
}

#[test]
fn search_arguments_are_validated() {
    let dir = tempfile::tempdir().unwrap();
    let reg = open(dir.path());
    let t = reg.create_tenant("acme", spec(2, Metric::Dot)).unwrap();
    for (req, needle) in [
        (
            SearchRequest::new(vec![1.0, 1.0], 0),
            "k must be between 1 and 1024",
        ),
        (
            SearchRequest::new(vec![1.0, 1.0], 1025),
            "k must be between 1 and 1024",
        ),
        (
            SearchRequest::new(vec![1.0], 1),
            "query vector has 1 dimensions",
        ),
        (
            SearchRequest {
                ef: Some(100_000),
                ..SearchRequest::new(vec![1.0, 1.0], 1)
            },
            "ef must be at most",
        ),
    ] {
        let err = t.search(&req).unwrap_err();
        assert!(
            matches!(err, EngineError::InvalidArgument(_)) && err.to_string().contains(needle),
            "{err}"
        );
    }
    assert!(
        t.search(&SearchRequest::new(vec![1.0, 1.0], 5))
            .unwrap()
            .is_empty()
    );
}

#[test]
fn scroll_pages_through_everything_once_and_cursors_are_bound_to_the_tenant() {
    let dir = tempfile::tempdir().unwrap();
    let reg = open(dir.path());
    let a = reg.create_tenant("tenant-a", spec(8, Metric::L2)).unwrap();
    let b = reg.create_tenant("tenant-b", spec(8, Metric::L2)).unwrap();
    a.upsert(&points(1, "a", 250, 8)).unwrap();
    b.upsert(&points(2, "b", 30, 8)).unwrap();
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = a.scroll(cursor.as_deref(), 64, None, false, false).unwrap();
        seen.extend(page.points.into_iter().map(|p| p.id));
        match page.next_cursor {
            Some(c) => {
                // Tenant b cannot use a's cursor; the error names nobody.
                let err = b.scroll(Some(&c), 64, None, false, false).unwrap_err();
                assert!(matches!(err, bulkhead::engine::EngineError::InvalidCursor));
                assert!(!err.to_string().contains("tenant-a"));
                cursor = Some(c);
            }
            None => break,
        }
    }
    let mut expected: Vec<String> = (0..250).map(|i| format!("a{i}")).collect();
    expected.sort();
    assert_eq!(seen, expected);
    // A recreated tenant of the same name is a new incarnation: old cursors die.
    let c = a
        .scroll(None, 10, None, false, false)
        .unwrap()
        .next_cursor
        .unwrap();
    reg.drop_tenant("tenant-a").unwrap();
    let a2 = reg.create_tenant("tenant-a", spec(8, Metric::L2)).unwrap();
    assert!(matches!(
        a2.scroll(Some(&c), 10, None, false, false),
        Err(EngineError::InvalidCursor)
    ));
}

#[test]
fn invariant_7_a_missing_tenant_and_a_dropped_one_look_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let reg = open(dir.path());
    let t = reg.create_tenant("secret-co", spec(2, Metric::L2)).unwrap();
    reg.drop_tenant("secret-co").unwrap();
    let dropped = reg.tenant("secret-co").unwrap_err().to_string();
    let never = reg.tenant("never-was").unwrap_err().to_string();
    assert_eq!(dropped, never);
    assert!(!dropped.contains("secret") && !never.contains("never"));
    // A handle held across the drop answers like a tenant that does not exist.
    assert_eq!(t.count(None).unwrap_err().to_string(), never);
    assert!(
        reg.tenant("Bad/Name")
            .unwrap_err()
            .to_string()
            .contains("a-z, 0-9")
    );
}

#[test]
fn tenant_lifecycle_and_admin_listing() {
    let dir = tempfile::tempdir().unwrap();
    let reg = open(dir.path());
    assert!(matches!(
        reg.create_tenant("x", spec(0, Metric::L2)),
        Err(EngineError::InvalidArgument(_))
    ));
    reg.create_tenant("beta", spec(2, Metric::L2)).unwrap();
    reg.create_tenant("alpha", spec(3, Metric::Cosine)).unwrap();
    assert!(matches!(
        reg.create_tenant("alpha", spec(3, Metric::Cosine)),
        Err(EngineError::TenantExists)
    ));
    let names: Vec<String> = reg.list_tenants().into_iter().map(|t| t.name).collect();
    assert_eq!(names, ["alpha", "beta"]);
    let d = reg.describe_tenant("alpha").unwrap();
    assert_eq!(
        (d.spec.dimension, d.spec.metric, d.points),
        (3, Metric::Cosine, 0)
    );
    assert!(matches!(
        reg.drop_tenant("gamma"),
        Err(EngineError::TenantNotFound)
    ));
}

#[test]
fn tombstones_trigger_a_background_rebuild_that_keeps_results_exact() {
    let dir = tempfile::tempdir().unwrap();
    let reg = open(dir.path());
    let t = reg
        .create_tenant("churn", spec(16, Metric::Cosine))
        .unwrap();
    let pts = points(3, "p", 400, 16);
    t.upsert(&pts).unwrap();
    t.wait_for_maintenance();
    let deleted: Vec<String> = (0..400).step_by(2).map(|i| format!("p{i}")).collect();
    assert_eq!(t.delete(&deleted).unwrap(), 200);
    t.wait_for_maintenance();
    let info = reg.describe_tenant("churn").unwrap();
    assert_eq!(info.points, 200);
    assert_eq!(
        info.graph_nodes, 200,
        "the rebuild dropped the tombstones from the graph"
    );
    let live: Vec<&PointInput> = pts.iter().skip(1).step_by(2).collect();
    for q in pts.iter().take(20) {
        let got: Vec<String> = t
            .search(&SearchRequest {
                ef: Some(200),
                ..SearchRequest::new(q.vector.clone(), 10)
            })
            .unwrap()
            .into_iter()
            .map(|p| p.id)
            .collect();
        assert!(
            got.iter().all(|id| !deleted.contains(id)),
            "a deleted point came back"
        );
        let truth = crate::common::brute_force(Metric::Cosine, &q.vector, &live, 10);
        let hits = got.iter().filter(|id| truth.contains(id)).count();
        assert!(hits >= 9, "recall {hits}/10");
    }
}

#[test]
fn the_frozen_graph_and_the_points_written_after_it_answer_like_brute_force() {
    use std::collections::BTreeMap;

    let dir = tempfile::tempdir().unwrap();
    let reg = open(dir.path());
    let t = reg.create_tenant("frozen", spec(16, Metric::L2)).unwrap();
    let mut live: BTreeMap<String, PointInput> = BTreeMap::new();
    for batch in points(11, "p", 600, 16).chunks(100) {
        t.upsert(batch).unwrap();
        live.extend(batch.iter().map(|p| (p.id.clone(), p.clone())));
    }
    t.wait_for_maintenance();
    let frozen = reg.describe_tenant("frozen").unwrap();
    assert_eq!(frozen.frozen_nodes, 600, "the bulk load ends frozen");
    assert_eq!(frozen.unfrozen_points, 0);

    // After the freeze, too little churn for another freeze or a rebuild:
    // 60 deletes and 20 replacements (liveness bits in the frozen graph),
    // 20 replacements and 20 new points (the delta, scanned exactly).
    let deleted: Vec<String> = (0..60).map(|i| format!("p{}", i * 10)).collect();
    assert_eq!(t.delete(&deleted).unwrap(), 60);
    for id in &deleted {
        live.remove(id);
    }
    let fresh = points(12, "p", 600, 16);
    let replaced: Vec<PointInput> = (0..20).map(|i| fresh[i * 10 + 5].clone()).collect();
    let added = points(13, "new", 20, 16);
    t.upsert(&replaced).unwrap();
    t.upsert(&added).unwrap();
    let stale: Vec<Vec<f32>> = replaced
        .iter()
        .map(|p| live[&p.id].vector.clone())
        .collect();
    live.extend(
        replaced
            .iter()
            .chain(&added)
            .map(|p| (p.id.clone(), p.clone())),
    );
    let info = reg.describe_tenant("frozen").unwrap();
    assert_eq!(info.frozen_nodes, 600, "still the same frozen graph");
    assert_eq!(
        info.unfrozen_points, 40,
        "replacements and new points live in the delta"
    );

    let everyone: Vec<&PointInput> = live.values().collect();
    let search = |vector: &[f32], filter: Option<bulkhead::engine::Filter>| -> Vec<String> {
        t.search(&SearchRequest {
            ef: Some(100),
            filter,
            ..SearchRequest::new(vector.to_vec(), 10)
        })
        .unwrap()
        .into_iter()
        .map(|p| p.id)
        .collect()
    };
    // Each new or replaced point is found first by its own vector.
    for p in replaced.iter().chain(&added) {
        assert_eq!(search(&p.vector, None)[0], p.id);
    }
    // A replaced point's old vector no longer finds it first, a deleted
    // point never comes back, and the rest matches brute force.
    let mut hits = 0;
    let queries: Vec<Vec<f32>> = points(14, "q", 30, 16)
        .into_iter()
        .map(|p| p.vector)
        .collect();
    for q in queries.iter().chain(&stale) {
        let got = search(q, None);
        assert!(
            got.iter().all(|id| !deleted.contains(id)),
            "a deleted point came back"
        );
        let truth = crate::common::brute_force(Metric::L2, q, &everyone, 10);
        hits += got.iter().filter(|id| truth.contains(id)).count();
    }
    let asked = queries.len() + stale.len();
    assert!(
        hits * 100 >= asked * 10 * 95,
        "recall@10 {hits}/{}",
        asked * 10
    );
    for (old, p) in stale.iter().zip(&replaced) {
        let truth = crate::common::brute_force(Metric::L2, old, &everyone, 1);
        assert_eq!(search(old, None)[0], truth[0], "{}: stale vector", p.id);
    }
    // Filters apply to the frozen graph and to the delta alike.
    let filter = bulkhead::engine::Filter::from_json(
        &json!({"must": [{"key": "tag", "match": {"value": "t3"}}]}),
    )
    .unwrap();
    for q in &queries {
        let got = search(q, Some(filter.clone()));
        assert_eq!(got.len(), 10);
        for id in &got {
            assert_eq!(
                live[id].payload["tag"], "t3",
                "{id} does not match the filter"
            );
        }
    }
}

#[test]
fn a_response_over_the_budget_is_refused_or_paged_before_it_is_built() {
    let dir = tempfile::tempdir().unwrap();
    let reg = open(dir.path());
    let t = reg.create_tenant("bulky", spec(4, Metric::L2)).unwrap();
    // Payloads just under the per-point limit: more of them than one
    // response may carry.
    let filler = "x".repeat(MAX_PAYLOAD_BYTES - 64);
    let n = MAX_RESPONSE_BYTES / MAX_PAYLOAD_BYTES + 40;
    let ids: Vec<String> = (0..n).map(|i| format!("p{i:04}")).collect();
    for chunk in ids.chunks(100) {
        let batch: Vec<PointInput> = chunk
            .iter()
            .map(|id| {
                PointInput::new(id.clone(), vec![1.0, 0.5, 0.25, 0.125])
                    .with_payload(json!({ "filler": filler }))
            })
            .collect();
        t.upsert(&batch).unwrap();
    }
    let err = t.get(&ids, true, false).unwrap_err();
    assert!(matches!(err, EngineError::InvalidArgument(_)), "{err}");
    assert!(err.to_string().contains("over 48 MiB"), "{err}");
    assert_eq!(
        t.get(&ids, false, true).unwrap().len(),
        n,
        "without payloads it fits"
    );
    // A scroll page ends at the budget; its cursor goes on from there.
    let mut seen = 0;
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let page = t
            .scroll(cursor.as_deref(), 1_000, None, true, false)
            .unwrap();
        seen += page.points.len();
        pages += 1;
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!((seen, pages), (n, 2), "every point once, over two pages");
}
