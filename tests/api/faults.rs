//! Storage faults seen through the server: a failed write is INTERNAL with
//! a message that says it may be retried, nothing of it is applied, the
//! server keeps serving, and writes work again when the fault clears.

use std::sync::Arc;

use bulkhead::engine::EngineConfig;
use bulkhead::proto;
use bulkhead_storage::{FaultInjector, StorageOptions};
use serde_json::json;
use tonic::Code;

use crate::common::{TestServer, point, with_token};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storage_fault_is_internal_applies_nothing_and_clears() {
    let faults = Arc::new(FaultInjector::default());
    let config = EngineConfig {
        storage: StorageOptions {
            faults: Some(Arc::clone(&faults)),
            ..StorageOptions::default()
        },
        ..EngineConfig::default()
    };
    let server = TestServer::start_with_engine(config, bulkhead::api::Embedders::none()).await;
    let token = server.tenant("wobbly").await;
    let upsert = |ids: std::ops::Range<usize>| {
        let mut client = server.points();
        let points = ids
            .map(|i| point(&format!("p{i}"), [i as f32, 1.0, 0.0, 0.0], json!({})))
            .collect();
        let request = with_token(
            proto::UpsertRequest {
                tenant: "wobbly".into(),
                points,
            },
            &token,
        );
        async move { client.upsert(request).await }
    };
    let count = || {
        let mut client = server.points();
        let request = with_token(
            proto::CountRequest {
                tenant: "wobbly".into(),
                filter: None,
            },
            &token,
        );
        async move { client.count(request).await.unwrap().into_inner().count }
    };
    upsert(0..5).await.unwrap();
    faults.fail_from(1);
    for _ in 0..3 {
        let err = upsert(5..10).await.unwrap_err();
        assert_eq!(err.code(), Code::Internal);
        assert!(
            err.message().contains("may be retried"),
            "{}",
            err.message()
        );
        assert!(
            !err.message().contains("injected"),
            "no internals on the wire"
        );
    }
    // Reads keep working during the fault and see nothing of it.
    assert_eq!(count().await, 5);
    faults.clear();
    upsert(5..10).await.unwrap();
    assert_eq!(count().await, 10);
    server.stop().await;
}
