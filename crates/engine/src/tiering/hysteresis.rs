//! Hysteresis: when a downgrade the rules ask for applies (`tiering.hysteresis`).
//!
//! A downgrade (the rules ask for a lower tier than the stored one, or for none) is held until
//! the customer has asked for a lower tier long enough; an upgrade or the same tier applies at
//! once. What counts is time, measured on the assessments' times (`at`), never the number of
//! runs alone:
//!
//! - `downgrade_after: 30d` (a duration): the downgrade applies at the first assessment at least
//!   that long after the first assessment that asked for it, if every assessment in between
//!   asked for a lower tier too (one that did not resets the hold).
//! - `downgrade_after: N` (a count, `1` to `1000`): the downgrade applies at the `N`-th
//!   assessment in a row that asks for it, but the count grows by at most one per full day
//!   since the first of them: the count is `min(count before + 1, 1 + whole days since the
//!   first)`. Two assessments a minute apart count once.
//!
//! The stored state is the pending count and the time the held downgrade was first asked for
//! (`pending_since`). A snapshot without the assessment's time (rule tests) counts every
//! assessment, and holds a duration's downgrade.

use std::fmt;

use serde::{Serialize, Serializer};

/// Seconds in a day.
const DAY: i64 = 86_400;

/// How long a downgrade is held, from `tiering.hysteresis.downgrade_after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DowngradeAfter {
    /// This many assessments in a row, counted at most once per day (1: at once).
    Count(u32),
    /// Asked for continuously for this long (seconds), on the assessments' times.
    Duration(i64),
}

impl Default for DowngradeAfter {
    fn default() -> Self {
        DowngradeAfter::Count(1)
    }
}

impl DowngradeAfter {
    /// Whether downgrades apply at once (`downgrade_after: 1`, or no hysteresis).
    #[must_use]
    pub fn is_immediate(self) -> bool {
        matches!(self, DowngradeAfter::Count(n) if n <= 1)
    }
}

/// `2` or `30d` (`36h` when not whole days), as written in rule files.
impl fmt::Display for DowngradeAfter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            DowngradeAfter::Count(n) => write!(f, "{n}"),
            DowngradeAfter::Duration(seconds) => write!(f, "{}", duration_text(seconds)),
        }
    }
}

/// A count as a number, a duration as its text (`30d`).
impl Serialize for DowngradeAfter {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match *self {
            DowngradeAfter::Count(n) => serializer.serialize_u32(n),
            DowngradeAfter::Duration(_) => serializer.collect_str(self),
        }
    }
}

/// `30d`, `36h`, `90m` or `45s`: the largest unit that divides `seconds`.
pub(crate) fn duration_text(seconds: i64) -> String {
    for (unit, size) in [("d", DAY), ("h", 3_600), ("m", 60)] {
        if seconds % size == 0 {
            return format!("{}{unit}", seconds / size);
        }
    }
    format!("{seconds}s")
}

/// The hysteresis state before an assessment that asks for a downgrade.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Pending {
    /// The stored pending count (0: nothing pending).
    pub(crate) count: u32,
    /// When the held downgrade was first asked for (None: nothing pending, or stored before
    /// it was recorded).
    pub(crate) since: Option<i64>,
    /// This assessment's time, when known.
    pub(crate) at: Option<i64>,
}

/// What hysteresis decides about a downgrade the rules ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// The downgrade applies now.
    Applies,
    /// The downgrade is held: the new count and the time it was first asked for.
    Held {
        /// The new pending count.
        count: u32,
        /// When the held downgrade was first asked for (None when the time is unknown).
        since: Option<i64>,
    },
}

