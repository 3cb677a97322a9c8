//! Outgoing webhooks: the durable queue (migration 13).
//!
//! The endpoints configured in `tiercare.toml` are copied into `webhook_endpoints` by every
//! command that writes ([`Store::sync_webhook_endpoints`]), so whoever records something an
//! endpoint wants to hear about (a CLI command or the daemon) queues the event in the same
//! transaction: one `webhook_events` row with the body's data fixed, and one
//! `webhook_deliveries` row per endpoint that subscribed to its type. Nothing is queued when no
//! endpoint wants the type, and the check is one lookup in a table of a few rows.
//!
//! The enqueue calls, one per write path that reports something:
//! - [`tier_changes`]: every tier change of an assessment, at its commit (`tiers.rs`);
//! - [`email_changed`]: an e-mail (or an SMS: `sms.*`) sent or failed, from the outbox's
//!   state-change event (`outbox.rs`); [`email_bounced`] for the bounce recording;
//! - [`task_changed`]: a task created (by a follow-up or by hand) or done (`followups.rs`,
//!   `tasks.rs`);
//! - [`customer_unsubscribed`]: for the unsubscribe paths.
//!
//! The dispatcher reads each endpoint's oldest queued delivery ([`Store::webhook_heads`]), so
//! an endpoint gets its events in the order they were recorded, and records each attempt's
//! outcome ([`Store::record_webhook_attempt`]). A delivery is `queued` until an attempt is
//! answered with a 2xx (`delivered`) or its endpoint has failed for longer than the configured
//! age (`dead`, kept for `tiercare status` and `tiercare webhooks retry`). Nothing is marked
//! before the HTTP request, so a crash during one leaves the row queued: it is sent again after
//! a restart with the same event id.

use std::fmt;

use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};

use crate::db::Store;
use crate::error::{AtPath, StoreError};

/// The kinds of event a webhook endpoint can subscribe to (its `type` in the body).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WebhookEventType {
    /// A customer's tier changed in an assessment (`tier.changed`).
    TierChanged,
    /// An e-mail was accepted by the mail server (`email.sent`).
    EmailSent,
    /// An e-mail failed for good (`email.failed`).
    EmailFailed,
    /// A sent e-mail bounced (`email.bounced`).
    EmailBounced,
    /// An SMS was accepted by the SMS provider (`sms.sent`).
    SmsSent,
    /// An SMS failed for good (`sms.failed`).
    SmsFailed,
    /// A customer unsubscribed (`customer.unsubscribed`).
    CustomerUnsubscribed,
    /// A task was created for a manager (`task.created`).
    TaskCreated,
    /// A task was marked done (`task.done`).
    TaskDone,
}

impl WebhookEventType {
    /// Every event type, in the order the README documents them.
    pub const ALL: [WebhookEventType; 9] = [
        WebhookEventType::TierChanged,
        WebhookEventType::EmailSent,
        WebhookEventType::EmailFailed,
        WebhookEventType::EmailBounced,
        WebhookEventType::SmsSent,
        WebhookEventType::SmsFailed,
        WebhookEventType::CustomerUnsubscribed,
        WebhookEventType::TaskCreated,
        WebhookEventType::TaskDone,
    ];

    /// The type's name, as in the body's `type` and in `tiercare.toml`.
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookEventType::TierChanged => "tier.changed",
            WebhookEventType::EmailSent => "email.sent",
            WebhookEventType::EmailFailed => "email.failed",
            WebhookEventType::EmailBounced => "email.bounced",
            WebhookEventType::SmsSent => "sms.sent",
            WebhookEventType::SmsFailed => "sms.failed",
            WebhookEventType::CustomerUnsubscribed => "customer.unsubscribed",
            WebhookEventType::TaskCreated => "task.created",
            WebhookEventType::TaskDone => "task.done",
        }
    }

    /// The type named `name`, if any.
    pub fn parse(name: &str) -> Option<WebhookEventType> {
        WebhookEventType::ALL
            .into_iter()
            .find(|kind| kind.as_str() == name)
    }
}

