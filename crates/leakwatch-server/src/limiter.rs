//! Per-caller rate limits: a token bucket per API key, and per client address for
//! anonymous callers.
//!
//! A limit of N requests a minute is a bucket of N tokens refilled at N/60 a
//! second: a caller may spend a minute's allowance at once, then one request per
//! refill. An empty bucket answers how many whole seconds until the next token,
//! which becomes HIBP's `retry-after`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

/// Whose bucket a request draws from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LimitKey {
    Key(i64),
    Ip(IpAddr),
    /// Wrong API keys presented from this client address group.
    FailedKeys(IpAddr),
}

/// A refused request: when to try again, and whether it is the first refusal
/// since the bucket last admitted one (the one worth an audit row when the
/// caller is anonymous: the rest of the run adds nothing but volume).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    pub retry_after: u64,
    pub first: bool,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
    per_minute: u32,
    refused: bool,
}

/// Buckets for every caller seen recently.
#[derive(Debug, Default)]
pub struct Limiter {
    buckets: Mutex<HashMap<LimitKey, Bucket>>,
}

/// More buckets than this and idle (full) ones are dropped; anonymous addresses
/// are unbounded in number, and a full bucket is the same as no bucket.
const MAX_BUCKETS: usize = 100_000;

impl Limiter {
    /// Takes a token for `key` under a limit of `per_minute` (0: no limit).
    /// `Err(seconds)` when the bucket is empty: when to try again.
    #[cfg(test)]
    pub fn check(&self, key: LimitKey, per_minute: u32, now: Instant) -> Result<(), u64> {
        self.take(key, per_minute, now, true).map_err(|r| r.retry_after)
    }

    /// [`Limiter::check`], saying whether the refusal is the first of a run.
    pub fn refuse(&self, key: LimitKey, per_minute: u32, now: Instant) -> Result<(), Refusal> {
        self.take(key, per_minute, now, true)
    }

    /// Whether `key` has a token left, without taking it.
    pub fn peek(&self, key: LimitKey, per_minute: u32, now: Instant) -> Result<(), Refusal> {
        self.take(key, per_minute, now, false)
    }

    fn take(&self, key: LimitKey, per_minute: u32, now: Instant, spend: bool) -> Result<(), Refusal> {
        if per_minute == 0 {
            return Ok(());
        }
        let capacity = f64::from(per_minute);
        let rate = capacity / 60.0;
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= MAX_BUCKETS && !buckets.contains_key(&key) {
            buckets.retain(|_, b| {
                let rate = f64::from(b.per_minute) / 60.0;
                b.tokens + now.saturating_duration_since(b.last).as_secs_f64() * rate
                    < f64::from(b.per_minute)
            });
            if buckets.len() >= MAX_BUCKETS / 2 {
                // Still crowded: so many addresses are active at once that keeping
                // their buckets would make every new one pay for a full scan. Forget
                // the anonymous ones (they may only read the public catalog); keys
                // keep theirs.
                buckets.retain(|k, _| matches!(k, LimitKey::Key(_)));
            }
        }
        if !spend && !buckets.contains_key(&key) {
            return Ok(());
        }
        let bucket =
            buckets.entry(key).or_insert(Bucket { tokens: capacity, last: now, per_minute, refused: false });
        if bucket.per_minute != per_minute {
            // The key's limit changed (a new key table): keep what was spent.
            bucket.per_minute = per_minute;
            bucket.tokens = bucket.tokens.min(capacity);
        }
        let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(capacity);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            if spend {
                bucket.tokens -= 1.0;
                bucket.refused = false;
            }
            Ok(())
        } else {
            let first = !bucket.refused;
            bucket.refused = true;
            Err(Refusal { retry_after: ((1.0 - bucket.tokens) / rate).ceil().max(1.0) as u64, first })
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_minute_of_allowance_then_one_request_per_refill() {
        let limiter = Limiter::default();
        let t0 = Instant::now();
        let key = LimitKey::Key(1);
        for _ in 0..3 {
            limiter.check(key, 3, t0).unwrap();
        }
        assert_eq!(limiter.check(key, 3, t0), Err(20));
        assert_eq!(limiter.check(key, 3, t0 + Duration::from_secs(15)), Err(5));
        limiter.check(key, 3, t0 + Duration::from_secs(20)).unwrap();
        assert_eq!(limiter.check(key, 3, t0 + Duration::from_secs(20)), Err(20));
        // Other callers have their own buckets; 0 means no limit.
        limiter.check(LimitKey::Key(2), 3, t0).unwrap();
        limiter.check(LimitKey::Ip([127, 0, 0, 1].into()), 3, t0).unwrap();
        for _ in 0..1000 {
            limiter.check(LimitKey::Key(3), 0, t0).unwrap();
        }
    }

    #[test]
    fn idle_buckets_are_dropped_when_there_are_too_many() {
        let limiter = Limiter::default();
        let t0 = Instant::now();
        for i in 0..MAX_BUCKETS as i64 {
            limiter.check(LimitKey::Key(i), 60, t0).unwrap();
        }
        limiter.check(LimitKey::Key(-1), 60, t0 + Duration::from_secs(2)).unwrap();
        assert_eq!(limiter.buckets.lock().unwrap().len(), 1);
    }
}
