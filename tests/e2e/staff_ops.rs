//! The staff outbox, plan and rules pages of `tiercare serve`, in headless Chromium through
//! WebDriver and with raw HTTP: an admin retries a failed e-mail and cancels a queued one (the
//! database shows both, and the audit); the server refuses a viewer's cancel POST that carries
//! a valid session and CSRF token; the plan page shows `tiercare plan --json`'s counts; the
//! rules page shows the reload problem a running daemon recorded for a broken rule file.
//! Screenshots at 1280 and 360 pixels go to `target/staff-screenshots/`.

use crate::common;

use common::browser::Driver;
use common::daemon::Daemon;
use common::run_in;
use common::staff::{PASSWORD, StaffWorkspace, screenshot_dir};

/// The staff workspace's unsubscribe secret (the daemon needs it, as `serve` does).
const SECRET_ENV: (&str, &str) = (
    "TIERCARE_UNSUBSCRIBE_SECRET",
    "a web test secret that is long enough",
);

/// Puts a failed e-mail (to C001) and a queued one (to C002) in the outbox, as the send loop
/// leaves them; returns their ids.
fn failed_and_queued(ws: &StaffWorkspace) -> (i64, i64) {
    let now = chrono::Utc::now().timestamp();
    let db = ws.db();
    let mut ids = Vec::new();
    for (customer, address, state, error, attempts) in [
        (
            "C001",
            "buyer@acme.example",
            "failed",
            Some("550 5.1.1 <buyer@acme.example>: no such user"),
            1,
        ),
        ("C002", "hello@lantern.example", "queued", None, 0),
    ] {
        db.execute(
            "INSERT INTO outbox (customer_id, rule_id, template, recipient_kind, to_address, \
             message_id, subject, body_text, state, due_at, attempts, last_error, created_at, \
             updated_at) SELECT id, 'c-care-mail', 'care', 'customer', ?2, \
             '<' || ?1 || '.care@test.invalid>', 'Your <monthly> note', 'Hello\nthere', ?3, \
             ?4, ?5, ?6, ?4, ?4 FROM customers WHERE external_id = ?1",
            rusqlite::params![customer, address, state, now - 3600, attempts, error],
        )
        .unwrap();
        let id = db.last_insert_rowid();
        db.execute(
            "INSERT INTO outbox_events (outbox_id, at, from_state, to_state, detail) \
             VALUES (?1, ?2, NULL, 'queued', 'decided')",
            rusqlite::params![id, now - 3600],
        )
        .unwrap();
        ids.push(id);
    }
    (ids[0], ids[1])
}

fn state_of(ws: &StaffWorkspace, id: i64) -> String {
    ws.db()
        .query_row("SELECT state FROM outbox WHERE id = ?1", [id], |row| {
            row.get(0)
        })
        .unwrap()
}

#[test]
fn an_admin_retries_a_failed_email_and_cancels_a_queued_one_in_the_browser() {
    let ws = StaffWorkspace::start("");
    let (failed, queued) = failed_and_queued(&ws);
    let driver = Driver::start();
    let browser = driver.session("en-GB,en", 1280);
    browser.sign_in(&ws.base, "root", PASSWORD);
    browser.open(&format!("{}/staff/outbox?state=failed", ws.base));
    browser.wait_text("h1", "Outbox");
    let list = browser.text("main");
    assert!(list.contains("Your <monthly> note"), "{list}");
    assert!(list.contains("550 5.1.1"), "{list}");
    assert_eq!(browser.find_all("tbody tr").len(), 1, "{list}");
    browser.screenshot(&screenshot_dir().join("outbox-1280.png"));
    browser.set_width(360);
    browser.assert_fits(360);
    browser.screenshot(&screenshot_dir().join("outbox-360.png"));
    browser.set_width(1280);

    // Retry the failed one from its page.
    browser.click(&format!("a[href=\"/staff/outbox/{failed}\"]"));
    browser.wait_text("h1", &format!("Outbox #{failed}"));
    browser.click(&format!(
        "form[action=\"/staff/outbox/{failed}/retry\"] button"
    ));
    browser.wait_text(".notice", "Queued again, due now (same Message-ID).");
    assert_eq!(state_of(&ws, failed), "queued");
    assert!(
        browser.text("main").contains("retried"),
        "the history shows it"
    );
    browser.screenshot(&screenshot_dir().join("outbox-email-1280.png"));

    // Cancel the queued one.
    browser.open(&format!("{}/staff/outbox/{queued}", ws.base));
    browser.click(&format!(
        "form[action=\"/staff/outbox/{queued}/cancel\"] button"
    ));
    browser.wait_text(".notice", "Cancelled: it will not be sent.");
    assert_eq!(state_of(&ws, queued), "cancelled");
    browser.set_width(360);
    browser.assert_fits(360);
    browser.screenshot(&screenshot_dir().join("outbox-email-360.png"));
    browser.open(&format!("{}/staff/outbox/held", ws.base));
    browser.wait_text("h1", "Held e-mails");
    browser.assert_fits(360);
    browser.screenshot(&screenshot_dir().join("outbox-held-360.png"));

    // Both in the audit, by the admin, without the address.
    for (action, id) in [("outbox.retry", failed), ("outbox.cancel", queued)] {
        assert_eq!(
            ws.count(&format!(
                "SELECT count(*) FROM staff_audit WHERE login = 'root' AND action = '{action}' \
                 AND object = 'outbox:{id}'"
            )),
            1,
            "{action}"
        );
    }
    assert_eq!(
        ws.count("SELECT count(*) FROM staff_audit WHERE details LIKE '%@%'"),
        0
    );
}

