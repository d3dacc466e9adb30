//! The control plane: `AdminService`, for the admin token only.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::auth::AdminToken;
use super::embedders::Embedders;
use super::status::{Plane, to_status};
use super::{blocking, convert};
use crate::engine::{AssignTarget, Registry, Telemetry};
use crate::proto;
use crate::proto::admin_service_server::AdminService;

#[derive(Debug, Clone)]
pub struct AdminApi {
    registry: Arc<Registry>,
    token: AdminToken,
    embedders: Arc<Embedders>,
}

impl AdminApi {
    pub fn new(registry: Arc<Registry>, token: AdminToken, embedders: Arc<Embedders>) -> Self {
        AdminApi {
            registry,
            token,
            embedders,
        }
    }

    pub fn into_service(self) -> proto::admin_service_server::AdminServiceServer<Self> {
        proto::admin_service_server::AdminServiceServer::new(self)
    }

    /// Runs `f` on the blocking pool. Callers check the admin token first.
    async fn on_registry<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Registry) -> crate::engine::Result<R> + Send + 'static,
    ) -> Result<R, Status> {
        let registry = Arc::clone(&self.registry);
        blocking(move || f(&registry), Plane::Admin).await
    }
}

#[tonic::async_trait]
impl AdminService for AdminApi {
    async fn create_tenant(
        &self,
        request: Request<proto::CreateTenantRequest>,
    ) -> Result<Response<proto::CreateTenantResponse>, Status> {
        self.token.check(&request)?;
        let r = request.get_ref();
        let (name, spec) = (r.name.clone(), convert::tenant_spec(r.spec.clone())?);
        let quotas = convert::quotas(r.quotas);
        let contract = convert::contract(r.contract.clone())?;
        let info = self
            .on_registry(move |reg| {
                reg.create_tenant_with(&name, spec, quotas, contract)?;
                reg.describe_tenant(&name)
            })
            .await?;
        Ok(Response::new(proto::CreateTenantResponse {
            tenant: Some(convert::tenant_info(info)),
        }))
    }

    async fn drop_tenant(
        &self,
        request: Request<proto::DropTenantRequest>,
    ) -> Result<Response<proto::DropTenantResponse>, Status> {
        self.token.check(&request)?;
        let name = request.get_ref().name.clone();
        let (class, incarnation) = self
            .on_registry(move |reg| {
                let info = reg.describe_tenant(&name)?;
                reg.drop_tenant(&name)?;
                Ok((info.spec.trust_class, info.incarnation))
            })
            .await?;
        self.embedders.forget(class.as_str(), incarnation).await;
        Ok(Response::new(proto::DropTenantResponse {}))
    }

    async fn list_tenants(
        &self,
        request: Request<proto::ListTenantsRequest>,
    ) -> Result<Response<proto::ListTenantsResponse>, Status> {
        self.token.check(&request)?;
        let tenants = self.on_registry(|reg| Ok(reg.list_tenants())).await?;
        Ok(Response::new(proto::ListTenantsResponse {
            tenants: tenants.into_iter().map(convert::tenant_info).collect(),
        }))
    }

    async fn describe_tenant(
        &self,
        request: Request<proto::DescribeTenantRequest>,
    ) -> Result<Response<proto::DescribeTenantResponse>, Status> {
        self.token.check(&request)?;
        let name = request.get_ref().name.clone();
        let info = self
            .on_registry(move |reg| reg.describe_tenant(&name))
            .await?;
        // The cache counters are usage telemetry: not for a tenant whose
        // contract says none.
        let embedding_cache = match info.contract.telemetry {
            Telemetry::None => None,
            Telemetry::Aggregate => {
                self.embedders
                    .cache_stats(info.spec.trust_class.as_str(), info.incarnation)
                    .await
            }
        };
        Ok(Response::new(proto::DescribeTenantResponse {
            tenant: Some(convert::tenant_info(info)),
            embedding_cache,
        }))
    }

