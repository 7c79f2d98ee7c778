//! Platform-wide operations (behaviour.md A13, B6). Kept apart from the tenant-scoped traits
//! so every cross-tenant query is easy to find and review.

use crate::ids::{TenantId, UserId};
use crate::model::Role;
use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{StoreResult, Tenant, User};

/// A user as the admin listing shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct AdminUserRow {
    pub id: UserId,
    pub email: String,
    pub role: Option<Role>,
    pub tenant_id: Option<TenantId>,
    pub is_platform_admin: bool,
}

#[async_trait]
pub trait PlatformAdminStore: Send + Sync {
    /// Creates the user if needed and flags them platform admin; `true` if newly created.
    async fn create_platform_admin(
        &self,
        email: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<(User, bool)>;
    async fn admin_list_tenants(&self) -> StoreResult<Vec<Tenant>>;
    async fn admin_get_tenant(&self, tenant: TenantId) -> StoreResult<Tenant>;
    async fn admin_set_minutes(
        &self,
        tenant: TenantId,
        minutes_allocated: i64,
    ) -> StoreResult<Tenant>;
    async fn admin_list_users(&self) -> StoreResult<Vec<AdminUserRow>>;
}
