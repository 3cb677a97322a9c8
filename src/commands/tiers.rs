//! `assess`, `explain`, `pin` and `unpin`: tiers in the database.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::ExitCode;

use anyhow::bail;
use tiercare_engine::render_all;
use tiercare_scheduler::assess::{
    AssessError, AssessOptions, AssessReport, RuleSafety, RuleSource, assess_with,
    explain as run_explain, format_time,
};
use tiercare_scheduler::workspace::Workspace;

use crate::cli::{AssessArgs, ExplainArgs, PinArgs, UnpinArgs};
use crate::format::{money, percent, thousands};
use crate::output::Output;

// The time helpers other commands import from here live in the scheduler's `time` module.
pub(crate) use tiercare_scheduler::time::{now, parse_time, time_or};

/// Loads the workspace's rules, printing every problem when they do not compile.
pub(crate) fn load_rules(
    workspace: &Workspace,
    out: &Output,
) -> anyhow::Result<tiercare_engine::RuleSet> {
    let source = RuleSource::read(&workspace.rules_dir(), Path::new("rules"))?;
    match source.load() {
        Ok(loaded) => Ok(loaded.rules),
        Err(AssessError::Rules { diagnostics }) => {
            out.diagnostics(&render_all(&diagnostics, out.color_err()));
            bail!("the rules have errors; nothing was assessed (run `tiercare check`)")
        }
        Err(err) => Err(err.into()),
    }
}

