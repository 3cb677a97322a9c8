//! One function per command: open what it needs, call the crates, print.

mod coupons;
mod customer;
mod customers;
mod daemon;
mod doctor;
mod followups;
mod growth;
mod inbound;
mod mail;
mod managers;
mod outbox;
mod owners;
mod pool;
mod preview;
mod report;
mod rules;
mod serve;
mod shell;
mod tiers;
mod users;
mod webhooks;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use tiercare_engine::RecordKind;
use tiercare_scheduler::demo::{DemoSpec, write_demo};
use tiercare_scheduler::ingest::{
    FileFormat, ImportError, ImportReport, ImportRequest, import_file_at,
};
use tiercare_scheduler::workspace::{Workspace, WorkspaceError};

use crate::cli::{Cli, Command, DemoArgs, Format, ImportArgs, InitArgs, Kind};
use crate::output::{Output, thousands};

/// Runs the command; `Ok` carries the exit code for outcomes that are not errors.
pub fn run(cli: Cli, out: &Output) -> anyhow::Result<ExitCode> {
    let workspace_dir = cli.workspace.unwrap_or_else(|| PathBuf::from("."));
    // `--json` times are in the workspace's zone.
    if let Ok(workspace) = Workspace::open(&workspace_dir) {
        out.set_timezone(workspace.config().timezone);
    }
    match cli.command {
        Command::Init(args) => init(args, &workspace_dir, out),
        Command::Import(args) => import(args, &workspace_dir, out),
        Command::Demo(args) => demo(args, out),
        Command::Check(args) => rules::check(args, &workspace_dir, out),
        Command::Test(args) => rules::test(args, &workspace_dir, out),
        Command::Assess(args) => tiers::assess(args, &workspace_dir, out),
        Command::Explain(args) => tiers::explain(args, &workspace_dir, out),
        Command::Pin(args) => tiers::pin(args, &workspace_dir, out),
        Command::Unpin(args) => tiers::unpin(args, &workspace_dir, out),
        Command::Schema => rules::schema(out),
        Command::Functions(args) => rules::functions(args, out),
        Command::Plan(args) => followups::plan(args, &workspace_dir, out),
        Command::Followups(command) => followups::followups(command, &workspace_dir, out),
        Command::Tasks(args) => followups::tasks(args, &workspace_dir, out),
        Command::Run(args) => daemon::run(args, &workspace_dir),
        Command::Serve(args) => serve::serve(&args, &workspace_dir, out),
        Command::Status(args) => daemon::status(args, &workspace_dir, out),
        Command::Report(args) => report::report(args, &workspace_dir, out),
        Command::Preview(args) => preview::preview(args, &workspace_dir, out),
        Command::Customer(command) => customer::customer(command, &workspace_dir, out),
        Command::Customers(args) => customers::customers(args, &workspace_dir, out),
        Command::Send(args) => outbox::send(args, &workspace_dir, out),
        Command::Outbox(args) => outbox::outbox(args, &workspace_dir, out),
        Command::Mail(command) => mail::mail(command, &workspace_dir, out),
        Command::Unsubscribe(args) => outbox::unsubscribe(args, &workspace_dir, out),
        Command::Inbound(args) => inbound::inbound(args, &workspace_dir, out),
        Command::Webhooks(args) => webhooks::webhooks(args, &workspace_dir, out),
        Command::Owners(args) => owners::owners(args, &workspace_dir, out),
        Command::Coupons(args) => coupons::coupons(args, &workspace_dir, out),
        Command::Users(command) => users::users(command, &workspace_dir, out),
        Command::Managers(command) => managers::managers(command, &workspace_dir, out),
        Command::Pool(args) => pool::pool(args, &workspace_dir, out),
        Command::Completions(args) => shell::completions(&args, out),
        Command::Man(args) => shell::man(&args, out),
        Command::Backup(args) => doctor::backup(args, &workspace_dir, out),
        Command::Doctor(args) => doctor::doctor(args, &workspace_dir, out),
    }
}

fn parse_timezone(zone: &str) -> anyhow::Result<chrono_tz::Tz> {
    zone.parse().map_err(|_| {
        anyhow::anyhow!(
            "unknown time zone `{zone}`: use an IANA name such as Europe/London or Asia/Shanghai"
        )
    })
}

fn init(args: InitArgs, workspace_dir: &Path, out: &Output) -> anyhow::Result<ExitCode> {
    let dir = args.dir.as_deref().unwrap_or(workspace_dir);
    let timezone = parse_timezone(&args.timezone)?;
    let (_, report) = Workspace::init(dir, timezone)?;
    if args.json {
        out.json(&report)?;
    } else {
        out.heading(&format!(
            "created a tiercare workspace in {}",
            dir.display()
        ));
        for file in &report.files {
            out.line(&format!("  {}", file.display()));
        }
        out.line(&format!(
            "next: tiercare --workspace {} import customers customers.csv",
            dir.display()
        ));
    }
    Ok(ExitCode::SUCCESS)
}

