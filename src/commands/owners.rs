//! `owners`: account managers with their load, and owner assignment.

use std::path::Path;
use std::process::ExitCode;

use tiercare_scheduler::owners::{AssignReport, assign_owners};
use tiercare_scheduler::workspace::Workspace;

use crate::cli::{OwnersArgs, OwnersCommand};
use crate::commands::tiers::{load_rules, now};
use crate::output::{Output, thousands};

fn n(value: u64) -> String {
    thousands(value as f64)
}

pub fn owners(args: OwnersArgs, workspace_dir: &Path, out: &Output) -> anyhow::Result<ExitCode> {
    let workspace = Workspace::open(workspace_dir)?;
    match args.command.unwrap_or(OwnersCommand::List) {
        OwnersCommand::List => {
            let managers = workspace.open_store()?.managers()?;
            if args.json {
                out.json(&managers)?;
            } else if managers.is_empty() {
                out.line("no managers: import them with `tiercare import managers FILE`");
            } else {
                out.line(&format!(
                    "  {:<10} {:<24} {:<10} {:>9} {:>9} {:>9} {:>7}",
                    "manager", "name", "role", "capacity", "customers", "spare", "tasks"
                ));
                for m in &managers {
                    let dash = || "-".to_owned();
                    out.line(&format!(
                        "  {:<10} {:<24} {:<10} {:>9} {:>9} {:>9} {:>7}{}",
                        m.external_id,
                        m.name,
                        m.role.as_deref().unwrap_or("-"),
                        m.capacity.map_or_else(dash, n),
                        n(m.customers),
                        m.spare_capacity().map_or_else(dash, n),
                        n(m.open_tasks),
                        if m.active { "" } else { "  (inactive)" }
                    ));
                }
                for m in &managers {
                    if let Some(capacity) = m.capacity.filter(|&c| m.customers > c) {
                        out.warn(&format!(
                            "{} ({}) owns {} customers but can look after {capacity}: move some \
                             to a manager with spare capacity, or raise the capacity",
                            m.external_id,
                            m.name,
                            n(m.customers)
                        ));
                    }
                    if !m.active && m.customers > 0 {
                        out.warn(&format!(
                            "{} ({}) is inactive but still owns {} customers: give them \
                             another owner",
                            m.external_id,
                            m.name,
                            n(m.customers)
                        ));
                    }
                }
            }
        }
        OwnersCommand::Assign { dry_run } => {
            let rules = load_rules(&workspace, out)?;
            let mut store = if dry_run {
                workspace.open_store()?
            } else {
                workspace.open_store_for_writing()?
            };
            let report = assign_owners(
                &mut store,
                &rules,
                now(),
                workspace.config().timezone,
                dry_run,
            )?;
            if args.json {
                out.json(&report)?;
            } else {
                print_assignment(&report, out);
            }
        }
        OwnersCommand::Set {
            customer,
            manager,
            reason,
            by,
        } => {
            let by = by_whom(by);
            let mut store = workspace.open_store_for_writing()?;
            let changed = store.set_owner(&customer, Some(&manager), &reason, &by, now())?;
            out.line(&if changed {
                format!("{customer} is now owned by {manager}")
            } else {
                format!("{customer} was already owned by {manager}: nothing changed")
            });
        }
        OwnersCommand::Release {
            customer,
            reason,
            by,
        } => {
            let by = by_whom(by);
            let mut store = workspace.open_store_for_writing()?;
            let changed = store.set_owner(&customer, None, &reason, &by, now())?;
            out.line(&if changed {
                format!("{customer} is back in the pool (no owner)")
            } else {
                format!("{customer} had no owner: nothing changed")
            });
        }
        OwnersCommand::History { customer } => {
            let changes = workspace.open_store()?.owner_changes_of(&customer)?;
            if args.json {
                out.json(&changes)?;
            } else if changes.is_empty() {
                out.line(&format!("{customer} has had no owner change recorded"));
            } else {
                for change in &changes {
                    out.line(&format!(
                        "  {}  {} → {}  {} ({}){}",
                        tiercare_scheduler::assess::format_time(change.at),
                        change.from_owner.as_deref().unwrap_or("(pool)"),
                        change.to_owner.as_deref().unwrap_or("(pool)"),
                        change.kind,
                        change.reason,
                        change
                            .changed_by
                            .as_deref()
                            .map(|by| format!(" by {by}"))
                            .unwrap_or_default()
                    ));
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Who acts: `--by`, else `$USER`.
fn by_whom(by: Option<String>) -> String {
    by.or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "unknown".to_owned())
}

fn print_assignment(report: &AssignReport, out: &Output) {
    if !report.configured {
        out.line(
            "the rules have no `assignment` section: nothing to assign (see rules/README.md, \"Owner assignment\")",
        );
        return;
    }
    let decided = report.plan.assignments.len() as u64;
    out.heading(&if report.dry_run {
        format!(
            "{} customers without an owner · {} would get one (dry run: nothing written)",
            n(report.unowned),
            n(decided)
        )
    } else {
        format!(
            "{} customers without an owner · {} got one",
            n(report.unowned),
            n(report.written)
        )
    });
    out.line(&format!(
        "  {:<8} {:<28} {:>9} {:>9} {:>9} {:>12}",
        "tier", "to", "unowned", "assigned", "full", "no candidate"
    ));
    for tier in &report.plan.tiers {
        out.line(&format!(
            "  {:<8} {:<28} {:>9} {:>9} {:>9} {:>12}",
            tier.tier,
            tier.to,
            n(tier.unowned),
            n(tier.assigned),
            n(tier.full),
            n(tier.no_candidate)
        ));
    }
    if !report.plan.per_manager.is_empty() {
        // The managers given the most, then "and N more": all of them are in --json.
        const SHOWN: usize = 10;
        let mut most: Vec<(&String, &u64)> = report.plan.per_manager.iter().collect();
        most.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let mut line = most
            .iter()
            .take(SHOWN)
            .map(|(manager, count)| format!("{manager} {}", n(**count)))
            .collect::<Vec<_>>()
            .join(" · ");
        if most.len() > SHOWN {
            line.push_str(&format!(
                " · and {} more managers (--json lists all)",
                n((most.len() - SHOWN) as u64)
            ));
        }
        out.line(&format!("  per manager: {line}"));
    }
    if report.without_tier > 0 {
        out.line(&format!(
            "  {} customer(s) have no tier yet and were left alone: run `tiercare assess` first",
            n(report.without_tier)
        ));
    }
    let full: u64 = report.plan.tiers.iter().map(|t| t.full).sum();
    if full > 0 {
        out.warn(&format!(
            "{} customer(s) stay without an owner: every candidate is at capacity (raise `capacity` in the managers file, or add managers)",
            n(full)
        ));
    }
    let none: u64 = report.plan.tiers.iter().map(|t| t.no_candidate).sum();
    if none > 0 {
        out.warn(&format!(
            "{} customer(s) stay without an owner: no active manager matches their tier's candidates",
            n(none)
        ));
    }
}
