//! `GET /plans` (A1): public.

use crate::error::ApiResult;
use crate::extract::ApiJson;
use crate::state::SharedState;
use axum::extract::State;
use serde::Serialize;
use talky_core::plans::Plan;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<SharedState> {
    OpenApiRouter::new().routes(routes!(list))
}

/// A pricing plan.
#[derive(Serialize, ToSchema)]
pub struct PlanResponse {
    id: String,
    name: String,
    price: f64,
    description: String,
    minutes: i64,
    agents: i64,
    concurrent_calls: i64,
    features: Vec<String>,
    not_included: Vec<String>,
    popular: bool,
}

impl From<Plan> for PlanResponse {
    fn from(p: Plan) -> Self {
        Self {
            id: p.id,
            name: p.name,
            price: p.price,
            description: p.description,
            minutes: p.minutes,
            agents: p.agents,
            concurrent_calls: p.concurrent_calls,
            features: p.features,
            not_included: p.not_included,
            popular: p.popular,
        }
    }
}

/// All plans, cheapest first.
#[utoipa::path(operation_id = "plans_list", get, path = "/plans", tag = "plans", responses((status = 200, body = [PlanResponse])))]
async fn list(State(state): State<SharedState>) -> ApiResult<ApiJson<Vec<PlanResponse>>> {
    let plans = state.store.list_plans().await?;
    Ok(ApiJson(plans.into_iter().map(PlanResponse::from).collect()))
}
