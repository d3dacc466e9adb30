//! The directory: tenants created and dropped, and their settings. The
//! tenant's record in storage is the commit point of both.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::audit::AuditEvent;
use super::entry::TenantEntry;
use super::{Registry, TenantInfo};
use crate::contract::Contract;
use crate::error::{EngineError, Result};
use crate::name::TenantName;
use crate::quota::Quotas;
use crate::spec::{TenantSettings, TenantSpec};
use crate::tenant::Tenant;

impl Registry {
    /// Creates a tenant without quotas.
    pub fn create_tenant(&self, name: &str, spec: TenantSpec) -> Result<Arc<Tenant>> {
        self.create_tenant_with_quotas(name, spec, Quotas::default())
    }

    /// Creates a tenant with quotas (see [`Quotas`]; 0 is unlimited).
    pub fn create_tenant_with_quotas(
        &self,
        name: &str,
        spec: TenantSpec,
        quotas: Quotas,
    ) -> Result<Arc<Tenant>> {
        self.create_tenant_with(name, spec, quotas, Contract::default())
    }

    /// Creates a tenant with quotas and a contract (its version is set
    /// to 1).
    pub fn create_tenant_with(
        &self,
        name: &str,
        spec: TenantSpec,
        quotas: Quotas,
        contract: Contract,
    ) -> Result<Arc<Tenant>> {
        let name = TenantName::parse(name)?;
        spec.validate()?;
        contract.validate(&name)?;
        let contract = Contract {
            version: 1,
            ..contract
        };
        let _lifecycle = self.lifecycle.lock();
        if self.tenants.read().contains_key(&name) {
            return Err(EngineError::TenantExists);
        }
        let settings = TenantSettings {
            spec,
            quotas,
            pinned: false,
            contract,
        };
        let (record, store) = self
            .storage
            .create_tenant(
                name.as_str(),
                settings.spec.trust_class.as_str(),
                settings.encode()?,
            )?
            .ok_or(EngineError::TenantExists)?;
        let entry = TenantEntry::cold(name.clone(), record, settings);
        let tenant = self.open_load(&entry, store)?;
        self.tenants.write().insert(name.clone(), Arc::new(entry));
        self.audit(AuditEvent::TenantCreate {
            tenant: name.as_str(),
        })?;
        tracing::info!(tenant = %name, "tenant created");
        Ok(tenant)
    }

    /// Replaces a tenant's quotas; they apply to requests from now on.
    pub fn set_quotas(&self, name: &str, quotas: Quotas) -> Result<TenantInfo> {
        let entry = self.entry(name)?;
        let _lifecycle = self.lifecycle.lock();
        let was = entry.limits.quotas();
        entry.limits.set(quotas);
        if let Err(e) = self.save_settings(&entry) {
            entry.limits.set(was);
            return Err(e);
        }
        self.audit(AuditEvent::TenantQuotas {
            tenant: entry.name.as_str(),
        })?;
        Ok(entry.info())
    }

    /// Writes the entry's settings to its record. Callers hold `lifecycle`.
    pub(super) fn save_settings(&self, entry: &TenantEntry) -> Result<()> {
        let settings = TenantSettings {
            spec: entry.spec.clone(),
            quotas: entry.limits.quotas(),
            pinned: entry.pinned.load(Ordering::Acquire),
            contract: entry.contract.read().clone(),
        };
        match self
            .storage
            .update_tenant_settings(&entry.record, settings.encode()?)
        {
            Ok(_) => Ok(()),
            Err(bulkhead_storage::StorageError::Gone) => Err(EngineError::TenantNotFound),
            Err(e) => Err(e.into()),
        }
    }

    /// Drops a tenant: its column family, files and memory are gone when this
    /// returns, and a later tenant of the same name shares nothing with it.
    pub fn drop_tenant(&self, name: &str) -> Result<()> {
        let name = TenantName::parse(name)?;
        let _lifecycle = self.lifecycle.lock();
        let entry = self.entry(name.as_str())?;
        // Wait out a load in progress and forbid later ones.
        let mut dropped = entry.loading.lock();
        *dropped = true;
        let erase = || Ok(self.storage.drop_tenant(&entry.record)?);
        let loaded = entry.loaded.write().take();
        let erased = match &loaded {
            Some(tenant) => tenant.drop_with(erase),
            None => erase(),
        };
        if erased.is_err() {
            // The record is the commit point: while it is there the tenant
            // is wholly there, so it stays usable; once it is gone, the
            // tenant is gone (what the failure left is removed when its
            // shelf next opens) and the error says the cleanup failed.
            let kept = matches!(
                self.storage.tenant(name.as_str()),
                Ok(Some(record)) if record.incarnation == entry.record.incarnation
            );
            if kept {
                *dropped = false;
                if let Some(tenant) = loaded {
                    tenant.undrop();
                    *entry.loaded.write() = Some(tenant);
                }
                return erased;
            }
            if let Err(e) = &erased {
                tracing::error!(tenant = %name, error = %e, "tenant dropped, but removing its data failed");
            }
            if let Some(tenant) = &loaded {
                tenant.mark_dropped();
            }
        }
        self.tenants.write().remove(&name);
        for earlier in entry.evicted.lock().drain(..) {
            if let Some(tenant) = earlier.upgrade() {
                tenant.mark_dropped();
            }
        }
        drop(dropped);
        if let Err(e) = erased {
            self.credentials
                .forget_incarnation(entry.record.incarnation);
            return Err(e);
        }
        self.credentials
            .forget_incarnation(entry.record.incarnation);
        self.audit(AuditEvent::TenantDrop {
            tenant: name.as_str(),
        })?;
        tracing::info!(tenant = %name, "tenant dropped");
        Ok(())
    }
}
