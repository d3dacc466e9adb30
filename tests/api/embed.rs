//! Text to vectors through the server and the real sidecar binary: a tenant's
//! texts go to the sidecar of its trust class, and a class without one is
//! refused with FAILED_PRECONDITION.

use std::collections::HashMap;
use std::process::{Child, Command};

use bulkhead::api::Embedders;
use bulkhead::proto;
use tonic::Code;

use crate::common::{Auth, TestServer, spawn_serving};

const SECRET: &str = "embedder-secret-for-tests-0123";

/// The `bulkhead-embedder` binary beside `bulkhead`, on an ephemeral port.
fn sidecar() -> (Child, String) {
    let binary =
        std::path::Path::new(env!("CARGO_BIN_EXE_bulkhead")).with_file_name("bulkhead-embedder");
    assert!(
        binary.exists(),
        "{} is missing: cargo build --release -p bulkhead-embedder",
        binary.display()
    );
    let mut command = Command::new(binary);
    command.args([
        "--listen",
        "127.0.0.1:0",
        "--trust-classes",
        "default",
        "--secret",
        SECRET,
    ]);
    let (child, url, _) = spawn_serving(command);
    (child, url)
}

async fn create(server: &TestServer, name: &str, trust_class: &str) -> String {
    let spec = proto::TenantSpec {
        dimension: 384,
        metric: proto::Metric::Cosine as i32,
        trust_class: trust_class.into(),
        ..Default::default()
    };
    server.tenant_with(name, spec).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn texts_are_embedded_by_the_sidecar_of_the_tenants_class() {
    let (mut child, url) = sidecar();
    let urls = HashMap::from([("default".to_string(), url)]);
    let server = TestServer::start_with(Embedders::new(SECRET.into(), &urls).unwrap()).await;
    let texty = create(&server, "texty", "default").await;
    let locked = create(&server, "locked", "regulated").await;

    let texts = vec![
        "a flooded compartment".to_string(),
        "the quarterly report".to_string(),
    ];
    let answer = server
        .points()
        .embed(Auth(&texty).r(proto::PointsServiceEmbedRequest {
            tenant: "texty".into(),
            texts: texts.clone(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.model, "all-MiniLM-L6-v2");
    assert_eq!(answer.vectors.len(), 2);
    for v in &answer.vectors {
        assert_eq!(v.values.len(), 384);
        let norm: f32 = v.values.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4);
    }
    assert_ne!(answer.vectors[0].values, answer.vectors[1].values);

    let err = server
        .points()
        .embed(Auth(&locked).r(proto::PointsServiceEmbedRequest {
            tenant: "locked".into(),
            texts,
        }))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{}", err.message());
    assert!(
        err.message()
            .contains("no embedder serves this tenant's trust class")
    );
    server.stop().await;
    child.kill().unwrap();
    child.wait().unwrap();
}
