//! Bounces and complaints: what came back after an e-mail was handed over.
//!
//! [`Store::record_bounce`] is the one way a bounce (a delivery status notification, a `5xx`
//! our relay answered after DATA, a provider's notification) or a complaint is recorded: in
//! one `IMMEDIATE` transaction it finds the e-mail, writes a `bounces` row (the address by
//! hash only), marks the e-mail (`outbox.bounced_at`, `outbox.bounce_kind`) and, by the
//! policy, puts the address on the suppression list with its reason: a hard bounce or a
//! complaint at once, soft bounces once [`SoftBouncePolicy::limit`] of them fell within
//! [`SoftBouncePolicy::window`] seconds. A notification carrying an `event_key` already
//! recorded (the same DSN piped twice, a webhook retried) changes nothing.

use std::fmt;

use rusqlite::{Connection, OptionalExtension, params};

use crate::address_keys::AddressKeys;
use crate::db::Store;
use crate::error::{AtPath, StoreError};
use crate::suppressions::{SuppressionReason, insert_address};

/// What came back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BounceKind {
    /// Permanent: the address does not take mail (RFC 3463 class 5, a `5xx`).
    Hard,
    /// Temporary: a full mailbox, a greylisting that gave up (class 4).
    Soft,
    /// The recipient reported the e-mail as spam (a provider's complaint notification).
    Complaint,
}

impl BounceKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            BounceKind::Hard => "hard",
            BounceKind::Soft => "soft",
            BounceKind::Complaint => "complaint",
        }
    }

    /// The kind with this stored name.
    pub fn parse(text: &str) -> Option<BounceKind> {
        [BounceKind::Hard, BounceKind::Soft, BounceKind::Complaint]
            .into_iter()
            .find(|kind| kind.as_str() == text)
    }
}

impl fmt::Display for BounceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// When soft bounces suppress an address: `limit` of them within `window` seconds (the one
/// being recorded included). Default: 3 within 30 days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SoftBouncePolicy {
    /// Soft bounces that suppress the address (at least 1).
    pub limit: u32,
    /// The window they are counted in, in seconds.
    pub window: i64,
}

impl Default for SoftBouncePolicy {
    fn default() -> Self {
        SoftBouncePolicy {
            limit: 3,
            window: 30 * 86_400,
        }
    }
}

/// A bounce or complaint to record. The e-mail is found by `outbox_id`, else by
/// `message_id`, else (for a provider that names only the recipient) as the latest e-mail
/// sent to `address`; the address suppressed is the e-mail's own, or `address` when no
/// e-mail matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewBounce<'a> {
    /// The outbox e-mail, when the notification names it (a verified VERP address, our own
    /// send loop).
    pub outbox_id: Option<i64>,
    /// The e-mail's Message-ID, angle brackets included or not.
    pub message_id: Option<&'a str>,
    /// The recipient's address, as the notification gives it. Only used when it comes from
    /// an authenticated source: a DSN without a matching e-mail is not recorded at all.
    pub address: Option<&'a str>,
    /// Hard, soft or complaint.
    pub kind: BounceKind,
    /// The RFC 3463 status (`5.1.1`) or the SMTP reply code.
    pub status: Option<&'a str>,
    /// The remote server's words (may quote the address: kept in the database only, erased
    /// when the customer is forgotten, never logged).
    pub diagnostic: Option<&'a str>,
    /// Where it came from: `dsn`, `smtp`, `postmark`, `mailgun`, `webhook`.
    pub source: &'a str,
    /// An id of the notification itself (a DSN's Message-ID, a provider's event id): the same
    /// key twice is recorded once.
    pub event_key: Option<&'a str>,
}

/// What [`Store::record_bounce`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct BounceOutcome {
    /// The e-mail it concerned, if one was found.
    pub outbox_id: Option<i64>,
    /// Whether anything was recorded: false when neither an e-mail nor an address was
    /// found, or for a notification already recorded ([`BounceOutcome::duplicate`]).
    pub recorded: bool,
    /// The same `event_key` was recorded before: nothing was written.
    pub duplicate: bool,
    /// Soft bounces of the address in the policy's window, this one included (soft only).
    pub soft_bounces: u64,
    /// The reason the address was put on the suppression list by this bounce (`None` when
    /// it was not, or was already listed).
    pub suppressed: Option<SuppressionReason>,
}

/// One recorded bounce, as `tiercare outbox show` lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Bounce {
    /// The e-mail.
    pub outbox_id: Option<i64>,
    /// Hard, soft or complaint.
    pub kind: BounceKind,
    /// The status code.
    pub status: Option<String>,
    /// The remote server's words (may quote the address).
    pub diagnostic: Option<String>,
    /// Where it came from.
    pub source: String,
    /// When it was recorded.
    pub at: i64,
}

