//! `/staff/`: the dashboard. The report's headline figures
//! ([`tiercare_scheduler::report::headline`]: customers per tier, the moves of the latest
//! assessment, tasks open and overdue, e-mails per state) and today's work: the signed-in
//! manager's tasks due by the end of the coming 24 hours, overdue first (everyone's, for
//! admins and viewers).

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::response::{Redirect, Response};
use axum::routing::get;
use tiercare_scheduler::report::{Headline, headline};
use tiercare_store::{OutboxState, StoreError, TaskFilter, TaskView};

use crate::AppState;
use crate::staff::frame::{self, Nav, escape};
use crate::staff::tasks::{local_minutes, task_table};
use crate::staff::{Staff, blocking};

/// How many of today's tasks the dashboard lists (the tasks page has them all).
const TODAY_LIMIT: u64 = 20;

/// The dashboard's routes.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/staff/", get(dashboard))
        .route("/staff", get(|| async { Redirect::permanent("/staff/") }))
}

fn figure(label: &str, value: impl std::fmt::Display, class: &str) -> String {
    format!(
        "<li{class}><span class=\"value\">{value}</span>{}</li>",
        escape(label),
        class = if class.is_empty() {
            String::new()
        } else {
            format!(" class=\"{class}\"")
        }
    )
}

fn state_label(staff: &Staff, state: OutboxState) -> &'static str {
    match state {
        OutboxState::Queued => staff.t("queued", "排队中"),
        OutboxState::Claimed => staff.t("sending", "发送中"),
        OutboxState::Sent => staff.t("sent", "已发送"),
        OutboxState::Deferred => staff.t("deferred", "已延后"),
        OutboxState::Failed => staff.t("failed", "失败"),
        OutboxState::Unknown => staff.t("unknown", "未知"),
        OutboxState::Cancelled => staff.t("cancelled", "已取消"),
        OutboxState::Suppressed => staff.t("suppressed", "已屏蔽"),
    }
}

fn figures_html(staff: &Staff, figures: &Headline, tz: chrono_tz::Tz) -> String {
    let mut html = String::new();
    let (open, overdue, _) = figures.task_totals();
    html.push_str(&format!(
        "<h2>{}</h2>\n<ul class=\"figures\">{}{}</ul>\n",
        escape(staff.t("Tasks", "任务")),
        figure(staff.t("open", "待办"), open, ""),
        figure(
            staff.t("overdue", "已逾期"),
            overdue,
            if overdue > 0 { "overdue" } else { "" }
        ),
    ));
    html.push_str(&format!(
        "<h2>{}</h2>\n",
        escape(staff.t("Customers per tier", "各等级客户数"))
    ));
    match &figures.assessment {
        None => html.push_str(&frame::paragraph(staff.t(
            "No assessment yet: run `tiercare assess`.",
            "尚无评估：请运行 `tiercare assess`。",
        ))),
        Some(assessment) => {
            html.push_str("<ul class=\"figures\">");
            for (tier, customers) in &figures.tiers {
                html.push_str(&figure(tier, customers, ""));
            }
            html.push_str("</ul>\n");
            html.push_str(&format!(
                "<p class=\"muted\">{} {} · {} {}</p>\n",
                escape(staff.t("Latest assessment:", "最近评估：")),
                escape(&local_minutes(assessment.at, tz)),
                escape(staff.t("rules", "规则版本")),
                escape(&assessment.ruleset_version),
            ));
            html.push_str(&format!(
                "<h2>{}</h2>\n",
                escape(staff.t("Moves of the latest assessment", "最近评估的等级变动"))
            ));
            if figures.moves.is_empty() {
                html.push_str(&frame::paragraph(
                    staff.t("No customer changed tier.", "没有客户变动等级。"),
                ));
            } else {
                let (from, to, customers) = (
                    staff.t("From", "原等级"),
                    staff.t("To", "新等级"),
                    staff.t("Customers", "客户数"),
                );
                html.push_str(&format!(
                    "<div class=\"table\"><table class=\"stack\"><thead><tr><th scope=\"col\">{}</th>\
                     <th scope=\"col\">{}</th><th scope=\"col\" class=\"number\">{}</th></tr></thead><tbody>\n",
                    escape(from),
                    escape(to),
                    escape(customers)
                ));
                for change in &figures.moves {
                    html.push_str(&format!(
                        "<tr><td data-label=\"{}\">{}</td><td data-label=\"{}\">{}</td>\
                         <td data-label=\"{}\" class=\"number\">{}</td></tr>\n",
                        escape(from),
                        escape(
                            change
                                .from_tier
                                .as_deref()
                                .unwrap_or(staff.t("(new)", "（新）"))
                        ),
                        escape(to),
                        escape(&change.to_tier),
                        escape(customers),
                        change.customers
                    ));
                }
                html.push_str("</tbody></table></div>\n");
            }
        }
    }
    html.push_str(&state_figures(
        staff,
        staff.t("E-mails", "邮件"),
        &figures.emails,
    ));
    // SMS only where the workspace has any (most send none).
    if figures.sms.iter().any(|(_, count)| *count > 0) {
        html.push_str(&state_figures(staff, staff.t("SMS", "短信"), &figures.sms));
    }
    html
}

/// A channel's messages per outbox state, under the heading `title`.
fn state_figures(staff: &Staff, title: &str, counts: &[(OutboxState, u64)]) -> String {
    let mut html = format!("<h2>{}</h2>\n<ul class=\"figures\">", escape(title));
    for (state, count) in counts {
        html.push_str(&figure(state_label(staff, *state), count, ""));
    }
    html.push_str("</ul>\n");
    html
}

/// `GET /staff/`.
async fn dashboard(State(state): State<Arc<AppState>>, staff: Staff) -> Response {
    let scope = staff.owner_scope().map(str::to_owned);
    let tz = state.timezone();
    let found = blocking(&state, staff.lang, move |store, now| {
        let figures = headline(store, now, scope.as_deref())?;
        let today: Vec<_> = store
            .tasks(
                &TaskFilter {
                    assignee: scope,
                    view: TaskView::Actionable,
                    limit: Some(TODAY_LIMIT),
                    ..TaskFilter::default()
                },
                now,
            )?
            .into_iter()
            .filter(|task| task.due < now + 86_400)
            .collect();
        Ok::<_, StoreError>((figures, today, store.managers()?, now))
    })
    .await;
    let (figures, today, managers, now) = match found {
        Ok(found) => found,
        Err(response) => return response,
    };
    let mut body = format!("<h2>{}</h2>\n", escape(staff.t("Today's work", "今日工作")));
    body.push_str(&task_table(&staff, &today, &managers, tz, now));
    body.push_str(&format!(
        "<p><a href=\"/staff/tasks\">{}</a></p>\n",
        escape(staff.t("All tasks", "全部任务"))
    ));
    body.push_str(&figures_html(&staff, &figures, tz));
    frame::page(&staff, Nav::Dashboard, staff.t("Dashboard", "概览"), &body)
}
