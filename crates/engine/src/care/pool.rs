//! The public pool (公海): customers whose owner does not follow up go back to the pool, with a
//! warning first, and go through assignment again.
//!
//! A rule file may hold one `pool:` section:
//!
//! ```yaml
//! pool:
//!   warn_before: 5d          # default warning for every tier below
//!   warn_task: true          # a warning also gives the owner a task, due at the reclaim
//!   no_return: 30d           # a reclaimed customer is not assigned back to that owner within 30 days
//!   claims_per_day: 20       # customers one manager is given by assignment per day, at most
//!   protect:
//!     pinned: true           # customers with an active tier pin are never reclaimed (default)
//!     attribute: key_account # nor customers whose attribute `key_account` is true
//!   tiers:
//!     A: { no_followup: 30d, no_order: 120d, warn_before: 7d }
//!     B: { no_followup: 45d }
//! ```
//!
//! For an owned customer of a tier the section names, each period runs from the later of the
//! day the owner got the customer and the last event it measures: the owner's last
//! **follow-up** for `no_followup` (an interaction the owner logged, of any kind, or a task on
//! the customer done by or assigned to the owner; e-mails tiercare sends do not count) and the
//! customer's last order for `no_order`. The customer is due back in the pool when the first
//! period ends ([`Pool::due`]); the owner is warned `warn_before` earlier, and a customer is
//! reclaimed only once their warning has been recorded and `warn_before` has passed since it
//! ([`Pool::step`]), so a warning always comes first, even after the daemon was down. A
//! follow-up moves the due time and starts a new cycle (a new warning when it nears).
//!
//! Pure: the caller reads the facts and the clock and writes the outcome.

use serde::Serialize;

use crate::text::location::Location;

/// Seconds in a day.
const DAY: i64 = 86_400;

/// `pool.tiers.<tier>`: when one tier's customers go back to the pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TierReclaim {
    /// The tier.
    pub tier: String,
    /// Seconds without a follow-up by the owner before the customer is reclaimed.
    pub no_followup: Option<i64>,
    /// Seconds without an order before the customer is reclaimed.
    pub no_order: Option<i64>,
    /// Seconds before the reclaim that the owner is warned.
    pub warn_before: i64,
    /// Where the tier's key is.
    pub location: Location,
}

/// `pool:` the public pool's rules (empty: nothing is ever reclaimed).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Pool {
    /// The tiers whose customers can be reclaimed, in the rules' tier order.
    pub tiers: Vec<TierReclaim>,
    /// Seconds during which a reclaimed customer is not assigned back to the previous owner.
    pub no_return: i64,
    /// Customers one manager is given by assignment per day, at most; `None`: no cap.
    pub claims_per_day: Option<u64>,
    /// Whether customers with an active tier pin are protected (never reclaimed).
    pub protect_pinned: bool,
    /// Customers whose attribute of this name is true are protected.
    pub protect_attribute: Option<String>,
    /// Whether a warning also gives the owner a task, due at the reclaim time.
    pub warn_task: bool,
}

/// What the pool needs to know about one owned customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedFacts<'a> {
    /// The customer's tier.
    pub tier: &'a str,
    /// When the owner got the customer.
    pub owner_since: i64,
    /// The owner's last follow-up, if any.
    pub last_followup: Option<i64>,
    /// The customer's last order, if any.
    pub last_order: Option<i64>,
    /// Whether a tier pin is active.
    pub pinned: bool,
    /// Whether the protecting attribute is true.
    pub protected: bool,
}

/// When and why a customer is due back in the pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReclaimDue {
    /// When the first period ends.
    pub reclaim_at: i64,
    /// When the owner is warned.
    pub warn_at: i64,
    /// The tier's `warn_before`.
    pub warn_before: i64,
    /// `no follow-up` or `no order`.
    pub cause: &'static str,
    /// When the period started (the owner got the customer, or the last follow-up or order).
    pub since: i64,
    /// The period, in seconds.
    pub period: i64,
}

impl ReclaimDue {
    /// The warning's words: `no follow-up for 30 days`.
    #[must_use]
    pub fn warning(&self) -> String {
        format!("{} for {}", self.cause, days(self.period))
    }

    /// The reclaim's words at `at`: `reclaimed: no follow-up for 31 days` (whole days since
    /// the period started).
    #[must_use]
    pub fn reclaim(&self, at: i64) -> String {
        format!("reclaimed: {} for {}", self.cause, days(at - self.since))
    }
}

fn days(seconds: i64) -> String {
    let days = seconds.div_euclid(DAY);
    if days == 1 {
        "1 day".to_owned()
    } else {
        format!("{days} days")
    }
}

/// What one pass does for one customer ([`Pool::step`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PoolStep {
    /// Record a warning: `(reclaim_at, reason)`.
    pub warn: Option<(i64, String)>,
    /// Reclaim with this reason.
    pub reclaim: Option<String>,
    /// The next time something is due for this customer if nothing changes (a warning or a
    /// reclaim), when it is later than now.
    pub next: Option<i64>,
}

