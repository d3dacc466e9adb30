//! Distance metrics, computed with simsimd and plugged into hnsw_rs.

use anndists::dist::Distance;
use serde::{Deserialize, Serialize};
use simsimd::SpatialSimilarity;

/// How a tenant compares vectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Metric {
    /// Score: cosine similarity, higher is closer.
    Cosine,
    /// Score: Euclidean distance, lower is closer.
    L2,
    /// Score: inner product, higher is closer.
    Dot,
}

impl std::str::FromStr for Metric {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "cosine" => Ok(Metric::Cosine),
            "l2" | "euclid" | "euclidean" => Ok(Metric::L2),
            "dot" => Ok(Metric::Dot),
            other => Err(format!("unknown metric {other:?}: use cosine, l2 or dot")),
        }
    }
}

impl std::fmt::Display for Metric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Metric::Cosine => "cosine",
            Metric::L2 => "l2",
            Metric::Dot => "dot",
        })
    }
}

impl Metric {
    /// The score users see for a query and a stored vector.
    pub fn score(self, a: &[f32], b: &[f32]) -> f32 {
        match self {
            Metric::Cosine => (1.0 - f32::cosine(a, b).unwrap_or(f64::NAN)) as f32,
            Metric::L2 => f32::sqeuclidean(a, b).unwrap_or(f64::NAN).sqrt() as f32,
            Metric::Dot => f32::dot(a, b).unwrap_or(f64::NAN) as f32,
        }
    }

    /// A distance that orders like the score (closer first) and is never
    /// negative or NaN: hnsw_rs asserts both.
    pub fn graph_distance(self, a: &[f32], b: &[f32]) -> f32 {
        let d = match self {
            Metric::Cosine => f32::cosine(a, b).unwrap_or(f64::NAN),
            Metric::L2 => f32::sqeuclidean(a, b).unwrap_or(f64::NAN),
            Metric::Dot => {
                // Map x = -dot from (-inf, inf) onto (0, inf), monotonically:
                // 1/(1-x) below zero, 1+x above. Relative precision is kept.
                let x = -f32::dot(a, b).unwrap_or(f64::NAN);
                if x < 0.0 { 1.0 / (1.0 - x) } else { 1.0 + x }
            }
        };
        if d.is_nan() {
            f32::MAX
        } else {
            (d as f32).max(0.0)
        }
    }
}

/// The hnsw_rs distance of a tenant's graph.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MetricDistance(pub(crate) Metric);

impl Distance<f32> for MetricDistance {
    fn eval(&self, va: &[f32], vb: &[f32]) -> f32 {
        self.0.graph_distance(va, vb)
    }
}

/// How the frozen graph compares a prepared query with a stored vector.
/// Orders like [`Metric::graph_distance`]; not necessarily equal to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kernel {
    /// 1 - dot of unit vectors (stored vectors and the query normalized).
    Cosine,
    /// Squared Euclidean distance.
    L2,
    /// Negated inner product.
    Dot,
}

impl Kernel {
    pub(crate) fn of(metric: Metric) -> Kernel {
        match metric {
            Metric::Cosine => Kernel::Cosine,
            Metric::L2 => Kernel::L2,
            Metric::Dot => Kernel::Dot,
        }
    }

    /// The query as the kernel wants it (unit length for cosine).
    pub(crate) fn prepare(self, query: &[f32]) -> Vec<f32> {
        match self {
            Kernel::Cosine => normalized(query),
            Kernel::L2 | Kernel::Dot => query.to_vec(),
        }
    }

    /// Distance between a prepared query and a frozen (prepared) vector.
    #[inline]
    pub(crate) fn distance(self, query: &[f32], stored: &[f32]) -> f32 {
        let d = match self {
            Kernel::Cosine => 1.0 - f32::dot(query, stored).unwrap_or(f64::NAN),
            Kernel::L2 => f32::sqeuclidean(query, stored).unwrap_or(f64::NAN),
            Kernel::Dot => -f32::dot(query, stored).unwrap_or(f64::NAN),
        };
        if d.is_nan() { f32::MAX } else { d as f32 }
    }

    /// Distance between a prepared query and a vector as the user sent it
    /// (points written after the freeze); equal to [`Kernel::distance`] of
    /// the same vector frozen, up to rounding.
    #[inline]
    pub(crate) fn distance_raw(self, query: &[f32], vector: &[f32]) -> f32 {
        let d = match self {
            Kernel::Cosine => f32::cosine(query, vector).unwrap_or(f64::NAN),
            Kernel::L2 | Kernel::Dot => return self.distance(query, vector),
        };
        if d.is_nan() { f32::MAX } else { d as f32 }
    }
}

pub(crate) fn normalized(v: &[f32]) -> Vec<f32> {
    let norm = v
        .iter()
        .map(|x| f64::from(*x) * f64::from(*x))
        .sum::<f64>()
        .sqrt();
    if norm == 0.0 || !norm.is_finite() {
        return v.to_vec();
    }
    v.iter().map(|x| (f64::from(*x) / norm) as f32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graph_distance_orders_like_the_score() {
        let q = [1.0f32, 2.0, -0.5];
        let points = [
            [1.0f32, 2.0, -0.5],
            [3.0, -1.0, 0.0],
            [-1.0, -2.0, 0.5],
            [100.0, 200.0, -50.0],
        ];
        for metric in [Metric::Cosine, Metric::L2, Metric::Dot] {
            let higher_is_closer = metric != Metric::L2;
            for a in &points {
                for b in &points {
                    let (sa, sb) = (metric.score(&q, a), metric.score(&q, b));
                    let (da, db) = (metric.graph_distance(&q, a), metric.graph_distance(&q, b));
                    assert!(da >= 0.0 && db >= 0.0);
                    let score_says_a_closer = if higher_is_closer { sa > sb } else { sa < sb };
                    if score_says_a_closer {
                        assert!(da < db, "{metric}: {a:?} {b:?} {sa} {sb} {da} {db}");
                    }
                }
            }
        }
    }

    #[test]
    fn scores_match_their_definitions() {
        let (a, b) = ([3.0f32, 4.0], [4.0f32, 3.0]);
        assert!((Metric::Dot.score(&a, &b) - 24.0).abs() < 1e-4);
        assert!((Metric::L2.score(&a, &b) - 2f32.sqrt()).abs() < 1e-4);
        assert!((Metric::Cosine.score(&a, &b) - 0.96).abs() < 1e-4);
    }
}
