//! Follow-up planning: features and the ledger from the store, plans from the engine.
//!
//! [`plan`] previews the follow-ups of every customer over a range and summarises them (per
//! day, rule, tier and assignee, with what the contact policy skipped or moved); it writes
//! nothing. [`record_due`] plans a range and records what is due into the follow-up ledger,
//! idempotently by occurrence key: what the daemon does on each tick.
//!
//! Both stream: one customer's features, follow-up state and plan at a time
//! ([`Store::for_each_followup_state`]), so beyond the features (computed in bulk, as for an
//! assessment) memory does not grow with the ledger or the events.
//!
//! The store's and the engine's follow-up state differ in shape (the store's names rows, the
//! engine's is what the planner reads): [`fill_state`] is the adapter.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use chrono::TimeZone;
use chrono_tz::Tz;
use serde::Serialize;
use tiercare_engine::plan::{
    CustomerEvent as EngineEvent, EventKind as EngineEventKind, FollowUpState as EngineState,
    Given, PlannedAction, Skipped,
};
use tiercare_engine::{Action, Assignee as EngineAssignee, RuleSet, Snapshot};
use tiercare_store::{
    Assignee, CustomerFeatures, CustomerFollowUpState as StoreState, EmailRecipient, EventKind,
    FollowUpAction, OccurrenceKey, PlannedFollowUp, StateRange, Store, StoreError,
};

use crate::assess::{AssessError, fill_snapshot};
use crate::outbox::{RenderEmail, compose};

/// How many customer ids a rule's summary shows as examples.
pub const SAMPLES: usize = 3;

const DAY: i64 = 86_400;

/// How far before the start of a range customer events are read: events already planned for
/// are found again, and their occurrence keys deduplicate them.
pub const EVENT_LOOKBACK: i64 = 7 * DAY;

/// What to plan.
#[derive(Debug, Clone, Copy)]
pub struct PlanOptions {
    /// The start of the range (unix seconds): features are computed at this time.
    pub from: i64,
    /// The end of the range (unix seconds, excluded).
    pub to: i64,
    /// Customer events (tier and segment changes, complaints, feedback) after this time and up
    /// to `to` are triggers; older ones were planned before (keys deduplicate repeats).
    pub events_since: i64,
    /// The workspace's time zone (days in the summary, customers without a zone).
    pub timezone: Tz,
}

/// One local day of a plan.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DayPlan {
    /// `YYYY-MM-DD` in the workspace's zone.
    pub date: String,
    /// Emails to customers.
    pub emails: u64,
    /// SMS to customers.
    pub sms: u64,
    /// Tasks for managers.
    pub tasks: u64,
    /// Owner notifications, attribute sets, points and tags.
    pub other: u64,
    /// Actions per follow-up rule that day (all kinds).
    pub rules: BTreeMap<String, u64>,
}

/// One rule's part of a plan.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RulePlan {
    /// The rule's id.
    pub rule: String,
    /// Its label, if any.
    pub label: Option<String>,
    /// What it does, in one line.
    pub action: String,
    /// Planned actions.
    pub planned: u64,
    /// Customers it plans for, up to [`SAMPLES`].
    pub sample_customers: Vec<String>,
    /// The first planned actions of those customers: when and with which key.
    pub samples: Vec<ActionSample>,
    /// Actions moved by the send window.
    pub moved_window: u64,
    /// Actions moved by the minimum gap.
    pub moved_gap: u64,
    /// Occurrences the policy removed, per reason (`re_entry`, `consent`, `no_address`, `cap`,
    /// `beyond`).
    pub skipped: BTreeMap<String, u64>,
}

/// One planned action, as an example.
#[derive(Debug, Clone, Serialize)]
pub struct ActionSample {
    /// The customer's external id.
    pub customer_id: String,
    /// When it is scheduled (unix seconds), after the policy.
    pub scheduled_at: i64,
    /// When the trigger occurred (unix seconds).
    pub occurrence_at: i64,
    /// `RULE:OCCURRENCE_AT:CUSTOMER`.
    pub occurrence_key: String,
    /// Why, in one line.
    pub reason: String,
}

/// One tier's part of a plan (by the customer's current tier; `(none)` without one).
#[derive(Debug, Clone, Default, Serialize)]
pub struct TierPlan {
    /// The tier.
    pub tier: String,
    /// Customers in it.
    pub customers: u64,
    /// Customers with at least one planned action.
    pub customers_planned: u64,
    /// Emails to customers.
    pub emails: u64,
    /// SMS to customers.
    pub sms: u64,
    /// Tasks.
    pub tasks: u64,
    /// Other actions.
    pub other: u64,
}

/// Failures of one rule's condition across customers.
#[derive(Debug, Clone, Serialize)]
pub struct PlanRuleError {
    /// The rule.
    pub rule: String,
    /// For how many customers it failed.
    pub customers: u64,
    /// The first customer it failed for.
    pub example_customer: String,
    /// The first error.
    pub message: String,
}

/// What [`plan`] found: a summary, never the actions one by one (constant size in customers).
#[derive(Debug, Clone, Serialize)]
pub struct PlanSummary {
    /// The start of the range (unix seconds).
    pub from: i64,
    /// The end of the range (unix seconds, excluded).
    pub to: i64,
    /// The rule-set version.
    pub ruleset_version: String,
    /// Customers planned for.
    pub customers: u64,
    /// Planned emails to customers.
    pub emails: u64,
    /// Planned SMS to customers.
    pub sms: u64,
    /// Planned tasks.
    pub tasks: u64,
    /// Planned owner notifications, attribute sets, points and tags.
    pub other: u64,
    /// Per local day with something planned, in order.
    pub days: Vec<DayPlan>,
    /// Per follow-up rule, in the rules' order.
    pub rules: Vec<RulePlan>,
    /// Per tier, in the rules' order, then `(none)`.
    pub tiers: Vec<TierPlan>,
    /// Tasks per assignee: a manager's id (owners resolved), `role:NAME`, or `(no owner)`.
    pub assignees: BTreeMap<String, u64>,
    /// Occurrences removed by the policy, per reason.
    pub skipped: BTreeMap<String, u64>,
    /// Actions moved by the policy, per cause (`send window`, `min gap`).
    pub moved: BTreeMap<String, u64>,
    /// Rule conditions that failed for some customers.
    pub rule_errors: Vec<PlanRuleError>,
    /// Other remarks (an unknown customer time zone) with how many customers they concern.
    pub notes: BTreeMap<String, u64>,
    /// Planned work that does not fit the people who would do it ([`capacity_warnings`]).
    pub capacity_warnings: Vec<CapacityWarning>,
    /// Wall time in milliseconds.
    pub elapsed_ms: u128,
}

const NONE: &str = "(none)";

/// Tasks an assignee was planned that they cannot do: nobody would get them, nobody active has
/// the role, or more than the manager's (or the role's) capacity in the plan's days.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CapacityWarning {
    /// A manager's id, `role:NAME`, or `(no owner)`.
    pub assignee: String,
    /// Tasks planned for them in the range.
    pub tasks: u64,
    /// Their capacity (a manager's, or the sum over a role's active managers); `None` when
    /// nobody can take the tasks.
    pub capacity: Option<u64>,
    /// What is wrong and what to do, in words.
    pub message: String,
}

