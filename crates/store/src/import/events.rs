//! Writing what happened with customers: interactions, complaints and
//! feedback. These never create customers, and rows without an id get one
//! derived from their content.
//!
//! The free text of a forgotten customer's rows (an interaction's note, a
//! complaint's subject, a feedback comment) is left out, as
//! `tiercare customer forget` erased it; the facts (times, kinds, scores,
//! severity) are written. Such rows are counted in
//! [`ImportSession::kept_forgotten`].

use rusqlite::{OptionalExtension, params};

use super::{
    ImportKind, ImportSession, KindTable, Outcome, RowError, int_differs, real_equals, reject,
    require, require_finite, text_differs, text_equals, unknown_customer,
};
use crate::error::AtPath;
use crate::keys::{DerivedKey, KeyText};
use crate::records::{ComplaintRecord, FeedbackRecord, InteractionRecord};

/// A row's key: its own id, or one derived from its content.
enum RowKey<'r> {
    Given(&'r str),
    Derived(KeyText),
}

impl RowKey<'_> {
    fn as_str(&self) -> &str {
        match self {
            RowKey::Given(key) => key,
            RowKey::Derived(key) => key.as_str(),
        }
    }
}

/// The row's own id (rejected when empty), or the derived one.
fn row_key<'r>(
    kind: ImportKind,
    given: Option<&'r str>,
    derive: impl FnOnce() -> KeyText,
) -> Result<RowKey<'r>, RowError> {
    match given {
        Some(key) => {
            require(kind.id_column(), key)?;
            Ok(RowKey::Given(key))
        }
        None => Ok(RowKey::Derived(derive())),
    }
}

