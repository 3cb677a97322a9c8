//! Counts read back from SQL: a `count(*)` (or other non-negative integer) column as `u64`, and
//! the `(key, count)` rows of a `GROUP BY` query.

use rusqlite::types::FromSql;
use rusqlite::{Connection, Row};

/// Column `index` of `row`, a count, as `u64`.
pub(crate) fn count(row: &Row<'_>, index: usize) -> rusqlite::Result<u64> {
    row.get::<_, i64>(index).map(i64::unsigned_abs)
}

/// The rows of `sql`, a query without parameters selecting a key and a count, in its order.
pub(crate) fn grouped_counts<K: FromSql>(
    conn: &Connection,
    sql: &str,
) -> rusqlite::Result<Vec<(K, u64)>> {
    conn.prepare_cached(sql)?
        .query_map([], |row| Ok((row.get(0)?, count(row, 1)?)))?
        .collect()
}
