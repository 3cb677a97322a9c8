//! End-to-end tests of `tiercare init` and `tiercare import`: the real binary on temporary
//! workspaces with real SQLite files.

use crate::common;

use std::fs;

use common::{Workspace, quickstart};

#[test]
fn init_creates_a_workspace_and_refuses_to_overwrite_one() {
    let ws = Workspace::new();
    for file in [
        "tiercare.toml",
        "tiercare.db",
        "rules/README.md",
        "templates/README.md",
    ] {
        assert!(ws.path(file).exists(), "{file} missing");
    }
    fs::write(ws.path("rules/README.md"), "edited").unwrap();
    let again = ws.run(&["init", ws.root_str()]);
    again.assert_code(2);
    again.assert_stderr_contains("already holds a tiercare workspace");
    assert_eq!(
        fs::read_to_string(ws.path("rules/README.md")).unwrap(),
        "edited"
    );
}

#[test]
fn the_quickstart_files_import_and_reimport_changes_nothing() {
    let ws = Workspace::new();
    let mut first = Vec::new();
    for kind in [
        "managers",
        "customers",
        "orders",
        "interactions",
        "complaints",
        "feedback",
    ] {
        let out = ws.run(&["import", kind, &quickstart(kind), "--json"]);
        out.assert_code(0);
        first.push(out.json());
    }
    assert_eq!(first[1]["imported"], 8);
    assert_eq!(first[2]["imported"], 16);
    assert_eq!(ws.count("SELECT count(*) FROM orders"), 16);
    assert_eq!(ws.count("SELECT count(*) FROM customers"), 8);
    let attributes: String =
        ws.query_one("SELECT attributes FROM customers WHERE external_id = 'C001'");
    let attributes: serde_json::Value = serde_json::from_str(&attributes).unwrap();
    assert_eq!(attributes["industry"], "wholesale");
    assert_eq!(attributes["potential"], 80);

    for kind in [
        "managers",
        "customers",
        "orders",
        "interactions",
        "complaints",
        "feedback",
    ] {
        let out = ws.run(&["import", kind, &quickstart(kind), "--json"]);
        out.assert_code(0);
        let report = out.json();
        assert_eq!(report["imported"], 0, "{kind}: {report}");
        assert_eq!(report["updated"], 0, "{kind}: {report}");
        assert!(
            report["unchanged"].as_u64().unwrap() > 0,
            "{kind}: {report}"
        );
    }
    assert_eq!(ws.count("SELECT count(*) FROM orders"), 16);
    let revenue: f64 = ws.query_one("SELECT sum(amount) FROM orders");
    assert!((revenue - 61_670.9).abs() < 1e-6, "{revenue}");
}

#[test]
fn a_changed_customer_is_updated_and_missing_columns_keep_their_values() {
    let ws = Workspace::new();
    ws.run(&["import", "customers", &quickstart("customers")])
        .assert_code(0);
    let file = ws.write("update.csv", "customer_id,region\nC002,Hangzhou\n");
    let out = ws.run(&["import", "customers", &file, "--json"]);
    out.assert_code(0);
    assert_eq!(out.json()["updated"], 1);
    let (region, email): (String, String) =
        ws.query_one("SELECT region, email FROM customers WHERE external_id = 'C002'");
    assert_eq!(region, "Hangzhou");
    assert_eq!(email, "li.na@example.com");
}

#[test]
fn bad_rows_are_reported_with_line_column_and_reason_and_the_rest_is_imported() {
    let ws = Workspace::new();
    ws.run(&["import", "customers", &quickstart("customers")])
        .assert_code(0);
    let file = ws.write(
        "orders.csv",
        "order_id,customer_id,ordered_at,amount\n\
         X1,C001,2025-01-01 10:00,10.5\n\
         X2,C001,2025-13-01 10:00,10\n\
         X3,C001,2025-01-02 10:00,ten\n\
         X4,NOBODY,2025-01-02 10:00,5\n\
         X1,C001,2025-01-03 10:00,7\n",
    );
    let out = ws.run(&["import", "orders", &file]);
    out.assert_code(1);
    out.assert_stderr_contains("line 3, column ordered_at");
    out.assert_stderr_contains("2025-13-01 10:00");
    out.assert_stderr_contains("line 4, column amount");
    out.assert_stderr_contains("line 5, column customer_id: unknown customer 'NOBODY'");
    out.assert_stderr_contains(
        "line 6, column order_id: duplicate order_id 'X1' (first seen on line 2)",
    );
    assert_eq!(ws.count("SELECT count(*) FROM orders"), 1);
}

