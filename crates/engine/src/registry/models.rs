//! Registered models and their assignments to trust classes and tenants.
//!
//! A model's lineage names tenants; at registration each name is bound to
//! the tenant's incarnation, so a tenant dropped and created again under
//! the same name is not taken for the one whose data shaped the model.

use std::collections::BTreeMap;

use bulkhead_storage::Storage;
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};

use super::audit::AuditEvent;
use super::{Registry, now_unix_ms};
use crate::error::{EngineError, Result};
use crate::manifest::{
    self, BUILTIN_MODEL_MANIFEST, BUILTIN_MODEL_NAME, ModelRecord, parse_manifest,
};
use crate::name::{TenantName, TrustClass};
use crate::policy;
use crate::tenant::Tenant;

const MODEL_KEY: &str = "model/";
const CLASS_KEY: &str = "class/";
const TENANT_KEY: &str = "tenant/";

/// A registered model as stored: its record and the incarnation of each
/// lineage tenant at registration.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Stored {
    pub(super) record: ModelRecord,
    pub(super) incarnations: BTreeMap<TenantName, u64>,
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
pub(super) struct Models {
    pub(super) by_digest: RwLock<BTreeMap<String, Stored>>,
    /// Trust class -> digest.
    by_class: RwLock<BTreeMap<String, String>>,
    /// Tenant incarnation -> digest.
    by_tenant: RwLock<BTreeMap<u64, String>>,
}

impl Models {
    /// Reads the stored models and assignments; the built-in default model
    /// is registered unless a stored record of its digest exists.
    pub(super) fn load(storage: &Storage) -> Result<Models> {
        let models = Models::default();
        for (_, bytes) in storage.lineage_records(MODEL_KEY)? {
            let stored: Stored = bulkhead_storage::decode(&bytes)?;
            models
                .by_digest
                .write()
                .insert(stored.record.digest.clone(), stored);
        }
        for (key, bytes) in storage.lineage_records(CLASS_KEY)? {
            let class = key[CLASS_KEY.len()..].to_string();
            models
                .by_class
                .write()
                .insert(class, String::from_utf8_lossy(&bytes).into_owned());
        }
        for (key, bytes) in storage.lineage_records(TENANT_KEY)? {
            if let Ok(incarnation) = key[TENANT_KEY.len()..].parse::<u64>() {
                models
                    .by_tenant
                    .write()
                    .insert(incarnation, String::from_utf8_lossy(&bytes).into_owned());
            }
        }
        let builtin = builtin_model()?;
        models
            .by_digest
            .write()
            .entry(builtin.digest.clone())
            .or_insert(Stored {
                record: builtin,
                incarnations: BTreeMap::new(),
            });
        Ok(models)
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
    /// Registers (or re-registers) a model by its weights' digest, with its
    /// lineage manifest. Refused when a lineage tenant does not exist or
    /// its contract does not allow its data to train this model.
    pub fn register_model(&self, name: &str, digest: &str, manifest: &str) -> Result<ModelInfo> {
        let mut record = parse_manifest(name, digest, manifest)?;
        let _lifecycle = self.lifecycle.lock();
        let mut incarnations = BTreeMap::new();
        for tenant in &record.tenants {
            if let Some(entry) = self.tenants.read().get(tenant) {
                incarnations.insert(tenant.clone(), entry.record.incarnation);
            }
        }
        policy::lineage_allowed(&record, |t| self.contract_of(t, None))?;
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
        self.audit(AuditEvent::ModelRegister {
            model: &stored.record.name,
            digest: &digest,
            tenants: stored.record.tenants.iter().map(|t| t.as_str()).collect(),
        })?;
        self.models.by_digest.write().insert(digest.clone(), stored);
        self.model_info(&digest).ok_or(EngineError::ModelNotFound)
    }

    fn model_info(&self, digest: &str) -> Option<ModelInfo> {
        let record = self.models.by_digest.read().get(digest)?.record.clone();
        let trust_classes = self
            .models
            .by_class
            .read()
            .iter()
            .filter(|(_, d)| *d == digest)
            .map(|(c, _)| c.clone())
            .collect();
        let by_tenant = self.models.by_tenant.read().clone();
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
        let digests: Vec<String> = self.models.by_digest.read().keys().cloned().collect();
        digests.iter().filter_map(|d| self.model_info(d)).collect()
    }

    /// Assigns a registered model to a trust class or a tenant; `None`
    /// removes the assignment. Audited.
    pub fn assign_model(&self, digest: Option<&str>, target: AssignTarget) -> Result<()> {
        let digest = match digest {
            Some(d) => {
                let d = manifest::parse_digest(d)?;
                if !self.models.by_digest.read().contains_key(&d) {
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
                let entry = self.entry(name)?;
                (
                    format!("{TENANT_KEY}{}", entry.record.incarnation),
                    entry.name.to_string(),
                )
            }
        };
        self.storage
            .put_lineage_record(&key, digest.as_deref().map(str::as_bytes))?;
        match (&target, &digest) {
            (AssignTarget::TrustClass(_), Some(d)) => {
                self.models
                    .by_class
                    .write()
                    .insert(label.clone(), d.clone());
            }
            (AssignTarget::TrustClass(_), None) => {
                self.models.by_class.write().remove(&label);
            }
            (AssignTarget::Tenant(_), d) => {
                let incarnation = self.entry(&label)?.record.incarnation;
                match d {
                    Some(d) => self.models.by_tenant.write().insert(incarnation, d.clone()),
                    None => self.models.by_tenant.write().remove(&incarnation),
                };
            }
        }
        let kind = match &target {
            AssignTarget::TrustClass(_) => "trust_class",
            AssignTarget::Tenant(_) => "tenant",
        };
        self.audit(AuditEvent::ModelAssign {
            kind,
            name: &label,
            digest: digest.as_deref(),
        })
    }

    /// The models whose lineage holds this tenant's data (bound to its
    /// incarnation at registration).
    fn lineage_of_incarnation(&self, name: &TenantName, incarnation: u64) -> Vec<ModelRecord> {
        self.models
            .by_digest
            .read()
            .values()
            .filter(|m| m.incarnations.get(name) == Some(&incarnation))
            .map(|m| m.record.clone())
            .collect()
    }

    /// For the admin plane: the models whose lineage holds the tenant's data.
    pub fn lineage_of(&self, name: &str) -> Result<Vec<ModelInfo>> {
        let entry = self.entry(name)?;
        Ok(self
            .lineage_of_incarnation(&entry.name, entry.record.incarnation)
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
        if let Some(d) = self.models.by_tenant.read().get(&tenant.incarnation()) {
            return Some(d.clone());
        }
        self.models
            .by_class
            .read()
            .get(tenant.spec().trust_class.as_str())
            .cloned()
    }
}
