//! The data plane: `PointsService`. Every call names its tenant; the
//! caller's token is checked against it in memory (`Registry::admit`), and
//! then all of the tenant's work (its load from disk when it is cold, reads,
//! writes, payload conversion) runs through the one [`Admission`] path, on
//! a bounded number of workers shared fairly among tenants. Waiting on the
//! encoder (a text query, an upsert of texts) holds no worker: it runs
//! before the work is admitted, bounded by the encoder's own queue.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use tonic::{Request, Response, Status};

use super::admission::{Admission, AdmissionLimits};
use super::auth::bearer;
use super::embedders::Embedders;
use super::status::{Plane, to_status};
use super::{blocking, convert};
use crate::engine::{
    Access, DEFAULT_SCROLL_LIMIT, Registry, ScrollRequest, SearchRequest, Tenant, Work,
};
use crate::proto;
use crate::proto::points_service_server::PointsService;

#[derive(Debug, Clone)]
pub struct PointsApi {
    registry: Arc<Registry>,
    embedders: Arc<Embedders>,
    admission: Arc<Admission>,
    /// Cold loads' own admission, apart from the workers: a storm of
    /// loads (each a read of a tenant's points and graph from disk) never
    /// takes the workers that serve the tenants in memory.
    loading: Arc<Admission>,
    /// One lock per tenant being loaded: concurrent first requests of a
    /// cold tenant wait here, asynchronously, while one of them loads it.
    loads: Arc<Loads>,
}

impl PointsApi {
    /// The data plane with the default limits: one worker per CPU.
    pub fn new(registry: Arc<Registry>, embedders: Arc<Embedders>) -> Self {
        Self::with_limits(registry, embedders, AdmissionLimits::default())
    }

    /// The data plane running at most `limits.workers` requests at once;
    /// more queue, and the least served tenant's request runs next.
    pub fn with_limits(
        registry: Arc<Registry>,
        embedders: Arc<Embedders>,
        limits: AdmissionLimits,
    ) -> Self {
        PointsApi {
            registry,
            embedders,
            admission: Arc::new(Admission::new(limits)),
            loading: Arc::new(Admission::new(limits.loading())),
            loads: Arc::default(),
        }
    }

    /// Checks the caller's token against the tenant it names, in memory.
    fn admit(&self, caller: &Caller) -> Result<Access, Status> {
        let access = self
            .registry
            .authorize_only(&caller.token, &caller.tenant)
            .map_err(|e| to_status(e, Plane::Data))?;
        // The call is the tenant's from here on, a rate refusal included.
        crate::metrics::admitted(access.key());
        self.registry
            .charge_request(&access)
            .map_err(|e| to_status(e, Plane::Data))?;
        Ok(access)
    }

    /// Lets `metrics` read the tenants' queue depths at scrape time.
    pub fn report_queues_to(&self, metrics: &crate::metrics::Metrics) {
        let admission = Arc::clone(&self.admission);
        metrics.watch_queues(Arc::new(move |key| admission.waiting_of(key)));
    }

