//! The daemon (`tiercare run`, `tiercare status`) against the real binary, with its faults:
//! broken saves, a rules folder deleted and recreated, bursts of saves, two daemons, signals,
//! `kill -9`, and a database locked by another process.
//!
//! Nothing here sleeps to wait for the daemon: each test polls what the daemon records
//! (`tiercare status --json`, the database) until a deadline.

use crate::common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::daemon::{DEADLINE, Daemon, status};
use common::{Workspace, run_in};
use serde_json::Value;

/// The daemon tests' SMTP settings: a short timeout, and a retry about a minute later.
const DAEMON_SMTP: &str = "timeout_seconds = 5\n\n[mail.outbox]\nretry_base_seconds = 60\n";

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::SeqCst)
}

fn count(root: &Path, sql: &str) -> i64 {
    rusqlite::Connection::open(root.join("tiercare.db"))
        .unwrap()
        .query_row(sql, [], |row| row.get(0))
        .unwrap()
}

fn version(status: &Value) -> String {
    status["daemon"]["ruleset_version"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn reloads(status: &Value) -> i64 {
    status["daemon"]["reloads"].as_i64().unwrap_or(0)
}

/// Writes `text` to `path` the way editors do: a temporary file renamed over it.
fn save(path: &Path, text: &str) {
    let tmp = path.with_extension(format!("yaml.tmp{}", unique()));
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// A daemon on a fresh workspace, running on the real clock; returns once it has started.
fn running(ws: &Workspace) -> Daemon {
    let daemon = Daemon::start(ws.root(), &[]);
    daemon.wait_status(ws.root(), "the daemon to start", |s| {
        s["running"] == true && s["daemon"]["pid"] == daemon.pid()
    });
    daemon
}

#[test]
fn once_reassesses_a_due_slot_and_status_reports_it() {
    let ws = Workspace::with_quickstart();
    // 02:45 in London, 15 minutes after the default rules' 02:30 reassessment.
    let run = ws.run(&["run", "--once", "--simulate-from", "2026-03-02T02:45:00Z"]);
    run.assert_code(0);
    assert!(
        !run.stderr.contains('@'),
        "personal data in the log:\n{}",
        run.stderr
    );
    let s = status(ws.root());
    assert_eq!(s["running"], false);
    assert_eq!(
        common::unix(&s["reassess"]["last_fired_at"]),
        Some(1_772_418_600)
    ); // 2026-03-02T02:30:00Z
    assert!(common::unix(&s["daemon"]["stopped_at"]).is_some());
    let assessments = ws.count("SELECT count(*) FROM assessments");
    assert_eq!(assessments, 1);

    // The same time again (a timer firing twice, or a clock set back): nothing more.
    ws.run(&["run", "--once", "--simulate-from", "2026-03-02T02:50:00Z"])
        .assert_code(0);
    ws.run(&["run", "--once", "--simulate-from", "2026-03-01T02:45:00Z"])
        .assert_code(0);
    assert_eq!(ws.count("SELECT count(*) FROM assessments"), 1);

    // --log-format json: one JSON object per line, with the message and its fields.
    let json = ws.run(&[
        "run",
        "--once",
        "--log-format",
        "json",
        "--simulate-from",
        "2026-03-03T02:40:00Z",
    ]);
    json.assert_code(0);
    let lines: Vec<Value> = json
        .stderr
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|err| panic!("{err}: {line}")))
        .collect();
    assert!(
        lines
            .iter()
            .any(|line| line["fields"]["message"] == "reassessed" && line["level"] == "INFO"),
        "{}",
        json.stderr
    );

    let human = ws.run(&["status"]);
    human.assert_code(0);
    human.assert_stdout_contains("daemon: not running (stopped at");
    human.assert_stdout_contains("reassessment: last");

    // A later pass that does not reassess (a restart): status still shows the last one, and
    // the latest stored assessment, not "never".
    ws.run(&["run", "--once", "--simulate-from", "2026-03-03T02:50:00Z"])
        .assert_code(0);
    let human = ws.run(&["status"]);
    human.assert_code(0);
    assert!(
        !human.stdout.contains("reassessment: last never"),
        "{}",
        human.stdout
    );
    human.assert_stdout_contains("latest assessment: finished");
    human.assert_stdout_contains("as of 2026-03-03");
}

#[test]
fn simulated_days_pass_in_moments_and_each_night_reassesses_once() {
    let ws = Workspace::with_quickstart();
    let config = std::fs::read_to_string(ws.path("tiercare.toml")).unwrap();
    std::fs::write(
        ws.path("tiercare.toml"),
        config.replace("# lateness = \"6h\"", "lateness = \"20h\""),
    )
    .unwrap();
    // Two and a half simulated days per real second: four nights in under two seconds.
    let mut daemon = Daemon::start(
        ws.root(),
        &[
            "--simulate-from",
            "2026-03-01T00:00:00Z",
            "--speed",
            "216000",
        ],
    );
    daemon.wait_status(ws.root(), "four nights", |s| {
        common::unix(&s["daemon"]["last_tick_at"]).unwrap_or(0) >= 1_772_323_200 + 4 * 86_400
    });
    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(), Some(0));
    let done = status(ws.root());
    // Each night's 02:30 slot (London is on UTC in March) fired once, at or after it and
    // within the lateness, or (on a machine too busy to keep up) was skipped and counted:
    // never twice.
    let conn = rusqlite::Connection::open(ws.path("tiercare.db")).unwrap();
    let mut stmt = conn
        .prepare("SELECT at FROM assessments ORDER BY at")
        .unwrap();
    let times: Vec<i64> = stmt
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let first_slot = 1_772_323_200 + 9_000;
    let days: Vec<i64> = times.iter().map(|t| (t - first_slot) / 86_400).collect();
    for (day, time) in days.iter().zip(&times) {
        let late = time - first_slot - day * 86_400;
        assert!(
            (0..20 * 3_600).contains(&late),
            "{late}s late\n{}",
            daemon.log()
        );
    }
    let mut distinct = days.clone();
    distinct.dedup();
    assert_eq!(distinct, days, "a night assessed twice\n{}", daemon.log());
    let last_slot = common::unix(&done["reassess"]["last_slot"]).unwrap();
    let slots = (last_slot - first_slot) / 86_400 + 1;
    let skipped = done["reassess"]["skipped"].as_i64().unwrap();
    assert!(slots >= 4, "{done:#}");
    assert_eq!(
        times.len() as i64 + skipped,
        slots,
        "{done:#}\n{}",
        daemon.log()
    );
    assert!(times.len() >= 2, "{}", daemon.log());
    // Follow-ups were recorded tick by tick.
    assert!(common::unix(&done["followups"]["last_slot"]).unwrap() > 1_772_323_200 + 4 * 86_400);
}

