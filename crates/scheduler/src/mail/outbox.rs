//! The outbox's scheduler side: rendering care emails when they are decided ([`RenderEmail`],
//! [`compose`]) and delivering them ([`deliver_due`]).
//!
//! An email is rendered when its follow-up is recorded ([`crate::plan::record_due`]), and
//! stored rendered in the outbox in the same transaction as the decision. When it is sent, the
//! delivery gate ([`crate::delivery_gate`]) checks it again on current data and renders it
//! again (same Message-ID); the outbox keeps what was sent.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use chrono::DateTime;
use serde::Serialize;
use tiercare_store::{
    EmailRecipient, NewEmail, OutboxEmail, RecipientKind, RecoveryPolicy, Store, StoreError,
    address_domain,
};

use crate::config::{AfterCrash, LimitsConfig, MailConfig, OutboxConfig, Transport};
use crate::delivery_gate::{DeliveryGate, admit};
use crate::mail::message::parse_address;
use crate::mail::pacing::{self, DomainLimits, Pacing};
use crate::mail::reputation::{self, ReputationConfig, WarmupConfig};
use crate::mail::{
    Address, BuiltMessage, Delivered, DkimSigner, FolderTransport, ListHeaders, ListUnsubscribe,
    MailError, MailTransport, OutgoingEmail, SendError, SmtpMailer, SmtpTransportConfig,
    TokenSigner, build_with,
};

/// The right-hand side of a Message-ID when the sender's domain is not known (a renderer
/// that does not say it). `.invalid` is reserved (RFC 2606), so the ids can never collide with
/// another host's; the left-hand side is random.
pub const MESSAGE_ID_DOMAIN: &str = "tiercare.invalid";

/// An email's rendered parts, as a [`RenderEmail`] returns them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedEmail {
    /// The subject, one line (control characters become spaces when the message is built).
    pub subject: String,
    /// The plain-text body (customer data literal).
    pub text: String,
    /// The HTML body, customer data already HTML-escaped; `None` for a text-only email.
    pub html: Option<String>,
}

/// Why an email could not be rendered: the follow-up is recorded as skipped with this reason,
/// and nothing is queued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("template {template}: {message}")]
pub struct RenderError {
    /// The template's name.
    pub template: String,
    /// What went wrong and, where possible, what to do (a missing template file, an undefined
    /// variable, ...).
    pub message: String,
}

/// Renders a care email from a template for one customer: implemented by the template layer
/// (minijinja, `templates/`), and by small deterministic renderers in tests.
///
/// Called inside the follow-up ledger's write transaction, once per new email follow-up, so it
/// must not write to the database; it may read it through its own connection.
pub trait RenderEmail {
    /// Renders `template` for the customer with external id `customer_external_id`, as of
    /// `at` (unix seconds UTC: the time the email is decided, for "days since" and the like).
    fn render(
        &self,
        template: &str,
        customer_external_id: &str,
        at: i64,
    ) -> Result<RenderedEmail, RenderError>;

    /// Renders the survey e-mail `template` asking `survey` (its context has `survey.*`). The
    /// default, for renderers without surveys (tests), renders it as any e-mail.
    fn render_survey(
        &self,
        template: &str,
        customer_external_id: &str,
        at: i64,
        survey: &tiercare_store::Survey,
    ) -> Result<RenderedEmail, RenderError> {
        let _ = survey;
        self.render(template, customer_external_id, at)
    }

    /// Renders `template` as [`RenderEmail::render`] does, with `coupon`, the code the e-mail
    /// carries, in the context (`coupon.code`). The default, for renderers without a context
    /// (tests), ignores the coupon.
    fn render_with_coupon(
        &self,
        template: &str,
        customer_external_id: &str,
        at: i64,
        coupon: Option<&tiercare_store::IssuedCoupon>,
    ) -> Result<RenderedEmail, RenderError> {
        let _ = coupon;
        self.render(template, customer_external_id, at)
    }

    /// The domain of the Message-IDs of the emails it renders (the sender's, [`sender_domain`]);
    /// `None` for [`MESSAGE_ID_DOMAIN`].
    fn message_id_domain(&self) -> Option<&str> {
        None
    }

    /// Renders a rule's one-line text field (a task title) for the customer, with the
    /// templates' context. The default, for renderers without one (tests), returns it as
    /// written.
    fn render_text(
        &self,
        text: &str,
        customer_external_id: &str,
        at: i64,
    ) -> Result<String, RenderError> {
        let _ = (customer_external_id, at);
        Ok(text.to_owned())
    }

    /// Renders SMS template `template` (`NAME.sms.j2`) for the customer: the text. The
    /// default, for renderers without SMS templates (tests), refuses.
    fn render_sms(
        &self,
        template: &str,
        customer_external_id: &str,
        at: i64,
    ) -> Result<String, RenderError> {
        let _ = (customer_external_id, at);
        Err(RenderError {
            template: template.to_owned(),
            message: "this renderer has no SMS templates".to_owned(),
        })
    }

    /// Renders the SMS survey `template` (`NAME.sms.j2`) asking `survey`: its context has
    /// `survey.link`, the one link to the page that asks for the score. The default, for
    /// renderers without surveys (tests), renders it as any SMS.
    fn render_sms_survey(
        &self,
        template: &str,
        customer_external_id: &str,
        at: i64,
        survey: &tiercare_store::Survey,
    ) -> Result<String, RenderError> {
        let _ = survey;
        self.render_sms(template, customer_external_id, at)
    }

    /// Renders the SMS provider's parameters of `template` for the customer (Aliyun's
    /// `TemplateParam`, a JSON object), or `None` when the provider takes the text alone
    /// (the default).
    fn render_sms_params(
        &self,
        template: &str,
        customer_external_id: &str,
        at: i64,
    ) -> Result<Option<String>, RenderError> {
        let _ = (template, customer_external_id, at);
        Ok(None)
    }
}

impl fmt::Debug for dyn RenderEmail + '_ {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("dyn RenderEmail")
    }
}

