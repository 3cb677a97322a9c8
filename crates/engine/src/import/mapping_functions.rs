//! The functions an import mapping's scripts can call: Rhai's standard library, plus string
//! helpers that return a new string (Rhai's own `trim` and `replace` change a variable in place
//! and return nothing, which a column, a constant, cannot be).
//!
//! A mapping calling anything else is refused when it is parsed, before any row is read, with a
//! "did you mean" (`unknown_calls`): Rhai itself would only fail on every row.

use rhai::{Engine, ImmutableString};

use crate::script::lint;
use crate::script::sandbox;
use crate::text::diagnostic::{closest, edit_distance};

/// tiercare's string helpers for mappings: (name, signature, what it returns).
pub const HELPERS: [(&str, &str, &str); 6] = [
    (
        "trim",
        "trim(text)",
        "the text without leading and trailing white space",
    ),
    (
        "trim_start",
        "trim_start(text)",
        "the text without leading white space",
    ),
    (
        "trim_end",
        "trim_end(text)",
        "the text without trailing white space",
    ),
    ("lower", "lower(text)", "the text in lower case"),
    ("upper", "upper(text)", "the text in upper case"),
    (
        "replace",
        "replace(text, from, to)",
        "the text with every `from` replaced by `to`",
    ),
];

/// The Rhai engine mappings run in: [`sandbox::new_engine`] with [`HELPERS`]. Each helper can
/// be called as a function (`trim(Email)`) or a method (`Email.trim()`).
pub(crate) fn mapping_engine() -> Engine {
    let mut engine = sandbox::new_engine();
    engine
        .register_fn("trim", |text: ImmutableString| -> ImmutableString {
            text.trim().into()
        })
        .register_fn("trim_start", |text: ImmutableString| -> ImmutableString {
            text.trim_start().into()
        })
        .register_fn("trim_end", |text: ImmutableString| -> ImmutableString {
            text.trim_end().into()
        })
        .register_fn("lower", |text: ImmutableString| -> ImmutableString {
            text.to_lowercase().into()
        })
        .register_fn("upper", |text: ImmutableString| -> ImmutableString {
            text.to_uppercase().into()
        })
        .register_fn(
            "replace",
            |text: ImmutableString,
             from: ImmutableString,
             to: ImmutableString|
             -> ImmutableString { text.replace(from.as_str(), to.as_str()).into() },
        );
    engine
}

/// The names of Rhai's standard functions (its `packages` and the built-in keyword functions),
/// read from rhai 1.27's sources: a call to a name outside this list and [`HELPERS`] cannot
/// succeed.
const RHAI_FUNCTIONS: &[&str] = &[
    "abs",
    "acos",
    "acosh",
    "all",
    "append",
    "as_string",
    "asin",
    "asinh",
    "atan",
    "atanh",
    "bits",
    "blob",
    "bytes",
    "call",
    "ceiling",
    "chars",
    "chop",
    "clear",
    "contains",
    "cos",
    "cosh",
    "crop",
    "curry",
    "debug",
    "dedup",
    "drain",
    "elapsed",
    "end",
    "ends_with",
    "exit",
    "exp",
    "extract",
    "fill_with",
    "filter",
    "find",
    "find_map",
    "floor",
    "for_each",
    "fraction",
    "Fn",
    "get",
    "get_bit",
    "get_bits",
    "get_fn_metadata_list",
    "hypot",
    "index_of",
    "insert",
    "int",
    "is_anonymous",
    "is_def_fn",
    "is_def_var",
    "is_empty",
    "is_even",
    "is_exclusive",
    "is_finite",
    "is_inclusive",
    "is_infinite",
    "is_nan",
    "is_odd",
    "is_shared",
    "is_zero",
    "keys",
    "len",
    "ln",
    "log",
    "make_lower",
    "make_upper",
    "map",
    "max",
    "min",
    "mixin",
    "name",
    "pad",
    "parse_be_float",
    "parse_be_int",
    "parse_float",
    "parse_int",
    "parse_json",
    "parse_le_float",
    "parse_le_int",
    "pop",
    "print",
    "push",
    "range",
    "reduce",
    "reduce_rev",
    "remove",
    "replace",
    "retain",
    "reverse",
    "round",
    "round_down",
    "round_half_down",
    "round_half_up",
    "round_up",
    "set",
    "set_bit",
    "set_bits",
    "shift",
    "sign",
    "sin",
    "sinh",
    "sleep",
    "some",
    "sort",
    "sort_by",
    "sort_desc",
    "splice",
    "split",
    "split_rev",
    "sqrt",
    "start",
    "starts_with",
    "sub_string",
    "tag",
    "take",
    "tan",
    "tanh",
    "timestamp",
    "to_array",
    "to_binary",
    "to_blob",
    "to_chars",
    "to_debug",
    "to_degrees",
    "to_float",
    "to_hex",
    "to_int",
    "to_json",
    "to_lower",
    "to_octal",
    "to_radians",
    "to_string",
    "to_upper",
    "trim",
    "truncate",
    "type_of",
    "values",
    "write_ascii",
    "write_be",
    "write_le",
    "write_utf8",
    "zip",
    "order",
    "order_by",
    "order_desc",
    "equals",
    "not_equals",
    "merge",
    "fill",
];

