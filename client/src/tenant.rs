//! The tenant-bound data client.

use serde_json::{Map, Value};
use tonic::Request;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::Channel;

use crate::error::{Error, Result};
use crate::filter::Filter;
use crate::proto;
use crate::proto::points_service_client::PointsServiceClient;

/// A point to write or as read.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub id: String,
    /// Empty when read without `with_vector`.
    pub vector: Vec<f32>,
    /// `None` when read without `with_payload`.
    pub payload: Option<Map<String, Value>>,
    /// The document the vector stands for; returned with the payload.
    pub text: Option<String>,
}

impl Point {
    pub fn new(id: impl Into<String>, vector: Vec<f32>) -> Self {
        Point {
            id: id.into(),
            vector,
            payload: None,
            text: None,
        }
    }

    /// A point with only a text: the server embeds it with the embedder of
    /// the tenant's trust class and keeps the text with the vector.
    pub fn from_text(id: impl Into<String>, text: impl Into<String>) -> Self {
        Point {
            id: id.into(),
            vector: Vec::new(),
            payload: None,
            text: Some(text.into()),
        }
    }

    /// Sets the payload; it must be a JSON object (anything else is dropped).
    pub fn payload(mut self, payload: Value) -> Self {
        self.payload = match payload {
            Value::Object(map) => Some(map),
            _ => None,
        };
        self
    }

    /// Keeps `text` (the document) with the point.
    pub fn text(mut self, text: impl Into<String>) -> Self {
        self.text = Some(text.into());
        self
    }

    fn into_proto(self) -> proto::Point {
        proto::Point {
            id: self.id,
            vector: self.vector,
            payload: self.payload.as_ref().map(crate::json::to_struct),
            text: self.text.unwrap_or_default(),
        }
    }

    fn from_proto(p: proto::Point) -> Result<Point> {
        Ok(Point {
            id: p.id,
            vector: p.vector,
            payload: payload_from(p.payload)?,
            text: (!p.text.is_empty()).then_some(p.text),
        })
    }
}

fn payload_from(s: Option<prost_types::Struct>) -> Result<Option<Map<String, Value>>> {
    s.map(|s| crate::json::from_struct(s, "payload"))
        .transpose()
        .map_err(|e| Error::Server {
            code: tonic::Code::DataLoss,
            message: e,
        })
}

/// A search hit.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoredPoint {
    pub id: String,
    /// Cosine similarity or dot product (higher is closer) or Euclidean
    /// distance (lower is closer), after the tenant's metric.
    pub score: f32,
    pub vector: Vec<f32>,
    pub payload: Option<Map<String, Value>>,
    pub text: Option<String>,
}

/// One page of a scroll.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub points: Vec<Point>,
    /// Pass to the next `scroll` call; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// A client bound to one tenant and its token. It cannot be built without
/// both, and no call can name another tenant. Cloning shares the connection.
#[derive(Debug, Clone)]
pub struct TenantClient {
    tenant: String,
    bearer: MetadataValue<Ascii>,
    points: PointsServiceClient<Channel>,
}

impl TenantClient {
    /// Connects to `addr` as `tenant`: "http://host:port", or
    /// "https://host:port" trusting the system's roots. For a CA bundle or a
    /// client certificate, open the channel with [`crate::connect`] and a
    /// [`crate::Tls`], then [`TenantClient::with_channel`].
    pub async fn connect(
        addr: impl Into<String>,
        tenant: impl Into<String>,
        token: impl AsRef<str>,
    ) -> Result<Self> {
        let channel = crate::connect(addr, &crate::Tls::default()).await?;
        Self::with_channel(channel, tenant, token)
    }