#[test]
fn the_server_refuses_a_viewers_cancel_with_a_valid_session_and_token() {
    let ws = StaffWorkspace::start("");
    let (failed, queued) = failed_and_queued(&ws);
    let viewer = ws.client();
    assert_eq!(viewer.sign_in("vera", PASSWORD).status, 303);
    let page = viewer.get(&format!("/staff/outbox/{queued}"));
    assert_eq!(page.status, 200);
    assert!(
        !page.body.contains("/cancel\""),
        "a viewer's page offers no change"
    );
    let token = viewer.csrf_token(&format!("/staff/outbox/{queued}"));
    for path in [
        format!("/staff/outbox/{queued}/cancel"),
        format!("/staff/outbox/{failed}/retry"),
        "/staff/outbox/resume".to_owned(),
    ] {
        let answer = viewer.post(&path, &format!("_csrf={token}"), &[]);
        assert_eq!(answer.status, 403, "{path}: {}", answer.body);
    }
    assert_eq!(state_of(&ws, queued), "queued");
    assert_eq!(state_of(&ws, failed), "failed");
    assert_eq!(
        ws.count("SELECT count(*) FROM staff_audit WHERE action LIKE 'outbox.%'"),
        0
    );
    // A manager may cancel their own customer's e-mail, never retry.
    let alice = ws.client();
    assert_eq!(alice.sign_in("alice", PASSWORD).status, 303);
    let token = alice.csrf_token(&format!("/staff/outbox/{queued}"));
    let answer = alice.post(
        &format!("/staff/outbox/{failed}/retry"),
        &format!("_csrf={token}"),
        &[],
    );
    assert_eq!(answer.status, 403, "{}", answer.body);
    let answer = alice.post(
        &format!("/staff/outbox/{queued}/cancel"),
        &format!("_csrf={token}"),
        &[],
    );
    assert_eq!(answer.status, 303, "{}", answer.body);
    assert_eq!(state_of(&ws, queued), "cancelled");
}