/// Makes a new Message-ID: `<tc.{decided_at}.{16 random hex digits}@{domain}>`.
pub fn new_message_id(decided_at: i64, domain: &str) -> String {
    format!("<tc.{decided_at}.{:016x}@{domain}>", rand::random::<u64>())
}

/// The domain of `[mail] from` (`care@shop.example` → `shop.example`), the right-hand side of
/// the Message-IDs: receivers and spam filters expect the sender's own domain there. `None`
/// when `from` is not a usable address.
pub fn sender_domain(mail: &MailConfig) -> Option<String> {
    let from = parse_mailbox(&mail.from).ok()?;
    let (_, domain) = from.email.rsplit_once('@')?;
    (!domain.is_empty()).then(|| domain.to_ascii_lowercase())
}

/// Composes the outbox email of a new email follow-up, as the ledger asks for it
/// ([`tiercare_store::FollowUpSession::record_with_email`]): checks the recipient's address,
/// renders the template with `renderer` at `at`, and fixes the Message-ID. The `Err` is the
/// reason the follow-up is recorded as skipped (it names no address: reasons are shown and
/// logged).
pub fn compose(
    renderer: &dyn RenderEmail,
    to: &EmailRecipient,
    at: i64,
) -> Result<NewEmail, String> {
    let whose = match to.kind {
        RecipientKind::Customer => "the customer",
        RecipientKind::Owner => "the customer's owner",
    };
    let Some(address) = to.address.as_deref().map(str::trim) else {
        return Err(format!("{whose} has no email address"));
    };
    if let Err(err) = parse_address(address) {
        let reason = match err {
            crate::mail::MailError::InvalidAddress { reason, .. } => reason,
            other => other.to_string(),
        };
        return Err(format!("{whose}'s email address is not valid: {reason}"));
    }
    let rendered = match &to.survey {
        Some(survey) => renderer.render_survey(&to.template, &to.customer_id, at, survey),
        None => renderer.render_with_coupon(&to.template, &to.customer_id, at, to.coupon.as_ref()),
    }
    .map_err(|err| err.to_string())?;
    Ok(NewEmail {
        message_id: new_message_id(
            at,
            renderer.message_id_domain().unwrap_or(MESSAGE_ID_DOMAIN),
        ),
        to_address: address.to_owned(),
        subject: rendered.subject,
        text: rendered.text,
        html: rendered.html,
    })
}

/// What [`deliver_due`] needs besides the store, the transports and the clock: who sends, how
/// recipients unsubscribe, the limits and the retry policy.
#[derive(Debug)]
pub struct SendSettings {
    /// The sender of every email.
    pub from: Address,
    /// The address of the `mailto:` unsubscribe link.
    pub unsubscribe_mailto: String,
    /// The base of the HTTPS one-click unsubscribe link, if any (`[http] public_url` +
    /// `/unsubscribe` when set, else `mail.unsubscribe_url`): exactly what `tiercare serve`
    /// answers.
    pub unsubscribe_url: Option<String>,
    /// Signs the unsubscribe tokens (set when `unsubscribe_url` is, or the secret is).
    pub signer: Option<TokenSigner>,
    /// Sending limits per minute, hour and day.
    pub limits: LimitsConfig,
    /// Batches, retries and crash recovery.
    pub outbox: OutboxConfig,
    /// Signs every message's final bytes (`[mail.dkim]`), if set.
    pub dkim: Option<DkimSigner>,
    /// The `List-Id` of care emails (`care.shop.example`).
    pub list_id: Option<String>,
    /// Limits per receiving domain, over the defaults ([`crate::mail::pacing`]).
    pub domains: BTreeMap<String, DomainLimits>,
    /// When sending pauses itself ([`crate::mail::reputation`]).
    pub reputation: ReputationConfig,
    /// The warm-up schedule, if any.
    pub warmup: Option<WarmupConfig>,
    /// VERP envelope senders (set when `[mail] bounce_address` is): each email's envelope
    /// sender names it, so its bounces do.
    pub verp: Option<crate::mail::Verp>,
}

