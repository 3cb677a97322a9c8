//! The keys under which addresses are hashed (the suppression list, unsubscribe tokens): derived
//! from the workspace secret, never the secret itself.

use std::fmt;

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

/// The keys under which addresses are hashed for the suppression list and
/// unsubscribe tokens: one derived from the workspace secret and, after a
/// rotation, one from the previous secret. Without a secret
/// ([`AddressKeys::default`]) addresses are hashed with the legacy
/// [`address_hash`]. `Debug` never shows a key.
#[derive(Clone, Default)]
pub struct AddressKeys {
    current: Option<ring::hmac::Key>,
    previous: Option<ring::hmac::Key>,
}

impl fmt::Debug for AddressKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "AddressKeys(current: {}, previous: {})",
            self.current.is_some(),
            self.previous.is_some()
        )
    }
}

/// The key of address hashes derived from `secret` (never the secret itself,
/// which also signs other things).
fn derive_address_key(secret: &[u8]) -> ring::hmac::Key {
    let root = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    let derived = ring::hmac::sign(&root, b"tiercare address hash v1");
    ring::hmac::Key::new(ring::hmac::HMAC_SHA256, derived.as_ref())
}

fn keyed_hash(key: &ring::hmac::Key, address: &str) -> String {
    let normal = address.trim().to_lowercase();
    hex(ring::hmac::sign(key, normal.as_bytes()).as_ref())
}

impl AddressKeys {
    /// The shortest secret accepted, in bytes.
    pub const MIN_SECRET: usize = 16;

    /// Keys from the workspace secret and, after a rotation, the previous one.
    pub fn new(current: &[u8], previous: Option<&[u8]>) -> AddressKeys {
        AddressKeys {
            current: Some(derive_address_key(current)),
            previous: previous.map(derive_address_key),
        }
    }

    /// Whether addresses are hashed with a key (a secret is set).
    pub fn is_keyed(&self) -> bool {
        self.current.is_some()
    }

    /// The hash `address` is stored under now: keyed with the current secret,
    /// or the legacy [`address_hash`] without one.
    pub fn hash(&self, address: &str) -> String {
        match &self.current {
            Some(key) => keyed_hash(key, address),
            None => address_hash(address),
        }
    }

    /// Every hash `address` may be stored under: the current key's, the
    /// previous key's and the legacy one, without repeats.
    pub fn lookups(&self, address: &str) -> Vec<String> {
        let mut hashes = Vec::with_capacity(3);
        for key in [&self.current, &self.previous].into_iter().flatten() {
            hashes.push(keyed_hash(key, address));
        }
        hashes.push(address_hash(address));
        hashes
    }
}
