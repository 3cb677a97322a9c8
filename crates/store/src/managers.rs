//! Account managers with their load, and owner assignment.
//!
//! Which manager gets which customer is decided outside the store, from a
//! rule ("A customers to senior managers, balanced by capacity"): the store
//! lists the managers with their capacity and current load
//! ([`Store::managers`]) and applies the decided assignments atomically
//! ([`Store::assign_owners`]).

use std::collections::HashSet;

use rusqlite::{OptionalExtension, TransactionBehavior, params};

use crate::counts::{count, grouped_counts};
use crate::db::Store;
use crate::error::{AtPath, StoreError};
use crate::pool::mark_owner_change;

/// A manager with their current load.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Manager {
    /// The row id.
    pub id: i64,
    /// The manager's external id (what `customers.owner` refers to).
    pub external_id: String,
    /// Display name.
    pub name: String,
    /// E-mail address.
    pub email: Option<String>,
    /// Role or title.
    pub role: Option<String>,
    /// How many customers they can look after; `None`: no limit given.
    pub capacity: Option<u64>,
    /// Whether they take work.
    pub active: bool,
    /// Customers they own now: the load.
    pub customers: u64,
    /// Their tasks not done (open or snoozed).
    pub open_tasks: u64,
}

impl Manager {
    /// Customers they can still take: capacity minus load (0 when full or
    /// over); `None` when no capacity is given.
    pub fn spare_capacity(&self) -> Option<u64> {
        self.capacity
            .map(|capacity| capacity.saturating_sub(self.customers))
    }
}

/// A customer without an owner, from [`Store::unowned_customers`].
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct UnownedCustomer {
    /// The customer's rowid (what [`Store::assign_owners`] takes).
    pub rowid: i64,
    /// The customer's external id.
    pub external_id: String,
    /// Their current tier, if they have been assessed.
    pub tier: Option<String>,
    /// What they are worth, for "most valuable first": the score `clv_12m` when the rules
    /// compute one by that name, else the sum of their orders (monetary, all time), else 0.
    pub value: f64,
}

/// The customers without an owner, with tier and value; `?1` the tiers wanted as a JSON array,
/// or NULL. Read through the partial index `customers_unowned`.
const UNOWNED_CUSTOMERS: &str = "\
SELECT c.id, c.external_id, t.tier, \
  coalesce(json_extract(t.scores, '$.clv_12m'), \
           (SELECT sum(o.amount) FROM orders o WHERE o.customer_id = c.id), 0.0) \
FROM customers c \
LEFT JOIN customer_tiers t ON t.customer_id = c.id \
WHERE (c.owner IS NULL OR trim(c.owner) = '') \
AND (?1 IS NULL OR t.tier IN (SELECT value FROM json_each(?1))) \
ORDER BY c.id";

/// How many customers have no owner, per tier. Read through the partial index
/// `customers_unowned`.
const UNOWNED_COUNTS: &str = "\
SELECT t.tier, count(*) FROM customers c \
LEFT JOIN customer_tiers t ON t.customer_id = c.id \
WHERE c.owner IS NULL OR trim(c.owner) = '' GROUP BY t.tier ORDER BY t.tier";

impl Store {
    /// Every customer without an owner (none, or blank), by rowid (import order), with their
    /// current tier and value; only those in `tiers` when it is given (customers without a tier
    /// are then left out). Reads only the unowned customers (the index `customers_unowned`).
    pub fn unowned_customers(
        &self,
        tiers: Option<&[&str]>,
    ) -> Result<Vec<UnownedCustomer>, StoreError> {
        // The tiers as a JSON array, read by json_each: one statement for any number of tiers.
        let wanted = tiers.map(|tiers| serde_json::json!(tiers).to_string());
        self.conn
            .prepare_cached(UNOWNED_CUSTOMERS)
            .and_then(|mut stmt| {
                stmt.query_map([wanted], |row| {
                    Ok(UnownedCustomer {
                        rowid: row.get(0)?,
                        external_id: row.get(1)?,
                        tier: row.get(2)?,
                        value: row.get::<_, Option<f64>>(3)?.unwrap_or(0.0),
                    })
                })?
                .collect()
            })
            .at(&self.label)
    }

    /// How many customers have no owner, per current tier (`None`: not assessed yet), by tier.
    pub fn unowned_counts(&self) -> Result<Vec<(Option<String>, u64)>, StoreError> {
        grouped_counts(&self.conn, UNOWNED_COUNTS).at(&self.label)
    }

