//! One tenant's column family and folder. Every method touches exactly one
//! tenant: there is no way to name another one from a `TenantStore`.

use std::path::PathBuf;
use std::sync::Arc;

use rocksdb::{Direction, IteratorMode, WriteBatch, WriteOptions};
use serde::{Deserialize, Serialize};

use crate::codec::{decode, encode};
use crate::error::{Result, StorageError};
use crate::faults::FaultInjector;
use crate::graph_snapshot::GraphSnapshot;
use crate::layout::column_family;
use crate::shelf::Shelf;

/// A point as stored: its graph id, its vector and its payload (JSON text).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredPoint {
    pub internal_id: u64,
    pub vector: Vec<f32>,
    pub payload: Vec<u8>,
}

/// One change of a write batch. A put replaces the point's text too: a put
/// without text removes any text the point had.
#[derive(Debug, Clone)]
pub enum PointWrite {
    Put {
        id: String,
        point: StoredPoint,
        text: Option<String>,
    },
    Delete {
        id: String,
    },
}

/// Data-plane calls in the tenant's access log: who (the token's id),
/// what (the RPC, its outcome, how many calls and items), when. Never the
/// content of a call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessRecord {
    /// The first and the last call the record counts (Unix ms).
    pub first_unix_ms: u64,
    pub last_unix_ms: u64,
    pub token_id: String,
    pub rpc: String,
    /// The gRPC code, as the protocol spells it ("OK", "INVALID_ARGUMENT").
    pub code: String,
    pub calls: u64,
    pub items: u64,
}

/// Where a page of the access log starts: after this (time, sequence).
pub type AccessCursor = (u64, u64);

/// Keys of a tenant's column family.
const POINT_PREFIX: u8 = b'p';
/// Access log entries: the prefix, the time (ms, big-endian) and a
/// sequence number, so they sort by time.
const ACCESS_PREFIX: u8 = b'a';

fn access_key((time_ms, seq): AccessCursor) -> [u8; 17] {
    let mut key = [0u8; 17];
    key[0] = ACCESS_PREFIX;
    key[1..9].copy_from_slice(&time_ms.to_be_bytes());
    key[9..].copy_from_slice(&seq.to_be_bytes());
    key
}
/// The point's text (the document it embeds), apart from the point record so
/// that vectors and payloads load without it.
const TEXT_PREFIX: u8 = b't';
const NEXT_INTERNAL_ID: &[u8] = b"n";

fn key(prefix: u8, id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(id.len() + 1);
    key.push(prefix);
    key.extend_from_slice(id.as_bytes());
    key
}

fn point_key(id: &str) -> Vec<u8> {
    key(POINT_PREFIX, id)
}

fn text_key(id: &str) -> Vec<u8> {
    key(TEXT_PREFIX, id)
}

/// Handle to one tenant's column family on its shelf and to its folder.
#[derive(Clone)]
pub struct TenantStore {
    shelf: Arc<Shelf>,
    incarnation: u64,
    cf: String,
    dir: PathBuf,
    faults: Option<Arc<FaultInjector>>,
}

impl std::fmt::Debug for TenantStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantStore")
            .field("incarnation", &self.incarnation)
            .field("shelf", &self.shelf.id)
            .finish()
    }
}

impl TenantStore {
    pub(crate) fn new(
        shelf: Arc<Shelf>,
        incarnation: u64,
        dir: PathBuf,
        faults: Option<Arc<FaultInjector>>,
    ) -> Self {
        TenantStore {
            shelf,
            incarnation,
            cf: column_family(incarnation),
            dir,
            faults,
        }
    }

    pub fn incarnation(&self) -> u64 {
        self.incarnation
    }

