//! Planning follow-ups for one customer over a time range: which rules fire when, after the
//! contact policy, each with a deterministic occurrence key.
//!
//! The planner is pure: the caller passes the customer's features (a [`Snapshot`]), what the
//! ledger knows ([`FollowUpState`]), the range `[from, to)` in unix seconds and the workspace's
//! time zone; it returns a [`Plan`]. Nothing is stored: the scheduler writes planned actions to
//! the ledger (unique on the occurrence key) and feeds them back as state next time.
//!
//! # Steps, in this order (deterministic)
//!
//! 1. **Time zone**: the rule's `timezone`, else the customer's `timezone` feature, else the
//!    workspace's (an unknown customer zone is noted in [`Plan::notes`]).
//! 2. **Filters**: the customer's current tier ([`FollowUpState::tier`]) must be one of the
//!    rule's `tiers` (if any), and every `segments` entry must hold.
//! 3. **Condition**: `when` is evaluated once, on the snapshot; a condition that fails at run
//!    time skips that rule for this customer and is reported in [`Plan::errors`].
//! 4. **Occurrences** of the trigger (their *occurrence time*, which makes the key):
//!    - `every` (cadence): from the anchor (the rule's last occurrence, or the last contact:
//!      the later of `last_contact_at` and [`FollowUpState::contacts`]), the next is
//!      `anchor + period`; an overdue cadence fires **once**, at the last period boundary at or
//!      before `from` (`anchor + k * period`). Without an anchor (never fired, never contacted)
//!      the first occurrence is the customer's own boundary at or after `from` on a grid offset
//!      by a stable hash of the rule id and customer id, so a new rule's work spreads evenly
//!      over its first period instead of landing on one day, and planning again gives the same
//!      keys. Then every period up to `to`.
//!    - `cron`: every firing in `[from, to)` on the zone's wall clock (DST gaps and repeats fire
//!      once, see [`crate::care::schedule`]).
//!    - events in [`FollowUpState::events`] before `to` (tier entered/up/down, segment entered,
//!      complaint, low satisfaction) occur at their time; `no_order`/`no_contact` at the last
//!      order/contact plus `after`; `birthday` and `anniversary` (of the first order's local
//!      date) at `time` (09:00 by default) on that local date each year, 29 February on 28
//!      February in other years.
//! 5. Occurrences of all rules are sorted by time, then by rule order, and then each goes
//!    through the policy: **re-entry** (`once`: never fired nor given before; `once_per: P`:
//!    no other occurrence within `P`, and nothing given to the customer for the rule less than
//!    `P` before the occurrence's earliest time, whatever the occurrence dates: see
//!    [`FollowUpState::given`]), then, for emails and SMS to the customer only: **consent**
//!    (`consent_email`; `consent_sms` for an SMS), **address** (`has_email`; an SMS's number
//!    is checked when it is composed), the **send window** (moved to the next allowed minute:
//!    the same day's start if before it, else the next allowed day's start), the **minimum
//!    gap** (moved to `other contact + gap`, then the window again), the **caps** (per local
//!    day, ISO week, month: counting [`FollowUpState::contacts`] and emails planned before it;
//!    a capped email is dropped for this occurrence). Gap and caps hold per channel: an SMS
//!    counts [`FollowUpState::sms_contacts`] and the SMS planned before it. An email moved to
//!    `to` or later is left for a later plan ([`Skipped::Beyond`]).
//! 6. Every action is scheduled at or after `from` (`scheduled_at = max(occurrence, from)`,
//!    then moved by the policy); the occurrence key keeps the occurrence time.
//!
//! The **occurrence key** is `RULE:OCCURRENCE_UNIX_SECONDS:CUSTOMER` (rule ids contain no `:`),
//! so planning the same range twice gives the same keys.

use chrono::{DateTime, Datelike, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone};
use chrono_tz::Tz;
use serde::Serialize;

use crate::care::followup::{Action, CadenceFrom, Channel, Event, ReEntry, SendWindow, Trigger};
use crate::customer::feature::Feature;
use crate::customer::snapshot::{FeatureValue, Snapshot};
use crate::tiering::evaluate::{Evaluator, Outcome, RuleError};
use crate::tiering::rule_set::RuleSet;

