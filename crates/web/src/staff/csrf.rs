//! Cross-site request forgery: every POST under `/staff/` is checked by the session layer
//! ([`crate::staff::auth::session_layer`]), so no handler can forget it.
//!
//! - The browser's own word first: a POST whose `Sec-Fetch-Site` is `cross-site` or
//!   `same-site`, or whose `Origin` is neither the request's host nor the public URL's origin,
//!   is refused (403). (`Origin: null`, which browsers send under the pages'
//!   `Referrer-Policy: no-referrer`, leaves it to `Sec-Fetch-Site` and the token.)
//! - Then a synchronizer token: the form's hidden `_csrf` field ([`hidden_field`]) must equal
//!   the session's token (a random 256-bit value kept with the session), compared in constant
//!   time. The login form, before any session, repeats a random token from its own cookie.
//!
//! The session cookie is `SameSite=Strict` besides.

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use tiercare_scheduler::html::escape;
use tiercare_scheduler::http_config::PageLanguage;

use crate::staff::auth::pick;
use crate::staff::frame;

/// The name of the form field that carries the token.
pub const FIELD: &str = "_csrf";

/// The hidden form field carrying `token`.
pub fn hidden_field(token: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"{FIELD}\" value=\"{}\">\n",
        escape(token)
    )
}

/// Whether the form body `body` (urlencoded) carries `_csrf` equal to `expected`.
pub fn form_token_matches(body: &[u8], expected: &str) -> bool {
    form_urlencoded::parse(body)
        .find(|(key, _)| key == FIELD)
        .is_some_and(|(_, value)| {
            !expected.is_empty() && constant_time_eq(value.as_bytes(), expected.as_bytes())
        })
}

/// Compares two byte strings in time that depends on their lengths only.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The origin (`scheme://host[:port]`) of a URL.
fn origin_of(url: &str) -> Option<&str> {
    let (scheme, rest) = url.split_once("://")?;
    let end = rest.find('/').unwrap_or(rest.len());
    Some(&url[..scheme.len() + 3 + end])
}

/// Whether a POST's headers say it comes from this site: `Sec-Fetch-Site` absent, `same-origin`
/// or `none`, and `Origin` absent or equal to `http(s)://<Host>` or to `public_url`'s origin.
pub fn same_origin(headers: &HeaderMap, public_url: Option<&str>) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        let site = site.to_str().unwrap_or("cross-site");
        if site != "same-origin" && site != "none" {
            return false;
        }
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    let origin = origin.trim_end_matches('/');
    if origin == "null" {
        // Browsers send `Origin: null` under `Referrer-Policy: no-referrer` (every page of
        // this server's): `Sec-Fetch-Site`, checked above, and the token decide then.
        return true;
    }
    if public_url
        .and_then(origin_of)
        .is_some_and(|public| public.eq_ignore_ascii_case(origin))
    {
        return true;
    }
    let host = headers
        .get(header::HOST)
        .and_then(|host| host.to_str().ok())
        .unwrap_or("");
    !host.is_empty()
        && origin
            .split_once("://")
            .is_some_and(|(_, rest)| rest.eq_ignore_ascii_case(host))
}

/// The 403 answer to a forged (or stale) POST.
pub fn refused(lang: PageLanguage) -> Response {
    frame::bare_page(
        lang,
        StatusCode::FORBIDDEN,
        pick(lang, "Request refused", "请求被拒绝"),
        &frame::paragraph(pick(
            lang,
            "This form was not sent from this site's page, or the page is too old. Go back, \
             reload the page and try again.",
            "此表单不是从本站页面提交的，或页面已过期。请返回并刷新页面后重试。",
        )),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_and_origins() {
        assert!(form_token_matches(b"a=1&_csrf=abc", "abc"));
        assert!(!form_token_matches(b"a=1&_csrf=abd", "abc"));
        assert!(!form_token_matches(b"a=1", "abc"));
        assert!(!form_token_matches(b"_csrf=", ""));
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, "127.0.0.1:8025".parse().unwrap());
        assert!(same_origin(&headers, None));
        headers.insert(header::ORIGIN, "http://127.0.0.1:8025".parse().unwrap());
        assert!(same_origin(&headers, None));
        headers.insert(header::ORIGIN, "https://evil.example".parse().unwrap());
        assert!(!same_origin(&headers, None));
        assert!(!same_origin(&headers, Some("https://shop.example/care")));
        headers.insert(header::ORIGIN, "https://shop.example".parse().unwrap());
        assert!(same_origin(&headers, Some("https://shop.example/care")));
        headers.insert(header::ORIGIN, "null".parse().unwrap());
        assert!(same_origin(&headers, None));
        headers.insert("sec-fetch-site", "cross-site".parse().unwrap());
        assert!(!same_origin(&headers, Some("https://shop.example/care")));
    }
}