/// Whether `name` is a function mapping scripts can call.
fn is_known(name: &str) -> bool {
    RHAI_FUNCTIONS.contains(&name) || HELPERS.iter().any(|(helper, _, _)| *helper == name)
}

/// A call in a script to a function mappings do not have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UnknownCall {
    /// The function's name.
    pub(crate) name: String,
    /// 1-based line and column of the name in the script.
    pub(crate) line: usize,
    pub(crate) column: usize,
    /// The closest known name, if one is close.
    pub(crate) near: Option<&'static str>,
}

/// Every call (function or method) in `source` to a name that is neither a standard function,
/// a helper, nor defined in the script itself; each name once.
pub(crate) fn unknown_calls(source: &str) -> Vec<UnknownCall> {
    let mut found: Vec<UnknownCall> = Vec::new();
    for call in lint::function_calls(source) {
        if is_known(call.name) || found.iter().any(|seen| seen.name == call.name) {
            continue;
        }
        let known = || {
            RHAI_FUNCTIONS
                .iter()
                .copied()
                .chain(HELPERS.iter().map(|(name, _, _)| *name))
        };
        // A typo (`trim_strat`) before a name inside it (`trim`), which `closest` prefers.
        let near = known()
            .map(|name| (edit_distance(call.name, name), name))
            .filter(|(distance, name)| *distance <= 2.max(call.name.len().max(name.len()) / 3))
            .min_by_key(|(distance, _)| *distance)
            .map(|(_, name)| name)
            .or_else(|| closest(call.name, known()));
        found.push(UnknownCall {
            name: call.name.to_owned(),
            line: call.line,
            column: call.column,
            near,
        });
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use rhai::{Dynamic, Scope};

    fn run(script: &str) -> String {
        let engine = mapping_engine();
        let mut scope = Scope::new();
        scope.push_constant("Email", ImmutableString::from("  Jo@Example.COM "));
        engine
            .eval_with_scope::<Dynamic>(&mut scope, script)
            .unwrap()
            .to_string()
    }

    #[test]
    fn helpers_return_new_strings_as_functions_and_methods() {
        assert_eq!(run("trim(Email)"), "Jo@Example.COM");
        assert_eq!(run("Email.trim()"), "Jo@Example.COM");
        assert_eq!(run("Email.trim_start()"), "Jo@Example.COM ");
        assert_eq!(run("trim_end(Email)"), "  Jo@Example.COM");
        assert_eq!(run("lower(trim(Email))"), "jo@example.com");
        assert_eq!(run("Email.trim().upper()"), "JO@EXAMPLE.COM");
        assert_eq!(run("replace(trim(Email), \"Example\", \"x\")"), "Jo@x.COM");
        assert_eq!(run("Email.to_lower().trim()"), "jo@example.com");
    }

    #[test]
    fn unknown_calls_are_found_with_a_suggestion() {
        let calls = unknown_calls("let x = lowercase(Email); x.strip() + Email.trim()");
        let names: Vec<&str> = calls.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["lowercase", "strip"]);
        assert_eq!(calls[0].near, Some("lower"));
        assert_eq!(
            unknown_calls("trim_strat(Email)")[0].near,
            Some("trim_start")
        );
        assert_eq!((calls[0].line, calls[0].column), (1, 9));
    }

    #[test]
    fn keywords_and_own_functions_are_not_calls() {
        let script = "fn twice(x) { x * 2 } if (twice(1) > 1) { switch (1) { _ => 0 } } else { 0 }";
        assert_eq!(unknown_calls(script), []);
    }
}
