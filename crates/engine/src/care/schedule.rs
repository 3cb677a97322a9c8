//! Cron schedules: ordinary 5-field crontab and the `cron` crate's 6/7-field form.
//!
//! Users write schedules in rules ("reassess tiers nightly": `0 2 * * *`). [`Schedule::parse`]
//! accepts two forms, told apart by the number of fields, and refuses anything else with a
//! [`ScheduleError`] that names the field, its column and what is wrong with it.
//!
//! # Crontab form: 5 fields, or a macro ([`ScheduleForm::Crontab`])
//!
//! `minute hour day-of-month month day-of-week`, as in crontab(5) (Vixie cron):
//!
//! | field        | values | names |
//! |--------------|--------|-------|
//! | minute       | 0–59   |       |
//! | hour         | 0–23   |       |
//! | day of month | 1–31   |       |
//! | month        | 1–12   | `jan`–`dec` |
//! | day of week  | 0–7, Sunday is 0 **and** 7 | `sun`–`sat` |
//!
//! - Names are the three-letter English abbreviations, in any case (`JAN`, `Mon`).
//! - A field is a comma-separated list of items; an item is `*`, a value `N`, a range `A-B`, or
//!   one of those with a step: `*/S`, `A-B/S`, and `N/S`, which means `N-max/S` (`5/20` in the
//!   minute field is `5,25,45`). Vixie cron refuses `N/S`; cronie and the `cron` crate read it
//!   this way, so we accept it rather than surprise people coming from either. A step is 1 up to
//!   the field's maximum (`*/60` in the minute field is refused: it would only ever mean `0`).
//! - Ranges go upwards. The one exception is a day-of-week range ending at Sunday:
//!   `FRI-SUN`, `5-0` and `5-7` all mean Friday, Saturday, Sunday. Other backwards ranges
//!   (`SAT-MON`, `50-10`) are refused, and the message says how to write them as a list.
//! - Macros: `@yearly` and `@annually` (`0 0 1 1 *`), `@monthly` (`0 0 1 * *`), `@weekly`
//!   (`0 0 * * 0`, Sunday), `@daily` and `@midnight` (`0 0 * * *`), `@hourly` (`0 * * * *`).
//!   `@reboot` is refused: a schedule names times, not start-ups.
//! - **Day of month and day of week** follow Vixie cron exactly. If either field's text starts
//!   with `*`, a day must match both (so `0 0 * * MON` is every Monday). If neither does, a day
//!   matches if it matches **either**: `0 12 13 * 5` fires on every 13th *and* every Friday.
//!   Vixie looks only at the first character, so `0 0 */2 * MON` is "odd days that are
//!   Mondays" (both must match), while `0 0 1-31 * MON` is every day. We copy that quirk on
//!   purpose, because it is what every crontab in the wild means.
//! - A schedule that can never fire is refused: `0 0 30 2 *` ("February has no day 30").
//!
//! # Quartz form: 6 or 7 fields ([`ScheduleForm::Quartz`])
//!
//! `second minute hour day-of-month month day-of-week [year]`, passed to the `cron` crate
//! unchanged, with that crate's meaning:
//!
//! - the **seconds field comes first**;
//! - day of week is **1–7 with Sunday = 1** (Monday = 2, …, Saturday = 7); names `sun`–`sat`,
//!   also `sunday`, `tues`, `thurs` and the other full names; so `0 0 12 * * 1` is Sunday noon,
//!   while the crontab `0 12 * * 1` is Monday noon;
//! - month names `jan`–`dec` and full names; `?` in the day fields means the same as `*`;
//! - when both day fields are restricted a day must match **both** (AND, never OR);
//! - the optional year is 1970–2100; steps and `N/S` as above; no `L`, `W` or `#`.
//!
//! We check the fields ourselves first (so errors say which field is wrong) and refuse the few
//! things the crate itself would refuse (`MON/2`, a step larger than the field).
//!
//! # Time zones and daylight saving
//!
//! A schedule is evaluated on the **local wall clock** of the time zone it is given, and the
//! answers are instants ([`DateTime<Utc>`]). When the clocks change:
//!
//! - a wall time that **does not exist** (the spring-forward gap, e.g. 02:30 on the second
//!   Sunday of March in America/New_York, or 01:30 on the last Sunday of March in
//!   Europe/London) fires **once, at the first instant after the gap** (03:00 EDT; 02:00 BST).
//!   The job is not skipped; this is what Vixie cron and systemd timers do. Several wall times
//!   in one gap (`*/15`) collapse into that single firing;
//! - a wall time that **occurs twice** (the fall-back repeat, e.g. 01:30 on the first Sunday of
//!   November in America/New_York) fires **once, at its first occurrence**.
//!
//! In short: DST gaps and repeats fire once. The `cron` crate on its own does neither (it skips
//! times in a gap and yields repeated times twice), so we use it only to find wall-clock times
//! in a zone without daylight saving and map those to instants here.
//!
//! Firings are computed for the years 1970–2100, the `cron` crate's range; after the last
//! firing in 2100 there is none ([`Schedule::next_after`] returns `None`).

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, LocalResult, NaiveDate, NaiveDateTime, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;

