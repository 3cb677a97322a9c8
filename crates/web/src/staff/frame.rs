//! The staff page frame: the header (name, navigation, the account, language, logout), a skip
//! link to the content, and the staff stylesheet (`/static/staff.css`). No script, no inline
//! style: the CSP of [`crate::layout`] holds here too.
//!
//! A page renders with [`page`] (status 200) or [`page_with_status`]: pass the [`Staff`], the
//! [`Nav`] entry it belongs to, the title (text) and the body (HTML, escaped by the caller
//! with [`escape`]). Tables that must work on a phone use `<table class="stack">` with a
//! `data-label` on each `<td>` (the column's name), inside `<div class="table">`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
pub use tiercare_scheduler::html::escape;
use tiercare_scheduler::http_config::PageLanguage;

use crate::staff::auth::{Staff, pick};

/// The stylesheet's path.
pub const STYLESHEET_PATH: &str = "/static/staff.css";

/// The navigation entries, in order; [`Nav::None`] for pages outside them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    /// `/staff/`.
    Dashboard,
    /// `/staff/customers`.
    Customers,
    /// `/staff/tasks`.
    Tasks,
    /// `/staff/outbox`.
    Outbox,
    /// `/staff/plan`.
    Plan,
    /// `/staff/rules`.
    Rules,
    /// None of them is current.
    None,
}

impl Nav {
    const ENTRIES: [Nav; 6] = [
        Nav::Dashboard,
        Nav::Customers,
        Nav::Tasks,
        Nav::Outbox,
        Nav::Plan,
        Nav::Rules,
    ];

    /// The entry's path.
    pub fn path(self) -> &'static str {
        match self {
            Nav::Dashboard | Nav::None => "/staff/",
            Nav::Customers => "/staff/customers",
            Nav::Tasks => "/staff/tasks",
            Nav::Outbox => "/staff/outbox",
            Nav::Plan => "/staff/plan",
            Nav::Rules => "/staff/rules",
        }
    }

    /// The entry's label in `lang`.
    pub fn label(self, lang: PageLanguage) -> &'static str {
        match self {
            Nav::Dashboard | Nav::None => pick(lang, "Dashboard", "概览"),
            Nav::Customers => pick(lang, "Customers", "客户"),
            Nav::Tasks => pick(lang, "Tasks", "任务"),
            Nav::Outbox => pick(lang, "Outbox", "发件箱"),
            Nav::Plan => pick(lang, "Plan", "计划"),
            Nav::Rules => pick(lang, "Rules", "规则"),
        }
    }
}

/// The staff stylesheet: readable on a 360-px phone, visible focus, AA contrast.
pub const STYLESHEET: &str = "\
*{box-sizing:border-box}\
body{margin:0;font:1rem/1.5 system-ui,-apple-system,\"Segoe UI\",\"PingFang SC\",\"Microsoft YaHei\",sans-serif;color:#1a1a1a;background:#f4f4f2}\
a{color:#174f8c}\
a:focus-visible,button:focus-visible,input:focus-visible,select:focus-visible,textarea:focus-visible,summary:focus-visible{outline:3px solid #b35c00;outline-offset:2px}\
.skip{position:absolute;left:-999px;top:0;background:#fff;padding:.5rem 1rem;z-index:2}\
.skip:focus{left:.5rem}\
header{background:#173a5e;color:#fff;padding:.5rem 1rem;display:flex;flex-wrap:wrap;align-items:center;gap:.5rem 1.5rem}\
header a{color:#fff}\
header .brand{font-weight:700;font-size:1.125rem;text-decoration:none}\
header nav ul{list-style:none;margin:0;padding:0;display:flex;flex-wrap:wrap;gap:.25rem}\
header nav a{display:block;padding:.5rem .75rem;border-radius:.25rem;text-decoration:none}\
header nav a[aria-current=page]{background:#fff;color:#173a5e;font-weight:600}\
header .account{margin-left:auto;display:flex;flex-wrap:wrap;align-items:center;gap:.5rem 1rem}\
header .account form{margin:0}\
header .account button{background:transparent;border:1px solid #fff;min-height:2.25rem;padding:.25rem .75rem}\
main{max-width:72rem;margin:1rem auto;padding:1rem 1.25rem;background:#fff;border-radius:.5rem}\
main.narrow{max-width:28rem;margin-top:3rem}\
h1{font-size:1.5rem;margin:0 0 1rem}\
h2{font-size:1.2rem;margin:1.5rem 0 .5rem}\
p{margin:0 0 1rem}\
button{font:inherit;min-height:2.75rem;padding:.5rem 1.25rem;border:0;border-radius:.375rem;background:#174f8c;color:#fff;cursor:pointer}\
button.secondary{background:#fff;color:#174f8c;border:1px solid #174f8c}\
label{display:block;font-weight:600;margin:.75rem 0 .25rem}\
input,select,textarea{font:inherit;padding:.5rem;border:1px solid #6b6b6b;border-radius:.25rem;max-width:100%;min-height:2.75rem}\
form.stacked input,form.stacked select,form.stacked textarea{width:100%}\
form.stacked button{margin-top:1rem}\
form.inline{display:flex;flex-wrap:wrap;align-items:flex-end;gap:.5rem;margin:0}\
form.inline label{margin:0}\
.error{padding:.75rem 1rem;background:#fbe9e7;color:#7a1a0e;border-radius:.375rem}\
.notice{padding:.75rem 1rem;background:#e6f2e6;border-radius:.375rem}\
.figures{display:grid;grid-template-columns:repeat(auto-fill,minmax(10rem,1fr));gap:.75rem;padding:0;margin:0 0 1rem;list-style:none}\
.figures li{border:1px solid #d0d0cc;border-radius:.375rem;padding:.75rem}\
.figures .value{display:block;font-size:1.5rem;font-weight:700}\
.table{overflow-x:auto}\
table{border-collapse:collapse;width:100%}\
th,td{text-align:left;padding:.5rem;border-bottom:1px solid #d0d0cc;vertical-align:top}\
th{background:#eef1f5}\
td.number,th.number{text-align:right}\
table.code{table-layout:fixed}\
table.code th:first-child{width:3.5rem}\
table.code td{overflow-wrap:anywhere;word-break:break-word}\
.overdue{color:#9b1c0c;font-weight:600}\
.muted{color:#555}\
caption{position:absolute;width:1px;height:1px;overflow:hidden;clip-path:inset(50%);white-space:nowrap}\
fieldset{margin:1rem 0;padding:.5rem 1rem 1rem;border:1px solid #d0d0cc;border-radius:.375rem}\
legend{font-weight:600;padding:0 .25rem}\
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1.5rem;margin:0 0 1rem}\
dl.facts dt{font-weight:600;color:#555}\
dl.facts dd{margin:0;overflow-wrap:anywhere}\
@media (max-width:40rem){\
dl.facts{grid-template-columns:1fr;gap:0}\
dl.facts dd{margin:0 0 .5rem}\
main{margin:0;border-radius:0;padding:1rem .75rem}\
header .account{margin-left:0}\
table.stack thead{position:absolute;left:-999px}\
table.stack,table.stack tbody,table.stack tr,table.stack td{display:block;width:100%}\
table.stack tr{border:1px solid #d0d0cc;border-radius:.375rem;margin-bottom:.75rem;padding:.25rem .5rem}\
table.stack td{border:0;padding:.25rem 0}\
table.stack td[data-label]::before{content:attr(data-label);display:block;font-size:.85rem;color:#555;font-weight:600}\
td.number{text-align:left}\
}\
";

