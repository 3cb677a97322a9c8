//! Data rights: everything held about one customer ([`Store::export_customer`]), and
//! forgetting a customer ([`Store::forget_customer`]).
//!
//! [`Store::forget_customer`] says what forgetting does.

use rusqlite::types::ValueRef;
use rusqlite::{Connection, Transaction, TransactionBehavior, params};
use serde_json::{Map, Value, json};

use crate::db::Store;
use crate::error::{AtPath, StoreError};
use crate::stored::require_customer;
use crate::suppressions::{SuppressionReason, address_hash, hash_is_suppressed, insert_hash};

/// The text that replaces a task title (which may name the customer) when they are forgotten.
pub const ERASED_TITLE: &str = "(customer data erased)";

/// What [`Store::forget_customer`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ForgetReport {
    /// The customer's external id (kept: it is the source system's key).
    pub customer_id: String,
    /// Nothing was left to erase: the customer had been forgotten before.
    pub already_forgotten: bool,
    /// Whether the profile had personal data that was erased.
    pub profile_erased: bool,
    /// Interaction notes, complaint subjects and feedback comments erased.
    pub free_texts_erased: u64,
    /// Tasks, ledger actions and pins whose text was erased.
    pub tasks_erased: u64,
    /// Pending emails cancelled.
    pub emails_cancelled: u64,
    /// Outbox rows whose address, subject and bodies were erased.
    pub emails_erased: u64,
    /// Emails being sent right now (claimed), left alone: forget again once they are done.
    pub emails_in_flight: u64,
    /// Addresses newly added to the suppression list.
    pub addresses_suppressed: u64,
}

impl ForgetReport {
    fn changed_anything(&self) -> bool {
        self.profile_erased
            || self.free_texts_erased > 0
            || self.tasks_erased > 0
            || self.emails_cancelled > 0
            || self.emails_erased > 0
            || self.addresses_suppressed > 0
    }
}

/// Columns stored as JSON text, exported as JSON values.
const JSON_COLUMNS: &[&str] = &["attributes", "scores", "reasons", "action", "detail"];

/// Every row `sql` returns (with `?1` bound to `rowid`) as a JSON object keyed by column name.
fn rows_as_json(conn: &Connection, sql: &str, rowid: i64) -> rusqlite::Result<Vec<Value>> {
    let mut stmt = conn.prepare(sql)?;
    let names: Vec<String> = stmt.column_names().into_iter().map(str::to_owned).collect();
    let mut rows = stmt.query([rowid])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let mut object = Map::new();
        for (index, name) in names.iter().enumerate() {
            let value = match row.get_ref(index)? {
                ValueRef::Null => Value::Null,
                ValueRef::Integer(i) => json!(i),
                ValueRef::Real(f) => json!(f),
                ValueRef::Text(bytes) => {
                    let text = String::from_utf8_lossy(bytes).into_owned();
                    if JSON_COLUMNS.contains(&name.as_str()) {
                        serde_json::from_str(&text).unwrap_or(Value::String(text))
                    } else {
                        Value::String(text)
                    }
                }
                ValueRef::Blob(bytes) => Value::String(crate::suppressions::hex(bytes)),
            };
            object.insert(name.clone(), value);
        }
        out.push(Value::Object(object));
    }
    Ok(out)
}