/// A parsed, checked cron schedule, ready to say when it fires next.
///
/// Build one with [`Schedule::parse`] (or [`str::parse`]); [`Display`](fmt::Display) prints the
/// text it was parsed from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule {
    source: String,
    form: ScheduleForm,
    /// One schedule, or two whose union is the crontab "either day field" rule. They are
    /// evaluated in [`Utc`] as if that were the local wall clock.
    compiled: Vec<cron::Schedule>,
}

/// Which of the two accepted forms a schedule was written in (see the [module docs](self)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ScheduleForm {
    /// 5 fields (`minute hour day-of-month month day-of-week`) or a macro such as `@daily`:
    /// Sunday is 0 or 7, and restricted day fields match if either matches.
    Crontab,
    /// 6 or 7 fields (`second minute hour day-of-month month day-of-week [year]`), the `cron`
    /// crate's own form: Sunday is 1, and restricted day fields must both match.
    Quartz,
}

/// Why a schedule expression was refused, and where.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.describe())]
pub struct ScheduleError {
    /// The 1-based number of the offending field, when one field is to blame.
    pub field: Option<usize>,
    /// That field's name: "second", "minute", "hour", "day of month", "month", "day of week"
    /// or "year".
    pub field_name: Option<&'static str>,
    /// The 0-based byte offset within the expression where the problem is, for pointing a
    /// caret at it: the start of the offending field; for a wrong number of fields, the first
    /// field too many or the end of the expression; for a macro, the macro or what follows it.
    pub column: usize,
    /// What is wrong, e.g. "32 is out of range 1–31".
    pub message: String,
}

impl ScheduleError {
    fn describe(&self) -> String {
        match (self.field, self.field_name) {
            (Some(field), Some(name)) => format!("field {field} ({name}): {}", self.message),
            _ => self.message.clone(),
        }
    }

    fn whole(column: usize, message: String) -> Self {
        ScheduleError {
            field: None,
            field_name: None,
            column,
            message,
        }
    }
}

impl Schedule {
    /// Parses and checks a schedule in either form; see the [module docs](self) for both.
    pub fn parse(expr: &str) -> Result<Schedule, ScheduleError> {
        let trimmed = expr.trim_start();
        if trimmed.starts_with('@') {
            return parse_macro(expr, expr.len() - trimmed.len());
        }
        let tokens = tokens(expr);
        match tokens.len() {
            5 => parse_crontab(expr, &tokens),
            6 | 7 => parse_quartz(expr, &tokens),
            found => {
                let column = match tokens.get(7) {
                    Some(&(column, _)) => column,
                    None => expr.len(),
                };
                Err(ScheduleError::whole(
                    column,
                    format!(
                        "expected 5 fields (minute hour day-of-month month day-of-week) or 6–7 \
                         (with seconds first), found {found}"
                    ),
                ))
            }
        }
    }

    /// The form the schedule was written in.
    pub fn form(&self) -> ScheduleForm {
        self.form
    }

    /// The text the schedule was parsed from, unchanged.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The first firing strictly after `after`, in wall-clock time of `tz`.
    ///
    /// Daylight-saving gaps and repeats fire once (see the [module docs](self)). `None` when the
    /// schedule never fires again (it has a year field in the past, or `after` is past 2100).
    pub fn next_after(&self, after: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
        // Every wall time at or before `after`'s own wall time maps to an instant at or before
        // `after` (the mapping is monotonic), so the search can start there; the only
        // candidates to skip are those in a repeated hour that `after` is already past.
        let wall_after = after.with_timezone(&tz).naive_local();
        let start = Utc.from_utc_datetime(&wall_after);
        self.compiled
            .iter()
            .filter_map(|schedule| {
                schedule
                    .after(&start)
                    .filter_map(|wall| instant_of(wall.naive_utc(), tz))
                    .find(|&instant| instant > after)
            })
            .min()
    }

    /// Firings in `(from, to]`, in order, at most `limit` of them.
    pub fn between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        tz: Tz,
        limit: usize,
    ) -> Vec<DateTime<Utc>> {
        let mut firings = Vec::new();
        let mut cursor = from;
        while firings.len() < limit {
            match self.next_after(cursor, tz) {
                Some(next) if next <= to => {
                    firings.push(next);
                    cursor = next;
                }
                _ => break,
            }
        }
        firings
    }
}

