//! An import mapping parsed for every record kind, bound to a header and applied to a row: none
//! of it may panic. The header and the row come from comment lines of the file itself (as in the
//! engine's mapping fixtures): `# header: a,b,c` and `# row: 1,x,2024-01-01`; without them the
//! header is the mapping's own column names where the text names them, and the row is empty.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tiercare_engine::{Cell, Mapping, RecordKind};

const KINDS: [RecordKind; 6] = [
    RecordKind::Customers,
    RecordKind::Orders,
    RecordKind::Interactions,
    RecordKind::Complaints,
    RecordKind::Feedback,
    RecordKind::Managers,
];

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let kind = KINDS[usize::from(first) % KINDS.len()];
    let text = String::from_utf8_lossy(rest);
    let comment = |prefix: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(prefix))
            .map(|values| values.split(',').collect::<Vec<&str>>())
    };
    let header = comment("# header: ").unwrap_or_default();
    let row: Vec<Cell<'_>> = comment("# row: ")
        .unwrap_or_default()
        .into_iter()
        .map(Cell::Str)
        .collect();
    let Ok(mapping) = Mapping::parse("fuzz.mapping.yaml", &text, kind) else {
        return;
    };
    if let Ok(mut bound) = mapping.bind(&header, chrono_tz::Europe::London) {
        let _ = bound.apply(&row);
        let _ = bound.apply(&[]);
    }
});
