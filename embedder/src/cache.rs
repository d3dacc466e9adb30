//! The embedding cache: keyed by tenant, model and text, so one tenant's
//! entry can never answer another; hit and miss counters per tenant.
//!
//! Its capacity is partitioned: each tenant's entries live in the tenant's
//! own least-recently-used partition, bounded by the tenant's share, and a
//! tenant's new entry evicts only that tenant's older ones, so another
//! tenant's traffic cannot push out an active tenant's entries entry by
//! entry. The node's total bound holds `capacity / share` full shares;
//! past it, the partition idle longest goes as a whole, like a tenant that
//! goes cold in the engine's memory budget. That is still a coarse signal:
//! a tenant idle long enough to lose its partition learns that others
//! were busy meanwhile (as a tenant's cold load does).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    model: String,
    text: String,
}

/// An entry's size: its key, the tenant's name, its vector, and a rough
/// allowance for the maps.
fn entry_bytes(tenant: &str, key: &Key, vector: &[f32]) -> usize {
    tenant.len() + key.model.len() + key.text.len() + std::mem::size_of_val(vector) + 96
}

/// One tenant's cache counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheCounters {
    pub hits: u64,
    pub misses: u64,
}

/// One tenant's entries, least recently used first in `recency`.
#[derive(Debug, Default)]
struct Partition {
    entries: HashMap<Key, (Arc<[f32]>, u64)>,
    recency: BTreeMap<u64, Key>,
    bytes: usize,
    /// When the tenant last used the cache (its key in `Inner::idle`).
    used: u64,
}

#[derive(Debug, Default)]
struct Inner {
    partitions: HashMap<String, Partition>,
    /// Tenants with entries, by when they last used the cache.
    idle: BTreeMap<u64, String>,
    clock: u64,
    bytes: usize,
    counters: HashMap<String, CacheCounters>,
}

impl Inner {
    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    /// Marks `tenant`'s partition used now.
    fn touch(&mut self, tenant: &str, now: u64) {
        if let Some(partition) = self.partitions.get_mut(tenant) {
            self.idle.remove(&partition.used);
            partition.used = now;
            self.idle.insert(now, tenant.to_string());
        }
    }

    fn drop_partition(&mut self, tenant: &str) {
        if let Some(partition) = self.partitions.remove(tenant) {
            self.idle.remove(&partition.used);
            self.bytes -= partition.bytes;
        }
    }
}

#[derive(Debug)]
pub struct EmbeddingCache {
    capacity_bytes: usize,
    tenant_bytes: usize,
    inner: Mutex<Inner>,
}

impl EmbeddingCache {
    /// A cache of `capacity_bytes` in which one tenant may take all of it.
    pub fn new(capacity_bytes: usize) -> Self {
        Self::with_tenant_share(capacity_bytes, capacity_bytes)
    }

    /// A cache of `capacity_bytes` in which each tenant's entries take at
    /// most `tenant_bytes`.
    pub fn with_tenant_share(capacity_bytes: usize, tenant_bytes: usize) -> Self {
        EmbeddingCache {
            capacity_bytes,
            tenant_bytes: tenant_bytes.min(capacity_bytes),
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
            model: model.into(),
            text: text.into(),
        };
        let mut inner = self.lock();
        let now = inner.tick();
        let found = inner.partitions.get_mut(tenant).and_then(|partition| {
            let (vector, stamp) = partition.entries.get_mut(&key)?;
            let old = std::mem::replace(stamp, now);
            let vector = Arc::clone(vector);
            partition.recency.remove(&old);
            partition.recency.insert(now, key);
            Some(vector)
        });
        let counters = inner.counters.entry(tenant.to_string()).or_default();
        if found.is_some() {
            counters.hits += 1;
            inner.touch(tenant, now);
        } else {
            counters.misses += 1;
        }
        found
    }

