//! `[http]` in `tiercare.toml`: the web server of `tiercare serve` (and of `tiercare run` when
//! the section is present), and the public address its links use in e-mails.

use std::net::SocketAddr;

use serde::Deserialize;

/// The web server's settings (`[http]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Where the server listens (`listen`, default `127.0.0.1:8025`: loopback, behind a reverse
    /// proxy that terminates TLS).
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// The public base URL of the server as recipients reach it (`public_url`, e.g.
    /// `https://shop.example` or `https://shop.example/care` when the proxy strips `/care`).
    /// E-mails' unsubscribe links are `<public_url>/unsubscribe?token=...`. Must be `https://`,
    /// except `http://` on a loopback host for trying things out.
    #[serde(default)]
    pub public_url: Option<String>,
    /// The language of the pages (`language`: `"en"` or `"zh-CN"`); unset, each request's
    /// `Accept-Language` decides (English by default).
    #[serde(default)]
    pub language: Option<PageLanguage>,
    /// The largest request body accepted, in bytes (`max_body_bytes`, default 16384).
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
    /// Requests one client address may make per minute (`requests_per_minute`, default 60);
    /// more get 429.
    #[serde(default = "default_requests_per_minute")]
    pub requests_per_minute: u32,
    /// How long one request may take, reading it included, in seconds (`timeout_seconds`,
    /// default 10).
    #[serde(default = "default_timeout_seconds")]
    pub timeout_seconds: u64,
    /// Minutes a staff session lasts without a request before it ends (`staff_idle_minutes`,
    /// default 30).
    #[serde(default = "default_staff_idle_minutes")]
    pub staff_idle_minutes: u64,
    /// Hours a staff session lasts at most, however active (`staff_session_hours`, default 12).
    #[serde(default = "default_staff_session_hours")]
    pub staff_session_hours: u64,
}

/// The languages of the pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum PageLanguage {
    /// English.
    #[serde(rename = "en")]
    English,
    /// Simplified Chinese.
    #[serde(rename = "zh-CN")]
    SimplifiedChinese,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8025))
}

fn default_max_body_bytes() -> usize {
    16 * 1024
}

fn default_requests_per_minute() -> u32 {
    60
}

fn default_timeout_seconds() -> u64 {
    10
}

fn default_staff_idle_minutes() -> u64 {
    30
}

fn default_staff_session_hours() -> u64 {
    12
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: default_listen(),
            public_url: None,
            language: None,
            max_body_bytes: default_max_body_bytes(),
            requests_per_minute: default_requests_per_minute(),
            timeout_seconds: default_timeout_seconds(),
            staff_idle_minutes: default_staff_idle_minutes(),
            staff_session_hours: default_staff_session_hours(),
        }
    }
}

/// The path the server answers one-click unsubscribes and their page on.
pub const UNSUBSCRIBE_PATH: &str = "/unsubscribe";

/// The path of the preference page.
pub const PREFERENCES_PATH: &str = "/preferences";

/// Whether `url` is a plain `http://` URL on a loopback host (`127.0.0.1`, `localhost`, `[::1]`):
/// accepted in place of HTTPS, for trying things out and for tests.
pub fn is_loopback_http(url: &str) -> bool {
    ["http://127.0.0.1", "http://localhost", "http://[::1]"]
        .iter()
        .any(|prefix| {
            url.strip_prefix(prefix)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with([':', '/']))
        })
}

impl HttpConfig {
    /// Checks the settings; the message says what to write instead.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(url) = &self.public_url {
            if !url.starts_with("https://") && !is_loopback_http(url) {
                return Err(format!(
                    "http.public_url {url:?} must start with https:// (one-click unsubscribe links \
                     are HTTPS, RFC 8058; http:// is accepted only for 127.0.0.1 or localhost)"
                ));
            }
            if url.contains(['?', '#']) || url.chars().any(char::is_whitespace) {
                return Err(format!(
                    "http.public_url {url:?} must be a base URL without a query, fragment or \
                     spaces, such as \"https://shop.example\""
                ));
            }
        }
        if self.max_body_bytes < 256 || self.requests_per_minute == 0 || self.timeout_seconds == 0 {
            return Err(
                "[http] max_body_bytes must be at least 256, and requests_per_minute and \
                        timeout_seconds at least 1"
                    .to_owned(),
            );
        }
        if self.staff_idle_minutes == 0 || self.staff_session_hours == 0 {
            return Err(
                "[http] staff_idle_minutes and staff_session_hours must be at least 1".to_owned(),
            );
        }
        Ok(())
    }

    /// The base of the e-mails' one-click unsubscribe links (`token=` is appended), when
    /// `public_url` is set.
    pub fn unsubscribe_url(&self) -> Option<String> {
        self.public_url
            .as_ref()
            .map(|url| format!("{}{UNSUBSCRIBE_PATH}", url.trim_end_matches('/')))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_urls_must_be_https_except_on_loopback() {
        let with = |url: &str| HttpConfig {
            public_url: Some(url.to_owned()),
            ..HttpConfig::default()
        };
        assert_eq!(
            with("https://shop.example/").unsubscribe_url().as_deref(),
            Some("https://shop.example/unsubscribe")
        );
        assert!(with("https://shop.example/care").validate().is_ok());
        assert!(with("http://127.0.0.1:8025").validate().is_ok());
        assert!(with("http://localhost").validate().is_ok());
        assert!(with("http://shop.example").validate().is_err());
        assert!(with("http://127.0.0.1.evil.example").validate().is_err());
        assert!(with("https://shop.example/?a=b").validate().is_err());
    }
}
