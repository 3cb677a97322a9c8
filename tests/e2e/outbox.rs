//! End-to-end tests of the outbox on the real binary: follow-ups recorded with their rendered
//! emails, `tiercare send` delivering to a real SMTP server on 127.0.0.1 (smtp-sink) whose
//! received messages are parsed back with mail-parser, faults from the server, the clock driven
//! with `--at`, `tiercare outbox` and `tiercare unsubscribe`.

use crate::common;

use std::time::Duration;

use common::{Run, Workspace, command_in, followups_record_json};
use mail_parser::{HeaderValue, MessageParser, MimeHeaders};
use smtp_sink::{Received, Script, SmtpSink};

/// Customers are assessed at this time, and follow-ups recorded for the day after.
const FROM: &str = "2025-06-02T00:00:00Z";
const UNTIL: &str = "2025-06-03T00:00:00Z";
/// `send --at` times, after the follow-ups are due (10:00 on 2 June).
const SEND: &str = "2025-06-03T00:00:00Z";
const SEND_PLUS_1S: &str = "2025-06-03T00:00:01Z";
const SEND_PLUS_1H: &str = "2025-06-03T01:00:00Z";
const SEND_PLUS_2H: &str = "2025-06-03T02:00:00Z";

const SECRET_ENV: &str = "TIERCARE_TEST_UNSUBSCRIBE_SECRET";
const SECRET: &str = "a test secret that is long enough";

const WAIT: Duration = Duration::from_secs(10);

/// Every consenting customer gets an email at 10:00 every day.
const RULES: &str = "\
followups:
  - id: hello
    tiers: [A, B, C]
    cron: \"0 10 * * *\"
    email: { template: hello }
";

const TEMPLATE: &str = "\
subject: Hello {{ customer.name }}
--- text
Dear {{ customer.name }},
thank you for shopping with us.
--- html
<html><body><p>Dear {{ customer.name }},</p><p>thank you.</p></body></html>
";

/// C1 and C2 consent and have addresses; C3 does not consent.
const CUSTOMERS: &str = "\
customer_id,name,email,consent_email
C1,Bob,bob@example.com,true
C2,Eve,eve@example.com,true
C3,Nope,nope@example.com,false
";

fn config(port: u16) -> String {
    format!(
        "[workspace]\ntimezone = \"UTC\"\n\n[mail]\ntransport = \"smtp\"\n\
         from = \"Care Team <care@shop.example>\"\n\
         unsubscribe_url = \"https://shop.example/unsubscribe\"\n\
         unsubscribe_secret_env = \"{SECRET_ENV}\"\n\n\
         [mail.smtp]\nhost = \"127.0.0.1\"\nport = {port}\nsecurity = \"none\"\n\
         timeout_seconds = 1\n\n\
         [mail.outbox]\nretry_base_seconds = 60\nretry_max_seconds = 600\nmax_attempts = 5\n"
    )
}

/// Runs the binary in the workspace with the unsubscribe secret set.
fn run(ws: &Workspace, args: &[&str]) -> Run {
    Run::of(command_in(ws.root()).args(args).env(SECRET_ENV, SECRET))
}

/// A workspace sending to `sink`, with customers imported and assessed, the rule and its
/// template in place; `tamper` runs SQL before the follow-ups are recorded (to put data the
/// import would refuse into the database), then the follow-ups are recorded.
fn workspace(sink: &SmtpSink, tamper: &str) -> (Workspace, serde_json::Value) {
    let ws = Workspace::new();
    ws.write("tiercare.toml", &config(sink.port()));
    let customers = ws.write("customers.csv", CUSTOMERS);
    run(&ws, &["import", "customers", &customers]).assert_code(0);
    run(&ws, &["assess", "--at", FROM]).assert_code(0);
    ws.write("rules/followups.yaml", RULES);
    ws.write("templates/hello.eml.j2", TEMPLATE);
    if !tamper.is_empty() {
        rusqlite::Connection::open(ws.path("tiercare.db"))
            .unwrap()
            .execute_batch(tamper)
            .unwrap();
    }
    let out = run(&ws, &followups_record_json(FROM, UNTIL));
    out.assert_code(0);
    let report = out.json();
    (ws, report)
}

