//! tiercare's storage: the SQLite schema, its migrations and every SQL
//! statement of the project.
//!
//! A [`Store`] is one connection to a tiercare database file (WAL mode,
//! `IMMEDIATE` write transactions, so a command and the daemon can share the
//! file). [`Store::import`] opens an [`ImportSession`] that writes typed
//! records (see [`records`]) in a single transaction.
//!
//! For tiering, [`Store::for_each_features`] computes every customer's
//! [`CustomerFeatures`] in bulk (one scan per table), and
//! [`Store::record_assessment`] writes the engine's [`TierDecision`]s, their
//! history and segments in one transaction; manual tier pins are kept with
//! [`Store::pin_tier`] and [`Store::unpin_tier`]. The rest of the API reads
//! what is stored.
//!
//! # What this crate must never do
//!
//! - Hold SQL anywhere else: this is the only crate that speaks SQL, and no
//!   other crate gets a raw connection.
//! - Read import files, evaluate rules, or send mail: the scheduler parses
//!   files and hands over records, the engine decides, the scheduler acts.
//! - Leave a write half-done: every write that matters is one transaction,
//!   and a failed import is rolled back as a whole.
//! - Modify a file that is not a tiercare database, or edit a shipped
//!   migration (see [`MIGRATIONS`]).

#![warn(missing_docs)]

mod db;
mod error;
mod features;
mod import;
mod keys;
mod pins;
pub mod records;
mod schema;
mod stored;
mod tiers;

pub use db::{BUSY_TIMEOUT, Store, TableCounts};
pub use error::StoreError;
pub use features::{CustomerFeatures, FeatureSummary, NEVER_DAYS, Window};
pub use import::{
    ImportAudit, ImportKind, ImportOptions, ImportSession, Outcome, RowError, RowRejection,
};
pub use pins::Pin;
pub use records::{
    ComplaintRecord, CustomerRecord, FeedbackRecord, InteractionRecord, ManagerRecord, OrderItem,
    OrderRecord,
};
pub use schema::{APPLICATION_ID, MIGRATIONS, supported_version};
pub use stored::{Customer, Order};
pub use tiers::{
    AssessmentHeader, AssessmentOutcome, AssessmentRow, AssessmentSession, CurrentSegment,
    CurrentTier, SegmentChange, TierChange, TierDecision,
};
