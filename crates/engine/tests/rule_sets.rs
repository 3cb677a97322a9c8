//! Every rule set the project ships (the default `rules/` and the examples' `rules/`) loads
//! without warnings, its files validate against the JSON Schema, and its own rule tests pass, run
//! by the same runner as `tiercare test`. The committed `rules/tiercare.schema.json` is what
//! `tiercare schema` prints (`INSTA_UPDATE=always` rewrites it, as it accepts snapshots).

mod common;

use std::path::{Path, PathBuf};

use common::read_rule_set;
use serde_json::Value;
use tiercare_engine::{RuleFile, load_rules, render_all, rules_json_schema, run_rule_tests};

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Loads the rule set in `dir`, runs its tests, and returns how many passed.
fn check_rule_set(dir: &str, minimum_tests: usize) -> usize {
    let (rule_files, test_files) = read_rule_set(&repository(), dir);
    assert!(!rule_files.is_empty(), "{dir} has no rule files");
    let loaded = match load_rules(&rule_files) {
        Ok(loaded) => loaded,
        Err(diagnostics) => panic!("{dir}:\n{}", render_all(&diagnostics, false)),
    };
    assert!(
        loaded.warnings.is_empty(),
        "{dir}:\n{}",
        render_all(&loaded.warnings, false)
    );
    let report = run_rule_tests(&loaded.rules, &test_files);
    assert!(report.is_success(), "{dir}:\n{}", report.render(false));
    assert!(
        report.passed >= minimum_tests,
        "{dir}: only {} tests",
        report.passed
    );
    let schema = rules_json_schema();
    for file in rule_files.iter().chain(&test_files) {
        if file.path.ends_with(".rhai") {
            continue;
        }
        assert!(
            file.text.lines().next().is_some_and(|line| {
                line.starts_with("# yaml-language-server: $schema=")
                    && line.ends_with("tiercare.schema.json")
            }),
            "{} must start with the schema comment",
            file.path
        );
        let errors = schema_errors(&schema, &file.text);
        assert!(errors.is_empty(), "{}: {errors:?}", file.path);
    }
    report.passed
}

#[test]
fn default_rules_load_and_pass_their_tests() {
    check_rule_set("rules", 30);
}

#[test]
fn online_retail_example_rules_pass_their_tests() {
    check_rule_set("examples/online-retail/rules", 8);
}

#[test]
fn b2b_example_rules_pass_their_tests() {
    check_rule_set("examples/b2b/rules", 10);
}

