//! Each tenant's access log: who called its data plane, when, with what
//! outcome, never what the call held. Entries live in the tenant's own
//! column family (so they are erased with it and never beside another
//! tenant's), one per (minute window, token, RPC, code) with the calls and
//! items it counts, kept for `access_log_retention_days`. Calls are
//! gathered in memory and written once a window closes (the server
//! flushes every second, closing windows a minute old; a read flushes the
//! tenant's first; `close` flushes all): a crash loses at most the last
//! minute of the log, never a point.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use bulkhead_storage::AccessCursor;
use parking_lot::Mutex;

use super::entry::TenantEntry;
use super::{Access, Registry, now_unix_ms};
use crate::error::{EngineError, Result};

/// How long one entry gathers calls.
pub const ACCESS_WINDOW_MS: u64 = 60_000;
/// Most entries one read returns.
pub const MAX_ACCESS_PAGE: usize = 1_000;

/// One entry of a tenant's access log: calls of one token (`token_id`,
/// the 16 hex digits of `bht_<id>_...`) to one RPC with one outcome within
/// a window, with the points, hits, ids or texts they touched. Stored as
/// it is.
pub use bulkhead_storage::AccessRecord as AccessEntry;

/// A page of the log and where the next one starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessPage {
    pub entries: Vec<AccessEntry>,
    /// After the page's last entry (None when the page is empty): read
    /// again from it for the rest, or later for what came since.
    pub next: Option<AccessCursor>,
}

/// (token id, RPC, code) within one tenant's pending calls.
type Key = (u64, &'static str, &'static str);

/// Calls not yet written, by tenant incarnation.
#[derive(Debug, Default)]
pub(super) struct AccessBuffer {
    pending: Mutex<HashMap<u64, HashMap<Key, AccessEntry>>>,
    /// Makes every written key unique.
    sequence: AtomicU64,
}

impl Registry {
    /// Notes one call a token (by its id, the 16 hex digits of
    /// `bht_<id>_...` as a number) was admitted with to the tenant `key`
    /// (its incarnation, [`Access::key`]).
    pub fn note_access(
        &self,
        key: u64,
        token_id: u64,
        rpc: &'static str,
        code: &'static str,
        items: u64,
    ) {
        let now = now_unix_ms();
        let mut pending = self.access_log.pending.lock();
        let entry = pending
            .entry(key)
            .or_default()
            .entry((token_id, rpc, code))
            .or_insert_with(|| AccessEntry {
                first_unix_ms: now,
                last_unix_ms: now,
                token_id: format!("{token_id:016x}"),
                rpc: rpc.to_string(),
                code: code.to_string(),
                calls: 0,
                items: 0,
            });
        entry.last_unix_ms = now;
        entry.calls += 1;
        entry.items += items;
    }

