//! One customer's features without the population's sorts: what `explain`, the staff customer
//! page and `preview` need.
//!
//! The population-dependent features (revenue rank, shares and percentile, the R, F and M
//! quintile scores) are the full pass's, bit for bit, from:
//!
//! - every customer's order totals, summed by the full pass's own scan of the orders (the same
//!   two halves, each in rowid order, then added), into a table indexed by rowid: the one
//!   pass over everyone that is left, because a share is a sum of floating-point numbers in
//!   rank order and no index holds one;
//! - counts instead of sorts: customers with a larger, smaller or equal revenue, scored
//!   customers with a worse recency, frequency or revenue;
//! - one sort of the non-zero revenues (zeros add nothing to a sum), summed in rank order up
//!   to the customer and to the end, as the full pass sums them;
//! - the ties: the customers before this one in external-id order (a range of the unique
//!   index) that have the same revenue, read only when another customer has it.
//!
//! The customer's own interactions, complaints, feedback and incentives are read for them
//! alone, as before. Everything is read in the caller's read transaction, so it is never older
//! than the data: there is nothing cached to go stale.

use rusqlite::Connection;

use super::{
    EventTotals, OrderTotals, Population, Quintiles, Rank, Slots, WindowStart, order_halves,
    scan_complaints, scan_feedback, scan_interactions, scan_orders,
};
use crate::features::Window;

