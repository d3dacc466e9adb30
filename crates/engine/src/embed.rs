//! What the engine needs of an encoder of texts, defined here so that the
//! engine never depends on how one is reached: the server implements it
//! with its sidecar client.

use crate::error::EmbedFailure;
use crate::name::TrustClass;

/// An encoder of texts, as the engine needs one.
pub trait Embed: Send + Sync {
    /// Vectors for `texts`, in order, from the encoder of `trust_class`, for
    /// the tenant `incarnation` (its cache is keyed by it).
    fn embed(
        &self,
        trust_class: &TrustClass,
        incarnation: u64,
        texts: Vec<String>,
    ) -> std::result::Result<Embedded, EmbedFailure>;
}

/// What an encoder answered.
#[derive(Debug, Clone, PartialEq)]
pub struct Embedded {
    pub vectors: Vec<Vec<f32>>,
    /// The model's name, as the encoder says it.
    pub model: String,
    /// The SHA-256 of the model's weights, as the encoder computed it.
    pub model_digest: String,
    /// Tokens the encoder ran (cache hits take none): what the tenant's
    /// `max_embedding_tokens_per_minute` is charged.
    pub tokens: u64,
}

/// No encoder: every text is refused with [`EmbedFailure::NotConfigured`].
#[derive(Debug, Clone, Copy, Default)]
pub struct NoEmbedder;

impl Embed for NoEmbedder {
    fn embed(
        &self,
        _: &TrustClass,
        _: u64,
        _: Vec<String>,
    ) -> std::result::Result<Embedded, EmbedFailure> {
        Err(EmbedFailure::NotConfigured)
    }
}
