//! Watching the workspace's `rules/` and `templates/` folders, and deciding when a change has
//! settled enough to be loaded.
//!
//! Folders, not files, are watched: editors save by writing a temporary file and renaming it
//! over the old one, which a watch on the old file would miss. The workspace root is watched
//! too (not recursively), so that a folder deleted and created again is noticed and watched
//! anew. Events that change no content are dropped here: opening and reading files (the
//! daemon's own reloads read every file), metadata changes, and inotify's bookkeeping after a
//! watch is removed. Without that filter every reload would trigger the next one.
//!
//! Events are only a hint. What decides is the folders' content: [`Fingerprint`] hashes every
//! file's path and bytes, and [`Settle`] asks for a reload only when the fingerprint differs
//! from the one last loaded (or last refused), the folders have been quiet for the settle time,
//! and two readings the settle time apart are the same. A slow writer's valid prefix is
//! therefore never loaded: it changes before the second reading.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use notify::event::{AccessKind, AccessMode, EventKind, ModifyKind};
use notify::{Event, RecursiveMode};
use notify_debouncer_full::{DebounceEventResult, Debouncer, RecommendedCache, new_debouncer};

/// A debounced change in the watched folders.
#[derive(Debug, Clone)]
pub enum Change {
    /// Files changed; `first_seen` is when the first event of the burst happened, and
    /// `folders_replaced` says a watched folder itself was created or removed.
    Files {
        /// The instant of the burst's first event.
        first_seen: Instant,
        /// A watched folder itself appeared or disappeared.
        folders_replaced: bool,
    },
    /// The watcher reported an error (the folders are read again anyway, to be safe).
    Error(String),
}

/// Watches `rules/` and `templates/`; stops when dropped.
pub struct FolderWatcher {
    debouncer: Debouncer<notify::RecommendedWatcher, RecommendedCache>,
    folders: Vec<PathBuf>,
}

impl std::fmt::Debug for FolderWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FolderWatcher")
            .field("folders", &self.folders)
            .finish_non_exhaustive()
    }
}

fn relevant(path: &Path, folders: &[PathBuf]) -> bool {
    folders.iter().any(|folder| path.starts_with(folder))
}

/// Whether an event may mean changed content: creations, removals, writes and renames do;
/// opening, reading and closing a file unwritten, metadata (times, permissions) and inotify's
/// `IGNORED` after an unwatch (reported as `Other`, if at all) do not. A rescan notice (the
/// kernel's queue overflowed) does: events may have been lost.
fn may_change_content(event: &Event) -> bool {
    if event.need_rescan() {
        return true;
    }
    match event.kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) | EventKind::Modify(ModifyKind::Metadata(_)) | EventKind::Other => {
            false
        }
        EventKind::Any | EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_) => true,
    }
}

impl FolderWatcher {
    /// Watches `folders` (each recursively, if it exists) and `root` (for folders deleted and
    /// recreated), calling `on_change` from the watcher's thread with events that may change
    /// content, gathered for `debounce`.
    pub fn start(
        root: &Path,
        folders: Vec<PathBuf>,
        debounce: Duration,
        mut on_change: impl FnMut(Change) + Send + 'static,
    ) -> Result<FolderWatcher, notify::Error> {
        let watched = folders.clone();
        let handler = move |result: DebounceEventResult| match result {
            Ok(events) => {
                let mut first_seen: Option<Instant> = None;
                let mut folders_replaced = false;
                for event in &events {
                    if !may_change_content(event) {
                        continue;
                    }
                    let paths: Vec<&PathBuf> = event
                        .paths
                        .iter()
                        .filter(|path| relevant(path, &watched))
                        .collect();
                    if paths.is_empty() && !event.need_rescan() {
                        continue;
                    }
                    folders_replaced |=
                        event.need_rescan() || paths.iter().any(|path| watched.contains(path));
                    first_seen = Some(first_seen.map_or(event.time, |seen| seen.min(event.time)));
                }
                if let Some(first_seen) = first_seen {
                    on_change(Change::Files {
                        first_seen,
                        folders_replaced,
                    });
                }
            }
            Err(errors) => {
                let text = errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ");
                on_change(Change::Error(text));
            }
        };
        let debouncer = new_debouncer(debounce, None, handler)?;
        let mut watcher = FolderWatcher { debouncer, folders };
        watcher.debouncer.watch(root, RecursiveMode::NonRecursive)?;
        watcher.rewatch();
        Ok(watcher)
    }

