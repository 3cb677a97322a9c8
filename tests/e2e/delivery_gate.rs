//! End-to-end tests of the delivery gate on the real binary (issue #13, points 5 and 6): the
//! contact policy holds when an email is sent, not only when it is planned (a 30-hour backlog
//! sent to customers in three zones through a real SMTP server on 127.0.0.1), and what is sent
//! is still true (a win-back is cancelled by a new order, a text is rendered from current data,
//! a stale email is cancelled past its `max_delay`), with the clock driven by `send --at`.

use crate::common;

use std::time::Duration;

use common::{Run, Workspace, command_in, followups_record_json};
use smtp_sink::{Script, SmtpSink};

const WAIT: Duration = Duration::from_secs(10);

fn run(ws: &Workspace, args: &[&str]) -> Run {
    Run::of(command_in(ws.root()).args(args))
}

fn send(ws: &Workspace, at: &str) -> serde_json::Value {
    let out = run(ws, &["send", "--at", at, "--json"]);
    out.assert_code(0);
    out.json()
}

/// Rows of `sql` as `(text, integer, text)` triples.
fn rows(ws: &Workspace, sql: &str) -> Vec<(String, i64, String)> {
    let db = rusqlite::Connection::open(ws.path("tiercare.db")).unwrap();
    let mut stmt = db.prepare(sql).unwrap();
    stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

// --- The contact policy at delivery -----------------------------------------------------------

/// Every customer gets a hello at 10:00 on their own clock each day; at most one email a local
/// day, and only 09:00-18:00 on their clock.
const POLICY_RULES: &str = "\
contact_policy:
  caps: { day: 1 }
  send_window: { hours: \"09:00-18:00\" }
followups:
  - id: hello
    cron: \"0 10 * * *\"
    email: { template: hello }
";

const HELLO: &str = "\
subject: Hello {{ customer.name }}
--- text
Dear {{ customer.name }}, it is {{ today }} where you are.
";

/// Two customers in each zone. In December: Shanghai is UTC+8, Sydney UTC+11 (summer time),
/// New York UTC-5.
const ZONED_CUSTOMERS: &str = "\
customer_id,name,email,consent_email,timezone
S1,Sun,s1@example.com,true,Asia/Shanghai
S2,Shu,s2@example.com,true,Asia/Shanghai
Y1,Yara,y1@example.com,true,Australia/Sydney
Y2,Yves,y2@example.com,true,Australia/Sydney
N1,Nia,n1@example.com,true,America/New_York
N2,Ned,n2@example.com,true,America/New_York
";

fn offset_hours(customer: &str) -> i64 {
    match &customer[..1] {
        "S" => 8,
        "Y" => 11,
        _ => -5,
    }
}

#[test]
fn a_backlog_goes_out_only_inside_each_customers_window_and_under_the_caps() {
    let sink = SmtpSink::start(Script::accept_all()).unwrap();
    let ws = Workspace::new();
    ws.write(
        "tiercare.toml",
        &format!(
            "[workspace]\ntimezone = \"UTC\"\n\n[mail]\ntransport = \"smtp\"\n\
             from = \"Care Team <care@shop.example>\"\n\n\
             [mail.smtp]\nhost = \"127.0.0.1\"\nport = {}\nsecurity = \"none\"\n\
             timeout_seconds = 5\n",
            sink.port()
        ),
    );
    let customers = ws.write("customers.csv", ZONED_CUSTOMERS);
    run(&ws, &["import", "customers", &customers]).assert_code(0);
    run(&ws, &["assess", "--at", "2026-12-01T00:00:00Z"]).assert_code(0);
    ws.write("rules/followups.yaml", POLICY_RULES);
    ws.write("templates/hello.eml.j2", HELLO);
    // 30 hours of follow-ups recorded, none sent: each planned at 10:00 local time, and
    // Shanghai's two on two local days (so both pass the planner's day cap).
    let recorded = run(
        &ws,
        &followups_record_json("2026-12-01T00:00:00Z", "2026-12-02T06:00:00Z"),
    );
    recorded.assert_code(0);
    assert_eq!(recorded.json()["queued"], 8, "{}", recorded.stdout);

    // `send` runs late: 06:00 UTC is 14:00 in Shanghai, 17:00 in Sydney, 01:00 in New York.
    let first = send(&ws, "2026-12-02T06:00:00Z");
    assert_eq!(first["sent"], 4, "one each in Shanghai and Sydney: {first}");
    assert_eq!(
        first["held"], 4,
        "New York is asleep; Shanghai's second is over the day cap: {first}"
    );
    assert_eq!(sink.wait_for(4, WAIT).len(), 4);
    let held = rows(
        &ws,
        "SELECT c.external_id, o.id, o.last_error FROM outbox o \
         JOIN customers c ON c.id = o.customer_id WHERE o.state = 'deferred' ORDER BY o.id",
    );
    assert_eq!(held.len(), 4, "{held:?}");
    for (customer, id, reason) in &held {
        let shown = run(&ws, &["outbox", "show", &id.to_string()]);
        shown.assert_code(0);
        if customer.starts_with('N') {
            assert!(
                reason.contains("outside the send window 09:00-18:00 (America/New_York)")
                    && reason.contains("next at 2026-12-02 09:00 America/New_York"),
                "{reason}"
            );
        } else {
            assert!(
                reason.contains("the cap of 1 email(s) per day is reached")
                    && reason.contains("next at 2026-12-03 09:00 Asia/Shanghai"),
                "{reason}"
            );
        }
        shown.assert_stdout_contains("held by the contact policy");
        shown.assert_stdout_contains(reason);
    }
    assert_eq!(
        ws.count("SELECT count(*) FROM outbox WHERE state = 'deferred' AND attempts = 0"),
        4,
        "a hold by the policy is not an attempt"
    );
    let listed = run(&ws, &["outbox", "list", "--state", "deferred"]);
    listed.assert_stdout_contains("held by the contact policy");

    // Later runs: nothing before each one's next allowed time, then the rest.
    let early = send(&ws, "2026-12-02T13:00:00Z"); // 08:00 in New York, 21:00 in Shanghai
    assert_eq!(early["sent"], 0, "{early}");
    let new_york = send(&ws, "2026-12-02T14:30:00Z"); // 09:30 in New York
    assert_eq!(new_york["sent"], 2, "{new_york}");
    let shanghai = send(&ws, "2026-12-03T01:00:00Z"); // 09:00 on 3 December in Shanghai
    assert_eq!(shanghai["sent"], 2, "{shanghai}");
    assert_eq!(sink.wait_for(8, WAIT).len(), 8);

    // Every email went out inside its customer's window, at most one per local day.
    let sent = rows(
        &ws,
        "SELECT c.external_id, o.sent_at, o.state FROM outbox o \
         JOIN customers c ON c.id = o.customer_id WHERE o.state = 'sent' ORDER BY o.id",
    );
    assert_eq!(sent.len(), 8, "{sent:?}");
    let mut days = std::collections::BTreeSet::new();
    for (customer, sent_at, _) in &sent {
        let local = sent_at + offset_hours(customer) * 3600;
        let hour = local.rem_euclid(86_400) / 3600;
        assert!(
            (9..18).contains(&hour),
            "{customer} got an email at {hour}:00 local time"
        );
        assert!(
            days.insert((customer.clone(), local.div_euclid(86_400))),
            "{customer} got two emails on one local day: {sent:?}"
        );
    }
}

// --- Still true when sent ---------------------------------------------------------------------

const WIN_BACK_RULES: &str = "\
followups:
  - id: win-back
    on: { event: no_order, after: 90d }
    email: { template: miss-you }
";

const MISS_YOU: &str = "\
subject: We miss you
--- text
We haven't seen you for {{ features.days_since_last_order }} days.
";

const CUSTOMERS: &str = "\
customer_id,name,email,consent_email,timezone
W1,Wim,w1@example.com,true,UTC
W2,Wen,w2@example.com,true,UTC
";

/// Both ordered on 1 August 2026: their win-backs occur 90 days later, on 30 October.
const ORDERS: &str = "\
order_id,customer_id,ordered_at,amount
O1,W1,2026-08-01 10:00,50.00
O2,W2,2026-08-01 10:00,60.00
";

/// A workspace writing mail to `outbox/` with both win-backs queued (recorded on 30 October),
/// reading `rules` as the follow-up rules.
fn win_back_workspace(rules: &str) -> Workspace {
    let ws = Workspace::new();
    ws.write(
        "tiercare.toml",
        "[workspace]\ntimezone = \"UTC\"\n\n[mail]\ntransport = \"folder\"\nfolder = \"outbox\"\n\
         from = \"Care Team <care@shop.example>\"\n",
    );
    let customers = ws.write("customers.csv", CUSTOMERS);
    run(&ws, &["import", "customers", &customers]).assert_code(0);
    let orders = ws.write("orders.csv", ORDERS);
    run(&ws, &["import", "orders", &orders]).assert_code(0);
    run(&ws, &["assess", "--at", "2026-10-29T00:00:00Z"]).assert_code(0);
    ws.write("rules/followups.yaml", rules);
    ws.write("templates/miss-you.eml.j2", MISS_YOU);
    let recorded = run(
        &ws,
        &followups_record_json("2026-10-30T00:00:00Z", "2026-10-31T00:00:00Z"),
    );
    recorded.assert_code(0);
    assert_eq!(recorded.json()["queued"], 2, "{}", recorded.stdout);
    let texts = rows(&ws, "SELECT body_text, id, state FROM outbox ORDER BY id");
    // Rendered when recorded (as of then): not what is true on 2 November.
    for (text, _, _) in &texts {
        assert!(!text.contains("for 93 days"), "{text}");
    }
    ws
}

fn email_of(ws: &Workspace, customer: &str) -> (String, i64, String) {
    rows(
        ws,
        &format!(
            "SELECT o.state, o.id, o.body_text FROM outbox o \
             JOIN customers c ON c.id = o.customer_id WHERE c.external_id = '{customer}'"
        ),
    )
    .remove(0)
}

#[test]
fn a_win_back_is_cancelled_by_a_new_order_and_the_rest_is_rendered_from_current_data() {
    let ws = win_back_workspace(WIN_BACK_RULES);
    // W1 orders after the win-back was queued.
    let order = ws.write(
        "new-order.csv",
        "order_id,customer_id,ordered_at,amount\nO3,W1,2026-11-01 12:00,70.00\n",
    );
    run(&ws, &["import", "orders", &order]).assert_code(0);

    let report = send(&ws, "2026-11-02T12:00:00Z");
    assert_eq!(report["sent"], 1, "{report}");
    assert_eq!(report["no_longer_true"], 1, "{report}");

    let (state, id, _) = email_of(&ws, "W1");
    assert_eq!(state, "cancelled");
    let shown = run(&ws, &["outbox", "show", &id.to_string()]);
    shown.assert_stdout_contains("no longer true: the customer ordered on 2026-11-01 12:00");
    shown.assert_stdout_contains("claimed → cancelled");
    // Its follow-up is cancelled with the reason too.
    let followup = rows(
        &ws,
        &format!(
            "SELECT f.status, f.id, f.status_reason FROM followups f \
             JOIN outbox o ON o.followup_id = f.id WHERE o.id = {id}"
        ),
    );
    assert_eq!(followup[0].0, "cancelled");
    assert!(followup[0].2.contains("ordered on"), "{followup:?}");

    // W2's text says what is true when it is sent (93 days), not when it was decided.
    let (state, _, text) = email_of(&ws, "W2");
    assert_eq!(state, "sent");
    assert!(text.contains("for 93 days"), "{text}");
    let files: Vec<String> = std::fs::read_dir(ws.path("outbox"))
        .unwrap()
        .map(|entry| std::fs::read_to_string(entry.unwrap().path()).unwrap())
        .collect();
    assert_eq!(files.len(), 1);
    assert!(files[0].contains("for 93 days"), "{}", files[0]);
}

#[test]
fn an_email_past_its_max_delay_is_cancelled_as_stale() {
    let ws = win_back_workspace(&WIN_BACK_RULES.replace(
        "    email: { template: miss-you }\n",
        "    max_delay: 2d\n    email: { template: miss-you }\n",
    ));
    // Due on 30 October; 2 days later it may still go, 3 days later it may not.
    let report = send(&ws, "2026-11-02T12:00:00Z");
    assert_eq!(report["stale"], 2, "{report}");
    assert_eq!(report["sent"], 0, "{report}");
    let (state, id, _) = email_of(&ws, "W1");
    assert_eq!(state, "cancelled");
    let shown = run(&ws, &["outbox", "show", &id.to_string()]);
    shown.assert_stdout_contains("stale: due 2026-10-30");
    shown.assert_stdout_contains("more than its max_delay of 2d ago");
    let listed = run(&ws, &["outbox", "list"]);
    listed.assert_stdout_contains("2 cancelled");
    listed.assert_stdout_contains("stale: due");
    // The report counts them as stale.
    let report = run(&ws, &["report", "--json"]);
    report.assert_code(0);
    assert!(report.stdout.contains("\"stale\": 2"), "{}", report.stdout);
}
