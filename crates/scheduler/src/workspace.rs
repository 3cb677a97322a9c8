//! A workspace: a folder with `tiercare.toml`, `rules/`, `templates/` and the database.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use tiercare_store::{AddressKeys, Store, StoreError};

use crate::config::{CONFIG_FILE, Config, ConfigError};

/// The default rule set, copied into `rules/` by [`Workspace::init`]: every file of the project's
/// top-level `rules/` folder, embedded at build time (a test keeps this list complete).
pub const DEFAULT_RULES: &[(&str, &str)] = &[
    ("README.md", include_str!("../../../rules/README.md")),
    (
        "followups.yaml",
        include_str!("../../../rules/followups.yaml"),
    ),
    ("growth.yaml", include_str!("../../../rules/growth.yaml")),
    (
        "incentives.yaml",
        include_str!("../../../rules/incentives.yaml"),
    ),
    ("levels.yaml", include_str!("../../../rules/levels.yaml")),
    (
        "managers.yaml",
        include_str!("../../../rules/managers.yaml"),
    ),
    ("pool.yaml", include_str!("../../../rules/pool.yaml")),
    ("rfm.yaml", include_str!("../../../rules/rfm.yaml")),
    ("surveys.yaml", include_str!("../../../rules/surveys.yaml")),
    (
        "tiercare.schema.json",
        include_str!("../../../rules/tiercare.schema.json"),
    ),
    ("tiers.yaml", include_str!("../../../rules/tiers.yaml")),
    (
        "worthless.yaml",
        include_str!("../../../rules/worthless.yaml"),
    ),
    (
        "tests/followups.yaml",
        include_str!("../../../rules/tests/followups.yaml"),
    ),
    (
        "tests/growth.yaml",
        include_str!("../../../rules/tests/growth.yaml"),
    ),
    (
        "tests/incentives.yaml",
        include_str!("../../../rules/tests/incentives.yaml"),
    ),
    (
        "tests/levels.yaml",
        include_str!("../../../rules/tests/levels.yaml"),
    ),
    (
        "tests/rfm.yaml",
        include_str!("../../../rules/tests/rfm.yaml"),
    ),
    (
        "tests/surveys.yaml",
        include_str!("../../../rules/tests/surveys.yaml"),
    ),
    (
        "tests/tiers.yaml",
        include_str!("../../../rules/tests/tiers.yaml"),
    ),
    (
        "tests/worthless.yaml",
        include_str!("../../../rules/tests/worthless.yaml"),
    ),
];

/// The default care-email templates, copied into `templates/` by [`Workspace::init`]: every file
/// of the project's `rules/templates/` folder, embedded at build time (a test keeps this list
/// complete). They live under `rules/` because that folder is what `init` ships (the repository's
/// top level is fixed), and `tiercare check --rules rules` then checks them with the rules they
/// serve; in a workspace they go to `templates/`, beside `rules/`.
pub const DEFAULT_TEMPLATES: &[(&str, &str)] = &[
    (
        "README.md",
        include_str!("../../../rules/templates/README.md"),
    ),
    (
        "birthday.eml.j2",
        include_str!("../../../rules/templates/birthday.eml.j2"),
    ),
    (
        "birthday.sms.j2",
        include_str!("../../../rules/templates/birthday.sms.j2"),
    ),
    (
        "care.eml.j2",
        include_str!("../../../rules/templates/care.eml.j2"),
    ),
    (
        "comeback.eml.j2",
        include_str!("../../../rules/templates/comeback.eml.j2"),
    ),
    (
        "manager-digest.digest.j2",
        include_str!("../../../rules/templates/manager-digest.digest.j2"),
    ),
    (
        "offer.html.j2",
        include_str!("../../../rules/templates/offer.html.j2"),
    ),
    (
        "offer.txt.j2",
        include_str!("../../../rules/templates/offer.txt.j2"),
    ),
    (
        "survey.eml.j2",
        include_str!("../../../rules/templates/survey.eml.j2"),
    ),
    (
        "upgrade-welcome.eml.j2",
        include_str!("../../../rules/templates/upgrade-welcome.eml.j2"),
    ),
    (
        "win-back.eml.j2",
        include_str!("../../../rules/templates/win-back.eml.j2"),
    ),
];

