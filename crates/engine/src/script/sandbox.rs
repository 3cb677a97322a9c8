//! The only place a Rhai [`Engine`] is built: every limit set explicitly, no module loading, no
//! `eval`, no output.
//!
//! Rhai's default limits differ between debug and release builds (and some are unlimited), so
//! [`new_engine`] sets every one of them from [`Limits`]. A script that runs away (an endless
//! loop, unbounded recursion, a string or array that keeps growing) is stopped with an error; it
//! never hangs or crashes the process. Rhai's `unchecked` feature, which removes these checks,
//! must never be enabled.
//!
//! Operations do not bound time (one operation can upper-case a 16 KB string), so an evaluation
//! may also carry a [`Budget`]: a deadline checked every few operations while a script runs
//! (Rhai's `on_progress`). The engine reads no clock of its own: the caller passes the time
//! source in with the budget (the scheduler passes `Instant::now`), and the time only ever stops
//! a script that runs too long; it never takes part in a decision.
//!
//! [`script_diagnostic`] turns a Rhai error inside a YAML string into a [`Diagnostic`] at its
//! real line and column in the YAML file.

use std::cell::Cell;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rhai::module_resolvers::DummyModuleResolver;
use rhai::{
    Dynamic, Engine, EvalAltResult, OptimizationLevel, ParseError, ParseErrorType, Position,
};

use crate::text::diagnostic::Diagnostic;
use crate::text::yaml::{PathSeg, Spans, path_to_string};

/// The limits every tiercare script runs under (per evaluation).
#[derive(Debug, Clone, Copy)]
pub struct Limits;

impl Limits {
    /// Operations per evaluation (an operation is roughly one expression step); stops endless
    /// loops.
    pub const MAX_OPERATIONS: u64 = 200_000;
    /// Depth of nested function calls; stops unbounded recursion well before the native stack
    /// runs out, even in debug builds.
    pub const MAX_CALL_LEVELS: usize = 16;
    /// Nesting depth of expressions at the top level of a script.
    pub const MAX_EXPR_DEPTH: usize = 48;
    /// Nesting depth of expressions inside functions.
    pub const MAX_FUNCTION_EXPR_DEPTH: usize = 24;
    /// Length of any string, in bytes (the total of all strings inside one array or map).
    pub const MAX_STRING_SIZE: usize = 16 * 1024;
    /// Elements of any array (nested arrays included).
    pub const MAX_ARRAY_SIZE: usize = 10_000;
    /// Properties of any object map (nested maps included).
    pub const MAX_MAP_SIZE: usize = 1_000;
    /// Variables alive at once.
    pub const MAX_VARIABLES: usize = 256;
    /// Functions a script may define.
    pub const MAX_FUNCTIONS: usize = 64;
    /// Modules a script may import: none.
    pub const MAX_MODULES: usize = 0;
}

/// A monotonic time source, passed in by the caller: the engine reads no clock itself.
pub type Now = fn() -> Instant;

/// How long one evaluation (every rule for one customer, or one mapping row) may take.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// The time allowed.
    pub limit: Duration,
    /// Where the time comes from (`Instant::now`; a test may pass a clock of its own).
    pub now: Now,
}

/// The deadline of the evaluation running on this thread.
#[derive(Debug, Clone, Copy)]
struct Deadline {
    at: Instant,
    now: Now,
    limit_ms: u64,
}

thread_local! {
    static DEADLINE: Cell<Option<Deadline>> = const { Cell::new(None) };
}

/// The clock is read once every this many operations (an operation is tens of nanoseconds, a
/// clock read about as much).
const OPERATIONS_PER_CLOCK_READ: u64 = 16;

/// Starts the budget of an evaluation on this thread (`None`: no deadline). Every script run on
/// this thread until the next call is stopped once the time is up.
pub(crate) fn start_budget(budget: Option<Budget>) {
    let deadline = budget.map(|budget| Deadline {
        at: (budget.now)() + budget.limit,
        now: budget.now,
        limit_ms: u64::try_from(budget.limit.as_millis()).unwrap_or(u64::MAX),
    });
    DEADLINE.with(|cell| cell.set(deadline));
}

/// `Some` (the budget in ms, as the token of Rhai's termination) when this thread's deadline
/// has passed.
fn over_budget(operations: u64) -> Option<Dynamic> {
    if !operations.is_multiple_of(OPERATIONS_PER_CLOCK_READ) {
        return None;
    }
    let deadline = DEADLINE.with(Cell::get)?;
    ((deadline.now)() >= deadline.at)
        .then(|| Dynamic::from_int(i64::try_from(deadline.limit_ms).unwrap_or(i64::MAX)))
}

