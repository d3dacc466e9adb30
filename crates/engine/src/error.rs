use bulkhead_storage::StorageError;

use crate::point::PointFault;

/// Every error the engine returns. Messages name the caller's own input and
/// never another tenant: a missing tenant is `TenantNotFound` with no name.
/// Exhaustive on purpose: the server maps it to gRPC statuses in one match
/// without a `_` arm, so a new error cannot reach the wire unmapped.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The request is malformed; the message says what to fix.
    #[error("{0}")]
    InvalidArgument(String),
    /// One point of a batch is bad; nothing of the batch was applied.
    #[error("point {index}: {reason}; nothing in this batch was written")]
    InvalidPoint { index: usize, reason: PointFault },
    #[error("no such tenant")]
    TenantNotFound,
    #[error("a tenant with this name already exists")]
    TenantExists,
    #[error("the scroll cursor is not valid for this tenant; start again without a cursor")]
    InvalidCursor,
    /// The token is missing, malformed, unknown or revoked.
    #[error(
        "missing, malformed, unknown or revoked token: send `authorization: Bearer <tenant token>`"
    )]
    Unauthenticated,
    /// A valid token that is not bound to the named tenant. Identical whether
    /// that tenant exists or not.
    #[error("the token does not grant access to this tenant")]
    PermissionDenied,
    #[error("no such token")]
    TokenNotFound,
    /// A quota of the caller's tenant; the message names it and the
    /// tenant's own usage.
    #[error("{0}")]
    QuotaExceeded(String),
    /// The load of the tenant this handle holds was moved out of memory
    /// under the request. The registry retries a write on the tenant's next
    /// load; this reaches a caller that holds an evicted handle itself, or
    /// when the tenant keeps moving.
    #[error("the tenant was being moved out of memory; retry the request")]
    TryAgain,
    /// The request's caller went away (it cancelled, or its deadline
    /// passed) and its work stopped early.
    #[error("the request was cancelled or its deadline passed before it finished")]
    Cancelled,
    /// A tenant contract or model-lineage policy refuses the request; the
    /// message names the policy and never another tenant.
    #[error("{0}")]
    PolicyRefused(String),
    #[error("no model is registered with this digest: register it first")]
    ModelNotFound,
    /// The encoder of the tenant's trust class gave no vectors.
    #[error("{0}")]
    Embedder(EmbedFailure),
    /// The encoder's vectors do not fit the tenant.
    #[error(
        "the embedder's model {model} makes vectors of dimension {model_dimension}, but this tenant's dimension is {dimension}; store texts in a tenant of dimension {model_dimension}"
    )]
    ModelDimension {
        model: String,
        model_dimension: usize,
        dimension: usize,
    },
    #[error("storage failure: {0}")]
    Storage(#[from] StorageError),
}

pub type Result<T, E = EngineError> = std::result::Result<T, E>;

impl EngineError {
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        EngineError::InvalidArgument(message.into())
    }

    pub(crate) fn point(index: usize, reason: PointFault) -> Self {
        EngineError::InvalidPoint { index, reason }
    }
}

/// Why an encoder gave no vectors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmbedFailure {
    #[error("no embedder serves this tenant's trust class; configure one to embed text")]
    NotConfigured,
    /// The encoder refused these texts; the message says why.
    #[error("{0}")]
    Refused(String),
    /// The encoder's queue for this trust class is full.
    #[error("{0}")]
    Busy(String),
    #[error("the embedder is unavailable; retry later")]
    Unavailable,
    #[error("the embedder failed")]
    Failed,
}
