//! Rule tests (`rules/tests/*.yaml`, `tiercare test`): customers given as feature values, with
//! the tier, segments and scores the rules must give them. The project's own default rules are
//! tested by this same runner.
//!
//! ```yaml
//! # yaml-language-server: $schema=../tiercare.schema.json
//! tests:
//!   - name: the biggest customer is A
//!     customer:                  # feature values; unspecified features are neutral
//!       revenue_share_before: 0.0
//!       r_score: 5
//!       last_order_at: 2024-05-01 # times: unix seconds, a date, or an RFC 3339 time
//!       attr: { potential: 80 }
//!       previous_tier: B         # the stored tier and hysteresis counter
//!       pending_downgrade: 0
//!     pin: { tier: A, by: alice, reason: strategic, until: 2026-03-01 }   # optional
//!     expect:                    # every key optional; `~` means "none"
//!       tier: A
//!       rule_tier: A
//!       pending_tier: ~
//!       pending_count: 0
//!       pinned: false
//!       segments: { rfm: champions, worthless: ~ }
//!       scores: { potential: 48 }
//!       errors: []               # rules expected to fail; by default none may
//! ```
//!
//! Unspecified features take the neutral values of [`Snapshot::new`] (a customer with no data:
//! `0`, `0.0`, `""`, `false`, none, an empty `attr`, and 36500 days since the last order and
//! contact). Scores match within a relative 1e-9. Unless `expect.errors` lists them, a rule that
//! fails during the test fails the test.

use std::fmt::Write as _;

use serde::Serialize;

use crate::customer::feature::{Feature, FeatureType, feature_names};
use crate::customer::snapshot::{FeatureValue, Pin, Snapshot};
use crate::load::rule_file::{RawTestCase, RawTestFile, Scalar};
use crate::load::rules::RuleFile;
use crate::planning::plan::{CustomerEvent, EventKind, FollowUpState, Plan};
use crate::text::diagnostic::{Diagnostic, closest, hint_among, list_names};
use crate::text::yaml::{self, PathSeg, Spans, YamlLimits};
use crate::tiering::explain::ConditionTrace;
use crate::tiering::rule_set::RuleSet;

/// A test that did not pass.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TestFailure {
    /// The test's name.
    pub name: String,
    /// The first difference, at the test case (`path:line:col`).
    #[serde(serialize_with = "diagnostic_json")]
    pub diagnostic: Diagnostic,
    /// Every difference, expected against actual, then the key values of the explanation.
    pub details: Vec<String>,
}

/// What running the rule tests found. Serializes for `--json` (diagnostics as objects with
/// `path`, `line`, `column`, `severity`, `message`, `hint`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TestReport {
    /// Test cases that passed.
    pub passed: usize,
    /// Test cases that failed.
    pub failures: Vec<TestFailure>,
    /// Problems in the test files themselves (YAML errors, unknown features, tiers or segments):
    /// the cases concerned did not run.
    #[serde(serialize_with = "diagnostics_json")]
    pub problems: Vec<Diagnostic>,
}

#[derive(Serialize)]
struct DiagnosticJson<'a> {
    path: &'a str,
    line: usize,
    column: usize,
    severity: String,
    message: &'a str,
    hint: Option<&'a str>,
}

impl<'a> From<&'a Diagnostic> for DiagnosticJson<'a> {
    fn from(diagnostic: &'a Diagnostic) -> Self {
        DiagnosticJson {
            path: &diagnostic.path,
            line: diagnostic.line,
            column: diagnostic.column,
            severity: diagnostic.severity.to_string(),
            message: &diagnostic.message,
            hint: diagnostic.hint.as_deref(),
        }
    }
}

fn diagnostic_json<S: serde::Serializer>(
    diagnostic: &Diagnostic,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    DiagnosticJson::from(diagnostic).serialize(serializer)
}

fn diagnostics_json<S: serde::Serializer>(
    diagnostics: &[Diagnostic],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(diagnostics.iter().map(DiagnosticJson::from))
}

impl TestReport {
    /// Whether every test ran and passed.
    #[must_use]
    pub fn is_success(&self) -> bool {
        self.failures.is_empty() && self.problems.is_empty()
    }