/// A new sandboxed Rhai engine.
///
/// Every limit of [`Limits`] is set; modules cannot be loaded (`import` is disabled and the
/// module resolver finds nothing); `eval` is disabled; undefined variables are compile errors
/// (strict variables: compile against a [`rhai::Scope`] holding every variable a script may
/// read); `print` and `debug` output is discarded, so scripts never write to stdout.
#[must_use]
pub fn new_engine() -> Engine {
    let mut engine = Engine::new();
    engine
        .set_max_operations(Limits::MAX_OPERATIONS)
        .set_max_call_levels(Limits::MAX_CALL_LEVELS)
        .set_max_expr_depths(Limits::MAX_EXPR_DEPTH, Limits::MAX_FUNCTION_EXPR_DEPTH)
        .set_max_string_size(Limits::MAX_STRING_SIZE)
        .set_max_array_size(Limits::MAX_ARRAY_SIZE)
        .set_max_map_size(Limits::MAX_MAP_SIZE)
        .set_max_variables(Limits::MAX_VARIABLES)
        .set_max_functions(Limits::MAX_FUNCTIONS)
        .set_max_modules(Limits::MAX_MODULES)
        .set_module_resolver(DummyModuleResolver::new())
        .set_strict_variables(true)
        .set_optimization_level(OptimizationLevel::Simple)
        .disable_symbol("eval")
        .disable_symbol("import");
    engine.on_print(|_| {});
    engine.on_debug(|_, _, _| {});
    engine.on_progress(over_budget);
    engine
}

/// Checks a script's syntax alone, without knowing which variables will exist (strict variables
/// off; every other setting as [`new_engine`]).
pub(crate) fn check_syntax(script: &str) -> Result<(), ParseError> {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    let engine = ENGINE.get_or_init(|| {
        let mut engine = new_engine();
        engine.set_strict_variables(false);
        engine
    });
    engine.compile(script).map(drop)
}

/// Whether `name` can be used as a variable in scripts: not a keyword or reserved word (`if`,
/// `true`, `default`, `null`...) and well-formed (Rhai wants a letter before any digit, so `_2`
/// is not a name).
pub(crate) fn is_variable_name(name: &str) -> bool {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    let engine = ENGINE.get_or_init(new_engine);
    match engine.compile(name) {
        Err(err) => {
            matches!(err.err_type(), ParseErrorType::VariableUndefined(undefined) if undefined == name)
        }
        Ok(_) => false,
    }
}

/// A Rhai error, from compiling or from running a script.
#[derive(Debug, Clone, Copy)]
pub enum ScriptError<'a> {
    /// A compile error.
    Parse(&'a ParseError),
    /// A run-time error.
    Eval(&'a EvalAltResult),
}

impl<'a> From<&'a ParseError> for ScriptError<'a> {
    fn from(err: &'a ParseError) -> Self {
        ScriptError::Parse(err)
    }
}

impl<'a> From<&'a EvalAltResult> for ScriptError<'a> {
    fn from(err: &'a EvalAltResult) -> Self {
        ScriptError::Eval(err)
    }
}

impl ScriptError<'_> {
    /// Position inside the script (1-based line and column), if Rhai knows it.
    #[must_use]
    pub fn position(&self) -> Option<(usize, usize)> {
        let position = match self {
            ScriptError::Parse(err) => err.position(),
            ScriptError::Eval(err) => {
                let inner = err.unwrap_inner().position();
                if inner.is_none() {
                    err.position()
                } else {
                    inner
                }
            }
        };
        position_pair(position)
    }

    /// The message without Rhai's own position suffix, with Rhai's internal type names replaced
    /// by the ones users write (`string`, `int`, `float`), starting in lower case.
    #[must_use]
    pub fn message(&self) -> String {
        let raw = match self {
            ScriptError::Parse(err) => err.err_type().to_string(),
            ScriptError::Eval(err) => describe_eval_error(err),
        };
        clean_message(&raw)
    }
}

fn position_pair(position: Position) -> Option<(usize, usize)> {
    match (position.line(), position.position()) {
        (Some(line), Some(column)) => Some((line, column)),
        (Some(line), None) => Some((line, 1)),
        _ => None,
    }
}

