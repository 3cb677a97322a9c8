//! Follow-up rules and the contact policy, as validated: triggers, actions, re-entry, caps, gaps
//! and send windows. [`crate::load::followups`] builds them from the rule files (the format is
//! documented there and in `rules/README.md`); [`crate::planning::plan`] turns them into planned
//! actions for one customer.

use std::fmt;

use chrono::{NaiveTime, Weekday};
use chrono_tz::Tz;
use serde::Serialize;

use crate::script::expression::Expression;
use crate::text::location::Location;
use crate::text::yaml::PathSeg;

pub use tiercare_types::Channel;

/// One follow-up rule, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct FollowUpRule {
    /// The rule's id, unique in the rule set (part of every occurrence key).
    pub id: String,
    /// A label for people, if any.
    pub label: Option<String>,
    /// A description, if any.
    pub description: Option<String>,
    /// The tiers it applies to (the customer's current tier); empty: every tier, and customers
    /// without one.
    pub tiers: Vec<String>,
    /// Segments the customer must be in, as `(set, segment)`; all must hold.
    pub segments: Vec<(String, String)>,
    /// What makes it fire.
    pub trigger: Trigger,
    /// The optional condition's source.
    pub when: Option<String>,
    /// A fixed time zone for the trigger, instead of the customer's.
    pub timezone: Option<Tz>,
    /// Whether it may fire again for the same customer.
    pub re_entry: ReEntry,
    /// `max_delay`: seconds after its scheduled time after which an unsent email of this rule
    /// is cancelled as stale; `None`: the trigger kind's default ([`Trigger::default_max_delay`]).
    pub max_delay: Option<i64>,
    /// What it does.
    pub action: Action,
    /// Where the rule's `id` is.
    pub location: Location,
}

/// Where a cadence counts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CadenceFrom {
    /// From the last occurrence of this rule for the customer (the default).
    LastFired,
    /// From the last contact with the customer (an interaction, or an email sent or planned).
    LastContact,
}

/// What makes a follow-up rule fire.
#[derive(Debug, Clone, PartialEq)]
pub enum Trigger {
    /// A cadence per customer: `every: 30d`.
    Every {
        /// The period, in seconds.
        period: i64,
        /// What it counts from.
        from: CadenceFrom,
    },
    /// A cron schedule on the customer's wall clock (else the workspace's).
    Cron(crate::care::schedule::Schedule),
    /// An event in the customer's life.
    Event(Event),
}

impl Trigger {
    /// How long after its scheduled time an unsent email of a rule with this trigger stays
    /// worth sending when the rule sets no `max_delay`: a birthday or an anniversary 1 day (a
    /// greeting days late is worse than none), other events 3 days (a tier change, a segment, a
    /// complaint, feedback), `no_order`/`no_contact` 7 days, cadences and cron schedules 7 days.
    #[must_use]
    pub fn default_max_delay(&self) -> i64 {
        const DAY: i64 = 86_400;
        match self {
            Trigger::Event(Event::Birthday { .. } | Event::Anniversary { .. }) => DAY,
            Trigger::Event(Event::NoOrder { .. } | Event::NoContact { .. })
            | Trigger::Every { .. }
            | Trigger::Cron(_) => 7 * DAY,
            Trigger::Event(_) => 3 * DAY,
        }
    }
}

impl FollowUpRule {
    /// The rule's `max_delay`, or its trigger's default ([`Trigger::default_max_delay`]).
    #[must_use]
    pub fn max_delay(&self) -> i64 {
        self.max_delay
            .unwrap_or_else(|| self.trigger.default_max_delay())
    }
}

/// The events a rule can fire on (`on:`).
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The customer's tier changed to one of the rule's tiers (any tier when none are listed).
    TierEntered,
    /// The customer moved to a higher tier (not a first assignment).
    TierUp,
    /// The customer moved to a lower tier, or lost their tier.
    TierDown,
    /// The customer entered segment `segment` of set `set`.
    SegmentEntered {
        /// The segment set.
        set: String,
        /// The segment.
        segment: String,
    },
    /// `after` seconds have passed since the last order (never-ordered customers: never).
    NoOrder {
        /// Seconds.
        after: i64,
    },
    /// `after` seconds have passed since the last contact (never-contacted customers: never).
    NoContact {
        /// Seconds.
        after: i64,
    },
    /// The customer's birthday, at `time` on their wall clock; 29 February fires on 28 February
    /// in other years.
    Birthday {
        /// Wall-clock time of day.
        time: NaiveTime,
    },
    /// Each anniversary of the first order's local date, at `time`; 29 February as birthdays.
    Anniversary {
        /// Wall-clock time of day.
        time: NaiveTime,
    },
    /// A new complaint was opened.
    Complaint,
    /// A feedback score below `below` was given.
    LowSatisfaction {
        /// The threshold (exclusive).
        below: f64,
    },
}

