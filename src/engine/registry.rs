//! The registry: tenant name -> tenant. The only way to reach a tenant's
//! data is [`Registry::tenant`], and every data operation is a method on the
//! handle it returns.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use bulkhead_storage::{Storage, TenantRecord};
use parking_lot::{Mutex, RwLock};

use super::config::EngineConfig;
use super::credentials::{Credentials, IssuedToken, TokenInfo};
use super::error::{EngineError, Result};
use super::name::TenantName;
use super::spec::TenantSpec;
use super::tenant::Tenant;

/// What the admin plane sees of a tenant (list and describe).
#[derive(Debug, Clone, PartialEq)]
pub struct TenantInfo {
    pub name: String,
    pub spec: TenantSpec,
    pub points: usize,
    /// Graph nodes including tombstones not yet rebuilt away.
    pub graph_nodes: usize,
    /// Nodes of the frozen search layout (0 before the first freeze).
    pub frozen_nodes: usize,
    /// Live points written since the last freeze (scanned exactly).
    pub unfrozen_points: usize,
    pub created_unix_ms: u64,
}

pub struct Registry {
    storage: Storage,
    config: Arc<EngineConfig>,
    tenants: RwLock<HashMap<TenantName, Arc<Tenant>>>,
    credentials: Credentials,
    node_secret: [u8; 32],
    /// Serializes create and drop, so a name is never half created.
    lifecycle: Mutex<()>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("tenants", &self.tenants.read().len())
            .finish_non_exhaustive()
    }
}

fn spec_of(record: &TenantRecord) -> Result<TenantSpec> {
    Ok(bulkhead_storage::decode(&record.settings)?)
}

impl Registry {
    /// Opens the registry under `data_dir`, loading every tenant.
    pub fn open(data_dir: &Path, config: EngineConfig) -> Result<Registry> {
        let storage = Storage::open(data_dir, config.storage.clone())?;
        let mut fresh = None;
        let node_secret = storage.node_secret(|| {
            let made = super::credentials::random_bytes::<32>();
            let secret = made.as_ref().map_or([0u8; 32], |s| *s);
            fresh = Some(made);
            secret
        })?;
        if let Some(Err(e)) = fresh {
            return Err(e);
        }
        let config = Arc::new(config);
        let mut tenants = HashMap::new();
        for record in storage.tenants()? {
            let name = TenantName::parse(&record.name)?;
            let spec = spec_of(&record)?;
            let store = storage.open_tenant(&record)?;
            let tenant = Tenant::open(
                name.clone(),
                record,
                spec,
                store,
                Arc::clone(&config),
                &node_secret,
            )?;
            tenants.insert(name, tenant);
        }
        tracing::info!(
            tenants = tenants.len(),
            shelves = storage.shelf_count(),
            "registry open"
        );
        let credentials = Credentials::new(storage.tokens()?);
        Ok(Registry {
            storage,
            config,
            tenants: RwLock::new(tenants),
            credentials,
            node_secret,
            lifecycle: Mutex::new(()),
        })
    }

    pub fn create_tenant(&self, name: &str, spec: TenantSpec) -> Result<Arc<Tenant>> {
        let name = TenantName::parse(name)?;
        spec.validate()?;
        let _lifecycle = self.lifecycle.lock();
        if self.tenants.read().contains_key(&name) {
            return Err(EngineError::TenantExists);
        }
        let settings = bulkhead_storage::encode(&spec)?;
        let (record, store) = self
            .storage
            .create_tenant(name.as_str(), spec.trust_class.as_str(), settings)?
            .ok_or(EngineError::TenantExists)?;
        let tenant = Tenant::open(
            name.clone(),
            record,
            spec,
            store,
            Arc::clone(&self.config),
            &self.node_secret,
        )?;
        self.tenants
            .write()
            .insert(name.clone(), Arc::clone(&tenant));
        self.audit("tenant.create", name.as_str(), None)?;
        tracing::info!(tenant = %name, "tenant created");
        Ok(tenant)
    }

    /// The handle of one tenant. A name that breaks the naming rule is an
    /// invalid argument; a valid name with no tenant is `TenantNotFound`.
    pub fn tenant(&self, name: &str) -> Result<Arc<Tenant>> {
        let name = TenantName::parse(name)?;
        self.tenants
            .read()
            .get(&name)
            .cloned()
            .ok_or(EngineError::TenantNotFound)
    }

    /// Drops a tenant: its column family, files and memory are gone when this
    /// returns, and a later tenant of the same name shares nothing with it.
    pub fn drop_tenant(&self, name: &str) -> Result<()> {
        let name = TenantName::parse(name)?;
        let _lifecycle = self.lifecycle.lock();
        let tenant = self
            .tenants
            .write()
            .remove(&name)
            .ok_or(EngineError::TenantNotFound)?;
        tenant.drop_with(|| Ok(self.storage.drop_tenant(tenant.record())?))?;
        self.credentials.forget_incarnation(tenant.incarnation());
        self.audit("tenant.drop", name.as_str(), None)?;
        tracing::info!(tenant = %name, "tenant dropped");
        Ok(())
    }

