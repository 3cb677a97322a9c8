//! Per-domain pacing: rate limits and concurrency per receiving domain
//! (`[mail.domains."gmail.com"]`), with defaults for the large mailbox providers, and the
//! per-domain pause a "slow down" answer (`421`, or an enhanced status `4.7.x`) starts. The
//! limits are counted from the outbox (so they hold across processes), the pauses are kept in
//! the database (so a restart honours them); the send loop (`crate::outbox`) applies both.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use tiercare_store::{DomainPause, Store, StoreError};

use super::SendError;
pub use crate::sending_settings::{DomainLimits, default_domains, domain_limits};

/// The first pause of a domain that said "slow down": 5 minutes, doubled with each such answer
/// in a row.
pub const PAUSE_BASE_SECONDS: i64 = 300;
/// The longest pause: 4 hours.
pub const PAUSE_MAX_SECONDS: i64 = 4 * 3600;

/// Whether a failure is a receiving domain asking us to slow down: a `421` reply, or an
/// enhanced status code `4.7.x` (RFC 3463: a security or policy status, which is how Gmail,
/// Yahoo and Microsoft say "rate limited"). Returns the codes to record (never the text).
pub fn slow_down(error: &SendError) -> Option<String> {
    let SendError::Transient { code, message } = error else {
        return None;
    };
    let enhanced = crate::mail::transport::enhanced_status(message)
        .filter(|status| status.starts_with("4.7."));
    match (code, enhanced) {
        (Some(421), enhanced) => Some(format!(
            "421{}",
            enhanced.map(|e| format!(" {e}")).unwrap_or_default()
        )),
        (code, Some(enhanced)) => Some(match code {
            Some(code) => format!("{code} {enhanced}"),
            None => enhanced.to_owned(),
        }),
        _ => None,
    }
}

/// One send run's view of the domains: the limits, and the pauses on record.
#[derive(Debug, Clone)]
pub struct Pacing {
    limits: BTreeMap<String, DomainLimits>,
    pauses: BTreeMap<String, DomainPause>,
}

impl Pacing {
    /// Reads the pauses on record.
    pub fn load(
        store: &Store,
        configured: &BTreeMap<String, DomainLimits>,
    ) -> Result<Pacing, StoreError> {
        Ok(Pacing {
            limits: domain_limits(configured),
            pauses: store
                .domain_pauses()?
                .into_iter()
                .map(|pause| (pause.domain.clone(), pause))
                .collect(),
        })
    }

    /// A domain's concurrency limit, if any.
    pub fn concurrency(&self, domain: &str) -> Option<usize> {
        self.limits
            .get(domain)
            .and_then(|limits| limits.concurrency)
            .map(|n| n as usize)
    }

    /// Whether `domain` is paused at `now`.
    pub fn paused(&self, domain: &str, now: i64) -> bool {
        self.pauses
            .get(domain)
            .is_some_and(|pause| pause.paused_until > now)
    }

    /// Whether `domain` has strikes on record (cleared by its next delivery).
    pub fn has_strikes(&self, domain: &str) -> bool {
        self.pauses.contains_key(domain)
    }

    /// Records a "slow down" answer from `domain`: the pause grows with each in a row.
    pub fn pause(
        &mut self,
        store: &mut Store,
        domain: &str,
        now: i64,
        reason: &str,
    ) -> Result<DomainPause, StoreError> {
        let pause =
            store.pause_domain(domain, now, reason, PAUSE_BASE_SECONDS, PAUSE_MAX_SECONDS)?;
        self.pauses.insert(domain.to_owned(), pause.clone());
        Ok(pause)
    }

    /// Records a delivery to `domain`: its strikes are forgotten.
    pub fn delivered(&mut self, store: &mut Store, domain: &str) -> Result<(), StoreError> {
        if self.pauses.remove(domain).is_some() {
            store.clear_domain_pause(domain)?;
        }
        Ok(())
    }

