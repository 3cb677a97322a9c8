//! Turning cells into typed values of our fields: the parse rules of an import.
//!
//! Every function returns the reason as text when a value is refused; the caller knows which
//! column it came from and builds the [`crate::Rejection`].

use std::cell::RefCell;
use std::fmt::Write as _;

use chrono::format::{Item, Parsed, StrftimeItems};
use chrono::{DateTime, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

use crate::import::record::{Cell, Check, FieldSpec, FieldType, Value};

/// How to read a [`FieldType::Time`] or [`FieldType::Date`] cell.
#[derive(Debug, Clone)]
pub(crate) struct TimeRule {
    /// A strftime format, pre-parsed; `None` for the default formats.
    pub(crate) format: Option<(String, Vec<Item<'static>>)>,
    /// The zone local times are in.
    pub(crate) tz: Tz,
    /// The last text read as a time and its unix seconds: the lines of one order usually repeat
    /// the order's time, so most rows read the same text as the row before.
    last: RefCell<Option<(String, i64)>>,
}

impl TimeRule {
    pub(crate) fn new(format: Option<(String, Vec<Item<'static>>)>, tz: Tz) -> Self {
        TimeRule {
            format,
            tz,
            last: RefCell::new(None),
        }
    }
}

/// Pre-parses a strftime format and checks that it can read back a date it writes.
pub(crate) fn compile_format(format: &str, ty: FieldType) -> Result<Vec<Item<'static>>, String> {
    let items = StrftimeItems::new(format)
        .parse_to_owned()
        .map_err(|_| format!("`{format}` is not a valid strftime format"))?;
    // Round trip a sample: a format that cannot read back what it writes (no year, no day, an
    // hour without minutes...) would reject every row.
    let sample = Utc
        .with_ymd_and_hms(2001, 2, 3, 4, 5, 6)
        .single()
        .expect("a valid sample date");
    let mut written = String::new();
    if write!(written, "{}", sample.format_with_items(items.iter())).is_err() {
        return Err(format!("`{format}` is not a valid strftime format"));
    }
    let mut parsed = Parsed::new();
    let readable = chrono::format::parse(&mut parsed, &written, items.iter()).is_ok()
        && match ty {
            FieldType::Date => parsed.to_naive_date().is_ok(),
            _ => parsed.to_naive_date().is_ok() || parsed.timestamp().is_some(),
        };
    if readable {
        Ok(items)
    } else {
        Err(format!(
            "format `{format}` does not read a full date (it writes {written:?} for 2001-02-03 04:05:06)"
        ))
    }
}

/// Converts one cell to a value of field `spec`. `Ok(None)` means "not given" (empty or null).
pub(crate) fn convert(
    cell: Cell<'_>,
    spec: &FieldSpec,
    time: Option<&TimeRule>,
) -> Result<Option<Value>, String> {
    let value = match spec.ty {
        FieldType::Text => match cell {
            Cell::Null => return Ok(None),
            Cell::Str(s) => {
                let s = s.trim();
                if s.is_empty() {
                    return Ok(None);
                }
                check_text(s, spec)?
            }
            Cell::Int(i) => check_text(&i.to_string(), spec)?,
            Cell::Float(f) => check_text(&f.to_string(), spec)?,
            Cell::Bool(b) => check_text(if b { "true" } else { "false" }, spec)?,
        },
        FieldType::Int => match number_cell(cell, parse_int, "not an integer")? {
            None => return Ok(None),
            Some(int) => Value::Int(int),
        },
        FieldType::Float => match number_cell(cell, parse_float, "not a number")? {
            None => return Ok(None),
            Some(float) => Value::Float(float),
        },
        FieldType::Bool => match cell {
            Cell::Null => return Ok(None),
            Cell::Bool(b) => Value::Bool(b),
            Cell::Int(0) => Value::Bool(false),
            Cell::Int(1) => Value::Bool(true),
            Cell::Str(s) if s.trim().is_empty() => return Ok(None),
            Cell::Str(s) => Value::Bool(parse_bool(s.trim()).ok_or_else(bool_reason)?),
            Cell::Int(_) | Cell::Float(_) => return Err(bool_reason()),
        },
        FieldType::Time => {
            let default_rule;
            let rule = match time {
                Some(rule) => rule,
                None => {
                    default_rule = TimeRule::new(None, Tz::UTC);
                    &default_rule
                }
            };
            match cell {
                Cell::Null => return Ok(None),
                Cell::Str(s) if s.trim().is_empty() => return Ok(None),
                Cell::Str(s) => Value::Time(parse_time(s.trim(), rule)?),
                Cell::Int(seconds) => Value::Time(seconds),
                Cell::Float(seconds) if seconds.is_finite() => Value::Time(seconds.floor() as i64),
                Cell::Float(_) | Cell::Bool(_) => return Err(time_reason(rule)),
            }
        }
        FieldType::Date => match cell {
            Cell::Null => return Ok(None),
            Cell::Str(s) if s.trim().is_empty() => return Ok(None),
            Cell::Str(s) => Value::Date(parse_date(s.trim(), time)?),
            _ => return Err(date_reason(time)),
        },
        FieldType::Timezone => match cell {
            Cell::Null => return Ok(None),
            Cell::Str(s) if s.trim().is_empty() => return Ok(None),
            Cell::Str(s) => match parse_tz(s.trim()) {
                Some(tz) => Value::Text(tz.name().to_owned()),
                None => {
                    return Err(
                        "not a time zone: expected an IANA name such as Europe/London".to_owned(),
                    );
                }
            },
            _ => {
                return Err(
                    "not a time zone: expected an IANA name such as Europe/London".to_owned(),
                );
            }
        },
        FieldType::Severity => match cell {
            Cell::Null => return Ok(None),
            Cell::Str(s) if s.trim().is_empty() => return Ok(None),
            Cell::Str(s) => Value::Int(parse_severity(s.trim()).ok_or_else(severity_reason)?),
            Cell::Int(level @ 1..=4) => Value::Int(level),
            Cell::Float(level) if [1.0, 2.0, 3.0, 4.0].contains(&level) => Value::Int(level as i64),
            _ => return Err(severity_reason()),
        },
    };
    check_range(&value, spec)?;
    Ok(Some(value))
}

fn bool_reason() -> String {
    "not a yes/no value: expected true/false, yes/no, y/n or 1/0".to_owned()
}

fn severity_reason() -> String {
    "not a severity: expected low, medium, high, critical or 1-4".to_owned()
}

fn time_reason(rule: &TimeRule) -> String {
    match &rule.format {
        Some((text, _)) => format!("not a date-time: expected format {text}"),
        None => "not a date-time: expected YYYY-MM-DD[ HH:MM[:SS]] or RFC 3339".to_owned(),
    }
}

fn date_reason(rule: Option<&TimeRule>) -> String {
    match rule.and_then(|rule| rule.format.as_ref()) {
        Some((text, _)) => format!("not a date: expected format {text}"),
        None => "not a date: expected YYYY-MM-DD".to_owned(),
    }
}

fn number_cell<T>(
    cell: Cell<'_>,
    parse: fn(&str) -> Option<T>,
    reason: &str,
) -> Result<Option<T>, String>
where
    T: FromNumber,
{
    match cell {
        Cell::Null => Ok(None),
        Cell::Str(s) if s.trim().is_empty() => Ok(None),
        Cell::Str(s) => parse(s.trim()).map(Some).ok_or_else(|| reason.to_owned()),
        Cell::Int(i) => T::from_int(i).map(Some).ok_or_else(|| reason.to_owned()),
        Cell::Float(f) => T::from_float(f).map(Some).ok_or_else(|| reason.to_owned()),
        Cell::Bool(_) => Err(reason.to_owned()),
    }
}

trait FromNumber: Sized {
    fn from_int(int: i64) -> Option<Self>;
    fn from_float(float: f64) -> Option<Self>;
}

impl FromNumber for i64 {
    fn from_int(int: i64) -> Option<Self> {
        Some(int)
    }
    fn from_float(float: f64) -> Option<Self> {
        integral(float)
    }
}

impl FromNumber for f64 {
    fn from_int(int: i64) -> Option<Self> {
        Some(int as f64)
    }
    fn from_float(float: f64) -> Option<Self> {
        float.is_finite().then_some(float)
    }
}

/// `Some` when `float` is a whole number within ±9e15 (exact in both types).
fn integral(float: f64) -> Option<i64> {
    (float.fract() == 0.0 && float.abs() < 9.0e15).then_some(float as i64)
}

/// An integer; `3.0` is accepted (spreadsheets write whole numbers that way).
pub(crate) fn parse_int(s: &str) -> Option<i64> {
    s.parse::<i64>()
        .ok()
        .or_else(|| parse_float(s).and_then(integral))
}

/// A finite number (`inf` and `NaN` are refused).
pub(crate) fn parse_float(s: &str) -> Option<f64> {
    s.parse::<f64>().ok().filter(|f| f.is_finite())
}

/// `true`/`false`, `yes`/`no`, `y`/`n`, `1`/`0`, any case.
pub(crate) fn parse_bool(s: &str) -> Option<bool> {
    const TRUE: [&str; 4] = ["true", "yes", "y", "1"];
    const FALSE: [&str; 4] = ["false", "no", "n", "0"];
    if TRUE.iter().any(|word| word.eq_ignore_ascii_case(s)) {
        Some(true)
    } else if FALSE.iter().any(|word| word.eq_ignore_ascii_case(s)) {
        Some(false)
    } else {
        None
    }
}

/// `low`=1, `medium`=2, `high`=3, `critical`=4, or the digits 1 to 4.
pub(crate) fn parse_severity(s: &str) -> Option<i64> {
    const WORDS: [&str; 4] = ["low", "medium", "high", "critical"];
    if let Some(index) = WORDS.iter().position(|word| word.eq_ignore_ascii_case(s)) {
        return Some(index as i64 + 1);
    }
    match s {
        "1" => Some(1),
        "2" => Some(2),
        "3" => Some(3),
        "4" => Some(4),
        _ => None,
    }
}

/// An IANA zone name; exact first, then ignoring case.
pub(crate) fn parse_tz(s: &str) -> Option<Tz> {
    s.parse::<Tz>().ok().or_else(|| {
        chrono_tz::TZ_VARIANTS
            .iter()
            .copied()
            .find(|tz| tz.name().eq_ignore_ascii_case(s))
    })
}

fn check_text(s: &str, spec: &FieldSpec) -> Result<Value, String> {
    match spec.check {
        Check::SingleLine => check_single_line(s, spec.name)?,
        Check::Email => {
            if s.contains(['\r', '\n']) {
                return Err(line_break(spec.name));
            }
            check_email(s)?;
        }
        Check::OneOf(words) => {
            return match words.iter().find(|word| word.eq_ignore_ascii_case(s)) {
                Some(word) => Ok(Value::Text((*word).to_owned())),
                None => Err(format!("expected one of {}", words.join(", "))),
            };
        }
        Check::Any | Check::AtLeast(_) | Check::Between(..) => {}
    }
    Ok(Value::Text(s.to_owned()))
}

fn line_break(name: &str) -> String {
    format!("line break in `{name}` (it is used in mail headers)")
}

fn check_single_line(s: &str, name: &str) -> Result<(), String> {
    if s.contains(['\r', '\n']) {
        return Err(line_break(name));
    }
    if s.chars().any(char::is_control) {
        return Err(format!(
            "control character in `{name}` (it is used in mail headers)"
        ));
    }
    Ok(())
}

/// A plausible address: one `@`, something before it, a dotted domain after it, no whitespace,
/// control characters, `<`, `>`, `,`, `;` or quotes.
pub(crate) fn check_email(s: &str) -> Result<(), String> {
    let invalid = || Err("invalid email".to_owned());
    if s.chars().any(|c| {
        c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | ';' | '"' | '(' | ')')
    }) {
        return invalid();
    }
    let Some((local, domain)) = s.split_once('@') else {
        return invalid();
    };
    if local.is_empty()
        || domain.contains('@')
        || !domain.contains('.')
        || domain.starts_with('.')
        || domain.ends_with('.')
        || domain.contains("..")
    {
        return invalid();
    }
    Ok(())
}

fn check_range(value: &Value, spec: &FieldSpec) -> Result<(), String> {
    let number = match value {
        Value::Int(int) => *int as f64,
        Value::Float(float) => *float,
        _ => return Ok(()),
    };
    match spec.check {
        Check::AtLeast(min) if number < min => Err(format!("must be at least {min}")),
        Check::Between(min, max) if number < min || number > max => {
            Err(format!("must be between {min} and {max}"))
        }
        _ => Ok(()),
    }
}

/// Reads a date-time: with the rule's format, or the default formats (RFC 3339 with offset;
/// `YYYY-MM-DD HH:MM:SS`, `YYYY-MM-DDTHH:MM:SS`, `YYYY-MM-DD HH:MM`, `YYYY-MM-DD` as local time in
/// the rule's zone). Returns unix seconds.
pub(crate) fn parse_time(s: &str, rule: &TimeRule) -> Result<i64, String> {
    if let Some((text, seconds)) = rule.last.borrow().as_ref()
        && text == s
    {
        return Ok(*seconds);
    }
    let seconds = read_time(s, rule)?;
    let mut last = rule.last.borrow_mut();
    match last.as_mut() {
        Some((text, last_seconds)) => {
            text.clear();
            text.push_str(s);
            *last_seconds = seconds;
        }
        None => *last = Some((s.to_owned(), seconds)),
    }
    Ok(seconds)
}

/// [`parse_time`] without remembering the last text.
fn read_time(s: &str, rule: &TimeRule) -> Result<i64, String> {
    let local = match &rule.format {
        // The commonest explicit format, read without chrono's general parser when the text has
        // exactly its shape (chrono gives the same time; anything else goes to chrono).
        Some((format, _))
            if format == "%Y-%m-%d %H:%M:%S"
                && s.len() == 19
                && s.as_bytes()[10] == b' '
                && let Some(Scanned::Local(local)) = scan_default(s) =>
        {
            local
        }
        Some((_, items)) => {
            let mut parsed = Parsed::new();
            chrono::format::parse(&mut parsed, s, items.iter()).map_err(|_| time_reason(rule))?;
            if parsed.offset().is_some() {
                return parsed
                    .to_datetime()
                    .map(|dt| dt.timestamp())
                    .map_err(|_| time_reason(rule));
            }
            if parsed.timestamp().is_some() {
                return parsed
                    .to_naive_datetime_with_offset(0)
                    .map(|dt| dt.and_utc().timestamp())
                    .map_err(|_| time_reason(rule));
            }
            let date = parsed.to_naive_date().map_err(|_| time_reason(rule))?;
            let time = if parsed.hour_mod_12().is_some() || parsed.hour_div_12().is_some() {
                parsed.to_naive_time().map_err(|_| time_reason(rule))?
            } else {
                NaiveTime::MIN
            };
            date.and_time(time)
        }
        None => match scan_default(s) {
            Some(Scanned::Instant(seconds)) => return Ok(seconds),
            Some(Scanned::Local(local)) => local,
            None => return Err(time_reason(rule)),
        },
    };
    local_to_unix(local, rule.tz)
}

/// Local wall-clock time in `tz` to unix seconds. A time that does not exist (the gap when clocks
/// move forward) is refused; an ambiguous one (the hour repeated when clocks move back) takes the
/// earlier instant.
pub(crate) fn local_to_unix(local: NaiveDateTime, tz: Tz) -> Result<i64, String> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(dt) => Ok(dt.timestamp()),
        LocalResult::Ambiguous(first, second) => Ok(first.timestamp().min(second.timestamp())),
        LocalResult::None => Err(format!(
            "{} does not exist in {} (clocks skip it at a daylight-saving change)",
            local.format("%Y-%m-%d %H:%M:%S"),
            tz.name()
        )),
    }
}

