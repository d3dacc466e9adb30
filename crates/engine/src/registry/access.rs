//! Access: tokens bound to one tenant's incarnation, and the checks that
//! give the data plane a tenant's handle.

use std::sync::Arc;

use super::audit::AuditEvent;
use super::entry::TenantEntry;
use super::{Registry, now_unix_ms};
use crate::credentials::{Credentials, IssuedToken, TokenInfo};
use crate::error::{EngineError, Result};
use crate::name::TenantName;
use crate::quota::SearchPermit;
use crate::tenant::Tenant;

/// A caller whose token is bound to the tenant it names, checked in memory
/// by [`Registry::admit`]: what the server's admission needs (the tenant's
/// key, its search quota) before the tenant is loaded, and what
/// [`Registry::handle`] turns into the tenant's handle.
#[derive(Clone)]
pub struct Access {
    pub(super) entry: Arc<TenantEntry>,
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Access")
            .field("incarnation", &self.key())
            .finish_non_exhaustive()
    }
}

impl Access {
    /// The tenant's key for fair scheduling: its incarnation, so that a
    /// dropped and recreated name starts afresh.
    pub fn key(&self) -> u64 {
        self.entry.record.incarnation
    }

    /// Whether the tenant is in memory: opening it waits on no disk.
    pub fn is_loaded(&self) -> bool {
        self.entry.loaded().is_some()
    }

    /// Counts a search against the tenant's `max_concurrent_searches`
    /// quota until the permit drops.
    pub fn begin_search(&self) -> Result<SearchPermit> {
        self.entry.limits.begin_search()
    }
}

impl Registry {
    /// The handle of `tenant` if `token` is a valid token bound to it: the
    /// data plane's only way in, [`admit`](Self::admit) and
    /// [`handle`](Self::handle) in one. A token of another tenant and a tenant
    /// that does not exist give the same `PermissionDenied`.
    pub fn authorize(&self, token: &str, tenant: &str) -> Result<Arc<Tenant>> {
        let access = self.admit(token, tenant)?;
        self.handle(&access)
    }

    /// Checks in memory, without waiting on a disk, that `token` is bound
    /// to `tenant`, and takes one request from the tenant's rate budget
    /// (only for a caller whose token is bound to it).
    pub fn admit(&self, token: &str, tenant: &str) -> Result<Access> {
        let access = self.authorize_only(token, tenant)?;
        self.charge_request(&access)?;
        Ok(access)
    }

    /// [`Registry::admit`]'s first half: the token checked against the
    /// tenant, nothing charged. Callers charge the request next
    /// ([`Registry::charge_request`]); between the two they may note
    /// whose the call is (so a rate refusal is the tenant's, in its
    /// metrics and access log).
    pub fn authorize_only(&self, token: &str, tenant: &str) -> Result<Access> {
        Ok(Access {
            entry: self.authorized_entry(token, tenant)?,
        })
    }

    /// [`Registry::admit`]'s second half: the request taken from the
    /// tenant's rate quota (RESOURCE_EXHAUSTED past it).
    pub fn charge_request(&self, access: &Access) -> Result<()> {
        access.entry.limits.admit_request()
    }

    /// The admitted tenant's handle, loaded from disk when it is cold (so
    /// only where blocking is allowed).
    pub fn handle(&self, access: &Access) -> Result<Arc<Tenant>> {
        self.load(&access.entry).map_err(|e| match e {
            EngineError::TenantNotFound => EngineError::PermissionDenied,
            other => other,
        })
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
