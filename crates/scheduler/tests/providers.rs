//! Providers' bounce and complaint webhooks, called as the HTTP server will call them: the
//! payloads are the shapes of the providers' documentation, the authentication is computed
//! as the providers compute it, and the records land in a real SQLite store whose emails
//! were sent (to a real mail folder) first.

use std::sync::atomic::AtomicBool;

#[path = "support/queued_outbox.rs"]
mod queued_outbox;

use base64::Engine;
use ring::hmac;
use tiercare_scheduler::config::{LimitsConfig, OutboxConfig};
use tiercare_scheduler::mail::{FolderTransport, MailTransport};
use tiercare_scheduler::outbox::deliver_due;
use tiercare_scheduler::providers::{
    Outcome, ProviderError, ProviderSettings, handle_provider_webhook, standard,
};
use tiercare_store::{Store, SuppressionReason};

use queued_outbox::{NOW, queued_store, send_settings};

const MAILGUN_KEY: &str = "key-3ax6xnjp29jd6fds4gc373sgvjxteol0";

/// A store with three customers' emails sent (c0@, c1@, c2@example.com), and settings with
/// every provider configured.
fn sent(dir: &std::path::Path) -> (Store, ProviderSettings) {
    let mut store = queued_store(&dir.join("tiercare.db"), 3, "Hi", "<p>Hi</p>");
    let mut transports: Vec<Box<dyn MailTransport>> =
        vec![Box::new(FolderTransport::new(dir.join("mail")).unwrap())];
    let report = deliver_due(
        &mut store,
        &mut transports,
        NOW,
        &send_settings(LimitsConfig::default(), OutboxConfig::default()),
        &AtomicBool::new(false),
    )
    .unwrap();
    assert_eq!(report.sent, 3);
    let settings = ProviderSettings {
        postmark: Some(("tiercare".into(), "pm-webhook-password".into())),
        mailgun: Some(MAILGUN_KEY.into()),
        generic: standard::decode_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
        ..ProviderSettings::default()
    };
    (store, settings)
}

fn basic(user: &str, password: &str) -> Vec<(String, String)> {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    vec![
        ("Content-Type".into(), "application/json".into()),
        ("Authorization".into(), format!("Basic {encoded}")),
    ]
}

/// Postmark's bounce webhook example (postmarkapp.com/developer/webhooks/bounce-webhook).
fn postmark_bounce(kind: &str, email: &str) -> String {
    format!(
        r#"{{
  "RecordType": "Bounce",
  "MessageStream": "outbound",
  "ID": 4323372036854775807,
  "Type": "{kind}",
  "TypeCode": 1,
  "Name": "Hard bounce",
  "Tag": "Test",
  "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
  "Metadata" : {{"a_key" : "a_value", "b_key": "b_value"}},
  "ServerID": 23,
  "Description": "The server was unable to deliver your message (ex: unknown user, mailbox not found).",
  "Details": "Test bounce details",
  "Email": "{email}",
  "From": "sender@example.com",
  "BouncedAt": "2019-11-05T16:33:54.9070259Z",
  "DumpAvailable": true,
  "Inactive": true,
  "CanActivate": true,
  "Subject": "Test subject",
  "Content": "<Full dump of bounce>"
}}"#
    )
}

fn recorded(outcome: &Outcome) -> &tiercare_store::BounceOutcome {
    match outcome {
        Outcome::Recorded(recorded) => recorded,
        Outcome::Ignored { reason } => panic!("ignored: {reason}"),
    }
}

