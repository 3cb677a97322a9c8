//! End-to-end tests of the tiering commands: check, test, assess, explain, pin, schema,
//! functions, on the real binary with real SQLite files.

use crate::common;

use std::fs;
use std::path::Path;

use common::Workspace;

#[test]
fn the_default_rules_check_and_pass_their_tests() {
    let ws = Workspace::new();
    let out = ws.run(&["check"]);
    out.assert_code(0);
    out.assert_stdout_contains("files OK, version");
    let out = ws.run(&["test"]);
    out.assert_code(0);
    out.assert_stdout_contains("0 failed");
}

#[test]
fn every_example_rule_set_checks_and_passes_its_tests() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tmp = tempfile::tempdir().unwrap();
    for dir in [
        "rules",
        "examples/online-retail/rules",
        "examples/b2b/rules",
    ] {
        let dir = root.join(dir);
        let dir = dir.to_str().unwrap();
        common::run_in(tmp.path(), &["check", "--rules", dir]).assert_code(0);
        let out = common::run_in(tmp.path(), &["test", "--rules", dir, "--json"]);
        out.assert_code(0);
        assert!(
            out.json()["passed"].as_u64().unwrap() > 0,
            "{dir} has tests"
        );
    }
}

#[test]
fn check_reports_every_error_at_its_place_and_exits_1() {
    let ws = Workspace::new();
    fs::write(
        ws.path("rules/broken.yaml"),
        "segments:\n  extra:\n    - id: big\n      when: revenue_windw > 100\n    - id: odd\n      when: (1 +\n",
    )
    .unwrap();
    let out = ws.run(&["check"]);
    out.assert_code(1);
    out.assert_stderr_contains("rules/broken.yaml:4:13");
    out.assert_stderr_contains("revenue_window");
    out.assert_stderr_contains("rules/broken.yaml:6:");
    // A broken rule set assesses nothing.
    ws.run(&["assess"]).assert_code(2);
    assert_eq!(ws.count("SELECT count(*) FROM assessments"), 0);
}

#[test]
fn a_failing_rule_test_is_reported_at_its_line() {
    let ws = Workspace::new();
    fs::write(
        ws.path("rules/tests/mine.yaml"),
        "tests:\n  - name: a big spender is C (wrong on purpose)\n    customer: { revenue_window: 1000.0, revenue_share_before: 0.1 }\n    expect: { tier: C }\n",
    )
    .unwrap();
    let out = ws.run(&["test"]);
    out.assert_code(1);
    out.assert_stdout_contains("rules/tests/mine.yaml:4:21: error: test `a big spender is C (wrong on purpose)`: expected tier `C`, got `A`");
    out.assert_stdout_contains("1 failed");
}

#[test]
fn assess_records_tiers_and_history_and_a_dry_run_writes_nothing() {
    let ws = Workspace::with_quickstart();
    let dry = ws.run(&["assess", "--at", "2025-11-01", "--dry-run", "--json"]);
    dry.assert_code(0);
    assert_eq!(ws.count("SELECT count(*) FROM customer_tiers"), 0);
    assert_eq!(ws.count("SELECT count(*) FROM assessments"), 0);

    let out = ws.run(&["assess", "--at", "2025-11-01", "--json"]);
    out.assert_code(0);
    let report = out.json();
    assert_eq!(report["customers"], 8);
    let tiers: Vec<(String, u64)> = report["tiers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["tier"].as_str().unwrap().to_owned(),
                t["customers"].as_u64().unwrap(),
            )
        })
        .collect();
    // Revenue in the year before 2025-11-01: C001 48,820.50 (79.2%), C002 8,250 (13.4%),
    // C004 2,170 (3.5%), C006 1,350, C003 805.50, C008 150, C005 89.90; C007's order is older.
    assert_eq!(
        tiers,
        [
            ("A".to_owned(), 2),
            ("B".to_owned(), 1),
            ("C".to_owned(), 5)
        ]
    );
    assert_eq!(
        report["tiers"],
        dry.json()["tiers"],
        "a dry run decides the same"
    );
    let a: String = ws.query_one(
        "SELECT group_concat(c.external_id) FROM customer_tiers t JOIN customers c ON c.id = t.customer_id WHERE t.tier = 'A' ORDER BY c.external_id",
    );
    assert_eq!(a, "C001,C002");
    assert_eq!(ws.count("SELECT count(*) FROM tier_history"), 8);
    let reasons: String = ws.query_one(
        "SELECT t.reasons FROM customer_tiers t JOIN customers c ON c.id = t.customer_id WHERE c.external_id = 'C004'",
    );
    let reasons: serde_json::Value = serde_json::from_str(&reasons).unwrap();
    assert_eq!(reasons["rule_tier"], "B");
    assert!(
        reasons["reason"]
            .as_str()
            .unwrap()
            .starts_with("B: revenue_window > 0 && revenue_share_before < 0.95"),
        "{reasons}"
    );
    let segments = &report["segments"];
    assert!(
        segments
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["set"] == "rfm")
    );

    // The same assessment again changes nothing and adds no history.
    let again = ws.run(&["assess", "--at", "2025-11-01", "--json"]);
    again.assert_code(0);
    assert_eq!(again.json()["changed"], 0);
    assert_eq!(ws.count("SELECT count(*) FROM tier_history"), 8);
    assert_eq!(ws.count("SELECT count(*) FROM assessments"), 2);
}

