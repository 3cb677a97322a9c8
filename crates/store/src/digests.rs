//! Managers' daily digests and the escalation of overdue tasks.
//!
//! A digest is decided once per manager per local day: [`Store::record_digest`] writes its
//! `manager_digests` row (unique by manager and day), its outbox e-mail (if it has one) and the
//! escalations it carries in ONE `IMMEDIATE` transaction, so a digest is never queued twice,
//! whatever crashes or processes come, and an escalation is made once (`task_escalations`,
//! one row per task). The e-mail then goes through the outbox like any other: claimed, handed
//! over, retried.
//!
//! The reads ([`Store::digest_tasks`], [`Store::uncontacted_customers`],
//! [`Store::escalation_candidates`]) gather what a digest lists; the scheduler decides and
//! renders.

use rusqlite::{OptionalExtension, TransactionBehavior, params};

use crate::db::Store;
use crate::error::{AtPath, StoreError};
use crate::outbox::{NewEmail, OutboxState, event};
use crate::tasks::Task;

/// The `rule_id` and `template` of a digest's outbox row (no follow-up rule makes it).
pub const DIGEST_RULE: &str = "digest";

/// A customer a digest lists (owned by the manager, not contacted for a while).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DigestCustomer {
    /// The customer's external id.
    pub id: String,
    /// Their name (`""` when none is stored).
    pub name: String,
    /// Their current tier.
    pub tier: String,
    /// Their latest interaction up to the digest's time, unix seconds UTC.
    pub last_contact_at: Option<i64>,
}

/// A digest to record with [`Store::record_digest`].
#[derive(Debug, Clone, PartialEq)]
pub struct NewDigest<'a> {
    /// The manager's external id.
    pub manager: &'a str,
    /// The day in the manager's zone, `YYYY-MM-DD`.
    pub local_day: &'a str,
    /// Counts per section, as a JSON object (stored for `status` and the report).
    pub summary: serde_json::Value,
    /// The composed e-mail (with its template name); `None`: nothing to send (empty, or no
    /// address), the day is recorded as decided all the same.
    pub email: Option<(&'a str, NewEmail)>,
    /// When the e-mail may go, unix seconds UTC.
    pub due_at: i64,
    /// Tasks this digest escalates (each recorded once: a task already escalated is left).
    pub escalated: &'a [i64],
}

/// What [`Store::record_digest`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DigestOutcome {
    /// Recorded, with its outbox row's id when it has an e-mail.
    Recorded {
        /// The queued e-mail.
        outbox_id: Option<i64>,
    },
    /// The manager's digest of that day was already decided (by another process, or before a
    /// crash): nothing was written.
    AlreadyDecided,
}

/// A digest as recorded.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RecordedDigest {
    /// The manager's external id.
    pub manager: String,
    /// The manager's local day.
    pub local_day: String,
    /// When it was decided, unix seconds UTC.
    pub created_at: i64,
    /// Its outbox e-mail (`None`: nothing sent).
    pub outbox_id: Option<i64>,
    /// Counts per section.
    pub summary: serde_json::Value,
}

impl Store {
    /// Whether the manager's digest of `local_day` was decided.
    pub fn digest_decided(&self, manager: &str, local_day: &str) -> Result<bool, StoreError> {
        self.conn
            .prepare_cached("SELECT 1 FROM manager_digests WHERE manager = ?1 AND local_day = ?2")
            .and_then(|mut stmt| stmt.exists(params![manager, local_day]))
            .at(&self.label)
    }

    /// When the manager's latest digest before `before` was decided (`None`: never).
    pub fn last_digest_at(&self, manager: &str, before: i64) -> Result<Option<i64>, StoreError> {
        self.conn
            .prepare_cached(
                "SELECT max(created_at) FROM manager_digests WHERE manager = ?1 AND created_at < ?2",
            )
            .and_then(|mut stmt| stmt.query_row(params![manager, before], |row| row.get(0)))
            .at(&self.label)
    }

    /// Every recorded digest decided in `[from, to)`, by time then manager.
    pub fn digests(&self, from: i64, to: i64) -> Result<Vec<RecordedDigest>, StoreError> {
        self.conn
            .prepare_cached(
                "SELECT manager, local_day, created_at, outbox_id, summary FROM manager_digests \
                 WHERE created_at >= ?1 AND created_at < ?2 ORDER BY created_at, manager",
            )
            .and_then(|mut stmt| {
                stmt.query_map(params![from, to], |row| {
                    let summary: String = row.get(4)?;
                    Ok(RecordedDigest {
                        manager: row.get(0)?,
                        local_day: row.get(1)?,
                        created_at: row.get(2)?,
                        outbox_id: row.get(3)?,
                        summary: serde_json::from_str(&summary).unwrap_or_default(),
                    })
                })?
                .collect()
            })
            .at(&self.label)
    }

