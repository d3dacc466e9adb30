//! The registry's lineage plane: tenant contracts, registered models and
//! their assignments, and the check that a model may embed a tenant's
//! texts (`Registry::check_embedding_model`).
//!
//! A model's lineage names tenants; at registration each name is bound to
//! the tenant's incarnation, so a tenant dropped and created again under
//! the same name is not taken for the one whose data shaped the model.

use std::collections::BTreeMap;
use std::sync::Arc;

use bulkhead_storage::Storage;
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};

use super::{Registry, TenantInfo, now_unix_ms};
use crate::contract::Contract;
use crate::error::{EngineError, Result};
use crate::lineage::{
    self, BUILTIN_MODEL_MANIFEST, BUILTIN_MODEL_NAME, ModelRecord, parse_manifest,
};
use crate::name::{TenantName, TrustClass};
use crate::tenant::Tenant;

const MODEL_KEY: &str = "model/";
const CLASS_KEY: &str = "class/";
const TENANT_KEY: &str = "tenant/";

/// A registered model as stored: its record and the incarnation of each
/// lineage tenant at registration.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Stored {
    record: ModelRecord,
    incarnations: BTreeMap<TenantName, u64>,
}

/// What the admin plane sees of a model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelInfo {
    pub record: ModelRecord,
    pub trust_classes: Vec<String>,
    pub assigned_tenants: Vec<String>,
}

/// Where a model is assigned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssignTarget {
    TrustClass(String),
    Tenant(String),
}

#[derive(Default)]
pub(super) struct Lineage {
    models: RwLock<BTreeMap<String, Stored>>,
    /// Trust class -> digest.
    by_class: RwLock<BTreeMap<String, String>>,
    /// Tenant incarnation -> digest.
    by_tenant: RwLock<BTreeMap<u64, String>>,
}

impl Lineage {
    /// Reads the stored models and assignments; the built-in default model
    /// is registered unless a stored record of its digest exists.
    pub(super) fn load(storage: &Storage) -> Result<Lineage> {
        let lineage = Lineage::default();
        for (_, bytes) in storage.lineage_records(MODEL_KEY)? {
            let stored: Stored = bulkhead_storage::decode(&bytes)?;
            lineage
                .models
                .write()
                .insert(stored.record.digest.clone(), stored);
        }
        for (key, bytes) in storage.lineage_records(CLASS_KEY)? {
            let class = key[CLASS_KEY.len()..].to_string();
            lineage
                .by_class
                .write()
                .insert(class, String::from_utf8_lossy(&bytes).into_owned());
        }
        for (key, bytes) in storage.lineage_records(TENANT_KEY)? {
            if let Ok(incarnation) = key[TENANT_KEY.len()..].parse::<u64>() {
                lineage
                    .by_tenant
                    .write()
                    .insert(incarnation, String::from_utf8_lossy(&bytes).into_owned());
            }
        }
        let builtin = builtin_model()?;
        lineage
            .models
            .write()
            .entry(builtin.digest.clone())
            .or_insert(Stored {
                record: builtin,
                incarnations: BTreeMap::new(),
            });
        Ok(lineage)
    }
}

fn builtin_model() -> Result<ModelRecord> {
    let digest = serde_json::from_str::<serde_json::Value>(BUILTIN_MODEL_MANIFEST)
        .ok()
        .and_then(|bom| {
            bom.pointer("/metadata/component/hashes/0/content")
                .and_then(|v| v.as_str())
                .map(str::to_string)
        })
        .unwrap_or_default();
    parse_manifest(BUILTIN_MODEL_NAME, &digest, BUILTIN_MODEL_MANIFEST)
}

impl Registry {
    /// Replaces a tenant's contract; its version becomes the old one + 1,
    /// and the change is audited.
    pub fn set_contract(&self, name: &str, contract: Contract) -> Result<TenantInfo> {
        let slot = self.slot(name)?;
        contract.validate(&slot.name)?;
        let _lifecycle = self.lifecycle.lock();
        let was = slot.contract.read().clone();
        let next = Contract {
            version: was.version + 1,
            ..contract
        };
        *slot.contract.write() = next.clone();
        if let Err(e) = self.save_settings(&slot) {
            *slot.contract.write() = was;
            return Err(e);
        }
        self.audit_event(serde_json::json!({
            "event": "tenant.contract",
            "tenant": slot.name.as_str(),
            "version": next.version,
            "contract": format!("{next:?}"),
        }))?;
        Ok(slot.info())
    }

