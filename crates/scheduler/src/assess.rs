//! Assessment: features from the store, decisions from the engine, recorded in one transaction.
//!
//! Also reads a workspace's rule folder (the engine never reads files) and explains one customer.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Instant;

use crate::growth::{FitSource, Growth, GrowthOutcome, GrowthSettings, GrowthTask};
use serde::Serialize;
use tiercare_engine::{
    AssessmentTimes, Decision, Diagnostic, Explanation, Feature, LoadedRules, Pin as EnginePin,
    RuleFile, RuleSet, Snapshot, load_rules,
};
use tiercare_store::{CustomerFeatures, EncodedDecision, JsonText, Pin, Store, StoreError};

/// The time format of messages, and the features-to-snapshot copy, at their earlier paths.
pub use crate::snapshot::fill_snapshot;
pub use crate::time::format_time;

/// The rule files of a folder: `*.yaml`/`*.yml` rule files and `*.rhai` function libraries at
/// its top level, and rule tests in its `tests/` subfolder.
#[derive(Debug, Clone, Default)]
pub struct RuleSource {
    /// The rule files and libraries, sorted by path.
    pub files: Vec<RuleFile>,
    /// The rule tests, sorted by path.
    pub tests: Vec<RuleFile>,
}

/// Why an assessment (or reading the rules) did not happen.
#[derive(Debug, thiserror::Error)]
pub enum AssessError {
    /// A rule file could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// The rules have errors; nothing was assessed.
    #[error("{}", tiercare_engine::render_all(diagnostics, false).trim_end())]
    Rules {
        /// Every problem, at `path:line:col`.
        diagnostics: Vec<Diagnostic>,
    },
    /// Rules failed for more customers than `[rules] max_failure_share` allows: the assessment
    /// was not recorded.
    #[error(
        "the assessment was not recorded: rules failed for {failed} of {customers} customers, more than the {}% that [rules] max_failure_share allows{}\nfix the rules (`tiercare check` proves them on real customers) or raise max_failure_share in tiercare.toml",
        max_share * 100.0,
        describe_failures(failures)
    )]
    TooManyFailures {
        /// Customers whose rules failed.
        failed: u64,
        /// Customers evaluated (the assessment stops early once the share is exceeded).
        customers: u64,
        /// The share allowed.
        max_share: f64,
        /// Each failing rule.
        failures: Vec<RuleFailure>,
    },
    /// The customer asked for does not exist.
    #[error(
        "no customer with id '{0}': `tiercare customer list` is not there yet; check the id in your customers file"
    )]
    UnknownCustomer(String),
    /// The database refused.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// `; tiers[0] (A) at rules/tiers.yaml:22:13 failed for 8, e.g. C001: ...` for each rule.
fn describe_failures(failures: &[RuleFailure]) -> String {
    failures
        .iter()
        .map(|f| {
            format!(
                "\n  {} at {} failed for {} customer(s), e.g. {}: {}",
                f.rule, f.location, f.customers, f.example_customer, f.message
            )
        })
        .collect()
}

/// How an assessment guards against failing rules (from `[rules]` in `tiercare.toml`).
#[derive(Debug, Clone, Copy)]
pub struct RuleSafety {
    /// The time each customer's evaluation may take.
    pub budget: Option<tiercare_engine::Budget>,
    /// The largest share of customers whose rules may fail before the assessment is refused.
    pub max_failure_share: f64,
}

impl RuleSafety {
    /// The safety `[rules]` asks for.
    #[must_use]
    pub fn from_config(config: &crate::config::RulesConfig) -> RuleSafety {
        RuleSafety {
            budget: Some(config.budget()),
            max_failure_share: config.max_failure_share,
        }
    }

    /// How many failing customers of `customers` are still allowed.
    fn allowed(&self, customers: u64) -> u64 {
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss,
            reason = "a share of a count, floored, non-negative"
        )]
        let allowed = (customers as f64 * self.max_failure_share).floor() as u64;
        allowed
    }
}