/// Something that stops a workspace from being created or opened.
#[derive(Debug, thiserror::Error)]
pub enum WorkspaceError {
    /// The folder does not exist.
    #[error(
        "workspace {} does not exist: create one with `tiercare init {}`",
        dir.display(),
        dir.display()
    )]
    NotFound {
        /// The folder asked for.
        dir: PathBuf,
    },
    /// The folder exists but holds no `tiercare.toml`.
    #[error(
        "{} is not a tiercare workspace (no {CONFIG_FILE}): run `tiercare init {}`, or choose the workspace with --workspace DIR or TIERCARE_HOME",
        dir.display(),
        dir.display()
    )]
    NotAWorkspace {
        /// The folder asked for.
        dir: PathBuf,
    },
    /// `init` was asked to create a workspace where one already is.
    #[error(
        "{} already holds a tiercare workspace; nothing was changed",
        dir.display()
    )]
    AlreadyExists {
        /// The folder asked for.
        dir: PathBuf,
    },
    /// The workspace secret in the environment is unusable.
    #[error("{0}")]
    Secret(String),
    /// `tiercare.toml` is invalid.
    #[error("{}:{source}", path.display())]
    Config {
        /// The settings file.
        path: PathBuf,
        /// What is wrong in it.
        source: ConfigError,
    },
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// The database could not be created or opened.
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> WorkspaceError + '_ {
    move |source| WorkspaceError::Io {
        path: path.to_owned(),
        source,
    }
}

/// What [`Workspace::init`] created.
#[derive(Debug, Clone, serde::Serialize)]
pub struct InitReport {
    /// The workspace root.
    pub root: PathBuf,
    /// Files written, relative to the root.
    pub files: Vec<PathBuf>,
}

/// An opened workspace.
#[derive(Debug, Clone)]
pub struct Workspace {
    root: PathBuf,
    config: Config,
}