    /// Writes the entries whose window has closed (all of them with
    /// `everything`). Entries of a tenant dropped meanwhile are discarded;
    /// a tenant whose write fails keeps its entries for the next flush, and
    /// the others are written regardless (the first error is returned).
    pub fn flush_access_log(&self, everything: bool) -> Result<()> {
        // Held from taking the entries to writing them: a drop cannot
        // remove the column family in between, and a read of the log
        // (which takes the same lock) never passes entries still on
        // their way, so a cursor never skips one.
        let _lifecycle = self.lifecycle.lock();
        let now = now_unix_ms();
        let due: Vec<(u64, Vec<(Key, AccessEntry)>)> = {
            let mut pending = self.access_log.pending.lock();
            let mut due = Vec::new();
            for (key, entries) in pending.iter_mut() {
                let closed: Vec<Key> = entries
                    .iter()
                    .filter(|(_, e)| everything || now >= e.first_unix_ms + ACCESS_WINDOW_MS)
                    .map(|(k, _)| *k)
                    .collect();
                let written: Vec<(Key, AccessEntry)> = closed
                    .into_iter()
                    .filter_map(|k| entries.remove(&k).map(|e| (k, e)))
                    .collect();
                if !written.is_empty() {
                    due.push((*key, written));
                }
            }
            pending.retain(|_, entries| !entries.is_empty());
            due
        };
        if due.is_empty() {
            return Ok(());
        }
        let by_incarnation: HashMap<u64, std::sync::Arc<TenantEntry>> = self
            .tenants
            .read()
            .values()
            .map(|entry| (entry.record.incarnation, std::sync::Arc::clone(entry)))
            .collect();
        let mut first_error = None;
        for (key, entries) in due {
            let Some(entry) = by_incarnation.get(&key) else {
                continue;
            };
            let records = entries.iter().map(|(_, e)| e.clone()).collect();
            if let Err(e) = self.write_access(entry, records, now) {
                // Back for the next flush (merged with what came since).
                let mut pending = self.access_log.pending.lock();
                let tenant = pending.entry(key).or_default();
                for (k, old) in entries {
                    match tenant.get_mut(&k) {
                        Some(newer) => {
                            newer.first_unix_ms = old.first_unix_ms;
                            newer.calls += old.calls;
                            newer.items += old.items;
                        }
                        None => {
                            tenant.insert(k, old);
                        }
                    }
                }
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    fn write_access(
        &self,
        entry: &TenantEntry,
        mut entries: Vec<AccessEntry>,
        now: u64,
    ) -> Result<()> {
        // In time order, so that entries of one millisecond keep it.
        entries.sort_by_key(|e| (e.first_unix_ms, e.last_unix_ms));
        let retention = self
            .config
            .access_log_retention_days
            .saturating_mul(24 * 3_600_000);
        let records: Vec<(AccessCursor, AccessEntry)> = entries
            .into_iter()
            .map(|e| {
                let seq = self.access_log.sequence.fetch_add(1, Ordering::Relaxed);
                ((e.first_unix_ms, seq), e)
            })
            .collect();
        let store = self.storage.open_tenant(&entry.record)?;
        store.append_access(&records, now.saturating_sub(retention))?;
        Ok(())
    }

    /// A page of the tenant's own log, oldest first, from `after` (or from
    /// `since_unix_ms`). Its pending calls are written first.
    pub fn access_log(
        &self,
        access: &Access,
        after: Option<AccessCursor>,
        since_unix_ms: u64,
        limit: usize,
    ) -> Result<AccessPage> {
        self.read_access(&access.entry, after, since_unix_ms, limit)
    }

    /// A tenant's log, for the admin plane.
    pub fn tenant_access_log(
        &self,
        name: &str,
        after: Option<AccessCursor>,
        since_unix_ms: u64,
        limit: usize,
    ) -> Result<AccessPage> {
        let entry = self.entry(name)?;
        self.read_access(&entry, after, since_unix_ms, limit)
    }

    fn read_access(
        &self,
        entry: &TenantEntry,
        after: Option<AccessCursor>,
        since_unix_ms: u64,
        limit: usize,
    ) -> Result<AccessPage> {
        if limit == 0 || limit > MAX_ACCESS_PAGE {
            return Err(EngineError::InvalidArgument(format!(
                "limit must be 1 to {MAX_ACCESS_PAGE}"
            )));
        }
        let key = entry.record.incarnation;
        // As a flush: entries are taken and written under the lock, so no
        // entry older than this read's cursor is still on its way.
        let _lifecycle = self.lifecycle.lock();
        let pending = self.access_log.pending.lock().remove(&key);
        if let Some(pending) = pending {
            self.write_access(entry, pending.into_values().collect(), now_unix_ms())?;
        }
        let store = self.storage.open_tenant(&entry.record)?;
        let after = after.or_else(|| since_unix_ms.checked_sub(1).map(|t| (t, u64::MAX)));
        let page = store.access_log(after, limit)?;
        // The last entry's place, on every page that has one: a reader at
        // the end keeps it and asks again later for what came since.
        let next = page.last().map(|(at, _)| *at);
        Ok(AccessPage {
            entries: page.into_iter().map(|(_, entry)| entry).collect(),
            next,
        })
    }
}