    /// Failures and problems in file order, then `N passed, M failed`.
    #[must_use]
    pub fn render(&self, color: bool) -> String {
        let mut out = String::new();
        for problem in &self.problems {
            out.push_str(&problem.render(color));
            out.push_str("\n\n");
        }
        for failure in &self.failures {
            out.push_str(&failure.diagnostic.render(color));
            out.push('\n');
            for detail in &failure.details {
                let _ = writeln!(out, "    {detail}");
            }
            out.push('\n');
        }
        let _ = write!(
            out,
            "{} passed, {} failed",
            self.passed,
            self.failures.len()
        );
        if !self.problems.is_empty() {
            let _ = write!(
                out,
                ", {} problem{} in test files",
                self.problems.len(),
                if self.problems.len() == 1 { "" } else { "s" }
            );
        }
        out.push('\n');
        out
    }
}

/// Runs every test case of `files` (rule-test YAML files) against `rules`.
#[must_use]
pub fn run_rule_tests(rules: &RuleSet, files: &[RuleFile]) -> TestReport {
    let mut report = TestReport::default();
    let mut files: Vec<&RuleFile> = files.iter().collect();
    files.sort_by(|a, b| a.path.cmp(&b.path));
    let mut evaluator = rules.evaluator();
    let mut planner = rules.planner();
    for file in files {
        let document =
            match yaml::parse::<RawTestFile>(&file.path, &file.text, &YamlLimits::default()) {
                Ok(document) => document,
                Err(errors) => {
                    report.problems.extend(errors);
                    continue;
                }
            };
        let context = FileContext {
            path: &file.path,
            text: &file.text,
            spans: &document.spans,
            rules,
        };
        for (index, case) in document.value.tests.iter().enumerate() {
            let mut problems = Vec::new();
            let snapshot = context.snapshot(index, case, &mut problems);
            context.check_expectations(index, case, &mut problems);
            let plan_input = context.plan_input(index, case, &mut problems);
            let Some(snapshot) = snapshot.filter(|_| problems.is_empty()) else {
                report.problems.extend(problems);
                continue;
            };
            let explanation = evaluator.explain(&snapshot);
            let plan = plan_input
                .map(|(state, from, to, tz)| planner.plan(&snapshot, &state, from, to, tz));
            match context.compare(index, case, &explanation, plan.as_ref()) {
                None => report.passed += 1,
                Some(failure) => report.failures.push(failure),
            }
        }
    }
    report
}

struct FileContext<'a> {
    path: &'a str,
    text: &'a str,
    spans: &'a Spans,
    rules: &'a RuleSet,
}

fn case_path(index: usize, rest: &[&str]) -> Vec<PathSeg> {
    let mut path = vec![PathSeg::from("tests"), PathSeg::Index(index)];
    path.extend(rest.iter().map(|key| PathSeg::from(*key)));
    path
}

