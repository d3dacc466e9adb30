//! The `EmbedderService` gRPC service: shared-secret check, cache, batchers.

use std::sync::Arc;

use bulkhead_client::proto;
use tonic::{Request, Response, Status};

use crate::batcher::{BatchError, Batchers};
use crate::cache::EmbeddingCache;

/// Most texts in one request, and bytes in one text.
pub const MAX_TEXTS: usize = 1_024;
pub const MAX_TEXT_BYTES: usize = 32 * 1024;

/// Generated server trait and wrapper (messages come from bulkhead-client).
pub mod server {
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("bulkhead.v1");
}

#[derive(Debug, Clone)]
pub struct EmbedderApi {
    secret: String,
    model: String,
    /// SHA-256 of the model's weights, reported with every answer.
    model_digest: String,
    batchers: Arc<Batchers>,
    cache: Arc<EmbeddingCache>,
}

impl EmbedderApi {
    /// `secret`: what the server must send as `authorization: Bearer <secret>`.
    /// `model_digest`: [`crate::Encoder::digest`] of the model served.
    pub fn new(
        secret: String,
        model: String,
        model_digest: String,
        batchers: Arc<Batchers>,
        cache: Arc<EmbeddingCache>,
    ) -> Self {
        EmbedderApi {
            secret,
            model,
            model_digest,
            batchers,
            cache,
        }
    }

    pub fn into_service(self) -> server::embedder_service_server::EmbedderServiceServer<Self> {
        server::embedder_service_server::EmbedderServiceServer::new(self)
            .max_decoding_message_size(64 * 1024 * 1024)
            .max_encoding_message_size(64 * 1024 * 1024)
    }

    fn check_secret<T>(&self, request: &Request<T>) -> Result<(), Status> {
        let presented = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if bulkhead_client::secrets_equal(presented.as_bytes(), self.secret.as_bytes()) {
            Ok(())
        } else {
            Err(Status::unauthenticated(
                "only the Bulkhead server may call the embedder: send its shared secret",
            ))
        }
    }
}

#[tonic::async_trait]
impl server::embedder_service_server::EmbedderService for EmbedderApi {
    async fn embed(
        &self,
        request: Request<proto::EmbedRequest>,
    ) -> Result<Response<proto::EmbedResponse>, Status> {
        self.check_secret(&request)?;
        let r = request.into_inner();
        if r.tenant.is_empty() || r.trust_class.is_empty() {
            return Err(Status::invalid_argument(
                "tenant and trust_class are required",
            ));
        }
        if !r.model.is_empty() && r.model != self.model {
            return Err(Status::not_found(format!(
                "this sidecar serves the model {}, not {}",
                self.model, r.model
            )));
        }
        if r.texts.len() > MAX_TEXTS {
            return Err(Status::invalid_argument(format!(
                "{} texts in one request, the limit is {MAX_TEXTS}",
                r.texts.len()
            )));
        }
        if let Some(i) = r.texts.iter().position(|t| t.len() > MAX_TEXT_BYTES) {
            return Err(Status::invalid_argument(format!(
                "texts[{i}] is longer than {MAX_TEXT_BYTES} bytes"
            )));
        }
        let mut out: Vec<Option<Arc<[f32]>>> = r
            .texts
            .iter()
            .map(|t| self.cache.get(&r.tenant, &self.model, t))
            .collect();
        let missing: Vec<usize> = (0..out.len()).filter(|&i| out[i].is_none()).collect();
        let mut tokens = 0;
        if !missing.is_empty() {
            let texts: Vec<String> = missing.iter().map(|&i| r.texts[i].clone()).collect();
            let encoded = self
                .batchers
                .embed(&r.trust_class, &r.tenant, texts)
                .await
                .map_err(|e| match e {
                    BatchError::ClassNotServed => Status::permission_denied(e.to_string()),
                    BatchError::QueueFull { .. } => Status::resource_exhausted(e.to_string()),
                    _ => {
                        tracing::error!(error = %e, "encoding failed");
                        Status::internal("encoding failed")
                    }
                })?;
            tokens = encoded.tokens;
            for (&i, vector) in missing.iter().zip(encoded.vectors) {
                let vector: Arc<[f32]> = vector.into();
                self.cache
                    .put(&r.tenant, &self.model, &r.texts[i], Arc::clone(&vector));
                out[i] = Some(vector);
            }
        }
        Ok(Response::new(proto::EmbedResponse {
            embeddings: out
                .into_iter()
                .map(|v| proto::Embedding {
                    values: v.map(|v| v.to_vec()).unwrap_or_default(),
                })
                .collect(),
            model: self.model.clone(),
            model_digest: self.model_digest.clone(),
            tokens,
        }))
    }

    async fn forget(
        &self,
        request: Request<proto::ForgetRequest>,
    ) -> Result<Response<proto::ForgetResponse>, Status> {
        self.check_secret(&request)?;
        let tenant = &request.get_ref().tenant;
        if tenant.is_empty() {
            return Err(Status::invalid_argument("tenant is required"));
        }
        self.cache.forget_tenant(tenant);
        Ok(Response::new(proto::ForgetResponse {}))
    }

    async fn cache_stats(
        &self,
        request: Request<proto::CacheStatsRequest>,
    ) -> Result<Response<proto::CacheStatsResponse>, Status> {
        self.check_secret(&request)?;
        let tenant = &request.get_ref().tenant;
        if tenant.is_empty() {
            return Err(Status::invalid_argument("tenant is required"));
        }
        let counters = self.cache.counters(tenant);
        Ok(Response::new(proto::CacheStatsResponse {
            hits: counters.hits,
            misses: counters.misses,
        }))
    }
}
