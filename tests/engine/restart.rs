use bulkhead::engine::{Metric, SearchRequest};

use crate::common::{open, points, search_ids, spec};

fn answers(reg: &bulkhead::engine::Registry, queries: &[Vec<f32>]) -> Vec<Vec<(String, u32)>> {
    let t = reg.tenant("durable").unwrap();
    queries
        .iter()
        .map(|q| {
            t.search(&SearchRequest {
                ef: Some(256),
                ..SearchRequest::new(q.clone(), 10)
            })
            .unwrap()
            .into_iter()
            .map(|p| (p.id, p.score.to_bits()))
            .collect()
        })
        .collect()
}

#[test]
fn restart_gives_the_same_results_from_snapshot_plus_replay() {
    let dir = tempfile::tempdir().unwrap();
    let pts = points(11, "d", 700, 24);
    let queries: Vec<Vec<f32>> = points(12, "q", 15, 24)
        .into_iter()
        .map(|p| p.vector)
        .collect();
    let (before, count) = {
        let reg = open(dir.path());
        let t = reg.create_tenant("durable", spec(24, Metric::L2)).unwrap();
        // 600 points reach a snapshot (every 200); the last 100 and the deletes
        // come after it and must be replayed from the column family.
        t.upsert(&pts[..600]).unwrap();
        t.wait_for_maintenance();
        t.upsert(&pts[600..]).unwrap();
        t.delete(&["d1".into(), "d650".into()]).unwrap();
        t.wait_for_maintenance();
        let before = answers(&reg, &queries);
        let count = t.count(None).unwrap();
        drop(t);
        // No close(): reopening must not depend on a clean shutdown.
        (before, count)
    };
    let reg = open(dir.path());
    assert_eq!(reg.tenant("durable").unwrap().count(None).unwrap(), count);
    assert_eq!(answers(&reg, &queries), before);
    reg.close().unwrap();
    drop(reg);
    let reg = open(dir.path());
    assert_eq!(
        answers(&reg, &queries),
        before,
        "after a clean close and reopen"
    );
}

#[test]
fn a_corrupt_snapshot_costs_a_rebuild_not_data() {
    let dir = tempfile::tempdir().unwrap();
    let pts = points(21, "c", 300, 8);
    {
        let reg = open(dir.path());
        let t = reg
            .create_tenant("fragile", spec(8, Metric::Cosine))
            .unwrap();
        t.upsert(&pts).unwrap();
        reg.close().unwrap();
    }
    let damage = |extensions: &[&str]| {
        let mut damaged = 0;
        for entry in walk(&dir.path().join("tenants")) {
            if entry
                .extension()
                .is_some_and(|e| extensions.iter().any(|x| e == *x))
            {
                fs_err::write(&entry, b"garbage").unwrap();
                damaged += 1;
            }
        }
        damaged
    };
    // A damaged frozen layout costs a freeze.
    assert_eq!(
        damage(&["frozen"]),
        1,
        "the frozen layout is saved with the snapshot"
    );
    {
        let reg = open(dir.path());
        let t = reg.tenant("fragile").unwrap();
        let hit = &t
            .search(&SearchRequest::new(pts[42].vector.clone(), 1))
            .unwrap()[0];
        assert_eq!(hit.id, "c42");
        assert_eq!(reg.describe_tenant("fragile").unwrap().frozen_nodes, 300);
        drop(t);
        drop(reg);
    }
    // A damaged hnsw_rs dump costs a rebuild.
    assert!(damage(&["graph", "data"]) >= 2, "the snapshot files exist");
    let reg = open(dir.path());
    let t = reg.tenant("fragile").unwrap();
    assert_eq!(t.count(None).unwrap(), 300);
    let hit = &t
        .search(&SearchRequest::new(pts[42].vector.clone(), 1))
        .unwrap()[0];
    assert_eq!(hit.id, "c42");
}