/// The most occurrences one rule yields for one customer in one plan.
const MAX_OCCURRENCES: usize = 1_000;

/// What the ledger knows about one customer, for planning.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FollowUpState {
    /// The customer's current (stored) tier.
    pub tier: Option<String>,
    /// The customer's current segments, `(set, segment)`.
    pub segments: Vec<(String, String)>,
    /// Per rule id, the latest occurrence time already in the ledger (planned or done).
    pub last_fired: Vec<(String, i64)>,
    /// Per rule id, the latest time the customer was actually sent or given the rule's action
    /// (an e-mail queued, claimed or sent, a task created, an attribute set), whatever the
    /// occurrence; re-entry counts from it.
    pub given: Vec<Given>,
    /// Emails to the customer sent or already planned (their scheduled times), for caps, the
    /// minimum gap and `from: last_contact`.
    pub contacts: Vec<i64>,
    /// SMS to the customer sent or already planned (their scheduled times): the contact
    /// policy's caps and minimum gap count each channel on its own.
    pub sms_contacts: Vec<i64>,
    /// What happened since the last plan (older events may be repeated: keys deduplicate).
    pub events: Vec<CustomerEvent>,
}

impl FollowUpState {
    /// The latest occurrence of rule `id`, if any.
    #[must_use]
    pub fn last_fired(&self, id: &str) -> Option<i64> {
        self.last_fired
            .iter()
            .filter(|(rule, _)| rule == id)
            .map(|(_, at)| *at)
            .max()
    }

    /// The latest time rule `id` was given to the customer, if it was.
    #[must_use]
    pub fn last_given(&self, id: &str) -> Option<Given> {
        self.given
            .iter()
            .filter(|given| given.rule_id == id)
            .max_by_key(|given| given.at)
            .cloned()
    }
}

/// When the customer was given a rule's action, in [`FollowUpState::given`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Given {
    /// The rule.
    pub rule_id: String,
    /// The occurrence it was given for (unix seconds).
    pub occurrence_at: i64,
    /// When it was sent (an e-mail sent), or scheduled (queued, claimed; a task created, an
    /// attribute set), unix seconds.
    pub at: i64,
}

/// Something that happened to a customer, at a time.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomerEvent {
    /// Unix seconds.
    pub at: i64,
    /// What.
    pub kind: EventKind,
}

/// The kinds of [`CustomerEvent`].
#[derive(Debug, Clone, PartialEq)]
pub enum EventKind {
    /// The stored tier changed (`None`: no tier).
    TierChanged {
        /// Before.
        from: Option<String>,
        /// After.
        to: Option<String>,
    },
    /// The segment of a set changed.
    SegmentChanged {
        /// The set.
        set: String,
        /// Before.
        from: Option<String>,
        /// After.
        to: Option<String>,
    },
    /// A complaint was opened.
    Complaint,
    /// Feedback was given with this score.
    Feedback {
        /// The score.
        score: f64,
    },
}

/// One follow-up to carry out.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlannedAction {
    /// The rule.
    pub rule_id: String,
    /// The customer's external id.
    pub customer_id: String,
    /// When the trigger occurred (unix seconds; part of the key; may be before the range for
    /// overdue cadences and past events).
    pub occurrence_at: i64,
    /// When to carry it out (unix seconds, in the range), after the policy moved it.
    pub scheduled_at: i64,
    /// `RULE:OCCURRENCE_AT:CUSTOMER`, unique per occurrence.
    pub occurrence_key: String,
    /// What to do.
    pub action: Action,
    /// Why, in one line.
    pub reason: String,
    /// How the policy moved it, if it did.
    pub moved: Vec<Moved>,
}

/// A move made by the contact policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Moved {
    /// From this time.
    pub from: i64,
    /// To this time.
    pub to: i64,
    /// `send window` or `min gap`.
    pub why: &'static str,
}

/// A calendar period of a cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CapPeriod {
    /// A local day.
    Day,
    /// An ISO week (Monday to Sunday).
    Week,
    /// A calendar month.
    Month,
}

