//! Expressions over one customer for listing customers (`tiercare customers --where`,
//! `--sort`): the rules' own expression language, compiled once, run per customer.
//!
//! An expression reads every feature (as rules do) and three more variables: `tier` (the
//! customer's current tier, `""` when never assessed), `segments` (a map from segment set to
//! segment) and `scores` (a map from score name to the latest assessment's value).

use rhai::{AST, Dynamic, Engine, ImmutableString, Map, ParseErrorType, Scope};

use crate::catalog::rules_engine;
use crate::diagnostic::closest;
use crate::evaluate::display_value;
use crate::feature::Feature;
use crate::sandbox::describe_eval_error;
use crate::snapshot::{Snapshot, json_to_dynamic};

/// The variables a customer expression reads besides the features.
pub const QUERY_VARIABLES: [&str; 3] = ["tier", "segments", "scores"];

/// What an expression is evaluated on, besides the features in the [`Snapshot`].
#[derive(Debug, Clone, Copy)]
pub struct Stored<'a> {
    /// The current tier (`""` when never assessed).
    pub tier: &'a str,
    /// `(segment set, segment)` pairs.
    pub segments: &'a [(String, String)],
    /// The latest assessment's scores.
    pub scores: &'a serde_json::Map<String, serde_json::Value>,
}

/// The value of an expression for one customer, for sorting and printing.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryValue {
    /// No value (`()`): sorted last.
    Missing,
    /// A boolean.
    Bool(bool),
    /// A number.
    Number(f64),
    /// A text (or any other value, displayed).
    Text(String),
}

/// One compiled customer expression.
#[derive(Debug)]
pub struct CustomerExpression {
    source: String,
    engine: Engine,
    ast: AST,
    scope: Scope<'static>,
}

impl CustomerExpression {
    /// Compiles `source` once: a syntax error or an unknown variable is an error message
    /// naming the problem (with a "did you mean" for a misspelt feature).
    pub fn compile(source: &str) -> Result<CustomerExpression, String> {
        let engine = rules_engine();
        let mut scope = Scope::new();
        for feature in Feature::all() {
            scope.push_dynamic(feature.name(), Dynamic::UNIT);
        }
        for name in QUERY_VARIABLES {
            scope.push_dynamic(name, Dynamic::UNIT);
        }
        if source.trim().is_empty() {
            return Err("the expression is empty: write one such as `orders_window >= 2`".into());
        }
        let ast = engine
            .compile_expression_with_scope(&scope, source)
            .map_err(|err| match err.err_type() {
                ParseErrorType::VariableUndefined(name) => {
                    let candidates = Feature::all()
                        .map(Feature::name)
                        .chain(QUERY_VARIABLES)
                        .collect::<Vec<_>>();
                    match closest(name, candidates.iter().copied()) {
                        Some(near) => format!(
                            "`{name}` is not a feature or variable: did you mean `{near}`? \
                             (`tiercare functions` lists the features)"
                        ),
                        None => format!(
                            "`{name}` is not a feature or variable: `tiercare functions` lists \
                             the features; `tier`, `segments` and `scores` are the stored ones"
                        ),
                    }
                }
                _ => format!("syntax error in `{source}`: {err}"),
            })?;
        Ok(CustomerExpression {
            source: source.to_owned(),
            engine,
            ast,
            scope,
        })
    }

    /// The expression's text.
    #[must_use]
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Runs the expression for one customer.
    pub fn eval(&mut self, snapshot: &Snapshot, stored: Stored<'_>) -> Result<QueryValue, String> {
        self.scope.rewind(0);
        for feature in Feature::all() {
            self.scope
                .push_constant_dynamic(feature.name(), snapshot.dynamic(feature).clone());
        }
        self.scope
            .push_constant("tier", ImmutableString::from(stored.tier));
        let segments: Map = stored
            .segments
            .iter()
            .map(|(set, segment)| (set.as_str().into(), Dynamic::from(segment.clone())))
            .collect();
        self.scope.push_constant("segments", segments);
        let scores: Map = stored
            .scores
            .iter()
            .map(|(name, value)| (name.as_str().into(), json_to_dynamic(value)))
            .collect();
        self.scope.push_constant("scores", scores);
        let value = self
            .engine
            .eval_ast_with_scope::<Dynamic>(&mut self.scope, &self.ast)
            .map_err(|err| describe_eval_error(&err))?;
        Ok(if value.is_unit() {
            QueryValue::Missing
        } else if let Ok(b) = value.as_bool() {
            QueryValue::Bool(b)
        } else if let Ok(i) = value.as_int() {
            QueryValue::Number(i as f64)
        } else if let Ok(f) = value.as_float() {
            QueryValue::Number(f)
        } else if value.is_string() {
            QueryValue::Text(value.to_string())
        } else {
            QueryValue::Text(display_value(&value))
        })
    }

    /// Whether the expression holds for one customer: it must return a boolean.
    pub fn matches(&mut self, snapshot: &Snapshot, stored: Stored<'_>) -> Result<bool, String> {
        let returned = match self.eval(snapshot, stored)? {
            QueryValue::Bool(b) => return Ok(b),
            QueryValue::Missing => "nothing (`()`)".to_owned(),
            QueryValue::Number(n) => format!("a number ({n})"),
            QueryValue::Text(t) => format!("a text ({t:?})"),
        };
        Err(format!(
            "`{}` must be true or false, but returned {returned}",
            self.source
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored<'a>(
        tier: &'a str,
        segments: &'a [(String, String)],
        scores: &'a serde_json::Map<String, serde_json::Value>,
    ) -> Stored<'a> {
        Stored {
            tier,
            segments,
            scores,
        }
    }

    #[test]
    fn features_and_stored_values_are_variables() {
        let mut snapshot = Snapshot::new();
        snapshot.set_int(Feature::DaysSinceLastContact, 90);
        let segments = vec![("rfm".to_owned(), "champions".to_owned())];
        let scores = serde_json::Map::new();
        let mut expr = CustomerExpression::compile(
            "days_since_last_contact > 60 && tier == \"A\" && segments.rfm == \"champions\"",
        )
        .unwrap();
        assert!(
            expr.matches(&snapshot, stored("A", &segments, &scores))
                .unwrap()
        );
        assert!(
            !expr
                .matches(&snapshot, stored("B", &segments, &scores))
                .unwrap()
        );
    }

    #[test]
    fn a_misspelt_feature_is_refused_with_a_suggestion() {
        let err = CustomerExpression::compile("days_since_last_contct > 60").unwrap_err();
        assert!(
            err.contains("did you mean `days_since_last_contact`"),
            "{err}"
        );
    }

    #[test]
    fn a_non_boolean_condition_is_an_error() {
        let snapshot = Snapshot::new();
        let scores = serde_json::Map::new();
        let mut expr = CustomerExpression::compile("orders_total").unwrap();
        let err = expr
            .matches(&snapshot, stored("", &[], &scores))
            .unwrap_err();
        assert!(err.contains("must be true or false"), "{err}");
    }
}
