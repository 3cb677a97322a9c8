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

use serde_json::Value;
use tiercare_scheduler::assess::{AssessError, CustomerExplanation, RuleSource, explain};
use tiercare_scheduler::html::escape;
use tiercare_scheduler::time::format_time;
use tiercare_scheduler::workspace::Workspace;
use tiercare_store::{Store, StoreError};

use super::customer_texts::CustomerTexts;
use super::customers::customer_href;

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

/// Reads the customer `id` and explains their tier at `now`; `None` when there is no such
/// customer.
///
/// # Errors
/// The database refused.
pub fn load_customer(
    workspace: &Workspace,
    store: &Store,
    id: &str,
    now: i64,
) -> Result<Option<CustomerData>, StoreError> {
    let export = match store.export_customer(id) {
        Ok(export) => export,
        Err(StoreError::UnknownCustomer { .. }) => return Ok(None),
        Err(err) => return Err(err),
    };
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

fn time(value: &Value, key: &str) -> String {
    value
        .get(key)
        .and_then(Value::as_i64)
        .map(format_time)
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
        "<div class=\"table-scroll\"><table>\n<caption>{}</caption>\n<thead><tr>",
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
                "<p class=\"problem\" role=\"alert\">{}</p>",
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
            let _ = writeln!(
                html,
                "<pre class=\"explain\">{}</pre>",
                escape(explained.explanation.render().trim_end())
            );
        }
        Err(problem) => {
            let _ = writeln!(
                html,
                "<p class=\"problem\">{} {}</p>",
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
            "<form class=\"action\" method=\"post\" action=\"{href}/pin\">\n{csrf}\
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
                "<form class=\"action\" method=\"post\" action=\"{href}/unpin\">{csrf}\
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
            "<form class=\"action\" method=\"post\" action=\"{href}/contact\">\n{csrf}\
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
            "<p class=\"problem\" role=\"alert\">{}</p>",
            escape(problem)
        );
    }
    let _ = writeln!(
        html,
        "<p>{lead}</p>\n<form method=\"post\" action=\"{href}/forget\">\n{csrf_field}\
         <div class=\"field\"><label for=\"forget-confirm\">{confirm}</label>\
         <input id=\"forget-confirm\" name=\"confirm\" required autocomplete=\"off\"></div>\n\
         <button type=\"submit\" class=\"danger\">{forget}</button>\n</form>",
        lead = escape(texts.forget_lead),
        confirm = escape(texts.forget_confirm),
        forget = escape(texts.forget),
    );
    html
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
        }
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
