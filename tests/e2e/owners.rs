//! End-to-end tests of owner assignment: `owners`, `owners assign`, the assignment done by
//! `followups record` before it creates tasks, and `check` on the managers and roles the rules
//! name, on the real binary with real SQLite files and the quickstart data.

use crate::common;

use common::{Workspace, followups_record_json};

const FROM: &str = "2025-06-02";
const UNTIL: &str = "2025-07-02";

/// Customers without an owner: a big spender (tier A), two small ones, one who never ordered.
const NEW_CUSTOMERS: &str = "\
customer_id,name,email,timezone,consent_email
N001,New Big Buyer,big@example.com,Europe/London,true
N002,New Small Buyer,small@example.com,Europe/London,true
N003,New Tiny Buyer,tiny@example.com,Europe/London,true
N004,Never Ordered,never@example.com,Europe/London,true
";

const NEW_ORDERS: &str = "\
order_id,customer_id,ordered_at,amount
N-O1,N001,2025-05-01 10:00,90000
N-O2,N002,2025-05-02 10:00,40
N-O3,N003,2025-05-03 10:00,15
";

/// The quickstart data with four more customers without an owner, assessed at [`FROM`].
fn assessed() -> Workspace {
    let ws = Workspace::with_quickstart();
    let customers = ws.write("new-customers.csv", NEW_CUSTOMERS);
    let orders = ws.write("new-orders.csv", NEW_ORDERS);
    ws.run(&["import", "customers", &customers]).assert_code(0);
    ws.run(&["import", "orders", &orders]).assert_code(0);
    ws.run(&["assess", "--at", FROM]).assert_code(0);
    ws
}

/// `(customer, tier, owner)` of every customer who had no owner before, by customer.
fn unowned_at_start(ws: &Workspace) -> Vec<(String, String, Option<String>)> {
    let conn = rusqlite::Connection::open(ws.path("tiercare.db")).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT c.external_id, t.tier, nullif(trim(c.owner), '') FROM customers c \
             JOIN customer_tiers t ON t.customer_id = c.id \
             WHERE c.external_id IN ('C005', 'C007', 'C008', 'N001', 'N002', 'N003', 'N004') \
             ORDER BY c.external_id",
        )
        .unwrap();
    stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn unowned_count(ws: &Workspace) -> i64 {
    ws.count("SELECT count(*) FROM customers WHERE owner IS NULL OR trim(owner) = ''")
}

#[test]
fn owners_assign_gives_a_to_senior_b_to_junior_managers_and_c_to_nobody() {
    let ws = assessed();
    let before = unowned_at_start(&ws);
    assert!(
        before.iter().all(|(_, _, owner)| owner.is_none()),
        "{before:?}"
    );
    assert!(
        before
            .iter()
            .any(|(id, tier, _)| id == "N001" && tier == "A"),
        "{before:?}"
    );
    assert!(before.iter().any(|(_, tier, _)| tier == "C"), "{before:?}");
    let unowned = unowned_count(&ws);

    // A dry run decides and writes nothing.
    let out = ws.run(&["owners", "assign", "--dry-run", "--json"]);
    out.assert_code(0);
    let dry = out.json();
    assert_eq!(dry["dry_run"], true);
    assert_eq!(dry["written"], 0);
    let decided = dry["plan"]["assignments"].as_array().unwrap().len();
    assert!(decided >= 1, "{dry}");
    assert_eq!(unowned_count(&ws), unowned);

    let out = ws.run(&["owners", "assign", "--json"]);
    out.assert_code(0);
    let report = out.json();
    assert_eq!(
        report["written"].as_u64().unwrap() as usize,
        decided,
        "{report}"
    );
    let tiers = report["plan"]["tiers"].as_array().unwrap();
    let c = tiers.iter().find(|t| t["tier"] == "C").unwrap();
    assert_eq!(c["to"], "nobody");
    assert_eq!(c["assigned"], 0);
    assert!(c["unowned"].as_u64().unwrap() >= 1, "{c}");
    // Every A customer went to the senior manager, every B one to the active junior manager
    // (carol is inactive), and C customers have no owner.
    for (id, tier, owner) in unowned_at_start(&ws) {
        let expected = match tier.as_str() {
            "A" => Some("alice"),
            "B" => Some("bob"),
            _ => None,
        };
        assert_eq!(owner.as_deref(), expected, "{id} in tier {tier}");
    }
    assert_eq!(unowned_count(&ws), unowned - decided as i64);

    // Nothing left to assign: a second run writes nothing.
    let again = ws.run(&["owners", "assign", "--json"]).json();
    assert_eq!(again["written"], 0, "{again}");
    assert_eq!(again["plan"]["assignments"].as_array().unwrap().len(), 0);

    // The managers with their load.
    let out = ws.run(&["owners"]);
    out.assert_code(0);
    out.assert_stdout_contains("alice");
    out.assert_stdout_contains("(inactive)");
    let managers = ws.run(&["owners", "list", "--json"]).json();
    let alice = managers
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["external_id"] == "alice")
        .unwrap();
    assert!(alice["customers"].as_u64().unwrap() >= 3, "{alice}");
}

