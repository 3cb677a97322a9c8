//! Mail against real parts: every SMTP test talks to a real [`SmtpSink`] on 127.0.0.1 and
//! checks what it received (parsed back with mail-parser); the folder tests write real files.

use std::collections::HashMap;
use std::fs;
use std::time::Duration;

#[path = "support/queued_outbox.rs"]
mod queued_outbox;

use chrono::{DateTime, Utc};
use mail_parser::{MessageParser, MimeHeaders};
use smtp_sink::{Received, Script, SmtpSink};
use tiercare_scheduler::config::SmtpSecurity;
use tiercare_scheduler::mail::{
    Address, BuiltMessage, FolderTransport, ListUnsubscribe, MailError, MailTransport,
    OutgoingEmail, SendError, SmtpMailer, SmtpTransportConfig, build,
};

/// Generous: only reached when a test is about to fail.
const WAIT: Duration = Duration::from_secs(10);

fn date() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2025-03-14T09:00:00Z")
        .expect("valid time")
        .with_timezone(&Utc)
}

/// A care email with an HTML part and unsubscribe links; `n` makes the Message-ID unique.
fn care_email(n: u32) -> OutgoingEmail {
    OutgoingEmail {
        message_id: format!("<outbox-{n}.4f2a@tiercare.invalid>"),
        from: Address::named("Kundenpflege Müller & Söhne", "care@shop.example"),
        to: Address::named("Jürgen Groß", "juergen@customer.example"),
        reply_to: Some(Address::new("team@shop.example")),
        subject: "Alles Gute zum Geburtstag, Jürgen! 🎂".to_owned(),
        text: "Hallo Jürgen,\nalles Gute!\n".to_owned(),
        html: Some("<p>Hallo J&uuml;rgen,</p><p>alles Gute!</p>".to_owned()),
        list_unsubscribe: Some(ListUnsubscribe {
            mailto: "mailto:unsubscribe+c42@shop.example?subject=unsubscribe".to_owned(),
            https: Some("https://shop.example/unsubscribe?token=abc123".to_owned()),
        }),
        date: date(),
    }
}

/// A plain ASCII reminder without HTML.
fn reminder(n: u32) -> OutgoingEmail {
    OutgoingEmail {
        message_id: format!("<task-{n}@tiercare.invalid>"),
        from: Address::new("tiercare@shop.example"),
        to: Address::named("Manager", "manager@shop.example"),
        reply_to: None,
        subject: format!("Reminder {n}"),
        text: format!("Call the customer ({n})."),
        html: None,
        list_unsubscribe: None,
        date: date(),
    }
}

fn config(sink: &SmtpSink) -> SmtpTransportConfig {
    SmtpTransportConfig {
        host: "127.0.0.1".to_owned(),
        port: sink.port(),
        security: SmtpSecurity::None,
        username: None,
        password_env: "TIERCARE_TEST_SMTP_PASSWORD".to_owned(),
        timeout: Duration::from_secs(10),
        pool: true,
    }
}

fn no_env(_: &str) -> Option<String> {
    None
}

fn mailer(sink: &SmtpSink) -> SmtpMailer {
    SmtpMailer::new(&config(sink), &no_env).expect("mailer")
}

/// A mailer that gives up on a silent server after half a second (short, yet far above how
/// long the sink takes to answer even on a loaded machine).
fn impatient_mailer(sink: &SmtpSink) -> SmtpMailer {
    let config = SmtpTransportConfig {
        timeout: Duration::from_millis(500),
        ..config(sink)
    };
    SmtpMailer::new(&config, &no_env).expect("mailer")
}

fn built(email: &OutgoingEmail) -> BuiltMessage {
    build(email).expect("message builds")
}

/// The header block of a received message, one entry per (unfolded) header line.
fn header_lines(received: &Received) -> Vec<String> {
    let text = String::from_utf8(received.data.clone()).expect("the wire is ASCII");
    let head = text.split("\r\n\r\n").next().expect("headers").to_owned();
    head.replace("\r\n ", " ")
        .replace("\r\n\t", " ")
        .split("\r\n")
        .map(str::to_owned)
        .collect()
}

