//! Every error a tenant can receive on the data plane, driven one by one:
//! none names another tenant, its point ids, or its counts.

use bulkhead::proto;
use serde_json::json;
use tonic::Code;

use crate::common::{ADMIN, TestServer, point, with_token};

const VICTIM: &str = "zz-victim-tenant";
const VICTIM_POINTS: usize = 777;

/// The victim's marks: its name, an id prefix and its point count.
fn names_the_victim(message: &str) -> bool {
    message.contains(VICTIM)
        || message.contains("victim")
        || message.contains("vsecret")
        || message.contains(&VICTIM_POINTS.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_error_a_tenant_can_receive_names_another_tenant() {
    let server = TestServer::start().await;
    let victim = server.tenant(VICTIM).await;
    let victim_points: Vec<proto::Point> = (0..VICTIM_POINTS)
        .map(|i| {
            point(
                &format!("vsecret-{i}"),
                [i as f32, 1.0, 0.5, 0.0],
                json!({"owner": "victim"}),
            )
        })
        .collect();
    server
        .points()
        .upsert(with_token(
            proto::UpsertRequest {
                tenant: VICTIM.into(),
                points: victim_points,
            },
            &victim,
        ))
        .await
        .unwrap();
    let victim_cursor = server
        .points()
        .scroll(with_token(
            proto::ScrollRequest {
                tenant: VICTIM.into(),
                limit: 10,
                ..Default::default()
            },
            &victim,
        ))
        .await
        .unwrap()
        .into_inner()
        .next_cursor;
    let me = "caller";
    let token = server
        .tenant_with_quotas(
            me,
            proto::TenantSpec {
                dimension: 4,
                metric: proto::Metric::Cosine as i32,
                ..Default::default()
            },
            Some(proto::Quotas {
                max_points: 3,
                max_payload_bytes: 200,
                ..Default::default()
            }),
        )
        .await;
    let revoked = {
        let issued = server
            .admin()
            .issue_token(with_token(
                proto::IssueTokenRequest { tenant: me.into() },
                ADMIN,
            ))
            .await
            .unwrap()
            .into_inner();
        server
            .admin()
            .revoke_token(with_token(
                proto::RevokeTokenRequest { id: issued.id },
                ADMIN,
            ))
            .await
            .unwrap();
        issued.token
    };
    let good = |id: &str| point(id, [0.1, 0.2, 0.3, 0.4], json!({}));
    let upsert = |tenant: &str, token: &str, points: Vec<proto::Point>| {
        let mut client = server.points();
        let request = with_token(
            proto::UpsertRequest {
                tenant: tenant.into(),
                points,
            },
            token,
        );
        async move { client.upsert(request).await.map(|_| ()) }
    };
    let search = |request: proto::SearchRequest, token: &str| {
        let mut client = server.points();
        let request = with_token(request, token);
        async move { client.search(request).await.map(|_| ()) }
    };
    let base_search = || proto::SearchRequest {
        tenant: me.into(),
        vector: vec![0.1, 0.2, 0.3, 0.4],
        k: 5,
        ..Default::default()
    };
    upsert(me, &token, vec![good("mine-1"), good("mine-2")])
        .await
        .unwrap();

    let mut errors: Vec<(&str, Result<(), tonic::Status>)> = Vec::new();
    // Upsert: every way a batch is bad, and the quotas.
    errors.push(("empty batch", upsert(me, &token, vec![]).await));
    let mut wrong_dim = good("a");
    wrong_dim.vector = vec![1.0; 5];
    errors.push(("wrong dimension", upsert(me, &token, vec![wrong_dim]).await));
    let mut nan = good("a");
    nan.vector[0] = f32::NAN;
    errors.push(("NaN", upsert(me, &token, vec![nan]).await));
    let mut zero = good("a");
    zero.vector = vec![0.0; 4];
    errors.push(("zero under cosine", upsert(me, &token, vec![zero]).await));
    errors.push(("empty id", upsert(me, &token, vec![good("")]).await));
    errors.push((
        "long id",
        upsert(me, &token, vec![good(&"x".repeat(300))]).await,
    ));
    let mut no_vector = good("a");
    no_vector.vector = vec![];
    errors.push((
        "no vector, no text",
        upsert(me, &token, vec![no_vector]).await,
    ));
    let mut text_only = good("a");
    text_only.vector = vec![];
    text_only.text = "needs an embedder".into();
    errors.push((
        "text without embedder",
        upsert(me, &token, vec![text_only]).await,
    ));
    errors.push((
        "max_points quota",
        upsert(me, &token, vec![good("n1"), good("n2")]).await,
    ));
    let big = point(
        "mine-1",
        [0.1, 0.2, 0.3, 0.4],
        json!({"blob": "y".repeat(300)}),
    );
    errors.push((
        "max_payload_bytes quota",
        upsert(me, &token, vec![big]).await,
    ));
    errors.push((
        "too many points",
        upsert(
            me,
            &token,
            (0..10_001).map(|i| good(&format!("m{i}"))).collect(),
        )
        .await,
    ));
    // Get, delete, count, scroll.
    let mut client = server.points();
    errors.push((
        "get too many ids",
        client
            .get(with_token(
                proto::GetRequest {
                    tenant: me.into(),
                    ids: (0..10_001).map(|i| format!("g{i}")).collect(),
                    ..Default::default()
                },
                &token,
            ))
            .await
            .map(|_| ()),
    ));
    errors.push((
        "delete without selector",
        client
            .delete(with_token(
                proto::DeleteRequest {
                    tenant: me.into(),
                    selector: None,
                },
                &token,
            ))
            .await
            .map(|_| ()),
    ));
    let bad_filter = proto::Filter {
        must: vec![proto::Condition {
            condition: Some(proto::condition::Condition::Field(proto::FieldCondition {
                key: String::new(),
                ..Default::default()
            })),
        }],
        ..Default::default()
    };
    errors.push((
        "count with a bad filter",
        client
            .count(with_token(
                proto::CountRequest {
                    tenant: me.into(),
                    filter: Some(bad_filter.clone()),
                },
                &token,
            ))
            .await
            .map(|_| ()),
    ));
    for (what, limit, cursor) in [
        ("scroll limit", 5_000, String::new()),
        ("scroll with garbage cursor", 10, "garbage".to_string()),
        ("scroll with the victim's cursor", 10, victim_cursor.clone()),
    ] {
        errors.push((
            what,
            client
                .scroll(with_token(
                    proto::ScrollRequest {
                        tenant: me.into(),
                        limit,
                        cursor,
                        ..Default::default()
                    },
                    &token,
                ))
                .await
                .map(|_| ()),
        ));
    }
    // Search.
    errors.push((
        "k too big",
        search(
            proto::SearchRequest {
                k: 5_000,
                ..base_search()
            },
            &token,
        )
        .await,
    ));
    errors.push((
        "ef too big",
        search(
            proto::SearchRequest {
                ef: 100_000,
                ..base_search()
            },
            &token,
        )
        .await,
    ));
    errors.push((
        "query dimension",
        search(
            proto::SearchRequest {
                vector: vec![1.0; 3],
                ..base_search()
            },
            &token,
        )
        .await,
    ));
    errors.push((
        "vector and text",
        search(
            proto::SearchRequest {
                text: "both".into(),
                ..base_search()
            },
            &token,
        )
        .await,
    ));
    errors.push((
        "text without embedder",
        search(
            proto::SearchRequest {
                vector: vec![],
                text: "q".into(),
                ..base_search()
            },
            &token,
        )
        .await,
    ));
    errors.push((
        "search filter",
        search(
            proto::SearchRequest {
                filter: Some(bad_filter),
                ..base_search()
            },
            &token,
        )
        .await,
    ));
    errors.push((
        "embed nothing",
        client
            .embed(with_token(
                proto::PointsServiceEmbedRequest {
                    tenant: me.into(),
                    texts: vec![],
                },
                &token,
            ))
            .await
            .map(|_| ()),
    ));
    errors.push((
        "embed without embedder",
        client
            .embed(with_token(
                proto::PointsServiceEmbedRequest {
                    tenant: me.into(),
                    texts: vec!["t".into()],
                },
                &token,
            ))
            .await
            .map(|_| ()),
    ));
    // Credentials: every wrong way in, including the victim's name.
    errors.push(("no tenant", upsert("", &token, vec![good("a")]).await));
    errors.push((
        "the victim's name",
        upsert(VICTIM, &token, vec![good("a")]).await,
    ));
    errors.push((
        "a missing tenant",
        upsert("nobody-here", &token, vec![good("a")]).await,
    ));
    errors.push((
        "a bad tenant name",
        upsert("Bad Name!", &token, vec![good("a")]).await,
    ));
    errors.push((
        "a revoked token",
        upsert(me, &revoked, vec![good("a")]).await,
    ));
    errors.push((
        "a garbage token",
        upsert(me, "bht_garbage", vec![good("a")]).await,
    ));
    errors.push(("the admin token", upsert(me, ADMIN, vec![good("a")]).await));
    errors.push((
        "the victim's token",
        upsert(me, &victim, vec![good("a")]).await,
    ));
    // The rate quota, set now so the calls above were not refused by it.
    server
        .admin()
        .set_quotas(with_token(
            proto::SetQuotasRequest {
                name: me.into(),
                quotas: Some(proto::Quotas {
                    max_requests_per_second: 1,
                    ..Default::default()
                }),
            },
            ADMIN,
        ))
        .await
        .unwrap();
    let mut rate = Ok(());
    for _ in 0..5 {
        rate = search(base_search(), &token).await;
        if rate.is_err() {
            break;
        }
    }
    errors.push(("max_requests_per_second quota", rate));

    let mut codes = std::collections::BTreeMap::new();
    for (what, result) in &errors {
        let status = result
            .as_ref()
            .err()
            .unwrap_or_else(|| panic!("{what}: expected an error"));
        assert!(
            !names_the_victim(status.message()),
            "{what}: {:?} {}",
            status.code(),
            status.message()
        );
        assert!(!status.message().is_empty(), "{what}: an empty message");
        *codes.entry(format!("{:?}", status.code())).or_insert(0) += 1;
    }
    // The paths above cover the codes a tenant can get.
    for code in [
        Code::InvalidArgument,
        Code::PermissionDenied,
        Code::Unauthenticated,
        Code::ResourceExhausted,
        Code::FailedPrecondition,
    ] {
        assert!(
            codes.contains_key(&format!("{code:?}")),
            "{code:?} not driven: {codes:?}"
        );
    }
    assert_eq!(errors.len(), 34, "error paths driven");
    server.stop().await;
}
