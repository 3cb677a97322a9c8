//! Tests for `tiercare_engine::schedule`, checked against an independent reference.
//!
//! The reference below knows nothing of the `cron` crate: it parses crontab fields into sets of
//! allowed values, walks UTC minutes one at a time, looks at the local wall clock, applies
//! Vixie's day-of-month/day-of-week rule and our daylight-saving policy ("gaps and repeats fire
//! once"). `Schedule` must agree with it exactly:
//!
//! - `tests/fixtures/schedule/vectors.txt`: hand-written cases (expression, zone, start, the
//!   next firings written with their local offsets), checked against both;
//! - randomised comparisons over hundreds of expressions and five zones, drawn by proptest (a
//!   failure shrinks to a simpler expression and is replayed first from then on);
//! - `tests/fixtures/schedule/errors.txt` → the insta snapshot `tests/snapshots/schedule/errors.snap`:
//!   the error messages. After a deliberate change, `INSTA_UPDATE=always` rewrites it (or
//!   `cargo insta review` shows the change to accept).

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, Offset, TimeDelta, Timelike, Utc};
use chrono_tz::Tz;
use proptest::prelude::*;
use proptest::test_runner::{FileFailurePersistence, TestRunner};
use tiercare_engine::schedule::{Schedule, ScheduleError, ScheduleForm};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/schedule")
}

fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|error| panic!("{text}: {error}"))
        .with_timezone(&Utc)
}

// ---------------------------------------------------------------------------------------------
// The reference: crontab semantics written out plainly.

/// A crontab expression as sets of allowed values, indexed by value.
struct Reference {
    minutes: Vec<bool>,
    hours: Vec<bool>,
    days: Vec<bool>,
    months: Vec<bool>,
    /// 0 = Sunday … 6 = Saturday.
    weekdays: Vec<bool>,
    /// Vixie: a field whose text starts with `*` makes the day rule "both must match".
    day_star: bool,
    weekday_star: bool,
}

impl Reference {
    /// Parses a valid crontab expression (panics on anything else: inputs are known to be valid).
    fn parse(expr: &str) -> Reference {
        let expanded = match expr.trim().to_ascii_lowercase().as_str() {
            "@yearly" | "@annually" => "0 0 1 1 *".to_owned(),
            "@monthly" => "0 0 1 * *".to_owned(),
            "@weekly" => "0 0 * * 0".to_owned(),
            "@daily" | "@midnight" => "0 0 * * *".to_owned(),
            "@hourly" => "0 * * * *".to_owned(),
            _ => expr.to_owned(),
        };
        let fields: Vec<&str> = expanded.split_whitespace().collect();
        assert_eq!(fields.len(), 5, "{expr}");
        const MONTHS: [&str; 12] = [
            "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
        ];
        const DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
        let mut weekdays = vec![false; 7];
        for (day, allowed) in reference_set(fields[4], 0, 7, &DAYS, 0, true)
            .into_iter()
            .enumerate()
        {
            if allowed {
                weekdays[day % 7] = true;
            }
        }
        Reference {
            minutes: reference_set(fields[0], 0, 59, &[], 0, false),
            hours: reference_set(fields[1], 0, 23, &[], 0, false),
            days: reference_set(fields[2], 1, 31, &[], 0, false),
            months: reference_set(fields[3], 1, 12, &MONTHS, 1, false),
            weekdays,
            day_star: fields[2].starts_with('*'),
            weekday_star: fields[4].starts_with('*'),
        }
    }

    /// Whether a calendar day is chosen by the day-of-month, month and day-of-week fields.
    fn day_matches(&self, date: NaiveDate) -> bool {
        let by_day = self.days[date.day() as usize];
        let by_weekday = self.weekdays[date.weekday().num_days_from_sunday() as usize];
        let day = if self.day_star || self.weekday_star {
            by_day && by_weekday
        } else {
            by_day || by_weekday
        };
        self.months[date.month() as usize] && day
    }

