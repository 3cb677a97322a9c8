//! Bounces and complaints: one record function that finds the e-mail, marks it, keeps the
//! address by hash only and suppresses by the policy (hard and complaints at once, soft ones
//! after N in a window), counting a notification delivered twice once.

use tiercare_store::{
    BounceKind, NewBounce, SoftBouncePolicy, Store, SuppressionReason, address_hash,
};

use crate::fixture::{NOW, new_store};
use crate::outbox::{queue, seed};

/// ann's e-mail, queued, claimed and sent at NOW; its id.
fn sent_email(store: &mut Store, template: &str) -> i64 {
    let id = queue(store, &["ann"], template, NOW)[0].expect("queued");
    let claim = store.claim_due(NOW, 10).unwrap();
    assert_eq!(claim.emails.len(), 1);
    store.mark_sent(id, NOW, "250 ok").unwrap();
    id
}

fn bounce(outbox_id: i64, kind: BounceKind, key: &str) -> NewBounce<'_> {
    NewBounce {
        outbox_id: Some(outbox_id),
        message_id: None,
        address: None,
        kind,
        status: Some(if kind == BounceKind::Hard {
            "5.1.1"
        } else {
            "4.2.2"
        }),
        diagnostic: Some("smtp; 550 5.1.1 <Ann@Example.com>: user unknown"),
        source: "dsn",
        event_key: Some(key),
    }
}

#[test]
fn a_hard_bounce_marks_the_email_and_suppresses_the_address_once() {
    let (_dir, path, mut store) = new_store();
    seed(&mut store);
    let id = sent_email(&mut store, "hello");
    let outcome = store
        .record_bounce(
            &bounce(id, BounceKind::Hard, "<dsn-1@mx>"),
            SoftBouncePolicy::default(),
            NOW + 60,
        )
        .unwrap();
    assert_eq!(outcome.outbox_id, Some(id));
    assert!(outcome.recorded);
    assert_eq!(outcome.suppressed, Some(SuppressionReason::HardBounce));
    assert!(store.is_suppressed("ann@example.com").unwrap());
    assert_eq!(
        store.bounce_marks(&[id]).unwrap(),
        [(id, BounceKind::Hard, Some("5.1.1".to_owned()))]
    );
    let listed = store.bounces_of(id).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].status.as_deref(), Some("5.1.1"));
    // The same DSN again changes nothing.
    let again = store
        .record_bounce(
            &bounce(id, BounceKind::Hard, "<dsn-1@mx>"),
            SoftBouncePolicy::default(),
            NOW + 61,
        )
        .unwrap();
    assert!(again.duplicate && !again.recorded, "{again:?}");
    assert_eq!(store.bounces_of(id).unwrap().len(), 1);
    // The address is kept by hash only.
    let conn = rusqlite::Connection::open(&path).unwrap();
    let hash: String = conn
        .query_row("SELECT address_hash FROM bounces", [], |row| row.get(0))
        .unwrap();
    assert_eq!(hash, address_hash("ann@example.com"));
    let (reason, source): (String, String) = conn
        .query_row("SELECT reason, source FROM suppressions", [], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })
        .unwrap();
    assert_eq!(
        (reason.as_str(), source),
        ("hard_bounce", format!("dsn:outbox:{id}"))
    );
}

