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
use crate::suppressions::{AddressKeys, SuppressionReason, address_is_suppressed, insert_address};

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
    /// Other texts that quoted the customer's name, address, phone or attributes (follow-up
    /// reasons and status reasons such as a bounce reply, tier reasons, the daemon's last
    /// errors) with those words erased.
    pub quotes_erased: u64,
    /// The WAL was checkpointed and truncated, so no earlier version of an erased page is left
    /// in it. `false` when another connection's read kept it from finishing: run `tiercare
    /// customer forget` again when the daemon or other commands are idle.
    pub wal_truncated: bool,
}

impl ForgetReport {
    fn changed_anything(&self) -> bool {
        self.profile_erased
            || self.free_texts_erased > 0
            || self.tasks_erased > 0
            || self.emails_cancelled > 0
            || self.emails_erased > 0
            || self.addresses_suppressed > 0
            || self.quotes_erased > 0
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
            Some(email) => address_is_suppressed(&tx, &self.keys, email).at(path)?,
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
            "email_bounces": rows(
                "SELECT b.* FROM bounces b JOIN outbox o ON o.id = b.outbox_id \
                 WHERE o.customer_id = ?1 ORDER BY b.id",
            )?,
            "email_suppressed": suppressed,
            "coupons": rows("SELECT * FROM coupons WHERE customer_id = ?1 ORDER BY issued_at, id")?,
            "points": rows("SELECT * FROM points WHERE customer_id = ?1 ORDER BY at, id")?,
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
    /// - any other text that quotes the customer's name, email addresses, phone or the text
    ///   values of their attributes has those words replaced by `(erased)`: the follow-up
    ///   ledger's reasons and status reasons (a bounce reply that holds the address), its
    ///   actions, tier reasons (current and history), and the daemon's last errors;
    /// - one `privacy_requests` row records who asked, when, and the counts (no personal data).
    ///
    /// It is one `IMMEDIATE` transaction, and idempotent: a second forget changes nothing and
    /// writes no audit row. [`StoreError::UnknownCustomer`] when there is no such customer.
    ///
    /// Nothing is left in the file's bytes either: every connection runs with `secure_delete`
    /// (SQLite zeroes deleted and overwritten content instead of leaving it in free space),
    /// and after the commit a `wal_checkpoint(TRUNCATE)` copies the changed pages into the
    /// database file and empties the WAL, which held the pages' earlier versions
    /// ([`ForgetReport::wal_truncated`] says whether it could).
    pub fn forget_customer(
        &mut self,
        external_id: &str,
        by: &str,
        now: i64,
    ) -> Result<ForgetReport, StoreError> {
        let audit = self.pending_audit.take();
        let path = self.label.clone();
        let path = path.as_path();
        let tx = Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate).at(path)?;
        let rowid = require_customer(&tx, path, external_id)?;
        let mut report = forget(&tx, &self.keys, rowid, external_id, by, now).at(path)?;
        crate::staff_users::write_audit(&tx, audit).at(path)?;
        tx.commit().at(path)?;
        report.wal_truncated = truncate_wal(&self.conn).at(path)?;
        Ok(report)
    }
}

