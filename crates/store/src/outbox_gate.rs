//! The store's half of the delivery gate: what the gate reads about a claimed e-mail and its
//! customer (the follow-up's times, the e-mails actually sent, the tier a change entered), and
//! its three outcomes besides sending: **defer** by the contact policy (back to `deferred`, due
//! at the next allowed time, the attempt its claim counted given back), **cancel** because the
//! e-mail is no longer true or stale (`cancelled`, its follow-up cancelled with the reason), and
//! **refresh** the rendered text just before it goes out (same Message-ID). Each state change is
//! one `IMMEDIATE` transaction with its `outbox_events` row.

use rusqlite::{OptionalExtension, TransactionBehavior, params};

use crate::db::Store;
use crate::error::{AtPath, StoreError};
use crate::outbox::{OutboxState, event, sync_followup};
use tiercare_types::Channel;

/// The prefix of the reason of an e-mail the gate cancelled as stale (past its `max_delay`);
/// the report counts cancelled e-mails by it.
pub const STALE_PREFIX: &str = "stale:";

/// The prefix of the reason of an e-mail the gate cancelled because its follow-up no longer
/// holds (a new order after a win-back was queued, a downgrade after an upgrade welcome).
pub const UNTRUE_PREFIX: &str = "no longer true:";

impl Store {
    /// The occurrence and scheduled times (unix seconds) of the follow-up that decided the
    /// e-mail `id`; `None` for an e-mail without one.
    pub fn email_followup_times(&self, id: i64) -> Result<Option<(i64, i64)>, StoreError> {
        self.conn
            .prepare_cached(
                "SELECT f.occurrence_at, f.scheduled_at FROM outbox o \
                 JOIN followups f ON f.id = o.followup_id WHERE o.id = ?1",
            )
            .and_then(|mut stmt| {
                stmt.query_row([id], |row| Ok((row.get(0)?, row.get(1)?)))
                    .optional()
            })
            .at(&self.label)
    }

    /// When e-mails to the customer with `external_id` (not to their owner) actually went
    /// out, oldest first: `sent` ones at their sending time, and `unknown` ones (handed over,
    /// they may have arrived) at their last claim.
    pub fn customer_emails_sent(&self, external_id: &str) -> Result<Vec<i64>, StoreError> {
        self.customer_messages_sent(external_id, Channel::Email)
    }

    /// [`Store::customer_emails_sent`] for the messages of `channel`: the contact policy
    /// counts each channel's on its own.
    pub fn customer_messages_sent(
        &self,
        external_id: &str,
        channel: Channel,
    ) -> Result<Vec<i64>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT CASE o.state WHEN 'sent' THEN o.sent_at ELSE o.claimed_at END AS at \
                 FROM outbox o JOIN customers c ON c.id = o.customer_id \
                 WHERE c.external_id = ?1 AND o.recipient_kind = 'customer' \
                 AND o.channel = ?2 \
                 AND o.state IN ('sent', 'unknown') AND at IS NOT NULL ORDER BY at",
            )
            .at(&self.label)?;
        let rows = stmt
            .query_map(params![external_id, channel.as_str()], |row| row.get(0))
            .at(&self.label)?;
        rows.collect::<Result<_, _>>().at(&self.label)
    }

    /// The tier the customer with `external_id` was moved to by the tier change recorded at
    /// `at` (`Some(None)`: to no tier); `None` when no change was recorded then.
    pub fn tier_entered_at(
        &self,
        external_id: &str,
        at: i64,
    ) -> Result<Option<Option<String>>, StoreError> {
        self.conn
            .prepare_cached(
                "SELECT h.to_tier FROM tier_history h JOIN customers c ON c.id = h.customer_id \
                 WHERE c.external_id = ?1 AND h.at = ?2 ORDER BY h.id DESC LIMIT 1",
            )
            .and_then(|mut stmt| stmt.query_row(params![external_id, at], |row| row.get(0)))
            .optional()
            .at(&self.label)
    }

    /// Holds the claimed e-mail `id` back by the contact policy: `deferred`, due at `until`,
    /// with `reason` as its last error and event, and the attempt its claim counted given back
    /// (a policy hold is not a failed attempt). Fails with [`StoreError::EmailState`] if it is
    /// not claimed.
    pub fn defer_by_policy(
        &mut self,
        id: i64,
        now: i64,
        until: i64,
        reason: &str,
    ) -> Result<(), StoreError> {
        self.gate_outcome(id, now, OutboxState::Deferred, Some(until), reason)
    }

    /// Cancels the claimed e-mail `id` because it is stale or no longer true: `cancelled`, with
    /// `reason` as its last error and event and its follow-up cancelled with it; the attempt
    /// its claim counted is given back. Fails with [`StoreError::EmailState`] if it is not
    /// claimed.
    pub fn cancel_by_gate(&mut self, id: i64, now: i64, reason: &str) -> Result<(), StoreError> {
        self.gate_outcome(id, now, OutboxState::Cancelled, None, reason)
    }

    fn gate_outcome(
        &mut self,
        id: i64,
        now: i64,
        to: OutboxState,
        due_at: Option<i64>,
        reason: &str,
    ) -> Result<(), StoreError> {
        let path = self.label.as_path();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .at(path)?;
        let changed = tx
            .prepare_cached(
                "UPDATE outbox SET state = ?2, updated_at = ?3, last_error = ?4, \
                 due_at = coalesce(?5, due_at), attempts = max(attempts - 1, 0) \
                 WHERE id = ?1 AND state = 'claimed'",
            )
            .and_then(|mut stmt| stmt.execute(params![id, to.as_str(), now, reason, due_at]))
            .at(path)?;
        if changed != 1 {
            return Err(StoreError::EmailState {
                id,
                state: "not claimed".to_owned(),
                wanted: "held or cancelled by the delivery gate",
                hint: "only a claimed e-mail goes through the gate",
            });
        }
        event(&tx, id, now, Some(OutboxState::Claimed), to, Some(reason)).at(path)?;
        sync_followup(&tx, id, to, now, reason).at(path)?;
        tx.commit().at(path)
    }

    /// Replaces the rendered parts of the claimed e-mail `id` by a rendering made just before
    /// it goes out (its Message-ID stays), so the outbox holds what was sent.
    pub fn refresh_rendering(
        &mut self,
        id: i64,
        now: i64,
        subject: &str,
        text: &str,
        html: Option<&str>,
    ) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "UPDATE outbox SET subject = ?2, body_text = ?3, body_html = ?4, updated_at = ?5 \
                 WHERE id = ?1 AND state = 'claimed'",
            )
            .and_then(|mut stmt| stmt.execute(params![id, subject, text, html, now]))
            .at(&self.label)?;
        Ok(())
    }
}
