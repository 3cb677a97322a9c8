//! Rows as stored, read back: [`Customer`] and [`Order`].

use chrono::NaiveDate;
use rusqlite::types::Type;
use std::path::Path;

use rusqlite::{Connection, OptionalExtension, Row};
use serde_json::{Map, Value};

use crate::db::Store;
use crate::error::{AtPath, StoreError};
use crate::records::OrderItem;

/// A stored customer.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Customer {
    /// The row id (stable for the life of the database, internal).
    pub id: i64,
    /// The customer's id in the source system.
    pub external_id: String,
    /// Display name.
    pub name: Option<String>,
    /// E-mail address.
    pub email: Option<String>,
    /// Phone number.
    pub phone: Option<String>,
    /// Birthday, serialised as `YYYY-MM-DD`.
    #[serde(serialize_with = "serialize_date")]
    pub birthday: Option<NaiveDate>,
    /// Sales region.
    pub region: Option<String>,
    /// External id of the owning manager.
    pub owner: Option<String>,
    /// IANA time zone name.
    pub timezone: Option<String>,
    /// Agreed to e-mail.
    pub consent_email: bool,
    /// Agreed to text messages.
    pub consent_sms: bool,
    /// Agreed to phone calls.
    pub consent_phone: bool,
    /// Custom attributes.
    pub attributes: Map<String, Value>,
    /// When the row was created, unix seconds UTC.
    pub created_at: i64,
    /// When the row last changed, unix seconds UTC.
    pub updated_at: i64,
}

/// A stored order with its lines.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Order {
    /// The row id (internal).
    pub id: i64,
    /// The order's id in the source system.
    pub external_id: String,
    /// External id of the customer who placed it.
    pub customer_external_id: String,
    /// When it was placed, unix seconds UTC.
    pub ordered_at: i64,
    /// Its total amount.
    pub amount: f64,
    /// How many lines it has (kept even when the lines were not imported).
    pub item_count: u64,
    /// Its lines, in order.
    pub items: Vec<OrderItem>,
}

fn serialize_date<S: serde::Serializer>(
    date: &Option<NaiveDate>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match date {
        Some(date) => serializer.collect_str(&date.format("%Y-%m-%d")),
        None => serializer.serialize_none(),
    }
}

impl Store {
    /// The customer with `external_id`, if there is one.
    pub fn customer(&self, external_id: &str) -> Result<Option<Customer>, StoreError> {
        self.conn
            .prepare_cached(
                "SELECT id, external_id, name, email, phone, birthday, region, owner, timezone, \
                 consent_email, consent_sms, consent_phone, attributes, created_at, updated_at \
                 FROM customers WHERE external_id = ?1",
            )
            .and_then(|mut stmt| stmt.query_row([external_id], customer_from_row).optional())
            .at(&self.label)
    }

    /// The orders of the customer with `external_id`, oldest first, each with
    /// its lines; empty when the customer is unknown.
    pub fn orders_of(&self, external_id: &str) -> Result<Vec<Order>, StoreError> {
        let path = &self.label;
        let mut orders = self
            .conn
            .prepare_cached(
                "SELECT o.id, o.external_id, c.external_id, o.ordered_at, o.amount, o.item_count \
                 FROM orders o JOIN customers c ON c.id = o.customer_id \
                 WHERE c.external_id = ?1 ORDER BY o.ordered_at, o.id",
            )
            .and_then(|mut stmt| {
                stmt.query_map([external_id], |row| {
                    Ok(Order {
                        id: row.get(0)?,
                        external_id: row.get(1)?,
                        customer_external_id: row.get(2)?,
                        ordered_at: row.get(3)?,
                        amount: row.get(4)?,
                        item_count: row.get::<_, i64>(5)?.unsigned_abs(),
                        items: Vec::new(),
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()
            })
            .at(path)?;
        let mut items = self
            .conn
            .prepare_cached(
                "SELECT sku, description, quantity, unit_price, amount FROM order_items \
                 WHERE order_id = ?1 ORDER BY line_no",
            )
            .at(path)?;
        for order in &mut orders {
            order.items = items
                .query_map([order.id], |row| {
                    Ok(OrderItem {
                        sku: row.get(0)?,
                        description: row.get(1)?,
                        quantity: row.get(2)?,
                        unit_price: row.get(3)?,
                        amount: row.get(4)?,
                    })
                })
                .and_then(Iterator::collect)
                .at(path)?;
        }
        Ok(orders)
    }
}

/// The rowid of the customer with `external_id`, if there is one.
pub(crate) fn customer_rowid(
    conn: &Connection,
    external_id: &str,
) -> rusqlite::Result<Option<i64>> {
    conn.prepare_cached("SELECT id FROM customers WHERE external_id = ?1")?
        .query_row([external_id], |row| row.get(0))
        .optional()
}

/// The rowid of the customer with `external_id`, or
/// [`StoreError::UnknownCustomer`].
impl Store {
    /// Every row that `sql` (with the customer's rowid as `?1`) returns for the customer with
    /// `external_id`, mapped by `map`; [`StoreError::UnknownCustomer`] when there is no such
    /// customer. The per-customer readers (history, segments, pins, follow-ups) share it.
    pub(crate) fn rows_of_customer<T>(
        &self,
        external_id: &str,
        sql: &str,
        map: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>, StoreError> {
        let path = self.label.as_path();
        let rowid = require_customer(&self.conn, path, external_id)?;
        self.conn
            .prepare_cached(sql)
            .and_then(|mut stmt| stmt.query_map([rowid], map)?.collect())
            .at(path)
    }
}

pub(crate) fn require_customer(
    conn: &Connection,
    path: &Path,
    external_id: &str,
) -> Result<i64, StoreError> {
    customer_rowid(conn, external_id)
        .at(path)?
        .ok_or_else(|| StoreError::UnknownCustomer {
            id: external_id.to_owned(),
        })
}

fn customer_from_row(row: &Row<'_>) -> rusqlite::Result<Customer> {
    let birthday = row
        .get_ref(5)?
        .as_str_or_null()?
        .map(|text| {
            NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|err| {
                rusqlite::Error::FromSqlConversionFailure(5, Type::Text, Box::new(err))
            })
        })
        .transpose()?;
    let attributes = match serde_json::from_str(row.get_ref(12)?.as_str()?) {
        Ok(Value::Object(map)) => map,
        Ok(_) => Map::new(),
        Err(err) => {
            return Err(rusqlite::Error::FromSqlConversionFailure(
                12,
                Type::Text,
                Box::new(err),
            ));
        }
    };
    Ok(Customer {
        id: row.get(0)?,
        external_id: row.get(1)?,
        name: row.get(2)?,
        email: row.get(3)?,
        phone: row.get(4)?,
        birthday,
        region: row.get(6)?,
        owner: row.get(7)?,
        timezone: row.get(8)?,
        consent_email: row.get(9)?,
        consent_sms: row.get(10)?,
        consent_phone: row.get(11)?,
        attributes,
        created_at: row.get(13)?,
        updated_at: row.get(14)?,
    })
}
