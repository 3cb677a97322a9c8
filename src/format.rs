//! How the CLI writes numbers, sizes, durations and local times for people: one place, so every
//! command prints them alike. Times in UTC and the forms users type are the scheduler's
//! (`tiercare_scheduler::time`).

/// Formats a count with thousands separators: 1234567 → "1,234,567".
pub fn thousands(value: f64) -> String {
    let rounded = value.round() as i128;
    let digits = rounded.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if rounded < 0 {
        out.push('-');
    }
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// Formats an amount with thousands separators and two decimals: 7129600.041 → "7,129,600.04".
pub fn money(value: f64) -> String {
    let cents = (value * 100.0).round() as i128;
    let sign = if cents < 0 { "-" } else { "" };
    let cents = cents.unsigned_abs();
    format!(
        "{sign}{}.{:02}",
        thousands((cents / 100) as f64),
        cents % 100
    )
}

/// A share as a percentage with one decimal: 0.1234 → "12.3%".
pub fn percent(share: f64) -> String {
    format!("{:.1}%", share * 100.0)
}

/// A size in bytes, for people.
pub fn size(bytes: u64) -> String {
    const MIB: f64 = 1024.0 * 1024.0;
    if bytes >= 1024 * 1024 {
        format!("{:.1} MiB", bytes as f64 / MIB)
    } else {
        format!("{} bytes", thousands(bytes as f64))
    }
}

/// Milliseconds, for people.
pub fn duration(ms: u64) -> String {
    if ms >= 1000 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else {
        format!("{ms} ms")
    }
}

/// `YYYY-MM-DD HH:MM` in the workspace's zone.
pub fn local_minute(at: i64, timezone: chrono_tz::Tz) -> String {
    chrono::DateTime::from_timestamp(at, 0)
        .map(|t| {
            t.with_timezone(&timezone)
                .format("%Y-%m-%d %H:%M")
                .to_string()
        })
        .unwrap_or_else(|| at.to_string())
}

#[cfg(test)]
mod tests {
    use super::{money, thousands};

    #[test]
    fn money_has_separators_and_cents() {
        assert_eq!(money(7_129_600.041), "7,129,600.04");
        assert_eq!(money(0.5), "0.50");
        assert_eq!(money(-1234.567), "-1,234.57");
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0.0), "0");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(1000.0), "1,000");
        assert_eq!(thousands(541_909.0), "541,909");
        assert_eq!(thousands(-1_234_567.4), "-1,234,567");
    }
}
