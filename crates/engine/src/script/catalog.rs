//! What rules can use: every feature ([`crate::customer::feature`]) and every function, with its type, unit
//! and meaning (`tiercare functions` prints this catalog; [`catalog`] is the data).
//!
//! Functions are Rhai's own (the useful subset is listed and documented here), the ones tiercare
//! registers ([`ratio`](#ratio)), and the user's own from `rules/*.rhai` libraries (listed per
//! rule set by [`crate::RuleSet::library_functions`]).

use rhai::{Engine, FLOAT, INT};
use serde::Serialize;

use crate::customer::feature::FeatureSpec;
use crate::script::sandbox;

/// Where a function comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FunctionOrigin {
    /// Part of the Rhai language.
    Rhai,
    /// Registered by tiercare.
    Tiercare,
}

/// One function (or operator) rules can call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct FunctionSpec {
    /// The name to call (`max`, `contains`, `??`).
    pub name: &'static str,
    /// How it is called, with argument types.
    pub signature: &'static str,
    /// The type of the result.
    pub returns: &'static str,
    /// What it does.
    pub meaning: &'static str,
    /// An expression using it...
    pub example: &'static str,
    /// ...and what that expression returns (checked by a test).
    pub example_result: &'static str,
    /// Rhai's own, or tiercare's.
    pub origin: FunctionOrigin,
}

/// Every feature and every documented function.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Catalog {
    /// The features, in catalog order.
    pub features: &'static [FeatureSpec],
    /// The functions and operators.
    pub functions: &'static [FunctionSpec],
    /// The events follow-up rules can fire on (`on:`).
    pub followup_events: &'static [EventSpec],
}

/// One event a follow-up rule can fire on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct EventSpec {
    /// The name after `on:` (or `on: { event: ... }`).
    pub name: &'static str,
    /// Its parameters, `""` when none.
    pub parameters: &'static str,
    /// When it fires.
    pub meaning: &'static str,
}

const EVENTS: &[EventSpec] = &[
    EventSpec {
        name: "tier_entered",
        parameters: "",
        meaning: "the stored tier changed to one of the rule's `tiers` (any tier when none are listed)",
    },
    EventSpec {
        name: "tier_up",
        parameters: "",
        meaning: "the customer moved to a higher tier (a first assignment is not an upgrade)",
    },
    EventSpec {
        name: "tier_down",
        parameters: "",
        meaning: "the customer moved to a lower tier, or lost their tier",
    },
    EventSpec {
        name: "segment_entered",
        parameters: "set, segment",
        meaning: "the customer entered segment `segment` of set `set`",
    },
    EventSpec {
        name: "no_order",
        parameters: "after: duration",
        meaning: "`after` has passed since the last order (never for customers who never ordered)",
    },
    EventSpec {
        name: "no_contact",
        parameters: "after: duration",
        meaning: "`after` has passed since the last contact (an interaction, or an email sent or planned)",
    },
    EventSpec {
        name: "birthday",
        parameters: "time: HH:MM (09:00)",
        meaning: "the customer's birthday at `time` on their clock; 29 February is greeted on 28 February in other years",
    },
    EventSpec {
        name: "anniversary",
        parameters: "time: HH:MM (09:00)",
        meaning: "each anniversary of the first order's local date, at `time`; 29 February as birthdays",
    },
    EventSpec {
        name: "complaint",
        parameters: "",
        meaning: "a new complaint was opened",
    },
    EventSpec {
        name: "low_satisfaction",
        parameters: "below: number",
        meaning: "feedback was given with a score below `below`",
    },
];

/// The catalog of features and functions available to every rule.
#[must_use]
pub fn catalog() -> &'static Catalog {
    static CATALOG: Catalog = Catalog {
        features: crate::customer::feature::TABLE,
        functions: FUNCTIONS,
        followup_events: EVENTS,
    };
    &CATALOG
}

const fn rhai(
    name: &'static str,
    signature: &'static str,
    returns: &'static str,
    meaning: &'static str,
    example: &'static str,
    example_result: &'static str,
) -> FunctionSpec {
    FunctionSpec {
        name,
        signature,
        returns,
        meaning,
        example,
        example_result,
        origin: FunctionOrigin::Rhai,
    }
}

