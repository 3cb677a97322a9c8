//! End-to-end tests of the functions a mapping can call: an unknown one is refused before any
//! row is read, with a "did you mean"; the string helpers work.

use crate::common;

use common::Workspace;

#[test]
fn a_mapping_calling_an_unknown_function_is_refused_before_reading() {
    let ws = Workspace::new();
    let customers = ws.write(
        "customers.csv",
        "Id,Mail\nc1,  jo@example.com\nc2,li@example.com\n",
    );
    let mapping = ws.write(
        "m.yaml",
        "kind: customers\ncolumns:\n  customer_id: Id\nderive:\n  email: Mail.trim_strat()\n",
    );
    let out = ws.run(&["import", "customers", &customers, "--mapping", &mapping]);
    out.assert_code(2);
    out.assert_stderr_contains("m.yaml:5:");
    out.assert_stderr_contains("`derive.email` calls `trim_strat`");
    out.assert_stderr_contains("did you mean `trim_start`?");
    assert!(
        !out.stderr.contains("line 2"),
        "no row was read: {}",
        out.stderr
    );
    assert_eq!(ws.count("SELECT count(*) FROM customers"), 0);
}

#[test]
fn string_helpers_clean_cells() {
    let ws = Workspace::new();
    let customers = ws.write(
        "customers.csv",
        "Id,Mail,Town\nc1,  Jo@Example.com ,  london\n",
    );
    let mapping = ws.write(
        "m.yaml",
        "kind: customers\ncolumns:\n  customer_id: Id\nderive:\n  email: lower(trim_start(Mail)).trim_end()\n  region: upper(replace(trim(Town), \"lon\", \"Lon\"))\n",
    );
    let out = ws.run(&["import", "customers", &customers, "--mapping", &mapping]);
    out.assert_code(0);
    let (email, region): (String, String) =
        ws.query_one("SELECT email, region FROM customers WHERE external_id = 'c1'");
    assert_eq!(email, "jo@example.com");
    assert_eq!(region, "LONDON");
}