    fn matches(&self, wall: NaiveDateTime) -> bool {
        self.minutes[wall.minute() as usize]
            && self.hours[wall.hour() as usize]
            && self.day_matches(wall.date())
    }

    /// Firings in `(from, to]`, at most `limit`, found by walking every UTC minute and looking
    /// at the local wall clock. A wall minute fires the first time the clock reaches it or
    /// jumps past it: so a time inside a spring-forward gap fires when the gap ends, and a time
    /// the clock shows a second time after falling back does not fire again.
    fn firings(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        tz: Tz,
        limit: usize,
    ) -> Vec<DateTime<Utc>> {
        let wall = |instant: DateTime<Utc>| instant.with_timezone(&tz).naive_local();
        let minute = TimeDelta::minutes(1);
        // Start a day early so that the highest wall time already shown is known.
        let mut instant = from
            .with_second(0)
            .and_then(|t| t.with_nanosecond(0))
            .expect("valid")
            - TimeDelta::days(1);
        let mut highest_shown = wall(instant);
        let mut firings = Vec::new();
        while firings.len() < limit {
            instant += minute;
            if instant > to {
                break;
            }
            let now_shown = wall(instant);
            if now_shown <= highest_shown {
                continue; // the clock was set back: these wall times have been shown already
            }
            let mut reached = highest_shown + minute;
            let mut fires = false;
            while reached <= now_shown {
                fires |= self.matches(reached);
                reached += minute;
            }
            highest_shown = now_shown;
            if fires && instant > from {
                firings.push(instant);
            }
        }
        firings
    }
}

/// The allowed values of one field, as a vector indexed by value (`max + 1` long).
/// `names[i]` stands for `names_base + i`. With `to_sunday`, a range from 1-6 ending at 0 ends
/// at 7.
fn reference_set(
    field: &str,
    min: u32,
    max: u32,
    names: &[&str],
    names_base: u32,
    to_sunday: bool,
) -> Vec<bool> {
    let value = |text: &str| -> u32 {
        match names
            .iter()
            .position(|name| name.eq_ignore_ascii_case(text))
        {
            Some(index) => index as u32 + names_base,
            None => text
                .parse()
                .unwrap_or_else(|_| panic!("bad value {text:?} in {field:?}")),
        }
    };
    let mut allowed = vec![false; max as usize + 1];
    for item in field.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((range, step)) => (range, step.parse::<u32>().expect("a step")),
            None => (item, 1),
        };
        let (first, last) = if range == "*" {
            (min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            let (a, b) = (value(a), value(b));
            // `5-0` is Friday to Sunday, but `0-0` only Sunday.
            (a, if to_sunday && b == 0 && a > 0 { 7 } else { b })
        } else if item.contains('/') {
            (value(range), max)
        } else {
            (value(range), value(range))
        };
        let mut current = first;
        while current <= last {
            allowed[current as usize] = true;
            current += step;
        }
    }
    allowed
}

// ---------------------------------------------------------------------------------------------
// Hand-written vectors

struct Vector {
    line: usize,
    expr: String,
    form: ScheduleForm,
    zone: Tz,
    from: DateTime<Utc>,
    fires: Vec<DateTime<chrono::FixedOffset>>,
    then_none: bool,
}

