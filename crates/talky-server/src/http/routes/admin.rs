//! `/admin/*` (B6): platform administrators only; returns only the listed fields.

use crate::auth::PlatformAdmin;
use crate::error::{ApiError, ApiResult, OrNotFound};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::state::SharedState;
use crate::usage::tenant_minutes;
use axum::extract::State;
use axum::routing::{get, patch};
use axum::Router;
use serde::{Deserialize, Serialize};
use talky_core::ports::store::Tenant;
use talky_core::TenantId;

pub fn router() -> Router<SharedState> {
    Router::new()
        .route("/admin/tenants", get(list_tenants))
        .route("/admin/tenants/{tenant_id}", get(get_tenant))
        .route("/admin/tenants/{tenant_id}/minutes", patch(set_minutes))
        .route("/admin/users", get(list_users))
}

#[derive(Serialize)]
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

async fn list_tenants(State(state): State<SharedState>, _a: PlatformAdmin) -> ApiResult<ApiJson<Vec<AdminTenant>>> {
    let mut out = Vec::new();
    for t in state.store.admin_list_tenants().await? {
        out.push(render(&state, t).await?);
    }
    Ok(ApiJson(out))
}

async fn get_tenant(
    State(state): State<SharedState>,
    _a: PlatformAdmin,
    ApiPath(id): ApiPath<TenantId>,
) -> ApiResult<ApiJson<AdminTenant>> {
    let t = state.store.admin_get_tenant(id).await.or_not_found("Tenant not found")?;
    Ok(ApiJson(render(&state, t).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MinutesQuery {
    minutes_allocated: i64,
}

async fn set_minutes(
    State(state): State<SharedState>,
    _a: PlatformAdmin,
    ApiPath(id): ApiPath<TenantId>,
    ApiQuery(q): ApiQuery<MinutesQuery>,
) -> ApiResult<ApiJson<serde_json::Value>> {
    if !(-1..=100_000_000).contains(&q.minutes_allocated) {
        return Err(ApiError::validation("minutes_allocated", "must be between -1 and 100000000"));
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

#[derive(Serialize)]
struct AdminUser {
    id: String,
    email: String,
    role: Option<&'static str>,
    tenant_id: Option<String>,
}

async fn list_users(State(state): State<SharedState>, _a: PlatformAdmin) -> ApiResult<ApiJson<Vec<AdminUser>>> {
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