impl Default for RuleSafety {
    fn default() -> Self {
        RuleSafety::from_config(&crate::config::RulesConfig::default())
    }
}

/// Reads the files of `dir` that `keep` accepts, sorted, naming each `label/<file name>`.
fn read_dir_sorted(
    dir: &Path,
    label: &Path,
    keep: impl Fn(&str) -> bool,
) -> Result<Vec<RuleFile>, AssessError> {
    let files = crate::workspace::read_folder(dir, label, keep)
        .map_err(|(path, source)| AssessError::Io { path, source })?;
    Ok(files
        .into_iter()
        .map(|(path, text)| RuleFile::new(path, text))
        .collect())
}

impl RuleSource {
    /// Reads a rule folder. Files are named `label/<name>` in diagnostics and in the rule-set
    /// version (a workspace passes `rules`, so the version does not depend on where the
    /// workspace lives).
    pub fn read(dir: &Path, label: &Path) -> Result<RuleSource, AssessError> {
        let files = read_dir_sorted(dir, label, |name| {
            name.ends_with(".yaml") || name.ends_with(".yml") || name.ends_with(".rhai")
        })?;
        let tests_dir = dir.join("tests");
        let tests = if tests_dir.is_dir() {
            read_dir_sorted(&tests_dir, &label.join("tests"), |name| {
                name.ends_with(".yaml") || name.ends_with(".yml")
            })?
        } else {
            Vec::new()
        };
        Ok(RuleSource { files, tests })
    }

    /// Compiles the rules: every problem is returned at once.
    pub fn load(&self) -> Result<LoadedRules, AssessError> {
        load_rules(&self.files).map_err(|diagnostics| AssessError::Rules { diagnostics })
    }
}

/// What to assess.
#[derive(Debug, Clone, Copy)]
pub struct AssessOptions {
    /// The assessment time (unix seconds): data after it is ignored.
    pub at: i64,
    /// The wall-clock time now (unix seconds), for pins' expiry and the record.
    pub now: i64,
    /// Decide but write nothing.
    pub dry_run: bool,
    /// The growth models' zone and discount rate.
    pub growth: GrowthSettings,
}

/// One tier's figures in a report.
#[derive(Debug, Clone, Serialize)]
pub struct TierSummary {
    /// The tier id (`(none)` for customers no tier matched).
    pub tier: String,
    /// Customers in it.
    pub customers: u64,
    /// Their revenue in the window.
    pub revenue: f64,
    /// Share of all customers.
    pub customer_share: f64,
    /// Share of all revenue in the window.
    pub revenue_share: f64,
}

/// Customers that moved from one tier to another (`(new)` when they had none).
#[derive(Debug, Clone, Serialize)]
pub struct Move {
    /// The stored tier before this assessment.
    pub from: String,
    /// The tier now.
    pub to: String,
    /// How many customers.
    pub customers: u64,
}

/// One segment set's counts.
#[derive(Debug, Clone, Serialize)]
pub struct SegmentSummary {
    /// The set's name.
    pub set: String,
    /// Customers per segment, in the rules' order, then `(none)`.
    pub counts: Vec<(String, u64)>,
}

/// Failures of one rule across customers.
#[derive(Debug, Clone, Serialize)]
pub struct RuleFailure {
    /// The rule, e.g. `tiers[1] (B)`.
    pub rule: String,
    /// For how many customers it failed.
    pub customers: u64,
    /// The first customer it failed for.
    pub example_customer: String,
    /// Where the rule is (`rules/tiers.yaml:22:13`).
    pub location: String,
    /// Its error message.
    pub message: String,
}

