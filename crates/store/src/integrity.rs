//! A database's health: SQLite's integrity checks ([`Store::check_integrity`], and the refusal
//! of a damaged file by [`Store::open_for_writing`]), a consistent online copy
//! ([`Store::backup_to`]), and a diagnosis that works even on a file that cannot be opened as a
//! store ([`diagnose`], for `tiercare doctor`).
//!
//! # A damaged database is never written
//!
//! Every command that writes opens the database with [`Store::open_for_writing`], which runs
//! `PRAGMA quick_check` before anything else (before the WAL switch and the migrations) and
//! refuses a file that fails it with [`StoreError::Damaged`]; so does [`Store::open`] when it
//! would have to migrate. A corrupt page met later (by a read-only command, or a page damaged
//! after the check) also surfaces as [`StoreError::Damaged`] (see `StoreError::at`), and the
//! transaction it happened in is rolled back.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use rusqlite::{Connection, ErrorCode, OpenFlags};
use serde::Serialize;

use crate::db::Store;
use crate::error::{AtPath, StoreError};
use crate::schema::{APPLICATION_ID, supported_version, user_version};

/// At most this many problems are collected by one check (SQLite stops there).
const MAX_PROBLEMS: u32 = 20;

/// The WAL file's header, and each frame's header, in bytes.
const WAL_HEADER: u64 = 32;
const WAL_FRAME_HEADER: u64 = 24;

/// What an integrity check found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IntegrityReport {
    /// `integrity_check` (full) rather than `quick_check`.
    pub full: bool,
    /// SQLite's findings, in its words (empty when the database is sound); at most 20.
    pub problems: Vec<String>,
    /// How long the check took, in milliseconds.
    pub elapsed_ms: u64,
}

impl IntegrityReport {
    /// Whether the check found nothing wrong.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }

    /// The findings in one line: how many, and the first.
    pub fn summary(&self) -> String {
        match self.problems.as_slice() {
            [] => "no problems found".to_owned(),
            [one] => format!("SQLite's check found a problem: {one}"),
            [first, ..] => {
                let more = if self.problems.len() >= MAX_PROBLEMS as usize {
                    " or more"
                } else {
                    ""
                };
                format!(
                    "SQLite's check found {}{more} problems, the first: {first}",
                    self.problems.len()
                )
            }
        }
    }
}

/// Whether `err` says the file is damaged (rather than busy, missing, ...).
fn is_damage(err: &rusqlite::Error) -> bool {
    matches!(
        err.sqlite_error_code(),
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase)
    )
}

/// SQLite's message for `err`, once.
fn message(err: &rusqlite::Error) -> String {
    match err {
        rusqlite::Error::SqliteFailure(_, Some(message)) => message.clone(),
        rusqlite::Error::SqliteFailure(code, None) => code.to_string(),
        other => other.to_string(),
    }
}

/// Runs `quick_check` (or `integrity_check` when `full`) on `conn`'s main database. An error
/// that says the file is damaged (a page so broken that the check itself stops) is a finding,
/// not an error.
pub(crate) fn run_check(conn: &Connection, full: bool) -> rusqlite::Result<IntegrityReport> {
    let started = Instant::now();
    let pragma = if full {
        "integrity_check"
    } else {
        "quick_check"
    };
    let found: rusqlite::Result<Vec<String>> = conn
        .prepare(&format!("PRAGMA {pragma}({MAX_PROBLEMS})"))
        .and_then(|mut stmt| stmt.query_map([], |row| row.get::<_, String>(0))?.collect());
    let mut problems = match found {
        Ok(rows) => rows,
        Err(err) if is_damage(&err) => vec![message(&err)],
        Err(err) => return Err(err),
    };
    if problems == ["ok"] {
        problems.clear();
    }
    // SQLite starts its first finding with "*** in database main ***" on a line of its own.
    let problems = problems
        .iter()
        .flat_map(|text| text.lines())
        .filter(|line| !line.starts_with("*** in database"))
        .map(str::to_owned)
        .collect();
    Ok(IntegrityReport {
        full,
        problems,
        elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    })
}