/// A run-time error as a one-line reason: limit violations say which limit, other errors are
/// Rhai's message without its position.
#[must_use]
pub fn describe_eval_error(err: &EvalAltResult) -> String {
    let inner = err.unwrap_inner();
    let text = match inner {
        EvalAltResult::ErrorTooManyOperations(..) => format!(
            "script stopped: more than {} operations (an endless loop?)",
            Limits::MAX_OPERATIONS
        ),
        EvalAltResult::ErrorStackOverflow(..) => format!(
            "script stopped: functions nested more than {} calls deep (unbounded recursion?)",
            Limits::MAX_CALL_LEVELS
        ),
        EvalAltResult::ErrorDataTooLarge(what, ..) => format!(
            "script stopped: {} over the limit (strings {} bytes, arrays {} elements, maps {} entries)",
            what.to_lowercase(),
            Limits::MAX_STRING_SIZE,
            Limits::MAX_ARRAY_SIZE,
            Limits::MAX_MAP_SIZE
        ),
        EvalAltResult::ErrorTerminated(token, ..) => format!(
            "script stopped: over its time budget of {} ms (a slow rule?)",
            token.as_int().unwrap_or_default()
        ),
        EvalAltResult::ErrorTooManyVariables(..) => format!(
            "script stopped: more than {} variables",
            Limits::MAX_VARIABLES
        ),
        EvalAltResult::ErrorTooManyModules(..) | EvalAltResult::ErrorModuleNotFound(..) => {
            "scripts cannot import modules".to_owned()
        }
        other => strip_position(&other.to_string()),
    };
    clean_message(&text)
}

/// Whether a run-time error is a type mismatch (an operator or function applied to the wrong
/// types), the usual symptom of a column read as a string.
#[must_use]
pub fn is_type_mismatch(err: &EvalAltResult) -> bool {
    match err.unwrap_inner() {
        // `"3" * "2"`: no `*` for strings. An unknown function on other types is just unknown.
        EvalAltResult::ErrorFunctionNotFound(signature, _) => {
            signature.contains("ImmutableString") || signature.contains("()")
        }
        EvalAltResult::ErrorMismatchDataType(..) | EvalAltResult::ErrorMismatchOutputType(..) => {
            true
        }
        _ => false,
    }
}

/// Removes a trailing ` (line N, position M)` that Rhai appends to messages.
fn strip_position(text: &str) -> String {
    let first_line = text.lines().next().unwrap_or(text);
    match first_line.rfind(" (line ") {
        Some(index) if first_line.ends_with(')') => first_line[..index].to_owned(),
        _ => first_line.to_owned(),
    }
}

fn clean_message(text: &str) -> String {
    let text = text
        .replace("&str | ImmutableString | String", "string")
        .replace("i64", "int")
        .replace("f64", "float");
    let mut chars = text.chars();
    match (chars.next(), chars.next()) {
        (Some(first), Some(second)) if first.is_uppercase() && !second.is_uppercase() => {
            first.to_lowercase().chain(text.chars().skip(1)).collect()
        }
        _ => text,
    }
}

