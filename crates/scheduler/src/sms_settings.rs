//! `[sms]` in `tiercare.toml`: which provider sends SMS, its settings, the sender's limits and
//! the longest message `check` lets through. Plain data, used by `config.rs` and `sms/`, so
//! neither imports the other's room for it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

/// The SMS settings (`[sms]`); absent, SMS go to the `sms/` folder.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmsConfig {
    /// Who sends: `folder` (the default: one file per message in `folder`), `http` (the
    /// generic provider of `[sms.http]`), `twilio` (`[sms.twilio]`) or `aliyun`
    /// (`[sms.aliyun]`).
    #[serde(default)]
    pub provider: SmsProvider,
    /// The folder of the `folder` provider, relative to the workspace (default `sms`).
    #[serde(default = "default_folder")]
    pub folder: PathBuf,
    /// The most segments a template's sample may need; more is a `check` error (default 3).
    #[serde(default = "default_max_segments")]
    pub max_segments: u32,
    /// SMS sent per minute at most, across processes (leave out for no limit).
    #[serde(default)]
    pub per_minute: Option<u32>,
    /// SMS sent per hour at most.
    #[serde(default)]
    pub per_hour: Option<u32>,
    /// SMS sent per day at most.
    #[serde(default)]
    pub per_day: Option<u32>,
    /// How long one request to the provider may take to connect, and to answer, in seconds
    /// (default 10).
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
    /// Attempts before an SMS that keeps failing transiently fails (default 8); the backoff is
    /// `[mail.outbox]`'s.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// The generic HTTP provider (`provider = "http"`).
    #[serde(default)]
    pub http: Option<HttpProviderConfig>,
    /// Twilio (`provider = "twilio"`).
    #[serde(default)]
    pub twilio: Option<TwilioConfig>,
    /// Aliyun SMS (`provider = "aliyun"`).
    #[serde(default)]
    pub aliyun: Option<AliyunConfig>,
}

impl Default for SmsConfig {
    fn default() -> Self {
        SmsConfig {
            provider: SmsProvider::Folder,
            folder: default_folder(),
            max_segments: default_max_segments(),
            per_minute: None,
            per_hour: None,
            per_day: None,
            timeout_seconds: default_timeout(),
            max_attempts: default_max_attempts(),
            http: None,
            twilio: None,
            aliyun: None,
        }
    }
}

/// Who sends SMS.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmsProvider {
    /// One file per message in a folder (no provider needed).
    #[default]
    Folder,
    /// The generic HTTP provider of `[sms.http]`.
    Http,
    /// Twilio's Messages API (`[sms.twilio]`).
    Twilio,
    /// Aliyun SMS (Dysmsapi `SendSms`, `[sms.aliyun]`): registered templates only.
    Aliyun,
}

/// How the generic provider's body is written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BodyFormat {
    /// A JSON object (`Content-Type: application/json`).
    #[default]
    Json,
    /// A form (`application/x-www-form-urlencoded`).
    Form,
}

/// `[sms.http]`: one HTTP request per SMS, its body's fields templated with `{to}` (the E.164
/// number), `{text}` (the message) and `{id}` (the message's id, the same on every attempt:
/// a provider that deduplicates by it never delivers twice).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpProviderConfig {
    /// The endpoint (`https://`, or `http://` on a loopback host).
    pub url: String,
    /// `POST` (default) or `PUT`.
    #[serde(default = "default_method")]
    pub method: String,
    /// `json` (default) or `form`.
    #[serde(default)]
    pub body: BodyFormat,
    /// The body's fields and their templates (`{ to = "{to}", message = "{text}" }`).
    pub fields: BTreeMap<String, String>,
    /// Extra headers, as written (no secrets here: see `header_env`).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Headers whose value is read from an environment variable (`{ "X-Api-Key" =
    /// "SMS_API_KEY" }`).
    #[serde(default)]
    pub header_env: BTreeMap<String, String>,
    /// The variable holding a bearer token (`Authorization: Bearer …`).
    #[serde(default)]
    pub bearer_env: Option<String>,
    /// The variables holding a basic-auth user and password.
    #[serde(default)]
    pub basic_user_env: Option<String>,
    /// See `basic_user_env`.
    #[serde(default)]
    pub basic_password_env: Option<String>,
    /// The status codes that mean sent (default: any 2xx).
    #[serde(default)]
    pub success_status: Vec<u16>,
    /// A JSON field of the answer that must hold `success_value` for the SMS to count as sent
    /// (a dotted path: `result.code`); a 2xx without it is a permanent failure.
    #[serde(default)]
    pub success_field: Option<String>,
    /// The value `success_field` must have (compared as text: `"0"` matches `0` and `"0"`).
    #[serde(default)]
    pub success_value: Option<String>,
}

