//! The outbox as the staff workspace reads it: one state's e-mails a page at a time (newest
//! first, by keyset on the id, so a page costs the same however deep it is), the counts per
//! state, the e-mails held back (deferred, or due for a receiving domain that is paused), and
//! whose customer an e-mail is for. Each read can be scoped to one manager's customers.
//!
//! Read-only: changes go through [`Store::retry_email`], [`Store::cancel_email`] and
//! [`Store::resume_sending`], as for `tiercare outbox`.

use rusqlite::{OptionalExtension, params_from_iter, types::Value};

use crate::db::Store;
use crate::error::{AtPath, StoreError};
use crate::outbox::{EMAIL_COLUMNS, EMAIL_FROM, OutboxEmail, OutboxState, email_row};
use crate::sending::DOMAIN_OF_TO;

/// One page of the outbox.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutboxQuery {
    /// Only e-mails in this state.
    pub state: Option<OutboxState>,
    /// Only e-mails about customers this manager (external id) owns.
    pub owner: Option<String>,
    /// Only e-mails with a smaller id than this (the last id of the previous page).
    pub before: Option<i64>,
    /// At most this many.
    pub limit: usize,
}

fn limit_value(limit: usize) -> Value {
    Value::Integer(i64::try_from(limit).unwrap_or(i64::MAX))
}

impl Store {
    /// The e-mails `query` selects, newest first.
    pub fn outbox_page(&self, query: &OutboxQuery) -> Result<Vec<OutboxEmail>, StoreError> {
        let mut conditions = Vec::new();
        let mut values = Vec::new();
        if let Some(state) = query.state {
            values.push(Value::Text(state.as_str().to_owned()));
            conditions.push(format!("o.state = ?{}", values.len()));
        }
        if let Some(owner) = &query.owner {
            values.push(Value::Text(owner.clone()));
            conditions.push(format!("c.owner = ?{}", values.len()));
        }
        if let Some(before) = query.before {
            values.push(Value::Integer(before));
            conditions.push(format!("o.id < ?{}", values.len()));
        }
        values.push(limit_value(query.limit));
        let filter = if conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conditions.join(" AND "))
        };
        let sql = format!(
            "SELECT {EMAIL_COLUMNS} {EMAIL_FROM} {filter} ORDER BY o.id DESC LIMIT ?{}",
            values.len()
        );
        let mut stmt = self.conn.prepare_cached(&sql).at(&self.label)?;
        let rows = stmt
            .query_map(params_from_iter(values), email_row)
            .at(&self.label)?;
        rows.collect::<Result<_, _>>().at(&self.label)
    }

    /// How many e-mails are in each state (every state listed, zeros included), of `owner`'s
    /// customers only when given.
    pub fn outbox_counts_of(
        &self,
        owner: Option<&str>,
    ) -> Result<Vec<(OutboxState, u64)>, StoreError> {
        let Some(owner) = owner else {
            return Ok(self.outbox_counts()?.0);
        };
        let mut counts: Vec<(OutboxState, u64)> =
            OutboxState::ALL.iter().map(|state| (*state, 0)).collect();
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT o.state, count(*) FROM outbox o JOIN customers c ON c.id = o.customer_id \
                 WHERE c.owner = ?1 GROUP BY o.state",
            )
            .at(&self.label)?;
        let rows = stmt
            .query_map([owner], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
            })
            .at(&self.label)?;
        for row in rows {
            let (state, count) = row.at(&self.label)?;
            if let Some(slot) = counts.iter_mut().find(|(s, _)| s.as_str() == state) {
                slot.1 = count.unsigned_abs();
            }
        }
        Ok(counts)
    }

    /// The e-mails held back at `now`, newest first, at most `limit`: every `deferred` one
    /// (a transient failure, or the contact policy's next allowed time), and every due
    /// `queued` one whose receiving domain is among `paused_domains` (lower case, as
    /// [`address_domain`](crate::address_domain) gives them). Of `owner`'s customers only
    /// when given.
    pub fn held_emails(
        &self,
        now: i64,
        paused_domains: &[String],
        owner: Option<&str>,
        limit: usize,
    ) -> Result<Vec<OutboxEmail>, StoreError> {
        self.held_emails_before(now, paused_domains, owner, None, limit)
    }

    /// One page of [`Store::held_emails`]: the held e-mails older than the e-mail `before`
    /// (all when `None`), newest first, at most `limit`. Keyset paging: a page starts where
    /// the last one ended, by id, so a page costs the same however far back it is.
    pub fn held_emails_before(
        &self,
        now: i64,
        paused_domains: &[String],
        owner: Option<&str>,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<OutboxEmail>, StoreError> {
        let domains = serde_json::to_string(paused_domains).unwrap_or_else(|_| "[]".to_owned());
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT {EMAIL_COLUMNS} {EMAIL_FROM} \
                 WHERE (o.state = 'deferred' OR (o.state = 'queued' AND o.due_at <= ?1 \
                   AND {DOMAIN_OF_TO} IN (SELECT value FROM json_each(?2)))) \
                 AND (?3 IS NULL OR c.owner = ?3) AND (?5 IS NULL OR o.id < ?5) \
                 ORDER BY o.id DESC LIMIT ?4"
            ))
            .at(&self.label)?;
        let rows = stmt
            .query_map(
                rusqlite::params![now, domains, owner, limit_value(limit), before],
                email_row,
            )
            .at(&self.label)?;
        rows.collect::<Result<_, _>>().at(&self.label)
    }

    /// The owner (a manager's external id) of the customer the e-mail `id` is about; `None`
    /// for an unknown e-mail, a forgotten customer or a customer without an owner.
    pub fn outbox_email_owner(&self, id: i64) -> Result<Option<String>, StoreError> {
        self.conn
            .prepare_cached(
                "SELECT c.owner FROM outbox o JOIN customers c ON c.id = o.customer_id \
                 WHERE o.id = ?1",
            )
            .and_then(|mut stmt| {
                stmt.query_row([id], |row| row.get::<_, Option<String>>(0))
                    .optional()
            })
            .map(Option::flatten)
            .at(&self.label)
    }
}
