//! `coupons`: import single-use codes into a pool, and each pool's codes by state.

use std::path::Path;
use std::process::ExitCode;

use tiercare_scheduler::incentives::{import_codes, pool_reports};
use tiercare_scheduler::workspace::Workspace;

use crate::cli::{CouponsArgs, CouponsCommand};
use crate::commands::tiers::{load_rules, now, time_or};
use crate::output::{Output, thousands};

fn n(value: u64) -> String {
    thousands(value as f64)
}

pub fn coupons(args: CouponsArgs, workspace_dir: &Path, out: &Output) -> anyhow::Result<ExitCode> {
    let workspace = Workspace::open(workspace_dir)?;
    match args.command.unwrap_or(CouponsCommand::Status { at: None }) {
        CouponsCommand::Import { pool, file } => {
            let mut store = workspace.open_store_for_writing()?;
            let report = import_codes(&mut store, &pool, &file, now())?;
            if args.json {
                out.json(&report)?;
            } else {
                out.line(&format!(
                    "pool {pool}: {} codes added, {} already there, {} rejected",
                    n(report.added),
                    n(report.unchanged),
                    n(report.rejected.len() as u64)
                ));
                for (row, why) in &report.rejected {
                    out.warn(&format!("{}:{row}: {why}", file.display()));
                }
            }
            Ok(if report.rejected.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        CouponsCommand::Status { at } | CouponsCommand::List { at } => {
            let rules = load_rules(&workspace, out)?;
            let at = time_or(at.as_deref(), workspace.config().timezone, now())?;
            let store = workspace.open_store()?;
            let pools = pool_reports(&store, Some(&rules), at)?;
            if args.json {
                out.json(&pools)?;
            } else if pools.is_empty() {
                out.line(
                    "no coupon pools: declare them in the rules (`coupons:`) or import codes \
                     with `tiercare coupons import POOL FILE`",
                );
            } else {
                out.line(&format!(
                    "  {:<16} {:<10} {:>10} {:>10} {:>10} {:>10}",
                    "pool", "codes", "available", "issued", "redeemed", "expired"
                ));
                for pool in &pools {
                    let s = &pool.status;
                    let kind = match (pool.declared, pool.generated) {
                        (false, _) => "undeclared",
                        (true, true) => "generated",
                        (true, false) => "imported",
                    };
                    let available = if pool.generated {
                        "-".to_owned()
                    } else {
                        n(s.available)
                    };
                    out.line(&format!(
                        "  {:<16} {:<10} {:>10} {:>10} {:>10} {:>10}",
                        s.pool,
                        kind,
                        available,
                        n(s.issued),
                        n(s.redeemed),
                        n(s.expired)
                    ));
                }
                for pool in &pools {
                    if let Some(warning) = &pool.warning {
                        out.warn(warning);
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
