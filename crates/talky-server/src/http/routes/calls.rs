//! `/calls`, `/calls/{call_id}`, `/calls/{call_id}/transcript` (behaviour.md H6, H7) and
//! `/calls/{call_id}/metrics` (J1, J2; an extension, see docs/compatibility.md): the caller's
//! tenant's calls, newest first, with inclusive date filters.
//!
//! Calls and transcripts are written by the dialer and the voice session; this module only
//! reads them. The inclusive-date helpers live here and are shared with `/analytics/calls`
//! (C6), so `from`/`to` mean the same thing on both routes.

use crate::auth::TenantCtx;
use crate::error::{ApiError, ApiResult, OrNotFound};
use crate::extract::{ApiJson, ApiPath, ApiQuery, PageParams};
use crate::http::openapi::ErrorBody;
use crate::state::SharedState;
use crate::time::{rfc3339, rfc3339_millis};
use axum::extract::State;
use chrono::{DateTime, Datelike, Days, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use talky_core::ids::CallId;
use talky_core::model::CallStatus;
use talky_core::ports::store::{
    CallDetail, CallFilter, CallListItem, CallMetrics, Transcript, TranscriptTurn, TurnMetric,
    TurnRole,
};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<SharedState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(get_call))
        .routes(routes!(transcript))
        .routes(routes!(metrics))
}

/// Parses a `YYYY-MM-DD` query date strictly (four-digit year, two-digit month and day).
///
/// Years are limited to 0001–9998 so that the day after any accepted date is still a
/// four-digit year: instants are stored as fixed-width text on SQLite and compared as such.
pub(crate) fn parse_date(field: &str, raw: &str) -> ApiResult<NaiveDate> {
    let bad = || ApiError::validation(field, "must be a date in the form YYYY-MM-DD");
    let b = raw.as_bytes();
    let shape_ok = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if !shape_ok {
        return Err(bad());
    }
    let date = NaiveDate::parse_from_str(raw, "%Y-%m-%d").map_err(|_| bad())?;
    if !(1..=9998).contains(&date.year()) {
        return Err(ApiError::validation(
            field,
            "year must be between 0001 and 9998",
        ));
    }
    Ok(date)
}

/// Midnight UTC at the start of `date`.
pub(crate) fn day_start(date: NaiveDate) -> DateTime<Utc> {
    date.and_time(chrono::NaiveTime::MIN).and_utc()
}

/// A half-open range of instants; `None` is an open end.
pub(crate) type InstantRange = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

/// Turns inclusive dates into the half-open instant range `[from 00:00, to + 1 day 00:00)`.
/// `from > to` is a 422 naming `from`.
pub(crate) fn inclusive_range(
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
) -> ApiResult<InstantRange> {
    if let (Some(f), Some(t)) = (from, to) {
        if f > t {
            return Err(ApiError::validation("from", "must not be after `to`"));
        }
    }
    let end = match to {
        Some(t) => Some(day_start(
            t.checked_add_days(Days::new(1))
                .ok_or_else(|| ApiError::validation("to", "date out of range"))?,
        )),
        None => None,
    };
    Ok((from.map(day_start), end))
}

/// An optional query value where an empty string means "not given" (`?status=&from=`).
fn non_empty(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.trim().is_empty())
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// 1-based page number (default 1).
    page: Option<i64>,
    /// Items per page, 1–100 (default 20).
    page_size: Option<i64>,
    /// Only calls with this status (`initiated`, `ringing`, `answered`, `in_progress`,
    /// `completed`, `busy`, `no_answer`, `failed`, `cancelled`, `rejected`, `timeout`).
    status: Option<String>,
    /// First day (inclusive, UTC), `YYYY-MM-DD`.
    #[param(format = Date)]
    from: Option<String>,
    /// Last day (inclusive, UTC), `YYYY-MM-DD`.
    #[param(format = Date)]
    to: Option<String>,
    /// Ignored when it is the caller's own tenant; any other value is 403 (B2).
    #[param(ignore)]
    #[allow(dead_code)]
    tenant_id: Option<String>,
}

/// One call of the list (H7).
#[derive(Serialize, ToSchema)]
pub struct CallListItemResponse {
    #[schema(value_type = String, format = Uuid)]
    id: CallId,
    /// When the call was created, RFC 3339 UTC.
    timestamp: String,
    to_number: String,
    status: String,
    duration_seconds: i64,
    outcome: Option<String>,
}

