//! The staff plan: `/staff/plan?days=N&from=DATE`, the coming days (7 by default, at most 31)
//! as `tiercare plan` computes them (the same scheduler call, which never writes), per day in
//! the workspace's zone with the actions of each rule, per rule, and the capacity warnings. A
//! manager sees the part of their own customers (`tiercare_scheduler::plan::plan_of`).

use std::fmt::Write as _;
use std::sync::Arc;

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use tiercare_scheduler::html::escape;
use tiercare_scheduler::http_config::PageLanguage;
use tiercare_scheduler::plan::{EVENT_LOOKBACK, PlanOptions, PlanSummary, plan_of};
use tiercare_scheduler::time::{local_time, parse_time};

use crate::AppState;
use crate::staff::reading::{read_rules, with_reader};
use crate::staff::{Nav, Staff, frame};

/// Days planned when the page is not told.
pub const DEFAULT_DAYS: u32 = 7;

/// The most days the page plans.
pub const MAX_DAYS: u32 = 31;

/// The texts of the plan page, in one language.
pub struct PlanTexts {
    /// The page title.
    pub title: &'static str,
    /// The form's fields: days, from; and its button.
    pub form: (&'static str, &'static str, &'static str),
    /// The summary: `{days}`, `{from}`, `{customers}`, `{version}`.
    pub summary: &'static str,
    /// A manager's part.
    pub yours: &'static str,
    /// Totals: `{emails}`, `{sms}`, `{tasks}`, `{other}`.
    pub totals: &'static str,
    /// The days heading and columns: day, e-mails, SMS, tasks, other, per rule.
    pub days: (&'static str, [&'static str; 6]),
    /// The rules heading and columns: rule, what it does, planned, e.g., skipped.
    pub rules: (&'static str, [&'static str; 5]),
    /// Nothing planned.
    pub nothing: &'static str,
    /// Before the rules with nothing planned.
    pub idle: &'static str,
    /// The capacity warnings' heading.
    pub warnings: &'static str,
    /// Rule failures: `{rule}`, `{n}`, `{customer}`, `{message}`.
    pub failure: &'static str,
    /// Nothing is recorded by this page.
    pub preview_note: &'static str,
}

const ENGLISH: PlanTexts = PlanTexts {
    title: "Plan",
    form: ("Days", "From (YYYY-MM-DD, empty: now)", "Show"),
    summary: "The next {days} days from {from} for {customers} customers · rules {version}",
    yours: "Your customers only.",
    totals: "{emails} e-mails · {sms} SMS · {tasks} tasks · {other} other actions",
    days: (
        "Per day",
        ["Day", "E-mails", "SMS", "Tasks", "Other", "Per rule"],
    ),
    rules: (
        "Per rule",
        ["Rule", "What it does", "Planned", "For example", "Skipped"],
    ),
    nothing: "Nothing is planned in these days.",
    idle: "Nothing planned by:",
    warnings: "Capacity warnings",
    failure: "Follow-up {rule} failed for {n} customer(s), e.g. {customer}: {message}",
    preview_note: "A preview: nothing is recorded (the daemon records follow-ups when they are due).",
};

const SIMPLIFIED_CHINESE: PlanTexts = PlanTexts {
    title: "计划",
    form: ("天数", "开始日期（YYYY-MM-DD，留空为现在）", "显示"),
    summary: "从 {from} 起未来 {days} 天，{customers} 位客户 · 规则版本 {version}",
    yours: "仅您的客户。",
    totals: "邮件 {emails} 封 · 短信 {sms} 条 · 任务 {tasks} 个 · 其他 {other} 项",
    days: ("按天", ["日期", "邮件", "短信", "任务", "其他", "按规则"]),
    rules: ("按规则", ["规则", "内容", "计划数", "示例", "跳过"]),
    nothing: "这些天没有计划。",
    idle: "以下规则没有计划：",
    warnings: "容量警告",
    failure: "跟进规则 {rule} 对 {n} 位客户失败，例如 {customer}：{message}",
    preview_note: "仅为预览：不会记录任何内容（守护进程在到期时记录跟进）。",
};

/// The plan page's texts in `language`.
pub fn texts(language: PageLanguage) -> &'static PlanTexts {
    match language {
        PageLanguage::English => &ENGLISH,
        PageLanguage::SimplifiedChinese => &SIMPLIFIED_CHINESE,
    }
}

/// The days a request asks for: `DEFAULT_DAYS` when absent or not a number, clamped to
/// `1..=MAX_DAYS`.
pub fn days_of(asked: Option<&str>) -> u32 {
    asked
        .and_then(|text| text.trim().parse::<u32>().ok())
        .unwrap_or(DEFAULT_DAYS)
        .clamp(1, MAX_DAYS)
}

fn joined(map: &std::collections::BTreeMap<String, u64>) -> String {
    map.iter()
        .map(|(name, n)| format!("{name} {n}"))
        .collect::<Vec<_>>()
        .join(" · ")
}

