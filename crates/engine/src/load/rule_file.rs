//! The raw shape of rule files (`rules/*.yaml`) and rule-test files (`rules/tests/*.yaml`), as
//! serde reads them: every key of the YAML, nothing validated yet. [`crate::load::rules`] validates a
//! rule file into a compiled [`crate::RuleSet`]; [`crate::load::ruletest`] reads test files;
//! [`crate::load::json_schema`] describes the same keys for editors (a test keeps them equal).

use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};

/// A mapping's entries in file order (duplicates are refused earlier, by [`crate::text::yaml`]).
#[derive(Debug)]
pub(crate) struct Ordered<V>(pub(crate) Vec<(String, V)>);

impl<V> Default for Ordered<V> {
    fn default() -> Self {
        Ordered(Vec::new())
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for Ordered<V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct OrderedVisitor<V>(PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for OrderedVisitor<V> {
            type Value = Ordered<V>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping of `name: value` lines")
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
                Ok(Ordered(Vec::new()))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry::<String, V>()? {
                    entries.push(entry);
                }
                Ok(Ordered(entries))
            }
        }
        deserializer.deserialize_any(OrderedVisitor(PhantomData))
    }
}

/// A scalar read as its text: `when: true`, `id: 1` and `potential: 50` are scripts and ids
/// written without quotes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Scalar(pub(crate) String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ScalarVisitor;
        impl Visitor<'_> for ScalarVisitor {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string, number or boolean")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar(v.to_owned()))
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar(format!("{v:?}")))
            }
        }
        deserializer.deserialize_any(ScalarVisitor)
    }
}

/// One rule file. Every key is optional; exactly one file of a rule set has `tiering`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRuleFile {
    pub(crate) tiering: Option<RawTiering>,
    #[serde(default)]
    pub(crate) scores: Ordered<Scalar>,
    #[serde(default)]
    pub(crate) segments: Ordered<Vec<RawRule>>,
    pub(crate) contact_policy: Option<RawContactPolicy>,
    #[serde(default)]
    pub(crate) followups: Vec<RawFollowUp>,
    pub(crate) assignment: Option<Ordered<RawAssignees>>,
    pub(crate) reminders: Option<RawReminders>,
    pub(crate) pool: Option<RawPool>,
    #[serde(default)]
    pub(crate) coupons: Ordered<RawCouponPool>,
}

/// `reminders:` the managers' daily digest and the escalation of overdue tasks.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawReminders {
    pub(crate) digest: Option<RawDigest>,
    pub(crate) escalation: Option<RawEscalation>,
}

/// `reminders.digest:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDigest {
    pub(crate) at: Option<Scalar>,
    pub(crate) days: Option<Vec<Scalar>>,
    pub(crate) sections: Option<Vec<Scalar>>,
    pub(crate) template: Option<Scalar>,
    pub(crate) uncontacted: Option<Ordered<Scalar>>,
}

/// `reminders.escalation:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawEscalation {
    pub(crate) after: Scalar,
    pub(crate) to: Scalar,
}

/// `pool:` the public pool's reclaim rules (at most one file has it).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPool {
    pub(crate) warn_before: Option<Scalar>,
    pub(crate) warn_task: Option<Scalar>,
    pub(crate) no_return: Option<Scalar>,
    pub(crate) claims_per_day: Option<Scalar>,
    pub(crate) protect: Option<RawPoolProtect>,
    #[serde(default)]
    pub(crate) tiers: Ordered<RawTierReclaim>,
}

/// `pool.protect:` customers never reclaimed.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPoolProtect {
    pub(crate) pinned: Option<Scalar>,
    pub(crate) attribute: Option<Scalar>,
}

/// `pool.tiers.<tier>:` when the tier's customers go back to the pool.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTierReclaim {
    pub(crate) no_followup: Option<Scalar>,
    pub(crate) no_order: Option<Scalar>,
    pub(crate) warn_before: Option<Scalar>,
}

/// `coupons.<pool>:` one coupon pool.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCouponPool {
    pub(crate) pattern: Option<Scalar>,
    pub(crate) value: Option<String>,
    pub(crate) description: Option<String>,
    pub(crate) expires: Option<Scalar>,
    pub(crate) warn_below: Option<Scalar>,
}

