//! The follow-up ledger: idempotent recording, tasks and attributes in the
//! same transaction, all-or-nothing sessions, the planner's streamed state
//! (last occurrence per rule, e-mail times, events in a range, segments)
//! and contact counts.

use rusqlite::Connection;
use serde_json::json;
use tiercare_store::{
    AssessmentHeader, Assignee, Channel, ComplaintRecord, ContactCounts, CustomerEvent,
    CustomerFollowUpState, CustomerRecord, EventKind, FeedbackRecord, FollowUpAction,
    FollowUpOutcome, FollowUpStatus, ImportKind, InteractionRecord, LastOccurrence, ManagerRecord,
    OccurrenceKey, PlannedFollowUp, Recorded, StateRange, Store, StoreError, TaskFilter,
    TierDecision, Window,
};

use crate::fixture::{NOW, dump, import_at, new_store, options, seed_customers};

pub const DAY: i64 = 86_400;

pub fn rowid(store: &Store, id: &str) -> i64 {
    store.customer(id).unwrap().unwrap().id
}

/// Every customer's streamed follow-up state (events in `(since, until]`, e-mails after
/// `emails_since`, segments), with features at `until`, by rowid.
pub fn states(
    store: &Store,
    since: i64,
    until: i64,
    emails_since: i64,
) -> Vec<CustomerFollowUpState> {
    let mut out = Vec::new();
    let range = StateRange {
        events_since: since,
        events_until: until,
        emails_since,
        segments: true,
    };
    store
        .for_each_followup_state(until, Window::All, range, &mut |features, state| {
            assert_eq!(features.customer_rowid, state.customer_rowid);
            out.push(state.clone());
        })
        .unwrap();
    out
}

/// The state of the customer with `rowid` in `states`.
pub fn state_of(states: &[CustomerFollowUpState], rowid: i64) -> &CustomerFollowUpState {
    states
        .iter()
        .find(|state| state.customer_rowid == rowid)
        .unwrap()
}

pub fn email(rule: &str, customer: &str, at: i64, template: &str) -> PlannedFollowUp {
    PlannedFollowUp {
        key: OccurrenceKey::new(rule, customer, at),
        scheduled_at: at,
        action: FollowUpAction::Email {
            template: template.into(),
            survey: None,
            coupon: None,
        },
        reason: format!("{rule} fired"),
        skip: None,
    }
}

pub fn task(
    rule: &str,
    customer: &str,
    at: i64,
    assignee: Assignee,
    title: &str,
) -> PlannedFollowUp {
    PlannedFollowUp {
        key: OccurrenceKey::new(rule, customer, at),
        scheduled_at: at,
        action: FollowUpAction::Task {
            assignee,
            title: title.into(),
            due_at: at + DAY,
            note: None,
        },
        reason: format!("{rule} fired"),
        skip: None,
    }
}

/// Customers `ids` with the given owners, and managers M1 (senior), M2
/// (senior), M3 (junior, inactive).
pub fn seed_team(store: &mut Store, customers: &[(&str, Option<&str>)]) {
    import_at(store, ImportKind::Managers, options("m.csv"), NOW, |s| {
        for (line, (id, role, active)) in (2..).zip([
            ("M1", "senior", true),
            ("M2", "senior", true),
            ("M3", "junior", false),
        ]) {
            s.manager(
                line,
                &ManagerRecord {
                    external_id: id.into(),
                    name: format!("Manager {id}"),
                    role: Some(role.into()),
                    capacity: Some(2),
                    active: Some(active),
                    ..ManagerRecord::default()
                },
            )
            .unwrap();
        }
    });
    import_at(store, ImportKind::Customers, options("c.csv"), NOW, |s| {
        for (line, (id, owner)) in (2..).zip(customers) {
            s.customer(
                line,
                &CustomerRecord {
                    external_id: (*id).into(),
                    name: Some(format!("Name {id}")),
                    owner: owner.map(Into::into),
                    ..CustomerRecord::default()
                },
            )
            .unwrap();
        }
    });
}

