//! The command line's generated parts: shell completions and manual pages come from the same
//! clap definitions as `--help`.

use crate::common;

use std::process::Command;

use common::run_in;

#[test]
fn bash_completions_are_valid_bash_and_know_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let run = run_in(dir.path(), &["completions", "bash"]);
    run.assert_code(0);
    for command in ["assess", "outbox", "customer", "completions", "man"] {
        assert!(
            run.stdout.contains(command),
            "no {command} in:\n{}",
            run.stdout
        );
    }
    let script = dir.path().join("tiercare.bash");
    std::fs::write(&script, &run.stdout).unwrap();
    let syntax = Command::new("bash")
        .arg("-n")
        .arg(&script)
        .output()
        .unwrap();
    assert!(
        syntax.status.success(),
        "bash -n refused the script: {}",
        String::from_utf8_lossy(&syntax.stderr)
    );
}

#[test]
fn every_shell_gets_a_script() {
    let dir = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let run = run_in(dir.path(), &["completions", shell]);
        run.assert_code(0);
        assert!(run.stdout.contains("tiercare"), "{shell}: {}", run.stdout);
    }
    run_in(dir.path(), &["completions", "tcsh"]).assert_code(2);
}

#[test]
fn the_manual_page_is_roff_and_says_what_help_says() {
    let dir = tempfile::tempdir().unwrap();
    let run = run_in(dir.path(), &["man"]);
    run.assert_code(0);
    assert!(
        run.stdout.starts_with(".ie \\n(.g .ds Aq"),
        "{}",
        &run.stdout[..200.min(run.stdout.len())]
    );
    assert!(run.stdout.contains(".TH tiercare 1"), "{}", run.stdout);
    assert!(
        run.stdout.contains("rule\\-driven customer tiering"),
        "{}",
        run.stdout
    );

    let pages = dir.path().join("man1");
    let run = run_in(dir.path(), &["man", "--out", pages.to_str().unwrap()]);
    run.assert_code(0);
    for page in [
        "tiercare.1",
        "tiercare-assess.1",
        "tiercare-outbox.1",
        "tiercare-man.1",
    ] {
        let text = std::fs::read_to_string(pages.join(page))
            .unwrap_or_else(|err| panic!("{page}: {err}; written: {}", run.stdout));
        assert!(text.contains(".TH"), "{page} is not a manual page");
    }
}

#[test]
fn an_error_names_its_cause_once() {
    let dir = tempfile::tempdir().unwrap();
    run_in(dir.path(), &["init"]).assert_code(0);
    let run = run_in(dir.path(), &["import", "customers", "missing.csv"]);
    run.assert_code(2);
    assert_eq!(
        run.stderr.matches("No such file or directory").count(),
        1,
        "{}",
        run.stderr
    );
    run.assert_stderr_contains("missing.csv");
}

#[test]
fn with_json_logs_an_error_is_a_json_line() {
    let dir = tempfile::tempdir().unwrap();
    run_in(dir.path(), &["init"]).assert_code(0);
    let run = run_in(
        dir.path(),
        &["--log-format", "json", "import", "customers", "missing.csv"],
    );
    run.assert_code(2);
    let line = run.stderr.lines().last().expect("an error line");
    let error: serde_json::Value =
        serde_json::from_str(line).unwrap_or_else(|err| panic!("not JSON ({err}): {}", run.stderr));
    assert_eq!(error["level"], "ERROR", "{error}");
    assert_eq!(error["fields"]["exit_code"], 2, "{error}");
    let message = error["fields"]["message"].as_str().unwrap();
    assert!(message.contains("missing.csv"), "{error}");
}

/// A new user's six mistakes in four rule files (an unknown key, a misspelt feature, a tier id
/// given twice, a condition that is not a boolean, a `.rhai` syntax error, a top-level `let`):
/// one `check` reports all six, and nothing that only follows from them.
#[test]
fn check_reports_six_independent_mistakes_in_one_run() {
    let dir = tempfile::tempdir().unwrap();
    let rules = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("crates/engine/tests/fixtures/rules/six_mistakes");
    let run = run_in(dir.path(), &["check", "--rules", rules.to_str().unwrap()]);
    run.assert_code(1);
    for expected in [
        "unknown key `colour` in `tiering`",
        "uses `revenue_share_befor`, which is not a feature or a score",
        "did you mean `revenue_share_before`?",
        "duplicate tier id `B`",
        "`segments.activity[0].when` must return true or false",
        "helpers.rhai:3:20: error: syntax error: unexpected '}'",
        "helpers.rhai:1:1: error: a function library may only define functions",
    ] {
        run.assert_stderr_contains(expected);
    }
    // No cascade: the follow-up's `tiers: [C]` and the missing section are not reported.
    assert!(!run.stderr.contains("is not a tier"), "{}", run.stderr);
    assert!(
        !run.stderr.contains("no rule file defines"),
        "{}",
        run.stderr
    );
    run.assert_stderr_contains("7 error(s)");
}
