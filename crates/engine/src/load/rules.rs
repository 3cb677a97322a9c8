//! Tiering rules: the rule files a user writes (`rules/*.yaml` and `rules/*.rhai`), validated and
//! compiled into a [`RuleSet`] by [`load_rules`].
//!
//! # Rule files
//!
//! A rule set is every `*.yaml` file of the `rules/` folder (not `rules/tests/`) and every `*.rhai`
//! function library beside them. A YAML file may hold `tiering`, `scores`, `segments`, `followups`, `contact_policy` (see [`crate::care::followup`]), `assignment` (see [`crate::care::assignment`]) and `reminders` (see [`crate::care::reminders`]); **exactly one** file
//! has `tiering`:
//!
//! ```yaml
//! # yaml-language-server: $schema=tiercare.schema.json
//! tiering:
//!   window: 365d             # feature window: `Nd` (days), `Nw` (weeks) or `all`
//!   reassess: "30 2 * * *"   # optional cron schedule of the daemon's reassessment
//!   tiers:                   # ordered, highest first; the first that matches wins
//!     - id: A
//!       label: Key accounts  # optional, for people
//!       description: ...     # optional
//!       when: revenue_share_before < 0.80
//!     - id: B
//!       when: revenue_share_before < 0.95 || potential > 70
//!     - id: C
//!       when: true           # the catch-all
//!   hysteresis:              # optional
//!     downgrade_after: 2     # a downgrade takes effect at the 2nd assessment in a row that asks for it
//!
//! scores:                    # numbers, computed first and in order
//!   potential: (attr.potential ?? 0) * 0.6 + f_score * 8
//!
//! segments:                  # named segment sets; in each the first match wins, or none
//!   rfm:
//!     - id: champions
//!       when: r_score >= 4 && f_score >= 4 && m_score >= 4
//! ```
//!
//! - **`window`** (required): the period over which window features (`orders_window`,
//!   `revenue_window`, the RFM scores...) are computed: `365d`, `52w` or `all`.
//! - **`reassess`** (optional): when the daemon reassesses, as a cron schedule
//!   ([`crate::care::schedule`]: 5-field crontab, or 6/7 fields with seconds first). Without it, tiers
//!   change only when someone runs `tiercare assess`.
//! - **`tiers`** (at least one): `id` (letters, digits, `_`, `-`, `.`; unique), optional `label`
//!   and `description`, and `when`, a Rhai expression that must return `true` or `false`. The
//!   first tier whose condition is true is the customer's tier. When the last tier's condition is
//!   not `true`, some customers may match no tier (a warning): they get **no tier** (the decision's
//!   tier is none and the store records them as unassigned).
//! - **`hysteresis.downgrade_after: N`** (optional, default 1 = none): an upgrade applies at once; a
//!   downgrade (a lower tier than the stored one, or no tier) applies only once it has been asked
//!   for by `N` assessments in a row. In between, the customer keeps the stored tier and the
//!   decision carries the pending tier and count, which the store saves as `pending_downgrade`.
//! - **`scores`**: `name: expression` lines returning numbers. They are computed before tiers and
//!   segments, in file order (files in path order), and each is a variable of every later score,
//!   every tier and every segment. A name must be a valid variable name, not a feature's, and
//!   unique across files.
//! - **`segments`**: `set name: [rules]`; each rule has `id`, optional `label` and `description`,
//!   and `when`. In each set the first rule that matches names the customer's segment; a customer
//!   may match none. Set names are unique across files, ids unique within a set.
//!
//! # Expressions
//!
//! Every `when` and score is a Rhai expression (or a `|` block of statements whose last value is
//! the result) over the customer's **features** ([`crate::customer::feature::Feature`]: `orders_window`,
//! `revenue_share_before`, `r_score`, `attr`...) and the scores. Names are checked when the rules
//! are loaded: an unknown name is an error at its line and column, with a "did you mean". Each
//! expression is compiled once. Useful to know:
//!
//! - `attr` is the map of custom attributes; `attr.potential` is none (`()`) when the customer has
//!   no such attribute, so write `attr.potential ?? 0`.
//! - A value that may be none (`last_order_at`, `satisfaction_avg`...) compared with a number is
//!   `false` in Rhai, without an error; give a default: `(satisfaction_avg ?? 5.0) < 3`.
//! - `a / b` on two ints stops with "division by zero" when `b` is 0 (on floats it gives infinity);
//!   [`ratio(a, b)`](mod@crate::script::catalog) returns 0 instead.
//!
//! # Function libraries (`*.rhai`)
//!
//! A `.rhai` file holds only `fn` definitions (a top-level statement is an error). Its functions
//! can be called from every expression of the rule set. A Rhai function **cannot see the caller's
//! variables**: pass what it needs as arguments (`fn potential(p, f) { p * 0.6 + f * 8 }`, called
//! as `potential(attr.potential ?? 0, f_score)`). A function name (with its number of parameters)
//! is defined once across all libraries.
//!
//! # Errors at run time
//!
//! A condition that fails for one customer (division by zero, a non-boolean result, a script
//! stopped by the sandbox's operation limit) counts as **not matched**; the error is recorded in
//! the decision ([`crate::Decision::errors`], naming the rule) and evaluation goes on. A score that
//! fails is recorded the same way; conditions that use it fail too.
//!
//! # Version
//!
//! [`RuleSet::version`] is a content hash (FNV-1a, 64 bits, 16 hex digits) of every file's path
//! and text, sorted by path: the same files give the same version on every machine and run.

use std::collections::HashMap;

use rhai::{AST, Dynamic, Engine, EvalAltResult, ParseErrorType, Scope};

use crate::care::schedule::Schedule;
use crate::customer::feature::{Feature, FeatureType, feature_names};
use crate::customer::snapshot::Snapshot;
use crate::load::rule_file::{RawRule, RawRuleFile, RawTiering, Scalar};
use crate::script::catalog;
use crate::script::expression::{Expression, Program};
use crate::script::growth;
use crate::script::lint;
use crate::script::native::{self, Var};
use crate::script::sandbox::{self, Limits, ScriptError};
use crate::text::diagnostic::{Diagnostic, Severity, closest};
use crate::text::location::Location;
use crate::text::yaml::{self, PathSeg, Spans, YamlLimits, path_to_string};
use crate::tiering::evaluate::ScriptRun;
use crate::tiering::hysteresis::DowngradeAfter;
use crate::tiering::rule_set::{
    CompiledRule, CompiledScore, CompiledSegmentSet, FNV_OFFSET, LibraryFunction, RuleInfo,
    RuleSet, ScoreInfo, SourceFile, Window, fnv1a,
};

/// A file of the rule set, as read by the caller: its path (as the user should see it, e.g.
/// `rules/tiers.yaml`) and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleFile {
    /// The path shown in diagnostics; `.yaml`/`.yml` files are rules, `.rhai` files libraries.
    pub path: String,
    /// The whole text of the file.
    pub text: String,
}

