//! `tiercare inbound`: one message from the bounce or unsubscribe mailbox, read and acted on.
//!
//! [`handle`] sorts a message into one of:
//!
//! - a **delivery status notification** ([`dsn`], RFC 3464): the email is found through the
//!   VERP address it was sent to ([`crate::mail::verp`]; a forged MAC suppresses nobody),
//!   else through the returned `Message-ID`, and recorded as a hard (status class 5) or soft
//!   (class 4) bounce with [`crate::bounces::record_bounce`];
//! - an **auto-reply** (`Auto-Submitted` other than `no`, `X-Autoreply`, `X-Autorespond`,
//!   `Precedence: auto_reply`, a vacation subject): logged, never an unsubscribe;
//! - an **unsubscribe request** (to `[mail] unsubscribe_mailto` with "unsubscribe" in the
//!   subject or first line): a signed token in it is verified and its address hash
//!   suppressed, otherwise the sender's address is;
//! - anything else: accepted and ignored, with a note in the log.
//!
//! It never answers the sender (no bounce loop) and never logs an address or a server's
//! words above debug.

pub mod dsn;

use mail_parser::{Message, MessageParser};
use serde::Serialize;
use tiercare_store::{BounceKind, NewBounce, Store, StoreError, SuppressionReason};

use crate::bounces::record_bounce;
use crate::config::MailConfig;
use crate::mail::message::parse_address;
use crate::mail::{MailError, TokenSigner, Verp, VerpAddress};

/// The largest message read; larger ones are accepted and ignored (DSNs and unsubscribe
/// requests are small).
pub const MAX_MESSAGE: usize = 10 * 1024 * 1024;

/// What [`handle`] needs from `[mail]`: the VERP addresses, the token signer and the
/// unsubscribe address.
#[derive(Debug)]
pub struct InboundSettings {
    /// Verifies VERP addresses (`None` without `bounce_address`).
    pub verp: Option<Verp>,
    /// Verifies unsubscribe tokens (`None` without `unsubscribe_url`).
    pub signer: Option<TokenSigner>,
    /// The `mailto:` unsubscribe address.
    pub unsubscribe_mailto: String,
    /// The bounce policy.
    pub bounces: crate::bounces::BounceConfig,
}

impl InboundSettings {
    /// The settings of `[mail]`, with the workspace secret read through `env`.
    pub fn from_config(
        mail: &MailConfig,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<InboundSettings, MailError> {
        // The sender's own settings, without the DKIM key: reading bounces never needs it (a
        // key problem must not make every bounce wait).
        let unsubscribe_mailto = match &mail.unsubscribe_mailto {
            Some(address) => parse_address(address.trim())?.to_string(),
            None => crate::outbox::parse_mailbox(&mail.from)?.email,
        };
        let signer = match &mail.unsubscribe_url {
            Some(_) => Some(TokenSigner::from_env(
                &mail.unsubscribe_secret_env,
                &mail.unsubscribe_secret_previous_env,
                env,
            )?),
            None => None,
        };
        Ok(InboundSettings {
            verp: Verp::from_config(mail, env)?,
            signer,
            unsubscribe_mailto,
            bounces: mail.bounces.clone(),
        })
    }
}

/// What [`handle`] did with a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum InboundOutcome {
    /// A DSN for one of our emails, recorded.
    Bounce {
        /// The email.
        outbox_id: Option<i64>,
        /// Hard or soft.
        bounce: BounceKind,
        /// The RFC 3463 status.
        status: Option<String>,
        /// The reason the address was suppressed now, if it was.
        suppressed: Option<SuppressionReason>,
        /// The same DSN was recorded before.
        duplicate: bool,
    },
    /// An auto-reply (vacation, out of office): nothing done.
    AutoReply {
        /// The email it answered, when the VERP address says.
        outbox_id: Option<i64>,
    },
    /// An unsubscribe request, applied.
    Unsubscribe {
        /// Whether a signed token named the address (else the sender's address was used).
        by_token: bool,
        /// Whether the address was new on the suppression list.
        added: bool,
    },
    /// Accepted and ignored.
    Ignored {
        /// Why (no personal data).
        reason: String,
    },
}

