//! Engine tests over the real RocksDB and the real hnsw_rs, compiled as one
//! binary. Each DESIGN.md invariant this layer proves has a test named after it.

mod access_log;
mod campaign;
mod common;
mod crash;
mod drop;
mod faults;
mod filters;
mod model;
mod points;
mod restart;
mod scale;
