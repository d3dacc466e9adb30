//! Tenants at scale: eviction to cold under a memory budget, pinning,
//! warm and cool, quotas.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use bulkhead::engine::{
    EngineConfig, EngineError, Metric, PointInput, Quotas, Registry, TenantState,
};
use serde_json::json;

use crate::common::{points, search_ids, small_config, spec};

const TENANTS: [&str; 4] = ["ta", "tb", "tc", "td"];

fn config(budget: u64) -> EngineConfig {
    EngineConfig {
        memory_budget_bytes: budget,
        ..small_config()
    }
}

fn state(reg: &Registry, name: &str) -> TenantState {
    reg.describe_tenant(name).unwrap().state
}

/// Four tenants of 1,200 points in a fresh registry under `dir`; returns
/// their queries' answers while every tenant is in memory, and the
/// largest resident size of one of them once reopened (as a load maps it:
/// without hnsw_rs's graph).
fn fill(dir: &std::path::Path) -> (Vec<Vec<Vec<String>>>, u64) {
    let reg = Registry::open(dir, config(0)).unwrap();
    let mut answers = Vec::new();
    for (i, name) in TENANTS.iter().enumerate() {
        let t = reg.create_tenant(name, spec(16, Metric::L2)).unwrap();
        t.upsert(&points(60 + i as u64, "p", 1_200, 16)).unwrap();
        t.wait_for_maintenance();
        answers.push(queries_of(&t));
    }
    reg.close().unwrap();
    drop(reg);
    let reg = Registry::open(dir, config(0)).unwrap();
    let size = TENANTS
        .iter()
        .map(|name| reg.tenant(name).unwrap().resident_bytes())
        .max()
        .unwrap();
    (answers, size)
}

fn queries_of(t: &bulkhead::engine::Tenant) -> Vec<Vec<String>> {
    points(70, "q", 20, 16)
        .iter()
        .map(|q| search_ids(t, &q.vector, 10, Some(64)))
        .collect()
}

#[test]
fn the_memory_budget_evicts_the_least_recently_used_and_reload_answers_alike() {
    let dir = tempfile::tempdir().unwrap();
    let (before, size) = fill(dir.path());
    assert!(size > 1_200 * 16 * 4, "{size}");
    // Room for two tenants and a half.
    let reg = Registry::open(dir.path(), config(size * 5 / 2)).unwrap();
    for name in TENANTS {
        reg.tenant(name).unwrap();
    }
    let states: Vec<TenantState> = TENANTS.iter().map(|n| state(&reg, n)).collect();
    assert_eq!(
        states,
        [
            TenantState::Cold,
            TenantState::Cold,
            TenantState::Active,
            TenantState::Active
        ],
        "the two least recently used went cold"
    );
    // Touching ta again evicts tc, the least recently used now.
    reg.tenant("ta").unwrap();
    assert_eq!(state(&reg, "tc"), TenantState::Cold);
    assert_eq!(state(&reg, "td"), TenantState::Active);
    // Every tenant, reloaded, answers as it did before it ever left.
    for (i, name) in TENANTS.iter().enumerate() {
        assert_eq!(queries_of(&reg.tenant(name).unwrap()), before[i], "{name}");
    }
    // A cold tenant's description shows its size from its last eviction.
    let cold = reg
        .list_tenants()
        .into_iter()
        .find(|t| t.state == TenantState::Cold)
        .unwrap();
    assert_eq!(cold.points, 1_200);
    assert_eq!(cold.resident_bytes, 0);
}

#[test]
fn eviction_and_reload_under_concurrent_queries_and_writes_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (before, size) = fill(dir.path());
    // Room for one tenant and a half: nearly every switch evicts.
    let reg = Arc::new(Registry::open(dir.path(), config(size * 3 / 2)).unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let checked = Arc::new(AtomicUsize::new(0));
    let readers: Vec<_> = (0..3)
        .map(|r| {
            let (reg, stop, checked) = (Arc::clone(&reg), Arc::clone(&stop), Arc::clone(&checked));
            let before = before.clone();
            std::thread::spawn(move || {
                let mut i = r;
                while !stop.load(Ordering::Relaxed) {
                    // ta takes writes below; the others must answer as before.
                    let t = 1 + i % 3;
                    let got = queries_of(&reg.tenant(TENANTS[t]).unwrap());
                    assert_eq!(got, before[t], "{} after reload", TENANTS[t]);
                    checked.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                }
            })
        })
        .collect();
    // A writer on ta, going through `Registry::write` like the server does,
    // while an operator cools tenants by hand as well.
    let written: Vec<PointInput> = points(80, "w", 300, 16);
    for (n, batch) in written.chunks(10).enumerate() {
        let t = reg.tenant("ta").unwrap();
        reg.write(&t, |t| t.upsert(batch)).unwrap();
        if n % 5 == 0 {
            reg.cool_tenant(TENANTS[n % 4]).unwrap();
        }
    }
    while checked.load(Ordering::Relaxed) < 30 {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        r.join().unwrap();
    }
    let ta = reg.tenant("ta").unwrap();
    assert_eq!(ta.count(None).unwrap(), 1_500, "no write was lost");
    for p in written.iter().step_by(29) {
        assert_eq!(search_ids(&ta, &p.vector, 1, Some(64)), vec![p.id.clone()]);
    }
    // And after a restart too.
    drop(ta);
    reg.close().unwrap();
    drop(reg);
    let reg = Registry::open(dir.path(), config(0)).unwrap();
    assert_eq!(reg.tenant("ta").unwrap().count(None).unwrap(), 1_500);
}

