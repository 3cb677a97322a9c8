//! What the send loop needs to keep a good sending reputation: per receiving domain, what was
//! sent lately and whether the domain asked us to slow down (a pause with growing backoff,
//! kept here so a restart honours it); and the bounce and complaint figures the reputation
//! guard and the reports read, through one function ([`Store::mail_reputation`]).

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use crate::db::Store;
use crate::error::{AtPath, StoreError};

/// The receiving domain of `outbox o`'s address, in SQL: the part after the first `@`,
/// lower-cased (ASCII), exactly as [`address_domain`] computes it.
pub(crate) const DOMAIN_OF_TO: &str = "lower(substr(o.to_address, instr(o.to_address, '@') + 1))";

/// The receiving domain of `address`: the part after the first `@`, ASCII lower-cased (as the
/// outbox's SQL computes it); empty without an `@`.
pub fn address_domain(address: &str) -> String {
    address
        .split_once('@')
        .map(|(_, domain)| domain.to_ascii_lowercase())
        .unwrap_or_default()
}

/// A receiving domain that asked us to slow down.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DomainPause {
    /// The domain (`gmail.com`).
    pub domain: String,
    /// Nothing is sent to it before this time (unix seconds UTC).
    pub paused_until: i64,
    /// The "slow down" answers in a row: each doubles the pause; a delivery clears them.
    pub strikes: u32,
    /// The answer's codes (`421 4.7.28`), never the server's text (which may quote addresses).
    pub reason: String,
    /// When the last answer came.
    pub updated_at: i64,
}

/// Sends, bounces and complaints of one day and one follow-up rule.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReputationRow {
    /// The day (UTC), `YYYY-MM-DD`.
    pub day: String,
    /// The follow-up rule (the care programme) the e-mails belong to.
    pub rule_id: String,
    /// E-mails that reached a receiving server's verdict: delivered, or refused during the send.
    pub sends: u64,
    /// Hard bounces recorded that day: refusals during the send and DSNs received later.
    pub hard_bounces: u64,
    /// Complaints ("this is spam") received for those e-mails.
    pub complaints: u64,
}

const REPUTATION: &str = "\
    WITH outcomes (at, rule_id, send, bounce, complaint) AS ( \
        SELECT sent_at, rule_id, 1, 0, 0 FROM outbox \
        WHERE sent_at IS NOT NULL AND sent_at >= ?1 AND sent_at < ?2 \
        UNION ALL \
        SELECT b.at, coalesce(o.rule_id, ''), o.id IS NOT NULL AND o.sent_at IS NULL, \
               b.kind = 'hard', \
               b.kind = 'complaint' \
        FROM bounces b LEFT JOIN outbox o ON o.id = b.outbox_id \
        WHERE b.kind IN ('hard', 'complaint') AND b.at >= ?1 AND b.at < ?2 \
    ) \
    SELECT date(at, 'unixepoch'), rule_id, sum(send), sum(bounce), sum(complaint) \
    FROM outcomes GROUP BY 1, 2 ORDER BY 1, 2";

