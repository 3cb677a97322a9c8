//! `backup` and `doctor`: a verified copy of the database, and what is wrong with one.

use std::path::Path;
use std::process::ExitCode;

use tiercare_scheduler::lock::{holder, lock_path};
use tiercare_scheduler::workspace::Workspace;
use tiercare_store::{Diagnosis, diagnose};

use crate::cli::{BackupArgs, DoctorArgs};
use crate::format::{duration, size, thousands};
use crate::output::Output;

pub fn backup(args: BackupArgs, workspace_dir: &Path, out: &Output) -> anyhow::Result<ExitCode> {
    let workspace = Workspace::open(workspace_dir)?;
    // Reading only: the copy is one read transaction, so a damaged page fails it (and nothing
    // is written to the source).
    let store = workspace.open_store()?;
    let report = store.backup_to(&args.file, args.force)?;
    if args.json {
        out.json(&report)?;
    } else {
        out.heading(&format!(
            "backed up {} to {}",
            workspace.database_path().display(),
            report.path.display()
        ));
        out.line(&format!(
            "  {} (schema version {}), copied in {}, verified (quick_check) in {}",
            size(report.bytes),
            report.schema_version,
            duration(report.copy_ms),
            duration(report.check_ms),
        ));
        out.line(&format!(
            "  check it any time with `tiercare doctor {}`",
            report.path.display()
        ));
    }
    Ok(ExitCode::SUCCESS)
}

/// The daemon's lock, as `doctor` reports it.
#[derive(Debug, serde::Serialize)]
struct DaemonLockState {
    lock_file: String,
    running: bool,
    pid: Option<u32>,
    error: Option<String>,
}

/// `doctor --json`.
#[derive(Debug, serde::Serialize)]
struct DoctorReport<'a> {
    healthy: bool,
    problems: Vec<String>,
    #[serde(flatten)]
    diagnosis: &'a Diagnosis,
    daemon: DaemonLockState,
    what_to_do: Vec<String>,
}

/// What is wrong, in plain words (empty when healthy).
fn problems(d: &Diagnosis) -> Vec<String> {
    let mut problems = Vec::new();
    if let Some(error) = &d.open_error {
        problems.push(format!(
            "the file cannot be opened or read as a database: {error}"
        ));
    }
    if d.open_error.is_none() && !d.is_tiercare {
        problems.push(format!(
            "the file is not a tiercare database (application id {:#x}, tiercare's is {:#x})",
            d.application_id.unwrap_or(0),
            tiercare_store::APPLICATION_ID
        ));
    }
    if let Some(version) = d.schema_version.filter(|v| *v > d.supported_version) {
        problems.push(format!(
            "schema version {version} is newer than this tiercare knows ({}): upgrade tiercare",
            d.supported_version
        ));
    }
    if let Some(integrity) = d.integrity.as_ref().filter(|i| !i.is_ok()) {
        problems.push(format!(
            "the file is damaged: pages of it do not hold what SQLite expects ({})",
            integrity.summary()
        ));
    }
    let unreadable: Vec<&str> = d
        .tables
        .iter()
        .filter(|t| t.error.is_some())
        .map(|t| t.name.as_str())
        .collect();
    if unreadable == ["sqlite_schema"] {
        problems.push(
            "the schema (the list of tables) cannot be read, so no table can be read through \
             tiercare"
                .to_owned(),
        );
    } else if !unreadable.is_empty() {
        problems.push(format!(
            "some rows of these tables cannot be read: {}",
            unreadable.join(", ")
        ));
    }
    problems
}

/// How to restore, for a database that is not healthy.
fn what_to_do(d: &Diagnosis, daemon_running: bool) -> Vec<String> {
    let db = d.path.display();
    let mut steps = Vec::new();
    if daemon_running {
        steps.push(
            "stop the daemon (`systemctl stop tiercare`, or Ctrl-C on `tiercare run`) and wait \
             for running commands to finish"
                .to_owned(),
        );
    } else {
        steps.push("make sure no tiercare command or daemon uses the database".to_owned());
    }
    steps.push(format!(
        "keep the damaged file for later: `mv {db} {db}.damaged` (and its -wal and -shm files \
         beside it, if any)"
    ));
    steps.push(format!(
        "restore your latest backup (made with `tiercare backup FILE`): `cp FILE {db}`, then \
         check it with `tiercare doctor`; what changed since that backup is lost (import your \
         latest files again and run `tiercare assess`)"
    ));
    steps.push(format!(
        "without a backup, as a last resort: `sqlite3 {db}.damaged .recover | sqlite3 {db}` \
         rescues the rows SQLite can still read (rows on damaged pages are lost), then check it \
         with `tiercare doctor`"
    ));
    steps
}

