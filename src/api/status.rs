//! Engine errors to gRPC statuses: one exhaustive match, no `_` arm, so a
//! new engine error cannot reach the wire unmapped.

use tonic::Status;

use crate::engine::{EmbedFailure, EngineError};

/// Which service an error is answered on: the data plane never says
/// "not found" about a tenant, so it cannot tell "not yours" from "none".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Plane {
    Data,
    Admin,
}

pub(crate) fn to_status(error: EngineError, plane: Plane) -> Status {
    match error {
        EngineError::InvalidArgument(_) | EngineError::InvalidPoint { .. } => {
            Status::invalid_argument(error.to_string())
        }
        EngineError::TenantNotFound => match plane {
            // A tenant dropped between the credential check and the call.
            Plane::Data => Status::permission_denied(EngineError::PermissionDenied.to_string()),
            Plane::Admin => Status::not_found(error.to_string()),
        },
        EngineError::TenantExists => Status::already_exists(error.to_string()),
        // Refused like a foreign request: a cursor names nothing it could leak.
        EngineError::InvalidCursor => Status::permission_denied(error.to_string()),
        EngineError::Unauthenticated => Status::unauthenticated(error.to_string()),
        EngineError::PermissionDenied => Status::permission_denied(error.to_string()),
        EngineError::TokenNotFound => Status::not_found(error.to_string()),
        EngineError::QuotaExceeded(_) => Status::resource_exhausted(error.to_string()),
        EngineError::TryAgain => Status::unavailable(error.to_string()),
        EngineError::Cancelled => Status::cancelled(error.to_string()),
        EngineError::PolicyRefused(_) => Status::failed_precondition(error.to_string()),
        EngineError::ModelNotFound => Status::not_found(error.to_string()),
        EngineError::Embedder(ref failure) => match failure {
            EmbedFailure::NotConfigured => Status::failed_precondition(error.to_string()),
            EmbedFailure::Refused(_) => Status::invalid_argument(error.to_string()),
            EmbedFailure::Busy(_) => Status::resource_exhausted(error.to_string()),
            EmbedFailure::Unavailable => Status::unavailable(error.to_string()),
            EmbedFailure::Failed => Status::internal(error.to_string()),
        },
        EngineError::ModelDimension { .. } => Status::failed_precondition(error.to_string()),
        EngineError::Storage(e) => {
            tracing::error!(error = %e, "storage failure");
            Status::internal(
                "the server failed to store or read data; the operation may be retried",
            )
        }
    }
}
