//! API routes, one module per URL segment under `/api/v1`.

pub mod admin;
pub mod auth;
pub mod plans;
pub mod root;
pub mod tenant;

use crate::state::SharedState;
use axum::Router;

/// Every route under `/api/v1`.
pub fn api_router() -> Router<SharedState> {
    Router::new()
        .merge(plans::router())
        .merge(auth::router())
        .merge(tenant::router())
        .merge(admin::router())
}
