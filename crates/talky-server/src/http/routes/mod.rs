//! API routes, one module per URL segment under `/api/v1`. Each module returns an
//! `OpenApiRouter` so its handlers' `#[utoipa::path]` annotations feed the OpenAPI document.

pub mod admin;
pub mod analytics;
pub mod auth;
pub mod calls;
pub mod campaigns;
pub mod clients;
pub mod contacts;
pub mod dashboard;
pub mod dnc;
pub mod plans;
pub mod recordings;
pub mod root;
pub mod tenant;

use crate::state::SharedState;
use utoipa_axum::router::OpenApiRouter;

/// Every route under `/api/v1`.
pub fn api_router() -> OpenApiRouter<SharedState> {
    OpenApiRouter::new()
        .merge(plans::router())
        .merge(auth::router())
        .merge(tenant::router())
        .merge(admin::router())
        .merge(campaigns::router())
        .merge(contacts::router())
        .merge(dnc::router())
        .merge(calls::router())
        .merge(recordings::router())
        .merge(dashboard::router())
        .merge(analytics::router())
        .merge(clients::router())
        .merge(crate::voice::socket::router())
}
