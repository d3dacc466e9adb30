//! The load and recall tool (first scenario of the benchmark issue): one
//! tenant, recall@10 against exact ground truth vs queries per second over an
//! ef sweep, in-process (the engine) and through gRPC (the real server on
//! 127.0.0.1), with 1 and 2 client threads.
//!
//! The isolation tax: the same points split over `--tenants` tenants, each
//! with its own graph, against one shared index searched with a tenant
//! filter (a baseline of this tool only, never a product feature). And
//! durable write throughput for batches of 1, 100 and 1,000 points.
//!
//! Cold start: after the sweeps the tenant is closed and reopened in a
//! fresh process, which times the first query (it loads the tenant) and the
//! next one.
//!
//! Noisy neighbour: a victim tenant searches from one client while a
//! neighbour with a request-rate quota floods the same server at 10x that
//! quota from 8 clients; the victim's p50/p99 quiet vs during the flood
//! (and during floods by a tenant with no quota, where only admission's
//! fair queue protects the victim): polite searches, filtered searches
//! cancelled by a 1 ms deadline, counts with 4,096-value any lists, a storm
//! of searches over 24 tenants that the memory budget cannot hold (each a
//! cold load), and, when the model is there, Embed calls of 64 long texts
//! through the local sidecar. Each flood runs in a process of its own
//! (`load --flood`, its order on stdin).
//!
//! Soak (`--soak SECONDS`, off by default): mixed load through gRPC for
//! that long: 4 clients over 20 tenants (searches, upserts, deletes,
//! counts, scrolls; writes replace and delete within 1,000 ids per client,
//! so the data reaches a steady size) and a fifth that creates, fills,
//! searches and drops tenants; every error counts as unexpected; RSS is
//! sampled each minute.
//!
//! Many tenants: `--many` counts (default 1,000) of `--many-size` points
//! each (default 100): create time, reopen time, resident memory per
//! tenant, and query latency under a Zipf mix of tenants.
//!
//! `cargo bench --bench load -- [--n 20000] [--dim 128] [--queries 1000]
//! [--ef 16,32,64,128,256] [--tenants 100] [--many 1000,10000]
//! [--many-size 100] [--data DIR] [--out DIR]
//! [--skip grpc,isolation,writes,noisy,many] [--soak SECONDS]`
//!
//! `--data DIR` runs on a dataset made elsewhere: DIR/base.fvecs and
//! DIR/queries.fvecs (e.g. real text embeddings from the embedder's
//! `corpus` example); the ground truth is computed and written beside them.
//!
//! The dataset (seeded, embedding-like: benches/common/data.rs) is written
//! to DIR as base.fvecs, queries.fvecs and groundtruth.ivecs (top 100 by
//! brute force) and reused when present; the report goes to DIR/report.json
//! and DIR/report.md and the markdown table to stdout. DIR defaults to
//! target/bench-load/<n>x<dim>.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bulkhead::api::{AdminToken, Embedders};
use bulkhead::engine::{
    EngineConfig, Filter, Metric, PointInput, Quotas, Registry, SearchRequest, TenantSpec,
};
use bulkhead_client::TenantClient;
use serde_json::{Value, json};

#[path = "common/data.rs"]
mod data;

type Error = Box<dyn std::error::Error + Send + Sync>;

const K: usize = 10;
const TRUTH: usize = 100;
const TENANT: &str = "bench";
const SCENARIOS: [&str; 5] = ["grpc", "isolation", "writes", "noisy", "many"];

struct Args {
    n: usize,
    dim: usize,
    queries: usize,
    efs: Vec<usize>,
    tenants: usize,
    many: Vec<usize>,
    many_size: usize,
    /// Keep the many-tenants data here (one folder per count) and reuse
    /// it when it is already there, instead of a temporary directory.
    many_dir: Option<PathBuf>,
    soak: Option<u64>,
    data: Option<PathBuf>,
    out: Option<PathBuf>,
    skip: Vec<String>,
}

impl Args {
    fn runs(&self, scenario: &str) -> bool {
        !self.skip.iter().any(|s| s == scenario)
    }
}

