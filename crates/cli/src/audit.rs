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

use std::time::Instant;

use bulkhead_client::{AdminClient, Condition, Error, Filter, Metric, Point, TenantClient, proto};
use serde_json::{Value, json};

const DIMENSION: u32 = 384;
const POINTS: usize = 20;
const TIMING_PROBES: usize = 20;
/// A Welch t above this, with the other tenant's cached texts answering
/// faster, is a timing leak. A shared cache answers a hit in microseconds
/// against milliseconds for an encode: t in the tens.
const TIMING_T_LEAK: f64 = 8.0;

/// What one layer's probes found.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Pass,
    /// What leaked, one line each.
    Leak(Vec<String>),
    /// Why the probes could not run.
    Skipped(String),
}

/// One row of the report.
#[derive(Debug, Clone)]
pub struct Layer {
    pub name: &'static str,
    pub mechanism: &'static str,
    pub probes: Vec<String>,
    pub outcome: Outcome,
}

/// The audit's findings, one row per layer.
#[derive(Debug, Clone)]
pub struct AuditReport {
    pub layers: Vec<Layer>,
    /// Problems that are not leaks (a canary not dropped, say).
    pub warnings: Vec<String>,
}

impl AuditReport {
    /// Leaks found, over all layers.
    pub fn leaks(&self) -> usize {
        self.layers
            .iter()
            .map(|l| match &l.outcome {
                Outcome::Leak(found) => found.len(),
                _ => 0,
            })
            .sum()
    }

    pub fn to_json(&self) -> Value {
        json!({
            "leaks": self.leaks(),
            "warnings": self.warnings,
            "layers": self.layers.iter().map(|l| {
                let (result, details) = match &l.outcome {
                    Outcome::Pass => ("pass", Vec::new()),
                    Outcome::Leak(found) => ("LEAK", found.clone()),
                    Outcome::Skipped(why) => ("skipped", vec![why.clone()]),
                };
                json!({
                    "layer": l.name,
                    "mechanism": l.mechanism,
                    "probes": l.probes,
                    "result": result,
                    "details": details,
                })
            }).collect::<Vec<_>>(),
        })
    }

    /// The one-page text report.
    pub fn to_text(&self) -> String {
        let mut out = String::from("Bulkhead isolation audit\n\n");
        for l in &self.layers {
            let result = match &l.outcome {
                Outcome::Pass => "PASS".to_string(),
                Outcome::Leak(found) => format!("LEAK ({})", found.len()),
                Outcome::Skipped(_) => "SKIPPED".to_string(),
            };
            out += &format!("{:<10} {result}\n  mechanism: {}\n", l.name, l.mechanism);
            // The same probe runs in every direction: list each kind once.
            let mut kinds: Vec<&str> = Vec::new();
            for p in &l.probes {
                let kind = p
                    .split_once("->")
                    .and_then(|(_, rest)| rest.split_once(' '))
                    .map_or(p.as_str(), |(_, kind)| kind);
                if !kinds.contains(&kind) {
                    kinds.push(kind);
                }
            }
            out += &format!("  probes ({}): {}\n", l.probes.len(), kinds.join("; "));
            match &l.outcome {
                Outcome::Leak(found) => {
                    for f in found {
                        out += &format!("  leak: {f}\n");
                    }
                }
                Outcome::Skipped(why) => out += &format!("  skipped: {why}\n"),
                Outcome::Pass => {}
            }
        }
        for w in &self.warnings {
            out += &format!("warning: {w}\n");
        }
        out += &format!(
            "\n{}\n",
            if self.leaks() == 0 {
                "no leak found".to_string()
            } else {
                format!("{} leak(s) found", self.leaks())
            }
        );
        out
    }
}

/// Collects one layer's probes and leaks.
struct Probe {
    name: &'static str,
    mechanism: &'static str,
    probes: Vec<String>,
    leaks: Vec<String>,
    skipped: Option<String>,
}

impl Probe {
    fn new(name: &'static str, mechanism: &'static str) -> Self {
        Probe {
            name,
            mechanism,
            probes: Vec::new(),
            leaks: Vec::new(),
            skipped: None,
        }
    }

    fn ran(&mut self, probe: impl Into<String>) {
        self.probes.push(probe.into());
    }

    fn leak(&mut self, what: impl Into<String>) {
        self.leaks.push(what.into());
    }

    fn done(self) -> Layer {
        let outcome = match (self.leaks.is_empty(), self.skipped) {
            (false, _) => Outcome::Leak(self.leaks),
            (true, Some(why)) if self.probes.is_empty() => Outcome::Skipped(why),
            _ => Outcome::Pass,
        };
        Layer {
            name: self.name,
            mechanism: self.mechanism,
            probes: self.probes,
            outcome,
        }
    }
}

