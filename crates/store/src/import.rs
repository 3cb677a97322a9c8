//! Import sessions: typed records written in one transaction per import.
//!
//! [`Store::import`] opens an [`ImportSession`] on an `IMMEDIATE`
//! transaction. Each record is validated and upserted by its external id;
//! [`ImportSession::commit`] writes an audit row to `imports` and commits.
//! Dropping the session without committing rolls everything back, so an
//! import is never half-written.
//!
//! The session is built for speed: statements are prepared once and held,
//! customers' ids are loaded into a map once, and a table that was empty when
//! the session began is filled with plain inserts (a repeated key then shows
//! up as a unique-constraint conflict), with its secondary indexes dropped
//! and rebuilt in one go at commit. Customers the session creates are added
//! to the search index (`customers_search`) in one statement at commit
//! instead of by its insert trigger row by row (see `DeferredSearch`).
//! Rows written in the session are
//! remembered by rowid, which every row's insert or lookup yields anyway, so
//! finding a repeated key costs no extra hashing of keys.

mod customers;
mod events;
mod managers;
mod orders;
mod seen;

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::time::Instant;

use rusqlite::types::ValueRef;
use rusqlite::{
    Connection, OptionalExtension, Statement, Transaction, TransactionBehavior, params,
};

use crate::db::Store;
use crate::error::{AtPath, StoreError};
use crate::keys::BuildMapHasher;
use crate::pragma::{PragmaOff, foreign_keys_off};
use seen::SeenRows;

/// What an import brings in; each kind fills one table (the record kinds of `tiercare import`).
pub use tiercare_types::RecordKind as ImportKind;

/// What the store knows of each kind: its table and its id column.
pub(crate) trait KindTable {
    /// The name of the column that holds the record's own id, as used in rejection messages.
    fn id_column(self) -> &'static str;
    /// The table the kind fills; the names happen to be the same.
    fn table(self) -> &'static str;
    /// The kind's position in [`ImportKind::ALL`].
    fn index(self) -> usize;
}

impl KindTable for ImportKind {
    fn id_column(self) -> &'static str {
        match self {
            ImportKind::Customers => "customer_id",
            ImportKind::Orders => "order_id",
            ImportKind::Interactions => "interaction_id",
            ImportKind::Complaints => "complaint_id",
            ImportKind::Feedback => "feedback_id",
            ImportKind::Managers => "manager_id",
        }
    }

    fn table(self) -> &'static str {
        self.as_str()
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// How an import behaves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportOptions {
    /// Orders for an unknown customer create that customer (from the
    /// order's `customer_name` and `customer_region`) instead of being
    /// rejected.
    pub create_missing_customers: bool,
    /// Where the rows come from (a file name), kept in the audit row.
    pub source: String,
}

/// What writing one record did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// A new row.
    Inserted,
    /// An existing row whose stored values changed.
    Updated,
    /// An existing row that already held these values; nothing was written.
    Unchanged,
}

/// A problem with one record's data: the row is skipped, the import goes on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowRejection {
    /// The column at fault, if one is.
    pub column: Option<&'static str>,
    /// What is wrong, and what to do about it when that is not obvious.
    pub reason: String,
}

impl fmt::Display for RowRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.column {
            Some(column) => write!(f, "column {column}: {}", self.reason),
            None => f.write_str(&self.reason),
        }
    }
}

/// Why a record was not written.
#[derive(Debug, thiserror::Error)]
pub enum RowError {
    /// The record's data is wrong; report it and go on with the next one.
    #[error("{0}")]
    Rejected(RowRejection),
    /// The database failed; the import must stop (drop the session to roll
    /// it back). Every later call on the session fails too.
    #[error(transparent)]
    Fatal(#[from] StoreError),
}

/// The importer's tally, kept in the audit row by [`ImportSession::commit`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportAudit {
    /// Data rows read from the source.
    pub rows_read: u64,
    /// Rows inserted.
    pub imported: u64,
    /// Rows that changed stored data.
    pub updated: u64,
    /// Rows identical to what was stored.
    pub unchanged: u64,
    /// Rows left out on purpose (filters).
    pub skipped: u64,
    /// Rows refused for bad data.
    pub rejected: u64,
}

/// The name of the savepoint [`ImportSession::savepoint`] sets.
const SAVEPOINT: &str = "tiercare_import";

/// A state of an [`ImportSession`] to go back to
/// ([`ImportSession::rollback_to`]).
#[derive(Debug)]
pub struct ImportSavepoint {
    customers_created: u64,
    redemptions: crate::coupons::RedemptionTally,
    kept_forgotten: u64,
    seen: [SeenRows; 6],
}

/// The most order lines one statement inserts: one statement per line would
/// cost a statement's overhead (binding, running, resetting) per line.
const ITEMS_PER_INSERT: usize = 32;

/// Customer external id → rowid, loaded once per session.
type CustomerIndex = HashMap<Box<str>, i64, BuildMapHasher>;