#[test]
fn an_evicted_handle_keeps_reading_and_its_writes_go_to_the_next_load() {
    let dir = tempfile::tempdir().unwrap();
    let reg = Registry::open(dir.path(), config(0)).unwrap();
    let t = reg.create_tenant("held", spec(4, Metric::L2)).unwrap();
    t.upsert(&points(90, "h", 10, 4)).unwrap();
    reg.cool_tenant("held").unwrap();
    assert_eq!(state(&reg, "held"), TenantState::Cold);
    // The old handle still reads what it had...
    assert_eq!(t.count(None).unwrap(), 10);
    // ... refuses to write on its own ...
    let batch = points(91, "x", 1, 4);
    assert!(matches!(t.upsert(&batch), Err(EngineError::TryAgain)));
    // ... and `run` takes the write to the tenant's next load.
    reg.write(&t, |t| t.upsert(&batch)).unwrap();
    assert_eq!(state(&reg, "held"), TenantState::Active);
    assert_eq!(reg.tenant("held").unwrap().count(None).unwrap(), 11);
    // Dropping the tenant reaches the evicted handle too.
    reg.cool_tenant("held").unwrap();
    let dirs_before = fs_err::read_dir(dir.path().join("tenants"))
        .unwrap()
        .count();
    reg.drop_tenant("held").unwrap();
    assert!(matches!(t.count(None), Err(EngineError::TenantNotFound)));
    assert_eq!(
        fs_err::read_dir(dir.path().join("tenants"))
            .unwrap()
            .count(),
        dirs_before - 1,
        "the cold tenant's folder is gone"
    );
    assert!(matches!(
        reg.write(&t, |t| t.upsert(&batch)),
        Err(EngineError::TenantNotFound)
    ));
}

#[test]
fn pinned_tenants_stay_loaded_and_warm_cool_and_pin_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let (_, size) = fill(dir.path());
    {
        let reg = Registry::open(dir.path(), config(0)).unwrap();
        reg.pin_tenant("ta", true).unwrap();
        let err = reg.cool_tenant("ta").unwrap_err().to_string();
        assert!(err.contains("pinned"), "{err}");
    }
    let reg = Registry::open(dir.path(), config(size * 3 / 2)).unwrap();
    assert!(
        reg.describe_tenant("ta").unwrap().pinned,
        "pin survives a restart"
    );
    for name in TENANTS {
        reg.tenant(name).unwrap();
    }
    // Over budget with ta pinned: ta stays, the others were evicted.
    assert_eq!(state(&reg, "ta"), TenantState::Active);
    assert_eq!(state(&reg, "tb"), TenantState::Cold);
    assert_eq!(state(&reg, "td"), TenantState::Active);
    // Warm loads without a request; cool evicts.
    let warmed = reg.warm_tenant("tb").unwrap();
    assert_eq!(warmed.state, TenantState::Active);
    assert_eq!(warmed.points, 1_200);
    assert!(warmed.resident_bytes > 0);
    assert!(warmed.last_used_unix_ms.is_some());
    assert_eq!(reg.cool_tenant("tb").unwrap().state, TenantState::Cold);
    reg.pin_tenant("ta", false).unwrap();
    assert_eq!(reg.cool_tenant("ta").unwrap().state, TenantState::Cold);
}

#[test]
fn shelves_of_cold_tenants_close_and_reopen_on_the_next_load() {
    let dir = tempfile::tempdir().unwrap();
    let (before, _) = fill(dir.path());
    let mut config = config(0);
    config.storage.close_idle_shelf_after = std::time::Duration::ZERO;
    let reg = Registry::open(dir.path(), config).unwrap();
    assert_eq!(reg.shelves(), (0, 1), "nothing opens before a tenant loads");
    let t = reg.tenant("tb").unwrap();
    assert_eq!(reg.shelves(), (1, 1));
    assert_eq!(
        reg.close_idle_shelves().unwrap(),
        0,
        "a loaded tenant holds it"
    );
    drop(t);
    reg.cool_tenant("tb").unwrap();
    assert_eq!(reg.close_idle_shelves().unwrap(), 1);
    assert_eq!(reg.shelves(), (0, 1));
    assert_eq!(queries_of(&reg.tenant("tb").unwrap()), before[1]);
    assert_eq!(reg.shelves(), (1, 1));
}

