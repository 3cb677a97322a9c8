//! What an import produces: the record kinds, their fields (our own column names), the cells the
//! scheduler reads from a file, and the typed rows, skips and rejections the engine returns.
//!
//! The field tables here are the single source of truth for what each kind of record holds; the
//! store maps them to its schema, and [`crate::import::mapping`] maps a user's columns onto them.

use std::fmt;

use chrono::NaiveDate;

use Check::SingleLine;
use FieldType::{Bool, Date, Float, Int, Severity, Text, Time, Timezone};
pub use tiercare_types::{RecordKind, UnknownRecordKind};

/// The type of one of our fields, which decides how a cell is parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldType {
    /// Free text.
    Text,
    /// A whole number.
    Int,
    /// A number.
    Float,
    /// `true`/`false`, `yes`/`no`, `y`/`n`, `1`/`0` (any case).
    Bool,
    /// An instant, stored as unix seconds (UTC). See [`crate::import::mapping`] for accepted formats.
    Time,
    /// A calendar date, `YYYY-MM-DD`.
    Date,
    /// An IANA time zone name such as `Europe/London`.
    Timezone,
    /// `low`, `medium`, `high`, `critical` or `1` to `4`; stored as 1 to 4.
    Severity,
}

impl fmt::Display for FieldType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FieldType::Text => "text",
            FieldType::Int => "int",
            FieldType::Float => "float",
            FieldType::Bool => "bool",
            FieldType::Time => "time",
            FieldType::Date => "date",
            FieldType::Timezone => "timezone",
            FieldType::Severity => "severity",
        })
    }
}

/// An extra rule a field's value must satisfy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Check {
    /// Any value of the field's type.
    Any,
    /// No line breaks or control characters: the value may end up in a mail header.
    SingleLine,
    /// A plausible email address (one `@`, no whitespace, no control characters, no `<>`);
    /// implies [`Check::SingleLine`].
    Email,
    /// One of these words (any case; stored in lower case).
    OneOf(&'static [&'static str]),
    /// A number at least this large.
    AtLeast(f64),
    /// A number within these bounds (inclusive).
    Between(f64, f64),
}

/// One of our fields: its native column name, type and rules.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct FieldSpec {
    /// Our column name (the native CSV header).
    pub name: &'static str,
    /// How cells are parsed.
    pub ty: FieldType,
    /// Whether a row without it is rejected.
    pub required: bool,
    /// One line for `--help` and documentation.
    pub doc: &'static str,
    /// An extra rule the value must satisfy.
    pub check: Check,
}

const fn field(
    name: &'static str,
    ty: FieldType,
    required: bool,
    check: Check,
    doc: &'static str,
) -> FieldSpec {
    FieldSpec {
        name,
        ty,
        required,
        doc,
        check,
    }
}

/// The kinds of interaction a record may have.
pub const INTERACTION_KINDS: &[&str] = &[
    "call", "visit", "email", "meeting", "chat", "event", "other",
];

const CUSTOMERS: &[FieldSpec] = &[
    field(
        "customer_id",
        Text,
        true,
        SingleLine,
        "Your identifier of the customer.",
    ),
    field(
        "name",
        Text,
        false,
        SingleLine,
        "Name used in emails and reports.",
    ),
    field(
        "email",
        Text,
        false,
        Check::Email,
        "Email address for care mails.",
    ),
    field("phone", Text, false, SingleLine, "Phone number."),
    field(
        "birthday",
        Date,
        false,
        Check::Any,
        "Date of birth (YYYY-MM-DD).",
    ),
    field("region", Text, false, SingleLine, "Region or country."),
    field(
        "owner",
        Text,
        false,
        SingleLine,
        "Manager id of the account owner.",
    ),
    field(
        "timezone",
        Timezone,
        false,
        SingleLine,
        "IANA time zone, e.g. Europe/London.",
    ),
    field(
        "consent_email",
        Bool,
        false,
        Check::Any,
        "May we send emails?",
    ),
    field(
        "consent_sms",
        Bool,
        false,
        Check::Any,
        "May we send text messages?",
    ),
    field("consent_phone", Bool, false, Check::Any, "May we call?"),
];