    /// Runs `op` on the caller's tenant through admission.
    async fn on_tenant<T: Send + 'static>(
        &self,
        caller: Caller,
        op: impl FnOnce(&Registry, Arc<Tenant>, &Work) -> crate::engine::Result<T> + Send + 'static,
    ) -> Result<T, Status> {
        let access = self.admit(&caller)?;
        self.on_admitted(access, op).await
    }

    /// Runs `op` on an admitted tenant through admission, once it is in
    /// memory.
    async fn on_admitted<T: Send + 'static>(
        &self,
        access: Access,
        op: impl FnOnce(&Registry, Arc<Tenant>, &Work) -> crate::engine::Result<T> + Send + 'static,
    ) -> Result<T, Status> {
        self.load(&access).await?;
        let registry = Arc::clone(&self.registry);
        self.admission
            .run(access.key(), move |work| {
                let tenant = registry.handle(&access)?;
                op(&registry, tenant, work)
            })
            .await
    }

    /// Loads a cold tenant through the loaders' admission (fair across
    /// tenants, apart from the workers); concurrent first requests wait
    /// for that load without holding a thread. The load's turn moves into
    /// its work, so a first request that is cancelled lets the next one in
    /// only when the load it started has ended.
    async fn load(&self, access: &Access) -> Result<(), Status> {
        if access.is_loaded() {
            return Ok(());
        }
        let key = access.key();
        let pending = PendingLoad::of(&self.loads, key);
        let turn = Arc::clone(&pending.lock).lock_owned().await;
        if access.is_loaded() {
            return Ok(());
        }
        let (registry, access) = (Arc::clone(&self.registry), access.clone());
        self.loading
            .run(key, move |_| {
                let _turn = turn;
                registry.handle(&access).map(drop)
            })
            .await
    }

    /// Runs blocking work of an admitted tenant that holds no worker (it
    /// waits on the encoder), once the tenant is in memory.
    async fn beside_admission<T: Send + 'static>(
        &self,
        access: &Access,
        op: impl FnOnce(&Registry, Arc<Tenant>) -> crate::engine::Result<T> + Send + 'static,
    ) -> Result<T, Status> {
        self.load(access).await?;
        let (registry, access) = (Arc::clone(&self.registry), access.clone());
        blocking(
            move || {
                let tenant = registry.handle(&access)?;
                op(&registry, tenant)
            },
            Plane::Data,
        )
        .await
    }
}

/// Loads of cold tenants in progress: one lock per tenant.
type Loads = Mutex<HashMap<u64, Arc<tokio::sync::Mutex<()>>>>;

/// A request's interest in a tenant's load; the tenant's lock leaves the
/// map with the last request that waited for it. (A load whose request was
/// cancelled leaves its lock until the tenant's next cold load: at most one
/// per tenant.)
struct PendingLoad<'a> {
    loads: &'a Loads,
    key: u64,
    lock: Arc<tokio::sync::Mutex<()>>,
}

impl<'a> PendingLoad<'a> {
    fn of(loads: &'a Loads, key: u64) -> Self {
        let lock = Arc::clone(loads.lock().entry(key).or_default());
        PendingLoad { loads, key, lock }
    }
}

impl Drop for PendingLoad<'_> {
    fn drop(&mut self) {
        let mut loads = self.loads.lock();
        // Only the map's handle and this one: nobody waits or loads.
        if Arc::strong_count(&self.lock) <= 2 {
            loads.remove(&self.key);
        }
    }
}

/// The credential a request presents and the tenant it names, not yet
/// checked against each other.
struct Caller {
    token: String,
    tenant: String,
}

impl Caller {
    fn of<T>(request: &Request<T>, tenant: &str) -> Result<Caller, Status> {
        if tenant.is_empty() {
            return Err(Status::invalid_argument("tenant is required"));
        }
        Ok(Caller {
            token: bearer(request)?.to_string(),
            tenant: tenant.to_string(),
        })
    }
}

// Conversions of large messages (a filter of 4,096 values, a batch of
// 10,000 points) run on the admitted worker, not on an async worker: their
// refusals (always INVALID_ARGUMENT) travel as the engine's error.

/// The engine's filter of a request, if it has one.
fn filter(f: Option<proto::Filter>) -> crate::engine::Result<Option<crate::engine::Filter>> {
    f.map(convert::filter).transpose().map_err(invalid)
}

/// The engine's points of an upsert request.
fn points_of(points: Vec<proto::Point>) -> crate::engine::Result<Vec<crate::engine::PointInput>> {
    points
        .into_iter()
        .enumerate()
        .map(|(i, p)| convert::point_input(p, i))
        .collect::<Result<Vec<_>, _>>()
        .map_err(invalid)
}

fn invalid(status: Status) -> crate::engine::EngineError {
    crate::engine::EngineError::InvalidArgument(status.message().to_string())
}

