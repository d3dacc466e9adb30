//! Points in and out of a tenant, and the validation of a write batch.

use serde_json::{Map, Value};

use super::error::{EngineError, Result};
use super::metric::Metric;
use super::spec::TenantSpec;

/// A point's payload: a JSON object.
pub type Payload = Map<String, Value>;

pub const MAX_ID_BYTES: usize = 256;
pub const MAX_PAYLOAD_BYTES: usize = 64 * 1024;
pub const MAX_TEXT_BYTES: usize = 64 * 1024;
pub const MAX_BATCH_POINTS: usize = 10_000;

/// A point to upsert.
#[derive(Debug, Clone, PartialEq)]
pub struct PointInput {
    pub id: String,
    pub vector: Vec<f32>,
    pub payload: Payload,
    /// The document the vector stands for, kept and returned with the payload.
    pub text: Option<String>,
}

impl PointInput {
    pub fn new(id: impl Into<String>, vector: Vec<f32>) -> Self {
        PointInput {
            id: id.into(),
            vector,
            payload: Payload::new(),
            text: None,
        }
    }

    pub fn with_text(mut self, text: impl Into<String>) -> Self {
        self.text = Some(text.into());
        self
    }

    pub fn with_payload(mut self, payload: Value) -> Self {
        if let Value::Object(map) = payload {
            self.payload = map;
        }
        self
    }
}

/// A stored point as returned by get and scroll.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub id: String,
    pub payload: Option<Payload>,
    pub vector: Option<Vec<f32>>,
    /// Returned with the payload.
    pub text: Option<String>,
}

/// A search hit. `score` follows the metric: cosine similarity and dot
/// product (higher is closer) or Euclidean distance (lower is closer).
#[derive(Debug, Clone, PartialEq)]
pub struct ScoredPoint {
    pub id: String,
    pub score: f32,
    pub payload: Option<Payload>,
    pub vector: Option<Vec<f32>>,
    /// Returned with the payload.
    pub text: Option<String>,
}

pub(crate) fn check_id(id: &str) -> std::result::Result<(), String> {
    if id.is_empty() {
        return Err("id is empty".to_string());
    }
    if id.len() > MAX_ID_BYTES {
        return Err(format!(
            "id is {} bytes, the limit is {MAX_ID_BYTES}",
            id.len()
        ));
    }
    Ok(())
}

/// Checks a vector against the tenant's dimension and metric.
pub(crate) fn check_vector(spec: &TenantSpec, vector: &[f32]) -> std::result::Result<(), String> {
    if vector.len() != spec.dimension as usize {
        return Err(format!(
            "vector has {} dimensions, this tenant's vectors have {}",
            vector.len(),
            spec.dimension
        ));
    }
    if let Some(i) = vector.iter().position(|x| !x.is_finite()) {
        return Err(format!(
            "vector element {i} is {} (NaN and infinity are not allowed)",
            vector[i]
        ));
    }
    if spec.metric == Metric::Cosine && vector.iter().all(|x| *x == 0.0) {
        return Err(
            "vector is all zeros, which has no direction under the cosine metric".to_string(),
        );
    }
    Ok(())
}

/// Validates a batch as a whole: the first bad point fails all of it.
/// Returns each point's payload serialized as JSON text.
pub fn validate_batch(spec: &TenantSpec, points: &[PointInput]) -> Result<Vec<Vec<u8>>> {
    if points.is_empty() {
        return Err(EngineError::invalid("the batch has no points"));
    }
    if points.len() > MAX_BATCH_POINTS {
        return Err(EngineError::invalid(format!(
            "the batch has {} points, the limit is {MAX_BATCH_POINTS}: split it",
            points.len()
        )));
    }
    points
        .iter()
        .enumerate()
        .map(|(index, p)| {
            check_id(&p.id).map_err(|r| EngineError::point(index, r))?;
            check_vector(spec, &p.vector).map_err(|r| EngineError::point(index, r))?;
            if let Some(text) = p.text.as_ref().filter(|t| t.len() > MAX_TEXT_BYTES) {
                return Err(EngineError::point(
                    index,
                    format!(
                        "text is {} bytes, the limit is {MAX_TEXT_BYTES}",
                        text.len()
                    ),
                ));
            }
            let payload = serde_json::to_vec(&p.payload).map_err(|e| {
                EngineError::point(index, format!("payload cannot be encoded: {e}"))
            })?;
            if payload.len() > MAX_PAYLOAD_BYTES {
                return Err(EngineError::point(
                    index,
                    format!(
                        "payload is {} bytes of JSON, the limit is {MAX_PAYLOAD_BYTES}",
                        payload.len()
                    ),
                ));
            }
            Ok(payload)
        })
        .collect()
}