/// Compares the tasks planned per assignee over `days` days with the managers who would do
/// them. A manager's capacity is how many customers they can look after; a plan that gives
/// them more tasks than that in the period asks more than one task per customer they could
/// serve, which no person does. Tasks for `(no owner)` or for a role nobody active holds would
/// be created for nobody.
pub fn capacity_warnings(
    assignees: &BTreeMap<String, u64>,
    managers: &[tiercare_store::Manager],
    days: u64,
) -> Vec<CapacityWarning> {
    let mut warnings = Vec::new();
    for (who, &tasks) in assignees {
        let (capacity, problem) = if who == "(no owner)" {
            (
                None,
                Some(format!(
                    "{tasks} task(s) for customers without an owner would go to nobody: give \
                     them owners (`tiercare owners assign`, the rules' `assignment`) or assign \
                     the rule's task to a role"
                )),
            )
        } else if let Some(role) = who.strip_prefix("role:") {
            let holders: Vec<_> = managers
                .iter()
                .filter(|m| m.active && m.role.as_deref() == Some(role))
                .collect();
            if holders.is_empty() {
                (
                    None,
                    Some(format!(
                        "{tasks} task(s) for `{who}`, but no active manager has that role: \
                         import managers with it, or change the rule's assignee"
                    )),
                )
            } else if holders.iter().all(|m| m.capacity.is_some()) {
                let capacity = holders.iter().filter_map(|m| m.capacity).sum::<u64>();
                (
                    Some(capacity),
                    (tasks > capacity).then(|| {
                        format!(
                            "{tasks} task(s) in {days} day(s) for `{who}`, whose {} active \
                             manager(s) can look after {capacity} customers: more work than they \
                             can do; spread it (fewer or rarer rules, more managers)",
                            holders.len()
                        )
                    }),
                )
            } else {
                (None, None)
            }
        } else {
            match managers.iter().find(|m| &m.external_id == who) {
                None => (
                    None,
                    Some(format!(
                        "{tasks} task(s) for `{who}`, who is not a manager of the workspace: \
                         import them, or give their customers another owner"
                    )),
                ),
                Some(manager) if !manager.active => (
                    manager.capacity,
                    Some(format!(
                        "{tasks} task(s) for `{who}` ({}), who is inactive: give their \
                         customers another owner",
                        manager.name
                    )),
                ),
                Some(manager) => (
                    manager.capacity,
                    manager.capacity.filter(|&c| tasks > c).map(|capacity| {
                        format!(
                            "{tasks} task(s) in {days} day(s) for `{who}` ({}), who can look \
                             after {capacity} customers: more work than one person can do; \
                             spread it (fewer or rarer rules, more managers)",
                            manager.name
                        )
                    }),
                ),
            }
        };
        if let Some(message) = problem {
            warnings.push(CapacityWarning {
                assignee: who.clone(),
                tasks,
                capacity,
                message,
            });
        }
    }
    warnings
}

/// Converts one store event into the engine's, if the engine plans on it.
fn engine_event(kind: &EventKind) -> EngineEventKind {
    match kind {
        EventKind::TierChanged { from, to, .. } => EngineEventKind::TierChanged {
            from: from.clone(),
            to: Some(to.clone()),
        },
        EventKind::SegmentChanged {
            segment_set,
            from,
            to,
        } => EngineEventKind::SegmentChanged {
            set: segment_set.clone(),
            from: from.clone(),
            to: to.clone(),
        },
        EventKind::ComplaintOpened { .. } => EngineEventKind::Complaint,
        EventKind::FeedbackGiven { score, .. } => EngineEventKind::Feedback { score: *score },
    }
}

/// How far before the start of a range the e-mails to each customer are read: a calendar
/// month in any zone (caps per month), or the longest minimum gap if that is longer.
fn email_lookback(rules: &RuleSet) -> i64 {
    let policy = rules.contact_policy();
    std::iter::once(&policy.default)
        .chain(policy.tiers.iter().map(|(_, tier)| tier))
        .filter_map(|tier| tier.min_gap)
        .fold(32 * DAY, i64::max)
}

/// Builds the engine's state of one customer from the store's (the adapter).
///
/// - `tier`: the stored tier (`features.previous_tier`, the tier of the last assessment);
///   `segments` as streamed (read only when a rule filters on segments).
/// - `last_fired`: per rule, the latest occurrence that fired (planned or done); skipped and
///   cancelled ones do not count.
/// - `given`: per rule, the latest time the customer was given its action (e-mail sent or
///   queued, task created, ...; see [`tiercare_store::LastOccurrence::last_given`]), which
///   re-entry counts from.
/// - `contacts`: the times of the e-mails planned or sent to the customer since the e-mail
///   lookback (so caps per local day, week and month and the minimum gap are exact), later
///   ones included, and the latest one before it if any (for `from: last_contact` cadences).
pub fn fill_state(state: &mut EngineState, features: &CustomerFeatures, store: &StoreState) {
    state.tier = (!features.previous_tier.is_empty()).then(|| features.previous_tier.clone());
    state.segments.clear();
    state.segments.extend(store.segments.iter().cloned());
    state.last_fired.clear();
    state.last_fired.extend(
        store
            .last
            .iter()
            .filter_map(|last| Some((last.rule_id.clone(), last.last_fired_at?))),
    );
    state.given.clear();
    state.given.extend(store.last.iter().filter_map(|last| {
        let (at, occurrence_at) = last.last_given?;
        Some(Given {
            rule_id: last.rule_id.clone(),
            occurrence_at,
            at,
        })
    }));
    state.contacts.clear();
    state.contacts.extend(store.earlier_email);
    state.contacts.extend(store.emails.iter().copied());
    state.sms_contacts.clear();
    state.sms_contacts.extend(store.sms.iter().copied());
    state.events.clear();
    state
        .events
        .extend(store.events.iter().map(|event| EngineEvent {
            at: event.at,
            kind: engine_event(&event.kind),
        }));
}

/// Plans every customer over `[options.from, options.to)`, calling `visit` with each
/// customer's features and plan. Nothing is written.
fn for_each_plan(
    reader: &Store,
    rules: &RuleSet,
    options: PlanOptions,
    visit: &mut dyn FnMut(&CustomerFeatures, &EngineState, &tiercare_engine::Plan),
) -> Result<(), AssessError> {
    for_each_plan_ahead(
        reader,
        rules,
        options,
        0,
        &mut |features, state, plan, _| {
            visit(features, state, plan);
        },
    )
}