#[test]
fn a_second_daemon_exits_2_naming_the_first_and_sigterm_stops_cleanly() {
    let ws = Workspace::new();
    let mut first = running(&ws);
    let second = ws.run(&["run"]);
    second.assert_code(2);
    second.assert_stderr_contains(&format!("pid {}", first.pid()));
    // --once and `send` take the same lock: one sender per database.
    ws.run(&["run", "--once"]).assert_code(2);
    let send = ws.run(&["send"]);
    send.assert_code(2);
    send.assert_stderr_contains(&format!("pid {}", first.pid()));
    let s = status(ws.root());
    assert_eq!(s["pid"], first.pid());

    first.signal("TERM");
    assert_eq!(first.wait_exit(), Some(0), "{}", first.log());
    assert!(first.log().contains("daemon stopped"), "{}", first.log());
    let s = status(ws.root());
    assert_eq!(s["running"], false);
    assert!(common::unix(&s["daemon"]["stopped_at"]).is_some());

    // SIGINT too; and after kill -9 the lock is free again.
    let mut again = running(&ws);
    again.signal("INT");
    assert_eq!(again.wait_exit(), Some(0));
    let mut killed = running(&ws);
    killed.signal("KILL");
    assert_eq!(killed.wait_exit(), None);
    let s = status(ws.root());
    assert_eq!(s["running"], false);
    assert!(s["daemon"]["stopped_at"].is_null());
    ws.run(&["status"])
        .assert_stdout_contains("ended without a clean stop");
    let _restarted = running(&ws);
}

#[test]
fn a_broken_save_keeps_the_old_rules_shows_the_error_and_fixing_it_reloads() {
    let ws = Workspace::new();
    let daemon = running(&ws);
    let first = version(&status(ws.root()));
    let tiers = ws.path("rules/tiers.yaml");
    let good = std::fs::read_to_string(&tiers).unwrap();

    save(&tiers, &good.replace("window: 365d", "window: often"));
    let broken = daemon.wait_status(ws.root(), "the reload error", |s| {
        s["daemon"]["last_reload_error"].is_string()
    });
    let error = broken["daemon"]["last_reload_error"].as_str().unwrap();
    assert!(error.starts_with("rules/tiers.yaml:13:"), "{error}");
    assert_eq!(version(&broken), first, "a broken rule set became active");
    ws.run(&["status"])
        .assert_stdout_contains("rules/tiers.yaml:13:");
    assert!(
        daemon.log().contains("rules/tiers.yaml:13:"),
        "{}",
        daemon.log()
    );

    save(&tiers, &good.replace("window: 365d", "window: 180d"));
    let fixed = daemon.wait_status(ws.root(), "the fixed rules", |s| {
        s["daemon"]["last_reload_error"].is_null() && version(s) != first
    });
    assert!(fixed["daemon"]["last_reload_ms"].is_i64());

    // SIGHUP reloads at once (here: back to the first rules, written without any event the
    // watcher could miss being the only trigger).
    std::fs::write(&tiers, &good).unwrap();
    daemon.signal("HUP");
    daemon.wait_status(ws.root(), "the reload after SIGHUP", |s| {
        version(s) == first
    });
}

