//! The outbox: every care e-mail, rendered when it is decided, and carried
//! through its states by the send loop.
//!
//! ```text
//! queued ──claim──▶ claimed ──▶ sent
//!   ▲  │              │ ├──▶ deferred (4xx) ──due again──▶ claimed ...
//!   │  │              │ ├──▶ failed (5xx, or out of attempts; a hard bounce suppresses)
//!   │  │              │ └──▶ unknown (handed over, no answer; or left claimed by a crash)
//!   │  └─(suppressed or no consent, found in the claim)──▶ suppressed
//!   └──── retry (failed, unknown, deferred, cancelled) / crash recovery (resend once)
//! ```
//!
//! - **Written with its decision.** A follow-up's e-mail row is inserted by
//!   [`FollowUpSession::record_with_email`](crate::FollowUpSession::record_with_email)
//!   in the ledger's transaction, with its Message-ID fixed there: the
//!   decision and the e-mail commit together or not at all.
//! - **Claimed before it is sent.** [`Store::claim_due`] moves due rows to
//!   `claimed` and commits *before* any SMTP conversation, re-checking the
//!   suppression list and the customer's consent inside that transaction.
//!   Two senders never claim the same row (the claim is one `IMMEDIATE`
//!   transaction).
//! - **Every change is an event.** Each state change writes an
//!   `outbox_events` row; [`Store::outbox_events`] shows them.
//! - **Handed over, then sent.** [`Store::mark_handed_over`] commits
//!   `handed_at` just before the sender gives a claimed e-mail to a
//!   transport: the one point where it becomes "may have arrived".
//! - **A crash while claimed.** A row still `claimed` when no sender runs was
//!   left by one that died. [`Store::recover_claimed`] queues it again if it
//!   was never handed over (nothing was sent); if it was, it may or may not
//!   have been delivered: it becomes `unknown` and, under
//!   [`RecoveryPolicy::ResendOnce`], is queued again with the same Message-ID
//!   (so a receiver that got it can drop the copy), counted in `recoveries`.
//!   That is the only way an e-mail goes out twice.

use std::fmt;
use std::path::Path;

use rusqlite::{Connection, OptionalExtension, Row, Transaction, TransactionBehavior, params};

use crate::counts::grouped_counts;
use crate::db::Store;
use crate::error::{AtPath, StoreError};
use crate::suppressions::address_is_suppressed;
use tiercare_types::Channel;

/// Where an outbox e-mail stands (`outbox.state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OutboxState {
    /// Waiting for its due time.
    Queued,
    /// Taken by a sender; the SMTP conversation may be under way.
    Claimed,
    /// Accepted by the server (or written to the mail folder).
    Sent,
    /// A transient failure; due again at `due_at`.
    Deferred,
    /// A permanent failure, or out of attempts: not retried.
    Failed,
    /// Handed over without an answer, or left claimed by a crash: it may
    /// or may not have arrived.
    Unknown,
    /// Called off by hand, or by the delivery gate (no longer true, or stale).
    Cancelled,
    /// Not sent: the address is suppressed or consent was withdrawn.
    Suppressed,
}

impl OutboxState {
    /// Every state, in lifecycle order.
    pub const ALL: [OutboxState; 8] = [
        OutboxState::Queued,
        OutboxState::Claimed,
        OutboxState::Sent,
        OutboxState::Deferred,
        OutboxState::Failed,
        OutboxState::Unknown,
        OutboxState::Cancelled,
        OutboxState::Suppressed,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxState::Queued => "queued",
            OutboxState::Claimed => "claimed",
            OutboxState::Sent => "sent",
            OutboxState::Deferred => "deferred",
            OutboxState::Failed => "failed",
            OutboxState::Unknown => "unknown",
            OutboxState::Cancelled => "cancelled",
            OutboxState::Suppressed => "suppressed",
        }
    }

    /// The state with this stored name.
    pub fn parse(text: &str) -> Option<OutboxState> {
        OutboxState::ALL
            .into_iter()
            .find(|state| state.as_str() == text)
    }
}

impl fmt::Display for OutboxState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who an e-mail is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RecipientKind {
    /// The customer (care mail: consent and unsubscribe apply).
    Customer,
    /// The customer's owner, a manager (a notification).
    Owner,
}

impl RecipientKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            RecipientKind::Customer => "customer",
            RecipientKind::Owner => "owner",
        }
    }
}

/// The recipient of an e-mail follow-up, as the ledger finds it when the
/// follow-up is recorded; given to the composer of
/// [`FollowUpSession::record_with_email`](crate::FollowUpSession::record_with_email).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailRecipient {
    /// The customer, or their owner.
    pub kind: RecipientKind,
    /// The customer's external id (also for an owner's notification).
    pub customer_id: String,
    /// The template's name.
    pub template: String,
    /// The address (the customer's, or the owner's), as stored; `None`
    /// when there is none.
    pub address: Option<String>,
    /// The recipient's name, as stored.
    pub name: Option<String>,
    /// The survey the e-mail asks, for a `survey:` follow-up (kept in `outbox.survey`).
    pub survey: Option<tiercare_types::Survey>,
    /// The coupon code the e-mail carries (issued in the same transaction), if its follow-up
    /// asks for one.
    pub coupon: Option<crate::coupons::IssuedCoupon>,
}

/// A composed e-mail for the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEmail {
    /// The Message-ID, angle brackets included; fixed for every attempt.
    pub message_id: String,
    /// The address to send to (validated by the composer).
    pub to_address: String,
    /// The rendered subject.
    pub subject: String,
    /// The rendered plain text.
    pub text: String,
    /// The rendered HTML, if any.
    pub html: Option<String>,
}

