//! Loading follow-up rules and the contact policy (who is contacted when, and by whom) into
//! [`crate::care::followup`]'s model.
//!
//! A rule file may hold a `followups:` list and (one file of the set) a `contact_policy:`
//! section. They are validated with the rest of the rule set by [`crate::load_rules`] (every
//! problem at `path:line:col`), their `when` conditions compiled once like tiers', and turned into
//! [`FollowUpRule`]s and a [`ContactPolicy`]. [`crate::planning::plan`] turns them into planned actions for
//! one customer. The format is documented in `rules/README.md`; in short:
//!
//! ```yaml
//! contact_policy:
//!   caps: { day: 1, week: 2, month: 6 }     # emails to one customer per local day/week/month
//!   min_gap: 2d                             # between two emails to one customer
//!   send_window: { hours: "09:00-18:00", days: [mon, tue, wed, thu, fri] }
//!   tiers:
//!     C: { caps: { week: 1, month: 2 }, min_gap: 7d }
//!
//! followups:
//!   - id: a-monthly-review
//!     tiers: [A]
//!     every: 30d                             # or { period: 30d, from: last_contact }
//!     task: { assignee: owner, title: "Monthly review with {{ customer.name }}", due: 3d }
//!   - id: c-win-back
//!     tiers: [C]
//!     on: { event: no_order, after: 120d }
//!     when: consent_email
//!     re_entry: { once_per: 180d }
//!     email: { template: win-back }
//! ```
//!
//! Template, manager and role names are not known to the engine: [`check_references`] checks
//! them against the lists the caller passes in, as a separate step after loading.

use chrono::{NaiveTime, Weekday};

use crate::care::followup::{
    Action, Assignee, CadenceFrom, Caps, Channel, CompiledFollowUp, ContactPolicy, Event,
    FollowUpRule, ReEntry, SendWindow, TierPolicy, Trigger,
};
use crate::load::rule_file::{RawCaps, RawFollowUp, RawRuleFile, RawSendWindow, Scalar, Short};
use crate::load::rules::{Loader, key, valid_id};
use crate::load::values::{
    parse_assignee, parse_duration, parse_time_of_day, parse_timezone, parse_weekday,
};
use crate::text::diagnostic::Severity;
use crate::text::diagnostic::{Diagnostic, hint_among};
use crate::text::location::Location;
use crate::text::yaml::PathSeg;
use crate::tiering::rule_set::RuleSet;

/// Names the caller knows, for [`check_references`]. An empty list means "not known": that
/// check is skipped (a workspace without templates yet, or without managers).
#[derive(Debug, Clone, Copy, Default)]
pub struct References<'a> {
    /// Email template names (the template files' names without their extensions).
    pub templates: &'a [&'a str],
    /// Manager ids (`manager:ID`).
    pub managers: &'a [&'a str],
    /// Role names (`role:NAME`).
    pub roles: &'a [&'a str],
    /// SMS template names (`NAME.sms.j2` without its extension); `None`: not known, and not
    /// checked. Unlike the other lists, an empty one is known: no SMS template exists.
    pub sms_templates: Option<&'a [&'a str]>,
}