/// The earliest time at or after `since` a plan of `ahead`'s start would record something new
/// of it: an action's scheduled time (an email moved by the send window is recorded once a
/// range reaches its time), a skip's occurrence. A skip `Beyond` the plan's end is not recorded
/// before it. Times before `since` (triggers in the events' lookback) are in the plan of the
/// range before too, which recorded them. Nor does an occurrence the range before recorded
/// (`recorded`'s actions and skips, `Beyond` excepted) count, wherever `ahead` schedules it: an
/// overdue cadence or a past event is planned again at every range's start, and its key makes
/// recording it again write nothing.
fn earliest_occurrence(
    ahead: &tiercare_engine::Plan,
    since: i64,
    recorded: &tiercare_engine::Plan,
) -> Option<i64> {
    let was_recorded = |rule_id: &str, occurrence_at: i64| {
        recorded
            .actions
            .iter()
            .any(|action| action.rule_id == rule_id && action.occurrence_at == occurrence_at)
            || recorded.skipped.iter().any(|skipped| {
                !matches!(skipped.skipped, Skipped::Beyond { .. })
                    && skipped.rule_id == rule_id
                    && skipped.occurrence_at == occurrence_at
            })
    };
    ahead
        .actions
        .iter()
        .filter(|action| !was_recorded(&action.rule_id, action.occurrence_at))
        .map(|action| action.scheduled_at)
        .chain(
            ahead
                .skipped
                .iter()
                .filter(|skipped| {
                    !matches!(skipped.skipped, Skipped::Beyond { .. })
                        && !was_recorded(&skipped.rule_id, skipped.occurrence_at)
                })
                .map(|skipped| skipped.occurrence_at),
        )
        .filter(|&at| at >= since)
        .min()
}

/// One customer's plan over a range and, with a lookahead, when they next fall due: the part
/// of planning that is the same for every customer, whether all are read or a few.
struct CustomerPlanner<'r> {
    options: PlanOptions,
    lookahead: i64,
    planner: tiercare_engine::Planner<'r>,
    snapshot: Snapshot,
    state: EngineState,
}

impl<'r> CustomerPlanner<'r> {
    fn new(rules: &'r RuleSet, options: PlanOptions, lookahead: i64) -> Self {
        CustomerPlanner {
            options,
            lookahead,
            planner: rules.planner(),
            snapshot: Snapshot::new(),
            state: EngineState::default(),
        }
    }

    /// What the store reads for the range.
    fn range(rules: &RuleSet, options: PlanOptions) -> StateRange {
        StateRange {
            events_since: options.events_since,
            events_until: options.to,
            emails_since: options.from - email_lookback(rules),
            segments: rules.followups().any(|rule| !rule.segments.is_empty()),
        }
    }

    /// The customer's plan over `[options.from, options.to)` and, with a lookahead, the
    /// earliest occurrence over `[options.to, options.to + lookahead)` (`None` when none): if
    /// recording this plan writes nothing new, a later range records nothing for them before
    /// that time while nothing changes (else it is [`due_after`]'s `options.to`).
    fn plan(
        &mut self,
        features: &CustomerFeatures,
        stored: &StoreState,
    ) -> (tiercare_engine::Plan, Option<i64>) {
        let options = self.options;
        self.snapshot.reset();
        fill_snapshot(&mut self.snapshot, features);
        fill_state(&mut self.state, features, stored);
        let plan = self.planner.plan(
            &self.snapshot,
            &self.state,
            options.from,
            options.to,
            options.timezone,
        );
        if self.lookahead <= 0 {
            return (plan, None);
        }
        let ahead = self.planner.plan(
            &self.snapshot,
            &self.state,
            options.to,
            options.to.saturating_add(self.lookahead),
            options.timezone,
        );
        let due = earliest_occurrence(&ahead, options.to, &plan);
        (plan, due)
    }
}

/// When a customer next needs planning: at `to` when recording their plan over a range ending
/// there wrote something new (it was not in the state the lookahead planned from), else at
/// their earliest occurrence ahead.
fn due_after(wrote: bool, to: i64, ahead: Option<i64>) -> Option<i64> {
    if wrote { Some(to) } else { ahead }
}

/// What [`for_each_plan_ahead`] calls with each customer: features, state, plan and the
/// earliest occurrence ahead.
type VisitAhead<'v> =
    dyn FnMut(&CustomerFeatures, &EngineState, &tiercare_engine::Plan, Option<i64>) + 'v;

/// [`for_each_plan`], and with `lookahead > 0` also each customer's plan over
/// `[options.to, options.to + lookahead)` from the same features and ledger state: `visit` gets
/// the earliest occurrence the customer has there (`None` when nothing occurs in it).
fn for_each_plan_ahead(
    reader: &Store,
    rules: &RuleSet,
    options: PlanOptions,
    lookahead: i64,
    visit: &mut VisitAhead<'_>,
) -> Result<(), AssessError> {
    let range = CustomerPlanner::range(rules, options);
    let mut customer = CustomerPlanner::new(rules, options, lookahead);
    reader.for_each_followup_state(
        options.from,
        rules.window(),
        range,
        &mut |features, stored| {
            let (plan, ahead) = customer.plan(features, stored);
            visit(features, &customer.state, &plan, ahead);
        },
    )?;
    Ok(())
}

/// Running totals of [`plan`].
struct PlanTally<'r> {
    rules: &'r RuleSet,
    timezone: Tz,
    customers: u64,
    by_kind: [u64; 4],
    days: BTreeMap<String, DayPlan>,
    per_rule: Vec<RulePlan>,
    rule_index: HashMap<String, usize>,
    per_tier: HashMap<String, TierPlan>,
    assignees: BTreeMap<String, u64>,
    skipped: BTreeMap<String, u64>,
    moved: BTreeMap<String, u64>,
    errors: BTreeMap<String, PlanRuleError>,
    notes: BTreeMap<String, u64>,
}

/// 0 email, 1 task, 2 other, 3 SMS.
fn kind_index(action: &Action) -> usize {
    match action {
        Action::Survey {
            channel: tiercare_engine::Channel::Sms,
            ..
        }
        | Action::Sms { .. } => 3,
        Action::Email { .. } | Action::Survey { .. } => 0,
        Action::Task { .. } => 1,
        _ => 2,
    }
}

impl<'r> PlanTally<'r> {
    fn new(rules: &'r RuleSet, timezone: Tz) -> Self {
        let per_rule: Vec<RulePlan> = rules
            .followups()
            .map(|rule| RulePlan {
                rule: rule.id.clone(),
                label: rule.label.clone(),
                action: rule.action.describe(),
                ..RulePlan::default()
            })
            .collect();
        let rule_index = per_rule
            .iter()
            .enumerate()
            .map(|(i, rule)| (rule.rule.clone(), i))
            .collect();
        PlanTally {
            rules,
            timezone,
            customers: 0,
            by_kind: [0; 4],
            days: BTreeMap::new(),
            per_rule,
            rule_index,
            per_tier: HashMap::new(),
            assignees: BTreeMap::new(),
            skipped: BTreeMap::new(),
            moved: BTreeMap::new(),
            errors: BTreeMap::new(),
            notes: BTreeMap::new(),
        }
    }

    fn date(&self, at: i64) -> String {
        self.timezone
            .timestamp_opt(at, 0)
            .single()
            .map(|t| t.format("%Y-%m-%d").to_string())
            .unwrap_or_else(|| at.to_string())
    }