fn parse_args() -> Result<Args, Error> {
    let mut args = Args {
        n: 20_000,
        dim: 128,
        queries: 1_000,
        efs: vec![16, 32, 64, 128, 256],
        tenants: 100,
        many: vec![1_000],
        many_size: 100,
        many_dir: None,
        soak: None,
        data: None,
        out: None,
        skip: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--bench" => {} // added by `cargo bench`
            "--n" => args.n = value()?.parse()?,
            "--dim" => args.dim = value()?.parse()?,
            "--queries" => args.queries = value()?.parse()?,
            "--ef" => {
                args.efs = value()?
                    .split(',')
                    .map(str::parse)
                    .collect::<Result<_, _>>()?
            }
            "--tenants" => args.tenants = value()?.parse()?,
            "--many" => {
                args.many = value()?
                    .split(',')
                    .filter(|c| !c.is_empty())
                    .map(str::parse)
                    .collect::<Result<_, _>>()?
            }
            "--many-size" => args.many_size = value()?.parse()?,
            "--many-dir" => args.many_dir = Some(PathBuf::from(value()?)),
            "--soak" => args.soak = Some(value()?.parse()?),
            "--data" => args.data = Some(PathBuf::from(value()?)),
            "--out" => args.out = Some(PathBuf::from(value()?)),
            "--skip" => {
                args.skip = value()?.split(',').map(str::to_string).collect();
                if let Some(bad) = args.skip.iter().find(|s| !SCENARIOS.contains(&s.as_str())) {
                    return Err(format!("--skip {bad}: scenarios are {SCENARIOS:?}").into());
                }
            }
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    if args.n == 0 || args.dim == 0 || args.queries == 0 || args.efs.is_empty() || args.tenants == 0
    {
        return Err("--n, --dim, --queries, --ef and --tenants must be positive".into());
    }
    Ok(args)
}

/// A one-line progress display on stderr.
fn progress(what: &str, done: usize, total: usize, started: Instant) {
    let rate = done as f64 / started.elapsed().as_secs_f64().max(1e-9);
    eprint!("\r{what}: {done}/{total} ({rate:.0}/s)   ");
    if done == total {
        eprintln!();
    }
    let _ = std::io::stderr().flush();
}

struct Dataset {
    base: Vec<Vec<f32>>,
    queries: Vec<Vec<f32>>,
    truth: Vec<Vec<u32>>,
}

/// A dataset made elsewhere (e.g. the embedder's `corpus` example): its
/// base.fvecs and queries.fvecs, and the ground truth, computed here and
/// written beside them when missing.
fn given_dataset(dir: &Path) -> Result<Dataset, Error> {
    let base = data::read_fvecs(&dir.join("base.fvecs"))?;
    let queries = data::read_fvecs(&dir.join("queries.fvecs"))?;
    if base.is_empty() || queries.is_empty() {
        return Err(format!(
            "{}: base.fvecs and queries.fvecs must not be empty",
            dir.display()
        )
        .into());
    }
    let truth_path = dir.join("groundtruth.ivecs");
    let truth = match data::read_ivecs(&truth_path) {
        Ok(truth) if truth.len() == queries.len() => truth,
        _ => {
            let started = Instant::now();
            let truth = data::ground_truth(&base, &queries, TRUTH);
            eprintln!(
                "ground truth: brute force in {:.1} s",
                started.elapsed().as_secs_f64()
            );
            data::write_ivecs(&truth_path, &truth)?;
            truth
        }
    };
    eprintln!(
        "dataset: {} x {} base, {} queries from {}",
        base.len(),
        base[0].len(),
        queries.len(),
        dir.display()
    );
    Ok(Dataset {
        base,
        queries,
        truth,
    })
}

fn dataset(args: &Args, dir: &Path) -> Result<Dataset, Error> {
    let (base_path, query_path, truth_path) = (
        dir.join("base.fvecs"),
        dir.join("queries.fvecs"),
        dir.join("groundtruth.ivecs"),
    );
    if base_path.exists() && query_path.exists() && truth_path.exists() {
        let set = Dataset {
            base: data::read_fvecs(&base_path)?,
            queries: data::read_fvecs(&query_path)?,
            truth: data::read_ivecs(&truth_path)?,
        };
        if set.base.len() == args.n && set.queries.len() == args.queries {
            eprintln!("dataset: reusing {}", dir.display());
            return Ok(set);
        }
    }
    fs_err::create_dir_all(dir)?;
    eprintln!(
        "dataset: {} x {} base, {} queries (seeded)",
        args.n, args.dim, args.queries
    );
    let base = data::dataset(1, args.n, args.dim);
    let queries = data::dataset(2, args.queries, args.dim);
    let started = Instant::now();
    let truth = data::ground_truth(&base, &queries, TRUTH);
    eprintln!(
        "ground truth: brute force in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    data::write_fvecs(&base_path, &base)?;
    data::write_fvecs(&query_path, &queries)?;
    data::write_ivecs(&truth_path, &truth)?;
    Ok(Dataset {
        base,
        queries,
        truth,
    })
}

fn recall(hits: &[Vec<String>], truth: &[Vec<u32>]) -> f64 {
    let found: usize = hits
        .iter()
        .zip(truth)
        .map(|(got, want)| {
            let want: HashSet<String> = want.iter().take(K).map(|i| i.to_string()).collect();
            got.iter().filter(|id| want.contains(*id)).count()
        })
        .sum();
    found as f64 / (hits.len() * K) as f64
}

/// One ef and thread count: every query once, split over `threads`.
struct Run {
    ef: usize,
    threads: usize,
    qps: f64,
    recall: f64,
    p50_us: f64,
    p99_us: f64,
}

fn summarize(
    ef: usize,
    threads: usize,
    wall: Duration,
    results: Vec<(usize, Vec<String>, Duration)>,
    truth: &[Vec<u32>],
) -> Run {
    let mut results = results;
    results.sort_by_key(|r| r.0);
    let mut latencies: Vec<f64> = results.iter().map(|r| r.2.as_secs_f64() * 1e6).collect();
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
    let hits: Vec<Vec<String>> = results.into_iter().map(|r| r.1).collect();
    Run {
        ef,
        threads,
        qps: hits.len() as f64 / wall.as_secs_f64(),
        recall: recall(&hits, truth),
        p50_us: at(0.5),
        p99_us: at(0.99),
    }
}

fn in_process(registry: &Registry, set: &Dataset, efs: &[usize]) -> Result<Vec<Run>, Error> {
    let tenant = registry.tenant(TENANT)?;
    let mut runs = Vec::new();
    for &ef in efs {
        for threads in [1, 2] {
            let started = Instant::now();
            let results = std::thread::scope(|scope| {
                let handles: Vec<_> = (0..threads)
                    .map(|t| {
                        let tenant = Arc::clone(&tenant);
                        scope.spawn(move || {
                            (t..set.queries.len())
                                .step_by(threads)
                                .map(|i| {
                                    let asked = Instant::now();
                                    let request = SearchRequest {
                                        ef: Some(ef),
                                        ..SearchRequest::new(set.queries[i].clone(), K)
                                    };
                                    let ids = tenant
                                        .search(&request)
                                        .map(|hits| hits.into_iter().map(|h| h.id).collect())
                                        .unwrap_or_default();
                                    (i, ids, asked.elapsed())
                                })
                                .collect::<Vec<_>>()
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .flat_map(|h| h.join().unwrap_or_default())
                    .collect::<Vec<_>>()
            });
            runs.push(summarize(
                ef,
                threads,
                started.elapsed(),
                results,
                &set.truth,
            ));
        }
    }
    Ok(runs)
}

async fn through_grpc(
    client: &TenantClient,
    set: &Arc<Dataset>,
    efs: &[usize],
) -> Result<Vec<Run>, Error> {
    let mut runs = Vec::new();
    for &ef in efs {
        for threads in [1, 2] {
            let started = Instant::now();
            let tasks: Vec<_> = (0..threads)
                .map(|t| {
                    let (client, set) = (client.clone(), Arc::clone(set));
                    tokio::spawn(async move {
                        let mut out = Vec::new();
                        for i in (t..set.queries.len()).step_by(threads) {
                            let asked = Instant::now();
                            let hits = client
                                .search(set.queries[i].clone())
                                .k(K as u32)
                                .ef(ef as u32)
                                .send()
                                .await?;
                            out.push((
                                i,
                                hits.into_iter().map(|h| h.id).collect(),
                                asked.elapsed(),
                            ));
                        }
                        Ok::<_, bulkhead_client::Error>(out)
                    })
                })
                .collect();
            let mut results = Vec::new();
            for task in tasks {
                results.extend(task.await??);
            }
            runs.push(summarize(
                ef,
                threads,
                started.elapsed(),
                results,
                &set.truth,
            ));
        }
    }
    Ok(runs)
}

/// The real server on 127.0.0.1:0 over `registry`: its URL, the sender
/// that stops it, and its task.
async fn serve(
    registry: &Arc<Registry>,
    embedders: Embedders,
) -> Result<
    (
        String,
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<Result<(), Error>>,
    ),
    Error,
> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let admin = AdminToken::generate()?;
    let services = bulkhead::server::Services::new(registry, admin, embedders);
    let server = tokio::spawn(bulkhead::server::serve(
        Arc::clone(registry),
        services,
        listener,
        async {
            let _ = stopped.await;
        },
    ));
    Ok((url, stop, server))
}

/// The victim's search latencies (us, sorted) from one closed-loop client
/// over `seconds`.
async fn victim_latencies(
    client: &TenantClient,
    set: &Dataset,
    seconds: f64,
) -> Result<Vec<f64>, Error> {
    let mut latencies = Vec::new();
    let started = Instant::now();
    let mut i = 0;
    while started.elapsed().as_secs_f64() < seconds {
        let asked = Instant::now();
        client
            .search(set.queries[i % set.queries.len()].clone())
            .k(K as u32)
            .ef(64)
            .send()
            .await?;
        latencies.push(asked.elapsed().as_secs_f64() * 1e6);
        i += 1;
    }
    latencies.sort_by(f64::total_cmp);
    Ok(latencies)
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// What a flooding tenant sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Attack {
    /// Searches (ef 64), as a busy but polite client would.
    Searches,
    /// Filtered searches with a 1 ms deadline: the caller is gone before
    /// the work ends, so only cancellation bounds what keeps running.
    CancelledSearches,
    /// Counts filtered by `match.any` lists of the most values allowed
    /// (4,096), each a scan of every payload.
    HugeAnyCounts,
    /// Searches spread over more tenants than the memory budget holds:
    /// nearly each one loads its tenant from disk and evicts another.
    ColdLoads,
    /// Embed calls of 64 distinct long texts each (never a cache hit).
    Embeds,
}

const ATTACKS: [(Attack, &str); 5] = [
    (Attack::Searches, "searches"),
    (Attack::CancelledSearches, "cancelled-searches"),
    (Attack::HugeAnyCounts, "huge-any-counts"),
    (Attack::ColdLoads, "cold-loads"),
    (Attack::Embeds, "embeds"),
];

impl Attack {
    fn name(self) -> &'static str {
        ATTACKS
            .iter()
            .find(|(a, _)| *a == self)
            .map_or("", |(_, n)| n)
    }

    fn parse(name: &str) -> Result<Attack, Error> {
        ATTACKS
            .iter()
            .find(|(_, n)| *n == name)
            .map(|(a, _)| *a)
            .ok_or_else(|| format!("no attack {name}").into())
    }
}

/// A filter that every point of a flooding tenant passes, so that it is
/// evaluated on every payload.
fn every_tag() -> bulkhead::proto::Filter {
    use bulkhead::proto::{Condition, FieldCondition, Filter, condition, field_condition};
    Filter {
        must: vec![Condition {
            condition: Some(condition::Condition::Field(FieldCondition {
                key: "tag".into(),
                condition: Some(field_condition::Condition::MatchAny(
                    bulkhead::proto::MatchAny {
                        values: (0..4_096)
                            .map(|i| bulkhead::proto::MatchValue {
                                value: Some(bulkhead::proto::match_value::Value::Keyword(format!(
                                    "t{i}"
                                ))),
                            })
                            .collect(),
                    },
                )),
            })),
        }],
        ..Default::default()
    }
}

/// A flood, as the noisy scenario orders it from a flooding process.
struct FloodOrder {
    url: String,
    /// (tenant, token): each request goes to the next, round robin.
    tenants: Vec<(String, String)>,
    dim: usize,
    clients: usize,
    rate: f64,
    attack: Attack,
}

impl FloodOrder {
    fn to_json(&self) -> Value {
        json!({
            "url": self.url,
            "tenants": self.tenants,
            "dim": self.dim,
            "clients": self.clients,
            "rate": self.rate,
            "attack": self.attack.name(),
        })
    }

    fn from_json(order: &Value) -> Result<FloodOrder, Error> {
        let text = |key: &str| {
            order[key]
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| format!("flood order without {key}"))
        };
        Ok(FloodOrder {
            url: text("url")?,
            tenants: serde_json::from_value(order["tenants"].clone())?,
            dim: order["dim"].as_u64().ok_or("flood order without dim")? as usize,
            clients: order["clients"]
                .as_u64()
                .ok_or("flood order without clients")? as usize,
            rate: order["rate"].as_f64().ok_or("flood order without rate")?,
            attack: Attack::parse(&text("attack")?)?,
        })
    }
}

/// Long texts for the embedding flood: distinct per call (`call`), so the
/// cache never answers them, about 200 tokens each.
fn flood_texts(call: usize) -> Vec<String> {
    (0..64)
        .map(|j| {
            format!(
                "flood {call}-{j}: {}",
                "the tenant floods the encoder with long and always different texts ".repeat(16)
            )
        })
        .collect()
}

/// `message` as a request with the tenant's bearer token.
fn authorized<T>(
    bearer: &tonic::metadata::MetadataValue<tonic::metadata::Ascii>,
    message: T,
) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", bearer.clone());
    request
}

/// Sends `attack` from `clients` clients at `rate` attempts per second in
/// all, until `stop`: (answered, refused with RESOURCE_EXHAUSTED). A call
/// that ran out of its own deadline counts as answered (sent and given up,
/// which is the attack).
async fn flood(
    order: FloodOrder,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> Result<(u64, u64), Error> {
    use bulkhead::proto::points_service_client::PointsServiceClient;
    use bulkhead::proto::{CountRequest, PointsServiceEmbedRequest, SearchRequest as WireSearch};
    use std::sync::atomic::Ordering;
    let channel = tonic::transport::Channel::from_shared(order.url.clone())?
        .connect()
        .await?;
    let filter = every_tag();
    let queries = Arc::new(data::dataset(99, 256, order.dim));
    let tenants: Vec<(String, tonic::metadata::MetadataValue<_>)> = order
        .tenants
        .iter()
        .map(|(name, token)| Ok::<_, Error>((name.clone(), format!("Bearer {token}").parse()?)))
        .collect::<Result<_, _>>()?;
    let tenants = Arc::new(tenants);
    let (clients, attack) = (order.clients, order.attack);
    let period = Duration::from_secs_f64(clients as f64 / order.rate);
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let mut points = PointsServiceClient::new(channel.clone())
                .max_decoding_message_size(64 << 20)
                .max_encoding_message_size(64 << 20);
            let (queries, tenants, stop, filter) = (
                Arc::clone(&queries),
                Arc::clone(&tenants),
                Arc::clone(&stop),
                filter.clone(),
            );
            tokio::spawn(async move {
                let (mut ok, mut refused) = (0u64, 0u64);
                let mut every = tokio::time::interval(period);
                every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
                let mut i = c;
                while !stop.load(Ordering::Relaxed) {
                    every.tick().await;
                    let (tenant, bearer) = &tenants[i % tenants.len()];
                    let vector = queries[i % queries.len()].clone();
                    let answer = match attack {
                        Attack::Searches | Attack::CancelledSearches | Attack::ColdLoads => {
                            let cancelled = attack == Attack::CancelledSearches;
                            let mut request = authorized(
                                bearer,
                                WireSearch {
                                    tenant: tenant.clone(),
                                    vector,
                                    k: K as u32,
                                    ef: 64,
                                    filter: cancelled.then(|| filter.clone()),
                                    ..Default::default()
                                },
                            );
                            if cancelled {
                                request.set_timeout(Duration::from_millis(1));
                            }
                            points.search(request).await.map(drop)
                        }
                        Attack::HugeAnyCounts => {
                            let request = authorized(
                                bearer,
                                CountRequest {
                                    tenant: tenant.clone(),
                                    filter: Some(filter.clone()),
                                },
                            );
                            points.count(request).await.map(drop)
                        }
                        Attack::Embeds => {
                            let request = authorized(
                                bearer,
                                PointsServiceEmbedRequest {
                                    tenant: tenant.clone(),
                                    texts: flood_texts(i),
                                },
                            );
                            points.embed(request).await.map(drop)
                        }
                    };
                    match answer {
                        Ok(()) => ok += 1,
                        Err(s) if s.code() == tonic::Code::ResourceExhausted => refused += 1,
                        // Gone at its deadline: the client sees a deadline,
                        // a cancel or the stream it reset.
                        Err(_) if attack == Attack::CancelledSearches => ok += 1,
                        Err(s) => return Err(Error::from(s)),
                    }
                    i += clients;
                }
                Ok::<_, Error>((ok, refused))
            })
        })
        .collect();
    let (mut ok, mut refused) = (0, 0);
    for task in tasks {
        let (o, r) = task.await??;
        ok += o;
        refused += r;
    }
    Ok((ok, refused))
}

/// The flooding process (`load --flood`): reads its order as one JSON line
/// on stdin, floods until stdin closes, and prints what was answered and
/// refused as JSON. The noisy scenario runs each flood so, in a process of
/// its own, as a neighbour's clients would be.
fn flood_process() -> Result<(), Error> {
    use std::io::{BufRead, Read};
    let mut stdin = std::io::stdin().lock();
    let mut line = String::new();
    stdin.read_line(&mut line)?;
    let order = FloodOrder::from_json(&serde_json::from_str(&line)?)?;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stopper = Arc::clone(&stop);
    std::thread::spawn(move || {
        let _ = std::io::stdin().lock().read_to_end(&mut Vec::new());
        stopper.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    drop(stdin);
    let runtime = tokio::runtime::Runtime::new()?;
    let (answered, refused) = runtime.block_on(flood(order, stop))?;
    println!("{}", json!({"answered": answered, "refused": refused}));
    Ok(())
}

/// A flooding process running `order`.
fn start_flood(order: &FloodOrder) -> Result<std::process::Child, Error> {
    use std::process::{Command, Stdio};
    let mut child = Command::new(std::env::current_exe()?)
        .arg("--flood")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let stdin = child.stdin.as_mut().ok_or("the flood has no stdin")?;
    writeln!(stdin, "{}", order.to_json())?;
    Ok(child)
}

/// Stops a flooding process: (answered, refused).
fn end_flood(mut child: std::process::Child) -> Result<(u64, u64), Error> {
    drop(child.stdin.take());
    let output = child.wait_with_output()?;
    if !output.status.success() {
        return Err(format!("the flooding process failed ({})", output.status).into());
    }
    let answer: Value = serde_json::from_slice(&output.stdout)?;
    Ok((
        answer["answered"].as_u64().unwrap_or(0),
        answer["refused"].as_u64().unwrap_or(0),
    ))
}

/// The soak (see the top of this file).
fn soak(set: &Arc<Dataset>, dim: usize, seconds: u64) -> Result<Value, Error> {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    const TENANTS: usize = 20;
    const CLIENTS: usize = 4;
    let data_dir = tempfile::tempdir()?;
    let registry = Arc::new(Registry::open(data_dir.path(), EngineConfig::default())?);
    let spec = TenantSpec::new(dim as u32, Metric::Cosine);
    let size = 2_000.min(set.base.len());
    let mut tokens = Vec::new();
    for t in 0..TENANTS {
        let name = format!("soak{t}");
        let tenant = registry.create_tenant(&name, spec.clone())?;
        let points: Vec<PointInput> = set.base[..size]
            .iter()
            .enumerate()
            .map(|(i, v)| PointInput::new(format!("p{i}"), v.clone()))
            .collect();
        tenant.upsert(&points)?;
        tokens.push((name, registry.issue_token(&format!("soak{t}"))?.token));
    }
    let server_runtime = tokio::runtime::Runtime::new()?;
    let (url, stop_server, server) =
        server_runtime.block_on(serve(&registry, Embedders::none()))?;
    let stop = Arc::new(AtomicBool::new(false));
    let ops = Arc::new([(); 6].map(|_| AtomicU64::new(0)));
    let errors = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let client_runtime = tokio::runtime::Runtime::new()?;
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let (url, tokens, set, stop, ops, errors) = (
            url.clone(),
            tokens.clone(),
            Arc::clone(set),
            Arc::clone(&stop),
            Arc::clone(&ops),
            Arc::clone(&errors),
        );
        tasks.push(client_runtime.spawn(async move {
            let mut clients = Vec::new();
            for (name, token) in &tokens {
                clients
                    .push(TenantClient::connect(url.clone(), name.clone(), token.clone()).await?);
            }
            let mut i = c;
            while !stop.load(Ordering::Relaxed) {
                let client = &clients[i % clients.len()];
                // Writes replace and delete points of a bounded set of ids,
                // so the data reaches a steady size and memory can be flat.
                let slot = (i / 10) % 100;
                let q = set.queries[i % set.queries.len()].clone();
                let (kind, result) = match i % 10 {
                    0..=5 => (0, client.search(q).k(K as u32).send().await.map(|_| ())),
                    6 | 7 => {
                        let points = (0..10)
                            .map(|j| {
                                bulkhead_client::Point::new(
                                    format!("n{c}-{slot}-{j}"),
                                    set.base[(i + j) % size].clone(),
                                )
                            })
                            .collect();
                        (1, client.upsert(points).await.map(|_| ()))
                    }
                    8 => {
                        let ids = (0..10)
                            .map(|j| format!("n{c}-{}-{j}", (slot + 50) % 100))
                            .collect();
                        (2, client.delete(ids).await.map(|_| ()))
                    }
                    _ if i % 20 == 9 => (3, client.count(None).await.map(|_| ())),
                    _ => (4, client.scroll(None, 100, None).await.map(|_| ())),
                };
                ops[kind].fetch_add(1, Ordering::Relaxed);
                if let Err(e) = result {
                    errors.lock().map_err(|_| "poisoned")?.push(e.to_string());
                }
                i += CLIENTS;
            }
            Ok::<_, Error>(())
        }));
    }
    // The churner: create, fill, search, drop, again and again.
    {
        let (registry, set, stop, ops, errors, url) = (
            Arc::clone(&registry),
            Arc::clone(set),
            Arc::clone(&stop),
            Arc::clone(&ops),
            Arc::clone(&errors),
            url.clone(),
        );
        let spec = spec.clone();
        tasks.push(client_runtime.spawn(async move {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let name = format!("churn{n}");
                let made = {
                    let (registry, name, spec) =
                        (Arc::clone(&registry), name.clone(), spec.clone());
                    tokio::task::spawn_blocking(move || {
                        registry.create_tenant(&name, spec)?;
                        registry.issue_token(&name).map(|t| t.token)
                    })
                    .await?
                };
                let outcome: Result<(), String> = async {
                    let token = made.map_err(|e| e.to_string())?;
                    let client = TenantClient::connect(url.clone(), name.clone(), token)
                        .await
                        .map_err(|e| e.to_string())?;
                    let points = set.base[..200]
                        .iter()
                        .enumerate()
                        .map(|(i, v)| bulkhead_client::Point::new(i.to_string(), v.clone()))
                        .collect();
                    client.upsert(points).await.map_err(|e| e.to_string())?;
                    client
                        .search(set.queries[0].clone())
                        .send()
                        .await
                        .map_err(|e| e.to_string())?;
                    Ok(())
                }
                .await;
                let dropped = {
                    let (registry, name) = (Arc::clone(&registry), name.clone());
                    tokio::task::spawn_blocking(move || registry.drop_tenant(&name)).await?
                };
                ops[5].fetch_add(1, Ordering::Relaxed);
                let mut errors = errors.lock().map_err(|_| "poisoned")?;
                if let Err(e) = outcome {
                    errors.push(e);
                }
                if let Err(e) = dropped {
                    errors.push(e.to_string());
                }
                n += 1;
            }
            Ok::<_, Error>(())
        }));
    }
    let started = Instant::now();
    let mut rss = vec![json!({"second": 0, "rss_bytes": rss_bytes()})];
    while started.elapsed().as_secs() < seconds {
        std::thread::sleep(Duration::from_secs(1));
        let s = started.elapsed().as_secs();
        if s.is_multiple_of(60) || s >= seconds {
            rss.push(json!({"second": s, "rss_bytes": rss_bytes()}));
            eprintln!("soak: {s} s, RSS {} MiB", rss_bytes() >> 20);
        }
    }
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        client_runtime.block_on(task)??;
    }
    drop(client_runtime);
    let _ = stop_server.send(());
    server_runtime.block_on(server)??;
    let counts: Vec<u64> = ops.iter().map(|o| o.load(Ordering::Relaxed)).collect();
    let errors = errors.lock().map_err(|_| "poisoned")?.clone();
    let first = rss.get(1).unwrap_or(&rss[0])["rss_bytes"]
        .as_u64()
        .unwrap_or(1)
        .max(1);
    let last = rss
        .last()
        .map_or(0, |r| r["rss_bytes"].as_u64().unwrap_or(0));
    let markdown = format!(
        "### Soak: {seconds} s of mixed load through gRPC, {TENANTS} tenants of {size} points, 4 clients and a churner

Operations: {} searches, {} upserts of 10, {} deletes, {} counts, {} scrolls, {} tenants created, filled, searched and dropped. Unexpected errors: {}. RSS (MiB) each minute: {}; last / first minute {:.2}.
",
        counts[0],
        counts[1],
        counts[2],
        counts[3],
        counts[4],
        counts[5],
        errors.len(),
        rss.iter()
            .map(|r| (r["rss_bytes"].as_u64().unwrap_or(0) >> 20).to_string())
            .collect::<Vec<_>>()
            .join(", "),
        last as f64 / first as f64,
    );
    Ok(json!({
        "seconds": seconds,
        "ops": {"search": counts[0], "upsert": counts[1], "delete": counts[2], "count": counts[3], "scroll": counts[4], "tenant_cycles": counts[5]},
        "unexpected_errors": errors.len(),
        "first_errors": errors.iter().take(10).collect::<Vec<_>>(),
        "rss": rss,
        "markdown": markdown,
    }))
}

