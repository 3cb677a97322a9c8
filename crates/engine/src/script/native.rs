//! Native evaluation of simple expressions: the fast path beside Rhai.
//!
//! Most conditions are a few comparisons of features with numbers joined by `&&` and `||`.
//! Running them through Rhai costs a scope and an interpreter pass per condition; this module
//! compiles such expressions (after Rhai has compiled them, so they are valid) into a small tree
//! evaluated directly on the snapshot.
//!
//! The rule is **same answer or no answer**: [`eval`] returns `None` ("decline") whenever it is not
//! certain to produce exactly what Rhai would (a type it does not handle, none where a number is
//! expected, an overflow, a division by zero, anything that would be an error), and the caller
//! then runs the Rhai script, which gives the real result or the real error. Semantics copied from
//! Rhai 1.x's built-in operators:
//!
//! - int with int: exact; `+ - * / %` checked (overflow and division by zero decline);
//! - a float on either side: both as floats; `+ - * / %` are IEEE; comparisons use Rhai's
//!   **relative epsilon** (`0.8 < 0.8000000000000001` is false in Rhai, and here);
//! - text with text and bool with bool: all comparisons; `()` with `()`: only `==` is true;
//! - `&&` and `||` short-circuit and want bools; `??` takes the right side when the left is `()`;
//! - `min`, `max` (Rhai's) and `ratio` (tiercare's) on numbers, unless a library redefines them.
//!
//! What is compiled: literals (decimal ints and floats, `true`, `false`, strings without escapes),
//! features, scores, `attr.name`, unary `!` and `-`, the binary operators above with Rhai's
//! precedence, parentheses, comments. Anything else (`if`, `let`, `in`, method calls, other
//! functions...) is not compiled and always runs in Rhai.

use rhai::{Dynamic, FLOAT, INT, ImmutableString, Map};

use crate::customer::feature::Feature;
use crate::customer::snapshot::Snapshot;

/// A variable an expression reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Var {
    /// A customer feature.
    Feature(Feature),
    /// The score at this index of the rule set.
    Score(usize),
}

/// A value during native evaluation.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Unit,
    Bool(bool),
    Int(INT),
    Float(FLOAT),
    Str(ImmutableString),
}

impl Value {
    fn from_dynamic(value: &Dynamic) -> Option<Value> {
        // `is_*` first: `as_*` on another type builds an error with the type's name.
        if value.is_int() {
            value.as_int().ok().map(Value::Int)
        } else if value.is_float() {
            value.as_float().ok().map(Value::Float)
        } else if value.is_bool() {
            value.as_bool().ok().map(Value::Bool)
        } else if value.is_unit() {
            Some(Value::Unit)
        } else if value.is_string() {
            value.clone().into_immutable_string().ok().map(Value::Str)
        } else {
            None
        }
    }

