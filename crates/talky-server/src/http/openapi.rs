//! The OpenAPI 3.1 document, generated from the handlers' `#[utoipa::path]` annotations and
//! the wire types' `ToSchema` derives, served at `/api/v1/openapi.json`; and `/docs`, a page
//! that renders it with no external assets (works offline and on air-gapped hosts).

use crate::state::SharedState;
use axum::response::Html;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use std::sync::Arc;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

/// The K1 error body.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    /// Human-readable message.
    pub detail: String,
    /// Stable snake_case code.
    pub code: String,
    /// Per-field messages (validation errors only).
    #[schema(nullable = false)]
    pub fields: Option<std::collections::BTreeMap<String, String>>,
    /// Present on 5xx responses.
    #[schema(nullable = false)]
    pub request_id: Option<String>,
}

/// `{"detail": "..."}` success messages.
#[derive(Serialize, ToSchema)]
pub struct DetailResponse {
    pub detail: String,
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Talky API", description = "AI outbound voice-calling campaigns. Every error is `{\"detail\", \"code\"}` (plus `fields` for 422, `request_id` for 5xx)."),
    modifiers(&BearerAuth),
    components(schemas(ErrorBody, DetailResponse))
)]
pub struct ApiDoc;

/// Routes serving the document and the docs page.
pub fn router(doc: utoipa::openapi::OpenApi) -> Router<SharedState> {
    let doc = Arc::new(doc);
    Router::new()
        .route(
            "/api/v1/openapi.json",
            get(move || {
                let doc = doc.clone();
                async move { Json(doc.as_ref().clone()) }
            }),
        )
        .route("/docs", get(|| async { Html(DOCS_PAGE) }))
}

const DOCS_PAGE: &str = include_str!("docs.html");
