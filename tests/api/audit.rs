//! `bulkhead admin audit` against a real server, and against a server that
//! mounts a deliberately broken data plane (its Get skips the tenant check),
//! where it must find the leak.

use std::sync::Arc;

use bulkhead::api::{Embedders, PointsApi};
use bulkhead::engine::{EngineConfig, Registry};
use bulkhead::proto;
use bulkhead::proto::points_service_server::PointsService;
use bulkhead::server::Services;
use tonic::{Request, Response, Status};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_passes_on_the_real_server_and_leaves_no_canary() {
    use crate::cli::bulkhead;
    use crate::common::{ADMIN, serve_with_local_embedder};

    let dir = tempfile::tempdir().unwrap();
    let (_server, url, log) = serve_with_local_embedder(dir.path());
    let out = bulkhead(&url, ADMIN, &["admin", "audit", "--json"], None);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(report["leaks"], 0, "{report}");
    assert_eq!(report["warnings"], serde_json::json!([]), "{report}");
    let layers = report["layers"].as_array().unwrap();
    let names: Vec<&str> = layers
        .iter()
        .map(|l| l["layer"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["index", "storage", "cache", "batching", "models", "errors"]
    );
    // The local sidecar serves every class with one model: the models row
    // says so, rather than claim a process per class.
    let mechanism = layers[4]["mechanism"].as_str().unwrap();
    assert!(
        mechanism.contains("one sidecar serves every class"),
        "{mechanism}"
    );
    for layer in layers {
        // The model is installed by the set-up step, so nothing is skipped.
        assert_eq!(layer["result"], "pass", "{layer}");
        assert!(!layer["probes"].as_array().unwrap().is_empty(), "{layer}");
    }
    // The canaries are gone.
    let listed = bulkhead(&url, ADMIN, &["admin", "tenant", "list", "--json"], None);
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(!listed.contains("audit-"), "{listed}");
    // The text report is one row per layer and says so; and a second run
    // leaves no storage shelf behind (its class is the first run's).
    let shelves = || {
        fs_err::read_dir(dir.path().join("shelves"))
            .unwrap()
            .count()
    };
    let before = shelves();
    let out = bulkhead(&url, ADMIN, &["admin", "audit"], None);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("no leak found"), "{text}");
    assert_eq!(text.matches("PASS").count(), 6, "{text}");
    assert_eq!(
        shelves(),
        before,
        "an audit run left a storage shelf behind"
    );
    drop(log);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_batching_row_is_skipped_when_the_other_class_cannot_embed() {
    use std::collections::HashMap;

    use crate::common::{ADMIN, TestServer};
    use crate::embed::{SECRET, sidecar};

    // An embedder for the default class only: canary c's class has none,
    // so nothing can run beside a's embed and the row measured nothing.
    let (_child, url) = sidecar();
    let urls = HashMap::from([("default".to_string(), url)]);
    let server =
        TestServer::start_with(Embedders::new(SECRET.into(), &urls, &Default::default()).unwrap())
            .await;
    let report = bulkhead::cli::audit::audit_server(&server.url, ADMIN)
        .await
        .unwrap();
    let batching = report.layers.iter().find(|l| l.name == "batching").unwrap();
    let bulkhead::cli::audit::Outcome::Skipped(why) = &batching.outcome else {
        panic!("{:?}", batching.outcome);
    };
    assert!(why.contains("nothing ran beside a"), "{why}");
    assert_eq!(report.leaks(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_catches_a_get_without_its_tenant_check() {
    use crate::common::{ADMIN, TestServer};

    let server = TestServer::start_with_services(EngineConfig::default(), |registry| {
        let services = Services::new(
            registry,
            bulkhead::api::AdminToken::new(ADMIN).unwrap(),
            Embedders::none(),
        );
        Services {
            points: GetWithoutTenantCheck {
                real: services.points,
                registry: Arc::clone(registry),
            },
            admin: services.admin,
            metrics: services.metrics,
        }
    })
    .await;
    let report = bulkhead::cli::audit::audit_server(&server.url, ADMIN)
        .await
        .unwrap();
    assert!(report.leaks() > 0, "{}", report.to_text());
    let errors = report.layers.iter().find(|l| l.name == "errors").unwrap();
    let bulkhead::cli::audit::Outcome::Leak(found) = &errors.outcome else {
        panic!("{}", report.to_text());
    };
    assert!(
        found.iter().any(|f| f.contains("Get naming it succeeded")),
        "{found:?}"
    );
    // Only the broken RPC leaks.
    assert!(found.iter().all(|f| f.contains("Get")), "{found:?}");
    assert!(report.to_text().contains("leak(s) found"));
}

/// The real data plane, except that Get serves whichever tenant the request
/// names to any caller with a token: it swaps the caller's token for one it
/// issues itself for that tenant.
struct GetWithoutTenantCheck {
    real: PointsApi,
    registry: Arc<Registry>,
}

#[tonic::async_trait]
impl PointsService for GetWithoutTenantCheck {
    async fn get(
        &self,
        mut request: Request<proto::GetRequest>,
    ) -> Result<Response<proto::GetResponse>, Status> {
        if request.metadata().get("authorization").is_none() {
            return Err(Status::unauthenticated("no token"));
        }
        let issued = self
            .registry
            .issue_token(&request.get_ref().tenant)
            .map_err(|_| Status::permission_denied("no such tenant"))?;
        let bearer = format!("Bearer {}", issued.token).parse().unwrap();
        request.metadata_mut().insert("authorization", bearer);
        self.real.get(request).await
    }

    async fn upsert(
        &self,
        request: Request<proto::UpsertRequest>,
    ) -> Result<Response<proto::UpsertResponse>, Status> {
        self.real.upsert(request).await
    }

    async fn delete(
        &self,
        request: Request<proto::DeleteRequest>,
    ) -> Result<Response<proto::DeleteResponse>, Status> {
        self.real.delete(request).await
    }

    async fn count(
        &self,
        request: Request<proto::CountRequest>,
    ) -> Result<Response<proto::CountResponse>, Status> {
        self.real.count(request).await
    }

    async fn scroll(
        &self,
        request: Request<proto::ScrollRequest>,
    ) -> Result<Response<proto::ScrollResponse>, Status> {
        self.real.scroll(request).await
    }

    async fn search(
        &self,
        request: Request<proto::SearchRequest>,
    ) -> Result<Response<proto::SearchResponse>, Status> {
        self.real.search(request).await
    }

    async fn embed(
        &self,
        request: Request<proto::PointsServiceEmbedRequest>,
    ) -> Result<Response<proto::PointsServiceEmbedResponse>, Status> {
        self.real.embed(request).await
    }

    async fn lineage(
        &self,
        request: Request<proto::LineageRequest>,
    ) -> Result<Response<proto::LineageResponse>, Status> {
        self.real.lineage(request).await
    }

    async fn access_log(
        &self,
        request: Request<proto::AccessLogRequest>,
    ) -> Result<Response<proto::AccessLogResponse>, Status> {
        self.real.access_log(request).await
    }
}
