//! The HTTP providers: the generic one (`[sms.http]`: a JSON or form body templated with
//! `{to}`, `{text}` and `{id}`, headers, auth from the environment, success by status code
//! and optionally a JSON field) and Twilio (its Messages API form and basic auth), over
//! `ureq` on the send loop's thread.
//!
//! Failures are classified as mail's are: 429, 408 and 5xx are transient (retried with
//! backoff), other 4xx and 3xx permanent; a connection refused or a timeout while resolving,
//! connecting or sending the request is transient (the provider cannot have acted on half a
//! request); any failure while waiting for or reading the answer is unknown (it may have
//! been sent). Nothing the provider answers is logged or kept but its status and, for a
//! JSON answer, its message id field.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine as _;

use super::transport::{SmsDelivered, SmsError, SmsMessage, SmsTransport};
use crate::sms_settings::{BodyFormat, HttpProviderConfig, TwilioConfig};

/// Why a provider cannot be set up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ProviderError(pub String);

/// A request ready to be templated: where, how, with what.
#[derive(Debug)]
struct Request {
    url: String,
    method: String,
    body: BodyFormat,
    fields: BTreeMap<String, String>,
    headers: Vec<(String, String)>,
    success_status: Vec<u16>,
    success_field: Option<String>,
    success_value: Option<String>,
}

/// The generic HTTP provider, or Twilio (a preset of it).
pub struct HttpSmsTransport {
    name: &'static str,
    agent: ureq::Agent,
    request: Request,
}

impl std::fmt::Debug for HttpSmsTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpSmsTransport")
            .field("name", &self.name)
            .field("url", &self.request.url)
            .finish_non_exhaustive()
    }
}

pub(super) fn variable(
    env: &dyn Fn(&str) -> Option<String>,
    name: &str,
) -> Result<String, ProviderError> {
    env(name).filter(|v| !v.is_empty()).ok_or_else(|| {
        ProviderError(format!(
            "the SMS provider's secret is read from the environment variable {name}, which is not set"
        ))
    })
}

fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

pub(super) fn agent(timeout_seconds: u64) -> ureq::Agent {
    let timeout = Some(Duration::from_secs(timeout_seconds));
    ureq::Agent::config_builder()
        .timeout_resolve(timeout)
        .timeout_connect(timeout)
        .timeout_send_request(timeout)
        .timeout_send_body(timeout)
        .timeout_recv_response(timeout)
        .timeout_recv_body(timeout)
        .max_redirects(0)
        .http_status_as_error(false)
        .user_agent("tiercare-sms")
        .build()
        .into()
}

impl HttpSmsTransport {
    /// The generic provider of `config`, its secrets read through `env`.
    ///
    /// # Errors
    /// A variable it names is not set.
    pub fn generic(
        config: &HttpProviderConfig,
        timeout_seconds: u64,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<HttpSmsTransport, ProviderError> {
        let mut headers: Vec<(String, String)> = config
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (header, name) in &config.header_env {
            headers.push((header.clone(), variable(env, name)?));
        }
        if let Some(name) = &config.bearer_env {
            headers.push((
                "authorization".to_owned(),
                format!("Bearer {}", variable(env, name)?),
            ));
        }
        if let (Some(user), Some(password)) = (&config.basic_user_env, &config.basic_password_env) {
            headers.push((
                "authorization".to_owned(),
                basic(&variable(env, user)?, &variable(env, password)?),
            ));
        }
        Ok(HttpSmsTransport {
            name: "http",
            agent: agent(timeout_seconds),
            request: Request {
                url: config.url.clone(),
                method: config.method.to_ascii_uppercase(),
                body: config.body,
                fields: config.fields.clone(),
                headers,
                success_status: config.success_status.clone(),
                success_field: config.success_field.clone(),
                success_value: config.success_value.clone(),
            },
        })
    }

    /// Twilio's Messages API: `POST {base}/2010-04-01/Accounts/{sid}/Messages.json` with the
    /// form `To`, `From` (or `MessagingServiceSid`) and `Body`, basic auth with the account SID
    /// and the token from the environment; sent on 201 (or any 2xx).
    ///
    /// # Errors
    /// The token's variable is not set.
    pub fn twilio(
        config: &TwilioConfig,
        timeout_seconds: u64,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<HttpSmsTransport, ProviderError> {
        let token = variable(env, &config.auth_token_env)?;
        let mut fields = BTreeMap::from([
            ("To".to_owned(), "{to}".to_owned()),
            ("Body".to_owned(), "{text}".to_owned()),
        ]);
        match (&config.from, &config.messaging_service_sid) {
            (Some(from), _) => fields.insert("From".to_owned(), from.clone()),
            (None, Some(service)) => {
                fields.insert("MessagingServiceSid".to_owned(), service.clone())
            }
            (None, None) => None,
        };
        Ok(HttpSmsTransport {
            name: "twilio",
            agent: agent(timeout_seconds),
            request: Request {
                url: format!(
                    "{}/2010-04-01/Accounts/{}/Messages.json",
                    config.base_url.trim_end_matches('/'),
                    config.account_sid
                ),
                method: "POST".to_owned(),
                body: BodyFormat::Form,
                fields,
                headers: vec![(
                    "authorization".to_owned(),
                    basic(&config.account_sid, &token),
                )],
                success_status: Vec::new(),
                success_field: None,
                success_value: None,
            },
        })
    }
}

/// `template` with `{to}`, `{text}` and `{id}` replaced (in one pass: a text holding `{id}`
/// stays as written).
fn fill(template: &str, message: &SmsMessage) -> String {
    let mut out = String::with_capacity(template.len() + message.text.len());
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let after = &rest[start..];
        let (value, skip) = if after.starts_with("{to}") {
            (message.to.as_str(), 4)
        } else if after.starts_with("{text}") {
            (message.text.as_str(), 6)
        } else if after.starts_with("{id}") {
            (message.id.as_str(), 4)
        } else {
            ("{", 1)
        };
        out.push_str(value);
        rest = &after[skip..];
    }
    out.push_str(rest);
    out
}

/// The value at a dotted `path` of a JSON answer, as text.
fn field_text(answer: &serde_json::Value, path: &str) -> Option<String> {
    let mut value = answer;
    for key in path.split('.') {
        value = match value {
            serde_json::Value::Array(items) => items.get(key.parse::<usize>().ok()?)?,
            other => other.get(key)?,
        };
    }
    Some(match value {
        serde_json::Value::String(text) => text.clone(),
        other => other.to_string(),
    })
}

/// Classifies a failed request.
pub(super) fn classify(error: &ureq::Error) -> SmsError {
    use ureq::Timeout;
    match error {
        ureq::Error::Timeout(
            Timeout::Resolve
            | Timeout::Connect
            | Timeout::SendRequest
            | Timeout::SendBody
            | Timeout::PerWrite,
        )
        | ureq::Error::HostNotFound
        | ureq::Error::ConnectionFailed => SmsError::Transient(error.to_string()),
        ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
            SmsError::Transient(error.to_string())
        }
        other => SmsError::Unknown(other.to_string()),
    }
}

