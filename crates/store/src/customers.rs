//! The customer list (`tiercare customers`): customers with their stored tier, segments, owner
//! and a few key figures, filtered in SQL by tier, segment, owner, last contact and attribute.
//!
//! Filters that need the rules' features (`--where`) are applied by the scheduler on top of
//! these rows; the store only reads.

use rusqlite::params;

use crate::db::Store;
use crate::error::{AtPath, StoreError};

/// What to list: every filter that is set must hold (an empty query lists every customer).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CustomerQuery {
    /// Customers whose current tier is one of these (none: any tier, or none).
    pub tiers: Vec<String>,
    /// Customers in one of these segments, each `SEGMENT` (in any segment set) or
    /// `SET=SEGMENT`.
    pub segments: Vec<String>,
    /// Customers owned by this manager, given by external id or by name.
    pub owner: Option<String>,
    /// Customers with no interaction at or after this time (unix seconds), never contacted
    /// included.
    pub not_contacted_since: Option<i64>,
    /// Customers with an interaction at or after this time (unix seconds).
    pub contacted_since: Option<i64>,
    /// Customers whose custom attribute `name` (the first) equals `value` (the second), compared
    /// as text (`true`/`false` for booleans).
    pub attribute: Option<(String, String)>,
}

/// One customer of the list, from [`Store::list_customers`].
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CustomerRow {
    /// The customer's row id (internal; the key of features).
    #[serde(skip)]
    pub rowid: i64,
    /// The customer's external id.
    pub id: String,
    /// Name (`None` when not given or erased).
    pub name: Option<String>,
    /// E-mail address (`None` when not given or erased).
    pub email: Option<String>,
    /// The current tier (`None`: never assessed).
    pub tier: Option<String>,
    /// The current segment in each segment set: `(set, segment)`, sorted by set.
    pub segments: Vec<(String, String)>,
    /// The owning manager's external id.
    pub owner: Option<String>,
    /// The owning manager's name, when the manager is known.
    pub owner_name: Option<String>,
    /// Orders ever placed (refunds, orders with a negative amount, are not orders).
    pub orders_total: i64,
    /// Sum of every order's amount, refunds subtracted.
    pub revenue_total: f64,
    /// Time (unix seconds) of the latest order (refunds aside).
    pub last_order_at: Option<i64>,
    /// Time (unix seconds) of the latest interaction.
    pub last_contact_at: Option<i64>,
    /// The scores of the latest assessment that decided about the customer.
    pub scores: serde_json::Map<String, serde_json::Value>,
    /// Custom attributes.
    pub attributes: serde_json::Map<String, serde_json::Value>,
}

/// Parses a JSON object column, empty when it is not one.
fn json_object(text: &str) -> serde_json::Map<String, serde_json::Value> {
    match serde_json::from_str(text) {
        Ok(serde_json::Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    }
}

impl Store {
    /// Every customer `query` accepts, in row id (import) order, in one read transaction.
    ///
    /// One statement: the tier filter uses the `customer_tiers_by_tier` index, the key figures
    /// are read per listed customer through the orders' and interactions' customer indexes.
    pub fn list_customers(&self, query: &CustomerQuery) -> Result<Vec<CustomerRow>, StoreError> {
        // Lists travel as JSON arrays, read by json_each: one statement for any number.
        let tiers = (!query.tiers.is_empty()).then(|| serde_json::json!(query.tiers).to_string());
        let segments =
            (!query.segments.is_empty()).then(|| serde_json::json!(query.segments).to_string());
        let (attr_path, attr_value) = match &query.attribute {
            Some((name, value)) => (
                Some(format!("$.\"{}\"", name.replace('"', "\\\""))),
                Some(value.clone()),
            ),
            None => (None, None),
        };
        let sql = "\
            WITH listed AS ( \
              SELECT c.id, c.external_id, c.name, c.email, t.tier, c.owner, c.attributes, \
                     t.scores, \
                     (SELECT max(i.occurred_at) FROM interactions i \
                       WHERE i.customer_id = c.id) AS last_contact_at \
              FROM customers c LEFT JOIN customer_tiers t ON t.customer_id = c.id \
              WHERE (?1 IS NULL OR t.tier IN (SELECT value FROM json_each(?1))) \
                AND (?2 IS NULL OR EXISTS (SELECT 1 FROM customer_segments s, json_each(?2) w \
                      WHERE s.customer_id = c.id \
                        AND (s.segment = w.value OR s.segment_set || '=' || s.segment = w.value))) \
                AND (?3 IS NULL OR c.owner = ?3 \
                     OR c.owner IN (SELECT m.external_id FROM managers m WHERE m.name = ?3)) \
                AND (?6 IS NULL OR CASE json_type(c.attributes, ?6) \
                       WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' \
                       ELSE CAST(json_extract(c.attributes, ?6) AS TEXT) END = ?7) \
            ) \
            SELECT l.id, l.external_id, l.name, l.email, l.tier, l.owner, \
                   (SELECT m.name FROM managers m WHERE m.external_id = l.owner), \
                   (SELECT count(*) FROM orders o WHERE o.customer_id = l.id AND o.amount >= 0), \
                   (SELECT total(o.amount) FROM orders o WHERE o.customer_id = l.id), \
                   (SELECT max(o.ordered_at) FROM orders o \
                     WHERE o.customer_id = l.id AND o.amount >= 0), \
                   l.last_contact_at, coalesce(l.scores, '{}'), l.attributes, \
                   (SELECT json_group_array(json_array(s.segment_set, s.segment)) \
                      FROM customer_segments s WHERE s.customer_id = l.id) \
            FROM listed l \
            WHERE (?4 IS NULL OR l.last_contact_at IS NULL OR l.last_contact_at < ?4) \
              AND (?5 IS NULL OR l.last_contact_at >= ?5) \
            ORDER BY l.id";
        let mut stmt = self.conn.prepare_cached(sql).at(&self.label)?;
        let rows = stmt
            .query_map(
                params![
                    tiers,
                    segments,
                    query.owner,
                    query.not_contacted_since,
                    query.contacted_since,
                    attr_path,
                    attr_value
                ],
                |row| {
                    let scores: String = row.get(11)?;
                    let attributes: String = row.get(12)?;
                    let segments: String = row.get(13)?;
                    let mut segments: Vec<(String, String)> =
                        serde_json::from_str(&segments).unwrap_or_default();
                    segments.sort();
                    Ok(CustomerRow {
                        rowid: row.get(0)?,
                        id: row.get(1)?,
                        name: row.get(2)?,
                        email: row.get(3)?,
                        tier: row.get(4)?,
                        owner: row.get(5)?,
                        owner_name: row.get(6)?,
                        orders_total: row.get(7)?,
                        revenue_total: row.get(8)?,
                        last_order_at: row.get(9)?,
                        last_contact_at: row.get(10)?,
                        scores: json_object(&scores),
                        attributes: json_object(&attributes),
                        segments,
                    })
                },
            )
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .at(&self.label)?;
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_database_lists_nobody() {
        let store = Store::open_in_memory().unwrap();
        assert!(
            store
                .list_customers(&CustomerQuery::default())
                .unwrap()
                .is_empty()
        );
    }
}