impl Store {
    /// Everything the database holds about the customer with `external_id`, as one JSON
    /// object: profile, orders with lines, interactions, complaints, feedback, current tier and
    /// tier history, segments and their history, pins, follow-ups, tasks, the emails of the
    /// outbox with their events, whether the address is suppressed, and privacy requests.
    /// [`StoreError::UnknownCustomer`] when there is no such customer.
    pub fn export_customer(&self, external_id: &str) -> Result<Value, StoreError> {
        let path = self.label.as_path();
        let tx = Transaction::new_unchecked(&self.conn, TransactionBehavior::Deferred).at(path)?;
        let rowid = require_customer(&tx, path, external_id)?;
        let rows = |sql: &str| rows_as_json(&tx, sql, rowid).at(path);
        let profile = rows("SELECT * FROM customers WHERE id = ?1")?
            .into_iter()
            .next()
            .unwrap_or(Value::Null);
        let email = profile
            .get("email")
            .and_then(Value::as_str)
            .filter(|e| !e.trim().is_empty())
            .map(str::to_owned);
        let suppressed = match &email {
            Some(email) => hash_is_suppressed(&tx, &address_hash(email)).at(path)?,
            None => false,
        };
        let mut orders = rows(
            "SELECT id, external_id, ordered_at, amount, item_count FROM orders \
             WHERE customer_id = ?1 ORDER BY ordered_at, id",
        )?;
        for order in &mut orders {
            let order_id = order.get("id").and_then(Value::as_i64).unwrap_or_default();
            let lines = rows_as_json(
                &tx,
                "SELECT line_no, sku, description, quantity, unit_price, amount \
                 FROM order_items WHERE order_id = ?1 ORDER BY line_no",
                order_id,
            )
            .at(path)?;
            if let Value::Object(map) = order {
                map.insert("lines".into(), Value::Array(lines));
            }
        }
        let export = json!({
            "customer": profile,
            "orders": orders,
            "interactions": rows("SELECT * FROM interactions WHERE customer_id = ?1 ORDER BY occurred_at, id")?,
            "complaints": rows("SELECT * FROM complaints WHERE customer_id = ?1 ORDER BY opened_at, id")?,
            "feedback": rows("SELECT * FROM feedback WHERE customer_id = ?1 ORDER BY given_at, id")?,
            "tier": rows("SELECT * FROM customer_tiers WHERE customer_id = ?1")?.into_iter().next(),
            "tier_history": rows("SELECT * FROM tier_history WHERE customer_id = ?1 ORDER BY at, id")?,
            "segments": rows("SELECT * FROM customer_segments WHERE customer_id = ?1 ORDER BY segment_set")?,
            "segment_history": rows("SELECT * FROM segment_history WHERE customer_id = ?1 ORDER BY at, id")?,
            "pins": rows("SELECT * FROM tier_pins WHERE customer_id = ?1 ORDER BY created_at, id")?,
            "followups": rows("SELECT * FROM followups WHERE customer_id = ?1 ORDER BY occurrence_at, id")?,
            "tasks": rows("SELECT * FROM tasks WHERE customer_id = ?1 ORDER BY due_at, id")?,
            "emails": rows("SELECT * FROM outbox WHERE customer_id = ?1 ORDER BY created_at, id")?,
            "email_events": rows(
                "SELECT e.* FROM outbox_events e JOIN outbox o ON o.id = e.outbox_id \
                 WHERE o.customer_id = ?1 ORDER BY e.outbox_id, e.id",
            )?,
            "email_suppressed": suppressed,
            "privacy_requests": rows("SELECT * FROM privacy_requests WHERE customer_id = ?1 ORDER BY at, id")?,
        });
        Ok(export)
    }

    /// Forgets the customer with `external_id`, in one `IMMEDIATE` transaction; `by` (who
    /// asked) and `now` go into the audit row.
    ///
    /// Forgetting erases personal data but keeps the facts the business needs (orders and their
    /// amounts, tiers, the follow-up ledger), so reports and tiering stay right:
    ///
    /// - the customer row keeps its external id (orders refer to it, and a re-import must find it);
    ///   name, email, phone, birthday and attributes are erased and every consent is withdrawn;
    /// - free text that may describe the person is erased: interaction notes, complaint subjects,
    ///   feedback comments, task titles and notes (in the tasks and in the ledger's actions), pin
    ///   reasons;
    /// - every address the customer was mailed at is added to the suppression list (by hash only,
    ///   reason `forgotten`), so it is never mailed again, even if a file imports it again;
    /// - pending mail (queued, deferred, unknown) is cancelled, and every outbox row of the customer
    ///   has its address, subject and bodies erased and loses its link to the customer. A row being
    ///   sent at that moment (claimed) is left alone and counted: forget again once it is done;
    /// - one `privacy_requests` row records who asked, when, and the counts (no personal data).
    ///
    /// It is one `IMMEDIATE` transaction, and idempotent: a second forget changes nothing and
    /// writes no audit row. [`StoreError::UnknownCustomer`] when there is no such customer.
    pub fn forget_customer(
        &mut self,
        external_id: &str,
        by: &str,
        now: i64,
    ) -> Result<ForgetReport, StoreError> {
        let path = self.label.clone();
        let path = path.as_path();
        let tx = Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate).at(path)?;
        let rowid = require_customer(&tx, path, external_id)?;
        let report = forget(&tx, rowid, external_id, by, now).at(path)?;
        tx.commit().at(path)?;
        Ok(report)
    }
}

