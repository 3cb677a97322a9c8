//! [`RateLimiter`]: how long to wait before the next send, under per-minute, per-hour and
//! per-day limits. The caller passes the time in; nothing here reads a clock.

use std::collections::VecDeque;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

use super::MailError;

/// Sending limits (e.g. a provider's quota). `None` means no limit for that window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateLimit {
    /// At most this many messages in any 60 seconds.
    pub per_minute: Option<u32>,
    /// At most this many messages in any 60 minutes.
    pub per_hour: Option<u32>,
    /// At most this many messages in any 24 hours.
    pub per_day: Option<u32>,
}

impl RateLimit {
    /// The configured windows with their limits.
    fn windows(&self) -> impl Iterator<Item = (TimeDelta, usize)> {
        [
            (TimeDelta::minutes(1), self.per_minute),
            (TimeDelta::hours(1), self.per_hour),
            (TimeDelta::days(1), self.per_day),
        ]
        .into_iter()
        .filter_map(|(window, limit)| Some((window, usize::try_from(limit?).ok()?)))
    }
}

/// Tracks recent sends against a [`RateLimit`] over sliding windows: a limit of 60 per minute
/// allows 60 sends in any 60-second span, never 120 across a minute boundary.
///
/// It remembers at most as many send times as the largest limit.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    limit: RateLimit,
    /// Send times, oldest first, never decreasing.
    sent: VecDeque<DateTime<Utc>>,
    /// How many send times are worth keeping (the largest limit).
    keep: usize,
}

impl RateLimiter {
    /// A limiter with nothing sent yet. A limit of zero is refused: it would stop mail forever
    /// (leave the transport unconfigured instead).
    pub fn new(limit: RateLimit) -> Result<RateLimiter, MailError> {
        for (name, value) in [
            ("per_minute", limit.per_minute),
            ("per_hour", limit.per_hour),
            ("per_day", limit.per_day),
        ] {
            if value == Some(0) {
                return Err(MailError::InvalidConfig(format!(
                    "the rate limit {name} must be at least 1"
                )));
            }
        }
        let keep = limit.windows().map(|(_, n)| n).max().unwrap_or(0);
        Ok(RateLimiter {
            limit,
            sent: VecDeque::new(),
            keep,
        })
    }

    /// The limits.
    pub fn limit(&self) -> RateLimit {
        self.limit
    }

    /// How long to wait from `now` before the next send is allowed; zero if it is allowed now.
    pub fn delay(&self, now: DateTime<Utc>) -> Duration {
        let now = self.monotonic(now);
        self.limit
            .windows()
            .filter_map(|(window, limit)| {
                // Sends inside the window (now - window, now].
                let first = self.sent.partition_point(|&at| at <= now - window);
                let inside = self.sent.len() - first;
                // The send that has to leave the window before one more fits.
                let blocking = self.sent.get(first + inside.checked_sub(limit)?)?;
                (*blocking + window - now).to_std().ok()
            })
            .max()
            .unwrap_or(Duration::ZERO)
    }

    /// Records a send at `now`. A time earlier than the last recorded one (a clock stepped
    /// back) counts as the last one, so limits are never loosened by it.
    pub fn record(&mut self, now: DateTime<Utc>) {
        if self.keep == 0 {
            return;
        }
        let now = self.monotonic(now);
        self.sent.push_back(now);
        let longest = self
            .limit
            .windows()
            .map(|(window, _)| window)
            .max()
            .unwrap_or_default();
        while self
            .sent
            .front()
            .is_some_and(|&at| at <= now - longest || self.sent.len() > self.keep)
        {
            self.sent.pop_front();
        }
    }

    /// Records a send at `now` if one is allowed; otherwise says how long to wait.
    pub fn try_acquire(&mut self, now: DateTime<Utc>) -> Result<(), Duration> {
        match self.delay(now) {
            wait if wait.is_zero() => {
                self.record(now);
                Ok(())
            }
            wait => Err(wait),
        }
    }

    fn monotonic(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        self.sent.back().map_or(now, |&last| now.max(last))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + seconds, 0).expect("valid time")
    }

    fn limiter(
        per_minute: Option<u32>,
        per_hour: Option<u32>,
        per_day: Option<u32>,
    ) -> RateLimiter {
        RateLimiter::new(RateLimit {
            per_minute,
            per_hour,
            per_day,
        })
        .expect("valid limit")
    }

    #[test]
    fn no_limit_never_waits() {
        let mut limiter = limiter(None, None, None);
        for _ in 0..1000 {
            assert_eq!(limiter.try_acquire(at(0)), Ok(()));
        }
        assert!(limiter.sent.is_empty(), "nothing to remember");
    }

    #[test]
    fn per_minute_is_a_sliding_window() {
        let mut limiter = limiter(Some(3), None, None);
        assert_eq!(limiter.try_acquire(at(0)), Ok(()));
        assert_eq!(limiter.try_acquire(at(10)), Ok(()));
        assert_eq!(limiter.try_acquire(at(20)), Ok(()));
        // The fourth waits until the first leaves the window at 60 s.
        assert_eq!(limiter.try_acquire(at(30)), Err(Duration::from_secs(30)));
        assert_eq!(limiter.delay(at(59)), Duration::from_secs(1));
        assert_eq!(limiter.try_acquire(at(60)), Ok(()));
        // Now 10, 20, 60 are inside: the next fits at 70.
        assert_eq!(limiter.delay(at(61)), Duration::from_secs(9));
        assert_eq!(limiter.try_acquire(at(70)), Ok(()));
    }

    #[test]
    fn the_strictest_window_wins() {
        let mut limiter = limiter(Some(10), Some(12), Some(100));
        for second in 0..10 {
            assert_eq!(limiter.try_acquire(at(second)), Ok(()));
        }
        // Minute limit reached: wait for the first send to leave the minute.
        assert_eq!(limiter.delay(at(10)), Duration::from_secs(50));
        assert_eq!(limiter.try_acquire(at(60)), Ok(()));
        assert_eq!(limiter.try_acquire(at(61)), Ok(()));
        // Hour limit (12) reached: the send at 0 s leaves the hour at 3600 s.
        assert_eq!(limiter.delay(at(200)), Duration::from_secs(3400));
        assert_eq!(limiter.try_acquire(at(3600)), Ok(()));
    }

    #[test]
    fn per_day_counts_a_full_day() {
        let mut limiter = limiter(None, None, Some(2));
        assert_eq!(limiter.try_acquire(at(0)), Ok(()));
        assert_eq!(limiter.try_acquire(at(3600)), Ok(()));
        assert_eq!(limiter.delay(at(7200)), Duration::from_secs(86_400 - 7200));
        assert_eq!(limiter.try_acquire(at(86_400)), Ok(()));
    }

    #[test]
    fn a_clock_stepped_back_does_not_loosen_the_limit() {
        let mut limiter = limiter(Some(1), None, None);
        assert_eq!(limiter.try_acquire(at(100)), Ok(()));
        // Clock jumps back 50 s: still one minute after the recorded send.
        assert_eq!(limiter.delay(at(50)), Duration::from_secs(60));
    }

    #[test]
    fn memory_is_bounded_by_the_largest_limit() {
        let mut limiter = limiter(Some(5), Some(50), None);
        for second in 0..10_000 {
            limiter.record(at(second));
        }
        assert!(limiter.sent.len() <= 50);
    }

    #[test]
    fn zero_is_refused() {
        assert!(
            RateLimiter::new(RateLimit {
                per_hour: Some(0),
                ..RateLimit::default()
            })
            .is_err()
        );
    }
}