/// An outbox e-mail as stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OutboxEmail {
    /// The row's id.
    pub id: i64,
    /// The follow-up that decided it (`None` once the customer is forgotten).
    pub followup_id: Option<i64>,
    /// The customer's external id (`None` once forgotten).
    pub customer_id: Option<String>,
    /// Whether the customer consents to the message's channel now (`consent_email`, or
    /// `consent_sms` for an SMS; `None` once forgotten).
    pub consent_email: Option<bool>,
    /// The follow-up rule.
    pub rule_id: String,
    /// The template it was rendered from.
    pub template: String,
    /// Who it is for.
    pub recipient_kind: RecipientKind,
    /// The address it goes to.
    pub to_address: String,
    /// The recipient's name now (the customer's, or the owner's).
    pub to_name: Option<String>,
    /// The Message-ID, fixed at enqueue.
    pub message_id: String,
    /// The rendered subject.
    pub subject: String,
    /// The rendered text.
    pub body_text: String,
    /// The rendered HTML.
    pub body_html: Option<String>,
    /// Where it stands.
    pub state: OutboxState,
    /// When it may be sent (next), unix seconds UTC.
    pub due_at: i64,
    /// SMTP conversations started for it.
    pub attempts: u32,
    /// The last failure.
    pub last_error: Option<String>,
    /// When it was queued.
    pub created_at: i64,
    /// When it was last claimed.
    pub claimed_at: Option<i64>,
    /// When it was sent.
    pub sent_at: Option<i64>,
    /// When it last changed.
    pub updated_at: i64,
    /// Times it was resent after a crash left it claimed.
    pub recoveries: u32,
    /// How it goes: an e-mail, or an SMS (`to_address` is then the E.164 phone number,
    /// `subject` is empty and `body_text` is the text).
    pub channel: Channel,
}

/// One state change of an outbox e-mail.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OutboxEvent {
    /// When, unix seconds UTC.
    pub at: i64,
    /// The state before (`None` when the row was created).
    pub from_state: Option<String>,
    /// The state after.
    pub to_state: String,
    /// Why, in words.
    pub detail: Option<String>,
}

/// What [`Store::claim_due`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Claim {
    /// The claimed e-mails, to be sent now (committed as `claimed`).
    pub emails: Vec<OutboxEmail>,
    /// Due e-mails not claimed because their address is suppressed (now
    /// `suppressed`).
    pub suppressed: u64,
    /// Due customer e-mails not claimed because the customer no longer
    /// consents to e-mail, or was forgotten (now `suppressed`).
    pub no_consent: u64,
}

/// What to do with an e-mail a crashed sender left `claimed`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RecoveryPolicy {
    /// Mark it `unknown` and queue it again, once, with the same Message-ID:
    /// nothing is lost, and a duplicate is possible (counted).
    #[default]
    ResendOnce,
    /// Mark it `unknown` and leave it for `tiercare outbox retry`: nothing
    /// is sent twice, and it may be lost.
    Hold,
}

/// How many times an e-mail a crash left `unknown` is queued again under
/// [`RecoveryPolicy::ResendOnce`]: once per crash that caught it handed over, up
/// to this many crashes; after that it is held (a message that keeps crashing
/// the sender must not loop).
pub const MAX_CRASH_RESENDS: u32 = 3;

/// What [`Store::recover_claimed`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Recovery {
    /// Claims never handed to a transport, queued again (no attempt counted,
    /// nothing can have been sent).
    pub released: u64,
    /// Claims handed to a transport without a recorded outcome, marked
    /// `unknown`: each may have arrived (the exact number of possible
    /// duplicates of the resends).
    pub unknown: u64,
    /// Of those, queued again to be resent (same Message-ID).
    pub requeued: u64,
}

/// Which e-mails `tiercare outbox retry|cancel --state ...` changes in bulk
/// ([`Store::retry_emails`], [`Store::cancel_emails`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BulkFilter {
    /// The state they are in: `failed` or `unknown`.
    pub state: OutboxState,
    /// Only this follow-up rule's.
    pub rule: Option<String>,
    /// Only those that reached their state at or after this time (unix seconds).
    pub since: Option<i64>,
}

pub(crate) const EMAIL_COLUMNS: &str = "o.id, o.followup_id, c.external_id, \
    CASE o.channel WHEN 'sms' THEN c.consent_sms ELSE c.consent_email END, o.rule_id, \
    o.template, o.recipient_kind, o.to_address, \
    CASE o.recipient_kind WHEN 'customer' THEN c.name \
    ELSE (SELECT m.name FROM managers m WHERE m.external_id = c.owner) END, \
    o.message_id, o.subject, o.body_text, o.body_html, o.state, o.due_at, o.attempts, \
    o.last_error, o.created_at, o.claimed_at, o.sent_at, o.updated_at, o.recoveries, o.channel";

pub(crate) const EMAIL_FROM: &str = "FROM outbox o LEFT JOIN customers c ON c.id = o.customer_id";