fn parse_date(s: &str, rule: Option<&TimeRule>) -> Result<NaiveDate, String> {
    match rule.and_then(|rule| rule.format.as_ref()) {
        Some((_, items)) => {
            let mut parsed = Parsed::new();
            chrono::format::parse(&mut parsed, s, items.iter()).map_err(|_| date_reason(rule))?;
            parsed.to_naive_date().map_err(|_| date_reason(rule))
        }
        None => {
            let bytes = s.as_bytes();
            if bytes.len() != 10 {
                return Err(date_reason(rule));
            }
            scan_date(bytes).ok_or_else(|| date_reason(rule))
        }
    }
}

enum Scanned {
    Instant(i64),
    Local(NaiveDateTime),
}

/// A hand-written scanner for the default formats (much faster than trying several strftime
/// formats in turn; it runs once per cell of a 10-million-row import).
fn scan_default(s: &str) -> Option<Scanned> {
    let b = s.as_bytes();
    let date = scan_date(b.get(..10)?)?;
    if b.len() == 10 {
        return Some(Scanned::Local(date.and_time(NaiveTime::MIN)));
    }
    if !matches!(b.get(10)?, b'T' | b't' | b' ') {
        return None;
    }
    let hour = digits(b.get(11..13)?)?;
    if *b.get(13)? != b':' {
        return None;
    }
    let minute = digits(b.get(14..16)?)?;
    let mut i = 16;
    let mut second = 0;
    let mut nanos = 0;
    if b.get(i) == Some(&b':') {
        second = digits(b.get(i + 1..i + 3)?)?;
        i += 3;
        if b.get(i) == Some(&b'.') {
            i += 1;
            let start = i;
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            if i == start {
                return None;
            }
            let fraction = &s[start..i.min(start + 9)];
            nanos = fraction.parse::<u32>().ok()? * 10u32.pow(9 - fraction.len() as u32);
        }
    }
    let time = NaiveTime::from_hms_nano_opt(hour, minute, second, nanos)?;
    let local = date.and_time(time);
    let rest = &s[i..];
    if rest.is_empty() {
        return Some(Scanned::Local(local));
    }
    let offset = if rest == "Z" || rest == "z" {
        0
    } else {
        let sign = match rest.as_bytes()[0] {
            b'+' => 1,
            b'-' => -1,
            _ => return None,
        };
        let r = &rest.as_bytes()[1..];
        let (h, m) = match r.len() {
            2 => (digits(r)?, 0),
            4 => (digits(&r[..2])?, digits(&r[2..])?),
            5 if r[2] == b':' => (digits(&r[..2])?, digits(&r[3..])?),
            _ => return None,
        };
        if h > 23 || m > 59 {
            return None;
        }
        sign * i64::from(h * 3600 + m * 60)
    };
    Some(Scanned::Instant(
        DateTime::<Utc>::from_naive_utc_and_offset(local, Utc).timestamp() - offset,
    ))
}

