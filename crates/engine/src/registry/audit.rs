//! The registry's audit log: one JSON line per admin change, written to
//! storage before the change is acknowledged. An event names at most the
//! one tenant it is about (a training export names the tenants it read).

use serde_json::{Value, json};

use super::{Registry, now_unix_ms};
use crate::error::Result;

/// One entry of the audit log.
pub(super) enum AuditEvent<'a> {
    TenantCreate {
        tenant: &'a str,
    },
    TenantDrop {
        tenant: &'a str,
    },
    TenantPin {
        tenant: &'a str,
        pinned: bool,
    },
    TenantQuotas {
        tenant: &'a str,
    },
    TenantContract {
        tenant: &'a str,
        version: u64,
        contract: String,
    },
    TokenIssue {
        tenant: &'a str,
        token_id: &'a str,
    },
    TokenRevoke {
        tenant: &'a str,
        token_id: &'a str,
    },
    ModelRegister {
        model: &'a str,
        digest: &'a str,
        tenants: Vec<&'a str>,
    },
    /// `kind` is "trust_class" or "tenant"; `name` the class or tenant.
    ModelAssign {
        kind: &'static str,
        name: &'a str,
        digest: Option<&'a str>,
    },
    TrainingExport {
        tenants: Vec<&'a str>,
        contract_versions: Vec<u64>,
    },
}

impl AuditEvent<'_> {
    fn to_json(&self) -> Value {
        match self {
            AuditEvent::TenantCreate { tenant } => {
                json!({ "event": "tenant.create", "tenant": tenant })
            }
            AuditEvent::TenantDrop { tenant } => {
                json!({ "event": "tenant.drop", "tenant": tenant })
            }
            AuditEvent::TenantPin { tenant, pinned } => json!({
                "event": if *pinned { "tenant.pin" } else { "tenant.unpin" },
                "tenant": tenant,
            }),
            AuditEvent::TenantQuotas { tenant } => {
                json!({ "event": "tenant.quotas", "tenant": tenant })
            }
            AuditEvent::TenantContract {
                tenant,
                version,
                contract,
            } => json!({
                "event": "tenant.contract",
                "tenant": tenant,
                "version": version,
                "contract": contract,
            }),
            AuditEvent::TokenIssue { tenant, token_id } => {
                json!({ "event": "token.issue", "tenant": tenant, "token_id": token_id })
            }
            AuditEvent::TokenRevoke { tenant, token_id } => {
                json!({ "event": "token.revoke", "tenant": tenant, "token_id": token_id })
            }
            AuditEvent::ModelRegister {
                model,
                digest,
                tenants,
            } => json!({
                "event": "model.register",
                "model": model,
                "digest": digest,
                "tenants": tenants,
            }),
            AuditEvent::ModelAssign { kind, name, digest } => {
                json!({ "event": "model.assign", *kind: name, "digest": digest })
            }
            AuditEvent::TrainingExport {
                tenants,
                contract_versions,
            } => json!({
                "event": "export.training",
                "tenants": tenants,
                "contract_versions": contract_versions,
            }),
        }
    }
}

impl Registry {
    /// Appends `event` to the audit log, stamped with the time.
    pub(super) fn audit(&self, event: AuditEvent<'_>) -> Result<()> {
        let mut entry = event.to_json();
        entry["unix_ms"] = now_unix_ms().into();
        Ok(self.storage.audit(&entry)?)
    }
}
