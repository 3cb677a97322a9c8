//! The managers' digest template: its context ([`DigestContext`], [`DIGEST_SCHEMA`]), its
//! check and its rendering.
//!
//! A digest template is a file `NAME.digest.j2` of the template folder, in the same form as a
//! one-file care template (`subject:`, `--- text`, optionally `--- html`), checked the same way
//! ([`crate::care::template`]'s machinery: every variable against the schema at
//! `path:line:col`, then a rendering against a sample digest) but against the digest's own
//! context: the manager, the day and the lists of tasks and customers.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::care::template::{
    LoadedTemplates, RenderError, RenderedTemplate, Shape, TemplateFile, Templates, load_checked,
};

/// The file name ending of a digest template.
pub const DIGEST_SUFFIX: &str = ".digest.j2";

/// Everything a digest template can read.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DigestContext {
    /// The manager it goes to.
    pub manager: DigestManager,
    /// The day in the manager's zone, `YYYY-MM-DD`.
    pub today: String,
    /// Who sends it (`[mail] from`).
    pub sender: DigestSender,
    /// Tasks due today, not done.
    pub tasks_today: Vec<DigestTask>,
    /// Tasks past due, not done (most overdue first).
    pub overdue: Vec<DigestTask>,
    /// Their customers without contact for longer than their tier's rhythm.
    pub uncontacted: Vec<DigestCustomer>,
    /// Customers newly theirs since the last digest.
    pub assigned: Vec<DigestCustomer>,
    /// Their customers about to go back to the public pool.
    pub reclaim: Vec<DigestCustomer>,
    /// Other managers' tasks escalated to them.
    pub escalated: Vec<DigestTask>,
}

/// `manager.*`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DigestManager {
    /// The manager id.
    pub id: String,
    /// Their name.
    pub name: String,
    /// Their IANA zone (the workspace's when they have none).
    pub timezone: String,
}

/// `sender.*`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DigestSender {
    /// The display name, `""` when none.
    pub name: String,
    /// The address.
    pub email: String,
}

/// One task of a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DigestTask {
    /// The task id (`tiercare tasks done ID`).
    pub id: i64,
    /// What to do.
    pub title: String,
    /// The customer's id.
    pub customer_id: String,
    /// The customer's name (`""` when none).
    pub customer_name: String,
    /// Who it is assigned to.
    pub assignee: String,
    /// When it is due, `YYYY-MM-DD HH:MM` in the manager's zone.
    pub due: String,
    /// Whole days past due (0 when not overdue).
    pub days_overdue: i64,
}

/// One customer of a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DigestCustomer {
    /// The customer's id.
    pub id: String,
    /// Their name (`""` when none).
    pub name: String,
    /// Their tier (`""` when not assessed).
    pub tier: String,
    /// What to know, in a few words (`no contact for 45 days`, `reclaimed on 2026-12-09`).
    pub note: String,
}

/// A task's fields: what every task of a list carries (a test keeps it equal to
/// [`DigestTask`]).
#[cfg(test)]
const TASK: Shape = Shape::Fields(&[
    ("id", Shape::Leaf),
    ("title", Shape::Leaf),
    ("customer_id", Shape::Leaf),
    ("customer_name", Shape::Leaf),
    ("assignee", Shape::Leaf),
    ("due", Shape::Leaf),
    ("days_overdue", Shape::Leaf),
]);

/// The digest context's variables and their shapes: what `check` accepts. The lists are open
/// (a loop variable's fields are checked when rendering the sample).
pub const DIGEST_SCHEMA: &[(&str, Shape)] = &[
    (
        "manager",
        Shape::Fields(&[
            ("id", Shape::Leaf),
            ("name", Shape::Leaf),
            ("timezone", Shape::Leaf),
        ]),
    ),
    ("today", Shape::Leaf),
    (
        "sender",
        Shape::Fields(&[("name", Shape::Leaf), ("email", Shape::Leaf)]),
    ),
    ("tasks_today", Shape::Open),
    ("overdue", Shape::Open),
    ("uncontacted", Shape::Open),
    ("assigned", Shape::Open),
    ("reclaim", Shape::Open),
    ("escalated", Shape::Open),
];

/// Checks one attribute path against [`DIGEST_SCHEMA`].
fn check_digest_path(path: &str) -> Result<(), (String, Vec<&'static str>)> {
    let mut segments = path.split('.');
    let first = segments.next().unwrap_or_default();
    let Some(&(_, mut shape)) = DIGEST_SCHEMA.iter().find(|(name, _)| *name == first) else {
        return Err((
            first.to_owned(),
            DIGEST_SCHEMA.iter().map(|(name, _)| *name).collect(),
        ));
    };
    let mut walked = first.to_owned();
    for segment in segments {
        shape = match shape {
            Shape::Open | Shape::Features => return Ok(()),
            Shape::Leaf => return Err((format!("{walked}.{segment}"), Vec::new())),
            Shape::Fields(fields) => match fields.iter().find(|(name, _)| *name == segment) {
                Some((_, shape)) => *shape,
                None => {
                    return Err((
                        format!("{walked}.{segment}"),
                        fields.iter().map(|(name, _)| *name).collect(),
                    ));
                }
            },
        };
        walked.push('.');
        walked.push_str(segment);
    }
    Ok(())
}