#[test]
fn a_daemon_started_on_broken_rules_exits_2_naming_each_problem() {
    let ws = Workspace::new();
    let tiers = ws.path("rules/tiers.yaml");
    let good = std::fs::read_to_string(&tiers).unwrap();
    std::fs::write(&tiers, good.replace("window: 365d", "window: often")).unwrap();
    let refused = ws.run(&["run", "--once"]);
    refused.assert_code(2);
    refused.assert_stderr_contains("rules/tiers.yaml:13:");
    assert_eq!(status(ws.root())["daemon"], Value::Null);
}

#[test]
fn the_rules_folder_deleted_and_recreated_is_watched_again() {
    let ws = Workspace::new();
    let daemon = running(&ws);
    let first = version(&status(ws.root()));
    let rules = ws.path("rules");
    let aside = ws.path("rules-aside");
    std::fs::rename(&rules, &aside).unwrap();
    let gone = daemon.wait_status(ws.root(), "the missing folder reported", |s| {
        s["daemon"]["last_reload_error"].is_string()
    });
    assert_eq!(version(&gone), first);
    assert!(
        gone["daemon"]["last_reload_error"]
            .as_str()
            .unwrap()
            .contains("rules"),
        "{gone:#}"
    );

    std::fs::rename(&aside, &rules).unwrap();
    daemon.wait_status(ws.root(), "the folder back", |s| {
        s["daemon"]["last_reload_error"].is_null()
    });
    // Changes inside the recreated folder are seen.
    let tiers = rules.join("tiers.yaml");
    let text = std::fs::read_to_string(&tiers).unwrap();
    save(&tiers, &text.replace("window: 365d", "window: 90d"));
    daemon.wait_status(ws.root(), "a change in the recreated folder", |s| {
        version(s) != first
    });
}

#[test]
fn a_hundred_saves_in_two_seconds_make_a_handful_of_reloads_never_a_broken_set() {
    let ws = Workspace::new();
    let daemon = running(&ws);
    let before = reloads(&status(ws.root()));
    let tiers = ws.path("rules/tiers.yaml");
    let good = std::fs::read_to_string(&tiers).unwrap();
    let started = Instant::now();
    for i in 0..100 {
        // Every other save is written in place (truncate, then write): a reader may see it
        // half-written, which must never become active.
        let text = good.replace("window: 365d", &format!("window: {}d", 100 + i));
        if i % 2 == 0 {
            save(&tiers, &text);
        } else {
            std::fs::write(&tiers, &text).unwrap();
        }
        // 100 saves spread over two seconds.
        let next = Duration::from_millis(20 * (i + 1));
        if let Some(rest) = next.checked_sub(started.elapsed()) {
            std::thread::sleep(rest);
        }
    }
    // The last save (window 199d) is what `check` reads now; it becomes active, with no error.
    assert!(
        std::fs::read_to_string(&tiers)
            .unwrap()
            .contains("window: 199d")
    );
    let expected = ws.run(&["check", "--json"]).json()["version"]
        .as_str()
        .unwrap()
        .to_owned();
    let done = daemon.wait_status(ws.root(), "the last save active", |s| {
        s["daemon"]["last_reload_error"].is_null() && version(s) == expected
    });
    let count = reloads(&done) - before;
    assert!(
        (1..=10).contains(&count),
        "{count} reloads for 100 saves\n{}",
        daemon.log()
    );
}