/// Refuses a damaged database: `Err(Damaged)` with the first finding when `quick_check` fails.
pub(crate) fn refuse_damaged(conn: &Connection, label: &Path) -> Result<(), StoreError> {
    let report = run_check(conn, false).at(label)?;
    if report.is_ok() {
        return Ok(());
    }
    Err(StoreError::Damaged {
        path: label.to_path_buf(),
        problem: report.summary(),
    })
}

/// The files this process checked with [`Store::open_for_writing`] (canonical paths).
static CHECKED: Mutex<BTreeSet<PathBuf>> = Mutex::new(BTreeSet::new());

/// Whether this process checked the file at `path` already.
pub(crate) fn checked_before(path: Option<&Path>) -> bool {
    let Some(path) = path.and_then(|p| p.canonicalize().ok()) else {
        return false;
    };
    CHECKED
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .contains(&path)
}

/// Remembers that the file at `path` passed its check in this process.
pub(crate) fn remember_checked(path: Option<&Path>) {
    if let Some(path) = path.and_then(|p| p.canonicalize().ok()) {
        CHECKED
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(path);
    }
}

/// What [`Store::backup_to`] made.
#[derive(Debug, Clone, Serialize)]
pub struct BackupReport {
    /// The copy.
    pub path: PathBuf,
    /// Its size in bytes.
    pub bytes: u64,
    /// Its schema version.
    pub schema_version: u32,
    /// How long the copy took, in milliseconds.
    pub copy_ms: u64,
    /// How long checking the copy (`quick_check`) took, in milliseconds.
    pub check_ms: u64,
}

impl Store {
    /// Runs SQLite's `quick_check` (or the slower `integrity_check` when `full`, which also
    /// checks that every index matches its table) and reports what it found.
    pub fn check_integrity(&self, full: bool) -> Result<IntegrityReport, StoreError> {
        run_check(&self.conn, full).at(&self.label)
    }

    /// Writes a consistent copy of the database to `dest` (`VACUUM INTO`: one read
    /// transaction, so it is safe while the daemon or a command writes), compacted, then checks
    /// the copy with `quick_check` and its identity before putting it in place. The copy is
    /// made beside `dest` under a temporary name and flushed to disk, so `dest` is either the
    /// whole verified copy or absent. An existing `dest` is refused with
    /// [`StoreError::BackupExists`] unless `force`.
    pub fn backup_to(&self, dest: &Path, force: bool) -> Result<BackupReport, StoreError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| StoreError::Io { path, source }
        };
        if !force && dest.exists() {
            return Err(StoreError::BackupExists {
                path: dest.to_path_buf(),
            });
        }
        let name = dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "backup".to_owned());
        let temp = dest.with_file_name(format!(".{name}.partial-{}", std::process::id()));
        match fs::remove_file(&temp) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
                return Err(io(&temp)(err));
            }
            _ => {}
        }
        let started = Instant::now();
        let copied = self
            .conn
            .execute("VACUUM INTO ?1", [temp.to_string_lossy()])
            .at(&self.label);
        if let Err(err) = copied {
            let _ = fs::remove_file(&temp);
            return Err(err);
        }
        let copy_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let verified = verify_copy(&temp);
        let (schema_version, check_ms) = match verified {
            Ok(found) => found,
            Err(err) => {
                let _ = fs::remove_file(&temp);
                return Err(err);
            }
        };
        // VACUUM INTO does not flush its output: do it before the copy takes its name.
        let flushed = fs::File::open(&temp).and_then(|file| file.sync_all());
        if let Err(err) = flushed {
            let _ = fs::remove_file(&temp);
            return Err(io(&temp)(err));
        }
        let placed = if force {
            fs::rename(&temp, dest)
        } else {
            // A link fails if `dest` appeared meanwhile, where a rename would replace it.
            fs::hard_link(&temp, dest).and_then(|()| fs::remove_file(&temp))
        };
        if let Err(err) = placed {
            let _ = fs::remove_file(&temp);
            if err.kind() == std::io::ErrorKind::AlreadyExists {
                return Err(StoreError::BackupExists {
                    path: dest.to_path_buf(),
                });
            }
            return Err(io(dest)(err));
        }
        if let Some(dir) = dest.parent().filter(|d| !d.as_os_str().is_empty()) {
            // The new name itself reaches the disk with its folder.
            let _ = fs::File::open(dir).and_then(|d| d.sync_all());
        }
        let bytes = fs::metadata(dest).map_err(io(dest))?.len();
        Ok(BackupReport {
            path: dest.to_path_buf(),
            bytes,
            schema_version,
            copy_ms,
            check_ms,
        })
    }
}

