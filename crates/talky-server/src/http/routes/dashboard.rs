//! `/dashboard/summary` (behaviour.md C5): call counts of the current billing period, the
//! minutes position from the one C1 function, and the number of running campaigns.

use crate::auth::TenantCtx;
use crate::error::ApiResult;
use crate::extract::ApiJson;
use crate::http::openapi::ErrorBody;
use crate::state::SharedState;
use crate::usage::tenant_minutes;
use axum::extract::State;
use serde::Serialize;
use talky_core::minutes::billing_period;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<SharedState> {
    OpenApiRouter::new().routes(routes!(summary))
}

/// C5 dashboard numbers for the current billing period (the calendar month, UTC).
#[derive(Serialize, ToSchema)]
pub struct DashboardSummaryResponse {
    /// Calls created this period.
    total_calls: i64,
    /// Calls with a connected outcome (E16).
    answered_calls: i64,
    /// Finished calls with an unconnected outcome.
    failed_calls: i64,
    /// `ceil(Σ duration_seconds / 60)` over this period's calls (C1).
    minutes_used: i64,
    /// `null` when the allocation is unlimited.
    minutes_remaining: Option<i64>,
    /// Campaigns with status `running`.
    active_campaigns: i64,
}

#[utoipa::path(operation_id = "dashboard_summary", get, path = "/dashboard/summary", tag = "reporting", security(("bearer" = [])),
    responses(
        (status = 200, body = DashboardSummaryResponse),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
async fn summary(
    State(state): State<SharedState>,
    t: TenantCtx,
) -> ApiResult<ApiJson<DashboardSummaryResponse>> {
    let now = state.clock.now();
    let (from, to) = billing_period(now);
    let counts = state.store.dashboard_counts(t.tenant_id, from, to).await?;
    let minutes = tenant_minutes(state.store.as_ref(), &t.tenant, now).await?;
    Ok(ApiJson(DashboardSummaryResponse {
        total_calls: counts.total_calls,
        answered_calls: counts.answered_calls,
        failed_calls: counts.failed_calls,
        minutes_used: minutes.minutes_used,
        minutes_remaining: minutes.minutes_remaining,
        active_campaigns: counts.active_campaigns,
    }))
}
