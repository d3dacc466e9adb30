//! Wire types to engine types and back. Conversions that can fail say what
//! to fix, as INVALID_ARGUMENT.

use serde_json::{Map, Number, Value};
use tonic::Status;

use crate::engine::{
    self, Contract, Filter, Metric, ModelInfo, Payload, PointInput, Quotas, SCOPE_TENANT,
    Telemetry, TenantInfo, TenantName, TenantSpec, TenantState, Training, TrustClass,
};
use crate::proto;

fn invalid(message: impl Into<String>) -> Status {
    Status::invalid_argument(message.into())
}

/// A protobuf Struct to a JSON object (see bulkhead_client::json).
pub(crate) fn struct_to_json(s: prost_types::Struct, path: &str) -> Result<Payload, Status> {
    bulkhead_client::json::from_struct(s, path).map_err(invalid)
}

/// A JSON object to a protobuf Struct.
pub fn json_to_struct(payload: &Map<String, Value>) -> prost_types::Struct {
    bulkhead_client::json::to_struct(payload)
}

pub(crate) fn point_input(p: proto::Point, index: usize) -> Result<PointInput, Status> {
    let payload = match p.payload {
        Some(s) => struct_to_json(s, "payload")
            .map_err(|e| invalid(format!("point {index}: {}", e.message())))?,
        None => Payload::new(),
    };
    Ok(PointInput {
        id: p.id,
        vector: p.vector,
        payload,
        text: (!p.text.is_empty()).then_some(p.text),
    })
}

pub(crate) fn point_out(p: engine::Point) -> proto::Point {
    proto::Point {
        id: p.id,
        vector: p.vector.unwrap_or_default(),
        payload: p.payload.as_ref().map(json_to_struct),
        text: p.text.unwrap_or_default(),
    }
}

pub(crate) fn scored_out(p: engine::ScoredPoint) -> proto::ScoredPoint {
    proto::ScoredPoint {
        id: p.id,
        score: p.score,
        payload: p.payload.as_ref().map(json_to_struct),
        vector: p.vector.unwrap_or_default(),
        text: p.text.unwrap_or_default(),
    }
}

/// A wire filter to the engine's, through its JSON form, so both arrive
/// through one validation (depth, size, messages).
pub(crate) fn filter(f: proto::Filter) -> Result<Filter, Status> {
    Filter::from_json(&filter_json(f)?).map_err(|e| invalid(e.to_string()))
}

fn filter_json(f: proto::Filter) -> Result<Value, Status> {
    let list = |conditions: Vec<proto::Condition>| -> Result<Value, Status> {
        conditions
            .into_iter()
            .map(condition_json)
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array)
    };
    let mut map = Map::new();
    map.insert("must".into(), list(f.must)?);
    map.insert("should".into(), list(f.should)?);
    map.insert("must_not".into(), list(f.must_not)?);
    Ok(Value::Object(map))
}

fn condition_json(c: proto::Condition) -> Result<Value, Status> {
    use proto::condition::Condition as C;
    use proto::field_condition::Condition as F;
    match c.condition {
        None => Err(invalid(
            "invalid filter: a condition has none of field, has_field or filter set",
        )),
        Some(C::HasField(key)) => Ok(serde_json::json!({ "has_field": key })),
        Some(C::Filter(nested)) => filter_json(nested),
        Some(C::Field(field)) => {
            let key = field.key;
            match field.condition {
                None => Err(invalid(format!(
                    "invalid filter: the condition on {key:?} has none of match, match_any or range set"
                ))),
                Some(F::Match(m)) => Ok(
                    serde_json::json!({ "key": key, "match": { "value": match_value(m, &key)? } }),
                ),
                Some(F::MatchAny(any)) => {
                    let values = any
                        .values
                        .into_iter()
                        .map(|m| match_value(m, &key))
                        .collect::<Result<Vec<_>, _>>()?;
                    Ok(serde_json::json!({ "key": key, "match": { "any": values } }))
                }
                Some(F::Range(r)) => {
                    let mut range = Map::new();
                    for (name, bound) in
                        [("gt", r.gt), ("gte", r.gte), ("lt", r.lt), ("lte", r.lte)]
                    {
                        if let Some(b) = bound {
                            let n = Number::from_f64(b).ok_or_else(|| invalid(format!("invalid filter: range bound {name} on {key:?} is not a finite number")))?;
                            range.insert(name.into(), Value::Number(n));
                        }
                    }
                    Ok(serde_json::json!({ "key": key, "range": range }))
                }
            }
        }
    }
}

