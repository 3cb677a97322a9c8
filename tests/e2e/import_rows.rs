//! End-to-end tests of how rows with problems are reported: every problem of a row at once.

use crate::common;

use common::Workspace;

#[test]
fn a_row_with_three_problems_reports_all_three_in_one_import() {
    let ws = Workspace::new();
    let customers = ws.write(
        "customers.csv",
        "customer_id,name,email\nc1,Jo,jo@example.com\n",
    );
    ws.run(&["import", "customers", &customers]).assert_code(0);
    let orders = ws.write(
        "orders.csv",
        "order_id,customer_id,ordered_at,amount\n\
         O1,c1,2025-01-10 10:00,100.00\n\
         O2,,2025-13-01 10:00,abc\n",
    );
    let out = ws.run(&["import", "orders", &orders]);
    out.assert_code(1);
    let line: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.contains("line 3"))
        .collect();
    assert_eq!(line.len(), 1, "one entry for the row: {}", out.stderr);
    for problem in [
        "ordered_at",
        "2025-13-01 10:00",
        "amount",
        "\"abc\"",
        "customer_id",
    ] {
        assert!(line[0].contains(problem), "{problem} in {}", line[0]);
    }
    assert_eq!(ws.count("SELECT count(*) FROM orders"), 1);
    assert_eq!(
        ws.count("SELECT rejected FROM imports WHERE kind = 'orders'"),
        1
    );
}
