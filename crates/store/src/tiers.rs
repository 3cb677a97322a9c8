//! Assessments: each customer's current tier and segments, written in one
//! transaction per assessment, and the history of their changes.
//!
//! [`Store::record_assessment`] writes what the engine decided; the readers
//! ([`Store::current_tier`], [`Store::tier_history`], [`Store::segments_of`],
//! [`Store::segment_history`], [`Store::tier_counts`],
//! [`Store::last_assessment`]) serve `explain`, reports and the next
//! assessment's `previous_tier`, `days_in_tier` and `pending_downgrade`
//! features.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use rusqlite::types::Type;
use rusqlite::{
    Connection, OptionalExtension, Row, Statement, Transaction, TransactionBehavior, params,
};
use serde_json::{Map, Value};

use crate::batch::{Cell, Names, RowBatch};
use crate::db::Store;
use crate::error::{AtPath, StoreError};
use crate::pragma::{PragmaOff, checks_off, foreign_keys_off};
use crate::stored::require_customer;

/// What the engine decided about one customer in an assessment.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct TierDecision {
    /// The customer's rowid ([`crate::CustomerFeatures::customer_rowid`]).
    pub customer_rowid: i64,
    /// The tier the customer is in after this assessment (not empty).
    pub tier: String,
    /// A one-line summary of why, kept in the tier history when the tier
    /// changes.
    pub reason: String,
    /// The engine's full explanation, stored with the current tier.
    pub reasons: Value,
    /// Named scores the rules computed, stored with the current tier.
    pub scores: Map<String, Value>,
    /// The tier the rules asked for but hysteresis held back, if any.
    pub pending_tier: Option<String>,
    /// How many consecutive assessments asked for `pending_tier`.
    pub pending_count: u32,
    /// When the pending downgrade was first asked for (an assessment's `at`), if one is.
    pub pending_since: Option<i64>,
    /// Whether the tier comes from a manual pin.
    pub pinned: bool,
    /// The customer's segment in each segment set the rules decided about:
    /// `(set, Some(segment))`, or `(set, None)` when the customer is in no
    /// segment of that set. Sets not listed are left as they are stored.
    pub segments: Vec<(String, Option<String>)>,
}

/// JSON text made by `serde_json`, so valid by construction: an assessment session stores it
/// without SQLite checking it again.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JsonText(String);

impl JsonText {
    /// `value` serialised.
    ///
    /// # Errors
    /// When `value` cannot be serialised (a map with keys that are not strings).
    pub fn of<T: serde::Serialize + ?Sized>(value: &T) -> Result<JsonText, serde_json::Error> {
        serde_json::to_string(value).map(JsonText)
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A [`TierDecision`] with its scores and reasons already serialised as JSON text: what
/// [`AssessmentSession::record_encoded`] takes, so the serialising (and the freeing of the
/// JSON values) can happen on the thread that evaluates rather than the one that writes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EncodedDecision {
    /// The customer's rowid.
    pub customer_rowid: i64,
    /// The tier (not empty).
    pub tier: String,
    /// The one-line summary kept in the tier history.
    pub reason: String,
    /// [`TierDecision::reasons`] as JSON text.
    pub reasons_json: JsonText,
    /// [`TierDecision::scores`] as a JSON object.
    pub scores_json: JsonText,
    /// The tier hysteresis held back, if any.
    pub pending_tier: Option<String>,
    /// How many consecutive assessments asked for `pending_tier`.
    pub pending_count: u32,
    /// As [`TierDecision::pending_since`].
    pub pending_since: Option<i64>,
    /// Whether the tier comes from a manual pin.
    pub pinned: bool,
    /// As [`TierDecision::segments`].
    pub segments: Vec<(String, Option<String>)>,
}

impl From<&TierDecision> for EncodedDecision {
    fn from(decision: &TierDecision) -> EncodedDecision {
        EncodedDecision {
            customer_rowid: decision.customer_rowid,
            tier: decision.tier.clone(),
            reason: decision.reason.clone(),
            reasons_json: JsonText::of(&decision.reasons).expect("a JSON value serialises"),
            scores_json: JsonText::of(&decision.scores).expect("a JSON map serialises"),
            pending_tier: decision.pending_tier.clone(),
            pending_count: decision.pending_count,
            pending_since: decision.pending_since,
            pinned: decision.pinned,
            segments: decision.segments.clone(),
        }
    }
}

/// The assessment as a whole, for its `assessments` row.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct AssessmentHeader {
    /// The time the features were computed for, unix seconds UTC; tier and
    /// segment changes are dated with it.
    pub at: i64,
    /// The version (such as a hash) of the rule set that decided.
    pub ruleset_version: String,
    /// When the assessment started, unix seconds UTC.
    pub started_at: i64,
    /// When the assessment finished, unix seconds UTC.
    pub finished_at: i64,
    /// How many rule evaluations failed.
    pub rule_errors: u64,
}