impl FromStr for Schedule {
    type Err = ScheduleError;

    fn from_str(expr: &str) -> Result<Self, Self::Err> {
        Schedule::parse(expr)
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// The instant a local wall time fires at under the daylight-saving policy: its only or first
/// occurrence, or, inside a gap, the first instant after the gap.
fn instant_of(wall: NaiveDateTime, tz: Tz) -> Option<DateTime<Utc>> {
    match tz.from_local_datetime(&wall) {
        LocalResult::Single(instant) | LocalResult::Ambiguous(instant, _) => {
            Some(instant.with_timezone(&Utc))
        }
        LocalResult::None => end_of_gap(wall, tz),
    }
}

/// The first instant after the gap that the non-existent wall time `wall` falls in: the
/// instant of the earliest wall time after `wall` that exists.
fn end_of_gap(wall: NaiveDateTime, tz: Tz) -> Option<DateTime<Utc>> {
    let exists = |seconds: i64| {
        tz.from_local_datetime(&(wall + TimeDelta::seconds(seconds)))
            .earliest()
    };
    // Double until a wall time exists (gaps are an hour or so, at most a day), then narrow
    // down to the second: `low` never exists, `high` always does.
    let mut high = 1_i64;
    while exists(high).is_none() {
        if high > 4 * 86_400 {
            return None;
        }
        high *= 2;
    }
    let mut low = high / 2;
    while high - low > 1 {
        let middle = low + (high - low) / 2;
        if exists(middle).is_some() {
            high = middle;
        } else {
            low = middle;
        }
    }
    exists(high).map(|instant| instant.with_timezone(&Utc))
}

// ---------------------------------------------------------------------------------------------
// Parsing

/// What one field accepts.
struct FieldSpec {
    name: &'static str,
    min: u32,
    max: u32,
    /// Names and their values, lower case; empty when the field takes numbers only.
    names: &'static [(&'static str, u32)],
    /// How to spell the accepted names in a message, e.g. "jan–dec or 1–12".
    names_hint: &'static str,
    /// "month" or "day", for "unknown month name".
    name_kind: &'static str,
    /// Added to out-of-range messages.
    range_note: &'static str,
    /// Quartz day fields: `?` means `*`.
    question_mark: bool,
    /// Crontab day of week: a range ending at Sunday (0) ends at 7 instead.
    range_to_sunday: bool,
    /// The `cron` crate's stricter grammar (Quartz form): no `NAME/STEP`, and a range is two
    /// numbers or two names, never one of each.
    strict: bool,
}

const MONTHS: &[(&str, u32)] = &[
    ("jan", 1),
    ("feb", 2),
    ("mar", 3),
    ("apr", 4),
    ("may", 5),
    ("jun", 6),
    ("jul", 7),
    ("aug", 8),
    ("sep", 9),
    ("oct", 10),
    ("nov", 11),
    ("dec", 12),
];

/// The `cron` crate's month names (its `MONTH_MAP`).
const QUARTZ_MONTHS: &[(&str, u32)] = &[
    ("jan", 1),
    ("january", 1),
    ("feb", 2),
    ("february", 2),
    ("mar", 3),
    ("march", 3),
    ("apr", 4),
    ("april", 4),
    ("may", 5),
    ("jun", 6),
    ("june", 6),
    ("jul", 7),
    ("july", 7),
    ("aug", 8),
    ("august", 8),
    ("sep", 9),
    ("september", 9),
    ("oct", 10),
    ("october", 10),
    ("nov", 11),
    ("november", 11),
    ("dec", 12),
    ("december", 12),
];

const DAYS: &[(&str, u32)] = &[
    ("sun", 0),
    ("mon", 1),
    ("tue", 2),
    ("wed", 3),
    ("thu", 4),
    ("fri", 5),
    ("sat", 6),
];

/// The `cron` crate's day names (its `DAY_OF_WEEK_MAP`): Sunday is 1.
const QUARTZ_DAYS: &[(&str, u32)] = &[
    ("sun", 1),
    ("sunday", 1),
    ("mon", 2),
    ("monday", 2),
    ("tue", 3),
    ("tues", 3),
    ("tuesday", 3),
    ("wed", 4),
    ("wednesday", 4),
    ("thu", 5),
    ("thurs", 5),
    ("thursday", 5),
    ("fri", 6),
    ("friday", 6),
    ("sat", 7),
    ("saturday", 7),
];

