//! Validated names. A name reaches a path, a column family or a log only
//! after passing through here (and on disk a tenant is its incarnation).

use serde::{Deserialize, Serialize};

use super::error::{EngineError, Result};

const MAX_NAME_LEN: usize = 64;

fn check(kind: &str, raw: &str) -> Result<()> {
    let mut chars = raw.chars();
    let ok = (1..=MAX_NAME_LEN).contains(&raw.len())
        && chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(EngineError::invalid(format!(
            "invalid {kind}: use 1-{MAX_NAME_LEN} characters of a-z, 0-9, '_' and '-', starting with a letter"
        )))
    }
}

/// A tenant's name: 1-64 characters of `[a-z0-9_-]`, starting with a letter.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TenantName(String);

impl TenantName {
    pub fn parse(raw: &str) -> Result<Self> {
        check("tenant name", raw)?;
        Ok(TenantName(raw.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for TenantName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A group of tenants that may share encoder batches and shelves. Same
/// character rule as tenant names.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TrustClass(String);

impl TrustClass {
    pub fn parse(raw: &str) -> Result<Self> {
        check("trust class", raw)?;
        Ok(TrustClass(raw.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for TrustClass {
    fn default() -> Self {
        TrustClass("default".to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_names_follow_the_rule() {
        for good in ["a", "acme", "acme-prod_2", &"a".repeat(64)] {
            assert!(TenantName::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "1acme",
            "_a",
            "-a",
            "Acme",
            "a b",
            "a/b",
            "../a",
            "a.b",
            "é",
            &"a".repeat(65),
        ] {
            let err = TenantName::parse(bad).unwrap_err().to_string();
            assert!(err.contains("starting with a letter"), "{bad}: {err}");
        }
    }
}