const ORDERS: &[FieldSpec] = &[
    field(
        "order_id",
        Text,
        true,
        SingleLine,
        "Your identifier of the order (or invoice).",
    ),
    field(
        "customer_id",
        Text,
        true,
        SingleLine,
        "The customer who ordered.",
    ),
    field(
        "ordered_at",
        Time,
        true,
        Check::Any,
        "When the order was placed.",
    ),
    field(
        "amount",
        Float,
        false,
        Check::Any,
        "Order (line) value; required unless quantity and unit_price are given.",
    ),
    field("sku", Text, false, Check::Any, "Product code."),
    field(
        "description",
        Text,
        false,
        Check::Any,
        "Product description.",
    ),
    field(
        "quantity",
        Float,
        false,
        Check::Any,
        "Quantity of the line.",
    ),
    field("unit_price", Float, false, Check::Any, "Price per unit."),
    field(
        "customer_name",
        Text,
        false,
        SingleLine,
        "Name for customers the import creates.",
    ),
    field(
        "customer_region",
        Text,
        false,
        SingleLine,
        "Region for customers the import creates.",
    ),
    field(
        "coupon_code",
        Text,
        false,
        SingleLine,
        "A coupon code the order used: redeems the code issued to the customer.",
    ),
    field(
        "points_spent",
        Float,
        false,
        Check::AtLeast(0.0),
        "Points the order spent (taken from the customer's points balance).",
    ),
];

const INTERACTIONS: &[FieldSpec] = &[
    field(
        "interaction_id",
        Text,
        false,
        SingleLine,
        "Your identifier of the interaction.",
    ),
    field(
        "customer_id",
        Text,
        true,
        SingleLine,
        "The customer concerned.",
    ),
    field(
        "kind",
        Text,
        true,
        Check::OneOf(INTERACTION_KINDS),
        "call, visit, email, meeting, chat, event or other.",
    ),
    field("occurred_at", Time, true, Check::Any, "When it happened."),
    field("by", Text, false, SingleLine, "Manager id of who did it."),
    field("note", Text, false, Check::Any, "Free text."),
];

const COMPLAINTS: &[FieldSpec] = &[
    field(
        "complaint_id",
        Text,
        false,
        SingleLine,
        "Your identifier of the complaint.",
    ),
    field(
        "customer_id",
        Text,
        true,
        SingleLine,
        "The customer who complained.",
    ),
    field("opened_at", Time, true, Check::Any, "When it was opened."),
    field(
        "resolved_at",
        Time,
        false,
        Check::Any,
        "When it was resolved (empty: open).",
    ),
    field(
        "severity",
        Severity,
        false,
        Check::Any,
        "low, medium, high, critical or 1-4 (default medium).",
    ),
    field("subject", Text, false, Check::Any, "What it is about."),
];

const FEEDBACK: &[FieldSpec] = &[
    field(
        "feedback_id",
        Text,
        false,
        SingleLine,
        "Your identifier of the feedback.",
    ),
    field(
        "customer_id",
        Text,
        true,
        SingleLine,
        "The customer who gave it.",
    ),
    field("given_at", Time, true, Check::Any, "When it was given."),
    field(
        "score",
        Float,
        true,
        Check::Between(0.0, 10.0),
        "Score from 0 to 10.",
    ),
    field("comment", Text, false, Check::Any, "Free text."),
];

const MANAGERS: &[FieldSpec] = &[
    field(
        "manager_id",
        Text,
        true,
        SingleLine,
        "Your identifier of the manager.",
    ),
    field("name", Text, true, SingleLine, "Name used in reminders."),
    field("email", Text, false, Check::Email, "Where reminders go."),
    field("role", Text, false, SingleLine, "Role or team."),
    field(
        "capacity",
        Int,
        false,
        Check::AtLeast(0.0),
        "Customers the manager can take.",
    ),
    field(
        "active",
        Bool,
        false,
        Check::Any,
        "Whether tasks may be assigned.",
    ),
    field(
        "timezone",
        Timezone,
        false,
        SingleLine,
        "IANA time zone of the manager's digest, e.g. Asia/Shanghai.",
    ),
];