fn read_vectors() -> Vec<Vector> {
    let text = std::fs::read_to_string(fixtures().join("vectors.txt")).expect("vectors.txt");
    let mut vectors = Vec::new();
    let mut current: Option<Vector> = None;
    for (index, raw) in text.lines().enumerate() {
        let line = raw.split(" #").next().unwrap_or("").trim();
        if line.starts_with('#') || line.is_empty() {
            vectors.extend(current.take());
            continue;
        }
        let (key, value) = line
            .split_once(':')
            .unwrap_or_else(|| panic!("vectors.txt:{}: expected `key: value`", index + 1));
        let value = value.trim();
        if key == "expr" {
            vectors.extend(current.take());
            current = Some(Vector {
                line: index + 1,
                expr: value.to_owned(),
                form: ScheduleForm::Crontab,
                zone: chrono_tz::UTC,
                from: DateTime::UNIX_EPOCH,
                fires: Vec::new(),
                then_none: false,
            });
            continue;
        }
        let vector = current
            .as_mut()
            .unwrap_or_else(|| panic!("vectors.txt:{}: `{key}` before `expr`", index + 1));
        match key {
            "form" => {
                vector.form = match value {
                    "crontab" => ScheduleForm::Crontab,
                    "quartz" => ScheduleForm::Quartz,
                    _ => panic!("vectors.txt:{}: unknown form {value}", index + 1),
                }
            }
            "zone" => vector.zone = value.parse().expect("a zone name"),
            "from" => vector.from = utc(value),
            "fire" => vector.fires.push(
                DateTime::parse_from_rfc3339(value)
                    .unwrap_or_else(|error| panic!("vectors.txt:{}: {error}", index + 1)),
            ),
            "then" if value == "none" => vector.then_none = true,
            _ => panic!("vectors.txt:{}: unknown key {key}", index + 1),
        }
    }
    vectors.extend(current);
    vectors
}