/// Why a message could not be handled now (the mail system should try again later: exit 75).
#[derive(Debug, thiserror::Error)]
pub enum InboundError {
    /// The database failed (busy, damaged, ...).
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Handles one raw message (see the [module docs](self)). `recipient` is the address it was
/// delivered to, as the mail system says (Postfix's `${original_recipient}`); without it the
/// `X-Original-To`, `Delivered-To`, `Envelope-To` and `To` headers are read.
pub fn handle(
    store: &mut Store,
    settings: &InboundSettings,
    raw: &[u8],
    recipient: Option<&str>,
    now: i64,
) -> Result<InboundOutcome, InboundError> {
    let ignored = |reason: &str| {
        tracing::info!(reason, "inbound message ignored");
        Ok(InboundOutcome::Ignored {
            reason: reason.to_owned(),
        })
    };
    if raw.len() > MAX_MESSAGE {
        return ignored("larger than 10 MiB");
    }
    let Some(message) = MessageParser::default().parse(raw) else {
        return ignored("not an email message (no headers)");
    };
    let recipients = recipients(&message, recipient);
    let verp = settings.verp.as_ref().map_or(VerpAddress::NotOurs, |verp| {
        let mut found = VerpAddress::NotOurs;
        for address in &recipients {
            match verp.parse(address) {
                VerpAddress::Email(id) => return VerpAddress::Email(id),
                VerpAddress::Forged => found = VerpAddress::Forged,
                VerpAddress::NotOurs => {}
            }
        }
        found
    });
    if dsn::is_report(&message) {
        let Some(report) = dsn::parse(&message) else {
            return ignored("a delivery report without recipient fields");
        };
        if !report.is_failure() {
            tracing::info!(action = %report.action, "delivery report that is not a failure: ignored");
            return Ok(InboundOutcome::Ignored {
                reason: format!("delivery report with action {:?}", report.action),
            });
        }
        let outbox_id = match verp {
            VerpAddress::Forged => {
                tracing::warn!(
                    "delivery report to a VERP address whose MAC does not verify: forged or from another workspace; nothing suppressed"
                );
                return Ok(InboundOutcome::Ignored {
                    reason: "forged VERP address".to_owned(),
                });
            }
            VerpAddress::Email(id) => Some(id),
            VerpAddress::NotOurs => None,
        };
        if outbox_id.is_none() && report.original_message_id.is_none() {
            return ignored("a delivery report naming no email of ours");
        }
        let kind = if report.is_hard() {
            BounceKind::Hard
        } else {
            BounceKind::Soft
        };
        let outcome = record_bounce(
            store,
            &settings.bounces,
            &NewBounce {
                outbox_id,
                message_id: report.original_message_id.as_deref(),
                address: None,
                kind,
                status: report.status.as_deref(),
                diagnostic: report.diagnostic.as_deref(),
                source: "dsn",
                event_key: message.message_id(),
            },
            now,
        )?;
        if outcome.outbox_id.is_none() {
            return ignored("a delivery report for an email tiercare did not send");
        }
        return Ok(InboundOutcome::Bounce {
            outbox_id: outcome.outbox_id,
            bounce: kind,
            status: report.status,
            suppressed: outcome.suppressed,
            duplicate: outcome.duplicate,
        });
    }
    if is_auto_reply(&message) {
        let outbox_id = match verp {
            VerpAddress::Email(id) => Some(id),
            _ => None,
        };
        tracing::info!(outbox = ?outbox_id, "auto-reply recorded; nothing suppressed");
        return Ok(InboundOutcome::AutoReply { outbox_id });
    }
    let to_unsubscribe = recipients
        .iter()
        .any(|address| address.eq_ignore_ascii_case(&settings.unsubscribe_mailto));
    if to_unsubscribe && asks_to_unsubscribe(&message) {
        return unsubscribe(store, settings, &message, now);
    }
    if matches!(verp, VerpAddress::Email(_) | VerpAddress::Forged) {
        return ignored("a message to the bounce address that is not a delivery report");
    }
    ignored("neither a delivery report, an auto-reply nor an unsubscribe request")
}

/// Applies an unsubscribe request: the signed token in its subject or body, else its
/// sender's address.
fn unsubscribe(
    store: &mut Store,
    settings: &InboundSettings,
    message: &Message<'_>,
    now: i64,
) -> Result<InboundOutcome, InboundError> {
    let subject = message.subject().unwrap_or_default();
    let body = message.body_text(0).unwrap_or_default();
    if let Some(signer) = &settings.signer {
        let token = subject
            .split_whitespace()
            .chain(body.split_whitespace())
            .find(|word| signer.verify_at(word, now).is_some());
        if let Some(token) = token {
            // The one door every unsubscription goes through (the web's too).
            let added = matches!(
                crate::preferences::unsubscribe_with_token(
                    store,
                    signer,
                    token,
                    "mailto:token",
                    now
                )?,
                crate::preferences::TokenOutcome::Unsubscribed { new: true }
            );
            tracing::info!(added, "unsubscribe request by token applied");
            return Ok(InboundOutcome::Unsubscribe {
                by_token: true,
                added,
            });
        }
    }
    // An empty envelope sender (`<>`) marks an automatic message: never an unsubscribe.
    if message
        .return_address()
        .is_some_and(|sender| sender.trim().is_empty())
    {
        tracing::info!("unsubscribe-like message with a null sender: ignored");
        return Ok(InboundOutcome::Ignored {
            reason: "an unsubscribe request from the null sender".to_owned(),
        });
    }
    let sender = message
        .from()
        .and_then(|from| from.first())
        .and_then(|from| from.address())
        .map(str::trim)
        .filter(|address| parse_address(address).is_ok());
    let Some(sender) = sender else {
        tracing::info!("unsubscribe request without a usable sender address: ignored");
        return Ok(InboundOutcome::Ignored {
            reason: "an unsubscribe request without a valid From address".to_owned(),
        });
    };
    let added = crate::preferences::unsubscribe(
        store,
        crate::preferences::Unsubscriber::Address(sender),
        "mailto",
        now,
    )?;
    tracing::info!(added, "unsubscribe request by sender address applied");
    Ok(InboundOutcome::Unsubscribe {
        by_token: false,
        added,
    })
}

/// The addresses the message was delivered to: `given` (from the mail system) first, then
/// `X-Original-To`, `Delivered-To`, `Envelope-To` and `To`, without angle brackets.
fn recipients(message: &Message<'_>, given: Option<&str>) -> Vec<String> {
    let mut out: Vec<String> = given.map(str::to_owned).into_iter().collect();
    for name in ["X-Original-To", "Delivered-To", "Envelope-To"] {
        for (header, value) in message.headers_raw() {
            if header.eq_ignore_ascii_case(name) {
                out.push(value.to_owned());
            }
        }
    }
    if let Some(to) = message.to() {
        out.extend(to.iter().filter_map(|a| a.address()).map(str::to_owned));
    }
    out.into_iter()
        .map(|a| {
            a.trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_owned()
        })
        .filter(|a| !a.is_empty())
        .collect()
}

/// RFC 3834 and the common non-standard marks of automatic replies.
pub fn is_auto_reply(message: &Message<'_>) -> bool {
    let header = |name: &str| {
        message
            .headers_raw()
            .find(|(header, _)| header.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.trim().to_ascii_lowercase())
    };
    if header("Auto-Submitted").is_some_and(|value| !value.starts_with("no")) {
        return true;
    }
    if header("X-Autoreply").is_some()
        || header("X-Autorespond").is_some()
        || header("X-Auto-Response-Suppress").is_some_and(|v| v.contains("all"))
    {
        return true;
    }
    if header("Precedence").is_some_and(|value| value == "auto_reply") {
        return true;
    }
    let subject = message.subject().unwrap_or_default().to_lowercase();
    [
        "auto:",
        "autoreply",
        "auto-reply",
        "auto reply",
        "automatic reply",
        "out of office",
        "out of the office",
        "vacation",
        "away from the office",
        "abwesenheit",
        "réponse automatique",
        "absence",
    ]
    .iter()
    .any(|mark| subject.contains(mark))
}

/// Whether the subject or the first non-empty line of the body says "unsubscribe".
fn asks_to_unsubscribe(message: &Message<'_>) -> bool {
    let says = |text: &str| text.to_ascii_lowercase().contains("unsubscribe");
    if message.subject().is_some_and(says) {
        return true;
    }
    message
        .body_text(0)
        .and_then(|body| body.lines().find(|l| !l.trim().is_empty()).map(says))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> Message<'_> {
        MessageParser::default().parse(text.as_bytes()).unwrap()
    }

    #[test]
    fn auto_replies_are_recognised_and_ordinary_mail_is_not() {
        for text in [
            "Auto-Submitted: auto-replied\r\nSubject: Re: hello\r\n\r\nx",
            "X-Autoreply: yes\r\nSubject: Re: hello\r\n\r\nx",
            "Precedence: auto_reply\r\nSubject: Re: hello\r\n\r\nx",
            "Subject: Out of Office: back Monday\r\n\r\nx",
            "Subject: Automatic reply: hello\r\n\r\nx",
        ] {
            assert!(is_auto_reply(&parsed(text)), "{text}");
        }
        for text in [
            "Auto-Submitted: no\r\nSubject: unsubscribe\r\n\r\nx",
            "Subject: unsubscribe\r\n\r\nplease",
        ] {
            assert!(!is_auto_reply(&parsed(text)), "{text}");
        }
    }
}
