//! Quotas, tenant residency (pin, warm, cool) and fair search scheduling,
//! over real gRPC.

use bulkhead::proto;
use serde_json::json;
use tonic::Code;

use crate::common::{ADMIN, TestServer, point, with_token};

fn spec() -> proto::TenantSpec {
    proto::TenantSpec {
        dimension: 4,
        metric: proto::Metric::L2 as i32,
        ..Default::default()
    }
}

async fn upsert(
    server: &TestServer,
    tenant: &str,
    token: &str,
    ids: std::ops::Range<usize>,
) -> Result<u64, tonic::Status> {
    let points = ids
        .map(|i| point(&format!("p{i}"), [i as f32, 1.0, 0.0, 0.0], json!({})))
        .collect();
    server
        .points()
        .upsert(with_token(
            proto::UpsertRequest {
                tenant: tenant.into(),
                points,
            },
            token,
        ))
        .await
        .map(|r| r.into_inner().upserted)
}

async fn count(server: &TestServer, tenant: &str, token: &str) -> Result<u64, tonic::Status> {
    server
        .points()
        .count(with_token(
            proto::CountRequest {
                tenant: tenant.into(),
                filter: None,
            },
            token,
        ))
        .await
        .map(|r| r.into_inner().count)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quotas_answer_resource_exhausted_naming_the_quota_and_only_the_callers_usage() {
    let server = TestServer::start().await;
    let capped = server
        .tenant_with_quotas(
            "capped",
            spec(),
            Some(proto::Quotas {
                max_points: 5,
                max_requests_per_second: 1_000,
                ..Default::default()
            }),
        )
        .await;
    let other = server.tenant("big-neighbour").await;
    upsert(&server, "big-neighbour", &other, 0..42)
        .await
        .unwrap();
    upsert(&server, "capped", &capped, 0..4).await.unwrap();
    let err = upsert(&server, "capped", &capped, 10..12)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted);
    assert!(
        err.message().contains("max_points (5)"),
        "{}",
        err.message()
    );
    assert!(
        err.message().contains("holds 4 points"),
        "{}",
        err.message()
    );
    assert!(
        !err.message().contains("42") && !err.message().contains("neighbour"),
        "{}",
        err.message()
    );
    assert_eq!(count(&server, "capped", &capped).await.unwrap(), 4);

    // The admin lowers the request rate: the next burst is refused.
    let info = server
        .admin()
        .set_quotas(with_token(
            proto::SetQuotasRequest {
                name: "capped".into(),
                quotas: Some(proto::Quotas {
                    max_points: 5,
                    max_requests_per_second: 2,
                    ..Default::default()
                }),
            },
            ADMIN,
        ))
        .await
        .unwrap()
        .into_inner()
        .tenant
        .unwrap();
    assert_eq!(info.quotas.unwrap().max_requests_per_second, 2);
    let mut refused = None;
    for _ in 0..5 {
        if let Err(e) = count(&server, "capped", &capped).await {
            refused = Some(e);
            break;
        }
    }
    let err = refused.expect("a burst over 2 requests/s is refused");
    assert_eq!(err.code(), Code::ResourceExhausted);
    assert!(
        err.message().contains("max_requests_per_second (2)"),
        "{}",
        err.message()
    );
    // The neighbour is untouched by it.
    for _ in 0..10 {
        count(&server, "big-neighbour", &other).await.unwrap();
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_pins_warms_and_cools_tenants_and_describe_does_not_load_them() {
    use bulkhead_client::{AdminClient, Error};

    let server = TestServer::start().await;
    let token = server.tenant("resident").await;
    upsert(&server, "resident", &token, 0..20).await.unwrap();
    // Through the Rust SDK's admin client.
    let admin = AdminClient::with_channel(server.channel.clone(), ADMIN).unwrap();
    let active = proto::TenantState::Active as i32;
    let cold = proto::TenantState::Cold as i32;
    let info = admin.describe_tenant("resident").await.unwrap();
    assert_eq!(info.state, active);
    assert!(info.resident_bytes > 0);
    assert!(info.payload_bytes > 0);

    let cooled = admin.cool_tenant("resident").await.unwrap();
    assert_eq!(cooled.state, cold);
    assert_eq!(cooled.resident_bytes, 0);
    assert_eq!(cooled.points, 20, "a cold tenant shows its last known size");
    let described = admin.describe_tenant("resident").await.unwrap();
    assert_eq!(described.state, cold, "describe left it cold");
    // The next request loads it, with everything in place.
    assert_eq!(count(&server, "resident", &token).await.unwrap(), 20);
    assert_eq!(
        admin.describe_tenant("resident").await.unwrap().state,
        active
    );

    // Pinned: cooling is refused and says why.
    assert!(admin.pin_tenant("resident", true).await.unwrap().pinned);
    match admin.cool_tenant("resident").await {
        Err(Error::InvalidArgument(message)) => assert!(message.contains("unpin"), "{message}"),
        other => panic!("cooling a pinned tenant: {other:?}"),
    }
    assert!(!admin.pin_tenant("resident", false).await.unwrap().pinned);
    admin.cool_tenant("resident").await.unwrap();
    // A search loads a cold tenant too (on the blocking pool, not on the
    // async worker that authorizes a loaded one).
    let hits = server
        .points()
        .search(with_token(
            proto::SearchRequest {
                tenant: "resident".into(),
                vector: vec![1.0, 0.0, 0.0, 0.0],
                k: 5,
                ..Default::default()
            },
            &token,
        ))
        .await
        .unwrap()
        .into_inner()
        .points;
    assert_eq!(hits.len(), 5);
    admin.cool_tenant("resident").await.unwrap();
    assert_eq!(admin.warm_tenant("resident").await.unwrap().state, active);
    // None of these is open to a tenant token, nor to a missing tenant.
    let as_tenant = AdminClient::with_channel(server.channel.clone(), &token).unwrap();
    assert!(matches!(
        as_tenant.warm_tenant("resident").await,
        Err(Error::PermissionDenied(_))
    ));
    assert!(matches!(
        admin.cool_tenant("nobody").await,
        Err(Error::NotFound(_))
    ));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_searches_over_the_quota_are_refused_not_queued() {
    let server = TestServer::start().await;
    let token = server
        .tenant_with_quotas(
            "narrow",
            spec(),
            Some(proto::Quotas {
                max_concurrent_searches: 1,
                ..Default::default()
            }),
        )
        .await;
    upsert(&server, "narrow", &token, 0..50).await.unwrap();
    let search = || {
        let mut points = server.points();
        let token = token.clone();
        async move {
            points
                .search(with_token(
                    proto::SearchRequest {
                        tenant: "narrow".into(),
                        vector: vec![1.0, 1.0, 0.0, 0.0],
                        k: 10,
                        ..Default::default()
                    },
                    &token,
                ))
                .await
        }
    };
    assert_eq!(search().await.unwrap().into_inner().points.len(), 10);
    // One search in flight (held open here, in the server's engine): the
    // next is refused at once, not queued behind it.
    let held = server
        .registry
        .tenant("narrow")
        .unwrap()
        .begin_search()
        .unwrap();
    let err = search().await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted);
    assert!(
        err.message().contains("max_concurrent_searches (1)"),
        "{}",
        err.message()
    );
    drop(held);
    assert_eq!(search().await.unwrap().into_inner().points.len(), 10);
    server.stop().await;
}
