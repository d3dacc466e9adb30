//! The `meta` instance: which tenants exist, where each one lives, and the
//! counters that hand out incarnations and shelf ids. Every write is synced.

use std::path::Path;

use rocksdb::{DB, Direction, IteratorMode, Options, WriteBatch, WriteOptions};
use serde::{Deserialize, Serialize};

use crate::codec::{decode, encode};
use crate::error::Result;

/// A RocksDB instance that holds tenant column families of one trust class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ShelfId(pub u32);

/// What `meta` knows of a tenant. `settings` is the engine's, opaque here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TenantRecord {
    pub name: String,
    pub incarnation: u64,
    pub shelf: ShelfId,
    pub trust_class: String,
    pub created_unix_ms: u64,
    pub settings: Vec<u8>,
}

/// A tenant token as stored: the secret only as its SHA-256.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenRecord {
    pub id: String,
    pub tenant: String,
    /// The tenant incarnation the token was issued for: a token never
    /// outlives its tenant, even if the name is created again.
    pub incarnation: u64,
    pub secret_sha256: [u8; 32],
    pub created_unix_ms: u64,
    pub revoked: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ShelfRecord {
    pub(crate) trust_class: String,
}

const TENANT_PREFIX: &[u8] = b"tenant/";
const SHELF_PREFIX: &[u8] = b"shelf/";
const TOKEN_PREFIX: &[u8] = b"token/";
const NEXT_INCARNATION: &[u8] = b"counter/incarnation";
const NODE_SECRET: &[u8] = b"secret/node";
const NEXT_SHELF: &[u8] = b"counter/shelf";
/// Opaque records of the engine's lineage plane, by key: registered
/// models and model assignments.
const LINEAGE_PREFIX: &[u8] = b"lineage/";

pub(crate) struct MetaStore {
    db: DB,
}

impl std::fmt::Debug for MetaStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetaStore").finish_non_exhaustive()
    }
}

fn synced() -> WriteOptions {
    let mut w = WriteOptions::default();
    w.set_sync(true);
    w
}

fn tenant_key(name: &str) -> Vec<u8> {
    [TENANT_PREFIX, name.as_bytes()].concat()
}

fn token_key(id: &str) -> Vec<u8> {
    [TOKEN_PREFIX, id.as_bytes()].concat()
}

fn shelf_key(id: ShelfId) -> Vec<u8> {
    [SHELF_PREFIX, &id.0.to_be_bytes()[..]].concat()
}

impl MetaStore {
    pub(crate) fn open(path: &Path) -> Result<Self> {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.set_keep_log_file_num(2);
        opts.set_max_log_file_size(1 << 20);
        Ok(MetaStore {
            db: DB::open(&opts, path)?,
        })
    }

    pub(crate) fn tenants(&self) -> Result<Vec<TenantRecord>> {
        self.scan(TENANT_PREFIX, |_, v| decode(v))
    }

    pub(crate) fn tenant(&self, name: &str) -> Result<Option<TenantRecord>> {
        match self.db.get_pinned(tenant_key(name))? {
            Some(v) => Ok(Some(decode(&v)?)),
            None => Ok(None),
        }
    }

    pub(crate) fn put_tenant(&self, record: &TenantRecord) -> Result<()> {
        self.db
            .put_opt(tenant_key(&record.name), encode(record)?, &synced())?;
        Ok(())
    }

    /// Deletes a tenant's record and every token issued for it, atomically.
    pub(crate) fn delete_tenant(&self, name: &str, incarnation: u64) -> Result<()> {
        let mut batch = WriteBatch::default();
        batch.delete(tenant_key(name));
        for token in self.tokens()? {
            if token.incarnation == incarnation {
                batch.delete(token_key(&token.id));
            }
        }
        self.db.write_opt(batch, &synced())?;
        Ok(())
    }

    pub(crate) fn tokens(&self) -> Result<Vec<TokenRecord>> {
        self.scan(TOKEN_PREFIX, |_, v| decode(v))
    }

