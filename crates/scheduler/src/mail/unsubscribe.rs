//! Unsubscribe tokens: an address's suppression hash, signed so that nobody can unsubscribe
//! someone else by guessing.
//!
//! A token is `<address hash>.<mac>`: the hash is the suppression list's own
//! ([`tiercare_store::address_hash`]: SHA-256 of the trimmed, lowercased address, so the
//! token reveals no address), and the MAC is the first 128 bits of HMAC-SHA256 over the hash
//! with a secret from the environment (the variable `mail.unsubscribe_secret_env` names), in
//! lowercase hex. `tiercare unsubscribe --token` verifies it and suppresses the hash; a web
//! endpoint receiving the one-click POST can do the same.

use ring::hmac;
use tiercare_store::{address_hash, is_address_hash};

use super::MailError;

/// Hex digits of the MAC kept in a token (128 bits).
const MAC_HEX: usize = 32;

/// The shortest secret accepted, in bytes.
pub const MIN_SECRET: usize = 16;

/// Signs and verifies unsubscribe tokens with one secret. `Debug` never shows the secret.
pub struct TokenSigner {
    key: hmac::Key,
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenSigner(<secret>)")
    }
}

impl TokenSigner {
    /// A signer with `secret` (at least [`MIN_SECRET`] bytes).
    pub fn new(secret: &[u8]) -> Result<TokenSigner, MailError> {
        if secret.len() < MIN_SECRET {
            return Err(MailError::InvalidConfig(format!(
                "the unsubscribe secret must be at least {MIN_SECRET} bytes long"
            )));
        }
        Ok(TokenSigner {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
        })
    }

    /// A signer with the secret in the environment variable `variable`, read through `env`.
    pub fn from_env(
        variable: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<TokenSigner, MailError> {
        let secret = env(variable).filter(|s| !s.is_empty()).ok_or_else(|| {
            MailError::InvalidConfig(format!(
                "mail.unsubscribe_url is set but the environment variable {variable} (which \
                 signs unsubscribe links) is not: set it to a long random string, e.g. \
                 `export {variable}=$(head -c 32 /dev/urandom | base64)`"
            ))
        })?;
        TokenSigner::new(secret.as_bytes())
    }

    fn mac(&self, hash: &str) -> String {
        let tag = hmac::sign(&self.key, hash.as_bytes());
        let mut hex = String::with_capacity(MAC_HEX);
        for byte in &tag.as_ref()[..MAC_HEX / 2] {
            hex.push_str(&format!("{byte:02x}"));
        }
        hex
    }

    /// The token of `address`.
    pub fn token(&self, address: &str) -> String {
        let hash = address_hash(address);
        let mac = self.mac(&hash);
        format!("{hash}.{mac}")
    }

    /// The address hash a valid token carries, or `None` for a forged, damaged or foreign
    /// token (the MAC is compared in constant time).
    pub fn verify(&self, token: &str) -> Option<String> {
        let (hash, mac) = token.trim().split_once('.')?;
        if !is_address_hash(hash) || mac.len() != MAC_HEX {
            return None;
        }
        let expected = self.mac(hash);
        // Constant-time comparison of equal-length ASCII strings.
        let diff = expected
            .bytes()
            .zip(mac.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        (diff == 0).then(|| hash.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_to_the_address_hash_and_forgeries_do_not() {
        let signer = TokenSigner::new(b"0123456789abcdef-secret").unwrap();
        let token = signer.token("Ada@Example.com");
        assert!(!token.contains('@'));
        assert_eq!(
            signer.verify(&token).as_deref(),
            Some(address_hash("ada@example.com").as_str())
        );
        let other = TokenSigner::new(b"another secret of 16+ bytes").unwrap();
        assert_eq!(other.verify(&token), None, "another secret");
        let (hash, mac) = token.split_once('.').unwrap();
        let forged = format!("{}.{mac}", address_hash("eve@example.com"));
        assert_eq!(signer.verify(&forged), None, "a MAC moved to another hash");
        assert_eq!(signer.verify(hash), None);
        assert_eq!(signer.verify(""), None);
        assert!(TokenSigner::new(b"short").is_err());
        let err = TokenSigner::from_env("X_SECRET", &|_| None).unwrap_err();
        assert!(err.to_string().contains("X_SECRET"), "{err}");
    }
}
