use std::sync::Arc;

use bulkhead::api::{AdminToken, Embedders};
use bulkhead::cli::{self, AdminArgs, ClientArgs};
use bulkhead::config::{ServeArgs, ServeConfig};
use bulkhead::engine::{EngineConfig, Registry};
use bulkhead::local_embedder::LocalEmbedder;
use bulkhead::server::{ServeOptions, Services};
use bulkhead::tls::{self, ServerTls};
use clap::{Parser, Subcommand};

/// Bulkhead: a physically partitioned multi-tenant vector database.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server.
    Serve(ServeArgs),
    /// Manage tenants and tokens (needs the admin token).
    Admin(AdminArgs),
    /// Read and write one tenant's points (needs that tenant's token).
    Client(ClientArgs),
}

fn main() {
    // Every file this process writes is its owner's alone (RocksDB's
    // tables and logs, snapshots, the audit log, tokens, exports): RocksDB
    // creates files 0644 less the umask and has no setting of its own.
    // SAFETY: umask only swaps the process's file-creation mask; it cannot
    // fail and touches no memory.
    unsafe {
        libc::umask(0o077);
    }
    let parsed = Cli::parse();
    // The server logs what it does; the CLI speaks only when something is wrong.
    let default_level = match parsed.command {
        Command::Serve(_) => "info",
        Command::Admin(_) | Command::Client(_) => "warn",
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| default_level.into()),
        )
        .init();
    let result = match parsed.command {
        Command::Serve(args) => serve(args),
        Command::Admin(args) => cli::block_on(args.execute()),
        Command::Client(args) => cli::block_on(args.execute()),
    };
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn serve(args: ServeArgs) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let config = args.resolve()?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let data_dir = config.data_dir.clone();
        let mut engine = EngineConfig::default();
        engine.storage.tenants_per_shelf = config.tenants_per_shelf;
        if let Some(mib) = config.memory_budget_mib {
            engine.memory_budget_bytes = mib * 1024 * 1024;
        }
        tracing::info!(
            memory_budget_mib = engine.memory_budget_bytes / (1024 * 1024),
            "memory budget for loaded tenants"
        );
        let registry =
            tokio::task::spawn_blocking(move || Registry::open(&data_dir, engine)).await??;
        tracing::info!(data_dir = %config.data_dir.display(), "data directory open");
        let admin_token = admin_token(&registry)?;
        let tls = config.tls.clone().map(ServerTls::load).transpose()?;
        let reload = tls::reload_on_sighup(tls.clone())?;
        if tls.is_none() && !config.listen.ip().is_loopback() {
            tracing::warn!(addr = %config.listen, "--insecure: serving plaintext beyond loopback; tokens and data cross the network in the clear");
        }
        let (embedders, local) = embedders(&config).await?;
        let listener = tokio::net::TcpListener::bind(config.listen).await?;
        let metrics = match config.metrics_listen {
            Some(addr) => Some(tokio::net::TcpListener::bind(addr).await?),
            None => None,
        };
        let registry = Arc::new(registry);
        let services = Services::new(&registry, admin_token, embedders);
        let options = ServeOptions {
            tls,
            metrics,
            ..ServeOptions::default()
        };
        let served =
            bulkhead::server::serve_with(registry, services, listener, shutdown_signal(), options)
                .await;
        reload.abort();
        if let Some(local) = local {
            tokio::task::spawn_blocking(move || local.stop()).await?;
        }
        served
    })
}

/// The configured sidecars; else a local one if the model is there; else
/// none (text calls then get FAILED_PRECONDITION).
async fn embedders(
    config: &ServeConfig,
) -> Result<(Embedders, Option<LocalEmbedder>), Box<dyn std::error::Error + Send + Sync>> {
    if let (Some(secret), false) = (&config.embedder_secret, config.embedders.is_empty()) {
        tracing::info!(classes = ?config.embedders.keys().collect::<Vec<_>>(), "embedders configured");
        let files = &config.embedder_tls;
        let tls = bulkhead_client::Tls::from_files(
            files.ca_cert.as_deref(),
            files.cert.as_deref(),
            files.key.as_deref(),
        )
        .map_err(|e| format!("embedder TLS: {e}"))?;
        return Ok((
            Embedders::new(secret.clone(), &config.embedders, &tls)?,
            None,
        ));
    }
    if !config.local_embedder {
        tracing::info!("no embedder: text calls are refused");
        return Ok((Embedders::none(), None));
    }
    let models_dir = config.models_dir.clone();
    match tokio::task::spawn_blocking(move || LocalEmbedder::start(&models_dir)).await? {
        Ok(Some((local, embedders))) => {
            tracing::info!(
                url = local.url(),
                "local embedder started for every trust class"
            );
            Ok((embedders, Some(local)))
        }
        Ok(None) => {
            tracing::info!(models_dir = %config.models_dir.display(), "no embedder: the default model is not in the models directory (scripts/fetch-model.sh fetches it); text calls are refused");
            Ok((Embedders::none(), None))
        }
        Err(e) => {
            tracing::warn!(error = %e, "no embedder: the local one did not start; text calls are refused");
            Ok((Embedders::none(), None))
        }
    }
}

/// BULKHEAD_ADMIN_TOKEN, or the token kept in the data directory (generated
/// on first start). The log names the file, never the secret.
fn admin_token(
    registry: &Registry,
) -> Result<AdminToken, Box<dyn std::error::Error + Send + Sync>> {
    if let Ok(token) = std::env::var("BULKHEAD_ADMIN_TOKEN") {
        tracing::info!("admin token from BULKHEAD_ADMIN_TOKEN");
        return Ok(AdminToken::new(token)?);
    }
    let mut generated = None;
    let (token, file, created) = registry.admin_token_file(|| {
        let token = AdminToken::generate();
        let secret = token
            .as_ref()
            .map(|t| t.secret().to_string())
            .unwrap_or_default();
        generated = Some(token);
        secret
    })?;
    if let Some(Err(e)) = generated {
        return Err(e.into());
    }
    if created {
        tracing::info!(file = %file.display(), "generated an admin token (mode 0600)");
    } else {
        tracing::info!(file = %file.display(), "admin token from file");
    }
    Ok(AdminToken::new(token)?)
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutting down");
}
