//! A JSON Schema (draft 2020-12) of rule files and rule-test files, for editors
//! (`tiercare schema > rules/tiercare.schema.json`; YAML files point at it with
//! `# yaml-language-server: $schema=tiercare.schema.json`). It lists every key the engine
//! accepts (a test keeps it equal to the serde structures) and every feature a test customer
//! may set, so editors complete and check them.

use serde_json::{Map, Value, json};

use crate::feature::{FeatureType, features};

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
        "description": "A tiercare rule file (rules/*.yaml: tiering, scores, segments) or rule-test file (rules/tests/*.yaml: tests).",
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
                                "type": "integer",
                                "minimum": 1,
                                "maximum": 1000,
                                "description": "A downgrade applies once this many assessments in a row ask for it (1: at once)."
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
                    "expect": {
                        "type": "object",
                        "additionalProperties": false,
                        "properties": {
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
    use crate::rule_file::{RawRuleFile, RawTestFile};

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
            node = &node["properties"][*key];
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
        let cases: [(Vec<String>, &str, &[&str]); 9] = [
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
