//! `/staff/tasks`: my tasks. Overdue first, then by due time (the store's order, as `tiercare
//! tasks`); done with a note, snoozed to a date, reassigned to an active manager (admins).
//!
//! A manager sees and changes only their own tasks; admins and viewers see everyone's, with a
//! filter by assignee; viewers change nothing. Every change is recorded in `staff_audit`.
//!
//! - `GET /staff/tasks?view=pending|snoozed|done&assignee=ID`
//! - `POST /staff/tasks/{id}/done` (`note`), `/snooze` (`until`: a date), `/reassign`
//!   (`assignee`, admins only).

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use chrono_tz::Tz;
use tiercare_scheduler::time::parse_time;
use tiercare_store::{Manager, StoreError, Task, TaskFilter, TaskStatus, TaskView};

use crate::AppState;
use crate::staff::frame::{self, Nav, escape};
use crate::staff::refusal::refusal;
use crate::staff::{Staff, blocking};

/// The tasks page's routes.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/staff/tasks", get(tasks_page))
        .route("/staff/tasks/{id}/done", post(done))
        .route("/staff/tasks/{id}/snooze", post(snooze))
        .route("/staff/tasks/{id}/reassign", post(reassign))
}

/// The fields of a query string or urlencoded body.
fn fields(text: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(text)
        .map(|(key, value)| (key.into_owned(), value.into_owned()))
        .collect()
}

fn field<'f>(fields: &'f [(String, String)], name: &str) -> Option<&'f str> {
    fields
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
        .filter(|value| !value.trim().is_empty())
}

/// `YYYY-MM-DD HH:MM` in `tz`.
pub fn local_minutes(unix: i64, tz: Tz) -> String {
    chrono::DateTime::from_timestamp(unix, 0).map_or_else(
        || unix.to_string(),
        |t| t.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string(),
    )
}

/// The table of `tasks` at `now`, with their forms when `staff` may change them; `managers`
/// are the reassign choices (admins).
pub fn task_table(staff: &Staff, tasks: &[Task], managers: &[Manager], tz: Tz, now: i64) -> String {
    if tasks.is_empty() {
        return frame::paragraph(staff.t("No tasks here.", "这里没有任务。"));
    }
    let heads = [
        staff.t("Due", "到期"),
        staff.t("Customer", "客户"),
        staff.t("Task", "任务"),
        staff.t("Assignee", "负责人"),
        staff.t("State", "状态"),
        staff.t("Actions", "操作"),
    ];
    let mut html = String::from("<div class=\"table\"><table class=\"stack\">\n<thead><tr>");
    for head in heads {
        html.push_str(&format!("<th scope=\"col\">{}</th>", escape(head)));
    }
    html.push_str("</tr></thead>\n<tbody>\n");
    for task in tasks {
        let state = match task.status {
            TaskStatus::Done => staff.t("done", "已完成"),
            _ if task.overdue => staff.t("overdue", "已逾期"),
            TaskStatus::Snoozed => staff.t("snoozed", "已推迟"),
            TaskStatus::Open => staff.t("open", "待办"),
        };
        let customer = match &task.customer_name {
            Some(name) => format!(
                "{} <span class=\"muted\">{}</span>",
                escape(name),
                escape(&task.customer_id)
            ),
            None => escape(&task.customer_id),
        };
        let note = task
            .note
            .as_deref()
            .map(|note| format!("<br><span class=\"muted\">{}</span>", escape(note)))
            .unwrap_or_default();
        html.push_str(&format!(
            "<tr id=\"task-{id}\"><td data-label=\"{h0}\"{due_class}>{due}</td>\
             <td data-label=\"{h1}\">{customer}</td><td data-label=\"{h2}\">{title}{note}</td>\
             <td data-label=\"{h3}\">{assignee}</td><td data-label=\"{h4}\"{due_class}>{state}</td>\
             <td data-label=\"{h5}\">{actions}</td></tr>\n",
            id = task.id,
            h0 = escape(heads[0]),
            h1 = escape(heads[1]),
            h2 = escape(heads[2]),
            h3 = escape(heads[3]),
            h4 = escape(heads[4]),
            h5 = escape(heads[5]),
            due_class = if task.overdue {
                " class=\"overdue\""
            } else {
                ""
            },
            due = escape(&local_minutes(task.due, tz)),
            title = escape(&task.title),
            assignee = escape(&task.assignee),
            state = escape(state),
            actions = actions(staff, task, managers, tz, now),
        ));
    }
    html.push_str("</tbody></table></div>\n");
    html
}

/// Whether `staff` may change `task`: not a viewer, and a manager only their own.
fn may_change(staff: &Staff, task: &Task) -> bool {
    staff.may_write() && staff.owner_scope().is_none_or(|own| own == task.assignee)
}