/// The fields of a record kind, in the order [`TypedRow::values`] uses.
#[must_use]
pub fn fields(kind: RecordKind) -> &'static [FieldSpec] {
    match kind {
        RecordKind::Customers => CUSTOMERS,
        RecordKind::Orders => ORDERS,
        RecordKind::Interactions => INTERACTIONS,
        RecordKind::Complaints => COMPLAINTS,
        RecordKind::Feedback => FEEDBACK,
        RecordKind::Managers => MANAGERS,
    }
}

/// The index of field `name` in [`fields`]`(kind)`.
#[must_use]
pub fn field_index(kind: RecordKind, name: &str) -> Option<usize> {
    fields(kind).iter().position(|field| field.name == name)
}

/// One cell of a source row. CSV gives [`Cell::Str`]; JSON Lines gives typed cells.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cell<'a> {
    /// No value (JSON `null`, or a missing key).
    Null,
    /// Text as read.
    Str(&'a str),
    /// A JSON integer.
    Int(i64),
    /// A JSON number with a fraction.
    Float(f64),
    /// A JSON boolean.
    Bool(bool),
}

/// A typed value of one of our fields.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// [`FieldType::Text`] and [`FieldType::Timezone`] (the canonical IANA name).
    Text(String),
    /// [`FieldType::Int`] and [`FieldType::Severity`] (1 to 4).
    Int(i64),
    /// [`FieldType::Float`].
    Float(f64),
    /// [`FieldType::Bool`].
    Bool(bool),
    /// [`FieldType::Time`]: unix seconds, UTC.
    Time(i64),
    /// [`FieldType::Date`].
    Date(NaiveDate),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Text(text) => f.write_str(text),
            Value::Int(int) | Value::Time(int) => write!(f, "{int}"),
            Value::Float(float) => write!(f, "{float}"),
            Value::Bool(bool) => write!(f, "{bool}"),
            Value::Date(date) => write!(f, "{date}"),
        }
    }
}

/// A row turned into our fields.
#[derive(Debug, Clone, PartialEq)]
pub struct TypedRow {
    /// One entry per field of [`fields`]`(kind)`, in that order; `None` when not given.
    pub values: Vec<Option<Value>>,
    /// Custom attributes (customers only): name and typed value.
    pub attributes: Vec<(String, serde_json::Value)>,
}

/// Why a row was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The source column name, or the mapping key of a script (`derive.amount`, `skip.<reason>`),
    /// or our field name when no column provides it.
    pub column: String,
    /// The offending cell text, if there was one.
    pub value: Option<String>,
    /// What is wrong with it.
    pub reason: String,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.column, self.reason)?;
        if let Some(value) = &self.value {
            write!(f, " (value {value:?})")?;
        }
        Ok(())
    }
}

/// What became of one source row.
#[derive(Debug, Clone, PartialEq)]
pub enum RowOutcome {
    /// Imported.
    Row(TypedRow),
    /// Left out on purpose: the index of the `skip:` reason whose script returned true (see
    /// [`crate::import::mapping::Mapping::skip_reasons`]).
    Skip(usize),
    /// Refused, with the reason.
    Reject(Rejection),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip() {
        for kind in RecordKind::ALL {
            assert_eq!(kind.to_string().parse::<RecordKind>(), Ok(kind));
        }
        assert_eq!(
            "order".parse::<RecordKind>().unwrap_err().to_string(),
            "unknown record kind `order`; expected one of customers, orders, interactions, complaints, feedback, managers"
        );
    }

    #[test]
    fn field_tables_have_unique_names_and_docs() {
        for kind in RecordKind::ALL {
            let specs = fields(kind);
            for (i, spec) in specs.iter().enumerate() {
                assert!(!spec.doc.is_empty());
                assert_eq!(
                    field_index(kind, spec.name),
                    Some(i),
                    "{kind}.{}",
                    spec.name
                );
            }
        }
        assert_eq!(field_index(RecordKind::Orders, "amount"), Some(3));
    }
}
