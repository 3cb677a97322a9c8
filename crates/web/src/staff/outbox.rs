//! The staff outbox: `/staff/outbox` (counts per state, one state's e-mails a page at a time,
//! newest first), `/staff/outbox/{id}` (an e-mail, its state history and bounces, retry and
//! cancel), `/staff/outbox/held` (what holds mail back: the reputation guard, paused receiving
//! domains, deferred e-mails; resume).
//!
//! Every change goes through the store calls `tiercare outbox retry|cancel|resume` make, and is
//! recorded in the staff audit.
//!
//! Who may do what (checked here, on the server):
//! - **admins** retry, cancel and resume;
//! - **managers** see their own customers' e-mails only, and may cancel those (stopping an
//!   e-mail is always safe: a manager who just spoke to the customer knows it should not go),
//!   but not retry them nor resume sending: sending again, or past the reputation guard,
//!   risks the whole workspace's sending reputation, which is the admins' to weigh;
//! - **viewers** read.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use tiercare_scheduler::html::escape;
use tiercare_scheduler::http_config::PageLanguage;
use tiercare_scheduler::time::local_time;
use tiercare_store::{Bounce, OutboxEmail, OutboxEvent, OutboxQuery, OutboxState, StoreError};

use crate::AppState;
use crate::staff::refusal::refusal;
use crate::staff::{Nav, Role, Staff, blocking, frame};

/// E-mails per page.
pub const PAGE: usize = 50;

