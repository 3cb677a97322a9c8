//! Aliyun SMS (Dysmsapi `SendSms`, API version 2017-05-25): only templates registered with
//! Aliyun are sent, so `[sms.aliyun.templates.NAME]` maps each tiercare SMS template to its
//! code and its parameters (each a small template rendered with the SMS template's context
//! when the SMS is composed, kept in the outbox row beside the text).
//!
//! The request is a form `POST` to the endpoint, signed with Aliyun's RPC signature v1:
//! HMAC-SHA1 keyed with `secret&` over `POST&%2F&` and the percent-encoded canonical query
//! (the parameters sorted by name, each name and value percent-encoded with RFC 3986's
//! unreserved characters kept), base64 in `Signature`.
//!
//! Answers: `Code` `OK` is sent (its `BizId` recorded in the receipt);
//! `isv.BUSINESS_LIMIT_CONTROL` (the per-number minute/hour caps), `isp.SYSTEM_ERROR`, HTTP
//! 429 and 5xx are transient (retried with the outbox's backoff); every other code is
//! permanent, including `isv.DAY_LIMIT_CONTROL` (the per-number daily cap: the customer has
//! had their day's SMS, and a greeting sent a day late is not worth it) and the numbers,
//! templates, signatures and balances Aliyun refuses. Failures of the connection are
//! classified as the HTTP providers' are (a timeout waiting for the answer is unknown).
//!
//! Numbers: Aliyun wants mainland China numbers without the country code
//! (`+8613812345678` → `13812345678`) and others as country code and number without `+`
//! (`+85261234567` → `85261234567`).

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::Deserialize;

use super::http::{ProviderError, agent, classify, variable};
use super::transport::{SmsDelivered, SmsError, SmsMessage, SmsTransport};
use crate::config::CONFIG_FILE;
pub use crate::sms_settings::{AliyunConfig, AliyunTemplate};
use crate::sms_settings::{SmsConfig, SmsProvider};
use tiercare_engine::{Diagnostic, RuleSet, SmsTemplates, check_sms_template_mapping};

/// What `check` and the daemon's reload find wrong with the Aliyun settings against `rules`
/// and the SMS templates `sms`, when `config` sends through Aliyun: an `sms:` follow-up whose
/// template has no mapping (at its line), a parameter that does not render for the sample
/// customer (at its template's header in `config_text`, the `tiercare.toml` text).
#[must_use]
pub fn check_aliyun(
    rules: &RuleSet,
    config: &SmsConfig,
    sms: &SmsTemplates,
    config_text: &str,
) -> Vec<Diagnostic> {
    let (SmsProvider::Aliyun, Some(aliyun)) = (config.provider, &config.aliyun) else {
        return Vec::new();
    };
    let mapped: Vec<&str> = aliyun.templates.keys().map(String::as_str).collect();
    let mut out = check_sms_template_mapping(rules, "sms.aliyun.templates", &mapped);
    for (name, template) in &aliyun.templates {
        for (key, source) in &template.params {
            if let Err(err) = sms.render_inline_sample(source) {
                let header = format!("[sms.aliyun.templates.{name}]");
                let line = config_text
                    .lines()
                    .position(|line| line.trim() == header)
                    .map_or(1, |i| i + 1);
                out.push(
                    Diagnostic::error(
                        CONFIG_FILE,
                        line,
                        1,
                        format!("{header} parameter `{key}` does not render: {err}"),
                    )
                    .with_hint(
                        "parameters use the SMS templates' variables (see templates/README.md), such as `{{ customer.name }}`",
                    ),
                );
            }
        }
    }
    out
}

/// The number as Aliyun wants it: mainland China without `+86`, others with their country
/// code but no `+`.
#[must_use]
pub fn aliyun_number(e164: &str) -> String {
    let digits = e164.trim().trim_start_matches('+');
    match digits.strip_prefix("86") {
        Some(national) if e164.trim().starts_with('+') => national.to_owned(),
        _ => digits.to_owned(),
    }
}