fn assert_crlf_only(data: &[u8]) {
    for (i, &b) in data.iter().enumerate() {
        if b == b'\n' {
            assert!(i > 0 && data[i - 1] == b'\r', "bare LF at byte {i}");
        }
        if b == b'\r' {
            assert_eq!(data.get(i + 1), Some(&b'\n'), "bare CR at byte {i}");
        }
    }
}

fn count_commands(sink: &SmtpSink, verb: &str) -> usize {
    sink.commands()
        .iter()
        .filter(|line| line.to_ascii_uppercase().starts_with(verb))
        .count()
}

#[test]
fn a_care_email_arrives_once_with_envelope_and_headers() {
    let sink = SmtpSink::start(Script::accept_all()).expect("sink");
    let mut mailer = mailer(&sink);
    let sent = built(&care_email(1));
    let delivered = mailer.send(&sent).expect("delivered");
    assert!(
        delivered.receipt.starts_with("250 "),
        "{}",
        delivered.receipt
    );
    assert!(!delivered.already_delivered);

    let received = sink.wait_for(1, WAIT);
    assert_eq!(received.len(), 1);
    assert_eq!(count_commands(&sink, "DATA"), 1, "sent once");
    let message = &received[0];
    assert_eq!(message.mail_from, "care@shop.example");
    assert_eq!(message.rcpt_to, ["juergen@customer.example"]);
    assert_eq!(
        message.data,
        sent.raw(),
        "the wire carries exactly the built bytes"
    );
    assert_crlf_only(&message.data);

    let lines = header_lines(message);
    let header = |name: &str| -> Vec<&String> {
        lines
            .iter()
            .filter(|line| {
                line.split_once(':')
                    .is_some_and(|(n, _)| n.eq_ignore_ascii_case(name))
            })
            .collect()
    };
    assert_eq!(
        header("Message-ID"),
        ["Message-ID: <outbox-1.4f2a@tiercare.invalid>"]
    );
    assert_eq!(header("Date"), ["Date: Fri, 14 Mar 2025 09:00:00 +0000"]);
    assert_eq!(
        header("List-Unsubscribe"),
        [
            "List-Unsubscribe: <mailto:unsubscribe+c42@shop.example?subject=unsubscribe>, \
             <https://shop.example/unsubscribe?token=abc123>"
        ]
    );
    assert_eq!(
        header("List-Unsubscribe-Post"),
        ["List-Unsubscribe-Post: List-Unsubscribe=One-Click"]
    );
    assert!(header("Auto-Submitted").is_empty());

    let parsed = MessageParser::default()
        .parse(&message.data)
        .expect("mail-parser accepts the message");
    assert_eq!(parsed.message_id(), Some("outbox-1.4f2a@tiercare.invalid"));
    assert_eq!(
        parsed.date().expect("date").to_timestamp(),
        date().timestamp()
    );
    assert_eq!(
        parsed.subject(),
        Some("Alles Gute zum Geburtstag, Jürgen! 🎂")
    );
    let from = parsed.from().and_then(|from| from.first()).expect("from");
    assert_eq!(from.name(), Some("Kundenpflege Müller & Söhne"));
    assert_eq!(from.address(), Some("care@shop.example"));
    let to = parsed.to().and_then(|to| to.first()).expect("to");
    assert_eq!(to.name(), Some("Jürgen Groß"));
    let reply_to = parsed.reply_to().and_then(|r| r.first()).expect("reply-to");
    assert_eq!(reply_to.address(), Some("team@shop.example"));

    let content_type = parsed.content_type().expect("content type");
    assert_eq!(content_type.ctype(), "multipart");
    assert_eq!(content_type.subtype(), Some("alternative"));
    assert_eq!(
        parsed.body_text(0).as_deref(),
        Some("Hallo Jürgen,\r\nalles Gute!\r\n")
    );
    assert_eq!(
        parsed.body_html(0).as_deref(),
        Some("<p>Hallo J&uuml;rgen,</p><p>alles Gute!</p>")
    );
    let text_part = parsed.text_part(0).expect("text part");
    let html_part = parsed.html_part(0).expect("html part");
    assert!(
        text_part.offset_header < html_part.offset_header,
        "text/plain comes before text/html"
    );
}