/// What an assessment decided.
#[derive(Debug, Clone, Serialize)]
pub struct AssessReport {
    /// The assessment time (unix seconds).
    pub at: i64,
    /// The rule-set version (content hash).
    pub ruleset_version: String,
    /// The feature window.
    pub window: String,
    /// Nothing was written.
    pub dry_run: bool,
    /// The recorded assessment, unless a dry run.
    pub assessment_id: Option<i64>,
    /// Customers assessed.
    pub customers: u64,
    /// Customers whose tier changed.
    pub changed: u64,
    /// Customers whose tier a pin decided.
    pub pinned: u64,
    /// Customers with a downgrade held back by hysteresis.
    pub downgrades_pending: u64,
    /// Per tier, in the rules' order.
    pub tiers: Vec<TierSummary>,
    /// Tier moves (only customers whose tier changed).
    pub moves: Vec<Move>,
    /// Per segment set.
    pub segments: Vec<SegmentSummary>,
    /// Rules that failed for some customers (the others were assessed all the same).
    pub rule_errors: Vec<RuleFailure>,
    /// Customers for whom a rule failed: nothing was recorded for them, they kept their stored
    /// tier (and segments), and they are counted in their stored tier above.
    pub failed_customers: u64,
    /// Wall time in milliseconds.
    pub elapsed_ms: u128,
    /// The growth models fitted for this assessment, or why they could not be.
    pub growth: Option<GrowthOutcome>,
}

pub(crate) fn engine_pin(pin: &Pin) -> EnginePin {
    EnginePin {
        tier: pin.tier.clone(),
        by: pin.pinned_by.clone(),
        reason: pin.reason.clone(),
        until: pin.until.map(format_time),
    }
}

/// Gives a filled snapshot the assessment's time, which hysteresis measures on.
pub fn assessed_at(snapshot: &mut Snapshot, at: i64) {
    snapshot.set_times(AssessmentTimes {
        at: Some(at),
        ..snapshot.times()
    });
}

/// Running totals while customers are assessed.
#[derive(Default)]
struct Tally {
    customers: u64,
    total_revenue: f64,
    per_tier: HashMap<String, (u64, f64)>,
    /// From tier (`(new)` for none), to tier: customers.
    moves: HashMap<String, HashMap<String, u64>>,
    /// Segment set, segment: customers.
    segments: HashMap<String, HashMap<String, u64>>,
    failures: BTreeMap<String, RuleFailure>,
    failed_customers: u64,
    pinned: u64,
    pending: u64,
}

const NONE: &str = "(none)";

/// Assesses every customer: evaluates the rules at `options.at` and, unless a dry run, records
/// the tiers, segments and their history in one transaction. The default [`RuleSafety`]
/// applies (see [`assess_with`]).
pub fn assess(
    reader: &Store,
    writer: Option<&mut Store>,
    rules: &RuleSet,
    options: AssessOptions,
) -> Result<AssessReport, AssessError> {
    assess_with(reader, writer, rules, options, RuleSafety::default())
}

