//! The follow-up ledger: every occurrence of a follow-up rule the planner
//! decided about, what it decided, when and why.
//!
//! An occurrence is identified by its [`OccurrenceKey`] (rule, customer,
//! scheduled time). [`Store::begin_followups`] opens a [`FollowUpSession`]:
//! one `IMMEDIATE` transaction in which [`FollowUpSession::record`] writes a
//! [`PlannedFollowUp`] unless its occurrence is already in the ledger, so
//! planning twice never creates the same follow-up twice. What an action
//! does inside the database happens in the same transaction as its ledger
//! row: a task action creates the task, a set-attribute action merges the
//! attribute into the customer's. E-mails (to the customer, or notifying the
//! owner) stay `planned` until the outbox (a later migration) sends them;
//! the outbox row will be written in the same session, referring to
//! [`Recorded::followup_id`].
//!
//! What the planner needs about the past is streamed customer by customer
//! by [`Store::for_each_followup_state`] (in `followup_state.rs`).

use std::fmt;
use std::path::Path;

use rusqlite::types::Type;
use rusqlite::{OptionalExtension, Row, Transaction, TransactionBehavior, params};
use serde_json::{Map, Value};

use crate::coupons::{self, CouponRequest};
use crate::db::Store;
use crate::error::{AtPath, StoreError};
use crate::outbox::{self, EmailRecipient, NewEmail, RecipientKind};
use tiercare_types::Channel;

/// Composes the e-mail of an e-mail follow-up for its recipient: the
/// address to use and the rendered message, or why there is none (the
/// follow-up is then skipped with that reason). See
/// [`FollowUpSession::record_with_email`].
pub type ComposeEmail<'a> = dyn FnMut(&EmailRecipient) -> Result<NewEmail, String> + 'a;

/// Composes the SMS of an SMS follow-up for the customer: the E.164 number to use (in
/// [`NewEmail::to_address`]), the rendered text (in [`NewEmail::text`], the subject empty)
/// and its message id, or why there is none (the follow-up is then skipped with that reason).
/// The recipient's `address` is the customer's phone as stored. See
/// [`FollowUpSession::record_with_messages`].
pub type ComposeSms<'a> = dyn FnMut(&EmailRecipient) -> Result<NewEmail, String> + 'a;

/// The identity of one occurrence of a follow-up rule for one customer:
/// the idempotency key of the ledger. Rule ids contain no `:` (a follow-up
/// with one is refused).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct OccurrenceKey {
    /// The follow-up rule's id.
    pub rule_id: String,
    /// The customer's external id.
    pub customer_id: String,
    /// When the rule's trigger occurred, unix seconds UTC (not moved by
    /// the contact policy, so that re-planning finds the same key).
    pub occurrence_at: i64,
}

impl OccurrenceKey {
    /// The key of rule `rule_id` occurring for customer `customer_id` at
    /// `occurrence_at`.
    pub fn new(
        rule_id: impl Into<String>,
        customer_id: impl Into<String>,
        occurrence_at: i64,
    ) -> Self {
        OccurrenceKey {
            rule_id: rule_id.into(),
            customer_id: customer_id.into(),
            occurrence_at,
        }
    }
}

/// The stored text of the key, as the engine writes it:
/// `<rule>:<occurrence_at>:<customer>` (`a-monthly:1709280000:C17`).
/// Rule ids contain no `:` and the time is a number, so the text splits
/// back at its first two `:` whatever the customer id holds.
impl fmt::Display for OccurrenceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}",
            self.rule_id, self.occurrence_at, self.customer_id
        )
    }
}

/// Who a task is for.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Assignee {
    /// The customer's owner (`customers.owner`) when the follow-up is
    /// recorded.
    Owner,
    /// The active manager with this role who has the fewest tasks not done
    /// (ties: the smallest external id) when the follow-up is recorded.
    Role(String),
    /// The manager with this external id.
    Manager(String),
}

