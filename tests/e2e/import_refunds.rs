//! End-to-end tests of negative amounts in orders imports: refused by default with every row
//! named, imported as refunds when the mapping says `refunds: true`.

use crate::common;

use common::Workspace;

const ORDERS: &str = "order_id,customer_id,ordered_at,amount\n\
O1,c1,2025-01-10 10:00,100.00\n\
R1,c1,2025-02-10 10:00,-50.00\n\
G1,c1,2025-03-10 10:00,-20.00\n";

fn workspace() -> Workspace {
    let ws = Workspace::new();
    let customers = ws.write(
        "customers.csv",
        "customer_id,name,email\nc1,Jo,jo@example.com\n",
    );
    ws.run(&["import", "customers", &customers]).assert_code(0);
    ws
}

#[test]
fn negative_amounts_are_refused_by_default_with_each_row_named() {
    let ws = workspace();
    let orders = ws.write("orders.csv", ORDERS);
    let out = ws.run(&["import", "orders", &orders]);
    out.assert_code(1);
    out.assert_stderr_contains("line 3, column amount");
    out.assert_stderr_contains("line 4, column amount");
    out.assert_stderr_contains("-50");
    out.assert_stderr_contains("-20");
    out.assert_stderr_contains("refunds: true");
    assert_eq!(ws.count("SELECT count(*) FROM orders"), 1);
    assert_eq!(ws.count("SELECT count(*) FROM orders WHERE amount < 0"), 0);
}

#[test]
fn refunds_lower_revenue_and_are_not_orders_with_the_mapping_option() {
    let ws = workspace();
    let orders = ws.write("orders.csv", ORDERS);
    let mapping = ws.write("refunds.yaml", "kind: orders\nrefunds: true\n");
    let out = ws.run(&["import", "orders", &orders, "--mapping", &mapping]);
    out.assert_code(0);
    assert_eq!(ws.count("SELECT count(*) FROM orders"), 3);
    // By hand: 100 - 50 - 20 = 30 of revenue, from one order (refunds are not orders); the
    // last order is O1's, not the refunds'.
    let listed = ws.run(&[
        "customers",
        "--at",
        "2025-04-01",
        "--where",
        "orders_total == 1 && revenue_total == 30.0 && orders_window == 1 \
         && revenue_window == 30.0 && days_since_last_order == 80",
        "--jsonl",
    ]);
    listed.assert_code(0);
    let rows: Vec<serde_json::Value> = listed
        .stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(rows.len(), 1, "{}", listed.stdout);
    assert_eq!(rows[0]["id"], "c1");
    assert_eq!(rows[0]["orders_total"], 1);
    assert_eq!(rows[0]["revenue_total"], 30.0);
    assert_eq!(rows[0]["last_order_at"], "2025-01-10T10:00:00Z");
}

#[test]
fn refunds_is_an_orders_option_only() {
    let ws = Workspace::new();
    let customers = ws.write(
        "customers.csv",
        "customer_id,name,email\nc1,Jo,jo@example.com\n",
    );
    let mapping = ws.write("m.yaml", "kind: customers\nrefunds: true\n");
    let out = ws.run(&["import", "customers", &customers, "--mapping", &mapping]);
    out.assert_code(2);
    out.assert_stderr_contains("`refunds` applies to orders");
}