pub fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = fs_err::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
fn a_small_tenant_has_no_graph_until_it_grows_and_none_is_written_for_it() {
    use bulkhead::engine::{EngineConfig, Registry};

    let config = || EngineConfig {
        full_scan_points: 100,
        ..crate::common::small_config()
    };
    let dir = tempfile::tempdir().unwrap();
    let pts = points(21, "s", 150, 8);
    let exact = |reg: &Registry, upto: usize| {
        let t = reg.tenant("small").unwrap();
        let live: Vec<&bulkhead::engine::PointInput> = pts[..upto].iter().collect();
        for q in pts.iter().step_by(15) {
            let got = search_ids(&t, &q.vector, 5, None);
            assert_eq!(
                got,
                crate::common::brute_force(Metric::L2, &q.vector, &live, 5)
            );
        }
    };
    {
        let reg = Registry::open(dir.path(), config()).unwrap();
        let t = reg.create_tenant("small", spec(8, Metric::L2)).unwrap();
        t.upsert(&pts[..80]).unwrap();
        t.wait_for_maintenance();
        let info = reg.describe_tenant("small").unwrap();
        assert_eq!(
            (info.points, info.graph_nodes, info.frozen_nodes),
            (80, 0, 0)
        );
        exact(&reg, 80);
        reg.close().unwrap();
    }
    let snapshots = |dir: &std::path::Path| {
        walk(dir)
            .into_iter()
            .filter(|p| p.to_string_lossy().contains("hnsw"))
            .count()
    };
    assert_eq!(
        snapshots(dir.path()),
        0,
        "no graph snapshot for a small tenant"
    );
    let reg = Registry::open(dir.path(), config()).unwrap();
    assert_eq!(reg.describe_tenant("small").unwrap().graph_nodes, 0);
    exact(&reg, 80);
    // Growing past full_scan_points builds the graph (and its frozen copy)
    // in the background; searches are exact meanwhile.
    let t = reg.tenant("small").unwrap();
    t.upsert(&pts[80..]).unwrap();
    exact(&reg, 150);
    t.wait_for_maintenance();
    let info = reg.describe_tenant("small").unwrap();
    assert_eq!(
        (info.points, info.graph_nodes, info.frozen_nodes),
        (150, 150, 150)
    );
    exact(&reg, 150);
    reg.close().unwrap();
    assert!(
        snapshots(dir.path()) > 0,
        "the grown tenant's graph is snapshotted"
    );
}

#[test]
fn tenants_reopen_cold_load_once_on_first_use_and_drop_cold() {
    use bulkhead::engine::TenantState;

    let dir = tempfile::tempdir().unwrap();
    let queries: Vec<Vec<f32>> = points(31, "q", 5, 8)
        .into_iter()
        .map(|p| p.vector)
        .collect();
    let search = |t: &bulkhead::engine::Tenant| -> Vec<Vec<String>> {
        queries.iter().map(|q| search_ids(t, q, 3, None)).collect()
    };
    let before = {
        let reg = open(dir.path());
        let mut before = Vec::new();
        for (i, name) in ["a", "b", "c"].into_iter().enumerate() {
            let t = reg.create_tenant(name, spec(8, Metric::L2)).unwrap();
            t.upsert(&points(40 + i as u64, name, 300, 8)).unwrap();
            t.wait_for_maintenance();
            before.push(search(&t));
        }
        reg.close().unwrap();
        before
    };
    let reg = open(dir.path());
    let states = |reg: &bulkhead::engine::Registry| -> Vec<(String, TenantState, usize)> {
        reg.list_tenants()
            .into_iter()
            .map(|t| (t.name, t.state, t.points))
            .collect()
    };
    assert!(
        states(&reg)
            .iter()
            .all(|(_, s, n)| *s == TenantState::Cold && *n == 0),
        "every tenant reopens cold: {:?}",
        states(&reg)
    );
    // Concurrent first requests share one load.
    let handles: Vec<std::sync::Arc<bulkhead::engine::Tenant>> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..8)
            .map(|_| s.spawn(|| reg.tenant("a").unwrap()))
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    assert!(
        handles
            .iter()
            .all(|h| std::sync::Arc::ptr_eq(h, &handles[0]))
    );
    assert_eq!(
        search(&handles[0]),
        before[0],
        "a loaded tenant answers as before"
    );
    assert_eq!(
        states(&reg),
        vec![
            ("a".to_string(), TenantState::Active, 300),
            ("b".to_string(), TenantState::Cold, 0),
            ("c".to_string(), TenantState::Cold, 0),
        ]
    );
    let used: Vec<bool> = reg
        .list_tenants()
        .iter()
        .map(|t| t.last_used_unix_ms.is_some())
        .collect();
    assert_eq!(
        used,
        vec![true, false, false],
        "only a was used since the open"
    );
    // A cold tenant is dropped like a hot one: gone, and its name starts afresh.
    reg.drop_tenant("b").unwrap();
    assert!(matches!(
        reg.tenant("b"),
        Err(bulkhead::engine::EngineError::TenantNotFound)
    ));
    let again = reg.create_tenant("b", spec(8, Metric::L2)).unwrap();
    assert_eq!(again.count(None).unwrap(), 0);
    assert_eq!(search(&reg.tenant("c").unwrap()), before[2]);
}

