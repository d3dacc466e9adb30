//! Bulkhead's embedding sidecar: BERT-family sentence encoders on candle,
//! loaded from a standard Hugging Face / sentence-transformers folder.
//!
//! This crate never fetches anything: a model is a folder on disk
//! (config.json, model.safetensors, tokenizer.json and the
//! sentence-transformers module configs). `scripts/fetch-model.sh` puts the
//! default model, all-MiniLM-L6-v2, into `$BULKHEAD_MODELS_DIR`.

#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

mod encoder;
mod error;
mod models_dir;
mod pooling;

pub use encoder::Encoder;
pub use error::{EmbedderError, Result};
pub use models_dir::{DEFAULT_MODEL, models_dir};
pub use pooling::Pooling;
