//! `/tenant` and `/tenant/members` (A9, A11, A12): the caller's own tenant only.

use crate::auth::{OwnerCtx, TenantCtx};
use crate::error::{ApiError, ApiResult, OrNotFound};
use crate::extract::{ApiJson, ApiPath};
use crate::http::openapi::{DetailResponse, ErrorBody};
use crate::http::routes::auth::issue_link;
use crate::state::SharedState;
use crate::usage::tenant_minutes;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use talky_core::model::Role;
use talky_core::ports::store::{LinkPayload, Member, Tenant, TenantPatch};
use talky_core::rules::{CallingRules, RecordingPolicy};
use talky_core::{Email, UserId};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<SharedState> {
    OpenApiRouter::new()
        .routes(routes!(get_tenant, update))
        .routes(routes!(list_members, invite))
        .routes(routes!(remove_member))
}

#[derive(Serialize, ToSchema)]
struct TenantResponse {
    id: String,
    business_name: String,
    plan_id: String,
    minutes_allocated: i64,
    minutes_used: i64,
    minutes_remaining: Option<i64>,
    minutes_unlimited: bool,
    #[schema(value_type = Object)]
    calling_rules: CallingRules,
    #[schema(value_type = Object)]
    recording: RecordingPolicy,
    created_at: String,
}

async fn render(state: &SharedState, t: &Tenant) -> ApiResult<TenantResponse> {
    let minutes = tenant_minutes(state.store.as_ref(), t, state.clock.now()).await?;
    Ok(TenantResponse {
        id: t.id.to_string(),
        business_name: t.business_name.clone(),
        plan_id: t.plan_id.clone(),
        minutes_allocated: minutes.minutes_allocated,
        minutes_used: minutes.minutes_used,
        minutes_remaining: minutes.minutes_remaining,
        minutes_unlimited: minutes.minutes_unlimited,
        calling_rules: serde_json::from_value(t.calling_rules.clone()).unwrap_or_default(),
        recording: serde_json::from_value(t.recording.clone()).unwrap_or_default(),
        created_at: crate::time::rfc3339(t.created_at),
    })
}

