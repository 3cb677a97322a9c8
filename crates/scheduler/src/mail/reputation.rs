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

use chrono::{DateTime, Utc};
use serde::Serialize;
use tiercare_store::{Store, StoreError};

use crate::sending_settings::warmup_start;
pub use crate::sending_settings::{ReputationConfig, WarmupConfig};

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
}
