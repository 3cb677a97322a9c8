//! Watching the workspace's `rules/` and `templates/` folders for changes.
//!
//! Folders, not files, are watched: editors save by writing a temporary file and renaming it
//! over the old one, which a watch on the old file would miss. The workspace root is watched
//! too (not recursively), so that a folder deleted and created again is noticed and watched
//! anew. Bursts of events are debounced (`notify-debouncer-full`): a change is reported once
//! the folders have been quiet for the debounce time, with the instant of its first event so
//! the daemon can measure the time from save to active rules.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use notify::RecursiveMode;
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
    /// The watcher reported an error (the folders are reloaded anyway, to be safe).
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

impl FolderWatcher {
    /// Watches `folders` (each recursively, if it exists) and `root` (for folders deleted and
    /// recreated), calling `on_change` from the watcher's thread after `debounce` of quiet.
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
                    let paths: Vec<&PathBuf> = event
                        .paths
                        .iter()
                        .filter(|path| relevant(path, &watched))
                        .collect();
                    if paths.is_empty() {
                        continue;
                    }
                    folders_replaced |= paths.iter().any(|path| watched.contains(path));
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
