//! The reads behind `tiercare report`: tiers as of an assessment, tier moves
//! per assessment, follow-up work per tier and per owner, e-mail outcomes per
//! rule and the lowest tier's care programme.
//!
//! Every reader takes the time the report is for (`at`, unix seconds UTC)
//! and counts only what had happened by then, so a report for a past date
//! shows that date's figures. Tiers come from the stored assessment (the
//! current tier rows for the latest assessment, the tier history for an
//! earlier one): nothing is re-decided here.

use rusqlite::{Connection, Row, params};

use crate::counts::count;
use crate::db::Store;
use crate::error::{AtPath, StoreError};
use crate::outbox_gate::{STALE_PREFIX, UNTRUE_PREFIX};
use crate::tiers::AssessmentRow;
use tiercare_types::Channel;

/// Tier moves of one assessment: how many customers went from one tier to
/// another.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TierMoveCount {
    /// The assessment that made the moves.
    pub assessment_id: i64,
    /// The tier before; `None` for a first assignment.
    pub from_tier: Option<String>,
    /// The tier after.
    pub to_tier: String,
    /// How many customers moved so.
    pub customers: u64,
}

/// Follow-up work about the customers of one tier, as of the report time.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct TierWork {
    /// The customers' tier as of the assessment; `None` for customers
    /// without a tier.
    pub tier: Option<String>,
    /// Follow-ups planned for later than the report time.
    pub upcoming: u64,
    /// Follow-ups planned for the report time or earlier and not carried
    /// out yet (e-mails waiting for the outbox).
    pub due: u64,
    /// Follow-ups carried out.
    pub done: u64,
    /// Follow-ups skipped or cancelled (a cap, no consent, no assignee, ...).
    pub skipped: u64,
    /// Managers' tasks about these customers not done and not yet due.
    pub tasks_open: u64,
    /// Managers' tasks about these customers past their due time and not done.
    pub tasks_overdue: u64,
    /// Managers' tasks about these customers done by the report time.
    pub tasks_done: u64,
}

/// One manager's (or other assignee's) tasks, as of the report time.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct OwnerWork {
    /// The assignee: a manager's external id.
    pub assignee: String,
    /// Tasks not done and not yet due.
    pub open: u64,
    /// Tasks past their (snoozed) due time and not done.
    pub overdue: u64,
    /// Tasks done by the report time.
    pub done: u64,
}

/// E-mails of one follow-up rule by outcome, as of the report time.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RuleEmails {
    /// The follow-up rule's id.
    pub rule_id: String,
    /// Accepted by the mail server.
    pub sent: u64,
    /// A transient failure, to be retried.
    pub deferred: u64,
    /// A permanent failure, or out of attempts.
    pub failed: u64,
    /// Not sent: the address is suppressed or consent was withdrawn.
    pub suppressed: u64,
    /// Handed over, outcome unknown (a timeout or a crash mid-send).
    pub unknown: u64,
    /// Waiting to be sent (queued or being sent).
    pub pending: u64,
    /// Called off by hand, or by the delivery gate.
    pub cancelled: u64,
    /// Of the cancelled, cancelled by the delivery gate as stale (past the rule's `max_delay`).
    pub stale: u64,
    /// Of the cancelled, cancelled by the delivery gate because the follow-up no longer held
    /// when the e-mail was to be sent (a new order after a win-back was queued, ...).
    pub no_longer_true: u64,
}

impl RuleEmails {
    /// The counts per outcome, in the order the report shows them: sent, deferred, failed,
    /// suppressed, unknown, pending (waiting), cancelled.
    pub fn by_outcome(&self) -> [u64; 7] {
        [
            self.sent,
            self.deferred,
            self.failed,
            self.suppressed,
            self.unknown,
            self.pending,
            self.cancelled,
        ]
    }
}

/// The lowest tier's care programme: its customers who received care
/// e-mails against those who did not, and how many of each moved up.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CareProgramme {
    /// The tier the programme serves (the lowest).
    pub tier: String,
    /// Customers who were ever in the tier and were sent at least one
    /// e-mail (the outbox says `sent`) after first entering it.
    pub emailed: u64,
    /// Of those, how many later moved to a higher tier.
    pub emailed_moved_up: u64,
    /// Customers who were ever in the tier and got no e-mail after entering it.
    pub not_emailed: u64,
    /// Of those, how many later moved to a higher tier.
    pub not_emailed_moved_up: u64,
}

impl Store {
    /// The assessments made for times up to `at`, in the order they were
    /// recorded.
    pub fn assessments_until(&self, at: i64) -> Result<Vec<AssessmentRow>, StoreError> {
        self.conn
            .prepare_cached(
                "SELECT id, at, ruleset_version, started_at, finished_at, customers, changed, \
                 rule_errors FROM assessments WHERE at <= ?1 ORDER BY id",
            )
            .and_then(|mut stmt| stmt.query_map([at], assessment_row)?.collect())
            .at(&self.label)
    }

