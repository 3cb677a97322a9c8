//! Snapshot tests for care-email templates: the files of `tests/fixtures/templates/` are grouped
//! by template name (`NAME.eml.j2`, or `NAME.txt.j2` + `NAME.html.j2`), each group is loaded by
//! its own test, `fixture::NAME`, as `tiercare check` loads a template folder, and what it prints
//! (the diagnostics, or for a clean template its rendering for the sample customer) must equal
//! the insta snapshot `tests/snapshots/templates/NAME.snap` (a new fixture must be added to the
//! `fixtures!` list).
//!
//! After a deliberate change, `INSTA_UPDATE=always cargo test -p tiercare-engine --test templates`
//! rewrites the snapshots (or `cargo insta review` shows each change to accept).

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::{assert_all_listed, assert_fixture_snapshot, fixture_names};
use tiercare_engine::{TemplateContext, TemplateFile, load_templates, render_all};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/templates")
}

/// The template name of a fixture file: its name up to the first dot.
fn template_name(path: &Path) -> Option<String> {
    Some(path.file_name()?.to_str()?.split('.').next()?.to_owned())
}

/// Loads the files of template `NAME` and checks what they print against its snapshot.
fn check_fixture(stem: &str) {
    let mut files: Vec<TemplateFile> = fs::read_dir(fixtures())
        .expect("the fixture folder")
        .map(|entry| entry.expect("an entry").path())
        .filter(|path| template_name(path).as_deref() == Some(stem))
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            TemplateFile::new(name, fs::read_to_string(&path).expect("a fixture"))
        })
        .collect();
    assert!(!files.is_empty(), "no files for template {stem}");
    files.sort_by(|a, b| a.path.cmp(&b.path));
    let loaded = load_templates(&files);
    let mut out = render_all(&loaded.diagnostics, false);
    for name in loaded.templates.names() {
        let email = loaded
            .templates
            .render(name, &TemplateContext::sample())
            .expect("a clean template renders for the sample customer");
        out.push_str(&format!(
            "subject: {}\n--- text\n{}--- html\n{}",
            email.subject,
            email.text,
            email.html.as_deref().unwrap_or("(none)\n")
        ));
    }
    let input = format!("templates/{}", files[0].path);
    assert_fixture_snapshot("templates", stem, Some(&input), &out);
}

/// One test per template.
mod fixture {
    crate::fixtures! { super::check_fixture:
        bad_header,
        loop_attribute,
        missing_text,
        orphan,
        pair,
        syntax_error,
        twice,
        undefined_variable,
    }
}

#[test]
fn every_fixture_has_its_own_test() {
    let on_disk = fixture_names(&fixtures(), template_name);
    assert!(on_disk.len() >= 5, "fixtures are missing");
    assert_all_listed(&on_disk, fixture::FIXTURES);
}