fn match_value(m: proto::MatchValue, key: &str) -> Result<Value, Status> {
    use proto::match_value::Value as V;
    match m.value {
        Some(V::Keyword(s)) => Ok(Value::String(s)),
        Some(V::Integer(i)) => Ok(Value::Number(i.into())),
        Some(V::Boolean(b)) => Ok(Value::Bool(b)),
        None => Err(invalid(format!(
            "invalid filter: a match value on {key:?} has none of keyword, integer or boolean set"
        ))),
    }
}

/// The engine's filter to the wire form (for the CLI and tests).
pub fn filter_to_proto(f: &Filter) -> proto::Filter {
    let list = |cs: &[engine::Condition]| cs.iter().map(condition_to_proto).collect();
    proto::Filter {
        must: list(&f.must),
        should: list(&f.should),
        must_not: list(&f.must_not),
    }
}

fn condition_to_proto(c: &engine::Condition) -> proto::Condition {
    use proto::condition::Condition as C;
    use proto::field_condition::Condition as F;
    let field = |key: &str, condition: F| {
        C::Field(proto::FieldCondition {
            key: key.to_string(),
            condition: Some(condition),
        })
    };
    let condition = match c {
        engine::Condition::Match { key, value } => {
            field(key, F::Match(match_value_to_proto(value)))
        }
        engine::Condition::MatchAny { key, any } => field(
            key,
            F::MatchAny(proto::MatchAny {
                values: any.iter().map(match_value_to_proto).collect(),
            }),
        ),
        engine::Condition::Range { key, range } => field(
            key,
            F::Range(proto::Range {
                gt: range.gt,
                gte: range.gte,
                lt: range.lt,
                lte: range.lte,
            }),
        ),
        engine::Condition::HasField { key } => C::HasField(key.clone()),
        engine::Condition::Nested(f) => C::Filter(filter_to_proto(f)),
    };
    proto::Condition {
        condition: Some(condition),
    }
}

fn match_value_to_proto(v: &engine::MatchValue) -> proto::MatchValue {
    use proto::match_value::Value as V;
    let value = match v {
        engine::MatchValue::Keyword(s) => V::Keyword(s.clone()),
        engine::MatchValue::Integer(i) => V::Integer(*i),
        engine::MatchValue::Bool(b) => V::Boolean(*b),
    };
    proto::MatchValue { value: Some(value) }
}

pub(crate) fn tenant_spec(spec: Option<proto::TenantSpec>) -> Result<TenantSpec, Status> {
    let spec = spec.ok_or_else(|| invalid("spec is required: dimension and metric at least"))?;
    let metric = match proto::Metric::try_from(spec.metric) {
        Ok(proto::Metric::Cosine) => Metric::Cosine,
        Ok(proto::Metric::L2) => Metric::L2,
        Ok(proto::Metric::Dot) => Metric::Dot,
        Ok(proto::Metric::Unspecified) | Err(_) => {
            return Err(invalid(
                "metric is required: METRIC_COSINE, METRIC_L2 or METRIC_DOT",
            ));
        }
    };
    let mut out = TenantSpec::new(spec.dimension, metric);
    if let Some(index) = spec.index {
        if index.m != 0 {
            out.index.m = u16::try_from(index.m).map_err(|_| {
                invalid(format!("hnsw m must be between 4 and 128, got {}", index.m))
            })?;
        }
        if index.ef_construction != 0 {
            out.index.ef_construction = u16::try_from(index.ef_construction).map_err(|_| {
                invalid(format!(
                    "hnsw ef_construction must be between 8 and 4096, got {}",
                    index.ef_construction
                ))
            })?;
        }
    }
    if !spec.trust_class.is_empty() {
        out.trust_class =
            TrustClass::parse(&spec.trust_class).map_err(|e| invalid(e.to_string()))?;
    }
    Ok(out)
}