    /// Watches every folder that exists again (after one was deleted and created anew);
    /// folders that do not exist are skipped (the root's watch will see them appear).
    pub fn rewatch(&mut self) {
        for folder in &self.folders {
            let _ = self.debouncer.unwatch(folder);
            if folder.is_dir()
                && let Err(err) = self.debouncer.watch(folder, RecursiveMode::Recursive)
            {
                tracing::warn!(folder = %folder.display(), error = %err, "cannot watch folder");
            }
        }
    }
}

/// What the watched folders hold: a SHA-256 over every file's path (relative to its folder)
/// and bytes, in path order, with a folder missing or a file unreadable hashed as such (so an
/// unreadable moment never looks like the content before it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// Reads `folders` (recursively) and hashes what they hold now.
    pub fn read(folders: &[PathBuf]) -> Fingerprint {
        let mut context = ring::digest::Context::new(&ring::digest::SHA256);
        for folder in folders {
            context.update(b"folder\0");
            context.update(folder.as_os_str().as_encoded_bytes());
            context.update(b"\0");
            if folder.is_dir() {
                hash_dir(&mut context, folder, folder);
            } else {
                context.update(b"missing\0");
            }
        }
        let mut bytes = [0; 32];
        bytes.copy_from_slice(context.finish().as_ref());
        Fingerprint(bytes)
    }
}

fn hash_dir(context: &mut ring::digest::Context, base: &Path, dir: &Path) {
    let mut entries: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(|entry| entry.ok().map(|entry| entry.path()))
            .collect(),
        Err(err) => {
            context.update(format!("unreadable dir: {:?}\0", err.kind()).as_bytes());
            return;
        }
    };
    entries.sort();
    for path in entries {
        let relative = path.strip_prefix(base).unwrap_or(&path);
        context.update(relative.as_os_str().as_encoded_bytes());
        context.update(b"\0");
        if path.is_dir() {
            context.update(b"dir\0");
            hash_dir(context, base, &path);
            continue;
        }
        match std::fs::read(&path) {
            Ok(bytes) => {
                context.update(&u64::try_from(bytes.len()).unwrap_or(u64::MAX).to_le_bytes());
                context.update(&bytes);
            }
            Err(err) => context.update(format!("unreadable: {:?}\0", err.kind()).as_bytes()),
        }
    }
}

/// What [`Settle::poll`] asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    /// Nothing to do now (no change pending, or it is still settling).
    Wait,
    /// The content is new and has settled: reload it. `first_seen` is the first event of the
    /// change, for the save-to-active time.
    Reload {
        /// When the change was first seen, if it came from the watcher.
        first_seen: Option<Instant>,
    },
}

#[derive(Debug, Clone, Copy)]
struct Pending {
    first_seen: Option<Instant>,
    reading: Fingerprint,
    due: Instant,
}

/// Decides when a change of the watched folders is ready to load: quiet for `settle`, read
/// twice `settle` apart with the same content, and different from the content last loaded or
/// refused. Driven by the daemon's loop, with the instants passed in.
#[derive(Debug)]
pub struct Settle {
    folders: Vec<PathBuf>,
    settle: Duration,
    loaded: Fingerprint,
    pending: Option<Pending>,
}

impl Settle {
    /// Starts from `loaded`, the content the active rules were read from (read before them,
    /// so a change in between is seen as a change).
    pub fn new(folders: Vec<PathBuf>, settle: Duration, loaded: Fingerprint) -> Settle {
        Settle {
            folders,
            settle,
            loaded,
            pending: None,
        }
    }

