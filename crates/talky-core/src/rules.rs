//! Tenant settings with rules: calling rules (E11) and the recording policy (H1–H5).
//! Stored as JSON; parsed and validated here so a bad window is a 422 when saved, never a
//! silent default later.

use chrono::NaiveTime;
use serde::{Deserialize, Serialize};

/// Calling rules; every field optional in storage, defaults per E11.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CallingRules {
    pub time_window_start: String,
    pub time_window_end: String,
    pub timezone: String,
    pub allowed_days: Vec<u8>,
    pub min_hours_between_calls: u32,
    pub max_concurrent_calls: u32,
    pub max_attempts: u32,
}

impl Default for CallingRules {
    fn default() -> Self {
        Self {
            time_window_start: "09:00".into(),
            time_window_end: "19:00".into(),
            timezone: "America/New_York".into(),
            allowed_days: vec![0, 1, 2, 3, 4],
            min_hours_between_calls: 2,
            max_concurrent_calls: 10,
            max_attempts: 4,
        }
    }
}

/// A rule violation: the field and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct RuleError {
    pub field: String,
    pub message: String,
}

fn err(field: &str, message: &str) -> RuleError {
    RuleError {
        field: field.into(),
        message: message.into(),
    }
}

/// Parses `HH:MM` (00:00–23:59, plus `24:00` when `allow_24` is set) into minutes.
pub fn parse_hhmm(s: &str, allow_24: bool) -> Option<u32> {
    if allow_24 && s == "24:00" {
        return Some(24 * 60);
    }
    if s.len() != 5 || s.as_bytes()[2] != b':' {
        return None;
    }
    let t = NaiveTime::parse_from_str(s, "%H:%M").ok()?;
    use chrono::Timelike;
    Some(t.hour() * 60 + t.minute())
}

impl CallingRules {
    /// Checks every field (E11).
    pub fn validate(&self) -> Result<(), RuleError> {
        let start = parse_hhmm(&self.time_window_start, false)
            .ok_or_else(|| err("time_window_start", "must be HH:MM"))?;
        let end = parse_hhmm(&self.time_window_end, true)
            .ok_or_else(|| err("time_window_end", "must be HH:MM or 24:00"))?;
        if start == end {
            return Err(err("time_window_end", "must differ from time_window_start"));
        }
        if self.timezone.parse::<chrono_tz::Tz>().is_err() {
            return Err(err("timezone", "unknown IANA time zone"));
        }
        if self.allowed_days.is_empty() {
            return Err(err("allowed_days", "must not be empty"));
        }
        if self.allowed_days.iter().any(|d| *d > 6) {
            return Err(err("allowed_days", "days are 0 (Monday) to 6 (Sunday)"));
        }
        if !(1..=24).contains(&self.min_hours_between_calls) {
            return Err(err("min_hours_between_calls", "must be between 1 and 24"));
        }
        if !(1..=100).contains(&self.max_concurrent_calls) {
            return Err(err("max_concurrent_calls", "must be between 1 and 100"));
        }
        if !(1..=10).contains(&self.max_attempts) {
            return Err(err("max_attempts", "must be between 1 and 10"));
        }
        Ok(())
    }
}

/// Whether the recording notice must be delivered (H5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Disclosure {
    Required,
    NotRequired,
}

/// The tenant's recording policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecordingPolicy {
    pub enabled: bool,
    pub channels: u8,
    pub disclosure: Disclosure,
    pub notice_text: String,
}

impl Default for RecordingPolicy {
    fn default() -> Self {
        Self {
            enabled: true,
            channels: 1,
            disclosure: Disclosure::Required,
            notice_text: "This call may be recorded.".into(),
        }
    }
}

impl RecordingPolicy {
    pub fn validate(&self) -> Result<(), RuleError> {
        if !(1..=2).contains(&self.channels) {
            return Err(err("channels", "must be 1 (mono mix) or 2 (stereo)"));
        }
        let len = self.notice_text.trim().chars().count();
        if !(1..=500).contains(&len) {
            return Err(err("notice_text", "must be 1 to 500 characters"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        CallingRules::default().validate().unwrap();
        RecordingPolicy::default().validate().unwrap();
    }

    #[test]
    fn rejects_bad_windows() {
        let mut r = CallingRules {
            time_window_end: "09:00".into(),
            ..Default::default()
        };
        assert_eq!(r.validate().unwrap_err().field, "time_window_end");
        r = CallingRules {
            timezone: "Mars/Base".into(),
            ..Default::default()
        };
        assert_eq!(r.validate().unwrap_err().field, "timezone");
        r = CallingRules {
            allowed_days: vec![],
            ..Default::default()
        };
        assert_eq!(r.validate().unwrap_err().field, "allowed_days");
        r = CallingRules {
            time_window_start: "9:00".into(),
            ..Default::default()
        };
        assert_eq!(r.validate().unwrap_err().field, "time_window_start");
        r = CallingRules {
            time_window_start: "22:00".into(),
            time_window_end: "24:00".into(),
            ..Default::default()
        };
        r.validate().unwrap();
        r = CallingRules {
            time_window_start: "22:00".into(),
            time_window_end: "06:00".into(),
            ..Default::default()
        };
        r.validate().unwrap();
    }
}