    async fn set_quotas(
        &self,
        request: Request<proto::SetQuotasRequest>,
    ) -> Result<Response<proto::SetQuotasResponse>, Status> {
        self.token.check(&request)?;
        let r = request.into_inner();
        let quotas = convert::quotas(r.quotas);
        let info = self
            .on_registry(move |reg| reg.set_quotas(&r.name, quotas))
            .await?;
        Ok(Response::new(proto::SetQuotasResponse {
            tenant: Some(convert::tenant_info(info)),
        }))
    }

    async fn pin_tenant(
        &self,
        request: Request<proto::PinTenantRequest>,
    ) -> Result<Response<proto::PinTenantResponse>, Status> {
        self.token.check(&request)?;
        let r = request.into_inner();
        let info = self
            .on_registry(move |reg| reg.pin_tenant(&r.name, r.pinned))
            .await?;
        Ok(Response::new(proto::PinTenantResponse {
            tenant: Some(convert::tenant_info(info)),
        }))
    }

    async fn warm_tenant(
        &self,
        request: Request<proto::WarmTenantRequest>,
    ) -> Result<Response<proto::WarmTenantResponse>, Status> {
        self.token.check(&request)?;
        let name = request.into_inner().name;
        let info = self.on_registry(move |reg| reg.warm_tenant(&name)).await?;
        Ok(Response::new(proto::WarmTenantResponse {
            tenant: Some(convert::tenant_info(info)),
        }))
    }

    async fn cool_tenant(
        &self,
        request: Request<proto::CoolTenantRequest>,
    ) -> Result<Response<proto::CoolTenantResponse>, Status> {
        self.token.check(&request)?;
        let name = request.into_inner().name;
        let info = self.on_registry(move |reg| reg.cool_tenant(&name)).await?;
        Ok(Response::new(proto::CoolTenantResponse {
            tenant: Some(convert::tenant_info(info)),
        }))
    }

    async fn issue_token(
        &self,
        request: Request<proto::IssueTokenRequest>,
    ) -> Result<Response<proto::IssueTokenResponse>, Status> {
        self.token.check(&request)?;
        let tenant = request.get_ref().tenant.clone();
        let issued = self
            .on_registry(move |reg| reg.issue_token(&tenant))
            .await?;
        Ok(Response::new(proto::IssueTokenResponse {
            id: issued.id,
            token: issued.token,
        }))
    }

    async fn revoke_token(
        &self,
        request: Request<proto::RevokeTokenRequest>,
    ) -> Result<Response<proto::RevokeTokenResponse>, Status> {
        self.token.check(&request)?;
        let id = request.get_ref().id.clone();
        self.on_registry(move |reg| reg.revoke_token(&id)).await?;
        Ok(Response::new(proto::RevokeTokenResponse {}))
    }

    async fn list_tokens(
        &self,
        request: Request<proto::ListTokensRequest>,
    ) -> Result<Response<proto::ListTokensResponse>, Status> {
        self.token.check(&request)?;
        let tenant = request.get_ref().tenant.clone();
        let tokens = self
            .on_registry(move |reg| reg.list_tokens(&tenant))
            .await?;
        Ok(Response::new(proto::ListTokensResponse {
            tokens: tokens
                .into_iter()
                .map(|t| proto::TokenInfo {
                    id: t.id,
                    tenant: t.tenant,
                    created_unix_ms: t.created_unix_ms,
                    revoked: t.revoked,
                })
                .collect(),
        }))
    }

    async fn set_contract(
        &self,
        request: Request<proto::SetContractRequest>,
    ) -> Result<Response<proto::SetContractResponse>, Status> {
        self.token.check(&request)?;
        let r = request.into_inner();
        if r.contract.is_none() {
            return Err(Status::invalid_argument(
                "contract is required: the whole new contract",
            ));
        }
        let contract = convert::contract(r.contract)?;
        let info = self
            .on_registry(move |reg| reg.set_contract(&r.name, contract))
            .await?;
        Ok(Response::new(proto::SetContractResponse {
            tenant: Some(convert::tenant_info(info)),
        }))
    }

    async fn register_model(
        &self,
        request: Request<proto::RegisterModelRequest>,
    ) -> Result<Response<proto::RegisterModelResponse>, Status> {
        self.token.check(&request)?;
        let r = request.into_inner();
        let model = self
            .on_registry(move |reg| reg.register_model(&r.name, &r.digest, &r.manifest_json))
            .await?;
        Ok(Response::new(proto::RegisterModelResponse {
            model: Some(convert::model_info(model)),
        }))
    }

