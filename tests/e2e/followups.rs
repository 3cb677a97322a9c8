//! End-to-end tests of follow-ups: `plan`, `followups record` and `tasks`, on the real binary
//! with real SQLite files and the quickstart data.

use crate::common;

use std::collections::BTreeMap;

use chrono::{Datelike, TimeZone, Timelike, Weekday};
use chrono_tz::Tz;
use common::{Workspace, followups_record_json};
use serde_json::Value;

/// Plans start here: the quickstart data is assessed as of this day.
const FROM: &str = "2025-06-02";
/// 30 days after [`FROM`].
const UNTIL: &str = "2025-07-02";

/// A C customer who agreed to emails but has no address.
const NO_ADDRESS: &str = "\
customer_id,name,timezone,consent_email
C009,No Address,Asia/Shanghai,true
";

/// Every C customer would get an email every day at 07:00: the policy must hold them back.
const DAILY_EMAILS: &str = "\
followups:
  - id: t-daily
    tiers: [C]
    cron: \"0 7 * * *\"
    email: { template: care }
";

/// The quickstart data (and a customer without an address), imported and assessed at [`FROM`].
fn assessed_quickstart() -> Workspace {
    let ws = Workspace::with_quickstart();
    let extra = ws.write("no-address.csv", NO_ADDRESS);
    ws.run(&["import", "customers", &extra]).assert_code(0);
    ws.run(&["assess", "--at", FROM]).assert_code(0);
    ws
}

/// A customer as the policy sees them: consent, address, zone.
struct Customer {
    consent_email: bool,
    has_email: bool,
    timezone: Tz,
}

