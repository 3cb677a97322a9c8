//! The outbox: queued with its follow-up in one transaction, claimed before
//! sending with suppression and consent re-checked, every outcome recorded
//! with an event, crash recovery by policy, and the suppression list.

use rusqlite::Connection;
use tiercare_store::{
    BulkFilter, CustomerRecord, EmailRecipient, FollowUpStatus, ImportKind, MAX_CRASH_RESENDS,
    NewEmail, OutboxState, RecipientKind, RecoveryPolicy, Store, StoreError, SuppressionReason,
    address_hash,
};

use crate::fixture::{NOW, import_at, manager, new_store, options, seed_manager};
use crate::followups::{email, seed_team};

/// Customers: ann (consents, has an address), bob (no consent), cyd (no
/// address), each owned by M1 (no address); managers from `seed_team`.
pub(crate) fn seed(store: &mut Store) {
    seed_team(store, &[]);
    import_at(store, ImportKind::Customers, options("c.csv"), NOW, |s| {
        for (line, (id, address, consent)) in (2..).zip([
            ("ann", Some("Ann@Example.com"), true),
            ("bob", Some("bob@example.com"), false),
            ("cyd", None, true),
        ]) {
            s.customer(
                line,
                &CustomerRecord {
                    external_id: id.into(),
                    name: Some(format!("Name {id}")),
                    email: address.map(Into::into),
                    consent_email: Some(consent),
                    owner: Some("M1".into()),
                    ..CustomerRecord::default()
                },
            )
            .unwrap();
        }
    });
}

/// A composer that addresses the recipient and renders a fixed text, or
/// refuses when there is no address.
fn compose(to: &EmailRecipient) -> Result<NewEmail, String> {
    let address = to
        .address
        .clone()
        .ok_or_else(|| "the customer has no e-mail address".to_owned())?;
    Ok(NewEmail {
        message_id: format!("<{}.{}@test.invalid>", to.template, to.customer_id),
        to_address: address,
        subject: format!("Hello {}", to.name.as_deref().unwrap_or("")),
        text: "Hi".into(),
        html: Some("<p>Hi</p>".into()),
    })
}

/// Queues one e-mail for each of `customers` with template `template`,
/// due at `at`; returns the outbox ids (None when skipped).
pub(crate) fn queue(
    store: &mut Store,
    customers: &[&str],
    template: &str,
    at: i64,
) -> Vec<Option<i64>> {
    let mut session = store.begin_followups(NOW, "v1").unwrap();
    let ids = customers
        .iter()
        .map(|id| {
            session
                .record_with_email(&email(template, id, at, template), Some(&mut compose))
                .unwrap()
                .outbox_id
        })
        .collect();
    session.finish().unwrap();
    ids
}

