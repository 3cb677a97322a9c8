//! Why a customer got their tier (`tiercare explain <customer>`): every score, every tier
//! condition and every segment condition, evaluated in order, each with its source, its result
//! and the value of every variable it read; then the pin and the hysteresis decision.
//!
//! An [`Explanation`] serializes to JSON (`--json`) and renders for people with
//! [`Explanation::render`].

use std::fmt::Write as _;

use serde::Serialize;

use crate::customer::feature::Feature;
use crate::customer::snapshot::{Pin, Snapshot, dynamic_to_json};
use crate::script::expression::Expression;
use crate::tiering::evaluate::{
    Decision, Evaluator, Outcome, Verdict, display_value, pin_of, settle,
};
use crate::tiering::hysteresis::DowngradeAfter;
use crate::tiering::rule_set::CompiledRule;

/// A variable an expression read, and its value for this customer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VariableValue {
    /// The feature or score name.
    pub name: String,
    /// Its value (`null` for none).
    pub value: serde_json::Value,
    /// The value as reasons show it (`0.1235`, `"EU"`, `none`; times also as a UTC date).
    pub display: String,
}

/// One tier or segment condition, evaluated.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConditionTrace {
    /// `tiers[1] (B)`, `segments.rfm[0] (champions)`.
    pub rule: String,
    /// The tier or segment id.
    pub id: String,
    /// Its label, if any.
    pub label: Option<String>,
    /// The condition's source.
    pub when: String,
    /// Where it is (`rules/tiers.yaml:9:13`).
    pub location: String,
    /// `true`, `false` or `error`.
    pub result: &'static str,
    /// The error, when the result is `error`.
    pub error: Option<String>,
    /// Whether this is the rule that decided (the first that matched).
    pub chosen: bool,
    /// The variables it read.
    pub variables: Vec<VariableValue>,
}

/// One score, evaluated.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScoreTrace {
    /// The score's name.
    pub name: String,
    /// Its expression.
    pub expression: String,
    /// Where it is.
    pub location: String,
    /// Its value (none when it failed).
    pub value: Option<f64>,
    /// The error, when it failed.
    pub error: Option<String>,
    /// The variables it read.
    pub variables: Vec<VariableValue>,
}

/// One segment set, evaluated.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SegmentSetTrace {
    /// The set's name.
    pub name: String,
    /// The segment the customer is in, if any.
    pub matched: Option<String>,
    /// Every condition of the set, in order.
    pub conditions: Vec<ConditionTrace>,
}

/// The hysteresis step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HysteresisTrace {
    /// The stored tier before this assessment, if any.
    pub previous_tier: Option<String>,
    /// What the rules asked for.
    pub rule_tier: Option<String>,
    /// The rule set's `downgrade_after` (a count, or a duration such as `30d`).
    pub downgrade_after: DowngradeAfter,
    /// `pending_downgrade` before this assessment.
    pub pending_before: i64,
    /// When the pending downgrade was first asked for, before this assessment (unix seconds),
    /// if one is pending and its start is known.
    pub pending_since: Option<i64>,
    /// The assessment's time (unix seconds), when known.
    pub at: Option<i64>,
    /// What happened, in one line.
    pub verdict: String,
}

/// Everything that went into one customer's decision.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Explanation {
    /// The customer's external id.
    pub customer_id: String,
    /// The rule set's version.
    pub rules_version: String,
    /// The decision (the same as [`Evaluator::evaluate`] gives).
    pub decision: Decision,
    /// Every score.
    pub scores: Vec<ScoreTrace>,
    /// Every tier condition, in order (also those after the one that matched).
    pub tiers: Vec<ConditionTrace>,
    /// Every segment set.
    pub segments: Vec<SegmentSetTrace>,
    /// The active pin, if any.
    pub pin: Option<Pin>,
    /// The hysteresis step.
    pub hysteresis: HysteresisTrace,
}

