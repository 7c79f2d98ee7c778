//! Minutes accounting (behaviour.md C1–C2): the only definition of used/remaining minutes.
//! The store sums call durations for the billing period; this module turns that sum and the
//! allocation into the numbers every route shows.

use chrono::{DateTime, Datelike, TimeZone, Utc};
use serde::Serialize;

/// The computed minutes position of a tenant for one billing period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Minutes {
    pub minutes_allocated: i64,
    pub minutes_used: i64,
    /// `None` when the allocation is unlimited (≤ 0).
    pub minutes_remaining: Option<i64>,
    pub minutes_unlimited: bool,
}

impl Minutes {
    /// C1: `used = ceil(seconds / 60)`; allocation ≤ 0 means unlimited.
    pub fn compute(minutes_allocated: i64, used_seconds: i64) -> Self {
        let used_seconds = used_seconds.max(0);
        let minutes_used = (used_seconds + 59) / 60;
        let unlimited = minutes_allocated <= 0;
        Self {
            minutes_allocated,
            minutes_used,
            minutes_remaining: (!unlimited).then(|| (minutes_allocated - minutes_used).max(0)),
            minutes_unlimited: unlimited,
        }
    }

    /// True when a new call may not start (C3/C4).
    pub fn exhausted(&self) -> bool {
        self.minutes_remaining == Some(0)
    }
}

/// The billing period containing `now`: `[first of month 00:00 UTC, first of next month)`.
pub fn billing_period(now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    let start = Utc
        .with_ymd_and_hms(now.year(), now.month(), 1, 0, 0, 0)
        .single()
        .expect("first of month at midnight UTC always exists");
    let (y, m) = if now.month() == 12 {
        (now.year() + 1, 1)
    } else {
        (now.year(), now.month() + 1)
    };
    let end = Utc
        .with_ymd_and_hms(y, m, 1, 0, 0, 0)
        .single()
        .expect("first of month at midnight UTC always exists");
    (start, end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_up_and_clamps() {
        let m = Minutes::compute(300, 61);
        assert_eq!(m.minutes_used, 2);
        assert_eq!(m.minutes_remaining, Some(298));
        assert!(!m.minutes_unlimited);
        assert_eq!(Minutes::compute(1, 600).minutes_remaining, Some(0));
        assert!(Minutes::compute(1, 600).exhausted());
        assert_eq!(Minutes::compute(300, 0).minutes_used, 0);
    }

    #[test]
    fn non_positive_allocation_is_unlimited() {
        for alloc in [0, -1] {
            let m = Minutes::compute(alloc, 10_000);
            assert!(m.minutes_unlimited);
            assert_eq!(m.minutes_remaining, None);
            assert!(!m.exhausted());
        }
    }

    #[test]
    fn period_is_the_utc_month() {
        let now = Utc.with_ymd_and_hms(2026, 12, 31, 23, 59, 59).unwrap();
        let (s, e) = billing_period(now);
        assert_eq!(s, Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap());
        assert_eq!(e, Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap());
    }
}