/// Decides a downgrade under `rule` given the state before (see the module documentation).
pub(crate) fn step(rule: DowngradeAfter, pending: Pending) -> Step {
    if rule.is_immediate() {
        return Step::Applies;
    }
    // A pending downgrade stored without its start (before it was recorded) starts now.
    let since = match (pending.count, pending.since) {
        (1.., Some(since)) => Some(since),
        _ => pending.at,
    };
    let elapsed = match (since, pending.at) {
        (Some(since), Some(at)) => Some((at - since).max(0)),
        _ => None,
    };
    let runs = pending.count.saturating_add(1);
    match rule {
        DowngradeAfter::Count(n) => {
            let count = match elapsed {
                Some(elapsed) => {
                    let per_day = u32::try_from(elapsed / DAY).unwrap_or(u32::MAX);
                    runs.min(per_day.saturating_add(1))
                }
                None => runs,
            };
            if count >= n {
                Step::Applies
            } else {
                Step::Held { count, since }
            }
        }
        DowngradeAfter::Duration(length) => match elapsed {
            Some(elapsed) if elapsed >= length => Step::Applies,
            _ => Step::Held { count: runs, since },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_764_547_200; // 2025-12-01 00:00 UTC

    fn at(count: u32, since: Option<i64>, at: i64) -> Pending {
        Pending {
            count,
            since,
            at: Some(at),
        }
    }

    #[test]
    fn runs_a_minute_apart_count_once() {
        let rule = DowngradeAfter::Count(2);
        let first = step(rule, at(0, None, T0));
        assert_eq!(
            first,
            Step::Held {
                count: 1,
                since: Some(T0)
            }
        );
        // A minute later: still one counted assessment.
        assert_eq!(
            step(rule, at(1, Some(T0), T0 + 60)),
            Step::Held {
                count: 1,
                since: Some(T0)
            }
        );
        // A day later: the second counts and the downgrade applies.
        assert_eq!(step(rule, at(1, Some(T0), T0 + DAY)), Step::Applies);
    }

    #[test]
    fn counts_grow_at_most_once_a_day() {
        let rule = DowngradeAfter::Count(3);
        let mut pending = Pending::default();
        // Hourly runs for a day and a half never reach 3.
        for hour in 0..36 {
            pending.at = Some(T0 + hour * 3_600);
            match step(rule, pending) {
                Step::Held { count, since } => {
                    assert!(count <= 2, "hour {hour}: {count}");
                    pending.count = count;
                    pending.since = since;
                }
                Step::Applies => panic!("applied at hour {hour}"),
            }
        }
        assert_eq!(step(rule, at(2, Some(T0), T0 + 2 * DAY)), Step::Applies);
    }

    #[test]
    fn a_duration_is_measured_on_the_assessments_times() {
        let rule = DowngradeAfter::Duration(30 * DAY);
        // Any number of runs inside the 30 days holds the downgrade.
        let mut pending = Pending::default();
        for day in [0, 0, 1, 7, 29] {
            pending.at = Some(T0 + day * DAY);
            let Step::Held { count, since } = step(rule, pending) else {
                panic!("applied on day {day}");
            };
            assert_eq!(since, Some(T0));
            pending.count = count;
            pending.since = since;
        }
        assert_eq!(pending.count, 5);
        pending.at = Some(T0 + 30 * DAY);
        assert_eq!(step(rule, pending), Step::Applies);
    }

    #[test]
    fn a_legacy_pending_count_without_its_start_starts_now() {
        let rule = DowngradeAfter::Duration(7 * DAY);
        assert_eq!(
            step(rule, at(4, None, T0)),
            Step::Held {
                count: 5,
                since: Some(T0)
            }
        );
    }

    #[test]
    fn without_the_assessment_time_counts_runs_and_holds_durations() {
        let unknown = Pending {
            count: 1,
            since: None,
            at: None,
        };
        assert_eq!(step(DowngradeAfter::Count(2), unknown), Step::Applies);
        assert_eq!(
            step(DowngradeAfter::Duration(DAY), unknown),
            Step::Held {
                count: 2,
                since: None
            }
        );
        assert_eq!(step(DowngradeAfter::Count(1), unknown), Step::Applies);
    }

    #[test]
    fn renders_as_written() {
        assert_eq!(DowngradeAfter::Count(2).to_string(), "2");
        assert_eq!(DowngradeAfter::Duration(30 * DAY).to_string(), "30d");
        assert_eq!(DowngradeAfter::Duration(36 * 3_600).to_string(), "36h");
        assert_eq!(
            serde_json::to_value(DowngradeAfter::Duration(2 * DAY)).unwrap(),
            "2d"
        );
        assert_eq!(serde_json::to_value(DowngradeAfter::Count(3)).unwrap(), 3);
    }
}
