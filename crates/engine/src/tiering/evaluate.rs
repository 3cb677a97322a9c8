//! Evaluating a [`RuleSet`] for one customer: scores, then tiers (first match), then every
//! segment set (first match each), then the manual pin and hysteresis, giving a [`Decision`].
//!
//! An [`Evaluator`] belongs to one thread and keeps its Rhai scope between customers, so the
//! cost per customer is the scripts themselves. Errors never stop an evaluation: a failing
//! condition counts as not matched, a failing score is recorded as NaN (and the conditions that
//! read it fail too), and each failure is a [`RuleError`] in [`Decision::errors`].
//!
//! # Pins and hysteresis
//!
//! 1. An active [`Pin`] beats the rules: the tier is the pinned one, the reason says who pinned it,
//!    until when and why, and any pending downgrade is cleared.
//! 2. Otherwise the rules' tier ([`Decision::rule_tier`]) is compared with `previous_tier`, in the
//!    order of the tiers (first is highest; "no tier" is below every tier). An upgrade, or the same
//!    tier, applies at once and clears the pending downgrade. A downgrade applies when
//!    `pending_downgrade + 1 >= downgrade_after`; before that the customer keeps the previous
//!    tier and the decision carries the pending tier and the new count
//!    ([`Decision::pending_tier`], [`Decision::pending_count`]) for the store to save. A previous
//!    tier that is not a tier of these rules (renamed, removed) does not hold anything back.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use rhai::{Dynamic, EvalAltResult, ImmutableString, Scope};
use serde::Serialize;

use crate::customer::feature::Feature;
use crate::customer::snapshot::{Pin, Snapshot};
use crate::script::expression::{Expression, Program};
use crate::script::native;
use crate::script::native::Var;
use crate::script::sandbox::{self, Budget, Now};
use crate::tiering::hysteresis::{self, DowngradeAfter};
use crate::tiering::rule_set::{CompiledRule, RuleSet};

/// A rule that failed for one customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleError {
    /// The rule: `tiers[1] (B)`, `scores.potential`, `segments.rfm[0] (champions)`.
    pub rule: String,
    /// What went wrong.
    pub message: String,
    /// Where in the rule files (`rules/tiers.yaml:12:15`).
    pub location: String,
}

impl std::fmt::Display for RuleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.rule, self.location, self.message)
    }
}

/// The slowest run of one script rule, measured while profiling (see
/// [`Evaluator::set_profile`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleTime {
    /// The rule: `tiers[1] (B)`, `scores.potential`.
    pub rule: String,
    /// Where in the rule files (`rules/tiers.yaml:12:15`).
    pub location: String,
    /// Its slowest run.
    pub slowest: Duration,
    /// The customer of that run.
    pub customer: String,
}

/// What the rules decided for one customer.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Decision {
    /// The tier to store: after the pin and hysteresis. None when no tier matched (and nothing
    /// held a previous tier).
    pub tier: Option<String>,
    /// The tier the rules asked for, before the pin and hysteresis.
    pub rule_tier: Option<String>,
    /// Why, in one line: `A: revenue_share_before < 0.80 (0.12)`,
    /// `pinned by alice until 2026-03-01: strategic account`,
    /// `kept A: downgrade to B pending (1 of 2)`.
    pub reason: String,
    /// The lower tier a held downgrade asks for (with [`Decision::pending_count`] > 0).
    pub pending_tier: Option<String>,
    /// The new hysteresis counter to store as `pending_downgrade` (0: nothing pending).
    pub pending_count: u32,
    /// When the held downgrade was first asked for (an assessment's time), to store with it;
    /// None when nothing is pending or the assessment's time is unknown.
    pub pending_since: Option<i64>,
    /// Whether a pin decided the tier.
    pub pinned: bool,
    /// Each segment set, in order, with the segment the customer is in (or none).
    pub segments: Vec<(String, Option<String>)>,
    /// Each score, in order, with its value (NaN when it failed).
    pub scores: Vec<(String, f64)>,
    /// Rules that failed for this customer.
    pub errors: Vec<RuleError>,
}

impl Decision {
    /// The segment of set `name`, if the customer is in one.
    #[must_use]
    pub fn segment(&self, name: &str) -> Option<&str> {
        self.segments
            .iter()
            .find(|(set, _)| set == name)
            .and_then(|(_, segment)| segment.as_deref())
    }

