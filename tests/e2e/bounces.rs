//! End-to-end tests of bounces and replies: care emails sent through a real SMTP server on
//! 127.0.0.1 (smtp-sink) with VERP envelope senders, delivery status notifications (built
//! by hand per RFC 3464) piped into `tiercare inbound` as a mail system would, soft bounces
//! counted to the limit, auto-replies and forged VERP addresses suppressing nobody, mailto
//! unsubscribes, a `5xx` after DATA, and the exit codes a mail system understands.

use crate::common;

use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

use common::{Run, Workspace, command_in, followups_record_json};
use smtp_sink::{Received, Script, SmtpSink};

const FROM: &str = "2025-06-02T00:00:00Z";
const UNTIL: &str = "2025-06-03T00:00:00Z";
const SEND: &str = "2025-06-03T00:00:00Z";
const NEXT_UNTIL: &str = "2025-06-04T00:00:00Z";
const NEXT_SEND: &str = "2025-06-04T00:00:00Z";

const SECRET_ENV: &str = "TIERCARE_TEST_WORKSPACE_SECRET";
const SECRET: &str = "a test secret that is long enough";

const WAIT: Duration = Duration::from_secs(10);

const RULES: &str = "\
followups:
  - id: hello
    tiers: [A, B, C]
    cron: \"0 10 * * *\"
    email: { template: hello }
";

const TEMPLATE: &str = "subject: Hello {{ customer.name }}\n--- text\nDear {{ customer.name }}\n";

const CUSTOMERS: &str = "\
customer_id,name,email,consent_email
C1,Bob,bob@example.com,true
C2,Eve,eve@example.com,true
";

fn config(port: u16, extra: &str) -> String {
    format!(
        "[workspace]\ntimezone = \"UTC\"\n\n[mail]\ntransport = \"smtp\"\n\
         from = \"Care Team <care@shop.example>\"\n\
         bounce_address = \"bounces@shop.example\"\n\
         unsubscribe_mailto = \"unsubscribe@shop.example\"\n\
         unsubscribe_url = \"https://shop.example/unsubscribe\"\n\
         unsubscribe_secret_env = \"{SECRET_ENV}\"\n\n\
         [mail.smtp]\nhost = \"127.0.0.1\"\nport = {port}\nsecurity = \"none\"\n\
         timeout_seconds = 2\n{extra}"
    )
}

fn run(ws: &Workspace, args: &[&str]) -> Run {
    Run::of(command_in(ws.root()).args(args).env(SECRET_ENV, SECRET))
}

/// Pipes `message` into `tiercare inbound --json` as a mail system does.
fn inbound(ws: &Workspace, message: &str, extra: &[&str]) -> Run {
    let mut child = command_in(ws.root())
        .args(["inbound", "--json", "--at", SEND])
        .args(extra)
        .env(SECRET_ENV, SECRET)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(message.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let run = Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    };
    // Logged at info by default (a mail system's log is all an operator sees), and no address
    // or server words in it.
    assert!(
        run.code != 0 || run.stderr.contains("INFO") || run.stderr.contains("WARN"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("bob@example.com"), "{}", run.stderr);
    run
}

/// A workspace sending to `sink`, customers imported and assessed, the day's emails recorded.
fn workspace(sink: &SmtpSink, extra: &str) -> Workspace {
    let ws = Workspace::new();
    ws.write("tiercare.toml", &config(sink.port(), extra));
    let customers = ws.write("customers.csv", CUSTOMERS);
    run(&ws, &["import", "customers", &customers]).assert_code(0);
    run(&ws, &["assess", "--at", FROM]).assert_code(0);
    ws.write("rules/followups.yaml", RULES);
    ws.write("templates/hello.eml.j2", TEMPLATE);
    run(&ws, &followups_record_json(FROM, UNTIL)).assert_code(0);
    ws
}

fn send(ws: &Workspace, at: &str) -> serde_json::Value {
    let out = run(ws, &["send", "--at", at, "--json"]);
    assert!(
        out.code == 0 || out.code == 1,
        "{}\n{}",
        out.stdout,
        out.stderr
    );
    out.json()
}

fn one<T: rusqlite::types::FromSql>(ws: &Workspace, sql: &str) -> T {
    rusqlite::Connection::open(ws.path("tiercare.db"))
        .unwrap()
        .query_row(sql, [], |row| row.get(0))
        .unwrap()
}

/// The message the sink received for `to`.
fn received_for<'a>(received: &'a [Received], to: &str) -> &'a Received {
    received
        .iter()
        .find(|r| r.rcpt_to.iter().any(|r| r == to))
        .unwrap_or_else(|| panic!("nothing received for {to}"))
}