impl Pool {
    /// Whether the section names at least one tier.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.tiers.is_empty()
    }

    /// What the section says about `tier`, if it names it.
    #[must_use]
    pub fn for_tier(&self, tier: &str) -> Option<&TierReclaim> {
        self.tiers.iter().find(|rule| rule.tier == tier)
    }

    /// When the customer is due back in the pool; `None` when never (a tier the section does
    /// not name, or a pinned or protected customer).
    #[must_use]
    pub fn due(&self, facts: &OwnedFacts<'_>) -> Option<ReclaimDue> {
        let rule = self.for_tier(facts.tier)?;
        if facts.protected || (self.protect_pinned && facts.pinned) {
            return None;
        }
        let since =
            |last: Option<i64>| last.map_or(facts.owner_since, |t| t.max(facts.owner_since));
        let candidates = [
            rule.no_followup
                .map(|period| ("no follow-up", since(facts.last_followup), period)),
            rule.no_order
                .map(|period| ("no order", since(facts.last_order), period)),
        ];
        candidates
            .into_iter()
            .flatten()
            .min_by_key(|(_, since, period)| since + period)
            .map(|(cause, since, period)| ReclaimDue {
                reclaim_at: since + period,
                warn_at: since + period - rule.warn_before,
                warn_before: rule.warn_before,
                cause,
                since,
                period,
            })
    }

    /// What a pass at `at` does for a customer with `facts` whose latest warning (for this
    /// owner) is `warning`: `(reclaim_at, warned_at)`. A warning is recorded once the warning
    /// time has come; the customer is reclaimed once their cycle's warning is recorded and
    /// both the due time and `warn_before` after the warning have passed.
    #[must_use]
    pub fn step(&self, facts: &OwnedFacts<'_>, warning: Option<(i64, i64)>, at: i64) -> PoolStep {
        let Some(due) = self.due(facts) else {
            return PoolStep::default();
        };
        let mut step = PoolStep::default();
        let warned_at = match warning {
            Some((reclaim_at, warned_at)) if reclaim_at == due.reclaim_at => Some(warned_at),
            _ if at >= due.warn_at => {
                step.warn = Some((due.reclaim_at, due.warning()));
                Some(at)
            }
            _ => None,
        };
        match warned_at {
            None => step.next = Some(due.warn_at),
            Some(warned_at) => {
                let reclaim_at = due.reclaim_at.max(warned_at + due.warn_before);
                if at >= reclaim_at {
                    step.reclaim = Some(due.reclaim(at));
                } else {
                    step.next = Some(reclaim_at);
                }
            }
        }
        step
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool() -> Pool {
        let location = Location {
            path: "rules/pool.yaml".to_owned(),
            line: 1,
            column: 1,
        };
        Pool {
            tiers: vec![TierReclaim {
                tier: "A".into(),
                no_followup: Some(30 * DAY),
                no_order: Some(90 * DAY),
                warn_before: 5 * DAY,
                location,
            }],
            no_return: 30 * DAY,
            claims_per_day: Some(2),
            protect_pinned: true,
            protect_attribute: None,
            warn_task: false,
        }
    }

    fn facts(tier: &str) -> OwnedFacts<'_> {
        OwnedFacts {
            tier,
            owner_since: 0,
            last_followup: None,
            last_order: None,
            pinned: false,
            protected: false,
        }
    }

    #[test]
    fn the_first_period_to_end_decides_and_follow_ups_move_it() {
        let pool = pool();
        let due = pool.due(&facts("A")).unwrap();
        assert_eq!(
            (due.reclaim_at, due.warn_at, due.cause),
            (30 * DAY, 25 * DAY, "no follow-up")
        );
        let mut followed = facts("A");
        followed.last_followup = Some(70 * DAY);
        followed.last_order = Some(-5 * DAY);
        let due = pool.due(&followed).unwrap();
        assert_eq!(
            (due.reclaim_at, due.cause),
            (90 * DAY, "no order"),
            "since the owner got them"
        );
        assert_eq!(due.warning(), "no order for 90 days");
        assert!(pool.due(&facts("B")).is_none(), "a tier not named");
    }

    #[test]
    fn pinned_and_protected_customers_are_never_due() {
        let pool = pool();
        let mut pinned = facts("A");
        pinned.pinned = true;
        assert!(pool.due(&pinned).is_none());
        let mut protected = facts("A");
        protected.protected = true;
        assert!(pool.due(&protected).is_none());
        let unprotected_pins = Pool {
            protect_pinned: false,
            ..pool
        };
        assert!(unprotected_pins.due(&pinned).is_some());
    }

    #[test]
    fn a_warning_comes_first_and_lasts_warn_before_even_when_late() {
        let pool = pool();
        let f = facts("A");
        let early = pool.step(&f, None, 10 * DAY);
        assert_eq!(
            (early.warn.is_some(), early.reclaim.is_some()),
            (false, false)
        );
        assert_eq!(early.next, Some(25 * DAY));
        // Late (the daemon was down): the warning now, the reclaim 5 days later.
        let late = pool.step(&f, None, 40 * DAY);
        assert_eq!(
            late.warn,
            Some((30 * DAY, "no follow-up for 30 days".into()))
        );
        assert_eq!((late.reclaim, late.next), (None, Some(45 * DAY)));
        let warned = Some((30 * DAY, 40 * DAY));
        assert_eq!(pool.step(&f, warned, 44 * DAY).reclaim, None);
        assert_eq!(
            pool.step(&f, warned, 45 * DAY).reclaim.as_deref(),
            Some("reclaimed: no follow-up for 45 days")
        );
        // A warning of an older cycle does not count: a new one is recorded.
        let mut followed = f.clone();
        followed.last_followup = Some(20 * DAY);
        let step = pool.step(&followed, Some((30 * DAY, 25 * DAY)), 46 * DAY);
        assert_eq!(step.warn.map(|(at, _)| at), Some(50 * DAY));
        assert_eq!(step.reclaim, None);
    }
}
