//! The auth matrix: every Points RPC x every kind of wrong credential.

use bulkhead::proto;
use serde_json::json;
use tonic::{Code, Status};

use crate::common::{ADMIN, TestServer, point, with_token};

const RPCS: [&str; 9] = [
    "upsert",
    "get",
    "delete",
    "count",
    "scroll",
    "search",
    "embed",
    "lineage",
    "access_log",
];

/// Calls one Points RPC naming `tenant`, with `token` (or none).
async fn call(
    server: &TestServer,
    rpc: &str,
    tenant: &str,
    token: Option<&str>,
) -> Result<(), Status> {
    let mut c = server.points();
    fn req<T>(m: T, token: Option<&str>) -> tonic::Request<T> {
        match token {
            Some(t) => with_token(m, t),
            None => tonic::Request::new(m),
        }
    }
    let tenant = tenant.to_string();
    match rpc {
        "upsert" => c
            .upsert(req(
                proto::UpsertRequest {
                    tenant,
                    points: vec![point("x", [1.0; 4], json!({}))],
                },
                token,
            ))
            .await
            .map(drop),
        "get" => c
            .get(req(
                proto::GetRequest {
                    tenant,
                    ids: vec!["secret".into()],
                    ..Default::default()
                },
                token,
            ))
            .await
            .map(drop),
        "delete" => c
            .delete(req(
                proto::DeleteRequest {
                    tenant,
                    selector: Some(proto::delete_request::Selector::Ids(proto::PointIds {
                        ids: vec!["secret".into()],
                    })),
                },
                token,
            ))
            .await
            .map(drop),
        "count" => c
            .count(req(
                proto::CountRequest {
                    tenant,
                    filter: None,
                },
                token,
            ))
            .await
            .map(drop),
        "scroll" => c
            .scroll(req(
                proto::ScrollRequest {
                    tenant,
                    ..Default::default()
                },
                token,
            ))
            .await
            .map(drop),
        "search" => c
            .search(req(
                proto::SearchRequest {
                    tenant,
                    vector: vec![1.0; 4],
                    k: 3,
                    ..Default::default()
                },
                token,
            ))
            .await
            .map(drop),
        "embed" => c
            .embed(req(
                proto::PointsServiceEmbedRequest {
                    tenant,
                    texts: vec!["the victim's words".into()],
                },
                token,
            ))
            .await
            .map(drop),
        "lineage" => c
            .lineage(req(proto::LineageRequest { tenant }, token))
            .await
            .map(drop),
        "access_log" => c
            .access_log(req(
                proto::AccessLogRequest {
                    tenant,
                    ..Default::default()
                },
                token,
            ))
            .await
            .map(drop),
        other => panic!("unknown rpc {other}"),
    }
}

/// The victim's point that every refused probe goes after.
async fn plant_secret(server: &TestServer, victim: &str) {
    let points = vec![point("secret", [0.5; 4], json!({"ssn": "123"}))];
    let request = proto::UpsertRequest {
        tenant: "victim".into(),
        points,
    };
    server
        .points()
        .upsert(with_token(request, victim))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invariant_1_every_points_rpc_refuses_every_wrong_credential() {
    let server = TestServer::start().await;
    let victim = server.tenant("victim").await;
    let attacker = server.tenant("attacker").await;
    let revoked = server.token("victim").await;
    let revoked_id = server
        .admin()
        .list_tokens(with_token(
            proto::ListTokensRequest {
                tenant: "victim".into(),
            },
            ADMIN,
        ))
        .await
        .unwrap()
        .into_inner()
        .tokens
        .into_iter()
        .map(|t| t.id)
        .find(|id| revoked.contains(id.as_str()))
        .unwrap();
    server
        .admin()
        .revoke_token(with_token(
            proto::RevokeTokenRequest { id: revoked_id },
            ADMIN,
        ))
        .await
        .unwrap();
    plant_secret(&server, &victim).await;

    for rpc in RPCS {
        let cases: [(&str, &str, Option<&str>, Code); 6] = [
            ("no token", "victim", None, Code::Unauthenticated),
            (
                "malformed",
                "victim",
                Some("bht_nothex_!!!"),
                Code::Unauthenticated,
            ),
            ("revoked", "victim", Some(&revoked), Code::Unauthenticated),
            ("admin token", "victim", Some(ADMIN), Code::Unauthenticated),
            (
                "another tenant's token",
                "victim",
                Some(&attacker),
                Code::PermissionDenied,
            ),
            (
                "nonexistent tenant",
                "ghost",
                Some(&attacker),
                Code::PermissionDenied,
            ),
        ];
        let mut foreign = None;
        for (case, tenant, token, code) in cases {
            let err = call(&server, rpc, tenant, token).await.expect_err(case);
            assert_eq!(err.code(), code, "{rpc} / {case}: {}", err.message());
            for name in ["victim", "ghost", "secret", "123"] {
                assert!(
                    !err.message().contains(name),
                    "{rpc} / {case} names {name}: {}",
                    err.message()
                );
            }
            match case {
                "another tenant's token" => foreign = Some(err),
                "nonexistent tenant" => {
                    let foreign = foreign.take().unwrap();
                    assert_eq!(err.code(), foreign.code(), "{rpc}");
                    assert_eq!(err.message(), foreign.message(), "{rpc}");
                    assert_eq!(err.details(), foreign.details(), "{rpc}");
                }
                _ => {}
            }
        }
        // The right token still works, and nothing was changed by the
        // refusals (this server has no encoder: the right token's embed
        // gets past the credential to the encoder's absence).
        match call(&server, rpc, "victim", Some(&victim)).await {
            Ok(()) => {}
            Err(e) if rpc == "embed" && e.code() == Code::FailedPrecondition => {}
            Err(e) => panic!("{rpc}: {e}"),
        }
        if rpc == "delete" {
            plant_secret(&server, &victim).await; // the right token deleted it
        }
    }
    let attacker_count = server
        .points()
        .count(with_token(
            proto::CountRequest {
                tenant: "attacker".into(),
                filter: None,
            },
            &attacker,
        ))
        .await
        .unwrap()
        .into_inner()
        .count;
    assert_eq!(
        attacker_count, 0,
        "the refused upserts wrote nothing into the attacker's tenant either"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_plane_needs_the_admin_token() {
    let server = TestServer::start().await;
    let tenant_token = server.tenant("acme").await;
    let mut admin = server.admin();
    let err = admin
        .list_tenants(tonic::Request::new(proto::ListTenantsRequest {}))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    let err = admin
        .list_tenants(with_token(proto::ListTenantsRequest {}, &tenant_token))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let err = admin
        .list_tenants(with_token(
            proto::ListTenantsRequest {},
            "wrong-admin-token-xxxxxxxx",
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    let tenants = admin
        .list_tenants(with_token(proto::ListTenantsRequest {}, ADMIN))
        .await
        .unwrap()
        .into_inner()
        .tenants;
    assert_eq!(tenants.len(), 1);
    assert_eq!(tenants[0].name, "acme");
    server.stop().await;
}