/// The form choosing the days (a GET: nothing changes).
pub fn render_form(texts: &PlanTexts, days: u32, from: &str) -> String {
    let (days_label, from_label, button) = texts.form;
    format!(
        "<form method=\"get\" action=\"/staff/plan\" class=\"inline\">\
         <label for=\"plan-days\">{}</label>\
         <input id=\"plan-days\" name=\"days\" type=\"number\" min=\"1\" max=\"{MAX_DAYS}\" \
         value=\"{days}\">\
         <label for=\"plan-from\">{}</label>\
         <input id=\"plan-from\" name=\"from\" type=\"text\" value=\"{}\" \
         pattern=\"\\d{{4}}-\\d{{2}}-\\d{{2}}.*\">\
         <button type=\"submit\">{}</button></form>\n",
        escape(days_label),
        escape(from_label),
        escape(from),
        escape(button)
    )
}

/// The plan of `days` days in `timezone`; `scoped` when it is a manager's part.
pub fn render_plan(
    texts: &PlanTexts,
    summary: &PlanSummary,
    days: u32,
    timezone: chrono_tz::Tz,
    scoped: bool,
) -> String {
    let mut html = String::new();
    let heading = texts
        .summary
        .replace("{days}", &days.to_string())
        .replace("{from}", &local_time(summary.from, timezone))
        .replace("{customers}", &summary.customers.to_string())
        .replace("{version}", &summary.ruleset_version);
    let _ = writeln!(html, "<h2>{}</h2>", escape(&heading));
    if scoped {
        let _ = writeln!(html, "<p>{}</p>", escape(texts.yours));
    }
    let totals = texts
        .totals
        .replace("{emails}", &summary.emails.to_string())
        .replace("{sms}", &summary.sms.to_string())
        .replace("{tasks}", &summary.tasks.to_string())
        .replace("{other}", &summary.other.to_string());
    let _ = writeln!(
        html,
        "<p class=\"totals\" data-emails=\"{}\" data-sms=\"{}\" data-tasks=\"{}\" \
         data-other=\"{}\">{}</p>",
        summary.emails,
        summary.sms,
        summary.tasks,
        summary.other,
        escape(&totals)
    );
    if !summary.capacity_warnings.is_empty() || !summary.rule_errors.is_empty() {
        let _ = writeln!(
            html,
            "<h2>{}</h2>\n<ul class=\"warnings\">",
            escape(texts.warnings)
        );
        for warning in &summary.capacity_warnings {
            let _ = writeln!(
                html,
                "<li class=\"error\">{}</li>",
                escape(&warning.message)
            );
        }
        for failure in &summary.rule_errors {
            let text = texts
                .failure
                .replace("{rule}", &failure.rule)
                .replace("{n}", &failure.customers.to_string())
                .replace("{customer}", &failure.example_customer)
                .replace("{message}", &failure.message);
            let _ = writeln!(html, "<li class=\"error\">{}</li>", escape(&text));
        }
        html.push_str("</ul>\n");
    }
    let (heading, columns) = texts.days;
    let _ = writeln!(html, "<h2>{}</h2>", escape(heading));
    if summary.days.is_empty() {
        let _ = writeln!(html, "<p>{}</p>", escape(texts.nothing));
    } else {
        html.push_str(&table_head(&columns));
        for day in &summary.days {
            let _ = writeln!(
                html,
                "<tr data-day=\"{date}\" data-emails=\"{emails}\" data-sms=\"{sms}\" \
                 data-tasks=\"{tasks}\" data-other=\"{other}\"><th scope=\"row\">{date}</th>\
                 <td data-label=\"{c1}\" class=\"number\">{emails}</td>\
                 <td data-label=\"{c2}\" class=\"number\">{sms}</td>\
                 <td data-label=\"{c3}\" class=\"number\">{tasks}</td>\
                 <td data-label=\"{c4}\" class=\"number\">{other}</td>\
                 <td data-label=\"{c5}\">{}</td></tr>",
                escape(&joined(&day.rules)),
                date = escape(&day.date),
                emails = day.emails,
                sms = day.sms,
                tasks = day.tasks,
                other = day.other,
                c1 = escape(columns[1]),
                c2 = escape(columns[2]),
                c3 = escape(columns[3]),
                c4 = escape(columns[4]),
                c5 = escape(columns[5]),
            );
        }
        html.push_str("</tbody></table></div>\n");
    }
    let (heading, columns) = texts.rules;
    let _ = writeln!(html, "<h2>{}</h2>", escape(heading));
    html.push_str(&table_head(&columns));
    let (busy, idle): (Vec<_>, Vec<_>) = summary
        .rules
        .iter()
        .partition(|rule| rule.planned > 0 || !rule.skipped.is_empty());
    for rule in busy {
        let name = match &rule.label {
            Some(label) => format!("{} ({label})", rule.rule),
            None => rule.rule.clone(),
        };
        let _ = writeln!(
            html,
            "<tr data-rule=\"{}\"><th scope=\"row\">{}</th><td data-label=\"{c1}\">{}</td>\
             <td data-label=\"{c2}\" class=\"number\">{}</td><td data-label=\"{c3}\">{}</td>\
             <td data-label=\"{c4}\">{}</td></tr>",
            escape(&rule.rule),
            escape(&name),
            escape(&rule.action),
            rule.planned,
            escape(&rule.sample_customers.join(", ")),
            escape(&joined(&rule.skipped)),
            c1 = escape(columns[1]),
            c2 = escape(columns[2]),
            c3 = escape(columns[3]),
            c4 = escape(columns[4]),
        );
    }
    html.push_str("</tbody></table></div>\n");
    if !idle.is_empty() {
        let names: Vec<&str> = idle.iter().map(|rule| rule.rule.as_str()).collect();
        let _ = writeln!(
            html,
            "<p class=\"idle-rules\">{} {}</p>",
            escape(texts.idle),
            escape(&names.join(", "))
        );
    }
    let _ = writeln!(
        html,
        "<p class=\"muted\">{}</p>",
        escape(texts.preview_note)
    );
    html
}

