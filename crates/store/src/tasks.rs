//! Tasks for managers: created by task follow-ups (see
//! [`FollowUpSession::record`](crate::FollowUpSession::record)) or by hand
//! ([`Store::add_task`]), listed, done and snoozed.
//!
//! A task is `open`, `snoozed` until a time, or `done` (by someone, at a
//! time). A snoozed task is due again at the end of its snooze: its
//! **effective due time** is the later of `due_at` and `snoozed_until`.
//! A task not done whose effective due time is before now is **overdue**.

use std::path::Path;

use rusqlite::{OptionalExtension, Row, Transaction, TransactionBehavior, params};

use crate::db::Store;
use crate::error::{AtPath, StoreError};
use crate::stored::require_customer;
use crate::webhooks::WebhookEventType;

/// A task's stored state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    /// To do.
    Open,
    /// Put off until `snoozed_until`; due again then.
    Snoozed,
    /// Done.
    Done,
}

/// A task, as listed at a time `now`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Task {
    /// The task's id.
    pub id: i64,
    /// The follow-up that created it; `None` for a task added by hand.
    pub followup_id: Option<i64>,
    /// That follow-up's rule.
    pub rule_id: Option<String>,
    /// The customer's external id.
    pub customer_id: String,
    /// The customer's name.
    pub customer_name: Option<String>,
    /// The manager's external id.
    pub assignee: String,
    /// What to do.
    pub title: String,
    /// When it is due, unix seconds UTC.
    pub due_at: i64,
    /// When it was created, unix seconds UTC.
    pub created_at: i64,
    /// Its state.
    pub status: TaskStatus,
    /// The end of its snooze, when snoozed.
    pub snoozed_until: Option<i64>,
    /// When it was done.
    pub done_at: Option<i64>,
    /// Who did it.
    pub done_by: Option<String>,
    /// Notes: what to do, and what was done.
    pub note: Option<String>,
    /// The effective due time: the later of `due_at` and `snoozed_until`.
    pub due: i64,
    /// Not done, and `due` is before now.
    pub overdue: bool,
}

/// Which tasks [`Store::tasks`] lists, at its `now`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskView {
    /// Every task not done: open and snoozed.
    #[default]
    Pending,
    /// Tasks to act on now: open, and snoozed ones whose snooze has ended.
    Actionable,
    /// Tasks still snoozed at now.
    Snoozed,
    /// Done tasks, latest done first.
    Done,
    /// Every task.
    All,
}

/// A selection of tasks for [`Store::tasks`]. The default lists every
/// pending task of everyone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskFilter {
    /// Only this manager's tasks.
    pub assignee: Option<String>,
    /// Only this customer's (external id) tasks.
    pub customer: Option<String>,
    /// Which states.
    pub view: TaskView,
    /// Only overdue tasks.
    pub overdue_only: bool,
    /// At most this many.
    pub limit: Option<u64>,
}

/// A task added by hand, with [`Store::add_task`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewTask {
    /// The customer's external id.
    pub customer_id: String,
    /// The manager's external id: a known, active manager.
    pub assignee: String,
    /// What to do (not empty).
    pub title: String,
    /// When it is due, unix seconds UTC.
    pub due_at: i64,
    /// More words.
    pub note: Option<String>,
}

/// The effective due time, in SQL, of the task `t`.
const DUE: &str = "CASE WHEN t.status = 'snoozed' THEN max(t.due_at, t.snoozed_until) \
                   ELSE t.due_at END";

/// The columns [`task_from_row`] reads; `?1` is now.
fn task_select() -> String {
    format!(
        "SELECT t.id, t.followup_id, f.rule_id, c.external_id, c.name, t.assignee, t.title, \
         t.due_at, t.created_at, t.status, t.snoozed_until, t.done_at, t.done_by, t.note, \
         {DUE} AS due FROM tasks t JOIN customers c ON c.id = t.customer_id \
         LEFT JOIN followups f ON f.id = t.followup_id"
    )
}

fn task_from_row(row: &Row<'_>, now: i64) -> rusqlite::Result<Task> {
    let status = match row.get_ref(9)?.as_str()? {
        "open" => TaskStatus::Open,
        "snoozed" => TaskStatus::Snoozed,
        "done" => TaskStatus::Done,
        other => {
            return Err(rusqlite::Error::FromSqlConversionFailure(
                9,
                rusqlite::types::Type::Text,
                format!("unknown task status '{other}'").into(),
            ));
        }
    };
    let due: i64 = row.get(14)?;
    Ok(Task {
        id: row.get(0)?,
        followup_id: row.get(1)?,
        rule_id: row.get(2)?,
        customer_id: row.get(3)?,
        customer_name: row.get(4)?,
        assignee: row.get(5)?,
        title: row.get(6)?,
        due_at: row.get(7)?,
        created_at: row.get(8)?,
        status,
        snoozed_until: row.get(10)?,
        done_at: row.get(11)?,
        done_by: row.get(12)?,
        note: row.get(13)?,
        due,
        overdue: status != TaskStatus::Done && due < now,
    })
}

