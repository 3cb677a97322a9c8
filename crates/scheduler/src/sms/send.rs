//! [`deliver_sms_due`]: the SMS send loop, the outbox's SMS rows from claim to outcome.
//!
//! The same outbox and the same guarantees as mail ([`crate::outbox::deliver_due`]): every
//! claim a dead sender left is recovered first (never handed over: queued again; handed over:
//! `unknown`, then the `after_crash` policy); due SMS are claimed in a transaction committed
//! before anything is sent, with the phone number checked against the suppression list and
//! the customer's `consent_sms` inside it; each claimed SMS passes the delivery gate (the
//! contact policy counted on the SMS actually sent, in the customer's zone, and the
//! follow-up's freshness on current data: [`crate::delivery_gate`]); its hand-over is
//! recorded ([`Store::mark_handed_over`]) right before the provider gets it, and its outcome
//! right after. One SMS at a time, on the calling thread: at most one SMS is ever handed over
//! without a recorded outcome, so a crash can duplicate at most one (and the folder transport,
//! or a provider that deduplicates by `{id}`, none).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use serde::Serialize;
use tiercare_store::{OutboxEmail, RecoveryPolicy, Store, StoreError};

use super::transport::{SmsError, SmsMessage, SmsTransport};
use crate::config::{AfterCrash, OutboxConfig};
use crate::delivery_gate::{DeliveryGate, admit};
use crate::mail::survey::sign_links;
use crate::outbox::{DeliverError, SendReport, SendSettings, backoff, patiently};
use crate::sms_settings::SmsConfig;

/// What one [`deliver_sms_due`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SmsSendReport {
    /// The provider (`folder`, `http`, `twilio`, `aliyun`).
    pub provider: String,
    /// SMS claimed.
    pub claimed: u64,
    /// Delivered (or found already delivered by the folder).
    pub sent: u64,
    /// Of those, found already delivered (a resend after a crash).
    pub already_delivered: u64,
    /// Deferred (a transient failure), due again later.
    pub deferred: u64,
    /// Failed for good.
    pub failed: u64,
    /// Handed over without an answer.
    pub unknown: u64,
    /// Not sent: the number is on the suppression list.
    pub suppressed: u64,
    /// Not sent: no SMS consent (or the customer was forgotten).
    pub no_consent: u64,
    /// Held by the contact policy (deferred to the next allowed time).
    pub held: u64,
    /// Cancelled by the gate: no longer true.
    pub no_longer_true: u64,
    /// Cancelled by the gate: past `max_delay`.
    pub stale: u64,
    /// Left queued by the rate limits.
    pub rate_limited: u64,
    /// Claims recovered after a crash that had been handed over (each may have arrived).
    pub recovered: u64,
    /// Of those, queued again to be resent.
    pub resent_after_crash: u64,
    /// Claimed but not handed over because `stop` was raised: queued again.
    pub released: u64,
    /// Whether `stop` ended the run early.
    pub stopped: bool,
    /// Wall time in milliseconds.
    pub elapsed_ms: u128,
}

/// How many more SMS the limits allow at `now`, counted from the outbox; `None`: no limit.
fn budget(store: &Store, config: &SmsConfig, now: i64) -> Result<Option<u64>, StoreError> {
    let mut budget: Option<u64> = None;
    for (window, limit) in [
        (60, config.per_minute),
        (3600, config.per_hour),
        (86_400, config.per_day),
    ] {
        if let Some(limit) = limit {
            let sent = store.sms_sent_since(now - window + 1)?;
            let left = u64::from(limit).saturating_sub(sent);
            budget = Some(budget.map_or(left, |b| b.min(left)));
        }
    }
    Ok(budget)
}

