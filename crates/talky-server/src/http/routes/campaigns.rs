//! `/campaigns` (behaviour.md E1–E4, E8–E10, E20): create, read and edit campaigns, drive
//! them through the E2 status machine, and look at their dialer jobs and statistics.
//!
//! The status machine itself is `CampaignStatus::apply` in core. Handlers use it to answer
//! in E3's order (404 → 400 already running → 402 out of minutes → 422 bad options) before
//! anything is written, and the store applies it again on the locked row, so a concurrent
//! change between the check and the write is still refused rather than applied twice.

use crate::auth::{check_tenant_param, TenantCtx};
use crate::error::{ApiError, ApiResult, OrNotFound};
use crate::extract::{body_rejection, parse_json, ApiJson, ApiPath, ApiQuery, PageParams};
use crate::http::openapi::ErrorBody;
use crate::state::SharedState;
use crate::time::rfc3339;
use crate::usage::tenant_minutes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use bytes::Bytes;
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;
use talky_core::ids::CampaignId;
use talky_core::model::{CampaignStatus, JobStatus};
use talky_core::ports::store::{
    Campaign, CampaignAction, CampaignPatch, CampaignStats, Job, NewCampaign, StartOptions,
    TransitionError,
};
use talky_core::ports::telephony::TelephonyError;
use talky_core::rules::CallingRules;
use talky_voice::text::opener::{check_opener, check_reason};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<SharedState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get, update))
        .routes(routes!(start))
        .routes(routes!(pause))
        .routes(routes!(stop))
        .routes(routes!(jobs))
        .routes(routes!(stats))
}

pub const CAMPAIGN_NOT_FOUND: &str = "Campaign not found";

// ---------------------------------------------------------------------------------------
// Wire types
// ---------------------------------------------------------------------------------------

/// A campaign as every route renders it: the E1 fields plus its state.
#[derive(Serialize, ToSchema)]
pub struct CampaignResponse {
    #[schema(value_type = String, format = Uuid)]
    id: CampaignId,
    name: String,
    description: Option<String>,
    #[schema(value_type = String, example = "draft")]
    status: CampaignStatus,
    system_prompt: String,
    voice_id: Option<String>,
    agent_name: Option<String>,
    company_name: Option<String>,
    call_reason: Option<String>,
    opener: Option<String>,
    goal: Option<String>,
    language: String,
    max_concurrent_calls: i64,
    /// The campaign's override of the tenant's calling rules (only the overridden fields).
    #[schema(value_type = Option<Object>)]
    calling_rules: Option<serde_json::Value>,
    voicemail_message: Option<String>,
    max_call_seconds: i64,
    key_terms: Vec<String>,
    /// Why Talky paused the campaign (`out_of_minutes`, `provider_auth_failed`).
    pause_reason: Option<String>,
    calls_completed: i64,
    calls_failed: i64,
    started_at: Option<String>,
    completed_at: Option<String>,
    created_at: String,
    updated_at: String,
}

impl From<Campaign> for CampaignResponse {
    fn from(c: Campaign) -> Self {
        Self {
            id: c.id,
            name: c.name,
            description: c.description,
            status: c.status,
            system_prompt: c.system_prompt,
            voice_id: c.voice_id,
            agent_name: c.agent_name,
            company_name: c.company_name,
            call_reason: c.call_reason,
            opener: c.opener,
            goal: c.goal,
            language: c.language,
            max_concurrent_calls: c.max_concurrent_calls,
            calling_rules: c.calling_rules,
            voicemail_message: c.voicemail_message,
            max_call_seconds: c.max_call_seconds,
            key_terms: c.key_terms,
            pause_reason: c.pause_reason,
            calls_completed: c.calls_completed,
            calls_failed: c.calls_failed,
            started_at: c.started_at.map(rfc3339),
            completed_at: c.completed_at.map(rfc3339),
            created_at: rfc3339(c.created_at),
            updated_at: rfc3339(c.updated_at),
        }
    }
}

/// `{"campaign": {...}}`.
#[derive(Serialize, ToSchema)]
pub struct CampaignEnvelopeResponse {
    campaign: CampaignResponse,
}

/// `{"campaigns": [...]}`, newest first.
#[derive(Serialize, ToSchema)]
pub struct CampaignListResponse {
    campaigns: Vec<CampaignResponse>,
}

