//! The gRPC server. This issue serves grpc.health.v1 over the engine; the
//! Points and Admin services arrive with the API issue.

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;

use crate::engine::Registry;

/// Serves on `listener` until `shutdown` completes, then closes the registry
/// (background work joined, graphs snapshotted, storage flushed).
pub async fn run(
    registry: Arc<Registry>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_service_status("", tonic_health::ServingStatus::Serving)
        .await;
    tracing::info!(addr = %listener.local_addr()?, "serving");
    tonic::transport::Server::builder()
        .add_service(health)
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown)
        .await?;
    let closing = Arc::clone(&registry);
    tokio::task::spawn_blocking(move || closing.close()).await??;
    tracing::info!("stopped");
    Ok(())
}