impl RuleFile {
    /// A file named `path` holding `text`.
    pub fn new(path: impl Into<String>, text: impl Into<String>) -> Self {
        RuleFile {
            path: path.into(),
            text: text.into(),
        }
    }
}

/// A rule set that loaded, and what in it is probably not what the user meant.
#[derive(Debug)]
pub struct LoadedRules {
    /// The compiled rules.
    pub rules: RuleSet,
    /// Warnings (never errors), in file and line order.
    pub warnings: Vec<Diagnostic>,
}

/// Validates and compiles a rule set from its files (`rules/*.yaml` and `rules/*.rhai`, in any
/// order; see the [module documentation](self) for the format).
///
/// # Errors
/// Every problem found in every file, each at its `path:line:column`, sorted by file and line,
/// with the warnings among them: YAML errors (syntax, duplicate keys, size and alias limits,
/// unknown keys with a "did you mean", wrong types), a missing or second `tiering`, bad windows
/// and schedules, bad or duplicate ids and names (naming both places), unknown feature names,
/// Rhai syntax errors at their real position, conditions that cannot return a boolean, and
/// library files with top-level statements.
pub fn load_rules(files: &[RuleFile]) -> Result<LoadedRules, Vec<Diagnostic>> {
    Loader::new(files).load()
}

/// FNV-1a, 64 bits, over every `(path, text)` pair (sorted by path), each length-prefixed.
fn content_version(files: &[&RuleFile]) -> String {
    let mut hash = FNV_OFFSET;
    for file in files {
        hash = fnv1a(hash, &(file.path.len() as u64).to_le_bytes());
        hash = fnv1a(hash, file.path.as_bytes());
        hash = fnv1a(hash, &(file.text.len() as u64).to_le_bytes());
        hash = fnv1a(hash, file.text.as_bytes());
    }
    format!("{hash:016x}")
}

/// Whether `id` is a valid tier, segment or segment-set id.
pub(crate) fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// One line, at most 80 characters.
fn one_line(source: &str) -> String {
    let joined = source.split_whitespace().collect::<Vec<_>>().join(" ");
    if joined.chars().count() > 80 {
        let mut short: String = joined.chars().take(79).collect();
        short.push('…');
        short
    } else {
        joined
    }
}

pub(crate) fn key(parts: &[&str]) -> Vec<PathSeg> {
    parts.iter().map(|part| PathSeg::from(*part)).collect()
}

/// A name an expression may read, with the kind of thing it is.
enum Lookup {
    Var(Var),
    /// A score defined after the expression that reads it.
    LaterScore,
    Unknown,
}

/// A rule or segment before compiling: where it is and what it says.
struct PendingRule<'r> {
    file: usize,
    path: Vec<PathSeg>,
    raw: &'r RawRule,
    id: String,
}

pub(crate) struct Loader<'a> {
    /// The tier ids cannot be trusted (no readable `tiering`, or an id given twice): tier
    /// references are not checked, since every error would repeat one already reported.
    tiers_uncertain: bool,
    files: Vec<&'a RuleFile>,
    engine: Engine,
    diagnostics: Vec<Diagnostic>,
    sources: Vec<SourceFile>,
    library: Vec<LibraryFunction>,
    library_ast: Option<AST>,
}

/// A `.rhai` library's parse error as a diagnostic, with the hint for the usual one (a function
/// reading a variable it was not given).
fn library_parse_error(path: &str, text: &str, err: &rhai::ParseError) -> Diagnostic {
    let script_error = ScriptError::Parse(err);
    let (line, column) = script_error.position().unwrap_or((1, 1));
    let mut diagnostic = Diagnostic::error(
        path,
        line,
        column,
        format!("syntax error: {}", script_error.message()),
    )
    .with_source(text);
    if let ParseErrorType::VariableUndefined(name) = err.err_type() {
        diagnostic.message = format!(
            "`{name}` is not a parameter of this function: a function sees only its parameters"
        );
        diagnostic = diagnostic.with_hint(
            "Rhai functions cannot see the caller's variables (features, scores): pass them as arguments",
        );
    }
    diagnostic
}

/// Whether a rule file's text has a top-level `tiering:` key (read without parsing it, for a
/// file that could not be parsed).
fn declares_tiering(text: &str) -> bool {
    text.lines().any(|line| {
        line.strip_prefix("tiering")
            .is_some_and(|rest| rest.trim_start().starts_with(':'))
    })
}

impl<'a> Loader<'a> {
    fn new(files: &'a [RuleFile]) -> Self {
        let mut files: Vec<&RuleFile> = files.iter().collect();
        files.sort_by(|a, b| a.path.cmp(&b.path));
        Loader {
            files,
            engine: catalog::rules_engine(),
            diagnostics: Vec::new(),
            sources: Vec::new(),
            library: Vec::new(),
            library_ast: None,
            tiers_uncertain: false,
        }
    }

    pub(crate) fn push(&mut self, diagnostic: Diagnostic) {
        self.diagnostics.push(diagnostic);
    }

    /// Reports `tier`, named at `path` in `file`, as not a tier of `tier_ids`; unless the tier
    /// ids are uncertain, when the problem behind it was reported already.
    pub(crate) fn not_a_tier(
        &mut self,
        file: usize,
        path: &[PathSeg],
        at_key: bool,
        tier: &str,
        tier_ids: &[String],
    ) {
        if self.tiers_uncertain {
            return;
        }
        let hint =
            crate::text::diagnostic::hint_among(tier, "tiers", tier_ids.iter().map(String::as_str));
        let diagnostic = self
            .at(
                Severity::Error,
                file,
                path,
                at_key,
                format!("`{tier}` is not a tier of the rules"),
            )
            .with_hint(hint);
        self.push(diagnostic);
    }

    /// How many errors were found so far.
    pub(crate) fn error_count(&self) -> usize {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count()
    }

    /// A diagnostic at `path` in source file `file`: at the key when `at_key`, else at the value.
    pub(crate) fn at(
        &self,
        severity: Severity,
        file: usize,
        path: &[PathSeg],
        at_key: bool,
        message: String,
    ) -> Diagnostic {
        let source = &self.sources[file];
        let (line, column) = if at_key {
            source.spans.key(path).map_or_else(
                || source.spans.position(path),
                |span| (span.line, span.column),
            )
        } else {
            source.spans.position(path)
        };
        let diagnostic = match severity {
            Severity::Error => Diagnostic::error(&source.path, line, column, message),
            Severity::Warning => Diagnostic::warning(&source.path, line, column, message),
        };
        diagnostic.with_source(&source.text)
    }

    pub(crate) fn location(&self, file: usize, path: &[PathSeg], at_key: bool) -> Location {
        let diagnostic = self.at(Severity::Error, file, path, at_key, String::new());
        Location {
            path: diagnostic.path,
            line: diagnostic.line,
            column: diagnostic.column,
        }
    }

