//! Managers away from work: on leave (from a time until a time) or inactive, and the
//! reassignment of their open work.
//!
//! A manager is **available** at a time when they are active and not on leave then. Owner
//! assignment and task creation give work only to available managers (see
//! [`Store::away_managers`] and the follow-up ledger's task assignee); [`Store::reassign_work`]
//! moves an away manager's open tasks (and, if asked, their customers) to others in one
//! `IMMEDIATE` transaction.

use rusqlite::{OptionalExtension, TransactionBehavior, params};

use crate::db::Store;
use crate::error::{AtPath, StoreError};

/// The SQL condition "the manager `m` is available at `?now`" (`NOW` is the parameter's text).
pub(crate) fn available_sql(now: &str) -> String {
    format!(
        "(m.active = 1 AND NOT (m.leave_from IS NOT NULL AND m.leave_from <= {now} \
         AND (m.leave_until IS NULL OR {now} < m.leave_until)))"
    )
}

/// A manager's zone and leave, as [`Store::manager_presence`] lists them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ManagerPresence {
    /// The manager's external id.
    pub external_id: String,
    /// Display name.
    pub name: String,
    /// E-mail address (`None` when none is stored or it is blank).
    pub email: Option<String>,
    /// Role.
    pub role: Option<String>,
    /// Whether they take work at all.
    pub active: bool,
    /// Their IANA zone, when imported.
    pub timezone: Option<String>,
    /// Start of their leave, unix seconds UTC.
    pub leave_from: Option<i64>,
    /// End of their leave (exclusive), unix seconds UTC; `None` with `leave_from`: open-ended.
    pub leave_until: Option<i64>,
}

impl ManagerPresence {
    /// On leave at `now`.
    #[must_use]
    pub fn on_leave(&self, now: i64) -> bool {
        self.leave_from
            .is_some_and(|from| from <= now && self.leave_until.is_none_or(|until| now < until))
    }

    /// Active and not on leave at `now`: may get new customers and tasks.
    #[must_use]
    pub fn available(&self, now: i64) -> bool {
        self.active && !self.on_leave(now)
    }
}

/// Where [`Store::reassign_work`] moves an away manager's work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReassignTo {
    /// To this manager (available at the time).
    Manager(String),
    /// Each item to the available manager of the same role with the fewest open tasks (any
    /// available manager when none has the role).
    Auto,
}

/// What [`Store::reassign_work`] moved.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Reassigned {
    /// Open or snoozed tasks moved, per new assignee.
    pub tasks: Vec<(String, u64)>,
    /// Customers whose owner changed, per new owner.
    pub customers: Vec<(String, u64)>,
}

impl Store {
    /// Every manager with their zone and leave, by external id.
    pub fn manager_presence(&self) -> Result<Vec<ManagerPresence>, StoreError> {
        self.conn
            .prepare_cached(
                "SELECT external_id, name, nullif(trim(email), ''), role, active, \
                 nullif(trim(timezone), ''), leave_from, leave_until \
                 FROM managers ORDER BY external_id",
            )
            .and_then(|mut stmt| {
                stmt.query_map([], |row| {
                    Ok(ManagerPresence {
                        external_id: row.get(0)?,
                        name: row.get(1)?,
                        email: row.get(2)?,
                        role: row.get(3)?,
                        active: row.get(4)?,
                        timezone: row.get(5)?,
                        leave_from: row.get(6)?,
                        leave_until: row.get(7)?,
                    })
                })?
                .collect()
            })
            .at(&self.label)
    }

    /// The external ids of the managers who are not available at `now` (inactive, or on leave),
    /// sorted: assignment passes them over.
    pub fn away_managers(&self, now: i64) -> Result<Vec<String>, StoreError> {
        Ok(self
            .manager_presence()?
            .into_iter()
            .filter(|manager| !manager.available(now))
            .map(|manager| manager.external_id)
            .collect())
    }

    /// Puts the manager `id` on leave from `from` until `until` (exclusive; `None`: until
    /// further notice), replacing any leave recorded before; `from == until` ends a leave.
    pub fn set_leave(
        &mut self,
        id: &str,
        from: i64,
        until: Option<i64>,
        now: i64,
    ) -> Result<(), StoreError> {
        if let Some(until) = until
            && until < from
        {
            return Err(StoreError::InvalidLeave {
                id: id.to_owned(),
                problem: "the leave ends before it begins: give --until after --from".to_owned(),
            });
        }
        let (from, until) = if until == Some(from) {
            (None, None)
        } else {
            (Some(from), until)
        };
        self.update_manager(
            id,
            "UPDATE managers SET leave_from = ?2, leave_until = ?3, updated_at = ?4 \
             WHERE external_id = ?1",
            params![id, from, until, now],
        )
    }

    /// Marks the manager `id` inactive (`active` false) or active again.
    pub fn set_manager_active(
        &mut self,
        id: &str,
        active: bool,
        now: i64,
    ) -> Result<(), StoreError> {
        self.update_manager(
            id,
            "UPDATE managers SET active = ?2, updated_at = ?3 WHERE external_id = ?1",
            params![id, active, now],
        )
    }

