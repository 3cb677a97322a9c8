//! The reputation guard: bounce and complaint rates over a recent window, and the pause of all
//! sending when they pass the thresholds (`[mail.reputation]`); and the warm-up schedule of a
//! new sending domain (`[mail.warmup]`, off by default).
//!
//! **When sending resumes** (a decision, documented in the README): the guard judges the sends
//! of the last `window_hours` (default 24) since the last `tiercare outbox resume`, once there
//! are at least `min_sends` of them. So a pause ends by itself when the burst leaves the window
//! (the bounces of a bad list do not come back unless the list is sent to again), or at once by
//! `tiercare outbox resume`, after which only later sends count. Nothing is lost while paused:
//! the e-mails stay queued.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use tiercare_store::{ReputationRow, Store, StoreError};

/// `[mail.reputation]`: when sending pauses itself.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReputationConfig {
    /// Pause when hard bounces are more than this share of the sends, in percent (default 5:
    /// the ceiling mailbox providers and ESPs tolerate; a clean list stays under 2).
    pub hard_bounce_percent: f64,
    /// Pause when complaints are more than this share of the sends, in percent (default 0.3:
    /// Gmail's and Yahoo's limit for bulk senders since February 2024).
    pub complaint_percent: f64,
    /// Judge only once the window holds at least this many sends (default 50), so two early
    /// bounces do not stop a small run.
    pub min_sends: u32,
    /// The window, in hours (default 24).
    pub window_hours: u32,
}

// The thresholds are checked finite when the settings are read.
impl Eq for ReputationConfig {}

impl Default for ReputationConfig {
    fn default() -> Self {
        ReputationConfig {
            hard_bounce_percent: 5.0,
            complaint_percent: 0.3,
            min_sends: 50,
            window_hours: 24,
        }
    }
}

/// `[mail.warmup]`: daily caps that grow from a start date, for a new sending domain or IP.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WarmupConfig {
    /// The first day of the warm-up (`2026-12-01`, UTC).
    pub start: String,
    /// The cap of each day from `start` (any 24 hours), the last one ending the warm-up
    /// (default 50, 100, 200, 400, 800, 1600, 3200, 6400, 12800).
    #[serde(default = "default_daily")]
    pub daily: Vec<u32>,
}

fn default_daily() -> Vec<u32> {
    vec![50, 100, 200, 400, 800, 1600, 3200, 6400, 12800]
}

/// Checks `[mail.reputation]` and `[mail.warmup]`.
pub fn validate(
    reputation: &ReputationConfig,
    warmup: Option<&WarmupConfig>,
) -> Result<(), String> {
    for (name, value) in [
        ("hard_bounce_percent", reputation.hard_bounce_percent),
        ("complaint_percent", reputation.complaint_percent),
    ] {
        if !(value.is_finite() && value > 0.0 && value <= 100.0) {
            return Err(format!(
                "[mail.reputation] {name} must be a percentage above 0 and at most 100"
            ));
        }
    }
    if reputation.window_hours == 0 {
        return Err("[mail.reputation] window_hours must be at least 1".to_owned());
    }
    if let Some(warmup) = warmup {
        warmup_start(warmup)?;
        if warmup.daily.is_empty() || warmup.daily.contains(&0) {
            return Err(
                "[mail.warmup] daily must list at least one cap, each at least 1".to_owned(),
            );
        }
    }
    Ok(())
}

fn warmup_start(warmup: &WarmupConfig) -> Result<i64, String> {
    NaiveDate::parse_from_str(warmup.start.trim(), "%Y-%m-%d")
        .ok()
        .and_then(|date| date.and_hms_opt(0, 0, 0))
        .map(|start| start.and_utc().timestamp())
        .ok_or_else(|| {
            format!(
                "[mail.warmup] start {:?} must be a date such as \"2026-12-01\"",
                warmup.start
            )
        })
}

/// The warm-up's cap on the e-mails of any 24 hours at `now`; `None` once it is over.
pub fn warmup_cap(warmup: &WarmupConfig, now: i64) -> Option<u32> {
    let start = warmup_start(warmup).ok()?;
    let day = usize::try_from((now - start).max(0) / 86_400).ok()?;
    warmup.daily.get(day).copied()
}

/// The figures the guard judges: the sends of the window and what went wrong with them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Figures {
    /// The window's start (unix seconds): `window_hours` ago, or the last resume if later.
    pub since: i64,
    /// Delivered or hard-bounced e-mails in the window.
    pub sends: u64,
    /// Hard bounces among them.
    pub hard_bounces: u64,
    /// Complaints about them.
    pub complaints: u64,
}