/// `[sms.twilio]`: Twilio's Messages API with basic auth (the account SID and the auth token
/// read from an environment variable).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TwilioConfig {
    /// The account SID (`AC…`).
    pub account_sid: String,
    /// The variable holding the auth token (default `TWILIO_AUTH_TOKEN`).
    #[serde(default = "default_twilio_token_env")]
    pub auth_token_env: String,
    /// The sending number (E.164) or alphanumeric sender id; or use
    /// `messaging_service_sid`.
    #[serde(default)]
    pub from: Option<String>,
    /// A messaging service (`MG…`) instead of `from`.
    #[serde(default)]
    pub messaging_service_sid: Option<String>,
    /// The API's base URL (default `https://api.twilio.com`; a test points it at a stub).
    #[serde(default = "default_twilio_base")]
    pub base_url: String,
}

fn default_folder() -> PathBuf {
    PathBuf::from("sms")
}

fn default_max_segments() -> u32 {
    tiercare_engine::sms::DEFAULT_MAX_SEGMENTS
}

fn default_timeout() -> u64 {
    10
}

fn default_max_attempts() -> u32 {
    8
}

fn default_method() -> String {
    "POST".to_owned()
}

fn default_twilio_token_env() -> String {
    "TWILIO_AUTH_TOKEN".to_owned()
}

fn default_twilio_base() -> String {
    "https://api.twilio.com".to_owned()
}

/// Whether `url` may carry messages: `https://`, or `http://` to a loopback host.
fn acceptable_url(url: &str) -> bool {
    if url.starts_with("https://") {
        return true;
    }
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let host = rest.split(['/', '?']).next().unwrap_or_default();
    let host = host.rsplit_once(':').map_or(host, |(host, _)| host);
    matches!(host, "127.0.0.1" | "localhost" | "[::1]")
}

impl SmsConfig {
    /// Each SMS template's provider parameters when the provider sends registered templates
    /// with variables (Aliyun's `[sms.aliyun.templates.NAME] params`); none otherwise.
    #[must_use]
    pub fn provider_params(&self) -> BTreeMap<String, BTreeMap<String, String>> {
        match (&self.provider, &self.aliyun) {
            (SmsProvider::Aliyun, Some(aliyun)) => aliyun
                .templates
                .iter()
                .filter(|(_, template)| !template.params.is_empty())
                .map(|(name, template)| (name.clone(), template.params.clone()))
                .collect(),
            _ => BTreeMap::new(),
        }
    }

    /// Checks what serde cannot: the provider's section is there, URLs, limits.
    ///
    /// # Errors
    /// What is wrong and what to do.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_segments == 0 || self.timeout_seconds == 0 || self.max_attempts == 0 {
            return Err(
                "[sms] max_segments, timeout_seconds and max_attempts must be at least 1"
                    .to_owned(),
            );
        }
        for (name, value) in [
            ("per_minute", self.per_minute),
            ("per_hour", self.per_hour),
            ("per_day", self.per_day),
        ] {
            if value == Some(0) {
                return Err(format!(
                    "[sms] {name} must be at least 1 (leave it out for no limit)"
                ));
            }
        }
        match self.provider {
            SmsProvider::Folder => Ok(()),
            SmsProvider::Http => {
                let Some(http) = &self.http else {
                    return Err("sms.provider is \"http\" but there is no [sms.http] section: add one with `url` and `fields`".to_owned());
                };
                if !acceptable_url(&http.url) {
                    return Err(format!(
                        "[sms.http] url {:?} must start with https:// (http:// only to 127.0.0.1 or localhost)",
                        http.url
                    ));
                }
                if !matches!(http.method.to_ascii_uppercase().as_str(), "POST" | "PUT") {
                    return Err(format!(
                        "[sms.http] method {:?} is not supported: use \"POST\" or \"PUT\"",
                        http.method
                    ));
                }
                if http.fields.is_empty() {
                    return Err("[sms.http] fields is empty: name the body's fields, such as `fields = { to = \"{to}\", text = \"{text}\" }`".to_owned());
                }
                if http.basic_user_env.is_some() != http.basic_password_env.is_some() {
                    return Err(
                        "[sms.http] basic_user_env and basic_password_env go together".to_owned(),
                    );
                }
                if http.success_value.is_some() && http.success_field.is_none() {
                    return Err(
                        "[sms.http] success_value needs success_field (the answer's JSON field)"
                            .to_owned(),
                    );
                }
                Ok(())
            }
            SmsProvider::Twilio => {
                let Some(twilio) = &self.twilio else {
                    return Err("sms.provider is \"twilio\" but there is no [sms.twilio] section: add one with `account_sid` and `from`".to_owned());
                };
                if twilio.from.is_none() == twilio.messaging_service_sid.is_none() {
                    return Err(
                        "[sms.twilio] needs exactly one of `from` and `messaging_service_sid`"
                            .to_owned(),
                    );
                }
                if !acceptable_url(&twilio.base_url) {
                    return Err(format!(
                        "[sms.twilio] base_url {:?} must start with https://",
                        twilio.base_url
                    ));
                }
                Ok(())
            }
            SmsProvider::Aliyun => match &self.aliyun {
                Some(aliyun) => aliyun.validate(),
                None => Err("sms.provider is \"aliyun\" but there is no [sms.aliyun] section: add one with `sign_name` and a `[sms.aliyun.templates.NAME]` per SMS template".to_owned()),
            },
        }
    }
}