impl Workspace {
    /// Creates a workspace in `dir` (created if missing): settings, the default rules, a
    /// templates folder and an empty database. Refuses a folder that already is a workspace.
    pub fn init(
        dir: &Path,
        timezone: chrono_tz::Tz,
    ) -> Result<(Workspace, InitReport), WorkspaceError> {
        let config_path = dir.join(CONFIG_FILE);
        if config_path.exists() {
            return Err(WorkspaceError::AlreadyExists {
                dir: dir.to_owned(),
            });
        }
        fs::create_dir_all(dir).map_err(io_error(dir))?;
        let mut files = Vec::new();
        let mut write = |relative: PathBuf, text: &str| -> Result<(), WorkspaceError> {
            let path = dir.join(&relative);
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent).map_err(io_error(parent))?;
            }
            if !path.exists() {
                fs::write(&path, text).map_err(io_error(&path))?;
                files.push(relative);
            }
            Ok(())
        };
        for (name, text) in DEFAULT_RULES {
            write(Path::new("rules").join(name), text)?;
        }
        for (name, text) in DEFAULT_TEMPLATES {
            write(Path::new("templates").join(name), text)?;
        }
        let text = Config::initial_text(timezone);
        let config = Config::parse(&text).map_err(|source| WorkspaceError::Config {
            path: config_path.clone(),
            source,
        })?;
        let workspace = Workspace {
            root: dir.to_owned(),
            config,
        };
        Store::create(&workspace.database_path())?;
        // The settings file is written last: a workspace exists once it is there.
        write(PathBuf::from(CONFIG_FILE), &text)?;
        files.push(workspace.config.database.clone());
        Ok((
            workspace,
            InitReport {
                root: dir.to_owned(),
                files,
            },
        ))
    }

    /// Opens the workspace in `dir`, reading and validating its settings.
    pub fn open(dir: &Path) -> Result<Workspace, WorkspaceError> {
        if !dir.is_dir() {
            return Err(WorkspaceError::NotFound {
                dir: dir.to_owned(),
            });
        }
        let config_path = dir.join(CONFIG_FILE);
        let text = match fs::read_to_string(&config_path) {
            Ok(text) => text,
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                return Err(WorkspaceError::NotAWorkspace {
                    dir: dir.to_owned(),
                });
            }
            Err(source) => {
                return Err(WorkspaceError::Io {
                    path: config_path,
                    source,
                });
            }
        };
        let config = Config::parse(&text).map_err(|source| WorkspaceError::Config {
            path: config_path,
            source,
        })?;
        Ok(Workspace {
            root: dir.to_owned(),
            config,
        })
    }

    /// Opens the workspace's database, with the configured busy timeout and the address keys
    /// of the workspace secret when it is set.
    pub fn open_store(&self) -> Result<Store, WorkspaceError> {
        let mut store = Store::open(&self.database_path())?;
        store.set_busy_timeout(self.config.busy_timeout)?;
        self.set_keys(&mut store)?;
        Ok(store)
    }

    /// Sets the store's address keys from the secrets in the environment variables `[mail]`
    /// names (nothing when the secret is not set; an error when one is too short).
    fn set_keys(&self, store: &mut Store) -> Result<(), WorkspaceError> {
        let mail = &self.config.mail;
        let read = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
        let Some(secret) = read(&mail.unsubscribe_secret_env) else {
            return Ok(());
        };
        let previous = read(&mail.unsubscribe_secret_previous_env);
        for (name, value) in [
            (&mail.unsubscribe_secret_env, Some(&secret)),
            (&mail.unsubscribe_secret_previous_env, previous.as_ref()),
        ] {
            if value.is_some_and(|value| value.len() < AddressKeys::MIN_SECRET) {
                return Err(WorkspaceError::Secret(format!(
                    "the secret in {name} must be at least {} bytes long: set it to a long \
                     random string, e.g. `export {name}=$(head -c 32 /dev/urandom | base64)`",
                    AddressKeys::MIN_SECRET
                )));
            }
        }
        store.set_address_keys(AddressKeys::new(
            secret.as_bytes(),
            previous.as_deref().map(str::as_bytes),
        ));
        Ok(())
    }

    /// Opens the workspace's database to write to it (as [`Workspace::open_store`]), refusing a
    /// damaged file before anything is written ([`Store::open_for_writing`]: SQLite's
    /// `quick_check`, which reads the whole file). Every command that writes opens its first
    /// connection this way, once; more connections of the same process may use
    /// [`Workspace::open_store`].
    pub fn open_store_for_writing(&self) -> Result<Store, WorkspaceError> {
        let mut store = Store::open_for_writing(&self.database_path())?;
        store.set_busy_timeout(self.config.busy_timeout)?;
        self.set_keys(&mut store)?;
        // Events are queued by whoever writes: the endpoints they go to must be current.
        let endpoints: Vec<_> = self
            .config
            .webhooks
            .iter()
            .map(|e| e.subscription())
            .collect();
        store.sync_webhook_endpoints(&endpoints)?;
        Ok(store)
    }

    /// The workspace root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The validated settings.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The database file.
    pub fn database_path(&self) -> PathBuf {
        self.root.join(&self.config.database)
    }

    /// The rule folder.
    pub fn rules_dir(&self) -> PathBuf {
        self.root.join("rules")
    }

    /// The template folder.
    pub fn templates_dir(&self) -> PathBuf {
        self.root.join("templates")
    }
}

