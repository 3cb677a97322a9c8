//! Reminders to account managers: the daily digest and the escalation of overdue tasks
//! (the rules' `reminders:` section, `tiercare_engine::reminders`).
//!
//! [`send_digests`] decides, at a time `now`, every digest that is due: for each manager who is
//! available (active, not on leave) and whose local time (their `timezone`, else the
//! workspace's) has reached the digest's `at` on a working day, it gathers from the store their
//! tasks due today and overdue, their customers of a tier quiet for longer than the tier's
//! rhythm, the customers newly theirs, the customers about to be reclaimed and the tasks
//! escalated to them; renders the digest template; and records the digest, its outbox e-mail
//! and its escalations in one transaction ([`Store::record_digest`]), whose unique key (manager,
//! local day) makes a digest at most once per day. An empty digest is recorded as decided and
//! not sent; a manager without a usable address gets none (a warning, [`digest_warnings`]).
//! The e-mail then goes through the outbox's send loop like every other.
//!
//! The daemon calls [`send_digests`] on every pass and wakes at [`next_digest_at`];
//! `tiercare managers digest` calls it once; `plan` shows what the coming days would bring
//! ([`plan_digests`]).

use std::path::Path;

use chrono::{DateTime, Datelike, Days, NaiveDate, NaiveTime, TimeZone};
use chrono_tz::Tz;
use serde::Serialize;
use tiercare_engine::digest::{
    DigestContext, DigestCustomer, DigestManager, DigestSender, DigestTask, load_digest_templates,
    render_digest,
};
use tiercare_engine::reminders::{Digest, DigestSection, Supervisor};
use tiercare_engine::{Diagnostic, LoadedTemplates, RuleSet, TemplateFile, Templates};
use tiercare_store::{
    DigestOutcome, ManagerPresence, NewDigest, NewEmail, Store, StoreError, Task,
};

use crate::config::Config;
use crate::mail::message::parse_address;
use crate::outbox::{MESSAGE_ID_DOMAIN, new_message_id, sender_domain};
use crate::workspace::{Workspace, read_folder};

/// Why reminders could not be decided.
#[derive(Debug, thiserror::Error)]
pub enum RemindersError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The digest templates could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: std::path::PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The digest template has errors: no digest is sent until it is fixed.
    #[error("{}", tiercare_engine::render_all(diagnostics, false).trim_end())]
    Template {
        /// Every problem, at `path:line:col`.
        diagnostics: Vec<Diagnostic>,
    },
}

/// Reads the digest templates of `dir` (`*.digest.j2`), naming each `label/<file>`.
///
/// # Errors
/// [`RemindersError::Io`].
pub fn read_digest_template_files(
    dir: &Path,
    label: &Path,
) -> Result<Vec<TemplateFile>, RemindersError> {
    if !dir.exists() {
        return Ok(Vec::new());
    }
    let files = read_folder(dir, label, |name| {
        name.ends_with(tiercare_engine::digest::DIGEST_SUFFIX)
    })
    .map_err(|(path, source)| RemindersError::Io { path, source })?;
    Ok(files
        .into_iter()
        .map(|(path, text)| TemplateFile::new(path, text))
        .collect())
}

/// Reads and checks the workspace's digest templates (`templates/*.digest.j2`).
///
/// # Errors
/// [`RemindersError::Io`].
pub fn load_workspace_digest_templates(
    workspace: &Workspace,
) -> Result<LoadedTemplates, RemindersError> {
    let files = read_digest_template_files(&workspace.templates_dir(), Path::new("templates"))?;
    Ok(load_digest_templates(&files))
}

