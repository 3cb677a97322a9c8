//! The pure half of the delivery gate: whether an email the planner decided may go out now.
//!
//! The scheduler's delivery gate calls these for each claimed email right before it is handed to
//! a transport, with the customer's current data (features, tier, segments, the emails actually
//! sent); nothing here reads a clock, a file or the database.
//!
//! - [`next_allowed`]: the contact policy (send window in the customer's zone, minimum gap, caps
//!   per local day/week/month) counted against the emails actually **sent**, not those planned.
//! - [`Recheck::check`]: whether the email is still worth sending: not stale (past the rule's
//!   `max_delay` after its scheduled time), and its rule's filters (`tiers`, `segments`),
//!   `when` condition and trigger still hold on current data (a win-back is called off by a new
//!   order, an upgrade welcome by a downgrade).

use chrono::{Datelike, NaiveDate, NaiveTime, TimeZone};
use chrono_tz::Tz;

use crate::care::followup::{Event, TierPolicy, Trigger};
use crate::customer::feature::Feature;
use crate::customer::snapshot::{FeatureValue, Snapshot};
use crate::planning::plan::{CapPeriod, capped, local_instant, local_text, next_in_window};
use crate::tiering::evaluate::{Evaluator, Outcome};
use crate::tiering::rule_set::RuleSet;

/// The first time the contact policy lets an email go out, as [`next_allowed`] finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allowed {
    /// Unix seconds: `now` when the email may go out now.
    pub at: i64,
    /// Why it must wait (empty when `at` is `now`), one phrase per rule that moved it, such as
    /// `outside the send window 09:00-18:00 (Asia/Shanghai)`. Never names the customer.
    pub reasons: Vec<String>,
}

impl Allowed {
    /// Whether the email may go out now.
    #[must_use]
    pub fn now(&self) -> bool {
        self.reasons.is_empty()
    }
}

/// The first time at or after `now` at which `policy` lets an email go to a customer whose
/// emails went out at `sent` (unix seconds), on the wall clock of `tz`: inside the send window,
/// at least the minimum gap after (and before) every sent email, and under every cap of its
/// local day, ISO week and month.
#[must_use]
pub fn next_allowed(policy: &TierPolicy, tz: Tz, sent: &[i64], now: i64) -> Allowed {
    let mut at = now;
    let mut reasons: Vec<String> = Vec::new();
    let mut because = |reason: String| {
        if !reasons.contains(&reason) {
            reasons.push(reason);
        }
    };
    for _ in 0..64 {
        if let Some(window) = &policy.send_window {
            let next = next_in_window(at, window, tz);
            if next != at {
                because(format!(
                    "outside the send window {}-{} ({})",
                    window.start.format("%H:%M"),
                    window.end.format("%H:%M"),
                    tz.name()
                ));
                at = next;
            }
        }
        if let Some(gap) = policy.min_gap
            && let Some(blocker) = sent
                .iter()
                .copied()
                .filter(|other| (at - other).abs() < gap)
                .max()
        {
            because(format!(
                "the minimum gap of {} after the email sent {}",
                duration_text(gap),
                local_text(blocker, tz)
            ));
            at = blocker + gap;
            continue;
        }
        if let Some((period, limit)) = capped(&policy.caps, sent, at, tz) {
            because(format!(
                "the cap of {limit} email(s) per {} is reached",
                match period {
                    CapPeriod::Day => "day",
                    CapPeriod::Week => "week",
                    CapPeriod::Month => "month",
                }
            ));
            at = next_period_start(at, period, tz).max(at + 1);
            continue;
        }
        break;
    }
    Allowed { at, reasons }
}

/// The start (local midnight) of the day, ISO week or month after the one holding `at`.
fn next_period_start(at: i64, period: CapPeriod, tz: Tz) -> i64 {
    let day = tz
        .timestamp_opt(at, 0)
        .single()
        .map_or(NaiveDate::MIN, |t| t.date_naive());
    let next = match period {
        CapPeriod::Day => day.succ_opt(),
        CapPeriod::Week => day.checked_add_days(chrono::Days::new(
            7 - u64::from(day.weekday().num_days_from_monday()),
        )),
        CapPeriod::Month => {
            let (year, month) = if day.month() == 12 {
                (day.year() + 1, 1)
            } else {
                (day.year(), day.month() + 1)
            };
            NaiveDate::from_ymd_opt(year, month, 1)
        }
    };
    next.and_then(|date| local_instant(date, NaiveTime::MIN, tz))
        .unwrap_or(at + 86_400)
}