impl SendSettings {
    /// The settings of `[mail]`, with the unsubscribe secret read through `env` (pass
    /// `&|name| std::env::var(name).ok()`) when `unsubscribe_url` is set, and the DKIM key
    /// read and checked (a file relative to the workspace `root`): a bad key is an error here,
    /// when the sender starts.
    pub fn from_config(
        root: &Path,
        mail: &MailConfig,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<SendSettings, MailError> {
        let from = parse_mailbox(&mail.from)?;
        let unsubscribe_mailto = match &mail.unsubscribe_mailto {
            Some(address) => parse_address(address.trim())?.to_string(),
            None => from.email.clone(),
        };
        let signer = match &mail.unsubscribe_url {
            Some(_) => Some(TokenSigner::from_env(
                &mail.unsubscribe_secret_env,
                &mail.unsubscribe_secret_previous_env,
                env,
            )?),
            None => TokenSigner::from_env_if_set(
                &mail.unsubscribe_secret_env,
                &mail.unsubscribe_secret_previous_env,
                env,
            )?,
        };
        let domain = sender_domain(mail);
        let dkim = match &mail.dkim {
            Some(dkim) => Some(DkimSigner::from_config(dkim, root, domain.as_deref(), env)?),
            None => None,
        };
        let list_id = match &mail.list_id {
            Some(id) => Some(crate::mail::message::list_id(id)?.to_owned()),
            None => domain.map(|domain| format!("care.{domain}")),
        };
        Ok(SendSettings {
            from,
            unsubscribe_mailto,
            unsubscribe_url: mail.unsubscribe_url.clone(),
            signer,
            limits: mail.limits,
            outbox: mail.outbox,
            dkim,
            list_id,
            domains: mail.domains.clone(),
            reputation: mail.reputation,
            warmup: mail.warmup.clone(),
            verp: crate::mail::Verp::from_config(mail, env)?,
        })
    }
}

impl SendSettings {
    /// The settings of a workspace: `[mail]`, with the one-click link served by `tiercare
    /// serve` when `[http] public_url` is set (which then needs the secret).
    pub fn for_config(
        root: &Path,
        config: &crate::config::Config,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<SendSettings, MailError> {
        let mut settings = SendSettings::from_config(root, &config.mail, env)?;
        if let Some(url) = config.http.as_ref().and_then(|http| http.unsubscribe_url()) {
            if settings.signer.is_none() {
                settings.signer = Some(TokenSigner::from_env(
                    &config.mail.unsubscribe_secret_env,
                    &config.mail.unsubscribe_secret_previous_env,
                    env,
                )?);
            }
            settings.unsubscribe_url = Some(url);
        }
        Ok(settings)
    }
}

/// Parses `Name <address>` or a bare address.
pub(crate) fn parse_mailbox(text: &str) -> Result<Address, MailError> {
    let mailbox: lettre::message::Mailbox =
        text.trim()
            .parse()
            .map_err(
                |err: lettre::address::AddressError| MailError::InvalidAddress {
                    address: text.to_owned(),
                    reason: format!("{err} (mail.from must look like \"Name <care@example.com>\")"),
                },
            )?;
    Ok(Address {
        name: mailbox.name,
        email: mailbox.email.to_string(),
    })
}

/// What [`deliver_due`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SendReport {
    /// The transport used (`folder`, `smtp`).
    pub transport: String,
    /// Claims left behind by a stopped sender, marked unknown.
    pub recovered: u64,
    /// Of those, queued again to be resent once with the same Message-ID.
    pub resent_after_crash: u64,
    /// Emails claimed for sending.
    pub claimed: u64,
    /// Delivered (accepted by the server, or written to the folder).
    pub sent: u64,
    /// Of those, found already delivered by the transport (a resend after a crash).
    pub already_delivered: u64,
    /// Deferred after a transient failure (4xx, connection refused), to be retried.
    pub deferred: u64,
    /// Failed for good: a 5xx, an unusable message, or out of attempts.
    pub failed: u64,
    /// Of those, refused addresses now on the suppression list.
    pub hard_bounces: u64,
    /// Of those, with an invalid address (never sent).
    pub invalid_address: u64,
    /// Handed over with no final answer (a timeout after the content): held as unknown.
    pub unknown: u64,
    /// Not sent: the address is on the suppression list.
    pub suppressed: u64,
    /// Not sent: the customer no longer consents to email (or was forgotten).
    pub no_consent: u64,
    /// Emails due but left queued because a rate limit was reached.
    pub rate_limited: u64,
    /// Held by the contact policy at delivery (send window, minimum gap, caps): deferred to
    /// the next allowed time, the attempt not counted (the delivery gate).
    pub held: u64,
    /// Cancelled at delivery as stale: past the rule's `max_delay` (the delivery gate).
    pub stale: u64,
    /// Cancelled at delivery because the follow-up no longer holds on current data (the
    /// delivery gate).
    pub no_longer_true: u64,
    /// Emails claimed but not sent because the stop flag was raised, queued again (their
    /// attempt not counted).
    pub released: u64,
    /// The stop flag ended the call before everything due was sent; the rest stays queued.
    pub stopped: bool,
    /// Emails due but left queued for their receiving domain: paused after a "slow down"
    /// answer (421, 4.7.x), or at its `[mail.domains]` limit.
    pub paced: u64,
    /// Receiving domains paused during this call, with the reply codes.
    pub domains_paused: Vec<String>,
    /// Why sending is paused by the reputation guard (with the figures), if it is: nothing
    /// more was claimed.
    pub paused: Option<String>,
    /// Wall time in milliseconds.
    pub elapsed_ms: u128,
}

/// Why [`deliver_due`] stopped early (never a lock wait: it waits those out). Emails it had
/// claimed and not handed over are queued again; one handed over whose outcome could not be
/// recorded stays claimed and is recovered by the crash policy on the next run.
#[derive(Debug, thiserror::Error)]
pub enum DeliverError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The mail settings are unusable.
    #[error(transparent)]
    Mail(#[from] MailError),
}

/// How many more emails the limits allow at `now`, counting what the outbox sent in each
/// window (across processes); `None` for no limit.
fn budget(
    store: &Store,
    limits: &LimitsConfig,
    warmup: Option<&WarmupConfig>,
    now: i64,
) -> Result<Option<u64>, StoreError> {
    let mut budget: Option<u64> = None;
    let warmup = warmup.and_then(|warmup| reputation::warmup_cap(warmup, now));
    for (window, limit) in [
        (60, limits.per_minute),
        (3600, limits.per_hour),
        (86_400, limits.per_day),
        (86_400, warmup),
    ] {
        if let Some(limit) = limit {
            let sent = store.sent_since(now - window + 1)?;
            let left = u64::from(limit).saturating_sub(sent);
            budget = Some(budget.map_or(left, |b| b.min(left)));
        }
    }
    Ok(budget)
}

/// The wait before retry number `attempts` (1 after the first failure): `retry_base_seconds`
/// doubled per attempt, capped at `retry_max_seconds`, then a uniformly random part of it
/// between a half and all ("equal jitter"), so failures at the same moment spread out.
pub fn backoff(outbox: &OutboxConfig, attempts: u32, jitter: f64) -> i64 {
    equal_jitter(
        i64::from(outbox.retry_base_seconds),
        i64::from(outbox.retry_max_seconds),
        attempts,
        jitter,
    )
}

/// Exponential backoff with "equal jitter", for every retry queue (the outbox, outgoing
/// webhooks): `base` seconds doubled per attempt after the first, capped at `max`, then between
/// a half and all of that as `jitter` goes from 0 to 1. At least one second.
pub fn equal_jitter(base: i64, max: i64, attempts: u32, jitter: f64) -> i64 {
    let exponent = attempts.saturating_sub(1).min(30);
    let delay = base.saturating_mul(1_i64 << exponent).min(max);
    let jitter = jitter.clamp(0.0, 1.0);
    // Rounding a value at most `max` seconds: exact in f64.
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_precision_loss,
        reason = "delays are far below 2^52 seconds"
    )]
    let waited = (delay as f64 * (0.5 + jitter / 2.0)).round() as i64;
    waited.max(1)
}