    /// The value of score `name`.
    #[must_use]
    pub fn score(&self, name: &str) -> Option<f64> {
        self.scores
            .iter()
            .find(|(score, _)| score == name)
            .map(|(_, value)| *value)
    }
}

/// The result of running one expression.
pub(crate) type ScriptRun = Result<Dynamic, Box<EvalAltResult>>;

/// The outcome of one condition.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Outcome {
    Matched,
    NotMatched,
    Failed(RuleError),
}

/// Evaluates a [`RuleSet`] customer after customer, reusing its scratch space. One per thread.
#[derive(Debug)]
pub struct Evaluator<'r> {
    pub(crate) rules: &'r RuleSet,
    scope: Scope<'static>,
    /// Whether the scope holds the current customer (it is filled only when a script needs it:
    /// natively compiled expressions read the snapshot directly).
    scope_ready: bool,
    /// Score values of the current customer (None: failed).
    pub(crate) score_values: Vec<Option<Dynamic>>,
    /// Whether natively compiled expressions run natively (else every expression runs in Rhai).
    native: bool,
    /// The time each customer's evaluation may take (none: no deadline).
    budget: Option<Budget>,
    /// The time source while profiling script rules, and the slowest run of each.
    profile: Option<(Now, BTreeMap<String, RuleTime>)>,
}

/// How hysteresis and pins settled the tier (borrowing ids from the rules and the pin).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Settlement<'a> {
    pub(crate) tier: Option<&'a str>,
    pub(crate) pending_tier: Option<&'a str>,
    pub(crate) pending_count: u32,
    pub(crate) pending_since: Option<i64>,
    pub(crate) verdict: Verdict<'a>,
}

/// What decided the tier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict<'a> {
    Pinned(&'a Pin),
    /// The rules' tier applies (no previous tier, not a downgrade, or no hysteresis).
    Rules,
    DowngradeApplied {
        from: &'a str,
        after: DowngradeAfter,
    },
    Held {
        kept: &'a str,
        asked: Option<&'a str>,
        count: u32,
        of: DowngradeAfter,
        since: Option<i64>,
    },
}

impl<'r> Evaluator<'r> {
    pub(crate) fn new(rules: &'r RuleSet) -> Self {
        Evaluator {
            rules,
            scope: Scope::new(),
            scope_ready: false,
            score_values: Vec::with_capacity(rules.scores.len()),
            native: true,
            budget: None,
            profile: None,
        }
    }

    /// Gives every customer's evaluation a time budget (none by default): a script still running
    /// when it is spent is stopped, and the rule fails for that customer like any other error.
    pub fn set_budget(&mut self, budget: Option<Budget>) {
        self.budget = budget;
    }

    /// Measures every script rule's runs with `now` (none: stop measuring), keeping the slowest
    /// of each; [`Evaluator::take_profile`] returns them.
    pub fn set_profile(&mut self, now: Option<Now>) {
        self.profile = now.map(|now| (now, BTreeMap::new()));
    }

    /// The slowest run of each script rule measured so far, slowest first (and starts afresh).
    pub fn take_profile(&mut self) -> Vec<RuleTime> {
        let Some((_, times)) = self.profile.as_mut() else {
            return Vec::new();
        };
        let mut times: Vec<RuleTime> = std::mem::take(times).into_values().collect();
        times.sort_by_key(|time| std::cmp::Reverse(time.slowest));
        times
    }

    /// Turns the native fast path (simple conditions compiled to Rust instead of run in Rhai) on
    /// (the default) or off. Off, every expression runs in Rhai: the decisions are the same, only
    /// slower; benchmarks and tests compare the two paths with it.
    pub fn set_native(&mut self, enabled: bool) {
        self.native = enabled;
    }

    /// Evaluates only the condition of tier rule `index` (in the rules' order) for one customer,
    /// after computing the scores it may read: whether it matched, or why it failed. `None` when
    /// there is no such rule. For benchmarks of single conditions.
    pub fn tier_condition(
        &mut self,
        index: usize,
        snapshot: &Snapshot,
    ) -> Option<Result<bool, RuleError>> {
        let rules = self.rules;
        let rule = rules.tiers.get(index)?;
        self.start_customer();
        let mut errors = Vec::new();
        self.compute_scores(snapshot, &mut errors);
        Some(match self.condition(&rule.expr, snapshot) {
            Outcome::Matched => Ok(true),
            Outcome::NotMatched => Ok(false),
            Outcome::Failed(error) => Err(error),
        })
    }