impl Evaluator<'_> {
    /// Evaluates one customer and records every step (slower than [`Evaluator::evaluate`]).
    pub fn explain(&mut self, snapshot: &Snapshot) -> Explanation {
        let decision = self.evaluate(snapshot);
        let rules = self.rules;
        self.start_customer();
        let mut score_errors = Vec::new();
        self.compute_scores(snapshot, &mut score_errors);
        let scores = rules
            .scores
            .iter()
            .enumerate()
            .map(|(index, score)| {
                let value = decision.scores.get(index).map(|(_, value)| *value);
                let error = score_errors
                    .iter()
                    .find(|error| error.rule == score.expr.label)
                    .map(|error| error.message.clone());
                ScoreTrace {
                    name: score.info.name.clone(),
                    expression: score.info.expression.clone(),
                    location: score.info.location.to_string(),
                    value: value.filter(|value| !value.is_nan()),
                    error,
                    variables: self.variables(&score.expr, snapshot),
                }
            })
            .collect();
        let tiers = self.trace_list(&rules.tiers, snapshot);
        let segments = rules
            .segment_sets
            .iter()
            .map(|set| {
                let conditions = self.trace_list(&set.rules, snapshot);
                SegmentSetTrace {
                    name: set.name.clone(),
                    matched: conditions.iter().find(|c| c.chosen).map(|c| c.id.clone()),
                    conditions,
                }
            })
            .collect();
        let rule_tier = decision
            .rule_tier
            .as_deref()
            .and_then(|id| rules.tier_rank(id));
        let settlement = settle(rules, rule_tier, snapshot);
        let previous = snapshot.dynamic(Feature::PreviousTier).to_string();
        let pending_before = snapshot
            .dynamic(Feature::PendingDowngrade)
            .as_int()
            .unwrap_or(0);
        let verdict = match &settlement.verdict {
            Verdict::Pinned(pin) => format!("the pin decides ({})", pin.describe()),
            Verdict::Rules if previous.is_empty() => {
                "no previous tier: the rules decide".to_owned()
            }
            Verdict::Rules if rules.tier_rank(&previous).is_none() => {
                format!(
                    "the previous tier `{previous}` is not a tier of these rules: the rules decide"
                )
            }
            Verdict::Rules if rules.downgrade_after.is_immediate() => {
                "no hysteresis: the rules decide".to_owned()
            }
            Verdict::Rules => "not a downgrade: applies at once".to_owned(),
            Verdict::DowngradeApplied {
                from,
                after: DowngradeAfter::Count(n),
            } => format!(
                "downgrade from {from} asked for {n} assessments in a row, a day apart or more: applies"
            ),
            Verdict::DowngradeApplied { from, after } => {
                format!("downgrade from {from} asked for {after} or longer: applies")
            }
            Verdict::Held {
                kept,
                asked,
                count,
                of: DowngradeAfter::Count(n),
                ..
            } => format!(
                "downgrade from {kept} to {} held ({count} of {n} assessments; at most one counts per day)",
                asked.unwrap_or("no tier")
            ),
            Verdict::Held {
                kept,
                asked,
                of,
                since,
                ..
            } => format!(
                "downgrade from {kept} to {} held (asked for since {}; applies after {of})",
                asked.unwrap_or("no tier"),
                since.map_or_else(|| "an unknown time".to_owned(), time_text)
            ),
        };
        Explanation {
            customer_id: snapshot.customer_id(),
            rules_version: rules.version().to_owned(),
            pin: pin_of(snapshot),
            hysteresis: HysteresisTrace {
                previous_tier: (!previous.is_empty()).then_some(previous),
                rule_tier: decision.rule_tier.clone(),
                downgrade_after: rules.downgrade_after,
                pending_before,
                pending_since: snapshot.times().pending_since,
                at: snapshot.times().at,
                verdict,
            },
            decision,
            scores,
            tiers,
            segments,
        }
    }

    fn trace_list(&mut self, rules: &[CompiledRule], snapshot: &Snapshot) -> Vec<ConditionTrace> {
        let mut chosen = false;
        rules
            .iter()
            .map(|rule| {
                let outcome = self.condition(&rule.expr, snapshot);
                let (result, error) = match &outcome {
                    Outcome::Matched => ("true", None),
                    Outcome::NotMatched => ("false", None),
                    Outcome::Failed(error) => ("error", Some(error.message.clone())),
                };
                let this_chosen = !chosen && outcome == Outcome::Matched;
                chosen |= this_chosen;
                ConditionTrace {
                    rule: rule.expr.label.clone(),
                    id: rule.info.id.clone(),
                    label: rule.info.label.clone(),
                    when: rule.info.when.clone(),
                    location: rule.info.location.to_string(),
                    result,
                    error,
                    chosen: this_chosen,
                    variables: self.variables(&rule.expr, snapshot),
                }
            })
            .collect()
    }

    fn variables(&self, expr: &Expression, snapshot: &Snapshot) -> Vec<VariableValue> {
        expr.vars
            .iter()
            .map(|var| {
                let (name, value) = self.variable(*var, snapshot);
                let mut display = display_value(&value);
                let is_time = matches!(var, crate::script::native::Var::Feature(feature) if feature.ty() == crate::customer::feature::FeatureType::Time);
                if let (true, Ok(seconds)) = (is_time, value.as_int())
                    && let Some(time) = chrono::DateTime::from_timestamp(seconds, 0) {
                        display = format!("{display} ({})", time.format("%Y-%m-%d %H:%M UTC"));
                    }
                VariableValue {
                    name: name.to_owned(),
                    value: dynamic_to_json(&value),
                    display,
                }
            })
            .collect()
    }
}

