//! `tiercare status`: what the daemon of a workspace is doing, read from another process.
//!
//! Whether a daemon runs comes from its lock (see [`crate::lock`]): the kernel frees it when
//! the process ends, so a crashed daemon is never reported as running. Everything else comes
//! from the database: the state the daemon records (`daemon_state`), where its schedules stand
//! (`schedule_firings`), the outbox (queue depth by state) and the webhooks' queues.

use std::collections::BTreeMap;

use serde::Serialize;
use tiercare_store::{DaemonState, ScheduleCursor, WebhookEndpointSummary};

use crate::daemon::{DaemonError, FOLLOWUPS, REASSESS};
use crate::lock::holder;
use crate::workspace::Workspace;

/// The daemon's status.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// A daemon holds the database's lock now.
    pub running: bool,
    /// Its pid, when running and known.
    pub pid: Option<u32>,
    /// The lock file.
    pub lock_file: String,
    /// The state the last (or running) daemon recorded; `None` if none ever ran.
    pub daemon: Option<DaemonState>,
    /// Every problem of the last failed reload, one `path:line:col: message` each (the lines
    /// of `daemon.last_reload_error`); empty once a reload succeeds.
    pub reload_problems: Vec<String>,
    /// The reassessment schedule's cursor.
    pub reassess: Option<ScheduleCursor>,
    /// When the latest stored assessment finished (unix seconds), whoever made it (this
    /// daemon, an earlier one, or `tiercare assess`), and the time it was as of.
    pub latest_assessment: Option<LatestAssessment>,
    /// The follow-up tick's cursor.
    pub followups: Option<ScheduleCursor>,
    /// E-mails in the outbox by state (every state, zeros included); SMS are not among them.
    pub outbox: BTreeMap<String, u64>,
    /// SMS in the outbox by state (every state, zeros included).
    pub sms: BTreeMap<String, u64>,
    /// E-mails resent after a crash (each possibly a duplicate).
    pub outbox_recovered: u64,
    /// Each webhook endpoint's queue: queued, delivered, dead, and the failing head.
    pub webhooks: Vec<WebhookEndpointSummary>,
    /// Sending's health: the reputation guard's figures and verdict, paused domains.
    pub sending: Sending,
    /// Bounces and complaints recorded (all time), and the addresses they suppressed.
    pub bounces: tiercare_store::BounceCounts,
}

/// Whether mail can go out, and the figures behind it (`tiercare status`).
#[derive(Debug, Clone, Serialize)]
pub struct Sending {
    /// Why the reputation guard paused all sending (with the figures and how it resumes).
    pub paused: Option<String>,
    /// The guard's window: sends, hard bounces and complaints.
    pub figures: crate::mail::reputation::Figures,
    /// The same window per day and follow-up rule (the care programmes).
    pub by_day_and_rule: Vec<tiercare_store::ReputationRow>,
    /// Receiving domains paused now after a "slow down" answer, each described.
    pub domains_paused: Vec<String>,
}

/// Reads sending's health at `now`.
pub fn sending(
    store: &tiercare_store::Store,
    mail: &crate::config::MailConfig,
    now: i64,
) -> Result<Sending, tiercare_store::StoreError> {
    let guard = crate::mail::reputation::guard(store, &mail.reputation, now)?;
    Ok(Sending {
        by_day_and_rule: store.mail_reputation(guard.figures.since, now + 1)?,
        paused: guard.paused,
        figures: guard.figures,
        domains_paused: store
            .domain_pauses()?
            .iter()
            .filter(|pause| pause.paused_until > now)
            .map(crate::mail::pacing::describe)
            .collect(),
    })
}

/// The latest stored assessment, as `status` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LatestAssessment {
    /// When it finished (unix seconds).
    pub finished_at: i64,
    /// The time it assessed the customers as of (unix seconds).
    pub at: i64,
}

/// Reads the status of the workspace's daemon.
pub fn status(workspace: &Workspace) -> Result<Status, DaemonError> {
    let database = workspace.database_path();
    let held = holder(&database)?;
    let store = workspace.open_store()?;
    let (_, recovered) = store.outbox_counts()?;
    let by_state = |counts: Vec<(tiercare_store::OutboxState, u64)>| -> BTreeMap<String, u64> {
        counts
            .into_iter()
            .map(|(state, count)| (state.as_str().to_owned(), count))
            .collect()
    };
    let counts = by_state(store.channel_counts(tiercare_store::Channel::Email)?);
    let sms = by_state(store.channel_counts(tiercare_store::Channel::Sms)?);
    let daemon = store.daemon_state()?;
    let reload_problems = daemon
        .as_ref()
        .and_then(|state| state.last_reload_error.as_deref())
        .map(|errors| errors.lines().map(str::to_owned).collect())
        .unwrap_or_default();
    Ok(Status {
        outbox: counts,
        sms,
        outbox_recovered: recovered,
        bounces: store.bounce_counts(i64::MIN)?,
        webhooks: store.webhook_summary()?,
        running: held.is_some(),
        pid: held.flatten(),
        lock_file: crate::lock::lock_path(&database).display().to_string(),
        daemon,
        reload_problems,
        reassess: store.schedule_cursor(REASSESS)?,
        latest_assessment: store.last_assessment()?.map(|row| LatestAssessment {
            finished_at: row.finished_at,
            at: row.at,
        }),
        followups: store.schedule_cursor(FOLLOWUPS)?,
        sending: sending(
            &store,
            &workspace.config().mail,
            chrono::Utc::now().timestamp(),
        )?,
    })
}