impl FileContext<'_> {
    fn error(
        &self,
        path: &[PathSeg],
        at_key: bool,
        message: String,
        hint: Option<String>,
    ) -> Diagnostic {
        let (line, column) = match (at_key, self.spans.key(path)) {
            (true, Some(span)) => (span.line, span.column),
            _ => self.spans.position(path),
        };
        let diagnostic = Diagnostic::error(self.path, line, column, message).with_source(self.text);
        match hint {
            Some(hint) => diagnostic.with_hint(hint),
            None => diagnostic,
        }
    }

    /// The customer of a test case as a snapshot, or the problems that stop it.
    fn snapshot(
        &self,
        index: usize,
        case: &RawTestCase,
        problems: &mut Vec<Diagnostic>,
    ) -> Option<Snapshot> {
        let mut snapshot = Snapshot::new();
        for (name, value) in &case.customer.0 {
            let path = case_path(index, &["customer", name]);
            let Some(feature) = Feature::from_name(name) else {
                let hint = match closest(name, feature_names()) {
                    Some(best) => {
                        format!("did you mean `{best}`? `tiercare functions` lists every feature")
                    }
                    None => "`tiercare functions` lists every feature".to_owned(),
                };
                problems.push(self.error(
                    &path,
                    true,
                    format!("unknown feature `{name}`"),
                    Some(hint),
                ));
                continue;
            };
            let value = match feature_value(feature, value) {
                Ok(value) => value,
                Err(message) => {
                    problems.push(self.error(&path, false, message, None));
                    continue;
                }
            };
            if let Err(err) = snapshot.set(feature, value) {
                problems.push(self.error(&path, false, err.to_string(), None));
            }
        }
        if let Some(pin) = &case.pin {
            if self.rules.tier_rank(&pin.tier.0).is_none() {
                problems.push(self.unknown_tier(&case_path(index, &["pin", "tier"]), &pin.tier.0));
            }
            snapshot.set_pin(Some(Pin {
                tier: pin.tier.0.clone(),
                by: pin.by.clone().unwrap_or_default(),
                reason: pin.reason.clone().unwrap_or_default(),
                until: pin.until.as_ref().map(|until| until.0.clone()),
            }));
        }
        problems.is_empty().then_some(snapshot)
    }

    fn unknown_tier(&self, path: &[PathSeg], id: &str) -> Diagnostic {
        let ids: Vec<&str> = self.rules.tiers().map(|tier| tier.id.as_str()).collect();
        let hint = hint_among(id, "tiers", ids.iter().copied());
        self.error(
            path,
            false,
            format!("`{id}` is not a tier of the rules"),
            Some(hint),
        )
    }

    /// The follow-up state and range of a test case with `plan:`, or the problems that stop it.
    fn plan_input(
        &self,
        index: usize,
        case: &RawTestCase,
        problems: &mut Vec<Diagnostic>,
    ) -> Option<(FollowUpState, i64, i64, chrono_tz::Tz)> {
        let before = problems.len();
        let time = |problems: &mut Vec<Diagnostic>, path: Vec<PathSeg>, text: &Scalar| {
            parse_time(&text.0).or_else(|| {
                problems.push(self.error(
                    &path,
                    false,
                    format!("`{}` is not a time", text.0),
                    Some("give unix seconds, a date (`2024-05-01`) or an RFC 3339 time".to_owned()),
                ));
                None
            })
        };
        let Some(raw_plan) = &case.plan else {
            if case.expect.planned.is_some() || case.expect.skipped.is_some() {
                problems.push(self.error(
                    &case_path(index, &["expect"]),
                    true,
                    "`expect.planned` and `expect.skipped` need a `plan: { from, to }`".to_owned(),
                    None,
                ));
            }
            if case.state.is_some() {
                problems.push(self.error(
                    &case_path(index, &["state"]),
                    true,
                    "`state` is used only with `plan: { from, to }`".to_owned(),
                    None,
                ));
            }
            return None;
        };
        let from = time(
            problems,
            case_path(index, &["plan", "from"]),
            &raw_plan.from,
        );
        let to = time(problems, case_path(index, &["plan", "to"]), &raw_plan.to);
        let tz = match &raw_plan.timezone {
            None => Some(chrono_tz::UTC),
            Some(name) => match crate::load::values::parse_timezone(&name.0) {
                Ok(tz) => Some(tz),
                Err((message, hint)) => {
                    problems.push(self.error(
                        &case_path(index, &["plan", "timezone"]),
                        false,
                        message,
                        Some(hint),
                    ));
                    None
                }
            },
        };
        let mut state = FollowUpState::default();
        if let Some(raw) = &case.state {
            if let Some(tier) = &raw.tier {
                if self.rules.tier_rank(&tier.0).is_none() {
                    problems
                        .push(self.unknown_tier(&case_path(index, &["state", "tier"]), &tier.0));
                }
                state.tier = Some(tier.0.clone());
            }
            for (set, segment) in &raw.segments.0 {
                state.segments.push((set.clone(), segment.0.clone()));
            }
            for (rule, at) in &raw.last_fired.0 {
                let path = case_path(index, &["state", "last_fired", rule]);
                if !self.rules.followups().any(|followup| &followup.id == rule) {
                    let ids = self.rules.followups().map(|followup| followup.id.as_str());
                    problems.push(self.error(
                        &path,
                        true,
                        format!("`{rule}` is not a follow-up rule"),
                        Some(format!("follow-ups: {}", list_names(ids))),
                    ));
                }
                if let Some(at) = time(problems, path, at) {
                    state.last_fired.push((rule.clone(), at));
                }
            }
            for (position, contact) in raw.contacts.iter().enumerate() {
                let mut path = case_path(index, &["state", "contacts"]);
                path.push(PathSeg::Index(position));
                state.contacts.extend(time(problems, path, contact));
            }
            for (position, event) in raw.events.iter().enumerate() {
                let mut path = case_path(index, &["state", "events"]);
                path.push(PathSeg::Index(position));
                let at = time(
                    problems,
                    [path.as_slice(), &[PathSeg::from("at")]].concat(),
                    &event.at,
                );
                let text = |value: &Option<Scalar>| {
                    value.as_ref().map(|v| v.0.clone()).filter(|v| v != "~")
                };
                let kind = match event.event.0.trim() {
                    "tier_changed" => Some(EventKind::TierChanged {
                        from: text(&event.from),
                        to: text(&event.to),
                    }),
                    "segment_changed" => Some(EventKind::SegmentChanged {
                        set: text(&event.set).unwrap_or_default(),
                        from: text(&event.from),
                        to: text(&event.to),
                    }),
                    "complaint" => Some(EventKind::Complaint),
                    "feedback" => Some(EventKind::Feedback {
                        score: event.score.unwrap_or(f64::NAN),
                    }),
                    other => {
                        problems.push(self.error(
                            &[path.as_slice(), &[PathSeg::from("event")]].concat(),
                            false,
                            format!("`{other}` is not an event"),
                            Some("events: `tier_changed` (from, to), `segment_changed` (set, from, to), `complaint`, `feedback` (score)".to_owned()),
                        ));
                        None
                    }
                };
                if let (Some(at), Some(kind)) = (at, kind) {
                    state.events.push(CustomerEvent { at, kind });
                }
            }
        }
        for (position, planned) in case.expect.planned.iter().flatten().enumerate() {
            let mut path = case_path(index, &["expect", "planned"]);
            path.push(PathSeg::Index(position));
            if !self
                .rules
                .followups()
                .any(|followup| followup.id == planned.rule.0)
            {
                let ids: Vec<&str> = self
                    .rules
                    .followups()
                    .map(|followup| followup.id.as_str())
                    .collect();
                let hint = hint_among(&planned.rule.0, "follow-ups", ids.iter().copied());
                problems.push(self.error(
                    &[path.as_slice(), &[PathSeg::from("rule")]].concat(),
                    false,
                    format!("`{}` is not a follow-up rule", planned.rule.0),
                    Some(hint),
                ));
            }
            time(
                problems,
                [path.as_slice(), &[PathSeg::from("at")]].concat(),
                &planned.at,
            );
        }
        if problems.len() > before {
            return None;
        }
        Some((state, from?, to?, tz?))
    }

    /// Refuses expectations that can never hold: unknown tiers, sets, segments, scores, rules.
    fn check_expectations(&self, index: usize, case: &RawTestCase, problems: &mut Vec<Diagnostic>) {
        let expect = &case.expect;
        for (key, value) in [
            ("tier", &expect.tier),
            ("rule_tier", &expect.rule_tier),
            ("pending_tier", &expect.pending_tier),
        ] {
            if let Some(Some(Scalar(id))) = value
                && self.rules.tier_rank(id).is_none()
            {
                problems.push(self.unknown_tier(&case_path(index, &["expect", key]), id));
            }
        }
        let sets = self.rules.segment_sets();
        for (name, segment) in &expect.segments.0 {
            let path = case_path(index, &["expect", "segments", name]);
            let Some(set) = sets.iter().find(|set| &set.name == name) else {
                let names = sets.iter().map(|set| set.name.as_str());
                problems.push(self.error(
                    &path,
                    true,
                    format!("`{name}` is not a segment set of the rules"),
                    Some(format!("segment sets: {}", list_names(names))),
                ));
                continue;
            };
            if let Some(Scalar(id)) = segment
                && !set.segments.iter().any(|s| &s.id == id)
            {
                let ids = set.segments.iter().map(|s| s.id.as_str());
                let hint = hint_among(id, &format!("segments of `{name}`"), ids);
                problems.push(self.error(
                    &path,
                    false,
                    format!("`{id}` is not a segment of `{name}`"),
                    Some(hint),
                ));
            }
        }
        for (name, _) in &expect.scores.0 {
            if !self.rules.scores().any(|score| &score.name == name) {
                let names = self.rules.scores().map(|score| score.name.as_str());
                problems.push(self.error(
                    &case_path(index, &["expect", "scores", name]),
                    true,
                    format!("`{name}` is not a score of the rules"),
                    Some(format!("scores: {}", list_names(names))),
                ));
            }
        }
    }

    /// The differences between what the test expects and what the rules gave, as a failure.
    fn compare(
        &self,
        index: usize,
        case: &RawTestCase,
        explanation: &crate::tiering::explain::Explanation,
        plan: Option<&Plan>,
    ) -> Option<TestFailure> {
        let decision = &explanation.decision;
        let expect = &case.expect;
        // (key path of the expectation, message, explanation lines)
        let mut differences: Vec<(Vec<PathSeg>, String, Vec<String>)> = Vec::new();
        let shown =
            |value: Option<&str>| value.map_or_else(|| "none".to_owned(), |v| format!("`{v}`"));
        let tier_lines = || {
            explanation
                .tiers
                .iter()
                .map(condition_line)
                .collect::<Vec<_>>()
        };
        for (key, expected, actual) in [
            ("tier", &expect.tier, &decision.tier),
            ("rule_tier", &expect.rule_tier, &decision.rule_tier),
            ("pending_tier", &expect.pending_tier, &decision.pending_tier),
        ] {
            if let Some(expected) = expected {
                let expected = expected.as_ref().map(|s| s.0.as_str());
                if expected != actual.as_deref() {
                    let mut lines = tier_lines();
                    lines.push(format!("reason: {}", decision.reason));
                    differences.push((
                        case_path(index, &["expect", key]),
                        format!(
                            "expected {} {}, got {}",
                            key.replace('_', " "),
                            shown(expected),
                            shown(actual.as_deref())
                        ),
                        lines,
                    ));
                }
            }
        }
        if let Some(expected) = expect.pending_count
            && expected != decision.pending_count
        {
            differences.push((
                case_path(index, &["expect", "pending_count"]),
                format!(
                    "expected pending count {expected}, got {}",
                    decision.pending_count
                ),
                vec![format!("hysteresis: {}", explanation.hysteresis.verdict)],
            ));
        }
        if let Some(expected) = expect.pinned
            && expected != decision.pinned
        {
            differences.push((
                case_path(index, &["expect", "pinned"]),
                format!("expected pinned {expected}, got {}", decision.pinned),
                vec![format!("reason: {}", decision.reason)],
            ));
        }
        for (name, expected) in &expect.segments.0 {
            let expected = expected.as_ref().map(|s| s.0.as_str());
            let actual = decision.segment(name);
            if expected != actual {
                let lines = explanation
                    .segments
                    .iter()
                    .filter(|set| &set.name == name)
                    .flat_map(|set| set.conditions.iter().map(condition_line))
                    .collect();
                differences.push((
                    case_path(index, &["expect", "segments", name]),
                    format!(
                        "expected segment {} in `{name}`, got {}",
                        shown(expected),
                        shown(actual)
                    ),
                    lines,
                ));
            }
        }
        for (name, expected) in &expect.scores.0 {
            let actual = decision.score(name).unwrap_or(f64::NAN);
            let tolerance = 1e-9 * expected.abs().max(1.0);
            if actual.is_nan() || (actual - expected).abs() > tolerance {
                let lines = explanation
                    .scores
                    .iter()
                    .filter(|score| &score.name == name)
                    .map(|score| {
                        format!(
                            "{} = {}{}",
                            score.name,
                            score.expression.trim(),
                            variables_text(&score.variables)
                        )
                    })
                    .collect();
                differences.push((
                    case_path(index, &["expect", "scores", name]),
                    format!(
                        "expected score `{name}` = {expected}, got {}",
                        crate::tiering::evaluate::format_float(actual)
                    ),
                    lines,
                ));
            }
        }
        if let Some(plan) = plan {
            plan_differences(index, case, plan, &mut differences);
        }
        let mut failed_rules: Vec<&str> = decision
            .errors
            .iter()
            .chain(plan.iter().flat_map(|plan| &plan.errors))
            .map(|error| error.rule.as_str())
            .collect();
        failed_rules.dedup();
        let expected_errors: Vec<&str> = expect
            .errors
            .as_ref()
            .map(|errors| errors.iter().map(String::as_str).collect())
            .unwrap_or_default();
        let unexpected: Vec<&str> = failed_rules
            .iter()
            .copied()
            .filter(|rule| !expected_errors.contains(rule))
            .collect();
        let missing: Vec<&str> = expected_errors
            .iter()
            .copied()
            .filter(|rule| !failed_rules.contains(rule))
            .collect();
        if !unexpected.is_empty() || !missing.is_empty() {
            let path = if expect.errors.is_some() {
                case_path(index, &["expect", "errors"])
            } else {
                case_path(index, &["name"])
            };
            let message = if unexpected.is_empty() {
                format!(
                    "expected {} to fail, but {} did not",
                    list_names(missing.iter().copied()),
                    if missing.len() == 1 { "it" } else { "they" }
                )
            } else {
                format!("{} failed", list_names(unexpected.iter().copied()))
            };
            let lines = decision
                .errors
                .iter()
                .chain(plan.iter().flat_map(|plan| &plan.errors))
                .map(ToString::to_string)
                .collect();
            differences.push((path, message, lines));
        }
        if differences.is_empty() {
            return None;
        }
        let (first_path, first_message, _) = &differences[0];
        let diagnostic = self.error(
            first_path,
            false,
            format!("test `{}`: {first_message}", case.name),
            None,
        );
        let mut details = Vec::new();
        for (position, (_, message, lines)) in differences.iter().enumerate() {
            if position > 0 {
                details.push(message.clone());
            }
            details.extend(lines.iter().map(|line| format!("  {line}")));
        }
        Some(TestFailure {
            name: case.name.clone(),
            diagnostic,
            details,
        })
    }
}

