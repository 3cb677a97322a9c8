//! Snapshot tests for rule sets: every `tests/fixtures/rules/NAME.yaml` (one rule file) or
//! `tests/fixtures/rules/NAME/` (several rule files, `.rhai` libraries, and rule tests under
//! `NAME/tests/`) is loaded by its own test, `fixture::NAME`, and what `tiercare check` (and
//! `test`) would print must equal the insta snapshot `tests/snapshots/rules/NAME.snap`. A new
//! fixture must be added to the `fixtures!` list (a test fails until it is). A rule file may
//! start with comment lines
//!
//! - `# customer: {"orders_total": 3, ...}`: evaluate that customer (JSON feature values) and
//!   print the decision and its errors;
//! - `# explain: {...}`: the same, printing the whole explanation.
//!
//! After a deliberate change, `INSTA_UPDATE=always cargo test -p tiercare-engine --test rules`
//! rewrites the snapshots (or `cargo insta review` shows each change to accept).

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{assert_all_listed, assert_fixture_snapshot, fixture_names, read_rule_set, snapshot};
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

/// Loads the fixture `NAME.yaml` or `NAME/` and checks what it prints against its snapshot.
fn check_fixture(name: &str) {
    let (files, tests, input) = if fixtures().join(name).is_dir() {
        let (files, tests) = read_rule_set(&fixtures(), name);
        (files, tests, format!("rules/{name}"))
    } else {
        let file = format!("{name}.yaml");
        let text = fs::read_to_string(fixtures().join(&file)).expect("read fixture");
        (
            vec![RuleFile::new(file.clone(), text)],
            Vec::new(),
            format!("rules/{file}"),
        )
    };
    let started = Instant::now();
    let actual = render(&files, &tests);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{name} took {:?}",
        started.elapsed()
    );
    assert_fixture_snapshot("rules", name, Some(&input), &actual);
}

/// One test per fixture.
mod fixture {
    crate::fixtures! { super::check_fixture:
        bad_downgrade_duration,
        bad_ids,
        bad_window,
        bad_window_no_unit,
        crlf_line_endings,
        division_by_zero,
        duplicate_key,
        duplicate_tier_id,
        duplicates_across_files,
        empty_file,
        endless_for_everyone,
        expected_orders_wrong_argument,
        explain,
        exponential_alias_bomb,
        failing_tests,
        function_in_condition,
        invalid_cron,
        invalid_cron_fields,
        library_duplicate_function,
        library_runtime_error,
        library_statement,
        library_syntax_error,
        library_uses_variable,
        library_wrong_arity,
        lone_carriage_returns,
        never_ending,
        no_catch_all,
        no_tiering,
        non_boolean_at_run_time,
        non_boolean_condition,
        rhai_syntax_block,
        rhai_syntax_plain,
        rhai_syntax_quoted,
        score_problems,
        several_errors,
        six_mistakes,
        task_title_placeholder,
        test_file_problems,
        text_compared_with_number,
        unknown_feature,
        unknown_function,
        unknown_key,
        unknown_key_in_tier,
        unknown_name_is_a_function,
        unreachable_rules,
        wrong_type,
        wrong_type_downgrade_after,
        yaml_syntax_error,
    }
}

#[test]
fn every_fixture_has_its_own_test() {
    let on_disk = fixture_names(&fixtures(), |path| {
        let name = path.file_stem()?.to_str()?.to_owned();
        if path.is_dir() {
            (name != "generated").then_some(name)
        } else {
            (path.extension()? == "yaml").then_some(name)
        }
    });
    assert_all_listed(&on_disk, fixture::FIXTURES);
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
    assert_fixture_snapshot("rules", "generated_quadratic_alias_bomb", None, &actual);
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
    assert_fixture_snapshot("rules", "generated_file_too_large", None, &actual);
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