fn forget(
    tx: &Connection,
    keys: &AddressKeys,
    rowid: i64,
    external_id: &str,
    by: &str,
    now: i64,
) -> rusqlite::Result<ForgetReport> {
    let mut report = ForgetReport {
        customer_id: external_id.to_owned(),
        ..ForgetReport::default()
    };
    // 0. The words that identify the customer, to be erased wherever they are quoted.
    let quoted = personal_words(tx, rowid)?;
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
        if insert_address(
            tx,
            keys,
            address,
            SuppressionReason::Forgotten,
            "forget",
            now,
        )? {
            report.addresses_suppressed += 1;
        }
        // A bounce's diagnostic may quote the address (the row keeps only its hash).
        for hash in keys.lookups(address) {
            tx.execute(
                "UPDATE bounces SET diagnostic = NULL WHERE address_hash = ?1 \
                 AND diagnostic IS NOT NULL",
                [hash],
            )?;
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
    // 6. Quotes of the customer in other texts.
    report.quotes_erased = erase_quotes(tx, rowid, &quoted)?;
    // 7. The audit row, only when something was done: forgetting twice changes nothing.
    if report.changed_anything() {
        let detail = json!({
            "profile_erased": report.profile_erased,
            "free_texts_erased": report.free_texts_erased,
            "tasks_erased": report.tasks_erased,
            "emails_cancelled": report.emails_cancelled,
            "emails_erased": report.emails_erased,
            "emails_in_flight": report.emails_in_flight,
            "addresses_suppressed": report.addresses_suppressed,
            "quotes_erased": report.quotes_erased,
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

/// What replaces a quote of a forgotten customer's personal data in a text.
const ERASED_WORDS: &str = "(erased)";

/// Text values shorter than this (in characters) are not searched for in other texts: a short
/// attribute value (`80`, `yes`) would match unrelated words and numbers.
const SHORTEST_QUOTE: usize = 4;

/// The words that identify a customer in other texts: longer words first, so a name inside an
/// address is erased with the address.
#[derive(Debug, Default)]
struct PersonalWords {
    /// Name, email addresses (the profile's and every one they were mailed at), phone.
    identity: Vec<String>,
    /// The above and the text values of their attributes (a postal address, say).
    all: Vec<String>,
}

fn personal_words(tx: &Connection, rowid: i64) -> rusqlite::Result<PersonalWords> {
    let (name, email, phone, attributes): (Option<String>, Option<String>, Option<String>, String) =
        tx.query_row(
            "SELECT name, email, phone, attributes FROM customers WHERE id = ?1",
            [rowid],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
        )?;
    let mut identity: Vec<String> = [name, email, phone].into_iter().flatten().collect();
    identity.extend(
        tx.prepare(
            "SELECT DISTINCT to_address FROM outbox WHERE customer_id = ?1 \
             AND recipient_kind = 'customer'",
        )?
        .query_map([rowid], |row| row.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?,
    );
    let mut all = identity.clone();
    if let Ok(Value::Object(map)) = serde_json::from_str::<Value>(&attributes) {
        all.extend(map.values().filter_map(|v| v.as_str().map(str::to_owned)));
    }
    let tidy = |words: Vec<String>| {
        let mut words: Vec<String> = words
            .into_iter()
            .map(|w| w.trim().to_owned())
            .filter(|w| w.chars().count() >= SHORTEST_QUOTE)
            .collect();
        words.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        words.dedup();
        words
    };
    Ok(PersonalWords {
        identity: tidy(identity),
        all: tidy(all),
    })
}

/// `text` with every word of `words` replaced by [`ERASED_WORDS`] (case-insensitively for
/// ASCII, as addresses are), or `None` when it quotes none of them.
fn without_words(text: &str, words: &[String]) -> Option<String> {
    let needles: Vec<String> = words
        .iter()
        .filter(|w| !w.is_empty())
        .map(|w| w.to_ascii_lowercase())
        .collect();
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut changed = false;
    let mut at = 0;
    // One pass, longest word first at each place, so no word is searched for in a
    // replacement already made.
    while let Some(ch) = text[at..].chars().next() {
        match needles.iter().find(|n| lower[at..].starts_with(n.as_str())) {
            Some(needle) => {
                out.push_str(ERASED_WORDS);
                at += needle.len();
                changed = true;
            }
            None => {
                out.push(ch);
                at += ch.len_utf8();
            }
        }
    }
    changed.then_some(out)
}

/// A JSON text with [`without_words`] applied to every string value in it, so it stays valid
/// JSON (keys are names, not data); a text that is not JSON is treated as plain text.
fn json_without_words(text: &str, words: &[String]) -> Option<String> {
    fn walk(value: &mut Value, words: &[String]) -> bool {
        match value {
            Value::String(s) => match without_words(s, words) {
                Some(new) => {
                    *s = new;
                    true
                }
                None => false,
            },
            Value::Array(items) => items.iter_mut().fold(false, |c, v| walk(v, words) | c),
            Value::Object(map) => map.values_mut().fold(false, |c, v| walk(v, words) | c),
            _ => false,
        }
    }
    let Ok(mut value) = serde_json::from_str::<Value>(text) else {
        return without_words(text, words);
    };
    walk(&mut value, words).then(|| value.to_string())
}

/// Which words a column is searched for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Words {
    /// Name, addresses, phone: for texts whose other words the program reads (a follow-up's
    /// action names templates and assignees, which an attribute value could equal).
    Identity,
    /// Those and the attributes' text values: for explanations meant for people.
    All,
}

/// The texts that may quote a customer: `(table, column, is JSON, words, which rows)`, with
/// `?1` the customer's row id where the rows are theirs. The columns erased outright (profile,
/// notes, subjects, comments, task titles and notes, pin reasons, the outbox's addresses,
/// subjects, bodies and errors, its events' details) are not listed; the audit of the tables
/// is in ARCHITECTURE.md.
const QUOTING_COLUMNS: &[(&str, &str, bool, Words, &str)] = &[
    ("followups", "reason", false, Words::All, "customer_id = ?1"),
    (
        "followups",
        "status_reason",
        false,
        Words::All,
        "customer_id = ?1",
    ),
    (
        "followups",
        "action",
        true,
        Words::Identity,
        "customer_id = ?1",
    ),
    (
        "customer_tiers",
        "reasons",
        true,
        Words::All,
        "customer_id = ?1",
    ),
    (
        "tier_history",
        "reason",
        false,
        Words::All,
        "customer_id = ?1",
    ),
    // The managers' digests list customers by name (`rule_id` 'digest', no customer of their
    // own): a forgotten customer's name is erased from every digest.
    (
        "outbox",
        "subject",
        false,
        Words::Identity,
        "?1 IS NOT NULL AND rule_id = 'digest'",
    ),
    (
        "outbox",
        "body_text",
        false,
        Words::Identity,
        "?1 IS NOT NULL AND rule_id = 'digest'",
    ),
    (
        "outbox",
        "body_html",
        false,
        Words::Identity,
        "?1 IS NOT NULL AND rule_id = 'digest'",
    ),
    (
        "daemon_state",
        "last_send_error",
        false,
        Words::Identity,
        "?1 IS NOT NULL",
    ),
    (
        "daemon_state",
        "last_tick_error",
        false,
        Words::Identity,
        "?1 IS NOT NULL",
    ),
    (
        "daemon_state",
        "last_reload_error",
        false,
        Words::Identity,
        "?1 IS NOT NULL",
    ),
];

/// Erases the customer's words wherever [`QUOTING_COLUMNS`] quote them; returns how many texts
/// changed.
fn erase_quotes(tx: &Connection, rowid: i64, words: &PersonalWords) -> rusqlite::Result<u64> {
    let mut erased = 0;
    for (table, column, json, which, rows) in QUOTING_COLUMNS {
        let words = match which {
            Words::Identity => &words.identity,
            Words::All => &words.all,
        };
        if words.is_empty() {
            continue;
        }
        let found: Vec<(i64, String)> = tx
            .prepare(&format!(
                "SELECT rowid, {column} FROM {table} WHERE {rows} AND {column} IS NOT NULL"
            ))?
            .query_map([rowid], |row| Ok((row.get(0)?, row.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        for (id, text) in found {
            let new = if *json {
                json_without_words(&text, words)
            } else {
                without_words(&text, words)
            };
            if let Some(new) = new {
                tx.execute(
                    &format!("UPDATE {table} SET {column} = ?2 WHERE rowid = ?1"),
                    params![id, new],
                )?;
                erased += 1;
            }
        }
    }
    Ok(erased)
}

/// Copies every page of the WAL into the database file and truncates the WAL to nothing, so
/// the earlier versions of the pages a forget changed are gone from it. `false` when a reader
/// on an older snapshot kept it from finishing (after the busy timeout).
fn truncate_wal(conn: &Connection) -> rusqlite::Result<bool> {
    let busy: i64 = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| row.get(0))?;
    Ok(busy == 0)
}

#[cfg(test)]
mod quote_tests {
    use super::*;

    fn words(list: &[&str]) -> Vec<String> {
        list.iter().map(|w| (*w).to_owned()).collect()
    }

    #[test]
    fn quotes_are_erased_case_insensitively_and_json_stays_json() {
        let w = words(&["li.na@example.com", "Li Na", "erased"]);
        assert_eq!(
            without_words("550 <LI.NA@example.com>: no such user (Li Na)", &w).as_deref(),
            Some("550 <(erased)>: no such user ((erased))")
        );
        assert_eq!(without_words("nothing here", &w), None);
        let json = json_without_words(r#"{"kind":"email","to":["Li Na"],"n":1}"#, &w).unwrap();
        assert_eq!(json, r#"{"kind":"email","n":1,"to":["(erased)"]}"#);
    }
}
