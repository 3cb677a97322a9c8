//! `tiercare serve`, and the web server `tiercare run` starts beside the daemon.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use tiercare_scheduler::http_config::HttpConfig;
use tiercare_scheduler::mail::TokenSigner;
use tiercare_scheduler::providers::ProviderSettings;
use tiercare_scheduler::workspace::Workspace;
use tiercare_web::{AppState, ServerHandle};

use crate::cli::ServeArgs;
use crate::output::Output;

/// Starts the web server of `workspace` with `config` on its own thread: its own connection
/// to the database (opened for writing, suppressions re-keyed under the current secret).
pub fn start(workspace: &Workspace, config: HttpConfig) -> anyhow::Result<ServerHandle> {
    let mail = &workspace.config().mail;
    let signer = TokenSigner::for_workspace(workspace)?.with_context(|| {
        format!(
            "the web server needs the secret that signs unsubscribe links: set the environment \
             variable {} to a long random string, e.g. `export {}=$(head -c 32 /dev/urandom | \
             base64)` (the same for `tiercare send` and `tiercare run`)",
            mail.unsubscribe_secret_env, mail.unsubscribe_secret_env
        )
    })?;
    if config.public_url.is_none() {
        tracing::warn!(
            "[http] public_url is not set: emails' unsubscribe links do not point at this server"
        );
    }
    // The providers' webhook secrets, read once: a malformed one stops the start.
    let providers = ProviderSettings::from_config(mail, &|name| std::env::var(name).ok())?;
    let mut store = workspace.open_store_for_writing()?;
    let rekeyed = store.rekey_suppressions()?;
    if rekeyed > 0 {
        tracing::info!(rekeyed, "suppressions re-keyed under the current secret");
    }
    Ok(tiercare_web::spawn(
        AppState::new(store, signer, config, tiercare_scheduler::time::now)
            .with_providers(providers)
            .with_timezone(workspace.config().timezone),
    )?)
}

pub fn serve(args: &ServeArgs, workspace_dir: &Path, out: &Output) -> anyhow::Result<ExitCode> {
    let workspace = Workspace::open(workspace_dir)?;
    let mut config = workspace.config().http.clone().unwrap_or_default();
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    // Installed before the server starts, so a signal right after start is not missed.
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
    ])
    .context("could not install the SIGTERM/SIGINT handlers")?;
    let public = config.unsubscribe_url();
    let server = start(&workspace, config)?;
    out.line(&format!(
        "listening on http://{}{}",
        server.local_addr(),
        public.map_or_else(String::new, |url| format!(" (links: {url})"))
    ));
    let _ = signals.forever().next();
    tracing::info!("stopping: requests under way finish first");
    server.stop()?;
    Ok(ExitCode::SUCCESS)
}
