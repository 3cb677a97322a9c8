//! The daemon's records: where each of its schedules stands, and its state for `tiercare status`.
//!
//! A schedule's *slot* is the time it was due (a cron firing, or the end of a follow-up tick).
//! [`Store::advance_schedule`] moves a schedule's last handled slot forward only, in one
//! `IMMEDIATE` transaction, and says whether it moved: a restarted daemon, a second process or
//! a clock stepped backwards can never handle the same slot twice.
//!
//! [`DaemonState`] is one row the daemon rewrites whenever something `status` shows changes;
//! another process reads it with [`Store::daemon_state`].

use rusqlite::{OptionalExtension, Transaction, TransactionBehavior, params};
use serde::Serialize;

use crate::db::Store;
use crate::error::{AtPath, StoreError};

/// Where one schedule stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScheduleCursor {
    /// The schedule's name (`reassess`, `followups`).
    pub name: String,
    /// The cron text its slots came from (`""` for the follow-up tick).
    pub schedule: String,
    /// The latest slot handled, fired or skipped (unix seconds).
    pub last_slot: i64,
    /// The latest slot that fired.
    pub last_fired_at: Option<i64>,
    /// The clock time it fired at.
    pub last_run_at: Option<i64>,
    /// Slots skipped so far because they were too late to make up.
    pub skipped: i64,
}

/// What [`Store::advance_schedule`] records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotOutcome {
    /// The slot ran.
    Fired,
    /// The slot (and `count - 1` earlier ones) were missed and skipped.
    Skipped {
        /// How many slots were skipped.
        count: i64,
    },
}

/// The daemon's state, as `tiercare status` shows it. Times are unix seconds on the daemon's
/// clock (simulated when it runs with `--simulate-from`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DaemonState {
    /// The daemon's process id.
    pub pid: i64,
    /// When it started.
    pub started_at: i64,
    /// When it last wrote this state.
    pub heartbeat_at: i64,
    /// When it stopped cleanly; `None` while running or after a crash.
    pub stopped_at: Option<i64>,
    /// `system`, or the simulated clock's description.
    pub clock: String,
    /// The active rule-set version.
    pub ruleset_version: Option<String>,
    /// When it was loaded.
    pub ruleset_loaded_at: Option<i64>,
    /// Rule sets loaded since start (the first included).
    pub reloads: i64,
    /// Milliseconds from the first file change seen to the new rules being active, last time.
    pub last_reload_ms: Option<i64>,
    /// Every problem of the last failed reload (`path:line:col: ...`); `None` once a reload
    /// succeeds.
    pub last_reload_error: Option<String>,
    /// When that reload failed.
    pub last_reload_error_at: Option<i64>,
    /// The last reassessment.
    pub last_assessment_at: Option<i64>,
    /// The next one the schedule says (`None` without a `reassess` schedule).
    pub next_assessment_at: Option<i64>,
    /// The last tick (follow-ups recorded and mail delivered up to this time).
    pub last_tick_at: Option<i64>,
    /// The last tick's error, `None` once a tick succeeds.
    pub last_tick_error: Option<String>,
    /// The last delivery error.
    pub last_send_error: Option<String>,
    /// When it happened.
    pub last_send_error_at: Option<i64>,
}

impl Store {
    /// SQLite's `data_version` of this connection: it changes when another connection (of
    /// this process or another) commits a change to the database, and never for this
    /// connection's own writes. Reading it reads no table.
    pub fn data_version(&self) -> Result<i64, StoreError> {
        self.conn
            .query_row("PRAGMA data_version", [], |row| row.get(0))
            .at(self.label.as_path())
    }

    /// Where the schedule `name` stands; `None` before it was ever handled.
    pub fn schedule_cursor(&self, name: &str) -> Result<Option<ScheduleCursor>, StoreError> {
        self.conn
            .query_row(
                "SELECT name, schedule, last_slot, last_fired_at, last_run_at, skipped
                 FROM schedule_firings WHERE name = ?1",
                [name],
                |row| {
                    Ok(ScheduleCursor {
                        name: row.get(0)?,
                        schedule: row.get(1)?,
                        last_slot: row.get(2)?,
                        last_fired_at: row.get(3)?,
                        last_run_at: row.get(4)?,
                        skipped: row.get(5)?,
                    })
                },
            )
            .optional()
            .at(&self.label)
    }