/// Every writable field of E1. Unknown fields (including `id`, `status`, counters and
/// timestamps) are refused with 422.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCampaignRequest {
    /// 1–255 characters.
    name: String,
    /// At most 5000 characters.
    #[serde(default)]
    description: Option<String>,
    /// The agent's instructions; at most 20000 characters.
    system_prompt: String,
    #[serde(default)]
    voice_id: Option<String>,
    #[serde(default)]
    agent_name: Option<String>,
    #[serde(default)]
    company_name: Option<String>,
    /// At most 30 characters and 4 words.
    #[serde(default)]
    call_reason: Option<String>,
    /// At most 12 words, names the agent and company, ends with a question (G4).
    #[serde(default)]
    opener: Option<String>,
    #[serde(default)]
    goal: Option<String>,
    /// Default `en`.
    #[serde(default)]
    language: Option<String>,
    /// 1–100, default 10.
    #[serde(default)]
    max_concurrent_calls: Option<i64>,
    /// Field-by-field override of the tenant's calling rules (E11).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    calling_rules: Option<serde_json::Value>,
    #[serde(default)]
    voicemail_message: Option<String>,
    /// 60–86400, default 7200.
    #[serde(default)]
    max_call_seconds: Option<i64>,
    #[serde(default)]
    key_terms: Option<Vec<String>>,
    /// Optional; must be the caller's own tenant (B2).
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Uuid)]
    tenant_id: Option<String>,
}

/// A present field (even `null`) is `Some`, an absent one `None` — so PATCH can tell
/// "clear this" from "leave it".
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// The fields of [`CreateCampaignRequest`], each optional; `null` clears a nullable field
/// and is refused (422) for `name`, `system_prompt`, `language`, the limits and `key_terms`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateCampaignRequest {
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    name: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    description: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    system_prompt: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    voice_id: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    agent_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    company_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    call_reason: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    opener: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    goal: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    language: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>)]
    max_concurrent_calls: Option<Option<i64>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Object>)]
    calling_rules: Option<Option<serde_json::Value>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    voicemail_message: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>)]
    max_call_seconds: Option<Option<i64>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Vec<String>>)]
    key_terms: Option<Option<Vec<String>>>,
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Uuid)]
    tenant_id: Option<String>,
}

/// Optional body of `POST /campaigns/{id}/start`.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct StartCampaignRequest {
    /// 1–10; replaces each lead's own priority (E4).
    #[serde(default)]
    priority_override: Option<i64>,
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Uuid)]
    tenant_id: Option<String>,
}

/// `{"id", "status"}` of the campaign a start acted on (E3).
#[derive(Serialize, ToSchema)]
pub struct CampaignRefResponse {
    #[schema(value_type = String, format = Uuid)]
    id: CampaignId,
    #[schema(value_type = String, example = "running")]
    status: CampaignStatus,
}

#[derive(Serialize, ToSchema)]
pub struct StartCampaignResponse {
    message: String,
    /// Jobs created by this start (leads that already had an active job get none).
    jobs_enqueued: u64,
    campaign: CampaignRefResponse,
}

#[derive(Serialize, ToSchema)]
pub struct PauseCampaignResponse {
    message: String,
    campaign: CampaignResponse,
}

#[derive(Serialize, ToSchema)]
pub struct StopCampaignResponse {
    message: String,
    /// Queued jobs that became `skipped`.
    jobs_cleared: u64,
    /// Live calls the carrier confirmed hanging up.
    calls_hung_up: u64,
    campaign: CampaignResponse,
}

#[derive(Serialize, ToSchema)]
pub struct JobResponse {
    #[schema(value_type = String, format = Uuid)]
    id: talky_core::ids::JobId,
    #[schema(value_type = String, format = Uuid)]
    campaign_id: CampaignId,
    #[schema(value_type = String, format = Uuid)]
    lead_id: talky_core::ids::LeadId,
    #[schema(value_type = String, example = "pending")]
    status: JobStatus,
    priority: i64,
    attempt_number: i64,
    scheduled_at: String,
    last_error: Option<String>,
    created_at: String,
    updated_at: String,
}

