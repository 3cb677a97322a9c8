//! Which firing of a cron schedule is due now, given the last one handled.
//!
//! The daemon stores each schedule's last handled slot (see
//! [`tiercare_store::Store::advance_schedule`]) and asks [`due`] on every wake-up:
//!
//! - slots after the last handled one and no later than now are *missed* slots (one, in normal
//!   running; many after downtime);
//! - if the latest missed slot is at most `lateness` old, it fires **once** (older missed slots
//!   are counted as skipped), so a daemon down for three days with a nightly schedule reassesses
//!   once, not three times;
//! - if every missed slot is older than `lateness`, nothing fires: they are skipped and logged;
//! - with no slot handled yet (the first start), slots older than `lateness` are not made up;
//! - a clock stepped backwards has no missed slot (they are all at or before the last handled
//!   one), so nothing fires again.
//!
//! Daylight-saving gaps and repeats fire once because [`Schedule::next_after`] yields each
//! firing once.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use tiercare_engine::schedule::Schedule;

/// At most this many missed slots are counted (a `* * * * * *` schedule after a month down
/// would have millions); the count says "at least" beyond it.
pub const COUNT_LIMIT: usize = 100_000;

/// What a schedule asks for now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// Nothing missed.
    Nothing,
    /// Fire once for `slot`; `skipped` earlier missed slots were too late to make up.
    Fire {
        /// The slot that fires (the latest missed one).
        slot: i64,
        /// Earlier missed slots, not made up.
        skipped: usize,
    },
    /// Every missed slot is older than the lateness allowed: nothing fires.
    Skip {
        /// The latest missed slot.
        slot: i64,
        /// How many (at most [`COUNT_LIMIT`]).
        count: usize,
    },
}