/// Delivers the emails due at `now`, once: recovers every claim a dead sender left behind
/// (never handed over: queued again; handed over: `unknown`, then the `after_crash` policy),
/// then, within the rate limits, claims due emails in batches (committed before sending,
/// suppression and consent re-checked inside the claim), builds each message with its
/// unsubscribe headers and line, records each hand-over ([`Store::mark_handed_over`]) just
/// before giving the message to a transport (one thread per transport, e.g. one SMTP
/// connection each), and records each outcome as it comes: sent, deferred with backoff,
/// failed (a hard bounce suppresses the address) or unknown. So at any moment at most one
/// email per transport is handed over without a recorded outcome: what a crash can duplicate.
///
/// **The caller must hold the sender lock** ([`crate::lock::DaemonLock`], as `tiercare send`
/// and `tiercare run` do): the recovery takes every open claim as a dead sender's.
///
/// A write lock held by another process (`SQLITE_BUSY`) is waited out, however long, with
/// growing pauses: no outcome is ever dropped for a busy database.
///
/// A plain blocking function with the clock passed in: the daemon calls it on each tick, and
/// `tiercare send` once. Emails deferred during the call are due later than `now`, so each
/// email is attempted at most once per call.
///
/// `stop` is checked before each batch and each message: once it is raised no new message is
/// handed to a transport, the messages already handed over are recorded, and the rest of the
/// claimed batch goes back to `queued` without an attempt counted ([`Store::release_claims`]),
/// so a daemon asked to stop returns within one message per transport, whatever the backlog.
pub fn deliver_due(
    store: &mut Store,
    transports: &mut [Box<dyn MailTransport>],
    now: i64,
    settings: &SendSettings,
    stop: &AtomicBool,
) -> Result<SendReport, DeliverError> {
    deliver_due_gated(store, transports, now, settings, stop, None)
}

/// [`deliver_due`] with each claimed email checked by the delivery `gate` right before it is
/// handed to a transport ([`crate::delivery_gate`]: the contact policy and the follow-up's
/// freshness, on current data); `tiercare send` and the daemon pass one.
pub fn deliver_due_gated(
    store: &mut Store,
    transports: &mut [Box<dyn MailTransport>],
    now: i64,
    settings: &SendSettings,
    stop: &AtomicBool,
    mut gate: Option<&mut DeliveryGate<'_>>,
) -> Result<SendReport, DeliverError> {
    let started = Instant::now();
    let Some(first) = transports.first() else {
        return Err(MailError::InvalidConfig("no mail transport to send with".to_owned()).into());
    };
    let mut report = SendReport {
        transport: first.name().to_owned(),
        ..SendReport::default()
    };
    let policy = match settings.outbox.after_crash {
        AfterCrash::ResendOnce => RecoveryPolicy::ResendOnce,
        AfterCrash::Hold => RecoveryPolicy::Hold,
    };
    // The caller holds the sender lock, so every claim still open was left by a sender that
    // died: recover them all now (nothing to wait for).
    let recovery = patiently("recover claims", || {
        store.recover_claimed(now, i64::MIN, policy)
    })?;
    report.recovered = recovery.unknown;
    report.resent_after_crash = recovery.requeued;
    report.released += recovery.released;
    if recovery.unknown + recovery.released > 0 {
        tracing::warn!(
            not_handed_over = recovery.released,
            unknown = recovery.unknown,
            resent = recovery.requeued,
            "recovered emails left claimed by a sender that stopped"
        );
    }
    let mut pacing = Pacing::load(store, &settings.domains)?;
    // The guard is judged at the start and again after each batch that bounced: sends alone
    // only lower the rates.
    let mut judged_bounces = None;
    loop {
        if stop.load(Ordering::SeqCst) {
            report.stopped = true;
            break;
        }
        // The reputation guard: too many bounces or complaints lately pause all sending.
        let guard = if judged_bounces == Some(report.hard_bounces) {
            None
        } else {
            judged_bounces = Some(report.hard_bounces);
            Some(reputation::guard(store, &settings.reputation, now)?)
        };
        if let Some((reason, guard)) =
            guard.and_then(|guard| guard.paused.clone().map(|reason| (reason, guard)))
        {
            tracing::warn!(
                sends = guard.figures.sends,
                hard_bounces = guard.figures.hard_bounces,
                complaints = guard.figures.complaints,
                left = store.due_count(now)?,
                "sending paused by the reputation guard (see `tiercare status`)"
            );
            report.paused = Some(reason);
            break;
        }
        let mut take = settings.outbox.batch_size as usize;
        if let Some(left) = budget(store, &settings.limits, settings.warmup.as_ref(), now)? {
            if left == 0 {
                report.rate_limited = store.due_count(now)?;
                if report.rate_limited > 0 {
                    tracing::info!(
                        left = report.rate_limited,
                        "rate limit reached; the rest waits"
                    );
                }
                break;
            }
            take = take.min(usize::try_from(left).unwrap_or(usize::MAX));
        }
        // Receiving domains paused or at their limit stay queued; the others flow.
        let (held, room) = pacing.hold(store, now)?;
        if let Some(room) = room {
            take = take.min(usize::try_from(room).unwrap_or(usize::MAX));
        }
        let claim = patiently("claim due emails", || {
            store.claim_due_except(now, take, &held)
        })?;
        report.suppressed += claim.suppressed;
        report.no_consent += claim.no_consent;
        if claim.emails.is_empty() {
            if claim.suppressed + claim.no_consent == 0 {
                if !held.is_empty() {
                    report.paced = store.due_count(now)?;
                    if report.paced > 0 {
                        tracing::info!(
                            left = report.paced,
                            domains = held.len(),
                            "receiving domains paused or at their limit; their emails wait"
                        );
                    }
                }
                break;
            }
            continue;
        }
        report.claimed += claim.emails.len() as u64;
        send_batch(
            store,
            transports,
            claim.emails,
            now,
            settings,
            stop,
            &mut report,
            gate.as_deref_mut(),
            &mut pacing,
        )?;
    }
    if report.stopped {
        tracing::info!(
            released = report.released,
            left = store.due_count(now)?,
            "stopped before the backlog was sent; the rest stays queued"
        );
    }
    report.elapsed_ms = started.elapsed().as_millis();
    Ok(report)
}

