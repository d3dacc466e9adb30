//! The embedding sidecars the server calls, one per trust class. A tenant's
//! texts go only to the sidecar of its own trust class, and reach it under
//! the tenant's incarnation, so a dropped and recreated name shares no
//! cache entry with its predecessor.

use std::collections::HashMap;

use bulkhead_client::proto::embedder_service_client::EmbedderServiceClient;
use bulkhead_client::proto::{EmbedRequest, EmbedResponse};
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

#[derive(Debug, Clone, Default)]
pub struct Embedders {
    secret: String,
    by_class: HashMap<String, EmbedderServiceClient<Channel>>,
}

impl Embedders {
    /// No sidecar: text calls fail with FAILED_PRECONDITION.
    pub fn none() -> Self {
        Embedders::default()
    }

    /// Sidecars by trust class (`url` like "http://127.0.0.1:50552"), all
    /// holding `secret`. Connections are made on first use.
    pub fn new(secret: String, urls: &HashMap<String, String>) -> Result<Self, String> {
        let mut by_class = HashMap::new();
        for (class, url) in urls {
            let channel = Channel::from_shared(url.clone())
                .map_err(|e| format!("embedder for trust class {class}: bad url {url}: {e}"))?
                .connect_lazy();
            by_class.insert(class.clone(), EmbedderServiceClient::new(channel));
        }
        Ok(Embedders { secret, by_class })
    }

    /// Embeds `texts` of the tenant `incarnation` in `trust_class`.
    pub(crate) async fn embed(
        &self,
        trust_class: &str,
        incarnation: u64,
        texts: Vec<String>,
    ) -> Result<EmbedResponse, Status> {
        let client = self.by_class.get(trust_class).ok_or_else(|| {
            Status::failed_precondition(
                "no embedder serves this tenant's trust class; configure one to embed text",
            )
        })?;
        let mut request = Request::new(EmbedRequest {
            tenant: format!("t{incarnation}"),
            trust_class: trust_class.to_string(),
            model: String::new(),
            texts,
        });
        let bearer = format!("Bearer {}", self.secret)
            .parse()
            .map_err(|_| Status::internal("the embedder secret cannot be sent"))?;
        request.metadata_mut().insert("authorization", bearer);
        match client.clone().embed(request).await {
            Ok(response) => Ok(response.into_inner()),
            Err(status) => Err(match status.code() {
                Code::InvalidArgument | Code::ResourceExhausted => status,
                Code::Unavailable => {
                    Status::unavailable("the embedder is unavailable; retry later")
                }
                code => {
                    tracing::error!(?code, message = status.message(), "embedder call failed");
                    Status::internal("the embedder failed")
                }
            }),
        }
    }
}
