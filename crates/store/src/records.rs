//! Typed records the importer hands to an [`ImportSession`](crate::ImportSession).
//!
//! The scheduler reads files, applies the user's column mapping and builds
//! these; the store validates and writes them. Throughout, an optional field
//! set to `None` means "not given": an insert stores the column's default
//! (`NULL`, or `false` for consents), and an update keeps what is stored, so
//! a file with fewer columns never erases data that another file supplied.

use chrono::NaiveDate;
use serde_json::{Map, Value};

/// A customer, upserted by `external_id`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CustomerRecord {
    /// The customer's id in the source system; the key of the upsert.
    pub external_id: String,
    /// Display name.
    pub name: Option<String>,
    /// E-mail address.
    pub email: Option<String>,
    /// Phone number.
    pub phone: Option<String>,
    /// Birthday (year 0 to 9999).
    pub birthday: Option<NaiveDate>,
    /// Sales region.
    pub region: Option<String>,
    /// External id of the manager who owns the customer; the manager may be
    /// imported later.
    pub owner: Option<String>,
    /// IANA time zone name, such as `Europe/Berlin`.
    pub timezone: Option<String>,
    /// Whether the customer agreed to e-mail.
    pub consent_email: Option<bool>,
    /// Whether the customer agreed to text messages.
    pub consent_sms: Option<bool>,
    /// Whether the customer agreed to phone calls.
    pub consent_phone: Option<bool>,
    /// Custom attributes. They merge into the stored ones key by key: a key
    /// given here replaces the stored value (`null` included), keys not given
    /// are kept.
    pub attributes: Map<String, Value>,
}

/// An order, upserted by `external_id`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OrderRecord {
    /// The order's id in the source system; the key of the upsert.
    pub external_id: String,
    /// External id of the customer who placed it.
    pub customer_external_id: String,
    /// When it was placed, unix seconds UTC.
    pub ordered_at: i64,
    /// Its total amount.
    pub amount: f64,
    /// Its lines, in order. Empty means "not given": an update keeps the
    /// stored lines; a non-empty list replaces them when it differs.
    pub items: Vec<OrderItem>,
    /// Name for the customer, used only when the import creates a missing
    /// customer.
    pub customer_name: Option<String>,
    /// Region for the customer, used only when the import creates a missing
    /// customer.
    pub customer_region: Option<String>,
    /// A coupon code the order used: redeems the code issued to its customer.
    pub coupon_code: Option<String>,
    /// Points the order spent: a negative entry of the points ledger (`order:<id>`).
    pub points_spent: Option<f64>,
}

/// One line of an order.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct OrderItem {
    /// Stock-keeping unit.
    pub sku: Option<String>,
    /// Free-text description.
    pub description: Option<String>,
    /// Quantity ordered.
    pub quantity: f64,
    /// Price of one unit.
    pub unit_price: f64,
    /// Amount of the line.
    pub amount: f64,
}

/// A contact with a customer: a call, visit, e-mail, meeting, ...
///
/// Without an `external_id` its key is derived from all of its fields, so the
/// same row imported twice is recognised.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InteractionRecord {
    /// The interaction's id in the source system, if it has one.
    pub external_id: Option<String>,
    /// External id of the customer concerned.
    pub customer_external_id: String,
    /// What kind of contact: `call`, `visit`, `email`, `meeting`, ...
    pub kind: String,
    /// When it happened, unix seconds UTC.
    pub occurred_at: i64,
    /// External id (or name) of the manager who made it.
    pub by: Option<String>,
    /// Free-text note.
    pub note: Option<String>,
}

/// A complaint by a customer.
///
/// Without an `external_id` its key is derived from the customer, `opened_at`,
/// `severity` and `subject`, but not `resolved_at`: re-importing the same
/// complaint once it is resolved updates it instead of adding a second one.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ComplaintRecord {
    /// The complaint's id in the source system, if it has one.
    pub external_id: Option<String>,
    /// External id of the customer who complained.
    pub customer_external_id: String,
    /// When it was opened, unix seconds UTC.
    pub opened_at: i64,
    /// When it was resolved, unix seconds UTC; not before `opened_at`.
    pub resolved_at: Option<i64>,
    /// 1 low, 2 medium, 3 high, 4 critical.
    pub severity: u8,
    /// What it is about.
    pub subject: Option<String>,
}

/// A satisfaction score given by a customer.
///
/// Without an `external_id` its key is derived from all of its fields.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FeedbackRecord {
    /// The feedback's id in the source system, if it has one.
    pub external_id: Option<String>,
    /// External id of the customer who gave it.
    pub customer_external_id: String,
    /// When it was given, unix seconds UTC.
    pub given_at: i64,
    /// The score, on whatever scale the source uses.
    pub score: f64,
    /// Free-text comment.
    pub comment: Option<String>,
}

/// An account manager, upserted by `external_id`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ManagerRecord {
    /// The manager's id; customers' `owner` refers to it.
    pub external_id: String,
    /// Display name (required).
    pub name: String,
    /// E-mail address, for reminders.
    pub email: Option<String>,
    /// Role or title.
    pub role: Option<String>,
    /// How many customers the manager can look after; not negative.
    pub capacity: Option<i64>,
    /// Whether the manager currently takes work; new managers are active.
    pub active: Option<bool>,
    /// The manager's IANA time zone (their digest's clock); `None` keeps the stored one.
    pub timezone: Option<String>,
}
