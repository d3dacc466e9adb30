//! `bulkhead admin`: tenants, tokens, contracts and models, with the admin
//! token.

use bulkhead_client::{AdminClient, proto};
use clap::{Args, Subcommand};
use serde_json::json;

use super::{CliResult, print_json};

#[derive(Debug, Args)]
pub struct AdminArgs {
    #[command(flatten)]
    connection: super::Connection,
    /// The admin token (the server logs where it keeps a generated one).
    #[arg(
        long,
        env = "BULKHEAD_ADMIN_TOKEN",
        hide_env_values = true,
        global = true
    )]
    token: Option<String>,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: AdminCommand,
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// Create, list, describe and drop tenants.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Issue, revoke and list tenant tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Register, list and assign encoder models with their lineage.
    #[command(subcommand)]
    Model(ModelCommand),
    /// The models whose lineage holds a tenant's data.
    Lineage {
        #[arg(long)]
        tenant: String,
    },
    /// Export the texts of tenants whose contracts allow training (pooled
    /// with each other when several): DIR/data.jsonl, tenant-tagged, and
    /// DIR/manifest.cdx.json (CycloneDX 1.6).
    ExportTrainingData {
        /// The tenants, comma-separated.
        #[arg(long, value_delimiter = ',', required = true)]
        tenants: Vec<String>,
        /// The folder to write (created; must be empty).
        #[arg(long)]
        out: std::path::PathBuf,
    },
    /// Prove isolation live: create canary tenants, probe each from the
    /// others through every RPC and the embedder, print one row per layer,
    /// drop the canaries. Exits non-zero on any leak.
    Audit,
}

#[derive(Debug, Subcommand)]
enum TenantCommand {
    /// Create a tenant.
    Create {
        name: String,
        /// Vector dimension (1-4096).
        #[arg(long)]
        dim: u32,
        /// cosine, l2 or dot.
        #[arg(long, default_value = "cosine", value_parser = parse_metric)]
        metric: proto::Metric,
        /// Trust class (default: "default").
        #[arg(long)]
        trust_class: Option<String>,
        /// HNSW neighbours per node (4-128, default 16).
        #[arg(long)]
        m: Option<u32>,
        /// HNSW build candidate list (8-4096, default 200).
        #[arg(long)]
        ef_construction: Option<u32>,
        #[command(flatten)]
        quotas: QuotaArgs,
        #[command(flatten)]
        contract: ContractArgs,
    },
    /// Replace a tenant's contract (its version goes up by one; audited).
    Contract {
        name: String,
        #[command(flatten)]
        contract: ContractArgs,
    },
    /// List every tenant.
    List,
    /// Show one tenant (without loading it).
    Describe { name: String },
    /// A tenant's access log: its data-plane calls by token, RPC and
    /// outcome, a minute at a time, oldest first.
    AccessLog {
        name: String,
        #[command(flatten)]
        page: super::AccessLogPage,
    },
    /// Replace a tenant's quotas (an unset one becomes unlimited).
    Quotas {
        name: String,
        #[command(flatten)]
        quotas: QuotaArgs,
    },
    /// Pin a tenant: the memory budget never evicts it.
    Pin { name: String },
    /// Unpin a tenant.
    Unpin { name: String },
    /// Load a cold tenant now.
    Warm { name: String },
    /// Evict a tenant to cold now (refused while pinned).
    Cool { name: String },
    /// Drop a tenant: its data, files and tokens are gone when this returns.
    Drop { name: String },
}

/// Per-tenant quotas; unset or 0 is unlimited.
#[derive(Debug, Args)]
struct QuotaArgs {
    /// Most live points.
    #[arg(long)]
    max_points: Option<u64>,
    /// Most data-plane requests per second.
    #[arg(long)]
    max_requests_per_second: Option<u32>,
    /// Most searches in flight at once.
    #[arg(long)]
    max_concurrent_searches: Option<u32>,
    /// Most bytes of JSON payload in total.
    #[arg(long)]
    max_payload_bytes: Option<u64>,
    /// Most tokens the embedder may encode for the tenant per minute.
    #[arg(long)]
    max_embedding_tokens_per_minute: Option<u64>,
}