/// A Rhai error in the script held by the YAML scalar at `key_path` of the file `path` (whose
/// full text is `text`), reported at its real line and column in the file.
#[must_use]
pub fn script_diagnostic<'a>(
    path: &str,
    text: &str,
    spans: &Spans,
    key_path: &[PathSeg],
    err: impl Into<ScriptError<'a>>,
) -> Diagnostic {
    let err = err.into();
    let (line, column) = match err.position() {
        Some((line, column)) => spans.locate_in_scalar(key_path, line, column),
        None => spans.position(key_path),
    };
    let what = match err {
        ScriptError::Parse(_) => "syntax error",
        ScriptError::Eval(_) => "script error",
    };
    let message = err.message();
    let diagnostic = Diagnostic::error(
        path,
        line,
        column,
        format!("{what} in `{}`: {message}", path_to_string(key_path)),
    )
    .with_source(text);
    let hint = match err {
        ScriptError::Parse(_) => ["eval", "import"]
            .into_iter()
            .find(|symbol| message.contains(&format!("'{symbol}'")))
            .map(|symbol| format!("`{symbol}` is not available in tiercare scripts")),
        ScriptError::Eval(eval) if is_type_mismatch(eval) => {
            Some("check the types of the values: a string is not a number".to_owned())
        }
        ScriptError::Eval(_) => None,
    };
    match hint {
        Some(hint) => diagnostic.with_hint(hint),
        None => diagnostic,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rhai::Dynamic;

    fn run(script: &str) -> Result<Dynamic, String> {
        let engine = new_engine();
        match engine.compile(script) {
            Err(err) => Err(ScriptError::from(&err).message()),
            Ok(ast) => engine
                .eval_ast::<Dynamic>(&ast)
                .map_err(|err| describe_eval_error(&err)),
        }
    }

    #[test]
    fn a_normal_expression_works() {
        assert_eq!(run("let x = 40; x + 2").unwrap().as_int(), Ok(42));
        // int × float mixes without a cast.
        assert_eq!(run("3 * 2.5").unwrap().as_float(), Ok(7.5));
    }

    #[test]
    fn endless_loop_is_stopped() {
        let err = run("let x = 0; loop { x += 1; }").unwrap_err();
        assert_eq!(
            err,
            "script stopped: more than 200000 operations (an endless loop?)"
        );
    }

    #[test]
    fn unbounded_recursion_is_stopped() {
        let err = run("fn down(n) { down(n + 1) } down(0)").unwrap_err();
        assert_eq!(
            err,
            "script stopped: functions nested more than 16 calls deep (unbounded recursion?)"
        );
    }

    #[test]
    fn growing_string_is_stopped() {
        let err = run(r#"let s = "ab"; loop { s += s; }"#).unwrap_err();
        assert!(
            err.starts_with("script stopped: length of string over the limit"),
            "{err}"
        );
    }

    #[test]
    fn huge_array_is_stopped() {
        let err = run("let a = []; a.pad(1000000, 0); a").unwrap_err();
        assert!(err.starts_with("script stopped: size of array"), "{err}");
        let err = run("let a = []; loop { a.push(1); }").unwrap_err();
        assert!(err.starts_with("script stopped: size of array"), "{err}");
    }

    #[test]
    fn a_slow_script_is_stopped_by_its_budget() {
        let slow = r#"let s = "abcdefgh"; for i in 0..10 { s += s; } for i in 0..1000000 { s.to_upper(); } 1"#;
        start_budget(Some(Budget {
            limit: Duration::from_millis(20),
            now: Instant::now,
        }));
        let started = Instant::now();
        let engine = new_engine();
        let err = engine.eval::<Dynamic>(slow).unwrap_err();
        assert_eq!(
            describe_eval_error(&err),
            "script stopped: over its time budget of 20 ms (a slow rule?)"
        );
        assert!(started.elapsed() < Duration::from_secs(2));
        start_budget(None);
        assert_eq!(run("40 + 2").unwrap().as_int(), Ok(42));
    }

    #[test]
    fn eval_and_import_are_refused() {
        assert_eq!(
            run(r#"eval("1")"#).unwrap_err(),
            "reserved keyword 'eval' is disabled"
        );
        assert_eq!(
            run(r#"import "x" as y; 1"#).unwrap_err(),
            "'import' is a reserved keyword"
        );
    }

    #[test]
    fn undefined_variables_are_compile_errors() {
        assert_eq!(run("x + 1").unwrap_err(), "undefined variable: x");
    }

    #[test]
    fn deep_expression_is_refused_at_compile_time() {
        let script = format!("{}1{}", "(".repeat(200), ")".repeat(200));
        let err = run(&script).unwrap_err();
        assert_eq!(err, "expression exceeds maximum complexity");
    }

    #[test]
    fn variable_names() {
        for ok in ["x", "Quantity", "Unit_Price", "_private", "col_2019", "x_"] {
            assert!(is_variable_name(ok), "{ok}");
        }
        for bad in [
            "_2019", "2019", "if", "true", "default", "null", "print", "__", "_", "a b",
        ] {
            assert!(!is_variable_name(bad), "{bad}");
        }
    }

    #[test]
    fn messages_use_user_type_names() {
        let err = run(r#"let a = "3"; let b = "2"; a * b"#).unwrap_err();
        assert_eq!(err, "function not found: * (string, string)");
    }
}

#[cfg(test)]
mod located_tests {
    use super::*;
    use crate::text::yaml::{self, YamlLimits};

    #[test]
    fn runtime_error_in_a_block_is_located_in_the_yaml_file() {
        let text = "derive:\n  amount: |\n    let x = 1;\n    x / 0\n";
        let doc = yaml::parse::<serde_yaml::Value>("m.yaml", text, &YamlLimits::default())
            .expect("valid YAML");
        let path = [PathSeg::from("derive"), PathSeg::from("amount")];
        let script = doc.value["derive"]["amount"].as_str().expect("a string");
        let err = new_engine()
            .eval::<rhai::Dynamic>(script)
            .expect_err("division by zero");
        assert_eq!(
            script_diagnostic("m.yaml", text, &doc.spans, &path, &*err).to_string(),
            "m.yaml:4:7: error: script error in `derive.amount`: division by zero: 1 / 0\n  4 |     x / 0\n    |       ^"
        );
    }
}
