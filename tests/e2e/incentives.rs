//! Incentives end to end: a generated coupon pool issues one code per customer across repeated
//! `followups record` runs and a `kill -9`; the e-mails sent (parsed by Python's `email`) carry
//! the customer's code; an imported order with the code redeems it once (re-import changes
//! nothing, an unknown code is counted); points spent by orders and their balance.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{followups_record_json, run_in};

const CUSTOMERS: usize = 20;

/// The tests' Python (`.ci/deps` makes it), or a failure saying to run `.ci/deps`.
fn python() -> PathBuf {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-venv/bin/python");
    assert!(
        python.exists(),
        "the tests' Python venv is missing: run `bash .ci/deps`"
    );
    python
}

/// A workspace with one daily e-mail rule carrying a code of the generated pool `winback`,
/// and `CUSTOMERS` customers who agreed to e-mail.
fn workspace(dir: &Path) -> PathBuf {
    let root = dir.join("ws");
    run_in(dir, &["init", root.to_str().unwrap()]).assert_code(0);
    std::fs::remove_file(root.join("rules/followups.yaml")).unwrap();
    std::fs::write(
        root.join("rules/incentives.yaml"),
        "coupons:\n  winback:\n    pattern: \"WB-{AAAA}-{9999}\"\n    value: \"10%\"\n    \
         expires: 90d\n\
         followups:\n  - id: hello\n    cron: \"0 9 * * *\"\n    max_delay: 3650d\n    \
         email: { template: gift-offer, coupon: winback }\n",
    )
    .unwrap();
    std::fs::write(
        root.join("templates/gift-offer.eml.j2"),
        "subject: A gift for {{ customer.name }}\n--- text\nYour code {{ coupon.code }} \
         gives {{ coupon.value }} until {{ coupon.expires }}.\n",
    )
    .unwrap();
    let mut csv = String::from("customer_id,name,email,consent_email\n");
    for i in 0..CUSTOMERS {
        csv.push_str(&format!("C{i:04},Customer {i},c{i}@example.com,true\n"));
    }
    std::fs::write(root.join("customers.csv"), csv).unwrap();
    run_in(&root, &["import", "customers", "customers.csv"]).assert_code(0);
    root
}

fn count(root: &Path, sql: &str) -> i64 {
    let conn = rusqlite::Connection::open(root.join("tiercare.db")).unwrap();
    conn.query_row(sql, [], |row| row.get(0)).unwrap()
}

fn count_text(root: &Path, sql: &str) -> String {
    let conn = rusqlite::Connection::open(root.join("tiercare.db")).unwrap();
    conn.query_row(sql, [], |row| row.get(0)).unwrap()
}

