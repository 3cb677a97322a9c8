//! The owner audit and the public pool's pass: warnings once per cycle, reclaims in one
//! transaction, and the calls the managers' digest uses.

use tiercare_store::{OwnerChange, PoolAction};

use crate::fixture::NOW;
use crate::fixture::new_store;
use crate::followups::{DAY, rowid, seed_team};

/// `(from, to, kind, by)` of an audit row.
type Change<'a> = (Option<&'a str>, Option<&'a str>, &'a str, Option<&'a str>);

fn kinds(changes: &[OwnerChange]) -> Vec<Change<'_>> {
    changes
        .iter()
        .map(|c| {
            (
                c.from_owner.as_deref(),
                c.to_owner.as_deref(),
                c.kind.as_str(),
                c.changed_by.as_deref(),
            )
        })
        .collect()
}

#[test]
fn every_change_of_owner_is_audited_and_a_pass_warns_then_reclaims() {
    let (_dir, path, mut store) = new_store();
    seed_team(&mut store, &[("ann", Some("M1")), ("bob", None)]);
    let (ann, bob) = (rowid(&store, "ann"), rowid(&store, "bob"));
    // The import that gave ann an owner is audited; bob's assignment too.
    assert_eq!(
        store
            .assign_owners(&[(bob, "M2".into())], NOW + DAY)
            .unwrap(),
        1
    );
    assert_eq!(
        kinds(&store.owner_changes_of("ann").unwrap()),
        [(None, Some("M1"), "set", None)]
    );
    let bobs = store.owner_changes_of("bob").unwrap();
    assert_eq!(
        kinds(&bobs),
        [(None, Some("M2"), "assigned", Some("assignment"))]
    );
    assert_eq!(bobs[0].reason, "assigned: tier none");
    assert_eq!(bobs[0].at, NOW + DAY);
    assert_eq!(store.assignments_since("M2", NOW + DAY).unwrap().len(), 1);
    assert!(
        store
            .assignments_since("M2", NOW + DAY + 1)
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.claims_since(NOW).unwrap().get("M2"), Some(&1));
    assert_eq!(
        store.claims_since(NOW).unwrap().get("M1"),
        None,
        "an import is no claim"
    );
    // No tiers yet: the pass reads nobody.
    let outcome = store
        .pool_pass(NOW + 2 * DAY, &["A"], None, |_| PoolAction::default())
        .unwrap();
    assert_eq!(outcome.read, 0);
    // With tiers: warn ann, then reclaim her; bob is left alone.
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch(&format!(
            "INSERT INTO assessments (id, at, ruleset_version, started_at, finished_at, \
             customers, changed, rule_errors) VALUES (1, {NOW}, 'v', {NOW}, {NOW}, 2, 2, 0);
             INSERT INTO customer_tiers (customer_id, tier, since, assessment_id) VALUES \
             ({ann}, 'A', {NOW}, 1), ({bob}, 'A', {NOW}, 1);"
        ))
        .unwrap();
    let warn = |at: i64| {
        move |facts: &tiercare_store::PoolFacts| PoolAction {
            warn: (facts.owner == "M1").then(|| (at + DAY, "no follow-up for 30 days".into())),
            reclaim: None,
            task: (facts.owner == "M1").then(|| "Follow up with ann".into()),
        }
    };
    let at = NOW + 3 * DAY;
    let first = store.pool_pass(at, &["A"], None, warn(at)).unwrap();
    assert_eq!((first.read, first.warned, first.reclaimed), (2, 1, 0));
    assert_eq!(first.tasks, 1, "the warned owner's task");
    let again = store.pool_pass(at, &["A"], None, warn(at)).unwrap();
    assert_eq!(
        (again.warned, again.tasks),
        (0, 0),
        "a cycle is warned once"
    );
    let warnings = store.reclaim_warnings("M1", at).unwrap();
    assert_eq!(warnings.len(), 1);
    assert_eq!(
        (warnings[0].customer.as_str(), warnings[0].reclaim_at),
        ("ann", at + DAY)
    );
    assert!(store.reclaim_warnings("M1", at - 1).unwrap().is_empty());
    let facts = store.pool_facts(at, &["A"], None).unwrap();
    assert_eq!(facts[0].warning, Some((at + DAY, at)));
    assert_eq!(facts[0].owner_since, NOW);
    let reclaimed = store
        .pool_pass(at + DAY, &["A"], None, |facts| PoolAction {
            warn: None,
            reclaim: (facts.owner == "M1").then(|| "reclaimed: no follow-up for 31 days".into()),
            task: None,
        })
        .unwrap();
    assert_eq!(reclaimed.reclaimed, 1);
    assert_eq!(store.customer("ann").unwrap().unwrap().owner, None);
    let changes = store.owner_changes_of("ann").unwrap();
    assert_eq!(
        kinds(&changes)[1],
        (Some("M1"), None, "reclaimed", Some("pool"))
    );
    assert_eq!(changes[1].reason, "reclaimed: no follow-up for 31 days");
    assert_eq!(changes[1].at, at + DAY);
    assert!(
        store.reclaim_warnings("M1", at + DAY).unwrap().is_empty(),
        "no longer theirs"
    );
    let from = store.reclaimed_from_since(at + DAY).unwrap();
    assert_eq!(from.get(&ann), Some(&vec!["M1".to_owned()]));
    assert_eq!(from.get(&bob), None);
    assert!(store.reclaimed_from_since(at + DAY + 1).unwrap().is_empty());
    let unowned = store.unowned_customers(Some(&["A"])).unwrap();
    assert_eq!(unowned.len(), 1);
    // By hand: to a manager, again (nothing changes), and back to the pool.
    assert!(
        store
            .set_owner("ann", Some("M2"), "asked for", "lead", at + 2 * DAY)
            .unwrap()
    );
    assert!(
        !store
            .set_owner("ann", Some("M2"), "again", "lead", at + 2 * DAY)
            .unwrap()
    );
    assert!(
        store
            .set_owner("ann", None, "", "lead", at + 3 * DAY)
            .unwrap()
    );
    let changes = store.owner_changes_of("ann").unwrap();
    assert_eq!(
        kinds(&changes)[2..],
        [
            (None, Some("M2"), "set", Some("lead")),
            (Some("M2"), None, "set", Some("lead"))
        ]
    );
    assert_eq!(changes[2].reason, "set by hand: asked for");
    assert!(matches!(
        store
            .set_owner("ann", Some("M3"), "", "lead", at)
            .unwrap_err(),
        tiercare_store::StoreError::InactiveManager { .. }
    ));
}

