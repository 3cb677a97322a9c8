//! The staff rules page: `/staff/rules`, the rule files (read-only, with line numbers), the
//! version the daemon runs and when it loaded it, the last reload's problems (each
//! `path:line:col`, linked to its line), whether the files on disk compile; and
//! `/staff/rules/preview`, "what would change": the rules on disk evaluated on the stored
//! customers without recording anything ([`preview_tier_changes`]), on at most
//! [`PREVIEW_LIMIT`] of them, as the page says.
//!
//! [`preview_tier_changes`]: tiercare_scheduler::preview::preview_tier_changes
//! [`PREVIEW_LIMIT`]: tiercare_scheduler::preview::PREVIEW_LIMIT

use std::fmt::Write as _;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use tiercare_scheduler::html::escape;
use tiercare_scheduler::http_config::PageLanguage;
use tiercare_scheduler::preview::{
    PREVIEW_LIMIT, PreviewOptions, TierChangePreview, preview_tier_changes,
};
use tiercare_scheduler::time::local_time;
use tiercare_store::DaemonState;

use crate::AppState;
use crate::staff::reading::{read_rules, with_reader};
use crate::staff::{Nav, Staff, frame};

/// The texts of the rules pages, in one language.
pub struct RulesTexts {
    /// The page title.
    pub title: &'static str,
    /// The preview's title.
    pub preview_title: &'static str,
    /// The link to the preview.
    pub preview_link: &'static str,
    /// The daemon runs `{version}`, loaded at `{at}`, `{reloads}` loads since it started.
    pub running: &'static str,
    /// No daemon ever ran.
    pub no_daemon: &'static str,
    /// The files compile as `{version}`.
    pub disk_version: &'static str,
    /// The files on disk are what the daemon runs.
    pub same: &'static str,
    /// The files on disk differ from what the daemon runs.
    pub differ: &'static str,
    /// The files on disk do not compile.
    pub disk_broken: &'static str,
    /// The last reload failed at `{at}`.
    pub reload_failed: &'static str,
    /// The last reload had no problem.
    pub reload_fine: &'static str,
    /// The files heading.
    pub files: &'static str,
    /// The columns of a file: line number, text.
    pub line: [&'static str; 2],
    /// The preview's bound: `{evaluated}` of `{customers}`, `{limit}`.
    pub all_evaluated: &'static str,
    /// The preview was a sample.
    pub sampled: &'static str,
    /// The preview's result: `{moving}` would move, `{unchanged}` stay, `{failed}` fail.
    pub outcome: &'static str,
    /// Columns of the moves: from, to, customers.
    pub moves: [&'static str; 3],
    /// No move.
    pub no_moves: &'static str,
    /// The examples' heading and columns: customer, from, to.
    pub examples: (&'static str, [&'static str; 3]),
    /// Nothing was recorded; `{version}`, `{at}`, `{ms}`.
    pub preview_note: &'static str,
    /// The preview cannot run: the rules do not compile.
    pub cannot_preview: &'static str,
}

const ENGLISH: RulesTexts = RulesTexts {
    title: "Rules",
    preview_title: "What would change",
    preview_link: "What would change if customers were assessed now",
    running: "The daemon runs rules {version}, loaded at {at} (rule sets loaded since it started: {reloads}).",
    no_daemon: "No daemon has run on this workspace yet.",
    disk_version: "The files below compile as version {version}.",
    same: "They are the rules the daemon runs.",
    differ: "They differ from the rules the daemon runs (it reloads them when they change).",
    disk_broken: "The files below do not compile; the daemon keeps its previous rules:",
    reload_failed: "The last reload failed at {at}; the previous rules stay active:",
    reload_fine: "The last reload had no problem.",
    files: "Files",
    line: ["Line", "Text"],
    all_evaluated: "Evaluated all {evaluated} customers.",
    sampled: "Evaluated a sample of {evaluated} of {customers} customers, taken in turn from each stored tier (at most {limit}, so the page stays fast): the counts are of the sample.",
    outcome: "{moving} would change tier · {unchanged} would stay · {failed} would fail (and keep their tier).",
    moves: ["From", "To", "Customers"],
    no_moves: "Nobody would change tier.",
    examples: ("For example", ["Customer", "From", "To"]),
    preview_note: "Rules {version} evaluated at {at} in {ms} ms. Nothing was recorded.",
    cannot_preview: "The rules on disk do not compile, so nothing can be previewed:",
};

const SIMPLIFIED_CHINESE: RulesTexts = RulesTexts {
    title: "规则",
    preview_title: "将会发生的变化",
    preview_link: "如果现在评估客户，会有哪些变化",
    running: "守护进程运行规则版本 {version}，加载于 {at}（启动以来加载规则 {reloads} 次）。",
    no_daemon: "此工作区尚未运行过守护进程。",
    disk_version: "下列文件编译为版本 {version}。",
    same: "它们就是守护进程正在运行的规则。",
    differ: "它们与守护进程正在运行的规则不同（文件变化时守护进程会重新加载）。",
    disk_broken: "下列文件无法编译；守护进程保留之前的规则：",
    reload_failed: "最近一次重新加载于 {at} 失败；之前的规则仍然有效：",
    reload_fine: "最近一次重新加载没有问题。",
    files: "文件",
    line: ["行", "内容"],
    all_evaluated: "已评估全部 {evaluated} 位客户。",
    sampled: "已评估 {customers} 位客户中的 {evaluated} 位样本，从每个已存层级轮流抽取（最多 {limit} 位，以保证页面速度）：数字为样本中的数量。",
    outcome: "{moving} 位将改变层级 · {unchanged} 位保持不变 · {failed} 位规则失败（保留原层级）。",
    moves: ["从", "到", "客户数"],
    no_moves: "没有客户会改变层级。",
    examples: ("示例", ["客户", "从", "到"]),
    preview_note: "规则版本 {version}，于 {at} 评估，用时 {ms} 毫秒。未记录任何内容。",
    cannot_preview: "磁盘上的规则无法编译，因此无法预览：",
};

/// The rules pages' texts in `language`.
pub fn texts(language: PageLanguage) -> &'static RulesTexts {
    match language {
        PageLanguage::English => &ENGLISH,
        PageLanguage::SimplifiedChinese => &SIMPLIFIED_CHINESE,
    }
}

