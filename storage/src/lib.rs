//! Bulkhead's storage: the only crate that names RocksDB, a file or a path.
//!
//! Layout of a data directory:
//!
//! ```text
//! <data>/meta/                    RocksDB: tenant records, shelf records, counters
//! <data>/shelves/<shelf>/         RocksDB: one column family `t<incarnation>` per tenant
//! <data>/tenants/<incarnation>/   the tenant's own files (graph snapshots)
//! <data>/audit.log                token issue and revoke events, JSON lines
//! <data>/admin.token              the generated admin token (mode 0600)
//! ```
//!
//! A tenant is known on disk only by its incarnation, a number assigned at
//! creation and never reused: its name appears in the `meta` records and
//! nowhere else, and a dropped and recreated name is a new tenant everywhere.

#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]
// Every io error storage returns names its path through `AtPath` (there is
// no `From<io::Error>` for `StorageError`), so std::fs serves here where
// the rest of the workspace uses fs_err: its messages would name the path
// twice.
#![allow(clippy::disallowed_methods)]

mod audit;
mod codec;
mod error;
mod faults;
mod graph_snapshot;
mod layout;
mod meta;
mod shelf;
mod storage;
mod tenant_store;

pub use codec::{decode, encode};
pub use error::{Result, StorageError};
pub use faults::FaultInjector;
pub use graph_snapshot::{GraphSnapshot, LoadedGraph};
pub use meta::{ShelfId, TenantRecord, TokenRecord};
pub use storage::{Storage, StorageOptions};
pub use tenant_store::{AccessCursor, AccessRecord, PointWrite, StoredPoint, TenantStore};