/// Full English names, only to suggest the abbreviation when someone writes one in crontab.
const FULL_NAMES: &[(&str, &str)] = &[
    ("january", "jan"),
    ("february", "feb"),
    ("march", "mar"),
    ("april", "apr"),
    ("june", "jun"),
    ("july", "jul"),
    ("august", "aug"),
    ("september", "sep"),
    ("october", "oct"),
    ("november", "nov"),
    ("december", "dec"),
    ("sunday", "sun"),
    ("monday", "mon"),
    ("tuesday", "tue"),
    ("wednesday", "wed"),
    ("thursday", "thu"),
    ("friday", "fri"),
    ("saturday", "sat"),
];

const MONTH_NAMES: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

const fn numbers(name: &'static str, min: u32, max: u32) -> FieldSpec {
    FieldSpec {
        name,
        min,
        max,
        names: &[],
        names_hint: "",
        name_kind: "",
        range_note: "",
        question_mark: false,
        range_to_sunday: false,
        strict: false,
    }
}

const SECOND: FieldSpec = FieldSpec {
    strict: true,
    ..numbers("second", 0, 59)
};
const QUARTZ_MINUTE: FieldSpec = FieldSpec {
    strict: true,
    ..MINUTE
};
const QUARTZ_HOUR: FieldSpec = FieldSpec {
    strict: true,
    ..HOUR
};
const MINUTE: FieldSpec = numbers("minute", 0, 59);
const HOUR: FieldSpec = numbers("hour", 0, 23);
const DAY_OF_MONTH: FieldSpec = numbers("day of month", 1, 31);
const MONTH: FieldSpec = FieldSpec {
    names: MONTHS,
    names_hint: "jan–dec or 1–12",
    name_kind: "month",
    ..numbers("month", 1, 12)
};
const DAY_OF_WEEK: FieldSpec = FieldSpec {
    names: DAYS,
    names_hint: "sun–sat or 0–7",
    name_kind: "day",
    range_note: " (0 and 7 are Sunday)",
    range_to_sunday: true,
    ..numbers("day of week", 0, 7)
};
const QUARTZ_DAY_OF_MONTH: FieldSpec = FieldSpec {
    question_mark: true,
    strict: true,
    ..numbers("day of month", 1, 31)
};
const QUARTZ_MONTH: FieldSpec = FieldSpec {
    names: QUARTZ_MONTHS,
    strict: true,
    ..MONTH
};
const QUARTZ_DAY_OF_WEEK: FieldSpec = FieldSpec {
    names: QUARTZ_DAYS,
    names_hint: "sun–sat or 1–7",
    name_kind: "day",
    range_note: " (in the 6/7-field form Sunday is 1 and Saturday is 7)",
    question_mark: true,
    strict: true,
    ..numbers("day of week", 1, 7)
};
const YEAR: FieldSpec = FieldSpec {
    strict: true,
    ..numbers("year", 1970, 2100)
};

const CRONTAB_FIELDS: [&FieldSpec; 5] = [&MINUTE, &HOUR, &DAY_OF_MONTH, &MONTH, &DAY_OF_WEEK];
const QUARTZ_FIELDS: [&FieldSpec; 7] = [
    &SECOND,
    &QUARTZ_MINUTE,
    &QUARTZ_HOUR,
    &QUARTZ_DAY_OF_MONTH,
    &QUARTZ_MONTH,
    &QUARTZ_DAY_OF_WEEK,
    &YEAR,
];

/// A field's text split into whitespace-separated tokens with their byte offsets.
fn tokens(expr: &str) -> Vec<(usize, &str)> {
    let mut tokens = Vec::new();
    let mut start = None;
    for (offset, ch) in expr.char_indices() {
        match (ch.is_whitespace(), start) {
            (true, Some(begin)) => {
                tokens.push((begin, &expr[begin..offset]));
                start = None;
            }
            (false, None) => start = Some(offset),
            _ => {}
        }
    }
    if let Some(begin) = start {
        tokens.push((begin, &expr[begin..]));
    }
    tokens
}

/// A field's allowed values, and whether its text starts with `*` (Vixie's day rule).
struct Field {
    values: BTreeSet<u32>,
    star: bool,
}

fn parse_fields(
    tokens: &[(usize, &str)],
    specs: &[&FieldSpec],
) -> Result<Vec<Field>, ScheduleError> {
    tokens
        .iter()
        .zip(specs)
        .enumerate()
        .map(|(index, (&(column, text), spec))| {
            let values = parse_field(text, spec).map_err(|message| ScheduleError {
                field: Some(index + 1),
                field_name: Some(spec.name),
                column,
                message,
            })?;
            Ok(Field {
                values,
                star: text.starts_with('*') || (spec.question_mark && text.starts_with('?')),
            })
        })
        .collect()
}

