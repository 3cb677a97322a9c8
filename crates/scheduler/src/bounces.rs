//! Bounces and complaints, however they arrive: the `[mail.bounces]` settings and
//! [`record_bounce`], the one function that records one (used by `tiercare inbound` for
//! DSNs, by [`crate::providers`] for providers' webhooks; the send loop records a `5xx` with
//! its failure through [`tiercare_store::Store::mark_hard_bounced`]).

use serde::Deserialize;
use tiercare_store::{BounceOutcome, NewBounce, SoftBouncePolicy, Store, StoreError};

/// Bounce handling (`[mail.bounces]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BounceConfig {
    /// Soft bounces of an address that put it on the suppression list (`soft_limit`,
    /// default 3) ...
    pub soft_limit: u32,
    /// ... within this many days (`soft_window_days`, default 30).
    pub soft_window_days: u32,
    /// Postmark's webhook: the HTTP basic auth user name set in the webhook's URL
    /// (`postmark_username`); the Postmark webhook is refused without it.
    pub postmark_username: Option<String>,
    /// The environment variable holding that basic auth password.
    pub postmark_password_env: String,
    /// The environment variable holding Mailgun's HTTP webhook signing key.
    pub mailgun_signing_key_env: String,
    /// The environment variable holding the secret (`whsec_...`) of the generic webhook,
    /// signed by the Standard Webhooks scheme.
    pub webhook_secret_env: String,
}

impl Default for BounceConfig {
    fn default() -> Self {
        BounceConfig {
            soft_limit: 3,
            soft_window_days: 30,
            postmark_username: None,
            postmark_password_env: "TIERCARE_POSTMARK_WEBHOOK_PASSWORD".to_owned(),
            mailgun_signing_key_env: "TIERCARE_MAILGUN_SIGNING_KEY".to_owned(),
            webhook_secret_env: "TIERCARE_BOUNCE_WEBHOOK_SECRET".to_owned(),
        }
    }
}

impl BounceConfig {
    /// The soft bounce policy these settings give.
    pub fn policy(&self) -> SoftBouncePolicy {
        SoftBouncePolicy {
            limit: self.soft_limit.max(1),
            window: i64::from(self.soft_window_days) * 86_400,
        }
    }

    /// Checks the values: a problem in words, naming the setting.
    pub fn check(&self) -> Result<(), String> {
        if self.soft_limit == 0 || self.soft_window_days == 0 {
            return Err("[mail.bounces] soft_limit and soft_window_days must be at least 1".into());
        }
        Ok(())
    }
}

/// Records a bounce or complaint ([`Store::record_bounce`], one transaction) by the policy of
/// `config`, and logs what it did by outbox id (never the address or the server's words).
pub fn record_bounce(
    store: &mut Store,
    config: &BounceConfig,
    bounce: &NewBounce<'_>,
    now: i64,
) -> Result<BounceOutcome, StoreError> {
    let outcome = store.record_bounce(bounce, config.policy(), now)?;
    if outcome.duplicate {
        tracing::info!(outbox = ?outcome.outbox_id, source = bounce.source, "bounce already recorded");
    } else if outcome.recorded {
        tracing::info!(
            outbox = ?outcome.outbox_id,
            kind = %bounce.kind,
            status = bounce.status.unwrap_or("-"),
            source = bounce.source,
            soft_bounces = outcome.soft_bounces,
            suppressed = ?outcome.suppressed,
            "bounce recorded"
        );
    } else {
        tracing::info!(
            source = bounce.source,
            "bounce for no known email or address: not recorded"
        );
    }
    Ok(outcome)
}
