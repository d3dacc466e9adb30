//! Tenant contracts: what a tenant's data may influence. The engine keeps
//! one per tenant (in its record), versioned; only the admin changes it,
//! and every change is audited. Caching and retrieval scope are not
//! choices: they are always the tenant alone (the cache namespace and the
//! partition enforce that), and the contract only states it.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::error::{EngineError, Result};
use super::name::TenantName;

/// Whether a tenant's data may shape models.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Training {
    /// No model may be shaped by it.
    #[default]
    None,
    /// Only models that serve this tenant alone.
    Own,
    /// Also models pooled with these tenants (by name).
    Pooled(BTreeSet<TenantName>),
}

/// What may be reported about a tenant's use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Telemetry {
    /// Aggregate counts (points, requests) in the admin plane and logs.
    #[default]
    Aggregate,
    /// Nothing beyond what operating the tenant needs.
    None,
}

/// A tenant's contract. `version` starts at 1 and goes up with each change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contract {
    pub version: u64,
    pub training: Training,
    pub telemetry: Telemetry,
}

impl Default for Contract {
    fn default() -> Self {
        Contract {
            version: 1,
            training: Training::None,
            telemetry: Telemetry::Aggregate,
        }
    }
}

/// The scope of a tenant's cache and of its retrieval: itself, always.
pub const SCOPE_TENANT: &str = "tenant";

impl Contract {
    /// Checks a contract the admin sends for `tenant`.
    pub fn validate(&self, tenant: &TenantName) -> Result<()> {
        if let Training::Pooled(with) = &self.training {
            if with.is_empty() {
                return Err(EngineError::invalid(
                    "a pooled training contract names the tenants it may be pooled with (pool_with)",
                ));
            }
            if with.contains(tenant) {
                return Err(EngineError::invalid(
                    "pool_with names the tenant itself; its own models need no consent",
                ));
            }
        }
        Ok(())
    }

    /// Whether this tenant's data may shape a model that also holds data
    /// of `other` tenants (none: a model of this tenant alone).
    pub fn allows_training_with<'a>(
        &self,
        others: impl IntoIterator<Item = &'a TenantName>,
    ) -> bool {
        match &self.training {
            Training::None => false,
            Training::Own => others.into_iter().next().is_none(),
            Training::Pooled(with) => others.into_iter().all(|o| with.contains(o)),
        }
    }

    /// Whether this tenant consents to its data serving `tenant` through a
    /// model (its own data always may serve itself, if it may train).
    pub fn consents_to_serving(&self, owner: &TenantName, tenant: &TenantName) -> bool {
        match &self.training {
            Training::None => false,
            Training::Own => owner == tenant,
            Training::Pooled(with) => owner == tenant || with.contains(tenant),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> TenantName {
        TenantName::parse(s).unwrap()
    }

    fn pooled(with: &[&str]) -> Contract {
        Contract {
            training: Training::Pooled(with.iter().map(|s| name(s)).collect()),
            ..Contract::default()
        }
    }

    #[test]
    fn the_consent_matrix() {
        let (a, b, c) = (name("a"), name("b"), name("c"));
        let none = Contract::default();
        let own = Contract {
            training: Training::Own,
            ..Contract::default()
        };
        let with_b = pooled(&["b"]);
        // Serving: (contract of the owner of some data, owner, served tenant).
        assert!(!none.consents_to_serving(&a, &a));
        assert!(own.consents_to_serving(&a, &a));
        assert!(!own.consents_to_serving(&a, &b));
        assert!(with_b.consents_to_serving(&a, &a));
        assert!(with_b.consents_to_serving(&a, &b));
        assert!(!with_b.consents_to_serving(&a, &c));
        // Training with others.
        assert!(!none.allows_training_with([]));
        assert!(own.allows_training_with([]));
        assert!(!own.allows_training_with([&b]));
        assert!(with_b.allows_training_with([&b]));
        assert!(!with_b.allows_training_with([&b, &c]));
    }

    #[test]
    fn pooled_contracts_are_checked() {
        let a = name("a");
        assert!(pooled(&[]).validate(&a).is_err());
        assert!(pooled(&["a"]).validate(&a).is_err());
        assert!(pooled(&["b"]).validate(&a).is_ok());
        assert!(Contract::default().validate(&a).is_ok());
    }
}