/// Bounces and complaints recorded since a time, as `tiercare status` counts them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct BounceCounts {
    /// Hard bounces.
    pub hard: u64,
    /// Soft bounces.
    pub soft: u64,
    /// Complaints.
    pub complaints: u64,
    /// Addresses suppressed for bouncing or complaining (all time).
    pub suppressed: u64,
}

/// Finds the outbox e-mail of a bounce: `(id, to_address)`.
fn find_email(
    conn: &Connection,
    bounce: &NewBounce<'_>,
) -> rusqlite::Result<Option<(i64, String)>> {
    let row = |row: &rusqlite::Row<'_>| Ok((row.get(0)?, row.get(1)?));
    if let Some(id) = bounce.outbox_id {
        return conn
            .prepare_cached("SELECT id, to_address FROM outbox WHERE id = ?1")?
            .query_row([id], row)
            .optional();
    }
    if let Some(message_id) = bounce.message_id.map(str::trim).filter(|m| !m.is_empty()) {
        let bracketed = if message_id.starts_with('<') {
            message_id.to_owned()
        } else {
            format!("<{message_id}>")
        };
        let found = conn
            .prepare_cached("SELECT id, to_address FROM outbox WHERE message_id = ?1")?
            .query_row([bracketed], row)
            .optional()?;
        if found.is_some() {
            return Ok(found);
        }
    }
    match bounce.address.map(str::trim).filter(|a| !a.is_empty()) {
        Some(address) => conn
            .prepare_cached(OUTBOX_BY_ADDRESS)?
            .query_row([address], row)
            .optional(),
        None => Ok(None),
    }
}

/// The latest e-mail that went (or may have gone) to the address `?1`, case ignored; answered
/// by the partial expression index `outbox_sent_to_lower` (migration 22).
pub(crate) const OUTBOX_BY_ADDRESS: &str = "SELECT id, to_address FROM outbox \
     WHERE lower(to_address) = lower(?1) AND state IN ('sent', 'failed', 'unknown') \
     ORDER BY id DESC LIMIT 1";

impl Store {
    /// Records a bounce or complaint in one `IMMEDIATE` transaction (see the module docs):
    /// the `bounces` row, the e-mail marked, and the address suppressed when `policy` says
    /// so. An e-mail forgotten since (its address erased) is marked, and nothing is
    /// suppressed: its addresses were suppressed when it was forgotten.
    pub fn record_bounce(
        &mut self,
        bounce: &NewBounce<'_>,
        policy: SoftBouncePolicy,
        now: i64,
    ) -> Result<BounceOutcome, StoreError> {
        let path = self.label.clone();
        let path = path.as_path();
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .at(path)?;
        let keys = self.keys.clone();
        let outcome = record(&tx, bounce, &keys, policy, now).at(path)?;
        tx.commit().at(path)?;
        Ok(outcome)
    }

    /// The bounces and complaints recorded for the e-mail `id`, oldest first.
    pub fn bounces_of(&self, id: i64) -> Result<Vec<Bounce>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT outbox_id, kind, status, diagnostic, source, at FROM bounces \
                 WHERE outbox_id = ?1 ORDER BY id",
            )
            .at(&self.label)?;
        let rows = stmt
            .query_map([id], |row| {
                let kind: String = row.get(1)?;
                Ok(Bounce {
                    outbox_id: row.get(0)?,
                    kind: BounceKind::parse(&kind).ok_or_else(|| {
                        rusqlite::Error::FromSqlConversionFailure(
                            1,
                            rusqlite::types::Type::Text,
                            "unknown bounce kind".into(),
                        )
                    })?,
                    status: row.get(2)?,
                    diagnostic: row.get(3)?,
                    source: row.get(4)?,
                    at: row.get(5)?,
                })
            })
            .at(&self.label)?;
        rows.collect::<Result<_, _>>().at(&self.label)
    }

    /// The latest bounce of each of the e-mails `ids` that bounced: `(id, kind, status)`.
    pub fn bounce_marks(
        &self,
        ids: &[i64],
    ) -> Result<Vec<(i64, BounceKind, Option<String>)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT o.bounce_kind, (SELECT b.status FROM bounces b WHERE b.outbox_id = o.id \
                 ORDER BY b.id DESC LIMIT 1) FROM outbox o \
                 WHERE o.id = ?1 AND o.bounced_at IS NOT NULL",
            )
            .at(&self.label)?;
        let mut marks = Vec::new();
        for &id in ids {
            let found: Option<(String, Option<String>)> = stmt
                .query_row([id], |row| Ok((row.get(0)?, row.get(1)?)))
                .optional()
                .at(&self.label)?;
            if let Some((kind, status)) = found
                && let Some(kind) = BounceKind::parse(&kind)
            {
                marks.push((id, kind, status));
            }
        }
        Ok(marks)
    }

    /// Bounces and complaints recorded at or after `since`, and the addresses suppressed for
    /// bouncing or complaining.
    pub fn bounce_counts(&self, since: i64) -> Result<BounceCounts, StoreError> {
        self.conn
            .query_row(
                "SELECT count(*) FILTER (WHERE kind = 'hard'), \
                 count(*) FILTER (WHERE kind = 'soft'), \
                 count(*) FILTER (WHERE kind = 'complaint'), \
                 (SELECT count(*) FROM suppressions \
                  WHERE reason IN ('hard_bounce', 'soft_bounces', 'complaint')) \
                 FROM bounces WHERE at >= ?1",
                [since],
                |row| {
                    Ok(BounceCounts {
                        hard: row.get::<_, i64>(0)?.unsigned_abs(),
                        soft: row.get::<_, i64>(1)?.unsigned_abs(),
                        complaints: row.get::<_, i64>(2)?.unsigned_abs(),
                        suppressed: row.get::<_, i64>(3)?.unsigned_abs(),
                    })
                },
            )
            .at(&self.label)
    }
}