impl DigestContext {
    /// A digest with one item in every list: `check` renders every digest template against it.
    #[must_use]
    pub fn sample() -> DigestContext {
        let task = |id: i64, days_overdue: i64| DigestTask {
            id,
            title: "Monthly review with Ada Lovelace".to_owned(),
            customer_id: "C0000001".to_owned(),
            customer_name: "Ada Lovelace".to_owned(),
            assignee: "alice".to_owned(),
            due: "2026-01-15 09:00".to_owned(),
            days_overdue,
        };
        let customer = |note: &str| DigestCustomer {
            id: "C0000002".to_owned(),
            name: "Grace Hopper".to_owned(),
            tier: "A".to_owned(),
            note: note.to_owned(),
        };
        DigestContext {
            manager: DigestManager {
                id: "alice".to_owned(),
                name: "Alice Chen".to_owned(),
                timezone: "Asia/Shanghai".to_owned(),
            },
            today: "2026-01-15".to_owned(),
            sender: DigestSender {
                name: "Customer Care".to_owned(),
                email: "care@example.com".to_owned(),
            },
            tasks_today: vec![task(1, 0)],
            overdue: vec![task(2, 3)],
            uncontacted: vec![customer("no contact for 45 days")],
            assigned: vec![customer("assigned on 2026-01-14")],
            reclaim: vec![customer("goes back to the pool on 2026-01-18")],
            escalated: vec![task(3, 6)],
        }
    }

    /// Whether every list is empty: such a digest is not sent.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.tasks_today.is_empty()
            && self.overdue.is_empty()
            && self.uncontacted.is_empty()
            && self.assigned.is_empty()
            && self.reclaim.is_empty()
            && self.escalated.is_empty()
    }
}

/// Loads and checks the digest templates among `files` (those named `NAME.digest.j2`; others
/// are ignored): each is checked against [`DIGEST_SCHEMA`] and rendered for
/// [`DigestContext::sample`]; every problem at `path:line:col`.
#[must_use]
pub fn load_digest_templates(files: &[TemplateFile]) -> LoadedTemplates {
    let mut found: BTreeMap<String, Vec<(&'static str, &TemplateFile)>> = BTreeMap::new();
    for file in files {
        let file_name = file.path.rsplit(['/', '\\']).next().unwrap_or(&file.path);
        if let Some(name) = file_name.strip_suffix(DIGEST_SUFFIX) {
            // The one-file form of care templates.
            found
                .entry(name.to_owned())
                .or_default()
                .push((".eml.j2", file));
        }
    }
    let sample = minijinja::Value::from(minijinja::value::Serde(DigestContext::sample()));
    load_checked(
        &found,
        check_digest_path,
        Some(&sample),
        "found by rendering the digest for a sample manager; see templates/README.md for the variables",
    )
}

/// Renders the digest template `name` for `context`.
///
/// # Errors
/// [`RenderError`]: an unknown template, or a rendering error at `path:line:col`.
pub fn render_digest(
    templates: &Templates,
    name: &str,
    context: &DigestContext,
) -> Result<RenderedTemplate, RenderError> {
    templates.render_serialized(name, context)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "subject: {{ overdue | length }} overdue, {{ tasks_today | length }} today\n\
        --- text\nHello {{ manager.name }},\n{% for t in overdue %}- {{ t.title }} ({{ t.days_overdue }} days)\n{% endfor %}";

    #[test]
    fn a_digest_template_renders_its_lists() {
        let loaded = load_digest_templates(&[TemplateFile::new("templates/d.digest.j2", GOOD)]);
        assert!(loaded.diagnostics.is_empty(), "{:?}", loaded.diagnostics);
        let rendered = render_digest(&loaded.templates, "d", &DigestContext::sample()).unwrap();
        assert_eq!(rendered.subject, "1 overdue, 1 today");
        assert!(
            rendered
                .text
                .contains("- Monthly review with Ada Lovelace (3 days)")
        );
    }

    #[test]
    fn a_digest_template_is_checked_against_its_own_context() {
        let text = "subject: hi\n--- text\n{{ manager.nmae }} {{ customer.name }}\n{% for t in overdue %}{{ t.titel }}{% endfor %}";
        let loaded = load_digest_templates(&[
            TemplateFile::new("templates/d.digest.j2", text),
            TemplateFile::new("templates/care.eml.j2", "not a digest"),
        ]);
        let messages: Vec<String> = loaded.diagnostics.iter().map(ToString::to_string).collect();
        let all = messages.join("\n");
        assert!(all.contains("templates/d.digest.j2:3:"), "{all}");
        assert!(all.contains("undefined variable `manager.nmae`"), "{all}");
        assert!(all.contains("undefined variable `customer`"), "{all}");
        assert!(!loaded.templates.contains("d"));
        assert!(!loaded.templates.contains("care"));
    }

    #[test]
    fn the_sample_renders_every_field_of_the_task_shape() {
        let Shape::Fields(fields) = TASK else {
            panic!("a task is an object")
        };
        let sample = serde_json::to_value(DigestContext::sample().overdue[0].clone()).unwrap();
        let keys: Vec<&str> = sample
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut names: Vec<&str> = fields.iter().map(|(name, _)| *name).collect();
        names.sort_unstable();
        assert_eq!(keys, names);
    }
}