#[test]
fn a_pool_pass_reads_without_the_write_lock_and_decides_again_on_what_changed_meanwhile() {
    let (_dir, path, mut store) = new_store();
    seed_team(&mut store, &[("ann", Some("M1")), ("bob", Some("M1"))]);
    let (ann, bob) = (rowid(&store, "ann"), rowid(&store, "bob"));
    let other = rusqlite::Connection::open(&path).unwrap();
    other
        .busy_timeout(std::time::Duration::from_millis(50))
        .unwrap();
    other
        .execute_batch(&format!(
            "INSERT INTO assessments (id, at, ruleset_version, started_at, finished_at, \
             customers, changed, rule_errors) VALUES (1, {NOW}, 'v', {NOW}, {NOW}, 2, 2, 0);
             INSERT INTO customer_tiers (customer_id, tier, since, assessment_id) VALUES \
             ({ann}, 'A', {NOW}, 1), ({bob}, 'A', {NOW}, 1);"
        ))
        .unwrap();
    let at = NOW + 40 * DAY;
    // While the pass reads (its first question), another connection writes: ann's owner logs
    // a call. The write must not wait for the pass, and the pass must see it before it acts.
    let mut written: Option<rusqlite::Result<usize>> = None;
    let mut asked = Vec::new();
    let outcome = store
        .pool_pass(at, &["A"], None, |facts| {
            if written.is_none() {
                written = Some(other.execute(
                    "INSERT INTO interactions (external_id, customer_id, kind, occurred_at, \
                     by_manager) VALUES ('call-1', ?1, 'call', ?2, 'M1')",
                    rusqlite::params![ann, at - DAY],
                ));
            }
            asked.push((facts.rowid, facts.last_followup));
            PoolAction {
                warn: None,
                reclaim: facts
                    .last_followup
                    .is_none()
                    .then(|| "reclaimed: no follow-up for 31 days".into()),
                task: None,
            }
        })
        .unwrap();
    assert_eq!(
        written
            .unwrap()
            .expect("the write was not blocked by the pass's read"),
        1
    );
    // Read: both without a follow-up. Re-checked under the write lock: ann's call is seen.
    assert_eq!(
        asked,
        [(ann, None), (bob, None), (ann, Some(at - DAY)), (bob, None)]
    );
    assert_eq!((outcome.read, outcome.reclaimed), (2, 1));
    assert_eq!(
        store.customer("ann").unwrap().unwrap().owner.as_deref(),
        Some("M1"),
        "followed up meanwhile: kept"
    );
    assert_eq!(store.customer("bob").unwrap().unwrap().owner, None);
}