pub(crate) fn email_row(row: &Row<'_>) -> rusqlite::Result<OutboxEmail> {
    let kind: String = row.get(6)?;
    let state: String = row.get(13)?;
    let bad = |index: usize, what: &str| {
        rusqlite::Error::FromSqlConversionFailure(
            index,
            rusqlite::types::Type::Text,
            format!("unknown {what}").into(),
        )
    };
    Ok(OutboxEmail {
        id: row.get(0)?,
        followup_id: row.get(1)?,
        customer_id: row.get(2)?,
        consent_email: row.get::<_, Option<i64>>(3)?.map(|c| c == 1),
        rule_id: row.get(4)?,
        template: row.get(5)?,
        recipient_kind: match kind.as_str() {
            "customer" => RecipientKind::Customer,
            "owner" => RecipientKind::Owner,
            _ => return Err(bad(6, "recipient kind")),
        },
        to_address: row.get(7)?,
        to_name: row.get(8)?,
        message_id: row.get(9)?,
        subject: row.get(10)?,
        body_text: row.get(11)?,
        body_html: row.get(12)?,
        state: OutboxState::parse(&state).ok_or_else(|| bad(13, "outbox state"))?,
        due_at: row.get(14)?,
        attempts: row.get(15)?,
        last_error: row.get(16)?,
        created_at: row.get(17)?,
        claimed_at: row.get(18)?,
        sent_at: row.get(19)?,
        updated_at: row.get(20)?,
        recoveries: row.get(21)?,
        channel: Channel::parse(&row.get::<_, String>(22)?).ok_or_else(|| bad(22, "channel"))?,
    })
}

fn load(conn: &Connection, id: i64) -> rusqlite::Result<Option<OutboxEmail>> {
    conn.prepare_cached(&format!(
        "SELECT {EMAIL_COLUMNS} {EMAIL_FROM} WHERE o.id = ?1"
    ))?
    .query_row([id], email_row)
    .optional()
}

/// Writes the event of a state change.
pub(crate) fn event(
    conn: &Connection,
    id: i64,
    now: i64,
    from: Option<OutboxState>,
    to: OutboxState,
    detail: Option<&str>,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO outbox_events (outbox_id, at, from_state, to_state, detail) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        id,
        now,
        from.map(OutboxState::as_str),
        to.as_str(),
        detail
    ])?;
    crate::webhooks::email_changed(conn, id, to.as_str(), now)
}

/// Puts the claimed e-mail `id`, never handed to a transport, back in the queue: its due time
/// and Message-ID kept, the attempt its claim counted given back, a `claimed → queued` event
/// with `detail`. Returns whether it was claimed (anything else is left alone).
fn requeue_unsent(conn: &Connection, id: i64, now: i64, detail: &str) -> rusqlite::Result<bool> {
    let changed = conn
        .prepare_cached(
            "UPDATE outbox SET state = 'queued', claimed_at = NULL, \
             attempts = max(attempts - 1, 0), updated_at = ?2 \
             WHERE id = ?1 AND state = 'claimed'",
        )?
        .execute(params![id, now])?;
    if changed == 1 {
        event(
            conn,
            id,
            now,
            Some(OutboxState::Claimed),
            OutboxState::Queued,
            Some(detail),
        )?;
    }
    Ok(changed == 1)
}

/// Keeps the e-mail's follow-up in step: `done` once sent, `cancelled`
/// (with the reason) once it will not be sent, `planned` again on a retry.
pub(crate) fn sync_followup(
    conn: &Connection,
    id: i64,
    to: OutboxState,
    now: i64,
    detail: &str,
) -> rusqlite::Result<()> {
    let (sql, reason): (&str, Option<String>) = match to {
        OutboxState::Sent => (
            "UPDATE followups SET status = 'done', status_reason = NULL, status_at = ?2 \
             WHERE id = (SELECT followup_id FROM outbox WHERE id = ?1) AND status <> 'skipped'",
            None,
        ),
        OutboxState::Failed | OutboxState::Cancelled | OutboxState::Suppressed => (
            "UPDATE followups SET status = 'cancelled', status_reason = ?3, status_at = ?2 \
             WHERE id = (SELECT followup_id FROM outbox WHERE id = ?1) AND status = 'planned'",
            Some(format!("e-mail {to}: {detail}")),
        ),
        OutboxState::Queued => (
            "UPDATE followups SET status = 'planned', status_reason = NULL, status_at = ?2 \
             WHERE id = (SELECT followup_id FROM outbox WHERE id = ?1) AND status = 'cancelled'",
            None,
        ),
        OutboxState::Claimed | OutboxState::Deferred | OutboxState::Unknown => return Ok(()),
    };
    let mut stmt = conn.prepare_cached(sql)?;
    match reason {
        Some(reason) => stmt.execute(params![id, now, reason])?,
        None => stmt.execute(params![id, now])?,
    };
    Ok(())
}

/// Moves the e-mail `id` from `from` to `to` by hand (a retry is due `now`),
/// with its event and its follow-up kept in step.
fn change_one(
    conn: &Connection,
    id: i64,
    from: OutboxState,
    to: OutboxState,
    now: i64,
    wanted: &str,
) -> rusqlite::Result<()> {
    let detail = format!("{wanted} by hand");
    conn.prepare_cached(
        "UPDATE outbox SET state = ?2, updated_at = ?3, \
         due_at = CASE WHEN ?2 = 'queued' THEN ?3 ELSE due_at END WHERE id = ?1",
    )?
    .execute(params![id, to.as_str(), now])?;
    event(conn, id, now, Some(from), to, Some(&detail))?;
    sync_followup(conn, id, to, now, &detail)
}

/// The recipient of a new e-mail follow-up for the customer `rowid`.
pub(crate) fn recipient(
    tx: &Transaction<'_>,
    kind: RecipientKind,
    rowid: i64,
    customer_id: &str,
    template: &str,
    owner: Option<&str>,
) -> rusqlite::Result<EmailRecipient> {
    let (address, name) = match kind {
        RecipientKind::Customer => tx
            .prepare_cached("SELECT email, name FROM customers WHERE id = ?1")?
            .query_row([rowid], |row| Ok((row.get(0)?, row.get(1)?)))?,
        RecipientKind::Owner => match owner {
            Some(owner) => tx
                .prepare_cached("SELECT email, name FROM managers WHERE external_id = ?1")?
                .query_row([owner], |row| Ok((row.get(0)?, row.get(1)?)))
                .optional()?
                .unwrap_or((None, None)),
            None => (None, None),
        },
    };
    let address: Option<String> = address;
    Ok(EmailRecipient {
        kind,
        customer_id: customer_id.to_owned(),
        template: template.to_owned(),
        address: address.filter(|a| !a.trim().is_empty()),
        name,
        survey: None,
        coupon: None,
    })
}