#[test]
fn a_reopened_tenant_searches_its_mapped_frozen_graph_and_loads_hnsw_only_to_write() {
    let dir = tempfile::tempdir().unwrap();
    let pts = points(51, "w", 500, 12);
    let queries: Vec<Vec<f32>> = points(52, "q", 10, 12)
        .into_iter()
        .map(|p| p.vector)
        .collect();
    let answers = |t: &bulkhead::engine::Tenant| -> Vec<Vec<String>> {
        queries
            .iter()
            .map(|q| search_ids(t, q, 5, Some(128)))
            .collect()
    };
    let before = {
        let reg = open(dir.path());
        let t = reg.create_tenant("lazy", spec(12, Metric::L2)).unwrap();
        t.upsert(&pts[..450]).unwrap();
        t.wait_for_maintenance();
        let before = answers(&t);
        reg.close().unwrap();
        before
    };
    // Reopened: searches answer from the mapped frozen graph.
    let reg = open(dir.path());
    let t = reg.tenant("lazy").unwrap();
    assert_eq!(answers(&t), before);
    assert_eq!(reg.describe_tenant("lazy").unwrap().frozen_nodes, 450);
    // A write loads the hnsw_rs graph and goes on as before.
    t.upsert(&pts[450..]).unwrap();
    t.delete(&["w3".to_string()]).unwrap();
    t.wait_for_maintenance();
    let all: Vec<&bulkhead::engine::PointInput> = pts.iter().filter(|p| p.id != "w3").collect();
    // The graph is approximate (and hnsw_rs builds it in parallel, so not
    // the same graph twice): ask for recall, and that the deleted point is gone.
    let after = answers(&t);
    let mut hits = 0;
    for (q, got) in queries.iter().zip(&after) {
        assert!(
            !got.contains(&"w3".to_string()),
            "a deleted point came back"
        );
        let truth = crate::common::brute_force(Metric::L2, q, &all, 5);
        hits += got.iter().filter(|id| truth.contains(id)).count();
    }
    assert!(
        hits >= 48,
        "recall@5 {hits}/50 after writes on a reopened tenant"
    );
    for p in &pts[450..460] {
        let hit = &t.search(&SearchRequest::new(p.vector.clone(), 1)).unwrap()[0];
        assert_eq!(hit.id, p.id, "a point written after the reopen is found");
    }
    drop(t);
    reg.close().unwrap();
    drop(reg);
    let reg = open(dir.path());
    assert_eq!(
        answers(&reg.tenant("lazy").unwrap()),
        after,
        "and survives the next reopen"
    );
}