    fn with_cf<T>(
        &self,
        f: impl FnOnce(&Arc<rocksdb::BoundColumnFamily<'_>>) -> Result<T>,
    ) -> Result<T> {
        let cf = self
            .shelf
            .db
            .cf_handle(&self.cf)
            .ok_or(StorageError::Gone)?;
        f(&cf)
    }

    /// Applies `writes` and records `next_internal_id` atomically. Returns
    /// only once the batch is in the synced WAL: concurrent writers on the
    /// shelf join one RocksDB write group and share its fsync.
    pub fn commit(&self, writes: &[PointWrite], next_internal_id: u64) -> Result<()> {
        self.with_cf(|cf| {
            let mut batch = WriteBatch::default();
            for write in writes {
                match write {
                    PointWrite::Put { id, point, text } => {
                        batch.put_cf(cf, point_key(id), encode(point)?);
                        match text {
                            Some(text) => batch.put_cf(cf, text_key(id), text.as_bytes()),
                            None => batch.delete_cf(cf, text_key(id)),
                        }
                    }
                    PointWrite::Delete { id } => {
                        batch.delete_cf(cf, point_key(id));
                        batch.delete_cf(cf, text_key(id));
                    }
                }
            }
            batch.put_cf(cf, NEXT_INTERNAL_ID, next_internal_id.to_be_bytes());
            let mut sync = WriteOptions::default();
            sync.set_sync(true);
            crate::faults::check(self.faults.as_ref(), "tenant commit")?;
            self.shelf.db.write_opt(batch, &sync)?;
            Ok(())
        })
    }

    /// The smallest internal id never handed out (0 for a new tenant).
    pub fn next_internal_id(&self) -> Result<u64> {
        self.with_cf(
            |cf| match self.shelf.db.get_pinned_cf(cf, NEXT_INTERNAL_ID)? {
                None => Ok(0),
                Some(v) => {
                    let raw: [u8; 8] = v[..].try_into().map_err(|_| {
                        StorageError::Corrupt("next internal id is not 8 bytes".into())
                    })?;
                    Ok(u64::from_be_bytes(raw))
                }
            },
        )
    }

    pub fn get(&self, id: &str) -> Result<Option<StoredPoint>> {
        self.with_cf(|cf| match self.shelf.db.get_pinned_cf(cf, point_key(id))? {
            None => Ok(None),
            Some(v) => Ok(Some(decode(&v)?)),
        })
    }

    /// The point's text, if it has one.
    pub fn text(&self, id: &str) -> Result<Option<String>> {
        self.with_cf(|cf| match self.shelf.db.get_pinned_cf(cf, text_key(id))? {
            None => Ok(None),
            Some(v) => String::from_utf8(v.to_vec())
                .map(Some)
                .map_err(|_| StorageError::Corrupt("point text is not UTF-8".into())),
        })
    }

    /// Calls `f` for every stored point, in id order.
    pub fn for_each_point(&self, mut f: impl FnMut(String, StoredPoint)) -> Result<()> {
        self.with_cf(|cf| {
            let start = [POINT_PREFIX];
            let iter = self
                .shelf
                .db
                .iterator_cf(cf, IteratorMode::From(&start, Direction::Forward));
            for item in iter {
                let (key, value) = item?;
                let Some((&POINT_PREFIX, id)) = key.split_first() else {
                    break;
                };
                let id = String::from_utf8(id.to_vec())
                    .map_err(|_| StorageError::Corrupt("point id is not UTF-8".into()))?;
                f(id, decode(&value)?);
            }
            Ok(())
        })
    }

    /// Appends access log entries, each with its (time, sequence) key, and
    /// removes the entries older than `keep_from_ms`. Written to the WAL
    /// without waiting for its fsync (the next synced write of the shelf
    /// carries them): a crash may lose the last moments of the log, never
    /// a point.
    pub fn append_access(
        &self,
        entries: &[(AccessCursor, AccessRecord)],
        keep_from_ms: u64,
    ) -> Result<()> {
        self.with_cf(|cf| {
            let mut batch = WriteBatch::default();
            // First: the range delete would also take the new entries.
            batch.delete_range_cf(cf, access_key((0, 0)), access_key((keep_from_ms, 0)));
            for (at, record) in entries {
                batch.put_cf(cf, access_key(*at), encode(record)?);
            }
            self.shelf.db.write(batch)?;
            Ok(())
        })
    }

    /// At most `limit` access log entries after `after` (from the start
    /// when None), oldest first, with their keys.
    pub fn access_log(
        &self,
        after: Option<AccessCursor>,
        limit: usize,
    ) -> Result<Vec<(AccessCursor, AccessRecord)>> {
        self.with_cf(|cf| {
            let start = match after {
                Some((time, seq)) => match seq.checked_add(1) {
                    Some(next) => access_key((time, next)),
                    None => access_key((time.saturating_add(1), 0)),
                },
                None => access_key((0, 0)),
            };
            let iter = self
                .shelf
                .db
                .iterator_cf(cf, IteratorMode::From(&start, Direction::Forward));
            let mut page = Vec::new();
            for item in iter {
                if page.len() >= limit {
                    break;
                }
                let (key, value) = item?;
                if key.len() != 17 || key[0] != ACCESS_PREFIX {
                    break;
                }
                let time = u64::from_be_bytes(key[1..9].try_into().unwrap_or_default());
                let seq = u64::from_be_bytes(key[9..17].try_into().unwrap_or_default());
                page.push(((time, seq), decode(&value)?));
            }
            Ok(page)
        })
    }

    /// The tenant's graph snapshots, in its own folder.
    pub fn graph_snapshot(&self) -> GraphSnapshot {
        GraphSnapshot::new(self.dir.join("graph"), self.faults.clone())
    }
}
