//! The data plane: `PointsService`. Every call names its tenant, and the
//! tenant handle is obtained only through `Registry::authorize`, on the
//! blocking pool with the operation (`PointsApi::on_tenant`); a search of a
//! loaded tenant through `Registry::authorize_loaded`, in memory, so that
//! its one trip to a blocking thread is the search gate's.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::auth::bearer;
use super::embedders::Embedders;
use super::search_gate::SearchGate;
use super::status::{Plane, to_status};
use super::{blocking, convert};
use crate::engine::{DEFAULT_SCROLL_LIMIT, Registry, SearchRequest, Tenant};
use crate::proto;
use crate::proto::points_service_server::PointsService;

#[derive(Debug, Clone)]
pub struct PointsApi {
    registry: Arc<Registry>,
    embedders: Arc<Embedders>,
    searches: Arc<SearchGate>,
}

impl PointsApi {
    /// The data plane, running as many searches at once as there are CPUs.
    pub fn new(registry: Arc<Registry>, embedders: Arc<Embedders>) -> Self {
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self::with_search_slots(registry, embedders, cpus)
    }

    /// The data plane, running at most `slots` searches at once; more
    /// queue, and the least served tenant's search runs next.
    pub fn with_search_slots(
        registry: Arc<Registry>,
        embedders: Arc<Embedders>,
        slots: usize,
    ) -> Self {
        PointsApi {
            registry,
            embedders,
            searches: Arc::new(SearchGate::new(slots)),
        }
    }

    /// Runs `op` on the caller's tenant on the blocking pool: the credential
    /// is checked there, with the operation, because a tenant's first use
    /// loads it from disk.
    async fn on_tenant<T: Send + 'static>(
        &self,
        caller: Caller,
        op: impl FnOnce(&Registry, Arc<Tenant>) -> crate::engine::Result<T> + Send + 'static,
    ) -> Result<T, Status> {
        let registry = Arc::clone(&self.registry);
        blocking(
            move || {
                let tenant = registry.authorize(&caller.token, &caller.tenant)?;
                op(&registry, tenant)
            },
            Plane::Data,
        )
        .await
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

fn filter(f: Option<proto::Filter>) -> Result<Option<crate::engine::Filter>, Status> {
    f.map(convert::filter).transpose()
}

#[tonic::async_trait]
impl PointsService for PointsApi {
    async fn upsert(
        &self,
        request: Request<proto::UpsertRequest>,
    ) -> Result<Response<proto::UpsertResponse>, Status> {
        let caller = Caller::of(&request, &request.get_ref().tenant)?;
        let points = request
            .into_inner()
            .points
            .into_iter()
            .enumerate()
            .map(|(i, p)| convert::point_input(p, i))
            .collect::<Result<Vec<_>, _>>()?;
        // Texts are embedded, checked and written in the same engine call.
        let embedders = Arc::clone(&self.embedders);
        let upserted = self
            .on_tenant(caller, move |registry, tenant| {
                registry.upsert(&tenant, points, &*embedders)
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
            .on_tenant(caller, move |_, tenant| {
                tenant.get(&r.ids, r.with_payload, r.with_vector)
            })
            .await?;
        Ok(Response::new(proto::GetResponse {
            points: points.into_iter().map(convert::point_out).collect(),
        }))
    }

    async fn delete(
        &self,
        request: Request<proto::DeleteRequest>,
    ) -> Result<Response<proto::DeleteResponse>, Status> {
        use proto::delete_request::Selector;
        let caller = Caller::of(&request, &request.get_ref().tenant)?;
        let deleted = match request.into_inner().selector {
            Some(Selector::Ids(ids)) => {
                self.on_tenant(caller, move |registry, tenant| {
                    registry.write(&tenant, |t| t.delete(&ids.ids))
                })
                .await?
            }
            Some(Selector::Filter(f)) => {
                let f = convert::filter(f)?;
                self.on_tenant(caller, move |registry, tenant| {
                    registry.write(&tenant, |t| t.delete_by_filter(&f))
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
        let f = filter(request.into_inner().filter)?;
        let count = self
            .on_tenant(caller, move |_, tenant| tenant.count(f.as_ref()))
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
        let f = filter(r.filter)?;
        let limit = match r.limit {
            0 => DEFAULT_SCROLL_LIMIT,
            n => n as usize,
        };
        let cursor = (!r.cursor.is_empty()).then_some(r.cursor);
        let page = self
            .on_tenant(caller, move |_, tenant| {
                tenant.scroll(
                    cursor.as_deref(),
                    limit,
                    f.as_ref(),
                    r.with_payload,
                    r.with_vector,
                )
            })
            .await?;
        Ok(Response::new(proto::ScrollResponse {
            points: page.points.into_iter().map(convert::point_out).collect(),
            next_cursor: page.next_cursor.unwrap_or_default(),
        }))
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
        let filter = filter(r.filter)?;
        // A loaded tenant is authorized here, in memory: a search pays one
        // trip to a blocking thread, the gate's. A cold one loads on the
        // blocking pool.
        let tenant = match self
            .registry
            .authorize_loaded(&caller.token, &caller.tenant)
        {
            Ok(Some(tenant)) => tenant,
            Ok(None) => self.on_tenant(caller, |_, tenant| Ok(tenant)).await?,
            Err(e) => return Err(to_status(e, Plane::Data)),
        };
        // Counted against the tenant's concurrency quota while queued too.
        let _permit = tenant
            .begin_search()
            .map_err(|e| to_status(e, Plane::Data))?;
        let vector = if r.text.is_empty() {
            r.vector
        } else {
            let (registry, embedders) = (Arc::clone(&self.registry), Arc::clone(&self.embedders));
            let (tenant, text) = (Arc::clone(&tenant), r.text);
            blocking(
                move || registry.embed_query(&tenant, text, &*embedders),
                Plane::Data,
            )
            .await?
        };
        let search = SearchRequest {
            vector,
            k: SearchRequest::k_or_default(r.k as usize),
            ef: (r.ef != 0).then_some(r.ef as usize),
            filter,
            with_payload: r.with_payload,
            with_vector: r.with_vector,
        };
        let cost = search.cost();
        let incarnation = tenant.incarnation();
        let hits = self
            .searches
            .search(incarnation, cost, move || tenant.search(&search))
            .await?;
        Ok(Response::new(proto::SearchResponse {
            points: hits.into_iter().map(convert::scored_out).collect(),
        }))
    }

    async fn embed(
        &self,
        request: Request<proto::PointsServiceEmbedRequest>,
    ) -> Result<Response<proto::PointsServiceEmbedResponse>, Status> {
        let caller = Caller::of(&request, &request.get_ref().tenant)?;
        let texts = request.into_inner().texts;
        let embedders = Arc::clone(&self.embedders);
        let answer = self
            .on_tenant(caller, move |registry, tenant| {
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
            .on_tenant(caller, |registry, tenant| {
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
}