    /// The domains to leave alone at `now` (paused, or at a rate limit), and the most e-mails
    /// one claim may take so that no limited domain can go over its limit.
    pub fn hold(&self, store: &Store, now: i64) -> Result<(Vec<String>, Option<u64>), StoreError> {
        let mut held: Vec<String> = self
            .pauses
            .values()
            .filter(|pause| pause.paused_until > now)
            .map(|pause| pause.domain.clone())
            .collect();
        let mut take: Option<u64> = None;
        let limited: Vec<&str> = self
            .limits
            .iter()
            .filter(|(domain, limits)| {
                !held.contains(domain) && (limits.per_minute.is_some() || limits.per_hour.is_some())
            })
            .map(|(domain, _)| domain.as_str())
            .collect();
        let sent: BTreeMap<String, (u64, u64)> = store
            .sent_by_domain(&limited, now - 3600 + 1, now - 60 + 1)?
            .into_iter()
            .map(|(domain, hour, minute)| (domain, (hour, minute)))
            .collect();
        for domain in limited {
            let limits = self.limits[domain];
            let (hour, minute) = sent.get(domain).copied().unwrap_or((0, 0));
            let mut left: Option<u64> = None;
            for (sent, limit) in [(minute, limits.per_minute), (hour, limits.per_hour)] {
                if let Some(limit) = limit {
                    let room = u64::from(limit).saturating_sub(sent);
                    left = Some(left.map_or(room, |l| l.min(room)));
                }
            }
            match left {
                Some(0) => held.push(domain.to_owned()),
                Some(room) => take = Some(take.map_or(room, |t| t.min(room))),
                None => {}
            }
        }
        Ok((held, take))
    }
}

/// A pause as `status` shows it: `gmail.com until 10:05 UTC (421 4.7.28, 2nd in a row)`.
pub fn describe(pause: &DomainPause) -> String {
    let until = DateTime::<Utc>::from_timestamp(pause.paused_until, 0)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default();
    format!(
        "{} paused until {until} ({}; {} in a row)",
        pause.domain, pause.reason, pause.strikes
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transient(code: Option<u16>, message: &str) -> SendError {
        SendError::Transient {
            code,
            message: message.to_owned(),
        }
    }

    #[test]
    fn slow_down_is_421_or_4_7_x() {
        assert_eq!(
            slow_down(&transient(Some(421), "421 4.7.28 rate limited")).as_deref(),
            Some("421 4.7.28")
        );
        assert_eq!(
            slow_down(&transient(Some(421), "try later")).as_deref(),
            Some("421")
        );
        assert_eq!(
            slow_down(&transient(Some(450), "450 4.7.0 too many messages")).as_deref(),
            Some("450 4.7.0")
        );
        assert_eq!(
            slow_down(&transient(Some(451), "451 4.3.0 local error")),
            None
        );
        assert_eq!(slow_down(&transient(None, "connection refused")), None);
        assert_eq!(
            slow_down(&SendError::Permanent {
                code: Some(550),
                message: "550 5.7.1 blocked".into(),
                hard_bounce: false
            }),
            None
        );
    }

    #[test]
    fn pauses_double_and_survive_a_new_run() {
        let mut store = Store::open_in_memory().unwrap();
        let mut pacing = Pacing::load(&store, &BTreeMap::new()).unwrap();
        let first = pacing
            .pause(&mut store, "slow.example", 1000, "421")
            .unwrap();
        assert_eq!(first.paused_until, 1000 + PAUSE_BASE_SECONDS);
        let second = pacing
            .pause(&mut store, "slow.example", 2000, "421")
            .unwrap();
        assert_eq!(second.paused_until, 2000 + 2 * PAUSE_BASE_SECONDS);
        let again = Pacing::load(&store, &BTreeMap::new()).unwrap();
        assert!(again.paused("slow.example", 2000));
        assert!(!again.paused("slow.example", 2000 + 2 * PAUSE_BASE_SECONDS));
        let (held, _) = again.hold(&store, 2001).unwrap();
        assert_eq!(held, ["slow.example"]);
        let mut again = again;
        again.delivered(&mut store, "slow.example").unwrap();
        assert!(store.domain_pauses().unwrap().is_empty());
    }
}
