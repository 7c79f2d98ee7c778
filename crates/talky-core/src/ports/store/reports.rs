//! Dashboard and analytics counts (behaviour.md C5, C6). Minutes come from the one C1
//! function (`AccountStore::used_seconds` + `minutes::Minutes::compute`), not from here.
//!
//! Call classes: *answered* = the outcome is connected per the E16 table
//! (`Outcome::policy().connected`); *failed* = a finished call whose outcome is not
//! connected. Calls without an outcome (live, or not finalised) are in neither class.

use crate::ids::TenantId;
use crate::model::Outcome;
use async_trait::async_trait;
use chrono::{DateTime, Datelike, Days, NaiveDate, Utc};
use serde::Serialize;
use std::str::FromStr;

use super::StoreResult;

/// The outcomes counted as answered (C5), from the E16 table.
pub fn connected_outcomes() -> Vec<Outcome> {
    Outcome::ALL
        .iter()
        .copied()
        .filter(|o| o.is_connected())
        .collect()
}

/// The outcomes counted as failed (C5), from the E16 table.
pub fn unconnected_outcomes() -> Vec<Outcome> {
    Outcome::ALL
        .iter()
        .copied()
        .filter(|o| !o.is_connected())
        .collect()
}

/// C5 counts for one tenant and period.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DashboardCounts {
    pub total_calls: i64,
    pub answered_calls: i64,
    pub failed_calls: i64,
    /// Campaigns with status `running` (not limited to the period).
    pub active_campaigns: i64,
}

/// C6 bucket size.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    #[default]
    Day,
    /// Weeks start on Monday.
    Week,
    Month,
}

impl GroupBy {
    /// The first day of the bucket containing `date`.
    pub fn bucket_start(&self, date: NaiveDate) -> NaiveDate {
        match self {
            GroupBy::Day => date,
            GroupBy::Week => date
                .checked_sub_days(Days::new(u64::from(date.weekday().num_days_from_monday())))
                .unwrap_or(date),
            GroupBy::Month => date.with_day(1).unwrap_or(date),
        }
    }
}

impl FromStr for GroupBy {
    type Err = crate::model::UnknownValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "day" => Ok(GroupBy::Day),
            "week" => Ok(GroupBy::Week),
            "month" => Ok(GroupBy::Month),
            other => Err(crate::model::UnknownValue {
                kind: "group_by",
                value: other.to_string(),
            }),
        }
    }
}

/// One C6 bucket; `date` is the bucket's first day (serialises as `YYYY-MM-DD`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct AnalyticsBucket {
    pub date: NaiveDate,
    pub total_calls: i64,
    pub answered: i64,
    pub failed: i64,
}

#[async_trait]
pub trait ReportStore: Send + Sync {
    /// C5 counts of calls created in `[from, to)` (the billing period) plus the number of
    /// running campaigns.
    async fn dashboard_counts(
        &self,
        tenant: TenantId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> StoreResult<DashboardCounts>;

    /// C6: calls created in `[from, to)` bucketed by UTC day, week (Monday) or month,
    /// sorted by date; buckets without calls are omitted.
    async fn call_analytics(
        &self,
        tenant: TenantId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        group_by: GroupBy,
    ) -> StoreResult<Vec<AnalyticsBucket>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_partition_the_outcomes() {
        let c = connected_outcomes();
        let u = unconnected_outcomes();
        assert_eq!(c.len() + u.len(), Outcome::ALL.len());
        assert!(c.contains(&Outcome::GoalAchieved) && c.contains(&Outcome::OptedOut));
        assert!(u.contains(&Outcome::Voicemail) && u.contains(&Outcome::Busy));
        assert!(c.iter().all(|o| !u.contains(o)));
    }

    #[test]
    fn bucket_starts() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        // 2025-01-01 is a Wednesday.
        assert_eq!(GroupBy::Day.bucket_start(d("2025-01-01")), d("2025-01-01"));
        assert_eq!(GroupBy::Week.bucket_start(d("2025-01-01")), d("2024-12-30"));
        assert_eq!(GroupBy::Week.bucket_start(d("2024-12-30")), d("2024-12-30"));
        assert_eq!(GroupBy::Week.bucket_start(d("2025-01-05")), d("2024-12-30"));
        assert_eq!(
            GroupBy::Month.bucket_start(d("2025-02-28")),
            d("2025-02-01")
        );
        assert_eq!("week".parse::<GroupBy>().unwrap(), GroupBy::Week);
        assert!("year".parse::<GroupBy>().is_err());
        assert_eq!(
            serde_json::to_value(AnalyticsBucket {
                date: d("2025-01-06"),
                total_calls: 1,
                answered: 1,
                failed: 0
            })
            .unwrap()["date"],
            "2025-01-06"
        );
    }
}