    fn load(mut self) -> Result<LoadedRules, Vec<Diagnostic>> {
        let version = content_version(&self.files);
        if self.files.is_empty() {
            return Err(vec![
                Diagnostic::error("rules", 1, 1, "no rule files").with_hint(
                    "write a rule file with a `tiering:` section (run `tiercare init` for the default rules)",
                ),
            ]);
        }

        // Parse every YAML file; compile every library.
        let mut parsed: Vec<(usize, RawRuleFile)> = Vec::new();
        // A file that could not be read declares `tiering`: its problems are reported, and
        // nothing that follows from the missing tiers is (no cascade).
        let mut unreadable_tiering = false;
        let mut libraries = Vec::new();
        for file in self.files.clone() {
            let path = file.path.as_str();
            if path.ends_with(".yaml") || path.ends_with(".yml") {
                // Unknown keys are reported and left out, so the rest of the file is still
                // validated (and its sections exist for the other files' references).
                let (document, errors) = yaml::parse_recovering::<Option<RawRuleFile>>(
                    path,
                    &file.text,
                    &YamlLimits::default(),
                );
                self.diagnostics.extend(errors);
                match document {
                    Some(document) => {
                        self.sources.push(SourceFile {
                            path: path.to_owned(),
                            text: file.text.clone(),
                            spans: document.spans,
                        });
                        if let Some(raw) = document.value {
                            parsed.push((self.sources.len() - 1, raw));
                        }
                    }
                    None => {
                        if declares_tiering(&file.text) {
                            unreadable_tiering = true;
                        }
                    }
                }
            } else if path.ends_with(".rhai") {
                self.sources.push(SourceFile {
                    path: path.to_owned(),
                    text: file.text.clone(),
                    spans: Spans::default(),
                });
                libraries.push(self.sources.len() - 1);
            } else {
                self.push(Diagnostic::error(path, 1, 1, "not a rule file").with_hint(
                    "rule files end in `.yaml` (rules) or `.rhai` (function libraries)",
                ));
            }
        }
        self.compile_libraries(&libraries);

        // Exactly one `tiering`.
        let mut tiering: Option<(usize, &RawTiering)> = None;
        for (file, raw) in &parsed {
            if let Some(this) = &raw.tiering {
                match tiering {
                    None => tiering = Some((*file, this)),
                    Some((first, _)) => {
                        let first_at = self.location(first, &key(&["tiering"]), true);
                        let diagnostic = self
                            .at(
                                Severity::Error,
                                *file,
                                &key(&["tiering"]),
                                true,
                                "a second `tiering` section".to_owned(),
                            )
                            .with_hint(format!(
                                "`tiering` is already defined at {first_at}; a rule set has one"
                            ));
                        self.push(diagnostic);
                    }
                }
            }
        }
        let parsed_any = !parsed.is_empty();
        if tiering.is_none() && parsed_any && !unreadable_tiering {
            let file = parsed[0].0;
            let diagnostic = self
                .at(
                    Severity::Error,
                    file,
                    &[],
                    true,
                    "no rule file defines `tiering`".to_owned(),
                )
                .with_hint("add a `tiering:` section with `window` and `tiers` to one rule file");
            self.push(diagnostic);
        }

        let tiers_unknown = tiering.is_none();
        let (window, reassess, downgrade_after, raw_tiers) = match tiering {
            Some((file, raw)) => {
                let window = self.window(file, raw);
                let reassess = self.reassess(file, raw);
                let downgrade_after = self.downgrade_after(file, raw);
                let tiers = self.tier_list(file, raw);
                (window, reassess, downgrade_after, tiers)
            }
            None => (Window::All, None, DowngradeAfter::Count(1), Vec::new()),
        };

        // Scores, in file order, unique and not shadowing features.
        let mut score_names: Vec<(String, usize, Vec<PathSeg>)> = Vec::new();
        let mut pending_scores: Vec<(usize, Vec<PathSeg>, String, &Scalar)> = Vec::new();
        for (file, raw) in &parsed {
            for (name, expression) in &raw.scores.0 {
                let path = key(&["scores", name]);
                if let Some((_, first_file, first_path)) =
                    score_names.iter().find(|(other, _, _)| other == name)
                {
                    let first_at = self.location(*first_file, first_path, true);
                    let diagnostic = self
                        .at(
                            Severity::Error,
                            *file,
                            &path,
                            true,
                            format!("score `{name}` is defined twice"),
                        )
                        .with_hint(format!("the first is at {first_at}"));
                    self.push(diagnostic);
                    continue;
                }
                if Feature::from_name(name).is_some() {
                    let diagnostic = self
                        .at(Severity::Error, *file, &path, true, format!("score `{name}` has the name of a feature"))
                        .with_hint("give the score another name; features are listed by `tiercare functions`");
                    self.push(diagnostic);
                    continue;
                }
                if !sandbox::is_variable_name(name) {
                    let diagnostic = self
                        .at(Severity::Error, *file, &path, true, format!("`{name}` cannot be a score name"))
                        .with_hint("a score name is a variable in expressions: letters, digits and `_`, starting with a letter, not a Rhai keyword");
                    self.push(diagnostic);
                    continue;
                }
                score_names.push((name.clone(), *file, path.clone()));
                pending_scores.push((*file, path, name.clone(), expression));
            }
        }

        // Segment sets, unique names, unique ids.
        let mut set_names: Vec<(String, usize)> = Vec::new();
        let mut pending_sets: Vec<(String, Vec<PendingRule<'_>>)> = Vec::new();
        for (file, raw) in &parsed {
            for (name, rules) in &raw.segments.0 {
                let path = key(&["segments", name]);
                if let Some((_, first_file)) = set_names.iter().find(|(other, _)| other == name) {
                    let first_at = self.location(*first_file, &path, true);
                    let diagnostic = self
                        .at(
                            Severity::Error,
                            *file,
                            &path,
                            true,
                            format!("segment set `{name}` is defined twice"),
                        )
                        .with_hint(format!("the first is at {first_at}"));
                    self.push(diagnostic);
                    continue;
                }
                set_names.push((name.clone(), *file));
                if !valid_id(name) {
                    let diagnostic = self
                        .at(
                            Severity::Error,
                            *file,
                            &path,
                            true,
                            format!("`{name}` cannot be a segment set name"),
                        )
                        .with_hint("use letters, digits, `_`, `-` and `.`");
                    self.push(diagnostic);
                }
                if rules.is_empty() {
                    let diagnostic = self
                        .at(
                            Severity::Error,
                            *file,
                            &path,
                            true,
                            format!("segment set `{name}` has no segments"),
                        )
                        .with_hint("list segments as `- id: ...` with `when: ...`");
                    self.push(diagnostic);
                }
                let list = self.rule_list(*file, &path, rules, "segment");
                pending_sets.push((name.clone(), list));
            }
        }

        // Compile scores in order, then tiers and segments.
        let mut scores: Vec<CompiledScore> = Vec::new();
        let all_scores: Vec<String> = pending_scores
            .iter()
            .map(|(_, _, name, _)| name.clone())
            .collect();
        for (index, (file, path, name, expression)) in pending_scores.iter().enumerate() {
            let label = format!("scores.{name}");
            if let Some(expr) = self.compile(
                *file,
                path.clone(),
                label,
                &expression.0,
                (&all_scores, index),
            ) {
                scores.push(CompiledScore {
                    info: ScoreInfo {
                        name: name.clone(),
                        expression: expression.0.clone(),
                        location: self.location(*file, path, false),
                    },
                    expr,
                });
            }
        }
        let scope_all = (all_scores.as_slice(), all_scores.len());
        let mut tiers = Vec::new();
        for (index, rule) in raw_tiers.iter().enumerate() {
            let label = format!("tiers[{index}] ({})", rule.id);
            if let Some(compiled) = self.compile_rule(rule, label, scope_all) {
                tiers.push(compiled);
            }
        }
        let mut segment_sets = Vec::new();
        for (name, rules) in &pending_sets {
            let mut compiled_rules = Vec::new();
            for (index, rule) in rules.iter().enumerate() {
                let label = format!("segments.{name}[{index}] ({})", rule.id);
                if let Some(compiled) = self.compile_rule(rule, label, scope_all) {
                    compiled_rules.push(compiled);
                }
            }
            segment_sets.push(CompiledSegmentSet {
                name: name.clone(),
                rules: compiled_rules,
            });
        }

        // Follow-ups and the contact policy.
        let mut tier_ids: Vec<String> = Vec::with_capacity(raw_tiers.len());
        let mut duplicate_tier = false;
        for rule in &raw_tiers {
            if tier_ids.contains(&rule.id) {
                duplicate_tier = true;
            } else {
                tier_ids.push(rule.id.clone());
            }
        }
        let set_ids: Vec<(String, Vec<String>)> = pending_sets
            .iter()
            .map(|(name, rules)| {
                (
                    name.clone(),
                    rules.iter().map(|rule| rule.id.clone()).collect(),
                )
            })
            .collect();
        // Without a readable `tiering`, or with a tier id given twice (another tier's id
        // mistyped), tier names cannot be checked: "`C` is not a tier" would only repeat, once
        // per reference, the problem already reported.
        self.tiers_uncertain = tiers_unknown || duplicate_tier;
        let contact_policy = self.contact_policy(&parsed, &tier_ids);
        let assignment = self.assignment(&parsed, &tier_ids);
        let reminders = self.reminders(&parsed, &tier_ids);
        let pool = self.pool(&parsed, &tier_ids);
        let followups = self.followups(&parsed, &tier_ids, &set_ids, scope_all);
        let coupons = self.coupon_pools(&parsed);
        let pools_complete = parsed.iter().all(|(_, raw)| {
            raw.coupons
                .0
                .iter()
                .all(|(name, _)| coupons.iter().any(|pool| pool.name == *name))
        });
        self.check_coupon_references(&followups, &coupons, pools_complete);

        // Lints and reachability.
        for followup in &followups {
            if let Some(expr) = &followup.when {
                self.lint(expr);
            }
        }
        for score in &scores {
            self.lint(&score.expr);
        }
        for rule in tiers
            .iter()
            .chain(segment_sets.iter().flat_map(|set| &set.rules))
        {
            self.lint(&rule.expr);
        }
        let has_catch_all = tiers
            .iter()
            .any(|tier| matches!(tier.expr.program, Program::Constant(true)));
        if let Some(last) = tiers.last()
            && !has_catch_all
            && raw_tiers.len() == tiers.len()
        {
            let diagnostic = self
                    .at(
                        Severity::Warning,
                        last.expr.file,
                        &last.expr.key_path,
                        false,
                        format!("some customers may get no tier: the last tier `{}` has a condition", last.info.id),
                    )
                    .with_hint("customers who match no tier get none; end with a catch-all tier (`when: true`) to give everyone a tier");
            self.push(diagnostic);
        }
        self.unreachable(&tiers, "tier");
        for set in &segment_sets {
            self.unreachable(&set.rules, "segment");
        }

        let has_errors = self
            .diagnostics
            .iter()
            .any(|d| d.severity == Severity::Error);
        let mut features_used: Vec<Feature> = scores
            .iter()
            .map(|score| &score.expr)
            .chain(tiers.iter().map(|rule| &rule.expr))
            .chain(
                segment_sets
                    .iter()
                    .flat_map(|set| set.rules.iter().map(|rule| &rule.expr)),
            )
            .chain(
                followups
                    .iter()
                    .filter_map(|followup| followup.when.as_ref()),
            )
            .flat_map(|expr| expr.vars.iter())
            .filter_map(|var| match var {
                Var::Feature(feature) => Some(*feature),
                Var::Score(_) => None,
            })
            .collect();
        features_used.sort();
        features_used.dedup();
        // What a tier needs: the tiers' expressions and the scores they may read.
        let mut tier_features: Vec<Feature> = scores
            .iter()
            .map(|score| &score.expr)
            .chain(tiers.iter().map(|rule| &rule.expr))
            .flat_map(|expr| expr.vars.iter())
            .filter_map(|var| match var {
                Var::Feature(feature) => Some(*feature),
                Var::Score(_) => None,
            })
            .collect();
        tier_features.sort();
        tier_features.dedup();

        let rules = RuleSet {
            engine: self.engine,
            version,
            window,
            reassess,
            downgrade_after,
            scores,
            tiers,
            segment_sets,
            followups,
            contact_policy,
            assignment,
            reminders,
            pool,
            coupons,
            features_used,
            tier_features,
            library: self.library,
            sources: self.sources,
        };
        let mut diagnostics = self.diagnostics;
        // With errors elsewhere only what an expression returns is checked: a failure could be
        // a consequence of them (a library that did not compile, a missing score).
        diagnostics.extend(trial_run(&rules, has_errors));
        let order: HashMap<&str, usize> = self
            .files
            .iter()
            .enumerate()
            .map(|(index, file)| (file.path.as_str(), index))
            .collect();
        diagnostics.sort_by_key(|d| {
            (
                order.get(d.path.as_str()).copied().unwrap_or(usize::MAX),
                d.line,
                d.column,
            )
        });
        if diagnostics.iter().any(|d| d.severity == Severity::Error) {
            Err(diagnostics)
        } else {
            Ok(LoadedRules {
                rules,
                warnings: diagnostics,
            })
        }
    }

    fn window(&mut self, file: usize, raw: &RawTiering) -> Window {
        match Window::parse(&raw.window.0) {
            Ok(window) => window,
            Err(message) => {
                let diagnostic = self
                    .at(
                        Severity::Error,
                        file,
                        &key(&["tiering", "window"]),
                        false,
                        message,
                    )
                    .with_hint(
                        "write a number of days or weeks, such as `365d` or `52w`, or `all`",
                    );
                self.push(diagnostic);
                Window::All
            }
        }
    }

    fn reassess(&mut self, file: usize, raw: &RawTiering) -> Option<Schedule> {
        let text = &raw.reassess.as_ref()?.0;
        match Schedule::parse(text) {
            Ok(schedule) => Some(schedule),
            Err(err) => {
                let path = key(&["tiering", "reassess"]);
                let diagnostic = self.schedule_error(file, &path, text, &err, "tiering.reassess");
                self.push(diagnostic);
                None
            }
        }
    }

    /// An error inside the text of the scalar at `path`, `offset` characters into it (a
    /// placeholder of a task title).
    pub(crate) fn error_in_scalar(
        &mut self,
        file: usize,
        path: &[PathSeg],
        offset: usize,
        message: String,
        hint: String,
    ) {
        let source = &self.sources[file];
        let (line, column) = source.spans.locate_in_scalar(path, 1, offset + 1);
        let diagnostic = Diagnostic::error(&source.path, line, column, message)
            .with_source(&source.text)
            .with_hint(hint);
        self.push(diagnostic);
    }

    /// An invalid cron schedule at `path`, pointing at the offending field.
    pub(crate) fn schedule_error(
        &self,
        file: usize,
        path: &[PathSeg],
        text: &str,
        err: &crate::care::schedule::ScheduleError,
        what: &str,
    ) -> Diagnostic {
        let column = text
            .get(..err.column)
            .map_or(0, |before| before.chars().count());
        let source = &self.sources[file];
        let (line, column) = source.spans.locate_in_scalar(path, 1, column + 1);
        Diagnostic::error(&source.path, line, column, format!("invalid `{what}` schedule: {err}"))
            .with_source(&source.text)
            .with_hint("5 fields `minute hour day-of-month month day-of-week` (\"30 2 * * *\" is 02:30 every day), or 6-7 with seconds first")
    }

    fn downgrade_after(&mut self, file: usize, raw: &RawTiering) -> DowngradeAfter {
        let Some(hysteresis) = &raw.hysteresis else {
            return DowngradeAfter::Count(1);
        };
        let text = hysteresis.downgrade_after.0.trim();
        let is_count = text.chars().all(|c| c.is_ascii_digit());
        match text.parse::<u32>() {
            Ok(n @ 1..=1000) => DowngradeAfter::Count(n),
            Err(_) if !is_count && text.starts_with(|c: char| c.is_ascii_digit()) => {
                match crate::load::values::parse_duration(text) {
                    Ok(seconds) => DowngradeAfter::Duration(seconds),
                    Err(message) => {
                        let diagnostic = self
                            .at(
                                Severity::Error,
                                file,
                                &key(&["tiering", "hysteresis", "downgrade_after"]),
                                false,
                                format!("invalid `downgrade_after`: {message}"),
                            )
                            .with_hint("a duration the lower tier must be asked for, such as `30d` or `2w`, or a number of daily assessments from 1 to 1000");
                        self.push(diagnostic);
                        DowngradeAfter::Count(1)
                    }
                }
            }
            _ => {
                let diagnostic = self
                    .at(
                        Severity::Error,
                        file,
                        &key(&["tiering", "hysteresis", "downgrade_after"]),
                        false,
                        format!(
                            "`downgrade_after` must be a duration such as `30d` or a whole number from 1 to 1000, not `{}`",
                            hysteresis.downgrade_after.0
                        ),
                    )
                    .with_hint("`30d` applies a downgrade once the lower tier was asked for 30 days in a row; 2 waits for a second assessment, at least a day later, that asks for it; 1 applies downgrades at once");
                self.push(diagnostic);
                DowngradeAfter::Count(1)
            }
        }
    }

    fn tier_list<'r>(&mut self, file: usize, raw: &'r RawTiering) -> Vec<PendingRule<'r>> {
        let path = key(&["tiering", "tiers"]);
        if raw.tiers.is_empty() {
            let diagnostic = self
                .at(
                    Severity::Error,
                    file,
                    &path,
                    true,
                    "`tiering.tiers` lists no tier".to_owned(),
                )
                .with_hint("list tiers highest first as `- id: A` with `when: ...`");
            self.push(diagnostic);
        }
        self.rule_list(file, &path, &raw.tiers, "tier")
    }

    /// Checks the ids of a list of tiers or segments.
    fn rule_list<'r>(
        &mut self,
        file: usize,
        list_path: &[PathSeg],
        rules: &'r [RawRule],
        what: &str,
    ) -> Vec<PendingRule<'r>> {
        let mut seen: Vec<(&str, usize)> = Vec::new();
        let mut out = Vec::new();
        for (index, raw) in rules.iter().enumerate() {
            let mut path = list_path.to_vec();
            path.push(PathSeg::Index(index));
            let id = raw.id.0.trim();
            let id_path = [path.as_slice(), &[PathSeg::from("id")]].concat();
            if !valid_id(id) {
                let diagnostic = self
                    .at(
                        Severity::Error,
                        file,
                        &id_path,
                        false,
                        if raw.id.0.trim().is_empty() {
                            format!("a {what} id cannot be empty")
                        } else {
                            format!("`{}` cannot be a {what} id", raw.id.0)
                        },
                    )
                    .with_hint("use letters, digits, `_`, `-` and `.`");
                self.push(diagnostic);
            } else if let Some((_, first)) = seen.iter().find(|(other, _)| *other == id) {
                let first_path =
                    [list_path, &[PathSeg::Index(*first), PathSeg::from("id")]].concat();
                let first_at = self.location(file, &first_path, false);
                let diagnostic = self
                    .at(
                        Severity::Error,
                        file,
                        &id_path,
                        false,
                        format!("duplicate {what} id `{id}`"),
                    )
                    .with_hint(format!("the first is at {first_at}"));
                self.push(diagnostic);
            } else {
                seen.push((id, index));
            }
            out.push(PendingRule {
                file,
                path,
                raw,
                id: id.to_owned(),
            });
        }
        out
    }

    fn compile_rule(
        &mut self,
        rule: &PendingRule<'_>,
        label: String,
        scores: (&[String], usize),
    ) -> Option<CompiledRule> {
        let when_path = [rule.path.as_slice(), &[PathSeg::from("when")]].concat();
        let expr = self.compile(
            rule.file,
            when_path.clone(),
            label,
            &rule.raw.when.0,
            scores,
        )?;
        Some(CompiledRule {
            info: RuleInfo {
                id: rule.id.clone(),
                label: rule.raw.label.clone(),
                description: rule.raw.description.clone(),
                when: rule.raw.when.0.clone(),
                location: self.location(rule.file, &when_path, false),
            },
            expr,
        })
    }

    /// Compiles one expression with strict variables, discovering the variables it reads: the
    /// features and the first `scores.1` of the scores `scores.0`.
    pub(crate) fn compile(
        &mut self,
        file: usize,
        key_path: Vec<PathSeg>,
        label: String,
        source: &str,
        scores: (&[String], usize),
    ) -> Option<Expression> {
        let (score_names, available) = scores;
        let yaml_path = path_to_string(&key_path);
        if source.trim().is_empty() {
            let diagnostic = self
                .at(
                    Severity::Error,
                    file,
                    &key_path,
                    false,
                    format!("`{yaml_path}` is empty"),
                )
                .with_hint("write an expression, such as `orders_window >= 2`");
            self.push(diagnostic);
            return None;
        }
        let mut vars: Vec<Var> = Vec::new();
        let ast = loop {
            let mut scope = Scope::new();
            for var in &vars {
                let name = match var {
                    Var::Feature(feature) => feature.name(),
                    Var::Score(index) => score_names[*index].as_str(),
                };
                scope.push_dynamic(name, Dynamic::UNIT);
            }
            match self.engine.compile_with_scope(&scope, source) {
                Ok(ast) => break ast,
                Err(err) => {
                    if let ParseErrorType::VariableUndefined(name) = err.err_type() {
                        match resolve(name, score_names, available) {
                            Lookup::Var(var) if !vars.contains(&var) => {
                                vars.push(var);
                                continue;
                            }
                            found => {
                                let mut diagnostic =
                                    self.script_error(file, &key_path, source, &err);
                                let (message, hint) =
                                    unknown_name_message(&yaml_path, name, &found, &self.library);
                                diagnostic.message = message;
                                diagnostic.hint = hint;
                                self.push(diagnostic);
                                return None;
                            }
                        }
                    }
                    let diagnostic = self.script_error(file, &key_path, source, &err);
                    self.push(diagnostic);
                    return None;
                }
            }
        };
        if ast.has_functions() {
            let diagnostic = self
                .at(Severity::Error, file, &key_path, false, format!("`{yaml_path}` defines a function"))
                .with_hint("define functions in a `.rhai` library file beside the rules; every expression can call them");
            self.push(diagnostic);
            return None;
        }
        let redefined: Vec<&str> = self
            .library
            .iter()
            .map(|function| function.name.as_str())
            .collect();
        // `expected_orders(days)` reads the customer's BG/NBD inputs: the rule reads them too,
        // so an assessment computes them (and fits the models) for it.
        if !redefined.contains(&growth::NAME)
            && lint::function_calls(source)
                .iter()
                .any(|call| call.name == growth::NAME)
        {
            for feature in growth::INPUTS {
                if !vars.contains(&Var::Feature(feature)) {
                    vars.push(Var::Feature(feature));
                }
            }
        }
        let resolve_native = |name: &str| match resolve(name, score_names, available) {
            Lookup::Var(var) => Some(var),
            _ => None,
        };
        let native = native::compile(source, &resolve_native, &redefined);
        let program = match source.trim() {
            "true" => Program::Constant(true),
            "false" => Program::Constant(false),
            _ => Program::Script(match &self.library_ast {
                Some(library) => library.merge(&ast),
                None => ast,
            }),
        };
        Some(Expression {
            label,
            source: source.to_owned(),
            one_line: one_line(source),
            program,
            native,
            vars,
            file,
            key_path,
        })
    }

    /// A compile error of `script` (the scalar at `key_path`) at its place in the file.
    fn script_error(
        &self,
        file: usize,
        key_path: &[PathSeg],
        script: &str,
        err: &rhai::ParseError,
    ) -> Diagnostic {
        let source = &self.sources[file];
        let mut diagnostic = sandbox::script_diagnostic(
            &source.path,
            &source.text,
            &source.spans,
            key_path,
            ScriptError::Parse(err),
        );
        if matches!(err.err_type(), ParseErrorType::UnexpectedEOF) {
            // Rhai places the end of a script after its last line; point at the end of the last
            // line that has something on it, which is where something is missing.
            if let Some((index, text)) = script
                .lines()
                .enumerate()
                .filter(|(_, text)| !text.trim().is_empty())
                .last()
            {
                let (line, column) = source.spans.locate_in_scalar(
                    key_path,
                    index + 1,
                    text.trim_end().chars().count() + 1,
                );
                diagnostic.line = line;
                diagnostic.column = column;
                diagnostic = diagnostic.with_source(&source.text);
            }
            diagnostic.message = diagnostic
                .message
                .replace("script is incomplete", "the expression ends too early");
            diagnostic.hint =
                Some("something is missing at the end, after the last operator".to_owned());
        }
        diagnostic
    }

    /// Warns about comparisons Rhai silently evaluates to `false`.
    fn lint(&mut self, expr: &Expression) {
        let yaml_path = path_to_string(&expr.key_path);
        for found in lint::number_comparisons(&expr.source) {
            let Some(feature) = Feature::from_name(found.name) else {
                continue;
            };
            let spec = feature.spec();
            let (message, hint) = if spec.ty == FeatureType::Text {
                (
                    format!("`{yaml_path}` compares `{}`, which is text, with a number", spec.name),
                    "in Rhai a text compared with a number is always false; compare with a string in quotes".to_owned(),
                )
            } else if spec.optional {
                (
                    format!(
                        "`{yaml_path}` compares `{}`, which may be none, with a number",
                        spec.name
                    ),
                    format!(
                        "none compared with a number is always false in Rhai; give a default, e.g. `({} ?? {})`",
                        spec.name,
                        if spec.ty == FeatureType::Time {
                            "0"
                        } else {
                            "0.0"
                        }
                    ),
                )
            } else {
                continue;
            };
            let source = &self.sources[expr.file];
            let (line, column) =
                source
                    .spans
                    .locate_in_scalar(&expr.key_path, found.line, found.column);
            let diagnostic = Diagnostic::warning(&source.path, line, column, message)
                .with_source(&source.text)
                .with_hint(hint);
            self.push(diagnostic);
        }
    }

    /// Warns about rules after a `when: true`, which can never match.
    fn unreachable(&mut self, rules: &[CompiledRule], what: &str) {
        let Some(catch_all) = rules
            .iter()
            .position(|rule| matches!(rule.expr.program, Program::Constant(true)))
        else {
            return;
        };
        for rule in &rules[catch_all + 1..] {
            let diagnostic = self
                .at(
                    Severity::Warning,
                    rule.expr.file,
                    &rule.expr.key_path,
                    false,
                    format!("{what} `{}` can never match", rule.info.id),
                )
                .with_hint(format!(
                    "`{}` before it matches everyone (`when: true`); move it to the end",
                    rules[catch_all].info.id
                ));
            self.push(diagnostic);
        }
    }

    /// Compiles every `.rhai` library, refusing top-level statements and functions defined twice.
    fn compile_libraries(&mut self, libraries: &[usize]) {
        let mut combined: Option<AST> = None;
        for &file in libraries {
            let (path, text) = (
                self.sources[file].path.clone(),
                self.sources[file].text.clone(),
            );
            if text.len() > YamlLimits::DEFAULT.max_bytes {
                self.push(Diagnostic::error(
                    &path,
                    1,
                    1,
                    format!(
                        "file is too large: {} bytes, the limit is {} bytes",
                        text.len(),
                        YamlLimits::DEFAULT.max_bytes
                    ),
                ));
                continue;
            }
            let items = lint::library_items(&text);
            if let Some((line, column)) = items.first_statement {
                self.push(
                    Diagnostic::error(&path, line, column, "a function library may only define functions")
                        .with_source(&text)
                        .with_hint("top-level statements are not allowed in a `.rhai` file; put the code inside a `fn`, or in a rule's `when`"),
                );
            }
            let ast = match self.engine.compile(&text) {
                Ok(ast) => ast,
                Err(err) => {
                    // Rhai stops at its first error: compile each function alone (the rest of
                    // the file blanked, positions kept) to report every function's problem.
                    let mut found: Vec<Diagnostic> = Vec::new();
                    for function in &items.functions {
                        let alone = lint::keep_only(&text, function.span);
                        if let Err(err) = self.engine.compile(&alone) {
                            let diagnostic = library_parse_error(&path, &text, &err);
                            if !found.contains(&diagnostic) {
                                found.push(diagnostic);
                            }
                        }
                    }
                    if found.is_empty() {
                        found.push(library_parse_error(&path, &text, &err));
                    }
                    for diagnostic in found {
                        self.push(diagnostic);
                    }
                    continue;
                }
            };
            if items.first_statement.is_some() {
                continue;
            }
            for function in &items.functions {
                let location = Location {
                    path: path.clone(),
                    line: function.line,
                    column: function.column,
                };
                if let Some(first) = self.library.iter().find(|other| {
                    other.name == function.name && other.params.len() == function.params.len()
                }) {
                    self.diagnostics.push(
                        Diagnostic::error(
                            &path,
                            function.line,
                            function.column,
                            format!(
                                "function `{}` with {} parameter{} is defined twice",
                                function.name,
                                function.params.len(),
                                if function.params.len() == 1 { "" } else { "s" }
                            ),
                        )
                        .with_source(&text)
                        .with_hint(format!("the first is at {}", first.location)),
                    );
                    continue;
                }
                self.library.push(LibraryFunction {
                    name: function.name.to_owned(),
                    params: function.params.iter().map(|p| (*p).to_owned()).collect(),
                    location,
                });
            }
            match &mut combined {
                Some(library) => {
                    library.combine(ast);
                }
                None => combined = Some(ast),
            }
        }
        if let Some(library) = &combined
            && library.iter_functions().count() > Limits::MAX_FUNCTIONS
        {
            let path = self.sources[libraries[0]].path.clone();
            self.push(Diagnostic::error(
                &path,
                1,
                1,
                format!(
                    "the libraries define more than {} functions",
                    Limits::MAX_FUNCTIONS
                ),
            ));
        }
        self.library_ast = combined;
    }
}

