//! `customer show|export|forget`: a customer's data, for people and for data-rights requests.

use std::path::Path;
use std::process::ExitCode;

use serde_json::Value;
use tiercare_scheduler::assess::format_time;
use tiercare_scheduler::workspace::Workspace;

use crate::cli::CustomerCommand;
use crate::commands::tiers::now;
use crate::output::{Output, money};

/// How many recent orders, contacts and emails `show` lists.
const RECENT: usize = 5;

pub fn customer(
    command: CustomerCommand,
    workspace_dir: &Path,
    out: &Output,
) -> anyhow::Result<ExitCode> {
    let workspace = Workspace::open(workspace_dir)?;
    match command {
        CustomerCommand::Export { id } => {
            let store = workspace.open_store()?;
            out.json(&store.export_customer(&id)?)?;
        }
        CustomerCommand::Show { id, json } => {
            let store = workspace.open_store()?;
            let export = store.export_customer(&id)?;
            if json {
                out.json(&export)?;
            } else {
                show(&id, &export, out);
            }
        }
        CustomerCommand::Forget { id, by, json } => {
            let by = by
                .or_else(|| std::env::var("USER").ok())
                .unwrap_or_else(|| "unknown".to_owned());
            let mut store = workspace.open_store_for_writing()?;
            let report = store.forget_customer(&id, &by, now())?;
            if json {
                out.json(&report)?;
            } else if report.already_forgotten {
                out.line(&format!(
                    "customer {id} holds no personal data: nothing to erase"
                ));
            } else {
                out.heading(&format!("customer {id} forgotten"));
                out.line(&format!(
                    "  profile erased: {}\n  notes, subjects and comments erased: {}\n  \
                     task titles, notes and pin reasons erased: {}\n  \
                     pending emails cancelled: {}\n  emails erased: {}\n  \
                     addresses added to the suppression list: {}\n  \
                     other texts quoting the customer erased: {}",
                    if report.profile_erased { "yes" } else { "no" },
                    report.free_texts_erased,
                    report.tasks_erased,
                    report.emails_cancelled,
                    report.emails_erased,
                    report.addresses_suppressed,
                    report.quotes_erased,
                ));
            }
            if !report.wal_truncated {
                out.warn(
                    "another process was reading the database, so earlier versions of the \
                     erased pages may stay in its WAL (tiercare.db-wal) until its next \
                     checkpoint: run this command again when the daemon is idle",
                );
            }
            if report.emails_in_flight > 0 {
                out.warn(&format!(
                    "{} email(s) to this customer were being sent and were left alone: \
                     run `tiercare customer forget {id}` again once they are done",
                    report.emails_in_flight
                ));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
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

/// The last `RECENT` items of a list ordered oldest first, newest first.
fn recent(items: &[Value]) -> impl Iterator<Item = &Value> {
    items.iter().rev().take(RECENT)
}

fn show(id: &str, export: &Value, out: &Output) {
    let customer = &export["customer"];
    let or_dash = |s: &str| {
        if s.is_empty() {
            "-".to_owned()
        } else {
            s.to_owned()
        }
    };
    out.heading(&format!("customer {id}"));
    for (label, key) in [
        ("name", "name"),
        ("email", "email"),
        ("phone", "phone"),
        ("birthday", "birthday"),
        ("region", "region"),
        ("owner", "owner"),
        ("time zone", "timezone"),
    ] {
        out.line(&format!("  {label:<10} {}", or_dash(text(customer, key))));
    }
    let consents: Vec<&str> = [
        ("consent_email", "email"),
        ("consent_sms", "sms"),
        ("consent_phone", "phone"),
    ]
    .into_iter()
    .filter(|(key, _)| customer.get(*key).and_then(Value::as_i64) == Some(1))
    .map(|(_, name)| name)
    .collect();
    out.line(&format!(
        "  {:<10} {}",
        "consent",
        if consents.is_empty() {
            "none".to_owned()
        } else {
            consents.join(", ")
        }
    ));
    if export["email_suppressed"].as_bool() == Some(true) {
        out.line("  the email address is on the suppression list: no email is sent to it");
    }
    if let Some(Value::Object(attributes)) = customer.get("attributes")
        && !attributes.is_empty()
    {
        let shown: Vec<String> = attributes.iter().map(|(k, v)| format!("{k}={v}")).collect();
        out.line(&format!("  {:<10} {}", "attributes", shown.join(", ")));
    }
    let tier = &export["tier"];
    out.heading("tier");
    if tier.is_null() {
        out.line("  never assessed: run `tiercare assess`");
    } else {
        let segments: Vec<String> = list(export, "segments")
            .iter()
            .map(|s| format!("{}={}", text(s, "segment_set"), text(s, "segment")))
            .collect();
        out.line(&format!(
            "  {} since {}{}",
            text(tier, "tier"),
            time(tier, "since"),
            if segments.is_empty() {
                String::new()
            } else {
                format!("; segments: {}", segments.join(", "))
            }
        ));
    }
    let orders = list(export, "orders");
    let revenue: f64 = orders
        .iter()
        .filter_map(|o| o.get("amount").and_then(Value::as_f64))
        .sum();
    out.heading(&format!("orders: {} for {}", orders.len(), money(revenue)));
    for order in recent(orders) {
        out.line(&format!(
            "  {}  {:<12} {:>12}  {} line(s)",
            time(order, "ordered_at"),
            text(order, "external_id"),
            money(order.get("amount").and_then(Value::as_f64).unwrap_or(0.0)),
            order.get("item_count").and_then(Value::as_i64).unwrap_or(0)
        ));
    }
    let contacts = list(export, "interactions");
    out.heading(&format!("contacts: {}", contacts.len()));
    for contact in recent(contacts) {
        out.line(&format!(
            "  {}  {:<8} {:<10} {}",
            time(contact, "occurred_at"),
            text(contact, "kind"),
            text(contact, "by_manager"),
            text(contact, "note")
        ));
    }
    let complaints = list(export, "complaints");
    let open = complaints
        .iter()
        .filter(|c| c.get("resolved_at").is_none_or(Value::is_null))
        .count();
    out.heading(&format!("complaints: {} ({open} open)", complaints.len()));
    for complaint in recent(complaints) {
        out.line(&format!(
            "  {}  {}{}",
            time(complaint, "opened_at"),
            text(complaint, "subject"),
            if complaint.get("resolved_at").is_none_or(Value::is_null) {
                " (open)"
            } else {
                ""
            }
        ));
    }
    let feedback = list(export, "feedback");
    if !feedback.is_empty() {
        let scores: Vec<f64> = feedback
            .iter()
            .filter_map(|f| f.get("score").and_then(Value::as_f64))
            .collect();
        let mean = scores.iter().sum::<f64>() / scores.len().max(1) as f64;
        out.heading(&format!(
            "feedback: {} (mean score {mean:.1})",
            feedback.len()
        ));
        for answer in recent(feedback) {
            let score = answer.get("score").and_then(Value::as_f64).unwrap_or(0.0);
            out.line(&format!(
                "  {}  {score:>4}  {}",
                time(answer, "given_at"),
                text(answer, "comment")
            ));
        }
    }
    let emails = list(export, "emails");
    out.heading(&format!("emails: {}", emails.len()));
    for email in recent(emails) {
        out.line(&format!(
            "  {}  {:<10} {:<16} {}",
            time(email, "created_at"),
            text(email, "state"),
            text(email, "template"),
            text(email, "subject")
        ));
    }
    let tasks = list(export, "tasks");
    if !tasks.is_empty() {
        out.heading(&format!("tasks: {}", tasks.len()));
        for task in recent(tasks) {
            out.line(&format!(
                "  {}  {:<8} {:<10} {}",
                time(task, "due_at"),
                text(task, "status"),
                text(task, "assignee"),
                text(task, "title")
            ));
        }
    }
    incentives(export, now(), out);
    out.line("");
    out.line(&format!(
        "`tiercare customer export {id}` prints everything held about this customer as JSON"
    ));
}

/// The customer's coupon codes (open, redeemed or expired at `now`) and points balance.
fn incentives(export: &Value, now: i64, out: &Output) {
    let coupons = list(export, "coupons");
    if !coupons.is_empty() {
        out.heading(&format!("coupons: {}", coupons.len()));
        for coupon in recent(coupons) {
            let int = |key: &str| coupon.get(key).and_then(Value::as_i64);
            let state = match (int("redeemed_at"), int("expires_at")) {
                (Some(_), _) => format!("redeemed {}", time(coupon, "redeemed_at")),
                (None, Some(expiry)) if expiry <= now => "expired".to_owned(),
                (None, Some(_)) => format!("open until {}", time(coupon, "expires_at")),
                (None, None) => "open".to_owned(),
            };
            out.line(&format!(
                "  {}  {:<12} {:<20} {state}",
                time(coupon, "issued_at"),
                text(coupon, "pool"),
                text(coupon, "code")
            ));
        }
    }
    let entries: Vec<(i64, f64, Option<i64>)> = list(export, "points")
        .iter()
        .filter_map(|entry| {
            Some((
                entry.get("at")?.as_i64()?,
                entry.get("amount")?.as_f64()?,
                entry.get("expires_at").and_then(Value::as_i64),
            ))
        })
        .collect();
    if !entries.is_empty() {
        out.heading(&format!(
            "points: {} ({} entries)",
            tiercare_store::points_balance(&entries, now),
            entries.len()
        ));
    }
}
