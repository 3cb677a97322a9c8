//! End-to-end tests of importing order lines grouped into orders (`group_by`): orders are written
//! while the file is read when each order's lines are contiguous, and an order whose lines are
//! scattered makes the import start over holding every order until the end. Either way the
//! outcome must be the one of holding every order, which is what an import from a pipe (a file
//! that cannot be read twice) does from the start: every test imports the same lines both ways
//! into two workspaces and compares reports, errors and database contents.

use crate::common;

use std::io::Write;
use std::process::Stdio;

use rusqlite::types::ValueRef;

use common::{Run, Workspace, command_in};

const HEADER: &str = "Invoice,Sku,Qty,Price,Date,Customer,Country\n";

/// Lines of orders A1, A2 and A3, each contiguous: a skipped cancellation, a quantity that is not
/// a number, and a line of A2 naming another customer (so A2 is rejected whole).
const CONTIGUOUS: &str = "A1,S1,2,1.5,2011-12-01 08:26,C1,United Kingdom
A1,S2,1,4,2011-12-01 08:26,C1,United Kingdom
C9,S1,1,1,2011-12-01 08:30,C1,United Kingdom
A2,S1,x,1,2011-12-01 09:00,C2,France
A2,S3,3,2,2011-12-01 09:00,C2,France
A2,S4,1,1,2011-12-01 09:01,C3,France
A3,S1,1,2,2011-12-02 10:00,C3,Germany
";

/// A line of A1 after the lines of A2 and A3.
const SCATTERED_LINE: &str = "A1,S5,1,10,2011-11-30 10:00,C1,United Kingdom\n";

