//! The embedding cache: keyed by tenant, model and text, so one tenant's
//! entry can never answer another; bounded by bytes, least recently used
//! out first; hit and miss counters per tenant.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    tenant: String,
    model: String,
    text: String,
}

impl Key {
    fn bytes(&self, vector: &[f32]) -> usize {
        // The strings, the vector, and a rough allowance for the maps.
        self.tenant.len() + self.model.len() + self.text.len() + std::mem::size_of_val(vector) + 96
    }
}

/// One tenant's cache counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheCounters {
    pub hits: u64,
    pub misses: u64,
}

#[derive(Debug, Default)]
struct Inner {
    entries: HashMap<Key, (Arc<[f32]>, u64)>,
    recency: BTreeMap<u64, Key>,
    clock: u64,
    bytes: usize,
    counters: HashMap<String, CacheCounters>,
}

#[derive(Debug)]
pub struct EmbeddingCache {
    capacity_bytes: usize,
    inner: Mutex<Inner>,
}

impl EmbeddingCache {
    pub fn new(capacity_bytes: usize) -> Self {
        EmbeddingCache {
            capacity_bytes,
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The cached vector of `text` for this tenant and model; counts a hit
    /// or a miss for the tenant.
    pub fn get(&self, tenant: &str, model: &str, text: &str) -> Option<Arc<[f32]>> {
        let key = Key {
            tenant: tenant.into(),
            model: model.into(),
            text: text.into(),
        };
        let mut inner = self.lock();
        inner.clock += 1;
        let now = inner.clock;
        let found = match inner.entries.get_mut(&key) {
            Some((vector, stamp)) => {
                let old = std::mem::replace(stamp, now);
                Some((Arc::clone(vector), old))
            }
            None => None,
        };
        let counters = inner.counters.entry(key.tenant.clone()).or_default();
        match found {
            Some((vector, old)) => {
                counters.hits += 1;
                inner.recency.remove(&old);
                inner.recency.insert(now, key);
                Some(vector)
            }
            None => {
                counters.misses += 1;
                None
            }
        }
    }

    pub fn put(&self, tenant: &str, model: &str, text: &str, vector: Arc<[f32]>) {
        let key = Key {
            tenant: tenant.into(),
            model: model.into(),
            text: text.into(),
        };
        let size = key.bytes(&vector);
        if size > self.capacity_bytes {
            return;
        }
        let mut inner = self.lock();
        inner.clock += 1;
        let now = inner.clock;
        if let Some((old_vector, old_stamp)) = inner.entries.remove(&key) {
            inner.recency.remove(&old_stamp);
            inner.bytes -= key.bytes(&old_vector);
        }
        while inner.bytes + size > self.capacity_bytes {
            let Some((_, victim)) = inner.recency.pop_first() else {
                break;
            };
            if let Some((v, _)) = inner.entries.remove(&victim) {
                inner.bytes -= victim.bytes(&v);
            }
        }
        inner.bytes += size;
        inner.recency.insert(now, key.clone());
        inner.entries.insert(key, (vector, now));
    }

    /// One tenant's counters (zero for a tenant never seen).
    pub fn counters(&self, tenant: &str) -> CacheCounters {
        self.lock()
            .counters
            .get(tenant)
            .copied()
            .unwrap_or_default()
    }

    /// Bytes in use.
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }

    /// Forgets every entry and counter of a tenant (the tenant was dropped).
    pub fn forget_tenant(&self, tenant: &str) {
        let mut inner = self.lock();
        let keys: Vec<Key> = inner
            .entries
            .keys()
            .filter(|k| k.tenant == tenant)
            .cloned()
            .collect();
        for key in keys {
            if let Some((v, stamp)) = inner.entries.remove(&key) {
                inner.recency.remove(&stamp);
                inner.bytes -= key.bytes(&v);
            }
        }
        inner.counters.remove(tenant);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(x: f32) -> Arc<[f32]> {
        vec![x; 4].into()
    }

    #[test]
    fn entries_are_per_tenant_and_counted_per_tenant() {
        let cache = EmbeddingCache::new(1 << 20);
        assert!(cache.get("a", "m", "hello").is_none());
        cache.put("a", "m", "hello", v(1.0));
        assert_eq!(
            cache.get("a", "m", "hello").as_deref(),
            Some(&[1.0f32; 4][..])
        );
        assert!(
            cache.get("b", "m", "hello").is_none(),
            "a's entry never answers b"
        );
        assert!(cache.get("a", "other", "hello").is_none());
        assert_eq!(cache.counters("a"), CacheCounters { hits: 1, misses: 2 });
        assert_eq!(cache.counters("b"), CacheCounters { hits: 0, misses: 1 });
        cache.forget_tenant("a");
        assert!(cache.get("a", "m", "hello").is_none());
        assert_eq!(cache.counters("a"), CacheCounters { hits: 0, misses: 1 });
    }

    #[test]
    fn least_recently_used_goes_first_within_the_byte_bound() {
        let one = Key {
            tenant: "t".into(),
            model: "m".into(),
            text: "x0".into(),
        }
        .bytes(&v(0.0));
        let cache = EmbeddingCache::new(3 * one);
        for i in 0..3 {
            cache.put("t", "m", &format!("x{i}"), v(i as f32));
        }
        assert!(cache.get("t", "m", "x0").is_some()); // x0 is now the most recent
        cache.put("t", "m", "x3", v(3.0));
        assert!(
            cache.get("t", "m", "x1").is_none(),
            "x1 was least recently used"
        );
        assert!(cache.get("t", "m", "x0").is_some());
        assert!(cache.bytes() <= 3 * one);
    }
}
