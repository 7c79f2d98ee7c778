//! `/recordings` and `/recordings/{recording_id}/stream` (behaviour.md H3, H4).
//!
//! The list shows `completed` recordings only. The stream route serves the object from the
//! `RecordingStore` port (local folder or S3-compatible), honouring a single HTTP byte range
//! so browsers can seek in an `<audio>` element. The body is streamed chunk by chunk from
//! the store; a recording is never loaded into memory whole.

use crate::auth::TenantCtx;
use crate::error::{ApiError, ApiResult, OrNotFound};
use crate::extract::{ApiJson, ApiPath, ApiQuery, PageParams};
use crate::http::openapi::ErrorBody;
use crate::state::SharedState;
use crate::time::rfc3339;
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use talky_core::ids::{CallId, RecordingId};
use talky_core::ports::recording::RecordingStoreError;
use talky_core::ports::store::{RecordingListItem, RecordingStatus};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<SharedState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(stream))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// Only recordings of this call.
    #[param(format = Uuid)]
    call_id: Option<String>,
    /// 1-based page number (default 1).
    page: Option<i64>,
    /// Items per page, 1–100 (default 20).
    page_size: Option<i64>,
    #[param(ignore)]
    #[allow(dead_code)]
    tenant_id: Option<String>,
}

/// One recording of the list (H4).
#[derive(Serialize, ToSchema)]
pub struct RecordingListItemResponse {
    #[schema(value_type = String, format = Uuid)]
    id: RecordingId,
    #[schema(value_type = String, format = Uuid)]
    call_id: CallId,
    /// RFC 3339 UTC.
    created_at: String,
    duration_seconds: i64,
}

impl From<RecordingListItem> for RecordingListItemResponse {
    fn from(r: RecordingListItem) -> Self {
        Self {
            id: r.id,
            call_id: r.call_id,
            created_at: rfc3339(r.created_at),
            duration_seconds: r.duration_seconds,
        }
    }
}

/// A page of recordings.
#[derive(Serialize, ToSchema)]
pub struct RecordingListResponse {
    items: Vec<RecordingListItemResponse>,
    page: u32,
    page_size: u32,
    total: i64,
}

#[utoipa::path(operation_id = "list_recordings", get, path = "/recordings", tag = "recordings", security(("bearer" = [])),
    params(ListQuery),
    description = "The tenant's completed recordings, newest first.",
    responses(
        (status = 200, body = RecordingListResponse),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 422, description = "Bad page bounds or call_id", body = ErrorBody)))]
async fn list(
    State(state): State<SharedState>,
    t: TenantCtx,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<ApiJson<RecordingListResponse>> {
    let page = PageParams {
        page: q.page,
        page_size: q.page_size,
    }
    .page(20)?;
    let call = q
        .call_id
        .filter(|s| !s.trim().is_empty())
        .map(|s| {
            s.trim()
                .parse::<CallId>()
                .map_err(|_| ApiError::validation("call_id", "must be a UUID"))
        })
        .transpose()?;
    let (items, total) = state.store.list_recordings(t.tenant_id, call, page).await?;
    Ok(ApiJson(RecordingListResponse {
        items: items
            .into_iter()
            .map(RecordingListItemResponse::from)
            .collect(),
        page: page.page,
        page_size: page.page_size,
        total,
    }))
}

/// What a `Range` header asks for, against an object of `size` bytes.
#[derive(Debug, PartialEq, Eq)]
enum RangeRequest {
    /// No `Range` header: the whole object.
    Full,
    /// One satisfiable range, inclusive bounds already clamped to the object.
    Partial { start: u64, end: u64 },
    /// Malformed, multi-range or unsatisfiable: 416.
    Unsatisfiable,
}

/// Parses a single `bytes=a-b` / `bytes=a-` / `bytes=-n` range (RFC 9110 §14.1.2).
///
/// Multiple ranges are answered 416 rather than with `multipart/byteranges`: audio players
/// ask for one range at a time, and refusing is simpler than a second body format.
fn parse_range(value: Option<&HeaderValue>, size: u64) -> RangeRequest {
    let Some(value) = value else {
        return RangeRequest::Full;
    };
    let Some(spec) = value
        .to_str()
        .ok()
        .and_then(|v| v.trim().strip_prefix("bytes="))
    else {
        return RangeRequest::Unsatisfiable;
    };
    let Some((a, b)) = spec.trim().split_once('-') else {
        return RangeRequest::Unsatisfiable;
    };
    let (a, b) = (a.trim(), b.trim());
    let num = |s: &str| -> Option<u64> {
        if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
            None
        } else {
            s.parse().ok()
        }
    };
    if size == 0 {
        return RangeRequest::Unsatisfiable;
    }
    let last = size - 1;
    match (a.is_empty(), b.is_empty()) {
        // `-n`: the last n bytes.
        (true, false) => match num(b) {
            Some(n) if n > 0 => RangeRequest::Partial {
                start: size.saturating_sub(n),
                end: last,
            },
            _ => RangeRequest::Unsatisfiable,
        },
        // `a-`: from a to the end.
        (false, true) => match num(a) {
            Some(start) if start <= last => RangeRequest::Partial { start, end: last },
            _ => RangeRequest::Unsatisfiable,
        },
        // `a-b`.
        (false, false) => match (num(a), num(b)) {
            (Some(start), Some(end)) if start <= end && start <= last => RangeRequest::Partial {
                start,
                end: end.min(last),
            },
            _ => RangeRequest::Unsatisfiable,
        },
        (true, true) => RangeRequest::Unsatisfiable,
    }
}

