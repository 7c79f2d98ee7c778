//! The HTTP edge: the router (`/`, `/health`, the verify page, and every API route under
//! `/api/v1`) and the layers every request passes through — request id (K6), K1-shaped
//! errors for responses axum produces itself (unknown route, wrong method), CORS, tracing,
//! body limit. Trailing slashes are trimmed before routing, so `/plans/` is `/plans`.

pub mod openapi;
pub mod pages;
pub mod routes;

use crate::error::ApiError;
use crate::state::SharedState;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use tower_http::cors::{AllowOrigin, Any, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

/// JSON bodies above this are refused with 413 (K2).
pub const JSON_BODY_LIMIT: usize = 1024 * 1024;

/// Builds the application router (without trailing-slash normalisation; see [`crate::app`]).
pub fn router(state: SharedState) -> Router {
    let (api, doc) = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .nest("/api/v1", routes::api_router())
        .split_for_parts();
    let cors = cors_layer(&state.config.cors_origins);
    let mut app = Router::new()
        .merge(routes::root::router())
        .merge(pages::router())
        .merge(openapi::router(doc))
        .merge(api)
        .fallback(|| async { ApiError::not_found("Not Found") })
        .layer(DefaultBodyLimit::max(JSON_BODY_LIMIT))
        .layer(middleware::from_fn(json_errors))
        .layer(TraceLayer::new_for_http());
    if let Some(cors) = cors {
        app = app.layer(cors);
    }
    app.layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(state)
}

fn cors_layer(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let base = CorsLayer::new()
        .allow_methods([Method::GET, Method::POST, Method::PATCH, Method::DELETE])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE, header::RANGE]);
    Some(if origins.iter().any(|o| o == "*") {
        base.allow_origin(Any)
    } else {
        let list: Vec<HeaderValue> = origins.iter().filter_map(|o| o.parse().ok()).collect();
        base.allow_origin(AllowOrigin::list(list))
    })
}

/// Gives responses that axum builds itself (405, 404 without a handler, 413 from a body
/// limit) the K1 shape, and adds `request_id` to every 5xx body.
async fn json_errors(req: Request, next: Next) -> Response {
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let resp = next.run(req).await;
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    let (mut parts, body) = resp.into_parts();
    let mut value = if is_json {
        match axum::body::to_bytes(body, 64 * 1024).await {
            Ok(b) => serde_json::from_slice::<serde_json::Value>(&b).unwrap_or_default(),
            Err(_) => serde_json::Value::Null,
        }
    } else {
        serde_json::Value::Null
    };
    if !value.is_object() {
        let (code, detail) = match status {
            StatusCode::METHOD_NOT_ALLOWED => ("method_not_allowed", "Method Not Allowed"),
            StatusCode::NOT_FOUND => ("not_found", "Not Found"),
            StatusCode::PAYLOAD_TOO_LARGE => ("payload_too_large", "Request body too large"),
            s if s.is_server_error() => ("internal", "Internal server error"),
            _ => ("error", status.canonical_reason().unwrap_or("Error")),
        };
        value = serde_json::json!({"detail": detail, "code": code});
    }
    if status.is_server_error() {
        if let (Some(obj), Some(id)) = (value.as_object_mut(), &request_id) {
            obj.insert("request_id".into(), serde_json::Value::String(id.clone()));
        }
    }
    let bytes = serde_json::to_vec(&value).unwrap_or_default();
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(bytes)).into_response()
}