#[test]
fn a_message_without_html_is_a_single_text_part() {
    let sink = SmtpSink::start(Script::accept_all()).expect("sink");
    mailer(&sink).send(&built(&reminder(1))).expect("delivered");
    let received = sink.wait_for(1, WAIT);
    let parsed = MessageParser::default()
        .parse(&received[0].data)
        .expect("parses");
    let content_type = parsed.content_type().expect("content type");
    assert_eq!(
        (content_type.ctype(), content_type.subtype()),
        ("text", Some("plain"))
    );
    assert!(
        !header_lines(&received[0])
            .iter()
            .any(|line| line.starts_with("List-Unsubscribe"))
    );
}

#[test]
fn line_breaks_in_a_name_or_subject_inject_nothing() {
    let sink = SmtpSink::start(Script::accept_all()).expect("sink");
    let mut email = reminder(1);
    email.to = Address::named("Bob\r\nBcc: x@example.com", "bob@customer.example");
    email.from = Address::named("Care\nBcc: z@example.com", "care@shop.example");
    email.subject = "Hi\r\nBcc: y@example.com\r\n\r\nbody?".to_owned();
    mailer(&sink).send(&built(&email)).expect("delivered");

    let received = sink.wait_for(1, WAIT);
    assert_eq!(received[0].rcpt_to, ["bob@customer.example"]);
    assert_eq!(count_commands(&sink, "RCPT"), 1, "exactly one RCPT");
    for line in header_lines(&received[0]) {
        assert!(
            !line.to_ascii_lowercase().starts_with("bcc"),
            "injected header: {line}"
        );
    }
    assert_crlf_only(&received[0].data);
    let parsed = MessageParser::default()
        .parse(&received[0].data)
        .expect("parses");
    assert!(parsed.bcc().is_none());
    assert_eq!(parsed.subject(), Some("Hi  Bcc: y@example.com    body?"));
    let to = parsed.to().and_then(|to| to.first()).expect("to");
    assert_eq!(to.name(), Some("Bob  Bcc: x@example.com"));
    assert_eq!(
        parsed.body_text(0).as_deref(),
        Some("Call the customer (1).\r\n")
    );
}

#[test]
fn an_address_with_a_line_break_is_refused_before_anything_is_sent() {
    let mut email = reminder(1);
    email.to.email = "bob@customer.example\r\nRCPT TO:<x@example.com>".to_owned();
    match build(&email) {
        Err(MailError::InvalidAddress { address, reason }) => {
            assert_eq!(address, email.to.email);
            assert!(reason.contains("control"), "{reason}");
        }
        other => panic!("expected InvalidAddress, got {other:?}"),
    }
    email.to.email = String::new();
    assert!(matches!(
        build(&email),
        Err(MailError::InvalidAddress { .. })
    ));
}

#[test]
fn bodies_arrive_literally_with_crlf_line_endings() {
    // A single text part ends with a line break on the wire (lettre ends the body with CRLF).
    let sink = SmtpSink::start(Script::accept_all()).expect("sink");
    let mut email = reminder(1);
    // HTML escaping is the template layer's job: a text body is sent as it is.
    email.text = "Note: <script>alert(1)</script>\nline two\rline three\n.\n..dots".to_owned();
    mailer(&sink).send(&built(&email)).expect("delivered");

    let received = sink.wait_for(1, WAIT);
    let data = &received[0].data;
    assert_crlf_only(data);
    let text = String::from_utf8_lossy(data);
    assert!(
        text.contains("Note: <script>alert(1)</script>\r\nline two\r\nline three\r\n.\r\n..dots")
    );
    let parsed = MessageParser::default().parse(data).expect("parses");
    assert_eq!(
        parsed.body_text(0).as_deref(),
        Some("Note: <script>alert(1)</script>\r\nline two\r\nline three\r\n.\r\n..dots\r\n")
    );
}

#[test]
fn an_internationalised_address_is_sent_with_smtputf8() {
    let sink = SmtpSink::start(Script::accept_all()).expect("sink");
    let mut email = reminder(1);
    email.to = Address::new("jürgen@customer.example");
    mailer(&sink).send(&built(&email)).expect("delivered");
    let received = sink.wait_for(1, WAIT);
    assert_eq!(received[0].rcpt_to, ["jürgen@customer.example"]);
    assert!(
        sink.commands()
            .iter()
            .any(|line| line.starts_with("MAIL FROM:") && line.contains("SMTPUTF8"))
    );
}

