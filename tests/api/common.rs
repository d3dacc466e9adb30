use std::sync::Arc;

use bulkhead::api::AdminToken;
use bulkhead::engine::{EngineConfig, Registry};
use bulkhead::proto;
use bulkhead::proto::admin_service_client::AdminServiceClient;
use bulkhead::proto::points_service_client::PointsServiceClient;
use tonic::Request;
use tonic::transport::Channel;

pub const ADMIN: &str = "test-admin-token-0123456789abcdef";

/// The real server, in-process, on an ephemeral loopback port.
pub struct TestServer {
    pub url: String,
    pub channel: Channel,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl TestServer {
    pub async fn start() -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let registry = Arc::new(Registry::open(dir.path(), EngineConfig::default()).unwrap());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let admin = AdminToken::new(ADMIN).unwrap();
        let handle = tokio::spawn(async move {
            bulkhead::server::run(registry, admin, listener, async {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        let channel = Channel::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .unwrap();
        TestServer {
            url: format!("http://{addr}"),
            channel,
            shutdown: Some(tx),
            handle: Some(handle),
            _dir: dir,
        }
    }

    pub fn points(&self) -> PointsServiceClient<Channel> {
        PointsServiceClient::new(self.channel.clone())
    }

    pub fn admin(&self) -> AdminServiceClient<Channel> {
        AdminServiceClient::new(self.channel.clone())
    }

    /// Creates a tenant of 4-dimensional l2 vectors and returns a token for it.
    pub async fn tenant(&self, name: &str) -> String {
        let spec = proto::TenantSpec {
            dimension: 4,
            metric: proto::Metric::L2 as i32,
            ..Default::default()
        };
        self.admin()
            .create_tenant(with_token(
                proto::CreateTenantRequest {
                    name: name.into(),
                    spec: Some(spec),
                },
                ADMIN,
            ))
            .await
            .unwrap();
        self.token(name).await
    }

    pub async fn token(&self, tenant: &str) -> String {
        self.admin()
            .issue_token(with_token(
                proto::IssueTokenRequest {
                    tenant: tenant.into(),
                },
                ADMIN,
            ))
            .await
            .unwrap()
            .into_inner()
            .token
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            h.await.unwrap();
        }
    }
}

pub fn with_token<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

pub fn point(id: &str, vector: [f32; 4], payload: serde_json::Value) -> proto::Point {
    proto::Point {
        id: id.into(),
        vector: vector.to_vec(),
        payload: payload.as_object().map(bulkhead::api::json_to_struct),
    }
}

/// Requests carrying one bearer token.
pub struct Auth<'a>(pub &'a str);

impl Auth<'_> {
    pub fn r<T>(&self, message: T) -> Request<T> {
        with_token(message, self.0)
    }
}