    pub(crate) fn put_token(&self, record: &TokenRecord) -> Result<()> {
        self.db
            .put_opt(token_key(&record.id), encode(record)?, &synced())?;
        Ok(())
    }

    pub(crate) fn shelves(&self) -> Result<Vec<(ShelfId, ShelfRecord)>> {
        self.scan(SHELF_PREFIX, |k, v| {
            let raw: [u8; 4] = k.try_into().map_err(|_| {
                crate::StorageError::Corrupt("shelf key is not 4 bytes".to_string())
            })?;
            Ok((ShelfId(u32::from_be_bytes(raw)), decode(v)?))
        })
    }

    /// Registers a new shelf for `trust_class` and returns its id.
    pub(crate) fn add_shelf(&self, trust_class: &str) -> Result<ShelfId> {
        let id = ShelfId(self.counter(NEXT_SHELF)? as u32);
        let mut batch = WriteBatch::default();
        batch.put(NEXT_SHELF, (u64::from(id.0) + 1).to_be_bytes());
        let record = ShelfRecord {
            trust_class: trust_class.to_string(),
        };
        batch.put(shelf_key(id), encode(&record)?);
        self.db.write_opt(batch, &synced())?;
        Ok(id)
    }

    /// Hands out the next incarnation; it is durable before it is returned,
    /// so no incarnation is ever handed out twice, even across crashes.
    pub(crate) fn next_incarnation(&self) -> Result<u64> {
        let next = self.counter(NEXT_INCARNATION)?.max(1);
        self.db
            .put_opt(NEXT_INCARNATION, (next + 1).to_be_bytes(), &synced())?;
        Ok(next)
    }

    /// The node's secret, created with `generate` on first use.
    pub(crate) fn node_secret(&self, generate: impl FnOnce() -> [u8; 32]) -> Result<[u8; 32]> {
        if let Some(v) = self.db.get_pinned(NODE_SECRET)? {
            return v[..]
                .try_into()
                .map_err(|_| crate::StorageError::Corrupt("node secret is not 32 bytes".into()));
        }
        let secret = generate();
        self.db.put_opt(NODE_SECRET, secret, &synced())?;
        Ok(secret)
    }

    pub(crate) fn flush(&self) -> Result<()> {
        self.db.flush()?;
        Ok(())
    }

    /// Every lineage record whose key starts with `prefix`, as (key, value).
    pub(crate) fn lineage_records(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>> {
        let full = [LINEAGE_PREFIX, prefix.as_bytes()].concat();
        self.scan(&full, |k, v| {
            Ok((
                format!("{prefix}{}", String::from_utf8_lossy(k)),
                v.to_vec(),
            ))
        })
    }

    /// Writes (Some) or deletes (None) one lineage record, synced.
    pub(crate) fn put_lineage_record(&self, key: &str, value: Option<&[u8]>) -> Result<()> {
        let full = [LINEAGE_PREFIX, key.as_bytes()].concat();
        match value {
            Some(v) => self.db.put_opt(full, v, &synced())?,
            None => self.db.delete_opt(full, &synced())?,
        }
        Ok(())
    }

    fn counter(&self, key: &[u8]) -> Result<u64> {
        match self.db.get_pinned(key)? {
            None => Ok(0),
            Some(v) => {
                let raw: [u8; 8] = v[..].try_into().map_err(|_| {
                    crate::StorageError::Corrupt("counter is not 8 bytes".to_string())
                })?;
                Ok(u64::from_be_bytes(raw))
            }
        }
    }

    fn scan<T>(&self, prefix: &[u8], f: impl Fn(&[u8], &[u8]) -> Result<T>) -> Result<Vec<T>> {
        let mut out = Vec::new();
        for item in self
            .db
            .iterator(IteratorMode::From(prefix, Direction::Forward))
        {
            let (k, v) = item?;
            let Some(rest) = k.strip_prefix(prefix) else {
                break;
            };
            out.push(f(rest, &v)?);
        }
        Ok(out)
    }
}