/// Percent-encodes as Aliyun's signature wants: RFC 3986's unreserved characters
/// (`A-Z a-z 0-9 - _ . ~`) as they are, every other byte of the UTF-8 as `%XY`.
#[must_use]
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The RPC signature v1 of `params` (without `Signature`) for `method`, keyed with `secret`.
#[must_use]
pub fn signature(method: &str, params: &BTreeMap<String, String>, secret: &str) -> String {
    let canonical = params
        .iter()
        .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    let to_sign = format!(
        "{method}&{}&{}",
        percent_encode("/"),
        percent_encode(&canonical)
    );
    let key = ring::hmac::Key::new(
        ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
        format!("{secret}&").as_bytes(),
    );
    let tag = ring::hmac::sign(&key, to_sign.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(tag.as_ref())
}

/// How an answer's `Code` is handled.
fn classify_code(code: &str, status: u16) -> Result<(), SmsError> {
    match code {
        "OK" => Ok(()),
        "isv.BUSINESS_LIMIT_CONTROL" | "isp.SYSTEM_ERROR" | "Throttling" | "Throttling.User" => {
            Err(SmsError::Transient(format!("HTTP {status} {code}")))
        }
        _ if status == 429 || status >= 500 => {
            Err(SmsError::Transient(format!("HTTP {status} {code}")))
        }
        other => Err(SmsError::Permanent(format!("HTTP {status} {other}"))),
    }
}

/// The Aliyun provider.
pub struct AliyunSmsTransport {
    agent: ureq::Agent,
    endpoint: String,
    key_id: String,
    secret: String,
    sign_name: String,
    region_id: String,
    templates: BTreeMap<String, AliyunTemplate>,
}

impl std::fmt::Debug for AliyunSmsTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AliyunSmsTransport")
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl AliyunSmsTransport {
    /// The provider of `config`, its AccessKey read through `env`.
    ///
    /// # Errors
    /// A variable it names is not set.
    pub fn new(
        config: &AliyunConfig,
        timeout_seconds: u64,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<AliyunSmsTransport, ProviderError> {
        Ok(AliyunSmsTransport {
            agent: agent(timeout_seconds),
            endpoint: config.endpoint.clone(),
            key_id: variable(env, &config.access_key_id_env)?,
            secret: variable(env, &config.access_key_secret_env)?,
            sign_name: config.sign_name.clone(),
            region_id: config.region_id.clone(),
            templates: config.templates.clone(),
        })
    }

    /// The signed form of `message`, `nonce` and `timestamp` (`2026-03-02T10:00:00Z`) given.
    fn form(
        &self,
        message: &SmsMessage,
        code: &str,
        nonce: &str,
        timestamp: &str,
    ) -> Vec<(String, String)> {
        let mut params: BTreeMap<String, String> = [
            ("AccessKeyId", self.key_id.as_str()),
            ("Action", "SendSms"),
            ("Format", "JSON"),
            ("RegionId", self.region_id.as_str()),
            ("SignName", self.sign_name.as_str()),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureNonce", nonce),
            ("SignatureVersion", "1.0"),
            ("TemplateCode", code),
            ("Timestamp", timestamp),
            ("Version", "2017-05-25"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        params.insert("PhoneNumbers".to_owned(), aliyun_number(&message.to));
        params.insert("OutId".to_owned(), message.id.clone());
        if let Some(param) = &message.params {
            params.insert("TemplateParam".to_owned(), param.clone());
        }
        let signed = signature("POST", &params, &self.secret);
        let mut form: Vec<(String, String)> = params.into_iter().collect();
        form.push(("Signature".to_owned(), signed));
        form
    }
}

/// The parts of an answer read.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Answer {
    code: Option<String>,
    biz_id: Option<String>,
}

impl SmsTransport for AliyunSmsTransport {
    fn send(&mut self, message: &SmsMessage) -> Result<SmsDelivered, SmsError> {
        let Some(template) = self.templates.get(&message.template) else {
            return Err(SmsError::Permanent(format!(
                "no Aliyun template for the SMS template `{}`: add [sms.aliyun.templates.{}] with its code",
                message.template, message.template
            )));
        };
        if !template.params.is_empty() && message.params.is_none() {
            return Err(SmsError::Permanent(format!(
                "the SMS was composed without the parameters of [sms.aliyun.templates.{}]",
                message.template
            )));
        }
        let nonce = format!(
            "{:016x}{:016x}",
            rand::random::<u64>(),
            rand::random::<u64>()
        );
        let timestamp = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
        let form = self.form(message, &template.code, &nonce, &timestamp);
        let mut response = self
            .agent
            .post(&self.endpoint)
            .send_form(form)
            .map_err(|err| classify(&err))?;
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .with_config()
            .limit(64 * 1024)
            .read_to_string();
        let answer: Option<Answer> = text.ok().and_then(|t| serde_json::from_str(&t).ok());
        let code = answer
            .as_ref()
            .and_then(|a| a.code.clone())
            .unwrap_or_default();
        if code.is_empty() {
            return Err(match status {
                200..=299 => SmsError::Unknown(format!("HTTP {status} without a Code")),
                408 | 429 | 500..=599 => SmsError::Transient(format!("HTTP {status}")),
                _ => SmsError::Permanent(format!("HTTP {status}")),
            });
        }
        classify_code(&code, status)?;
        let biz_id = answer.and_then(|a| a.biz_id).filter(|id| {
            id.len() <= 64 && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '^')
        });
        Ok(SmsDelivered {
            receipt: match biz_id {
                Some(id) => format!("HTTP {status} id {id}"),
                None => format!("HTTP {status}"),
            },
            already_delivered: false,
        })
    }

    fn name(&self) -> &'static str {
        "aliyun"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_lose_plus_86_on_the_mainland_and_keep_other_country_codes() {
        assert_eq!(aliyun_number("+8613812345678"), "13812345678");
        assert_eq!(aliyun_number("+85261234567"), "85261234567");
        assert_eq!(aliyun_number("+14155552671"), "14155552671");
    }

    #[test]
    fn percent_encoding_keeps_only_the_unreserved() {
        assert_eq!(percent_encode("a b*c~d+e/"), "a%20b%2Ac~d%2Be%2F");
        assert_eq!(percent_encode("李"), "%E6%9D%8E");
    }

    /// The worked example of Aliyun's signature documentation (`DescribeRegions`, GET,
    /// secret `testsecret`) gives this signature.
    #[test]
    fn the_signature_matches_a_known_value() {
        let params: BTreeMap<String, String> = [
            ("AccessKeyId", "testid"),
            ("Action", "DescribeRegions"),
            ("Format", "XML"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureNonce", "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf"),
            ("SignatureVersion", "1.0"),
            ("Timestamp", "2016-02-23T12:46:24Z"),
            ("Version", "2014-05-26"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        assert_eq!(
            signature("GET", &params, "testsecret"),
            "OLeaidS1JvxuMvnyHOwuJ+uX5qY="
        );
    }

    #[test]
    fn settings_are_checked() {
        let parse = |text: &str| -> SmsConfig { toml::from_str(text).unwrap() };
        let missing = parse("provider = \"aliyun\"\n");
        assert!(
            missing
                .validate()
                .unwrap_err()
                .contains("no [sms.aliyun] section")
        );
        let good = parse(
            "provider = \"aliyun\"\n[aliyun]\nsign_name = \"店\"\n\
             [aliyun.templates.birthday]\ncode = \"SMS_1\"\nparams = { name = \"{{ customer.name }}\" }\n",
        );
        assert_eq!(good.validate(), Ok(()));
        let aliyun = good.aliyun.as_ref().unwrap();
        assert_eq!(aliyun.endpoint, "https://dysmsapi.aliyuncs.com/");
        assert_eq!(aliyun.access_key_secret_env, "ALIYUN_ACCESS_KEY_SECRET");
        assert_eq!(
            good.provider_params()["birthday"]["name"],
            "{{ customer.name }}"
        );
        let plain = parse(
            "provider = \"aliyun\"\n[aliyun]\nsign_name = \"店\"\nendpoint = \"http://sms.example/\"\n",
        );
        assert!(plain.validate().unwrap_err().contains("https://"));
        let no_code = parse(
            "provider = \"aliyun\"\n[aliyun]\nsign_name = \"店\"\n[aliyun.templates.x]\ncode = \"\"\n",
        );
        assert!(no_code.validate().unwrap_err().contains("code is empty"));
    }

    #[test]
    fn codes_are_classified() {
        assert!(classify_code("OK", 200).is_ok());
        assert!(matches!(
            classify_code("isv.BUSINESS_LIMIT_CONTROL", 200),
            Err(SmsError::Transient(_))
        ));
        assert!(matches!(
            classify_code("isv.DAY_LIMIT_CONTROL", 200),
            Err(SmsError::Permanent(_))
        ));
        assert!(matches!(
            classify_code("isv.MOBILE_NUMBER_ILLEGAL", 200),
            Err(SmsError::Permanent(_))
        ));
        assert!(matches!(
            classify_code("ServiceUnavailable", 503),
            Err(SmsError::Transient(_))
        ));
    }
}
