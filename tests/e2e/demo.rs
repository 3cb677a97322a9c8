//! End-to-end test of `tiercare demo`: generate, import, assess, a simulated month of the
//! daemon with its mail in the folder, and a re-run that changes and sends nothing.

use crate::common;

#[test]
fn demo_generates_and_imports_a_workspace_and_a_rerun_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let args = [
        "demo",
        "shop",
        "--customers",
        "400",
        "--seed",
        "7",
        "--end",
        "2025-11-01",
        "--json",
    ];
    let first = common::run_in(tmp.path(), &args);
    first.assert_code(0);
    let output = first.json();
    let reports = output["imports"].as_array().unwrap();
    let kinds: Vec<&str> = reports
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "managers",
            "customers",
            "orders",
            "interactions",
            "complaints",
            "feedback"
        ]
    );
    for report in reports {
        assert_eq!(report["rejected"], 0, "{report}");
        assert_eq!(report["updated"], 0, "{report}");
    }
    assert_eq!(reports[1]["imported"], 400);
    let orders = reports[2]["imported"].as_u64().unwrap();
    assert!(
        (2000..8000).contains(&orders),
        "about ten orders per customer: {orders}"
    );

    let db = rusqlite::Connection::open(tmp.path().join("shop/tiercare.db")).unwrap();
    let customers: i64 = db
        .query_row("SELECT count(*) FROM customers", [], |r| r.get(0))
        .unwrap();
    assert_eq!(customers, 400);
    let latest: i64 = db
        .query_row("SELECT max(ordered_at) FROM orders", [], |r| r.get(0))
        .unwrap();
    assert!(
        latest <= 1_762_041_600,
        "no order after --end (2025-11-01 23:59:59 London)"
    );
    // The simulated month: reassessed nightly, follow-ups recorded, every email sent once, as
    // one file each in the mail folder.
    let simulated = &output["simulated"];
    assert_eq!(simulated["days"], 30);
    assert_eq!(
        simulated["errors"].as_array().unwrap().len(),
        0,
        "{simulated}"
    );
    assert!(
        simulated["reassessments"].as_u64().unwrap() >= 29,
        "{simulated}"
    );
    assert!(simulated["followups"].as_u64().unwrap() > 0, "{simulated}");
    let sent = simulated["emails_sent"].as_u64().unwrap();
    assert!(sent > 0, "{simulated}");
    let outbox_sent: i64 = db
        .query_row(
            "SELECT count(*) FROM outbox WHERE state = 'sent' AND channel = 'email'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(outbox_sent as u64, sent);
    // The birthday SMS of C customers who agreed to SMS: one file each in the SMS folder.
    let sms_sent: i64 = db
        .query_row(
            "SELECT count(*) FROM outbox WHERE state = 'sent' AND channel = 'sms'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let sms_files = std::fs::read_dir(tmp.path().join("shop/sms")).map_or(0, |dir| dir.count());
    assert_eq!(sms_files as i64, sms_sent);
    let files = || {
        std::fs::read_dir(tmp.path().join("shop/mail"))
            .unwrap()
            .count()
    };
    assert_eq!(files() as u64, sent);
    drop(db);

    let second = common::run_in(tmp.path(), &args);
    second.assert_code(0);
    let output = second.json();
    // Already assessed later (by the simulated nights): not assessed again as of --end.
    assert!(output["assessment"].is_null(), "{}", output["assessment"]);
    for report in output["imports"].as_array().unwrap() {
        assert_eq!(report["imported"], 0, "{report}");
        assert_eq!(report["updated"], 0, "{report}");
    }
    // The same month again: every range was recorded and every email sent already.
    assert_eq!(output["simulated"]["followups"], 0);
    assert_eq!(output["simulated"]["emails_sent"], 0);
    assert_eq!(files() as u64, sent);
}

#[test]
fn demo_refuses_a_zero_size() {
    let tmp = tempfile::tempdir().unwrap();
    let out = common::run_in(tmp.path(), &["demo", "x", "--customers", "0"]);
    out.assert_code(2);
    out.assert_stderr_contains("customers");
}

/// Without --end the history ends where the simulated days end, at the start of today: a second
/// run the same day generates the same data, so it updates nothing and sends nothing.
#[test]
fn demo_without_end_is_the_same_all_day() {
    let tmp = tempfile::tempdir().unwrap();
    let args = [
        "demo",
        "shop",
        "--customers",
        "150",
        "--days",
        "3",
        "--json",
    ];
    let started = today_utc();
    let first = common::run_in(tmp.path(), &args);
    first.assert_code(0);
    let second = common::run_in(tmp.path(), &args);
    second.assert_code(0);
    if today_utc() != started {
        // Midnight (UTC) passed between the runs: the second one is a later day's demo.
        return;
    }
    let output = second.json();
    for report in output["imports"].as_array().unwrap() {
        assert_eq!(report["imported"], 0, "{report}");
        assert_eq!(report["updated"], 0, "{report}");
    }
    assert_eq!(
        output["simulated"]["followups"], 0,
        "{}",
        output["simulated"]
    );
    assert_eq!(
        output["simulated"]["emails_sent"], 0,
        "{}",
        output["simulated"]
    );
}

/// Today's date in UTC, as days since the epoch.
fn today_utc() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 86_400
}

