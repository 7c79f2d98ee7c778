//! Placeholder: filled in by the issue-3 work.

use crate::state::SharedState;
use utoipa_axum::router::OpenApiRouter;

pub fn router() -> OpenApiRouter<SharedState> {
    OpenApiRouter::new()
}