fn scan_date(b: &[u8]) -> Option<NaiveDate> {
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let year = i32::try_from(digits(&b[..4])?).ok()?;
    NaiveDate::from_ymd_opt(year, digits(&b[5..7])?, digits(&b[8..10])?)
}

fn digits(b: &[u8]) -> Option<u32> {
    let mut value = 0u32;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        value = value * 10 + u32::from(c - b'0');
    }
    Some(value)
}

/// The JSON value of a custom attribute cell: an int, float or bool when the text is exactly one
/// (`true`/`false` only; leading zeros and `+` stay text, so `007` and phone numbers survive),
/// else the text. `None` when empty.
pub(crate) fn attribute_value(cell: Cell<'_>) -> Option<serde_json::Value> {
    match cell {
        Cell::Null => None,
        Cell::Int(i) => Some(i.into()),
        Cell::Float(f) => serde_json::Number::from_f64(f).map(serde_json::Value::Number),
        Cell::Bool(b) => Some(b.into()),
        Cell::Str(s) => {
            let s = s.trim();
            if s.is_empty() {
                return None;
            }
            if s.eq_ignore_ascii_case("true") {
                return Some(true.into());
            }
            if s.eq_ignore_ascii_case("false") {
                return Some(false.into());
            }
            if looks_numeric(s) {
                if let Ok(int) = s.parse::<i64>() {
                    return Some(int.into());
                }
                if let Some(number) = s.parse::<f64>().ok().and_then(serde_json::Number::from_f64) {
                    return Some(serde_json::Value::Number(number));
                }
            }
            Some(serde_json::Value::String(s.to_owned()))
        }
    }
}

/// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`
fn looks_numeric(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = usize::from(b.first() == Some(&b'-'));
    let start = i;
    while b.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
    }
    let integer_digits = i - start;
    if integer_digits == 0 || (integer_digits > 1 && b[start] == b'0') {
        return false;
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        let fraction_start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == fraction_start {
            return false;
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let exponent_start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == exponent_start {
            return false;
        }
    }
    i == b.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::record::{RecordKind, fields};

    fn spec(kind: RecordKind, name: &str) -> &'static FieldSpec {
        fields(kind).iter().find(|f| f.name == name).unwrap()
    }

    fn london() -> TimeRule {
        TimeRule::new(None, chrono_tz::Europe::London)
    }

    #[test]
    fn bools() {
        for (text, expected) in [
            ("true", true),
            ("TRUE", true),
            ("Yes", true),
            ("y", true),
            ("1", true),
            ("false", false),
            ("No", false),
            ("N", false),
            ("0", false),
        ] {
            assert_eq!(parse_bool(text), Some(expected), "{text}");
        }
        assert_eq!(parse_bool("maybe"), None);
        assert_eq!(parse_bool("2"), None);
    }

    #[test]
    fn default_time_formats_in_london() {
        let rule = london();
        // Winter (GMT = UTC) and summer (BST = UTC+1).
        assert_eq!(parse_time("2010-12-01 08:26:00", &rule), Ok(1_291_191_960));
        assert_eq!(parse_time("2011-06-01 08:26:00", &rule), Ok(1_306_913_160));
        assert_eq!(parse_time("2011-06-01T08:26:00", &rule), Ok(1_306_913_160));
        assert_eq!(parse_time("2011-06-01 08:26", &rule), Ok(1_306_913_160));
        assert_eq!(parse_time("2011-06-01", &rule), Ok(1_306_882_800));
        // An explicit offset wins over the zone.
        assert_eq!(parse_time("2011-06-01T08:26:00Z", &rule), Ok(1_306_916_760));
        assert_eq!(
            parse_time("2011-06-01T08:26:00+02:00", &rule),
            Ok(1_306_909_560)
        );
        assert_eq!(
            parse_time("2011-06-01T08:26:00.750-01:00", &rule),
            Ok(1_306_920_360)
        );
        for bad in [
            "2011-13-01",
            "2011-06-01 25:00",
            "01/06/2011",
            "2011-06-01 08:26:00 x",
        ] {
            assert_eq!(
                parse_time(bad, &rule),
                Err("not a date-time: expected YYYY-MM-DD[ HH:MM[:SS]] or RFC 3339".to_owned()),
                "{bad}"
            );
        }
    }

    #[test]
    fn dst_gap_is_refused_and_ambiguity_takes_the_earlier_instant() {
        let rule = london();
        assert_eq!(
            parse_time("2021-03-28 01:30:00", &rule),
            Err("2021-03-28 01:30:00 does not exist in Europe/London (clocks skip it at a daylight-saving change)".to_owned())
        );
        // 01:30 on 2021-10-31 happens twice: first in BST (00:30 UTC), then in GMT (01:30 UTC).
        assert_eq!(parse_time("2021-10-31 01:30:00", &rule), Ok(1_635_640_200));
    }

    #[test]
    fn custom_formats() {
        let items = compile_format("%d/%m/%Y %H:%M", FieldType::Time).unwrap();
        let rule = TimeRule::new(Some(("%d/%m/%Y %H:%M".to_owned(), items)), chrono_tz::UTC);
        assert_eq!(parse_time("01/12/2010 08:26", &rule), Ok(1_291_191_960));
        assert_eq!(
            parse_time("2010-12-01", &rule),
            Err("not a date-time: expected format %d/%m/%Y %H:%M".to_owned())
        );
        let items = compile_format("%d.%m.%Y", FieldType::Time).unwrap();
        let rule = TimeRule::new(Some(("%d.%m.%Y".to_owned(), items)), chrono_tz::UTC);
        assert_eq!(parse_time("01.12.2010", &rule), Ok(1_291_161_600));
        assert!(compile_format("%Y-%m-%Q", FieldType::Time).is_err());
        assert_eq!(
            compile_format("%H:%M", FieldType::Time).unwrap_err(),
            "format `%H:%M` does not read a full date (it writes \"04:05\" for 2001-02-03 04:05:06)"
        );
    }

    #[test]
    fn dates() {
        let birthday = spec(RecordKind::Customers, "birthday");
        assert_eq!(
            convert(Cell::Str("1985-03-14"), birthday, None),
            Ok(Some(Value::Date(
                NaiveDate::from_ymd_opt(1985, 3, 14).unwrap()
            )))
        );
        assert_eq!(
            convert(Cell::Str("1985-02-30"), birthday, None),
            Err("not a date: expected YYYY-MM-DD".to_owned())
        );
        assert_eq!(convert(Cell::Str(" "), birthday, None), Ok(None));
    }

    #[test]
    fn emails() {
        let email = spec(RecordKind::Customers, "email");
        assert_eq!(
            convert(Cell::Str(" ann@example.com "), email, None),
            Ok(Some(Value::Text("ann@example.com".to_owned())))
        );
        for bad in [
            "ann",
            "ann@",
            "@example.com",
            "ann@@example.com",
            "a@b@example.com",
            "ann smith@example.com",
            "Ann <ann@example.com>",
            "ann@example",
            "ann@example..com",
            "ann@example.com\u{7}",
        ] {
            assert_eq!(
                convert(Cell::Str(bad), email, None),
                Err("invalid email".to_owned()),
                "{bad:?}"
            );
        }
        assert_eq!(
            convert(
                Cell::Str("ann@example.com\r\nBcc: all@example.com"),
                email,
                None
            ),
            Err("line break in `email` (it is used in mail headers)".to_owned())
        );
    }

    #[test]
    fn line_breaks_in_header_fields_are_refused() {
        for name in ["name", "phone", "region", "owner", "customer_id"] {
            assert_eq!(
                convert(
                    Cell::Str("Ann\nBcc: x"),
                    spec(RecordKind::Customers, name),
                    None
                ),
                Err(format!(
                    "line break in `{name}` (it is used in mail headers)"
                ))
            );
        }
        assert_eq!(
            convert(
                Cell::Str("Europe/London\r"),
                spec(RecordKind::Customers, "timezone"),
                None
            ),
            Ok(Some(Value::Text("Europe/London".to_owned()))),
            "surrounding whitespace is trimmed, so a trailing CR is harmless"
        );
        assert_eq!(
            convert(
                Cell::Str("Ann\rSmith"),
                spec(RecordKind::Orders, "customer_name"),
                None
            ),
            Err("line break in `customer_name` (it is used in mail headers)".to_owned())
        );
        // Free text may hold line breaks.
        assert!(
            convert(
                Cell::Str("a\nb"),
                spec(RecordKind::Interactions, "note"),
                None
            )
            .is_ok()
        );
    }

    #[test]
    fn timezones() {
        let tz = spec(RecordKind::Customers, "timezone");
        assert_eq!(
            convert(Cell::Str("europe/london"), tz, None),
            Ok(Some(Value::Text("Europe/London".to_owned())))
        );
        assert_eq!(
            convert(Cell::Str("Mars/Olympus"), tz, None),
            Err("not a time zone: expected an IANA name such as Europe/London".to_owned())
        );
    }

    #[test]
    fn severities() {
        let severity = spec(RecordKind::Complaints, "severity");
        for (cell, level) in [
            (Cell::Str("low"), 1),
            (Cell::Str("Medium"), 2),
            (Cell::Str("HIGH"), 3),
            (Cell::Str("critical"), 4),
            (Cell::Str("3"), 3),
            (Cell::Int(4), 4),
        ] {
            assert_eq!(convert(cell, severity, None), Ok(Some(Value::Int(level))));
        }
        assert!(convert(Cell::Str("5"), severity, None).is_err());
        assert!(convert(Cell::Str("urgent"), severity, None).is_err());
    }

    #[test]
    fn numbers_and_ranges() {
        let capacity = spec(RecordKind::Managers, "capacity");
        assert_eq!(
            convert(Cell::Str("12"), capacity, None),
            Ok(Some(Value::Int(12)))
        );
        assert_eq!(
            convert(Cell::Str("12.0"), capacity, None),
            Ok(Some(Value::Int(12)))
        );
        assert_eq!(
            convert(Cell::Str("12.5"), capacity, None),
            Err("not an integer".to_owned())
        );
        assert_eq!(
            convert(Cell::Int(-1), capacity, None),
            Err("must be at least 0".to_owned())
        );
        let score = spec(RecordKind::Feedback, "score");
        assert_eq!(
            convert(Cell::Float(9.5), score, None),
            Ok(Some(Value::Float(9.5)))
        );
        assert_eq!(
            convert(Cell::Str("11"), score, None),
            Err("must be between 0 and 10".to_owned())
        );
        assert_eq!(
            convert(Cell::Str("NaN"), score, None),
            Err("not a number".to_owned())
        );
    }

    #[test]
    fn interaction_kinds() {
        let kind = spec(RecordKind::Interactions, "kind");
        assert_eq!(
            convert(Cell::Str("Call"), kind, None),
            Ok(Some(Value::Text("call".to_owned())))
        );
        assert_eq!(
            convert(Cell::Str("fax"), kind, None),
            Err("expected one of call, visit, email, meeting, chat, event, other".to_owned())
        );
    }

    #[test]
    fn attribute_inference() {
        assert_eq!(attribute_value(Cell::Str("42")), Some(42.into()));
        assert_eq!(attribute_value(Cell::Str("-4.5")), Some((-4.5).into()));
        assert_eq!(attribute_value(Cell::Str("True")), Some(true.into()));
        assert_eq!(attribute_value(Cell::Str("007")), Some("007".into()));
        assert_eq!(
            attribute_value(Cell::Str("+4412345")),
            Some("+4412345".into())
        );
        assert_eq!(attribute_value(Cell::Str("yes")), Some("yes".into()));
        assert_eq!(attribute_value(Cell::Str("inf")), Some("inf".into()));
        assert_eq!(attribute_value(Cell::Str("")), None);
        assert_eq!(attribute_value(Cell::Null), None);
    }

    /// `%Y-%m-%d %H:%M:%S` is read without chrono's parser when the text has its exact shape:
    /// the same answers (and refusals) as chrono's.
    #[test]
    fn the_iso_format_reads_as_chrono_reads_it() {
        let format = "%Y-%m-%d %H:%M:%S";
        let items: Vec<Item<'static>> = chrono::format::StrftimeItems::new(format)
            .parse_to_owned()
            .unwrap();
        let fast = TimeRule::new(
            Some((format.to_owned(), items.clone())),
            chrono_tz::Europe::London,
        );
        // The same format spelled so that the shortcut does not apply.
        let spelled = "%Y-%m-%d %H:%M:%S%.f";
        let chrono_items: Vec<Item<'static>> = chrono::format::StrftimeItems::new(spelled)
            .parse_to_owned()
            .unwrap();
        let slow = TimeRule::new(
            Some((spelled.to_owned(), chrono_items)),
            chrono_tz::Europe::London,
        );
        for text in [
            "2011-12-01 08:26:00",
            "2011-06-01 08:26:59",
            "2011-03-27 01:30:00",
            "2011-10-30 01:30:00",
            "2011-02-29 10:00:00",
            "2012-02-29 23:59:59",
            "2011-12-01 24:00:00",
            "2011-12-01 10:60:00",
            "2011-12-01 10:00:60",
            "2011-13-01 10:00:00",
            "0000-01-01 00:00:00",
            "2011-12-01T08:26:00",
            "2011-12-01 8:26:00 ",
            "2011-1-01 08:26:00",
        ] {
            let expected = parse_time(text, &slow).map_err(|_| ());
            assert_eq!(parse_time(text, &fast).map_err(|_| ()), expected, "{text}");
        }
    }

    /// The last text read is remembered: repeats, changes and refusals read as without it.
    #[test]
    fn a_repeated_time_reads_the_same() {
        let rule = TimeRule::new(None, chrono_tz::Europe::London);
        for text in [
            "2011-06-01 08:26",
            "2011-06-01 08:26",
            "2011-12-01 08:26",
            "2011-03-27 01:30",
            "2011-12-01 08:26",
            "nonsense",
            "2011-12-01 08:26",
        ] {
            assert_eq!(parse_time(text, &rule), read_time(text, &rule), "{text}");
        }
    }
}
