//! No rule or rules file can break the daemon or move customers wrongly (issue #14): byte-bounded
//! YAML, rules proven on real customers before they act, and a time budget per customer.

mod common;

use std::fs;
use std::fs::File;
use std::os::unix::process::CommandExt as _;
use std::time::{Duration, Instant};

use common::{Workspace, command_in};

/// Runs `tiercare args` in `ws` and returns its output, wall time and peak RSS (KiB, from
/// `wait4`'s rusage, as `crates/bench` reads it).
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
        text.push_str(&format!("    - id: s{i}\n      description: *big\n      when: true\n"));
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