#[test]
fn a_refused_connection_is_transient_and_a_retry_delivers() {
    let sink = SmtpSink::start(Script::down()).expect("sink");
    let mut mailer = mailer(&sink);
    let message = built(&reminder(1));
    match mailer.send(&message) {
        Err(SendError::Transient { code: None, .. }) => {}
        other => panic!("expected Transient, got {other:?}"),
    }
    sink.set_script(Script::accept_all()).expect("back up");
    mailer.send(&message).expect("delivered on retry");
    assert_eq!(sink.wait_for(1, WAIT).len(), 1);
}

#[test]
fn a_421_greeting_is_transient_with_its_code() {
    let sink = SmtpSink::start(Script::accept_all().greet_421(1)).expect("sink");
    let mut mailer = mailer(&sink);
    let message = built(&reminder(1));
    match mailer.send(&message) {
        Err(
            error @ SendError::Transient {
                code: Some(421), ..
            },
        ) => {
            assert_eq!(error.code(), Some(421));
        }
        other => panic!("expected Transient 421, got {other:?}"),
    }
    mailer.send(&message).expect("delivered on retry");
}

#[test]
fn a_451_on_rcpt_is_transient_and_the_connection_is_kept() {
    let sink = SmtpSink::start(Script::accept_all().rcpt_451(1)).expect("sink");
    let mut mailer = mailer(&sink);
    let message = built(&reminder(1));
    match mailer.send(&message) {
        Err(SendError::Transient {
            code: Some(451), ..
        }) => {}
        other => panic!("expected Transient 451, got {other:?}"),
    }
    assert_eq!(
        count_commands(&sink, "DATA"),
        0,
        "no content after a refused RCPT"
    );
    mailer.send(&message).expect("delivered on retry");
    assert_eq!(
        sink.connections(),
        1,
        "the transaction was reset, not the connection"
    );
    assert_eq!(count_commands(&sink, "RSET"), 1);
}

#[test]
fn a_451_after_data_is_transient() {
    let sink = SmtpSink::start(Script::accept_all().data_451(1)).expect("sink");
    let mut mailer = mailer(&sink);
    let message = built(&reminder(1));
    match mailer.send(&message) {
        Err(SendError::Transient {
            code: Some(451), ..
        }) => {}
        other => panic!("expected Transient 451, got {other:?}"),
    }
    assert!(sink.received().is_empty());
    mailer.send(&message).expect("delivered on retry");
    assert_eq!(sink.wait_for(1, WAIT).len(), 1);
}

#[test]
fn a_550_on_rcpt_is_a_permanent_hard_bounce() {
    let sink =
        SmtpSink::start(Script::accept_all().reject_rcpt("manager@shop.example")).expect("sink");
    match mailer(&sink).send(&built(&reminder(1))) {
        Err(SendError::Permanent {
            code: Some(550),
            hard_bounce: true,
            message,
        }) => assert!(message.contains("no such user"), "{message}"),
        other => panic!("expected a hard bounce, got {other:?}"),
    }
    assert_eq!(count_commands(&sink, "DATA"), 0);
}

#[test]
fn a_timeout_before_the_content_is_transient() {
    let sink = SmtpSink::start(Script::accept_all().stall_on_rcpt(1)).expect("sink");
    let mut mailer = impatient_mailer(&sink);
    let message = built(&reminder(1));
    match mailer.send(&message) {
        Err(SendError::Transient { code: None, .. }) => {}
        other => panic!("expected Transient, got {other:?}"),
    }
    assert!(sink.unanswered().is_empty(), "the content was never sent");
    mailer.send(&message).expect("delivered on retry");
}

