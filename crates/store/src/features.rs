//! Customer features: the per-customer numbers tiering rules read, computed
//! for the whole population at once.
//!
//! An assessment runs at a time `at` (unix seconds UTC) with a feature
//! [`Window`]. Only data with a time `<= at` exists for an assessment: orders,
//! interactions, complaints and feedback after `at` are ignored entirely.
//! "In the window" means `at - W < t <= at` (all time: `t <= at`). Days are
//! `floor(seconds / 86400)`.
//!
//! # How it is computed
//!
//! [`Store::for_each_features`] reads each table once, in one read
//! transaction (so every number comes from the same snapshot), and never
//! runs a query per customer:
//!
//! 1. the customers' unique index on `external_id`, which gives every rowid
//!    and the external-id order used to break ties in the Pareto ranking;
//! 2. one sequential scan each of orders, interactions, complaints and
//!    feedback, aggregating into dense arrays of per-customer totals
//!    indexed by the customer's slot (see [`Slots`]); orders are applied in
//!    small batches, because they arrive in no particular customer order;
//! 3. one sort of `(revenue, external-id position)` for the Pareto ranks and
//!    shares, and one sort per R, F and M metric for the quintile scores;
//! 4. one scan of customers (joined with their stored tier), filling a single
//!    reused [`CustomerFeatures`] that is handed to the visitor.
//!
//! Memory is about 150 bytes per customer (plus a transient 16 bytes per
//! customer while sorting) and SQLite's page cache, whatever the number of
//! orders: about 250 MB of peak resident memory at a million customers.
//!
//! Integer features are `i64` (Rhai's integer type), so the engine can expose
//! them without conversions.

use std::cmp::Ordering;

use rusqlite::{Connection, Transaction, TransactionBehavior};
use serde_json::{Map, Value};

use crate::db::Store;
use crate::error::{AtPath, StoreError};
use crate::stored::customer_rowid;

#[path = "features_one.rs"]
mod one;

/// Seconds in a day: days are `floor(seconds / SECONDS_PER_DAY)`.
const SECONDS_PER_DAY: i64 = 86_400;

pub use tiercare_types::{NEVER_DAYS, Window};

/// Where a window begins, for the feature passes.
trait WindowStart {
    /// The window's exclusive lower bound at `at` (`at - W < t <= at`); `None` for all time. A
    /// window of zero or fewer seconds contains nothing.
    fn start(self, at: i64) -> Option<i64>;
}

impl WindowStart for Window {
    fn start(self, at: i64) -> Option<i64> {
        self.seconds().map(|seconds| at.saturating_sub(seconds))
    }
}

/// Whether `t` is in the window `(start, at]` (`start` `None`: `t <= at`).
fn in_window(t: i64, start: Option<i64>, at: i64) -> bool {
    t <= at && start.is_none_or(|start| t > start)
}

/// Whole days from `from` to `to`: `floor((to - from) / 86400)`.
fn days_between(from: i64, to: i64) -> i64 {
    to.saturating_sub(from).div_euclid(SECONDS_PER_DAY)
}