#[test]
fn explain_shows_the_rules_values_pins_and_history() {
    let ws = Workspace::with_quickstart();
    ws.run(&["assess", "--at", "2025-11-01"]).assert_code(0);
    let out = ws.run(&["explain", "C004", "--at", "2025-11-01"]);
    out.assert_code(0);
    out.assert_stdout_contains("tier B");
    out.assert_stdout_contains("revenue_share_before = 0.9");
    out.assert_stdout_contains("rules/tiers.yaml:");
    out.assert_stdout_contains("(new) -> B");

    let json = ws.run(&["explain", "C004", "--at", "2025-11-01", "--json"]);
    json.assert_code(0);
    assert_eq!(json.json()["explanation"]["decision"]["tier"], "B");

    let missing = ws.run(&["explain", "NOPE"]);
    missing.assert_code(2);
    missing.assert_stderr_contains("NOPE");
}

#[test]
fn a_pin_beats_the_rules_until_removed() {
    let ws = Workspace::with_quickstart();
    let out = ws.run(&[
        "pin",
        "C007",
        "A",
        "--reason",
        "strategic partner",
        "--by",
        "alice",
    ]);
    out.assert_code(0);
    ws.run(&["pin", "C007", "Z", "--reason", "x"])
        .assert_stderr_contains("unknown tier `Z`");
    ws.run(&["pin", "NOPE", "A", "--reason", "x"])
        .assert_code(2);

    ws.run(&["assess", "--at", "2025-11-01"]).assert_code(0);
    let tier: String = ws.query_one(
        "SELECT t.tier FROM customer_tiers t JOIN customers c ON c.id = t.customer_id WHERE c.external_id = 'C007'",
    );
    assert_eq!(tier, "A");
    let out = ws.run(&["explain", "C007", "--at", "2025-11-01"]);
    out.assert_stdout_contains("pinned by alice");
    out.assert_stdout_contains("strategic partner");

    ws.run(&["unpin", "C007"]).assert_code(0);
    ws.run(&["assess", "--at", "2025-11-01"]).assert_code(0);
    let tier: String = ws.query_one(
        "SELECT t.tier FROM customer_tiers t JOIN customers c ON c.id = t.customer_id WHERE c.external_id = 'C007'",
    );
    assert_eq!(
        tier, "A",
        "hysteresis holds the downgrade for one more assessment"
    );
    // The same assessment again counts once (hysteresis counts time, not runs)...
    ws.run(&["assess", "--at", "2025-11-01"]).assert_code(0);
    let tier: String = ws.query_one(
        "SELECT t.tier FROM customer_tiers t JOIN customers c ON c.id = t.customer_id WHERE c.external_id = 'C007'",
    );
    assert_eq!(
        tier, "A",
        "a second run at the same time is not a second day"
    );
    ws.run(&["assess", "--at", "2025-11-02"]).assert_code(0);
    let tier: String = ws.query_one(
        "SELECT t.tier FROM customer_tiers t JOIN customers c ON c.id = t.customer_id WHERE c.external_id = 'C007'",
    );
    assert_eq!(
        tier, "C",
        "downgrade_after: 2 lets it through on the assessment a day later"
    );
}

