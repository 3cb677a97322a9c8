//! A store with e-mails queued in its outbox, and the settings to send them: shared by the
//! send-loop tests (`tests/mail.rs`) and the send-loop benchmark (`examples/outbox_bench.rs`),
//! which include this file with `#[path]`.

use std::path::Path;

use tiercare_scheduler::config::{LimitsConfig, OutboxConfig};
use tiercare_scheduler::mail::Address;
use tiercare_scheduler::outbox::SendSettings;
use tiercare_store::{
    CustomerRecord, EmailRecipient, FollowUpAction, ImportAudit, ImportKind, ImportOptions,
    NewEmail, OccurrenceKey, PlannedFollowUp, Store,
};

/// 2025-06-03T00:00:00Z: when the customers are imported and the e-mails are due.
pub const NOW: i64 = 1_748_908_800;

/// A new store at `path` with `n` consenting customers `C0`, `C1`, … (`c0@example.com`, …), each
/// with one e-mail of a `hello` follow-up queued with it, due at [`NOW`], with `text` and `html`
/// as its parts.
pub fn queued_store(path: &Path, n: usize, text: &str, html: &str) -> Store {
    let mut store = Store::create(path).expect("create store");
    let options = ImportOptions {
        create_missing_customers: false,
        source: "queued".into(),
    };
    let mut session = store
        .import_at(ImportKind::Customers, options, NOW)
        .expect("start import");
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
            .expect("import customer");
    }
    session
        .commit(&ImportAudit::default())
        .expect("commit import");
    let mut followups = store.begin_followups(NOW, "v1").expect("begin follow-ups");
    let mut compose = |to: &EmailRecipient| -> Result<NewEmail, String> {
        Ok(NewEmail {
            message_id: format!("<{}@queued.invalid>", to.customer_id),
            to_address: to.address.clone().expect("a consenting customer's address"),
            subject: "Hello".into(),
            text: text.to_owned(),
            html: Some(html.to_owned()),
        })
    };
    for i in 0..n {
        followups
            .record_with_email(
                &PlannedFollowUp {
                    key: OccurrenceKey::new("hello", format!("C{i}"), NOW),
                    scheduled_at: NOW,
                    action: FollowUpAction::Email {
                        template: "hello".into(),
                        survey: None,
                        coupon: None,
                    },
                    reason: "queued".into(),
                    skip: None,
                },
                Some(&mut compose),
            )
            .expect("record follow-up");
    }
    followups.finish().expect("finish follow-ups");
    store
}

/// Settings for sending as `Care <care@shop.example>`, unsubscribing by mail only.
pub fn send_settings(limits: LimitsConfig, outbox: OutboxConfig) -> SendSettings {
    SendSettings {
        from: Address::named("Care", "care@shop.example"),
        unsubscribe_mailto: "unsubscribe@shop.example".into(),
        unsubscribe_url: None,
        signer: None,
        limits,
        outbox,
        dkim: None,
        list_id: None,
        domains: Default::default(),
        reputation: Default::default(),
        warmup: None,
        verp: None,
    }
}