/// Every feature of one customer at an assessment time `at` with a window
/// `W`. Each field's documentation starts with the feature's name, as rules
/// know it, and gives its exact definition.
///
/// "None" means the value is absent (`None` here; `()` in Rhai).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct CustomerFeatures {
    /// The customer's row id (internal; the key of [`crate::TierDecision`]).
    pub customer_rowid: i64,
    /// customer_id: the customer's external id.
    pub customer_id: String,
    /// region: profile field ("" when empty).
    pub region: String,
    /// owner: profile field, the owning manager's external id ("" when
    /// empty).
    pub owner: String,
    /// timezone: profile field, an IANA zone name ("" when empty).
    pub timezone: String,
    /// has_email: an email address is stored (not empty or blank).
    pub has_email: bool,
    /// consent_email: consent flag for e-mail.
    pub consent_email: bool,
    /// consent_sms: consent flag for text messages.
    pub consent_sms: bool,
    /// consent_phone: consent flag for phone calls.
    pub consent_phone: bool,
    /// birthday: `YYYY-MM-DD` or "".
    pub birthday: String,
    /// orders_total: number of orders with ordered_at <= at (refunds, orders
    /// with a negative amount, are not orders: they count only in revenue).
    pub orders_total: i64,
    /// revenue_total: sum of their amounts (of the orders with
    /// ordered_at <= at), refunds subtracted.
    pub revenue_total: f64,
    /// orders_window: **F**: orders in the window.
    pub orders_window: i64,
    /// revenue_window: **M**: sum of amounts in the window (refunds subtracted).
    pub revenue_window: f64,
    /// avg_order_window: revenue_window / orders_window, 0 when no orders in
    /// the window.
    pub avg_order_window: f64,
    /// avg_order_total: revenue_total / orders_total, 0 when none.
    pub avg_order_total: f64,
    /// first_order_at: time (unix s) of the first order <= at, or none.
    pub first_order_at: Option<i64>,
    /// last_order_at: time (unix s) of the last order <= at, or none.
    pub last_order_at: Option<i64>,
    /// days_since_last_order: **R**: days from last_order_at to at;
    /// customers who never ordered: 36500 ([`NEVER_DAYS`], the documented
    /// sentinel "100 years", so `days_since_last_order > 365` treats them as
    /// inactive).
    pub days_since_last_order: i64,
    /// days_since_first_order: days from first_order_at to at; 0 when never
    /// ordered.
    pub days_since_first_order: i64,
    /// tenure_days: days from the customer's first sign of life (first
    /// order, or first interaction, or created_at, whichever is earliest and
    /// <= at) to at; 0 when none of them is <= at.
    pub tenure_days: i64,
    /// revenue_rank: 1-based rank by revenue_window descending; ties broken
    /// by external id ascending (deterministic). Every customer has a rank.
    pub revenue_rank: i64,
    /// revenue_share: revenue_window / total revenue_window of all customers
    /// (0 when the total is 0).
    pub revenue_share: f64,
    /// revenue_share_before: sum of revenue_share of every customer ranked
    /// before this one (Pareto/ABC: "A = revenue_share_before < 0.80" puts
    /// the customer who crosses 80% in A). Computed as the cumulative
    /// revenue_window of those customers divided by the total, so that it
    /// equals the previous customer's revenue_share_after exactly.
    pub revenue_share_before: f64,
    /// revenue_share_after: revenue_share_before + revenue_share (computed,
    /// like revenue_share_before, from the cumulative revenue, so the last
    /// customer's is exactly 1 when the total is not 0).
    pub revenue_share_after: f64,
    /// revenue_percentile: 100 × (customers with strictly lower
    /// revenue_window) / (all customers).
    pub revenue_percentile: f64,
    /// r_score: quintile score 1–5 of days_since_last_order (fewer days is
    /// better) over the **scored population = customers with at least one
    /// order <= at**; 0 for customers outside it. Score = 1 + floor(5 ×
    /// below / N), where below = number of scored customers with a strictly
    /// worse value and N = scored population size (ties get the same score:
    /// the min-rank method).
    pub r_score: i64,
    /// f_score: quintile score 1–5 of orders_window (more is better) over
    /// the scored population, as r_score; 0 for customers outside it.
    pub f_score: i64,
    /// m_score: quintile score 1–5 of revenue_window (more is better) over
    /// the scored population, as r_score; 0 for customers outside it.
    pub m_score: i64,
    /// rfm_cell: r_score × 100 + f_score × 10 + m_score (e.g. 545; 0 for
    /// customers outside the scored population).
    pub rfm_cell: i64,
    /// interactions_window: interactions in the window.
    pub interactions_window: i64,
    /// interactions_total: interactions <= at.
    pub interactions_total: i64,
    /// last_contact_at: time of the latest interaction <= at, or none.
    pub last_contact_at: Option<i64>,
    /// days_since_last_contact: days from last_contact_at to at; never
    /// contacted: 36500 ([`NEVER_DAYS`]).
    pub days_since_last_contact: i64,
    /// complaints_open: complaints opened <= at and not resolved by at
    /// (resolved_at null or > at).
    pub complaints_open: i64,
    /// complaints_window: complaints opened in the window.
    pub complaints_window: i64,
    /// complaints_total: complaints opened <= at.
    pub complaints_total: i64,
    /// max_severity_window: highest severity (1 low .. 4 critical) of
    /// complaints opened in the window, 0 when none.
    pub max_severity_window: i64,
    /// feedback_window: feedback entries given in the window.
    pub feedback_window: i64,
    /// satisfaction_avg: mean score of feedback in the window, or none.
    pub satisfaction_avg: Option<f64>,
    /// satisfaction_last: score of the latest feedback <= at, or none (of
    /// two given at the same second, the one imported last).
    pub satisfaction_last: Option<f64>,
    /// previous_tier: the customer's current stored tier before this
    /// assessment ("" when never assessed).
    pub previous_tier: String,
    /// days_in_tier: days since the stored tier was assigned (0 when none,
    /// and 0 when it was assigned after at).
    pub days_in_tier: i64,
    /// pending_downgrade: consecutive earlier assessments that asked for a
    /// lower tier than the stored one (hysteresis counter): the stored
    /// pending count when a pending tier is stored, else 0.
    pub pending_downgrade: i64,
    /// When the pending downgrade was first asked for (an assessment's `at`), if one is
    /// pending and its start is recorded (see `tiercare_engine::hysteresis`).
    pub pending_since: Option<i64>,
    /// points_balance: points earned and not spent or expired by at (see the
    /// `points` module: spending uses the soonest-expiring points first; never
    /// below 0); 0 when none.
    pub points_balance: f64,
    /// coupons_open: coupon codes issued to the customer (issued_at <= at) that
    /// are neither redeemed by at nor expired by at.
    pub coupons_open: i64,
    /// coupon_redeemed_days_ago: days from the latest redemption of a coupon
    /// code issued to the customer (redeemed_at <= at) to at; none when none.
    pub coupon_redeemed_days_ago: Option<i64>,
    /// attr: every custom attribute (JSON object → Rhai map).
    pub attributes: Map<String, Value>,
    /// When the customer row was created, unix seconds UTC.
    pub created_at: i64,
}

/// Population-wide figures of one feature computation.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct FeatureSummary {
    /// Customers in the population (every stored customer).
    pub customers: u64,
    /// Customers in the scored population: at least one order <= at.
    pub scored: u64,
    /// Total revenue_window of all customers: the denominator of
    /// revenue_share.
    pub total_revenue_window: f64,
}

impl Store {
    /// Computes every customer's features at `at`, calling `visit` once per
    /// customer in customer rowid order.
    ///
    /// The visitor gets the same [`CustomerFeatures`] value each time,
    /// refilled; clone it to keep it. Everything is read in one read
    /// transaction, so the features are consistent with each other even
    /// while an import runs.
    pub fn for_each_features(
        &self,
        at: i64,
        window: Window,
        visit: &mut dyn FnMut(&CustomerFeatures),
    ) -> Result<FeatureSummary, StoreError> {
        self.for_each_features_with(at, window, None, true, visit)
    }

