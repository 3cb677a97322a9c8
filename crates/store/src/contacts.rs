//! Contact accounting: how often, and how recently, each customer was
//! contacted, in bulk (for reports and overviews). The follow-up planner
//! does not use these counts: it gets each customer's exact e-mail times
//! from [`Store::for_each_followup_state`].
//!
//! A **contact** is an interaction (any kind: calls, visits, e-mails,
//! meetings, as imported) or a follow-up e-mail to the customer that is
//! planned or done (kind `email`; skipped and cancelled ones are not
//! contacts, and neither are tasks, owner notifications or attribute sets,
//! which do not reach the customer). Its time is the interaction's
//! `occurred_at` or the follow-up's `scheduled_at`.
//!
//! [`Store::contact_counts`] computes the counts of every customer at a
//! time `at` with one scan of interactions and one of the ledger's e-mails,
//! into dense arrays, like the features: no query per customer.

use rusqlite::{Transaction, TransactionBehavior};

use crate::db::Store;
use crate::error::{AtPath, StoreError};
use crate::features::Slots;

/// The windows of [`ContactCounts`], in seconds: a day, a week and 30
/// days. A contact at `t` is in the window `W` at `at` when
/// `at - W < t <= at`.
pub const CONTACT_WINDOWS: [i64; 3] = [86_400, 7 * 86_400, 30 * 86_400];

/// One customer's contacts at a time `at`.
///
/// A contact is an interaction (any kind) or a follow-up e-mail to the
/// customer that is planned or done; skipped and cancelled follow-ups,
/// tasks, owner notifications and attribute sets are not contacts. Its time
/// is the interaction's `occurred_at` or the follow-up's `scheduled_at`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ContactCounts {
    /// The customer's rowid.
    pub customer_rowid: i64,
    /// Contacts in the last day: `at - 1 day < t <= at`.
    pub day: u32,
    /// Contacts in the last 7 days.
    pub week: u32,
    /// Contacts in the last 30 days.
    pub month: u32,
    /// Follow-up e-mails (planned or done) in the last day.
    pub emails_day: u32,
    /// Follow-up e-mails in the last 7 days.
    pub emails_week: u32,
    /// Follow-up e-mails in the last 30 days.
    pub emails_month: u32,
    /// The latest contact at or before `at`, if any.
    pub last_contact_at: Option<i64>,
    /// The earliest contact after `at` (a follow-up e-mail planned for
    /// later, or an interaction dated later), if any: the planner keeps its
    /// minimum gap before it too.
    pub next_contact_at: Option<i64>,
}

/// Every customer's [`ContactCounts`] at one time, from
/// [`Store::contact_counts`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Contacts {
    /// The time the counts are for, unix seconds UTC.
    pub at: i64,
    /// One entry per customer, by rowid (the order of
    /// [`Store::for_each_features`], so both can be walked together).
    counts: Vec<ContactCounts>,
}

impl Contacts {
    /// The counts of the customer with `customer_rowid`, if there is one.
    pub fn get(&self, customer_rowid: i64) -> Option<&ContactCounts> {
        let index = self
            .counts
            .binary_search_by_key(&customer_rowid, |counts| counts.customer_rowid)
            .ok()?;
        Some(&self.counts[index])
    }

    /// Every customer's counts, by rowid.
    pub fn as_slice(&self) -> &[ContactCounts] {
        &self.counts
    }

    /// How many customers there are.
    pub fn len(&self) -> usize {
        self.counts.len()
    }

    /// Whether there are no customers.
    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }
}

impl Store {
    /// Every customer's contacts at `at`: counts in the last day, week and
    /// 30 days ([`CONTACT_WINDOWS`]), the last contact at or before `at`
    /// and the next one after it. One read transaction, one scan each of
    /// customers, interactions and the ledger's e-mails; about 40 bytes per
    /// customer.
    pub fn contact_counts(&self, at: i64) -> Result<Contacts, StoreError> {
        let path = self.label.as_path();
        let tx = Transaction::new_unchecked(&self.conn, TransactionBehavior::Deferred).at(path)?;
        let counts = count_contacts(&tx, at).at(path)?;
        Ok(Contacts { at, counts })
    }
}

fn count_contacts(tx: &Transaction<'_>, at: i64) -> rusqlite::Result<Vec<ContactCounts>> {
    let rowids: Vec<i64> = tx
        .prepare("SELECT id FROM customers ORDER BY id")?
        .query_map([], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let slots = Slots::new(&rowids);
    let mut counts: Vec<ContactCounts> = rowids
        .iter()
        .map(|&customer_rowid| ContactCounts {
            customer_rowid,
            ..ContactCounts::default()
        })
        .collect();
    let starts = CONTACT_WINDOWS.map(|window| at.saturating_sub(window));
    let mut add = |customer: i64, t: i64, email: bool| {
        let Some(slot) = slots.get(customer) else {
            return;
        };
        let c = &mut counts[slot];
        if t > at {
            c.next_contact_at = Some(c.next_contact_at.map_or(t, |next| next.min(t)));
            return;
        }
        c.last_contact_at = Some(c.last_contact_at.map_or(t, |last| last.max(t)));
        let [day, week, month] = starts.map(|start| t > start);
        for (count, inside) in [
            (&mut c.day, day),
            (&mut c.week, week),
            (&mut c.month, month),
        ] {
            if inside {
                *count = count.saturating_add(1);
            }
        }
        if email {
            for (count, inside) in [
                (&mut c.emails_day, day),
                (&mut c.emails_week, week),
                (&mut c.emails_month, month),
            ] {
                if inside {
                    *count = count.saturating_add(1);
                }
            }
        }
    };
    let mut stmt = tx.prepare("SELECT customer_id, occurred_at FROM interactions")?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        add(row.get(0)?, row.get(1)?, false);
    }
    let mut stmt = tx.prepare(
        "SELECT customer_id, scheduled_at, kind = 'email' FROM followups \
         WHERE kind IN ('email', 'sms') AND status IN ('planned', 'done')",
    )?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        // An SMS is a contact, not an e-mail.
        add(row.get(0)?, row.get(1)?, row.get(2)?);
    }
    Ok(counts)
}
