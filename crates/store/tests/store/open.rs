//! Creating and opening databases, and refusing files that are not ours.

use std::time::Duration;

use rusqlite::Connection;
use tiercare_store::{
    APPLICATION_ID, Assignee, FollowUpAction, ImportKind, MIGRATIONS, OccurrenceKey,
    PlannedFollowUp, Store, StoreError, TaskFilter,
};

use crate::fixture::{NOW, customer, import_at, new_store, options, seed_customers};

fn raw_pragma(conn: &Connection, name: &str) -> i64 {
    conn.query_row(&format!("PRAGMA {name}"), [], |row| row.get(0))
        .unwrap()
}

#[test]
fn create_makes_a_migrated_tiercare_database() {
    let (_dir, path, store) = new_store();
    assert_eq!(store.path(), Some(path.as_path()));
    assert_eq!(store.schema_version().unwrap() as usize, MIGRATIONS.len());

    let raw = Connection::open(&path).unwrap();
    assert_eq!(
        raw_pragma(&raw, "application_id"),
        i64::from(APPLICATION_ID)
    );
    assert_eq!(raw_pragma(&raw, "user_version") as usize, MIGRATIONS.len());
    let journal: String = raw
        .query_row("PRAGMA journal_mode", [], |row| row.get(0))
        .unwrap();
    assert_eq!(journal, "wal");
    let tables: Vec<String> = raw
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        tables,
        [
            "assessment_growth",
            "assessments",
            "bounces",
            "complaints",
            "coupons",
            "customer_segments",
            "customer_tiers",
            "customers",
            // the search's trigram index (migration 23) and FTS5's shadow tables
            "customers_search",
            "customers_search_config",
            "customers_search_data",
            "customers_search_docsize",
            "customers_search_idx",
            "daemon_state",
            "feedback",
            "followups",
            "imports",
            "interactions",
            "mail_domain_pauses",
            "mail_reputation_state",
            "manager_digests",
            "managers",
            "order_items",
            "orders",
            "outbox",
            "outbox_events",
            "owner_changes",
            "points",
            "pool_warnings",
            "privacy_requests",
            "schedule_firings",
            "segment_history",
            "staff_audit",
            "staff_login_attempts",
            "staff_sessions",
            "staff_users",
            "suppressions",
            "task_escalations",
            "tasks",
            "tier_history",
            "tier_pins",
            "webhook_deliveries",
            "webhook_endpoints",
            "webhook_events"
        ]
    );
}

#[test]
fn an_in_memory_store_is_migrated_and_has_no_path() {
    let store = Store::open_in_memory().unwrap();
    assert_eq!(store.path(), None);
    assert_eq!(store.schema_version().unwrap() as usize, MIGRATIONS.len());
    assert_eq!(store.counts().unwrap().customers, 0);
}

#[test]
fn reopening_keeps_the_data() {
    let (_dir, path, mut store) = new_store();
    seed_customers(&mut store, &["C1", "C2"]);
    drop(store);

    let store = Store::open(&path).unwrap();
    assert_eq!(store.counts().unwrap().customers, 2);
    assert_eq!(
        store.customer("C2").unwrap().unwrap().name.as_deref(),
        Some("C2")
    );
    drop(store);

    // `create` on an existing tiercare database opens it as it is.
    let store = Store::create(&path).unwrap();
    assert_eq!(store.counts().unwrap().customers, 2);
    assert_eq!(store.schema_version().unwrap() as usize, MIGRATIONS.len());
}