/// The texts of the outbox pages, in one language.
pub struct OutboxTexts {
    /// The page title.
    pub title: &'static str,
    /// The title of the held page.
    pub held_title: &'static str,
    /// The link to the held page.
    pub held_link: &'static str,
    /// All states.
    pub all: &'static str,
    /// Column headings of the list: id, customer, rule, template, subject, due, sent,
    /// attempts, last error.
    pub columns: [&'static str; 9],
    /// No e-mail in this view.
    pub empty: &'static str,
    /// The link to the next (older) page.
    pub older: &'static str,
    /// A forgotten customer.
    pub forgotten: &'static str,
    /// Field names of the detail: to, subject, message-id, rule, template, customer, state,
    /// due, sent, attempts, last error, resent after a crash.
    pub fields: [&'static str; 12],
    /// The history heading and its columns: when, from, to, detail.
    pub history: (&'static str, [&'static str; 4]),
    /// The bounces heading.
    pub bounces: &'static str,
    /// The body heading.
    pub body: &'static str,
    /// The retry button.
    pub retry: &'static str,
    /// The cancel button.
    pub cancel: &'static str,
    /// The resume button.
    pub resume: &'static str,
    /// What retry does.
    pub retry_note: &'static str,
    /// The reputation guard's heading.
    pub guard: &'static str,
    /// Sending is not paused.
    pub not_paused: &'static str,
    /// The guard's figures: sends, hard bounces, complaints since.
    pub figures: &'static str,
    /// E-mails due and waiting.
    pub due_waiting: &'static str,
    /// The paused domains' heading.
    pub domains: &'static str,
    /// No paused domain.
    pub no_domains: &'static str,
    /// The held e-mails' heading.
    pub held_emails: &'static str,
    /// Why an e-mail is held: its domain is paused.
    pub domain_paused: &'static str,
    /// The back link to the outbox.
    pub back: &'static str,
    /// An unknown e-mail.
    pub unknown: &'static str,
    /// Done: retried.
    pub retried: &'static str,
    /// Done: cancelled.
    pub cancelled: &'static str,
    /// Done: resumed.
    pub resumed: &'static str,
}

const ENGLISH: OutboxTexts = OutboxTexts {
    title: "Outbox",
    held_title: "Held e-mails",
    held_link: "Held e-mails and sending",
    all: "all",
    columns: [
        "E-mail",
        "Customer",
        "Rule",
        "Template",
        "Subject",
        "Due",
        "Sent",
        "Attempts",
        "Last error",
    ],
    empty: "No e-mails here.",
    older: "Older e-mails",
    forgotten: "(forgotten)",
    fields: [
        "To",
        "Subject",
        "Message-ID",
        "Rule",
        "Template",
        "Customer",
        "State",
        "Due",
        "Sent",
        "Attempts",
        "Last error",
        "Resent after a crash",
    ],
    history: ("History", ["When", "From", "To", "Detail"]),
    bounces: "Bounces",
    body: "Text",
    retry: "Retry",
    cancel: "Cancel e-mail",
    resume: "Resume sending",
    retry_note: "Retry queues it again, due now, with the same Message-ID.",
    guard: "Reputation guard",
    not_paused: "Sending is not paused.",
    figures: "In the window since {since}: {sends} sends, {hard} hard bounces, {complaints} complaints.",
    due_waiting: "E-mails due and waiting: {n}.",
    domains: "Paused receiving domains",
    no_domains: "No receiving domain is paused.",
    held_emails: "Held e-mails (deferred, or due for a paused domain)",
    domain_paused: "its receiving domain is paused",
    back: "Back to the outbox",
    unknown: "There is no such e-mail.",
    retried: "Queued again, due now (same Message-ID).",
    cancelled: "Cancelled: it will not be sent.",
    resumed: "Sending resumed: the reputation guard counts only later sends.",
};

const SIMPLIFIED_CHINESE: OutboxTexts = OutboxTexts {
    title: "发件箱",
    held_title: "暂缓的邮件",
    held_link: "暂缓的邮件与发送状态",
    all: "全部",
    columns: [
        "邮件",
        "客户",
        "规则",
        "模板",
        "主题",
        "计划时间",
        "发送时间",
        "尝试次数",
        "最近错误",
    ],
    empty: "这里没有邮件。",
    older: "更早的邮件",
    forgotten: "（已遗忘）",
    fields: [
        "收件人",
        "主题",
        "Message-ID",
        "规则",
        "模板",
        "客户",
        "状态",
        "计划时间",
        "发送时间",
        "尝试次数",
        "最近错误",
        "崩溃后重发",
    ],
    history: ("状态历史", ["时间", "从", "到", "说明"]),
    bounces: "退信",
    body: "正文",
    retry: "重试",
    cancel: "取消邮件",
    resume: "恢复发送",
    retry_note: "重试会以相同的 Message-ID 立即重新排队。",
    guard: "信誉保护",
    not_paused: "发送未暂停。",
    figures: "自 {since} 起：发送 {sends} 封，硬退信 {hard} 封，投诉 {complaints} 次。",
    due_waiting: "已到期、等待发送的邮件：{n} 封。",
    domains: "已暂停的收件域名",
    no_domains: "没有暂停的收件域名。",
    held_emails: "暂缓的邮件（已延后，或收件域名已暂停）",
    domain_paused: "收件域名已暂停",
    back: "返回发件箱",
    unknown: "没有这封邮件。",
    retried: "已重新排队，立即到期（相同的 Message-ID）。",
    cancelled: "已取消：不会发送。",
    resumed: "已恢复发送：信誉保护只统计之后的发送。",
};

/// The outbox pages' texts in `language`.
pub fn texts(language: PageLanguage) -> &'static OutboxTexts {
    match language {
        PageLanguage::English => &ENGLISH,
        PageLanguage::SimplifiedChinese => &SIMPLIFIED_CHINESE,
    }
}

/// The states' names as the pages show them (the stored names: the CLI's vocabulary).
fn state_name(state: OutboxState) -> &'static str {
    state.as_str()
}

/// What a staff member may do to e-mails, decided once per request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Powers {
    /// Retry e-mails (admins).
    pub retry: bool,
    /// Cancel e-mails (admins; managers, their own customers' e-mails).
    pub cancel: bool,
    /// Resume sending past the reputation guard (admins).
    pub resume: bool,
}

/// Whether an e-mail in `state` can be retried (as [`tiercare_store::Store::retry_email`]
/// allows).
pub fn retryable(state: OutboxState) -> bool {
    matches!(
        state,
        OutboxState::Failed | OutboxState::Unknown | OutboxState::Deferred | OutboxState::Cancelled
    )
}

/// Whether an e-mail in `state` can be cancelled (as [`tiercare_store::Store::cancel_email`]
/// allows).
pub fn cancellable(state: OutboxState) -> bool {
    matches!(
        state,
        OutboxState::Queued | OutboxState::Deferred | OutboxState::Unknown | OutboxState::Failed
    )
}

fn time_cell(at: Option<i64>, timezone: chrono_tz::Tz) -> String {
    at.map(|at| escape(&local_time(at, timezone)))
        .unwrap_or_else(|| "–".to_owned())
}