/// The recipient of a new SMS follow-up for the customer `rowid`: their phone as stored (in
/// `address`) and name.
pub(crate) fn sms_recipient(
    tx: &Transaction<'_>,
    rowid: i64,
    customer_id: &str,
    template: &str,
) -> rusqlite::Result<EmailRecipient> {
    let (phone, name): (Option<String>, Option<String>) = tx
        .prepare_cached("SELECT phone, name FROM customers WHERE id = ?1")?
        .query_row([rowid], |row| Ok((row.get(0)?, row.get(1)?)))?;
    Ok(EmailRecipient {
        kind: RecipientKind::Customer,
        customer_id: customer_id.to_owned(),
        template: template.trim().to_owned(),
        address: phone.filter(|p| !p.trim().is_empty()),
        name,
        survey: None,
        coupon: None,
    })
}

/// Queues a composed message (an e-mail, or an SMS: `email.to_address` is then the phone
/// number, `subject` empty, `text` the message) on `channel` for the follow-up `followup_id`, due at
/// `due_at`, and writes its creation event. Returns the row's id.
#[expect(clippy::too_many_arguments, reason = "one row's columns, all required")]
pub(crate) fn enqueue(
    tx: &Transaction<'_>,
    channel: Channel,
    followup_id: i64,
    customer_rowid: i64,
    rule_id: &str,
    recipient: &EmailRecipient,
    email: &NewEmail,
    due_at: i64,
    now: i64,
) -> rusqlite::Result<i64> {
    let survey = recipient
        .survey
        .as_ref()
        .map(serde_json::to_string)
        .transpose()
        .map_err(|err| rusqlite::Error::ToSqlConversionFailure(Box::new(err)))?;
    let id: i64 = tx
        .prepare_cached(
            "INSERT INTO outbox (followup_id, customer_id, rule_id, template, recipient_kind, \
             to_address, message_id, subject, body_text, body_html, state, due_at, attempts, \
             created_at, updated_at, survey, channel) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 'queued', ?11, 0, ?12, ?12, ?13, ?14) \
             RETURNING id",
        )?
        .query_row(
            params![
                followup_id,
                customer_rowid,
                rule_id,
                recipient.template,
                recipient.kind.as_str(),
                email.to_address.trim(),
                email.message_id,
                email.subject,
                email.text,
                email.html,
                due_at,
                now,
                survey,
                channel.as_str(),
            ],
            |row| row.get(0),
        )?;
    event(tx, id, now, None, OutboxState::Queued, None)?;
    Ok(id)
}

/// What [`Store::sent_since`] counts; the partial index `outbox_by_sent_at`
/// (migration 7) answers it by reading only the rows sent since then. The `+`
/// keeps SQLite from preferring `outbox_by_state`, which would visit every sent
/// row ever: the state is only checked on the few rows the range yields.
use crate::sending::DOMAIN_OF_TO;

const SENT_SINCE: &str =
    "SELECT count(*) FROM outbox WHERE +state = 'sent' AND sent_at >= ?1 AND +channel = 'email'";

impl Store {
    fn write_tx(&mut self) -> Result<(Transaction<'_>, &Path), StoreError> {
        let path = self.label.as_path();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .at(path)?;
        Ok((tx, path))
    }

    /// Claims up to `limit` e-mails due at `now` (`queued`, or `deferred`
    /// and due again), oldest due first, in one transaction committed before
    /// this returns, so before any of them is handed to a server.
    ///
    /// Inside the claim each address is checked against the suppression list
    /// and each customer e-mail against the customer's consent: those become
    /// `suppressed` instead and are counted. Each claimed row's `attempts`
    /// goes up by one.
    pub fn claim_due(&mut self, now: i64, limit: usize) -> Result<Claim, StoreError> {
        self.claim_due_except(now, limit, &[])
    }

    /// [`Store::claim_due`], leaving alone the e-mails to the receiving domains in `paced`
    /// (lower-case, as [`address_domain`](crate::address_domain) gives them): paused or at
    /// their limit, they stay queued.
    pub fn claim_due_except(
        &mut self,
        now: i64,
        limit: usize,
        paced: &[String],
    ) -> Result<Claim, StoreError> {
        self.claim_channel(Channel::Email, now, limit, paced)
    }

    /// [`Store::claim_due`] for SMS: claims up to `limit` SMS due at `now`, checking each
    /// phone number against the suppression list (hashed as addresses are) and each customer's
    /// `consent_sms`, in one transaction committed before this returns. E-mails are left to
    /// [`Store::claim_due`], SMS to this.
    pub fn claim_sms_due(&mut self, now: i64, limit: usize) -> Result<Claim, StoreError> {
        self.claim_channel(Channel::Sms, now, limit, &[])
    }

