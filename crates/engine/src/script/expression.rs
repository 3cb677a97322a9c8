//! One compiled expression of the rules (a `when` or a score): its Rhai program, its native
//! form when it has one, the variables it reads and where it is written.

use rhai::AST;

use crate::script::native::{self, Var};
use crate::text::yaml::PathSeg;

/// How an expression runs.
#[derive(Debug)]
pub(crate) enum Program {
    /// The literal `true` or `false`: no script at all. (The place where natively compiled
    /// conditions will go.)
    Constant(bool),
    /// A compiled Rhai script (with the rule set's library merged in).
    Script(AST),
}

/// One compiled expression.
#[derive(Debug)]
pub(crate) struct Expression {
    /// How runtime errors name it: `tiers[1] (B)`, `scores.potential`, `segments.rfm[0] (champions)`.
    pub(crate) label: String,
    /// The source text.
    pub(crate) source: String,
    /// The source on one line, shortened, for reasons.
    pub(crate) one_line: String,
    pub(crate) program: Program,
    /// The same expression compiled natively, when it is simple enough ([`crate::script::native`]).
    pub(crate) native: Option<native::Node>,
    /// Variables read, in order of first use.
    pub(crate) vars: Vec<Var>,
    /// Where it is in its file.
    pub(crate) file: usize,
    pub(crate) key_path: Vec<PathSeg>,
}
