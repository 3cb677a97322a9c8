//! Properties of what users write, checked on inputs proptest generates (and shrinks to a small
//! failing one): the YAML readers never panic and report positions inside the file, mappings
//! never panic on any row, the contact policy's caps and gaps are never exceeded, and customer
//! data cannot add markup to an email's HTML part nor lines to its subject.
//!
//! A failure prints the shrunk input and is saved in `properties.proptest-regressions` (commit it, so the
//! case is replayed first from then on).

use std::sync::LazyLock;

use chrono::{Datelike, NaiveTime, TimeZone, Weekday};
use proptest::prelude::*;
use tiercare_engine::delivery::next_allowed;
use tiercare_engine::{
    Caps, Cell, Diagnostic, Mapping, RecordKind, RowOutcome, RuleFile, SendWindow, TemplateContext,
    TemplateFile, TierPolicy, load_rules, load_templates,
};

const RULES: &str = include_str!("../../../rules/tiers.yaml");
const FOLLOWUPS: &str = include_str!("../../../rules/followups.yaml");
const MAPPING: &str = include_str!("../../../examples/online-retail/orders.mapping.yaml");

/// Pieces that matter to a YAML reader: indentation, keys, flow and block markers, anchors,
/// tags, quotes, comments, multi-byte characters.
const YAML_PIECES: &[&str] = &[
    "\n", "  ", "    ", ": ", "- ", "-", ":", "[", "]", "{", "}", ",", "&a ", "*a", "!!str ",
    "|\n", ">-\n", "\"", "'", "#", "---\n", "...\n", "\t", "é", "日本", "\u{feff}", "\r\n", "\r",
    "~", "null", "true", "1e9", "-1", "0x1F", "when: ", "tiers:", "id: ", "window: ", "365d", "${",
    "\\",
];

/// One edit of a text: at a position (a fraction of its length), delete some bytes and insert a
/// piece or arbitrary characters.
fn edit() -> impl Strategy<Value = (f64, usize, String)> {
    (
        0.0..1.0f64,
        0..8usize,
        prop_oneof![
            3 => prop::sample::select(YAML_PIECES).prop_map(str::to_owned),
            1 => "\\PC{0,6}",
        ],
    )
}

/// `text` with `edits` applied (positions moved to character boundaries).
fn mutate(text: &str, edits: &[(f64, usize, String)]) -> String {
    let mut out = text.to_owned();
    for (at, delete, insert) in edits {
        let mut start = ((out.len() as f64) * at) as usize;
        while !out.is_char_boundary(start) {
            start -= 1;
        }
        let mut end = (start + delete).min(out.len());
        while !out.is_char_boundary(end) {
            end += 1;
        }
        out.replace_range(start..end, insert);
    }
    out
}

/// A text made of YAML pieces, or a real file with a few edits.
fn yaml_like(real: &'static str) -> impl Strategy<Value = String> {
    prop_oneof![
        prop::collection::vec(prop::sample::select(YAML_PIECES), 0..40).prop_map(|p| p.concat()),
        prop::collection::vec(edit(), 1..6).prop_map(move |edits| mutate(real, &edits)),
    ]
}

/// Every diagnostic names `path` and a line of `text` (or the line after its last, where an
/// unexpected end of file is reported), and a column at most one past that line's end.
fn assert_inside(path: &str, text: &str, diagnostics: &[Diagnostic]) -> Result<(), TestCaseError> {
    let lines: Vec<&str> = text.lines().collect();
    for diagnostic in diagnostics {
        prop_assert_eq!(&diagnostic.path, path);
        prop_assert!(
            (1..=lines.len() + 1).contains(&diagnostic.line),
            "line {} of {}: {}",
            diagnostic.line,
            lines.len(),
            diagnostic.message
        );
        let width = lines
            .get(diagnostic.line - 1)
            .map_or(0, |line| line.chars().count());
        prop_assert!(
            (1..=width + 1).contains(&diagnostic.column),
            "column {} of line {} ({width} characters): {}",
            diagnostic.column,
            diagnostic.line,
            diagnostic.message
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(150))]

    #[test]
    fn the_rule_loader_never_panics_and_points_inside_the_file(
        text in prop_oneof![yaml_like(RULES), yaml_like(FOLLOWUPS)],
    ) {
        let diagnostics = match load_rules(&[RuleFile::new("rules/p.yaml", text.as_str())]) {
            Ok(loaded) => loaded.warnings,
            Err(diagnostics) => diagnostics,
        };
        assert_inside("rules/p.yaml", &text, &diagnostics)?;
    }

    #[test]
    fn the_mapping_reader_never_panics_and_points_inside_the_file(text in yaml_like(MAPPING)) {
        let diagnostics = match Mapping::parse("m.yaml", &text, RecordKind::Orders) {
            Ok(mapping) => mapping.warnings().to_vec(),
            Err(diagnostics) => diagnostics,
        };
        assert_inside("m.yaml", &text, &diagnostics)?;
    }
}

