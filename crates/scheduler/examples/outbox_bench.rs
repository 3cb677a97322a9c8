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

use smtp_sink::{Script, SmtpSink};
use tiercare_scheduler::config::{LimitsConfig, OutboxConfig, SmtpSecurity};
use tiercare_scheduler::mail::{
    Address, FolderTransport, MailTransport, SmtpMailer, SmtpTransportConfig,
};
use tiercare_scheduler::outbox::{SendSettings, deliver_due};
use tiercare_store::{
    CustomerRecord, EmailRecipient, FollowUpAction, ImportAudit, ImportKind, ImportOptions,
    NewEmail, OccurrenceKey, PlannedFollowUp, Store,
};

const NOW: i64 = 1_748_908_800;

fn queued(dir: &std::path::Path, n: usize) -> Store {
    let mut store = Store::create(&dir.join("tiercare.db")).expect("store");
    let options = ImportOptions {
        create_missing_customers: false,
        source: "bench".into(),
    };
    let mut session = store
        .import_at(ImportKind::Customers, options, NOW)
        .expect("import");
    for i in 0..n {
        session
            .customer(
                i as u64 + 2,
                &CustomerRecord {
                    external_id: format!("C{i}"),
                    name: Some(format!("Customer {i}")),
                    email: Some(format!("c{i}@example.com")),
                    consent_email: Some(true),
                    ..CustomerRecord::default()
                },
            )
            .expect("customer");
    }
    session.commit(&ImportAudit::default()).expect("commit");
    let mut followups = store.begin_followups(NOW, "bench").expect("followups");
    let text = "Dear customer,\n\nthank you for your order. ".repeat(20);
    let html = format!("<html><body><p>{text}</p></body></html>");
    let mut compose = |to: &EmailRecipient| -> Result<NewEmail, String> {
        Ok(NewEmail {
            message_id: format!("<{}.bench@tiercare.invalid>", to.customer_id),
            to_address: to.address.clone().unwrap_or_default(),
            subject: "Thank you".into(),
            text: text.clone(),
            html: Some(html.clone()),
        })
    };
    for i in 0..n {
        followups
            .record_with_email(
                &PlannedFollowUp {
                    key: OccurrenceKey::new("bench", format!("C{i}"), NOW),
                    scheduled_at: NOW,
                    action: FollowUpAction::Email {
                        template: "bench".into(),
                    },
                    reason: "bench".into(),
                    skip: None,
                },
                Some(&mut compose),
            )
            .expect("record");
    }
    followups.finish().expect("finish");
    store
}

fn settings() -> SendSettings {
    SendSettings {
        from: Address::named("Care", "care@shop.example"),
        unsubscribe_mailto: "unsubscribe@shop.example".into(),
        unsubscribe_url: None,
        signer: None,
        limits: LimitsConfig::default(),
        outbox: OutboxConfig::default(),
    }
}

fn run(label: &str, n: usize, transports: &mut [Box<dyn MailTransport>]) {
    let dir = tempfile::tempdir().expect("tempdir");
    let started = Instant::now();
    let mut store = queued(dir.path(), n);
    let queueing = started.elapsed();
    let started = Instant::now();
    let report = deliver_due(
        &mut store,
        transports,
        NOW,
        &settings(),
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
