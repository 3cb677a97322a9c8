//! No rule or rules file can break the daemon or move customers wrongly (issue #14): byte-bounded
//! YAML, rules proven on real customers before they act, and a time budget per customer.

use crate::common;

use std::fs;
use std::fs::File;
use std::os::unix::process::CommandExt as _;
use std::time::{Duration, Instant};

use common::daemon::Daemon;
use common::{Workspace, command_in};

/// Runs `tiercare args` in `ws` and returns its output, wall time and peak RSS (KiB, from
/// `wait4`'s rusage, as `crates/bench` reads it).
#[expect(
    clippy::zombie_processes,
    reason = "the child is reaped by wait4, which also gives its rusage"
)]
fn run_measured(ws: &Workspace, args: &[&str]) -> (common::Run, Duration, u64) {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("out");
    let err_path = dir.path().join("err");
    let mut command = command_in(ws.root());
    command
        .args(args)
        .stdout(File::create(&out_path).unwrap())
        .stderr(File::create(&err_path).unwrap());
    // Its own process group, so nothing else of this test process is counted.
    command.process_group(0);
    let started = Instant::now();
    let child = command.spawn().unwrap();
    let pid = i32::try_from(child.id()).unwrap();
    let mut status = 0;
    // SAFETY: `rusage` is plain old data, zero is a valid value of it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our own child, not yet waited for; the pointers are to live locals.
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let elapsed = started.elapsed();
    assert_eq!(waited, pid, "wait4");
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    let run = common::Run {
        code,
        stdout: fs::read_to_string(&out_path).unwrap(),
        stderr: fs::read_to_string(&err_path).unwrap(),
    };
    (run, elapsed, u64::try_from(usage.ru_maxrss).unwrap_or(0))
}

#[test]
fn a_long_string_aliased_many_times_is_refused_quickly_in_little_memory() {
    let ws = Workspace::new();
    // 500 KB aliased 2,000 times: a 506 KB file (under the 1 MiB limit) that expanded to a
    // gigabyte and aborted `check` on allocation.
    let mut text = format!(
        "tiering:\n  tiers:\n    - id: A\n      description: &big {}\n      when: true\n",
        "x".repeat(500_000)
    );
    text.push_str("segments:\n  many:\n");
    for i in 0..2_000 {
        text.push_str(&format!(
            "    - id: s{i}\n      description: *big\n      when: true\n"
        ));
    }
    assert!(text.len() < 1024 * 1024);
    fs::write(ws.path("rules/bomb.yaml"), &text).unwrap();
    let (out, elapsed, peak_kib) = run_measured(&ws, &["check"]);
    out.assert_code(1);
    out.assert_stderr_contains("rules/bomb.yaml:");
    out.assert_stderr_contains("this alias repeats 500000 bytes and expands the document beyond");
    assert!(
        out.stderr.len() < 4_000,
        "a short message, not the value: {} bytes",
        out.stderr.len()
    );
    assert!(elapsed < Duration::from_secs(3), "took {elapsed:?}");
    assert!(peak_kib < 300 * 1024, "peak RSS {peak_kib} KiB");
}

#[test]
fn a_huge_value_is_quoted_as_a_short_excerpt() {
    let ws = Workspace::new();
    // A 900 KB identifier: an undefined variable whose name is the whole value.
    let text = format!(
        "segments:\n  long:\n    - id: s\n      when: {}\n",
        "y".repeat(900_000)
    );
    fs::write(ws.path("rules/long.yaml"), &text).unwrap();
    let out = ws.run(&["check"]);
    out.assert_code(1);
    out.assert_stderr_contains("… (900000 bytes)");
    assert!(out.stderr.len() < 4_000, "{} bytes", out.stderr.len());
}

/// Every customer's stored tier, `C001=A,C002=B,...`.
fn tiers(ws: &Workspace) -> String {
    ws.query_one(
        "SELECT coalesce(group_concat(c.external_id || '=' || t.tier, ','), '') FROM \
         (SELECT * FROM customers ORDER BY external_id) c \
         JOIN customer_tiers t ON t.customer_id = c.id",
    )
}

