//! The Rust SDK against the real server.

use bulkhead_client::{AdminClient, Condition, Error, Filter, Metric, Point, TenantClient, proto};
use serde_json::json;

use crate::common::{ADMIN, TestServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crud_and_search_through_the_sdk() {
    let server = TestServer::start().await;
    let admin = AdminClient::with_channel(server.channel.clone(), ADMIN).unwrap();
    let info = admin
        .create_tenant("shop", 3, Metric::Cosine)
        .await
        .unwrap();
    assert_eq!(info.spec.unwrap().dimension, 3);
    let issued = admin.issue_token("shop").await.unwrap();
    let shop = TenantClient::with_channel(server.channel.clone(), "shop", &issued.token).unwrap();

    let points = vec![
        Point::new("shoe", vec![1.0, 0.1, 0.0]).payload(json!({"kind": "apparel", "price": 80})),
        Point::new("hat", vec![0.9, 0.3, 0.0]).payload(json!({"kind": "apparel", "price": 20})),
        Point::new("lamp", vec![0.0, 0.2, 1.0])
            .payload(json!({"kind": "home", "price": 45}))
            .text("a reading lamp"),
    ];
    assert_eq!(shop.upsert(points).await.unwrap(), 3);
    assert_eq!(shop.count(None).await.unwrap(), 3);

    let cheap_apparel = Filter::must([
        Condition::matches("kind", "apparel"),
        Condition::range(
            "price",
            proto::Range {
                lt: Some(50.0),
                ..Default::default()
            },
        ),
    ]);
    let hits = shop
        .search(vec![1.0, 0.0, 0.0])
        .k(3)
        .filter(cheap_apparel.clone())
        .with_payload()
        .send()
        .await
        .unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].id, "hat");
    assert_eq!(hits[0].payload.as_ref().unwrap()["price"], 20);

    let all = shop.search(vec![1.0, 0.0, 0.0]).k(10).send().await.unwrap();
    assert_eq!(
        all.iter().map(|h| h.id.as_str()).collect::<Vec<_>>(),
        ["shoe", "hat", "lamp"]
    );

    let got = shop.get(vec!["lamp".into()], true, true).await.unwrap();
    assert_eq!(got[0].vector, [0.0, 0.2, 1.0]);
    assert_eq!(got[0].text.as_deref(), Some("a reading lamp"));
    let page = shop.scroll(None, 2, None).await.unwrap();
    assert_eq!(page.points.len(), 2);
    let rest = shop.scroll(page.next_cursor, 2, None).await.unwrap();
    assert_eq!(rest.points.len(), 1);
    assert!(rest.next_cursor.is_none());

    assert_eq!(shop.delete_by_filter(cheap_apparel).await.unwrap(), 1);
    assert_eq!(
        shop.delete(vec!["shoe".into(), "nope".into()])
            .await
            .unwrap(),
        1
    );
    assert_eq!(shop.count(None).await.unwrap(), 1);

    // Typed errors carry the server's message.
    match shop.search(vec![1.0]).send().await {
        Err(Error::InvalidArgument(message)) => assert!(message.contains("3"), "{message}"),
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
    admin.revoke_token(&issued.id).await.unwrap();
    assert!(matches!(
        shop.count(None).await,
        Err(Error::Unauthenticated(_))
    ));
    let tokens = admin.list_tokens("shop").await.unwrap();
    assert!(tokens.iter().any(|t| t.id == issued.id && t.revoked));
    assert!(matches!(
        TenantClient::with_channel(server.channel.clone(), "", "x"),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        TenantClient::with_channel(server.channel.clone(), "shop", " "),
        Err(Error::InvalidArgument(_))
    ));
    server.stop().await;
}

#[test]
fn the_sdk_knows_the_servers_batch_limit() {
    assert_eq!(
        bulkhead_client::MAX_BATCH_POINTS,
        bulkhead::engine::MAX_BATCH_POINTS
    );
}
