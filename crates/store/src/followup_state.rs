//! What the follow-up planner needs about each customer's past, streamed with the features.
//!
//! [`Store::for_each_followup_state`] walks every customer in rowid order, as
//! [`Store::for_each_features`] does, and hands each one's features together with their
//! [`CustomerFollowUpState`]: each rule's last occurrence in the ledger, the times of the
//! e-mails planned or sent to them (for caps and the minimum gap), their events in a range
//! (tier and segment changes, complaints, feedback) and, when asked, their current segments.
//!
//! Every one of those comes from one query ordered by customer (through the table's
//! `(customer_id, time)` index), read in step with the features like a merge join: what is held
//! at once is one customer's state, whatever the number of customers. All reads happen in the
//! features' read transaction, so they see one consistent snapshot.

use rusqlite::{Row, Rows};

use crate::db::Store;
use crate::error::{AtPath, StoreError};
use crate::features::{CustomerFeatures, FeatureSummary, Window};

/// What [`Store::for_each_followup_state`] reads besides the features.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateRange {
    /// Customer events after this time (unix seconds)...
    pub events_since: i64,
    /// ...and at or before this time are read.
    pub events_until: i64,
    /// Follow-up e-mails (planned or done) scheduled after this time are listed, later ones
    /// included: the planner's caps look back a calendar month, its minimum gap both ways.
    pub emails_since: i64,
    /// Whether to read the customers' current segments (when a rule filters on them).
    pub segments: bool,
}

/// A rule's last occurrence for one customer, in [`CustomerFollowUpState`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LastOccurrence {
    /// The follow-up rule.
    pub rule_id: String,
    /// The latest `occurrence_at` in the ledger, whatever the status.
    pub last_occurrence_at: i64,
    /// The latest `occurrence_at` of a follow-up that fired (planned or
    /// done, not skipped or cancelled), if any.
    pub last_fired_at: Option<i64>,
    /// The latest time the customer was given the rule's action, with that
    /// follow-up's `occurrence_at`: `(given_at, occurrence_at)`. Given means
    /// planned or done, except an e-mail whose outbox row failed, was
    /// cancelled or suppressed (it never reached anyone); the time is the
    /// e-mail's `sent_at` when sent, else the follow-up's `scheduled_at`.
    pub last_given: Option<(i64, i64)>,
}

/// Something that happened to a customer, in [`CustomerFollowUpState`].
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CustomerEvent {
    /// The customer's rowid.
    pub customer_rowid: i64,
    /// When it happened, unix seconds UTC.
    pub at: i64,
    /// What happened.
    pub kind: EventKind,
}

/// What happened, in a [`CustomerEvent`].
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum EventKind {
    /// An assessment changed the customer's tier (`from` `None`: the first
    /// assignment).
    TierChanged {
        /// The tier before.
        from: Option<String>,
        /// The tier after.
        to: String,
        /// The assessment's one-line reason.
        reason: String,
    },
    /// An assessment changed the customer's segment in a set.
    SegmentChanged {
        /// The segment set.
        segment_set: String,
        /// The segment before (`None`: entered the set).
        from: Option<String>,
        /// The segment after (`None`: left every segment of the set).
        to: Option<String>,
    },
    /// The customer opened a complaint.
    ComplaintOpened {
        /// 1 low, 2 medium, 3 high, 4 critical.
        severity: u8,
        /// What it is about.
        subject: Option<String>,
        /// When it was resolved, if it is (as stored now).
        resolved_at: Option<i64>,
    },
    /// The customer gave feedback; the rules decide which scores are low.
    FeedbackGiven {
        /// The score.
        score: f64,
        /// The comment.
        comment: Option<String>,
    },
}

/// One customer's follow-up past, from [`Store::for_each_followup_state`].
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct CustomerFollowUpState {
    /// The customer's rowid.
    pub customer_rowid: i64,
    /// Per rule with an occurrence in the ledger for the customer, in rule id order.
    pub last: Vec<LastOccurrence>,
    /// The scheduled times of the follow-up e-mails to the customer that are planned or done,
    /// after [`StateRange::emails_since`], oldest first. Skipped and cancelled ones, tasks,
    /// owner notifications and attribute sets are not e-mails to the customer.
    pub emails: Vec<i64>,
    /// The latest such e-mail at or before [`StateRange::emails_since`], if any (for cadences
    /// counted from the last contact).
    pub earlier_email: Option<i64>,
    /// The scheduled times of the follow-up SMS to the customer that are planned or done,
    /// after [`StateRange::emails_since`], oldest first (the contact policy counts each
    /// channel on its own; SMS are not in `emails`).
    pub sms: Vec<i64>,
    /// The customer's events in the range, oldest first (equal times: tier changes, segment
    /// changes, complaints, feedback, each in the order they were stored).
    pub events: Vec<CustomerEvent>,
    /// The current segments as `(set, segment)` by set, when asked for.
    pub segments: Vec<(String, String)>,
}