/// The task `id` as listed at `now`, if there is one.
fn load_task(conn: &rusqlite::Connection, id: i64, now: i64) -> rusqlite::Result<Option<Task>> {
    conn.prepare_cached(&format!("{} WHERE t.id = ?2", task_select()))?
        .query_row(params![now, id], |row| task_from_row(row, now))
        .optional()
}

/// The task `id`, refused when unknown or done.
fn open_task(tx: &Transaction<'_>, path: &Path, id: i64, now: i64) -> Result<Task, StoreError> {
    let task = load_task(tx, id, now)
        .at(path)?
        .ok_or(StoreError::UnknownTask { id })?;
    if task.status == TaskStatus::Done {
        return Err(StoreError::TaskAlreadyDone {
            id,
            done_at: task.done_at.unwrap_or_default(),
            done_by: task.done_by.unwrap_or_default(),
        });
    }
    Ok(task)
}

impl Store {
    /// The tasks `filter` selects, as they stand at `now`: overdue ones
    /// first (most overdue first), then the others by effective due time,
    /// then done ones (latest done first); ties by id.
    pub fn tasks(&self, filter: &TaskFilter, now: i64) -> Result<Vec<Task>, StoreError> {
        let mut sql = format!("{} WHERE 1", task_select());
        sql.push_str(match filter.view {
            TaskView::Pending => " AND t.status <> 'done'",
            TaskView::Actionable => {
                " AND (t.status = 'open' OR (t.status = 'snoozed' AND t.snoozed_until <= ?1))"
            }
            TaskView::Snoozed => " AND t.status = 'snoozed' AND t.snoozed_until > ?1",
            TaskView::Done => " AND t.status = 'done'",
            TaskView::All => "",
        });
        if filter.assignee.is_some() {
            sql.push_str(" AND t.assignee = ?2");
        }
        if filter.customer.is_some() {
            sql.push_str(" AND c.external_id = ?3");
        }
        if filter.overdue_only {
            sql.push_str(" AND t.status <> 'done' AND due < ?1");
        }
        sql.push_str(
            " ORDER BY CASE WHEN t.status = 'done' THEN 2 WHEN due < ?1 THEN 0 ELSE 1 END, \
             CASE WHEN t.status = 'done' THEN -t.done_at ELSE due END, t.id LIMIT ?4",
        );
        let limit = filter
            .limit
            .map_or(-1, |limit| i64::try_from(limit).unwrap_or(i64::MAX));
        self.conn
            .prepare_cached(&sql)
            .and_then(|mut stmt| {
                stmt.query_map(
                    params![
                        now,
                        filter.assignee.as_deref(),
                        filter.customer.as_deref(),
                        limit
                    ],
                    |row| task_from_row(row, now),
                )?
                .collect()
            })
            .at(&self.label)
    }

    /// The task `id` as it stands at `now`, if there is one.
    pub fn task(&self, id: i64, now: i64) -> Result<Option<Task>, StoreError> {
        load_task(&self.conn, id, now).at(&self.label)
    }