/// The differences between the expected and the planned follow-ups.
fn plan_differences(
    index: usize,
    case: &RawTestCase,
    plan: &Plan,
    differences: &mut Vec<(Vec<PathSeg>, String, Vec<String>)>,
) {
    let lines = || {
        let mut lines: Vec<String> = plan
            .actions
            .iter()
            .map(|action| {
                format!(
                    "planned {} at {}: {} ({})",
                    action.rule_id,
                    time_text(action.scheduled_at),
                    action.action.describe(),
                    action.reason
                )
            })
            .collect();
        lines.extend(plan.skipped.iter().map(|skipped| {
            format!(
                "skipped {} of {}: {}",
                skipped.rule_id,
                time_text(skipped.occurrence_at),
                skipped.skipped.name()
            )
        }));
        lines.extend(plan.notes.iter().cloned());
        lines
    };
    if let Some(expected) = &case.expect.planned {
        let expected: Vec<String> = expected
            .iter()
            .map(|planned| {
                format!(
                    "{} at {}",
                    planned.rule.0,
                    parse_time(&planned.at.0).map_or_else(|| planned.at.0.clone(), time_text)
                )
            })
            .collect();
        let actual: Vec<String> = plan
            .actions
            .iter()
            .map(|action| format!("{} at {}", action.rule_id, time_text(action.scheduled_at)))
            .collect();
        if expected != actual {
            let shown = |list: &[String]| {
                if list.is_empty() {
                    "nothing".to_owned()
                } else {
                    list.join(", ")
                }
            };
            differences.push((
                case_path(index, &["expect", "planned"]),
                format!(
                    "expected planned {}, got {}",
                    shown(&expected),
                    shown(&actual)
                ),
                lines(),
            ));
        }
    }
    if let Some(expected) = &case.expect.skipped {
        let expected: Vec<String> = expected
            .iter()
            .map(|skipped| format!("{} ({})", skipped.rule.0, skipped.why.0))
            .collect();
        let actual: Vec<String> = plan
            .skipped
            .iter()
            .map(|skipped| format!("{} ({})", skipped.rule_id, skipped.skipped.name()))
            .collect();
        if expected != actual {
            differences.push((
                case_path(index, &["expect", "skipped"]),
                format!(
                    "expected skipped [{}], got [{}]",
                    expected.join(", "),
                    actual.join(", ")
                ),
                lines(),
            ));
        }
    }
}