impl SmsTransport for HttpSmsTransport {
    fn send(&mut self, message: &SmsMessage) -> Result<SmsDelivered, SmsError> {
        let request = &self.request;
        let mut builder = match request.method.as_str() {
            "PUT" => self.agent.put(&request.url),
            _ => self.agent.post(&request.url),
        };
        for (name, value) in &request.headers {
            builder = builder.header(name, value);
        }
        let fields: Vec<(String, String)> = request
            .fields
            .iter()
            .map(|(name, template)| (name.clone(), fill(template, message)))
            .collect();
        let sent = match request.body {
            BodyFormat::Json => {
                let body: serde_json::Map<String, serde_json::Value> = fields
                    .into_iter()
                    .map(|(k, v)| (k, serde_json::Value::String(v)))
                    .collect();
                builder
                    .header("content-type", "application/json")
                    .send(serde_json::Value::Object(body).to_string().as_bytes())
            }
            BodyFormat::Form => builder.send_form(fields),
        };
        let mut response = sent.map_err(|err| classify(&err))?;
        let status = response.status().as_u16();
        let ok = if request.success_status.is_empty() {
            (200..300).contains(&status)
        } else {
            request.success_status.contains(&status)
        };
        if !ok {
            return Err(match status {
                408 | 429 | 500..=599 => SmsError::Transient(format!("HTTP {status}")),
                300..=399 => SmsError::Permanent(format!(
                    "HTTP {status} (redirects are not followed: check the URL)"
                )),
                _ => SmsError::Permanent(format!("HTTP {status}")),
            });
        }
        let text = response
            .body_mut()
            .with_config()
            .limit(64 * 1024)
            .read_to_string()
            .map_err(|err| SmsError::Unknown(format!("HTTP {status}, answer unreadable: {err}")))?;
        let answer: Option<serde_json::Value> = serde_json::from_str(&text).ok();
        if let Some(field) = &request.success_field {
            let found = answer.as_ref().and_then(|a| field_text(a, field));
            let wanted = request.success_value.as_deref();
            let good = match (&found, wanted) {
                (Some(found), Some(wanted)) => found == wanted,
                (Some(_), None) => true,
                (None, _) => false,
            };
            if !good {
                return Err(SmsError::Permanent(format!(
                    "HTTP {status} but the answer's `{field}` is {}",
                    found.map_or_else(|| "missing".to_owned(), |f| format!("`{f}`"))
                )));
            }
        }
        let provider_id = answer
            .as_ref()
            .and_then(|a| field_text(a, "sid").or_else(|| field_text(a, "id")))
            .filter(|id| id.len() <= 64 && !id.contains('+'));
        Ok(SmsDelivered {
            receipt: match provider_id {
                Some(id) => format!("HTTP {status} id {id}"),
                None => format!("HTTP {status}"),
            },
            already_delivered: false,
        })
    }

    fn name(&self) -> &'static str {
        self.name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_filled_once() {
        let message = SmsMessage {
            id: "sms-1@tiercare".into(),
            to: "+8613812345678".into(),
            text: "say {id} {".into(),
            template: "hello".into(),
            params: None,
        };
        assert_eq!(
            fill("{to}|{text}|{id}|{other}", &message),
            "+8613812345678|say {id} {|sms-1@tiercare|{other}"
        );
    }

    #[test]
    fn fields_are_found_by_path() {
        let answer: serde_json::Value =
            serde_json::from_str(r#"{"result": {"code": 0, "items": ["a"]}}"#).unwrap();
        assert_eq!(field_text(&answer, "result.code").as_deref(), Some("0"));
        assert_eq!(field_text(&answer, "result.items.0").as_deref(), Some("a"));
        assert_eq!(field_text(&answer, "result.nope"), None);
    }
}