/// Why an occurrence was not planned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "why")]
pub enum Skipped {
    /// The rule's re-entry rule (`once`, `once_per`) forbids it; `last` is the earlier occurrence.
    ReEntry {
        /// The earlier occurrence.
        last: i64,
        /// When the customer was sent or given the earlier occurrence's action, when that is
        /// what forbids this one (its occurrence time may be far from this one's).
        #[serde(skip_serializing_if = "Option::is_none")]
        given: Option<i64>,
    },
    /// No email consent.
    Consent,
    /// No email address.
    NoAddress,
    /// The cap of the period is reached.
    Cap {
        /// The period.
        period: CapPeriod,
        /// The cap.
        limit: u32,
    },
    /// Moved by the window or gap to `at`, at or after the end of the range: a later plan will
    /// plan it.
    Beyond {
        /// Where it was moved to.
        at: i64,
    },
}

impl Skipped {
    /// The short name used by rule tests and `plan` output: `re_entry`, `consent`,
    /// `no_address`, `cap`, `beyond`.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Skipped::ReEntry { .. } => "re_entry",
            Skipped::Consent => "consent",
            Skipped::NoAddress => "no_address",
            Skipped::Cap { .. } => "cap",
            Skipped::Beyond { .. } => "beyond",
        }
    }
}

/// An occurrence the policy removed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SkippedAction {
    /// The rule.
    pub rule_id: String,
    /// Its occurrence time.
    pub occurrence_at: i64,
    /// Its key.
    pub occurrence_key: String,
    /// Why.
    pub skipped: Skipped,
}

/// The follow-ups of one customer over a range.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Plan {
    /// What to do, by scheduled time, then rule order.
    pub actions: Vec<PlannedAction>,
    /// What the policy removed.
    pub skipped: Vec<SkippedAction>,
    /// Conditions that failed at run time (those rules were skipped for this customer).
    pub errors: Vec<RuleError>,
    /// Other remarks (an unknown customer time zone).
    pub notes: Vec<String>,
}

/// Plans follow-ups customer after customer, reusing an [`Evaluator`]. One per thread.
#[derive(Debug)]
pub struct Planner<'r> {
    evaluator: Evaluator<'r>,
    /// The firings of cron triggers, which depend on the rule, the zone and the range alone:
    /// `(rule index, zone, from, to)` and the firings' times, computed at the first customer
    /// who needs them (a range's customers share a handful of zones).
    firings: Vec<(FiringsKey, Vec<i64>)>,
}

/// A cron rule's index, the zone and the range `[from, to)` its firings were computed for.
type FiringsKey = (usize, Tz, i64, i64);

/// The most cron firing lists a [`Planner`] keeps (rules × zones × ranges).
const FIRINGS_KEPT: usize = 256;

/// [`Planner::plan`] with a fresh planner.
#[must_use]
pub fn plan_customer(
    rules: &RuleSet,
    snapshot: &Snapshot,
    state: &FollowUpState,
    from: i64,
    to: i64,
    workspace_tz: Tz,
) -> Plan {
    rules
        .planner()
        .plan(snapshot, state, from, to, workspace_tz)
}

struct Candidate {
    rule: usize,
    occurrence: i64,
    reason: String,
}

fn time_of(feature: FeatureValue) -> Option<i64> {
    match feature {
        FeatureValue::Int(value) => Some(value),
        _ => None,
    }
}

fn utc(seconds: i64) -> DateTime<chrono::Utc> {
    DateTime::from_timestamp(seconds, 0).unwrap_or_default()
}

/// `2024-05-01 09:00 Asia/Shanghai`-style local text, for reasons.
pub(crate) fn local_text(seconds: i64, tz: Tz) -> String {
    utc(seconds)
        .with_timezone(&tz)
        .format("%Y-%m-%d %H:%M")
        .to_string()
}

/// The instant of a local wall time: its only or first occurrence; in a DST gap, the first
/// instant after the gap.
pub(crate) fn local_instant(date: NaiveDate, time: NaiveTime, tz: Tz) -> Option<i64> {
    let mut wall = NaiveDateTime::new(date, time);
    for _ in 0..=240 {
        match tz.from_local_datetime(&wall) {
            LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => return Some(t.timestamp()),
            LocalResult::None => {
                wall = wall.with_second(0)? + chrono::TimeDelta::minutes(1);
                wall = wall.with_minute(wall.minute())?;
            }
        }
    }
    None
}

