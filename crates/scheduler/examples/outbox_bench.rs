//! Benchmark of the send loop: queues N emails in a real database file, then delivers them with
//! [`deliver_due`] to a local SMTP server (smtp-sink on 127.0.0.1) over 1, 2, 4 and 8 kept
//! connections in parallel, and through the folder transport. Prints messages per second.
//!
//! ```text
//! cargo run --release -p tiercare-scheduler --example outbox_bench -- [N [CONNECTIONS...]]
//! ```
//!
//! N defaults to 10,000 and CONNECTIONS to `1 2 4 8`.

use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

#[path = "../tests/support/queued_outbox.rs"]
mod queued_outbox;

use smtp_sink::{Script, SmtpSink};
use tiercare_scheduler::config::{LimitsConfig, OutboxConfig, SmtpSecurity};
use tiercare_scheduler::mail::{FolderTransport, MailTransport, SmtpMailer, SmtpTransportConfig};
use tiercare_scheduler::outbox::deliver_due;

use queued_outbox::{NOW, queued_store, send_settings};

fn run(label: &str, n: usize, transports: &mut [Box<dyn MailTransport>]) {
    let dir = tempfile::tempdir().expect("tempdir");
    let started = Instant::now();
    let text = "Dear customer,\n\nthank you for your order. ".repeat(20);
    let html = format!("<html><body><p>{text}</p></body></html>");
    let mut store = queued_store(&dir.path().join("tiercare.db"), n, &text, &html);
    let queueing = started.elapsed();
    let started = Instant::now();
    let report = deliver_due(
        &mut store,
        transports,
        NOW,
        &send_settings(LimitsConfig::default(), OutboxConfig::default()),
        &AtomicBool::new(false),
    )
    .expect("deliver");
    let elapsed = started.elapsed();
    assert_eq!(report.sent as usize, n, "{report:?}");
    println!(
        "{label:<28} {n:>6} emails in {:>7.2} s = {:>7.0} msg/s (queued with their follow-ups in {:.2} s)",
        elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64(),
        queueing.as_secs_f64()
    );
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|arg| arg.parse().expect("numbers: N [CONNECTIONS...]"))
        .collect();
    let n = args.first().copied().unwrap_or(10_000);
    let pools = if args.len() > 1 {
        args[1..].to_vec()
    } else {
        vec![1, 2, 4, 8]
    };
    let sink = SmtpSink::start(Script::accept_all()).expect("sink");
    let config = SmtpTransportConfig {
        host: "127.0.0.1".into(),
        port: sink.port(),
        security: SmtpSecurity::None,
        username: None,
        password_env: "UNUSED".into(),
        timeout: Duration::from_secs(30),
        pool: true,
    };
    for connections in pools {
        let mut transports: Vec<Box<dyn MailTransport>> = (0..connections)
            .map(|_| {
                Box::new(SmtpMailer::new(&config, &|_| None).expect("mailer"))
                    as Box<dyn MailTransport>
            })
            .collect();
        run(
            &format!("smtp, {connections} connection(s)"),
            n,
            &mut transports,
        );
    }
    let folder = tempfile::tempdir().expect("tempdir");
    let mut transports: Vec<Box<dyn MailTransport>> = vec![Box::new(
        FolderTransport::new(folder.path()).expect("folder"),
    )];
    run("folder", n, &mut transports);
}
