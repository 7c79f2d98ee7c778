//! Dashboard and analytics counts (behaviour.md C5, C6).
//!
//! The answered/failed classes come from the E16 table in `talky-core`
//! (`connected_outcomes` / `unconnected_outcomes`), turned into `IN (…)` lists at run time.
//! Analytics groups by UTC day in SQL (the one dialect-specific expression below) and rolls
//! days up into weeks or months in Rust, so the database returns at most one row per day.

use crate::campaigns::live_calls_sql;
use crate::db::{micros, DbId, SqlStore};
use crate::dynamic::text_list;
use crate::Engine;
use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use std::collections::BTreeMap;
use talky_core::ids::TenantId;
use talky_core::model::Outcome;
use talky_core::ports::store::*;

fn outcome_list(outcomes: Vec<Outcome>) -> String {
    text_list(outcomes.iter().map(|o| o.as_str()))
}

/// `total, answered, failed` over the calls matching `WHERE tenant_id = $1 AND created_at
/// >= $2 AND created_at < $3`.
fn class_sums() -> String {
    format!(
        "COUNT(*), \
         CAST(COALESCE(SUM(CASE WHEN outcome IN ({}) THEN 1 ELSE 0 END), 0) AS BIGINT), \
         CAST(COALESCE(SUM(CASE WHEN outcome IN ({}) AND status NOT IN ({}) THEN 1 ELSE 0 END), 0) AS BIGINT)",
        outcome_list(connected_outcomes()),
        outcome_list(unconnected_outcomes()),
        live_calls_sql()
    )
}

#[async_trait]
impl ReportStore for SqlStore {
    async fn dashboard_counts(
        &self,
        tenant: TenantId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> StoreResult<DashboardCounts> {
        let t = DbId(tenant.0);
        let mut h = self.read().await?;
        let sql = format!(
            "SELECT {} FROM calls WHERE tenant_id = $1 AND created_at >= $2 AND created_at < $3",
            class_sums()
        );
        let (total_calls, answered_calls, failed_calls) =
            fetch_one!(h, (i64, i64, i64), &sql, t, micros(from), micros(to))?;
        let (active_campaigns,) = fetch_one!(
            h,
            (i64,),
            "SELECT COUNT(*) FROM campaigns WHERE tenant_id = $1 AND status = 'running'",
            t
        )?;
        Ok(DashboardCounts {
            total_calls,
            answered_calls,
            failed_calls,
            active_campaigns,
        })
    }

    async fn call_analytics(
        &self,
        tenant: TenantId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        group_by: GroupBy,
    ) -> StoreResult<Vec<AnalyticsBucket>> {
        // Both give the UTC calendar day as `YYYY-MM-DD` text.
        let day = match self.engine() {
            // Stored as fixed-width RFC 3339 UTC text (see `DbTime`).
            Engine::Sqlite => "substr(created_at, 1, 10)",
            Engine::Postgres => "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
        };
        let sql = format!(
            "SELECT {day} AS day, {} FROM calls WHERE tenant_id = $1 AND created_at >= $2 AND created_at < $3 \
             GROUP BY 1 ORDER BY 1",
            class_sums()
        );
        let mut h = self.read().await?;
        let rows = fetch_all!(
            h,
            (String, i64, i64, i64),
            &sql,
            DbId(tenant.0),
            micros(from),
            micros(to)
        )?;
        let mut buckets: BTreeMap<NaiveDate, AnalyticsBucket> = BTreeMap::new();
        for (day, total, answered, failed) in rows {
            let date = NaiveDate::parse_from_str(&day, "%Y-%m-%d")
                .map_err(|e| StoreError::Internal(format!("bad day {day:?}: {e}")))?;
            let start = group_by.bucket_start(date);
            let b = buckets.entry(start).or_insert(AnalyticsBucket {
                date: start,
                total_calls: 0,
                answered: 0,
                failed: 0,
            });
            b.total_calls += total;
            b.answered += answered;
            b.failed += failed;
        }
        Ok(buckets.into_values().collect())
    }
}