#[test]
fn a_stall_after_the_content_is_unknown() {
    let sink = SmtpSink::start(Script::accept_all().stall_after_data(1)).expect("sink");
    let mut mailer = impatient_mailer(&sink);
    let message = built(&reminder(1));
    match mailer.send(&message) {
        Err(SendError::Unknown { message }) => assert!(message.contains("in time"), "{message}"),
        other => panic!("expected Unknown, got {other:?}"),
    }
    let unanswered = sink.wait_for_unanswered(1, WAIT);
    assert_eq!(unanswered.len(), 1, "the server did get the whole message");
    assert_eq!(unanswered[0].data, message.raw(), "exactly the built bytes");
    // The broken connection is not reused.
    mailer
        .send(&message)
        .expect("delivered on a new connection");
    assert_eq!(sink.connections(), 2);
}

#[test]
fn a_connection_dropped_after_the_content_is_unknown() {
    let sink = SmtpSink::start(Script::accept_all().drop_after_data(1)).expect("sink");
    let mut mailer = mailer(&sink);
    match mailer.send(&built(&reminder(1))) {
        Err(SendError::Unknown { .. }) => {}
        other => panic!("expected Unknown, got {other:?}"),
    }
    assert_eq!(sink.wait_for_unanswered(1, WAIT).len(), 1);
}

#[test]
fn auth_uses_the_password_from_the_environment() {
    let sink = SmtpSink::start(Script::accept_all().require_auth("care", "s3cret-from-env"))
        .expect("sink");
    let env: HashMap<&str, &str> = [("TIERCARE_TEST_SMTP_PASSWORD", "s3cret-from-env")].into();
    let lookup = |name: &str| env.get(name).map(|value| (*value).to_owned());
    let config = SmtpTransportConfig {
        username: Some("care".to_owned()),
        ..config(&sink)
    };
    let mut mailer = SmtpMailer::new(&config, &lookup).expect("mailer");
    let debug = format!("{mailer:?}");
    assert!(!debug.contains("s3cret"), "{debug}");
    assert!(debug.contains("<redacted>"), "{debug}");

    mailer.send(&built(&reminder(1))).expect("delivered");
    let logins = sink.logins();
    assert_eq!(logins.len(), 1);
    assert_eq!(logins[0].username, "care");
    assert_eq!(logins[0].password, "s3cret-from-env");
    assert_eq!(sink.wait_for(1, WAIT).len(), 1);
}

#[test]
fn a_missing_password_variable_is_named_in_the_error() {
    let sink = SmtpSink::start(Script::accept_all()).expect("sink");
    let config = SmtpTransportConfig {
        username: Some("care".to_owned()),
        ..config(&sink)
    };
    let error = SmtpMailer::new(&config, &no_env).expect_err("no password");
    assert!(
        matches!(&error, MailError::MissingPassword { variable } if variable == "TIERCARE_TEST_SMTP_PASSWORD")
    );
    assert!(error.to_string().contains("TIERCARE_TEST_SMTP_PASSWORD"));
    assert_eq!(sink.connections(), 0);
}

#[test]
fn a_refused_password_is_transient_not_a_failed_message() {
    let sink = SmtpSink::start(Script::accept_all().require_auth("care", "right")).expect("sink");
    let config = SmtpTransportConfig {
        username: Some("care".to_owned()),
        ..config(&sink)
    };
    let mut mailer = SmtpMailer::new(&config, &|_| Some("wrong".to_owned())).expect("mailer");
    match mailer.send(&built(&reminder(1))) {
        Err(SendError::Transient {
            code: Some(535), ..
        }) => {}
        other => panic!("expected Transient 535, got {other:?}"),
    }
    assert_eq!(count_commands(&sink, "MAIL"), 0);
}

#[test]
fn fifty_messages_share_one_pooled_connection() {
    let sink = SmtpSink::start(Script::accept_all()).expect("sink");
    let mut mailer = mailer(&sink);
    for n in 0..50 {
        mailer.send(&built(&reminder(n))).expect("delivered");
    }
    let received = sink.wait_for(50, WAIT);
    assert_eq!(received.len(), 50);
    assert_eq!(sink.connections(), 1);
}

#[test]
fn without_pooling_each_message_has_its_own_connection() {
    let sink = SmtpSink::start(Script::accept_all()).expect("sink");
    let config = SmtpTransportConfig {
        pool: false,
        ..config(&sink)
    };
    let mut mailer = SmtpMailer::new(&config, &no_env).expect("mailer");
    for n in 0..3 {
        mailer.send(&built(&reminder(n))).expect("delivered");
    }
    assert_eq!(sink.wait_for(3, WAIT).len(), 3);
    assert_eq!(sink.connections(), 3);
    assert_eq!(count_commands(&sink, "QUIT"), 3);
}

