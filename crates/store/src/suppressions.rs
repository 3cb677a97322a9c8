//! The suppression list: addresses that must never get e-mail again, kept
//! by hash only.
//!
//! An address is stored as a keyed hash: the lowercase-hex HMAC-SHA256 of the
//! trimmed, lowercased address under a key derived from the workspace secret
//! ([`AddressKeys`], set on the [`Store`] with [`Store::set_address_keys`]), so
//! the list keeps no personal data, a copy of the file without the secret
//! cannot be checked against a list of candidate addresses, and the list still
//! recognises the address when it comes back (after a forget, a new import
//! with the same address is still suppressed). Without a secret, and in rows
//! written before keyed hashes existed, the hash is [`address_hash`], a plain
//! SHA-256: such legacy rows are always honoured, and
//! [`Store::rekey_suppressions`] re-keys those whose address is still on file
//! (as it does rows under the previous secret after a rotation). The outbox
//! checks the list inside every claim, so an address suppressed after its
//! e-mail was queued gets nothing.

use std::fmt;

use rusqlite::{Connection, OptionalExtension, params};

pub(crate) use crate::address_keys::hex;
pub use crate::address_keys::{AddressKeys, address_hash, is_address_hash};
use crate::counts::grouped_counts;
use crate::db::Store;
use crate::error::{AtPath, StoreError};

/// Why an address is suppressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SuppressionReason {
    /// The recipient unsubscribed (a link, a reply, `tiercare unsubscribe`).
    Unsubscribe,
    /// The address bounced permanently: refused on RCPT (550, 551, 553) or after DATA, or a
    /// hard bounce notification (a DSN, a provider's webhook).
    HardBounce,
    /// The address bounced temporarily too often (`[mail.bounces] soft_limit` soft bounces
    /// within `soft_window_days`).
    SoftBounces,
    /// The recipient reported an e-mail as spam (a provider's complaint notification).
    Complaint,
    /// The customer was forgotten; their address must never be mailed again.
    Forgotten,
    /// Added by hand for another reason.
    Manual,
}

impl SuppressionReason {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            SuppressionReason::Unsubscribe => "unsubscribe",
            SuppressionReason::HardBounce => "hard_bounce",
            SuppressionReason::SoftBounces => "soft_bounces",
            SuppressionReason::Complaint => "complaint",
            SuppressionReason::Forgotten => "forgotten",
            SuppressionReason::Manual => "manual",
        }
    }
}

impl fmt::Display for SuppressionReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Adds `hash` to the list unless it is there (the first reason stays).
/// Returns whether it was new.
pub(crate) fn insert_hash(
    conn: &Connection,
    hash: &str,
    reason: SuppressionReason,
    source: &str,
    now: i64,
) -> rusqlite::Result<bool> {
    let added = conn
        .prepare_cached(
            "INSERT INTO suppressions (address_hash, reason, source, created_at) \
             VALUES (?1, ?2, ?3, ?4) ON CONFLICT (address_hash) DO NOTHING",
        )?
        .execute(params![hash, reason.as_str(), source, now])?;
    Ok(added == 1)
}

/// Whether the address with hash `hash` is suppressed.
pub(crate) fn hash_is_suppressed(conn: &Connection, hash: &str) -> rusqlite::Result<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM suppressions WHERE address_hash = ?1")?
        .query_row([hash], |_| Ok(()))
        .optional()?
        .is_some())
}