/// `2d`, `36h`, `90m`.
fn duration_text(seconds: i64) -> String {
    if seconds % 86_400 == 0 {
        format!("{}d", seconds / 86_400)
    } else if seconds % 3_600 == 0 {
        format!("{}h", seconds / 3_600)
    } else {
        format!("{}m", seconds / 60)
    }
}

/// What the gate knows of an email's follow-up and of the customer now, for [`Recheck::check`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Current {
    /// The customer's current (stored) tier.
    pub tier: Option<String>,
    /// The customer's current segments, `(set, segment)`.
    pub segments: Vec<(String, String)>,
    /// For a tier trigger: the tier the change at the occurrence time moved the customer to
    /// (`Some(None)`: to no tier); `None` when not known.
    pub tier_entered: Option<Option<String>>,
    /// Emails to the customer actually sent (unix seconds), for `no_contact`.
    pub sent: Vec<i64>,
}

/// Why an email is no longer sent, as [`Recheck::check`] finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Still true: send it (rendered again from current data).
    Holds,
    /// Past its `max_delay`.
    Stale(String),
    /// Its rule, condition or trigger no longer holds (or the rule is gone).
    NoLonger(String),
}

/// Re-checks follow-ups on current data, email after email, reusing an [`Evaluator`].
#[derive(Debug)]
pub struct Recheck<'r> {
    evaluator: Evaluator<'r>,
}

