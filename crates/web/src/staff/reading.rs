//! What the plan and rules pages read besides the shared connection: the workspace's rule
//! files, compiled, and a read-only connection of their own (a plan or a preview reads every
//! customer; on the shared connection it would hold up every other request), on the blocking
//! pool.

use std::path::Path;
use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::Response;
use tiercare_scheduler::assess::{AssessError, RuleSource};
use tiercare_scheduler::daemon::one_line_each;
use tiercare_scheduler::workspace::Workspace;
use tiercare_store::Store;

use crate::AppState;
use crate::staff::{Nav, Staff, frame};

/// The workspace's rule files and what they compile to.
pub struct Rules {
    /// The files as read (`rules/…`).
    pub source: RuleSource,
    /// The compiled rules, or every problem as `path:line:col: message`.
    pub compiled: Result<tiercare_engine::RuleSet, Vec<String>>,
}

/// Reads and compiles the workspace's rules (as every workspace command does: files named
/// `rules/…`).
pub fn read_rules(workspace: &Workspace) -> Result<Rules, AssessError> {
    let source = RuleSource::read(&workspace.rules_dir(), Path::new("rules"))?;
    let compiled = match source.load() {
        Ok(loaded) => Ok(loaded.rules),
        Err(AssessError::Rules { diagnostics }) => Err(one_line_each(&diagnostics)
            .lines()
            .map(str::to_owned)
            .collect()),
        Err(err) => return Err(err),
    };
    Ok(Rules { source, compiled })
}

/// Runs `work` with the workspace, a read-only connection of its own and the time, on the
/// blocking pool. Without a workspace (a server started without one), or when it fails, the
/// answer is an error page (the failure logged).
pub async fn with_reader<T: Send + 'static>(
    state: &Arc<AppState>,
    staff: &Staff,
    nav: Nav,
    work: impl FnOnce(&Workspace, &Store, i64) -> Result<T, AssessError> + Send + 'static,
) -> Result<T, Response> {
    let Some(workspace) = state.workspace().cloned() else {
        tracing::error!("the staff pages need the workspace; the server was started without it");
        return Err(crate::staff::auth::server_error(staff.lang));
    };
    let now = state.now();
    let done = tokio::task::spawn_blocking(move || {
        let store = workspace.open_store().map_err(|err| err.to_string())?;
        work(&workspace, &store, now).map_err(|err| err.to_string())
    })
    .await;
    match done {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(err)) => {
            tracing::error!(error = %err, "a staff page could not read the workspace");
            Err(frame::page_with_status(
                staff,
                StatusCode::INTERNAL_SERVER_ERROR,
                nav,
                staff.t("Something went wrong", "出错了"),
                &frame::paragraph(&err),
            ))
        }
        Err(err) => {
            tracing::error!(error = %err, "a staff page failed");
            Err(crate::staff::auth::server_error(staff.lang))
        }
    }
}
