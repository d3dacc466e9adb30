//! Tenant contracts (what a tenant's data may influence) and the checks
//! they impose on models and training exports.

use std::sync::Arc;

use super::audit::AuditEvent;
use super::entry::TenantEntry;
use super::{Registry, TenantInfo};
use crate::contract::Contract;
use crate::error::{EngineError, Result};
use crate::name::TenantName;
use crate::policy;
use crate::tenant::Tenant;

impl Registry {
    /// Replaces a tenant's contract; its version becomes the old one + 1,
    /// and the change is audited.
    pub fn set_contract(&self, name: &str, contract: Contract) -> Result<TenantInfo> {
        let entry = self.entry(name)?;
        contract.validate(&entry.name)?;
        let _lifecycle = self.lifecycle.lock();
        let was = entry.contract.read().clone();
        let next = Contract {
            version: was.version + 1,
            ..contract
        };
        *entry.contract.write() = next.clone();
        if let Err(e) = self.save_settings(&entry) {
            *entry.contract.write() = was;
            return Err(e);
        }
        self.audit(AuditEvent::TenantContract {
            tenant: entry.name.as_str(),
            version: next.version,
            contract: format!("{next:?}"),
        })?;
        Ok(entry.info())
    }

    /// The current contract of the tenant of this name, if it is still the
    /// incarnation `incarnation` (None: gone, or a different tenant now).
    pub(super) fn contract_of(
        &self,
        name: &TenantName,
        incarnation: Option<u64>,
    ) -> Option<Contract> {
        let entry = self.tenants.read().get(name).cloned()?;
        if incarnation.is_some_and(|i| i != entry.record.incarnation) {
            return None;
        }
        Some(entry.contract.read().clone())
    }

    /// Whether the model of `digest` (the one that answered, as the
    /// embedder reports it) may embed this tenant's texts. The refusal
    /// names the policy and the digest, never a model's name (admin free
    /// text, which may mention other tenants) nor another tenant.
    pub fn check_embedding_model(&self, tenant: &Tenant, digest: &str) -> Result<()> {
        // The digest comes from the sidecar: never slice it blindly.
        let short = digest.get(..12).unwrap_or(digest);
        if digest.is_empty() {
            return Err(EngineError::PolicyRefused(
                "policy model-registry: the embedder did not report which model answered; upgrade it"
                    .to_string(),
            ));
        }
        if let Some(assigned) = self.assigned_model(tenant)
            && assigned != digest
        {
            return Err(EngineError::PolicyRefused(format!(
                "policy model-assignment: the embedder of this tenant's trust class runs the model with digest {short}, not the model assigned to this tenant ({}); the admin must deploy the assigned model",
                assigned.get(..12).unwrap_or(&assigned)
            )));
        }
        let stored = self.models.by_digest.read().get(digest).cloned();
        let Some(stored) = stored else {
            return Err(EngineError::PolicyRefused(format!(
                "policy model-registry: the model with digest {short} is not registered with a lineage manifest; the admin registers it with `bulkhead admin model register`"
            )));
        };
        let allowed = policy::may_serve(&stored.record, tenant.name(), |owner| {
            self.contract_of(owner, Some(*stored.incarnations.get(owner)?))
        });
        if allowed {
            Ok(())
        } else {
            Err(policy::refusal(&stored.record))
        }
    }

    /// The tenants of a training export, with their contract versions,
    /// once their contracts allow it: each may train, and with several,
    /// each consents to pooling with all the others. Audited.
    pub fn training_export(&self, names: &[String]) -> Result<Vec<(Arc<Tenant>, u64)>> {
        if names.is_empty() {
            return Err(EngineError::invalid("name the tenants to export"));
        }
        let mut entries = Vec::new();
        for name in names {
            let entry = self.entry(name)?;
            if entries
                .iter()
                .any(|s: &Arc<TenantEntry>| s.name == entry.name)
            {
                return Err(EngineError::invalid(format!(
                    "tenant {name} is named twice"
                )));
            }
            entries.push(entry);
        }
        for entry in &entries {
            let contract = entry.contract.read().clone();
            let others = entries
                .iter()
                .filter(|s| s.name != entry.name)
                .map(|s| &s.name);
            if !contract.allows_training_with(others) {
                let what = if entries.len() == 1 {
                    "its data to train models".to_string()
                } else {
                    "its data to be pooled with the other tenants of this export".to_string()
                };
                return Err(EngineError::PolicyRefused(format!(
                    "policy training-consent: tenant {}'s contract (version {}) does not allow {what}",
                    entry.name, contract.version
                )));
            }
        }
        let mut out = Vec::new();
        for entry in &entries {
            let version = entry.contract.read().version;
            out.push((self.load(entry)?, version));
        }
        self.audit(AuditEvent::TrainingExport {
            tenants: entries.iter().map(|s| s.name.as_str()).collect(),
            contract_versions: out.iter().map(|(_, v)| *v).collect(),
        })?;
        Ok(out)
    }
}
