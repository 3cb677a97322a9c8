//! Snapshot tests for diagnostics: every `tests/fixtures/mapping/NAME.yaml` is parsed as a
//! mapping by its own test, `fixture::NAME` (for orders unless its first lines say
//! `# kind: KIND`; bound to a header when they say `# header: a,b,c`), and the rendered,
//! colourless output must equal the insta snapshot `tests/snapshots/mapping/NAME.snap`. A new
//! fixture must be added to the `fixtures!` list (a test fails until it is). After a deliberate
//! change, `INSTA_UPDATE=always cargo test -p tiercare-engine --test diagnostics` rewrites the
//! snapshots (or `cargo insta review` shows each change to accept).

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{assert_all_listed, assert_fixture_snapshot, fixture_names};
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

/// Parses the fixture `NAME.yaml` and checks what it prints against its snapshot.
fn check_fixture(name: &str) {
    let file = format!("{name}.yaml");
    let text = std::fs::read_to_string(fixtures().join(&file)).expect("read fixture");
    let started = Instant::now();
    let actual = render(&file, &text);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{file} took {:?}",
        started.elapsed()
    );
    assert_fixture_snapshot("mapping", name, Some(&format!("mapping/{file}")), &actual);
}

/// One test per fixture.
mod fixture {
    crate::fixtures! { super::check_fixture:
        attributes_on_orders,
        bad_default,
        bad_delimiter,
        bad_strftime,
        both_columns_and_derive,
        dates_not_a_mapping,
        duplicate_key,
        empty_column_value,
        eval_disabled,
        exponential_alias_bomb,
        group_by_on_customers,
        kind_mismatch,
        missing_columns_delimiter,
        multiple_documents,
        rhai_syntax_block,
        rhai_syntax_plain,
        rhai_syntax_quoted,
        root_not_a_mapping,
        script_absent_column,
        several_errors,
        string_compared_with_number,
        time_format_without_date,
        unknown_field,
        unknown_function,
        unknown_key,
        unknown_kind,
        unknown_timezone,
        wrong_type,
        yaml_syntax_error,
    }
}

#[test]
fn every_fixture_has_its_own_test() {
    let on_disk = fixture_names(&fixtures(), |path| {
        (path.extension()? == "yaml").then(|| path.file_stem()?.to_str().map(str::to_owned))?
    });
    assert!(on_disk.len() >= 20, "fixtures went missing: {on_disk:?}");
    assert_all_listed(&on_disk, fixture::FIXTURES);
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
    assert_fixture_snapshot("mapping", "generated_quadratic_alias_bomb", None, &actual);
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
    assert_fixture_snapshot("mapping", "generated_file_too_large", None, &actual);
}