/// [`Store::record_bounce`] inside the caller's transaction (also used by the send loop's
/// `mark_hard_bounced`, so a `5xx` after DATA is recorded with the failure).
pub(crate) fn record(
    tx: &Connection,
    bounce: &NewBounce<'_>,
    keys: &AddressKeys,
    policy: SoftBouncePolicy,
    now: i64,
) -> rusqlite::Result<BounceOutcome> {
    let mut outcome = BounceOutcome::default();
    if let Some(key) = bounce.event_key {
        let seen = tx
            .prepare_cached("SELECT outbox_id FROM bounces WHERE event_key = ?1")?
            .query_row([key], |row| row.get::<_, Option<i64>>(0))
            .optional()?;
        if let Some(outbox_id) = seen {
            outcome.duplicate = true;
            outcome.outbox_id = outbox_id;
            return Ok(outcome);
        }
    }
    let email = find_email(tx, bounce)?;
    let address = match &email {
        Some((_, to_address)) => Some(to_address.as_str()),
        None => bounce.address,
    }
    .map(str::trim)
    .filter(|a| !a.is_empty());
    outcome.outbox_id = email.as_ref().map(|(id, _)| *id);
    let Some(address) = address else {
        if let Some(id) = outcome.outbox_id {
            // A forgotten customer's e-mail: marked, nothing to suppress.
            mark_email(tx, id, bounce.kind, now)?;
        }
        return Ok(outcome);
    };
    // Kept under the address's keyed hash, as the suppression list keeps it.
    let hash = keys.hash(address);
    tx.prepare_cached(
        "INSERT INTO bounces (outbox_id, address_hash, kind, status, diagnostic, source, \
         event_key, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        outcome.outbox_id,
        hash,
        bounce.kind.as_str(),
        bounce.status,
        bounce.diagnostic,
        bounce.source,
        bounce.event_key,
        now
    ])?;
    outcome.recorded = true;
    if let Some(id) = outcome.outbox_id {
        mark_email(tx, id, bounce.kind, now)?;
        // Other systems hear of it (`email.bounced`), in the same transaction.
        crate::webhooks::email_bounced(tx, id, now)?;
    }
    let reason = match bounce.kind {
        BounceKind::Hard => Some(SuppressionReason::HardBounce),
        BounceKind::Complaint => Some(SuppressionReason::Complaint),
        BounceKind::Soft => {
            // Counted under every hash the address may have had (the previous key, legacy rows).
            let lookups =
                serde_json::to_string(&keys.lookups(address)).unwrap_or_else(|_| "[]".into());
            outcome.soft_bounces = tx
                .prepare_cached(
                    "SELECT count(*) FROM bounces WHERE kind = 'soft' AND at > ?2 \
                     AND address_hash IN (SELECT value FROM json_each(?1))",
                )?
                .query_row(params![lookups, now.saturating_sub(policy.window)], |row| {
                    row.get::<_, i64>(0)
                })?
                .unsigned_abs();
            (outcome.soft_bounces >= u64::from(policy.limit.max(1)))
                .then_some(SuppressionReason::SoftBounces)
        }
    };
    if let Some(reason) = reason {
        let source = match outcome.outbox_id {
            Some(id) => format!("{}:outbox:{id}", bounce.source),
            None => bounce.source.to_owned(),
        };
        if insert_address(tx, keys, address, reason, &source, now)? {
            outcome.suppressed = Some(reason);
        }
    }
    Ok(outcome)
}

/// Marks the e-mail `id` as bounced (the latest kind wins).
fn mark_email(conn: &Connection, id: i64, kind: BounceKind, now: i64) -> rusqlite::Result<()> {
    conn.prepare_cached("UPDATE outbox SET bounced_at = ?2, bounce_kind = ?3 WHERE id = ?1")?
        .execute(params![id, now, kind.as_str()])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bounce_without_a_message_id_finds_its_email_through_an_index_not_a_scan() {
        let store = Store::open_in_memory().unwrap();
        let plan = store.query_plan(OUTBOX_BY_ADDRESS);
        assert!(plan.contains("USING INDEX outbox_sent_to_lower"), "{plan}");
    }
}