impl QuotaArgs {
    fn to_proto(&self) -> proto::Quotas {
        proto::Quotas {
            max_points: self.max_points.unwrap_or(0),
            max_requests_per_second: self.max_requests_per_second.unwrap_or(0),
            max_concurrent_searches: self.max_concurrent_searches.unwrap_or(0),
            max_payload_bytes: self.max_payload_bytes.unwrap_or(0),
            max_embedding_tokens_per_minute: self.max_embedding_tokens_per_minute.unwrap_or(0),
        }
    }
}

/// Whether a tenant's data may train models.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum TrainingArg {
    /// No model may be shaped by it.
    None,
    /// Only models that serve this tenant alone.
    Own,
    /// Also models pooled with the tenants of --pool-with.
    Pooled,
}

/// What may be reported about a tenant's use.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum TelemetryArg {
    Aggregate,
    None,
}

/// A tenant contract (caching and retrieval scope are always the tenant).
#[derive(Debug, Args)]
struct ContractArgs {
    /// Whether the tenant's data may train models.
    #[arg(long, value_enum, default_value = "none")]
    training: TrainingArg,
    /// With --training pooled: the tenants it may be pooled with.
    #[arg(long, value_delimiter = ',')]
    pool_with: Vec<String>,
    /// What may be reported about the tenant's use.
    #[arg(long, value_enum, default_value = "aggregate")]
    telemetry: TelemetryArg,
}

impl ContractArgs {
    fn to_proto(&self) -> proto::TenantContract {
        proto::TenantContract {
            training: match self.training {
                TrainingArg::None => proto::TrainingUse::None,
                TrainingArg::Own => proto::TrainingUse::Own,
                TrainingArg::Pooled => proto::TrainingUse::Pooled,
            } as i32,
            pool_with: self.pool_with.clone(),
            telemetry: match self.telemetry {
                TelemetryArg::Aggregate => proto::Telemetry::Aggregate,
                TelemetryArg::None => proto::Telemetry::None,
            } as i32,
            ..Default::default()
        }
    }
}

#[derive(Debug, Subcommand)]
enum ModelCommand {
    /// Register a model folder (Hugging Face layout) by the SHA-256 of its
    /// model.safetensors, with its lineage manifest (CycloneDX 1.6 JSON).
    Register {
        /// The model folder.
        dir: std::path::PathBuf,
        /// The lineage manifest (CycloneDX 1.6 ML-BOM, JSON).
        #[arg(
            long,
            required_unless_present = "from_export",
            conflicts_with = "from_export"
        )]
        manifest: Option<std::path::PathBuf>,
        /// Build the manifest from a training export the model was trained
        /// on (`export-training-data --out DIR`).
        #[arg(long)]
        from_export: Option<std::path::PathBuf>,
        /// The model's name (default: the folder's name).
        #[arg(long)]
        name: Option<String>,
    },
    /// List the registered models.
    List,
    /// Assign a registered model to a trust class or a tenant.
    Assign {
        /// The model's digest (SHA-256 of its weights).
        digest: String,
        #[command(flatten)]
        target: AssignArgs,
    },
    /// Remove a trust class's or a tenant's assignment.
    Unassign {
        #[command(flatten)]
        target: AssignArgs,
    },
}

#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
struct AssignArgs {
    #[arg(long)]
    trust_class: Option<String>,
    #[arg(long)]
    tenant: Option<String>,
}

impl AssignArgs {
    fn target(self) -> proto::assign_model_request::Target {
        use proto::assign_model_request::Target;
        match (self.trust_class, self.tenant) {
            (Some(class), _) => Target::TrustClass(class),
            (None, tenant) => Target::Tenant(tenant.unwrap_or_default()),
        }
    }
}

/// The SHA-256 (hex) of a model folder's weights. fs_err's errors name
/// the file.
pub fn weights_digest(dir: &std::path::Path) -> std::io::Result<String> {
    use sha2::Digest as _;
    let mut file = fs_err::File::open(dir.join("model.safetensors"))?;
    let mut hasher = sha2::Sha256::new();
    std::io::copy(&mut file, &mut hasher)?;
    Ok(super::hex(&hasher.finalize()))
}