impl From<CallListItem> for CallListItemResponse {
    fn from(c: CallListItem) -> Self {
        Self {
            id: c.id,
            timestamp: rfc3339(c.created_at),
            to_number: c.to_number,
            status: c.status.as_str().to_string(),
            duration_seconds: c.duration_seconds,
            outcome: c.outcome.map(|o| o.as_str().to_string()),
        }
    }
}

/// A page of calls.
#[derive(Serialize, ToSchema)]
pub struct CallListResponse {
    items: Vec<CallListItemResponse>,
    page: u32,
    page_size: u32,
    total: i64,
}

#[utoipa::path(operation_id = "list_calls", get, path = "/calls", tag = "calls", security(("bearer" = [])),
    params(ListQuery),
    description = "The tenant's calls, newest first. `from`/`to` are inclusive UTC dates.",
    responses(
        (status = 200, body = CallListResponse),
        (status = 401, body = ErrorBody),
        (status = 403, description = "No tenant, or a foreign `tenant_id`", body = ErrorBody),
        (status = 422, description = "Bad page bounds, status or date; `from` after `to`", body = ErrorBody)))]
async fn list(
    State(state): State<SharedState>,
    t: TenantCtx,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<ApiJson<CallListResponse>> {
    let page = PageParams {
        page: q.page,
        page_size: q.page_size,
    }
    .page(20)?;
    let status = non_empty(q.status)
        .map(|s| {
            s.trim()
                .parse::<CallStatus>()
                .map_err(|_| ApiError::validation("status", format!("unknown call status `{s}`")))
        })
        .transpose()?;
    let from = non_empty(q.from)
        .map(|s| parse_date("from", s.trim()))
        .transpose()?;
    let to = non_empty(q.to)
        .map(|s| parse_date("to", s.trim()))
        .transpose()?;
    let (from, to) = inclusive_range(from, to)?;
    let (items, total) = state
        .store
        .list_calls(t.tenant_id, CallFilter { status, from, to }, page)
        .await?;
    Ok(ApiJson(CallListResponse {
        items: items.into_iter().map(CallListItemResponse::from).collect(),
        page: page.page,
        page_size: page.page_size,
        total,
    }))
}

/// One call with its links, summary and transcript text (H7).
#[derive(Serialize, ToSchema)]
pub struct CallDetailResponse {
    #[schema(value_type = String, format = Uuid)]
    id: CallId,
    /// When the call was created, RFC 3339 UTC.
    timestamp: String,
    to_number: String,
    status: String,
    duration_seconds: i64,
    outcome: Option<String>,
    /// The transcript's full text (`User: …` / `Assistant: …` lines), if any.
    transcript: Option<String>,
    summary: Option<String>,
    #[schema(value_type = Option<String>, format = Uuid)]
    recording_id: Option<String>,
    #[schema(value_type = Option<String>, format = Uuid)]
    campaign_id: Option<String>,
    #[schema(value_type = Option<String>, format = Uuid)]
    lead_id: Option<String>,
    answered_at: Option<String>,
    ended_at: Option<String>,
    end_reason: Option<String>,
}

impl From<CallDetail> for CallDetailResponse {
    fn from(c: CallDetail) -> Self {
        Self {
            id: c.id,
            timestamp: rfc3339(c.created_at),
            to_number: c.to_number,
            status: c.status.as_str().to_string(),
            duration_seconds: c.duration_seconds,
            outcome: c.outcome.map(|o| o.as_str().to_string()),
            transcript: c.transcript,
            summary: c.summary,
            recording_id: c.recording_id.map(|r| r.to_string()),
            campaign_id: c.campaign_id.map(|r| r.to_string()),
            lead_id: c.lead_id.map(|r| r.to_string()),
            answered_at: c.answered_at.map(rfc3339),
            ended_at: c.ended_at.map(rfc3339),
            end_reason: c.end_reason,
        }
    }
}

#[utoipa::path(operation_id = "get_call", get, path = "/calls/{call_id}", tag = "calls", security(("bearer" = [])),
    params(("call_id" = String, Path, format = Uuid)),
    responses(
        (status = 200, body = CallDetailResponse),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, description = "Call not found", body = ErrorBody)))]
async fn get_call(
    State(state): State<SharedState>,
    t: TenantCtx,
    ApiPath(id): ApiPath<CallId>,
) -> ApiResult<ApiJson<CallDetailResponse>> {
    let call = state
        .store
        .get_call(t.tenant_id, id)
        .await
        .or_not_found("Call not found")?;
    Ok(ApiJson(call.into()))
}

