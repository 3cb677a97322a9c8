//! `tiercare status`: what the daemon of a workspace is doing, read from another process.
//!
//! Whether a daemon runs comes from its lock (see [`crate::lock`]): the kernel frees it when
//! the process ends, so a crashed daemon is never reported as running. Everything else comes
//! from the database: the state the daemon records (`daemon_state`), where its schedules stand
//! (`schedule_firings`) and the outbox (queue depth by state).

use std::collections::BTreeMap;

use serde::Serialize;
use tiercare_store::{DaemonState, ScheduleCursor};

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
    /// E-mails in the outbox by state (every state, zeros included).
    pub outbox: BTreeMap<String, u64>,
    /// E-mails resent after a crash (each possibly a duplicate).
    pub outbox_recovered: u64,
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
    let (counts, recovered) = store.outbox_counts()?;
    let daemon = store.daemon_state()?;
    let reload_problems = daemon
        .as_ref()
        .and_then(|state| state.last_reload_error.as_deref())
        .map(|errors| errors.lines().map(str::to_owned).collect())
        .unwrap_or_default();
    Ok(Status {
        outbox: counts
            .into_iter()
            .map(|(state, count)| (state.as_str().to_owned(), count))
            .collect(),
        outbox_recovered: recovered,
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
    })
}
