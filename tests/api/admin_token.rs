//! The generated admin token: private on disk, never in the log; token
//! issue and revoke land in the audit log.

use std::os::unix::fs::PermissionsExt;

use bulkhead_client::{AdminClient, Metric};

use crate::common::serve;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generated_admin_token_is_private_and_never_logged() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, url, log) = serve(dir.path(), false);
    let file = dir.path().join("admin.token");
    let mode = fs_err::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let token = fs_err::read_to_string(&file).unwrap().trim().to_string();
    assert!(token.len() >= 40);

    let admin = AdminClient::connect(url.clone(), &token).await.unwrap();
    admin.create_tenant("audited", 2, Metric::L2).await.unwrap();
    let issued = admin.issue_token("audited").await.unwrap();
    admin.revoke_token(&issued.id).await.unwrap();
    assert!(
        AdminClient::connect(url, "not-the-admin-token-xxxx")
            .await
            .unwrap()
            .list_tenants()
            .await
            .is_err()
    );

    child.kill().unwrap();
    child.wait().unwrap();
    let log = log.lock().unwrap().join("\n");
    assert!(log.contains("admin.token"), "the log names the file: {log}");
    for secret in [&token, &issued.token] {
        assert!(!log.contains(secret.as_str()), "a secret is in the log");
    }
    let audit = fs_err::read_to_string(dir.path().join("audit.log")).unwrap();
    let events: Vec<serde_json::Value> = audit
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["tenant.create", "token.issue", "token.revoke"]);
    assert!(
        events[1..]
            .iter()
            .all(|e| e["token_id"] == issued.id.as_str() && e["tenant"] == "audited")
    );
    assert!(
        !audit.contains(&issued.token),
        "the audit log holds ids, not secrets"
    );
}