/// What a follow-up does. Stored as JSON in `followups.action`, with the
/// variant's name in `"kind"`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FollowUpAction {
    /// An e-mail to the customer from a template; sent by the outbox.
    Email {
        /// The template's name.
        template: String,
        /// The survey it asks, for a `survey:` follow-up (its context has `survey.links`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        survey: Option<tiercare_types::Survey>,
        /// A coupon code to issue with it (once per pool and customer), shown in the e-mail.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        coupon: Option<CouponRequest>,
    },
    /// An SMS to the customer from a template; sent by the outbox (the row's `channel` is
    /// `sms`). Stored with the kind `sms`.
    Sms {
        /// The template's name.
        template: String,
        /// The survey the SMS asks, for a `survey:` follow-up sent by SMS (kept in
        /// `outbox.survey`; its one link, `survey.link`, is signed when it is sent).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        survey: Option<tiercare_types::Survey>,
    },
    /// A task for a manager, created with the follow-up.
    Task {
        /// Who the task is for.
        assignee: Assignee,
        /// The task's title (already rendered).
        title: String,
        /// When it is due, unix seconds UTC.
        due_at: i64,
        /// What to do, in more words.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    /// A notification e-mail to the customer's owner from a template; sent
    /// by the outbox.
    NotifyOwner {
        /// The template's name.
        template: String,
    },
    /// Sets one custom attribute of the customer (merged into the others),
    /// with the follow-up.
    SetAttribute {
        /// The attribute's name.
        name: String,
        /// Its new value (`null` included).
        value: Value,
    },
    /// Sets several custom attributes of the customer at once (merged into
    /// the others), with the follow-up. Stored with the kind
    /// `set_attribute`, like [`FollowUpAction::SetAttribute`].
    SetAttributes {
        /// Attribute names and their new values.
        values: Map<String, Value>,
    },
    /// Credits points to the customer in the points ledger (source `followup:<id>`), with the
    /// follow-up. Stored with the kind `points`: like an attribute, it is done at once, inside
    /// the database.
    EarnPoints {
        /// The points (more than 0).
        amount: f64,
        /// When they expire, unix seconds UTC, if they do.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expires_at: Option<i64>,
    },
}

impl FollowUpAction {
    /// The action's kind.
    pub fn kind(&self) -> FollowUpKind {
        match self {
            FollowUpAction::Email { .. } => FollowUpKind::Email,
            FollowUpAction::Sms { .. } => FollowUpKind::Sms,
            FollowUpAction::Task { .. } => FollowUpKind::Task,
            FollowUpAction::NotifyOwner { .. } => FollowUpKind::NotifyOwner,
            FollowUpAction::SetAttribute { .. } | FollowUpAction::SetAttributes { .. } => {
                FollowUpKind::SetAttribute
            }
            FollowUpAction::EarnPoints { .. } => FollowUpKind::Points,
        }
    }

    /// What is wrong with the action, if anything.
    fn problem(&self) -> Option<&'static str> {
        let blank = |text: &str| text.trim().is_empty();
        match self {
            FollowUpAction::Email { template, .. } | FollowUpAction::NotifyOwner { template }
                if blank(template) =>
            {
                Some("the e-mail template is empty: name a template")
            }
            FollowUpAction::Sms { template, .. } if blank(template) => {
                Some("the SMS template is empty: name a template")
            }
            FollowUpAction::Task { title, .. } if blank(title) => {
                Some("the task title is empty: give the task a title")
            }
            FollowUpAction::Task {
                assignee: Assignee::Role(name) | Assignee::Manager(name),
                ..
            } if blank(name) => Some("the task's assignee is empty: name a manager or a role"),
            FollowUpAction::SetAttribute { name, .. } if blank(name) => {
                Some("the attribute name is empty: name the attribute to set")
            }
            FollowUpAction::Email {
                coupon: Some(coupon),
                ..
            } if blank(&coupon.pool) => Some("the coupon pool is empty: name a pool"),
            FollowUpAction::EarnPoints { amount, .. } if !amount.is_finite() => {
                Some("the points are not a number")
            }
            FollowUpAction::SetAttributes { values } if values.is_empty() => {
                Some("no attribute to set: name at least one")
            }
            FollowUpAction::SetAttributes { values } if values.keys().any(|name| blank(name)) => {
                Some("an attribute name is empty: name every attribute to set")
            }
            _ => None,
        }
    }
}

/// The kind of a follow-up, as stored in `followups.kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FollowUpKind {
    /// An e-mail to the customer.
    Email,
    /// An SMS to the customer.
    Sms,
    /// A task for a manager.
    Task,
    /// A notification e-mail to the customer's owner.
    NotifyOwner,
    /// A custom attribute set.
    SetAttribute,
    /// Points credited to the customer.
    Points,
}

impl FollowUpKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            FollowUpKind::Email => "email",
            FollowUpKind::Sms => "sms",
            FollowUpKind::Task => "task",
            FollowUpKind::NotifyOwner => "notify_owner",
            FollowUpKind::SetAttribute => "set_attribute",
            FollowUpKind::Points => "points",
        }
    }
}

/// Where a follow-up stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FollowUpStatus {
    /// To be carried out: an e-mail waiting for the outbox.
    Planned,
    /// Carried out. Tasks and attributes are, as soon as they are recorded.
    Done,
    /// Called off after it was planned (with a reason).
    Cancelled,
    /// Decided against (with a reason): a cap, no consent, no assignee, ...
    Skipped,
}

