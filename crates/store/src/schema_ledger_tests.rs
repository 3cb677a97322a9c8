//! Migration 23 (the ledger kinds `sms` and `points`): a rebuild of `followups`, which other
//! tables refer to, on a database written by the previous version.

use std::path::Path;

use rusqlite::Connection;

use super::*;

/// The number of the migration that rebuilds the ledger.
fn ledger_migration() -> usize {
    MIGRATIONS
        .iter()
        .position(|sql| sql.contains("CREATE TABLE followups_new"))
        .expect("the ledger migration")
}

/// A file database at the version before the ledger migration, with foreign keys enforced as
/// every tiercare connection has them, and rows the way that version wrote them: an SMS
/// follow-up and a points follow-up stored as `email` and `set_attribute`, and rows of every
/// table that refers to `followups` (tasks, outbox, coupons).
fn previous_version(dir: &Path) -> Connection {
    let conn = Connection::open(dir.join("tiercare.db")).unwrap();
    conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON;")
        .unwrap();
    migrate(
        &conn,
        Path::new("tiercare.db"),
        &MIGRATIONS[..ledger_migration()],
    )
    .unwrap();
    conn.execute_batch(
        r#"
INSERT INTO customers (id, external_id, email, phone, created_at, updated_at)
    VALUES (1, 'c1', 'a@example.com', '+4915112345678', 0, 0),
           (2, 'c2', 'b@example.com', NULL, 0, 0);
INSERT INTO followups (id, occurrence_key, rule_id, customer_id, occurrence_at, scheduled_at,
    kind, action, reason, decided_at, ruleset_version, status, status_reason, status_at)
VALUES
 (1, 'mail:1:c1', 'mail', 1, 1, 1, 'email', '{"kind":"email","template":"care"}', 'r', 1, 'v', 'done', NULL, 2),
 (2, 'text:1:c1', 'text', 1, 1, 1, 'email', '{"kind":"sms","template":"hello"}', 'r', 1, 'v', 'done', NULL, 2),
 (3, 'text:1:c2', 'text', 2, 1, 1, 'email', '{"kind":"sms","template":"hello"}', 'r', 1, 'v', 'skipped', 'no phone', 2),
 (4, 'earn:1:c1', 'earn', 1, 1, 1, 'set_attribute', '{"kind":"earn_points","amount":50.0}', 'r', 1, 'v', 'done', NULL, 1),
 (5, 'attr:1:c1', 'attr', 1, 1, 1, 'set_attribute', '{"kind":"set_attribute","name":"vip","value":true}', 'r', 1, 'v', 'done', NULL, 1),
 (6, 'call:1:c1', 'call', 1, 1, 1, 'task', '{"kind":"task","assignee":{"role":"x"},"title":"Call","due_at":5}', 'r', 1, 'v', 'done', NULL, 1),
 (7, 'tell:1:c2', 'tell', 2, 1, 1, 'notify_owner', '{"kind":"notify_owner","template":"n"}', 'r', 1, 'v', 'planned', NULL, 1),
 (8, 'code:1:c2', 'code', 2, 1, 1, 'email', '{"kind":"email","template":"c","coupon":{"pool":"p"}}', 'r', 1, 'v', 'planned', NULL, 1);
INSERT INTO tasks (id, followup_id, customer_id, assignee, title, due_at, created_at)
    VALUES (1, 6, 1, 'm1', 'Call', 5, 1), (2, NULL, 2, 'm1', 'By hand', 5, 1);
INSERT INTO outbox (id, followup_id, customer_id, rule_id, template, recipient_kind,
    to_address, message_id, subject, body_text, state, due_at, created_at, sent_at,
    updated_at, channel)
VALUES
 (1, 1, 1, 'mail', 'care', 'customer', 'a@example.com', '<1@x>', 'S', 'B', 'sent', 1, 1, 2, 2, 'email'),
 (2, 2, 1, 'text', 'hello', 'customer', '+4915112345678', '<2@x>', '', 'Hi', 'sent', 1, 1, 2, 2, 'sms'),
 (3, 7, 2, 'tell', 'n', 'owner', 'm@example.com', '<3@x>', 'S', 'B', 'queued', 1, 1, NULL, 1, 'email'),
 (4, 8, 2, 'code', 'c', 'customer', 'b@example.com', '<4@x>', 'S', 'B', 'queued', 1, 1, NULL, 1, 'email');
INSERT INTO outbox_events (outbox_id, at, from_state, to_state) VALUES (1, 1, NULL, 'queued'), (2, 1, NULL, 'queued');
INSERT INTO coupons (id, pool, code, source, created_at, customer_id, followup_id, rule_id, issued_at)
    VALUES (1, 'p', 'CODE-1', 'imported', 0, 2, 8, 'code', 1), (2, 'p', 'CODE-2', 'imported', 0, NULL, NULL, NULL, NULL);
INSERT INTO points (customer_id, source, at, amount, rule_id) VALUES (1, 'followup:4', 1, 50.0, 'earn');
"#,
    )
    .unwrap();
    conn
}

/// Every row that refers to a follow-up, as (table, row id, follow-up id).
fn references(conn: &Connection) -> Vec<(String, i64, i64)> {
    conn.prepare(
        "SELECT 'tasks', id, followup_id FROM tasks WHERE followup_id IS NOT NULL \
         UNION ALL SELECT 'outbox', id, followup_id FROM outbox WHERE followup_id IS NOT NULL \
         UNION ALL SELECT 'coupons', id, followup_id FROM coupons WHERE followup_id IS NOT NULL \
         ORDER BY 1, 2",
    )
    .unwrap()
    .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

fn count(conn: &Connection, table: &str) -> i64 {
    conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |row| {
        row.get(0)
    })
    .unwrap()
}

