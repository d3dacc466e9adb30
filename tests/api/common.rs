use std::sync::Arc;

use bulkhead::api::AdminToken;
use bulkhead::engine::{EngineConfig, Registry};
use bulkhead::inflight::{DEFAULT_REQUEST_BYTES_IN_FLIGHT, InflightBudget};
use bulkhead::proto;
use bulkhead::proto::admin_service_client::AdminServiceClient;
use bulkhead::proto::points_service_client::PointsServiceClient;
use bulkhead::proto::points_service_server::PointsService;
use bulkhead::server::Services;
use tonic::Request;
use tonic::transport::Channel;

pub const ADMIN: &str = "test-admin-token-0123456789abcdef";

/// The real server, in-process, on an ephemeral loopback port.
pub struct TestServer {
    pub url: String,
    pub channel: Channel,
    /// The server's registry, for what only the server knows (incarnations).
    pub registry: Arc<Registry>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::start_with(bulkhead::api::Embedders::none()).await
    }

    /// The server with these embedding sidecars.
    pub async fn start_with(embedders: bulkhead::api::Embedders) -> TestServer {
        Self::start_with_engine(EngineConfig::default(), embedders).await
    }

    /// The server over an engine configured with `config`.
    pub async fn start_with_engine(
        config: EngineConfig,
        embedders: bulkhead::api::Embedders,
    ) -> TestServer {
        let admin = AdminToken::new(ADMIN).unwrap();
        Self::start_with_services(config, |registry| Services::new(registry, admin, embedders))
            .await
    }

    /// The server mounting the services `services` makes over its registry.
    pub async fn start_with_services<P: PointsService>(
        config: EngineConfig,
        services: impl FnOnce(&Arc<Registry>) -> Services<P>,
    ) -> TestServer {
        let budget = InflightBudget::new(DEFAULT_REQUEST_BYTES_IN_FLIGHT);
        Self::start_with_budget(config, services, budget).await
    }

    /// [`start_with_services`](Self::start_with_services), with `budget`
    /// bounding the request bytes in flight.
    pub async fn start_with_budget<P: PointsService>(
        config: EngineConfig,
        services: impl FnOnce(&Arc<Registry>) -> Services<P>,
        budget: Arc<InflightBudget>,
    ) -> TestServer {
        let options = bulkhead::server::ServeOptions {
            budget,
            ..bulkhead::server::ServeOptions::default()
        };
        Self::start_with_options(config, services, options, &bulkhead_client::Tls::default()).await
    }

    /// The server as `options` say (TLS), its channel opened with
    /// `client_tls` (https:// when `options` has TLS).
    pub async fn start_with_options<P: PointsService>(
        config: EngineConfig,
        services: impl FnOnce(&Arc<Registry>) -> Services<P>,
        options: bulkhead::server::ServeOptions,
        client_tls: &bulkhead_client::Tls,
    ) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let registry = Arc::new(Registry::open(dir.path(), config).unwrap());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let scheme = if options.tls.is_some() {
            "https"
        } else {
            "http"
        };
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let services = services(&registry);
        let served = Arc::clone(&registry);
        let handle = tokio::spawn(async move {
            let shutdown = async {
                let _ = rx.await;
            };
            bulkhead::server::serve_with(served, services, listener, shutdown, options)
                .await
                .unwrap();
        });
        let url = format!("{scheme}://{addr}");
        let channel = bulkhead_client::connect(url.clone(), client_tls)
            .await
            .unwrap();
        TestServer {
            url,
            channel,
            registry,
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
        self.tenant_with(name, spec).await
    }

    /// Creates a tenant of `spec` and returns a token for it.
    pub async fn tenant_with(&self, name: &str, spec: proto::TenantSpec) -> String {
        self.tenant_with_quotas(name, spec, None).await
    }

    /// Creates a tenant of `spec` with `quotas` and returns a token for it.
    pub async fn tenant_with_quotas(
        &self,
        name: &str,
        spec: proto::TenantSpec,
        quotas: Option<proto::Quotas>,
    ) -> String {
        let request = proto::CreateTenantRequest {
            name: name.into(),
            spec: Some(spec),
            quotas,
            contract: None,
        };
        self.admin()
            .create_tenant(with_token(request, ADMIN))
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
        text: String::new(),
    }
}

/// Requests carrying one bearer token.
pub struct Auth<'a>(pub &'a str);

impl Auth<'_> {
    pub fn r<T>(&self, message: T) -> Request<T> {
        with_token(message, self.0)
    }
}

/// The server's log lines so far and to come.
pub type Log = Arc<std::sync::Mutex<Vec<String>>>;

/// Starts the real `bulkhead serve` binary on an ephemeral port, without an
/// embedder; returns it, its URL and its log. With `admin_env`, the admin
/// token is ADMIN from the environment; without, the server makes its own.
pub fn serve(dir: &std::path::Path, admin_env: bool) -> (Running, String, Log) {
    let mut command = serve_command(dir, admin_env);
    command.arg("--no-local-embedder");
    spawn_serving(command, SERVER_READY)
}

/// `bulkhead serve` as `make run` starts it: it starts its own local
/// embedder (the model is in the default models directory).
pub fn serve_with_local_embedder(dir: &std::path::Path) -> (Running, String, Log) {
    spawn_serving(serve_command(dir, true), SERVER_READY)
}

fn serve_command(dir: &std::path::Path, admin_env: bool) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_bulkhead"));
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .env_remove("BULKHEAD_CONFIG")
        .env_remove("BULKHEAD_EMBEDDERS")
        .env_remove("BULKHEAD_NO_LOCAL_EMBEDDER");
    if admin_env {
        command.env("BULKHEAD_ADMIN_TOKEN", ADMIN);
    } else {
        command.env_remove("BULKHEAD_ADMIN_TOKEN");
    }
    command
}

/// A spawned binary, killed when dropped: a failing test leaks no process.
pub struct Running(pub std::process::Child);

impl std::ops::Deref for Running {
    type Target = std::process::Child;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for Running {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// The log line of each binary that says it serves, before `addr=`.
pub const SERVER_READY: &str = "bulkhead::server: serving";
pub const EMBEDDER_READY: &str = "bulkhead_embedder: embedder serving";

/// Spawns a server binary, waits for its `ready` log line (`... addr=HOST:PORT`)
/// and returns the child and its URL; the log keeps being drained so the
/// child never blocks on a full pipe.
pub fn spawn_serving(mut command: std::process::Command, ready: &str) -> (Running, String, Log) {
    use std::io::{BufRead, BufReader};
    command
        .env("RUST_LOG", "info")
        .stderr(std::process::Stdio::piped());
    let mut child = command.spawn().unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let log: Log = Arc::new(std::sync::Mutex::new(Vec::new()));
    let addr = loop {
        let line = lines
            .next()
            .expect("the child exited before serving")
            .unwrap();
        log.lock().unwrap().push(line.clone());
        if let Some(rest) = line.split("addr=").nth(1).filter(|_| line.contains(ready)) {
            break rest.split_whitespace().next().unwrap().to_string();
        }
    };
    let sink = Arc::clone(&log);
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            sink.lock().unwrap().push(line);
        }
    });
    (Running(child), format!("http://{addr}"), log)
}