/// Quotas from the wire; absent is none (every field 0 is unlimited).
pub(crate) fn quotas(q: Option<proto::Quotas>) -> Quotas {
    let q = q.unwrap_or_default();
    Quotas {
        max_points: q.max_points,
        max_requests_per_second: q.max_requests_per_second,
        max_concurrent_searches: q.max_concurrent_searches,
        max_payload_bytes: q.max_payload_bytes,
        max_embedding_tokens_per_minute: q.max_embedding_tokens_per_minute,
    }
}

pub(crate) fn quotas_out(q: Quotas) -> proto::Quotas {
    proto::Quotas {
        max_points: q.max_points,
        max_requests_per_second: q.max_requests_per_second,
        max_concurrent_searches: q.max_concurrent_searches,
        max_payload_bytes: q.max_payload_bytes,
        max_embedding_tokens_per_minute: q.max_embedding_tokens_per_minute,
    }
}

pub(crate) fn tenant_info(info: TenantInfo) -> proto::TenantInfo {
    let metric = match info.spec.metric {
        Metric::Cosine => proto::Metric::Cosine,
        Metric::L2 => proto::Metric::L2,
        Metric::Dot => proto::Metric::Dot,
    };
    proto::TenantInfo {
        name: info.name,
        spec: Some(proto::TenantSpec {
            dimension: info.spec.dimension,
            metric: metric as i32,
            index: Some(proto::IndexParams {
                m: u32::from(info.spec.index.m),
                ef_construction: u32::from(info.spec.index.ef_construction),
            }),
            trust_class: info.spec.trust_class.as_str().to_string(),
        }),
        points: info.points as u64,
        graph_nodes: info.graph_nodes as u64,
        created_unix_ms: info.created_unix_ms,
        last_used_unix_ms: info.last_used_unix_ms.unwrap_or(0),
        state: match info.state {
            TenantState::Active => proto::TenantState::Active,
            TenantState::Cold => proto::TenantState::Cold,
        } as i32,
        quotas: Some(quotas_out(info.quotas)),
        pinned: info.pinned,
        resident_bytes: info.resident_bytes,
        payload_bytes: info.payload_bytes,
        contract: Some(contract_out(&info.contract)),
    }
}

/// A contract from the wire (absent: the default). `version` is ignored:
/// the server sets it.
pub(crate) fn contract(c: Option<proto::TenantContract>) -> Result<Contract, Status> {
    let Some(c) = c else {
        return Ok(Contract::default());
    };
    let pool_with = || -> Result<_, Status> {
        c.pool_with
            .iter()
            .map(|t| TenantName::parse(t).map_err(|e| invalid(format!("contract pool_with: {e}"))))
            .collect()
    };
    let training = match proto::TrainingUse::try_from(c.training) {
        Ok(proto::TrainingUse::Unspecified | proto::TrainingUse::None) => Training::None,
        Ok(proto::TrainingUse::Own) => Training::Own,
        Ok(proto::TrainingUse::Pooled) => Training::Pooled(pool_with()?),
        Err(_) => {
            return Err(invalid(
                "contract training must be TRAINING_USE_NONE, TRAINING_USE_OWN or TRAINING_USE_POOLED",
            ));
        }
    };
    if !matches!(training, Training::Pooled(_)) && !c.pool_with.is_empty() {
        return Err(invalid(
            "contract pool_with is only for training TRAINING_USE_POOLED",
        ));
    }
    let telemetry = match proto::Telemetry::try_from(c.telemetry) {
        Ok(proto::Telemetry::Unspecified | proto::Telemetry::Aggregate) => Telemetry::Aggregate,
        Ok(proto::Telemetry::None) => Telemetry::None,
        Err(_) => {
            return Err(invalid(
                "contract telemetry must be TELEMETRY_AGGREGATE or TELEMETRY_NONE",
            ));
        }
    };
    for (what, scope) in [
        ("caching_scope", &c.caching_scope),
        ("retrieval_scope", &c.retrieval_scope),
    ] {
        if !scope.is_empty() && scope != SCOPE_TENANT {
            return Err(invalid(format!(
                "contract {what} is always \"{SCOPE_TENANT}\": a tenant's cache and retrieval never reach beyond it"
            )));
        }
    }
    Ok(Contract {
        version: 0,
        training,
        telemetry,
    })
}