/// The counts per state, each a link to that state's list (`current` marked).
pub fn render_counts(
    texts: &OutboxTexts,
    counts: &[(OutboxState, u64)],
    current: Option<OutboxState>,
) -> String {
    let total: u64 = counts.iter().map(|(_, n)| n).sum();
    let mut html = String::from("<ul class=\"figures states\">\n");
    let mark = |is: bool| if is { " aria-current=\"page\"" } else { "" };
    let _ = writeln!(
        html,
        "<li><a href=\"/staff/outbox\"{}><span class=\"value\">{total}</span>{}</a></li>",
        mark(current.is_none()),
        escape(texts.all)
    );
    for (state, count) in counts {
        let _ = writeln!(
            html,
            "<li><a href=\"/staff/outbox?state={name}\"{}>\
             <span class=\"value\" data-state=\"{name}\">{count}</span>{name}</a></li>",
            mark(current == Some(*state)),
            name = state_name(*state),
        );
    }
    html.push_str("</ul>\n");
    let _ = writeln!(
        html,
        "<p><a href=\"/staff/outbox/held\">{}</a></p>",
        escape(texts.held_link)
    );
    html
}

/// A table of e-mails; `why` adds a column saying why each is listed (the held page).
pub fn render_list(
    texts: &OutboxTexts,
    emails: &[OutboxEmail],
    timezone: chrono_tz::Tz,
    why: Option<&dyn Fn(&OutboxEmail) -> String>,
) -> String {
    if emails.is_empty() {
        return format!("<p>{}</p>\n", escape(texts.empty));
    }
    let mut html = String::from("<div class=\"table\"><table class=\"stack\">\n<thead><tr>");
    for column in texts.columns {
        let _ = write!(html, "<th scope=\"col\">{}</th>", escape(column));
    }
    html.push_str("</tr></thead>\n<tbody>\n");
    for email in emails {
        let last_error = match (&email.last_error, why) {
            (_, Some(why)) => why(email),
            (Some(error), None) if email.state != OutboxState::Sent => error.clone(),
            _ => String::new(),
        };
        let [c0, c1, c2, c3, c4, c5, c6, c7, c8] = texts.columns.map(escape);
        let _ = writeln!(
            html,
            "<tr data-id=\"{id}\"><td data-label=\"{c0}\"><a href=\"/staff/outbox/{id}\">#{id}</a> \
             <span class=\"state\">{state}</span></td><td data-label=\"{c1}\">{customer}</td>\
             <td data-label=\"{c2}\">{rule}</td><td data-label=\"{c3}\">{template}</td>\
             <td data-label=\"{c4}\">{subject}</td><td data-label=\"{c5}\">{due}</td>\
             <td data-label=\"{c6}\">{sent}</td><td data-label=\"{c7}\" class=\"number\">{attempts}</td>\
             <td data-label=\"{c8}\">{error}</td></tr>",
            id = email.id,
            state = state_name(email.state),
            customer = escape(email.customer_id.as_deref().unwrap_or(texts.forgotten)),
            rule = escape(&email.rule_id),
            template = escape(&email.template),
            subject = escape(&email.subject),
            due = time_cell(Some(email.due_at), timezone),
            sent = time_cell(email.sent_at, timezone),
            attempts = email.attempts,
            error = escape(&last_error),
        );
    }
    html.push_str("</tbody></table></div>\n");
    html
}

/// The link to the next page of a full one (`state` kept), or nothing.
pub fn render_older(
    texts: &OutboxTexts,
    emails: &[OutboxEmail],
    state: Option<OutboxState>,
    more: bool,
) -> String {
    match (more, emails.last()) {
        (true, Some(last)) => {
            let state = state
                .map(|s| format!("state={}&amp;", state_name(s)))
                .unwrap_or_default();
            format!(
                "<p><a href=\"/staff/outbox?{state}before={}\">{} →</a></p>\n",
                last.id,
                escape(texts.older)
            )
        }
        _ => String::new(),
    }
}