/// The problems of the digest templates for `rules`: each template's own (`path:line:col`)
/// and, when the rules have a digest, its template missing (at the section).
#[must_use]
pub fn check_digest_templates(rules: &RuleSet, loaded: &LoadedTemplates) -> Vec<Diagnostic> {
    let mut out = loaded.diagnostics.clone();
    if let Some(digest) = &rules.reminders().digest {
        let failed = out.iter().any(|d| {
            d.path
                .rsplit(['/', '\\'])
                .next()
                .is_some_and(|name| name == format!("{}.digest.j2", digest.template))
        });
        if !loaded.templates.contains(&digest.template) && !failed {
            let location = &digest.location;
            out.push(
                Diagnostic::error(
                    &location.path,
                    location.line,
                    location.column,
                    format!(
                        "the digest template `{}` does not exist",
                        digest.template
                    ),
                )
                .with_hint(format!(
                    "create templates/{}.digest.j2 (`tiercare init` ships manager-digest.digest.j2), or name another with `template:`",
                    digest.template
                )),
            );
        }
    }
    out
}

/// What became of one manager's digest at a pass.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DigestDecision {
    /// The manager's external id.
    pub manager: String,
    /// Their local day.
    pub local_day: String,
    /// `queued`, `empty` (nothing to say: not sent), `no_address` (not sent) or
    /// `already_decided` (another process was first).
    pub outcome: &'static str,
    /// The outbox e-mail, when queued.
    pub outbox_id: Option<i64>,
    /// Items listed.
    pub items: u64,
    /// Of those, tasks escalated to them.
    pub escalated: u64,
}

/// What [`send_digests`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DigestReport {
    /// Whether the rules have a digest.
    pub configured: bool,
    /// One entry per digest decided at this pass.
    pub decided: Vec<DigestDecision>,
}

impl DigestReport {
    /// Digests queued for sending.
    #[must_use]
    pub fn queued(&self) -> u64 {
        self.decided
            .iter()
            .filter(|d| d.outcome == "queued")
            .count() as u64
    }
}

/// A manager's clock: their zone, else the workspace's.
fn zone_of(manager: &ManagerPresence, workspace: Tz) -> Tz {
    manager
        .timezone
        .as_deref()
        .and_then(|zone| zone.trim().parse().ok())
        .unwrap_or(workspace)
}

/// The UTC time of a local day's `time` in `tz` (the later instant in a repeated hour, the
/// first valid minute after a skipped one).
fn at_local(day: NaiveDate, time: NaiveTime, tz: Tz) -> i64 {
    let mut local = day.and_time(time);
    for _ in 0..180 {
        if let Some(at) = tz.from_local_datetime(&local).earliest() {
            return at.timestamp();
        }
        local += chrono::Duration::minutes(1);
    }
    local.and_utc().timestamp()
}

fn local_now(now: i64, tz: Tz) -> chrono::NaiveDateTime {
    DateTime::from_timestamp(now, 0)
        .unwrap_or_default()
        .with_timezone(&tz)
        .naive_local()
}

fn local_text(unix: i64, tz: Tz) -> String {
    DateTime::from_timestamp(unix, 0)
        .unwrap_or_default()
        .with_timezone(&tz)
        .format("%Y-%m-%d %H:%M")
        .to_string()
}

fn days_between(from: i64, to: i64) -> i64 {
    (to - from).max(0) / 86_400
}

fn digest_task(task: &Task, tz: Tz, now: i64) -> DigestTask {
    DigestTask {
        id: task.id,
        title: task.title.clone(),
        customer_id: task.customer_id.clone(),
        customer_name: task.customer_name.clone().unwrap_or_default(),
        assignee: task.assignee.clone(),
        due: local_text(task.due, tz),
        days_overdue: if task.overdue {
            days_between(task.due, now)
        } else {
            0
        },
    }
}

/// The customers who became `manager`'s since `since` (their last digest; the last day when
/// there was none) and are still theirs, for the `assigned` section, from the owner audit.
fn newly_assigned(
    store: &Store,
    manager: &str,
    since: Option<i64>,
    now: i64,
) -> Result<Vec<DigestCustomer>, StoreError> {
    let since = since.unwrap_or(now - 86_400);
    Ok(store
        .assignments_since(manager, since)?
        .into_iter()
        .map(|assigned| DigestCustomer {
            id: assigned.change.customer,
            name: assigned.name.unwrap_or_default(),
            tier: assigned.tier.unwrap_or_default(),
            note: assigned.change.reason,
        })
        .collect())
}

