//! Manual tier pins: an account manager sets a customer's tier by hand, with
//! a reason, optionally until a given time.
//!
//! A pin is *active* while it has not been removed and its `until` (if any)
//! is later than now. A customer has at most one active pin: pinning again
//! removes the previous one, in the same transaction. The store only keeps
//! pins; the next assessment applies them (see [`Store::active_pins`]).

use std::collections::HashMap;

use rusqlite::{OptionalExtension, Row, TransactionBehavior, params};

use crate::db::Store;
use crate::error::{AtPath, PinProblem, StoreError};
use crate::stored::require_customer;

/// A manual tier pin.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Pin {
    /// The tier the customer is pinned to.
    pub tier: String,
    /// Why (required).
    pub reason: String,
    /// Who pinned it.
    pub pinned_by: String,
    /// When it was pinned, unix seconds UTC.
    pub created_at: i64,
    /// When it stops applying by itself, if it does.
    pub until: Option<i64>,
    /// When it was removed: by hand, or because a newer pin replaced it (a
    /// pin that had already expired when it was replaced records its
    /// `until`).
    pub removed_at: Option<i64>,
}

impl Pin {
    /// Whether the pin applies at `now`: not removed, and not expired.
    pub fn is_active(&self, now: i64) -> bool {
        self.removed_at.is_none() && self.until.is_none_or(|until| until > now)
    }
}

/// The columns [`pin_from_row`] reads, in order, from the first.
const PIN_COLUMNS: &str = "tier, reason, pinned_by, created_at, until, removed_at";

fn pin_from_row(row: &Row<'_>) -> rusqlite::Result<Pin> {
    Ok(Pin {
        tier: row.get(0)?,
        reason: row.get(1)?,
        pinned_by: row.get(2)?,
        created_at: row.get(3)?,
        until: row.get(4)?,
        removed_at: row.get(5)?,
    })
}

impl Store {
    /// Pins the tier of the customer with `external_id` at `now`, until
    /// `until` if given, replacing (removing) the customer's previous pin.
    ///
    /// Refused with [`StoreError::InvalidPin`] when the tier, the reason or
    /// `pinned_by` is empty, or `until` is not after `now`; an unknown
    /// customer is [`StoreError::UnknownCustomer`].
    pub fn pin_tier(
        &mut self,
        external_id: &str,
        tier: &str,
        reason: &str,
        pinned_by: &str,
        until: Option<i64>,
        now: i64,
    ) -> Result<Pin, StoreError> {
        let audit = self.pending_audit.take();
        let path = self.label.as_path();
        let refuse = |problem: PinProblem| StoreError::InvalidPin {
            id: external_id.to_owned(),
            problem,
        };
        let tier = tier.trim();
        let reason = reason.trim();
        let pinned_by = pinned_by.trim();
        if tier.is_empty() {
            return Err(refuse(PinProblem::EmptyTier));
        }
        if reason.is_empty() {
            return Err(refuse(PinProblem::NoReason));
        }
        if pinned_by.is_empty() {
            return Err(refuse(PinProblem::NoPinner));
        }
        if let Some(until) = until.filter(|&until| until <= now) {
            return Err(refuse(PinProblem::EndNotAfterNow { until, now }));
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .at(path)?;
        let rowid = require_customer(&tx, path, external_id)?;
        // Close the open pin, if any: removed now if it still applied, at its
        // own end if it had expired.
        tx.execute(
            "UPDATE tier_pins SET removed_at = \
             CASE WHEN until IS NOT NULL AND until <= ?2 THEN until ELSE ?2 END \
             WHERE customer_id = ?1 AND removed_at IS NULL",
            params![rowid, now],
        )
        .at(path)?;
        tx.execute(
            "INSERT INTO tier_pins (customer_id, tier, reason, pinned_by, created_at, until) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![rowid, tier, reason, pinned_by, now, until],
        )
        .at(path)?;
        crate::staff_users::write_audit(&tx, audit).at(path)?;
        tx.commit().at(path)?;
        Ok(Pin {
            tier: tier.to_owned(),
            reason: reason.to_owned(),
            pinned_by: pinned_by.to_owned(),
            created_at: now,
            until,
            removed_at: None,
        })
    }

    /// Removes the active pin of the customer with `external_id` at `now`
    /// and returns it (with `removed_at` set); `None` when the customer has
    /// no active pin. An unknown customer is [`StoreError::UnknownCustomer`].
    pub fn unpin_tier(&mut self, external_id: &str, now: i64) -> Result<Option<Pin>, StoreError> {
        let audit = self.pending_audit.take();
        let path = self.label.as_path();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .at(path)?;
        let rowid = require_customer(&tx, path, external_id)?;
        let removed = tx
            .query_row(
                &format!(
                    "UPDATE tier_pins SET removed_at = ?2 WHERE customer_id = ?1 \
                     AND removed_at IS NULL AND (until IS NULL OR until > ?2) \
                     RETURNING {PIN_COLUMNS}"
                ),
                params![rowid, now],
                pin_from_row,
            )
            .optional()
            .at(path)?;
        if removed.is_some() {
            crate::staff_users::write_audit(&tx, audit).at(path)?;
        }
        tx.commit().at(path)?;
        Ok(removed)
    }

    /// Every pin active at `now`, by customer rowid.
    pub fn active_pins(&self, now: i64) -> Result<HashMap<i64, Pin>, StoreError> {
        self.conn
            .prepare_cached(&format!(
                "SELECT {PIN_COLUMNS}, customer_id FROM tier_pins \
                 WHERE removed_at IS NULL AND (until IS NULL OR until > ?1)"
            ))
            .and_then(|mut stmt| {
                stmt.query_map([now], |row| Ok((row.get(6)?, pin_from_row(row)?)))?
                    .collect()
            })
            .at(&self.label)
    }

    /// Every pin of the customer with `external_id`, newest first, removed
    /// and expired ones included. An unknown customer is
    /// [`StoreError::UnknownCustomer`].
    pub fn pins_of(&self, external_id: &str) -> Result<Vec<Pin>, StoreError> {
        self.rows_of_customer(
            external_id,
            &format!(
                "SELECT {PIN_COLUMNS} FROM tier_pins WHERE customer_id = ?1 \
                 ORDER BY created_at DESC, id DESC"
            ),
            pin_from_row,
        )
    }
}