#[test]
fn the_plan_page_shows_the_counts_of_tiercare_plan() {
    let ws = StaffWorkspace::start("");
    let day = |days_ago: i64| {
        (chrono::Utc::now() - chrono::Duration::days(days_ago))
            .format("%Y-%m-%d")
            .to_string()
    };
    std::fs::write(
        ws.root.join("orders.csv"),
        format!(
            "order_id,customer_id,ordered_at,amount\n\
             O1,C001,{},9000\nO2,C002,{},120\nO3,C003,{},30\nO4,C002,{},80\n",
            day(20),
            day(40),
            day(200),
            day(130),
        ),
    )
    .unwrap();
    run_in(&ws.root, &["import", "orders", "orders.csv"]).assert_code(0);
    run_in(&ws.root, &["assess"]).assert_code(0);
    let from = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let cli = run_in(
        &ws.root,
        &["plan", "--from", &from, "--days", "7", "--json"],
    );
    cli.assert_code(0);
    let plan = cli.json();
    let number = |key: &str| plan[key].as_u64().unwrap();
    assert!(number("emails") > 0, "{plan:#}");
    let driver = Driver::start();
    let browser = driver.session("en-GB,en", 1280);
    browser.sign_in(&ws.base, "root", PASSWORD);
    browser.open(&format!("{}/staff/plan?days=7&from={from}", ws.base));
    browser.wait_text("h1", "Plan");
    browser.assert_fields_labelled();
    let totals = browser.find(".totals");
    for key in ["emails", "tasks", "other"] {
        assert_eq!(
            browser.attribute(&totals, &format!("data-{key}")),
            Some(number(key).to_string()),
            "{key}"
        );
    }
    for day in plan["days"].as_array().unwrap() {
        let date = day["date"].as_str().unwrap();
        let row = browser.find(&format!("tr[data-day=\"{date}\"]"));
        for key in ["emails", "tasks", "other"] {
            assert_eq!(
                browser.attribute(&row, &format!("data-{key}")),
                Some(day[key].as_u64().unwrap().to_string()),
                "{date} {key}"
            );
        }
    }
    browser.screenshot(&screenshot_dir().join("plan-1280.png"));
    browser.set_width(360);
    browser.assert_fits(360);
    browser.screenshot(&screenshot_dir().join("plan-360.png"));
}

#[test]
fn the_rules_page_shows_the_reload_problem_of_a_broken_rule_file() {
    let ws = StaffWorkspace::start("");
    // The daemon as a unit of its own beside `serve` (without an [http] section of its own).
    let config = std::fs::read_to_string(ws.root.join("tiercare.toml")).unwrap();
    let without_http = config.split("\n[http]\n").next().unwrap().to_owned();
    std::fs::write(ws.root.join("tiercare.toml"), without_http).unwrap();
    let daemon = Daemon::start_env(&ws.root, &[SECRET_ENV], &[]);
    let first = daemon.wait_status(&ws.root, "the daemon's rules", |s| {
        s["running"] == true && s["daemon"]["ruleset_version"].is_string()
    });
    let tiers = ws.root.join("rules/tiers.yaml");
    let good = std::fs::read_to_string(&tiers).unwrap();
    let broken = good.replace("window: 365d", "window: often");
    assert_ne!(broken, good);
    let line = broken
        .lines()
        .position(|line| line.trim_end().ends_with("window: often"))
        .unwrap()
        + 1;
    std::fs::write(&tiers, &broken).unwrap();
    let failed = daemon.wait_status(&ws.root, "the reload error", |s| {
        s["daemon"]["last_reload_error"].is_string()
    });
    let problem = failed["reload_problems"][0].as_str().unwrap().to_owned();
    assert!(
        problem.starts_with(&format!("rules/tiers.yaml:{line}:")),
        "{problem}"
    );

    let driver = Driver::start();
    let browser = driver.session("en-GB,en", 1280);
    browser.sign_in(&ws.base, "vera", PASSWORD);
    browser.open(&format!("{}/staff/rules", ws.base));
    browser.wait_text("h1", "Rules");
    let page = browser.text("main");
    assert!(page.contains("The last reload failed"), "{page}");
    assert!(page.contains(&problem), "{page}");
    assert!(
        page.contains(first["daemon"]["ruleset_version"].as_str().unwrap()),
        "the version the daemon runs: {page}"
    );
    // The problem links to its line, which shows the broken text.
    browser.click(".reload-problems a");
    assert!(browser.url().contains("-L"), "{}", browser.url());
    browser.screenshot(&screenshot_dir().join("rules-1280.png"));
    browser.set_width(360);
    browser.assert_fits(360);
    browser.screenshot(&screenshot_dir().join("rules-360.png"));

    // The preview, with the files fixed.
    std::fs::write(&tiers, &good).unwrap();
    browser.set_width(1280);
    browser.open(&format!("{}/staff/rules/preview", ws.base));
    browser.wait_text("h1", "What would change");
    let preview = browser.text("main");
    assert!(preview.contains("Evaluated all 3 customers."), "{preview}");
    browser.screenshot(&screenshot_dir().join("rules-preview-1280.png"));
}