#[test]
fn the_same_occurrence_is_recorded_once() {
    let (_dir, _path, mut store) = new_store();
    seed_customers(&mut store, &["ann", "bob"]);
    let at = NOW + DAY;
    let mut session = store.begin_followups(NOW, "v1").unwrap();
    let first = session.record(&email("care", "ann", at, "care")).unwrap();
    assert!(first.new);
    assert_eq!(first.status, FollowUpStatus::Planned);
    // Same occurrence, another action: still the same occurrence.
    let again = session.record(&email("care", "ann", at, "other")).unwrap();
    assert_eq!(
        again,
        Recorded {
            new: false,
            ..first.clone()
        }
    );
    // Another time, rule or customer is another occurrence.
    assert!(
        session
            .record(&email("care", "ann", at + 1, "care"))
            .unwrap()
            .new
    );
    assert!(
        session
            .record(&email("care2", "ann", at, "care"))
            .unwrap()
            .new
    );
    assert!(
        session
            .record(&email("care", "bob", at, "care"))
            .unwrap()
            .new
    );
    assert_eq!(
        session.finish().unwrap(),
        FollowUpOutcome {
            new: 4,
            existing: 1,
            planned: 4,
            ..FollowUpOutcome::default()
        }
    );

    // Planning again later (another rule set) finds what was decided.
    let mut session = store.begin_followups(NOW + 60, "v2").unwrap();
    let replanned = session.record(&email("care", "ann", at, "care")).unwrap();
    assert_eq!(replanned.followup_id, first.followup_id);
    assert!(!replanned.new);
    assert_eq!(session.finish().unwrap().existing, 1);

    let stored = store
        .followup(&OccurrenceKey::new("care", "ann", at))
        .unwrap()
        .unwrap();
    assert_eq!(stored.id, first.followup_id);
    assert_eq!(stored.occurrence_key, format!("care:{at}:ann"));
    assert_eq!(
        stored.action,
        FollowUpAction::Email {
            template: "care".into(),
            survey: None,
            coupon: None,
        }
    );
    assert_eq!(stored.reason, "care fired");
    assert_eq!(
        (stored.decided_at, stored.ruleset_version.as_str()),
        (NOW, "v1")
    );
    assert_eq!(
        (stored.status, stored.status_at),
        (FollowUpStatus::Planned, NOW)
    );
    assert_eq!(store.followups_of("ann").unwrap().len(), 3);
    assert_eq!(store.followups_of("bob").unwrap().len(), 1);
    assert!(matches!(
        store.followups_of("nobody"),
        Err(StoreError::UnknownCustomer { .. })
    ));
}

#[test]
fn a_task_follow_up_creates_its_task_with_it() {
    let (_dir, path, mut store) = new_store();
    seed_team(&mut store, &[("ann", Some("M2")), ("bob", None)]);
    let before = dump(&path);
    let at = NOW + DAY;

    // Dropped: neither the follow-ups nor the tasks exist.
    {
        let mut session = store.begin_followups(NOW, "v1").unwrap();
        let recorded = session
            .record(&task("review", "ann", at, Assignee::Owner, "Review"))
            .unwrap();
        assert!(recorded.task_id.is_some());
    }
    assert_eq!(dump(&path), before);

    let mut session = store.begin_followups(NOW, "v1").unwrap();
    let owner = session
        .record(&task("review", "ann", at, Assignee::Owner, "Review ann"))
        .unwrap();
    assert_eq!(owner.status, FollowUpStatus::Done);
    // M1 and M2 are senior; M2 has a task now, so M1 is the less loaded.
    let role = session
        .record(&task(
            "call",
            "bob",
            at,
            Assignee::Role("senior".into()),
            "Call bob",
        ))
        .unwrap();
    let named = session
        .record(&task(
            "visit",
            "bob",
            at,
            Assignee::Manager("M2".into()),
            "Visit bob",
        ))
        .unwrap();
    // No owner, no active junior: skipped with the reason, no task.
    let no_owner = session
        .record(&task("review", "bob", at, Assignee::Owner, "Review bob"))
        .unwrap();
    let no_role = session
        .record(&task("x", "bob", at, Assignee::Role("junior".into()), "X"))
        .unwrap();
    let outcome = session.finish().unwrap();
    assert_eq!(
        outcome,
        FollowUpOutcome {
            new: 5,
            skipped: 2,
            tasks_created: 3,
            ..FollowUpOutcome::default()
        }
    );
    assert_eq!(no_owner.status, FollowUpStatus::Skipped);
    assert_eq!(
        no_owner.status_reason.as_deref(),
        Some("the customer has no owner to assign the task to")
    );
    assert_eq!(no_owner.task_id, None);
    assert_eq!(
        no_role.status_reason.as_deref(),
        Some("no available manager has the role 'junior' to assign the task to")
    );

    let all = TaskFilter::default();
    let tasks = store.tasks(&all, NOW).unwrap();
    let summary: Vec<_> = tasks
        .iter()
        .map(|t| {
            (
                t.id,
                t.followup_id,
                t.customer_id.as_str(),
                t.assignee.as_str(),
                t.title.as_str(),
                t.due_at,
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                owner.task_id.unwrap(),
                Some(owner.followup_id),
                "ann",
                "M2",
                "Review ann",
                at + DAY
            ),
            (
                role.task_id.unwrap(),
                Some(role.followup_id),
                "bob",
                "M1",
                "Call bob",
                at + DAY
            ),
            (
                named.task_id.unwrap(),
                Some(named.followup_id),
                "bob",
                "M2",
                "Visit bob",
                at + DAY
            ),
        ]
    );
    assert_eq!(tasks[0].rule_id.as_deref(), Some("review"));
    assert_eq!(tasks[0].customer_name.as_deref(), Some("Name ann"));
    assert_eq!(tasks[0].created_at, NOW);
}