use chrono::Timelike;

/// The date in `year` for a yearly date `(month, day)`: 29 February is 28 February in other years.
fn yearly_date(year: i32, month: u32, day: u32) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(year, month, day).or_else(|| {
        (month == 2 && day == 29)
            .then(|| NaiveDate::from_ymd_opt(year, 2, 28))
            .flatten()
    })
}

impl<'r> Planner<'r> {
    pub(crate) fn new(rules: &'r RuleSet) -> Self {
        Planner {
            evaluator: rules.evaluator(),
            firings: Vec::new(),
        }
    }

    /// Plans the follow-ups of one customer for `[from, to)` (unix seconds); see the
    /// [module documentation](self) for the steps.
    pub fn plan(
        &mut self,
        snapshot: &Snapshot,
        state: &FollowUpState,
        from: i64,
        to: i64,
        workspace_tz: Tz,
    ) -> Plan {
        let rules = self.evaluator.rules;
        let mut plan = Plan::default();
        let customer_id = snapshot.customer_id();
        let customer_tz = match snapshot.get(Feature::Timezone) {
            FeatureValue::Text(name) if !name.trim().is_empty() => {
                match name.trim().parse::<Tz>() {
                    Ok(tz) => tz,
                    Err(_) => {
                        plan.notes.push(format!(
                            "customer time zone `{name}` is unknown; using {}",
                            workspace_tz.name()
                        ));
                        workspace_tz
                    }
                }
            }
            _ => workspace_tz,
        };
        if to <= from {
            return plan;
        }

        self.evaluator.start_customer();
        let mut score_errors = Vec::new();
        if rules
            .followups
            .iter()
            .any(|followup| followup.when.is_some())
        {
            self.evaluator.compute_scores(snapshot, &mut score_errors);
        }

        let last_contact = time_of(snapshot.get(Feature::LastContactAt))
            .into_iter()
            .chain(state.contacts.iter().copied())
            .max();
        let mut candidates: Vec<Candidate> = Vec::new();
        for (index, followup) in rules.followups.iter().enumerate() {
            let rule = &followup.rule;
            if !rule.tiers.is_empty()
                && !state
                    .tier
                    .as_ref()
                    .is_some_and(|tier| rule.tiers.contains(tier))
            {
                continue;
            }
            if !rule
                .segments
                .iter()
                .all(|wanted| state.segments.contains(wanted))
            {
                continue;
            }
            if let Some(expr) = &followup.when {
                match self.evaluator.condition(expr, snapshot) {
                    Outcome::Matched => {}
                    Outcome::NotMatched => continue,
                    Outcome::Failed(error) => {
                        plan.errors.push(error);
                        continue;
                    }
                }
            }
            let tz = rule.timezone.unwrap_or(customer_tz);
            let before = candidates.len();
            let mut push = |occurrence: i64, reason: String| {
                if candidates.len() - before < MAX_OCCURRENCES {
                    candidates.push(Candidate {
                        rule: index,
                        occurrence,
                        reason,
                    });
                }
            };
            match &rule.trigger {
                Trigger::Every {
                    period,
                    from: counted,
                } => {
                    let anchor = match counted {
                        CadenceFrom::LastFired => state.last_fired(&rule.id),
                        CadenceFrom::LastContact => last_contact,
                    };
                    let what = match counted {
                        CadenceFrom::LastFired => "last fired",
                        CadenceFrom::LastContact => "last contact",
                    };
                    let mut next = match anchor {
                        Some(anchor) => {
                            let mut next = anchor + period;
                            if next < from {
                                next = anchor + ((from - anchor) / period).max(1) * period;
                            }
                            next
                        }
                        None => first_staggered(&rule.id, &customer_id, *period, from),
                    };
                    if next >= to {
                        // Nothing in the range: no reason to write.
                        continue;
                    }
                    let days = period / 86_400;
                    let every = if period % 86_400 == 0 {
                        format!("{days}d")
                    } else {
                        format!("{}h", period / 3_600)
                    };
                    let why = match anchor {
                        Some(anchor) => {
                            format!("every {every} since {what} {}", local_text(anchor, tz))
                        }
                        None => {
                            format!("every {every} (no {what} yet: first at a staggered time)")
                        }
                    };
                    while next < to {
                        push(next, why.clone());
                        next += period;
                    }
                }
                Trigger::Cron(schedule) => {
                    let key = (index, tz, from, to);
                    let cached = match self.firings.iter().position(|(k, _)| *k == key) {
                        Some(found) => found,
                        None => {
                            let firings = schedule
                                .between(utc(from - 1), utc(to - 1), tz, MAX_OCCURRENCES)
                                .iter()
                                .map(DateTime::timestamp)
                                .collect();
                            // A planner reused over many ranges (rule tests) keeps the latest.
                            if self.firings.len() >= FIRINGS_KEPT {
                                self.firings.clear();
                            }
                            self.firings.push((key, firings));
                            self.firings.len() - 1
                        }
                    };
                    for &firing in &self.firings[cached].1 {
                        push(firing, format!("cron `{schedule}` ({})", tz.name()));
                    }
                }
                Trigger::Event(event) => {
                    self.event_occurrences(
                        event,
                        rule,
                        state,
                        snapshot,
                        last_contact,
                        (from, to),
                        tz,
                        &mut push,
                    );
                }
            }
        }
        candidates.sort_by_key(|candidate| (candidate.occurrence, candidate.rule));

        // The policy.
        let policy = rules.contact_policy.for_tier(state.tier.as_deref());
        let consent = snapshot.get(Feature::ConsentEmail) == FeatureValue::Bool(true);
        let consent_sms = snapshot.get(Feature::ConsentSms) == FeatureValue::Bool(true);
        let has_email = snapshot.get(Feature::HasEmail) == FeatureValue::Bool(true);
        let mut email_contacts: Vec<i64> = state.contacts.clone();
        let mut sms_contacts: Vec<i64> = state.sms_contacts.clone();
        // (rule, occurrence, scheduled) of what this plan gives.
        let mut fired: Vec<(usize, i64, i64)> = Vec::new();
        for candidate in candidates {
            let rule = &rules.followups[candidate.rule].rule;
            let tz = rule.timezone.unwrap_or(customer_tz);
            let key = format!("{}:{}:{customer_id}", rule.id, candidate.occurrence);
            let skip = |skipped: Skipped| SkippedAction {
                rule_id: rule.id.clone(),
                occurrence_at: candidate.occurrence,
                occurrence_key: key.clone(),
                skipped,
            };
            if let Some(skipped) = re_entry(
                rule.re_entry,
                &rule.id,
                candidate.rule,
                candidate.occurrence,
                from,
                state,
                &fired,
            ) {
                plan.skipped.push(skip(skipped));
                continue;
            }
            let mut scheduled = candidate.occurrence.max(from);
            let mut moved = Vec::new();
            if let Some(channel) = rule.action.channel() {
                let policy = policy.for_channel(channel);
                let (consents, addressed, contacts) = match channel {
                    Channel::Email => (consent, has_email, &mut email_contacts),
                    // The phone number is checked when the SMS is composed.
                    Channel::Sms => (consent_sms, true, &mut sms_contacts),
                };
                if !consents {
                    plan.skipped.push(skip(Skipped::Consent));
                    continue;
                }
                if !addressed {
                    plan.skipped.push(skip(Skipped::NoAddress));
                    continue;
                }
                for _ in 0..32 {
                    if let Some(window) = &policy.send_window {
                        let next = next_in_window(scheduled, window, tz);
                        if next != scheduled {
                            moved.push(Moved {
                                from: scheduled,
                                to: next,
                                why: "send window",
                            });
                            scheduled = next;
                        }
                    }
                    let Some(gap) = policy.min_gap else {
                        break;
                    };
                    let Some(blocker) = contacts
                        .iter()
                        .copied()
                        .filter(|other| (scheduled - other).abs() < gap)
                        .max()
                    else {
                        break;
                    };
                    moved.push(Moved {
                        from: scheduled,
                        to: blocker + gap,
                        why: "min gap",
                    });
                    scheduled = blocker + gap;
                }
                if scheduled >= to {
                    plan.skipped.push(skip(Skipped::Beyond { at: scheduled }));
                    continue;
                }
                if let Some((period, limit)) = capped(&policy.caps, contacts, scheduled, tz) {
                    plan.skipped.push(skip(Skipped::Cap { period, limit }));
                    continue;
                }
                contacts.push(scheduled);
            }
            let mut action = rule.action.clone();
            if let (Action::Points { amount, .. }, Some(earn)) =
                (&mut action, &rules.followups[candidate.rule].earn)
            {
                match self.evaluator.amount(earn, snapshot) {
                    Ok(earned) => *amount = earned,
                    Err(error) => {
                        plan.errors.push(error);
                        continue;
                    }
                }
            }
            fired.push((candidate.rule, candidate.occurrence, scheduled));
            plan.actions.push(PlannedAction {
                rule_id: rule.id.clone(),
                customer_id: customer_id.clone(),
                occurrence_at: candidate.occurrence,
                scheduled_at: scheduled,
                occurrence_key: key,
                action,
                reason: candidate.reason,
                moved,
            });
        }
        plan.actions.sort_by_key(|action| action.scheduled_at);
        plan
    }