/// The customers of `manager` about to be reclaimed into the public pool (warned, not followed
/// up since), for the `reclaim` section, soonest first.
fn about_to_be_reclaimed(
    store: &Store,
    manager: &str,
    now: i64,
) -> Result<Vec<DigestCustomer>, StoreError> {
    Ok(store
        .reclaim_warnings(manager, now)?
        .into_iter()
        .map(|warning| DigestCustomer {
            note: format!(
                "back to the pool in {} days: {}",
                days_between(now, warning.reclaim_at + 86_399),
                warning.reason
            ),
            id: warning.customer,
            name: warning.name.unwrap_or_default(),
            tier: warning.tier.unwrap_or_default(),
        })
        .collect())
}

/// The supervisors as the escalation sees them at `now`.
fn supervisors(presence: &[ManagerPresence], now: i64) -> Vec<Supervisor<'_>> {
    presence
        .iter()
        .map(|m| Supervisor {
            id: &m.external_id,
            role: m.role.as_deref(),
            available: m.available(now),
        })
        .collect()
}

/// Builds one manager's digest context at `now` for their `day`.
#[expect(
    clippy::too_many_arguments,
    reason = "one digest's inputs: the store, the rules, the manager, their clock and the sender"
)]
fn build_context(
    store: &Store,
    rules: &RuleSet,
    digest: &Digest,
    manager: &ManagerPresence,
    presence: &[ManagerPresence],
    tz: Tz,
    day: NaiveDate,
    now: i64,
    sender: &DigestSender,
    escalation_candidates: &mut Option<Vec<tiercare_store::Task>>,
) -> Result<DigestContext, StoreError> {
    let id = manager.external_id.as_str();
    let end_of_day = at_local(
        day.checked_add_days(Days::new(1)).unwrap_or(day),
        NaiveTime::MIN,
        tz,
    );
    let mut context = DigestContext {
        manager: DigestManager {
            id: id.to_owned(),
            name: manager.name.clone(),
            timezone: tz.name().to_owned(),
        },
        today: day.format("%Y-%m-%d").to_string(),
        sender: sender.clone(),
        tasks_today: Vec::new(),
        overdue: Vec::new(),
        uncontacted: Vec::new(),
        assigned: Vec::new(),
        reclaim: Vec::new(),
        escalated: Vec::new(),
    };
    if digest.includes(DigestSection::Today) || digest.includes(DigestSection::Overdue) {
        for task in store.digest_tasks(id, end_of_day, now)? {
            if task.overdue {
                if digest.includes(DigestSection::Overdue) {
                    context.overdue.push(digest_task(&task, tz, now));
                }
            } else if digest.includes(DigestSection::Today) {
                context.tasks_today.push(digest_task(&task, tz, now));
            }
        }
    }
    if digest.includes(DigestSection::Uncontacted) {
        for (tier, rhythm) in &digest.uncontacted {
            for customer in store.uncontacted_customers(id, tier, *rhythm, now)? {
                let note = match customer.last_contact_at {
                    Some(at) => format!("no contact for {} days", days_between(at, now)),
                    None => "never contacted".to_owned(),
                };
                context.uncontacted.push(DigestCustomer {
                    id: customer.id,
                    name: customer.name,
                    tier: customer.tier,
                    note,
                });
            }
        }
    }
    if digest.includes(DigestSection::Assigned) {
        let since = store.last_digest_at(id, now)?;
        context.assigned = newly_assigned(store, id, since, now)?;
    }
    if digest.includes(DigestSection::Reclaim) {
        context.reclaim = about_to_be_reclaimed(store, id, now)?;
    }
    if digest.includes(DigestSection::Escalated)
        && let Some(escalation) = &rules.reminders().escalation
    {
        let supervisors = supervisors(presence, now);
        // Read once per round of digests, not once per manager (each task has one recipient,
        // so what one manager's digest escalates is never another's candidate).
        let candidates = match escalation_candidates {
            Some(candidates) => candidates,
            None => escalation_candidates
                .insert(store.escalation_candidates(now - escalation.after, now)?),
        };
        for task in candidates.iter() {
            if escalation.recipient(&task.assignee, &supervisors) == Some(id) {
                context.escalated.push(digest_task(task, tz, now));
            }
        }
    }
    Ok(context)
}

