//! [`Store`]: one connection to a tiercare database, opened, identified,
//! configured and migrated.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::error::{AtPath, StoreError};
use crate::integrity;
use crate::schema::{self, APPLICATION_ID, MIGRATIONS};

/// How long a connection waits for another one's write lock before giving up
/// with [`StoreError::Locked`].
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Page cache of each connection, in KiB (SQLite's negative `cache_size`).
/// Large imports touch many index pages; a bigger cache keeps them in memory.
/// SQLite allocates it as it is used, so small databases do not pay for it.
const CACHE_KIB: i64 = 64 * 1024;

/// The label used in error messages for an in-memory database.
const IN_MEMORY: &str = ":memory:";

/// A connection to a tiercare database.
///
/// Every connection runs in WAL mode with `synchronous=FULL`, foreign keys on
/// and a [`BUSY_TIMEOUT`], and every write transaction is `IMMEDIATE`, so a
/// command and the daemon can share one file: readers never block, and a
/// writer waits for another writer instead of failing half-way.
#[derive(Debug)]
pub struct Store {
    pub(crate) conn: Connection,
    path: Option<PathBuf>,
    /// The path, or `:memory:`, for error messages.
    pub(crate) label: PathBuf,
    /// The keys addresses are hashed under (the suppression list).
    pub(crate) keys: crate::address_keys::AddressKeys,
    /// A staff change's audit row and its time, waiting for the change's own transaction to
    /// write it ([`Store::audited`]).
    pub(crate) pending_audit: Option<(crate::StaffAuditEntry, i64)>,
}

/// Whether opening may make a new database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Create the file if needed, and accept an empty SQLite database.
    Create,
    /// Only accept an existing tiercare database.
    Open,
    /// Only accept an existing tiercare database that passes `quick_check`.
    OpenChecked,
}

/// What the identity check found in a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Identity {
    /// Stamped with tiercare's application id.
    Tiercare,
    /// An empty database: no application id, no schema.
    Empty,
}

/// Turns off SQLite's process-wide memory statistics, once, before the first connection: with
/// them on, every allocation and free inside SQLite takes a global mutex (a tenth of the
/// writing thread's CPU in a bulk import). tiercare never reads them. Every connection the store
/// makes calls this first; too late (SQLite already initialised) is harmless: they stay on.
pub(crate) fn configure_sqlite() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: sqlite3_config may be called before SQLite is initialised, from one thread
        // (`Once`), with the one `int` argument SQLITE_CONFIG_MEMSTATUS takes; once SQLite is
        // initialised it returns SQLITE_MISUSE and changes nothing.
        unsafe {
            rusqlite::ffi::sqlite3_config(
                rusqlite::ffi::SQLITE_CONFIG_MEMSTATUS,
                std::ffi::c_int::from(0_u8),
            );
        }
    });
}