    /// Decides the tier, segments and scores of one customer.
    pub fn evaluate(&mut self, snapshot: &Snapshot) -> Decision {
        let mut decision = Decision::default();
        self.evaluate_into(snapshot, &mut decision);
        decision
    }

    /// [`Evaluator::evaluate`] into an existing decision, reusing its strings and vectors: the
    /// cheap way to assess many customers in a loop.
    pub fn evaluate_into(&mut self, snapshot: &Snapshot, decision: &mut Decision) {
        let rules = self.rules;
        decision.errors.clear();
        self.start_customer();
        self.compute_scores(snapshot, &mut decision.errors);

        let mut rule_tier: Option<usize> = None;
        for (index, rule) in rules.tiers.iter().enumerate() {
            match self.condition(&rule.expr, snapshot) {
                Outcome::Matched => {
                    rule_tier = Some(index);
                    break;
                }
                Outcome::NotMatched => {}
                Outcome::Failed(error) => decision.errors.push(error),
            }
        }
        decision
            .segments
            .resize_with(rules.segment_sets.len(), Default::default);
        for (set, (name, segment)) in rules.segment_sets.iter().zip(&mut decision.segments) {
            let mut matched = None;
            for rule in &set.rules {
                match self.condition(&rule.expr, snapshot) {
                    Outcome::Matched => {
                        matched = Some(rule.info.id.as_str());
                        break;
                    }
                    Outcome::NotMatched => {}
                    Outcome::Failed(error) => decision.errors.push(error),
                }
            }
            if *name != set.name {
                name.clone_from(&set.name);
            }
            assign(segment, matched);
        }

        let settlement = settle(rules, rule_tier, snapshot);
        decision.reason.clear();
        self.write_reason(&mut decision.reason, rule_tier, snapshot, &settlement);
        assign(&mut decision.tier, settlement.tier);
        assign(
            &mut decision.rule_tier,
            rule_tier.map(|index| rules.tiers[index].info.id.as_str()),
        );
        assign(&mut decision.pending_tier, settlement.pending_tier);
        decision.pending_count = settlement.pending_count;
        decision.pending_since = settlement.pending_since;
        sandbox::start_budget(None);
        decision.pinned = matches!(settlement.verdict, Verdict::Pinned(_));
        decision
            .scores
            .resize_with(rules.scores.len(), || (String::new(), f64::NAN));
        for ((score, value), (name, slot)) in rules
            .scores
            .iter()
            .zip(&self.score_values)
            .zip(&mut decision.scores)
        {
            if *name != score.info.name {
                name.clone_from(&score.info.name);
            }
            *slot = value.as_ref().and_then(number).unwrap_or(f64::NAN);
        }
    }

    /// Starts a new customer.
    pub(crate) fn start_customer(&mut self) {
        self.scope_ready = false;
        self.score_values.clear();
        sandbox::start_budget(self.budget);
    }

    /// Fills the scope with the features the rules read and the scores so far, once per
    /// customer, when a script first needs it.
    fn ensure_scope(&mut self, snapshot: &Snapshot) {
        if self.scope_ready {
            return;
        }
        self.scope.rewind(0);
        for feature in &self.rules.features_used {
            self.scope
                .push_constant_dynamic(feature.name(), snapshot.dynamic(*feature).clone());
        }
        for (score, value) in self.rules.scores.iter().zip(&self.score_values) {
            self.scope.push_constant_dynamic(
                score.info.name.as_str(),
                value.clone().unwrap_or(Dynamic::UNIT),
            );
        }
        self.scope_ready = true;
    }

    /// Computes every score in order, adding each to the scope.
    pub(crate) fn compute_scores(&mut self, snapshot: &Snapshot, errors: &mut Vec<RuleError>) {
        for index in 0..self.rules.scores.len() {
            let expr = &self.rules.scores[index].expr;
            let value = match self.failed_dependency(expr) {
                Some(error) => {
                    errors.push(error);
                    None
                }
                None => match self.run(expr, snapshot) {
                    Ok(value) => match number(&value) {
                        Some(number) if number.is_finite() => Some(value),
                        Some(number) => {
                            errors.push(self.error(
                                expr,
                                format!("is not a finite number ({number}): a division by zero?"),
                                None,
                            ));
                            None
                        }
                        None => {
                            errors.push(self.error(
                                expr,
                                format!(
                                    "must return a number, but returned {} ({})",
                                    type_name(&value),
                                    crate::text::diagnostic::excerpt(&display_value(&value))
                                ),
                                None,
                            ));
                            None
                        }
                    },
                    Err(err) => {
                        errors.push(self.script_error(expr, &err));
                        None
                    }
                },
            };
            self.push_score(index, value);
        }
    }

