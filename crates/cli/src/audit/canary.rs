//! The canary tenants: unique vectors, payloads and texts whose every
//! appearance elsewhere is a leak.

use bulkhead_client::{Condition, Filter, TenantClient};
use serde_json::{Map, Value};

use super::{DIMENSION, Fallible};

/// A canary tenant: its client, its secret marker and its points.
pub(super) struct Canary {
    pub(super) name: String,
    pub(super) class: String,
    pub(super) token: String,
    pub(super) secret: String,
    pub(super) client: TenantClient,
    pub(super) ids: Vec<String>,
    pub(super) vectors: Vec<Vec<f32>>,
    pub(super) texts: Vec<String>,
}

/// splitmix64: canary vectors need to be unique, not cryptographic.
pub(super) struct SplitMix64(pub(super) u64);

impl SplitMix64 {
    pub(super) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub(super) fn vector(&mut self) -> Vec<f32> {
        (0..DIMENSION)
            .map(|_| (self.next() >> 40) as f32 / (1u64 << 24) as f32 - 0.5)
            .collect()
    }
}

pub(super) fn random_u64() -> Fallible<u64> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).map_err(|e| format!("no randomness: {e}"))?;
    Ok(u64::from_le_bytes(bytes))
}

pub(super) fn canary_filter(secret: &str) -> Filter {
    Filter::must([Condition::matches("canary", secret)])
}

/// Whether `text` mentions the canary (its name or its secret).
pub(super) fn mentions(text: &str, c: &Canary) -> bool {
    text.contains(&c.name) || text.contains(&c.secret)
}

impl Canary {
    /// Whether a point the prober saw is this canary's: its id, or its
    /// secret anywhere in the payload.
    pub(super) fn owns(&self, id: &str, payload: &Option<Map<String, Value>>) -> bool {
        let payload = serde_json::to_string(payload).unwrap_or_default();
        self.ids.iter().any(|own| own == id) || payload.contains(&self.secret)
    }
}
