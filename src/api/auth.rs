//! Bearer tokens from request metadata, and the admin token.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tonic::{Request, Status};

use crate::config::ConfigError;
use crate::engine::EngineError;

/// The secret that opens the admin plane, and only the admin plane.
#[derive(Clone)]
pub struct AdminToken(String);

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(..)")
    }
}

impl AdminToken {
    /// A configured token; at least 16 characters.
    pub fn new(token: impl Into<String>) -> Result<Self, ConfigError> {
        let token = token.into().trim().to_string();
        if token.len() < 16 || token.chars().any(char::is_whitespace) {
            return Err(ConfigError::new(
                "the admin token must be at least 16 characters, without spaces",
            ));
        }
        Ok(AdminToken(token))
    }

    /// A fresh random token: `bha_` and 256 random bits.
    pub fn generate() -> Result<Self, ConfigError> {
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret)
            .map_err(|e| ConfigError::new(format!("no randomness available: {e}")))?;
        Ok(AdminToken(format!(
            "bha_{}",
            URL_SAFE_NO_PAD.encode(secret)
        )))
    }

    pub fn secret(&self) -> &str {
        &self.0
    }

    /// Admits the request if it carries this token.
    pub(crate) fn check<T>(&self, request: &Request<T>) -> Result<(), Status> {
        let presented = bearer(request)?;
        if bulkhead_client::secrets_equal(presented.as_bytes(), self.0.as_bytes()) {
            Ok(())
        } else if presented.starts_with("bht_") {
            Err(Status::permission_denied(
                "the admin plane needs the admin token, not a tenant token",
            ))
        } else {
            Err(Status::unauthenticated(
                "missing or wrong admin token: send `authorization: Bearer <admin token>`",
            ))
        }
    }
}

/// The token of `authorization: Bearer <token>`.
pub(crate) fn bearer<T>(request: &Request<T>) -> Result<&str, Status> {
    request
        .metadata()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Status::unauthenticated(EngineError::Unauthenticated.to_string()))
}

/// The bearer token of a request, if it carries one (no error).
pub(crate) fn bearer_token<T>(request: &Request<T>) -> Option<&str> {
    bearer(request).ok()
}