fn forget(
    tx: &Connection,
    rowid: i64,
    external_id: &str,
    by: &str,
    now: i64,
) -> rusqlite::Result<ForgetReport> {
    let mut report = ForgetReport {
        customer_id: external_id.to_owned(),
        ..ForgetReport::default()
    };
    // 1. Every address the customer has or was mailed at: suppressed by hash.
    let mut addresses: Vec<String> = tx
        .prepare(
            "SELECT email FROM customers WHERE id = ?1 AND email IS NOT NULL \
             UNION SELECT to_address FROM outbox WHERE customer_id = ?1 \
             AND recipient_kind = 'customer'",
        )?
        .query_map([rowid], |row| row.get::<_, String>(0))?
        .collect::<rusqlite::Result<_>>()?;
    addresses.retain(|a| !a.trim().is_empty());
    for address in &addresses {
        if insert_hash(
            tx,
            &address_hash(address),
            SuppressionReason::Forgotten,
            "forget",
            now,
        )? {
            report.addresses_suppressed += 1;
        }
    }
    // 2. Pending mail is cancelled (one event each); rows being sent are left alone.
    report.emails_in_flight = tx
        .query_row(
            "SELECT count(*) FROM outbox WHERE customer_id = ?1 AND state = 'claimed'",
            [rowid],
            |row| row.get::<_, i64>(0),
        )?
        .unsigned_abs();
    tx.execute(
        "UPDATE outbox_events SET detail = NULL WHERE detail IS NOT NULL AND outbox_id IN \
         (SELECT id FROM outbox WHERE customer_id = ?1 AND state <> 'claimed')",
        [rowid],
    )?;
    let pending: Vec<(i64, String)> = tx
        .prepare(
            "SELECT id, state FROM outbox WHERE customer_id = ?1 \
             AND state IN ('queued', 'deferred', 'unknown')",
        )?
        .query_map([rowid], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    for (id, state) in &pending {
        tx.execute(
            "UPDATE outbox SET state = 'cancelled', updated_at = ?2 WHERE id = ?1",
            params![id, now],
        )?;
        tx.execute(
            "INSERT INTO outbox_events (outbox_id, at, from_state, to_state, detail) \
             VALUES (?1, ?2, ?3, 'cancelled', 'customer forgotten')",
            params![id, now, state],
        )?;
    }
    report.emails_cancelled = pending.len() as u64;
    // 3. The outbox keeps that an email existed (its Message-ID, rule, template, state and
    // times), not to whom or what it said.
    report.emails_erased = tx.execute(
        "UPDATE outbox SET to_address = '', subject = '', body_text = '', body_html = NULL, \
         last_error = NULL, customer_id = NULL, updated_at = ?2 \
         WHERE customer_id = ?1 AND state <> 'claimed'",
        params![rowid, now],
    )? as u64;
    // 4. The profile.
    report.profile_erased = tx.execute(
        "UPDATE customers SET name = NULL, email = NULL, phone = NULL, birthday = NULL, \
         attributes = '{}', consent_email = 0, consent_sms = 0, consent_phone = 0, \
         updated_at = ?2 \
         WHERE id = ?1 AND (name IS NOT NULL OR email IS NOT NULL OR phone IS NOT NULL \
         OR birthday IS NOT NULL OR attributes <> '{}' OR consent_email = 1 \
         OR consent_sms = 1 OR consent_phone = 1)",
        params![rowid, now],
    )? == 1;
    // 5. Free text.
    for sql in [
        "UPDATE interactions SET note = NULL WHERE customer_id = ?1 AND note IS NOT NULL",
        "UPDATE complaints SET subject = NULL WHERE customer_id = ?1 AND subject IS NOT NULL",
        "UPDATE feedback SET comment = NULL WHERE customer_id = ?1 AND comment IS NOT NULL",
    ] {
        report.free_texts_erased += tx.execute(sql, [rowid])? as u64;
    }
    for sql in [
        "UPDATE tasks SET title = ?2, note = NULL WHERE customer_id = ?1 \
         AND (title <> ?2 OR note IS NOT NULL)",
        "UPDATE followups SET action = json_set(action, '$.title', ?2) WHERE customer_id = ?1 \
         AND json_extract(action, '$.title') IS NOT NULL \
         AND json_extract(action, '$.title') <> ?2",
        "UPDATE tier_pins SET reason = ?2 WHERE customer_id = ?1 AND reason <> ?2",
    ] {
        report.tasks_erased += tx.execute(sql, params![rowid, ERASED_TITLE])? as u64;
    }
    // 6. The audit row, only when something was done: forgetting twice changes nothing.
    if report.changed_anything() {
        let detail = json!({
            "profile_erased": report.profile_erased,
            "free_texts_erased": report.free_texts_erased,
            "tasks_erased": report.tasks_erased,
            "emails_cancelled": report.emails_cancelled,
            "emails_erased": report.emails_erased,
            "emails_in_flight": report.emails_in_flight,
            "addresses_suppressed": report.addresses_suppressed,
        });
        tx.execute(
            "INSERT INTO privacy_requests (kind, customer_id, at, by_whom, detail) \
             VALUES ('forget', ?1, ?2, ?3, ?4)",
            params![rowid, now, by, detail.to_string()],
        )?;
    } else {
        report.already_forgotten = true;
    }
    Ok(report)
}