    /// Records score `index` and makes it a variable of what follows (`()` when it failed).
    pub(crate) fn push_score(&mut self, index: usize, value: Option<Dynamic>) {
        if self.scope_ready {
            let name = self.rules.scores[index].info.name.as_str();
            self.scope
                .push_constant_dynamic(name, value.clone().unwrap_or(Dynamic::UNIT));
        }
        self.score_values.push(value);
    }

    /// Runs an expression (natively when it can, else its script against the scope, dropping
    /// whatever variables the script declared).
    pub(crate) fn run(&mut self, expr: &Expression, snapshot: &Snapshot) -> ScriptRun {
        if let Some(value) = self.native(expr, snapshot) {
            return Ok(value.into_dynamic());
        }
        self.run_script(expr, snapshot)
    }

    /// The native result, when the expression is compiled natively and that gives one.
    fn native(&self, expr: &Expression, snapshot: &Snapshot) -> Option<native::Value> {
        if !self.native {
            return None;
        }
        let node = expr.native.as_ref()?;
        native::eval(
            node,
            &native::Context {
                snapshot,
                scores: &self.score_values,
            },
        )
    }

    fn run_script(&mut self, expr: &Expression, snapshot: &Snapshot) -> ScriptRun {
        match &expr.program {
            Program::Constant(value) => Ok(Dynamic::from_bool(*value)),
            Program::Script(ast) => {
                self.ensure_scope(snapshot);
                let base = self.scope.len();
                let started = self.profile.as_ref().map(|(now, _)| now());
                let (engine, scope) = (&self.rules.engine, &mut self.scope);
                let result = crate::script::growth::with_customer(snapshot, || {
                    engine.eval_ast_with_scope::<Dynamic>(scope, ast)
                });
                self.scope.rewind(base);
                if let (Some(started), Some((now, _))) = (started, self.profile.as_ref()) {
                    let took = now() - started;
                    self.record_time(expr, took, snapshot);
                }
                result
            }
        }
    }

    /// Evaluates an amount (a follow-up's `points: { earn: ... }`): a number, or why not.
    pub(crate) fn amount(
        &mut self,
        expr: &Expression,
        snapshot: &Snapshot,
    ) -> Result<f64, RuleError> {
        if let Some(error) = self.failed_dependency(expr) {
            return Err(error);
        }
        match self.run(expr, snapshot) {
            Ok(value) => value
                .as_float()
                .ok()
                .or_else(|| value.as_int().ok().map(|i| i as f64))
                .filter(|amount| amount.is_finite())
                .ok_or_else(|| {
                    self.error(
                        expr,
                        format!(
                            "must return a number of points, but returned {} ({})",
                            type_name(&value),
                            display_value(&value)
                        ),
                        None,
                    )
                }),
            Err(err) => Err(self.script_error(expr, &err)),
        }
    }

    /// Evaluates a condition.
    pub(crate) fn condition(&mut self, expr: &Expression, snapshot: &Snapshot) -> Outcome {
        if let Some(error) = self.failed_dependency(expr) {
            return Outcome::Failed(error);
        }
        if let Program::Constant(value) = expr.program {
            return if value {
                Outcome::Matched
            } else {
                Outcome::NotMatched
            };
        }
        if let Some(node) = expr.native.as_ref().filter(|_| self.native) {
            let context = native::Context {
                snapshot,
                scores: &self.score_values,
            };
            match native::eval_bool(node, &context) {
                Some(true) => return Outcome::Matched,
                Some(false) => return Outcome::NotMatched,
                None => {}
            }
        }
        match self.run_script(expr, snapshot) {
            Ok(value) => match value.as_bool() {
                Ok(true) => Outcome::Matched,
                Ok(false) => Outcome::NotMatched,
                Err(_) => Outcome::Failed(self.error(
                    expr,
                    format!(
                        "must return true or false, but returned {} ({})",
                        type_name(&value),
                        crate::text::diagnostic::excerpt(&display_value(&value))
                    ),
                    None,
                )),
            },
            Err(err) => Outcome::Failed(self.script_error(expr, &err)),
        }
    }

