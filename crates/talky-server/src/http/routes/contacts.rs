//! Contacts (behaviour.md D1–D14): CSV import into a campaign or the tenant's clients, and
//! single add / list / delete of a campaign's leads.
//!
//! The two upload routes read the multipart body themselves instead of through the global
//! 1 MiB JSON limit: the `file` part is accepted up to exactly `import.max_bytes`, and a
//! rejected upload is still read to its end (within a small allowance) so the client gets
//! its 400 instead of a connection reset. Parsing is CPU work and runs on the blocking pool;
//! the whole file is judged before the store writes a row (D12, K5).

use crate::auth::{check_tenant_param, TenantCtx};
use crate::error::{ApiError, ApiResult, OrNotFound};
use crate::extract::{ApiJson, ApiPath, ApiQuery, PageParams};
use crate::http::openapi::ErrorBody;
use crate::http::routes::campaigns::CAMPAIGN_NOT_FOUND;
use crate::state::SharedState;
use crate::time::rfc3339;
use axum::extract::multipart::{Field, MultipartError, MultipartRejection};
use axum::extract::{DefaultBodyLimit, Multipart, State};
use axum::http::StatusCode;
use bytes::{Bytes, BytesMut};
use serde::{Deserialize, Serialize};
use talky_core::csv_import::{
    is_csv_upload, parse_csv, ImportFileError, ImportLimits, ImportReport, ImportTarget, RowError,
    MAX_EMAIL_CHARS, MAX_NAME_CHARS, MAX_VALUE_CHARS,
};
use talky_core::ids::{CampaignId, LeadId};
use talky_core::model::{LeadStatus, Outcome};
use talky_core::phone::{validate_email, PhoneError, E164};
use talky_core::ports::store::{Lead, LeadFilter, NewLead};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<SharedState> {
    // The uploads bound their own body (see `read_upload`), so the global limit is lifted
    // for them only.
    let uploads = OpenApiRouter::new()
        .routes(routes!(upload))
        .routes(routes!(bulk))
        .layer(DefaultBodyLimit::disable());
    OpenApiRouter::new()
        .routes(routes!(list, add))
        .routes(routes!(delete))
        .merge(uploads)
}

pub const CONTACT_NOT_FOUND: &str = "Contact not found in this campaign";

/// Bytes a rejected upload may still send after its verdict: enough for the rest of a
/// slightly-too-large file and the closing boundary, so the client reads the 400 instead of
/// a reset; anything beyond is not read.
const DRAIN_ALLOWANCE: usize = 1024 * 1024;
/// Longest accepted value of a non-file form field (`campaign_id`, `tenant_id`).
const MAX_FORM_FIELD: usize = 1024;
/// Most parts read from one upload form (three are meaningful); a form of endless empty
/// parts would otherwise be read to its end, since only part data counts against the budget.
const MAX_PARTS: usize = 16;
/// Most custom fields on a single contact (the CSV import's column cap, D10).
const MAX_CUSTOM_FIELDS: usize = 50;
/// Longest custom-field name.
const MAX_CUSTOM_KEY_CHARS: usize = 255;

// ---------------------------------------------------------------------------------------
// Wire types
// ---------------------------------------------------------------------------------------

/// A lead of a campaign.
#[derive(Serialize, ToSchema)]
pub struct ContactResponse {
    #[schema(value_type = String, format = Uuid)]
    id: LeadId,
    #[schema(value_type = String, format = Uuid)]
    campaign_id: CampaignId,
    /// E.164.
    phone_number: String,
    first_name: Option<String>,
    last_name: Option<String>,
    email: Option<String>,
    #[schema(value_type = Object)]
    custom_fields: serde_json::Map<String, serde_json::Value>,
    #[schema(value_type = String, example = "pending")]
    status: LeadStatus,
    /// `pending` until the first call ends, then that call's outcome.
    last_call_result: String,
    call_attempts: i64,
    priority: i64,
    is_high_value: bool,
    tags: Vec<String>,
    last_called_at: Option<String>,
    created_at: String,
    updated_at: String,
}

impl From<Lead> for ContactResponse {
    fn from(l: Lead) -> Self {
        Self {
            id: l.id,
            campaign_id: l.campaign_id,
            phone_number: l.phone_number,
            first_name: l.first_name,
            last_name: l.last_name,
            email: l.email,
            custom_fields: l.custom_fields,
            status: l.status,
            last_call_result: l.last_call_result,
            call_attempts: l.call_attempts,
            priority: l.priority,
            is_high_value: l.is_high_value,
            tags: l.tags,
            last_called_at: l.last_called_at.map(rfc3339),
            created_at: rfc3339(l.created_at),
            updated_at: rfc3339(l.updated_at),
        }
    }
}

