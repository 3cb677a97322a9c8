//! The `reminders:` section's model: the managers' daily digest (when, on which days, which
//! sections, which template) and the escalation of overdue tasks, as validated by the loader
//! (`load/reminders.rs`). Also the pure decisions on it: whether a digest is due at a local
//! time ([`Digest::due_on`]) and who an escalation goes to ([`Escalation::recipient`]).

use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime, Weekday};

use crate::care::assignment::Candidate;
use crate::text::location::Location;

/// A part of the digest, in the order the template gets them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DigestSection {
    /// Tasks due today (in the manager's zone).
    Today,
    /// Tasks past due.
    Overdue,
    /// The manager's customers of a tier without contact for longer than the tier's rhythm.
    Uncontacted,
    /// Customers who became the manager's since their last digest.
    Assigned,
    /// The manager's customers about to go back to the public pool.
    Reclaim,
    /// Other managers' tasks overdue past the escalation threshold, for a supervisor.
    Escalated,
}

impl DigestSection {
    /// Every section, in order.
    pub const ALL: [DigestSection; 6] = [
        DigestSection::Today,
        DigestSection::Overdue,
        DigestSection::Uncontacted,
        DigestSection::Assigned,
        DigestSection::Reclaim,
        DigestSection::Escalated,
    ];

    /// The name rules write.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            DigestSection::Today => "today",
            DigestSection::Overdue => "overdue",
            DigestSection::Uncontacted => "uncontacted",
            DigestSection::Assigned => "assigned",
            DigestSection::Reclaim => "reclaim",
            DigestSection::Escalated => "escalated",
        }
    }

    /// The section named `name`.
    #[must_use]
    pub fn parse(name: &str) -> Option<DigestSection> {
        DigestSection::ALL
            .into_iter()
            .find(|section| section.name() == name.trim())
    }
}

/// `reminders.digest`: one e-mail per manager per working day.
#[derive(Debug, Clone, PartialEq)]
pub struct Digest {
    /// The local time of day it goes (in the manager's zone).
    pub at: NaiveTime,
    /// The working days it goes on.
    pub days: Vec<Weekday>,
    /// The sections it lists (in [`DigestSection::ALL`]'s order).
    pub sections: Vec<DigestSection>,
    /// The digest template's name (`templates/NAME.digest.j2`).
    pub template: String,
    /// Per tier: how long a customer may go without contact before the digest lists them, in
    /// seconds (the `uncontacted` section).
    pub uncontacted: Vec<(String, i64)>,
    /// Where the section is written.
    pub location: Location,
}

impl Digest {
    /// Whether the section is included.
    #[must_use]
    pub fn includes(&self, section: DigestSection) -> bool {
        self.sections.contains(&section)
    }

    /// The local day whose digest is due at the local time `local`: today's, when today is a
    /// working day and its time has come; `None` otherwise.
    #[must_use]
    pub fn due_on(&self, local: NaiveDateTime) -> Option<NaiveDate> {
        let day = local.date();
        (self.days.contains(&day.weekday()) && local.time() >= self.at).then_some(day)
    }
}

/// `reminders.escalation`: tasks overdue longer than `after` go to a supervisor.
#[derive(Debug, Clone, PartialEq)]
pub struct Escalation {
    /// How long past due a task is before it is escalated, in seconds.
    pub after: i64,
    /// Who gets it: `manager:ID` or `role:NAME`.
    pub to: Candidate,
    /// Where it is written.
    pub location: Location,
}

/// A manager as [`Escalation::recipient`] sees them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Supervisor<'a> {
    /// The external id.
    pub id: &'a str,
    /// The role.
    pub role: Option<&'a str>,
    /// Active and not on leave at the time.
    pub available: bool,
}

impl Escalation {
    /// Who an overdue task of `assignee` is escalated to among `managers` (sorted by id): the
    /// named manager; or, for a role, the first available manager of the role other than the
    /// assignee. `None`: nobody (the task stays unescalated, and is tried again later).
    #[must_use]
    pub fn recipient<'a>(&self, assignee: &str, managers: &[Supervisor<'a>]) -> Option<&'a str> {
        match &self.to {
            Candidate::Manager(id) => managers
                .iter()
                .find(|m| m.id == id && m.id != assignee)
                .map(|m| m.id),
            Candidate::Role(role) => managers
                .iter()
                .find(|m| m.available && m.role == Some(role.as_str()) && m.id != assignee)
                .map(|m| m.id),
        }
    }
}

/// The `reminders:` section; empty when no file has one.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reminders {
    /// The daily digest, if configured.
    pub digest: Option<Digest>,
    /// The escalation, if configured.
    pub escalation: Option<Escalation>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn location() -> Location {
        Location {
            path: "rules/managers.yaml".into(),
            line: 1,
            column: 1,
        }
    }

    #[test]
    fn a_digest_is_due_on_working_days_from_its_time() {
        let digest = Digest {
            at: NaiveTime::from_hms_opt(8, 0, 0).unwrap(),
            days: vec![Weekday::Mon, Weekday::Fri],
            sections: DigestSection::ALL.to_vec(),
            template: "manager-digest".into(),
            uncontacted: Vec::new(),
            location: location(),
        };
        let monday = NaiveDate::from_ymd_opt(2026, 12, 7).unwrap();
        let at = |day: NaiveDate, h: u32, m: u32| day.and_hms_opt(h, m, 0).unwrap();
        assert_eq!(digest.due_on(at(monday, 7, 59)), None);
        assert_eq!(digest.due_on(at(monday, 8, 0)), Some(monday));
        assert_eq!(digest.due_on(at(monday, 23, 0)), Some(monday));
        let tuesday = monday.succ_opt().unwrap();
        assert_eq!(digest.due_on(at(tuesday, 9, 0)), None);
    }

    #[test]
    fn an_escalation_goes_to_the_named_manager_or_an_available_one_of_the_role() {
        let managers = [
            Supervisor {
                id: "ann",
                role: Some("senior"),
                available: false,
            },
            Supervisor {
                id: "bob",
                role: Some("senior"),
                available: true,
            },
            Supervisor {
                id: "cy",
                role: Some("junior"),
                available: true,
            },
        ];
        let role = Escalation {
            after: 86_400,
            to: Candidate::Role("senior".into()),
            location: location(),
        };
        assert_eq!(role.recipient("cy", &managers), Some("bob"));
        assert_eq!(role.recipient("bob", &managers), None);
        let named = Escalation {
            to: Candidate::Manager("ann".into()),
            ..role
        };
        assert_eq!(named.recipient("cy", &managers), Some("ann"));
        assert_eq!(named.recipient("ann", &managers), None);
    }
}