#[test]
fn a_failure_midway_leaves_nothing_and_spoils_the_session() {
    let (_dir, path, mut store) = new_store();
    seed_team(&mut store, &[("ann", Some("M1"))]);
    // The task insert fails after the follow-up row was written.
    Connection::open(&path)
        .unwrap()
        .execute_batch(
            "CREATE TRIGGER no_tasks BEFORE INSERT ON tasks \
             BEGIN SELECT RAISE(ABORT, 'no tasks today'); END;",
        )
        .unwrap();
    let before = dump(&path);

    let mut session = store.begin_followups(NOW, "v1").unwrap();
    assert!(
        session
            .record(&email("care", "ann", NOW, "care"))
            .unwrap()
            .new
    );
    let err = session
        .record(&task("review", "ann", NOW, Assignee::Owner, "Review"))
        .unwrap_err();
    assert!(matches!(err, StoreError::Sqlite(_)), "{err:?}");
    let err = session
        .record(&email("care", "ann", NOW + 1, "care"))
        .unwrap_err();
    assert!(
        matches!(err, StoreError::FollowUpsAborted { .. }),
        "{err:?}"
    );
    let err = session.finish().unwrap_err();
    assert!(
        matches!(err, StoreError::FollowUpsAborted { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("nothing was written"));
    assert_eq!(dump(&path), before);
}

#[test]
fn refused_follow_ups_write_nothing_and_the_session_goes_on() {
    let (_dir, _path, mut store) = new_store();
    seed_customers(&mut store, &["ann"]);
    let mut session = store.begin_followups(NOW, "v1").unwrap();
    let err = session
        .record(&email("care", "nobody", NOW, "care"))
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::UnknownCustomer { id } if id == "nobody"),
        "{err:?}"
    );
    let err = session.record(&email("care", "ann", NOW, " ")).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "cannot record follow-up care:{NOW}:ann: the e-mail template is empty: name a template"
        )
    );
    let mut blank_skip = email("care", "ann", NOW, "care");
    blank_skip.skip = Some(String::new());
    assert!(matches!(
        session.record(&blank_skip),
        Err(StoreError::InvalidFollowUp { .. })
    ));
    let err = session.record(&email("", "ann", NOW, "care")).unwrap_err();
    assert!(matches!(err, StoreError::InvalidFollowUp { .. }), "{err:?}");
    assert!(
        session
            .record(&email("care", "ann", NOW, "care"))
            .unwrap()
            .new
    );
    assert_eq!(session.finish().unwrap().new, 1);
    assert_eq!(store.followups_of("ann").unwrap().len(), 1);
}