#[test]
fn the_default_programme_fits_the_demos_managers() {
    // A day of the daemon gives the A and B customers owners; the coming month then holds a
    // monthly review per A customer, the B revisits, and 1 January's executive contacts.
    let tmp = tempfile::tempdir().unwrap();
    let args = [
        "demo",
        "shop",
        "--customers",
        "2000",
        "--days",
        "1",
        "--end",
        "2025-12-18",
    ];
    common::run_in(tmp.path(), &args).assert_code(0);
    let out = common::run_in(
        tmp.path(),
        &[
            "--workspace",
            "shop",
            "plan",
            "--from",
            "2025-12-20",
            "--days",
            "30",
            "--json",
        ],
    );
    out.assert_code(0);
    let plan = out.json();
    assert_eq!(
        plan["capacity_warnings"],
        serde_json::json!([]),
        "{}",
        plan["assignees"]
    );
    let tasks: u64 = plan["assignees"]
        .as_object()
        .unwrap()
        .values()
        .map(|n| n.as_u64().unwrap())
        .sum();
    assert!(
        tasks > 1000,
        "the programme still gives people work: {tasks}"
    );
    assert!(plan["assignees"].get("(no owner)").is_none(), "{plan}");
    assert!(plan["assignees"]["role:senior"].as_u64().unwrap() > 0);
}

/// Two fresh demos of the same day (`--end`) in two workspaces, run seconds apart: the same
/// customers, owner audit, tiers, follow-ups, tasks, e-mails and digests, column for column. Only
/// what must be unguessable differs (Message-IDs, coupon codes, and the bodies and events that
/// carry them or the workspace's own secret) and the wall-clock length of each assessment.
/// Before, the imports and the first assessment were stamped with the wall clock, and the owner
/// audit the pool and the digests read with it.
#[test]
fn two_demos_of_the_same_day_give_the_same_result() {
    let tmp = tempfile::tempdir().unwrap();
    let run = |dir: &str| {
        let args = [
            "demo",
            dir,
            "--customers",
            "300",
            "--seed",
            "11",
            "--end",
            "2025-11-05",
            "--days",
            "8",
            "--json",
        ];
        let out = common::run_in(tmp.path(), &args);
        out.assert_code(0);
        out.json()["simulated"].clone()
    };
    let first = run("a");
    let second = run("b");
    assert_eq!(first, second);
    assert!(first["emails_sent"].as_u64().unwrap() > 0, "{first}");

    let a = rusqlite::Connection::open(tmp.path().join("a/tiercare.db")).unwrap();
    let b = rusqlite::Connection::open(tmp.path().join("b/tiercare.db")).unwrap();
    // Table, and the columns that may differ between two workspaces.
    let tables: [(&str, &[&str]); 16] = [
        ("managers", &[]),
        ("customers", &[]),
        ("orders", &[]),
        ("owner_changes", &[]),
        ("assessments", &["finished_at"]),
        ("customer_tiers", &[]),
        ("tier_history", &[]),
        ("customer_segments", &[]),
        ("followups", &[]),
        ("tasks", &[]),
        ("outbox", &["message_id", "body_text", "body_html"]),
        ("manager_digests", &[]),
        ("task_escalations", &[]),
        ("pool_warnings", &[]),
        ("coupons", &["code"]),
        ("points", &[]),
    ];
    for (table, differing) in tables {
        let left = table_rows(&a, table, differing);
        let right = table_rows(&b, table, differing);
        assert_eq!(left.len(), right.len(), "{table}: rows");
        if let Some((l, r)) = left.iter().zip(&right).find(|(l, r)| l != r) {
            panic!("{table} differs:\n  {l}\n  {r}");
        }
    }
}

/// Every row of `table` as text, in text order, leaving out the columns `except`.
fn table_rows(db: &rusqlite::Connection, table: &str, except: &[&str]) -> Vec<String> {
    let mut columns = Vec::new();
    let mut info = db
        .prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))
        .unwrap();
    let mut rows = info.query([]).unwrap();
    while let Some(row) = rows.next().unwrap() {
        let name: String = row.get(0).unwrap();
        if !except.contains(&name.as_str()) {
            columns.push(format!("quote({name})"));
        }
    }
    assert!(!columns.is_empty(), "no table {table}");
    let sql = format!(
        "SELECT {} FROM {table} ORDER BY 1",
        columns.join(" || ',' || ")
    );
    let mut select = db.prepare(&sql).unwrap();
    select
        .query_map([], |row| row.get::<_, String>(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}