/// The rule files and what became of them.
#[derive(Debug, Clone)]
pub struct RulesView {
    /// Each file: its path (`rules/…`) and text.
    pub files: Vec<(String, String)>,
    /// The version the files compile as, or their problems (`path:line:col: message` each).
    pub disk: Result<String, Vec<String>>,
    /// What the daemon recorded, if one ever ran.
    pub daemon: Option<DaemonState>,
}

/// The id of line `line` of file number `file`, the target of a problem's link.
fn line_id(file: usize, line: usize) -> String {
    format!("f{file}-L{line}")
}

/// A problem `path:line:col: message`, linked to its line when `path` is one of `files`.
fn problem_item(problem: &str, files: &[(String, String)]) -> String {
    let target = files.iter().enumerate().find_map(|(index, (path, _))| {
        let rest = problem.strip_prefix(path.as_str())?.strip_prefix(':')?;
        let line: usize = rest.split(':').next()?.parse().ok()?;
        Some(line_id(index, line))
    });
    match target {
        Some(id) => format!(
            "<li><a href=\"#{id}\"><code>{}</code></a></li>",
            escape(problem)
        ),
        None => format!("<li><code>{}</code></li>", escape(problem)),
    }
}

fn problems(items: &[String], files: &[(String, String)]) -> String {
    let mut html = String::from("<ul class=\"problems\">\n");
    for item in items {
        html.push_str(&problem_item(item, files));
        html.push('\n');
    }
    html.push_str("</ul>\n");
    html
}

/// A line of a rule file, escaped, its indentation kept (the table wraps long lines; YAML's
/// indentation is its meaning).
fn code_line(line: &str) -> String {
    let text = line.trim_start_matches(' ');
    let indent = line.len() - text.len();
    format!("{}{}", "&nbsp;".repeat(indent), escape(text))
}