/// One e-mail: its fields, its history, its bounces, the buttons `powers` and its state
/// allow (`csrf` is the form's hidden field), and its text.
pub fn render_detail(
    texts: &OutboxTexts,
    email: &OutboxEmail,
    events: &[OutboxEvent],
    bounces: &[Bounce],
    timezone: chrono_tz::Tz,
    powers: Powers,
    csrf: &str,
) -> String {
    let values = [
        email.to_address.clone(),
        email.subject.clone(),
        email.message_id.clone(),
        email.rule_id.clone(),
        email.template.clone(),
        email
            .customer_id
            .clone()
            .unwrap_or_else(|| texts.forgotten.to_owned()),
        state_name(email.state).to_owned(),
        local_time(email.due_at, timezone),
        email
            .sent_at
            .map(|at| local_time(at, timezone))
            .unwrap_or_else(|| "–".to_owned()),
        email.attempts.to_string(),
        email.last_error.clone().unwrap_or_else(|| "–".to_owned()),
        email.recoveries.to_string(),
    ];
    let mut html = String::from("<div class=\"table\"><table class=\"fields\">\n<tbody>\n");
    for (index, (name, value)) in texts.fields.iter().zip(values).enumerate() {
        // The customer links to their page.
        let value = match (&email.customer_id, index) {
            (Some(customer), 5) => {
                let encoded: String =
                    form_urlencoded::byte_serialize(customer.as_bytes()).collect();
                format!(
                    "<a href=\"/staff/customers/{}\">{}</a>",
                    escape(&encoded),
                    escape(&value)
                )
            }
            _ => escape(&value),
        };
        let _ = writeln!(
            html,
            "<tr><th scope=\"row\">{}</th><td>{value}</td></tr>",
            escape(name)
        );
    }
    html.push_str("</tbody></table></div>\n");
    let mut buttons = String::new();
    if powers.retry && retryable(email.state) {
        let _ = write!(
            buttons,
            "<form method=\"post\" action=\"/staff/outbox/{id}/retry\">{csrf}\
             <button type=\"submit\" name=\"retry\">{}</button></form>",
            escape(texts.retry),
            id = email.id,
        );
    }
    if powers.cancel && cancellable(email.state) {
        let _ = write!(
            buttons,
            "<form method=\"post\" action=\"/staff/outbox/{id}/cancel\">{csrf}\
             <button type=\"submit\" name=\"cancel\" class=\"secondary\">{}</button></form>",
            escape(texts.cancel),
            id = email.id,
        );
    }
    if !buttons.is_empty() {
        let _ = writeln!(html, "<div class=\"actions\">{buttons}</div>");
    }
    if powers.retry && retryable(email.state) {
        let _ = writeln!(html, "<p class=\"muted\">{}</p>", escape(texts.retry_note));
    }
    let (heading, columns) = texts.history;
    let _ = write!(
        html,
        "<h2>{}</h2>\n<div class=\"table\"><table>\n<thead><tr>",
        escape(heading)
    );
    for column in columns {
        let _ = write!(html, "<th scope=\"col\">{}</th>", escape(column));
    }
    html.push_str("</tr></thead>\n<tbody>\n");
    for event in events {
        let _ = writeln!(
            html,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&local_time(event.at, timezone)),
            escape(event.from_state.as_deref().unwrap_or("–")),
            escape(&event.to_state),
            escape(event.detail.as_deref().unwrap_or("")),
        );
    }
    html.push_str("</tbody></table></div>\n");
    if !bounces.is_empty() {
        let _ = writeln!(html, "<h2>{}</h2>\n<ul>", escape(texts.bounces));
        for bounce in bounces {
            let _ = writeln!(
                html,
                "<li>{} · {} · {} · {}{}</li>",
                escape(&local_time(bounce.at, timezone)),
                escape(&bounce.kind.to_string()),
                escape(bounce.status.as_deref().unwrap_or("–")),
                escape(&bounce.source),
                bounce
                    .diagnostic
                    .as_deref()
                    .map(|d| format!(" · {}", escape(d)))
                    .unwrap_or_default(),
            );
        }
        html.push_str("</ul>\n");
    }
    let text: Vec<String> = email.body_text.lines().map(escape).collect();
    let _ = writeln!(
        html,
        "<h2>{}</h2>\n<p class=\"body\">{}</p>",
        escape(texts.body),
        text.join("<br>\n")
    );
    html
}

/// What holds mail back now, as `tiercare status` says it.
#[derive(Debug, Clone, Default)]
pub struct Held {
    /// Why the reputation guard paused all sending, if it did.
    pub paused: Option<String>,
    /// The guard's window: start, sends, hard bounces, complaints.
    pub figures: (i64, u64, u64, u64),
    /// E-mails due now and not yet claimed.
    pub due: u64,
    /// Paused receiving domains, each described.
    pub domains: Vec<String>,
    /// The paused domains' names (lower case).
    pub domain_names: Vec<String>,
}

