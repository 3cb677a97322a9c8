//! Golden tests for rule sets: every `tests/fixtures/rules/NAME.yaml` (one rule file) or
//! `tests/fixtures/rules/NAME/` (several rule files, `.rhai` libraries, and rule tests under
//! `NAME/tests/`) is loaded, and what `tiercare check` (and `test`) would print must equal
//! `NAME.expected`. A rule file may start with comment lines
//!
//! - `# customer: {"orders_total": 3, ...}`: evaluate that customer (JSON feature values) and
//!   print the decision and its errors;
//! - `# explain: {...}`: the same, printing the whole explanation.
//!
//! Run with `UPDATE_GOLDEN=1` to rewrite the expected files after a deliberate change.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{check_golden, read_rule_set, snapshot};
use tiercare_engine::{RuleFile, load_rules, render_all, run_rule_tests};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rules")
}

/// What `tiercare check` (then `test`, `explain`) would print for these files.
fn render(files: &[RuleFile], tests: &[RuleFile]) -> String {
    let loaded = match load_rules(files) {
        Err(diagnostics) => return render_all(&diagnostics, false),
        Ok(loaded) => loaded,
    };
    let mut out = render_all(&loaded.warnings, false);
    let mut evaluator = loaded.rules.evaluator();
    for file in files {
        for line in file.text.lines().take_while(|line| line.starts_with('#')) {
            if let Some(json) = line.strip_prefix("# customer: ") {
                let decision = evaluator.evaluate(&snapshot(json));
                out.push_str(&format!(
                    "customer {json}: tier {} ({})\n",
                    decision.tier.as_deref().unwrap_or("none"),
                    decision.reason
                ));
                for (set, segment) in &decision.segments {
                    out.push_str(&format!(
                        "  {set}: {}\n",
                        segment.as_deref().unwrap_or("none")
                    ));
                }
                for error in &decision.errors {
                    out.push_str(&format!("  error: {error}\n"));
                }
            } else if let Some(json) = line.strip_prefix("# explain: ") {
                out.push_str(&evaluator.explain(&snapshot(json)).render());
            }
        }
    }
    if !tests.is_empty() {
        out.push_str(&run_rule_tests(&loaded.rules, tests).render(false));
    }
    if out.is_empty() {
        out.push_str("ok\n");
    }
    out
}

#[test]
fn rule_fixtures_render_as_expected() {
    let mut names: Vec<(String, bool)> = fs::read_dir(fixtures())
        .expect("fixtures directory")
        .filter_map(|entry| {
            let path = entry.expect("directory entry").path();
            let name = path.file_stem()?.to_str()?.to_owned();
            if path.is_dir() {
                (name != "generated").then_some((name, true))
            } else {
                (path.extension()? == "yaml").then_some((name, false))
            }
        })
        .collect();
    names.sort();
    assert!(names.len() >= 25, "fixtures went missing: {names:?}");
    let mut failures = Vec::new();
    for (name, is_dir) in &names {
        let (files, tests) = if *is_dir {
            read_rule_set(&fixtures(), name)
        } else {
            let file = format!("{name}.yaml");
            let text = fs::read_to_string(fixtures().join(&file)).expect("read fixture");
            (vec![RuleFile::new(file, text)], Vec::new())
        };
        let started = Instant::now();
        let actual = render(&files, &tests);
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{name} took {:?}",
            started.elapsed()
        );
        failures.extend(check_golden(
            &fixtures().join(format!("{name}.expected")),
            &actual,
        ));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

const TIERS: &str = "tiering:\n  window: 365d\n  tiers:\n    - id: A\n      when: true\n";

#[test]
fn quadratic_alias_bomb_is_refused_in_well_under_a_second() {
    let mut text = String::from(TIERS);
    text.push_str("segments:\n  bomb:\n    - &lots [");
    text.push_str(&vec!["lol"; 1000].join(","));
    text.push_str("]\n");
    for _ in 0..1000 {
        text.push_str("    - *lots\n");
    }
    let started = Instant::now();
    let actual = render(&[RuleFile::new("bomb.yaml", text)], &[]);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    if let Some(failure) = check_golden(
        &fixtures().join("generated/quadratic_alias_bomb.expected"),
        &actual,
    ) {
        panic!("{failure}");
    }
}

#[test]
fn rule_file_over_the_size_limit_is_refused_before_parsing() {
    let mut text = String::from(TIERS);
    while text.len() <= 1024 * 1024 {
        text.push_str("# padding padding padding padding padding padding padding padding\n");
    }
    let started = Instant::now();
    let actual = render(&[RuleFile::new("huge.yaml", text.clone())], &[]);
    assert!(started.elapsed() < Duration::from_secs(1));
    if let Some(failure) = check_golden(
        &fixtures().join("generated/file_too_large.expected"),
        &actual,
    ) {
        panic!("{failure}");
    }
    // A library over the limit too.
    let actual = render(
        &[
            RuleFile::new("tiers.yaml", TIERS),
            RuleFile::new("huge.rhai", text),
        ],
        &[],
    );
    assert!(
        actual.starts_with("huge.rhai:1:1: error: file is too large"),
        "{actual}"
    );
}