#[test]
fn several_attributes_are_set_together_with_one_follow_up() {
    let (_dir, path, mut store) = new_store();
    seed_customers(&mut store, &["ann"]);
    let mut values = serde_json::Map::new();
    values.insert("coupon_issued".into(), json!(true));
    values.insert("coupon_code".into(), json!("WELCOME10"));
    let planned = PlannedFollowUp {
        key: OccurrenceKey::new("coupon", "ann", NOW),
        scheduled_at: NOW,
        action: FollowUpAction::SetAttributes { values },
        reason: "win-back".into(),
        skip: None,
    };
    let mut session = store.begin_followups(NOW, "v1").unwrap();
    assert_eq!(
        session.record(&planned).unwrap().status,
        FollowUpStatus::Done
    );
    assert!(!session.record(&planned).unwrap().new);
    // An empty set is refused before anything is written; the session goes on.
    let mut empty = planned.clone();
    empty.key = OccurrenceKey::new("coupon", "ann", NOW + 1);
    empty.action = FollowUpAction::SetAttributes {
        values: serde_json::Map::new(),
    };
    let err = session.record(&empty).unwrap_err();
    assert!(err.to_string().contains("no attribute to set"), "{err}");
    assert_eq!(session.finish().unwrap().attributes_set, 2);
    let ann = store.customer("ann").unwrap().unwrap();
    assert_eq!(
        serde_json::Value::Object(ann.attributes),
        json!({"coupon_issued": true, "coupon_code": "WELCOME10"})
    );
    let stored = &store.followups_of("ann").unwrap()[0];
    assert_eq!(stored.action, planned.action);
    let conn = Connection::open(&path).unwrap();
    let kind: String = conn
        .query_row("SELECT kind FROM followups", [], |row| row.get(0))
        .unwrap();
    assert_eq!(kind, "set_attribute");
}

#[test]
fn set_attribute_merges_into_the_customer_with_the_follow_up() {
    let (_dir, _path, mut store) = new_store();
    import_at(
        &mut store,
        ImportKind::Customers,
        options("c.csv"),
        NOW,
        |s| {
            let mut ann = CustomerRecord {
                external_id: "ann".into(),
                ..CustomerRecord::default()
            };
            ann.attributes.insert("source".into(), json!("fair"));
            ann.attributes.insert("stage".into(), json!("new"));
            s.customer(2, &ann).unwrap();
        },
    );
    let mut session = store.begin_followups(NOW + 60, "v1").unwrap();
    let recorded = session
        .record(&PlannedFollowUp {
            key: OccurrenceKey::new("promote", "ann", NOW),
            scheduled_at: NOW,
            action: FollowUpAction::SetAttribute {
                name: "stage".into(),
                value: json!("loyal"),
            },
            reason: "third order".into(),
            skip: None,
        })
        .unwrap();
    assert_eq!(recorded.status, FollowUpStatus::Done);
    assert_eq!(session.finish().unwrap().attributes_set, 1);
    let ann = store.customer("ann").unwrap().unwrap();
    assert_eq!(
        serde_json::Value::Object(ann.attributes),
        json!({"source": "fair", "stage": "loyal"})
    );
    assert_eq!(ann.updated_at, NOW + 60);
}

#[test]
fn a_planned_follow_up_can_be_cancelled_once() {
    let (_dir, _path, mut store) = new_store();
    seed_customers(&mut store, &["ann"]);
    let mut session = store.begin_followups(NOW, "v1").unwrap();
    let planned = session.record(&email("care", "ann", NOW, "care")).unwrap();
    let mut skipped = email("care", "ann", NOW + DAY, "care");
    skipped.skip = Some("weekly cap of 2 e-mails reached".into());
    let skipped = session.record(&skipped).unwrap();
    session.finish().unwrap();

    let cancelled = store
        .cancel_followup(planned.followup_id, "unsubscribed", NOW + 5)
        .unwrap();
    assert_eq!(cancelled.status, FollowUpStatus::Cancelled);
    assert_eq!(cancelled.status_reason.as_deref(), Some("unsubscribed"));
    assert_eq!(cancelled.status_at, NOW + 5);
    for id in [planned.followup_id, skipped.followup_id] {
        let err = store.cancel_followup(id, "again", NOW + 6).unwrap_err();
        assert!(
            matches!(&err, StoreError::FollowUpNotPlanned { id: i, .. } if *i == id),
            "{err:?}"
        );
    }
    assert!(matches!(
        store.cancel_followup(999, "x", NOW),
        Err(StoreError::UnknownFollowUp { id: 999 })
    ));
}