/// What `name` is for an expression that may read the scores before `available`.
fn resolve(name: &str, scores: &[String], available: usize) -> Lookup {
    if let Some(feature) = Feature::from_name(name) {
        return Lookup::Var(Var::Feature(feature));
    }
    match scores.iter().position(|score| score == name) {
        Some(index) if index < available => Lookup::Var(Var::Score(index)),
        Some(_) => Lookup::LaterScore,
        None => Lookup::Unknown,
    }
}

fn unknown_name_message(
    yaml_path: &str,
    name: &str,
    found: &Lookup,
    library: &[LibraryFunction],
) -> (String, Option<String>) {
    if matches!(found, Lookup::LaterScore) {
        return (
            format!("`{yaml_path}` uses score `{name}`, which is computed after it"),
            Some("scores are computed in order (files in path order); move this score below `{name}`".replace("{name}", name)),
        );
    }
    let message = format!(
        "`{yaml_path}` uses `{}`, which is not a feature or a score",
        crate::text::diagnostic::excerpt(name)
    );
    let is_function = library.iter().any(|function| function.name == name)
        || catalog::function_names().any(|function| function == name);
    let hint = if is_function {
        format!("`{name}` is a function: call it with its arguments, `{name}(...)`")
    } else {
        match closest(name, feature_names()) {
            Some(best) => {
                format!("did you mean `{best}`? `tiercare functions` lists every feature")
            }
            None => "`tiercare functions` lists every feature".to_owned(),
        }
    };
    (message, Some(hint))
}