    #[expect(clippy::too_many_arguments, reason = "the customer's context")]
    fn event_occurrences(
        &self,
        event: &Event,
        rule: &crate::care::followup::FollowUpRule,
        state: &FollowUpState,
        snapshot: &Snapshot,
        last_contact: Option<i64>,
        (from, to): (i64, i64),
        tz: Tz,
        push: &mut impl FnMut(i64, String),
    ) {
        let rules = self.evaluator.rules;
        let events = state.events.iter().filter(|event| event.at < to);
        let tier_text =
            |tier: &Option<String>| tier.clone().unwrap_or_else(|| "no tier".to_owned());
        match event {
            Event::TierEntered | Event::TierUp | Event::TierDown => {
                for change in events {
                    let EventKind::TierChanged {
                        from: before,
                        to: after,
                    } = &change.kind
                    else {
                        continue;
                    };
                    if before == after {
                        continue;
                    }
                    let rank =
                        |tier: &Option<String>| tier.as_deref().and_then(|t| rules.tier_rank(t));
                    let fires = match event {
                        Event::TierEntered => after.as_ref().is_some_and(|after| {
                            rule.tiers.is_empty() || rule.tiers.contains(after)
                        }),
                        Event::TierUp => {
                            matches!((rank(before), rank(after)), (Some(b), Some(a)) if a < b)
                        }
                        _ => match (rank(before), rank(after), after) {
                            (Some(_), None, None) => true,
                            (Some(b), Some(a), _) => a > b,
                            _ => false,
                        },
                    };
                    if fires {
                        push(
                            change.at,
                            format!(
                                "tier {} -> {} at {}",
                                tier_text(before),
                                tier_text(after),
                                local_text(change.at, tz)
                            ),
                        );
                    }
                }
            }
            Event::SegmentEntered { set, segment } => {
                for change in events {
                    if let EventKind::SegmentChanged {
                        set: changed,
                        from: before,
                        to: after,
                    } = &change.kind
                        && changed == set
                        && after.as_deref() == Some(segment)
                        && before != after
                    {
                        push(
                            change.at,
                            format!(
                                "entered segment {set}: {segment} at {}",
                                local_text(change.at, tz)
                            ),
                        );
                    }
                }
            }
            Event::Complaint => {
                for complaint in events.filter(|event| event.kind == EventKind::Complaint) {
                    push(
                        complaint.at,
                        format!("complaint at {}", local_text(complaint.at, tz)),
                    );
                }
            }
            Event::LowSatisfaction { below } => {
                for feedback in events {
                    if let EventKind::Feedback { score } = feedback.kind
                        && score < *below
                    {
                        push(
                            feedback.at,
                            format!(
                                "feedback {score} below {below} at {}",
                                local_text(feedback.at, tz)
                            ),
                        );
                    }
                }
            }
            Event::NoOrder { after } => {
                if let Some(last) = time_of(snapshot.get(Feature::LastOrderAt))
                    && last + after < to
                {
                    push(
                        last + after,
                        format!(
                            "no order since {} ({}d)",
                            local_text(last, tz),
                            after / 86_400
                        ),
                    );
                }
            }
            Event::NoContact { after } => {
                if let Some(last) = last_contact
                    && last + after < to
                {
                    push(
                        last + after,
                        format!(
                            "no contact since {} ({}d)",
                            local_text(last, tz),
                            after / 86_400
                        ),
                    );
                }
            }
            Event::Birthday { time } => {
                let FeatureValue::Text(birthday) = snapshot.get(Feature::Birthday) else {
                    return;
                };
                let Ok(date) = NaiveDate::parse_from_str(birthday.trim(), "%Y-%m-%d") else {
                    return;
                };
                yearly(date, None, *time, (from, to), tz, &mut |at| {
                    push(at, format!("birthday {}", date.format("%m-%d")));
                });
            }
            Event::Anniversary { time } => {
                let Some(first) = time_of(snapshot.get(Feature::FirstOrderAt)) else {
                    return;
                };
                let date = utc(first).with_timezone(&tz).date_naive();
                yearly(date, Some(date.year()), *time, (from, to), tz, &mut |at| {
                    push(at, format!("anniversary of the first order on {date}"));
                });
            }
        }
    }
}