    /// The folders it reads.
    pub fn folders(&self) -> &[PathBuf] {
        &self.folders
    }

    /// The folders may have changed (an event at `now`, first seen at `first_seen`): read
    /// them, and wait for the settle time of quiet before reading them again.
    pub fn changed(&mut self, now: Instant, first_seen: Option<Instant>) {
        let first_seen = match (self.pending.and_then(|p| p.first_seen), first_seen) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.pending = Some(Pending {
            first_seen,
            reading: Fingerprint::read(&self.folders),
            due: now + self.settle,
        });
    }

    /// When [`Settle::poll`] must run next, if a change is pending.
    pub fn due(&self) -> Option<Instant> {
        self.pending.map(|pending| pending.due)
    }

    /// At `now`, reads the folders again if a change is due: the same content as the last
    /// reading, and not the content last loaded, asks for a reload; a different one waits
    /// another settle time; the loaded content again drops the change (nothing to do).
    pub fn poll(&mut self, now: Instant) -> Settled {
        let Some(pending) = self.pending else {
            return Settled::Wait;
        };
        if now < pending.due {
            return Settled::Wait;
        }
        let reading = Fingerprint::read(&self.folders);
        if reading != pending.reading {
            tracing::debug!("rules or templates still changing; waiting for them to settle");
            self.pending = Some(Pending {
                reading,
                due: now + self.settle,
                ..pending
            });
            return Settled::Wait;
        }
        self.pending = None;
        if reading == self.loaded {
            tracing::debug!("no content changed in rules/ or templates/; not reloading");
            return Settled::Wait;
        }
        self.loaded = reading;
        Settled::Reload {
            first_seen: pending.first_seen,
        }
    }

    /// A reload forced (`SIGHUP`) from the content there now: later changes compare with it.
    pub fn forced(&mut self) {
        self.pending = None;
        self.loaded = Fingerprint::read(&self.folders);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_reloads_once_after_two_equal_readings_and_never_on_the_loaded_content() {
        let tmp = tempfile::tempdir().unwrap();
        let rules = tmp.path().join("rules");
        std::fs::create_dir(&rules).unwrap();
        std::fs::write(rules.join("a.yaml"), "a: 1\n").unwrap();
        let folders = vec![rules.clone(), tmp.path().join("templates")];
        let settle = Duration::from_secs(1);
        let mut watch = Settle::new(folders.clone(), settle, Fingerprint::read(&folders));
        let t0 = Instant::now();

        // An event that changed nothing (a reload reading the files): no reload.
        watch.changed(t0, Some(t0));
        assert_eq!(watch.poll(t0 + settle), Settled::Wait);
        assert_eq!(watch.due(), None);

        // A valid prefix, then the rest before the second reading: only the whole loads.
        std::fs::write(rules.join("a.yaml"), "a: 1\nb:").unwrap();
        watch.changed(t0, Some(t0));
        assert_eq!(watch.poll(t0 + settle / 2), Settled::Wait);
        std::fs::write(rules.join("a.yaml"), "a: 1\nb: 2\n").unwrap();
        assert_eq!(watch.poll(t0 + settle), Settled::Wait);
        assert_eq!(watch.due(), Some(t0 + 2 * settle));
        assert_eq!(
            watch.poll(t0 + 2 * settle),
            Settled::Reload {
                first_seen: Some(t0)
            }
        );
        // Loaded: more events on the same content reload nothing.
        watch.changed(t0 + 3 * settle, None);
        assert_eq!(watch.poll(t0 + 4 * settle), Settled::Wait);

        // A new file, a folder removed: each is new content.
        std::fs::write(rules.join("b.yaml"), "").unwrap();
        watch.changed(t0, None);
        assert!(matches!(watch.poll(t0 + settle), Settled::Reload { .. }));
        std::fs::remove_dir_all(&rules).unwrap();
        watch.changed(t0, None);
        assert!(matches!(watch.poll(t0 + settle), Settled::Reload { .. }));
    }
}
