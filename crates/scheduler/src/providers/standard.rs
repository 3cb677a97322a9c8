//! The generic webhook: tiercare's own JSON form of a bounce or complaint, signed by the
//! Standard Webhooks scheme (<https://www.standardwebhooks.com/>), for a relay, a script or
//! a provider tiercare has no parser for.
//!
//! The request carries `webhook-id`, `webhook-timestamp` (unix seconds) and
//! `webhook-signature` (space-separated `v1,<base64>` signatures) headers; a signature is
//! the base64 HMAC-SHA256 of `{webhook-id}.{webhook-timestamp}.{body}` with the secret's key
//! (the base64 after `whsec_`). The body:
//!
//! ```json
//! {"type": "bounce", "email": "ada@example.com", "bounce": "hard",
//!  "message_id": "<tc.1.abc@shop.example>", "status": "5.1.1",
//!  "diagnostic": "550 5.1.1 user unknown"}
//! ```
//!
//! `type` is `bounce` (with `bounce`: `hard` or `soft`, default `hard`) or `complaint`;
//! `email` is required; `message_id`, `status` and `diagnostic` are optional.

use base64::Engine;
use serde::Deserialize;
use tiercare_store::BounceKind;

use super::{Notification, ProviderError, ProviderSettings, TIMESTAMP_TOLERANCE, header, same};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    #[serde(rename = "type")]
    kind: String,
    email: String,
    bounce: Option<String>,
    message_id: Option<String>,
    status: Option<String>,
    diagnostic: Option<String>,
}

/// The key of a `whsec_<base64>` secret.
pub fn decode_secret(secret: &str) -> Option<Vec<u8>> {
    let encoded = secret.trim().strip_prefix("whsec_")?;
    base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()
        .filter(|key| !key.is_empty())
}

/// The `webhook-signature` value of `body` sent as `id` at `timestamp` with `key`: what a
/// sender puts in the header (`v1,<base64>`).
pub fn sign(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    // The outgoing webhooks' signer: one implementation of the scheme.
    crate::webhooks::WebhookSecret::from_key(key).sign(id, timestamp, body)
}

/// Checks the signature and its timestamp, then reads the body.
pub(crate) fn parse(
    settings: &ProviderSettings,
    headers: &[(String, String)],
    body: &[u8],
    now: i64,
) -> Result<Result<Notification, String>, ProviderError> {
    let Some(key) = &settings.generic else {
        return Err(ProviderError::NotConfigured {
            provider: "generic".into(),
            what: "set a whsec_ secret in the environment variable [mail.bounces] \
                   webhook_secret_env names"
                .into(),
        });
    };
    let unauthorized = |why: &str| ProviderError::Unauthorized(why.to_owned());
    let id = header(headers, "webhook-id").ok_or_else(|| unauthorized("no webhook-id"))?;
    let timestamp: i64 = header(headers, "webhook-timestamp")
        .and_then(|t| t.trim().parse().ok())
        .ok_or_else(|| unauthorized("no webhook-timestamp"))?;
    let given =
        header(headers, "webhook-signature").ok_or_else(|| unauthorized("no webhook-signature"))?;
    let expected = sign(key, id, timestamp, body);
    if !given
        .split_whitespace()
        .any(|signature| same(signature.as_bytes(), expected.as_bytes()))
    {
        return Err(unauthorized("the signature does not match"));
    }
    if (now - timestamp).abs() > TIMESTAMP_TOLERANCE {
        return Err(unauthorized(
            "the timestamp is more than 5 minutes off: a replay, or a wrong clock",
        ));
    }
    let body: Body = serde_json::from_slice(body).map_err(|err| {
        ProviderError::BadPayload(format!("{err} (see the README's generic webhook form)"))
    })?;
    let kind = match (body.kind.as_str(), body.bounce.as_deref()) {
        ("complaint", _) => BounceKind::Complaint,
        ("bounce", None | Some("hard")) => BounceKind::Hard,
        ("bounce", Some("soft")) => BounceKind::Soft,
        (kind, bounce) => {
            return Err(ProviderError::BadPayload(format!(
                "type {kind:?} (bounce {bounce:?}): use type bounce (bounce hard or soft) or complaint"
            )));
        }
    };
    if body.email.trim().is_empty() {
        return Err(ProviderError::BadPayload("email is empty".into()));
    }
    Ok(Ok(Notification {
        kind,
        address: body.email,
        message_id: body.message_id,
        status: body.status,
        diagnostic: body.diagnostic,
        event_key: Some(format!("webhook:{id}")),
    }))
}