#[utoipa::path(operation_id = "tenant_get_tenant", get, path = "/tenant", tag = "tenant", security(("bearer" = [])),
    responses((status = 200, body = TenantResponse), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn get_tenant(
    State(state): State<SharedState>,
    t: TenantCtx,
) -> ApiResult<ApiJson<TenantResponse>> {
    let tenant = state
        .store
        .get_tenant(t.tenant_id)
        .await
        .or_not_found("Tenant not found")?;
    Ok(ApiJson(render(&state, &tenant).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct UpdateTenantRequest {
    #[serde(default)]
    business_name: Option<String>,
    #[serde(default)]
    calling_rules: Option<serde_json::Value>,
    #[serde(default)]
    recording: Option<serde_json::Value>,
    #[serde(default)]
    tenant_id: Option<String>,
}

/// Parses a settings object strictly and validates it, naming the failing field.
fn parse_setting<T: serde::de::DeserializeOwned>(
    prefix: &str,
    value: serde_json::Value,
    validate: impl Fn(&T) -> Result<(), talky_core::rules::RuleError>,
) -> ApiResult<serde_json::Value> {
    let parsed: T = serde_json::from_value(value.clone())
        .map_err(|e| ApiError::validation(prefix, e.to_string()))?;
    validate(&parsed)
        .map_err(|e| ApiError::validation(format!("{prefix}.{}", e.field), e.message))?;
    Ok(value)
}

#[utoipa::path(operation_id = "tenant_update", patch, path = "/tenant", tag = "tenant", security(("bearer" = [])), request_body = UpdateTenantRequest,
    description = "Owner only.",
    responses((status = 200, body = TenantResponse), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update(
    State(state): State<SharedState>,
    OwnerCtx(t): OwnerCtx,
    ApiJson(req): ApiJson<UpdateTenantRequest>,
) -> ApiResult<ApiJson<TenantResponse>> {
    crate::auth::check_tenant_param(req.tenant_id.as_deref(), t.tenant_id)?;
    let business_name = match req.business_name {
        Some(n) => {
            let n = n.trim().to_string();
            if n.is_empty() || n.chars().count() > 255 {
                return Err(ApiError::validation(
                    "business_name",
                    "must be 1 to 255 characters",
                ));
            }
            Some(n)
        }
        None => None,
    };
    let calling_rules = req
        .calling_rules
        .map(|v| parse_setting::<CallingRules>("calling_rules", v, CallingRules::validate))
        .transpose()?;
    let recording = req
        .recording
        .map(|v| parse_setting::<RecordingPolicy>("recording", v, RecordingPolicy::validate))
        .transpose()?;
    let tenant = state
        .store
        .update_tenant(
            t.tenant_id,
            TenantPatch {
                business_name,
                calling_rules,
                recording,
            },
        )
        .await
        .or_not_found("Tenant not found")?;
    Ok(ApiJson(render(&state, &tenant).await?))
}

#[derive(Serialize, ToSchema)]
struct MemberResponse {
    user_id: String,
    email: String,
    name: Option<String>,
    role: &'static str,
    joined_at: String,
}

impl From<Member> for MemberResponse {
    fn from(m: Member) -> Self {
        Self {
            user_id: m.user_id.to_string(),
            email: m.email,
            name: m.name,
            role: m.role.as_str(),
            joined_at: crate::time::rfc3339(m.joined_at),
        }
    }
}

#[utoipa::path(operation_id = "tenant_list_members", get, path = "/tenant/members", tag = "tenant", security(("bearer" = [])),
    responses((status = 200, body = [MemberResponse]), (status = 403, body = ErrorBody)))]
async fn list_members(
    State(state): State<SharedState>,
    t: TenantCtx,
) -> ApiResult<ApiJson<Vec<MemberResponse>>> {
    let members = state.store.list_members(t.tenant_id).await?;
    Ok(ApiJson(
        members.into_iter().map(MemberResponse::from).collect(),
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct InviteRequest {
    email: String,
    #[serde(default = "default_role")]
    #[schema(value_type = String, example = "member")]
    role: Role,
}

fn default_role() -> Role {
    Role::Member
}

#[utoipa::path(operation_id = "tenant_invite", post, path = "/tenant/members", tag = "tenant", security(("bearer" = [])), request_body = InviteRequest,
    description = "Owner only. Mails an invite link; verifying it creates the membership.",
    responses((status = 201, description = "Invitation sent"), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn invite(
    State(state): State<SharedState>,
    OwnerCtx(t): OwnerCtx,
    ApiJson(req): ApiJson<InviteRequest>,
) -> ApiResult<(StatusCode, ApiJson<serde_json::Value>)> {
    let email =
        Email::parse(&req.email).map_err(|e| ApiError::validation("email", e.to_string()))?;
    if state.store.user_has_tenant(email.as_str()).await? {
        return Err(ApiError::conflict("User already belongs to a tenant"));
    }
    issue_link(
        &state,
        &email,
        LinkPayload::Invite {
            tenant_id: t.tenant_id,
            role: req.role,
        },
        &format!("You are invited to {} on Talky", t.tenant.business_name),
        &format!(
            "You have been invited to join {} on Talky.",
            t.tenant.business_name
        ),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        ApiJson(serde_json::json!({
            "message": "Invitation sent",
            "email": email.as_str(),
            "role": req.role.as_str(),
        })),
    ))
}

#[utoipa::path(operation_id = "tenant_remove_member", delete, path = "/tenant/members/{user_id}", tag = "tenant", security(("bearer" = [])),
    params(("user_id" = String, Path, format = Uuid)),
    responses((status = 200, body = DetailResponse), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, description = "Last owner", body = ErrorBody)))]
async fn remove_member(
    State(state): State<SharedState>,
    OwnerCtx(t): OwnerCtx,
    ApiPath(user_id): ApiPath<UserId>,
) -> ApiResult<ApiJson<serde_json::Value>> {
    state
        .store
        .remove_member(t.tenant_id, user_id, state.clock.now())
        .await
        .or_not_found("Member not found")?;
    Ok(ApiJson(serde_json::json!({"detail": "Member removed"})))
}