fn send(ws: &Workspace, at: &str) -> (i32, serde_json::Value) {
    let out = run(ws, &["send", "--at", at, "--json"]);
    assert!(
        out.code == 0 || out.code == 1,
        "{}\n{}",
        out.stdout,
        out.stderr
    );
    (out.code, out.json())
}

/// The single value of a query.
fn one<T: rusqlite::types::FromSql>(ws: &Workspace, sql: &str) -> T {
    rusqlite::Connection::open(ws.path("tiercare.db"))
        .unwrap()
        .query_row(sql, [], |row| row.get(0))
        .unwrap()
}

/// The state and attempts of the customer's email.
fn state_of(ws: &Workspace, customer: &str) -> (String, i64) {
    rusqlite::Connection::open(ws.path("tiercare.db"))
        .unwrap()
        .query_row(
            "SELECT o.state, o.attempts FROM outbox o JOIN customers c ON c.id = o.customer_id \
             WHERE c.external_id = ?1",
            [customer],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .unwrap()
}

fn header_text(value: &HeaderValue<'_>) -> String {
    match value {
        HeaderValue::Text(text) => text.to_string(),
        HeaderValue::TextList(list) => list.join(", "),
        HeaderValue::Address(address) => address
            .iter()
            .filter_map(|a| a.address.as_deref())
            .collect::<Vec<_>>()
            .join(", "),
        other => format!("{other:?}"),
    }
}

fn raw_header(message: &mail_parser::Message<'_>, name: &str) -> String {
    message
        .header(name)
        .map(header_text)
        .unwrap_or_else(|| panic!("no {name} header"))
}

fn recipients(received: &[Received]) -> Vec<String> {
    let mut all: Vec<String> = received.iter().flat_map(|r| r.rcpt_to.clone()).collect();
    all.sort();
    all
}

#[test]
fn care_emails_arrive_once_well_formed_with_nothing_injected_and_nothing_to_who_said_no() {
    let sink = SmtpSink::start(Script::accept_all()).unwrap();
    // Data the import refuses, put in directly: a name that tries to add a header.
    let (ws, recorded) = workspace(
        &sink,
        "UPDATE customers SET name = 'Bob' || char(13) || char(10) || 'Bcc: x@evil.example' \
         WHERE external_id = 'C1';",
    );
    assert_eq!(recorded["queued"], 2, "{recorded}");
    // A suppressed customer gets nothing, even though their email is queued.
    run(&ws, &["unsubscribe", "EVE@example.com"]).assert_code(0);

    let (code, report) = send(&ws, SEND);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["sent"], 1, "{report}");
    assert_eq!(report["suppressed"], 1, "{report}");
    let received = sink.wait_for(1, WAIT);
    assert_eq!(recipients(&received), ["bob@example.com"]);
    assert_eq!(state_of(&ws, "C2").0, "suppressed");

    // Nothing injected on the wire: no extra recipient, no extra header line.
    for command in sink.commands() {
        assert!(!command.contains("evil"), "{command}");
    }
    let raw = String::from_utf8(received[0].data.clone()).unwrap();
    let headers = raw.split("\r\n\r\n").next().unwrap();
    for line in headers.split("\r\n") {
        assert!(
            !line.starts_with("Bcc"),
            "injected header {line:?}\n{headers}"
        );
    }

    // A standard parser accepts it: Message-ID (the outbox's), Date, From, List-Unsubscribe
    // with a mailto and a signed one-click link, multipart/alternative.
    let message = MessageParser::default().parse(&received[0].data).unwrap();
    let message_id: String = one(&ws, "SELECT message_id FROM outbox WHERE state = 'sent'");
    assert_eq!(format!("<{}>", message.message_id().unwrap()), message_id);
    assert_eq!(message.date().unwrap().to_rfc3339(), "2025-06-03T00:00:00Z");
    // The template layer folds the line break (and any run of whitespace) into one space.
    assert_eq!(message.subject(), Some("Hello Bob Bcc: x@evil.example"));
    let unsubscribe = raw_header(&message, "List-Unsubscribe");
    assert!(
        unsubscribe.contains("mailto:care@shop.example"),
        "{unsubscribe}"
    );
    assert!(
        unsubscribe.contains("https://shop.example/unsubscribe?token="),
        "{unsubscribe}"
    );
    assert_eq!(
        raw_header(&message, "List-Unsubscribe-Post"),
        "List-Unsubscribe=One-Click"
    );
    assert!(
        message
            .content_type()
            .is_some_and(|ct| ct.ctype() == "multipart" && ct.subtype() == Some("alternative")),
        "{headers}"
    );
    let text = message.body_text(0).unwrap();
    assert!(text.contains("Dear Bob"), "{text}");
    assert!(
        text.contains(
            "To unsubscribe from these emails, open https://shop.example/unsubscribe?token="
        ),
        "{text}"
    );
    let html = message.body_html(0).unwrap();
    assert!(html.contains("unsubscribe"), "{html}");

    // Each message once: sending again delivers nothing more.
    let (_, again) = send(&ws, SEND_PLUS_1H);
    assert_eq!(again["claimed"], 0, "{again}");
    assert_eq!(sink.received().len(), 1);

    // The link's token unsubscribes Bob (verified with the secret; the token holds no address).
    let token = unsubscribe
        .split("token=")
        .nth(1)
        .unwrap()
        .split(['>', ',', ' '])
        .next()
        .unwrap()
        .to_owned();
    assert!(!token.contains('@'));
    let out = run(&ws, &["unsubscribe", "--token", &token, "--json"]);
    out.assert_code(0);
    assert_eq!(out.json()["added"], 1);
    let out = run(
        &ws,
        &["unsubscribe", "--token", &format!("{token}0"), "--json"],
    );
    out.assert_code(2);
    out.assert_stderr_contains("not valid");
    assert_eq!(ws.count("SELECT count(*) FROM suppressions"), 2);
    assert_eq!(
        ws.count("SELECT count(*) FROM suppressions WHERE address_hash LIKE '%@%'"),
        0
    );
}