/// What [`Store::record_assessment`] wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct AssessmentOutcome {
    /// The new assessment's id.
    pub assessment_id: i64,
    /// Decisions recorded.
    pub customers: u64,
    /// Customers whose tier changed, first assignments included (one
    /// tier history row each).
    pub changed: u64,
}

/// A stored assessment: one `assessments` row.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AssessmentRow {
    /// The assessment's id.
    pub id: i64,
    /// The time the features were computed for, unix seconds UTC.
    pub at: i64,
    /// The version of the rule set that decided.
    pub ruleset_version: String,
    /// When the assessment started, unix seconds UTC.
    pub started_at: i64,
    /// When the assessment finished, unix seconds UTC.
    pub finished_at: i64,
    /// Decisions recorded.
    pub customers: u64,
    /// Customers whose tier changed, first assignments included.
    pub changed: u64,
    /// How many rule evaluations failed.
    pub rule_errors: u64,
}

/// One change of a customer's tier.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TierChange {
    /// When it happened: the assessment's `at`.
    pub at: i64,
    /// The assessment that made it.
    pub assessment_id: i64,
    /// The tier before; `None` for a first assignment.
    pub from_tier: Option<String>,
    /// The tier after.
    pub to_tier: String,
    /// The one-line reason.
    pub reason: String,
}

/// A customer's current tier as stored.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CurrentTier {
    /// The tier.
    pub tier: String,
    /// When the customer entered it (the `at` of the assessment that
    /// changed it).
    pub since: i64,
    /// The latest assessment that changed the customer's row (tier, pending downgrade, pin,
    /// scores or reasons); an assessment that decided exactly the same leaves the row alone.
    pub assessment_id: i64,
    /// The tier the rules asked for but hysteresis held back, if any.
    pub pending_tier: Option<String>,
    /// How many consecutive assessments asked for `pending_tier`.
    pub pending_count: u32,
    /// When the pending downgrade was first asked for (an assessment's `at`), if one is and
    /// it was recorded (migration 10).
    pub pending_since: Option<i64>,
    /// Whether the tier comes from a manual pin.
    pub pinned: bool,
    /// The latest assessment's scores.
    pub scores: Map<String, Value>,
    /// The latest assessment's full explanation.
    pub reasons: Value,
}

/// A customer's current segment in one segment set.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CurrentSegment {
    /// The segment set.
    pub segment_set: String,
    /// The segment.
    pub segment: String,
    /// When the customer entered it.
    pub since: i64,
    /// The assessment that put the customer in it.
    pub assessment_id: i64,
}

/// One change of a customer's segment in a segment set.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SegmentChange {
    /// When it happened: the assessment's `at`.
    pub at: i64,
    /// The assessment that made it.
    pub assessment_id: i64,
    /// The segment set.
    pub segment_set: String,
    /// The segment before; `None` when the customer entered the set.
    pub from_segment: Option<String>,
    /// The segment after; `None` when the customer left every segment of
    /// the set.
    pub to_segment: Option<String>,
}

impl Store {
    /// Writes one assessment in ONE `IMMEDIATE` transaction: the
    /// `assessments` row, `customer_tiers` upserts, a `tier_history` row for
    /// every customer whose tier changed (`from_tier` `NULL` for a first
    /// assignment), `customer_segments` upserts and `segment_history` rows
    /// for segment changes. `since` only moves when the tier (segment)
    /// changes; changes are dated with `header.at`.
    ///
    /// Give one decision per customer; customers without a decision keep
    /// what is stored. A decision for a customer that does not exist (any
    /// more) fails the whole assessment with [`StoreError::CustomerGone`],
    /// and nothing is written. To write decisions as they are made instead
    /// of holding them all, use [`Store::begin_assessment`].
    pub fn record_assessment(
        &mut self,
        header: &AssessmentHeader,
        decisions: &[TierDecision],
    ) -> Result<AssessmentOutcome, StoreError> {
        let mut session =
            self.begin_assessment(header.at, &header.ruleset_version, header.started_at)?;
        for decision in decisions {
            session.record(decision)?;
        }
        session.finish(header.finished_at, header.rule_errors)
    }