/// `assignment.<tier>:` one entry (`nobody`, `role:senior`) or a list of them.
#[derive(Debug)]
pub(crate) enum RawAssignees {
    One(Scalar),
    Many(Vec<Scalar>),
}

impl<'de> Deserialize<'de> for RawAssignees {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct AssigneesVisitor;
        impl<'de> Visitor<'de> for AssigneesVisitor {
            type Value = RawAssignees;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("`nobody`, `role:NAME`, `manager:ID` or a list of them")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(RawAssignees::One(Scalar(v.to_owned())))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                let mut list = Vec::new();
                while let Some(item) = seq.next_element::<Scalar>()? {
                    list.push(item);
                }
                Ok(RawAssignees::Many(list))
            }
        }
        deserializer.deserialize_any(AssigneesVisitor)
    }
}

/// A value written either as a short scalar (`every: 30d`) or as a mapping with more keys
/// (`every: { period: 30d, from: last_contact }`).
#[derive(Debug)]
pub(crate) enum Short<T> {
    Text(Scalar),
    Full(T),
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Short<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ShortVisitor<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for ShortVisitor<T> {
            type Value = Short<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a value or a mapping")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Short::Text(Scalar(v.to_owned())))
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(Short::Text(Scalar(v.to_string())))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Short::Text(Scalar(v.to_string())))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Short::Text(Scalar(v.to_string())))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(Short::Text(Scalar(format!("{v:?}"))))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(Short::Full)
            }
        }
        deserializer.deserialize_any(ShortVisitor(PhantomData))
    }
}

/// `contact_policy:` (at most one file has it).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawContactPolicy {
    pub(crate) caps: Option<RawCaps>,
    pub(crate) sms_caps: Option<RawCaps>,
    pub(crate) min_gap: Option<Scalar>,
    pub(crate) send_window: Option<RawSendWindow>,
    #[serde(default)]
    pub(crate) tiers: Ordered<RawTierPolicy>,
}

/// `contact_policy.tiers.<tier>:` what differs for one tier.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTierPolicy {
    pub(crate) caps: Option<RawCaps>,
    pub(crate) sms_caps: Option<RawCaps>,
    pub(crate) min_gap: Option<Scalar>,
    pub(crate) send_window: Option<RawSendWindow>,
}

/// `caps:` emails per customer per local day, week and month.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCaps {
    pub(crate) day: Option<Scalar>,
    pub(crate) week: Option<Scalar>,
    pub(crate) month: Option<Scalar>,
}

/// `send_window:` when emails may go out, on the customer's wall clock.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSendWindow {
    pub(crate) hours: Option<Scalar>,
    pub(crate) days: Option<Vec<Scalar>>,
}

/// One follow-up rule.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFollowUp {
    pub(crate) id: Scalar,
    pub(crate) label: Option<String>,
    pub(crate) description: Option<String>,
    pub(crate) tiers: Option<Vec<Scalar>>,
    #[serde(default)]
    pub(crate) segments: Ordered<Scalar>,
    pub(crate) every: Option<Short<RawEvery>>,
    pub(crate) cron: Option<Scalar>,
    pub(crate) on: Option<Short<RawOn>>,
    pub(crate) timezone: Option<Scalar>,
    pub(crate) when: Option<Scalar>,
    pub(crate) re_entry: Option<Short<RawReEntry>>,
    pub(crate) max_delay: Option<Scalar>,
    pub(crate) email: Option<RawTemplate>,
    pub(crate) task: Option<RawTask>,
    pub(crate) notify_owner: Option<RawTemplate>,
    pub(crate) survey: Option<RawSurvey>,
    pub(crate) sms: Option<RawTemplate>,
    pub(crate) set: Option<Ordered<serde_yaml::Value>>,
    pub(crate) tag: Option<Scalar>,
    pub(crate) points: Option<RawPoints>,
}

/// `points: { earn: "revenue_window * 0.01", expires: 365d }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPoints {
    pub(crate) earn: Scalar,
    pub(crate) expires: Option<Scalar>,
}

/// `every: { period: 30d, from: last_fired }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawEvery {
    pub(crate) period: Scalar,
    pub(crate) from: Option<Scalar>,
}

/// `on: { event: no_order, after: 120d }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawOn {
    pub(crate) event: Scalar,
    pub(crate) after: Option<Scalar>,
    pub(crate) below: Option<Scalar>,
    pub(crate) set: Option<Scalar>,
    pub(crate) segment: Option<Scalar>,
    pub(crate) time: Option<Scalar>,
}

