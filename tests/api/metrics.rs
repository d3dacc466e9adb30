//! The operator's metrics over real HTTP, on their own listener: each
//! tenant's calls by RPC and code, its size and state, the node's totals;
//! nothing of a tenant whose contract says `telemetry none`, of a dropped
//! tenant, or of a name a caller merely tried.

use bulkhead::api::{AdminToken, Embedders};
use bulkhead::engine::EngineConfig;
use bulkhead::server::{ServeOptions, Services};
use bulkhead_client::{AdminClient, Metric, Point, TenantClient, Tls};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::common::{ADMIN, TestServer};

/// GET `path` from `addr` over HTTP/1.1: (status line, body).
async fn get(addr: std::net::SocketAddr, path: &str) -> (String, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: metrics\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    (head.lines().next().unwrap().to_string(), body.to_string())
}

/// The value of the series `name{labels}` (labels as written, in order).
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_each_tenants_calls_and_show_nothing_of_a_tenant_that_opted_out() {
    let metrics = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let metrics_addr = metrics.local_addr().unwrap();
    let server = TestServer::start_with_options(
        EngineConfig::default(),
        |registry| Services::new(registry, AdminToken::new(ADMIN).unwrap(), Embedders::none()),
        ServeOptions {
            metrics: Some(metrics),
            ..ServeOptions::default()
        },
        &Tls::default(),
    )
    .await;
    let admin = AdminClient::with_channel(server.channel.clone(), ADMIN).unwrap();
    let mut clients = Vec::new();
    for name in ["loud", "hushed"] {
        admin.create_tenant(name, 3, Metric::L2).await.unwrap();
        let token = admin.issue_token(name).await.unwrap().token;
        clients.push(TenantClient::with_channel(server.channel.clone(), name, token).unwrap());
    }
    admin
        .set_contract(
            "hushed",
            bulkhead_client::proto::TenantContract {
                telemetry: bulkhead_client::proto::Telemetry::None as i32,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    for client in &clients {
        client
            .upsert(vec![
                Point::new("a", vec![1.0, 0.0, 0.0]),
                Point::new("b", vec![0.0, 1.0, 0.0]),
            ])
            .await
            .unwrap();
        for _ in 0..3 {
            client
                .search(vec![1.0, 0.0, 0.0])
                .k(1)
                .send()
                .await
                .unwrap();
        }
        // A bad request: INVALID_ARGUMENT, counted as such.
        assert!(client.search(vec![1.0]).k(1).send().await.is_err());
    }
    // A caller naming a tenant it holds no token for, and one naming a
    // tenant that does not exist.
    let token = "bht_0_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    for name in ["hushed", "ghost-of-nobody"] {
        let stranger = TenantClient::with_channel(server.channel.clone(), name, token).unwrap();
        assert!(stranger.count(None).await.is_err());
    }

    let (status, text) = get(metrics_addr, "/metrics").await;
    assert!(status.contains("200"), "{status}");
    let loud = |rpc: &str, code: &str| {
        value(
            &text,
            &format!(
                "bulkhead_tenant_requests_total{{tenant=\"loud\",rpc=\"{rpc}\",code=\"{code}\"}}"
            ),
        )
    };
    assert_eq!(loud("Search", "OK"), Some(3.0), "{text}");
    assert_eq!(loud("Search", "INVALID_ARGUMENT"), Some(1.0), "{text}");
    assert_eq!(loud("Upsert", "OK"), Some(1.0), "{text}");
    assert_eq!(
        value(&text, "bulkhead_tenant_points{tenant=\"loud\"}"),
        Some(2.0)
    );
    // Buckets are cumulative once: every one of the 4 searches is under
    // +Inf, and no bucket holds more.
    let search = "{tenant=\"loud\",rpc=\"Search\"";
    assert_eq!(
        value(
            &text,
            &format!("bulkhead_tenant_request_duration_seconds_count{search}}}")
        ),
        Some(4.0)
    );
    assert_eq!(
        value(
            &text,
            &format!("bulkhead_tenant_request_duration_seconds_bucket{search},le=\"+Inf\"}}")
        ),
        Some(4.0),
        "{text}"
    );
    // The node counts every call, the opted-out tenant's and the refused
    // ones too.
    assert_eq!(
        value(&text, "bulkhead_requests_total{rpc=\"Search\",code=\"OK\"}"),
        Some(6.0),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            "bulkhead_requests_total{rpc=\"Count\",code=\"UNAUTHENTICATED\"}"
        )
        .or_else(|| value(
            &text,
            "bulkhead_requests_total{rpc=\"Count\",code=\"PERMISSION_DENIED\"}"
        )),
        Some(2.0),
        "{text}"
    );
    assert_eq!(value(&text, "bulkhead_tenants"), Some(2.0));
    // Nothing names the tenant that opted out, nor the name that was only
    // tried.
    assert!(!text.contains("hushed"), "{text}");
    assert!(!text.contains("ghost-of-nobody"), "{text}");

    // A dropped tenant's series go with it.
    admin.drop_tenant("loud").await.unwrap();
    let (_, text) = get(metrics_addr, "/metrics").await;
    assert!(!text.contains("loud"), "{text}");
    assert_eq!(value(&text, "bulkhead_tenants"), Some(1.0));
    // Anything but GET /metrics is not found; the tenants' port serves no
    // metrics.
    let (status, _) = get(metrics_addr, "/").await;
    assert!(status.contains("404"), "{status}");
    let grpc_addr: std::net::SocketAddr = server.url.trim_start_matches("http://").parse().unwrap();
    let mut stream = tokio::net::TcpStream::connect(grpc_addr).await.unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    assert!(!String::from_utf8_lossy(&answer).contains("bulkhead_"));
    server.stop().await;
}
