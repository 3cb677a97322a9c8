//! `tiercare run` and `tiercare status`.

use std::path::Path;
use std::process::ExitCode;

use tiercare_scheduler::assess::format_time;
use tiercare_scheduler::clock::{SimulatedClock, SystemClock};
use tiercare_scheduler::daemon::{self as scheduler_daemon, RunOptions};
use tiercare_scheduler::status::status as read_status;
use tiercare_scheduler::workspace::Workspace;

use crate::cli::{RunArgs, StatusArgs};
use crate::commands::tiers::parse_time;
use crate::output::Output;

pub fn run(args: RunArgs, workspace_dir: &Path) -> anyhow::Result<ExitCode> {
    let workspace = Workspace::open(workspace_dir)?;
    let options = RunOptions { once: args.once };
    // The web server, when configured, runs beside the daemon on its own thread and stops
    // (letting requests under way finish) when the daemon does.
    let web = match &workspace.config().http {
        Some(http) if !args.once => Some(super::serve::start(&workspace, http.clone())?),
        _ => None,
    };
    let errors = match args.simulate_from {
        Some(start) => {
            if !(args.speed.is_finite() && args.speed > 0.0) {
                anyhow::bail!("--speed must be a positive number, such as 60 or 86400");
            }
            let start = parse_time(&start, workspace.config().timezone)?;
            scheduler_daemon::run(workspace, SimulatedClock::new(start, args.speed), options)?
        }
        None => scheduler_daemon::run(workspace, SystemClock, options)?,
    };
    if let Some(web) = web {
        web.stop()?;
    }
    // --once: a pass that met errors (logged, and shown by `status`) exits 1, so a timer or
    // cron job reports it; what could be done was done.
    Ok(if errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn time(unix: Option<i64>) -> String {
    unix.map_or_else(|| "never".to_owned(), format_time)
}

/// Warns about imported coupon pools running low (their e-mails would be skipped), when the
/// rules load and the database exists; says nothing otherwise (`check` reports rule errors).
fn coupon_warnings(workspace: &Workspace, out: &Output) {
    let Ok(source) =
        tiercare_scheduler::assess::RuleSource::read(&workspace.rules_dir(), Path::new("rules"))
    else {
        return;
    };
    let Ok(loaded) = source.load() else {
        return;
    };
    if !workspace.database_path().exists() {
        return;
    }
    let Ok(store) = workspace.open_store() else {
        return;
    };
    let now = tiercare_scheduler::time::now();
    if let Ok(pools) =
        tiercare_scheduler::incentives::pool_reports(&store, Some(&loaded.rules), now)
    {
        for warning in pools.iter().filter_map(|pool| pool.warning.as_deref()) {
            out.warn(warning);
        }
    }
}

pub fn status(args: StatusArgs, workspace_dir: &Path, out: &Output) -> anyhow::Result<ExitCode> {
    let workspace = Workspace::open(workspace_dir)?;
    let status = read_status(&workspace)?;
    if args.json {
        out.json(&status)?;
        return Ok(ExitCode::SUCCESS);
    }
    let Some(state) = &status.daemon else {
        out.heading(if status.running {
            "daemon: starting"
        } else {
            "daemon: not running (it never ran on this database; start it with `tiercare run`)"
        });
        print_sending(&status.sending, out);
        webhook_lines(&status, out);
        coupon_warnings(&workspace, out);
        return Ok(ExitCode::SUCCESS);
    };
    if status.running {
        out.heading(&format!(
            "daemon: running (pid {}) since {} · clock {}",
            status
                .pid
                .map_or_else(|| "unknown".to_owned(), |pid| pid.to_string()),
            format_time(state.started_at),
            state.clock
        ));
    } else {
        match state.stopped_at {
            Some(at) => out.heading(&format!(
                "daemon: not running (stopped at {})",
                format_time(at)
            )),
            None => out.heading(&format!(
                "daemon: not running (it ended without a clean stop; last seen {})",
                format_time(state.heartbeat_at)
            )),
        }
    }
    out.line(&format!(
        "  rules: {} loaded {} ({} loads)",
        state.ruleset_version.as_deref().unwrap_or("none"),
        time(state.ruleset_loaded_at),
        state.reloads
    ));
    if let Some(ms) = state.last_reload_ms {
        out.line(&format!(
            "  last reload: active {ms} ms after the first change"
        ));
    }
    match &state.last_reload_error {
        None => out.line("  last reload error: none"),
        Some(errors) => {
            out.line(&format!(
                "  last reload error (at {}; the rules above stay active):",
                time(state.last_reload_error_at)
            ));
            for line in errors.lines() {
                out.line(&format!("    {line}"));
            }
        }
    }
    // This daemon's last reassessment, else the schedule's last run (an earlier daemon's).
    let last_run = state
        .last_assessment_at
        .or_else(|| status.reassess.as_ref().and_then(|c| c.last_run_at));
    out.line(&format!(
        "  reassessment: last {}, next {}",
        time(last_run),
        time(state.next_assessment_at)
    ));
    if let Some(latest) = &status.latest_assessment {
        out.line(&format!(
            "  latest assessment: finished {}, as of {}",
            format_time(latest.finished_at),
            format_time(latest.at)
        ));
    }
    if let Some(cursor) = &status.reassess
        && cursor.skipped > 0
    {
        out.line(&format!(
            "  reassessments skipped as too late: {}",
            cursor.skipped
        ));
    }
    out.line(&format!("  last tick: {}", time(state.last_tick_at)));
    if let Some(error) = &state.last_tick_error {
        for line in error.lines() {
            out.line(&format!("    {line}"));
        }
    }
    let queue: Vec<String> = status
        .outbox
        .iter()
        .filter(|(_, count)| **count > 0)
        .map(|(state, count)| format!("{state} {count}"))
        .collect();
    out.line(&format!(
        "  outbox: {}{}",
        if queue.is_empty() {
            "empty".to_owned()
        } else {
            queue.join(", ")
        },
        if status.outbox_recovered > 0 {
            format!(" ({} resent after a crash)", status.outbox_recovered)
        } else {
            String::new()
        }
    ));
    let sms: Vec<String> = status
        .sms
        .iter()
        .filter(|(_, count)| **count > 0)
        .map(|(state, count)| format!("{state} {count}"))
        .collect();
    if !sms.is_empty() {
        out.line(&format!("  sms: {}", sms.join(", ")));
    }
    digest_lines(&workspace, state.last_tick_at, out)?;
    let bounces = &status.bounces;
    if bounces.hard + bounces.soft + bounces.complaints > 0 {
        out.line(&format!(
            "  bounces: {} hard, {} soft, {} complaints; {} addresses suppressed for them",
            bounces.hard, bounces.soft, bounces.complaints, bounces.suppressed
        ));
    }
    match &state.last_send_error {
        None => out.line("  last send error: none"),
        Some(error) => out.line(&format!(
            "  last send error ({}): {error}",
            time(state.last_send_error_at)
        )),
    }
    print_sending(&status.sending, out);
    webhook_lines(&status, out);
    coupon_warnings(&workspace, out);
    Ok(ExitCode::SUCCESS)
}

/// The reputation guard's verdict and figures, and the paused receiving domains.
fn print_sending(sending: &tiercare_scheduler::status::Sending, out: &Output) {
    match &sending.paused {
        Some(reason) => out.line(&format!("  {reason}")),
        None => out.line("  sending: active"),
    }
    let figures = &sending.figures;
    out.line(&format!(
        "  since {}: {} sends, {} hard bounces ({:.1}%), {} complaints ({:.2}%)",
        format_time(figures.since),
        figures.sends,
        figures.hard_bounces,
        figures.hard_bounce_percent(),
        figures.complaints,
        figures.complaint_percent()
    ));
    for row in &sending.by_day_and_rule {
        out.line(&format!(
            "    {} {}: {} sends, {} hard bounces, {} complaints",
            row.day, row.rule_id, row.sends, row.hard_bounces, row.complaints
        ));
    }
    for pause in &sending.domains_paused {
        out.line(&format!("  receiving domain {pause}"));
    }
}

/// One line per webhook endpoint: its queue, and its failing head's error and next attempt.
fn webhook_lines(status: &tiercare_scheduler::status::Status, out: &Output) {
    for endpoint in &status.webhooks {
        let mut line = format!(
            "  webhook {}: queued {}, delivered {}, dead {}{}",
            endpoint.endpoint,
            endpoint.queued,
            endpoint.delivered,
            endpoint.dead,
            if endpoint.configured {
                ""
            } else {
                " (no longer in tiercare.toml)"
            }
        );
        if let Some(failing) = &endpoint.failing {
            line.push_str(&format!(
                "; failing: {} after {} attempts, next attempt {}",
                failing.last_error,
                failing.attempts,
                failing
                    .next_attempt_at
                    .map_or_else(|| "now".to_owned(), format_time)
            ));
        }
        out.line(&line);
    }
}

/// The managers' digests of the day before the last tick: how many went, and a warning naming
/// the managers who got none for want of an e-mail address.
fn digest_lines(workspace: &Workspace, last_tick: Option<i64>, out: &Output) -> anyhow::Result<()> {
    let Some(at) = last_tick else {
        return Ok(());
    };
    let digests = workspace.open_store()?.digests(at - 86_400, at + 1)?;
    if digests.is_empty() {
        return Ok(());
    }
    let outcome = |d: &tiercare_store::RecordedDigest| {
        d.summary["outcome"].as_str().unwrap_or_default().to_owned()
    };
    let queued = digests.iter().filter(|d| d.outbox_id.is_some()).count();
    let empty = digests.iter().filter(|d| outcome(d) == "empty").count();
    out.line(&format!(
        "  managers' digests (24 h to the last tick): {queued} sent, {empty} empty (not sent)"
    ));
    let mut unreachable: Vec<&str> = digests
        .iter()
        .filter(|d| outcome(d) == "no_address")
        .map(|d| d.manager.as_str())
        .collect();
    unreachable.dedup();
    if !unreachable.is_empty() {
        out.warn(&format!(
            "no digest for {}: no usable e-mail address (add `email` in the manager import)",
            unreachable.join(", ")
        ));
    }
    Ok(())
}
