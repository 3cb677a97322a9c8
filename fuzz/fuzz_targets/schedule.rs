//! A cron expression (`schedule:`, `reassess:`): parsing must never panic, and a schedule that
//! parses must answer `between` and `next_after` in every zone without panicking, with firings
//! strictly increasing inside `(from, to]`.

#![no_main]

use chrono::{DateTime, TimeDelta, Utc};
use libfuzzer_sys::fuzz_target;
use tiercare_engine::schedule::Schedule;

const ZONES: [chrono_tz::Tz; 4] = [
    chrono_tz::UTC,
    chrono_tz::Europe::London,
    chrono_tz::America::New_York,
    chrono_tz::Australia::Lord_Howe,
];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(schedule) = Schedule::parse(text) else {
        return;
    };
    // 2026-03-28T00:00:00Z: days before Europe's spring change and after America's.
    let from = DateTime::<Utc>::from_timestamp(1_774_656_000, 0).expect("a valid instant");
    let to = from + TimeDelta::days(40);
    for tz in ZONES {
        let firings = schedule.between(from, to, tz, 200);
        let mut previous = from;
        for &firing in &firings {
            assert!(
                firing > previous && firing <= to,
                "{text}: {firing} in {tz}"
            );
            previous = firing;
        }
        assert_eq!(
            schedule.next_after(from, tz).filter(|next| *next <= to),
            firings.first().copied(),
            "{text} in {tz}"
        );
    }
});