    /// The manager's tasks not done whose effective due time is before `until` (overdue first,
    /// as [`Store::tasks`] orders them), as listed at `now`.
    pub fn digest_tasks(
        &self,
        manager: &str,
        until: i64,
        now: i64,
    ) -> Result<Vec<Task>, StoreError> {
        let filter = crate::tasks::TaskFilter {
            assignee: Some(manager.to_owned()),
            ..crate::tasks::TaskFilter::default()
        };
        Ok(self
            .tasks(&filter, now)?
            .into_iter()
            .filter(|task| task.due < until)
            .collect())
    }

    /// The manager's customers in `tier` whose latest interaction up to `now` is older than
    /// `quiet_for` seconds (or who were never contacted), longest quiet first.
    pub fn uncontacted_customers(
        &self,
        manager: &str,
        tier: &str,
        quiet_for: i64,
        now: i64,
    ) -> Result<Vec<DigestCustomer>, StoreError> {
        self.conn
            .prepare_cached(
                "SELECT c.external_id, coalesce(c.name, ''), t.tier, \
                 (SELECT max(i.occurred_at) FROM interactions i \
                  WHERE i.customer_id = c.id AND i.occurred_at <= ?4) AS last \
                 FROM customers c JOIN customer_tiers t ON t.customer_id = c.id \
                 WHERE c.owner = ?1 AND t.tier = ?2 \
                 AND (last IS NULL OR last < ?4 - ?3) \
                 ORDER BY last IS NOT NULL, last, c.external_id",
            )
            .and_then(|mut stmt| {
                stmt.query_map(params![manager, tier, quiet_for, now], |row| {
                    Ok(DigestCustomer {
                        id: row.get(0)?,
                        name: row.get(1)?,
                        tier: row.get(2)?,
                        last_contact_at: row.get(3)?,
                    })
                })?
                .collect()
            })
            .at(&self.label)
    }

    /// Every task not done whose effective due time is before `overdue_before` and that was
    /// never escalated, as listed at `now` (most overdue first).
    pub fn escalation_candidates(
        &self,
        overdue_before: i64,
        now: i64,
    ) -> Result<Vec<Task>, StoreError> {
        let escalated: Vec<i64> = self
            .conn
            .prepare_cached("SELECT task_id FROM task_escalations ORDER BY task_id")
            .and_then(|mut stmt| stmt.query_map([], |row| row.get(0))?.collect())
            .at(&self.label)?;
        Ok(self
            .tasks(&crate::tasks::TaskFilter::default(), now)?
            .into_iter()
            .filter(|task| task.due < overdue_before && escalated.binary_search(&task.id).is_err())
            .collect())
    }