impl FollowUpStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            FollowUpStatus::Planned => "planned",
            FollowUpStatus::Done => "done",
            FollowUpStatus::Cancelled => "cancelled",
            FollowUpStatus::Skipped => "skipped",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "planned" => FollowUpStatus::Planned,
            "done" => FollowUpStatus::Done,
            "cancelled" => FollowUpStatus::Cancelled,
            "skipped" => FollowUpStatus::Skipped,
            _ => return None,
        })
    }
}

impl fmt::Display for FollowUpStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the planner decided about one occurrence.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PlannedFollowUp {
    /// Which occurrence.
    pub key: OccurrenceKey,
    /// When to carry it out, unix seconds UTC: the occurrence time, or
    /// later when the contact policy moved it.
    pub scheduled_at: i64,
    /// What to do.
    pub action: FollowUpAction,
    /// Why the rule fired, in words.
    pub reason: String,
    /// `Some(why)` to record the occurrence as skipped: decided against,
    /// so it is neither carried out nor planned again.
    pub skip: Option<String>,
}

/// What [`FollowUpSession::record`] did with one planned follow-up.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Recorded {
    /// The ledger row's id: new, or the one already there.
    pub followup_id: i64,
    /// Whether the row is new; `false` when the occurrence was already in
    /// the ledger, and nothing was written.
    pub new: bool,
    /// The row's status (for an existing row, as stored).
    pub status: FollowUpStatus,
    /// Why it was skipped or cancelled.
    pub status_reason: Option<String>,
    /// The task created with a new task follow-up.
    pub task_id: Option<i64>,
    /// The outbox e-mail queued with a new e-mail follow-up (by
    /// [`FollowUpSession::record_with_email`]).
    pub outbox_id: Option<i64>,
}

/// What a [`FollowUpSession`] recorded, as returned by
/// [`FollowUpSession::finish`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct FollowUpOutcome {
    /// New ledger rows (skipped ones included).
    pub new: u64,
    /// Occurrences already in the ledger: nothing written.
    pub existing: u64,
    /// New rows recorded as skipped (asked for, or no one to assign or
    /// notify).
    pub skipped: u64,
    /// New rows left planned (e-mails for the outbox).
    pub planned: u64,
    /// Tasks created.
    pub tasks_created: u64,
    /// Customer attributes set.
    pub attributes_set: u64,
}

/// A follow-up as stored in the ledger.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FollowUp {
    /// The row's id.
    pub id: i64,
    /// The occurrence key's stored text.
    pub occurrence_key: String,
    /// The follow-up rule.
    pub rule_id: String,
    /// The customer's external id.
    pub customer_id: String,
    /// When the rule's trigger occurred, unix seconds UTC.
    pub occurrence_at: i64,
    /// When to carry it out, unix seconds UTC.
    pub scheduled_at: i64,
    /// What it does.
    pub action: FollowUpAction,
    /// Why the rule fired.
    pub reason: String,
    /// When the planner decided, unix seconds UTC.
    pub decided_at: i64,
    /// The rule set's version that decided.
    pub ruleset_version: String,
    /// Where it stands.
    pub status: FollowUpStatus,
    /// Why it was skipped or cancelled.
    pub status_reason: Option<String>,
    /// When the status was last set, unix seconds UTC.
    pub status_at: i64,
}

const FOLLOWUP_COLUMNS: &str = "f.id, f.occurrence_key, f.rule_id, c.external_id, \
     f.scheduled_at, f.action, f.reason, f.decided_at, f.ruleset_version, f.status, \
     f.status_reason, f.status_at, f.occurrence_at";

fn followup_from_row(row: &Row<'_>) -> rusqlite::Result<FollowUp> {
    let action = serde_json::from_str(row.get_ref(5)?.as_str()?)
        .map_err(|err| rusqlite::Error::FromSqlConversionFailure(5, Type::Text, Box::new(err)))?;
    Ok(FollowUp {
        id: row.get(0)?,
        occurrence_key: row.get(1)?,
        rule_id: row.get(2)?,
        customer_id: row.get(3)?,
        scheduled_at: row.get(4)?,
        action,
        reason: row.get(6)?,
        decided_at: row.get(7)?,
        ruleset_version: row.get(8)?,
        status: status_column(row, 9)?,
        status_reason: row.get(10)?,
        status_at: row.get(11)?,
        occurrence_at: row.get(12)?,
    })
}

fn status_column(row: &Row<'_>, index: usize) -> rusqlite::Result<FollowUpStatus> {
    let text = row.get_ref(index)?.as_str()?;
    FollowUpStatus::parse(text).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            index,
            Type::Text,
            format!("unknown follow-up status '{text}'").into(),
        )
    })
}