impl Explanation {
    /// The explanation for people: the decision first, then every step.
    #[must_use]
    pub fn render(&self) -> String {
        let mut out = String::new();
        let d = &self.decision;
        let tier = d.tier.as_deref().unwrap_or("(none)");
        let _ = writeln!(out, "customer {}: tier {tier}", self.customer_id);
        let _ = writeln!(out, "  reason: {}", d.reason);
        if d.pending_count > 0 {
            let _ = write!(
                out,
                "  pending downgrade: {} ({} so far",
                d.pending_tier.as_deref().unwrap_or("no tier"),
                d.pending_count
            );
            if let Some(since) = d.pending_since {
                let _ = write!(out, ", since {}", time_text(since));
            }
            let _ = writeln!(out, ")");
        }
        for (set, segment) in &d.segments {
            let _ = writeln!(out, "  {set}: {}", segment.as_deref().unwrap_or("(none)"));
        }
        let _ = writeln!(out, "  rules version {}", self.rules_version);
        if !self.scores.is_empty() {
            let _ = writeln!(out, "\nscores:");
            for score in &self.scores {
                let value = match (&score.value, &score.error) {
                    (_, Some(error)) => format!("error: {error}"),
                    (Some(value), None) => crate::tiering::evaluate::format_float(*value),
                    (None, None) => "none".to_owned(),
                };
                let _ = writeln!(out, "  {} = {value}", score.name);
                let _ = writeln!(
                    out,
                    "      {}  [{}]",
                    score.expression.trim(),
                    score.location
                );
                write_variables(&mut out, &score.variables);
            }
        }
        let _ = writeln!(out, "\ntiers (first match wins):");
        write_conditions(&mut out, &self.tiers);
        for set in &self.segments {
            let _ = writeln!(
                out,
                "\nsegments {} (first match wins): {}",
                set.name,
                set.matched.as_deref().unwrap_or("(none)")
            );
            write_conditions(&mut out, &set.conditions);
        }
        let _ = writeln!(
            out,
            "\npin: {}",
            self.pin
                .as_ref()
                .map_or_else(|| "none".to_owned(), Pin::describe)
        );
        let h = &self.hysteresis;
        let since = h
            .pending_since
            .filter(|_| h.pending_before > 0)
            .map(|since| format!(" since {}", time_text(since)))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "hysteresis: previous tier {}, rules say {}, downgrade_after {}, pending before {}{since}: {}",
            h.previous_tier.as_deref().unwrap_or("(none)"),
            h.rule_tier.as_deref().unwrap_or("(none)"),
            h.downgrade_after,
            h.pending_before,
            h.verdict
        );
        if !d.errors.is_empty() {
            let _ = writeln!(out, "\nerrors:");
            for error in &d.errors {
                let _ = writeln!(out, "  {error}");
            }
        }
        out
    }
}

fn write_conditions(out: &mut String, conditions: &[ConditionTrace]) {
    for condition in conditions {
        let marker = if condition.chosen { "=>" } else { "  " };
        let result = match &condition.error {
            Some(error) => format!("error: {error}"),
            None => condition.result.to_owned(),
        };
        let label = condition
            .label
            .as_ref()
            .map(|label| format!(" ({label})"))
            .unwrap_or_default();
        let _ = writeln!(out, "{marker} {}{label}: {result}", condition.id);
        let when: Vec<&str> = condition.when.trim().lines().map(str::trim).collect();
        let _ = writeln!(out, "      {}  [{}]", when.join(" "), condition.location);
        write_variables(out, &condition.variables);
    }
}

fn write_variables(out: &mut String, variables: &[VariableValue]) {
    for variable in variables {
        let _ = writeln!(out, "        {} = {}", variable.name, variable.display);
    }
}

/// `2026-11-20 08:00 UTC`, for explanations.
fn time_text(seconds: i64) -> String {
    chrono::DateTime::from_timestamp(seconds, 0).map_or_else(
        || seconds.to_string(),
        |at| at.format("%Y-%m-%d %H:%M UTC").to_string(),
    )
}