    /// Calls `visit(customer rowid, tier)` for every customer with a tier as
    /// of assessment `assessment_id`, in rowid order: the latest tier
    /// history row of each customer up to that assessment.
    pub fn for_each_tier_as_of(
        &self,
        assessment_id: i64,
        visit: &mut dyn FnMut(i64, &str),
    ) -> Result<(), StoreError> {
        let sql = format!(
            "SELECT customer_id, tier FROM ({}) ORDER BY customer_id",
            tiers_as_of_sql(&self.conn, assessment_id).at(&self.label)?
        );
        let mut stmt = self.conn.prepare(&sql).at(&self.label)?;
        let mut rows = stmt.query([assessment_id]).at(&self.label)?;
        while let Some(row) = rows.next().at(&self.label)? {
            let rowid: i64 = row.get(0).at(&self.label)?;
            let tier = row.get_ref(1).at(&self.label)?;
            visit(rowid, tier.as_str().unwrap_or_default());
        }
        Ok(())
    }

    /// Tier moves per assessment and pair of tiers, for every assessment up
    /// to and including `assessment_id`, in assessment order.
    pub fn tier_moves_until(&self, assessment_id: i64) -> Result<Vec<TierMoveCount>, StoreError> {
        self.conn
            .prepare_cached(
                "SELECT assessment_id, from_tier, to_tier, count(*) FROM tier_history \
                 WHERE assessment_id <= ?1 GROUP BY assessment_id, from_tier, to_tier \
                 ORDER BY assessment_id, from_tier, to_tier",
            )
            .and_then(|mut stmt| {
                stmt.query_map([assessment_id], |row| {
                    Ok(TierMoveCount {
                        assessment_id: row.get(0)?,
                        from_tier: row.get(1)?,
                        to_tier: row.get(2)?,
                        customers: count(row, 3)?,
                    })
                })?
                .collect()
            })
            .at(&self.label)
    }

    /// Follow-up work per tier (as of assessment `assessment_id`) at `at`:
    /// the ledger's follow-ups decided by `at` and the managers' tasks
    /// created by `at`, in tier order with customers without a tier
    /// (`None`) last.
    pub fn followup_work_by_tier(
        &self,
        assessment_id: i64,
        at: i64,
    ) -> Result<Vec<TierWork>, StoreError> {
        let tiers = tiers_as_of_sql(&self.conn, assessment_id).at(&self.label)?;
        // A follow-up whose status was set after `at` was still planned at `at`.
        let followups = format!(
            "WITH tiers AS ({tiers}), f AS (SELECT customer_id, scheduled_at, \
               CASE WHEN status_at <= ?2 THEN status ELSE 'planned' END AS status \
               FROM followups WHERE decided_at <= ?2) \
             SELECT t.tier, \
               count(*) FILTER (WHERE f.status = 'planned' AND f.scheduled_at > ?2), \
               count(*) FILTER (WHERE f.status = 'planned' AND f.scheduled_at <= ?2), \
               count(*) FILTER (WHERE f.status = 'done'), \
               count(*) FILTER (WHERE f.status IN ('skipped', 'cancelled')) \
             FROM f LEFT JOIN tiers t ON t.customer_id = f.customer_id GROUP BY t.tier"
        );
        // A task is overdue past its effective due time (a snooze moves it);
        // one done after `at` was not done yet at `at`.
        let tasks = format!(
            "WITH tiers AS ({tiers}), k AS (SELECT customer_id, \
               (status = 'done' AND done_at <= ?2) AS finished, \
               CASE WHEN status = 'snoozed' THEN max(due_at, snoozed_until) ELSE due_at END AS due FROM tasks WHERE created_at <= ?2) \
             SELECT t.tier, \
               count(*) FILTER (WHERE NOT k.finished AND k.due >= ?2), \
               count(*) FILTER (WHERE NOT k.finished AND k.due < ?2), \
               count(*) FILTER (WHERE k.finished) \
             FROM k LEFT JOIN tiers t ON t.customer_id = k.customer_id GROUP BY t.tier"
        );
        let mut work: Vec<TierWork> = Vec::new();
        let mut rows_f = Vec::new();
        let mut rows_t = Vec::new();
        (|| -> rusqlite::Result<()> {
            let mut stmt = self.conn.prepare(&followups)?;
            let mut rows = stmt.query(params![assessment_id, at])?;
            while let Some(row) = rows.next()? {
                let tier: Option<String> = row.get(0)?;
                rows_f.push((
                    tier,
                    [
                        count(row, 1)?,
                        count(row, 2)?,
                        count(row, 3)?,
                        count(row, 4)?,
                    ],
                ));
            }
            let mut stmt = self.conn.prepare(&tasks)?;
            let mut rows = stmt.query(params![assessment_id, at])?;
            while let Some(row) = rows.next()? {
                let tier: Option<String> = row.get(0)?;
                rows_t.push((tier, [count(row, 1)?, count(row, 2)?, count(row, 3)?]));
            }
            Ok(())
        })()
        .at(&self.label)?;
        for (tier, [upcoming, due, done, skipped]) in rows_f {
            let index = work_entry(&mut work, tier);
            let w = &mut work[index];
            (w.upcoming, w.due, w.done, w.skipped) = (upcoming, due, done, skipped);
        }
        for (tier, [open, overdue, done]) in rows_t {
            let index = work_entry(&mut work, tier);
            let w = &mut work[index];
            (w.tasks_open, w.tasks_overdue, w.tasks_done) = (open, overdue, done);
        }
        work.sort_by(|a, b| (a.tier.is_none(), &a.tier).cmp(&(b.tier.is_none(), &b.tier)));
        Ok(work)
    }