/// The Message-ID header of a received message, angle brackets included.
fn message_id(received: &Received) -> String {
    let message = mail_parser::MessageParser::default()
        .parse(&received.data)
        .unwrap();
    format!("<{}>", message.message_id().unwrap())
}

/// A DSN as a receiving MTA sends it back to the envelope sender `to` (RFC 3464): the
/// explanation, the delivery-status fields, and the returned headers.
fn dsn(dsn_id: &str, to: &str, status: &str, original_id: &str) -> String {
    format!(
        "From: Mail Delivery System <MAILER-DAEMON@mx.example.com>\r\n\
         To: {to}\r\n\
         Subject: Undelivered Mail Returned to Sender\r\n\
         Message-ID: {dsn_id}\r\n\
         Auto-Submitted: auto-replied\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=delivery-status;\r\n \
         boundary=\"dsn-boundary\"\r\n\
         \r\n\
         --dsn-boundary\r\n\
         Content-Type: text/plain; charset=us-ascii\r\n\
         \r\n\
         Your message could not be delivered to one or more recipients.\r\n\
         \r\n\
         --dsn-boundary\r\n\
         Content-Type: message/delivery-status\r\n\
         \r\n\
         Reporting-MTA: dns; mx.example.com\r\n\
         Arrival-Date: Tue, 3 Jun 2025 00:00:05 +0000\r\n\
         \r\n\
         Final-Recipient: rfc822; bob@example.com\r\n\
         Original-Recipient: rfc822;bob@example.com\r\n\
         Action: failed\r\n\
         Status: {status}\r\n\
         Remote-MTA: dns; mx.example.com\r\n\
         Diagnostic-Code: smtp; 550 {status} <bob@example.com>: Recipient address\r\n \
         rejected\r\n\
         \r\n\
         --dsn-boundary\r\n\
         Content-Type: text/rfc822-headers\r\n\
         \r\n\
         From: Care Team <care@shop.example>\r\n\
         To: Bob <bob@example.com>\r\n\
         Subject: Hello Bob\r\n\
         Message-ID: {original_id}\r\n\
         \r\n\
         --dsn-boundary--\r\n"
    )
}

/// Sends the day's emails and returns the received messages and bob's VERP envelope sender.
fn send_day_one(sink: &SmtpSink, ws: &Workspace) -> (Vec<Received>, String) {
    let report = send(ws, SEND);
    assert_eq!(report["sent"], 2, "{report}");
    let received = sink.wait_for(2, WAIT);
    let verp = received_for(&received, "bob@example.com").mail_from.clone();
    (received, verp)
}

fn suppressed(ws: &Workspace, reason: &str) -> i64 {
    ws.count(&format!(
        "SELECT count(*) FROM suppressions WHERE reason = '{reason}'"
    ))
}