#[test]
fn a_full_manager_gets_no_more_customers_and_the_report_says_so() {
    let ws = assessed();
    // alice can take no one: capacity 2, and she owns two customers already.
    let managers = ws.write(
        "managers-full.csv",
        "manager_id,name,role,capacity,active\nalice,Alice Chen,senior,2,true\n",
    );
    ws.run(&["import", "managers", &managers]).assert_code(0);
    let out = ws.run(&["owners", "assign"]);
    out.assert_code(0);
    out.assert_stderr_contains("every candidate is at capacity");
    assert_eq!(
        ws.count(
            "SELECT count(*) FROM customers WHERE external_id = 'N001' \
             AND (owner IS NULL OR trim(owner) = '')"
        ),
        1
    );
    // A capacity cut below what she owns, and an inactive manager who still owns customers:
    // `owners` says so.
    let managers = ws.write(
        "managers-cut.csv",
        "manager_id,name,role,capacity,active\nalice,Alice Chen,senior,1,true\n\
         bob,Bob Martin,junior,2000,false\n",
    );
    ws.run(&["import", "managers", &managers]).assert_code(0);
    let out = ws.run(&["owners"]);
    out.assert_code(0);
    out.assert_stderr_contains("alice (Alice Chen) owns 2 customers but can look after 1");
    out.assert_stderr_contains("bob (Bob Martin) is inactive but still owns 3 customers");
}

#[test]
fn followups_record_assigns_owners_before_it_creates_tasks() {
    let ws = assessed();
    let out = ws.run(&followups_record_json(FROM, UNTIL));
    out.assert_code(0);
    let report = out.json();
    assert!(report["owners_assigned"].as_u64().unwrap() >= 1, "{report}");
    // The new key account has its monthly review, for its new owner.
    let assignee: String = ws.query_one(
        "SELECT t.assignee FROM tasks t JOIN customers c ON c.id = t.customer_id \
         WHERE c.external_id = 'N001' AND t.title LIKE 'Monthly review%'",
    );
    assert_eq!(assignee, "alice");
    assert_eq!(
        ws.count(
            "SELECT count(*) FROM followups f JOIN customers c ON c.id = f.customer_id \
             WHERE c.external_id = 'N001' AND f.status = 'skipped' \
             AND f.status_reason LIKE '%no owner%'"
        ),
        0
    );
}

#[test]
fn check_reports_unknown_roles_and_managers_at_their_line() {
    let ws = assessed();
    ws.run(&["check"]).assert_code(0);
    let rules = std::fs::read_to_string(ws.path("rules/followups.yaml")).unwrap();
    let broken = rules.replace("B: [role:junior]", "B: [role:juniro, manager:zed]");
    assert_ne!(broken, rules);
    ws.write("rules/followups.yaml", &broken);
    ws.write(
        "rules/extra.yaml",
        "followups:\n  - id: t-exec\n    every: 90d\n    task: { assignee: \"role:executive\", title: Call }\n",
    );
    let out = ws.run(&["check"]);
    out.assert_code(1);
    let line = broken
        .lines()
        .position(|l| l.contains("role:juniro"))
        .unwrap()
        + 1;
    out.assert_stderr_contains(&format!("rules/followups.yaml:{line}:"));
    out.assert_stderr_contains("the owner assignment uses role `juniro`, which does not exist");
    out.assert_stderr_contains("did you mean `junior`?");
    out.assert_stderr_contains("the owner assignment uses manager `zed`, which does not exist");
    out.assert_stderr_contains("rules/extra.yaml:4:");
    out.assert_stderr_contains("follow-up `t-exec` uses role `executive`");
    // A bad entry is a load error, whatever the database holds.
    ws.write(
        "rules/followups.yaml",
        &rules.replace("C: nobody", "C: [nobody, role:junior]"),
    );
    std::fs::remove_file(ws.path("rules/extra.yaml")).unwrap();
    let out = ws.run(&["check"]);
    out.assert_code(1);
    out.assert_stderr_contains("tier `C` is assigned to `nobody` and to managers");
}

#[test]
fn a_workspace_without_managers_checks_and_assigns_nothing() {
    let ws = Workspace::new();
    ws.run(&["check"]).assert_code(0);
    let out = ws.run(&["owners"]);
    out.assert_code(0);
    out.assert_stdout_contains("no managers");
    let out = ws.run(&["owners", "assign", "--json"]);
    out.assert_code(0);
    assert_eq!(out.json()["written"], 0);
}
