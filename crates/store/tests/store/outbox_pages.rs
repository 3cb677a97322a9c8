//! The outbox as the staff workspace reads it: pages newest first by keyset, counts and held
//! e-mails scoped to one manager's customers, and the owner of an e-mail's customer.

use tiercare_store::{CustomerRecord, ImportKind, OutboxQuery, OutboxState, Store};

use crate::fixture::{NOW, import_at, new_store, options};
use crate::outbox::{queue, seed};

/// `seed`'s customers (ann, bob, cyd, owned by M1) and dan, owned by M2, at another domain.
fn seed_two_owners(store: &mut Store) {
    seed(store);
    import_at(store, ImportKind::Customers, options("d.csv"), NOW, |s| {
        s.customer(
            2,
            &CustomerRecord {
                external_id: "dan".into(),
                name: Some("Name dan".into()),
                email: Some("dan@Other.example".into()),
                consent_email: Some(true),
                owner: Some("M2".into()),
                ..CustomerRecord::default()
            },
        )
        .unwrap();
    });
}

fn ids(emails: &[tiercare_store::OutboxEmail]) -> Vec<i64> {
    emails.iter().map(|email| email.id).collect()
}

#[test]
fn pages_go_newest_first_by_keyset_and_a_manager_sees_only_their_customers() {
    let (_dir, _path, mut store) = new_store();
    seed_two_owners(&mut store);
    let mut all = Vec::new();
    for template in ["a", "b", "c"] {
        all.extend(
            queue(&mut store, &["ann", "dan"], template, NOW)
                .into_iter()
                .flatten(),
        );
    }
    assert_eq!(all.len(), 6);
    let page = |store: &Store, before, owner: Option<&str>, state| {
        store
            .outbox_page(&OutboxQuery {
                state,
                owner: owner.map(Into::into),
                before,
                limit: 4,
            })
            .unwrap()
    };
    let first = page(&store, None, None, None);
    let mut newest_first = all.clone();
    newest_first.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(ids(&first), newest_first[..4]);
    let second = page(&store, first.last().map(|e| e.id), None, None);
    assert_eq!(ids(&second), newest_first[4..]);

    // M2 owns dan only: three e-mails, and counts of those alone.
    let dans = page(&store, None, Some("M2"), None);
    assert_eq!(dans.len(), 3);
    assert!(dans.iter().all(|e| e.customer_id.as_deref() == Some("dan")));
    assert_eq!(
        store.outbox_email_owner(dans[0].id).unwrap().as_deref(),
        Some("M2")
    );
    assert_eq!(store.outbox_email_owner(999).unwrap(), None);
    let counts = store.outbox_counts_of(Some("M2")).unwrap();
    assert_eq!(counts.len(), OutboxState::ALL.len());
    assert!(counts.contains(&(OutboxState::Queued, 3)));
    let everyone = store.outbox_counts_of(None).unwrap();
    assert!(everyone.contains(&(OutboxState::Queued, 6)));

    // A state filter with an owner: cancel one of dan's, it leaves the queued page.
    store.cancel_email(dans[0].id, NOW + 1).unwrap();
    let queued = page(&store, None, Some("M2"), Some(OutboxState::Queued));
    assert_eq!(ids(&queued), ids(&dans[1..]));
    let cancelled = page(&store, None, None, Some(OutboxState::Cancelled));
    assert_eq!(ids(&cancelled), [dans[0].id]);
}

#[test]
fn held_emails_are_the_deferred_and_the_due_ones_of_paused_domains() {
    let (_dir, _path, mut store) = new_store();
    seed_two_owners(&mut store);
    let ann = queue(&mut store, &["ann"], "a", NOW)[0].unwrap();
    let dan = queue(&mut store, &["dan"], "a", NOW)[0].unwrap();
    let later = queue(&mut store, &["dan"], "b", NOW + 3600)[0].unwrap();
    // Nothing is held while no domain is paused and nothing was deferred.
    assert!(store.held_emails(NOW, &[], None, 10).unwrap().is_empty());
    // dan's domain is paused: his due e-mail is held, the later one not yet.
    let paused = vec!["other.example".to_owned()];
    assert_eq!(
        ids(&store.held_emails(NOW, &paused, None, 10).unwrap()),
        [dan]
    );
    // ann's e-mail is deferred by a transient failure.
    let claim = store.claim_due_except(NOW, 10, &paused).unwrap();
    assert_eq!(ids(&claim.emails), [ann]);
    store
        .mark_deferred(ann, NOW, NOW + 600, "451 try later")
        .unwrap();
    assert_eq!(
        ids(&store.held_emails(NOW, &paused, None, 10).unwrap()),
        [dan, ann]
    );
    assert_eq!(
        ids(&store.held_emails(NOW, &paused, Some("M1"), 10).unwrap()),
        [ann]
    );
    assert_eq!(
        ids(&store
            .held_emails(NOW + 7200, &paused, Some("M2"), 10)
            .unwrap()),
        [later, dan]
    );
}
