//! The one source of "now". Everything that schedules or expires takes an instant from a
//! [`Clock`], so tests can pin time instead of sleeping.

use chrono::{DateTime, Utc};

/// Supplies the current instant (aware UTC).
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
}

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}