    /// Starts recording an assessment at `at` (the time the features were
    /// computed for) in one `IMMEDIATE` transaction, for decisions written
    /// one at a time with [`AssessmentSession::record`] and committed by
    /// [`AssessmentSession::finish`]; dropping the session writes nothing.
    ///
    /// The session holds the database's write lock until it ends. To stream
    /// decisions while reading features, read them through a second
    /// [`Store`] on the same file: its read transaction keeps seeing the
    /// tiers as they were before the assessment.
    pub fn begin_assessment(
        &mut self,
        at: i64,
        ruleset_version: &str,
        started_at: i64,
    ) -> Result<AssessmentSession<'_>, StoreError> {
        let conn = &self.conn;
        let path = self.label.as_path();
        // Off before the transaction begins (SQLite ignores the pragma inside one), back on
        // when the session ends; the writer checks customers itself.
        let foreign_keys_off = foreign_keys_off(conn).at(path)?;
        // The session's values cannot break the schema's CHECKs (see `DecisionWriter::write`),
        // and json_valid() on two JSON columns per row was a twentieth of its writing.
        let checks_off = checks_off(conn).at(path)?;
        let tx = Transaction::new_unchecked(conn, TransactionBehavior::Immediate).at(path)?;
        tx.execute(
            "INSERT INTO assessments (at, ruleset_version, started_at, finished_at, customers, \
             changed, rule_errors) VALUES (?1, ?2, ?3, ?3, 0, 0, 0)",
            params![at, ruleset_version, started_at],
        )
        .at(path)?;
        let assessment_id = tx.last_insert_rowid();
        let writer = DecisionWriter::new(conn, assessment_id, at).at(path)?;
        Ok(AssessmentSession {
            writer,
            path,
            customers: 0,
            changed: 0,
            failed: false,
            tx,
            checks_off,
            foreign_keys_off,
        })
    }

    /// The tier changes of the customer with `external_id`, newest first;
    /// [`StoreError::UnknownCustomer`] when there is no such customer.
    pub fn tier_history(&self, external_id: &str) -> Result<Vec<TierChange>, StoreError> {
        self.rows_of_customer(
            external_id,
            "SELECT at, assessment_id, from_tier, to_tier, reason FROM tier_history \
             WHERE customer_id = ?1 ORDER BY at DESC, id DESC",
            |row| {
                Ok(TierChange {
                    at: row.get(0)?,
                    assessment_id: row.get(1)?,
                    from_tier: row.get(2)?,
                    to_tier: row.get(3)?,
                    reason: row.get(4)?,
                })
            },
        )
    }

    /// The current tier of the customer with `external_id`; `None` when the
    /// customer was never assessed, [`StoreError::UnknownCustomer`] when
    /// there is no such customer.
    pub fn current_tier(&self, external_id: &str) -> Result<Option<CurrentTier>, StoreError> {
        let path = self.label.as_path();
        let rowid = require_customer(&self.conn, path, external_id)?;
        self.conn
            .prepare_cached(
                "SELECT tier, since, assessment_id, pending_tier, pending_count, pinned, scores, \
                 reasons, pending_since FROM customer_tiers WHERE customer_id = ?1",
            )
            .and_then(|mut stmt| stmt.query_row([rowid], current_tier_from_row).optional())
            .at(path)
    }

    /// The current segments of the customer with `external_id`, by segment
    /// set; [`StoreError::UnknownCustomer`] when there is no such customer.
    pub fn segments_of(&self, external_id: &str) -> Result<Vec<CurrentSegment>, StoreError> {
        self.rows_of_customer(
            external_id,
            "SELECT segment_set, segment, since, assessment_id FROM customer_segments \
             WHERE customer_id = ?1 ORDER BY segment_set",
            |row| {
                Ok(CurrentSegment {
                    segment_set: row.get(0)?,
                    segment: row.get(1)?,
                    since: row.get(2)?,
                    assessment_id: row.get(3)?,
                })
            },
        )
    }

    /// The segment changes of the customer with `external_id`, newest
    /// first; [`StoreError::UnknownCustomer`] when there is no such
    /// customer.
    pub fn segment_history(&self, external_id: &str) -> Result<Vec<SegmentChange>, StoreError> {
        self.rows_of_customer(
            external_id,
            "SELECT at, assessment_id, segment_set, from_segment, to_segment \
             FROM segment_history WHERE customer_id = ?1 ORDER BY at DESC, id DESC",
            |row| {
                Ok(SegmentChange {
                    at: row.get(0)?,
                    assessment_id: row.get(1)?,
                    segment_set: row.get(2)?,
                    from_segment: row.get(3)?,
                    to_segment: row.get(4)?,
                })
            },
        )
    }

    /// How many customers each tier holds, by tier name; tiers without
    /// customers are not listed.
    pub fn tier_counts(&self) -> Result<Vec<(String, u64)>, StoreError> {
        self.conn
            .prepare_cached("SELECT tier, count(*) FROM customer_tiers GROUP BY tier ORDER BY tier")
            .and_then(|mut stmt| {
                stmt.query_map([], |row| {
                    Ok((row.get(0)?, row.get::<_, i64>(1)?.unsigned_abs()))
                })?
                .collect()
            })
            .at(&self.label)
    }

    /// The latest recorded assessment, if any.
    pub fn last_assessment(&self) -> Result<Option<AssessmentRow>, StoreError> {
        self.conn
            .prepare_cached(
                "SELECT id, at, ruleset_version, started_at, finished_at, customers, changed, \
                 rule_errors FROM assessments ORDER BY id DESC LIMIT 1",
            )
            .and_then(|mut stmt| {
                stmt.query_row([], |row| {
                    let count = |index| row.get::<_, i64>(index).map(i64::unsigned_abs);
                    Ok(AssessmentRow {
                        id: row.get(0)?,
                        at: row.get(1)?,
                        ruleset_version: row.get(2)?,
                        started_at: row.get(3)?,
                        finished_at: row.get(4)?,
                        customers: count(5)?,
                        changed: count(6)?,
                        rule_errors: count(7)?,
                    })
                })
                .optional()
            })
            .at(&self.label)
    }
}

