//! The incentive features of the features pass: `points_balance`, `coupons_open` and
//! `coupon_redeemed_days_ago`, from one scan each of the issued coupons and the points ledger
//! (both small next to the orders), kept only for the customers who have any.

use std::collections::HashMap;

use rusqlite::Connection;

/// One customer's incentive features at the pass's time.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct IncentiveTotals {
    /// points_balance.
    pub(crate) points_balance: f64,
    /// coupons_open.
    pub(crate) coupons_open: i64,
    /// The latest redemption <= at.
    pub(crate) last_redeemed_at: Option<i64>,
}

/// Every customer's (of rowids `low..=high`) incentive totals at `at`, by the slot `slot_of`
/// gives a rowid; customers without coupons or points are absent.
pub(crate) fn scan_incentives(
    conn: &Connection,
    slot_of: &dyn Fn(i64) -> Option<usize>,
    at: i64,
    low: i64,
    high: i64,
) -> rusqlite::Result<HashMap<usize, IncentiveTotals>> {
    let mut totals: HashMap<usize, IncentiveTotals> = HashMap::new();
    {
        let mut stmt = conn.prepare(
            "SELECT customer_id, expires_at, redeemed_at FROM coupons \
             WHERE customer_id BETWEEN ?1 AND ?2 AND issued_at <= ?3",
        )?;
        let mut rows = stmt.query([low, high, at])?;
        while let Some(row) = rows.next()? {
            let Some(slot) = slot_of(row.get(0)?) else {
                continue;
            };
            let expires_at: Option<i64> = row.get(1)?;
            let redeemed_at: Option<i64> = row.get(2)?;
            let entry = totals.entry(slot).or_default();
            match redeemed_at.filter(|&redeemed| redeemed <= at) {
                Some(redeemed) => {
                    entry.last_redeemed_at = entry.last_redeemed_at.max(Some(redeemed));
                }
                None if expires_at.is_none_or(|expiry| expiry > at) => entry.coupons_open += 1,
                None => {}
            }
        }
    }
    let mut stmt = conn.prepare(
        "SELECT customer_id, at, amount, expires_at FROM points \
         WHERE customer_id BETWEEN ?1 AND ?2 AND at <= ?3 ORDER BY customer_id, at, id",
    )?;
    let mut rows = stmt.query([low, high, at])?;
    let mut current: Option<i64> = None;
    let mut entries: Vec<(i64, f64, Option<i64>)> = Vec::new();
    let mut flush = |customer: Option<i64>, entries: &mut Vec<(i64, f64, Option<i64>)>| {
        if let Some(slot) = customer.and_then(slot_of) {
            totals.entry(slot).or_default().points_balance = crate::points::balance(entries, at);
        }
        entries.clear();
    };
    while let Some(row) = rows.next()? {
        let customer: i64 = row.get(0)?;
        if current != Some(customer) {
            flush(current, &mut entries);
            current = Some(customer);
        }
        entries.push((row.get(1)?, row.get(2)?, row.get(3)?));
    }
    flush(current, &mut entries);
    Ok(totals)
}