/// Opens the fresh copy at `path` read-only and checks it: a tiercare database that passes
/// `quick_check`. Returns its schema version and how long the check took.
fn verify_copy(path: &Path) -> Result<(u32, u64), StoreError> {
    crate::db::configure_sqlite();
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .at(path)?;
    let report = run_check(&conn, false).at(path)?;
    if !report.is_ok() {
        return Err(StoreError::Damaged {
            path: path.to_path_buf(),
            problem: format!("the fresh copy fails its check: {}", report.summary()),
        });
    }
    let application_id: i32 = conn
        .query_row("PRAGMA application_id", [], |row| row.get(0))
        .at(path)?;
    if application_id != APPLICATION_ID {
        return Err(StoreError::NotTiercare {
            path: path.to_path_buf(),
        });
    }
    Ok((user_version(&conn).at(path)?, report.elapsed_ms))
}

/// The WAL file beside a database: its size and how many frames (changed pages not yet copied
/// into the database file) it holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct WalState {
    /// The `-wal` file exists.
    pub exists: bool,
    /// Its size in bytes.
    pub bytes: u64,
    /// Frames it holds (0 after a checkpoint that truncated it).
    pub frames: u64,
    /// The `-shm` file (the WAL's index, shared by the connections) exists.
    pub shm_exists: bool,
}

/// One table, and whether all its rows can be read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableHealth {
    /// The table's name.
    pub name: String,
    /// Its rows, when they could all be read.
    pub rows: Option<u64>,
    /// What stopped the reading, otherwise.
    pub error: Option<String>,
}

/// What [`diagnose`] found about a database file.
#[derive(Debug, Clone, Serialize)]
pub struct Diagnosis {
    /// The file.
    pub path: PathBuf,
    /// Its size in bytes (`None` when it does not exist).
    pub bytes: Option<u64>,
    /// The WAL beside it.
    pub wal: WalState,
    /// Why the file could not be opened or read at all, if so.
    pub open_error: Option<String>,
    /// `PRAGMA application_id`.
    pub application_id: Option<i32>,
    /// The id belongs to tiercare.
    pub is_tiercare: bool,
    /// `PRAGMA user_version`: the migrations it has run.
    pub schema_version: Option<u32>,
    /// The newest schema version this build knows.
    pub supported_version: u32,
    /// Page size in bytes.
    pub page_size: Option<u64>,
    /// Pages in the file.
    pub page_count: Option<u64>,
    /// Unused pages (space a `tiercare backup` copy leaves out).
    pub freelist_count: Option<u64>,
    /// The integrity check, when it could run.
    pub integrity: Option<IntegrityReport>,
    /// Every table and whether its rows can be read (on a damaged file: what can be rescued).
    pub tables: Vec<TableHealth>,
}

impl Diagnosis {
    /// Healthy: opened, tiercare's, a schema version this build knows, and no integrity
    /// problem.
    pub fn is_healthy(&self) -> bool {
        self.open_error.is_none()
            && self.is_tiercare
            && self
                .schema_version
                .is_some_and(|v| v <= self.supported_version)
            && self.integrity.as_ref().is_some_and(IntegrityReport::is_ok)
            && self.tables.iter().all(|t| t.error.is_none())
    }
}