#[test]
fn verp_senders_name_each_email_and_a_piped_dsn_suppresses_so_the_next_send_skips_it() {
    let sink = SmtpSink::start(Script::accept_all()).unwrap();
    let ws = workspace(&sink, "");
    let (received, verp) = send_day_one(&sink, &ws);
    // Server side: each envelope sender is the email's own signed VERP address; the From
    // header is unchanged.
    let bob_id: i64 = one(
        &ws,
        "SELECT o.id FROM outbox o WHERE o.to_address = 'bob@example.com'",
    );
    let eve_id: i64 = one(
        &ws,
        "SELECT o.id FROM outbox o WHERE o.to_address = 'eve@example.com'",
    );
    assert!(verp.starts_with(&format!("bounces+{bob_id}.")), "{verp}");
    assert!(verp.ends_with("@shop.example"), "{verp}");
    let eve = &received_for(&received, "eve@example.com").mail_from;
    assert!(eve.starts_with(&format!("bounces+{eve_id}.")), "{eve}");
    let bob = received_for(&received, "bob@example.com");
    let raw = String::from_utf8_lossy(&bob.data);
    assert!(
        raw.contains("From: \"Care Team\" <care@shop.example>")
            || raw.contains("From: Care Team <care@shop.example>"),
        "{raw}"
    );

    // The relay's DSN for bob's email, an hour later, piped in.
    let out = inbound(
        &ws,
        &dsn("<dsn-1@mx.example.com>", &verp, "5.1.1", &message_id(bob)),
        &[],
    );
    out.assert_code(0);
    let outcome = out.json();
    assert_eq!(outcome["kind"], "bounce", "{outcome}");
    assert_eq!(outcome["outbox_id"], bob_id, "{outcome}");
    assert_eq!(outcome["suppressed"], "hard_bounce", "{outcome}");
    let kind: String = one(
        &ws,
        &format!("SELECT bounce_kind FROM outbox WHERE id = {bob_id}"),
    );
    assert_eq!(kind, "hard");
    assert_eq!(suppressed(&ws, "hard_bounce"), 1);
    // `outbox` shows it.
    let list = run(&ws, &["outbox"]);
    list.assert_stdout_contains("bounced hard 5.1.1");

    // The next day: bob's email is suppressed, eve's goes out.
    run(&ws, &followups_record_json(UNTIL, NEXT_UNTIL)).assert_code(0);
    let report = send(&ws, NEXT_SEND);
    assert_eq!(
        (report["sent"].as_u64(), report["suppressed"].as_u64()),
        (Some(1), Some(1)),
        "{report}"
    );
    let received = sink.wait_for(3, WAIT);
    assert_eq!(received[2].rcpt_to, ["eve@example.com"]);
}

#[test]
fn soft_bounces_suppress_only_at_the_third_and_a_repeated_dsn_counts_once() {
    let sink = SmtpSink::start(Script::accept_all()).unwrap();
    let ws = workspace(&sink, "");
    let (received, verp) = send_day_one(&sink, &ws);
    let original = message_id(received_for(&received, "bob@example.com"));
    for (n, id) in [(1, "<soft-1@mx>"), (2, "<soft-2@mx>")] {
        let out = inbound(&ws, &dsn(id, &verp, "4.2.2", &original), &[]);
        out.assert_code(0);
        assert_eq!(out.json()["bounce"], "soft");
        assert!(
            out.json()["suppressed"].is_null(),
            "soft bounce {n}: {}",
            out.stdout
        );
        assert_eq!(
            ws.count("SELECT count(*) FROM suppressions"),
            0,
            "after soft bounce {n}"
        );
    }
    // The second DSN delivered again (a mail system retrying) is not a third bounce.
    let again = inbound(&ws, &dsn("<soft-2@mx>", &verp, "4.2.2", &original), &[]);
    assert_eq!(again.json()["duplicate"], true, "{}", again.stdout);
    assert_eq!(ws.count("SELECT count(*) FROM suppressions"), 0);
    let third = inbound(&ws, &dsn("<soft-3@mx>", &verp, "4.2.2", &original), &[]);
    assert_eq!(
        third.json()["suppressed"],
        "soft_bounces",
        "{}",
        third.stdout
    );
    assert_eq!(suppressed(&ws, "soft_bounces"), 1);
    assert_eq!(
        ws.count("SELECT count(*) FROM bounces WHERE kind = 'soft'"),
        3
    );
}

