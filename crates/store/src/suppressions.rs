//! The suppression list: addresses that must never get e-mail again, kept
//! by hash only.
//!
//! An address is stored as [`address_hash`], the lowercase-hex SHA-256 of
//! the trimmed, lowercased address, so the list keeps no personal data and
//! still recognises the address when it comes back (after a forget, a new
//! import with the same address is still suppressed). The outbox checks the
//! list inside every claim, so an address suppressed after its e-mail was
//! queued gets nothing.

use std::fmt;

use rusqlite::{Connection, OptionalExtension, params};

use crate::counts::grouped_counts;
use crate::db::Store;
use crate::error::{AtPath, StoreError};

/// The hash under which an address is suppressed: lowercase-hex SHA-256 of
/// the address trimmed and lowercased (`" Ada@Example.COM "` and
/// `"ada@example.com"` are the same entry).
pub fn address_hash(address: &str) -> String {
    let normal = address.trim().to_lowercase();
    let digest = ring::digest::digest(&ring::digest::SHA256, normal.as_bytes());
    hex(digest.as_ref())
}

/// Lowercase hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    out
}

/// Whether `text` is an address hash as [`address_hash`] makes them.
pub fn is_address_hash(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

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
        if address.trim().is_empty() {
            return Err(StoreError::InvalidSuppression {
                address: address.to_owned(),
                problem: "the address is empty".to_owned(),
            });
        }
        self.suppress_hash(&address_hash(address), reason, source, now)
    }

    /// Adds an already hashed address (from a signed unsubscribe token) to
    /// the suppression list. Returns whether it was new.
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
        hash_is_suppressed(&self.conn, &address_hash(address)).at(&self.label)
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
    fn addresses_are_hashed_trimmed_and_lowercased() {
        // echo -n "ada@example.com" | sha256sum
        assert_eq!(
            address_hash(" Ada@Example.COM "),
            "b5fc85e55755f9e0d030a10ab4429b6b2944855f9a0d60077fe832becbc41d72"
        );
        assert!(is_address_hash(&address_hash("x")));
        assert!(!is_address_hash("ABC"));
    }
}
