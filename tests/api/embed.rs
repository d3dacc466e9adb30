//! Text to vectors through the server and the real sidecar binary: a tenant's
//! texts go to the sidecar of its trust class, and a class without one is
//! refused with FAILED_PRECONDITION. Text upsert and text search; the
//! sidecar `bulkhead serve` starts for itself.

use std::collections::HashMap;
use std::process::Command;

use bulkhead::api::Embedders;
use bulkhead::proto;
use tonic::Code;

use crate::cli::{bulkhead, json};
use crate::common::{
    ADMIN, Auth, EMBEDDER_READY, Running, TestServer, serve_with_local_embedder, spawn_serving,
    with_token,
};

pub(crate) const SECRET: &str = "embedder-secret-for-tests-0123";

/// The `bulkhead-embedder` binary beside `bulkhead`, on an ephemeral port.
pub(crate) fn sidecar() -> (Running, String) {
    let binary =
        std::path::Path::new(env!("CARGO_BIN_EXE_bulkhead")).with_file_name("bulkhead-embedder");
    assert!(
        binary.exists(),
        "{} is missing: cargo build --release -p bulkhead-embedder",
        binary.display()
    );
    // The secret comes from a file of mode 0600, read before it serves.
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret");
    fs_err::write(&secret, SECRET).unwrap();
    {
        use std::os::unix::fs::PermissionsExt as _;
        fs_err::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let mut command = Command::new(binary);
    command
        .args(["--listen", "127.0.0.1:0", "--trust-classes", "default"])
        .arg("--secret-file")
        .arg(&secret);
    let (child, url, _) = spawn_serving(command, EMBEDDER_READY);
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
    let server =
        TestServer::start_with(Embedders::new(SECRET.into(), &urls, &Default::default()).unwrap())
            .await;
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

/// Texts are charged by the tokens the real model ran for them: a request
/// runs while the tenant's minute is not spent, and the next waits, with
/// a message naming the tenant's own quota.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedding_is_charged_by_tokens_against_the_tenants_quota() {
    let (mut child, url) = sidecar();
    let urls = HashMap::from([("default".to_string(), url)]);
    let server =
        TestServer::start_with(Embedders::new(SECRET.into(), &urls, &Default::default()).unwrap())
            .await;
    let spec = proto::TenantSpec {
        dimension: 384,
        metric: proto::Metric::Cosine as i32,
        trust_class: "default".into(),
        ..Default::default()
    };
    let quotas = proto::Quotas {
        max_embedding_tokens_per_minute: 10,
        ..Default::default()
    };
    let metered = server
        .tenant_with_quotas("metered", spec.clone(), Some(quotas))
        .await;
    let free = server.tenant_with("free", spec).await;
    let embed = |token: &str, tenant: &str, text: &str| {
        let request = Auth(token).r(proto::PointsServiceEmbedRequest {
            tenant: tenant.into(),
            texts: vec![text.into()],
        });
        let mut client = server.points();
        async move { client.embed(request).await }
    };
    // Three long texts' worth of tokens in one request of one text.
    let long = "the quarterly report of the flooded compartment ".repeat(3);
    embed(&metered, "metered", &long).await.unwrap();
    let err = embed(&metered, "metered", "short").await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{}", err.message());
    assert!(
        err.message()
            .contains("quota max_embedding_tokens_per_minute (10) used up"),
        "{}",
        err.message()
    );
    // Another tenant of the same class is not charged for it.
    for _ in 0..3 {
        embed(&free, "free", &long).await.unwrap();
    }
    server.stop().await;
    child.kill().unwrap();
    child.wait().unwrap();
}

fn text_point(id: &str, text: &str) -> proto::Point {
    proto::Point {
        id: id.into(),
        text: text.into(),
        ..Default::default()
    }
}

async fn count(server: &TestServer, token: &str, tenant: &str) -> u64 {
    server
        .points()
        .count(Auth(token).r(proto::CountRequest {
            tenant: tenant.into(),
            filter: None,
        }))
        .await
        .unwrap()
        .into_inner()
        .count
}

async fn sidecar_stats(url: &str, tenant: String) -> proto::CacheStatsResponse {
    let mut client =
        proto::embedder_service_client::EmbedderServiceClient::connect(url.to_string())
            .await
            .unwrap();
    client
        .cache_stats(with_token(proto::CacheStatsRequest { tenant }, SECRET))
        .await
        .unwrap()
        .into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_points_are_embedded_kept_and_found_by_text() {
    let (mut child, url) = sidecar();
    let urls = HashMap::from([("default".to_string(), url.clone())]);
    let server =
        TestServer::start_with(Embedders::new(SECRET.into(), &urls, &Default::default()).unwrap())
            .await;
    let docs = create(&server, "docs", "default").await;
    let locked = create(&server, "locked", "regulated").await;
    let narrow = server
        .tenant_with(
            "narrow",
            proto::TenantSpec {
                dimension: 8,
                metric: proto::Metric::Cosine as i32,
                trust_class: "default".into(),
                ..Default::default()
            },
        )
        .await;
    let mut points = server.points();

    let texts = [
        ("hull", "The hull is divided into watertight compartments."),
        ("tax", "Quarterly revenue grew by ten percent after tax."),
        ("pasta", "Boil the pasta in salted water for nine minutes."),
    ];
    let batch: Vec<proto::Point> = texts.iter().map(|(id, t)| text_point(id, t)).collect();
    let upserted = points
        .upsert(Auth(&docs).r(proto::UpsertRequest {
            tenant: "docs".into(),
            points: batch,
        }))
        .await
        .unwrap()
        .into_inner()
        .upserted;
    assert_eq!(upserted, 3);

    // The stored vector is the embedder's vector of the text, and the text
    // comes back with the point.
    let got = points
        .get(Auth(&docs).r(proto::GetRequest {
            tenant: "docs".into(),
            ids: vec!["tax".into()],
            with_payload: true,
            with_vector: true,
        }))
        .await
        .unwrap()
        .into_inner()
        .points;
    assert_eq!(got[0].text, texts[1].1);
    let embedded = points
        .embed(Auth(&docs).r(proto::PointsServiceEmbedRequest {
            tenant: "docs".into(),
            texts: vec![texts[1].1.into()],
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got[0].vector, embedded.vectors[0].values);

    let search = |text: &str| proto::SearchRequest {
        tenant: "docs".into(),
        text: text.into(),
        k: 3,
        with_payload: true,
        ..Default::default()
    };
    for (query, expected) in [
        ("how does a ship keep from sinking", "hull"),
        ("cooking dinner in the kitchen", "pasta"),
        ("financial results of the company", "tax"),
    ] {
        let hits = points
            .search(Auth(&docs).r(search(query)))
            .await
            .unwrap()
            .into_inner()
            .points;
        assert_eq!(hits.len(), 3);
        assert_eq!(hits[0].id, expected, "{query}");
        assert!(!hits[0].text.is_empty());
    }

    let mut both = search("a query");
    both.vector = vec![0.1; 384];
    let err = points.search(Auth(&docs).r(both)).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{}", err.message());

    // An oversized text is refused before anything is embedded or written.
    let long = "word ".repeat(7_000);
    let err = points
        .upsert(Auth(&docs).r(proto::UpsertRequest {
            tenant: "docs".into(),
            points: vec![text_point("fresh", "fine"), text_point("long", &long)],
        }))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("point 1: text"), "{}", err.message());
    assert_eq!(count(&server, &docs, "docs").await, 3);

    // No sidecar for the class, or a model of another dimension: nothing is
    // written, and the message says why.
    for (token, tenant, needle) in [
        (
            &locked,
            "locked",
            "no embedder serves this tenant's trust class",
        ),
        (&narrow, "narrow", "dimension 384"),
    ] {
        let err = points
            .upsert(Auth(token).r(proto::UpsertRequest {
                tenant: tenant.into(),
                points: vec![text_point("x", "some text")],
            }))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::FailedPrecondition, "{}", err.message());
        assert!(err.message().contains(needle), "{}", err.message());
        assert_eq!(count(&server, token, tenant).await, 0);
        let mut query = search("some text");
        query.tenant = tenant.into();
        let err = points.search(Auth(token).r(query)).await.unwrap_err();
        assert_eq!(err.code(), Code::FailedPrecondition, "{}", err.message());
    }

    // The admin sees the tenant's cache counters; the sidecar forgets them
    // when the tenant is dropped.
    let describe =
        |name: &str| with_token(proto::DescribeTenantRequest { name: name.into() }, ADMIN);
    let mut admin = server.admin();
    let cache = admin
        .describe_tenant(describe("docs"))
        .await
        .unwrap()
        .into_inner()
        .embedding_cache
        .unwrap();
    // Misses: the 3 upserted texts and the 3 text queries (refused requests
    // embed nothing). Hit: the Embed call of an upserted text.
    assert_eq!((cache.hits, cache.misses), (1, 6));
    let described = admin.describe_tenant(describe("locked")).await.unwrap();
    assert_eq!(described.into_inner().embedding_cache, None);
    let incarnation = server.registry.tenant("docs").unwrap().incarnation();
    let key = format!("t{incarnation}");
    let direct = sidecar_stats(&url, key.clone()).await;
    assert_eq!((direct.hits, direct.misses), (1, 6));
    admin
        .drop_tenant(with_token(
            proto::DropTenantRequest {
                name: "docs".into(),
            },
            ADMIN,
        ))
        .await
        .unwrap();
    let direct = sidecar_stats(&url, key).await;
    assert_eq!((direct.hits, direct.misses), (0, 0));

    server.stop().await;
    child.kill().unwrap();
    child.wait().unwrap();
}

/// Waits until nothing accepts connections at `url` (http://HOST:PORT).
fn wait_closed(url: &str) -> bool {
    let addr = url.trim_start_matches("http://");
    for _ in 0..200 {
        if std::net::TcpStream::connect(addr).is_err() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulkhead_serve_runs_a_local_embedder_that_dies_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, url, log) = serve_with_local_embedder(dir.path());
    let sidecar_url = log
        .lock()
        .unwrap()
        .iter()
        .find(|l| l.contains("local embedder started"))
        .and_then(|l| l.split("url=\"").nth(1))
        .and_then(|rest| rest.split('"').next())
        .map(str::to_string)
        .expect("the server logs the local embedder's url");

    // Any trust class is served, through the CLI as a user would.
    json(
        &url,
        "",
        &[
            "admin",
            "tenant",
            "create",
            "notes",
            "--dim",
            "384",
            "--trust-class",
            "internal",
            "--json",
        ],
        None,
    );
    let token = json(
        &url,
        "",
        &["admin", "token", "issue", "notes", "--json"],
        None,
    )["token"]
        .as_str()
        .unwrap()
        .to_string();
    let lines = [
        r#"{"id": "boat", "text": "A bulkhead keeps water in one compartment of a ship.", "payload": {"topic": "ships"}}"#,
        r#"{"id": "soup", "text": "Simmer the onions slowly before adding the stock."}"#,
    ]
    .join("\n");
    let upserted = json(
        &url,
        &token,
        &[
            "client", "--tenant", "notes", "upsert", "--file", "-", "--json",
        ],
        Some(&lines),
    );
    assert_eq!(upserted["upserted"], 2);
    let found = json(
        &url,
        &token,
        &[
            "client",
            "--tenant",
            "notes",
            "search",
            "--text",
            "flooding on a vessel",
            "-k",
            "1",
            "--json",
        ],
        None,
    );
    assert_eq!(found["points"][0]["id"], "boat");
    assert_eq!(found["points"][0]["payload"]["topic"], "ships");
    let embedded = json(
        &url,
        &token,
        &[
            "client", "--tenant", "notes", "embed", "--text", "hello", "--json",
        ],
        None,
    );
    assert_eq!(embedded["vector"].as_array().unwrap().len(), 384);

    // A line with neither vector nor text is refused by the CLI, naming the line.
    let out = bulkhead(
        &url,
        &token,
        &["client", "--tenant", "notes", "upsert", "--file", "-"],
        Some(r#"{"id": "empty"}"#),
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("line 1: a point needs a vector or a text")
    );

    // Killed without warning, the server takes its sidecar with it.
    server.kill().unwrap();
    server.wait().unwrap();
    assert!(
        wait_closed(&sidecar_url),
        "the local embedder outlived the server"
    );
}