    /// Keeps `took` if it is the slowest run of `expr` so far.
    fn record_time(&mut self, expr: &Expression, took: Duration, snapshot: &Snapshot) {
        let location = self.rules.locate(expr, None).to_string();
        let customer = snapshot.dynamic(Feature::CustomerId).to_string();
        let Some((_, times)) = self.profile.as_mut() else {
            return;
        };
        let entry = times.entry(expr.label.clone()).or_insert_with(|| RuleTime {
            rule: expr.label.clone(),
            location,
            slowest: Duration::ZERO,
            customer: String::new(),
        });
        if took >= entry.slowest {
            entry.slowest = took;
            entry.customer = customer;
        }
    }

    /// An error when `expr` reads a score that failed for this customer.
    fn failed_dependency(&self, expr: &Expression) -> Option<RuleError> {
        if self.score_values.iter().all(Option::is_some) {
            return None;
        }
        expr.vars.iter().find_map(|var| match var {
            Var::Score(index) if self.score_values.get(*index).is_some_and(Option::is_none) => {
                Some(self.error(
                    expr,
                    format!(
                        "uses score `{}`, which failed",
                        self.rules.scores[*index].info.name
                    ),
                    None,
                ))
            }
            _ => None,
        })
    }

    fn error(
        &self,
        expr: &Expression,
        message: String,
        position: Option<(usize, usize)>,
    ) -> RuleError {
        RuleError {
            rule: expr.label.clone(),
            message,
            location: self.rules.locate(expr, position).to_string(),
        }
    }

    fn script_error(&self, expr: &Expression, err: &EvalAltResult) -> RuleError {
        let mut message = sandbox::describe_eval_error(err);
        // Name the library functions the error went through.
        let mut current = err;
        let mut functions = Vec::new();
        while let EvalAltResult::ErrorInFunctionCall(name, _, inner, _) = current {
            functions.push(name.as_str());
            current = inner;
        }
        if let Some(innermost) = functions.last() {
            let at = match (
                self.rules.library_path(innermost),
                sandbox::ScriptError::Eval(current).position(),
            ) {
                (Some(location), Some((line, column))) => {
                    format!(" ({}:{line}:{column})", location.path)
                }
                _ => String::new(),
            };
            message = format!("in function `{innermost}`{at}: {message}");
        }
        self.error(expr, message, call_site(err))
    }

    /// The one-line reason.
    fn write_reason(
        &self,
        out: &mut String,
        rule_tier: Option<usize>,
        snapshot: &Snapshot,
        settlement: &Settlement,
    ) {
        let rules_reason = |out: &mut String| match rule_tier {
            Some(index) => self.write_rule_reason(out, &self.rules.tiers[index], snapshot),
            None => out.push_str("no tier matched"),
        };
        match &settlement.verdict {
            Verdict::Pinned(pin) => out.push_str(&pin.describe()),
            Verdict::Rules => rules_reason(out),
            Verdict::DowngradeApplied { from, after } => {
                rules_reason(out);
                match after {
                    DowngradeAfter::Count(n) => {
                        let _ = write!(out, "; down from {from} after {n} assessments");
                    }
                    DowngradeAfter::Duration(_) => {
                        let _ = write!(out, "; down from {from} after {after} below it");
                    }
                }
            }
            Verdict::Held {
                kept,
                asked,
                count,
                of,
                since,
            } => {
                let asked = asked.unwrap_or("no tier");
                match (of, since) {
                    (DowngradeAfter::Duration(_), Some(since)) => {
                        let _ = write!(
                            out,
                            "kept {kept}: downgrade to {asked} pending since {} ({of} needed)",
                            date_text(*since)
                        );
                    }
                    _ => {
                        let _ = write!(
                            out,
                            "kept {kept}: downgrade to {asked} pending ({count} of {of})"
                        );
                    }
                }
            }
        }
    }

    /// `A: revenue_share_before < 0.80 (0.12)`.
    fn write_rule_reason(&self, out: &mut String, rule: &CompiledRule, snapshot: &Snapshot) {
        out.push_str(&rule.info.id);
        if matches!(rule.expr.program, Program::Constant(true)) {
            out.push_str(": no earlier tier matched");
            return;
        }
        out.push_str(": ");
        out.push_str(&rule.expr.one_line);
        match rule.expr.vars.as_slice() {
            [] => {}
            [var] => {
                let (_, value) = self.variable(*var, snapshot);
                let _ = write!(out, " ({})", display_value(&value));
            }
            several => {
                out.push_str(" (");
                for (position, var) in several.iter().enumerate() {
                    let (name, value) = self.variable(*var, snapshot);
                    if position > 0 {
                        out.push_str(", ");
                    }
                    let _ = write!(out, "{name} = {}", display_value(&value));
                }
                out.push(')');
            }
        }
    }