/// Whether a rule may fire again for a customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReEntry {
    /// Every occurrence (the default).
    EveryTime,
    /// Only if the rule never fired for the customer.
    Once,
    /// Only if it did not fire within this many seconds before.
    OncePer(i64),
}

/// Who a task is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "name")]
pub enum Assignee {
    /// The customer's account manager.
    Owner,
    /// Someone with a role (`role:senior`), chosen by the scheduler.
    Role(String),
    /// A named manager (`manager:alice`).
    Manager(String),
}

impl fmt::Display for Assignee {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Assignee::Owner => f.write_str("owner"),
            Assignee::Role(role) => write!(f, "role:{role}"),
            Assignee::Manager(name) => write!(f, "manager:{name}"),
        }
    }
}

/// Whether `channel` is e-mail (the default channel, left out of a survey's serialized form).
fn is_email(channel: &Channel) -> bool {
    *channel == Channel::Email
}

/// What a follow-up does.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Action {
    /// An email to the customer from a template.
    Email {
        /// The template's name.
        template: String,
        /// The coupon pool ([`crate::care::incentive::CouponPool`]) whose code the e-mail
        /// carries, issued once per customer.
        #[serde(skip_serializing_if = "Option::is_none")]
        coupon: Option<String>,
    },
    /// An SMS to the customer from a template (`NAME.sms.j2`).
    Sms {
        /// The template's name.
        template: String,
    },
    /// A task for a person. `title` is a template (`{{ customer.name }}`) the scheduler fills.
    Task {
        /// Who does it.
        assignee: Assignee,
        /// The title, unrendered.
        title: String,
        /// Due this many seconds after the occurrence, if given.
        due: Option<i64>,
    },
    /// A one-question survey sent to the customer from a template, whose context has
    /// `survey.question` and `survey.links` (one signed link per score) or, by SMS,
    /// `survey.link` (one signed link to a page that asks for the score).
    Survey {
        /// The template's name (an e-mail template; by SMS, `NAME.sms.j2`).
        template: String,
        /// What it asks.
        survey: tiercare_types::Survey,
        /// How it is sent (`channel: sms` in the rules; e-mail by default).
        #[serde(skip_serializing_if = "is_email")]
        channel: Channel,
    },
    /// An email to the customer's account manager from a template.
    NotifyOwner {
        /// The template's name.
        template: String,
    },
    /// Set custom attributes of the customer.
    Set {
        /// Attribute names and values.
        attributes: serde_json::Map<String, serde_json::Value>,
    },
    /// Add a tag to the customer.
    Tag {
        /// The tag.
        tag: String,
    },
    /// Points the customer earns (`points: { earn: EXPR, expires: 365d }`), booked in the
    /// points ledger.
    Points {
        /// The expression of the amount, over the customer's features (`revenue_window * 0.01`).
        earn: String,
        /// Seconds after which the points expire, if they do.
        expires: Option<i64>,
        /// The amount as evaluated for one customer when planned (0 in the rule itself).
        amount: f64,
    },
}

impl Action {
    /// Whether this action contacts the customer (and so is subject to consent, caps, minimum
    /// gap and send window): emails (surveys included) and SMS to the customer.
    #[must_use]
    pub fn contacts_customer(&self) -> bool {
        matches!(
            self,
            Action::Email { .. } | Action::Survey { .. } | Action::Sms { .. }
        )
    }

    /// The channel of a message to the customer: `Some(Channel::Email)`, `Some(Channel::Sms)`,
    /// or `None` for an action that sends the customer nothing.
    #[must_use]
    pub fn channel(&self) -> Option<Channel> {
        match self {
            Action::Email { .. } => Some(Channel::Email),
            Action::Survey { channel, .. } => Some(*channel),
            Action::Sms { .. } => Some(Channel::Sms),
            _ => None,
        }
    }