    /// The value as Rhai's.
    pub(crate) fn into_dynamic(self) -> Dynamic {
        match self {
            Value::Unit => Dynamic::UNIT,
            Value::Bool(b) => Dynamic::from_bool(b),
            Value::Int(i) => Dynamic::from_int(i),
            Value::Float(f) => Dynamic::from_float(f),
            Value::Str(s) => Dynamic::from(s),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Coalesce,
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

impl Op {
    /// Rhai's precedence (`Token::precedence`); all left-associative.
    fn precedence(self) -> u8 {
        match self {
            Op::Or => 30,
            Op::And => 60,
            Op::Eq | Op::Ne => 90,
            Op::Lt | Op::Le | Op::Gt | Op::Ge => 130,
            Op::Coalesce => 135,
            Op::Add | Op::Sub => 150,
            Op::Mul | Op::Div | Op::Rem => 180,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Function {
    Min,
    Max,
    Ratio,
}

/// A compiled expression.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    Literal(Value),
    Feature(Feature),
    Score(usize),
    Attr(ImmutableString),
    Not(Box<Node>),
    Neg(Box<Node>),
    Binary(Op, Box<Node>, Box<Node>),
    Call(Function, Box<Node>, Box<Node>),
    /// `feature <comparison> number` (or a score): the most common condition, without the
    /// general machinery.
    Compare(Operand, Op, Number),
}

/// A feature or score read by [`Node::Compare`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Operand {
    Feature(Feature),
    Score(usize),
}

/// A number literal of [`Node::Compare`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Number {
    Int(INT),
    Float(FLOAT),
}

/// What an expression reads: the snapshot and the scores computed so far.
pub(crate) struct Context<'a> {
    pub(crate) snapshot: &'a Snapshot,
    pub(crate) scores: &'a [Option<Dynamic>],
}

#[derive(Debug, Clone, PartialEq)]
enum Token<'s> {
    Int(INT),
    Float(FLOAT),
    Str(&'s str),
    Ident(&'s str),
    Op(Op),
    Not,
    Dot,
    Open,
    Close,
    Comma,
}

/// Splits `source` into tokens; `None` for anything outside the subset.
fn tokenize(source: &str) -> Option<Vec<Token<'_>>> {
    let bytes = source.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let next = bytes.get(i + 1).copied();
        match c {
            b' ' | b'\t' | b'\n' | b'\r' => i += 1,
            b'/' if next == Some(b'/') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if next == Some(b'*') => {
                let end = source[i + 2..].find("*/")?;
                // Nested block comments: leave them to Rhai.
                if source[i + 2..i + 2 + end].contains("/*") {
                    return None;
                }
                i += end + 4;
            }
            b'0'..=b'9' => {
                let start = i;
                while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'_') {
                    i += 1;
                }
                let mut is_float = false;
                if bytes.get(i) == Some(&b'.') && bytes.get(i + 1).is_some_and(u8::is_ascii_digit) {
                    is_float = true;
                    i += 1;
                    while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'_') {
                        i += 1;
                    }
                }
                // Exponents, hex, a method call on a number...: Rhai's.
                if bytes
                    .get(i)
                    .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'.' || *b == b'_')
                {
                    return None;
                }
                let text: String = source[start..i].chars().filter(|c| *c != '_').collect();
                tokens.push(if is_float {
                    Token::Float(text.parse().ok()?)
                } else {
                    Token::Int(text.parse().ok()?)
                });
            }
            b'"' => {
                let end = source[i + 1..].find('"')?;
                let text = &source[i + 1..i + 1 + end];
                if text.contains(['\\', '\n', '\r']) {
                    return None;
                }
                tokens.push(Token::Str(text));
                i += end + 2;
            }
            b'a'..=b'z' | b'A'..=b'Z' | b'_' => {
                let start = i;
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
                tokens.push(Token::Ident(&source[start..i]));
            }
            _ => {
                let two = [c, next.unwrap_or(0)];
                let (token, width) = match &two {
                    b"||" => (Token::Op(Op::Or), 2),
                    b"&&" => (Token::Op(Op::And), 2),
                    b"==" => (Token::Op(Op::Eq), 2),
                    b"!=" => (Token::Op(Op::Ne), 2),
                    b"<=" => (Token::Op(Op::Le), 2),
                    b">=" => (Token::Op(Op::Ge), 2),
                    b"??" => (Token::Op(Op::Coalesce), 2),
                    // `**`, `<<`, `>>`, `+=`, `?.`, `..`, `|>`...: Rhai's.
                    b"**" | b"<<" | b">>" | b"?." | b"?[" | b".." | b"::" | b"->" | b"=>" => {
                        return None;
                    }
                    _ => match c {
                        b'<' => (Token::Op(Op::Lt), 1),
                        b'>' => (Token::Op(Op::Gt), 1),
                        b'+' => (Token::Op(Op::Add), 1),
                        b'-' => (Token::Op(Op::Sub), 1),
                        b'*' => (Token::Op(Op::Mul), 1),
                        b'/' => (Token::Op(Op::Div), 1),
                        b'%' => (Token::Op(Op::Rem), 1),
                        b'!' => (Token::Not, 1),
                        b'.' => (Token::Dot, 1),
                        b'(' => (Token::Open, 1),
                        b')' => (Token::Close, 1),
                        b',' => (Token::Comma, 1),
                        _ => return None,
                    },
                };
                // `+=` and the other assignments: Rhai's (`<=`, `>=`, `!=` were matched above).
                if width == 1 && two[1] == b'=' && matches!(c, b'+' | b'-' | b'*' | b'/' | b'%') {
                    return None;
                }
                tokens.push(token);
                i += width;
            }
        }
    }
    Some(tokens)
}

struct Parser<'s, 'r> {
    tokens: Vec<Token<'s>>,
    at: usize,
    resolve: &'r dyn Fn(&str) -> Option<Var>,
    /// Function names the rule set's libraries define (they override the built-ins).
    redefined: &'r [&'r str],
}

impl<'s> Parser<'s, '_> {
    fn peek(&self) -> Option<&Token<'s>> {
        self.tokens.get(self.at)
    }

    fn next(&mut self) -> Option<Token<'s>> {
        let token = self.tokens.get(self.at).cloned();
        self.at += 1;
        token
    }

    fn expression(&mut self, min_precedence: u8) -> Option<Node> {
        let mut left = self.unary()?;
        while let Some(Token::Op(op)) = self.peek() {
            let op = *op;
            if op.precedence() < min_precedence {
                break;
            }
            self.at += 1;
            let right = self.expression(op.precedence() + 1)?;
            left = Node::Binary(op, Box::new(left), Box::new(right));
        }
        Some(left)
    }

    fn unary(&mut self) -> Option<Node> {
        match self.next()? {
            Token::Not => Some(Node::Not(Box::new(self.unary()?))),
            Token::Op(Op::Sub) => match self.peek()? {
                // Rhai reads `-5` as a literal.
                Token::Int(i) => {
                    let value = i.checked_neg()?;
                    self.at += 1;
                    Some(Node::Literal(Value::Int(value)))
                }
                Token::Float(f) => {
                    let value = -*f;
                    self.at += 1;
                    Some(Node::Literal(Value::Float(value)))
                }
                _ => Some(Node::Neg(Box::new(self.unary()?))),
            },
            Token::Int(i) => Some(Node::Literal(Value::Int(i))),
            Token::Float(f) => Some(Node::Literal(Value::Float(f))),
            Token::Str(s) => Some(Node::Literal(Value::Str(s.into()))),
            Token::Open => {
                let inner = self.expression(0)?;
                matches!(self.next()?, Token::Close).then_some(inner)
            }
            Token::Ident(name) => self.identifier(name),
            _ => None,
        }
    }

    fn identifier(&mut self, name: &'s str) -> Option<Node> {
        match name {
            "true" => return Some(Node::Literal(Value::Bool(true))),
            "false" => return Some(Node::Literal(Value::Bool(false))),
            _ => {}
        }
        match self.peek() {
            Some(Token::Open) => {
                let function = match name {
                    "min" => Function::Min,
                    "max" => Function::Max,
                    "ratio" => Function::Ratio,
                    _ => return None,
                };
                if self.redefined.contains(&name) {
                    return None;
                }
                self.at += 1;
                let first = self.expression(0)?;
                if !matches!(self.next()?, Token::Comma) {
                    return None;
                }
                let second = self.expression(0)?;
                matches!(self.next()?, Token::Close)
                    .then(|| Node::Call(function, Box::new(first), Box::new(second)))
            }
            Some(Token::Dot) => {
                if name != "attr" || (self.resolve)(name) != Some(Var::Feature(Feature::Attr)) {
                    return None;
                }
                self.at += 1;
                let Some(Token::Ident(property)) = self.next() else {
                    return None;
                };
                // A method call (`attr.keys()`) or a chain (`attr.a.b`): Rhai's.
                if matches!(self.peek(), Some(Token::Open | Token::Dot)) {
                    return None;
                }
                Some(Node::Attr(property.into()))
            }
            _ => match (self.resolve)(name)? {
                Var::Feature(Feature::Attr) => None,
                Var::Feature(feature) => Some(Node::Feature(feature)),
                Var::Score(index) => Some(Node::Score(index)),
            },
        }
    }
}