/// Checks the names follow-up rules and the `assignment` section refer to (templates,
/// managers, roles) against what the workspace has: unknown names are errors at their line,
/// with a "did you mean".
///
/// This is a separate step from [`crate::load_rules`] because the engine does no IO: the caller
/// lists its templates and managers. An empty `templates`, `managers` or `roles` list means
/// "not known", and skips that check.
#[must_use]
pub fn check_references(rules: &RuleSet, references: &References<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let mut sms_problems = Vec::new();
    let mut report = |location: &Location,
                      (line, column): (usize, usize),
                      who: &str,
                      (name, known, what): (&str, &[&str], &str)| {
        if known.is_empty() || known.contains(&name) {
            return;
        }
        let hint = hint_among(name, &format!("{what}s"), known.iter().copied());
        out.push(
            Diagnostic::error(
                &location.path,
                line,
                column,
                format!("{who} uses {what} `{name}`, which does not exist"),
            )
            .with_source(rules.source_text(&location.path))
            .with_hint(hint),
        );
    };
    for followup in &rules.followups {
        let rule = &followup.rule;
        let (key, reference): (&str, (&str, &[&str], &str)) = match &rule.action {
            Action::Email { template, .. } => (
                "email.template",
                (template, references.templates, "template"),
            ),
            Action::Survey {
                template,
                channel: Channel::Email,
                ..
            } => (
                "survey.template",
                (template, references.templates, "template"),
            ),
            Action::Survey { template, .. } => match references.sms_templates {
                Some(known) if !known.contains(&template.as_str()) => {
                    let (line, column) = rules.followup_position(followup, "survey.template");
                    sms_problems.push(
                        Diagnostic::error(
                            &rule.location.path,
                            line,
                            column,
                            format!(
                                "survey `{}` by SMS uses SMS template `{template}`, which does \
                                 not exist",
                                rule.id
                            ),
                        )
                        .with_source(rules.source_text(&rule.location.path))
                        .with_hint(format!(
                            "add templates/{template}.sms.j2 (plain text, showing `survey.link`)"
                        )),
                    );
                    continue;
                }
                _ => continue,
            },
            Action::NotifyOwner { template } => (
                "notify_owner.template",
                (template, references.templates, "template"),
            ),
            Action::Sms { template } => match references.sms_templates {
                Some(known) if !known.contains(&template.as_str()) => {
                    let (line, column) = rules.followup_position(followup, "sms.template");
                    let hint = if known.is_empty() {
                        format!("add templates/{template}.sms.j2 (plain text)")
                    } else {
                        hint_among(template, "SMS templates", known.iter().copied())
                    };
                    sms_problems.push(
                        Diagnostic::error(
                            &rule.location.path,
                            line,
                            column,
                            format!(
                                "follow-up `{}` uses SMS template `{template}`, which does not \
                                 exist",
                                rule.id
                            ),
                        )
                        .with_source(rules.source_text(&rule.location.path))
                        .with_hint(hint),
                    );
                    continue;
                }
                _ => continue,
            },
            Action::Task {
                assignee: Assignee::Manager(name),
                ..
            } => ("task.assignee", (name, references.managers, "manager")),
            Action::Task {
                assignee: Assignee::Role(name),
                ..
            } => ("task.assignee", (name, references.roles, "role")),
            _ => continue,
        };
        report(
            &rule.location,
            rules.followup_position(followup, key),
            &format!("follow-up `{}`", rule.id),
            reference,
        );
    }
    for placed in &rules.assignment.placed {
        let reference: (&str, &[&str], &str) = match &placed.candidate {
            crate::care::assignment::Candidate::Role(name) => (name, references.roles, "role"),
            crate::care::assignment::Candidate::Manager(name) => {
                (name, references.managers, "manager")
            }
        };
        let location = &placed.location;
        report(
            location,
            (location.line, location.column),
            "the owner assignment",
            reference,
        );
    }
    if let Some(escalation) = &rules.reminders.escalation {
        let reference: (&str, &[&str], &str) = match &escalation.to {
            crate::care::assignment::Candidate::Role(name) => (name, references.roles, "role"),
            crate::care::assignment::Candidate::Manager(name) => {
                (name, references.managers, "manager")
            }
        };
        let location = &escalation.location;
        report(
            location,
            (location.line, location.column),
            "the escalation",
            reference,
        );
    }
    out.extend(sms_problems);
    out
}

/// Checks that every SMS template an `sms:` follow-up names has a mapping in a provider that
/// sends only registered templates (Aliyun: `[sms.aliyun.templates.NAME]`): each one without is
/// an error at the follow-up's `sms.template`. `section` names the settings to add
/// (`sms.aliyun.templates`), `mapped` the templates that have one.
#[must_use]
pub fn check_sms_template_mapping(
    rules: &RuleSet,
    section: &str,
    mapped: &[&str],
) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for followup in &rules.followups {
        let rule = &followup.rule;
        let Action::Sms { template } = &rule.action else {
            continue;
        };
        if mapped.contains(&template.as_str()) {
            continue;
        }
        let (line, column) = rules.followup_position(followup, "sms.template");
        out.push(
            Diagnostic::error(
                &rule.location.path,
                line,
                column,
                format!(
                    "follow-up `{}` sends SMS template `{template}`, which has no [{section}.{template}]: the provider sends only registered templates",
                    rule.id
                ),
            )
            .with_source(rules.source_text(&rule.location.path))
            .with_hint(format!(
                "add `[{section}.{template}]` to tiercare.toml with the provider's template `code` and its `params`"
            )),
        );
    }
    out
}

