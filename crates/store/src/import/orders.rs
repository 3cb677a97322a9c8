//! Writing orders and their lines.

use rusqlite::{OptionalExtension, Row, ToSql, params};

use super::{
    ITEMS_PER_INSERT, ImportKind, ImportSession, KindTable, Outcome, RowError, customer_index,
    real_equals, require, require_finite, text_equals, unknown_customer,
};
use crate::error::{AtPath, StoreError};
use crate::records::{OrderItem, OrderRecord};

/// The stored columns of an order that an import compares.
struct StoredOrder {
    id: i64,
    customer_id: i64,
    ordered_at: i64,
    amount: f64,
    item_count: i64,
}

impl ImportSession<'_> {
    /// Upserts an order by `external_id`, with its lines; `line` is where the
    /// record came from, for duplicate messages.
    ///
    /// Importing the same order again is [`Outcome::Unchanged`]; a changed
    /// customer, time or amount, or different lines, update it (lines are
    /// replaced as a whole; an empty `items` keeps the stored lines). An
    /// unknown customer is created when
    /// [`ImportOptions::create_missing_customers`](super::ImportOptions) is
    /// set, and rejected otherwise.
    pub fn order(&mut self, line: u64, rec: &OrderRecord) -> Result<Outcome, RowError> {
        self.guarded(|session| session.write_order(line, rec))
    }

    fn write_order(&mut self, line: u64, rec: &OrderRecord) -> Result<Outcome, RowError> {
        const KIND: ImportKind = ImportKind::Orders;
        require(KIND.id_column(), &rec.external_id)?;
        require("customer_id", &rec.customer_external_id)?;
        require_finite("amount", rec.amount)?;
        for item in &rec.items {
            require_finite("quantity", item.quantity)?;
            require_finite("unit_price", item.unit_price)?;
            require_finite("amount", item.amount)?;
        }
        let key = rec.external_id.as_str();
        let customer_id = match self.customer_rowid(&rec.customer_external_id)? {
            Some(rowid) => rowid,
            None if self.options.create_missing_customers => {
                // Never create a customer for a row that is about to be
                // rejected as a repeat.
                if let Some(rowid) = self.stored_rowid(KIND, key)? {
                    self.check_seen(KIND, rowid, key, false)?;
                }
                self.create_customer(rec)?
            }
            None => {
                return Err(unknown_customer(
                    &rec.customer_external_id,
                    ", or set create_customers: true in the mapping",
                ));
            }
        };

        let path = self.path;
        let stored = if self.insert_blindly(KIND) {
            None
        } else {
            self.statements
                .order_select()
                .at(path)?
                .query_row([key], |row| {
                    Ok(StoredOrder {
                        id: row.get(0)?,
                        customer_id: row.get(1)?,
                        ordered_at: row.get(2)?,
                        amount: row.get(3)?,
                        item_count: row.get(4)?,
                    })
                })
                .optional()
                .at(path)?
        };
        let (rowid, outcome) = match stored {
            None => {
                let result = self.statements.order_insert().at(path)?.execute(params![
                    key,
                    customer_id,
                    rec.ordered_at,
                    rec.amount,
                    item_count(&rec.items),
                ]);
                let rowid = self.inserted(KIND, key, false, result)?;
                self.insert_items(rowid, &rec.items)?;
                (rowid, Outcome::Inserted)
            }
            Some(stored) => {
                self.check_seen(KIND, stored.id, key, false)?;
                (stored.id, self.update_order(&stored, customer_id, rec)?)
            }
        };
        self.remember(KIND, rowid, line);
        self.incentives(customer_id, rec)?;
        Ok(outcome)
    }

    /// Every order written from now on earns points as `earning` says (see
    /// [`crate::OrderPoints`]), in this import's transaction; `None` (the default): none.
    pub fn earn_points_per_order(&mut self, earning: Option<crate::points::OrderPoints>) {
        self.order_points = earning;
    }

    /// Records what the order did with incentives: redeems its coupon code (an unknown code is
    /// counted, not an error), books its spent points and the points it earns (when
    /// [`ImportSession::earn_points_per_order`] is set); importing it again changes nothing.
    fn incentives(&mut self, customer_id: i64, rec: &OrderRecord) -> Result<(), RowError> {
        let path = self.path;
        if let Some(code) = rec.coupon_code.as_deref().filter(|c| !c.trim().is_empty()) {
            match crate::coupons::redeem(
                self.conn,
                code,
                customer_id,
                &rec.external_id,
                rec.ordered_at,
            )
            .at(path)?
            {
                crate::coupons::Redeemed::Now => self.redemptions.redeemed += 1,
                crate::coupons::Redeemed::Already => {}
                crate::coupons::Redeemed::Unknown => self.redemptions.unknown += 1,
            }
        }
        if let Some(spent) = rec.points_spent.filter(|spent| *spent != 0.0) {
            require_finite("points_spent", spent)?;
            crate::points::book(
                self.conn,
                customer_id,
                &format!("order:{}", rec.external_id),
                rec.ordered_at,
                -spent.abs(),
                None,
                None,
            )
            .at(path)?;
        }
        if let Some(earning) = &self.order_points {
            crate::points::book_order_earning(
                self.conn,
                earning,
                customer_id,
                &rec.external_id,
                rec.ordered_at,
                rec.amount,
            )
            .at(path)?;
        }
        Ok(())
    }

    /// Creates the customer of an order that names an unknown one.
    fn create_customer(&mut self, rec: &OrderRecord) -> Result<i64, StoreError> {
        let path = self.path;
        self.statements
            .customer_create()
            .at(path)?
            .execute(params![
                rec.customer_external_id,
                rec.customer_name.as_deref(),
                rec.customer_region.as_deref(),
                self.now,
            ])
            .at(path)?;
        let rowid = self.conn.last_insert_rowid();
        customer_index(&mut self.customers, self.conn, path)?
            .insert(rec.customer_external_id.as_str().into(), rowid);
        self.customers_created += 1;
        Ok(rowid)
    }

    fn update_order(
        &mut self,
        stored: &StoredOrder,
        customer_id: i64,
        rec: &OrderRecord,
    ) -> Result<Outcome, RowError> {
        let path = self.path;
        let header_changed = stored.customer_id != customer_id
            || stored.ordered_at != rec.ordered_at
            || stored.amount != rec.amount;
        let items_changed = !rec.items.is_empty() && self.items_differ(stored.id, &rec.items)?;
        if !header_changed && !items_changed {
            return Ok(Outcome::Unchanged);
        }
        let count = if rec.items.is_empty() {
            stored.item_count
        } else {
            item_count(&rec.items)
        };
        self.statements
            .order_update()
            .at(path)?
            .execute(params![
                stored.id,
                customer_id,
                rec.ordered_at,
                rec.amount,
                count
            ])
            .at(path)?;
        if items_changed {
            self.statements
                .item_delete()
                .at(path)?
                .execute([stored.id])
                .at(path)?;
            self.insert_items(stored.id, &rec.items)?;
        }
        Ok(Outcome::Updated)
    }

    fn insert_items(&mut self, order_id: i64, items: &[OrderItem]) -> Result<(), StoreError> {
        if items.is_empty() {
            return Ok(());
        }
        let path = self.path;
        let mut line_no = 0_i64;
        for chunk in items.chunks(ITEMS_PER_INSERT) {
            let stmt = self.statements.items_insert(chunk.len()).at(path)?;
            let mut param = 0;
            for item in chunk {
                line_no += 1;
                let values: [&dyn ToSql; 7] = [
                    &order_id,
                    &line_no,
                    &item.sku,
                    &item.description,
                    &item.quantity,
                    &item.unit_price,
                    &item.amount,
                ];
                for value in values {
                    param += 1;
                    stmt.raw_bind_parameter(param, value).at(path)?;
                }
            }
            stmt.raw_execute().at(path)?;
        }
        Ok(())
    }

    /// Whether the stored lines of `order_id` differ from `items`.
    fn items_differ(&mut self, order_id: i64, items: &[OrderItem]) -> Result<bool, StoreError> {
        let path = self.path;
        let stmt = self.statements.item_select().at(path)?;
        let mut rows = stmt.query([order_id]).at(path)?;
        let mut given = items.iter();
        loop {
            match (rows.next().at(path)?, given.next()) {
                (None, None) => return Ok(false),
                (Some(row), Some(item)) => {
                    if !item_equals(row, item).at(path)? {
                        return Ok(true);
                    }
                }
                _ => return Ok(true),
            }
        }
    }
}

fn item_equals(row: &Row<'_>, item: &OrderItem) -> rusqlite::Result<bool> {
    Ok(text_equals(row.get_ref(0)?, item.sku.as_deref())
        && text_equals(row.get_ref(1)?, item.description.as_deref())
        && real_equals(row.get_ref(2)?, item.quantity)
        && real_equals(row.get_ref(3)?, item.unit_price)
        && real_equals(row.get_ref(4)?, item.amount))
}

fn item_count(items: &[OrderItem]) -> i64 {
    i64::try_from(items.len()).unwrap_or(i64::MAX)
}