    /// Records the manager's digest of a local day, its e-mail and its escalations in ONE
    /// `IMMEDIATE` transaction (see the module's documentation); a second digest of the same manager
    /// and day writes nothing ([`DigestOutcome::AlreadyDecided`]).
    pub fn record_digest(
        &mut self,
        digest: &NewDigest<'_>,
        now: i64,
    ) -> Result<DigestOutcome, StoreError> {
        let path = self.label.as_path();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .at(path)?;
        let id: Option<i64> = tx
            .prepare_cached(
                "INSERT INTO manager_digests (manager, local_day, created_at, summary) \
                 VALUES (?1, ?2, ?3, ?4) ON CONFLICT (manager, local_day) DO NOTHING \
                 RETURNING id",
            )
            .and_then(|mut stmt| {
                stmt.query_row(
                    params![
                        digest.manager,
                        digest.local_day,
                        now,
                        digest.summary.to_string()
                    ],
                    |row| row.get(0),
                )
                .optional()
            })
            .at(path)?;
        let Some(id) = id else {
            return Ok(DigestOutcome::AlreadyDecided);
        };
        let mut outbox_id = None;
        if let Some((template, email)) = &digest.email {
            let row: i64 = tx
                .prepare_cached(
                    "INSERT INTO outbox (followup_id, customer_id, rule_id, template, \
                     recipient_kind, to_address, message_id, subject, body_text, body_html, \
                     state, due_at, attempts, created_at, updated_at) \
                     VALUES (NULL, NULL, ?1, ?2, 'owner', ?3, ?4, ?5, ?6, ?7, 'queued', ?8, 0, \
                     ?9, ?9) RETURNING id",
                )
                .and_then(|mut stmt| {
                    stmt.query_row(
                        params![
                            DIGEST_RULE,
                            template,
                            email.to_address.trim(),
                            email.message_id,
                            email.subject,
                            email.text,
                            email.html,
                            digest.due_at,
                            now
                        ],
                        |row| row.get(0),
                    )
                })
                .at(path)?;
            event(
                &tx,
                row,
                now,
                None,
                OutboxState::Queued,
                Some("manager digest"),
            )
            .at(path)?;
            tx.execute(
                "UPDATE manager_digests SET outbox_id = ?2 WHERE id = ?1",
                params![id, row],
            )
            .at(path)?;
            outbox_id = Some(row);
        }
        {
            let mut escalate = tx
                .prepare_cached(
                    "INSERT INTO task_escalations (task_id, escalated_to, at, digest_id) \
                     VALUES (?1, ?2, ?3, ?4) ON CONFLICT (task_id) DO NOTHING",
                )
                .at(path)?;
            for task in digest.escalated {
                escalate
                    .execute(params![task, digest.manager, now, id])
                    .at(path)?;
            }
        }
        tx.commit().at(path)?;
        Ok(DigestOutcome::Recorded { outbox_id })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn email(id: &str) -> NewEmail {
        NewEmail {
            message_id: format!("<{id}@example.com>"),
            to_address: "lena@example.com".into(),
            subject: "Your day".into(),
            text: "Overdue: 1\n".into(),
            html: None,
        }
    }

    #[test]
    fn a_digest_is_recorded_once_per_manager_and_local_day_with_its_email() {
        let mut store = Store::open_in_memory().unwrap();
        let digest = |id: &'static str, day: &'static str| NewDigest {
            manager: "lena",
            local_day: day,
            summary: serde_json::json!({ "overdue": 1 }),
            email: Some(("manager-digest", email(id))),
            due_at: 100,
            escalated: &[],
        };
        let first = store
            .record_digest(&digest("a", "2026-12-07"), 100)
            .unwrap();
        let DigestOutcome::Recorded {
            outbox_id: Some(outbox_id),
        } = first
        else {
            panic!("{first:?}")
        };
        // Asked again (another process, a restart): nothing is written, the e-mail once.
        assert_eq!(
            store
                .record_digest(&digest("b", "2026-12-07"), 200)
                .unwrap(),
            DigestOutcome::AlreadyDecided
        );
        assert!(store.digest_decided("lena", "2026-12-07").unwrap());
        assert!(!store.digest_decided("lena", "2026-12-08").unwrap());
        let emails = store.outbox(None, 10).unwrap();
        assert_eq!(emails.len(), 1);
        assert_eq!(emails[0].id, outbox_id);
        assert_eq!(emails[0].rule_id, DIGEST_RULE);
        assert_eq!(emails[0].customer_id, None);
        // The next day is another digest.
        assert!(matches!(
            store
                .record_digest(&digest("c", "2026-12-08"), 300)
                .unwrap(),
            DigestOutcome::Recorded { outbox_id: Some(_) }
        ));
        assert_eq!(store.last_digest_at("lena", 300).unwrap(), Some(100));
        assert_eq!(store.digests(0, 1_000).unwrap().len(), 2);
    }

    #[test]
    fn forgetting_a_customer_erases_their_name_from_the_digests() {
        let mut store = Store::open_in_memory().unwrap();
        let mut session = store
            .import(
                crate::ImportKind::Customers,
                crate::ImportOptions::default(),
            )
            .unwrap();
        let ada = crate::records::CustomerRecord {
            external_id: "c1".into(),
            name: Some("Ada Lovelace".into()),
            email: Some("ada@example.com".into()),
            ..crate::records::CustomerRecord::default()
        };
        session.customer(1, &ada).unwrap();
        session.commit(&crate::ImportAudit::default()).unwrap();
        let mut with_ada = email("a");
        with_ada.text = "Overdue:\n  - #1 Monthly review with Ada Lovelace\n".into();
        store
            .record_digest(
                &NewDigest {
                    manager: "lena",
                    local_day: "2026-12-07",
                    summary: serde_json::json!({}),
                    email: Some(("manager-digest", with_ada)),
                    due_at: 100,
                    escalated: &[],
                },
                100,
            )
            .unwrap();
        store.forget_customer("c1", "test", 200).unwrap();
        let digest = &store.outbox(None, 10).unwrap()[0];
        assert!(!digest.body_text.contains("Ada"), "{}", digest.body_text);
        assert!(
            digest.body_text.contains("Monthly review with"),
            "{}",
            digest.body_text
        );
    }
}