#[test]
fn a_kept_connection_closed_by_the_server_is_replaced_without_an_error() {
    let sink = SmtpSink::start(Script::accept_all()).expect("sink");
    let mut mailer = mailer(&sink);
    mailer.send(&built(&reminder(1))).expect("delivered");
    assert_eq!(sink.disconnect_all(), 1);
    mailer
        .send(&built(&reminder(2)))
        .expect("delivered on a new connection");
    assert_eq!(sink.wait_for(2, WAIT).len(), 2);
    assert_eq!(sink.connections(), 2);
}

#[test]
fn the_folder_transport_writes_one_file_and_never_duplicates() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut folder = FolderTransport::new(dir.path().join("mail")).expect("folder");
    let message = built(&care_email(7));

    let first = folder.send(&message).expect("written");
    assert!(!first.already_delivered);
    let path = folder.path_for(message.message_id());
    assert_eq!(first.receipt, path.display().to_string());
    assert_eq!(
        path.file_name().and_then(|name| name.to_str()),
        Some("outbox-7.4f2a@tiercare.invalid.eml")
    );
    assert_eq!(fs::read(&path).expect("file"), message.raw());

    let second = folder.send(&message).expect("resend succeeds");
    assert!(second.already_delivered);
    let files: Vec<_> = fs::read_dir(folder.dir())
        .expect("list")
        .map(|entry| entry.expect("entry").file_name())
        .collect();
    assert_eq!(files.len(), 1, "one file, no temporary left: {files:?}");

    let data = fs::read(&path).expect("file");
    let parsed = MessageParser::default().parse(&data).expect("parses");
    assert_eq!(parsed.message_id(), Some("outbox-7.4f2a@tiercare.invalid"));
    assert_eq!(
        parsed.subject(),
        Some("Alles Gute zum Geburtstag, Jürgen! 🎂")
    );
    assert_eq!(folder.name(), "folder");
}

#[test]
fn the_folder_transport_reports_an_unwritable_folder_as_transient() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut folder = FolderTransport::new(dir.path().join("mail")).expect("folder");
    fs::remove_dir(folder.dir()).expect("remove the folder behind its back");
    match folder.send(&built(&reminder(1))) {
        Err(SendError::Transient { code: None, .. }) => {}
        other => panic!("expected Transient, got {other:?}"),
    }
}

// --- The send loop: deliver_due against the store and real transports ----------------------

mod send_loop {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    use tiercare_scheduler::config::{LimitsConfig, OutboxConfig};
    use tiercare_scheduler::mail::Delivered;
    use tiercare_scheduler::outbox::deliver_due;
    use tiercare_store::{OutboxState, Store};

    use crate::queued_outbox::{NOW, queued_store, send_settings as settings};

    /// A stop flag never raised.
    static NO_STOP: AtomicBool = AtomicBool::new(false);