/// [`assess`] under `safety`: each customer's evaluation has the time budget; a customer for
/// whom any rule failed keeps everything stored (a failing rule never moves a customer); and
/// when rules fail for more than `safety.max_failure_share` of the customers, nothing is recorded
/// and the result is [`AssessError::TooManyFailures`] (the evaluation stops as soon as that is
/// certain).
///
/// Features are read through `reader` while decisions stream into `writer` (a second connection
/// to the same database; WAL lets the two work together), so memory stays flat however many
/// customers there are. `writer` is `None` for a dry run.
pub fn assess_with(
    reader: &Store,
    writer: Option<&mut Store>,
    rules: &RuleSet,
    options: AssessOptions,
    safety: RuleSafety,
) -> Result<AssessReport, AssessError> {
    let started = Instant::now();
    let allowed_failures = safety.allowed(reader.customer_count()?);
    let pins = reader.active_pins(options.now)?;
    // The models are fitted only for rules that read a growth feature (one more pass over the
    // orders and the fit); otherwise the features stay none and nothing is stored.
    let uses_growth = crate::growth::FEATURES.iter().any(|f| rules.uses(*f));
    let writer = writer.filter(|_| !options.dry_run);
    // Two threads: this one computes features and evaluates the rules while a second records the
    // decisions (its own connection, its own transaction), taking batches in customer order.
    std::thread::scope(|scope| {
        let (sender, receiver) = mpsc::sync_channel::<ToRecorder>(4);
        let (ready_sender, ready) = mpsc::channel::<Result<(), StoreError>>();
        let recorder = writer.map(|store| {
            let version = rules.version();
            scope.spawn(move || {
                record_decisions(store, options, version, started, &ready_sender, receiver)
            })
        });
        if recorder.is_some() {
            // The transaction is open (or could not be): fail before any work.
            if let Ok(Err(err)) = ready.recv() {
                return Err(err.into());
            }
        }
        let recording = recorder.is_some();
        // The growth models read the orders and fit on a third thread (its own connection, once
        // the recorder holds the write lock: it reads what the features pass does) while this
        // one computes the features; the first customer's evaluation waits for them.
        let mut growth = if uses_growth {
            GrowthTask::start(
                scope,
                reader,
                options.at,
                rules.window(),
                options.growth,
                crate::growth::wanted(|f| rules.uses(f)),
            )
        } else {
            GrowthTask::none()
        };
        let mut growth_failed = false;
        let mut evaluator = rules.evaluator();
        evaluator.set_budget(safety.budget);
        let mut snapshot = Snapshot::new();
        let mut tally = Tally::default();
        let mut batch = Vec::with_capacity(DECISION_BATCH);
        let mut recorder_gone = false;
        // While the recorder holds the write lock nobody can commit, so a second connection
        // reads what the first one does: half the orders and the event tables, on its own thread.
        let mut helper = match reader.path() {
            Some(path) if recording => Some(Store::open(path)?),
            _ => None,
        };
        let window = rules.window();
        let attributes = rules.uses(Feature::Attr);
        reader.for_each_features_with(
            options.at,
            window,
            helper.as_mut(),
            attributes,
            &mut |features| {
                if recorder_gone || growth_failed || tally.failed_customers > allowed_failures {
                    return;
                }
                let Some(growth) = growth.get() else {
                    growth_failed = true;
                    return;
                };
                // No reset: `fill_snapshot` sets every feature (a test holds it to that), and the
                // pin is set (or cleared) just below.
                fill_snapshot(&mut snapshot, features);
                growth.fill(&mut snapshot, features.customer_rowid);
                assessed_at(&mut snapshot, options.at);
                snapshot.set_pin(pins.get(&features.customer_rowid).map(engine_pin));
                let decision = evaluator.evaluate(&snapshot);
                tally.count(features, &decision);
                // A failing rule never moves a customer: nothing is recorded for them.
                if !recording || !decision.errors.is_empty() {
                    return;
                }
                // The stored form is made here, so the recording thread (the busier one) only writes.
                let Some(record) = tier_decision(features.customer_rowid, decision) else {
                    return;
                };
                batch.push(record);
                if batch.len() == DECISION_BATCH {
                    let full = std::mem::replace(&mut batch, Vec::with_capacity(DECISION_BATCH));
                    // A send fails only when the recorder stopped on an error, reported below.
                    recorder_gone = sender.send(ToRecorder::Decisions(full)).is_err();
                }
            },
        )?;
        let growth = match growth.finish() {
            Ok(growth) => growth,
            Err(err) => {
                // No `Finish`: the recorder rolls its transaction back.
                drop(sender);
                if let Some(handle) = recorder {
                    handle
                        .join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
                }
                return Err(err.into());
            }
        };
        let growth_json = growth.record_json();
        let rule_errors: u64 = tally.failures.values().map(|f| f.customers).sum();
        if tally.failed_customers > allowed_failures {
            // No `Finish`: the recorder rolls its transaction back.
            drop(sender);
            if let Some(handle) = recorder {
                handle
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
            }
            return Err(AssessError::TooManyFailures {
                failed: tally.failed_customers,
                customers: tally.customers,
                max_share: safety.max_failure_share,
                failures: tally.failures.into_values().collect(),
            });
        }
        if !batch.is_empty() {
            let _ = sender.send(ToRecorder::Decisions(batch));
        }
        let _ = sender.send(ToRecorder::Finish {
            rule_errors,
            growth_json,
        });
        drop(sender);
        let outcome = match recorder {
            Some(handle) => handle
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))?,
            None => None,
        };
        let mut report = report(rules, options, tally, outcome, started);
        report.growth = growth.outcome;
        Ok(report)
    })
}

