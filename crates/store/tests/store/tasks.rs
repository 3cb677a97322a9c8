//! Managers' tasks (listing, done, snooze, added by hand), managers' load
//! and owner assignment.

use tiercare_store::{
    Assignee, NewTask, StoreError, Task, TaskFilter, TaskStatus, TaskView, UnownedCustomer,
};

use crate::fixture::{NOW, dump, new_store};
use crate::followups::{DAY, rowid, seed_team, task};

fn new_task(customer: &str, assignee: &str, title: &str, due_at: i64) -> NewTask {
    NewTask {
        customer_id: customer.into(),
        assignee: assignee.into(),
        title: title.into(),
        due_at,
        note: None,
    }
}

fn titles(tasks: &[Task]) -> Vec<&str> {
    tasks.iter().map(|t| t.title.as_str()).collect()
}

#[test]
fn tasks_list_overdue_first_then_by_due_time_and_filter_by_owner() {
    let (_dir, _path, mut store) = new_store();
    seed_team(&mut store, &[("ann", Some("M1")), ("bob", Some("M2"))]);
    let now = NOW + 10 * DAY;
    let a = store
        .add_task(&new_task("ann", "M1", "later", now + 2 * DAY), NOW)
        .unwrap();
    store
        .add_task(&new_task("ann", "M1", "late", now - DAY), NOW)
        .unwrap();
    store
        .add_task(&new_task("bob", "M2", "very late", now - 3 * DAY), NOW)
        .unwrap();
    store
        .add_task(&new_task("bob", "M1", "soon", now + 60), NOW)
        .unwrap();
    let e = store
        .add_task(&new_task("bob", "M2", "snoozed", now - 5 * DAY), NOW)
        .unwrap();
    let f = store
        .add_task(&new_task("ann", "M2", "finished", now - 9 * DAY), NOW)
        .unwrap();
    store.snooze_task(e.id, now + DAY, now).unwrap();
    store
        .complete_task(f.id, "M2", Some("called"), now - 60)
        .unwrap();
    assert_eq!(a.status, TaskStatus::Open);
    assert!(!a.overdue);

    let pending = store.tasks(&TaskFilter::default(), now).unwrap();
    assert_eq!(
        titles(&pending),
        ["very late", "late", "soon", "snoozed", "later"]
    );
    assert!(pending[0].overdue && pending[1].overdue && !pending[2].overdue);
    assert_eq!(pending[3].due, now + DAY);
    assert_eq!(pending[3].snoozed_until, Some(now + DAY));
    assert!(
        !pending[3].overdue,
        "a snoozed task is not overdue before its snooze ends"
    );

    let m1 = TaskFilter {
        assignee: Some("M1".into()),
        ..TaskFilter::default()
    };
    assert_eq!(
        titles(&store.tasks(&m1, now).unwrap()),
        ["late", "soon", "later"]
    );
    let overdue = TaskFilter {
        overdue_only: true,
        ..TaskFilter::default()
    };
    assert_eq!(
        titles(&store.tasks(&overdue, now).unwrap()),
        ["very late", "late"]
    );
    let ann = TaskFilter {
        customer: Some("ann".into()),
        view: TaskView::All,
        ..TaskFilter::default()
    };
    assert_eq!(
        titles(&store.tasks(&ann, now).unwrap()),
        ["late", "later", "finished"]
    );
    let done = TaskFilter {
        view: TaskView::Done,
        ..TaskFilter::default()
    };
    let done = store.tasks(&done, now).unwrap();
    assert_eq!(titles(&done), ["finished"]);
    assert_eq!(done[0].note.as_deref(), Some("called"));
    let snoozed = TaskFilter {
        view: TaskView::Snoozed,
        ..TaskFilter::default()
    };
    assert_eq!(titles(&store.tasks(&snoozed, now).unwrap()), ["snoozed"]);
    let actionable = TaskFilter {
        view: TaskView::Actionable,
        limit: Some(2),
        ..TaskFilter::default()
    };
    assert_eq!(
        titles(&store.tasks(&actionable, now).unwrap()),
        ["very late", "late"]
    );

    // Once the snooze ends, the task is due (and then overdue) again.
    let later = now + DAY + 1;
    let all_actionable = TaskFilter {
        view: TaskView::Actionable,
        ..TaskFilter::default()
    };
    let woken = store.tasks(&all_actionable, later).unwrap();
    assert_eq!(
        titles(&woken),
        ["very late", "late", "soon", "snoozed", "later"]
    );
    assert!(woken[3].overdue && !woken[4].overdue);
}