/// What [`send_digests`] needs besides the store and the rules.
#[derive(Debug, Clone)]
pub struct DigestSettings {
    /// The workspace's zone (for managers without their own).
    pub timezone: Tz,
    /// `sender.*` of the template.
    pub sender: DigestSender,
    /// The right-hand side of Message-IDs.
    pub message_id_domain: String,
}

impl DigestSettings {
    /// The settings of a workspace's `tiercare.toml`.
    #[must_use]
    pub fn from_config(config: &Config) -> DigestSettings {
        let sender = match config.mail.from.parse::<lettre::message::Mailbox>() {
            Ok(mailbox) => DigestSender {
                name: mailbox.name.unwrap_or_default(),
                email: mailbox.email.to_string(),
            },
            Err(_) => DigestSender {
                name: String::new(),
                email: config.mail.from.trim().to_owned(),
            },
        };
        DigestSettings {
            timezone: config.timezone,
            sender,
            message_id_domain: sender_domain(&config.mail)
                .unwrap_or_else(|| MESSAGE_ID_DOMAIN.to_owned()),
        }
    }
}

/// Decides and queues every digest due at `now` (see the [module](self)).
///
/// # Errors
/// A store error, or [`RemindersError::Template`] when the digest's template cannot render
/// (nothing is recorded for that manager: it is tried again at the next pass).
pub fn send_digests(
    store: &mut Store,
    rules: &RuleSet,
    templates: &Templates,
    settings: &DigestSettings,
    now: i64,
) -> Result<DigestReport, RemindersError> {
    let Some(digest) = &rules.reminders().digest else {
        return Ok(DigestReport::default());
    };
    let mut report = DigestReport {
        configured: true,
        decided: Vec::new(),
    };
    let presence = store.manager_presence()?;
    let mut escalation_candidates = None;
    for manager in &presence {
        if !manager.available(now) {
            continue;
        }
        let tz = zone_of(manager, settings.timezone);
        let Some(day) = digest.due_on(local_now(now, tz)) else {
            continue;
        };
        let local_day = day.format("%Y-%m-%d").to_string();
        if store.digest_decided(&manager.external_id, &local_day)? {
            continue;
        }
        let context = build_context(
            store,
            rules,
            digest,
            manager,
            &presence,
            tz,
            day,
            now,
            &settings.sender,
            &mut escalation_candidates,
        )?;
        let items = (context.tasks_today.len()
            + context.overdue.len()
            + context.uncontacted.len()
            + context.assigned.len()
            + context.reclaim.len()
            + context.escalated.len()) as u64;
        let address = manager
            .email
            .as_deref()
            .map(str::trim)
            .filter(|address| parse_address(address).is_ok());
        let mut summary = serde_json::json!({
            "tasks_today": context.tasks_today.len(),
            "overdue": context.overdue.len(),
            "uncontacted": context.uncontacted.len(),
            "assigned": context.assigned.len(),
            "reclaim": context.reclaim.len(),
            "escalated": context.escalated.len(),
        });
        let (outcome, email) = match address {
            _ if context.is_empty() => ("empty", None),
            None => ("no_address", None),
            Some(address) => {
                let rendered =
                    render_digest(templates, &digest.template, &context).map_err(|err| {
                        RemindersError::Template {
                            diagnostics: vec![match err {
                                tiercare_engine::template::RenderError::Render(d) => *d,
                                other => Diagnostic::error(
                                    format!("templates/{}.digest.j2", digest.template),
                                    1,
                                    1,
                                    other.to_string(),
                                ),
                            }],
                        }
                    })?;
                let email = NewEmail {
                    message_id: new_message_id(now, &settings.message_id_domain),
                    to_address: address.to_owned(),
                    subject: rendered.subject,
                    text: rendered.text,
                    html: rendered.html,
                };
                ("queued", Some((digest.template.as_str(), email)))
            }
        };
        summary["outcome"] = serde_json::json!(outcome);
        let escalated: Vec<i64> = if email.is_some() {
            context.escalated.iter().map(|task| task.id).collect()
        } else {
            Vec::new()
        };
        let recorded = store.record_digest(
            &NewDigest {
                manager: &manager.external_id,
                local_day: &local_day,
                summary,
                email,
                due_at: now,
                escalated: &escalated,
            },
            now,
        )?;
        let (outcome, outbox_id) = match recorded {
            DigestOutcome::Recorded { outbox_id } => (outcome, outbox_id),
            DigestOutcome::AlreadyDecided => ("already_decided", None),
        };
        match outcome {
            "queued" => tracing::info!(
                manager = %manager.external_id,
                day = %local_day,
                items,
                escalated = escalated.len(),
                outbox = outbox_id.unwrap_or_default(),
                "manager digest queued"
            ),
            "no_address" => tracing::warn!(
                manager = %manager.external_id,
                day = %local_day,
                items,
                "manager digest not sent: the manager has no usable e-mail address"
            ),
            _ => {
                tracing::debug!(manager = %manager.external_id, day = %local_day, outcome, "manager digest")
            }
        }
        report.decided.push(DigestDecision {
            manager: manager.external_id.clone(),
            local_day,
            outcome,
            outbox_id,
            items,
            escalated: escalated.len() as u64,
        });
    }
    Ok(report)
}

