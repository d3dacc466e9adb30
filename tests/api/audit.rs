//! `bulkhead admin audit` against a real server, and against a deliberately
//! broken build (feature `audit-leak-for-tests`: Get skips the tenant
//! check), where it must find the leak.

#[cfg(not(feature = "audit-leak-for-tests"))]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_passes_on_the_real_server_and_leaves_no_canary() {
    use crate::cli::bulkhead;
    use crate::common::{ADMIN, serve_with_local_embedder};

    let dir = tempfile::tempdir().unwrap();
    let (_server, url, log) = serve_with_local_embedder(dir.path());
    let out = bulkhead(&url, ADMIN, &["admin", "audit", "--json"], None);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(report["leaks"], 0, "{report}");
    assert_eq!(report["warnings"], serde_json::json!([]), "{report}");
    let layers = report["layers"].as_array().unwrap();
    let names: Vec<&str> = layers
        .iter()
        .map(|l| l["layer"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["index", "storage", "cache", "batching", "models", "errors"]
    );
    for layer in layers {
        // The model is installed by the set-up step, so nothing is skipped.
        assert_eq!(layer["result"], "pass", "{layer}");
        assert!(!layer["probes"].as_array().unwrap().is_empty(), "{layer}");
    }
    // The canaries are gone.
    let listed = bulkhead(&url, ADMIN, &["admin", "tenant", "list", "--json"], None);
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(!listed.contains("audit-"), "{listed}");
    // The text report is one row per layer and says so.
    let out = bulkhead(&url, ADMIN, &["admin", "audit"], None);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("no leak found"), "{text}");
    assert_eq!(text.matches("PASS").count(), 6, "{text}");
    drop(log);
}

#[cfg(feature = "audit-leak-for-tests")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_catches_a_get_without_its_tenant_check() {
    use crate::common::{ADMIN, TestServer};

    let server = TestServer::start().await;
    let report = bulkhead::cli::audit::run(&server.url, ADMIN).await.unwrap();
    assert!(report.leaks() > 0, "{}", report.to_text());
    let errors = report.layers.iter().find(|l| l.name == "errors").unwrap();
    let bulkhead::cli::audit::Outcome::Leak(found) = &errors.outcome else {
        panic!("{}", report.to_text());
    };
    assert!(
        found.iter().any(|f| f.contains("Get naming it succeeded")),
        "{found:?}"
    );
    // Only the broken RPC leaks.
    assert!(found.iter().all(|f| f.contains("Get")), "{found:?}");
    assert!(report.to_text().contains("leak(s) found"));
}