/// Every yearly recurrence of `date`'s month and day at `time` in `[from, to)`, in years after
/// `after_year` if given.
fn yearly(
    date: NaiveDate,
    after_year: Option<i32>,
    time: NaiveTime,
    (from, to): (i64, i64),
    tz: Tz,
    push: &mut impl FnMut(i64),
) {
    let first = utc(from).with_timezone(&tz).year();
    let last = utc(to).with_timezone(&tz).year();
    for year in first..=last.min(first + 200) {
        if after_year.is_some_and(|after| year <= after) {
            continue;
        }
        let Some(day) = yearly_date(year, date.month(), date.day()) else {
            continue;
        };
        if let Some(at) = local_instant(day, time, tz)
            && at >= from
            && at < to
        {
            push(at);
        }
    }
}

/// Whether the rule's re-entry rule forbids an occurrence, and why.
///
/// Two checks, both against other occurrences than this one (planning an occurrence again
/// finds itself in the ledger): between occurrence times (`once`: any earlier one that fired;
/// `once_per: P`: one less than `P` away), and from what the customer was actually given (the
/// latest e-mail sent or queued, task created, ... for the rule, in the ledger or earlier in
/// this plan): `once` forbids any, `once_per: P` one given less than `P` before this
/// occurrence's earliest time (`max(occurrence, from)`), or later. So new data that moves an
/// occurrence's date (a win-back counted from an order date that changed) cannot send again
/// inside the window.
fn re_entry(
    re_entry: ReEntry,
    rule_id: &str,
    index: usize,
    occurrence: i64,
    from: i64,
    state: &FollowUpState,
    fired: &[(usize, i64, i64)],
) -> Option<Skipped> {
    let window = match re_entry {
        ReEntry::EveryTime => return None,
        ReEntry::Once => None,
        ReEntry::OncePer(period) => Some(period),
    };
    let last = fired
        .iter()
        .filter(|(rule, _, _)| *rule == index)
        .map(|(_, at, _)| *at)
        .chain(state.last_fired(rule_id))
        .filter(|at| *at != occurrence)
        .max();
    if let Some(last) = last
        && window.is_none_or(|period| (occurrence - last).abs() < period)
    {
        return Some(Skipped::ReEntry { last, given: None });
    }
    let given = fired
        .iter()
        .filter(|(rule, _, _)| *rule == index)
        .map(|(_, occurrence_at, at)| (*at, *occurrence_at))
        .chain(
            state
                .last_given(rule_id)
                .map(|given| (given.at, given.occurrence_at)),
        )
        .filter(|(_, occurrence_at)| *occurrence_at != occurrence)
        .max()?;
    let earliest = occurrence.max(from);
    window
        .is_none_or(|period| earliest - given.0 < period)
        .then_some(Skipped::ReEntry {
            last: given.1,
            given: Some(given.0),
        })
}

