//! `/admin/*` (B6): platform administrators only; returns only the listed fields.

use crate::auth::PlatformAdmin;
use crate::error::{ApiError, ApiResult, OrNotFound};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::http::openapi::ErrorBody;
use crate::state::SharedState;
use crate::usage::tenant_minutes;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use talky_core::ports::store::Tenant;
use talky_core::TenantId;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<SharedState> {
    OpenApiRouter::new()
        .routes(routes!(list_tenants))
        .routes(routes!(get_tenant))
        .routes(routes!(set_minutes))
        .routes(routes!(list_users))
}

#[derive(Serialize, ToSchema)]
struct AdminTenant {
    id: String,
    business_name: String,
    plan_id: String,
    minutes_used: i64,
    minutes_allocated: i64,
}

async fn render(state: &SharedState, t: Tenant) -> ApiResult<AdminTenant> {
    let m = tenant_minutes(state.store.as_ref(), &t, state.clock.now()).await?;
    Ok(AdminTenant {
        id: t.id.to_string(),
        business_name: t.business_name,
        plan_id: t.plan_id,
        minutes_used: m.minutes_used,
        minutes_allocated: m.minutes_allocated,
    })
}

#[utoipa::path(operation_id = "admin_list_tenants", get, path = "/admin/tenants", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = [AdminTenant]), (status = 403, description = "Admin access required", body = ErrorBody)))]
async fn list_tenants(
    State(state): State<SharedState>,
    _a: PlatformAdmin,
) -> ApiResult<ApiJson<Vec<AdminTenant>>> {
    let mut out = Vec::new();
    for t in state.store.admin_list_tenants().await? {
        out.push(render(&state, t).await?);
    }
    Ok(ApiJson(out))
}

#[utoipa::path(operation_id = "admin_get_tenant", get, path = "/admin/tenants/{tenant_id}", tag = "admin", security(("bearer" = [])),
    params(("tenant_id" = String, Path, format = Uuid)),
    responses((status = 200, body = AdminTenant), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_tenant(
    State(state): State<SharedState>,
    _a: PlatformAdmin,
    ApiPath(id): ApiPath<TenantId>,
) -> ApiResult<ApiJson<AdminTenant>> {
    let t = state
        .store
        .admin_get_tenant(id)
        .await
        .or_not_found("Tenant not found")?;
    Ok(ApiJson(render(&state, t).await?))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct MinutesQuery {
    minutes_allocated: i64,
}

#[utoipa::path(operation_id = "admin_set_minutes", patch, path = "/admin/tenants/{tenant_id}/minutes", tag = "admin", security(("bearer" = [])),
    params(("tenant_id" = String, Path, format = Uuid), MinutesQuery),
    responses((status = 200, description = "Minutes updated"), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn set_minutes(
    State(state): State<SharedState>,
    _a: PlatformAdmin,
    ApiPath(id): ApiPath<TenantId>,
    ApiQuery(q): ApiQuery<MinutesQuery>,
) -> ApiResult<ApiJson<serde_json::Value>> {
    if !(-1..=100_000_000).contains(&q.minutes_allocated) {
        return Err(ApiError::validation(
            "minutes_allocated",
            "must be between -1 and 100000000",
        ));
    }
    let t = state
        .store
        .admin_set_minutes(id, q.minutes_allocated)
        .await
        .or_not_found("Tenant not found")?;
    Ok(ApiJson(serde_json::json!({
        "detail": "Minutes updated",
        "minutes_allocated": t.minutes_allocated,
    })))
}

#[derive(Serialize, ToSchema)]
struct AdminUser {
    id: String,
    email: String,
    role: Option<&'static str>,
    tenant_id: Option<String>,
}

#[utoipa::path(operation_id = "admin_list_users", get, path = "/admin/users", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = [AdminUser]), (status = 403, body = ErrorBody)))]
async fn list_users(
    State(state): State<SharedState>,
    _a: PlatformAdmin,
) -> ApiResult<ApiJson<Vec<AdminUser>>> {
    let users = state.store.admin_list_users().await?;
    Ok(ApiJson(
        users
            .into_iter()
            .map(|u| AdminUser {
                id: u.id.to_string(),
                email: u.email,
                role: u.role.map(|r| r.as_str()),
                tenant_id: u.tenant_id.map(|t| t.to_string()),
            })
            .collect(),
    ))
}
