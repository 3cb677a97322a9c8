//! The kinds of records tiercare imports.

use std::fmt;
use std::str::FromStr;

/// A kind of record that `tiercare import KIND FILE` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RecordKind {
    /// People or companies we care for.
    Customers,
    /// Orders (or order lines) of customers.
    Orders,
    /// Calls, visits, emails, meetings with customers.
    Interactions,
    /// Complaints and their resolution.
    Complaints,
    /// Satisfaction scores.
    Feedback,
    /// Account managers who receive tasks.
    Managers,
}

impl RecordKind {
    /// Every kind, in the order the CLI lists them.
    pub const ALL: [RecordKind; 6] = [
        RecordKind::Customers,
        RecordKind::Orders,
        RecordKind::Interactions,
        RecordKind::Complaints,
        RecordKind::Feedback,
        RecordKind::Managers,
    ];

    /// The lower-case plural name used on the command line and in mapping files.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            RecordKind::Customers => "customers",
            RecordKind::Orders => "orders",
            RecordKind::Interactions => "interactions",
            RecordKind::Complaints => "complaints",
            RecordKind::Feedback => "feedback",
            RecordKind::Managers => "managers",
        }
    }
}

impl fmt::Display for RecordKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A record kind name that is not one of [`RecordKind::ALL`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownRecordKind(pub String);

impl fmt::Display for UnknownRecordKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown record kind `{}`; expected one of customers, orders, interactions, complaints, feedback, managers",
            self.0
        )
    }
}

impl std::error::Error for UnknownRecordKind {}

impl FromStr for RecordKind {
    type Err = UnknownRecordKind;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RecordKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == s)
            .ok_or_else(|| UnknownRecordKind(s.to_owned()))
    }
}
