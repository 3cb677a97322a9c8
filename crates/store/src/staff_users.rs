//! The staff workspace's accounts, sessions, login attempts and audit (migration 15).
//!
//! The store keeps what it is given: password hashes (Argon2id PHC strings made by the
//! scheduler), session ids already hashed (SHA-256 of the cookie's random id), and audit
//! entries. It decides nothing about passwords or expiry beyond the times it is passed.

use rusqlite::{OptionalExtension, Row, TransactionBehavior, params};

use crate::counts::count;
use crate::db::Store;
use crate::error::{AtPath, StoreError};

/// What a staff account may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StaffRole {
    /// Everything.
    Admin,
    /// Their own customers and tasks (the account is linked to a manager id).
    Manager,
    /// Reads only.
    Viewer,
}

impl StaffRole {
    /// The role's stored (and typed) name: `admin`, `manager` or `viewer`.
    pub fn as_str(self) -> &'static str {
        match self {
            StaffRole::Admin => "admin",
            StaffRole::Manager => "manager",
            StaffRole::Viewer => "viewer",
        }
    }

    /// The role named `name` (`admin`, `manager`, `viewer`).
    pub fn parse(name: &str) -> Option<StaffRole> {
        match name {
            "admin" => Some(StaffRole::Admin),
            "manager" => Some(StaffRole::Manager),
            "viewer" => Some(StaffRole::Viewer),
            _ => None,
        }
    }
}

/// A staff account (without its password hash).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StaffUser {
    /// The row id.
    pub id: i64,
    /// The login name.
    pub login: String,
    /// What it may do.
    pub role: StaffRole,
    /// For a manager account: the manager's external id.
    pub manager_id: Option<String>,
    /// Whether it may sign in.
    pub active: bool,
    /// When it was created, unix seconds UTC.
    pub created_at: i64,
    /// When it was last changed (password, disabled), unix seconds UTC.
    pub updated_at: i64,
}

/// A live session with its account, from [`Store::touch_staff_session`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffSession {
    /// The account.
    pub user: StaffUser,
    /// The session's CSRF token (the synchronizer token of its forms).
    pub csrf_token: String,
    /// When the session began, unix seconds UTC.
    pub created_at: i64,
}

/// One change made through the web, for [`Store::record_staff_audit`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StaffAuditEntry {
    /// The account's row id (`None` when there is none, e.g. a refused login).
    pub user_id: Option<i64>,
    /// The account's login name.
    pub login: String,
    /// What was done, e.g. `task.done`, `login`, `logout`.
    pub action: String,
    /// On what, e.g. `task:12`, `customer:C-17`.
    pub object: String,
    /// More words, without personal data where avoidable (a note's length, not its text).
    pub details: Option<String>,
}

/// A recorded audit row, from [`Store::staff_audit`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StaffAuditRow {
    /// The row id.
    pub id: i64,
    /// When, unix seconds UTC.
    pub at: i64,
    /// The entry.
    #[serde(flatten)]
    pub entry: StaffAuditEntry,
}

/// Failed login attempts counted by [`Store::failed_staff_logins`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FailedLogins {
    /// Failures for the login name since the time asked (reset by a success).
    pub account: u64,
    /// Failures from the client since the time asked.
    pub client: u64,
}

const USER_COLUMNS: &str = "id, login, role, manager_id, active, created_at, updated_at";

fn user_from_row(row: &Row<'_>) -> rusqlite::Result<StaffUser> {
    let role: String = row.get(2)?;
    Ok(StaffUser {
        id: row.get(0)?,
        login: row.get(1)?,
        role: StaffRole::parse(&role).unwrap_or(StaffRole::Viewer),
        manager_id: row.get(3)?,
        active: row.get(4)?,
        created_at: row.get(5)?,
        updated_at: row.get(6)?,
    })
}

fn unknown_account(login: &str) -> StoreError {
    StoreError::StaffAccount {
        login: login.to_owned(),
        problem: "no such account; `tiercare users list` lists them".to_owned(),
    }
}