#[test]
fn a_database_locked_by_another_process_delays_the_daemon_but_does_not_stop_it() {
    let ws = Workspace::with_quickstart();
    // Wait at most 200 ms for a lock, and tick every second, so the lock below outlasts it.
    let config = std::fs::read_to_string(ws.path("tiercare.toml")).unwrap();
    std::fs::write(
        ws.path("tiercare.toml"),
        config
            .replace("# busy_timeout_ms = 5000", "busy_timeout_ms = 200")
            .replace("# tick = \"1m\"", "tick = \"1s\""),
    )
    .unwrap();
    let daemon = running(&ws);
    // Its first tick recorded (an idle daemon writes nothing else that would record it later).
    daemon.wait_status(ws.root(), "the first tick", |s| {
        common::unix(&s["daemon"]["last_tick_at"]).is_some()
    });
    let connection = rusqlite::Connection::open(ws.path("tiercare.db")).unwrap();
    connection.execute_batch("BEGIN IMMEDIATE").unwrap();
    // Another process holds the write lock for a moment (longer than the daemon waits).
    let held = Instant::now();
    while held.elapsed() < Duration::from_millis(2_500) {
        std::thread::sleep(Duration::from_millis(50));
    }
    connection.execute_batch("COMMIT").unwrap();
    drop(connection);
    let before = common::unix(&status(ws.root())["daemon"]["last_tick_at"]).unwrap();
    // The daemon is still there and its next ticks succeed.
    daemon.wait_status(ws.root(), "a clean tick after the lock", |s| {
        s["running"] == true
            && s["daemon"]["last_tick_error"].is_null()
            && common::unix(&s["daemon"]["last_tick_at"]).unwrap() > before
    });
    assert!(
        daemon.log().contains("locked") || daemon.log().contains("busy"),
        "the lock was never met:\n{}",
        daemon.log()
    );
}

fn outbox(status: &Value, state: &str) -> u64 {
    status["outbox"][state].as_u64().unwrap_or(0)
}

#[test]
fn smtp_down_then_back_delivers_each_email_once_after_backoff() {
    let tmp = common::fast_tempdir();
    let sink = smtp_sink::SmtpSink::start(smtp_sink::Script::down()).unwrap();
    let root = common::mail_workspace(tmp.path(), 3, Some((sink.port(), 1, DAEMON_SMTP)));
    // A simulated minute per real second: the first retry (about a minute later) comes within
    // a second or two.
    let daemon = Daemon::start(
        &root,
        &["--simulate-from", "2026-03-02T10:00:00Z", "--speed", "60"],
    );
    let down = daemon.wait_status(&root, "the emails deferred", |s| {
        outbox(s, "deferred") == 3 && s["daemon"]["last_send_error"].is_string()
    });
    assert!(
        down["daemon"]["last_send_error"]
            .as_str()
            .unwrap()
            .contains("127.0.0.1"),
        "{down:#}"
    );
    assert!(sink.received().is_empty());

    sink.set_script(smtp_sink::Script::accept_all()).unwrap();
    daemon.wait_status(&root, "the emails sent", |s| outbox(s, "sent") == 3);
    let ids = common::message_ids(&sink.received());
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!((ids.len(), unique.len()), (3, 3), "{ids:?}");
    // Each was deferred before it was sent, and tried again only after its backoff.
    let deferred_then_sent = count(
        &root,
        "SELECT count(*) FROM outbox o WHERE o.state = 'sent' AND o.attempts >= 2 \
         AND o.sent_at >= (SELECT min(e.at) FROM outbox_events e \
                           WHERE e.outbox_id = o.id AND e.to_state = 'deferred') + 30",
    );
    assert_eq!(deferred_then_sent, 3, "{}", daemon.log());
    assert!(
        !daemon.log().contains("@example.com"),
        "an address in the log"
    );
}

#[test]
fn kill_9_mid_sending_a_thousand_emails_loses_none_and_reports_the_duplicates() {
    let tmp = common::fast_tempdir();
    let sink = smtp_sink::SmtpSink::start(smtp_sink::Script::accept_all()).unwrap();
    // Ten connections in parallel: each message takes about 40 ms against the sink (see the
    // daemon's report), so one connection would need 40 s.
    let root = common::mail_workspace(tmp.path(), 1_000, Some((sink.port(), 10, DAEMON_SMTP)));
    let mut first = Daemon::start(&root, &["--simulate-from", "2026-03-02T10:00:00Z"]);
    // Kill it once it is well into sending.
    let deadline = Instant::now() + DEADLINE;
    while sink.received().len() < 150 {
        assert!(Instant::now() < deadline, "nothing sent\n{}", first.log());
        std::thread::sleep(Duration::from_millis(2));
    }
    first.signal("KILL");
    assert_eq!(first.wait_exit(), None);
    let killed = status(&root);
    assert!(
        outbox(&killed, "sent") < 1_000,
        "all sent before the kill: {killed:#}"
    );
    let in_flight = outbox(&killed, "claimed");

    // The restart recovers what the dead daemon had claimed, and sends everything.
    let second = Daemon::start(&root, &["--simulate-from", "2026-03-02T10:05:00Z"]);
    let done = second.wait_status(&root, "every email sent", |s| outbox(s, "sent") == 1_000);
    let ids = common::message_ids(&sink.received());
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 1_000, "an email was lost");
    let duplicates = (ids.len() - unique.len()) as u64;
    let reported = done["outbox_recovered"].as_u64().unwrap();
    // A duplicate can only be an email that was in flight, and each is reported.
    assert!(
        duplicates <= in_flight && duplicates <= reported && reported <= in_flight,
        "duplicates {duplicates}, reported {reported}, in flight {in_flight}\n{}",
        second.log()
    );
    assert!(second.log().contains("left mid-send"), "{}", second.log());
}