fn parse_field(text: &str, spec: &FieldSpec) -> Result<BTreeSet<u32>, String> {
    let mut values = BTreeSet::new();
    for item in text.split(',') {
        if item.is_empty() {
            return Err(format!("empty item in the list \"{text}\""));
        }
        if item.matches('/').count() > 1 {
            return Err(format!("\"{item}\" has more than one step (\"/\")"));
        }
        let (base, step) = match item.split_once('/') {
            Some((base, step)) => (base, Some(parse_step(step, item, spec)?)),
            None => (item, None),
        };
        let (first, last) = parse_base(base, item, step.is_some(), spec)?;
        values.extend((first..=last).step_by(step.unwrap_or(1) as usize));
    }
    if spec.range_to_sunday {
        // 7 is Sunday too.
        if values.remove(&7) {
            values.insert(0);
        }
    }
    Ok(values)
}

fn parse_step(step: &str, item: &str, spec: &FieldSpec) -> Result<u32, String> {
    if step.is_empty() {
        return Err(format!("missing step after \"/\" in \"{item}\""));
    }
    if !step.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(format!("step \"{step}\" in \"{item}\" is not a number"));
    }
    match step.parse::<u32>() {
        Ok(0) => Err(format!(
            "step 0 in \"{item}\" never advances; use 1 or more"
        )),
        Ok(value) if value <= spec.max => Ok(value),
        _ => Err(format!("step {step} is out of range 1–{}", spec.max)),
    }
}

/// The first and last value of `*`, `N`, `A-B` (and, with a step, `N` means `N-max`).
fn parse_base(
    base: &str,
    item: &str,
    stepped: bool,
    spec: &FieldSpec,
) -> Result<(u32, u32), String> {
    if base == "*" || (spec.question_mark && base == "?") {
        return Ok((spec.min, spec.max));
    }
    if base.is_empty() {
        return Err(format!("missing value before \"/\" in \"{item}\""));
    }
    if let Some((start, end)) = base.split_once('-') {
        if start.is_empty() {
            return Err(format!("missing start of the range \"{item}\""));
        }
        if end.is_empty() {
            return Err(format!("missing end of the range \"{item}\""));
        }
        if end.contains('-') {
            return Err(format!("\"{base}\" has more than one \"-\""));
        }
        if start == "*" || start == "?" {
            return Err(format!(
                "\"{base}\": \"{start}\" is already the whole range; write {}-{end}",
                spec.min
            ));
        }
        let first = parse_value(start, spec)?;
        let mut last = parse_value(end, spec)?;
        if spec.strict && is_number(start) != is_number(end) {
            return Err(format!(
                "a range is two numbers or two names, not \"{base}\" (the 6/7-field form)"
            ));
        }
        if spec.range_to_sunday && last == 0 && first > 0 {
            last = 7;
        }
        if first > last {
            return Err(backwards(start, end, first, last, stepped, spec));
        }
        return Ok((first, last));
    }
    let value = parse_value(base, spec)?;
    if !stepped {
        return Ok((value, value));
    }
    if spec.strict && !is_number(base) {
        return Err(format!(
            "a step needs \"*\", a number or a range before it, not the name \"{base}\""
        ));
    }
    Ok((value, spec.max))
}

fn backwards(
    start: &str,
    end: &str,
    first: u32,
    last: u32,
    stepped: bool,
    spec: &FieldSpec,
) -> String {
    let message = format!("range {start}-{end} runs backwards");
    if stepped {
        return message;
    }
    let named = start.bytes().any(|byte| byte.is_ascii_alphabetic());
    let lower = start.bytes().any(|byte| byte.is_ascii_lowercase());
    let spell = |value: u32| -> String {
        let named_value = if spec.range_to_sunday && value == 7 {
            0
        } else {
            value
        };
        let name = spec
            .names
            .iter()
            .find(|&&(name, candidate)| name.len() == 3 && candidate == named_value)
            .map(|&(name, _)| name);
        match name {
            Some(name) if named && lower => name.to_owned(),
            Some(name) if named => name.to_uppercase(),
            _ => value.to_string(),
        }
    };
    // In the crontab day of week the range up to Sunday already covers Sunday.
    let min = if spec.range_to_sunday { 1 } else { spec.min };
    let head = if first == spec.max {
        start.to_owned()
    } else {
        format!("{start}-{}", spell(spec.max))
    };
    let tail = if last == min {
        end.to_owned()
    } else {
        format!("{}-{end}", spell(min))
    };
    format!("{message}; write {head},{tail}")
}

fn is_number(text: &str) -> bool {
    text.bytes().all(|byte| byte.is_ascii_digit())
}