/// The next time after `now` a digest falls due (the earliest working-day `at` over the
/// available managers' zones), for the daemon's wake-up and the simulation's steps.
///
/// # Errors
/// A store error.
pub fn next_digest_at(
    store: &Store,
    rules: &RuleSet,
    timezone: Tz,
    now: i64,
) -> Result<Option<i64>, StoreError> {
    let Some(digest) = &rules.reminders().digest else {
        return Ok(None);
    };
    let mut zones: Vec<Tz> = store
        .manager_presence()?
        .iter()
        .filter(|m| m.active)
        .map(|m| zone_of(m, timezone))
        .collect();
    zones.sort_by_key(|tz| tz.name());
    zones.dedup();
    let mut next: Option<i64> = None;
    for tz in zones {
        let today = local_now(now, tz).date();
        for offset in 0..8 {
            let Some(day) = today.checked_add_days(Days::new(offset)) else {
                break;
            };
            if !digest.days.contains(&day.weekday()) {
                continue;
            }
            let at = at_local(day, digest.at, tz);
            if at > now {
                next = Some(next.map_or(at, |n: i64| n.min(at)));
                break;
            }
        }
    }
    Ok(next)
}

/// A digest `plan` expects in the coming days.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedDigest {
    /// The manager's external id.
    pub manager: String,
    /// Their local day.
    pub local_day: String,
    /// When it would go, unix seconds UTC.
    pub at: i64,
    /// Tasks stored now that would be due that day.
    pub tasks_today: u64,
    /// Tasks stored now that would be overdue then.
    pub overdue: u64,
    /// Tasks stored now that would be escalated to them then.
    pub escalated: u64,
    /// Whether they have a usable address (else nothing is sent).
    pub has_address: bool,
}

