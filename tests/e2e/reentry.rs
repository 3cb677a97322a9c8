//! End-to-end tests of issue #13, points 7 and 8, on the real binary: "once" means once for
//! the customer whatever the occurrence dates, and hysteresis counts time, not runs, so a
//! customer flapping between tiers gets no repeated upgrade welcome.

use crate::common;

use common::{Workspace, followups_record_json};

/// Tiers from a custom attribute (`level`), so a test moves a customer by re-importing one
/// line; the default hysteresis (two assessments, at most one counted a day).
const TIERS: &str = "\
tiering:
  window: 365d
  tiers:
    - id: A
      when: (attr.level ?? 0) >= 2
    - id: B
      when: (attr.level ?? 0) >= 1
    - id: C
      when: true
  hysteresis:
    downgrade_after: 2
";

/// A workspace with the default follow-ups and [`TIERS`] (the default rule tests, written for
/// the default tiers, are removed).
fn workspace() -> Workspace {
    let ws = Workspace::new();
    std::fs::write(ws.path("rules/tiers.yaml"), TIERS).unwrap();
    std::fs::remove_dir_all(ws.path("rules/tests")).unwrap();
    ws
}

fn import_customers(ws: &Workspace, levels: &[(&str, u32)]) {
    let mut csv = String::from("customer_id,name,email,timezone,consent_email,level\n");
    for (id, level) in levels {
        csv.push_str(&format!(
            "{id},Customer {id},{}@example.com,Europe/London,true,{level}\n",
            id.to_lowercase()
        ));
    }
    let file = ws.write("customers.csv", &csv);
    ws.run(&["import", "customers", &file]).assert_code(0);
}

fn tier_of(ws: &Workspace, id: &str) -> String {
    ws.query_one(&format!(
        "SELECT t.tier FROM customer_tiers t JOIN customers c ON c.id = t.customer_id \
         WHERE c.external_id = '{id}'"
    ))
}

fn emails_of_rule(ws: &Workspace, rule: &str) -> i64 {
    ws.count(&format!(
        "SELECT count(*) FROM outbox WHERE rule_id = '{rule}' AND state <> 'failed'"
    ))
}