    fn claim_channel(
        &mut self,
        channel: Channel,
        now: i64,
        limit: usize,
        paced: &[String],
    ) -> Result<Claim, StoreError> {
        let paced = serde_json::to_string(paced).unwrap_or_else(|_| "[]".to_owned());
        let keys = self.keys.clone();
        let (tx, path) = self.write_tx()?;
        let mut claim = Claim::default();
        let due: Vec<OutboxEmail> = {
            let mut stmt = tx
                .prepare_cached(&format!(
                    "SELECT {EMAIL_COLUMNS} {EMAIL_FROM} \
                     WHERE o.state IN ('queued', 'deferred') AND o.due_at <= ?1 \
                     AND o.channel = ?4 \
                     AND {DOMAIN_OF_TO} NOT IN (SELECT value FROM json_each(?3)) \
                     ORDER BY o.due_at, o.id LIMIT ?2"
                ))
                .at(path)?;
            let rows = stmt
                .query_map(
                    params![
                        now,
                        i64::try_from(limit).unwrap_or(i64::MAX),
                        paced,
                        channel.as_str()
                    ],
                    email_row,
                )
                .at(path)?;
            rows.collect::<Result<_, _>>().at(path)?
        };
        for mut email in due {
            let suppressed = address_is_suppressed(&tx, &keys, &email.to_address).at(path)?;
            let no_consent = email.recipient_kind == RecipientKind::Customer
                && email.consent_email != Some(true);
            let to = if suppressed || no_consent {
                OutboxState::Suppressed
            } else {
                OutboxState::Claimed
            };
            let detail = if suppressed {
                claim.suppressed += 1;
                if channel == Channel::Sms {
                    "the phone number is on the suppression list"
                } else {
                    "the address is on the suppression list"
                }
            } else if no_consent {
                claim.no_consent += 1;
                if email.customer_id.is_none() {
                    "the customer was forgotten"
                } else if channel == Channel::Sms {
                    "the customer does not consent to SMS"
                } else {
                    "the customer does not consent to e-mail"
                }
            } else {
                "claimed for sending"
            };
            if to == OutboxState::Claimed {
                tx.prepare_cached(
                    "UPDATE outbox SET state = 'claimed', claimed_at = ?2, handed_at = NULL, \
                     attempts = attempts + 1, updated_at = ?2 WHERE id = ?1",
                )
                .and_then(|mut stmt| stmt.execute(params![email.id, now]))
                .at(path)?;
            } else {
                tx.prepare_cached(
                    "UPDATE outbox SET state = 'suppressed', last_error = ?3, updated_at = ?2 \
                     WHERE id = ?1",
                )
                .and_then(|mut stmt| stmt.execute(params![email.id, now, detail]))
                .at(path)?;
                sync_followup(&tx, email.id, to, now, detail).at(path)?;
            }
            event(&tx, email.id, now, Some(email.state), to, Some(detail)).at(path)?;
            if to == OutboxState::Claimed {
                email.state = OutboxState::Claimed;
                email.claimed_at = Some(now);
                email.attempts += 1;
                email.updated_at = now;
                claim.emails.push(email);
            }
        }
        tx.commit().at(path)?;
        Ok(claim)
    }

    /// Moves the claimed e-mail `id` to `to`, with `detail` as its event
    /// (and as `last_error` unless it was sent); with `suppress` (the status
    /// code, if known) it records a hard bounce of the address. Fails with
    /// [`StoreError::EmailState`] if it is not claimed.
    fn finish_claim(
        &mut self,
        id: i64,
        to: OutboxState,
        now: i64,
        detail: &str,
        due_at: Option<i64>,
        suppress: Option<Option<&str>>,
    ) -> Result<(), StoreError> {
        let keys = self.keys.clone();
        let (tx, path) = self.write_tx()?;
        let email = load(&tx, id)
            .at(path)?
            .ok_or(StoreError::UnknownEmail { id })?;
        if email.state != OutboxState::Claimed {
            return Err(StoreError::EmailState {
                id,
                state: email.state.to_string(),
                wanted: "given a send outcome",
                hint: "only a claimed e-mail has one",
            });
        }
        tx.prepare_cached(
            "UPDATE outbox SET state = ?2, updated_at = ?3, \
             sent_at = CASE WHEN ?2 = 'sent' THEN ?3 END, \
             last_error = CASE WHEN ?2 = 'sent' THEN last_error ELSE ?4 END, \
             due_at = coalesce(?5, due_at) WHERE id = ?1",
        )
        .and_then(|mut stmt| stmt.execute(params![id, to.as_str(), now, detail, due_at]))
        .at(path)?;
        event(&tx, id, now, Some(OutboxState::Claimed), to, Some(detail)).at(path)?;
        sync_followup(&tx, id, to, now, detail).at(path)?;
        if let Some(status) = suppress {
            // A refused address is a hard bounce: recorded and suppressed with the failure.
            crate::bounces::record(
                &tx,
                &crate::bounces::NewBounce {
                    outbox_id: Some(id),
                    message_id: None,
                    address: None,
                    kind: crate::bounces::BounceKind::Hard,
                    status,
                    diagnostic: Some(detail),
                    source: "smtp",
                    event_key: None,
                },
                &keys,
                crate::bounces::SoftBouncePolicy::default(),
                now,
            )
            .at(path)?;
        }
        tx.commit().at(path)
    }

    /// Records that the claimed e-mail `id` was delivered (`receipt`: the
    /// server's reply, or the file written).
    pub fn mark_sent(&mut self, id: i64, now: i64, receipt: &str) -> Result<(), StoreError> {
        self.finish_claim(id, OutboxState::Sent, now, receipt, None, None)
    }

    /// Records a transient failure of the claimed e-mail `id`: due again at
    /// `retry_at` (the caller's backoff).
    pub fn mark_deferred(
        &mut self,
        id: i64,
        now: i64,
        retry_at: i64,
        error: &str,
    ) -> Result<(), StoreError> {
        self.finish_claim(id, OutboxState::Deferred, now, error, Some(retry_at), None)
    }

