//! Test fixtures: a store in a temporary directory, record builders, and a
//! dump of a database file for before/after comparisons.

use std::path::{Path, PathBuf};

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};
use tempfile::TempDir;
use tiercare_store::{
    CustomerRecord, ImportAudit, ImportKind, ImportOptions, ImportSession, ManagerRecord,
    OrderItem, OrderRecord, Store,
};

/// 2024-03-01T00:00:00Z, the fixed "now" of imports in these tests.
pub const NOW: i64 = 1_709_251_200;

/// A new database file in its own temporary directory (kept alive by the
/// returned `TempDir`).
pub fn new_store() -> (TempDir, PathBuf, Store) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("tiercare.db");
    let store = Store::create(&path).expect("create store");
    (dir, path, store)
}

/// Options for an import from `source`.
pub fn options(source: &str) -> ImportOptions {
    ImportOptions {
        create_missing_customers: false,
        source: source.into(),
    }
}

/// Runs `write` in an import session at `now` and commits it.
pub fn import_at<T>(
    store: &mut Store,
    kind: ImportKind,
    options: ImportOptions,
    now: i64,
    write: impl FnOnce(&mut ImportSession<'_>) -> T,
) -> T {
    let mut session = store.import_at(kind, options, now).expect("start import");
    let result = write(&mut session);
    session.commit(&ImportAudit::default()).expect("commit");
    result
}

/// A customer with just an id and a name.
pub fn customer(id: &str, name: &str) -> CustomerRecord {
    CustomerRecord {
        external_id: id.into(),
        name: Some(name.into()),
        ..CustomerRecord::default()
    }
}

/// A manager with just an id and a name.
pub fn manager(id: &str, name: &str) -> ManagerRecord {
    ManagerRecord {
        external_id: id.into(),
        name: name.into(),
        ..ManagerRecord::default()
    }
}

/// Imports the one manager `record` (line 2 of `m.csv`) at [`NOW`].
pub fn seed_manager(store: &mut Store, record: &ManagerRecord) {
    import_at(store, ImportKind::Managers, options("m.csv"), NOW, |s| {
        s.manager(2, record).unwrap();
    });
}

/// An order without lines.
pub fn order(id: &str, customer: &str, ordered_at: i64, amount: f64) -> OrderRecord {
    OrderRecord {
        external_id: id.into(),
        customer_external_id: customer.into(),
        ordered_at,
        amount,
        ..OrderRecord::default()
    }
}

/// An order line.
pub fn item(sku: &str, quantity: f64, unit_price: f64) -> OrderItem {
    OrderItem {
        sku: Some(sku.into()),
        description: None,
        quantity,
        unit_price,
        amount: quantity * unit_price,
    }
}

/// Imports customers `ids` (named after their ids) and commits.
pub fn seed_customers(store: &mut Store, ids: &[&str]) {
    import_at(
        store,
        ImportKind::Customers,
        options("seed.csv"),
        NOW,
        |session| {
            for (line, id) in (2..).zip(ids) {
                session
                    .customer(line, &customer(id, id))
                    .expect("seed customer");
            }
        },
    );
}

/// The schema (tables and indexes) and every row of every table as text,
/// read through a separate read-only connection: two equal dumps mean equal
/// databases.
pub fn dump(path: &Path) -> Vec<String> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .expect("open read-only");
    let mut lines: Vec<String> = conn
        .prepare("SELECT type, name, sql FROM sqlite_schema ORDER BY type, name")
        .unwrap()
        .query_map([], |row| {
            let sql: Option<String> = row.get(2)?;
            Ok(format!(
                "{} {}: {}",
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                sql.unwrap_or_default()
            ))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut tables = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
        .unwrap();
    let tables: Vec<String> = tables
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for table in tables {
        let mut stmt = conn
            .prepare(&format!("SELECT * FROM {table} ORDER BY 1, 2"))
            .unwrap();
        let columns = stmt.column_count();
        let mut rows = stmt.query([]).unwrap();
        while let Some(row) = rows.next().unwrap() {
            let values: Vec<String> = (0..columns)
                .map(|index| match row.get_ref(index).unwrap() {
                    ValueRef::Null => "NULL".to_string(),
                    ValueRef::Integer(value) => value.to_string(),
                    ValueRef::Real(value) => format!("{value:?}"),
                    ValueRef::Text(text) => format!("{:?}", String::from_utf8_lossy(text)),
                    ValueRef::Blob(blob) => format!("{blob:?}"),
                })
                .collect();
            lines.push(format!("{table}: {}", values.join(", ")));
        }
    }
    for pragma in ["user_version", "application_id"] {
        let value: i64 = conn
            .query_row(&format!("PRAGMA {pragma}"), [], |row| row.get(0))
            .unwrap();
        lines.push(format!("{pragma} {value}"));
    }
    lines
}