#[test]
fn done_and_snooze_refuse_unknown_done_and_bad_input() {
    let (_dir, path, mut store) = new_store();
    seed_team(&mut store, &[("ann", Some("M1"))]);
    let mut session = store.begin_followups(NOW, "v1").unwrap();
    let recorded = session
        .record(&task("review", "ann", NOW, Assignee::Owner, "Review"))
        .unwrap();
    session.finish().unwrap();
    let id = recorded.task_id.unwrap();

    let snoozed = store.snooze_task(id, NOW + 3 * DAY, NOW).unwrap();
    assert_eq!(snoozed.status, TaskStatus::Snoozed);
    assert_eq!(snoozed.due, NOW + 3 * DAY);
    let done = store
        .complete_task(id, " M1 ", Some(" talked to ann "), NOW + 60)
        .unwrap();
    assert_eq!(done.status, TaskStatus::Done);
    assert_eq!(
        (done.done_at, done.done_by.as_deref(), done.note.as_deref()),
        (Some(NOW + 60), Some("M1"), Some("talked to ann"))
    );
    assert_eq!(done.snoozed_until, None);
    assert!(!done.overdue);
    assert_eq!(store.task(id, NOW).unwrap(), Some(done.clone()));

    let before = dump(&path);
    let err = store.complete_task(id, "M2", None, NOW + 120).unwrap_err();
    assert!(
        matches!(&err, StoreError::TaskAlreadyDone { id: i, done_at, done_by }
            if *i == id && *done_at == NOW + 60 && done_by == "M1"),
        "{err:?}"
    );
    assert!(matches!(
        store.snooze_task(id, NOW + 9 * DAY, NOW + 120),
        Err(StoreError::TaskAlreadyDone { .. })
    ));
    for result in [
        store.complete_task(999, "M1", None, NOW),
        store.snooze_task(999, NOW + DAY, NOW),
    ] {
        assert!(
            matches!(result, Err(StoreError::UnknownTask { id: 999 })),
            "{result:?}"
        );
    }
    let open = store
        .add_task(&new_task("ann", "M1", "Other", NOW), NOW)
        .unwrap();
    let before_open = dump(&path);
    let err = store.snooze_task(open.id, NOW, NOW).unwrap_err();
    assert!(matches!(err, StoreError::InvalidTask { .. }), "{err:?}");
    assert!(err.to_string().contains("a snooze must end after now"));
    assert!(matches!(
        store.complete_task(open.id, "  ", None, NOW),
        Err(StoreError::InvalidTask { .. })
    ));
    assert_eq!(dump(&path), before_open);
    assert_ne!(before, before_open);

    // A note given on completion is added to the existing one.
    let mut noted = new_task("ann", "M1", "Noted", NOW);
    noted.note = Some("ask about renewal".into());
    let noted = store.add_task(&noted, NOW).unwrap();
    let noted = store
        .complete_task(noted.id, "M1", Some("renewed"), NOW)
        .unwrap();
    assert_eq!(noted.note.as_deref(), Some("ask about renewal\nrenewed"));
}