fn mapping(create_customers: bool) -> String {
    format!(
        "kind: orders
columns:
  order_id: Invoice
  customer_id: Customer
  ordered_at: Date
  sku: Sku
  quantity: Qty
  unit_price: Price
  customer_region: Country
types:
  Qty: int
  Price: float
skip:
  cancelled invoice: Invoice.starts_with(\"C\")
group_by: order_id
create_customers: {create_customers}
"
    )
}

/// One workspace importing from a file, the other from a pipe.
struct Pair {
    file: Workspace,
    pipe: Workspace,
}

/// What an import printed and left in the database, without what must differ (the file's
/// name, times).
#[derive(Debug, PartialEq)]
struct Outcome {
    code: i32,
    report: Option<serde_json::Value>,
    stderr: String,
    tables: Vec<Vec<String>>,
}

impl Pair {
    fn new() -> Pair {
        Pair {
            file: Workspace::new(),
            pipe: Workspace::new(),
        }
    }

    /// Imports `csv` with the mapping into both workspaces; returns (from the file, from the
    /// pipe).
    fn import(&self, csv: &str, create_customers: bool, extra: &[&str]) -> (Outcome, Outcome) {
        let from_file = {
            let ws = &self.file;
            let data = ws.write("orders.csv", csv);
            let map = ws.write("orders.mapping.yaml", &mapping(create_customers));
            let mut args = vec!["import", "orders", &data, "--mapping", &map, "--json"];
            args.extend(extra);
            let run = command_in(ws.root())
                .args(&args)
                .output()
                .expect("run tiercare");
            outcome(ws, &run_of(run), &data)
        };
        let from_pipe = {
            let ws = &self.pipe;
            let map = ws.write("orders.mapping.yaml", &mapping(create_customers));
            let mut args = vec![
                "import",
                "orders",
                "/dev/stdin",
                "--mapping",
                &map,
                "--json",
            ];
            args.extend(extra);
            let mut child = command_in(ws.root())
                .args(&args)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("run tiercare");
            child
                .stdin
                .take()
                .unwrap()
                .write_all(csv.as_bytes())
                .unwrap();
            let run = child.wait_with_output().unwrap();
            outcome(ws, &run_of(run), "/dev/stdin")
        };
        (from_file, from_pipe)
    }

    /// Imports both ways and asserts the same outcome; returns it.
    fn same(&self, csv: &str, create_customers: bool, extra: &[&str]) -> Outcome {
        let (from_file, from_pipe) = self.import(csv, create_customers, extra);
        assert_eq!(from_file, from_pipe);
        from_file
    }
}

fn run_of(output: std::process::Output) -> Run {
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn outcome(ws: &Workspace, run: &Run, data: &str) -> Outcome {
    // Exit code 1: imported, with rejected rows.
    let report = (run.code <= 1).then(|| {
        let mut report = run.json();
        let object = report.as_object_mut().unwrap();
        object.remove("file");
        object.remove("elapsed_ms");
        report
    });
    let stderr = if run.code <= 1 {
        String::new()
    } else {
        run.stderr.replace(data, "DATA")
    };
    let db = rusqlite::Connection::open(ws.path("tiercare.db")).unwrap();
    let tables = [
        "SELECT id, external_id, name, region FROM customers ORDER BY id",
        "SELECT id, external_id, customer_id, ordered_at, amount, item_count FROM orders ORDER BY id",
        "SELECT order_id, line_no, sku, description, quantity, unit_price, amount \
         FROM order_items ORDER BY order_id, line_no",
        "SELECT kind, rows_read, imported, updated, unchanged, skipped, rejected, \
         customers_created FROM imports ORDER BY id",
    ]
    .iter()
    .map(|sql| dump(&db, sql))
    .collect();
    Outcome {
        code: run.code,
        report,
        stderr,
        tables,
    }
}

/// Every row of a query, each as its values joined.
fn dump(db: &rusqlite::Connection, sql: &str) -> Vec<String> {
    let mut stmt = db.prepare(sql).unwrap();
    let columns = stmt.column_count();
    stmt.query_map([], |row| {
        let values: Vec<String> = (0..columns)
            .map(|i| match row.get_ref(i).unwrap() {
                ValueRef::Null => "NULL".to_owned(),
                ValueRef::Integer(v) => v.to_string(),
                ValueRef::Real(v) => format!("{v:?}"),
                ValueRef::Text(v) => String::from_utf8_lossy(v).into_owned(),
                ValueRef::Blob(v) => format!("{v:?}"),
            })
            .collect();
        Ok(values.join("|"))
    })
    .unwrap()
    .collect::<rusqlite::Result<_>>()
    .unwrap()
}

fn report(outcome: &Outcome) -> &serde_json::Value {
    outcome.report.as_ref().expect("the import succeeded")
}

fn rejection_lines(outcome: &Outcome) -> Vec<u64> {
    report(outcome)["rejections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["line"].as_u64().unwrap())
        .collect()
}

#[test]
fn contiguous_orders_import_as_when_held_to_the_end_and_reimport_unchanged() {
    let pair = Pair::new();
    let csv = format!("{HEADER}{CONTIGUOUS}");
    let first = pair.same(&csv, true, &[]);
    let r = report(&first);
    // A2 has two rejected lines: it is rejected whole (and its customer C2 not created).
    assert_eq!(r["imported"], 2, "{r}");
    assert_eq!(r["order_lines"], 3, "{r}");
    assert_eq!(r["skipped"], 1, "{r}");
    assert_eq!(r["rejected"], 3, "{r}");
    assert_eq!(r["customers_created"], 2, "{r}");
    // The quantity that is not a number, then the line of A2 naming C3, then A2's other line.
    assert_eq!(rejection_lines(&first), [5, 7, 6]);
    assert_eq!(
        r["rejections"][1]["reason"],
        "order 'A2' belongs to customer 'C2' on line 6"
    );
    assert_eq!(
        r["rejections"][2]["reason"],
        "order 'A2' is rejected whole: its lines 5, 7 were rejected (its lines: 5, 6, 7); \
         fix those lines and import the file again"
    );

    let again = pair.same(&csv, true, &[]);
    let r = report(&again);
    assert_eq!(
        (&r["imported"], &r["updated"], &r["unchanged"]),
        (&0.into(), &0.into(), &2.into()),
        "{r}"
    );
    assert_eq!(r["customers_created"], 0, "{r}");
}

#[test]
fn an_order_with_scattered_lines_is_one_order_on_first_import_and_unchanged_on_reimport() {
    let pair = Pair::new();
    let csv = format!("{HEADER}{CONTIGUOUS}{SCATTERED_LINE}");
    let first = pair.same(&csv, true, &[]);
    let r = report(&first);
    assert_eq!(r["imported"], 2, "{r}");
    assert_eq!(r["order_lines"], 4, "{r}");
    assert_eq!(r["customers_created"], 2, "{r}");
    assert_eq!(r["rejected"], 3, "{r}");
    // A1: three lines, 2 x 1.5 + 4 + 10, at its earliest line's time; written first.
    let a1 = &first.tables[1][0];
    assert_eq!(a1, "1|A1|1|1322647200|17.0|3");
    // Two customers created once each: the first pass was undone.
    assert_eq!(first.tables[0].len(), 2, "{:?}", first.tables[0]);

    let again = pair.same(&csv, true, &[]);
    let r = report(&again);
    assert_eq!(
        (&r["imported"], &r["updated"], &r["unchanged"]),
        (&0.into(), &0.into(), &2.into()),
        "{r}"
    );
    assert_eq!(again.tables[3].len(), 2);
}

#[test]
fn the_file_is_read_again_only_when_an_order_is_scattered() {
    let ws = Workspace::new();
    let map = ws.write("orders.mapping.yaml", &mapping(true));
    let import = |csv: &str| {
        let data = ws.write("orders.csv", csv);
        let out = Run::of(
            command_in(ws.root())
                .args(["import", "orders", &data, "--mapping", &map, "--json"])
                .env("TIERCARE_LOG", "info"),
        );
        out.assert_code(1);
        out
    };
    let contiguous = import(&format!("{HEADER}{CONTIGUOUS}"));
    assert!(
        !contiguous.stderr.contains("not contiguous"),
        "{}",
        contiguous.stderr
    );
    let scattered = import(&format!("{HEADER}{CONTIGUOUS}{SCATTERED_LINE}"));
    scattered.assert_stderr_contains("an order's lines are not contiguous");
    scattered.assert_stderr_contains("line=9");
    assert_eq!(scattered.json()["updated"], 1);
}

#[test]
fn rejections_by_the_database_are_listed_after_the_rows_own_as_when_held() {
    // The rows' own rejections come first, then the other lines of orders rejected whole
    // (A2's line 6), then the database's.
    let pair = Pair::new();
    // No customers and none created: every order is rejected by the store, the first while
    // later lines are still to be read.
    let csv = format!("{HEADER}{CONTIGUOUS}{SCATTERED_LINE}");
    let scattered = pair.same(&csv, false, &[]);
    assert_eq!(rejection_lines(&scattered), [5, 7, 6, 2, 8]);
    assert_eq!(report(&scattered)["imported"], 0);
    let csv = format!("{HEADER}{CONTIGUOUS}");
    let contiguous = pair.same(&csv, false, &[]);
    assert_eq!(rejection_lines(&contiguous), [5, 7, 6, 2, 8]);
    assert!(
        report(&contiguous)["rejections"][3]["reason"]
            .as_str()
            .unwrap()
            .contains("unknown customer 'C1'"),
        "{}",
        report(&contiguous)
    );
    assert_eq!(contiguous.tables[1].len(), 0);
}

#[test]
fn strict_names_the_first_bad_row_as_when_held() {
    let pair = Pair::new();
    // A1 is refused by the store (unknown customer) before line 5 is read; the row's own
    // problem on line 5 is still the one named, as when every order is written at the end.
    let csv = format!("{HEADER}{CONTIGUOUS}");
    let refused = pair.same(&csv, false, &["--strict"]);
    assert_eq!(refused.code, 2, "{refused:?}");
    assert!(refused.stderr.contains("line 5, column Qty"), "{refused:?}");
    assert!(refused.tables.iter().all(Vec::is_empty), "{refused:?}");

    // Without a bad row of its own, the store's first refusal is named.
    let clean: String = CONTIGUOUS
        .lines()
        .filter(|line| !line.contains(",x,") && !line.contains(",C3,France"))
        .map(|line| format!("{line}\n"))
        .collect();
    let refused = pair.same(
        &format!("{HEADER}{clean}{SCATTERED_LINE}"),
        false,
        &["--strict"],
    );
    assert_eq!(refused.code, 2, "{refused:?}");
    assert!(
        refused.stderr.contains("line 2, column customer_id"),
        "{refused:?}"
    );
    let refused = pair.same(&format!("{HEADER}{clean}"), false, &["--strict"]);
    assert!(
        refused.stderr.contains("line 2, column customer_id"),
        "{refused:?}"
    );

    // With customers created, strict imports the clean file in full, scattered or not.
    let done = pair.same(
        &format!("{HEADER}{clean}{SCATTERED_LINE}"),
        true,
        &["--strict"],
    );
    assert_eq!(report(&done)["imported"], 3);
}