/// The audio bytes of a recording (schema only: the body is streamed).
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct WavBody(#[allow(dead_code)] Vec<u8>);

fn storage_error(e: RecordingStoreError) -> ApiError {
    match e {
        RecordingStoreError::NotFound | RecordingStoreError::InvalidKey => {
            ApiError::not_found("Recording file not accessible")
        }
        RecordingStoreError::Io(msg) => {
            tracing::error!(error = %msg, "recording storage failed");
            ApiError::unavailable("Recording storage unavailable")
        }
    }
}

#[utoipa::path(operation_id = "stream_recording", get, path = "/recordings/{recording_id}/stream", tag = "recordings", security(("bearer" = [])),
    params(
        ("recording_id" = String, Path, format = Uuid),
        ("Range" = Option<String>, Header, description = "One byte range: `bytes=a-b`, `bytes=a-` or `bytes=-n`")),
    description = "Streams a completed recording (`audio/wav`). Supports one HTTP byte range.",
    responses(
        (status = 200, description = "The whole recording", content_type = "audio/wav", body = WavBody,
            headers(("Content-Length" = u64), ("Accept-Ranges" = String), ("Content-Disposition" = String))),
        (status = 206, description = "The requested byte range", content_type = "audio/wav", body = WavBody,
            headers(("Content-Range" = String), ("Content-Length" = u64))),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, description = "Recording not found / Recording file not accessible", body = ErrorBody),
        (status = 416, description = "Range not satisfiable; `Content-Range: bytes */<size>`", body = ErrorBody),
        (status = 503, description = "Storage unavailable", body = ErrorBody)))]
async fn stream(
    State(state): State<SharedState>,
    t: TenantCtx,
    ApiPath(id): ApiPath<RecordingId>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let rec = state
        .store
        .get_recording(t.tenant_id, id)
        .await
        .or_not_found("Recording not found")?;
    if rec.status != RecordingStatus::Completed {
        return Err(ApiError::not_found("Recording not found"));
    }
    let size = state
        .recordings
        .size(&rec.storage_path)
        .await
        .map_err(storage_error)?;
    let content_type = HeaderValue::from_str(&rec.mime_type)
        .ok()
        .filter(|_| !rec.mime_type.is_empty())
        .unwrap_or_else(|| HeaderValue::from_static("audio/wav"));
    let disposition = HeaderValue::from_str(&format!("inline; filename=recording_{}.wav", rec.id))
        .map_err(ApiError::internal)?;

    let (status, start, end) = match parse_range(headers.get(header::RANGE), size) {
        RangeRequest::Unsatisfiable => {
            let mut resp = ApiError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "range_not_satisfiable",
                "Requested range not satisfiable",
            )
            .into_response();
            let h = resp.headers_mut();
            h.insert(
                header::CONTENT_RANGE,
                HeaderValue::from_str(&format!("bytes */{size}")).map_err(ApiError::internal)?,
            );
            h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
            return Ok(resp);
        }
        RangeRequest::Full => (StatusCode::OK, 0, size.saturating_sub(1)),
        RangeRequest::Partial { start, end } => (StatusCode::PARTIAL_CONTENT, start, end),
    };
    let length = if size == 0 { 0 } else { end - start + 1 };
    let body = if length == 0 {
        Body::empty()
    } else {
        let bytes = state
            .recordings
            .read_range(&rec.storage_path, start, end)
            .await
            .map_err(storage_error)?;
        Body::from_stream(bytes)
    };
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, content_type);
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::CONTENT_DISPOSITION, disposition);
    if status == StatusCode::PARTIAL_CONTENT {
        h.insert(
            header::CONTENT_RANGE,
            HeaderValue::from_str(&format!("bytes {start}-{end}/{size}"))
                .map_err(ApiError::internal)?,
        );
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(v: &str, size: u64) -> RangeRequest {
        parse_range(Some(&HeaderValue::from_str(v).unwrap()), size)
    }

    #[test]
    fn ranges() {
        use RangeRequest::*;
        assert_eq!(parse_range(None, 10), Full);
        assert_eq!(p("bytes=0-99", 1000), Partial { start: 0, end: 99 });
        assert_eq!(p("bytes=0-5000", 1000), Partial { start: 0, end: 999 });
        assert_eq!(
            p("bytes=100-", 1000),
            Partial {
                start: 100,
                end: 999
            }
        );
        assert_eq!(
            p("bytes=-10", 1000),
            Partial {
                start: 990,
                end: 999
            }
        );
        assert_eq!(p("bytes=-5000", 1000), Partial { start: 0, end: 999 });
        assert_eq!(
            p("bytes=999-999", 1000),
            Partial {
                start: 999,
                end: 999
            }
        );
        for bad in [
            "bytes=1000-",
            "bytes=1000-1001",
            "bytes=5-4",
            "bytes=-0",
            "bytes=-",
            "bytes=a-b",
            "bytes=0-1,4-5",
            "items=0-1",
            "bytes=+1-2",
            "bytes 0-1",
            "bytes=0",
        ] {
            assert_eq!(p(bad, 1000), Unsatisfiable, "{bad}");
        }
        assert_eq!(p("bytes=0-", 0), Unsatisfiable);
    }
}