macro_rules! statements {
    ($($(#[$doc:meta])* $name:ident = $sql:expr;)*) => {
        /// The session's prepared statements, each prepared on first use and
        /// then held for the whole session.
        struct Statements<'s> {
            conn: &'s Connection,
            /// `items_insert(n)`, at `n - 1`.
            items_insert: Vec<Option<Statement<'s>>>,
            $($name: Option<Statement<'s>>,)*
        }

        impl<'s> Statements<'s> {
            fn new(conn: &'s Connection) -> Self {
                Statements {
                    conn,
                    items_insert: Vec::new(),
                    $($name: None,)*
                }
            }

            /// Inserts `rows` order lines (1 to [`ITEMS_PER_INSERT`]) in one
            /// statement: 7 parameters per line, as in `order_items`' columns
            /// `order_id, line_no, sku, description, quantity, unit_price,
            /// amount`. `OR FAIL`: a failure is fatal to the whole import, so
            /// SQLite need not keep a statement journal to undo the statement's
            /// first lines.
            fn items_insert(&mut self, rows: usize) -> rusqlite::Result<&mut Statement<'s>> {
                if self.items_insert.len() < rows {
                    self.items_insert.resize_with(rows, || None);
                }
                let slot = &mut self.items_insert[rows - 1];
                if slot.is_none() {
                    let values = vec!["(?, ?, ?, ?, ?, ?, ?)"; rows].join(", ");
                    *slot = Some(self.conn.prepare(&format!(
                        "INSERT OR FAIL INTO order_items (order_id, line_no, sku, \
                         description, quantity, unit_price, amount) VALUES {values}"
                    ))?);
                }
                Ok(slot.as_mut().expect("prepared above"))
            }

            $(
                $(#[$doc])*
                fn $name(&mut self) -> rusqlite::Result<&mut Statement<'s>> {
                    if self.$name.is_none() {
                        self.$name = Some(self.conn.prepare($sql)?);
                    }
                    Ok(self.$name.as_mut().expect("prepared above"))
                }
            )*
        }
    };
}

statements! {
    customer_insert = "INSERT INTO customers (external_id, name, email, phone, birthday, region, \
        owner, timezone, consent_email, consent_sms, consent_phone, attributes, created_at, \
        updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?13)";
    customer_select = "SELECT name, email, phone, birthday, region, owner, timezone, \
        consent_email, consent_sms, consent_phone, attributes FROM customers WHERE id = ?1";
    customer_update = "UPDATE customers SET name = coalesce(?2, name), \
        email = coalesce(?3, email), phone = coalesce(?4, phone), \
        birthday = coalesce(?5, birthday), region = coalesce(?6, region), \
        owner = coalesce(?7, owner), timezone = coalesce(?8, timezone), \
        consent_email = coalesce(?9, consent_email), consent_sms = coalesce(?10, consent_sms), \
        consent_phone = coalesce(?11, consent_phone), attributes = coalesce(?12, attributes), \
        updated_at = ?13 WHERE id = ?1";
    /// A customer created by an order import.
    customer_create = "INSERT INTO customers (external_id, name, region, created_at, updated_at) \
        VALUES (?1, ?2, ?3, ?4, ?4)";

    order_insert = "INSERT INTO orders (external_id, customer_id, ordered_at, amount, item_count) \
        VALUES (?1, ?2, ?3, ?4, ?5)";
    order_select = "SELECT id, customer_id, ordered_at, amount, item_count FROM orders \
        WHERE external_id = ?1";
    order_update = "UPDATE orders SET customer_id = ?2, ordered_at = ?3, amount = ?4, \
        item_count = ?5 WHERE id = ?1";
    item_select = "SELECT sku, description, quantity, unit_price, amount FROM order_items \
        WHERE order_id = ?1 ORDER BY line_no";
    item_delete = "DELETE FROM order_items WHERE order_id = ?1";

    interaction_insert = "INSERT INTO interactions (external_id, customer_id, kind, occurred_at, \
        by_manager, note) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
    interaction_select = "SELECT id, customer_id, kind, occurred_at, by_manager, note \
        FROM interactions WHERE external_id = ?1";
    interaction_update = "UPDATE interactions SET customer_id = ?2, kind = ?3, occurred_at = ?4, \
        by_manager = coalesce(?5, by_manager), note = coalesce(?6, note) WHERE id = ?1";

    complaint_insert = "INSERT INTO complaints (external_id, customer_id, opened_at, resolved_at, \
        severity, subject) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
    complaint_select = "SELECT id, customer_id, opened_at, resolved_at, severity, subject \
        FROM complaints WHERE external_id = ?1";
    complaint_update = "UPDATE complaints SET customer_id = ?2, opened_at = ?3, \
        resolved_at = coalesce(?4, resolved_at), severity = ?5, subject = coalesce(?6, subject) \
        WHERE id = ?1";

    feedback_insert = "INSERT INTO feedback (external_id, customer_id, given_at, score, comment) \
        VALUES (?1, ?2, ?3, ?4, ?5)";
    feedback_select = "SELECT id, customer_id, given_at, score, comment FROM feedback \
        WHERE external_id = ?1";
    feedback_update = "UPDATE feedback SET customer_id = ?2, given_at = ?3, score = ?4, \
        comment = coalesce(?5, comment) WHERE id = ?1";

    manager_insert = "INSERT INTO managers (external_id, name, email, role, capacity, active, \
        created_at, updated_at, timezone) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?8)";
    manager_select = "SELECT id, name, email, role, capacity, active, timezone FROM managers \
        WHERE external_id = ?1";
    manager_update = "UPDATE managers SET name = ?2, email = coalesce(?3, email), \
        role = coalesce(?4, role), capacity = coalesce(?5, capacity), \
        active = coalesce(?6, active), updated_at = ?7, timezone = coalesce(?8, timezone) \
        WHERE id = ?1";
}

impl Store {
    /// Starts an import of `kind` at the current time. Waits up to the busy
    /// timeout for another writer, then fails with [`StoreError::Locked`].
    pub fn import(
        &mut self,
        kind: ImportKind,
        options: ImportOptions,
    ) -> Result<ImportSession<'_>, StoreError> {
        self.import_at(kind, options, chrono::Utc::now().timestamp())
    }

    /// Starts an import of `kind` as if it were `now` (unix seconds UTC):
    /// rows it inserts or changes get `now` as their `created_at` /
    /// `updated_at`, and the audit row starts at `now`.
    pub fn import_at(
        &mut self,
        kind: ImportKind,
        options: ImportOptions,
        now: i64,
    ) -> Result<ImportSession<'_>, StoreError> {
        let conn = &self.conn;
        let path = self.label.as_path();
        // An order's customer is always one the session looked up or created, and its lines
        // belong to the order just written: SQLite's check of every row would only repeat that.
        let foreign_keys_off = if kind == ImportKind::Orders {
            Some(foreign_keys_off(conn).at(path)?)
        } else {
            None
        };
        let tx = Transaction::new_unchecked(conn, TransactionBehavior::Immediate).at(path)?;
        let sql = format!("SELECT NOT EXISTS (SELECT 1 FROM {})", kind.table());
        let target_was_empty: bool = tx.query_row(&sql, [], |row| row.get(0)).at(path)?;
        let mut deferred_indexes = if target_was_empty {
            drop_secondary_indexes(&tx, kind.table()).at(path)?
        } else {
            Vec::new()
        };
        // An orders import writes the orders' lines too: with no lines stored yet, their
        // secondary indexes (the recommender's `order_items_by_sku`, whose inserts land all
        // over the B-tree) are built once at commit as well, from sorted data.
        if kind == ImportKind::Orders && target_was_empty {
            let no_lines: bool = tx
                .query_row("SELECT NOT EXISTS (SELECT 1 FROM order_items)", [], |row| {
                    row.get(0)
                })
                .at(path)?;
            if no_lines {
                deferred_indexes.extend(drop_secondary_indexes(&tx, "order_items").at(path)?);
            }
        }
        let creates_customers = kind == ImportKind::Customers
            || (kind == ImportKind::Orders && options.create_missing_customers);
        let deferred_search = if creates_customers {
            DeferredSearch::begin(&tx).at(path)?
        } else {
            None
        };
        Ok(ImportSession {
            statements: Statements::new(conn),
            conn,
            path,
            kind,
            options,
            now,
            clock: Instant::now(),
            target_was_empty,
            deferred_indexes,
            deferred_search,
            customers: None,
            forgotten: Default::default(),
            seen: Default::default(),
            customers_created: 0,
            redemptions: Default::default(),
            order_points: None,
            failed: false,
            tx,
            _foreign_keys_off: foreign_keys_off,
        })
    }
}