#[test]
fn a_runaway_rule_fails_for_each_customer_and_the_assessment_goes_on() {
    let ws = Workspace::with_quickstart();
    fs::write(
        ws.path("rules/spin.rhai"),
        "fn spin(x) { let n = 0; while x > 0 { n += 1; } n }\n",
    )
    .unwrap();
    fs::write(
        ws.path("rules/spin.yaml"),
        "segments:\n  spinning:\n    - id: forever\n      when: revenue_window > 0 && spin(revenue_window) > 0\n",
    )
    .unwrap();
    // Failing for most customers is allowed here (by default it stops the assessment).
    let config = fs::read_to_string(ws.path("tiercare.toml")).unwrap();
    let config = config.replace("\n[rules]\n", "\n[rules]\nmax_failure_share = 1.0\n");
    fs::write(ws.path("tiercare.toml"), config).unwrap();
    let out = ws.run(&["assess", "--at", "2025-11-01", "--json"]);
    out.assert_code(1);
    let report = out.json();
    assert_eq!(report["customers"], 8, "every customer was assessed");
    let errors = report["rule_errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0]["rule"].as_str().unwrap().contains("forever"),
        "{errors:?}"
    );
    let failed = errors[0]["customers"].as_i64().unwrap();
    assert!(failed >= 7, "{errors:?}");
    assert_eq!(report["failed_customers"], failed);
    // Nothing is recorded for a customer whose rules failed (a failing rule never moves one).
    assert_eq!(ws.count("SELECT count(*) FROM customer_tiers"), 8 - failed);
}

#[test]
fn schema_and_functions_describe_the_rules() {
    let ws = Workspace::new();
    let out = ws.run(&["schema"]);
    out.assert_code(0);
    let schema = out.json();
    assert!(
        schema["$schema"]
            .as_str()
            .unwrap()
            .contains("json-schema.org")
    );
    assert_eq!(
        fs::read_to_string(ws.path("rules/tiercare.schema.json"))
            .unwrap()
            .trim(),
        out.stdout.trim(),
        "the schema init copies is the one the binary prints"
    );
    let out = ws.run(&["functions", "--json"]);
    out.assert_code(0);
    let catalog = out.json();
    let names: Vec<&str> = catalog["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    for feature in [
        "revenue_share_before",
        "r_score",
        "days_since_last_contact",
        "attr",
    ] {
        assert!(names.contains(&feature), "{feature} missing from {names:?}");
    }
}

#[test]
fn rules_that_read_custom_attributes_get_them_and_others_decide_the_same_without() {
    // An assessment parses every customer's attributes only when some rule reads `attr`.
    let ws = Workspace::with_quickstart();
    let plain = ws.run(&["assess", "--at", "2025-11-01", "--dry-run", "--json"]);
    plain.assert_code(0);
    let tiers = |run: &common::Run| run.json()["tiers"].clone();

    let rules = fs::read_to_string(ws.path("rules/tiers.yaml")).unwrap();
    let by_potential = rules.replacen(
        "when: revenue_window > 0 && revenue_share_before < 0.80",
        "when: (attr.potential ?? 0) >= 60",
        1,
    );
    assert_ne!(by_potential, rules);
    ws.write("rules/tiers.yaml", &by_potential);
    let out = ws.run(&["assess", "--at", "2025-11-01", "--json"]);
    out.assert_code(0);
    assert_ne!(tiers(&out), tiers(&plain));
    let a: String = ws.query_one(
        "SELECT group_concat(id) FROM (SELECT c.external_id AS id FROM customer_tiers t \
         JOIN customers c ON c.id = t.customer_id WHERE t.tier = 'A' ORDER BY 1)",
    );
    let expected: String = ws.query_one(
        "SELECT group_concat(id) FROM (SELECT external_id AS id FROM customers \
         WHERE json_extract(attributes, '$.potential') >= 60 ORDER BY 1)",
    );
    assert!(expected.contains(','), "{expected}: several customers");
    assert_eq!(a, expected);
}