/// Compiles `source` (an expression Rhai has compiled) if it is in the native subset. `resolve`
/// names the variables the expression may read; `redefined` lists functions the rule set's
/// libraries define.
pub(crate) fn compile(
    source: &str,
    resolve: &dyn Fn(&str) -> Option<Var>,
    redefined: &[&str],
) -> Option<Node> {
    let tokens = tokenize(source)?;
    let mut parser = Parser {
        tokens,
        at: 0,
        resolve,
        redefined,
    };
    let node = parser.expression(0)?;
    (parser.at == parser.tokens.len()).then(|| specialize(node))
}

/// Rewrites `variable <comparison> number` into [`Node::Compare`], everywhere in the tree.
fn specialize(node: Node) -> Node {
    match node {
        Node::Binary(op, left, right) => {
            let comparison = matches!(op, Op::Eq | Op::Ne | Op::Lt | Op::Le | Op::Gt | Op::Ge);
            match (comparison, *left, *right) {
                (true, Node::Feature(feature), Node::Literal(literal)) => {
                    compare_node(Operand::Feature(feature), op, literal)
                }
                (true, Node::Score(index), Node::Literal(literal)) => {
                    compare_node(Operand::Score(index), op, literal)
                }
                (_, left, right) => {
                    Node::Binary(op, Box::new(specialize(left)), Box::new(specialize(right)))
                }
            }
        }
        Node::Not(inner) => Node::Not(Box::new(specialize(*inner))),
        Node::Neg(inner) => Node::Neg(Box::new(specialize(*inner))),
        Node::Call(function, first, second) => Node::Call(
            function,
            Box::new(specialize(*first)),
            Box::new(specialize(*second)),
        ),
        other => other,
    }
}

fn compare_node(operand: Operand, op: Op, literal: Value) -> Node {
    let number = match literal {
        Value::Int(i) => Number::Int(i),
        Value::Float(f) => Number::Float(f),
        other => {
            let left = match operand {
                Operand::Feature(feature) => Node::Feature(feature),
                Operand::Score(index) => Node::Score(index),
            };
            return Node::Binary(op, Box::new(left), Box::new(Node::Literal(other)));
        }
    };
    Node::Compare(operand, op, number)
}

/// Evaluates a compiled expression: `Some` is exactly what Rhai would return, `None` means "ask
/// Rhai" (see the module documentation).
pub(crate) fn eval(node: &Node, context: &Context<'_>) -> Option<Value> {
    match node {
        Node::Literal(value) => Some(value.clone()),
        Node::Feature(feature) => Value::from_dynamic(context.snapshot.dynamic(*feature)),
        Node::Score(index) => Value::from_dynamic(context.scores.get(*index)?.as_ref()?),
        Node::Attr(property) => {
            let attr = context.snapshot.dynamic(Feature::Attr).read_lock::<Map>()?;
            match attr.get(property.as_str()) {
                Some(value) => Value::from_dynamic(value),
                None => Some(Value::Unit),
            }
        }
        Node::Not(inner) => match eval(inner, context)? {
            Value::Bool(b) => Some(Value::Bool(!b)),
            _ => None,
        },
        Node::Neg(inner) => match eval(inner, context)? {
            Value::Int(i) => i.checked_neg().map(Value::Int),
            Value::Float(f) => Some(Value::Float(-f)),
            _ => None,
        },
        Node::Binary(Op::And, left, right) => match eval(left, context)? {
            Value::Bool(false) => Some(Value::Bool(false)),
            Value::Bool(true) => match eval(right, context)? {
                value @ Value::Bool(_) => Some(value),
                _ => None,
            },
            _ => None,
        },
        Node::Binary(Op::Or, left, right) => match eval(left, context)? {
            Value::Bool(true) => Some(Value::Bool(true)),
            Value::Bool(false) => match eval(right, context)? {
                value @ Value::Bool(_) => Some(value),
                _ => None,
            },
            _ => None,
        },
        Node::Binary(Op::Coalesce, left, right) => match eval(left, context)? {
            Value::Unit => eval(right, context),
            value => Some(value),
        },
        Node::Binary(op, left, right) => {
            let left = eval(left, context)?;
            let right = eval(right, context)?;
            binary(*op, &left, &right)
        }
        Node::Call(function, first, second) => {
            let first = eval(first, context)?;
            let second = eval(second, context)?;
            call(*function, &first, &second)
        }
        Node::Compare(operand, op, number) => {
            compare(context, *operand, *op, *number).map(Value::Bool)
        }
    }
}

