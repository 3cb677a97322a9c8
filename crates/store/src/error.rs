//! The store's error type and the mapping from SQLite's result codes to it.

use std::path::{Path, PathBuf};

use rusqlite::ErrorCode;

/// Everything that can go wrong in the store.
///
/// Each message names the database file and says what to do about it, so the
/// command line can print it as it is.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database file does not exist (and the caller asked not to create it).
    #[error("database {} does not exist: run `tiercare init` first", path.display())]
    NotFound {
        /// The path that was opened.
        path: PathBuf,
    },

    /// The file is not SQLite at all, or it is a SQLite database that belongs
    /// to another application.
    #[error(
        "{} is not a tiercare database (it is not SQLite, or another application's database): \
         check the path, or move the file away and run `tiercare init`",
        path.display()
    )]
    NotTiercare {
        /// The path that was opened.
        path: PathBuf,
    },

    /// The database was written by a newer tiercare with a schema this one
    /// does not know.
    #[error(
        "database {} has schema version {found}, but this tiercare knows versions up to \
         {supported}: upgrade tiercare",
        path.display()
    )]
    TooNew {
        /// The path that was opened.
        path: PathBuf,
        /// The schema version found in the file.
        found: u32,
        /// The newest schema version this build knows.
        supported: u32,
    },

    /// The database can be read but not written.
    #[error(
        "database {} is read-only: check the file's permissions, and that its directory is \
         writable (SQLite creates `-wal` and `-shm` files beside it)",
        path.display()
    )]
    ReadOnly {
        /// The path that was opened.
        path: PathBuf,
    },

    /// Another connection held a write lock for longer than the busy timeout.
    #[error(
        "database {} is locked: another tiercare process holds a write lock; try again when it \
         finishes",
        path.display()
    )]
    Locked {
        /// The path that was opened.
        path: PathBuf,
    },

    /// SQLite could not open the file for another reason than its absence
    /// (a missing directory, a directory without permission, ...).
    #[error(
        "cannot open database {}: {source}; check that its directory exists and is accessible",
        path.display()
    )]
    CannotOpen {
        /// The path that was opened.
        path: PathBuf,
        /// SQLite's own error.
        source: rusqlite::Error,
    },

    /// An import session met a fatal error earlier; it wrote nothing and
    /// must be dropped.
    #[error(
        "the import into {} stopped after an earlier error and was rolled back; nothing was \
         written: fix that error and import again",
        path.display()
    )]
    ImportAborted {
        /// The database the import was writing to.
        path: PathBuf,
    },

    /// An assessment session met an error earlier; it wrote nothing and
    /// must be dropped.
    #[error(
        "the assessment being recorded in {} stopped after an earlier error and was rolled \
         back; nothing was written: fix that error and assess again",
        path.display()
    )]
    AssessmentAborted {
        /// The database the assessment was writing to.
        path: PathBuf,
    },

    /// No customer has this external id.
    #[error(
        "unknown customer '{id}': no customer has this id; customer ids are the `customer_id` \
         values of your customer imports (check the spelling and case, or import the customer \
         first)"
    )]
    UnknownCustomer {
        /// The external id that was looked up.
        id: String,
    },

    /// A tier decision names a customer row that does not exist, typically
    /// because the customer was deleted while the assessment ran. Nothing of
    /// the assessment was recorded.
    #[error(
        "customer #{rowid} no longer exists (deleted while the assessment ran?): nothing of the \
         assessment was recorded; run the assessment again"
    )]
    CustomerGone {
        /// The customer rowid of the decision.
        rowid: i64,
    },

    /// A manual tier pin was refused; nothing was written.
    #[error("cannot pin the tier of customer '{id}': {problem}")]
    InvalidPin {
        /// The customer's external id.
        id: String,
        /// What is wrong with the pin (its `Display` says what to do).
        problem: PinProblem,
    },

    /// A logged contact (call or visit) was refused; nothing was written.
    #[error("cannot log a contact with customer '{id}': {problem}")]
    InvalidContact {
        /// The customer's external id.
        id: String,
        /// What is wrong (its `Display` says what to do).
        problem: ContactProblem,
    },

    /// A follow-up session met an error earlier; it wrote nothing and must
    /// be dropped.
    #[error(
        "the follow-ups being recorded in {} stopped after an earlier error and were rolled \
         back; nothing was written: fix that error and plan again",
        path.display()
    )]
    FollowUpsAborted {
        /// The database the follow-ups were written to.
        path: PathBuf,
    },

    /// A planned follow-up was refused before anything of it was written;
    /// the session goes on.
    #[error("cannot record follow-up {key}: {problem}")]
    InvalidFollowUp {
        /// The follow-up's occurrence key.
        key: String,
        /// What is wrong with it, and what to do.
        problem: String,
    },

    /// No follow-up has this id.
    #[error("unknown follow-up #{id}: no follow-up has this id")]
    UnknownFollowUp {
        /// The id that was looked up.
        id: i64,
    },

    /// A follow-up cannot change its status that way (it is no longer
    /// planned).
    #[error("follow-up #{id} is {status}, not planned: only a planned follow-up can be {wanted}")]
    FollowUpNotPlanned {
        /// The follow-up's id.
        id: i64,
        /// Its stored status.
        status: String,
        /// What was asked: `cancelled` or `done`.
        wanted: &'static str,
    },

    /// No task has this id.
    #[error("unknown task #{id}: no task has this id; `tiercare tasks` lists them with their ids")]
    UnknownTask {
        /// The id that was looked up.
        id: i64,
    },

    /// The task was already done; nothing was changed.
    #[error("task #{id} is already done (by {done_by} at {}): nothing to change", utc_time(*done_at))]
    TaskAlreadyDone {
        /// The task's id.
        id: i64,
        /// When it was done, unix seconds UTC.
        done_at: i64,
        /// Who did it.
        done_by: String,
    },

    /// A task change or a new task was refused; nothing was written.
    #[error("cannot change task {task}: {problem}")]
    InvalidTask {
        /// `#<id>`, or `"<title>"` for a new task.
        task: String,
        /// What is wrong, and what to do.
        problem: String,
    },

    /// No manager has this external id.
    #[error(
        "unknown manager '{id}': no manager has this id; manager ids are the `manager_id` \
         values of your manager imports"
    )]
    UnknownManager {
        /// The external id that was looked up.
        id: String,
    },

    /// The manager does not take work (`active` is false); nothing was
    /// written.
    #[error(
        "manager '{id}' is inactive and takes no new customers or tasks: choose an active \
         manager, or mark this one active in the manager import"
    )]
    InactiveManager {
        /// The manager's external id.
        id: String,
    },

    /// A manager's leave cannot be recorded as given; nothing was written.
    #[error("cannot record the leave of manager '{id}': {problem}")]
    InvalidLeave {
        /// The manager's external id.
        id: String,
        /// What is wrong, and what to do.
        problem: String,
    },

    /// No available manager can take over a manager's work; nothing was written.
    #[error(
        "no other manager is available to take over the work of '{id}': mark one active or          end their leave, or name one with --to"
    )]
    NoOneAvailable {
        /// The manager whose work was to be moved.
        id: String,
    },

    /// No outbox row has this id.
    #[error(
        "unknown outbox e-mail #{id}: no e-mail has this id; `tiercare outbox list` lists them"
    )]
    UnknownEmail {
        /// The id that was looked up.
        id: i64,
    },

    /// An outbox e-mail cannot change its state that way; nothing was
    /// written.
    #[error("outbox e-mail #{id} is {state}: it cannot be {wanted} ({hint})")]
    EmailState {
        /// The row's id.
        id: i64,
        /// Its stored state.
        state: String,
        /// What was asked: `retried`, `cancelled`, ...
        wanted: &'static str,
        /// Which states allow it.
        hint: &'static str,
    },

    /// An address given for the suppression list is unusable (empty).
    #[error("cannot suppress {address:?}: {problem}")]
    InvalidSuppression {
        /// The address as given.
        address: String,
        /// What is wrong, and what to do.
        problem: String,
    },

    /// An operating-system error outside SQLite, such as failing to inspect
    /// the file.
    #[error("cannot access {}: {source}", path.display())]
    Io {
        /// The path concerned.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },

    /// The database file is damaged (SQLite's `quick_check` found problems, or a read met a
    /// corrupt page). Nothing was written to it.
    #[error(
        "database {} is damaged ({problem}); nothing was written to it. Run `tiercare doctor` \
         to see what is wrong, then restore a backup made with `tiercare backup` (see \
         \"Backups and repair\" in the README)",
        path.display()
    )]
    Damaged {
        /// The path that was opened.
        path: PathBuf,
        /// SQLite's first finding, in its words.
        problem: String,
    },

    /// A schema migration run with foreign keys off would have left a broken reference; it
    /// was rolled back.
    #[error(
        "database {} cannot be upgraded to schema version {version}: {problem}; nothing was \
         changed. Run `tiercare doctor`, and report this with its output",
        path.display()
    )]
    MigrationBroke {
        /// The database file.
        path: PathBuf,
        /// The schema version the migration would have made.
        version: u32,
        /// The first broken reference found.
        problem: String,
    },

    /// `tiercare backup` was asked to write over an existing file.
    #[error(
        "{} already exists: choose another file, or add --force to replace it",
        path.display()
    )]
    BackupExists {
        /// The backup file asked for.
        path: PathBuf,
    },

    /// A staff account refused: a login taken, a bad login name, an unknown account.
    #[error("staff account '{login}': {problem}")]
    StaffAccount {
        /// The login name.
        login: String,
        /// What is wrong, and what to do.
        problem: String,
    },

    /// Any other SQLite error. These are bugs or damaged files rather than
    /// situations a user can fix by retrying.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
}

