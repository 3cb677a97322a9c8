//! The daemon behind `tiercare run`: schedules, follow-ups, mail, hot reload, signals.
//!
//! [`Daemon`] is the part that decides, driven by an injected [`Clock`] so tests can step
//! through days at once: [`Daemon::pass`] does one round (reassess if the rule set's `reassess`
//! schedule says so, record the follow-ups due since the last tick, deliver due mail) and
//! [`Daemon::reload`] loads `rules/` and `templates/` into a new compiled rule set and template
//! set and swaps both in at once, or keeps the last good pair and reports every problem. [`run`] is the process around it: the lock (one
//! daemon per database), the folder watcher (a reload once per settled new content, see
//! [`crate::watch`]), `SIGHUP` (reload), `SIGTERM`/`SIGINT` (finish the
//! round, record the stop, exit), and waiting on one channel until the next slot or event.
//!
//! The public pool ([`crate::pool`]) is passed before follow-ups are recorded (so reclaimed
//! customers are assigned again on the same tick), only when something may be due.
//!
//! Mail goes through the outbox ([`crate::outbox`]): follow-ups' emails are rendered and queued
//! with their ledger rows ([`record_due`](crate::plan::record_due)) and sent by [`deliver_due_gated`]. At start-up, claims a
//! stopped daemon left open are recovered by the outbox's crash policy.
//!
//! # What is stored, and why nothing happens twice
//!
//! - Each schedule's last handled slot is in `schedule_firings` and only moves forward (see
//!   [`crate::firing`]): after downtime a missed reassessment is made up once if within
//!   `[daemon] lateness`, else skipped and logged; a clock stepped backwards finds no slot to
//!   fire.
//! - Follow-ups are recorded for `[previous tick, now)`; the ledger's occurrence keys make a
//!   repeated range record nothing new, and the tick cursor never moves backwards either.
//! - The daemon's state (`daemon_state`) is what `tiercare status` reads from another process.

pub mod clock;
pub mod firing;
pub mod lock;
pub mod status;
pub mod watch;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use serde::Serialize;
use tiercare_engine::{
    Diagnostic, References, RuleSet, Severity, TemplateFile, check_references, load_templates,
};
use tiercare_store::{DaemonState, RecoveryPolicy, SlotOutcome, Store, StoreError};

use crate::assess::{AssessError, AssessOptions, RuleSafety, RuleSource, assess_with};
use crate::clock::Clock;
use crate::config::AfterCrash;
use crate::delivery_gate::DeliveryGate;
use crate::firing::Due;
use crate::lock::{DaemonLock, LockError};
use crate::mail::{MailError, MailTransport};
use crate::outbox::{SendSettings, deliver_due_gated, transports};
use crate::plan::{EVENT_LOOKBACK, PlanOptions, record_due_ahead};
use crate::templates::{EmailRenderer, TemplatesError, read_templates, template_names};
use crate::watch::{Change, Fingerprint, FolderWatcher, Settle, Settled};
use crate::workspace::{Workspace, WorkspaceError};

/// The name of the reassessment schedule in `schedule_firings`.
pub const REASSESS: &str = "reassess";
/// The name of the follow-up tick in `schedule_firings`.
pub const FOLLOWUPS: &str = "followups";

/// The longest the loop waits without looking at the clock (a simulated clock's speed or a
/// system clock set forward is noticed at least this often).
const MAX_WAIT: Duration = Duration::from_secs(5);