impl From<Job> for JobResponse {
    fn from(j: Job) -> Self {
        Self {
            id: j.id,
            campaign_id: j.campaign_id,
            lead_id: j.lead_id,
            status: j.status,
            priority: j.priority,
            attempt_number: j.attempt_number,
            scheduled_at: rfc3339(j.scheduled_at),
            last_error: j.last_error,
            created_at: rfc3339(j.created_at),
            updated_at: rfc3339(j.updated_at),
        }
    }
}

/// `{jobs, total, page, page_size}`, newest first (E20).
#[derive(Serialize, ToSchema)]
pub struct JobListResponse {
    jobs: Vec<JobResponse>,
    total: i64,
    page: u32,
    page_size: u32,
}

/// E20 statistics. Both maps list every value of their vocabulary (zero when absent).
#[derive(Serialize, ToSchema)]
pub struct CampaignStatsResponse {
    #[schema(value_type = String, format = Uuid)]
    campaign_id: CampaignId,
    #[schema(value_type = String)]
    campaign_status: CampaignStatus,
    /// Non-deleted leads.
    total_leads: i64,
    job_status_counts: BTreeMap<String, i64>,
    call_outcome_counts: BTreeMap<String, i64>,
    goals_achieved: i64,
}

impl From<CampaignStats> for CampaignStatsResponse {
    fn from(s: CampaignStats) -> Self {
        Self {
            campaign_id: s.campaign_id,
            campaign_status: s.campaign_status,
            total_leads: s.total_leads,
            job_status_counts: s.job_status_counts,
            call_outcome_counts: s.call_outcome_counts,
            goals_achieved: s.goals_achieved,
        }
    }
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct JobsQuery {
    /// One job status (`pending`, `retry_scheduled`, `processing`, `completed`,
    /// `goal_achieved`, `exhausted`, `dnc`, `skipped`); empty = all.
    status: Option<String>,
    /// 1-based page number.
    page: Option<i64>,
    /// 1–100, default 20.
    page_size: Option<i64>,
    /// Optional; must be the caller's own tenant (B2). Checked by `TenantCtx`.
    #[allow(dead_code)]
    tenant_id: Option<String>,
}

// ---------------------------------------------------------------------------------------
// Validation (E1, G4, E11)
// ---------------------------------------------------------------------------------------

const MAX_NAME: usize = 255;
const MAX_PROMPT: usize = 20_000;
const MAX_LONG_TEXT: usize = 5_000;
const MAX_SHORT_TEXT: usize = 255;
const MAX_LANGUAGE: usize = 35;
const MAX_KEY_TERMS: usize = 100;
const MAX_KEY_TERM_CHARS: usize = 100;

/// Trims a required text field; blank or longer than `max` characters → 422.
fn required_text(field: &str, value: &str, max: usize) -> ApiResult<String> {
    let v = value.trim();
    if v.is_empty() {
        return Err(ApiError::validation(field, "must not be blank"));
    }
    if v.chars().count() > max {
        return Err(ApiError::validation(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    Ok(v.to_string())
}

/// Trims an optional text field; blank becomes `None`, longer than `max` → 422.
fn optional_text(field: &str, value: Option<String>, max: usize) -> ApiResult<Option<String>> {
    match value.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) if v.chars().count() > max => Err(ApiError::validation(
            field,
            format!("must be at most {max} characters"),
        )),
        Some(v) => Ok(Some(v.to_string())),
    }
}

fn call_reason(value: Option<String>) -> ApiResult<Option<String>> {
    let v = optional_text("call_reason", value, MAX_SHORT_TEXT)?;
    if let Some(r) = &v {
        check_reason(r).map_err(|_| {
            ApiError::validation("call_reason", "must be at most 30 characters and 4 words")
        })?;
    }
    Ok(v)
}

fn language(value: &str) -> ApiResult<String> {
    let v = value.trim();
    let ok = !v.is_empty()
        && v.len() <= MAX_LANGUAGE
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !ok {
        return Err(ApiError::validation(
            "language",
            "must be a language tag such as en or en-US",
        ));
    }
    Ok(v.to_string())
}

fn max_concurrent_calls(v: i64) -> ApiResult<i64> {
    if !(1..=100).contains(&v) {
        return Err(ApiError::validation(
            "max_concurrent_calls",
            "must be between 1 and 100",
        ));
    }
    Ok(v)
}

fn max_call_seconds(v: i64) -> ApiResult<i64> {
    if !(60..=86_400).contains(&v) {
        return Err(ApiError::validation(
            "max_call_seconds",
            "must be between 60 and 86400",
        ));
    }
    Ok(v)
}

fn key_terms(terms: Vec<String>) -> ApiResult<Vec<String>> {
    if terms.len() > MAX_KEY_TERMS {
        return Err(ApiError::validation(
            "key_terms",
            format!("at most {MAX_KEY_TERMS} terms"),
        ));
    }
    terms
        .into_iter()
        .enumerate()
        .map(|(i, t)| required_text(&format!("key_terms.{i}"), &t, MAX_KEY_TERM_CHARS))
        .collect()
}

/// G4: a campaign's own opener must fit the opener rules for its agent and company.
fn check_campaign_opener(
    opener: Option<&str>,
    agent: Option<&str>,
    company: Option<&str>,
) -> ApiResult<()> {
    if let Some(op) = opener {
        if let Some(problem) = check_opener(op, agent.unwrap_or(""), company.unwrap_or("")).first()
        {
            return Err(ApiError::validation("opener", problem.to_string()));
        }
    }
    Ok(())
}

/// E11: a campaign override is field-by-field, so the override must be an object whose keys
/// are calling-rule fields, and the tenant's rules with the override applied must be valid.
/// Returns the override as given (only the overridden fields are stored).
fn calling_rules_override(
    tenant_rules: &serde_json::Value,
    value: serde_json::Value,
) -> ApiResult<serde_json::Value> {
    let serde_json::Value::Object(overrides) = &value else {
        return Err(ApiError::validation("calling_rules", "must be an object"));
    };
    let base: CallingRules = serde_json::from_value(tenant_rules.clone()).unwrap_or_default();
    let mut merged = match serde_json::to_value(base) {
        Ok(serde_json::Value::Object(m)) => m,
        _ => serde_json::Map::new(),
    };
    for (k, v) in overrides {
        merged.insert(k.clone(), v.clone());
    }
    let rules: CallingRules = serde_path_to_error::deserialize(serde_json::Value::Object(merged))
        .map_err(|e| {
        let path = e.path().to_string();
        let msg = e.into_inner().to_string();
        let field = if path == "." {
            "calling_rules".to_string()
        } else {
            format!("calling_rules.{path}")
        };
        ApiError::validation(field, msg)
    })?;
    rules
        .validate()
        .map_err(|e| ApiError::validation(format!("calling_rules.{}", e.field), e.message))?;
    Ok(value)
}

fn new_campaign(
    req: CreateCampaignRequest,
    tenant_rules: &serde_json::Value,
) -> ApiResult<NewCampaign> {
    let defaults = NewCampaign::default();
    let c = NewCampaign {
        name: required_text("name", &req.name, MAX_NAME)?,
        description: optional_text("description", req.description, MAX_LONG_TEXT)?,
        system_prompt: required_text("system_prompt", &req.system_prompt, MAX_PROMPT)?,
        voice_id: optional_text("voice_id", req.voice_id, MAX_SHORT_TEXT)?,
        agent_name: optional_text("agent_name", req.agent_name, MAX_SHORT_TEXT)?,
        company_name: optional_text("company_name", req.company_name, MAX_SHORT_TEXT)?,
        call_reason: call_reason(req.call_reason)?,
        opener: optional_text("opener", req.opener, MAX_SHORT_TEXT)?,
        goal: optional_text("goal", req.goal, MAX_LONG_TEXT)?,
        language: match req.language {
            Some(l) => language(&l)?,
            None => defaults.language,
        },
        max_concurrent_calls: match req.max_concurrent_calls {
            Some(v) => max_concurrent_calls(v)?,
            None => defaults.max_concurrent_calls,
        },
        calling_rules: req
            .calling_rules
            .map(|v| calling_rules_override(tenant_rules, v))
            .transpose()?,
        voicemail_message: optional_text(
            "voicemail_message",
            req.voicemail_message,
            MAX_LONG_TEXT,
        )?,
        max_call_seconds: match req.max_call_seconds {
            Some(v) => max_call_seconds(v)?,
            None => defaults.max_call_seconds,
        },
        key_terms: key_terms(req.key_terms.unwrap_or_default())?,
    };
    check_campaign_opener(
        c.opener.as_deref(),
        c.agent_name.as_deref(),
        c.company_name.as_deref(),
    )?;
    Ok(c)
}

/// `null` for a field that cannot be empty → 422.
fn not_null<T>(field: &str, v: Option<Option<T>>) -> ApiResult<Option<T>> {
    match v {
        Some(None) => Err(ApiError::validation(field, "must not be null")),
        Some(Some(v)) => Ok(Some(v)),
        None => Ok(None),
    }
}

/// A nullable text field of a PATCH: absent → unchanged, `null`/blank → cleared.
fn patch_text(
    field: &str,
    v: Option<Option<String>>,
    max: usize,
) -> ApiResult<Option<Option<String>>> {
    v.map(|inner| optional_text(field, inner, max)).transpose()
}

fn campaign_patch(
    req: UpdateCampaignRequest,
    current: &Campaign,
    tenant_rules: &serde_json::Value,
) -> ApiResult<CampaignPatch> {
    let opener_touched =
        req.opener.is_some() || req.agent_name.is_some() || req.company_name.is_some();
    let patch = CampaignPatch {
        name: not_null("name", req.name)?
            .map(|v| required_text("name", &v, MAX_NAME))
            .transpose()?,
        description: patch_text("description", req.description, MAX_LONG_TEXT)?,
        system_prompt: not_null("system_prompt", req.system_prompt)?
            .map(|v| required_text("system_prompt", &v, MAX_PROMPT))
            .transpose()?,
        voice_id: patch_text("voice_id", req.voice_id, MAX_SHORT_TEXT)?,
        agent_name: patch_text("agent_name", req.agent_name, MAX_SHORT_TEXT)?,
        company_name: patch_text("company_name", req.company_name, MAX_SHORT_TEXT)?,
        call_reason: req.call_reason.map(call_reason).transpose()?,
        opener: patch_text("opener", req.opener, MAX_SHORT_TEXT)?,
        goal: patch_text("goal", req.goal, MAX_LONG_TEXT)?,
        language: not_null("language", req.language)?
            .map(|v| language(&v))
            .transpose()?,
        max_concurrent_calls: not_null("max_concurrent_calls", req.max_concurrent_calls)?
            .map(max_concurrent_calls)
            .transpose()?,
        calling_rules: req
            .calling_rules
            .map(|v| {
                v.map(|v| calling_rules_override(tenant_rules, v))
                    .transpose()
            })
            .transpose()?,
        voicemail_message: patch_text("voicemail_message", req.voicemail_message, MAX_LONG_TEXT)?,
        max_call_seconds: not_null("max_call_seconds", req.max_call_seconds)?
            .map(max_call_seconds)
            .transpose()?,
        key_terms: not_null("key_terms", req.key_terms)?
            .map(key_terms)
            .transpose()?,
    };
    if opener_touched {
        let mut merged = current.clone();
        patch.clone().apply_to(&mut merged);
        check_campaign_opener(
            merged.opener.as_deref(),
            merged.agent_name.as_deref(),
            merged.company_name.as_deref(),
        )?;
    }
    Ok(patch)
}

/// The E2 refusal as a response: 400 for "already running", 409 otherwise.
fn transition_error(e: TransitionError) -> ApiError {
    match e {
        TransitionError::AlreadyRunning => ApiError::bad_request("already_running", e.to_string()),
        TransitionError::NotAllowed(_) => {
            ApiError::new(StatusCode::CONFLICT, "invalid_transition", e.to_string())
        }
    }
}

fn is_json_content(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|m| {
            let m = m.trim().to_ascii_lowercase();
            m == "application/json" || (m.starts_with("application/") && m.ends_with("+json"))
        })
        .unwrap_or(false)
}

/// An optional JSON body: none (or only whitespace) gives the default; otherwise the usual
/// 415 / 400 / 422 of `ApiJson`. Returned as a `Result` so the caller can report it at the
/// point its route's order of checks prescribes.
fn optional_json<T: serde::de::DeserializeOwned + Default>(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<T> {
    let bytes = body.map_err(|rej| body_rejection(rej.status()))?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    if !is_json_content(headers) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Content-Type must be application/json",
        ));
    }
    parse_json(&bytes)
}