#[test]
fn vectors_agree_with_schedule_and_reference() {
    let vectors = read_vectors();
    assert!(
        vectors.len() >= 40,
        "vectors went missing: {}",
        vectors.len()
    );
    let far = utc("2101-01-01T00:00:00Z");
    let mut failures = Vec::new();
    for vector in &vectors {
        let name = format!(
            "vectors.txt:{} `{}` in {} from {}",
            vector.line, vector.expr, vector.zone, vector.from
        );
        assert!(!vector.fires.is_empty(), "{name}: no firings listed");
        // The offsets written in the file must be the zone's, so the local times shown are true.
        for fire in &vector.fires {
            let offset = fire.with_timezone(&vector.zone).offset().fix();
            assert_eq!(
                *fire.offset(),
                offset,
                "{name}: {fire} is written with the wrong offset for {}",
                vector.zone
            );
        }
        let expected: Vec<DateTime<Utc>> =
            vector.fires.iter().map(|f| f.with_timezone(&Utc)).collect();
        let schedule = match Schedule::parse(&vector.expr) {
            Ok(schedule) => schedule,
            Err(error) => {
                failures.push(format!("{name}: {error}"));
                continue;
            }
        };
        assert_eq!(schedule.form(), vector.form, "{name}");
        let ours = schedule.between(vector.from, far, vector.zone, expected.len());
        if ours != expected {
            failures.push(format!(
                "{name}:\n  expected {expected:?}\n  schedule {ours:?}"
            ));
        }
        if schedule.next_after(vector.from, vector.zone) != expected.first().copied() {
            failures.push(format!("{name}: next_after disagrees with between"));
        }
        let last = *expected.last().expect("not empty");
        if vector.then_none && schedule.next_after(last, vector.zone).is_some() {
            failures.push(format!("{name}: fires again after {last}"));
        }
        if vector.form == ScheduleForm::Crontab {
            let reference = Reference::parse(&vector.expr).firings(
                vector.from,
                last,
                vector.zone,
                expected.len(),
            );
            if reference != expected {
                failures.push(format!(
                    "{name}:\n  expected  {expected:?}\n  reference {reference:?}"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// ---------------------------------------------------------------------------------------------
// Randomised agreement

/// The random choices a generator makes, drawn by proptest: a failing case shrinks to fewer and
/// smaller choices (so to simpler expressions: `between` maps a smaller choice to a lower value),
/// is printed, and is saved in `schedule.proptest-regressions` to be replayed first. Past
/// the end of the list every choice is 0.
struct Rng {
    choices: Vec<u64>,
    used: usize,
}

impl Rng {
    fn new(choices: Vec<u64>) -> Rng {
        Rng { choices, used: 0 }
    }

    fn next(&mut self) -> u64 {
        let choice = self.choices.get(self.used).copied().unwrap_or(0);
        self.used += 1;
        choice
    }

    /// A value in `low..=high`.
    fn between(&mut self, low: u32, high: u32) -> u32 {
        low + (self.next() % u64::from(high - low + 1)) as u32
    }

    fn percent(&mut self, chance: u32) -> bool {
        self.between(1, 100) <= chance
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.next() as usize % items.len()]
    }
}

/// Runs `case` on `cases` lists of random choices (see [`Rng`]), shrinking and saving a failure.
fn for_random_choices(cases: u32, case: impl Fn(&mut Rng) -> Result<(), String>) {
    let config = ProptestConfig {
        cases,
        source_file: Some(file!()),
        failure_persistence: Some(Box::new(FileFailurePersistence::SourceParallel(
            "proptest-regressions",
        ))),
        ..ProptestConfig::default()
    };
    let mut runner = TestRunner::new(config);
    let result = runner.run(&prop::collection::vec(any::<u64>(), 64..256), |choices| {
        case(&mut Rng::new(choices)).map_err(TestCaseError::fail)
    });
    if let Err(error) = result {
        panic!("{error}");
    }
}

struct RandomField {
    min: u32,
    max: u32,
    names: &'static [&'static str],
    /// Values to favour (hours around DST changes), if any.
    favour: &'static [u32],
    star_chance: u32,
}

const RANDOM_FIELDS: [RandomField; 5] = [
    RandomField {
        min: 0,
        max: 59,
        names: &[],
        favour: &[0, 15, 30, 45, 59],
        star_chance: 3,
    },
    RandomField {
        min: 0,
        max: 23,
        names: &[],
        favour: &[0, 1, 2, 3, 23],
        star_chance: 30,
    },
    RandomField {
        min: 1,
        max: 31,
        names: &[],
        favour: &[1, 13, 28, 29, 30, 31],
        star_chance: 55,
    },
    RandomField {
        min: 1,
        max: 12,
        names: &[
            "jan", "FEB", "Mar", "apr", "MAY", "jun", "Jul", "aug", "SEP", "oct", "Nov", "dec",
        ],
        favour: &[2, 3, 10, 11],
        star_chance: 65,
    },
    RandomField {
        min: 0,
        max: 7,
        names: &["sun", "MON", "Tue", "wed", "THU", "fri", "Sat"],
        favour: &[0, 5, 7],
        star_chance: 55,
    },
];

impl RandomField {
    fn value(&self, rng: &mut Rng) -> u32 {
        if !self.favour.is_empty() && rng.percent(40) {
            self.favour[rng.next() as usize % self.favour.len()]
        } else {
            rng.between(self.min, self.max)
        }
    }

    fn spell(&self, rng: &mut Rng, value: u32) -> String {
        let index = (value - self.min) as usize;
        match self.names.get(index) {
            Some(name) if rng.percent(40) => (*name).to_owned(),
            _ => value.to_string(),
        }
    }

    fn step(&self, rng: &mut Rng) -> u32 {
        if rng.percent(70) {
            rng.between(1, 6.min(self.max))
        } else {
            rng.between(1, self.max)
        }
    }

    fn item(&self, rng: &mut Rng) -> String {
        let (a, b) = {
            let (x, y) = (self.value(rng), self.value(rng));
            (x.min(y), x.max(y))
        };
        match rng.between(0, 9) {
            0..=3 => self.spell(rng, a),
            4 | 5 => format!("{}-{}", self.spell(rng, a), self.spell(rng, b)),
            6 => format!(
                "{}-{}/{}",
                self.spell(rng, a),
                self.spell(rng, b),
                self.step(rng)
            ),
            7 => format!("{}/{}", a, self.step(rng)),
            8 if self.max == 7 => {
                // A day-of-week range ending at Sunday, written as 0 or SUN.
                let start = rng.between(1, 6);
                let end = if rng.percent(50) { "0" } else { "sun" };
                format!("{}-{end}", self.spell(rng, start))
            }
            _ => format!("{}-{}", a, b),
        }
    }

    fn field(&self, rng: &mut Rng) -> String {
        if rng.percent(self.star_chance) {
            return "*".to_owned();
        }
        if rng.percent(12) {
            // Starts with `*`, so it counts as "*" for Vixie's day rule.
            return format!("*/{}", self.step(rng));
        }
        let count = match rng.between(0, 9) {
            0..=5 => 1,
            6..=8 => 2,
            _ => 3,
        };
        let items: Vec<String> = (0..count).map(|_| self.item(rng)).collect();
        items.join(",")
    }
}

fn random_expression(rng: &mut Rng) -> String {
    if rng.percent(3) {
        let macros = [
            "@yearly",
            "@annually",
            "@monthly",
            "@weekly",
            "@daily",
            "@midnight",
            "@hourly",
        ];
        return rng.pick(&macros).to_owned();
    }
    let fields: Vec<String> = RANDOM_FIELDS.iter().map(|field| field.field(rng)).collect();
    fields.join(" ")
}

/// The instants at which `tz` changes its offset between 2020 and 2036 (to the minute).
fn transitions(tz: Tz) -> Vec<DateTime<Utc>> {
    let offset = |instant: DateTime<Utc>| instant.with_timezone(&tz).offset().fix();
    let mut found = Vec::new();
    let mut hour = utc("2020-01-01T00:00:00Z");
    while hour < utc("2036-01-01T00:00:00Z") {
        let next = hour + TimeDelta::hours(1);
        if offset(hour) != offset(next) {
            let mut minute = hour;
            while offset(minute) == offset(hour) {
                minute += TimeDelta::minutes(1);
            }
            found.push(minute);
        }
        hour = next;
    }
    found
}

#[test]
fn random_crontabs_agree_with_the_reference() {
    const EXPRESSIONS: u32 = 300;
    const FIRINGS: usize = 50;
    let horizon = TimeDelta::days(20);
    let started = Instant::now();
    let zones = [
        chrono_tz::UTC,
        chrono_tz::Europe::London,
        chrono_tz::America::New_York,
        chrono_tz::Asia::Shanghai,
        chrono_tz::Australia::Sydney,
    ];
    let changes: Vec<Vec<DateTime<Utc>>> = zones.iter().map(|&tz| transitions(tz)).collect();
    assert_eq!(changes[0].len(), 0, "UTC has no transitions");
    assert_eq!(changes[1].len(), 32, "London changes twice a year");
    let cases = AtomicUsize::new(0);
    let firings = AtomicUsize::new(0);
    let around_changes = AtomicUsize::new(0);
    for_random_choices(EXPRESSIONS, |rng| {
        let expr = random_expression(rng);
        let reference = Reference::parse(&expr);
        let schedule = match Schedule::parse(&expr) {
            Ok(schedule) => schedule,
            Err(error) => {
                // Only "never fires" is refused among generated expressions, and the reference
                // must agree that no day of a leap year and the next can match.
                if !error.message.starts_with("never fires") {
                    return Err(format!("`{expr}`: {error}"));
                }
                let mut day = NaiveDate::from_ymd_opt(2024, 1, 1).expect("valid");
                while day.year() < 2026 {
                    if reference.day_matches(day) {
                        return Err(format!("`{expr}` was refused but fires on {day}"));
                    }
                    day = day.succ_opt().expect("valid");
                }
                return Ok(());
            }
        };
        // Two zones per expression, so every zone meets every kind of expression.
        let first = rng.between(0, 4) as usize;
        for zone_index in [first, (first * 3 + 1) % zones.len()] {
            let tz = zones[zone_index];
            let near_change = !changes[zone_index].is_empty() && rng.percent(60);
            let from = if near_change {
                around_changes.fetch_add(1, Ordering::Relaxed);
                let change = changes[zone_index][rng.next() as usize % changes[zone_index].len()];
                change - TimeDelta::seconds(i64::from(rng.between(0, 30 * 3600)))
            } else {
                let seconds = i64::from(rng.between(0, 16 * 365 * 86_400));
                utc("2020-01-01T00:00:00Z") + TimeDelta::seconds(seconds)
            };
            let to = from + horizon;
            let ours = schedule.between(from, to, tz, FIRINGS);
            let expected = reference.firings(from, to, tz, FIRINGS);
            cases.fetch_add(1, Ordering::Relaxed);
            firings.fetch_add(expected.len(), Ordering::Relaxed);
            if ours != expected {
                return Err(format!(
                    "`{expr}` in {tz} from {from}:\n  reference {expected:?}\n  schedule  {ours:?}"
                ));
            }
        }
        Ok(())
    });
    let (cases, firings, around_changes) = (
        cases.into_inner(),
        firings.into_inner(),
        around_changes.into_inner(),
    );
    assert!(
        cases >= 500 && firings >= 10_000 && around_changes >= 150,
        "too little was compared: {cases} cases, {firings} firings, {around_changes} near changes"
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
}

/// One random 6/7-field item: mostly valid, sometimes one of the mistakes the `cron` crate
/// refuses (out of range, backwards, step 0 or too large, `NAME/STEP`, a number-name range).
fn random_quartz_item(rng: &mut Rng, min: u32, max: u32, names: &[&str]) -> String {
    let spell = |rng: &mut Rng, value: u32| match names.get((value - min) as usize) {
        Some(name) if rng.percent(40) => (*name).to_owned(),
        _ => value.to_string(),
    };
    let (a, b) = {
        let (x, y) = (rng.between(min, max), rng.between(min, max));
        (x.min(y), x.max(y))
    };
    let step = rng.between(1, 6.min(max));
    match rng.between(0, 19) {
        0..=5 => spell(rng, a),
        6..=8 => format!("{}-{}", spell(rng, a), spell(rng, b)),
        9 | 10 => format!("{}-{}/{step}", spell(rng, a), spell(rng, b)),
        11 | 12 => format!("{a}/{step}"),
        13 | 14 => format!("*/{step}"),
        15 => format!("{}", max + 1),
        16 if a < b => format!("{b}-{a}"),
        17 => format!("*/{}", [0, max + 1][rng.between(0, 1) as usize]),
        18 if !names.is_empty() => format!("{}/{step}", names[(a - min) as usize]),
        19 if !names.is_empty() => format!("{a}-{}", names[(b - min) as usize]),
        _ => a.to_string(),
    }
}

fn random_quartz(rng: &mut Rng) -> String {
    const MONTHS: &[&str] = &[
        "jan", "February", "MAR", "apr", "May", "june", "JUL", "aug", "Sep", "october", "nov",
        "DEC",
    ];
    const DAYS: &[&str] = &["SUN", "monday", "tues", "Wed", "thurs", "fri", "Saturday"];
    let fields: [(u32, u32, &[&str], u32); 7] = [
        (0, 59, &[], 30),
        (0, 59, &[], 20),
        (0, 23, &[], 40),
        (1, 31, &[], 60),
        (1, 12, MONTHS, 60),
        (1, 7, DAYS, 60),
        (2020, 2040, &[], 50),
    ];
    let count = if rng.percent(30) { 7 } else { 6 };
    let mut text = Vec::new();
    for (index, &(min, max, names, star)) in fields.iter().take(count).enumerate() {
        let field = if rng.percent(star) {
            if (index == 3 || index == 5) && rng.percent(50) {
                "?"
            } else {
                "*"
            }
            .to_owned()
        } else {
            let items: Vec<String> = (0..rng.between(1, 2))
                .map(|_| random_quartz_item(rng, min, max, names))
                .collect();
            items.join(",")
        };
        text.push(field);
    }
    text.join(" ")
}

#[test]
fn quartz_form_is_the_cron_crate_unchanged() {
    let accepted = AtomicUsize::new(0);
    let refused = AtomicUsize::new(0);
    let never = AtomicUsize::new(0);
    for_random_choices(400, |rng| {
        let expr = random_quartz(rng);
        let theirs = <cron::Schedule as std::str::FromStr>::from_str(&expr);
        let ours = Schedule::parse(&expr);
        match (ours, theirs) {
            (Ok(ours), Ok(theirs)) => {
                accepted.fetch_add(1, Ordering::Relaxed);
                if ours.form() != ScheduleForm::Quartz {
                    return Err(format!("`{expr}` is not read as the Quartz form"));
                }
                let from = utc("2020-01-01T00:00:00Z")
                    + TimeDelta::seconds(i64::from(rng.between(0, 20 * 365 * 86_400)));
                let to = from + TimeDelta::days(5 * 366);
                let expected: Vec<DateTime<Utc>> = theirs
                    .after(&from)
                    .take_while(|t| *t <= to)
                    .take(20)
                    .collect();
                let ours = ours.between(from, to, chrono_tz::UTC, 20);
                if ours != expected {
                    return Err(format!(
                        "`{expr}` from {from}:\n  cron  {expected:?}\n  ours  {ours:?}"
                    ));
                }
            }
            (Err(error), Ok(theirs)) => {
                // We refuse more only when the schedule could never fire.
                if !error.message.starts_with("never fires") {
                    return Err(format!("`{expr}`: we say {error}, the crate accepts it"));
                }
                if theirs.after(&utc("1970-01-01T00:00:00Z")).next().is_some() {
                    return Err(format!("`{expr}` does fire"));
                }
                never.fetch_add(1, Ordering::Relaxed);
            }
            (Err(_), Err(_)) => {
                refused.fetch_add(1, Ordering::Relaxed);
            }
            (Ok(_), Err(error)) => {
                return Err(format!("`{expr}`: we accept it, the crate says {error}"));
            }
        }
        Ok(())
    });
    let (accepted, refused, never) = (
        accepted.into_inner(),
        refused.into_inner(),
        never.into_inner(),
    );
    assert!(
        accepted >= 100 && refused >= 50,
        "{accepted} accepted, {refused} refused, {never} never fire"
    );
}

// ---------------------------------------------------------------------------------------------
// The two forms

#[test]
fn forms_are_told_apart_by_field_count() {
    let cases = [
        ("0 9 * * 1-5", ScheduleForm::Crontab),
        ("@daily", ScheduleForm::Crontab),
        ("  @Weekly  ", ScheduleForm::Crontab),
        ("0 30 2 * * *", ScheduleForm::Quartz),
        ("0 0 12 1 1 ? 2030", ScheduleForm::Quartz),
    ];
    for (expr, form) in cases {
        let schedule: Schedule = expr
            .parse()
            .unwrap_or_else(|error| panic!("{expr}: {error}"));
        assert_eq!(schedule.form(), form, "{expr}");
        assert_eq!(schedule.source(), expr);
        assert_eq!(schedule.to_string(), expr);
    }
}

#[test]
fn quartz_sunday_is_1_where_crontab_monday_is_1() {
    let saturday = utc("2024-06-01T00:00:00Z");
    let quartz = Schedule::parse("0 0 12 * * 1").expect("valid");
    let crontab = Schedule::parse("0 12 * * 1").expect("valid");
    assert_eq!(
        quartz.next_after(saturday, chrono_tz::UTC),
        Some(utc("2024-06-02T12:00:00Z")),
        "Quartz 1 is Sunday"
    );
    assert_eq!(
        crontab.next_after(saturday, chrono_tz::UTC),
        Some(utc("2024-06-03T12:00:00Z")),
        "crontab 1 is Monday"
    );
    // Quartz day fields must both match; crontab ones need only one.
    let quartz = Schedule::parse("0 0 12 13 * FRI").expect("valid");
    let crontab = Schedule::parse("0 12 13 * FRI").expect("valid");
    let from = utc("2024-09-01T00:00:00Z");
    assert_eq!(
        quartz.between(from, utc("2025-12-31T00:00:00Z"), chrono_tz::UTC, 3),
        [
            utc("2024-09-13T12:00:00Z"),
            utc("2024-12-13T12:00:00Z"),
            utc("2025-06-13T12:00:00Z")
        ]
    );
    assert_eq!(
        crontab.between(from, utc("2025-12-31T00:00:00Z"), chrono_tz::UTC, 3),
        [
            utc("2024-09-06T12:00:00Z"),
            utc("2024-09-13T12:00:00Z"),
            utc("2024-09-20T12:00:00Z")
        ]
    );
}

#[test]
fn between_is_half_open_and_limited() {
    let schedule = Schedule::parse("*/15 * * * *").expect("valid");
    let tz = chrono_tz::UTC;
    let firings = schedule.between(
        utc("2024-01-01T00:00:00Z"),
        utc("2024-01-01T01:00:00Z"),
        tz,
        10,
    );
    assert_eq!(
        firings,
        [
            utc("2024-01-01T00:15:00Z"),
            utc("2024-01-01T00:30:00Z"),
            utc("2024-01-01T00:45:00Z"),
            utc("2024-01-01T01:00:00Z")
        ],
        "(from, to]: not the start, but the end"
    );
    assert_eq!(
        schedule
            .between(
                utc("2024-01-01T00:00:00Z"),
                utc("2024-01-01T01:00:00Z"),
                tz,
                2
            )
            .len(),
        2
    );
    assert!(
        schedule
            .between(
                utc("2024-01-01T00:00:00Z"),
                utc("2024-01-01T00:14:59Z"),
                tz,
                10
            )
            .is_empty()
    );
    assert!(
        schedule
            .between(
                utc("2024-01-01T00:00:00Z"),
                utc("2024-01-01T01:00:00Z"),
                tz,
                0
            )
            .is_empty()
    );
}

// ---------------------------------------------------------------------------------------------
// Golden error messages

/// The expected-file rendering of one expression: itself in backticks, then a caret under the
/// column with the error's `Display`, or `ok`.
fn render_error(expr: &str) -> String {
    match Schedule::parse(expr) {
        Ok(schedule) => format!("`{expr}`\n ok ({:?})\n", schedule.form()),
        Err(error) => {
            check_error_fields(expr, &error);
            format!("`{expr}`\n{}^ {error}\n", " ".repeat(error.column + 1))
        }
    }
}

/// The structured parts of an error must be consistent with each other and with its message.
fn check_error_fields(expr: &str, error: &ScheduleError) {
    const CRONTAB: [&str; 5] = ["minute", "hour", "day of month", "month", "day of week"];
    const QUARTZ: [&str; 7] = [
        "second",
        "minute",
        "hour",
        "day of month",
        "month",
        "day of week",
        "year",
    ];
    assert!(
        error.column <= expr.len(),
        "`{expr}`: column {} is past the end",
        error.column
    );
    match (error.field, error.field_name) {
        (Some(field), Some(name)) => {
            let names: &[&str] = if expr.split_whitespace().count() == 5 {
                &CRONTAB
            } else {
                &QUARTZ
            };
            assert_eq!(names[field - 1], name, "`{expr}`: field {field}");
            let start = expr
                .split_whitespace()
                .nth(field - 1)
                .expect("field exists");
            assert!(
                expr[error.column..].starts_with(start),
                "`{expr}`: column is not field {field}'s start"
            );
            assert_eq!(
                error.to_string(),
                format!("field {field} ({name}): {}", error.message)
            );
        }
        (None, None) => assert_eq!(error.to_string(), error.message),
        _ => panic!("`{expr}`: field and field_name must come together: {error:?}"),
    }
}

#[test]
fn error_messages_match_golden_file() {
    let input = std::fs::read_to_string(fixtures().join("errors.txt")).expect("errors.txt");
    let mut actual = String::new();
    let mut count = 0;
    for line in input.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let expr = line
            .strip_prefix('`')
            .and_then(|rest| rest.strip_suffix('`'))
            .unwrap_or_else(|| panic!("errors.txt: write each expression in backticks: {line}"));
        actual.push_str(&render_error(expr));
        count += 1;
    }
    assert!(count >= 40, "error cases went missing: {count}");
    common::assert_fixture_snapshot("schedule", "errors", Some("schedule/errors.txt"), &actual);
}
