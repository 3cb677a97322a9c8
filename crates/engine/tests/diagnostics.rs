//! Golden tests for diagnostics: every `tests/fixtures/mapping/*.yaml` is parsed as a mapping
//! (for orders unless its first lines say `# kind: KIND`; bound to a header when they say
//! `# header: a,b,c`), and the rendered, colourless output must equal the `*.expected` file
//! beside it. Run with `UPDATE_GOLDEN=1` to rewrite the expected files after a deliberate change.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tiercare_engine::{Mapping, RecordKind, render_all};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mapping")
}

/// What `tiercare check` would print for this mapping file.
fn render(name: &str, text: &str) -> String {
    let mut kind = RecordKind::Orders;
    let mut header: Option<Vec<String>> = None;
    for line in text.lines().take_while(|line| line.starts_with('#')) {
        if let Some(value) = line.strip_prefix("# kind: ") {
            kind = value.parse().expect("a record kind");
        } else if let Some(value) = line.strip_prefix("# header: ") {
            header = Some(value.split(',').map(str::to_owned).collect());
        }
    }
    match Mapping::parse(name, text, kind) {
        Err(diagnostics) => render_all(&diagnostics, false),
        Ok(mapping) => {
            let mut out = render_all(mapping.warnings(), false);
            if let Some(header) = header {
                let header: Vec<&str> = header.iter().map(String::as_str).collect();
                match mapping.bind(&header, chrono_tz::UTC) {
                    Ok(_) => out.push_str("bound\n"),
                    Err(err) => out.push_str(&format!("{err}\n")),
                }
            }
            if out.is_empty() {
                out.push_str("ok\n");
            }
            out
        }
    }
}

/// Compares `actual` with `<name>.expected` (or rewrites it under `UPDATE_GOLDEN=1`); returns a
/// description of the difference.
fn check_golden(name: &str, actual: &str) -> Option<String> {
    let path = fixtures().join(format!("{name}.expected"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).expect("write golden file");
        return None;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    (expected != actual).then(|| {
        format!(
            "--- {}\n+++ actual\n{}",
            path.display(),
            diff(&expected, actual)
        )
    })
}

fn diff(expected: &str, actual: &str) -> String {
    let mut out = String::new();
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
}

#[test]
fn mapping_fixtures_render_as_expected() {
    let mut names: Vec<String> = std::fs::read_dir(fixtures())
        .expect("fixtures directory")
        .filter_map(|entry| {
            let path = entry.expect("directory entry").path();
            (path.extension()? == "yaml").then(|| path.file_stem()?.to_str().map(str::to_owned))?
        })
        .collect();
    names.sort();
    assert!(names.len() >= 20, "fixtures went missing: {names:?}");
    let mut failures = Vec::new();
    for name in &names {
        let file = format!("{name}.yaml");
        let text = std::fs::read_to_string(fixtures().join(&file)).expect("read fixture");
        let started = Instant::now();
        let actual = render(&file, &text);
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{file} took {:?}",
            started.elapsed()
        );
        failures.extend(check_golden(name, &actual));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn quadratic_alias_bomb_is_refused_in_well_under_a_second() {
    // One anchor of a 1,000-element list referenced 1,000 times: about 8 KB of YAML that
    // serde_yaml would expand to a million nodes (and a 1,000-element list of 10,000 x 10,000
    // would be gigabytes).
    let mut text = String::from("columns:\n  order_id: InvoiceNo\nbomb:\n  - &lots [");
    text.push_str(&vec!["lol"; 1000].join(","));
    text.push_str("]\n");
    for _ in 0..1000 {
        text.push_str("  - *lots\n");
    }
    let started = Instant::now();
    let actual = render("quadratic_alias_bomb.yaml", &text);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "took {:?}",
        started.elapsed()
    );
    if let Some(failure) = check_golden("generated/quadratic_alias_bomb", &actual) {
        panic!("{failure}");
    }
}

#[test]
fn file_over_the_size_limit_is_refused_before_parsing() {
    let mut text = String::from("columns:\n  order_id: InvoiceNo\n");
    while text.len() <= 1024 * 1024 {
        text.push_str("# padding padding padding padding padding padding padding padding\n");
    }
    let started = Instant::now();
    let actual = render("huge.yaml", &text);
    assert!(started.elapsed() < Duration::from_secs(1));
    if let Some(failure) = check_golden("generated/file_too_large", &actual) {
        panic!("{failure}");
    }
}
