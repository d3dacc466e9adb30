//! Rust SDK for Bulkhead.
//!
//! A [`TenantClient`] is bound to one tenant and one token when it is built;
//! no call can name another tenant. An [`AdminClient`] manages tenants and
//! tokens with the admin token. Clients are cheap to clone and share one
//! multiplexed HTTP/2 connection.
//!
//! ```no_run
//! use bulkhead_client::{AdminClient, Condition, Filter, Metric, Point, TenantClient};
//! use serde_json::json;
//!
//! # async fn run() -> Result<(), bulkhead_client::Error> {
//! let admin = AdminClient::connect("http://127.0.0.1:50551", "my-admin-token").await?;
//! admin.create_tenant("acme", 3, Metric::Cosine).await?;
//! let token = admin.issue_token("acme").await?.token;
//!
//! let acme = TenantClient::connect("http://127.0.0.1:50551", "acme", token).await?;
//! acme.upsert(vec![Point::new("doc-1", vec![0.1, 0.2, 0.3]).payload(json!({"lang": "en"}))]).await?;
//! let hits = acme
//!     .search(vec![0.1, 0.2, 0.3])
//!     .k(5)
//!     .filter(Filter::must([Condition::matches("lang", "en")]))
//!     .with_payload()
//!     .send()
//!     .await?;
//! for hit in hits {
//!     println!("{} {}", hit.id, hit.score);
//! }
//! # Ok(()) }
//! ```

#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

mod admin;
mod error;
mod filter;
pub mod json;
mod tenant;
mod tls;

pub use admin::{AdminClient, IssuedToken};
pub use error::{Error, Result};
pub use filter::{Condition, Filter};
pub use tenant::{Embedding, Page, Point, ScoredPoint, SearchBuilder, TenantClient};
pub use tls::{Tls, connect, endpoint, read_secret_file, secrets_equal};

/// Generated wire types and gRPC clients (proto/bulkhead/v1).
pub mod proto {
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("bulkhead.v1");
}

/// How a tenant compares vectors.
pub use proto::Metric;

/// Most points in one upsert: the server refuses a larger batch (a batch is
/// applied whole or not at all). The server's own constant is the engine's
/// `MAX_BATCH_POINTS`; tests/api/sdk.rs checks that the two agree.
pub const MAX_BATCH_POINTS: usize = 10_000;

/// `message` with its `authorization` metadata.
fn authorized<T>(
    bearer: &tonic::metadata::MetadataValue<tonic::metadata::Ascii>,
    message: T,
) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", bearer.clone());
    request
}

/// `authorization: Bearer <token>` metadata, marked sensitive: HTTP/2's
/// header compression never indexes it, and its Debug form hides it.
fn bearer(token: &str) -> Result<tonic::metadata::MetadataValue<tonic::metadata::Ascii>> {
    if token.trim().is_empty() {
        return Err(Error::InvalidArgument("a token is required".into()));
    }
    let mut value: tonic::metadata::MetadataValue<tonic::metadata::Ascii> =
        format!("Bearer {}", token.trim()).parse().map_err(|_| {
            Error::InvalidArgument("the token has characters that cannot be sent".into())
        })?;
    value.set_sensitive(true);
    Ok(value)
}
