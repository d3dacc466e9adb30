use bulkhead::proto;
use serde_json::json;

use crate::common::{Auth, TestServer, point};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_crud_and_search_over_grpc() {
    let server = TestServer::start().await;
    let token = server.tenant("acme").await;
    let mut points = server.points();
    let t = Auth(&token);

    let up = points
        .upsert(t.r(proto::UpsertRequest {
            tenant: "acme".into(),
            points: vec![
                point("a", [1.0, 0.0, 0.0, 0.0], json!({"color": "red", "n": 1})),
                point("b", [0.0, 1.0, 0.0, 0.0], json!({"color": "blue", "n": 2})),
                proto::Point {
                    text: "the third document".into(),
                    ..point(
                        "c",
                        [0.0, 0.0, 1.0, 0.0],
                        json!({"color": "red", "n": 3, "tags": ["x", "y"]}),
                    )
                },
            ],
        }))
        .await
        .unwrap();
    assert_eq!(up.into_inner().upserted, 3);

    let got = points
        .get(t.r(proto::GetRequest {
            tenant: "acme".into(),
            ids: vec!["c".into(), "zz".into()],
            with_payload: true,
            with_vector: true,
        }))
        .await
        .unwrap()
        .into_inner()
        .points;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].vector, [0.0, 0.0, 1.0, 0.0]);
    assert_eq!(got[0].text, "the third document");
    let payload = got[0].payload.as_ref().unwrap();
    assert!(payload.fields.contains_key("tags"));

    let red = proto::Filter {
        must: vec![proto::Condition {
            condition: Some(proto::condition::Condition::Field(proto::FieldCondition {
                key: "color".into(),
                condition: Some(proto::field_condition::Condition::Match(
                    proto::MatchValue {
                        value: Some(proto::match_value::Value::Keyword("red".into())),
                    },
                )),
            })),
        }],
        ..Default::default()
    };
    let hits = points
        .search(t.r(proto::SearchRequest {
            tenant: "acme".into(),
            vector: vec![0.1, 0.9, 0.0, 0.0],
            k: 2,
            filter: Some(red.clone()),
            with_payload: true,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner()
        .points;
    let ids: Vec<&str> = hits.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, ["a", "c"], "the filter excluded b, the nearest point");

    let count = points
        .count(t.r(proto::CountRequest {
            tenant: "acme".into(),
            filter: Some(red.clone()),
        }))
        .await
        .unwrap()
        .into_inner()
        .count;
    assert_eq!(count, 2);

    // Integer payloads sent as Struct numbers match integer filters.
    let n3 = proto::Filter {
        must: vec![proto::Condition {
            condition: Some(proto::condition::Condition::Field(proto::FieldCondition {
                key: "n".into(),
                condition: Some(proto::field_condition::Condition::Match(
                    proto::MatchValue {
                        value: Some(proto::match_value::Value::Integer(3)),
                    },
                )),
            })),
        }],
        ..Default::default()
    };
    let deleted = points
        .delete(t.r(proto::DeleteRequest {
            tenant: "acme".into(),
            selector: Some(proto::delete_request::Selector::Filter(n3)),
        }))
        .await
        .unwrap()
        .into_inner()
        .deleted;
    assert_eq!(deleted, 1);

    let page = points
        .scroll(t.r(proto::ScrollRequest {
            tenant: "acme".into(),
            limit: 1,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page.points[0].id, "a");
    let page = points
        .scroll(t.r(proto::ScrollRequest {
            tenant: "acme".into(),
            limit: 1,
            cursor: page.next_cursor,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page.points[0].id, "b");
    assert!(page.next_cursor.is_empty());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_invalid_argument_with_a_message_and_loses_nothing() {
    let server = TestServer::start().await;
    let token = server.tenant("acme").await;
    let mut points = server.points();
    let t = Auth(&token);
    points
        .upsert(t.r(proto::UpsertRequest {
            tenant: "acme".into(),
            points: vec![point("keep", [1.0, 2.0, 3.0, 4.0], json!({}))],
        }))
        .await
        .unwrap();
    let cases = [
        (
            vec![
                point("ok", [1.0; 4], json!({})),
                proto::Point {
                    id: "short".into(),
                    vector: vec![1.0],
                    ..Default::default()
                },
            ],
            "point 1: vector has 1 dimensions",
        ),
        (
            vec![point("nan", [f32::NAN, 0.0, 0.0, 0.0], json!({}))],
            "point 0: vector element 0 is NaN",
        ),
        (vec![point("", [1.0; 4], json!({}))], "point 0: id is empty"),
    ];
    for (batch, needle) in cases {
        let err = points
            .upsert(t.r(proto::UpsertRequest {
                tenant: "acme".into(),
                points: batch,
            }))
            .await
            .unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument);
        assert!(err.message().contains(needle), "{}", err.message());
    }
    let err = points
        .search(t.r(proto::SearchRequest {
            tenant: "acme".into(),
            vector: vec![1.0; 4],
            k: 5000,
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(err.message().contains("k must be between 1 and 1024"));
    let err = points
        .count(t.r(proto::CountRequest {
            tenant: String::new(),
            filter: None,
        }))
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), err.message()),
        (tonic::Code::InvalidArgument, "tenant is required")
    );
    let count = points
        .count(t.r(proto::CountRequest {
            tenant: "acme".into(),
            filter: None,
        }))
        .await
        .unwrap()
        .into_inner()
        .count;
    assert_eq!(count, 1, "nothing of the rejected batches was written");
    server.stop().await;
}