/// Builds and sends one claimed batch, recording each outcome as it arrives; once `stop` is
/// raised, the messages not yet handed to a transport are released (queued again).
#[expect(
    clippy::too_many_arguments,
    reason = "the send loop's state, passed down"
)]
fn send_batch(
    store: &mut Store,
    transports: &mut [Box<dyn MailTransport>],
    emails: Vec<OutboxEmail>,
    now: i64,
    settings: &SendSettings,
    stop: &AtomicBool,
    report: &mut SendReport,
    mut gate: Option<&mut DeliveryGate<'_>>,
    pacing: &mut Pacing,
) -> Result<(), DeliverError> {
    let mut jobs = Vec::with_capacity(emails.len());
    for email in emails {
        // The delivery gate (crate::delivery_gate), right before the hand-over: the contact
        // policy and the follow-up checked again on current data; the text rendered again.
        let Some(email) = admit(gate.as_deref_mut(), store, email, now, report)? else {
            continue;
        };
        match build_with(
            &outgoing(&email, settings, now),
            &list_headers(settings, email.recipient_kind),
        )
        .and_then(|mut built| {
            if let Some(verp) = &settings.verp {
                built.set_envelope_sender(&verp.address(email.id))?;
            }
            // Signed last, over the final bytes: every header is set.
            if let Some(dkim) = &settings.dkim {
                built.sign(dkim, now)?;
            }
            Ok(built)
        }) {
            Ok(built) => jobs.push((email, built)),
            Err(MailError::InvalidAddress { reason, .. }) => {
                tracing::warn!(outbox = email.id, "invalid address: not sent");
                let detail = format!("invalid email address: {reason}; not sent");
                patiently("record a failure", || {
                    store.mark_failed(email.id, now, &detail, false)
                })?;
                report.failed += 1;
                report.invalid_address += 1;
            }
            Err(err) => {
                tracing::warn!(outbox = email.id, error = %err, "cannot build the message");
                let detail = err.to_string();
                patiently("record a failure", || {
                    store.mark_failed(email.id, now, &detail, false)
                })?;
                report.failed += 1;
            }
        }
    }
    // One worker thread per transport (e.g. one SMTP connection each). This thread alone
    // writes to the store: it hands a job to an idle worker only after recording the hand-over,
    // and records each outcome as it comes back, so at most one email per transport is ever
    // handed over without a recorded outcome.
    // Each job with its receiving domain, for the per-domain concurrency and pauses.
    let mut jobs: VecDeque<(OutboxEmail, BuiltMessage, String)> = jobs
        .into_iter()
        .map(|(email, built)| {
            let domain = address_domain(&email.to_address);
            (email, built, domain)
        })
        .collect();
    let result = thread::scope(|scope| {
        let (results, outcomes) = mpsc::channel();
        let mut workers = Vec::with_capacity(transports.len());
        for (index, transport) in transports.iter_mut().enumerate() {
            let (give, take) = mpsc::channel::<(OutboxEmail, BuiltMessage)>();
            let results = results.clone();
            scope.spawn(move || {
                for (email, built) in take {
                    let outcome = transport.send(&built);
                    if results.send((index, email, outcome)).is_err() {
                        break;
                    }
                }
            });
            workers.push(give);
        }
        drop(results);
        let mut idle: Vec<usize> = (0..workers.len()).rev().collect();
        let mut busy = 0_usize;
        let mut in_flight: BTreeMap<String, usize> = BTreeMap::new();
        let mut result = Ok(());
        loop {
            while result.is_ok() && !stop.load(Ordering::SeqCst) {
                let Some(worker) = idle.pop() else { break };
                // The first job whose domain is not paused and has room under its concurrency.
                let next = jobs.iter().position(|(_, _, domain)| {
                    !pacing.paused(domain, now)
                        && pacing
                            .concurrency(domain)
                            .is_none_or(|limit| in_flight.get(domain).copied().unwrap_or(0) < limit)
                });
                let Some((email, built, domain)) = next.and_then(|at| jobs.remove(at)) else {
                    idle.push(worker);
                    break;
                };
                // The one point where a claimed email becomes handed over (the delivery gate
                // admitted it when the batch was built, above).
                if let Err(err) = patiently("record a hand-over", || {
                    store.mark_handed_over(email.id, now)
                }) {
                    // Not handed over: it stays claimed and a later recovery queues it again.
                    result = Err(err.into());
                    jobs.push_front((email, built, domain));
                    idle.push(worker);
                    break;
                }
                if workers[worker].send((email, built)).is_err() {
                    break;
                }
                *in_flight.entry(domain).or_default() += 1;
                busy += 1;
            }
            if busy == 0 {
                break;
            }
            let Ok((worker, email, outcome)) = outcomes.recv() else {
                break;
            };
            busy -= 1;
            idle.push(worker);
            let domain = address_domain(&email.to_address);
            if let Some(n) = in_flight.get_mut(&domain) {
                *n = n.saturating_sub(1);
            }
            // A "slow down" from the receiving domain pauses that domain only (persisted, so a
            // restart honours it); a delivery forgets its earlier strikes.
            let mut pace_error = None;
            match &outcome {
                Err(error) => {
                    if let Some(reason) = pacing::slow_down(error) {
                        match patiently("pause a receiving domain", || {
                            pacing.pause(store, &domain, now, &reason)
                        }) {
                            Ok(pause) => {
                                tracing::warn!(
                                    outbox = email.id,
                                    reply = %pause.reason,
                                    strikes = pause.strikes,
                                    pause_s = pause.paused_until - now,
                                    "a receiving domain asked to slow down: its emails wait, \
                                     the others go on"
                                );
                                report.domains_paused.push(pacing::describe(&pause));
                            }
                            Err(err) => pace_error = Some(err),
                        }
                    }
                }
                Ok(_) if pacing.has_strikes(&domain) => {
                    if let Err(err) = patiently("clear a domain's pause", || {
                        pacing.delivered(store, &domain)
                    }) {
                        pace_error = Some(err);
                    }
                }
                Ok(_) => {}
            }
            // Outcomes are recorded even after a failure: nothing delivered stays claimed.
            let recorded = record(store, &email, outcome, now, settings, report);
            if result.is_ok() {
                result = recorded;
            }
            if let Some(err) = pace_error
                && result.is_ok()
            {
                result = Err(err.into());
            }
        }
        drop(workers);
        result
    });
    // Claims never handed over go back to the queue, also after a failure: those of a paused
    // domain count as paced, the others were stopped.
    let (paced, stopped): (Vec<_>, Vec<_>) = jobs
        .into_iter()
        .partition(|(_, _, domain)| pacing.paused(domain, now));
    if !paced.is_empty() {
        let ids: Vec<i64> = paced.iter().map(|(email, _, _)| email.id).collect();
        report.paced += patiently("queue a paused domain's emails again", || {
            store.release_claims_because(
                &ids,
                now,
                "released unsent: the receiving domain asked to slow down (paused)",
            )
        })?;
    }
    let released = release(
        store,
        stopped.into_iter().map(|(email, built, _)| (email, built)),
        now,
        report,
    );
    result?;
    released
}