impl Store {
    /// For each of `domains` (lower-case) that was sent to at or after `since`: the domain,
    /// the e-mails delivered to it since `since`, and of those since `recent` (one scan of the
    /// sent rows through `outbox_by_sent_at`).
    pub fn sent_by_domain(
        &self,
        domains: &[&str],
        since: i64,
        recent: i64,
    ) -> Result<Vec<(String, u64, u64)>, StoreError> {
        let domains = serde_json::to_string(domains).unwrap_or_else(|_| "[]".to_owned());
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT {DOMAIN_OF_TO} AS domain, count(*), sum(o.sent_at >= ?3) FROM outbox o \
                 WHERE +o.state = 'sent' AND o.sent_at >= ?1 \
                 AND domain IN (SELECT value FROM json_each(?2)) GROUP BY domain"
            ))
            .at(&self.label)?;
        let rows = stmt
            .query_map(params![since, domains, recent], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, i64>(1)?.unsigned_abs(),
                    row.get::<_, i64>(2)?.unsigned_abs(),
                ))
            })
            .at(&self.label)?;
        rows.collect::<Result<_, _>>().at(&self.label)
    }

    /// Every domain pause on record (also the ones that have ended, whose strikes still count
    /// until a delivery), by domain.
    pub fn domain_pauses(&self) -> Result<Vec<DomainPause>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT domain, paused_until, strikes, reason, updated_at FROM mail_domain_pauses \
                 ORDER BY domain",
            )
            .at(&self.label)?;
        let rows = stmt
            .query_map([], |row| {
                Ok(DomainPause {
                    domain: row.get(0)?,
                    paused_until: row.get(1)?,
                    strikes: row.get(2)?,
                    reason: row.get(3)?,
                    updated_at: row.get(4)?,
                })
            })
            .at(&self.label)?;
        rows.collect::<Result<_, _>>().at(&self.label)
    }

    /// Records that `domain` asked us to slow down at `now`: one more strike, and a pause of
    /// `base_seconds` doubled per earlier strike, at most `max_seconds`. One `IMMEDIATE`
    /// transaction; returns the pause.
    pub fn pause_domain(
        &mut self,
        domain: &str,
        now: i64,
        reason: &str,
        base_seconds: i64,
        max_seconds: i64,
    ) -> Result<DomainPause, StoreError> {
        let path = self.label.clone();
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .at(&path)?;
        let strikes: u32 = tx
            .query_row(
                "SELECT strikes FROM mail_domain_pauses WHERE domain = ?1",
                [domain],
                |row| row.get(0),
            )
            .optional()
            .at(&path)?
            .unwrap_or(0)
            + 1;
        let pause = base_seconds
            .saturating_mul(1_i64 << (strikes - 1).min(30))
            .min(max_seconds)
            .max(1);
        let paused_until = now + pause;
        tx.execute(
            "INSERT INTO mail_domain_pauses (domain, paused_until, strikes, reason, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (domain) DO UPDATE SET \
             paused_until = excluded.paused_until, strikes = excluded.strikes, \
             reason = excluded.reason, updated_at = excluded.updated_at",
            params![domain, paused_until, strikes, reason, now],
        )
        .at(&path)?;
        tx.commit().at(&path)?;
        Ok(DomainPause {
            domain: domain.to_owned(),
            paused_until,
            strikes,
            reason: reason.to_owned(),
            updated_at: now,
        })
    }

    /// Forgets `domain`'s strikes after a delivery to it; whether it had any.
    pub fn clear_domain_pause(&mut self, domain: &str) -> Result<bool, StoreError> {
        self.conn
            .execute("DELETE FROM mail_domain_pauses WHERE domain = ?1", [domain])
            .map(|n| n > 0)
            .at(&self.label)
    }

    /// Sends, hard bounces and complaints in `[since, until)`, per day (UTC) and follow-up rule.
    /// The one source of the reputation figures: the guard, `status` and the report read it.
    /// Read from the `bounces` table: a hard bounce is a refusal of the address during the send
    /// (a `5xx` on RCPT or after DATA) or a DSN / provider notification received later; a
    /// complaint comes from a provider's webhook. Sends are the e-mails delivered, plus those
    /// refused during the send (never delivered, so counted once, by their bounce).
    pub fn mail_reputation(
        &self,
        since: i64,
        until: i64,
    ) -> Result<Vec<ReputationRow>, StoreError> {
        let mut stmt = self.conn.prepare_cached(REPUTATION).at(&self.label)?;
        let rows = stmt
            .query_map(params![since, until], |row| {
                Ok(ReputationRow {
                    day: row.get(0)?,
                    rule_id: row.get(1)?,
                    sends: row.get::<_, i64>(2)?.unsigned_abs(),
                    hard_bounces: row.get::<_, i64>(3)?.unsigned_abs(),
                    complaints: row.get::<_, i64>(4)?.unsigned_abs(),
                })
            })
            .at(&self.label)?;
        rows.collect::<Result<_, _>>().at(&self.label)
    }

    /// When sending was last resumed by hand (`tiercare outbox resume`), if ever.
    pub fn sending_resumed_at(&self) -> Result<Option<i64>, StoreError> {
        self.conn
            .query_row(
                "SELECT resumed_at FROM mail_reputation_state WHERE id = 1",
                [],
                |row| row.get(0),
            )
            .optional()
            .at(&self.label)
    }

    /// Resumes sending after the reputation guard paused it: the figures are counted from
    /// `now` on.
    pub fn resume_sending(&mut self, now: i64) -> Result<(), StoreError> {
        let audit = self.pending_audit.take();
        let path = self.label.as_path();
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .at(path)?;
        tx.execute(
            "INSERT INTO mail_reputation_state (id, resumed_at) VALUES (1, ?1) \
             ON CONFLICT (id) DO UPDATE SET resumed_at = excluded.resumed_at",
            [now],
        )
        .at(path)?;
        crate::staff_users::write_audit(&tx, audit).at(path)?;
        tx.commit().at(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::address_hash;

    const DAY: i64 = 86_400;
    const T: i64 = 1_796_601_600; // 2026-12-07T00:00:00Z

    /// An outbox row to `to` for `rule`, sent at `sent_at` (or failed then, as a hard bounce).
    fn email(store: &Store, id: i64, rule: &str, to: &str, sent_at: i64, bounced: bool) {
        let state = if bounced { "failed" } else { "sent" };
        store
            .conn
            .execute(
                "INSERT INTO outbox (id, rule_id, template, recipient_kind, to_address, \
                 message_id, subject, body_text, state, due_at, created_at, updated_at, sent_at) \
                 VALUES (?1, ?2, 't', 'customer', ?3, '<' || ?1 || '@x.example>', 's', 'b', ?4, \
                 ?5, ?5, ?5, CASE WHEN ?4 = 'sent' THEN ?5 END)",
                params![id, rule, to, state, sent_at],
            )
            .unwrap();
        if bounced {
            store
                .conn
                .execute(
                    "INSERT INTO bounces (outbox_id, address_hash, kind, status, source, at) \
                     VALUES (?1, ?2, 'hard', '5.1.1', 'smtp', ?3)",
                    params![id, address_hash(to), sent_at],
                )
                .unwrap();
        }
    }

    #[test]
    fn reputation_counts_sends_and_hard_bounces_per_day_and_rule() {
        let store = Store::open_in_memory().unwrap();
        email(&store, 1, "welcome", "a@x.example", T + 10, false);
        email(&store, 2, "welcome", "b@x.example", T + 20, true);
        email(&store, 3, "winback", "c@x.example", T + 30, false);
        email(&store, 4, "welcome", "d@x.example", T + DAY + 5, false);
        email(&store, 5, "welcome", "e@x.example", T - 5, true); // before the window
        let rows = store.mail_reputation(T, T + 2 * DAY).unwrap();
        let summary: Vec<(&str, &str, u64, u64)> = rows
            .iter()
            .map(|r| (r.day.as_str(), r.rule_id.as_str(), r.sends, r.hard_bounces))
            .collect();
        assert_eq!(
            summary,
            [
                ("2026-12-07", "welcome", 2, 1),
                ("2026-12-07", "winback", 1, 0),
                ("2026-12-08", "welcome", 1, 0),
            ]
        );
    }

    #[test]
    fn sent_counts_per_domain_in_one_scan() {
        let store = Store::open_in_memory().unwrap();
        email(&store, 1, "r", "a@Gmail.com", T - 3000, false);
        email(&store, 2, "r", "b@gmail.com", T - 30, false);
        email(&store, 3, "r", "c@yahoo.com", T - 30, false);
        email(&store, 4, "r", "d@other.example", T - 30, false);
        let mut counts = store
            .sent_by_domain(&["gmail.com", "yahoo.com"], T - 3599, T - 59)
            .unwrap();
        counts.sort();
        assert_eq!(
            counts,
            [
                ("gmail.com".to_owned(), 2, 1),
                ("yahoo.com".to_owned(), 1, 1)
            ]
        );
        assert_eq!(address_domain("x@Gmail.COM"), "gmail.com");
    }
}