// ---------------------------------------------------------------------------------------
// Handlers
// ---------------------------------------------------------------------------------------

#[utoipa::path(get, path = "/campaigns", operation_id = "list_campaigns", tag = "campaigns", security(("bearer" = [])),
    description = "The tenant's campaigns, newest first.",
    responses((status = 200, body = CampaignListResponse), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn list(
    State(state): State<SharedState>,
    t: TenantCtx,
) -> ApiResult<ApiJson<CampaignListResponse>> {
    let campaigns = state.store.list_campaigns(t.tenant_id).await?;
    Ok(ApiJson(CampaignListResponse {
        campaigns: campaigns.into_iter().map(CampaignResponse::from).collect(),
    }))
}

#[utoipa::path(post, path = "/campaigns", operation_id = "create_campaign", tag = "campaigns", security(("bearer" = [])),
    request_body = CreateCampaignRequest,
    description = "Creates a `draft` campaign (200, as the API contract documents).",
    responses((status = 200, body = CampaignEnvelopeResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create(
    State(state): State<SharedState>,
    t: TenantCtx,
    ApiJson(req): ApiJson<CreateCampaignRequest>,
) -> ApiResult<ApiJson<CampaignEnvelopeResponse>> {
    check_tenant_param(req.tenant_id.as_deref(), t.tenant_id)?;
    let new = new_campaign(req, &t.tenant.calling_rules)?;
    let campaign = state
        .store
        .create_campaign(t.tenant_id, new, state.clock.now())
        .await?;
    Ok(ApiJson(CampaignEnvelopeResponse {
        campaign: campaign.into(),
    }))
}

#[utoipa::path(get, path = "/campaigns/{campaign_id}", operation_id = "get_campaign", tag = "campaigns", security(("bearer" = [])),
    params(("campaign_id" = String, Path, format = Uuid)),
    responses((status = 200, body = CampaignEnvelopeResponse), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, description = "Campaign not found", body = ErrorBody)))]