fn actions(staff: &Staff, task: &Task, managers: &[Manager], tz: Tz, now: i64) -> String {
    if task.status == TaskStatus::Done || !may_change(staff, task) {
        return String::new();
    }
    let id = task.id;
    // The snooze's first choice: the day after the later of now and the due time.
    let tomorrow = local_minutes(task.due.max(now) + 86_400, tz);
    let mut html = format!(
        "<form method=\"post\" action=\"/staff/tasks/{id}/done\" class=\"inline\">{csrf}\
         <label for=\"note-{id}\">{note}</label>\
         <input id=\"note-{id}\" name=\"note\" maxlength=\"2000\">\
         <button type=\"submit\">{done}</button></form>\n\
         <form method=\"post\" action=\"/staff/tasks/{id}/snooze\" class=\"inline\">{csrf}\
         <label for=\"until-{id}\">{until}</label>\
         <input id=\"until-{id}\" name=\"until\" type=\"date\" required value=\"{date}\">\
         <button type=\"submit\" class=\"secondary\">{snooze}</button></form>\n",
        csrf = staff.csrf_field(),
        note = escape(staff.t("Note", "备注")),
        done = escape(staff.t("Done", "完成")),
        until = escape(staff.t("Snooze until", "推迟到")),
        date = escape(tomorrow.get(..10).unwrap_or_default()),
        snooze = escape(staff.t("Snooze", "推迟")),
    );
    if staff.require_admin().is_ok() {
        let options: String = managers
            .iter()
            .filter(|manager| manager.active && manager.external_id != task.assignee)
            .map(|manager| {
                format!(
                    "<option value=\"{id}\">{name} ({id})</option>",
                    id = escape(&manager.external_id),
                    name = escape(&manager.name)
                )
            })
            .collect();
        if !options.is_empty() {
            html.push_str(&format!(
                "<form method=\"post\" action=\"/staff/tasks/{id}/reassign\" class=\"inline\">{csrf}\
                 <label for=\"assignee-{id}\">{to}</label>\
                 <select id=\"assignee-{id}\" name=\"assignee\">{options}</select>\
                 <button type=\"submit\" class=\"secondary\">{reassign}</button></form>\n",
                csrf = staff.csrf_field(),
                to = escape(staff.t("Reassign to", "改派给")),
                reassign = escape(staff.t("Reassign", "改派")),
            ));
        }
    }
    html
}

/// `GET /staff/tasks`.
async fn tasks_page(
    State(state): State<Arc<AppState>>,
    staff: Staff,
    RawQuery(query): RawQuery,
) -> Response {
    let query = fields(query.unwrap_or_default().as_bytes());
    let view = match field(&query, "view") {
        Some("snoozed") => TaskView::Snoozed,
        Some("done") => TaskView::Done,
        _ => TaskView::Pending,
    };
    let assignee = match staff.owner_scope() {
        Some(own) => Some(own.to_owned()),
        None => field(&query, "assignee").map(str::to_owned),
    };
    let filter = TaskFilter {
        assignee,
        view,
        limit: Some(500),
        ..TaskFilter::default()
    };
    let tz = state.timezone();
    let found = blocking(&state, staff.lang, move |store, now| {
        Ok::<_, StoreError>((store.tasks(&filter, now)?, store.managers()?, filter, now))
    })
    .await;
    let (tasks, managers, filter, now) = match found {
        Ok(found) => found,
        Err(response) => return response,
    };
    let mut body = String::new();
    if field(&query, "saved").is_some() {
        body.push_str(&format!(
            "<p class=\"notice\" role=\"status\">{}</p>\n",
            escape(staff.t("Saved.", "已保存。"))
        ));
    }
    body.push_str(&filter_form(&staff, &filter, &managers));
    body.push_str(&task_table(&staff, &tasks, &managers, tz, now));
    let title = match staff.owner_scope() {
        Some(_) => staff.t("My tasks", "我的任务"),
        None => staff.t("Tasks", "任务"),
    };
    frame::page(&staff, Nav::Tasks, title, &body)
}

fn filter_form(staff: &Staff, filter: &TaskFilter, managers: &[Manager]) -> String {
    let views = [
        ("pending", TaskView::Pending, staff.t("To do", "待办")),
        ("snoozed", TaskView::Snoozed, staff.t("Snoozed", "已推迟")),
        ("done", TaskView::Done, staff.t("Done", "已完成")),
    ];
    let mut view_options = String::new();
    for (value, view, label) in views {
        view_options.push_str(&format!(
            "<option value=\"{value}\"{}>{}</option>",
            if filter.view == view { " selected" } else { "" },
            escape(label)
        ));
    }
    let mut html = format!(
        "<form method=\"get\" action=\"/staff/tasks\" class=\"inline\">\
         <label for=\"view\">{show}</label><select id=\"view\" name=\"view\">{view_options}</select>",
        show = escape(staff.t("Show", "显示")),
    );
    if staff.owner_scope().is_none() {
        let mut options = format!(
            "<option value=\"\">{}</option>",
            escape(staff.t("Everyone", "所有人"))
        );
        for manager in managers {
            options.push_str(&format!(
                "<option value=\"{id}\"{selected}>{name} ({id})</option>",
                id = escape(&manager.external_id),
                name = escape(&manager.name),
                selected = if filter.assignee.as_deref() == Some(manager.external_id.as_str()) {
                    " selected"
                } else {
                    ""
                },
            ));
        }
        html.push_str(&format!(
            "<label for=\"assignee\">{label}</label><select id=\"assignee\" name=\"assignee\">{options}</select>",
            label = escape(staff.t("Assignee", "负责人")),
        ));
    }
    html.push_str(&format!(
        "<button type=\"submit\" class=\"secondary\">{}</button></form>\n",
        escape(staff.t("Filter", "筛选"))
    ));
    html
}