/// The noisy-neighbour scenario (see the top of this file).
fn noisy_neighbour(set: &Arc<Dataset>, dim: usize, seconds: f64) -> Result<Value, Error> {
    const QUOTA_RPS: u32 = 200;
    const FLOOD_CLIENTS: usize = 8;
    // The cold-load storm: this many tenants, of which the memory budget
    // holds STORM_RESIDENT at once beside the pinned tenants.
    const STORM: usize = 24;
    const STORM_SIZE: usize = 2_000;
    const STORM_RESIDENT: u64 = 3;
    let data_dir = tempfile::tempdir()?;
    let spec = TenantSpec::new(dim as u32, Metric::Cosine);
    let size = set.base.len().min(10_000);
    let quota = Quotas {
        max_requests_per_second: QUOTA_RPS,
        ..Quotas::default()
    };
    let names = ["victim", "neighbour", "greedy"];
    let storm: Vec<String> = (0..STORM).map(|i| format!("storm-{i}")).collect();
    let fill = |registry: &Registry, name: &str, quotas: Quotas, points: usize| {
        let tenant = registry.create_tenant_with_quotas(name, spec.clone(), quotas)?;
        for (c, chunk) in set.base[..points].chunks(1_000).enumerate() {
            let batch: Vec<PointInput> = chunk
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    let i = c * 1_000 + i;
                    PointInput::new(i.to_string(), v.clone())
                        .with_payload(json!({"tag": format!("t{}", i % 100)}))
                })
                .collect();
            tenant.upsert(&batch)?;
        }
        tenant.wait_for_maintenance();
        Ok::<_, Error>(())
    };
    let budget = {
        let registry = Registry::open(data_dir.path(), EngineConfig::default())?;
        for name in names {
            let quotas = if name == "neighbour" {
                quota
            } else {
                Quotas::default()
            };
            fill(&registry, name, quotas, size)?;
            registry.pin_tenant(name, true)?;
        }
        for name in &storm {
            fill(&registry, name, Quotas::default(), STORM_SIZE.min(size))?;
        }
        let resident = |name: &str| registry.describe_tenant(name).map(|i| i.resident_bytes);
        let pinned: u64 = names.iter().map(|n| resident(n)).sum::<Result<u64, _>>()?;
        pinned + STORM_RESIDENT * resident(&storm[0])?
    };
    // Reopened under a memory budget that holds the pinned tenants and a
    // few storm tenants: each storm search loads a tenant and evicts one.
    let registry = Arc::new(Registry::open(
        data_dir.path(),
        EngineConfig {
            memory_budget_bytes: budget,
            ..EngineConfig::default()
        },
    )?);
    // The embedding flood needs the sidecar and its model: a tenant of the
    // model's dimension in the default trust class.
    // The server and the victim get their own runtimes; each flood runs in
    // a process of its own (they all share this machine's cores). The
    // sidecar's client is made on the server's.
    let server_runtime = tokio::runtime::Runtime::new()?;
    let local = {
        let _on = server_runtime.enter();
        bulkhead::local_embedder::LocalEmbedder::start(&bulkhead::config::default_models_dir())?
    };
    let texty = "texty";
    if local.is_some() {
        registry.create_tenant(texty, TenantSpec::new(384, Metric::Cosine))?;
    }
    let token = |name: &str| registry.issue_token(name).map(|t| t.token);
    let tokens: Vec<String> = names.iter().map(|n| token(n)).collect::<Result<_, _>>()?;
    let storm_tenants: Vec<(String, String)> = storm
        .iter()
        .map(|n| Ok::<_, Error>((n.clone(), token(n)?)))
        .collect::<Result<_, _>>()?;
    let texty_tenant = match local {
        Some(_) => vec![(texty.to_string(), token(texty)?)],
        None => Vec::new(),
    };
    let (local, embedders) = match local {
        Some((local, embedders)) => (Some(local), embedders),
        None => (None, Embedders::none()),
    };
    let (url, stop_server, server) = server_runtime.block_on(serve(&registry, embedders))?;
    let victim_runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let victim = victim_runtime.block_on(TenantClient::connect(
        url.clone(),
        names[0],
        tokens[0].clone(),
    ))?;
    let one = |f: usize| vec![(names[f].to_string(), tokens[f].clone())];
    let rate = 10.0 * f64::from(QUOTA_RPS);
    // Each phase: its name, and who floods at what rate with what.
    type Flood = (Vec<(String, String)>, f64, Attack);
    let mut plan: Vec<(&str, Option<Flood>)> = vec![
        ("quiet", None),
        (
            "neighbour at 10x its quota",
            Some((one(1), rate, Attack::Searches)),
        ),
        (
            "greedy (no quota) at the same rate",
            Some((one(2), rate, Attack::Searches)),
        ),
        (
            "greedy: searches cancelled after 1 ms",
            Some((one(2), rate, Attack::CancelledSearches)),
        ),
        (
            "greedy: counts with 4,096-value any lists",
            Some((one(2), rate, Attack::HugeAnyCounts)),
        ),
        (
            "storm: searches over 24 cold tenants",
            Some((storm_tenants, rate, Attack::ColdLoads)),
        ),
    ];
    if !texty_tenant.is_empty() {
        plan.push((
            "texty: embeds of 64 long texts",
            Some((texty_tenant, 100.0, Attack::Embeds)),
        ));
    } else {
        eprintln!(
            "  (no embedding flood: the model is not in the models folder; `make setup` fetches it)"
        );
    }
    let result = victim_runtime.block_on(async {
        let mut phases = Vec::new();
        // Warm up, then quiet, then each flood.
        victim_latencies(&victim, set, 1.0).await?;
        for (phase, flood) in plan {
            let flooding = flood
                .map(|(tenants, rate, attack)| {
                    start_flood(&FloodOrder {
                        url: url.clone(),
                        tenants,
                        dim,
                        clients: FLOOD_CLIENTS,
                        rate,
                        attack,
                    })
                })
                .transpose()?;
            // Let the flood reach its rate before measuring.
            if flooding.is_some() {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            let latencies = victim_latencies(&victim, set, seconds).await?;
            let (answered, refused) = match flooding {
                Some(child) => end_flood(child)?,
                None => (0, 0),
            };
            eprintln!(
                "  {phase}: victim p50 {:.0} us, p99 {:.0} us; flood answered {answered}, refused {refused}",
                percentile(&latencies, 0.5),
                percentile(&latencies, 0.99)
            );
            phases.push(json!({
                "phase": phase,
                "victim_queries": latencies.len(),
                "victim_p50_us": percentile(&latencies, 0.5),
                "victim_p99_us": percentile(&latencies, 0.99),
                "flood_answered": answered,
                "flood_refused": refused,
                "flood_seconds": seconds + 0.5,
            }));
        }
        Ok::<_, Error>(phases)
    })?;
    // The server drains open connections before it stops: close the
    // victim's first.
    drop(victim);
    drop(victim_runtime);
    let _ = stop_server.send(());
    server_runtime.block_on(server)??;
    if let Some(local) = local {
        local.stop();
    }
    let quiet_p99 = result[0]["victim_p99_us"].as_f64().unwrap_or(f64::NAN);
    let mut markdown = format!(
        "### Noisy neighbour: victim and neighbours of {size} points, ef 64, {seconds:.0} s per phase; the neighbour's quota {QUOTA_RPS} requests/s; each flood {FLOOD_CLIENTS} clients in a process of its own; the storm's {STORM} tenants of {STORM_SIZE} points under a memory budget that holds {STORM_RESIDENT}

| phase | victim p50 us | victim p99 us | p99 / quiet | flood answered/s | flood refused/s |
|---|---|---|---|---|---|
"
    );
    for phase in &result {
        let secs = phase["flood_seconds"].as_f64().unwrap_or(1.0);
        let p99 = phase["victim_p99_us"].as_f64().unwrap_or(f64::NAN);
        markdown += &format!(
            "| {} | {:.0} | {:.0} | {:.2} | {:.0} | {:.0} |
",
            phase["phase"].as_str().unwrap_or(""),
            phase["victim_p50_us"].as_f64().unwrap_or(f64::NAN),
            p99,
            p99 / quiet_p99,
            phase["flood_answered"].as_f64().unwrap_or(0.0) / secs,
            phase["flood_refused"].as_f64().unwrap_or(0.0) / secs,
        );
    }
    Ok(json!({"quota_rps": QUOTA_RPS, "phases": result, "markdown": markdown}))
}