async fn get(
    State(state): State<SharedState>,
    t: TenantCtx,
    ApiPath(id): ApiPath<CampaignId>,
) -> ApiResult<ApiJson<CampaignEnvelopeResponse>> {
    let campaign = state
        .store
        .get_campaign(t.tenant_id, id)
        .await
        .or_not_found(CAMPAIGN_NOT_FOUND)?;
    Ok(ApiJson(CampaignEnvelopeResponse {
        campaign: campaign.into(),
    }))
}

#[utoipa::path(patch, path = "/campaigns/{campaign_id}", operation_id = "update_campaign", tag = "campaigns", security(("bearer" = [])),
    params(("campaign_id" = String, Path, format = Uuid)),
    request_body = UpdateCampaignRequest,
    description = "Changes only the given fields, in any status.",
    responses((status = 200, body = CampaignEnvelopeResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, description = "Campaign not found", body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update(
    State(state): State<SharedState>,
    t: TenantCtx,
    ApiPath(id): ApiPath<CampaignId>,
    ApiJson(req): ApiJson<UpdateCampaignRequest>,
) -> ApiResult<ApiJson<CampaignEnvelopeResponse>> {
    check_tenant_param(req.tenant_id.as_deref(), t.tenant_id)?;
    let current = state
        .store
        .get_campaign(t.tenant_id, id)
        .await
        .or_not_found(CAMPAIGN_NOT_FOUND)?;
    let patch = campaign_patch(req, &current, &t.tenant.calling_rules)?;
    let campaign = state
        .store
        .update_campaign(t.tenant_id, id, patch, state.clock.now())
        .await
        .or_not_found(CAMPAIGN_NOT_FOUND)?;
    Ok(ApiJson(CampaignEnvelopeResponse {
        campaign: campaign.into(),
    }))
}

#[utoipa::path(post, path = "/campaigns/{campaign_id}/start", operation_id = "start_campaign", tag = "campaigns", security(("bearer" = [])),
    params(("campaign_id" = String, Path, format = Uuid)),
    request_body(content = Option<StartCampaignRequest>, description = "Optional."),
    description = "E3: checks 404 → 400 already running → 402 out of minutes → 422, then in one transaction sets \
        `running` and enqueues one job per pending, non-DNC lead without an active job.",
    responses((status = 200, body = StartCampaignResponse), (status = 400, description = "Campaign is already running", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 402, description = "Out of minutes", body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, description = "Campaign not found", body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn start(
    State(state): State<SharedState>,
    t: TenantCtx,
    ApiPath(id): ApiPath<CampaignId>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<ApiJson<StartCampaignResponse>> {
    let req = optional_json::<StartCampaignRequest>(&headers, body);
    if let Ok(r) = &req {
        check_tenant_param(r.tenant_id.as_deref(), t.tenant_id)?;
    }
    let current = state
        .store
        .get_campaign(t.tenant_id, id)
        .await
        .or_not_found(CAMPAIGN_NOT_FOUND)?;
    current
        .status
        .apply(CampaignAction::Start)
        .map_err(transition_error)?;
    let now = state.clock.now();
    if tenant_minutes(state.store.as_ref(), &t.tenant, now)
        .await?
        .exhausted()
    {
        return Err(ApiError::new(
            StatusCode::PAYMENT_REQUIRED,
            "out_of_minutes",
            "Out of minutes",
        ));
    }
    let req = req?;
    if let Some(p) = req.priority_override {
        if !(1..=10).contains(&p) {
            return Err(ApiError::validation(
                "priority_override",
                "must be between 1 and 10",
            ));
        }
    }
    let started = state
        .store
        .start_campaign(
            t.tenant_id,
            id,
            StartOptions {
                priority_override: req.priority_override,
            },
            now,
        )
        .await
        .or_not_found(CAMPAIGN_NOT_FOUND)?
        .map_err(transition_error)?;
    Ok(ApiJson(StartCampaignResponse {
        message: format!("Campaign {id} started"),
        jobs_enqueued: started.jobs_enqueued,
        campaign: CampaignRefResponse {
            id: started.campaign.id,
            status: started.campaign.status,
        },
    }))
}

#[utoipa::path(post, path = "/campaigns/{campaign_id}/pause", operation_id = "pause_campaign", tag = "campaigns", security(("bearer" = [])),
    params(("campaign_id" = String, Path, format = Uuid)),
    description = "E8: no new dials; queued jobs keep their place and live calls continue. Pausing a paused campaign is a no-op.",
    responses((status = 200, body = PauseCampaignResponse), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, description = "Campaign not found", body = ErrorBody),
        (status = 409, description = "Campaign is <status>", body = ErrorBody)))]
async fn pause(
    State(state): State<SharedState>,
    t: TenantCtx,
    ApiPath(id): ApiPath<CampaignId>,
) -> ApiResult<ApiJson<PauseCampaignResponse>> {
    let campaign = state
        .store
        .pause_campaign(t.tenant_id, id, None, state.clock.now())
        .await
        .or_not_found(CAMPAIGN_NOT_FOUND)?
        .map_err(transition_error)?;
    Ok(ApiJson(PauseCampaignResponse {
        message: format!("Campaign {id} paused"),
        campaign: campaign.into(),
    }))
}

#[utoipa::path(post, path = "/campaigns/{campaign_id}/stop", operation_id = "stop_campaign", tag = "campaigns", security(("bearer" = [])),
    params(("campaign_id" = String, Path, format = Uuid)),
    description = "E9: status `stopped`; queued jobs become `skipped`; every live call of the campaign is hung up \
        through the carrier (a call still waiting for its provider id is hung up when the id arrives).",
    responses((status = 200, body = StopCampaignResponse), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, description = "Campaign not found", body = ErrorBody)))]