    /// A client over an existing channel (one connection, many tenants).
    pub fn with_channel(
        channel: Channel,
        tenant: impl Into<String>,
        token: impl AsRef<str>,
    ) -> Result<Self> {
        let tenant = tenant.into();
        if tenant.is_empty() {
            return Err(Error::InvalidArgument("a tenant is required".into()));
        }
        Ok(TenantClient {
            tenant,
            bearer: crate::bearer(token.as_ref())?,
            points: PointsServiceClient::new(channel)
                .max_decoding_message_size(64 * 1024 * 1024)
                .max_encoding_message_size(64 * 1024 * 1024),
        })
    }

    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    fn request<T>(&self, message: T) -> Request<T> {
        crate::authorized(&self.bearer, message)
    }

    /// Inserts or replaces points (at most 10,000 per call; applied whole or
    /// not at all). Returns how many were written.
    pub async fn upsert(&self, points: Vec<Point>) -> Result<u64> {
        let request = self.request(proto::UpsertRequest {
            tenant: self.tenant.clone(),
            points: points.into_iter().map(Point::into_proto).collect(),
        });
        Ok(self
            .points
            .clone()
            .upsert(request)
            .await?
            .into_inner()
            .upserted)
    }

    /// Points by id, in request order; missing ids are skipped.
    pub async fn get(
        &self,
        ids: Vec<String>,
        with_payload: bool,
        with_vector: bool,
    ) -> Result<Vec<Point>> {
        let request = self.request(proto::GetRequest {
            tenant: self.tenant.clone(),
            ids,
            with_payload,
            with_vector,
        });
        self.points
            .clone()
            .get(request)
            .await?
            .into_inner()
            .points
            .into_iter()
            .map(Point::from_proto)
            .collect()
    }

    /// Deletes points by id; returns how many existed.
    pub async fn delete(&self, ids: Vec<String>) -> Result<u64> {
        let selector = proto::delete_request::Selector::Ids(proto::PointIds { ids });
        self.delete_selected(selector).await
    }

    /// Deletes the points matching `filter`; returns how many.
    pub async fn delete_by_filter(&self, filter: Filter) -> Result<u64> {
        self.delete_selected(proto::delete_request::Selector::Filter(filter.into_proto()))
            .await
    }

    async fn delete_selected(&self, selector: proto::delete_request::Selector) -> Result<u64> {
        let request = self.request(proto::DeleteRequest {
            tenant: self.tenant.clone(),
            selector: Some(selector),
        });
        Ok(self
            .points
            .clone()
            .delete(request)
            .await?
            .into_inner()
            .deleted)
    }

    /// Number of points, or of those matching `filter`.
    pub async fn count(&self, filter: Option<Filter>) -> Result<u64> {
        let request = self.request(proto::CountRequest {
            tenant: self.tenant.clone(),
            filter: filter.map(Filter::into_proto),
        });
        Ok(self.points.clone().count(request).await?.into_inner().count)
    }

    /// One page of points in id order (`limit` 1-1000), with payloads.
    pub async fn scroll(
        &self,
        cursor: Option<String>,
        limit: u32,
        filter: Option<Filter>,
    ) -> Result<Page> {
        let request = self.request(proto::ScrollRequest {
            tenant: self.tenant.clone(),
            cursor: cursor.unwrap_or_default(),
            limit,
            filter: filter.map(Filter::into_proto),
            with_payload: true,
            with_vector: false,
        });
        let page = self.points.clone().scroll(request).await?.into_inner();
        Ok(Page {
            points: page
                .points
                .into_iter()
                .map(Point::from_proto)
                .collect::<Result<_>>()?,
            next_cursor: (!page.next_cursor.is_empty()).then_some(page.next_cursor),
        })
    }

