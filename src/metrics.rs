//! Operator metrics: Prometheus text on a listener of its own
//! (`--metrics-listen`, off by default), never on the tenants' port.
//!
//! Every data-plane call is counted by RPC and gRPC code and timed, once
//! for the node and, when its token admitted it to a tenant, once for that
//! tenant (keyed by incarnation, so a recreated name starts afresh). Per
//! tenant series are named by tenant at scrape time and left out for a
//! tenant whose contract says `telemetry none`, and for a dropped one.
//! Calls that name a tenant they are not admitted to count for the node
//! only: a caller can create no series, and no series says that a name it
//! tried exists. The exposition is prometheus-client's.

use std::cell::Cell;
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use prometheus_client::encoding::{DescriptorEncoder, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use tokio::net::TcpListener;
use tonic::{Code, Request, Response, Status};

use crate::engine::{Registry, Telemetry, TenantState};
use crate::proto;
use crate::proto::points_service_server::PointsService;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 14] = [
    0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

tokio::task_local! {
    /// The tenant (incarnation) the call in this task was admitted to.
    static ADMITTED: Cell<Option<u64>>;
}

/// Notes that the current call's token admitted it to the tenant `key`
/// (the data plane calls it once the credential is checked). Outside an
/// observed call it does nothing.
pub(crate) fn admitted(key: u64) {
    let _ = ADMITTED.try_with(|slot| slot.set(Some(key)));
}

#[derive(Debug, Clone, Default)]
struct Histogram {
    buckets: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        if let Some(i) = BUCKETS.iter().position(|bound| seconds <= *bound) {
            self.buckets[i] += 1;
        }
        self.sum += seconds;
        self.count += 1;
    }

    /// Each bucket's own count: the encoder makes them cumulative.
    fn encode(&self, mut encoder: MetricEncoder) -> std::fmt::Result {
        let mut buckets: Vec<(f64, u64)> = BUCKETS.iter().copied().zip(self.buckets).collect();
        let bounded: u64 = self.buckets.iter().sum();
        buckets.push((f64::INFINITY, self.count - bounded));
        encoder.encode_histogram::<NoLabelSet>(self.sum, self.count, &buckets, None)
    }
}