fn record_kind(kind: Kind) -> RecordKind {
    match kind {
        Kind::Customers => RecordKind::Customers,
        Kind::Orders => RecordKind::Orders,
        Kind::Interactions => RecordKind::Interactions,
        Kind::Complaints => RecordKind::Complaints,
        Kind::Feedback => RecordKind::Feedback,
        Kind::Managers => RecordKind::Managers,
    }
}

/// Runs one import with a progress bar; invalid mappings are printed as diagnostics.
fn run_import(
    workspace: &Workspace,
    store: &mut tiercare_store::Store,
    request: &ImportRequest<'_>,
    at: i64,
    out: &Output,
) -> anyhow::Result<ImportReport> {
    let bar = out.progress_bar(&request.kind.to_string(), 0);
    let earning = workspace.config().points.earning();
    let result = import_file_at(store, request, at, earning, &mut |progress| {
        bar.set_length(progress.total);
        bar.set_position(progress.bytes);
        bar.set_message(format!("{} rows", thousands(progress.rows as f64)));
    });
    bar.finish_and_clear();
    match result {
        Ok(report) => Ok(report),
        Err(ImportError::Mapping { diagnostics }) => {
            out.diagnostics(&tiercare_engine::render_all(&diagnostics, out.color_err()));
            bail!(
                "the mapping has {} problem(s); nothing was imported into {}",
                diagnostics.len(),
                workspace.database_path().display()
            )
        }
        Err(err) => Err(err.into()),
    }
}