pub fn doctor(args: DoctorArgs, workspace_dir: &Path, out: &Output) -> anyhow::Result<ExitCode> {
    let path = match args.file {
        Some(file) => file,
        None => Workspace::open(workspace_dir)?.database_path(),
    };
    let diagnosis = diagnose(&path, args.full);
    let daemon = match holder(&path) {
        Ok(held) => DaemonLockState {
            lock_file: lock_path(&path).display().to_string(),
            running: held.is_some(),
            pid: held.flatten(),
            error: None,
        },
        Err(err) => DaemonLockState {
            lock_file: lock_path(&path).display().to_string(),
            running: false,
            pid: None,
            error: Some(err.to_string()),
        },
    };
    let problems = problems(&diagnosis);
    let healthy = problems.is_empty() && diagnosis.is_healthy();
    let what_to_do = if healthy {
        Vec::new()
    } else {
        what_to_do(&diagnosis, daemon.running)
    };
    if args.json {
        out.json(&DoctorReport {
            healthy,
            problems,
            diagnosis: &diagnosis,
            daemon,
            what_to_do,
        })?;
    } else {
        print(&diagnosis, &daemon, &problems, &what_to_do, healthy, out);
    }
    Ok(if healthy {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn print(
    d: &Diagnosis,
    daemon: &DaemonLockState,
    problems: &[String],
    what_to_do: &[String],
    healthy: bool,
    out: &Output,
) {
    out.heading(&format!(
        "database {}: {}",
        d.path.display(),
        if healthy { "healthy" } else { "NOT HEALTHY" }
    ));
    if let Some(bytes) = d.bytes {
        let pages = match (d.page_count, d.page_size) {
            (Some(count), Some(page)) if count > 0 => format!(
                " ({} pages of {page} bytes, {} unused)",
                thousands(count as f64),
                thousands(d.freelist_count.unwrap_or(0) as f64),
            ),
            _ => String::new(),
        };
        out.line(&format!("  size: {}{pages}", size(bytes)));
    }
    if d.open_error.is_none() {
        out.line(&format!(
            "  identity: {} (application id {:#x}), schema version {} (this tiercare knows up to {})",
            if d.is_tiercare {
                "a tiercare database"
            } else {
                "NOT a tiercare database"
            },
            d.application_id.unwrap_or(0),
            d.schema_version.unwrap_or(0),
            d.supported_version
        ));
    }
    out.line(&format!(
        "  WAL: {}",
        if d.wal.exists {
            format!(
                "{} ({} page(s) not yet copied into the database file)",
                size(d.wal.bytes),
                d.wal.frames
            )
        } else {
            "none (every change is in the database file)".to_owned()
        }
    ));
    out.line(&format!(
        "  daemon: {} (lock file {})",
        match (daemon.running, daemon.pid, &daemon.error) {
            (_, _, Some(error)) => format!("unknown: {error}"),
            (true, Some(pid), _) => format!("running, pid {pid}"),
            (true, None, _) => "running".to_owned(),
            (false, _, _) => "not running".to_owned(),
        },
        daemon.lock_file
    ));
    if let Some(integrity) = &d.integrity {
        out.line(&format!(
            "  integrity ({}, {}): {}",
            if integrity.full {
                "integrity_check"
            } else {
                "quick_check"
            },
            duration(integrity.elapsed_ms),
            if integrity.is_ok() {
                "no problems found".to_owned()
            } else {
                format!("{} problem(s)", integrity.problems.len())
            }
        ));
        for problem in integrity.problems.iter().take(5) {
            out.line(&format!("    {problem}"));
        }
    }
    if !d.tables.is_empty() {
        let readable = d.tables.iter().filter(|t| t.error.is_none()).count();
        out.line(&format!(
            "  tables: {readable} of {} can be read in full",
            d.tables.len()
        ));
        for table in d.tables.iter().filter(|t| t.error.is_some()) {
            out.line(&format!(
                "    {}: {}",
                table.name,
                table.error.as_deref().unwrap_or_default()
            ));
        }
    }
    if !problems.is_empty() {
        out.heading("what is wrong");
        for problem in problems {
            out.line(&format!("  - {problem}"));
        }
    }
    if !what_to_do.is_empty() {
        out.heading("how to restore");
        for (n, step) in what_to_do.iter().enumerate() {
            out.line(&format!("  {}. {step}", n + 1));
        }
    }
}
