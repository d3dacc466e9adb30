//! Bulkhead's embedding sidecar: BERT-family sentence encoders on candle,
//! loaded from a standard Hugging Face / sentence-transformers folder.
//!
//! This crate never fetches anything: a model is a folder on disk
//! (config.json, model.safetensors, tokenizer.json and the
//! sentence-transformers module configs). `scripts/fetch-model.sh` puts the
//! default model, all-MiniLM-L6-v2, into `$BULKHEAD_MODELS_DIR`.
//!
//! The sidecar (`bulkhead-embedder`) serves `bulkhead.v1.EmbedderService`
//! to the Bulkhead server only (a shared secret), with one batcher per
//! trust class, fair across the class's tenants by tokens, and a cache
//! keyed by tenant, model and text, with a share of its capacity per tenant.

#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

mod batcher;
mod bert;
mod cache;
mod encoder;
mod error;
mod models_dir;
mod pooling;
mod service;

pub use batcher::{
    ANY_CLASS, BatchConfig, BatchError, BatchRecord, Batchers, Encoded, QUANTUM_TOKENS,
};
pub use cache::{CacheCounters, EmbeddingCache};
pub use encoder::Encoder;
pub use error::{EmbedderError, Result};
pub use models_dir::{DEFAULT_MODEL, models_dir};
pub use pooling::Pooling;
pub use service::{EmbedderApi, MAX_TEXT_BYTES, MAX_TEXTS};