/// The held page: the guard (with the resume button when `powers` allow), the paused
/// domains, and the held e-mails.
pub fn render_held(
    texts: &OutboxTexts,
    held: &Held,
    emails: &[OutboxEmail],
    timezone: chrono_tz::Tz,
    powers: Powers,
    csrf: &str,
) -> String {
    let mut html = format!("<h2>{}</h2>\n", escape(texts.guard));
    match &held.paused {
        Some(reason) => {
            let _ = writeln!(html, "<p class=\"error\">{}</p>", escape(reason));
        }
        None => {
            let _ = writeln!(html, "<p>{}</p>", escape(texts.not_paused));
        }
    }
    let (since, sends, hard, complaints) = held.figures;
    let figures = texts
        .figures
        .replace("{since}", &local_time(since, timezone))
        .replace("{sends}", &sends.to_string())
        .replace("{hard}", &hard.to_string())
        .replace("{complaints}", &complaints.to_string());
    let _ = writeln!(html, "<p>{}</p>", escape(&figures));
    let _ = writeln!(
        html,
        "<p>{}</p>",
        escape(&texts.due_waiting.replace("{n}", &held.due.to_string()))
    );
    if powers.resume && held.paused.is_some() {
        let _ = writeln!(
            html,
            "<form method=\"post\" action=\"/staff/outbox/resume\">{csrf}\
             <button type=\"submit\" name=\"resume\">{}</button></form>",
            escape(texts.resume)
        );
    }
    let _ = writeln!(html, "<h2>{}</h2>", escape(texts.domains));
    if held.domains.is_empty() {
        let _ = writeln!(html, "<p>{}</p>", escape(texts.no_domains));
    } else {
        html.push_str("<ul>\n");
        for domain in &held.domains {
            let _ = writeln!(html, "<li>{}</li>", escape(domain));
        }
        html.push_str("</ul>\n");
    }
    let _ = writeln!(html, "<h2>{}</h2>", escape(texts.held_emails));
    let why = |email: &OutboxEmail| {
        if email.state == OutboxState::Queued {
            texts.domain_paused.to_owned()
        } else {
            email.last_error.clone().unwrap_or_default()
        }
    };
    html.push_str(&render_list(texts, emails, timezone, Some(&why)));
    html
}

/// The outbox's routes.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/staff/outbox", get(index))
        .route("/staff/outbox/held", get(held_page))
        .route("/staff/outbox/resume", post(resume))
        .route("/staff/outbox/{id}", get(detail))
        .route("/staff/outbox/{id}/retry", post(retry))
        .route("/staff/outbox/{id}/cancel", post(cancel))
}

/// What `staff` may do to e-mails (see the module's documentation).
pub fn powers(staff: &Staff) -> Powers {
    match staff.role {
        Role::Admin => Powers {
            retry: true,
            cancel: true,
            resume: true,
        },
        Role::Manager => Powers {
            retry: false,
            cancel: true,
            resume: false,
        },
        Role::Viewer => Powers {
            retry: false,
            cancel: false,
            resume: false,
        },
    }
}

/// The value of `key` in a query string.
fn param(query: Option<&str>, key: &str) -> Option<String> {
    form_urlencoded::parse(query?.as_bytes())
        .find(|(k, _)| k == key)
        .map(|(_, value)| value.into_owned())
        .filter(|value| !value.is_empty())
}

fn timezone(state: &AppState) -> chrono_tz::Tz {
    state.timezone()
}

/// A page saying what is wrong with the request, with `status`.
fn problem(staff: &Staff, status: StatusCode, title: &str, text: &str) -> Response {
    frame::page_with_status(staff, status, Nav::Outbox, title, &frame::paragraph(text))
}