    /// Starts a nearest-neighbour query; finish it with [`SearchBuilder::send`].
    pub fn search(&self, vector: Vec<f32>) -> SearchBuilder<'_> {
        SearchBuilder {
            client: self,
            request: proto::SearchRequest {
                tenant: self.tenant.clone(),
                vector,
                k: 10,
                ..Default::default()
            },
        }
    }

    /// Starts a query by text: the server embeds it with the embedder of the
    /// tenant's trust class.
    pub fn search_text(&self, text: impl Into<String>) -> SearchBuilder<'_> {
        SearchBuilder {
            client: self,
            request: proto::SearchRequest {
                tenant: self.tenant.clone(),
                text: text.into(),
                k: 10,
                ..Default::default()
            },
        }
    }

    /// Vectors for `texts` (at most 1,024), in order, from the embedder of
    /// the tenant's trust class; also returns the model's name.
    pub async fn embed(&self, texts: Vec<String>) -> Result<(Vec<Vec<f32>>, String)> {
        let answer = self.embed_answer(texts).await?;
        Ok((answer.vectors, answer.model))
    }

    /// [`embed`](Self::embed), with the digest of the weights that answered.
    pub async fn embed_answer(&self, texts: Vec<String>) -> Result<Embedding> {
        let request = self.request(proto::PointsServiceEmbedRequest {
            tenant: self.tenant.clone(),
            texts,
        });
        let answer = self.points.clone().embed(request).await?.into_inner();
        Ok(Embedding {
            vectors: answer.vectors.into_iter().map(|v| v.values).collect(),
            model: answer.model,
            model_digest: answer.model_digest,
        })
    }

    /// The registered models whose lineage holds this tenant's data.
    pub async fn lineage(&self) -> Result<Vec<proto::LineageModel>> {
        let request = self.request(proto::LineageRequest {
            tenant: self.tenant.clone(),
        });
        Ok(self
            .points
            .clone()
            .lineage(request)
            .await?
            .into_inner()
            .models)
    }

    /// A page of this tenant's access log (its data-plane calls by token,
    /// RPC and outcome, a minute at a time, oldest first): from `cursor`
    /// (a page's `next_cursor`) or, without one, from `since_unix_ms`;
    /// `limit` 0 means 100.
    pub async fn access_log(
        &self,
        cursor: Option<&str>,
        since_unix_ms: u64,
        limit: u32,
    ) -> Result<proto::AccessLogResponse> {
        let request = self.request(proto::AccessLogRequest {
            tenant: self.tenant.clone(),
            cursor: cursor.unwrap_or_default().to_string(),
            since_unix_ms,
            limit,
        });
        Ok(self.points.clone().access_log(request).await?.into_inner())
    }
}

/// A search under construction: `client.search(v).k(5).filter(f).send()`.
#[derive(Debug)]
#[must_use = "a search does nothing until send() is awaited"]
pub struct SearchBuilder<'a> {
    client: &'a TenantClient,
    request: proto::SearchRequest,
}

impl SearchBuilder<'_> {
    /// Results wanted, 1-1024 (default 10).
    pub fn k(mut self, k: u32) -> Self {
        self.request.k = k;
        self
    }

    /// Candidate list size of the graph search (default 64).
    pub fn ef(mut self, ef: u32) -> Self {
        self.request.ef = ef;
        self
    }

    pub fn filter(mut self, filter: Filter) -> Self {
        self.request.filter = Some(filter.into_proto());
        self
    }

    pub fn with_payload(mut self) -> Self {
        self.request.with_payload = true;
        self
    }

    pub fn with_vector(mut self) -> Self {
        self.request.with_vector = true;
        self
    }

    pub async fn send(self) -> Result<Vec<ScoredPoint>> {
        let request = self.client.request(self.request);
        let hits = self
            .client
            .points
            .clone()
            .search(request)
            .await?
            .into_inner()
            .points;
        hits.into_iter()
            .map(|p| {
                Ok(ScoredPoint {
                    id: p.id,
                    score: p.score,
                    vector: p.vector,
                    payload: payload_from(p.payload)?,
                    text: (!p.text.is_empty()).then_some(p.text),
                })
            })
            .collect()
    }
}

/// The vectors of an embed call and the model that made them.
#[derive(Debug, Clone, PartialEq)]
pub struct Embedding {
    pub vectors: Vec<Vec<f32>>,
    /// The model's name.
    pub model: String,
    /// SHA-256 (hex) of the weights that made the vectors.
    pub model_digest: String,
}