impl Store {
    /// Starts recording follow-ups decided at `decided_at` by the rule set
    /// `ruleset_version`, in one `IMMEDIATE` transaction: see
    /// [`FollowUpSession`]. Dropping the session writes nothing.
    ///
    /// The session holds the database's write lock until it ends: read
    /// what the planner needs ([`Store::for_each_followup_state`]) before,
    /// or through a second [`Store`] on the same file.
    pub fn begin_followups(
        &mut self,
        decided_at: i64,
        ruleset_version: &str,
    ) -> Result<FollowUpSession<'_>, StoreError> {
        let path = self.label.as_path();
        let tx = Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate).at(path)?;
        Ok(FollowUpSession {
            path,
            decided_at,
            ruleset_version: ruleset_version.to_owned(),
            outcome: FollowUpOutcome::default(),
            failed: false,
            tx,
        })
    }

    /// The follow-ups of the customer with `external_id`, latest scheduled
    /// first; [`StoreError::UnknownCustomer`] when there is no such
    /// customer.
    pub fn followups_of(&self, external_id: &str) -> Result<Vec<FollowUp>, StoreError> {
        self.rows_of_customer(
            external_id,
            &format!(
                "SELECT {FOLLOWUP_COLUMNS} FROM followups f JOIN customers c \
                 ON c.id = f.customer_id WHERE f.customer_id = ?1 \
                 ORDER BY f.scheduled_at DESC, f.id DESC"
            ),
            followup_from_row,
        )
    }

    /// The follow-up with the occurrence `key`, if it is in the ledger.
    pub fn followup(&self, key: &OccurrenceKey) -> Result<Option<FollowUp>, StoreError> {
        self.conn
            .prepare_cached(&format!(
                "SELECT {FOLLOWUP_COLUMNS} FROM followups f JOIN customers c \
                 ON c.id = f.customer_id WHERE f.occurrence_key = ?1"
            ))
            .and_then(|mut stmt| {
                stmt.query_row([key.to_string()], followup_from_row)
                    .optional()
            })
            .at(&self.label)
    }

    /// Calls off the planned follow-up `id` at `now`, saying why; its
    /// occurrence stays in the ledger, so it is not planned again.
    /// [`StoreError::UnknownFollowUp`] when there is no such follow-up,
    /// [`StoreError::FollowUpNotPlanned`] when it is not planned any more.
    pub fn cancel_followup(
        &mut self,
        id: i64,
        reason: &str,
        now: i64,
    ) -> Result<FollowUp, StoreError> {
        let path = self.label.as_path();
        let reason = reason.trim();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .at(path)?;
        let status: Option<String> = tx
            .query_row("SELECT status FROM followups WHERE id = ?1", [id], |row| {
                row.get(0)
            })
            .optional()
            .at(path)?;
        match status.as_deref() {
            None => return Err(StoreError::UnknownFollowUp { id }),
            Some("planned") => {}
            Some(other) => {
                return Err(StoreError::FollowUpNotPlanned {
                    id,
                    status: other.to_owned(),
                    wanted: "cancelled",
                });
            }
        }
        let reason = if reason.is_empty() {
            "cancelled"
        } else {
            reason
        };
        tx.execute(
            "UPDATE followups SET status = 'cancelled', status_reason = ?2, status_at = ?3 \
             WHERE id = ?1",
            params![id, reason, now],
        )
        .at(path)?;
        let followup = tx
            .query_row(
                &format!(
                    "SELECT {FOLLOWUP_COLUMNS} FROM followups f JOIN customers c \
                     ON c.id = f.customer_id WHERE f.id = ?1"
                ),
                [id],
                followup_from_row,
            )
            .at(path)?;
        tx.commit().at(path)?;
        Ok(followup)
    }
}

/// Follow-ups being recorded: one `IMMEDIATE` transaction, begun by
/// [`Store::begin_followups`].
///
/// [`record`](FollowUpSession::record) writes one planned follow-up (and
/// its task or attribute); [`finish`](FollowUpSession::finish) commits.
/// Dropping the session writes nothing. A follow-up refused before anything
/// of it is written ([`StoreError::InvalidFollowUp`],
/// [`StoreError::UnknownCustomer`]) leaves the session usable; any other
/// error spoils it: later calls fail with [`StoreError::FollowUpsAborted`]
/// and nothing is written.
pub struct FollowUpSession<'s> {
    path: &'s Path,
    decided_at: i64,
    ruleset_version: String,
    outcome: FollowUpOutcome,
    /// A follow-up failed half-way: nothing more may be written or
    /// committed.
    failed: bool,
    tx: Transaction<'s>,
}