/// An assessment being recorded: one `IMMEDIATE` transaction, begun by
/// [`Store::begin_assessment`].
///
/// [`record`](AssessmentSession::record) writes one decision;
/// [`finish`](AssessmentSession::finish) completes the `assessments` row and
/// commits. Dropping the session, or any error, writes nothing at all.
pub struct AssessmentSession<'s> {
    // Declared before `tx`, so the statements are finalised before the
    // transaction rolls back on drop.
    writer: DecisionWriter<'s>,
    path: &'s Path,
    customers: u64,
    changed: u64,
    /// A decision failed half-way: nothing more may be written or committed.
    failed: bool,
    tx: Transaction<'s>,
    // Declared after `writer` and `tx`: the checks come back once the statements prepared
    // without them are gone, and enforcement once the transaction has ended.
    checks_off: PragmaOff<'s>,
    foreign_keys_off: PragmaOff<'s>,
}

impl fmt::Debug for AssessmentSession<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AssessmentSession")
            .field("path", &self.path)
            .field("assessment_id", &self.writer.assessment_id)
            .field("at", &self.writer.at)
            .field("customers", &self.customers)
            .field("changed", &self.changed)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

impl AssessmentSession<'_> {
    /// The id the assessment will have.
    pub fn assessment_id(&self) -> i64 {
        self.writer.assessment_id
    }

    /// Runs one statement in the assessment's transaction (for rows that belong with it).
    pub(crate) fn execute(
        &mut self,
        sql: &str,
        params: impl rusqlite::Params,
    ) -> Result<(), StoreError> {
        self.tx.execute(sql, params).at(self.path).map(|_| ())
    }

    /// Writes one decision (one per customer); returns whether the
    /// customer's tier changed (a first assignment counts as a change).
    ///
    /// A decision for a customer that does not exist is
    /// [`StoreError::CustomerGone`]. After any error the session is spoiled:
    /// every later call fails with [`StoreError::AssessmentAborted`], and
    /// nothing is written.
    pub fn record(&mut self, decision: &TierDecision) -> Result<bool, StoreError> {
        self.record_encoded(EncodedDecision::from(decision))
    }

    /// [`record`](AssessmentSession::record) for a decision whose JSON is already serialised.
    pub fn record_encoded(&mut self, decision: EncodedDecision) -> Result<bool, StoreError> {
        if self.failed {
            return Err(StoreError::AssessmentAborted {
                path: self.path.to_path_buf(),
            });
        }
        if !self.writer.has_customer(decision.customer_rowid) {
            self.failed = true;
            return Err(StoreError::CustomerGone {
                rowid: decision.customer_rowid,
            });
        }
        match self.writer.write(decision) {
            Ok(changed) => {
                self.customers += 1;
                self.changed += u64::from(changed);
                Ok(changed)
            }
            Err(err) => {
                self.failed = true;
                Err(StoreError::at(self.path, err))
            }
        }
    }

    /// Completes the `assessments` row (finished at `finished_at`, with
    /// `rule_errors` failed rule evaluations and the counts of what was
    /// recorded) and commits everything.
    pub fn finish(
        self,
        finished_at: i64,
        rule_errors: u64,
    ) -> Result<AssessmentOutcome, StoreError> {
        let AssessmentSession {
            mut writer,
            path,
            customers,
            changed,
            failed,
            tx,
            checks_off,
            foreign_keys_off,
        } = self;
        let assessment_id = writer.assessment_id;
        // Everything that touches the transaction happens in here, so it has ended (committed,
        // or rolled back on error) before enforcement is switched back on.
        let outcome = move || -> Result<AssessmentOutcome, StoreError> {
            if failed {
                return Err(StoreError::AssessmentAborted {
                    path: path.to_path_buf(),
                });
            }
            writer.flush().at(path)?;
            drop(writer);
            crate::webhooks::tier_changes(&tx, assessment_id, finished_at).at(path)?;
            tx.execute(
                "UPDATE assessments SET finished_at = ?2, customers = ?3, changed = ?4, \
                 rule_errors = ?5 WHERE id = ?1",
                params![
                    assessment_id,
                    finished_at,
                    sql_count(customers),
                    sql_count(changed),
                    sql_count(rule_errors),
                ],
            )
            .at(path)?;
            tx.commit().at(path)?;
            Ok(AssessmentOutcome {
                assessment_id,
                customers,
                changed,
            })
        }();
        drop(checks_off);
        drop(foreign_keys_off);
        outcome
    }
}