/// Calls by (RPC, code) and latency by RPC, of the node or of one tenant.
#[derive(Debug, Clone, Default)]
struct Calls {
    counts: HashMap<(&'static str, Code), u64>,
    latency: HashMap<&'static str, Histogram>,
}

/// Labels of a series: the tenant's, if any, then the rest.
type Labels = Vec<(&'static str, String)>;

impl Calls {
    /// Its counts into `metric`, each series labelled `base`, rpc, code.
    fn encode_counts(&self, metric: &mut MetricEncoder, base: &Labels) -> std::fmt::Result {
        let mut counts: Vec<_> = self.counts.iter().collect();
        counts.sort_by_key(|((rpc, code), _)| (*rpc, *code as i32));
        for ((rpc, code), n) in counts {
            let mut labels = base.clone();
            labels.push(("rpc", rpc.to_string()));
            labels.push(("code", code_name(*code).to_string()));
            metric
                .encode_family(&labels)?
                .encode_counter::<NoLabelSet, _, u64>(n, None)?;
        }
        Ok(())
    }

    /// Its latency histograms into `metric`, labelled `base`, rpc.
    fn encode_latency(&self, metric: &mut MetricEncoder, base: &Labels) -> std::fmt::Result {
        let mut latency: Vec<_> = self.latency.iter().collect();
        latency.sort_by_key(|(rpc, _)| **rpc);
        for (rpc, histogram) in latency {
            let mut labels = base.clone();
            labels.push(("rpc", rpc.to_string()));
            histogram.encode(metric.encode_family(&labels)?)?;
        }
        Ok(())
    }

    fn record(&mut self, rpc: &'static str, code: Code, elapsed: Duration) {
        *self.counts.entry((rpc, code)).or_default() += 1;
        self.latency
            .entry(rpc)
            .or_default()
            .observe(elapsed.as_secs_f64());
    }
}

/// What the node has counted since it started.
#[derive(Default)]
pub struct Metrics {
    node: Mutex<Calls>,
    tenants: Mutex<HashMap<u64, Calls>>,
    /// Requests waiting for a worker, by tenant incarnation.
    queues: Mutex<Option<QueueDepth>>,
}

/// Requests of a tenant (by incarnation) waiting for a worker.
pub(crate) type QueueDepth = Arc<dyn Fn(u64) -> usize + Send + Sync>;

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    /// Where the tenants' queue depths are read at scrape time.
    pub(crate) fn watch_queues(&self, depth: QueueDepth) {
        *self.queues.lock() = Some(depth);
    }

    fn record(&self, rpc: &'static str, tenant: Option<u64>, code: Code, elapsed: Duration) {
        self.node.lock().record(rpc, code, elapsed);
        if let Some(key) = tenant {
            self.tenants
                .lock()
                .entry(key)
                .or_default()
                .record(rpc, code, elapsed);
        }
    }

    /// Runs one call, counting its outcome (CANCELLED when the caller went
    /// away first) and its time; a call admitted to a tenant also goes to
    /// that tenant's access log, with its token's id and `items(answer)`.
    async fn observe<T>(
        &self,
        rpc: &'static str,
        access_log: Option<(&Registry, u64)>,
        call: impl Future<Output = Result<Response<T>, Status>>,
        items: impl FnOnce(&T) -> usize,
    ) -> Result<Response<T>, Status> {
        struct Pending<'a> {
            metrics: &'a Metrics,
            rpc: &'static str,
            started: Instant,
            done: bool,
        }
        impl Drop for Pending<'_> {
            fn drop(&mut self) {
                if !self.done {
                    let elapsed = self.started.elapsed();
                    self.metrics
                        .record(self.rpc, None, Code::Cancelled, elapsed);
                }
            }
        }
        let mut pending = Pending {
            metrics: self,
            rpc,
            started: Instant::now(),
            done: false,
        };
        let (result, tenant) = ADMITTED
            .scope(Cell::new(None), async {
                let result = call.await;
                (result, ADMITTED.with(Cell::get))
            })
            .await;
        pending.done = true;
        let code = result.as_ref().map_or_else(Status::code, |_| Code::Ok);
        self.record(rpc, tenant, code, pending.started.elapsed());
        if let (Some(key), Some((registry, token_id))) = (tenant, access_log) {
            let touched = result.as_ref().map_or(0, |r| items(r.get_ref()));
            registry.note_access(key, token_id, rpc, code_name(code), touched as u64);
        }
        result
    }

    /// The Prometheus text exposition of everything, now.
    pub fn render(&self, registry: &Registry) -> String {
        let all = registry.list_tenants();
        // Dropped tenants' series go; those of a `telemetry none` tenant
        // are kept (a contract may change back) but never shown.
        {
            let live: std::collections::HashSet<u64> = all.iter().map(|t| t.incarnation).collect();
            self.tenants.lock().retain(|key, _| live.contains(key));
        }
        let shown = all
            .iter()
            .filter(|t| t.contract.telemetry != Telemetry::None);
        let queue = self.queues.lock().clone();
        let depth = |key: u64| queue.as_ref().map_or(0, |f| f(key));
        let calls = self.tenants.lock().clone();
        let (open_shelves, shelves) = registry.shelves();
        let snapshot = Snapshot {
            node: self.node.lock().clone(),
            tenants: shown
                .map(|t| TenantRow {
                    name: t.name.clone(),
                    calls: calls.get(&t.incarnation).cloned().unwrap_or_default(),
                    points: t.points as u64,
                    resident_bytes: t.resident_bytes,
                    loaded: t.state == TenantState::Active,
                    queued: depth(t.incarnation) as u64,
                })
                .collect(),
            tenant_count: all.len() as u64,
            loaded: all
                .iter()
                .filter(|t| t.state == TenantState::Active)
                .count() as u64,
            resident_bytes: all.iter().map(|t| t.resident_bytes).sum(),
            queued: all.iter().map(|t| depth(t.incarnation) as u64).sum(),
            open_shelves: open_shelves as u64,
            shelves: shelves as u64,
            process_resident_bytes: process_resident_bytes(),
        };
        let mut exposition = prometheus_client::registry::Registry::default();
        exposition.register_collector(Box::new(snapshot));
        let mut text = String::new();
        if let Err(e) = prometheus_client::encoding::prometheus_text::encode(&mut text, &exposition)
        {
            tracing::error!(error = %e, "encoding the metrics failed");
        }
        text
    }
}

