//! Customer features: the values rules read, and the contract between the store (which computes
//! them) and the engine (which evaluates rules over them).
//!
//! An assessment runs at a time `at` with a feature **window** `W` (or all time; see
//! [`crate::tiering::rule_set::Window`]). Only data with a time `<= at` exists for it. "In the window" means
//! `at - W < t <= at`; days are `floor(seconds / 86400)`; "none" is an absent value (`()` in Rhai).
//! [`Feature`] lists every feature with its type, unit and definition; [`features`] is the same
//! table as data (for `tiercare functions` and for validation).
//!
//! A [`Snapshot`](crate::Snapshot) holds one customer's values, indexed by [`Feature`].

use std::fmt;

use serde::Serialize;

pub use tiercare_types::NEVER_DAYS;

/// The type of a feature as rules see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FeatureType {
    /// Text (a Rhai string); `""` when empty.
    Text,
    /// `true` or `false`.
    Bool,
    /// A whole number (a Rhai `int`).
    Int,
    /// A number (a Rhai `float`).
    Float,
    /// An instant as unix seconds (a Rhai `int`).
    Time,
    /// A map of custom attributes (a Rhai object map).
    Map,
}

impl fmt::Display for FeatureType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FeatureType::Text => "text",
            FeatureType::Bool => "bool",
            FeatureType::Int => "int",
            FeatureType::Float => "float",
            FeatureType::Time => "time",
            FeatureType::Map => "map",
        })
    }
}

/// One row of the feature catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct FeatureSpec {
    /// The feature.
    #[serde(skip)]
    pub feature: Feature,
    /// Its name in rules.
    pub name: &'static str,
    /// Its type.
    #[serde(rename = "type")]
    pub ty: FeatureType,
    /// Whether the value may be none (`()` in Rhai).
    pub optional: bool,
    /// The unit (`days`, `currency`, `unix seconds`, `share 0..1`...), or `""`.
    pub unit: &'static str,
    /// What it means, in one or two sentences.
    pub meaning: &'static str,
}

impl FeatureSpec {
    /// `int`, `float or none`, `time or none`...
    #[must_use]
    pub fn type_text(&self) -> String {
        if self.optional {
            format!("{} or none", self.ty)
        } else {
            self.ty.to_string()
        }
    }
}

macro_rules! features {
    ($( $variant:ident => $name:literal, $ty:ident, $optional:literal, $unit:literal, $meaning:literal; )*) => {
        /// A customer feature that rules can read by name. The documentation of each variant is
        /// its definition, which the store implements exactly.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Feature {
            $(
                #[doc = $meaning]
                $variant,
            )*
        }

        pub(crate) const TABLE: &[FeatureSpec] = &[
            $(
                FeatureSpec {
                    feature: Feature::$variant,
                    name: $name,
                    ty: FeatureType::$ty,
                    optional: $optional,
                    unit: $unit,
                    meaning: $meaning,
                },
            )*
        ];
    };
}

