//! The admin client: tenants and tokens, with the admin token.

use tonic::Request;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::Channel;

use crate::error::Result;
use crate::proto;
use crate::proto::admin_service_client::AdminServiceClient;

/// A token as issued: the secret is shown this once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedToken {
    pub id: String,
    pub token: String,
}

#[derive(Debug, Clone)]
pub struct AdminClient {
    bearer: MetadataValue<Ascii>,
    admin: AdminServiceClient<Channel>,
}

impl AdminClient {
    /// Connects to `addr` ("http://host:port", or "https://host:port"
    /// trusting the system's roots; see [`crate::connect`] for more).
    pub async fn connect(addr: impl Into<String>, admin_token: impl AsRef<str>) -> Result<Self> {
        let channel = crate::connect(addr, &crate::Tls::default()).await?;
        Self::with_channel(channel, admin_token)
    }

    pub fn with_channel(channel: Channel, admin_token: impl AsRef<str>) -> Result<Self> {
        Ok(AdminClient {
            bearer: crate::bearer(admin_token.as_ref())?,
            admin: AdminServiceClient::new(channel),
        })
    }

    fn request<T>(&self, message: T) -> Request<T> {
        crate::authorized(&self.bearer, message)
    }

    /// Creates a tenant with default index parameters and trust class.
    pub async fn create_tenant(
        &self,
        name: &str,
        dimension: u32,
        metric: proto::Metric,
    ) -> Result<proto::TenantInfo> {
        let spec = proto::TenantSpec {
            dimension,
            metric: metric as i32,
            ..Default::default()
        };
        self.create_tenant_with(name, spec).await
    }

    /// Creates a tenant with a full spec (index parameters, trust class).
    pub async fn create_tenant_with(
        &self,
        name: &str,
        spec: proto::TenantSpec,
    ) -> Result<proto::TenantInfo> {
        self.create_tenant_with_quotas(name, spec, None).await
    }

    /// Creates a tenant with a full spec and quotas.
    pub async fn create_tenant_with_quotas(
        &self,
        name: &str,
        spec: proto::TenantSpec,
        quotas: Option<proto::Quotas>,
    ) -> Result<proto::TenantInfo> {
        self.create(proto::CreateTenantRequest {
            name: name.into(),
            spec: Some(spec),
            quotas,
            contract: None,
        })
        .await
    }

    /// Creates a tenant from a whole request (spec, quotas, contract).
    pub async fn create(&self, request: proto::CreateTenantRequest) -> Result<proto::TenantInfo> {
        let response = self
            .admin
            .clone()
            .create_tenant(self.request(request))
            .await?
            .into_inner();
        Ok(response.tenant.unwrap_or_default())
    }

    pub async fn drop_tenant(&self, name: &str) -> Result<()> {
        self.admin
            .clone()
            .drop_tenant(self.request(proto::DropTenantRequest { name: name.into() }))
            .await?;
        Ok(())
    }

    pub async fn list_tenants(&self) -> Result<Vec<proto::TenantInfo>> {
        Ok(self
            .admin
            .clone()
            .list_tenants(self.request(proto::ListTenantsRequest {}))
            .await?
            .into_inner()
            .tenants)
    }

    pub async fn describe_tenant(&self, name: &str) -> Result<proto::TenantInfo> {
        Ok(self.describe(name).await?.tenant.unwrap_or_default())
    }

    /// The tenant and its counters in its embedder's cache (absent when no
    /// embedder serves its trust class).
    pub async fn describe(&self, name: &str) -> Result<proto::DescribeTenantResponse> {
        let request = self.request(proto::DescribeTenantRequest { name: name.into() });
        Ok(self
            .admin
            .clone()
            .describe_tenant(request)
            .await?
            .into_inner())
    }

    /// Replaces a tenant's quotas (a field left 0 is unlimited).
    pub async fn set_quotas(&self, name: &str, quotas: proto::Quotas) -> Result<proto::TenantInfo> {
        let request = self.request(proto::SetQuotasRequest {
            name: name.into(),
            quotas: Some(quotas),
        });
        let response = self.admin.clone().set_quotas(request).await?.into_inner();
        Ok(response.tenant.unwrap_or_default())
    }

    /// Pins (never evicted by the memory budget) or unpins a tenant.
    pub async fn pin_tenant(&self, name: &str, pinned: bool) -> Result<proto::TenantInfo> {
        let request = self.request(proto::PinTenantRequest {
            name: name.into(),
            pinned,
        });
        let response = self.admin.clone().pin_tenant(request).await?.into_inner();
        Ok(response.tenant.unwrap_or_default())
    }

