//! Accounts: plans, users, tenants, memberships, sessions and magic links (behaviour.md A).

use crate::ids::{SessionId, TenantId, UserId};
use crate::model::{LinkPurpose, Role};
use crate::plans::Plan;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::StoreResult;

/// A person who can sign in.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct User {
    pub id: UserId,
    pub email: String,
    pub name: Option<String>,
    pub is_platform_admin: bool,
    pub is_active: bool,
    pub created_at: DateTime<Utc>,
}

/// A business using Talky.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Tenant {
    pub id: TenantId,
    pub business_name: String,
    pub plan_id: String,
    pub minutes_allocated: i64,
    /// Calling rules (E11) as stored; `{}` means all defaults.
    pub calling_rules: serde_json::Value,
    /// Recording policy (H1–H5) as stored; `{}` means all defaults.
    pub recording: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

/// A user's place in a tenant.
#[derive(Debug, Clone, PartialEq)]
pub struct Membership {
    pub tenant: Tenant,
    pub role: Role,
}

/// The authenticated principal behind a live session.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionContext {
    pub session_id: SessionId,
    pub user: User,
    pub membership: Option<Membership>,
}

/// A server-side session row.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    pub id: SessionId,
    pub user_id: UserId,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// What a magic link carries besides its e-mail address.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LinkPayload {
    Login,
    /// The tenant id is allocated when the link is issued; the rows are created at verify.
    Register {
        tenant_id: TenantId,
        business_name: String,
        plan_id: String,
        name: Option<String>,
    },
    Invite {
        tenant_id: TenantId,
        role: Role,
    },
}

impl LinkPayload {
    pub fn purpose(&self) -> LinkPurpose {
        match self {
            LinkPayload::Login => LinkPurpose::Login,
            LinkPayload::Register { .. } => LinkPurpose::Register,
            LinkPayload::Invite { .. } => LinkPurpose::Invite,
        }
    }
}

/// A magic link to store. Only the SHA-256 of the token is kept.
#[derive(Debug, Clone)]
pub struct NewAuthLink {
    pub token_hash: String,
    pub email: String,
    pub payload: LinkPayload,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// The result of redeeming a magic link: the user it signed in and the new session.
#[derive(Debug, Clone)]
pub struct Redeemed {
    pub session: Session,
    pub context: SessionContext,
}

/// A member as listed by `/tenant/members`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Member {
    pub user_id: UserId,
    pub email: String,
    pub name: Option<String>,
    pub role: Role,
    pub joined_at: DateTime<Utc>,
}

/// Owner-editable tenant settings (A11). `None` leaves a field unchanged.
#[derive(Debug, Clone, Default)]
pub struct TenantPatch {
    pub business_name: Option<String>,
    pub calling_rules: Option<serde_json::Value>,
    pub recording: Option<serde_json::Value>,
}

#[async_trait]
pub trait AccountStore: Send + Sync {
    /// Cheap round trip used by `/health`.
    async fn ping(&self) -> StoreResult<()>;

    /// All plans, cheapest first.
    async fn list_plans(&self) -> StoreResult<Vec<Plan>>;
    async fn get_plan(&self, plan_id: &str) -> StoreResult<Option<Plan>>;

    async fn find_user_by_email(&self, email: &str) -> StoreResult<Option<User>>;
    /// True when the user is a member of some tenant (A12).
    async fn user_has_tenant(&self, email: &str) -> StoreResult<bool>;

    /// Number of links issued for `email` since `since` (A3 mail rate limit).
    async fn count_links_since(&self, email: &str, since: DateTime<Utc>) -> StoreResult<i64>;
    /// Stores a link and, in the same transaction, invalidates older unused links for the
    /// same e-mail and purpose.
    async fn create_auth_link(&self, link: NewAuthLink) -> StoreResult<()>;
    /// Consumes the link atomically (`used_at IS NULL AND expires_at > now`) and, in the
    /// same transaction, applies its purpose (register → tenant + user + owner membership;
    /// invite → user + membership) and opens a session ending at `session_expires_at`.
    /// Unknown/used/expired → `InvalidLink`; a register/invite whose address meanwhile got
    /// an account or tenant → `Conflict`, and the link stays unused.
    async fn redeem_auth_link(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
        session_expires_at: DateTime<Utc>,
    ) -> StoreResult<Redeemed>;

    /// The live session `id` with its user and membership, if the session exists, is not
    /// revoked or expired at `now`, and its user is active.
    async fn session_context(
        &self,
        id: SessionId,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<SessionContext>>;
    async fn revoke_session(&self, id: SessionId, now: DateTime<Utc>) -> StoreResult<()>;
    async fn revoke_user_sessions(&self, user: UserId, now: DateTime<Utc>) -> StoreResult<u64>;

    async fn update_user_name(&self, user: UserId, name: &str) -> StoreResult<User>;
    /// Records that the user's profile was confirmed; `true` the first time only.
    async fn mark_profile_created(&self, user: UserId, now: DateTime<Utc>) -> StoreResult<bool>;

    async fn get_tenant(&self, tenant: TenantId) -> StoreResult<Tenant>;
    async fn update_tenant(&self, tenant: TenantId, patch: TenantPatch) -> StoreResult<Tenant>;
    async fn list_members(&self, tenant: TenantId) -> StoreResult<Vec<Member>>;
    /// Removes a membership and revokes the user's sessions; the last owner → `Conflict`.
    async fn remove_member(
        &self,
        tenant: TenantId,
        user: UserId,
        now: DateTime<Utc>,
    ) -> StoreResult<()>;

    /// Σ `calls.duration_seconds` of the tenant's calls created in `[from, to)` (C1).
    async fn used_seconds(
        &self,
        tenant: TenantId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> StoreResult<i64>;
}