    /// Managers' tasks per assignee at `at` (tasks created by `at`), by
    /// assignee.
    pub fn task_work_by_assignee(&self, at: i64) -> Result<Vec<OwnerWork>, StoreError> {
        self.conn
            .prepare_cached(
                "WITH k AS (SELECT assignee, (status = 'done' AND done_at <= ?1) AS finished, \
                   CASE WHEN status = 'snoozed' THEN max(due_at, snoozed_until) ELSE due_at END AS due FROM tasks WHERE created_at <= ?1) \
                 SELECT assignee, count(*) FILTER (WHERE NOT finished AND due >= ?1), \
                   count(*) FILTER (WHERE NOT finished AND due < ?1), \
                   count(*) FILTER (WHERE finished) \
                 FROM k GROUP BY assignee ORDER BY assignee",
            )
            .and_then(|mut stmt| {
                stmt.query_map([at], |row| {
                    Ok(OwnerWork {
                        assignee: row.get(0)?,
                        open: count(row, 1)?,
                        overdue: count(row, 2)?,
                        done: count(row, 3)?,
                    })
                })?
                .collect()
            })
            .at(&self.label)
    }

    /// E-mails per follow-up rule by outcome: the outbox rows created by
    /// `at`, each in the state it was in at `at` (its latest event by
    /// then). SMS are not e-mails: [`Store::sms_outcomes`] counts them.
    pub fn email_outcomes(&self, at: i64) -> Result<Vec<RuleEmails>, StoreError> {
        self.outcomes(at, Channel::Email)
    }

    /// SMS per follow-up rule by outcome, as [`Store::email_outcomes`] counts e-mails.
    pub fn sms_outcomes(&self, at: i64) -> Result<Vec<RuleEmails>, StoreError> {
        self.outcomes(at, Channel::Sms)
    }

    fn outcomes(&self, at: i64, channel: Channel) -> Result<Vec<RuleEmails>, StoreError> {
        self.conn
            .prepare_cached(
                "WITH s AS (SELECT o.rule_id, coalesce((SELECT e.to_state FROM outbox_events e \
                     WHERE e.outbox_id = o.id AND e.at <= ?1 ORDER BY e.id DESC LIMIT 1), \
                     'queued') AS state, \
                   (SELECT e.detail FROM outbox_events e \
                     WHERE e.outbox_id = o.id AND e.at <= ?1 ORDER BY e.id DESC LIMIT 1) AS detail \
                   FROM outbox o WHERE o.created_at <= ?1 AND o.channel = ?4) \
                 SELECT rule_id, \
                   count(*) FILTER (WHERE state = 'sent'), \
                   count(*) FILTER (WHERE state = 'deferred'), \
                   count(*) FILTER (WHERE state = 'failed'), \
                   count(*) FILTER (WHERE state = 'suppressed'), \
                   count(*) FILTER (WHERE state = 'unknown'), \
                   count(*) FILTER (WHERE state IN ('queued', 'claimed')), \
                   count(*) FILTER (WHERE state = 'cancelled'), \
                   count(*) FILTER (WHERE state = 'cancelled' AND detail LIKE ?2 || '%'), \
                   count(*) FILTER (WHERE state = 'cancelled' AND detail LIKE ?3 || '%') \
                 FROM s GROUP BY rule_id ORDER BY rule_id",
            )
            .and_then(|mut stmt| {
                let channel = channel.as_str();
                stmt.query_map(params![at, STALE_PREFIX, UNTRUE_PREFIX, channel], |row| {
                    Ok(RuleEmails {
                        rule_id: row.get(0)?,
                        sent: count(row, 1)?,
                        deferred: count(row, 2)?,
                        failed: count(row, 3)?,
                        suppressed: count(row, 4)?,
                        unknown: count(row, 5)?,
                        pending: count(row, 6)?,
                        cancelled: count(row, 7)?,
                        stale: count(row, 8)?,
                        no_longer_true: count(row, 9)?,
                    })
                })?
                .collect()
            })
            .at(&self.label)
    }