#[test]
fn a_forged_verp_mac_and_an_auto_reply_suppress_nobody() {
    let sink = SmtpSink::start(Script::accept_all()).unwrap();
    let ws = workspace(&sink, "");
    let (received, verp) = send_day_one(&sink, &ws);
    let original = message_id(received_for(&received, "bob@example.com"));
    // The right id with a MAC that is not ours, and the real Message-ID returned: nothing.
    let (id_part, _) = verp.split_once('.').unwrap();
    let forged = format!("{id_part}.0123456789abcdef@shop.example");
    let out = inbound(&ws, &dsn("<forged@mx>", &forged, "5.1.1", &original), &[]);
    out.assert_code(0);
    assert_eq!(out.json()["kind"], "ignored", "{}", out.stdout);
    assert_eq!(ws.count("SELECT count(*) FROM bounces"), 0);

    // A vacation reply to the VERP address, and one to the unsubscribe address whose
    // subject quotes "unsubscribe": recorded, never an unsubscribe.
    for (to, subject) in [
        (verp.as_str(), "Out of Office: back on Monday"),
        ("unsubscribe@shop.example", "Automatic reply: unsubscribe"),
    ] {
        let reply = format!(
            "From: Bob <bob@example.com>\r\nTo: {to}\r\nSubject: {subject}\r\n\
             Auto-Submitted: auto-replied\r\nX-Autoreply: yes\r\nMessage-ID: <ooo@example.com>\r\n\
             \r\nI am away until Monday.\r\nunsubscribe\r\n"
        );
        let out = inbound(&ws, &reply, &[]);
        out.assert_code(0);
        assert_eq!(out.json()["kind"], "auto_reply", "{}", out.stdout);
    }
    assert_eq!(ws.count("SELECT count(*) FROM suppressions"), 0);
    assert_eq!(ws.count("SELECT count(*) FROM bounces"), 0);
    // Not a message at all: accepted and ignored.
    let out = inbound(&ws, "\u{0}\u{1}garbage", &[]);
    out.assert_code(0);
}

#[test]
fn mailto_unsubscribes_verify_a_token_or_take_the_sender() {
    let sink = SmtpSink::start(Script::accept_all()).unwrap();
    let ws = workspace(&sink, "");
    let (received, _) = send_day_one(&sink, &ws);
    let message = mail_parser::MessageParser::default()
        .parse(&received_for(&received, "bob@example.com").data)
        .unwrap();
    let links = message.header_raw("List-Unsubscribe").unwrap().to_owned();
    let token = links
        .split("subject=unsubscribe%20")
        .nth(1)
        .and_then(|rest| rest.split('>').next())
        .unwrap()
        .to_owned();
    // Sent from another mailbox (a forward): the token names bob.
    let request = format!(
        "From: someone@forwarder.example\r\nTo: unsubscribe@shop.example\r\n\
         Subject: unsubscribe {token}\r\n\r\n"
    );
    let out = inbound(&ws, &request, &["--recipient", "unsubscribe@shop.example"]);
    assert_eq!(
        (
            out.json()["kind"].as_str(),
            out.json()["by_token"].as_bool()
        ),
        (Some("unsubscribe"), Some(true)),
        "{}",
        out.stdout
    );
    let bob: i64 = one(
        &ws,
        "SELECT count(*) FROM suppressions WHERE reason = 'unsubscribe'",
    );
    assert_eq!(bob, 1);
    // No token: the sender's address.
    let request = "From: Eve <eve@example.com>\r\nTo: unsubscribe@shop.example\r\n\
                   Subject: please unsubscribe me\r\n\r\nthanks\r\n";
    let out = inbound(&ws, request, &[]);
    assert_eq!(out.json()["by_token"], false, "{}", out.stdout);
    run(&ws, &followups_record_json(UNTIL, NEXT_UNTIL)).assert_code(0);
    let report = send(&ws, NEXT_SEND);
    assert_eq!(
        (report["sent"].as_u64(), report["suppressed"].as_u64()),
        (Some(0), Some(2)),
        "{report}"
    );
}

#[test]
fn a_5xx_after_data_is_a_hard_bounce_recorded_and_suppressed() {
    let sink = SmtpSink::start(Script::accept_all().reject_after_data("bob@example.com")).unwrap();
    let ws = workspace(&sink, "");
    let report = send(&ws, SEND);
    assert_eq!(report["sent"], 1, "{report}");
    assert_eq!(report["hard_bounces"], 1, "{report}");
    let (kind, status, source): (String, String, String) =
        rusqlite::Connection::open(ws.path("tiercare.db"))
            .unwrap()
            .query_row("SELECT kind, status, source FROM bounces", [], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?))
            })
            .unwrap();
    assert_eq!(
        (kind.as_str(), status.as_str(), source.as_str()),
        ("hard", "5.1.1", "smtp")
    );
    assert_eq!(suppressed(&ws, "hard_bounce"), 1);
    let bounced: String = one(&ws, "SELECT state FROM outbox WHERE bounce_kind = 'hard'");
    assert_eq!(bounced, "failed");
}