/// Runs the store write `write` until it is done, waiting out another process's write lock
/// (`SQLITE_BUSY` after the busy timeout) with growing pauses, however long it lasts: an
/// outcome not recorded would leave a delivered email claimed, to be sent again. Other errors
/// are returned at once.
pub(crate) fn patiently<T>(
    what: &str,
    mut write: impl FnMut() -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let started = Instant::now();
    let mut pause = Duration::from_millis(20);
    let mut warned = false;
    loop {
        match write() {
            Err(StoreError::Locked { .. }) => {
                if !warned {
                    tracing::warn!(
                        what,
                        "the database is locked by another process; waiting to record"
                    );
                    warned = true;
                }
                thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_secs(1));
            }
            outcome => {
                if warned {
                    tracing::info!(
                        what,
                        waited_ms =
                            u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                        "the database lock was released; recorded"
                    );
                }
                return outcome;
            }
        }
    }
}

/// Queues again the claimed `jobs` that were never handed to a transport (the sender is
/// stopping), without counting an attempt.
fn release(
    store: &mut Store,
    jobs: impl Iterator<Item = (OutboxEmail, BuiltMessage)>,
    now: i64,
    report: &mut SendReport,
) -> Result<(), DeliverError> {
    let ids: Vec<i64> = jobs.map(|(email, _)| email.id).collect();
    if !ids.is_empty() {
        report.released += patiently("release unsent claims", || store.release_claims(&ids, now))?;
    }
    Ok(())
}

/// Records the outcome of sending `email`.
fn record(
    store: &mut Store,
    email: &OutboxEmail,
    outcome: Result<Delivered, SendError>,
    now: i64,
    settings: &SendSettings,
    report: &mut SendReport,
) -> Result<(), DeliverError> {
    let id = email.id;
    match outcome {
        Ok(delivered) => {
            patiently("record a delivery", || {
                store.mark_sent(id, now, &delivered.receipt)
            })?;
            report.sent += 1;
            if delivered.already_delivered {
                report.already_delivered += 1;
            }
            tracing::info!(outbox = id, rule = %email.rule_id, "sent");
        }
        Err(SendError::Transient { code, message }) => {
            let error = SendError::Transient { code, message }.to_string();
            if email.attempts >= settings.outbox.max_attempts {
                let detail = format!("gave up after {} attempts: {error}", email.attempts);
                patiently("record a failure", || {
                    store.mark_failed(id, now, &detail, false)
                })?;
                report.failed += 1;
                tracing::warn!(outbox = id, attempts = email.attempts, code = ?code, "failed: out of attempts");
                tracing::debug!(outbox = id, error = %error, "failed: out of attempts");
            } else {
                let wait = backoff(&settings.outbox, email.attempts, rand::random::<f64>());
                patiently("record a deferral", || {
                    store.mark_deferred(id, now, now + wait, &error)
                })?;
                report.deferred += 1;
                tracing::info!(outbox = id, retry_in_s = wait, code = ?code, "deferred");
                tracing::debug!(outbox = id, error = %error, "deferred");
            }
        }
        Err(err @ SendError::Permanent { hard_bounce, .. }) => {
            let detail = err.to_string();
            if hard_bounce {
                // Recorded as a bounce (the `bounces` table) with the failure, and suppressed.
                let status = crate::mail::transport::enhanced_status(&detail)
                    .map(str::to_owned)
                    .or_else(|| err.code().map(|code| code.to_string()));
                patiently("record a hard bounce", || {
                    store.mark_hard_bounced(id, now, &detail, status.as_deref())
                })?;
            } else {
                patiently("record a failure", || {
                    store.mark_failed(id, now, &detail, false)
                })?;
            }
            report.failed += 1;
            if hard_bounce {
                report.hard_bounces += 1;
            }
            // The server's reply may quote the address: the outbox row keeps it, the log at
            // warn only the code.
            tracing::warn!(outbox = id, hard_bounce, code = ?err.code(), "failed (see `tiercare outbox show`)");
            tracing::debug!(outbox = id, error = %err, "failed");
        }
        Err(err @ SendError::Unknown { .. }) => {
            let detail = err.to_string();
            patiently("record an unknown outcome", || {
                store.mark_unknown(id, now, &detail)
            })?;
            report.unknown += 1;
            tracing::warn!(
                outbox = id,
                "outcome unknown: held, see `tiercare outbox list --state unknown`"
            );
            tracing::debug!(outbox = id, error = %err, "outcome unknown");
        }
    }
    Ok(())
}

