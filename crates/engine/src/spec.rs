//! What a tenant is created with, validated before anything is built:
//! hnsw_rs calls process::exit for M > 256, so bounds are checked here.

use serde::{Deserialize, Serialize};

use super::contract::Contract;
use super::error::{EngineError, Result};
use super::metric::Metric;
use super::name::TrustClass;
use super::quota::{Quotas, StoredQuotas};

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

/// What a tenant's record holds for the engine: its fixed shape and what
/// the admin may change later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TenantSettings {
    pub(crate) spec: TenantSpec,
    pub(crate) quotas: Quotas,
    /// Never evicted to cold by the memory budget.
    pub(crate) pinned: bool,
    pub(crate) contract: Contract,
}

/// How settings are stored. Each field added since the first record goes
/// at the end, so that a record of an older shape can never decode as a
/// newer one (it runs out of bytes) nor a newer as an older (bytes are
/// left over).
#[derive(Serialize, Deserialize)]
struct Stored {
    spec: TenantSpec,
    quotas: StoredQuotas,
    pinned: bool,
    contract: Contract,
    max_embedding_tokens_per_minute: u64,
}

/// The settings records held before the embedding quota existed.
#[derive(Deserialize)]
struct StoredBeforeEmbeddingQuota {
    spec: TenantSpec,
    quotas: StoredQuotas,
    pinned: bool,
    contract: Contract,
}

/// The settings records held before contracts existed.
#[derive(Deserialize)]
struct StoredBeforeContracts {
    spec: TenantSpec,
    quotas: StoredQuotas,
    pinned: bool,
}

impl TenantSettings {
    pub(crate) fn encode(&self) -> Result<Vec<u8>> {
        Ok(bulkhead_storage::encode(&Stored {
            spec: self.spec.clone(),
            quotas: StoredQuotas::from(self.quotas),
            pinned: self.pinned,
            contract: self.contract.clone(),
            max_embedding_tokens_per_minute: self.quotas.max_embedding_tokens_per_minute,
        })?)
    }

    /// Decodes a record's settings; records written before the embedding
    /// quota have none, those before contracts get the default contract,
    /// and those written before quotas hold the spec alone.
    pub(crate) fn decode(bytes: &[u8]) -> Result<TenantSettings> {
        if let Ok(s) = bulkhead_storage::decode::<Stored>(bytes) {
            return Ok(TenantSettings {
                spec: s.spec,
                quotas: s.quotas.with_embedding(s.max_embedding_tokens_per_minute),
                pinned: s.pinned,
                contract: s.contract,
            });
        }
        if let Ok(s) = bulkhead_storage::decode::<StoredBeforeEmbeddingQuota>(bytes) {
            return Ok(TenantSettings {
                spec: s.spec,
                quotas: s.quotas.with_embedding(0),
                pinned: s.pinned,
                contract: s.contract,
            });
        }
        if let Ok(s) = bulkhead_storage::decode::<StoredBeforeContracts>(bytes) {
            return Ok(TenantSettings {
                spec: s.spec,
                quotas: s.quotas.with_embedding(0),
                pinned: s.pinned,
                contract: Contract::default(),
            });
        }
        Ok(TenantSettings {
            spec: bulkhead_storage::decode(bytes)?,
            quotas: Quotas::default(),
            pinned: false,
            contract: Contract::default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_decode_records_written_before_quotas() {
        let spec = TenantSpec::new(8, Metric::Dot);
        let old = bulkhead_storage::encode(&spec).unwrap();
        let settings = TenantSettings::decode(&old).unwrap();
        assert_eq!(settings.spec, spec);
        assert_eq!(settings.quotas, Quotas::default());
        assert_eq!(settings.contract, Contract::default());
        let new = TenantSettings {
            quotas: Quotas {
                max_points: 5,
                ..Quotas::default()
            },
            pinned: true,
            ..settings
        };
        assert_eq!(TenantSettings::decode(&new.encode().unwrap()).unwrap(), new);
        // A record written with quotas but before contracts.
        #[derive(Serialize)]
        struct Before<'a> {
            spec: &'a TenantSpec,
            quotas: (u64, u32, u32, u64),
            pinned: bool,
        }
        let before = bulkhead_storage::encode(&Before {
            spec: &new.spec,
            quotas: (5, 0, 0, 0),
            pinned: true,
        })
        .unwrap();
        let decoded = TenantSettings::decode(&before).unwrap();
        assert_eq!((decoded.quotas, decoded.pinned), (new.quotas, true));
        assert_eq!(decoded.contract, Contract::default());
        // A record written with a contract, before the embedding quota.
        let contract = Contract {
            version: 3,
            ..Contract::default()
        };
        let before =
            bulkhead_storage::encode(&(&new.spec, (5u64, 7u32, 0u32, 9u64), false, &contract))
                .unwrap();
        let decoded = TenantSettings::decode(&before).unwrap();
        assert_eq!(decoded.contract, contract);
        assert_eq!(
            decoded.quotas,
            Quotas {
                max_points: 5,
                max_requests_per_second: 7,
                max_payload_bytes: 9,
                ..Quotas::default()
            }
        );
        // And today's records keep every quota.
        let today = TenantSettings {
            quotas: Quotas {
                max_embedding_tokens_per_minute: 60_000,
                ..new.quotas
            },
            contract,
            ..new
        };
        assert_eq!(
            TenantSettings::decode(&today.encode().unwrap()).unwrap(),
            today
        );
    }

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