    /// [`for_each_features`](Store::for_each_features), with the second half of the orders
    /// and the interactions, complaints and feedback read through `helper` (a second
    /// connection to the same file) on a second thread while this one reads the first half of
    /// the orders. The results are the same as without a helper: orders are always summed as
    /// two halves, and each part is read by one thread in its own order.
    ///
    /// Both connections must see the same data, so give a helper only while the database's
    /// write lock is held (an [`crate::AssessmentSession`] is open) and nobody can commit
    /// between the two read transactions.
    ///
    /// Without `attributes`, the custom attributes are not parsed and stay empty (for rules
    /// that never read them: parsing every customer's JSON was a tenth of a dry run).
    pub fn for_each_features_with(
        &self,
        at: i64,
        window: Window,
        helper: Option<&mut Store>,
        attributes: bool,
        visit: &mut dyn FnMut(&CustomerFeatures),
    ) -> Result<FeatureSummary, StoreError> {
        let tx =
            Transaction::new_unchecked(&self.conn, TransactionBehavior::Deferred).at(&self.label)?;
        let helper = helper.map(|store| &mut store.conn);
        let population = Population::compute(&tx, helper, at, window, None).at(&self.label)?;
        population
            .emit(&tx, None, attributes, visit)
            .at(&self.label)?;
        Ok(population.summary())
    }

    /// Every customer's features at `at`, computed once (one scan per table, as
    /// [`for_each_features`](Store::for_each_features)) and kept, so that
    /// [`features_from`](Store::features_from) reads any customer's without
    /// another pass: what a batch of renderings at one time needs.
    pub fn feature_table(&self, at: i64, window: Window) -> Result<FeatureTable, StoreError> {
        let tx =
            Transaction::new_unchecked(&self.conn, TransactionBehavior::Deferred).at(&self.label)?;
        let population = Population::compute(&tx, None, at, window, None).at(&self.label)?;
        Ok(FeatureTable { population })
    }

    /// One customer's features from a [`FeatureTable`]: the computed figures
    /// as of the table's time, the profile, custom attributes and stored tier
    /// as they are now. `None` when no customer has `external_id`, or the
    /// customer is newer than the table.
    pub fn features_from(
        &self,
        table: &FeatureTable,
        external_id: &str,
    ) -> Result<Option<CustomerFeatures>, StoreError> {
        let tx =
            Transaction::new_unchecked(&self.conn, TransactionBehavior::Deferred).at(&self.label)?;
        let Some(rowid) = customer_rowid(&tx, external_id).at(&self.label)? else {
            return Ok(None);
        };
        let mut found = None;
        table
            .population
            .emit(&tx, Some(rowid), true, &mut |features| {
                found = Some(features.clone());
            })
            .at(&self.label)?;
        Ok(found)
    }

    /// One customer's features at `at` (population-dependent features, such
    /// as ranks, shares and quintile scores, over everyone: the same values as
    /// [`for_each_features`](Store::for_each_features) gives, from one scan of
    /// the orders and counts instead of the population's sorts); `None` when no
    /// customer has `external_id`.
    pub fn customer_features(
        &self,
        at: i64,
        window: Window,
        external_id: &str,
    ) -> Result<Option<CustomerFeatures>, StoreError> {
        let tx =
            Transaction::new_unchecked(&self.conn, TransactionBehavior::Deferred).at(&self.label)?;
        let Some(rowid) = customer_rowid(&tx, external_id).at(&self.label)? else {
            return Ok(None);
        };
        let population = match one::compute(&tx, at, window, rowid).at(&self.label)? {
            Some(population) => population,
            None => Population::compute(&tx, None, at, window, Some(rowid)).at(&self.label)?,
        };
        let mut found = None;
        population
            .emit(&tx, Some(rowid), true, &mut |features| {
                found = Some(features.clone())
            })
            .at(&self.label)?;
        Ok(found)
    }

    /// The features at `at` of up to `limit` customers spread over the stored tiers (taken in
    /// turn from each tier, customers without one included, in a fixed pseudo-random order
    /// within each), population-dependent features computed over everyone: the customers a new
    /// rule set is proven on before it acts.
    pub fn sample_features(
        &self,
        at: i64,
        window: Window,
        limit: usize,
        attributes: bool,
    ) -> Result<Vec<CustomerFeatures>, StoreError> {
        let tx =
            Transaction::new_unchecked(&self.conn, TransactionBehavior::Deferred).at(&self.label)?;
        let rowids: Vec<i64> = {
            let mut stmt = tx
                .prepare(
                    "SELECT id FROM ( \
                       SELECT c.id AS id, row_number() OVER ( \
                         PARTITION BY t.tier ORDER BY (c.id * 2654435761) % 4294967311, c.id \
                       ) AS turn \
                       FROM customers c LEFT JOIN customer_tiers t ON t.customer_id = c.id) \
                     ORDER BY turn, id LIMIT ?1",
                )
                .at(&self.label)?;
            let rows = stmt
                .query_map([i64::try_from(limit).unwrap_or(i64::MAX)], |row| row.get(0))
                .at(&self.label)?;
            rows.collect::<rusqlite::Result<_>>().at(&self.label)?
        };
        let mut sample = Vec::with_capacity(rowids.len());
        if rowids.is_empty() {
            return Ok(sample);
        }
        let population = Population::compute(&tx, None, at, window, None).at(&self.label)?;
        for rowid in rowids {
            population
                .emit(&tx, Some(rowid), attributes, &mut |features| {
                    sample.push(features.clone());
                })
                .at(&self.label)?;
        }
        Ok(sample)
    }

    /// How many customers are stored.
    pub fn customer_count(&self) -> Result<u64, StoreError> {
        let count: i64 = self
            .conn
            .query_row("SELECT count(*) FROM customers", [], |row| row.get(0))
            .at(&self.label)?;
        Ok(count.unsigned_abs())
    }
}

/// Maps customer rowids to dense slots `0..n` (slot order = rowid order).
///
/// Rowids are normally dense (assigned 1, 2, 3, ... by imports, with gaps
/// only where customers were deleted), so a direct table of `max rowid + 1`
/// entries is used; if they are very sparse, a binary search over the sorted
/// rowids instead, so memory stays bounded by the number of customers.
#[derive(Debug)]
pub(crate) enum Slots {
    /// `table[rowid]` is the slot, or `u32::MAX` for no customer.
    Direct { table: Vec<u32> },
    /// The sorted rowids; a slot is a position in it.
    Sorted { rowids: Vec<i64> },
}