    /// How many addresses were unsubscribed by `at`.
    pub fn unsubscribes(&self, at: i64) -> Result<u64, StoreError> {
        self.conn
            .query_row(
                "SELECT count(*) FROM suppressions WHERE reason = 'unsubscribe' AND created_at <= ?1",
                [at],
                |row| count(row, 0),
            )
            .at(&self.label)
    }

    /// The care programme of tier `tier` up to assessment `assessment_id`
    /// and time `at`: every customer who was ever in `tier`, split by
    /// whether they got an e-mail (sent by `at`) after first entering it,
    /// and of each group how many later left `tier` for one of `higher`
    /// (the tiers above it).
    pub fn care_programme(
        &self,
        tier: &str,
        higher: &[String],
        assessment_id: i64,
        at: i64,
    ) -> Result<CareProgramme, StoreError> {
        let higher_json = serde_json::to_string(higher).unwrap_or_else(|_| "[]".to_owned());
        let sql = "WITH c AS (SELECT customer_id, min(at) AS entered FROM tier_history \
                        WHERE to_tier = ?1 AND assessment_id <= ?2 GROUP BY customer_id), \
             g AS (SELECT EXISTS (SELECT 1 FROM outbox o WHERE o.customer_id = c.customer_id \
                       AND o.recipient_kind = 'customer' AND o.state = 'sent' \
                       AND o.sent_at >= c.entered AND o.sent_at <= ?3) AS emailed, \
                     EXISTS (SELECT 1 FROM tier_history h WHERE h.customer_id = c.customer_id \
                       AND h.from_tier = ?1 AND h.at >= c.entered AND h.assessment_id <= ?2 \
                       AND h.to_tier IN (SELECT value FROM json_each(?4))) AS moved_up \
                   FROM c) \
             SELECT count(*) FILTER (WHERE emailed), count(*) FILTER (WHERE emailed AND moved_up), \
               count(*) FILTER (WHERE NOT emailed), count(*) FILTER (WHERE NOT emailed AND moved_up) \
             FROM g";
        let (emailed, emailed_moved_up, not_emailed, not_emailed_moved_up) = self
            .conn
            .query_row(sql, params![tier, assessment_id, at, higher_json], |row| {
                Ok((
                    count(row, 0)?,
                    count(row, 1)?,
                    count(row, 2)?,
                    count(row, 3)?,
                ))
            })
            .at(&self.label)?;
        Ok(CareProgramme {
            tier: tier.to_owned(),
            emailed,
            emailed_moved_up,
            not_emailed,
            not_emailed_moved_up,
        })
    }
}

/// A query of `(customer_id, tier)` as of the assessment bound to `?1`: the
/// current tier rows when it is the latest assessment (they are exactly
/// that), else each customer's latest tier history row up to it.
pub(crate) fn tiers_as_of_sql(
    conn: &Connection,
    assessment_id: i64,
) -> rusqlite::Result<&'static str> {
    let latest: Option<i64> =
        conn.query_row("SELECT max(id) FROM assessments", [], |row| row.get(0))?;
    Ok(if latest == Some(assessment_id) {
        "SELECT customer_id, tier FROM customer_tiers WHERE ?1 IS NOT NULL"
    } else {
        "SELECT customer_id, to_tier AS tier FROM (SELECT customer_id, to_tier, \
           row_number() OVER (PARTITION BY customer_id ORDER BY id DESC) AS n \
           FROM tier_history WHERE assessment_id <= ?1) WHERE n = 1"
    })
}

/// The index of `tier`'s row in `work`, added when missing.
fn work_entry(work: &mut Vec<TierWork>, tier: Option<String>) -> usize {
    if let Some(index) = work.iter().position(|w| w.tier == tier) {
        return index;
    }
    work.push(TierWork {
        tier,
        ..TierWork::default()
    });
    work.len() - 1
}

fn assessment_row(row: &Row<'_>) -> rusqlite::Result<AssessmentRow> {
    Ok(AssessmentRow {
        id: row.get(0)?,
        at: row.get(1)?,
        ruleset_version: row.get(2)?,
        started_at: row.get(3)?,
        finished_at: row.get(4)?,
        customers: count(row, 5)?,
        changed: count(row, 6)?,
        rule_errors: count(row, 7)?,
    })
}