#[test]
fn reassigning_a_task_needs_an_active_manager_and_an_open_task() {
    let (_dir, _path, mut store) = new_store();
    seed_team(&mut store, &[("ann", Some("M1"))]);
    let task = store
        .add_task(&new_task("ann", "M1", "call", NOW + DAY), NOW)
        .unwrap();
    let moved = store.reassign_task(task.id, "M2", NOW).unwrap();
    assert_eq!(moved.assignee, "M2");
    assert!(matches!(
        store.reassign_task(task.id, "M3", NOW),
        Err(StoreError::InactiveManager { .. })
    ));
    assert!(matches!(
        store.reassign_task(task.id, "nobody", NOW),
        Err(StoreError::UnknownManager { .. })
    ));
    assert!(matches!(
        store.reassign_task(999, "M1", NOW),
        Err(StoreError::UnknownTask { .. })
    ));
    store.complete_task(task.id, "M2", None, NOW).unwrap();
    assert!(matches!(
        store.reassign_task(task.id, "M1", NOW),
        Err(StoreError::TaskAlreadyDone { .. })
    ));
    assert_eq!(store.task(task.id, NOW).unwrap().unwrap().assignee, "M2");
}

#[test]
fn adding_a_task_checks_customer_manager_and_title() {
    let (_dir, path, mut store) = new_store();
    seed_team(&mut store, &[("ann", Some("M1"))]);
    let before = dump(&path);
    assert!(matches!(
        store.add_task(&new_task("nobody", "M1", "T", NOW), NOW),
        Err(StoreError::UnknownCustomer { .. })
    ));
    assert!(matches!(
        store.add_task(&new_task("ann", "M9", "T", NOW), NOW),
        Err(StoreError::UnknownManager { id }) if id == "M9"
    ));
    assert!(matches!(
        store.add_task(&new_task("ann", "M3", "T", NOW), NOW),
        Err(StoreError::InactiveManager { id }) if id == "M3"
    ));
    assert!(matches!(
        store.add_task(&new_task("ann", "M1", " ", NOW), NOW),
        Err(StoreError::InvalidTask { .. })
    ));
    assert_eq!(dump(&path), before);
    let added = store
        .add_task(&new_task("ann", "M1", " Call ", NOW + DAY), NOW)
        .unwrap();
    assert_eq!(
        (
            added.followup_id,
            added.title.as_str(),
            added.created_at,
            added.due_at
        ),
        (None, "Call", NOW, NOW + DAY)
    );
}