impl fmt::Display for WebhookEventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An endpoint as the queue knows it: its name (the key of its deliveries), its URL and the
/// event types it wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookSubscription {
    /// The endpoint's name in `tiercare.toml`.
    pub name: String,
    /// Its `http://` or `https://` URL.
    pub url: String,
    /// The event types it subscribed to.
    pub events: Vec<WebhookEventType>,
}

/// A queued delivery at the head of its endpoint's queue, with the event it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookDelivery {
    /// The delivery's row id.
    pub id: i64,
    /// The endpoint's name.
    pub endpoint: String,
    /// The event's id (`evt_` and 32 hex digits): the `webhook-id` of every attempt.
    pub event_id: String,
    /// The event's type.
    pub event_type: String,
    /// When the event happened, unix seconds UTC.
    pub occurred_at: i64,
    /// The body's `data` object as JSON text, fixed when the event was recorded.
    pub data: String,
    /// Attempts made so far.
    pub attempts: u32,
    /// When the first attempt failed, unix seconds UTC (the start of the give-up age).
    pub failing_since: Option<i64>,
    /// When it may be tried (again); `None` at once.
    pub next_attempt_at: Option<i64>,
}

impl WebhookDelivery {
    /// The request body: `{"type", "timestamp", "data"}`, the same bytes at every attempt.
    pub fn body(&self) -> String {
        let timestamp = chrono::DateTime::from_timestamp(self.occurred_at, 0)
            .unwrap_or_default()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        format!(
            "{{\"type\":{},\"timestamp\":{},\"data\":{}}}",
            serde_json::Value::from(self.event_type.as_str()),
            serde_json::Value::from(timestamp),
            self.data
        )
    }
}

/// What an attempt at a delivery came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookAttempt {
    /// The endpoint answered with a 2xx.
    Delivered,
    /// It failed (`error`: what happened, without the response body) and is tried again at
    /// `retry_at`.
    Failed {
        /// What went wrong: a status code or a connection error.
        error: String,
        /// When to try again, unix seconds UTC.
        retry_at: i64,
    },
    /// It failed and the endpoint has been failing for longer than its give-up age: `dead`.
    Dead {
        /// What went wrong last.
        error: String,
    },
}

/// One endpoint's queue, for `tiercare status`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct WebhookEndpointSummary {
    /// The endpoint's name.
    pub endpoint: String,
    /// Whether it is still configured (deliveries of a removed endpoint stay, unsent).
    pub configured: bool,
    /// Deliveries waiting (including a failing one).
    pub queued: u64,
    /// Deliveries answered with a 2xx.
    pub delivered: u64,
    /// Deliveries given up on.
    pub dead: u64,
    /// The head of the queue, when its last attempt failed.
    pub failing: Option<WebhookFailure>,
}

/// The failing head of an endpoint's queue.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct WebhookFailure {
    /// The event's id.
    pub event_id: String,
    /// Attempts made.
    pub attempts: u32,
    /// The last attempt's error (a status code or a connection error).
    pub last_error: String,
    /// When it is tried again, unix seconds UTC.
    pub next_attempt_at: Option<i64>,
}

/// The condition "some endpoint wants events of type `?1`".
const WANTED: &str = "EXISTS (SELECT 1 FROM webhook_endpoints e, json_each(e.events) j \
                      WHERE j.value = ?1)";

/// The highest event rowid so far: events queued after it are the new ones.
fn last_event(conn: &Connection) -> rusqlite::Result<i64> {
    conn.prepare_cached("SELECT coalesce(max(id), 0) FROM webhook_events")?
        .query_row([], |row| row.get(0))
}

/// Queues one delivery per endpoint subscribed to `kind` for every event after the rowid
/// `since` (all of type `kind`: the endpoints are chosen once, not per event).
fn fan_out(conn: &Connection, since: i64, at: i64, kind: WebhookEventType) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO webhook_deliveries (event, endpoint, created_at, updated_at) \
         SELECT w.id, e.name, ?2, ?2 FROM (SELECT name FROM webhook_endpoints \
         WHERE EXISTS (SELECT 1 FROM json_each(events) j WHERE j.value = ?3)) AS e \
         JOIN webhook_events w WHERE w.id > ?1",
    )?
    .execute(params![since, at, kind.as_str()])?;
    Ok(())
}