/// An import in progress: one `IMMEDIATE` transaction.
///
/// Write records with the method of their kind; each returns what it did, or
/// a [`RowRejection`] to report while going on, or a fatal error after which
/// the session can only be dropped. [`commit`](ImportSession::commit) makes
/// everything visible at once; dropping the session undoes everything.
pub struct ImportSession<'s> {
    // Declared before `tx`, so the statements are finalised before the
    // transaction rolls back on drop.
    statements: Statements<'s>,
    pub(crate) conn: &'s Connection,
    path: &'s Path,
    kind: ImportKind,
    options: ImportOptions,
    now: i64,
    clock: Instant,
    /// Whether the session's own table was empty when it began: then only
    /// this session can have stored a key, so rows are inserted without
    /// looking, and a repeated key shows up as a unique-key conflict.
    target_was_empty: bool,
    /// `CREATE INDEX` statements of the indexes dropped at the start, run
    /// again at commit.
    deferred_indexes: Vec<String>,
    /// The search index's insert trigger, dropped for the session when it creates customers.
    deferred_search: Option<DeferredSearch>,
    customers: Option<CustomerIndex>,
    /// Forgotten customers, whose personal fields an import leaves out.
    forgotten: customers::ForgottenCustomers,
    /// Rows written so far, per kind.
    seen: [SeenRows; 6],
    customers_created: u64,
    /// Coupon codes orders redeemed, and unknown ones.
    redemptions: crate::coupons::RedemptionTally,
    /// What an imported order earns in points, if anything.
    order_points: Option<crate::points::OrderPoints>,
    /// A fatal error happened: nothing more may be written or committed.
    failed: bool,
    tx: Transaction<'s>,
    /// Declared after `tx`: foreign keys come back on after the transaction ends.
    _foreign_keys_off: Option<PragmaOff<'s>>,
}

impl fmt::Debug for ImportSession<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImportSession")
            .field("path", &self.path)
            .field("kind", &self.kind)
            .field("options", &self.options)
            .field("customers_created", &self.customers_created)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

