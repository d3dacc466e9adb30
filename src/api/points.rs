//! The data plane: `PointsService`. Every call names its tenant, and the
//! tenant handle is obtained only through `Registry::authorize`.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::auth::bearer;
use super::embedders::Embedders;
use super::search_gate::SearchGate;
use super::status::{Plane, to_status};
use super::{blocking, convert};
use crate::engine::{MAX_BATCH_POINTS, PointInput, Registry, SearchRequest, Tenant};
use crate::proto;
use crate::proto::points_service_server::PointsService;

const DEFAULT_LIMIT: u32 = 100;
const DEFAULT_K: u32 = 10;

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

    /// The caller's tenant, if its token is bound to the tenant it names.
    fn tenant<T>(&self, request: &Request<T>, tenant: &str) -> Result<Arc<Tenant>, Status> {
        if tenant.is_empty() {
            return Err(Status::invalid_argument("tenant is required"));
        }
        let token = bearer(request)?;
        self.registry
            .authorize(token, tenant)
            .map_err(|e| to_status(e, Plane::Data))
    }
}

impl PointsApi {
    /// Vectors for `texts` from the embedder of the tenant's trust class,
    /// checked against the tenant's dimension.
    async fn embed(&self, tenant: &Tenant, texts: Vec<String>) -> Result<Vec<Vec<f32>>, Status> {
        let expected = texts.len();
        let mut vectors = Vec::with_capacity(expected);
        let mut texts = texts.into_iter().peekable();
        while texts.peek().is_some() {
            let chunk: Vec<String> = texts.by_ref().take(MAX_EMBED_TEXTS).collect();
            let answer = self
                .embedders
                .embed(
                    tenant.spec().trust_class.as_str(),
                    tenant.incarnation(),
                    chunk,
                )
                .await?;
            // The model that answered must be one this tenant's contract
            // and its lineage allow (the texts' vectors are discarded
            // otherwise).
            self.registry
                .check_embedding_model(tenant, &answer.model_digest)
                .map_err(|e| to_status(e, Plane::Data))?;
            let dimension = tenant.spec().dimension as usize;
            if let Some(e) = answer
                .embeddings
                .iter()
                .find(|e| e.values.len() != dimension)
            {
                return Err(Status::failed_precondition(format!(
                    "the embedder's model {} makes vectors of dimension {}, but this tenant's dimension is {dimension}; store texts in a tenant of dimension {}",
                    answer.model,
                    e.values.len(),
                    e.values.len()
                )));
            }
            vectors.extend(answer.embeddings.into_iter().map(|e| e.values));
        }
        if vectors.len() != expected {
            tracing::error!(
                expected,
                got = vectors.len(),
                "the embedder answered the wrong number of vectors"
            );
            return Err(Status::internal("the embedder failed"));
        }
        Ok(vectors)
    }

    /// Fills in the vector of every point that has text and no vector.
    async fn embed_texts(&self, tenant: &Tenant, points: &mut [PointInput]) -> Result<(), Status> {
        if points.len() > MAX_BATCH_POINTS {
            return Err(Status::invalid_argument(format!(
                "{} points in one upsert, the limit is {MAX_BATCH_POINTS}",
                points.len()
            )));
        }
        let mut positions = Vec::new();
        let mut texts = Vec::new();
        for (i, p) in points.iter().enumerate() {
            if let (true, Some(text)) = (p.vector.is_empty(), &p.text) {
                check_embeddable(text, &format!("point {i}: text"))?;
                positions.push(i);
                texts.push(text.clone());
            }
        }
        if texts.is_empty() {
            return Ok(());
        }
        let vectors = self.embed(tenant, texts).await?;
        for (i, vector) in positions.into_iter().zip(vectors) {
            points[i].vector = vector;
        }
        Ok(())
    }
}

/// Most texts in one embedder request, and bytes in one text to embed (the
/// sidecar's limits; longer texts are stored only with a vector).
const MAX_EMBED_TEXTS: usize = 1_024;
const MAX_EMBED_TEXT_BYTES: usize = 32 * 1024;

