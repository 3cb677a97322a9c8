//! A customer's features as the store computed them, copied into the engine's snapshot: the one
//! place the two meet, for assessments, plans, the rule proof, templates and the delivery gate.

use tiercare_engine::{AssessmentTimes, Feature, FeatureValue, Snapshot};
use tiercare_store::CustomerFeatures;

/// Copies a customer's features from the store into an engine snapshot.
pub fn fill_snapshot(snapshot: &mut Snapshot, features: &CustomerFeatures) {
    let CustomerFeatures {
        customer_rowid: _,
        customer_id,
        region,
        owner,
        timezone,
        has_email,
        consent_email,
        consent_sms,
        consent_phone,
        birthday,
        orders_total,
        revenue_total,
        orders_window,
        revenue_window,
        avg_order_window,
        avg_order_total,
        first_order_at,
        last_order_at,
        days_since_last_order,
        days_since_first_order,
        tenure_days,
        revenue_rank,
        revenue_share,
        revenue_share_before,
        revenue_share_after,
        revenue_percentile,
        r_score,
        f_score,
        m_score,
        rfm_cell,
        interactions_window,
        interactions_total,
        last_contact_at,
        days_since_last_contact,
        complaints_open,
        complaints_window,
        complaints_total,
        max_severity_window,
        feedback_window,
        satisfaction_avg,
        satisfaction_last,
        previous_tier,
        days_in_tier,
        pending_downgrade,
        pending_since,
        points_balance,
        coupons_open,
        coupon_redeemed_days_ago,
        attributes,
        created_at: _,
    } = features;
    let s = snapshot;
    s.set_text(Feature::CustomerId, customer_id);
    s.set_text(Feature::Region, region);
    s.set_text(Feature::Owner, owner);
    s.set_text(Feature::Timezone, timezone);
    s.set_bool(Feature::HasEmail, *has_email);
    s.set_bool(Feature::ConsentEmail, *consent_email);
    s.set_bool(Feature::ConsentSms, *consent_sms);
    s.set_bool(Feature::ConsentPhone, *consent_phone);
    s.set_text(Feature::Birthday, birthday);
    s.set_int(Feature::OrdersTotal, *orders_total);
    s.set_float(Feature::RevenueTotal, *revenue_total);
    s.set_int(Feature::OrdersWindow, *orders_window);
    s.set_float(Feature::RevenueWindow, *revenue_window);
    s.set_float(Feature::AvgOrderWindow, *avg_order_window);
    s.set_float(Feature::AvgOrderTotal, *avg_order_total);
    s.set_time(Feature::FirstOrderAt, *first_order_at);
    s.set_time(Feature::LastOrderAt, *last_order_at);
    s.set_int(Feature::DaysSinceLastOrder, *days_since_last_order);
    s.set_int(Feature::DaysSinceFirstOrder, *days_since_first_order);
    s.set_int(Feature::TenureDays, *tenure_days);
    s.set_int(Feature::RevenueRank, *revenue_rank);
    s.set_float(Feature::RevenueShare, *revenue_share);
    s.set_float(Feature::RevenueShareBefore, *revenue_share_before);
    s.set_float(Feature::RevenueShareAfter, *revenue_share_after);
    s.set_float(Feature::RevenuePercentile, *revenue_percentile);
    s.set_int(Feature::RScore, *r_score);
    s.set_int(Feature::FScore, *f_score);
    s.set_int(Feature::MScore, *m_score);
    s.set_int(Feature::RfmCell, *rfm_cell);
    s.set_int(Feature::InteractionsWindow, *interactions_window);
    s.set_int(Feature::InteractionsTotal, *interactions_total);
    s.set_time(Feature::LastContactAt, *last_contact_at);
    s.set_int(Feature::DaysSinceLastContact, *days_since_last_contact);
    s.set_int(Feature::ComplaintsOpen, *complaints_open);
    s.set_int(Feature::ComplaintsWindow, *complaints_window);
    s.set_int(Feature::ComplaintsTotal, *complaints_total);
    s.set_int(Feature::MaxSeverityWindow, *max_severity_window);
    s.set_int(Feature::FeedbackWindow, *feedback_window);
    s.set_optional_float(Feature::SatisfactionAvg, *satisfaction_avg);
    s.set_optional_float(Feature::SatisfactionLast, *satisfaction_last);
    s.set_text(Feature::PreviousTier, previous_tier);
    s.set_int(Feature::DaysInTier, *days_in_tier);
    s.set_int(Feature::PendingDowngrade, *pending_downgrade);
    s.set_float(Feature::PointsBalance, *points_balance);
    s.set_int(Feature::CouponsOpen, *coupons_open);
    // An optional int, as the catalogue says: it cannot fail.
    let _ = s.set(
        Feature::CouponRedeemedDaysAgo,
        coupon_redeemed_days_ago.map_or(FeatureValue::None, FeatureValue::Int),
    );
    // The assessment's time is set by the caller that knows it (`assessed_at`).
    s.set_times(AssessmentTimes {
        at: None,
        pending_since: *pending_since,
    });
    s.set_attributes(attributes);
}