impl ImportSession<'_> {
    /// The kind this session imports, as given to [`Store::import`].
    pub fn kind(&self) -> ImportKind {
        self.kind
    }

    /// How many customers this session created for orders of unknown
    /// customers.
    pub fn customers_created(&self) -> u64 {
        self.customers_created
    }

    /// The coupon codes imported orders redeemed, and the unknown codes they carried.
    pub fn redemptions(&self) -> crate::coupons::RedemptionTally {
        self.redemptions
    }

    /// Writes the audit row (`imports`) and commits the whole import.
    ///
    /// Fails with [`StoreError::ImportAborted`] (and rolls back) if a record
    /// method returned a fatal error earlier.
    pub fn commit(self, audit: &ImportAudit) -> Result<(), StoreError> {
        let ImportSession {
            statements,
            path,
            kind,
            options,
            now,
            clock,
            customers_created,
            failed,
            deferred_indexes,
            deferred_search,
            tx,
            ..
        } = self;
        drop(statements);
        if failed {
            return Err(StoreError::ImportAborted {
                path: path.to_path_buf(),
            });
        }
        for sql in &deferred_indexes {
            tx.execute_batch(sql).at(path)?;
        }
        if let Some(search) = deferred_search {
            search.finish(&tx).at(path)?;
        }
        let elapsed = i64::try_from(clock.elapsed().as_secs()).unwrap_or(i64::MAX);
        tx.execute(
            "INSERT INTO imports (kind, source, started_at, finished_at, rows_read, imported, \
             updated, unchanged, skipped, rejected, customers_created) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            params![
                kind.as_str(),
                options.source,
                now,
                now.saturating_add(elapsed),
                sql_count(audit.rows_read),
                sql_count(audit.imported),
                sql_count(audit.updated),
                sql_count(audit.unchanged),
                sql_count(audit.skipped),
                sql_count(audit.rejected),
                sql_count(customers_created),
            ],
        )
        .at(path)?;
        tx.commit().at(path)
    }

    /// Marks the present state of the session, to come back to with
    /// [`rollback_to`](ImportSession::rollback_to): an SQL savepoint inside
    /// the import's transaction, with the session's own counters.
    ///
    /// Fails (and writes nothing) after a fatal error.
    pub fn savepoint(&mut self) -> Result<ImportSavepoint, StoreError> {
        if self.failed {
            return Err(StoreError::ImportAborted {
                path: self.path.to_path_buf(),
            });
        }
        self.conn
            .execute_batch(&format!("SAVEPOINT {SAVEPOINT}"))
            .at(self.path)?;
        Ok(ImportSavepoint {
            customers_created: self.customers_created,
            redemptions: self.redemptions,
            kept_forgotten: self.forgotten.kept,
            seen: self.seen.clone(),
        })
    }

    /// Undoes everything written since `savepoint`: the rows in the
    /// database and the session's counters ([`customers_created`],
    /// [`kept_forgotten`], the rows remembered to reject repeats), as if
    /// those records had never been written. A fatal error since then is
    /// undone too, once SQLite has gone back.
    ///
    /// [`customers_created`]: ImportSession::customers_created
    /// [`kept_forgotten`]: ImportSession::kept_forgotten
    pub fn rollback_to(&mut self, savepoint: ImportSavepoint) -> Result<(), StoreError> {
        self.conn
            .execute_batch(&format!("ROLLBACK TO {SAVEPOINT}; RELEASE {SAVEPOINT}"))
            .at(self.path)?;
        self.customers_created = savepoint.customers_created;
        self.redemptions = savepoint.redemptions;
        self.forgotten.kept = savepoint.kept_forgotten;
        self.seen = savepoint.seen;
        // Customers created since are gone again: read the map afresh when next needed.
        self.customers = None;
        self.failed = false;
        Ok(())
    }

    /// Runs one record's write, refusing to go on after a fatal error and
    /// remembering a new one.
    fn guarded(
        &mut self,
        write: impl FnOnce(&mut Self) -> Result<Outcome, RowError>,
    ) -> Result<Outcome, RowError> {
        if self.failed {
            return Err(RowError::Fatal(StoreError::ImportAborted {
                path: self.path.to_path_buf(),
            }));
        }
        let result = write(self);
        if matches!(result, Err(RowError::Fatal(_))) {
            self.failed = true;
        }
        result
    }

    /// Whether a row of `kind` may be inserted without looking for a stored
    /// one first.
    fn insert_blindly(&self, kind: ImportKind) -> bool {
        kind == self.kind && self.target_was_empty
    }

    /// The rowid of the customer with `external_id`, from the session's map.
    fn customer_rowid(&mut self, external_id: &str) -> Result<Option<i64>, StoreError> {
        let index = customer_index(&mut self.customers, self.conn, self.path)?;
        Ok(index.get(external_id).copied())
    }

    /// Rejects the row when row `rowid`, which has the same key, was
    /// written earlier in this session.
    fn check_seen(
        &self,
        kind: ImportKind,
        rowid: i64,
        key: &str,
        derived: bool,
    ) -> Result<(), RowError> {
        match self.seen[kind.index()].line_of(rowid) {
            Some(line) => Err(duplicate(kind, key, derived, line)),
            None => Ok(()),
        }
    }

    /// The rowid of a row just inserted by `result`; a unique-key conflict
    /// means the key was written earlier in this session (the table was
    /// empty, or the key was looked up first) and rejects the row.
    fn inserted(
        &self,
        kind: ImportKind,
        key: &str,
        derived: bool,
        result: rusqlite::Result<usize>,
    ) -> Result<i64, RowError> {
        let err = match result {
            Ok(_) => return Ok(self.conn.last_insert_rowid()),
            Err(err) => err,
        };
        let unique_conflict = matches!(
            &err,
            rusqlite::Error::SqliteFailure(failure, _)
                if failure.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
        );
        if unique_conflict {
            let first_line = self
                .stored_rowid(kind, key)?
                .and_then(|rowid| self.seen[kind.index()].line_of(rowid));
            if let Some(line) = first_line {
                return Err(duplicate(kind, key, derived, line));
            }
        }
        Err(RowError::Fatal(StoreError::at(self.path, err)))
    }

    /// The rowid of the stored row of `kind` with `key`, if there is one.
    fn stored_rowid(&self, kind: ImportKind, key: &str) -> Result<Option<i64>, StoreError> {
        let sql = format!("SELECT id FROM {} WHERE external_id = ?1", kind.table());
        self.conn
            .prepare_cached(&sql)
            .and_then(|mut stmt| stmt.query_row([key], |row| row.get(0)).optional())
            .at(self.path)
    }

    /// Notes that the stored row `rowid` of `kind` already matched the
    /// record on `line`.
    fn unchanged(&mut self, kind: ImportKind, rowid: i64, line: u64) -> Outcome {
        self.remember(kind, rowid, line);
        Outcome::Unchanged
    }

    /// Notes that row `rowid` of `kind` was written from `line`.
    fn remember(&mut self, kind: ImportKind, rowid: i64, line: u64) {
        self.seen[kind.index()].note(rowid, line);
    }
}