/// Queues the events `select` inserts (an `INSERT INTO webhook_events ... SELECT` whose `?1`
/// is the type and whose other parameters are `rest`), with their deliveries.
fn enqueue_with(
    conn: &Connection,
    kind: WebhookEventType,
    at: i64,
    insert: &str,
    rest: &[&dyn rusqlite::ToSql],
) -> rusqlite::Result<()> {
    let wanted: bool = conn
        .prepare_cached(&format!("SELECT {WANTED}"))?
        .query_row([kind.as_str()], |row| row.get(0))?;
    if !wanted {
        return Ok(());
    }
    let since = last_event(conn)?;
    let kind_name = kind.as_str();
    let mut values: Vec<&dyn rusqlite::ToSql> = vec![&kind_name];
    values.extend_from_slice(rest);
    if conn
        .prepare_cached(insert)?
        .execute(rusqlite::params_from_iter(values))?
        > 0
    {
        fan_out(conn, since, at, kind)?;
    }
    Ok(())
}

/// The start of every insert of events: a fresh event id, the type `?1`.
const INSERT_EVENT: &str = "INSERT INTO webhook_events (event_id, type, occurred_at, data) \
                            SELECT 'evt_' || lower(hex(randomblob(16))), ?1";

/// Queues a `tier.changed` event for every tier change of the assessment `assessment_id`,
/// in the assessment's transaction (call it after its last decision is written).
///
/// The assessment's rows are the last of `tier_history` (it holds the write lock), so they are
/// found by reading the table backwards down to the first row of an earlier assessment.
pub(crate) fn tier_changes(conn: &Connection, assessment_id: i64, at: i64) -> rusqlite::Result<()> {
    enqueue_with(
        conn,
        WebhookEventType::TierChanged,
        at,
        &format!(
            "{INSERT_EVENT}, h.at, json_object('customer', c.external_id, \
             'from_tier', h.from_tier, 'to_tier', h.to_tier, 'assessment', h.assessment_id) \
             FROM tier_history h JOIN customers c ON c.id = h.customer_id \
             WHERE h.id > coalesce((SELECT id FROM tier_history WHERE assessment_id <> ?2 \
             ORDER BY id DESC LIMIT 1), 0) AND h.assessment_id = ?2 ORDER BY h.id"
        ),
        &[&assessment_id],
    )
}

/// The data of an e-mail event: the outbox row `?2`, never its address or contents.
const EMAIL_DATA: &str = "?3, json_object('email', o.id, 'message_id', o.message_id, \
     'customer', c.external_id, 'recipient', o.recipient_kind, 'rule', o.rule_id, \
     'template', o.template, 'attempts', o.attempts) \
     FROM outbox o LEFT JOIN customers c ON c.id = o.customer_id WHERE o.id = ?2";

/// The data of an SMS event: the outbox row `?2`, never its phone number or text.
const SMS_DATA: &str = "?3, json_object('sms', o.id, 'customer', c.external_id, \
     'rule', o.rule_id, 'template', o.template, 'attempts', o.attempts) \
     FROM outbox o LEFT JOIN customers c ON c.id = o.customer_id WHERE o.id = ?2";

/// Queues `email.sent` or `email.failed` (`sms.sent` or `sms.failed` for a row on the `sms`
/// channel) when the outbox row `outbox_id` moves `to` one of those states (its name, as
/// `OutboxState::as_str` gives it; other states report nothing), in the state change's
/// transaction.
pub(crate) fn email_changed(
    conn: &Connection,
    outbox_id: i64,
    to: &str,
    now: i64,
) -> rusqlite::Result<()> {
    if !matches!(to, "sent" | "failed") {
        return Ok(());
    }
    let channel: Option<String> = conn
        .prepare_cached("SELECT channel FROM outbox WHERE id = ?1")?
        .query_row([outbox_id], |row| row.get(0))
        .optional()?;
    let (kind, data) = match (channel.as_deref(), to) {
        (Some("sms"), "sent") => (WebhookEventType::SmsSent, SMS_DATA),
        (Some("sms"), _) => (WebhookEventType::SmsFailed, SMS_DATA),
        (_, "sent") => (WebhookEventType::EmailSent, EMAIL_DATA),
        _ => (WebhookEventType::EmailFailed, EMAIL_DATA),
    };
    enqueue_with(
        conn,
        kind,
        now,
        &format!("{INSERT_EVENT}, {data}"),
        &[&outbox_id, &now],
    )
}