    fn count(
        &mut self,
        features: &CustomerFeatures,
        state: &EngineState,
        plan: &tiercare_engine::Plan,
    ) {
        self.customers += 1;
        let tier = state.tier.as_deref().unwrap_or(NONE);
        let tier_plan = self
            .per_tier
            .entry(tier.to_owned())
            .or_insert_with(|| TierPlan {
                tier: tier.to_owned(),
                ..TierPlan::default()
            });
        tier_plan.customers += 1;
        if !plan.actions.is_empty() {
            tier_plan.customers_planned += 1;
        }
        for action in &plan.actions {
            let kind = kind_index(&action.action);
            match kind {
                0 => tier_plan.emails += 1,
                1 => tier_plan.tasks += 1,
                3 => tier_plan.sms += 1,
                _ => tier_plan.other += 1,
            }
        }
        for action in &plan.actions {
            self.count_action(features, action);
        }
        for skipped in &plan.skipped {
            let name = skipped.skipped.name();
            *self.skipped.entry(name.to_owned()).or_default() += 1;
            if let Some(&i) = self.rule_index.get(&skipped.rule_id) {
                *self.per_rule[i].skipped.entry(name.to_owned()).or_default() += 1;
            }
        }
        for error in &plan.errors {
            self.errors
                .entry(error.rule.clone())
                .and_modify(|e| e.customers += 1)
                .or_insert_with(|| PlanRuleError {
                    rule: error.rule.clone(),
                    customers: 1,
                    example_customer: features.customer_id.clone(),
                    message: format!("{} ({})", error.message, error.location),
                });
        }
        for note in &plan.notes {
            *self.notes.entry(note.clone()).or_default() += 1;
        }
    }

    fn count_action(&mut self, features: &CustomerFeatures, action: &PlannedAction) {
        let kind = kind_index(&action.action);
        self.by_kind[kind] += 1;
        let date = self.date(action.scheduled_at);
        let day = self.days.entry(date.clone()).or_insert_with(|| DayPlan {
            date,
            ..DayPlan::default()
        });
        match kind {
            0 => day.emails += 1,
            1 => day.tasks += 1,
            3 => day.sms += 1,
            _ => day.other += 1,
        }
        *day.rules.entry(action.rule_id.clone()).or_default() += 1;
        if let Action::Task { assignee, .. } = &action.action {
            let who = match assignee {
                EngineAssignee::Owner if features.owner.trim().is_empty() => {
                    "(no owner)".to_owned()
                }
                EngineAssignee::Owner => features.owner.clone(),
                other => other.to_string(),
            };
            *self.assignees.entry(who).or_default() += 1;
        }
        for moved in &action.moved {
            *self.moved.entry(moved.why.to_owned()).or_default() += 1;
        }
        if let Some(&i) = self.rule_index.get(&action.rule_id) {
            let rule = &mut self.per_rule[i];
            rule.planned += 1;
            if rule.sample_customers.len() < SAMPLES
                && !rule.sample_customers.contains(&action.customer_id)
            {
                rule.sample_customers.push(action.customer_id.clone());
                rule.samples.push(ActionSample {
                    customer_id: action.customer_id.clone(),
                    scheduled_at: action.scheduled_at,
                    occurrence_at: action.occurrence_at,
                    occurrence_key: action.occurrence_key.clone(),
                    reason: action.reason.clone(),
                });
            }
            for moved in &action.moved {
                match moved.why {
                    "min gap" => rule.moved_gap += 1,
                    _ => rule.moved_window += 1,
                }
            }
        }
    }

    fn finish(mut self, options: PlanOptions, started: Instant) -> PlanSummary {
        let mut tiers = Vec::new();
        for tier in self.rules.tiers() {
            if let Some(plan) = self.per_tier.remove(&tier.id) {
                tiers.push(plan);
            }
        }
        let mut rest: Vec<TierPlan> = self.per_tier.into_values().collect();
        rest.sort_by(|a, b| a.tier.cmp(&b.tier));
        tiers.extend(rest);
        PlanSummary {
            from: options.from,
            to: options.to,
            ruleset_version: self.rules.version().to_owned(),
            customers: self.customers,
            emails: self.by_kind[0],
            sms: self.by_kind[3],
            tasks: self.by_kind[1],
            other: self.by_kind[2],
            days: self.days.into_values().collect(),
            rules: self.per_rule,
            tiers,
            assignees: self.assignees,
            skipped: self.skipped,
            moved: self.moved,
            rule_errors: self.errors.into_values().collect(),
            notes: self.notes,
            capacity_warnings: Vec::new(),
            elapsed_ms: started.elapsed().as_millis(),
        }
    }
}

/// Plans every customer's follow-ups over `[options.from, options.to)` and summarises them.
/// Read-only: nothing is written, so the same plan can be previewed any number of times.
pub fn plan(
    reader: &Store,
    rules: &RuleSet,
    options: PlanOptions,
) -> Result<PlanSummary, AssessError> {
    plan_of(reader, rules, options, None)
}

/// [`plan`], of the customers `owner` (a manager's external id) owns only when given: the
/// same planning of each customer, counted for theirs alone (the staff workspace's plan of a
/// manager), with the capacity warnings about `owner` alone.
pub fn plan_of(
    reader: &Store,
    rules: &RuleSet,
    options: PlanOptions,
    owner: Option<&str>,
) -> Result<PlanSummary, AssessError> {
    let started = Instant::now();
    let mut tally = PlanTally::new(rules, options.timezone);
    for_each_plan(reader, rules, options, &mut |features, state, plan| {
        if owner.is_none_or(|owner| features.owner == owner) {
            tally.count(features, state, plan);
        }
    })?;
    let mut summary = tally.finish(options, started);
    let days = u64::try_from((options.to - options.from).max(0) / 86_400).unwrap_or(0);
    summary.capacity_warnings =
        capacity_warnings(&summary.assignees, &reader.managers()?, days.max(1));
    if let Some(owner) = owner {
        summary
            .capacity_warnings
            .retain(|warning| warning.assignee == owner);
    }
    Ok(summary)
}

/// What [`record_due`] did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RecordReport {
    /// The start of the range (unix seconds).
    pub from: i64,
    /// Follow-ups due before this time were recorded (unix seconds).
    pub until: i64,
    /// The rule-set version.
    pub ruleset_version: String,
    /// Customers planned for.
    pub customers: u64,
    /// Customers given an owner first, by the rules' `assignment` section.
    pub owners_assigned: u64,
    /// New ledger rows (skipped ones included).
    pub new: u64,
    /// Occurrences already in the ledger: nothing written.
    pub existing: u64,
    /// New rows recorded as skipped (by the policy, or no one to carry them out).
    pub skipped: u64,
    /// New rows left planned (emails for the outbox).
    pub planned: u64,
    /// Emails rendered and queued in the outbox with their follow-ups.
    pub queued: u64,
    /// Tasks created.
    pub tasks_created: u64,
    /// Customer attributes set.
    pub attributes_set: u64,
    /// Rule conditions that failed, customer occurrences.
    pub rule_errors: u64,
    /// With a lookahead ([`record_due_ahead`]): the earliest occurrence of any customer in
    /// `[until, until + lookahead)` as the data stood, `None` when none (or no lookahead).
    pub next_due: Option<i64>,
    /// With a lookahead: each customer with an occurrence in `[until, until + lookahead)`
    /// (or something recorded now), with when and the features planned from.
    #[serde(skip)]
    pub due_customers: Vec<DueCustomer>,
    /// Wall time in milliseconds.
    pub elapsed_ms: u128,
}

impl RecordReport {
    /// An empty report of recording `options`' range with `rules`.
    fn starting(rules: &RuleSet, options: PlanOptions) -> Self {
        RecordReport {
            from: options.from,
            until: options.to,
            ruleset_version: rules.version().to_owned(),
            ..RecordReport::default()
        }
    }