/// Drops the indexes of `table` that were made with `CREATE INDEX` and are not
/// unique (those enforce keys the import relies on), returning their SQL to
/// run again at commit: building an index once over sorted data is much
/// faster than updating it row by row.
fn drop_secondary_indexes(tx: &Transaction<'_>, table: &str) -> rusqlite::Result<Vec<String>> {
    let indexes: Vec<(String, String)> = tx
        .prepare(
            "SELECT s.name, s.sql FROM pragma_index_list(?1) AS l \
             JOIN sqlite_schema AS s ON s.type = 'index' AND s.name = l.name \
             WHERE l.origin = 'c' AND l.\"unique\" = 0 AND s.sql IS NOT NULL",
        )?
        .query_map([table], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut deferred = Vec::with_capacity(indexes.len());
    for (name, sql) in indexes {
        tx.execute_batch(&format!("DROP INDEX \"{}\"", name.replace('"', "\"\"")))?;
        deferred.push(sql);
    }
    Ok(deferred)
}

/// The trigger that adds each new customer to the search index `customers_search` (migration 23).
const SEARCH_INSERT_TRIGGER: &str = "customers_search_on_insert";

/// The search index's insert trigger, dropped while an import creates customers and put back at
/// commit, after the customers created are added to the index in one statement.
///
/// Row by row, the trigger makes every insert a statement with its own savepoint, and FTS5
/// writes its pending entries to disk at each savepoint: one tiny segment per customer, merged
/// again and again (a quarter of the writing thread of the Online Retail import, which creates
/// 4,338 customers). Dropping the trigger is part of the import's transaction, so a rollback,
/// or a crash, brings it back. The rows the session inserts are exactly those above the largest
/// id at its start (ids are the rowid, given as the largest plus one, and an import deletes no
/// customer); the session never updates a customer it created (a repeated key is rejected
/// first), so the update trigger never sees a row missing from the index.
#[derive(Debug)]
struct DeferredSearch {
    /// The trigger's `CREATE TRIGGER` statement, run again at commit.
    trigger_sql: String,
    /// The largest customer id when the session began.
    last_id: i64,
}

impl DeferredSearch {
    /// Drops the trigger (if the schema has it) and notes where new customers start.
    fn begin(tx: &Transaction<'_>) -> rusqlite::Result<Option<DeferredSearch>> {
        let trigger_sql: Option<String> = tx
            .query_row(
                "SELECT sql FROM sqlite_schema WHERE type = 'trigger' AND name = ?1",
                [SEARCH_INSERT_TRIGGER],
                |row| row.get(0),
            )
            .optional()?;
        let Some(trigger_sql) = trigger_sql else {
            return Ok(None);
        };
        let last_id = tx.query_row("SELECT coalesce(max(id), 0) FROM customers", [], |row| {
            row.get(0)
        })?;
        tx.execute_batch(&format!("DROP TRIGGER {SEARCH_INSERT_TRIGGER}"))?;
        Ok(Some(DeferredSearch {
            trigger_sql,
            last_id,
        }))
    }

    /// Adds the customers created since [`DeferredSearch::begin`] to the index, as the trigger
    /// would have, and puts the trigger back.
    fn finish(self, tx: &Transaction<'_>) -> rusqlite::Result<()> {
        tx.execute(
            "INSERT INTO customers_search (rowid, external_id, name, email) \
             SELECT id, external_id, name, email FROM customers WHERE id > ?1 ORDER BY id",
            [self.last_id],
        )?;
        tx.execute_batch(&self.trigger_sql)
    }
}

/// The rejection of a row whose key was written from `first_line` already.
fn duplicate(kind: ImportKind, key: &str, derived: bool, first_line: u64) -> RowError {
    if derived {
        return RowError::Rejected(RowRejection {
            column: None,
            reason: format!("duplicate row (same as line {first_line})"),
        });
    }
    let column = kind.id_column();
    reject(
        column,
        format!("duplicate {column} '{key}' (first seen on line {first_line})"),
    )
}

/// The session's customer map, loaded on first use.
fn customer_index<'a>(
    slot: &'a mut Option<CustomerIndex>,
    conn: &Connection,
    path: &Path,
) -> Result<&'a mut CustomerIndex, StoreError> {
    if slot.is_none() {
        // Sized up front: growing a map of a million keys rehashes it many
        // times over.
        let count: i64 = conn
            .query_row("SELECT count(*) FROM customers", [], |row| row.get(0))
            .at(path)?;
        let capacity = usize::try_from(count).unwrap_or(0);
        let mut index =
            CustomerIndex::with_capacity_and_hasher(capacity, BuildMapHasher::default());
        let mut stmt = conn
            .prepare("SELECT external_id, id FROM customers")
            .at(path)?;
        let mut rows = stmt.query([]).at(path)?;
        while let Some(row) = rows.next().at(path)? {
            let external_id = row.get_ref(0).and_then(|v| Ok(v.as_str()?)).at(path)?;
            index.insert(external_id.into(), row.get(1).at(path)?);
        }
        *slot = Some(index);
    }
    Ok(slot.as_mut().expect("loaded above"))
}

