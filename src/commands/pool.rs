//! `pool`: the public pool's listing and countdowns, and a reclaim pass.

use std::path::Path;
use std::process::ExitCode;

use tiercare_scheduler::assess::format_time;
use tiercare_scheduler::pool::{PoolListing, listing, reclaim};
use tiercare_scheduler::workspace::Workspace;

use crate::cli::{PoolArgs, PoolCommand};
use crate::commands::tiers::{load_rules, now, time_or};
use crate::format::{money, thousands};
use crate::output::Output;

pub fn pool(args: PoolArgs, workspace_dir: &Path, out: &Output) -> anyhow::Result<ExitCode> {
    let workspace = Workspace::open(workspace_dir)?;
    let at = time_or(args.at.as_deref(), workspace.config().timezone, now())?;
    let rules = load_rules(&workspace, out)?;
    match args.command.unwrap_or(PoolCommand::List) {
        PoolCommand::List => {
            let listing = listing(&workspace.open_store()?, &rules, at)?;
            if args.json {
                out.json(&listing)?;
            } else {
                print_listing(&listing, args.limit, out);
            }
        }
        PoolCommand::Reclaim => {
            let mut store = workspace.open_store_for_writing()?;
            let report = reclaim(&mut store, &rules, at)?;
            if args.json {
                out.json(&report)?;
            } else if !report.configured {
                out.line(NOT_CONFIGURED);
            } else {
                out.heading(&format!(
                    "pool at {}: {} owned customer(s) checked · {} owner warning(s) · {} reclaimed",
                    format_time(at),
                    thousands(report.read as f64),
                    thousands(report.warned as f64),
                    thousands(report.reclaimed as f64)
                ));
                if let Some(next) = report.next_due {
                    out.line(&format!(
                        "  next warning or reclaim due {}",
                        format_time(next)
                    ));
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

const NOT_CONFIGURED: &str = "the rules have no `pool` section: nothing is reclaimed (see rules/README.md, \"The public pool\")";

fn print_listing(listing: &PoolListing, limit: usize, out: &Output) {
    out.heading(&format!(
        "{} customer(s) in the pool (without an owner), most valuable first",
        thousands(listing.unowned.len() as f64)
    ));
    for customer in listing.unowned.iter().take(limit) {
        out.line(&format!(
            "  {:<16} {:<6} {:>14}",
            customer.external_id,
            customer.tier.as_deref().unwrap_or("-"),
            money(customer.value)
        ));
    }
    if listing.unowned.len() > limit {
        out.line(&format!(
            "  and {} more (--limit, or --json for all)",
            thousands((listing.unowned.len() - limit) as f64)
        ));
    }
    if !listing.configured {
        out.line(NOT_CONFIGURED);
        return;
    }
    out.heading(&format!(
        "{} owned customer(s) counting down to the pool, soonest first",
        thousands(listing.countdowns.len() as f64)
    ));
    out.line(&format!(
        "  {:<16} {:<10} {:<6} {:>9}  {:<20} {:<13} warned",
        "customer", "owner", "tier", "days left", "reclaim", "cause"
    ));
    for countdown in listing.countdowns.iter().take(limit) {
        out.line(&format!(
            "  {:<16} {:<10} {:<6} {:>9}  {:<20} {:<13} {}",
            countdown.customer,
            countdown.owner,
            countdown.tier,
            countdown.days_left,
            format_time(countdown.reclaim_at),
            countdown.cause,
            if countdown.warned { "yes" } else { "no" }
        ));
    }
    if listing.countdowns.len() > limit {
        out.line(&format!(
            "  and {} more (--limit, or --json for all)",
            thousands((listing.countdowns.len() - limit) as f64)
        ));
    }
}