impl Slots {
    /// Slots for `rowids`, which must be sorted ascending.
    pub(crate) fn new(rowids: &[i64]) -> Slots {
        let count = rowids.len();
        let (Some(&first), Some(&last)) = (rowids.first(), rowids.last()) else {
            return Slots::Direct { table: Vec::new() };
        };
        // Direct only when the table is at most a few times larger than the
        // population (4 bytes per entry) and every slot fits in a u32.
        let dense_enough = first >= 0
            && u32::try_from(count).is_ok_and(|count| count < u32::MAX)
            && usize::try_from(last).is_ok_and(|last| last <= 4 * count + 1024);
        if !dense_enough {
            return Slots::Sorted {
                rowids: rowids.to_vec(),
            };
        }
        let mut table = vec![u32::MAX; usize::try_from(last).expect("checked above") + 1];
        for (slot, &rowid) in rowids.iter().enumerate() {
            table[usize::try_from(rowid).expect("checked above")] =
                u32::try_from(slot).expect("checked above");
        }
        Slots::Direct { table }
    }

    /// The slot of `rowid`, if it is a customer's.
    #[inline]
    pub(crate) fn get(&self, rowid: i64) -> Option<usize> {
        match self {
            Slots::Direct { table } => {
                let slot = *table.get(usize::try_from(rowid).ok()?)?;
                (slot != u32::MAX).then_some(slot as usize)
            }
            Slots::Sorted { rowids } => rowids.binary_search(&rowid).ok(),
        }
    }
}

/// What the scan of orders gathers for one customer. Kept small (40 bytes),
/// apart from [`EventTotals`], because orders come in no particular customer
/// order: each one touches a random entry of this array.
#[derive(Debug, Clone, Copy)]
struct OrderTotals {
    revenue_total: f64,
    revenue_window: f64,
    /// `i64::MAX` when none.
    first_order_at: i64,
    /// `i64::MIN` when none.
    last_order_at: i64,
    orders_total: u32,
    orders_window: u32,
}

impl Default for OrderTotals {
    fn default() -> Self {
        OrderTotals {
            revenue_total: 0.0,
            revenue_window: 0.0,
            first_order_at: i64::MAX,
            last_order_at: i64::MIN,
            orders_total: 0,
            orders_window: 0,
        }
    }
}

impl OrderTotals {
    /// Adds the totals of another part of the orders.
    fn add(&mut self, other: &OrderTotals) {
        self.revenue_total += other.revenue_total;
        self.revenue_window += other.revenue_window;
        self.first_order_at = self.first_order_at.min(other.first_order_at);
        self.last_order_at = self.last_order_at.max(other.last_order_at);
        self.orders_total = self.orders_total.saturating_add(other.orders_total);
        self.orders_window = self.orders_window.saturating_add(other.orders_window);
    }

    /// Days since the last order, or the sentinel.
    fn days_since_last_order(&self, at: i64) -> i64 {
        if self.orders_total == 0 {
            NEVER_DAYS
        } else {
            days_between(self.last_order_at, at)
        }
    }
}

/// What the scans of interactions, complaints and feedback gather for one
/// customer. Times use `i64::MAX` / `i64::MIN` for "none".
#[derive(Debug, Clone, Copy)]
struct EventTotals {
    first_contact_at: i64,
    last_contact_at: i64,
    feedback_sum_window: f64,
    last_feedback_at: i64,
    /// The rowid of the latest feedback, to break ties of `last_feedback_at`.
    last_feedback_row: i64,
    last_feedback_score: f64,
    interactions_total: u32,
    interactions_window: u32,
    complaints_open: u32,
    complaints_window: u32,
    complaints_total: u32,
    feedback_window: u32,
    max_severity_window: u8,
}

impl Default for EventTotals {
    fn default() -> Self {
        EventTotals {
            first_contact_at: i64::MAX,
            last_contact_at: i64::MIN,
            feedback_sum_window: 0.0,
            last_feedback_at: i64::MIN,
            last_feedback_row: i64::MIN,
            last_feedback_score: 0.0,
            interactions_total: 0,
            interactions_window: 0,
            complaints_open: 0,
            complaints_window: 0,
            complaints_total: 0,
            feedback_window: 0,
            max_severity_window: 0,
        }
    }
}

/// A customer's place in the Pareto ranking.
#[derive(Debug, Clone, Copy, Default)]
struct Rank {
    /// 1-based rank.
    rank: u32,
    /// Customers with a strictly lower revenue_window.
    lower: u32,
    /// Sum of revenue_window of the customers ranked before.
    revenue_before: f64,
}

/// The quintile scores of every customer, `[r, f, m]` per slot; `[0, 0, 0]`
/// outside the scored population.
#[derive(Debug, Default)]
struct Quintiles {
    scores: Vec<[u8; 3]>,
    /// The size of the scored population.
    scored: usize,
}

/// Every customer's computed features at one time ([`Store::feature_table`]),
/// about 150 bytes per customer.
#[derive(Debug)]
pub struct FeatureTable {
    population: Population,
}

impl FeatureTable {
    /// The time the features were computed at (unix seconds).
    #[must_use]
    pub fn at(&self) -> i64 {
        self.population.at
    }
}

/// Everything population-wide: the per-customer totals, the ranking and the
/// quintile tables.
#[derive(Debug)]
struct Population {
    at: i64,
    slots: Slots,
    orders: Vec<OrderTotals>,
    events: Vec<EventTotals>,
    ranks: Vec<Rank>,
    quintiles: Quintiles,
    total_revenue_window: f64,
    /// Customers in the population (`orders` may hold one of them only).
    customers: usize,
    /// Coupons and points, for the customers who have any.
    incentives: std::collections::HashMap<usize, crate::incentive_features::IncentiveTotals>,
}

