//! A per-key fixed-window rate limiter kept in memory (A13: 20 auth requests per minute
//! per client IP). Windows are keyed by an injected `now`, so tests need no sleeping.

use std::collections::HashMap;
use std::sync::Mutex;

/// Allows `limit` hits per `window_secs` per key.
pub struct RateLimiter {
    limit: u32,
    window_secs: i64,
    hits: Mutex<HashMap<String, (i64, u32)>>,
}

impl RateLimiter {
    pub fn new(limit: u32, window_secs: i64) -> Self {
        Self {
            limit,
            window_secs,
            hits: Mutex::new(HashMap::new()),
        }
    }

    /// Counts a hit at unix time `now`; `Err(retry_after_secs)` when over the limit.
    pub fn check(&self, key: &str, now: i64) -> Result<(), u64> {
        let window = now.div_euclid(self.window_secs);
        let mut hits = self.hits.lock().unwrap_or_else(|p| p.into_inner());
        if hits.len() > 100_000 {
            hits.retain(|_, (w, _)| *w == window);
        }
        let entry = hits.entry(key.to_string()).or_insert((window, 0));
        if entry.0 != window {
            *entry = (window, 0);
        }
        if entry.1 >= self.limit {
            let retry = (window + 1) * self.window_secs - now;
            return Err(retry.max(1) as u64);
        }
        entry.1 += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn limits_per_key_and_resets_each_window() {
        let rl = super::RateLimiter::new(2, 60);
        assert!(rl.check("a", 120).is_ok());
        assert!(rl.check("a", 130).is_ok());
        assert_eq!(rl.check("a", 150), Err(30));
        assert!(rl.check("b", 150).is_ok());
        assert!(rl.check("a", 180).is_ok());
    }
}