fn check_embeddable(text: &str, what: &str) -> Result<(), Status> {
    if text.len() > MAX_EMBED_TEXT_BYTES {
        return Err(Status::invalid_argument(format!(
            "{what} is {} bytes, more than the {MAX_EMBED_TEXT_BYTES} the embedder takes; send a vector with longer texts",
            text.len()
        )));
    }
    Ok(())
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
        let tenant = self.tenant(&request, &request.get_ref().tenant)?;
        let mut points = request
            .into_inner()
            .points
            .into_iter()
            .enumerate()
            .map(|(i, p)| convert::point_input(p, i))
            .collect::<Result<Vec<_>, _>>()?;
        self.embed_texts(&tenant, &mut points).await?;
        let upserted = points.len() as u64;
        let registry = Arc::clone(&self.registry);
        blocking(
            move || registry.run(&tenant, |t| t.upsert(&points)),
            Plane::Data,
        )
        .await?;
        Ok(Response::new(proto::UpsertResponse { upserted }))
    }

    async fn get(
        &self,
        request: Request<proto::GetRequest>,
    ) -> Result<Response<proto::GetResponse>, Status> {
        let tenant = self.tenant(&request, &request.get_ref().tenant)?;
        let r = request.into_inner();
        let points = blocking(
            move || tenant.get(&r.ids, r.with_payload, r.with_vector),
            Plane::Data,
        )
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
        let tenant = self.tenant(&request, &request.get_ref().tenant)?;
        let registry = Arc::clone(&self.registry);
        let deleted = match request.into_inner().selector {
            Some(Selector::Ids(ids)) => {
                blocking(
                    move || registry.run(&tenant, |t| t.delete(&ids.ids)),
                    Plane::Data,
                )
                .await?
            }
            Some(Selector::Filter(f)) => {
                let f = convert::filter(f)?;
                blocking(
                    move || registry.run(&tenant, |t| t.delete_by_filter(&f)),
                    Plane::Data,
                )
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
        let tenant = self.tenant(&request, &request.get_ref().tenant)?;
        let f = filter(request.into_inner().filter)?;
        let count = blocking(move || tenant.count(f.as_ref()), Plane::Data).await?;
        Ok(Response::new(proto::CountResponse {
            count: count as u64,
        }))
    }

    async fn scroll(
        &self,
        request: Request<proto::ScrollRequest>,
    ) -> Result<Response<proto::ScrollResponse>, Status> {
        let tenant = self.tenant(&request, &request.get_ref().tenant)?;
        let r = request.into_inner();
        let f = filter(r.filter)?;
        let limit = if r.limit == 0 { DEFAULT_LIMIT } else { r.limit } as usize;
        let cursor = (!r.cursor.is_empty()).then_some(r.cursor);
        let page = blocking(
            move || {
                tenant.scroll(
                    cursor.as_deref(),
                    limit,
                    f.as_ref(),
                    r.with_payload,
                    r.with_vector,
                )
            },
            Plane::Data,
        )
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
        let tenant = self.tenant(&request, &request.get_ref().tenant)?;
        // Counted against the tenant's concurrency quota while queued too.
        let _permit = tenant
            .begin_search()
            .map_err(|e| to_status(e, Plane::Data))?;
        let r = request.into_inner();
        let vector = match (r.vector.is_empty(), r.text.is_empty()) {
            (false, false) => {
                return Err(Status::invalid_argument(
                    "send either vector or text, not both",
                ));
            }
            (true, false) => {
                check_embeddable(&r.text, "text")?;
                let mut vectors = self.embed(&tenant, vec![r.text]).await?;
                vectors.pop().unwrap_or_default()
            }
            _ => r.vector,
        };
        let search = SearchRequest {
            vector,
            k: if r.k == 0 { DEFAULT_K } else { r.k } as usize,
            ef: (r.ef != 0).then_some(r.ef as usize),
            filter: filter(r.filter)?,
            with_payload: r.with_payload,
            with_vector: r.with_vector,
        };
        let cost = search.ef.unwrap_or(crate::engine::DEFAULT_EF).max(search.k) as u64;
        let incarnation = tenant.incarnation();
        let hits = self
            .searches
            .run(incarnation, cost, move || tenant.search(&search))
            .await?;
        Ok(Response::new(proto::SearchResponse {
            points: hits.into_iter().map(convert::scored_out).collect(),
        }))
    }

    async fn embed(
        &self,
        request: Request<proto::PointsServiceEmbedRequest>,
    ) -> Result<Response<proto::PointsServiceEmbedResponse>, Status> {
        let tenant = self.tenant(&request, &request.get_ref().tenant)?;
        let texts = request.into_inner().texts;
        if texts.is_empty() {
            return Err(Status::invalid_argument("texts is empty"));
        }
        if texts.len() > MAX_EMBED_TEXTS {
            return Err(Status::invalid_argument(format!(
                "{} texts in one request, the limit is {MAX_EMBED_TEXTS}",
                texts.len()
            )));
        }
        for (i, text) in texts.iter().enumerate() {
            check_embeddable(text, &format!("texts[{i}]"))?;
        }
        let answer = self
            .embedders
            .embed(
                tenant.spec().trust_class.as_str(),
                tenant.incarnation(),
                texts,
            )
            .await?;
        self.registry
            .check_embedding_model(&tenant, &answer.model_digest)
            .map_err(|e| to_status(e, Plane::Data))?;
        Ok(Response::new(proto::PointsServiceEmbedResponse {
            vectors: answer
                .embeddings
                .into_iter()
                .map(|e| proto::TextVector { values: e.values })
                .collect(),
            model: answer.model,
            model_digest: answer.model_digest,
        }))
    }

    async fn lineage(
        &self,
        request: Request<proto::LineageRequest>,
    ) -> Result<Response<proto::LineageResponse>, Status> {
        let tenant = self.tenant(&request, &request.get_ref().tenant)?;
        let models = self.registry.lineage_of_tenant(&tenant);
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