#[tonic::async_trait]
impl PointsService for PointsApi {
    async fn upsert(
        &self,
        request: Request<proto::UpsertRequest>,
    ) -> Result<Response<proto::UpsertResponse>, Status> {
        let caller = Caller::of(&request, &request.get_ref().tenant)?;
        let access = self.admit(&caller)?;
        let points = request.into_inner().points;
        let has_texts = points
            .iter()
            .any(|p| p.vector.is_empty() && !p.text.is_empty());
        let points = if has_texts {
            // Converted and embedded beside admission: the wait on the
            // encoder holds no worker.
            let embedders = Arc::clone(&self.embedders);
            let points = self
                .beside_admission(&access, move |registry, tenant| {
                    let mut points = points_of(points)?;
                    registry.embed_points(&tenant, &mut points, &*embedders)?;
                    Ok(points)
                })
                .await?;
            Converted::Ready(points)
        } else {
            Converted::Wire(points)
        };
        let upserted = self
            .on_admitted(access, move |registry, tenant, work| {
                let points = match points {
                    Converted::Ready(points) => points,
                    Converted::Wire(points) => points_of(points)?,
                };
                work.add(points.len() as u64);
                registry.write(&tenant, |t| t.upsert(&points))?;
                Ok(points.len())
            })
            .await?;
        Ok(Response::new(proto::UpsertResponse {
            upserted: upserted as u64,
        }))
    }

    async fn get(
        &self,
        request: Request<proto::GetRequest>,
    ) -> Result<Response<proto::GetResponse>, Status> {
        let caller = Caller::of(&request, &request.get_ref().tenant)?;
        let r = request.into_inner();
        let points = self
            .on_tenant(caller, move |_, tenant, work| {
                work.add(r.ids.len() as u64);
                let points = tenant.get(&r.ids, r.with_payload, r.with_vector)?;
                Ok(points.into_iter().map(convert::point_out).collect())
            })
            .await?;
        Ok(Response::new(proto::GetResponse { points }))
    }

    async fn delete(
        &self,
        request: Request<proto::DeleteRequest>,
    ) -> Result<Response<proto::DeleteResponse>, Status> {
        use proto::delete_request::Selector;
        let caller = Caller::of(&request, &request.get_ref().tenant)?;
        let deleted = match request.into_inner().selector {
            Some(Selector::Ids(ids)) => {
                self.on_tenant(caller, move |registry, tenant, work| {
                    work.add(ids.ids.len() as u64);
                    registry.write(&tenant, |t| t.delete(&ids.ids))
                })
                .await?
            }
            Some(Selector::Filter(f)) => {
                self.on_tenant(caller, move |registry, tenant, work| {
                    let f = convert::filter(f).map_err(invalid)?;
                    registry.write(&tenant, |t| t.delete_by_filter_with(&f, work))
                })
                .await?
            }
            None => return Err(Status::invalid_argument("delete needs ids or a filter")),
        };
        Ok(Response::new(proto::DeleteResponse {
            deleted: deleted as u64,
        }))
    }

    async fn count(
        &self,
        request: Request<proto::CountRequest>,
    ) -> Result<Response<proto::CountResponse>, Status> {
        let caller = Caller::of(&request, &request.get_ref().tenant)?;
        let f = request.into_inner().filter;
        let count = self
            .on_tenant(caller, move |_, tenant, work| {
                tenant.count_with(filter(f)?.as_ref(), work)
            })
            .await?;
        Ok(Response::new(proto::CountResponse {
            count: count as u64,
        }))
    }

    async fn scroll(
        &self,
        request: Request<proto::ScrollRequest>,
    ) -> Result<Response<proto::ScrollResponse>, Status> {
        let caller = Caller::of(&request, &request.get_ref().tenant)?;
        let r = request.into_inner();
        let limit = match r.limit {
            0 => DEFAULT_SCROLL_LIMIT,
            n => n as usize,
        };
        let page = self
            .on_tenant(caller, move |_, tenant, work| {
                let f = filter(r.filter)?;
                let cursor = (!r.cursor.is_empty()).then_some(r.cursor.as_str());
                let request = ScrollRequest {
                    cursor,
                    limit,
                    filter: f.as_ref(),
                    with_payload: r.with_payload,
                    with_vector: r.with_vector,
                };
                let page = tenant.scroll_with(&request, work)?;
                Ok(proto::ScrollResponse {
                    points: page.points.into_iter().map(convert::point_out).collect(),
                    next_cursor: page.next_cursor.unwrap_or_default(),
                })
            })
            .await?;
        Ok(Response::new(page))
    }