/// Point 7: a win-back was queued; the data then changed under the same ids (the customer's
/// order moved a year back), so the no-order occurrence moved more than `once_per: 180d` away
/// from the first. Nothing is sent again inside the window, and `plan` says why.
#[test]
fn a_win_back_is_not_sent_twice_when_new_data_moves_its_occurrence() {
    let ws = workspace();
    import_customers(&ws, &[("W1", 0)]);
    let orders = "order_id,customer_id,ordered_at,amount\nO-W1,W1,2025-01-10 10:00,40.00\n";
    let file = ws.write("orders.csv", orders);
    ws.run(&["import", "orders", &file]).assert_code(0);
    ws.run(&["assess", "--at", "2025-06-02"]).assert_code(0);
    assert_eq!(tier_of(&ws, "W1"), "C");
    ws.run(&followups_record_json("2025-06-02", "2025-06-09"))
        .assert_code(0);
    assert_eq!(emails_of_rule(&ws, "c-win-back"), 1);

    // Ten days later the same order id comes with another date: the occurrence moves from
    // 2025-05-10 to 2024-09-29, 223 days earlier.
    let orders = "order_id,customer_id,ordered_at,amount\nO-W1,W1,2024-06-01 10:00,40.00\n";
    let file = ws.write("orders.csv", orders);
    ws.run(&["import", "orders", &file]).assert_code(0);
    ws.run(&["assess", "--at", "2025-06-12"]).assert_code(0);
    let plan = ws.run(&["plan", "--from", "2025-06-12", "--days", "7", "--json"]);
    plan.assert_code(0);
    let summary = plan.json();
    let rule = summary["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|rule| rule["rule"] == "c-win-back")
        .expect("the win-back rule in the plan");
    assert_eq!(rule["planned"], 0, "{rule}");
    assert_eq!(rule["skipped"]["re_entry"], 1, "{rule}");

    ws.run(&followups_record_json("2025-06-12", "2025-06-19"))
        .assert_code(0);
    assert_eq!(emails_of_rule(&ws, "c-win-back"), 1);
    assert_eq!(
        ws.count(
            "SELECT count(*) FROM followups WHERE rule_id = 'c-win-back' AND status = 'skipped' \
             AND status_reason LIKE '%re_entry%'"
        ),
        1
    );
}

/// Point 8: two assessments a minute apart apply no held downgrade; a customer going
/// B→A→B→A over three weeks gets the upgrade welcome once.
#[test]
fn quick_reassessments_hold_downgrades_and_flapping_sends_one_welcome() {
    let ws = workspace();
    import_customers(&ws, &[("X1", 2)]);
    ws.run(&["assess", "--at", "2025-06-01T08:00:00Z"])
        .assert_code(0);
    assert_eq!(tier_of(&ws, "X1"), "A");
    // Level 1 asks for B: held by the first assessment, and still by a second a minute later.
    import_customers(&ws, &[("X1", 1)]);
    ws.run(&["assess", "--at", "2025-06-02T08:00:00Z"])
        .assert_code(0);
    ws.run(&["assess", "--at", "2025-06-02T08:01:00Z"])
        .assert_code(0);
    assert_eq!(tier_of(&ws, "X1"), "A");
    let pending: i64 = ws.count(
        "SELECT pending_since FROM customer_tiers t JOIN customers c ON c.id = t.customer_id \
         WHERE c.external_id = 'X1'",
    );
    assert_eq!(
        pending, 1_748_851_200,
        "2025-06-02T08:00:00Z, the first to ask"
    );
    let explain = ws.run(&["explain", "X1", "--at", "2025-06-02T08:02:00Z"]);
    explain.assert_code(0);
    explain.assert_stdout_contains("pending before 1 since 2025-06-02 08:00 UTC");
    // A day later the downgrade applies.
    ws.run(&["assess", "--at", "2025-06-03T08:00:00Z"])
        .assert_code(0);
    assert_eq!(tier_of(&ws, "X1"), "B");

    // Up again a week later: welcomed.
    import_customers(&ws, &[("X1", 2)]);
    ws.run(&["assess", "--at", "2025-06-09T08:00:00Z"])
        .assert_code(0);
    assert_eq!(tier_of(&ws, "X1"), "A");
    ws.run(&followups_record_json("2025-06-09", "2025-06-16"))
        .assert_code(0);
    assert_eq!(emails_of_rule(&ws, "welcome-upgrade"), 1);

    // Down (two daily assessments) and up again within three weeks: no second welcome.
    import_customers(&ws, &[("X1", 1)]);
    for at in ["2025-06-16T08:00:00Z", "2025-06-17T08:00:00Z"] {
        ws.run(&["assess", "--at", at]).assert_code(0);
    }
    assert_eq!(tier_of(&ws, "X1"), "B");
    import_customers(&ws, &[("X1", 2)]);
    ws.run(&["assess", "--at", "2025-06-23T08:00:00Z"])
        .assert_code(0);
    assert_eq!(tier_of(&ws, "X1"), "A");
    ws.run(&followups_record_json("2025-06-16", "2025-06-30"))
        .assert_code(0);
    assert_eq!(emails_of_rule(&ws, "welcome-upgrade"), 1);
}

/// Point 7 as reported: the demo generated again into the same folder with another seed (its
/// data changed under the same ids), then follow-ups recorded again: no customer gets a second
/// win-back (`once_per: 180d`) or upgrade welcome (`once_per: 90d`) inside the window.
#[test]
fn the_demo_regenerated_under_the_same_ids_sends_nothing_twice() {
    let tmp = tempfile::tempdir().unwrap();
    let demo = |seed: &str| {
        common::run_in(
            tmp.path(),
            &[
                "demo",
                "shop",
                "--customers",
                "400",
                "--seed",
                seed,
                "--end",
                "2025-11-01",
            ],
        )
        .assert_code(0);
    };
    demo("7");
    let db = tmp.path().join("shop/tiercare.db");
    let count = |sql: &str| -> i64 {
        rusqlite::Connection::open(&db)
            .unwrap()
            .query_row(sql, [], |row| row.get(0))
            .unwrap()
    };
    let first = count("SELECT count(*) FROM outbox WHERE rule_id = 'c-win-back'");
    assert!(first > 0, "the demo sends win-backs");
    demo("8");
    let shop = tmp.path().join("shop");
    common::run_in(&shop, &["assess", "--at", "2025-12-01"]).assert_code(0);
    common::run_in(&shop, &followups_record_json("2025-12-01", "2025-12-15")).assert_code(0);
    assert!(
        count("SELECT count(*) FROM outbox WHERE rule_id = 'c-win-back'") > first,
        "customers new to the win-back get it"
    );
    for rule in ["c-win-back", "welcome-upgrade"] {
        let twice = count(&format!(
            "SELECT count(*) FROM (SELECT customer_id FROM outbox WHERE rule_id = '{rule}' \
             GROUP BY customer_id HAVING count(*) > 1)"
        ));
        assert_eq!(twice, 0, "customers who got {rule} twice");
    }
}
