//! The daemon's time source, injected so that tests run days of schedule in milliseconds.
//!
//! - [`SystemClock`]: the real time (what `tiercare run` uses).
//! - [`SimulatedClock`]: starts at a given instant and runs `speed` times faster than real time
//!   (`tiercare run --simulate-from 2026-03-01T00:00:00Z --speed 86400` lives one simulated day
//!   per second). Used to try rules and templates on a month of mail, and by end-to-end tests of
//!   the real binary.
//! - [`TestClock`]: stands still until a test steps it (forwards or backwards).
//!
//! A clock gives the time in unix seconds and says how long to wait, in real time, until it
//! reads a given time; the daemon waits on its event channel for that long, so a signal or a
//! rule change still wakes it at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A source of "now" for the daemon.
pub trait Clock: Send + Sync {
    /// The time now, unix seconds UTC.
    fn now(&self) -> i64;

    /// How long to wait in real time until [`Clock::now`] reads `at` (zero when it already does).
    fn real_until(&self, at: i64) -> Duration;

    /// A short description for logs and `tiercare status` (`system`, `simulated ...`).
    fn describe(&self) -> String;
}

/// The system's real time.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| {
                i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX)
            })
    }

    fn real_until(&self, at: i64) -> Duration {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let at = Duration::from_secs(u64::try_from(at).unwrap_or(0));
        at.saturating_sub(now)
    }

    fn describe(&self) -> String {
        "system".to_owned()
    }
}

/// Simulated time: `start` at creation, then `speed` simulated seconds per real second.
#[derive(Debug, Clone)]
pub struct SimulatedClock {
    start: i64,
    speed: f64,
    origin: Instant,
}

impl SimulatedClock {
    /// A clock that reads `start` now and runs `speed` times faster than real time (`speed` is
    /// at least 1e-3).
    pub fn new(start: i64, speed: f64) -> SimulatedClock {
        SimulatedClock {
            start,
            speed: speed.max(1e-3),
            origin: Instant::now(),
        }
    }
}

impl Clock for SimulatedClock {
    fn now(&self) -> i64 {
        let elapsed = self.origin.elapsed().as_secs_f64() * self.speed;
        #[expect(
            clippy::cast_possible_truncation,
            reason = "simulated seconds since start fit an i64 for any practical run"
        )]
        let elapsed = elapsed.floor() as i64;
        self.start.saturating_add(elapsed)
    }

    fn real_until(&self, at: i64) -> Duration {
        #[expect(
            clippy::cast_precision_loss,
            reason = "an offset in seconds from the start, far below 2^52"
        )]
        let target = (at.saturating_sub(self.start)) as f64 / self.speed;
        let elapsed = self.origin.elapsed().as_secs_f64();
        Duration::from_secs_f64((target - elapsed).max(0.0))
    }

    fn describe(&self) -> String {
        format!(
            "simulated from {} at {}x",
            crate::time::format_time(self.start),
            self.speed
        )
    }
}

/// A clock that moves only when told to. Clones share the time.
#[derive(Debug, Clone, Default)]
pub struct TestClock {
    now: Arc<AtomicI64>,
}

impl TestClock {
    /// A clock reading `now`.
    pub fn new(now: i64) -> TestClock {
        TestClock {
            now: Arc::new(AtomicI64::new(now)),
        }
    }

    /// Sets the time (forwards or backwards).
    pub fn set(&self, now: i64) {
        self.now.store(now, Ordering::SeqCst);
    }

    /// Moves the time by `seconds` (negative steps it back).
    pub fn advance(&self, seconds: i64) {
        self.now.fetch_add(seconds, Ordering::SeqCst);
    }
}

impl Clock for TestClock {
    fn now(&self) -> i64 {
        self.now.load(Ordering::SeqCst)
    }

    fn real_until(&self, _at: i64) -> Duration {
        Duration::ZERO
    }

    fn describe(&self) -> String {
        "test".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_test_clock_steps_both_ways_and_clones_share_it() {
        let clock = TestClock::new(1_000);
        let other = clock.clone();
        clock.advance(86_400);
        assert_eq!(other.now(), 87_400);
        clock.set(10);
        assert_eq!(other.now(), 10);
        assert_eq!(clock.real_until(1_000_000), Duration::ZERO);
    }

    #[test]
    fn a_simulated_clock_waits_a_fraction_of_the_simulated_time() {
        let clock = SimulatedClock::new(1_700_000_000, 3_600.0);
        let now = clock.now();
        assert!((1_700_000_000..1_700_000_000 + 3_600 * 60).contains(&now));
        // One simulated hour ahead is at most one real second away.
        let wait = clock.real_until(now + 3_600);
        assert!(wait <= Duration::from_secs(1), "{wait:?}");
        assert_eq!(clock.real_until(now - 10), Duration::ZERO);
        assert!(clock.describe().contains("3600x"));
    }

    #[test]
    fn the_system_clock_is_near_the_real_time() {
        let clock = SystemClock;
        let now = clock.now();
        assert!(now > 1_700_000_000);
        assert_eq!(clock.real_until(now - 1), Duration::ZERO);
        assert!(clock.real_until(now + 10) <= Duration::from_secs(10));
    }
}