/// The headers that say what kind of mail an email is: care emails to customers are a list
/// (`List-Id`, `Precedence: bulk`); notifications to owners are `Auto-Submitted`.
pub fn list_headers(settings: &SendSettings, kind: RecipientKind) -> ListHeaders {
    match kind {
        RecipientKind::Customer => ListHeaders {
            list_id: settings.list_id.clone(),
            precedence_bulk: true,
            auto_submitted: false,
        },
        RecipientKind::Owner => ListHeaders {
            list_id: None,
            precedence_bulk: false,
            auto_submitted: true,
        },
    }
}

/// The unsubscribe links of the email `outbox` to `address`, sent at `now`.
fn unsubscribe_links(
    settings: &SendSettings,
    outbox: i64,
    address: &str,
    now: i64,
) -> ListUnsubscribe {
    let token = settings
        .signer
        .as_ref()
        .map(|signer| signer.token(address, outbox, now));
    let mailto = match &token {
        Some(token) => format!(
            "mailto:{}?subject=unsubscribe%20{token}",
            settings.unsubscribe_mailto
        ),
        None => format!("mailto:{}?subject=unsubscribe", settings.unsubscribe_mailto),
    };
    let https = match (&settings.unsubscribe_url, &token) {
        (Some(url), Some(token)) => {
            let separator = if url.contains('?') { '&' } else { '?' };
            Some(format!("{url}{separator}token={token}"))
        }
        _ => None,
    };
    ListUnsubscribe { mailto, https }
}

/// The message of an outbox email as it goes out: its stored parts, and for a customer the
/// `List-Unsubscribe` headers and a visible unsubscribe line in the text and the HTML.
pub fn outgoing(email: &OutboxEmail, settings: &SendSettings, now: i64) -> OutgoingEmail {
    let signer = settings.signer.as_ref();
    let mut text = crate::mail::survey::sign_links(&email.body_text, signer, email.id, now);
    let mut html = email
        .body_html
        .as_deref()
        .map(|html| crate::mail::survey::sign_links(html, signer, email.id, now));
    let list_unsubscribe = match email.recipient_kind {
        RecipientKind::Owner => None,
        RecipientKind::Customer => {
            let links = unsubscribe_links(settings, email.id, &email.to_address, now);
            let (line, href) = match &links.https {
                Some(https) => (
                    format!("To unsubscribe from these emails, open {https}"),
                    https.clone(),
                ),
                None => (
                    format!(
                        "To unsubscribe from these emails, write to {} with the subject \"unsubscribe\".",
                        settings.unsubscribe_mailto
                    ),
                    links.mailto.clone(),
                ),
            };
            if !text.ends_with('\n') {
                text.push('\n');
            }
            text.push_str("\n-- \n");
            text.push_str(&line);
            text.push('\n');
            if let Some(body) = &mut html {
                let footer = format!(
                    "<p style=\"font-size:small;color:#666\">To unsubscribe from these emails, \
                     <a href=\"{}\">click here</a>.</p>",
                    crate::html::escape(&href)
                );
                match body.to_ascii_lowercase().rfind("</body>") {
                    Some(at) => body.insert_str(at, &footer),
                    None => body.push_str(&footer),
                }
            }
            Some(links)
        }
    };
    OutgoingEmail {
        message_id: email.message_id.clone(),
        from: settings.from.clone(),
        to: Address {
            name: email.to_name.clone(),
            email: email.to_address.clone(),
        },
        reply_to: None,
        subject: email.subject.clone(),
        text,
        html,
        list_unsubscribe,
        date: DateTime::from_timestamp(now, 0).unwrap_or_default(),
    }
}

/// The transports `[mail]` configures: the folder (relative to `root` unless absolute), or
/// `connections` SMTP mailers (each keeps its connection open), the password read through
/// `env` from the variable `password_env` names.
pub fn transports(
    root: &Path,
    mail: &MailConfig,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<Box<dyn MailTransport>>, MailError> {
    match mail.transport {
        Transport::Folder => Ok(vec![Box::new(FolderTransport::new(
            root.join(&mail.folder),
        )?)]),
        Transport::Smtp => {
            let smtp = mail.smtp.as_ref().ok_or_else(|| {
                MailError::InvalidConfig("mail.transport is smtp but [mail.smtp] is missing".into())
            })?;
            let config = SmtpTransportConfig::from_settings(smtp);
            (0..smtp.connections.max(1))
                .map(|_| {
                    SmtpMailer::new(&config, env)
                        .map(|mailer| Box::new(mailer) as Box<dyn MailTransport>)
                })
                .collect()
        }
    }
}

/// What [`unsubscribe_csv`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct UnsubscribeReport {
    /// Addresses newly suppressed.
    pub added: u64,
    /// Addresses already suppressed.
    pub already: u64,
    /// Rows skipped: `(row number, why)`; row 1 is the header. No address is shown.
    pub skipped: Vec<(u64, String)>,
}