/// Transcript rendering.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
enum TranscriptFormat {
    #[default]
    Json,
    Text,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct TranscriptQuery {
    /// `json` (default) or `text`.
    #[param(inline)]
    format: Option<TranscriptFormat>,
    #[param(ignore)]
    #[allow(dead_code)]
    tenant_id: Option<String>,
}

/// One transcript turn (H6).
#[derive(Serialize, ToSchema)]
pub struct TurnResponse {
    /// `user` or `assistant`.
    role: &'static str,
    content: String,
    /// RFC 3339 UTC.
    timestamp: String,
    /// User turns only: mean word confidence, 0–1.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    confidence: Option<f64>,
    /// Present (true) on assistant turns that were cut off.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    interrupted: Option<bool>,
}

impl From<TranscriptTurn> for TurnResponse {
    fn from(t: TranscriptTurn) -> Self {
        Self {
            role: match t.role {
                TurnRole::User => "user",
                TurnRole::Assistant => "assistant",
            },
            content: t.content,
            timestamp: rfc3339(t.timestamp),
            confidence: t.confidence,
            interrupted: t.interrupted.then_some(true),
        }
    }
}

/// Transcript metrics (H6).
#[derive(Serialize, ToSchema)]
pub struct TranscriptMetadata {
    word_count: i64,
    turn_count: i64,
    user_word_count: i64,
    assistant_word_count: i64,
    /// When the transcript was saved, RFC 3339 UTC.
    created_at: String,
}

/// `format=json`.
#[derive(Serialize, ToSchema)]
pub struct TranscriptJsonResponse {
    /// Always `json`.
    format: &'static str,
    #[schema(value_type = String, format = Uuid)]
    call_id: CallId,
    turns: Vec<TurnResponse>,
    metadata: TranscriptMetadata,
}

/// `format=text`.
#[derive(Serialize, ToSchema)]
pub struct TranscriptTextResponse {
    /// Always `text`.
    format: &'static str,
    #[schema(value_type = String, format = Uuid)]
    call_id: CallId,
    /// One `User: …` / `Assistant: …` line per turn.
    transcript: String,
}

/// Either rendering of a transcript.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum TranscriptResponse {
    Json(TranscriptJsonResponse),
    Text(TranscriptTextResponse),
}

fn render_transcript(t: Transcript, format: TranscriptFormat) -> TranscriptResponse {
    match format {
        TranscriptFormat::Json => TranscriptResponse::Json(TranscriptJsonResponse {
            format: "json",
            call_id: t.call_id,
            turns: t.turns.into_iter().map(TurnResponse::from).collect(),
            metadata: TranscriptMetadata {
                word_count: t.word_count,
                turn_count: t.turn_count,
                user_word_count: t.user_word_count,
                assistant_word_count: t.assistant_word_count,
                created_at: rfc3339(t.created_at),
            },
        }),
        TranscriptFormat::Text => TranscriptResponse::Text(TranscriptTextResponse {
            format: "text",
            call_id: t.call_id,
            transcript: t.full_text,
        }),
    }
}

#[utoipa::path(operation_id = "get_call_transcript", get, path = "/calls/{call_id}/transcript", tag = "calls", security(("bearer" = [])),
    params(("call_id" = String, Path, format = Uuid), TranscriptQuery),
    responses(
        (status = 200, body = TranscriptResponse),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, description = "Call not found / Transcript not found", body = ErrorBody),
        (status = 422, description = "Unknown format", body = ErrorBody)))]
async fn transcript(
    State(state): State<SharedState>,
    t: TenantCtx,
    ApiPath(id): ApiPath<CallId>,
    ApiQuery(q): ApiQuery<TranscriptQuery>,
) -> ApiResult<ApiJson<TranscriptResponse>> {
    let format = q.format.unwrap_or_default();
    let transcript = state
        .store
        .get_transcript(t.tenant_id, id)
        .await
        .or_not_found("Call not found")?
        .ok_or_else(|| ApiError::not_found("Transcript not found"))?;
    Ok(ApiJson(render_transcript(transcript, format)))
}

/// One J1 per-turn latency record: milliseconds, `null` where the stage did not happen.
#[derive(Serialize, ToSchema)]
pub struct TurnMetricResponse {
    /// 0-based index of the caller turn within the call.
    turn_index: i64,
    /// End of caller speech, RFC 3339 UTC with milliseconds.
    speech_end: Option<String>,
    /// End of turn received − `speech_end`.
    endpoint_delay_ms: Option<i64>,
    /// Final transcript available − `speech_end`.
    stt_final_ms: Option<i64>,
    /// First LLM fragment − LLM request sent.
    llm_ttft_ms: Option<i64>,
    /// First complete sentence − LLM request sent.
    first_sentence_ms: Option<i64>,
    /// First TTS audio byte − TTS request sent.
    tts_ttfb_ms: Option<i64>,
    /// First frame written to the carrier − `speech_end` (voice-to-voice at the server).
    first_frame_ms: Option<i64>,
    /// Whether a promoted speculative reply was used.
    speculative: bool,
}