impl Store {
    /// Creates a tiercare database at `path` and migrates it to the current
    /// schema. An existing tiercare database (or an empty SQLite file) is
    /// opened and migrated instead; any other file is refused with
    /// [`StoreError::NotTiercare`] and left untouched.
    pub fn create(path: &Path) -> Result<Store, StoreError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        Store::open_file(path, Mode::Create, flags)
    }

    /// Opens the existing tiercare database at `path` and applies pending
    /// migrations. Never creates a file: a missing one is
    /// [`StoreError::NotFound`].
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        Store::open_file(path, Mode::Open, flags)
    }

    /// Opens the existing tiercare database at `path` to write to it: as [`Store::open`], but
    /// SQLite's `quick_check` runs first, before anything is written (not even the switch to
    /// WAL or a migration), and a damaged file is refused with [`StoreError::Damaged`]. The
    /// check reads the whole file (about 1.5 s for 170 MB, a database of 100,000 customers
    /// and a million orders, on a busy two-core machine), so it runs once per process and
    /// file: later calls for a file this process checked already skip it (damage met later
    /// still surfaces as [`StoreError::Damaged`], from the page that fails).
    pub fn open_for_writing(path: &Path) -> Result<Store, StoreError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        Store::open_file(path, Mode::OpenChecked, flags)
    }

    /// A fresh database in memory, migrated; for tests.
    pub fn open_in_memory() -> Result<Store, StoreError> {
        configure_sqlite();
        let label = PathBuf::from(IN_MEMORY);
        let conn = Connection::open_in_memory().at(&label)?;
        Store::configure(conn, None, label, Mode::Create)
    }

    /// What SQLite plans for `sql` (its parameters left unbound), one step per line; for the
    /// tests that prove a query is answered by an index rather than a scan.
    #[cfg(test)]
    pub(crate) fn query_plan(&self, sql: &str) -> String {
        let mut stmt = self
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .expect("a query SQLite can plan");
        let mut rows = stmt.raw_query();
        let mut steps = Vec::new();
        while let Some(row) = rows.next().expect("a plan step") {
            steps.push(row.get::<_, String>(3).expect("the step's text"));
        }
        steps.join("\n")
    }

    fn open_file(path: &Path, mode: Mode, flags: OpenFlags) -> Result<Store, StoreError> {
        configure_sqlite();
        let conn = Connection::open_with_flags(path, flags).map_err(|err| {
            if err.sqlite_error_code() != Some(rusqlite::ErrorCode::CannotOpen) {
                return StoreError::at(path, err);
            }
            match path.try_exists() {
                Ok(false) if mode != Mode::Create => StoreError::NotFound {
                    path: path.to_path_buf(),
                },
                Ok(_) => StoreError::CannotOpen {
                    path: path.to_path_buf(),
                    source: err,
                },
                Err(source) => StoreError::Io {
                    path: path.to_path_buf(),
                    source,
                },
            }
        })?;
        Store::configure(conn, Some(path.to_path_buf()), path.to_path_buf(), mode)
    }

    /// Checks the file's identity, sets the connection's pragmas and migrates.
    /// The identity comes first so that a foreign file is never modified (not
    /// even switched to WAL).
    fn configure(
        conn: Connection,
        path: Option<PathBuf>,
        label: PathBuf,
        mode: Mode,
    ) -> Result<Store, StoreError> {
        conn.busy_timeout(BUSY_TIMEOUT).at(&label)?;
        // SQLite silently opens a write-protected file read-only; say so now
        // rather than at the first write.
        if conn.is_readonly(rusqlite::MAIN_DB).at(&label)? {
            return Err(StoreError::ReadOnly { path: label });
        }
        match identify(&conn).at(&label)? {
            Some(Identity::Tiercare) => {}
            Some(Identity::Empty) if mode == Mode::Create => {}
            Some(Identity::Empty) | None => return Err(StoreError::NotTiercare { path: label }),
        }
        // A damaged file is never written: checked before the first write, which is the
        // switch to WAL on a new file or a pending migration.
        let migrating = schema::user_version(&conn).at(&label)? < schema::supported_version();
        let checked = mode == Mode::OpenChecked && integrity::checked_before(path.as_deref());
        if (mode == Mode::OpenChecked && !checked) || migrating {
            integrity::refuse_damaged(&conn, &label)?;
            if mode == Mode::OpenChecked {
                integrity::remember_checked(path.as_deref());
            }
        }
        // journal_mode answers with the mode now in force: "wal" for files,
        // "memory" for in-memory databases, which cannot use WAL.
        let _mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
            .at(&label)?;
        // temp_store: the sorter that rebuilds indexes after a bulk import
        // works in memory instead of temporary files. secure_delete: deleted and
        // overwritten content is zeroed instead of left in free space, so a
        // forgotten customer's data cannot be read from the file's bytes.
        conn.execute_batch(&format!(
            "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; \
             PRAGMA cache_size = -{CACHE_KIB}; PRAGMA temp_store = MEMORY; \
             PRAGMA secure_delete = ON;"
        ))
        .at(&label)?;
        schema::migrate(&conn, &label, MIGRATIONS)?;
        Ok(Store {
            conn,
            path,
            label,
            keys: crate::address_keys::AddressKeys::default(),
            pending_audit: None,
        })
    }

    /// The database file, or `None` for an in-memory database.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The schema version of the database: how many migrations it has run.
    pub fn schema_version(&self) -> Result<u32, StoreError> {
        schema::user_version(&self.conn).at(&self.label)
    }

    /// Changes how long this connection waits for another's write lock
    /// (default [`BUSY_TIMEOUT`]). For tests that check [`StoreError::Locked`]
    /// without waiting five seconds.
    #[doc(hidden)]
    pub fn set_busy_timeout(&self, timeout: Duration) -> Result<(), StoreError> {
        self.conn.busy_timeout(timeout).at(&self.label)
    }

    /// How many rows each table holds, and the total revenue.
    pub fn counts(&self) -> Result<TableCounts, StoreError> {
        self.conn
            .query_row(
                "SELECT (SELECT count(*) FROM customers),
                        (SELECT count(*) FROM managers),
                        (SELECT count(*) FROM orders),
                        (SELECT count(*) FROM order_items),
                        (SELECT count(*) FROM interactions),
                        (SELECT count(*) FROM complaints),
                        (SELECT count(*) FROM feedback),
                        (SELECT total(amount) FROM orders)",
                [],
                |row| {
                    let count = |index| row.get::<_, i64>(index).map(|n| n.unsigned_abs());
                    Ok(TableCounts {
                        customers: count(0)?,
                        managers: count(1)?,
                        orders: count(2)?,
                        order_items: count(3)?,
                        interactions: count(4)?,
                        complaints: count(5)?,
                        feedback: count(6)?,
                        revenue: row.get(7)?,
                    })
                },
            )
            .at(&self.label)
    }
}