#[test]
fn postmark_needs_its_basic_auth_and_records_bounces_and_complaints() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, settings) = sent(dir.path());
    let body = postmark_bounce("HardBounce", "c0@example.com");
    for headers in [
        basic("tiercare", "wrong"),
        basic("other", "pm-webhook-password"),
        Vec::new(),
    ] {
        let err = handle_provider_webhook(
            &mut store,
            &settings,
            "postmark",
            &headers,
            body.as_bytes(),
            NOW,
        )
        .unwrap_err();
        assert!(matches!(err, ProviderError::Unauthorized(_)), "{err:?}");
        assert_eq!(err.status(), 401);
    }
    assert!(!store.is_suppressed("c0@example.com").unwrap());
    let headers = basic("tiercare", "pm-webhook-password");
    let outcome = handle_provider_webhook(
        &mut store,
        &settings,
        "postmark",
        &headers,
        body.as_bytes(),
        NOW,
    )
    .unwrap();
    let outcome = recorded(&outcome);
    assert_eq!(outcome.outbox_id, Some(1), "found by the address");
    assert_eq!(outcome.suppressed, Some(SuppressionReason::HardBounce));
    // Postmark retries a webhook it thinks failed: the same record counts once.
    let again = handle_provider_webhook(
        &mut store,
        &settings,
        "postmark",
        &headers,
        body.as_bytes(),
        NOW,
    )
    .unwrap();
    assert!(recorded(&again).duplicate);

    let soft = postmark_bounce("SoftBounce", "c1@example.com").replace("4323372036854775807", "7");
    let outcome = handle_provider_webhook(
        &mut store,
        &settings,
        "postmark",
        &headers,
        soft.as_bytes(),
        NOW,
    )
    .unwrap();
    assert_eq!(
        (
            recorded(&outcome).soft_bounces,
            recorded(&outcome).suppressed
        ),
        (1, None)
    );

    let complaint = r#"{
  "RecordType": "SpamComplaint",
  "MessageStream": "outbound",
  "ID": 42,
  "Type": "SpamComplaint",
  "TypeCode": 512,
  "Name": "Spam complaint",
  "Tag": "Test",
  "MessageID": "00000000-0000-0000-0000-000000000000",
  "ServerID": 1234,
  "Description": "The subscriber explicitly marked this message as spam.",
  "Details": "Test spam complaint details",
  "Email": "c2@example.com",
  "From": "sender@example.com",
  "BouncedAt": "2019-11-05T16:33:54.9070259Z",
  "DumpAvailable": true,
  "Inactive": true,
  "CanActivate": false,
  "Subject": "Test subject",
  "Content": "<Abuse report dump>"
}"#;
    let outcome = handle_provider_webhook(
        &mut store,
        &settings,
        "postmark",
        &headers,
        complaint.as_bytes(),
        NOW,
    )
    .unwrap();
    assert_eq!(
        recorded(&outcome).suppressed,
        Some(SuppressionReason::Complaint)
    );
    // An authentic record that is not a bounce: accepted, nothing done.
    let auto =
        postmark_bounce("AutoResponder", "c1@example.com").replace("4323372036854775807", "8");
    let outcome = handle_provider_webhook(
        &mut store,
        &settings,
        "postmark",
        &headers,
        auto.as_bytes(),
        NOW,
    )
    .unwrap();
    assert!(matches!(outcome, Outcome::Ignored { .. }), "{outcome:?}");
    // Not configured, or not a provider: 404.
    let none = ProviderSettings::default();
    let err = handle_provider_webhook(
        &mut store,
        &none,
        "postmark",
        &headers,
        body.as_bytes(),
        NOW,
    )
    .unwrap_err();
    assert_eq!(err.status(), 404);
    let err = handle_provider_webhook(
        &mut store,
        &settings,
        "sendgrid",
        &headers,
        body.as_bytes(),
        NOW,
    )
    .unwrap_err();
    assert_eq!(err.status(), 404);
    let err = handle_provider_webhook(
        &mut store,
        &settings,
        "postmark",
        &headers,
        b"{not json",
        NOW,
    )
    .unwrap_err();
    assert_eq!(err.status(), 400);
}

/// Mailgun's `failed` webhook example, with its signature computed as Mailgun does
/// (HMAC-SHA256 of timestamp + token with the signing key, hex).
fn mailgun(event: &str, severity: &str, message_id: &str, timestamp: i64, key: &str) -> String {
    let token = "a8ce0edb2dd8301dcc13a4b7b1d8a8d6b3a1f2e5d3e4b1c7a4";
    let tag = hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA256, key.as_bytes()),
        format!("{timestamp}{token}").as_bytes(),
    );
    let signature: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!(
        r#"{{
  "signature": {{
    "timestamp": "{timestamp}",
    "token": "{token}",
    "signature": "{signature}"
  }},
  "event-data": {{
    "event": "{event}",
    "id": "G9Bn5sl1TC6nu79C8C0bwg-{event}",
    "timestamp": 1521233195.375624,
    "log-level": "error",
    "severity": "{severity}",
    "reason": "bounce",
    "envelope": {{"sender": "bob@sandbox.mailgun.org", "transport": "smtp", "targets": "c1@example.com"}},
    "flags": {{"is-routed": false, "is-authenticated": true, "is-system-test": false, "is-test-mode": false}},
    "delivery-status": {{"attempt-no": 1, "message": "550 5.1.1 The email account that you tried to reach does not exist", "code": 550, "enhanced-code": "5.1.1", "description": "", "session-seconds": 0.1}},
    "message": {{"headers": {{"to": "Customer 1 <c1@example.com>", "message-id": "{message_id}", "from": "Care <care@shop.example>", "subject": "Hello"}}, "attachments": [], "size": 111}},
    "recipient": "c1@example.com",
    "recipient-domain": "example.com",
    "campaigns": [],
    "tags": ["my_tag_1"],
    "user-variables": {{}}
  }}
}}"#
    )
}

