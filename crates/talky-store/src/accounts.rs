//! Accounts: plans, users, tenants, memberships, sessions, magic links (behaviour.md A).

use crate::db::{micros, DbId, DbTime, SqlStore};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::types::Json;
use talky_core::ids::{SessionId, TenantId, UserId};
use talky_core::model::Role;
use talky_core::plans::Plan;
use talky_core::ports::store::*;

#[derive(sqlx::FromRow)]
struct PlanRow {
    id: String,
    name: String,
    price: f64,
    description: String,
    minutes: i64,
    agents: i64,
    concurrent_calls: i64,
    features: Json<Vec<String>>,
    not_included: Json<Vec<String>>,
    popular: bool,
}

impl From<PlanRow> for Plan {
    fn from(r: PlanRow) -> Self {
        Plan {
            id: r.id,
            name: r.name,
            price: r.price,
            description: r.description,
            minutes: r.minutes,
            agents: r.agents,
            concurrent_calls: r.concurrent_calls,
            features: r.features.0,
            not_included: r.not_included.0,
            popular: r.popular,
        }
    }
}

const PLAN_COLS: &str = "id, name, price, description, minutes, agents, concurrent_calls, features, not_included, popular";

#[derive(sqlx::FromRow)]
pub(crate) struct UserRow {
    id: DbId,
    email: String,
    name: Option<String>,
    is_platform_admin: bool,
    is_active: bool,
    created_at: DbTime,
}

impl From<UserRow> for User {
    fn from(r: UserRow) -> Self {
        User {
            id: UserId(r.id.0),
            email: r.email,
            name: r.name,
            is_platform_admin: r.is_platform_admin,
            is_active: r.is_active,
            created_at: r.created_at.0,
        }
    }
}

pub(crate) const USER_COLS: &str = "id, email, name, is_platform_admin, is_active, created_at";

#[derive(sqlx::FromRow)]
pub(crate) struct TenantRow {
    id: DbId,
    business_name: String,
    plan_id: String,
    minutes_allocated: i64,
    calling_rules: Json<serde_json::Value>,
    recording: Json<serde_json::Value>,
    created_at: DbTime,
}

impl From<TenantRow> for Tenant {
    fn from(r: TenantRow) -> Self {
        Tenant {
            id: TenantId(r.id.0),
            business_name: r.business_name,
            plan_id: r.plan_id,
            minutes_allocated: r.minutes_allocated,
            calling_rules: r.calling_rules.0,
            recording: r.recording.0,
            created_at: r.created_at.0,
        }
    }
}

pub(crate) const TENANT_COLS: &str =
    "id, business_name, plan_id, minutes_allocated, calling_rules, recording, created_at";

/// One row of the session join: the session, its user and (if any) membership + tenant.
#[derive(sqlx::FromRow)]
struct ContextRow {
    session_id: DbId,
    user_id: DbId,
    email: String,
    name: Option<String>,
    is_platform_admin: bool,
    is_active: bool,
    user_created_at: DbTime,
    role: Option<String>,
    tenant_id: Option<DbId>,
    business_name: Option<String>,
    plan_id: Option<String>,
    minutes_allocated: Option<i64>,
    calling_rules: Option<Json<serde_json::Value>>,
    recording: Option<Json<serde_json::Value>>,
    tenant_created_at: Option<DbTime>,
}

const CONTEXT_SQL: &str = "SELECT s.id AS session_id, u.id AS user_id, u.email, u.name, \
    u.is_platform_admin, u.is_active, u.created_at AS user_created_at, m.role, \
    t.id AS tenant_id, t.business_name, t.plan_id, t.minutes_allocated, t.calling_rules, \
    t.recording, t.created_at AS tenant_created_at \
    FROM sessions s JOIN users u ON u.id = s.user_id \
    LEFT JOIN memberships m ON m.user_id = u.id LEFT JOIN tenants t ON t.id = m.tenant_id \
    WHERE s.id = $1 AND s.revoked_at IS NULL AND s.expires_at > $2 AND u.is_active";

