//! `plan`, `followups record` and `tasks`: follow-ups, previewed, recorded and worked on.

use std::path::Path;
use std::process::ExitCode;

use tiercare_scheduler::assess::format_time;
use tiercare_scheduler::plan::{
    EVENT_LOOKBACK, PlanOptions, PlanSummary, plan as run_plan, record_due,
};
use tiercare_scheduler::templates::{EmailRenderer, load_workspace_templates};
use tiercare_scheduler::workspace::Workspace;
use tiercare_store::{Task, TaskFilter, TaskView};

use crate::cli::{FollowupsCommand, PlanArgs, RecordArgs, TaskViewArg, TasksArgs, TasksCommand};
use crate::commands::tiers::{load_rules, now, parse_time, time_or};
use crate::format::{local_minute, thousands};
use crate::output::Output;

const DAY: i64 = 86_400;

pub fn plan(args: PlanArgs, workspace_dir: &Path, out: &Output) -> anyhow::Result<ExitCode> {
    let workspace = Workspace::open(workspace_dir)?;
    let rules = load_rules(&workspace, out)?;
    let timezone = workspace.config().timezone;
    let from = time_or(args.from.as_deref(), timezone, now())?;
    let options = PlanOptions {
        from,
        to: from + i64::from(args.days) * DAY,
        events_since: from - EVENT_LOOKBACK,
        timezone,
    };
    let reader = workspace.open_store()?;
    let summary = run_plan(&reader, &rules, options)?;
    // The managers' digests and escalations of the coming days, from the tasks stored now.
    let digests = tiercare_scheduler::reminders::plan_digests(
        &reader,
        &rules,
        timezone,
        options.from,
        options.to,
    )?;
    // The pool's warnings and reclaims of the same days, if nobody follows up.
    let pool = tiercare_scheduler::pool::upcoming(&reader, &rules, options.from, options.to)?;
    if args.json {
        let mut value = serde_json::to_value(&summary)?;
        value["digests"] = serde_json::to_value(&digests)?;
        value["pool"] = serde_json::to_value(&pool)?;
        out.json(&value)?;
    } else {
        print_plan(&summary, args.days, out);
        print_digests(&digests, timezone, out);
        print_pool(&pool, out);
    }
    Ok(if summary.rule_errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The digests `plan` expects, one line each.
fn print_digests(
    digests: &[tiercare_scheduler::reminders::PlannedDigest],
    timezone: chrono_tz::Tz,
    out: &Output,
) {
    if digests.is_empty() {
        return;
    }
    out.line(&format!(
        "  managers' digests ({}; from the tasks stored now):",
        n(digests.len() as u64)
    ));
    for digest in digests {
        out.line(&format!(
            "    {:<10} {}  {} due today · {} overdue · {} escalated{}",
            digest.manager,
            crate::format::local_minute(digest.at, timezone),
            n(digest.tasks_today),
            n(digest.overdue),
            n(digest.escalated),
            if digest.has_address {
                ""
            } else {
                " · not sent: no e-mail address"
            }
        ));
    }
}

fn n(value: u64) -> String {
    thousands(value as f64)
}

fn counts(map: &std::collections::BTreeMap<String, u64>) -> String {
    map.iter()
        .map(|(name, count)| format!("{name} {}", n(*count)))
        .collect::<Vec<_>>()
        .join(" · ")
}

/// The pool's part of `plan`: warnings and reclaims per day, and the first few customers.
fn print_pool(events: &[tiercare_scheduler::pool::PoolEvent], out: &Output) {
    if events.is_empty() {
        return;
    }
    let mut per_day: std::collections::BTreeMap<String, (u64, u64)> = Default::default();
    for event in events {
        let day = format_time(event.at)[..10].to_owned();
        let entry = per_day.entry(day).or_default();
        if event.kind == "warning" {
            entry.0 += 1;
        } else {
            entry.1 += 1;
        }
    }
    out.line(&format!(
        "  public pool (if nobody follows up): {:<12} {:>9} {:>9}",
        "day", "warnings", "reclaims"
    ));
    for (day, (warnings, reclaims)) in &per_day {
        out.line(&format!(
            "  {:<36} {:<12} {:>9} {:>9}",
            "",
            day,
            n(*warnings),
            n(*reclaims)
        ));
    }
    for event in events.iter().filter(|e| e.kind == "reclaim").take(5) {
        out.line(&format!(
            "    reclaim {} from {} ({}) {}: {}",
            event.customer,
            event.owner,
            event.tier,
            format_time(event.at),
            event.reason
        ));
    }
}

fn print_plan(summary: &PlanSummary, days: u32, out: &Output) {
    out.heading(&format!(
        "planned {days} days from {} for {} customers · rules {} · {:.1} s (preview: nothing recorded)",
        format_time(summary.from),
        n(summary.customers),
        summary.ruleset_version,
        summary.elapsed_ms as f64 / 1000.0
    ));
    out.line(&format!(
        "  {} emails · {} SMS · {} tasks · {} other actions",
        n(summary.emails),
        n(summary.sms),
        n(summary.tasks),
        n(summary.other)
    ));
    if !summary.days.is_empty() {
        out.line(&format!(
            "  {:<12} {:>9} {:>9} {:>9} {:>9}",
            "day", "emails", "sms", "tasks", "other"
        ));
        for day in &summary.days {
            out.line(&format!(
                "  {:<12} {:>9} {:>9} {:>9} {:>9}",
                day.date,
                n(day.emails),
                n(day.sms),
                n(day.tasks),
                n(day.other)
            ));
        }
    }
    out.line("  per rule:");
    for rule in &summary.rules {
        let mut line = format!(
            "    {:<22} {:>9}  {}",
            rule.rule,
            n(rule.planned),
            rule.action
        );
        if !rule.sample_customers.is_empty() {
            line.push_str(&format!(" · e.g. {}", rule.sample_customers.join(", ")));
        }
        if rule.moved_window + rule.moved_gap > 0 {
            line.push_str(&format!(
                " · moved: window {}, gap {}",
                n(rule.moved_window),
                n(rule.moved_gap)
            ));
        }
        if !rule.skipped.is_empty() {
            line.push_str(&format!(" · skipped: {}", counts(&rule.skipped)));
        }
        out.line(&line);
    }
    out.line(&format!(
        "  {:<8} {:>10} {:>10} {:>9} {:>9} {:>9} {:>9}",
        "tier", "customers", "planned", "emails", "sms", "tasks", "other"
    ));
    for tier in &summary.tiers {
        out.line(&format!(
            "  {:<8} {:>10} {:>10} {:>9} {:>9} {:>9} {:>9}",
            tier.tier,
            n(tier.customers),
            n(tier.customers_planned),
            n(tier.emails),
            n(tier.sms),
            n(tier.tasks),
            n(tier.other)
        ));
    }
    if !summary.assignees.is_empty() {
        out.line(&format!(
            "  tasks per assignee: {}",
            counts(&summary.assignees)
        ));
    }
    for warning in &summary.capacity_warnings {
        out.warn(&warning.message);
    }
    if !summary.moved.is_empty() {
        out.line(&format!(
            "  moved by the policy: {}",
            counts(&summary.moved)
        ));
    }
    if !summary.skipped.is_empty() {
        out.line(&format!(
            "  skipped by the policy: {}",
            counts(&summary.skipped)
        ));
    }
    for (note, customers) in &summary.notes {
        out.warn(&format!("{note} ({} customer(s))", n(*customers)));
    }
    for failure in &summary.rule_errors {
        out.warn(&format!(
            "follow-up {} failed for {} customer(s), e.g. {}: {}",
            failure.rule,
            n(failure.customers),
            failure.example_customer,
            failure.message
        ));
    }
}

pub fn followups(
    command: FollowupsCommand,
    workspace_dir: &Path,
    out: &Output,
) -> anyhow::Result<ExitCode> {
    match command {
        FollowupsCommand::Record(args) => record(args, workspace_dir, out),
    }
}

/// The workspace's templates, ready to render emails as follow-ups are recorded. Templates
/// with errors are reported as warnings and left out: follow-ups that name them are recorded
/// as skipped, with the reason.
fn email_renderer(
    workspace: &Workspace,
    rules: &tiercare_engine::RuleSet,
    out: &Output,
) -> anyhow::Result<EmailRenderer> {
    let loaded = load_workspace_templates(workspace)?;
    if !loaded.diagnostics.is_empty() {
        out.diagnostics(&tiercare_engine::render_all(
            &loaded.diagnostics,
            out.color_err(),
        ));
        out.warn(
            "some templates have errors (see `tiercare check`): emails using them are skipped",
        );
    }
    Ok(EmailRenderer::new(workspace, loaded.templates, rules)?)
}

fn record(args: RecordArgs, workspace_dir: &Path, out: &Output) -> anyhow::Result<ExitCode> {
    let workspace = Workspace::open(workspace_dir)?;
    let rules = load_rules(&workspace, out)?;
    let timezone = workspace.config().timezone;
    let until = parse_time(&args.until, timezone)?;
    let from = time_or(args.from.as_deref(), timezone, until - DAY)?;
    if from >= until {
        anyhow::bail!("--from must be before --until");
    }
    let options = PlanOptions {
        from,
        to: until,
        events_since: from - EVENT_LOOKBACK,
        timezone,
    };
    let mut writer = workspace.open_store_for_writing()?;
    let reader = workspace.open_store()?;
    let renderer = email_renderer(&workspace, &rules, out)?;
    let report = record_due(&reader, &mut writer, &rules, options, now(), &renderer)?;
    if args.json {
        out.json(&report)?;
    } else {
        out.heading(&format!(
            "recorded follow-ups due from {} until {} for {} customers · rules {}",
            format_time(report.from),
            format_time(report.until),
            n(report.customers),
            report.ruleset_version
        ));
        if report.owners_assigned > 0 {
            out.line(&format!(
                "  {} customers got an owner first (the rules' `assignment`)",
                n(report.owners_assigned)
            ));
        }
        out.line(&format!(
            "  {} new ({} planned emails and notifications, {} queued in the outbox, {} skipped) · {} already recorded · {} tasks created · {} attributes set",
            n(report.new),
            n(report.planned),
            n(report.queued),
            n(report.skipped),
            n(report.existing),
            n(report.tasks_created),
            n(report.attributes_set)
        ));
    }
    Ok(if report.rule_errors > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn task_view(view: TaskViewArg) -> TaskView {
    match view {
        TaskViewArg::Pending => TaskView::Pending,
        TaskViewArg::Actionable => TaskView::Actionable,
        TaskViewArg::Snoozed => TaskView::Snoozed,
        TaskViewArg::Done => TaskView::Done,
        TaskViewArg::All => TaskView::All,
    }
}

fn print_task(task: &Task, timezone: chrono_tz::Tz, out: &Output) {
    let state = if task.done_at.is_some() {
        "done"
    } else if task.overdue {
        "OVERDUE"
    } else if task.snoozed_until.is_some_and(|until| until > now()) {
        "snoozed"
    } else {
        "open"
    };
    out.line(&format!(
        "  #{:<6} {:<8} due {}  {:<10} {:<12} {}",
        task.id,
        state,
        local_minute(task.due, timezone),
        task.customer_id,
        task.assignee,
        task.title
    ));
}

/// Tasks the table shows when no --limit is given.
const TASKS_SHOWN: usize = 50;

/// The manager_id `owner` names: a manager's id, or else their name in any case.
fn manager_id(store: &tiercare_store::Store, owner: &str) -> anyhow::Result<String> {
    let managers = store.managers()?;
    if let Some(manager) = managers.iter().find(|m| m.external_id == owner) {
        return Ok(manager.external_id.clone());
    }
    let by_name: Vec<_> = managers
        .iter()
        .filter(|m| m.name.to_lowercase() == owner.trim().to_lowercase())
        .collect();
    match by_name.as_slice() {
        [manager] => Ok(manager.external_id.clone()),
        [] => {
            let known: Vec<String> = managers
                .iter()
                .take(12)
                .map(|m| format!("{} ({})", m.external_id, m.name))
                .collect();
            anyhow::bail!(
                "no manager has the id or name `{owner}`; the workspace's managers: {}{}",
                if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                },
                if managers.len() > known.len() {
                    ", ..."
                } else {
                    ""
                }
            )
        }
        several => anyhow::bail!(
            "{} managers are called `{owner}`: give one of their ids ({})",
            several.len(),
            several
                .iter()
                .map(|m| m.external_id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

pub fn tasks(args: TasksArgs, workspace_dir: &Path, out: &Output) -> anyhow::Result<ExitCode> {
    let workspace = Workspace::open(workspace_dir)?;
    let timezone = workspace.config().timezone;
    let now = now();
    let command = args.command.unwrap_or(TasksCommand::List {
        view: TaskViewArg::Pending,
        customer: None,
    });
    let mut store = if matches!(command, TasksCommand::List { .. }) {
        workspace.open_store()?
    } else {
        workspace.open_store_for_writing()?
    };
    match command {
        TasksCommand::List { view, customer } => {
            let assignee = match &args.owner {
                Some(owner) => Some(manager_id(&store, owner)?),
                None => None,
            };
            let filter = TaskFilter {
                assignee,
                customer,
                view: task_view(view),
                ..TaskFilter::default()
            };
            let mut tasks = store.tasks(&filter, now)?;
            let limit = match args.limit {
                Some(0) => None,
                Some(limit) => Some(limit),
                None if args.json => None,
                None => Some(TASKS_SHOWN),
            };
            let total = tasks.len();
            let overdue = tasks.iter().filter(|t| t.overdue).count();
            if let Some(limit) = limit {
                tasks.truncate(limit);
            }
            if args.json {
                out.json(&tasks)?;
            } else if tasks.is_empty() {
                out.line("no tasks");
            } else {
                out.heading(&format!(
                    "{} task(s), {} overdue",
                    n(total as u64),
                    n(overdue as u64)
                ));
                for task in &tasks {
                    print_task(task, timezone, out);
                }
                if total > tasks.len() {
                    out.line(&format!(
                        "... and {} more: --limit N shows more, --limit 0 all, --json everything",
                        n((total - tasks.len()) as u64)
                    ));
                }
            }
        }
        TasksCommand::Done { id, note, by } => {
            let by = by
                .or_else(|| std::env::var("USER").ok())
                .unwrap_or_else(|| "unknown".to_owned());
            let task = store.complete_task(id, &by, note.as_deref(), now)?;
            if args.json {
                out.json(&task)?;
            } else {
                out.line(&format!("task #{} done by {by}: {}", task.id, task.title));
            }
        }
        TasksCommand::Snooze { id, until } => {
            let until = parse_time(&until, timezone)?;
            let task = store.snooze_task(id, until, now)?;
            if args.json {
                out.json(&task)?;
            } else {
                out.line(&format!(
                    "task #{} snoozed until {}: {}",
                    task.id,
                    local_minute(until, timezone),
                    task.title
                ));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