/// Queues `email.bounced` for the outbox row `outbox_id`, in the transaction that records the
/// bounce (for the bounce recording: one call beside its write).
pub(crate) fn email_bounced(conn: &Connection, outbox_id: i64, now: i64) -> rusqlite::Result<()> {
    enqueue_with(
        conn,
        WebhookEventType::EmailBounced,
        now,
        &format!("{INSERT_EVENT}, {EMAIL_DATA}"),
        &[&outbox_id, &now],
    )
}

/// Queues `customer.unsubscribed` for the customer with rowid `customer` (`source`: where the
/// request came from, such as `token` or `mailto`; never an address), in the transaction that
/// records the unsubscribe (for the unsubscribe paths: one call beside their write).
pub(crate) fn customer_unsubscribed(
    conn: &Connection,
    customer: i64,
    source: &str,
    now: i64,
) -> rusqlite::Result<()> {
    enqueue_with(
        conn,
        WebhookEventType::CustomerUnsubscribed,
        now,
        &format!(
            "{INSERT_EVENT}, ?3, json_object('customer', c.external_id, 'source', ?4) \
             FROM customers c WHERE c.id = ?2"
        ),
        &[&customer, &now, &source],
    )
}

/// Queues `task.created` or `task.done` (`kind`) for the task `task_id`, in the task write's
/// transaction. The title and note are left out: they may quote the customer.
pub(crate) fn task_changed(
    conn: &Connection,
    kind: WebhookEventType,
    task_id: i64,
    now: i64,
) -> rusqlite::Result<()> {
    enqueue_with(
        conn,
        kind,
        now,
        &format!(
            "{INSERT_EVENT}, ?3, json_object('task', t.id, 'customer', c.external_id, \
             'assignee', t.assignee, 'due_at', strftime('%Y-%m-%dT%H:%M:%SZ', t.due_at, 'unixepoch'), \
             'rule', f.rule_id, 'done_by', t.done_by) \
             FROM tasks t JOIN customers c ON c.id = t.customer_id \
             LEFT JOIN followups f ON f.id = t.followup_id WHERE t.id = ?2"
        ),
        &[&task_id, &now],
    )
}

const DELIVERY_COLUMNS: &str = "d.id, d.endpoint, w.event_id, w.type, w.occurred_at, w.data, \
                                d.attempts, d.failing_since, d.next_attempt_at";

fn delivery_row(row: &Row<'_>) -> rusqlite::Result<WebhookDelivery> {
    Ok(WebhookDelivery {
        id: row.get(0)?,
        endpoint: row.get(1)?,
        event_id: row.get(2)?,
        event_type: row.get(3)?,
        occurred_at: row.get(4)?,
        data: row.get(5)?,
        attempts: row.get(6)?,
        failing_since: row.get(7)?,
        next_attempt_at: row.get(8)?,
    })
}

