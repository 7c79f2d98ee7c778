//! The one minutes computation (C1–C2) every route and worker calls.

use chrono::{DateTime, Utc};
use talky_core::minutes::{billing_period, Minutes};
use talky_core::ports::store::{Store, StoreResult, Tenant};

/// Minutes of `tenant` in the billing period containing `now`.
pub async fn tenant_minutes(
    store: &dyn Store,
    tenant: &Tenant,
    now: DateTime<Utc>,
) -> StoreResult<Minutes> {
    let (from, to) = billing_period(now);
    let used = store.used_seconds(tenant.id, from, to).await?;
    Ok(Minutes::compute(tenant.minutes_allocated, used))
}