/// `{items, page, page_size, total}`, newest first, deleted leads excluded (D14).
#[derive(Serialize, ToSchema)]
pub struct ContactListResponse {
    items: Vec<ContactResponse>,
    page: u32,
    page_size: u32,
    total: i64,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ContactsQuery {
    /// 1-based page number.
    page: Option<i64>,
    /// 1–100, default 50.
    page_size: Option<i64>,
    /// Lead status (`pending`, `queued`, `contacted`, `called`, `completed`, `dnc`); empty = all.
    status: Option<String>,
    /// `pending` or a call outcome; empty = all.
    last_call_result: Option<String>,
    /// Optional; must be the caller's own tenant (B2). Checked by `TenantCtx`.
    #[allow(dead_code)]
    tenant_id: Option<String>,
}

/// `POST /campaigns/{id}/contacts` (D13).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddContactRequest {
    /// Normalised to E.164 (D6).
    phone_number: String,
    /// At most 100 characters.
    #[serde(default)]
    first_name: Option<String>,
    /// At most 100 characters.
    #[serde(default)]
    last_name: Option<String>,
    /// At most 255 characters, `local@domain.tld`.
    #[serde(default)]
    email: Option<String>,
    /// At most 50 fields; values are strings (≤ 1000 characters), numbers or booleans.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    custom_fields: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Uuid)]
    tenant_id: Option<String>,
}

/// `{"message", "contact"}`: 201 for a new lead, 200 for a revived deleted one (D9).
#[derive(Serialize, ToSchema)]
pub struct AddContactResponse {
    message: &'static str,
    contact: ContactResponse,
}

#[derive(Serialize, ToSchema)]
pub struct MessageResponse {
    message: &'static str,
}

/// One rejected row (D11).
#[derive(Serialize, ToSchema)]
pub struct ImportRowErrorResponse {
    /// Row number; the header is row 1.
    row: usize,
    error: String,
    /// The raw phone cell, when the row had one.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    phone: Option<String>,
}

impl From<RowError> for ImportRowErrorResponse {
    fn from(e: RowError) -> Self {
        Self {
            row: e.row,
            error: e.error,
            phone: e.phone,
        }
    }
}

/// D11. Invariant: `total_rows = imported + failed + duplicates_skipped`; `revived` is part
/// of `imported`; `errors` lists the first 100 errors in row order, `failed` counts all.
#[derive(Serialize, ToSchema)]
pub struct ImportResponse {
    total_rows: usize,
    imported: usize,
    revived: usize,
    failed: usize,
    duplicates_skipped: usize,
    errors: Vec<ImportRowErrorResponse>,
    errors_truncated: bool,
}

impl From<ImportReport> for ImportResponse {
    fn from(r: ImportReport) -> Self {
        Self {
            total_rows: r.total_rows,
            imported: r.imported,
            revived: r.revived,
            failed: r.failed,
            duplicates_skipped: r.duplicates_skipped,
            errors: r
                .errors
                .into_iter()
                .map(ImportRowErrorResponse::from)
                .collect(),
            errors_truncated: r.errors_truncated,
        }
    }
}

/// The multipart form of both upload routes.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct UploadRequest {
    /// The CSV file (`.csv` name or `text/csv` type), at most 10 MiB [`import.max_bytes`].
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
    /// `/contacts/bulk` only: import into this campaign instead of the clients.
    #[schema(value_type = Option<String>, format = Uuid)]
    campaign_id: Option<String>,
    #[schema(value_type = Option<String>, format = Uuid)]
    tenant_id: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UploadQuery {
    /// Rows whose phone is already a lead of the campaign: skipped (`true`, default) or
    /// reported as row errors (`false`).
    skip_duplicates: Option<bool>,
    /// Optional; must be the caller's own tenant (B2). Checked by `TenantCtx`.
    #[allow(dead_code)]
    tenant_id: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct BulkQuery {
    /// Import into this campaign (also accepted as a form field); without it, into clients.
    campaign_id: Option<String>,
    /// As for the campaign upload; ignored for clients.
    skip_duplicates: Option<bool>,
    /// Optional; must be the caller's own tenant (B2). Checked by `TenantCtx`.
    #[allow(dead_code)]
    tenant_id: Option<String>,
}

// ---------------------------------------------------------------------------------------
// Upload reading
// ---------------------------------------------------------------------------------------

/// What a multipart upload contained, with its problems kept for the caller to report in
/// the route's order.
#[derive(Default)]
struct Upload {
    file: Option<Bytes>,
    /// `NotCsv` or `TooLarge`, found while reading.
    file_error: Option<ImportFileError>,
    campaign_id: Option<String>,
    tenant_id: Option<String>,
    /// A part that is not allowed, repeated, or too long (422).
    schema_error: Option<ApiError>,
}

fn malformed(e: MultipartError) -> ApiError {
    tracing::debug!(error = %e.body_text(), "unreadable multipart body");
    ApiError::bad_request("malformed_multipart", "Malformed multipart body")
}

fn multipart_rejection(_: MultipartRejection) -> ApiError {
    ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        "Content-Type must be multipart/form-data",
    )
}