fn quota_tenant(reg: &Registry, name: &str, quotas: Quotas) -> Arc<bulkhead::engine::Tenant> {
    reg.create_tenant_with_quotas(name, spec(4, Metric::L2), quotas)
        .unwrap()
}

#[test]
fn point_and_payload_quotas_refuse_the_whole_batch_and_name_the_quota() {
    let dir = tempfile::tempdir().unwrap();
    let reg = Registry::open(dir.path(), config(0)).unwrap();
    let t = quota_tenant(
        &reg,
        "capped",
        Quotas {
            max_points: 10,
            max_payload_bytes: 2_000,
            ..Quotas::default()
        },
    );
    // A big neighbour with no quota: its numbers must never show up.
    let other = reg.create_tenant("roomy", spec(4, Metric::L2)).unwrap();
    other.upsert(&points(1, "o", 777, 4)).unwrap();
    t.upsert(&points(2, "p", 8, 4)).unwrap();
    let err = t.upsert(&points(3, "n", 3, 4)).unwrap_err();
    assert!(matches!(err, EngineError::QuotaExceeded(_)));
    let message = err.to_string();
    assert!(message.contains("max_points (10)"), "{message}");
    assert!(message.contains("holds 8 points"), "{message}");
    assert!(
        !message.contains("777") && !message.contains("roomy"),
        "{message}"
    );
    assert_eq!(
        t.count(None).unwrap(),
        8,
        "nothing of the batch was written"
    );
    // Replacing existing points does not add any: allowed at the limit.
    t.upsert(&points(4, "p", 8, 4)).unwrap();
    t.upsert(&points(3, "n", 2, 4)).unwrap();
    assert_eq!(t.count(None).unwrap(), 10);
    // Payload bytes: one big payload over the total.
    let big = PointInput::new("p0", vec![0.5; 4]).with_payload(json!({"blob": "x".repeat(2_500)}));
    let message = t.upsert(&[big]).unwrap_err().to_string();
    assert!(message.contains("max_payload_bytes (2000)"), "{message}");
    // Raised by the admin: applies at once and survives a restart.
    reg.set_quotas(
        "capped",
        Quotas {
            max_points: 20,
            ..Quotas::default()
        },
    )
    .unwrap();
    t.upsert(&points(5, "m", 5, 4)).unwrap();
    drop((t, other));
    reg.close().unwrap();
    drop(reg);
    let reg = Registry::open(dir.path(), config(0)).unwrap();
    let info = reg.describe_tenant("capped").unwrap();
    assert_eq!(info.quotas.max_points, 20);
    assert_eq!(info.quotas.max_payload_bytes, 0);
    let t = reg.tenant("capped").unwrap();
    let message = t.upsert(&points(6, "z", 6, 4)).unwrap_err().to_string();
    assert!(message.contains("max_points (20)"), "{message}");
    assert!(message.contains("holds 15 points"), "{message}");
}

#[test]
fn request_rate_and_concurrent_search_quotas_are_per_tenant() {
    let dir = tempfile::tempdir().unwrap();
    let reg = Registry::open(dir.path(), config(0)).unwrap();
    let t = quota_tenant(
        &reg,
        "metered",
        Quotas {
            max_requests_per_second: 3,
            max_concurrent_searches: 2,
            ..Quotas::default()
        },
    );
    reg.create_tenant("free", spec(4, Metric::L2)).unwrap();
    let token = reg.issue_token("metered").unwrap().token;
    let free = reg.issue_token("free").unwrap().token;
    for _ in 0..3 {
        reg.authorize(&token, "metered").unwrap();
    }
    let message = reg.authorize(&token, "metered").unwrap_err().to_string();
    assert!(message.contains("max_requests_per_second (3)"), "{message}");
    // The other tenant is not affected.
    for _ in 0..20 {
        reg.authorize(&free, "free").unwrap();
    }
    // The bucket refills at the rate: a request passes again within 1/3 s.
    std::thread::sleep(std::time::Duration::from_millis(400));
    reg.authorize(&token, "metered").unwrap();
    // Concurrent searches: permits count until dropped, and a reload of
    // the tenant shares the count.
    let a = t.begin_search().unwrap();
    let _b = t.begin_search().unwrap();
    reg.cool_tenant("metered").unwrap();
    let reloaded = reg.tenant("metered").unwrap();
    let message = reloaded.begin_search().unwrap_err().to_string();
    assert!(message.contains("max_concurrent_searches (2)"), "{message}");
    drop(a);
    reloaded.begin_search().unwrap();
}
