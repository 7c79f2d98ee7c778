//! The tenant's do-not-call list (behaviour.md E19), consulted at import, start and dial.

use crate::ids::TenantId;
use crate::model::DncSource;
use crate::phone::E164;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{Page, Paged, StoreResult};

/// One DNC entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DncEntry {
    pub phone_number: String,
    pub source: DncSource,
    pub reason: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// The result of [`DncStore::add_dnc`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DncAdded {
    pub entry: DncEntry,
    /// False when the number was already listed (the stored entry is returned unchanged).
    pub created: bool,
}

#[async_trait]
pub trait DncStore: Send + Sync {
    /// Entries newest first.
    async fn list_dnc(&self, tenant: TenantId, page: Page) -> StoreResult<Paged<DncEntry>>;
    /// Adds a number (`source` defaults to `manual`). Idempotent: a number already on the
    /// list keeps its original entry and `created = false` is returned, never an error.
    /// Queued jobs are not touched here; the dialer checks the list before every dial (E7).
    async fn add_dnc(
        &self,
        tenant: TenantId,
        phone: &E164,
        source: Option<DncSource>,
        reason: Option<String>,
        now: DateTime<Utc>,
    ) -> StoreResult<DncAdded>;
    /// Removes a number; absent → `NotFound`.
    async fn delete_dnc(&self, tenant: TenantId, phone: &E164) -> StoreResult<()>;
    async fn is_dnc(&self, tenant: TenantId, phone: &E164) -> StoreResult<bool>;
}