impl Figures {
    fn percent(part: u64, sends: u64) -> f64 {
        if sends == 0 {
            0.0
        } else {
            #[expect(clippy::cast_precision_loss, reason = "counts far below 2^52")]
            let share = part as f64 * 100.0 / sends as f64;
            share
        }
    }

    /// Hard bounces in percent of the sends.
    pub fn hard_bounce_percent(&self) -> f64 {
        Self::percent(self.hard_bounces, self.sends)
    }

    /// Complaints in percent of the sends.
    pub fn complaint_percent(&self) -> f64 {
        Self::percent(self.complaints, self.sends)
    }
}

/// The guard's verdict at one moment.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Guard {
    /// The figures judged.
    pub figures: Figures,
    /// Why sending is paused (with the figures and how it resumes), or `None`.
    pub paused: Option<String>,
}

/// Judges the window at `now` by `config`.
pub fn guard(store: &Store, config: &ReputationConfig, now: i64) -> Result<Guard, StoreError> {
    let window_start = now - i64::from(config.window_hours) * 3600;
    // Sends in the second of the resume are the ones that tripped the guard.
    let since = store
        .sending_resumed_at()?
        .map_or(window_start, |resumed| (resumed + 1).max(window_start));
    let mut figures = Figures {
        since,
        ..Figures::default()
    };
    for row in store.mail_reputation(since, now + 1)? {
        figures.sends += row.sends;
        figures.hard_bounces += row.hard_bounces;
        figures.complaints += row.complaints;
    }
    let mut paused = None;
    if figures.sends >= u64::from(config.min_sends) {
        let since_text = DateTime::<Utc>::from_timestamp(since, 0)
            .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
            .unwrap_or_default();
        let over = if figures.hard_bounce_percent() > config.hard_bounce_percent {
            Some(format!(
                "hard bounces are {:.1}% of the sends ({} of {} since {since_text}), above \
                 [mail.reputation] hard_bounce_percent = {}",
                figures.hard_bounce_percent(),
                figures.hard_bounces,
                figures.sends,
                config.hard_bounce_percent
            ))
        } else if figures.complaint_percent() > config.complaint_percent {
            Some(format!(
                "complaints are {:.2}% of the sends ({} of {} since {since_text}), above \
                 [mail.reputation] complaint_percent = {}",
                figures.complaint_percent(),
                figures.complaints,
                figures.sends,
                config.complaint_percent
            ))
        } else {
            None
        };
        paused = over.map(|over| {
            format!(
                "sending is paused: {over}. Check the list (`tiercare outbox list --state \
                 failed`), then `tiercare outbox resume`; otherwise it resumes once these sends \
                 are older than {} hours",
                config.window_hours
            )
        });
    }
    Ok(Guard { figures, paused })
}

/// The rows of `store`'s reputation figures over the window, per day and programme (for
/// `status` and the report).
pub fn by_day_and_rule(
    store: &Store,
    since: i64,
    until: i64,
) -> Result<Vec<ReputationRow>, StoreError> {
    store.mail_reputation(since, until)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_caps_grow_by_day_then_end() {
        let warmup = WarmupConfig {
            start: "2026-12-01".to_owned(),
            daily: vec![50, 100, 200],
        };
        let start = warmup_start(&warmup).unwrap();
        assert_eq!(
            warmup_cap(&warmup, start - 10),
            Some(50),
            "before the start"
        );
        assert_eq!(warmup_cap(&warmup, start + 3600), Some(50));
        assert_eq!(warmup_cap(&warmup, start + 86_400), Some(100));
        assert_eq!(warmup_cap(&warmup, start + 2 * 86_400 + 5), Some(200));
        assert_eq!(warmup_cap(&warmup, start + 3 * 86_400), None, "over");
    }

    #[test]
    fn bad_settings_are_refused() {
        let mut config = ReputationConfig::default();
        assert!(validate(&config, None).is_ok());
        config.hard_bounce_percent = f64::NAN;
        assert!(validate(&config, None).is_err());
        let warmup = WarmupConfig {
            start: "December".to_owned(),
            daily: default_daily(),
        };
        assert!(
            validate(&ReputationConfig::default(), Some(&warmup))
                .unwrap_err()
                .contains("2026-12-01")
        );
    }
}
