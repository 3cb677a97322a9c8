//! The providers' bounce webhooks served by a real `tiercare serve` on loopback, called with
//! curl as the providers call them: a generic (Standard Webhooks) bounce with a valid signature
//! suppresses the address before the next `send`; a wrong signature, a wrong Postmark password
//! and an unknown provider are refused and change nothing, with answers and a log that quote
//! nothing from the request.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use ring::hmac;

use crate::common::{fast_tempdir, followups_record_json, mail_workspace, run_in};
use crate::serve::{Server, add_http, curl, free_port, send, suppressions};

const GENERIC_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
/// The key of [`GENERIC_SECRET`] (its base64 part, decoded).
const GENERIC_KEY: &str = "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const POSTMARK_PASSWORD: &str = "pm-webhook-password";

fn bounces(root: &Path) -> i64 {
    let db = rusqlite::Connection::open(root.join("tiercare.db")).unwrap();
    db.query_row("SELECT count(*) FROM bounces", [], |row| row.get(0))
        .unwrap()
}

/// The Standard Webhooks signature header of `body` sent as `id` at `timestamp` with `key`,
/// computed here as a sender would (not with tiercare's own code).
fn sign(key: &[u8], id: &str, timestamp: i64, body: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    let tag = hmac::sign(&key, format!("{id}.{timestamp}.{body}").as_bytes());
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(tag.as_ref())
    )
}

/// A generic hard bounce of `email`.
fn generic_bounce(email: &str) -> String {
    format!(
        r#"{{"type": "bounce", "bounce": "hard", "email": "{email}", "status": "5.1.1", "diagnostic": "550 5.1.1 user unknown"}}"#
    )
}

/// `body` posted to `url` as `id`, signed with `key` (now): the status and the answer.
fn post_generic(url: &str, key: &[u8], body: &str, id: &str) -> (u16, String) {
    let now = i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap();
    let signature = sign(key, id, now, body);
    curl(&[
        "-H",
        "Content-Type: application/json",
        "-H",
        &format!("webhook-id: {id}"),
        "-H",
        &format!("webhook-timestamp: {now}"),
        "-H",
        &format!("webhook-signature: {signature}"),
        "--data-binary",
        body,
        url,
    ])
}

#[test]
fn a_signed_generic_bounce_suppresses_and_forged_calls_change_nothing() {
    let dir = fast_tempdir();
    let root = mail_workspace(dir.path(), 3, None);
    let port = free_port();
    add_http(
        &root,
        port,
        "\n[mail.bounces]\npostmark_username = \"tiercare\"\n",
    );
    let sent = send(&root);
    assert_eq!(sent["sent"], 3, "{sent}");
    let server = Server::start_env(
        &root,
        &[
            ("TIERCARE_BOUNCE_WEBHOOK_SECRET", GENERIC_SECRET),
            ("TIERCARE_POSTMARK_WEBHOOK_PASSWORD", POSTMARK_PASSWORD),
        ],
    );
    let base = format!("http://127.0.0.1:{port}/webhooks");
    let generic = format!("{base}/generic");
    let key = base64::engine::general_purpose::STANDARD
        .decode(GENERIC_KEY)
        .unwrap();

    // Signed with the right secret: 200, recorded, the address suppressed.
    let (code, answer) = post_generic(&generic, &key, &generic_bounce("c0@example.com"), "msg_1");
    assert_eq!(code, 200, "{answer}\n{}", server.log());
    let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(answer["outcome"], "recorded", "{answer}");
    assert_eq!(suppressions(&root), 1);
    assert_eq!(bounces(&root), 1);

    // Signed with another secret: 401, nothing changes, nothing of the request quoted.
    let (code, answer) = post_generic(
        &generic,
        b"not the workspace's secret",
        &generic_bounce("c1@example.com"),
        "msg_2",
    );
    assert_eq!(code, 401, "{answer}");
    assert!(
        !answer.contains("example.com") && !answer.contains("msg_2"),
        "{answer}"
    );
    assert_eq!(suppressions(&root), 1);
    assert_eq!(bounces(&root), 1);

    // Signed, but not the generic form (no email): 400, nothing of it quoted.
    let (code, answer) = post_generic(
        &generic,
        &key,
        r#"{"type": "bounce", "mail": "c1@example.com"}"#,
        "msg_3",
    );
    assert_eq!(code, 400, "{answer}");
    assert!(
        !answer.contains("example.com") && !answer.contains("mail"),
        "{answer}"
    );
    assert_eq!(bounces(&root), 1);

    // Postmark with the wrong password: 401, nothing changes.
    let postmark_body = r#"{"RecordType": "Bounce", "Type": "HardBounce", "TypeCode": 1,
        "ID": 42, "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
        "Email": "c2@example.com", "Details": "smtp;550 5.1.1 user unknown"}"#;
    let (code, answer) = curl(&[
        "-u",
        "tiercare:not-the-password",
        "-H",
        "Content-Type: application/json",
        "--data-binary",
        postmark_body,
        &format!("{base}/postmark"),
    ]);
    assert_eq!(code, 401, "{answer}");
    assert!(!answer.contains("example.com"), "{answer}");
    assert_eq!(suppressions(&root), 1);
    assert_eq!(bounces(&root), 1);

    // An unknown provider: 404, its name not echoed.
    let (code, answer) = curl(&["--data-binary", "{}", &format!("{base}/sendgrid")]);
    assert_eq!(code, 404, "{answer}");
    assert!(!answer.contains("sendgrid"), "{answer}");

    // The next emails: the bounced address is skipped, the others go out.
    let recorded = run_in(
        &root,
        &followups_record_json("2026-03-03T08:00:00Z", "2026-03-03T10:00:00Z"),
    );
    recorded.assert_code(0);
    assert_eq!(recorded.json()["queued"], 3, "{}", recorded.stdout);
    let sent = send(&root);
    assert_eq!(sent["sent"], 2, "{sent}");
    assert_eq!(sent["suppressed"], 1, "{sent}");

    // The access log names the route and statuses, never addresses or bodies.
    let log = server.log();
    assert!(log.contains("route=/webhooks/{provider}"), "{log}");
    assert!(log.contains("status=401"), "{log}");
    assert!(!log.contains("@example.com"), "{log}");
    assert!(!log.contains("user unknown"), "{log}");
}
