//! The embedding sidecars the server calls, one per trust class. A tenant's
//! texts go only to the sidecar of its own trust class, and reach it under
//! the tenant's incarnation, so a dropped and recreated name shares no
//! cache entry with its predecessor.

use std::collections::HashMap;

use bulkhead_client::proto::embedder_service_client::EmbedderServiceClient;
use bulkhead_client::proto::{
    CacheStatsRequest, EmbedRequest, EmbedResponse, EmbeddingCacheStats, ForgetRequest,
};
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

use crate::config::ConfigError;
use crate::engine::{Embed, EmbedFailure, Embedded, TrustClass};

/// How long describe waits for the embedder's counters.
const STATS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

#[derive(Debug, Clone, Default)]
pub struct Embedders {
    secret: String,
    by_class: HashMap<String, EmbedderServiceClient<Channel>>,
    /// The local sidecar `bulkhead serve` started, which serves every class
    /// (each with its own queue and batcher there).
    any_class: Option<EmbedderServiceClient<Channel>>,
}

/// A client of the sidecar at `url`: https:// verifies the sidecar's
/// certificate against `tls`'s CA (or the system's roots) and presents
/// `tls`'s client certificate to a sidecar that requires one.
fn client(
    url: &str,
    tls: &bulkhead_client::Tls,
) -> Result<EmbedderServiceClient<Channel>, ConfigError> {
    let channel = bulkhead_client::endpoint(url, tls)
        .map_err(|e| ConfigError::new(format!("embedder {url}: {e}")))?
        .connect_lazy();
    Ok(EmbedderServiceClient::new(channel)
        .max_decoding_message_size(super::MAX_MESSAGE_BYTES)
        .max_encoding_message_size(super::MAX_MESSAGE_BYTES))
}

impl Embedders {
    /// No sidecar: text calls fail with FAILED_PRECONDITION.
    pub fn none() -> Self {
        Embedders::default()
    }

    /// Sidecars by trust class (`url` like "https://10.0.0.5:50552"), all
    /// holding `secret`, reached as `tls` says. Connections are made on
    /// first use.
    pub fn new(
        secret: String,
        urls: &HashMap<String, String>,
        tls: &bulkhead_client::Tls,
    ) -> Result<Self, ConfigError> {
        let mut by_class = HashMap::new();
        for (class, url) in urls {
            let client = client(url, tls)
                .map_err(|e| ConfigError::new(format!("embedder for trust class {class}: {e}")))?;
            by_class.insert(class.clone(), client);
        }
        Ok(Embedders {
            secret,
            by_class,
            any_class: None,
        })
    }

    /// One sidecar for every trust class: the one `bulkhead serve` starts,
    /// on loopback (plaintext: the bytes never leave the host).
    pub fn local(secret: String, url: &str) -> Result<Self, ConfigError> {
        Ok(Embedders {
            secret,
            by_class: HashMap::new(),
            any_class: Some(client(url, &bulkhead_client::Tls::default())?),
        })
    }

    fn client(&self, trust_class: &str) -> Option<EmbedderServiceClient<Channel>> {
        self.by_class
            .get(trust_class)
            .or(self.any_class.as_ref())
            .cloned()
    }

    fn request<T>(&self, message: T) -> Result<Request<T>, Status> {
        let mut request = Request::new(message);
        let mut bearer: tonic::metadata::MetadataValue<_> = format!("Bearer {}", self.secret)
            .parse()
            .map_err(|_| Status::internal("the embedder secret cannot be sent"))?;
        bearer.set_sensitive(true);
        request.metadata_mut().insert("authorization", bearer);
        Ok(request)
    }

    /// Embeds `texts` of the tenant `incarnation` in `trust_class`.
    async fn embed_async(
        &self,
        trust_class: &str,
        incarnation: u64,
        texts: Vec<String>,
    ) -> Result<EmbedResponse, EmbedFailure> {
        let mut client = self
            .client(trust_class)
            .ok_or(EmbedFailure::NotConfigured)?;
        let request = self
            .request(EmbedRequest {
                tenant: cache_tenant(incarnation),
                trust_class: trust_class.to_string(),
                model: String::new(),
                texts,
            })
            .map_err(|status| {
                tracing::error!(message = status.message(), "embedder request");
                EmbedFailure::Failed
            })?;
        match client.embed(request).await {
            Ok(response) => Ok(response.into_inner()),
            Err(status) => Err(match status.code() {
                Code::InvalidArgument => EmbedFailure::Refused(status.message().to_string()),
                Code::ResourceExhausted => EmbedFailure::Busy(status.message().to_string()),
                Code::Unavailable => EmbedFailure::Unavailable,
                code => {
                    tracing::error!(?code, message = status.message(), "embedder call failed");
                    EmbedFailure::Failed
                }
            }),
        }
    }

    /// Drops a dropped tenant's cache entries. Best effort: the entries are
    /// unreachable anyway (a new tenant of the name has a new incarnation),
    /// and the cache's LRU bound evicts them in time.
    pub(crate) async fn forget(&self, trust_class: &str, incarnation: u64) {
        let Some(mut client) = self.client(trust_class) else {
            return;
        };
        let Ok(request) = self.request(ForgetRequest {
            tenant: cache_tenant(incarnation),
        }) else {
            return;
        };
        if let Err(status) = client.forget(request).await {
            tracing::warn!(code = ?status.code(), "the embedder did not forget a dropped tenant's cache entries");
        }
    }

    /// A tenant's cache counters, or None when no embedder serves its class
    /// or the embedder does not answer.
    pub(crate) async fn cache_stats(
        &self,
        trust_class: &str,
        incarnation: u64,
    ) -> Option<EmbeddingCacheStats> {
        let mut client = self.client(trust_class)?;
        let request = self
            .request(CacheStatsRequest {
                tenant: cache_tenant(incarnation),
            })
            .ok()?;
        let answer = tokio::time::timeout(STATS_TIMEOUT, client.cache_stats(request)).await;
        let stats = answer.ok()?.ok()?.into_inner();
        Some(EmbeddingCacheStats {
            hits: stats.hits,
            misses: stats.misses,
        })
    }
}

/// The engine's encoder: the sidecar of the tenant's trust class, called
/// from the engine's blocking thread.
impl Embed for Embedders {
    fn embed(
        &self,
        trust_class: &TrustClass,
        incarnation: u64,
        texts: Vec<String>,
    ) -> Result<Embedded, EmbedFailure> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            tracing::error!("the embedder was called outside the server's runtime");
            EmbedFailure::Failed
        })?;
        let answer =
            runtime.block_on(self.embed_async(trust_class.as_str(), incarnation, texts))?;
        Ok(Embedded {
            vectors: answer.embeddings.into_iter().map(|e| e.values).collect(),
            model: answer.model,
            model_digest: answer.model_digest,
            tokens: answer.tokens,
        })
    }
}

/// How a tenant is named to the sidecar: by incarnation, never by name.
fn cache_tenant(incarnation: u64) -> String {
    format!("t{incarnation}")
}