impl Population {
    /// Reads and aggregates everything. `only` restricts the scans of the
    /// tables that do not affect other customers (interactions, complaints,
    /// feedback) to one customer.
    fn compute(
        conn: &Connection,
        helper: Option<&mut Connection>,
        at: i64,
        window: Window,
        only: Option<i64>,
    ) -> rusqlite::Result<Population> {
        let start = window.start(at);
        let (low, high) = only.map_or((i64::MIN, i64::MAX), |rowid| (rowid, rowid));

        // Rowids in external-id order: a scan of the unique index alone.
        let mut by_external: Vec<i64> = Vec::new();
        {
            let mut stmt = conn.prepare("SELECT id FROM customers ORDER BY external_id")?;
            let mut rows = stmt.query([])?;
            while let Some(row) = rows.next()? {
                by_external.push(row.get(0)?);
            }
        }
        let mut rowids = by_external.clone();
        rowids.sort_unstable();
        let slots = Slots::new(&rowids);
        drop(rowids);
        let count = by_external.len();
        let mut external_position = vec![0_u32; count];
        for (position, &rowid) in by_external.iter().enumerate() {
            if let Some(slot) = slots.get(rowid) {
                external_position[slot] = u32::try_from(position).unwrap_or(u32::MAX);
            }
        }
        drop(by_external);

        // Orders are summed in two halves of the table, and the halves added, whether one thread
        // reads both or two threads read one each: the sums do not depend on the threads.
        let (first, second) = order_halves(conn)?;
        let mut orders = vec![OrderTotals::default(); count];
        let mut later = vec![OrderTotals::default(); count];
        let mut events = vec![EventTotals::default(); count];
        let scan_events = |conn: &Connection, events: &mut [EventTotals]| {
            scan_interactions(conn, &slots, events, at, start, low, high)?;
            scan_complaints(conn, &slots, events, at, start, low, high)?;
            scan_feedback(conn, &slots, events, at, start, low, high)
        };
        match helper {
            None => {
                scan_orders(conn, &slots, &mut orders, at, start, first)?;
                scan_orders(conn, &slots, &mut later, at, start, second)?;
                scan_events(conn, &mut events)?;
            }
            Some(helper) => std::thread::scope(|scope| {
                let (later, events) = (&mut later, &mut events);
                let (slots, scan_events) = (&slots, &scan_events);
                let side = scope.spawn(move || {
                    let tx = Transaction::new_unchecked(helper, TransactionBehavior::Deferred)?;
                    scan_orders(&tx, slots, later, at, start, second)?;
                    scan_events(&tx, events)
                });
                let orders = scan_orders(conn, slots, &mut orders, at, start, first);
                let side = side
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
                orders.and(side)
            })?,
        }
        for (total, part) in orders.iter_mut().zip(&later) {
            total.add(part);
        }
        drop(later);

        let (ranks, total_revenue_window) = rank(&orders, &external_position);
        drop(external_position);
        let quintiles = quintiles(&orders, at);
        let incentives = crate::incentive_features::scan_incentives(
            conn,
            &|rowid| slots.get(rowid),
            at,
            low,
            high,
        )?;
        Ok(Population {
            at,
            slots,
            orders,
            events,
            ranks,
            quintiles,
            total_revenue_window,
            customers: count,
            incentives,
        })
    }

    fn summary(&self) -> FeatureSummary {
        FeatureSummary {
            customers: self.customers as u64,
            scored: self.quintiles.scored as u64,
            total_revenue_window: self.total_revenue_window,
        }
    }

    /// Scans customers (all, or the one with rowid `only`) in rowid order
    /// with their stored tier, and hands each one's features to `visit`
    /// (with their custom attributes parsed, or left empty without `attributes`).
    fn emit(
        &self,
        conn: &Connection,
        only: Option<i64>,
        attributes: bool,
        visit: &mut dyn FnMut(&CustomerFeatures),
    ) -> rusqlite::Result<()> {
        let (low, high) = only.map_or((i64::MIN, i64::MAX), |rowid| (rowid, rowid));
        let mut stmt = conn.prepare(
            "SELECT c.id, c.external_id, c.region, c.owner, c.timezone, \
                    coalesce(trim(c.email) <> '', 0), c.consent_email, c.consent_sms, \
                    c.consent_phone, c.birthday, c.attributes, c.created_at, \
                    t.tier, t.since, t.pending_tier, t.pending_count, t.pending_since \
             FROM customers c LEFT JOIN customer_tiers t ON t.customer_id = c.id \
             WHERE c.id BETWEEN ?1 AND ?2 ORDER BY c.id",
        )?;
        let mut rows = stmt.query([low, high])?;
        let mut features = CustomerFeatures::default();
        while let Some(row) = rows.next()? {
            let rowid: i64 = row.get(0)?;
            // The snapshot is the one the population was computed from, so
            // every customer has a slot.
            let Some(slot) = self.slots.get(rowid) else {
                continue;
            };
            let f = &mut features;
            f.customer_rowid = rowid;
            set_text(&mut f.customer_id, row.get_ref(1)?.as_str_or_null()?);
            set_text(&mut f.region, row.get_ref(2)?.as_str_or_null()?);
            set_text(&mut f.owner, row.get_ref(3)?.as_str_or_null()?);
            set_text(&mut f.timezone, row.get_ref(4)?.as_str_or_null()?);
            f.has_email = row.get(5)?;
            f.consent_email = row.get(6)?;
            f.consent_sms = row.get(7)?;
            f.consent_phone = row.get(8)?;
            set_text(&mut f.birthday, row.get_ref(9)?.as_str_or_null()?);
            if attributes {
                set_attributes(&mut f.attributes, row.get_ref(10)?.as_str()?, 10)?;
            }
            f.created_at = row.get(11)?;
            set_text(&mut f.previous_tier, row.get_ref(12)?.as_str_or_null()?);
            let since: Option<i64> = row.get(13)?;
            f.days_in_tier = since.map_or(0, |since| days_between(since, self.at).max(0));
            let pending_tier = row.get_ref(14)?.as_str_or_null()?;
            let pending_count: Option<i64> = row.get(15)?;
            f.pending_downgrade = match pending_tier {
                Some(_) => pending_count.unwrap_or(0),
                None => 0,
            };
            f.pending_since = match pending_tier {
                Some(_) => row.get(16)?,
                None => None,
            };
            self.fill(slot, f);
            visit(f);
        }
        Ok(())
    }