fn customers(ws: &Workspace) -> BTreeMap<String, Customer> {
    let conn = rusqlite::Connection::open(ws.path("tiercare.db")).unwrap();
    let mut stmt = conn
        .prepare("SELECT external_id, consent_email, coalesce(email, ''), timezone FROM customers")
        .unwrap();
    stmt.query_map([], |row| {
        let zone: Option<String> = row.get(3)?;
        Ok((
            row.get::<_, String>(0)?,
            Customer {
                consent_email: row.get(1)?,
                has_email: !row.get::<_, String>(2)?.trim().is_empty(),
                timezone: zone.map_or(chrono_tz::Europe::London, |z| z.parse().unwrap()),
            },
        ))
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

/// Emails in the ledger that will go out: (customer, scheduled_at), by customer and time.
fn planned_emails(ws: &Workspace) -> Vec<(String, i64)> {
    let conn = rusqlite::Connection::open(ws.path("tiercare.db")).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT c.external_id, f.scheduled_at FROM followups f \
             JOIN customers c ON c.id = f.customer_id \
             WHERE f.kind = 'email' AND f.status IN ('planned', 'done') \
             ORDER BY c.external_id, f.scheduled_at",
        )
        .unwrap();
    stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// Asserts `at` is inside the default send window (09:00-18:00, Monday to Friday) in `zone`.
fn assert_in_window(customer: &str, at: i64, zone: Tz) {
    let local = zone.timestamp_opt(at, 0).unwrap();
    assert!(
        !matches!(local.weekday(), Weekday::Sat | Weekday::Sun) && (9..18).contains(&local.hour()),
        "email to {customer} at {local} is outside the send window"
    );
}

fn rule<'a>(summary: &'a Value, id: &str) -> &'a Value {
    summary["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|rule| rule["rule"] == id)
        .unwrap_or_else(|| panic!("no rule {id} in {summary}"))
}

#[test]
fn plan_previews_emails_only_to_consenting_customers_with_an_address_and_writes_nothing() {
    let ws = assessed_quickstart();
    let out = ws.run(&["plan", "--from", FROM, "--days", "30", "--json"]);
    out.assert_code(0);
    let summary = out.json();
    assert_eq!(summary["customers"], 9);
    assert!(summary["emails"].as_u64().unwrap() > 0, "{summary}");
    assert!(summary["tasks"].as_u64().unwrap() > 0, "{summary}");
    assert!(
        summary["skipped"]["consent"].as_u64().unwrap() > 0,
        "{summary}"
    );
    assert!(
        summary["skipped"]["no_address"].as_u64().unwrap() > 0,
        "{summary}"
    );
    let total: u64 = summary["days"]
        .as_array()
        .unwrap()
        .iter()
        .map(|day| day["emails"].as_u64().unwrap())
        .sum();
    assert_eq!(total, summary["emails"].as_u64().unwrap());
    // Every email sample: a customer who agreed and has an address, inside the window.
    let known = customers(&ws);
    let mut checked = 0;
    for rule in summary["rules"].as_array().unwrap() {
        assert!(rule["sample_customers"].as_array().unwrap().len() <= 3);
        if !rule["action"].as_str().unwrap().starts_with("email") {
            continue;
        }
        for sample in rule["samples"].as_array().unwrap() {
            let id = sample["customer_id"].as_str().unwrap();
            let customer = &known[id];
            assert!(
                customer.consent_email && customer.has_email,
                "email to {id}"
            );
            assert_in_window(
                id,
                common::unix(&sample["scheduled_at"]).unwrap(),
                customer.timezone,
            );
            checked += 1;
        }
    }
    assert!(checked > 0, "no email samples in {summary}");
    // Tasks per assignee: owners resolved to managers.
    assert!(
        summary["assignees"]["alice"].as_u64().unwrap() > 0,
        "{summary}"
    );
    // Read-only: nothing in the ledger, no task.
    assert_eq!(ws.count("SELECT count(*) FROM followups"), 0);
    assert_eq!(ws.count("SELECT count(*) FROM tasks"), 0);
    // The text summary says so, per day and per rule.
    let out = ws.run(&["plan", "--from", FROM]);
    out.assert_code(0);
    out.assert_stdout_contains("preview: nothing recorded");
    out.assert_stdout_contains("c-care-mail");
    out.assert_stdout_contains("skipped by the policy: consent");
    assert_eq!(ws.count("SELECT count(*) FROM followups"), 0);
}

#[test]
fn the_policy_moves_emails_into_the_window_and_caps_them() {
    let ws = assessed_quickstart();
    ws.write("rules/daily.yaml", DAILY_EMAILS);
    let out = ws.run(&["plan", "--from", FROM, "--days", "30", "--json"]);
    out.assert_code(0);
    let summary = out.json();
    let daily = rule(&summary, "t-daily");
    assert!(daily["moved_window"].as_u64().unwrap() > 0, "{daily}");
    assert!(daily["skipped"]["cap"].as_u64().unwrap() > 0, "{daily}");
    // Four C customers may get emails (C003, C006, C008 agreed and have an address; C005,
    // C007 did not agree; C009 has no address): at most 3 a month and 1 a week each.
    assert!(summary["emails"].as_u64().unwrap() <= 3 * 6, "{summary}");
    assert_eq!(ws.count("SELECT count(*) FROM followups"), 0);
}

#[test]
fn recorded_follow_ups_keep_consent_windows_caps_and_gaps_and_recording_twice_creates_nothing() {
    let ws = assessed_quickstart();
    ws.write("rules/daily.yaml", DAILY_EMAILS);
    // Emails are rendered when recorded: every template the rules name exists.
    for template in ["care", "offer", "birthday", "win-back", "upgrade-welcome"] {
        ws.write(
            &format!("templates/{template}.eml.j2"),
            "subject: Hello {{ customer.name }}\n--- text\nHello {{ customer.name }}\n",
        );
    }
    let args = followups_record_json(FROM, UNTIL);
    let out = ws.run(&args);
    out.assert_code(0);
    let first = out.json();
    assert!(first["new"].as_u64().unwrap() > 0, "{first}");
    assert!(first["tasks_created"].as_u64().unwrap() > 0, "{first}");
    let rows = ws.count("SELECT count(*) FROM followups");
    let tasks = ws.count("SELECT count(*) FROM tasks");
    assert_eq!(rows as u64, first["new"].as_u64().unwrap());
    // Every planned email is queued in the outbox with its follow-up.
    assert_eq!(first["queued"], first["planned"], "{first}");
    assert_eq!(
        ws.count("SELECT count(*) FROM outbox") as u64,
        first["queued"].as_u64().unwrap()
    );

    // The same range again: every occurrence is already in the ledger.
    let out = ws.run(&args);
    out.assert_code(0);
    let second = out.json();
    assert_eq!(second["new"], 0, "{second}");
    assert_eq!(second["tasks_created"], 0, "{second}");
    assert_eq!(ws.count("SELECT count(*) FROM followups"), rows);
    assert_eq!(ws.count("SELECT count(*) FROM tasks"), tasks);

    // The emails that will go out obey consent, address, window, caps and the gap (all are to
    // C customers: 1 a week, 3 a month, 5 days apart).
    let known = customers(&ws);
    let emails = planned_emails(&ws);
    assert!(emails.len() >= 3, "{emails:?}");
    let mut per_week: BTreeMap<(String, i32, u32), u32> = BTreeMap::new();
    let mut per_month: BTreeMap<(String, i32, u32), u32> = BTreeMap::new();
    for (i, (id, at)) in emails.iter().enumerate() {
        let customer = &known[id];
        assert!(
            customer.consent_email && customer.has_email,
            "email to {id}"
        );
        assert_in_window(id, *at, customer.timezone);
        let local = customer.timezone.timestamp_opt(*at, 0).unwrap();
        let week = local.iso_week();
        *per_week
            .entry((id.clone(), week.year(), week.week()))
            .or_default() += 1;
        *per_month
            .entry((id.clone(), local.year(), local.month()))
            .or_default() += 1;
        if i > 0 && emails[i - 1].0 == *id {
            assert!(at - emails[i - 1].1 >= 5 * 86_400, "{id}: {emails:?}");
        }
    }
    assert!(per_week.values().all(|&n| n <= 1), "{per_week:?}");
    assert!(per_month.values().all(|&n| n <= 3), "{per_month:?}");
    // Occurrences the policy removed are recorded as skipped, so they are not planned again.
    assert!(ws.count("SELECT count(*) FROM followups WHERE status = 'skipped'") > 0);
}

#[test]
fn tasks_list_done_and_snooze_round_trip() {
    let ws = assessed_quickstart();
    ws.run(&["followups", "record", "--from", FROM, "--until", UNTIL])
        .assert_code(0);

    let out = ws.run(&["tasks", "--json"]);
    out.assert_code(0);
    let tasks = out.json();
    let tasks = tasks.as_array().unwrap();
    assert!(!tasks.is_empty());
    // Due in 2025, so overdue now; overdue first.
    assert_eq!(tasks[0]["overdue"], true);
    for task in tasks {
        assert!(task["customer_id"].as_str().is_some());
        assert!(common::unix(&task["due"]).is_some());
        assert!(!task["title"].as_str().unwrap().contains("{{"), "{task}");
    }
    let out = ws.run(&["tasks", "list", "--owner", "alice", "--json"]);
    out.assert_code(0);
    let alice = out.json();
    let alice = alice.as_array().unwrap();
    assert!(!alice.is_empty());
    assert!(alice.iter().all(|task| task["assignee"] == "alice"));
    // By name too, in any case; a manager the workspace lacks is an error naming those it has.
    let out = ws.run(&["tasks", "--owner", "alice chen", "--json"]);
    out.assert_code(0);
    assert_eq!(out.json().as_array().unwrap().len(), alice.len());
    let out = ws.run(&["tasks", "--owner", "Lucy Green"]);
    out.assert_code(2);
    out.assert_stderr_contains("no manager has the id or name `Lucy Green`");
    out.assert_stderr_contains("alice (Alice Chen)");
    // A long list is cut, saying how many more there are.
    let out = ws.run(&["tasks", "--limit", "1"]);
    out.assert_code(0);
    out.assert_stdout_contains(&format!("... and {} more", tasks.len() - 1));
    let out = ws.run(&["tasks"]);
    out.assert_code(0);
    out.assert_stdout_contains("OVERDUE");

    let id = tasks[0]["id"].as_i64().unwrap().to_string();
    let out = ws.run(&[
        "tasks",
        "done",
        &id,
        "--note",
        "called them",
        "--by",
        "alice",
        "--json",
    ]);
    out.assert_code(0);
    let done = out.json();
    assert_eq!(done["status"], "done");
    assert_eq!(done["done_by"], "alice");
    assert!(done["note"].as_str().unwrap().contains("called them"));
    // Done twice, or an unknown id: exit 2, with a clear message, nothing changed.
    let out = ws.run(&["tasks", "done", &id]);
    out.assert_code(2);
    // When, as a date and time (not raw unix seconds).
    assert!(
        out.stderr.contains("by alice at 20") && out.stderr.contains(" UTC)"),
        "{}",
        out.stderr
    );
    out.assert_stderr_contains("already done");
    let out = ws.run(&["tasks", "done", "9999"]);
    out.assert_code(2);
    out.assert_stderr_contains("unknown task #9999");
    let out = ws.run(&["tasks", "snooze", &id, "--until", "2099-01-01"]);
    out.assert_code(2);
    out.assert_stderr_contains("already done");
    // The done task is no longer pending.
    let pending = ws.run(&["tasks", "--json"]).json();
    assert_eq!(pending.as_array().unwrap().len(), tasks.len() - 1);

    if tasks.len() > 1 {
        let other = tasks[1]["id"].as_i64().unwrap().to_string();
        let out = ws.run(&["tasks", "snooze", &other, "--until", "2099-01-01", "--json"]);
        out.assert_code(0);
        let snoozed = out.json();
        assert_eq!(snoozed["status"], "snoozed");
        assert_eq!(snoozed["overdue"], false);
        // A snooze must end in the future.
        let out = ws.run(&["tasks", "snooze", &other, "--until", "2020-01-01"]);
        out.assert_code(2);
        let out = ws.run(&["tasks", "list", "--view", "snoozed", "--json"]);
        out.assert_code(0);
        assert_eq!(out.json().as_array().unwrap().len(), 1);
    }
    assert_eq!(
        ws.count("SELECT count(*) FROM tasks WHERE status = 'done'"),
        1
    );
}

#[test]
fn plan_on_an_empty_workspace_and_bad_usage() {
    let ws = Workspace::new();
    let out = ws.run(&["plan", "--json"]);
    out.assert_code(0);
    assert_eq!(out.json()["customers"], 0);
    ws.run(&["plan", "--days", "0"]).assert_code(2);
    let out = ws.run(&["plan", "--from", "yesterday"]);
    out.assert_code(2);
    out.assert_stderr_contains("cannot read the time");
    let out = ws.run(&["followups", "record", "--from", UNTIL, "--until", FROM]);
    out.assert_code(2);
    out.assert_stderr_contains("--from must be before --until");
}

#[test]
fn a_set_of_several_attributes_is_recorded_and_carried_out_together() {
    let ws = assessed_quickstart();
    ws.write(
        "rules/coupon.yaml",
        "followups:\n  - id: t-coupon\n    tiers: [C]\n    cron: \"0 9 3 6 *\"\n    re_entry: once\n    set: { coupon_issued: true, coupon_code: JUNE25 }\n",
    );
    let out = ws.run(&followups_record_json(FROM, UNTIL));
    out.assert_code(0);
    let report = out.json();
    let c_customers = ws.count("SELECT count(*) FROM customer_tiers WHERE tier = 'C'");
    assert!(c_customers > 0);
    let coupons = ws.count(
        "SELECT count(*) FROM customers WHERE json_extract(attributes, '$.coupon_issued') = 1 \
         AND json_extract(attributes, '$.coupon_code') = 'JUNE25'",
    );
    assert_eq!(coupons, c_customers);
    assert!(
        report["attributes_set"].as_i64().unwrap() >= 2 * c_customers,
        "{report}"
    );
    assert_eq!(
        ws.count("SELECT count(*) FROM followups WHERE rule_id = 't-coupon' AND status = 'done'"),
        c_customers
    );
}

#[test]
fn a_rule_on_a_segment_plans_for_exactly_the_customers_in_it() {
    let ws = assessed_quickstart();
    let (set, segment): (String, String) = ws.query_one(
        "SELECT segment_set, segment FROM customer_segments \
         GROUP BY segment_set, segment ORDER BY count(*) DESC, segment_set, segment LIMIT 1",
    );
    let members = ws.count(&format!(
        "SELECT count(*) FROM customer_segments WHERE segment_set = '{set}' AND segment = '{segment}'"
    ));
    assert!(members > 0);
    ws.write(
        "rules/segment.yaml",
        &format!(
            "followups:\n  - id: t-segment\n    segments: {{ {set}: {segment} }}\n    every: 30d\n    tag: in-segment\n"
        ),
    );
    let out = ws.run(&["plan", "--from", FROM, "--days", "30", "--json"]);
    out.assert_code(0);
    let summary = out.json();
    // A 30-day cadence that never fired occurs once in 30 days for each member, and never for
    // anyone else.
    assert_eq!(
        rule(&summary, "t-segment")["planned"].as_i64().unwrap(),
        members,
        "{summary}"
    );
}

/// `plan` says when the work it plans does not fit the people who would do it: more tasks than
/// a manager can look after, tasks for customers without an owner, a role nobody holds.
#[test]
fn plan_warns_when_tasks_exceed_capacity_or_go_to_nobody() {
    let ws = assessed_quickstart();
    let args = ["plan", "--from", FROM, "--days", "30", "--json"];
    let plan = ws.run(&args);
    plan.assert_code(0);
    assert_eq!(
        plan.json()["capacity_warnings"].as_array().map(Vec::len),
        Some(0),
        "{}",
        plan.stdout
    );
    let alice_tasks = plan.json()["assignees"]["alice"].as_u64().unwrap();
    assert!(alice_tasks > 1, "{}", plan.stdout);

    let db = rusqlite::Connection::open(ws.path("tiercare.db")).unwrap();
    db.execute_batch(
        "UPDATE managers SET capacity = 0 WHERE external_id = 'alice';
         UPDATE managers SET active = 0 WHERE role = 'senior' AND external_id <> 'alice';
         UPDATE customers SET owner = NULL WHERE external_id = 'C001';",
    )
    .unwrap();
    drop(db);
    let plan = ws.run(&args);
    plan.assert_code(0);
    let warnings = plan.json()["capacity_warnings"].clone();
    let about = |who: &str| {
        warnings
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["assignee"] == who)
            .cloned()
            .unwrap_or_else(|| panic!("no warning for {who}: {warnings:#}"))
    };
    let alice = about("alice");
    assert_eq!(alice["capacity"], 0, "{alice}");
    assert!(
        alice["message"]
            .as_str()
            .unwrap()
            .contains("who can look after 0 customers"),
        "{alice}"
    );
    let nobody = about("(no owner)");
    assert!(
        nobody["message"]
            .as_str()
            .unwrap()
            .contains("would go to nobody"),
        "{nobody}"
    );
    // In words too, on stderr, for a person reading the plan.
    let text = ws.run(&["plan", "--from", FROM, "--days", "30"]);
    text.assert_code(0);
    text.assert_stderr_contains("more work than one person can do");
}

/// A task title that reads more of the customer than their name and id.
const REVIEW_RULE: &str = "\
followups:
  - id: t-review
    tiers: [A]
    cron: \"0 9 3 6 *\"
    task: { assignee: owner, title: \"Review {{ customer.name }} ({{ customer.region }}): {{ tier.label }}\" }
";

#[test]
fn task_titles_are_rendered_with_the_templates_context_and_checked_against_it() {
    let ws = assessed_quickstart();
    ws.write("rules/review.yaml", REVIEW_RULE);
    ws.run(&["check"]).assert_code(0);
    ws.run(&followups_record_json(FROM, UNTIL)).assert_code(0);
    let conn = rusqlite::Connection::open(ws.path("tiercare.db")).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT t.title, c.name, coalesce(c.region, '') FROM tasks t \
             JOIN followups f ON f.id = t.followup_id JOIN customers c ON c.id = t.customer_id \
             WHERE f.rule_id = 't-review'",
        )
        .unwrap();
    let tasks: Vec<(String, String, String)> = stmt
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(!tasks.is_empty());
    for (title, name, region) in &tasks {
        assert_eq!(title, &format!("Review {name} ({region}): Key accounts"));
    }

    // A variable the context lacks is a `check` error at its place in the title.
    ws.write(
        "rules/review.yaml",
        &REVIEW_RULE.replace("customer.region", "customer.regoin"),
    );
    let out = ws.run(&["check"]);
    out.assert_code(1);
    out.assert_stderr_contains(
        "rules/review.yaml:5:69: error: in the task title: undefined variable `customer.regoin`",
    );
    out.assert_stderr_contains("did you mean `customer.region`?");
}