/// Bytes read from the request so far, and how many may still be read.
struct Budget {
    read: usize,
    limit: usize,
}

impl Budget {
    /// Counts a chunk; false once the request has sent more than the limit.
    fn take(&mut self, n: usize) -> bool {
        self.read = self.read.saturating_add(n);
        self.read <= self.limit
    }
}

/// Reads and discards the rest of a part. False when the budget ran out.
async fn drain(field: &mut Field<'_>, budget: &mut Budget) -> Result<bool, ApiError> {
    while let Some(chunk) = field.chunk().await.map_err(malformed)? {
        if !budget.take(chunk.len()) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Reads a small text part; `None` when it is longer than [`MAX_FORM_FIELD`] or not UTF-8.
async fn small_text(
    field: &mut Field<'_>,
    budget: &mut Budget,
) -> Result<(Option<String>, bool), ApiError> {
    let mut buf = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(malformed)? {
        if !budget.take(chunk.len()) {
            return Ok((None, false));
        }
        if buf.len() + chunk.len() > MAX_FORM_FIELD {
            return Ok((None, drain(field, budget).await?));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok((String::from_utf8(buf).ok(), true))
}

/// Reads the parts of an upload. The `file` part is kept up to exactly `max_bytes`;
/// `campaign_id` is a field only where `allow_campaign_field`.
async fn read_upload(
    mut mp: Multipart,
    max_bytes: usize,
    allow_campaign_field: bool,
) -> ApiResult<Upload> {
    let mut up = Upload::default();
    let mut budget = Budget {
        read: 0,
        limit: max_bytes.saturating_add(DRAIN_ALLOWANCE),
    };
    fn schema(up: &mut Upload, field: &str, msg: &str) {
        if up.schema_error.is_none() {
            up.schema_error = Some(ApiError::validation(field, msg));
        }
    }
    let mut parts = 0usize;
    while let Some(mut field) = mp.next_field().await.map_err(malformed)? {
        parts += 1;
        if parts > MAX_PARTS {
            schema(&mut up, "form", "too many parts");
            break;
        }
        let name = field.name().unwrap_or("").to_string();
        let more = match name.as_str() {
            "file" if up.file.is_some() || up.file_error.is_some() => {
                schema(&mut up, "file", "only one file may be uploaded");
                drain(&mut field, &mut budget).await?
            }
            "file" if !is_csv_upload(field.file_name(), field.content_type()) => {
                up.file_error = Some(ImportFileError::NotCsv);
                drain(&mut field, &mut budget).await?
            }
            "file" => {
                let mut buf = BytesMut::new();
                let mut ok = true;
                while let Some(chunk) = field.chunk().await.map_err(malformed)? {
                    if !budget.take(chunk.len()) {
                        ok = false;
                        break;
                    }
                    if buf.len() + chunk.len() > max_bytes {
                        up.file_error = Some(ImportFileError::TooLarge { max_bytes });
                        ok = drain(&mut field, &mut budget).await?;
                        break;
                    }
                    buf.extend_from_slice(&chunk);
                }
                if up.file_error.is_none() {
                    up.file = Some(buf.freeze());
                }
                // A budget overrun inside the file is itself "too large".
                if !ok && up.file_error.is_none() {
                    up.file_error = Some(ImportFileError::TooLarge { max_bytes });
                    up.file = None;
                }
                ok
            }
            "campaign_id" | "tenant_id" if name != "campaign_id" || allow_campaign_field => {
                let (value, more) = small_text(&mut field, &mut budget).await?;
                match value {
                    None => schema(&mut up, &name, "invalid value"),
                    Some(v) => {
                        let slot = if name == "campaign_id" {
                            &mut up.campaign_id
                        } else {
                            &mut up.tenant_id
                        };
                        let repeated = slot.replace(v).is_some();
                        if repeated {
                            schema(&mut up, &name, "given more than once");
                        }
                    }
                }
                more
            }
            other => {
                let field_name = if other.is_empty() {
                    "(unnamed part)".to_string()
                } else {
                    other.to_string()
                };
                schema(&mut up, &field_name, "unknown field");
                drain(&mut field, &mut budget).await?
            }
        };
        if !more {
            // The client sent far more than any acceptable upload; answer with what we know.
            if up.file_error.is_none() && up.schema_error.is_none() {
                up.file_error = Some(ImportFileError::TooLarge { max_bytes });
                up.file = None;
            }
            break;
        }
    }
    Ok(up)
}

fn file_error(e: ImportFileError) -> ApiError {
    ApiError::bad_request(e.code(), e.to_string())
}

/// Parses an optional UUID given as a query or form value; empty counts as absent.
fn campaign_id_param(v: Option<&str>) -> ApiResult<Option<CampaignId>> {
    match v.map(str::trim) {
        None | Some("") => Ok(None),
        Some(s) => s
            .parse::<CampaignId>()
            .map(Some)
            .map_err(|_| ApiError::validation("campaign_id", "must be a UUID")),
    }
}

/// The shared import of both routes, after the parts were read: 403 (foreign `tenant_id`)
/// → 422 (form schema) → 404 (campaign) → 400 (file rejected) → parse → write.
async fn import(
    state: &SharedState,
    t: &TenantCtx,
    campaign: Option<CampaignId>,
    skip_duplicates: bool,
    up: Upload,
) -> ApiResult<ImportResponse> {
    check_tenant_param(up.tenant_id.as_deref(), t.tenant_id)?;
    if let Some(e) = up.schema_error {
        return Err(e);
    }
    if up.file.is_none() && up.file_error.is_none() {
        return Err(ApiError::validation("file", "field required"));
    }
    if let Some(c) = campaign {
        state
            .store
            .get_campaign(t.tenant_id, c)
            .await
            .or_not_found(CAMPAIGN_NOT_FOUND)?;
    }
    if let Some(e) = up.file_error {
        return Err(file_error(e));
    }
    let bytes = up.file.unwrap_or_default();
    let cfg = &state.config.import;
    let limits = ImportLimits {
        max_bytes: cfg.max_bytes,
        max_rows: cfg.max_rows,
        max_errors: cfg.max_errors,
        ..ImportLimits::default()
    };
    let target = if campaign.is_some() {
        ImportTarget::Leads
    } else {
        ImportTarget::Clients
    };
    let parsed = tokio::task::spawn_blocking(move || parse_csv(&bytes, target, &limits))
        .await
        .map_err(ApiError::internal)?
        .map_err(file_error)?;
    let (rows, report) = parsed.into_rows_and_report();
    let now = state.clock.now();
    let report = match campaign {
        Some(c) => state
            .store
            .import_leads(t.tenant_id, c, rows, skip_duplicates, report, now)
            .await
            .or_not_found(CAMPAIGN_NOT_FOUND)?,
        None => {
            state
                .store
                .import_clients(t.tenant_id, rows, report, now)
                .await?
        }
    };
    Ok(report.finish(cfg.max_errors).into())
}

// ---------------------------------------------------------------------------------------
// Handlers
// ---------------------------------------------------------------------------------------

#[utoipa::path(post, path = "/campaigns/{campaign_id}/contacts/upload", operation_id = "upload_contacts", tag = "contacts", security(("bearer" = [])),
    params(("campaign_id" = String, Path, format = Uuid), UploadQuery),
    request_body(content = UploadRequest, content_type = "multipart/form-data"),
    description = "Imports a CSV file (D2–D12) as leads of the campaign. File-level problems are 400 with nothing written; \
        row-level problems are listed in the response.",
    responses((status = 200, body = ImportResponse), (status = 400, description = "File rejected (D2)", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, description = "Campaign not found", body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, description = "No `file` part, or an unknown part", body = ErrorBody)))]
async fn upload(
    State(state): State<SharedState>,
    t: TenantCtx,
    ApiPath(campaign_id): ApiPath<CampaignId>,
    ApiQuery(q): ApiQuery<UploadQuery>,
    mp: Result<Multipart, MultipartRejection>,
) -> ApiResult<ApiJson<ImportResponse>> {
    let mp = mp.map_err(multipart_rejection)?;
    let up = read_upload(mp, state.config.import.max_bytes, false).await?;
    let skip = q.skip_duplicates.unwrap_or(true);
    Ok(ApiJson(
        import(&state, &t, Some(campaign_id), skip, up).await?,
    ))
}

#[utoipa::path(post, path = "/contacts/bulk", operation_id = "bulk_import_contacts", tag = "contacts", security(("bearer" = [])),
    params(BulkQuery),
    request_body(content = UploadRequest, content_type = "multipart/form-data"),
    description = "Imports a CSV file into a campaign (with `campaign_id`, as form field or query) or into the \
        tenant's clients (without).",
    responses((status = 200, body = ImportResponse), (status = 400, description = "File rejected (D2)", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, description = "Campaign not found", body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn bulk(
    State(state): State<SharedState>,
    t: TenantCtx,
    ApiQuery(q): ApiQuery<BulkQuery>,
    mp: Result<Multipart, MultipartRejection>,
) -> ApiResult<ApiJson<ImportResponse>> {
    let mp = mp.map_err(multipart_rejection)?;
    let query_campaign = campaign_id_param(q.campaign_id.as_deref())?;
    let mut up = read_upload(mp, state.config.import.max_bytes, true).await?;
    let form_campaign = match campaign_id_param(up.campaign_id.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            up.schema_error.get_or_insert(e);
            None
        }
    };
    let campaign = match (query_campaign, form_campaign) {
        (Some(a), Some(b)) if a != b => {
            up.schema_error.get_or_insert(ApiError::validation(
                "campaign_id",
                "query and form values differ",
            ));
            None
        }
        (a, b) => a.or(b),
    };
    let skip = q.skip_duplicates.unwrap_or(true);
    Ok(ApiJson(import(&state, &t, campaign, skip, up).await?))
}

#[utoipa::path(get, path = "/campaigns/{campaign_id}/contacts", operation_id = "list_contacts", tag = "contacts", security(("bearer" = [])),
    params(("campaign_id" = String, Path, format = Uuid), ContactsQuery),
    responses((status = 200, body = ContactListResponse), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, description = "Campaign not found", body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn list(
    State(state): State<SharedState>,
    t: TenantCtx,
    ApiPath(campaign_id): ApiPath<CampaignId>,
    ApiQuery(q): ApiQuery<ContactsQuery>,
) -> ApiResult<ApiJson<ContactListResponse>> {
    let page = PageParams {
        page: q.page,
        page_size: q.page_size,
    }
    .page(50)?;
    let status = match q.status.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(s) => Some(
            s.parse::<LeadStatus>()
                .map_err(|e| ApiError::validation("status", e.to_string()))?,
        ),
    };
    let last_call_result = match q.last_call_result.as_deref().map(str::trim) {
        None | Some("") => None,
        Some("pending") => Some("pending".to_string()),
        Some(s) => Some(
            s.parse::<Outcome>()
                .map_err(|e| ApiError::validation("last_call_result", e.to_string()))?
                .as_str()
                .to_string(),
        ),
    };
    let (leads, total) = state
        .store
        .list_leads(
            t.tenant_id,
            campaign_id,
            LeadFilter {
                status,
                last_call_result,
            },
            page,
        )
        .await
        .or_not_found(CAMPAIGN_NOT_FOUND)?;
    Ok(ApiJson(ContactListResponse {
        items: leads.into_iter().map(ContactResponse::from).collect(),
        page: page.page,
        page_size: page.page_size,
        total,
    }))
}

/// Trims an optional name-like field; blank → `None`, too long → 422.
fn optional_field(field: &str, v: Option<String>, max: usize) -> ApiResult<Option<String>> {
    match v.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(s) if s.chars().count() > max => Err(ApiError::validation(
            field,
            format!("must be at most {max} characters"),
        )),
        Some(s) => Ok(Some(s.to_string())),
    }
}

fn custom_fields(
    fields: Option<serde_json::Map<String, serde_json::Value>>,
) -> ApiResult<serde_json::Map<String, serde_json::Value>> {
    use serde_json::Value;
    let fields = fields.unwrap_or_default();
    if fields.len() > MAX_CUSTOM_FIELDS {
        return Err(ApiError::validation(
            "custom_fields",
            format!("at most {MAX_CUSTOM_FIELDS} fields"),
        ));
    }
    let mut out = serde_json::Map::new();
    for (key, value) in fields {
        let name = key.trim();
        if name.is_empty() || name.chars().count() > MAX_CUSTOM_KEY_CHARS {
            return Err(ApiError::validation(
                "custom_fields",
                format!("field names must be 1 to {MAX_CUSTOM_KEY_CHARS} characters"),
            ));
        }
        let path = format!("custom_fields.{name}");
        match value {
            Value::Null => continue,
            Value::String(s) if s.chars().count() > MAX_VALUE_CHARS => {
                return Err(ApiError::validation(
                    path,
                    format!("must be at most {MAX_VALUE_CHARS} characters"),
                ));
            }
            Value::String(_) | Value::Number(_) | Value::Bool(_) => {
                out.insert(name.to_string(), value);
            }
            Value::Array(_) | Value::Object(_) => {
                return Err(ApiError::validation(
                    path,
                    "must be a string, number or boolean",
                ));
            }
        }
    }
    Ok(out)
}

#[utoipa::path(post, path = "/campaigns/{campaign_id}/contacts", operation_id = "add_contact", tag = "contacts", security(("bearer" = [])),
    params(("campaign_id" = String, Path, format = Uuid)),
    request_body = AddContactRequest,
    description = "D13: 201 for a new lead; 200 when a deleted lead with that number is revived.",
    responses((status = 201, body = AddContactResponse), (status = 200, description = "Revived", body = AddContactResponse),
        (status = 400, description = "Invalid phone number: <reason>", body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, description = "Campaign not found", body = ErrorBody),
        (status = 409, description = "Already a lead, or on the DNC list", body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn add(
    State(state): State<SharedState>,
    t: TenantCtx,
    ApiPath(campaign_id): ApiPath<CampaignId>,
    ApiJson(req): ApiJson<AddContactRequest>,
) -> ApiResult<(StatusCode, ApiJson<AddContactResponse>)> {
    check_tenant_param(req.tenant_id.as_deref(), t.tenant_id)?;
    if req.phone_number.trim().is_empty() {
        return Err(ApiError::validation("phone_number", "must not be blank"));
    }
    let first_name = optional_field("first_name", req.first_name, MAX_NAME_CHARS)?;
    let last_name = optional_field("last_name", req.last_name, MAX_NAME_CHARS)?;
    let email = optional_field("email", req.email, MAX_EMAIL_CHARS)?;
    if let Some(e) = &email {
        if !validate_email(e) {
            return Err(ApiError::validation("email", "Invalid email"));
        }
    }
    let custom_fields = custom_fields(req.custom_fields)?;
    let phone = E164::parse(&req.phone_number).map_err(|e| match e {
        PhoneError::Missing => ApiError::validation("phone_number", "must not be blank"),
        other => ApiError::bad_request("invalid_phone", format!("Invalid phone number: {other}")),
    })?;
    let added = state
        .store
        .add_lead(
            t.tenant_id,
            campaign_id,
            NewLead {
                phone,
                first_name,
                last_name,
                email,
                custom_fields,
            },
            state.clock.now(),
        )
        .await
        .or_not_found(CAMPAIGN_NOT_FOUND)?;
    let (status, message) = if added.revived {
        (StatusCode::OK, "Contact restored successfully")
    } else {
        (StatusCode::CREATED, "Contact added successfully")
    };
    Ok((
        status,
        ApiJson(AddContactResponse {
            message,
            contact: added.lead.into(),
        }),
    ))
}

#[utoipa::path(delete, path = "/campaigns/{campaign_id}/contacts/{contact_id}", operation_id = "delete_contact", tag = "contacts", security(("bearer" = [])),
    params(("campaign_id" = String, Path, format = Uuid), ("contact_id" = String, Path, format = Uuid)),
    description = "D14: soft delete; the lead's active job is cancelled (`skipped`, `lead_deleted`).",
    responses((status = 200, body = MessageResponse), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, description = "Campaign not found / Contact not found in this campaign", body = ErrorBody)))]
async fn delete(
    State(state): State<SharedState>,
    t: TenantCtx,
    ApiPath((campaign_id, contact_id)): ApiPath<(CampaignId, LeadId)>,
) -> ApiResult<ApiJson<MessageResponse>> {
    state
        .store
        .get_campaign(t.tenant_id, campaign_id)
        .await
        .or_not_found(CAMPAIGN_NOT_FOUND)?;
    state
        .store
        .delete_lead(t.tenant_id, campaign_id, contact_id, state.clock.now())
        .await
        .or_not_found(CONTACT_NOT_FOUND)?;
    Ok(ApiJson(MessageResponse {
        message: "Contact removed successfully",
    }))
}