#[test]
fn the_last_occurrence_of_each_rule_is_read_in_bulk() {
    let (_dir, _path, mut store) = new_store();
    seed_customers(&mut store, &["ann", "bob", "cy"]);
    let (ann, bob, cy) = (
        rowid(&store, "ann"),
        rowid(&store, "bob"),
        rowid(&store, "cy"),
    );
    let mut session = store.begin_followups(NOW, "v1").unwrap();
    session
        .record(&email("monthly", "ann", NOW - 60 * DAY, "m"))
        .unwrap();
    session
        .record(&email("monthly", "ann", NOW - 30 * DAY, "m"))
        .unwrap();
    let mut capped = email("monthly", "ann", NOW, "m");
    capped.skip = Some("cap".into());
    session.record(&capped).unwrap();
    session
        .record(&email("monthly", "bob", NOW - 10 * DAY, "m"))
        .unwrap();
    session
        .record(&email("birthday", "bob", NOW + DAY, "b"))
        .unwrap();
    let mut never = email("birthday", "cy", NOW, "b");
    never.skip = Some("no consent".into());
    session.record(&never).unwrap();
    session.finish().unwrap();

    let all = states(&store, NOW - DAY, NOW, NOW - 45 * DAY);
    assert_eq!(all.len(), 3);
    let last = |rule: &str, at: i64, fired: Option<i64>| LastOccurrence {
        rule_id: rule.to_owned(),
        last_occurrence_at: at,
        last_fired_at: fired,
        // Planned e-mails without an outbox row count as given at their scheduled time.
        last_given: fired.map(|at| (at, at)),
    };
    let (a, b, c) = (state_of(&all, ann), state_of(&all, bob), state_of(&all, cy));
    assert_eq!(a.last, [last("monthly", NOW, Some(NOW - 30 * DAY))]);
    assert_eq!(
        b.last,
        [
            last("birthday", NOW + DAY, Some(NOW + DAY)),
            last("monthly", NOW - 10 * DAY, Some(NOW - 10 * DAY)),
        ]
    );
    assert_eq!(c.last, [last("birthday", NOW, None)]);
    assert_eq!(b.last_fired("birthday"), Some(NOW + DAY));
    assert_eq!(c.last_fired("birthday"), None);
    assert_eq!(a.last_fired("nothing"), None);
    // E-mails planned or done, by their scheduled time: exact, later ones included; the
    // latest before the lookback kept apart; skipped ones are not e-mails.
    assert_eq!(a.emails, [NOW - 30 * DAY]);
    assert_eq!(a.earlier_email, Some(NOW - 60 * DAY));
    assert_eq!(b.emails, [NOW - 10 * DAY, NOW + DAY]);
    assert_eq!((c.emails.len(), c.earlier_email), (0, None));
}

