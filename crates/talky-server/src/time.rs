//! Rendering instants: RFC 3339, UTC, with `Z` (behaviour.md preamble).

use chrono::{DateTime, SecondsFormat, Utc};

pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}