/// A refusal of a change, in the frame, with a link back.
fn refused(staff: &Staff, status: StatusCode, message: &str) -> Response {
    frame::page_with_status(
        staff,
        status,
        Nav::Tasks,
        staff.t("Not changed", "未更改"),
        &format!(
            "<p class=\"error\" role=\"alert\">{}</p>\n<p><a href=\"/staff/tasks\">{}</a></p>\n",
            escape(message),
            escape(staff.t("Back to the tasks", "返回任务"))
        ),
    )
}

/// What a task change does, in the store.
enum Change {
    Done { note: Option<String> },
    Snooze { until: i64 },
    Reassign { to: String },
}

/// Checks and applies `change` to the task `id` for `staff`, records it in the audit, and
/// goes back to the list.
async fn apply(state: Arc<AppState>, staff: Staff, id: i64, change: Change) -> Response {
    if let Err(response) = staff.require_write() {
        return response;
    }
    if matches!(change, Change::Reassign { .. })
        && let Err(response) = staff.require_admin()
    {
        return response;
    }
    let worker = staff.clone();
    let timezone = state.timezone();
    let outcome = blocking(&state, staff.lang, move |store, now| {
        let Some(task) = store.task(id, now)? else {
            return Ok(Err(refusal(
                &StoreError::UnknownTask { id },
                worker.lang,
                timezone,
            )));
        };
        if !may_change(&worker, &task) {
            return Ok(Ok(false));
        }
        let object = format!("task:{id}");
        let (action, details) = match &change {
            Change::Done { note } => (
                "task.done",
                note.as_ref()
                    .map(|note| format!("note of {} characters", note.chars().count())),
            ),
            Change::Snooze { until } => ("task.snooze", Some(format!("until {until}"))),
            Change::Reassign { to } => (
                "task.reassign",
                Some(format!("from {} to {to}", task.assignee)),
            ),
        };
        // The change and its audit row commit together.
        let entry = worker.audit_entry(action, &object, details);
        let result = store.audited(entry, now, |store| match &change {
            Change::Done { note } => store.complete_task(id, &worker.login, note.as_deref(), now),
            Change::Snooze { until } => store.snooze_task(id, *until, now),
            Change::Reassign { to } => store.reassign_task(id, to, now),
        });
        match result {
            Ok(_) => Ok(Ok(true)),
            Err(
                err @ (StoreError::UnknownTask { .. }
                | StoreError::TaskAlreadyDone { .. }
                | StoreError::InvalidTask { .. }
                | StoreError::UnknownManager { .. }
                | StoreError::InactiveManager { .. }),
            ) => Ok(Err(refusal(&err, worker.lang, timezone))),
            Err(err) => Err(err),
        }
    })
    .await;
    match outcome {
        Ok(Ok(true)) => Redirect::to("/staff/tasks?saved=1").into_response(),
        Ok(Ok(false)) => staff.forbidden(),
        Ok(Err(message)) => refused(&staff, StatusCode::CONFLICT, &message),
        Err(response) => response,
    }
}

/// `POST /staff/tasks/{id}/done`.
async fn done(
    State(state): State<Arc<AppState>>,
    staff: Staff,
    Path(id): Path<i64>,
    body: Bytes,
) -> Response {
    let form = fields(&body);
    let note = field(&form, "note").map(|note| note.trim().to_owned());
    apply(state, staff, id, Change::Done { note }).await
}

/// `POST /staff/tasks/{id}/snooze`.
async fn snooze(
    State(state): State<Arc<AppState>>,
    staff: Staff,
    Path(id): Path<i64>,
    body: Bytes,
) -> Response {
    let form = fields(&body);
    let until = field(&form, "until").unwrap_or("");
    match parse_time(until.trim(), state.timezone()) {
        Ok(until) => apply(state, staff, id, Change::Snooze { until }).await,
        Err(err) => refused(&staff, StatusCode::BAD_REQUEST, &err.to_string()),
    }
}

/// `POST /staff/tasks/{id}/reassign`.
async fn reassign(
    State(state): State<Arc<AppState>>,
    staff: Staff,
    Path(id): Path<i64>,
    body: Bytes,
) -> Response {
    let form = fields(&body);
    let Some(to) = field(&form, "assignee").map(str::to_owned) else {
        return refused(
            &staff,
            StatusCode::BAD_REQUEST,
            staff.t("Choose a manager.", "请选择一位客户经理。"),
        );
    };
    apply(state, staff, id, Change::Reassign { to }).await
}
