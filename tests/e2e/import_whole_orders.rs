//! End-to-end tests of grouped orders with a rejected line: the order is rejected whole, every
//! line listed, whether its lines are together or scattered over the file.

use crate::common;

use common::Workspace;

const MAPPING: &str = "kind: orders\ngroup_by: order_id\n";

fn workspace() -> Workspace {
    let ws = Workspace::new();
    let customers = ws.write(
        "customers.csv",
        "customer_id,name,email\nc1,Jo,jo@example.com\nc2,Li,li@example.com\n",
    );
    ws.run(&["import", "customers", &customers]).assert_code(0);
    ws
}

fn check(orders_csv: &str, bad_line: u64, held: &[u64]) {
    let ws = workspace();
    let orders = ws.write("orders.csv", orders_csv);
    let mapping = ws.write("m.yaml", MAPPING);
    let out = ws.run(&["import", "orders", &orders, "--mapping", &mapping, "--json"]);
    out.assert_code(1);
    let report = out.json();
    // O2 is not imported at all (not as 40.00 of its 80.00), O1 is.
    assert_eq!(ws.count("SELECT count(*) FROM orders"), 1, "{report}");
    assert_eq!(
        ws.count("SELECT count(*) FROM orders WHERE external_id = 'O2'"),
        0
    );
    assert_eq!(report["imported"], 1, "{report}");
    assert_eq!(report["rejected"], 1 + held.len() as u64, "{report}");
    let listed: Vec<u64> = report["rejections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["line"].as_u64().unwrap())
        .collect();
    let mut expected = vec![bad_line];
    expected.extend_from_slice(held);
    assert_eq!(listed, expected, "{report}");
    for rejection in &report["rejections"].as_array().unwrap()[1..] {
        let reason = rejection["reason"].as_str().unwrap();
        assert!(
            reason.contains(&format!(
                "order 'O2' is rejected whole: its line {bad_line} was rejected"
            )),
            "{reason}"
        );
    }
}

#[test]
fn an_order_with_a_bad_line_is_rejected_whole_with_its_lines_listed() {
    check(
        "order_id,customer_id,ordered_at,amount\n\
         O1,c1,2025-01-10 10:00,10.00\n\
         O2,c2,2025-01-11 10:00,40.00\n\
         O2,c2,2025-01-11 10:00,forty\n\
         O2,c2,2025-01-11 10:00,0.50\n",
        4,
        &[3, 5],
    );
}

#[test]
fn a_scattered_order_with_a_bad_line_is_rejected_whole_too() {
    check(
        "order_id,customer_id,ordered_at,amount\n\
         O2,c2,2025-01-11 10:00,40.00\n\
         O1,c1,2025-01-10 10:00,10.00\n\
         O2,c2,2025-01-11 10:00,forty\n",
        4,
        &[2],
    );
}