    /// Keeps who falls due in the lookahead, and the earliest of their times.
    fn set_due(&mut self, due_customers: Vec<DueCustomer>) {
        self.next_due = due_customers.iter().map(|customer| customer.due).min();
        self.due_customers = due_customers;
    }
}

fn store_assignee(assignee: &EngineAssignee) -> Assignee {
    match assignee {
        EngineAssignee::Owner => Assignee::Owner,
        EngineAssignee::Role(role) => Assignee::Role(role.clone()),
        EngineAssignee::Manager(name) => Assignee::Manager(name.clone()),
    }
}

/// The ledger's form of an engine action; an e-mail's coupon pool is looked up in `rules`.
fn store_action(
    rules: &RuleSet,
    action: &Action,
    occurrence_at: i64,
    scheduled_at: i64,
    title_of: &dyn Fn(&str) -> String,
) -> FollowUpAction {
    match action {
        Action::Email { template, coupon } => FollowUpAction::Email {
            template: template.clone(),
            survey: None,
            coupon: coupon
                .as_deref()
                .map(|pool| crate::incentives::coupon_request(rules, pool)),
        },
        Action::Survey {
            template,
            survey,
            channel: tiercare_engine::Channel::Sms,
        } => FollowUpAction::Sms {
            template: template.clone(),
            survey: Some(survey.clone()),
        },
        Action::Survey {
            template, survey, ..
        } => FollowUpAction::Email {
            template: template.clone(),
            survey: Some(survey.clone()),
            coupon: None,
        },
        Action::NotifyOwner { template } => FollowUpAction::NotifyOwner {
            template: template.clone(),
        },
        Action::Sms { template } => FollowUpAction::Sms {
            template: template.clone(),
            survey: None,
        },
        Action::Task {
            assignee,
            title,
            due,
        } => FollowUpAction::Task {
            assignee: store_assignee(assignee),
            title: title_of(title),
            due_at: (occurrence_at + due.unwrap_or(0)).max(scheduled_at),
            note: None,
        },
        Action::Set { attributes } => match attributes.iter().next() {
            Some((name, value)) if attributes.len() == 1 => FollowUpAction::SetAttribute {
                name: name.clone(),
                value: value.clone(),
            },
            _ => FollowUpAction::SetAttributes {
                values: attributes.clone(),
            },
        },
        Action::Tag { tag } => FollowUpAction::SetAttribute {
            name: tag.clone(),
            value: serde_json::Value::Bool(true),
        },
        Action::Points {
            amount, expires, ..
        } => FollowUpAction::EarnPoints {
            amount: *amount,
            expires_at: expires.map(|seconds| scheduled_at.saturating_add(seconds)),
        },
    }
}

/// Plans `[from, until)` and records every follow-up due in it into the ledger, in one
/// transaction: planned actions as planned (tasks and attributes carried out at once), and
/// occurrences the policy removed (re-entry, consent, no address, caps) as skipped, so they
/// are not planned again. Actions the policy moved past `until` are left for a later call.
///
/// Idempotent: an occurrence already in the ledger (same `RULE:TIME:CUSTOMER` key) is not
/// written again, so calling it twice for the same range creates nothing new. This is what the
/// daemon does on each tick, with `from` its previous tick.
///
/// First, customers without an owner get one by the rules' `assignment` section
/// ([`crate::owners::assign_owners`], its own transaction), so that the tasks recorded next
/// for `owner` go to them.
///
/// Features are read through `reader` while follow-ups are written through `writer` (a second
/// connection to the same database), as in [`crate::assess::assess`].
///
/// Each new email (to the customer, or notifying the owner) is addressed and rendered with
/// `renderer` now, and queued in the outbox in the same transaction as its follow-up (see
/// [`crate::outbox::compose`]); one without a usable address, or whose template does not
/// render, is recorded as skipped with the reason instead.
pub fn record_due(
    reader: &Store,
    writer: &mut Store,
    rules: &RuleSet,
    options: PlanOptions,
    now: i64,
    renderer: &dyn RenderEmail,
) -> Result<RecordReport, AssessError> {
    record_due_ahead(reader, writer, rules, options, now, renderer, 0)
}

/// A customer who falls due within a lookahead, with the features they were planned from
/// ([`RecordReport::due_customers`]): planning them again from these features over a range that
/// reaches `due` records what the lookahead saw, without the population's pass.
#[derive(Debug, Clone)]
pub struct DueCustomer {
    /// When the customer's next follow-up occurs (unix seconds).
    pub due: i64,
    /// The features the lookahead planned from.
    pub features: CustomerFeatures,
}

/// Records the plans of customers one after another in one follow-up session: the ledger rows
/// of each plan (and their outbox rows), counted into a [`RecordReport`].
struct Recorder<'a> {
    rules: &'a RuleSet,
    actions: HashMap<&'a str, &'a Action>,
    renderer: &'a dyn RenderEmail,
    now: i64,
    from: i64,
    write_error: Option<StoreError>,
}

impl<'a> Recorder<'a> {
    fn new(rules: &'a RuleSet, renderer: &'a dyn RenderEmail, now: i64, from: i64) -> Self {
        Recorder {
            rules,
            actions: rules
                .followups()
                .map(|rule| (rule.id.as_str(), &rule.action))
                .collect(),
            renderer,
            now,
            from,
            write_error: None,
        }
    }

    /// Records one customer's plan; after a write error, records nothing more. Whether a new
    /// ledger row was written (or may have been: a write failed).
    fn record(
        &mut self,
        session: &mut tiercare_store::FollowUpSession<'_>,
        report: &mut RecordReport,
        features: &CustomerFeatures,
        plan: &tiercare_engine::Plan,
    ) -> bool {
        let (rules, renderer, now) = (self.rules, self.renderer, self.now);
        report.customers += 1;
        report.rule_errors += plan.errors.len() as u64;
        if self.write_error.is_some() {
            return true;
        }
        // Task titles with the templates' context (`{{ customer.region }}`, `{{ tier.label }}`).
        let title_of = |text: &str| match renderer.render_text(text, &features.customer_id, now) {
            Ok(title) => title,
            Err(err) => {
                tracing::warn!(customer = %features.customer_id, error = %err.message, "task title not rendered: kept as written");
                text.to_owned()
            }
        };
        // A task already in the ledger is only refused as existing: its title is not rendered
        // (each range plans again the occurrences before it that its triggers still see).
        let as_written = |text: &str| text.to_owned();
        let recorded = |key: &OccurrenceKey, action: &Action| {
            matches!(action, Action::Task { .. }) && session.is_recorded(key).unwrap_or(false)
        };
        let mut planned: Vec<PlannedFollowUp> = Vec::new();
        for action in &plan.actions {
            let key =
                OccurrenceKey::new(&action.rule_id, &features.customer_id, action.occurrence_at);
            let stored = store_action(
                rules,
                &action.action,
                action.occurrence_at,
                action.scheduled_at,
                if recorded(&key, &action.action) {
                    &as_written
                } else {
                    &title_of
                },
            );
            planned.push(PlannedFollowUp {
                key,
                scheduled_at: action.scheduled_at,
                action: stored,
                reason: action.reason.clone(),
                skip: None,
            });
        }
        for skipped in &plan.skipped {
            if matches!(skipped.skipped, Skipped::Beyond { .. }) {
                continue;
            }
            let Some(action) = self.actions.get(skipped.rule_id.as_str()) else {
                continue;
            };
            let scheduled_at = skipped.occurrence_at.max(self.from);
            let key = OccurrenceKey::new(
                &skipped.rule_id,
                &features.customer_id,
                skipped.occurrence_at,
            );
            let stored = store_action(
                rules,
                action,
                skipped.occurrence_at,
                scheduled_at,
                if recorded(&key, action) {
                    &as_written
                } else {
                    &title_of
                },
            );
            let why = match &skipped.skipped {
                Skipped::Cap { period, limit } => {
                    format!("cap: {limit} per {}", format!("{period:?}").to_lowercase())
                }
                other => other.name().to_owned(),
            };
            planned.push(PlannedFollowUp {
                key,
                scheduled_at,
                action: stored,
                reason: format!("skipped by the contact policy: {why}"),
                skip: Some(why),
            });
        }
        let mut wrote = false;
        for follow_up in &planned {
            let mut compose = |to: &EmailRecipient| compose(renderer, to, now);
            let mut compose_sms =
                |to: &EmailRecipient| crate::sms::compose::compose_sms(renderer, to, now);
            match session.record_with_messages(
                follow_up,
                Some(&mut compose),
                Some(&mut compose_sms),
            ) {
                Ok(recorded) => {
                    wrote |= recorded.new;
                    if recorded.outbox_id.is_some() {
                        report.queued += 1;
                    }
                }
                Err(err) => match err {
                    // Refused before anything was written: the session goes on.
                    StoreError::InvalidFollowUp { .. } | StoreError::UnknownCustomer { .. } => {
                        tracing::warn!(customer = %features.customer_id, rule = %follow_up.key.rule_id, error = %err, "follow-up refused");
                    }
                    err => {
                        self.write_error = Some(err);
                        return true;
                    }
                },
            }
        }
        wrote
    }