    async fn search(
        &self,
        request: Request<proto::SearchRequest>,
    ) -> Result<Response<proto::SearchResponse>, Status> {
        let caller = Caller::of(&request, &request.get_ref().tenant)?;
        let r = request.into_inner();
        if !r.vector.is_empty() && !r.text.is_empty() {
            return Err(Status::invalid_argument(
                "send either vector or text, not both",
            ));
        }
        let access = self.admit(&caller)?;
        // Counted against the tenant's concurrency quota from here until
        // its work has stopped: the permit moves into the work.
        let permit = access
            .begin_search()
            .map_err(|e| to_status(e, Plane::Data))?;
        let vector = if r.text.is_empty() {
            r.vector
        } else {
            let (embedders, text) = (Arc::clone(&self.embedders), r.text);
            self.beside_admission(&access, move |registry, tenant| {
                registry.embed_query(&tenant, text, &*embedders)
            })
            .await?
        };
        let (k, ef) = (r.k as usize, r.ef as usize);
        let (with_payload, with_vector, wire_filter) = (r.with_payload, r.with_vector, r.filter);
        let points = self
            .on_admitted(access, move |_, tenant, work| {
                let _permit = permit;
                let search = SearchRequest {
                    vector,
                    k: SearchRequest::k_or_default(k),
                    ef: (ef != 0).then_some(ef),
                    filter: filter(wire_filter)?,
                    with_payload,
                    with_vector,
                };
                let hits = tenant.search_with(&search, work)?;
                Ok(hits.into_iter().map(convert::scored_out).collect())
            })
            .await?;
        Ok(Response::new(proto::SearchResponse { points }))
    }

    async fn embed(
        &self,
        request: Request<proto::PointsServiceEmbedRequest>,
    ) -> Result<Response<proto::PointsServiceEmbedResponse>, Status> {
        let caller = Caller::of(&request, &request.get_ref().tenant)?;
        let access = self.admit(&caller)?;
        let texts = request.into_inner().texts;
        let embedders = Arc::clone(&self.embedders);
        let answer = self
            .beside_admission(&access, move |registry, tenant| {
                registry.embed_texts(&tenant, texts, &*embedders)
            })
            .await?;
        Ok(Response::new(proto::PointsServiceEmbedResponse {
            vectors: answer
                .vectors
                .into_iter()
                .map(|values| proto::TextVector { values })
                .collect(),
            model: answer.model,
            model_digest: answer.model_digest,
        }))
    }

    async fn lineage(
        &self,
        request: Request<proto::LineageRequest>,
    ) -> Result<Response<proto::LineageResponse>, Status> {
        let caller = Caller::of(&request, &request.get_ref().tenant)?;
        let models = self
            .on_tenant(caller, |registry, tenant, _| {
                Ok(registry.lineage_of_tenant(&tenant))
            })
            .await?;
        Ok(Response::new(proto::LineageResponse {
            models: models
                .into_iter()
                .map(|m| proto::LineageModel {
                    name: m.name,
                    digest: m.digest,
                    registered_unix_ms: m.registered_unix_ms,
                })
                .collect(),
        }))
    }

    async fn access_log(
        &self,
        request: Request<proto::AccessLogRequest>,
    ) -> Result<Response<proto::AccessLogResponse>, Status> {
        let caller = Caller::of(&request, &request.get_ref().tenant)?;
        let r = request.into_inner();
        let page = convert::AccessPageRequest::of(&r.cursor, r.since_unix_ms, r.limit)?;
        let access = self.admit(&caller)?;
        let key = access.clone();
        let page = self
            .on_admitted(access, move |registry, _, _| {
                registry.access_log(&key, page.after, page.since_unix_ms, page.limit)
            })
            .await?;
        let (entries, next_cursor) = convert::access_page(page);
        Ok(Response::new(proto::AccessLogResponse {
            entries,
            next_cursor,
        }))
    }
}

/// An upsert's points: converted (and embedded) already, or still as they
/// came, to be converted on the worker.
enum Converted {
    Ready(Vec<crate::engine::PointInput>),
    Wire(Vec<proto::Point>),
}
