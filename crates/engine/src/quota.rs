//! Per-tenant quotas and the state that enforces them. A tenant's limits
//! live in its registry slot, so they outlast evictions: a tenant cannot
//! reset its request budget by going cold.
//!
//! Every refusal is `QuotaExceeded` (gRPC RESOURCE_EXHAUSTED) with a message
//! that names the quota and the caller's own usage, never anyone else's.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};

use super::error::{EngineError, Result};

/// A tenant's quotas; 0 means unlimited. Set at creation, changed by the
/// admin.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quotas {
    /// Live points the tenant may hold.
    pub max_points: u64,
    /// Data-plane requests per second (a token bucket holding one second's
    /// worth, so short bursts up to the rate pass).
    pub max_requests_per_second: u32,
    /// Searches in flight at once, queued or running.
    pub max_concurrent_searches: u32,
    /// Bytes of JSON payload the tenant's points may hold in total.
    pub max_payload_bytes: u64,
    /// Tokens the embedder may encode for the tenant per minute (texts of
    /// upserts, text queries and Embed; cache hits cost nothing). Charged
    /// after each call with the tokens the encoder ran; a call is refused
    /// while the minute's budget is spent.
    pub max_embedding_tokens_per_minute: u64,
}

/// How the first four quotas are stored in a tenant's record (quotas
/// added later are stored at the record's end: see `spec::Stored`).
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub(crate) struct StoredQuotas {
    max_points: u64,
    max_requests_per_second: u32,
    max_concurrent_searches: u32,
    max_payload_bytes: u64,
}

impl From<Quotas> for StoredQuotas {
    fn from(q: Quotas) -> StoredQuotas {
        StoredQuotas {
            max_points: q.max_points,
            max_requests_per_second: q.max_requests_per_second,
            max_concurrent_searches: q.max_concurrent_searches,
            max_payload_bytes: q.max_payload_bytes,
        }
    }
}

impl StoredQuotas {
    pub(crate) fn with_embedding(self, max_embedding_tokens_per_minute: u64) -> Quotas {
        Quotas {
            max_points: self.max_points,
            max_requests_per_second: self.max_requests_per_second,
            max_concurrent_searches: self.max_concurrent_searches,
            max_payload_bytes: self.max_payload_bytes,
            max_embedding_tokens_per_minute,
        }
    }
}

/// The live side of a tenant's quotas, shared by every load of the tenant.
#[derive(Debug)]
pub(crate) struct Limits {
    quotas: RwLock<Quotas>,
    bucket: Mutex<Bucket>,
    /// Embedding tokens left of the last minute's budget; below zero after
    /// a call that took more than was left (the call ran, the next waits).
    tokens: Mutex<Bucket>,
    searches: AtomicU32,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    refilled: Instant,
}

impl Bucket {
    /// Adds what `per_second` refills since the last call, holding at most
    /// `capacity`, and says what the bucket holds now.
    fn refill(&mut self, per_second: f64, capacity: f64) -> f64 {
        let now = Instant::now();
        let elapsed = now.duration_since(self.refilled).as_secs_f64();
        self.tokens = (self.tokens + elapsed * per_second).min(capacity);
        self.refilled = now;
        self.tokens
    }
}

/// A search counted against `max_concurrent_searches` until dropped.
#[derive(Debug)]
pub struct SearchPermit {
    limits: Arc<Limits>,
}

