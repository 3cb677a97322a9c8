//! The staff customers pages of `tiercare serve` in headless Chromium (WebDriver) and with raw
//! HTTP: a manager signs in, sees only their customers, opens one and pins it with a reason
//! (the database and the audit show it); another manager's customer is "not found"; a viewer's
//! pin POST, with a valid session and CSRF token, is refused by the server; the CSV export,
//! read by Python's `csv` module, is the CLI's. Screenshots of the list and the customer page
//! at 1280 and 360 pixels go to `target/staff-screenshots/`.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::browser::Driver;
use common::run_in;
use common::staff::{PASSWORD, StaffWorkspace, screenshot_dir};

/// The tests' Python (`.ci/deps` makes it), or a failure saying to run `.ci/deps`.
fn python() -> PathBuf {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-venv/bin/python");
    assert!(
        python.exists(),
        "the tests' Python venv is missing: run `bash .ci/deps`"
    );
    python
}

/// `text` parsed by Python's `csv` module (RFC 4180 dialect as Excel writes it), as rows.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let dir = common::fast_tempdir();
    let file = dir.path().join("export.csv");
    std::fs::write(&file, text).unwrap();
    let output = Command::new(python())
        .args([
            "-c",
            "import csv, json, sys\n\
             with open(sys.argv[1], newline='', encoding='utf-8') as f:\n\
             \x20   print(json.dumps(list(csv.reader(f, strict=True))))",
        ])
        .arg(&file)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn a_manager_sees_only_their_customers_and_pins_one_with_a_reason() {
    let ws = StaffWorkspace::start("");
    let driver = Driver::start();
    let browser = driver.session("en-GB,en", 1280);
    browser.sign_in(&ws.base, "alice", PASSWORD);
    browser.open(&format!("{}/staff/customers", ws.base));
    browser.wait_text("h1", "Customers");
    browser.assert_fields_labelled();
    let list = browser.text("main");
    assert!(list.contains("C001") && list.contains("C002"), "{list}");
    assert!(
        !list.contains("C003"),
        "a manager sees another's customer:\n{list}"
    );
    // The owner in the address bar does not widen a manager's list.
    browser.open(&format!("{}/staff/customers?owner=bob", ws.base));
    browser.wait_text("h1", "Customers");
    assert!(!browser.text("main").contains("C003"));
    browser.open(&format!("{}/staff/customers", ws.base));
    browser.wait_text("h1", "Customers");
    browser.screenshot(&screenshot_dir().join("customers-1280.png"));
    browser.set_width(360);
    browser.assert_fits(360);
    browser.screenshot(&screenshot_dir().join("customers-360.png"));
    browser.set_width(1280);

    browser.click("a[href=\"/staff/customers/C001\"]");
    browser.wait_text("h1", "Customer: Acme Trading Ltd (C001)");
    browser.assert_fields_labelled();
    let page = browser.text("main");
    assert!(page.contains("Tier and why"), "{page}");
    browser.type_into("#pin-reason", "Strategic account: renewal under way");
    browser.click("form[action=\"/staff/customers/C001/pin\"] button");
    browser.wait_text(
        ".notice",
        "Pinned: the pin takes effect at the next assessment.",
    );
    let (tier, reason, by): (String, String, String) = ws
        .db()
        .query_row(
            "SELECT p.tier, p.reason, p.pinned_by FROM tier_pins p \
             JOIN customers c ON c.id = p.customer_id WHERE c.external_id = 'C001'",
            [],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )
        .unwrap();
    assert!(!tier.is_empty());
    assert_eq!(
        (reason.as_str(), by.as_str()),
        ("Strategic account: renewal under way", "alice")
    );
    assert_eq!(
        ws.count(
            "SELECT count(*) FROM staff_audit WHERE login = 'alice' AND action = 'customer.pin' \
             AND object = 'customer:C001'"
        ),
        1
    );
    // The audit keeps the tier, not the reason's free text.
    assert_eq!(
        ws.count("SELECT count(*) FROM staff_audit WHERE details LIKE '%renewal%'"),
        0
    );
    browser.screenshot(&screenshot_dir().join("customer-1280.png"));
    browser.set_width(360);
    browser.assert_fits(360);
    browser.screenshot(&screenshot_dir().join("customer-360.png"));
    browser.set_width(1280);

    // Another manager's customer is not found, as an unknown id is.
    browser.open(&format!("{}/staff/customers/C003", ws.base));
    browser.wait_text("h1", "No such customer");
}