#[test]
fn script_tags_are_escaped_in_html_and_literal_in_text_and_invalid_addresses_are_skipped() {
    let sink = SmtpSink::start(Script::accept_all()).unwrap();
    let (ws, recorded) = workspace(
        &sink,
        "UPDATE customers SET name = '<script>alert(1)</script>' WHERE external_id = 'C2';\
         UPDATE customers SET email = 'not an address' WHERE external_id = 'C1';",
    );
    // C1's invalid address: skipped with the reason, never queued.
    assert_eq!(recorded["queued"], 1, "{recorded}");
    let reason: String = one(
        &ws,
        "SELECT f.status_reason FROM followups f JOIN customers c ON c.id = f.customer_id \
         WHERE c.external_id = 'C1'",
    );
    assert!(reason.contains("email address is not valid"), "{reason}");
    assert!(
        !reason.contains("not an address"),
        "no address in the reason: {reason}"
    );

    let (code, report) = send(&ws, SEND);
    assert_eq!((code, &report["sent"]), (0, &1.into()), "{report}");
    let received = sink.wait_for(1, WAIT);
    assert_eq!(recipients(&received), ["eve@example.com"]);
    let message = MessageParser::default().parse(&received[0].data).unwrap();
    let text = message.body_text(0).unwrap();
    assert!(text.contains("Dear <script>alert(1)</script>,"), "{text}");
    let html = message.body_html(0).unwrap();
    assert!(
        // minijinja's HTML escaping also escapes `/` (as `&#x2f;`).
        html.contains("Dear &lt;script&gt;alert(1)&lt;&#x2f;script&gt;,"),
        "{html}"
    );
    assert!(!html.contains("<script>"), "{html}");
}

