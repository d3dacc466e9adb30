//! Access: tokens bound to one tenant's incarnation, and the checks that
//! give the data plane a tenant's handle.

use std::sync::Arc;

use super::audit::AuditEvent;
use super::entry::TenantEntry;
use super::{Registry, now_unix_ms};
use crate::credentials::{Credentials, IssuedToken, TokenInfo};
use crate::error::{EngineError, Result};
use crate::name::TenantName;
use crate::tenant::Tenant;

impl Registry {
    /// The handle of `tenant` if `token` is a valid token bound to it: the
    /// data plane's only way in. A token of another tenant and a tenant that
    /// does not exist give the same `PermissionDenied`.
    pub fn authorize(&self, token: &str, tenant: &str) -> Result<Arc<Tenant>> {
        let entry = self.authorized_entry(token, tenant)?;
        // Counted and loaded only for a caller whose token is bound to it.
        entry.limits.admit_request()?;
        self.load(&entry).map_err(|e| match e {
            EngineError::TenantNotFound => EngineError::PermissionDenied,
            other => other,
        })
    }

    /// As [`Registry::authorize`], for a caller that must not wait on a
    /// disk (an async worker): `None` when the tenant is not loaded, and
    /// then nothing is counted; `authorize` it where blocking is allowed.
    pub fn authorize_loaded(&self, token: &str, tenant: &str) -> Result<Option<Arc<Tenant>>> {
        let entry = self.authorized_entry(token, tenant)?;
        let Some(loaded) = entry.loaded() else {
            return Ok(None);
        };
        entry.limits.admit_request()?;
        self.touch(&entry);
        Ok(Some(loaded))
    }

    /// The entry of `tenant` if `token` is a valid token bound to it.
    fn authorized_entry(&self, token: &str, tenant: &str) -> Result<Arc<TenantEntry>> {
        let name = TenantName::parse(tenant)?;
        let record = self.credentials.verify(token)?;
        let found = self.tenants.read().get(&name).cloned();
        match found {
            Some(entry)
                if record.tenant == name.as_str()
                    && record.incarnation == entry.record.incarnation =>
            {
                Ok(entry)
            }
            _ => Err(EngineError::PermissionDenied),
        }
    }

    /// Issues a token bound to `tenant`. The secret is returned once.
    pub fn issue_token(&self, tenant: &str) -> Result<IssuedToken> {
        let entry = self.entry(tenant)?;
        let (record, issued) =
            Credentials::mint(entry.name.as_str(), entry.record.incarnation, now_unix_ms())?;
        self.storage.put_token(&record)?;
        self.credentials.insert(record);
        self.audit(AuditEvent::TokenIssue {
            tenant: entry.name.as_str(),
            token_id: &issued.id,
        })?;
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
        self.audit(AuditEvent::TokenRevoke {
            tenant: &record.tenant,
            token_id: id,
        })
    }

    /// The tokens of one tenant (ids and state, never secrets).
    pub fn list_tokens(&self, tenant: &str) -> Result<Vec<TokenInfo>> {
        let entry = self.entry(tenant)?;
        Ok(self.credentials.of_tenant(entry.name.as_str()))
    }
}