/// Examines the database file at `path` without writing to it (a read-only connection, which
/// never checkpoints the WAL or migrates): identity, schema version, size, WAL state, the
/// integrity check (`integrity_check` when `full`, else `quick_check`), and which tables can be
/// read. Problems are findings in the [`Diagnosis`], not errors.
pub fn diagnose(path: &Path, full: bool) -> Diagnosis {
    let wal_path = sibling(path, "-wal");
    let wal_bytes = fs::metadata(&wal_path).ok().map(|m| m.len());
    let mut diagnosis = Diagnosis {
        path: path.to_path_buf(),
        bytes: fs::metadata(path).ok().map(|m| m.len()),
        wal: WalState {
            exists: wal_bytes.is_some(),
            bytes: wal_bytes.unwrap_or(0),
            frames: 0,
            shm_exists: sibling(path, "-shm").exists(),
        },
        open_error: None,
        application_id: None,
        is_tiercare: false,
        schema_version: None,
        supported_version: supported_version(),
        page_size: None,
        page_count: None,
        freelist_count: None,
        integrity: None,
        tables: Vec::new(),
    };
    if diagnosis.bytes.is_none() {
        diagnosis.open_error = Some("the file does not exist".to_owned());
        return diagnosis;
    }
    if let Err(err) = examine(path, full, &mut diagnosis) {
        diagnosis.open_error = Some(message(&err));
    }
    if let Some(page_size) = diagnosis.page_size.filter(|size| *size > 0) {
        let frames = diagnosis.wal.bytes.saturating_sub(WAL_HEADER);
        diagnosis.wal.frames = frames / (WAL_FRAME_HEADER + page_size);
    }
    diagnosis
}

fn examine(path: &Path, full: bool, diagnosis: &mut Diagnosis) -> rusqlite::Result<()> {
    crate::db::configure_sqlite();
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    let pragma = |name: &str| conn.query_row(&format!("PRAGMA {name}"), [], |r| r.get::<_, i64>(0));
    let application_id = pragma("application_id")?;
    diagnosis.application_id = i32::try_from(application_id).ok();
    diagnosis.is_tiercare = diagnosis.application_id == Some(APPLICATION_ID);
    diagnosis.schema_version = Some(user_version(&conn)?);
    diagnosis.page_size = pragma("page_size").ok().map(i64::unsigned_abs);
    diagnosis.page_count = pragma("page_count").ok().map(i64::unsigned_abs);
    diagnosis.freelist_count = pragma("freelist_count").ok().map(i64::unsigned_abs);
    diagnosis.integrity = Some(run_check(&conn, full)?);
    let names: rusqlite::Result<Vec<String>> = conn
        .prepare(
            "SELECT name FROM sqlite_schema WHERE type = 'table' \
             AND name NOT LIKE 'sqlite_%' ORDER BY name",
        )
        .and_then(|mut stmt| stmt.query_map([], |row| row.get(0))?.collect());
    let names = match names {
        Ok(names) => names,
        Err(err) => {
            // The schema itself is damaged: no table can be found, let alone read.
            diagnosis.tables.push(TableHealth {
                name: "sqlite_schema".to_owned(),
                rows: None,
                error: Some(message(&err)),
            });
            return Ok(());
        }
    };
    for name in names {
        // Reading every column of every row finds damage in the rows themselves, which a
        // count over an index would not.
        let read = conn
            .prepare(&format!("SELECT * FROM \"{}\"", name.replace('"', "\"\"")))
            .and_then(|mut stmt| {
                let mut rows = stmt.query([])?;
                let mut count = 0_u64;
                while rows.next()?.is_some() {
                    count += 1;
                }
                Ok(count)
            });
        diagnosis.tables.push(match read {
            Ok(rows) => TableHealth {
                name,
                rows: Some(rows),
                error: None,
            },
            Err(err) => TableHealth {
                name,
                rows: None,
                error: Some(message(&err)),
            },
        });
    }
    Ok(())
}

/// `path` with `suffix` appended to its file name (`tiercare.db-wal`).
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}