#[test]
fn strict_refuses_the_whole_file() {
    let ws = Workspace::new();
    ws.run(&["import", "customers", &quickstart("customers")])
        .assert_code(0);
    let file = ws.write(
        "orders.csv",
        "order_id,customer_id,ordered_at,amount\nY1,C001,2025-01-01,1\nY2,C001,not a date,1\n",
    );
    let out = ws.run(&["import", "orders", &file, "--strict"]);
    out.assert_code(2);
    out.assert_stderr_contains("line 3, column ordered_at");
    out.assert_stderr_contains("nothing was imported");
    assert_eq!(ws.count("SELECT count(*) FROM orders"), 0);
}

#[test]
fn duplicate_customer_ids_in_one_file_are_rejected() {
    let ws = Workspace::new();
    let file = ws.write(
        "customers.csv",
        "customer_id,name\nD1,First\nD2,Second\nD1,Again\n",
    );
    let out = ws.run(&["import", "customers", &file]);
    out.assert_code(1);
    out.assert_stderr_contains(
        "line 4, column customer_id: duplicate customer_id 'D1' (first seen on line 2)",
    );
    let name: String = ws.query_one("SELECT name FROM customers WHERE external_id = 'D1'");
    assert_eq!(name, "First");
}

#[test]
fn missing_columns_are_named_with_the_columns_found() {
    let ws = Workspace::new();
    let file = ws.write("orders.csv", "order,customer,amount\n1,2,3\n");
    let out = ws.run(&["import", "orders", &file]);
    out.assert_code(2);
    out.assert_stderr_contains("order_id");
    out.assert_stderr_contains("ordered_at");
    out.assert_stderr_contains("columns found: `order`, `customer`, `amount`");
}

#[test]
fn a_wrong_delimiter_gets_a_hint() {
    let ws = Workspace::new();
    let file = ws.write("customers.csv", "customer_id;name\nE1;Eve\n");
    let out = ws.run(&["import", "customers", &file]);
    out.assert_code(2);
    out.assert_stderr_contains("delimiter");
}

#[test]
fn gbk_text_is_refused_with_its_line() {
    let ws = Workspace::new();
    // "customer_id,name\nG1,王芳\n" with the name in GBK.
    let mut bytes = b"customer_id,name\nG1,".to_vec();
    bytes.extend_from_slice(&[0xCD, 0xF5, 0xB7, 0xBC]);
    bytes.push(b'\n');
    let file = ws.write_bytes("gbk.csv", &bytes);
    let out = ws.run(&["import", "customers", &file]);
    out.assert_code(2);
    out.assert_stderr_contains("gbk.csv:2");
    out.assert_stderr_contains("not UTF-8");
    out.assert_stderr_contains("iconv");
    assert_eq!(ws.count("SELECT count(*) FROM customers"), 0);
}

#[test]
fn a_utf8_bom_is_fine() {
    let ws = Workspace::new();
    let file = ws.write("bom.csv", "\u{feff}customer_id,name\nB1,Zoë\n");
    ws.run(&["import", "customers", &file]).assert_code(0);
    let name: String = ws.query_one("SELECT name FROM customers WHERE external_id = 'B1'");
    assert_eq!(name, "Zoë");
}