fn parse_value(text: &str, spec: &FieldSpec) -> Result<u32, String> {
    if is_number(text) {
        return match text.parse::<u32>() {
            Ok(value) if (spec.min..=spec.max).contains(&value) => Ok(value),
            _ => Err(format!(
                "{text} is out of range {}–{}{}",
                spec.min, spec.max, spec.range_note
            )),
        };
    }
    if text == "?" {
        return Err(if spec.question_mark {
            "\"?\" stands alone; it cannot be part of a range".to_owned()
        } else if spec.strict {
            "\"?\" is allowed only in the day-of-month and day-of-week fields; write \"*\""
                .to_owned()
        } else {
            "\"?\" is not crontab syntax; write \"*\"".to_owned()
        });
    }
    if spec.names.is_empty() || !text.bytes().all(|byte| byte.is_ascii_alphabetic()) {
        let quartz_special = text.contains('#')
            || ((text.ends_with('L') || text.ends_with('W'))
                && text
                    .trim_end_matches(['L', 'W'])
                    .bytes()
                    .all(|byte| byte.is_ascii_digit()));
        return Err(if quartz_special {
            format!("\"{text}\" is not a number (L, W and # are not supported)")
        } else {
            format!("\"{text}\" is not a number")
        });
    }
    let lower = text.to_ascii_lowercase();
    if let Some(&(_, value)) = spec.names.iter().find(|&&(name, _)| name == lower) {
        return Ok(value);
    }
    if let Some(&(_, short)) = FULL_NAMES.iter().find(|&&(full, _)| full == lower) {
        return Err(format!(
            "unknown {} name \"{text}\"; write \"{short}\" (three-letter names only)",
            spec.name_kind
        ));
    }
    Err(format!(
        "unknown {} name \"{text}\"; use {}",
        spec.name_kind, spec.names_hint
    ))
}

/// Refuses a day-of-month set that no chosen month has (`0 0 30 2 *`), for a day-of-month
/// field that has to match; `field` is its 1-based number and `column` its offset.
fn check_days_exist(
    days: &Field,
    months: &Field,
    column: usize,
    field: usize,
) -> Result<(), ScheduleError> {
    let longest = |month: u32| {
        if month == 2 {
            29
        } else {
            days_in_month(2000, month)
        }
    };
    let Some(&first_day) = days.values.first() else {
        return Ok(());
    };
    if months
        .values
        .iter()
        .any(|&month| first_day <= longest(month))
    {
        return Ok(());
    }
    let names: Vec<&str> = months
        .values
        .iter()
        .map(|&month| MONTH_NAMES[month as usize - 1])
        .collect();
    let message = match names.as_slice() {
        [one] => format!("never fires: {one} has no day {first_day}"),
        [rest @ .., last] => format!(
            "never fires: {} and {last} have no day {first_day}",
            rest.join(", ")
        ),
        [] => return Ok(()),
    };
    Err(ScheduleError {
        field: Some(field),
        field_name: Some(DAY_OF_MONTH.name),
        column,
        message,
    })
}

fn days_in_month(year: i32, month: u32) -> u32 {
    let (next_year, next_month) = if month == 12 {
        (year + 1, 1)
    } else {
        (year, month + 1)
    };
    NaiveDate::from_ymd_opt(next_year, next_month, 1)
        .and_then(|first| first.pred_opt())
        .map_or(31, |last| last.day())
}

/// Expands a macro into its crontab fields.
fn parse_macro(expr: &str, column: usize) -> Result<Schedule, ScheduleError> {
    let words = tokens(expr);
    let name = words.first().map_or("", |&(_, name)| name);
    let fields = match name.to_ascii_lowercase().as_str() {
        "@yearly" | "@annually" => "0 0 1 1 *",
        "@monthly" => "0 0 1 * *",
        "@weekly" => "0 0 * * 0",
        "@daily" | "@midnight" => "0 0 * * *",
        "@hourly" => "0 * * * *",
        "@reboot" => {
            return Err(ScheduleError::whole(
                column,
                "@reboot is not supported: a schedule names times, not start-ups".to_owned(),
            ));
        }
        _ => {
            return Err(ScheduleError::whole(
                column,
                format!(
                    "unknown macro {name}; expected @yearly, @annually, @monthly, @weekly, \
                     @daily, @midnight or @hourly"
                ),
            ));
        }
    };
    if let Some(&(extra_column, extra)) = words.get(1) {
        return Err(ScheduleError::whole(
            extra_column,
            format!("{name} stands alone, but \"{extra}\" follows it"),
        ));
    }
    let mut schedule = parse_crontab(fields, &tokens(fields))?;
    schedule.source = expr.to_owned();
    Ok(schedule)
}