    /// Adds an open task by hand at `now`. Refused, writing nothing, for an
    /// unknown customer ([`StoreError::UnknownCustomer`]), an unknown or
    /// inactive manager ([`StoreError::UnknownManager`],
    /// [`StoreError::InactiveManager`]) or an empty title
    /// ([`StoreError::InvalidTask`]).
    pub fn add_task(&mut self, task: &NewTask, now: i64) -> Result<Task, StoreError> {
        let path = self.label.as_path();
        let title = task.title.trim();
        if title.is_empty() {
            return Err(StoreError::InvalidTask {
                task: "(new)".into(),
                problem: "the title is empty: say what to do".into(),
            });
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .at(path)?;
        let customer = require_customer(&tx, path, &task.customer_id)?;
        let assignee = task.assignee.trim();
        let active: Option<bool> = tx
            .query_row(
                "SELECT active FROM managers WHERE external_id = ?1",
                [assignee],
                |row| row.get(0),
            )
            .optional()
            .at(path)?;
        match active {
            None => {
                return Err(StoreError::UnknownManager {
                    id: assignee.to_owned(),
                });
            }
            Some(false) => {
                return Err(StoreError::InactiveManager {
                    id: assignee.to_owned(),
                });
            }
            Some(true) => {}
        }
        let id: i64 = tx
            .query_row(
                "INSERT INTO tasks (customer_id, assignee, title, due_at, created_at, note) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING id",
                params![customer, assignee, title, task.due_at, now, task.note],
                |row| row.get(0),
            )
            .at(path)?;
        crate::webhooks::task_changed(&tx, WebhookEventType::TaskCreated, id, now).at(path)?;
        let task = load_task(&tx, id, now).at(path)?.expect("just inserted");
        tx.commit().at(path)?;
        Ok(task)
    }

    /// Marks the task `id` done at `now` by `by`, adding `note` (if any) to
    /// its notes on a new line. [`StoreError::UnknownTask`] for an unknown
    /// id, [`StoreError::TaskAlreadyDone`] when it is done already,
    /// [`StoreError::InvalidTask`] when `by` is empty; nothing is written
    /// then.
    pub fn complete_task(
        &mut self,
        id: i64,
        by: &str,
        note: Option<&str>,
        now: i64,
    ) -> Result<Task, StoreError> {
        let audit = self.pending_audit.take();
        let path = self.label.as_path();
        let by = by.trim();
        if by.is_empty() {
            return Err(StoreError::InvalidTask {
                task: format!("#{id}"),
                problem: "say who did it".into(),
            });
        }
        let note = note.map(str::trim).filter(|note| !note.is_empty());
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .at(path)?;
        open_task(&tx, path, id, now)?;
        tx.execute(
            "UPDATE tasks SET status = 'done', done_at = ?2, done_by = ?3, snoozed_until = NULL, \
             note = CASE WHEN ?4 IS NULL THEN note WHEN note IS NULL THEN ?4 \
             ELSE note || char(10) || ?4 END WHERE id = ?1",
            params![id, now, by, note],
        )
        .at(path)?;
        crate::webhooks::task_changed(&tx, WebhookEventType::TaskDone, id, now).at(path)?;
        let task = load_task(&tx, id, now).at(path)?.expect("updated");
        crate::staff_users::write_audit(&tx, audit).at(path)?;
        tx.commit().at(path)?;
        Ok(task)
    }

    /// Snoozes the task `id` at `now` until `until`, when it is due again.
    /// [`StoreError::UnknownTask`] for an unknown id,
    /// [`StoreError::TaskAlreadyDone`] when it is done,
    /// [`StoreError::InvalidTask`] when `until` is not after `now`; nothing
    /// is written then.
    pub fn snooze_task(&mut self, id: i64, until: i64, now: i64) -> Result<Task, StoreError> {
        let audit = self.pending_audit.take();
        let path = self.label.as_path();
        if until <= now {
            return Err(StoreError::InvalidTask {
                task: format!("#{id}"),
                problem: format!(
                    "a snooze must end after now ({now}), not at {until}: give a later time"
                ),
            });
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .at(path)?;
        open_task(&tx, path, id, now)?;
        tx.execute(
            "UPDATE tasks SET status = 'snoozed', snoozed_until = ?2 WHERE id = ?1",
            params![id, until],
        )
        .at(path)?;
        let task = load_task(&tx, id, now).at(path)?.expect("updated");
        crate::staff_users::write_audit(&tx, audit).at(path)?;
        tx.commit().at(path)?;
        Ok(task)
    }

    /// Gives the task `id` to the manager `assignee` at `now`.
    /// [`StoreError::UnknownTask`], [`StoreError::TaskAlreadyDone`],
    /// [`StoreError::UnknownManager`] or [`StoreError::InactiveManager`]
    /// refuse it; nothing is written then.
    pub fn reassign_task(&mut self, id: i64, assignee: &str, now: i64) -> Result<Task, StoreError> {
        let audit = self.pending_audit.take();
        let path = self.label.as_path();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .at(path)?;
        open_task(&tx, path, id, now)?;
        let active: Option<bool> = tx
            .query_row(
                "SELECT active FROM managers WHERE external_id = ?1",
                [assignee],
                |row| row.get(0),
            )
            .optional()
            .at(path)?;
        match active {
            None => {
                return Err(StoreError::UnknownManager {
                    id: assignee.to_owned(),
                });
            }
            Some(false) => {
                return Err(StoreError::InactiveManager {
                    id: assignee.to_owned(),
                });
            }
            Some(true) => {}
        }
        tx.execute(
            "UPDATE tasks SET assignee = ?2 WHERE id = ?1",
            params![id, assignee],
        )
        .at(path)?;
        let task = load_task(&tx, id, now).at(path)?.expect("updated");
        crate::staff_users::write_audit(&tx, audit).at(path)?;
        tx.commit().at(path)?;
        Ok(task)
    }
}