impl Store {
    /// Makes the queue's endpoints those of `tiercare.toml`, in one `IMMEDIATE` transaction,
    /// writing only when they differ. Deliveries already queued stay (a removed endpoint's are
    /// kept, unsent, until it is configured again).
    pub fn sync_webhook_endpoints(
        &mut self,
        endpoints: &[WebhookSubscription],
    ) -> Result<(), StoreError> {
        let path = self.label.as_path();
        let wanted: Vec<(String, String, String)> = endpoints
            .iter()
            .map(|endpoint| {
                let events: Vec<&str> = endpoint.events.iter().map(|kind| kind.as_str()).collect();
                (
                    endpoint.name.clone(),
                    endpoint.url.clone(),
                    serde_json::to_string(&events).expect("strings serialise"),
                )
            })
            .collect();
        let read = |conn: &Connection| -> rusqlite::Result<Vec<(String, String, String)>> {
            conn.prepare("SELECT name, url, events FROM webhook_endpoints ORDER BY name")?
                .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?
                .collect()
        };
        let mut sorted = wanted.clone();
        sorted.sort();
        if read(&self.conn).at(path)? == sorted {
            return Ok(());
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .at(path)?;
        tx.execute("DELETE FROM webhook_endpoints", []).at(path)?;
        for (name, url, events) in &wanted {
            tx.execute(
                "INSERT INTO webhook_endpoints (name, url, events) VALUES (?1, ?2, ?3)",
                params![name, url, events],
            )
            .at(path)?;
        }
        tx.commit().at(path)
    }

    /// The oldest queued delivery of each configured endpoint (due or not), so each endpoint
    /// gets its events in order. The caller sends those whose `next_attempt_at` has come.
    pub fn webhook_heads(&self) -> Result<Vec<WebhookDelivery>, StoreError> {
        self.conn
            .prepare_cached(&format!(
                "SELECT {DELIVERY_COLUMNS} FROM (SELECT min(id) AS id FROM webhook_deliveries \
                 WHERE state = 'queued' GROUP BY endpoint) AS head \
                 JOIN webhook_deliveries d ON d.id = head.id \
                 JOIN webhook_events w ON w.id = d.event \
                 JOIN webhook_endpoints e ON e.name = d.endpoint ORDER BY d.id"
            ))
            .and_then(|mut stmt| stmt.query_map([], delivery_row)?.collect())
            .at(&self.label)
    }

    /// Records the outcome of an attempt at the delivery `id`, made at `now`, in one
    /// `IMMEDIATE` transaction. A delivery no longer queued (retried or given up meanwhile by
    /// hand) is left alone.
    pub fn record_webhook_attempt(
        &mut self,
        id: i64,
        attempt: &WebhookAttempt,
        now: i64,
    ) -> Result<(), StoreError> {
        let path = self.label.as_path();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .at(path)?;
        let (state, error, retry_at) = match attempt {
            WebhookAttempt::Delivered => ("delivered", None, None),
            WebhookAttempt::Failed { error, retry_at } => ("queued", Some(error), Some(*retry_at)),
            WebhookAttempt::Dead { error } => ("dead", Some(error), None),
        };
        tx.prepare_cached(
            "UPDATE webhook_deliveries SET state = ?2, attempts = attempts + 1, updated_at = ?3, \
             last_error = coalesce(?4, last_error), next_attempt_at = ?5, \
             failing_since = CASE WHEN ?4 IS NULL THEN failing_since \
             ELSE coalesce(failing_since, ?3) END, \
             delivered_at = CASE WHEN ?2 = 'delivered' THEN ?3 END \
             WHERE id = ?1 AND state = 'queued'",
        )
        .and_then(|mut stmt| stmt.execute(params![id, state, now, error, retry_at]))
        .at(path)?;
        tx.commit().at(path)
    }

    /// Each endpoint's queue (configured endpoints, and any other with deliveries), by name.
    pub fn webhook_summary(&self) -> Result<Vec<WebhookEndpointSummary>, StoreError> {
        let path = self.label.as_path();
        let mut summaries: Vec<WebhookEndpointSummary> = self
            .conn
            .prepare(
                "SELECT n.name, n.name IN (SELECT name FROM webhook_endpoints), \
                 (SELECT count(*) FROM webhook_deliveries WHERE endpoint = n.name AND state = 'queued'), \
                 (SELECT count(*) FROM webhook_deliveries WHERE endpoint = n.name AND state = 'delivered'), \
                 (SELECT count(*) FROM webhook_deliveries WHERE endpoint = n.name AND state = 'dead') \
                 FROM (SELECT name FROM webhook_endpoints UNION \
                       SELECT DISTINCT endpoint FROM webhook_deliveries) AS n ORDER BY n.name",
            )
            .and_then(|mut stmt| {
                stmt.query_map([], |row| {
                    Ok(WebhookEndpointSummary {
                        endpoint: row.get(0)?,
                        configured: row.get(1)?,
                        queued: row.get::<_, i64>(2)?.unsigned_abs(),
                        delivered: row.get::<_, i64>(3)?.unsigned_abs(),
                        dead: row.get::<_, i64>(4)?.unsigned_abs(),
                        failing: None,
                    })
                })?
                .collect()
            })
            .at(path)?;
        let mut head = self
            .conn
            .prepare_cached(
                "SELECT w.event_id, d.attempts, d.last_error, d.next_attempt_at \
                 FROM webhook_deliveries d JOIN webhook_events w ON w.id = d.event \
                 WHERE d.id = (SELECT min(id) FROM webhook_deliveries \
                               WHERE endpoint = ?1 AND state = 'queued') AND d.attempts > 0",
            )
            .at(path)?;
        for summary in &mut summaries {
            summary.failing = head
                .query_row([&summary.endpoint], |row| {
                    Ok(WebhookFailure {
                        event_id: row.get(0)?,
                        attempts: row.get(1)?,
                        last_error: row.get::<_, Option<String>>(2)?.unwrap_or_default(),
                        next_attempt_at: row.get(3)?,
                    })
                })
                .optional()
                .at(path)?;
        }
        Ok(summaries)
    }

    /// The deliveries of `endpoint` (all endpoints when `None`) in `state` (any when `None`),
    /// newest first, at most `limit`.
    pub fn webhook_deliveries(
        &self,
        endpoint: Option<&str>,
        state: Option<&str>,
        limit: u32,
    ) -> Result<Vec<(WebhookDelivery, String, Option<String>)>, StoreError> {
        self.conn
            .prepare(&format!(
                "SELECT {DELIVERY_COLUMNS}, d.state, d.last_error FROM webhook_deliveries d \
                 JOIN webhook_events w ON w.id = d.event \
                 WHERE (?1 IS NULL OR d.endpoint = ?1) AND (?2 IS NULL OR d.state = ?2) \
                 ORDER BY d.id DESC LIMIT ?3"
            ))
            .and_then(|mut stmt| {
                stmt.query_map(params![endpoint, state, limit], |row| {
                    Ok((delivery_row(row)?, row.get(9)?, row.get(10)?))
                })?
                .collect()
            })
            .at(&self.label)
    }

    /// Queues the dead deliveries of `endpoint` (all endpoints when `None`) again, due at once
    /// with their give-up age started afresh; returns how many.
    pub fn retry_dead_webhooks(
        &mut self,
        endpoint: Option<&str>,
        now: i64,
    ) -> Result<u64, StoreError> {
        let path = self.label.as_path();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .at(path)?;
        let changed = tx
            .execute(
                "UPDATE webhook_deliveries SET state = 'queued', next_attempt_at = NULL, \
                 failing_since = NULL, updated_at = ?2 \
                 WHERE state = 'dead' AND (?1 IS NULL OR endpoint = ?1)",
                params![endpoint, now],
            )
            .at(path)?;
        tx.commit().at(path)?;
        Ok(changed as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subscribed(store: &mut Store, events: &[WebhookEventType]) {
        store
            .sync_webhook_endpoints(&[WebhookSubscription {
                name: "crm".into(),
                url: "http://127.0.0.1:9/hook".into(),
                events: events.to_vec(),
            }])
            .unwrap();
    }

    fn customer(store: &Store, external_id: &str) -> i64 {
        store
            .conn
            .query_row(
                "INSERT INTO customers (external_id, email, created_at, updated_at) \
                 VALUES (?1, 'someone@example.com', 0, 0) RETURNING id",
                [external_id],
                |row| row.get(0),
            )
            .unwrap()
    }

    #[test]
    fn events_are_queued_only_for_endpoints_that_want_them() {
        let mut store = Store::open_in_memory().unwrap();
        let rowid = customer(&store, "C1");
        customer_unsubscribed(&store.conn, rowid, "token", 10).unwrap();
        assert!(store.webhook_heads().unwrap().is_empty(), "no endpoint yet");

        subscribed(&mut store, &[WebhookEventType::CustomerUnsubscribed]);
        task_changed(&store.conn, WebhookEventType::TaskDone, 1, 10).unwrap();
        customer_unsubscribed(&store.conn, rowid, "token", 10).unwrap();
        let heads = store.webhook_heads().unwrap();
        assert_eq!(heads.len(), 1);
        assert_eq!(heads[0].event_type, "customer.unsubscribed");
        assert!(heads[0].event_id.starts_with("evt_") && heads[0].event_id.len() == 36);
        let body: serde_json::Value = serde_json::from_str(&heads[0].body()).unwrap();
        assert_eq!(
            body,
            serde_json::json!({
                "type": "customer.unsubscribed",
                "timestamp": "1970-01-01T00:00:10Z",
                "data": {"customer": "C1", "source": "token"},
            })
        );
        assert!(!heads[0].body().contains('@'), "no address in a body");
    }

    #[test]
    fn an_endpoint_gets_its_events_in_order_and_dead_ones_can_be_retried() {
        let mut store = Store::open_in_memory().unwrap();
        let rowid = customer(&store, "C1");
        subscribed(&mut store, &[WebhookEventType::CustomerUnsubscribed]);
        customer_unsubscribed(&store.conn, rowid, "first", 10).unwrap();
        customer_unsubscribed(&store.conn, rowid, "second", 11).unwrap();
        let first = store.webhook_heads().unwrap().remove(0);
        assert!(first.data.contains("first"));
        let failed = WebhookAttempt::Failed {
            error: "HTTP 500".into(),
            retry_at: 100,
        };
        store.record_webhook_attempt(first.id, &failed, 20).unwrap();
        let again = store.webhook_heads().unwrap().remove(0);
        assert_eq!(
            (
                again.id,
                again.attempts,
                again.failing_since,
                again.next_attempt_at
            ),
            (first.id, 1, Some(20), Some(100)),
            "the failing head stays the head"
        );
        let summary = store.webhook_summary().unwrap();
        assert_eq!(summary[0].queued, 2);
        assert_eq!(summary[0].failing.as_ref().unwrap().last_error, "HTTP 500");

        let dead = WebhookAttempt::Dead {
            error: "HTTP 500".into(),
        };
        store.record_webhook_attempt(first.id, &dead, 30).unwrap();
        let second = store.webhook_heads().unwrap().remove(0);
        assert!(second.data.contains("second"));
        store
            .record_webhook_attempt(second.id, &WebhookAttempt::Delivered, 31)
            .unwrap();
        assert!(store.webhook_heads().unwrap().is_empty());
        let summary = store.webhook_summary().unwrap();
        assert_eq!(
            (summary[0].queued, summary[0].delivered, summary[0].dead),
            (0, 1, 1)
        );

        assert_eq!(store.retry_dead_webhooks(Some("crm"), 40).unwrap(), 1);
        let retried = store.webhook_heads().unwrap().remove(0);
        assert_eq!(
            (retried.id, retried.failing_since, retried.next_attempt_at),
            (first.id, None, None)
        );
        assert_eq!(
            retried.body(),
            first.body(),
            "the same bytes on every attempt"
        );
    }

    #[test]
    fn a_bounce_is_reported_with_its_message_id_and_no_address() {
        let mut store = Store::open_in_memory().unwrap();
        let rowid = customer(&store, "C1");
        let outbox: i64 = store
            .conn
            .query_row(
                "INSERT INTO outbox (customer_id, rule_id, template, recipient_kind, to_address, \
                 message_id, subject, body_text, state, due_at, created_at, updated_at, sent_at) \
                 VALUES (?1, 'hello', 'care', 'customer', 'someone@example.com', '<m1@tc>', \
                 'Hi', 'Hi', 'sent', 0, 0, 0, 0) RETURNING id",
                [rowid],
                |row| row.get(0),
            )
            .unwrap();
        subscribed(&mut store, &[WebhookEventType::EmailBounced]);
        email_bounced(&store.conn, outbox, 5).unwrap();
        let head = store.webhook_heads().unwrap().remove(0);
        let body: serde_json::Value = serde_json::from_str(&head.body()).unwrap();
        assert_eq!(body["type"], "email.bounced");
        assert_eq!(body["data"]["message_id"], "<m1@tc>");
        assert_eq!(body["data"]["customer"], "C1");
        assert!(!head.body().contains("someone@"), "{}", head.body());
    }

    #[test]
    fn an_sms_is_reported_as_sms_never_as_an_email() {
        let mut store = Store::open_in_memory().unwrap();
        let rowid = customer(&store, "C1");
        let outbox: i64 = store
            .conn
            .query_row(
                "INSERT INTO outbox (customer_id, rule_id, template, recipient_kind, to_address, \
                 message_id, subject, body_text, state, due_at, created_at, updated_at, sent_at, \
                 channel) VALUES (?1, 'hello', 'greet', 'customer', '+4915112345678', '<s1@tc>', \
                 '', 'Hi', 'sent', 0, 0, 0, 0, 'sms') RETURNING id",
                [rowid],
                |row| row.get(0),
            )
            .unwrap();
        subscribed(
            &mut store,
            &[WebhookEventType::EmailSent, WebhookEventType::EmailFailed],
        );
        email_changed(&store.conn, outbox, "sent", 5).unwrap();
        email_changed(&store.conn, outbox, "failed", 5).unwrap();
        assert!(
            store.webhook_heads().unwrap().is_empty(),
            "an SMS is not an email.* event"
        );
        subscribed(
            &mut store,
            &[WebhookEventType::SmsSent, WebhookEventType::SmsFailed],
        );
        email_changed(&store.conn, outbox, "sent", 6).unwrap();
        let head = store.webhook_heads().unwrap().remove(0);
        let body: serde_json::Value = serde_json::from_str(&head.body()).unwrap();
        assert_eq!(body["type"], "sms.sent");
        assert_eq!(
            body["data"],
            serde_json::json!({"sms": outbox, "customer": "C1", "rule": "hello",
                               "template": "greet", "attempts": 0})
        );
        assert!(!head.body().contains("+49"), "no phone: {}", head.body());
    }

    #[test]
    fn a_task_made_and_done_is_reported_twice_without_its_title() {
        let mut store = Store::open_in_memory().unwrap();
        customer(&store, "C1");
        store
            .conn
            .execute(
                "INSERT INTO managers (external_id, name, created_at, updated_at) \
                 VALUES ('M1', 'Mia', 0, 0)",
                [],
            )
            .unwrap();
        subscribed(
            &mut store,
            &[WebhookEventType::TaskCreated, WebhookEventType::TaskDone],
        );
        let task = store
            .add_task(
                &crate::NewTask {
                    customer_id: "C1".into(),
                    assignee: "M1".into(),
                    title: "Call Ann Lee about her order".into(),
                    due_at: 86_400,
                    note: None,
                },
                10,
            )
            .unwrap();
        store.complete_task(task.id, "M1", None, 20).unwrap();
        let events = store.webhook_deliveries(None, None, 10).unwrap();
        let bodies: Vec<serde_json::Value> = events
            .iter()
            .rev()
            .map(|(delivery, _, _)| serde_json::from_str(&delivery.body()).unwrap())
            .collect();
        assert_eq!(bodies[0]["type"], "task.created");
        assert_eq!(
            bodies[0]["data"],
            serde_json::json!({"task": task.id, "customer": "C1", "assignee": "M1",
                "due_at": "1970-01-02T00:00:00Z", "rule": null, "done_by": null})
        );
        assert_eq!(bodies[1]["type"], "task.done");
        assert_eq!(bodies[1]["data"]["done_by"], "M1");
        assert!(
            !events
                .iter()
                .any(|(delivery, _, _)| delivery.data.contains("Ann"))
        );
    }
}