/// Per-tenant graphs against one shared index with a tenant filter, on the
/// same points (point i belongs to tenant i % tenants; query j asks tenant
/// j % tenants), one thread, in-process.
fn isolation(set: &Dataset, dim: usize, tenants: usize, efs: &[usize]) -> Result<Value, Error> {
    let owner = |i: usize| i % tenants;
    // Exact top 10 within each query's tenant, as global ids.
    let mut truth = vec![Vec::new(); set.queries.len()];
    for t in 0..tenants {
        let members: Vec<usize> = (0..set.base.len()).filter(|&i| owner(i) == t).collect();
        let subset: Vec<Vec<f32>> = members.iter().map(|&i| set.base[i].clone()).collect();
        let asking: Vec<usize> = (0..set.queries.len()).filter(|&j| owner(j) == t).collect();
        let queries: Vec<Vec<f32>> = asking.iter().map(|&j| set.queries[j].clone()).collect();
        for (j, row) in asking.iter().zip(data::ground_truth(&subset, &queries, K)) {
            truth[*j] = row
                .into_iter()
                .map(|local| members[local as usize] as u32)
                .collect();
        }
    }
    let dir = tempfile::tempdir()?;
    let registry = Registry::open(dir.path(), EngineConfig::default())?;
    let spec = TenantSpec::new(dim as u32, Metric::Cosine);
    let started = Instant::now();
    let handles = (0..tenants)
        .map(|t| registry.create_tenant(&format!("t{t}"), spec.clone()))
        .collect::<Result<Vec<_>, _>>()?;
    let shared = registry.create_tenant("shared", spec)?;
    let mut done = 0;
    for chunk in set.base.chunks(1_000) {
        let mut per_tenant = vec![Vec::new(); tenants];
        let mut all = Vec::with_capacity(chunk.len());
        for (offset, v) in chunk.iter().enumerate() {
            let i = done + offset;
            per_tenant[owner(i)].push(PointInput::new(i.to_string(), v.clone()));
            all.push(
                PointInput::new(i.to_string(), v.clone()).with_payload(json!({"tenant": owner(i)})),
            );
        }
        for (t, batch) in per_tenant.iter().enumerate().filter(|(_, b)| !b.is_empty()) {
            handles[t].upsert(batch)?;
        }
        shared.upsert(&all)?;
        done += chunk.len();
        progress("isolation: upsert", done, set.base.len(), started);
    }
    shared.wait_for_maintenance();
    let filters = (0..tenants)
        .map(|t| Filter::from_json(&json!({"must": [{"key": "tenant", "match": {"value": t}}]})))
        .collect::<Result<Vec<_>, _>>()?;
    let mut rows = Vec::new();
    let mut markdown = format!(
        "### Isolation tax: {tenants} tenants of ~{} points, per-tenant graphs vs one shared index with a tenant filter (1 thread, in-process)\n\n| ef | per-tenant recall@10 | per-tenant QPS | shared recall@10 | shared QPS | per-tenant / shared |\n|---|---|---|---|---|---|\n",
        set.base.len() / tenants
    );
    for &ef in efs {
        let measure = |search: &dyn Fn(usize) -> Vec<String>| {
            let started = Instant::now();
            let results: Vec<(usize, Vec<String>, Duration)> = (0..set.queries.len())
                .map(|j| {
                    let asked = Instant::now();
                    (j, search(j), asked.elapsed())
                })
                .collect();
            summarize(ef, 1, started.elapsed(), results, &truth)
        };
        let request = |j: usize, filter: Option<Filter>| SearchRequest {
            ef: Some(ef),
            filter,
            ..SearchRequest::new(set.queries[j].clone(), K)
        };
        let ids = |hits: bulkhead::engine::Result<Vec<bulkhead::engine::ScoredPoint>>| {
            hits.map(|h| h.into_iter().map(|p| p.id).collect())
                .unwrap_or_default()
        };
        let own = measure(&|j| ids(handles[owner(j)].search(&request(j, None))));
        let filtered =
            measure(&|j| ids(shared.search(&request(j, Some(filters[owner(j)].clone())))));
        markdown += &format!(
            "| {ef} | {:.3} | {:.0} | {:.3} | {:.0} | {:.2}x |\n",
            own.recall,
            own.qps,
            filtered.recall,
            filtered.qps,
            own.qps / filtered.qps
        );
        rows.push(json!({
            "ef": ef,
            "per_tenant": {"recall_at_10": own.recall, "qps": own.qps, "p99_us": own.p99_us},
            "shared_filtered": {"recall_at_10": filtered.recall, "qps": filtered.qps, "p99_us": filtered.p99_us},
            "per_tenant_over_shared_qps": own.qps / filtered.qps,
        }));
    }
    Ok(json!({"tenants": tenants, "runs": rows, "markdown": markdown}))
}

