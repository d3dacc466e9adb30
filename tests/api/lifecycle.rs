use bulkhead::proto;
use serde_json::json;
use tonic::Code;

use crate::common::{ADMIN, TestServer, point, with_token};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cursor_is_refused_by_another_tenant_like_a_foreign_request() {
    let server = TestServer::start().await;
    let a = server.tenant("tenant-a").await;
    let b = server.tenant("tenant-b").await;
    let pts: Vec<proto::Point> = (0..5)
        .map(|i| point(&format!("p{i}"), [i as f32, 1.0, 0.0, 0.0], json!({})))
        .collect();
    for (tenant, token) in [("tenant-a", &a), ("tenant-b", &b)] {
        server
            .points()
            .upsert(with_token(
                proto::UpsertRequest {
                    tenant: tenant.into(),
                    points: pts.clone(),
                },
                token,
            ))
            .await
            .unwrap();
    }
    let cursor = server
        .points()
        .scroll(with_token(
            proto::ScrollRequest {
                tenant: "tenant-a".into(),
                limit: 2,
                ..Default::default()
            },
            &a,
        ))
        .await
        .unwrap()
        .into_inner()
        .next_cursor;
    assert!(!cursor.is_empty());
    let err = server
        .points()
        .scroll(with_token(
            proto::ScrollRequest {
                tenant: "tenant-b".into(),
                limit: 2,
                cursor: cursor.clone(),
                ..Default::default()
            },
            &b,
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert!(!err.message().contains("tenant-a"));
    // Still good for its own tenant.
    let page = server
        .points()
        .scroll(with_token(
            proto::ScrollRequest {
                tenant: "tenant-a".into(),
                limit: 2,
                cursor,
                ..Default::default()
            },
            &a,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        page.points
            .iter()
            .map(|p| p.id.as_str())
            .collect::<Vec<_>>(),
        ["p2", "p3"]
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_and_recreate_kills_old_tokens_and_old_data() {
    let server = TestServer::start().await;
    let old = server.tenant("reborn").await;
    server
        .points()
        .upsert(with_token(
            proto::UpsertRequest {
                tenant: "reborn".into(),
                points: vec![point("old", [1.0; 4], json!({"v": 1}))],
            },
            &old,
        ))
        .await
        .unwrap();
    server
        .admin()
        .drop_tenant(with_token(
            proto::DropTenantRequest {
                name: "reborn".into(),
            },
            ADMIN,
        ))
        .await
        .unwrap();
    let new = server.tenant("reborn").await;
    let err = server
        .points()
        .count(with_token(
            proto::CountRequest {
                tenant: "reborn".into(),
                filter: None,
            },
            &old,
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated, "{}", err.message());
    let mut c = server.points();
    let count = c
        .count(with_token(
            proto::CountRequest {
                tenant: "reborn".into(),
                filter: None,
            },
            &new,
        ))
        .await
        .unwrap()
        .into_inner()
        .count;
    assert_eq!(count, 0);
    let got = c
        .get(with_token(
            proto::GetRequest {
                tenant: "reborn".into(),
                ids: vec!["old".into()],
                ..Default::default()
            },
            &new,
        ))
        .await
        .unwrap()
        .into_inner()
        .points;
    assert!(got.is_empty());
    // Admin errors for a missing tenant are plain not-found.
    let err = server
        .admin()
        .describe_tenant(with_token(
            proto::DescribeTenantRequest {
                name: "nope".into(),
            },
            ADMIN,
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_serves_and_reflection_lists_the_services() {
    use tonic_health::pb::health_client::HealthClient;
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    let server = TestServer::start().await;
    let mut health = HealthClient::new(server.channel.clone());
    for service in ["", "bulkhead.v1.PointsService", "bulkhead.v1.AdminService"] {
        let status = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .status;
        assert_eq!(
            status,
            tonic_health::pb::health_check_response::ServingStatus::Serving as i32,
            "{service:?}"
        );
    }
    let mut reflection = ServerReflectionClient::new(server.channel.clone());
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = reflection
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .unwrap()
        .into_inner();
    let response = responses.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("unexpected reflection response");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for expected in [
        "bulkhead.v1.PointsService",
        "bulkhead.v1.AdminService",
        "grpc.health.v1.Health",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing from {names:?}"
        );
    }
    server.stop().await;
}
