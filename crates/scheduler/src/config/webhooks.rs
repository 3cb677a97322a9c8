//! `[[webhooks]]` in `tiercare.toml`: the endpoints of the outgoing webhooks (delivered by
//! [`crate::webhooks`]), parsed and checked.

use serde::Deserialize;
use tiercare_store::{WebhookEventType, WebhookSubscription};

use super::{ConfigError, parse_duration, position};

/// One `[[webhooks]]` table as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawWebhook {
    name: toml::Spanned<String>,
    url: toml::Spanned<String>,
    events: toml::Spanned<Vec<String>>,
    secret_env: toml::Spanned<String>,
    timeout_seconds: Option<u64>,
    give_up_after: Option<toml::Spanned<String>>,
    retry_base_seconds: Option<u64>,
    retry_max_seconds: Option<u64>,
}

/// A webhook endpoint (`[[webhooks]]`): where events go, which, and how they are signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEndpoint {
    /// Its name: the key of its queue in the database and in `tiercare status`.
    pub name: String,
    /// An `http://` or `https://` URL; redirects are not followed.
    pub url: String,
    /// The event types it wants.
    pub events: Vec<WebhookEventType>,
    /// The environment variable holding its signing secret (`whsec_<base64>`).
    pub secret_env: String,
    /// The time limit of one request, in seconds (default 10).
    pub timeout_seconds: u64,
    /// How long an event is retried after its first failure before it is given up (`dead`), in
    /// seconds (default 3 days).
    pub give_up_after: i64,
    /// The first retry's delay, doubled at each failure (with jitter), in seconds (default 10).
    pub retry_base_seconds: u64,
    /// The longest delay between retries, in seconds (default 1 hour).
    pub retry_max_seconds: u64,
}

impl WebhookEndpoint {
    /// What the queue needs to know of it.
    pub fn subscription(&self) -> WebhookSubscription {
        WebhookSubscription {
            name: self.name.clone(),
            url: self.url.clone(),
            events: self.events.clone(),
        }
    }
}

/// Checks the `[[webhooks]]` tables of `text`: names unique and plain, URLs http(s), known
/// event types, a secret variable named, positive limits. Each error is at its `line:col`.
pub(crate) fn validate(
    raw: Vec<RawWebhook>,
    text: &str,
) -> Result<Vec<WebhookEndpoint>, ConfigError> {
    let at = |span: std::ops::Range<usize>, message: String| {
        let (line, column) = position(text, span.start);
        ConfigError {
            line: Some(line),
            column: Some(column),
            message,
        }
    };
    let mut endpoints: Vec<WebhookEndpoint> = Vec::with_capacity(raw.len());
    for webhook in raw {
        let name = webhook.name.get_ref().trim().to_owned();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(at(
                webhook.name.span(),
                format!(
                    "webhooks.name {:?} must be letters, digits, `-` or `_` (it names the endpoint's queue in `tiercare status`)",
                    webhook.name.get_ref()
                ),
            ));
        }
        if endpoints.iter().any(|other| other.name == name) {
            return Err(at(
                webhook.name.span(),
                format!("two [[webhooks]] are named {name:?}: give each endpoint its own name"),
            ));
        }
        let url = webhook.url.get_ref().trim().to_owned();
        let rest = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"));
        if rest.is_none_or(|rest| rest.is_empty() || rest.starts_with('/')) || url.contains(' ') {
            return Err(at(
                webhook.url.span(),
                format!(
                    "webhooks.url of {name:?} must be an http:// or https:// URL with a host, such as \"https://crm.example.com/hooks/tiercare\""
                ),
            ));
        }
        let mut events = Vec::new();
        for event in webhook.events.get_ref() {
            match WebhookEventType::parse(event) {
                Some(kind) if !events.contains(&kind) => events.push(kind),
                Some(_) => {}
                None => {
                    let known: Vec<&str> = WebhookEventType::ALL
                        .iter()
                        .map(|kind| kind.as_str())
                        .collect();
                    return Err(at(
                        webhook.events.span(),
                        format!(
                            "unknown webhook event {event:?} for {name:?}: use some of {}",
                            known.join(", ")
                        ),
                    ));
                }
            }
        }
        if events.is_empty() {
            return Err(at(
                webhook.events.span(),
                format!("webhooks.events of {name:?} is empty: list the event types it wants"),
            ));
        }
        let secret_env = webhook.secret_env.get_ref().trim().to_owned();
        if secret_env.is_empty() || secret_env.contains('=') {
            return Err(at(
                webhook.secret_env.span(),
                format!(
                    "webhooks.secret_env of {name:?} must name an environment variable holding the signing secret (whsec_<base64>)"
                ),
            ));
        }
        let give_up_after = match webhook.give_up_after {
            None => 3 * 86_400,
            Some(spanned) => match parse_duration(spanned.get_ref()) {
                Some(seconds) if seconds >= 1 => seconds,
                _ => {
                    return Err(at(
                        spanned.span(),
                        format!(
                            "invalid webhooks.give_up_after `{}`: write a number and a unit, such as \"30s\", \"6h\" or \"3d\"",
                            spanned.get_ref()
                        ),
                    ));
                }
            },
        };
        let timeout_seconds = webhook.timeout_seconds.unwrap_or(10);
        let retry_base_seconds = webhook.retry_base_seconds.unwrap_or(10);
        let retry_max_seconds = webhook.retry_max_seconds.unwrap_or(3_600);
        if timeout_seconds == 0 || retry_base_seconds == 0 || retry_max_seconds < retry_base_seconds
        {
            return Err(at(
                webhook.name.span(),
                format!(
                    "[[webhooks]] {name:?}: timeout_seconds and retry_base_seconds must be at least 1, and retry_max_seconds at least retry_base_seconds"
                ),
            ));
        }
        endpoints.push(WebhookEndpoint {
            name,
            url,
            events,
            secret_env,
            timeout_seconds,
            give_up_after,
            retry_base_seconds,
            retry_max_seconds,
        });
    }
    Ok(endpoints)
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    #[test]
    fn endpoints_are_read_with_their_defaults() {
        let config = Config::parse(
            "[[webhooks]]\nname = \"crm\"\nurl = \"https://crm.example.com/hook\"\n\
             events = [\"tier.changed\", \"email.sent\"]\nsecret_env = \"CRM_SECRET\"\n",
        )
        .unwrap();
        let endpoint = &config.webhooks[0];
        assert_eq!(endpoint.name, "crm");
        assert_eq!(endpoint.events.len(), 2);
        assert_eq!(
            (endpoint.timeout_seconds, endpoint.give_up_after),
            (10, 3 * 86_400)
        );
    }

    #[test]
    fn mistakes_are_reported_at_their_place() {
        let cases = [
            ("url = \"ftp://x/\"", "2:7", "http:// or https://"),
            (
                "url = \"https://x/\"\nevents = [\"tier.moved\"]",
                "3:10",
                "unknown webhook event \"tier.moved\"",
            ),
        ];
        for (lines, place, wanted) in cases {
            let text = format!(
                "[[webhooks]]\n{lines}\nname = \"crm\"\nsecret_env = \"S\"\n{}",
                if lines.contains("events") {
                    ""
                } else {
                    "events = [\"task.done\"]\n"
                }
            );
            let err = Config::parse(&text).unwrap_err();
            let shown = err.to_string();
            assert!(
                shown.starts_with(place) && shown.contains(wanted),
                "{shown}"
            );
        }
    }
}
