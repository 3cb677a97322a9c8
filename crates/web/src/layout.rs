//! The one page layout: every page is a small, self-contained HTML document (no script, one
//! stylesheet from this server), readable on a phone, with the security headers of every
//! answer.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tiercare_scheduler::html::escape;

use crate::i18n::Texts;

/// The Content-Security-Policy of every answer: nothing but this server's stylesheet and
/// forms posting back to it; no script, no frame, no other origin.
pub const CSP: &str = "default-src 'none'; style-src 'self'; form-action 'self'; \
                       frame-ancestors 'none'; base-uri 'none'";

/// The stylesheet, served at `static/page.css`.
pub const STYLESHEET: &str = "\
*{box-sizing:border-box}\
body{margin:0;font:1.0625rem/1.5 system-ui,-apple-system,\"Segoe UI\",\"PingFang SC\",\"Microsoft YaHei\",sans-serif;color:#1a1a1a;background:#f6f6f4}\
main{max-width:32rem;margin:2rem auto;padding:1.5rem;background:#fff;border-radius:.5rem}\
h1{font-size:1.5rem;margin:0 0 1rem}\
p{margin:0 0 1rem}\
form{margin:0 0 1rem}\
button{font:inherit;min-height:2.75rem;padding:.5rem 1.25rem;border:0;border-radius:.375rem;background:#1f5fa8;color:#fff;cursor:pointer}\
button:focus-visible,a:focus-visible{outline:3px solid #f2a900;outline-offset:2px}\
a{color:#1f5fa8}\
.notice{padding:.75rem 1rem;background:#e9f3e9;border-radius:.375rem}\
.scores{border:0;padding:0;margin:0 0 1rem}.scores legend{font-weight:600;margin-bottom:.5rem}\
.scores label{display:inline-block;min-width:2.75rem;min-height:2.75rem;margin:0 .25rem .25rem 0;padding:.5rem;border:1px solid #8a8a8a;border-radius:.375rem;text-align:center}\
textarea{font:inherit;width:100%}\
@media (max-width:36rem){main{margin:0;border-radius:0;min-height:100vh}button{width:100%}}\
";

/// A page: `title` and `body` (already HTML) in the layout, in the language of `texts`.
pub fn page(texts: &Texts, status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"{lang}\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"robots\" content=\"noindex\">\n<title>{title}</title>\n\
         <link rel=\"stylesheet\" href=\"static/page.css\">\n</head>\n<body>\n<main>\n\
         <h1>{title}</h1>\n{body}</main>\n</body>\n</html>\n",
        lang = texts.lang,
        title = escape(title),
    );
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        )],
        html,
    )
        .into_response()
}

/// A paragraph of `text` (escaped).
pub fn paragraph(text: &str) -> String {
    format!("<p>{}</p>\n", escape(text))
}

/// Adds the headers every answer carries: the CSP, no caching (pages show a person's
/// settings), no referrer (links carry tokens), no sniffing, no framing.
pub async fn security_headers(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::CACHE_CONTROL, "no-store"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}