/// Why the daemon could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// Another daemon runs on this database, or the lock file is unusable.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// The workspace or its database could not be opened.
    #[error(transparent)]
    Workspace(#[from] WorkspaceError),
    /// The rules are invalid at start-up (a running daemon keeps its last good rules instead).
    #[error(transparent)]
    Rules(#[from] AssessError),
    /// The database refused.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The managers' digests could not be decided (a digest template that cannot render).
    #[error("{0}")]
    Digests(String),
    /// The mail settings are unusable (an invalid `from`, a missing password or secret).
    #[error(transparent)]
    Mail(#[from] MailError),
    /// The care-email templates are invalid at start-up, or could not be used (a running daemon
    /// keeps its last good templates instead).
    #[error("{0}")]
    Templates(String),
    /// The templates could not be read or prepared for rendering.
    #[error(transparent)]
    Render(#[from] TemplatesError),
    /// Delivering mail failed (the database, or the mail settings).
    #[error(transparent)]
    Deliver(#[from] crate::outbox::DeliverError),
    /// Webhooks could not be set up (a missing signing secret) or delivered (`--once`).
    #[error(transparent)]
    Webhooks(#[from] crate::webhooks::WebhookError),
    /// Signals or the folder watcher could not be set up.
    #[error("cannot set up {what}: {message}")]
    Setup {
        /// Signals or the watcher.
        what: &'static str,
        /// The cause.
        message: String,
    },
}

/// What a reload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadOutcome {
    /// A new rule set is active.
    Swapped {
        /// Its version.
        version: String,
    },
    /// The files compile to the rule set already active.
    Unchanged,
    /// The files have errors; the last good rule set stays active.
    Failed {
        /// Every problem, one `path:line:col: message` per line.
        errors: String,
    },
}

/// What one pass did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PassReport {
    /// The clock time of the pass.
    pub at: i64,
    /// The reassessment slot that fired, if one did.
    pub assessed_slot: Option<i64>,
    /// Customers assessed.
    pub assessed_customers: u64,
    /// Reassessment slots skipped as too late.
    pub skipped_slots: usize,
    /// The follow-up range recorded, if any.
    pub followups_range: Option<(i64, i64)>,
    /// New follow-up ledger rows.
    pub followups_new: u64,
    /// Customers the follow-up pass read (owner assignment first); `None` when no pass was
    /// needed (nothing changed and nothing falls due, see [`FOLLOWUPS_RECHECK`]).
    pub followups_read: Option<u64>,
    /// Owned customers the pool's pass read; `None` when no pass was needed (nothing due).
    pub pool_read: Option<u64>,
    /// Owners warned by the pool (new warnings).
    pub pool_warned: u64,
    /// Customers reclaimed into the pool.
    pub pool_reclaimed: u64,
    /// Emails delivered.
    pub sent: u64,
    /// Emails deferred after a transient failure.
    pub deferred: u64,
    /// Managers' digests queued.
    pub digests: u64,
    /// Errors met (the pass goes on after each; they are logged and in `status`).
    pub errors: Vec<String>,
}

/// One problem per line, `path:line:col: message`.
pub fn one_line_each(diagnostics: &[Diagnostic]) -> String {
    diagnostics
        .iter()
        .map(|d| format!("{}:{}:{}: {}", d.path, d.line, d.column, d.message))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The daemon's decisions over a workspace, on an injected clock.
pub struct Daemon<C: Clock> {
    workspace: Workspace,
    clock: C,
    reader: Store,
    writer: Store,
    rules: RuleSet,
    /// The last good template files, compiled afresh for each batch of follow-ups.
    templates: Vec<TemplateFile>,
    state: DaemonState,
    stop: Arc<AtomicBool>,
    transports: Vec<Box<dyn MailTransport>>,
    /// The SMS provider (`[sms]`).
    sms: Box<dyn crate::sms::SmsTransport>,
    send: SendSettings,
    /// Why the last reassessment was not recorded (rules failed for too many customers), shown
    /// in `status` until one is.
    assessment_problem: Option<String>,
    /// The rule set version and the time before which no pool pass is needed (nothing falls
    /// due); `None`: pass on the next tick.
    pool_next: Option<(String, i64)>,
    /// After a follow-up pass that found nothing to do: until when ticks need not read the
    /// customers again while nothing changes (see [`IdleWatch`]); `None`: pass on the next tick.
    followups_idle: Option<IdleWatch>,
    /// Whether the last delivery error was read from the outbox's events since the start
    /// (then again only after a pass that sent or recovered something: the read walks the
    /// events backwards, and would every idle tick).
    send_error_read: bool,
}

/// How long a follow-up pass looks ahead for the next occurrence, and so the longest an idle
/// daemon goes without reading the customers (time alone can make a rule's condition hold).
pub const FOLLOWUPS_RECHECK: i64 = 3_600;

/// What a follow-up pass over every customer leaves for the next ticks: while the rules are the
/// same, no other connection has committed (the writer's `data_version`), the daemon's own
/// writes since were none that matter and `until` has not come, a tick reads only the customers
/// in `due` whose time has come (planned again from the features the pass saw, over the range
/// from the pass's end: what the pass's lookahead found for them), and none while nobody's has.
/// The tick cursor stays at the pass's end, so the next pass over everyone covers the whole
/// range.
#[derive(Debug, Clone)]
struct IdleWatch {
    version: String,
    data_version: i64,
    until: i64,
    /// The customers with an occurrence before `until` as the data stood, soonest first.
    due: Vec<crate::plan::DueCustomer>,
}

impl IdleWatch {
    /// Takes the customers due before `now` out of the watch (a range `[last, now)` records
    /// what occurs before `now`).
    fn take_due(&mut self, now: i64) -> Vec<crate::plan::DueCustomer> {
        let count = self.due.partition_point(|customer| customer.due < now);
        self.due.drain(..count).collect()
    }

    /// Puts customers planned again back, at their new times (those with none leave).
    fn put_back(&mut self, customers: Vec<crate::plan::DueCustomer>) {
        let until = self.until;
        self.due.extend(
            customers
                .into_iter()
                .filter(|customer| customer.due < until),
        );
        self.due.sort_by_key(|customer| customer.due);
    }
}

/// Whether recording changed something a plan reads besides the ledger and the outbox (an
/// attribute, points, owners): then every customer is read again on the next tick.
fn changed_features(recorded: &crate::plan::RecordReport) -> bool {
    recorded.owners_assigned > 0
        || recorded.attributes_set > 0
        || recorded.new > recorded.queued + recorded.skipped + recorded.tasks_created
}

fn read_rules(workspace: &Workspace) -> Result<RuleSet, AssessError> {
    let source = RuleSource::read(&workspace.rules_dir(), std::path::Path::new("rules"))?;
    Ok(source.load()?.rules)
}

/// Reads `templates/` and checks it against `rules`: every template compiles and checks (the
/// SMS templates `NAME.sms.j2` too, with `[sms] max_segments`), every template a follow-up rule
/// names exists, and only `survey:` rules use templates that read `survey`. `Err` holds every
/// problem, one per line. The files returned (e-mail, digest and SMS templates) are the set the
/// daemon swaps in and renders from until the next good reload.
fn read_checked_templates(
    workspace: &Workspace,
    rules: &RuleSet,
) -> Result<Vec<TemplateFile>, String> {
    let files = read_templates(
        &workspace.templates_dir(),
        std::path::Path::new("templates"),
    )
    .map_err(|err| err.to_string())?;
    // The managers' digest templates (`*.digest.j2`) travel with the care templates: each
    // loader takes its own files from the one list.
    let mut files = files;
    files.extend(
        crate::reminders::read_digest_template_files(
            &workspace.templates_dir(),
            std::path::Path::new("templates"),
        )
        .map_err(|err| err.to_string())?,
    );
    // So do the SMS templates (`*.sms.j2`): checked here, they are never read again from disk
    // until the next reload, so a broken or half-saved one never replaces the last good one.
    files.extend(
        crate::templates::read_sms_templates(
            &workspace.templates_dir(),
            std::path::Path::new("templates"),
        )
        .map_err(|err| err.to_string())?,
    );
    let sms = tiercare_engine::load_sms_templates(&files, workspace.config().sms.max_segments);
    let config_text = std::fs::read_to_string(workspace.root().join(crate::config::CONFIG_FILE))
        .unwrap_or_default();
    let aliyun = crate::sms::aliyun::check_aliyun(
        rules,
        &workspace.config().sms,
        &sms.templates,
        &config_text,
    );
    let digests = crate::reminders::check_digest_templates(
        rules,
        &tiercare_engine::digest::load_digest_templates(&files),
    );
    let loaded = load_templates(&files);
    let mut problems: Vec<Diagnostic> = loaded
        .diagnostics
        .into_iter()
        .chain(digests)
        .chain(sms.diagnostics)
        .chain(aliyun)
        .chain(tiercare_engine::check_survey_templates(
            rules,
            &loaded.templates,
        ))
        .filter(|d| d.severity == Severity::Error)
        .collect();
    let names = template_names(&files);
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let sms_names = crate::templates::sms_template_names(&files);
    let sms_names: Vec<&str> = sms_names.iter().map(String::as_str).collect();
    problems.extend(
        check_references(
            rules,
            &References {
                templates: &names,
                sms_templates: Some(&sms_names),
                ..References::default()
            },
        )
        .into_iter()
        .filter(|d| d.severity == Severity::Error),
    );
    if problems.is_empty() {
        Ok(files)
    } else {
        Err(one_line_each(&problems))
    }
}

fn log_recorded(recorded: &crate::plan::RecordReport) {
    if recorded.new > 0 {
        tracing::info!(
            new = recorded.new,
            planned = recorded.planned,
            queued = recorded.queued,
            skipped = recorded.skipped,
            tasks = recorded.tasks_created,
            read = recorded.customers,
            "follow-ups recorded"
        );
    } else {
        tracing::debug!(read = recorded.customers, "follow-ups: nothing new");
    }
}

fn reload_errors(err: &AssessError) -> String {
    match err {
        AssessError::Rules { diagnostics } => one_line_each(diagnostics),
        other => other.to_string(),
    }
}

impl<C: Clock> Daemon<C> {
    /// Opens the workspace's database (two connections: features are read through one while
    /// decisions are written through the other) and loads the rules; invalid rules refuse to
    /// start.
    pub fn start(workspace: Workspace, clock: C) -> Result<Daemon<C>, DaemonError> {
        let mut writer = workspace.open_store_for_writing()?;
        let reader = workspace.open_store()?;
        let rules = read_rules(&workspace)?;
        let templates =
            read_checked_templates(&workspace, &rules).map_err(DaemonError::Templates)?;
        let send = SendSettings::for_config(workspace.root(), workspace.config(), &|name| {
            std::env::var(name).ok()
        })?;
        let env = |name: &str| std::env::var(name).ok();
        let transports = transports(workspace.root(), &workspace.config().mail, &env)?;
        let sms = crate::sms::sms_transport(workspace.root(), &workspace.config().sms, &env)
            .map_err(|err| DaemonError::Setup {
                what: "the SMS provider",
                message: err.to_string(),
            })?;
        let now = clock.now();
        // The lock proves no other daemon runs, so every claim still open was left by one that
        // stopped mid-send (`kill -9`, a power cut): recover them all now, by the outbox policy
        // ([mail.outbox] after_crash), instead of waiting for them to time out.
        let policy = match send.outbox.after_crash {
            AfterCrash::ResendOnce => RecoveryPolicy::ResendOnce,
            AfterCrash::Hold => RecoveryPolicy::Hold,
        };
        let recovery = writer.recover_claimed(now, i64::MIN, policy)?;
        let rekeyed = writer.rekey_suppressions()?;
        if rekeyed > 0 {
            tracing::info!(rekeyed, "suppressions re-keyed under the current secret");
        }
        if recovery.unknown + recovery.released > 0 {
            tracing::warn!(
                not_handed_over = recovery.released,
                left_claimed = recovery.unknown,
                resent = recovery.requeued,
                "emails left mid-send by a stopped daemon: each may have arrived; resending with the same Message-ID as the policy says"
            );
        }
        let mut state = DaemonState {
            pid: i64::from(std::process::id()),
            started_at: now,
            heartbeat_at: now,
            clock: clock.describe(),
            ruleset_version: Some(rules.version().to_owned()),
            ruleset_loaded_at: Some(now),
            reloads: 1,
            ..DaemonState::default()
        };
        // The rules at start are proven on real customers too. There are no earlier rules to
        // keep, so the daemon starts all the same (a failing rule moves nobody: assessments
        // keep those customers' tiers, and stop above the failure share), and says why.
        let proof = crate::proof::prove_on_sample(&reader, &rules, &workspace.config().rules, now)
            .map(|proof| one_line_each(&proof.errors))
            .unwrap_or_else(|err| format!("cannot prove the rules on real customers: {err}"));
        if !proof.is_empty() {
            for line in proof.lines() {
                tracing::warn!(
                    problem = line,
                    "the rules fail for some real customers; they keep their tiers until fixed"
                );
            }
            state.last_reload_error = Some(proof);
            state.last_reload_error_at = Some(now);
        }
        writer.write_daemon_state(&state)?;
        tracing::info!(
            pid = state.pid,
            ruleset = rules.version(),
            clock = %state.clock,
            "daemon started"
        );
        let mut daemon = Daemon {
            workspace,
            clock,
            reader,
            writer,
            rules,
            templates,
            state,
            stop: Arc::new(AtomicBool::new(false)),
            transports,
            sms,
            send,
            assessment_problem: None,
            pool_next: None,
            followups_idle: None,
            send_error_read: false,
        };
        daemon.state.next_assessment_at = daemon.next_assessment();
        daemon.save_state();
        Ok(daemon)
    }

    /// The flag that asks a pass in progress to stop at the next safe point.
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.stop)
    }

    /// The active rule set.
    pub fn rules(&self) -> &RuleSet {
        &self.rules
    }

    /// The state as `status` shows it.
    pub fn state(&self) -> &DaemonState {
        &self.state
    }

    fn save_state(&mut self) {
        self.state.heartbeat_at = self.clock.now();
        if let Err(err) = self.writer.write_daemon_state(&self.state) {
            tracing::warn!(error = %err, "cannot record the daemon's state; will retry");
        }
    }

    fn next_assessment(&self) -> Option<i64> {
        let schedule = self.rules.reassess()?;
        let after = match self.reader.schedule_cursor(REASSESS) {
            Ok(Some(cursor)) => cursor.last_slot.max(self.clock.now()),
            _ => self.clock.now(),
        };
        firing::next_slot(schedule, self.workspace.config().timezone, after)
    }

    /// Reads `rules/` and `templates/` again and swaps the new rule set and templates in if all
    /// of them are valid; otherwise keeps the active ones and records every problem (log and
    /// `status`). `first_seen` is when the change
    /// was first noticed, for the save-to-active time.
    pub fn reload(&mut self, first_seen: Option<Instant>) -> ReloadOutcome {
        let now = self.clock.now();
        let loaded = read_rules(&self.workspace)
            .map_err(|err| reload_errors(&err))
            .and_then(|rules| {
                read_checked_templates(&self.workspace, &rules).map(|templates| (rules, templates))
            })
            .and_then(|(rules, templates)| {
                // A new rule set must run on a sample of real customers without failing.
                if rules.version() == self.rules.version() {
                    return Ok((rules, templates));
                }
                let config = &self.workspace.config().rules;
                match crate::proof::prove_on_sample(&self.reader, &rules, config, now) {
                    Ok(proof) if proof.errors.is_empty() => Ok((rules, templates)),
                    Ok(proof) => Err(one_line_each(&proof.errors)),
                    Err(err) => Err(format!("cannot prove the rules on real customers: {err}")),
                }
            });
        let outcome = match loaded {
            Err(errors) => {
                for line in errors.lines() {
                    tracing::warn!(
                        problem = line,
                        "rules not reloaded; the previous rules stay active"
                    );
                }
                self.state.last_reload_error = Some(errors.clone());
                self.state.last_reload_error_at = Some(now);
                ReloadOutcome::Failed { errors }
            }
            Ok((rules, templates)) => {
                self.state.last_reload_error = None;
                self.state.last_reload_error_at = None;
                if rules.version() == self.rules.version() && templates == self.templates {
                    tracing::debug!(ruleset = rules.version(), "rules unchanged");
                    ReloadOutcome::Unchanged
                } else {
                    let version = rules.version().to_owned();
                    self.rules = rules;
                    self.templates = templates;
                    self.state.ruleset_version = Some(version.clone());
                    self.state.ruleset_loaded_at = Some(now);
                    self.state.reloads += 1;
                    let latency_ms = first_seen
                        .map(|seen| i64::try_from(seen.elapsed().as_millis()).unwrap_or(i64::MAX));
                    self.state.last_reload_ms = latency_ms;
                    tracing::info!(
                        ruleset = %version,
                        save_to_active_ms = latency_ms,
                        "rules reloaded"
                    );
                    ReloadOutcome::Swapped { version }
                }
            }
        };
        self.state.next_assessment_at = self.next_assessment();
        self.save_state();
        outcome
    }

    /// When the next pass is due on the daemon's clock: the next tick or the next reassessment,
    /// whichever comes first.
    pub fn next_wake(&self) -> i64 {
        let tick = self.workspace.config().daemon.tick;
        let now = self.clock.now();
        // After a clock stepped backwards the next tick is a tick from now (mail still goes
        // out; follow-ups wait until the clock passes the last recorded tick).
        let next_tick =
            self.state.last_tick_at.map_or(
                now,
                |last| if now < last { now + tick } else { last + tick },
            );
        let wake = self
            .state
            .next_assessment_at
            .map_or(next_tick, |next| next.min(next_tick));
        self.next_digest_at()
            .map_or(wake, |digest| digest.min(wake))
    }

    /// One round: reassess if the schedule says so, record follow-ups due since the last tick,
    /// deliver due mail, and record the state. Errors are logged, kept for `status`, and
    /// retried on the next pass; they never stop the daemon.
    pub fn pass(&mut self) -> PassReport {
        let now = self.clock.now();
        let mut report = PassReport {
            at: now,
            ..PassReport::default()
        };
        if let Err(err) = self.reassess_if_due(now, &mut report) {
            tracing::error!(error = %err, "reassessment failed; it will be retried");
            report.errors.push(format!("reassessment: {err}"));
        }
        if !self.stop.load(Ordering::SeqCst)
            && let Err(err) = self.pool_pass(now, &mut report)
        {
            tracing::error!(error = %err, "the pool's pass failed; it will be retried");
            report.errors.push(format!("pool: {err}"));
        }
        // The daemon's own writes that change what follow-ups plan: read the customers again.
        if report.assessed_slot.is_some() || report.pool_warned + report.pool_reclaimed > 0 {
            self.followups_idle = None;
        }
        // One renderer for the pass: recording and delivery render at the same time, so they
        // share its features pass, purchase history and managers.
        let mut renderer = None;
        if !self.stop.load(Ordering::SeqCst)
            && let Err(err) = self.record_followups(now, &mut report, &mut renderer)
        {
            tracing::error!(error = %err, "recording follow-ups failed; it will be retried");
            report.errors.push(format!("follow-ups: {err}"));
        }
        if !self.stop.load(Ordering::SeqCst)
            && let Err(err) = self.send_digests(now, &mut report)
        {
            tracing::error!(error = %err, "deciding managers' digests failed; it will be retried");
            report.errors.push(format!("digests: {err}"));
        }
        if !self.stop.load(Ordering::SeqCst)
            && let Err(err) = self.deliver(now, &mut report, &mut renderer)
        {
            tracing::error!(error = %err, "delivering mail failed; it will be retried");
            report.errors.push(format!("mail: {err}"));
            self.state.last_send_error = Some(err.to_string());
            self.state.last_send_error_at = Some(now);
        }
        self.state.last_tick_at = Some(self.state.last_tick_at.map_or(now, |last| last.max(now)));
        let problems: Vec<&str> = report
            .errors
            .iter()
            .map(String::as_str)
            .chain(self.assessment_problem.as_deref())
            .collect();
        self.state.last_tick_error = if problems.is_empty() {
            None
        } else {
            Some(problems.join("\n"))
        };
        self.state.next_assessment_at = self.next_assessment();
        self.save_state();
        report
    }

    /// The pool's warnings and reclaims ([`crate::pool::reclaim`]), when something may be due:
    /// on the first tick, with new rules, after a reassessment, once the earliest due time the
    /// last pass found has come, and at least once a day. Other ticks read nothing.
    fn pool_pass(&mut self, now: i64, report: &mut PassReport) -> Result<(), DaemonError> {
        if self.rules.pool().is_empty() {
            return Ok(());
        }
        let version = self.rules.version();
        if report.assessed_slot.is_none()
            && self
                .pool_next
                .as_ref()
                .is_some_and(|(seen, next)| seen == version && now < *next)
        {
            return Ok(());
        }
        let pass = crate::pool::reclaim(&mut self.writer, &self.rules, now)?;
        let recheck = now + crate::pool::POOL_RECHECK;
        self.pool_next = Some((
            version.to_owned(),
            pass.next_due.map_or(recheck, |due| due.min(recheck)),
        ));
        report.pool_read = Some(pass.read);
        report.pool_warned = pass.warned;
        report.pool_reclaimed = pass.reclaimed;
        Ok(())
    }

    fn reassess_if_due(&mut self, now: i64, report: &mut PassReport) -> Result<(), DaemonError> {
        let Some(schedule) = self.rules.reassess() else {
            return Ok(());
        };
        let tz = self.workspace.config().timezone;
        let lateness = self.workspace.config().daemon.lateness;
        let last = self.reader.schedule_cursor(REASSESS)?.map(|c| c.last_slot);
        match firing::due(schedule, tz, last, now, lateness) {
            Due::Nothing => Ok(()),
            Due::Skip { slot, count } => {
                tracing::warn!(
                    missed = count,
                    latest = %crate::time::format_time(slot),
                    lateness_s = lateness,
                    "missed reassessments are too late to make up; skipped"
                );
                report.skipped_slots = count;
                self.writer.advance_schedule(
                    REASSESS,
                    schedule.source(),
                    slot,
                    SlotOutcome::Skipped {
                        count: i64::try_from(count).unwrap_or(i64::MAX),
                    },
                    now,
                )?;
                Ok(())
            }
            Due::Fire { slot, skipped } => {
                if skipped > 0 {
                    tracing::warn!(
                        missed = skipped + 1,
                        "reassessments were missed while the daemon was down; making up the latest once"
                    );
                }
                let source = schedule.source().to_owned();
                let safety = RuleSafety::from_config(&self.workspace.config().rules);
                let assessed = match assess_with(
                    &self.reader,
                    Some(&mut self.writer),
                    &self.rules,
                    AssessOptions {
                        at: now,
                        now,
                        dry_run: false,
                        growth: self.workspace.config().growth_settings(),
                    },
                    safety,
                ) {
                    Err(err @ AssessError::TooManyFailures { .. }) => {
                        // Not recorded, and not retried every tick: the slot is handled, the
                        // reason is logged once and shown by `status` until an assessment
                        // succeeds.
                        let problem = format!("reassessment not recorded: {err}");
                        tracing::warn!(
                            slot = %crate::time::format_time(slot),
                            problem = %problem,
                            "reassessment not recorded"
                        );
                        self.assessment_problem = Some(problem);
                        self.writer.advance_schedule(
                            REASSESS,
                            &source,
                            slot,
                            SlotOutcome::Fired,
                            now,
                        )?;
                        report.assessed_slot = Some(slot);
                        return Ok(());
                    }
                    other => other?,
                };
                self.assessment_problem = None;
                self.writer
                    .advance_schedule(REASSESS, &source, slot, SlotOutcome::Fired, now)?;
                tracing::info!(
                    slot = %crate::time::format_time(slot),
                    customers = assessed.customers,
                    changed = assessed.changed,
                    rule_errors = assessed.rule_errors.len(),
                    elapsed_ms = u64::try_from(assessed.elapsed_ms).unwrap_or(u64::MAX),
                    "reassessed"
                );
                report.assessed_slot = Some(slot);
                report.assessed_customers = assessed.customers;
                report.skipped_slots = skipped;
                self.state.last_assessment_at = Some(now);
                Ok(())
            }
        }
    }

    /// The pass's renderer, made at its first use with the templates and rules in use.
    fn renderer<'a>(
        &self,
        slot: &'a mut Option<EmailRenderer>,
    ) -> Result<&'a EmailRenderer, DaemonError> {
        match slot {
            Some(renderer) => Ok(renderer),
            None => Ok(slot.insert(EmailRenderer::with_sms(
                &self.workspace,
                load_templates(&self.templates).templates,
                tiercare_engine::load_sms_templates(
                    &self.templates,
                    self.workspace.config().sms.max_segments,
                )
                .templates,
                &self.rules,
            )?)),
        }
    }

    fn record_followups(
        &mut self,
        now: i64,
        report: &mut PassReport,
        renderer: &mut Option<EmailRenderer>,
    ) -> Result<(), DaemonError> {
        let config = self.workspace.config();
        let tz = config.timezone;
        let catch_up = config.daemon.catch_up;
        let Some(last) = self.reader.schedule_cursor(FOLLOWUPS)?.map(|c| c.last_slot) else {
            // The first start: follow-ups are recorded from now on, not for the past.
            self.writer
                .advance_schedule(FOLLOWUPS, "", now, SlotOutcome::Fired, now)?;
            return Ok(());
        };
        if now <= last {
            // Nothing new, or a clock stepped backwards: that range was recorded already.
            return Ok(());
        }
        // Watched: nothing changed since a pass over everyone; only who has come due is read.
        let data_version = self.writer.data_version()?;
        if let Some(watch) = self.followups_idle.as_mut().filter(|idle| {
            idle.version == self.rules.version()
                && idle.data_version == data_version
                && now < idle.until
                && now - last <= catch_up
        }) {
            let due = watch.take_due(now);
            if due.is_empty() {
                return Ok(());
            }
            return self.record_due_customers(now, last, due, report, renderer);
        }
        self.followups_idle = None;
        let from = if now - last > catch_up {
            tracing::warn!(
                down_s = now - last,
                catch_up_s = catch_up,
                "follow-ups due longer ago than daemon.catch_up are not recorded"
            );
            now - catch_up
        } else {
            last
        };
        let templates = self.renderer(renderer)?;
        let mut recorded = record_due_ahead(
            &self.reader,
            &mut self.writer,
            &self.rules,
            PlanOptions {
                from,
                to: now,
                events_since: from - EVENT_LOOKBACK,
                timezone: tz,
            },
            now,
            templates,
            FOLLOWUPS_RECHECK,
        )?;
        self.writer
            .advance_schedule(FOLLOWUPS, "", now, SlotOutcome::Fired, now)?;
        log_recorded(&recorded);
        report.followups_range = Some((from, now));
        report.followups_new = recorded.new;
        report.followups_read = Some(recorded.customers);
        if !changed_features(&recorded) {
            // Never later than the catch-up window allows the cursor to stay behind.
            let until = (now + FOLLOWUPS_RECHECK).min(now + catch_up);
            let mut watch = IdleWatch {
                version: self.rules.version().to_owned(),
                data_version,
                until,
                due: Vec::new(),
            };
            watch.put_back(std::mem::take(&mut recorded.due_customers));
            self.followups_idle = Some(watch);
        }
        Ok(())
    }

    /// A watched tick: plans and records `[last, now)` for the customers whose time has come
    /// only (see [`IdleWatch`]); the cursor stays at `last`.
    fn record_due_customers(
        &mut self,
        now: i64,
        last: i64,
        due: Vec<crate::plan::DueCustomer>,
        report: &mut PassReport,
        renderer: &mut Option<EmailRenderer>,
    ) -> Result<(), DaemonError> {
        let tz = self.workspace.config().timezone;
        let templates = self.renderer(renderer)?;
        let recorded = crate::plan::record_due_for(
            &self.reader,
            &mut self.writer,
            &self.rules,
            PlanOptions {
                from: last,
                to: now,
                events_since: last - EVENT_LOOKBACK,
                timezone: tz,
            },
            now,
            templates,
            FOLLOWUPS_RECHECK,
            &due,
        );
        let mut recorded = match recorded {
            Ok(recorded) => recorded,
            Err(err) => {
                // Read everyone on the next tick: nothing of theirs is lost.
                self.followups_idle = None;
                return Err(err.into());
            }
        };
        log_recorded(&recorded);
        report.followups_range = Some((last, now));
        report.followups_new = recorded.new;
        report.followups_read = Some(recorded.customers);
        if changed_features(&recorded) {
            self.followups_idle = None;
        } else if let Some(watch) = self.followups_idle.as_mut() {
            watch.put_back(std::mem::take(&mut recorded.due_customers));
        }
        Ok(())
    }

    /// Decides the managers' digests due at `now` and queues them in the outbox (the send
    /// below delivers them in the same pass).
    fn send_digests(&mut self, now: i64, report: &mut PassReport) -> Result<(), DaemonError> {
        if self.rules.reminders().digest.is_none() {
            return Ok(());
        }
        let templates = tiercare_engine::digest::load_digest_templates(&self.templates).templates;
        let settings = crate::reminders::DigestSettings::from_config(self.workspace.config());
        let decided = crate::reminders::send_digests(
            &mut self.writer,
            &self.rules,
            &templates,
            &settings,
            now,
        )
        .map_err(|err| DaemonError::Digests(err.to_string()))?;
        report.digests = decided.queued();
        if report.digests > 0 {
            self.followups_idle = None;
        }
        Ok(())
    }

    /// The next time a manager's digest falls due, if the rules have one.
    pub fn next_digest_at(&self) -> Option<i64> {
        crate::reminders::next_digest_at(
            &self.reader,
            &self.rules,
            self.workspace.config().timezone,
            self.clock.now(),
        )
        .unwrap_or_else(|err| {
            tracing::warn!(error = %err, "cannot read the managers for the next digest");
            None
        })
    }

    fn deliver(
        &mut self,
        now: i64,
        report: &mut PassReport,
        renderer: &mut Option<EmailRenderer>,
    ) -> Result<(), DaemonError> {
        // The delivery gate checks each email against the rules and templates in use (the
        // last good pair) as it goes out.
        let renderer = self.renderer(renderer)?;
        let mut gate = DeliveryGate::new(&self.rules, renderer, self.workspace.config().timezone);
        let sent = deliver_due_gated(
            &mut self.writer,
            &mut self.transports,
            now,
            &self.send,
            &self.stop,
            Some(&mut gate),
        )?;
        if sent.claimed > 0 || sent.recovered > 0 {
            tracing::info!(
                sent = sent.sent,
                deferred = sent.deferred,
                failed = sent.failed,
                unknown = sent.unknown,
                suppressed = sent.suppressed + sent.no_consent,
                resent_after_crash = sent.resent_after_crash,
                rate_limited = sent.rate_limited,
                released = sent.released,
                elapsed_ms = u64::try_from(sent.elapsed_ms).unwrap_or(u64::MAX),
                "mail delivered"
            );
        }
        report.sent = sent.sent;
        report.deferred = sent.deferred;
        // SMS next, through the same outbox and gate (their own claims and limits).
        let texted = crate::sms::deliver_sms_due(
            &mut self.writer,
            self.sms.as_mut(),
            now,
            &self.workspace.config().sms,
            &self.send,
            &self.stop,
            Some(&mut gate),
        )?;
        if texted.claimed > 0 || texted.recovered > 0 {
            tracing::info!(
                sent = texted.sent,
                deferred = texted.deferred,
                failed = texted.failed,
                unknown = texted.unknown,
                suppressed = texted.suppressed + texted.no_consent,
                held = texted.held,
                resent_after_crash = texted.resent_after_crash,
                elapsed_ms = u64::try_from(texted.elapsed_ms).unwrap_or(u64::MAX),
                "SMS delivered"
            );
        }
        let worked = sent.claimed + sent.recovered + texted.claimed + texted.recovered > 0;
        // A message sent (or left queued) only moves the time its customer was given the
        // rule's action later, which never makes a follow-up due sooner: the watch's times stay
        // safe, and a watched tick reads the state afresh. Any other outcome (a failure, a
        // suppression, a recovery) may let a rule fire again sooner: read everyone next tick.
        let only_sent = sent.recovered + texted.recovered == 0
            && sent.claimed == sent.sent + sent.deferred
            && texted.claimed == texted.sent + texted.deferred;
        if worked && !only_sent {
            self.followups_idle = None;
        }
        if !worked && self.send_error_read {
            // Nothing went out or came back: the last error is the one already read.
            return Ok(());
        }
        self.send_error_read = true;
        if let Some((at, error)) = self.reader.last_send_error()? {
            self.state.last_send_error = Some(error);
            self.state.last_send_error_at = Some(at);
        }
        Ok(())
    }

    /// Records a clean stop.
    pub fn stopped(&mut self) {
        self.state.stopped_at = Some(self.clock.now());
        self.save_state();
        tracing::info!("daemon stopped");
    }
}

