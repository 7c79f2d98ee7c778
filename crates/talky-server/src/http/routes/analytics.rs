//! `/analytics/calls` (behaviour.md C6): the tenant's calls per day, week (Monday) or month
//! over an inclusive UTC date range, with C5's answered/failed classes.

use crate::auth::TenantCtx;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiQuery};
use crate::http::openapi::ErrorBody;
use crate::http::routes::calls::{inclusive_range, parse_date};
use crate::state::SharedState;
use axum::extract::State;
use chrono::Days;
use serde::{Deserialize, Serialize};
use talky_core::ports::store::{AnalyticsBucket, GroupBy};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<SharedState> {
    OpenApiRouter::new().routes(routes!(calls))
}

/// Bucket size.
#[derive(Debug, Clone, Copy, Default, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
enum GroupByParam {
    #[default]
    Day,
    Week,
    Month,
}

impl From<GroupByParam> for GroupBy {
    fn from(g: GroupByParam) -> Self {
        match g {
            GroupByParam::Day => GroupBy::Day,
            GroupByParam::Week => GroupBy::Week,
            GroupByParam::Month => GroupBy::Month,
        }
    }
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct AnalyticsQuery {
    /// First day (inclusive, UTC), `YYYY-MM-DD`; default `to` − 30 days.
    #[param(format = Date)]
    from: Option<String>,
    /// Last day (inclusive, UTC), `YYYY-MM-DD`; default today.
    #[param(format = Date)]
    to: Option<String>,
    /// `day` (default), `week` (buckets start on Monday) or `month`.
    #[param(inline)]
    group_by: Option<GroupByParam>,
    #[param(ignore)]
    #[allow(dead_code)]
    tenant_id: Option<String>,
}

/// One bucket: `date` is its first day.
#[derive(Serialize, ToSchema)]
pub struct AnalyticsBucketResponse {
    /// `YYYY-MM-DD`: the day, the week's Monday or the month's first day.
    #[schema(format = Date)]
    date: String,
    total_calls: i64,
    answered: i64,
    failed: i64,
}

impl From<AnalyticsBucket> for AnalyticsBucketResponse {
    fn from(b: AnalyticsBucket) -> Self {
        Self {
            date: b.date.format("%Y-%m-%d").to_string(),
            total_calls: b.total_calls,
            answered: b.answered,
            failed: b.failed,
        }
    }
}

/// Buckets sorted by date; buckets without calls are omitted.
#[derive(Serialize, ToSchema)]
pub struct AnalyticsResponse {
    series: Vec<AnalyticsBucketResponse>,
}

fn non_empty(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

#[utoipa::path(operation_id = "analytics_calls", get, path = "/analytics/calls", tag = "reporting", security(("bearer" = [])),
    params(AnalyticsQuery),
    responses(
        (status = 200, body = AnalyticsResponse),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 422, description = "Bad date, `from` after `to`, unknown `group_by`", body = ErrorBody)))]
async fn calls(
    State(state): State<SharedState>,
    t: TenantCtx,
    ApiQuery(q): ApiQuery<AnalyticsQuery>,
) -> ApiResult<ApiJson<AnalyticsResponse>> {
    let to = match non_empty(q.to) {
        Some(s) => parse_date("to", &s)?,
        None => state.clock.now().date_naive(),
    };
    let from = match non_empty(q.from) {
        Some(s) => parse_date("from", &s)?,
        None => to.checked_sub_days(Days::new(30)).unwrap_or(to),
    };
    let (start, end) = inclusive_range(Some(from), Some(to))?;
    let (start, end) = start
        .zip(end)
        .ok_or_else(|| ApiError::internal("inclusive_range dropped a given bound"))?;
    let group_by = q.group_by.unwrap_or_default().into();
    let buckets = state
        .store
        .call_analytics(t.tenant_id, start, end, group_by)
        .await?;
    Ok(ApiJson(AnalyticsResponse {
        series: buckets
            .into_iter()
            .map(AnalyticsBucketResponse::from)
            .collect(),
    }))
}