    /// Fills the computed features of the customer in `slot`.
    fn fill(&self, slot: usize, f: &mut CustomerFeatures) {
        let at = self.at;
        let acc = &self.orders[slot];
        let events = &self.events[slot];
        let ordered = acc.orders_total > 0;

        f.orders_total = i64::from(acc.orders_total);
        f.revenue_total = acc.revenue_total;
        f.orders_window = i64::from(acc.orders_window);
        f.revenue_window = acc.revenue_window;
        f.avg_order_window = ratio(acc.revenue_window, acc.orders_window);
        f.avg_order_total = ratio(acc.revenue_total, acc.orders_total);
        f.first_order_at = ordered.then_some(acc.first_order_at);
        f.last_order_at = ordered.then_some(acc.last_order_at);
        f.days_since_last_order = acc.days_since_last_order(at);
        f.days_since_first_order = if ordered {
            days_between(acc.first_order_at, at)
        } else {
            0
        };
        // first_order_at and first_contact_at are <= at or "none" (MAX).
        let first_sign =
            acc.first_order_at
                .min(events.first_contact_at)
                .min(if f.created_at <= at {
                    f.created_at
                } else {
                    i64::MAX
                });
        f.tenure_days = if first_sign == i64::MAX {
            0
        } else {
            days_between(first_sign, at)
        };

        let rank = &self.ranks[slot];
        let total = self.total_revenue_window;
        f.revenue_rank = i64::from(rank.rank);
        if total == 0.0 {
            f.revenue_share = 0.0;
            f.revenue_share_before = 0.0;
            f.revenue_share_after = 0.0;
        } else {
            f.revenue_share = acc.revenue_window / total;
            f.revenue_share_before = rank.revenue_before / total;
            f.revenue_share_after = (rank.revenue_before + acc.revenue_window) / total;
        }
        f.revenue_percentile = 100.0 * f64::from(rank.lower) / self.customers as f64;

        let [r, fs, m] = self.quintiles.scores[slot].map(i64::from);
        f.r_score = r;
        f.f_score = fs;
        f.m_score = m;
        f.rfm_cell = r * 100 + fs * 10 + m;

        f.interactions_window = i64::from(events.interactions_window);
        f.interactions_total = i64::from(events.interactions_total);
        let contacted = events.interactions_total > 0;
        f.last_contact_at = contacted.then_some(events.last_contact_at);
        f.days_since_last_contact = if contacted {
            days_between(events.last_contact_at, at)
        } else {
            NEVER_DAYS
        };

        f.complaints_open = i64::from(events.complaints_open);
        f.complaints_window = i64::from(events.complaints_window);
        f.complaints_total = i64::from(events.complaints_total);
        f.max_severity_window = i64::from(events.max_severity_window);

        f.feedback_window = i64::from(events.feedback_window);
        f.satisfaction_avg = (events.feedback_window > 0)
            .then(|| events.feedback_sum_window / f64::from(events.feedback_window));
        f.satisfaction_last =
            (events.last_feedback_at != i64::MIN).then_some(events.last_feedback_score);

        let incentives = self.incentives.get(&slot).copied().unwrap_or_default();
        f.points_balance = incentives.points_balance;
        f.coupons_open = incentives.coupons_open;
        f.coupon_redeemed_days_ago = incentives
            .last_redeemed_at
            .map(|redeemed| days_between(redeemed, at));
    }
}

/// `sum / count`, 0 when `count` is 0.
fn ratio(sum: f64, count: u32) -> f64 {
    if count == 0 {
        0.0
    } else {
        sum / f64::from(count)
    }
}

/// Replaces `target` with `value` ("" for `NULL`), reusing its allocation.
fn set_text(target: &mut String, value: Option<&str>) {
    target.clear();
    target.push_str(value.unwrap_or(""));
}

/// Replaces `target` with the JSON object `text` (column `index`).
fn set_attributes(
    target: &mut Map<String, Value>,
    text: &str,
    index: usize,
) -> rusqlite::Result<()> {
    if text == "{}" {
        target.clear();
        return Ok(());
    }
    match serde_json::from_str(text) {
        Ok(Value::Object(map)) => *target = map,
        Ok(_) => target.clear(),
        Err(err) => {
            return Err(rusqlite::Error::FromSqlConversionFailure(
                index,
                rusqlite::types::Type::Text,
                Box::new(err),
            ));
        }
    }
    Ok(())
}

/// Adds one to a counter (saturating: counts never get near 2^32 per
/// customer).
#[inline]
fn bump(counter: &mut u32) {
    *counter = counter.saturating_add(1);
}

/// Orders read from SQLite and applied to the totals in batches of this
/// many. Each order updates a random customer's totals, a likely cache miss;
/// applying a batch in a tight loop lets the processor wait for many misses
/// at once instead of one at a time between SQLite's row steps.
const ORDER_BATCH: usize = 256;