#[test]
fn events_in_a_range_and_segments_are_streamed_by_customer() {
    let (_dir, _path, mut store) = new_store();
    seed_customers(&mut store, &["ann", "bob"]);
    let (ann, bob) = (rowid(&store, "ann"), rowid(&store, "bob"));
    let decide = |rowid, tier: &str, segment: Option<&str>| TierDecision {
        customer_rowid: rowid,
        tier: tier.into(),
        reason: format!("to {tier}"),
        segments: vec![("rfm".into(), segment.map(Into::into))],
        ..TierDecision::default()
    };
    let header = |at| AssessmentHeader {
        at,
        ruleset_version: "v1".into(),
        started_at: at,
        finished_at: at,
        rule_errors: 0,
    };
    // At NOW - DAY (before the range): first assignments.
    store
        .record_assessment(
            &header(NOW - DAY),
            &[decide(ann, "B", Some("loyal")), decide(bob, "C", None)],
        )
        .unwrap();
    // At NOW (in the range): ann moves up and changes segment, bob keeps C.
    store
        .record_assessment(
            &header(NOW),
            &[decide(ann, "A", Some("champion")), decide(bob, "C", None)],
        )
        .unwrap();
    import_at(
        &mut store,
        ImportKind::Complaints,
        options("x.csv"),
        NOW,
        |s| {
            for (line, (customer, at, severity)) in (2..).zip([
                ("bob", NOW - DAY, 2), // at since: excluded
                ("bob", NOW - DAY + 1, 3),
                ("bob", NOW + 10, 4), // after until: excluded
            ]) {
                s.complaint(
                    line,
                    &ComplaintRecord {
                        customer_external_id: customer.into(),
                        opened_at: at,
                        severity,
                        subject: Some(format!("s{severity}")),
                        ..ComplaintRecord::default()
                    },
                )
                .unwrap();
            }
        },
    );
    import_at(
        &mut store,
        ImportKind::Feedback,
        options("f.csv"),
        NOW,
        |s| {
            for (line, (customer, at, score)) in (2..).zip([
                ("ann", NOW - 5, 2.0),
                ("bob", NOW, 1.0),
                ("ann", NOW - 2 * DAY, 1.0),
            ]) {
                s.feedback(
                    line,
                    &FeedbackRecord {
                        customer_external_id: customer.into(),
                        given_at: at,
                        score,
                        ..FeedbackRecord::default()
                    },
                )
                .unwrap();
            }
        },
    );

    let all = states(&store, NOW - DAY, NOW, NOW);
    assert_eq!(
        state_of(&all, ann).segments,
        [("rfm".to_owned(), "champion".to_owned())]
    );
    assert!(state_of(&all, bob).segments.is_empty());
    assert_eq!(
        state_of(&all, ann).events,
        [
            CustomerEvent {
                customer_rowid: ann,
                at: NOW - 5,
                kind: EventKind::FeedbackGiven {
                    score: 2.0,
                    comment: None
                },
            },
            CustomerEvent {
                customer_rowid: ann,
                at: NOW,
                kind: EventKind::TierChanged {
                    from: Some("B".into()),
                    to: "A".into(),
                    reason: "to A".into(),
                },
            },
            CustomerEvent {
                customer_rowid: ann,
                at: NOW,
                kind: EventKind::SegmentChanged {
                    segment_set: "rfm".into(),
                    from: Some("loyal".into()),
                    to: Some("champion".into()),
                },
            },
        ]
    );
    assert_eq!(
        state_of(&all, bob).events,
        [
            CustomerEvent {
                customer_rowid: bob,
                at: NOW - DAY + 1,
                kind: EventKind::ComplaintOpened {
                    severity: 3,
                    subject: Some("s3".into()),
                    resolved_at: None,
                },
            },
            CustomerEvent {
                customer_rowid: bob,
                at: NOW,
                kind: EventKind::FeedbackGiven {
                    score: 1.0,
                    comment: None
                },
            },
        ]
    );
    assert_eq!(all.iter().map(|s| s.events.len()).sum::<usize>(), 5);
    // The first assessment is in a range that includes it.
    let earlier = states(&store, NOW - 2 * DAY, NOW - DAY, NOW);
    let tiers: Vec<&EventKind> = earlier
        .iter()
        .flat_map(|s| &s.events)
        .filter(|e| matches!(e.kind, EventKind::TierChanged { .. }))
        .map(|e| &e.kind)
        .collect();
    assert_eq!(tiers.len(), 2);
}