#[test]
fn sigterm_mid_sending_finishes_in_flight_work_and_exits_0() {
    let tmp = common::fast_tempdir();
    let sink = smtp_sink::SmtpSink::start(smtp_sink::Script::accept_all()).unwrap();
    let root = common::mail_workspace(tmp.path(), 300, Some((sink.port(), 10, DAEMON_SMTP)));
    let mut daemon = Daemon::start(&root, &["--simulate-from", "2026-03-02T10:00:00Z"]);
    let deadline = Instant::now() + DEADLINE;
    while sink.received().is_empty() {
        assert!(Instant::now() < deadline, "nothing sent\n{}", daemon.log());
        std::thread::sleep(Duration::from_millis(2));
    }
    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(), Some(0), "{}", daemon.log());
    // Nothing is left claimed, and nothing went out twice.
    let stopped = status(&root);
    assert_eq!(outbox(&stopped, "claimed"), 0, "{stopped:#}");
    let ids = common::message_ids(&sink.received());
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(ids.len(), unique.len());
    assert_eq!(ids.len() as u64, outbox(&stopped, "sent"));
    assert!(common::unix(&stopped["daemon"]["stopped_at"]).is_some());
}

#[test]
fn sigterm_during_a_backlog_of_3000_emails_exits_0_leaving_the_rest_queued() {
    let tmp = common::fast_tempdir();
    let root = common::mail_workspace(tmp.path(), 3_000, None);
    let mail = root.join("mail");
    let files = || std::fs::read_dir(&mail).map_or(0, |dir| dir.count());
    let mut daemon = Daemon::start(&root, &["--simulate-from", "2026-03-02T10:00:00Z"]);
    let deadline = Instant::now() + DEADLINE;
    while files() < 20 {
        assert!(Instant::now() < deadline, "nothing sent\n{}", daemon.log());
        std::thread::sleep(Duration::from_millis(2));
    }
    daemon.signal("TERM");
    let signalled = Instant::now();
    assert_eq!(daemon.wait_exit(), Some(0), "{}", daemon.log());
    // Reported, not asserted: the stop is checked between messages, so this is one message.
    eprintln!("exited {:?} after SIGTERM", signalled.elapsed());

    // It stopped mid-backlog: the rest is still queued, with no attempt counted, and nothing
    // is left claimed or lost.
    let stopped = status(&root);
    let sent = outbox(&stopped, "sent");
    let queued = outbox(&stopped, "queued");
    assert!(
        queued > 0,
        "the whole backlog was sent before exiting\n{stopped:#}"
    );
    assert_eq!(outbox(&stopped, "claimed"), 0, "{stopped:#}");
    assert_eq!(sent + queued, 3_000, "{stopped:#}");
    assert_eq!(files() as u64, sent);
    assert_eq!(
        count(
            &root,
            "SELECT count(*) FROM outbox WHERE state = 'queued' AND attempts <> 0"
        ),
        0,
        "a released email had an attempt counted"
    );
    assert!(
        daemon.log().contains("the rest stays queued"),
        "{}",
        daemon.log()
    );

    // A restart sends the rest, each email once.
    let again = run_in(
        &root,
        &["run", "--once", "--simulate-from", "2026-03-02T10:01:00Z"],
    );
    again.assert_code(0);
    let done = status(&root);
    assert_eq!(outbox(&done, "sent"), 3_000, "{done:#}");
    assert_eq!(files(), 3_000);
    assert_eq!(
        count(
            &root,
            "SELECT count(*) FROM outbox_events WHERE to_state = 'sent'"
        ),
        3_000,
        "an email was sent twice"
    );
    assert_eq!(
        count(&root, "SELECT count(*) FROM outbox WHERE attempts <> 1"),
        0,
        "an email was attempted twice"
    );
}
