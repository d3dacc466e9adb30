//! Tenant tokens: random 256-bit secrets bound to one tenant incarnation,
//! kept only as SHA-256 hashes, revocable, and gone with their tenant.
//!
//! A token reads `bht_<id>_<secret>`: `id` (16 hex digits) names the stored
//! record, `secret` (32 random bytes, base64url) is checked against its hash.

use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bulkhead_storage::TokenRecord;
use parking_lot::RwLock;
use sha2::{Digest, Sha256};

use super::error::{EngineError, Result};

const PREFIX: &str = "bht_";
const SECRET_BYTES: usize = 32;

/// A token as handed to the admin who issued it: the only time the secret
/// is seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedToken {
    pub id: String,
    pub token: String,
}

/// What the admin plane sees of a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    pub id: String,
    pub tenant: String,
    pub created_unix_ms: u64,
    pub revoked: bool,
}

impl From<&TokenRecord> for TokenInfo {
    fn from(r: &TokenRecord) -> Self {
        TokenInfo {
            id: r.id.clone(),
            tenant: r.tenant.clone(),
            created_unix_ms: r.created_unix_ms,
            revoked: r.revoked,
        }
    }
}

/// Random bytes from the operating system.
pub(crate) fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes)
        .map_err(|e| EngineError::invalid(format!("no randomness available: {e}")))?;
    Ok(bytes)
}

fn hash(secret: &[u8]) -> [u8; 32] {
    Sha256::digest(secret).into()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Splits a tenant token into its id and secret; `None` if malformed.
fn parse(token: &str) -> Option<(&str, Vec<u8>)> {
    let rest = token.strip_prefix(PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    if id.len() != 16 || !id.bytes().all(|b| b.is_ascii_hexdigit()) || secret.len() > 64 {
        return None;
    }
    let secret = URL_SAFE_NO_PAD.decode(secret).ok()?;
    (secret.len() == SECRET_BYTES).then_some((id, secret))
}

/// The node's tenant tokens, mirrored in memory from `meta`.
#[derive(Debug, Default)]
pub(crate) struct Credentials {
    tokens: RwLock<HashMap<String, TokenRecord>>,
}

impl Credentials {
    pub(crate) fn new(records: Vec<TokenRecord>) -> Self {
        Credentials {
            tokens: RwLock::new(records.into_iter().map(|r| (r.id.clone(), r)).collect()),
        }
    }

    /// A fresh token for `tenant`; the caller persists the record first.
    pub(crate) fn mint(
        tenant: &str,
        incarnation: u64,
        now_ms: u64,
    ) -> Result<(TokenRecord, IssuedToken)> {
        let id: String = random_bytes::<8>()?
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let secret = random_bytes::<SECRET_BYTES>()?;
        let token = format!("{PREFIX}{id}_{}", URL_SAFE_NO_PAD.encode(secret));
        let record = TokenRecord {
            id: id.clone(),
            tenant: tenant.to_string(),
            incarnation,
            secret_sha256: hash(&secret),
            created_unix_ms: now_ms,
            revoked: false,
        };
        Ok((record, IssuedToken { id, token }))
    }

    pub(crate) fn insert(&self, record: TokenRecord) {
        self.tokens.write().insert(record.id.clone(), record);
    }

    pub(crate) fn get(&self, id: &str) -> Option<TokenRecord> {
        self.tokens.read().get(id).cloned()
    }

    pub(crate) fn of_tenant(&self, tenant: &str) -> Vec<TokenInfo> {
        let mut infos: Vec<TokenInfo> = self
            .tokens
            .read()
            .values()
            .filter(|r| r.tenant == tenant)
            .map(TokenInfo::from)
            .collect();
        infos.sort_by(|a, b| {
            a.created_unix_ms
                .cmp(&b.created_unix_ms)
                .then(a.id.cmp(&b.id))
        });
        infos
    }

    pub(crate) fn forget_incarnation(&self, incarnation: u64) {
        self.tokens
            .write()
            .retain(|_, r| r.incarnation != incarnation);
    }

    /// The record of a well-formed, known, unrevoked token whose secret
    /// matches; `Unauthenticated` otherwise, whatever the reason.
    pub(crate) fn verify(&self, token: &str) -> Result<TokenRecord> {
        let (id, secret) = parse(token).ok_or(EngineError::Unauthenticated)?;
        let tokens = self.tokens.read();
        let record = tokens.get(id).ok_or(EngineError::Unauthenticated)?;
        if record.revoked || !constant_time_eq(&hash(&secret), &record.secret_sha256) {
            return Err(EngineError::Unauthenticated);
        }
        Ok(record.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_only_with_their_secret() {
        let creds = Credentials::default();
        let (record, issued) = Credentials::mint("acme", 3, 0).unwrap();
        creds.insert(record.clone());
        assert_eq!(creds.verify(&issued.token).unwrap().incarnation, 3);
        assert!(issued.token.len() > 16 + 43);
        // Same id, another secret.
        let (_, other) = Credentials::mint("acme", 3, 0).unwrap();
        let forged = format!(
            "{PREFIX}{}_{}",
            issued.id,
            other.token.rsplit('_').next().unwrap()
        );
        for bad in [
            forged.as_str(),
            "",
            "bht_",
            "Bearer x",
            &issued.token[..issued.token.len() - 1],
        ] {
            assert!(
                matches!(creds.verify(bad), Err(EngineError::Unauthenticated)),
                "{bad}"
            );
        }
        creds.insert(TokenRecord {
            revoked: true,
            ..record
        });
        assert!(matches!(
            creds.verify(&issued.token),
            Err(EngineError::Unauthenticated)
        ));
    }
}