impl StoreError {
    /// Turns a SQLite error met while using the database at `path` into the
    /// variant that tells the user what to do: busy becomes [`StoreError::Locked`],
    /// read-only becomes [`StoreError::ReadOnly`], "not a database" becomes
    /// [`StoreError::NotTiercare`], a corrupt page [`StoreError::Damaged`]; everything else
    /// stays [`StoreError::Sqlite`].
    pub(crate) fn at(path: &Path, err: rusqlite::Error) -> Self {
        match err.sqlite_error_code() {
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StoreError::Locked {
                path: path.to_path_buf(),
            },
            Some(ErrorCode::ReadOnly) => StoreError::ReadOnly {
                path: path.to_path_buf(),
            },
            Some(ErrorCode::NotADatabase) => StoreError::NotTiercare {
                path: path.to_path_buf(),
            },
            Some(ErrorCode::DatabaseCorrupt) => StoreError::Damaged {
                path: path.to_path_buf(),
                problem: sqlite_message(&err),
            },
            _ => StoreError::Sqlite(err),
        }
    }
}

/// SQLite's own message for `err`, once (rusqlite's `Display` repeats the code's text).
fn sqlite_message(err: &rusqlite::Error) -> String {
    match err {
        rusqlite::Error::SqliteFailure(_, Some(message)) => message.clone(),
        rusqlite::Error::SqliteFailure(code, None) => code.to_string(),
        other => other.to_string(),
    }
}

