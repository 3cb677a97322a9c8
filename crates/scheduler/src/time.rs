//! Times, read and written in one place: the `--at`/`--from` forms users type, and the forms
//! messages, reasons and exports show. Unix seconds everywhere else.

use chrono::TimeZone;
use chrono_tz::Tz;

/// A time a user typed that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum TimeError {
    /// A date whose midnight does not exist in the zone (and neither does 01:00).
    #[error("{text} has no midnight in {zone}")]
    NoMidnight {
        /// The date as typed.
        text: String,
        /// The zone.
        zone: Tz,
    },
    /// Neither `YYYY-MM-DD` nor RFC 3339.
    #[error(
        "cannot read the time `{text}`: write YYYY-MM-DD or an RFC 3339 time such as 2026-01-31T09:00:00Z"
    )]
    Unreadable {
        /// The text as typed.
        text: String,
    },
}

/// Reads a `--at`/`--until` time: `YYYY-MM-DD` is the start of that day in `tz`; otherwise RFC 3339.
///
/// # Errors
/// [`TimeError`], saying what to write.
pub fn parse_time(text: &str, tz: Tz) -> Result<i64, TimeError> {
    if let Ok(date) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        let midnight = date.and_time(chrono::NaiveTime::MIN);
        // The earliest instant of that local day (a DST change at midnight moves it).
        let local = tz
            .from_local_datetime(&midnight)
            .earliest()
            .or_else(|| {
                tz.from_local_datetime(&(midnight + chrono::Duration::hours(1)))
                    .earliest()
            })
            .ok_or_else(|| TimeError::NoMidnight {
                text: text.to_owned(),
                zone: tz,
            })?;
        return Ok(local.timestamp());
    }
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp())
        .map_err(|_| TimeError::Unreadable {
            text: text.to_owned(),
        })
}

/// The wall-clock time now, unix seconds (for commands; the daemon reads its injected clock).
#[must_use]
pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A `--at`/`--from` option: the time given (see [`parse_time`]), or `now` when absent.
///
/// # Errors
/// As [`parse_time`].
pub fn time_or(text: Option<&str>, tz: Tz, now: i64) -> Result<i64, TimeError> {
    text.map_or(Ok(now), |text| parse_time(text, tz))
}

/// `YYYY-MM-DD HH:MM UTC` for messages.
#[must_use]
pub fn format_time(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| unix.to_string())
}

/// `2026-12-08 09:00 Asia/Shanghai`: a time on the customer's clock, for reasons.
#[must_use]
pub fn local_time(unix: i64, tz: Tz) -> String {
    chrono::DateTime::from_timestamp(unix, 0).map_or_else(
        || unix.to_string(),
        |t| {
            format!(
                "{} {}",
                t.with_timezone(&tz).format("%Y-%m-%d %H:%M"),
                tz.name()
            )
        },
    )
}

/// `2026-12-07T10:00:00Z`, or "" for none.
#[must_use]
pub fn iso_time(unix: Option<i64>) -> String {
    unix.and_then(|t| chrono::DateTime::from_timestamp(t, 0))
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

/// Parses `30s`, `5m`, `6h` or `7d` into seconds.
pub(crate) fn parse_duration(text: &str) -> Option<i64> {
    let text = text.trim();
    let split = text.len().checked_sub(1)?;
    let (number, unit) = text.split_at(split);
    let number: i64 = number.parse().ok()?;
    let unit = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => return None,
    };
    (number >= 0).then(|| number.checked_mul(unit)).flatten()
}
