//! `GET /` and `GET /health` (behaviour.md §0).

use crate::state::SharedState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use std::sync::atomic::Ordering;

pub fn router() -> Router<SharedState> {
    Router::new()
        .route("/", get(index))
        .route("/health", get(health))
}

async fn index() -> impl IntoResponse {
    Json(json!({"message": "Talky API", "status": "running"}))
}

async fn health(State(state): State<SharedState>) -> impl IntoResponse {
    let active = state.active_sessions.load(Ordering::Relaxed);
    match state.store.ping().await {
        Ok(()) => (
            StatusCode::OK,
            Json(json!({"status": "healthy", "db": "ok", "active_sessions": active})),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "health check: database unreachable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"status": "degraded", "db": "unreachable", "active_sessions": active})),
            )
        }
    }
}