/// Writes decisions of one assessment.
///
/// The session runs with foreign-key enforcement off (SQLite's check cost a B-tree descent per
/// row into `customers` and another into `assessments`, for 6 to 12 rows per customer): the
/// writer checks each decision's customer against the rowids read when the assessment began,
/// which is all the enforcement could catch (the session holds the write lock, so no customer
/// goes away meanwhile), and every `assessment_id` it writes is its own.
///
/// While decisions arrive in increasing rowid order (an assessment's stream), new rows gather
/// in multi-row batches per table ([`RowBatch`]); when a decision comes out of order, every
/// batch is written and each row from then on is written at once, so the per-customer lookups
/// of that mode see everything written before them. The batches insert `OR FAIL`: a failing
/// row then leaves the rows before it in place instead of undoing the statement, which spares
/// SQLite a statement journal of every page a batch touches; any failure spoils the whole
/// assessment anyway, and the transaction rolls back.
struct DecisionWriter<'t> {
    assessment_id: i64,
    at: i64,
    /// Every customer's rowid when the assessment began, sorted.
    customers: Vec<i64>,
    /// Reads a customer's stored tier row, to skip writing what did not change.
    tier_get: Statement<'t>,
    /// Updates a customer whose stored tier is the decided one; touches no
    /// row otherwise.
    keep_tier: Statement<'t>,
    /// Tier history rows.
    tier_changes: RowBatch<'t>,
    /// Inserts or replaces a customer's tier with a new `since`.
    tiers: RowBatch<'t>,
    segment_get: Statement<'t>,
    segment_changes: RowBatch<'t>,
    segments: RowBatch<'t>,
    segment_delete: Statement<'t>,
    names: Names,
    /// No customer can have a stored tier (segment) yet: the table was
    /// empty when the assessment began, and every decision so far was for a
    /// customer with a higher rowid than the one before, so no customer came
    /// twice. Then there is nothing to look up before writing.
    fresh_tiers: bool,
    fresh_segments: bool,
    /// The rows as they were when the assessment began, while decisions arrive in rowid order.
    before: Before,
    /// Decisions have come in increasing rowid order so far, so `before` is still accurate
    /// and rows may wait in the batches.
    ordered: bool,
    /// The rowid of the previous decision.
    last_rowid: i64,
}

