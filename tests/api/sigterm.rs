//! The real binary, stopped with SIGTERM while a client writes: it exits
//! cleanly and every acknowledged write is there after a restart.

use std::process::Command;

use bulkhead::proto;
use bulkhead::proto::admin_service_client::AdminServiceClient;
use bulkhead::proto::points_service_client::PointsServiceClient;
use serde_json::json;

use crate::common::{ADMIN, point, serve, with_token};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_writes_loses_no_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, url, _) = serve(dir.path(), true);
    let mut admin = AdminServiceClient::connect(url.clone()).await.unwrap();
    let spec = proto::TenantSpec {
        dimension: 4,
        metric: proto::Metric::Cosine as i32,
        ..Default::default()
    };
    admin
        .create_tenant(with_token(
            proto::CreateTenantRequest {
                name: "steady".into(),
                spec: Some(spec),
                quotas: None,
                contract: None,
            },
            ADMIN,
        ))
        .await
        .unwrap();
    let token = admin
        .issue_token(with_token(
            proto::IssueTokenRequest {
                tenant: "steady".into(),
            },
            ADMIN,
        ))
        .await
        .unwrap()
        .into_inner()
        .token;

    let writer = {
        let (url, token) = (url.clone(), token.clone());
        tokio::spawn(async move {
            let mut points = PointsServiceClient::connect(url).await.unwrap();
            let mut acked = Vec::new();
            for batch in 0..10_000 {
                let pts = (0..10)
                    .map(|i| {
                        point(
                            &format!("b{batch}-{i}"),
                            [1.0, batch as f32, i as f32, 1.0],
                            json!({"batch": batch}),
                        )
                    })
                    .collect();
                match points
                    .upsert(with_token(
                        proto::UpsertRequest {
                            tenant: "steady".into(),
                            points: pts,
                        },
                        &token,
                    ))
                    .await
                {
                    Ok(_) => acked.push(batch),
                    Err(_) => break,
                }
            }
            acked
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert!(
        exit.success(),
        "the server exits cleanly on SIGTERM: {exit}"
    );
    let acked = writer.await.unwrap();
    assert!(
        !acked.is_empty(),
        "some writes were acknowledged before the signal"
    );

    let (mut child, url, _) = serve(dir.path(), true);
    let mut points = PointsServiceClient::connect(url).await.unwrap();
    let count = points
        .count(with_token(
            proto::CountRequest {
                tenant: "steady".into(),
                filter: None,
            },
            &token,
        ))
        .await
        .unwrap()
        .into_inner()
        .count;
    assert!(
        count >= 10 * acked.len() as u64,
        "{count} points for {} acknowledged batches",
        acked.len()
    );
    for batch in [acked[0], acked[acked.len() / 2], *acked.last().unwrap()] {
        let ids: Vec<String> = (0..10).map(|i| format!("b{batch}-{i}")).collect();
        let got = points
            .get(with_token(
                proto::GetRequest {
                    tenant: "steady".into(),
                    ids,
                    ..Default::default()
                },
                &token,
            ))
            .await
            .unwrap()
            .into_inner()
            .points;
        assert_eq!(got.len(), 10, "batch {batch}");
    }
    child.kill().unwrap();
    child.wait().unwrap();
}
