//! Multi-row inserts: rows are buffered and written [`BATCH_ROWS`] at a time by one statement.
//!
//! Writing a million rows one statement each costs a bind, step and reset per row, and SQLite
//! opens (and closes) a cursor on the table and on each of its indexes every time; that
//! overhead was larger than the B-tree work itself in a first assessment. One
//! `INSERT ... VALUES (...), (...), ...` statement per batch pays it once per batch.

use std::collections::HashMap;
use std::sync::Arc;

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, Statement, ToSql};

/// Rows per statement (times the columns stays far below SQLite's 32,766 parameters).
pub(crate) const BATCH_ROWS: usize = 128;

/// One value of a buffered row.
#[derive(Debug, Clone)]
pub(crate) enum Cell {
    /// SQL `NULL`.
    Null,
    /// An integer.
    Int(i64),
    /// Text owned by this row.
    Text(String),
    /// Text shared between rows (tier, segment and set names).
    Name(Arc<str>),
}

impl ToSql for Cell {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self {
            Cell::Null => ValueRef::Null,
            Cell::Int(value) => ValueRef::Integer(*value),
            Cell::Text(text) => ValueRef::Text(text.as_bytes()),
            Cell::Name(name) => ValueRef::Text(name.as_bytes()),
        }))
    }
}

impl From<Option<Arc<str>>> for Cell {
    fn from(name: Option<Arc<str>>) -> Cell {
        name.map_or(Cell::Null, Cell::Name)
    }
}

/// Names (tiers, segments, segment sets) shared between the rows that carry them, so a row
/// costs no allocation for them.
///
/// A rule set names a few dozen at most, and a short scan of them is cheaper than hashing
/// each name; past [`Names::FEW`] the rest go to a map.
#[derive(Debug, Default)]
pub(crate) struct Names {
    few: Vec<Arc<str>>,
    many: HashMap<Box<str>, Arc<str>>,
}

impl Names {
    /// How many names are found by a scan.
    const FEW: usize = 64;

    /// The shared copy of `name`.
    pub(crate) fn get(&mut self, name: &str) -> Arc<str> {
        if let Some(shared) = self.few.iter().find(|shared| ***shared == *name) {
            return Arc::clone(shared);
        }
        if let Some(shared) = self.many.get(name) {
            return Arc::clone(shared);
        }
        let shared: Arc<str> = Arc::from(name);
        if self.few.len() < Self::FEW {
            self.few.push(Arc::clone(&shared));
        } else {
            self.many.insert(name.into(), Arc::clone(&shared));
        }
        shared
    }
}

/// Rows for one table, written by a multi-row `INSERT` when [`BATCH_ROWS`] have gathered and
/// by [`RowBatch::flush`].
pub(crate) struct RowBatch<'c> {
    conn: &'c Connection,
    /// `INSERT INTO table (columns) VALUES `.
    head: &'static str,
    /// What follows the rows, such as an `ON CONFLICT` clause (may be empty).
    tail: &'static str,
    columns: usize,
    /// The statement for a full batch, prepared on first use.
    full: Option<Statement<'c>>,
    cells: Vec<Cell>,
}