/// A cell as a CSV or JSON-lines reader could hand it over.
#[derive(Debug, Clone)]
enum AnyCell {
    Null,
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

impl AnyCell {
    fn cell(&self) -> Cell<'_> {
        match self {
            AnyCell::Null => Cell::Null,
            AnyCell::Str(s) => Cell::Str(s),
            AnyCell::Int(i) => Cell::Int(*i),
            AnyCell::Float(f) => Cell::Float(*f),
            AnyCell::Bool(b) => Cell::Bool(*b),
        }
    }
}

fn any_cell() -> impl Strategy<Value = AnyCell> {
    prop_oneof![
        1 => Just(AnyCell::Null),
        4 => prop_oneof![
            "\\PC{0,12}",
            "-?[0-9]{1,20}(\\.[0-9]{0,4})?",
            "20[0-9]{2}-[01][0-9]-[0-3][0-9] [0-2][0-9]:[0-5][0-9](:[0-5][0-9])?",
            Just("C536365".to_owned()),
        ]
        .prop_map(AnyCell::Str),
        1 => any::<i64>().prop_map(AnyCell::Int),
        1 => any::<f64>().prop_map(AnyCell::Float),
        1 => any::<bool>().prop_map(AnyCell::Bool),
    ]
}

/// The online-retail example's mapping, parsed once (its scripts compiled once) for every case.
static RETAIL: LazyLock<Mapping> = LazyLock::new(|| {
    Mapping::parse("orders.mapping.yaml", MAPPING, RecordKind::Orders)
        .expect("the example mapping parses")
});

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// The online-retail mapping (types, dates in a zone, a derive, skips) on any row, of any
    /// length: a row, a skip or a rejection with a reason, never a panic.
    #[test]
    fn applying_a_mapping_never_panics(cells in prop::collection::vec(any_cell(), 0..10)) {
        let mapping = &*RETAIL;
        let header = [
            "InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice",
            "CustomerID", "Country",
        ];
        let mut bound = mapping
            .bind(&header, chrono_tz::Europe::London)
            .expect("the example header binds");
        let cells: Vec<Cell<'_>> = cells.iter().map(AnyCell::cell).collect();
        match bound.apply(&cells) {
            RowOutcome::Row(_) => {}
            RowOutcome::Skip(reason) => prop_assert!(reason < mapping.skip_reasons().len()),
            RowOutcome::Reject(rejection) => {
                prop_assert!(!rejection.to_string().is_empty());
            }
        }
    }
}

/// A contact policy: any caps, a minimum gap, a send window on some days.
fn policy() -> impl Strategy<Value = TierPolicy> {
    let cap = prop::option::weighted(0.6, 1..4u32);
    let window = prop::option::weighted(
        0.6,
        (0..23u32, 1..10u32, prop::collection::vec(0..7u8, 1..7)).prop_map(
            |(start, hours, days)| SendWindow {
                start: NaiveTime::from_hms_opt(start, 0, 0).expect("a time"),
                end: NaiveTime::from_hms_opt((start + hours).min(23), 59, 0).expect("a time"),
                days: days
                    .into_iter()
                    .map(|day| Weekday::try_from(day).expect("a weekday"))
                    .collect(),
            },
        ),
    );
    (
        cap.clone(),
        cap.clone(),
        cap,
        prop::option::weighted(0.5, 3_600..(5 * 86_400i64)),
        window,
    )
        .prop_map(|(day, week, month, min_gap, send_window)| TierPolicy {
            caps: Caps { day, week, month },
            min_gap,
            send_window,
            sms_caps: None,
        })
}