/// A database made by the first release (migration 1 only) is brought up
/// to date when opened, keeping its data, and the new tables work.
#[test]
fn a_version_1_database_is_migrated_and_keeps_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiercare.db");
    {
        let raw = Connection::open(&path).unwrap();
        raw.execute_batch(MIGRATIONS[0]).unwrap();
        raw.pragma_update(None, "application_id", APPLICATION_ID)
            .unwrap();
        raw.pragma_update(None, "user_version", 1).unwrap();
        raw.execute(
            "INSERT INTO customers (external_id, name, created_at, updated_at) \
             VALUES ('C1', 'Ada', 1, 1)",
            [],
        )
        .unwrap();
    }
    let mut store = Store::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap() as usize, MIGRATIONS.len());
    assert_eq!(
        store.customer("C1").unwrap().unwrap().name.as_deref(),
        Some("Ada")
    );
    store
        .pin_tier("C1", "A", "key account", "mia", None, NOW)
        .unwrap();
    assert_eq!(store.pins_of("C1").unwrap().len(), 1);
    assert_eq!(store.current_tier("C1").unwrap(), None);
}

/// A database at version 2 (tiers and pins, before the follow-up ledger)
/// with data gets migration 3 only, keeps its data, and the ledger works.
#[test]
fn a_version_2_database_gets_the_follow_up_ledger_and_keeps_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiercare.db");
    {
        let raw = Connection::open(&path).unwrap();
        raw.execute_batch(MIGRATIONS[0]).unwrap();
        raw.execute_batch(MIGRATIONS[1]).unwrap();
        raw.pragma_update(None, "application_id", APPLICATION_ID)
            .unwrap();
        raw.pragma_update(None, "user_version", 2).unwrap();
        raw.execute_batch(
            "INSERT INTO customers (id, external_id, name, owner, created_at, updated_at) \
             VALUES (1, 'C1', 'Ada', 'M1', 1, 1); \
             INSERT INTO managers (external_id, name, active, created_at, updated_at) \
             VALUES ('M1', 'Mia', 1, 1, 1); \
             INSERT INTO assessments (id, at, ruleset_version, started_at, finished_at, \
             customers, changed, rule_errors) VALUES (1, 10, 'v0', 10, 10, 1, 1, 0); \
             INSERT INTO customer_tiers (customer_id, tier, since, assessment_id) \
             VALUES (1, 'A', 10, 1); \
             INSERT INTO tier_history (customer_id, assessment_id, at, from_tier, to_tier, \
             reason) VALUES (1, 1, 10, NULL, 'A', 'top'); \
             INSERT INTO tier_pins (customer_id, tier, reason, pinned_by, created_at) \
             VALUES (1, 'A', 'key account', 'mia', 5);",
        )
        .unwrap();
    }
    let mut store = Store::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap() as usize, MIGRATIONS.len());
    assert_eq!(store.current_tier("C1").unwrap().unwrap().tier, "A");
    assert_eq!(store.tier_history("C1").unwrap().len(), 1);
    assert_eq!(store.pins_of("C1").unwrap().len(), 1);

    let mut session = store.begin_followups(NOW, "v1").unwrap();
    let recorded = session
        .record(&PlannedFollowUp {
            key: OccurrenceKey::new("review", "C1", NOW),
            scheduled_at: NOW,
            action: FollowUpAction::Task {
                assignee: Assignee::Owner,
                title: "Review Ada".into(),
                due_at: NOW,
                note: None,
            },
            reason: "monthly".into(),
            skip: None,
        })
        .unwrap();
    session.finish().unwrap();
    assert!(recorded.new && recorded.task_id.is_some());
    let tasks = store.tasks(&TaskFilter::default(), NOW).unwrap();
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0].assignee, "M1");
    let all = crate::followups::states(&store, 0, NOW, 0);
    assert_eq!(all[0].events.len(), 1, "the tier change of version 2");
    assert_eq!(all[0].last_fired("review"), Some(NOW));
}

#[test]
fn open_refuses_a_missing_file_and_does_not_create_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing.db");
    let err = Store::open(&path).unwrap_err();
    assert!(
        matches!(&err, StoreError::NotFound { path: p } if *p == path),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "database {} does not exist: run `tiercare init` first",
            path.display()
        )
    );
    assert!(!path.exists());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn create_in_a_missing_directory_says_it_cannot_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no-such-dir").join("tiercare.db");
    let err = Store::create(&path).unwrap_err();
    assert!(
        matches!(&err, StoreError::CannotOpen { path: p, .. } if *p == path),
        "{err:?}"
    );
    assert!(err.to_string().contains("check that its directory exists"));
}

