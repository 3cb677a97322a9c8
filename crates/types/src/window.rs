//! The feature window of an assessment.

use std::fmt;

use serde::Serialize;

/// The period over which window features are computed (`tiering.window` in the rules): at an
/// assessment time `at`, the data with `at - length < t <= at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Window {
    /// All time: every order, interaction... up to the assessment time.
    All,
    /// The last N days up to the assessment time (what rules write: `365d`, `52w`).
    Days(u32),
    /// The last N seconds up to the assessment time: an exact length, for tests and benchmarks
    /// (rules never produce it). Zero or fewer seconds contain nothing.
    Seconds(i64),
}

impl Window {
    /// The window's length in seconds; `None` for all time.
    #[must_use]
    pub fn seconds(self) -> Option<i64> {
        match self {
            Window::All => None,
            Window::Days(days) => Some(i64::from(days) * 86_400),
            Window::Seconds(seconds) => Some(seconds),
        }
    }

    /// Parses `365d`, `52w` or `all`.
    ///
    /// # Errors
    /// What is wrong with the text, in one line.
    pub fn parse(text: &str) -> Result<Window, String> {
        let text = text.trim();
        if text == "all" {
            return Ok(Window::All);
        }
        let (number, unit) = text.split_at(
            text.find(|c: char| !c.is_ascii_digit())
                .unwrap_or(text.len()),
        );
        let days_per_unit = match unit {
            "d" => 1,
            "w" => 7,
            "" => return Err(format!("window `{text}` has no unit")),
            "m" | "mo" | "month" | "months" | "y" | "year" | "years" => {
                return Err(format!(
                    "window `{text}`: months and years differ in length; give days or weeks"
                ));
            }
            _ => return Err(format!("window `{text}` is not a number of days or weeks")),
        };
        let number: u32 = number
            .parse()
            .map_err(|_| format!("window `{text}` is not a number of days or weeks"))?;
        let days = number.saturating_mul(days_per_unit);
        if days == 0 {
            return Err("a window of zero days holds nothing".to_owned());
        }
        if days > 36_500 {
            return Err(format!(
                "window `{text}` is longer than 100 years; use `all` for all time"
            ));
        }
        Ok(Window::Days(days))
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Window::All => f.write_str("all"),
            Window::Days(days) => write!(f, "{days}d"),
            Window::Seconds(seconds) => write!(f, "{seconds}s"),
        }
    }
}
