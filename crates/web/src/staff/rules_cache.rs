//! The rules as the customers list needs them (the tiers to filter by), compiled once per
//! version of the rule files instead of on every request.
//!
//! A request still reads the workspace's `rules/` (a few small files), so an edit is seen at
//! once; only compiling them (YAML and Rhai) is skipped while the files are those already
//! compiled. The key is the files themselves, `(path, text)` each: exactly what the rule set's
//! version hashes, compared in full, so no two versions can share an entry.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tiercare_engine::RuleFile;
use tiercare_scheduler::assess::RuleSource;
use tiercare_scheduler::workspace::Workspace;

/// What the list page reads from the compiled rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompiledRules {
    /// The rule set's version (the content hash of its files).
    pub version: String,
    /// The tiers' ids, in the rules' order.
    pub tiers: Vec<String>,
}

/// One compiled version: its files (the key) and what they compiled to, or their problems.
#[derive(Debug)]
struct Entry {
    files: Vec<RuleFile>,
    compiled: Result<Arc<CompiledRules>, String>,
}

/// The last compiled version of a workspace's rules, shared by the server's requests.
#[derive(Debug, Default)]
pub struct RulesCache {
    entry: Mutex<Option<Entry>>,
    compiles: AtomicU64,
}

impl RulesCache {
    /// The workspace's rules as they are on disk now: the cached compilation when the files
    /// are the ones compiled last, otherwise compiled now (and kept for the next request).
    /// Rules that do not compile give their problems, also kept until the files change.
    ///
    /// # Errors
    /// The rule folder cannot be read, or the rules do not compile (the problems in one text).
    pub fn get(&self, workspace: &Workspace) -> Result<Arc<CompiledRules>, String> {
        let source = RuleSource::read(&workspace.rules_dir(), Path::new("rules"))
            .map_err(|err| err.to_string())?;
        let mut entry = self.entry.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(entry) = entry.as_ref()
            && entry.files == source.files
        {
            return entry.compiled.clone();
        }
        self.compiles.fetch_add(1, Ordering::Relaxed);
        let compiled = source
            .load()
            .map(|loaded| {
                Arc::new(CompiledRules {
                    version: loaded.rules.version().to_owned(),
                    tiers: loaded.rules.tiers().map(|tier| tier.id.clone()).collect(),
                })
            })
            .map_err(|err| err.to_string());
        *entry = Some(Entry {
            files: source.files,
            compiled: compiled.clone(),
        });
        compiled
    }

    /// How many times the rules were compiled since the server started.
    pub fn compiles(&self) -> u64 {
        self.compiles.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rules_compile_once_per_version_and_again_when_they_change() {
        let dir = tempfile::tempdir().unwrap();
        let (workspace, _) = Workspace::init(dir.path(), chrono_tz::UTC).unwrap();
        let tiers_file = workspace.rules_dir().join("tiers.yaml");
        let tiers = std::fs::read_to_string(&tiers_file).unwrap();
        let cache = RulesCache::default();
        let first = cache.get(&workspace).unwrap();
        assert!(!first.tiers.is_empty());
        for _ in 0..5 {
            assert!(Arc::ptr_eq(&cache.get(&workspace).unwrap(), &first));
        }
        assert_eq!(cache.compiles(), 1);
        // An edit is seen on the next request: a new version, compiled once.
        std::fs::write(&tiers_file, format!("{tiers}\n# edited\n")).unwrap();
        let second = cache.get(&workspace).unwrap();
        assert_ne!(second.version, first.version);
        assert_eq!(second.tiers, first.tiers);
        assert!(Arc::ptr_eq(&cache.get(&workspace).unwrap(), &second));
        assert_eq!(cache.compiles(), 2);
        // Broken rules give their problems, compiled once too; fixed, they compile again.
        let broken = workspace.rules_dir().join("zz-broken.yaml");
        std::fs::write(&broken, "tiers: [\n").unwrap();
        assert!(cache.get(&workspace).is_err());
        assert!(cache.get(&workspace).is_err());
        assert_eq!(cache.compiles(), 3);
        std::fs::remove_file(&broken).unwrap();
        std::fs::write(&tiers_file, &tiers).unwrap();
        assert_eq!(cache.get(&workspace).unwrap().version, first.version);
        assert_eq!(cache.compiles(), 4);
    }
}