impl CustomerFollowUpState {
    /// When `rule_id` last fired (planned or done) for the customer.
    #[must_use]
    pub fn last_fired(&self, rule_id: &str) -> Option<i64> {
        self.last
            .iter()
            .find(|last| last.rule_id == rule_id)
            .and_then(|last| last.last_fired_at)
    }

    fn clear(&mut self, customer_rowid: i64) {
        self.customer_rowid = customer_rowid;
        self.last.clear();
        self.emails.clear();
        self.earlier_email = None;
        self.sms.clear();
        self.events.clear();
        self.segments.clear();
    }
}

/// One query's rows, read in step with the customers: the rows of a customer are taken when
/// the walk reaches them. Every query's first column is the customer's rowid, and its rows come
/// by rowid.
struct Cursor<'s, T> {
    rows: Rows<'s>,
    read: fn(&Row<'_>) -> rusqlite::Result<T>,
    next: Option<(i64, T)>,
    started: bool,
}

impl<'s, T> Cursor<'s, T> {
    fn new(rows: Rows<'s>, read: fn(&Row<'_>) -> rusqlite::Result<T>) -> Self {
        Cursor {
            rows,
            read,
            next: None,
            started: false,
        }
    }

    fn advance(&mut self) -> rusqlite::Result<()> {
        self.next = match self.rows.next()? {
            Some(row) => Some((row.get(0)?, (self.read)(row)?)),
            None => None,
        };
        Ok(())
    }

    /// Hands every row of customer `rowid` to `take`, passing over rows of customers before
    /// it (none exist: the features walk every customer).
    fn take(&mut self, rowid: i64, mut take: impl FnMut(T)) -> rusqlite::Result<()> {
        if !self.started {
            self.started = true;
            self.advance()?;
        }
        while self.next.as_ref().is_some_and(|(id, _)| *id <= rowid) {
            if let Some((id, value)) = self.next.take()
                && id == rowid
            {
                take(value);
            }
            self.advance()?;
        }
        Ok(())
    }
}

/// A ledger row: `(rule_id, occurrence_at, fired, email scheduled_at, given at)`.
type LedgerRow = (String, i64, bool, Option<i64>, Option<i64>, bool);

/// The statements that read the follow-up state, for customers with rowids in `?3..=?4`
/// (every customer: `i64::MIN..=i64::MAX`), each by customer through its index.
struct StateStatements<'c> {
    ledger: rusqlite::Statement<'c>,
    tiers: rusqlite::Statement<'c>,
    segment_changes: rusqlite::Statement<'c>,
    complaints: rusqlite::Statement<'c>,
    feedback: rusqlite::Statement<'c>,
    segments: rusqlite::Statement<'c>,
}

impl<'c> StateStatements<'c> {
    fn prepare(conn: &'c rusqlite::Connection) -> rusqlite::Result<Self> {
        Ok(StateStatements {
            // What was given: fired, and not an e-mail that never left (the outbox row's
            // `followup_id` is unique, so the join finds at most one).
            ledger: conn.prepare(
                "SELECT f.customer_id, f.rule_id, f.occurrence_at, f.status IN ('planned', 'done'), \
                 CASE WHEN f.kind IN ('email', 'sms') AND f.status IN ('planned', 'done') \
                      THEN f.scheduled_at END, \
                 CASE WHEN f.status IN ('planned', 'done') AND (o.state IS NULL OR o.state \
                      NOT IN ('failed', 'cancelled', 'suppressed')) \
                      THEN coalesce(o.sent_at, f.scheduled_at) END, \
                 f.kind = 'sms' \
                 FROM followups f INDEXED BY followups_by_customer \
                 LEFT JOIN outbox o ON o.followup_id = f.id \
                 WHERE f.customer_id BETWEEN ?1 AND ?2 ORDER BY f.customer_id",
            )?,
            tiers: conn.prepare(
                "SELECT customer_id, at, from_tier, to_tier, reason \
                 FROM tier_history INDEXED BY tier_history_by_customer \
                 WHERE customer_id BETWEEN ?3 AND ?4 AND at > ?1 AND at <= ?2 \
                 ORDER BY customer_id, at, id",
            )?,
            segment_changes: conn.prepare(
                "SELECT customer_id, at, segment_set, from_segment, to_segment \
                 FROM segment_history INDEXED BY segment_history_by_customer \
                 WHERE customer_id BETWEEN ?3 AND ?4 AND at > ?1 AND at <= ?2 \
                 ORDER BY customer_id, at, id",
            )?,
            complaints: conn.prepare(
                "SELECT customer_id, opened_at, severity, subject, resolved_at \
                 FROM complaints INDEXED BY complaints_by_customer \
                 WHERE customer_id BETWEEN ?3 AND ?4 AND opened_at > ?1 AND opened_at <= ?2 \
                 ORDER BY customer_id, opened_at, id",
            )?,
            feedback: conn.prepare(
                "SELECT customer_id, given_at, score, comment \
                 FROM feedback INDEXED BY feedback_by_customer \
                 WHERE customer_id BETWEEN ?3 AND ?4 AND given_at > ?1 AND given_at <= ?2 \
                 ORDER BY customer_id, given_at, id",
            )?,
            // When not asked for, the query reads no row (`WHERE 0`).
            segments: conn.prepare(
                "SELECT customer_id, segment_set, segment FROM customer_segments \
                 WHERE ?1 AND customer_id BETWEEN ?2 AND ?3 ORDER BY customer_id, segment_set",
            )?,
        })
    }

