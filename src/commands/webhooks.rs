//! `tiercare webhooks`: list deliveries, retry dead ones, send a test event.

use std::path::Path;
use std::process::ExitCode;

use tiercare_scheduler::time::format_time;
use tiercare_scheduler::webhooks::send_test;
use tiercare_scheduler::workspace::Workspace;

use crate::cli::{WebhooksArgs, WebhooksCommand};
use crate::output::Output;

pub fn webhooks(
    args: WebhooksArgs,
    workspace_dir: &Path,
    out: &Output,
) -> anyhow::Result<ExitCode> {
    let workspace = Workspace::open(workspace_dir)?;
    match args.command.unwrap_or(WebhooksCommand::List) {
        WebhooksCommand::List => {
            let store = workspace.open_store()?;
            let rows = store.webhook_deliveries(
                args.endpoint.as_deref(),
                args.state.as_deref(),
                args.limit,
            )?;
            if args.json {
                let rows: Vec<serde_json::Value> = rows
                    .iter()
                    .map(|(delivery, state, error)| {
                        serde_json::json!({
                            "event_id": delivery.event_id,
                            "type": delivery.event_type,
                            "endpoint": delivery.endpoint,
                            "state": state,
                            "attempts": delivery.attempts,
                            "last_error": error,
                            "next_attempt_at": delivery.next_attempt_at,
                            "occurred_at": delivery.occurred_at,
                        })
                    })
                    .collect();
                out.json(&rows)?;
                return Ok(ExitCode::SUCCESS);
            }
            if rows.is_empty() {
                out.line("no webhook deliveries");
            }
            for (delivery, state, error) in &rows {
                out.line(&format!(
                    "{}  {:<22} {:<12} {:<9} attempts {}{}",
                    delivery.event_id,
                    delivery.event_type,
                    delivery.endpoint,
                    state,
                    delivery.attempts,
                    match (error, state.as_str()) {
                        (Some(error), "queued" | "dead") => format!(
                            " · last error: {error}{}",
                            delivery
                                .next_attempt_at
                                .filter(|_| state == "queued")
                                .map(|at| format!(" · next attempt {}", format_time(at)))
                                .unwrap_or_default()
                        ),
                        _ => String::new(),
                    }
                ));
            }
        }
        WebhooksCommand::Retry => {
            let mut store = workspace.open_store_for_writing()?;
            let now = chrono::Utc::now().timestamp();
            let retried = store.retry_dead_webhooks(args.endpoint.as_deref(), now)?;
            if args.json {
                out.json(&serde_json::json!({ "retried": retried }))?;
            } else {
                out.line(&format!(
                    "{retried} dead deliveries queued again (a running daemon sends them)"
                ));
            }
        }
        WebhooksCommand::Test { name } => {
            let answer = send_test(&workspace, &name, &|variable| std::env::var(variable).ok())?;
            match answer {
                Ok(status) => {
                    out.line(&format!(
                        "webhook {name}: test event accepted (HTTP {status})"
                    ));
                }
                Err(error) => {
                    out.line(&format!("webhook {name}: test event failed: {error}"));
                    return Ok(ExitCode::from(1));
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
