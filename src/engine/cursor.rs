//! Scroll cursors: opaque to clients, bound to the tenant incarnation that
//! issued them. A cursor presented to any other tenant, including a new
//! tenant of the same name, is refused exactly like a malformed one.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::error::{EngineError, Result};
use super::point::MAX_ID_BYTES;

const VERSION: u8 = 1;

/// Encodes "continue after `last_id`" for the tenant `incarnation`.
pub(crate) fn encode(incarnation: u64, last_id: &str) -> String {
    let mut raw = Vec::with_capacity(9 + last_id.len());
    raw.push(VERSION);
    raw.extend_from_slice(&incarnation.to_be_bytes());
    raw.extend_from_slice(last_id.as_bytes());
    URL_SAFE_NO_PAD.encode(raw)
}

/// Decodes a cursor for the tenant `incarnation`, returning the last id seen.
pub(crate) fn decode(incarnation: u64, cursor: &str) -> Result<String> {
    if cursor.len() > 2 * (9 + MAX_ID_BYTES) {
        return Err(EngineError::InvalidCursor);
    }
    let raw = URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| EngineError::InvalidCursor)?;
    if raw.len() < 10 || raw[0] != VERSION || raw[1..9] != incarnation.to_be_bytes() {
        return Err(EngineError::InvalidCursor);
    }
    String::from_utf8(raw[9..].to_vec()).map_err(|_| EngineError::InvalidCursor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_works_only_for_its_tenant() {
        let c = encode(7, "doc-42");
        assert_eq!(decode(7, &c).unwrap(), "doc-42");
        assert!(matches!(decode(8, &c), Err(EngineError::InvalidCursor)));
        for junk in ["", "!!!", "AAAA", &"A".repeat(10_000)] {
            assert!(matches!(decode(7, junk), Err(EngineError::InvalidCursor)));
        }
    }
}