    pub fn put(&self, tenant: &str, model: &str, text: &str, vector: Arc<[f32]>) {
        let key = Key {
            model: model.into(),
            text: text.into(),
        };
        let size = entry_bytes(tenant, &key, &vector);
        if size > self.tenant_bytes {
            return;
        }
        let mut inner = self.lock();
        let now = inner.tick();
        let inner = &mut *inner;
        // Room in the tenant's own share, made from its own entries.
        let mut freed = 0;
        let partition = inner.partitions.entry(tenant.to_string()).or_default();
        if let Some((old, stamp)) = partition.entries.remove(&key) {
            partition.recency.remove(&stamp);
            freed += entry_bytes(tenant, &key, &old);
        }
        while partition.bytes - freed + size > self.tenant_bytes {
            let Some((_, victim)) = partition.recency.pop_first() else {
                break;
            };
            if let Some((v, _)) = partition.entries.remove(&victim) {
                freed += entry_bytes(tenant, &victim, &v);
            }
        }
        partition.bytes -= freed;
        partition.bytes += size;
        partition.recency.insert(now, key.clone());
        partition.entries.insert(key, (vector, now));
        inner.bytes = inner.bytes - freed + size;
        let was_new = partition.used == 0;
        if was_new {
            partition.used = now;
            inner.idle.insert(now, tenant.to_string());
        } else {
            inner.touch(tenant, now);
        }
        // Room in the node's total, made by the partitions idle longest.
        while inner.bytes > self.capacity_bytes {
            let Some(victim) = inner.idle.values().find(|t| *t != tenant).cloned() else {
                break;
            };
            inner.drop_partition(&victim);
        }
    }

    /// One tenant's counters (zero for a tenant never seen).
    pub fn counters(&self, tenant: &str) -> CacheCounters {
        self.lock()
            .counters
            .get(tenant)
            .copied()
            .unwrap_or_default()
    }

    /// Bytes in use, all tenants together.
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }

    /// Forgets every entry and counter of a tenant (the tenant was dropped).
    pub fn forget_tenant(&self, tenant: &str) {
        let mut inner = self.lock();
        inner.drop_partition(tenant);
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
        let one = entry_bytes(
            "t",
            &Key {
                model: "m".into(),
                text: "x0".into(),
            },
            &v(0.0),
        );
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

    #[test]
    fn a_tenant_entries_make_room_only_for_its_own() {
        let one = entry_bytes(
            "a",
            &Key {
                model: "m".into(),
                text: "x00".into(),
            },
            &v(0.0),
        );
        // Room for 3 entries per tenant, 6 in all.
        let cache = EmbeddingCache::with_tenant_share(6 * one, 3 * one);
        cache.put("b", "m", "y00", v(9.0));
        for i in 0..50 {
            cache.put("a", "m", &format!("x{i:02}"), v(i as f32));
            assert!(cache.lock().partitions["a"].bytes <= 3 * one);
        }
        assert!(
            cache.get("b", "m", "y00").is_some(),
            "a's traffic evicted b's entry"
        );
        assert!(cache.get("a", "m", "x49").is_some());
        assert!(
            cache.get("a", "m", "x46").is_none(),
            "a's share is 3 entries"
        );
        assert_eq!(cache.bytes(), 4 * one);
    }

    #[test]
    fn past_the_total_the_partition_idle_longest_goes_whole() {
        let one = entry_bytes(
            "a",
            &Key {
                model: "m".into(),
                text: "x0".into(),
            },
            &v(0.0),
        );
        let cache = EmbeddingCache::with_tenant_share(4 * one, 2 * one);
        for t in ["a", "b"] {
            cache.put(t, "m", "x0", v(0.0));
            cache.put(t, "m", "x1", v(1.0));
        }
        assert!(cache.get("a", "m", "x0").is_some()); // b is now idle longest
        cache.put("c", "m", "x0", v(2.0));
        assert!(cache.get("b", "m", "x1").is_none(), "b's partition went");
        assert!(cache.get("b", "m", "x0").is_none());
        assert!(cache.get("a", "m", "x1").is_some(), "a's stayed whole");
        assert!(cache.get("c", "m", "x0").is_some());
        assert!(cache.bytes() <= 4 * one);
        cache.forget_tenant("a");
        assert_eq!(cache.bytes(), one);
    }
}