fn parse_crontab(expr: &str, tokens: &[(usize, &str)]) -> Result<Schedule, ScheduleError> {
    let fields = parse_fields(tokens, &CRONTAB_FIELDS)?;
    let [minutes, hours, days, months, weekdays] = fields.as_slice() else {
        unreachable!("parse_fields returns one field per token, and there are 5");
    };
    let either_day = !days.star && !weekdays.star;
    if !days.star && weekdays.star {
        check_days_exist(days, months, tokens[2].0, 3)?;
    }
    let cron_fields = |days: &str, weekdays: &str| {
        format!(
            "0 {} {} {days} {} {weekdays}",
            list(&minutes.values, &MINUTE),
            list(&hours.values, &HOUR),
            list(&months.values, &MONTH),
        )
    };
    let day_list = list(&days.values, &DAY_OF_MONTH);
    let weekday_list = weekday_names(&weekdays.values);
    let texts = if either_day {
        // Vixie's rule: a day matches if either field does. The `cron` crate requires both,
        // so compile one schedule per field and take whichever fires first.
        vec![cron_fields(&day_list, "*"), cron_fields("*", &weekday_list)]
    } else {
        vec![cron_fields(&day_list, &weekday_list)]
    };
    let compiled = texts
        .iter()
        .map(|text| compile(text))
        .collect::<Result<_, _>>()?;
    Ok(Schedule {
        source: expr.to_owned(),
        form: ScheduleForm::Crontab,
        compiled,
    })
}

fn parse_quartz(expr: &str, tokens: &[(usize, &str)]) -> Result<Schedule, ScheduleError> {
    let fields = parse_fields(tokens, &QUARTZ_FIELDS)?;
    let (days, months, weekdays) = (&fields[3], &fields[4], &fields[5]);
    if !days.star {
        check_days_exist(days, months, tokens[3].0, 4)?;
    }
    if let Some(years) = fields.get(6)
        && !any_date(&years.values, months, days, weekdays)
    {
        return Err(ScheduleError {
            field: Some(7),
            field_name: Some(YEAR.name),
            column: tokens[6].0,
            message: "never fires: no date in these years matches the day and month fields"
                .to_owned(),
        });
    }
    let text: Vec<&str> = tokens.iter().map(|&(_, token)| token).collect();
    Ok(Schedule {
        source: expr.to_owned(),
        form: ScheduleForm::Quartz,
        compiled: vec![compile(&text.join(" "))?],
    })
}

/// Whether some date in `years` matches the (Quartz, both-must-match) day and month fields.
fn any_date(years: &BTreeSet<u32>, months: &Field, days: &Field, weekdays: &Field) -> bool {
    years.iter().any(|&year| {
        months.values.iter().any(|&month| {
            days.values.iter().any(|&day| {
                NaiveDate::from_ymd_opt(year as i32, month, day).is_some_and(|date| {
                    weekdays
                        .values
                        .contains(&date.weekday().number_from_sunday())
                })
            })
        })
    })
}

fn compile(text: &str) -> Result<cron::Schedule, ScheduleError> {
    cron::Schedule::from_str(text).map_err(|error| {
        ScheduleError::whole(0, format!("the cron library refused \"{text}\": {error}"))
    })
}

/// A value set as the `cron` crate's list syntax (`*` when it is everything).
fn list(values: &BTreeSet<u32>, spec: &FieldSpec) -> String {
    if values.len() == (spec.max - spec.min + 1) as usize {
        return "*".to_owned();
    }
    let items: Vec<String> = values.iter().map(u32::to_string).collect();
    items.join(",")
}