/// Decisions handed to the recording thread at a time.
const DECISION_BATCH: usize = 1024;

/// A decision as the store records it, JSON serialised; `None` when no tier was decided
/// (nothing to record).
fn tier_decision(customer_rowid: i64, decision: Decision) -> Option<EncodedDecision> {
    /// Why, kept with the tier (history keeps the reason only on change); the pending tier
    /// and the pin have columns of their own. Fields in name order: the JSON is the same as a
    /// `serde_json` object of them.
    #[derive(Serialize)]
    struct Reasons<'d> {
        reason: &'d str,
        rule_tier: &'d Option<String>,
    }
    let tier = decision.tier?;
    let reasons_json = JsonText::of(&Reasons {
        reason: &decision.reason,
        rule_tier: &decision.rule_tier,
    })
    .expect("plain fields serialise");
    // A JSON object of the scores by name (the last of a repeated name), as a map keeps them.
    let scores: BTreeMap<&str, f64> = decision
        .scores
        .iter()
        .map(|(name, value)| (name.as_str(), *value))
        .collect();
    let scores_json = JsonText::of(&scores).expect("string keys serialise");
    Some(EncodedDecision {
        customer_rowid,
        tier,
        reason: decision.reason,
        reasons_json,
        scores_json,
        pending_tier: decision.pending_tier,
        pending_count: decision.pending_count,
        pending_since: decision.pending_since,
        pinned: decision.pinned,
        segments: decision.segments,
    })
}

/// What the evaluating thread sends the recording one.
enum ToRecorder {
    /// Decisions to record, in customer order.
    Decisions(Vec<EncodedDecision>),
    /// Every decision was sent: commit.
    Finish {
        /// Customers for whom a rule failed.
        rule_errors: u64,
        /// The growth fit to store with the assessment.
        growth_json: Option<String>,
    },
}

/// The recording thread: opens the assessment (saying on `ready` whether it could), records
/// every decision received and commits on [`ToRecorder::Finish`]. Without it (the evaluation
/// failed) the transaction rolls back; `None` then, and when the assessment could not begin.
fn record_decisions(
    store: &mut Store,
    options: AssessOptions,
    version: &str,
    started: Instant,
    ready: &mpsc::Sender<Result<(), StoreError>>,
    receiver: mpsc::Receiver<ToRecorder>,
) -> Result<Option<tiercare_store::AssessmentOutcome>, StoreError> {
    let mut session = match store.begin_assessment(options.at, version, options.now) {
        Ok(session) => session,
        Err(err) => {
            let _ = ready.send(Err(err));
            return Ok(None);
        }
    };
    let _ = ready.send(Ok(()));
    for message in receiver {
        match message {
            ToRecorder::Decisions(batch) => {
                for record in batch {
                    session.record_encoded(record)?;
                }
            }
            ToRecorder::Finish {
                rule_errors,
                growth_json,
            } => {
                if let Some(json) = growth_json {
                    session.record_growth(&json)?;
                }
                let finished = options.now + started.elapsed().as_secs() as i64;
                return session.finish(finished, rule_errors).map(Some);
            }
        }
    }
    Ok(None)
}