async fn stop(
    State(state): State<SharedState>,
    t: TenantCtx,
    ApiPath(id): ApiPath<CampaignId>,
) -> ApiResult<ApiJson<StopCampaignResponse>> {
    let stopped = state
        .store
        .stop_campaign(t.tenant_id, id, state.clock.now())
        .await
        .or_not_found(CAMPAIGN_NOT_FOUND)?
        .map_err(transition_error)?;
    // The status change is committed; hang-ups happen after it so no new call can start
    // while they run. Each carrier request is independent, so they run concurrently.
    // Calls without a carrier (test calls) whose session runs in this process end here.
    let local_stops = stopped
        .live_calls
        .iter()
        .filter(|call| call.carrier_call().is_none())
        .filter(|call| crate::voice::socket::stop_local_session(&state, call.id))
        .count() as u64;
    let hangups = stopped.live_calls.iter().filter_map(|call| {
        let carrier = call.carrier_call()?;
        let telephony = state.telephony.clone();
        let call_id = call.id;
        Some(async move {
            match telephony.hang_up(&carrier).await {
                Ok(()) => true,
                Err(TelephonyError::UnknownCall) => {
                    tracing::info!(%call_id, "stop: carrier no longer knows the call");
                    false
                }
                Err(e) => {
                    tracing::warn!(%call_id, error = %e, "stop: hang-up failed");
                    false
                }
            }
        })
    });
    let calls_hung_up = futures::future::join_all(hangups)
        .await
        .into_iter()
        .filter(|ok| *ok)
        .count() as u64
        + local_stops;
    Ok(ApiJson(StopCampaignResponse {
        message: format!("Campaign {id} stopped"),
        jobs_cleared: stopped.jobs_cleared,
        calls_hung_up,
        campaign: stopped.campaign.into(),
    }))
}