fn contract_json(c: &proto::TenantContract) -> serde_json::Value {
    json!({
        "version": c.version,
        "training": match proto::TrainingUse::try_from(c.training) {
            Ok(proto::TrainingUse::Own) => "own",
            Ok(proto::TrainingUse::Pooled) => "pooled",
            _ => "none",
        },
        "pool_with": c.pool_with,
        "telemetry": match proto::Telemetry::try_from(c.telemetry) {
            Ok(proto::Telemetry::None) => "none",
            _ => "aggregate",
        },
        "caching_scope": c.caching_scope,
        "retrieval_scope": c.retrieval_scope,
    })
}

fn model_json(m: &proto::ModelInfo) -> serde_json::Value {
    json!({
        "name": m.name,
        "digest": m.digest,
        "tenants": m.tenants,
        "public_datasets": m.public_datasets.iter().map(|d| d.name.clone()).collect::<Vec<_>>(),
        "registered_unix_ms": m.registered_unix_ms,
        "trust_classes": m.trust_classes,
        "assigned_tenants": m.assigned_tenants,
    })
}

fn model_line(m: &proto::ModelInfo) -> String {
    format!(
        "{}	{}	tenants={}	public_datasets={}	trust_classes={}	assigned_tenants={}",
        m.digest,
        m.name,
        m.tenants.join(","),
        m.public_datasets.len(),
        m.trust_classes.join(","),
        m.assigned_tenants.join(",")
    )
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Issue a token for a tenant; prints the secret once.
    Issue { tenant: String },
    /// Revoke a token by id.
    Revoke { id: String },
    /// List a tenant's tokens (ids and state, never secrets).
    List { tenant: String },
}

/// A metric as the command line names it (the server's names).
fn parse_metric(s: &str) -> Result<proto::Metric, String> {
    match s.to_ascii_lowercase().as_str() {
        "cosine" => Ok(proto::Metric::Cosine),
        "l2" | "euclid" | "euclidean" => Ok(proto::Metric::L2),
        "dot" => Ok(proto::Metric::Dot),
        other => Err(format!("unknown metric {other:?}: use cosine, l2 or dot")),
    }
}

fn metric_name(metric: i32) -> &'static str {
    match proto::Metric::try_from(metric) {
        Ok(proto::Metric::Cosine) => "cosine",
        Ok(proto::Metric::L2) => "l2",
        Ok(proto::Metric::Dot) => "dot",
        _ => "unspecified",
    }
}

fn tenant_json(t: &proto::TenantInfo) -> serde_json::Value {
    let spec = t.spec.clone().unwrap_or_default();
    let index = spec.index.unwrap_or_default();
    let quotas = t.quotas.unwrap_or_default();
    json!({
        "name": t.name,
        "dimension": spec.dimension,
        "metric": metric_name(spec.metric),
        "m": index.m,
        "ef_construction": index.ef_construction,
        "trust_class": spec.trust_class,
        "state": match proto::TenantState::try_from(t.state) {
            Ok(proto::TenantState::Active) => "active",
            Ok(proto::TenantState::Cold) => "cold",
            _ => "unknown",
        },
        "pinned": t.pinned,
        "points": t.points,
        "graph_nodes": t.graph_nodes,
        "resident_bytes": t.resident_bytes,
        "payload_bytes": t.payload_bytes,
        "quotas": {
            "max_points": quotas.max_points,
            "max_requests_per_second": quotas.max_requests_per_second,
            "max_concurrent_searches": quotas.max_concurrent_searches,
            "max_payload_bytes": quotas.max_payload_bytes,
            "max_embedding_tokens_per_minute": quotas.max_embedding_tokens_per_minute,
        },
        "created_unix_ms": t.created_unix_ms,
        "last_used_unix_ms": (t.last_used_unix_ms > 0).then_some(t.last_used_unix_ms),
        "contract": contract_json(&t.contract.clone().unwrap_or_default()),
    })
}

fn tenant_line(t: &proto::TenantInfo) -> String {
    let j = tenant_json(t);
    format!(
        "{}\tdim={}\tmetric={}\tstate={}\tpoints={}\ttrust_class={}",
        t.name,
        j["dimension"],
        j["metric"].as_str().unwrap_or(""),
        j["state"].as_str().unwrap_or(""),
        t.points,
        j["trust_class"].as_str().unwrap_or("")
    )
}

