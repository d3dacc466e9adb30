//! Set-up shared by the embedder's test binaries: the real model, loaded
//! once per binary, and the sidecar served over real gRPC on 127.0.0.1:0.

#![allow(dead_code)] // each test binary uses a different part

use std::sync::{Arc, OnceLock};

use bulkhead_client::proto::embedder_service_client::EmbedderServiceClient;
use bulkhead_client::proto::{EmbedRequest, EmbedResponse};
use bulkhead_embedder::{
    BatchConfig, Batchers, DEFAULT_MODEL, EmbedderApi, EmbeddingCache, Encoder, models_dir,
};
use tonic::transport::Channel;
use tonic::{Request, Status};

pub const SECRET: &str = "sidecar-test-secret-0123456789";

/// The default model, loaded once.
pub fn encoder() -> Arc<Encoder> {
    static ENCODER: OnceLock<Arc<Encoder>> = OnceLock::new();
    Arc::clone(ENCODER.get_or_init(|| {
        let dir = models_dir().join(DEFAULT_MODEL);
        let encoder = Encoder::load(&dir, &candle_core::Device::Cpu).unwrap_or_else(|e| {
            panic!(
                "cannot load {} ({e}); `make setup` fetches it",
                dir.display()
            )
        });
        Arc::new(encoder)
    }))
}

pub struct Sidecar {
    pub client: EmbedderServiceClient<Channel>,
    pub batchers: Arc<Batchers>,
    pub cache: Arc<EmbeddingCache>,
}

/// The sidecar for `classes`, holding SECRET.
pub async fn start(classes: &[&str], config: BatchConfig) -> Sidecar {
    let classes: Vec<String> = classes.iter().map(|c| c.to_string()).collect();
    let batchers = Arc::new(Batchers::start(&classes, encoder(), config));
    let cache = Arc::new(EmbeddingCache::new(64 << 20));
    let api = EmbedderApi::new(
        SECRET.into(),
        DEFAULT_MODEL.into(),
        encoder().digest().to_string(),
        Arc::clone(&batchers),
        Arc::clone(&cache),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(api.into_service())
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let client = EmbedderServiceClient::connect(url).await.unwrap();
    Sidecar {
        client,
        batchers,
        cache,
    }
}

/// One Embed call with `secret`.
pub async fn embed(
    client: &EmbedderServiceClient<Channel>,
    secret: &str,
    tenant: &str,
    class: &str,
    texts: &[String],
) -> Result<EmbedResponse, Status> {
    let mut request = Request::new(EmbedRequest {
        tenant: tenant.into(),
        trust_class: class.into(),
        model: String::new(),
        texts: texts.to_vec(),
    });
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {secret}").parse().unwrap());
    client.clone().embed(request).await.map(|r| r.into_inner())
}