/// Runs the daemon's passes on a simulated clock from `from` to `until`, one pass every `step`
/// seconds, as fast as the work allows: what `tiercare demo --days N` does to show weeks of
/// reassessments, follow-ups and mail in seconds. Holds the daemon lock meanwhile, like
/// [`run`]. The first pass starts the follow-up tick (a first start records nothing for the
/// past), so follow-ups are recorded for `(from, until]`. `on_pass` sees each pass's report.
pub fn simulate(
    workspace: Workspace,
    from: i64,
    until: i64,
    step: i64,
    on_pass: &mut dyn FnMut(&PassReport),
) -> Result<(), DaemonError> {
    let _lock = DaemonLock::acquire(&workspace.database_path())?;
    let clock = crate::clock::TestClock::new(from);
    let mut daemon = Daemon::start(workspace, clock.clone())?;
    loop {
        on_pass(&daemon.pass());
        if clock.now() >= until {
            break;
        }
        // A digest goes at its local time, not at the next step.
        let next = (clock.now() + step.max(1)).min(until);
        let digest = daemon.next_digest_at().unwrap_or(i64::MAX);
        clock.set(next.min(digest));
    }
    daemon.stopped();
    Ok(())
}

/// How `tiercare run` runs.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    /// One pass, then exit (for cron or systemd timers).
    pub once: bool,
}