/// `GET /staff/outbox?state=S&before=ID`.
async fn index(
    State(state): State<Arc<AppState>>,
    staff: Staff,
    RawQuery(query): RawQuery,
) -> Response {
    let texts = texts(staff.lang);
    let filter = match param(query.as_deref(), "state") {
        None => None,
        Some(name) => match OutboxState::parse(&name) {
            Some(filter) => Some(filter),
            None => {
                let names: Vec<&str> = OutboxState::ALL.iter().map(|s| s.as_str()).collect();
                let text = format!(
                    "{}: {name} ({})",
                    staff.t("Unknown state", "未知状态"),
                    names.join(", ")
                );
                return problem(&staff, StatusCode::BAD_REQUEST, texts.title, &text);
            }
        },
    };
    let before = param(query.as_deref(), "before").and_then(|b| b.parse::<i64>().ok());
    let owner = staff.owner_scope().map(str::to_owned);
    let read = blocking(&state, staff.lang, move |store, _now| {
        let counts = store.outbox_counts_of(owner.as_deref())?;
        let emails = store.outbox_page(&OutboxQuery {
            state: filter,
            owner,
            before,
            limit: PAGE + 1,
        })?;
        Ok::<_, StoreError>((counts, emails))
    })
    .await;
    let (counts, mut emails) = match read {
        Ok(read) => read,
        Err(response) => return response,
    };
    let more = emails.len() > PAGE;
    emails.truncate(PAGE);
    let timezone = timezone(&state);
    let mut body = render_counts(texts, &counts, filter);
    let _ = writeln!(
        body,
        "<h2>{}</h2>",
        escape(filter.map_or(texts.all, state_name))
    );
    body.push_str(&render_list(texts, &emails, timezone, None));
    body.push_str(&render_older(texts, &emails, filter, more));
    frame::page(&staff, Nav::Outbox, texts.title, &body)
}

/// An e-mail the account may see: any for admins and viewers, their own customers' for a
/// manager; `None` otherwise (told apart from nothing, so a manager cannot probe ids).
fn visible(
    store: &tiercare_store::Store,
    staff_scope: Option<&str>,
    id: i64,
) -> Result<Option<OutboxEmail>, StoreError> {
    let Some(email) = store.outbox_email(id)? else {
        return Ok(None);
    };
    match staff_scope {
        None => Ok(Some(email)),
        Some(owner) => {
            Ok((store.outbox_email_owner(id)?.as_deref() == Some(owner)).then_some(email))
        }
    }
}

/// `GET /staff/outbox/{id}?done=retried|cancelled`.
async fn detail(
    State(state): State<Arc<AppState>>,
    staff: Staff,
    Path(id): Path<i64>,
    RawQuery(query): RawQuery,
) -> Response {
    let texts = texts(staff.lang);
    let owner = staff.owner_scope().map(str::to_owned);
    let read = blocking(&state, staff.lang, move |store, _now| {
        let Some(email) = visible(store, owner.as_deref(), id)? else {
            return Ok::<_, StoreError>(None);
        };
        let events = store.outbox_events(id)?;
        let bounces = store.bounces_of(id)?;
        Ok(Some((email, events, bounces)))
    })
    .await;
    let (email, events, bounces) = match read {
        Ok(Some(read)) => read,
        Ok(None) => return problem(&staff, StatusCode::NOT_FOUND, texts.title, texts.unknown),
        Err(response) => return response,
    };
    let mut body = match param(query.as_deref(), "done").as_deref() {
        Some("retried") => format!(
            "<p class=\"notice\" role=\"status\">{}</p>\n",
            escape(texts.retried)
        ),
        Some("cancelled") => {
            format!(
                "<p class=\"notice\" role=\"status\">{}</p>\n",
                escape(texts.cancelled)
            )
        }
        _ => String::new(),
    };
    // A manager sees only their own customers' e-mails, each one they may cancel.
    let allowed = powers(&staff);
    body.push_str(&render_detail(
        texts,
        &email,
        &events,
        &bounces,
        timezone(&state),
        allowed,
        &staff.csrf_field(),
    ));
    let _ = writeln!(
        body,
        "<p><a href=\"/staff/outbox\">{}</a></p>",
        escape(texts.back)
    );
    let title = format!("{} #{}", texts.title, email.id);
    frame::page(&staff, Nav::Outbox, &title, &body)
}

/// What a change by hand came to.
enum Changed {
    /// Done.
    Done,
    /// Not allowed or not possible in the e-mail's state: the store's words.
    Refused(String),
    /// No such e-mail (for this account).
    Unknown,
}

