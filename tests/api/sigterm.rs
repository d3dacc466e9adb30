//! The real binary, stopped with SIGTERM while a client writes: it exits
//! cleanly and every acknowledged write is there after a restart.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use bulkhead::proto;
use bulkhead::proto::admin_service_client::AdminServiceClient;
use bulkhead::proto::points_service_client::PointsServiceClient;
use serde_json::json;

use crate::common::{ADMIN, point, with_token};

/// Starts `bulkhead serve` on an ephemeral port; returns it and its address.
fn serve(dir: &std::path::Path) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_bulkhead"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .env("BULKHEAD_ADMIN_TOKEN", ADMIN)
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next().expect("server exited before serving").unwrap();
        if let Some(rest) = line
            .split("addr=")
            .nth(1)
            .filter(|_| line.contains("serving"))
        {
            break rest.split_whitespace().next().unwrap().to_string();
        }
    };
    // Keep draining the log so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (child, format!("http://{addr}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_writes_loses_no_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, url) = serve(dir.path());
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

    let (mut child, url) = serve(dir.path());
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