/// The rules page.
pub fn render_rules(texts: &RulesTexts, view: &RulesView, timezone: chrono_tz::Tz) -> String {
    let mut html = String::new();
    match &view.daemon {
        Some(state) => {
            let text = texts
                .running
                .replace("{version}", state.ruleset_version.as_deref().unwrap_or("–"))
                .replace(
                    "{at}",
                    &state
                        .ruleset_loaded_at
                        .map(|at| local_time(at, timezone))
                        .unwrap_or_else(|| "–".to_owned()),
                )
                .replace("{reloads}", &state.reloads.to_string());
            let _ = writeln!(
                html,
                "<p class=\"running\" data-version=\"{}\">{}</p>",
                escape(state.ruleset_version.as_deref().unwrap_or("")),
                escape(&text)
            );
            match (&state.last_reload_error, state.last_reload_error_at) {
                (Some(errors), at) => {
                    let at = at
                        .map(|at| local_time(at, timezone))
                        .unwrap_or_else(|| "–".to_owned());
                    let _ = writeln!(
                        html,
                        "<section class=\"reload-problems\"><p class=\"error\">{}</p>",
                        escape(&texts.reload_failed.replace("{at}", &at))
                    );
                    let lines: Vec<String> = errors.lines().map(str::to_owned).collect();
                    html.push_str(&problems(&lines, &view.files));
                    html.push_str("</section>\n");
                }
                (None, _) => {
                    let _ = writeln!(html, "<p>{}</p>", escape(texts.reload_fine));
                }
            }
        }
        None => {
            let _ = writeln!(html, "<p>{}</p>", escape(texts.no_daemon));
        }
    }
    match &view.disk {
        Ok(version) => {
            let _ = write!(
                html,
                "<p data-disk-version=\"{}\">{}",
                escape(version),
                escape(&texts.disk_version.replace("{version}", version))
            );
            if let Some(running) = view
                .daemon
                .as_ref()
                .and_then(|d| d.ruleset_version.as_ref())
            {
                let same = if running == version {
                    texts.same
                } else {
                    texts.differ
                };
                let _ = write!(html, " {}", escape(same));
            }
            html.push_str("</p>\n");
        }
        Err(items) => {
            let _ = writeln!(html, "<p class=\"error\">{}</p>", escape(texts.disk_broken));
            html.push_str(&problems(items, &view.files));
        }
    }
    let _ = writeln!(
        html,
        "<p><a href=\"/staff/rules/preview\">{}</a></p>",
        escape(texts.preview_link)
    );
    let _ = writeln!(html, "<h2>{}</h2>", escape(texts.files));
    // Each file folds (no script: `<details>`); those a problem points into are open.
    let mut problem_lines: Vec<&str> = Vec::new();
    if let Err(items) = &view.disk {
        problem_lines.extend(items.iter().map(String::as_str));
    }
    if let Some(errors) = view
        .daemon
        .as_ref()
        .and_then(|d| d.last_reload_error.as_deref())
    {
        problem_lines.extend(errors.lines());
    }
    for (index, (path, text)) in view.files.iter().enumerate() {
        let open = problem_lines.iter().any(|problem| {
            problem
                .strip_prefix(path.as_str())
                .is_some_and(|rest| rest.starts_with(':'))
        });
        let [line, content] = texts.line;
        let _ = writeln!(
            html,
            "<details class=\"rule-file\" id=\"f{index}\"{}><summary>{}</summary>\n\
             <div class=\"table\"><table class=\"code\">\n\
             <thead><tr><th scope=\"col\">{}</th><th scope=\"col\">{}</th></tr></thead><tbody>",
            if open { " open" } else { "" },
            escape(path),
            escape(line),
            escape(content)
        );
        for (number, line) in (1..).zip(text.lines()) {
            let _ = writeln!(
                html,
                "<tr id=\"{}\"><th scope=\"row\">{number}</th><td><code>{}</code></td></tr>",
                line_id(index, number),
                code_line(line)
            );
        }
        html.push_str("</tbody></table></div></details>\n");
    }
    html
}

/// The preview page: its bound, the from→to table and the example customers.
pub fn render_preview(
    texts: &RulesTexts,
    preview: &TierChangePreview,
    timezone: chrono_tz::Tz,
) -> String {
    let mut html = String::new();
    let bound = if preview.sampled() {
        texts.sampled
    } else {
        texts.all_evaluated
    };
    let bound = bound
        .replace("{evaluated}", &preview.evaluated.to_string())
        .replace("{customers}", &preview.customers.to_string())
        .replace("{limit}", &preview.limit.to_string());
    let _ = writeln!(
        html,
        "<p class=\"bound\" data-evaluated=\"{}\" data-customers=\"{}\">{}</p>",
        preview.evaluated,
        preview.customers,
        escape(&bound)
    );
    let moving: u64 = preview.moves.iter().map(|m| m.customers).sum();
    let outcome = texts
        .outcome
        .replace("{moving}", &moving.to_string())
        .replace("{unchanged}", &preview.unchanged.to_string())
        .replace("{failed}", &preview.failed.to_string());
    let _ = writeln!(html, "<p>{}</p>", escape(&outcome));
    if preview.moves.is_empty() {
        let _ = writeln!(html, "<p>{}</p>", escape(texts.no_moves));
    } else {
        html.push_str("<div class=\"table\"><table class=\"moves\">\n<thead><tr>");
        for column in texts.moves {
            let _ = write!(html, "<th scope=\"col\">{}</th>", escape(column));
        }
        html.push_str("</tr></thead>\n<tbody>\n");
        for change in &preview.moves {
            let _ = writeln!(
                html,
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&change.from),
                escape(&change.to),
                change.customers
            );
        }
        html.push_str("</tbody></table></div>\n");
        let (heading, columns) = texts.examples;
        let _ = writeln!(
            html,
            "<h2>{}</h2>\n<div class=\"table\"><table class=\"examples\">\n<thead><tr>",
            escape(heading)
        );
        for column in columns {
            let _ = write!(html, "<th scope=\"col\">{}</th>", escape(column));
        }
        html.push_str("</tr></thead>\n<tbody>\n");
        for example in &preview.examples {
            let encoded: String =
                form_urlencoded::byte_serialize(example.customer_id.as_bytes()).collect();
            let _ = writeln!(
                html,
                "<tr><td><a href=\"/staff/customers/{}\">{}</a></td><td>{}</td><td>{}</td></tr>",
                escape(&encoded),
                escape(&example.customer_id),
                escape(&example.from),
                escape(&example.to)
            );
        }
        html.push_str("</tbody></table></div>\n");
    }
    let note = texts
        .preview_note
        .replace("{version}", &preview.ruleset_version)
        .replace("{at}", &local_time(preview.at, timezone))
        .replace("{ms}", &preview.elapsed_ms.to_string());
    let _ = writeln!(html, "<p class=\"muted\">{}</p>", escape(&note));
    html
}

