/// What a call can fail with: the server's gRPC status, sorted by what the
/// caller can do about it, with the server's message. The server's messages
/// say what went wrong without naming the code; the code is named here.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The request is malformed; the message says what to fix.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The token is missing, malformed, unknown or revoked.
    #[error("unauthenticated: {0}")]
    Unauthenticated(String),
    /// The token does not grant access (to this tenant, or to the admin plane).
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("already exists: {0}")]
    AlreadyExists(String),
    /// The server is unreachable or shutting down; retrying may help.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// Any other status.
    #[error("{code:?}: {message}")]
    Server { code: tonic::Code, message: String },
    /// No connection: the server is unreachable, or the TLS handshake
    /// failed (the message carries the cause, e.g. an unknown issuer).
    #[error("transport: {}", causes(.0))]
    Transport(#[from] tonic::transport::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<tonic::Status> for Error {
    fn from(status: tonic::Status) -> Self {
        let message = status.message().to_string();
        match status.code() {
            tonic::Code::InvalidArgument => Error::InvalidArgument(message),
            tonic::Code::Unauthenticated => Error::Unauthenticated(message),
            tonic::Code::PermissionDenied => Error::PermissionDenied(message),
            tonic::Code::NotFound => Error::NotFound(message),
            tonic::Code::AlreadyExists => Error::AlreadyExists(message),
            tonic::Code::Unavailable => Error::Unavailable(message),
            code => Error::Server { code, message },
        }
    }
}

/// An error and its sources, "a: b: c": tonic's transport errors say only
/// "transport error" at the top; the cause (refused, TLS) is below.
fn causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