/// The digests of `[from, to)` from the tasks stored now (tasks the follow-ups will create in
/// the meantime are not counted; `plan` lists those per assignee), for available managers
/// (leave as recorded); a day already decided is left out. Empty digests are left out. A task
/// not escalated yet counts once, in the first digest that would escalate it.
///
/// # Errors
/// A store error.
pub fn plan_digests(
    store: &Store,
    rules: &RuleSet,
    timezone: Tz,
    from: i64,
    to: i64,
) -> Result<Vec<PlannedDigest>, StoreError> {
    let Some(digest) = &rules.reminders().digest else {
        return Ok(Vec::new());
    };
    let presence = store.manager_presence()?;
    let tasks = store.tasks(&tiercare_store::TaskFilter::default(), from)?;
    let escalation = rules.reminders().escalation.as_ref();
    // Tasks never escalated yet: each is escalated once, at its supervisor's first digest
    // after it is `after` overdue.
    let unescalated = match escalation {
        Some(_) => store.escalation_candidates(to, from)?,
        None => Vec::new(),
    };
    let mut out = Vec::new();
    for manager in &presence {
        let mut counted: std::collections::HashSet<i64> = std::collections::HashSet::new();
        let tz = zone_of(manager, timezone);
        let mut day = local_now(from, tz).date();
        loop {
            let at = at_local(day, digest.at, tz);
            if at >= to {
                break;
            }
            let next_day = day.checked_add_days(Days::new(1)).unwrap_or(day);
            if at >= from
                && digest.days.contains(&day.weekday())
                && manager.available(at)
                && !store
                    .digest_decided(&manager.external_id, &day.format("%Y-%m-%d").to_string())?
            {
                let end = at_local(next_day, NaiveTime::MIN, tz);
                let mine = tasks.iter().filter(|t| t.assignee == manager.external_id);
                let tasks_today = mine.clone().filter(|t| t.due >= at && t.due < end).count();
                let overdue = mine.filter(|t| t.due < at).count();
                let supervisors = supervisors(&presence, at);
                let escalated = escalation.map_or(0, |e| {
                    unescalated
                        .iter()
                        .filter(|t| {
                            t.due < at - e.after
                                && e.recipient(&t.assignee, &supervisors)
                                    == Some(manager.external_id.as_str())
                                && counted.insert(t.id)
                        })
                        .count()
                });
                let planned = PlannedDigest {
                    manager: manager.external_id.clone(),
                    local_day: day.format("%Y-%m-%d").to_string(),
                    at,
                    tasks_today: tasks_today as u64,
                    overdue: overdue as u64,
                    escalated: escalated as u64,
                    has_address: manager
                        .email
                        .as_deref()
                        .is_some_and(|a| parse_address(a.trim()).is_ok()),
                };
                if planned.tasks_today + planned.overdue + planned.escalated > 0 {
                    out.push(planned);
                }
            }
            if next_day == day {
                break;
            }
            day = next_day;
        }
    }
    out.sort_by(|a, b| a.at.cmp(&b.at).then_with(|| a.manager.cmp(&b.manager)));
    Ok(out)
}