impl From<TurnMetric> for TurnMetricResponse {
    fn from(m: TurnMetric) -> Self {
        Self {
            turn_index: m.turn_index,
            speech_end: m.speech_end.map(rfc3339_millis),
            endpoint_delay_ms: m.endpoint_delay_ms,
            stt_final_ms: m.stt_final_ms,
            llm_ttft_ms: m.llm_ttft_ms,
            first_sentence_ms: m.first_sentence_ms,
            tts_ttfb_ms: m.tts_ttfb_ms,
            first_frame_ms: m.first_frame_ms,
            speculative: m.speculative,
        }
    }
}

/// A call's latency records and counters (J1, J2), as stored when its voice session ended.
#[derive(Serialize, ToSchema)]
pub struct CallMetricsResponse {
    #[schema(value_type = String, format = Uuid)]
    call_id: CallId,
    /// J2 counters (inbound/outbound frames, barge-ins, errors, pacing, …); `null` until the
    /// call's voice session has ended and been persisted.
    #[schema(value_type = Option<Object>)]
    counters: Option<serde_json::Value>,
    /// First agent frame − `websocket:connected` (J1), copied from `counters`; absent when
    /// the counters do not have it (no session yet, or no agent audio).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<i64>, required = false)]
    opener_ms: Option<Option<i64>>,
    /// J1 records in turn order (turns that produced agent audio).
    turns: Vec<TurnMetricResponse>,
}

impl From<CallMetrics> for CallMetricsResponse {
    fn from(m: CallMetrics) -> Self {
        let opener_ms = m
            .counters
            .as_ref()
            .and_then(|c| c.get("opener_ms"))
            .map(|v| v.as_i64().or_else(|| v.as_f64().map(|f| f.round() as i64)));
        Self {
            call_id: m.call_id,
            counters: m.counters,
            opener_ms,
            turns: m.turns.into_iter().map(TurnMetricResponse::from).collect(),
        }
    }
}

#[utoipa::path(operation_id = "get_call_metrics", get, path = "/calls/{call_id}/metrics", tag = "calls", security(("bearer" = [])),
    params(("call_id" = String, Path, format = Uuid)),
    description = "Per-turn latencies (J1) and per-call counters (J2) stored when the call's voice \
        session ended. Before that `counters` is `null` and `turns` is empty.",
    responses(
        (status = 200, body = CallMetricsResponse),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, description = "Call not found", body = ErrorBody)))]
async fn metrics(
    State(state): State<SharedState>,
    t: TenantCtx,
    ApiPath(id): ApiPath<CallId>,
) -> ApiResult<ApiJson<CallMetricsResponse>> {
    let metrics = state
        .store
        .call_metrics(t.tenant_id, id)
        .await
        .or_not_found("Call not found")?;
    Ok(ApiJson(metrics.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_strict_and_inclusive() {
        let d = |s: &str| parse_date("from", s);
        assert!(d("2025-01-31").is_ok());
        for bad in [
            "2025-1-31",
            "2025-02-30",
            "25-01-01",
            "2025/01/01",
            "",
            "0000-01-01",
            "9999-01-01",
            "2025-01-011",
        ] {
            let e = d(bad).unwrap_err();
            assert_eq!(e.status.as_u16(), 422, "{bad}");
        }
        let f = d("2025-01-01").unwrap();
        let t = d("2025-01-31").unwrap();
        let (a, b) = inclusive_range(Some(f), Some(t)).unwrap();
        assert_eq!(rfc3339(a.unwrap()), "2025-01-01T00:00:00Z");
        assert_eq!(rfc3339(b.unwrap()), "2025-02-01T00:00:00Z");
        assert_eq!(
            inclusive_range(Some(t), Some(f))
                .unwrap_err()
                .status
                .as_u16(),
            422
        );
        assert_eq!(
            inclusive_range(Some(f), Some(f))
                .unwrap()
                .1
                .map(rfc3339)
                .as_deref(),
            Some("2025-01-02T00:00:00Z")
        );
        assert_eq!(inclusive_range(None, None).unwrap(), (None, None));
    }
}