/// What woke the loop.
#[derive(Debug)]
enum Wake {
    Stop(&'static str),
    /// `SIGHUP`: reload now.
    Hangup,
    /// The watcher saw events that may have changed the folders' content.
    Changed {
        first_seen: Option<Instant>,
        folders_replaced: bool,
    },
}

/// Runs the daemon until `SIGTERM`/`SIGINT` (or one pass with `--once`): takes the database's
/// daemon lock, loads the rules, watches `rules/` and `templates/`, and passes on schedule.
///
/// With `--once`, returns the errors the pass met (each logged and kept for `status`); a
/// long-running daemon retries instead and returns no errors.
pub fn run<C: Clock + 'static>(
    workspace: Workspace,
    clock: C,
    options: RunOptions,
) -> Result<Vec<String>, DaemonError> {
    let _lock = DaemonLock::acquire(&workspace.database_path())?;
    let root = std::fs::canonicalize(workspace.root()).unwrap_or_else(|_| workspace.root().into());
    let folders: Vec<PathBuf> = vec![root.join("rules"), root.join("templates")];
    let settle = Duration::from_millis(workspace.config().daemon.settle_ms);
    // Events are only gathered for a moment; the settle time is waited for by `Settle`.
    let debounce = (settle / 4).clamp(Duration::from_millis(10), Duration::from_millis(250));

    let (tx, rx) = mpsc::channel::<Wake>();
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGHUP,
    ])
    .map_err(|err| DaemonError::Setup {
        what: "signal handling",
        message: err.to_string(),
    })?;
    let signal_handle = signals.handle();

    // Read before the rules are: a change in between is then seen as a change.
    let loaded = Fingerprint::read(&folders);
    let webhooks = crate::webhooks::ready_endpoints(&workspace, &|name| std::env::var(name).ok())?;
    let (database, busy_timeout) = (workspace.database_path(), workspace.config().busy_timeout);
    let mut daemon = Daemon::start(workspace, clock)?;
    let stop = daemon.stop_flag();
    let signal_tx = tx.clone();
    let signal_thread = std::thread::spawn(move || {
        for signal in signals.forever() {
            let wake = match signal {
                signal_hook::consts::SIGHUP => Wake::Hangup,
                signal_hook::consts::SIGINT => {
                    stop.store(true, Ordering::SeqCst);
                    Wake::Stop("SIGINT")
                }
                _ => {
                    stop.store(true, Ordering::SeqCst);
                    Wake::Stop("SIGTERM")
                }
            };
            if signal_tx.send(wake).is_err() {
                break;
            }
        }
    });

    let result = if options.once {
        let report = daemon.pass();
        let stop = daemon.stop_flag();
        let delivered = crate::webhooks::deliver_due(&database, busy_timeout, webhooks, &stop)?;
        tracing::info!(
            errors = report.errors.len(),
            webhook_attempts = delivered,
            "single pass done"
        );
        Ok(report.errors)
    } else {
        let watch_tx = tx.clone();
        let mut settle = Settle::new(folders.clone(), settle, loaded);
        let mut watcher = FolderWatcher::start(&root, folders, debounce, move |change| {
            let wake = match change {
                Change::Files {
                    first_seen,
                    folders_replaced,
                } => Wake::Changed {
                    first_seen: Some(first_seen),
                    folders_replaced,
                },
                Change::Error(message) => {
                    tracing::warn!(error = %message, "folder watcher error; reading the folders again to be safe");
                    Wake::Changed {
                        first_seen: None,
                        folders_replaced: true,
                    }
                }
            };
            let _ = watch_tx.send(wake);
        })
        .map_err(|err| DaemonError::Setup {
            what: "the folder watcher",
            message: err.to_string(),
        })?;
        drop(tx);
        // A change between reading the rules and watching them has no event: look once.
        if Fingerprint::read(settle.folders()) != loaded {
            settle.changed(Instant::now(), None);
        }
        let dispatcher = crate::webhooks::Dispatcher::start(database, busy_timeout, webhooks)?;
        loop_until_stopped(&mut daemon, &rx, &mut watcher, &mut settle);
        if let Some(dispatcher) = dispatcher {
            dispatcher.stop();
        }
        Ok(Vec::new())
    };
    daemon.stopped();
    signal_handle.close();
    let _ = signal_thread.join();
    result
}