    /// Commits the session (unless a write failed) and fills in its counts.
    fn finish(
        self,
        session: tiercare_store::FollowUpSession<'_>,
        report: &mut RecordReport,
        started: Instant,
    ) -> Result<(), AssessError> {
        if let Some(err) = self.write_error {
            return Err(err.into());
        }
        let outcome = session.finish()?;
        report.new = outcome.new;
        report.existing = outcome.existing;
        report.skipped = outcome.skipped;
        report.planned = outcome.planned;
        report.tasks_created = outcome.tasks_created;
        report.attributes_set = outcome.attributes_set;
        report.elapsed_ms = started.elapsed().as_millis();
        Ok(())
    }
}

/// [`record_due`], and with `lookahead > 0` also when the next follow-up falls due in
/// `[options.to, options.to + lookahead)` if nothing changes ([`RecordReport::next_due`]),
/// and who falls due then ([`RecordReport::due_customers`]): the daemon reads no customer
/// again before then while the data stays the same, and then only those.
pub fn record_due_ahead(
    reader: &Store,
    writer: &mut Store,
    rules: &RuleSet,
    options: PlanOptions,
    now: i64,
    renderer: &dyn RenderEmail,
    lookahead: i64,
) -> Result<RecordReport, AssessError> {
    let started = Instant::now();
    let mut report = RecordReport::starting(rules, options);
    report.owners_assigned =
        crate::owners::assign_owners(writer, rules, now, options.timezone, false)?.written;
    let mut recorder = Recorder::new(rules, renderer, now, options.from);
    let mut session = writer.begin_followups(now, rules.version())?;
    let mut due_customers = Vec::new();
    for_each_plan_ahead(
        reader,
        rules,
        options,
        lookahead,
        &mut |features, _state, plan, ahead| {
            let wrote = recorder.record(&mut session, &mut report, features, plan);
            if lookahead <= 0 {
                return;
            }
            if let Some(due) = due_after(wrote, options.to, ahead) {
                due_customers.push(DueCustomer {
                    due,
                    features: features.clone(),
                });
            }
        },
    )?;
    recorder.finish(session, &mut report, started)?;
    report.set_due(due_customers);
    Ok(report)
}