const FUNCTIONS: &[FunctionSpec] = &[
    FunctionSpec {
        name: "ratio",
        signature: "ratio(a: int|float, b: int|float)",
        returns: "float",
        meaning: "a / b as a float, and 0.0 when b is 0 (where `a / b` on two ints stops with \
                  \"division by zero\", and on floats gives infinity)",
        example: "ratio(3, 4)",
        example_result: "0.75",
        origin: FunctionOrigin::Tiercare,
    },
    FunctionSpec {
        name: "expected_orders",
        signature: "expected_orders(days: int|float)",
        returns: "float or none",
        meaning: "BG/NBD: the customer's expected days with an order in the `days` days after \
                  `at` (unit: orders, at most one a day; the paper's equation 10 on \
                  repeat_purchase_days, repeat_recency_days, purchase_age_days and the \
                  assessment's fit); `expected_orders(90)` is expected_orders_90d. None as for \
                  p_alive (and outside assessments and `explain`), so give a default: \
                  `(expected_orders(30) ?? 0.0) >= 1.0`. An error when days is negative or not \
                  a number",
        example: "expected_orders(30) ?? 0.0",
        example_result: "0.0",
        origin: FunctionOrigin::Tiercare,
    },
    rhai(
        "??",
        "a ?? b",
        "the type of a or b",
        "a, or b when a is none (`()`): `attr.potential ?? 0`, `satisfaction_avg ?? 5.0`",
        "() ?? 7",
        "7",
    ),
    rhai(
        "in",
        "x in array | text in text | key in map",
        "bool",
        "membership: `region in [\"DE\", \"FR\"]`, `\"vip\" in attr`",
        "\"DE\" in [\"DE\", \"FR\"]",
        "true",
    ),
    rhai(
        "min",
        "min(a: int|float, b: int|float)",
        "int or float",
        "the smaller of a and b",
        "min(3, 2.5)",
        "2.5",
    ),
    rhai(
        "max",
        "max(a: int|float, b: int|float)",
        "int or float",
        "the larger of a and b",
        "max(3, 2.5)",
        "3.0",
    ),
    rhai(
        "abs",
        "abs(x: int|float)",
        "int or float",
        "the absolute value",
        "abs(-2)",
        "2",
    ),
    rhai(
        "sign",
        "sign(x: int|float)",
        "int",
        "-1, 0 or 1",
        "sign(-0.5)",
        "-1",
    ),
    rhai(
        "floor",
        "floor(x: float)",
        "float",
        "the largest whole number <= x",
        "floor(2.7)",
        "2.0",
    ),
    rhai(
        "ceiling",
        "ceiling(x: float)",
        "float",
        "the smallest whole number >= x",
        "ceiling(2.1)",
        "3.0",
    ),
    rhai(
        "round",
        "round(x: float)",
        "float",
        "x rounded to the nearest whole number (halves away from zero)",
        "round(2.5)",
        "3.0",
    ),
    rhai(
        "sqrt",
        "sqrt(x: float)",
        "float",
        "the square root",
        "sqrt(16.0)",
        "4.0",
    ),
    rhai(
        "ln",
        "ln(x: float)",
        "float",
        "the natural logarithm",
        "ln(1.0)",
        "0.0",
    ),
    rhai(
        "log",
        "log(x: float)",
        "float",
        "the base-10 logarithm (`log(x, base)` for another base)",
        "log(1000.0)",
        "3.0",
    ),
    rhai(
        "exp",
        "exp(x: float)",
        "float",
        "e to the power x",
        "exp(0.0)",
        "1.0",
    ),
    rhai(
        "to_int",
        "to_int(x: float|int)",
        "int",
        "x without its fraction (towards zero)",
        "to_int(2.9)",
        "2",
    ),
    rhai(
        "to_float",
        "to_float(x: int|float)",
        "float",
        "x as a float",
        "to_float(2)",
        "2.0",
    ),
    rhai(
        "len",
        "text.len() | array.len() | map.len()",
        "int",
        "the number of characters, elements or entries",
        "\"tiercare\".len()",
        "8",
    ),
    rhai(
        "is_empty",
        "text.is_empty() | array.is_empty() | map.is_empty()",
        "bool",
        "whether there is nothing in it: `owner.is_empty()`",
        "\"\".is_empty()",
        "true",
    ),
    rhai(
        "contains",
        "text.contains(part) | array.contains(x) | map.contains(key)",
        "bool",
        "whether it contains the text, element or key",
        "\"Europe/London\".contains(\"London\")",
        "true",
    ),
    rhai(
        "starts_with",
        "text.starts_with(prefix)",
        "bool",
        "whether the text starts with prefix",
        "\"DE-BY\".starts_with(\"DE\")",
        "true",
    ),
    rhai(
        "ends_with",
        "text.ends_with(suffix)",
        "bool",
        "whether the text ends with suffix",
        "\"2024-03-01\".ends_with(\"03-01\")",
        "true",
    ),
    rhai(
        "to_upper",
        "text.to_upper()",
        "text",
        "the text in upper case",
        "\"de\".to_upper()",
        "DE",
    ),
    rhai(
        "to_lower",
        "text.to_lower()",
        "text",
        "the text in lower case",
        "\"DE\".to_lower()",
        "de",
    ),
    rhai(
        "sub_string",
        "text.sub_string(start, length)",
        "text",
        "length characters from start (0-based): `birthday.sub_string(5, 5)` is `MM-DD`",
        "\"2000-03-01\".sub_string(5, 5)",
        "03-01",
    ),
    rhai(
        "parse_int",
        "parse_int(text)",
        "int",
        "the text as a whole number (an error when it is not one)",
        "parse_int(\"42\")",
        "42",
    ),
    rhai(
        "parse_float",
        "parse_float(text)",
        "float",
        "the text as a number (an error when it is not one)",
        "parse_float(\"2.5\")",
        "2.5",
    ),
    rhai(
        "type_of",
        "type_of(x)",
        "text",
        "the type of a value: `i64`, `f64`, `bool`, `string`, `map`, `()`...",
        "type_of(())",
        "()",
    ),
];