#[test]
fn the_ledger_rebuild_labels_sms_and_points_and_loses_no_reference() {
    let dir = tempfile::tempdir().unwrap();
    let conn = previous_version(dir.path());
    let tables = [
        "followups",
        "tasks",
        "outbox",
        "outbox_events",
        "coupons",
        "points",
    ];
    let before: Vec<i64> = tables.iter().map(|t| count(&conn, t)).collect();
    let references_before = references(&conn);
    assert_eq!(references_before.len(), 6, "{references_before:?}");

    migrate(&conn, Path::new("tiercare.db"), MIGRATIONS).unwrap();
    assert_eq!(user_version(&conn).unwrap(), supported_version());

    let after: Vec<i64> = tables.iter().map(|t| count(&conn, t)).collect();
    assert_eq!(after, before, "rows of {tables:?}");
    assert_eq!(references(&conn), references_before);
    let kinds: Vec<(i64, String)> = conn
        .prepare("SELECT id, kind FROM followups ORDER BY id")
        .unwrap()
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let expected = [
        "email",
        "sms",
        "sms",
        "points",
        "set_attribute",
        "task",
        "notify_owner",
        "email",
    ];
    let expected: Vec<(i64, String)> = (1..).zip(expected.map(str::to_owned)).collect();
    assert_eq!(kinds, expected);

    // Foreign keys are enforced again, the references still point at the ledger (a task is
    // still deleted with its follow-up), and the indexes are back.
    let enforced: bool = conn
        .query_row("PRAGMA foreign_keys", [], |row| row.get(0))
        .unwrap();
    assert!(enforced);
    let violations = conn
        .prepare("PRAGMA foreign_key_check")
        .unwrap()
        .query_map([], |_| Ok(()))
        .unwrap()
        .count();
    assert_eq!(violations, 0);
    let indexes: Vec<String> = conn
        .prepare(
            "SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'followups' \
             AND sql IS NOT NULL ORDER BY name",
        )
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(indexes, ["followups_by_customer", "followups_by_rule"]);
    conn.execute("DELETE FROM followups WHERE id = 6", [])
        .unwrap();
    assert_eq!(count(&conn, "tasks"), 1, "the task went with its follow-up");
    conn.execute("DELETE FROM followups WHERE id = 1", [])
        .unwrap();
    let orphan: Option<i64> = conn
        .query_row("SELECT followup_id FROM outbox WHERE id = 1", [], |row| {
            row.get(0)
        })
        .unwrap();
    assert_eq!(
        orphan, None,
        "the outbox row was kept, without its follow-up"
    );

    // The new kinds are accepted, and others still refused.
    conn.execute(
        "INSERT INTO followups (occurrence_key, rule_id, customer_id, occurrence_at, \
         scheduled_at, kind, action, reason, decided_at, ruleset_version, status_at) \
         VALUES ('new:1:c1', 'new', 1, 1, 1, 'sms', '{\"kind\":\"sms\"}', 'r', 1, 'v', 1)",
        [],
    )
    .unwrap();
    assert!(
        conn.execute(
            "INSERT INTO followups (occurrence_key, rule_id, customer_id, occurrence_at, \
             scheduled_at, kind, action, reason, decided_at, ruleset_version, status_at) \
             VALUES ('bad:1:c1', 'bad', 1, 1, 1, 'fax', '{}', 'r', 1, 'v', 1)",
            [],
        )
        .is_err()
    );
}

#[test]
fn a_migration_run_with_foreign_keys_off_that_breaks_a_reference_is_rolled_back() {
    let conn = Connection::open_in_memory().unwrap();
    conn.execute_batch("PRAGMA foreign_keys = ON").unwrap();
    let path = Path::new(":memory:");
    let first = ["CREATE TABLE parent (id INTEGER PRIMARY KEY); \
         CREATE TABLE child (id INTEGER PRIMARY KEY, \
             parent INTEGER REFERENCES parent(id) ON DELETE CASCADE); \
         INSERT INTO parent VALUES (1); INSERT INTO child VALUES (1, 1);"];
    migrate(&conn, path, &first).unwrap();
    // A rebuild that forgets to copy the rows: with the keys off nothing cascades, and the
    // check finds the child pointing at nothing.
    let broken = format!(
        "{FOREIGN_KEYS_OFF}CREATE TABLE parent_new (id INTEGER PRIMARY KEY); \
         DROP TABLE parent; ALTER TABLE parent_new RENAME TO parent;"
    );
    let later = [first[0], broken.as_str()];
    let err = migrate(&conn, path, &later).unwrap_err();
    assert!(
        matches!(err, StoreError::MigrationBroke { version: 2, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("row 1 of child"), "{err}");
    assert_eq!(user_version(&conn).unwrap(), 1);
    assert_eq!(count(&conn, "parent"), 1, "rolled back");
    assert_eq!(count(&conn, "child"), 1);
    let enforced: bool = conn
        .query_row("PRAGMA foreign_keys", [], |row| row.get(0))
        .unwrap();
    assert!(enforced, "foreign keys are on again after the failure");

    // The same rebuild done right keeps the child.
    let right = format!(
        "{FOREIGN_KEYS_OFF}CREATE TABLE parent_new (id INTEGER PRIMARY KEY, name TEXT); \
         INSERT INTO parent_new (id) SELECT id FROM parent; \
         DROP TABLE parent; ALTER TABLE parent_new RENAME TO parent;"
    );
    migrate(&conn, path, &[first[0], right.as_str()]).unwrap();
    assert_eq!(user_version(&conn).unwrap(), 2);
    assert_eq!(count(&conn, "child"), 1);
}
