//! The whole rule loader on one file: it must never panic, and every problem it reports must
//! point inside the file. A file that loads is also evaluated for an empty customer.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tiercare_engine::{RuleFile, Snapshot, load_rules};

const PATH: &str = "rules/fuzz.yaml";

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let lines = text.lines().count().max(1);
    let diagnostics = match load_rules(&[RuleFile::new(PATH, text.as_ref())]) {
        Ok(loaded) => {
            let _ = loaded.rules.evaluator().evaluate(&Snapshot::new());
            loaded.warnings
        }
        Err(diagnostics) => diagnostics,
    };
    for diagnostic in &diagnostics {
        assert_eq!(diagnostic.path, PATH);
        // One past the last line is where "unexpected end of file" points.
        assert!(
            (1..=lines + 1).contains(&diagnostic.line),
            "line {} of a {lines}-line file: {}",
            diagnostic.line,
            diagnostic.message
        );
        let _ = diagnostic.render(false);
    }
});
