//! The engine: every tenant a physical partition, reached only through the
//! [`Registry`]. It knows nothing of gRPC and never touches RocksDB directly;
//! no function here takes two tenants or returns data of more than one.

mod background;
mod candidate;
mod config;
mod contract;
mod credentials;
pub mod cursor;
mod embed;
mod error;
mod fair;
mod filter;
mod frozen;
mod graph;
mod ingest;
mod manifest;
mod metric;
mod name;
mod planner;
pub mod point;
mod policy;
mod quota;
mod registry;
mod request;
mod spec;
mod table;
mod tenant;
mod work;

pub use bulkhead_storage::AccessCursor;
pub use config::EngineConfig;
pub use contract::{Contract, SCOPE_TENANT, Telemetry, Training};
pub use credentials::{IssuedToken, TokenInfo};
pub use embed::{Embed, Embedded, NoEmbedder};
pub use error::{EmbedFailure, EngineError, Result};
pub use fair::FairQueue;
pub use filter::{Condition, Filter, MatchValue, Range};
pub use ingest::{MAX_EMBED_TEXT_BYTES, MAX_EMBED_TEXTS};
pub use manifest::{ModelRecord, PublicDataset, validate_bom};
pub use metric::Metric;
pub use name::{TenantName, TrustClass};
pub use point::{
    MAX_BATCH_POINTS, MAX_ID_BYTES, MAX_PAYLOAD_BYTES, Payload, Point, PointFault, PointInput,
    ScoredPoint,
};
pub use quota::{Quotas, SearchPermit};
pub use registry::access_log::{ACCESS_WINDOW_MS, AccessEntry, AccessPage, MAX_ACCESS_PAGE};
pub use registry::{Access, AssignTarget, ModelInfo, Registry, TenantInfo, TenantState};
pub use request::{
    DEFAULT_EF, DEFAULT_K, DEFAULT_SCROLL_LIMIT, MAX_K, MAX_RESPONSE_BYTES, MAX_SCROLL_LIMIT,
    ScrollPage, ScrollRequest, SearchRequest,
};
pub use spec::{IndexParams, TenantSpec};
pub use tenant::Tenant;
pub use work::{Checkpoint, Metered, Work};