/// The orders' rowids in two halves, `(low, high)` inclusive each.
fn order_halves(conn: &Connection) -> rusqlite::Result<((i64, i64), (i64, i64))> {
    // Two queries: SQLite finds a lone min() or max() at one end of the B-tree, but scans
    // the whole table for both in one query.
    let end = |sql: &str| conn.query_row(sql, [], |row| row.get::<_, Option<i64>>(0));
    let (low, high) = (
        end("SELECT min(id) FROM orders")?,
        end("SELECT max(id) FROM orders")?,
    );
    let (low, high) = (low.unwrap_or(0), high.unwrap_or(-1));
    let middle = low + (high - low) / 2;
    Ok(((low, middle), (middle + 1, high)))
}

/// One scan of the orders with rowids in `ids` (inclusive): counts, sums, first and last order.
fn scan_orders(
    conn: &Connection,
    slots: &Slots,
    totals: &mut [OrderTotals],
    at: i64,
    start: Option<i64>,
    ids: (i64, i64),
) -> rusqlite::Result<()> {
    let mut stmt = conn
        .prepare("SELECT customer_id, ordered_at, amount FROM orders WHERE id BETWEEN ?1 AND ?2")?;
    let mut rows = stmt.query([ids.0, ids.1])?;
    let mut batch: Vec<(i64, i64, f64)> = Vec::with_capacity(ORDER_BATCH);
    let apply = |batch: &mut Vec<(i64, i64, f64)>, totals: &mut [OrderTotals]| {
        for &(customer, ordered_at, amount) in batch.iter() {
            let Some(slot) = slots.get(customer) else {
                continue;
            };
            let t = &mut totals[slot];
            let windowed = in_window(ordered_at, start, at);
            t.revenue_total += amount;
            if windowed {
                t.revenue_window += amount;
            }
            // A refund (an order whose amount is negative, imported with `refunds: true`)
            // lowers revenue but is not an order: frequency, recency and tenure ignore it.
            if amount < 0.0 {
                continue;
            }
            bump(&mut t.orders_total);
            t.first_order_at = t.first_order_at.min(ordered_at);
            t.last_order_at = t.last_order_at.max(ordered_at);
            if windowed {
                bump(&mut t.orders_window);
            }
        }
        batch.clear();
    };
    while let Some(row) = rows.next()? {
        let ordered_at: i64 = row.get(1)?;
        if ordered_at > at {
            continue;
        }
        batch.push((row.get(0)?, ordered_at, row.get(2)?));
        if batch.len() == ORDER_BATCH {
            apply(&mut batch, totals);
        }
    }
    apply(&mut batch, totals);
    Ok(())
}

/// One scan of interactions (of customers `low..=high`): counts, first and
/// last contact.
fn scan_interactions(
    conn: &Connection,
    slots: &Slots,
    totals: &mut [EventTotals],
    at: i64,
    start: Option<i64>,
    low: i64,
    high: i64,
) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare(
        "SELECT customer_id, occurred_at FROM interactions \
         WHERE customer_id BETWEEN ?1 AND ?2 AND occurred_at <= ?3",
    )?;
    let mut rows = stmt.query([low, high, at])?;
    while let Some(row) = rows.next()? {
        let Some(slot) = slots.get(row.get(0)?) else {
            continue;
        };
        let occurred_at: i64 = row.get(1)?;
        let a = &mut totals[slot];
        bump(&mut a.interactions_total);
        a.first_contact_at = a.first_contact_at.min(occurred_at);
        a.last_contact_at = a.last_contact_at.max(occurred_at);
        if in_window(occurred_at, start, at) {
            bump(&mut a.interactions_window);
        }
    }
    Ok(())
}

/// One scan of complaints (of customers `low..=high`): open, in the window,
/// in total, worst severity in the window.
fn scan_complaints(
    conn: &Connection,
    slots: &Slots,
    totals: &mut [EventTotals],
    at: i64,
    start: Option<i64>,
    low: i64,
    high: i64,
) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare(
        "SELECT customer_id, opened_at, resolved_at, severity FROM complaints \
         WHERE customer_id BETWEEN ?1 AND ?2 AND opened_at <= ?3",
    )?;
    let mut rows = stmt.query([low, high, at])?;
    while let Some(row) = rows.next()? {
        let Some(slot) = slots.get(row.get(0)?) else {
            continue;
        };
        let opened_at: i64 = row.get(1)?;
        let resolved_at: Option<i64> = row.get(2)?;
        let severity: i64 = row.get(3)?;
        let a = &mut totals[slot];
        bump(&mut a.complaints_total);
        if resolved_at.is_none_or(|resolved| resolved > at) {
            bump(&mut a.complaints_open);
        }
        if in_window(opened_at, start, at) {
            bump(&mut a.complaints_window);
            let severity = u8::try_from(severity.clamp(0, 4)).expect("clamped");
            a.max_severity_window = a.max_severity_window.max(severity);
        }
    }
    Ok(())
}

/// One scan of feedback (of customers `low..=high`): entries and sum in the
/// window, the latest score.
fn scan_feedback(
    conn: &Connection,
    slots: &Slots,
    totals: &mut [EventTotals],
    at: i64,
    start: Option<i64>,
    low: i64,
    high: i64,
) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare(
        "SELECT customer_id, given_at, score, id FROM feedback \
         WHERE customer_id BETWEEN ?1 AND ?2 AND given_at <= ?3",
    )?;
    let mut rows = stmt.query([low, high, at])?;
    while let Some(row) = rows.next()? {
        let Some(slot) = slots.get(row.get(0)?) else {
            continue;
        };
        let given_at: i64 = row.get(1)?;
        let score: f64 = row.get(2)?;
        let id: i64 = row.get(3)?;
        let a = &mut totals[slot];
        if (given_at, id) > (a.last_feedback_at, a.last_feedback_row) {
            a.last_feedback_at = given_at;
            a.last_feedback_row = id;
            a.last_feedback_score = score;
        }
        if in_window(given_at, start, at) {
            bump(&mut a.feedback_window);
            a.feedback_sum_window += score;
        }
    }
    Ok(())
}

