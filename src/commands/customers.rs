//! `customers`: list or export customers, filtered, sorted and paged.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, bail};
use tiercare_scheduler::customers::{
    ListOptions, csv_record, json_record, list_customers, write_csv,
};
use tiercare_scheduler::workspace::Workspace;
use tiercare_store::CustomerQuery;

use crate::cli::CustomersArgs;
use crate::commands::tiers::{now, time_or};
use crate::output::Output;

/// How many customers the table shows without --limit.
const TABLE_LIMIT: usize = 50;

const DAY: i64 = 86_400;

pub fn customers(
    args: CustomersArgs,
    workspace_dir: &Path,
    out: &Output,
) -> anyhow::Result<ExitCode> {
    let workspace = Workspace::open(workspace_dir)?;
    let at = time_or(args.at.as_deref(), workspace.config().timezone, now())?;
    let attribute = match &args.attr {
        None => None,
        Some(pair) => {
            let (name, value) = pair.split_once('=').with_context(|| {
                format!("--attr `{pair}`: write NAME=VALUE, such as --attr plan=gold")
            })?;
            if name.trim().is_empty() {
                bail!("--attr `{pair}`: the attribute name is empty; write NAME=VALUE");
            }
            Some((name.trim().to_owned(), value.to_owned()))
        }
    };
    let table = !args.csv && !args.jsonl;
    let options = ListOptions {
        query: CustomerQuery {
            tiers: args.tier,
            segments: args.segment,
            owner: args.owner,
            not_contacted_since: args
                .not_contacted_for
                .map(|days| at - i64::from(days) * DAY),
            contacted_since: args.contacted_within.map(|days| at - i64::from(days) * DAY),
            attribute,
            search: args.search,
            scope_owner: None,
        },
        condition: args.condition,
        sort: args.sort,
        at,
        offset: args.offset,
        limit: args.limit.or(table.then_some(TABLE_LIMIT)),
    };
    let store = workspace.open_store()?;
    let list = list_customers(&workspace, &store, &options)?;
    if args.csv {
        let mut buffer = Vec::new();
        write_csv(&list.rows, true, &mut buffer)?;
        out.raw(&String::from_utf8(buffer)?);
    } else if args.jsonl {
        let mut text = String::new();
        for row in &list.rows {
            text.push_str(&serde_json::to_string(&json_record(row))?);
            text.push('\n');
        }
        out.raw(&text);
    } else {
        print_table(&list.rows, out);
        let after = list.after();
        let shown = list.rows.len();
        if after > 0 {
            out.line(&format!(
                "{shown} of {} matching customers shown; {after} more (use --offset {} or --limit)",
                list.matching,
                list.offset + shown
            ));
        } else {
            out.line(&format!("{} matching customers", list.matching));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_table(rows: &[tiercare_store::CustomerRow], out: &Output) {
    const COLUMNS: [usize; 6] = [0, 1, 3, 4, 5, 8];
    let header = ["id", "name", "tier", "segments", "owner", "revenue_total"];
    let records: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            let record = csv_record(row);
            COLUMNS.iter().map(|&i| record[i].clone()).collect()
        })
        .collect();
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            records
                .iter()
                .map(|record| record[i].chars().count())
                .chain([header[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: &[&str]| {
        cells
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    out.heading(&line(&header));
    for record in &records {
        let cells: Vec<&str> = record.iter().map(String::as_str).collect();
        out.line(&line(&cells));
    }
}