fn followup_status(path: &std::path::Path, outbox_id: i64) -> (String, Option<String>) {
    Connection::open(path)
        .unwrap()
        .query_row(
            "SELECT f.status, f.status_reason FROM followups f JOIN outbox o \
             ON o.followup_id = f.id WHERE o.id = ?1",
            [outbox_id],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .unwrap()
}

#[test]
fn an_email_is_queued_with_its_follow_up_or_not_at_all() {
    let (_dir, path, mut store) = new_store();
    seed(&mut store);
    let ids = queue(&mut store, &["ann", "cyd"], "care", NOW + 60);
    let ann = ids[0].expect("ann queued");
    assert_eq!(ids[1], None, "no address: skipped, nothing queued");

    let queued = store.outbox_email(ann).unwrap().unwrap();
    assert_eq!(queued.state, OutboxState::Queued);
    assert_eq!(queued.to_address, "Ann@Example.com");
    assert_eq!(queued.to_name.as_deref(), Some("Name ann"));
    assert_eq!(queued.message_id, "<care.ann@test.invalid>");
    assert_eq!(queued.due_at, NOW + 60);
    assert_eq!(queued.recipient_kind, RecipientKind::Customer);
    assert_eq!(store.outbox_events(ann).unwrap().len(), 1);
    let cyd = store.followups_of("cyd").unwrap();
    assert_eq!(cyd[0].status, FollowUpStatus::Skipped);
    assert_eq!(
        cyd[0].status_reason.as_deref(),
        Some("the customer has no e-mail address")
    );

    // Recording the same occurrence again queues nothing more.
    assert_eq!(queue(&mut store, &["ann"], "care", NOW + 60), [None]);
    assert_eq!(store.outbox(None, 10).unwrap().len(), 1);

    // A session dropped without finishing leaves neither row.
    let mut session = store.begin_followups(NOW, "v1").unwrap();
    session
        .record_with_email(&email("other", "ann", NOW, "x"), Some(&mut compose))
        .unwrap();
    drop(session);
    assert_eq!(store.outbox(None, 10).unwrap().len(), 1);
    assert!(
        store
            .followups_of("ann")
            .unwrap()
            .iter()
            .all(|f| f.rule_id == "care")
    );
    let _ = path;
}

#[test]
fn claims_take_what_is_due_recheck_suppression_and_consent_and_commit_first() {
    let (_dir, path, mut store) = new_store();
    seed(&mut store);
    let ann = queue(&mut store, &["ann"], "care", NOW)[0].unwrap();
    let later = queue(&mut store, &["ann"], "later", NOW + 3600)[0].unwrap();
    // bob had consent when queued (simulated by composing anyway), then not.
    let bob = {
        let mut session = store.begin_followups(NOW, "v1").unwrap();
        let id = session
            .record_with_email(&email("care", "bob", NOW, "care"), Some(&mut compose))
            .unwrap()
            .outbox_id
            .unwrap();
        session.finish().unwrap();
        id
    };

    let claim = store.claim_due(NOW, 10).unwrap();
    assert_eq!(claim.emails.iter().map(|e| e.id).collect::<Vec<_>>(), [ann]);
    assert_eq!(claim.no_consent, 1);
    assert_eq!(claim.emails[0].attempts, 1);
    // Committed: another connection sees the claim at once.
    let state: String = Connection::open(&path)
        .unwrap()
        .query_row("SELECT state FROM outbox WHERE id = ?1", [ann], |row| {
            row.get(0)
        })
        .unwrap();
    assert_eq!(state, "claimed");
    assert_eq!(
        store.outbox_email(bob).unwrap().unwrap().state,
        OutboxState::Suppressed
    );
    assert_eq!(followup_status(&path, bob).0, "cancelled");
    // Nothing else is due; claiming again takes nothing.
    assert!(store.claim_due(NOW, 10).unwrap().emails.is_empty());

    // An address suppressed after queueing: found in the claim (any case).
    store
        .suppress(
            " ANN@example.COM",
            SuppressionReason::Unsubscribe,
            "cli",
            NOW,
        )
        .unwrap();
    let claim = store.claim_due(NOW + 3600, 10).unwrap();
    assert!(claim.emails.is_empty());
    assert_eq!(claim.suppressed, 1);
    let row = store.outbox_email(later).unwrap().unwrap();
    assert_eq!(row.state, OutboxState::Suppressed);
    assert_eq!(
        row.last_error.as_deref(),
        Some("the address is on the suppression list")
    );
}

#[test]
fn outcomes_move_claimed_emails_with_an_event_each() {
    let (_dir, path, mut store) = new_store();
    seed(&mut store);
    let ids: Vec<i64> = (0..4)
        .map(|n| queue(&mut store, &["ann"], &format!("t{n}"), NOW)[0].unwrap())
        .collect();
    let claim = store.claim_due(NOW, 10).unwrap();
    assert_eq!(claim.emails.len(), 4);

    store.mark_sent(ids[0], NOW + 1, "250 ok").unwrap();
    store
        .mark_deferred(ids[1], NOW + 1, NOW + 300, "451 try later")
        .unwrap();
    store
        .mark_failed(ids[2], NOW + 1, "550 no such user", true)
        .unwrap();
    store.mark_unknown(ids[3], NOW + 1, "timeout").unwrap();

    let sent = store.outbox_email(ids[0]).unwrap().unwrap();
    assert_eq!(
        (sent.state, sent.sent_at),
        (OutboxState::Sent, Some(NOW + 1))
    );
    assert_eq!(followup_status(&path, ids[0]).0, "done");
    let deferred = store.outbox_email(ids[1]).unwrap().unwrap();
    assert_eq!(deferred.state, OutboxState::Deferred);
    assert_eq!(deferred.due_at, NOW + 300);
    assert_eq!(deferred.last_error.as_deref(), Some("451 try later"));
    assert_eq!(
        store.outbox_email(ids[2]).unwrap().unwrap().state,
        OutboxState::Failed
    );
    assert_eq!(
        followup_status(&path, ids[2]),
        (
            "cancelled".to_owned(),
            Some("e-mail failed: 550 no such user".to_owned())
        )
    );
    assert!(
        store.is_suppressed("ann@example.com").unwrap(),
        "hard bounce"
    );
    assert_eq!(
        store.outbox_email(ids[3]).unwrap().unwrap().state,
        OutboxState::Unknown
    );
    let events = store.outbox_events(ids[1]).unwrap();
    let path_of = events
        .iter()
        .map(|e| e.to_state.as_str())
        .collect::<Vec<_>>();
    assert_eq!(path_of, ["queued", "claimed", "deferred"]);

    // An outcome for an e-mail that is not claimed is refused.
    let err = store.mark_sent(ids[0], NOW + 2, "again").unwrap_err();
    assert!(matches!(err, StoreError::EmailState { .. }), "{err:?}");

    // The deferred one is due again at its retry time, not before; then
    // the suppression from the bounce stops it.
    assert!(store.claim_due(NOW + 299, 10).unwrap().emails.is_empty());
    let claim = store.claim_due(NOW + 300, 10).unwrap();
    assert_eq!((claim.emails.len(), claim.suppressed), (0, 1));
    assert_eq!(store.sent_since(NOW).unwrap(), 1);
    assert_eq!(store.sent_since(NOW + 2).unwrap(), 0);
}

#[test]
fn stale_claims_are_recovered_by_policy_and_resent_once_with_the_same_id() {
    let (_dir, _path, mut store) = new_store();
    seed(&mut store);
    let id = queue(&mut store, &["ann"], "care", NOW)[0].unwrap();
    let never_sent = queue(&mut store, &["ann"], "other", NOW)[0].unwrap();
    let message_id = store.outbox_email(id).unwrap().unwrap().message_id;
    store.claim_due(NOW, 10).unwrap();
    store.mark_handed_over(id, NOW).unwrap();
    // A crash: the claims are never finished. Not stale yet: left alone.
    let recovery = store
        .recover_claimed(NOW + 599, 600, RecoveryPolicy::ResendOnce)
        .unwrap();
    assert_eq!((recovery.unknown, recovery.released), (0, 0));
    let recovery = store
        .recover_claimed(NOW + 600, 600, RecoveryPolicy::ResendOnce)
        .unwrap();
    // The one handed over may have arrived: unknown, resent; the other was never sent: queued
    // again, its attempt given back, nothing counted.
    assert_eq!(
        (recovery.unknown, recovery.requeued, recovery.released),
        (1, 1, 1)
    );
    let row = store.outbox_email(id).unwrap().unwrap();
    assert_eq!((row.state, row.recoveries), (OutboxState::Queued, 1));
    let row = store.outbox_email(never_sent).unwrap().unwrap();
    assert_eq!(
        (row.state, row.recoveries, row.attempts),
        (OutboxState::Queued, 0, 0)
    );
    store.cancel_email(never_sent, NOW + 600).unwrap();
    // Each further crash that catches it handed over resends it again, up to the limit; then
    // it is held as unknown.
    for crash in 1..=MAX_CRASH_RESENDS {
        let at = NOW + 600 * i64::from(crash);
        let claim = store.claim_due(at, 10).unwrap();
        assert_eq!(claim.emails[0].message_id, message_id);
        store.mark_handed_over(id, at).unwrap();
        let recovery = store
            .recover_claimed(at + 600, 600, RecoveryPolicy::ResendOnce)
            .unwrap();
        let resent = u64::from(crash < MAX_CRASH_RESENDS);
        assert_eq!((recovery.unknown, recovery.requeued), (1, resent));
    }
    assert_eq!(
        store.outbox_email(id).unwrap().unwrap().state,
        OutboxState::Unknown
    );
    let (counts, recovered) = store.outbox_counts().unwrap();
    assert_eq!(recovered, u64::from(MAX_CRASH_RESENDS));
    assert!(counts.contains(&(OutboxState::Unknown, 1)));

    // Under Hold a handed-over stale claim is only marked unknown.
    let other = queue(&mut store, &["ann"], "third", NOW)[0].unwrap();
    store.claim_due(NOW + 5000, 10).unwrap();
    store.mark_handed_over(other, NOW + 5000).unwrap();
    let recovery = store
        .recover_claimed(NOW + 6000, 600, RecoveryPolicy::Hold)
        .unwrap();
    assert_eq!((recovery.unknown, recovery.requeued), (1, 0));
    assert_eq!(
        store.outbox_email(other).unwrap().unwrap().state,
        OutboxState::Unknown
    );
    // A hand-over is recorded only for a claimed email.
    let err = store.mark_handed_over(other, NOW + 6000).unwrap_err();
    assert!(matches!(err, StoreError::EmailState { .. }), "{err:?}");
}

#[test]
fn unknown_and_failed_emails_are_changed_in_bulk_by_state_rule_and_time() {
    let (_dir, _path, mut store) = new_store();
    seed(&mut store);
    let ids: Vec<i64> = queue(&mut store, &["ann"], "care", NOW)
        .into_iter()
        .chain(queue(&mut store, &["ann"], "other", NOW))
        .map(Option::unwrap)
        .collect();
    store.claim_due(NOW, 10).unwrap();
    store.mark_unknown(ids[0], NOW + 1, "no answer").unwrap();
    store.mark_unknown(ids[1], NOW + 5, "no answer").unwrap();
    let unknown = |rule: Option<&str>, since: Option<i64>| BulkFilter {
        state: OutboxState::Unknown,
        rule: rule.map(str::to_owned),
        since,
    };
    assert_eq!(
        store
            .retry_emails(&unknown(Some("none"), None), NOW + 9)
            .unwrap(),
        0
    );
    assert_eq!(
        store
            .retry_emails(&unknown(None, Some(NOW + 5)), NOW + 9)
            .unwrap(),
        1
    );
    assert_eq!(
        store.outbox_email(ids[1]).unwrap().unwrap().state,
        OutboxState::Queued
    );
    assert_eq!(
        store.cancel_emails(&unknown(None, None), NOW + 9).unwrap(),
        1
    );
    assert_eq!(
        store.outbox_email(ids[0]).unwrap().unwrap().state,
        OutboxState::Cancelled
    );
    let queued = BulkFilter {
        state: OutboxState::Queued,
        rule: None,
        since: None,
    };
    let err = store.retry_emails(&queued, NOW + 9).unwrap_err();
    assert!(matches!(err, StoreError::EmailState { .. }), "{err:?}");
}

#[test]
fn claims_released_by_a_stopping_sender_are_queued_again_without_an_attempt() {
    let (_dir, _path, mut store) = new_store();
    seed(&mut store);
    let first = queue(&mut store, &["ann"], "care", NOW)[0].unwrap();
    let second = queue(&mut store, &["ann"], "other", NOW)[0].unwrap();
    let claim = store.claim_due(NOW, 10).unwrap();
    assert_eq!(claim.emails.len(), 2);
    store.mark_sent(first, NOW + 1, "250 ok").unwrap();
    // The sender stops before sending the second: only the still-claimed one is released.
    assert_eq!(store.release_claims(&[first, second], NOW + 2).unwrap(), 1);
    let row = store.outbox_email(second).unwrap().unwrap();
    assert_eq!(
        (row.state, row.attempts, row.claimed_at, row.due_at),
        (OutboxState::Queued, 0, None, NOW)
    );
    assert_eq!(
        store.outbox_email(first).unwrap().unwrap().state,
        OutboxState::Sent
    );
    let events = store.outbox_events(second).unwrap();
    let last = events.last().unwrap();
    assert_eq!(
        (last.from_state.as_deref(), last.to_state.as_str()),
        (Some("claimed"), "queued")
    );
    // Due again at once, with the same Message-ID; releasing twice changes nothing.
    assert_eq!(store.release_claims(&[second], NOW + 3).unwrap(), 0);
    let again = store.claim_due(NOW + 3, 10).unwrap();
    assert_eq!(again.emails.len(), 1);
    assert_eq!(again.emails[0].message_id, row.message_id);
    assert_eq!(again.emails[0].attempts, 1);
}

#[test]
fn retry_and_cancel_by_hand_only_from_their_states() {
    let (_dir, path, mut store) = new_store();
    seed(&mut store);
    let id = queue(&mut store, &["ann"], "care", NOW)[0].unwrap();
    let err = store.retry_email(id, NOW).unwrap_err();
    assert!(matches!(err, StoreError::EmailState { .. }), "{err}");
    store.cancel_email(id, NOW).unwrap();
    assert_eq!(followup_status(&path, id).0, "cancelled");
    assert!(store.claim_due(NOW, 10).unwrap().emails.is_empty());
    let retried = store.retry_email(id, NOW + 5).unwrap();
    assert_eq!(
        (retried.state, retried.due_at),
        (OutboxState::Queued, NOW + 5)
    );
    assert_eq!(followup_status(&path, id).0, "planned");
    store.claim_due(NOW + 5, 10).unwrap();
    let err = store.cancel_email(id, NOW + 6).unwrap_err();
    assert!(err.to_string().contains("is claimed"), "{err}");
    assert!(matches!(
        store.cancel_email(999, NOW).unwrap_err(),
        StoreError::UnknownEmail { id: 999 }
    ));
}

#[test]
fn the_suppression_list_holds_hashes_only() {
    let (_dir, path, mut store) = new_store();
    assert!(
        store
            .suppress("a@example.com", SuppressionReason::Manual, "cli", NOW)
            .unwrap()
    );
    assert!(
        !store
            .suppress("A@EXAMPLE.COM ", SuppressionReason::Unsubscribe, "cli", NOW)
            .unwrap(),
        "same address, first entry kept"
    );
    assert!(
        store
            .suppress_hash(
                &address_hash("b@example.com"),
                SuppressionReason::Unsubscribe,
                "token",
                NOW
            )
            .unwrap()
    );
    assert!(store.is_suppressed("b@example.com").unwrap());
    assert!(
        store
            .suppress_hash("nothex", SuppressionReason::Manual, "x", NOW)
            .is_err()
    );
    assert!(
        store
            .suppress(" ", SuppressionReason::Manual, "x", NOW)
            .is_err()
    );
    let stored: Vec<String> = Connection::open(&path)
        .unwrap()
        .prepare("SELECT address_hash || reason || source FROM suppressions")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(stored.iter().all(|row| !row.contains('@')), "{stored:?}");
    assert_eq!(
        store.suppression_counts().unwrap(),
        [("manual".to_owned(), 1), ("unsubscribe".to_owned(), 1)]
    );
}

#[test]
fn owner_notifications_go_to_the_owner_without_a_consent_check() {
    let (_dir, _path, mut store) = new_store();
    seed(&mut store);
    seed_manager(
        &mut store,
        &tiercare_store::ManagerRecord {
            email: Some("mia@example.com".into()),
            active: Some(true),
            ..manager("M1", "Mia")
        },
    );
    let mut session = store.begin_followups(NOW, "v1").unwrap();
    let mut notify = email("tell", "bob", NOW, "owner-note");
    notify.action = tiercare_store::FollowUpAction::NotifyOwner {
        template: "owner-note".into(),
    };
    let id = session
        .record_with_email(&notify, Some(&mut compose))
        .unwrap()
        .outbox_id
        .unwrap();
    session.finish().unwrap();
    let claim = store.claim_due(NOW, 10).unwrap();
    assert_eq!(
        claim.emails.len(),
        1,
        "bob's lack of consent is not the owner's"
    );
    let email = &claim.emails[0];
    assert_eq!(email.id, id);
    assert_eq!(email.recipient_kind, RecipientKind::Owner);
    assert_eq!(email.to_address, "mia@example.com");
    assert_eq!(email.to_name.as_deref(), Some("Mia"));
}

/// Re-entry counts from what the customer was given: the planner's state carries, per rule,
/// when the e-mail was sent (or is due, while queued), and nothing for one that failed.
#[test]
fn the_follow_up_state_says_what_each_rule_gave_the_customer() {
    let (_dir, _path, mut store) = new_store();
    seed(&mut store);
    let sent = queue(&mut store, &["ann"], "sent", NOW)[0].unwrap();
    let failed = queue(&mut store, &["ann"], "failed", NOW)[0].unwrap();
    queue(&mut store, &["ann"], "queued", NOW + 60);
    assert_eq!(store.claim_due(NOW, 10).unwrap().emails.len(), 2);
    store.mark_sent(sent, NOW + 7, "250 ok").unwrap();
    store
        .mark_failed(failed, NOW + 7, "550 no such user", false)
        .unwrap();

    let all = crate::followups::states(&store, NOW - 1, NOW, NOW - 1);
    let ann = all
        .iter()
        .find(|state| !state.last.is_empty())
        .expect("ann's state");
    let given: Vec<(&str, Option<(i64, i64)>)> = ann
        .last
        .iter()
        .map(|last| (last.rule_id.as_str(), last.last_given))
        .collect();
    assert_eq!(
        given,
        [
            ("failed", None),
            ("queued", Some((NOW + 60, NOW + 60))),
            ("sent", Some((NOW + 7, NOW))),
        ]
    );
}
