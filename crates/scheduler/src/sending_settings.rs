//! The settings of sending well (`[mail.dkim]`, `[mail.domains]`, `[mail.reputation]`,
//! `[mail.warmup]`): plain data read from `tiercare.toml`, with their defaults and checks. The
//! configuration (`crate::config`) holds them and the mail layer (`crate::mail`) acts on them;
//! this module uses neither.

use std::collections::BTreeMap;
use std::path::PathBuf;

use chrono::NaiveDate;
use serde::Deserialize;

/// DKIM settings (`[mail.dkim]`): the signing domain, the selector, and where the private key
/// is: a PEM file (`key_file`, relative to the workspace) or an environment variable holding the
/// PEM (`key_env`). Never the key itself.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DkimConfig {
    /// The signing domain (`d=`); default: the domain of `[mail] from`, which DMARC aligns with.
    #[serde(default)]
    pub domain: Option<String>,
    /// The selector (`s=`): the key is published at `SELECTOR._domainkey.DOMAIN`.
    pub selector: String,
    /// The PEM private key file (PKCS#8 RSA or Ed25519, or PKCS#1 RSA), relative to the
    /// workspace root unless absolute.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// The environment variable holding the PEM private key (instead of `key_file`).
    #[serde(default)]
    pub key_env: Option<String>,
}

/// One receiving domain's limits (`[mail.domains."DOMAIN"]`). A field left out keeps the
/// default for that domain (see [`default_domains`]), or no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DomainLimits {
    /// At most this many e-mails to the domain in any 60 seconds.
    #[serde(default)]
    pub per_minute: Option<u32>,
    /// At most this many e-mails to the domain in any 60 minutes.
    #[serde(default)]
    pub per_hour: Option<u32>,
    /// At most this many e-mails to the domain in flight at once (over the SMTP connections).
    #[serde(default)]
    pub concurrency: Option<u32>,
}

/// The defaults for the large mailbox providers: conservative for a new or small sender,
/// which is what providers throttle first. Every other domain has no limit unless configured.
pub fn default_domains() -> BTreeMap<String, DomainLimits> {
    let limits = |per_minute, per_hour, concurrency| DomainLimits {
        per_minute: Some(per_minute),
        per_hour: Some(per_hour),
        concurrency: Some(concurrency),
    };
    let mut domains = BTreeMap::new();
    for domain in ["gmail.com", "googlemail.com"] {
        domains.insert(domain.to_owned(), limits(120, 3000, 3));
    }
    for domain in ["yahoo.com", "ymail.com", "aol.com"] {
        domains.insert(domain.to_owned(), limits(60, 1500, 2));
    }
    for domain in ["outlook.com", "hotmail.com", "live.com", "msn.com"] {
        domains.insert(domain.to_owned(), limits(60, 2000, 2));
    }
    for domain in ["icloud.com", "me.com", "mac.com"] {
        domains.insert(domain.to_owned(), limits(60, 1500, 2));
    }
    domains
}

/// The limits in force: the defaults with `[mail.domains]` laid over them field by field.
pub fn domain_limits(
    configured: &BTreeMap<String, DomainLimits>,
) -> BTreeMap<String, DomainLimits> {
    let mut domains = default_domains();
    for (domain, limits) in configured {
        let entry = domains.entry(domain.to_ascii_lowercase()).or_default();
        entry.per_minute = limits.per_minute.or(entry.per_minute);
        entry.per_hour = limits.per_hour.or(entry.per_hour);
        entry.concurrency = limits.concurrency.or(entry.concurrency);
    }
    domains
}

/// Checks `[mail.domains]`: every limit at least 1.
pub fn validate_domains(configured: &BTreeMap<String, DomainLimits>) -> Result<(), String> {
    for (domain, limits) in configured {
        for (name, value) in [
            ("per_minute", limits.per_minute),
            ("per_hour", limits.per_hour),
            ("concurrency", limits.concurrency),
        ] {
            if value == Some(0) {
                return Err(format!(
                    "[mail.domains.\"{domain}\"] {name} must be at least 1 (leave it out for no limit)"
                ));
            }
        }
        if domain.is_empty() || domain.contains('@') {
            return Err(format!(
                "[mail.domains.\"{domain}\"] must name a domain, such as \"gmail.com\""
            ));
        }
    }
    Ok(())
}

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
pub fn validate_reputation(
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

pub(crate) fn warmup_start(warmup: &WarmupConfig) -> Result<i64, String> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_limits_override_the_defaults_field_by_field() {
        let mut configured = BTreeMap::new();
        configured.insert(
            "Gmail.com".to_owned(),
            DomainLimits {
                per_minute: Some(10),
                ..DomainLimits::default()
            },
        );
        let limits = domain_limits(&configured);
        let gmail = limits["gmail.com"];
        assert_eq!(gmail.per_minute, Some(10));
        assert_eq!(gmail.per_hour, Some(3000));
        assert_eq!(gmail.concurrency, Some(3));
        assert!(limits.contains_key("yahoo.com"));
    }

    #[test]
    fn bad_settings_are_refused() {
        let mut config = ReputationConfig::default();
        assert!(validate_reputation(&config, None).is_ok());
        config.hard_bounce_percent = f64::NAN;
        assert!(validate_reputation(&config, None).is_err());
        let warmup = WarmupConfig {
            start: "December".to_owned(),
            daily: default_daily(),
        };
        assert!(
            validate_reputation(&ReputationConfig::default(), Some(&warmup))
                .unwrap_err()
                .contains("2026-12-01")
        );
    }
}
