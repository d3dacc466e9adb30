//! The access log in storage: written entries survive a restart, entries
//! past the retention go at the next write, and the log is the tenant's
//! own column family's (dropped with it).

use bulkhead::engine::{EngineConfig, Metric, Registry};

use crate::common::{small_config, spec};

fn open_with(dir: &std::path::Path, retention_days: u64) -> Registry {
    let config = EngineConfig {
        access_log_retention_days: retention_days,
        ..small_config()
    };
    Registry::open(dir, config).unwrap()
}

#[test]
fn the_access_log_survives_a_restart_and_keeps_only_its_retention() {
    let dir = tempfile::tempdir().unwrap();
    let key = {
        let reg = open_with(dir.path(), 90);
        reg.create_tenant("kept", spec(4, Metric::L2)).unwrap();
        let access = reg.describe_tenant("kept").unwrap().incarnation;
        reg.note_access(access, 1, "Search", "OK", 10);
        reg.note_access(access, 1, "Search", "OK", 5);
        reg.note_access(access, 2, "Get", "INVALID_ARGUMENT", 0);
        // Not a minute old yet: not written by a regular flush...
        reg.flush_access_log(false).unwrap();
        // ...but by the close.
        reg.close().unwrap();
        access
    };
    let reg = open_with(dir.path(), 90);
    let page = reg.tenant_access_log("kept", None, 0, 10).unwrap();
    let search = page.entries.iter().find(|e| e.rpc == "Search").unwrap();
    assert_eq!(
        (search.token_id.as_str(), search.calls, search.items),
        ("0000000000000001", 2, 15)
    );
    assert_eq!(page.entries.len(), 2);
    drop(reg);

    // With no retention, the next write removes what came before it.
    let reg = open_with(dir.path(), 0);
    std::thread::sleep(std::time::Duration::from_millis(5));
    reg.note_access(key, 0xabc, "Count", "OK", 1);
    reg.flush_access_log(true).unwrap();
    let page = reg.tenant_access_log("kept", None, 0, 10).unwrap();
    let tokens: Vec<&str> = page.entries.iter().map(|e| e.token_id.as_str()).collect();
    assert_eq!(tokens, ["0000000000000abc"]);
}
