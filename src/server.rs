//! The gRPC server: Points (data plane), Admin (control plane),
//! grpc.health.v1 and server reflection, over one registry.

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;

use crate::api::{AdminApi, AdminToken, Embedders, PointsApi};
use crate::engine::Registry;
use crate::inflight::{DEFAULT_REQUEST_BYTES_IN_FLIGHT, InflightBudget};
use crate::metrics::{Metrics, Observed};
use crate::proto::admin_service_server::AdminServiceServer;
use crate::proto::points_service_server::{PointsService, PointsServiceServer};
use crate::tls::ServerTls;

/// Calls one client connection may have open at once (HTTP/2
/// SETTINGS_MAX_CONCURRENT_STREAMS).
pub const MAX_STREAMS_PER_CONNECTION: u32 = 128;

/// HTTP/2 flow-control windows: each stream may have this many bytes sent
/// and unread, and a connection as many as all its streams together. A call
/// waiting for the request-bytes budget leaves its body unread; were the
/// connection's window smaller than the sum of its streams' (hyper's
/// default: 1 MiB each), waiting calls could hold all of it, and the calls
/// that have their budget could never receive the rest of their bodies.
pub const STREAM_WINDOW_BYTES: u32 = 256 * 1024;
pub const CONNECTION_WINDOW_BYTES: u32 = MAX_STREAMS_PER_CONNECTION * STREAM_WINDOW_BYTES;

/// The deadline of a call that sets none (`grpc-timeout`); a shorter one
/// the client sets wins. Long enough for a full upsert batch of texts
/// embedded on a CPU.
pub const DEFAULT_DEADLINE: std::time::Duration = std::time::Duration::from_secs(300);

/// What a server mounts over its registry: the data plane and the control
/// plane. [`Services::new`] is the product's; a test may mount another data
/// plane (tests/api/audit.rs mounts a deliberately broken one).
pub struct Services<P = PointsApi> {
    pub points: P,
    pub admin: AdminApi,
    /// What the data plane's calls are counted in.
    pub metrics: Arc<Metrics>,
}

impl Services {
    pub fn new(registry: &Arc<Registry>, admin_token: AdminToken, embedders: Embedders) -> Self {
        let embedders = Arc::new(embedders);
        let points = PointsApi::new(Arc::clone(registry), Arc::clone(&embedders));
        let metrics = Metrics::new();
        points.report_queues_to(&metrics);
        Services {
            points,
            admin: AdminApi::new(Arc::clone(registry), admin_token, embedders),
            metrics,
        }
    }
}

/// How [`serve_with`] serves, beyond its services.
#[derive(Debug)]
pub struct ServeOptions {
    /// Bounds the request bytes in flight across every call (see
    /// [`crate::inflight`]).
    pub budget: Arc<InflightBudget>,
    /// TLS on the listener (plaintext when None).
    pub tls: Option<Arc<ServerTls>>,
    /// Where to serve the operator's metrics (`GET /metrics`), apart from
    /// the tenants' port; None serves none.
    pub metrics: Option<TcpListener>,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            budget: InflightBudget::new(DEFAULT_REQUEST_BYTES_IN_FLIGHT),
            tls: None,
            metrics: None,
        }
    }
}

/// Serves `services` in plaintext on `listener` until `shutdown`
/// completes; in-flight calls finish, then the registry is closed
/// (background work joined, graphs snapshotted, RocksDB flushed).
pub async fn serve<P: PointsService>(
    registry: Arc<Registry>,
    services: Services<P>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    serve_with(
        registry,
        services,
        listener,
        shutdown,
        ServeOptions::default(),
    )
    .await
}

/// [`serve`], as `options` say.
pub async fn serve_with<P: PointsService>(
    registry: Arc<Registry>,
    services: Services<P>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
    options: ServeOptions,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_service_status("", tonic_health::ServingStatus::Serving)
        .await;
    reporter.set_serving::<PointsServiceServer<P>>().await;
    reporter.set_serving::<AdminServiceServer<AdminApi>>().await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(crate::proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    // Writes grow loaded tenants without loading any: check the memory
    // budget every second too, not only when a tenant loads; write the
    // tenants' access logs; and close the storage shelves that only cold
    // tenants use.
    let memory_budget = {
        let registry = Arc::clone(&registry);
        tokio::spawn(async move {
            let mut every = tokio::time::interval(std::time::Duration::from_secs(1));
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                every.tick().await;
                let registry = Arc::clone(&registry);
                let pass = move || {
                    // Access log entries whose minute has closed; apart
                    // from the rest, which must not stop it.
                    if let Err(e) = registry.flush_access_log(false) {
                        tracing::warn!(error = %e, "writing the access logs failed; kept for the next pass");
                    }
                    registry.enforce_memory_budget()?;
                    registry.close_idle_shelves()
                };
                match tokio::task::spawn_blocking(pass).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "evicting to the memory budget failed")
                    }
                    Err(e) => tracing::error!(error = %e, "memory budget task failed"),
                }
            }
        })
    };
    let metrics = match options.metrics {
        Some(listener) => {
            tracing::info!(addr = %listener.local_addr()?, "metrics at GET /metrics");
            Some(crate::metrics::serve(
                listener,
                Arc::clone(&services.metrics),
                Arc::clone(&registry),
            ))
        }
        None => None,
    };
    tracing::info!(
        addr = %listener.local_addr()?,
        tls = options.tls.is_some(),
        client_certificates = options.tls.as_ref().is_some_and(|t| t.requires_client_certificates()),
        "serving"
    );
    let router = tonic::transport::Server::builder()
        // tonic leaves both unset (no stream limit, no deadline): a client
        // could open any number of calls on one connection, and a call
        // without `grpc-timeout` could run for ever. A call past its
        // deadline is dropped, which cancels its admitted work.
        .max_concurrent_streams(Some(MAX_STREAMS_PER_CONNECTION))
        .timeout(DEFAULT_DEADLINE)
        // And a decoded message of up to 64 MiB per stream: one budget of
        // request bytes for every call of every connection.
        .layer(options.budget.layer())
        .initial_stream_window_size(STREAM_WINDOW_BYTES)
        .initial_connection_window_size(CONNECTION_WINDOW_BYTES)
        .add_service(health)
        .add_service(reflection)
        .add_service(crate::api::points_service(Observed::new(
            services.points,
            Arc::clone(&services.metrics),
            Arc::clone(&registry),
        )))
        .add_service(services.admin.into_service());
    let served = match options.tls {
        None => {
            router
                .serve_with_incoming_shutdown(
                    // No Nagle delay: without it a small response waits for
                    // the client's delayed ACK (~40 ms stalls under
                    // concurrent calls).
                    TcpIncoming::from(listener).with_nodelay(Some(true)),
                    shutdown,
                )
                .await
        }
        Some(tls) => {
            let (incoming, acceptor) = crate::tls::incoming(listener, tls);
            let served = router
                .serve_with_incoming_shutdown(incoming, shutdown)
                .await;
            acceptor.abort();
            served
        }
    };
    memory_budget.abort();
    if let Some(metrics) = metrics {
        metrics.abort();
    }
    served?;
    tokio::task::spawn_blocking(move || registry.close()).await??;
    tracing::info!("stopped");
    Ok(())
}
