//! The Standard Webhooks signature: `webhook-signature: v1,<base64 HMAC-SHA256 of
//! "id.timestamp.body">`, with the secret given as `whsec_<base64>`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::hmac;

/// An endpoint's signing secret. Its `Debug` never shows the key.
#[derive(Clone)]
pub struct WebhookSecret {
    key: hmac::Key,
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(..)")
    }
}

impl WebhookSecret {
    /// Reads a secret written as `whsec_<base64>` (the prefix may be left out). `None` when it
    /// is not base64 or decodes to nothing.
    pub fn parse(text: &str) -> Option<WebhookSecret> {
        let text = text.trim();
        let encoded = text.strip_prefix("whsec_").unwrap_or(text);
        let bytes = STANDARD.decode(encoded).ok()?;
        (!bytes.is_empty()).then(|| WebhookSecret::from_key(&bytes))
    }

    /// A secret from its key's bytes (the base64 after `whsec_`, decoded).
    pub fn from_key(key: &[u8]) -> WebhookSecret {
        WebhookSecret {
            key: hmac::Key::new(hmac::HMAC_SHA256, key),
        }
    }

    /// The `webhook-signature` header's value for the message `id` sent at `timestamp` (unix
    /// seconds) with `body`.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let mut context = hmac::Context::with_key(&self.key);
        context.update(id.as_bytes());
        context.update(b".");
        context.update(timestamp.to_string().as_bytes());
        context.update(b".");
        context.update(body);
        format!("v1,{}", STANDARD.encode(context.sign().as_ref()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification's reference libraries.
    #[test]
    fn signs_as_the_reference_libraries_do() {
        let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            secret.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn a_secret_must_be_base64() {
        assert!(WebhookSecret::parse("whsec_not base64!").is_none());
        assert!(WebhookSecret::parse("whsec_").is_none());
        assert!(WebhookSecret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_some());
    }
}
