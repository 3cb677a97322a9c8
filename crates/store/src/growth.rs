//! The growth models' reads and record: every order up to an assessment's time, customer by
//! customer (the scheduler turns them into BG/NBD summaries), and the fit stored with an
//! assessment (`assessment_growth`, migration 14).

use rusqlite::{OptionalExtension, params};

use crate::db::Store;
use crate::error::{AtPath, StoreError};
use crate::tiers::AssessmentSession;

/// Every order up to a time, by customer and time: a scan of `orders_by_customer` alone, which
/// holds the amount (migration 26), in the order of its entries (customer, time, rowid).
const ORDERS_UNTIL: &str = "SELECT customer_id, ordered_at, amount FROM orders \
     WHERE ordered_at <= ?1 AND ordered_at > ?2 ORDER BY customer_id, ordered_at";

impl Store {
    /// Calls `visit(customer_rowid, ordered_at, amount)` for every order with
    /// `since < ordered_at <= at` (`since` `None`: all up to `at`), ordered by customer and
    /// time (a scan of the `orders_by_customer` index alone, without the orders' rows; orders
    /// at the same time in rowid order). Refunds (negative amounts) are included.
    pub fn for_each_order_until(
        &self,
        at: i64,
        since: Option<i64>,
        visit: &mut dyn FnMut(i64, i64, f64),
    ) -> Result<(), StoreError> {
        let mut run = || -> rusqlite::Result<()> {
            let mut stmt = self.conn.prepare(ORDERS_UNTIL)?;
            let mut rows = stmt.query(params![at, since.unwrap_or(i64::MIN)])?;
            while let Some(row) = rows.next()? {
                visit(row.get(0)?, row.get(1)?, row.get(2)?);
            }
            Ok(())
        };
        run().at(&self.label)
    }

    /// Calls `visit(ordered_at, amount)` for customer `customer_rowid`'s orders with
    /// `since < ordered_at <= at` in time order (an index lookup on `orders_by_customer`):
    /// [`Store::for_each_order_until`] for one customer.
    pub fn for_each_order_of(
        &self,
        customer_rowid: i64,
        at: i64,
        since: Option<i64>,
        visit: &mut dyn FnMut(i64, f64),
    ) -> Result<(), StoreError> {
        let mut run = || -> rusqlite::Result<()> {
            let mut stmt = self.conn.prepare_cached(
                "SELECT ordered_at, amount FROM orders WHERE customer_id = ?1 \
                 AND ordered_at <= ?2 AND ordered_at > ?3 ORDER BY ordered_at",
            )?;
            let mut rows = stmt.query(params![customer_rowid, at, since.unwrap_or(i64::MIN)])?;
            while let Some(row) = rows.next()? {
                visit(row.get(0)?, row.get(1)?);
            }
            Ok(())
        };
        run().at(&self.label)
    }

    /// The growth fit stored with the latest assessment at or before `at` that ran the growth
    /// models (none if no such assessment).
    pub fn latest_growth_fit(&self, at: i64) -> Result<Option<StoredGrowthFit>, StoreError> {
        self.conn
            .prepare_cached(
                "SELECT a.id, a.at, g.fit FROM assessment_growth g \
                 JOIN assessments a ON a.id = g.assessment_id \
                 WHERE a.at <= ?1 ORDER BY g.assessment_id DESC LIMIT 1",
            )
            .and_then(|mut stmt| {
                stmt.query_row([at], |row| {
                    Ok(StoredGrowthFit {
                        assessment_id: row.get(0)?,
                        at: row.get(1)?,
                        fit: row.get(2)?,
                    })
                })
                .optional()
            })
            .at(&self.label)
    }
}

/// A growth fit stored with an assessment (`assessment_growth`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredGrowthFit {
    /// The assessment's id.
    pub assessment_id: i64,
    /// The time the assessment was made for (unix seconds).
    pub at: i64,
    /// The fit as the scheduler stored it (JSON).
    pub fit: String,
}

impl AssessmentSession<'_> {
    /// Stores the growth fit of this assessment (JSON: parameters and quality, or why there is
    /// none) in the assessment's transaction.
    pub fn record_growth(&mut self, fit_json: &str) -> Result<(), StoreError> {
        let id = self.assessment_id();
        self.execute(
            "INSERT OR REPLACE INTO assessment_growth (assessment_id, fit) VALUES (?1, ?2)",
            params![id, fit_json],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::ORDERS_UNTIL;
    use crate::Store;

    #[test]
    fn the_read_of_every_order_by_customer_needs_no_row_of_orders() {
        let store = Store::open_in_memory().unwrap();
        let plan: String = store
            .conn
            .query_row(
                &format!("EXPLAIN QUERY PLAN {ORDERS_UNTIL}"),
                [0, 0],
                |row| row.get(3),
            )
            .unwrap();
        assert!(plan.contains("COVERING INDEX orders_by_customer"), "{plan}");
    }
}