    /// The current contract of the tenant of this name, if it is still the
    /// incarnation `incarnation` (None: gone, or a different tenant now).
    fn contract_of(&self, name: &TenantName, incarnation: Option<u64>) -> Option<Contract> {
        let slot = self.tenants.read().get(name).cloned()?;
        if incarnation.is_some_and(|i| i != slot.record.incarnation) {
            return None;
        }
        Some(slot.contract.read().clone())
    }

    /// Registers (or re-registers) a model by its weights' digest, with its
    /// lineage manifest. Refused when a lineage tenant does not exist or
    /// its contract does not allow its data to train this model.
    pub fn register_model(&self, name: &str, digest: &str, manifest: &str) -> Result<ModelInfo> {
        let mut record = parse_manifest(name, digest, manifest)?;
        let _lifecycle = self.lifecycle.lock();
        let mut incarnations = BTreeMap::new();
        for tenant in &record.tenants {
            if let Some(slot) = self.tenants.read().get(tenant) {
                incarnations.insert(tenant.clone(), slot.record.incarnation);
            }
        }
        lineage::lineage_allowed(&record, |t| self.contract_of(t, None))
            .map_err(|why| EngineError::PolicyRefused(format!("policy training-consent: {why}")))?;
        record.registered_unix_ms = now_unix_ms();
        let stored = Stored {
            record,
            incarnations,
        };
        self.storage.put_lineage_record(
            &format!("{MODEL_KEY}{}", stored.record.digest),
            Some(&bulkhead_storage::encode(&stored)?),
        )?;
        let digest = stored.record.digest.clone();
        self.audit_event(serde_json::json!({
            "event": "model.register",
            "model": stored.record.name,
            "digest": digest,
            "tenants": stored.record.tenants.iter().map(|t| t.as_str()).collect::<Vec<_>>(),
        }))?;
        self.lineage.models.write().insert(digest.clone(), stored);
        self.model_info(&digest).ok_or(EngineError::ModelNotFound)
    }

    fn model_info(&self, digest: &str) -> Option<ModelInfo> {
        let record = self.lineage.models.read().get(digest)?.record.clone();
        let trust_classes = self
            .lineage
            .by_class
            .read()
            .iter()
            .filter(|(_, d)| *d == digest)
            .map(|(c, _)| c.clone())
            .collect();
        let by_tenant = self.lineage.by_tenant.read().clone();
        let mut assigned_tenants: Vec<String> = self
            .tenants
            .read()
            .values()
            .filter(|s| by_tenant.get(&s.record.incarnation).map(String::as_str) == Some(digest))
            .map(|s| s.name.to_string())
            .collect();
        assigned_tenants.sort();
        Some(ModelInfo {
            record,
            trust_classes,
            assigned_tenants,
        })
    }

    /// Every registered model. For the admin plane only.
    pub fn list_models(&self) -> Vec<ModelInfo> {
        let digests: Vec<String> = self.lineage.models.read().keys().cloned().collect();
        digests.iter().filter_map(|d| self.model_info(d)).collect()
    }

    /// Assigns a registered model to a trust class or a tenant; `None`
    /// removes the assignment. Audited.
    pub fn assign_model(&self, digest: Option<&str>, target: AssignTarget) -> Result<()> {
        let digest = match digest {
            Some(d) => {
                let d = lineage::parse_digest(d)?;
                if !self.lineage.models.read().contains_key(&d) {
                    return Err(EngineError::ModelNotFound);
                }
                Some(d)
            }
            None => None,
        };
        let _lifecycle = self.lifecycle.lock();
        let (key, label) = match &target {
            AssignTarget::TrustClass(class) => {
                let class = TrustClass::parse(class)?;
                (
                    format!("{CLASS_KEY}{}", class.as_str()),
                    class.as_str().to_string(),
                )
            }
            AssignTarget::Tenant(name) => {
                let slot = self.slot(name)?;
                (
                    format!("{TENANT_KEY}{}", slot.record.incarnation),
                    slot.name.to_string(),
                )
            }
        };
        self.storage
            .put_lineage_record(&key, digest.as_deref().map(str::as_bytes))?;
        match (&target, &digest) {
            (AssignTarget::TrustClass(_), Some(d)) => {
                self.lineage
                    .by_class
                    .write()
                    .insert(label.clone(), d.clone());
            }
            (AssignTarget::TrustClass(_), None) => {
                self.lineage.by_class.write().remove(&label);
            }
            (AssignTarget::Tenant(_), d) => {
                let incarnation = self.slot(&label)?.record.incarnation;
                match d {
                    Some(d) => self
                        .lineage
                        .by_tenant
                        .write()
                        .insert(incarnation, d.clone()),
                    None => self.lineage.by_tenant.write().remove(&incarnation),
                };
            }
        }
        let (kind, name) = match &target {
            AssignTarget::TrustClass(_) => ("trust_class", label),
            AssignTarget::Tenant(_) => ("tenant", label),
        };
        self.audit_event(serde_json::json!({
            "event": "model.assign",
            kind: name,
            "digest": digest,
        }))
    }

