//! `/dnc` (behaviour.md E19): the tenant's do-not-call list. Numbers are normalised by D6
//! everywhere, so `DELETE /dnc/{e164}` accepts the number in any form D6 understands (the
//! path value is usually the URL-encoded `%2B1555…`).

use crate::auth::{check_tenant_param, TenantCtx};
use crate::error::{ApiError, ApiResult, OrNotFound};
use crate::extract::{ApiJson, ApiPath, ApiQuery, PageParams};
use crate::http::openapi::ErrorBody;
use crate::state::SharedState;
use crate::time::rfc3339;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use talky_core::model::DncSource;
use talky_core::phone::{PhoneError, E164};
use talky_core::ports::store::DncEntry;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<SharedState> {
    OpenApiRouter::new()
        .routes(routes!(list, add))
        .routes(routes!(remove))
}

pub const DNC_NOT_FOUND: &str = "Number not found on the do-not-call list";

/// Longest `reason`.
const MAX_REASON_CHARS: usize = 500;

/// One entry of the list.
#[derive(Serialize, ToSchema)]
pub struct DncEntryResponse {
    /// E.164.
    phone_number: String,
    /// `opt_out`, `spam`, `invalid`, `unavailable`, `manual` or `import`.
    #[schema(value_type = String, example = "manual")]
    source: DncSource,
    reason: Option<String>,
    created_at: String,
}

impl From<DncEntry> for DncEntryResponse {
    fn from(e: DncEntry) -> Self {
        Self {
            phone_number: e.phone_number,
            source: e.source,
            reason: e.reason,
            created_at: rfc3339(e.created_at),
        }
    }
}

/// `{items, page, page_size, total}`, newest first.
#[derive(Serialize, ToSchema)]
pub struct DncListResponse {
    items: Vec<DncEntryResponse>,
    page: u32,
    page_size: u32,
    total: i64,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DncQuery {
    /// 1-based page number.
    page: Option<i64>,
    /// 1–100, default 20.
    page_size: Option<i64>,
    /// Optional; must be the caller's own tenant (B2). Checked by `TenantCtx`.
    #[allow(dead_code)]
    tenant_id: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddDncRequest {
    /// Normalised to E.164 (D6).
    phone_number: String,
    /// At most 500 characters.
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Uuid)]
    tenant_id: Option<String>,
}

#[utoipa::path(get, path = "/dnc", operation_id = "list_dnc", tag = "dnc", security(("bearer" = [])),
    params(DncQuery),
    responses((status = 200, body = DncListResponse), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn list(
    State(state): State<SharedState>,
    t: TenantCtx,
    ApiQuery(q): ApiQuery<DncQuery>,
) -> ApiResult<ApiJson<DncListResponse>> {
    let page = PageParams {
        page: q.page,
        page_size: q.page_size,
    }
    .page(20)?;
    let (entries, total) = state.store.list_dnc(t.tenant_id, page).await?;
    Ok(ApiJson(DncListResponse {
        items: entries.into_iter().map(DncEntryResponse::from).collect(),
        page: page.page,
        page_size: page.page_size,
        total,
    }))
}

#[utoipa::path(post, path = "/dnc", operation_id = "add_dnc", tag = "dnc", security(("bearer" = [])),
    request_body = AddDncRequest,
    description = "Adds a number (source `manual`): 201. A number already listed keeps its entry and is answered with 200.",
    responses((status = 201, body = DncEntryResponse), (status = 200, description = "Already listed", body = DncEntryResponse),
        (status = 400, description = "Invalid phone number: <reason>", body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn add(
    State(state): State<SharedState>,
    t: TenantCtx,
    ApiJson(req): ApiJson<AddDncRequest>,
) -> ApiResult<(StatusCode, ApiJson<DncEntryResponse>)> {
    check_tenant_param(req.tenant_id.as_deref(), t.tenant_id)?;
    let reason = match req.reason.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(r) if r.chars().count() > MAX_REASON_CHARS => {
            return Err(ApiError::validation(
                "reason",
                format!("must be at most {MAX_REASON_CHARS} characters"),
            ));
        }
        Some(r) => Some(r.to_string()),
    };
    let phone = E164::parse(&req.phone_number).map_err(|e| match e {
        PhoneError::Missing => ApiError::validation("phone_number", "must not be blank"),
        other => ApiError::bad_request("invalid_phone", format!("Invalid phone number: {other}")),
    })?;
    let added = state
        .store
        .add_dnc(
            t.tenant_id,
            &phone,
            Some(DncSource::Manual),
            reason,
            state.clock.now(),
        )
        .await?;
    let status = if added.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, ApiJson(added.entry.into())))
}

#[utoipa::path(delete, path = "/dnc/{e164}", operation_id = "delete_dnc", tag = "dnc", security(("bearer" = [])),
    params(("e164" = String, Path, description = "The number, URL-encoded (`%2B15551234567`).")),
    responses((status = 204, description = "Removed"), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, description = "Number not found on the do-not-call list", body = ErrorBody)))]
async fn remove(
    State(state): State<SharedState>,
    t: TenantCtx,
    ApiPath(raw): ApiPath<String>,
) -> ApiResult<StatusCode> {
    let phone = E164::parse(&raw).map_err(|_| ApiError::not_found(DNC_NOT_FOUND))?;
    state
        .store
        .delete_dnc(t.tenant_id, &phone)
        .await
        .or_not_found(DNC_NOT_FOUND)?;
    Ok(StatusCode::NO_CONTENT)
}