#[test]
fn a_busy_database_is_a_temporary_failure_for_the_mail_system() {
    let sink = SmtpSink::start(Script::accept_all()).unwrap();
    let ws = workspace(&sink, "");
    let (received, verp) = send_day_one(&sink, &ws);
    let original = message_id(received_for(&received, "bob@example.com"));
    let config = std::fs::read_to_string(ws.path("tiercare.toml")).unwrap();
    std::fs::write(
        ws.path("tiercare.toml"),
        config.replace(
            "[workspace]",
            "[database]\nbusy_timeout_ms = 50\n\n[workspace]",
        ),
    )
    .unwrap();
    let holder = rusqlite::Connection::open(ws.path("tiercare.db")).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    let out = inbound(&ws, &dsn("<busy@mx>", &verp, "5.1.1", &original), &[]);
    out.assert_code(75);
    holder.execute_batch("ROLLBACK").unwrap();
    // Delivered again later, it is recorded.
    inbound(&ws, &dsn("<busy@mx>", &verp, "5.1.1", &original), &[]).assert_code(0);
    assert_eq!(suppressed(&ws, "hard_bounce"), 1);
}

#[test]
fn the_folder_transport_records_the_verp_envelope_as_return_path() {
    let dir = common::fast_tempdir();
    let root = common::mail_workspace(dir.path(), 1, None);
    let config = std::fs::read_to_string(root.join("tiercare.toml")).unwrap();
    std::fs::write(
        root.join("tiercare.toml"),
        config.replace(
            "transport = \"folder\"",
            &format!("transport = \"folder\"\nbounce_address = \"bounces@shop.example\"\nunsubscribe_secret_env = \"{SECRET_ENV}\""),
        ),
    )
    .unwrap();
    Run::of(command_in(&root).args(["send"]).env(SECRET_ENV, SECRET)).assert_code(0);
    let file = std::fs::read_dir(root.join("mail"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| path.extension().is_some_and(|e| e == "eml"))
        .unwrap();
    let text = std::fs::read_to_string(file).unwrap();
    assert!(text.starts_with("Return-Path: <bounces+1."), "{text}");
    // Without the secret, sending refuses to start rather than sending unsigned.
    let out = Run::of(command_in(&root).args(["send"]));
    out.assert_code(2);
    out.assert_stderr_contains(SECRET_ENV);
}

#[test]
fn without_a_verp_address_the_returned_message_id_names_the_email() {
    let sink = SmtpSink::start(Script::accept_all()).unwrap();
    let ws = workspace(&sink, "");
    let (received, _) = send_day_one(&sink, &ws);
    let eve = received_for(&received, "eve@example.com");
    // A relay that reports to the From address instead of the envelope sender.
    let out = inbound(
        &ws,
        &dsn(
            "<dsn-eve@mx>",
            "care@shop.example",
            "5.2.1",
            &message_id(eve),
        ),
        &[],
    );
    out.assert_code(0);
    let eve_id: i64 = one(
        &ws,
        "SELECT id FROM outbox WHERE to_address = 'eve@example.com'",
    );
    assert_eq!(out.json()["outbox_id"], eve_id, "{}", out.stdout);
    assert_eq!(out.json()["suppressed"], "hard_bounce", "{}", out.stdout);
    // A DSN for a Message-ID tiercare never sent changes nothing.
    let out = inbound(
        &ws,
        &dsn(
            "<dsn-x@mx>",
            "care@shop.example",
            "5.1.1",
            "<someone.else@other.example>",
        ),
        &[],
    );
    assert_eq!(out.json()["kind"], "ignored", "{}", out.stdout);
    assert_eq!(ws.count("SELECT count(*) FROM suppressions"), 1);
}