pub fn assess(args: AssessArgs, workspace_dir: &Path, out: &Output) -> anyhow::Result<ExitCode> {
    let workspace = Workspace::open(workspace_dir)?;
    let rules = load_rules(&workspace, out)?;
    let now = now();
    let at = time_or(args.at.as_deref(), workspace.config().timezone, now)?;
    let reader = workspace.open_store()?;
    let mut writer = if args.dry_run {
        None
    } else {
        Some(workspace.open_store_for_writing()?)
    };
    let report = assess_with(
        &reader,
        writer.as_mut(),
        &rules,
        AssessOptions {
            at,
            now,
            dry_run: args.dry_run,
            growth: workspace.config().growth_settings(),
        },
        RuleSafety::from_config(&workspace.config().rules),
    )?;
    if args.json {
        out.json(&report)?;
    } else {
        print_assessment(&report, out);
    }
    Ok(if report.rule_errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

pub(crate) fn print_assessment(report: &AssessReport, out: &Output) {
    out.heading(&format!(
        "assessed {} customers at {} · rules {} · window {} · {:.1} s",
        thousands(report.customers as f64),
        format_time(report.at),
        report.ruleset_version,
        report.window,
        report.elapsed_ms as f64 / 1000.0
    ));
    out.line(&format!(
        "  {:<8} {:>12} {:>7} {:>16} {:>7}",
        "tier", "customers", "share", "revenue", "share"
    ));
    for tier in &report.tiers {
        out.line(&format!(
            "  {:<8} {:>12} {:>7} {:>16} {:>7}",
            tier.tier,
            thousands(tier.customers as f64),
            percent(tier.customer_share),
            money(tier.revenue),
            percent(tier.revenue_share)
        ));
    }
    if report.moves.is_empty() {
        out.line("  no tier changes");
    } else {
        out.line(&format!(
            "  moves ({} customers changed tier; rows: before, columns: now)",
            thousands(report.changed as f64)
        ));
        let to: Vec<&str> = report.tiers.iter().map(|t| t.tier.as_str()).collect();
        let from: BTreeSet<&str> = report.moves.iter().map(|m| m.from.as_str()).collect();
        let mut header = format!("  {:<8}", "");
        for column in &to {
            header.push_str(&format!(" {column:>9}"));
        }
        out.line(&header);
        for row in from {
            let mut line = format!("  {row:<8}");
            for column in &to {
                let n = report
                    .moves
                    .iter()
                    .find(|m| m.from == row && m.to == *column)
                    .map_or(0, |m| m.customers);
                line.push_str(&format!(
                    " {:>9}",
                    if n == 0 {
                        "·".to_owned()
                    } else {
                        thousands(n as f64)
                    }
                ));
            }
            out.line(&line);
        }
    }
    for set in &report.segments {
        let counts: Vec<String> = set
            .counts
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(segment, n)| format!("{segment} {}", thousands(*n as f64)))
            .collect();
        out.line(&format!("  segments {}: {}", set.set, counts.join(" · ")));
    }
    if report.pinned > 0 || report.downgrades_pending > 0 {
        out.line(&format!(
            "  pinned {} · downgrades held by hysteresis {}",
            thousands(report.pinned as f64),
            thousands(report.downgrades_pending as f64)
        ));
    }
    for failure in &report.rule_errors {
        out.warn(&format!(
            "rule {} ({}) failed for {} customer(s), e.g. {}: {}",
            failure.rule,
            failure.location,
            thousands(failure.customers as f64),
            failure.example_customer,
            failure.message
        ));
    }
    if report.failed_customers > 0 {
        out.warn(&format!(
            "{} customer(s) kept their tier: a rule failed for them, so nothing was changed for them",
            thousands(report.failed_customers as f64)
        ));
    }
    super::growth::print_fit(report.growth.as_ref(), out);
    if report.dry_run {
        out.line("dry run: nothing was written");
    }
}

pub fn explain(args: ExplainArgs, workspace_dir: &Path, out: &Output) -> anyhow::Result<ExitCode> {
    let workspace = Workspace::open(workspace_dir)?;
    let rules = load_rules(&workspace, out)?;
    let now = now();
    let at = time_or(args.at.as_deref(), workspace.config().timezone, now)?;
    let store = workspace.open_store()?;
    let explained = run_explain(
        &store,
        &rules,
        &args.customer,
        at,
        now,
        workspace.config().growth_settings(),
    )?;
    if args.json {
        out.json(&explained)?;
        return Ok(ExitCode::SUCCESS);
    }
    out.heading(&format!(
        "customer {} at {}",
        explained.customer_id,
        format_time(explained.at)
    ));
    out.line(explained.explanation.render().trim_end());
    super::growth::print_customer(&explained, out);
    if !explained.pins.is_empty() {
        out.heading("pins");
        for pin in &explained.pins {
            out.line(&format!(
                "  {} by {} on {}{}{}: {}",
                pin.tier,
                pin.pinned_by,
                format_time(pin.created_at),
                pin.until
                    .map(|u| format!(" until {}", format_time(u)))
                    .unwrap_or_default(),
                pin.removed_at
                    .map(|r| format!(" (removed {})", format_time(r)))
                    .unwrap_or_default(),
                pin.reason
            ));
        }
    }
    out.heading("tier history");
    if explained.history.is_empty() {
        out.line("  never assessed: run `tiercare assess`");
    }
    for change in &explained.history {
        out.line(&format!(
            "  {}  {} -> {}  {}",
            format_time(change.at),
            change.from_tier.as_deref().unwrap_or("(new)"),
            change.to_tier,
            change.reason
        ));
    }
    Ok(ExitCode::SUCCESS)
}

pub fn pin(args: PinArgs, workspace_dir: &Path, out: &Output) -> anyhow::Result<ExitCode> {
    let workspace = Workspace::open(workspace_dir)?;
    let rules = load_rules(&workspace, out)?;
    if rules.tier_rank(&args.tier).is_none() {
        let tiers: Vec<String> = rules.tiers().map(|t| t.id.clone()).collect();
        bail!(
            "unknown tier `{}`: the rules define {}",
            args.tier,
            tiers.join(", ")
        );
    }
    let until = args
        .until
        .as_deref()
        .map(|text| parse_time(text, workspace.config().timezone))
        .transpose()?;
    let by = args
        .by
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "unknown".to_owned());
    let mut store = workspace.open_store_for_writing()?;
    let pin = store.pin_tier(&args.customer, &args.tier, &args.reason, &by, until, now())?;
    out.line(&format!(
        "pinned {} to tier {}{}: takes effect at the next assessment",
        args.customer,
        pin.tier,
        pin.until
            .map(|u| format!(" until {}", format_time(u)))
            .unwrap_or_default()
    ));
    Ok(ExitCode::SUCCESS)
}

pub fn unpin(args: UnpinArgs, workspace_dir: &Path, out: &Output) -> anyhow::Result<ExitCode> {
    let workspace = Workspace::open(workspace_dir)?;
    let mut store = workspace.open_store_for_writing()?;
    match store.unpin_tier(&args.customer, now())? {
        Some(pin) => out.line(&format!(
            "removed the pin of {} to tier {}: the rules decide at the next assessment",
            args.customer, pin.tier
        )),
        None => out.line(&format!("{} has no active pin", args.customer)),
    }
    Ok(ExitCode::SUCCESS)
}
