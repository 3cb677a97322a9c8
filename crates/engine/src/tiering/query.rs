//! Expressions over one customer for listing customers (`tiercare customers --where`,
//! `--sort`): the rules' own expression language, compiled once, run per customer.
//!
//! An expression reads every feature (as rules do) and three more variables: `tier` (the
//! customer's current tier, `""` when never assessed), `segments` (a map from segment set to
//! segment) and `scores` (a map from score name to the latest assessment's value).

use rhai::{AST, Dynamic, Engine, ImmutableString, Map, ParseErrorType, Scope};

use crate::customer::feature::Feature;
use crate::customer::snapshot::{Snapshot, json_to_dynamic};
use crate::script::catalog::rules_engine;
use crate::script::sandbox::describe_eval_error;
use crate::text::diagnostic::closest;
use crate::tiering::evaluate::display_value;

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

/// A variable an expression reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Var {
    Feature(Feature),
    Tier,
    Segments,
    Scores,
}

/// One compiled customer expression.
#[derive(Debug)]
pub struct CustomerExpression {
    source: String,
    engine: Engine,
    ast: AST,
    /// The variables it reads (only these are put in its scope for each customer).
    vars: Vec<Var>,
    scope: Scope<'static>,
}

impl CustomerExpression {
    /// Compiles `source` once: a syntax error or an unknown variable is an error message
    /// naming the problem (with a "did you mean" for a misspelt feature).
    pub fn compile(source: &str) -> Result<CustomerExpression, String> {
        if source.trim().is_empty() {
            return Err("the expression is empty: write one such as `orders_window >= 2`".into());
        }
        let engine = rules_engine();
        // Compiled with strict variables, adding each variable it reads as it is found, so
        // that each customer's scope holds only those.
        let mut vars: Vec<Var> = Vec::new();
        let ast = loop {
            let mut scope = Scope::new();
            for var in &vars {
                scope.push_dynamic(var_name(*var), Dynamic::UNIT);
            }
            match engine.compile_expression_with_scope(&scope, source) {
                Ok(ast) => break ast,
                Err(err) => match err.err_type() {
                    ParseErrorType::VariableUndefined(name) => {
                        let var = match name.as_str() {
                            "tier" => Some(Var::Tier),
                            "segments" => Some(Var::Segments),
                            "scores" => Some(Var::Scores),
                            other => Feature::from_name(other).map(Var::Feature),
                        };
                        match var {
                            Some(var) if !vars.contains(&var) => vars.push(var),
                            _ => return Err(unknown_variable(name)),
                        }
                    }
                    _ => return Err(format!("syntax error in `{source}`: {err}")),
                },
            }
        };
        Ok(CustomerExpression {
            source: source.to_owned(),
            engine,
            ast,
            vars,
            scope: Scope::new(),
        })
    }

    /// The expression's text.
    #[must_use]
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether the expression reads custom attributes (`attr`): without it, they need not be
    /// parsed.
    #[must_use]
    pub fn reads_attributes(&self) -> bool {
        self.vars.contains(&Var::Feature(Feature::Attr))
    }

    /// Runs the expression for one customer.
    pub fn eval(&mut self, snapshot: &Snapshot, stored: Stored<'_>) -> Result<QueryValue, String> {
        self.scope.rewind(0);
        for var in &self.vars {
            let value = match var {
                Var::Feature(feature) => snapshot.dynamic(*feature).clone(),
                Var::Tier => Dynamic::from(ImmutableString::from(stored.tier)),
                Var::Segments => Dynamic::from_map(
                    stored
                        .segments
                        .iter()
                        .map(|(set, segment)| (set.as_str().into(), Dynamic::from(segment.clone())))
                        .collect::<Map>(),
                ),
                Var::Scores => Dynamic::from_map(
                    stored
                        .scores
                        .iter()
                        .map(|(name, value)| (name.as_str().into(), json_to_dynamic(value)))
                        .collect::<Map>(),
                ),
            };
            self.scope.push_constant_dynamic(var_name(*var), value);
        }
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

fn var_name(var: Var) -> &'static str {
    match var {
        Var::Feature(feature) => feature.name(),
        Var::Tier => "tier",
        Var::Segments => "segments",
        Var::Scores => "scores",
    }
}

/// The message for a name that is neither a feature nor one of [`QUERY_VARIABLES`].
fn unknown_variable(name: &str) -> String {
    let candidates: Vec<&str> = Feature::all()
        .map(Feature::name)
        .chain(QUERY_VARIABLES)
        .collect();
    match closest(name, candidates.iter().copied()) {
        Some(near) => format!(
            "`{name}` is not a feature or variable: did you mean `{near}`? \
             (`tiercare functions` lists the features)"
        ),
        None => format!(
            "`{name}` is not a feature or variable: `tiercare functions` lists the features; \
             `tier`, `segments` and `scores` are the stored ones"
        ),
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