/// `[sms.aliyun]`: the AccessKey from the environment, the signature name, the endpoint and
/// the template mapping.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AliyunConfig {
    /// The variable holding the AccessKey id (default `ALIYUN_ACCESS_KEY_ID`).
    #[serde(default = "default_key_id_env")]
    pub access_key_id_env: String,
    /// The variable holding the AccessKey secret (default `ALIYUN_ACCESS_KEY_SECRET`).
    #[serde(default = "default_key_secret_env")]
    pub access_key_secret_env: String,
    /// The registered signature (`SignName`, 签名), such as `阿里云短信测试`.
    pub sign_name: String,
    /// The API endpoint (default `https://dysmsapi.aliyuncs.com/`; a test points it at a
    /// stub on 127.0.0.1).
    #[serde(default = "default_endpoint")]
    pub endpoint: String,
    /// `RegionId` (default `cn-hangzhou`).
    #[serde(default = "default_region")]
    pub region_id: String,
    /// Each tiercare SMS template (`birthday` for `birthday.sms.j2`) and its Aliyun template.
    #[serde(default)]
    pub templates: BTreeMap<String, AliyunTemplate>,
}

/// `[sms.aliyun.templates.NAME]`: the Aliyun template an SMS template is sent as.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AliyunTemplate {
    /// The template code (`SMS_123456789`).
    pub code: String,
    /// Its variables, each a template rendered with the SMS template's context
    /// (`{ name = "{{ customer.name }}" }`); sent as the JSON object `TemplateParam`.
    #[serde(default)]
    pub params: BTreeMap<String, String>,
}

fn default_key_id_env() -> String {
    "ALIYUN_ACCESS_KEY_ID".to_owned()
}

fn default_key_secret_env() -> String {
    "ALIYUN_ACCESS_KEY_SECRET".to_owned()
}

fn default_endpoint() -> String {
    "https://dysmsapi.aliyuncs.com/".to_owned()
}

fn default_region() -> String {
    "cn-hangzhou".to_owned()
}

impl AliyunConfig {
    /// Checks what serde cannot.
    ///
    /// # Errors
    /// What is wrong and what to do.
    pub fn validate(&self) -> Result<(), String> {
        if self.sign_name.trim().is_empty() {
            return Err(
                "[sms.aliyun] sign_name is empty: give the signature registered with Aliyun"
                    .to_owned(),
            );
        }
        if !acceptable_url(&self.endpoint) {
            return Err(format!(
                "[sms.aliyun] endpoint {:?} must start with https:// (http:// only to 127.0.0.1 or localhost)",
                self.endpoint
            ));
        }
        for (name, template) in &self.templates {
            if template.code.trim().is_empty() {
                return Err(format!(
                    "[sms.aliyun.templates.{name}] code is empty: give the Aliyun template code (SMS_…)"
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_must_be_https_except_on_loopback() {
        assert!(acceptable_url("https://sms.example/send"));
        assert!(acceptable_url("http://127.0.0.1:8080/send"));
        assert!(acceptable_url("http://localhost/send"));
        assert!(!acceptable_url("http://sms.example/send"));
        assert!(!acceptable_url("ftp://x"));
    }
}