/// A canary tenant: its client, its secret marker and its points.
struct Canary {
    name: String,
    class: String,
    token: String,
    secret: String,
    client: TenantClient,
    ids: Vec<String>,
    vectors: Vec<Vec<f32>>,
    texts: Vec<String>,
}

/// splitmix64: canary vectors need to be unique, not cryptographic.
struct Mix(u64);

impl Mix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn vector(&mut self) -> Vec<f32> {
        (0..DIMENSION)
            .map(|_| (self.next() >> 40) as f32 / (1u64 << 24) as f32 - 0.5)
            .collect()
    }
}

fn random_u64() -> Result<u64, Box<dyn std::error::Error + Send + Sync>> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).map_err(|e| format!("no randomness: {e}"))?;
    Ok(u64::from_le_bytes(bytes))
}

fn canary_filter(secret: &str) -> Filter {
    Filter::must([Condition::matches("canary", secret)])
}

/// Whether `text` mentions the canary (its name or its secret).
fn mentions(text: &str, c: &Canary) -> bool {
    text.contains(&c.name) || text.contains(&c.secret)
}

type Fallible<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Runs the audit against the server at `addr` with the admin token.
pub async fn run(addr: &str, admin_token: &str) -> Fallible<AuditReport> {
    let admin = AdminClient::connect(addr.to_string(), admin_token).await?;
    let channel = tonic::transport::Endpoint::from_shared(addr.to_string())
        .map_err(|e| format!("bad server address: {e}"))?
        .connect()
        .await?;
    let seed = random_u64()?;
    let tag = format!("{:012x}", seed & 0xFFFF_FFFF_FFFF);
    let specs = [
        ("a", "default".to_string()),
        ("b", "default".to_string()),
        ("c", format!("audit-{tag}")),
    ];
    let mut created = Vec::new();
    let result = async {
        let mut canaries = Vec::new();
        let mut mix = Mix(seed);
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

async fn probe_all(
    admin: &AdminClient,
    channel: &tonic::transport::Channel,
    canaries: &[Canary],
    tag: &str,
) -> Fallible<AuditReport> {
    let mut index = Probe::new(
        "index",
        "one HNSW graph per tenant; a search reaches only the graph of the token's tenant",
    );
    let mut storage = Probe::new(
        "storage",
        "one RocksDB column family per tenant; get, scroll, count and delete read one column family",
    );
    let mut errors = Probe::new(
        "errors",
        "tokens are bound to one tenant; a foreign tenant and a missing one get the same PERMISSION_DENIED",
    );
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
        // Index: the victim's exact vectors, and a filter on its payload.
        for (i, vector) in victim.vectors.iter().take(5).enumerate() {
            let hits = prober
                .client
                .search(vector.clone())
                .k(20)
                .with_payload()
                .send()
                .await?;
            index.ran(format!("{dir} search with its vector {i}"));
            for h in hits {
                let payload = serde_json::to_string(&h.payload).unwrap_or_default();
                if victim.ids.contains(&h.id) || payload.contains(&victim.secret) {
                    index.leak(format!("{dir}: a search returned {}", h.id));
                }
            }
        }
        // By its texts, through the prober's embedder (when its class has one).
        if let Ok(hits) = prober
            .client
            .search_text(victim.texts[0].clone())
            .k(20)
            .with_payload()
            .send()
            .await
        {
            index.ran(format!("{dir} text search with its text"));
            for h in hits {
                let payload = serde_json::to_string(&h.payload).unwrap_or_default();
                if victim.ids.contains(&h.id) || payload.contains(&victim.secret) {
                    index.leak(format!("{dir}: a text search returned {}", h.id));
                }
            }
        }
        let hits = prober
            .client
            .search(victim.vectors[0].clone())
            .filter(canary_filter(&victim.secret))
            .send()
            .await?;
        index.ran(format!("{dir} search filtered on its payload"));
        if !hits.is_empty() {
            index.leak(format!(
                "{dir}: a filter on its payload matched {} points",
                hits.len()
            ));
        }
        // Storage: get, scroll, count, deletes.
        let got = prober.client.get(victim.ids.clone(), true, true).await?;
        storage.ran(format!("{dir} get its {} ids", victim.ids.len()));
        if !got.is_empty() {
            storage.leak(format!("{dir}: get returned {} of its points", got.len()));
        }
        let mut cursor = None;
        loop {
            let page = prober.client.scroll(cursor, 1_000, None).await?;
            for point in &page.points {
                let payload = serde_json::to_string(&point.payload).unwrap_or_default();
                if victim.ids.contains(&point.id) || payload.contains(&victim.secret) {
                    storage.leak(format!("{dir}: scroll returned {}", point.id));
                }
            }
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        storage.ran(format!("{dir} scroll everything"));
        let counted = prober
            .client
            .count(Some(canary_filter(&victim.secret)))
            .await?;
        storage.ran(format!("{dir} count by its payload"));
        if counted != 0 {
            storage.leak(format!("{dir}: count by its payload gave {counted}"));
        }
        let deleted = prober.client.delete(victim.ids.clone()).await?
            + prober
                .client
                .delete_by_filter(canary_filter(&victim.secret))
                .await?;
        storage.ran(format!("{dir} delete its ids and by its payload"));
        let left = victim.client.count(None).await?;
        if deleted != 0 || left != POINTS as u64 {
            storage.leak(format!(
                "{dir}: deletes removed {deleted}; it now has {left} points"
            ));
        }
        // Its cursor, reused.
        let page = victim.client.scroll(None, 5, None).await?;
        if let Some(cursor) = page.next_cursor {
            storage.ran(format!("{dir} scroll with its cursor"));
            match prober.client.scroll(Some(cursor), 5, None).await {
                Ok(page) => storage.leak(format!(
                    "{dir}: its scroll cursor was accepted ({} points)",
                    page.points.len()
                )),
                Err(e) => messages.push(e.to_string()),
            }
        }
        // Errors: every RPC naming the victim with the prober's token must
        // fail exactly as for a tenant that does not exist.
        let foreign =
            TenantClient::with_channel(channel.clone(), victim.name.clone(), &prober.token)?;
        let missing = TenantClient::with_channel(
            channel.clone(),
            format!("audit-{tag}-none"),
            &prober.token,
        )?;
        for (rpc, (a, b)) in [
            (
                "Upsert",
                (
                    foreign
                        .upsert(vec![Point::new("x", victim.vectors[0].clone())])
                        .await
                        .map(|_| ()),
                    missing
                        .upsert(vec![Point::new("x", victim.vectors[0].clone())])
                        .await
                        .map(|_| ()),
                ),
            ),
            (
                "Get",
                (
                    foreign
                        .get(victim.ids.clone(), true, true)
                        .await
                        .map(|_| ()),
                    missing
                        .get(victim.ids.clone(), true, true)
                        .await
                        .map(|_| ()),
                ),
            ),
            (
                "Delete",
                (
                    foreign.delete(victim.ids.clone()).await.map(|_| ()),
                    missing.delete(victim.ids.clone()).await.map(|_| ()),
                ),
            ),
            (
                "Count",
                (
                    foreign.count(None).await.map(|_| ()),
                    missing.count(None).await.map(|_| ()),
                ),
            ),
            (
                "Scroll",
                (
                    foreign.scroll(None, 10, None).await.map(|_| ()),
                    missing.scroll(None, 10, None).await.map(|_| ()),
                ),
            ),
            (
                "Search",
                (
                    foreign
                        .search(victim.vectors[0].clone())
                        .send()
                        .await
                        .map(|_| ()),
                    missing
                        .search(victim.vectors[0].clone())
                        .send()
                        .await
                        .map(|_| ()),
                ),
            ),
            (
                "Embed",
                (
                    foreign
                        .embed(vec![victim.texts[0].clone()])
                        .await
                        .map(|_| ()),
                    missing
                        .embed(vec![victim.texts[0].clone()])
                        .await
                        .map(|_| ()),
                ),
            ),
        ] {
            errors.ran(format!("{dir} {rpc} naming it"));
            match (a, b) {
                (Err(Error::PermissionDenied(x)), Err(Error::PermissionDenied(y))) if x == y => {
                    messages.push(x);
                }
                (Ok(()), _) => errors.leak(format!("{dir}: {rpc} naming it succeeded")),
                (a, b) => errors.leak(format!(
                    "{dir}: {rpc} naming it and naming no tenant differ: {} / {}",
                    a.err().map_or("ok".into(), |e| e.to_string()),
                    b.err().map_or("ok".into(), |e| e.to_string())
                )),
            }
        }
        let left = victim.client.count(None).await?;
        if left != POINTS as u64 {
            errors.leak(format!(
                "{dir}: after the foreign calls it has {left} points"
            ));
        }
    }
    errors.ran(format!(
        "{} error messages checked for the other canaries' names",
        messages.len()
    ));
    for m in &messages {
        for c in canaries {
            if mentions(m, c) {
                errors.leak(format!("an error names {}: {m}", c.name));
            }
        }
    }
    let (cache, batching, models) = embedder_layers(admin, canaries).await?;
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

/// The cache, batching and models layers: the embedder path.
async fn embedder_layers(
    admin: &AdminClient,
    canaries: &[Canary],
) -> Fallible<(Layer, Layer, Layer)> {
    let mut cache = Probe::new(
        "cache",
        "the embedding cache is keyed by tenant incarnation, model and text; counters per tenant",
    );
    let mut batching = Probe::new(
        "batching",
        "one encoder queue and batcher per trust class; a batch never mixes classes",
    );
    let mut models = Probe::new(
        "models",
        "every answer names the digest of the weights that made it; a vector is used only when that model is registered, is the one assigned to the tenant or its class, and its lineage is public data, the tenant, or tenants that consent to pooling with it",
    );
    let (a, b, c) = (&canaries[0], &canaries[1], &canaries[2]);
    let probe = a.client.embed(vec![a.texts[0].clone()]).await;
    let base = match probe {
        Ok((vectors, model)) => {
            models.ran(format!("class {}: model {model}", a.class));
            vectors
        }
        Err(e) => {
            let why = format!("no embedder answers trust class {}: {e}", a.class);
            for layer in [&mut cache, &mut batching, &mut models] {
                layer.skipped = Some(why.clone());
            }
            return Ok((cache.done(), batching.done(), models.done()));
        }
    };
    if let Ok((_, model)) = c.client.embed(vec![c.texts[0].clone()]).await {
        models.ran(format!("class {}: model {model}", c.class));
    }
    // Cache: a warms its texts; b embedding the same texts must miss, and
    // must not answer them faster than texts nobody has embedded. (b's
    // text search above used a's first text, so that one is b's own now.)
    a.client.embed(a.texts.clone()).await?;
    let stats = |name: &str| {
        let name = name.to_string();
        async move {
            admin
                .describe(&name)
                .await
                .map(|d| d.embedding_cache.map(|s| (s.hits, s.misses)))
        }
    };
    let before = stats(&b.name).await?;
    let mut warm = Vec::new();
    let mut cold = Vec::new();
    for (i, text) in a.texts.iter().skip(1).take(TIMING_PROBES).enumerate() {
        let fresh = format!("{} unrelated control text {i}", b.secret);
        for (text, into) in [(text.clone(), &mut warm), (fresh, &mut cold)] {
            let started = Instant::now();
            b.client.embed(vec![text]).await?;
            into.push(started.elapsed().as_secs_f64() * 1e6);
        }
    }
    let after = stats(&b.name).await?;
    cache.ran(format!(
        "b embeds a's {} cached texts: b's hit counter",
        warm.len()
    ));
    match (before, after) {
        (Some((h0, _)), Some((h1, _))) if h1 > h0 => {
            cache.leak(format!("b's cache hits rose by {} on a's texts", h1 - h0));
        }
        (Some(_), Some(_)) => {}
        _ => cache.ran("the embedder reported no counters for b"),
    }
    let t = welch_t(&cold, &warm);
    cache.ran(format!(
        "timing: Welch t of b's latency on fresh vs a's cached texts = {t:.2} ({} probes each)",
        warm.len()
    ));
    if t > TIMING_T_LEAK {
        cache.leak(format!("a's cached texts answer b faster (Welch t {t:.1})"));
    }
    // Batching: a's vector of one text must not change by a bit when c (of
    // another class) embeds at the same time.
    let (together, _) = tokio::join!(
        a.client.embed(vec![a.texts[0].clone()]),
        c.client.embed(c.texts.clone()),
    );
    batching.ran("a embeds a text alone, then while c (another class) embeds 20");
    match together {
        Ok((vectors, _)) if vectors == base => {}
        Ok(_) => batching.leak("a's vector changed when c embedded at the same time"),
        Err(e) => batching.leak(format!("a's embed failed while c embedded: {e}")),
    }
    Ok((cache.done(), batching.done(), models.done()))
}

/// Welch's t statistic of mean(x) - mean(y).
fn welch_t(x: &[f64], y: &[f64]) -> f64 {
    let stats = |v: &[f64]| {
        let n = v.len() as f64;
        let mean = v.iter().sum::<f64>() / n;
        let var = v.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
        (n, mean, var)
    };
    let ((nx, mx, vx), (ny, my, vy)) = (stats(x), stats(y));
    let se = (vx / nx + vy / ny).sqrt();
    if se == 0.0 { 0.0 } else { (mx - my) / se }
}