    async fn list_models(
        &self,
        request: Request<proto::ListModelsRequest>,
    ) -> Result<Response<proto::ListModelsResponse>, Status> {
        self.token.check(&request)?;
        let models = self.on_registry(|reg| Ok(reg.list_models())).await?;
        Ok(Response::new(proto::ListModelsResponse {
            models: models.into_iter().map(convert::model_info).collect(),
        }))
    }

    async fn assign_model(
        &self,
        request: Request<proto::AssignModelRequest>,
    ) -> Result<Response<proto::AssignModelResponse>, Status> {
        use proto::assign_model_request::Target;
        self.token.check(&request)?;
        let r = request.into_inner();
        let target = match r.target {
            Some(Target::TrustClass(class)) => AssignTarget::TrustClass(class),
            Some(Target::Tenant(tenant)) => AssignTarget::Tenant(tenant),
            None => {
                return Err(Status::invalid_argument(
                    "assign a model to a trust_class or a tenant",
                ));
            }
        };
        let digest = (!r.digest.is_empty()).then_some(r.digest);
        self.on_registry(move |reg| reg.assign_model(digest.as_deref(), target))
            .await?;
        Ok(Response::new(proto::AssignModelResponse {}))
    }

    type ExportTrainingDataStream = std::pin::Pin<
        Box<
            dyn tokio_stream::Stream<Item = Result<proto::ExportTrainingDataResponse, Status>>
                + Send
                + 'static,
        >,
    >;

    async fn export_training_data(
        &self,
        request: Request<proto::ExportTrainingDataRequest>,
    ) -> Result<Response<Self::ExportTrainingDataStream>, Status> {
        self.token.check(&request)?;
        let names = request.into_inner().tenants;
        let tenants = self
            .on_registry(move |reg| reg.training_export(&names))
            .await?;
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        tokio::task::spawn_blocking(move || {
            for (tenant, contract_version) in tenants {
                let mut cursor: Option<String> = None;
                loop {
                    let page = match tenant.scroll(cursor.as_deref(), 256, None, true, false) {
                        Ok(page) => page,
                        Err(e) => {
                            let _ = tx.blocking_send(Err(to_status(e, Plane::Admin)));
                            return;
                        }
                    };
                    for p in page.points {
                        let Some(text) = p.text else { continue };
                        let record = proto::ExportTrainingDataResponse {
                            tenant: tenant.name().to_string(),
                            id: p.id,
                            text,
                            payload: p.payload.as_ref().map(convert::json_to_struct),
                            contract_version,
                        };
                        if tx.blocking_send(Ok(record)).is_err() {
                            return; // the caller went away
                        }
                    }
                    match page.next_cursor {
                        Some(next) => cursor = Some(next),
                        None => break,
                    }
                }
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }

    async fn lineage(
        &self,
        request: Request<proto::AdminServiceLineageRequest>,
    ) -> Result<Response<proto::AdminServiceLineageResponse>, Status> {
        self.token.check(&request)?;
        let tenant = request.into_inner().tenant;
        let models = self.on_registry(move |reg| reg.lineage_of(&tenant)).await?;
        Ok(Response::new(proto::AdminServiceLineageResponse {
            models: models.into_iter().map(convert::model_info).collect(),
        }))
    }

    async fn tenant_access_log(
        &self,
        request: Request<proto::TenantAccessLogRequest>,
    ) -> Result<Response<proto::TenantAccessLogResponse>, Status> {
        self.token.check(&request)?;
        let r = request.into_inner();
        let page = convert::AccessPageRequest::of(&r.cursor, r.since_unix_ms, r.limit)?;
        let page = self
            .on_registry(move |reg| {
                reg.tenant_access_log(&r.name, page.after, page.since_unix_ms, page.limit)
            })
            .await?;
        let (entries, next_cursor) = convert::access_page(page);
        Ok(Response::new(proto::TenantAccessLogResponse {
            entries,
            next_cursor,
        }))
    }
}