/// The Pareto ranking: every customer by revenue_window descending, ties by
/// external id ascending. Returns the ranks per slot and the total
/// revenue_window (summed in rank order, so the last cumulative share is 1).
fn rank(totals: &[OrderTotals], external_position: &[u32]) -> (Vec<Rank>, f64) {
    let count = totals.len();
    let mut order: Vec<(f64, u32, u32)> = totals
        .iter()
        .zip(external_position)
        .enumerate()
        .map(|(slot, (t, &position))| {
            // `+ 0.0` turns -0.0 into 0.0, so that total_cmp ties them.
            (
                t.revenue_window + 0.0,
                position,
                u32::try_from(slot).unwrap_or(u32::MAX),
            )
        })
        .collect();
    order.sort_unstable_by(|a, b| match b.0.total_cmp(&a.0) {
        Ordering::Equal => a.1.cmp(&b.1),
        other => other,
    });
    let mut ranks = vec![Rank::default(); count];
    let mut cumulative = 0.0;
    let mut group_end = 0;
    for index in 0..count {
        let (revenue, _, slot) = order[index];
        if index == group_end {
            // A new group of equal revenue: find its end, so that every
            // member knows how many customers have strictly less.
            group_end = index + 1;
            while group_end < count && order[group_end].0 == revenue {
                group_end += 1;
            }
        }
        let entry = &mut ranks[slot as usize];
        entry.rank = u32::try_from(index + 1).unwrap_or(u32::MAX);
        entry.lower = u32::try_from(count - group_end).unwrap_or(u32::MAX);
        entry.revenue_before = cumulative;
        cumulative += revenue;
    }
    (ranks, cumulative)
}

/// The quintile scores of the scored population (customers with an order
/// <= at): one sort per metric, worst values first.
fn quintiles(totals: &[OrderTotals], at: i64) -> Quintiles {
    let scored: Vec<(u32, &OrderTotals)> = (0_u32..)
        .zip(totals)
        .filter(|(_, t)| t.orders_total > 0)
        .collect();
    let mut scores = vec![[0_u8; 3]; totals.len()];
    // R: more days since the last order is worse.
    let mut days: Vec<(i64, u32)> = scored
        .iter()
        .map(|&(slot, t)| (t.days_since_last_order(at), slot))
        .collect();
    days.sort_unstable_by_key(|&(value, _)| std::cmp::Reverse(value));
    assign_scores(&days, &mut scores, 0);
    drop(days);
    // F: fewer orders in the window is worse.
    let mut orders: Vec<(u32, u32)> = scored
        .iter()
        .map(|&(slot, t)| (t.orders_window, slot))
        .collect();
    orders.sort_unstable_by_key(|&(value, _)| value);
    assign_scores(&orders, &mut scores, 1);
    drop(orders);
    // M: less revenue in the window is worse (`+ 0.0` ties -0.0 with 0.0).
    let mut revenue: Vec<(f64, u32)> = scored
        .iter()
        .map(|&(slot, t)| (t.revenue_window + 0.0, slot))
        .collect();
    revenue.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
    assign_scores(&revenue, &mut scores, 2);
    Quintiles {
        scores,
        scored: scored.len(),
    }
}

/// Sets `scores[slot][metric]` = 1 + floor(5 × below / N) for every
/// `(value, slot)` of `sorted`, which is sorted worst first, so that `below`
/// (the customers with a strictly worse value) is where the customer's group
/// of equal values starts.
fn assign_scores<K: PartialEq + Copy>(sorted: &[(K, u32)], scores: &mut [[u8; 3]], metric: usize) {
    let n = sorted.len();
    let mut below = 0;
    for (index, &(value, slot)) in sorted.iter().enumerate() {
        if index > 0 && value != sorted[index - 1].0 {
            below = index;
        }
        // below < n, so the score is 1..=5.
        scores[slot as usize][metric] = 1 + u8::try_from(5 * below / n).expect("at most 4");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_excludes_its_start_and_includes_at() {
        let at = 1_000_000;
        let start = Window::Seconds(100).start(at);
        assert!(!in_window(at - 100, start, at));
        assert!(in_window(at - 99, start, at));
        assert!(in_window(at, start, at));
        assert!(!in_window(at + 1, start, at));
        assert!(in_window(i64::MIN + 1, Window::All.start(at), at));
        assert!(!in_window(at, Window::Seconds(0).start(at), at));
    }

    #[test]
    fn days_are_floored() {
        assert_eq!(days_between(0, 86_399), 0);
        assert_eq!(days_between(0, 86_400), 1);
        assert_eq!(days_between(10, 10 + 3 * 86_400 - 1), 2);
    }

    #[test]
    fn dense_and_sparse_rowids_map_to_the_same_slots() {
        let dense = Slots::new(&[1, 2, 5, 6]);
        assert!(matches!(dense, Slots::Direct { .. }));
        let sparse = Slots::new(&[1, 2, 5, 1 << 40]);
        assert!(matches!(sparse, Slots::Sorted { .. }));
        let negative = Slots::new(&[-3, 2]);
        assert!(matches!(negative, Slots::Sorted { .. }));
        for (slots, rowids) in [(&dense, [1, 2, 5, 6]), (&sparse, [1, 2, 5, 1 << 40])] {
            for (slot, rowid) in rowids.into_iter().enumerate() {
                assert_eq!(slots.get(rowid), Some(slot));
            }
            assert_eq!(slots.get(3), None);
            assert_eq!(slots.get(-1), None);
            assert_eq!(slots.get(1 << 41), None);
        }
        assert_eq!(negative.get(-3), Some(0));
        assert_eq!(Slots::new(&[]).get(1), None);
    }
}