#[test]
fn managers_come_with_their_load_and_owners_are_assigned_atomically() {
    let (_dir, path, mut store) = new_store();
    seed_team(
        &mut store,
        &[
            ("ann", Some("M1")),
            ("bob", None),
            ("cy", Some(" ")),
            ("dan", None),
        ],
    );
    store
        .add_task(&new_task("ann", "M1", "T1", NOW), NOW)
        .unwrap();
    let done = store
        .add_task(&new_task("ann", "M1", "T2", NOW), NOW)
        .unwrap();
    store.complete_task(done.id, "M1", None, NOW).unwrap();

    let managers = store.managers().unwrap();
    let load: Vec<_> = managers
        .iter()
        .map(|m| {
            (
                m.external_id.as_str(),
                m.role.as_deref(),
                m.active,
                m.customers,
                m.open_tasks,
                m.spare_capacity(),
            )
        })
        .collect();
    assert_eq!(
        load,
        [
            ("M1", Some("senior"), true, 1, 1, Some(1)),
            ("M2", Some("senior"), true, 0, 0, Some(2)),
            ("M3", Some("junior"), false, 0, 0, Some(2)),
        ]
    );

    let (ann, bob, cy, dan) = (
        rowid(&store, "ann"),
        rowid(&store, "bob"),
        rowid(&store, "cy"),
        rowid(&store, "dan"),
    );
    // An unknown or inactive manager anywhere: nothing is written.
    let before = dump(&path);
    let err = store
        .assign_owners(&[(bob, "M2".into()), (dan, "M9".into())], NOW + 60)
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::UnknownManager { id } if id == "M9"),
        "{err:?}"
    );
    let err = store
        .assign_owners(&[(bob, "M2".into()), (dan, "M3".into())], NOW + 60)
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::InactiveManager { id } if id == "M3"),
        "{err:?}"
    );
    assert_eq!(dump(&path), before);

    // Only customers without an owner get one; the first assignment wins.
    let assigned = store
        .assign_owners(
            &[
                (ann, "M2".into()),
                (bob, "M2".into()),
                (cy, "M1".into()),
                (bob, "M1".into()),
                (999, "M1".into()),
            ],
            NOW + 60,
        )
        .unwrap();
    assert_eq!(assigned, 2);
    let owner = |id: &str| {
        let customer = store.customer(id).unwrap().unwrap();
        (customer.owner, customer.updated_at)
    };
    assert_eq!(owner("ann"), (Some("M1".into()), NOW));
    assert_eq!(owner("bob"), (Some("M2".into()), NOW + 60));
    assert_eq!(owner("cy"), (Some("M1".into()), NOW + 60));
    assert_eq!(owner("dan"), (None, NOW));
    let customers: Vec<u64> = store
        .managers()
        .unwrap()
        .iter()
        .map(|m| m.customers)
        .collect();
    assert_eq!(customers, [2, 1, 0]);
    // Left without an owner: dan, with no tier yet.
    assert!(store.unowned_customers(Some(&["A"])).unwrap().is_empty());
    assert_eq!(store.unowned_counts().unwrap(), [(None, 1)]);
    let unowned = store.unowned_customers(None).unwrap();
    assert_eq!(
        unowned,
        [UnownedCustomer {
            rowid: dan,
            external_id: "dan".into(),
            tier: None,
            value: 0.0,
        }]
    );
}

/// An audit entry as the staff pages make it; `user_id` names an account row.
fn audit_entry(
    user_id: Option<i64>,
    action: &str,
    object: &str,
) -> tiercare_store::StaffAuditEntry {
    tiercare_store::StaffAuditEntry {
        user_id,
        login: "alice".into(),
        action: action.into(),
        object: object.into(),
        details: None,
    }
}

#[test]
fn a_change_made_through_the_web_and_its_audit_row_commit_together_or_not_at_all() {
    let (_dir, _path, mut store) = new_store();
    seed_team(&mut store, &[("ann", Some("M1"))]);
    let done = store
        .add_task(&new_task("ann", "M1", "call", NOW + DAY), NOW)
        .unwrap();
    let kept = store
        .add_task(&new_task("ann", "M1", "visit", NOW + DAY), NOW)
        .unwrap();
    // Written by the change's own transaction: once, with the change.
    store
        .audited(audit_entry(None, "task.done", "task:1"), NOW, |store| {
            store.complete_task(done.id, "M1", None, NOW)
        })
        .unwrap();
    let rows = store.staff_audit(10).unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].entry.action, "task.done");
    // A refused change records nothing.
    let refused = store.audited(audit_entry(None, "task.done", "task:1"), NOW, |store| {
        store.complete_task(done.id, "M1", None, NOW)
    });
    assert!(
        matches!(refused, Err(StoreError::TaskAlreadyDone { .. })),
        "{refused:?}"
    );
    assert_eq!(store.staff_audit(10).unwrap().len(), 1);
    // An audit row that cannot be written (no such account) takes the change with it: the
    // task stays open. Written after the change, in a transaction of its own, it would not.
    let failed = store.audited(
        audit_entry(Some(999), "task.done", "task:2"),
        NOW,
        |store| store.complete_task(kept.id, "M1", None, NOW),
    );
    assert!(failed.is_err(), "{failed:?}");
    assert_eq!(
        store.task(kept.id, NOW).unwrap().unwrap().status,
        TaskStatus::Open
    );
    assert_eq!(store.staff_audit(10).unwrap().len(), 1);
}
