//! A JSON Schema (draft 2020-12) of rule files and rule-test files, for editors
//! (`tiercare schema > rules/tiercare.schema.json`; YAML files point at it with
//! `# yaml-language-server: $schema=tiercare.schema.json`). It lists every key the engine
//! accepts (a test keeps it equal to the serde structures) and every feature a test customer
//! may set, so editors complete and check them.

use serde_json::{Map, Value, json};

use crate::customer::feature::{FeatureType, features};

/// The JSON Schema of rule files and rule-test files (one schema: a file is either).
#[must_use]
pub fn rules_json_schema() -> Value {
    let mut customer = Map::new();
    for spec in features() {
        let mut types: Vec<&str> = match spec.ty {
            FeatureType::Text => vec!["string"],
            FeatureType::Bool => vec!["boolean"],
            FeatureType::Int => vec!["integer"],
            FeatureType::Float => vec!["number"],
            FeatureType::Time => vec!["integer", "string"],
            FeatureType::Map => vec!["object"],
        };
        if spec.optional {
            types.push("null");
        }
        let unit = if spec.unit.is_empty() {
            String::new()
        } else {
            format!(" [{}]", spec.unit)
        };
        customer.insert(
            spec.name.to_owned(),
            json!({
                "type": types,
                "description": format!("{}{unit}", spec.meaning),
            }),
        );
    }
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "tiercare rules",
        "description": "A tiercare rule file (rules/*.yaml: tiering, scores, segments, contact_policy, followups) or rule-test file (rules/tests/*.yaml: tests).",
        "anyOf": [
            { "$ref": "#/$defs/ruleFile" },
            { "$ref": "#/$defs/testFile" }
        ],
        "$defs": {
            "expression": {
                "type": ["string", "boolean", "number"],
                "description": "A Rhai expression over the customer's features and the scores (or a `|` block whose last value is the result)."
            },
            "id": {
                "type": ["string", "integer"],
                "description": "An id: letters, digits, `_`, `-` and `.`."
            },
            "rule": {
                "type": "object",
                "additionalProperties": false,
                "required": ["id", "when"],
                "properties": {
                    "id": { "$ref": "#/$defs/id" },
                    "label": { "type": "string", "description": "A name for people (reports, explain)." },
                    "description": { "type": "string", "description": "What this tier or segment means." },
                    "when": {
                        "$ref": "#/$defs/expression",
                        "description": "The condition: must return true or false. The first rule of the list whose condition is true wins."
                    }
                }
            },
            "ruleFile": {
                "type": ["object", "null"],
                "additionalProperties": false,
                "properties": {
                    "tiering": { "$ref": "#/$defs/tiering" },
                    "scores": {
                        "type": ["object", "null"],
                        "description": "Numbers computed before tiers and segments, in order; each is a variable of every later expression.",
                        "additionalProperties": { "$ref": "#/$defs/expression" }
                    },
                    "segments": {
                        "type": ["object", "null"],
                        "description": "Named segment sets; in each, the first segment whose condition is true wins, or none.",
                        "additionalProperties": {
                            "type": "array",
                            "minItems": 1,
                            "items": { "$ref": "#/$defs/rule" }
                        }
                    },
                    "contact_policy": { "$ref": "#/$defs/contactPolicy" },
                    "assignment": {
                        "type": ["object", "null"],
                        "description": "Owners for customers who have none, per tier: `role:NAME` and `manager:ID` entries (balanced by spare capacity), or `nobody` (automation). One file has this section.",
                        "additionalProperties": {
                            "oneOf": [
                                { "$ref": "#/$defs/ownerCandidate" },
                                { "type": "array", "minItems": 1, "items": { "$ref": "#/$defs/ownerCandidate" } }
                            ]
                        }
                    },
                    "reminders": {
                        "type": ["object", "null"],
                        "additionalProperties": false,
                        "description": "Managers' reminders: a daily digest e-mail per manager and the escalation of overdue tasks. One file has this section.",
                        "properties": {
                            "digest": {
                                "type": ["object", "null"],
                                "additionalProperties": false,
                                "description": "One e-mail per manager per working day, through the outbox; an empty digest is not sent.",
                                "properties": {
                                    "at": { "type": "string", "description": "`HH:MM` in the manager's zone (their `timezone`, else the workspace's); default 08:00." },
                                    "days": {
                                        "type": "array",
                                        "description": "The working days; default Monday to Friday.",
                                        "items": { "type": "string", "enum": ["mon", "tue", "wed", "thu", "fri", "sat", "sun", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"] }
                                    },
                                    "sections": {
                                        "type": "array",
                                        "description": "What it lists; default all.",
                                        "items": { "type": "string", "enum": ["today", "overdue", "uncontacted", "assigned", "reclaim", "escalated"] }
                                    },
                                    "template": { "type": "string", "description": "The digest template, `templates/NAME.digest.j2`; default `manager-digest`." },
                                    "uncontacted": {
                                        "type": ["object", "null"],
                                        "description": "Per tier: how long a customer may go without contact before their owner's digest lists them.",
                                        "additionalProperties": { "$ref": "#/$defs/duration" }
                                    }
                                }
                            },
                            "escalation": {
                                "type": ["object", "null"],
                                "additionalProperties": false,
                                "required": ["after", "to"],
                                "description": "Tasks overdue longer than `after` go, once each, into the digest of `to`.",
                                "properties": {
                                    "after": { "$ref": "#/$defs/duration" },
                                    "to": { "type": "string", "pattern": "^(role:.+|manager:.+)$", "description": "`manager:ID` or `role:NAME` (the first available manager of the role)." }
                                }
                            }
                        }
                    },
                    "pool": { "$ref": "#/$defs/pool" },
                    "followups": {
                        "type": "array",
                        "description": "Follow-up rules: who is contacted when, and by whom.",
                        "items": { "$ref": "#/$defs/followup" }
                    },
                    "coupons": {
                        "type": ["object", "null"],
                        "description": "Coupon pools by name, for `email: { template: ..., coupon: POOL }`.",
                        "additionalProperties": { "$ref": "#/$defs/couponPool" }
                    }
                }
            },
            "duration": {
                "type": "string",
                "pattern": "^[0-9]+(s|m|h|d|w)$",
                "description": "A duration: `90m`, `12h`, `30d`, `2w`."
            },
            "caps": {
                "type": "object",
                "additionalProperties": false,
                "description": "The most emails one customer gets per local day, ISO week and month (at least 1).",
                "properties": {
                    "day": { "type": "integer", "minimum": 1 },
                    "week": { "type": "integer", "minimum": 1 },
                    "month": { "type": "integer", "minimum": 1 }
                }
            },
            "sendWindow": {
                "type": "object",
                "additionalProperties": false,
                "description": "When emails may go out, on the customer's clock; an email due outside it moves to the next allowed start.",
                "properties": {
                    "hours": { "type": "string", "description": "`HH:MM-HH:MM`, such as `09:00-18:00`." },
                    "days": {
                        "type": "array",
                        "items": { "type": "string", "enum": ["mon", "tue", "wed", "thu", "fri", "sat", "sun", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"] }
                    }
                }
            },
            "pool": {
                "type": "object",
                "additionalProperties": false,
                "description": "The public pool: owned customers without a follow-up by their owner (or an order) for a tier's period go back to the pool, after a warning (one file has this section).",
                "properties": {
                    "warn_before": { "$ref": "#/$defs/duration" },
                    "warn_task": { "type": "boolean", "description": "A warning also gives the owner a task, due when the customer would be reclaimed." },
                    "no_return": { "$ref": "#/$defs/duration" },
                    "claims_per_day": { "type": "integer", "minimum": 1, "description": "Customers one manager is given by assignment per day, at most." },
                    "protect": { "$ref": "#/$defs/poolProtect" },
                    "tiers": {
                        "type": ["object", "null"],
                        "description": "Tier id: when that tier's customers go back to the pool.",
                        "additionalProperties": { "$ref": "#/$defs/tierReclaim" }
                    }
                }
            },
            "poolProtect": {
                "type": "object",
                "additionalProperties": false,
                "description": "Customers never reclaimed: with an active tier pin (`pinned`, default true), or whose attribute is true.",
                "properties": {
                    "pinned": { "type": "boolean" },
                    "attribute": { "type": "string" }
                }
            },
            "tierReclaim": {
                "type": "object",
                "additionalProperties": false,
                "properties": {
                    "no_followup": { "$ref": "#/$defs/duration" },
                    "no_order": { "$ref": "#/$defs/duration" },
                    "warn_before": { "$ref": "#/$defs/duration" }
                }
            },
            "ownerCandidate": {
                "type": "string",
                "pattern": "^(nobody|role:.+|manager:.+)$",
                "description": "`role:NAME` (every active manager with the role), `manager:ID`, or `nobody`."
            },
            "tierPolicy": {
                "type": "object",
                "additionalProperties": false,
                "properties": {
                    "caps": { "$ref": "#/$defs/caps" },
                    "sms_caps": { "$ref": "#/$defs/caps", "description": "SMS per customer per local day, week and month (default: the same numbers as caps, counted on the SMS alone)." },
                    "min_gap": { "$ref": "#/$defs/duration" },
                    "send_window": { "$ref": "#/$defs/sendWindow" }
                }
            },
            "contactPolicy": {
                "type": "object",
                "additionalProperties": false,
                "description": "Caps, minimum gap and send window for emails to customers, with per-tier overrides (one file has this section).",
                "properties": {
                    "caps": { "$ref": "#/$defs/caps" },
                    "sms_caps": { "$ref": "#/$defs/caps", "description": "SMS per customer per local day, week and month (default: the same numbers as caps, counted on the SMS alone)." },
                    "min_gap": { "$ref": "#/$defs/duration" },
                    "send_window": { "$ref": "#/$defs/sendWindow" },
                    "tiers": {
                        "type": ["object", "null"],
                        "description": "Tier id: what differs for that tier.",
                        "additionalProperties": { "$ref": "#/$defs/tierPolicy" }
                    }
                }
            },
            "template": {
                "type": "object",
                "additionalProperties": false,
                "required": ["template"],
                "properties": {
                    "template": { "$ref": "#/$defs/id" },
                    "coupon": { "$ref": "#/$defs/id", "description": "`email` only: the coupon pool (`coupons:`) whose code the e-mail carries as `{{ coupon.code }}`, issued once per customer and pool." }
                }
            },
            "couponPool": {
                "type": "object",
                "additionalProperties": false,
                "description": "A coupon pool: generated codes (`pattern`) or codes imported with `tiercare coupons import POOL FILE`.",
                "properties": {
                    "pattern": { "type": "string", "description": "Generated codes: literal text with random runs in braces, `{AAAA}` letters, `{9999}` digits, `{XXXX}` either (at least 24 random bits): `WB-{AAAA}-{9999}`." },
                    "value": { "type": "string", "description": "What a coupon is worth, as shown (`{{ coupon.value }}`)." },
                    "description": { "type": "string", "description": "What it is for (`{{ coupon.description }}`)." },
                    "expires": { "$ref": "#/$defs/duration", "description": "Whole days from issue to expiry (`30d`); default: never." },
                    "warn_below": { "type": "integer", "minimum": 0, "description": "`check` and `coupons status` warn when an imported pool has fewer codes left (default 50)." }
                }
            },
            "followup": {
                "type": "object",
                "additionalProperties": false,
                "required": ["id"],
                "description": "One trigger (`every`, `cron` or `on`) and one action (`email`, `sms`, `survey`, `task`, `notify_owner`, `set`, `tag` or `points`).",
                "properties": {
                    "id": { "$ref": "#/$defs/id" },
                    "label": { "type": "string" },
                    "description": { "type": "string" },
                    "tiers": { "type": "array", "items": { "$ref": "#/$defs/id" }, "description": "The customer's tier must be one of these (default: any)." },
                    "segments": {
                        "type": ["object", "null"],
                        "description": "Segment set: segment the customer must be in.",
                        "additionalProperties": { "$ref": "#/$defs/id" }
                    },
                    "every": {
                        "description": "A cadence: `30d`, or `{ period: 30d, from: last_fired | last_contact }`.",
                        "anyOf": [
                            { "$ref": "#/$defs/duration" },
                            {
                                "type": "object",
                                "additionalProperties": false,
                                "required": ["period"],
                                "properties": {
                                    "period": { "$ref": "#/$defs/duration" },
                                    "from": { "type": "string", "enum": ["last_fired", "last_contact"] }
                                }
                            }
                        ]
                    },
                    "cron": { "type": "string", "description": "A cron schedule on the customer's clock (5 fields, or 6-7 with seconds first)." },
                    "on": {
                        "description": "An event: `tier_entered`, `tier_up`, `tier_down`, `birthday`, `anniversary`, `complaint`, or `{ event: no_order, after: 120d }`...",
                        "anyOf": [
                            { "type": "string", "enum": ["tier_entered", "tier_up", "tier_down", "segment_entered", "no_order", "no_contact", "birthday", "anniversary", "complaint", "low_satisfaction"] },
                            {
                                "type": "object",
                                "additionalProperties": false,
                                "required": ["event"],
                                "properties": {
                                    "event": { "type": "string", "enum": ["tier_entered", "tier_up", "tier_down", "segment_entered", "no_order", "no_contact", "birthday", "anniversary", "complaint", "low_satisfaction"] },
                                    "after": { "$ref": "#/$defs/duration" },
                                    "below": { "type": "number" },
                                    "set": { "$ref": "#/$defs/id" },
                                    "segment": { "$ref": "#/$defs/id" },
                                    "time": { "type": "string", "description": "`HH:MM` (birthday, anniversary; default 09:00)." }
                                }
                            }
                        ]
                    },
                    "timezone": { "type": "string", "description": "An IANA time zone for the trigger instead of the customer's." },
                    "when": { "$ref": "#/$defs/expression", "description": "An optional condition: must return true or false." },
                    "re_entry": {
                        "description": "`every_time` (default), `once`, or `{ once_per: 90d }`.",
                        "anyOf": [
                            { "type": "string", "enum": ["once", "every_time"] },
                            {
                                "type": "object",
                                "additionalProperties": false,
                                "required": ["once_per"],
                                "properties": { "once_per": { "$ref": "#/$defs/duration" } }
                            }
                        ]
                    },
                    "max_delay": { "$ref": "#/$defs/duration", "description": "How long after its scheduled time an unsent email of this rule may still go out; later it is cancelled as stale. Default per trigger: birthday and anniversary 1d, other events 3d, no_order, no_contact, every and cron 7d." },
                    "email": { "$ref": "#/$defs/template", "description": "An email to the customer." },
                    "notify_owner": { "$ref": "#/$defs/template", "description": "An email to the customer's account manager." },
                    "survey": {
                        "type": "object",
                        "additionalProperties": false,
                        "required": ["template", "kind", "question", "id"],
                        "description": "A one-question survey e-mailed to the customer: one signed link per score in `survey.links`; answers are recorded as feedback.",
                        "properties": {
                            "template": { "$ref": "#/$defs/id" },
                            "kind": { "enum": ["nps", "csat"], "description": "`nps`: scores 0 to 10; `csat`: scores 1 to 5." },
                            "question": { "type": "string", "description": "The question the e-mail asks (`survey.question`)." },
                            "id": { "type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$", "description": "The survey's id: answers and the report are grouped by it." },
                            "channel": { "enum": ["email", "sms"], "description": "`email` (default); `sms`: `templates/NAME.sms.j2` sends one signed link, `survey.link`, to a page that asks for the score." }
                        }
                    },
                    "sms": { "$ref": "#/$defs/template", "description": "An SMS to the customer from `templates/NAME.sms.j2` (with `consent_sms`)." },
                    "task": {
                        "type": "object",
                        "additionalProperties": false,
                        "required": ["assignee", "title"],
                        "properties": {
                            "assignee": { "type": "string", "description": "`owner`, `role:NAME` or `manager:NAME`." },
                            "title": { "type": "string", "description": "A one-line template with the care emails' variables (`{{ customer.name }}`, `{{ customer.region }}`, `{{ tier.label }}`, ...: templates/README.md)." },
                            "due": { "$ref": "#/$defs/duration" }
                        }
                    },
                    "set": { "type": "object", "description": "Custom attributes to set.", "additionalProperties": { "type": ["string", "number", "boolean", "null"] } },
                    "tag": { "$ref": "#/$defs/id", "description": "A tag to add." },
                    "points": {
                        "type": "object",
                        "additionalProperties": false,
                        "required": ["earn"],
                        "description": "Points the customer earns, booked in the points ledger.",
                        "properties": {
                            "earn": { "type": ["string", "number"], "description": "An expression over the customer's features giving the points (`revenue_window * 0.01`, `100`)." },
                            "expires": { "$ref": "#/$defs/duration", "description": "The points expire this long after they are earned; default: never." }
                        }
                    }
                }
            },
            "tiering": {
                "type": "object",
                "description": "The tiers (exactly one rule file has this section).",
                "additionalProperties": false,
                "required": ["window", "tiers"],
                "properties": {
                    "window": {
                        "type": "string",
                        "pattern": "^(all|[0-9]+[dw])$",
                        "description": "The feature window: `365d`, `52w` or `all`."
                    },
                    "reassess": {
                        "type": "string",
                        "description": "When the daemon reassesses: a cron schedule (`minute hour day-of-month month day-of-week`, or 6-7 fields with seconds first)."
                    },
                    "tiers": {
                        "type": "array",
                        "minItems": 1,
                        "description": "Highest first; the first tier whose condition is true wins. End with `when: true` so every customer gets a tier.",
                        "items": { "$ref": "#/$defs/rule" }
                    },
                    "hysteresis": {
                        "type": "object",
                        "additionalProperties": false,
                        "required": ["downgrade_after"],
                        "properties": {
                            "downgrade_after": {
                                "description": "How long a downgrade is held. A duration (`30d`, `2w`): the lower tier must have been asked for continuously that long, measured on the assessments' times. A number: this many assessments in a row must ask for it, counting at most one per day (1: at once).",
                                "oneOf": [
                                    { "type": "integer", "minimum": 1, "maximum": 1000 },
                                    { "$ref": "#/$defs/duration" }
                                ]
                            }
                        }
                    }
                }
            },
            "testFile": {
                "type": "object",
                "additionalProperties": false,
                "required": ["tests"],
                "properties": {
                    "tests": {
                        "type": "array",
                        "items": { "$ref": "#/$defs/testCase" }
                    }
                }
            },
            "testCase": {
                "type": "object",
                "additionalProperties": false,
                "required": ["name", "expect"],
                "properties": {
                    "name": { "type": "string" },
                    "customer": {
                        "type": ["object", "null"],
                        "description": "Feature values; unspecified features are neutral (0, \"\", false, none; 36500 days since the last order and contact).",
                        "additionalProperties": false,
                        "properties": Value::Object(customer)
                    },
                    "pin": {
                        "type": "object",
                        "additionalProperties": false,
                        "required": ["tier"],
                        "properties": {
                            "tier": { "$ref": "#/$defs/id" },
                            "by": { "type": "string" },
                            "reason": { "type": "string" },
                            "until": { "type": ["string", "integer"] }
                        }
                    },
                    "state": {
                        "type": "object",
                        "additionalProperties": false,
                        "description": "What the ledger knows, for planning follow-ups.",
                        "properties": {
                            "tier": { "$ref": "#/$defs/id" },
                            "segments": { "type": ["object", "null"], "additionalProperties": { "$ref": "#/$defs/id" } },
                            "last_fired": { "type": ["object", "null"], "additionalProperties": { "type": ["string", "integer"] } },
                            "contacts": { "type": "array", "items": { "type": ["string", "integer"] } },
                            "events": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "additionalProperties": false,
                                    "required": ["at", "event"],
                                    "properties": {
                                        "at": { "type": ["string", "integer"] },
                                        "event": { "type": "string", "enum": ["tier_changed", "segment_changed", "complaint", "feedback"] },
                                        "set": { "$ref": "#/$defs/id" },
                                        "from": { "type": ["string", "integer", "null"] },
                                        "to": { "type": ["string", "integer", "null"] },
                                        "score": { "type": "number" }
                                    }
                                }
                            }
                        }
                    },
                    "plan": {
                        "type": "object",
                        "additionalProperties": false,
                        "required": ["from", "to"],
                        "description": "Plan follow-ups over [from, to).",
                        "properties": {
                            "from": { "type": ["string", "integer"] },
                            "to": { "type": ["string", "integer"] },
                            "timezone": { "type": "string", "description": "The workspace's time zone (default UTC)." }
                        }
                    },
                    "expect": {
                        "type": "object",
                        "additionalProperties": false,
                        "properties": {
                            "planned": {
                                "type": "array",
                                "description": "Every planned action, in order: rule id and scheduled time.",
                                "items": {
                                    "type": "object",
                                    "additionalProperties": false,
                                    "required": ["rule", "at"],
                                    "properties": { "rule": { "$ref": "#/$defs/id" }, "at": { "type": ["string", "integer"] } }
                                }
                            },
                            "skipped": {
                                "type": "array",
                                "description": "Occurrences the contact policy removed: rule id and why.",
                                "items": {
                                    "type": "object",
                                    "additionalProperties": false,
                                    "required": ["rule", "why"],
                                    "properties": { "rule": { "$ref": "#/$defs/id" }, "why": { "type": "string", "enum": ["re_entry", "consent", "no_address", "cap", "beyond"] } }
                                }
                            },
                            "tier": { "type": ["string", "integer", "null"], "description": "The final tier (`~`: none)." },
                            "rule_tier": { "type": ["string", "integer", "null"], "description": "The tier the rules asked for, before pin and hysteresis." },
                            "pending_tier": { "type": ["string", "integer", "null"], "description": "The held downgrade's tier." },
                            "pending_count": { "type": "integer", "minimum": 0 },
                            "pinned": { "type": "boolean" },
                            "segments": {
                                "type": ["object", "null"],
                                "description": "Segment set name: expected segment id (`~`: none).",
                                "additionalProperties": { "type": ["string", "integer", "null"] }
                            },
                            "scores": {
                                "type": ["object", "null"],
                                "additionalProperties": { "type": "number" }
                            },
                            "errors": {
                                "type": "array",
                                "description": "Rules expected to fail, e.g. `tiers[1] (B)`.",
                                "items": { "type": "string" }
                            }
                        }
                    }
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::rule_file::{RawRuleFile, RawTestFile};

    /// The keys serde accepts at a place, from its "unknown field" error.
    fn accepted<T: serde::de::DeserializeOwned + std::fmt::Debug>(yaml: &str) -> Vec<String> {
        let err = serde_yaml::from_str::<T>(yaml).expect_err("an unknown key");
        let text = err.to_string();
        let expected = text
            .split_once("expected ")
            .map(|(_, rest)| rest)
            .unwrap_or_else(|| panic!("{text}"));
        let mut keys: Vec<String> = expected
            .split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_owned)
            .collect();
        keys.sort();
        keys
    }

    fn schema_keys(schema: &Value, def: &str, path: &[&str]) -> Vec<String> {
        let mut node = &schema["$defs"][def];
        for key in path {
            node = if *key == "items" {
                &node["items"]
            } else {
                &node["properties"][*key]
            };
        }
        let mut keys: Vec<String> = node["properties"]
            .as_object()
            .unwrap_or_else(|| panic!("{def} {path:?} has properties"))
            .keys()
            .cloned()
            .collect();
        keys.sort();
        keys
    }

    #[test]
    fn every_key_serde_accepts_is_in_the_schema() {
        let schema = rules_json_schema();
        let cases: [(Vec<String>, &str, &[&str]); 25] = [
            (accepted::<RawRuleFile>("pool:\n  zzz: 1"), "pool", &[]),
            (
                accepted::<RawRuleFile>("pool:\n  protect:\n    zzz: 1"),
                "poolProtect",
                &[],
            ),
            (
                accepted::<RawRuleFile>("pool:\n  tiers:\n    A:\n      zzz: 1"),
                "tierReclaim",
                &[],
            ),
            (
                accepted::<RawRuleFile>("coupons:\n  p:\n    zzz: 1"),
                "couponPool",
                &[],
            ),
            (
                accepted::<RawRuleFile>("followups:\n  - points:\n      zzz: 1"),
                "followup",
                &["points"],
            ),
            (
                accepted::<RawRuleFile>("followups:\n  - zzz: 1"),
                "followup",
                &[],
            ),
            (
                accepted::<RawRuleFile>("followups:\n  - task:\n      zzz: 1"),
                "followup",
                &["task"],
            ),
            (
                accepted::<RawRuleFile>("followups:\n  - email:\n      zzz: 1"),
                "template",
                &[],
            ),
            (
                accepted::<RawRuleFile>("contact_policy:\n  zzz: 1"),
                "contactPolicy",
                &[],
            ),
            (
                accepted::<RawRuleFile>("contact_policy:\n  tiers:\n    A:\n      zzz: 1"),
                "tierPolicy",
                &[],
            ),
            (
                accepted::<RawRuleFile>("contact_policy:\n  caps:\n    zzz: 1"),
                "caps",
                &[],
            ),
            (
                accepted::<RawRuleFile>("contact_policy:\n  send_window:\n    zzz: 1"),
                "sendWindow",
                &[],
            ),
            (
                accepted::<RawTestFile>("tests:\n  - state:\n      zzz: 1"),
                "testCase",
                &["state"],
            ),
            (
                accepted::<RawTestFile>("tests:\n  - plan:\n      zzz: 1"),
                "testCase",
                &["plan"],
            ),
            (
                accepted::<RawTestFile>("tests:\n  - state:\n      events:\n        - zzz: 1"),
                "testCase",
                &["state", "events", "items"],
            ),
            (
                accepted::<RawTestFile>("tests:\n  - expect:\n      planned:\n        - zzz: 1"),
                "testCase",
                &["expect", "planned", "items"],
            ),
            (accepted::<RawRuleFile>("zzz: 1"), "ruleFile", &[]),
            (
                accepted::<RawRuleFile>("tiering:\n  zzz: 1"),
                "tiering",
                &[],
            ),
            (
                accepted::<RawRuleFile>("tiering:\n  tiers:\n    - zzz: 1"),
                "rule",
                &[],
            ),
            (
                accepted::<RawRuleFile>("segments:\n  s:\n    - zzz: 1"),
                "rule",
                &[],
            ),
            (
                accepted::<RawRuleFile>("tiering:\n  hysteresis:\n    zzz: 1"),
                "tiering",
                &["hysteresis"],
            ),
            (accepted::<RawTestFile>("zzz: 1"), "testFile", &[]),
            (
                accepted::<RawTestFile>("tests:\n  - zzz: 1"),
                "testCase",
                &[],
            ),
            (
                accepted::<RawTestFile>("tests:\n  - pin:\n      zzz: 1"),
                "testCase",
                &["pin"],
            ),
            (
                accepted::<RawTestFile>("tests:\n  - expect:\n      zzz: 1"),
                "testCase",
                &["expect"],
            ),
        ];
        for (serde_keys, def, path) in cases {
            assert_eq!(
                serde_keys,
                schema_keys(&schema, def, path),
                "{def} {path:?}"
            );
        }
    }

    #[test]
    fn customer_properties_are_the_features() {
        let schema = rules_json_schema();
        let keys = schema_keys(&schema, "testCase", &["customer"]);
        assert_eq!(keys.len(), features().len());
    }
}