const ZONES: [chrono_tz::Tz; 4] = [
    chrono_tz::UTC,
    chrono_tz::Europe::London,
    chrono_tz::America::New_York,
    chrono_tz::Asia::Kolkata,
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// The first time the policy allows is never before `now`, inside the window, at least the
    /// gap away from every email sent, and under every cap of its local day, week and month.
    #[test]
    fn the_contact_policy_is_never_exceeded(
        policy in policy(),
        zone in prop::sample::select(&ZONES[..]),
        // 2024-01-01 to 2027-01-01, and emails sent in the two months before and after.
        now in 1_704_067_200..1_798_761_600i64,
        sent in prop::collection::vec(-60 * 86_400..60 * 86_400i64, 0..12),
    ) {
        let sent: Vec<i64> = sent.into_iter().map(|offset| now + offset).collect();
        let allowed = next_allowed(&policy, zone, &sent, now);
        let at = allowed.at;
        prop_assert!(at >= now);
        prop_assert_eq!(allowed.now(), at == now);
        let local = |t: i64| zone.timestamp_opt(t, 0).single().expect("an instant").naive_local();
        if let Some(window) = &policy.send_window {
            let wall = local(at);
            prop_assert!(window.allows_day(wall.weekday()), "{} is not a window day", wall);
            prop_assert!(
                wall.time() >= window.start && wall.time() < window.end,
                "{} is outside {}-{}", wall, window.start, window.end
            );
        }
        if let Some(gap) = policy.min_gap {
            for &other in &sent {
                prop_assert!((at - other).abs() >= gap, "{at} is within {gap}s of {other}");
            }
        }
        let when = local(at).date();
        let periods = [
            (policy.caps.day, "day"),
            (policy.caps.week, "week"),
            (policy.caps.month, "month"),
        ];
        for (limit, period) in periods {
            let Some(limit) = limit else { continue };
            let same = |t: i64| {
                let other = local(t).date();
                match period {
                    "day" => other == when,
                    "week" => other.iso_week() == when.iso_week(),
                    _ => other.year() == when.year() && other.month() == when.month(),
                }
            };
            let count = sent.iter().filter(|t| same(**t)).count();
            prop_assert!(
                count < limit as usize,
                "{count} emails already sent in the {period} of {} (cap {limit})", local(at)
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Whatever a customer's name holds, the HTML part shows it as text (escaped, and reading
    /// back as the name), the text part shows it as written, and the subject stays one line.
    #[test]
    fn customer_data_is_escaped_in_html_and_cannot_break_the_subject(
        name in prop_oneof![
            "\\PC{0,20}",
            "[<>&\"'/ a-z\\r\\n]{0,20}",
            Just("<script>alert(1)</script>".to_owned()),
        ],
    ) {
        let files = [
            TemplateFile::new("p.txt.j2", "subject: Hello {{ customer.name }}\n--- text\n{{ customer.name }}\n"),
            TemplateFile::new("p.html.j2", "<p>{{ customer.name }}</p>\n"),
        ];
        let loaded = load_templates(&files);
        prop_assert!(loaded.diagnostics.is_empty(), "{:?}", loaded.diagnostics);
        let mut context = TemplateContext::sample();
        context.customer.name = name.clone();
        let email = loaded.templates.render("p", &context).expect("renders");
        let html = email.html.expect("an HTML part");
        let inner = html
            .strip_prefix("<p>")
            .and_then(|rest| rest.strip_suffix("</p>\n"))
            .expect("the template's own markup");
        prop_assert!(!inner.contains(['<', '>', '"', '\'']), "{inner}");
        prop_assert_eq!(unescape(inner), name.clone());
        prop_assert!(email.text.contains(name.trim()), "{:?}", email.text);
        prop_assert!(!email.subject.contains(['\r', '\n']), "{:?}", email.subject);
    }
}

/// HTML character references back to characters (the named ones minijinja writes, and numeric).
fn unescape(html: &str) -> String {
    let mut out = String::new();
    let mut rest = html;
    while let Some(start) = rest.find('&') {
        out.push_str(&rest[..start]);
        let end = rest[start..]
            .find(';')
            .map(|i| start + i)
            .expect("a reference ends with ;");
        let reference = &rest[start + 1..end];
        let c = match reference {
            "amp" => '&',
            "lt" => '<',
            "gt" => '>',
            "quot" => '"',
            "apos" => '\'',
            hex if hex.starts_with("#x") => {
                char::from_u32(u32::from_str_radix(&hex[2..], 16).expect("hex")).expect("a char")
            }
            dec if dec.starts_with('#') => {
                char::from_u32(dec[1..].parse().expect("decimal")).expect("a char")
            }
            other => panic!("unknown reference &{other};"),
        };
        out.push(c);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}