#[test]
fn a_viewers_pin_post_is_refused_by_the_server() {
    let ws = StaffWorkspace::start("");
    let viewer = ws.client();
    assert_eq!(viewer.sign_in("vera", PASSWORD).status, 303);
    let page = viewer.get("/staff/customers/C001");
    assert_eq!(page.status, 200);
    assert!(
        !page.body.contains("/staff/customers/C001/pin"),
        "{}",
        page.body
    );
    // A valid session and CSRF token (the page's sign-out form carries it): still refused.
    let token = viewer.csrf_token("/staff/customers/C001");
    let answer = viewer.post(
        "/staff/customers/C001/pin",
        &format!("_csrf={token}&tier=A&reason=viewer+tries"),
        &[],
    );
    assert_eq!(answer.status, 403, "{}", answer.body);
    let answer = viewer.post(
        "/staff/customers/C001/contact",
        &format!("_csrf={token}&kind=call&note=x"),
        &[],
    );
    assert_eq!(answer.status, 403);
    assert_eq!(ws.count("SELECT count(*) FROM tier_pins"), 0);
    assert_eq!(ws.count("SELECT count(*) FROM interactions"), 0);
    assert_eq!(
        ws.count("SELECT count(*) FROM staff_audit WHERE action LIKE 'customer.%'"),
        0
    );
}

#[test]
fn the_csv_export_is_the_clis() {
    let ws = StaffWorkspace::start("");
    // A name a spreadsheet would run as a formula, and a comma and quotes to quote.
    std::fs::write(
        ws.root.join("more.csv"),
        "customer_id,name,email,owner\n\
         C004,\"=HYPERLINK(\"\"http://x.example\"\")\",eve@example.com,alice\n\
         C005,\"Dupont, \"\"Le Petit\"\"\",dupont@example.com,bob\n",
    )
    .unwrap();
    run_in(&ws.root, &["import", "customers", "more.csv"]).assert_code(0);
    let admin = ws.client();
    assert_eq!(admin.sign_in("root", PASSWORD).status, 303);
    for (query, flags) in [
        ("", vec![]),
        (
            "?q=example&sort=-name",
            vec!["--search", "example", "--sort", "-name"],
        ),
        ("?owner=bob", vec!["--owner", "bob"]),
    ] {
        let web = admin.get(&format!("/staff/customers.csv{query}"));
        assert_eq!(web.status, 200, "{}", web.body);
        let mut args = vec!["customers", "--csv"];
        args.extend(flags);
        let cli = run_in(&ws.root, &args);
        cli.assert_code(0);
        let web = parse_csv(&web.body);
        assert_eq!(web, parse_csv(&cli.stdout), "{query}");
        assert!(web.len() > 1, "{query}: {web:?}");
    }
    let all = parse_csv(&admin.get("/staff/customers.csv").body);
    assert!(
        all.iter()
            .any(|row| row[1] == "'=HYPERLINK(\"http://x.example\")"),
        "{all:?}"
    );
    // A manager's export holds their own customers only.
    let alice = ws.client();
    assert_eq!(alice.sign_in("alice", PASSWORD).status, 303);
    let mine = parse_csv(&alice.get("/staff/customers.csv?owner=bob").body);
    let ids: Vec<&str> = mine.iter().skip(1).map(|row| row[0].as_str()).collect();
    assert_eq!(ids, ["C001", "C002", "C004"]);
    let cli = run_in(&ws.root, &["customers", "--csv", "--owner", "alice"]);
    assert_eq!(mine, parse_csv(&cli.stdout));
}