/// Reads the files of the folder `dir` whose names `keep` accepts, sorted by name, as
/// `(label/<name>, text)`: the rule and template folders are read this way. Editors' hidden and
/// backup files (`.name`, `name~`) and subfolders are skipped. An error names the path it
/// happened on.
pub fn read_folder(
    dir: &Path,
    label: &Path,
    keep: impl Fn(&str) -> bool,
) -> Result<Vec<(String, String)>, (PathBuf, io::Error)> {
    let at = |path: &Path| {
        let path = path.to_owned();
        move |err| (path, err)
    };
    let mut names: Vec<String> = Vec::new();
    for entry in fs::read_dir(dir).map_err(at(dir))? {
        let entry = entry.map_err(at(dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || name.ends_with('~') || !entry.path().is_file() || !keep(&name) {
            continue;
        }
        names.push(name);
    }
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let path = dir.join(&name);
            let text = fs::read_to_string(&path).map_err(at(&path))?;
            Ok((label.join(&name).to_string_lossy().into_owned(), text))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_is_read_sorted_without_editors_files_or_subfolders() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        for name in ["b.yaml", "a.yaml", ".a.yaml.swp", "a.yaml~", "notes.txt"] {
            fs::write(dir.join(name), name).unwrap();
        }
        fs::create_dir(dir.join("tests.yaml")).unwrap();
        let files = read_folder(dir, Path::new("rules"), |name| name.ends_with(".yaml")).unwrap();
        assert_eq!(
            files,
            [
                ("rules/a.yaml".to_owned(), "a.yaml".to_owned()),
                ("rules/b.yaml".to_owned(), "b.yaml".to_owned()),
            ]
        );
        let (path, _) = read_folder(&dir.join("missing"), Path::new("x"), |_| true).unwrap_err();
        assert_eq!(path, dir.join("missing"));
    }

    #[test]
    fn every_file_of_the_default_rule_folder_is_embedded() {
        fn walk(dir: &Path, prefix: &str, found: &mut Vec<String>) {
            for entry in fs::read_dir(dir).unwrap() {
                let entry = entry.unwrap();
                let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
                if name == "templates" {
                    continue; // DEFAULT_TEMPLATES, checked below
                }
                if entry.path().is_dir() {
                    walk(&entry.path(), &format!("{name}/"), found);
                } else {
                    found.push(name);
                }
            }
        }
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../rules");
        let mut on_disk = Vec::new();
        walk(&dir, "", &mut on_disk);
        on_disk.sort();
        let mut embedded: Vec<String> =
            DEFAULT_RULES.iter().map(|(n, _)| (*n).to_owned()).collect();
        embedded.sort();
        assert_eq!(
            on_disk, embedded,
            "list every file of rules/ in DEFAULT_RULES"
        );
        for (name, text) in DEFAULT_RULES {
            assert_eq!(fs::read_to_string(dir.join(name)).unwrap(), *text, "{name}");
        }
    }

    #[test]
    fn every_file_of_the_default_template_folder_is_embedded() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../rules/templates");
        let mut on_disk: Vec<String> = fs::read_dir(&dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        on_disk.sort();
        let embedded: Vec<String> = DEFAULT_TEMPLATES
            .iter()
            .map(|(n, _)| (*n).to_owned())
            .collect();
        assert_eq!(
            on_disk, embedded,
            "list every file of rules/templates/ in DEFAULT_TEMPLATES, sorted"
        );
        for (name, text) in DEFAULT_TEMPLATES {
            assert_eq!(fs::read_to_string(dir.join(name)).unwrap(), *text, "{name}");
        }
    }

    #[test]
    fn init_then_open() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("ws");
        let (_, report) = Workspace::init(&dir, chrono_tz::Asia::Shanghai).unwrap();
        assert!(report.files.contains(&PathBuf::from("tiercare.toml")));
        assert!(dir.join("rules/README.md").is_file());
        assert!(dir.join("templates/care.eml.j2").is_file());
        assert!(!dir.join("rules/templates").exists());
        let workspace = Workspace::open(&dir).unwrap();
        assert_eq!(workspace.config().timezone, chrono_tz::Asia::Shanghai);
        workspace.open_store().unwrap();
    }

    #[test]
    fn init_refuses_an_existing_workspace_and_keeps_edits() {
        let tmp = tempfile::tempdir().unwrap();
        Workspace::init(tmp.path(), chrono_tz::UTC).unwrap();
        fs::write(tmp.path().join("rules/README.md"), "mine").unwrap();
        let err = Workspace::init(tmp.path(), chrono_tz::UTC).unwrap_err();
        assert!(matches!(err, WorkspaceError::AlreadyExists { .. }), "{err}");
        assert_eq!(
            fs::read_to_string(tmp.path().join("rules/README.md")).unwrap(),
            "mine"
        );
    }

    #[test]
    fn open_explains_a_missing_or_foreign_folder() {
        let tmp = tempfile::tempdir().unwrap();
        let missing = Workspace::open(&tmp.path().join("nope")).unwrap_err();
        assert!(missing.to_string().contains("does not exist"), "{missing}");
        let foreign = Workspace::open(tmp.path()).unwrap_err();
        assert!(foreign.to_string().contains("tiercare init"), "{foreign}");
    }

    #[test]
    fn a_broken_settings_file_is_reported_with_its_position() {
        let tmp = tempfile::tempdir().unwrap();
        Workspace::init(tmp.path(), chrono_tz::UTC).unwrap();
        fs::write(
            tmp.path().join(CONFIG_FILE),
            "[workspace]\ntimezone = \"Nowhere\"\n",
        )
        .unwrap();
        let err = Workspace::open(tmp.path()).unwrap_err().to_string();
        assert!(err.contains("tiercare.toml:2:12"), "{err}");
    }
}
