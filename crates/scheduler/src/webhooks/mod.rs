//! Outgoing webhooks: signed HTTP POSTs to other systems when a customer's tier changes, an
//! e-mail is sent or fails, a task is created or done (and, through their hooks, bounces and
//! unsubscribes).
//!
//! The store queues each event in the transaction of what it reports (one delivery per
//! subscribed endpoint; see `tiercare_store`'s `webhooks` module). Here: the Standard Webhooks
//! signature ([`signature`]) and the daemon's
//! dispatcher thread ([`dispatcher`]), a blocking HTTP client (`ureq`, rustls) with no async
//! runtime.

pub mod dispatcher;
pub mod signature;

pub use crate::config::webhooks::WebhookEndpoint;
pub use dispatcher::{Dispatcher, ReadyEndpoint, deliver_round};
pub use signature::WebhookSecret;

use tiercare_store::StoreError;

use crate::workspace::Workspace;

/// Why webhooks could not be set up or delivered.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// An endpoint's signing secret is missing or malformed.
    #[error(
        "webhook {endpoint:?}: the environment variable {variable} {problem}: set it to the endpoint's signing secret, `whsec_` followed by base64 (for example `whsec_$(head -c 32 /dev/urandom | base64)`)"
    )]
    Secret {
        /// The endpoint's name.
        endpoint: String,
        /// The variable its `secret_env` names.
        variable: String,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The dispatcher thread could not be started.
    #[error("cannot start the webhook dispatcher: {0}")]
    Thread(String),
    /// No endpoint has that name.
    #[error("no [[webhooks]] endpoint is named {0:?} in tiercare.toml")]
    UnknownEndpoint(String),
}

/// Prepares every configured endpoint of `workspace`, reading their secrets through `env`.
pub fn ready_endpoints(
    workspace: &Workspace,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<ReadyEndpoint>, WebhookError> {
    workspace
        .config()
        .webhooks
        .iter()
        .map(|endpoint| ReadyEndpoint::new(endpoint, env))
        .collect()
}

/// Delivers what is due now to `endpoints` (each endpoint's queue until it is empty or its
/// head waits for a retry), through a connection of its own: `tiercare run --once`'s share.
/// Stops after the request under way once `stop` is raised (SIGTERM). Returns the attempts
/// made.
pub fn deliver_due(
    database: &std::path::Path,
    busy_timeout: std::time::Duration,
    endpoints: Vec<ReadyEndpoint>,
    stop: &std::sync::atomic::AtomicBool,
) -> Result<usize, WebhookError> {
    if endpoints.is_empty() {
        return Ok(0);
    }
    let mut store = tiercare_store::Store::open(database)?;
    store.set_busy_timeout(busy_timeout)?;
    let endpoints = endpoints
        .into_iter()
        .map(|endpoint| (endpoint.name().to_owned(), endpoint))
        .collect();
    let mut total = 0;
    loop {
        if stop.load(std::sync::atomic::Ordering::SeqCst) {
            return Ok(total);
        }
        let (attempts, _) = deliver_round(&mut store, &endpoints)?;
        if attempts == 0 {
            return Ok(total);
        }
        total += attempts;
    }
}

/// Sends one signed `webhook.test` event to the endpoint `name` of `workspace` now, outside
/// the queue: the answer's status on a 2xx, else what went wrong.
pub fn send_test(
    workspace: &Workspace,
    name: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Result<u16, String>, WebhookError> {
    let endpoint = workspace
        .config()
        .webhooks
        .iter()
        .find(|endpoint| endpoint.name == name)
        .ok_or_else(|| WebhookError::UnknownEndpoint(name.to_owned()))?;
    let ready = ReadyEndpoint::new(endpoint, env)?;
    let now = chrono::Utc::now();
    let id = format!("evt_test_{:032x}", rand::random::<u128>());
    let body = serde_json::json!({
        "type": "webhook.test",
        "timestamp": now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "data": {"endpoint": name},
    })
    .to_string();
    Ok(ready.send(&id, &body, now.timestamp()))
}

/// Starts the dispatcher of `workspace`'s configured endpoints (`None` when there are none).
pub fn start_dispatcher(
    workspace: &Workspace,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<Dispatcher>, WebhookError> {
    Dispatcher::start(
        workspace.database_path(),
        workspace.config().busy_timeout,
        ready_endpoints(workspace, env)?,
    )
}