#[test]
fn mailgun_checks_its_signature_and_timestamp_and_finds_the_email_by_message_id() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, settings) = sent(dir.path());
    let at = NOW + 3600;
    for (body, why) in [
        (
            mailgun(
                "failed",
                "permanent",
                "C1@queued.invalid",
                at,
                "another key",
            ),
            "wrong key",
        ),
        (
            mailgun(
                "failed",
                "permanent",
                "C1@queued.invalid",
                at - 3600,
                MAILGUN_KEY,
            ),
            "an hour old",
        ),
    ] {
        let err =
            handle_provider_webhook(&mut store, &settings, "mailgun", &[], body.as_bytes(), at)
                .unwrap_err();
        assert_eq!(err.status(), 401, "{why}: {err}");
    }
    assert_eq!(store.bounce_counts(i64::MIN).unwrap().hard, 0);
    let body = mailgun("failed", "permanent", "C1@queued.invalid", at, MAILGUN_KEY);
    let outcome =
        handle_provider_webhook(&mut store, &settings, "mailgun", &[], body.as_bytes(), at)
            .unwrap();
    assert_eq!(
        recorded(&outcome).outbox_id,
        Some(2),
        "C1's email, by its Message-ID"
    );
    assert_eq!(
        store.bounces_of(2).unwrap()[0].status.as_deref(),
        Some("5.1.1")
    );
    assert!(store.is_suppressed("c1@example.com").unwrap());
    let delivered = mailgun("delivered", "", "C2@queued.invalid", at, MAILGUN_KEY);
    let outcome = handle_provider_webhook(
        &mut store,
        &settings,
        "mailgun",
        &[],
        delivered.as_bytes(),
        at,
    )
    .unwrap();
    assert!(matches!(outcome, Outcome::Ignored { .. }), "{outcome:?}");
    let complained = mailgun("complained", "", "C2@queued.invalid", at, MAILGUN_KEY);
    let outcome = handle_provider_webhook(
        &mut store,
        &settings,
        "mailgun",
        &[],
        complained.as_bytes(),
        at,
    )
    .unwrap();
    assert_eq!(
        recorded(&outcome).suppressed,
        Some(SuppressionReason::Complaint)
    );
}

#[test]
fn the_generic_webhook_is_signed_by_the_standard_webhooks_scheme() {
    // The Standard Webhooks specification's own test vector.
    let key = standard::decode_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
    assert_eq!(
        standard::sign(
            &key,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            br#"{"test": 2432232314}"#
        ),
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    );
    let dir = tempfile::tempdir().unwrap();
    let (mut store, settings) = sent(dir.path());
    let body = br#"{"type": "bounce", "bounce": "soft", "email": "c0@example.com", "message_id": "<C0@queued.invalid>", "status": "4.2.2", "diagnostic": "mailbox full"}"#;
    let headers = |id: &str, timestamp: i64, signature: String| {
        vec![
            ("webhook-id".to_owned(), id.to_owned()),
            ("webhook-timestamp".to_owned(), timestamp.to_string()),
            ("webhook-signature".to_owned(), signature),
        ]
    };
    let good = headers(
        "msg_1",
        NOW,
        format!("v1,bm90IGl0 {}", standard::sign(&key, "msg_1", NOW, body)),
    );
    let forged = headers(
        "msg_1",
        NOW,
        standard::sign(b"another key", "msg_1", NOW, body),
    );
    let err =
        handle_provider_webhook(&mut store, &settings, "generic", &forged, body, NOW).unwrap_err();
    assert_eq!(err.status(), 401);
    let stale = headers(
        "msg_1",
        NOW - 600,
        standard::sign(&key, "msg_1", NOW - 600, body),
    );
    let err =
        handle_provider_webhook(&mut store, &settings, "generic", &stale, body, NOW).unwrap_err();
    assert_eq!(err.status(), 401);
    let outcome =
        handle_provider_webhook(&mut store, &settings, "generic", &good, body, NOW).unwrap();
    let outcome = recorded(&outcome);
    assert_eq!(
        (outcome.outbox_id, outcome.soft_bounces, outcome.suppressed),
        (Some(1), 1, None)
    );
    let bad = br#"{"type": "opened", "email": "c0@example.com"}"#;
    let signed = headers("msg_2", NOW, standard::sign(&key, "msg_2", NOW, bad));
    let err =
        handle_provider_webhook(&mut store, &settings, "generic", &signed, bad, NOW).unwrap_err();
    assert_eq!(err.status(), 400);
}