#[test]
fn a_text_file_is_not_a_tiercare_database_and_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("customers.csv");
    let content = "id,name,email\nC1,Ada,ada@example.com\n".repeat(200);
    std::fs::write(&path, &content).unwrap();
    for result in [Store::open(&path), Store::create(&path)] {
        let err = result.unwrap_err();
        assert!(
            matches!(&err, StoreError::NotTiercare { path: p } if *p == path),
            "{err:?}"
        );
        assert!(
            err.to_string()
                .starts_with(&format!("{} is not a tiercare database", path.display()))
        );
    }
    assert_eq!(std::fs::read_to_string(&path).unwrap(), content);
}

#[test]
fn another_applications_database_is_refused_and_not_modified() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.db");
    {
        let raw = Connection::open(&path).unwrap();
        raw.execute_batch("CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('hello');")
            .unwrap();
    }
    let before = std::fs::read(&path).unwrap();
    for result in [Store::open(&path), Store::create(&path)] {
        let err = result.unwrap_err();
        assert!(matches!(err, StoreError::NotTiercare { .. }), "{err:?}");
    }
    assert_eq!(std::fs::read(&path).unwrap(), before, "file changed");
    let raw = Connection::open(&path).unwrap();
    let journal: String = raw
        .query_row("PRAGMA journal_mode", [], |row| row.get(0))
        .unwrap();
    assert_eq!(journal, "delete", "switched to WAL");
    assert_eq!(raw_pragma(&raw, "user_version"), 0);
}

#[test]
fn a_foreign_application_id_is_refused_even_without_tables() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.db");
    Connection::open(&path)
        .unwrap()
        .execute_batch("PRAGMA application_id = 1234")
        .unwrap();
    let err = Store::create(&path).unwrap_err();
    assert!(matches!(err, StoreError::NotTiercare { .. }), "{err:?}");
}

#[test]
fn an_empty_file_is_initialised_by_create_but_not_by_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiercare.db");
    std::fs::write(&path, b"").unwrap();
    let err = Store::open(&path).unwrap_err();
    assert!(matches!(err, StoreError::NotTiercare { .. }), "{err:?}");
    let store = Store::create(&path).unwrap();
    assert_eq!(store.schema_version().unwrap() as usize, MIGRATIONS.len());
}

#[test]
fn a_database_from_a_newer_tiercare_is_refused() {
    let (_dir, path, store) = new_store();
    drop(store);
    Connection::open(&path)
        .unwrap()
        .execute_batch("PRAGMA user_version = 99")
        .unwrap();
    let err = Store::open(&path).unwrap_err();
    let supported = MIGRATIONS.len() as u32;
    assert!(
        matches!(&err, StoreError::TooNew { path: p, found: 99, supported: s } if *p == path && *s == supported),
        "{err:?}"
    );
    assert!(err.to_string().ends_with("upgrade tiercare"));
}

#[test]
fn a_write_lock_held_elsewhere_is_reported_as_locked() {
    let (_dir, path, mut store) = new_store();
    seed_customers(&mut store, &["C1"]);

    let other = Connection::open(&path).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();

    // Readers are not blocked, and neither is opening an up-to-date file.
    assert_eq!(store.counts().unwrap().customers, 1);
    let second = Store::open(&path).unwrap();
    assert_eq!(second.counts().unwrap().customers, 1);

    store.set_busy_timeout(Duration::from_millis(50)).unwrap();
    let err = store
        .import(ImportKind::Customers, options("c.csv"))
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Locked { path: p } if *p == path),
        "{err:?}"
    );
    assert!(err.to_string().contains("try again when it finishes"));

    // Once the other writer is done, the import goes through.
    other.execute_batch("COMMIT").unwrap();
    import_at(
        &mut store,
        ImportKind::Customers,
        options("c.csv"),
        NOW,
        |session| {
            session.customer(2, &customer("C2", "Bo")).unwrap();
        },
    );
    assert_eq!(second.counts().unwrap().customers, 2);
}