/// Runs every expression once for a customer without data, to find conditions that cannot
/// return a boolean, scores that cannot return a number, unknown functions and endless loops.
/// With `returns_only` (the rule set has errors already), only values of the wrong type are
/// reported.
fn trial_run(rules: &RuleSet, returns_only: bool) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let snapshot = Snapshot::new();
    let mut evaluator = rules.evaluator();
    evaluator.start_customer();
    let mut known_functions: Vec<&str> = rules
        .library
        .iter()
        .map(|function| function.name.as_str())
        .collect();
    for name in catalog::function_names() {
        known_functions.push(name);
    }
    let mut report = |expr: &Expression, result: &ScriptRun, want: &str| {
        let diagnostic = match result {
            Ok(value) => {
                let fits = match want {
                    "bool" => value.is_bool(),
                    _ => value.is_int() || value.is_float(),
                };
                if fits || (returns_only && value.is_unit()) {
                    return;
                }
                if value.is_unit() {
                    let (message, hint) = if want == "bool" {
                        (
                            "returns nothing (`()`) for a customer without data",
                            "a missing attribute is `()`: give a default, e.g. `attr.vip ?? false`",
                        )
                    } else {
                        (
                            "returns nothing (`()`) for a customer without data",
                            "a missing attribute is `()`: give a default, e.g. `attr.potential ?? 0`",
                        )
                    };
                    rule_diagnostic(
                        rules,
                        expr,
                        Severity::Warning,
                        format!("`{}` {message}", expr_path(expr)),
                        Some(hint.to_owned()),
                    )
                } else {
                    let (message, hint) = if want == "bool" {
                        (
                            format!(
                                "`{}` must return true or false, but returns {} ({})",
                                expr_path(expr),
                                crate::tiering::evaluate::type_name(value),
                                crate::tiering::evaluate::display_value(value)
                            ),
                            "compare the value with something, e.g. `revenue_window > 1000`",
                        )
                    } else {
                        (
                            format!(
                                "`{}` must return a number, but returns {} ({})",
                                expr_path(expr),
                                crate::tiering::evaluate::type_name(value),
                                crate::tiering::evaluate::display_value(value)
                            ),
                            "a score is a number; use `if ... { 1 } else { 0 }` to turn a condition into one",
                        )
                    };
                    rule_diagnostic(rules, expr, Severity::Error, message, Some(hint.to_owned()))
                }
            }
            Err(_) if returns_only => return,
            Err(err) => match err.unwrap_inner() {
                EvalAltResult::ErrorFunctionNotFound(signature, _) => {
                    let name = signature.split(" (").next().unwrap_or(signature).trim();
                    let arguments = signature.split_once(" (").map_or(0, |(_, rest)| {
                        let inside = rest.trim_end_matches(')').trim();
                        if inside.is_empty() {
                            0
                        } else {
                            inside.split(',').count()
                        }
                    });
                    let library: Vec<&LibraryFunction> =
                        rules.library.iter().filter(|f| f.name == name).collect();
                    if !library.is_empty() {
                        if library.iter().any(|f| f.params.len() == arguments) {
                            return;
                        }
                        let takes: Vec<String> =
                            library.iter().map(|f| f.params.len().to_string()).collect();
                        let first = library[0];
                        out.push(rule_diagnostic_at(
                            rules,
                            expr,
                            err,
                            Severity::Error,
                            format!(
                                "`{}` calls `{name}` with {arguments} argument{}, but it takes {}",
                                expr_path(expr),
                                if arguments == 1 { "" } else { "s" },
                                takes.join(" or ")
                            ),
                            Some(format!(
                                "`{name}({})` is defined at {}",
                                first.params.join(", "),
                                first.location
                            )),
                        ));
                        return;
                    }
                    if name == growth::NAME && !signature.contains("()") {
                        // Ours, called with something other than one number (a none argument
                        // may be a feature that is none only for a customer without data).
                        let given: Vec<&str> = signature
                            .split_once(" (")
                            .map_or("", |(_, rest)| rest.trim_end_matches(')').trim())
                            .split(", ")
                            .map(|ty| match ty {
                                "&str | ImmutableString | String" => "text",
                                "i64" => "int",
                                "f64" => "float",
                                other => other,
                            })
                            .collect();
                        let given = given.join(", ");
                        out.push(rule_diagnostic_at(
                            rules,
                            expr,
                            err,
                            Severity::Error,
                            format!(
                                "`{}` calls `{name}` with ({given}), but it takes one number of days (int or float)",
                                expr_path(expr)
                            ),
                            Some(format!("the horizon after the assessment's time, e.g. `{name}(30)`; `tiercare functions` describes it")),
                        ));
                        return;
                    }
                    if known_functions.contains(&name) {
                        return;
                    }
                    let hint = match closest(name, known_functions.iter().copied()) {
                        Some(best) => format!("did you mean `{best}`? `tiercare functions` lists every function"),
                        None => "`tiercare functions` lists every function; define your own in a `.rhai` file".to_owned(),
                    };
                    rule_diagnostic_at(
                        rules,
                        expr,
                        err,
                        Severity::Error,
                        format!(
                            "`{}` calls `{name}`, which is not a function",
                            expr_path(expr)
                        ),
                        Some(hint),
                    )
                }
                EvalAltResult::ErrorTooManyOperations(..) => rule_diagnostic_at(
                    rules,
                    expr,
                    err,
                    Severity::Error,
                    format!(
                        "`{}` did not finish for a customer without data: {}",
                        expr_path(expr),
                        sandbox::describe_eval_error(err)
                    ),
                    Some("a loop must end; rules are meant to be short expressions".to_owned()),
                ),
                EvalAltResult::ErrorRuntime(value, _)
                    if value
                        .read_lock::<rhai::ImmutableString>()
                        .is_some_and(|text| text.starts_with(growth::ARGUMENT_ERROR)) =>
                {
                    rule_diagnostic_at(
                        rules,
                        expr,
                        err,
                        Severity::Error,
                        format!("`{}` calls `{}`: {value}", expr_path(expr), growth::NAME),
                        Some(format!(
                            "the horizon after the assessment's time, e.g. `{}(30)`",
                            growth::NAME
                        )),
                    )
                }
                _ => return,
            },
        };
        out.push(diagnostic);
    };
    for (index, score) in rules.scores.iter().enumerate() {
        let result = evaluator.run(&score.expr, &snapshot);
        report(&score.expr, &result, "number");
        evaluator.push_score(index, result.ok().filter(|v| v.is_int() || v.is_float()));
    }
    for rule in rules
        .tiers
        .iter()
        .chain(rules.segment_sets.iter().flat_map(|set| &set.rules))
    {
        let result = evaluator.run(&rule.expr, &snapshot);
        report(&rule.expr, &result, "bool");
    }
    for expr in rules
        .followups
        .iter()
        .filter_map(|followup| followup.when.as_ref())
    {
        let result = evaluator.run(expr, &snapshot);
        report(expr, &result, "bool");
    }
    out
}