/// Attaches the database path to a rusqlite result, mapping the error with
/// [`StoreError::at`].
pub(crate) trait AtPath<T> {
    /// Maps the error of `self` as met on the database at `path`.
    fn at(self, path: &Path) -> Result<T, StoreError>;
}

impl<T> AtPath<T> for Result<T, rusqlite::Error> {
    fn at(self, path: &Path) -> Result<T, StoreError> {
        self.map_err(|err| StoreError::at(path, err))
    }
}

/// Why a manual tier pin was refused; typed, so a page can say it in its own language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PinProblem {
    /// The tier is empty.
    EmptyTier,
    /// The reason is empty.
    NoReason,
    /// Nobody is named as pinning it.
    NoPinner,
    /// The pin would end at `until`, which is not after `now`.
    EndNotAfterNow {
        /// The requested end (unix seconds).
        until: i64,
        /// The time of the request (unix seconds).
        now: i64,
    },
}

impl std::fmt::Display for PinProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::EmptyTier => f.write_str("the tier is empty: name the tier to pin"),
            Self::NoReason => {
                f.write_str("a pin needs a reason: say why this customer's tier is set by hand")
            }
            Self::NoPinner => f.write_str("say who pins the tier"),
            Self::EndNotAfterNow { until, now } => write!(
                f,
                "it would end at {}, which is not after now ({}): give a later end time, or none",
                utc_time(*until),
                utc_time(*now)
            ),
        }
    }
}