    /// Loads a cold tenant now.
    pub async fn warm_tenant(&self, name: &str) -> Result<proto::TenantInfo> {
        let request = self.request(proto::WarmTenantRequest { name: name.into() });
        let response = self.admin.clone().warm_tenant(request).await?.into_inner();
        Ok(response.tenant.unwrap_or_default())
    }

    /// Evicts a tenant to cold now.
    pub async fn cool_tenant(&self, name: &str) -> Result<proto::TenantInfo> {
        let request = self.request(proto::CoolTenantRequest { name: name.into() });
        let response = self.admin.clone().cool_tenant(request).await?.into_inner();
        Ok(response.tenant.unwrap_or_default())
    }

    pub async fn issue_token(&self, tenant: &str) -> Result<IssuedToken> {
        let request = self.request(proto::IssueTokenRequest {
            tenant: tenant.into(),
        });
        let issued = self.admin.clone().issue_token(request).await?.into_inner();
        Ok(IssuedToken {
            id: issued.id,
            token: issued.token,
        })
    }

    pub async fn revoke_token(&self, id: &str) -> Result<()> {
        self.admin
            .clone()
            .revoke_token(self.request(proto::RevokeTokenRequest { id: id.into() }))
            .await?;
        Ok(())
    }

    pub async fn list_tokens(&self, tenant: &str) -> Result<Vec<proto::TokenInfo>> {
        let request = self.request(proto::ListTokensRequest {
            tenant: tenant.into(),
        });
        Ok(self
            .admin
            .clone()
            .list_tokens(request)
            .await?
            .into_inner()
            .tokens)
    }

    /// Replaces a tenant's contract (the server bumps its version).
    pub async fn set_contract(
        &self,
        name: &str,
        contract: proto::TenantContract,
    ) -> Result<proto::TenantInfo> {
        let request = self.request(proto::SetContractRequest {
            name: name.into(),
            contract: Some(contract),
        });
        let response = self.admin.clone().set_contract(request).await?.into_inner();
        Ok(response.tenant.unwrap_or_default())
    }

    /// Registers a model by its weights' SHA-256 with its lineage manifest
    /// (CycloneDX 1.6 JSON).
    pub async fn register_model(
        &self,
        name: &str,
        digest: &str,
        manifest_json: String,
    ) -> Result<proto::ModelInfo> {
        let request = self.request(proto::RegisterModelRequest {
            name: name.into(),
            digest: digest.into(),
            manifest_json,
        });
        let response = self
            .admin
            .clone()
            .register_model(request)
            .await?
            .into_inner();
        Ok(response.model.unwrap_or_default())
    }

    pub async fn list_models(&self) -> Result<Vec<proto::ModelInfo>> {
        let request = self.request(proto::ListModelsRequest {});
        Ok(self
            .admin
            .clone()
            .list_models(request)
            .await?
            .into_inner()
            .models)
    }

    /// Assigns a registered model (None: removes the assignment) to a
    /// trust class or a tenant.
    pub async fn assign_model(
        &self,
        digest: Option<&str>,
        target: proto::assign_model_request::Target,
    ) -> Result<()> {
        let request = self.request(proto::AssignModelRequest {
            digest: digest.unwrap_or_default().into(),
            target: Some(target),
        });
        self.admin.clone().assign_model(request).await?;
        Ok(())
    }

    /// The texts of `tenants` for training, streamed, each tagged with its
    /// tenant; refused unless their contracts allow it.
    pub async fn export_training_data(
        &self,
        tenants: Vec<String>,
    ) -> Result<tonic::Streaming<proto::ExportTrainingDataResponse>> {
        let request = self.request(proto::ExportTrainingDataRequest { tenants });
        Ok(self
            .admin
            .clone()
            .export_training_data(request)
            .await?
            .into_inner())
    }

    /// The models whose lineage holds a tenant's data.
    pub async fn lineage(&self, tenant: &str) -> Result<Vec<proto::ModelInfo>> {
        let request = self.request(proto::AdminServiceLineageRequest {
            tenant: tenant.into(),
        });
        Ok(self
            .admin
            .clone()
            .lineage(request)
            .await?
            .into_inner()
            .models)
    }

    /// A page of a tenant's access log, as the tenant reads it.
    pub async fn access_log(
        &self,
        name: &str,
        cursor: Option<&str>,
        since_unix_ms: u64,
        limit: u32,
    ) -> Result<proto::TenantAccessLogResponse> {
        let request = self.request(proto::TenantAccessLogRequest {
            name: name.into(),
            cursor: cursor.unwrap_or_default().to_string(),
            since_unix_ms,
            limit,
        });
        Ok(self
            .admin
            .clone()
            .tenant_access_log(request)
            .await?
            .into_inner())
    }
}