    /// A store with `n` consenting customers, each with one email queued, due at NOW.
    fn queued(n: usize) -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = queued_store(&dir.path().join("tiercare.db"), n, "Hi", "<p>Hi</p>");
        (dir, store)
    }

    fn smtp(sink: &SmtpSink, n: usize) -> Vec<Box<dyn MailTransport>> {
        (0..n)
            .map(|_| Box::new(mailer(sink)) as Box<dyn MailTransport>)
            .collect()
    }

    /// A transport that raises `stop` once it has sent `after` messages (counted across
    /// clones), as a signal arriving mid-backlog would.
    struct StopsAfter {
        inner: FolderTransport,
        sent: Arc<AtomicUsize>,
        after: usize,
        stop: Arc<AtomicBool>,
    }

    impl MailTransport for StopsAfter {
        fn send(&mut self, message: &BuiltMessage) -> Result<Delivered, SendError> {
            let delivered = self.inner.send(message);
            if self.sent.fetch_add(1, Ordering::SeqCst) + 1 >= self.after {
                self.stop.store(true, Ordering::SeqCst);
            }
            delivered
        }

        fn name(&self) -> &'static str {
            "folder"
        }
    }

    /// A real transport, counting the messages in flight at once across all its clones.
    struct Counting {
        inner: Box<dyn MailTransport>,
        in_flight: Arc<AtomicUsize>,
        most: Arc<AtomicUsize>,
    }

    impl MailTransport for Counting {
        fn send(&mut self, message: &BuiltMessage) -> Result<Delivered, SendError> {
            let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.most.fetch_max(now, Ordering::SeqCst);
            let delivered = self.inner.send(message);
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            delivered
        }

        fn name(&self) -> &'static str {
            "smtp"
        }
    }

    #[test]
    fn a_domains_concurrency_limit_holds_over_many_connections() {
        // A slow server (30 ms per answer), so that three connections overlap when allowed.
        let sink =
            SmtpSink::start(Script::accept_all().answer_delay(Duration::from_millis(30))).unwrap();
        for limit in [None, Some(1)] {
            let (_dir, mut store) = queued(6);
            let in_flight = Arc::new(AtomicUsize::new(0));
            let most = Arc::new(AtomicUsize::new(0));
            let mut transports: Vec<Box<dyn MailTransport>> = smtp(&sink, 3)
                .into_iter()
                .map(|inner| {
                    Box::new(Counting {
                        inner,
                        in_flight: Arc::clone(&in_flight),
                        most: Arc::clone(&most),
                    }) as Box<dyn MailTransport>
                })
                .collect();
            let mut settings = settings(LimitsConfig::default(), OutboxConfig::default());
            if let Some(limit) = limit {
                settings.domains.insert(
                    "example.com".to_owned(),
                    tiercare_scheduler::mail::pacing::DomainLimits {
                        concurrency: Some(limit),
                        ..Default::default()
                    },
                );
            }
            let report =
                deliver_due(&mut store, &mut transports, NOW, &settings, &NO_STOP).unwrap();
            assert_eq!(report.sent, 6, "{report:?}");
            let most = most.load(Ordering::SeqCst);
            match limit {
                Some(limit) => assert_eq!(most, limit as usize, "at most {limit} at once"),
                None => assert!(most > 1, "three connections overlap without a limit"),
            }
        }
        assert_eq!(sink.received().len(), 12);
    }

    #[test]
    fn a_raised_stop_flag_releases_the_unsent_claims_on_one_and_many_connections() {
        for connections in [1, 3] {
            let (dir, mut store) = queued(30);
            let stop = Arc::new(AtomicBool::new(false));
            let sent = Arc::new(AtomicUsize::new(0));
            let mut transports: Vec<Box<dyn MailTransport>> = (0..connections)
                .map(|_| {
                    Box::new(StopsAfter {
                        inner: FolderTransport::new(dir.path().join("mail")).unwrap(),
                        sent: Arc::clone(&sent),
                        after: 5,
                        stop: Arc::clone(&stop),
                    }) as Box<dyn MailTransport>
                })
                .collect();
            let outbox = OutboxConfig {
                batch_size: 20,
                ..OutboxConfig::default()
            };
            let settings = settings(LimitsConfig::default(), outbox);
            let report = deliver_due(&mut store, &mut transports, NOW, &settings, &stop).unwrap();
            // Each connection finishes the message it holds; nothing else goes out.
            assert!(report.stopped, "{report:?}");
            assert!(
                (5..5 + connections as u64).contains(&report.sent),
                "{report:?}"
            );
            assert_eq!(report.claimed, 20, "one batch, then the stop: {report:?}");
            assert_eq!(report.released, 20 - report.sent, "{report:?}");
            let (counts, _) = store.outbox_counts().unwrap();
            let count = |state| {
                counts
                    .iter()
                    .find(|(s, _)| *s == state)
                    .map_or(0, |(_, n)| *n)
            };
            assert_eq!(count(OutboxState::Claimed), 0, "{counts:?}");
            assert_eq!(count(OutboxState::Queued), 30 - report.sent, "{counts:?}");
            assert_eq!(
                fs::read_dir(dir.path().join("mail")).unwrap().count() as u64,
                report.sent
            );
            // The next call sends the rest, each once, none attempted twice.
            let rest =
                deliver_due(&mut store, &mut transports[..1], NOW, &settings, &NO_STOP).unwrap();
            assert_eq!(rest.sent + report.sent, 30, "{rest:?}");
            assert_eq!(rest.already_delivered, 0, "{rest:?}");
            assert!(
                store
                    .outbox(None, 100)
                    .unwrap()
                    .iter()
                    .all(|email| email.state == OutboxState::Sent && email.attempts == 1)
            );
        }
    }

    #[test]
    fn parallel_connections_deliver_every_email_exactly_once() {
        let (_dir, mut store) = queued(40);
        let sink = SmtpSink::start(Script::accept_all()).unwrap();
        let mut transports = smtp(&sink, 4);
        let outbox = OutboxConfig {
            batch_size: 7,
            ..OutboxConfig::default()
        };
        let report = deliver_due(
            &mut store,
            &mut transports,
            NOW,
            &settings(LimitsConfig::default(), outbox),
            &NO_STOP,
        )
        .unwrap();
        assert_eq!((report.claimed, report.sent), (40, 40), "{report:?}");
        let received = sink.wait_for(40, WAIT);
        let mut ids: Vec<String> = received
            .iter()
            .map(|r| {
                let message = MessageParser::default().parse(&r.data).unwrap();
                message.message_id().unwrap().to_owned()
            })
            .collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 40, "each message once");
        assert!(
            sink.connections() <= 4,
            "{} connections",
            sink.connections()
        );
        assert!(
            store
                .outbox(None, 100)
                .unwrap()
                .iter()
                .all(|e| e.state == OutboxState::Sent)
        );
    }

    #[test]
    fn rate_limits_leave_the_rest_queued_until_the_window_allows() {
        let (dir, mut store) = queued(5);
        let mut transports: Vec<Box<dyn MailTransport>> = vec![Box::new(
            FolderTransport::new(dir.path().join("mail")).unwrap(),
        )];
        let limits = LimitsConfig {
            per_minute: Some(2),
            per_hour: Some(3),
            per_day: None,
        };
        let settings = settings(limits, OutboxConfig::default());
        let report = deliver_due(&mut store, &mut transports, NOW, &settings, &NO_STOP).unwrap();
        assert_eq!((report.sent, report.rate_limited), (2, 3), "{report:?}");
        let report =
            deliver_due(&mut store, &mut transports, NOW + 30, &settings, &NO_STOP).unwrap();
        assert_eq!(report.sent, 0, "the minute is not over: {report:?}");
        let report =
            deliver_due(&mut store, &mut transports, NOW + 60, &settings, &NO_STOP).unwrap();
        assert_eq!(
            (report.sent, report.rate_limited),
            (1, 2),
            "the hour allows one more: {report:?}"
        );
        let report =
            deliver_due(&mut store, &mut transports, NOW + 3600, &settings, &NO_STOP).unwrap();
        assert_eq!(report.sent, 2, "{report:?}");
        assert_eq!(fs::read_dir(dir.path().join("mail")).unwrap().count(), 5);
    }

    #[test]
    fn a_transient_failure_past_the_attempt_limit_fails() {
        let (_dir, mut store) = queued(1);
        let sink = SmtpSink::start(Script::accept_all().rcpt_451(smtp_sink::ALWAYS)).unwrap();
        let mut transports = smtp(&sink, 1);
        let outbox = OutboxConfig {
            max_attempts: 2,
            ..OutboxConfig::default()
        };
        let settings = settings(LimitsConfig::default(), outbox);
        let report = deliver_due(&mut store, &mut transports, NOW, &settings, &NO_STOP).unwrap();
        assert_eq!(report.deferred, 1, "{report:?}");
        let later = NOW + 86_400;
        let report = deliver_due(&mut store, &mut transports, later, &settings, &NO_STOP).unwrap();
        assert_eq!(report.failed, 1, "{report:?}");
        let email = &store.outbox(None, 1).unwrap()[0];
        assert_eq!(email.state, OutboxState::Failed);
        assert!(
            email
                .last_error
                .as_deref()
                .is_some_and(|e| e.starts_with("gave up after 2 attempts")),
            "{email:?}"
        );
        assert!(
            !store.is_suppressed("c0@example.com").unwrap(),
            "not a bounce"
        );
    }
}