#[test]
fn soft_bounces_suppress_only_at_the_limit_within_the_window() {
    let (_dir, _path, mut store) = new_store();
    seed(&mut store);
    let policy = SoftBouncePolicy {
        limit: 3,
        window: 30 * 86_400,
    };
    let first = sent_email(&mut store, "one");
    // One soft bounce 40 days ago falls out of the window.
    let old = store
        .record_bounce(
            &bounce(first, BounceKind::Soft, "k0"),
            policy,
            NOW - 40 * 86_400,
        )
        .unwrap();
    assert_eq!((old.soft_bounces, old.suppressed), (1, None));
    let second = sent_email(&mut store, "two");
    for (n, key) in [(1, "k1"), (2, "k2")] {
        let outcome = store
            .record_bounce(&bounce(second, BounceKind::Soft, key), policy, NOW + n)
            .unwrap();
        assert_eq!(outcome.soft_bounces, n.unsigned_abs());
        assert_eq!(
            outcome.suppressed, None,
            "soft bounce {n} must not suppress"
        );
        assert!(!store.is_suppressed("ann@example.com").unwrap());
    }
    let third = store
        .record_bounce(&bounce(second, BounceKind::Soft, "k3"), policy, NOW + 3)
        .unwrap();
    assert_eq!(third.soft_bounces, 3);
    assert_eq!(third.suppressed, Some(SuppressionReason::SoftBounces));
    assert!(store.is_suppressed("ann@example.com").unwrap());
}

#[test]
fn a_complaint_by_address_finds_the_latest_email_and_suppresses() {
    let (_dir, _path, mut store) = new_store();
    seed(&mut store);
    let id = sent_email(&mut store, "hello");
    let outcome = store
        .record_bounce(
            &NewBounce {
                outbox_id: None,
                message_id: Some("not-ours@provider"),
                address: Some(" ANN@example.com "),
                kind: BounceKind::Complaint,
                status: None,
                diagnostic: None,
                source: "postmark",
                event_key: Some("postmark:42"),
            },
            SoftBouncePolicy::default(),
            NOW + 5,
        )
        .unwrap();
    assert_eq!(outcome.outbox_id, Some(id));
    assert_eq!(outcome.suppressed, Some(SuppressionReason::Complaint));
    // Nothing matches and no address: nothing recorded.
    let nothing = store
        .record_bounce(
            &NewBounce {
                outbox_id: None,
                message_id: Some("<unknown@x>"),
                address: None,
                kind: BounceKind::Hard,
                status: None,
                diagnostic: None,
                source: "dsn",
                event_key: None,
            },
            SoftBouncePolicy::default(),
            NOW + 6,
        )
        .unwrap();
    assert!(
        !nothing.recorded && nothing.outbox_id.is_none(),
        "{nothing:?}"
    );
    let counts = store.bounce_counts(NOW).unwrap();
    assert_eq!(
        (counts.hard, counts.complaints, counts.suppressed),
        (0, 1, 1)
    );
}

#[test]
fn a_hard_bounce_on_send_is_recorded_with_the_failure() {
    let (_dir, _path, mut store) = new_store();
    seed(&mut store);
    let id = queue(&mut store, &["ann"], "hello", NOW)[0].expect("queued");
    store.claim_due(NOW, 10).unwrap();
    store
        .mark_hard_bounced(
            id,
            NOW,
            "failed (550): 550 5.1.1 user unknown",
            Some("5.1.1"),
        )
        .unwrap();
    let email = store.outbox_email(id).unwrap().unwrap();
    assert_eq!(email.state, tiercare_store::OutboxState::Failed);
    assert_eq!(
        store.bounce_marks(&[id]).unwrap(),
        [(id, BounceKind::Hard, Some("5.1.1".to_owned()))]
    );
    assert_eq!(store.bounces_of(id).unwrap()[0].source, "smtp");
    assert!(store.is_suppressed("ann@example.com").unwrap());
}

#[test]
fn forgetting_the_customer_erases_what_a_bounce_quoted() {
    let (_dir, path, mut store) = new_store();
    seed(&mut store);
    let id = sent_email(&mut store, "hello");
    store
        .record_bounce(
            &bounce(id, BounceKind::Soft, "<dsn-9@mx>"),
            SoftBouncePolicy::default(),
            NOW + 60,
        )
        .unwrap();
    store.forget_customer("ann", "test", NOW + 120).unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    let quoted: i64 = conn
        .query_row(
            "SELECT count(*) FROM bounces WHERE diagnostic LIKE '%example.com%'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(quoted, 0, "the diagnostic quoted the address");
    assert_eq!(
        store.bounces_of(id).unwrap().len(),
        1,
        "the bounce itself stays"
    );
}