/// Adds a `[rules]` section to the workspace's settings.
fn set_rules_config(ws: &Workspace, lines: &str) {
    let path = ws.path("tiercare.toml");
    let text = fs::read_to_string(&path).unwrap();
    assert!(
        text.contains("\n[rules]\n"),
        "init writes a [rules] section"
    );
    fs::write(
        path,
        text.replace("\n[rules]\n", &format!("\n[rules]\n{lines}\n")),
    )
    .unwrap();
}

/// Recursion as deep as twenty times a customer's orders: fine for the customer without data
/// `check` ran on before, past the 16-call limit for every real customer with an order.
const DEEP_LIBRARY: &str = "fn depth(n) { if n <= 0 { 0 } else { 1 + depth(n - 1) } }\n";
/// A string 2,000 × 16 bytes long per order: past the 16 KB limit for real customers only.
const GROW_LIBRARY: &str =
    "fn grow(n) { let s = \"\"; for i in 0..n { s += \"0123456789abcdef\"; } s.len() }\n";

/// The A rule of the default rules, with `extra` and-ed before its condition (so that it runs
/// for every customer, whatever their revenue).
fn tier_a_also(ws: &Workspace, extra: &str) {
    let path = ws.path("rules/tiers.yaml");
    let text = fs::read_to_string(&path).unwrap();
    let old = "revenue_window > 0 && revenue_share_before < 0.80";
    assert!(text.contains(old));
    fs::write(path, text.replace(old, &format!("{extra} && {old}"))).unwrap();
}

#[test]
fn rules_failing_only_for_real_customers_are_refused_by_check_and_never_move_a_customer() {
    let ws = Workspace::with_quickstart();
    ws.run(&["assess", "--at", "2025-11-01"]).assert_code(0);
    let before = tiers(&ws);
    assert!(before.contains("=A"), "{before}");

    fs::write(ws.path("rules/deep.rhai"), DEEP_LIBRARY).unwrap();
    tier_a_also(&ws, "depth(orders_total * 20) >= 0");
    let out = ws.run(&["check"]);
    out.assert_code(1);
    out.assert_stderr_contains("rules/tiers.yaml:22:");
    out.assert_stderr_contains("tiers[0] (A) fails for customer C0");
    out.assert_stderr_contains("unbounded recursion");

    // Assessed anyway: with the default share (1%), nothing is recorded and the reason is given.
    let out = ws.run(&["assess", "--at", "2025-11-01"]);
    assert_ne!(out.code, 0);
    out.assert_stderr_contains("the assessment was not recorded: rules failed for");
    out.assert_stderr_contains("tiers[0] (A) at rules/tiers.yaml:22:");
    assert_eq!(tiers(&ws), before);

    // Allowed to fail for everyone, twice (past hysteresis): the failing customers keep their
    // tier, and the report says how many.
    set_rules_config(&ws, "max_failure_share = 1.0");
    for _ in 0..2 {
        let out = ws.run(&["assess", "--at", "2025-11-01", "--json"]);
        let report = out.json();
        assert!(
            report["failed_customers"].as_u64().unwrap() >= 7,
            "{report}"
        );
        assert_eq!(report["changed"], 0, "{report}");
    }
    assert_eq!(tiers(&ws), before, "a failing rule never moves a customer");

    // A string past the size limit, for real customers only.
    fs::remove_file(ws.path("rules/deep.rhai")).unwrap();
    fs::write(ws.path("rules/tiers.yaml"), quickstart_rules()).unwrap();
    fs::write(ws.path("rules/grow.rhai"), GROW_LIBRARY).unwrap();
    tier_a_also(&ws, "grow(orders_total * 2000) > 0");
    let out = ws.run(&["check"]);
    out.assert_code(1);
    out.assert_stderr_contains("tiers[0] (A) fails for customer C0");
    out.assert_stderr_contains("string over the limit");
}

/// The default rules' tiers file, as `init` wrote it.
fn quickstart_rules() -> String {
    fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("rules/tiers.yaml"))
        .unwrap()
}

/// A library whose `slow()` upper-cases an 8 KB string 2,000 times.
const SLOW_LIBRARY: &str = "fn slow() { let s = \"0123456789abcdef\"; for i in 0..9 { s += s; } \
     for i in 0..2000 { s.to_upper(); } true }\n";