    /// Records a permanent failure of the claimed e-mail `id` (a 5xx, an
    /// unusable address, or out of attempts). With `hard_bounce` the address
    /// goes on the suppression list in the same transaction.
    pub fn mark_failed(
        &mut self,
        id: i64,
        now: i64,
        error: &str,
        hard_bounce: bool,
    ) -> Result<(), StoreError> {
        self.finish_claim(
            id,
            OutboxState::Failed,
            now,
            error,
            None,
            hard_bounce.then_some(None),
        )
    }

    /// Records that the server refused the claimed e-mail `id` for good because of its
    /// address (a `5xx` on RCPT or after DATA): `failed`, a hard bounce recorded in the
    /// `bounces` table with `status` (the reply or RFC 3463 code) and `error` as its
    /// diagnostic, and the address suppressed, in one transaction.
    pub fn mark_hard_bounced(
        &mut self,
        id: i64,
        now: i64,
        error: &str,
        status: Option<&str>,
    ) -> Result<(), StoreError> {
        self.finish_claim(id, OutboxState::Failed, now, error, None, Some(status))
    }

    /// Records that the claimed e-mail `id` was handed over without a final
    /// answer: it may or may not have arrived. It is held (not resent by
    /// itself); `tiercare outbox retry` resends it with the same Message-ID.
    pub fn mark_unknown(&mut self, id: i64, now: i64, error: &str) -> Result<(), StoreError> {
        self.finish_claim(id, OutboxState::Unknown, now, error, None, None)
    }

    /// Gives back claims that were never sent (the sender is stopping): each
    /// e-mail in `ids` that is still `claimed` goes back to `queued`, keeps
    /// its due time and Message-ID, and gets back the attempt its claim
    /// counted, with a `claimed → queued` event; all in one transaction.
    /// Returns how many were released (ids not claimed are left alone).
    pub fn release_claims(&mut self, ids: &[i64], now: i64) -> Result<u64, StoreError> {
        self.release_claims_because(ids, now, "released unsent: the sender was stopping")
    }

    /// [`Store::release_claims`] with `detail` as the events' reason (e.g. the receiving
    /// domain is paused).
    pub fn release_claims_because(
        &mut self,
        ids: &[i64],
        now: i64,
        detail: &str,
    ) -> Result<u64, StoreError> {
        let (tx, path) = self.write_tx()?;
        let mut released = 0;
        for &id in ids {
            if requeue_unsent(&tx, id, now, detail).at(path)? {
                released += 1;
            }
        }
        tx.commit().at(path)?;
        Ok(released)
    }

    /// Records that the claimed e-mail `id` is about to be handed to a
    /// transport (`handed_at = now`, committed before the first byte goes
    /// out). The one point where a claim becomes "may have arrived": a crash
    /// before it leaves the claim to be queued again by [`Store::recover_claimed`],
    /// a crash after it makes the e-mail `unknown`. Fails with
    /// [`StoreError::EmailState`] if it is not claimed.
    pub fn mark_handed_over(&mut self, id: i64, now: i64) -> Result<(), StoreError> {
        let (tx, path) = self.write_tx()?;
        let changed = tx
            .prepare_cached("UPDATE outbox SET handed_at = ?2 WHERE id = ?1 AND state = 'claimed'")
            .and_then(|mut stmt| stmt.execute(params![id, now]))
            .at(path)?;
        if changed != 1 {
            let state = load(&tx, id)
                .at(path)?
                .ok_or(StoreError::UnknownEmail { id })?
                .state;
            return Err(StoreError::EmailState {
                id,
                state: state.to_string(),
                wanted: "handed over",
                hint: "only a claimed e-mail is handed to a transport",
            });
        }
        tx.commit().at(path)
    }

    /// Recovers e-mails left `claimed` by a sender that stopped (a crash, a
    /// `kill -9`): every claim made at or before `now - stale_after` seconds
    /// (pass `i64::MIN` when the sender lock proves no other sender runs, so
    /// every open claim is a dead one's).
    ///
    /// - A claim never handed to a transport (`handed_at` unset) goes back to
    ///   `queued` with its attempt given back: nothing was sent.
    /// - A claim handed over becomes `unknown` (it may have arrived); under
    ///   [`RecoveryPolicy::ResendOnce`] it is then queued again, due `now`,
    ///   with the same Message-ID and `recoveries` counted, unless crashes
    ///   caught it [`MAX_CRASH_RESENDS`] times already (then it is held).
    pub fn recover_claimed(
        &mut self,
        now: i64,
        stale_after: i64,
        policy: RecoveryPolicy,
    ) -> Result<Recovery, StoreError> {
        let (tx, path) = self.write_tx()?;
        let stale: Vec<(i64, u32, bool)> = {
            let mut stmt = tx
                .prepare_cached(
                    "SELECT id, recoveries, handed_at IS NOT NULL FROM outbox \
                     WHERE state = 'claimed' AND claimed_at <= ?1 ORDER BY id",
                )
                .at(path)?;
            let rows = stmt
                .query_map([now.saturating_sub(stale_after)], |row| {
                    Ok((row.get(0)?, row.get(1)?, row.get(2)?))
                })
                .at(path)?;
            rows.collect::<Result<_, _>>().at(path)?
        };
        let mut recovery = Recovery::default();
        for (id, recoveries, handed_over) in stale {
            if !handed_over {
                requeue_unsent(
                    &tx,
                    id,
                    now,
                    "left claimed by a sender that stopped before handing it over: not sent",
                )
                .at(path)?;
                recovery.released += 1;
                continue;
            }
            let detail = "handed over by a sender that stopped before the answer: it may or may not have arrived";
            tx.execute(
                "UPDATE outbox SET state = 'unknown', last_error = ?3, updated_at = ?2 \
                 WHERE id = ?1",
                params![id, now, detail],
            )
            .at(path)?;
            event(
                &tx,
                id,
                now,
                Some(OutboxState::Claimed),
                OutboxState::Unknown,
                Some(detail),
            )
            .at(path)?;
            recovery.unknown += 1;
            if policy == RecoveryPolicy::ResendOnce && recoveries < MAX_CRASH_RESENDS {
                tx.execute(
                    "UPDATE outbox SET state = 'queued', due_at = ?2, updated_at = ?2, \
                     recoveries = recoveries + 1 WHERE id = ?1",
                    params![id, now],
                )
                .at(path)?;
                event(
                    &tx,
                    id,
                    now,
                    Some(OutboxState::Unknown),
                    OutboxState::Queued,
                    Some("resent once after a crash, with the same Message-ID"),
                )
                .at(path)?;
                recovery.requeued += 1;
            }
        }
        tx.commit().at(path)?;
        Ok(recovery)
    }