/// The Rhai engine every rule runs in: [`sandbox::new_engine`] with tiercare's functions.
pub(crate) fn rules_engine() -> Engine {
    let mut engine = sandbox::new_engine();
    engine
        .register_fn("ratio", |a: INT, b: INT| ratio(a as FLOAT, b as FLOAT))
        .register_fn("ratio", |a: FLOAT, b: FLOAT| ratio(a, b))
        .register_fn("ratio", |a: INT, b: FLOAT| ratio(a as FLOAT, b))
        .register_fn("ratio", |a: FLOAT, b: INT| ratio(a, b as FLOAT));
    crate::script::growth::register(&mut engine);
    engine
}

fn ratio(a: FLOAT, b: FLOAT) -> FLOAT {
    if b == 0.0 { 0.0 } else { a / b }
}

/// Names of every documented function (for "did you mean" hints and unknown-function checks).
pub(crate) fn function_names() -> impl Iterator<Item = &'static str> {
    FUNCTIONS
        .iter()
        .map(|function| function.name)
        .filter(|name| name.chars().all(|c| c.is_alphanumeric() || c == '_'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rhai::Dynamic;

    #[test]
    fn every_example_returns_what_the_catalog_says() {
        let engine = rules_engine();
        for function in catalog().functions {
            let result = engine
                .eval::<Dynamic>(function.example)
                .unwrap_or_else(|err| panic!("{}: {err}", function.example));
            assert_eq!(
                result.to_string(),
                function.example_result,
                "{}",
                function.example
            );
        }
    }

    #[test]
    fn ratio_never_divides_by_zero() {
        let engine = rules_engine();
        for (script, expected) in [
            ("ratio(1, 0)", 0.0),
            ("ratio(1.0, 0.0)", 0.0),
            ("ratio(1, 4.0)", 0.25),
            ("ratio(3.0, 2)", 1.5),
        ] {
            assert_eq!(engine.eval::<FLOAT>(script).unwrap(), expected, "{script}");
        }
    }

    #[test]
    fn catalog_lists_every_feature() {
        assert_eq!(
            catalog().features.len(),
            crate::customer::feature::Feature::COUNT
        );
    }

    #[test]
    fn catalog_lists_every_followup_event() {
        let names: Vec<&str> = catalog().followup_events.iter().map(|e| e.name).collect();
        assert_eq!(names, crate::load::followups::EVENTS);
    }
}