#[utoipa::path(get, path = "/campaigns/{campaign_id}/jobs", operation_id = "list_campaign_jobs", tag = "campaigns", security(("bearer" = [])),
    params(("campaign_id" = String, Path, format = Uuid), JobsQuery),
    responses((status = 200, body = JobListResponse), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, description = "Campaign not found", body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn jobs(
    State(state): State<SharedState>,
    t: TenantCtx,
    ApiPath(id): ApiPath<CampaignId>,
    ApiQuery(q): ApiQuery<JobsQuery>,
) -> ApiResult<ApiJson<JobListResponse>> {
    let page = PageParams {
        page: q.page,
        page_size: q.page_size,
    }
    .page(20)?;
    let status = match q.status.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(s) => Some(
            s.parse::<JobStatus>()
                .map_err(|e| ApiError::validation("status", e.to_string()))?,
        ),
    };
    let (jobs, total) = state
        .store
        .list_jobs(t.tenant_id, id, status, page)
        .await
        .or_not_found(CAMPAIGN_NOT_FOUND)?;
    Ok(ApiJson(JobListResponse {
        jobs: jobs.into_iter().map(JobResponse::from).collect(),
        total,
        page: page.page,
        page_size: page.page_size,
    }))
}

#[utoipa::path(get, path = "/campaigns/{campaign_id}/stats", operation_id = "campaign_stats", tag = "campaigns", security(("bearer" = [])),
    params(("campaign_id" = String, Path, format = Uuid)),
    responses((status = 200, body = CampaignStatsResponse), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, description = "Campaign not found", body = ErrorBody)))]