    /// Opens the cursors over the customers with rowids in `low..=high`.
    fn cursors(
        &mut self,
        range: StateRange,
        low: i64,
        high: i64,
    ) -> rusqlite::Result<StateCursors<'_>> {
        let (since, until) = (range.events_since, range.events_until);
        let events = [since, until, low, high];
        Ok(StateCursors {
            range,
            ledger: Cursor::new(self.ledger.query([low, high])?, |row| {
                Ok((
                    row.get(1)?,
                    row.get(2)?,
                    row.get(3)?,
                    row.get(4)?,
                    row.get(5)?,
                    row.get(6)?,
                ))
            }),
            tiers: Cursor::new(self.tiers.query(events)?, |row| {
                Ok(CustomerEvent {
                    customer_rowid: row.get(0)?,
                    at: row.get(1)?,
                    kind: EventKind::TierChanged {
                        from: row.get(2)?,
                        to: row.get(3)?,
                        reason: row.get(4)?,
                    },
                })
            }),
            segment_changes: Cursor::new(self.segment_changes.query(events)?, |row| {
                Ok(CustomerEvent {
                    customer_rowid: row.get(0)?,
                    at: row.get(1)?,
                    kind: EventKind::SegmentChanged {
                        segment_set: row.get(2)?,
                        from: row.get(3)?,
                        to: row.get(4)?,
                    },
                })
            }),
            complaints: Cursor::new(self.complaints.query(events)?, |row| {
                Ok(CustomerEvent {
                    customer_rowid: row.get(0)?,
                    at: row.get(1)?,
                    kind: EventKind::ComplaintOpened {
                        severity: u8::try_from(row.get::<_, i64>(2)?.clamp(0, 4)).unwrap_or(0),
                        subject: row.get(3)?,
                        resolved_at: row.get(4)?,
                    },
                })
            }),
            feedback: Cursor::new(self.feedback.query(events)?, |row| {
                Ok(CustomerEvent {
                    customer_rowid: row.get(0)?,
                    at: row.get(1)?,
                    kind: EventKind::FeedbackGiven {
                        score: row.get(2)?,
                        comment: row.get(3)?,
                    },
                })
            }),
            segments: Cursor::new(
                self.segments
                    .query(rusqlite::params![range.segments, low, high])?,
                |row| Ok((row.get(1)?, row.get(2)?)),
            ),
        })
    }
}

/// The cursors of [`StateStatements`], read in step with the customers.
struct StateCursors<'s> {
    range: StateRange,
    ledger: Cursor<'s, LedgerRow>,
    tiers: Cursor<'s, CustomerEvent>,
    segment_changes: Cursor<'s, CustomerEvent>,
    complaints: Cursor<'s, CustomerEvent>,
    feedback: Cursor<'s, CustomerEvent>,
    segments: Cursor<'s, (String, String)>,
}