    fn update_manager(
        &mut self,
        id: &str,
        sql: &str,
        values: impl rusqlite::Params,
    ) -> Result<(), StoreError> {
        let path = self.label.as_path();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .at(path)?;
        let changed = tx.execute(sql, values).at(path)?;
        if changed == 0 {
            return Err(StoreError::UnknownManager { id: id.to_owned() });
        }
        tx.commit().at(path)
    }

    /// Moves the open and snoozed tasks of the manager `from` (and, with `customers`, the
    /// customers they own) to `to`, at `now`, in one `IMMEDIATE` transaction. The new
    /// assignee must be available at `now` ([`StoreError::InactiveManager`] otherwise); with
    /// [`ReassignTo::Auto`] each task or customer goes to the available manager of `from`'s
    /// role with the fewest open tasks (then the fewest customers), or, when no one has the
    /// role, to any available manager; with no one available nothing is written
    /// ([`StoreError::NoOneAvailable`]).
    pub fn reassign_work(
        &mut self,
        from: &str,
        to: &ReassignTo,
        customers: bool,
        now: i64,
    ) -> Result<Reassigned, StoreError> {
        let path = self.label.as_path();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .at(path)?;
        let role: Option<Option<String>> = tx
            .query_row(
                "SELECT role FROM managers WHERE external_id = ?1",
                [from],
                |row| row.get(0),
            )
            .optional()
            .at(path)?;
        let Some(role) = role else {
            return Err(StoreError::UnknownManager {
                id: from.to_owned(),
            });
        };
        if let ReassignTo::Manager(id) = to {
            let available: Option<bool> = tx
                .query_row(
                    &format!(
                        "SELECT {} FROM managers m WHERE m.external_id = ?1",
                        available_sql("?2")
                    ),
                    params![id, now],
                    |row| row.get(0),
                )
                .optional()
                .at(path)?;
            match available {
                None => return Err(StoreError::UnknownManager { id: id.clone() }),
                Some(false) => return Err(StoreError::InactiveManager { id: id.clone() }),
                Some(true) if id == from => {
                    return Err(StoreError::NoOneAvailable {
                        id: from.to_owned(),
                    });
                }
                Some(true) => {}
            }
        }
        let tasks: Vec<i64> = tx
            .prepare("SELECT id FROM tasks WHERE assignee = ?1 AND status <> 'done' ORDER BY id")
            .and_then(|mut stmt| stmt.query_map([from], |row| row.get(0))?.collect())
            .at(path)?;
        let owned: Vec<i64> = if customers {
            tx.prepare("SELECT id FROM customers WHERE owner = ?1 ORDER BY id")
                .and_then(|mut stmt| stmt.query_map([from], |row| row.get(0))?.collect())
                .at(path)?
        } else {
            Vec::new()
        };
        let mut report = Reassigned::default();
        // The next assignee: fewest open tasks, then fewest customers, then id; the counts are
        // read again after every move, so the work spreads.
        let pick = |tx: &rusqlite::Transaction<'_>| -> Result<String, StoreError> {
            if let ReassignTo::Manager(id) = to {
                return Ok(id.clone());
            }
            let sql = format!(
                "SELECT m.external_id FROM managers m WHERE {} AND m.external_id <> ?2 \
                 AND (?3 IS NULL OR m.role = ?3 OR NOT EXISTS (SELECT 1 FROM managers r \
                   WHERE r.role = ?3 AND r.external_id <> ?2 AND {})) \
                 ORDER BY (SELECT count(*) FROM tasks t WHERE t.assignee = m.external_id \
                   AND t.status <> 'done'), \
                 (SELECT count(*) FROM customers c WHERE c.owner = m.external_id), \
                 m.external_id LIMIT 1",
                available_sql("?1"),
                available_sql("?1").replace("m.", "r."),
            );
            tx.query_row(&sql, params![now, from, role], |row| row.get(0))
                .optional()
                .at(path)?
                .ok_or_else(|| StoreError::NoOneAvailable {
                    id: from.to_owned(),
                })
        };
        let add = |list: &mut Vec<(String, u64)>, id: String| match list
            .iter_mut()
            .find(|(known, _)| *known == id)
        {
            Some((_, n)) => *n += 1,
            None => list.push((id, 1)),
        };
        for task in tasks {
            let next = pick(&tx)?;
            tx.execute(
                "UPDATE tasks SET assignee = ?2 WHERE id = ?1",
                params![task, next],
            )
            .at(path)?;
            add(&mut report.tasks, next);
        }
        for customer in owned {
            let next = pick(&tx)?;
            tx.execute(
                "UPDATE customers SET owner = ?2, updated_at = ?3 WHERE id = ?1",
                params![customer, next, now],
            )
            .at(path)?;
            add(&mut report.customers, next);
        }
        tx.commit().at(path)?;
        report.tasks.sort();
        report.customers.sort();
        Ok(report)
    }
}