#[test]
fn contacts_count_interactions_and_follow_up_emails() {
    let (_dir, _path, mut store) = new_store();
    seed_team(
        &mut store,
        &[("ann", Some("M1")), ("bob", None), ("cy", None)],
    );
    let (ann, bob, cy) = (
        rowid(&store, "ann"),
        rowid(&store, "bob"),
        rowid(&store, "cy"),
    );
    let at = NOW + 100 * DAY;
    import_at(
        &mut store,
        ImportKind::Interactions,
        options("i.csv"),
        NOW,
        |s| {
            for (line, (customer, t)) in (2..).zip([
                ("ann", at),               // day, week, month
                ("ann", at - DAY),         // exactly a day ago: week, month
                ("ann", at - 7 * DAY + 1), // week, month
                ("ann", at - 30 * DAY),    // exactly 30 days ago: none
                ("ann", at + 5),           // after at: next contact
                ("bob", at - 40 * DAY),    // none, but the last contact
            ]) {
                s.interaction(
                    line,
                    &InteractionRecord {
                        customer_external_id: customer.into(),
                        kind: "call".into(),
                        occurred_at: t,
                        ..InteractionRecord::default()
                    },
                )
                .unwrap();
            }
        },
    );
    let mut session = store.begin_followups(NOW, "v1").unwrap();
    session
        .record(&email("care", "ann", at - 3 * DAY, "care"))
        .unwrap();
    session
        .record(&email("care", "bob", at - 2, "care"))
        .unwrap();
    session
        .record(&email("care", "bob", at + 3 * DAY, "care"))
        .unwrap();
    let mut skipped = email("care", "bob", at - 1, "care");
    skipped.skip = Some("cap".into());
    session.record(&skipped).unwrap();
    let cancelled = session
        .record(&email("care", "cy", at - 1, "care"))
        .unwrap();
    // Neither a task nor an owner notification is a contact.
    session
        .record(&task(
            "review",
            "cy",
            at,
            Assignee::Manager("M1".into()),
            "R",
        ))
        .unwrap();
    session
        .record(&PlannedFollowUp {
            key: OccurrenceKey::new("tell", "ann", at),
            scheduled_at: at,
            action: FollowUpAction::NotifyOwner {
                template: "heads-up".into(),
            },
            reason: "x".into(),
            skip: None,
        })
        .unwrap();
    session.finish().unwrap();
    store
        .cancel_followup(cancelled.followup_id, "changed our mind", NOW)
        .unwrap();

    let contacts = store.contact_counts(at).unwrap();
    assert_eq!(contacts.at, at);
    assert_eq!(contacts.len(), 3);
    assert_eq!(
        contacts.as_slice(),
        [
            ContactCounts {
                customer_rowid: ann,
                day: 1,
                week: 4,
                month: 4,
                emails_day: 0,
                emails_week: 1,
                emails_month: 1,
                last_contact_at: Some(at),
                next_contact_at: Some(at + 5),
            },
            ContactCounts {
                customer_rowid: bob,
                day: 1,
                week: 1,
                month: 1,
                emails_day: 1,
                emails_week: 1,
                emails_month: 1,
                last_contact_at: Some(at - 2),
                next_contact_at: Some(at + 3 * DAY),
            },
            ContactCounts {
                customer_rowid: cy,
                ..ContactCounts::default()
            },
        ]
    );
    assert_eq!(contacts.get(bob).unwrap().last_contact_at, Some(at - 2));
    assert_eq!(contacts.get(999), None);
}

#[test]
fn the_key_keeps_the_occurrence_time_when_the_policy_moves_the_follow_up() {
    let (_dir, _path, mut store) = new_store();
    seed_customers(&mut store, &["ann"]);
    let mut moved = email("care", "ann", NOW, "care");
    moved.scheduled_at = NOW + 2 * DAY;
    let mut session = store.begin_followups(NOW, "v1").unwrap();
    let first = session.record(&moved).unwrap();
    // Re-planned the next day, the policy moves it elsewhere: same
    // occurrence, nothing new.
    moved.scheduled_at = NOW + 3 * DAY;
    assert!(!session.record(&moved).unwrap().new);
    let err = session
        .record(&email("a:b", "ann", NOW, "care"))
        .unwrap_err();
    assert!(
        err.to_string().contains("a rule id cannot contain ':'"),
        "{err}"
    );
    session.finish().unwrap();

    let stored = &store.followups_of("ann").unwrap()[0];
    assert_eq!(stored.id, first.followup_id);
    assert_eq!(stored.occurrence_key, format!("care:{NOW}:ann"));
    assert_eq!(
        (stored.occurrence_at, stored.scheduled_at),
        (NOW, NOW + 2 * DAY)
    );
    let ann = rowid(&store, "ann");
    // Contacts count the scheduled time; the rule's state the occurrence.
    assert_eq!(
        store
            .contact_counts(NOW + DAY)
            .unwrap()
            .get(ann)
            .unwrap()
            .next_contact_at,
        Some(NOW + 2 * DAY)
    );
    let all = states(&store, 0, NOW, 0);
    assert_eq!(state_of(&all, ann).last_fired("care"), Some(NOW));
    assert_eq!(state_of(&all, ann).emails, [NOW + 2 * DAY]);
}

