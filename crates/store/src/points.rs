//! The points ledger: points earned (by follow-up rules) and spent (by imported orders with
//! `points_spent`), one row per entry, keyed by its source so that recording it again changes
//! nothing.
//!
//! # The balance
//!
//! [`balance`] replays a customer's entries in time order (ties: the order they were recorded):
//! an earned entry is a lot that expires at its `expires_at` (if any); a spent entry uses the
//! lots that expire soonest first (lots that never expire last; ties: the oldest); a lot past
//! its expiry is gone, whatever was left of it. Spending more than the balance leaves it at 0
//! (the shop's own system decides what may be spent; tiercare records it). The balance at `at`
//! is what is left of the lots recorded at or before `at` and not expired by `at`.

use rusqlite::{Connection, params};

use crate::db::Store;
use crate::error::{AtPath, StoreError};

/// One entry of the ledger.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PointsEntry {
    /// Its source (`followup:<id>`, `order:<id>`).
    pub source: String,
    /// When, unix seconds UTC.
    pub at: i64,
    /// Points: positive earned, negative spent.
    pub amount: f64,
    /// When earned points expire, if they do.
    pub expires_at: Option<i64>,
    /// The follow-up rule that earned them, if one did.
    pub rule_id: Option<String>,
}

/// Books `amount` points for the customer with rowid `customer` at `at`, keyed by `source`:
/// recording the same source again replaces its amount and time (an order imported again with
/// another `points_spent`), or changes nothing.
pub(crate) fn book(
    conn: &Connection,
    customer: i64,
    source: &str,
    at: i64,
    amount: f64,
    expires_at: Option<i64>,
    rule_id: Option<&str>,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO points (customer_id, source, at, amount, expires_at, rule_id) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
         ON CONFLICT (source) DO UPDATE SET customer_id = excluded.customer_id, \
         at = excluded.at, amount = excluded.amount, expires_at = excluded.expires_at",
    )?
    .execute(params![customer, source, at, amount, expires_at, rule_id])?;
    Ok(())
}

/// The balance at `at` of the entries `(at, amount, expires_at)`, given in time order (see
/// the module's documentation).
#[must_use]
pub fn balance(entries: &[(i64, f64, Option<i64>)], at: i64) -> f64 {
    // Lots: (expires_at, remaining).
    let mut lots: Vec<(Option<i64>, f64)> = Vec::new();
    for &(when, amount, expires_at) in entries {
        if when > at {
            break;
        }
        lots.retain(|(expiry, _)| expiry.is_none_or(|expiry| expiry > when));
        if amount > 0.0 {
            lots.push((expires_at, amount));
            continue;
        }
        let mut to_spend = -amount;
        // Soonest expiry first; never-expiring last; ties: the oldest (a stable sort).
        lots.sort_by_key(|(expiry, _)| expiry.unwrap_or(i64::MAX));
        for (_, remaining) in &mut lots {
            let used = remaining.min(to_spend);
            *remaining -= used;
            to_spend -= used;
            if to_spend <= 0.0 {
                break;
            }
        }
        lots.retain(|(_, remaining)| *remaining > 0.0);
    }
    lots.iter()
        .filter(|(expiry, _)| expiry.is_none_or(|expiry| expiry > at))
        .map(|(_, remaining)| remaining)
        .fold(0.0, |sum, remaining| sum + remaining)
}

impl Store {
    /// The points entries of the customer with `external_id`, in time order.
    pub fn points_of(&self, external_id: &str) -> Result<Vec<PointsEntry>, StoreError> {
        self.rows_of_customer(
            external_id,
            "SELECT source, at, amount, expires_at, rule_id FROM points WHERE customer_id = ?1 \
             ORDER BY at, id",
            |row| {
                Ok(PointsEntry {
                    source: row.get(0)?,
                    at: row.get(1)?,
                    amount: row.get(2)?,
                    expires_at: row.get(3)?,
                    rule_id: row.get(4)?,
                })
            },
        )
    }

    /// Books `amount` points earned at `at` by the customer with `external_id`, keyed by
    /// `source` (booking the same source again changes nothing new), expiring at `expires_at`,
    /// in one `IMMEDIATE` transaction.
    pub fn earn_points(
        &mut self,
        external_id: &str,
        source: &str,
        at: i64,
        amount: f64,
        expires_at: Option<i64>,
    ) -> Result<(), StoreError> {
        let path = self.label.as_path();
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .at(path)?;
        let rowid = crate::stored::require_customer(&tx, path, external_id)?;
        book(&tx, rowid, source, at, amount, expires_at, None).at(path)?;
        tx.commit().at(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spending_uses_the_soonest_expiring_points_and_expired_points_are_gone() {
        // 100 expiring at 50, 40 never expiring; spend 30 at 10 (from the first lot).
        let entries = [(0, 100.0, Some(50)), (5, 40.0, None), (10, -30.0, None)];
        assert_eq!(balance(&entries, 10), 110.0);
        assert_eq!(balance(&entries, 49), 110.0);
        assert_eq!(balance(&entries, 50), 40.0, "the first lot's 70 expired");
        // Overspending leaves 0, not a debt.
        assert_eq!(balance(&[(0, 10.0, None), (1, -25.0, None)], 2), 0.0);
        // Entries after `at` do not count.
        assert_eq!(balance(&entries, 4), 100.0);
    }
}