/// The counter of `key` in `map`, added when missing (a key is allocated only then).
fn counter<'m, V: Default>(map: &'m mut HashMap<String, V>, key: &str) -> &'m mut V {
    if !map.contains_key(key) {
        map.insert(key.to_owned(), V::default());
    }
    map.get_mut(key).expect("inserted just above")
}

impl Tally {
    fn count(&mut self, features: &CustomerFeatures, decision: &tiercare_engine::Decision) {
        self.customers += 1;
        self.total_revenue += features.revenue_window;
        if !decision.errors.is_empty() {
            self.count_failed(features, decision);
            return;
        }
        let tier = decision.tier.as_deref().unwrap_or(NONE);
        let slot = counter(&mut self.per_tier, tier);
        slot.0 += 1;
        slot.1 += features.revenue_window;
        if features.previous_tier != tier {
            let from = if features.previous_tier.is_empty() {
                "(new)"
            } else {
                features.previous_tier.as_str()
            };
            *counter(counter(&mut self.moves, from), tier) += 1;
        }
        for (set, segment) in &decision.segments {
            let segment = segment.as_deref().unwrap_or(NONE);
            *counter(counter(&mut self.segments, set), segment) += 1;
        }
        self.pinned += u64::from(decision.pinned);
        self.pending += u64::from(decision.pending_count > 0);
    }

    /// A customer whose rules failed: counted in the tier it keeps, with each failure.
    fn count_failed(&mut self, features: &CustomerFeatures, decision: &tiercare_engine::Decision) {
        self.failed_customers += 1;
        let kept = if features.previous_tier.is_empty() {
            NONE
        } else {
            features.previous_tier.as_str()
        };
        let slot = counter(&mut self.per_tier, kept);
        slot.0 += 1;
        slot.1 += features.revenue_window;
        for error in &decision.errors {
            self.failures
                .entry(error.rule.clone())
                .and_modify(|f| f.customers += 1)
                .or_insert_with(|| RuleFailure {
                    rule: error.rule.clone(),
                    customers: 1,
                    example_customer: features.customer_id.clone(),
                    location: error.location.clone(),
                    message: error.message.clone(),
                });
        }
    }
}

fn report(
    rules: &RuleSet,
    options: AssessOptions,
    tally: Tally,
    outcome: Option<tiercare_store::AssessmentOutcome>,
    started: Instant,
) -> AssessReport {
    let share = |part: f64, whole: f64| if whole > 0.0 { part / whole } else { 0.0 };
    let mut order: Vec<String> = rules.tiers().map(|t| t.id.clone()).collect();
    order.push(NONE.to_owned());
    let tiers = order
        .iter()
        .filter_map(|tier| {
            let (customers, revenue) = tally.per_tier.get(tier).copied()?;
            Some(TierSummary {
                tier: tier.clone(),
                customers,
                revenue,
                customer_share: share(customers as f64, tally.customers as f64),
                revenue_share: share(revenue, tally.total_revenue),
            })
        })
        .collect();
    let segments = rules
        .segment_sets()
        .into_iter()
        .map(|set| {
            let mut names: Vec<String> = set.segments.iter().map(|s| s.id.clone()).collect();
            names.push(NONE.to_owned());
            SegmentSummary {
                counts: names
                    .into_iter()
                    .map(|name| {
                        let n = tally
                            .segments
                            .get(&set.name)
                            .and_then(|counts| counts.get(&name))
                            .copied()
                            .unwrap_or(0);
                        (name, n)
                    })
                    .collect(),
                set: set.name,
            }
        })
        .collect();
    let changed: u64 = tally.moves.values().flat_map(HashMap::values).sum();
    let mut moves: Vec<Move> = tally
        .moves
        .into_iter()
        .flat_map(|(from, to)| {
            to.into_iter().map(move |(to, customers)| Move {
                from: from.clone(),
                to,
                customers,
            })
        })
        .collect();
    moves.sort_unstable_by(|a, b| (&a.from, &a.to).cmp(&(&b.from, &b.to)));
    AssessReport {
        at: options.at,
        ruleset_version: rules.version().to_owned(),
        window: rules.window().to_string(),
        dry_run: options.dry_run,
        assessment_id: outcome.as_ref().map(|o| o.assessment_id),
        customers: tally.customers,
        changed,
        pinned: tally.pinned,
        downgrades_pending: tally.pending,
        tiers,
        moves,
        segments,
        rule_errors: tally.failures.into_values().collect(),
        failed_customers: tally.failed_customers,
        elapsed_ms: started.elapsed().as_millis(),
        growth: None,
    }
}