/// Delivers the SMS due at `now` through `transport`, once (see the [module](self)).
///
/// **The caller must hold the sender lock**, as for mail. `send` gives the batch size, the
/// backoff and the crash policy (`[mail.outbox]`) and the signer of survey links (an SMS
/// survey's `survey.link` is signed here, as a survey e-mail's links are in the mail loop),
/// `config` the limits and attempts (`[sms]`). `stop` is checked before each SMS: the rest of the claimed batch goes back to
/// `queued` without an attempt counted.
///
/// # Errors
/// The database failed (a busy one is waited out).
pub fn deliver_sms_due(
    store: &mut Store,
    transport: &mut dyn SmsTransport,
    now: i64,
    config: &SmsConfig,
    send: &SendSettings,
    stop: &AtomicBool,
    mut gate: Option<&mut DeliveryGate<'_>>,
) -> Result<SmsSendReport, DeliverError> {
    let outbox = &send.outbox;
    let signer = send.signer.as_ref();
    let started = Instant::now();
    let mut report = SmsSendReport {
        provider: transport.name().to_owned(),
        ..SmsSendReport::default()
    };
    let policy = match outbox.after_crash {
        AfterCrash::ResendOnce => RecoveryPolicy::ResendOnce,
        AfterCrash::Hold => RecoveryPolicy::Hold,
    };
    let recovery = patiently("recover claims", || {
        store.recover_claimed(now, i64::MIN, policy)
    })?;
    report.recovered = recovery.unknown;
    report.resent_after_crash = recovery.requeued;
    if recovery.unknown + recovery.released > 0 {
        tracing::warn!(
            not_handed_over = recovery.released,
            unknown = recovery.unknown,
            resent = recovery.requeued,
            "recovered messages left claimed by a sender that stopped"
        );
    }
    // The gate's own counters, kept apart from the SMS report.
    let mut gate_report = SendReport::default();
    loop {
        if stop.load(Ordering::SeqCst) {
            report.stopped = true;
            break;
        }
        let mut take = outbox.batch_size as usize;
        if let Some(left) = budget(store, config, now)? {
            if left == 0 {
                report.rate_limited = store.sms_due_count(now)?;
                if report.rate_limited > 0 {
                    tracing::info!(
                        left = report.rate_limited,
                        "SMS rate limit reached; the rest waits"
                    );
                }
                break;
            }
            take = take.min(usize::try_from(left).unwrap_or(usize::MAX));
        }
        let claim = patiently("claim due SMS", || store.claim_sms_due(now, take))?;
        report.suppressed += claim.suppressed;
        report.no_consent += claim.no_consent;
        if claim.emails.is_empty() {
            if claim.suppressed + claim.no_consent == 0 {
                break;
            }
            continue;
        }
        report.claimed += claim.emails.len() as u64;
        let mut claimed = claim.emails.into_iter();
        while let Some(sms) = claimed.next() {
            if stop.load(Ordering::SeqCst) {
                report.stopped = true;
                let ids: Vec<i64> = std::iter::once(sms.id)
                    .chain(claimed.by_ref().map(|sms| sms.id))
                    .collect();
                report.released +=
                    patiently("release unsent SMS", || store.release_claims(&ids, now))?;
                break;
            }
            let Some(sms) = admit(gate.as_deref_mut(), store, sms, now, &mut gate_report)? else {
                continue;
            };
            patiently("record a hand-over", || store.mark_handed_over(sms.id, now))?;
            let message = SmsMessage {
                id: sms
                    .message_id
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_owned(),
                to: sms.to_address.clone(),
                // The outbox keeps the survey link's marker, never its token.
                text: sign_links(&sms.body_text, signer, sms.id, now),
                template: sms.template.clone(),
                params: sms
                    .body_html
                    .as_deref()
                    .map(|params| sign_links(params, signer, sms.id, now)),
            };
            let outcome = transport.send(&message);
            record(store, &sms, outcome, now, config, outbox, &mut report)?;
        }
    }
    report.held += gate_report.held;
    report.no_longer_true += gate_report.no_longer_true;
    report.stale += gate_report.stale;
    report.failed += gate_report.failed;
    report.elapsed_ms = started.elapsed().as_millis();
    Ok(report)
}

/// Records the outcome of one SMS.
fn record(
    store: &mut Store,
    sms: &OutboxEmail,
    outcome: Result<super::transport::SmsDelivered, SmsError>,
    now: i64,
    config: &SmsConfig,
    outbox: &OutboxConfig,
    report: &mut SmsSendReport,
) -> Result<(), DeliverError> {
    let id = sms.id;
    match outcome {
        Ok(delivered) => {
            patiently("record a delivery", || {
                store.mark_sent(id, now, &delivered.receipt)
            })?;
            report.sent += 1;
            if delivered.already_delivered {
                report.already_delivered += 1;
            }
            tracing::info!(outbox = id, rule = %sms.rule_id, "SMS sent");
        }
        Err(error @ SmsError::Transient(_)) => {
            let error = error.to_string();
            if sms.attempts >= config.max_attempts {
                let detail = format!("gave up after {} attempts: {error}", sms.attempts);
                patiently("record a failure", || {
                    store.mark_failed(id, now, &detail, false)
                })?;
                report.failed += 1;
                tracing::warn!(
                    outbox = id,
                    attempts = sms.attempts,
                    "SMS failed: out of attempts"
                );
            } else {
                let wait = backoff(outbox, sms.attempts, rand::random::<f64>());
                patiently("record a deferral", || {
                    store.mark_deferred(id, now, now + wait, &error)
                })?;
                report.deferred += 1;
                tracing::info!(outbox = id, retry_in_s = wait, "SMS deferred");
            }
        }
        Err(error @ SmsError::Permanent(_)) => {
            let detail = error.to_string();
            patiently("record a failure", || {
                store.mark_failed(id, now, &detail, false)
            })?;
            report.failed += 1;
            tracing::warn!(outbox = id, "SMS failed (see `tiercare outbox show`)");
        }
        Err(error @ SmsError::Unknown(_)) => {
            let detail = error.to_string();
            patiently("record an unknown outcome", || {
                store.mark_unknown(id, now, &detail)
            })?;
            report.unknown += 1;
            tracing::warn!(outbox = id, "SMS outcome unknown: handed over, no answer");
        }
    }
    Ok(())
}
