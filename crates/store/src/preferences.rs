//! What a recipient may change from an e-mail's link: the suppression of the
//! address (see the `suppressions` module) and the customer's consents.
//!
//! A link names the outbox e-mail it came in; [`Store::link_recipient`]
//! finds the customer it went to, and [`Store::set_consents`] turns their
//! e-mail or SMS consent off (or on) in one `IMMEDIATE` transaction.

use rusqlite::{OptionalExtension, TransactionBehavior, params};

use crate::db::Store;
use crate::error::{AtPath, StoreError};

/// The customer an outbox e-mail went to, as they stand now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkRecipient {
    /// The customer's row id.
    pub customer: i64,
    /// The address the e-mail went to.
    pub sent_to: String,
    /// The customer's address now (`None` when they have none).
    pub address: Option<String>,
    /// Whether the customer consents to e-mail.
    pub consent_email: bool,
    /// Whether the customer consents to text messages.
    pub consent_sms: bool,
}

impl Store {
    /// The customer the outbox e-mail `outbox_id` went to, or `None` for an
    /// unknown e-mail, one to an owner, or one whose customer was forgotten.
    pub fn link_recipient(&self, outbox_id: i64) -> Result<Option<LinkRecipient>, StoreError> {
        self.conn
            .prepare_cached(
                "SELECT c.id, o.to_address, c.email, c.consent_email, c.consent_sms \
                 FROM outbox o JOIN customers c ON c.id = o.customer_id \
                 WHERE o.id = ?1 AND o.recipient_kind = 'customer'",
            )
            .and_then(|mut stmt| {
                stmt.query_row([outbox_id], |row| {
                    Ok(LinkRecipient {
                        customer: row.get(0)?,
                        sent_to: row.get(1)?,
                        address: row.get(2)?,
                        consent_email: row.get::<_, i64>(3)? == 1,
                        consent_sms: row.get::<_, i64>(4)? == 1,
                    })
                })
                .optional()
            })
            .at(&self.label)
    }

    /// Sets the consents of the customer with row id `customer` (`None`
    /// leaves one as it is), in one `IMMEDIATE` transaction. Returns whether
    /// the customer exists.
    ///
    /// Turning e-mail off also puts the customer's address on the suppression
    /// list (reason `unsubscribe`, source `preferences`, and the
    /// `customer.unsubscribed` webhook event), in the same transaction: the
    /// consent column is the shop's to import, and a later import of the shop's
    /// export (still saying `true`) must not undo what the customer asked here.
    pub fn set_consents(
        &mut self,
        customer: i64,
        email: Option<bool>,
        sms: Option<bool>,
        now: i64,
    ) -> Result<bool, StoreError> {
        let path = self.label.as_path();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .at(path)?;
        let changed = tx
            .execute(
                "UPDATE customers SET consent_email = coalesce(?2, consent_email), \
                 consent_sms = coalesce(?3, consent_sms), updated_at = ?4 WHERE id = ?1",
                params![customer, email.map(i64::from), sms.map(i64::from), now],
            )
            .at(path)?;
        if changed == 1 && email == Some(false) {
            let address: Option<String> = tx
                .query_row(
                    "SELECT email FROM customers WHERE id = ?1",
                    [customer],
                    |row| row.get(0),
                )
                .at(path)?;
            if let Some(address) = address.filter(|a| !a.trim().is_empty()) {
                let new = crate::suppressions::insert_address(
                    &tx,
                    &self.keys,
                    &address,
                    crate::suppressions::SuppressionReason::Unsubscribe,
                    "preferences",
                    now,
                )
                .at(path)?;
                if new {
                    crate::webhooks::customer_unsubscribed(&tx, customer, "preferences", now)
                        .at(path)?;
                }
            }
        }
        tx.commit().at(path)?;
        Ok(changed == 1)
    }
}
