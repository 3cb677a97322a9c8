//! Running the real `tiercare` binary on temporary workspaces.

#![allow(
    dead_code,
    reason = "each test binary uses a different part of this module"
)]

pub mod browser;
pub mod daemon;
pub mod sms_provider;
pub mod staff;

use std::path::{Path, PathBuf};
use std::process::Command;

/// The output of one run of the binary.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Runs `command` to its end and keeps its exit code and output.
    pub fn of(command: &mut Command) -> Run {
        let output = command.output().expect("run tiercare");
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    pub fn assert_code(&self, code: i32) {
        assert_eq!(
            self.code, code,
            "exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
    }

    pub fn assert_stderr_contains(&self, needle: &str) {
        assert!(
            self.stderr.contains(needle),
            "stderr lacks {needle:?}\n--- stderr\n{}",
            self.stderr
        );
    }

    pub fn assert_stdout_contains(&self, needle: &str) {
        assert!(
            self.stdout.contains(needle),
            "stdout lacks {needle:?}\n--- stdout\n{}",
            self.stdout
        );
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|err| panic!("stdout is not JSON ({err}):\n{}", self.stdout))
    }
}

/// The binary, to be run in `dir`, with a clean environment for tiercare's variables (no
/// `TIERCARE_HOME`, no `TIERCARE_LOG`, `NO_COLOR` set); add arguments and variables, then run it.
pub fn command_in(dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tiercare"));
    command
        .current_dir(dir)
        .env_remove("TIERCARE_HOME")
        .env_remove("TIERCARE_LOG")
        .env("NO_COLOR", "1");
    command
}

/// A temporary folder in memory when the system has one (`/dev/shm`): the outbox commits each
/// hand-over and each outcome with `fsync`, which on a slow disk would make a thousand emails
/// take minutes. The database is a real SQLite file either way.
pub fn fast_tempdir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir()
        && let Ok(dir) = tempfile::tempdir_in(shm)
    {
        return dir;
    }
    tempfile::tempdir().unwrap()
}

/// A workspace in `dir/ws` with one email rule (every customer, 09:00 daily) and its template
/// instead of the default follow-ups, `customers` customers who agreed to email, and each one's
/// email of 09:00 on 2 March 2026 queued in the outbox (long due). Recorded for that morning and
/// sent whenever the test runs: a `max_delay` of years keeps the delivery gate from cancelling
/// them as stale (no contact policy, so no send window either: the tests pass at any hour).
/// `smtp`: the SMTP server's port, the connections, and more `[mail.smtp]` settings (and any
/// sections after it); `None`: the folder transport (`mail/`, the default).
pub fn mail_workspace(dir: &Path, customers: usize, smtp: Option<(u16, u32, &str)>) -> PathBuf {
    let addresses: Vec<String> = (0..customers)
        .map(|i| format!("c{i}@example.com"))
        .collect();
    let addresses: Vec<&str> = addresses.iter().map(String::as_str).collect();
    mail_workspace_for(dir, &addresses, smtp)
}

/// [`mail_workspace`] with the customers' addresses given (`C0000` gets the first, and so on):
/// one email to each queued.
pub fn mail_workspace_for(
    dir: &Path,
    addresses: &[&str],
    smtp: Option<(u16, u32, &str)>,
) -> PathBuf {
    let root = dir.join("ws");
    run_in(dir, &["init", root.to_str().unwrap()]).assert_code(0);
    std::fs::remove_file(root.join("rules/followups.yaml")).unwrap();
    std::fs::write(
        root.join("rules/mail.yaml"),
        "followups:\n  - id: hello\n    cron: \"0 9 * * *\"\n    max_delay: 3650d\n    \
         email: { template: care }\n",
    )
    .unwrap();
    std::fs::write(
        root.join("templates/care.eml.j2"),
        "subject: Hello {{ customer.name }}\n--- text\nHello {{ customer.name }}\n",
    )
    .unwrap();
    if let Some((port, connections, settings)) = smtp {
        let config = std::fs::read_to_string(root.join("tiercare.toml")).unwrap();
        let config = config.replace("transport = \"folder\"", "transport = \"smtp\"")
            + &format!(
                "\n[mail.smtp]\nhost = \"127.0.0.1\"\nport = {port}\nsecurity = \"none\"\n\
                 connections = {connections}\n{settings}"
            );
        std::fs::write(root.join("tiercare.toml"), config).unwrap();
    }
    let mut csv = String::from("customer_id,name,email,consent_email\n");
    for (i, address) in addresses.iter().enumerate() {
        csv.push_str(&format!("C{i:04},Customer {i},{address},true\n"));
    }
    std::fs::write(root.join("customers.csv"), csv).unwrap();
    run_in(&root, &["import", "customers", "customers.csv"]).assert_code(0);
    let recorded = run_in(
        &root,
        &followups_record_json("2026-03-02T08:00:00Z", "2026-03-02T10:00:00Z"),
    );
    recorded.assert_code(0);
    assert_eq!(
        recorded.json()["queued"],
        addresses.len(),
        "{}",
        recorded.stdout
    );
    root
}