features! {
    CustomerId => "customer_id", Text, false, "",
        "The customer's external id.";
    Region => "region", Text, false, "",
        "The customer's region (\"\" when empty).";
    Owner => "owner", Text, false, "",
        "The customer's account manager (\"\" when none).";
    Timezone => "timezone", Text, false, "",
        "The customer's IANA time zone (\"\" when empty).";
    HasEmail => "has_email", Bool, false, "",
        "An email address is stored for the customer.";
    ConsentEmail => "consent_email", Bool, false, "",
        "The customer agreed to be contacted by email.";
    ConsentSms => "consent_sms", Bool, false, "",
        "The customer agreed to be contacted by SMS.";
    ConsentPhone => "consent_phone", Bool, false, "",
        "The customer agreed to be contacted by phone.";
    Birthday => "birthday", Text, false, "YYYY-MM-DD",
        "The customer's birthday as `YYYY-MM-DD`, or \"\".";
    OrdersTotal => "orders_total", Int, false, "orders",
        "Number of orders with ordered_at <= at.";
    RevenueTotal => "revenue_total", Float, false, "currency",
        "Sum of the amounts of those orders.";
    OrdersWindow => "orders_window", Int, false, "orders",
        "F: number of orders in the window.";
    RevenueWindow => "revenue_window", Float, false, "currency",
        "M: sum of the amounts of orders in the window.";
    AvgOrderWindow => "avg_order_window", Float, false, "currency",
        "revenue_window / orders_window; 0 when no orders in the window.";
    AvgOrderTotal => "avg_order_total", Float, false, "currency",
        "revenue_total / orders_total; 0 when no orders.";
    FirstOrderAt => "first_order_at", Time, true, "unix seconds",
        "Time of the first order <= at; none when the customer never ordered.";
    LastOrderAt => "last_order_at", Time, true, "unix seconds",
        "Time of the last order <= at; none when the customer never ordered.";
    DaysSinceLastOrder => "days_since_last_order", Int, false, "days",
        "R: days from last_order_at to at; 36500 (100 years) when the customer never ordered.";
    DaysSinceFirstOrder => "days_since_first_order", Int, false, "days",
        "Days from first_order_at to at; 0 when the customer never ordered.";
    TenureDays => "tenure_days", Int, false, "days",
        "Days from the customer's first sign of life (first order, first interaction or creation, whichever is earliest) to at.";
    RevenueRank => "revenue_rank", Int, false, "rank",
        "1-based rank by revenue_window, highest first; ties by external id ascending.";
    RevenueShare => "revenue_share", Float, false, "share 0..1",
        "revenue_window / the total revenue_window of all customers (0 when the total is 0).";
    RevenueShareBefore => "revenue_share_before", Float, false, "share 0..1",
        "Sum of revenue_share of every customer ranked before this one (ABC: `revenue_share_before < 0.80` keeps the customer who crosses 80% in A).";
    RevenueShareAfter => "revenue_share_after", Float, false, "share 0..1",
        "revenue_share_before + revenue_share.";
    RevenuePercentile => "revenue_percentile", Float, false, "percent 0..100",
        "100 x (customers with a strictly lower revenue_window) / all customers.";
    RScore => "r_score", Int, false, "score 1..5, 0",
        "Recency quintile (days_since_last_order, fewer is better) among customers with an order <= at; 0 for others.";
    FScore => "f_score", Int, false, "score 1..5, 0",
        "Frequency quintile (orders_window) among customers with an order <= at; 0 for others.";
    MScore => "m_score", Int, false, "score 1..5, 0",
        "Monetary quintile (revenue_window) among customers with an order <= at; 0 for others.";
    RfmCell => "rfm_cell", Int, false, "",
        "r_score x 100 + f_score x 10 + m_score (e.g. 545).";
    InteractionsWindow => "interactions_window", Int, false, "interactions",
        "Interactions (calls, visits, emails, meetings) in the window.";
    InteractionsTotal => "interactions_total", Int, false, "interactions",
        "Interactions <= at.";
    LastContactAt => "last_contact_at", Time, true, "unix seconds",
        "Time of the latest interaction <= at; none when never contacted.";
    DaysSinceLastContact => "days_since_last_contact", Int, false, "days",
        "Days from last_contact_at to at; 36500 (100 years) when never contacted.";
    ComplaintsOpen => "complaints_open", Int, false, "complaints",
        "Complaints opened <= at and not resolved by at.";
    ComplaintsWindow => "complaints_window", Int, false, "complaints",
        "Complaints opened in the window.";
    ComplaintsTotal => "complaints_total", Int, false, "complaints",
        "Complaints opened <= at.";
    MaxSeverityWindow => "max_severity_window", Int, false, "severity 1..4, 0",
        "Highest severity (1 low .. 4 critical) of complaints opened in the window; 0 when none.";
    FeedbackWindow => "feedback_window", Int, false, "entries",
        "Feedback entries given in the window.";
    SatisfactionAvg => "satisfaction_avg", Float, true, "feedback score",
        "Mean feedback score in the window; none when no feedback in the window.";
    SatisfactionLast => "satisfaction_last", Float, true, "feedback score",
        "Score of the latest feedback <= at; none when no feedback.";
    PreviousTier => "previous_tier", Text, false, "tier id",
        "The customer's stored tier before this assessment (\"\" when never assessed).";
    DaysInTier => "days_in_tier", Int, false, "days",
        "Days since the stored tier was assigned (0 when none).";
    PendingDowngrade => "pending_downgrade", Int, false, "assessments",
        "Earlier assessments in a row that asked for a lower tier than the stored one, at most one counted per day (the hysteresis counter; see `hysteresis.downgrade_after`).";
    RepeatPurchaseDays => "repeat_purchase_days", Int, true, "days",
        "BG/NBD's frequency x: days with an order in the window after the first one (orders on one day in the workspace's zone count once); none when no order in the window.";
    RepeatRecencyDays => "repeat_recency_days", Int, true, "days",
        "BG/NBD's recency t_x: days from the first to the last day with an order in the window (0 without repeats); none when no order in the window.";
    PurchaseAgeDays => "purchase_age_days", Int, true, "days",
        "BG/NBD's age T: days from the first day with an order in the window to the assessment's day; none when no order in the window.";
    PAlive => "p_alive", Float, true, "probability 0..1",
        "BG/NBD: the probability the customer is still active at `at` (1 without repeat purchases); none when the growth models could not be fitted (`assess` says why) or no order in the window. Growth features are computed by assessments and `explain` only: none in follow-up conditions, `customers --where` and templates.";
    ExpectedOrders90d => "expected_orders_90d", Float, true, "orders",
        "BG/NBD: expected days with an order in the 90 days after `at` (`expected_orders(days)` gives any other horizon); none as for p_alive.";
    ExpectedOrderValue => "expected_order_value", Float, true, "currency",
        "Gamma-Gamma: expected amount of the customer's next orders, p(γ + x·m)/(p·x + q − 1) with m the mean amount of the repeat order days (the population mean without repeats); none as for p_alive.";
    Clv12m => "clv_12m", Float, true, "currency",
        "Discounted value of the next 12 months: Σ_{k=1..12} expected_order_value × (expected orders by day 30k − by day 30(k−1)) / (1 + d)^k, d the monthly discount rate (`[growth] monthly_discount`, default 0.01); none as for p_alive.";
    GrowthPotential => "growth_potential", Float, true, "ratio",
        "Expected spend in the 365 days after `at` (expected orders × expected_order_value, undiscounted) / the amounts of the customer's orders in the 365 days up to `at`: 1 = as before, 2 = twice as much; none when the past year's amount is not positive or as for p_alive.";
    PointsBalance => "points_balance", Float, false, "points",
        "Points earned and neither spent nor expired by at: the ledger replayed in time order, each spend using the points that expire soonest first (never-expiring ones last), never below 0; 0 when none.";
    CouponsOpen => "coupons_open", Int, false, "codes",
        "Coupon codes issued to the customer by at that are neither redeemed nor expired by at.";
    CouponRedeemedDaysAgo => "coupon_redeemed_days_ago", Int, true, "days",
        "Days from the latest redemption (by an imported order's coupon_code) of a code issued to the customer, <= at, to at; none when the customer never redeemed one.";
    Attr => "attr", Map, false, "",
        "Every custom attribute of the customer (JSON object as a Rhai map); `attr.potential ?? 0` gives a default.";
}