#[test]
fn sms_and_points_follow_ups_are_stored_with_their_own_kinds() {
    let (_dir, path, mut store) = new_store();
    seed_customers(&mut store, &["ann"]);
    let planned = |rule: &str, action| PlannedFollowUp {
        key: OccurrenceKey::new(rule, "ann", NOW),
        scheduled_at: NOW,
        action,
        reason: "test".into(),
        skip: None,
    };
    let mut session = store.begin_followups(NOW, "v1").unwrap();
    let text = session
        .record(&planned(
            "text",
            FollowUpAction::Sms {
                template: "hello".into(),
                survey: None,
            },
        ))
        .unwrap();
    assert_eq!(text.status, FollowUpStatus::Planned);
    let earn = session
        .record(&planned(
            "earn",
            FollowUpAction::EarnPoints {
                amount: 50.0,
                expires_at: None,
            },
        ))
        .unwrap();
    assert_eq!(earn.status, FollowUpStatus::Done);
    session.finish().unwrap();
    let conn = Connection::open(&path).unwrap();
    let kinds: Vec<(String, String)> = conn
        .prepare("SELECT rule_id, kind FROM followups ORDER BY rule_id")
        .unwrap()
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        kinds,
        [
            ("earn".to_owned(), "points".to_owned()),
            ("text".to_owned(), "sms".to_owned())
        ]
    );
    assert_eq!(store.points_of("ann").unwrap().len(), 1);
}

#[test]
fn the_reports_email_outcomes_leave_sms_out_and_count_them_apart() {
    let (_dir, path, mut store) = new_store();
    seed_customers(&mut store, &["ann"]);
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch(
        "INSERT INTO outbox (customer_id, rule_id, template, recipient_kind, to_address, \
         message_id, subject, body_text, state, due_at, created_at, updated_at, sent_at, channel) \
         VALUES (1, 'care', 'care', 'customer', 'ann@example.com', '<e1@tc>', 'S', 'B', 'sent', \
                 1, 1, 1, 1, 'email'), \
                (1, 'greet', 'greet', 'customer', '+4915112345678', '<s1@tc>', '', 'Hi', 'sent', \
                 1, 1, 1, 1, 'sms'), \
                (1, 'greet', 'greet', 'customer', '+4915112345678', '<s2@tc>', '', 'Hi', \
                 'queued', 1, 1, 1, NULL, 'sms'); \
         INSERT INTO outbox_events (outbox_id, at, from_state, to_state) \
         VALUES (1, 1, 'claimed', 'sent'), (2, 1, 'claimed', 'sent');",
    )
    .unwrap();
    let emails = store.email_outcomes(NOW).unwrap();
    assert_eq!(
        emails
            .iter()
            .map(|r| (r.rule_id.as_str(), r.sent, r.pending))
            .collect::<Vec<_>>(),
        [("care", 1, 0)]
    );
    let sms = store.sms_outcomes(NOW).unwrap();
    assert_eq!(
        sms.iter()
            .map(|r| (r.rule_id.as_str(), r.sent, r.pending))
            .collect::<Vec<_>>(),
        [("greet", 1, 1)]
    );
    // `status` counts the outbox's e-mails and SMS apart.
    let nonzero = |channel| {
        store
            .channel_counts(channel)
            .unwrap()
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .map(|(state, n)| (state.as_str(), n))
            .collect::<Vec<_>>()
    };
    assert_eq!(nonzero(Channel::Email), [("sent", 1)]);
    assert_eq!(nonzero(Channel::Sms), [("queued", 1), ("sent", 1)]);
}