impl StateCursors<'_> {
    /// Fills `state` with the customer `rowid`'s follow-up state (rowids must come in
    /// ascending order).
    fn fill(&mut self, rowid: i64, state: &mut CustomerFollowUpState) -> rusqlite::Result<()> {
        let range = self.range;
        state.clear(rowid);
        self.ledger.take(
            rowid,
            |(rule_id, occurrence_at, fired, email, given, sms)| {
                let given = given.map(|at| (at, occurrence_at));
                match state.last.iter_mut().find(|last| last.rule_id == rule_id) {
                    Some(last) => {
                        last.last_occurrence_at = last.last_occurrence_at.max(occurrence_at);
                        if fired {
                            last.last_fired_at = Some(
                                last.last_fired_at
                                    .map_or(occurrence_at, |at| at.max(occurrence_at)),
                            );
                        }
                        last.last_given = last.last_given.max(given);
                    }
                    None => state.last.push(LastOccurrence {
                        rule_id,
                        last_occurrence_at: occurrence_at,
                        last_fired_at: fired.then_some(occurrence_at),
                        last_given: given,
                    }),
                }
                if let (Some(at), true) = (email, sms) {
                    if at > range.emails_since {
                        state.sms.push(at);
                    }
                } else if let Some(email) = email {
                    if email > range.emails_since {
                        state.emails.push(email);
                    } else {
                        state.earlier_email =
                            Some(state.earlier_email.map_or(email, |at| at.max(email)));
                    }
                }
            },
        )?;
        for cursor in [
            &mut self.tiers,
            &mut self.segment_changes,
            &mut self.complaints,
            &mut self.feedback,
        ] {
            cursor.take(rowid, |event| state.events.push(event))?;
        }
        self.segments
            .take(rowid, |segment| state.segments.push(segment))?;
        state.last.sort_by(|a, b| a.rule_id.cmp(&b.rule_id));
        state.emails.sort_unstable();
        state.sms.sort_unstable();
        // A stable sort keeps the tables' order for equal times.
        state.events.sort_by_key(|event| event.at);
        Ok(())
    }
}

impl Store {
    /// Computes every customer's features at `at` over `window` (as
    /// [`Store::for_each_features`]) and calls `visit` with each customer's features and
    /// follow-up state ([`CustomerFollowUpState`]), customer after customer in rowid order.
    ///
    /// One read transaction; besides the features, one scan each of the ledger, tier history,
    /// segment history, complaints and feedback (the last four restricted to the range) and,
    /// when asked, current segments, each ordered by customer through its
    /// `(customer_id, time)` index and read in step with the features like a merge join. So
    /// memory beyond the features is one customer's state, whatever the size of the ledger.
    pub fn for_each_followup_state(
        &self,
        at: i64,
        window: Window,
        range: StateRange,
        visit: &mut dyn FnMut(&CustomerFeatures, &CustomerFollowUpState),
    ) -> Result<FeatureSummary, StoreError> {
        let path = self.label.as_path();
        // Statements are prepared and bound here, and first stepped inside the features'
        // transaction.
        let mut statements = StateStatements::prepare(&self.conn).at(path)?;
        let mut cursors = statements.cursors(range, i64::MIN, i64::MAX).at(path)?;
        let mut state = CustomerFollowUpState::default();
        let mut failed: Option<rusqlite::Error> = None;
        let summary = self.for_each_features(at, window, &mut |features| {
            if failed.is_some() {
                return;
            }
            if let Err(err) = cursors.fill(features.customer_rowid, &mut state) {
                failed = Some(err);
                return;
            }
            visit(features, &state);
        })?;
        match failed {
            Some(err) => Err(StoreError::at(path, err)),
            None => Ok(summary),
        }
    }

    /// The follow-up state of the customers with `rowids` only (each read through the tables'
    /// `(customer_id, time)` indexes, so the cost grows with these customers' rows, not with
    /// the population), calling `visit` with each in ascending rowid order; a rowid without a
    /// customer gets an empty state. One read transaction.
    pub fn for_each_followup_state_of(
        &self,
        rowids: &[i64],
        range: StateRange,
        visit: &mut dyn FnMut(&CustomerFollowUpState),
    ) -> Result<(), StoreError> {
        let path = self.label.as_path();
        let mut rowids = rowids.to_vec();
        rowids.sort_unstable();
        rowids.dedup();
        let tx = rusqlite::Transaction::new_unchecked(
            &self.conn,
            rusqlite::TransactionBehavior::Deferred,
        )
        .at(path)?;
        let mut statements = StateStatements::prepare(&tx).at(path)?;
        let mut state = CustomerFollowUpState::default();
        for rowid in rowids {
            let mut cursors = statements.cursors(range, rowid, rowid).at(path)?;
            cursors.fill(rowid, &mut state).at(path)?;
            visit(&state);
        }
        Ok(())
    }
}