impl ContextRow {
    fn into_context(self) -> StoreResult<SessionContext> {
        let membership = match (self.role, self.tenant_id) {
            (Some(role), Some(tid)) => {
                let role: Role = role.parse().map_err(|e: talky_core::model::UnknownValue| {
                    StoreError::Internal(e.to_string())
                })?;
                let missing = || StoreError::Internal("membership without tenant row".into());
                Some(Membership {
                    role,
                    tenant: Tenant {
                        id: TenantId(tid.0),
                        business_name: self.business_name.ok_or_else(missing)?,
                        plan_id: self.plan_id.ok_or_else(missing)?,
                        minutes_allocated: self.minutes_allocated.ok_or_else(missing)?,
                        calling_rules: self.calling_rules.map(|j| j.0).unwrap_or_default(),
                        recording: self.recording.map(|j| j.0).unwrap_or_default(),
                        created_at: self.tenant_created_at.ok_or_else(missing)?.0,
                    },
                })
            }
            _ => None,
        };
        Ok(SessionContext {
            session_id: SessionId(self.session_id.0),
            user: User {
                id: UserId(self.user_id.0),
                email: self.email,
                name: self.name,
                is_platform_admin: self.is_platform_admin,
                is_active: self.is_active,
                created_at: self.user_created_at.0,
            },
            membership,
        })
    }
}

#[derive(sqlx::FromRow)]
struct RedeemRow {
    email: String,
    payload: Json<LinkPayload>,
}

#[derive(sqlx::FromRow)]
struct MemberRow {
    user_id: DbId,
    email: String,
    name: Option<String>,
    role: String,
    created_at: DbTime,
}

fn parse_role(s: &str) -> StoreResult<Role> {
    s.parse()
        .map_err(|e: talky_core::model::UnknownValue| StoreError::Internal(e.to_string()))
}

#[async_trait]
impl AccountStore for SqlStore {
    async fn ping(&self) -> StoreResult<()> {
        let mut h = self.read().await?;
        fetch_one!(h, (i64,), "SELECT CAST(1 AS BIGINT)")?;
        Ok(())
    }

    async fn list_plans(&self) -> StoreResult<Vec<Plan>> {
        let mut h = self.read().await?;
        let sql = format!("SELECT {PLAN_COLS} FROM plans ORDER BY price, id");
        let rows = fetch_all!(h, PlanRow, &sql)?;
        Ok(rows.into_iter().map(Plan::from).collect())
    }

    async fn get_plan(&self, plan_id: &str) -> StoreResult<Option<Plan>> {
        let mut h = self.read().await?;
        let sql = format!("SELECT {PLAN_COLS} FROM plans WHERE id = $1");
        Ok(fetch_optional!(h, PlanRow, &sql, plan_id)?.map(Plan::from))
    }

    async fn find_user_by_email(&self, email: &str) -> StoreResult<Option<User>> {
        let mut h = self.read().await?;
        let sql = format!("SELECT {USER_COLS} FROM users WHERE email = $1");
        Ok(fetch_optional!(h, UserRow, &sql, email)?.map(User::from))
    }

    async fn user_has_tenant(&self, email: &str) -> StoreResult<bool> {
        let mut h = self.read().await?;
        let n = fetch_one!(
            h,
            (i64,),
            "SELECT COUNT(*) FROM memberships m JOIN users u ON u.id = m.user_id WHERE u.email = $1",
            email
        )?;
        Ok(n.0 > 0)
    }

    async fn count_links_since(&self, email: &str, since: DateTime<Utc>) -> StoreResult<i64> {
        let mut h = self.read().await?;
        let n = fetch_one!(
            h,
            (i64,),
            "SELECT COUNT(*) FROM auth_links WHERE email = $1 AND created_at >= $2",
            email,
            DbTime(since)
        )?;
        Ok(n.0)
    }