/// The first time at or after `at` inside the window.
pub(crate) fn next_in_window(at: i64, window: &SendWindow, tz: Tz) -> i64 {
    let local = utc(at).with_timezone(&tz);
    let date = local.date_naive();
    let time = local.time();
    for offset in 0..8 {
        let Some(day) = date.checked_add_days(chrono::Days::new(offset)) else {
            break;
        };
        if !window.allows_day(day.weekday()) {
            continue;
        }
        if offset == 0 {
            if time >= window.end {
                continue;
            }
            if time >= window.start {
                return at;
            }
        }
        if let Some(start) = local_instant(day, window.start, tz) {
            return start.max(at);
        }
    }
    at
}

/// The first cap (day, week, month) that `at` would exceed.
pub(crate) fn capped(
    caps: &crate::care::followup::Caps,
    contacts: &[i64],
    at: i64,
    tz: Tz,
) -> Option<(CapPeriod, u32)> {
    let local = |t: i64| utc(t).with_timezone(&tz).date_naive();
    let day = local(at);
    for (period, limit) in [
        (CapPeriod::Day, caps.day),
        (CapPeriod::Week, caps.week),
        (CapPeriod::Month, caps.month),
    ] {
        let Some(limit) = limit else {
            continue;
        };
        let same = |other: NaiveDate| match period {
            CapPeriod::Day => other == day,
            CapPeriod::Week => other.iso_week() == day.iso_week(),
            CapPeriod::Month => other.year() == day.year() && other.month() == day.month(),
        };
        let count = contacts.iter().filter(|t| same(local(**t))).count();
        if count >= limit as usize {
            return Some((period, limit));
        }
    }
    None
}

