//! Providers' bounce and complaint notifications (webhooks): authenticated, parsed, and
//! recorded with [`crate::bounces::record_bounce`].
//!
//! [`handle_provider_webhook`] takes what an HTTP server received at
//! `POST /webhooks/{provider}` (the headers and the raw body) and:
//!
//! - `postmark` ([`postmark`]): HTTP basic auth (the user and password set in the webhook's
//!   URL) and Postmark's `Bounce` and `SpamComplaint` JSON records;
//! - `mailgun` ([`mailgun`]): the HMAC-SHA256 signature of `timestamp + token` with the
//!   HTTP webhook signing key, and the `failed` (permanent or temporary) and `complained`
//!   events;
//! - `generic` ([`standard`]): tiercare's own JSON form, signed by the Standard Webhooks
//!   scheme (HMAC-SHA256 over `id.timestamp.body`, `whsec_` secrets), for a relay or script
//!   of one's own.
//!
//! A wrong or missing signature or password is [`ProviderError::Unauthorized`] (HTTP 401),
//! checked before the body is read. The secrets come from the environment, as the variables
//! `[mail.bounces]` names; a provider whose secret is not set is refused as not configured.
//! Amazon SES (through SNS) is left out: verifying SNS messages means fetching AWS's
//! certificates, which cannot be done (or tested) offline.

pub mod mailgun;
pub mod postmark;
pub mod standard;

use serde::Serialize;
use tiercare_store::{BounceKind, BounceOutcome, NewBounce, Store, StoreError};

use crate::bounces::{BounceConfig, record_bounce};
use crate::config::MailConfig;

/// How far a signed timestamp may be from now (seconds) before the request is refused as
/// a replay.
pub const TIMESTAMP_TOLERANCE: i64 = 5 * 60;

/// The secrets and settings the providers' webhooks are checked with. `Debug` shows no
/// secret.
#[derive(Clone, Default)]
pub struct ProviderSettings {
    /// The bounce policy.
    pub bounces: BounceConfig,
    /// Postmark's basic auth `(user, password)`.
    pub postmark: Option<(String, String)>,
    /// Mailgun's webhook signing key.
    pub mailgun: Option<String>,
    /// The generic webhook's key (the base64 part of `whsec_...`, decoded).
    pub generic: Option<Vec<u8>>,
}

impl std::fmt::Debug for ProviderSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderSettings")
            .field("bounces", &self.bounces)
            .field("postmark", &self.postmark.as_ref().map(|_| "<secret>"))
            .field("mailgun", &self.mailgun.as_ref().map(|_| "<secret>"))
            .field("generic", &self.generic.as_ref().map(|_| "<secret>"))
            .finish()
    }
}

impl ProviderSettings {
    /// The settings of `[mail.bounces]`, each secret read through `env` (`None` when its
    /// variable is not set: that provider is refused).
    pub fn from_config(
        mail: &MailConfig,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<ProviderSettings, ProviderError> {
        let config = &mail.bounces;
        let secret = |name: &str| env(name).filter(|value| !value.is_empty());
        let postmark = match &config.postmark_username {
            Some(user) => secret(&config.postmark_password_env).map(|pass| (user.clone(), pass)),
            None => None,
        };
        let generic = match secret(&config.webhook_secret_env) {
            Some(value) => Some(standard::decode_secret(&value).ok_or_else(|| {
                ProviderError::NotConfigured {
                    provider: "generic".into(),
                    what: format!(
                        "the environment variable {} must hold a secret of the form whsec_<base64>",
                        config.webhook_secret_env
                    ),
                }
            })?),
            None => None,
        };
        Ok(ProviderSettings {
            bounces: config.clone(),
            postmark,
            mailgun: secret(&config.mailgun_signing_key_env),
            generic,
        })
    }
}

/// What a webhook call did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// A bounce or complaint, recorded (or found recorded before: `duplicate`).
    Recorded(BounceOutcome),
    /// An authentic notification of something that is not a bounce or complaint (a
    /// delivery, an open, an auto-responder): accepted, nothing done.
    Ignored {
        /// What it was.
        reason: String,
    },
}

/// Why a webhook call was refused. The HTTP status to answer: [`ProviderError::status`].
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// No such provider.
    #[error("unknown provider {0:?}: use postmark, mailgun or generic")]
    UnknownProvider(String),
    /// The provider's secret is not set.
    #[error("the {provider} webhook is not configured: {what}")]
    NotConfigured {
        /// The provider.
        provider: String,
        /// What to set.
        what: String,
    },
    /// A wrong or missing signature or password, or a stale timestamp.
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// The body is not the provider's JSON.
    #[error("bad payload: {0}")]
    BadPayload(String),
    /// The database failed (a busy database: the provider retries).
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ProviderError {
    /// The HTTP status an HTTP server should answer: 404 for an unknown or unconfigured
    /// provider, 401 for a failed authentication, 400 for a bad payload, 503 for a busy
    /// database (providers retry) and 500 otherwise.
    pub fn status(&self) -> u16 {
        match self {
            ProviderError::UnknownProvider(_) | ProviderError::NotConfigured { .. } => 404,
            ProviderError::Unauthorized(_) => 401,
            ProviderError::BadPayload(_) => 400,
            ProviderError::Store(StoreError::Locked { .. }) => 503,
            ProviderError::Store(_) => 500,
        }
    }
}

/// A notification, parsed and authenticated: what to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Notification {
    pub(crate) kind: BounceKind,
    pub(crate) address: String,
    pub(crate) message_id: Option<String>,
    pub(crate) status: Option<String>,
    pub(crate) diagnostic: Option<String>,
    pub(crate) event_key: Option<String>,
}

/// The value of header `name` (case-insensitive) among `headers`.
pub(crate) fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(header, _)| header.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.as_str())
}

pub(crate) use crate::mail::unsubscribe::same;

/// Authenticates and records one webhook call of `provider` (`postmark`, `mailgun` or
/// `generic`) with the request's `headers` (name, value) and raw `body`, at `now` (unix
/// seconds, for signed timestamps). See the [module docs](self).
pub fn handle_provider_webhook(
    store: &mut Store,
    settings: &ProviderSettings,
    provider: &str,
    headers: &[(String, String)],
    body: &[u8],
    now: i64,
) -> Result<Outcome, ProviderError> {
    let parsed = match provider {
        "postmark" => postmark::parse(settings, headers, body)?,
        "mailgun" => mailgun::parse(settings, body, now)?,
        "generic" => standard::parse(settings, headers, body, now)?,
        other => return Err(ProviderError::UnknownProvider(other.to_owned())),
    };
    let notification = match parsed {
        Ok(notification) => notification,
        Err(reason) => {
            tracing::info!(provider, reason = %reason, "provider notification ignored");
            return Ok(Outcome::Ignored { reason });
        }
    };
    let outcome = record_bounce(
        store,
        &settings.bounces,
        &NewBounce {
            outbox_id: None,
            message_id: notification.message_id.as_deref(),
            address: Some(&notification.address),
            kind: notification.kind,
            status: notification.status.as_deref(),
            diagnostic: notification.diagnostic.as_deref(),
            source: provider,
            event_key: notification.event_key.as_deref(),
        },
        now,
    )?;
    Ok(Outcome::Recorded(outcome))
}
