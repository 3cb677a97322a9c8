//! The staff customer page, `/staff/customers/{id}`: profile, consent, the tier with the same
//! explanation `tiercare explain` gives ([`explain`]) and its history, pins (pin and unpin with
//! a reason), orders, contacts (and "log a call or visit"), complaints, feedback, e-mails with
//! their states, tasks; and forgetting the customer (admins, after typing the id), through the
//! same store calls as `tiercare customer show|forget` and `tiercare pin|unpin`.
//!
//! Rendering is plain functions over the data read ([`CustomerData`]); the handlers decide who
//! may see and do what.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use tiercare_store::LoggedContact;

use serde_json::Value;
use tiercare_scheduler::assess::{AssessError, CustomerExplanation, RuleSource, explain};
use tiercare_scheduler::html::escape;
use tiercare_scheduler::time::{local_time, parse_time};
use tiercare_scheduler::workspace::Workspace;
use tiercare_store::{Store, StoreError};

use super::customer_texts::{CustomerTexts, texts};
use super::customers::{customer_href, no_workspace};
use super::refusal::{contact_problem, pin_problem};
use super::{Nav, Staff, blocking, frame};
use crate::AppState;

/// How many of the latest orders, contacts, e-mails... a section shows.
pub const LATEST: usize = 20;

/// Everything the page shows about one customer.
pub struct CustomerData {
    /// The customer's external id.
    pub id: String,
    /// What `tiercare customer export` prints (profile, orders, contacts, e-mails...).
    pub export: Value,
    /// The explanation of the tier now, or why the rules could not be read.
    pub explained: Result<CustomerExplanation, String>,
    /// The rule set's tiers (for the pin form); empty when the rules could not be read.
    pub tiers: Vec<String>,
    /// The workspace's zone: the page's times are written on its clock.
    pub timezone: chrono_tz::Tz,
}

impl CustomerData {
    /// The owning manager's external id, if any.
    #[must_use]
    pub fn owner(&self) -> Option<&str> {
        owner_of(&self.export)
    }

    /// Whether the customer has an active pin (by the explanation's pins).
    #[must_use]
    pub fn has_active_pin(&self, now: i64) -> bool {
        self.explained
            .as_ref()
            .is_ok_and(|explained| explained.pins.iter().any(|pin| pin.is_active(now)))
    }
}

/// The owning manager's id in an export.
#[must_use]
pub fn owner_of(export: &Value) -> Option<&str> {
    export["customer"]["owner"]
        .as_str()
        .filter(|owner| !owner.is_empty())
}

/// The rule set's tier ids, or why the rules could not be read.
///
/// # Errors
/// The rules' diagnostics, as text.
pub fn rule_tiers(workspace: &Workspace) -> Result<Vec<String>, String> {
    let loaded = RuleSource::read(&workspace.rules_dir(), Path::new("rules"))
        .and_then(|source| source.load())
        .map_err(|err| err.to_string())?;
    Ok(loaded.rules.tiers().map(|tier| tier.id.clone()).collect())
}

/// Whether the customer `id` exists and is within `scope` (a manager's id: their own
/// customers only; `None`: everyone's).
///
/// # Errors
/// The database refused.
pub fn in_scope(store: &Store, id: &str, scope: Option<&str>) -> Result<bool, StoreError> {
    Ok(store
        .customer(id)?
        .is_some_and(|customer| scope.is_none_or(|scope| customer.owner.as_deref() == Some(scope))))
}

/// Reads the customer `id` and explains their tier at `now`; `None` when there is no such
/// customer or they are outside `scope` (another manager's: the same answer, so a manager
/// cannot learn which ids exist).
///
/// # Errors
/// The database refused.
pub fn load_customer(
    workspace: &Workspace,
    store: &Store,
    id: &str,
    scope: Option<&str>,
    now: i64,
) -> Result<Option<CustomerData>, StoreError> {
    let export = match store.export_customer(id) {
        Ok(export) => export,
        Err(StoreError::UnknownCustomer { .. }) => return Ok(None),
        Err(err) => return Err(err),
    };
    if scope.is_some_and(|scope| owner_of(&export) != Some(scope)) {
        return Ok(None);
    }
    let (explained, tiers) =
        match RuleSource::read(&workspace.rules_dir(), Path::new("rules")).and_then(|s| s.load()) {
            Ok(loaded) => {
                let tiers = loaded.rules.tiers().map(|tier| tier.id.clone()).collect();
                let explained = explain(
                    store,
                    &loaded.rules,
                    id,
                    now,
                    now,
                    workspace.config().growth_settings(),
                )
                .map_err(|err| match err {
                    AssessError::Store(err) => err.to_string(),
                    other => other.to_string(),
                });
                (explained, tiers)
            }
            Err(err) => (Err(err.to_string()), Vec::new()),
        };
    Ok(Some(CustomerData {
        id: id.to_owned(),
        export,
        explained,
        tiers,
        timezone: workspace.config().timezone,
    }))
}

