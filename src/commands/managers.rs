//! `managers`: leave, inactivity, reassigning a manager's work, and the daily digests.

use std::path::Path;
use std::process::ExitCode;

use tiercare_scheduler::reminders::{
    DigestSettings, check_digest_templates, load_workspace_digest_templates, send_digests,
};
use tiercare_scheduler::workspace::Workspace;
use tiercare_store::ReassignTo;

use crate::cli::ManagersCommand;
use crate::commands::tiers::{load_rules, now, time_or};
use crate::format::local_minute;
use crate::output::Output;

pub fn managers(
    command: ManagersCommand,
    workspace_dir: &Path,
    out: &Output,
) -> anyhow::Result<ExitCode> {
    let workspace = Workspace::open(workspace_dir)?;
    let tz = workspace.config().timezone;
    match command {
        ManagersCommand::Leave {
            id,
            from,
            until,
            end,
            json,
        } => {
            let now = now();
            let from = time_or(from.as_deref(), tz, now)?;
            let until = if end {
                Some(from)
            } else {
                until
                    .as_deref()
                    .map(|t| time_or(Some(t), tz, now))
                    .transpose()?
            };
            let mut store = workspace.open_store_for_writing()?;
            store.set_leave(&id, from, until, now)?;
            if json {
                out.json(&serde_json::json!({
                    "manager": id,
                    "leave_from": (until != Some(from)).then_some(from),
                    "leave_until": until.filter(|u| *u != from),
                }))?;
            } else if until == Some(from) {
                out.line(&format!("{id}: no leave recorded"));
            } else {
                out.line(&format!(
                    "{id} is on leave from {}{}: no new customers, tasks or digest then; \
                     move their open work with `tiercare managers reassign {id} --auto`",
                    local_minute(from, tz),
                    until.map_or_else(
                        || " until ended".to_owned(),
                        |u| format!(" until {}", local_minute(u, tz))
                    )
                ));
            }
        }
        ManagersCommand::Deactivate { id, json } => set_active(&workspace, &id, false, json, out)?,
        ManagersCommand::Activate { id, json } => set_active(&workspace, &id, true, json, out)?,
        ManagersCommand::Reassign {
            id,
            to,
            auto,
            customers,
            json,
        } => {
            let target = match (to, auto) {
                (Some(to), _) => ReassignTo::Manager(to),
                (None, _) => ReassignTo::Auto,
            };
            let mut store = workspace.open_store_for_writing()?;
            let moved = store.reassign_work(&id, &target, customers, now())?;
            if json {
                out.json(&moved)?;
            } else {
                let total = |list: &[(String, u64)]| list.iter().map(|(_, n)| n).sum::<u64>();
                out.heading(&format!(
                    "{id}: {} open task(s) and {} customer(s) moved",
                    total(&moved.tasks),
                    total(&moved.customers)
                ));
                for (to, n) in &moved.tasks {
                    out.line(&format!("  {n} task(s) to {to}"));
                }
                for (to, n) in &moved.customers {
                    out.line(&format!("  {n} customer(s) to {to}"));
                }
            }
        }
        ManagersCommand::Digest { at, json } => {
            let at = time_or(at.as_deref(), tz, now())?;
            let rules = load_rules(&workspace, out)?;
            let loaded = load_workspace_digest_templates(&workspace)?;
            let problems = check_digest_templates(&rules, &loaded);
            if !problems.is_empty() {
                anyhow::bail!(
                    "{}",
                    tiercare_engine::render_all(&problems, false).trim_end()
                );
            }
            let mut store = workspace.open_store_for_writing()?;
            let settings = DigestSettings::from_config(workspace.config());
            let report = send_digests(&mut store, &rules, &loaded.templates, &settings, at)?;
            if json {
                out.json(&report)?;
            } else if !report.configured {
                out.line(
                    "the rules have no `reminders.digest` section: no digests (see rules/managers.yaml)",
                );
            } else if report.decided.is_empty() {
                out.line("no digest is due now");
            } else {
                out.heading(&format!(
                    "{} digest(s) decided, {} queued (`tiercare send` delivers them)",
                    report.decided.len(),
                    report.queued()
                ));
                for decision in &report.decided {
                    out.line(&format!(
                        "  {:<10} {}  {:<16} {} item(s){}",
                        decision.manager,
                        decision.local_day,
                        decision.outcome,
                        decision.items,
                        if decision.escalated > 0 {
                            format!(", {} escalated", decision.escalated)
                        } else {
                            String::new()
                        }
                    ));
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn set_active(
    workspace: &Workspace,
    id: &str,
    active: bool,
    json: bool,
    out: &Output,
) -> anyhow::Result<()> {
    let mut store = workspace.open_store_for_writing()?;
    store.set_manager_active(id, active, now())?;
    if json {
        out.json(&serde_json::json!({ "manager": id, "active": active }))?;
    } else if active {
        out.line(&format!(
            "{id} is active: they take new customers and tasks again"
        ));
    } else {
        out.line(&format!(
            "{id} is inactive: no new customers, tasks or digest; move their open work with \
             `tiercare managers reassign {id} --auto`"
        ));
    }
    Ok(())
}