fn instant(unix: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(unix, 0).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// What `schedule` (on the wall clock of `tz`) asks for at `now`, when `last_slot` was the last
/// slot handled (`None`: never) and a missed slot may be made up at most `lateness` seconds late.
pub fn due(schedule: &Schedule, tz: Tz, last_slot: Option<i64>, now: i64, lateness: i64) -> Due {
    let window_start = now.saturating_sub(lateness.max(0));
    let cursor = last_slot.unwrap_or(window_start);
    if cursor >= now {
        return Due::Nothing;
    }
    // The latest slot in (max(cursor, now - lateness), now], if any, fires.
    let mut latest_in_window = None;
    let mut from = instant(cursor.max(window_start));
    while let Some(next) = schedule.next_after(from, tz) {
        if next.timestamp() > now {
            break;
        }
        latest_in_window = Some(next.timestamp());
        from = next;
    }
    let older = |to: i64| {
        if cursor >= to {
            return Vec::new();
        }
        schedule.between(instant(cursor), instant(to), tz, COUNT_LIMIT)
    };
    match latest_in_window {
        Some(slot) => Due::Fire {
            slot,
            skipped: older(window_start).len(),
        },
        None => {
            let missed = older(window_start);
            match missed.last() {
                Some(last) => Due::Skip {
                    slot: if missed.len() >= COUNT_LIMIT {
                        window_start
                    } else {
                        last.timestamp()
                    },
                    count: missed.len(),
                },
                None => Due::Nothing,
            }
        }
    }
}

/// The first slot of `schedule` after `after`.
pub fn next_slot(schedule: &Schedule, tz: Tz, after: i64) -> Option<i64> {
    schedule
        .next_after(instant(after), tz)
        .map(|next| next.timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    const HOUR: i64 = 3_600;
    const DAY: i64 = 86_400;

    fn at(tz: Tz, y: i32, mo: u32, d: u32, h: u32, mi: u32) -> i64 {
        tz.with_ymd_and_hms(y, mo, d, h, mi, 0)
            .earliest()
            .unwrap()
            .timestamp()
    }

    fn nightly() -> Schedule {
        Schedule::parse("0 2 * * *").unwrap()
    }

    #[test]
    fn a_slot_just_passed_fires_once_and_not_again() {
        let tz = chrono_tz::UTC;
        let slot = at(tz, 2026, 3, 1, 2, 0);
        let last = slot - DAY;
        assert_eq!(
            due(&nightly(), tz, Some(last), slot + 5, HOUR),
            Due::Fire { slot, skipped: 0 }
        );
        // Once handled, the same time (or a restart a minute later) has nothing to do.
        assert_eq!(
            due(&nightly(), tz, Some(slot), slot + 60, HOUR),
            Due::Nothing
        );
    }

    #[test]
    fn after_downtime_the_missed_run_is_made_up_once_within_lateness() {
        let tz = chrono_tz::UTC;
        let first = at(tz, 2026, 3, 1, 2, 0);
        // Down from the 1st to 02:30 on the 4th: three nights missed, the last 30 min ago.
        let now = at(tz, 2026, 3, 4, 2, 30);
        assert_eq!(
            due(&nightly(), tz, Some(first), now, HOUR),
            Due::Fire {
                slot: at(tz, 2026, 3, 4, 2, 0),
                skipped: 2
            }
        );
        // Back at noon: the 02:00 run is 10 hours late, beyond an hour's lateness: skipped.
        let noon = at(tz, 2026, 3, 4, 12, 0);
        assert_eq!(
            due(&nightly(), tz, Some(first), noon, HOUR),
            Due::Skip {
                slot: at(tz, 2026, 3, 4, 2, 0),
                count: 3
            }
        );
        // With a day's lateness it is made up, once.
        assert!(matches!(
            due(&nightly(), tz, Some(first), noon, DAY),
            Due::Fire { skipped: 2, .. }
        ));
    }

    #[test]
    fn the_first_start_makes_up_only_what_is_within_lateness() {
        let tz = chrono_tz::UTC;
        let now = at(tz, 2026, 3, 4, 2, 30);
        assert!(matches!(
            due(&nightly(), tz, None, now, HOUR),
            Due::Fire { skipped: 0, .. }
        ));
        assert_eq!(
            due(&nightly(), tz, None, at(tz, 2026, 3, 4, 12, 0), HOUR),
            Due::Nothing
        );
    }

    #[test]
    fn a_clock_stepped_backwards_fires_nothing_again() {
        let tz = chrono_tz::UTC;
        let slot = at(tz, 2026, 3, 4, 2, 0);
        for back in [1, HOUR, DAY, 30 * DAY] {
            assert_eq!(
                due(&nightly(), tz, Some(slot), slot - back, DAY),
                Due::Nothing
            );
        }
    }

    #[test]
    fn daylight_saving_gaps_and_repeats_fire_once() {
        let tz = chrono_tz::America::New_York;
        // 02:30 does not exist on 2026-03-08 (the gap): one firing, at 03:00 EDT.
        let schedule = Schedule::parse("30 2 * * *").unwrap();
        let before = at(tz, 2026, 3, 7, 2, 30);
        let mut fired = Vec::new();
        let mut last = before;
        // Step the clock every 10 minutes through two days.
        for step in 1..=(2 * 24 * 6) {
            let now = before + step * 600;
            if let Due::Fire { slot, .. } = due(&schedule, tz, Some(last), now, HOUR) {
                fired.push(slot);
                last = slot;
            }
        }
        assert_eq!(fired.len(), 2, "{fired:?}");
        assert_eq!(fired[0], at(tz, 2026, 3, 8, 3, 0));

        // 01:30 happens twice on 2026-11-01 (the repeat): fired once.
        let schedule = Schedule::parse("30 1 * * *").unwrap();
        let before = at(tz, 2026, 10, 31, 12, 0);
        let mut fired = Vec::new();
        let mut last = before;
        for step in 1..=(24 * 6) {
            let now = before + step * 600;
            if let Due::Fire { slot, .. } = due(&schedule, tz, Some(last), now, HOUR) {
                fired.push(slot);
                last = slot;
            }
        }
        assert_eq!(fired, [at(tz, 2026, 11, 1, 1, 30)]);
    }

    #[test]
    fn next_slot_is_the_following_firing() {
        let tz = chrono_tz::UTC;
        let slot = at(tz, 2026, 3, 4, 2, 0);
        assert_eq!(next_slot(&nightly(), tz, slot), Some(slot + DAY));
    }
}