#[test]
fn transient_failures_are_retried_after_backoff_and_sent_once() {
    // The first connection is greeted with 421, the next transaction's RCPT gets 451.
    let sink = SmtpSink::start(Script::accept_all().greet_421(1).rcpt_451(1)).unwrap();
    let (ws, _) = workspace(&sink, "DELETE FROM customers WHERE external_id = 'C2';");

    let (code, report) = send(&ws, SEND);
    assert_eq!((code, &report["deferred"]), (0, &1.into()), "{report}");
    assert_eq!(state_of(&ws, "C1"), ("deferred".to_owned(), 1));
    // Not before its backoff (at least 30 s with jitter).
    let (_, report) = send(&ws, SEND_PLUS_1S);
    assert_eq!(report["claimed"], 0, "{report}");
    // After it: 451 on RCPT, deferred again.
    let (_, report) = send(&ws, SEND_PLUS_1H);
    assert_eq!(report["deferred"], 1, "{report}");
    assert_eq!(state_of(&ws, "C1"), ("deferred".to_owned(), 2));
    // Then accepted, once.
    let (_, report) = send(&ws, SEND_PLUS_2H);
    assert_eq!(report["sent"], 1, "{report}");
    assert_eq!(state_of(&ws, "C1"), ("sent".to_owned(), 3));
    assert_eq!(sink.wait_for(1, WAIT).len(), 1);
    let events = ws.count(
        "SELECT count(*) FROM outbox_events e JOIN outbox o ON o.id = e.outbox_id \
         WHERE e.to_state = 'deferred'",
    );
    assert_eq!(events, 2);
}

#[test]
fn a_refused_connection_defers_and_a_550_fails_suppresses_and_is_never_retried() {
    let mut sink = SmtpSink::start(Script::down()).unwrap();
    let (ws, _) = workspace(&sink, "");
    let (code, report) = send(&ws, SEND);
    assert_eq!((code, &report["deferred"]), (0, &2.into()), "{report}");
    let error: String = one(&ws, "SELECT last_error FROM outbox LIMIT 1");
    assert!(error.contains("cannot connect"), "{error}");

    sink.set_script(Script::accept_all().reject_rcpt("bob@example.com"))
        .unwrap();
    let (code, report) = send(&ws, SEND_PLUS_1H);
    assert_eq!(code, 1, "a failure exits 1: {report}");
    assert_eq!(report["sent"], 1, "{report}");
    assert_eq!(report["failed"], 1, "{report}");
    assert_eq!(report["hard_bounces"], 1, "{report}");
    assert_eq!(state_of(&ws, "C1").0, "failed");
    assert_eq!(
        ws.count("SELECT count(*) FROM suppressions WHERE reason = 'hard_bounce'"),
        1
    );
    // Never retried by itself; retried by hand, the suppression stops it.
    let (_, report) = send(&ws, SEND_PLUS_2H);
    assert_eq!(report["claimed"], 0, "{report}");
    let id: i64 = one(&ws, "SELECT id FROM outbox WHERE state = 'failed'");
    run(&ws, &["outbox", "retry", &id.to_string()]).assert_code(0);
    let (_, report) = send(&ws, "2030-01-01T00:00:00Z");
    assert_eq!(report["suppressed"], 1, "{report}");
    assert_eq!(state_of(&ws, "C1").0, "suppressed");
    let rcpts: Vec<String> = sink
        .commands()
        .into_iter()
        .filter(|c| c.starts_with("RCPT") && c.contains("bob"))
        .collect();
    assert_eq!(rcpts.len(), 1, "bob was tried once: {rcpts:?}");
    sink.shutdown();
}

#[test]
fn a_stall_after_data_is_unknown_reported_and_held() {
    let sink = SmtpSink::start(Script::accept_all().stall_after_data(1)).unwrap();
    let (ws, _) = workspace(&sink, "DELETE FROM customers WHERE external_id = 'C2';");
    let (code, report) = send(&ws, SEND);
    assert_eq!(code, 1, "{report}");
    assert_eq!(report["unknown"], 1, "{report}");
    assert_eq!(sink.wait_for_unanswered(1, WAIT).len(), 1);
    assert_eq!(state_of(&ws, "C1").0, "unknown");
    let out = run(&ws, &["outbox", "list", "--state", "unknown"]);
    out.assert_code(0);
    out.assert_stdout_contains("1 unknown");
    out.assert_stdout_contains("outcome unknown");
    // Held: not resent by the next run.
    let (_, report) = send(&ws, SEND_PLUS_1H);
    assert_eq!(report["claimed"], 0, "{report}");
    assert!(sink.received().is_empty());
}

