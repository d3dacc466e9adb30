//! The gRPC surface: thin tonic adapters over the engine. Each call
//! authenticates, validates and converts the request, runs the engine
//! operation off the async workers (a tenant's data-plane work through
//! `admission.rs`), and maps errors in one place (`status.rs`). No logic
//! lives here that the engine could own.

mod admin;
mod admission;
mod auth;
pub(crate) mod convert;
mod embedders;
mod points;
pub(crate) mod status;

pub use admin::AdminApi;
pub use admission::AdmissionLimits;
pub use auth::AdminToken;
pub(crate) use auth::bearer_token;
pub use convert::{filter_to_proto, json_to_struct};

use crate::proto;
pub use embedders::Embedders;
pub use points::PointsApi;

/// The data-plane service over `points`, with the message size limits.
pub fn points_service<P: proto::points_service_server::PointsService>(
    points: P,
) -> proto::points_service_server::PointsServiceServer<P> {
    proto::points_service_server::PointsServiceServer::new(points)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES)
}

/// Largest request or response message, in bytes. A full upsert batch of
/// 10,000 points of 384 dimensions is ~16 MiB on the wire.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// Runs blocking engine work (RocksDB fsyncs, graph search) on tokio's
/// blocking pool, never on an async worker.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> crate::engine::Result<T> + Send + 'static,
    plane: status::Plane,
) -> Result<T, tonic::Status> {
    match tokio::task::spawn_blocking(f).await {
        Ok(result) => result.map_err(|e| status::to_status(e, plane)),
        Err(join) => {
            tracing::error!(error = %join, "engine task failed");
            Err(tonic::Status::internal(
                "the server failed while serving this request; the operation may be retried",
            ))
        }
    }
}