/// Retries or cancels the e-mail `id` through the store's own calls, recorded in the audit in
/// the same request; refused for e-mails outside a manager's scope.
async fn change(state: &Arc<AppState>, staff: Staff, id: i64, action: &'static str) -> Response {
    let texts = texts(staff.lang);
    let lang = staff.lang;
    let scope = staff.owner_scope().map(str::to_owned);
    let who = staff.clone();
    let timezone = timezone(state);
    let done = blocking(state, lang, move |store, now| {
        if visible(store, scope.as_deref(), id)?.is_none() {
            return Ok::<_, StoreError>(Changed::Unknown);
        }
        let before = store.outbox_email(id)?.map(|email| email.state);
        let after = if action == "retry" {
            OutboxState::Queued
        } else {
            OutboxState::Cancelled
        };
        let details = format!(
            "{} → {}",
            before.map_or("?", OutboxState::as_str),
            after.as_str()
        );
        // The change and its audit row commit together.
        let entry = who.audit_entry(
            &format!("outbox.{action}"),
            &format!("outbox:{id}"),
            Some(details),
        );
        let outcome = store.audited(entry, now, |store| match action {
            "retry" => store.retry_email(id, now),
            _ => store.cancel_email(id, now),
        });
        match outcome {
            Ok(_) => Ok(Changed::Done),
            Err(err @ (StoreError::EmailState { .. } | StoreError::UnknownEmail { .. })) => {
                Ok(Changed::Refused(refusal(&err, lang, timezone)))
            }
            Err(err) => Err(err),
        }
    })
    .await;
    match done {
        Ok(Changed::Done) => {
            let done = if action == "retry" {
                "retried"
            } else {
                "cancelled"
            };
            Redirect::to(&format!("/staff/outbox/{id}?done={done}")).into_response()
        }
        Ok(Changed::Refused(why)) => problem(&staff, StatusCode::CONFLICT, texts.title, &why),
        Ok(Changed::Unknown) => problem(&staff, StatusCode::NOT_FOUND, texts.title, texts.unknown),
        Err(response) => response,
    }
}

/// `POST /staff/outbox/{id}/retry` (admins).
async fn retry(State(state): State<Arc<AppState>>, staff: Staff, Path(id): Path<i64>) -> Response {
    if let Err(refused) = staff.require_admin() {
        return refused;
    }
    change(&state, staff, id, "retry").await
}

/// `POST /staff/outbox/{id}/cancel` (admins; managers, their own customers' e-mails).
async fn cancel(State(state): State<Arc<AppState>>, staff: Staff, Path(id): Path<i64>) -> Response {
    if let Err(refused) = staff.require_write() {
        return refused;
    }
    change(&state, staff, id, "cancel").await
}

/// `GET /staff/outbox/held?done=resumed&before=ID`: a page of held e-mails (older than the
/// e-mail `before`), with a link to the next.
async fn held_page(
    State(state): State<Arc<AppState>>,
    staff: Staff,
    RawQuery(query): RawQuery,
) -> Response {
    let texts = texts(staff.lang);
    let mail = state
        .workspace()
        .map(|w| w.config().mail.clone())
        .unwrap_or_default();
    let owner = staff.owner_scope().map(str::to_owned);
    let before = param(query.as_deref(), "before").and_then(|b| b.parse::<i64>().ok());
    let read = blocking(&state, staff.lang, move |store, now| {
        let sending = tiercare_scheduler::status::sending(store, &mail, now)?;
        let domain_names: Vec<String> = store
            .domain_pauses()?
            .into_iter()
            .filter(|pause| pause.paused_until > now)
            .map(|pause| pause.domain)
            .collect();
        let held = Held {
            paused: sending.paused,
            figures: (
                sending.figures.since,
                sending.figures.sends,
                sending.figures.hard_bounces,
                sending.figures.complaints,
            ),
            due: store.due_count(now)?,
            domains: sending.domains_paused,
            domain_names,
        };
        let emails = store.held_emails_before(
            now,
            &held.domain_names,
            owner.as_deref(),
            before,
            PAGE + 1,
        )?;
        Ok::<_, StoreError>((held, emails))
    })
    .await;
    let (held, mut emails) = match read {
        Ok(read) => read,
        Err(response) => return response,
    };
    let more = emails.len() > PAGE;
    emails.truncate(PAGE);
    let mut body = match param(query.as_deref(), "done").as_deref() {
        Some("resumed") => format!(
            "<p class=\"notice\" role=\"status\">{}</p>\n",
            escape(texts.resumed)
        ),
        _ => String::new(),
    };
    body.push_str(&render_held(
        texts,
        &held,
        &emails,
        timezone(&state),
        powers(&staff),
        &staff.csrf_field(),
    ));
    if let (true, Some(last)) = (more, emails.last()) {
        let _ = writeln!(
            body,
            "<p><a href=\"/staff/outbox/held?before={}\">{} →</a></p>",
            last.id,
            escape(texts.older)
        );
    }
    let _ = writeln!(
        body,
        "<p><a href=\"/staff/outbox\">{}</a></p>",
        escape(texts.back)
    );
    frame::page(&staff, Nav::Outbox, texts.held_title, &body)
}