#[test]
fn a_slow_rule_is_stopped_by_the_budget_and_check_reports_slow_rules() {
    let ws = Workspace::with_quickstart();
    ws.run(&["assess", "--at", "2025-11-01"]).assert_code(0);
    let before = tiers(&ws);
    fs::write(ws.path("rules/slow.rhai"), SLOW_LIBRARY).unwrap();
    tier_a_also(&ws, "slow()");
    set_rules_config(&ws, "budget_ms = 2\nmax_failure_share = 0.0");

    let out = ws.run(&["check"]);
    out.assert_code(1);
    out.assert_stderr_contains("over its time budget of 2 ms");

    let started = Instant::now();
    let out = ws.run(&["assess", "--at", "2025-11-01"]);
    assert_ne!(out.code, 0);
    out.assert_stderr_contains("the assessment was not recorded");
    out.assert_stderr_contains("over its time budget of 2 ms");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(tiers(&ws), before);

    // Allowed to fail: each customer over budget keeps its tier.
    let path = ws.path("tiercare.toml");
    let text = fs::read_to_string(&path).unwrap();
    fs::write(
        &path,
        text.replace("max_failure_share = 0.0", "max_failure_share = 1.0"),
    )
    .unwrap();
    let report = ws.run(&["assess", "--at", "2025-11-01", "--json"]).json();
    assert!(
        report["failed_customers"].as_u64().unwrap() >= 1,
        "{report}"
    );
    assert_eq!(report["changed"], 0, "{report}");
    assert_eq!(tiers(&ws), before);

    // Within a generous budget the rule works, and `check` names it as slow.
    fs::write(
        &path,
        text.replace("budget_ms = 2", "budget_ms = 60000\nslow_ms = 1"),
    )
    .unwrap();
    let out = ws.run(&["check"]);
    out.assert_code(0);
    out.assert_stderr_contains("rules/tiers.yaml:22:");
    out.assert_stderr_contains("tiers[0] (A) is slow: ");
}

#[test]
fn a_daemon_reload_refuses_rules_that_fail_for_real_customers_and_keeps_the_last_good_ones() {
    let ws = Workspace::with_quickstart();
    let daemon = Daemon::start(ws.root(), &[]);
    let started = daemon.wait_status(ws.root(), "the daemon to start", |s| {
        s["running"] == true && s["daemon"]["ruleset_version"].is_string()
    });
    let first = started["daemon"]["ruleset_version"].clone();

    fs::write(ws.path("rules/deep.rhai"), DEEP_LIBRARY).unwrap();
    tier_a_also(&ws, "depth(orders_total * 20) >= 0");
    let refused = daemon.wait_status(ws.root(), "the reload to be refused", |s| {
        s["daemon"]["last_reload_error"].is_string()
    });
    let error = refused["daemon"]["last_reload_error"].as_str().unwrap();
    assert!(
        error.contains("rules/tiers.yaml:22:") && error.contains("fails for customer C0"),
        "{error}"
    );
    assert_eq!(
        refused["daemon"]["ruleset_version"], first,
        "the last good rules stay"
    );
}

/// Rules that fail for real customers when the daemon starts: there are no earlier rules to
/// keep, so it starts, and says so in the log and in `status`, at the failing rule's line.
#[test]
fn a_daemon_starting_on_rules_that_fail_for_real_customers_says_so() {
    let ws = Workspace::with_quickstart();
    fs::write(ws.path("rules/deep.rhai"), DEEP_LIBRARY).unwrap();
    tier_a_also(&ws, "depth(orders_total * 20) >= 0");
    let run = ws.run(&["run", "--once"]);
    assert!(run.code == 0 || run.code == 1, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("the rules fail for some real customers"),
        "{}",
        run.stderr
    );
    let status = ws.run(&["status", "--json"]).json();
    let problems = status["reload_problems"].as_array().unwrap();
    assert!(
        problems.iter().any(|p| {
            let p = p.as_str().unwrap();
            p.starts_with("rules/tiers.yaml:22:") && p.contains("fails for customer C0")
        }),
        "{status:#}"
    );
}