/// One scrape's values, encoded by prometheus-client.
#[derive(Debug)]
struct Snapshot {
    node: Calls,
    tenants: Vec<TenantRow>,
    tenant_count: u64,
    loaded: u64,
    resident_bytes: u64,
    queued: u64,
    open_shelves: u64,
    shelves: u64,
    process_resident_bytes: Option<u64>,
}

#[derive(Debug)]
struct TenantRow {
    name: String,
    calls: Calls,
    points: u64,
    resident_bytes: u64,
    loaded: bool,
    queued: u64,
}

/// The label set of a node-wide gauge.
const NO_LABELS: [(&str, &str); 0] = [];

/// A gRPC code as the protocol spells it: "OK", "INVALID_ARGUMENT".
pub(crate) fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// Encodes a gauge family: one value per label set.
fn gauges<L: prometheus_client::encoding::EncodeLabelSet>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    values: impl IntoIterator<Item = (L, u64)>,
) -> std::fmt::Result {
    let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, value) in values {
        metric
            .encode_family(&labels)?
            .encode_gauge(&(value as i64))?;
    }
    Ok(())
}

impl prometheus_client::collector::Collector for Snapshot {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        // Calls: the node's, then each tenant's.
        let mut metric = encoder.encode_descriptor(
            "bulkhead_requests",
            "Data-plane calls by RPC and gRPC code, every tenant and unauthenticated ones together.",
            None,
            MetricType::Counter,
        )?;
        self.node.encode_counts(&mut metric, &Vec::new())?;
        let mut metric = encoder.encode_descriptor(
            "bulkhead_request_duration_seconds",
            "Data-plane call latency by RPC, every tenant together.",
            None,
            MetricType::Histogram,
        )?;
        self.node.encode_latency(&mut metric, &Vec::new())?;
        let mut metric = encoder.encode_descriptor(
            "bulkhead_tenant_requests",
            "A tenant's data-plane calls by RPC and gRPC code (RESOURCE_EXHAUSTED: a quota or queue limit refused it).",
            None,
            MetricType::Counter,
        )?;
        for tenant in &self.tenants {
            let labels = vec![("tenant", tenant.name.clone())];
            tenant.calls.encode_counts(&mut metric, &labels)?;
        }
        let mut metric = encoder.encode_descriptor(
            "bulkhead_tenant_request_duration_seconds",
            "A tenant's data-plane call latency by RPC.",
            None,
            MetricType::Histogram,
        )?;
        for tenant in &self.tenants {
            let labels = vec![("tenant", tenant.name.clone())];
            tenant.calls.encode_latency(&mut metric, &labels)?;
        }
        let by_tenant = |value: fn(&TenantRow) -> u64| {
            self.tenants
                .iter()
                .map(move |t| ([("tenant", t.name.clone())], value(t)))
        };
        gauges(
            &mut encoder,
            "bulkhead_tenant_points",
            "A tenant's live points (as of its last load when cold).",
            by_tenant(|t| t.points),
        )?;
        gauges(
            &mut encoder,
            "bulkhead_tenant_resident_bytes",
            "Bytes a loaded tenant holds in memory (0 when cold).",
            by_tenant(|t| t.resident_bytes),
        )?;
        gauges(
            &mut encoder,
            "bulkhead_tenant_loaded",
            "1 when the tenant is in memory, 0 when cold.",
            by_tenant(|t| u64::from(t.loaded)),
        )?;
        gauges(
            &mut encoder,
            "bulkhead_tenant_queued_requests",
            "A tenant's requests waiting for a worker.",
            by_tenant(|t| t.queued),
        )?;
        let node: [(&str, &str, u64); 6] = [
            (
                "bulkhead_tenants",
                "Tenants on this node.",
                self.tenant_count,
            ),
            ("bulkhead_tenants_loaded", "Tenants in memory.", self.loaded),
            (
                "bulkhead_resident_bytes",
                "Bytes the loaded tenants hold (what the memory budget counts).",
                self.resident_bytes,
            ),
            (
                "bulkhead_queued_requests",
                "Requests waiting for a worker, every tenant together.",
                self.queued,
            ),
            (
                "bulkhead_shelves_open",
                "Storage shelves (RocksDB instances) open.",
                self.open_shelves,
            ),
            ("bulkhead_shelves", "Storage shelves in all.", self.shelves),
        ];
        for (name, help, value) in node {
            gauges(&mut encoder, name, help, [(NO_LABELS, value)])?;
        }
        if let Some(bytes) = self.process_resident_bytes {
            gauges(
                &mut encoder,
                "bulkhead_process_resident_memory_bytes",
                "The server process's resident memory.",
                [(NO_LABELS, bytes)],
            )?;
        }
        Ok(())
    }
}

