//! `/clients` (behaviour.md D15): the tenant's address book. Phones are normalised to
//! E.164 by the one D6 parser; e-mail addresses are checked and lower-cased.

use crate::auth::TenantCtx;
use crate::error::{ApiError, ApiResult, OrNotFound};
use crate::extract::{ApiJson, ApiPath};
use crate::http::openapi::{DetailResponse, ErrorBody};
use crate::state::SharedState;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use talky_core::ids::ClientId;
use talky_core::phone::E164;
use talky_core::ports::store::{Client, NewClient};
use talky_core::Email;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<SharedState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get_client, delete))
}

const MAX_NAME: usize = 255;
const MAX_COMPANY: usize = 255;
const MAX_NOTES: usize = 10_000;
const MAX_TAGS: usize = 50;
const MAX_TAG: usize = 50;

/// A client (D15).
#[derive(Serialize, ToSchema)]
pub struct ClientResponse {
    #[schema(value_type = String, format = Uuid)]
    id: ClientId,
    name: String,
    company: Option<String>,
    /// E.164.
    phone: Option<String>,
    email: Option<String>,
    tags: Vec<String>,
}

impl From<Client> for ClientResponse {
    fn from(c: Client) -> Self {
        Self {
            id: c.id,
            name: c.name,
            company: c.company,
            phone: c.phone,
            email: c.email,
            tags: c.tags,
        }
    }
}

#[utoipa::path(operation_id = "list_clients", get, path = "/clients", tag = "clients", security(("bearer" = [])),
    description = "All clients of the tenant, ordered by name.",
    responses(
        (status = 200, body = [ClientResponse]),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
async fn list(
    State(state): State<SharedState>,
    t: TenantCtx,
) -> ApiResult<ApiJson<Vec<ClientResponse>>> {
    let clients = state.store.list_clients(t.tenant_id).await?;
    Ok(ApiJson(
        clients.into_iter().map(ClientResponse::from).collect(),
    ))
}

/// `POST /clients`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateClientRequest {
    /// 1–255 characters.
    name: String,
    #[serde(default)]
    company: Option<String>,
    /// Normalised to E.164 (D6).
    #[serde(default)]
    phone: Option<String>,
    #[serde(default)]
    email: Option<String>,
    /// Up to 50 tags of 1–50 characters.
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    notes: Option<String>,
    /// Ignored when it is the caller's own tenant; any other value is 403 (B2).
    #[serde(default)]
    #[schema(ignore)]
    tenant_id: Option<String>,
}

/// Trims an optional text; blank → `None`; longer than `max` characters → 422.
fn optional_text(field: &str, v: Option<String>, max: usize) -> ApiResult<Option<String>> {
    match v.map(|s| s.trim().to_string()) {
        Some(s) if s.is_empty() => Ok(None),
        Some(s) if s.chars().count() > max => Err(ApiError::validation(
            field,
            format!("must be at most {max} characters"),
        )),
        other => Ok(other),
    }
}

fn validate(req: CreateClientRequest) -> ApiResult<NewClient> {
    let name = req.name.trim().to_string();
    if name.is_empty() || name.chars().count() > MAX_NAME {
        return Err(ApiError::validation(
            "name",
            format!("must be 1 to {MAX_NAME} characters"),
        ));
    }
    let company = optional_text("company", req.company, MAX_COMPANY)?;
    let notes = optional_text("notes", req.notes, MAX_NOTES)?;
    let email = match req.email.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(raw) => Some(
            Email::parse(raw)
                .map_err(|e| ApiError::validation("email", e.to_string()))?
                .as_str()
                .to_string(),
        ),
    };
    if req.tags.len() > MAX_TAGS {
        return Err(ApiError::validation(
            "tags",
            format!("at most {MAX_TAGS} tags"),
        ));
    }
    let mut tags: Vec<String> = Vec::with_capacity(req.tags.len());
    for (i, tag) in req.tags.into_iter().enumerate() {
        let tag = tag.trim().to_string();
        if tag.is_empty() || tag.chars().count() > MAX_TAG {
            return Err(ApiError::validation(
                format!("tags.{i}"),
                format!("must be 1 to {MAX_TAG} characters"),
            ));
        }
        if !tags.contains(&tag) {
            tags.push(tag);
        }
    }
    // Phone last: a 400 (domain rule) only once the schema checks (422) have passed.
    let phone = match req.phone.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(raw) => Some(E164::parse(raw).map_err(|e| {
            ApiError::bad_request("invalid_phone", format!("Invalid phone number: {e}"))
        })?),
    };
    Ok(NewClient {
        name,
        company,
        phone,
        email,
        tags,
        notes,
    })
}

#[utoipa::path(operation_id = "create_client", post, path = "/clients", tag = "clients", security(("bearer" = [])),
    request_body = CreateClientRequest,
    responses(
        (status = 200, body = ClientResponse),
        (status = 400, description = "Invalid phone number: <reason>", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 422, description = "Missing/unknown/invalid fields", body = ErrorBody)))]
async fn create(
    State(state): State<SharedState>,
    t: TenantCtx,
    ApiJson(req): ApiJson<CreateClientRequest>,
) -> ApiResult<ApiJson<ClientResponse>> {
    crate::auth::check_tenant_param(req.tenant_id.as_deref(), t.tenant_id)?;
    let client = validate(req)?;
    let created = state
        .store
        .create_client(t.tenant_id, client, state.clock.now())
        .await?;
    Ok(ApiJson(created.into()))
}

#[utoipa::path(operation_id = "get_client", get, path = "/clients/{client_id}", tag = "clients", security(("bearer" = [])),
    params(("client_id" = String, Path, format = Uuid)),
    responses(
        (status = 200, body = ClientResponse),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, description = "Client not found", body = ErrorBody)))]
async fn get_client(
    State(state): State<SharedState>,
    t: TenantCtx,
    ApiPath(id): ApiPath<ClientId>,
) -> ApiResult<ApiJson<ClientResponse>> {
    let client = state
        .store
        .get_client(t.tenant_id, id)
        .await
        .or_not_found("Client not found")?;
    Ok(ApiJson(client.into()))
}

#[utoipa::path(operation_id = "delete_client", delete, path = "/clients/{client_id}", tag = "clients", security(("bearer" = [])),
    params(("client_id" = String, Path, format = Uuid)),
    responses(
        (status = 200, description = "Client deleted", body = DetailResponse),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, description = "Client not found", body = ErrorBody)))]
async fn delete(
    State(state): State<SharedState>,
    t: TenantCtx,
    ApiPath(id): ApiPath<ClientId>,
) -> ApiResult<ApiJson<DetailResponse>> {
    state
        .store
        .delete_client(t.tenant_id, id)
        .await
        .or_not_found("Client not found")?;
    Ok(ApiJson(DetailResponse {
        detail: "Client deleted".into(),
    }))
}