/// Whether `address` is suppressed under any of the hashes `keys` may have
/// stored it under (current key, previous key, legacy).
pub(crate) fn address_is_suppressed(
    conn: &Connection,
    keys: &AddressKeys,
    address: &str,
) -> rusqlite::Result<bool> {
    for hash in keys.lookups(address) {
        if hash_is_suppressed(conn, &hash)? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Adds `address` to the list under its current hash unless it is there
/// under any hash (the first reason stays). Returns whether it was new.
pub(crate) fn insert_address(
    conn: &Connection,
    keys: &AddressKeys,
    address: &str,
    reason: SuppressionReason,
    source: &str,
    now: i64,
) -> rusqlite::Result<bool> {
    if address_is_suppressed(conn, keys, address)? {
        return Ok(false);
    }
    insert_hash(conn, &keys.hash(address), reason, source, now)
}

/// The customers whose e-mail is `?1`, compared as an address (case and surrounding space
/// ignored); answered by the expression index `customers_email_lower` (migration 22).
pub(crate) const CUSTOMERS_BY_EMAIL: &str = "SELECT id FROM customers WHERE email IS NOT NULL \
     AND lower(trim(email)) = lower(trim(?1))";

impl Store {
    /// Adds `address` to the suppression list (by its [`address_hash`]),
    /// with why and where from (`"cli"`, `"csv:FILE:ROW"`, ...). Returns
    /// whether it was new; an address already listed keeps its first entry.
    /// [`StoreError::InvalidSuppression`] for an empty address.
    pub fn suppress(
        &mut self,
        address: &str,
        reason: SuppressionReason,
        source: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let added = self.suppress_all(&[(address, source)], reason, now)?;
        Ok(added.first().copied().unwrap_or(false))
    }

    /// [`suppress`](Self::suppress) for many `(address, source)` pairs in one `IMMEDIATE`
    /// transaction (a file of addresses is suppressed whole or not at all). Returns, per pair,
    /// whether it was new. [`StoreError::InvalidSuppression`] (and nothing written) when an
    /// address is empty.
    pub fn suppress_all(
        &mut self,
        addresses: &[(&str, &str)],
        reason: SuppressionReason,
        now: i64,
    ) -> Result<Vec<bool>, StoreError> {
        if let Some((address, _)) = addresses.iter().find(|(a, _)| a.trim().is_empty()) {
            return Err(StoreError::InvalidSuppression {
                address: (*address).to_owned(),
                problem: "the address is empty".to_owned(),
            });
        }
        let path = self.label.clone();
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .at(&path)?;
        let mut added = Vec::with_capacity(addresses.len());
        for (address, source) in addresses {
            let new = insert_address(&tx, &self.keys, address, reason, source, now).at(&path)?;
            if new && matches!(reason, SuppressionReason::Unsubscribe) {
                // Other systems hear of it (`customer.unsubscribed`), in the same transaction.
                let customers: Vec<i64> = tx
                    .prepare_cached(CUSTOMERS_BY_EMAIL)
                    .and_then(|mut stmt| {
                        stmt.query_map([address], |row| row.get(0))?
                            .collect::<rusqlite::Result<_>>()
                    })
                    .at(&path)?;
                for customer in customers {
                    crate::webhooks::customer_unsubscribed(&tx, customer, source, now).at(&path)?;
                }
            }
            added.push(new);
        }
        tx.commit().at(&path)?;
        Ok(added)
    }

    /// Sets the keys addresses are hashed under (from the workspace secret);
    /// without them the legacy [`address_hash`] is used.
    pub fn set_address_keys(&mut self, keys: AddressKeys) {
        self.keys = keys;
    }

    /// The keys addresses are hashed under.
    pub fn address_keys(&self) -> &AddressKeys {
        &self.keys
    }

    /// Re-keys the suppression list, in one `IMMEDIATE` transaction: every
    /// row stored under the legacy hash or the previous key's hash of an
    /// address still on file (a customer's, or one the outbox mailed) is
    /// moved to the current key's hash, keeping its reason, source and time.
    /// Rows of addresses no longer on file (forgotten customers) cannot be
    /// re-keyed and stay as they are, still honoured. Does nothing without a
    /// key. Returns how many rows moved.
    pub fn rekey_suppressions(&mut self) -> Result<u64, StoreError> {
        if !self.keys.is_keyed() {
            return Ok(0);
        }
        let keys = self.keys.clone();
        let path = self.label.as_path();
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .at(path)?;
        let stored: std::collections::HashSet<String> = tx
            .prepare("SELECT address_hash FROM suppressions")
            .and_then(|mut stmt| {
                stmt.query_map([], |row| row.get::<_, String>(0))?
                    .collect::<rusqlite::Result<_>>()
            })
            .at(path)?;
        let mut moved = 0;
        if !stored.is_empty() {
            let addresses: Vec<String> = tx
                .prepare(
                    "SELECT email FROM customers WHERE email IS NOT NULL AND trim(email) <> '' \
                     UNION SELECT to_address FROM outbox",
                )
                .and_then(|mut stmt| {
                    stmt.query_map([], |row| row.get::<_, String>(0))?
                        .collect::<rusqlite::Result<_>>()
                })
                .at(path)?;
            for address in addresses {
                let lookups = keys.lookups(&address);
                let current = &lookups[0];
                for old in lookups[1..].iter().filter(|h| stored.contains(*h)) {
                    let exists = hash_is_suppressed(&tx, current).at(path)?;
                    let sql = if exists {
                        "DELETE FROM suppressions WHERE address_hash = ?2"
                    } else {
                        "UPDATE suppressions SET address_hash = ?1 WHERE address_hash = ?2"
                    };
                    moved += tx
                        .prepare_cached(sql)
                        .and_then(|mut stmt| stmt.execute(params![current, old]))
                        .at(path)? as u64;
                }
            }
        }
        tx.commit().at(path)?;
        Ok(moved)
    }

    /// Adds an already hashed address (from a signed unsubscribe token, any
    /// of [`AddressKeys::lookups`]' forms) to the suppression list. Returns
    /// whether it was new.
    /// [`StoreError::InvalidSuppression`] when `hash` is not an
    /// [`address_hash`].
    pub fn suppress_hash(
        &mut self,
        hash: &str,
        reason: SuppressionReason,
        source: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        if !is_address_hash(hash) {
            return Err(StoreError::InvalidSuppression {
                address: hash.to_owned(),
                problem: "not an address hash (64 lowercase hex digits)".to_owned(),
            });
        }
        insert_hash(&self.conn, hash, reason, source, now).at(&self.label)
    }

    /// Whether `address` is on the suppression list.
    pub fn is_suppressed(&self, address: &str) -> Result<bool, StoreError> {
        address_is_suppressed(&self.conn, &self.keys, address).at(&self.label)
    }

    /// Whether the hash `hash` (from a signed token) is on the suppression
    /// list.
    pub fn hash_is_suppressed(&self, hash: &str) -> Result<bool, StoreError> {
        hash_is_suppressed(&self.conn, hash).at(&self.label)
    }

    /// How many addresses are suppressed, by reason.
    pub fn suppression_counts(&self) -> Result<Vec<(String, u64)>, StoreError> {
        grouped_counts(
            &self.conn,
            "SELECT reason, count(*) FROM suppressions GROUP BY reason ORDER BY reason",
        )
        .at(&self.label)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unsubscribe_finds_the_customers_of_an_address_through_an_index_not_a_scan() {
        // Once per suppressed address: a file of 10,000 addresses read 10,000 times the table.
        let store = Store::open_in_memory().unwrap();
        let plan = store.query_plan(CUSTOMERS_BY_EMAIL);
        assert!(plan.contains("USING INDEX customers_email_lower"), "{plan}");
    }

    #[test]
    fn a_file_of_addresses_is_suppressed_in_one_transaction_whole_or_not_at_all() {
        let mut store = Store::open_in_memory().unwrap();
        let err = store
            .suppress_all(
                &[("ada@example.com", "csv:a:2"), (" ", "csv:a:3")],
                SuppressionReason::Unsubscribe,
                100,
            )
            .unwrap_err();
        assert!(
            matches!(err, StoreError::InvalidSuppression { .. }),
            "{err}"
        );
        assert!(!store.is_suppressed("ada@example.com").unwrap());
        let added = store
            .suppress_all(
                &[
                    ("ada@example.com", "csv:a:2"),
                    ("ADA@example.com ", "csv:a:3"),
                    ("bob@example.com", "csv:a:4"),
                ],
                SuppressionReason::Unsubscribe,
                100,
            )
            .unwrap();
        assert_eq!(added, [true, false, true]);
        assert!(store.is_suppressed("bob@example.com").unwrap());
    }

    #[test]
    fn addresses_are_hashed_trimmed_and_lowercased() {
        // echo -n "ada@example.com" | sha256sum
        assert_eq!(
            address_hash(" Ada@Example.COM "),
            "b5fc85e55755f9e0d030a10ab4429b6b2944855f9a0d60077fe832becbc41d72"
        );
        assert!(is_address_hash(&address_hash("x")));
        assert!(!is_address_hash("ABC"));
    }

    #[test]
    fn keyed_hashes_hide_addresses_and_legacy_and_previous_rows_are_honoured_and_rekeyed() {
        let mut store = Store::open_in_memory().unwrap();
        // Written before keys existed: plain SHA-256.
        store
            .suppress("old@example.com", SuppressionReason::Unsubscribe, "cli", 1)
            .unwrap();
        store
            .suppress(
                "gone@example.com",
                SuppressionReason::Forgotten,
                "forget",
                1,
            )
            .unwrap();
        let keys = AddressKeys::new(b"first secret of 16+ bytes", None);
        assert_ne!(
            keys.hash("ada@example.com"),
            address_hash("ada@example.com")
        );
        assert!(is_address_hash(&keys.hash("ada@example.com")));
        store.set_address_keys(keys.clone());
        store
            .suppress("Ada@Example.com ", SuppressionReason::Unsubscribe, "web", 2)
            .unwrap();
        assert!(
            store
                .hash_is_suppressed(&keys.hash("ada@example.com"))
                .unwrap()
        );
        assert!(
            !store
                .hash_is_suppressed(&address_hash("ada@example.com"))
                .unwrap()
        );
        assert!(
            store.is_suppressed("old@example.com").unwrap(),
            "legacy row honoured"
        );
        assert!(
            !store
                .suppress("OLD@example.com", SuppressionReason::Manual, "cli", 3)
                .unwrap(),
            "already listed under its legacy hash"
        );
        // A rotation: the first secret becomes the previous one.
        let rotated = AddressKeys::new(
            b"second secret of 16+ bytes",
            Some(b"first secret of 16+ bytes".as_slice()),
        );
        store.set_address_keys(rotated.clone());
        assert!(
            store.is_suppressed("ada@example.com").unwrap(),
            "previous key honoured"
        );
        // Re-keying moves the rows of addresses on file (here, in the outbox or the
        // customers); the forgotten address is not on file and stays legacy, still honoured.
        store
            .conn
            .execute_batch(
                "INSERT INTO customers (external_id, email, created_at, updated_at) \
                 VALUES ('c1', 'ada@example.com', 0, 0), ('c2', 'old@example.com', 0, 0)",
            )
            .unwrap();
        assert_eq!(store.rekey_suppressions().unwrap(), 2);
        assert!(
            store
                .hash_is_suppressed(&rotated.hash("old@example.com"))
                .unwrap()
        );
        assert!(
            store
                .hash_is_suppressed(&rotated.hash("ada@example.com"))
                .unwrap()
        );
        // Without the previous secret, the re-keyed rows are still found.
        store.set_address_keys(AddressKeys::new(b"second secret of 16+ bytes", None));
        assert!(store.is_suppressed("ada@example.com").unwrap());
        assert!(store.is_suppressed("gone@example.com").unwrap());
        assert_eq!(store.rekey_suppressions().unwrap(), 0);
        assert_eq!(
            store.suppression_counts().unwrap(),
            vec![("forgotten".to_owned(), 1), ("unsubscribe".to_owned(), 2)]
        );
    }
}
