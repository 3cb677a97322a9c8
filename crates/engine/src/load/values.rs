//! The values rule files write, parsed: durations, times of day, weekdays, time zones and
//! assignees. Shared by the section loaders and rule tests.

use chrono::{NaiveTime, Weekday};
use chrono_tz::Tz;

use crate::care::followup::Assignee;
use crate::text::diagnostic::closest;

/// Parses a duration: `N` followed by `s`, `m` (minutes), `h`, `d` or `w`; more than zero and
/// at most 100 years.
///
/// # Errors
/// What is wrong, in one line.
pub fn parse_duration(text: &str) -> Result<i64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let seconds = match unit.trim() {
        "s" => 1,
        "m" | "min" => 60,
        "h" => 3_600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        "" if !number.is_empty() => {
            return Err(format!("`{text}` has no unit"));
        }
        "mo" | "month" | "months" | "y" | "year" | "years" => {
            return Err(format!(
                "`{text}`: months and years differ in length; give days or weeks, or use a `cron` schedule"
            ));
        }
        _ => return Err(format!("`{text}` is not a duration")),
    };
    let number: i64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration"))?;
    let total = number.saturating_mul(seconds);
    if total == 0 {
        return Err(format!("`{text}` is zero"));
    }
    if total > 36_500 * 86_400 {
        return Err(format!("`{text}` is longer than 100 years"));
    }
    Ok(total)
}

/// Parses a time of day `HH:MM`.
pub(crate) fn parse_time_of_day(text: &str) -> Option<NaiveTime> {
    NaiveTime::parse_from_str(text.trim(), "%H:%M").ok()
}

/// Parses a weekday: `mon`..`sun` or the full English name, any case.
pub(crate) fn parse_weekday(text: &str) -> Option<Weekday> {
    let lower = text.trim().to_lowercase();
    let day = match lower.get(..3)? {
        "mon" => Weekday::Mon,
        "tue" => Weekday::Tue,
        "wed" => Weekday::Wed,
        "thu" => Weekday::Thu,
        "fri" => Weekday::Fri,
        "sat" => Weekday::Sat,
        "sun" => Weekday::Sun,
        _ => return None,
    };
    let full = format!("{day}").to_lowercase();
    let names = [
        ("mon", "monday"),
        ("tue", "tuesday"),
        ("wed", "wednesday"),
        ("thu", "thursday"),
        ("fri", "friday"),
        ("sat", "saturday"),
        ("sun", "sunday"),
    ];
    let long = names
        .iter()
        .find(|(short, _)| *short == full)
        .map(|(_, l)| *l)?;
    (lower.len() == 3 || lower == long).then_some(day)
}

/// Parses `assignee:`: `owner`, `role:NAME` or `manager:NAME`.
pub(crate) fn parse_assignee(text: &str) -> Result<Assignee, String> {
    let text = text.trim();
    if text == "owner" {
        return Ok(Assignee::Owner);
    }
    let valid = |name: &str| {
        !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '@'))
    };
    match text.split_once(':') {
        Some(("role", name)) if valid(name.trim()) => Ok(Assignee::Role(name.trim().to_owned())),
        Some(("manager", name)) if valid(name.trim()) => {
            Ok(Assignee::Manager(name.trim().to_owned()))
        }
        Some(("role" | "manager", _)) => Err(format!("`{text}` names nobody")),
        _ => Err(format!("`{text}` is not an assignee")),
    }
}

/// Parses a time zone name, with a "did you mean" among the IANA names.
pub(crate) fn parse_timezone(text: &str) -> Result<Tz, (String, String)> {
    text.trim().parse::<Tz>().map_err(|_| {
        let names = chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name());
        let hint = match closest(text.trim(), names) {
            Some(best) => {
                format!("did you mean `{best}`? time zones are IANA names such as `Europe/Berlin`")
            }
            None => {
                "time zones are IANA names such as `Europe/Berlin` or `Asia/Shanghai`".to_owned()
            }
        };
        (format!("`{}` is not a time zone", text.trim()), hint)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30d"), Ok(30 * 86_400));
        assert_eq!(parse_duration("2w"), Ok(14 * 86_400));
        assert_eq!(parse_duration("12h"), Ok(12 * 3_600));
        assert_eq!(parse_duration("90m"), Ok(90 * 60));
        assert!(parse_duration("0d").unwrap_err().contains("zero"));
        assert!(parse_duration("30").unwrap_err().contains("no unit"));
        assert!(parse_duration("1month").unwrap_err().contains("months"));
        assert!(
            parse_duration("monthly")
                .unwrap_err()
                .contains("not a duration")
        );
    }

    #[test]
    fn assignees_weekdays_and_zones() {
        assert_eq!(parse_assignee("owner"), Ok(Assignee::Owner));
        assert_eq!(
            parse_assignee("role:senior"),
            Ok(Assignee::Role("senior".into()))
        );
        assert_eq!(
            parse_assignee("manager:alice"),
            Ok(Assignee::Manager("alice".into()))
        );
        assert!(parse_assignee("boss").is_err());
        assert!(parse_assignee("role:").is_err());
        assert_eq!(parse_weekday("Mon"), Some(Weekday::Mon));
        assert_eq!(parse_weekday("sunday"), Some(Weekday::Sun));
        assert_eq!(parse_weekday("sundae"), None);
        assert!(parse_timezone("Asia/Shanghai").is_ok());
        let (message, hint) = parse_timezone("Europe/Berln").unwrap_err();
        assert!(message.contains("not a time zone"));
        assert!(hint.contains("Europe/Berlin"), "{hint}");
    }
}