fn print_tenant(json: bool, done: &str, t: &proto::TenantInfo) {
    if json {
        print_json(&tenant_json(t));
    } else {
        println!("{done} {}", tenant_line(t));
    }
}

impl AdminArgs {
    pub async fn execute(self) -> CliResult {
        let token = self
            .token
            .ok_or("the admin token is required: --token or BULKHEAD_ADMIN_TOKEN")?;
        let json = self.json;
        if let AdminCommand::Audit = self.command {
            let report =
                super::audit::audit_channel(self.connection.channel().await?, &token).await?;
            if json {
                print_json(&report.to_json());
            } else {
                print!("{}", report.to_text());
            }
            return match report.leaks() {
                0 => Ok(()),
                n => Err(format!("the audit found {n} leak(s)").into()),
            };
        }
        let admin = AdminClient::with_channel(self.connection.channel().await?, token)?;
        match self.command {
            AdminCommand::Audit => {}
            AdminCommand::Tenant(TenantCommand::Create {
                name,
                dim,
                metric,
                trust_class,
                m,
                ef_construction,
                quotas,
                contract,
            }) => {
                let spec = proto::TenantSpec {
                    dimension: dim,
                    metric: metric as i32,
                    index: Some(proto::IndexParams {
                        m: m.unwrap_or(0),
                        ef_construction: ef_construction.unwrap_or(0),
                    }),
                    trust_class: trust_class.unwrap_or_default(),
                };
                let info = admin
                    .create(proto::CreateTenantRequest {
                        name,
                        spec: Some(spec),
                        quotas: Some(quotas.to_proto()),
                        contract: Some(contract.to_proto()),
                    })
                    .await?;
                if json {
                    print_json(&tenant_json(&info))
                } else {
                    println!("created {}", tenant_line(&info))
                }
            }
            AdminCommand::Tenant(TenantCommand::List) => {
                let tenants = admin.list_tenants().await?;
                if json {
                    print_json(
                        &json!({ "tenants": tenants.iter().map(tenant_json).collect::<Vec<_>>() }),
                    );
                } else {
                    tenants.iter().for_each(|t| println!("{}", tenant_line(t)));
                }
            }
            AdminCommand::Tenant(TenantCommand::Describe { name }) => {
                let described = admin.describe(&name).await?;
                let mut view = tenant_json(&described.tenant.unwrap_or_default());
                if let Some(cache) = described.embedding_cache {
                    view["embedding_cache"] = json!({ "hits": cache.hits, "misses": cache.misses });
                }
                if json {
                    print_json(&view);
                } else {
                    for (k, v) in view.as_object().into_iter().flatten() {
                        println!(
                            "{k}: {}",
                            v.as_str().map_or_else(|| v.to_string(), str::to_string)
                        );
                    }
                }
            }
            AdminCommand::Tenant(TenantCommand::Contract { name, contract }) => {
                let info = admin.set_contract(&name, contract.to_proto()).await?;
                print_tenant(json, "contract set", &info);
            }
            AdminCommand::Model(ModelCommand::Register {
                dir,
                manifest,
                from_export,
                name,
            }) => {
                let digest = weights_digest(&dir)?;
                let name = name.unwrap_or_else(|| {
                    dir.file_name()
                        .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
                });
                let manifest_json = match (manifest, from_export) {
                    (Some(path), _) => fs_err::read_to_string(&path)?,
                    (None, Some(export)) => {
                        super::export::model_manifest_from_export(&export, &name, &digest)?
                    }
                    (None, None) => return Err("--manifest or --from-export is required".into()),
                };
                let model = admin.register_model(&name, &digest, manifest_json).await?;
                if json {
                    print_json(&model_json(&model));
                } else {
                    println!("registered {}", model_line(&model));
                }
            }
            AdminCommand::Model(ModelCommand::List) => {
                let models = admin.list_models().await?;
                if json {
                    print_json(
                        &json!({ "models": models.iter().map(model_json).collect::<Vec<_>>() }),
                    );
                } else {
                    models.iter().for_each(|m| println!("{}", model_line(m)));
                }
            }
            AdminCommand::Model(ModelCommand::Assign { digest, target }) => {
                admin.assign_model(Some(&digest), target.target()).await?;
                if json {
                    print_json(&json!({ "assigned": digest }));
                } else {
                    println!("assigned {digest}");
                }
            }
            AdminCommand::Model(ModelCommand::Unassign { target }) => {
                admin.assign_model(None, target.target()).await?;
                if json {
                    print_json(&json!({ "unassigned": true }));
                } else {
                    println!("unassigned");
                }
            }
            AdminCommand::ExportTrainingData { tenants, out } => {
                let summary = super::export::export(&admin, tenants, &out).await?;
                if json {
                    print_json(&summary);
                } else {
                    for t in summary["tenants"].as_array().into_iter().flatten() {
                        println!(
                            "{}\t{} records\tsha256={}\tcontract_version={}",
                            t["tenant"].as_str().unwrap_or(""),
                            t["records"],
                            t["sha256"].as_str().unwrap_or(""),
                            t["contract_version"]
                        );
                    }
                    println!("wrote {}", out.display());
                }
            }
            AdminCommand::Lineage { tenant } => {
                let models = admin.lineage(&tenant).await?;
                if json {
                    print_json(
                        &json!({ "models": models.iter().map(model_json).collect::<Vec<_>>() }),
                    );
                } else {
                    models.iter().for_each(|m| println!("{}", model_line(m)));
                }
            }
            AdminCommand::Tenant(TenantCommand::AccessLog { name, page }) => {
                let page = admin
                    .access_log(&name, page.cursor.as_deref(), page.since_ms, page.limit)
                    .await?;
                super::print_access_log(json, &page.entries, &page.next_cursor);
            }
            AdminCommand::Tenant(TenantCommand::Quotas { name, quotas }) => {
                let info = admin.set_quotas(&name, quotas.to_proto()).await?;
                print_tenant(json, "quotas set", &info);
            }
            AdminCommand::Tenant(TenantCommand::Pin { name }) => {
                print_tenant(json, "pinned", &admin.pin_tenant(&name, true).await?);
            }
            AdminCommand::Tenant(TenantCommand::Unpin { name }) => {
                print_tenant(json, "unpinned", &admin.pin_tenant(&name, false).await?);
            }
            AdminCommand::Tenant(TenantCommand::Warm { name }) => {
                print_tenant(json, "warmed", &admin.warm_tenant(&name).await?);
            }
            AdminCommand::Tenant(TenantCommand::Cool { name }) => {
                print_tenant(json, "cooled", &admin.cool_tenant(&name).await?);
            }
            AdminCommand::Tenant(TenantCommand::Drop { name }) => {
                admin.drop_tenant(&name).await?;
                if json {
                    print_json(&json!({ "dropped": name }))
                } else {
                    println!("dropped {name}")
                }
            }
            AdminCommand::Token(TokenCommand::Issue { tenant }) => {
                let issued = admin.issue_token(&tenant).await?;
                if json {
                    print_json(&json!({ "id": issued.id, "token": issued.token }))
                } else {
                    println!("{}", issued.token)
                }
            }
            AdminCommand::Token(TokenCommand::Revoke { id }) => {
                admin.revoke_token(&id).await?;
                if json {
                    print_json(&json!({ "revoked": id }))
                } else {
                    println!("revoked {id}")
                }
            }
            AdminCommand::Token(TokenCommand::List { tenant }) => {
                let tokens = admin.list_tokens(&tenant).await?;
                if json {
                    let list: Vec<_> = tokens
                        .iter()
                        .map(|t| json!({ "id": t.id, "tenant": t.tenant, "created_unix_ms": t.created_unix_ms, "revoked": t.revoked }))
                        .collect();
                    print_json(&json!({ "tokens": list }));
                } else {
                    for t in tokens {
                        println!(
                            "{}\t{}\t{}",
                            t.id,
                            t.created_unix_ms,
                            if t.revoked { "revoked" } else { "active" }
                        );
                    }
                }
            }
        }
        Ok(())
    }
}