/// [`eval`] for a condition: `Some(true)`/`Some(false)` exactly when [`eval`] would give that
/// bool; `None` for anything else. Skips building values for `&&`, `||`, `!` and comparisons.
pub(crate) fn eval_bool(node: &Node, context: &Context<'_>) -> Option<bool> {
    match node {
        Node::Compare(operand, op, number) => compare(context, *operand, *op, *number),
        Node::Binary(Op::And, left, right) => {
            if eval_bool(left, context)? {
                eval_bool(right, context)
            } else {
                Some(false)
            }
        }
        Node::Binary(Op::Or, left, right) => {
            if eval_bool(left, context)? {
                Some(true)
            } else {
                eval_bool(right, context)
            }
        }
        Node::Not(inner) => eval_bool(inner, context).map(|b| !b),
        other => match eval(other, context)? {
            Value::Bool(b) => Some(b),
            _ => None,
        },
    }
}

/// `variable <comparison> number` on the snapshot or the scores.
#[inline]
fn compare(context: &Context<'_>, operand: Operand, op: Op, number: Number) -> Option<bool> {
    let value = match operand {
        Operand::Feature(feature) => context.snapshot.dynamic(feature),
        Operand::Score(index) => context.scores.get(index)?.as_ref()?,
    };
    // `is_int` first: `as_int` on a float builds an error with the type's name.
    if value.is_int() {
        let x = value.as_int().ok()?;
        match number {
            Number::Int(y) => Some(int_compare(op, x, y)),
            #[expect(clippy::cast_precision_loss, reason = "as Rhai converts")]
            Number::Float(y) => float_compare(op, x as FLOAT, y),
        }
    } else if value.is_float() {
        let x = value.as_float().ok()?;
        #[expect(clippy::cast_precision_loss, reason = "as Rhai converts")]
        let y = match number {
            Number::Int(y) => y as FLOAT,
            Number::Float(y) => y,
        };
        float_compare(op, x, y)
    } else {
        None
    }
}

fn int_compare(op: Op, x: INT, y: INT) -> bool {
    match op {
        Op::Eq => x == y,
        Op::Ne => x != y,
        Op::Lt => x < y,
        Op::Le => x <= y,
        Op::Gt => x > y,
        _ => x >= y,
    }
}

#[expect(
    clippy::cast_precision_loss,
    reason = "Rhai converts ints to floats the same way"
)]
fn as_float(value: &Value) -> Option<FLOAT> {
    match value {
        Value::Int(i) => Some(*i as FLOAT),
        Value::Float(f) => Some(*f),
        _ => None,
    }
}

fn binary(op: Op, left: &Value, right: &Value) -> Option<Value> {
    use std::cmp::Ordering;
    let compare = |ordering: Ordering| match op {
        Op::Eq => Some(Value::Bool(ordering == Ordering::Equal)),
        Op::Ne => Some(Value::Bool(ordering != Ordering::Equal)),
        Op::Lt => Some(Value::Bool(ordering == Ordering::Less)),
        Op::Le => Some(Value::Bool(ordering != Ordering::Greater)),
        Op::Gt => Some(Value::Bool(ordering == Ordering::Greater)),
        Op::Ge => Some(Value::Bool(ordering != Ordering::Less)),
        _ => None,
    };
    match (left, right) {
        (Value::Int(x), Value::Int(y)) => match op {
            Op::Add => x.checked_add(*y).map(Value::Int),
            Op::Sub => x.checked_sub(*y).map(Value::Int),
            Op::Mul => x.checked_mul(*y).map(Value::Int),
            Op::Div => x.checked_div(*y).map(Value::Int),
            Op::Rem => x.checked_rem(*y).map(Value::Int),
            _ => compare(x.cmp(y)),
        },
        (Value::Int(_) | Value::Float(_), Value::Int(_) | Value::Float(_)) => {
            let (x, y) = (as_float(left)?, as_float(right)?);
            match op {
                Op::Add => Some(Value::Float(x + y)),
                Op::Sub => Some(Value::Float(x - y)),
                Op::Mul => Some(Value::Float(x * y)),
                Op::Div => Some(Value::Float(x / y)),
                Op::Rem => Some(Value::Float(x % y)),
                _ => float_compare(op, x, y).map(Value::Bool),
            }
        }
        (Value::Str(x), Value::Str(y)) => compare(x.as_str().cmp(y.as_str())),
        (Value::Bool(x), Value::Bool(y)) => compare(x.cmp(y)),
        (Value::Unit, Value::Unit) => match op {
            Op::Eq => Some(Value::Bool(true)),
            Op::Ne | Op::Lt | Op::Le | Op::Gt | Op::Ge => Some(Value::Bool(false)),
            _ => None,
        },
        _ => None,
    }
}

/// Rhai's float comparisons (`get_builtin_binary_op_fn`, checked build), verbatim: relative to
/// the larger magnitude, within `FLOAT::EPSILON` counts as equal.
#[inline]
fn float_compare(op: Op, x: FLOAT, y: FLOAT) -> Option<bool> {
    let max = if x * y == 0.0 {
        1.0
    } else {
        x.abs().max(y.abs())
    };
    if max == 0.0 {
        return Some(matches!(op, Op::Eq | Op::Ge | Op::Le));
    }
    Some(match op {
        Op::Eq => (x - y).abs() / max <= FLOAT::EPSILON,
        Op::Ne => (x - y).abs() / max > FLOAT::EPSILON,
        Op::Gt => (x - y) / max > FLOAT::EPSILON,
        Op::Ge => (x - y) / max > -FLOAT::EPSILON,
        Op::Lt => (y - x) / max > FLOAT::EPSILON,
        Op::Le => (y - x) / max > -FLOAT::EPSILON,
        _ => return None,
    })
}