impl ImportSession<'_> {
    /// Upserts an interaction by its id, or by a key derived from all of its
    /// fields when it has none. Its customer must exist.
    pub fn interaction(&mut self, line: u64, rec: &InteractionRecord) -> Result<Outcome, RowError> {
        self.guarded(|session| session.write_interaction(line, rec))
    }

    /// Upserts a complaint by its id, or by a key derived from its customer,
    /// `opened_at`, `severity` and `subject` when it has none. Its customer
    /// must exist; `severity` must be 1 to 4 and `resolved_at` not before
    /// `opened_at`.
    pub fn complaint(&mut self, line: u64, rec: &ComplaintRecord) -> Result<Outcome, RowError> {
        self.guarded(|session| session.write_complaint(line, rec))
    }

    /// Upserts a feedback score by its id, or by a key derived from all of
    /// its fields when it has none. Its customer must exist; the score must
    /// be a finite number.
    pub fn feedback(&mut self, line: u64, rec: &FeedbackRecord) -> Result<Outcome, RowError> {
        self.guarded(|session| session.write_feedback(line, rec))
    }

    /// The customer's rowid; events never create customers.
    fn event_customer(&mut self, customer: &str) -> Result<i64, RowError> {
        self.customer_rowid(customer)?
            .ok_or_else(|| unknown_customer(customer, ""))
    }

    fn write_interaction(
        &mut self,
        line: u64,
        rec: &InteractionRecord,
    ) -> Result<Outcome, RowError> {
        const KIND: ImportKind = ImportKind::Interactions;
        require("customer_id", &rec.customer_external_id)?;
        require("kind", &rec.kind)?;
        let key = row_key(KIND, rec.external_id.as_deref(), || {
            DerivedKey::new(KIND.as_str())
                .text(&rec.customer_external_id)
                .text(&rec.kind)
                .int(rec.occurred_at)
                .opt_text(rec.by.as_deref())
                .opt_text(rec.note.as_deref())
                .finish()
        })?;
        let customer_id = self.event_customer(&rec.customer_external_id)?;
        let note = self.unless_forgotten(customer_id, rec.note.as_deref())?;
        let derived = matches!(key, RowKey::Derived(_));
        let path = self.path;
        let stored = if self.insert_blindly(KIND) {
            None
        } else {
            self.statements
                .interaction_select()
                .at(path)?
                .query_row([key.as_str()], |row| {
                    let changed = row.get::<_, i64>(1)? != customer_id
                        || !text_equals(row.get_ref(2)?, Some(&rec.kind))
                        || row.get::<_, i64>(3)? != rec.occurred_at
                        || text_differs(row.get_ref(4)?, rec.by.as_deref())
                        || text_differs(row.get_ref(5)?, note);
                    Ok((row.get::<_, i64>(0)?, changed))
                })
                .optional()
                .at(path)?
        };
        let (rowid, outcome) = match stored {
            None => {
                let result = self
                    .statements
                    .interaction_insert()
                    .at(path)?
                    .execute(params![
                        key.as_str(),
                        customer_id,
                        rec.kind,
                        rec.occurred_at,
                        rec.by.as_deref(),
                        note,
                    ]);
                (
                    self.inserted(KIND, key.as_str(), derived, result)?,
                    Outcome::Inserted,
                )
            }
            Some((rowid, changed)) => {
                self.check_seen(KIND, rowid, key.as_str(), derived)?;
                if !changed {
                    return Ok(self.unchanged(KIND, rowid, line));
                }
                self.statements
                    .interaction_update()
                    .at(path)?
                    .execute(params![
                        rowid,
                        customer_id,
                        rec.kind,
                        rec.occurred_at,
                        rec.by.as_deref(),
                        note,
                    ])
                    .at(path)?;
                (rowid, Outcome::Updated)
            }
        };
        self.remember(KIND, rowid, line);
        Ok(outcome)
    }

    fn write_complaint(&mut self, line: u64, rec: &ComplaintRecord) -> Result<Outcome, RowError> {
        const KIND: ImportKind = ImportKind::Complaints;
        require("customer_id", &rec.customer_external_id)?;
        if !(1..=4).contains(&rec.severity) {
            return Err(reject(
                "severity",
                format!(
                    "severity must be 1 (low), 2 (medium), 3 (high) or 4 (critical), not {}",
                    rec.severity
                ),
            ));
        }
        if rec
            .resolved_at
            .is_some_and(|resolved| resolved < rec.opened_at)
        {
            return Err(reject("resolved_at", "resolved_at is before opened_at"));
        }
        let key = row_key(KIND, rec.external_id.as_deref(), || {
            DerivedKey::new(KIND.as_str())
                .text(&rec.customer_external_id)
                .int(rec.opened_at)
                .int(i64::from(rec.severity))
                .opt_text(rec.subject.as_deref())
                .finish()
        })?;
        let customer_id = self.event_customer(&rec.customer_external_id)?;
        let subject = self.unless_forgotten(customer_id, rec.subject.as_deref())?;
        let derived = matches!(key, RowKey::Derived(_));
        let path = self.path;
        let stored = if self.insert_blindly(KIND) {
            None
        } else {
            self.statements
                .complaint_select()
                .at(path)?
                .query_row([key.as_str()], |row| {
                    let changed = row.get::<_, i64>(1)? != customer_id
                        || row.get::<_, i64>(2)? != rec.opened_at
                        || int_differs(row.get_ref(3)?, rec.resolved_at)
                        || row.get::<_, i64>(4)? != i64::from(rec.severity)
                        || text_differs(row.get_ref(5)?, subject);
                    Ok((row.get::<_, i64>(0)?, changed))
                })
                .optional()
                .at(path)?
        };
        let (rowid, outcome) = match stored {
            None => {
                let result = self
                    .statements
                    .complaint_insert()
                    .at(path)?
                    .execute(params![
                        key.as_str(),
                        customer_id,
                        rec.opened_at,
                        rec.resolved_at,
                        rec.severity,
                        subject,
                    ]);
                (
                    self.inserted(KIND, key.as_str(), derived, result)?,
                    Outcome::Inserted,
                )
            }
            Some((rowid, changed)) => {
                self.check_seen(KIND, rowid, key.as_str(), derived)?;
                if !changed {
                    return Ok(self.unchanged(KIND, rowid, line));
                }
                self.statements
                    .complaint_update()
                    .at(path)?
                    .execute(params![
                        rowid,
                        customer_id,
                        rec.opened_at,
                        rec.resolved_at,
                        rec.severity,
                        subject,
                    ])
                    .at(path)?;
                (rowid, Outcome::Updated)
            }
        };
        self.remember(KIND, rowid, line);
        Ok(outcome)
    }

    fn write_feedback(&mut self, line: u64, rec: &FeedbackRecord) -> Result<Outcome, RowError> {
        const KIND: ImportKind = ImportKind::Feedback;
        require("customer_id", &rec.customer_external_id)?;
        require_finite("score", rec.score)?;
        let key = row_key(KIND, rec.external_id.as_deref(), || {
            DerivedKey::new(KIND.as_str())
                .text(&rec.customer_external_id)
                .int(rec.given_at)
                .number(rec.score)
                .opt_text(rec.comment.as_deref())
                .finish()
        })?;
        let customer_id = self.event_customer(&rec.customer_external_id)?;
        let comment = self.unless_forgotten(customer_id, rec.comment.as_deref())?;
        let derived = matches!(key, RowKey::Derived(_));
        let path = self.path;
        let stored = if self.insert_blindly(KIND) {
            None
        } else {
            self.statements
                .feedback_select()
                .at(path)?
                .query_row([key.as_str()], |row| {
                    let changed = row.get::<_, i64>(1)? != customer_id
                        || row.get::<_, i64>(2)? != rec.given_at
                        || !real_equals(row.get_ref(3)?, rec.score)
                        || text_differs(row.get_ref(4)?, comment);
                    Ok((row.get::<_, i64>(0)?, changed))
                })
                .optional()
                .at(path)?
        };
        let (rowid, outcome) = match stored {
            None => {
                let result = self.statements.feedback_insert().at(path)?.execute(params![
                    key.as_str(),
                    customer_id,
                    rec.given_at,
                    rec.score,
                    comment,
                ]);
                (
                    self.inserted(KIND, key.as_str(), derived, result)?,
                    Outcome::Inserted,
                )
            }
            Some((rowid, changed)) => {
                self.check_seen(KIND, rowid, key.as_str(), derived)?;
                if !changed {
                    return Ok(self.unchanged(KIND, rowid, line));
                }
                self.statements
                    .feedback_update()
                    .at(path)?
                    .execute(params![
                        rowid,
                        customer_id,
                        rec.given_at,
                        rec.score,
                        comment,
                    ])
                    .at(path)?;
                (rowid, Outcome::Updated)
            }
        };
        self.remember(KIND, rowid, line);
        Ok(outcome)
    }
}