/// One customer, explained: features, every rule's verdict, pins and tier history.
#[derive(Debug, Clone, Serialize)]
pub struct CustomerExplanation {
    /// The customer's external id.
    pub customer_id: String,
    /// The assessment time used.
    pub at: i64,
    /// The rules' explanation (features seen, conditions, pin, hysteresis).
    pub explanation: Explanation,
    /// Pins, newest first.
    pub pins: Vec<Pin>,
    /// Tier changes, newest first.
    pub history: Vec<tiercare_store::TierChange>,
    /// The growth models fitted at `at` for the explanation, or why they could not be.
    pub growth: Option<GrowthOutcome>,
    /// The customer's purchase summary (frequency, recency, age in days).
    pub growth_summary: Option<tiercare_growth::Summary>,
    /// The customer's predicted values.
    pub growth_prediction: Option<tiercare_growth::Prediction>,
    /// Where `growth` comes from: an assessment's stored fit, or fitted for this explanation.
    pub growth_source: FitSource,
}

/// Explains one customer's tier at `at`.
pub fn explain(
    store: &Store,
    rules: &RuleSet,
    customer_id: &str,
    at: i64,
    now: i64,
    growth: GrowthSettings,
) -> Result<CustomerExplanation, AssessError> {
    let features = store
        .customer_features(at, rules.window(), customer_id)?
        .ok_or_else(|| AssessError::UnknownCustomer(customer_id.to_owned()))?;
    // The latest assessment's stored fit and this customer's orders alone; a fit over every
    // customer's orders only when no assessment stored one.
    let (growth, growth_source) = match crate::growth::stored_fit(store, at)? {
        Some((source, outcome)) => {
            let window = rules.window();
            let rowid = features.customer_rowid;
            let one = Growth::for_customer(store, rowid, at, window, growth, outcome)?;
            (one, source)
        }
        None => (
            Growth::compute(
                store,
                at,
                rules.window(),
                growth,
                tiercare_growth::Wanted::ALL,
            )?,
            FitSource::FittedNow,
        ),
    };
    let mut snapshot = Snapshot::new();
    fill_snapshot(&mut snapshot, &features);
    growth.fill(&mut snapshot, features.customer_rowid);
    assessed_at(&mut snapshot, at);
    let pins = store.active_pins(now)?;
    snapshot.set_pin(pins.get(&features.customer_rowid).map(engine_pin));
    let explanation = rules.evaluator().explain(&snapshot);
    Ok(CustomerExplanation {
        customer_id: customer_id.to_owned(),
        at,
        explanation,
        pins: store.pins_of(customer_id)?,
        history: store.tier_history(customer_id)?,
        growth_summary: growth.summary(features.customer_rowid),
        growth_prediction: growth.prediction(features.customer_rowid),
        growth: growth.outcome,
        growth_source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every field away from its default, so a feature `fill_snapshot` forgot to set keeps
    /// this customer's value when the snapshot is reused for the next.
    fn busy_customer() -> CustomerFeatures {
        let mut attributes = serde_json::Map::new();
        attributes.insert("industry".into(), serde_json::json!("retail"));
        CustomerFeatures {
            customer_rowid: 7,
            customer_id: "C-7".into(),
            region: "north".into(),
            owner: "m1".into(),
            timezone: "Europe/Paris".into(),
            has_email: true,
            consent_email: true,
            consent_sms: true,
            consent_phone: true,
            birthday: "1980-02-03".into(),
            orders_total: 9,
            revenue_total: 900.5,
            orders_window: 4,
            revenue_window: 400.25,
            avg_order_window: 100.0625,
            avg_order_total: 100.05,
            first_order_at: Some(1_600_000_000),
            last_order_at: Some(1_700_000_000),
            days_since_last_order: 12,
            days_since_first_order: 900,
            tenure_days: 901,
            revenue_rank: 3,
            revenue_share: 0.25,
            revenue_share_before: 0.5,
            revenue_share_after: 0.75,
            revenue_percentile: 97.0,
            r_score: 5,
            f_score: 4,
            m_score: 3,
            rfm_cell: 543,
            interactions_window: 2,
            interactions_total: 6,
            last_contact_at: Some(1_690_000_000),
            days_since_last_contact: 40,
            complaints_open: 1,
            complaints_window: 2,
            complaints_total: 3,
            max_severity_window: 4,
            feedback_window: 2,
            satisfaction_avg: Some(4.5),
            satisfaction_last: Some(4.0),
            previous_tier: "A".into(),
            days_in_tier: 30,
            pending_downgrade: 2,
            pending_since: Some(1_690_000_000),
            points_balance: 120.0,
            coupons_open: 1,
            coupon_redeemed_days_ago: Some(3),
            attributes,
            created_at: 1_500_000_000,
        }
    }

    #[test]
    fn fill_snapshot_sets_every_feature_so_a_reused_snapshot_needs_no_reset() {
        // The assessment reuses one snapshot without resetting it (resetting cost 8 % of a
        // dry run at 1M customers).
        let quiet = CustomerFeatures::default();
        let mut fresh = Snapshot::new();
        fill_snapshot(&mut fresh, &quiet);
        let mut reused = Snapshot::new();
        fill_snapshot(&mut reused, &busy_customer());
        assert_ne!(format!("{reused:?}"), format!("{fresh:?}"));
        fill_snapshot(&mut reused, &quiet);
        assert_eq!(format!("{reused:?}"), format!("{fresh:?}"));
    }

    #[test]
    fn the_stored_json_is_what_serde_json_values_of_it_would_be() {
        // Stored rows are compared by their text on the next assessment: the same decision
        // must give the same bytes as the JSON values the store was first written with.
        for (pending, rule_tier, scores) in [
            (None, Some("A"), vec![("z", 1.0), ("a", 2.5), ("a", 3.0)]),
            (
                Some("B"),
                None,
                vec![("nan", f64::NAN), ("big", 1e300), ("neg", -0.0)],
            ),
            (None, None, vec![]),
        ] {
            let decision = Decision {
                tier: Some("A".into()),
                rule_tier: rule_tier.map(str::to_owned),
                reason: "A: \"quoted\" \u{e9}\u{1f600}\n".into(),
                pending_tier: pending.map(str::to_owned),
                pending_count: 2,
                pending_since: pending.map(|_| 1_690_000_000),
                pinned: pending.is_some(),
                segments: vec![("rfm".into(), Some("champions".into()))],
                scores: scores.iter().map(|(n, v)| ((*n).to_owned(), *v)).collect(),
                errors: Vec::new(),
            };
            let expected_reasons = serde_json::json!({
                "reason": &decision.reason,
                "rule_tier": &decision.rule_tier,
            })
            .to_string();
            let expected_scores = serde_json::Value::Object(
                decision
                    .scores
                    .iter()
                    .map(|(name, value)| (name.clone(), serde_json::json!(value)))
                    .collect(),
            )
            .to_string();
            let encoded = tier_decision(7, decision).unwrap();
            assert_eq!(encoded.reasons_json.as_str(), expected_reasons);
            assert_eq!(encoded.scores_json.as_str(), expected_scores);
            assert_eq!(encoded.customer_rowid, 7);
        }
    }
}
