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
//! For follow-ups, [`Store::begin_followups`] opens a [`FollowUpSession`]
//! that records the planner's decisions in the follow-up ledger, each at
//! most once per [`OccurrenceKey`], with the tasks and attribute changes
//! they make in the same transaction. [`Store::for_each_followup_state`]
//! streams the planner's input customer by customer with the features: each
//! rule's last occurrence, the e-mails planned or sent (for caps and gaps),
//! recent customer events and current segments. [`Store::contact_counts`]
//! counts recent contacts in bulk. [`Store::tasks`], [`Store::complete_task`]
//! and [`Store::snooze_task`] serve managers' task lists;
//! [`Store::managers`], [`Store::unowned_customers`] and
//! [`Store::assign_owners`] serve owner assignment.
//!
//! For data rights, [`Store::export_customer`] gathers everything held about
//! a customer and [`Store::forget_customer`] erases their personal data.
//!
//! For care emails, [`Store::recommender`] reads the purchase history once
//! and recommends products by item-to-item co-occurrence ([`Recommender`]).
//!
//! For mail, [`FollowUpSession::record_with_email`] queues a follow-up's
//! rendered e-mail in the outbox in the ledger's transaction;
//! [`Store::claim_due`], [`Store::mark_sent`] and the other `mark_*`
//! methods carry it through its states (see the `outbox` module's docs),
//! [`Store::recover_claimed`] recovers claims a crash left behind, and
//! [`Store::suppress`] keeps the suppression list (hashed addresses,
//! [`address_hash`]). [`Store::record_bounce`] records a bounce or complaint (the e-mail
//! marked, the address suppressed by the soft-bounce policy) in one transaction.
//!
//! For the file's health, [`Store::open_for_writing`] refuses a damaged database (SQLite's
//! `quick_check`) before anything is written, [`Store::backup_to`] makes a verified online copy
//! and [`diagnose`] examines a file without writing to it (`tiercare doctor`).
//!
//! For outgoing webhooks, every write that reports something queues its event in its own
//! transaction (see the `webhooks` module); [`Store::webhook_heads`] and
//! [`Store::record_webhook_attempt`] serve the daemon's dispatcher.
//!
//! For the daemon, [`Store::advance_schedule`] records each schedule's last handled slot (only
//! ever forward) and [`Store::write_daemon_state`] the state `tiercare status` reads.
//!
//! # What this crate must never do
//!
//! - Hold SQL anywhere else: this is the only crate that speaks SQL, and no
//!   other crate gets a raw connection.
//! - Read import files, evaluate rules, or send mail: the scheduler parses
//!   files and hands over records, the engine decides, the scheduler acts.
//! - Leave a write half-done: every write that matters is one transaction,
//!   and a failed import is rolled back as a whole.
//! - Write to a damaged database (see the `integrity` module), or leave a forgotten
//!   customer's personal data readable in the file or its WAL (see
//!   [`Store::forget_customer`]).
//! - Modify a file that is not a tiercare database, or edit a shipped
//!   migration (see [`MIGRATIONS`]).

#![warn(missing_docs)]

mod address_keys;
mod availability;
mod batch;
mod bounces;
mod contacts;
mod counts;
mod coupons;
mod customers;
mod daemon;
mod db;
mod digests;
mod error;
mod features;
mod followup_state;
mod followups;
mod growth;
mod import;
mod incentive_features;
mod integrity;
mod keys;
mod logged_contacts;
mod managers;
mod outbox;
mod outbox_gate;
mod outbox_pages;
mod pins;
mod points;
mod pool;
mod pragma;
mod preferences;
mod privacy;
mod recommend;
pub mod records;
mod report;
mod schema;
mod sending;
mod staff_users;
mod stored;
mod suppressions;
mod surveys;
mod tasks;
mod tiers;
mod webhooks;

pub use availability::{ManagerPresence, ReassignTo, Reassigned};
pub use bounces::{Bounce, BounceCounts, BounceKind, BounceOutcome, NewBounce, SoftBouncePolicy};
pub use contacts::{CONTACT_WINDOWS, ContactCounts, Contacts};
pub use coupons::{
    CouponFigures, CouponImport, CouponRequest, IssuedCoupon, PoolStatus, RedemptionTally,
};
pub use customers::{CustomerQuery, CustomerRow};
pub use daemon::{DaemonState, ScheduleCursor, SlotOutcome};
pub use db::{BUSY_TIMEOUT, Store, TableCounts};
pub use digests::{DIGEST_RULE, DigestCustomer, DigestOutcome, NewDigest, RecordedDigest};
pub use error::{ContactProblem, PinProblem, StoreError};
pub use features::{CustomerFeatures, FeatureSummary, FeatureTable, NEVER_DAYS, Window};
pub use followup_state::{
    CustomerEvent, CustomerFollowUpState, EventKind, LastOccurrence, StateRange,
};
pub use followups::{
    Assignee, ComposeEmail, ComposeSms, FollowUp, FollowUpAction, FollowUpKind, FollowUpOutcome,
    FollowUpSession, FollowUpStatus, OccurrenceKey, PlannedFollowUp, Recorded,
};
pub use growth::StoredGrowthFit;
pub use import::{
    ImportAudit, ImportKind, ImportOptions, ImportSavepoint, ImportSession, Outcome, RowError,
    RowRejection,
};
pub use integrity::{BackupReport, Diagnosis, IntegrityReport, TableHealth, WalState, diagnose};
pub use logged_contacts::LoggedContact;
pub use managers::{Manager, UnownedCustomer};
pub use outbox::{
    BulkFilter, Claim, EmailRecipient, MAX_CRASH_RESENDS, NewEmail, OutboxEmail, OutboxEvent,
    OutboxState, RecipientKind, Recovery, RecoveryPolicy,
};
pub use outbox_gate::{STALE_PREFIX, UNTRUE_PREFIX};
pub use outbox_pages::OutboxQuery;
pub use pins::Pin;
pub use points::{OrderPoints, PointsEntry, PointsRounding, balance as points_balance};
pub use pool::{Assignment, OwnerChange, PoolAction, PoolFacts, PoolPassOutcome, ReclaimWarning};
pub use preferences::LinkRecipient;
pub use privacy::{ERASED_TITLE, ForgetReport};
pub use recommend::{Basis, Recommendation, Recommender};
pub use records::{
    ComplaintRecord, CustomerRecord, FeedbackRecord, InteractionRecord, ManagerRecord, OrderItem,
    OrderRecord,
};
pub use report::{CareProgramme, OwnerWork, RuleEmails, TierMoveCount, TierWork};
pub use schema::{APPLICATION_ID, MIGRATIONS, supported_version};
pub use sending::{DomainPause, ReputationRow, address_domain};
pub use staff_users::{
    FailedLogins, StaffAuditEntry, StaffAuditRow, StaffRole, StaffSession, StaffUser,
};
pub use stored::{Customer, Order};
pub use suppressions::{AddressKeys, SuppressionReason, address_hash, is_address_hash};
pub use surveys::{SurveyAnswer, SurveyEmail, SurveyResults};
pub use tasks::{NewTask, Task, TaskFilter, TaskStatus, TaskView};
pub use tiercare_types::{Channel, Survey, SurveyKind};
pub use tiers::{
    AssessmentHeader, AssessmentOutcome, AssessmentRow, AssessmentSession, CurrentSegment,
    CurrentTier, EncodedDecision, JsonText, SegmentChange, TierChange, TierDecision,
};
pub use webhooks::{
    WebhookAttempt, WebhookDelivery, WebhookEndpointSummary, WebhookEventType, WebhookFailure,
    WebhookSubscription,
};
