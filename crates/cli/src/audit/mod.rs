//! `bulkhead admin audit`: live isolation probes against a running server.
//!
//! Three canary tenants are created (a and b of one trust class, c of a
//! trust class of its own), each gets unique vectors, payloads and texts,
//! and each probes into the others through every Points RPC and the
//! embedder path, with its own token: searches with the other's exact
//! vectors, gets of its ids, scrolls, counts and deletes by filters that
//! match its payload, text searches with its texts, its scroll cursors,
//! every RPC naming the other tenant (which must fail exactly as for a
//! tenant that does not exist), and the embedder's per-tenant cache
//! counters, a timing statistic and batch neighbours. The canaries are
//! dropped at the end, whatever happened. Any leak makes the command exit
//! non-zero.

//!
//! - [`canary`]: the canaries and what marks their data.
//! - [`index`], [`storage`], [`errors`]: one module per layer probed over
//!   the Points RPCs; [`embedder`]: the cache, batching and models layers.
//! - [`report`]: the report, as text or JSON.

use bulkhead_client::{AdminClient, Metric, Point, TenantClient, proto};
use serde_json::json;

mod canary;
mod embedder;
mod errors;
mod index;
mod report;
mod storage;

use canary::{Canary, SplitMix64, random_u64};
pub use report::{AuditReport, Layer, Outcome};

pub(crate) const DIMENSION: u32 = 384;
pub(crate) const POINTS: usize = 20;
pub(crate) const TIMING_PROBES: usize = 20;
/// A Welch t above this, with the other tenant's cached texts answering
/// faster, is a timing leak. A shared cache answers a hit in microseconds
/// against milliseconds for an encode: t in the tens.
pub(crate) const TIMING_T_LEAK: f64 = 8.0;

pub(crate) type Fallible<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// The trust class of canary c, the same in every run: a class of its own
/// per run left a storage shelf and a sidecar batcher behind each time.
const AUDIT_CLASS: &str = "audit";

/// Runs the audit against the server at `addr` with the admin token.
pub async fn audit_server(addr: &str, admin_token: &str) -> Fallible<AuditReport> {
    let channel = bulkhead_client::connect(addr, &bulkhead_client::Tls::default()).await?;
    audit_channel(channel, admin_token).await
}

/// [`audit_server`] over an open channel (TLS, a client certificate).
pub async fn audit_channel(
    channel: tonic::transport::Channel,
    admin_token: &str,
) -> Fallible<AuditReport> {
    let admin = AdminClient::with_channel(channel.clone(), admin_token)?;
    let seed = random_u64()?;
    let tag = format!("{:012x}", seed & 0xFFFF_FFFF_FFFF);
    let specs = [
        ("a", "default".to_string()),
        ("b", "default".to_string()),
        ("c", AUDIT_CLASS.to_string()),
    ];
    let mut created = Vec::new();
    let result = async {
        let mut canaries = Vec::new();
        let mut mix = SplitMix64(seed);
        for (suffix, class) in &specs {
            let name = format!("audit-{tag}-{suffix}");
            let spec = proto::TenantSpec {
                dimension: DIMENSION,
                metric: Metric::Cosine as i32,
                trust_class: class.clone(),
                ..Default::default()
            };
            admin.create_tenant_with(&name, spec).await?;
            created.push(name.clone());
            let token = admin.issue_token(&name).await?.token;
            let secret = format!("canary-{tag}-{suffix}-{:016x}", mix.next());
            let client = TenantClient::with_channel(channel.clone(), name.clone(), &token)?;
            let ids: Vec<String> = (0..POINTS).map(|i| format!("{secret}-p{i}")).collect();
            let vectors: Vec<Vec<f32>> = (0..POINTS).map(|_| mix.vector()).collect();
            let texts: Vec<String> = (0..POINTS)
                .map(|i| format!("{secret} confidential note number {i} of tenant {suffix}"))
                .collect();
            let points = ids
                .iter()
                .zip(&vectors)
                .zip(&texts)
                .enumerate()
                .map(|(i, ((id, v), t))| {
                    Point::new(id.clone(), v.clone())
                        .payload(json!({"canary": secret, "i": i}))
                        .text(t.clone())
                })
                .collect();
            client.upsert(points).await?;
            canaries.push(Canary {
                name,
                class: class.clone(),
                token,
                secret,
                client,
                ids,
                vectors,
                texts,
            });
        }
        probe_all(&admin, &channel, &canaries, &tag).await
    }
    .await;
    let mut warnings = Vec::new();
    for name in &created {
        if let Err(e) = admin.drop_tenant(name).await {
            warnings.push(format!("canary {name} was not dropped: {e}"));
        }
    }
    match admin.list_tenants().await {
        Ok(left) => {
            for t in left.iter().filter(|t| created.contains(&t.name)) {
                warnings.push(format!("canary {} is still listed", t.name));
            }
        }
        Err(e) => warnings.push(format!("cannot list tenants after the audit: {e}")),
    }
    let mut report = result?;
    report.warnings.extend(warnings);
    Ok(report)
}

/// Every layer's probes, each canary into the others.
async fn probe_all(
    admin: &AdminClient,
    channel: &tonic::transport::Channel,
    canaries: &[Canary],
    tag: &str,
) -> Fallible<AuditReport> {
    let mut index = index::layer();
    let mut storage = storage::layer();
    let mut errors = errors::layer();
    // Who probes whom: both directions, same class and across classes.
    let pairs = [(1, 0), (0, 1), (2, 0), (0, 2)];
    let mut messages = Vec::new();
    for &(p, v) in &pairs {
        let (prober, victim) = (&canaries[p], &canaries[v]);
        let dir = format!(
            "{}->{}",
            &prober.name[prober.name.len() - 1..],
            &victim.name[victim.name.len() - 1..]
        );
        index::probe(&mut index, &dir, prober, victim).await?;
        storage::probe(&mut storage, &dir, prober, victim, &mut messages).await?;
        errors::probe(
            &mut errors,
            &dir,
            channel,
            (prober, victim),
            format!("audit-{tag}-none"),
            &mut messages,
        )
        .await?;
    }
    errors::check_messages(&mut errors, &messages, canaries);
    let (cache, batching, models) = embedder::embedder_layers(admin, canaries).await?;
    Ok(AuditReport {
        layers: vec![
            index.done(),
            storage.done(),
            cache,
            batching,
            models,
            errors.done(),
        ],
        warnings: Vec::new(),
    })
}