impl<'t> DecisionWriter<'t> {
    fn new(tx: &'t Connection, assessment_id: i64, at: i64) -> rusqlite::Result<Self> {
        let empty = |table: &str| -> rusqlite::Result<bool> {
            tx.query_row(
                &format!("SELECT NOT EXISTS (SELECT 1 FROM {table})"),
                [],
                |row| row.get(0),
            )
        };
        // Any index of `customers` holds every rowid, in fewer pages than the table.
        let mut customers: Vec<i64> = tx
            .prepare("SELECT id FROM customers")?
            .query_map([], |row| row.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        customers.sort_unstable();
        Ok(DecisionWriter {
            assessment_id,
            at,
            customers,
            fresh_tiers: empty("customer_tiers")?,
            fresh_segments: empty("customer_segments")?,
            before: Before::load(tx)?,
            ordered: true,
            last_rowid: i64::MIN,
            tier_get: tx.prepare(
                "SELECT tier, pending_tier, pending_count, pinned, scores, reasons, \
                 pending_since FROM customer_tiers WHERE customer_id = ?1",
            )?,
            keep_tier: tx.prepare(
                "UPDATE customer_tiers SET assessment_id = ?2, pending_tier = ?3, \
                 pending_count = ?4, pinned = ?5, scores = ?6, reasons = ?7, \
                 pending_since = ?9 WHERE customer_id = ?1 AND tier = ?8",
            )?,
            tier_changes: RowBatch::new(
                tx,
                "INSERT OR FAIL INTO tier_history (customer_id, assessment_id, at, from_tier, \
                 to_tier, reason) VALUES ",
                6,
                "",
            ),
            tiers: RowBatch::new(
                tx,
                "INSERT OR FAIL INTO customer_tiers (customer_id, tier, since, assessment_id, \
                 pending_tier, pending_count, pinned, scores, reasons, pending_since) VALUES ",
                10,
                "ON CONFLICT (customer_id) DO UPDATE SET tier = excluded.tier, \
                 since = excluded.since, assessment_id = excluded.assessment_id, \
                 pending_tier = excluded.pending_tier, pending_count = excluded.pending_count, \
                 pinned = excluded.pinned, scores = excluded.scores, reasons = excluded.reasons, \
                 pending_since = excluded.pending_since",
            ),
            segment_get: tx.prepare(
                "SELECT segment FROM customer_segments WHERE customer_id = ?1 \
                 AND segment_set = ?2",
            )?,
            segment_changes: RowBatch::new(
                tx,
                "INSERT OR FAIL INTO segment_history (customer_id, assessment_id, at, segment_set, \
                 from_segment, to_segment) VALUES ",
                6,
                "",
            ),
            segments: RowBatch::new(
                tx,
                "INSERT OR FAIL INTO customer_segments (customer_id, segment_set, segment, since, \
                 assessment_id) VALUES ",
                5,
                "ON CONFLICT (customer_id, segment_set) DO UPDATE SET \
                 segment = excluded.segment, since = excluded.since, \
                 assessment_id = excluded.assessment_id",
            ),
            segment_delete: tx.prepare(
                "DELETE FROM customer_segments WHERE customer_id = ?1 AND segment_set = ?2",
            )?,
            names: Names::default(),
        })
    }

    /// Whether a customer with this rowid existed when the assessment began.
    fn has_customer(&self, rowid: i64) -> bool {
        self.customers.binary_search(&rowid).is_ok()
    }

    /// Writes every row still waiting in a batch.
    fn flush(&mut self) -> rusqlite::Result<()> {
        self.tier_changes.flush()?;
        self.tiers.flush()?;
        self.segment_changes.flush()?;
        self.segments.flush()
    }

    /// Writes one decision; returns whether the customer's tier changed.
    fn write(&mut self, decision: EncodedDecision) -> rusqlite::Result<bool> {
        let rowid = decision.customer_rowid;
        if rowid <= self.last_rowid && self.ordered {
            self.fresh_tiers = false;
            self.fresh_segments = false;
            self.ordered = false;
            // The lookups from now on must see every row written so far.
            self.flush()?;
        }
        self.last_rowid = rowid;
        if decision.tier.is_empty() {
            // The schema's check, which the session does not compile into its statements.
            return Err(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CONSTRAINT_CHECK),
                Some("CHECK constraint failed: tier <> ''".to_owned()),
            ));
        }
        let scores = decision.scores_json.as_str();
        let reasons = decision.reasons_json.as_str();
        let pending_count = i64::from(decision.pending_count);

        // An unchanged row is not written at all: on a re-assessment most customers keep
        // everything. While decisions arrive in rowid order the stored state comes from
        // `before` (read in one pass); otherwise from a lookup per customer.
        let stored: Option<StoredTier> = if self.fresh_tiers {
            None
        } else if self.ordered {
            self.before.tier(rowid)
        } else {
            self.tier_get
                .query_row(params![rowid], |row| {
                    Ok(StoredTier {
                        tier: row.get(0)?,
                        pending_tier: row.get(1)?,
                        pending_count: row.get(2)?,
                        pinned: row.get(3)?,
                        content: content_digest(
                            row.get_ref(4)?.as_str()?,
                            row.get_ref(5)?.as_str()?,
                        ),
                        pending_since: row.get(6)?,
                    })
                })
                .optional()?
        };
        let kept = match &stored {
            Some(stored) if stored.tier == decision.tier => {
                let same = stored.pending_tier == decision.pending_tier
                    && stored.pending_count == pending_count
                    && stored.pending_since == decision.pending_since
                    && stored.pinned == decision.pinned
                    && stored.content == content_digest(scores, reasons);
                if !same {
                    self.keep_tier.execute(params![
                        rowid,
                        self.assessment_id,
                        decision.pending_tier,
                        pending_count,
                        decision.pinned,
                        scores,
                        reasons,
                        decision.tier,
                        decision.pending_since,
                    ])?;
                }
                true
            }
            _ => false,
        };
        if !kept {
            let from = stored.map(|stored| self.names.get(&stored.tier));
            let tier = self.names.get(&decision.tier);
            self.tier_changes.push([
                Cell::Int(rowid),
                Cell::Int(self.assessment_id),
                Cell::Int(self.at),
                from.into(),
                Cell::Name(Arc::clone(&tier)),
                Cell::Text(decision.reason),
            ])?;
            let pending = decision
                .pending_tier
                .as_deref()
                .map(|name| self.names.get(name));
            self.tiers.push([
                Cell::Int(rowid),
                Cell::Name(tier),
                Cell::Int(self.at),
                Cell::Int(self.assessment_id),
                pending.into(),
                Cell::Int(pending_count),
                Cell::Int(i64::from(decision.pinned)),
                Cell::Text(decision.scores_json.0),
                Cell::Text(decision.reasons_json.0),
                decision.pending_since.map_or(Cell::Null, Cell::Int),
            ])?;
        }