/// What the signed-in person may do on the page, and the hidden CSRF field of its forms.
pub struct PageRights<'a> {
    /// Pin, unpin and log contacts: admins and the owning manager.
    pub may_change: bool,
    /// Forget: admins.
    pub may_forget: bool,
    /// The forms' hidden CSRF field (HTML).
    pub csrf_field: &'a str,
}

/// A message at the top of the page after an action.
pub enum Notice<'a> {
    /// It was done.
    Done(&'a str),
    /// It was refused: why.
    Problem(&'a str),
}

fn text<'a>(value: &'a Value, key: &str) -> &'a str {
    value.get(key).and_then(Value::as_str).unwrap_or("")
}

/// The time under `key` of `value` on the clock of `tz` (`2026-12-08 09:00 Europe/London`).
fn time_in(value: &Value, key: &str, tz: chrono_tz::Tz) -> String {
    value
        .get(key)
        .and_then(Value::as_i64)
        .map(|unix| local_time(unix, tz))
        .unwrap_or_default()
}

fn list<'a>(export: &'a Value, key: &str) -> &'a [Value] {
    export
        .get(key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// A cell's text of any JSON value (strings as they are, null as empty).
fn cell(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// A table: `caption` (a section's items), `headers`, and rows of cells (escaped here).
fn table(html: &mut String, caption: &str, headers: &[&str], rows: &[Vec<String>]) {
    let _ = write!(
        html,
        "<div class=\"table\"><table class=\"stack\">\n<caption>{}</caption>\n<thead><tr>",
        escape(caption)
    );
    for header in headers {
        let _ = write!(html, "<th scope=\"col\">{}</th>", escape(header));
    }
    html.push_str("</tr></thead>\n<tbody>\n");
    for row in rows {
        html.push_str("<tr>");
        for (cell, header) in row.iter().zip(headers) {
            let _ = write!(
                html,
                "<td data-label=\"{}\">{}</td>",
                escape(header),
                escape(cell)
            );
        }
        html.push_str("</tr>\n");
    }
    html.push_str("</tbody></table></div>\n");
}

/// A section of the latest items of `key` (stored oldest first), newest first.
fn latest_section(
    html: &mut String,
    texts: &CustomerTexts,
    title: &str,
    items: &[Value],
    headers: &[&str],
    row: impl Fn(&Value) -> Vec<String>,
) {
    let _ = writeln!(
        html,
        "<section>\n<h2>{} ({})</h2>",
        escape(title),
        items.len()
    );
    if items.is_empty() {
        let _ = writeln!(html, "<p>{}</p>", escape(texts.nothing));
    } else {
        let rows: Vec<Vec<String>> = items.iter().rev().take(LATEST).map(row).collect();
        let caption = if items.len() > LATEST {
            format!("{title}: {} {LATEST}", texts.latest_shown)
        } else {
            title.to_owned()
        };
        table(html, &caption, headers, &rows);
    }
}

/// The body of the customer page (the frame adds the title and navigation).
#[must_use]
pub fn render_customer(
    texts: &CustomerTexts,
    data: &CustomerData,
    rights: &PageRights<'_>,
    notice: Option<Notice<'_>>,
    now: i64,
) -> String {
    let export = &data.export;
    let customer = &export["customer"];
    let href = customer_href(&data.id);
    let time = |value: &Value, key: &str| time_in(value, key, data.timezone);
    let mut html = String::new();
    let _ = writeln!(
        html,
        "<p><a href=\"/staff/customers\">{}</a></p>",
        escape(texts.back_to_list)
    );
    match notice {
        Some(Notice::Done(message)) => {
            let _ = writeln!(
                html,
                "<p class=\"notice\" role=\"status\">{}</p>",
                escape(message)
            );
        }
        Some(Notice::Problem(message)) => {
            let _ = writeln!(
                html,
                "<p class=\"error\" role=\"alert\">{}</p>",
                escape(message)
            );
        }
        None => {}
    }
    // Profile.
    let or_none = |value: &str| {
        if value.is_empty() {
            texts.none.to_owned()
        } else {
            value.to_owned()
        }
    };
    let _ = writeln!(
        html,
        "<section>\n<h2>{}</h2>\n<dl class=\"facts\">",
        escape(texts.profile)
    );
    let attributes = match customer.get("attributes") {
        Some(Value::Object(map)) if !map.is_empty() => map
            .iter()
            .map(|(key, value)| format!("{key}={}", cell(value)))
            .collect::<Vec<_>>()
            .join(", "),
        _ => String::new(),
    };
    let owner = text(customer, "owner").to_owned();
    for (label, value) in [
        (texts.columns[0], data.id.clone()),
        (texts.columns[1], text(customer, "name").to_owned()),
        (texts.profile_labels[0], text(customer, "email").to_owned()),
        (texts.profile_labels[1], text(customer, "phone").to_owned()),
        (
            texts.profile_labels[2],
            text(customer, "birthday").to_owned(),
        ),
        (texts.profile_labels[3], text(customer, "region").to_owned()),
        (texts.owner, owner),
        (
            texts.profile_labels[4],
            text(customer, "timezone").to_owned(),
        ),
        (texts.profile_labels[5], attributes),
    ] {
        let _ = writeln!(
            html,
            "<dt>{}</dt><dd>{}</dd>",
            escape(label),
            escape(&or_none(&value))
        );
    }
    html.push_str("</dl>\n</section>\n");
    // Consent.
    let _ = writeln!(
        html,
        "<section>\n<h2>{}</h2>\n<dl class=\"facts\">",
        escape(texts.consent)
    );
    for (label, key) in
        texts
            .consent_labels
            .iter()
            .zip(["consent_email", "consent_sms", "consent_phone"])
    {
        let given = customer.get(key).and_then(Value::as_i64) == Some(1);
        let _ = writeln!(
            html,
            "<dt>{}</dt><dd>{}</dd>",
            escape(label),
            escape(if given { texts.yes } else { texts.no })
        );
    }
    html.push_str("</dl>\n");
    if export["email_suppressed"].as_bool() == Some(true) {
        let _ = writeln!(html, "<p>{}</p>", escape(texts.suppressed));
    }
    html.push_str("</section>\n");
    // Tier and why.
    let _ = writeln!(html, "<section>\n<h2>{}</h2>", escape(texts.tier_and_why));
    let tier = &export["tier"];
    if tier.is_null() {
        let _ = writeln!(html, "<p>{}</p>", escape(texts.never_assessed));
    } else {
        let segments: Vec<String> = list(export, "segments")
            .iter()
            .map(|s| format!("{}={}", text(s, "segment_set"), text(s, "segment")))
            .collect();
        let _ = writeln!(
            html,
            "<p class=\"tier\"><strong>{}</strong> {} {}{}</p>",
            escape(text(tier, "tier")),
            escape(texts.since),
            escape(&time(tier, "since")),
            if segments.is_empty() {
                String::new()
            } else {
                format!(" · {}", escape(&segments.join(", ")))
            }
        );
    }
    match &data.explained {
        Ok(explained) => {
            // The decision, then `tiercare explain`'s every line (indentation kept, wrapping on
            // a phone) folded away.
            let decision = &explained.explanation.decision;
            let _ = writeln!(
                html,
                "<p>{}: <strong>{}</strong> · {}</p>\n<details><summary>{}</summary>",
                escape(texts.rules_say),
                escape(decision.tier.as_deref().unwrap_or(texts.none)),
                escape(&decision.reason),
                escape(texts.every_rule),
            );
            html.push_str("<ul class=\"explain\">\n");
            for line in explained.explanation.render().lines() {
                let text = line.trim_start();
                let indent = "\u{a0}".repeat(line.len() - text.len());
                let _ = writeln!(html, "<li>{indent}{}</li>", escape(text));
            }
            html.push_str("</ul>\n</details>\n");
        }
        Err(problem) => {
            let _ = writeln!(
                html,
                "<p class=\"error\">{} {}</p>",
                escape(texts.rules_unreadable),
                escape(problem)
            );
        }
    }
    html.push_str("</section>\n");
    // Tier history, newest first.
    let history = list(export, "tier_history");
    latest_section(
        &mut html,
        texts,
        texts.tier_history,
        history,
        &texts.history_columns,
        |change| {
            vec![
                time(change, "at"),
                text(change, "from_tier").to_owned(),
                text(change, "to_tier").to_owned(),
                text(change, "reason").to_owned(),
            ]
        },
    );
    // Pins, with the forms.
    let pins = list(export, "pins");
    latest_section(
        &mut html,
        texts,
        texts.pins,
        pins,
        &texts.pin_columns,
        |pin| {
            vec![
                text(pin, "tier").to_owned(),
                text(pin, "reason").to_owned(),
                text(pin, "pinned_by").to_owned(),
                time(pin, "created_at"),
                time(pin, "until"),
                time(pin, "removed_at"),
            ]
        },
    );
    if rights.may_change {
        let _ = write!(
            html,
            "<form class=\"stacked\" method=\"post\" action=\"{href}/pin\">\n{csrf}\
             <fieldset><legend>{legend}</legend>\n\
             <div class=\"field\"><label for=\"pin-tier\">{tier}</label>\
             <select id=\"pin-tier\" name=\"tier\" required>",
            csrf = rights.csrf_field,
            legend = escape(texts.pin_tier),
            tier = escape(texts.tier),
        );
        for tier in &data.tiers {
            let _ = write!(html, "<option value=\"{t}\">{t}</option>", t = escape(tier));
        }
        let _ = write!(
            html,
            "</select></div>\n\
             <div class=\"field\"><label for=\"pin-reason\">{reason}</label>\
             <textarea id=\"pin-reason\" name=\"reason\" required rows=\"2\"></textarea></div>\n\
             <div class=\"field\"><label for=\"pin-until\">{until}</label>\
             <input id=\"pin-until\" name=\"until\" type=\"date\" placeholder=\"{hint}\"></div>\n\
             <button type=\"submit\">{pin}</button>\n</fieldset>\n</form>\n",
            reason = escape(texts.reason),
            until = escape(texts.until),
            hint = escape(texts.date_hint),
            pin = escape(texts.pin_button),
        );
        if data.has_active_pin(now) {
            let _ = writeln!(
                html,
                "<form class=\"inline\" method=\"post\" action=\"{href}/unpin\">{csrf}\
                 <button type=\"submit\" class=\"secondary\">{unpin}</button></form>",
                csrf = rights.csrf_field,
                unpin = escape(texts.unpin_button),
            );
        }
    }
    // Orders.
    let orders = list(export, "orders");
    latest_section(
        &mut html,
        texts,
        texts.orders,
        orders,
        &texts.order_columns,
        |order| {
            vec![
                time(order, "ordered_at"),
                text(order, "external_id").to_owned(),
                format!(
                    "{:.2}",
                    order.get("amount").and_then(Value::as_f64).unwrap_or(0.0)
                ),
                cell(&order["item_count"]),
            ]
        },
    );
    // Contacts, and logging one.
    let contacts = list(export, "interactions");
    latest_section(
        &mut html,
        texts,
        texts.contacts,
        contacts,
        &texts.contact_columns,
        |contact| {
            vec![
                time(contact, "occurred_at"),
                text(contact, "kind").to_owned(),
                text(contact, "by_manager").to_owned(),
                text(contact, "note").to_owned(),
            ]
        },
    );
    if rights.may_change {
        let _ = writeln!(
            html,
            "<form class=\"stacked\" method=\"post\" action=\"{href}/contact\">\n{csrf}\
             <fieldset><legend>{legend}</legend>\n\
             <div class=\"field\"><label for=\"contact-kind\">{kind}</label>\
             <select id=\"contact-kind\" name=\"kind\"><option value=\"call\">{call}</option>\
             <option value=\"visit\">{visit}</option></select></div>\n\
             <div class=\"field\"><label for=\"contact-date\">{when}</label>\
             <input id=\"contact-date\" name=\"date\" type=\"date\" placeholder=\"{hint}\"></div>\n\
             <div class=\"field\"><label for=\"contact-note\">{note}</label>\
             <textarea id=\"contact-note\" name=\"note\" rows=\"2\"></textarea></div>\n\
             <button type=\"submit\">{log}</button>\n</fieldset>\n</form>",
            csrf = rights.csrf_field,
            legend = escape(texts.log_contact),
            kind = escape(texts.kind),
            call = escape(texts.call),
            visit = escape(texts.visit),
            when = escape(texts.when),
            hint = escape(texts.date_hint),
            note = escape(texts.note),
            log = escape(texts.log_button),
        );
    }
    latest_section(
        &mut html,
        texts,
        texts.complaints,
        list(export, "complaints"),
        &texts.complaint_columns,
        |complaint| {
            vec![
                time(complaint, "opened_at"),
                cell(&complaint["severity"]),
                text(complaint, "subject").to_owned(),
                time(complaint, "resolved_at"),
            ]
        },
    );
    latest_section(
        &mut html,
        texts,
        texts.feedback,
        list(export, "feedback"),
        &texts.feedback_columns,
        |answer| {
            vec![
                time(answer, "given_at"),
                cell(&answer["score"]),
                text(answer, "comment").to_owned(),
            ]
        },
    );
    latest_section(
        &mut html,
        texts,
        texts.emails,
        list(export, "emails"),
        &texts.email_columns,
        |email| {
            vec![
                time(email, "created_at"),
                text(email, "state").to_owned(),
                text(email, "template").to_owned(),
                text(email, "subject").to_owned(),
            ]
        },
    );
    latest_section(
        &mut html,
        texts,
        texts.tasks,
        list(export, "tasks"),
        &texts.task_columns,
        |task| {
            vec![
                time(task, "due_at"),
                text(task, "status").to_owned(),
                text(task, "assignee").to_owned(),
                text(task, "title").to_owned(),
            ]
        },
    );
    if rights.may_forget {
        let _ = writeln!(
            html,
            "<section>\n<h2>{forget}</h2>\n<p><a href=\"{href}/forget\">{forget}</a></p>\n</section>",
            forget = escape(texts.forget),
        );
    }
    html
}

/// The body of the confirmation page of forgetting the customer `id`.
#[must_use]
pub fn render_forget(
    texts: &CustomerTexts,
    id: &str,
    csrf_field: &str,
    problem: Option<&str>,
) -> String {
    let href = customer_href(id);
    let mut html = String::new();
    let _ = writeln!(html, "<p><a href=\"{href}\">{}</a></p>", escape(id));
    if let Some(problem) = problem {
        let _ = writeln!(
            html,
            "<p class=\"error\" role=\"alert\">{}</p>",
            escape(problem)
        );
    }
    let _ = writeln!(
        html,
        "<p>{lead}</p>\n<form class=\"stacked\" method=\"post\" action=\"{href}/forget\">\n{csrf_field}\
         <div class=\"field\"><label for=\"forget-confirm\">{confirm}</label>\
         <input id=\"forget-confirm\" name=\"confirm\" required autocomplete=\"off\"></div>\n\
         <button type=\"submit\" class=\"danger\">{forget}</button>\n</form>",
        lead = escape(texts.forget_lead),
        confirm = escape(texts.forget_confirm),
        forget = escape(texts.forget),
    );
    html
}

/// The customer page's routes.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/staff/customers/{id}", get(customer_page))
        .route("/staff/customers/{id}/pin", axum::routing::post(pin))
        .route("/staff/customers/{id}/unpin", axum::routing::post(unpin))
        .route(
            "/staff/customers/{id}/contact",
            axum::routing::post(log_contact),
        )
        .route(
            "/staff/customers/{id}/forget",
            get(forget_page).post(forget),
        )
}

/// What a change made of the page.
enum Outcome {
    /// Done: back to the page with `?done=KEY`.
    Done(&'static str),
    /// Refused for a reason the person can fix: the page again with the problem (400).
    Problem(String),
    /// No such customer, or another manager's (404).
    NotFound,
}

fn not_found(staff: &Staff) -> Response {
    frame::page_with_status(
        staff,
        StatusCode::NOT_FOUND,
        Nav::Customers,
        staff.t("No such customer", "没有这个客户"),
        &frame::paragraph(staff.t(
            "There is no customer with this id among yours.",
            "您的客户中没有这个编号。",
        )),
    )
}

/// The notice of `?done=KEY` after a change.
fn done_notice(texts: &'static CustomerTexts, query: Option<&str>) -> Option<Notice<'static>> {
    let done = form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .find(|(key, _)| key == "done")
        .map(|(_, value)| value.into_owned())?;
    let message = match done.as_str() {
        "pin" => texts.pinned,
        "unpin" => texts.unpinned,
        "contact" => texts.logged,
        "forget" => texts.forgotten,
        _ => return None,
    };
    Some(Notice::Done(message))
}

/// The customer page with `notice`, answered with `status`.
async fn show(
    state: &Arc<AppState>,
    staff: &Staff,
    id: String,
    notice: Option<Notice<'_>>,
    status: StatusCode,
) -> Response {
    let Some(workspace) = state.workspace().cloned() else {
        return no_workspace(staff);
    };
    let scope = staff.owner_scope().map(str::to_owned);
    let loaded = blocking(state, staff.lang, move |store, now| {
        load_customer(&workspace, store, &id, scope.as_deref(), now).map(|data| (data, now))
    })
    .await;
    let (data, now) = match loaded {
        Ok((Some(data), now)) => (data, now),
        Ok((None, _)) => return not_found(staff),
        Err(response) => return response,
    };
    let texts = texts(staff.lang);
    let csrf = staff.csrf_field();
    let rights = PageRights {
        may_change: staff.may_write(),
        may_forget: staff.role == super::Role::Admin,
        csrf_field: &csrf,
    };
    let name = data.export["customer"]["name"]
        .as_str()
        .filter(|name| !name.is_empty())
        .map_or_else(|| data.id.clone(), |name| format!("{name} ({})", data.id));
    frame::page_with_status(
        staff,
        status,
        Nav::Customers,
        &format!("{}: {name}", texts.customer_title),
        &render_customer(texts, &data, &rights, notice, now),
    )
}

/// `GET /staff/customers/{id}`.
async fn customer_page(
    State(state): State<Arc<AppState>>,
    staff: Staff,
    UrlPath(id): UrlPath<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let notice = done_notice(texts(staff.lang), query.as_deref());
    show(&state, &staff, id, notice, StatusCode::OK).await
}

/// The fields of a posted form.
fn field(body: &[u8], name: &str) -> String {
    form_urlencoded::parse(body)
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.trim().to_owned())
        .unwrap_or_default()
}

/// An optional `YYYY-MM-DD` field in the workspace's time zone: `Ok(None)` when empty.
fn date_field(workspace: &Workspace, text: &str) -> Result<Option<i64>, ()> {
    if text.is_empty() {
        return Ok(None);
    }
    if chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").is_err() {
        return Err(());
    }
    parse_time(text, workspace.config().timezone)
        .map(Some)
        .map_err(|_| ())
}

/// Answers a change: back to the page, the page with its problem, or 404.
async fn answer(
    state: &Arc<AppState>,
    staff: &Staff,
    id: String,
    outcome: Result<Outcome, Response>,
) -> Response {
    match outcome {
        Ok(Outcome::Done(key)) => {
            Redirect::to(&format!("{}?done={key}", customer_href(&id))).into_response()
        }
        Ok(Outcome::Problem(problem)) => {
            show(
                state,
                staff,
                id,
                Some(Notice::Problem(&problem)),
                StatusCode::BAD_REQUEST,
            )
            .await
        }
        Ok(Outcome::NotFound) => not_found(staff),
        Err(response) => response,
    }
}

/// Runs `change` on the customer `id` for `staff` on the blocking pool, once the customer is
/// found in the signed-in manager's scope (another manager's customer is 404, as an unknown
/// id), and answers with the page.
async fn change_in_scope(
    state: Arc<AppState>,
    staff: Staff,
    id: String,
    change: impl FnOnce(&mut Store, i64, &Staff, &str) -> Result<Outcome, StoreError> + Send + 'static,
) -> Response {
    let who = staff.clone();
    let customer = id.clone();
    let outcome = blocking(&state, staff.lang, move |store, now| {
        if !in_scope(store, &customer, who.owner_scope())? {
            return Ok(Outcome::NotFound);
        }
        change(store, now, &who, &customer)
    })
    .await;
    answer(&state, &staff, id, outcome).await
}

/// `POST /staff/customers/{id}/pin`: `tier`, `reason`, `until` (optional date). Admins and
/// the owning manager; recorded in the audit (the tier, not the reason's text).
async fn pin(
    State(state): State<Arc<AppState>>,
    staff: Staff,
    UrlPath(id): UrlPath<String>,
    body: Bytes,
) -> Response {
    if let Err(refused) = staff.require_write() {
        return refused;
    }
    let Some(workspace) = state.workspace().cloned() else {
        return no_workspace(&staff);
    };
    let texts = texts(staff.lang);
    let (tier, reason, until) = (
        field(&body, "tier"),
        field(&body, "reason"),
        field(&body, "until"),
    );
    change_in_scope(state, staff, id, move |store, now, who, customer| {
        let tiers = match rule_tiers(&workspace) {
            Ok(tiers) => tiers,
            Err(problem) => {
                return Ok(Outcome::Problem(format!(
                    "{} {problem}",
                    texts.rules_unreadable
                )));
            }
        };
        if !tiers.contains(&tier) {
            return Ok(Outcome::Problem(format!(
                "{} ({})",
                texts.unknown_tier,
                tiers.join(", ")
            )));
        }
        let Ok(until) = date_field(&workspace, &until) else {
            return Ok(Outcome::Problem(texts.bad_date.to_owned()));
        };
        // The change and its audit row commit together.
        let entry = who.audit_entry(
            "customer.pin",
            &format!("customer:{customer}"),
            Some(format!("tier={tier}")),
        );
        match store.audited(entry, now, |store| {
            store.pin_tier(customer, &tier, &reason, &who.login, until, now)
        }) {
            Ok(_) => {}
            Err(StoreError::InvalidPin { problem, .. }) => {
                let timezone = workspace.config().timezone;
                return Ok(Outcome::Problem(pin_problem(&problem, who.lang, timezone)));
            }
            Err(err) => return Err(err),
        }
        Ok(Outcome::Done("pin"))
    })
    .await
}

/// `POST /staff/customers/{id}/unpin`.
async fn unpin(
    State(state): State<Arc<AppState>>,
    staff: Staff,
    UrlPath(id): UrlPath<String>,
) -> Response {
    if let Err(refused) = staff.require_write() {
        return refused;
    }
    let texts = texts(staff.lang);
    change_in_scope(state, staff, id, move |store, now, who, customer| {
        let active = store
            .pins_of(customer)?
            .into_iter()
            .find(|pin| pin.is_active(now));
        let Some(active) = active else {
            return Ok(Outcome::Problem(texts.no_active_pin.to_owned()));
        };
        // The change and its audit row commit together.
        let entry = who.audit_entry(
            "customer.unpin",
            &format!("customer:{customer}"),
            Some(format!("tier={}", active.tier)),
        );
        if store
            .audited(entry, now, |store| store.unpin_tier(customer, now))?
            .is_none()
        {
            return Ok(Outcome::Problem(texts.no_active_pin.to_owned()));
        }
        Ok(Outcome::Done("unpin"))
    })
    .await
}

/// `POST /staff/customers/{id}/contact`: `kind` (call or visit), `date` (optional), `note`.
async fn log_contact(
    State(state): State<Arc<AppState>>,
    staff: Staff,
    UrlPath(id): UrlPath<String>,
    body: Bytes,
) -> Response {
    if let Err(refused) = staff.require_write() {
        return refused;
    }
    let Some(workspace) = state.workspace().cloned() else {
        return no_workspace(&staff);
    };
    let texts = texts(staff.lang);
    let (kind, date, note) = (
        field(&body, "kind"),
        field(&body, "date"),
        field(&body, "note"),
    );
    change_in_scope(state, staff, id, move |store, now, who, customer| {
        if !matches!(kind.as_str(), "call" | "visit") {
            return Ok(Outcome::Problem(format!(
                "{}: {} / {}",
                texts.kind, texts.call, texts.visit
            )));
        }
        let Ok(at) = date_field(&workspace, &date) else {
            return Ok(Outcome::Problem(texts.bad_date.to_owned()));
        };
        let by = who.manager_id.clone().unwrap_or_else(|| who.login.clone());
        // The change and its audit row commit together.
        let entry = who.audit_entry(
            "customer.contact",
            &format!("customer:{customer}"),
            Some(format!("kind={kind}")),
        );
        let logged = store.audited(entry, now, |store| {
            store.log_contact(&LoggedContact {
                customer,
                kind: &kind,
                occurred_at: at.unwrap_or(now),
                by: &by,
                note: &note,
            })
        });
        match logged {
            Ok(_) => {}
            Err(StoreError::InvalidContact { problem, .. }) => {
                return Ok(Outcome::Problem(contact_problem(problem, who.lang)));
            }
            Err(err) => return Err(err),
        }
        Ok(Outcome::Done("contact"))
    })
    .await
}

/// The confirmation page of forgetting, answered with `status`.
async fn confirm_forget(
    state: &Arc<AppState>,
    staff: &Staff,
    id: String,
    problem: Option<&str>,
    status: StatusCode,
) -> Response {
    let customer = id.clone();
    let exists = blocking(state, staff.lang, move |store, _| store.customer(&customer)).await;
    match exists {
        Ok(Some(_)) => {}
        Ok(None) => return not_found(staff),
        Err(response) => return response,
    }
    let texts = texts(staff.lang);
    frame::page_with_status(
        staff,
        status,
        Nav::Customers,
        &format!("{}: {id}", texts.forget),
        &render_forget(texts, &id, &staff.csrf_field(), problem),
    )
}

/// `GET /staff/customers/{id}/forget`: the confirmation step (admins only).
async fn forget_page(
    State(state): State<Arc<AppState>>,
    staff: Staff,
    UrlPath(id): UrlPath<String>,
) -> Response {
    if let Err(refused) = staff.require_admin() {
        return refused;
    }
    confirm_forget(&state, &staff, id, None, StatusCode::OK).await
}

/// `POST /staff/customers/{id}/forget`: `confirm` must be the customer's id; then the same
/// forget as `tiercare customer forget` (admins only; audited).
async fn forget(
    State(state): State<Arc<AppState>>,
    staff: Staff,
    UrlPath(id): UrlPath<String>,
    body: Bytes,
) -> Response {
    if let Err(refused) = staff.require_admin() {
        return refused;
    }
    let texts = texts(staff.lang);
    if field(&body, "confirm") != id {
        return confirm_forget(
            &state,
            &staff,
            id,
            Some(texts.forget_mismatch),
            StatusCode::BAD_REQUEST,
        )
        .await;
    }
    let who = staff.clone();
    let customer = id.clone();
    let outcome = blocking(&state, staff.lang, move |store, now| {
        // The change and its audit row commit together (what was cancelled is in the
        // privacy request's row).
        let entry = who.audit_entry("customer.forget", &format!("customer:{customer}"), None);
        match store.audited(entry, now, |store| {
            store.forget_customer(&customer, &who.login, now)
        }) {
            Ok(_) => {}
            Err(StoreError::UnknownCustomer { .. }) => return Ok(Outcome::NotFound),
            Err(err) => return Err(err),
        }
        Ok::<_, StoreError>(Outcome::Done("forget"))
    })
    .await;
    answer(&state, &staff, id, outcome).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::staff::customer_texts::texts;
    use serde_json::json;
    use tiercare_scheduler::http_config::PageLanguage;

    fn data() -> CustomerData {
        CustomerData {
            id: "C<1>".to_owned(),
            export: json!({
                "customer": {"name": "<b>Ada</b>", "email": "ada@example.com", "owner": "m1",
                             "consent_email": 1, "attributes": {"plan": "<i>gold</i>"}},
                "tier": {"tier": "A", "since": 1_700_000_000},
                "segments": [],
                "orders": [{"ordered_at": 1_700_000_000, "external_id": "O-1", "amount": 12.5,
                            "item_count": 2}],
                "interactions": [{"occurred_at": 1_700_000_000, "kind": "call",
                                  "by_manager": "m1", "note": "<script>alert(1)</script>"}],
                "complaints": [], "feedback": [], "emails": [], "tasks": [],
                "tier_history": [], "pins": [],
            }),
            explained: Err("rules/tiers.yaml:1:1: <broken>".to_owned()),
            tiers: vec!["A".to_owned(), "B".to_owned()],
            timezone: chrono_tz::Asia::Shanghai,
        }
    }

    #[test]
    fn times_are_written_on_the_workspace_clock() {
        let rights = PageRights {
            may_change: false,
            may_forget: false,
            csrf_field: "",
        };
        let html = render_customer(texts(PageLanguage::English), &data(), &rights, None, 0);
        // 1,700,000,000 is 2023-11-14 22:13 UTC: 06:13 the next morning in Shanghai.
        assert!(html.contains("2023-11-15 06:13 Asia/Shanghai"), "{html}");
        assert!(!html.contains("22:13 UTC"), "{html}");
    }

    #[test]
    fn customer_data_is_escaped_and_forms_show_only_to_those_who_may_use_them() {
        let data = data();
        let reader = PageRights {
            may_change: false,
            may_forget: false,
            csrf_field: "",
        };
        let html = render_customer(texts(PageLanguage::English), &data, &reader, None, 0);
        for raw in ["<b>Ada", "<script>", "<i>gold", "<broken>"] {
            assert!(!html.contains(raw), "{raw} in {html}");
        }
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(!html.contains("<form"), "{html}");
        let owner = PageRights {
            may_change: true,
            may_forget: false,
            csrf_field: "<input type=\"hidden\" name=\"_csrf\" value=\"t\">",
        };
        let html = render_customer(texts(PageLanguage::English), &data, &owner, None, 0);
        assert!(
            html.contains("action=\"/staff/customers/C%3C1%3E/pin\""),
            "{html}"
        );
        assert!(html.contains("action=\"/staff/customers/C%3C1%3E/contact\""));
        assert_eq!(html.matches("name=\"_csrf\"").count(), 2, "{html}");
        assert!(!html.contains("/forget"));
        for id in [
            "pin-tier",
            "pin-reason",
            "pin-until",
            "contact-kind",
            "contact-note",
        ] {
            assert!(html.contains(&format!("<label for=\"{id}\">")), "{id}");
        }
        let admin = PageRights {
            may_forget: true,
            ..owner
        };
        let chinese = render_customer(
            texts(PageLanguage::SimplifiedChinese),
            &data,
            &admin,
            None,
            0,
        );
        assert!(chinese.contains("/staff/customers/C%3C1%3E/forget"));
        assert!(chinese.contains("等级及原因"));
    }
}