/// Whether the manager `id` is available (active, not on leave) at `now`; an unknown manager
/// counts as available (the task names them as the rule says, as before leave existed).
fn is_available(tx: &Transaction<'_>, id: &str, now: i64) -> rusqlite::Result<bool> {
    let available: Option<bool> = tx
        .prepare_cached(&format!(
            "SELECT {} FROM managers m WHERE m.external_id = ?1",
            crate::availability::available_sql("?2")
        ))?
        .query_row(params![id, now], |row| row.get(0))
        .optional()?;
    Ok(available.unwrap_or(true))
}

/// The available manager with `role` (other than `except`) with the fewest tasks not done.
fn available_with_role(
    tx: &Transaction<'_>,
    role: &str,
    except: Option<&str>,
    now: i64,
) -> rusqlite::Result<Option<String>> {
    tx.prepare_cached(&format!(
        "SELECT m.external_id FROM managers m WHERE {} AND m.role = ?1 \
         AND m.external_id IS NOT ?3 ORDER BY (SELECT count(*) FROM tasks t \
         WHERE t.assignee = m.external_id AND t.status <> 'done'), m.external_id LIMIT 1",
        crate::availability::available_sql("?2")
    ))?
    .query_row(params![role, now, except], |row| row.get(0))
    .optional()
}

impl fmt::Debug for FollowUpSession<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FollowUpSession")
            .field("path", &self.path)
            .field("decided_at", &self.decided_at)
            .field("ruleset_version", &self.ruleset_version)
            .field("outcome", &self.outcome)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

/// The customer as a follow-up needs it.
struct Target {
    rowid: i64,
    owner: Option<String>,
    attributes: String,
}

