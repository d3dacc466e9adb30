//! Scroll cursors: opaque to clients, bound to the tenant incarnation that
//! issued them. A cursor presented to any other tenant, including a new
//! tenant of the same name, is refused exactly like a malformed one.
//!
//! The binding is a keyed tag, SHA-256(node secret, incarnation), not the
//! incarnation itself: incarnations are a node-wide counter, and a cursor
//! must not tell a tenant how many tenants were created before it.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use super::error::{EngineError, Result};
use super::point::MAX_ID_BYTES;

const VERSION: u8 = 2;
const TAG: usize = 16;
const HEADER: usize = 1 + TAG;

/// The tag that binds cursors to one tenant incarnation on this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CursorKey([u8; TAG]);

impl CursorKey {
    pub fn new(node_secret: &[u8; 32], incarnation: u64) -> Self {
        let digest = Sha256::new()
            .chain_update(b"bulkhead cursor v2")
            .chain_update(node_secret)
            .chain_update(incarnation.to_be_bytes())
            .finalize();
        let mut tag = [0u8; TAG];
        tag.copy_from_slice(&digest[..TAG]);
        CursorKey(tag)
    }
}

/// Encodes "continue after `last_id`" for the tenant of `key`.
pub fn encode(key: &CursorKey, last_id: &str) -> String {
    let mut raw = Vec::with_capacity(HEADER + last_id.len());
    raw.push(VERSION);
    raw.extend_from_slice(&key.0);
    raw.extend_from_slice(last_id.as_bytes());
    URL_SAFE_NO_PAD.encode(raw)
}

/// Decodes a cursor for the tenant of `key`, returning the last id seen.
pub fn decode(key: &CursorKey, cursor: &str) -> Result<String> {
    if cursor.len() > 2 * (HEADER + MAX_ID_BYTES) {
        return Err(EngineError::InvalidCursor);
    }
    let raw = URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| EngineError::InvalidCursor)?;
    if raw.len() <= HEADER || raw[0] != VERSION || raw[1..HEADER] != key.0 {
        return Err(EngineError::InvalidCursor);
    }
    String::from_utf8(raw[HEADER..].to_vec()).map_err(|_| EngineError::InvalidCursor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_works_only_for_its_tenant() {
        let secret = [7u8; 32];
        let (mine, other) = (CursorKey::new(&secret, 7), CursorKey::new(&secret, 8));
        let c = encode(&mine, "doc-42");
        assert_eq!(decode(&mine, &c).unwrap(), "doc-42");
        assert!(matches!(
            decode(&other, &c),
            Err(EngineError::InvalidCursor)
        ));
        assert!(matches!(
            decode(&CursorKey::new(&[8u8; 32], 7), &c),
            Err(EngineError::InvalidCursor)
        ));
        // The incarnation is not readable from the cursor.
        let raw = URL_SAFE_NO_PAD.decode(&c).unwrap();
        assert!(!raw.windows(8).any(|w| w == 7u64.to_be_bytes()));
        for junk in ["", "!!!", "AAAA", &"A".repeat(10_000)] {
            assert!(matches!(
                decode(&mine, junk),
                Err(EngineError::InvalidCursor)
            ));
        }
    }
}