/// Reads the file's identity: `None` when it belongs to something else (a
/// foreign application id, or no id but a schema).
fn identify(conn: &Connection) -> rusqlite::Result<Option<Identity>> {
    let application_id: i32 = conn.query_row("PRAGMA application_id", [], |row| row.get(0))?;
    if application_id == APPLICATION_ID {
        return Ok(Some(Identity::Tiercare));
    }
    if application_id != 0 {
        return Ok(None);
    }
    let has_schema: bool =
        conn.query_row("SELECT EXISTS (SELECT 1 FROM sqlite_schema)", [], |row| {
            row.get(0)
        })?;
    Ok((!has_schema).then_some(Identity::Empty))
}

/// Row counts per table and the total revenue, as returned by
/// [`Store::counts`].
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TableCounts {
    /// Rows in `customers`.
    pub customers: u64,
    /// Rows in `managers`.
    pub managers: u64,
    /// Rows in `orders`.
    pub orders: u64,
    /// Rows in `order_items`.
    pub order_items: u64,
    /// Rows in `interactions`.
    pub interactions: u64,
    /// Rows in `complaints`.
    pub complaints: u64,
    /// Rows in `feedback`.
    pub feedback: u64,
    /// Sum of all order amounts.
    pub revenue: f64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ImportKind, ImportOptions, ManagerRecord, RowError};

    fn pragma<T: rusqlite::types::FromSql>(store: &Store, name: &str) -> T {
        store
            .conn
            .query_row(&format!("PRAGMA {name}"), [], |row| row.get(0))
            .unwrap()
    }

    #[test]
    fn every_connection_sets_its_pragmas() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tiercare.db");
        let created = Store::create(&path).unwrap();
        let opened = Store::open(&path).unwrap();
        for store in [&created, &opened] {
            assert_eq!(pragma::<String>(store, "journal_mode"), "wal");
            assert_eq!(pragma::<i64>(store, "synchronous"), 2, "FULL");
            assert_eq!(pragma::<i64>(store, "busy_timeout"), 5000);
            assert_eq!(pragma::<i64>(store, "foreign_keys"), 1);
            assert_eq!(pragma::<i64>(store, "cache_size"), -CACHE_KIB);
            assert_eq!(pragma::<i64>(store, "secure_delete"), 1);
            assert_eq!(pragma::<i32>(store, "application_id"), APPLICATION_ID);
        }
        // Foreign keys are enforced, not only declared.
        let err = opened
            .conn
            .execute(
                "INSERT INTO orders (external_id, customer_id, ordered_at, amount) \
                 VALUES ('O1', 42, 0, 1.0)",
                [],
            )
            .unwrap_err();
        assert_eq!(
            err.sqlite_error_code(),
            Some(rusqlite::ErrorCode::ConstraintViolation)
        );
        created.set_busy_timeout(Duration::from_millis(20)).unwrap();
        assert_eq!(pragma::<i64>(&created, "busy_timeout"), 20);
    }

    /// A write-protected file makes SQLite fall back to a read-only
    /// connection. Tests run as root, where permissions do not protect
    /// anything, so open the connection read-only the way SQLite would and
    /// check that the store refuses it with the right error.
    #[test]
    fn a_read_only_connection_is_refused_as_read_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tiercare.db");
        drop(Store::create(&path).unwrap());
        let err =
            Store::open_file(&path, Mode::Open, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap_err();
        assert!(
            matches!(&err, StoreError::ReadOnly { path: p } if *p == path),
            "{err:?}"
        );
    }

    /// A write that SQLite refuses with SQLITE_READONLY (the file's
    /// permissions or its file system changed after opening) surfaces as
    /// `ReadOnly`, not as a generic SQLite error, both when an import starts
    /// and in the middle of one. `query_only` makes SQLite refuse writes with
    /// exactly that code.
    #[test]
    fn a_refused_write_is_reported_as_read_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tiercare.db");
        let mut store = Store::create(&path).unwrap();
        store.conn.execute_batch("PRAGMA query_only = ON").unwrap();
        let err = store
            .import(ImportKind::Managers, ImportOptions::default())
            .unwrap_err();
        assert!(
            matches!(&err, StoreError::ReadOnly { path: p } if *p == path),
            "{err:?}"
        );

        store.conn.execute_batch("PRAGMA query_only = OFF").unwrap();
        let mut session = store
            .import(ImportKind::Managers, ImportOptions::default())
            .unwrap();
        session
            .conn
            .execute_batch("PRAGMA query_only = ON")
            .unwrap();
        let manager = ManagerRecord {
            external_id: "M1".into(),
            name: "Mia".into(),
            ..ManagerRecord::default()
        };
        match session.manager(1, &manager) {
            Err(RowError::Fatal(StoreError::ReadOnly { path: p })) => assert_eq!(p, path),
            other => panic!("expected ReadOnly, got {other:?}"),
        }
    }
}
