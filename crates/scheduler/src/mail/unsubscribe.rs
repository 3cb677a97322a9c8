//! Unsubscribe tokens: an address's keyed hash, signed so that nobody can unsubscribe
//! someone else by guessing, and so that a token reveals no address.
//!
//! Everything is keyed by the workspace secret, read from the environment (the variable
//! `mail.unsubscribe_secret_env` names), and after a rotation by the previous secret (the
//! variable `mail.unsubscribe_secret_previous_env` names):
//!
//! - The address hash is the suppression list's own ([`AddressKeys::hash`]: HMAC-SHA256 of the
//!   trimmed, lowercased address under a key derived from the secret), so a list of candidate
//!   addresses cannot be checked against a token or the database without the secret.
//! - A token is `<address hash>.<outbox id>.<day issued>.<mac>`: the e-mail it came in (for the
//!   preference page), the day it was made (days since 1970-01-01 UTC) and the first 128 bits
//!   of an HMAC-SHA256 over the rest, under another key derived from the secret, in lowercase
//!   hex.
//! - A token signed with the current secret never expires. One signed with the previous
//!   secret is honoured for [`PREVIOUS_SECRET_DAYS`] days after it was issued, so after a
//!   rotation every link sent is honoured for at least that long.
//! - Tokens of the first form, `<SHA-256 of the address>.<mac>` (MAC keyed with the secret
//!   itself), are still honoured, under either secret: they are in mailboxes already.
//!
//! [`crate::preferences`] applies a verified token; `tiercare unsubscribe --token` and the web
//! server (`tiercare serve`) both go through it.

use ring::hmac;
use tiercare_store::{AddressKeys, is_address_hash};

use super::MailError;

/// Hex digits of the MAC kept in a token (128 bits).
const MAC_HEX: usize = 32;

/// The shortest secret accepted, in bytes.
pub const MIN_SECRET: usize = AddressKeys::MIN_SECRET;

/// How many days after it was issued a token signed with the previous secret is honoured.
pub const PREVIOUS_SECRET_DAYS: i64 = 60;

/// One secret's keys: the token MAC's (derived), the first token form's (the secret) and the
/// survey links' (derived, [`super::survey`]).
pub(super) struct SecretKeys {
    token: hmac::Key,
    first_form: hmac::Key,
    pub(super) survey: hmac::Key,
}

impl SecretKeys {
    fn new(secret: &[u8]) -> SecretKeys {
        let first_form = hmac::Key::new(hmac::HMAC_SHA256, secret);
        let derived = hmac::sign(&first_form, b"tiercare unsubscribe token v2");
        let survey = hmac::sign(&first_form, b"tiercare survey link v1");
        SecretKeys {
            token: hmac::Key::new(hmac::HMAC_SHA256, derived.as_ref()),
            first_form,
            survey: hmac::Key::new(hmac::HMAC_SHA256, survey.as_ref()),
        }
    }
}

/// What a valid token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedToken {
    /// The hash of the address the e-mail went to, in one of [`AddressKeys::lookups`]' forms.
    pub hash: String,
    /// The outbox e-mail the link came in (`None` for tokens of the first form).
    pub outbox: Option<i64>,
}

/// Signs and verifies unsubscribe tokens with the workspace secret (and the previous one).
/// `Debug` never shows a secret.
pub struct TokenSigner {
    pub(super) current: SecretKeys,
    pub(super) previous: Option<SecretKeys>,
    addresses: AddressKeys,
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenSigner(<secret>)")
    }
}

fn check_length(secret: &[u8], variable: &str) -> Result<(), MailError> {
    if secret.len() < MIN_SECRET {
        return Err(MailError::InvalidConfig(format!(
            "the secret in {variable} must be at least {MIN_SECRET} bytes long: set it to a long \
             random string, e.g. `export {variable}=$(head -c 32 /dev/urandom | base64)`"
        )));
    }
    Ok(())
}

pub(super) fn hex_mac(key: &hmac::Key, text: &str) -> String {
    let tag = hmac::sign(key, text.as_bytes());
    let mut hex = String::with_capacity(MAC_HEX);
    for byte in &tag.as_ref()[..MAC_HEX / 2] {
        hex.push_str(&format!("{byte:02x}"));
    }
    hex
}