/// Each customer's issued code, by customer id.
fn codes(root: &Path) -> HashMap<String, String> {
    let conn = rusqlite::Connection::open(root.join("tiercare.db")).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT c.external_id, k.code FROM coupons k JOIN customers c ON c.id = k.customer_id",
        )
        .unwrap();
    stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn a_coupon_is_issued_once_per_customer_across_runs_and_a_kill_and_redeemed_by_an_order() {
    let tmp = crate::common::fast_tempdir();
    let root = workspace(tmp.path());
    // Tiers first: the report counts codes per tier at issue.
    run_in(&root, &["assess", "--at", "2026-03-01T00:00:00Z"]).assert_code(0);

    // A first day: one e-mail and one code per customer; recording again adds nothing.
    let first = run_in(
        &root,
        &followups_record_json("2026-03-02T08:00:00Z", "2026-03-02T10:00:00Z"),
    );
    first.assert_code(0);
    assert_eq!(first.json()["queued"], CUSTOMERS, "{}", first.stdout);
    let issued = codes(&root);
    assert_eq!(issued.len(), CUSTOMERS);
    run_in(
        &root,
        &followups_record_json("2026-03-02T08:00:00Z", "2026-03-02T10:00:00Z"),
    )
    .assert_code(0);
    assert_eq!(codes(&root), issued, "recording again issues nothing");

    // Sixty more days, killed with SIGKILL half-way, then recorded again: still one code per
    // customer, the same one, and every e-mail carries its customer's code.
    let mut child = crate::common::command_in(&root)
        .args(followups_record_json(
            "2026-03-03T00:00:00Z",
            "2026-05-02T00:00:00Z",
        ))
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    // Killed while it holds the write transaction (a second writer finds the file locked).
    let probe = rusqlite::Connection::open(root.join("tiercare.db")).unwrap();
    probe.busy_timeout(Duration::ZERO).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut locked = false;
    while Instant::now() < deadline && child.try_wait().unwrap().is_none() {
        match probe.execute_batch("BEGIN IMMEDIATE; ROLLBACK;") {
            Ok(()) => std::thread::yield_now(),
            Err(_) => {
                locked = true;
                break;
            }
        }
    }
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    assert!(
        locked,
        "the run ended ({status}) before it could be killed mid-write; {} follow-ups",
        count(&root, "SELECT count(*) FROM followups")
    );
    assert_eq!(
        count(&root, "SELECT count(*) FROM followups"),
        CUSTOMERS as i64,
        "a killed run leaves nothing half-written"
    );
    assert_eq!(codes(&root), issued);
    run_in(
        &root,
        &followups_record_json("2026-03-03T00:00:00Z", "2026-05-02T00:00:00Z"),
    )
    .assert_code(0);
    assert_eq!(codes(&root), issued, "one code per (pool, customer), ever");
    assert_eq!(
        count(&root, "SELECT count(*) FROM coupons"),
        CUSTOMERS as i64
    );
    assert_eq!(
        count(&root, "SELECT count(*) FROM outbox"),
        (CUSTOMERS * 61) as i64,
        "every day's e-mail of every customer, once"
    );
    assert_eq!(
        count(
            &root,
            "SELECT count(*) FROM outbox o JOIN coupons k ON k.customer_id = o.customer_id \
             WHERE instr(o.body_text, k.code) = 0"
        ),
        0,
        "every queued e-mail carries its customer's code"
    );

    // Sent through the folder transport (re-rendered by the delivery gate): each message, as
    // Python's email package reads it, carries the code issued to its recipient.
    let sent = run_in(&root, &["send", "--json"]);
    sent.assert_code(0);
    let script = r#"
import email, email.policy, pathlib, sys
for path in sorted(pathlib.Path(sys.argv[1]).rglob("*.eml")):
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    body = message.get_body(preferencelist=("plain",)).get_content()
    print(message["To"].addresses[0].addr_spec, body.split("Your code ")[1].split(" ")[0])
"#;
    let out = Command::new(python())
        .args(["-c", script, root.join("mail").to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = String::from_utf8(out.stdout).unwrap();
    assert_eq!(lines.lines().count(), CUSTOMERS * 61, "{lines}");
    for line in lines.lines() {
        let (to, code) = line.split_once(' ').unwrap();
        let index: usize = to
            .trim_start_matches('c')
            .trim_end_matches("@example.com")
            .parse()
            .unwrap();
        assert_eq!(code, issued[&format!("C{index:04}")], "{line}");
    }

    // An order with C0001's code redeems it; importing it again changes nothing; a code no
    // one was issued (or another customer's) is counted, not an error.
    let orders = format!(
        "order_id,customer_id,ordered_at,amount,coupon_code,points_spent\n\
         O9,C0001,2025-10-01T10:00:00Z,30,,\n\
         O0,C0001,2026-01-15T10:00:00Z,40,,\n\
         O1,C0001,2026-05-10T10:00:00Z,80,{},\n\
         O2,C0002,2026-05-11T10:00:00Z,50,NOT-A-CODE,\n\
         O3,C0003,2026-05-12T10:00:00Z,50,{},\n",
        issued["C0001"], issued["C0004"]
    );
    std::fs::write(root.join("orders.csv"), orders).unwrap();
    for _ in 0..2 {
        let imported = run_in(&root, &["import", "orders", "orders.csv", "--json"]);
        imported.assert_code(0);
        assert_eq!(
            imported.json()["coupons"]["unknown"],
            2,
            "{}",
            imported.stdout
        );
        assert_eq!(
            count(
                &root,
                "SELECT count(*) FROM coupons WHERE redeemed_at IS NOT NULL"
            ),
            1
        );
    }
    // A data-access export holds the customer's code and its redemption.
    let export = run_in(&root, &["customer", "export", "C0001"]);
    export.assert_code(0);
    let export = export.json();
    assert_eq!(export["coupons"][0]["code"], issued["C0001"].as_str());
    assert_eq!(export["coupons"][0]["redeemed_order"], "O1");
    let show = run_in(&root, &["customer", "show", "C0001"]);
    show.assert_code(0);
    show.assert_stdout_contains("coupons: 1");
    show.assert_stdout_contains(&format!("winback      {:<20} redeemed", issued["C0001"]));

    // The features follow: C0001 redeemed 3 days before; the others' codes are still open.
    let at = "2026-05-13T10:00:00Z";
    assert_eq!(
        matching(&root, at, "coupon_redeemed_days_ago == 3"),
        ["C0001"]
    );
    assert_eq!(
        matching(&root, at, "coupon_redeemed_days_ago != ()"),
        ["C0001"]
    );
    assert_eq!(matching(&root, at, "coupons_open == 0"), ["C0001"]);
    assert_eq!(
        matching(&root, at, "coupons_open == 1").len(),
        CUSTOMERS - 1,
        "every other customer's code is open"
    );
    assert!(
        matching(&root, "2026-06-15T00:00:00Z", "coupons_open > 0").is_empty(),
        "expired 90 days after issue"
    );

    // The report: issued against redeemed per rule and tier, and the redeemer's revenue in the
    // 90 days before and after issue, computed here from the orders above.
    let issue = unix("2026-03-02T09:00:00Z");
    let window = 90 * 86_400;
    let c0001 = [
        (unix("2025-10-01T10:00:00Z"), 30.0),
        (unix("2026-01-15T10:00:00Z"), 40.0),
        (unix("2026-05-10T10:00:00Z"), 80.0),
    ];
    let before: f64 = c0001
        .iter()
        .filter(|(t, _)| *t >= issue - window && *t < issue)
        .map(|(_, amount)| amount)
        .sum();
    let after: f64 = c0001
        .iter()
        .filter(|(t, _)| *t >= issue && *t < issue + window)
        .map(|(_, amount)| amount)
        .sum();
    let report = run_in(&root, &["report", "--at", "2026-05-13T12:00:00Z", "--json"]);
    report.assert_code(0);
    let report = report.json();
    let coupons = report["coupons"].as_array().unwrap();
    assert_eq!(coupons.len(), 1, "{coupons:?}");
    assert_eq!(coupons[0]["rule_id"], "hello");
    assert_eq!(
        coupons[0]["tier"],
        count_text(&root, "SELECT tier FROM customer_tiers LIMIT 1")
    );
    assert_eq!(coupons[0]["issued"], CUSTOMERS);
    assert_eq!(coupons[0]["redeemed"], 1);
    assert_eq!(
        coupons[0]["redeemers_revenue_before"].as_f64(),
        Some(before)
    );
    assert_eq!(coupons[0]["redeemers_revenue_after"].as_f64(), Some(after));
    assert_eq!((before, after), (40.0, 80.0));
    let html = root.join("report.html");
    run_in(
        &root,
        &[
            "report",
            "--at",
            "2026-05-13T12:00:00Z",
            "--out",
            html.to_str().unwrap(),
        ],
    )
    .assert_code(0);
    let page = std::fs::read_to_string(&html).unwrap();
    let section = &page[page
        .find("<section id=\"coupons\">")
        .expect("a coupons section")..];
    let section = &section[..section.find("</section>").unwrap()];
    for cell in [
        "<th scope=\"row\">hello</th>",
        "<td>20</td>",
        "<td>1</td>",
        "<td>5.0%</td>",
        "<td>40</td>",
        "<td>80</td>",
    ] {
        assert!(section.contains(cell), "{cell} in {section}");
    }
    let status = run_in(
        &root,
        &["coupons", "status", "--json", "--at", "2026-06-15"],
    );
    status.assert_code(0);
    let pools = status.json();
    assert_eq!(pools[0]["pool"], "winback", "{}", status.stdout);
    assert_eq!(pools[0]["redeemed"], 1);
    assert_eq!(
        pools[0]["issued"], 0,
        "the others expired 90 days after 2 March"
    );
    assert_eq!(pools[0]["expired"], CUSTOMERS - 1);
}

#[test]
fn imported_codes_are_issued_in_order_duplicates_rejected_and_an_empty_pool_skips_the_email() {
    let tmp = crate::common::fast_tempdir();
    let root = workspace(tmp.path());
    std::fs::write(
        root.join("rules/incentives.yaml"),
        "coupons:\n  gift: { value: \"¥20\", warn_below: 5 }\n\
         followups:\n  - id: hello\n    cron: \"0 9 * * *\"\n    max_delay: 3650d\n    \
         email: { template: gift-offer, coupon: gift }\n",
    )
    .unwrap();
    std::fs::write(root.join("codes.csv"), "code\nG-1\nG-2\nG-1\nG-3\n").unwrap();
    let imported = run_in(&root, &["coupons", "import", "gift", "codes.csv"]);
    imported.assert_code(1);
    imported.assert_stderr_contains("codes.csv:4: the code is also on row 2");
    run_in(&root, &["coupons", "import", "gift", "codes.csv"]).assert_code(1);
    assert_eq!(
        count(&root, "SELECT count(*) FROM coupons"),
        3,
        "G-1, G-2, G-3 once"
    );
    let status = run_in(&root, &["coupons"]);
    status.assert_code(0);
    status.assert_stderr_contains("coupon pool 'gift' has 3 codes left (warn_below: 5)");
    let checked = run_in(&root, &["check"]);
    checked.assert_code(0);
    checked.assert_stderr_contains(
        "rules/incentives.yaml:2:3: warning: coupon pool 'gift' has 3 codes left",
    );
    run_in(&root, &["status"]).assert_stderr_contains("coupon pool 'gift' has 3 codes left");
    // A preview shows a placeholder and issues nothing.
    let preview = run_in(&root, &["preview", "gift-offer", "--customer", "C0000"]);
    preview.assert_code(0);
    preview.assert_stdout_contains("Your code PREVIEW-CODE gives 10%");
    assert_eq!(
        count(
            &root,
            "SELECT count(*) FROM coupons WHERE customer_id IS NOT NULL"
        ),
        0
    );

    let recorded = run_in(
        &root,
        &followups_record_json("2026-03-02T08:00:00Z", "2026-03-02T10:00:00Z"),
    );
    recorded.assert_code(0);
    assert_eq!(recorded.json()["queued"], 3, "{}", recorded.stdout);
    assert_eq!(
        count(
            &root,
            "SELECT count(*) FROM followups WHERE status = 'skipped' \
                       AND status_reason LIKE 'coupon pool ''gift'' has no codes left%'"
        ),
        (CUSTOMERS - 3) as i64,
        "no e-mail without its code"
    );
    assert_eq!(
        count(
            &root,
            "SELECT count(*) FROM outbox WHERE body_text LIKE '%Your code  %'"
        ),
        0
    );
}

/// The ids of the customers for whom `condition` (over their features) holds at `at`
/// (`tiercare customers --where`).
fn matching(root: &Path, at: &str, condition: &str) -> Vec<String> {
    let listed = run_in(
        root,
        &["customers", "--where", condition, "--at", at, "--jsonl"],
    );
    listed.assert_code(0);
    listed
        .stdout
        .lines()
        .map(|line| {
            let row: serde_json::Value = serde_json::from_str(line).unwrap();
            row["id"].as_str().unwrap().to_owned()
        })
        .collect()
}

/// The points balance at `at` of the entries `(at, amount, expires_at)`, computed here
/// independently of the store: every unexpired lot earned before `at`, less what was spent,
/// taken from the lots that expire first.
fn expected_balance(entries: &[(i64, f64, Option<i64>)], at: i64) -> f64 {
    let mut lots: Vec<(i64, f64)> = Vec::new(); // (expiry, left)
    for &(when, amount, expiry) in entries.iter().filter(|(when, ..)| *when <= at) {
        lots.retain(|(expiry, _)| *expiry > when);
        if amount > 0.0 {
            lots.push((expiry.unwrap_or(i64::MAX), amount));
        } else {
            let mut spend = -amount;
            lots.sort_by_key(|(expiry, _)| *expiry);
            for (_, left) in &mut lots {
                let used = left.min(spend);
                *left -= used;
                spend -= used;
            }
        }
    }
    lots.iter()
        .filter(|(expiry, _)| *expiry > at)
        .map(|(_, left)| left)
        .fold(0.0, |sum, left| sum + left)
}

fn unix(text: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(text)
        .unwrap()
        .timestamp()
}

#[test]
fn points_earned_by_a_rule_spent_by_orders_and_expired_make_the_balance() {
    let tmp = crate::common::fast_tempdir();
    let root = workspace(tmp.path());
    std::fs::write(
        root.join("rules/incentives.yaml"),
        "followups:\n  - id: monthly-points\n    cron: \"0 9 1 * *\"\n    max_delay: 3650d\n    \
         when: orders_total >= 1\n    points: { earn: \"revenue_total * 0.1\", expires: 30d }\n",
    )
    .unwrap();
    let orders = |rows: &str| {
        std::fs::write(
            root.join("orders.csv"),
            format!("order_id,customer_id,ordered_at,amount,points_spent\n{rows}"),
        )
        .unwrap();
        run_in(&root, &["import", "orders", "orders.csv"]).assert_code(0);
    };
    orders("O1,C0000,2026-02-01T10:00:00Z,200,\n");
    let record = |from: &str, until: &str| {
        let recorded = run_in(&root, &followups_record_json(from, until));
        recorded.assert_code(0);
        recorded.json()
    };
    assert_eq!(
        record("2026-03-01T08:00:00Z", "2026-03-01T10:00:00Z")["new"],
        1
    );
    orders("O1,C0000,2026-02-01T10:00:00Z,200,\nO2,C0000,2026-03-10T10:00:00Z,100,5\n");
    assert_eq!(
        record("2026-04-01T08:00:00Z", "2026-04-01T10:00:00Z")["new"],
        1
    );
    // Importing the orders again books nothing twice.
    orders("O1,C0000,2026-02-01T10:00:00Z,200,\nO2,C0000,2026-03-10T10:00:00Z,100,5\n");
    assert_eq!(count(&root, "SELECT count(*) FROM points"), 3);
    let export = run_in(&root, &["customer", "export", "C0000"]);
    export.assert_code(0);
    let amounts: Vec<f64> = export.json()["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["amount"].as_f64().unwrap())
        .collect();
    assert_eq!(
        amounts,
        [20.0, -5.0, 30.0],
        "earned 10% of 200, spent 5, earned 10% of 300"
    );
    // Today (after 1 May 2026 + 30 days) every point has expired.
    let show = run_in(&root, &["customer", "show", "C0000"]);
    show.assert_code(0);
    show.assert_stdout_contains("points: 0 (3 entries)");

    let day = 86_400;
    let entries = [
        (
            unix("2026-03-01T09:00:00Z"),
            20.0,
            Some(unix("2026-03-01T09:00:00Z") + 30 * day),
        ),
        (unix("2026-03-10T10:00:00Z"), -5.0, None),
        (
            unix("2026-04-01T09:00:00Z"),
            30.0,
            Some(unix("2026-04-01T09:00:00Z") + 30 * day),
        ),
    ];
    for at in [
        "2026-02-15T00:00:00Z",
        "2026-03-05T00:00:00Z",
        "2026-03-15T00:00:00Z",
        "2026-03-31T10:00:00Z",
        "2026-04-02T00:00:00Z",
        "2026-05-02T00:00:00Z",
    ] {
        let expected = expected_balance(&entries, unix(at));
        assert_eq!(
            matching(
                &root,
                at,
                &format!("customer_id == \"C0000\" && points_balance == {expected:?}")
            ),
            ["C0000"],
            "points_balance at {at} should be {expected}"
        );
    }
    assert_eq!(
        expected_balance(&entries, unix("2026-03-15T00:00:00Z")),
        15.0,
        "20 earned, 5 spent"
    );
}

/// Every earned-by-order entry of the ledger: (source, customer, at, amount, expires_at),
/// sorted by source.
fn earned_by_orders(root: &Path) -> Vec<(String, String, i64, f64, Option<i64>)> {
    let conn = rusqlite::Connection::open(root.join("tiercare.db")).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT p.source, c.external_id, p.at, p.amount, p.expires_at FROM points p \
             JOIN customers c ON c.id = p.customer_id WHERE p.source LIKE 'earned:order:%' \
             ORDER BY p.source",
        )
        .unwrap();
    stmt.query_map([], |row| {
        Ok((
            row.get(0)?,
            row.get(1)?,
            row.get(2)?,
            row.get(3)?,
            row.get(4)?,
        ))
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

/// The entries `[points] per_order = 5, per_currency_unit = 0.1, rounding = "down", expires =
/// "365d"` must leave for the orders file `csv`, replayed independently: amounts read as whole
/// cents, 5 + ⌊cents / 1000⌋ points for a positive amount, nothing otherwise.
fn replay_points(csv: &str) -> Vec<(String, String, i64, f64, Option<i64>)> {
    let mut entries: Vec<(String, String, i64, f64, Option<i64>)> = csv
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(',').collect();
            let (whole, fraction) = fields[3].split_once('.').unwrap_or((fields[3], "0"));
            let cents = whole.parse::<i64>().unwrap() * 100
                + format!("{fraction:0<2}")[..2].parse::<i64>().unwrap();
            let at = unix(fields[2]);
            (cents > 0).then(|| {
                (
                    format!("earned:order:{}", fields[0]),
                    fields[1].to_owned(),
                    at,
                    (5 + cents / 1000) as f64,
                    Some(at + 365 * 86_400),
                )
            })
        })
        .collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    entries
}

#[test]
fn orders_earn_points_at_import_once_each_and_a_changed_amount_adjusts_them() {
    let tmp = crate::common::fast_tempdir();
    let root = workspace(tmp.path());
    let config = std::fs::read_to_string(root.join("tiercare.toml")).unwrap();
    std::fs::write(
        root.join("tiercare.toml"),
        format!(
            "{config}\n[points]\nper_order = 5\nper_currency_unit = 0.1\nrounding = \"down\"\n\
             expires = \"365d\"\n"
        ),
    )
    .unwrap();
    // 200 orders of the customers, amounts with cents (a few 9.99s: 5 points only), some
    // spending points too (their own ledger entries, untouched by the earning).
    let mut csv = String::from("order_id,customer_id,ordered_at,amount,points_spent\n");
    for i in 0..200_u32 {
        let amount = match i % 7 {
            0 => "9.99".to_owned(),
            _ => format!("{}.{:02}", (i * 37) % 900 + 10, (i * 13) % 100),
        };
        let spent = if i % 11 == 0 { "3" } else { "" };
        csv.push_str(&format!(
            "O{i:04},C{:04},2026-{:02}-{:02}T10:00:00Z,{amount},{spent}\n",
            i as usize % CUSTOMERS,
            i % 12 + 1,
            i % 28 + 1
        ));
    }
    let import = |text: &str| {
        std::fs::write(root.join("orders.csv"), text).unwrap();
        run_in(&root, &["import", "orders", "orders.csv"]).assert_code(0);
    };
    import(&csv);
    let first = earned_by_orders(&root);
    assert_eq!(first.len(), 200);
    assert_eq!(first, replay_points(&csv));
    let spent = "SELECT count(*) FROM points WHERE source LIKE 'order:%'";
    assert_eq!(count(&root, spent), 19);

    // The same file again credits nothing.
    import(&csv);
    assert_eq!(earned_by_orders(&root), first);
    assert_eq!(count(&root, "SELECT count(*) FROM points"), 219);

    // An order's amount corrected up, another's to 0 (it earns nothing now), a new order:
    // each order's points follow its last import.
    let changed =
        csv.replace(
            "O0001,C0001,2026-02-02T10:00:00Z,47.13,",
            "O0001,C0001,2026-02-02T10:00:00Z,1047.13,",
        )
        .replace(
            "O0002,C0002,2026-03-03T10:00:00Z,84.26,",
            "O0002,C0002,2026-03-03T10:00:00Z,0,",
        ) + "O0200,C0003,2026-06-01T10:00:00Z,123.45,\n";
    assert!(
        changed.contains(",1047.13,") && changed.contains("T10:00:00Z,0,"),
        "both orders were found and changed"
    );
    import(&changed);
    let after = earned_by_orders(&root);
    assert_eq!(after, replay_points(&changed));
    assert_eq!(after.len(), 200, "one removed, one added");
    let o1 = after.iter().find(|e| e.0 == "earned:order:O0001").unwrap();
    assert_eq!(o1.3, 5.0 + 104.0);
}

#[test]
fn a_refund_takes_back_the_points_of_the_refunded_amount() {
    let tmp = crate::common::fast_tempdir();
    let root = workspace(tmp.path());
    let config = std::fs::read_to_string(root.join("tiercare.toml")).unwrap();
    std::fs::write(
        root.join("tiercare.toml"),
        format!("{config}\n[points]\nper_order = 5\nper_currency_unit = 0.1\n"),
    )
    .unwrap();
    std::fs::write(root.join("refunds.yaml"), "kind: orders\nrefunds: true\n").unwrap();
    let import = |text: &str| {
        std::fs::write(root.join("orders.csv"), text).unwrap();
        run_in(
            &root,
            &[
                "import",
                "orders",
                "orders.csv",
                "--mapping",
                "refunds.yaml",
            ],
        )
        .assert_code(0);
    };
    // 100.00 earns 5 + 10; the refund of 45.50 takes back ⌊4.55⌋ = 4 (not the per-order 5).
    import(
        "order_id,customer_id,ordered_at,amount\n\
         O1,C0001,2026-03-01T10:00:00Z,100.00\n\
         R1,C0001,2026-03-05T10:00:00Z,-45.50\n",
    );
    let earned = earned_by_orders(&root);
    assert_eq!(
        earned,
        [
            (
                "earned:order:O1".to_owned(),
                "C0001".to_owned(),
                unix("2026-03-01T10:00:00Z"),
                15.0,
                None
            ),
            (
                "earned:order:R1".to_owned(),
                "C0001".to_owned(),
                unix("2026-03-05T10:00:00Z"),
                -4.0,
                None
            ),
        ]
    );
    let show = run_in(&root, &["customer", "show", "C0001"]);
    show.assert_code(0);
    show.assert_stdout_contains("points: 11 (2 entries)");
    // The same file again takes back nothing more.
    import(
        "order_id,customer_id,ordered_at,amount\n\
         O1,C0001,2026-03-01T10:00:00Z,100.00\n\
         R1,C0001,2026-03-05T10:00:00Z,-45.50\n",
    );
    assert_eq!(earned_by_orders(&root), earned);
}
