//! tiercare's HTTP server: what recipients reach from their e-mails (RFC 8058 one-click
//! unsubscribes, the unsubscribe page, the preference page and survey answers), run by
//! `tiercare serve` and by
//! `tiercare run` when `[http]` is configured.
//!
//! A thin crate of handlers over the scheduler's functions (the same ones the CLI calls):
//! axum on a tokio runtime of its own, on a thread of its own ([`spawn`]), so the daemon's core
//! stays plain threads. It is meant to sit behind the user's reverse proxy, which terminates
//! TLS.
//!
//! - [`routes`]: the router, one module per area (`routes/unsubscribe.rs`, `routes/survey.rs`, the providers'
//!   `routes/webhooks.rs`; the staff workspace will be an area beside them).
//! - [`layout`]: the one page layout (and its security headers) every page is rendered in.
//! - [`i18n`]: the pages' languages (English, Simplified Chinese) and their texts.
//! - [`guard`]: request limits: the per-client rate limit and the access log.
//! - [`staff`]: the staff workspace under `/staff/` (accounts, sessions, CSRF, the page frame,
//!   the dashboard and the staff pages).
//! - [`server`]: binding, the runtime thread and graceful shutdown.
//!
//! # What this crate must never do
//!
//! - Hold SQL or decide anything itself: it calls the scheduler (and the store through it).
//! - Log personal data: no address, token or query string is logged (the access log has the
//!   method, the route template, the status and the duration).
//! - Let a GET change anything: link scanners follow GETs.
//! - Tell a valid token from an invalid one in a one-click answer: both get 200.
//! - Serve a script: pages work without JavaScript, under a CSP that forbids scripts.

pub mod guard;
pub mod i18n;
pub mod layout;
pub mod routes;
pub mod server;
pub mod staff;

pub use routes::router;
pub use server::{ServerHandle, WebError, spawn};

use std::sync::{Mutex, PoisonError};

use tiercare_scheduler::http_config::{HttpConfig, PageLanguage};
use tiercare_scheduler::mail::TokenSigner;
use tiercare_scheduler::providers::ProviderSettings;
use tiercare_scheduler::workspace::Workspace;
use tiercare_store::Store;

/// What every handler shares: the database connection (requests take turns; a write is one
/// short transaction), the token signer, the settings and the clock.
pub struct AppState {
    store: Mutex<Store>,
    signer: TokenSigner,
    config: HttpConfig,
    clock: fn() -> i64,
    providers: ProviderSettings,
    workspace: Option<Workspace>,
    timezone: chrono_tz::Tz,
    rules: staff::rules_cache::RulesCache,
}

impl AppState {
    /// The state of a server over `store` (opened for writing, with the workspace's address
    /// keys) with the workspace's `signer` and `[http]` settings, reading the time from `clock`
    /// (unix seconds).
    pub fn new(store: Store, signer: TokenSigner, config: HttpConfig, clock: fn() -> i64) -> Self {
        AppState {
            store: Mutex::new(store),
            signer,
            config,
            clock,
            providers: ProviderSettings::default(),
            workspace: None,
            timezone: chrono_tz::Tz::UTC,
            rules: staff::rules_cache::RulesCache::default(),
        }
    }

    /// The same state with the providers' webhook secrets and bounce policy (without them,
    /// every `/webhooks/{provider}` call is refused as not configured).
    #[must_use]
    pub fn with_providers(mut self, providers: ProviderSettings) -> Self {
        self.providers = providers;
        self
    }

    /// The same state with the workspace whose database it serves: its settings and rule
    /// files, which the staff pages read (the plan, the rules, held e-mails).
    #[must_use]
    pub fn with_workspace(mut self, workspace: Workspace) -> Self {
        self.workspace = Some(workspace);
        self
    }

    /// The workspace, when the server was given one ([`AppState::with_workspace`]).
    pub fn workspace(&self) -> Option<&Workspace> {
        self.workspace.as_ref()
    }

    /// The same state with the workspace's time zone (staff pages show times and read dates in
    /// it; UTC without).
    #[must_use]
    pub fn with_timezone(mut self, timezone: chrono_tz::Tz) -> Self {
        self.timezone = timezone;
        self
    }

    /// The workspace's rules as the staff pages read them, compiled once per version.
    pub fn rules(&self) -> &staff::rules_cache::RulesCache {
        &self.rules
    }

    /// The workspace's time zone.
    pub fn timezone(&self) -> chrono_tz::Tz {
        self.timezone
    }

    /// The providers' webhook settings.
    pub fn providers(&self) -> &ProviderSettings {
        &self.providers
    }

    /// The settings.
    pub fn config(&self) -> &HttpConfig {
        &self.config
    }

    /// The configured language, if any.
    pub fn language(&self) -> Option<PageLanguage> {
        self.config.language
    }

    /// The time now (unix seconds), from the server's clock.
    pub fn now(&self) -> i64 {
        (self.clock)()
    }

    /// Runs `work` with the store and the signer, on the calling (blocking) thread.
    pub(crate) fn with_store<T>(&self, work: impl FnOnce(&mut Store, &TokenSigner, i64) -> T) -> T {
        let mut store = self.store.lock().unwrap_or_else(PoisonError::into_inner);
        work(&mut store, &self.signer, (self.clock)())
    }
}