    /// The models whose lineage holds this tenant's data (bound to its
    /// incarnation at registration).
    fn lineage_of_incarnation(&self, name: &TenantName, incarnation: u64) -> Vec<ModelRecord> {
        self.lineage
            .models
            .read()
            .values()
            .filter(|m| m.incarnations.get(name) == Some(&incarnation))
            .map(|m| m.record.clone())
            .collect()
    }

    /// For the admin plane: the models whose lineage holds the tenant's data.
    pub fn lineage_of(&self, name: &str) -> Result<Vec<ModelInfo>> {
        let slot = self.slot(name)?;
        Ok(self
            .lineage_of_incarnation(&slot.name, slot.record.incarnation)
            .iter()
            .filter_map(|m| self.model_info(&m.digest))
            .collect())
    }

    /// For the tenant itself (data plane): the models its data shaped.
    pub fn lineage_of_tenant(&self, tenant: &Tenant) -> Vec<ModelRecord> {
        self.lineage_of_incarnation(tenant.name(), tenant.incarnation())
    }

    /// The model assigned to embed this tenant's texts: its own
    /// assignment, else its trust class's; None when neither is set.
    pub fn assigned_model(&self, tenant: &Tenant) -> Option<String> {
        if let Some(d) = self.lineage.by_tenant.read().get(&tenant.incarnation()) {
            return Some(d.clone());
        }
        self.lineage
            .by_class
            .read()
            .get(tenant.spec().trust_class.as_str())
            .cloned()
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
        let stored = self.lineage.models.read().get(digest).cloned();
        let Some(stored) = stored else {
            return Err(EngineError::PolicyRefused(format!(
                "policy model-registry: the model with digest {short} is not registered with a lineage manifest; the admin registers it with `bulkhead admin model register`"
            )));
        };
        let allowed = lineage::may_serve(&stored.record, tenant.name(), |owner| {
            self.contract_of(owner, Some(*stored.incarnations.get(owner)?))
        });
        if allowed {
            Ok(())
        } else {
            Err(lineage::refusal(&stored.record))
        }
    }

    /// The tenants of a training export, with their contract versions,
    /// once their contracts allow it: each may train, and with several,
    /// each consents to pooling with all the others. Audited.
    pub fn training_export(&self, names: &[String]) -> Result<Vec<(Arc<Tenant>, u64)>> {
        if names.is_empty() {
            return Err(EngineError::invalid("name the tenants to export"));
        }
        let mut slots = Vec::new();
        for name in names {
            let slot = self.slot(name)?;
            if slots.iter().any(|s: &Arc<super::Slot>| s.name == slot.name) {
                return Err(EngineError::invalid(format!(
                    "tenant {name} is named twice"
                )));
            }
            slots.push(slot);
        }
        for slot in &slots {
            let contract = slot.contract.read().clone();
            let others = slots
                .iter()
                .filter(|s| s.name != slot.name)
                .map(|s| &s.name);
            if !contract.allows_training_with(others) {
                let what = if slots.len() == 1 {
                    "its data to train models".to_string()
                } else {
                    "its data to be pooled with the other tenants of this export".to_string()
                };
                return Err(EngineError::PolicyRefused(format!(
                    "policy training-consent: tenant {}'s contract (version {}) does not allow {what}",
                    slot.name, contract.version
                )));
            }
        }
        let mut out = Vec::new();
        for slot in &slots {
            let version = slot.contract.read().version;
            out.push((self.load(slot)?, version));
        }
        self.audit_event(serde_json::json!({
            "event": "export.training",
            "tenants": slots.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
            "contract_versions": out.iter().map(|(_, v)| *v).collect::<Vec<_>>(),
        }))?;
        Ok(out)
    }

    fn audit_event(&self, mut entry: serde_json::Value) -> Result<()> {
        entry["unix_ms"] = now_unix_ms().into();
        Ok(self.storage.audit(&entry)?)
    }
}
