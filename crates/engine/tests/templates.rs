//! Golden tests for care-email templates: the files of `tests/fixtures/templates/` are grouped by
//! template name (`NAME.eml.j2`, or `NAME.txt.j2` + `NAME.html.j2`), each group is loaded as
//! `tiercare check` loads a template folder, and what it prints (the diagnostics, or for a clean
//! template its rendering for the sample customer) must equal `NAME.expected`.
//!
//! Run with `UPDATE_GOLDEN=1` to rewrite the expected files after a deliberate change.

#[expect(dead_code, reason = "only the golden-file helper is used here")]
mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use common::check_golden;
use tiercare_engine::{TemplateContext, TemplateFile, load_templates, render_all};

#[test]
fn template_fixtures_match_their_expected_output() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/templates");
    let mut groups: BTreeMap<String, Vec<TemplateFile>> = BTreeMap::new();
    for entry in fs::read_dir(&dir).expect("the fixture folder") {
        let path = entry.expect("an entry").path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with(".expected") {
            continue;
        }
        let stem = name.split('.').next().unwrap().to_owned();
        let text = fs::read_to_string(&path).expect("a fixture");
        groups
            .entry(stem)
            .or_default()
            .push(TemplateFile::new(name, text));
    }
    assert!(groups.len() >= 5, "fixtures are missing");
    let mut failures = Vec::new();
    for (stem, mut files) in groups {
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
        if let Some(diff) = check_golden(&dir.join(format!("{stem}.expected")), &out) {
            failures.push(diff);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
