//! The `--json` vocabulary (docs/json.md): every command's JSON writes times as RFC 3339 strings
//! in the workspace's zone, under the keys the page lists, and names tiers `tier`.

use crate::common;

use common::Workspace;
use serde_json::Value;

/// The time keys docs/json.md documents: the backticked keys of its "Times" table.
fn documented_time_keys() -> (Vec<String>, Vec<String>) {
    let page = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/json.md"))
        .expect("docs/json.md");
    let times = page
        .split("## Times")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("a Times section");
    let (mut exact, mut suffixes) = (Vec::new(), Vec::new());
    for line in times.lines().filter(|line| line.starts_with("| `")) {
        let first_cell = line.split('|').nth(1).unwrap_or_default();
        for key in first_cell.split('`').skip(1).step_by(2) {
            match key.strip_prefix('…') {
                Some(suffix) => suffixes.push(suffix.to_owned()),
                None => exact.push(key.to_owned()),
            }
        }
    }
    (exact, suffixes)
}

/// Every problem of `value` (found at `path`) with the vocabulary.
fn check(value: &Value, key: &str, path: &str, problems: &mut Vec<String>) {
    let (exact, suffixes) = documented_time_keys();
    let is_time_key = exact.iter().any(|k| k == key) || suffixes.iter().any(|s| key.ends_with(s));
    match value {
        Value::Object(fields) => {
            for (k, v) in fields {
                check(v, k, &format!("{path}.{k}"), problems);
            }
            if key == "tiers" && !fields.contains_key("tier") {
                problems.push(format!("{path}: a tier without `tier`"));
            }
        }
        Value::Array(items) => {
            for item in items {
                check(item, key, &format!("{path}[]"), problems);
            }
        }
        Value::Number(n) => {
            // Unix seconds between 2000 and 2100 anywhere, or any integer under a time key.
            let looks_like_unix = n
                .as_i64()
                .is_some_and(|n| (946_684_800..4_102_444_800).contains(&n));
            if (is_time_key && n.is_i64()) || (looks_like_unix && key != "application_id") {
                problems.push(format!("{path}: a time as a number ({n})"));
            }
        }
        Value::String(text) if is_time_key && !matches!(key, "from" | "to") => {
            match chrono::DateTime::parse_from_rfc3339(text) {
                // The workspace is in Asia/Shanghai: +08:00, never UTC.
                Ok(time) if time.offset().local_minus_utc() == 8 * 3600 => {}
                _ => problems.push(format!("{path}: `{text}` is not RFC 3339 in the zone")),
            }
        }
        _ => {}
    }
}

#[test]
fn every_commands_json_writes_times_as_rfc3339_in_the_workspace_zone_and_tiers_as_tier() {
    let ws = Workspace::with_quickstart();
    std::fs::write(
        ws.path("tiercare.toml"),
        std::fs::read_to_string(ws.path("tiercare.toml"))
            .unwrap()
            .replace(
                "timezone = \"Europe/London\"",
                "timezone = \"Asia/Shanghai\"",
            ),
    )
    .unwrap();
    ws.run(&["assess", "--at", "2025-06-01"]).assert_code(0);
    ws.run(&[
        "followups",
        "record",
        "--from",
        "2025-06-01",
        "--until",
        "2025-07-01",
    ])
    .assert_code(0);
    ws.run(&["assess", "--at", "2025-07-01"]).assert_code(0);
    let commands: &[&[&str]] = &[
        &["assess", "--at", "2025-07-02", "--dry-run", "--json"],
        &["report", "--json"],
        &["plan", "--from", "2025-07-01", "--days", "7", "--json"],
        &[
            "followups",
            "record",
            "--from",
            "2025-07-01",
            "--until",
            "2025-07-08",
            "--json",
        ],
        &["tasks", "--json"],
        &["outbox", "--json"],
        &["owners", "--json"],
        &["status", "--json"],
        &["check", "--json"],
        &["doctor", "--json"],
    ];
    let mut problems = Vec::new();
    for args in commands {
        let out = ws.run(args);
        assert!(
            [0, 1].contains(&out.code),
            "{args:?} exited {}: {}",
            out.code,
            out.stderr
        );
        check(&out.json(), "", &args.join(" "), &mut problems);
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