async fn stats(
    State(state): State<SharedState>,
    t: TenantCtx,
    ApiPath(id): ApiPath<CampaignId>,
) -> ApiResult<ApiJson<CampaignStatsResponse>> {
    let stats = state
        .store
        .campaign_stats(t.tenant_id, id)
        .await
        .or_not_found(CAMPAIGN_NOT_FOUND)?;
    Ok(ApiJson(stats.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn override_is_validated_merged_with_the_tenant_rules() {
        let tenant = serde_json::json!({"time_window_start": "08:00"});
        // Only the end is overridden; it equals the tenant's start → invalid.
        let e = calling_rules_override(&tenant, serde_json::json!({"time_window_end": "08:00"}))
            .unwrap_err();
        assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(e
            .fields
            .unwrap()
            .contains_key("calling_rules.time_window_end"));
        let ok = serde_json::json!({"time_window_end": "20:00", "timezone": "Europe/Paris"});
        assert_eq!(calling_rules_override(&tenant, ok.clone()).unwrap(), ok);
        let e = calling_rules_override(&tenant, serde_json::json!({"bogus": 1})).unwrap_err();
        assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY);
        let e =
            calling_rules_override(&tenant, serde_json::json!({"max_attempts": "x"})).unwrap_err();
        assert!(e.fields.unwrap().contains_key("calling_rules.max_attempts"));
        assert!(calling_rules_override(&tenant, serde_json::json!([1])).is_err());
    }

    #[test]
    fn reason_and_text_bounds() {
        assert!(call_reason(Some("your checkup".into())).is_ok());
        assert!(call_reason(Some("one two three four five".into())).is_err());
        assert!(call_reason(Some("x".repeat(31))).is_err());
        assert_eq!(optional_text("d", Some("  ".into()), 5).unwrap(), None);
        assert!(required_text("n", " ", 5).is_err());
        assert!(required_text("n", &"é".repeat(255), 255).is_ok());
        assert!(required_text("n", &"é".repeat(256), 255).is_err());
    }
}
