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
    /// A file (mode 0600) holding the secret the Bulkhead server sends (at
    /// least 16 characters). Never on the command line, where every local
    /// user sees it.
    #[arg(
        long,
        env = "BULKHEAD_EMBEDDER_SECRET_FILE",
        required_unless_present = "supervised"
    )]
    secret_file: Option<PathBuf>,
    /// TLS certificate chain (PEM): with --tls-key, the sidecar speaks only
    /// TLS.
    #[arg(long, env = "BULKHEAD_EMBEDDER_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM, mode 0600).
    #[arg(long, env = "BULKHEAD_EMBEDDER_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// CA certificates (PEM): the caller must present a certificate they
    /// sign (mutual TLS). Needs --tls-cert.
    #[arg(long, env = "BULKHEAD_EMBEDDER_TLS_CLIENT_CA", requires = "tls_cert")]
    tls_client_ca: Option<PathBuf>,
    /// Serve plaintext on an address other than loopback: the secret and
    /// every text then cross the network in the clear.
    #[arg(long)]
    insecure: bool,
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
    /// Run as a child of `bulkhead serve`: read the secret from the first
    /// line of stdin, print `listening <addr>` on stdout once serving, and
    /// stop when stdin closes (the parent is gone).
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
    let secret = secret(&args)?;
    if secret.len() < 16 {
        return Err("the shared secret must be at least 16 characters".into());
    }
    let tls = tls(&args)?;
    if tls.is_none() && !args.listen.ip().is_loopback() {
        if !args.insecure {
            return Err(format!(
                "listening on {} without TLS would send the secret and every text in the clear: give --tls-cert and --tls-key, listen on loopback, or pass --insecure",
                args.listen
            )
            .into());
        }
        tracing::warn!(addr = %args.listen, "--insecure: serving plaintext beyond loopback");
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
    let api = EmbedderApi::new(secret, args.model, digest, batchers, cache);
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_service_status("", tonic_health::ServingStatus::Serving)
        .await;
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    let addr = listener.local_addr()?;
    tracing::info!(addr = %addr, classes = ?args.trust_classes, tls = tls.is_some(), "embedder serving");
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
    let mut server = tonic::transport::Server::builder();
    if let Some(tls) = tls {
        server = server.tls_config(tls)?;
    }
    server
        .add_service(health)
        .add_service(api.into_service())
        .serve_with_incoming_shutdown(TcpIncoming::from(listener).with_nodelay(Some(true)), stop)
        .await?;
    Ok(())
}

/// The shared secret: the first line of stdin when supervised (the parent
/// writes it there: never in argv or the environment), else the file.
fn secret(args: &Args) -> Result<String, Box<dyn std::error::Error + Send + Sync>> {
    let text = if args.supervised {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        line
    } else {
        let Some(path) = &args.secret_file else {
            return Err(
                "give --secret-file (a file of mode 0600 holding the shared secret)".into(),
            );
        };
        let bytes =
            bulkhead_client::read_secret_file(path).map_err(|e| format!("--secret-file: {e}"))?;
        String::from_utf8(bytes)
            .map_err(|_| format!("--secret-file {}: not UTF-8 text", path.display()))?
    };
    Ok(text.trim().to_string())
}

/// The listener's TLS settings from --tls-cert, --tls-key, --tls-client-ca.
fn tls(
    args: &Args,
) -> Result<Option<tonic::transport::ServerTlsConfig>, Box<dyn std::error::Error + Send + Sync>> {
    let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) else {
        return Ok(None);
    };
    let cert = fs_err::read(cert).map_err(|e| format!("--tls-cert: {e}"))?;
    let key = bulkhead_client::read_secret_file(key).map_err(|e| format!("--tls-key: {e}"))?;
    let mut config = tonic::transport::ServerTlsConfig::new()
        .identity(tonic::transport::Identity::from_pem(cert, key));
    if let Some(ca) = &args.tls_client_ca {
        let ca = fs_err::read(ca).map_err(|e| format!("--tls-client-ca: {e}"))?;
        config = config.client_ca_root(tonic::transport::Certificate::from_pem(ca));
    }
    Ok(Some(config))
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