/// Durable upserts into a fresh tenant for `seconds` per batch size: each
/// call returns only when its batch is synced.
fn durable_writes(set: &Dataset, dim: usize, seconds: f64) -> Result<Value, Error> {
    let dir = tempfile::tempdir()?;
    let registry = Registry::open(dir.path(), EngineConfig::default())?;
    let mut rows = Vec::new();
    let mut markdown = String::from(
        "### Durable writes (one client, synced before each call returns)\n\n| batch | points/s | calls/s | p50 ms | p99 ms |\n|---|---|---|---|---|\n",
    );
    for batch in [1usize, 100, 1_000] {
        let tenant = registry.create_tenant(
            &format!("w{batch}"),
            TenantSpec::new(dim as u32, Metric::Cosine),
        )?;
        let (mut written, mut latencies) = (0usize, Vec::new());
        let started = Instant::now();
        while started.elapsed().as_secs_f64() < seconds {
            let points: Vec<PointInput> = (0..batch)
                .map(|i| {
                    let n = written + i;
                    PointInput::new(n.to_string(), set.base[n % set.base.len()].clone())
                })
                .collect();
            let asked = Instant::now();
            tenant.upsert(&points)?;
            latencies.push(asked.elapsed().as_secs_f64() * 1e3);
            written += batch;
        }
        let elapsed = started.elapsed().as_secs_f64();
        latencies.sort_by(f64::total_cmp);
        let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
        let (rate, calls) = (written as f64 / elapsed, latencies.len() as f64 / elapsed);
        markdown += &format!(
            "| {batch} | {rate:.0} | {calls:.1} | {:.2} | {:.2} |\n",
            at(0.5),
            at(0.99)
        );
        rows.push(json!({"batch": batch, "points_per_second": rate, "calls_per_second": calls, "p50_ms": at(0.5), "p99_ms": at(0.99)}));
    }
    Ok(json!({"runs": rows, "markdown": markdown}))
}