fn import(args: ImportArgs, workspace_dir: &Path, out: &Output) -> anyhow::Result<ExitCode> {
    let workspace = Workspace::open(workspace_dir)?;
    let mapping_text = args
        .mapping
        .as_deref()
        .map(|path| {
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the mapping file {}", path.display()))
        })
        .transpose()?;
    let mut store = workspace.open_store_for_writing()?;
    let request = ImportRequest {
        kind: record_kind(args.kind),
        file: &args.file,
        mapping: args.mapping.as_deref().zip(mapping_text.as_deref()),
        strict: args.strict,
        format: args.format.map(|f| match f {
            Format::Csv => FileFormat::Csv,
            Format::Jsonl => FileFormat::Jsonl,
        }),
        timezone: workspace.config().timezone,
        default_region: workspace.config().import.default_region.as_deref(),
    };
    let report = run_import(
        &workspace,
        &mut store,
        &request,
        tiercare_scheduler::time::now(),
        out,
    )?;
    if args.json {
        out.json(&report)?;
    } else {
        out.import_report(&report);
    }
    Ok(if report.rejected > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn demo(args: DemoArgs, out: &Output) -> anyhow::Result<ExitCode> {
    let dir = &args.dir;
    let workspace = match Workspace::open(dir) {
        Ok(workspace) => workspace,
        Err(WorkspaceError::NotFound { .. } | WorkspaceError::NotAWorkspace { .. }) => {
            Workspace::init(dir, chrono_tz::Europe::London)?.0
        }
        Err(err) => return Err(err.into()),
    };
    out.set_timezone(workspace.config().timezone);
    let end = match args.end {
        Some(date) => date
            .and_hms_opt(23, 59, 59)
            .context("invalid --end date")?
            .and_utc(),
        // The end of the day before the simulated days, which end where today begins (UTC):
        // deterministic for the day, so a second run the same day changes nothing.
        None => {
            let today = chrono::Utc::now().date_naive();
            (today - chrono::Duration::days(i64::from(args.days) + 1))
                .and_hms_opt(23, 59, 59)
                .context("invalid default --end date")?
                .and_utc()
        }
    };
    let spec = DemoSpec {
        customers: args.customers,
        seed: args.seed,
        end,
        ..DemoSpec::default()
    };
    let data_dir = dir.join("data");
    if args.quiet {
        out.set_quiet();
    }
    let bar = out.progress_bar("generating", args.customers);
    let (files, stats) = write_demo(&data_dir, &spec, &mut |done| bar.set_position(done))?;
    bar.finish_and_clear();
    if !args.json {
        out.heading(&format!(
            "generated {} customers, {} orders, {} interactions, {} complaints, {} feedback in {}",
            thousands(stats.customers as f64),
            thousands(stats.orders as f64),
            thousands(stats.interactions as f64),
            thousands(stats.complaints as f64),
            thousands(stats.feedback as f64),
            data_dir.display()
        ));
    }
    if args.no_import {
        return Ok(ExitCode::SUCCESS);
    }
    let mut store = workspace.open_store_for_writing()?;
    let mut reports = Vec::new();
    for (kind, file) in files.in_import_order() {
        let request = ImportRequest {
            kind,
            file,
            mapping: None,
            strict: true,
            format: Some(FileFormat::Csv),
            timezone: workspace.config().timezone,
            default_region: workspace.config().import.default_region.as_deref(),
        };
        // As of the end of the history, not the wall clock: the rows (and the owner audit the
        // pool and the digests read) are the same whenever the demo runs that day.
        let report = run_import(&workspace, &mut store, &request, end.timestamp(), out)?;
        if !args.json {
            out.import_report(&report);
        }
        reports.push(report);
    }
    // Then tier everyone by the workspace's rules, as of the end of the generated history;
    // unless an earlier run (and its simulated days) assessed it later than that already: going
    // back in time would undo those tiers.
    let rules = tiers::load_rules(&workspace, out)?;
    let later = store
        .last_assessment()?
        .filter(|last| last.at > end.timestamp());
    let assessment = match later {
        Some(last) => {
            if !args.json {
                out.line(&format!(
                    "already assessed as of {} by an earlier run: not assessing again as of --end",
                    tiercare_scheduler::assess::format_time(last.at)
                ));
            }
            None
        }
        None => {
            let mut writer = workspace.open_store()?;
            let assessment = tiercare_scheduler::assess::assess(
                &store,
                Some(&mut writer),
                &rules,
                tiercare_scheduler::assess::AssessOptions {
                    at: end.timestamp(),
                    // As of --end too: the same tiers and records whenever the demo runs.
                    now: end.timestamp(),
                    dry_run: false,
                    growth: workspace.config().growth_settings(),
                },
            )?;
            if !args.json {
                tiers::print_assessment(&assessment, out);
            }
            Some(assessment)
        }
    };
    let simulated = simulate_days(&workspace, end.timestamp(), args.days, args.json, out)?;
    if args.json {
        out.json(&serde_json::json!({
            "imports": reports,
            "assessment": assessment,
            "simulated": simulated,
        }))?;
    } else {
        out.line(&format!(
            "next: tiercare --workspace {dir} explain {first} · tiercare --workspace {dir} assess --dry-run",
            dir = dir.display(),
            first = "C0000001",
        ));
    }
    Ok(ExitCode::SUCCESS)
}

/// What `demo --days` did in simulated time.
#[derive(Debug, Default, serde::Serialize)]
struct Simulated {
    days: u32,
    passes: u64,
    reassessments: u64,
    followups: u64,
    emails_sent: u64,
    emails_deferred: u64,
    errors: Vec<String>,
}

/// Runs the daemon for `days` days after `from` in simulated time, a pass every six hours.
fn simulate_days(
    workspace: &Workspace,
    from: i64,
    days: u32,
    json: bool,
    out: &Output,
) -> anyhow::Result<Simulated> {
    let mut simulated = Simulated {
        days,
        ..Simulated::default()
    };
    if days == 0 {
        return Ok(simulated);
    }
    const STEP: i64 = 6 * 3_600;
    let until = from + i64::from(days) * 86_400;
    // A day counter on stderr ("simulating … day 12/30"), hidden when stderr is not a terminal
    // or with --quiet.
    let bar = out.progress_bar("simulating", u64::from(days));
    tiercare_scheduler::daemon::simulate(workspace.clone(), from, until, STEP, &mut |pass| {
        let day = ((pass.at - from) / 86_400 + 1).clamp(1, i64::from(days));
        bar.set_position(u64::try_from(day).unwrap_or(0));
        bar.set_message(format!("day {day}/{days}"));
        simulated.passes += 1;
        simulated.reassessments += u64::from(pass.assessed_slot.is_some());
        simulated.followups += pass.followups_new;
        simulated.emails_sent += pass.sent;
        simulated.emails_deferred += pass.deferred;
        simulated.errors.extend(pass.errors.iter().cloned());
    })?;
    bar.finish_and_clear();
    if !json {
        out.heading(&format!(
            "ran the daemon for {days} simulated days: {} reassessments, {} follow-ups, {} emails \
             sent to {}",
            simulated.reassessments,
            thousands(simulated.followups as f64),
            thousands(simulated.emails_sent as f64),
            mail_destination(workspace),
        ));
        for error in &simulated.errors {
            out.warn(error);
        }
    }
    Ok(simulated)
}

/// Where the workspace's mail goes, in words.
fn mail_destination(workspace: &Workspace) -> String {
    let mail = &workspace.config().mail;
    match mail.transport {
        tiercare_scheduler::config::Transport::Folder => {
            workspace.root().join(&mail.folder).display().to_string()
        }
        tiercare_scheduler::config::Transport::Smtp => mail
            .smtp
            .as_ref()
            .map_or_else(|| "SMTP".to_owned(), |smtp| format!("SMTP {}", smtp.host)),
    }
}