    /// A variable's name and value for this customer.
    pub(crate) fn variable(&self, var: Var, snapshot: &Snapshot) -> (&'r str, Dynamic) {
        match var {
            Var::Feature(feature) => (feature.name(), snapshot.dynamic(feature).clone()),
            Var::Score(index) => (
                self.rules.scores[index].info.name.as_str(),
                self.score_values
                    .get(index)
                    .cloned()
                    .flatten()
                    .unwrap_or(Dynamic::UNIT),
            ),
        }
    }
}

/// Applies the pin and hysteresis to the rules' tier (see the module documentation).
pub(crate) fn settle<'a>(
    rules: &'a RuleSet,
    rule_tier: Option<usize>,
    snapshot: &'a Snapshot,
) -> Settlement<'a> {
    let rule_id = rule_tier.map(|index| rules.tiers[index].info.id.as_str());
    if let Some(pin) = snapshot.pin() {
        return Settlement {
            tier: Some(pin.tier.as_str()),
            pending_tier: None,
            pending_count: 0,
            pending_since: None,
            verdict: Verdict::Pinned(pin),
        };
    }
    let apply = |verdict| Settlement {
        tier: rule_id,
        pending_tier: None,
        pending_count: 0,
        pending_since: None,
        verdict,
    };
    let Some(previous_rank) = previous_rank(rules, snapshot) else {
        return apply(Verdict::Rules);
    };
    let previous = rules.tiers[previous_rank].info.id.as_str();
    let new_rank = rule_tier.unwrap_or(rules.tiers.len());
    let after = rules.downgrade_after;
    if new_rank <= previous_rank || after.is_immediate() {
        return apply(Verdict::Rules);
    }
    let pending_before = snapshot
        .dynamic(Feature::PendingDowngrade)
        .as_int()
        .unwrap_or(0)
        .clamp(0, i64::from(u32::MAX - 1));
    let times = snapshot.times();
    let pending = hysteresis::Pending {
        count: u32::try_from(pending_before).unwrap_or(0),
        since: times.pending_since,
        at: times.at,
    };
    match hysteresis::step(after, pending) {
        hysteresis::Step::Applies => apply(Verdict::DowngradeApplied {
            from: previous,
            after,
        }),
        hysteresis::Step::Held { count, since } => Settlement {
            tier: Some(previous),
            pending_tier: rule_id,
            pending_count: count,
            pending_since: since,
            verdict: Verdict::Held {
                kept: previous,
                asked: rule_id,
                count,
                of: after,
                since,
            },
        },
    }
}

/// `2026-11-20` (UTC) for a time in reasons.
fn date_text(seconds: i64) -> String {
    chrono::DateTime::from_timestamp(seconds, 0).map_or_else(
        || seconds.to_string(),
        |at| at.format("%Y-%m-%d").to_string(),
    )
}

/// The rank of the customer's stored tier, if it is a tier of these rules.
fn previous_rank(rules: &RuleSet, snapshot: &Snapshot) -> Option<usize> {
    let previous = snapshot
        .dynamic(Feature::PreviousTier)
        .read_lock::<ImmutableString>()?;
    rules.tier_rank(previous.as_str())
}

/// The pin a snapshot carries, for explanations.
pub(crate) fn pin_of(snapshot: &Snapshot) -> Option<Pin> {
    snapshot.pin().cloned()
}

/// The position of the error in the expression itself: where it called into a library function,
/// or where it happened.
pub(crate) fn call_site(err: &EvalAltResult) -> Option<(usize, usize)> {
    let position = err.position();
    match (position.line(), position.position()) {
        (Some(line), Some(column)) => Some((line, column)),
        (Some(line), None) => Some((line, 1)),
        _ => sandbox::ScriptError::Eval(err).position(),
    }
}

/// Sets an optional string, reusing its allocation.
fn assign(slot: &mut Option<String>, value: Option<&str>) {
    match (slot.as_mut(), value) {
        (Some(text), Some(value)) => {
            if text != value {
                text.clear();
                text.push_str(value);
            }
        }
        (None, Some(value)) => *slot = Some(value.to_owned()),
        (_, None) => *slot = None,
    }
}