/// Plans and records `[options.from, options.to)` for `customers` only, each from the
/// features they were planned from before ([`DueCustomer::features`]) and their follow-up
/// state as stored now, in one transaction, with the same lookahead as
/// [`record_due_ahead`] (whose report they came from). No owner is assigned and no other
/// customer is read: what a daemon tick does for the customers whose time has come while
/// nothing else changed.
#[expect(
    clippy::too_many_arguments,
    reason = "record_due_ahead's arguments and the customers"
)]
pub fn record_due_for(
    reader: &Store,
    writer: &mut Store,
    rules: &RuleSet,
    options: PlanOptions,
    now: i64,
    renderer: &dyn RenderEmail,
    lookahead: i64,
    customers: &[DueCustomer],
) -> Result<RecordReport, AssessError> {
    let started = Instant::now();
    let mut report = RecordReport::starting(rules, options);
    let by_rowid: HashMap<i64, &DueCustomer> = customers
        .iter()
        .map(|customer| (customer.features.customer_rowid, customer))
        .collect();
    let rowids: Vec<i64> = by_rowid.keys().copied().collect();
    let mut recorder = Recorder::new(rules, renderer, now, options.from);
    let mut planner = CustomerPlanner::new(rules, options, lookahead);
    let range = CustomerPlanner::range(rules, options);
    let mut session = writer.begin_followups(now, rules.version())?;
    let mut due_customers = Vec::new();
    reader.for_each_followup_state_of(&rowids, range, &mut |stored| {
        let Some(customer) = by_rowid.get(&stored.customer_rowid) else {
            return;
        };
        let (plan, ahead) = planner.plan(&customer.features, stored);
        let wrote = recorder.record(&mut session, &mut report, &customer.features, &plan);
        if let Some(due) = due_after(wrote, options.to, ahead) {
            due_customers.push(DueCustomer {
                due,
                features: customer.features.clone(),
            });
        }
    })?;
    recorder.finish(session, &mut report, started)?;
    report.set_due(due_customers);
    Ok(report)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use tiercare_engine::RecordKind;

    use super::*;
    use crate::assess::{AssessOptions, RuleSource, assess};
    use crate::test_support::import;
    use crate::workspace::Workspace;

    /// 2025-06-02T00:00:00Z, a Monday.
    const FROM: i64 = 1_748_822_400;

    #[test]
    fn the_adapter_passes_exact_email_times_fired_rules_events_and_segments() {
        let features = CustomerFeatures {
            customer_rowid: 1,
            customer_id: "C1".to_owned(),
            previous_tier: "B".to_owned(),
            ..CustomerFeatures::default()
        };
        let stored = StoreState {
            customer_rowid: 1,
            last: vec![
                tiercare_store::LastOccurrence {
                    rule_id: "fired".to_owned(),
                    last_occurrence_at: FROM - DAY,
                    last_fired_at: Some(FROM - 2 * DAY),
                    last_given: Some((FROM - DAY / 2, FROM - 2 * DAY)),
                },
                tiercare_store::LastOccurrence {
                    rule_id: "only-skipped".to_owned(),
                    last_occurrence_at: FROM - DAY,
                    last_fired_at: None,
                    last_given: None,
                },
            ],
            emails: vec![FROM - 3 * DAY, FROM - 1, FROM + 3 * DAY],
            earlier_email: Some(FROM - 90 * DAY),
            sms: vec![FROM - 2 * DAY],
            events: vec![tiercare_store::CustomerEvent {
                customer_rowid: 1,
                at: FROM - 60,
                kind: EventKind::ComplaintOpened {
                    severity: 2,
                    subject: None,
                    resolved_at: None,
                },
            }],
            segments: vec![("rfm".to_owned(), "champions".to_owned())],
        };
        let mut state = EngineState {
            contacts: vec![42],
            ..EngineState::default()
        };
        fill_state(&mut state, &features, &stored);
        assert_eq!(state.tier.as_deref(), Some("B"));
        assert_eq!(state.last_fired, vec![("fired".to_owned(), FROM - 2 * DAY)]);
        assert_eq!(
            state.given,
            vec![Given {
                rule_id: "fired".to_owned(),
                occurrence_at: FROM - 2 * DAY,
                at: FROM - DAY / 2,
            }]
        );
        assert_eq!(
            state.contacts,
            vec![FROM - 90 * DAY, FROM - 3 * DAY, FROM - 1, FROM + 3 * DAY]
        );
        // SMS are counted apart from the emails.
        assert_eq!(state.sms_contacts, vec![FROM - 2 * DAY]);
        assert_eq!(state.events.len(), 1);
        assert_eq!(state.events[0].kind, EngineEventKind::Complaint);
        assert_eq!(state.segments, stored.segments);
        fill_state(
            &mut state,
            &CustomerFeatures::default(),
            &StoreState::default(),
        );
        assert_eq!(state.tier, None);
        assert!(state.contacts.is_empty() && state.events.is_empty() && state.given.is_empty());
        assert!(state.sms_contacts.is_empty());
    }

    #[test]
    fn a_managers_plan_counts_their_customers_alone_and_days_split_by_rule() {
        let tmp = tempfile::tempdir().unwrap();
        let (workspace, _) = Workspace::init(&tmp.path().join("ws"), chrono_tz::UTC).unwrap();
        let mut store = workspace.open_store().unwrap();
        import(
            &workspace,
            &mut store,
            RecordKind::Managers,
            "manager_id,name\nalice,Alice\nbob,Bob\n",
        );
        import(
            &workspace,
            &mut store,
            RecordKind::Customers,
            "customer_id,name,email,owner,consent_email,birthday\n\
             C1,Big Buyer,big@example.com,alice,true,1980-06-10\n\
             C2,Small Buyer,small@example.com,bob,true,1990-06-12\n\
             C3,Other,other@example.com,bob,true,1991-06-14\n",
        );
        import(
            &workspace,
            &mut store,
            RecordKind::Orders,
            "order_id,customer_id,ordered_at,amount\n\
             O1,C1,2025-01-10,9000\nO2,C2,2025-01-11,10\nO3,C3,2025-02-11,20\n",
        );
        let rules = RuleSource::read(&workspace.rules_dir(), Path::new("rules"))
            .unwrap()
            .load()
            .unwrap()
            .rules;
        let mut writer = workspace.open_store().unwrap();
        let assessment = AssessOptions {
            at: FROM,
            now: FROM,
            dry_run: false,
            growth: crate::growth::GrowthSettings::default(),
        };
        assess(&store, Some(&mut writer), &rules, assessment).unwrap();
        let options = PlanOptions {
            from: FROM,
            to: FROM + 30 * DAY,
            events_since: FROM - EVENT_LOOKBACK,
            timezone: chrono_tz::UTC,
        };
        let all = plan(&store, &rules, options).unwrap();
        let alice = plan_of(&store, &rules, options, Some("alice")).unwrap();
        let bob = plan_of(&store, &rules, options, Some("bob")).unwrap();
        assert_eq!((alice.customers, bob.customers), (1, 2));
        assert!(all.emails > 0, "{all:?}");
        assert_eq!(alice.emails + bob.emails, all.emails);
        assert_eq!(alice.tasks + bob.tasks, all.tasks);
        assert!(alice.assignees.keys().all(|who| who != "bob"), "{alice:?}");
        for day in &all.days {
            assert_eq!(
                day.rules.values().sum::<u64>(),
                day.emails + day.sms + day.tasks + day.other,
                "{day:?}"
            );
        }
    }

    #[test]
    fn planning_writes_nothing_and_recording_twice_creates_nothing_new() {
        let tmp = tempfile::tempdir().unwrap();
        let (workspace, _) = Workspace::init(&tmp.path().join("ws"), chrono_tz::UTC).unwrap();
        let mut store = workspace.open_store().unwrap();
        import(
            &workspace,
            &mut store,
            RecordKind::Managers,
            "manager_id,name\nalice,Alice\n",
        );
        import(
            &workspace,
            &mut store,
            RecordKind::Customers,
            "customer_id,name,email,owner,consent_email,birthday\n\
             C1,Big Buyer,big@example.com,alice,true,1980-06-10\n\
             C2,Small Buyer,small@example.com,alice,true,1990-06-12\n\
             C3,Quiet,,alice,true,\n",
        );
        import(
            &workspace,
            &mut store,
            RecordKind::Orders,
            "order_id,customer_id,ordered_at,amount\n\
             O1,C1,2025-01-10,9000\nO2,C2,2025-01-11,10\n",
        );
        let rules = RuleSource::read(&workspace.rules_dir(), Path::new("rules"))
            .unwrap()
            .load()
            .unwrap()
            .rules;
        let mut writer = workspace.open_store().unwrap();
        let options = AssessOptions {
            at: FROM,
            now: FROM,
            dry_run: false,
            growth: crate::growth::GrowthSettings::default(),
        };
        assess(&store, Some(&mut writer), &rules, options).unwrap();
        let options = PlanOptions {
            from: FROM,
            to: FROM + 30 * DAY,
            events_since: FROM - EVENT_LOOKBACK,
            timezone: chrono_tz::UTC,
        };

        let summary = plan(&store, &rules, options).unwrap();
        assert_eq!(summary.customers, 3);
        assert!(summary.emails > 0 && summary.tasks > 0, "{summary:?}");
        assert_eq!(summary.skipped.get("no_address"), Some(&1), "{summary:?}");
        assert_eq!(ledger(&store), (0, 0), "a plan writes nothing");

        let first = record_due(&store, &mut writer, &rules, options, FROM, &Fixed).unwrap();
        assert!(first.new > 0 && first.tasks_created > 0, "{first:?}");
        // Every planned email is rendered and queued with its follow-up.
        assert!(first.queued > 0, "{first:?}");
        assert_eq!(first.queued, first.planned, "{first:?}");
        let outbox = store.outbox(None, 1000).unwrap();
        assert_eq!(outbox.len() as u64, first.queued);
        assert!(
            outbox
                .iter()
                .all(|email| email.subject.starts_with("Subject "))
        );
        let after_first = ledger(&store);
        assert_eq!(after_first.0 as u64, first.new);
        assert_eq!(after_first.1 as u64, first.tasks_created);
        // Recording the range again finds every occurrence in the ledger: no task title is
        // rendered for a task that is not created.
        let titles = Counting::default();
        let second = record_due(&store, &mut writer, &rules, options, FROM + 60, &titles).unwrap();
        assert_eq!(titles.0.get(), 0, "task titles rendered for existing tasks");
        assert_eq!(second.new, 0, "{second:?}");
        assert_eq!(second.queued, 0, "{second:?}");
        assert_eq!(store.outbox(None, 1000).unwrap().len(), outbox.len());
        assert_eq!(second.tasks_created, 0, "{second:?}");
        assert!(second.existing > 0, "{second:?}");
        assert_eq!(ledger(&store), after_first);
    }

    #[test]
    fn a_plan_counts_sms_in_their_own_column_not_as_emails_or_other() {
        let tmp = tempfile::tempdir().unwrap();
        let (workspace, _) = Workspace::init(&tmp.path().join("ws"), chrono_tz::UTC).unwrap();
        let mut store = workspace.open_store().unwrap();
        import(
            &workspace,
            &mut store,
            RecordKind::Customers,
            "customer_id,name,email,phone,timezone,consent_email,consent_sms\n\
             C1,Both,c1@example.com,+4915112345678,UTC,true,true\n",
        );
        let rules = tiercare_engine::load_rules(&[tiercare_engine::RuleFile::new(
            "rules/both.yaml",
            "tiering:\n  window: 365d\n  tiers:\n    - id: C\n      when: true\n\
             followups:\n  - id: mail\n    cron: \"0 10 * * 1\"\n    email: { template: care }\n\
             \x20 - id: text\n    cron: \"0 11 * * 1\"\n    sms: { template: hello }\n",
        )])
        .unwrap()
        .rules;
        let options = PlanOptions {
            from: FROM,
            to: FROM + 14 * DAY,
            events_since: FROM - EVENT_LOOKBACK,
            timezone: chrono_tz::UTC,
        };
        let summary = plan(&store, &rules, options).unwrap();
        assert_eq!(
            (summary.emails, summary.sms, summary.tasks, summary.other),
            (2, 2, 0, 0),
            "{summary:?}"
        );
        let tier = &summary.tiers[0];
        assert_eq!((tier.emails, tier.sms, tier.other), (2, 2, 0), "{tier:?}");
        for day in &summary.days {
            assert_eq!(day.rules.values().sum::<u64>(), day.emails + day.sms);
        }
    }

    /// Daily emails at 10:00, at most 2 per ISO week and 2 days apart.
    const WEEKLY_CAP: &str = "\
tiering:
  window: 365d
  tiers:
    - id: C
      when: true
contact_policy:
  caps: { week: 2 }
  min_gap: 2d
followups:
  - id: daily
    cron: \"0 10 * * *\"
    email: { template: care }
";

    #[test]
    fn caps_count_emails_in_their_own_week_and_the_gap_starts_at_the_last_email() {
        let tmp = tempfile::tempdir().unwrap();
        let (workspace, _) = Workspace::init(&tmp.path().join("ws"), chrono_tz::UTC).unwrap();
        let mut store = workspace.open_store().unwrap();
        import(
            &workspace,
            &mut store,
            RecordKind::Customers,
            "customer_id,name,email,timezone,consent_email\n\
             C1,Sunday Mailed,c1@example.com,UTC,true\n\
             C2,Tuesday Mailed,c2@example.com,UTC,true\n",
        );
        let rules = tiercare_engine::load_rules(&[tiercare_engine::RuleFile::new(
            "rules/cap.yaml",
            WEEKLY_CAP,
        )])
        .unwrap()
        .rules;
        // Wednesday 2025-06-04 00:00 UTC.
        let wednesday = FROM + 2 * DAY;
        let at = |day: i64, hour: i64| FROM + day * DAY + hour * 3_600;
        let mut writer = workspace.open_store().unwrap();
        let mut session = writer.begin_followups(FROM - 7 * DAY, "v0").unwrap();
        // C1: two emails at the end of the week before (Saturday and Sunday 10:00); C2: one on
        // Tuesday 20:00 of this week, four hours before the plan starts.
        for (customer, scheduled_at) in [("C1", at(-2, 10)), ("C1", at(-1, 10)), ("C2", at(1, 20))]
        {
            session
                .record(&PlannedFollowUp {
                    key: OccurrenceKey::new("manual", customer, scheduled_at),
                    scheduled_at,
                    action: FollowUpAction::Email {
                        template: "care".to_owned(),
                        survey: None,
                        coupon: None,
                    },
                    reason: "sent by hand".to_owned(),
                    skip: None,
                })
                .unwrap();
        }
        session.finish().unwrap();
        let options = PlanOptions {
            from: wednesday,
            to: wednesday + 7 * DAY,
            events_since: wednesday - EVENT_LOOKBACK,
            timezone: chrono_tz::UTC,
        };
        let mut planned: BTreeMap<String, Vec<(i64, Vec<&'static str>)>> = BTreeMap::new();
        for_each_plan(&store, &rules, options, &mut |features, _, plan| {
            for action in &plan.actions {
                planned
                    .entry(features.customer_id.clone())
                    .or_default()
                    .push((
                        action.scheduled_at,
                        action.moved.iter().map(|moved| moved.why).collect(),
                    ));
            }
        })
        .unwrap();
        // C1: last week's two emails do not count this week, so Wednesday goes out; Thursday
        // is moved to Friday by the gap; then the week is full until Monday.
        assert_eq!(
            planned["C1"],
            [
                (at(2, 10), vec![]),
                (at(4, 10), vec!["min gap"]),
                (at(7, 10), vec![]),
            ]
        );
        // C2: the gap runs from Tuesday 20:00 exactly, to Thursday 20:00; with Tuesday's email
        // the week is then full until Monday.
        assert_eq!(
            planned["C2"],
            [(at(3, 20), vec!["min gap"]), (at(7, 10), vec![])]
        );
    }

    /// Renders every template as a fixed text naming the template and customer.
    struct Fixed;

    impl RenderEmail for Fixed {
        fn render(
            &self,
            template: &str,
            customer: &str,
            _at: i64,
        ) -> Result<crate::outbox::RenderedEmail, crate::outbox::RenderError> {
            Ok(crate::outbox::RenderedEmail {
                subject: format!("Subject {template} {customer}"),
                text: "text".to_owned(),
                html: None,
            })
        }
    }

    /// [`Fixed`], counting the task titles it renders.
    #[derive(Default)]
    struct Counting(std::cell::Cell<u32>);

    impl RenderEmail for Counting {
        fn render(
            &self,
            template: &str,
            customer: &str,
            at: i64,
        ) -> Result<crate::outbox::RenderedEmail, crate::outbox::RenderError> {
            Fixed.render(template, customer, at)
        }

        fn render_text(
            &self,
            text: &str,
            _customer: &str,
            _at: i64,
        ) -> Result<String, crate::outbox::RenderError> {
            self.0.set(self.0.get() + 1);
            Ok(text.to_owned())
        }
    }

    /// Follow-ups in the ledger and tasks, of the three customers.
    fn ledger(store: &Store) -> (usize, usize) {
        let followups = ["C1", "C2", "C3"]
            .iter()
            .map(|id| store.followups_of(id).unwrap().len())
            .sum();
        let filter = tiercare_store::TaskFilter {
            view: tiercare_store::TaskView::All,
            ..tiercare_store::TaskFilter::default()
        };
        (followups, store.tasks(&filter, FROM).unwrap().len())
    }
}