/// Unix seconds as `2024-06-01T09:00:00Z`.
fn time_text(seconds: i64) -> String {
    chrono::DateTime::from_timestamp(seconds, 0).map_or_else(
        || seconds.to_string(),
        |t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
    )
}

/// `tiers[0] (A) true: revenue_share_before < 0.80 (revenue_share_before = 0.12)`.
fn condition_line(condition: &ConditionTrace) -> String {
    let result = match &condition.error {
        Some(error) => format!("error: {error}"),
        None => condition.result.to_owned(),
    };
    let when: Vec<&str> = condition.when.split_whitespace().collect();
    format!(
        "{} {result}: {}{}",
        condition.rule,
        when.join(" "),
        variables_text(&condition.variables)
    )
}

fn variables_text(variables: &[crate::tiering::explain::VariableValue]) -> String {
    if variables.is_empty() {
        return String::new();
    }
    let values: Vec<String> = variables
        .iter()
        .map(|variable| format!("{} = {}", variable.name, variable.display))
        .collect();
    format!(" ({})", values.join(", "))
}

/// A YAML value as the value of `feature`.
fn feature_value(feature: Feature, value: &serde_yaml::Value) -> Result<FeatureValue, String> {
    use serde_yaml::Value as Y;
    Ok(match (feature.ty(), value) {
        (_, Y::Null) => FeatureValue::None,
        (FeatureType::Map, value) => match serde_json::to_value(value) {
            Ok(serde_json::Value::Object(map)) => FeatureValue::Map(map),
            _ => return Err("`attr` is a mapping of attribute names to values, e.g. `{ potential: 80 }`".to_owned()),
        },
        (FeatureType::Time, Y::String(text)) => FeatureValue::Int(parse_time(text).ok_or_else(|| {
            format!("`{text}` is not a time: give unix seconds, a date (`2024-05-01`) or an RFC 3339 time")
        })?),
        (_, Y::Bool(b)) => FeatureValue::Bool(*b),
        (_, Y::Number(n)) => match n.as_i64() {
            Some(i) => FeatureValue::Int(i),
            None => FeatureValue::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        (_, Y::String(s)) => FeatureValue::Text(s.clone()),
        _ => return Err(format!("`{feature}` is {}, not a list or mapping", feature.spec().type_text())),
    })
}

/// `2024-05-01` (midnight UTC), `2024-05-01T10:00:00Z` or `2024-05-01 10:00:00` (UTC).
fn parse_time(text: &str) -> Option<i64> {
    let text = text.trim();
    if let Ok(time) = chrono::DateTime::parse_from_rfc3339(text) {
        return Some(time.timestamp());
    }
    if let Ok(time) = chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S") {
        return Some(time.and_utc().timestamp());
    }
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|date| date.and_hms_opt(0, 0, 0))
        .map(|time| time.and_utc().timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_serialize() {
        let report = TestReport {
            passed: 2,
            failures: Vec::new(),
            problems: vec![Diagnostic::error("t.yaml", 3, 5, "unknown feature `x`").with_hint("h")],
        };
        assert_eq!(
            serde_json::to_value(&report).unwrap(),
            serde_json::json!({
                "passed": 2,
                "failures": [],
                "problems": [{"path": "t.yaml", "line": 3, "column": 5, "severity": "error", "message": "unknown feature `x`", "hint": "h"}]
            })
        );
    }

    #[test]
    fn times_parse() {
        assert_eq!(parse_time("1970-01-02"), Some(86_400));
        assert_eq!(parse_time("1970-01-01T01:00:00Z"), Some(3_600));
        assert_eq!(parse_time("1970-01-01 00:01:00"), Some(60));
        assert_eq!(parse_time("yesterday"), None);
    }
}
