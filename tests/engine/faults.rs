//! Fault injection: storage fails its Nth write or sync. A failed write is
//! reported, applies nothing, loses nothing acknowledged, and the tenant
//! works again once the fault clears, before and after a restart.

use std::sync::Arc;

use bulkhead::engine::{EngineConfig, EngineError, Metric, Registry};
use bulkhead_storage::{FaultInjector, StorageOptions};

use crate::common::{points, search_ids, small_config, spec};

fn config(faults: &Arc<FaultInjector>) -> EngineConfig {
    EngineConfig {
        storage: StorageOptions {
            faults: Some(Arc::clone(faults)),
            ..StorageOptions::default()
        },
        // No background snapshot takes a fault meant for a write.
        snapshot_every_points: u64::MAX,
        ..small_config()
    }
}

#[test]
fn failed_writes_and_syncs_lose_nothing_acknowledged_and_the_tenant_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let faults = Arc::new(FaultInjector::default());
    let reg = Registry::open(dir.path(), config(&faults)).unwrap();
    let t = reg.create_tenant("faulty", spec(8, Metric::L2)).unwrap();
    // The first points start a background graph build and snapshot: let
    // it finish, so that below only the writes touch storage.
    let first = points(99, "first-", 10, 8);
    t.upsert(&first).unwrap();
    t.wait_for_maintenance();
    let mut acked: Vec<String> = first.iter().map(|p| p.id.clone()).collect();
    let mut refused: Vec<String> = Vec::new();
    for round in 0..30u64 {
        if round % 5 == 2 {
            faults.fail_once(1);
        }
        let batch = points(100 + round, &format!("r{round}-"), 10, 8);
        match t.upsert(&batch) {
            Ok(()) => acked.extend(batch.iter().map(|p| p.id.clone())),
            Err(EngineError::Storage(e)) => {
                assert!(e.to_string().contains("injected fault"), "{e}");
                refused.extend(batch.iter().map(|p| p.id.clone()));
            }
            Err(e) => panic!("unexpected error {e}"),
        }
        if round % 7 == 6 {
            // A failed delete deletes nothing.
            faults.fail_once(1);
            let victim = acked[0].clone();
            assert!(matches!(
                t.delete(std::slice::from_ref(&victim)),
                Err(EngineError::Storage(_))
            ));
            assert_eq!(t.get(&[victim], false, false).unwrap().len(), 1);
        }
    }
    assert_eq!(refused.len(), 60, "six batches were refused");
    assert_eq!(t.count(None).unwrap(), acked.len());
    assert!(t.get(&refused, false, false).unwrap().is_empty());
    // A snapshot whose syncs fail: close reports it, nothing is lost.
    faults.fail_from(1);
    assert!(reg.close().is_err());
    assert!(t.upsert(&points(7, "late-", 1, 8)).is_err());
    faults.clear();
    t.upsert(&points(8, "after-", 5, 8)).unwrap();
    acked.extend((0..5).map(|i| format!("after-{i}")));
    reg.close().unwrap();
    drop(t);
    drop(reg);
    // After a restart without faults: exactly the acknowledged points.
    let reg = Registry::open(dir.path(), small_config()).unwrap();
    let t = reg.tenant("faulty").unwrap();
    assert_eq!(t.count(None).unwrap(), acked.len());
    assert_eq!(t.get(&acked, false, false).unwrap().len(), acked.len());
    assert!(t.get(&refused, false, false).unwrap().is_empty());
    let probe = points(100, "r0-", 10, 8);
    assert_eq!(
        search_ids(&t, &probe[3].vector, 1, Some(64)),
        vec!["r0-3".to_string()]
    );
    assert!(faults.injected() >= 8, "{}", faults.injected());
}

#[test]
fn a_failed_create_or_drop_leaves_the_tenant_wholly_there_or_wholly_gone() {
    let dir = tempfile::tempdir().unwrap();
    let faults = Arc::new(FaultInjector::default());
    let reg = Registry::open(dir.path(), config(&faults)).unwrap();
    faults.fail_once(1);
    assert!(matches!(
        reg.create_tenant("half", spec(4, Metric::L2)),
        Err(EngineError::Storage(_))
    ));
    assert!(reg.list_tenants().is_empty());
    let t = reg.create_tenant("half", spec(4, Metric::L2)).unwrap();
    t.upsert(&points(1, "h", 3, 4)).unwrap();
    faults.fail_once(1);
    assert!(matches!(
        reg.drop_tenant("half"),
        Err(EngineError::Storage(_))
    ));
    assert_eq!(reg.tenant("half").unwrap().count(None).unwrap(), 3);
    reg.drop_tenant("half").unwrap();
    assert!(reg.list_tenants().is_empty());
}

/// A panic in a tenant's background maintenance (here: its first graph
/// snapshot) is caught: the tenant's claim on background work is released,
/// so the freeze that later writes make due still runs.
#[test]
fn a_panic_in_background_maintenance_leaves_later_maintenance_running() {
    let dir = tempfile::tempdir().unwrap();
    let faults = Arc::new(FaultInjector::default());
    // Not dropped if the test fails: closing waits for maintenance, which
    // would hang instead of failing.
    let reg = std::mem::ManuallyDrop::new(Registry::open(dir.path(), config(&faults)).unwrap());
    let t = reg.create_tenant("panicky", spec(8, Metric::L2)).unwrap();
    // Op 1 is the batch's commit; op 2 the first write of the snapshot
    // that the background graph build ends with.
    faults.panic_once(2);
    t.upsert(&points(7, "first-", 10, 8)).unwrap();
    wait_for_maintenance(&t);
    assert_eq!(faults.injected(), 1, "the background snapshot did not run");
    // 100 more points: a freeze is due (more than 50 outside the graph).
    t.upsert(&points(8, "more-", 100, 8)).unwrap();
    wait_for_maintenance(&t);
    let info = reg.describe_tenant("panicky").unwrap();
    assert!(
        info.unfrozen_points < 50,
        "no maintenance ran after the panic: {} points outside the frozen graph",
        info.unfrozen_points
    );
    assert_eq!(search_ids(&t, &[0.0; 8], 5, None).len(), 5);
    drop(std::mem::ManuallyDrop::into_inner(reg));
}

/// Waits for the tenant's background work, failing (not hanging) if it
/// never ends.
fn wait_for_maintenance(t: &Arc<bulkhead::engine::Tenant>) {
    let (done, waited) = std::sync::mpsc::channel();
    let t = Arc::clone(t);
    std::thread::spawn(move || {
        t.wait_for_maintenance();
        let _ = done.send(());
    });
    waited
        .recv_timeout(std::time::Duration::from_secs(120))
        .expect("background maintenance never ended: its claim was never released");
}