    async fn create_auth_link(&self, link: NewAuthLink) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        let purpose = link.payload.purpose().as_str();
        let now = micros(link.created_at);
        execute!(
            tx,
            "UPDATE auth_links SET expires_at = $3 WHERE email = $1 AND purpose = $2 \
             AND used_at IS NULL AND expires_at > $3",
            link.email.as_str(),
            purpose,
            now
        )?;
        execute!(
            tx,
            "INSERT INTO auth_links (id, token_hash, purpose, email, payload, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            DbId(uuid::Uuid::new_v4()),
            link.token_hash.as_str(),
            purpose,
            link.email.as_str(),
            Json(&link.payload),
            now,
            micros(link.expires_at)
        )?;
        tx.commit().await
    }

    async fn redeem_auth_link(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
        session_expires_at: DateTime<Utc>,
    ) -> StoreResult<Redeemed> {
        let now = micros(now);
        let mut tx = self.begin().await?;
        let link = fetch_optional!(
            tx,
            RedeemRow,
            "UPDATE auth_links SET used_at = $2 WHERE token_hash = $1 AND used_at IS NULL \
             AND expires_at > $2 RETURNING email, payload",
            token_hash,
            now
        )?
        .ok_or(StoreError::InvalidLink)?;
        let sql = format!("SELECT {USER_COLS} FROM users WHERE email = $1");
        let existing = fetch_optional!(tx, UserRow, &sql, link.email.as_str())?;
        let user_id = match link.payload.0 {
            LinkPayload::Login => match existing {
                Some(u) if u.is_active => u.id,
                _ => return Err(StoreError::InvalidLink),
            },
            LinkPayload::Register {
                tenant_id,
                business_name,
                plan_id,
                name,
            } => {
                if existing.is_some() {
                    return Err(StoreError::Conflict("Email already registered".into()));
                }
                let minutes = fetch_optional!(
                    tx,
                    (i64,),
                    "SELECT minutes FROM plans WHERE id = $1",
                    plan_id.as_str()
                )?
                .ok_or_else(|| StoreError::Conflict("Invalid plan_id".into()))?
                .0;
                execute!(
                    tx,
                    "INSERT INTO tenants (id, business_name, plan_id, minutes_allocated, calling_rules, recording, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, '{}', '{}', $5, $5)",
                    DbId(tenant_id.0),
                    business_name.as_str(),
                    plan_id.as_str(),
                    minutes,
                    now
                )
                .map_err(|e| conflict_as(e, "Email already registered"))?;
                let uid = insert_user(&mut tx, &link.email, name.as_deref(), now).await?;
                insert_membership(&mut tx, uid, DbId(tenant_id.0), Role::Owner, now).await?;
                uid
            }
            LinkPayload::Invite { tenant_id, role } => {
                let uid = match existing {
                    Some(u) => {
                        let n = fetch_one!(
                            tx,
                            (i64,),
                            "SELECT COUNT(*) FROM memberships WHERE user_id = $1",
                            u.id
                        )?;
                        if n.0 > 0 {
                            return Err(StoreError::Conflict(
                                "User already belongs to a tenant".into(),
                            ));
                        }
                        u.id
                    }
                    None => insert_user(&mut tx, &link.email, None, now).await?,
                };
                let exists = fetch_optional!(
                    tx,
                    (DbId,),
                    "SELECT id FROM tenants WHERE id = $1",
                    DbId(tenant_id.0)
                )?;
                if exists.is_none() {
                    return Err(StoreError::InvalidLink);
                }
                insert_membership(&mut tx, uid, DbId(tenant_id.0), role, now).await?;
                uid
            }
        };
        let sid = DbId(uuid::Uuid::new_v4());
        let expires = micros(session_expires_at);
        execute!(
            tx,
            "INSERT INTO sessions (id, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
            sid,
            user_id,
            now,
            expires
        )?;
        let ctx = fetch_optional!(tx, ContextRow, CONTEXT_SQL, sid, now)?
            .ok_or_else(|| StoreError::Internal("new session not readable".into()))?
            .into_context()?;
        tx.commit().await?;
        Ok(Redeemed {
            session: Session {
                id: SessionId(sid.0),
                user_id: UserId(user_id.0),
                created_at: now.0,
                expires_at: expires.0,
            },
            context: ctx,
        })
    }

    async fn session_context(
        &self,
        id: SessionId,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<SessionContext>> {
        let mut h = self.read().await?;
        fetch_optional!(h, ContextRow, CONTEXT_SQL, DbId(id.0), micros(now))?
            .map(ContextRow::into_context)
            .transpose()
    }

    async fn revoke_session(&self, id: SessionId, now: DateTime<Utc>) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        execute!(
            tx,
            "UPDATE sessions SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
            DbId(id.0),
            micros(now)
        )?;
        tx.commit().await
    }

    async fn revoke_user_sessions(&self, user: UserId, now: DateTime<Utc>) -> StoreResult<u64> {
        let mut tx = self.begin().await?;
        let n = execute!(
            tx,
            "UPDATE sessions SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL",
            DbId(user.0),
            micros(now)
        )?;
        tx.commit().await?;
        Ok(n)
    }

    async fn update_user_name(&self, user: UserId, name: &str) -> StoreResult<User> {
        let mut tx = self.begin().await?;
        let sql = format!("UPDATE users SET name = $2 WHERE id = $1 RETURNING {USER_COLS}");
        let row =
            fetch_optional!(tx, UserRow, &sql, DbId(user.0), name)?.ok_or(StoreError::NotFound)?;
        tx.commit().await?;
        Ok(row.into())
    }

    async fn mark_profile_created(&self, user: UserId, now: DateTime<Utc>) -> StoreResult<bool> {
        let mut tx = self.begin().await?;
        let n = execute!(
            tx,
            "UPDATE users SET profile_created_at = $2 WHERE id = $1 AND profile_created_at IS NULL",
            DbId(user.0),
            micros(now)
        )?;
        tx.commit().await?;
        Ok(n == 1)
    }

    async fn get_tenant(&self, tenant: TenantId) -> StoreResult<Tenant> {
        let mut h = self.read().await?;
        let sql = format!("SELECT {TENANT_COLS} FROM tenants WHERE id = $1");
        fetch_optional!(h, TenantRow, &sql, DbId(tenant.0))?
            .map(Tenant::from)
            .ok_or(StoreError::NotFound)
    }

    async fn update_tenant(&self, tenant: TenantId, patch: TenantPatch) -> StoreResult<Tenant> {
        let mut tx = self.begin().await?;
        let sql = format!(
            "UPDATE tenants SET business_name = COALESCE($2, business_name), \
             calling_rules = COALESCE($3, calling_rules), recording = COALESCE($4, recording), \
             updated_at = $5 WHERE id = $1 RETURNING {TENANT_COLS}"
        );
        let row = fetch_optional!(
            tx,
            TenantRow,
            &sql,
            DbId(tenant.0),
            patch.business_name,
            patch.calling_rules.map(Json),
            patch.recording.map(Json),
            micros(Utc::now())
        )?
        .ok_or(StoreError::NotFound)?;
        tx.commit().await?;
        Ok(row.into())
    }

    async fn list_members(&self, tenant: TenantId) -> StoreResult<Vec<Member>> {
        let mut h = self.read().await?;
        let rows = fetch_all!(
            h,
            MemberRow,
            "SELECT u.id AS user_id, u.email, u.name, m.role, m.created_at FROM memberships m \
             JOIN users u ON u.id = m.user_id WHERE m.tenant_id = $1 ORDER BY m.created_at, u.email",
            DbId(tenant.0)
        )?;
        rows.into_iter()
            .map(|r| {
                Ok(Member {
                    user_id: UserId(r.user_id.0),
                    email: r.email,
                    name: r.name,
                    role: parse_role(&r.role)?,
                    joined_at: r.created_at.0,
                })
            })
            .collect()
    }

    async fn remove_member(
        &self,
        tenant: TenantId,
        user: UserId,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        let role = fetch_optional!(
            tx,
            (String,),
            "SELECT role FROM memberships WHERE tenant_id = $1 AND user_id = $2",
            DbId(tenant.0),
            DbId(user.0)
        )?
        .ok_or(StoreError::NotFound)?;
        if parse_role(&role.0)? == Role::Owner {
            let owners = fetch_one!(
                tx,
                (i64,),
                "SELECT COUNT(*) FROM memberships WHERE tenant_id = $1 AND role = 'owner'",
                DbId(tenant.0)
            )?;
            if owners.0 <= 1 {
                return Err(StoreError::Conflict("Cannot remove the last owner".into()));
            }
        }
        execute!(
            tx,
            "DELETE FROM memberships WHERE tenant_id = $1 AND user_id = $2",
            DbId(tenant.0),
            DbId(user.0)
        )?;
        execute!(
            tx,
            "UPDATE sessions SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL",
            DbId(user.0),
            micros(now)
        )?;
        tx.commit().await
    }

    async fn used_seconds(
        &self,
        tenant: TenantId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> StoreResult<i64> {
        let mut h = self.read().await?;
        let n = fetch_one!(
            h,
            (i64,),
            "SELECT CAST(COALESCE(SUM(duration_seconds), 0) AS BIGINT) FROM calls \
             WHERE tenant_id = $1 AND created_at >= $2 AND created_at < $3",
            DbId(tenant.0),
            micros(from),
            micros(to)
        )?;
        Ok(n.0)
    }
}

fn conflict_as(e: StoreError, msg: &str) -> StoreError {
    match e {
        StoreError::Conflict(_) => StoreError::Conflict(msg.into()),
        other => other,
    }
}

pub(crate) async fn insert_user(
    tx: &mut crate::db::Handle,
    email: &str,
    name: Option<&str>,
    now: DbTime,
) -> StoreResult<DbId> {
    let id = DbId(uuid::Uuid::new_v4());
    execute!(
        tx,
        "INSERT INTO users (id, email, name, is_platform_admin, is_active, created_at) \
         VALUES ($1, $2, $3, FALSE, TRUE, $4)",
        id,
        email,
        name,
        now
    )
    .map_err(|e| conflict_as(e, "Email already registered"))?;
    Ok(id)
}

async fn insert_membership(
    tx: &mut crate::db::Handle,
    user: DbId,
    tenant: DbId,
    role: Role,
    now: DbTime,
) -> StoreResult<()> {
    execute!(
        tx,
        "INSERT INTO memberships (user_id, tenant_id, role, created_at) VALUES ($1, $2, $3, $4)",
        user,
        tenant,
        role.as_str(),
        now
    )
    .map_err(|e| conflict_as(e, "User already belongs to a tenant"))?;
    Ok(())
}