impl Drop for SearchPermit {
    fn drop(&mut self) {
        self.limits.searches.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Limits {
    pub(crate) fn new(quotas: Quotas) -> Arc<Limits> {
        Arc::new(Limits {
            quotas: RwLock::new(quotas),
            bucket: Mutex::new(Bucket {
                tokens: f64::from(quotas.max_requests_per_second),
                refilled: Instant::now(),
            }),
            tokens: Mutex::new(Bucket {
                tokens: quotas.max_embedding_tokens_per_minute as f64,
                refilled: Instant::now(),
            }),
            searches: AtomicU32::new(0),
        })
    }

    pub(crate) fn quotas(&self) -> Quotas {
        *self.quotas.read()
    }

    pub(crate) fn set(&self, quotas: Quotas) {
        *self.quotas.write() = quotas;
        let mut bucket = self.bucket.lock();
        bucket.tokens = bucket.tokens.min(f64::from(quotas.max_requests_per_second));
        let mut tokens = self.tokens.lock();
        tokens.tokens = tokens
            .tokens
            .min(quotas.max_embedding_tokens_per_minute as f64);
    }

    /// Refuses a call to the embedder while the tenant's embedding budget
    /// of the last minute is spent.
    pub(crate) fn check_embedding(&self) -> Result<()> {
        let per_minute = self.quotas.read().max_embedding_tokens_per_minute;
        if per_minute == 0 {
            return Ok(());
        }
        let per_minute = per_minute as f64;
        let left = self.tokens.lock().refill(per_minute / 60.0, per_minute);
        if left <= 0.0 {
            let wait = (1.0 - left) * 60.0 / per_minute;
            return Err(EngineError::QuotaExceeded(format!(
                "quota max_embedding_tokens_per_minute ({per_minute}) used up: this tenant's texts took its tokens of the last minute; retry in {:.0} s",
                wait.ceil().max(1.0)
            )));
        }
        Ok(())
    }

    /// Charges the tokens an embedder call ran.
    pub(crate) fn charge_embedding(&self, tokens: u64) {
        let per_minute = self.quotas.read().max_embedding_tokens_per_minute;
        if per_minute == 0 || tokens == 0 {
            return;
        }
        let per_minute = per_minute as f64;
        let mut bucket = self.tokens.lock();
        bucket.refill(per_minute / 60.0, per_minute);
        bucket.tokens -= tokens as f64;
    }

    /// Takes one request from the rate budget.
    pub(crate) fn admit_request(&self) -> Result<()> {
        let rate = self.quotas.read().max_requests_per_second;
        if rate == 0 {
            return Ok(());
        }
        let rate = f64::from(rate);
        let mut bucket = self.bucket.lock();
        if bucket.refill(rate, rate) < 1.0 {
            return Err(EngineError::QuotaExceeded(format!(
                "quota max_requests_per_second ({rate}) exceeded; retry after a short wait"
            )));
        }
        bucket.tokens -= 1.0;
        Ok(())
    }

    /// Counts one more search in flight, or refuses it at the limit.
    pub(crate) fn begin_search(self: &Arc<Self>) -> Result<SearchPermit> {
        let max = self.quotas.read().max_concurrent_searches;
        let before = self.searches.fetch_add(1, Ordering::AcqRel);
        let permit = SearchPermit {
            limits: Arc::clone(self),
        };
        if max != 0 && before >= max {
            drop(permit);
            return Err(EngineError::QuotaExceeded(format!(
                "quota max_concurrent_searches ({max}) reached: this tenant already has {before} searches in flight; wait for one to finish"
            )));
        }
        Ok(permit)
    }

    /// Checks that a batch leaves the tenant within its point and payload
    /// quotas: `points` and `payload_bytes` are the totals after it.
    pub(crate) fn check_size(
        &self,
        points_before: u64,
        points: u64,
        payload_before: u64,
        payload_bytes: u64,
    ) -> Result<()> {
        let q = self.quotas();
        if q.max_points != 0 && points > q.max_points && points > points_before {
            return Err(EngineError::QuotaExceeded(format!(
                "quota max_points ({}) exceeded: the tenant holds {points_before} points and this batch would make it {points}; nothing in this batch was written",
                q.max_points
            )));
        }
        if q.max_payload_bytes != 0
            && payload_bytes > q.max_payload_bytes
            && payload_bytes > payload_before
        {
            return Err(EngineError::QuotaExceeded(format!(
                "quota max_payload_bytes ({}) exceeded: the tenant's payloads take {payload_before} bytes and this batch would make it {payload_bytes}; nothing in this batch was written",
                q.max_payload_bytes
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_bucket_passes_a_second_worth_then_refuses() {
        let limits = Limits::new(Quotas {
            max_requests_per_second: 5,
            ..Quotas::default()
        });
        for _ in 0..5 {
            limits.admit_request().unwrap();
        }
        let err = limits.admit_request().unwrap_err().to_string();
        assert!(err.contains("max_requests_per_second (5)"), "{err}");
        // Unlimited again: everything passes.
        limits.set(Quotas::default());
        for _ in 0..1_000 {
            limits.admit_request().unwrap();
        }
    }

    #[test]
    fn embedding_tokens_are_charged_after_and_refused_while_spent() {
        let limits = Limits::new(Quotas {
            max_embedding_tokens_per_minute: 600,
            ..Quotas::default()
        });
        limits.check_embedding().unwrap();
        // One call may take more than is left: it ran, the next waits.
        limits.charge_embedding(1_000);
        let err = limits.check_embedding().unwrap_err().to_string();
        assert!(
            err.contains("max_embedding_tokens_per_minute (600)") && err.contains("retry in"),
            "{err}"
        );
        limits.set(Quotas::default());
        limits.check_embedding().unwrap();
    }

    #[test]
    fn concurrent_searches_are_counted_until_their_permits_drop() {
        let limits = Limits::new(Quotas {
            max_concurrent_searches: 2,
            ..Quotas::default()
        });
        let a = limits.begin_search().unwrap();
        let _b = limits.begin_search().unwrap();
        let err = limits.begin_search().unwrap_err().to_string();
        assert!(err.contains("max_concurrent_searches (2)"), "{err}");
        drop(a);
        limits.begin_search().unwrap();
    }

    #[test]
    fn a_batch_that_shrinks_an_over_quota_tenant_is_allowed() {
        let limits = Limits::new(Quotas {
            max_points: 10,
            max_payload_bytes: 100,
            ..Quotas::default()
        });
        limits.check_size(0, 10, 0, 100).unwrap();
        assert!(limits.check_size(10, 11, 0, 0).is_err());
        assert!(limits.check_size(0, 0, 100, 101).is_err());
        // Lowered below the current size: replacing points with smaller
        // ones still works.
        limits.check_size(20, 20, 300, 200).unwrap();
    }
}