/// The rules pages' routes.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/staff/rules", get(rules_page))
        .route("/staff/rules/preview", get(preview_page))
}

/// `GET /staff/rules`.
async fn rules_page(State(state): State<Arc<AppState>>, staff: Staff) -> Response {
    let texts = texts(staff.lang);
    let read = with_reader(&state, &staff, Nav::Rules, |workspace, store, _now| {
        let rules = read_rules(workspace)?;
        Ok((
            RulesView {
                files: rules
                    .source
                    .files
                    .into_iter()
                    .map(|file| (file.path, file.text))
                    .collect(),
                disk: rules.compiled.map(|rules| rules.version().to_owned()),
                daemon: store.daemon_state()?,
            },
            workspace.config().timezone,
        ))
    })
    .await;
    match read {
        Ok((view, timezone)) => frame::page(
            &staff,
            Nav::Rules,
            texts.title,
            &render_rules(texts, &view, timezone),
        ),
        Err(response) => response,
    }
}

/// `GET /staff/rules/preview`: what an assessment now would change (read-only).
async fn preview_page(State(state): State<Arc<AppState>>, staff: Staff) -> Response {
    let texts = texts(staff.lang);
    let read = with_reader(&state, &staff, Nav::Rules, |workspace, store, now| {
        let config = workspace.config();
        let outcome = match read_rules(workspace)?.compiled {
            Ok(rules) => Ok(preview_tier_changes(
                store,
                &rules,
                PreviewOptions {
                    at: now,
                    now,
                    limit: PREVIEW_LIMIT,
                    growth: config.growth_settings(),
                    budget: Some(config.rules.budget()),
                },
            )?),
            Err(problems) => Err(problems),
        };
        Ok((outcome, config.timezone))
    })
    .await;
    let body = match read {
        Ok((Ok(preview), timezone)) => render_preview(texts, &preview, timezone),
        Ok((Err(problems), _)) => {
            let mut html = format!("<p class=\"error\">{}</p>\n", escape(texts.cannot_preview));
            html.push_str(&self::problems(&problems, &[]));
            html
        }
        Err(response) => return response,
    };
    let body = format!(
        "{body}<p><a href=\"/staff/rules\">{}</a></p>\n",
        escape(staff.t("Back to the rules", "返回规则"))
    );
    frame::page(&staff, Nav::Rules, texts.preview_title, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_escaped_with_line_numbers_and_problems_link_to_their_line() {
        let view = RulesView {
            files: vec![(
                "rules/tiers.yaml".to_owned(),
                "tiers:\n  - id: <A>\n".to_owned(),
            )],
            disk: Err(vec!["rules/tiers.yaml:2:9: unknown <thing>".to_owned()]),
            daemon: None,
        };
        let html = render_rules(texts(PageLanguage::English), &view, chrono_tz::UTC);
        assert!(
            html.contains(
                "<tr id=\"f0-L2\"><th scope=\"row\">2</th><td><code>&nbsp;&nbsp;- id: &lt;A&gt;</code>"
            ),
            "{html}"
        );
        assert!(
            html.contains(
                "<a href=\"#f0-L2\"><code>rules/tiers.yaml:2:9: unknown &lt;thing&gt;</code></a>"
            ),
            "{html}"
        );
        assert!(!html.contains("<A>") && !html.contains("<thing>"));
    }
}
