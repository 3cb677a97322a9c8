//! Mailgun's webhooks: the signature (HMAC-SHA256 of `timestamp` followed by `token`, with
//! the HTTP webhook signing key, in hex) and the `failed` and `complained` events of
//! <https://documentation.mailgun.com/docs/mailgun/user-manual/tracking-messages/#webhooks>.

use ring::hmac;
use serde::Deserialize;
use tiercare_store::BounceKind;

use super::{Notification, ProviderError, ProviderSettings, TIMESTAMP_TOLERANCE, same};

#[derive(Deserialize)]
struct Payload {
    signature: Signature,
    #[serde(rename = "event-data")]
    event_data: EventData,
}

#[derive(Deserialize)]
struct Signature {
    timestamp: String,
    token: String,
    signature: String,
}

#[derive(Deserialize)]
struct EventData {
    id: Option<String>,
    event: Option<String>,
    severity: Option<String>,
    recipient: Option<String>,
    message: Option<MessageData>,
    #[serde(rename = "delivery-status")]
    delivery_status: Option<DeliveryStatus>,
    reason: Option<String>,
}

#[derive(Deserialize)]
struct MessageData {
    headers: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Deserialize)]
struct DeliveryStatus {
    code: Option<serde_json::Value>,
    #[serde(rename = "enhanced-code")]
    enhanced_code: Option<String>,
    message: Option<String>,
    description: Option<String>,
}

/// Checks the signature and its timestamp, then reads the event: `Ok(Err(reason))` for an
/// authentic event that is not a bounce or complaint.
pub(crate) fn parse(
    settings: &ProviderSettings,
    body: &[u8],
    now: i64,
) -> Result<Result<Notification, String>, ProviderError> {
    let Some(key) = &settings.mailgun else {
        return Err(ProviderError::NotConfigured {
            provider: "mailgun".into(),
            what: "set the signing key in the environment variable [mail.bounces] \
                   mailgun_signing_key_env names"
                .into(),
        });
    };
    // The signature is inside the body: read just enough to check it first.
    let payload: Payload = serde_json::from_slice(body).map_err(|err| {
        if serde_json::from_slice::<serde_json::Value>(body)
            .is_ok_and(|v| v.get("signature").is_none())
        {
            ProviderError::Unauthorized("no signature".into())
        } else {
            ProviderError::BadPayload(format!("not a Mailgun webhook: {err}"))
        }
    })?;
    let signature = &payload.signature;
    let key = hmac::Key::new(hmac::HMAC_SHA256, key.as_bytes());
    let tag = hmac::sign(
        &key,
        format!("{}{}", signature.timestamp, signature.token).as_bytes(),
    );
    let expected: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    if !same(
        expected.as_bytes(),
        signature.signature.trim().to_ascii_lowercase().as_bytes(),
    ) {
        return Err(ProviderError::Unauthorized(
            "the signature does not match".into(),
        ));
    }
    let timestamp: i64 = signature
        .timestamp
        .trim()
        .parse()
        .map_err(|_| ProviderError::Unauthorized("the timestamp is not a number".into()))?;
    if (now - timestamp).abs() > TIMESTAMP_TOLERANCE {
        return Err(ProviderError::Unauthorized(
            "the timestamp is more than 5 minutes off: a replay, or a wrong clock".into(),
        ));
    }
    let event = payload.event_data;
    let name = event.event.as_deref().unwrap_or_default();
    let kind = match (name, event.severity.as_deref()) {
        ("complained", _) => BounceKind::Complaint,
        ("failed", Some("permanent")) => BounceKind::Hard,
        ("failed", _) => BounceKind::Soft,
        (name, _) => return Ok(Err(format!("Mailgun event {name:?}"))),
    };
    let address = event
        .recipient
        .filter(|r| !r.trim().is_empty())
        .ok_or_else(|| ProviderError::BadPayload("the event has no recipient".into()))?;
    let message_id = event.message.and_then(|m| m.headers).and_then(|headers| {
        headers
            .get("message-id")
            .and_then(|v| v.as_str().map(str::to_owned))
    });
    let status = event.delivery_status.as_ref().and_then(|status| {
        status
            .enhanced_code
            .clone()
            .filter(|c| !c.is_empty())
            .or_else(|| {
                status.code.as_ref().map(|code| match code {
                    serde_json::Value::String(text) => text.clone(),
                    other => other.to_string(),
                })
            })
    });
    let diagnostic = event
        .delivery_status
        .and_then(|status| {
            status
                .message
                .filter(|m| !m.is_empty())
                .or(status.description.filter(|d| !d.is_empty()))
        })
        .or(event.reason);
    Ok(Ok(Notification {
        kind,
        address,
        message_id,
        status,
        diagnostic,
        event_key: event.id.map(|id| format!("mailgun:{id}")),
    }))
}
