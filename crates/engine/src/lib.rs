//! tiercare's engine: the pure core that understands what users write.
//!
//! It parses and validates rule and mapping texts (YAML with small Rhai scripts), compiles every
//! script once, and evaluates them: import mappings turn source rows into typed records
//! ([`mapping`]), and rules turn customer snapshots into decisions. Everything a user wrote that
//! is wrong comes back as a [`Diagnostic`] at `file:line:column`.
//!
//! # What this crate must never do
//!
//! - **No IO.** It never reads or writes files, the network, stdout or the clock: it is given
//!   `(path, text)` and data, and returns values or diagnostics. The scheduler does the IO.
//! - **No SQL.** Storage is `tiercare-store`'s job.
//! - **No mail.** It decides what should be sent; the scheduler sends it.
//! - **No unbounded work.** Every Rhai engine comes from [`sandbox::new_engine`], with every limit
//!   set; YAML is read only through [`yaml::parse`], which refuses oversized, deeply nested and
//!   alias-bomb documents.
//!
//! # Map
//!
//! - [`diagnostic`]: the one error type for user input, and its rendering.
//! - [`yaml`]: the only module that reads YAML; positions of keys and scalars.
//! - [`sandbox`]: the only place a Rhai engine is built; script errors located in YAML.
//! - [`record`]: record kinds, our fields, cells, typed rows.
//! - [`mapping`]: import mappings (`tiercare import KIND FILE --mapping M.yaml`).
//! - [`schedule`]: cron schedules (5-field crontab and the `cron` crate's 6/7-field form).

pub mod diagnostic;
pub mod mapping;
pub mod record;
pub mod sandbox;
pub mod schedule;
pub mod yaml;

mod convert;
mod script_lint;

pub use diagnostic::{Diagnostic, Severity, render_all};
pub use mapping::{BindError, BoundMapping, Mapping, script_name};
pub use record::{
    Cell, Check, FieldSpec, FieldType, RecordKind, Rejection, RowOutcome, TypedRow,
    UnknownRecordKind, Value, field_index, fields,
};
pub use sandbox::{Limits, ScriptError, new_engine, script_diagnostic};
pub use yaml::{Document, PathSeg, ScalarStyle, Span, Spans, YamlLimits};

/// Every error the engine returns, for callers that want one type.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Problems in a file the user wrote (rules, mappings), each at `file:line:column`.
    #[error("{}", render_all(.0, false).trim_end())]
    Diagnostics(Vec<Diagnostic>),
    /// A mapping does not fit the header of the file being imported.
    #[error(transparent)]
    Bind(#[from] BindError),
    /// An unknown record kind name.
    #[error(transparent)]
    Kind(#[from] UnknownRecordKind),
}

impl From<Vec<Diagnostic>> for Error {
    fn from(diagnostics: Vec<Diagnostic>) -> Self {
        Error::Diagnostics(diagnostics)
    }
}