fn number(value: &Dynamic) -> Option<f64> {
    #[expect(clippy::cast_precision_loss, reason = "scores are reported as floats")]
    value
        .as_int()
        .map(|int| int as f64)
        .ok()
        .or_else(|| value.as_float().ok())
}

/// The type of a value as users name it.
pub(crate) fn type_name(value: &Dynamic) -> &'static str {
    if value.is_unit() {
        "nothing (`()`)"
    } else if value.is_bool() {
        "a bool"
    } else if value.is_int() {
        "an int"
    } else if value.is_float() {
        "a float"
    } else if value.is_string() {
        "text"
    } else if value.is_array() {
        "an array"
    } else if value.is_map() {
        "a map"
    } else {
        "a value"
    }
}

/// A value for reasons and messages: floats with at most 4 decimals, text in quotes, `()` as
/// `none`.
pub(crate) fn display_value(value: &Dynamic) -> String {
    if value.is_unit() {
        "none".to_owned()
    } else if let Ok(float) = value.as_float() {
        format_float(float)
    } else if value.is_string() {
        format!("{:?}", value.to_string())
    } else if value.is_map() || value.is_array() {
        crate::customer::snapshot::dynamic_to_json(value).to_string()
    } else {
        value.to_string()
    }
}

/// `0.1235`, `12.5`, `3.0`.
pub(crate) fn format_float(value: f64) -> String {
    if !value.is_finite() {
        return value.to_string();
    }
    let scaled = (value * 10_000.0).round();
    if scaled.abs() >= 1e15 {
        return format!("{value:?}");
    }
    // Fixed point on integers: much cheaper than float formatting, once per reason.
    #[expect(clippy::cast_possible_truncation, reason = "checked to be below 1e15")]
    let scaled = scaled as i64;
    let (whole, fraction) = (scaled / 10_000, (scaled % 10_000).abs());
    let sign = if scaled < 0 && whole == 0 { "-" } else { "" };
    if fraction == 0 {
        return format!("{sign}{whole}.0");
    }
    let digits = format!("{fraction:04}");
    format!("{sign}{whole}.{}", digits.trim_end_matches('0'))
}

