//! `report`: the figures as a terminal summary, an HTML file or JSON.

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use tiercare_scheduler::assess::format_time;
use tiercare_scheduler::report::{Figures, ManagerLoad, ReportOptions, figures, html};
use tiercare_scheduler::workspace::Workspace;

use super::tiers::{load_rules, now, time_or};
use crate::cli::ReportArgs;
use crate::format::{percent, thousands};
use crate::output::Output;

pub fn report(args: ReportArgs, workspace_dir: &Path, out: &Output) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let workspace = Workspace::open(workspace_dir)?;
    let rules = load_rules(&workspace, out)?;
    let now = now();
    let at = time_or(args.at.as_deref(), workspace.config().timezone, now)?;
    let store = workspace.open_store()?;
    let mut options = ReportOptions::new(&rules, at, now);
    // The growth models' holdout check, when the rules use the models.
    if tiercare_scheduler::growth::FEATURES
        .iter()
        .any(|f| rules.uses(*f))
    {
        options.growth = Some(workspace.config().growth_settings());
    }
    let figures = figures(&store, &options)?;
    if let Some(path) = &args.out {
        let page = html::render(&figures);
        write_atomically(path, page.as_bytes())?;
        tracing::info!(
            path = %path.display(),
            bytes = page.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "report written"
        );
        if !args.json {
            out.line(&format!(
                "wrote {} ({} KB, {} customers, {:.1} s)",
                path.display(),
                thousands((page.len() / 1024) as f64),
                thousands(figures.customers as f64),
                started.elapsed().as_secs_f64()
            ));
        }
    }
    if args.json {
        out.json(&figures)?;
    } else if args.out.is_none() {
        print_summary(&figures, out);
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes `bytes` to `path` through a temporary file beside it, so a reader never sees half a
/// report.
fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .with_context(|| format!("{} is not a file name", path.display()))?;
    let temp = dir.join(format!(".{}.tmp", name.to_string_lossy()));
    std::fs::write(&temp, bytes).with_context(|| format!("cannot write {}", temp.display()))?;
    std::fs::rename(&temp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// How many owners or managers the summary lists at most.
const LISTED: usize = 10;

/// Says how many of `total` rows were left out of a list cut at [`LISTED`].
fn more(out: &Output, total: usize, what: &str, which: &str) {
    if total > LISTED {
        out.line(&format!(
            "  … {which} {LISTED} of {} {what}; --json or --out lists all",
            thousands(total as f64)
        ));
    }
}

/// `text` cut to `width` characters (with `…` when cut), padded on the right.
fn fit(text: &str, width: usize) -> String {
    let mut cut: String = text.chars().take(width).collect();
    if text.chars().count() > width {
        cut = text.chars().take(width.saturating_sub(1)).collect();
        cut.push('…');
    }
    format!("{cut:<width$}")
}

fn count(value: u64) -> String {
    thousands(value as f64)
}

/// The headline figures as tables that fit 80 columns.
fn print_summary(figures: &Figures, out: &Output) {
    out.heading(&format!(
        "report for the assessment of {}",
        format_time(figures.assessment.at)
    ));
    out.line(&format!(
        "rules {} · revenue over {}",
        figures.assessment.ruleset_version, figures.window
    ));

    out.line("");
    out.heading("Customers and revenue per tier");
    out.line(&format!(
        "  {} {:>12} {:>7} {:>18} {:>7}",
        fit("tier", 24),
        "customers",
        "share",
        "revenue",
        "share"
    ));
    for tier in &figures.tiers {
        let name = match &tier.label {
            Some(label) => format!("{} · {label}", tier.id),
            None => tier.id.clone(),
        };
        out.line(&format!(
            "  {} {:>12} {:>7} {:>18} {:>7}",
            fit(&name, 24),
            count(tier.customers),
            percent(tier.customer_share),
            thousands(tier.revenue),
            percent(tier.revenue_share)
        ));
    }
    out.line(&format!(
        "  {} {:>12} {:>7} {:>18} {:>7}",
        fit("all", 24),
        count(figures.customers),
        "",
        thousands(figures.revenue),
        ""
    ));
    for boundary in &figures.pareto.boundaries {
        out.line(&format!(
            "  Pareto: the end of {} is at {} of customers and {} of revenue",
            boundary.tier,
            percent(boundary.customer_share),
            percent(boundary.revenue_share)
        ));
    }

    out.line("");
    out.heading("RFM grid: customers by frequency (rows) and recency (columns)");
    out.line(&format!(
        "  {:<6}{}",
        "",
        (1..=5)
            .map(|r| format!("{:>10}", format!("R{r}")))
            .collect::<String>()
    ));
    for f in (1..=5_u8).rev() {
        let cells: String = figures
            .rfm
            .cells
            .iter()
            .filter(|cell| cell.f == f)
            .map(|cell| format!("{:>10}", count(cell.customers)))
            .collect();
        out.line(&format!("  {:<6}{cells}", format!("F{f}")));
    }
    out.line(&format!(
        "  {} customers never ordered",
        count(figures.rfm.never_ordered)
    ));

    out.line("");
    match &figures.moves.previous {
        Some(previous) => out.heading(&format!(
            "Tier moves since {} (rows: before, columns: after)",
            format_time(previous.at)
        )),
        None => out.heading("Tier moves: the first assessment (every tier is new)"),
    }
    let columns = figures.moves.to.len().min(6);
    out.line(&format!(
        "  {}{}",
        fit("", 10),
        figures.moves.to[..columns]
            .iter()
            .map(|to| format!("{:>11}", fit(to, 10).trim_end()))
            .collect::<String>()
    ));
    for (from, counts) in figures.moves.from.iter().zip(&figures.moves.counts) {
        out.line(&format!(
            "  {}{}",
            fit(from, 10),
            counts[..columns]
                .iter()
                .map(|n| format!("{:>11}", count(*n)))
                .collect::<String>()
        ));
    }
    if let Some(last) = figures.trend.last() {
        out.line(&format!(
            "  latest assessment: {} up, {} down, {} new",
            out.style("32", &count(last.up)),
            out.style("31", &count(last.down)),
            count(last.new)
        ));
    }

    out.line("");
    out.heading("Follow-up work per tier");
    if figures.work_by_tier.is_empty() {
        out.line("  no follow-ups recorded yet");
    } else {
        out.line(&format!(
            "  {} {:>8} {:>8} {:>9} {:>8} {:>8} {:>8} {:>8}",
            fit("tier", 10),
            "done",
            "due",
            "upcoming",
            "skipped",
            "tasks",
            "overdue",
            "done"
        ));
        for work in &figures.work_by_tier {
            let overdue = format!("{:>8}", count(work.tasks_overdue));
            out.line(&format!(
                "  {} {:>8} {:>8} {:>9} {:>8} {:>8} {} {:>8}",
                fit(work.tier.as_deref().unwrap_or("no tier"), 10),
                count(work.done),
                count(work.due),
                count(work.upcoming),
                count(work.skipped),
                count(work.tasks_open),
                if work.tasks_overdue > 0 {
                    out.style("31", &overdue)
                } else {
                    overdue
                },
                count(work.tasks_done)
            ));
        }
    }
    if !figures.work_by_owner.is_empty() {
        out.line("");
        out.heading("Tasks per owner");
        out.line(&format!(
            "  {} {:>10} {:>10} {:>10}",
            fit("owner", 24),
            "open",
            "overdue",
            "done"
        ));
        let mut ranked: Vec<_> = figures.work_by_owner.iter().collect();
        ranked.sort_by_key(|w| (std::cmp::Reverse((w.overdue, w.open)), &w.assignee));
        for work in ranked.iter().take(LISTED) {
            let overdue = format!("{:>10}", count(work.overdue));
            out.line(&format!(
                "  {} {:>10} {} {:>10}",
                fit(&work.assignee, 24),
                count(work.open),
                if work.overdue > 0 {
                    out.style("31", &overdue)
                } else {
                    overdue
                },
                count(work.done)
            ));
        }
        more(out, ranked.len(), "owners", "the most overdue");
    }
    if !figures.managers.is_empty() {
        out.line("");
        out.heading("Managers: customers owned against capacity");
        out.line(&format!(
            "  {} {:>10} {:>10} {:>8} {:>10}",
            fit("manager", 30),
            "customers",
            "capacity",
            "load",
            "open tasks"
        ));
        let load_of = |m: &&ManagerLoad| match m.capacity {
            Some(capacity) if capacity > 0 => m.customers as f64 / capacity as f64,
            Some(_) => f64::INFINITY,
            None => -1.0 / (1.0 + m.customers as f64),
        };
        let mut ranked: Vec<&ManagerLoad> = figures.managers.iter().collect();
        ranked.sort_by(|a, b| load_of(b).total_cmp(&load_of(a)));
        for manager in ranked.iter().take(LISTED) {
            let load = manager
                .capacity
                .filter(|c| *c > 0)
                .map_or("–".to_owned(), |c| {
                    percent(manager.customers as f64 / c as f64)
                });
            let load = format!("{load:>8}");
            let over = manager.capacity.is_some_and(|c| manager.customers > c);
            out.line(&format!(
                "  {} {:>10} {:>10} {} {:>10}",
                fit(&manager.name, 30),
                count(manager.customers),
                manager.capacity.map_or("no limit".to_owned(), count),
                if over { out.style("31", &load) } else { load },
                count(manager.open_tasks)
            ));
        }
        more(out, ranked.len(), "managers", "the most loaded");
    }

    out.line("");
    out.heading("E-mails per rule");
    let rules = &figures.emails;
    if rules.is_empty() {
        out.line("  no e-mails queued yet");
    } else {
        out.line(&format!(
            "  {} {:>8} {:>8} {:>7} {:>7} {:>7} {:>7} {:>7}",
            fit("rule", 20),
            "sent",
            "deferred",
            "failed",
            "suppr.",
            "unknown",
            "waiting",
            "cancel."
        ));
        for rule in rules {
            out.line(&format!(
                "  {} {:>8} {:>8} {:>7} {:>7} {:>7} {:>7} {:>7}",
                fit(&rule.rule_id, 20),
                count(rule.sent),
                count(rule.deferred),
                count(rule.failed),
                count(rule.suppressed),
                count(rule.unknown),
                count(rule.pending),
                count(rule.cancelled)
            ));
        }
        let stale: u64 = rules.iter().map(|rule| rule.stale).sum();
        let untrue: u64 = rules.iter().map(|rule| rule.no_longer_true).sum();
        if stale + untrue > 0 {
            out.line(&format!(
                "  cancelled when they were to be sent: {} stale (past max_delay), {} no longer true",
                count(stale),
                count(untrue)
            ));
        }
    }
    if !figures.sms.is_empty() {
        out.line("");
        out.heading("SMS per rule");
        for rule in &figures.sms {
            out.line(&format!(
                "  {} {:>8} sent {:>7} failed {:>7} suppr. {:>7} unknown {:>7} waiting {:>7} cancel.",
                fit(&rule.rule_id, 20),
                count(rule.sent),
                count(rule.failed),
                count(rule.suppressed),
                count(rule.unknown),
                count(rule.pending + rule.deferred),
                count(rule.cancelled)
            ));
        }
    }
    out.line(&format!(
        "  unsubscribed addresses: {}",
        count(figures.unsubscribes)
    ));
    print_reputation(figures, out);
    print_coupons(figures, out);

    if let Some(tiercare_scheduler::growth::HoldoutOutcome::Checked(check)) =
        &figures.growth_holdout
    {
        out.line("");
        out.heading(&format!(
            "Growth model: purchase days in the last {} days, per customer, by repeat purchase days before",
            check.days
        ));
        for row in &check.rows {
            out.line(&format!(
                "  {:>3}{} {:>10} customers  actual {:>6.2}  predicted {:>6.2}",
                row.frequency,
                if row.or_more { "+" } else { " " },
                count(row.customers),
                row.actual,
                row.predicted
            ));
        }
        if let Some(last) = check.tracking.last() {
            out.line(&format!(
                "  cumulative repeat purchase days by week {} (calibration: weeks 1-{}): actual {}, expected {:.0}",
                last.week,
                check.calibration_weeks,
                count(last.actual),
                last.expected
            ));
        }
    }
    print_surveys(figures, out);
    if let Some(care) = &figures.care {
        out.line("");
        out.heading(&format!(
            "The {} care programme (a plain comparison, not a causal claim)",
            care.tier
        ));
        for (label, total, up) in [
            ("received e-mails", care.emailed, care.emailed_moved_up),
            ("no e-mails", care.not_emailed, care.not_emailed_moved_up),
        ] {
            let share = if total > 0 {
                up as f64 / total as f64
            } else {
                0.0
            };
            out.line(&format!(
                "  {} {:>10} customers {:>10} moved up {:>7}",
                fit(label, 18),
                count(total),
                count(up),
                percent(share)
            ));
        }
    }
}

/// Survey response rates and scores per survey and tier.
fn print_surveys(figures: &Figures, out: &Output) {
    if figures.surveys.is_empty() {
        return;
    }
    out.line("");
    out.heading("Satisfaction surveys (NPS: promoters - detractors; CSAT: mean answer)");
    for s in &figures.surveys {
        let score = match (s.nps(), s.csat_mean()) {
            (Some(nps), _) => format!("NPS {nps:+.0}"),
            (_, Some(mean)) => format!("CSAT {mean:.2}"),
            _ => "-".to_owned(),
        };
        out.line(&format!(
            "  {} {} {:>8} sent {:>8} answered {:>7}  {}",
            fit(&s.survey, 14),
            fit(s.tier.as_deref().unwrap_or("(no tier)"), 10),
            count(s.sent),
            count(s.answered),
            s.response_rate().map_or_else(|| "-".to_owned(), percent),
            score
        ));
    }
}

/// Coupons issued and redeemed per rule and tier, with the redeemers' revenue around issue.
fn print_coupons(figures: &Figures, out: &Output) {
    if figures.coupons.is_empty() {
        return;
    }
    let days = tiercare_scheduler::report::COUPON_REVENUE_DAYS;
    out.line("");
    out.heading(&format!(
        "Coupons per rule and tier (redeemers' revenue {days} days before and after issue; not a causal claim)"
    ));
    out.line(&format!(
        "  {} {} {:>8} {:>9} {:>7} {:>14} {:>14}",
        fit("rule", 22),
        fit("tier", 6),
        "issued",
        "redeemed",
        "rate",
        "before",
        "after"
    ));
    for row in &figures.coupons {
        let rate = if row.issued > 0 {
            row.redeemed as f64 / row.issued as f64
        } else {
            0.0
        };
        out.line(&format!(
            "  {} {} {:>8} {:>9} {:>7} {:>14.2} {:>14.2}",
            fit(
                if row.rule_id.is_empty() {
                    "-"
                } else {
                    &row.rule_id
                },
                22
            ),
            fit(if row.tier.is_empty() { "-" } else { &row.tier }, 6),
            count(row.issued),
            count(row.redeemed),
            percent(rate),
            row.redeemers_revenue_before,
            row.redeemers_revenue_after
        ));
    }
}

/// Bounce and complaint rates per follow-up rule and per day over the last 30 days.
fn print_reputation(figures: &Figures, out: &Output) {
    let rows = &figures.reputation;
    if rows.is_empty() {
        return;
    }
    out.line("");
    out.heading("Sending reputation, last 30 days (hard bounces and complaints per send)");
    let rate = |part: u64, sends: u64| {
        if sends == 0 {
            "-".to_owned()
        } else {
            format!("{:.1}%", part as f64 * 100.0 / sends as f64)
        }
    };
    let mut by_rule: std::collections::BTreeMap<&str, (u64, u64, u64)> = Default::default();
    let mut by_day: std::collections::BTreeMap<&str, (u64, u64, u64)> = Default::default();
    for row in rows {
        for entry in [
            by_rule.entry(row.rule_id.as_str()).or_default(),
            by_day.entry(row.day.as_str()).or_default(),
        ] {
            entry.0 += row.sends;
            entry.1 += row.hard_bounces;
            entry.2 += row.complaints;
        }
    }
    for (label, groups) in [("rule", &by_rule), ("day", &by_day)] {
        out.line(&format!(
            "  {} {:>8} {:>13} {:>11}",
            fit(label, 20),
            "sends",
            "hard bounces",
            "complaints"
        ));
        for (key, (sends, bounces, complaints)) in groups.iter() {
            out.line(&format!(
                "  {} {:>8} {:>13} {:>11}",
                fit(key, 20),
                count(*sends),
                rate(*bounces, *sends),
                rate(*complaints, *sends)
            ));
        }
    }
}