/// Compares two byte strings in time that depends only on their lengths (for signatures and
/// tokens; the one comparison every signed link and webhook uses).
pub(crate) fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0_u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The day (since 1970-01-01 UTC) of the unix time `now`.
pub(super) fn day(now: i64) -> i64 {
    now.div_euclid(86_400)
}

impl TokenSigner {
    /// A signer with the workspace secret and, after a rotation, the previous one (each at
    /// least [`MIN_SECRET`] bytes).
    pub fn new(secret: &[u8], previous: Option<&[u8]>) -> Result<TokenSigner, MailError> {
        check_length(secret, "the workspace secret")?;
        if let Some(previous) = previous {
            check_length(previous, "the previous workspace secret")?;
        }
        Ok(TokenSigner {
            current: SecretKeys::new(secret),
            previous: previous.map(SecretKeys::new),
            addresses: AddressKeys::new(secret, previous),
        })
    }

    /// The signer of the secrets in the environment variables `variable` and
    /// `previous_variable` (read through `env`), or `None` when `variable` is not set.
    pub fn from_env_if_set(
        variable: &str,
        previous_variable: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Option<TokenSigner>, MailError> {
        let read = |name: &str| env(name).filter(|s| !s.is_empty());
        let Some(secret) = read(variable) else {
            return Ok(None);
        };
        check_length(secret.as_bytes(), variable)?;
        let previous = read(previous_variable);
        if let Some(previous) = &previous {
            check_length(previous.as_bytes(), previous_variable)?;
        }
        TokenSigner::new(secret.as_bytes(), previous.as_deref().map(str::as_bytes)).map(Some)
    }

    /// As [`TokenSigner::from_env_if_set`], but the secret is required (unsubscribe links are
    /// configured).
    pub fn from_env(
        variable: &str,
        previous_variable: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<TokenSigner, MailError> {
        TokenSigner::from_env_if_set(variable, previous_variable, env)?.ok_or_else(|| {
            MailError::InvalidConfig(format!(
                "unsubscribe links are configured ([http] public_url or mail.unsubscribe_url) \
                 but the environment variable {variable} (which signs them) is not set: set it \
                 to a long random string, e.g. \
                 `export {variable}=$(head -c 32 /dev/urandom | base64)`"
            ))
        })
    }

    /// The signer of a workspace, from the secrets in the environment variables `[mail]` names,
    /// or `None` when the secret is not set.
    pub fn for_workspace(
        workspace: &crate::workspace::Workspace,
    ) -> Result<Option<TokenSigner>, MailError> {
        let mail = &workspace.config().mail;
        TokenSigner::from_env_if_set(
            &mail.unsubscribe_secret_env,
            &mail.unsubscribe_secret_previous_env,
            &|name| std::env::var(name).ok(),
        )
    }

    /// The keys of the suppression list's address hashes.
    pub fn address_keys(&self) -> &AddressKeys {
        &self.addresses
    }

    /// The token of an e-mail to `address` (the outbox row `outbox`), issued at `now`.
    pub fn token(&self, address: &str, outbox: i64, now: i64) -> String {
        let body = format!("{}.{outbox}.{}", self.addresses.hash(address), day(now));
        let mac = hex_mac(&self.current.token, &body);
        format!("{body}.{mac}")
    }

    /// What a valid token says, or `None` for a forged, damaged, foreign or expired one (MACs
    /// are compared in constant time). `now` decides whether a token of the previous secret is
    /// still honoured.
    pub fn verify_at(&self, token: &str, now: i64) -> Option<VerifiedToken> {
        let token = token.trim();
        let parts: Vec<&str> = token.split('.').collect();
        match parts[..] {
            [hash, mac] if is_address_hash(hash) && mac.len() == MAC_HEX => {
                let valid = std::iter::once(&self.current)
                    .chain(&self.previous)
                    .any(|keys| same(hex_mac(&keys.first_form, hash).as_bytes(), mac.as_bytes()));
                valid.then(|| VerifiedToken {
                    hash: hash.to_owned(),
                    outbox: None,
                })
            }
            [hash, outbox, issued, mac] if is_address_hash(hash) && mac.len() == MAC_HEX => {
                let outbox: i64 = outbox.parse().ok()?;
                let issued: i64 = issued.parse().ok()?;
                let body = &token[..token.len() - MAC_HEX - 1];
                let current = same(
                    hex_mac(&self.current.token, body).as_bytes(),
                    mac.as_bytes(),
                );
                let previous = !current
                    && self.previous.as_ref().is_some_and(|keys| {
                        same(hex_mac(&keys.token, body).as_bytes(), mac.as_bytes())
                            && day(now) - issued <= PREVIOUS_SECRET_DAYS
                    });
                (current || previous).then(|| VerifiedToken {
                    hash: hash.to_owned(),
                    outbox: Some(outbox),
                })
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use tiercare_store::address_hash;

    use super::*;

    const DAY: i64 = 86_400;

    #[test]
    fn tokens_verify_to_the_keyed_hash_and_forgeries_do_not() {
        let signer = TokenSigner::new(b"0123456789abcdef-secret", None).unwrap();
        let now = 20_000 * DAY;
        let token = signer.token("Ada@Example.com", 42, now);
        assert!(!token.contains('@'));
        let verified = signer.verify_at(&token, now).unwrap();
        assert_eq!(verified.outbox, Some(42));
        assert_eq!(verified.hash, signer.address_keys().hash("ada@example.com"));
        assert_ne!(
            verified.hash,
            address_hash("ada@example.com"),
            "not the plain SHA-256 a list of candidate addresses reverses"
        );
        assert!(
            signer.verify_at(&token, now + 3650 * DAY).is_some(),
            "no expiry"
        );
        let other = TokenSigner::new(b"another secret of 16+ bytes", None).unwrap();
        assert_eq!(other.verify_at(&token, now), None, "another secret");
        let forged = token.replacen(".42.", ".43.", 1);
        assert_eq!(signer.verify_at(&forged, now), None, "another e-mail");
        let (hash, _) = token.split_once('.').unwrap();
        assert_eq!(signer.verify_at(hash, now), None);
        assert_eq!(signer.verify_at("", now), None);
        assert_eq!(signer.verify_at("a.b.c.d", now), None);
        assert!(TokenSigner::new(b"short", None).is_err());
        let err = TokenSigner::from_env("X_SECRET", "X_OLD", &|_| None).unwrap_err();
        assert!(err.to_string().contains("X_SECRET"), "{err}");
        assert!(
            TokenSigner::from_env_if_set("X_SECRET", "X_OLD", &|_| None)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn after_a_rotation_old_links_are_honoured_for_sixty_days_after_they_were_issued() {
        let old = TokenSigner::new(b"the first secret, 16+ bytes", None).unwrap();
        let issued = 20_000 * DAY + 3600;
        let token = old.token("ada@example.com", 7, issued);
        let rotated = TokenSigner::new(
            b"the second secret, 16+ bytes",
            Some(b"the first secret, 16+ bytes".as_slice()),
        )
        .unwrap();
        assert!(rotated.verify_at(&token, issued + 60 * DAY).is_some());
        assert_eq!(rotated.verify_at(&token, issued + 61 * DAY), None);
        let dropped = TokenSigner::new(b"the second secret, 16+ bytes", None).unwrap();
        assert_eq!(dropped.verify_at(&token, issued), None);
    }

    #[test]
    fn tokens_of_the_first_form_are_still_honoured() {
        // The first form: the plain hash, and a MAC keyed with the secret itself.
        let secret = b"0123456789abcdef-secret";
        let hash = address_hash("ada@example.com");
        let mac = hex_mac(&hmac::Key::new(hmac::HMAC_SHA256, secret), &hash);
        let token = format!("{hash}.{mac}");
        let signer = TokenSigner::new(secret, None).unwrap();
        assert_eq!(
            signer.verify_at(&token, 0),
            Some(VerifiedToken {
                hash: hash.clone(),
                outbox: None
            })
        );
        let rotated = TokenSigner::new(b"a new secret of 16+ bytes", Some(secret)).unwrap();
        assert!(rotated.verify_at(&token, 0).is_some());
        assert_eq!(
            TokenSigner::new(b"a new secret of 16+ bytes", None)
                .unwrap()
                .verify_at(&token, 0),
            None
        );
    }
}