/// Checks that only `survey:` follow-ups use templates that read `survey` (an e-mail or owner
/// notification with one would fail to render for every customer), and warns about a survey
/// whose template shows no `survey` (no links to answer with). A separate step like
/// [`check_references`]: the caller has the templates.
#[must_use]
pub fn check_survey_templates(
    rules: &RuleSet,
    templates: &crate::care::template::Templates,
) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for followup in &rules.followups {
        let rule = &followup.rule;
        let (key, template, survey) = match &rule.action {
            Action::Email { template, .. } => ("email.template", template, false),
            Action::NotifyOwner { template } => ("notify_owner.template", template, false),
            Action::Survey {
                template,
                channel: Channel::Email,
                ..
            } => ("survey.template", template, true),
            _ => continue,
        };
        if !templates.contains(template) || templates.reads_survey(template) == survey {
            continue;
        }
        let (line, column) = rules.followup_position(followup, key);
        let diagnostic = if survey {
            Diagnostic::warning(
                &rule.location.path,
                line,
                column,
                format!(
                    "survey `{}` uses template `{template}`, which shows no `survey` links",
                    rule.id
                ),
            )
            .with_hint("show `survey.question` and the `survey.links` in it, as templates/survey.eml.j2 does")
        } else {
            Diagnostic::error(
                &rule.location.path,
                line,
                column,
                format!(
                    "follow-up `{}` uses template `{template}`, which reads `survey`: only `survey:` follow-ups have it",
                    rule.id
                ),
            )
            .with_hint("make the rule a survey (`survey: { template, kind, question, id }`) or use another template")
        };
        out.push(diagnostic.with_source(rules.source_text(&rule.location.path)));
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Validation (called by `rules::Loader`).

fn join(base: &[PathSeg], rest: &[&str]) -> Vec<PathSeg> {
    let mut path = base.to_vec();
    path.extend(rest.iter().map(|key| PathSeg::from(*key)));
    path
}

pub(crate) const EVENTS: &[&str] = &[
    "tier_entered",
    "tier_up",
    "tier_down",
    "segment_entered",
    "no_order",
    "no_contact",
    "birthday",
    "anniversary",
    "complaint",
    "low_satisfaction",
];

impl Loader<'_> {
    /// Reports an error at `path` of `file` (at its key when `at_key`) with `hint`: the one
    /// way the loader's sections report a value they refuse.
    pub(super) fn error_at(
        &mut self,
        file: usize,
        path: &[PathSeg],
        at_key: bool,
        message: String,
        hint: &str,
    ) {
        let diagnostic = self
            .at(Severity::Error, file, path, at_key, message)
            .with_hint(hint);
        self.push(diagnostic);
    }

    fn duration_at(
        &mut self,
        file: usize,
        path: &[PathSeg],
        text: &Scalar,
        what: &str,
    ) -> Option<i64> {
        match parse_duration(&text.0) {
            Ok(seconds) => Some(seconds),
            Err(message) => {
                self.error_at(
                    file,
                    path,
                    false,
                    format!("invalid `{what}`: {message}"),
                    "write a number and a unit: `90m`, `12h`, `30d`, `2w`",
                );
                None
            }
        }
    }

    /// The `contact_policy` section (at most one in the rule set).
    pub(crate) fn contact_policy(
        &mut self,
        parsed: &[(usize, RawRuleFile)],
        tier_ids: &[String],
    ) -> ContactPolicy {
        let mut found: Option<usize> = None;
        let mut policy = ContactPolicy::default();
        for (file, raw) in parsed {
            let Some(raw_policy) = &raw.contact_policy else {
                continue;
            };
            if let Some(first) = found {
                let first_at = self.location(first, &key(&["contact_policy"]), true);
                self.error_at(
                    *file,
                    &key(&["contact_policy"]),
                    true,
                    "a second `contact_policy` section".to_owned(),
                    &format!(
                        "`contact_policy` is already defined at {first_at}; a rule set has one"
                    ),
                );
                continue;
            }
            found = Some(*file);
            let base = key(&["contact_policy"]);
            policy.default = TierPolicy {
                caps: self.caps(*file, &base, raw_policy.caps.as_ref(), Caps::default()),
                sms_caps: raw_policy.sms_caps.as_ref().map(|raw| {
                    self.caps_named(*file, &base, "sms_caps", Some(raw), Caps::default())
                }),
                min_gap: raw_policy.min_gap.as_ref().and_then(|gap| {
                    self.duration_at(*file, &join(&base, &["min_gap"]), gap, "min_gap")
                }),
                send_window: raw_policy.send_window.as_ref().and_then(|window| {
                    self.send_window(*file, &join(&base, &["send_window"]), window)
                }),
            };
            for (tier, raw_tier) in &raw_policy.tiers.0 {
                let path = join(&base, &["tiers", tier]);
                if !tier_ids.iter().any(|id| id == tier) {
                    self.not_a_tier(*file, &path, true, tier, tier_ids);
                    continue;
                }
                let default = policy.default.clone();
                let merged = TierPolicy {
                    caps: self.caps(*file, &path, raw_tier.caps.as_ref(), default.caps),
                    sms_caps: match &raw_tier.sms_caps {
                        Some(raw) => Some(self.caps_named(
                            *file,
                            &path,
                            "sms_caps",
                            Some(raw),
                            default.sms_caps.unwrap_or_default(),
                        )),
                        None => default.sms_caps,
                    },
                    min_gap: match &raw_tier.min_gap {
                        Some(gap) => {
                            self.duration_at(*file, &join(&path, &["min_gap"]), gap, "min_gap")
                        }
                        None => default.min_gap,
                    },
                    send_window: match &raw_tier.send_window {
                        Some(window) => {
                            self.send_window(*file, &join(&path, &["send_window"]), window)
                        }
                        None => default.send_window,
                    },
                };
                policy.tiers.push((tier.clone(), merged));
            }
        }
        policy
    }

    fn caps(
        &mut self,
        file: usize,
        base: &[PathSeg],
        raw: Option<&RawCaps>,
        default: Caps,
    ) -> Caps {
        self.caps_named(file, base, "caps", raw, default)
    }

    /// `caps:` or `sms_caps:` (`key`) under `base`, over `default`.
    fn caps_named(
        &mut self,
        file: usize,
        base: &[PathSeg],
        key: &str,
        raw: Option<&RawCaps>,
        default: Caps,
    ) -> Caps {
        let Some(raw) = raw else {
            return default;
        };
        let mut caps = default;
        for (name, value, slot) in [
            ("day", &raw.day, &mut caps.day),
            ("week", &raw.week, &mut caps.week),
            ("month", &raw.month, &mut caps.month),
        ] {
            let Some(value) = value else {
                continue;
            };
            let path = join(base, &[key, name]);
            match value.0.trim().parse::<u32>() {
                Ok(0) => self.error_at(
                    file,
                    &path,
                    false,
                    format!("a cap of zero emails per {name} would stop every email"),
                    "give at least 1; to send no email, remove the email follow-ups (or limit them with `tiers`)",
                ),
                Ok(n) => *slot = Some(n),
                Err(_) => self.error_at(
                    file,
                    &path,
                    false,
                    format!("`{key}.{name}` must be a whole number, not `{}`", value.0),
                    "the most emails one customer gets per local day, week or month",
                ),
            }
        }
        caps
    }

    fn send_window(
        &mut self,
        file: usize,
        base: &[PathSeg],
        raw: &RawSendWindow,
    ) -> Option<SendWindow> {
        let mut window = SendWindow {
            start: NaiveTime::MIN,
            end: NaiveTime::MIN,
            days: vec![
                Weekday::Mon,
                Weekday::Tue,
                Weekday::Wed,
                Weekday::Thu,
                Weekday::Fri,
                Weekday::Sat,
                Weekday::Sun,
            ],
        };
        let mut ok = true;
        let hours_hint =
            "write `HH:MM-HH:MM` on the customer's clock, start before end, such as `09:00-18:00`";
        match &raw.hours {
            Some(hours) => {
                let parsed = hours.0.split_once('-').and_then(|(start, end)| {
                    Some((parse_time_of_day(start)?, parse_time_of_day(end)?))
                });
                match parsed {
                    Some((start, end)) if start < end => {
                        window.start = start;
                        window.end = end;
                    }
                    Some(_) => {
                        ok = false;
                        self.error_at(file, &join(base, &["hours"]), false, format!("send window `{}` ends before it starts", hours.0), "windows across midnight are not supported; quiet hours are the time outside the window");
                    }
                    None => {
                        ok = false;
                        self.error_at(
                            file,
                            &join(base, &["hours"]),
                            false,
                            format!("`{}` is not a send window", hours.0),
                            hours_hint,
                        );
                    }
                }
            }
            None => window.end = NaiveTime::from_hms_opt(23, 59, 59).unwrap_or(NaiveTime::MIN),
        }
        if let Some(days) = &raw.days {
            window.days.clear();
            for (index, day) in days.iter().enumerate() {
                let mut path = join(base, &["days"]);
                path.push(PathSeg::Index(index));
                match parse_weekday(&day.0) {
                    Some(day) if !window.days.contains(&day) => window.days.push(day),
                    Some(_) => {}
                    None => {
                        ok = false;
                        self.error_at(
                            file,
                            &path,
                            false,
                            format!("`{}` is not a day of the week", day.0),
                            "days are `mon`, `tue`, `wed`, `thu`, `fri`, `sat`, `sun`",
                        );
                    }
                }
            }
            if window.days.is_empty() && ok {
                ok = false;
                self.error_at(
                    file,
                    &join(base, &["days"]),
                    true,
                    "a send window without days never opens".to_owned(),
                    "list the days emails may go out, such as `[mon, tue, wed, thu, fri]`",
                );
            }
        }
        ok.then_some(window)
    }

    /// Every `followups` list, validated and compiled.
    pub(crate) fn followups(
        &mut self,
        parsed: &[(usize, RawRuleFile)],
        tier_ids: &[String],
        sets: &[(String, Vec<String>)],
        scores: (&[String], usize),
    ) -> Vec<CompiledFollowUp> {
        let mut out: Vec<CompiledFollowUp> = Vec::new();
        let mut seen: Vec<(String, usize, Vec<PathSeg>)> = Vec::new();
        for (file, raw) in parsed {
            for (index, rule) in raw.followups.iter().enumerate() {
                let path = vec![PathSeg::from("followups"), PathSeg::Index(index)];
                let id = rule.id.0.trim().to_owned();
                let id_path = join(&path, &["id"]);
                if !valid_id(&id) {
                    self.error_at(
                        *file,
                        &id_path,
                        false,
                        format!("`{}` cannot be a follow-up id", rule.id.0),
                        "use letters, digits, `_`, `-` and `.`",
                    );
                    continue;
                }
                if let Some((_, first_file, first_path)) =
                    seen.iter().find(|(other, _, _)| *other == id)
                {
                    let first_at = self.location(*first_file, first_path, false);
                    self.error_at(*file, &id_path, false, format!("duplicate follow-up id `{id}`"), &format!("the first is at {first_at}; ids name occurrences in the ledger, so each must be unique"));
                    continue;
                }
                seen.push((id.clone(), *file, id_path.clone()));
                if let Some(compiled) =
                    self.followup(*file, &path, id, rule, tier_ids, sets, scores)
                {
                    out.push(compiled);
                }
            }
        }
        out
    }

    #[expect(clippy::too_many_arguments, reason = "one rule in its context")]
    fn followup(
        &mut self,
        file: usize,
        path: &[PathSeg],
        id: String,
        raw: &RawFollowUp,
        tier_ids: &[String],
        sets: &[(String, Vec<String>)],
        scores: (&[String], usize),
    ) -> Option<CompiledFollowUp> {
        let errors_before = self.error_count();
        let mut tiers = Vec::new();
        for (index, tier) in raw.tiers.iter().flatten().enumerate() {
            let mut tier_path = join(path, &["tiers"]);
            tier_path.push(PathSeg::Index(index));
            let tier = tier.0.trim();
            if tier_ids.iter().any(|id| id == tier) {
                tiers.push(tier.to_owned());
            } else {
                self.not_a_tier(file, &tier_path, false, tier, tier_ids);
            }
        }
        let mut segments = Vec::new();
        for (set, segment) in &raw.segments.0 {
            let seg_path = join(path, &["segments", set]);
            if let Some(checked) = self.segment_ref(file, &seg_path, set, &segment.0, sets) {
                segments.push(checked);
            }
        }

        // Exactly one trigger.
        let triggers: Vec<&str> = [
            ("every", raw.every.is_some()),
            ("cron", raw.cron.is_some()),
            ("on", raw.on.is_some()),
        ]
        .iter()
        .filter(|(_, present)| *present)
        .map(|(name, _)| *name)
        .collect();
        let trigger = match triggers.as_slice() {
            [] => {
                self.error_at(
                    file,
                    &join(path, &["id"]),
                    true,
                    format!("follow-up `{id}` has no trigger"),
                    "add one of `every: 30d`, `cron: \"0 9 * * mon\"` or `on: birthday`",
                );
                None
            }
            [_] => self.trigger(file, path, raw, sets),
            [_, second, ..] => {
                self.error_at(
                    file,
                    &join(path, &[second]),
                    true,
                    format!(
                        "follow-up `{id}` has more than one trigger ({})",
                        triggers.join(", ")
                    ),
                    "a rule has one of `every`, `cron` or `on`; write two rules for two triggers",
                );
                None
            }
        };
        let timezone = raw
            .timezone
            .as_ref()
            .and_then(|tz| match parse_timezone(&tz.0) {
                Ok(tz) => Some(tz),
                Err((message, hint)) => {
                    self.error_at(file, &join(path, &["timezone"]), false, message, &hint);
                    None
                }
            });
        let re_entry = match &raw.re_entry {
            None => ReEntry::EveryTime,
            Some(Short::Text(text)) => match text.0.trim() {
                "once" => ReEntry::Once,
                "every_time" => ReEntry::EveryTime,
                other => {
                    self.error_at(
                        file,
                        &join(path, &["re_entry"]),
                        false,
                        format!("`{other}` is not a re-entry rule"),
                        "write `once`, `every_time` or `{ once_per: 90d }`",
                    );
                    ReEntry::EveryTime
                }
            },
            Some(Short::Full(full)) => self
                .duration_at(
                    file,
                    &join(path, &["re_entry", "once_per"]),
                    &full.once_per,
                    "re_entry.once_per",
                )
                .map_or(ReEntry::EveryTime, ReEntry::OncePer),
        };
        let max_delay = raw.max_delay.as_ref().and_then(|delay| {
            self.duration_at(file, &join(path, &["max_delay"]), delay, "max_delay")
        });
        let action = self.action(file, path, &id, raw);

        let label = format!(
            "followups[{}] ({id})",
            match path.get(1) {
                Some(PathSeg::Index(index)) => *index,
                _ => 0,
            }
        );
        let when = match &raw.when {
            Some(when) => {
                let expr =
                    self.compile(file, join(path, &["when"]), label.clone(), &when.0, scores);
                expr.as_ref()?;
                expr
            }
            None => None,
        };
        let earn = match &raw.points {
            Some(points) => {
                let expr = self.compile(
                    file,
                    join(path, &["points", "earn"]),
                    format!("{label} points"),
                    &points.earn.0,
                    scores,
                );
                expr.as_ref()?;
                expr
            }
            None => None,
        };
        if self.error_count() > errors_before {
            return None;
        }
        let rule = FollowUpRule {
            id,
            label: raw.label.clone(),
            description: raw.description.clone(),
            tiers,
            segments,
            trigger: trigger?,
            when: raw.when.as_ref().map(|when| when.0.clone()),
            timezone,
            re_entry,
            max_delay,
            action: action?,
            location: self.location(file, &join(path, &["id"]), false),
        };
        Some(CompiledFollowUp {
            rule,
            when,
            earn,
            file,
            path: path.to_vec(),
        })
    }

    fn segment_ref(
        &mut self,
        file: usize,
        path: &[PathSeg],
        set: &str,
        segment: &str,
        sets: &[(String, Vec<String>)],
    ) -> Option<(String, String)> {
        let Some((_, ids)) = sets.iter().find(|(name, _)| name == set) else {
            let names = sets.iter().map(|(name, _)| name.as_str());
            let hint = hint_among(set, "segment sets", names);
            self.error_at(
                file,
                path,
                true,
                format!("`{set}` is not a segment set of the rules"),
                &hint,
            );
            return None;
        };
        let segment = segment.trim();
        if !ids.iter().any(|id| id == segment) {
            let names = ids.iter().map(String::as_str);
            let hint = hint_among(segment, &format!("segments of `{set}`"), names);
            self.error_at(
                file,
                path,
                false,
                format!("`{segment}` is not a segment of `{set}`"),
                &hint,
            );
            return None;
        }
        Some((set.to_owned(), segment.to_owned()))
    }

    fn trigger(
        &mut self,
        file: usize,
        path: &[PathSeg],
        raw: &RawFollowUp,
        sets: &[(String, Vec<String>)],
    ) -> Option<Trigger> {
        if let Some(every) = &raw.every {
            let (period_path, period, from) = match every {
                Short::Text(text) => (join(path, &["every"]), text, None),
                Short::Full(full) => (
                    join(path, &["every", "period"]),
                    &full.period,
                    full.from.as_ref(),
                ),
            };
            let from = match from.map(|from| from.0.trim()) {
                None | Some("last_fired") => CadenceFrom::LastFired,
                Some("last_contact") => CadenceFrom::LastContact,
                Some(other) => {
                    self.error_at(file, &join(path, &["every", "from"]), false, format!("`{other}` is not what a cadence counts from"), "write `last_fired` (the last time this rule fired for the customer, the default) or `last_contact`");
                    return None;
                }
            };
            let period = match parse_duration(&period.0) {
                Ok(period) if period >= 3_600 => period,
                Ok(_) => {
                    self.error_at(
                        file,
                        &period_path,
                        false,
                        format!("`every: {}` is shorter than an hour", period.0),
                        "a follow-up cadence is hours, days or weeks: `30d`, `2w`",
                    );
                    return None;
                }
                Err(message) => {
                    self.error_at(file, &period_path, false, format!("invalid `every`: {message}"), "write a number of days or weeks such as `30d` or `2w`, or `{ period: 30d, from: last_contact }`; for calendar dates use `cron`");
                    return None;
                }
            };
            return Some(Trigger::Every { period, from });
        }
        if let Some(cron) = &raw.cron {
            return match crate::care::schedule::Schedule::parse(&cron.0) {
                Ok(schedule) => Some(Trigger::Cron(schedule)),
                Err(err) => {
                    let diagnostic =
                        self.schedule_error(file, &join(path, &["cron"]), &cron.0, &err, "cron");
                    self.push(diagnostic);
                    None
                }
            };
        }
        let on = raw.on.as_ref()?;
        let (event_path, event, params) = match on {
            Short::Text(text) => (join(path, &["on"]), text, None),
            Short::Full(full) => (join(path, &["on", "event"]), &full.event, Some(full)),
        };
        let name = event.0.trim();
        if !EVENTS.contains(&name) {
            let hint = hint_among(name, "events", EVENTS.iter().copied());
            self.error_at(
                file,
                &event_path,
                false,
                format!("`{name}` is not an event"),
                &hint,
            );
            return None;
        }
        let param = |key: &str| -> Option<&Scalar> {
            let params = params?;
            match key {
                "after" => params.after.as_ref(),
                "below" => params.below.as_ref(),
                "set" => params.set.as_ref(),
                "segment" => params.segment.as_ref(),
                "time" => params.time.as_ref(),
                _ => None,
            }
        };
        let needs: &[&str] = match name {
            "no_order" | "no_contact" => &["after"],
            "low_satisfaction" => &["below"],
            "segment_entered" => &["set", "segment"],
            _ => &[],
        };
        let allowed: &[&str] = match name {
            "birthday" | "anniversary" => &["time"],
            _ => needs,
        };
        let mut ok = true;
        for key in needs {
            if param(key).is_none() {
                ok = false;
                self.error_at(
                    file,
                    &event_path,
                    false,
                    format!("event `{name}` needs `{key}`"),
                    &format!(
                        "write `on: {{ event: {name}, {} }}`",
                        needs
                            .iter()
                            .map(|k| format!("{k}: ..."))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                );
            }
        }
        for key in ["after", "below", "set", "segment", "time"] {
            if param(key).is_some() && !allowed.contains(&key) {
                ok = false;
                self.error_at(
                    file,
                    &join(path, &["on", key]),
                    true,
                    format!("event `{name}` takes no `{key}`"),
                    "remove it",
                );
            }
        }
        if !ok {
            return None;
        }
        let time = |this: &mut Self| -> Option<NaiveTime> {
            match param("time") {
                None => NaiveTime::from_hms_opt(9, 0, 0),
                Some(text) => parse_time_of_day(&text.0).or_else(|| {
                    this.error_at(
                        file,
                        &join(path, &["on", "time"]),
                        false,
                        format!("`{}` is not a time of day", text.0),
                        "write `HH:MM` on the customer's clock, such as `09:00`",
                    );
                    None
                }),
            }
        };
        let after = |this: &mut Self| {
            let text = param("after")?;
            this.duration_at(file, &join(path, &["on", "after"]), text, "on.after")
        };
        Some(Trigger::Event(match name {
            "tier_entered" => Event::TierEntered,
            "tier_up" => Event::TierUp,
            "tier_down" => Event::TierDown,
            "complaint" => Event::Complaint,
            "birthday" => Event::Birthday { time: time(self)? },
            "anniversary" => Event::Anniversary { time: time(self)? },
            "no_order" => Event::NoOrder {
                after: after(self)?,
            },
            "no_contact" => Event::NoContact {
                after: after(self)?,
            },
            "low_satisfaction" => {
                let text = param("below")?;
                match text.0.trim().parse::<f64>() {
                    Ok(below) if below.is_finite() => Event::LowSatisfaction { below },
                    _ => {
                        self.error_at(
                            file,
                            &join(path, &["on", "below"]),
                            false,
                            format!("`{}` is not a number", text.0),
                            "the feedback score below which the rule fires, such as `3`",
                        );
                        return None;
                    }
                }
            }
            _ => {
                let set = param("set")?.0.trim().to_owned();
                let segment = param("segment")?.0.clone();
                let (set, segment) =
                    self.segment_ref(file, &join(path, &["on", "segment"]), &set, &segment, sets)?;
                Event::SegmentEntered { set, segment }
            }
        }))
    }

    fn action(
        &mut self,
        file: usize,
        path: &[PathSeg],
        id: &str,
        raw: &RawFollowUp,
    ) -> Option<Action> {
        let present: Vec<&str> = [
            ("email", raw.email.is_some()),
            ("task", raw.task.is_some()),
            ("notify_owner", raw.notify_owner.is_some()),
            ("survey", raw.survey.is_some()),
            ("sms", raw.sms.is_some()),
            ("set", raw.set.is_some()),
            ("tag", raw.tag.is_some()),
            ("points", raw.points.is_some()),
        ]
        .iter()
        .filter(|(_, present)| *present)
        .map(|(name, _)| *name)
        .collect();
        match present.as_slice() {
            [] => {
                self.error_at(file, &join(path, &["id"]), true, format!("follow-up `{id}` has no action"), "add one of `email: { template: ... }`, `task: { assignee: owner, title: ... }`, `notify_owner: { template: ... }`, `survey: { template: ..., kind: nps, question: ..., id: ... }`, `sms: { template: ... }`, `set: { name: value }` or `tag: name`");
                return None;
            }
            [_] => {}
            [_, second, ..] => {
                self.error_at(
                    file,
                    &join(path, &[second]),
                    true,
                    format!(
                        "follow-up `{id}` has more than one action ({})",
                        present.join(", ")
                    ),
                    "a rule does one thing; write one rule per action",
                );
                return None;
            }
        }
        let template = |this: &mut Self, key: &str, text: &Scalar| -> Option<String> {
            let name = text.0.trim();
            if valid_id(name) {
                Some(name.to_owned())
            } else {
                this.error_at(
                    file,
                    &join(path, &[key, "template"]),
                    false,
                    format!("`{}` cannot be a template name", text.0),
                    "template names are letters, digits, `_`, `-` and `.`",
                );
                None
            }
        };
        if let Some(email) = &raw.email {
            let coupon = match &email.coupon {
                Some(pool) if !valid_id(pool.0.trim()) => {
                    self.error_at(
                        file,
                        &join(path, &["email", "coupon"]),
                        false,
                        format!("`{}` cannot be a coupon pool", pool.0),
                        "name a pool of the `coupons:` section",
                    );
                    return None;
                }
                Some(pool) => Some(pool.0.trim().to_owned()),
                None => None,
            };
            return template(self, "email", &email.template)
                .map(|template| Action::Email { template, coupon });
        }
        if let Some(survey) = &raw.survey {
            return self.survey(file, path, survey, &template);
        }
        if let Some(sms) = &raw.sms {
            return template(self, "sms", &sms.template).map(|template| Action::Sms { template });
        }
        if let Some(notify) = &raw.notify_owner {
            if notify.coupon.is_some() {
                self.error_at(
                    file,
                    &join(path, &["notify_owner", "coupon"]),
                    true,
                    "a notification to the owner carries no coupon".to_owned(),
                    "put `coupon:` on an `email:` to the customer",
                );
                return None;
            }
            return template(self, "notify_owner", &notify.template)
                .map(|template| Action::NotifyOwner { template });
        }
        if let Some(task) = &raw.task {
            let assignee = match parse_assignee(&task.assignee.0) {
                Ok(assignee) => Some(assignee),
                Err(message) => {
                    self.error_at(file, &join(path, &["task", "assignee"]), false, message, "write `owner` (the customer's account manager), `role:NAME` or `manager:NAME`");
                    None
                }
            };
            if task.title.trim().is_empty() {
                self.error_at(
                    file,
                    &join(path, &["task", "title"]),
                    false,
                    "a task needs a title".to_owned(),
                    "such as \"Monthly review with {{ customer.name }}\"",
                );
                return None;
            }
            if let Err(problem) = crate::template::check_text(&task.title) {
                self.error_in_scalar(
                    file,
                    &join(path, &["task", "title"]),
                    problem.offset,
                    format!("in the task title: {}", problem.message),
                    problem.hint,
                );
                return None;
            }
            let due = match &task.due {
                Some(due) => {
                    Some(self.duration_at(file, &join(path, &["task", "due"]), due, "task.due")?)
                }
                None => None,
            };
            return Some(Action::Task {
                assignee: assignee?,
                title: task.title.clone(),
                due,
            });
        }
        if let Some(points) = &raw.points {
            let expires = match &points.expires {
                Some(expires) => Some(self.duration_at(
                    file,
                    &join(path, &["points", "expires"]),
                    expires,
                    "points.expires",
                )?),
                None => None,
            };
            return Some(Action::Points {
                earn: points.earn.0.trim().to_owned(),
                expires,
                amount: 0.0,
            });
        }
        if let Some(tag) = &raw.tag {
            let name = tag.0.trim();
            if valid_id(name) {
                return Some(Action::Tag {
                    tag: name.to_owned(),
                });
            }
            self.error_at(
                file,
                &join(path, &["tag"]),
                false,
                format!("`{}` cannot be a tag", tag.0),
                "tags are letters, digits, `_`, `-` and `.`",
            );
            return None;
        }
        let set = raw.set.as_ref()?;
        let mut attributes = serde_json::Map::new();
        let mut ok = true;
        for (name, value) in &set.0 {
            let value_path = join(path, &["set", name]);
            let json = match value {
                serde_yaml::Value::Bool(_)
                | serde_yaml::Value::Number(_)
                | serde_yaml::Value::String(_)
                | serde_yaml::Value::Null => serde_json::to_value(value).ok(),
                _ => None,
            };
            if !crate::script::sandbox::is_variable_name(name) {
                ok = false;
                self.error_at(
                    file,
                    &value_path,
                    true,
                    format!("`{name}` cannot be an attribute name"),
                    "attribute names are letters, digits and `_` (rules read them as `attr.NAME`)",
                );
                continue;
            }
            match json {
                Some(json) => {
                    attributes.insert(name.clone(), json);
                }
                None => {
                    ok = false;
                    self.error_at(
                        file,
                        &value_path,
                        false,
                        format!(
                            "attribute `{name}` must be set to text, a number, true/false or ~"
                        ),
                        "lists and mappings cannot be attribute values",
                    );
                }
            }
        }
        if attributes.is_empty() && ok {
            self.error_at(
                file,
                &join(path, &["set"]),
                true,
                "`set` sets nothing".to_owned(),
                "write `set: { coupon_issued: true }`",
            );
            return None;
        }
        ok.then_some(Action::Set { attributes })
    }

    /// `survey: { template, kind, question, id }`: an e-mailed one-question survey.
    fn survey(
        &mut self,
        file: usize,
        path: &[PathSeg],
        raw: &crate::load::rule_file::RawSurvey,
        template: &dyn Fn(&mut Self, &str, &Scalar) -> Option<String>,
    ) -> Option<Action> {
        let template = template(self, "survey", &raw.template);
        let kind = tiercare_types::SurveyKind::parse(&raw.kind.0);
        if kind.is_none() {
            self.error_at(
                file,
                &join(path, &["survey", "kind"]),
                false,
                format!("`{}` is not a kind of survey", raw.kind.0),
                "write `nps` (scores 0 to 10: how likely to recommend us) or `csat` (scores 1 to 5: how satisfied)",
            );
        }
        let id = raw.id.0.trim();
        let id_ok = !id.is_empty()
            && id.len() <= 64
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !id_ok {
            self.error_at(
                file,
                &join(path, &["survey", "id"]),
                false,
                format!("`{}` cannot be a survey id", raw.id.0),
                "survey ids are 1 to 64 letters, digits, `_` and `-`, such as `quarterly`; answers are grouped by it",
            );
        }
        let question = raw.question.trim();
        if question.is_empty() {
            self.error_at(
                file,
                &join(path, &["survey", "question"]),
                false,
                "a survey needs a question".to_owned(),
                "such as \"How likely are you to recommend us to a friend?\"",
            );
        }
        if !id_ok || question.is_empty() {
            return None;
        }
        let channel = match raw.channel.as_ref().map(|channel| channel.0.trim()) {
            None | Some("email") => Channel::Email,
            Some("sms") => Channel::Sms,
            Some(other) => {
                self.error_at(
                    file,
                    &join(path, &["survey", "channel"]),
                    false,
                    format!("`{other}` is not a survey channel"),
                    "write `email` (the default: one link per score) or `sms` (one link to a page that asks for the score)",
                );
                return None;
            }
        };
        Some(Action::Survey {
            channel,
            template: template?,
            survey: tiercare_types::Survey {
                id: id.to_owned(),
                kind: kind?,
                question: question.to_owned(),
            },
        })
    }
}