    /// Every manager, by external id, with the number of customers they
    /// own and of their tasks not done. One scan of customers and one of
    /// pending tasks.
    pub fn managers(&self) -> Result<Vec<Manager>, StoreError> {
        self.conn
            .prepare_cached(
                "SELECT m.id, m.external_id, m.name, m.email, m.role, m.capacity, m.active, \
                 coalesce(o.n, 0), coalesce(t.n, 0) FROM managers m \
                 LEFT JOIN (SELECT owner, count(*) AS n FROM customers \
                            WHERE owner IS NOT NULL GROUP BY owner) o ON o.owner = m.external_id \
                 LEFT JOIN (SELECT assignee, count(*) AS n FROM tasks \
                            WHERE status <> 'done' GROUP BY assignee) t \
                      ON t.assignee = m.external_id \
                 ORDER BY m.external_id",
            )
            .and_then(|mut stmt| {
                stmt.query_map([], |row| {
                    Ok(Manager {
                        id: row.get(0)?,
                        external_id: row.get(1)?,
                        name: row.get(2)?,
                        email: row.get(3)?,
                        role: row.get(4)?,
                        capacity: row
                            .get::<_, Option<i64>>(5)?
                            .map(|capacity| capacity.unsigned_abs()),
                        active: row.get(6)?,
                        customers: count(row, 7)?,
                        open_tasks: count(row, 8)?,
                    })
                })?
                .collect()
            })
            .at(&self.label)
    }

    /// Makes each manager of `assignments` (customer rowid, manager
    /// external id) the owner of the customer, at `now`, in ONE `IMMEDIATE`
    /// transaction, and returns how many customers got an owner.
    ///
    /// Only customers without an owner (none, or blank) are assigned: a
    /// customer who has one keeps it, so an assignment decided from a stale
    /// read never overrides a newer one (and of two assignments of the same
    /// customer, the first wins). Customers that no longer exist are
    /// skipped. Each owner given leaves an audit row (`owner_changes`: kind `assigned`, reason
    /// `assigned: tier A`, by `assignment`). Every manager must exist and be active, or nothing is
    /// written ([`StoreError::UnknownManager`],
    /// [`StoreError::InactiveManager`]). Capacity is not enforced here: it
    /// is the assigning rule's to respect.
    pub fn assign_owners(
        &mut self,
        assignments: &[(i64, String)],
        now: i64,
    ) -> Result<u64, StoreError> {
        let path = self.label.as_path();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .at(path)?;
        let mut checked: HashSet<&str> = HashSet::new();
        let mut assigned = 0;
        {
            let mut manager = tx
                .prepare("SELECT active FROM managers WHERE external_id = ?1")
                .at(path)?;
            let mut assign = tx
                .prepare(
                    "UPDATE customers SET owner = ?2, updated_at = ?3 \
                     WHERE id = ?1 AND (owner IS NULL OR trim(owner) = '')",
                )
                .at(path)?;
            for (customer, id) in assignments {
                let id = id.trim();
                if checked.insert(id) {
                    let active: Option<bool> = manager
                        .query_row([id], |row| row.get(0))
                        .optional()
                        .at(path)?;
                    match active {
                        None => return Err(StoreError::UnknownManager { id: id.to_owned() }),
                        Some(false) => {
                            return Err(StoreError::InactiveManager { id: id.to_owned() });
                        }
                        Some(true) => {}
                    }
                }
                if assign.execute(params![customer, id, now]).at(path)? == 1 {
                    let reason: String = tx
                        .query_row(
                            "SELECT 'assigned: tier ' || coalesce((SELECT tier FROM \
                             customer_tiers WHERE customer_id = ?1), 'none')",
                            [customer],
                            |row| row.get(0),
                        )
                        .at(path)?;
                    mark_owner_change(&tx, *customer, "assigned", &reason, "assignment")
                        .at(path)?;
                    assigned += 1;
                }
            }
        }
        tx.commit().at(path)?;
        Ok(assigned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn customers_without_an_owner_are_read_through_their_index_not_a_scan() {
        // An idle tick of the daemon runs these: they must not read every customer.
        let store = Store::open_in_memory().unwrap();
        for sql in [UNOWNED_COUNTS, &UNOWNED_CUSTOMERS.replace("?1", "NULL")] {
            let plan = store.query_plan(sql);
            assert!(
                plan.contains("SCAN c USING INDEX customers_unowned"),
                "{sql}\n{plan}"
            );
        }
    }
}