/// `re_entry: { once_per: 90d }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawReEntry {
    pub(crate) once_per: Scalar,
}

/// `email:` / `notify_owner:` / `sms:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTemplate {
    pub(crate) template: Scalar,
    /// `email:` only: the coupon pool whose code the e-mail carries.
    pub(crate) coupon: Option<Scalar>,
}

/// `survey: { template: survey, kind: nps, question: "...", id: quarterly }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSurvey {
    pub(crate) template: Scalar,
    pub(crate) kind: Scalar,
    pub(crate) question: String,
    pub(crate) id: Scalar,
    /// `email` (the default) or `sms`.
    pub(crate) channel: Option<Scalar>,
}

/// `task:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTask {
    pub(crate) assignee: Scalar,
    pub(crate) title: String,
    pub(crate) due: Option<Scalar>,
}

/// `tiering:`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTiering {
    pub(crate) window: Scalar,
    pub(crate) reassess: Option<Scalar>,
    pub(crate) tiers: Vec<RawRule>,
    pub(crate) hysteresis: Option<RawHysteresis>,
}

/// One tier, or one segment of a segment set.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRule {
    pub(crate) id: Scalar,
    pub(crate) label: Option<String>,
    pub(crate) description: Option<String>,
    pub(crate) when: Scalar,
}

/// `tiering.hysteresis:`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHysteresis {
    pub(crate) downgrade_after: Scalar,
}

/// One rule-test file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTestFile {
    pub(crate) tests: Vec<RawTestCase>,
}

/// One test case.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTestCase {
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) customer: Ordered<serde_yaml::Value>,
    pub(crate) pin: Option<RawPin>,
    pub(crate) state: Option<RawState>,
    pub(crate) plan: Option<RawPlan>,
    pub(crate) expect: RawExpect,
}

/// `state:` of a test case: what the ledger knows about the customer.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawState {
    pub(crate) tier: Option<Scalar>,
    #[serde(default)]
    pub(crate) segments: Ordered<Scalar>,
    #[serde(default)]
    pub(crate) last_fired: Ordered<Scalar>,
    #[serde(default)]
    pub(crate) contacts: Vec<Scalar>,
    #[serde(default)]
    pub(crate) events: Vec<RawEvent>,
}

/// One event of `state.events`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawEvent {
    pub(crate) at: Scalar,
    pub(crate) event: Scalar,
    pub(crate) set: Option<Scalar>,
    pub(crate) from: Option<Scalar>,
    pub(crate) to: Option<Scalar>,
    pub(crate) score: Option<f64>,
}

/// `plan:` of a test case: the range to plan.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPlan {
    pub(crate) from: Scalar,
    pub(crate) to: Scalar,
    pub(crate) timezone: Option<Scalar>,
}

/// One expected planned action.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPlanned {
    pub(crate) rule: Scalar,
    pub(crate) at: Scalar,
}

/// One expected skipped occurrence.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSkippedExpect {
    pub(crate) rule: Scalar,
    pub(crate) why: Scalar,
}

/// `pin:` of a test case.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPin {
    pub(crate) tier: Scalar,
    pub(crate) by: Option<String>,
    pub(crate) reason: Option<String>,
    pub(crate) until: Option<Scalar>,
}

/// `expect:` of a test case. `Some(None)` is an explicit `~` (expect none).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawExpect {
    #[serde(default, deserialize_with = "present")]
    pub(crate) tier: Option<Option<Scalar>>,
    #[serde(default, deserialize_with = "present")]
    pub(crate) rule_tier: Option<Option<Scalar>>,
    #[serde(default, deserialize_with = "present")]
    pub(crate) pending_tier: Option<Option<Scalar>>,
    pub(crate) pending_count: Option<u32>,
    pub(crate) pinned: Option<bool>,
    #[serde(default)]
    pub(crate) segments: Ordered<Option<Scalar>>,
    #[serde(default)]
    pub(crate) scores: Ordered<f64>,
    pub(crate) errors: Option<Vec<String>>,
    pub(crate) planned: Option<Vec<RawPlanned>>,
    pub(crate) skipped: Option<Vec<RawSkippedExpect>>,
}

/// A key that is present, even with a null value.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(deserializer).map(Some)
}
