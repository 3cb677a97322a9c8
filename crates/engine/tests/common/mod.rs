//! Helpers shared by the rule tests: reading a rule folder, and golden files.

use std::fs;
use std::path::Path;

use tiercare_engine::{Feature, FeatureType, FeatureValue, RuleFile, Snapshot};

/// The rule files (`DIR/*.yaml`, `DIR/*.rhai`) and rule-test files (`DIR/tests/*.yaml`) of a rule
/// folder, with paths relative to `root` (as the CLI shows them), sorted.
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

/// Compares `actual` with the file at `path` (or rewrites it under `UPDATE_GOLDEN=1`); returns a
/// description of the difference.
pub fn check_golden(path: &Path, actual: &str) -> Option<String> {
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        fs::write(path, actual).expect("write golden file");
        return None;
    }
    let expected = fs::read_to_string(path).unwrap_or_default();
    (expected != actual).then(|| {
        let mut out = format!("--- {}\n+++ actual\n", path.display());
        let expected: Vec<&str> = expected.lines().collect();
        let actual: Vec<&str> = actual.lines().collect();
        for i in 0..expected.len().max(actual.len()) {
            match (expected.get(i), actual.get(i)) {
                (Some(e), Some(a)) if e == a => out.push_str(&format!("  {e}\n")),
                (e, a) => {
                    if let Some(e) = e {
                        out.push_str(&format!("- {e}\n"));
                    }
                    if let Some(a) = a {
                        out.push_str(&format!("+ {a}\n"));
                    }
                }
            }
        }
        out
    })
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