impl Feature {
    /// How many features there are.
    pub const COUNT: usize = TABLE.len();

    /// Every feature, in catalog order.
    #[must_use]
    pub fn all() -> impl ExactSizeIterator<Item = Feature> {
        TABLE.iter().map(|spec| spec.feature)
    }

    /// The feature called `name` in rules.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Feature> {
        TABLE
            .iter()
            .find(|spec| spec.name == name)
            .map(|spec| spec.feature)
    }

    /// Its catalog entry.
    #[must_use]
    pub fn spec(self) -> &'static FeatureSpec {
        &TABLE[self.index()]
    }

    /// Its name in rules.
    #[must_use]
    pub fn name(self) -> &'static str {
        self.spec().name
    }

    /// Its type.
    #[must_use]
    pub fn ty(self) -> FeatureType {
        self.spec().ty
    }

    /// Its position in [`features`] (and in a snapshot).
    #[must_use]
    pub const fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Feature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Every feature rules can read, in catalog order.
#[must_use]
pub fn features() -> &'static [FeatureSpec] {
    TABLE
}

/// Names of every feature, for "did you mean" hints.
pub(crate) fn feature_names() -> impl Iterator<Item = &'static str> + Clone {
    TABLE.iter().map(|spec| spec.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_indexed_by_the_enum() {
        for (index, spec) in features().iter().enumerate() {
            assert_eq!(spec.feature.index(), index, "{}", spec.name);
            assert_eq!(Feature::from_name(spec.name), Some(spec.feature));
            assert!(
                crate::script::sandbox::is_variable_name(spec.name),
                "{}",
                spec.name
            );
        }
        assert_eq!(Feature::COUNT, features().len());
        assert_eq!(Feature::from_name("nope"), None);
    }

    #[test]
    fn optional_features_are_times_satisfaction_and_growth() {
        let optional: Vec<&str> = features()
            .iter()
            .filter(|spec| spec.optional)
            .map(|spec| spec.name)
            .collect();
        assert_eq!(
            optional,
            [
                "first_order_at",
                "last_order_at",
                "last_contact_at",
                "satisfaction_avg",
                "satisfaction_last",
                "repeat_purchase_days",
                "repeat_recency_days",
                "purchase_age_days",
                "p_alive",
                "expected_orders_90d",
                "expected_order_value",
                "clv_12m",
                "growth_potential",
                "coupon_redeemed_days_ago"
            ]
        );
        assert_eq!(Feature::SatisfactionAvg.spec().type_text(), "float or none");
    }
}