/// A count as SQLite stores it (saturating; counts never get near 2^63).
fn sql_count(count: u64) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}

/// The rejection of a row for a customer that is not in the database.
fn unknown_customer(external_id: &str, hint: &str) -> RowError {
    reject(
        "customer_id",
        format!("unknown customer '{external_id}': import customers first{hint}"),
    )
}

/// The rejection of a row for a problem in `column`.
fn reject(column: &'static str, reason: impl Into<String>) -> RowError {
    RowError::Rejected(RowRejection {
        column: Some(column),
        reason: reason.into(),
    })
}

/// Rejects an empty value in a required text column.
fn require(column: &'static str, value: &str) -> Result<(), RowError> {
    if value.trim().is_empty() {
        return Err(reject(column, format!("{column} is empty")));
    }
    Ok(())
}

/// Rejects a number that is NaN or infinite.
fn require_finite(column: &'static str, value: f64) -> Result<(), RowError> {
    if !value.is_finite() {
        return Err(reject(
            column,
            format!("{column} is not a finite number ({value})"),
        ));
    }
    Ok(())
}

/// Whether a given text differs from a stored one; `None` ("not given")
/// never differs.
fn text_differs(stored: ValueRef<'_>, given: Option<&str>) -> bool {
    match given {
        None => false,
        Some(given) => !text_equals(stored, Some(given)),
    }
}

/// Whether a stored text equals `given` exactly, `NULL` equalling `None`.
fn text_equals(stored: ValueRef<'_>, given: Option<&str>) -> bool {
    match (stored, given) {
        (ValueRef::Null, None) => true,
        (ValueRef::Text(stored), Some(given)) => stored == given.as_bytes(),
        _ => false,
    }
}

/// Whether a given integer differs from a stored one; `None` never differs.
fn int_differs(stored: ValueRef<'_>, given: Option<i64>) -> bool {
    match (stored, given) {
        (_, None) => false,
        (ValueRef::Integer(stored), Some(given)) => stored != given,
        _ => true,
    }
}