impl Store {
    /// Adds the account `login` with `role` (a manager account linked to the active manager
    /// `manager_id`, which must exist) and the password hash `password_hash`, at `now`.
    /// Refused ([`StoreError::StaffAccount`], [`StoreError::UnknownManager`],
    /// [`StoreError::InactiveManager`]) when the login is taken or the manager unknown.
    pub fn add_staff_user(
        &mut self,
        login: &str,
        role: StaffRole,
        manager_id: Option<&str>,
        password_hash: &str,
        now: i64,
    ) -> Result<StaffUser, StoreError> {
        let path = self.label.as_path();
        let manager_id = match (role, manager_id) {
            (StaffRole::Manager, Some(id)) => Some(id),
            (StaffRole::Manager, None) => {
                return Err(StoreError::StaffAccount {
                    login: login.to_owned(),
                    problem: "a manager account needs --manager ID (the manager's id in your \
                              manager import)"
                        .to_owned(),
                });
            }
            (_, Some(_)) => {
                return Err(StoreError::StaffAccount {
                    login: login.to_owned(),
                    problem: "--manager is only for --role manager".to_owned(),
                });
            }
            (_, None) => None,
        };
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .at(path)?;
        if let Some(id) = manager_id {
            let active: Option<bool> = tx
                .query_row(
                    "SELECT active FROM managers WHERE external_id = ?1",
                    [id],
                    |row| row.get(0),
                )
                .optional()
                .at(path)?;
            match active {
                None => return Err(StoreError::UnknownManager { id: id.to_owned() }),
                Some(false) => return Err(StoreError::InactiveManager { id: id.to_owned() }),
                Some(true) => {}
            }
        }
        let taken: bool = tx
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM staff_users WHERE login = ?1)",
                [login],
                |row| row.get(0),
            )
            .at(path)?;
        if taken {
            return Err(StoreError::StaffAccount {
                login: login.to_owned(),
                problem: "this login is taken; choose another, or `tiercare users passwd` to \
                          change its password"
                    .to_owned(),
            });
        }
        let user = tx
            .query_row(
                &format!(
                    "INSERT INTO staff_users (login, role, manager_id, password, created_at, \
                     updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?5) RETURNING {USER_COLUMNS}"
                ),
                params![login, role.as_str(), manager_id, password_hash, now],
                user_from_row,
            )
            .at(path)?;
        tx.commit().at(path)?;
        Ok(user)
    }

    /// Every staff account, by login.
    pub fn staff_users(&self) -> Result<Vec<StaffUser>, StoreError> {
        self.conn
            .prepare_cached(&format!(
                "SELECT {USER_COLUMNS} FROM staff_users ORDER BY login"
            ))
            .and_then(|mut stmt| stmt.query_map([], user_from_row)?.collect())
            .at(&self.label)
    }

    /// The account `login` with its password hash, if there is one.
    pub fn staff_user_with_password(
        &self,
        login: &str,
    ) -> Result<Option<(StaffUser, String)>, StoreError> {
        self.conn
            .prepare_cached(&format!(
                "SELECT {USER_COLUMNS}, password FROM staff_users WHERE login = ?1"
            ))
            .and_then(|mut stmt| {
                stmt.query_row([login], |row| Ok((user_from_row(row)?, row.get(7)?)))
                    .optional()
            })
            .at(&self.label)
    }

    /// Sets the password hash of `login` at `now` and ends its sessions.
    pub fn set_staff_password(
        &mut self,
        login: &str,
        password_hash: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        self.change_staff_user(login, now, "password = ?2", password_hash)
    }

    /// Disables (`active` false) or enables `login` at `now`; disabling ends its sessions.
    pub fn set_staff_user_active(
        &mut self,
        login: &str,
        active: bool,
        now: i64,
    ) -> Result<(), StoreError> {
        self.change_staff_user(login, now, "active = ?2", active)
    }

    fn change_staff_user(
        &mut self,
        login: &str,
        now: i64,
        set: &str,
        value: impl rusqlite::ToSql,
    ) -> Result<(), StoreError> {
        let path = self.label.as_path();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .at(path)?;
        let id: Option<i64> = tx
            .query_row(
                &format!(
                    "UPDATE staff_users SET {set}, updated_at = ?3 WHERE login = ?1 RETURNING id"
                ),
                params![login, value, now],
                |row| row.get(0),
            )
            .optional()
            .at(path)?;
        let id = id.ok_or_else(|| unknown_account(login))?;
        tx.execute("DELETE FROM staff_sessions WHERE user_id = ?1", [id])
            .at(path)?;
        tx.commit().at(path)?;
        Ok(())
    }

    /// Starts a session `id_hash` for the account `user_id` with `csrf_token` at `now`, ending
    /// the session `replacing` (the browser's earlier one, so the id changes at login), and
    /// records the successful login attempt of `client`; one transaction.
    pub fn start_staff_session(
        &mut self,
        id_hash: &str,
        user_id: i64,
        csrf_token: &str,
        replacing: Option<&str>,
        client: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let path = self.label.as_path();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .at(path)?;
        if let Some(old) = replacing {
            tx.execute("DELETE FROM staff_sessions WHERE id_hash = ?1", [old])
                .at(path)?;
        }
        tx.execute(
            "INSERT INTO staff_sessions (id_hash, user_id, csrf_token, created_at, last_seen) \
             VALUES (?1, ?2, ?3, ?4, ?4)",
            params![id_hash, user_id, csrf_token, now],
        )
        .at(path)?;
        tx.execute(
            "INSERT INTO staff_login_attempts (login, client, succeeded, at) \
             SELECT login, ?2, 1, ?3 FROM staff_users WHERE id = ?1",
            params![user_id, client, now],
        )
        .at(path)?;
        tx.commit().at(path)?;
        Ok(())
    }

    /// The session `id_hash` at `now`, if it is live: last seen after `idle_since`, begun after
    /// `begun_since`, and its account active. A live session's last-seen time becomes `now`
    /// (written at most once a minute); an expired one is deleted.
    pub fn touch_staff_session(
        &mut self,
        id_hash: &str,
        idle_since: i64,
        begun_since: i64,
        now: i64,
    ) -> Result<Option<StaffSession>, StoreError> {
        let path = self.label.as_path();
        let found = self
            .conn
            .prepare_cached(&format!(
                "SELECT s.csrf_token, s.created_at, s.last_seen, {} FROM staff_sessions s \
                 JOIN staff_users u ON u.id = s.user_id WHERE s.id_hash = ?1",
                USER_COLUMNS
                    .split(", ")
                    .map(|column| format!("u.{column}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
            .and_then(|mut stmt| {
                stmt.query_row([id_hash], |row| {
                    let csrf: String = row.get(0)?;
                    let created: i64 = row.get(1)?;
                    let last_seen: i64 = row.get(2)?;
                    let role: String = row.get(5)?;
                    let user = StaffUser {
                        id: row.get(3)?,
                        login: row.get(4)?,
                        role: StaffRole::parse(&role).unwrap_or(StaffRole::Viewer),
                        manager_id: row.get(6)?,
                        active: row.get(7)?,
                        created_at: row.get(8)?,
                        updated_at: row.get(9)?,
                    };
                    Ok((csrf, created, last_seen, user))
                })
                .optional()
            })
            .at(path)?;
        let Some((csrf_token, created_at, last_seen, user)) = found else {
            return Ok(None);
        };
        if last_seen <= idle_since || created_at <= begun_since || !user.active {
            self.conn
                .execute("DELETE FROM staff_sessions WHERE id_hash = ?1", [id_hash])
                .at(path)?;
            return Ok(None);
        }
        if now - last_seen >= 60 {
            self.conn
                .execute(
                    "UPDATE staff_sessions SET last_seen = ?2 WHERE id_hash = ?1",
                    params![id_hash, now],
                )
                .at(path)?;
        }
        Ok(Some(StaffSession {
            user,
            csrf_token,
            created_at,
        }))
    }

    /// Ends the session `id_hash` (logout); nothing when there is none.
    pub fn end_staff_session(&mut self, id_hash: &str) -> Result<(), StoreError> {
        self.conn
            .execute("DELETE FROM staff_sessions WHERE id_hash = ?1", [id_hash])
            .at(&self.label)?;
        Ok(())
    }

    /// Records a failed login for `login` from `client` at `now`, and forgets attempts older
    /// than `forget_before`.
    pub fn record_failed_staff_login(
        &mut self,
        login: &str,
        client: &str,
        now: i64,
        forget_before: i64,
    ) -> Result<(), StoreError> {
        let path = self.label.as_path();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .at(path)?;
        tx.execute(
            "INSERT INTO staff_login_attempts (login, client, succeeded, at) VALUES (?1, ?2, 0, ?3)",
            params![login, client, now],
        )
        .at(path)?;
        tx.execute(
            "DELETE FROM staff_login_attempts WHERE at < ?1",
            [forget_before],
        )
        .at(path)?;
        tx.commit().at(path)?;
        Ok(())
    }

    /// Failed logins since `since`: for `login` (after its last success) and from `client`.
    pub fn failed_staff_logins(
        &self,
        login: &str,
        client: &str,
        since: i64,
    ) -> Result<FailedLogins, StoreError> {
        self.conn
            .prepare_cached(
                "SELECT \
                 (SELECT count(*) FROM staff_login_attempts WHERE login = ?1 AND succeeded = 0 \
                  AND at >= max(?3, coalesce((SELECT max(at) FROM staff_login_attempts \
                  WHERE login = ?1 AND succeeded = 1), ?3))), \
                 (SELECT count(*) FROM staff_login_attempts WHERE client = ?2 AND succeeded = 0 \
                  AND at >= ?3)",
            )
            .and_then(|mut stmt| {
                stmt.query_row(params![login, client, since], |row| {
                    Ok(FailedLogins {
                        account: count(row, 0)?,
                        client: count(row, 1)?,
                    })
                })
            })
            .at(&self.label)
    }

    /// Runs `change` (one of the store's writes) with `entry` recorded in `staff_audit` at
    /// `now` by the change's own transaction, so a change made through the web and its audit
    /// row are committed together or not at all. The writes the staff pages make (tasks done,
    /// snoozed or reassigned, pins, logged contacts, outbox retries and cancels, resuming
    /// sending, forgetting) write it before they commit; a write that does not (or a change
    /// that wrote nothing but succeeded) gets the row in a transaction of its own, as
    /// [`Store::record_staff_audit`] does. A refused change records nothing.
    pub fn audited<T>(
        &mut self,
        entry: StaffAuditEntry,
        now: i64,
        change: impl FnOnce(&mut Store) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.pending_audit = Some((entry, now));
        let result = change(self);
        match (result, self.pending_audit.take()) {
            (Ok(value), Some((entry, at))) => {
                self.record_staff_audit(&entry, at)?;
                Ok(value)
            }
            (result, _) => result,
        }
    }

    /// Records `entry` at `now` in `staff_audit`.
    pub fn record_staff_audit(
        &mut self,
        entry: &StaffAuditEntry,
        now: i64,
    ) -> Result<(), StoreError> {
        write_audit(&self.conn, Some((entry.clone(), now))).at(&self.label)
    }

    /// The latest `limit` audit rows, newest first.
    pub fn staff_audit(&self, limit: u64) -> Result<Vec<StaffAuditRow>, StoreError> {
        self.conn
            .prepare_cached(
                "SELECT id, at, user_id, login, action, object, details FROM staff_audit \
                 ORDER BY id DESC LIMIT ?1",
            )
            .and_then(|mut stmt| {
                stmt.query_map([i64::try_from(limit).unwrap_or(i64::MAX)], |row| {
                    Ok(StaffAuditRow {
                        id: row.get(0)?,
                        at: row.get(1)?,
                        entry: StaffAuditEntry {
                            user_id: row.get(2)?,
                            login: row.get(3)?,
                            action: row.get(4)?,
                            object: row.get(5)?,
                            details: row.get(6)?,
                        },
                    })
                })?
                .collect()
            })
            .at(&self.label)
    }
}

/// Writes a pending audit row ([`Store::audited`]) inside the change's transaction `tx`.
pub(crate) fn write_audit(
    tx: &rusqlite::Connection,
    pending: Option<(StaffAuditEntry, i64)>,
) -> rusqlite::Result<()> {
    if let Some((entry, at)) = pending {
        tx.execute(
            "INSERT INTO staff_audit (at, user_id, login, action, object, details) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                at,
                entry.user_id,
                entry.login,
                entry.action,
                entry.object,
                entry.details
            ],
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(action: &str) -> StaffAuditEntry {
        StaffAuditEntry {
            user_id: None,
            login: "ada".into(),
            action: action.into(),
            object: "task:1".into(),
            details: None,
        }
    }

    #[test]
    fn accounts_sessions_attempts_and_audit() {
        let mut store = Store::open_in_memory().unwrap();
        let admin = store
            .add_staff_user("ada", StaffRole::Admin, None, "$argon2id$x", 100)
            .unwrap();
        assert!(matches!(
            store.add_staff_user("ada", StaffRole::Viewer, None, "h", 100),
            Err(StoreError::StaffAccount { .. })
        ));
        assert!(matches!(
            store.add_staff_user("bob", StaffRole::Manager, Some("M-9"), "h", 100),
            Err(StoreError::UnknownManager { .. })
        ));
        assert!(matches!(
            store.add_staff_user("bob", StaffRole::Manager, None, "h", 100),
            Err(StoreError::StaffAccount { .. })
        ));
        let (found, hash) = store.staff_user_with_password("ada").unwrap().unwrap();
        assert_eq!((found, hash.as_str()), (admin.clone(), "$argon2id$x"));

        store
            .start_staff_session("s1", admin.id, "csrf", None, "192.0.2.1", 200)
            .unwrap();
        let live = store.touch_staff_session("s1", 150, 0, 200).unwrap();
        assert_eq!(live.unwrap().csrf_token, "csrf");
        // Idle: last seen at 200, idle limit after it.
        assert!(
            store
                .touch_staff_session("s1", 200, 0, 900)
                .unwrap()
                .is_none()
        );
        assert!(
            store
                .touch_staff_session("s1", 0, 0, 900)
                .unwrap()
                .is_none()
        );
        // Rotation replaces the earlier session; a new password ends every session.
        store
            .start_staff_session("s2", admin.id, "c2", None, "c", 300)
            .unwrap();
        store
            .start_staff_session("s3", admin.id, "c3", Some("s2"), "c", 301)
            .unwrap();
        assert!(
            store
                .touch_staff_session("s2", 0, 0, 302)
                .unwrap()
                .is_none()
        );
        assert!(
            store
                .touch_staff_session("s3", 0, 0, 302)
                .unwrap()
                .is_some()
        );
        store.set_staff_password("ada", "new", 303).unwrap();
        assert!(
            store
                .touch_staff_session("s3", 0, 0, 304)
                .unwrap()
                .is_none()
        );

        store.record_failed_staff_login("ada", "c", 400, 0).unwrap();
        store.record_failed_staff_login("eve", "c", 401, 0).unwrap();
        assert_eq!(
            store.failed_staff_logins("ada", "c", 0).unwrap(),
            FailedLogins {
                account: 1,
                client: 2
            }
        );
        store
            .start_staff_session("s4", admin.id, "c4", None, "d", 402)
            .unwrap();
        assert_eq!(store.failed_staff_logins("ada", "c", 0).unwrap().account, 0);

        store.record_staff_audit(&entry("task.done"), 500).unwrap();
        let rows = store.staff_audit(10).unwrap();
        assert_eq!(rows[0].entry.action, "task.done");
        assert_eq!(rows[0].at, 500);
        store.set_staff_user_active("ada", false, 600).unwrap();
        assert!(!store.staff_users().unwrap()[0].active);
        assert!(matches!(
            store.set_staff_user_active("nobody", false, 600),
            Err(StoreError::StaffAccount { .. })
        ));
    }
}
