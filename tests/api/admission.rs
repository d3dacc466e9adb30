//! Admission over real gRPC: every Points call of a tenant takes its turn
//! on the server's bounded workers, and a tenant that floods them has its
//! own queue refused with its own limit while another tenant is served.

use std::sync::Arc;

use bulkhead::api::{AdminApi, AdminToken, AdmissionLimits, Embedders, PointsApi};
use bulkhead::engine::EngineConfig;
use bulkhead::inflight::InflightBudget;
use bulkhead::proto;
use bulkhead::server::Services;
use serde_json::json;
use tonic::Code;

use crate::common::{ADMIN, TestServer, point, with_token};

/// A server with one worker, and two requests allowed to wait per tenant.
async fn narrow_server() -> TestServer {
    // Exact scans only: no background graph build competes for the CPU.
    let config = EngineConfig {
        full_scan_points: usize::MAX,
        ..EngineConfig::default()
    };
    TestServer::start_with_services(config, |registry| {
        let embedders = Arc::new(Embedders::none());
        Services {
            points: PointsApi::with_limits(
                Arc::clone(registry),
                Arc::clone(&embedders),
                AdmissionLimits {
                    workers: 1,
                    queued_per_tenant: 2,
                    loaders: 1,
                },
            ),
            admin: AdminApi::new(
                Arc::clone(registry),
                AdminToken::new(ADMIN).unwrap(),
                embedders,
            ),
            metrics: bulkhead::metrics::Metrics::new(),
        }
    })
    .await
}

fn grouped(from: usize, n: usize) -> Vec<proto::Point> {
    (from..from + n)
        .map(|i| {
            point(
                &format!("p{i}"),
                [i as f32, 1.0, 0.0, 0.0],
                json!({ "group": i % 7 }),
            )
        })
        .collect()
}

fn has_group() -> proto::Filter {
    proto::Filter {
        must: vec![proto::Condition {
            condition: Some(proto::condition::Condition::HasField("group".into())),
        }],
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_filtered_counts_is_bounded_by_the_tenant_own_queue() {
    let server = narrow_server().await;
    let flood = server.tenant("flood").await;
    let quiet = server.tenant("quiet").await;
    for batch in 0..6 {
        let request = proto::UpsertRequest {
            tenant: "flood".into(),
            points: grouped(batch * 10_000, 10_000),
        };
        server
            .points()
            .upsert(with_token(request, &flood))
            .await
            .unwrap();
    }
    let request = proto::UpsertRequest {
        tenant: "quiet".into(),
        points: grouped(0, 10),
    };
    server
        .points()
        .upsert(with_token(request, &quiet))
        .await
        .unwrap();
    // The quiet tenant counts, one call at a time, during the flood.
    let quiet_counts = {
        let (mut points, token) = (server.points(), quiet.clone());
        tokio::spawn(async move {
            let mut counts = Vec::new();
            for _ in 0..5 {
                let request = proto::CountRequest {
                    tenant: "quiet".into(),
                    filter: Some(has_group()),
                };
                counts.push(points.count(with_token(request, &token)).await);
            }
            counts
        })
    };
    // 100 filtered counts at once, each a scan of 60,000 payloads.
    let mut counts = tokio::task::JoinSet::new();
    for _ in 0..100 {
        let (mut points, token) = (server.points(), flood.clone());
        counts.spawn(async move {
            let request = proto::CountRequest {
                tenant: "flood".into(),
                filter: Some(has_group()),
            };
            points.count(with_token(request, &token)).await
        });
    }
    let (mut served, mut refused) = (0, 0);
    while let Some(answer) = counts.join_next().await {
        match answer.unwrap() {
            Ok(count) => {
                assert_eq!(count.into_inner().count, 60_000);
                served += 1;
            }
            Err(status) => {
                assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
                let message = status.message();
                assert!(
                    message.contains("this tenant already has 2 requests waiting"),
                    "{message}"
                );
                assert!(!message.contains("quiet"), "{message}");
                refused += 1;
            }
        }
    }
    assert!(
        refused > 0,
        "all {served} concurrent counts ran: nothing bounds one tenant's queue"
    );
    // The other tenant was never refused: its queue is its own.
    for count in quiet_counts.await.unwrap() {
        assert_eq!(count.unwrap().into_inner().count, 10);
    }
    server.stop().await;
}

/// Request bytes in flight are bounded across calls: eight upserts of about
/// 1.5 MiB each, sent at once, are read and run at most two at a time under
/// a 4 MiB budget, and every one succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_bytes_in_flight_stay_within_the_node_budget() {
    let budget = InflightBudget::new(4 << 20);
    let server = TestServer::start_with_budget(
        EngineConfig::default(),
        |registry| Services::new(registry, AdminToken::new(ADMIN).unwrap(), Embedders::none()),
        Arc::clone(&budget),
    )
    .await;
    let token = server.tenant("bulky").await;
    let blob = "x".repeat(50_000);
    let calls: Vec<_> = (0..8)
        .map(|c| {
            let points = (0..30)
                .map(|i| {
                    point(
                        &format!("c{c}-{i}"),
                        [c as f32, i as f32, 0.0, 1.0],
                        json!({ "blob": blob }),
                    )
                })
                .collect();
            let request = with_token(
                proto::UpsertRequest {
                    tenant: "bulky".into(),
                    points,
                },
                &token,
            );
            let mut client = server.points();
            tokio::spawn(async move { client.upsert(request).await })
        })
        .collect();
    for call in calls {
        call.await.unwrap().unwrap();
    }
    let peak = budget.peak();
    assert!(peak >= 1_500_000, "no call reserved its bytes: peak {peak}");
    assert!(
        peak <= 4 << 20,
        "{peak} request bytes were in flight at once; the budget is {}",
        4 << 20
    );
    server.stop().await;
}
