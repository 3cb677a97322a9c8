//! One daemon per database: an advisory lock (`flock`) on a file beside the database.
//!
//! It is also the one-sender lock: `tiercare run` and `tiercare send` both hold it while they
//! send, so a sender that holds it knows every claim still open in the outbox was left by a
//! process that died, and recovers them at once. The lock file is found from the database's
//! real path ([`lock_path`]), so a symbolic link to the database, or a workspace whose
//! `database` setting reaches it through a linked folder, meets the same lock.
//!
//! The lock file is `<database>.daemon.lock` (`tiercare.db.daemon.lock`) and holds the pid of
//! the process that has it. The kernel releases the lock when that process ends, even after
//! `kill -9`, so a stale file never blocks a restart; the pid inside is only informative (for
//! the message a second daemon prints and for `tiercare status`).

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use rustix::fs::{FlockOperation, flock};

/// Why the lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds it.
    #[error(
        "another tiercare daemon (pid {}) is running on this database (lock file {}); \
         stop it first, or use `tiercare status` to see what it is doing",
        pid.map_or_else(|| "unknown".to_owned(), |pid| pid.to_string()),
        path.display()
    )]
    Held {
        /// The holder's pid, when the file says.
        pid: Option<u32>,
        /// The lock file.
        path: PathBuf,
    },
    /// The lock file could not be opened or written.
    #[error("cannot use the lock file {}: {source}", path.display())]
    Io {
        /// The lock file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
}

/// The lock file of the database at `database`: beside the file the path leads to, with
/// symbolic links (of the file and of its folders) and `..` resolved, so every path that
/// reaches one database file by name finds one lock. Not covered: hard links and bind mounts
/// (another name for the same file); a database that does not exist yet resolves its folder.
pub fn lock_path(database: &Path) -> PathBuf {
    let database = std::fs::canonicalize(database).unwrap_or_else(|_| {
        match (database.parent(), database.file_name()) {
            (Some(parent), Some(name)) if !parent.as_os_str().is_empty() => {
                std::fs::canonicalize(parent)
                    .map_or_else(|_| database.to_path_buf(), |parent| parent.join(name))
            }
            _ => database.to_path_buf(),
        }
    });
    let mut name = database.into_os_string();
    name.push(".daemon.lock");
    PathBuf::from(name)
}

/// The held lock; released when dropped (or when the process ends).
#[derive(Debug)]
pub struct DaemonLock {
    file: File,
    path: PathBuf,
}

fn open(path: &Path) -> Result<File, LockError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|source| LockError::Io {
            path: path.to_owned(),
            source,
        })
}

/// How long [`DaemonLock::acquire`] keeps trying before it says the lock is held: far longer
/// than [`holder`]'s look takes, short enough not to be noticed.
pub const HELD_FOR_SURE: std::time::Duration = std::time::Duration::from_millis(300);

fn read_pid(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

impl DaemonLock {
    /// Takes the lock of the database at `database` and writes this process's pid into it, or
    /// says who holds it.
    ///
    /// [`holder`] (what `tiercare status` asks) takes a shared lock for an instant to look, so
    /// a refusal is retried for [`HELD_FOR_SURE`] before it counts: a daemon holds the lock
    /// for as long as it runs, a look for microseconds.
    pub fn acquire(database: &Path) -> Result<DaemonLock, LockError> {
        let path = lock_path(database);
        let mut file = open(&path)?;
        let io_err = |source: io::Error| LockError::Io {
            path: path.clone(),
            source,
        };
        let started = std::time::Instant::now();
        loop {
            match flock(&file, FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => break,
                Err(rustix::io::Errno::WOULDBLOCK) if started.elapsed() < HELD_FOR_SURE => {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                Err(rustix::io::Errno::WOULDBLOCK) => {
                    return Err(LockError::Held {
                        pid: read_pid(&mut file),
                        path,
                    });
                }
                Err(errno) => return Err(io_err(errno.into())),
            }
        }
        file.set_len(0).map_err(io_err)?;
        file.seek(SeekFrom::Start(0)).map_err(io_err)?;
        writeln!(file, "{}", std::process::id()).map_err(io_err)?;
        file.sync_all().map_err(io_err)?;
        Ok(DaemonLock { file, path })
    }

    /// The lock file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for DaemonLock {
    fn drop(&mut self) {
        // Clear the pid so the file does not name a process that no longer runs; the lock
        // itself goes with the file descriptor.
        let _ = self.file.set_len(0);
        let _ = flock(&self.file, FlockOperation::Unlock);
    }
}

/// Whether a daemon holds the lock of the database at `database`: `Some(pid)` (the pid may be
/// unknown for an instant while the holder writes it) or `None`. Takes nothing.
pub fn holder(database: &Path) -> Result<Option<Option<u32>>, LockError> {
    let path = lock_path(database);
    if !path.exists() {
        return Ok(None);
    }
    let mut file = open(&path)?;
    match flock(&file, FlockOperation::NonBlockingLockShared) {
        Ok(()) => {
            let _ = flock(&file, FlockOperation::Unlock);
            Ok(None)
        }
        Err(rustix::io::Errno::WOULDBLOCK) => Ok(Some(read_pid(&mut file))),
        Err(errno) => Err(LockError::Io {
            path,
            source: errno.into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_naming_the_holder_and_freed_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("tiercare.db");
        assert_eq!(holder(&db).unwrap(), None);
        let lock = DaemonLock::acquire(&db).unwrap();
        assert_eq!(lock.path(), dir.path().join("tiercare.db.daemon.lock"));
        assert_eq!(holder(&db).unwrap(), Some(Some(std::process::id())));
        // flock locks belong to the open file, so a second open in this process conflicts too.
        let err = DaemonLock::acquire(&db).unwrap_err();
        assert!(
            matches!(err, LockError::Held { pid: Some(pid), .. } if pid == std::process::id()),
            "{err:?}"
        );
        assert!(err.to_string().contains(&std::process::id().to_string()));
        drop(lock);
        assert_eq!(holder(&db).unwrap(), None);
        DaemonLock::acquire(&db).unwrap();
    }

    #[test]
    fn a_symlink_to_the_database_meets_the_same_lock() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("tiercare.db");
        std::fs::write(&db, b"").unwrap();
        let elsewhere = dir.path().join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        let link = elsewhere.join("linked.db");
        std::os::unix::fs::symlink(&db, &link).unwrap();
        let lock = DaemonLock::acquire(&db).unwrap();
        let err = DaemonLock::acquire(&link).unwrap_err();
        assert!(matches!(err, LockError::Held { .. }), "{err:?}");
        assert_eq!(holder(&link).unwrap(), Some(Some(std::process::id())));
        drop(lock);
    }

    #[test]
    fn a_look_by_status_at_the_same_moment_does_not_refuse_a_start() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("tiercare.db");
        // What `holder` does, held a little longer: a shared lock on the lock file.
        let looker = open(&lock_path(&db)).unwrap();
        flock(&looker, FlockOperation::NonBlockingLockShared).unwrap();
        let release = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(50));
            flock(&looker, FlockOperation::Unlock).unwrap();
        });
        let lock = DaemonLock::acquire(&db).expect("a look is not a daemon");
        release.join().unwrap();
        assert_eq!(holder(&db).unwrap(), Some(Some(std::process::id())));
        drop(lock);
    }
}