/// Passes on schedule and reloads on settled changes until stopped. Watcher events only mark
/// the folders as possibly changed; [`Settle`] reloads once per new content, after the settle
/// time of quiet and two equal readings, so an idle daemon neither reloads nor writes.
fn loop_until_stopped<C: Clock>(
    daemon: &mut Daemon<C>,
    rx: &mpsc::Receiver<Wake>,
    watcher: &mut FolderWatcher,
    settle: &mut Settle,
) {
    daemon.pass();
    loop {
        if daemon.stop.load(Ordering::SeqCst) {
            return;
        }
        let mut wait = daemon.clock.real_until(daemon.next_wake()).min(MAX_WAIT);
        if let Some(due) = settle.due() {
            wait = wait.min(due.saturating_duration_since(Instant::now()));
        }
        match rx.recv_timeout(wait) {
            Ok(first) => {
                // Take every wake queued meanwhile: one decision for all of them.
                let mut hangup = false;
                let mut changed = false;
                let mut first_seen: Option<Instant> = None;
                let mut folders_replaced = false;
                for wake in std::iter::once(first).chain(rx.try_iter()) {
                    match wake {
                        Wake::Stop(signal) => {
                            tracing::info!(signal, "stopping");
                            return;
                        }
                        Wake::Hangup => hangup = true,
                        Wake::Changed {
                            first_seen: seen,
                            folders_replaced: replaced,
                        } => {
                            changed = true;
                            first_seen = match (first_seen, seen) {
                                (Some(a), Some(b)) => Some(a.min(b)),
                                (a, b) => a.or(b),
                            };
                            folders_replaced |= replaced;
                        }
                    }
                }
                if hangup || folders_replaced {
                    watcher.rewatch();
                }
                if hangup {
                    tracing::info!("SIGHUP: reloading rules and templates");
                    settle.forced();
                    daemon.reload(None);
                } else if changed {
                    settle.changed(Instant::now(), first_seen);
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        if let Settled::Reload { first_seen } = settle.poll(Instant::now()) {
            daemon.reload(first_seen);
        }
        if daemon.clock.now() >= daemon.next_wake() {
            daemon.pass();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use tiercare_engine::RecordKind;

    use super::*;
    use crate::clock::TestClock;
    use crate::test_support::import;

    const HOUR: i64 = 3_600;
    const DAY: i64 = 86_400;
    /// 2026-03-01T00:00:00Z.
    const START: i64 = 1_772_323_200;

    fn workspace(dir: &Path) -> Workspace {
        let (workspace, _) = Workspace::init(&dir.join("ws"), chrono_tz::UTC).unwrap();
        let mut store = workspace.open_store().unwrap();
        import(
            &workspace,
            &mut store,
            RecordKind::Customers,
            "customer_id,name,email,consent_email\nC1,Big,big@example.com,true\nC2,Small,small@example.com,true\n",
        );
        import(
            &workspace,
            &mut store,
            RecordKind::Orders,
            "order_id,customer_id,ordered_at,amount\nO1,C1,2026-01-10,9000\nO2,C2,2026-01-11,10\n",
        );
        drop(store);
        workspace
    }

    /// Passes every `step` seconds from the clock's time for `span` seconds; the slots that fired.
    fn run_for(
        daemon: &mut Daemon<TestClock>,
        clock: &TestClock,
        span: i64,
        step: i64,
    ) -> Vec<i64> {
        let end = clock.now() + span;
        let mut fired = Vec::new();
        while clock.now() < end {
            clock.advance(step);
            let report = daemon.pass();
            assert!(report.errors.is_empty(), "{:?}", report.errors);
            fired.extend(report.assessed_slot);
        }
        fired
    }

    #[test]
    fn days_of_schedule_fire_once_each_and_never_again_after_a_step_back_or_a_restart() {
        let tmp = tempfile::tempdir().unwrap();
        let ws = workspace(tmp.path());
        let clock = TestClock::new(START);
        let mut daemon = Daemon::start(ws.clone(), clock.clone()).unwrap();
        // The default rules reassess at 02:30 every day.
        let fired = run_for(&mut daemon, &clock, 3 * DAY, 10 * 60);
        assert_eq!(
            fired,
            [
                START + 2 * HOUR + 1_800,
                START + DAY + 2 * HOUR + 1_800,
                START + 2 * DAY + 2 * HOUR + 1_800
            ]
        );
        assert!(daemon.state().last_assessment_at.is_some());
        assert_eq!(
            daemon.state().next_assessment_at,
            Some(START + 3 * DAY + 2 * HOUR + 1_800)
        );

        // The clock is stepped back two days: nothing fires and no follow-up is recorded again.
        clock.advance(-2 * DAY);
        let report = daemon.pass();
        assert_eq!(report.assessed_slot, None);
        assert_eq!(report.followups_range, None);
        assert_eq!(run_for(&mut daemon, &clock, DAY, HOUR), Vec::<i64>::new());
        daemon.stopped();
        drop(daemon);

        // Down from day 3 until 03:30 on day 6: the 02:30 slot is an hour late (within the
        // default 6 hours) and is made up once; the two earlier missed nights are not.
        clock.set(START + 5 * DAY + 3 * HOUR + 1_800);
        let mut daemon = Daemon::start(ws.clone(), clock.clone()).unwrap();
        let report = daemon.pass();
        assert_eq!(
            report.assessed_slot,
            Some(START + 5 * DAY + 2 * HOUR + 1_800)
        );
        assert_eq!(report.skipped_slots, 2);
        assert_eq!(daemon.pass().assessed_slot, None);
        drop(daemon);

        // Down until noon on day 8: the 02:30 slot is 9.5 hours late: skipped and counted.
        clock.set(START + 7 * DAY + 12 * HOUR);
        let mut daemon = Daemon::start(ws.clone(), clock.clone()).unwrap();
        let report = daemon.pass();
        assert_eq!(report.assessed_slot, None);
        assert_eq!(report.skipped_slots, 2);
        let cursor = daemon.reader.schedule_cursor(REASSESS).unwrap().unwrap();
        assert_eq!(cursor.skipped, 2);
        assert_eq!(
            cursor.last_fired_at,
            Some(START + 5 * DAY + 2 * HOUR + 1_800)
        );
    }

    #[test]
    fn follow_up_ticks_cover_each_range_once() {
        let tmp = tempfile::tempdir().unwrap();
        let ws = workspace(tmp.path());
        let clock = TestClock::new(START);
        let mut daemon = Daemon::start(ws, clock.clone()).unwrap();
        // The first pass starts the tick cursor; later ones record from the previous tick.
        assert_eq!(daemon.pass().followups_range, None);
        clock.advance(HOUR);
        assert_eq!(daemon.pass().followups_range, Some((START, START + HOUR)));
        clock.advance(HOUR);
        assert_eq!(
            daemon.pass().followups_range,
            Some((START + HOUR, START + 2 * HOUR))
        );
        // A pass at the same time again has nothing to record.
        assert_eq!(daemon.pass().followups_range, None);
        // Ten days later the range is clipped to the catch-up window (7 days by default).
        clock.advance(10 * DAY);
        assert_eq!(
            daemon.pass().followups_range,
            Some((clock.now() - 7 * DAY, clock.now()))
        );
    }

    #[test]
    fn a_broken_save_keeps_the_last_good_rules_and_fixing_it_reloads() {
        let tmp = tempfile::tempdir().unwrap();
        let ws = workspace(tmp.path());
        let clock = TestClock::new(START);
        let mut daemon = Daemon::start(ws.clone(), clock.clone()).unwrap();
        let good = daemon.rules().version().to_owned();
        let path = ws.rules_dir().join("tiers.yaml");
        let text = std::fs::read_to_string(&path).unwrap();

        std::fs::write(&path, text.replace("window: 365d", "window: often")).unwrap();
        let ReloadOutcome::Failed { errors } = daemon.reload(None) else {
            panic!("a broken rule file was accepted");
        };
        assert!(errors.starts_with("rules/tiers.yaml:13:"), "{errors}");
        assert_eq!(daemon.rules().version(), good);
        let stored = daemon.reader.daemon_state().unwrap().unwrap();
        assert_eq!(stored.last_reload_error.as_deref(), Some(errors.as_str()));
        assert_eq!(stored.ruleset_version.as_deref(), Some(good.as_str()));

        // The folder removed: still the old rules.
        std::fs::rename(ws.rules_dir(), tmp.path().join("aside")).unwrap();
        assert!(matches!(daemon.reload(None), ReloadOutcome::Failed { .. }));
        std::fs::rename(tmp.path().join("aside"), ws.rules_dir()).unwrap();

        std::fs::write(&path, text.replace("window: 365d", "window: 180d")).unwrap();
        let ReloadOutcome::Swapped { version } = daemon.reload(Some(Instant::now())) else {
            panic!("the fixed file was not loaded");
        };
        assert_ne!(version, good);
        assert_eq!(daemon.rules().version(), version);
        let stored = daemon.reader.daemon_state().unwrap().unwrap();
        assert_eq!(stored.last_reload_error, None);
        assert_eq!(stored.reloads, 2);
        assert!(stored.last_reload_ms.is_some());
        assert_eq!(daemon.reload(None), ReloadOutcome::Unchanged);
    }

    #[test]
    fn a_broken_template_keeps_the_last_good_templates_and_fixing_it_reloads() {
        let tmp = tempfile::tempdir().unwrap();
        let ws = workspace(tmp.path());
        let clock = TestClock::new(START);
        let mut daemon = Daemon::start(ws.clone(), clock.clone()).unwrap();
        let good = daemon.templates.clone();
        assert!(!good.is_empty(), "init ships the default templates");
        let path = ws.templates_dir().join("care.eml.j2");
        let text = std::fs::read_to_string(&path).unwrap();

        // A misspelt variable: refused, the previous templates stay, `status` shows where.
        std::fs::write(&path, format!("{text}\n{{{{ customer.nmae }}}}\n")).unwrap();
        let ReloadOutcome::Failed { errors } = daemon.reload(None) else {
            panic!("a broken template was accepted");
        };
        assert!(errors.starts_with("templates/care.eml.j2:"), "{errors}");
        assert_eq!(daemon.templates, good);
        let stored = daemon.reader.daemon_state().unwrap().unwrap();
        assert_eq!(stored.last_reload_error.as_deref(), Some(errors.as_str()));

        // A template the rules name, deleted (an editor's rename half done): refused too.
        std::fs::remove_file(&path).unwrap();
        let ReloadOutcome::Failed { errors } = daemon.reload(None) else {
            panic!("rules naming a missing template were accepted");
        };
        assert!(errors.contains("care"), "{errors}");
        assert_eq!(daemon.templates, good);

        // Fixed: the new templates are swapped in with the same rules.
        std::fs::write(&path, format!("{text}\n")).unwrap();
        let version = daemon.rules().version().to_owned();
        assert_eq!(
            daemon.reload(None),
            ReloadOutcome::Swapped {
                version: version.clone()
            }
        );
        assert_ne!(daemon.templates, good);
        assert_eq!(daemon.rules().version(), version);
        let stored = daemon.reader.daemon_state().unwrap().unwrap();
        assert_eq!(stored.last_reload_error, None);
    }

    #[test]
    fn a_broken_sms_template_keeps_the_last_good_set_and_a_good_edit_is_swapped_in() {
        let tmp = tempfile::tempdir().unwrap();
        let ws = workspace(tmp.path());
        let clock = TestClock::new(START);
        let mut daemon = Daemon::start(ws.clone(), clock.clone()).unwrap();
        let path = ws.templates_dir().join("birthday.sms.j2");
        let render = |daemon: &Daemon<TestClock>| {
            let mut slot = None;
            daemon
                .renderer(&mut slot)
                .unwrap()
                .render_sms("birthday", "C1", START)
                .unwrap()
        };
        let good = render(&daemon);
        assert!(good.contains("happy birthday"), "{good}");

        // A misspelt variable: refused, the SMS the daemon renders is still the last good one,
        // and `status` shows where.
        std::fs::write(&path, "Hi {{ customer.nmae }}!\n").unwrap();
        let ReloadOutcome::Failed { errors } = daemon.reload(None) else {
            panic!("a broken SMS template was accepted");
        };
        assert!(
            errors.starts_with("templates/birthday.sms.j2:1:"),
            "{errors}"
        );
        assert_eq!(render(&daemon), good);
        let stored = daemon.reader.daemon_state().unwrap().unwrap();
        assert_eq!(stored.last_reload_error.as_deref(), Some(errors.as_str()));

        // Half saved (a tag cut off), then deleted while the rules name it: refused too.
        std::fs::write(&path, "Hi {{ customer.").unwrap();
        let ReloadOutcome::Failed { errors } = daemon.reload(None) else {
            panic!("a half-saved SMS template was accepted");
        };
        assert!(errors.starts_with("templates/birthday.sms.j2:"), "{errors}");
        std::fs::remove_file(&path).unwrap();
        let ReloadOutcome::Failed { errors } = daemon.reload(None) else {
            panic!("rules naming a missing SMS template were accepted");
        };
        assert!(errors.contains("birthday"), "{errors}");
        assert_eq!(render(&daemon), good);

        // A good edit is swapped in with the rules, and rendered from then on.
        std::fs::write(&path, "Happy birthday, {{ customer.name }}!\n").unwrap();
        let version = daemon.rules().version().to_owned();
        assert_eq!(daemon.reload(None), ReloadOutcome::Swapped { version });
        assert_eq!(render(&daemon), "Happy birthday, Big!");
        let stored = daemon.reader.daemon_state().unwrap().unwrap();
        assert_eq!(stored.last_reload_error, None);
        assert_eq!(daemon.reload(None), ReloadOutcome::Unchanged);
    }

    #[test]
    fn a_reassessment_with_too_many_rule_failures_is_not_recorded_and_status_says_why() {
        let tmp = tempfile::tempdir().unwrap();
        let ws = workspace(tmp.path());
        // Fine for the customer without data the rules are loaded with, failing for both real
        // customers (their orders make the recursion deeper than 16 calls).
        std::fs::write(
            ws.rules_dir().join("deep.rhai"),
            "fn depth(n) { if n <= 0 { 0 } else { 1 + depth(n - 1) } }\n",
        )
        .unwrap();
        let tiers = ws.rules_dir().join("tiers.yaml");
        let condition = "revenue_window > 0 && revenue_share_before < 0.80";
        let text = std::fs::read_to_string(&tiers).unwrap().replace(
            condition,
            &format!("depth(orders_total * 20) >= 0 && {condition}"),
        );
        std::fs::write(&tiers, text).unwrap();
        let clock = TestClock::new(START);
        let mut daemon = Daemon::start(ws.clone(), clock.clone()).unwrap();
        clock.advance(3 * HOUR);
        let report = daemon.pass();
        assert_eq!(report.assessed_slot, Some(START + 2 * HOUR + 1_800));
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        assert_eq!(
            daemon.reader.tier_counts().unwrap(),
            Vec::new(),
            "nothing recorded"
        );
        let shown = |daemon: &Daemon<TestClock>| {
            let problem = daemon.state().last_tick_error.clone().unwrap_or_default();
            problem.contains("reassessment not recorded: the assessment was not recorded")
                && problem.contains("tiers[0] (A) at rules/tiers.yaml:22:")
        };
        assert!(shown(&daemon), "{:?}", daemon.state().last_tick_error);
        // The slot is handled: the next ticks do not assess again, and status still says why.
        clock.advance(10 * 60);
        let report = daemon.pass();
        assert_eq!(report.assessed_slot, None);
        assert!(shown(&daemon), "{:?}", daemon.state().last_tick_error);
    }

    #[test]
    fn the_pool_is_passed_only_when_something_may_be_due() {
        let tmp = tempfile::tempdir().unwrap();
        let ws = workspace(tmp.path());
        let mut store = ws.open_store().unwrap();
        import(
            &ws,
            &mut store,
            RecordKind::Managers,
            "manager_id,name,role\ns1,Senior,senior\n",
        );
        import(
            &ws,
            &mut store,
            RecordKind::Customers,
            "customer_id,name,owner\nC1,Big,s1\n",
        );
        drop(store);
        // After the night's reassessment, so C1 has its tier (A) when the pool first looks.
        let clock = TestClock::new(START + 3 * HOUR);
        let mut daemon = Daemon::start(ws, clock.clone()).unwrap();
        let first = daemon.pass();
        assert!(first.errors.is_empty(), "{:?}", first.errors);
        assert_eq!(
            first.pool_read,
            Some(1),
            "the first pass reads the owned customers"
        );
        // Ticks with nothing due read nothing, until a day has passed.
        for _ in 0..6 {
            clock.advance(10 * 60);
            let report = daemon.pass();
            assert_eq!(report.assessed_slot, None);
            assert_eq!(report.pool_read, None, "an idle tick reads no customers");
        }
        clock.advance(DAY);
        let report = daemon.pass();
        assert_eq!(report.pool_read, Some(1), "at least once a day");
    }

    #[test]
    fn an_idle_tick_reads_no_customer_until_something_changes_or_an_hour_passes() {
        let tmp = tempfile::tempdir().unwrap();
        let ws = workspace(tmp.path());
        // After the night's reassessment, so the tiers and their events are there.
        let clock = TestClock::new(START + 3 * HOUR);
        let mut daemon = Daemon::start(ws.clone(), clock.clone()).unwrap();
        let mut reads = Vec::new();
        for _ in 0..4 {
            let report = daemon.pass();
            assert!(report.errors.is_empty(), "{:?}", report.errors);
            reads.push(report.followups_read);
            clock.advance(60);
        }
        // The first pass starts the cursor, the second reads both customers and finds nothing
        // due within the hour: the next ticks read nothing and leave the cursor where it is.
        assert_eq!(reads, [None, Some(2), None, None]);
        let cursor = |daemon: &Daemon<TestClock>| {
            daemon
                .reader
                .schedule_cursor(FOLLOWUPS)
                .unwrap()
                .unwrap()
                .last_slot
        };
        let idle_since = cursor(&daemon);
        assert_eq!(idle_since, START + 3 * HOUR + 60);

        // Another process writes (an order): the next tick reads again, over the whole range.
        let mut store = ws.open_store().unwrap();
        import(
            &ws,
            &mut store,
            RecordKind::Orders,
            "order_id,customer_id,ordered_at,amount\nO3,C2,2026-02-01,25\n",
        );
        drop(store);
        let report = daemon.pass();
        let changed_at = clock.now();
        assert_eq!(report.followups_read, Some(2), "a change is seen");
        assert_eq!(report.followups_range, Some((idle_since, clock.now())));
        clock.advance(60);
        assert_eq!(daemon.pass().followups_read, None);

        // Time alone: read again within the hour the pass looked ahead.
        let mut read_at = None;
        for _ in 0..70 {
            clock.advance(60);
            if daemon.pass().followups_read.is_some() {
                read_at = Some(clock.now());
                break;
            }
        }
        let read_at = read_at.expect("no pass for over an hour");
        assert!(
            read_at <= changed_at + FOLLOWUPS_RECHECK,
            "{read_at} {changed_at}"
        );
    }

    /// 2026-03-02 (a Monday), 00:00 UTC.
    const MONDAY: i64 = START + DAY;

    /// Three customers, C1's birthday on [`MONDAY`], and two follow-ups: a birthday e-mail and
    /// an e-mail when a complaint is opened.
    fn birthday_workspace(dir: &Path) -> Workspace {
        let (workspace, _) = Workspace::init(&dir.join("ws"), chrono_tz::UTC).unwrap();
        let mut store = workspace.open_store().unwrap();
        import(
            &workspace,
            &mut store,
            RecordKind::Customers,
            "customer_id,name,email,consent_email,birthday\n\
             C1,Big,big@example.com,true,1990-03-02\n\
             C2,Small,small@example.com,true,1990-07-01\n\
             C3,Other,other@example.com,true,1990-09-09\n",
        );
        import(
            &workspace,
            &mut store,
            RecordKind::Orders,
            "order_id,customer_id,ordered_at,amount\n\
             O1,C1,2026-01-10,9000\nO2,C2,2026-01-11,10\nO3,C3,2026-01-12,20\n",
        );
        drop(store);
        std::fs::write(
            workspace.rules_dir().join("followups.yaml"),
            "contact_policy:\n  caps: { day: 1 }\n\
             followups:\n\
             \x20 - id: birthday\n    on: birthday\n    email: { template: birthday }\n\
             \x20 - id: sorry\n    on: complaint\n    email: { template: care }\n",
        )
        .unwrap();
        workspace
    }

    /// The follow-ups of `customer` by `rule` in the ledger.
    fn recorded(daemon: &Daemon<TestClock>, customer: &str, rule: &str) -> usize {
        let followups = daemon.reader.followups_of(customer).unwrap();
        followups.iter().filter(|f| f.rule_id == rule).count()
    }

    #[test]
    fn a_tick_plans_only_the_customers_whose_time_has_come_and_sends_each_once() {
        let tmp = tempfile::tempdir().unwrap();
        let ws = birthday_workspace(tmp.path());
        let clock = TestClock::new(MONDAY + 8 * HOUR + 1_800);
        let mut daemon = Daemon::start(ws, clock.clone()).unwrap();
        // (minutes after 08:30, customers read, new follow-ups), every 10 minutes to 10:30.
        let mut ticks = Vec::new();
        let mut sent = 0;
        for _ in 0..=12 {
            let report = daemon.pass();
            assert!(report.errors.is_empty(), "{:?}", report.errors);
            let minutes = (clock.now() - (MONDAY + 8 * HOUR + 1_800)) / 60;
            ticks.push((minutes, report.followups_read, report.followups_new));
            sent += report.sent;
            clock.advance(600);
        }
        assert_eq!(
            ticks,
            [
                (0, None, 0),     // 08:30 starts the cursor
                (10, Some(3), 0), // 08:40 reads everyone: C1 falls due at 09:00
                (20, None, 0),    // nobody's time has come
                (30, None, 0),    // 09:00: the range ends before C1's birthday
                (40, Some(1), 1), // 09:10: C1 alone, the greeting recorded
                (50, Some(1), 0), // C1 once more, with the greeting in the ledger
                (60, None, 0),
                (70, Some(3), 0), // 09:40: an hour after the last read of everyone
                (80, None, 0),
                (90, None, 0),
                (100, None, 0),
                (110, None, 0),
                (120, None, 0),
            ]
        );
        assert_eq!(recorded(&daemon, "C1", "birthday"), 1);
        assert_eq!(sent, 1, "the greeting was sent once");
    }

    #[test]
    fn an_import_that_makes_a_customer_due_is_recorded_on_the_next_tick() {
        let tmp = tempfile::tempdir().unwrap();
        let ws = birthday_workspace(tmp.path());
        let clock = TestClock::new(MONDAY + 10 * HOUR);
        let mut daemon = Daemon::start(ws.clone(), clock.clone()).unwrap();
        for _ in 0..3 {
            let report = daemon.pass();
            assert!(report.errors.is_empty(), "{:?}", report.errors);
            clock.advance(600);
        }
        // 10:30: watched, nobody due (C1's birthday was before the cursor started).
        assert_eq!(daemon.pass().followups_read, None);
        // Another process imports a complaint C2 opened at 10:35.
        let mut store = ws.open_store().unwrap();
        import(
            &ws,
            &mut store,
            RecordKind::Complaints,
            "complaint_id,customer_id,opened_at,resolved_at,severity,subject\n\
             K1,C2,2026-03-02T10:35:00Z,,2,late delivery\n",
        );
        drop(store);
        clock.advance(600);
        let report = daemon.pass();
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        assert_eq!(report.followups_read, Some(3), "the change is seen at once");
        assert_eq!(report.followups_new, 1);
        assert_eq!(report.sent, 1);
        let mut later = Vec::new();
        for _ in 0..4 {
            clock.advance(600);
            let report = daemon.pass();
            later.push((report.followups_read, report.followups_new, report.sent));
        }
        assert_eq!(
            later,
            [(Some(1), 0, 0), (None, 0, 0), (None, 0, 0), (None, 0, 0)],
            "C2 once more, then nobody"
        );
        assert_eq!(recorded(&daemon, "C2", "sorry"), 1);
    }

    #[test]
    fn a_recorded_occurrence_planned_again_at_the_range_start_keeps_nobody_due() {
        let tmp = tempfile::tempdir().unwrap();
        let ws = birthday_workspace(tmp.path());
        // A task (not a contact, so no cap or gap moves it) for a complaint: every plan whose
        // events reach back to it plans its occurrence again, at the range's start.
        std::fs::write(
            ws.rules_dir().join("followups.yaml"),
            "followups:\n\
             \x20 - id: call\n    on: complaint\n    \
             task: { assignee: owner, title: \"Call back\", due: 1d }\n",
        )
        .unwrap();
        let clock = TestClock::new(MONDAY + 10 * HOUR);
        let mut daemon = Daemon::start(ws.clone(), clock.clone()).unwrap();
        let mut store = ws.open_store().unwrap();
        import(
            &ws,
            &mut store,
            RecordKind::Complaints,
            "complaint_id,customer_id,opened_at,resolved_at,severity,subject\n\
             K1,C2,2026-03-02T10:05:00Z,,2,late delivery\n",
        );
        drop(store);
        // (customers read, new follow-ups) every 10 minutes from 10:00 to 11:00.
        let mut ticks = Vec::new();
        for _ in 0..=6 {
            let report = daemon.pass();
            assert!(report.errors.is_empty(), "{:?}", report.errors);
            ticks.push((report.followups_read, report.followups_new));
            clock.advance(600);
        }
        assert_eq!(
            ticks,
            [
                (None, 0),    // 10:00 starts the cursor
                (Some(3), 1), // 10:10 reads everyone: the call recorded
                (Some(1), 0), // C2 once more, with the call in the ledger
                (None, 0),    // and then nobody: replanning the call records nothing new
                (None, 0),
                (None, 0),
                (None, 0),
            ]
        );
        assert_eq!(recorded(&daemon, "C2", "call"), 1);
    }

    #[test]
    fn a_simulated_week_records_each_day_once_and_again_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let ws = workspace(tmp.path());
        let mut ranges = Vec::new();
        simulate(ws.clone(), START, START + 7 * DAY, DAY / 4, &mut |pass| {
            ranges.push(pass.followups_range)
        })
        .unwrap();
        // One pass to start, then 28 quarter days, each range following the last.
        assert_eq!(ranges.len(), 29);
        assert_eq!(ranges[0], None);
        let covered: Vec<(i64, i64)> = ranges.iter().flatten().copied().collect();
        assert_eq!(covered.first().unwrap().0, START);
        assert_eq!(covered.last().unwrap().1, START + 7 * DAY);
        assert!(covered.windows(2).all(|pair| pair[0].1 == pair[1].0));
        // The same week again finds every range recorded already.
        let mut again = Vec::new();
        simulate(ws, START, START + 7 * DAY, DAY / 4, &mut |pass| {
            again.push(pass.followups_range)
        })
        .unwrap();
        assert!(again.iter().all(Option::is_none), "{again:?}");
    }
}