/// The first occurrence of a cadence that has no anchor: the boundary at or after `from` of a
/// period grid offset per customer by a stable hash of the rule and the customer.
fn first_staggered(rule_id: &str, customer_id: &str, period: i64, from: i64) -> i64 {
    let hash = crate::tiering::rule_set::fnv1a(
        crate::tiering::rule_set::fnv1a(crate::tiering::rule_set::FNV_OFFSET, rule_id.as_bytes()),
        customer_id.as_bytes(),
    );
    let offset = (hash % period.unsigned_abs()) as i64;
    from + (offset - from).rem_euclid(period)
}

impl RuleSet {
    /// A planner for follow-ups (one per thread; see [`crate::planning::plan`]).
    #[must_use]
    pub fn planner(&self) -> Planner<'_> {
        Planner::new(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leap_day_birthdays_fall_on_28_february() {
        assert_eq!(
            yearly_date(2023, 2, 29),
            NaiveDate::from_ymd_opt(2023, 2, 28)
        );
        assert_eq!(
            yearly_date(2024, 2, 29),
            NaiveDate::from_ymd_opt(2024, 2, 29)
        );
        assert_eq!(
            yearly_date(2023, 12, 31),
            NaiveDate::from_ymd_opt(2023, 12, 31)
        );
    }

    #[test]
    fn wall_times_in_a_gap_move_past_it() {
        let tz: Tz = "America/New_York".parse().unwrap();
        let day = NaiveDate::from_ymd_opt(2024, 3, 10).unwrap();
        let at = local_instant(day, NaiveTime::from_hms_opt(2, 30, 0).unwrap(), tz).unwrap();
        // 03:00 EDT = 07:00 UTC.
        assert_eq!(utc(at).to_rfc3339(), "2024-03-10T07:00:00+00:00");
    }

    #[test]
    fn first_staggered_is_within_one_period_and_spreads_customers() {
        let period = 30 * 86_400;
        let from = 1_717_200_000;
        let mut days = std::collections::BTreeSet::new();
        for n in 0..300 {
            let customer = format!("C{n:04}");
            let first = first_staggered("review", &customer, period, from);
            assert!(
                (from..from + period).contains(&first),
                "{customer}: {first}"
            );
            assert_eq!(first, first_staggered("review", &customer, period, from));
            // Planning again later in the same period finds the same occurrence.
            assert_eq!(first, first_staggered("review", &customer, period, first));
            days.insert((first - from) / 86_400);
        }
        assert!(
            days.len() > 25,
            "300 customers fall on {} of 30 days",
            days.len()
        );
    }
}