/// Why an unsubscribe list could not be read.
#[derive(Debug, thiserror::Error)]
pub enum UnsubscribeError {
    /// The file cannot be read or is not CSV.
    #[error("cannot read {}: {message}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Suppresses `address` (reason `unsubscribe`) after checking it is a valid address; `Ok(Err)`
/// with the reason when it is not. Returns whether it was new.
pub fn unsubscribe_address(
    store: &mut Store,
    address: &str,
    source: &str,
    now: i64,
) -> Result<Result<bool, String>, StoreError> {
    match suppressible(address) {
        Ok(address) => super::preferences::unsubscribe(
            store,
            super::preferences::Unsubscriber::Address(&address),
            source,
            now,
        )
        .map(Ok),
        Err(why) => Ok(Err(why)),
    }
}

/// The form an address or phone number is suppressed under (a phone number, without `@`, in
/// E.164, hashed as addresses are, so no SMS goes to it again), or why it cannot be.
fn suppressible(address: &str) -> Result<String, String> {
    let address = address.trim();
    if address.is_empty() {
        return Err("no address".to_owned());
    }
    if !address.contains('@')
        && address.starts_with(['+', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '('])
    {
        return crate::phone::to_e164(address, None)
            .map_err(|err| format!("not a valid phone number: {err}"));
    }
    match parse_address(address) {
        Ok(_) => Ok(address.to_owned()),
        Err(MailError::InvalidAddress { reason, .. }) => {
            Err(format!("not a valid email address: {reason}"))
        }
        Err(other) => Err(format!("not a valid email address: {other}")),
    }
}

/// Suppresses every address of a CSV file with a header: the column `email` (or `address`), or
/// the only column. Invalid or missing addresses are skipped and reported by row.
pub fn unsubscribe_csv(
    store: &mut Store,
    path: &Path,
    now: i64,
) -> Result<UnsubscribeReport, UnsubscribeError> {
    let read = |message: String| UnsubscribeError::Read {
        path: path.to_path_buf(),
        message,
    };
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(path)
        .map_err(|err| read(err.to_string()))?;
    let headers = reader
        .headers()
        .map_err(|err| read(err.to_string()))?
        .clone();
    let column = headers
        .iter()
        .position(|h| {
            let h = h.trim().to_ascii_lowercase();
            h == "email" || h == "address" || h == "phone"
        })
        .or_else(|| (headers.len() == 1).then_some(0))
        .ok_or_else(|| {
            read("no `email`, `address` or `phone` column: name the column of addresses `email` (of phone numbers `phone`)".into())
        })?;
    let name = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    // Every row is read and checked first, then the good ones are suppressed in one
    // transaction: a file that cannot be read to its end changes nothing.
    let mut report = UnsubscribeReport::default();
    let mut good: Vec<(String, String)> = Vec::new();
    for (index, record) in reader.records().enumerate() {
        let row = index as u64 + 2;
        let record = record.map_err(|err| read(format!("row {row}: {err}")))?;
        match suppressible(record.get(column).unwrap_or("")) {
            Ok(address) => good.push((address, format!("csv:{name}:{row}"))),
            Err(why) => report.skipped.push((row, why)),
        }
    }
    let pairs: Vec<(&str, &str)> = good
        .iter()
        .map(|(address, source)| (address.as_str(), source.as_str()))
        .collect();
    let added = store.suppress_all(&pairs, tiercare_store::SuppressionReason::Unsubscribe, now)?;
    report.added = added.iter().filter(|new| **new).count() as u64;
    report.already = added.len() as u64 - report.added;
    tracing::info!(
        added = report.added,
        already = report.already,
        skipped = report.skipped.len(),
        "unsubscribed a file of addresses"
    );
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> SendSettings {
        SendSettings::from_config(
            Path::new("."),
            &MailConfig {
                from: "Care <care@shop.example>".to_owned(),
                ..MailConfig::default()
            },
            &|_| None,
        )
        .expect("settings")
    }

    fn headers_of(kind: RecipientKind) -> String {
        let settings = settings();
        let email = OutgoingEmail {
            message_id: "<tc.1.ab@shop.example>".to_owned(),
            from: settings.from.clone(),
            to: Address::new("ada@example.com"),
            reply_to: None,
            subject: "Hello".to_owned(),
            text: "Hi".to_owned(),
            html: None,
            list_unsubscribe: None,
            date: DateTime::from_timestamp(1_700_000_000, 0).expect("time"),
        };
        let built = build_with(&email, &list_headers(&settings, kind)).expect("built");
        let raw = String::from_utf8(built.raw().to_vec()).expect("ascii");
        raw.split("\r\n\r\n").next().expect("headers").to_owned()
    }

    #[test]
    fn a_file_of_addresses_that_cannot_be_read_to_its_end_suppresses_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("optouts.csv");
        let mut bytes = b"email\nada@example.com\nbob@example.com\n".to_vec();
        bytes.extend_from_slice(b"\xff\xfe@example.com\n");
        std::fs::write(&path, &bytes).unwrap();
        let mut store = Store::open_in_memory().unwrap();
        let err = unsubscribe_csv(&mut store, &path, 100).unwrap_err();
        assert!(err.to_string().contains("row 4"), "{err}");
        assert!(!store.is_suppressed("ada@example.com").unwrap());

        std::fs::write(
            &path,
            "email\nada@example.com\nnot an address\nADA@example.com\n",
        )
        .unwrap();
        let report = unsubscribe_csv(&mut store, &path, 100).unwrap();
        assert_eq!((report.added, report.already), (1, 1));
        assert_eq!(report.skipped.len(), 1);
        assert_eq!(report.skipped[0].0, 3);
        assert!(store.is_suppressed("ada@example.com").unwrap());
    }

    #[test]
    fn care_mail_is_a_list_and_owner_notifications_are_auto_submitted() {
        let care = headers_of(RecipientKind::Customer);
        assert!(care.contains("\r\nList-Id: <care.shop.example>"), "{care}");
        assert!(care.contains("\r\nPrecedence: bulk"), "{care}");
        assert!(!care.contains("Auto-Submitted"), "{care}");
        let owner = headers_of(RecipientKind::Owner);
        assert!(
            owner.contains("\r\nAuto-Submitted: auto-generated"),
            "{owner}"
        );
        assert!(
            !owner.contains("List-Id") && !owner.contains("Precedence"),
            "{owner}"
        );
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_with_jitter_between_half_and_all() {
        let outbox = OutboxConfig {
            retry_base_seconds: 60,
            retry_max_seconds: 600,
            ..OutboxConfig::default()
        };
        assert_eq!(backoff(&outbox, 1, 1.0), 60);
        assert_eq!(backoff(&outbox, 1, 0.0), 30);
        assert_eq!(backoff(&outbox, 2, 1.0), 120);
        assert_eq!(backoff(&outbox, 3, 1.0), 240);
        assert_eq!(backoff(&outbox, 5, 1.0), 600, "capped");
        assert_eq!(backoff(&outbox, 99, 0.0), 300);
    }
}
