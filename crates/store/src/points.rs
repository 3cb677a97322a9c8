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

/// How an imported order earns points (`[points]` in `tiercare.toml`): `per_order` for each
/// order with a positive amount, plus `per_currency_unit` per unit of its amount, rounded by
/// `rounding`; earned points expire `expires_after` seconds after the order, if set.
///
/// The entry is keyed by the order (`earned:order:<id>`): importing the order again books
/// nothing new, and an order imported again with another amount has its entry adjusted to the
/// new amount (removed when it earns nothing).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OrderPoints {
    /// Points for every order (with a positive amount).
    pub per_order: f64,
    /// Points per unit of the order's amount.
    pub per_currency_unit: f64,
    /// How fractions of a point are rounded.
    pub rounding: PointsRounding,
    /// Seconds after the order when its points expire; `None`: never.
    pub expires_after: Option<i64>,
}

/// How [`OrderPoints`] rounds a fraction of a point.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PointsRounding {
    /// Down (12.9 earns 12): the default.
    #[default]
    Down,
    /// To the nearest point, halves up (12.5 earns 13).
    Nearest,
    /// Up (12.1 earns 13).
    Up,
}

impl OrderPoints {
    /// The points an order of `amount` earns (0 for an amount that is not positive).
    #[must_use]
    pub fn for_amount(&self, amount: f64) -> f64 {
        if amount.is_nan() || amount <= 0.0 {
            return 0.0;
        }
        let raw = self.per_order + self.per_currency_unit * amount;
        // Binary fractions of decimal rates (0.29 × 100 = 28.999…) rounded to a millionth
        // first, so that a whole number of points stays whole.
        let raw = (raw * 1e6).round() / 1e6;
        let points = match self.rounding {
            PointsRounding::Down => raw.floor(),
            PointsRounding::Nearest => raw.round(),
            PointsRounding::Up => raw.ceil(),
        };
        if points.is_finite() && points > 0.0 {
            points
        } else {
            0.0
        }
    }

    /// The points a refund of `amount` (negative) takes back, as a negative number: the
    /// per-unit points of the refunded amount, rounded as earned points are (a refund is not an
    /// order, so `per_order` is not taken back: tiercare cannot tell a whole refund from a
    /// partial one); 0 for an amount that is not negative.
    #[must_use]
    pub fn for_refund(&self, amount: f64) -> f64 {
        if amount.is_nan() || amount >= 0.0 {
            return 0.0;
        }
        let per_unit = OrderPoints {
            per_order: 0.0,
            ..*self
        };
        -per_unit.for_amount(-amount)
    }
}

/// Books (or adjusts, or removes) the points the order `order` of the customer with rowid
/// `customer`, at `at` for `amount`, earns under `earning`: a refund (a negative amount) takes
/// back [`OrderPoints::for_refund`] points, an entry that never expires.
pub(crate) fn book_order_earning(
    conn: &Connection,
    earning: &OrderPoints,
    customer: i64,
    order: &str,
    at: i64,
    amount: f64,
) -> rusqlite::Result<()> {
    let source = format!("earned:order:{order}");
    let points = earning.for_amount(amount);
    let taken_back = earning.for_refund(amount);
    if points > 0.0 {
        let expires_at = earning.expires_after.map(|after| at.saturating_add(after));
        book(conn, customer, &source, at, points, expires_at, None)
    } else if taken_back < 0.0 {
        book(conn, customer, &source, at, taken_back, None, None)
    } else {
        conn.prepare_cached("DELETE FROM points WHERE source = ?1")?
            .execute([source])?;
        Ok(())
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

    #[test]
    fn an_order_earns_per_order_plus_per_unit_rounded_as_set() {
        let mut earning = OrderPoints {
            per_order: 5.0,
            per_currency_unit: 0.29,
            rounding: PointsRounding::Down,
            expires_after: None,
        };
        // 0.29 × 100 is 28.999… in binary: still 29.
        assert_eq!(earning.for_amount(100.0), 34.0);
        assert_eq!(earning.for_amount(10.0), 7.0, "5 + 2.9 down");
        assert_eq!(earning.for_amount(0.0), 0.0);
        assert_eq!(earning.for_amount(-40.0), 0.0, "a refund earns nothing");
        assert_eq!(
            earning.for_refund(-40.0),
            -11.0,
            "it takes back 0.29 × 40 = 11.6 down, without the per-order 5"
        );
        assert_eq!(earning.for_refund(40.0), 0.0);
        assert_eq!(earning.for_refund(f64::NAN), 0.0);
        earning.rounding = PointsRounding::Nearest;
        assert_eq!(earning.for_amount(10.0), 8.0);
        earning.rounding = PointsRounding::Up;
        assert_eq!(earning.for_amount(1.0), 6.0, "5 + 0.29 up");
    }
}
