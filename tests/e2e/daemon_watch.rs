//! The daemon's reloads against the real binary (issue #14): an idle daemon neither reloads nor
//! writes, a slow save never goes live half-written, and an invalid save's problems are each
//! logged once and all listed by `status --json`.
//!
//! Waiting for the daemon polls what it records until a deadline. Proving that something does
//! *not* happen needs a window of observation: those windows are named constants, and the idle
//! one can be stretched with `TIERCARE_TEST_IDLE_SECS` (60 for the figure in issue #14).

use crate::common;

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, SystemTime};

use common::Workspace;
use common::daemon::{Daemon, status};
use serde_json::Value;

/// A daemon logging at `level`, once it has made its first pass.
fn start(ws: &Workspace, level: &str) -> Daemon {
    let daemon = Daemon::start_logging(ws.root(), level, &[]);
    daemon.wait_status(ws.root(), "the daemon's first pass", |s| {
        s["running"] == true
            && s["daemon"]["pid"] == daemon.pid()
            && common::unix(&s["daemon"]["last_tick_at"]).is_some()
    });
    daemon
}

fn version(status: &Value) -> String {
    status["daemon"]["ruleset_version"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Sets `[daemon]` keys in the workspace's `tiercare.toml`.
fn daemon_settings(ws: &Workspace, settings: &str) {
    let path = ws.path("tiercare.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("\n[daemon]\n"), "{text}");
    let text = text.replace("\n[daemon]\n", &format!("\n[daemon]\n{settings}\n"));
    std::fs::write(&path, text).unwrap();
}

/// The version `tiercare check` reads from the files now.
fn version_on_disk(ws: &Workspace) -> String {
    let check = ws.run(&["check", "--json"]);
    check.assert_code(0);
    check.json()["version"].as_str().unwrap().to_owned()
}

/// Size and modification time of a file (`None` if it does not exist).
fn size_and_mtime(path: &Path) -> Option<(u64, SystemTime)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.len(), meta.modified().unwrap()))
}

#[test]
fn an_idle_daemon_logs_no_reload_and_writes_nothing_to_the_database() {
    let idle = Duration::from_secs(
        std::env::var("TIERCARE_TEST_IDLE_SECS")
            .ok()
            .and_then(|secs| secs.parse().ok())
            .unwrap_or(10),
    );
    let ws = Workspace::new();
    // No tick falls in the window, however long: what is measured is the watcher alone.
    daemon_settings(&ws, "tick = \"1h\"");
    let daemon = start(&ws, "debug");
    let files = [ws.path("tiercare.db"), ws.path("tiercare.db-wal")];
    let before: Vec<_> = files.iter().map(|path| size_and_mtime(path)).collect();
    let log_before = daemon.log();

    std::thread::sleep(idle);

    let after: Vec<_> = files.iter().map(|path| size_and_mtime(path)).collect();
    let log_after = daemon.log();
    let new_lines = &log_after[log_before.len()..];
    assert!(
        new_lines.is_empty(),
        "an idle daemon logged in {idle:?}:\n{new_lines}"
    );
    assert_eq!(
        before, after,
        "an idle daemon wrote to the database (size, mtime of the db and its WAL)"
    );
    for needle in ["rules unchanged", "rules reloaded", "rules not reloaded"] {
        assert!(
            !log_after.contains(needle),
            "{needle:?} in an idle daemon's log:\n{log_after}"
        );
    }
    assert_eq!(status(ws.root())["daemon"]["reloads"], 1);
}

#[test]
fn a_slow_save_never_makes_its_valid_prefix_active() {
    let ws = Workspace::new();
    // A margin the test's pause between the two writes stays well within on a busy machine.
    daemon_settings(&ws, "settle_ms = 2000");
    let daemon = start(&ws, "info");
    let first = version(&status(ws.root()));
    let tiers = ws.path("rules/tiers.yaml");
    let text = std::fs::read_to_string(&tiers).unwrap();
    // Without its `hysteresis` block the file is a valid rule set (with another version).
    let cut = text.find("  hysteresis:").unwrap();
    let (prefix, rest) = (&text[..cut], "  hysteresis:\n    downgrade_after: 3\n");

    let mut file = File::create(&tiers).unwrap();
    file.write_all(prefix.as_bytes()).unwrap();
    file.sync_data().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    file.write_all(rest.as_bytes()).unwrap();
    drop(file);

    let last = version_on_disk(&ws);
    assert_ne!(last, first);
    let done = daemon.wait_status(ws.root(), "the whole save active", |s| version(s) == last);
    assert_eq!(done["daemon"]["reloads"], 2, "{}", daemon.log());
    let reloaded = daemon.lines_with("rules reloaded");
    assert_eq!(reloaded.len(), 1, "{reloaded:#?}");
    assert!(reloaded[0].contains(&last), "{reloaded:#?}");
    assert!(
        daemon.lines_with("rules not reloaded").is_empty(),
        "{}",
        daemon.log()
    );
}

#[test]
fn an_invalid_save_logs_each_problem_once_and_status_lists_them_all() {
    let ws = Workspace::new();
    daemon_settings(&ws, "settle_ms = 300");
    let daemon = start(&ws, "info");
    let first = version(&status(ws.root()));
    let tiers = ws.path("rules/tiers.yaml");
    let good = std::fs::read_to_string(&tiers).unwrap();
    let broken = good
        .replace("window: 365d", "window: often")
        .replace("revenue_share_before < 0.95", "revenue_share_before <")
        .replace("downgrade_after: 2", "downgrade_after: many");
    // The lines of the three mistakes, wherever the default rules put them.
    let line_of = |needle: &str| {
        let index = broken
            .lines()
            .position(|line| line.trim_end().ends_with(needle))
            .unwrap_or_else(|| panic!("no {needle:?} in the broken file"));
        format!("rules/tiers.yaml:{}:", index + 1)
    };
    let places = [
        line_of("window: often"),
        line_of("revenue_share_before <"),
        line_of("downgrade_after: many"),
    ];
    std::fs::write(&tiers, &broken).unwrap();
    let failed = daemon.wait_status(ws.root(), "the reload error", |s| {
        s["daemon"]["last_reload_error"].is_string()
    });
    assert_eq!(version(&failed), first);
    let problems: Vec<&str> = failed["reload_problems"]
        .as_array()
        .unwrap_or_else(|| panic!("no reload_problems list: {failed:#}"))
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert_eq!(problems.len(), places.len(), "{problems:#?}");
    for (problem, place) in problems.iter().zip(&places) {
        assert!(
            problem.starts_with(place.as_str()),
            "{problem} is not at {place}"
        );
    }
    let human = ws.run(&["status"]);
    for place in &places {
        human.assert_stdout_contains(place);
    }

    // Events that leave the content as it is: the same bytes saved again (renamed over it),
    // and its times touched. Nothing is reloaded or logged again.
    let again = tiers.with_extension("yaml.tmp");
    std::fs::write(&again, &broken).unwrap();
    std::fs::rename(&again, &tiers).unwrap();
    File::options()
        .append(true)
        .open(&tiers)
        .unwrap()
        .set_modified(SystemTime::now())
        .unwrap();
    // A window of a few settle times in which a repeat would show.
    std::thread::sleep(Duration::from_millis(2_000));
    for place in &places {
        let lines = daemon.lines_with(place);
        assert_eq!(lines.len(), 1, "{place} logged {} times", lines.len());
        assert!(lines[0].contains("WARN"), "{}", lines[0]);
    }
    assert_eq!(
        status(ws.root())["daemon"]["last_reload_error_at"],
        failed["daemon"]["last_reload_error_at"]
    );
}
