//! `bulkhead-embedder`: the embedding sidecar.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bulkhead_embedder::{
    BatchConfig, Batchers, DEFAULT_MODEL, EmbedderApi, EmbeddingCache, Encoder, models_dir,
};
use clap::Parser;
use tonic::transport::server::TcpIncoming;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Bulkhead's embedding sidecar: batched sentence encoders, one batcher per
/// trust class, a per-tenant cache. Only the Bulkhead server may call it.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// gRPC listen address.
    #[arg(
        long,
        env = "BULKHEAD_EMBEDDER_LISTEN",
        default_value = "127.0.0.1:50552"
    )]
    listen: SocketAddr,
    /// The secret the Bulkhead server sends (at least 16 characters).
    #[arg(long, env = "BULKHEAD_EMBEDDER_SECRET", hide_env_values = true)]
    secret: String,
    /// Trust classes served, comma-separated; requests of other classes are
    /// refused. `*` serves any class, each with its own queue and batcher.
    #[arg(
        long,
        env = "BULKHEAD_EMBEDDER_TRUST_CLASSES",
        value_delimiter = ',',
        default_value = "default"
    )]
    trust_classes: Vec<String>,
    /// Directory of model folders.
    #[arg(long, env = "BULKHEAD_MODELS_DIR")]
    models_dir: Option<PathBuf>,
    /// The model to serve (a folder in the models directory).
    #[arg(long, default_value = DEFAULT_MODEL)]
    model: String,
    /// Most texts per encoder call.
    #[arg(long, default_value_t = 32)]
    max_batch: usize,
    /// Milliseconds a request waits for others of its class.
    #[arg(long, default_value_t = 5)]
    max_wait_ms: u64,
    /// Texts one tenant may have waiting in its class's queue; a request
    /// that would pass it is RESOURCE_EXHAUSTED, naming this limit.
    #[arg(long, default_value_t = 4_096)]
    queue: usize,
    /// Embedding cache size in MiB, all tenants together.
    #[arg(long, default_value_t = 256)]
    cache_mib: usize,
    /// The most MiB of the cache one tenant's entries may take: its own
    /// entries make room for its new ones, never another tenant's.
    #[arg(long, default_value_t = 16)]
    cache_tenant_mib: usize,
    /// Run as a child of `bulkhead serve`: print `listening <addr>` on stdout
    /// once serving, and stop when stdin closes (the parent is gone).
    #[arg(long, hide = true)]
    supervised: bool,
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    if let Err(e) = serve(Args::parse()).await {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

async fn serve(args: Args) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    if args.secret.len() < 16 {
        return Err("the shared secret must be at least 16 characters".into());
    }
    let dir = args.models_dir.unwrap_or_else(models_dir).join(&args.model);
    let encoder =
        tokio::task::spawn_blocking(move || Encoder::load(&dir, &candle_core::Device::Cpu))
            .await??;
    let config = BatchConfig {
        max_batch: args.max_batch.max(1),
        max_wait: Duration::from_millis(args.max_wait_ms),
        queue_capacity: args.queue.max(1),
    };
    let digest = encoder.digest().to_string();
    let batchers = Arc::new(Batchers::start(
        &args.trust_classes,
        Arc::new(encoder),
        config,
    ));
    let cache = Arc::new(EmbeddingCache::with_tenant_share(
        args.cache_mib << 20,
        args.cache_tenant_mib << 20,
    ));
    let api = EmbedderApi::new(args.secret, args.model, digest, batchers, cache);
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_service_status("", tonic_health::ServingStatus::Serving)
        .await;
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    let addr = listener.local_addr()?;
    tracing::info!(addr = %addr, classes = ?args.trust_classes, "embedder serving");
    let parent_gone = if args.supervised {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening {addr}")?;
        out.flush()?;
        Some(stdin_closed())
    } else {
        None
    };
    let stop = async move {
        match parent_gone {
            Some(gone) => tokio::select! {
                _ = shutdown() => {},
                _ = gone => tracing::info!("the parent server is gone; stopping"),
            },
            None => shutdown().await,
        }
    };
    tonic::transport::Server::builder()
        .add_service(health)
        .add_service(api.into_service())
        .serve_with_incoming_shutdown(TcpIncoming::from(listener).with_nodelay(Some(true)), stop)
        .await?;
    Ok(())
}

/// Completes when stdin reaches its end or fails: the supervising server
/// holds the other end of the pipe, and the kernel closes it when the server
/// exits, even by SIGKILL.
fn stdin_closed() -> tokio::sync::oneshot::Receiver<()> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        use std::io::Read;
        let mut sink = [0u8; 64];
        let mut stdin = std::io::stdin().lock();
        while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
        let _ = tx.send(());
    });
    rx
}

/// SIGTERM (how the Bulkhead server stops a sidecar it started) or Ctrl-C.
async fn shutdown() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term.recv() => {},
    }
}