    /// The handle of `tenant` if `token` is a valid token bound to it: the
    /// data plane's only way in. A token of another tenant and a tenant that
    /// does not exist give the same `PermissionDenied`.
    pub fn authorize(&self, token: &str, tenant: &str) -> Result<Arc<Tenant>> {
        let name = TenantName::parse(tenant)?;
        let record = self.credentials.verify(token)?;
        let found = self.tenants.read().get(&name).cloned();
        match found {
            Some(t) if record.tenant == name.as_str() && record.incarnation == t.incarnation() => {
                Ok(t)
            }
            _ => Err(EngineError::PermissionDenied),
        }
    }

    /// Issues a token bound to `tenant`. The secret is returned once.
    pub fn issue_token(&self, tenant: &str) -> Result<IssuedToken> {
        let tenant = self.tenant(tenant)?;
        let (record, issued) =
            Credentials::mint(tenant.name().as_str(), tenant.incarnation(), now_unix_ms())?;
        self.storage.put_token(&record)?;
        self.credentials.insert(record);
        self.audit("token.issue", tenant.name().as_str(), Some(&issued.id))?;
        Ok(issued)
    }

    /// Revokes a token: it stops working at once and stays listed as revoked.
    pub fn revoke_token(&self, id: &str) -> Result<()> {
        let mut record = self.credentials.get(id).ok_or(EngineError::TokenNotFound)?;
        if !record.revoked {
            record.revoked = true;
            self.storage.put_token(&record)?;
            self.credentials.insert(record.clone());
        }
        self.audit("token.revoke", &record.tenant, Some(id))
    }

    /// The tokens of one tenant (ids and state, never secrets).
    pub fn list_tokens(&self, tenant: &str) -> Result<Vec<TokenInfo>> {
        let tenant = self.tenant(tenant)?;
        Ok(self.credentials.of_tenant(tenant.name().as_str()))
    }

    fn audit(&self, event: &str, tenant: &str, token_id: Option<&str>) -> Result<()> {
        let mut entry = serde_json::json!({
            "unix_ms": now_unix_ms(),
            "event": event,
            "tenant": tenant,
        });
        if let Some(id) = token_id {
            entry["token_id"] = id.into();
        }
        Ok(self.storage.audit(&entry)?)
    }

    /// Every tenant, by name. For the admin plane only.
    pub fn list_tenants(&self) -> Vec<TenantInfo> {
        let mut infos: Vec<TenantInfo> = self.tenants.read().values().map(|t| info(t)).collect();
        infos.sort_by(|a, b| a.name.cmp(&b.name));
        infos
    }

    /// One tenant's shape and size. For the admin plane only.
    pub fn describe_tenant(&self, name: &str) -> Result<TenantInfo> {
        let tenant = self.tenant(name)?;
        Ok(info(&tenant))
    }

    /// The admin token kept in the data directory (mode 0600), created with
    /// `generate` if there is none: (token, file, created now).
    pub fn admin_token_file(
        &self,
        generate: impl FnOnce() -> String,
    ) -> Result<(String, std::path::PathBuf, bool)> {
        Ok(self.storage.admin_token(generate)?)
    }

    /// Compacts all storage, so deleted bytes leave the files.
    pub fn compact(&self) -> Result<()> {
        Ok(self.storage.compact()?)
    }

    /// Waits for background work, snapshots changed graphs and flushes
    /// storage. The registry stays usable; call it before exit.
    pub fn close(&self) -> Result<()> {
        let tenants: Vec<Arc<Tenant>> = self.tenants.read().values().cloned().collect();
        for tenant in tenants {
            tenant.close()?;
        }
        Ok(self.storage.flush()?)
    }
}

impl Drop for Registry {
    /// Joins background rebuilds and snapshots, so that once the registry
    /// is gone its storage can be opened again.
    fn drop(&mut self) {
        for tenant in self.tenants.read().values() {
            tenant.wait_for_maintenance();
        }
    }
}

fn now_unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn info(tenant: &Tenant) -> TenantInfo {
    TenantInfo {
        name: tenant.name().to_string(),
        spec: tenant.spec().clone(),
        points: tenant.count(None).unwrap_or(0),
        graph_nodes: tenant.graph_nodes(),
        frozen_nodes: tenant.frozen_nodes(),
        unfrozen_points: tenant.unfrozen_points(),
        created_unix_ms: tenant.record().created_unix_ms,
    }
}
