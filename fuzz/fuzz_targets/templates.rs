//! A care-email template (`NAME.eml.j2`): loading it must never panic, and a template that loads
//! must render for the sample customer or fail with an error, never a panic or a hang (the
//! sandbox's fuel bounds the work).

#![no_main]

use libfuzzer_sys::fuzz_target;
use tiercare_engine::{TemplateContext, TemplateFile, load_templates};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let loaded = load_templates(&[TemplateFile::new("fuzz.eml.j2", text.as_ref())]);
    let context = TemplateContext::sample();
    let names: Vec<String> = loaded.templates.names().map(str::to_owned).collect();
    for name in names {
        let _ = loaded.templates.render(&name, &context);
    }
});