fn call(function: Function, first: &Value, second: &Value) -> Option<Value> {
    match (function, first, second) {
        (Function::Max, Value::Int(x), Value::Int(y)) => {
            Some(Value::Int(if x >= y { *x } else { *y }))
        }
        (Function::Min, Value::Int(x), Value::Int(y)) => {
            Some(Value::Int(if x <= y { *x } else { *y }))
        }
        (Function::Max, _, _) => {
            let (x, y) = (as_float(first)?, as_float(second)?);
            Some(Value::Float(if x >= y { x } else { y }))
        }
        (Function::Min, _, _) => {
            let (x, y) = (as_float(first)?, as_float(second)?);
            Some(Value::Float(if x <= y { x } else { y }))
        }
        (Function::Ratio, _, _) => {
            let (x, y) = (as_float(first)?, as_float(second)?);
            Some(Value::Float(if y == 0.0 { 0.0 } else { x / y }))
        }
    }
}

// Mapping scripts (`derive:` and `skip:` of an import mapping) use the same subset over a row's
// columns instead of features, plus the string tests `starts_with`, `ends_with`, `contains`,
// `is_empty` and `len`. The rule is the same: same answer or no answer.

/// A column value as a mapping script sees it, borrowed from the row (or from the expression).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum RowValue<'a> {
    Unit,
    Bool(bool),
    Int(INT),
    Float(FLOAT),
    Str(&'a str),
}

impl RowValue<'_> {
    /// The value as Rhai's.
    pub(crate) fn to_dynamic(self) -> Dynamic {
        match self {
            RowValue::Unit => Dynamic::UNIT,
            RowValue::Bool(b) => Dynamic::from_bool(b),
            RowValue::Int(i) => Dynamic::from_int(i),
            RowValue::Float(f) => Dynamic::from_float(f),
            RowValue::Str(s) => Dynamic::from(ImmutableString::from(s)),
        }
    }
}

/// A string method a mapping script may call natively.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    StartsWith,
    EndsWith,
    Contains,
    IsEmpty,
    Len,
}

/// A compiled mapping expression.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum RowNode {
    Literal(Value),
    /// The variable at this index of the row.
    Column(usize),
    Not(Box<RowNode>),
    Neg(Box<RowNode>),
    Binary(Op, Box<RowNode>, Box<RowNode>),
    /// `receiver.method(argument)`.
    Method(Method, Box<RowNode>, Option<Box<RowNode>>),
}

struct RowParser<'s, 'r> {
    tokens: Vec<Token<'s>>,
    at: usize,
    resolve: &'r dyn Fn(&str) -> Option<usize>,
}

impl<'s> RowParser<'s, '_> {
    fn expression(&mut self, min_precedence: u8) -> Option<RowNode> {
        let mut left = self.unary()?;
        while let Some(Token::Op(op)) = self.tokens.get(self.at) {
            let op = *op;
            if op.precedence() < min_precedence {
                break;
            }
            self.at += 1;
            let right = self.expression(op.precedence() + 1)?;
            left = RowNode::Binary(op, Box::new(left), Box::new(right));
        }
        Some(left)
    }

    fn next(&mut self) -> Option<Token<'s>> {
        let token = self.tokens.get(self.at).cloned();
        self.at += 1;
        token
    }

    fn unary(&mut self) -> Option<RowNode> {
        let token = self.tokens.get(self.at).cloned()?;
        self.at += 1;
        let primary = match token {
            Token::Not => return Some(RowNode::Not(Box::new(self.unary()?))),
            Token::Op(Op::Sub) => {
                return match self.tokens.get(self.at)? {
                    // Rhai reads `-5` as a literal.
                    Token::Int(i) => {
                        let value = i.checked_neg()?;
                        self.at += 1;
                        self.postfix(RowNode::Literal(Value::Int(value)))
                    }
                    Token::Float(f) => {
                        let value = -*f;
                        self.at += 1;
                        self.postfix(RowNode::Literal(Value::Float(value)))
                    }
                    _ => Some(RowNode::Neg(Box::new(self.unary()?))),
                };
            }
            Token::Int(i) => RowNode::Literal(Value::Int(i)),
            Token::Float(f) => RowNode::Literal(Value::Float(f)),
            Token::Str(s) => RowNode::Literal(Value::Str(s.into())),
            Token::Open => {
                let inner = self.expression(0)?;
                if !matches!(self.next()?, Token::Close) {
                    return None;
                }
                inner
            }
            Token::Ident("true") => RowNode::Literal(Value::Bool(true)),
            Token::Ident("false") => RowNode::Literal(Value::Bool(false)),
            Token::Ident(name) => {
                // A function call (`len(x)`) is Rhai's.
                if matches!(self.tokens.get(self.at), Some(Token::Open)) {
                    return None;
                }
                RowNode::Column((self.resolve)(name)?)
            }
            _ => return None,
        };
        self.postfix(primary)
    }

    /// Method calls after a primary: `x.starts_with("C")`, `x.is_empty()`...
    fn postfix(&mut self, mut node: RowNode) -> Option<RowNode> {
        while matches!(self.tokens.get(self.at), Some(Token::Dot)) {
            self.at += 1;
            let Some(Token::Ident(name)) = self.next() else {
                return None;
            };
            if !matches!(self.next()?, Token::Open) {
                return None;
            }
            let argument = if matches!(self.tokens.get(self.at), Some(Token::Close)) {
                None
            } else {
                Some(Box::new(self.expression(0)?))
            };
            if !matches!(self.next()?, Token::Close) {
                return None;
            }
            let method = match (name, argument.is_some()) {
                ("starts_with", true) => Method::StartsWith,
                ("ends_with", true) => Method::EndsWith,
                ("contains", true) => Method::Contains,
                ("is_empty", false) => Method::IsEmpty,
                ("len", false) => Method::Len,
                _ => return None,
            };
            node = RowNode::Method(method, Box::new(node), argument);
        }
        Some(node)
    }
}

