//! Bulkhead: a physically partitioned multi-tenant vector database.
//!
//! Data flows one way: wire -> guard -> [`engine`] -> storage
//! (`bulkhead-storage`). See ARCHITECTURE.md.

#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

pub mod api;
/// The command line crate, under the name the binary uses.
pub use bulkhead_cli as cli;
pub mod config;
/// The engine crate, under the name the server's modules use.
pub use bulkhead_engine as engine;
#[cfg(any(fuzzing, test))]
pub mod fuzzing;
pub mod inflight;
pub mod local_embedder;
pub mod metrics;
pub mod server;
pub mod tls;

/// Wire types (proto/bulkhead/v1): messages and clients from
/// bulkhead-client, server traits generated here.
pub mod proto {
    #![allow(clippy::all, missing_docs)]
    pub use bulkhead_client::proto::*;
    tonic::include_proto!("bulkhead.v1");

    /// The encoded descriptors of proto/, for server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        tonic::include_file_descriptor_set!("bulkhead_descriptor");
}

/// README.md's code compiles (`cargo test` runs it as a doctest).
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