/// Resident memory of this process in bytes (Linux), or 0.
fn rss_bytes() -> u64 {
    fs_err::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0, |kib| kib * 1024)
}

/// `count` tenants of `size` points: create (with their points), reopen,
/// resident memory per tenant, and 2,000 queries over a Zipf(1) mix of
/// tenants, one thread, in-process.
fn many_tenants(
    count: usize,
    size: usize,
    dim: usize,
    keep: Option<&Path>,
) -> Result<Value, Error> {
    use rand::{Rng, SeedableRng};
    let temporary = tempfile::tempdir()?;
    let dir = match keep {
        Some(keep) => keep.join(format!("{count}x{size}x{dim}")),
        None => temporary.path().to_path_buf(),
    };
    let started = Instant::now();
    let reused = keep.is_some()
        && dir.exists()
        && Registry::open(&dir, EngineConfig::default())?
            .list_tenants()
            .len()
            == count;
    if reused {
        eprintln!("{count} tenants: reusing {}", dir.display());
    } else {
        if dir.exists() {
            fs_err::remove_dir_all(&dir)?;
        }
        let registry = Registry::open(&dir, EngineConfig::default())?;
        for t in 0..count {
            let tenant = registry.create_tenant(
                &format!("m{t}"),
                TenantSpec::new(dim as u32, Metric::Cosine),
            )?;
            let points: Vec<PointInput> = data::dataset(10 + t as u64, size, dim)
                .into_iter()
                .enumerate()
                .map(|(i, v)| PointInput::new(i.to_string(), v))
                .collect();
            tenant.upsert(&points)?;
            if (t + 1) % 100 == 0 || t + 1 == count {
                progress(&format!("{count} tenants: create"), t + 1, count, started);
            }
        }
        registry.close()?;
    }
    // Not measured when the tenants were made by an earlier run.
    let create_s = (!reused).then(|| started.elapsed().as_secs_f64());
    // Reopen in a fresh process, so that its memory is the reopened
    // tenants' and not what this one's allocator kept from creating them.
    let reopen = std::process::Command::new(std::env::current_exe()?)
        .arg("--reopen-only")
        .arg(&dir)
        .output()?;
    if !reopen.status.success() {
        return Err(format!("reopen: {}", String::from_utf8_lossy(&reopen.stderr)).into());
    }
    let reopen: Value = serde_json::from_slice(&reopen.stdout)?;
    let reopen_s = reopen["seconds"].as_f64().unwrap_or_default();
    let grown = reopen["rss_after"]
        .as_u64()
        .unwrap_or_default()
        .saturating_sub(reopen["rss_before"].as_u64().unwrap_or_default());
    let registry = Registry::open(&dir, EngineConfig::default())?;
    let handles = (0..count)
        .map(|t| registry.tenant(&format!("m{t}")))
        .collect::<Result<Vec<_>, _>>()?;
    // Zipf(1): tenant of rank r with weight 1/r.
    let weights: Vec<f64> = (1..=count).map(|r| 1.0 / r as f64).collect();
    let total: f64 = weights.iter().sum();
    let cumulative: Vec<f64> = weights
        .iter()
        .scan(0.0, |acc, w| {
            *acc += w / total;
            Some(*acc)
        })
        .collect();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let queries = data::dataset(3, 2_000, dim);
    let mut latencies: Vec<f64> = queries
        .into_iter()
        .map(|q| {
            let u: f64 = rng.random();
            let t = cumulative.partition_point(|&c| c < u).min(count - 1);
            let asked = Instant::now();
            let _ = handles[t].search(&SearchRequest::new(q, K));
            asked.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
    let per_tenant_kib = grown as f64 / 1024.0 / count as f64;
    Ok(json!({
        "tenants": count,
        "points_per_tenant": size,
        "create_seconds": create_s,
        "create_ms_per_tenant": create_s.map(|s| s * 1e3 / count as f64),
        "reopen_seconds": reopen_s,
        "rss_growth_on_reopen_bytes": grown,
        "rss_per_tenant_kib": per_tenant_kib,
        "first_query_closed_shelf_ms": reopen["first_query_closed_shelf_ms"],
        "first_query_open_shelf_ms": reopen["first_query_open_shelf_ms"],
        "zipf_query_p50_us": at(0.5),
        "zipf_query_p99_us": at(0.99),
    }))
}

fn many_table(rows: &[Value]) -> String {
    let mut out = String::from(
        "### Many tenants (in-process, one thread)\n\n| tenants | points each | create ms/tenant | reopen s (fresh process) | RSS KiB/tenant, reopened | first query ms, cold tenant, shelf closed / open | Zipf query p50 us | p99 us |\n|---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        out += &format!(
            "| {} | {} | {} | {:.2} | {:.0} | {:.1} / {:.1} | {:.0} | {:.0} |\n",
            r["tenants"],
            r["points_per_tenant"],
            r["create_ms_per_tenant"]
                .as_f64()
                .map_or("(reused)".to_string(), |ms| format!("{ms:.1}")),
            r["reopen_seconds"].as_f64().unwrap_or_default(),
            r["rss_per_tenant_kib"].as_f64().unwrap_or_default(),
            r["first_query_closed_shelf_ms"]
                .as_f64()
                .unwrap_or_default(),
            r["first_query_open_shelf_ms"].as_f64().unwrap_or_default(),
            r["zipf_query_p50_us"].as_f64().unwrap_or_default(),
            r["zipf_query_p99_us"].as_f64().unwrap_or_default(),
        );
    }
    out
}

fn table(title: &str, runs: &[Run]) -> String {
    let mut out = format!(
        "### {title}\n\n| ef | threads | recall@10 | QPS | p50 us | p99 us |\n|---|---|---|---|---|---|\n"
    );
    for r in runs {
        out += &format!(
            "| {} | {} | {:.3} | {:.0} | {:.0} | {:.0} |\n",
            r.ef, r.threads, r.recall, r.qps, r.p50_us, r.p99_us
        );
    }
    out
}

fn runs_json(runs: &[Run]) -> Value {
    Value::Array(
        runs.iter()
            .map(|r| json!({"ef": r.ef, "threads": r.threads, "recall_at_10": r.recall, "qps": r.qps, "p50_us": r.p50_us, "p99_us": r.p99_us}))
            .collect(),
    )
}

/// `--reopen-only DIR`: opens the data directory, prints the time it took
/// and the process's resident memory before and after as JSON.
fn reopen_only(dir: &Path) -> Result<(), Error> {
    let rss_before = rss_bytes();
    let started = Instant::now();
    let registry = Registry::open(dir, EngineConfig::default())?;
    let seconds = started.elapsed().as_secs_f64();
    let rss_after = rss_bytes();
    // The first query on a cold tenant whose shelf is closed (it opens the
    // shelf of up to 100 tenants, then loads the tenant), then on another
    // tenant of the same shelf, now open.
    let first = |name: &str| -> Result<f64, Error> {
        let asked = Instant::now();
        let tenant = registry.tenant(name)?;
        let query = vec![1.0f32; tenant.spec().dimension as usize];
        tenant.search(&SearchRequest::new(query, K))?;
        Ok(asked.elapsed().as_secs_f64() * 1e3)
    };
    let closed_shelf_ms = first("m0")?;
    let open_shelf_ms = first("m1")?;
    println!(
        "{}",
        json!({"seconds": seconds, "rss_before": rss_before, "rss_after": rss_after, "tenants": registry.list_tenants().len(), "first_query_closed_shelf_ms": closed_shelf_ms, "first_query_open_shelf_ms": open_shelf_ms})
    );
    Ok(())
}

/// Opens the registry in `dir` (tenants cold) and times the first query on
/// the bench tenant, which loads it, and the next one.
fn cold_first_query(dir: &Path) -> Result<(), Error> {
    let started = Instant::now();
    let registry = Registry::open(dir, EngineConfig::default())?;
    let open_ms = started.elapsed().as_secs_f64() * 1e3;
    let asked = Instant::now();
    let tenant = registry.tenant(TENANT)?;
    let query = vec![1.0f32; tenant.spec().dimension as usize];
    tenant.search(&SearchRequest::new(query.clone(), K))?;
    let first_ms = asked.elapsed().as_secs_f64() * 1e3;
    let asked = Instant::now();
    tenant.search(&SearchRequest::new(query, K))?;
    let next_us = asked.elapsed().as_secs_f64() * 1e6;
    println!(
        "{}",
        json!({"open_ms": open_ms, "first_query_ms": first_ms, "next_query_us": next_us, "points": tenant.count(None)?})
    );
    Ok(())
}

fn main() -> Result<(), Error> {
    if std::env::args().nth(1).as_deref() == Some("--flood") {
        return flood_process();
    }
    if let [_, flag, dir] = std::env::args().collect::<Vec<_>>().as_slice() {
        match flag.as_str() {
            "--reopen-only" => return reopen_only(Path::new(dir)),
            "--cold-first-query" => return cold_first_query(Path::new(dir)),
            _ => {}
        }
    }
    let args = parse_args()?;
    let dir = args
        .out
        .clone()
        .or_else(|| args.data.clone())
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("target")
                .join("bench-load")
                .join(format!("{}x{}", args.n, args.dim))
        });
    let set = Arc::new(match &args.data {
        Some(given) => given_dataset(given)?,
        None => dataset(&args, &dir)?,
    });
    // A given dataset sets the shape of the run.
    let mut args = args;
    args.n = set.base.len();
    args.dim = set.base[0].len();
    args.queries = set.queries.len();

    let data_dir = tempfile::tempdir()?;
    let registry = Arc::new(Registry::open(data_dir.path(), EngineConfig::default())?);
    let spec = TenantSpec::new(args.dim as u32, Metric::Cosine);
    registry.create_tenant(TENANT, spec.clone())?;
    let tenant = registry.tenant(TENANT)?;
    let started = Instant::now();
    let mut done = 0;
    for chunk in set.base.chunks(1_000) {
        let batch: Vec<PointInput> = chunk
            .iter()
            .enumerate()
            .map(|(i, v)| PointInput::new((done + i).to_string(), v.clone()))
            .collect();
        tenant.upsert(&batch)?;
        done += chunk.len();
        progress("upsert", done, set.base.len(), started);
    }
    // Let the last freeze finish: the sweep measures the steady state.
    tenant.wait_for_maintenance();
    let build_s = started.elapsed().as_secs_f64();

    eprintln!("in-process ef sweep");
    let engine_runs = in_process(&registry, &set, &args.efs)?;
    let mut grpc_runs = Vec::new();
    if args.runs("grpc") {
        eprintln!("gRPC ef sweep");
        let token = registry.issue_token(TENANT)?.token;
        let runtime = tokio::runtime::Runtime::new()?;
        grpc_runs = runtime.block_on(async {
            let (url, stop, server) = serve(&registry, Embedders::none()).await?;
            let client = TenantClient::connect(url, TENANT, token).await?;
            let runs = through_grpc(&client, &set, &args.efs).await;
            let _ = stop.send(());
            server.await??;
            runs
        })?;
    }

    // The first query on the same tenant cold: closed here, reopened in a
    // fresh process that loads it on that query.
    drop(tenant);
    registry.close()?;
    drop(registry);
    let cold = std::process::Command::new(std::env::current_exe()?)
        .arg("--cold-first-query")
        .arg(data_dir.path())
        .output()?;
    if !cold.status.success() {
        return Err(format!("cold query: {}", String::from_utf8_lossy(&cold.stderr)).into());
    }
    let cold: Value = serde_json::from_slice(&cold.stdout)?;

    let mut isolation = Value::Null;
    if args.runs("isolation") {
        eprintln!("isolation tax");
        isolation = self::isolation(&set, args.dim, args.tenants, &args.efs)?;
    }
    let mut writes = Value::Null;
    if args.runs("writes") {
        eprintln!("durable writes");
        writes = durable_writes(&set, args.dim, 5.0)?;
    }
    let mut soaked = Value::Null;
    if let Some(seconds) = args.soak {
        eprintln!("soak");
        soaked = soak(&set, args.dim, seconds)?;
    }
    let mut noisy = Value::Null;
    if args.runs("noisy") {
        eprintln!("noisy neighbour");
        noisy = noisy_neighbour(&set, args.dim, 5.0)?;
    }
    if !args.runs("many") {
        args.many.clear();
    }

    let many = args
        .many
        .iter()
        .map(|&count| many_tenants(count, args.many_size, args.dim, args.many_dir.as_deref()))
        .collect::<Result<Vec<_>, _>>()?;

    let index = spec.index;
    let report = json!({
        "dataset": {"n": args.n, "dim": args.dim, "queries": args.queries, "metric": "cosine", "dir": dir.display().to_string()},
        "index": {"m": index.m, "ef_construction": index.ef_construction},
        "machine": {"cores": std::thread::available_parallelism().map_or(1, |n| n.get())},
        "build": {"seconds": build_s, "points_per_second": args.n as f64 / build_s, "batch": 1000},
        "single_tenant": {"engine": runs_json(&engine_runs), "grpc": runs_json(&grpc_runs)},
        "isolation": isolation,
        "durable_writes": writes,
        "noisy_neighbour": noisy,
        "soak": soaked,
        "many_tenants": many,
        "cold_first_query": cold,
    });
    let markdown = format!(
        "## One tenant: {} x {} cosine, {} queries, M={}, ef_construction={}\n\nBuild (durable batches of 1,000): {:.1} s, {:.0} points/s.\n\n{}\n{}",
        args.n,
        args.dim,
        args.queries,
        index.m,
        index.ef_construction,
        build_s,
        args.n as f64 / build_s,
        table("In-process (engine)", &engine_runs),
        table("Through gRPC (server on 127.0.0.1, Rust SDK)", &grpc_runs),
    ) + &format!(
        "\nFirst query on this tenant cold (reopened in a fresh process, loaded by that query): {:.1} ms; registry open {:.1} ms; the next query {:.0} us.\n\n",
        cold["first_query_ms"].as_f64().unwrap_or_default(),
        cold["open_ms"].as_f64().unwrap_or_default(),
        cold["next_query_us"].as_f64().unwrap_or_default(),
    ) + "\n"
        + isolation["markdown"].as_str().unwrap_or_default()
        + "\n"
        + writes["markdown"].as_str().unwrap_or_default()
        + "\n"
        + noisy["markdown"].as_str().unwrap_or_default()
        + "\n"
        + soaked["markdown"].as_str().unwrap_or_default()
        + "\n"
        + &many_table(&many);
    fs_err::write(
        dir.join("report.json"),
        serde_json::to_string_pretty(&report)?,
    )?;
    fs_err::write(dir.join("report.md"), &markdown)?;
    println!("{markdown}");
    eprintln!("report: {}", dir.join("report.json").display());
    Ok(())
}
