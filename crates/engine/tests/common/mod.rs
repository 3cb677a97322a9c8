//! Helpers shared by the rule tests: reading a rule folder, fixture lists, and snapshots of
//! what the fixtures print (insta, in `tests/snapshots/`).

use std::fs;
use std::path::Path;

use tiercare_engine::{Feature, FeatureType, FeatureValue, RuleFile, Snapshot};

/// The rule files (`DIR/*.yaml`, `DIR/*.rhai`) and rule-test files (`DIR/tests/*.yaml`) of a rule
/// folder, with paths relative to `root` (as the CLI shows them), sorted.
#[allow(
    dead_code,
    reason = "not every test binary that includes this module reads rule folders"
)]
pub fn read_rule_set(root: &Path, dir: &str) -> (Vec<RuleFile>, Vec<RuleFile>) {
    let read = |sub: &str, extensions: &[&str]| -> Vec<RuleFile> {
        let folder = root.join(sub);
        let Ok(entries) = fs::read_dir(&folder) else {
            return Vec::new();
        };
        let mut files: Vec<RuleFile> = entries
            .map(|entry| entry.expect("directory entry").path())
            .filter(|path| {
                path.is_file()
                    && path
                        .extension()
                        .and_then(|e| e.to_str())
                        .is_some_and(|e| extensions.contains(&e))
            })
            .map(|path| {
                let name = path.file_name().expect("a name").to_string_lossy();
                RuleFile::new(
                    format!("{sub}/{name}"),
                    fs::read_to_string(&path).expect("read a rule file"),
                )
            })
            .collect();
        files.sort_by(|a, b| a.path.cmp(&b.path));
        files
    };
    (
        read(dir, &["yaml", "yml", "rhai"]),
        read(&format!("{dir}/tests"), &["yaml", "yml"]),
    )
}

/// Checks `actual` against the insta snapshot `tests/snapshots/AREA/NAME.snap`, recording the
/// fixture it came from (`input`, relative to `tests/fixtures/`; none for an input the test
/// generates) in the snapshot's header.
/// A difference fails with a real diff; `INSTA_UPDATE=always` (or `cargo insta review`) accepts
/// deliberate changes.
#[allow(
    dead_code,
    reason = "not every test binary that includes this module checks fixture snapshots"
)]
pub fn assert_fixture_snapshot(area: &str, name: &str, input: Option<&str>, actual: &str) {
    let tests = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(tests.join("snapshots").join(area));
    settings.set_prepend_module_to_snapshot(false);
    if let Some(input) = input {
        settings.set_input_file(tests.join("fixtures").join(input));
    }
    settings.set_omit_expression(true);
    settings.bind(|| insta::assert_snapshot!(name, actual));
}

/// The names of `dir`'s entries that `is_fixture` accepts (it gets each path and returns the
/// fixture's name), sorted: what the `fixtures!` list of a test file must equal.
#[allow(
    dead_code,
    reason = "not every test binary that includes this module lists fixtures"
)]
pub fn fixture_names(dir: &Path, is_fixture: impl Fn(&Path) -> Option<String>) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap_or_else(|error| panic!("{}: {error}", dir.display()))
        .filter_map(|entry| is_fixture(&entry.expect("directory entry").path()))
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Fails unless the fixtures found on disk are exactly those a test file lists, so that a new
/// fixture cannot be skipped silently (nor a listed one go missing).
#[allow(
    dead_code,
    reason = "not every test binary that includes this module lists fixtures"
)]
pub fn assert_all_listed(on_disk: &[String], listed: &[&str]) {
    let unlisted: Vec<&String> = on_disk
        .iter()
        .filter(|name| !listed.contains(&name.as_str()))
        .collect();
    let missing: Vec<&&str> = listed
        .iter()
        .filter(|name| !on_disk.iter().any(|found| found == *name))
        .collect();
    assert!(
        unlisted.is_empty() && missing.is_empty(),
        "add these fixtures to the `fixtures!` list: {unlisted:?}; \
         these listed fixtures are gone: {missing:?}"
    );
}

/// One `#[test]` per fixture, each calling `$check("name")`, and `FIXTURES`, the list of names.
#[macro_export]
macro_rules! fixtures {
    ($check:path: $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                $check(stringify!($name));
            }
        )*
        /// Every fixture this file has a test for.
        pub const FIXTURES: &[&str] = &[$(stringify!($name)),*];
    };
}

/// A snapshot from a JSON object of feature values (times as RFC 3339 text or unix seconds).
#[allow(
    dead_code,
    reason = "not every test binary that includes this module builds snapshots"
)]
pub fn snapshot(json: &str) -> Snapshot {
    let value: serde_json::Value = serde_json::from_str(json).expect("a JSON customer");
    let mut snapshot = Snapshot::new();
    for (name, value) in value.as_object().expect("a JSON object") {
        let feature = Feature::from_name(name).unwrap_or_else(|| panic!("feature {name}"));
        let value = match value {
            serde_json::Value::Null => FeatureValue::None,
            serde_json::Value::Bool(b) => FeatureValue::Bool(*b),
            serde_json::Value::Number(n) if n.is_i64() => FeatureValue::Int(n.as_i64().unwrap()),
            serde_json::Value::Number(n) => FeatureValue::Float(n.as_f64().unwrap()),
            serde_json::Value::String(s) if feature.ty() == FeatureType::Time => FeatureValue::Int(
                chrono::DateTime::parse_from_rfc3339(s)
                    .unwrap_or_else(|_| panic!("an RFC 3339 time: {s}"))
                    .timestamp(),
            ),
            serde_json::Value::String(s) => FeatureValue::Text(s.clone()),
            serde_json::Value::Object(map) => FeatureValue::Map(map.clone()),
            serde_json::Value::Array(_) => panic!("no feature is an array"),
        };
        snapshot
            .set(feature, value)
            .expect("a value of the right type");
    }
    snapshot
}