/// The Message-ID of each message a test SMTP server received, in the order received.
pub fn message_ids(received: &[smtp_sink::Received]) -> Vec<String> {
    received
        .iter()
        .map(|message| {
            let text = String::from_utf8_lossy(&message.data);
            text.lines()
                .find_map(|line| {
                    line.strip_prefix("Message-ID: ")
                        .or_else(|| line.strip_prefix("Message-Id: "))
                })
                .unwrap_or_else(|| panic!("no Message-ID in\n{text}"))
                .trim()
                .to_owned()
        })
        .collect()
}

/// Runs the binary in `dir` with `args`, with a clean environment for tiercare's variables.
pub fn run_in(dir: &Path, args: &[&str]) -> Run {
    Run::of(command_in(dir).args(args))
}

/// The arguments of `tiercare followups record --from FROM --until UNTIL --json`.
pub fn followups_record_json<'a>(from: &'a str, until: &'a str) -> [&'a str; 7] {
    [
        "followups",
        "record",
        "--from",
        from,
        "--until",
        until,
        "--json",
    ]
}

/// A fresh workspace made by `tiercare init` in a temporary folder.
pub struct Workspace {
    _tmp: tempfile::TempDir,
    root: PathBuf,
}

impl Workspace {
    pub fn new() -> Workspace {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("ws");
        let out = run_in(
            tmp.path(),
            &[
                "init",
                root.to_str().unwrap(),
                "--timezone",
                "Europe/London",
            ],
        );
        out.assert_code(0);
        Workspace { _tmp: tmp, root }
    }

    /// A fresh workspace with every quickstart file imported (examples/quickstart).
    pub fn with_quickstart() -> Workspace {
        let ws = Workspace::new();
        for kind in QUICKSTART_KINDS {
            ws.run(&["import", kind, &quickstart(kind)]).assert_code(0);
        }
        ws
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn root_str(&self) -> &str {
        self.root.to_str().unwrap()
    }

    pub fn path(&self, relative: &str) -> PathBuf {
        self.root.join(relative)
    }

    /// Runs the binary inside the workspace.
    pub fn run(&self, args: &[&str]) -> Run {
        run_in(&self.root, args)
    }

    pub fn write(&self, name: &str, text: &str) -> String {
        self.write_bytes(name, text.as_bytes())
    }

    pub fn write_bytes(&self, name: &str, bytes: &[u8]) -> String {
        let path = self.root.join(name);
        std::fs::write(&path, bytes).unwrap();
        path.to_str().unwrap().to_owned()
    }

    fn connection(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.path("tiercare.db")).unwrap()
    }

    pub fn count(&self, sql: &str) -> i64 {
        self.connection()
            .query_row(sql, [], |row| row.get(0))
            .unwrap()
    }

    pub fn query_one<T: FromRow>(&self, sql: &str) -> T {
        self.connection()
            .query_row(sql, [], |row| T::from_row(row))
            .unwrap()
    }
}

/// Reads a query's single row.
pub trait FromRow: Sized {
    fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self>;
}

impl FromRow for String {
    fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        row.get(0)
    }
}

impl FromRow for f64 {
    fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        row.get(0)
    }
}

impl FromRow for (String, String) {
    fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok((row.get(0)?, row.get(1)?))
    }
}

/// The quickstart files' kinds, in the order they import (customers name managers, orders and
/// the rest name customers).
pub const QUICKSTART_KINDS: [&str; 6] = [
    "managers",
    "customers",
    "orders",
    "interactions",
    "complaints",
    "feedback",
];

/// The path of a quickstart example file.
pub fn quickstart(kind: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/quickstart")
        .join(format!("{kind}.csv"))
        .to_str()
        .unwrap()
        .to_owned()
}

/// A `--json` time (an RFC 3339 string, docs/json.md) as unix seconds; `None` for null or
/// anything else.
pub fn unix(value: &serde_json::Value) -> Option<i64> {
    value
        .as_str()
        .and_then(|text| chrono::DateTime::parse_from_rfc3339(text).ok())
        .map(|time| time.timestamp())
}