/// Resident memory of this process (Linux: /proc/self/statm).
fn process_resident_bytes() -> Option<u64> {
    let statm = fs_err::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf reads a constant of the system; it touches no memory.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * u64::try_from(page).ok()?)
}

/// The data plane `P`, each call counted and timed in `metrics` and, once
/// admitted to a tenant, written to that tenant's access log.
#[derive(Debug)]
pub struct Observed<P> {
    inner: P,
    metrics: Arc<Metrics>,
    registry: Arc<Registry>,
}

impl<P> Observed<P> {
    pub fn new(inner: P, metrics: Arc<Metrics>, registry: Arc<Registry>) -> Self {
        Observed {
            inner,
            metrics,
            registry,
        }
    }
}

/// The id of the tenant token a request presents (`bht_<id>_<secret>`,
/// 16 hex digits) as a number: not secret, and only used once the token
/// has admitted the call (an admitted id is the stored, lowercase one).
fn token_id<T>(request: &Request<T>) -> Option<u64> {
    let token = crate::api::bearer_token(request)?;
    let (id, _) = token.strip_prefix("bht_")?.split_once('_')?;
    if id.len() != 16 {
        return None;
    }
    u64::from_str_radix(id, 16).ok()
}

macro_rules! observed {
    ($($method:ident $rpc:literal $request:ident $response:ident |$r:ident| $items:expr;)*) => {
        #[tonic::async_trait]
        impl<P: PointsService> PointsService for Observed<P> {
            $(
                async fn $method(
                    &self,
                    request: Request<proto::$request>,
                ) -> Result<Response<proto::$response>, Status> {
                    let log = token_id(&request).map(|id| (&*self.registry, id));
                    let call = self.inner.$method(request);
                    self.metrics
                        .observe($rpc, log, call, |$r: &proto::$response| $items)
                        .await
                }
            )*
        }
    };
}

observed! {
    upsert "Upsert" UpsertRequest UpsertResponse |r| r.upserted as usize;
    get "Get" GetRequest GetResponse |r| r.points.len();
    delete "Delete" DeleteRequest DeleteResponse |r| r.deleted as usize;
    count "Count" CountRequest CountResponse |r| r.count as usize;
    scroll "Scroll" ScrollRequest ScrollResponse |r| r.points.len();
    search "Search" SearchRequest SearchResponse |r| r.points.len();
    embed "Embed" PointsServiceEmbedRequest PointsServiceEmbedResponse |r| r.vectors.len();
    lineage "Lineage" LineageRequest LineageResponse |r| r.models.len();
    access_log "AccessLog" AccessLogRequest AccessLogResponse |r| r.entries.len();
}

/// Serves `GET /metrics` (HTTP/1.1) on `listener` until the task is
/// aborted; any other path is 404.
pub(crate) fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    registry: Arc<Registry>,
) -> tokio::task::JoinHandle<()> {
    use http_body_util::Full;
    use hyper::service::service_fn;
    tokio::spawn(async move {
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a metrics connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let (metrics, registry) = (Arc::clone(&metrics), Arc::clone(&registry));
            tokio::spawn(async move {
                let service = service_fn(move |request: http::Request<hyper::body::Incoming>| {
                    let (metrics, registry) = (Arc::clone(&metrics), Arc::clone(&registry));
                    async move {
                        if request.method() == http::Method::GET
                            && request.uri().path() == "/metrics"
                        {
                            let text =
                                tokio::task::spawn_blocking(move || metrics.render(&registry))
                                    .await
                                    .unwrap_or_default();
                            http::Response::builder()
                                .header(
                                    http::header::CONTENT_TYPE,
                                    prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
                                )
                                .body(Full::new(bytes::Bytes::from(text)))
                        } else {
                            http::Response::builder()
                                .status(http::StatusCode::NOT_FOUND)
                                .body(Full::new(bytes::Bytes::from_static(
                                    b"metrics are at GET /metrics\n",
                                )))
                        }
                    }
                });
                let io = hyper_util::rt::TokioIo::new(stream);
                if let Err(e) = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, service)
                    .await
                {
                    tracing::debug!(error = %e, "metrics connection");
                }
            });
        }
    })
}
