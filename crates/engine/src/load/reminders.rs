//! Loading the `reminders:` section into [`crate::care::reminders`]'s model, every problem at
//! `path:line:col`.

use chrono::{NaiveTime, Weekday};

use crate::care::assignment::Candidate;
use crate::care::followup::Assignee;
use crate::care::reminders::{Digest, DigestSection, Escalation, Reminders};
use crate::load::rule_file::{RawRuleFile, Scalar};
use crate::load::rules::{Loader, key};
use crate::load::values::{parse_assignee, parse_duration, parse_time_of_day, parse_weekday};
use crate::text::diagnostic::hint_among;
use crate::text::yaml::PathSeg;

/// The default digest template's name (`templates/manager-digest.digest.j2`).
pub const DEFAULT_DIGEST_TEMPLATE: &str = "manager-digest";

fn join(base: &[PathSeg], rest: &[&str]) -> Vec<PathSeg> {
    let mut path = base.to_vec();
    path.extend(rest.iter().map(|key| PathSeg::from(*key)));
    path
}

fn indexed(base: &[PathSeg], index: usize) -> Vec<PathSeg> {
    let mut path = base.to_vec();
    path.push(PathSeg::Index(index));
    path
}

impl Loader<'_> {
    /// The `reminders` section (at most one in the rule set).
    pub(crate) fn reminders(
        &mut self,
        parsed: &[(usize, RawRuleFile)],
        tier_ids: &[String],
    ) -> Reminders {
        let mut found: Option<usize> = None;
        let mut reminders = Reminders::default();
        for (file, raw) in parsed {
            let Some(section) = &raw.reminders else {
                continue;
            };
            let file = *file;
            let base = key(&["reminders"]);
            if let Some(first) = found {
                let first_at = self.location(first, &base, true);
                self.error_at(
                    file,
                    &base,
                    true,
                    "a second `reminders` section".to_owned(),
                    &format!("`reminders` is already defined at {first_at}; a rule set has one"),
                );
                continue;
            }
            found = Some(file);
            if let Some(digest) = &section.digest {
                let base = key(&["reminders", "digest"]);
                let mut ok = true;
                let at = match &digest.at {
                    None => NaiveTime::from_hms_opt(8, 0, 0).unwrap_or(NaiveTime::MIN),
                    Some(text) => match parse_time_of_day(&text.0) {
                        Some(at) => at,
                        None => {
                            ok = false;
                            self.error_at(
                                file,
                                &join(&base, &["at"]),
                                false,
                                format!("`{}` is not a time of day", text.0),
                                "write the local time the digest goes as `HH:MM`, such as `08:00`",
                            );
                            NaiveTime::MIN
                        }
                    },
                };
                let mut days = Vec::new();
                match &digest.days {
                    None => days.extend([
                        Weekday::Mon,
                        Weekday::Tue,
                        Weekday::Wed,
                        Weekday::Thu,
                        Weekday::Fri,
                    ]),
                    Some(list) => {
                        for (index, day) in list.iter().enumerate() {
                            match parse_weekday(&day.0) {
                                Some(day) if !days.contains(&day) => days.push(day),
                                Some(_) => {}
                                None => {
                                    ok = false;
                                    self.error_at(
                                        file,
                                        &indexed(&join(&base, &["days"]), index),
                                        false,
                                        format!("`{}` is not a day of the week", day.0),
                                        "days are `mon`, `tue`, `wed`, `thu`, `fri`, `sat`, `sun`",
                                    );
                                }
                            }
                        }
                        if list.is_empty() {
                            ok = false;
                            self.error_at(
                                file,
                                &join(&base, &["days"]),
                                true,
                                "a digest without working days is never sent".to_owned(),
                                "list the days it goes, such as `[mon, tue, wed, thu, fri]`, or remove `digest`",
                            );
                        }
                    }
                }
                let mut sections = Vec::new();
                match &digest.sections {
                    None => sections.extend(DigestSection::ALL),
                    Some(list) => {
                        for (index, name) in list.iter().enumerate() {
                            match DigestSection::parse(&name.0) {
                                Some(section) => {
                                    if !sections.contains(&section) {
                                        sections.push(section);
                                    }
                                }
                                None => {
                                    ok = false;
                                    let hint = hint_among(
                                        name.0.trim(),
                                        "sections",
                                        DigestSection::ALL.iter().map(|s| s.name()),
                                    );
                                    self.error_at(
                                        file,
                                        &indexed(&join(&base, &["sections"]), index),
                                        false,
                                        format!("`{}` is not a digest section", name.0),
                                        &hint,
                                    );
                                }
                            }
                        }
                        sections.sort();
                    }
                }
                let template = digest
                    .template
                    .as_ref()
                    .map_or(DEFAULT_DIGEST_TEMPLATE, |text| text.0.trim())
                    .to_owned();
                if template.is_empty() || template.contains(['/', '\\']) {
                    ok = false;
                    self.error_at(
                        file,
                        &join(&base, &["template"]),
                        false,
                        format!("`{template}` is not a template name"),
                        "name a digest template of the templates folder without its ending: `manager-digest` for templates/manager-digest.digest.j2",
                    );
                }
                let mut uncontacted = Vec::new();
                for (tier, text) in digest.uncontacted.iter().flat_map(|o| &o.0) {
                    let path = join(&base, &["uncontacted", tier]);
                    if !tier_ids.contains(tier) {
                        ok = false;
                        self.not_a_tier(file, &path, true, tier, tier_ids);
                        continue;
                    }
                    match parse_duration(&text.0) {
                        Ok(seconds) => uncontacted.push((tier.clone(), seconds)),
                        Err(message) => {
                            ok = false;
                            self.error_at(
                                file,
                                &path,
                                false,
                                format!("invalid rhythm of tier `{tier}`: {message}"),
                                "write a number and a unit: `30d`, `2w`",
                            );
                        }
                    }
                }
                if ok {
                    reminders.digest = Some(Digest {
                        at,
                        days,
                        sections,
                        template,
                        uncontacted,
                        location: self.location(file, &base, true),
                    });
                }
            }
            if let Some(escalation) = &section.escalation {
                let base = key(&["reminders", "escalation"]);
                let after =
                    self.escalation_after(file, &join(&base, &["after"]), &escalation.after);
                let to = match parse_assignee(&escalation.to.0) {
                    Ok(Assignee::Manager(id)) => Some(Candidate::Manager(id)),
                    Ok(Assignee::Role(role)) => Some(Candidate::Role(role)),
                    Ok(Assignee::Owner) => {
                        self.error_at(
                            file,
                            &join(&base, &["to"]),
                            false,
                            "an escalation cannot go to `owner`: the owner is who let it lapse"
                                .to_owned(),
                            "name a supervisor, `manager:ID`, or a role, `role:NAME`",
                        );
                        None
                    }
                    Err(message) => {
                        self.error_at(
                            file,
                            &join(&base, &["to"]),
                            false,
                            message,
                            "name a supervisor, `manager:ID`, or a role, `role:NAME`",
                        );
                        None
                    }
                };
                if let (Some(after), Some(to)) = (after, to) {
                    reminders.escalation = Some(Escalation {
                        after,
                        to,
                        location: self.location(file, &base, true),
                    });
                }
            }
        }
        reminders
    }

    fn escalation_after(&mut self, file: usize, path: &[PathSeg], text: &Scalar) -> Option<i64> {
        match parse_duration(&text.0) {
            Ok(seconds) => Some(seconds),
            Err(message) => {
                self.error_at(
                    file,
                    path,
                    false,
                    format!("invalid `after`: {message}"),
                    "write how long past due a task is escalated: `2d`, `1w`",
                );
                None
            }
        }
    }
}