/// The population figures of the customer with rowid `rowid` at `at`, as a [`Population`] of
/// that one customer (emit it with `only = Some(rowid)`); `None` when the rowids are too
/// sparse for a table indexed by rowid (the caller then runs the full pass).
pub(super) fn compute(
    conn: &Connection,
    at: i64,
    window: Window,
    rowid: i64,
) -> rusqlite::Result<Option<Population>> {
    let start = window.start(at);
    let (count, max): (i64, Option<i64>) =
        conn.query_row("SELECT count(*), max(id) FROM customers", [], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })?;
    let customers = usize::try_from(count).unwrap_or(0);
    // A table of `max + 1` entries, slot = rowid, as `Slots::new` would choose for these
    // rowids (dense enough); otherwise the full pass.
    let Some(size) = max
        .and_then(|max| usize::try_from(max).ok())
        .filter(|&max| max <= 4 * customers + 1024 && rowid >= 0)
        .map(|max| max + 1)
    else {
        return Ok(None);
    };
    let Ok(own) = usize::try_from(rowid) else {
        return Ok(None);
    };
    let identity = Slots::Direct {
        table: (0..size)
            .map(|slot| u32::try_from(slot).unwrap_or(u32::MAX))
            .collect(),
    };

    // The same sums as the full pass: two halves, each in rowid order, then added.
    let (first, second) = order_halves(conn)?;
    let mut orders = vec![OrderTotals::default(); size];
    let mut later = vec![OrderTotals::default(); size];
    scan_orders(conn, &identity, &mut orders, at, start, first)?;
    scan_orders(conn, &identity, &mut later, at, start, second)?;
    for (total, part) in orders.iter_mut().zip(&later) {
        total.add(part);
    }
    drop(later);
    drop(identity);
    let Some(&totals) = orders.get(own) else {
        return Ok(None);
    };

    // The Pareto ranking, by counting. Rowids without a customer have no orders, so every
    // slot with an order is a customer's, and the customers without a non-zero revenue are
    // the rest of `customers`.
    let revenue = totals.revenue_window + 0.0;
    let mut non_zero: Vec<f64> = Vec::new();
    let (mut greater, mut lower, mut equal) = (0_usize, 0_usize, 0_usize);
    let mut scored: Vec<usize> = Vec::new();
    for (slot, t) in orders.iter().enumerate() {
        let value = t.revenue_window + 0.0;
        if value != 0.0 {
            non_zero.push(value);
            match value.total_cmp(&revenue) {
                std::cmp::Ordering::Greater => greater += 1,
                std::cmp::Ordering::Less => lower += 1,
                std::cmp::Ordering::Equal => equal += 1,
            }
        }
        if t.orders_total > 0 {
            scored.push(slot);
        }
    }
    let zeros = customers.saturating_sub(non_zero.len());
    match 0.0_f64.total_cmp(&revenue) {
        std::cmp::Ordering::Greater => greater += zeros,
        std::cmp::Ordering::Less => lower += zeros,
        std::cmp::Ordering::Equal => equal += zeros,
    }
    // The others with the same revenue that come first in external-id order.
    let ties_before = if equal > 1 {
        ties_before(conn, &orders, rowid, revenue)?
    } else {
        0
    };
    // Sums in rank order: descending revenue (zeros, in the middle, add nothing).
    non_zero.sort_unstable_by(|a, b| b.total_cmp(a));
    let mut cumulative = 0.0;
    let mut revenue_before = None;
    for &value in &non_zero {
        if revenue_before.is_none() && value.total_cmp(&revenue).is_le() {
            revenue_before = Some(cumulative);
        }
        cumulative += value;
    }
    let total_revenue_window = cumulative;
    // Then each tie before this customer in turn, as the full pass adds them (for a revenue of
    // zero, the sum of the positive revenues, unchanged).
    let mut before = revenue_before.unwrap_or(cumulative);
    for _ in 0..ties_before {
        before += revenue;
    }
    let rank = Rank {
        rank: u32::try_from(greater + ties_before + 1).unwrap_or(u32::MAX),
        lower: u32::try_from(lower).unwrap_or(u32::MAX),
        revenue_before: before,
    };

    // The quintile scores: 1 + floor(5 × below / N) over the scored population.
    let n = scored.len();
    let score = if totals.orders_total == 0 || n == 0 {
        [0_u8; 3]
    } else {
        let days = totals.days_since_last_order(at);
        let (mut r, mut f, mut m) = (0_usize, 0_usize, 0_usize);
        for &slot in &scored {
            let t = &orders[slot];
            r += usize::from(t.days_since_last_order(at) > days);
            f += usize::from(t.orders_window < totals.orders_window);
            m += usize::from((t.revenue_window + 0.0).total_cmp(&revenue).is_lt());
        }
        [r, f, m].map(|below| 1 + u8::try_from(5 * below / n).expect("at most 4"))
    };
    drop(orders);

    let only = Slots::new(&[rowid]);
    let mut events = vec![EventTotals::default()];
    scan_interactions(conn, &only, &mut events, at, start, rowid, rowid)?;
    scan_complaints(conn, &only, &mut events, at, start, rowid, rowid)?;
    scan_feedback(conn, &only, &mut events, at, start, rowid, rowid)?;
    let incentives = crate::incentive_features::scan_incentives(
        conn,
        &|customer| only.get(customer),
        at,
        rowid,
        rowid,
    )?;
    Ok(Some(Population {
        at,
        slots: only,
        orders: vec![totals],
        events,
        ranks: vec![rank],
        quintiles: Quintiles {
            scores: vec![score],
            scored: n,
        },
        total_revenue_window,
        customers,
        incentives,
    }))
}

/// How many other customers with `revenue` (normalised: `+ 0.0`) come before the customer
/// `rowid` in external-id order: a walk of the unique index up to their external id.
fn ties_before(
    conn: &Connection,
    orders: &[OrderTotals],
    rowid: i64,
    revenue: f64,
) -> rusqlite::Result<usize> {
    let mut stmt = conn.prepare(
        "SELECT id FROM customers \
         WHERE external_id < (SELECT external_id FROM customers WHERE id = ?1)",
    )?;
    let mut rows = stmt.query([rowid])?;
    let mut ties = 0;
    while let Some(row) = rows.next()? {
        let id: i64 = row.get(0)?;
        let value = usize::try_from(id)
            .ok()
            .and_then(|slot| orders.get(slot))
            .map_or(0.0, |t| t.revenue_window + 0.0);
        if value.total_cmp(&revenue).is_eq() {
            ties += 1;
        }
    }
    Ok(ties)
}