    /// Queues the e-mail `id` again, due `now` (same Message-ID): for a
    /// `failed`, `unknown`, `deferred` or `cancelled` one. The claim still
    /// checks suppression and consent.
    pub fn retry_email(&mut self, id: i64, now: i64) -> Result<OutboxEmail, StoreError> {
        self.change_by_hand(
            id,
            now,
            OutboxState::Queued,
            &[
                OutboxState::Failed,
                OutboxState::Unknown,
                OutboxState::Deferred,
                OutboxState::Cancelled,
            ],
            "retried",
            "only failed, unknown, deferred or cancelled e-mails can be retried",
        )
    }

    /// Cancels the e-mail `id`: for a `queued`, `deferred`, `unknown` or
    /// `failed` one (never a claimed or sent one).
    pub fn cancel_email(&mut self, id: i64, now: i64) -> Result<OutboxEmail, StoreError> {
        self.change_by_hand(
            id,
            now,
            OutboxState::Cancelled,
            &[
                OutboxState::Queued,
                OutboxState::Deferred,
                OutboxState::Unknown,
                OutboxState::Failed,
            ],
            "cancelled",
            "only queued, deferred, unknown or failed e-mails can be cancelled",
        )
    }

    fn change_by_hand(
        &mut self,
        id: i64,
        now: i64,
        to: OutboxState,
        from: &[OutboxState],
        wanted: &'static str,
        hint: &'static str,
    ) -> Result<OutboxEmail, StoreError> {
        let audit = self.pending_audit.take();
        let (tx, path) = self.write_tx()?;
        let email = load(&tx, id)
            .at(path)?
            .ok_or(StoreError::UnknownEmail { id })?;
        if !from.contains(&email.state) {
            return Err(StoreError::EmailState {
                id,
                state: email.state.to_string(),
                wanted,
                hint,
            });
        }
        change_one(&tx, id, email.state, to, now, wanted).at(path)?;
        let email = load(&tx, id).at(path)?.expect("updated");
        crate::staff_users::write_audit(&tx, audit).at(path)?;
        tx.commit().at(path)?;
        Ok(email)
    }

    /// Queues again, due `now` (same Message-ID), every e-mail `filter`
    /// selects, in one transaction; returns how many. `filter.state` must be
    /// `failed` or `unknown`.
    pub fn retry_emails(&mut self, filter: &BulkFilter, now: i64) -> Result<u64, StoreError> {
        self.change_in_bulk(filter, now, OutboxState::Queued, "retried")
    }

    /// Cancels every e-mail `filter` selects, in one transaction; returns how
    /// many. `filter.state` must be `failed` or `unknown`.
    pub fn cancel_emails(&mut self, filter: &BulkFilter, now: i64) -> Result<u64, StoreError> {
        self.change_in_bulk(filter, now, OutboxState::Cancelled, "cancelled")
    }

    fn change_in_bulk(
        &mut self,
        filter: &BulkFilter,
        now: i64,
        to: OutboxState,
        wanted: &'static str,
    ) -> Result<u64, StoreError> {
        if !matches!(filter.state, OutboxState::Failed | OutboxState::Unknown) {
            return Err(StoreError::EmailState {
                id: 0,
                state: filter.state.to_string(),
                wanted,
                hint: "in bulk, only failed or unknown e-mails (--state failed|unknown)",
            });
        }
        let (tx, path) = self.write_tx()?;
        let ids: Vec<i64> = {
            let mut stmt = tx
                .prepare_cached(
                    "SELECT id FROM outbox WHERE state = ?1 AND (?2 IS NULL OR rule_id = ?2) \
                     AND (?3 IS NULL OR updated_at >= ?3) ORDER BY id",
                )
                .at(path)?;
            let rows = stmt
                .query_map(
                    params![filter.state.as_str(), filter.rule.as_deref(), filter.since],
                    |row| row.get(0),
                )
                .at(path)?;
            rows.collect::<Result<_, _>>().at(path)?
        };
        for &id in &ids {
            change_one(&tx, id, filter.state, to, now, wanted).at(path)?;
        }
        tx.commit().at(path)?;
        Ok(ids.len() as u64)
    }

    /// The outbox e-mail `id`.
    pub fn outbox_email(&self, id: i64) -> Result<Option<OutboxEmail>, StoreError> {
        load(&self.conn, id).at(&self.label)
    }