/// Why a logged contact was refused; typed, so a page can say it in its own language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContactProblem {
    /// The kind is empty or more than one word.
    Kind,
    /// The customer was forgotten: nothing new is kept about them.
    Forgotten,
}

impl std::fmt::Display for ContactProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Kind => "say what kind of contact it was in one word, such as call or visit",
            Self::Forgotten => {
                "the customer was forgotten (a data-rights request): nothing new is kept about them"
            }
        })
    }
}

/// `at` (unix seconds) as an ISO 8601 date and time in UTC, for messages: the store knows no
/// workspace time zone, and raw seconds mean nothing to a reader.
pub(crate) fn utc_time(at: i64) -> String {
    chrono::DateTime::from_timestamp(at, 0).map_or_else(
        || at.to_string(),
        |time| time.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqlite_error(code: i32) -> rusqlite::Error {
        rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None)
    }

    #[test]
    fn result_codes_map_to_actionable_variants() {
        let path = Path::new("/data/tiercare.db");
        assert!(matches!(
            StoreError::at(path, sqlite_error(rusqlite::ffi::SQLITE_BUSY)),
            StoreError::Locked { .. }
        ));
        assert!(matches!(
            StoreError::at(path, sqlite_error(rusqlite::ffi::SQLITE_READONLY)),
            StoreError::ReadOnly { .. }
        ));
        assert!(matches!(
            StoreError::at(path, sqlite_error(rusqlite::ffi::SQLITE_NOTADB)),
            StoreError::NotTiercare { .. }
        ));
        let damaged = StoreError::at(path, sqlite_error(rusqlite::ffi::SQLITE_CORRUPT));
        assert!(matches!(damaged, StoreError::Damaged { .. }), "{damaged:?}");
        let text = damaged.to_string();
        assert_eq!(text.matches("malformed").count(), 1, "{text}");
        assert!(text.contains("tiercare doctor") && text.contains("tiercare backup"));
    }

    #[test]
    fn messages_name_the_file_and_the_remedy() {
        let path = PathBuf::from("/data/tiercare.db");
        let cases = [
            (
                StoreError::NotFound { path: path.clone() },
                "database /data/tiercare.db does not exist: run `tiercare init` first",
            ),
            (
                StoreError::Locked { path: path.clone() },
                "database /data/tiercare.db is locked: another tiercare process holds a write \
                 lock; try again when it finishes",
            ),
            (
                StoreError::TooNew {
                    path: path.clone(),
                    found: 9,
                    supported: 1,
                },
                "database /data/tiercare.db has schema version 9, but this tiercare knows \
                 versions up to 1: upgrade tiercare",
            ),
        ];
        for (err, expected) in cases {
            assert_eq!(err.to_string(), expected);
        }
        let text = StoreError::ReadOnly { path: path.clone() }.to_string();
        assert!(
            text.contains("/data/tiercare.db") && text.contains("check the file's permissions")
        );
        let text = StoreError::NotTiercare { path }.to_string();
        assert!(text.starts_with("/data/tiercare.db is not a tiercare database"));
    }
}