impl<'c> RowBatch<'c> {
    /// A batch for `head` (`INSERT INTO t (a, b) VALUES `) with `columns` values per row,
    /// followed by `tail`.
    pub(crate) fn new(
        conn: &'c Connection,
        head: &'static str,
        columns: usize,
        tail: &'static str,
    ) -> RowBatch<'c> {
        RowBatch {
            conn,
            head,
            tail,
            columns,
            full: None,
            cells: Vec::with_capacity(columns * BATCH_ROWS),
        }
    }

    /// Adds a row of exactly `columns` cells; writes the batch when it is full.
    pub(crate) fn push<const N: usize>(&mut self, row: [Cell; N]) -> rusqlite::Result<()> {
        debug_assert_eq!(N, self.columns, "a row of {N} cells for {}", self.head);
        self.cells.extend(row);
        if self.cells.len() == self.columns * BATCH_ROWS {
            self.flush()?;
        }
        Ok(())
    }

    /// Whether rows are waiting to be written.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.cells.is_empty()
    }

    /// Writes the rows gathered so far.
    pub(crate) fn flush(&mut self) -> rusqlite::Result<()> {
        let rows = self.cells.len() / self.columns;
        if rows == 0 {
            return Ok(());
        }
        let params = rusqlite::params_from_iter(self.cells.iter());
        if rows == BATCH_ROWS {
            if self.full.is_none() {
                self.full = Some(self.conn.prepare(&self.sql(BATCH_ROWS))?);
            }
            self.full
                .as_mut()
                .expect("prepared just above")
                .execute(params)?;
        } else {
            // The last, partial batch: a statement of its own size, used once.
            self.conn.prepare(&self.sql(rows))?.execute(params)?;
        }
        self.cells.clear();
        Ok(())
    }

    fn sql(&self, rows: usize) -> String {
        let mut row = String::from("(?");
        row.push_str(&",?".repeat(self.columns - 1));
        row.push(')');
        let mut sql = String::with_capacity(self.head.len() + rows * (row.len() + 1) + 200);
        sql.push_str(self.head);
        for i in 0..rows {
            if i > 0 {
                sql.push(',');
            }
            sql.push_str(&row);
        }
        sql.push(' ');
        sql.push_str(self.tail);
        sql
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_and_partial_batches_write_every_row_in_order() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, note TEXT)")
            .unwrap();
        let mut names = Names::default();
        let mut batch = RowBatch::new(&conn, "INSERT INTO t (id, name, note) VALUES ", 3, "");
        let total = BATCH_ROWS * 2 + 5;
        for i in 0..total {
            let id = i64::try_from(i).unwrap();
            let note = if i % 2 == 0 {
                Cell::Text(format!("n{i}"))
            } else {
                Cell::Null
            };
            batch
                .push([Cell::Int(id), Cell::Name(names.get("same")), note])
                .unwrap();
        }
        // Two full batches went out on their own; the rest waits for the flush.
        let count = |conn: &Connection| -> usize {
            let count: i64 = conn
                .query_row("SELECT count(*) FROM t", [], |row| row.get(0))
                .unwrap();
            usize::try_from(count).unwrap()
        };
        assert_eq!(count(&conn), BATCH_ROWS * 2);
        assert!(!batch.is_empty());
        batch.flush().unwrap();
        assert!(batch.is_empty());
        assert_eq!(count(&conn), total);
        let rows: Vec<(i64, String, Option<String>)> = conn
            .prepare("SELECT id, name, note FROM t ORDER BY id")
            .unwrap()
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        for (i, (id, name, note)) in rows.into_iter().enumerate() {
            assert_eq!(id, i64::try_from(i).unwrap());
            assert_eq!(name, "same");
            assert_eq!(note, (i % 2 == 0).then(|| format!("n{i}")));
        }
    }

    #[test]
    fn names_are_shared_however_many_there_are() {
        let mut names = Names::default();
        let all: Vec<String> = (0..Names::FEW * 2).map(|i| format!("name{i}")).collect();
        let first: Vec<Arc<str>> = all.iter().map(|name| names.get(name)).collect();
        for (name, shared) in all.iter().zip(&first) {
            let again = names.get(name);
            assert_eq!(&*again, name.as_str());
            assert!(Arc::ptr_eq(&again, shared), "{name} was copied again");
        }
    }

    #[test]
    fn the_tail_applies_to_every_row() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER); INSERT INTO t VALUES (1, 0);",
        )
        .unwrap();
        let mut batch = RowBatch::new(
            &conn,
            "INSERT INTO t (id, v) VALUES ",
            2,
            "ON CONFLICT (id) DO UPDATE SET v = excluded.v",
        );
        batch.push([Cell::Int(1), Cell::Int(7)]).unwrap();
        batch.push([Cell::Int(2), Cell::Int(8)]).unwrap();
        batch.flush().unwrap();
        let sum: i64 = conn
            .query_row("SELECT sum(v) FROM t", [], |row| row.get(0))
            .unwrap();
        assert_eq!(sum, 15);
    }
}
