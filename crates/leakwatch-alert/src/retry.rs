//! When a failed delivery is tried again: exponential backoff from `base`,
//! doubled on each failure up to `cap`, with jitter (a random point in the
//! upper half of the delay, so receivers coming back are not hit by every
//! sender at once), for up to `give_up_after` from the batch's creation.
//!
//! With the defaults (5 s doubling to 10 min, for 3 days) a receiver down for
//! an hour gets everything within ten minutes of coming back.

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The delay after the first failed attempt.
    pub base: Duration,
    /// The longest delay between attempts.
    pub cap: Duration,
    /// How long after its creation a batch is still tried.
    pub give_up_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            base: Duration::from_secs(5),
            cap: Duration::from_secs(600),
            give_up_after: Duration::from_secs(3 * 24 * 3600),
        }
    }
}

impl RetryPolicy {
    /// The delay before the attempt after `attempts` attempts were made.
    pub fn delay(&self, attempts: u32) -> Duration {
        let full = self.full_delay(attempts);
        let half = full / 2;
        half + full.saturating_sub(half).mul_f64(rand::random::<f64>())
    }

    /// The delay without jitter.
    fn full_delay(&self, attempts: u32) -> Duration {
        let doublings = attempts.saturating_sub(1).min(32);
        self.base.saturating_mul(1u32 << doublings.min(31)).min(self.cap).max(Duration::from_millis(1))
    }
}

/// Parses `100ms`, `5s`, `10m`, `1h`, `3d` (a bare number is seconds).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 =
        number.parse().map_err(|_| format!("{text:?} is not a duration (e.g. 100ms, 5s, 10m, 1h)"))?;
    let millis = match unit {
        "ms" => 1,
        "" | "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(format!("{text:?}: unknown unit {unit:?} (ms, s, m, h or d)")),
    };
    Ok(Duration::from_millis(n.saturating_mul(millis)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap_with_jitter_in_the_upper_half() {
        let p = RetryPolicy {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(600),
            ..RetryPolicy::default()
        };
        let full: Vec<u64> = (1..=12).map(|a| p.full_delay(a).as_secs()).collect();
        assert_eq!(full, [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 600, 600]);
        assert_eq!(p.full_delay(u32::MAX), Duration::from_secs(600));
        for attempts in 1..15 {
            let d = p.delay(attempts);
            assert!(d >= p.full_delay(attempts) / 2 && d <= p.full_delay(attempts), "{attempts}: {d:?}");
        }
        // An hour's outage: the attempts keep coming at most ten minutes apart.
        let mut t = Duration::ZERO;
        let mut attempts = 0;
        while t < Duration::from_secs(3600) {
            attempts += 1;
            t += p.delay(attempts);
        }
        assert!(p.delay(attempts + 1) <= Duration::from_secs(600));
    }

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("100ms"), Ok(Duration::from_millis(100)));
        assert_eq!(parse_duration("5"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("3d"), Ok(Duration::from_secs(3 * 86400)));
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("ms").is_err());
    }
}