    /// One line for `plan` output: `email care`, `task for owner: Monthly review`.
    #[must_use]
    pub fn describe(&self) -> String {
        match self {
            Action::Email {
                template,
                coupon: None,
            } => format!("email `{template}`"),
            Action::Email {
                template,
                coupon: Some(pool),
            } => format!("email `{template}` with a coupon of `{pool}`"),
            Action::Survey {
                template,
                survey,
                channel,
            } => format!(
                "survey `{}` ({}) by {channel} `{template}`",
                survey.id,
                survey.kind.as_str()
            ),
            Action::Sms { template } => format!("sms `{template}`"),
            Action::Task {
                assignee, title, ..
            } => format!("task for {assignee}: {title}"),
            Action::NotifyOwner { template } => format!("notify owner `{template}`"),
            Action::Set { attributes } => format!(
                "set {}",
                attributes
                    .iter()
                    .map(|(name, value)| format!("{name} = {value}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Action::Tag { tag } => format!("tag `{tag}`"),
            Action::Points { earn, amount, .. } if *amount == 0.0 => {
                format!("points: earn {earn}")
            }
            Action::Points { amount, .. } => format!("points: earn {amount}"),
        }
    }
}

/// Emails to one customer per local calendar day, ISO week (Monday first) and month.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Caps {
    /// Per day.
    pub day: Option<u32>,
    /// Per week.
    pub week: Option<u32>,
    /// Per month.
    pub month: Option<u32>,
}

/// When emails may go out, on the customer's wall clock: `[start, end)` on the listed days.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendWindow {
    /// First allowed time of day.
    pub start: NaiveTime,
    /// End of the allowed time (exclusive), after `start`.
    pub end: NaiveTime,
    /// Allowed days (Monday first); all seven by default.
    pub days: Vec<Weekday>,
}

impl SendWindow {
    /// Whether `day` is allowed.
    #[must_use]
    pub fn allows_day(&self, day: Weekday) -> bool {
        self.days.contains(&day)
    }
}

/// The contact policy for one tier (or the default).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TierPolicy {
    /// Email caps.
    pub caps: Caps,
    /// Minimum seconds between two emails to the customer.
    pub min_gap: Option<i64>,
    /// When emails may go out.
    pub send_window: Option<SendWindow>,
    /// SMS caps (`sms_caps:`), counted on the SMS alone; `None`: the same values as `caps`
    /// (still counted apart from the emails).
    pub sms_caps: Option<Caps>,
}

impl TierPolicy {
    /// The policy for a message on `channel`: an SMS takes `sms_caps` when set. The minimum
    /// gap and the send window are the same for every channel, each counted on its own
    /// channel's messages.
    #[must_use]
    pub fn for_channel(&self, channel: Channel) -> TierPolicy {
        match (channel, self.sms_caps) {
            (Channel::Sms, Some(caps)) => TierPolicy {
                caps,
                ..self.clone()
            },
            _ => self.clone(),
        }
    }
}

/// `contact_policy:`: the default and per-tier overrides (each key of a tier's override replaces
/// the default's; caps per period).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContactPolicy {
    /// For customers whose tier has no override.
    pub default: TierPolicy,
    /// Per-tier policies, already merged with the default.
    pub tiers: Vec<(String, TierPolicy)>,
}

impl ContactPolicy {
    /// The policy for a customer in `tier`.
    #[must_use]
    pub fn for_tier(&self, tier: Option<&str>) -> &TierPolicy {
        tier.and_then(|tier| self.tiers.iter().find(|(id, _)| id == tier))
            .map_or(&self.default, |(_, policy)| policy)
    }
}

/// A follow-up rule, compiled.
#[derive(Debug)]
pub(crate) struct CompiledFollowUp {
    pub(crate) rule: FollowUpRule,
    pub(crate) when: Option<Expression>,
    /// A `points` action's amount, compiled.
    pub(crate) earn: Option<Expression>,
    /// The rule's source file and place (`followups[i]`).
    pub(crate) file: usize,
    pub(crate) path: Vec<PathSeg>,
}
