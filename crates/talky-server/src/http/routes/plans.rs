//! `GET /plans` (A1): public.

use crate::error::ApiResult;
use crate::extract::ApiJson;
use crate::state::SharedState;
use axum::extract::State;
use axum::routing::get;
use axum::Router;
use talky_core::plans::Plan;

pub fn router() -> Router<SharedState> {
    Router::new().route("/plans", get(list))
}

async fn list(State(state): State<SharedState>) -> ApiResult<ApiJson<Vec<Plan>>> {
    Ok(ApiJson(state.store.list_plans().await?))
}
