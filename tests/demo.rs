//! End-to-end test of `tiercare demo`: generate, import, and re-run without changes.

mod common;

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
    drop(db);

    let second = common::run_in(tmp.path(), &args);
    second.assert_code(0);
    let output = second.json();
    assert_eq!(output["assessment"]["changed"], 0, "same data, same tiers");
    for report in output["imports"].as_array().unwrap() {
        assert_eq!(report["imported"], 0, "{report}");
        assert_eq!(report["updated"], 0, "{report}");
    }
}

#[test]
fn demo_refuses_a_zero_size() {
    let tmp = tempfile::tempdir().unwrap();
    let out = common::run_in(tmp.path(), &["demo", "x", "--customers", "0"]);
    out.assert_code(2);
    out.assert_stderr_contains("customers");
}
