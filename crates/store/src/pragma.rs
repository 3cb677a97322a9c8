//! Connection settings changed for one bulk write or one migration and restored when dropped:
//! foreign-key enforcement and `CHECK` constraints. Below `db` and `schema`, which both use it.

use rusqlite::Connection;

/// A connection setting changed for one bulk write and restored when dropped.
pub(crate) struct PragmaOff<'c> {
    conn: &'c Connection,
    restore: &'static str,
}

impl<'c> PragmaOff<'c> {
    fn new(
        conn: &'c Connection,
        set: &'static str,
        restore: &'static str,
    ) -> rusqlite::Result<PragmaOff<'c>> {
        conn.execute_batch(set)?;
        Ok(PragmaOff { conn, restore })
    }
}

impl Drop for PragmaOff<'_> {
    fn drop(&mut self) {
        // Cannot fail outside a transaction; if it did, the next connection has the default.
        let _ = self.conn.execute_batch(self.restore);
    }
}

/// Foreign-key enforcement switched off on a connection for one bulk write whose references are
/// right by construction (every parent id comes from a lookup in the same transaction), and back
/// on when dropped. SQLite ignores the pragma inside a transaction, so make this before beginning
/// the transaction and drop it after the transaction ends.
pub(crate) fn foreign_keys_off(conn: &Connection) -> rusqlite::Result<PragmaOff<'_>> {
    PragmaOff::new(
        conn,
        "PRAGMA foreign_keys = OFF",
        "PRAGMA foreign_keys = ON",
    )
}

/// `CHECK` constraints not compiled into the statements prepared while the guard lives, for a
/// bulk write whose values are right by construction (an assessment session: JSON text that only
/// serde can make, counts that are unsigned, a tier checked before it is written); back on when
/// dropped. Statements prepared meanwhile keep skipping the checks, so they must not outlive it.
pub(crate) fn checks_off(conn: &Connection) -> rusqlite::Result<PragmaOff<'_>> {
    PragmaOff::new(
        conn,
        "PRAGMA ignore_check_constraints = ON",
        "PRAGMA ignore_check_constraints = OFF",
    )
}
