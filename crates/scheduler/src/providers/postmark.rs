//! Postmark's bounce and spam complaint webhooks: HTTP basic auth with the user and password
//! written into the webhook's URL (`https://user:password@host/webhooks/postmark`), and the
//! JSON records of <https://postmarkapp.com/developer/webhooks/bounce-webhook> and
//! <https://postmarkapp.com/developer/webhooks/spam-complaint-webhook>.

use base64::Engine;
use serde::Deserialize;
use tiercare_store::BounceKind;

use super::{Notification, ProviderError, ProviderSettings, header, same};

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Record {
    record_type: Option<String>,
    #[serde(rename = "ID")]
    id: Option<serde_json::Value>,
    #[serde(rename = "Type")]
    kind: Option<String>,
    #[serde(rename = "MessageID")]
    message_id: Option<String>,
    details: Option<String>,
    description: Option<String>,
    email: Option<String>,
}

/// Checks the basic auth, then reads the record: `Ok(Err(reason))` for an authentic record
/// that is not a bounce or complaint.
pub(crate) fn parse(
    settings: &ProviderSettings,
    headers: &[(String, String)],
    body: &[u8],
) -> Result<Result<Notification, String>, ProviderError> {
    let Some((user, password)) = &settings.postmark else {
        return Err(ProviderError::NotConfigured {
            provider: "postmark".into(),
            what: "set [mail.bounces] postmark_username and the password in the environment \
                   variable postmark_password_env names"
                .into(),
        });
    };
    let given = header(headers, "authorization")
        .and_then(|value| value.trim().strip_prefix("Basic "))
        .and_then(|encoded| {
            base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .ok()
        })
        .ok_or_else(|| ProviderError::Unauthorized("no basic auth credentials".into()))?;
    let expected = format!("{user}:{password}");
    if !same(&given, expected.as_bytes()) {
        return Err(ProviderError::Unauthorized(
            "wrong basic auth credentials".into(),
        ));
    }
    let record: Record = serde_json::from_slice(body)
        .map_err(|err| ProviderError::BadPayload(format!("not a Postmark record: {err}")))?;
    let record_type = record.record_type.as_deref().unwrap_or_default();
    let kind = match (record_type, record.kind.as_deref().unwrap_or_default()) {
        ("SpamComplaint", _) | (_, "SpamComplaint") => BounceKind::Complaint,
        ("Bounce", "HardBounce" | "BadEmailAddress") => BounceKind::Hard,
        ("Bounce", "SoftBounce" | "Transient" | "DnsError") => BounceKind::Soft,
        (record_type, kind) => {
            return Ok(Err(format!(
                "Postmark {record_type} record of type {kind:?}"
            )));
        }
    };
    let address = record
        .email
        .filter(|email| !email.trim().is_empty())
        .ok_or_else(|| ProviderError::BadPayload("the record has no Email".into()))?;
    Ok(Ok(Notification {
        kind,
        address,
        message_id: record.message_id,
        status: record.kind,
        diagnostic: record.details.or(record.description),
        event_key: record.id.map(|id| format!("postmark:{record_type}:{id}")),
    }))
}
