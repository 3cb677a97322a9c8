//! tiercare's engine: the pure core that understands what users write.
//!
//! It parses and validates rule and mapping texts (YAML with small Rhai scripts), compiles every
//! script once, and evaluates them: import mappings turn source rows into typed records
//! ([`mapping`]), and tiering rules turn customer [`Snapshot`]s into [`Decision`]s ([`rules`],
//! [`evaluate`]). Everything a user wrote that is wrong comes back as a [`Diagnostic`] at
//! `file:line:column`.
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
//! The engine's modules live in rooms (folders), each using only the rooms listed before it; a
//! test (`tests/layers.rs` at the workspace root) fails on any import circle between rooms or
//! files:
//!
//! - [`text`] holds [`diagnostic`] (the one error type for user input, and its rendering), [`yaml`]
//!   (the only module that reads YAML; positions of keys and scalars), `location` (a place in a
//!   rule file).
//! - [`customer`] holds [`feature`] (the customer features rules read: the contract with the store)
//!   and [`snapshot`] (one customer's feature values and pin).
//! - [`script`] holds [`sandbox`] (the only place a Rhai engine is built; script errors located in
//!   YAML), compiled expressions and their native evaluator, script lints, and the
//!   [`catalog`](mod@catalog) of every feature and function rules can use (`tiercare functions`).
//! - [`import`] holds [`record`] (record kinds, our fields, cells, typed rows), [`mapping`] (import
//!   mappings, `tiercare import KIND FILE --mapping M.yaml`), [`mapping_functions`] (what mapping
//!   scripts can call), conversions of cells.
//! - [`care`] holds [`followup`] (follow-up rules and the contact policy), [`assignment`] (owner
//!   assignment by tier, balanced by spare capacity: [`assign`]), [`schedule`] (cron schedules),
//!   [`template`] (care-email templates, minijinja, checked against the context schema).
//! - [`tiering`] holds the compiled [`RuleSet`] (`tiering::rule_set`), [`evaluate`] (a
//!   [`RuleSet`] applied to a [`Snapshot`]: a [`Decision`], pins, [`hysteresis`]), [`explain`]
//!   (every step of a decision, `tiercare explain`), [`query`] (expressions over one customer for
//!   `tiercare customers --where`/`--sort`).
//! - [`planning`] holds [`plan`] (follow-ups planned for one customer over a time range, with
//!   occurrence keys) and [`delivery`] (the pure half of the delivery gate).
//! - [`load`] holds the loading layer: [`rules`] (rule files, `rules/*.yaml` and `rules/*.rhai`,
//!   validated into a [`RuleSet`]), the follow-up and assignment sections' loaders
//!   ([`check_references`]), [`ruletest`] (rule tests, `tiercare test`) and [`json_schema`] (the
//!   JSON Schema of rule and rule-test files, `tiercare schema`).
//!
//! The modules' earlier paths (`tiercare_engine::plan`, `tiercare_engine::template`...) are
//! re-exported below and stay valid.

// The JSON Schema of rule files is one `json!` literal, deeper than the default limit.
#![recursion_limit = "512"]

pub mod care;
pub mod customer;
pub mod import;
pub mod load;
pub mod planning;
pub mod script;
pub mod text;
pub mod tiering;

pub use care::{assignment, digest, followup, pool, reminders, schedule, sms, template};
pub use customer::{feature, snapshot};
pub use import::{mapping, mapping_functions, record};
pub use load::{json_schema, rules, ruletest};
pub use planning::{delivery, plan};
pub use script::{catalog, sandbox};
pub use text::{diagnostic, yaml};
pub use tiering::{evaluate, explain, hysteresis, query};

pub use assignment::{
    Assignment, AssignmentPlan, Candidate, ManagerLoad, TierAssignment, TierOutcome, Unowned,
    assign,
};
pub use care::incentive::{CouponPool, DEFAULT_WARN_BELOW};
pub use catalog::{Catalog, EventSpec, FunctionOrigin, FunctionSpec, catalog};
pub use diagnostic::{Diagnostic, Severity, render_all};
pub use evaluate::{Decision, Evaluator, RuleError, RuleTime};
pub use explain::{
    ConditionTrace, Explanation, HysteresisTrace, ScoreTrace, SegmentSetTrace, VariableValue,
};
pub use feature::{Feature, FeatureSpec, FeatureType, NEVER_DAYS, features};
pub use followup::{
    Action, Assignee, CadenceFrom, Caps, Channel, ContactPolicy, Event, FollowUpRule, ReEntry,
    SendWindow, TierPolicy, Trigger,
};
pub use hysteresis::DowngradeAfter;
pub use json_schema::rules_json_schema;
pub use load::followups::{
    References, check_references, check_sms_template_mapping, check_survey_templates,
};
pub use load::values::parse_duration;
pub use mapping::{BindError, BoundMapping, Mapping, script_name};
pub use plan::{
    CapPeriod, CustomerEvent, EventKind, FollowUpState, Given, Moved, Plan, PlannedAction, Planner,
    Skipped, SkippedAction, plan_customer,
};
pub use pool::{OwnedFacts, Pool, PoolStep, ReclaimDue, TierReclaim};
pub use query::{CustomerExpression, QueryValue, Stored};
pub use record::{
    Cell, Check, FieldSpec, FieldType, RecordKind, Rejection, RowOutcome, TypedRow,
    UnknownRecordKind, Value, field_index, fields,
};
pub use rules::{LoadedRules, RuleFile, load_rules};
pub use ruletest::{TestFailure, TestReport, run_rule_tests};
pub use sandbox::{Budget, Limits, Now, ScriptError, new_engine, script_diagnostic};
pub use sms::{
    LoadedSmsTemplates, SmsEncoding, SmsLength, SmsSample, SmsTemplates, load_sms_templates,
    load_sms_templates_for, sms_length,
};
pub use snapshot::{AssessmentTimes, FeatureTypeError, FeatureValue, Pin, Snapshot};
pub use template::{
    CONTEXT_SCHEMA, CouponContext, CustomerContext, LoadedTemplates, OwnerContext,
    RecommendationContext, RenderError, RenderedTemplate, SenderContext, SurveyContext, SurveyLink,
    TemplateContext, TemplateFile, Templates, TierContext, load_templates,
};
pub use text::location::Location;
pub use tiering::rule_set::{
    LibraryFunction, RuleInfo, RuleSet, ScoreInfo, SegmentSetInfo, Window,
};
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