/// Warnings about the managers the digest cannot reach: active managers without a usable
/// e-mail address (they get no digest). Empty when the rules have no digest.
///
/// # Errors
/// A store error.
pub fn digest_warnings(store: &Store, rules: &RuleSet) -> Result<Vec<String>, StoreError> {
    if rules.reminders().digest.is_none() {
        return Ok(Vec::new());
    }
    Ok(store
        .manager_presence()?
        .into_iter()
        .filter(|m| m.active)
        .filter(|m| {
            m.email
                .as_deref()
                .is_none_or(|address| parse_address(address.trim()).is_err())
        })
        .map(|m| {
            format!(
                "manager '{}' has no usable e-mail address and gets no digest: add `email` in the manager import",
                m.external_id
            )
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use tiercare_engine::{RecordKind, RuleFile, load_rules};
    use tiercare_store::NewTask;

    use super::*;
    use crate::test_support::import;

    const RULES: &str = "tiering:\n  window: 365d\n  tiers:\n    - id: A\n      when: true\n\
        reminders:\n  digest:\n    at: \"08:30\"\n    days: [mon, tue, wed, thu, fri]\n  \
        escalation:\n    after: 2d\n    to: role:senior\n";

    fn time(text: &str) -> i64 {
        DateTime::parse_from_rfc3339(text).unwrap().timestamp()
    }

    struct Setup {
        _dir: tempfile::TempDir,
        store: Store,
        rules: RuleSet,
        templates: Templates,
        settings: DigestSettings,
    }

    fn setup() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let (workspace, _) = Workspace::init(dir.path(), chrono_tz::Europe::London).unwrap();
        let mut store = workspace.open_store_for_writing().unwrap();
        import(
            &workspace,
            &mut store,
            RecordKind::Managers,
            "manager_id,name,email,role,timezone\n\
             lon,Lena,lena@example.com,junior,\n\
             sha,Shu,shu@example.com,junior,Asia/Shanghai\n\
             boss,Bo,bo@example.com,senior,\n\
             mute,Mo,,junior,\n",
        );
        import(
            &workspace,
            &mut store,
            RecordKind::Customers,
            "customer_id,name,email\nc1,Ada,ada@example.com\n",
        );
        let rules = load_rules(&[RuleFile::new("rules/managers.yaml", RULES)])
            .unwrap()
            .rules;
        let loaded = load_workspace_digest_templates(&workspace).unwrap();
        assert!(
            check_digest_templates(&rules, &loaded).is_empty(),
            "{}",
            tiercare_engine::render_all(&loaded.diagnostics, false)
        );
        Setup {
            settings: DigestSettings::from_config(workspace.config()),
            _dir: dir,
            store,
            rules,
            templates: loaded.templates,
        }
    }

    fn task(store: &mut Store, assignee: &str, due: &str, now: i64) -> i64 {
        store
            .add_task(
                &NewTask {
                    customer_id: "c1".into(),
                    assignee: assignee.into(),
                    title: format!("Call Ada for {assignee}"),
                    due_at: time(due),
                    note: None,
                },
                now,
            )
            .unwrap()
            .id
    }

    fn decided(s: &mut Setup, at: &str) -> Vec<(String, &'static str)> {
        send_digests(&mut s.store, &s.rules, &s.templates, &s.settings, time(at))
            .unwrap()
            .decided
            .into_iter()
            .map(|d| (d.manager, d.outcome))
            .collect()
    }

    #[test]
    fn the_default_rules_send_a_digest_at_half_past_eight_on_working_days_with_their_template() {
        let files: Vec<RuleFile> = crate::workspace::DEFAULT_RULES
            .iter()
            .filter(|(name, _)| name.ends_with(".yaml") && !name.starts_with("tests/"))
            .map(|(name, text)| RuleFile::new(format!("rules/{name}"), *text))
            .collect();
        let rules = load_rules(&files).unwrap().rules;
        let digest = rules.reminders().digest.as_ref().unwrap();
        assert_eq!(digest.at, NaiveTime::from_hms_opt(8, 30, 0).unwrap());
        assert_eq!(digest.days.len(), 5);
        assert!(!digest.days.contains(&chrono::Weekday::Sat));
        assert_eq!(digest.sections, DigestSection::ALL.to_vec());
        assert_eq!(digest.uncontacted, [("A".to_owned(), 45 * 86_400)]);
        let escalation = rules.reminders().escalation.as_ref().unwrap();
        assert_eq!(escalation.after, 3 * 86_400);
        let templates: Vec<TemplateFile> = crate::workspace::DEFAULT_TEMPLATES
            .iter()
            .map(|(name, text)| TemplateFile::new(format!("templates/{name}"), *text))
            .collect();
        let loaded = load_digest_templates(&templates);
        let problems = check_digest_templates(&rules, &loaded);
        assert!(
            problems.is_empty(),
            "{}",
            tiercare_engine::render_all(&problems, false)
        );
        // The sample digest renders every section.
        let rendered = render_digest(
            &loaded.templates,
            &digest.template,
            &DigestContext::sample(),
        )
        .unwrap();
        for heading in [
            "Overdue (1)",
            "Due today (1)",
            "without contact",
            "New customers",
            "pool",
            "Escalated",
        ] {
            assert!(
                rendered.text.contains(heading),
                "{heading}:\n{}",
                rendered.text
            );
        }
    }

    #[test]
    fn each_manager_gets_one_digest_per_working_day_at_their_local_time() {
        let mut s = setup();
        let created = time("2026-12-01T00:00:00Z");
        for manager in ["lon", "sha", "mute"] {
            task(&mut s.store, manager, "2026-12-07T15:00:00Z", created);
        }
        // Monday 7 December: 08:30 in Shanghai is 00:30 UTC; in London 08:30 UTC.
        assert_eq!(decided(&mut s, "2026-12-07T00:29:00Z"), []);
        assert_eq!(
            decided(&mut s, "2026-12-07T00:30:00Z"),
            [("sha".to_owned(), "queued")]
        );
        assert_eq!(decided(&mut s, "2026-12-07T08:29:59Z"), []);
        assert_eq!(
            decided(&mut s, "2026-12-07T08:30:00Z"),
            [
                // Nothing to say: decided, not sent.
                ("boss".to_owned(), "empty"),
                ("lon".to_owned(), "queued"),
                ("mute".to_owned(), "no_address"),
            ]
        );
        // Never twice in a day, however often it is asked.
        assert_eq!(decided(&mut s, "2026-12-07T23:59:00Z"), []);
        let outbox = s.store.outbox(None, 100).unwrap();
        assert_eq!(outbox.len(), 2, "{outbox:?}");
        let lena = outbox
            .iter()
            .find(|e| e.to_address == "lena@example.com")
            .unwrap();
        assert_eq!(lena.rule_id, tiercare_store::DIGEST_RULE);
        assert!(lena.subject.contains("1 due today"), "{}", lena.subject);
        assert!(
            lena.body_text.contains("Call Ada for lon"),
            "{}",
            lena.body_text
        );
        assert!(
            !lena.body_text.contains("Call Ada for sha"),
            "{}",
            lena.body_text
        );
        // Saturday is not a working day; Monday again is.
        assert_eq!(decided(&mut s, "2026-12-12T12:00:00Z"), []);
        assert_eq!(decided(&mut s, "2026-12-14T08:31:00Z").len(), 4);
    }

    #[test]
    fn a_customer_given_to_a_manager_is_in_their_next_digest_only() {
        let mut s = setup();
        // Bo has nothing to do: his digest is empty until a customer is given to him.
        s.store
            .set_owner(
                "c1",
                Some("boss"),
                "key account",
                "test",
                time("2026-12-06T12:00:00Z"),
            )
            .unwrap();
        let monday = decided(&mut s, "2026-12-07T08:30:00Z");
        assert!(
            monday.contains(&("boss".to_owned(), "queued")),
            "{monday:?}"
        );
        let outbox = s.store.outbox(None, 100).unwrap();
        let bo = outbox
            .iter()
            .find(|e| e.to_address == "bo@example.com")
            .expect("Bo's digest");
        assert!(bo.body_text.contains("Ada"), "{}", bo.body_text);
        assert!(bo.body_text.contains("key account"), "{}", bo.body_text);
        // Listed once: by Tuesday's digest the customer is no longer new.
        let tuesday = decided(&mut s, "2026-12-08T08:30:00Z");
        assert!(
            tuesday.contains(&("boss".to_owned(), "empty")),
            "{tuesday:?}"
        );
    }

    #[test]
    fn managers_on_leave_get_no_digest_and_an_overdue_task_is_escalated_once() {
        let mut s = setup();
        let created = time("2026-12-01T00:00:00Z");
        let late = task(&mut s.store, "lon", "2026-12-03T09:00:00Z", created);
        s.store
            .set_leave("sha", time("2026-12-06T00:00:00Z"), None, created)
            .unwrap();
        task(&mut s.store, "sha", "2026-12-07T09:00:00Z", created);
        let first = send_digests(
            &mut s.store,
            &s.rules,
            &s.templates,
            &s.settings,
            time("2026-12-07T09:00:00Z"),
        )
        .unwrap();
        let boss = first.decided.iter().find(|d| d.manager == "boss").unwrap();
        assert_eq!((boss.outcome, boss.escalated), ("queued", 1));
        assert!(first.decided.iter().all(|d| d.manager != "sha"));
        let next = send_digests(
            &mut s.store,
            &s.rules,
            &s.templates,
            &s.settings,
            time("2026-12-08T09:00:00Z"),
        )
        .unwrap();
        let boss = next.decided.iter().find(|d| d.manager == "boss").unwrap();
        assert_eq!(
            (boss.outcome, boss.escalated),
            ("empty", 0),
            "escalated once: #{late}"
        );
    }
}
