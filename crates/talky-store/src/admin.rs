//! Platform-admin queries (A13, B6): the only cross-tenant reads in the store.

use crate::accounts::{insert_user, TenantRow, UserRow, TENANT_COLS, USER_COLS};
use crate::db::{micros, DbId, SqlStore};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use talky_core::ids::{TenantId, UserId};
use talky_core::ports::store::*;

#[derive(sqlx::FromRow)]
struct AdminUser {
    id: DbId,
    email: String,
    is_platform_admin: bool,
    role: Option<String>,
    tenant_id: Option<DbId>,
}

#[async_trait]
impl PlatformAdminStore for SqlStore {
    async fn create_platform_admin(
        &self,
        email: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<(User, bool)> {
        let mut tx = self.begin().await?;
        let select = format!("SELECT {USER_COLS} FROM users WHERE email = $1");
        let created = match fetch_optional!(tx, UserRow, &select, email)? {
            Some(_) => false,
            None => {
                insert_user(&mut tx, email, None, micros(now)).await?;
                true
            }
        };
        let sql = format!(
            "UPDATE users SET is_platform_admin = TRUE, is_active = TRUE WHERE email = $1 RETURNING {USER_COLS}"
        );
        let user = fetch_one!(tx, UserRow, &sql, email)?;
        tx.commit().await?;
        Ok((user.into(), created))
    }

    async fn admin_list_tenants(&self) -> StoreResult<Vec<Tenant>> {
        let mut h = self.read().await?;
        let sql = format!("SELECT {TENANT_COLS} FROM tenants ORDER BY created_at, id");
        Ok(fetch_all!(h, TenantRow, &sql)?
            .into_iter()
            .map(Tenant::from)
            .collect())
    }

    async fn admin_get_tenant(&self, tenant: TenantId) -> StoreResult<Tenant> {
        self.get_tenant(tenant).await
    }

    async fn admin_set_minutes(
        &self,
        tenant: TenantId,
        minutes_allocated: i64,
    ) -> StoreResult<Tenant> {
        let mut tx = self.begin().await?;
        let sql = format!(
            "UPDATE tenants SET minutes_allocated = $2, updated_at = $3 WHERE id = $1 RETURNING {TENANT_COLS}"
        );
        let row = fetch_optional!(
            tx,
            TenantRow,
            &sql,
            DbId(tenant.0),
            minutes_allocated,
            micros(Utc::now())
        )?
        .ok_or(StoreError::NotFound)?;
        tx.commit().await?;
        Ok(row.into())
    }

    async fn admin_list_users(&self) -> StoreResult<Vec<AdminUserRow>> {
        let mut h = self.read().await?;
        let rows = fetch_all!(
            h,
            AdminUser,
            "SELECT u.id, u.email, u.is_platform_admin, m.role, m.tenant_id FROM users u \
             LEFT JOIN memberships m ON m.user_id = u.id ORDER BY u.created_at, u.email"
        )?;
        rows.into_iter()
            .map(|r| {
                Ok(AdminUserRow {
                    id: UserId(r.id.0),
                    email: r.email,
                    role: r.role.map(|s| s.parse()).transpose().map_err(
                        |e: talky_core::model::UnknownValue| StoreError::Internal(e.to_string()),
                    )?,
                    tenant_id: r.tenant_id.map(|t| TenantId(t.0)),
                    is_platform_admin: r.is_platform_admin,
                })
            })
            .collect()
    }
}