impl FollowUpSession<'_> {
    /// What has been recorded so far.
    pub fn outcome(&self) -> FollowUpOutcome {
        self.outcome
    }

    /// Whether the occurrence `key` is in the ledger already (recorded before, or earlier in
    /// this session): recording it again writes nothing, so a caller can leave out the costly
    /// parts of a follow-up it would only build to have it refused as existing (a task title
    /// rendered with the templates' context).
    pub fn is_recorded(&self, key: &OccurrenceKey) -> Result<bool, StoreError> {
        self.tx
            .prepare_cached("SELECT 1 FROM followups WHERE occurrence_key = ?1")
            .and_then(|mut stmt| stmt.exists([key.to_string()]))
            .at(self.path)
    }

    /// Records one planned follow-up, unless its occurrence is already in
    /// the ledger (then nothing is written and [`Recorded::new`] is false,
    /// whatever the action).
    ///
    /// A new follow-up is recorded as:
    /// - `skipped` with its reason when [`PlannedFollowUp::skip`] says so,
    ///   or when there is no one to carry it out: a task for the owner or
    ///   a notification of the owner when the customer has no owner, a task
    ///   for a role no active manager has;
    /// - `done` for a task (the task is created, `open`, assigned to the
    ///   resolved manager) or an attribute set (merged into the customer's
    ///   attributes), both in this transaction;
    /// - `planned` for e-mails, which the outbox sends.
    ///
    /// E-mails recorded this way get no outbox row (nothing will send them):
    /// use [`record_with_email`](FollowUpSession::record_with_email) to queue
    /// them.
    pub fn record(&mut self, planned: &PlannedFollowUp) -> Result<Recorded, StoreError> {
        self.record_with_email(planned, None)
    }

    /// Records one planned follow-up as [`record`](FollowUpSession::record)
    /// does and, for a new e-mail follow-up left `planned`, asks `compose`
    /// for the e-mail to its [`EmailRecipient`] (the customer, or the
    /// owner) and queues it in the outbox in this same transaction, due at
    /// the follow-up's scheduled time. When `compose` refuses (no address,
    /// an invalid one, a template that does not render) the follow-up is
    /// recorded `skipped` with its reason instead, and nothing is queued.
    pub fn record_with_email(
        &mut self,
        planned: &PlannedFollowUp,
        compose: Option<&mut ComposeEmail<'_>>,
    ) -> Result<Recorded, StoreError> {
        self.record_with_messages(planned, compose, None)
    }

    /// [`record_with_email`](FollowUpSession::record_with_email), and for a new SMS follow-up
    /// left `planned`, asks `compose_sms` for the SMS to the customer (their phone as stored
    /// in [`EmailRecipient::address`]) and queues it in the outbox on the `sms` channel in
    /// this same transaction. Without `compose_sms` an SMS follow-up is recorded `planned`
    /// with no outbox row, as an e-mail is without `compose`.
    pub fn record_with_messages(
        &mut self,
        planned: &PlannedFollowUp,
        compose: Option<&mut ComposeEmail<'_>>,
        compose_sms: Option<&mut ComposeSms<'_>>,
    ) -> Result<Recorded, StoreError> {
        if self.failed {
            return Err(StoreError::FollowUpsAborted {
                path: self.path.to_path_buf(),
            });
        }
        let key = planned.key.to_string();
        let refuse = |problem: &str| StoreError::InvalidFollowUp {
            key: key.clone(),
            problem: problem.to_owned(),
        };
        if planned.key.rule_id.trim().is_empty() {
            return Err(refuse("the rule id is empty"));
        }
        if planned.key.rule_id.contains(':') {
            return Err(refuse("a rule id cannot contain ':'"));
        }
        if let Some(problem) = planned.action.problem() {
            return Err(refuse(problem));
        }
        if planned
            .skip
            .as_deref()
            .is_some_and(|why| why.trim().is_empty())
        {
            return Err(refuse("a skipped follow-up needs a reason: say why"));
        }
        // Reads first: nothing is written before the follow-up is known to
        // be new and its customer to exist.
        let existing = self
            .tx
            .prepare_cached(
                "SELECT id, status, status_reason FROM followups WHERE occurrence_key = ?1",
            )
            .and_then(|mut stmt| {
                stmt.query_row([&key], |row| {
                    Ok(Recorded {
                        followup_id: row.get(0)?,
                        new: false,
                        status: status_column(row, 1)?,
                        status_reason: row.get(2)?,
                        task_id: None,
                        outbox_id: None,
                    })
                })
                .optional()
            });
        match existing {
            Ok(Some(recorded)) => {
                self.outcome.existing += 1;
                return Ok(recorded);
            }
            Ok(None) => {}
            Err(err) => return Err(self.spoil(err)),
        }
        let target = self
            .tx
            .prepare_cached("SELECT id, owner, attributes FROM customers WHERE external_id = ?1")
            .and_then(|mut stmt| {
                stmt.query_row([&planned.key.customer_id], |row| {
                    Ok(Target {
                        rowid: row.get(0)?,
                        owner: row
                            .get::<_, Option<String>>(1)?
                            .filter(|owner| !owner.trim().is_empty()),
                        attributes: row.get(2)?,
                    })
                })
                .optional()
            });
        let target = match target {
            Ok(Some(target)) => target,
            Ok(None) => {
                return Err(StoreError::UnknownCustomer {
                    id: planned.key.customer_id.clone(),
                });
            }
            Err(err) => return Err(self.spoil(err)),
        };
        match self.write(planned, &key, &target, compose, compose_sms) {
            Ok(recorded) => {
                let outcome = &mut self.outcome;
                outcome.new += 1;
                match recorded.status {
                    FollowUpStatus::Skipped => outcome.skipped += 1,
                    FollowUpStatus::Planned => outcome.planned += 1,
                    FollowUpStatus::Done | FollowUpStatus::Cancelled => {}
                }
                if recorded.task_id.is_some() {
                    outcome.tasks_created += 1;
                }
                if recorded.status == FollowUpStatus::Done {
                    outcome.attributes_set += match &planned.action {
                        FollowUpAction::SetAttribute { .. } => 1,
                        FollowUpAction::SetAttributes { values } => values.len() as u64,
                        _ => 0,
                    };
                }
                Ok(recorded)
            }
            Err(err) => Err(self.spoil(err)),
        }
    }

    /// Marks the session failed and maps `err`.
    fn spoil(&mut self, err: rusqlite::Error) -> StoreError {
        self.failed = true;
        StoreError::at(self.path, err)
    }

    /// Writes a new follow-up and what it does.
    fn write(
        &self,
        planned: &PlannedFollowUp,
        key: &str,
        target: &Target,
        compose: Option<&mut ComposeEmail<'_>>,
        compose_sms: Option<&mut ComposeSms<'_>>,
    ) -> rusqlite::Result<Recorded> {
        let tx = &self.tx;
        // Who carries the action out, or why no one can.
        let mut skip = planned.skip.as_deref().map(|why| why.trim().to_owned());
        let mut assignee = None;
        if skip.is_none() {
            match &planned.action {
                FollowUpAction::Task {
                    assignee: wanted, ..
                } => match wanted {
                    Assignee::Owner => match &target.owner {
                        Some(owner) => assignee = Some(owner.clone()),
                        None => {
                            skip = Some("the customer has no owner to assign the task to".into())
                        }
                    },
                    Assignee::Manager(id) => assignee = Some(id.trim().to_owned()),
                    Assignee::Role(role) => {
                        let role = role.trim();
                        assignee = available_with_role(tx, role, None, self.decided_at)?;
                        if assignee.is_none() {
                            skip = Some(format!(
                                "no available manager has the role '{role}' to assign the task to"
                            ));
                        }
                    }
                },
                FollowUpAction::NotifyOwner { .. } if target.owner.is_none() => {
                    skip = Some("the customer has no owner to notify".into());
                }
                FollowUpAction::EarnPoints { amount, .. } if *amount <= 0.0 => {
                    skip = Some(format!(
                        "the rule earns no points for this customer ({amount})"
                    ));
                }
                _ => {}
            }
        }
        // A manager on leave or inactive gets no new task: it goes to an available manager
        // of their role (fewest open tasks), or is skipped with the reason.
        if let Some(away) = assignee.clone()
            && !is_available(tx, &away, self.decided_at)?
        {
            let role: Option<String> = tx
                .prepare_cached("SELECT role FROM managers WHERE external_id = ?1")?
                .query_row([&away], |row| row.get(0))
                .optional()?
                .flatten();
            assignee = match role {
                Some(role) => available_with_role(tx, &role, Some(&away), self.decided_at)?,
                None => None,
            };
            if assignee.is_none() {
                skip = Some(format!(
                    "the assignee '{away}' is on leave or inactive, and no available manager \
                     of their role can take the task"
                ));
            }
        }
        // An e-mail is composed (addressed and rendered) before anything is
        // written, so one that cannot be becomes a skip with its reason.
        // The coupon it carries is chosen first, writing nothing: none left is a skip.
        let mut coupon = None;
        if let (
            None,
            FollowUpAction::Email {
                coupon: Some(request),
                ..
            },
        ) = (&skip, &planned.action)
        {
            match coupons::choose(tx, request, target.rowid, planned.scheduled_at)? {
                Ok(choice) => coupon = Some(choice),
                Err(why) => skip = Some(why),
            }
        }
        let mut email = None;
        let mut channel = Channel::Email;
        if let (None, FollowUpAction::Sms { template, survey }, Some(compose_sms)) =
            (&skip, &planned.action, compose_sms)
        {
            channel = Channel::Sms;
            let mut to =
                outbox::sms_recipient(tx, target.rowid, &planned.key.customer_id, template)?;
            to.survey.clone_from(survey);
            match compose_sms(&to) {
                Ok(composed) => email = Some((to, composed)),
                Err(why) => skip = Some(why),
            }
        }
        if let (None, Some(compose)) = (&skip, compose) {
            let kind = match &planned.action {
                FollowUpAction::Email { template, .. } => Some((RecipientKind::Customer, template)),
                FollowUpAction::NotifyOwner { template } => Some((RecipientKind::Owner, template)),
                FollowUpAction::Sms { .. }
                | FollowUpAction::Task { .. }
                | FollowUpAction::SetAttribute { .. }
                | FollowUpAction::SetAttributes { .. }
                | FollowUpAction::EarnPoints { .. } => None,
            };
            if let Some((kind, template)) = kind {
                let to = outbox::recipient(
                    tx,
                    kind,
                    target.rowid,
                    &planned.key.customer_id,
                    template.trim(),
                    target.owner.as_deref(),
                )?;
                let mut to = EmailRecipient {
                    coupon: coupon.as_ref().map(|choice| choice.coupon().clone()),
                    ..to
                };
                if let FollowUpAction::Email { survey, .. } = &planned.action {
                    to.survey.clone_from(survey);
                }
                match compose(&to) {
                    Ok(composed) => email = Some((to, composed)),
                    Err(why) => skip = Some(why),
                }
            }
        }
        let status = match (&skip, &planned.action) {
            (Some(_), _) => FollowUpStatus::Skipped,
            (
                None,
                FollowUpAction::Task { .. }
                | FollowUpAction::SetAttribute { .. }
                | FollowUpAction::SetAttributes { .. }
                | FollowUpAction::EarnPoints { .. },
            ) => FollowUpStatus::Done,
            (
                None,
                FollowUpAction::Email { .. }
                | FollowUpAction::NotifyOwner { .. }
                | FollowUpAction::Sms { .. },
            ) => FollowUpStatus::Planned,
        };
        let action = serde_json::to_string(&planned.action)
            .map_err(|err| rusqlite::Error::ToSqlConversionFailure(Box::new(err)))?;
        let followup_id: i64 = tx
            .prepare_cached(
                "INSERT INTO followups (occurrence_key, rule_id, customer_id, scheduled_at, \
                 kind, action, reason, decided_at, ruleset_version, status, status_reason, \
                 status_at, occurrence_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?8, ?12) RETURNING id",
            )?
            .query_row(
                params![
                    key,
                    planned.key.rule_id,
                    target.rowid,
                    planned.scheduled_at,
                    planned.action.kind().as_str(),
                    action,
                    planned.reason,
                    self.decided_at,
                    self.ruleset_version,
                    status.as_str(),
                    skip,
                    planned.key.occurrence_at,
                ],
                |row| row.get(0),
            )?;
        if let (FollowUpStatus::Planned, Some(choice)) = (status, &coupon) {
            coupons::issue(tx, choice, target.rowid, followup_id, &planned.key.rule_id)?;
        }
        let mut outbox_id = None;
        if let (FollowUpStatus::Planned, Some((to, composed))) = (status, &email) {
            outbox_id = Some(outbox::enqueue(
                tx,
                channel,
                followup_id,
                target.rowid,
                &planned.key.rule_id,
                to,
                composed,
                planned.scheduled_at,
                self.decided_at,
            )?);
        }
        let mut task_id = None;
        if status == FollowUpStatus::Done {
            match &planned.action {
                FollowUpAction::Task {
                    title,
                    due_at,
                    note,
                    ..
                } => {
                    task_id = Some(
                        tx.prepare_cached(
                            "INSERT INTO tasks (followup_id, customer_id, assignee, title, \
                             due_at, created_at, note) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
                             RETURNING id",
                        )?
                        .query_row(
                            params![
                                followup_id,
                                target.rowid,
                                assignee,
                                title.trim(),
                                due_at,
                                self.decided_at,
                                note,
                            ],
                            |row| row.get(0),
                        )?,
                    );
                    crate::webhooks::task_changed(
                        tx,
                        crate::webhooks::WebhookEventType::TaskCreated,
                        task_id.unwrap_or_default(),
                        self.decided_at,
                    )?;
                }
                FollowUpAction::SetAttribute { .. } | FollowUpAction::SetAttributes { .. } => {
                    let mut attributes: Map<String, Value> =
                        match serde_json::from_str(&target.attributes) {
                            Ok(Value::Object(map)) => map,
                            _ => Map::new(),
                        };
                    match &planned.action {
                        FollowUpAction::SetAttribute { name, value } => {
                            attributes.insert(name.trim().to_owned(), value.clone());
                        }
                        FollowUpAction::SetAttributes { values } => {
                            for (name, value) in values {
                                attributes.insert(name.trim().to_owned(), value.clone());
                            }
                        }
                        _ => {}
                    }
                    let text = serde_json::to_string(&attributes)
                        .map_err(|err| rusqlite::Error::ToSqlConversionFailure(Box::new(err)))?;
                    tx.prepare_cached(
                        "UPDATE customers SET attributes = ?2, updated_at = ?3 WHERE id = ?1",
                    )?
                    .execute(params![target.rowid, text, self.decided_at])?;
                }
                FollowUpAction::EarnPoints { amount, expires_at } => {
                    crate::points::book(
                        tx,
                        target.rowid,
                        &format!("followup:{followup_id}"),
                        planned.scheduled_at,
                        *amount,
                        *expires_at,
                        Some(&planned.key.rule_id),
                    )?;
                }
                FollowUpAction::Email { .. }
                | FollowUpAction::NotifyOwner { .. }
                | FollowUpAction::Sms { .. } => {}
            }
        }
        Ok(Recorded {
            followup_id,
            new: true,
            status,
            status_reason: skip,
            task_id,
            outbox_id,
        })
    }

    /// Commits everything recorded and says what it was.
    pub fn finish(self) -> Result<FollowUpOutcome, StoreError> {
        if self.failed {
            return Err(StoreError::FollowUpsAborted {
                path: self.path.to_path_buf(),
            });
        }
        self.tx.commit().at(self.path)?;
        Ok(self.outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn occurrence_keys_are_written_as_the_engine_writes_them() {
        let key = OccurrenceKey::new("a-monthly", "C17", 1_709_280_000);
        assert_eq!(key.to_string(), "a-monthly:1709280000:C17");
        assert_eq!(
            OccurrenceKey::new("r", "x:1:y", -5).to_string(),
            "r:-5:x:1:y"
        );
    }

    #[test]
    fn actions_are_stored_as_json_with_their_kind() {
        let task = FollowUpAction::Task {
            assignee: Assignee::Role("senior".into()),
            title: "Call".into(),
            due_at: 5,
            note: None,
        };
        let json = serde_json::to_value(&task).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"kind": "task", "assignee": {"role": "senior"}, "title": "Call", "due_at": 5})
        );
        assert_eq!(
            serde_json::from_value::<FollowUpAction>(json).unwrap(),
            task
        );
        let owner = serde_json::to_value(Assignee::Owner).unwrap();
        assert_eq!(owner, "owner");
    }
}