#[test]
fn committed_schema_is_what_the_engine_prints() {
    let mut text = serde_json::to_string_pretty(&rules_json_schema()).expect("JSON");
    text.push('\n');
    let path = repository().join("rules/tiercare.schema.json");
    if std::env::var("INSTA_UPDATE").as_deref() == Ok("always") {
        std::fs::write(&path, &text).expect("write the schema");
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed != text {
        let diff = similar::TextDiff::from_lines(&committed, &text)
            .unified_diff()
            .header("rules/tiercare.schema.json", "rules_json_schema()")
            .to_string();
        panic!(
            "{diff}\n(`INSTA_UPDATE=always cargo test -p tiercare-engine --test rule_sets` rewrites it)"
        );
    }
}

#[test]
fn the_schema_refuses_an_unknown_key() {
    let schema = rules_json_schema();
    let errors = schema_errors(
        &schema,
        "tiering:\n  window: 365d\n  tierz: []\n  tiers:\n    - { id: A, when: true }\n",
    );
    assert!(!errors.is_empty());
    let errors = schema_errors(
        &schema,
        "tests:\n  - name: x\n    customer: { orders: 1 }\n    expect: {}\n",
    );
    assert!(!errors.is_empty());
    let errors = schema_errors(
        &schema,
        "segments:\n  rfm:\n    - { id: a, when: true, colour: red }\n",
    );
    assert!(!errors.is_empty());
}

#[test]
fn a_rule_set_version_is_stable_and_order_independent() {
    let (files, _) = read_rule_set(&repository(), "rules");
    let version = load_rules(&files)
        .expect("loads")
        .rules
        .version()
        .to_owned();
    let mut reversed = files.clone();
    reversed.reverse();
    assert_eq!(
        load_rules(&reversed).expect("loads").rules.version(),
        version
    );
    assert_eq!(version.len(), 16);
    let mut edited = files;
    edited[0] = RuleFile::new(edited[0].path.clone(), format!("{}\n", edited[0].text));
    assert_ne!(load_rules(&edited).expect("loads").rules.version(), version);
}

/// A tiny structural JSON Schema check (the subset our schema uses: `type`, `properties`,
/// `additionalProperties`, `required`, `items`, `minItems`, `enum`, `minimum`, `maximum`,
/// `anyOf` and local `$ref`s); returns what does not fit, as JSON pointers with a reason.
fn schema_errors(schema: &Value, yaml: &str) -> Vec<String> {
    let value: Value = serde_yaml::from_str(yaml).expect("YAML");
    let mut errors = Vec::new();
    check(schema, schema, &value, "", &mut errors);
    errors
}

fn check(root: &Value, schema: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference
            .strip_prefix("#/$defs/")
            .expect("a local reference");
        check(root, &root["$defs"][name], value, at, errors);
    }
    if let Some(options) = schema["anyOf"].as_array() {
        let fits = options.iter().any(|option| {
            let mut inner = Vec::new();
            check(root, option, value, at, &mut inner);
            inner.is_empty()
        });
        if !fits {
            errors.push(format!("{at}: fits none of anyOf"));
        }
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(one) => vec![one.as_str()],
        Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if !types.is_empty() {
        let fits = types.iter().any(|ty| match *ty {
            "object" => value.is_object(),
            "array" => value.is_array(),
            "string" => value.is_string(),
            "boolean" => value.is_boolean(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            "null" => value.is_null(),
            other => panic!("unknown type {other}"),
        });
        if !fits {
            errors.push(format!("{at}: {value} is not {types:?}"));
            return;
        }
    }
    if let Some(allowed) = schema["enum"].as_array()
        && !allowed.contains(value)
    {
        errors.push(format!("{at}: {value} is not one of {allowed:?}"));
    }
    if let (Some(minimum), Some(number)) = (schema["minimum"].as_f64(), value.as_f64())
        && number < minimum
    {
        errors.push(format!("{at}: {number} < {minimum}"));
    }
    if let (Some(maximum), Some(number)) = (schema["maximum"].as_f64(), value.as_f64())
        && number > maximum
    {
        errors.push(format!("{at}: {number} > {maximum}"));
    }
    if let Some(object) = value.as_object() {
        for required in schema["required"].as_array().into_iter().flatten() {
            let key = required.as_str().expect("a key");
            if !object.contains_key(key) {
                errors.push(format!("{at}: missing `{key}`"));
            }
        }
        for (key, item) in object {
            let path = format!("{at}/{key}");
            match schema["properties"].get(key) {
                Some(property) => check(root, property, item, &path, errors),
                None => match &schema["additionalProperties"] {
                    Value::Bool(false) => errors.push(format!("{path}: unknown key")),
                    Value::Object(_) => {
                        check(root, &schema["additionalProperties"], item, &path, errors);
                    }
                    _ => {}
                },
            }
        }
    }
    if let Some(array) = value.as_array() {
        if let Some(minimum) = schema["minItems"].as_u64()
            && (array.len() as u64) < minimum
        {
            errors.push(format!("{at}: fewer than {minimum} items"));
        }
        if schema["items"].is_object() {
            for (index, item) in array.iter().enumerate() {
                check(
                    root,
                    &schema["items"],
                    item,
                    &format!("{at}/{index}"),
                    errors,
                );
            }
        }
    }
}
