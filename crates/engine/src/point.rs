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

/// What is wrong with one point of a batch, or with a query vector.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PointFault {
    #[error("id is empty")]
    EmptyId,
    #[error("id is {0} bytes, the limit is {MAX_ID_BYTES}")]
    IdTooLong(usize),
    #[error("vector has {got} dimensions, this tenant's vectors have {want}")]
    Dimension { got: usize, want: u32 },
    #[error("vector element {index} is {value} (NaN and infinity are not allowed)")]
    NotFinite { index: usize, value: f32 },
    #[error("vector is all zeros, which has no direction under the cosine metric")]
    ZeroUnderCosine,
    #[error("text is {0} bytes, the limit is {MAX_TEXT_BYTES}")]
    TextTooLong(usize),
    #[error("payload cannot be encoded: {0}")]
    PayloadEncoding(String),
    #[error("payload is {0} bytes of JSON, the limit is {MAX_PAYLOAD_BYTES}")]
    PayloadTooLarge(usize),
}

pub(crate) fn check_id(id: &str) -> std::result::Result<(), PointFault> {
    if id.is_empty() {
        return Err(PointFault::EmptyId);
    }
    if id.len() > MAX_ID_BYTES {
        return Err(PointFault::IdTooLong(id.len()));
    }
    Ok(())
}

/// Checks a vector against the tenant's dimension and metric.
pub(crate) fn check_vector(
    spec: &TenantSpec,
    vector: &[f32],
) -> std::result::Result<(), PointFault> {
    if vector.len() != spec.dimension as usize {
        return Err(PointFault::Dimension {
            got: vector.len(),
            want: spec.dimension,
        });
    }
    if let Some(index) = vector.iter().position(|x| !x.is_finite()) {
        return Err(PointFault::NotFinite {
            index,
            value: vector[index],
        });
    }
    if spec.metric == Metric::Cosine && vector.iter().all(|x| *x == 0.0) {
        return Err(PointFault::ZeroUnderCosine);
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
                    PointFault::TextTooLong(text.len()),
                ));
            }
            let payload = serde_json::to_vec(&p.payload).map_err(|e| {
                EngineError::point(index, PointFault::PayloadEncoding(e.to_string()))
            })?;
            if payload.len() > MAX_PAYLOAD_BYTES {
                return Err(EngineError::point(
                    index,
                    PointFault::PayloadTooLarge(payload.len()),
                ));
            }
            Ok(payload)
        })
        .collect()
}