/// `GET /static/staff.css`.
pub async fn stylesheet() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/css; charset=utf-8"),
        )],
        STYLESHEET,
    )
        .into_response()
}

/// A paragraph of `text` (escaped).
pub fn paragraph(text: &str) -> String {
    format!("<p>{}</p>\n", escape(text))
}

fn html(lang: PageLanguage, title: &str, header: &str, main_class: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"{lang}\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"robots\" content=\"noindex\">\n<title>{title} · tiercare</title>\n\
         <link rel=\"stylesheet\" href=\"{STYLESHEET_PATH}\">\n</head>\n<body>\n\
         <a class=\"skip\" href=\"#main\">{skip}</a>\n{header}\
         <main id=\"main\" tabindex=\"-1\"{main_class}>\n<h1>{title}</h1>\n{body}</main>\n\
         </body>\n</html>\n",
        lang = match lang {
            PageLanguage::English => "en",
            PageLanguage::SimplifiedChinese => "zh-CN",
        },
        title = escape(title),
        skip = escape(pick(lang, "Skip to content", "跳到正文")),
    )
}

fn respond(status: StatusCode, html: String) -> Response {
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

/// The header of a signed-in page.
fn header_html(staff: &Staff, current: Nav) -> String {
    let lang = staff.lang;
    let mut nav = String::new();
    for entry in Nav::ENTRIES {
        nav.push_str(&format!(
            "<li><a href=\"{}\"{}>{}</a></li>",
            entry.path(),
            if entry == current {
                " aria-current=\"page\""
            } else {
                ""
            },
            escape(entry.label(lang))
        ));
    }
    let (other, other_code) = match lang {
        PageLanguage::English => ("中文", "zh-CN"),
        PageLanguage::SimplifiedChinese => ("English", "en"),
    };
    let role = match staff.role {
        crate::staff::Role::Admin => pick(lang, "admin", "管理员"),
        crate::staff::Role::Manager => pick(lang, "manager", "客户经理"),
        crate::staff::Role::Viewer => pick(lang, "viewer", "只读"),
    };
    format!(
        "<header>\n<a class=\"brand\" href=\"/staff/\">tiercare</a>\n\
         <nav aria-label=\"{nav_label}\"><ul>{nav}</ul></nav>\n\
         <div class=\"account\"><span>{login} ({role})</span>\
         <a href=\"?lang={other_code}\" lang=\"{other_code}\">{other}</a>\
         <form method=\"post\" action=\"/staff/logout\">{csrf}\
         <button type=\"submit\">{logout}</button></form></div>\n</header>\n",
        nav_label = escape(pick(lang, "Main", "主导航")),
        login = escape(&staff.login),
        csrf = staff.csrf_field(),
        logout = escape(pick(lang, "Sign out", "退出")),
    )
}

/// A signed-in page (200): `title` (text) and `body` (HTML) in the frame, `current` marked in
/// the navigation.
pub fn page(staff: &Staff, current: Nav, title: &str, body: &str) -> Response {
    page_with_status(staff, StatusCode::OK, current, title, body)
}

/// A signed-in page with `status`.
pub fn page_with_status(
    staff: &Staff,
    status: StatusCode,
    current: Nav,
    title: &str,
    body: &str,
) -> Response {
    respond(
        status,
        html(staff.lang, title, &header_html(staff, current), "", body),
    )
}

/// A page without the navigation (login, errors before sign-in).
pub fn bare_page(lang: PageLanguage, status: StatusCode, title: &str, body: &str) -> Response {
    respond(status, html(lang, title, "", " class=\"narrow\"", body))
}