fn table_head(columns: &[&str]) -> String {
    let mut html = String::from("<div class=\"table\"><table class=\"stack\">\n<thead><tr>");
    for column in columns {
        let _ = write!(html, "<th scope=\"col\">{}</th>", escape(column));
    }
    html.push_str("</tr></thead>\n<tbody>\n");
    html
}

/// The plan's route.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/staff/plan", get(plan_page))
}

const DAY: i64 = 86_400;

/// What the plan page found.
enum Planned {
    /// The plan.
    Plan(Box<PlanSummary>, chrono_tz::Tz),
    /// The rules do not compile: their problems.
    Broken(Vec<String>),
    /// `from` is not a time: why.
    BadFrom(String),
}

/// `GET /staff/plan?days=N&from=DATE`.
async fn plan_page(
    State(state): State<Arc<AppState>>,
    staff: Staff,
    RawQuery(query): RawQuery,
) -> Response {
    let texts = texts(staff.lang);
    let param = |key: &str| {
        query.as_deref().and_then(|q| {
            form_urlencoded::parse(q.as_bytes())
                .find(|(k, _)| k == key)
                .map(|(_, value)| value.trim().to_owned())
                .filter(|value| !value.is_empty())
        })
    };
    let days = days_of(param("days").as_deref());
    let from_text = param("from");
    let owner = staff.owner_scope().map(str::to_owned);
    let asked = from_text.clone();
    let planned = with_reader(&state, &staff, Nav::Plan, move |workspace, store, now| {
        let timezone = workspace.config().timezone;
        let from = match asked.as_deref().map(|text| parse_time(text, timezone)) {
            None => now,
            Some(Ok(from)) => from,
            Some(Err(err)) => return Ok(Planned::BadFrom(err.to_string())),
        };
        let rules = match read_rules(workspace)?.compiled {
            Ok(rules) => rules,
            Err(problems) => return Ok(Planned::Broken(problems)),
        };
        let options = PlanOptions {
            from,
            to: from + i64::from(days) * DAY,
            events_since: from - EVENT_LOOKBACK,
            timezone,
        };
        let summary = plan_of(store, &rules, options, owner.as_deref())?;
        Ok(Planned::Plan(Box::new(summary), timezone))
    })
    .await;
    let mut body = render_form(texts, days, from_text.as_deref().unwrap_or(""));
    let status = match planned {
        Ok(Planned::Plan(summary, timezone)) => {
            body.push_str(&render_plan(
                texts,
                &summary,
                days,
                timezone,
                staff.owner_scope().is_some(),
            ));
            StatusCode::OK
        }
        Ok(Planned::Broken(problems)) => {
            let _ = writeln!(
                body,
                "<p class=\"error\">{}</p>\n<ul>",
                escape(staff.t(
                    "The rules do not compile, so nothing can be planned (see Rules):",
                    "规则无法编译，因此无法计划（见“规则”页）："
                ))
            );
            for problem in problems {
                let _ = writeln!(body, "<li><code>{}</code></li>", escape(&problem));
            }
            body.push_str("</ul>\n");
            StatusCode::OK
        }
        Ok(Planned::BadFrom(why)) => {
            let _ = writeln!(body, "<p class=\"error\">{}</p>", escape(&why));
            StatusCode::BAD_REQUEST
        }
        Err(response) => return response,
    };
    frame::page_with_status(&staff, status, Nav::Plan, texts.title, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_default_to_a_week_and_stay_within_a_month() {
        assert_eq!(days_of(None), 7);
        assert_eq!(days_of(Some("14")), 14);
        assert_eq!(days_of(Some("400")), 31);
        assert_eq!(days_of(Some("0")), 1);
        assert_eq!(days_of(Some("many")), 7);
    }
}