#[test]
fn a_sender_killed_mid_conversation_loses_nothing_and_the_resend_is_counted() {
    // The server takes the whole message and never answers; the sender waits (30 s timeout)
    // and is killed with SIGKILL while the email is claimed.
    let sink = SmtpSink::start(Script::accept_all().stall_after_data(1)).unwrap();
    let (ws, _) = workspace(&sink, "DELETE FROM customers WHERE external_id = 'C2';");
    ws.write(
        "tiercare.toml",
        &config(sink.port()).replace("timeout_seconds = 1", "timeout_seconds = 30"),
    );
    let message_id: String = one(&ws, "SELECT message_id FROM outbox");
    let mut child = command_in(ws.root())
        .args(["send", "--at", SEND])
        .env(SECRET_ENV, SECRET)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    assert_eq!(sink.wait_for_unanswered(1, WAIT).len(), 1, "handed over");
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert_eq!(state_of(&ws, "C1"), ("claimed".to_owned(), 1));

    // The sender lock is free, so the claimer is dead: the next send recovers at once (no
    // claim timeout to wait for): unknown, then resent once with the same Message-ID, counted.
    let (_, report) = send(&ws, SEND_PLUS_1S);
    assert_eq!(report["recovered"], 1, "{report}");
    assert_eq!(report["resent_after_crash"], 1, "{report}");
    assert_eq!(report["sent"], 1, "{report}");
    let received = sink.wait_for(1, WAIT);
    let message = MessageParser::default().parse(&received[0].data).unwrap();
    assert_eq!(format!("<{}>", message.message_id().unwrap()), message_id);
    assert_eq!(state_of(&ws, "C1"), ("sent".to_owned(), 2));
    let out = run(&ws, &["outbox"]);
    out.assert_stdout_contains("1 resent after a crash");
    let events: Vec<String> = {
        let conn = rusqlite::Connection::open(ws.path("tiercare.db")).unwrap();
        let mut stmt = conn
            .prepare("SELECT to_state FROM outbox_events ORDER BY id")
            .unwrap();
        stmt.query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    assert_eq!(
        events,
        ["queued", "claimed", "unknown", "queued", "claimed", "sent"]
    );
}

#[test]
fn unsubscribe_lists_skip_invalid_rows_and_outbox_commands_explain_themselves() {
    let sink = SmtpSink::start(Script::accept_all()).unwrap();
    let (ws, _) = workspace(&sink, "");
    let csv = ws.write(
        "unsubscribe.csv",
        "name,email\nBob,bob@example.com\nNobody,\nBad,not an address\nBob again,BOB@example.com\n",
    );
    let out = run(&ws, &["unsubscribe", "--csv", &csv, "--json"]);
    out.assert_code(1);
    let report = out.json();
    assert_eq!(report["added"], 1, "{report}");
    assert_eq!(report["already_suppressed"], 1, "{report}");
    let rows: Vec<u64> = report["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["row"].as_u64().unwrap())
        .collect();
    assert_eq!(rows, [3, 4], "{report}");
    let out = run(&ws, &["unsubscribe", "not-an-address"]);
    out.assert_code(1);
    out.assert_stderr_contains("not a valid email address");

    // outbox show, cancel; cancelled emails are not sent; unknown ids exit 2.
    let id: i64 = one(
        &ws,
        "SELECT o.id FROM outbox o JOIN customers c ON c.id = o.customer_id \
         WHERE c.external_id = 'C2'",
    );
    let out = run(&ws, &["outbox", "show", &id.to_string()]);
    out.assert_code(0);
    out.assert_stdout_contains("queued");
    out.assert_stdout_contains("Dear Eve");
    run(&ws, &["outbox", "cancel", &id.to_string()]).assert_code(0);
    let out = run(&ws, &["outbox", "cancel", &id.to_string()]);
    out.assert_code(2);
    out.assert_stderr_contains("is cancelled");
    run(&ws, &["outbox", "show", "999"]).assert_code(2);
    let (_, report) = send(&ws, SEND);
    assert_eq!(report["claimed"], 0, "{report}");
    assert_eq!(report["suppressed"], 1, "bob unsubscribed: {report}");
    assert!(sink.received().is_empty());
    let out = run(&ws, &["outbox", "--json"]);
    out.assert_code(0);
    let listing = out.json();
    assert_eq!(listing["counts"]["cancelled"], 1, "{listing}");
    assert_eq!(listing["counts"]["suppressed"], 1, "{listing}");
}

#[test]
fn a_new_workspace_sends_to_its_mail_folder_without_any_server() {
    let ws = Workspace::new();
    let customers = ws.write("customers.csv", CUSTOMERS);
    run(&ws, &["import", "customers", &customers]).assert_code(0);
    run(&ws, &["assess", "--at", FROM]).assert_code(0);
    ws.write("rules/followups.yaml", RULES);
    ws.write("templates/hello.eml.j2", TEMPLATE);
    run(
        &ws,
        &["followups", "record", "--from", FROM, "--until", UNTIL],
    )
    .assert_code(0);
    let out = run(&ws, &["send", "--at", SEND]);
    out.assert_code(0);
    out.assert_stdout_contains("sent 2 of 2 claimed emails via folder");
    let files: Vec<_> = std::fs::read_dir(ws.path("mail"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    assert_eq!(files.len(), 2, "{files:?}");
    for file in &files {
        let raw = std::fs::read(file).unwrap();
        let message = MessageParser::default().parse(&raw).unwrap();
        assert!(message.header("List-Unsubscribe").is_some());
        assert!(message.body_text(0).unwrap().contains("To unsubscribe"));
    }
    let out = run(&ws, &["send", "--at", SEND_PLUS_1H, "--json"]);
    out.assert_code(0);
    assert_eq!(out.json()["claimed"], 0);
    assert_eq!(std::fs::read_dir(ws.path("mail")).unwrap().count(), 2);
}

fn count_in(root: &std::path::Path, sql: &str) -> i64 {
    rusqlite::Connection::open(root.join("tiercare.db"))
        .unwrap()
        .query_row(sql, [], |row| row.get(0))
        .unwrap()
}

#[test]
fn ctrl_c_during_a_send_of_3000_emails_requeues_the_rest_and_the_next_send_sends_each_once() {
    use std::process::Stdio;
    use std::time::Instant;

    const EMAILS: i64 = 3_000;
    let tmp = common::fast_tempdir();
    let root = tmp.path().join("ws");
    common::run_in(tmp.path(), &["init", root.to_str().unwrap()]).assert_code(0);
    std::fs::remove_file(root.join("rules/followups.yaml")).unwrap();
    std::fs::write(
        root.join("rules/mail.yaml"),
        "followups:\n  - id: hello\n    cron: \"0 9 * * *\"\n    email: { template: care }\n",
    )
    .unwrap();
    std::fs::write(
        root.join("templates/care.eml.j2"),
        "subject: Hello {{ customer.name }}\n--- text\nHello {{ customer.name }}\n",
    )
    .unwrap();
    let mut csv = String::from("customer_id,name,email,consent_email\n");
    for i in 0..EMAILS {
        csv.push_str(&format!("C{i:04},Customer {i},c{i}@example.com,true\n"));
    }
    std::fs::write(root.join("customers.csv"), csv).unwrap();
    common::run_in(&root, &["import", "customers", "customers.csv"]).assert_code(0);
    let recorded = common::run_in(
        &root,
        &followups_record_json("2026-03-02T08:00:00Z", "2026-03-02T10:00:00Z"),
    );
    recorded.assert_code(0);
    assert_eq!(recorded.json()["queued"], EMAILS, "{}", recorded.stdout);

    let mail = root.join("mail");
    let files = || std::fs::read_dir(&mail).map_or(0, |dir| dir.count()) as i64;
    let stderr = tmp.path().join("send.stderr");
    let mut sender = command_in(&root)
        .args(["send", "--at", "2026-03-02T10:00:00Z"])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .expect("start tiercare send");
    let deadline = Instant::now() + WAIT;
    while files() < 20 {
        assert!(Instant::now() < deadline, "nothing sent");
        std::thread::sleep(Duration::from_millis(2));
    }
    let status = std::process::Command::new("kill")
        .args(["-INT", &sender.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let code = sender.wait().unwrap().code();
    let message = std::fs::read_to_string(&stderr).unwrap();
    assert_eq!(code, Some(130), "{message}");
    assert!(
        message.contains("interrupted") && message.contains("run `tiercare send` again"),
        "{message}"
    );

    // Stopped mid-backlog: nothing left claimed, the unsent emails queued with no attempt
    // counted, and exactly the sent ones in the folder.
    let sent = count_in(&root, "SELECT count(*) FROM outbox WHERE state = 'sent'");
    let queued = count_in(&root, "SELECT count(*) FROM outbox WHERE state = 'queued'");
    assert!(queued > 0, "the whole backlog was sent before Ctrl-C");
    assert_eq!(
        count_in(&root, "SELECT count(*) FROM outbox WHERE state = 'claimed'"),
        0
    );
    assert_eq!(sent + queued, EMAILS);
    assert_eq!(files(), sent);
    assert_eq!(
        count_in(
            &root,
            "SELECT count(*) FROM outbox WHERE state = 'queued' AND attempts <> 0"
        ),
        0,
        "a released email had an attempt counted"
    );

    // A later send delivers the rest, each email exactly once.
    let again = common::run_in(&root, &["send", "--at", "2026-03-02T10:01:00Z", "--json"]);
    again.assert_code(0);
    assert_eq!(again.json()["sent"], queued, "{}", again.stdout);
    assert_eq!(files(), EMAILS);
    assert_eq!(
        count_in(
            &root,
            "SELECT count(*) FROM outbox_events WHERE to_state = 'sent'"
        ),
        EMAILS,
        "an email was sent twice"
    );
    assert_eq!(
        count_in(&root, "SELECT count(*) FROM outbox WHERE attempts <> 1"),
        0,
        "an email was attempted twice"
    );
}

#[test]
fn a_connection_dropped_mid_data_is_retried_and_delivered_once() {
    // The server answers DATA with 354, reads a few bytes of the content and dies: the final
    // "." never reaches it, so nothing was stored and the email must not be held as unknown.
    let sink = SmtpSink::start(Script::accept_all().drop_in_data(1)).unwrap();
    let (ws, _) = workspace(&sink, "DELETE FROM customers WHERE external_id = 'C2';");
    let (code, report) = send(&ws, SEND);
    assert_eq!((code, &report["unknown"]), (0, &0.into()), "{report}");
    assert_eq!(report["deferred"], 1, "{report}");
    assert_eq!(state_of(&ws, "C1"), ("deferred".to_owned(), 1));
    assert!(sink.received().is_empty() && sink.unanswered().is_empty());
    // Retried after its backoff, and delivered once.
    let (_, report) = send(&ws, SEND_PLUS_1H);
    assert_eq!(report["sent"], 1, "{report}");
    assert_eq!(state_of(&ws, "C1"), ("sent".to_owned(), 2));
    assert_eq!(sink.wait_for(1, WAIT).len(), 1);
}

#[test]
fn literal_encoded_words_in_a_subject_stay_literal_and_message_ids_use_the_senders_domain() {
    let sink = SmtpSink::start(Script::accept_all()).unwrap();
    let (ws, _) = workspace(
        &sink,
        "DELETE FROM customers WHERE external_id = 'C2'; \
         UPDATE customers SET name = '=?utf-8?q?fake?=' WHERE external_id = 'C1';",
    );
    let (code, report) = send(&ws, SEND);
    assert_eq!((code, &report["sent"]), (0, &1.into()), "{report}");
    let received = sink.wait_for(1, WAIT);
    let message = MessageParser::default().parse(&received[0].data).unwrap();
    // A mail reader decodes encoded words: the subject must decode to the literal text.
    assert_eq!(message.subject(), Some("Hello =?utf-8?q?fake?="));
    let to = message.to().and_then(|to| to.first()).unwrap();
    assert_eq!(to.name(), Some("=?utf-8?q?fake?="));
    assert_eq!(to.address(), Some("bob@example.com"));
    let message_id = message.message_id().unwrap();
    assert!(message_id.ends_with("@shop.example"), "{message_id}");
    let stored: String = one(&ws, "SELECT message_id FROM outbox");
    assert_eq!(stored, format!("<{message_id}>"));
}

#[test]
fn a_hard_bounce_reply_quoting_the_address_is_not_logged_above_debug() {
    let sink = SmtpSink::start(Script::accept_all().reject_rcpt("bob@example.com")).unwrap();
    let (ws, _) = workspace(&sink, "DELETE FROM customers WHERE external_id = 'C2';");
    let out = Run::of(
        command_in(ws.root())
            .args(["send", "--at", SEND, "--json"])
            .env(SECRET_ENV, SECRET)
            .env("TIERCARE_LOG", "info"),
    );
    out.assert_code(1);
    assert_eq!(out.json()["hard_bounces"], 1, "{}", out.stdout);
    assert!(out.stderr.contains("failed"), "{}", out.stderr);
    assert!(!out.stderr.contains("bob@example.com"), "{}", out.stderr);
    // The outbox row keeps the server's reply.
    let error: String = one(&ws, "SELECT last_error FROM outbox");
    assert!(error.contains("<bob@example.com>: no such user"), "{error}");
}

#[test]
fn unknown_and_failed_emails_are_retried_and_cancelled_in_bulk() {
    // Both emails are handed over and never answered: unknown.
    let sink = SmtpSink::start(Script::accept_all().drop_after_data(2)).unwrap();
    let (ws, _) = workspace(&sink, "");
    let (_, report) = send(&ws, SEND);
    assert_eq!(report["unknown"], 2, "{report}");

    let out = run(&ws, &["outbox", "retry", "--state", "queued"]);
    out.assert_code(2);
    out.assert_stderr_contains("only unknown or failed");
    let out = run(
        &ws,
        &["outbox", "retry", "--state", "unknown", "--rule", "other"],
    );
    out.assert_code(0);
    out.assert_stdout_contains("0 unknown email(s) queued again");
    let out = run(
        &ws,
        &[
            "outbox",
            "retry",
            "--state",
            "unknown",
            "--since",
            "2025-06-01",
            "--json",
        ],
    );
    out.assert_code(0);
    assert_eq!(out.json()["retried"], 2, "{}", out.stdout);
    assert_eq!(
        ws.count("SELECT count(*) FROM outbox WHERE state = 'queued'"),
        2
    );
    // Due now (the real clock). Sent by a send at the test's own time, where the follow-ups are
    // still fresh (at the real clock, years later, the delivery gate cancels them as stale).
    rusqlite::Connection::open(ws.path("tiercare.db"))
        .unwrap()
        .execute_batch("UPDATE outbox SET due_at = 0")
        .unwrap();
    let (_, report) = send(&ws, SEND);
    assert_eq!(report["sent"], 2, "{report}");

    // Failed ones, cancelled in bulk.
    rusqlite::Connection::open(ws.path("tiercare.db"))
        .unwrap()
        .execute_batch("UPDATE outbox SET state = 'failed', sent_at = NULL")
        .unwrap();
    let out = run(
        &ws,
        &["outbox", "cancel", "--state", "failed", "--rule", "hello"],
    );
    out.assert_code(0);
    out.assert_stdout_contains("2 failed email(s) cancelled");
    assert_eq!(
        ws.count("SELECT count(*) FROM outbox WHERE state = 'cancelled'"),
        2
    );
    // The single-id forms still work, and an id or a state is required.
    run(&ws, &["outbox", "retry", "1"]).assert_code(0);
    run(&ws, &["outbox", "retry"]).assert_code(2);
}