fn expr_path(expr: &Expression) -> String {
    path_to_string(&expr.key_path)
}

fn rule_diagnostic(
    rules: &RuleSet,
    expr: &Expression,
    severity: Severity,
    message: String,
    hint: Option<String>,
) -> Diagnostic {
    let location = rules.locate(expr, None);
    finish(rules, expr, location, severity, message, hint)
}

fn rule_diagnostic_at(
    rules: &RuleSet,
    expr: &Expression,
    err: &EvalAltResult,
    severity: Severity,
    message: String,
    hint: Option<String>,
) -> Diagnostic {
    let position = crate::tiering::evaluate::call_site(err);
    let location = rules.locate(expr, position);
    finish(rules, expr, location, severity, message, hint)
}

fn finish(
    rules: &RuleSet,
    expr: &Expression,
    location: Location,
    severity: Severity,
    message: String,
    hint: Option<String>,
) -> Diagnostic {
    let diagnostic = match severity {
        Severity::Error => {
            Diagnostic::error(location.path, location.line, location.column, message)
        }
        Severity::Warning => {
            Diagnostic::warning(location.path, location.line, location.column, message)
        }
    }
    .with_source(&rules.sources[expr.file].text);
    match hint {
        Some(hint) => diagnostic.with_hint(hint),
        None => diagnostic,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows() {
        assert_eq!(Window::parse("365d"), Ok(Window::Days(365)));
        assert_eq!(Window::parse(" 52w "), Ok(Window::Days(364)));
        assert_eq!(Window::parse("all"), Ok(Window::All));
        assert_eq!(Window::Days(30).to_string(), "30d");
        assert_eq!(Window::All.seconds(), None);
        for (text, message) in [
            ("365", "window `365` has no unit"),
            ("0d", "a window of zero days holds nothing"),
            (
                "12m",
                "window `12m`: months and years differ in length; give days or weeks",
            ),
            (
                "1y",
                "window `1y`: months and years differ in length; give days or weeks",
            ),
            ("d", "window `d` is not a number of days or weeks"),
            ("5h", "window `5h` is not a number of days or weeks"),
            (
                "99999d",
                "window `99999d` is longer than 100 years; use `all` for all time",
            ),
        ] {
            assert_eq!(Window::parse(text), Err(message.to_owned()), "{text}");
        }
    }

    #[test]
    fn versions_are_fnv1a_of_sorted_length_prefixed_files() {
        // FNV-1a of nothing is the offset basis.
        assert_eq!(content_version(&[]), "cbf29ce484222325");
        let a = RuleFile::new("a.yaml", "x");
        let b = RuleFile::new("b.yaml", "y");
        let ab = content_version(&[&a, &b]);
        assert_eq!(ab.len(), 16);
        // Moving text between path and content changes the version.
        let shifted = RuleFile::new("a.yamlx", "");
        assert_ne!(content_version(&[&shifted, &b]), ab);
        assert_ne!(
            content_version(&[&b, &a]),
            ab,
            "callers sort; the hash itself is ordered"
        );
    }

    #[test]
    fn ids_and_one_line_sources() {
        for ok in ["A", "level1", "cannot_lose", "b2b-gold", "v1.2", "一级"] {
            assert!(valid_id(ok), "{ok}");
        }
        for bad in ["", "key accounts", "a/b", "a:b"] {
            assert!(!valid_id(bad), "{bad}");
        }
        assert_eq!(one_line("a &&\n   b\n"), "a && b");
        assert_eq!(one_line(&"x ".repeat(60)).chars().count(), 80);
    }
}