impl<'r> Recheck<'r> {
    /// A re-checker for `rules`.
    #[must_use]
    pub fn new(rules: &'r RuleSet) -> Recheck<'r> {
        Recheck {
            evaluator: rules.evaluator(),
        }
    }

    /// The latest time an email of rule `rule_id` scheduled at `scheduled_at` may go out
    /// (`scheduled_at` plus the rule's `max_delay`); `None` when the rule is not in the rules.
    #[must_use]
    pub fn deadline(&self, rule_id: &str, scheduled_at: i64) -> Option<i64> {
        let rules = self.evaluator.rules;
        rules
            .followups
            .iter()
            .find(|followup| followup.rule.id == rule_id)
            .map(|followup| scheduled_at.saturating_add(followup.rule.max_delay()))
    }

    /// Whether the email of the follow-up of rule `rule_id` that occurred at `occurrence_at`
    /// and was scheduled for `scheduled_at` is still worth sending at `now`, for the customer
    /// whose features now are `snapshot` (in zone `tz`, for dates in reasons) and whose tier,
    /// segments and sent emails are `current`.
    pub fn check(
        &mut self,
        rule_id: &str,
        (occurrence_at, scheduled_at): (i64, i64),
        snapshot: &Snapshot,
        current: &Current,
        now: i64,
        tz: Tz,
    ) -> Verdict {
        let rules = self.evaluator.rules;
        let Some(followup) = rules
            .followups
            .iter()
            .find(|followup| followup.rule.id == rule_id)
        else {
            return Verdict::NoLonger(format!(
                "no longer true: the follow-up rule `{rule_id}` is no longer in the rules"
            ));
        };
        let rule = &followup.rule;
        let max_delay = rule.max_delay();
        if now > scheduled_at.saturating_add(max_delay) {
            return Verdict::Stale(format!(
                "stale: due {}, more than its max_delay of {} ago",
                local_text(scheduled_at, tz),
                duration_text(max_delay)
            ));
        }
        if !rule.tiers.is_empty()
            && !current
                .tier
                .as_ref()
                .is_some_and(|tier| rule.tiers.contains(tier))
        {
            return Verdict::NoLonger(format!(
                "no longer true: the customer is now in {}, not in the rule's tiers",
                tier_text(current.tier.as_ref())
            ));
        }
        if let Some((set, segment)) = rule
            .segments
            .iter()
            .find(|wanted| !current.segments.contains(wanted))
        {
            return Verdict::NoLonger(format!(
                "no longer true: the customer left segment {set}: {segment}"
            ));
        }
        if let Some(expr) = &followup.when {
            self.evaluator.start_customer();
            let mut errors = Vec::new();
            self.evaluator.compute_scores(snapshot, &mut errors);
            match self.evaluator.condition(expr, snapshot) {
                Outcome::Matched => {}
                Outcome::NotMatched => {
                    return Verdict::NoLonger(format!(
                        "no longer true: its condition `{}` does not hold now",
                        rule.when.as_deref().unwrap_or_default().trim()
                    ));
                }
                Outcome::Failed(error) => {
                    return Verdict::NoLonger(format!(
                        "no longer true: its condition failed now: {}",
                        error.message
                    ));
                }
            }
        }
        let Trigger::Event(event) = &rule.trigger else {
            return Verdict::Holds;
        };
        let rank = |tier: Option<&String>| tier.and_then(|tier| rules.tier_rank(tier));
        match event {
            Event::NoOrder { after } => {
                if let FeatureValue::Int(last) = snapshot.get(Feature::LastOrderAt)
                    && last > occurrence_at - after
                {
                    return Verdict::NoLonger(format!(
                        "no longer true: the customer ordered on {}",
                        local_text(last, tz)
                    ));
                }
            }
            Event::NoContact { after } => {
                let last = match snapshot.get(Feature::LastContactAt) {
                    FeatureValue::Int(at) => Some(at),
                    _ => None,
                }
                .into_iter()
                .chain(current.sent.iter().copied())
                .max();
                if let Some(last) = last
                    && last > occurrence_at - after
                {
                    return Verdict::NoLonger(format!(
                        "no longer true: the customer was contacted on {}",
                        local_text(last, tz)
                    ));
                }
            }
            Event::TierEntered | Event::TierUp | Event::TierDown => {
                if let Some(entered) = &current.tier_entered {
                    let now_tier = current.tier.as_ref();
                    let left = match event {
                        Event::TierEntered => now_tier != entered.as_ref(),
                        Event::TierUp => match (rank(entered.as_ref()), rank(now_tier)) {
                            (Some(then), Some(now)) => now > then,
                            (Some(_), None) => true,
                            _ => false,
                        },
                        _ => match (rank(entered.as_ref()), rank(now_tier)) {
                            (Some(then), Some(now)) => now < then,
                            (None, Some(_)) => true,
                            _ => false,
                        },
                    };
                    if left {
                        return Verdict::NoLonger(format!(
                            "no longer true: the customer moved from {} to {} since",
                            tier_text(entered.as_ref()),
                            tier_text(now_tier)
                        ));
                    }
                }
            }
            Event::SegmentEntered { set, segment } => {
                if !current
                    .segments
                    .iter()
                    .any(|(s, seg)| s == set && seg == segment)
                {
                    return Verdict::NoLonger(format!(
                        "no longer true: the customer left segment {set}: {segment}"
                    ));
                }
            }
            Event::Birthday { .. }
            | Event::Anniversary { .. }
            | Event::Complaint
            | Event::LowSatisfaction { .. } => {}
        }
        Verdict::Holds
    }
}

fn tier_text(tier: Option<&String>) -> String {
    tier.map_or_else(|| "no tier".to_owned(), |tier| format!("tier {tier}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::care::followup::{Caps, SendWindow};
    use chrono::Weekday;

    fn at(text: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(text)
            .unwrap()
            .timestamp()
    }

    fn office_hours() -> TierPolicy {
        TierPolicy {
            sms_caps: None,
            caps: Caps::default(),
            min_gap: None,
            send_window: Some(SendWindow {
                start: NaiveTime::from_hms_opt(9, 0, 0).unwrap(),
                end: NaiveTime::from_hms_opt(18, 0, 0).unwrap(),
                days: vec![
                    Weekday::Mon,
                    Weekday::Tue,
                    Weekday::Wed,
                    Weekday::Thu,
                    Weekday::Fri,
                ],
            }),
        }
    }

    #[test]
    fn outside_the_window_waits_for_its_next_start_in_the_customers_zone() {
        let shanghai: Tz = "Asia/Shanghai".parse().unwrap();
        // Tuesday 02:00 in Shanghai.
        let now = at("2026-12-07T18:00:00Z");
        let allowed = next_allowed(&office_hours(), shanghai, &[], now);
        assert_eq!(allowed.at, at("2026-12-08T01:00:00Z"), "09:00 Shanghai");
        assert_eq!(
            allowed.reasons,
            ["outside the send window 09:00-18:00 (Asia/Shanghai)"]
        );
        // Inside the window: now.
        let inside = next_allowed(&office_hours(), shanghai, &[], at("2026-12-08T02:00:00Z"));
        assert!(inside.now());
        // Friday 19:00 in New York waits for Monday 09:00.
        let new_york: Tz = "America/New_York".parse().unwrap();
        let friday = at("2026-12-12T00:00:00Z");
        assert_eq!(
            next_allowed(&office_hours(), new_york, &[], friday).at,
            at("2026-12-14T14:00:00Z")
        );
    }

    fn rules() -> RuleSet {
        let text = "\
tiering:
  window: 365d
  tiers:
    - { id: A, when: revenue_window > 1000.0 }
    - { id: B, when: revenue_window > 100.0 }
    - { id: C, when: true }
followups:
  - id: welcome
    on: tier_up
    email: { template: welcome }
  - id: greeting
    on: birthday
    email: { template: birthday }
  - id: win-back
    on: { event: no_order, after: 90d }
    when: orders_window >= 1
    email: { template: win-back }
";
        crate::load_rules(&[crate::RuleFile::new("rules/r.yaml", text)])
            .unwrap()
            .rules
    }

    #[test]
    fn a_follow_up_is_rechecked_on_current_data() {
        let rules = rules();
        let mut recheck = Recheck::new(&rules);
        let utc: Tz = "UTC".parse().unwrap();
        let day = 86_400;
        let t0 = at("2026-11-01T10:00:00Z");
        let mut snapshot = Snapshot::new();
        snapshot.set_int(Feature::OrdersWindow, 1);
        snapshot.set_time(Feature::LastOrderAt, Some(t0 - 90 * day));
        let mut current = Current {
            tier: Some("B".to_owned()),
            tier_entered: Some(Some("B".to_owned())),
            ..Current::default()
        };
        let check =
            |recheck: &mut Recheck<'_>,
             rule: &str,
             current: &Current,
             snapshot: &Snapshot,
             now: i64| { recheck.check(rule, (t0, t0), snapshot, current, now, utc) };
        assert_eq!(
            check(&mut recheck, "welcome", &current, &snapshot, t0 + day),
            Verdict::Holds
        );
        current.tier = Some("C".to_owned());
        let down = check(&mut recheck, "welcome", &current, &snapshot, t0 + day);
        assert_eq!(
            down,
            Verdict::NoLonger(
                "no longer true: the customer moved from tier B to tier C since".to_owned()
            )
        );
        // A birthday greeting is stale a day after its time, by default.
        assert_eq!(
            check(&mut recheck, "greeting", &current, &snapshot, t0 + day - 1),
            Verdict::Holds
        );
        assert!(matches!(
            check(&mut recheck, "greeting", &current, &snapshot, t0 + day + 1),
            Verdict::Stale(reason) if reason.contains("max_delay of 1d")
        ));
        // A win-back: still true, then cancelled by an order, or by its condition.
        assert_eq!(
            check(&mut recheck, "win-back", &current, &snapshot, t0 + day),
            Verdict::Holds
        );
        let mut ordered = snapshot.clone();
        ordered.set_time(Feature::LastOrderAt, Some(t0 + 3_600));
        assert!(matches!(
            check(&mut recheck, "win-back", &current, &ordered, t0 + day),
            Verdict::NoLonger(reason) if reason.contains("ordered on 2026-11-01 11:00")
        ));
        let mut none = snapshot.clone();
        none.set_int(Feature::OrdersWindow, 0);
        assert!(matches!(
            check(&mut recheck, "win-back", &current, &none, t0 + day),
            Verdict::NoLonger(reason) if reason.contains("orders_window >= 1")
        ));
        assert!(matches!(
            check(&mut recheck, "gone", &current, &snapshot, t0),
            Verdict::NoLonger(reason) if reason.contains("`gone` is no longer in the rules")
        ));
    }

    #[test]
    fn the_gap_and_the_caps_count_sent_emails() {
        let sydney: Tz = "Australia/Sydney".parse().unwrap();
        let policy = TierPolicy {
            caps: Caps {
                day: Some(1),
                week: None,
                month: None,
            },
            min_gap: Some(3_600),
            send_window: None,
            sms_caps: None,
        };
        let now = at("2026-12-08T00:00:00Z"); // 11:00 in Sydney (AEDT)
        let gap = next_allowed(&policy, sydney, &[now - 600], now);
        // The day cap holds it until the next local midnight, after the gap.
        assert_eq!(gap.at, at("2026-12-08T13:00:00Z"));
        assert_eq!(gap.reasons.len(), 2, "{:?}", gap.reasons);
        let free = next_allowed(&policy, sydney, &[now - 86_400], now);
        assert!(free.now(), "{free:?}");
    }
}