    /// Records that the schedule `name` handled `slot` at clock time `now`, if `slot` is later
    /// than the last slot handled; returns whether it was (`false`: already handled, by this
    /// process before a restart or under a clock that went backwards; nothing is written).
    pub fn advance_schedule(
        &mut self,
        name: &str,
        schedule: &str,
        slot: i64,
        outcome: SlotOutcome,
        now: i64,
    ) -> Result<bool, StoreError> {
        let path = self.label.as_path();
        let tx = Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate).at(path)?;
        let last: Option<i64> = tx
            .query_row(
                "SELECT last_slot FROM schedule_firings WHERE name = ?1",
                [name],
                |row| row.get(0),
            )
            .optional()
            .at(path)?;
        if last.is_some_and(|last| last >= slot) {
            return Ok(false);
        }
        let (fired, skipped) = match outcome {
            SlotOutcome::Fired => (Some(slot), 0),
            SlotOutcome::Skipped { count } => (None, count),
        };
        tx.execute(
            "INSERT INTO schedule_firings
                 (name, schedule, last_slot, last_fired_at, last_run_at, skipped, updated_at)
             VALUES (?1, ?2, ?3, ?4, CASE WHEN ?4 IS NULL THEN NULL ELSE ?5 END, ?6, ?5)
             ON CONFLICT (name) DO UPDATE SET
                 schedule = excluded.schedule,
                 last_slot = excluded.last_slot,
                 last_fired_at = coalesce(excluded.last_fired_at, last_fired_at),
                 last_run_at = coalesce(excluded.last_run_at, last_run_at),
                 skipped = skipped + excluded.skipped,
                 updated_at = excluded.updated_at",
            params![name, schedule, slot, fired, now, skipped],
        )
        .at(path)?;
        tx.commit().at(path)?;
        Ok(true)
    }

    /// Writes the daemon's state (one row, replaced whole).
    pub fn write_daemon_state(&mut self, state: &DaemonState) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO daemon_state
                     (id, pid, started_at, heartbeat_at, stopped_at, clock, ruleset_version,
                      ruleset_loaded_at, reloads, last_reload_ms, last_reload_error,
                      last_reload_error_at, last_assessment_at, next_assessment_at, last_tick_at,
                      last_tick_error, last_send_error, last_send_error_at, updated_at)
                 VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15,
                         ?16, ?17, ?3)",
                params![
                    state.pid,
                    state.started_at,
                    state.heartbeat_at,
                    state.stopped_at,
                    state.clock,
                    state.ruleset_version,
                    state.ruleset_loaded_at,
                    state.reloads,
                    state.last_reload_ms,
                    state.last_reload_error,
                    state.last_reload_error_at,
                    state.last_assessment_at,
                    state.next_assessment_at,
                    state.last_tick_at,
                    state.last_tick_error,
                    state.last_send_error,
                    state.last_send_error_at,
                ],
            )
            .at(&self.label)?;
        Ok(())
    }

    /// The latest delivery error recorded in the outbox (a deferral, failure or unknown
    /// outcome), with its time: `(at, detail)`.
    pub fn last_send_error(&self) -> Result<Option<(i64, String)>, StoreError> {
        self.conn
            .query_row(
                "SELECT at, coalesce(detail, to_state) FROM outbox_events
                 WHERE to_state IN ('deferred', 'failed', 'unknown')
                 ORDER BY id DESC LIMIT 1",
                [],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()
            .at(&self.label)
    }

    /// The last daemon's state; `None` if no daemon ever ran on this database.
    pub fn daemon_state(&self) -> Result<Option<DaemonState>, StoreError> {
        self.conn
            .query_row(
                "SELECT pid, started_at, heartbeat_at, stopped_at, clock, ruleset_version,
                        ruleset_loaded_at, reloads, last_reload_ms, last_reload_error,
                        last_reload_error_at, last_assessment_at, next_assessment_at,
                        last_tick_at, last_tick_error, last_send_error, last_send_error_at
                 FROM daemon_state WHERE id = 1",
                [],
                |row| {
                    Ok(DaemonState {
                        pid: row.get(0)?,
                        started_at: row.get(1)?,
                        heartbeat_at: row.get(2)?,
                        stopped_at: row.get(3)?,
                        clock: row.get(4)?,
                        ruleset_version: row.get(5)?,
                        ruleset_loaded_at: row.get(6)?,
                        reloads: row.get(7)?,
                        last_reload_ms: row.get(8)?,
                        last_reload_error: row.get(9)?,
                        last_reload_error_at: row.get(10)?,
                        last_assessment_at: row.get(11)?,
                        next_assessment_at: row.get(12)?,
                        last_tick_at: row.get(13)?,
                        last_tick_error: row.get(14)?,
                        last_send_error: row.get(15)?,
                        last_send_error_at: row.get(16)?,
                    })
                },
            )
            .optional()
            .at(&self.label)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_schedule_only_moves_forward() {
        let mut store = Store::open_in_memory().unwrap();
        assert_eq!(store.schedule_cursor("reassess").unwrap(), None);
        assert!(
            store
                .advance_schedule("reassess", "0 2 * * *", 100, SlotOutcome::Fired, 105)
                .unwrap()
        );
        // The same slot again (a restart), or an earlier one (a clock stepped back): refused.
        assert!(
            !store
                .advance_schedule("reassess", "0 2 * * *", 100, SlotOutcome::Fired, 106)
                .unwrap()
        );
        assert!(
            !store
                .advance_schedule("reassess", "0 2 * * *", 50, SlotOutcome::Fired, 107)
                .unwrap()
        );
        assert!(
            store
                .advance_schedule(
                    "reassess",
                    "0 2 * * *",
                    300,
                    SlotOutcome::Skipped { count: 2 },
                    400
                )
                .unwrap()
        );
        let cursor = store.schedule_cursor("reassess").unwrap().unwrap();
        assert_eq!(cursor.last_slot, 300);
        assert_eq!(cursor.last_fired_at, Some(100));
        assert_eq!(cursor.last_run_at, Some(105));
        assert_eq!(cursor.skipped, 2);
    }

    #[test]
    fn daemon_state_round_trips() {
        let mut store = Store::open_in_memory().unwrap();
        assert_eq!(store.daemon_state().unwrap(), None);
        let state = DaemonState {
            pid: 42,
            started_at: 1,
            heartbeat_at: 2,
            clock: "system".to_owned(),
            ruleset_version: Some("abc".to_owned()),
            reloads: 3,
            last_reload_error: Some("rules/tiers.yaml:3:5: error: bad".to_owned()),
            ..DaemonState::default()
        };
        store.write_daemon_state(&state).unwrap();
        assert_eq!(store.daemon_state().unwrap(), Some(state.clone()));
        let later = DaemonState {
            heartbeat_at: 9,
            last_reload_error: None,
            ..state
        };
        store.write_daemon_state(&later).unwrap();
        assert_eq!(store.daemon_state().unwrap(), Some(later));
    }
}