/// Compiles a mapping script (which Rhai has compiled) if it is in the native subset. `resolve`
/// gives the row index of each variable the script may read.
pub(crate) fn compile_row(
    source: &str,
    resolve: &dyn Fn(&str) -> Option<usize>,
) -> Option<RowNode> {
    let tokens = tokenize(source)?;
    let mut parser = RowParser {
        tokens,
        at: 0,
        resolve,
    };
    let node = parser.expression(0)?;
    (parser.at == parser.tokens.len()).then_some(node)
}

/// Evaluates a compiled mapping expression over a row: `Some` is exactly what Rhai would return,
/// `None` means "ask Rhai".
pub(crate) fn eval_row<'a>(node: &'a RowNode, row: &[RowValue<'a>]) -> Option<RowValue<'a>> {
    match node {
        RowNode::Literal(value) => Some(match value {
            Value::Unit => RowValue::Unit,
            Value::Bool(b) => RowValue::Bool(*b),
            Value::Int(i) => RowValue::Int(*i),
            Value::Float(f) => RowValue::Float(*f),
            Value::Str(s) => RowValue::Str(s.as_str()),
        }),
        RowNode::Column(index) => row.get(*index).copied(),
        RowNode::Not(inner) => match eval_row(inner, row)? {
            RowValue::Bool(b) => Some(RowValue::Bool(!b)),
            _ => None,
        },
        RowNode::Neg(inner) => match eval_row(inner, row)? {
            RowValue::Int(i) => i.checked_neg().map(RowValue::Int),
            RowValue::Float(f) => Some(RowValue::Float(-f)),
            _ => None,
        },
        RowNode::Binary(Op::And, left, right) => match eval_row(left, row)? {
            RowValue::Bool(false) => Some(RowValue::Bool(false)),
            RowValue::Bool(true) => match eval_row(right, row)? {
                value @ RowValue::Bool(_) => Some(value),
                _ => None,
            },
            _ => None,
        },
        RowNode::Binary(Op::Or, left, right) => match eval_row(left, row)? {
            RowValue::Bool(true) => Some(RowValue::Bool(true)),
            RowValue::Bool(false) => match eval_row(right, row)? {
                value @ RowValue::Bool(_) => Some(value),
                _ => None,
            },
            _ => None,
        },
        RowNode::Binary(Op::Coalesce, left, right) => match eval_row(left, row)? {
            RowValue::Unit => eval_row(right, row),
            value => Some(value),
        },
        RowNode::Binary(op, left, right) => {
            let left = eval_row(left, row)?;
            let right = eval_row(right, row)?;
            row_binary(*op, left, right)
        }
        RowNode::Method(method, receiver, argument) => {
            let RowValue::Str(text) = eval_row(receiver, row)? else {
                return None;
            };
            let argument = match argument {
                Some(argument) => match eval_row(argument, row)? {
                    RowValue::Str(argument) => Some(argument),
                    _ => return None,
                },
                None => None,
            };
            match (method, argument) {
                (Method::StartsWith, Some(prefix)) => {
                    Some(RowValue::Bool(text.starts_with(prefix)))
                }
                (Method::EndsWith, Some(suffix)) => Some(RowValue::Bool(text.ends_with(suffix))),
                (Method::Contains, Some(part)) => Some(RowValue::Bool(text.contains(part))),
                (Method::IsEmpty, None) => Some(RowValue::Bool(text.is_empty())),
                (Method::Len, None) => INT::try_from(text.chars().count()).ok().map(RowValue::Int),
                _ => None,
            }
        }
    }
}

fn row_binary<'a>(op: Op, left: RowValue<'a>, right: RowValue<'a>) -> Option<RowValue<'a>> {
    use std::cmp::Ordering;
    let scalar = |value: RowValue<'_>| match value {
        RowValue::Unit => Some(Value::Unit),
        RowValue::Bool(b) => Some(Value::Bool(b)),
        RowValue::Int(i) => Some(Value::Int(i)),
        RowValue::Float(f) => Some(Value::Float(f)),
        RowValue::Str(_) => None,
    };
    match (left, right) {
        (RowValue::Str(x), RowValue::Str(y)) => {
            let ordering = x.cmp(y);
            Some(RowValue::Bool(match op {
                Op::Eq => ordering == Ordering::Equal,
                Op::Ne => ordering != Ordering::Equal,
                Op::Lt => ordering == Ordering::Less,
                Op::Le => ordering != Ordering::Greater,
                Op::Gt => ordering == Ordering::Greater,
                Op::Ge => ordering != Ordering::Less,
                // `+` concatenates (a new string): Rhai's.
                _ => return None,
            }))
        }
        _ => match binary(op, &scalar(left)?, &scalar(right)?)? {
            Value::Unit => Some(RowValue::Unit),
            Value::Bool(b) => Some(RowValue::Bool(b)),
            Value::Int(i) => Some(RowValue::Int(i)),
            Value::Float(f) => Some(RowValue::Float(f)),
            Value::Str(_) => None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(name: &str) -> Option<Var> {
        Feature::from_name(name).map(Var::Feature)
    }

    fn compiles(source: &str) -> bool {
        compile(source, &resolve, &[]).is_some()
    }

    #[test]
    fn the_subset() {
        for source in [
            "revenue_share_before < 0.80",
            "r_score >= 4 && f_score >= 4 && m_score >= 4",
            "(attr.potential ?? 0) * 0.6 + f_score * 8",
            "!(orders_total == 0) || region == \"EU\"",
            "min(interactions_window, 5) + -1",
            "tenure_days > 365\n  && days_since_last_order > 365 // a comment\n  && revenue_percentile < 25",
            "1_000 < revenue_window /* inline */",
            "true",
        ] {
            assert!(compiles(source), "{source}");
        }
        for source in [
            "if orders_total > 0 { true } else { false }",
            "let x = 1; x > 0",
            "region in [\"DE\"]",
            "region.starts_with(\"D\")",
            "orders_total ** 2 > 4",
            "1e3 < revenue_window",
            "0x10 < orders_total",
            "\"a\\\"b\" == region",
            "attr.keys().len() > 0",
            "attr",
            "abs(orders_total) > 1",
            "orders_total > 1;",
            "unknown > 1",
            "orders_total >",
            "orders_total | 1",
        ] {
            assert!(!compiles(source), "{source}");
        }
        assert!(compile("max(1, 2) > 1", &resolve, &["max"]).is_none());
    }

    #[test]
    fn precedence_is_rhais() {
        let node = compile("1 + 2 * 3 < 10 == true", &resolve, &[]).unwrap();
        let context = Context {
            snapshot: &Snapshot::new(),
            scores: &[],
        };
        assert_eq!(eval(&node, &context), Some(Value::Bool(true)));
        // `??` binds tighter than comparisons.
        let node = compile("satisfaction_avg ?? 5.0 < 2.5", &resolve, &[]).unwrap();
        assert_eq!(eval(&node, &context), Some(Value::Bool(false)));
    }

    /// Rhai's formula, as written in Rhai (a guard for anyone optimizing `float_compare`).
    fn rhai_compare(op: Op, x: FLOAT, y: FLOAT) -> bool {
        let max = if x * y == 0.0 {
            1.0
        } else {
            x.abs().max(y.abs())
        };
        if max == 0.0 {
            return matches!(op, Op::Eq | Op::Ge | Op::Le);
        }
        match op {
            Op::Eq => (x - y).abs() / max <= FLOAT::EPSILON,
            Op::Ne => (x - y).abs() / max > FLOAT::EPSILON,
            Op::Gt => (x - y) / max > FLOAT::EPSILON,
            Op::Ge => (x - y) / max > -FLOAT::EPSILON,
            Op::Lt => (y - x) / max > FLOAT::EPSILON,
            _ => (y - x) / max > -FLOAT::EPSILON,
        }
    }

    #[test]
    fn float_comparisons_match_rhais_formula() {
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        let mut random = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let specials = [
            0.0,
            -0.0,
            1.0,
            0.8,
            0.1 + 0.2,
            0.3,
            FLOAT::EPSILON,
            FLOAT::MIN_POSITIVE,
            FLOAT::MAX,
            FLOAT::INFINITY,
            FLOAT::NEG_INFINITY,
            FLOAT::NAN,
            1e-300,
            1e300,
        ];
        let ops = [Op::Eq, Op::Ne, Op::Lt, Op::Le, Op::Gt, Op::Ge];
        let mut checked = 0;
        for round in 0..20_000 {
            let pick = |bits: u64| -> FLOAT {
                match bits % 4 {
                    0 => specials[(bits >> 8) as usize % specials.len()],
                    1 => FLOAT::from_bits(bits >> 2),
                    _ => ((bits >> 11) as FLOAT / (1u64 << 53) as FLOAT - 0.5) * 2000.0,
                }
            };
            let x = pick(random());
            // Often a neighbour of x, a few ulps away: the boundary cases.
            let y = if round % 2 == 0 {
                let steps = (random() % 9) as i64 - 4;
                FLOAT::from_bits(x.to_bits().wrapping_add_signed(steps))
                    * (1.0 + (random() % 3) as FLOAT * FLOAT::EPSILON)
            } else {
                pick(random())
            };
            for op in ops {
                assert_eq!(
                    float_compare(op, x, y),
                    Some(rhai_compare(op, x, y)),
                    "{op:?} {x:e} {y:e}"
                );
                checked += 1;
            }
        }
        assert_eq!(checked, 120_000);
    }

    /// Native results equal Rhai's, over tricky expressions and random customers; and the
    /// simple ones are not all declined.
    #[test]
    fn native_agrees_with_rhai() {
        use crate::customer::feature::FeatureType;
        let expressions = [
            "revenue_share_before < 0.80",
            "r_score >= 4 && f_score >= 4 && m_score >= 4",
            "(attr.potential ?? 0) * 0.6 + f_score * 8",
            "orders_total / interactions_total",
            "orders_total % 3 == 1",
            "orders_total % interactions_total",
            "-orders_total < -3",
            "!(orders_total > 2) || region == \"EU\"",
            "region != \"EU\" && region < \"M\"",
            "satisfaction_avg ?? 5.0 < 2.5",
            "satisfaction_avg < 2.5",
            "satisfaction_last == satisfaction_avg",
            "min(interactions_window, 5) + max(r_score, 2.5)",
            "min(revenue_window, orders_total) - max(orders_total, complaints_open)",
            "ratio(orders_window, orders_total) + ratio(revenue_window, 0)",
            "revenue_window * 1000000000000.0 > 5",
            "orders_total * 4611686018427387904 > 0",
            "orders_total - -9223372036854775807",
            "has_email == consent_email",
            "has_email > consent_sms || consent_phone <= has_email",
            "(last_order_at ?? 0) > 1600000000",
            "last_order_at > 1600000000",
            "attr.vip ?? false",
            "attr.tier == \"gold\"",
            "attr.potential > 50",
            "1 + 2 * 3 - orders_total / 2 >= 4 == true",
            "revenue_percentile % 7.5",
            "0.1 + 0.2 == 0.3",
            "revenue_share == revenue_share_before",
            "revenue_share_after - revenue_share_before >= revenue_share",
            "days_since_last_order > 365 && revenue_percentile < 25",
            "-revenue_window",
            "!has_email",
            "!orders_total",
            "orders_total && true",
            "true || orders_total",
            "false || orders_total > 1",
            "region == 3",
            "revenue_window / orders_total > 10",
            "tenure_days - days_since_first_order",
        ];
        let engine = crate::script::catalog::rules_engine();
        let mut compile_scope = rhai::Scope::new();
        for feature in Feature::all() {
            compile_scope.push_dynamic(feature.name(), Dynamic::UNIT);
        }
        let compiled: Vec<(&str, rhai::AST, Option<Node>)> = expressions
            .iter()
            .map(|source| {
                let ast = engine
                    .compile_with_scope(&compile_scope, source)
                    .unwrap_or_else(|err| panic!("{source}: {err}"));
                (*source, ast, compile(source, &resolve, &[]))
            })
            .collect();
        let not_native: Vec<&str> = compiled
            .iter()
            .filter(|(_, _, node)| node.is_none())
            .map(|(source, _, _)| *source)
            .collect();
        assert!(not_native.is_empty(), "{not_native:?}");

        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut random = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let ints = [
            0,
            1,
            2,
            3,
            4,
            5,
            7,
            -1,
            -5,
            365,
            366,
            1_600_000_000,
            i64::MAX,
            i64::MIN,
        ];
        let floats = [
            0.0,
            -0.0,
            0.8,
            0.7999999999999999,
            0.95,
            2.5,
            25.0,
            1e-9,
            1e300,
            -3.5,
            f64::NAN,
            f64::INFINITY,
        ];
        let texts = ["", "EU", "eu", "M", "Zed", "gold"];
        let (mut native_answers, mut declined) = (0, 0);
        for _ in 0..3_000 {
            let mut snapshot = Snapshot::new();
            for feature in Feature::all() {
                let spec = feature.spec();
                let r = random();
                if spec.optional && r % 3 == 0 {
                    continue;
                }
                match spec.ty {
                    FeatureType::Int | FeatureType::Time => {
                        let value = ints[(r >> 8) as usize % ints.len()];
                        if spec.ty == FeatureType::Time {
                            snapshot.set_time(feature, Some(value));
                        } else {
                            snapshot.set_int(feature, value);
                        }
                    }
                    FeatureType::Float if spec.optional => snapshot.set_optional_float(
                        feature,
                        Some(floats[(r >> 8) as usize % floats.len()]),
                    ),
                    FeatureType::Float => {
                        snapshot.set_float(feature, floats[(r >> 8) as usize % floats.len()]);
                    }
                    FeatureType::Text => {
                        snapshot.set_text(feature, texts[(r >> 8) as usize % texts.len()])
                    }
                    FeatureType::Bool => snapshot.set_bool(feature, r % 2 == 0),
                    FeatureType::Map => {
                        let mut attr = serde_json::Map::new();
                        match r % 4 {
                            0 => {}
                            1 => {
                                attr.insert("potential".into(), serde_json::json!(80));
                                attr.insert("vip".into(), serde_json::json!(true));
                            }
                            2 => {
                                attr.insert("potential".into(), serde_json::json!(42.5));
                                attr.insert("tier".into(), serde_json::json!("gold"));
                            }
                            _ => {
                                attr.insert("potential".into(), serde_json::json!("high"));
                                attr.insert("vip".into(), serde_json::json!(null));
                            }
                        }
                        snapshot.set_attributes(&attr);
                    }
                }
            }
            let mut scope = rhai::Scope::new();
            for feature in Feature::all() {
                scope.push_constant_dynamic(feature.name(), snapshot.dynamic(feature).clone());
            }
            let context = Context {
                snapshot: &snapshot,
                scores: &[],
            };
            for (source, ast, node) in &compiled {
                let node = node.as_ref().expect("compiled");
                let rhai = engine.eval_ast_with_scope::<Dynamic>(&mut scope, ast);
                let Some(native) = eval(node, &context) else {
                    declined += 1;
                    continue;
                };
                native_answers += 1;
                let rhai = rhai.unwrap_or_else(|err| {
                    panic!("{source}: native gave {native:?}, Rhai failed: {err}")
                });
                let same = match (&native, Value::from_dynamic(&rhai)) {
                    (Value::Float(a), Some(Value::Float(b))) => {
                        a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
                    }
                    (a, b) => Some(a) == b.as_ref(),
                };
                assert!(same, "{source}: native {native:?}, Rhai {rhai:?}");
                if let (Some(b), Value::Bool(expected)) = (eval_bool(node, &context), &native) {
                    assert_eq!(b, *expected, "{source}");
                }
            }
        }
        // Most answers are native; declines are the none, overflow and type-mismatch cases.
        assert!(
            native_answers > declined * 2,
            "{native_answers} native, {declined} declined"
        );
    }

    #[test]
    fn rhai_float_equality_is_relative() {
        assert_eq!(
            float_compare(Op::Lt, 0.8, 0.800_000_000_000_000_1),
            Some(false)
        );
        assert_eq!(float_compare(Op::Eq, 0.1 + 0.2, 0.3), Some(true));
        assert_eq!(float_compare(Op::Lt, 0.0, 0.0), Some(false));
        assert_eq!(float_compare(Op::Le, 0.0, 0.0), Some(true));
    }
}