        for (index, (set, segment)) in decision.segments.iter().enumerate() {
            let stored: Option<String> = if self.fresh_segments {
                None
            } else if self.ordered {
                self.before.segment(rowid, set).map(str::to_owned)
            } else {
                self.segment_get
                    .query_row(params![rowid, set], |row| row.get(0))
                    .optional()?
            };
            if stored == *segment {
                continue;
            }
            let set_name = self.names.get(set);
            let from = stored.as_deref().map(|name| self.names.get(name));
            let to = segment.as_deref().map(|name| self.names.get(name));
            self.segment_changes.push([
                Cell::Int(rowid),
                Cell::Int(self.assessment_id),
                Cell::Int(self.at),
                Cell::Name(Arc::clone(&set_name)),
                from.into(),
                to.clone().into(),
            ])?;
            match to {
                Some(to) => self.segments.push([
                    Cell::Int(rowid),
                    Cell::Name(set_name),
                    Cell::Name(to),
                    Cell::Int(self.at),
                    Cell::Int(self.assessment_id),
                ])?,
                None => {
                    // Only this decision's own rows can be waiting for the same key (a set
                    // named twice); they must land before the delete.
                    if decision.segments[..index]
                        .iter()
                        .any(|(other, _)| other == set)
                    {
                        self.segments.flush()?;
                    }
                    self.segment_delete.execute(params![rowid, set])?;
                }
            }
        }
        if !self.ordered {
            self.flush()?;
        }
        Ok(!kept)
    }
}

/// A customer's stored tier row, compared with a new decision before writing.
struct StoredTier {
    tier: String,
    pending_tier: Option<String>,
    pending_count: i64,
    pending_since: Option<i64>,
    pinned: bool,
    /// A digest of the scores and reasons text (they only need "same or not").
    content: u64,
}

/// A digest of a tier row's scores and reasons.
fn content_digest(scores: &str, reasons: &str) -> u64 {
    let mut bytes = Vec::with_capacity(scores.len() + reasons.len() + 1);
    bytes.extend_from_slice(scores.as_bytes());
    bytes.push(0);
    bytes.extend_from_slice(reasons.as_bytes());
    crate::keys::fnv1a64(&bytes)
}

/// A tier row in [`Before`]: (customer rowid, tier, pending tier or NO_NAME, pending count,
/// pinned, content digest, pending since).
type BeforeTier = (i64, u32, u32, i64, bool, u64, Option<i64>);

/// No name: a missing pending tier.
const NO_NAME: u32 = u32::MAX;

/// The tier and segment rows as they were when an assessment began, read in one sequential
/// pass each, so that telling a changed row from an unchanged one costs no lookup per customer
/// (4M random lookups were most of a 1M-customer re-assessment). Names are interned; tiers,
/// pending state and pins are compared exactly, scores and reasons by a 64-bit digest.
#[derive(Default)]
struct Before {
    names: Vec<String>,
    ids: std::collections::HashMap<String, u32>,
    /// Sorted by rowid.
    tiers: Vec<BeforeTier>,
    /// (customer rowid, segment set, segment), sorted.
    segments: Vec<(i64, u32, u32)>,
}

impl Before {
    fn load(tx: &Connection) -> rusqlite::Result<Before> {
        let mut before = Before::default();
        let mut stmt = tx.prepare(
            "SELECT customer_id, tier, pending_tier, pending_count, pinned, scores, reasons, \
             pending_since FROM customer_tiers ORDER BY customer_id",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let tier = before.intern(row.get_ref(1)?.as_str()?);
            let pending = match row.get_ref(2)?.as_str_or_null()? {
                Some(name) => before.intern(name),
                None => NO_NAME,
            };
            let content = content_digest(row.get_ref(5)?.as_str()?, row.get_ref(6)?.as_str()?);
            before.tiers.push((
                row.get(0)?,
                tier,
                pending,
                row.get(3)?,
                row.get(4)?,
                content,
                row.get(7)?,
            ));
        }
        let mut stmt = tx.prepare(
            "SELECT customer_id, segment_set, segment FROM customer_segments \
             ORDER BY customer_id, segment_set",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let set = before.intern(row.get_ref(1)?.as_str()?);
            let segment = before.intern(row.get_ref(2)?.as_str()?);
            before.segments.push((row.get(0)?, set, segment));
        }
        // Interned ids do not follow name order, so sort by (rowid, set id) for the searches.
        before.segments.sort_unstable();
        Ok(before)
    }

