//! The tenant's do-not-call list (behaviour.md E19).

use crate::db::{micros, DbId, DbTime, SqlStore};
use crate::dynamic::corrupt;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use talky_core::ids::TenantId;
use talky_core::model::DncSource;
use talky_core::phone::E164;
use talky_core::ports::store::*;

#[derive(sqlx::FromRow)]
struct DncRow {
    phone_number: String,
    source: String,
    reason: Option<String>,
    created_at: DbTime,
}

impl TryFrom<DncRow> for DncEntry {
    type Error = StoreError;
    fn try_from(r: DncRow) -> StoreResult<DncEntry> {
        Ok(DncEntry {
            phone_number: r.phone_number,
            source: r.source.parse().map_err(corrupt)?,
            reason: r.reason,
            created_at: r.created_at.0,
        })
    }
}

#[async_trait]
impl DncStore for SqlStore {
    async fn list_dnc(&self, tenant: TenantId, page: Page) -> StoreResult<Paged<DncEntry>> {
        let mut h = self.read().await?;
        let t = DbId(tenant.0);
        let (total,) = fetch_one!(
            h,
            (i64,),
            "SELECT COUNT(*) FROM dnc WHERE tenant_id = $1",
            t
        )?;
        let rows = fetch_all!(
            h,
            DncRow,
            "SELECT phone_number, source, reason, created_at FROM dnc WHERE tenant_id = $1 \
             ORDER BY created_at DESC, phone_number LIMIT $2 OFFSET $3",
            t,
            page.limit(),
            page.offset()
        )?;
        let items = rows
            .into_iter()
            .map(DncEntry::try_from)
            .collect::<StoreResult<_>>()?;
        Ok((items, total))
    }

    async fn add_dnc(
        &self,
        tenant: TenantId,
        phone: &E164,
        source: Option<DncSource>,
        reason: Option<String>,
        now: DateTime<Utc>,
    ) -> StoreResult<DncAdded> {
        let t = DbId(tenant.0);
        let source = source.unwrap_or(DncSource::Manual);
        let mut tx = self.begin().await?;
        let created = execute!(
            tx,
            "INSERT INTO dnc (tenant_id, phone_number, source, reason, created_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (tenant_id, phone_number) DO NOTHING",
            t,
            phone.as_str(),
            source.as_str(),
            reason,
            micros(now)
        )?;
        let row = fetch_one!(
            tx,
            DncRow,
            "SELECT phone_number, source, reason, created_at FROM dnc WHERE tenant_id = $1 AND phone_number = $2",
            t,
            phone.as_str()
        )?;
        tx.commit().await?;
        Ok(DncAdded {
            entry: row.try_into()?,
            created: created > 0,
        })
    }

    async fn delete_dnc(&self, tenant: TenantId, phone: &E164) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        let n = execute!(
            tx,
            "DELETE FROM dnc WHERE tenant_id = $1 AND phone_number = $2",
            DbId(tenant.0),
            phone.as_str()
        )?;
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        tx.commit().await
    }

    async fn is_dnc(&self, tenant: TenantId, phone: &E164) -> StoreResult<bool> {
        let mut h = self.read().await?;
        let found = fetch_optional!(
            h,
            (i64,),
            "SELECT CAST(1 AS BIGINT) FROM dnc WHERE tenant_id = $1 AND phone_number = $2",
            DbId(tenant.0),
            phone.as_str()
        )?;
        Ok(found.is_some())
    }
}