impl RuleSet {
    /// A new evaluator (one per thread; it keeps scratch space between customers).
    #[must_use]
    pub fn evaluator(&self) -> Evaluator<'_> {
        Evaluator::new(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::customer::feature::{Feature, FeatureType};
    use crate::load::rules::{RuleFile, load_rules};

    /// The shipped rule sets: the default one and the Online Retail example.
    fn shipped_rule_sets() -> Vec<RuleSet> {
        let default = [
            (
                "rules/tiers.yaml",
                include_str!("../../../../rules/tiers.yaml"),
            ),
            (
                "rules/levels.yaml",
                include_str!("../../../../rules/levels.yaml"),
            ),
            ("rules/rfm.yaml", include_str!("../../../../rules/rfm.yaml")),
            (
                "rules/worthless.yaml",
                include_str!("../../../../rules/worthless.yaml"),
            ),
            (
                "rules/growth.yaml",
                include_str!("../../../../rules/growth.yaml"),
            ),
        ];
        let retail = [
            (
                "rules/tiers.yaml",
                include_str!("../../../../examples/online-retail/rules/tiers.yaml"),
            ),
            (
                "rules/rfm.yaml",
                include_str!("../../../../examples/online-retail/rules/rfm.yaml"),
            ),
        ];
        [&default[..], &retail[..]]
            .into_iter()
            .map(|files| {
                let files: Vec<RuleFile> = files
                    .iter()
                    .map(|(path, text)| RuleFile::new((*path).to_owned(), (*text).to_owned()))
                    .collect();
                load_rules(&files)
                    .unwrap_or_else(|diagnostics| panic!("{diagnostics:?}"))
                    .rules
            })
            .collect()
    }

    /// A customer with random but plausible features (and some edge values).
    fn random_snapshot(random: &mut impl FnMut() -> u64) -> Snapshot {
        let tiers = ["", "A", "B", "C", "gold"];
        let mut snapshot = Snapshot::new();
        for feature in Feature::all() {
            let spec = feature.spec();
            let r = random();
            if spec.optional && r.is_multiple_of(4) {
                continue;
            }
            let small = (r >> 8) % 12;
            match spec.ty {
                FeatureType::Int => {
                    let value = match (r >> 4) % 4 {
                        0 => (small as i64) % 6,
                        1 => ((r >> 16) % 1_000) as i64,
                        2 => ((r >> 16) % 40_000) as i64 - 1,
                        _ => [0, 1, 5, 365, 444, 545, 36_500][small as usize % 7],
                    };
                    snapshot.set_int(feature, value);
                }
                FeatureType::Time => {
                    snapshot.set_time(
                        feature,
                        Some(1_600_000_000 + ((r >> 16) % 100_000_000) as i64),
                    );
                }
                FeatureType::Float => {
                    let value = match (r >> 4) % 4 {
                        0 => [0.0, 0.8, 0.95, 0.7999999999999999, 1.0, 0.5][small as usize % 6],
                        1 => ((r >> 16) % 1_000_000) as f64 / 1_000_000.0,
                        2 => ((r >> 16) % 100_000_000) as f64 / 100.0,
                        _ => ((r >> 16) % 500) as f64 / 100.0,
                    };
                    if spec.optional {
                        snapshot.set_optional_float(feature, Some(value));
                    } else {
                        snapshot.set_float(feature, value);
                    }
                }
                FeatureType::Bool => snapshot.set_bool(feature, r.is_multiple_of(2)),
                FeatureType::Text if feature == Feature::PreviousTier => {
                    snapshot.set_text(feature, tiers[small as usize % tiers.len()]);
                }
                FeatureType::Text => {
                    snapshot.set_text(feature, ["", "EU", "US", "M1"][small as usize % 4])
                }
                FeatureType::Map => {}
            }
        }
        snapshot
    }

    /// The native fast path never changes a decision: over random customers, every shipped rule
    /// set decides exactly the same with it and with Rhai alone.
    #[test]
    fn native_and_rhai_decide_the_same() {
        use proptest::prelude::*;
        use std::cell::RefCell;
        let rule_sets = shipped_rule_sets();
        let evaluators: Vec<RefCell<(Evaluator<'_>, Evaluator<'_>)>> = rule_sets
            .iter()
            .map(|rules| {
                let mut rhai = rules.evaluator();
                rhai.set_native(false);
                RefCell::new((rules.evaluator(), rhai))
            })
            .collect();
        // One random customer per case, from choices proptest draws (and shrinks on failure).
        let config = ProptestConfig {
            cases: 2_000,
            source_file: Some(file!()),
            ..ProptestConfig::default()
        };
        let choices = prop::collection::vec(any::<u64>(), 64..128);
        let mut runner = proptest::test_runner::TestRunner::new(config);
        let result = runner.run(&choices, |choices| {
            let mut choices = choices.into_iter();
            let snapshot = random_snapshot(&mut move || choices.next().unwrap_or(0));
            for (rules, pair) in rule_sets.iter().zip(&evaluators) {
                let (native, rhai) = &mut *pair.borrow_mut();
                let fast = native.evaluate(&snapshot);
                let slow = rhai.evaluate(&snapshot);
                // NaN scores compare unequal: compare their bits.
                let bits = |d: &Decision| -> Vec<u64> {
                    d.scores.iter().map(|(_, v)| v.to_bits()).collect()
                };
                prop_assert_eq!(bits(&fast), bits(&slow), "{:?}", snapshot);
                let (mut fast, mut slow) = (fast, slow);
                fast.scores.clear();
                slow.scores.clear();
                prop_assert_eq!(fast, slow, "{:?}", snapshot);
                for index in 0..rules.tiers.len() {
                    let a = native.tier_condition(index, &snapshot).expect("a tier");
                    let b = rhai.tier_condition(index, &snapshot).expect("a tier");
                    prop_assert_eq!(a, b, "tier {}: {:?}", index, snapshot);
                }
            }
            Ok(())
        });
        if let Err(error) = result {
            panic!("{error}");
        }
    }

    #[test]
    fn floats_are_short() {
        assert_eq!(format_float(0.123_456), "0.1235");
        assert_eq!(format_float(12.5), "12.5");
        assert_eq!(format_float(3.0), "3.0");
        assert_eq!(format_float(-0.000_01), "0.0");
        assert_eq!(format_float(1e20), "1e20");
        assert_eq!(format_float(-0.25), "-0.25");
        assert_eq!(format_float(-12.000_04), "-12.0");
        assert_eq!(format_float(123_456.78), "123456.78");
        assert_eq!(format_float(0.999_99), "1.0");
        assert_eq!(display_value(&Dynamic::from("EU")), "\"EU\"");
        assert_eq!(display_value(&Dynamic::UNIT), "none");
    }
}