#[test]
fn json_lines_and_gzip_are_read() {
    let ws = Workspace::new();
    let file = ws.write(
        "customers.jsonl",
        "{\"customer_id\": \"J1\", \"name\": \"Jay\", \"consent_email\": true, \"tier_hint\": 3}\n\
         {\"customer_id\": \"J2\", \"name\": null, \"consent_email\": false, \"tier_hint\": 1.5}\n",
    );
    ws.run(&["import", "customers", &file]).assert_code(0);
    assert_eq!(
        ws.count("SELECT count(*) FROM customers WHERE consent_email = 1"),
        1
    );

    let gz = ws.path("orders.csv.gz");
    let bytes = gzip_stored(b"order_id,customer_id,ordered_at,amount\nZ1,J1,2025-02-03,9.5\n");
    fs::write(&gz, bytes).unwrap();
    ws.run(&["import", "orders", gz.to_str().unwrap()])
        .assert_code(0);
    assert_eq!(ws.count("SELECT count(*) FROM orders"), 1);
}

/// A gzip member with stored (uncompressed) deflate blocks, so the test needs no gzip library.
fn gzip_stored(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    // One final stored block (data is short).
    out.push(1);
    let len = data.len() as u16;
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&(!len).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&crc32(data).to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn mapping_errors_point_at_file_line_and_column() {
    let ws = Workspace::new();
    let data = ws.write("export.csv", "Id,Total,When\n1,2,2025-01-01\n");
    let mapping = ws.write(
        "bad.mapping.yaml",
        "kind: orders\ncolums:\n  order_id: Id\nderive:\n  amount: Total *\n",
    );
    let out = ws.run(&["import", "orders", &data, "--mapping", &mapping]);
    out.assert_code(2);
    out.assert_stderr_contains("bad.mapping.yaml:2:1");
    out.assert_stderr_contains("columns");
    assert_eq!(ws.count("SELECT count(*) FROM orders"), 0);

    let mapping = ws.write(
        "rhai.mapping.yaml",
        "kind: orders\ncolumns:\n  order_id: Id\n  customer_id: Id\n  ordered_at: When\nderive:\n  amount: Total * * 2\n",
    );
    let out = ws.run(&["import", "orders", &data, "--mapping", &mapping]);
    out.assert_code(2);
    out.assert_stderr_contains("rhai.mapping.yaml:7:");
}

#[test]
fn a_missing_file_a_missing_workspace_and_a_foreign_database_are_clear_errors() {
    let ws = Workspace::new();
    let out = ws.run(&["import", "customers", "no-such-file.csv"]);
    out.assert_code(2);
    out.assert_stderr_contains("no-such-file.csv");

    let out = common::run_in(
        ws.root(),
        &[
            "--workspace",
            "does-not-exist",
            "import",
            "customers",
            "x.csv",
        ],
    );
    out.assert_code(2);
    out.assert_stderr_contains("does not exist");
    out.assert_stderr_contains("tiercare init");

    fs::write(ws.path("tiercare.db"), b"this is not a database, just some text that is long enough to not be empty at all.............................................................................................").unwrap();
    for suffix in ["-wal", "-shm"] {
        let _ = fs::remove_file(ws.path(&format!("tiercare.db{suffix}")));
    }
    let out = ws.run(&["import", "customers", &quickstart("customers")]);
    out.assert_code(2);
    out.assert_stderr_contains("not a tiercare database");
}

#[test]
fn a_locked_database_is_reported_not_waited_on_forever() {
    let ws = Workspace::new();
    fs::write(
        ws.path("tiercare.toml"),
        fs::read_to_string(ws.path("tiercare.toml"))
            .unwrap()
            .replace(
                "path = \"tiercare.db\"",
                "path = \"tiercare.db\"\nbusy_timeout_ms = 200",
            ),
    )
    .unwrap();
    let holder = rusqlite::Connection::open(ws.path("tiercare.db")).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    let out = ws.run(&["import", "customers", &quickstart("customers")]);
    out.assert_code(2);
    out.assert_stderr_contains("lock");
    holder.execute_batch("ROLLBACK").unwrap();
    ws.run(&["import", "customers", &quickstart("customers")])
        .assert_code(0);
}