/// `POST /staff/outbox/resume` (admins): `tiercare outbox resume`.
async fn resume(State(state): State<Arc<AppState>>, staff: Staff) -> Response {
    if let Err(refused) = staff.require_admin() {
        return refused;
    }
    let mail = state
        .workspace()
        .map(|w| w.config().mail.clone())
        .unwrap_or_default();
    let who = staff.clone();
    let done = blocking(&state, staff.lang, move |store, now| {
        let before = tiercare_scheduler::status::sending(store, &mail, now)?;
        let details = if before.paused.is_some() {
            "was paused"
        } else {
            "was not paused"
        };
        // The change and its audit row commit together.
        let entry = who.audit_entry("outbox.resume", "sending", Some(details.to_owned()));
        store.audited(entry, now, |store| store.resume_sending(now))
    })
    .await;
    match done {
        Ok(()) => Redirect::to("/staff/outbox/held?done=resumed").into_response(),
        Err(response) => response,
    }
}

#[cfg(test)]
mod tests {
    use tiercare_store::RecipientKind;

    use super::*;

    fn email(state: OutboxState) -> OutboxEmail {
        OutboxEmail {
            id: 7,
            channel: tiercare_store::Channel::Email,
            followup_id: None,
            customer_id: Some("C<1>".into()),
            consent_email: Some(true),
            rule_id: "care".into(),
            template: "care".into(),
            recipient_kind: RecipientKind::Customer,
            to_address: "ann@example.com".into(),
            to_name: None,
            message_id: "<m@x>".into(),
            subject: "<script>alert(1)</script>".into(),
            body_text: "Hi & bye".into(),
            body_html: None,
            state,
            due_at: 1_765_000_000,
            attempts: 2,
            last_error: Some("550 <no> such user".into()),
            created_at: 1_765_000_000,
            claimed_at: None,
            sent_at: None,
            updated_at: 1_765_000_000,
            recoveries: 0,
        }
    }

    const ALL: Powers = Powers {
        retry: true,
        cancel: true,
        resume: true,
    };

    #[test]
    fn lists_and_details_escape_what_comes_from_the_data() {
        let texts = texts(PageLanguage::English);
        let list = render_list(texts, &[email(OutboxState::Failed)], chrono_tz::UTC, None);
        assert!(
            list.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{list}"
        );
        assert!(list.contains("C&lt;1&gt;") && list.contains("550 &lt;no&gt; such user"));
        assert!(!list.contains("<script>"));
        let detail = render_detail(
            texts,
            &email(OutboxState::Failed),
            &[],
            &[],
            chrono_tz::UTC,
            ALL,
            "<csrf>",
        );
        assert!(detail.contains("Hi &amp; bye") && !detail.contains("<script>"));
    }

    #[test]
    fn buttons_follow_the_state_and_the_powers() {
        let texts = texts(PageLanguage::English);
        let detail = |state, powers| {
            render_detail(texts, &email(state), &[], &[], chrono_tz::UTC, powers, "")
        };
        let failed = detail(OutboxState::Failed, ALL);
        assert!(
            failed.contains("/staff/outbox/7/retry") && failed.contains("/staff/outbox/7/cancel")
        );
        let sent = detail(OutboxState::Sent, ALL);
        assert!(
            !sent.contains("<form"),
            "a sent e-mail has no button: {sent}"
        );
        let queued = detail(OutboxState::Queued, ALL);
        assert!(!queued.contains("/retry") && queued.contains("/cancel"));
        let viewer = Powers {
            retry: false,
            cancel: false,
            resume: false,
        };
        assert!(!detail(OutboxState::Failed, viewer).contains("<form"));
    }
}
