//! The growth models' reads and record: every order up to an assessment's time, customer by
//! customer (the scheduler turns them into BG/NBD summaries), and the fit stored with an
//! assessment (`assessment_growth`, migration 14).

use rusqlite::params;

use crate::db::Store;
use crate::error::{AtPath, StoreError};
use crate::tiers::AssessmentSession;

impl Store {
    /// Calls `visit(customer_rowid, ordered_at, amount)` for every order with
    /// `since < ordered_at <= at` (`since` `None`: all up to `at`), ordered by customer and
    /// time (the `orders_by_customer` index). Refunds (negative amounts) are included.
    pub fn for_each_order_until(
        &self,
        at: i64,
        since: Option<i64>,
        visit: &mut dyn FnMut(i64, i64, f64),
    ) -> Result<(), StoreError> {
        let mut run = || -> rusqlite::Result<()> {
            let mut stmt = self.conn.prepare(
                "SELECT customer_id, ordered_at, amount FROM orders \
                 WHERE ordered_at <= ?1 AND ordered_at > ?2 ORDER BY customer_id, ordered_at",
            )?;
            let mut rows = stmt.query(params![at, since.unwrap_or(i64::MIN)])?;
            while let Some(row) = rows.next()? {
                visit(row.get(0)?, row.get(1)?, row.get(2)?);
            }
            Ok(())
        };
        run().at(&self.label)
    }
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