/// Crontab days of week (0–6, Sunday 0) as names, so the `cron` crate's numbering (Sunday 1)
/// never comes into it.
fn weekday_names(values: &BTreeSet<u32>) -> String {
    const NAMES: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
    if values.len() == 7 {
        return "*".to_owned();
    }
    let names: Vec<&str> = values.iter().map(|&day| NAMES[day as usize]).collect();
    names.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("an RFC 3339 time")
            .with_timezone(&Utc)
    }

    #[test]
    fn crontab_compiles_to_cron_crate_expressions() {
        let cases = [
            ("0 9 * * 1-5", vec!["0 0 9 * * MON,TUE,WED,THU,FRI"]),
            ("*/15 * * * *", vec!["0 0,15,30,45 * * * *"]),
            ("0 0 * * 0", vec!["0 0 0 * * SUN"]),
            ("0 0 * * 7", vec!["0 0 0 * * SUN"]),
            ("0 0 * * FRI-SUN", vec!["0 0 0 * * SUN,FRI,SAT"]),
            ("0 0 * * 5-0", vec!["0 0 0 * * SUN,FRI,SAT"]),
            ("0 0 * * 0-7", vec!["0 0 0 * * *"]),
            (
                "5/20 1-10/3 * jan,JUL *",
                vec!["0 5,25,45 1,4,7,10 * 1,7 *"],
            ),
            ("0 12 13 * 5", vec!["0 0 12 13 * *", "0 0 12 * * FRI"]),
            (
                "0 0 */2 * mon",
                vec!["0 0 0 1,3,5,7,9,11,13,15,17,19,21,23,25,27,29,31 * MON"],
            ),
            ("@weekly", vec!["0 0 0 * * SUN"]),
            ("@annually", vec!["0 0 0 1 1 *"]),
        ];
        for (expr, expected) in cases {
            let schedule = Schedule::parse(expr).expect(expr);
            let actual: Vec<&str> = schedule
                .compiled
                .iter()
                .map(cron::Schedule::source)
                .collect();
            assert_eq!(actual, expected, "{expr}");
        }
    }

    #[test]
    fn end_of_gap_is_the_first_instant_after_the_gap() {
        let cases = [
            (
                "2024-03-31T01:30:00",
                chrono_tz::Europe::London,
                "2024-03-31T01:00:00Z",
            ),
            (
                "2024-03-31T01:00:00",
                chrono_tz::Europe::London,
                "2024-03-31T01:00:00Z",
            ),
            (
                "2024-03-31T01:59:59",
                chrono_tz::Europe::London,
                "2024-03-31T01:00:00Z",
            ),
            (
                "2024-03-10T02:30:00",
                chrono_tz::America::New_York,
                "2024-03-10T07:00:00Z",
            ),
            (
                "2024-10-06T02:00:00",
                chrono_tz::Australia::Sydney,
                "2024-10-05T16:00:00Z",
            ),
            // Lord Howe moves by half an hour; Samoa skipped the whole of 30 December 2011.
            (
                "2024-10-06T02:15:00",
                chrono_tz::Australia::Lord_Howe,
                "2024-10-05T15:30:00Z",
            ),
            (
                "2011-12-30T12:00:00",
                chrono_tz::Pacific::Apia,
                "2011-12-30T10:00:00Z",
            ),
        ];
        for (wall, tz, expected) in cases {
            let wall = NaiveDateTime::parse_from_str(wall, "%Y-%m-%dT%H:%M:%S").expect(wall);
            assert!(
                tz.from_local_datetime(&wall).earliest().is_none(),
                "{wall} exists in {tz}"
            );
            assert_eq!(end_of_gap(wall, tz), Some(utc(expected)), "{wall} in {tz}");
        }
    }

    /// Why we do not use the `cron` crate's own time-zone handling: it skips wall times in a
    /// gap and fires twice in a repeated hour.
    #[test]
    fn the_cron_crate_alone_skips_gaps_and_repeats_overlaps() {
        let tz = chrono_tz::America::New_York;
        let daily = cron::Schedule::from_str("0 30 2 * * *").expect("valid");
        let start = utc("2024-03-09T12:00:00Z").with_timezone(&tz);
        let crate_says: Vec<DateTime<Utc>> = daily
            .after(&start)
            .take(2)
            .map(|time| time.with_timezone(&Utc))
            .collect();
        assert_eq!(
            crate_says,
            [utc("2024-03-11T06:30:00Z"), utc("2024-03-12T06:30:00Z")],
            "the crate skipped 10 March"
        );
        let ours = Schedule::parse("30 2 * * *").expect("valid");
        assert_eq!(
            ours.next_after(utc("2024-03-09T12:00:00Z"), tz),
            Some(utc("2024-03-10T07:00:00Z"))
        );

        let nightly = cron::Schedule::from_str("0 30 1 * * *").expect("valid");
        let start = utc("2024-11-02T12:00:00Z").with_timezone(&tz);
        let crate_says: Vec<DateTime<Utc>> = nightly
            .after(&start)
            .take(2)
            .map(|time| time.with_timezone(&Utc))
            .collect();
        assert_eq!(
            crate_says,
            [utc("2024-11-03T05:30:00Z"), utc("2024-11-03T06:30:00Z")],
            "the crate fired twice on 3 November"
        );
    }

    #[test]
    fn nothing_fires_after_2100() {
        let schedule = Schedule::parse("0 0 29 2 *").expect("valid");
        let tz = chrono_tz::UTC;
        assert_eq!(
            schedule.next_after(utc("2095-01-01T00:00:00Z"), tz),
            Some(utc("2096-02-29T00:00:00Z"))
        );
        assert_eq!(schedule.next_after(utc("2096-03-01T00:00:00Z"), tz), None);
    }
}