/// Whether a stored number equals `given`.
fn real_equals(stored: ValueRef<'_>, given: f64) -> bool {
    match stored {
        ValueRef::Real(stored) => stored == given,
        // REAL columns may keep whole numbers as integers on disk.
        ValueRef::Integer(stored) => stored as f64 == given,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::CustomerRecord;

    #[test]
    fn kinds_display_as_lower_case_plurals() {
        let names: Vec<String> = ImportKind::ALL.iter().map(ToString::to_string).collect();
        assert_eq!(
            names,
            [
                "customers",
                "orders",
                "interactions",
                "complaints",
                "feedback",
                "managers"
            ]
        );
    }

    /// Orders are written without SQLite's foreign-key checks; they are on again afterwards,
    /// whether the import committed or was dropped.
    #[test]
    fn foreign_keys_are_back_on_after_an_orders_import() {
        let mut store = Store::open_in_memory().unwrap();
        let foreign_keys = |store: &Store| -> i64 {
            store
                .conn
                .query_row("PRAGMA foreign_keys", [], |row| row.get(0))
                .unwrap()
        };
        let session = store
            .import(ImportKind::Orders, ImportOptions::default())
            .unwrap();
        assert_eq!(
            session
                .conn
                .query_row("PRAGMA foreign_keys", [], |row| row.get::<_, i64>(0))
                .unwrap(),
            0
        );
        drop(session);
        assert_eq!(foreign_keys(&store), 1);
        let session = store
            .import(ImportKind::Orders, ImportOptions::default())
            .unwrap();
        session.commit(&ImportAudit::default()).unwrap();
        assert_eq!(foreign_keys(&store), 1);
        // And they are enforced again.
        let err = store
            .conn
            .execute(
                "INSERT INTO orders (external_id, customer_id, ordered_at, amount) \
                 VALUES ('O1', 42, 0, 1.0)",
                [],
            )
            .unwrap_err();
        assert!(err.to_string().contains("FOREIGN KEY"), "{err}");
    }

    /// The names of the indexes the session's connection sees on `table`.
    fn indexes_on(conn: &Connection, table: &str) -> Vec<String> {
        conn.prepare("SELECT name FROM pragma_index_list(?1) WHERE origin = 'c' ORDER BY name")
            .unwrap()
            .query_map([table], |row| row.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    }

    /// The first orders import builds the lines' product index once at commit instead of
    /// inserting into it line by line (a third of the Online Retail import's CPU), and a
    /// later import, with lines stored, keeps it in place.
    #[test]
    fn the_first_orders_import_builds_the_lines_product_index_at_commit() {
        let mut store = Store::open_in_memory().unwrap();
        let session = store
            .import(ImportKind::Orders, ImportOptions::default())
            .unwrap();
        assert_eq!(
            indexes_on(session.conn, "order_items"),
            Vec::<String>::new()
        );
        session.commit(&ImportAudit::default()).unwrap();
        assert_eq!(
            indexes_on(&store.conn, "order_items"),
            ["order_items_by_sku"]
        );
        store
            .conn
            .execute_batch(
                "INSERT INTO customers (external_id, name, created_at, updated_at) \
                 VALUES ('C1', 'C1', 0, 0); \
                 INSERT INTO orders (external_id, customer_id, ordered_at, amount) \
                 VALUES ('O1', 1, 0, 1.0); \
                 INSERT INTO order_items (order_id, line_no, sku, quantity, unit_price, amount) \
                 VALUES (1, 1, 'X', 1.0, 1.0, 1.0);",
            )
            .unwrap();
        let session = store
            .import(ImportKind::Orders, ImportOptions::default())
            .unwrap();
        assert_eq!(
            indexes_on(session.conn, "order_items"),
            ["order_items_by_sku"]
        );
    }

    /// Going back to a savepoint undoes the rows, the customers created and the rows
    /// remembered against repeats: writing the same orders again is as if for the first time.
    #[test]
    fn rollback_to_a_savepoint_undoes_rows_and_counters() {
        let mut store = Store::open_in_memory().unwrap();
        let options = ImportOptions {
            create_missing_customers: true,
            source: "test".into(),
        };
        let mut session = store.import(ImportKind::Orders, options).unwrap();
        let order = |id: &str, customer: &str| crate::records::OrderRecord {
            external_id: id.into(),
            customer_external_id: customer.into(),
            ordered_at: 1_700_000_000,
            amount: 10.0,
            ..Default::default()
        };
        let savepoint = session.savepoint().unwrap();
        assert_eq!(
            session.order(2, &order("O1", "C1")).unwrap(),
            Outcome::Inserted
        );
        assert_eq!(
            session.order(3, &order("O2", "C2")).unwrap(),
            Outcome::Inserted
        );
        assert_eq!(session.customers_created(), 2);
        session.rollback_to(savepoint).unwrap();
        assert_eq!(session.customers_created(), 0);
        let count = |session: &ImportSession<'_>, table: &str| -> i64 {
            session
                .conn
                .query_row(&format!("SELECT count(*) FROM {table}"), [], |row| {
                    row.get(0)
                })
                .unwrap()
        };
        assert_eq!(count(&session, "orders"), 0);
        assert_eq!(count(&session, "customers"), 0);
        // Not a repeat of line 2, and C1 is created again (the session's map forgot it).
        assert_eq!(
            session.order(4, &order("O1", "C1")).unwrap(),
            Outcome::Inserted
        );
        assert_eq!(session.customers_created(), 1);
        session.commit(&ImportAudit::default()).unwrap();
        let counts = store.counts().unwrap();
        assert_eq!((counts.customers, counts.orders), (1, 1));
    }

    /// Customers an import creates reach the search index at commit, in one statement, and
    /// the index's insert trigger is back afterwards, whether the import committed or was
    /// dropped: the index agrees with the table (FTS5's own integrity check against its
    /// content) and finds old, imported and later customers.
    #[test]
    fn customers_an_import_creates_are_searchable_and_the_trigger_is_back() {
        let mut store = Store::open_in_memory().unwrap();
        let trigger = |store: &Store| -> i64 {
            store
                .conn
                .query_row(
                    "SELECT count(*) FROM sqlite_schema WHERE type = 'trigger' AND name = ?1",
                    [SEARCH_INSERT_TRIGGER],
                    |row| row.get(0),
                )
                .unwrap()
        };
        let found = |store: &Store, text: &str| -> Vec<String> {
            store
                .conn
                .prepare(
                    "SELECT c.external_id FROM customers_search f \
                     JOIN customers c ON c.id = f.rowid \
                     WHERE customers_search MATCH ?1 ORDER BY c.id",
                )
                .unwrap()
                .query_map([format!("\"{text}\"")], |row| row.get(0))
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap()
        };
        let customer = |id: &str, name: &str| CustomerRecord {
            external_id: id.into(),
            name: Some(name.into()),
            ..Default::default()
        };
        let mut session = store
            .import(ImportKind::Customers, ImportOptions::default())
            .unwrap();
        session
            .customer(2, &customer("C-1", "Ada Lovelace"))
            .unwrap();
        session
            .customer(3, &customer("C-2", "Alan Turing"))
            .unwrap();
        session.commit(&ImportAudit::default()).unwrap();
        assert_eq!(trigger(&store), 1);

        let options = ImportOptions {
            create_missing_customers: true,
            source: "test".into(),
        };
        let order = |id: &str, customer: &str, name: &str| crate::records::OrderRecord {
            external_id: id.into(),
            customer_external_id: customer.into(),
            customer_name: Some(name.into()),
            ordered_at: 1_700_000_000,
            amount: 10.0,
            ..Default::default()
        };
        // Dropped: nothing of it stays, and the trigger is still there.
        let mut session = store.import(ImportKind::Orders, options.clone()).unwrap();
        session
            .order(2, &order("O-9", "C-9", "Grace Hopper"))
            .unwrap();
        drop(session);
        assert_eq!(trigger(&store), 1);
        assert!(found(&store, "Hop").is_empty());

        let mut session = store.import(ImportKind::Orders, options).unwrap();
        session.order(2, &order("O-1", "C-1", "ignored")).unwrap();
        session
            .order(3, &order("O-2", "C-3", "Grace Hopper"))
            .unwrap();
        session
            .order(4, &order("O-3", "C-4", "Edsger Dijkstra"))
            .unwrap();
        assert_eq!(session.customers_created(), 2);
        session.commit(&ImportAudit::default()).unwrap();
        assert_eq!(trigger(&store), 1);
        assert_eq!(found(&store, "Hop"), ["C-3"]);
        assert_eq!(found(&store, "Dij"), ["C-4"]);
        assert_eq!(found(&store, "Lov"), ["C-1"]);
        let indexed: i64 = store
            .conn
            .query_row("SELECT count(*) FROM customers_search_docsize", [], |row| {
                row.get(0)
            })
            .unwrap();
        assert_eq!(indexed, 4);

        // A customer written outside an import is indexed by the trigger again.
        store
            .conn
            .execute(
                "INSERT INTO customers (external_id, name, created_at, updated_at) \
                 VALUES ('C-5', 'Barbara Liskov', 0, 0)",
                [],
            )
            .unwrap();
        assert_eq!(found(&store, "Lis"), ["C-5"]);
        store
            .conn
            .execute(
                "INSERT INTO customers_search (customers_search, rank) \
                 VALUES ('integrity-check', 1)",
                [],
            )
            .unwrap();
    }

    /// Lines are inserted many per statement: an order of more lines than one statement takes
    /// keeps every line, numbered and in order, and reads back as unchanged.
    #[test]
    fn an_order_of_many_lines_is_written_whole_and_in_order() {
        let mut store = Store::open_in_memory().unwrap();
        let lines = 2 * ITEMS_PER_INSERT + 5;
        let order = crate::records::OrderRecord {
            external_id: "O1".into(),
            customer_external_id: "C1".into(),
            ordered_at: 1_700_000_000,
            amount: 1.0,
            items: (1..=lines)
                .map(|i| crate::records::OrderItem {
                    sku: (i % 3 != 0).then(|| format!("S{i}")),
                    description: None,
                    quantity: i as f64,
                    unit_price: 0.5,
                    amount: i as f64 * 0.5,
                })
                .collect(),
            ..Default::default()
        };
        for expected in [Outcome::Inserted, Outcome::Unchanged] {
            let options = ImportOptions {
                create_missing_customers: true,
                source: "test".into(),
            };
            let mut session = store.import(ImportKind::Orders, options).unwrap();
            assert_eq!(session.order(2, &order).unwrap(), expected);
            session.commit(&ImportAudit::default()).unwrap();
        }
        let stored: Vec<(i64, Option<String>, f64)> = store
            .conn
            .prepare("SELECT line_no, sku, quantity FROM order_items ORDER BY line_no")
            .unwrap()
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        let expected: Vec<(i64, Option<String>, f64)> = (1..=lines)
            .map(|i| (i as i64, (i % 3 != 0).then(|| format!("S{i}")), i as f64))
            .collect();
        assert_eq!(stored, expected);
    }

    #[test]
    fn after_a_fatal_error_nothing_more_is_written_or_committed() {
        let mut store = Store::open_in_memory().unwrap();
        let mut session = store
            .import(ImportKind::Customers, ImportOptions::default())
            .unwrap();
        let ada = CustomerRecord {
            external_id: "C1".into(),
            ..CustomerRecord::default()
        };
        session.customer(2, &ada).unwrap();
        // Make the next write fail inside SQLite.
        session.conn.execute_batch("DROP TABLE customers").unwrap();
        let bo = CustomerRecord {
            external_id: "C2".into(),
            ..CustomerRecord::default()
        };
        assert!(matches!(
            session.customer(3, &bo),
            Err(RowError::Fatal(StoreError::Sqlite(_)))
        ));
        let cy = CustomerRecord {
            external_id: "C3".into(),
            ..CustomerRecord::default()
        };
        assert!(matches!(
            session.customer(4, &cy),
            Err(RowError::Fatal(StoreError::ImportAborted { .. }))
        ));
        let err = session.commit(&ImportAudit::default()).unwrap_err();
        assert!(matches!(err, StoreError::ImportAborted { .. }), "{err:?}");
        // Rolled back: the table and the first customer are as before.
        assert_eq!(store.counts().unwrap().customers, 0);
        let imports: i64 = store
            .conn
            .query_row("SELECT count(*) FROM imports", [], |row| row.get(0))
            .unwrap();
        assert_eq!(imports, 0);
    }
}