    fn intern(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.ids.get(name) {
            return id;
        }
        let id = u32::try_from(self.names.len()).expect("fewer than 4 billion names");
        self.names.push(name.to_owned());
        self.ids.insert(name.to_owned(), id);
        id
    }

    fn name(&self, id: u32) -> Option<String> {
        (id != NO_NAME).then(|| self.names[id as usize].clone())
    }

    fn tier(&self, rowid: i64) -> Option<StoredTier> {
        let i = self.tiers.binary_search_by_key(&rowid, |t| t.0).ok()?;
        let (_, tier, pending, pending_count, pinned, content, pending_since) = self.tiers[i];
        Some(StoredTier {
            tier: self.name(tier)?,
            pending_tier: self.name(pending),
            pending_count,
            pending_since,
            pinned,
            content,
        })
    }

    fn segment(&self, rowid: i64, set: &str) -> Option<&str> {
        let set = *self.ids.get(set)?;
        let i = self
            .segments
            .binary_search_by(|s| (s.0, s.1).cmp(&(rowid, set)))
            .ok()?;
        Some(&self.names[self.segments[i].2 as usize])
    }
}

fn current_tier_from_row(row: &Row<'_>) -> rusqlite::Result<CurrentTier> {
    let scores = match json_column(row, 6)? {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    Ok(CurrentTier {
        tier: row.get(0)?,
        since: row.get(1)?,
        assessment_id: row.get(2)?,
        pending_tier: row.get(3)?,
        pending_count: u32::try_from(row.get::<_, i64>(4)?).unwrap_or(u32::MAX),
        pending_since: row.get(8)?,
        pinned: row.get(5)?,
        scores,
        reasons: json_column(row, 7)?,
    })
}

/// The JSON text in column `index`, parsed.
fn json_column(row: &Row<'_>, index: usize) -> rusqlite::Result<Value> {
    serde_json::from_str(row.get_ref(index)?.as_str()?)
        .map_err(|err| rusqlite::Error::FromSqlConversionFailure(index, Type::Text, Box::new(err)))
}

/// A count as SQLite stores it (saturating; counts never get near 2^63).
fn sql_count(count: u64) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Foreign keys enforced and CHECK constraints compiled, as on every connection outside a
    /// session.
    fn foreign_keys(store: &Store) -> bool {
        let pragma = |name: &str| -> bool {
            store
                .conn
                .query_row(&format!("PRAGMA {name}"), [], |row| row.get(0))
                .unwrap()
        };
        pragma("foreign_keys") && !pragma("ignore_check_constraints")
    }

    fn decision(rowid: i64, tier: &str) -> TierDecision {
        TierDecision {
            customer_rowid: rowid,
            tier: tier.into(),
            reason: "r".into(),
            ..TierDecision::default()
        }
    }

    #[test]
    fn foreign_keys_and_checks_are_enforced_again_however_a_session_ends() {
        // A session turns enforcement off on its connection; the same connection serves the
        // daemon's other work afterwards, which relies on it (cascading deletes).
        let mut store = Store::open_in_memory().unwrap();
        store
            .conn
            .execute_batch(
                "INSERT INTO customers (external_id, created_at, updated_at) VALUES ('a', 0, 0)",
            )
            .unwrap();
        assert!(foreign_keys(&store));

        let mut session = store.begin_assessment(1, "v", 1).unwrap();
        session.record(&decision(1, "A")).unwrap();
        session.finish(2, 0).unwrap();
        assert!(foreign_keys(&store), "after a commit");

        let mut session = store.begin_assessment(2, "v", 2).unwrap();
        session.record(&decision(1, "B")).unwrap();
        drop(session);
        assert!(foreign_keys(&store), "after a dropped session");

        let mut session = store.begin_assessment(3, "v", 3).unwrap();
        assert!(matches!(
            session.record(&decision(99, "B")),
            Err(StoreError::CustomerGone { rowid: 99 })
        ));
        assert!(session.finish(4, 0).is_err());
        assert!(foreign_keys(&store), "after a failed session");

        // Rows in a batch not yet written when a later row fails are not committed either.
        let mut session = store.begin_assessment(4, "v", 4).unwrap();
        session.record(&decision(1, "C")).unwrap();
        assert!(session.record(&decision(1, "")).is_err());
        assert!(session.finish(5, 0).is_err());
        assert_eq!(store.tier_counts().unwrap(), [("A".to_owned(), 1)]);
        assert!(foreign_keys(&store));

        // And enforcement works: deleting the customer takes its tier with it, and a CHECK
        // refuses what it should.
        assert!(
            store
                .conn
                .execute_batch("UPDATE customer_tiers SET scores = 'not json'")
                .is_err()
        );
        store
            .conn
            .execute_batch("DELETE FROM customers WHERE id = 1")
            .unwrap();
        assert!(store.tier_counts().unwrap().is_empty());
    }
}
