//! What a tenant is created with, validated before anything is built:
//! hnsw_rs calls process::exit for M > 256, so bounds are checked here.

use serde::{Deserialize, Serialize};

use super::error::{EngineError, Result};
use super::metric::Metric;
use super::name::TrustClass;

pub const MAX_DIMENSION: u32 = 4096;

/// HNSW build parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexParams {
    /// Neighbours per node and layer (hnsw_rs's max_nb_connection): 4..=128.
    pub m: u16,
    /// Candidate list size while building: 8..=4096, and at least m.
    pub ef_construction: u16,
}

impl Default for IndexParams {
    fn default() -> Self {
        IndexParams {
            m: 16,
            ef_construction: 200,
        }
    }
}

/// A tenant's fixed shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantSpec {
    pub dimension: u32,
    pub metric: Metric,
    pub index: IndexParams,
    pub trust_class: TrustClass,
}

impl TenantSpec {
    pub fn new(dimension: u32, metric: Metric) -> Self {
        TenantSpec {
            dimension,
            metric,
            index: IndexParams::default(),
            trust_class: TrustClass::default(),
        }
    }

    pub fn validate(&self) -> Result<()> {
        if !(1..=MAX_DIMENSION).contains(&self.dimension) {
            return Err(EngineError::invalid(format!(
                "dimension must be between 1 and {MAX_DIMENSION}, got {}",
                self.dimension
            )));
        }
        let IndexParams { m, ef_construction } = self.index;
        if !(4..=128).contains(&m) {
            return Err(EngineError::invalid(format!(
                "hnsw m must be between 4 and 128, got {m}"
            )));
        }
        if !(8..=4096).contains(&ef_construction) || ef_construction < m {
            return Err(EngineError::invalid(format!(
                "hnsw ef_construction must be between 8 and 4096 and at least m ({m}), got {ef_construction}"
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_enforced_with_clear_messages() {
        let ok = TenantSpec::new(128, Metric::Cosine);
        assert!(ok.validate().is_ok());
        for dim in [0, 4097] {
            let err = TenantSpec::new(dim, Metric::L2).validate().unwrap_err();
            assert!(
                err.to_string()
                    .contains("dimension must be between 1 and 4096")
            );
        }
        let mut big_m = ok.clone();
        big_m.index.m = 300;
        assert!(big_m.validate().unwrap_err().to_string().contains("hnsw m"));
        let mut small_ef = ok;
        small_ef.index.ef_construction = 8;
        assert!(
            small_ef
                .validate()
                .unwrap_err()
                .to_string()
                .contains("ef_construction")
        );
    }
}