    /// Outbox e-mails, newest first, in `state` if given, at most `limit`.
    pub fn outbox(
        &self,
        state: Option<OutboxState>,
        limit: usize,
    ) -> Result<Vec<OutboxEmail>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT {EMAIL_COLUMNS} {EMAIL_FROM} WHERE ?1 IS NULL OR o.state = ?1 \
                 ORDER BY o.id DESC LIMIT ?2"
            ))
            .at(&self.label)?;
        let rows = stmt
            .query_map(
                params![
                    state.map(OutboxState::as_str),
                    i64::try_from(limit).unwrap_or(i64::MAX)
                ],
                email_row,
            )
            .at(&self.label)?;
        rows.collect::<Result<_, _>>().at(&self.label)
    }

    /// The state changes of the e-mail `id`, oldest first.
    pub fn outbox_events(&self, id: i64) -> Result<Vec<OutboxEvent>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT at, from_state, to_state, detail FROM outbox_events \
                 WHERE outbox_id = ?1 ORDER BY id",
            )
            .at(&self.label)?;
        let rows = stmt
            .query_map([id], |row| {
                Ok(OutboxEvent {
                    at: row.get(0)?,
                    from_state: row.get(1)?,
                    to_state: row.get(2)?,
                    detail: row.get(3)?,
                })
            })
            .at(&self.label)?;
        rows.collect::<Result<_, _>>().at(&self.label)
    }

    /// How many e-mails are in each state (every state listed, zeros
    /// included), and how many were resent after a crash.
    pub fn outbox_counts(&self) -> Result<(Vec<(OutboxState, u64)>, u64), StoreError> {
        let mut counts: Vec<(OutboxState, u64)> =
            OutboxState::ALL.iter().map(|state| (*state, 0)).collect();
        let stored: Vec<(String, u64)> = grouped_counts(
            &self.conn,
            "SELECT state, count(*) FROM outbox GROUP BY state",
        )
        .at(&self.label)?;
        for (state, count) in stored {
            if let Some(slot) = counts.iter_mut().find(|(s, _)| s.as_str() == state) {
                slot.1 = count;
            }
        }
        let recovered: i64 = self
            .conn
            .query_row(
                "SELECT coalesce(sum(recoveries), 0) FROM outbox",
                [],
                |row| row.get(0),
            )
            .at(&self.label)?;
        Ok((counts, recovered.unsigned_abs()))
    }

    /// How many messages of `channel` are in each state (every state listed, zeros included):
    /// `tiercare status` counts e-mails and SMS apart.
    pub fn channel_counts(&self, channel: Channel) -> Result<Vec<(OutboxState, u64)>, StoreError> {
        let mut counts: Vec<(OutboxState, u64)> =
            OutboxState::ALL.iter().map(|state| (*state, 0)).collect();
        let stored: Vec<(String, u64)> = self
            .conn
            .prepare_cached("SELECT state, count(*) FROM outbox WHERE channel = ?1 GROUP BY state")
            .and_then(|mut stmt| {
                stmt.query_map([channel.as_str()], |row| {
                    Ok((row.get(0)?, row.get::<_, i64>(1)?.unsigned_abs()))
                })?
                .collect()
            })
            .at(&self.label)?;
        for (state, count) in stored {
            if let Some(slot) = counts.iter_mut().find(|(s, _)| s.as_str() == state) {
                slot.1 = count;
            }
        }
        Ok(counts)
    }

    /// How many e-mails were sent at or after `since` (unix seconds): what
    /// rate limits count, across processes.
    pub fn sent_since(&self, since: i64) -> Result<u64, StoreError> {
        self.conn
            .prepare_cached(SENT_SINCE)
            .and_then(|mut stmt| stmt.query_row([since], |row| row.get::<_, i64>(0)))
            .map(i64::unsigned_abs)
            .at(&self.label)
    }

    /// How many SMS were sent at or after `since` (unix seconds): what the SMS
    /// providers' rate limits count, across processes.
    pub fn sms_sent_since(&self, since: i64) -> Result<u64, StoreError> {
        self.conn
            .prepare_cached(
                "SELECT count(*) FROM outbox WHERE +state = 'sent' AND sent_at >= ?1 \
                 AND +channel = 'sms'",
            )
            .and_then(|mut stmt| stmt.query_row([since], |row| row.get::<_, i64>(0)))
            .map(i64::unsigned_abs)
            .at(&self.label)
    }

    /// How many SMS are due at `now` and not yet claimed.
    pub fn sms_due_count(&self, now: i64) -> Result<u64, StoreError> {
        self.conn
            .prepare_cached(
                "SELECT count(*) FROM outbox WHERE state IN ('queued', 'deferred') \
                 AND due_at <= ?1 AND channel = 'sms'",
            )
            .and_then(|mut stmt| stmt.query_row([now], |row| row.get::<_, i64>(0)))
            .map(i64::unsigned_abs)
            .at(&self.label)
    }

    /// How many e-mails are due at `now` (`queued`, or `deferred` and due
    /// again) and not yet claimed.
    pub fn due_count(&self, now: i64) -> Result<u64, StoreError> {
        self.conn
            .prepare_cached(
                "SELECT count(*) FROM outbox WHERE state IN ('queued', 'deferred') \
                 AND due_at <= ?1 AND channel = 'email'",
            )
            .and_then(|mut stmt| stmt.query_row([now], |row| row.get::<_, i64>(0)))
            .map(i64::unsigned_abs)
            .at(&self.label)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limits_count_sent_rows_through_the_sent_at_index() {
        let store = Store::open_in_memory().unwrap();
        let plan: Vec<String> = store
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {SENT_SINCE}"))
            .unwrap()
            .query_map([0_i64], |row| row.get::<_, String>(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(
            plan.iter()
                .any(|step| step.contains("USING INDEX outbox_by_sent_at")),
            "{plan:?}"
        );
        assert!(
            !plan.iter().any(|step| step.starts_with("SCAN")),
            "{plan:?}"
        );
        assert_eq!(store.sent_since(0).unwrap(), 0);
    }
}