pub(crate) fn contract_out(c: &Contract) -> proto::TenantContract {
    let (training, pool_with) = match &c.training {
        Training::None => (proto::TrainingUse::None, Vec::new()),
        Training::Own => (proto::TrainingUse::Own, Vec::new()),
        Training::Pooled(with) => (
            proto::TrainingUse::Pooled,
            with.iter().map(|t| t.to_string()).collect(),
        ),
    };
    proto::TenantContract {
        version: c.version,
        training: training as i32,
        pool_with,
        telemetry: match c.telemetry {
            Telemetry::Aggregate => proto::Telemetry::Aggregate,
            Telemetry::None => proto::Telemetry::None,
        } as i32,
        caching_scope: SCOPE_TENANT.to_string(),
        retrieval_scope: SCOPE_TENANT.to_string(),
    }
}

/// A model for the admin plane, with its manifest.
pub(crate) fn model_info(m: ModelInfo) -> proto::ModelInfo {
    proto::ModelInfo {
        name: m.record.name,
        digest: m.record.digest,
        tenants: m.record.tenants.iter().map(|t| t.to_string()).collect(),
        public_datasets: m
            .record
            .public
            .into_iter()
            .map(|d| proto::PublicDataset {
                name: d.name,
                sha256: d.sha256.unwrap_or_default(),
            })
            .collect(),
        registered_unix_ms: m.record.registered_unix_ms,
        trust_classes: m.trust_classes,
        assigned_tenants: m.assigned_tenants,
        manifest_json: m.record.manifest,
    }
}

/// A page request of an access log, checked.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AccessPageRequest {
    pub after: Option<crate::engine::AccessCursor>,
    pub since_unix_ms: u64,
    pub limit: usize,
}

/// Entries per access log page when the request says 0.
const DEFAULT_ACCESS_PAGE: usize = 100;

impl AccessPageRequest {
    pub(crate) fn of(cursor: &str, since_unix_ms: u64, limit: u32) -> Result<Self, Status> {
        let after = if cursor.is_empty() {
            None
        } else {
            let parsed = cursor
                .split_once('-')
                .and_then(|(t, s)| Some((t.parse().ok()?, s.parse().ok()?)));
            Some(parsed.ok_or_else(|| {
                Status::invalid_argument(
                    "cursor: not one this server gave; pass a page's next_cursor, or none to start over",
                )
            })?)
        };
        let limit = match limit {
            0 => DEFAULT_ACCESS_PAGE,
            n if n as usize > crate::engine::MAX_ACCESS_PAGE => {
                return Err(Status::invalid_argument(format!(
                    "limit: at most {} entries a page",
                    crate::engine::MAX_ACCESS_PAGE
                )));
            }
            n => n as usize,
        };
        Ok(AccessPageRequest {
            after,
            since_unix_ms,
            limit,
        })
    }
}

/// An access log page on the wire: its entries and the next cursor.
pub(crate) fn access_page(page: crate::engine::AccessPage) -> (Vec<proto::AccessLogEntry>, String) {
    let entries = page
        .entries
        .into_iter()
        .map(|e| proto::AccessLogEntry {
            first_unix_ms: e.first_unix_ms,
            last_unix_ms: e.last_unix_ms,
            token_id: e.token_id,
            rpc: e.rpc,
            code: e.code,
            calls: e.calls,
            items: e.items,
        })
        .collect();
    let next = page
        .next
        .map(|(time, seq)| format!("{time}-{seq}"))
        .unwrap_or_default();
    (entries, next)
}
