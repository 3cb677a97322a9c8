//! Predicted against actual on a holdout period (the BG/NBD paper's check of conditional
//! expectations, its Figure 5): customers grouped by their repeat purchase days in the
//! calibration period, the mean number of purchase days each group made in the holdout against
//! the mean BG/NBD expected for it.

use serde::Serialize;

use crate::{BgNbd, Summary};

/// One group of customers by calibration frequency.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct HoldoutRow {
    /// Repeat purchase days in the calibration period (the last group: this many or more).
    pub frequency: u32,
    /// Whether this is the open-ended last group.
    pub or_more: bool,
    /// Customers in the group.
    pub customers: u64,
    /// Their mean purchase days in the holdout.
    pub actual: f64,
    /// The mean BG/NBD expected for them (`expected_orders(holdout days)`).
    pub predicted: f64,
}

/// Groups `customers` (calibration summary, purchase days in the holdout) by frequency `0`,
/// `1`, ..., `groups - 1` and `groups - 1` or more, with the actual and predicted means over
/// `days` of holdout; groups without customers are left out. Customers whose expectation is
/// undefined count with 0 predicted.
#[must_use]
pub fn holdout_by_frequency(
    params: &BgNbd,
    customers: &[(Summary, u32)],
    days: f64,
    groups: u32,
) -> Vec<HoldoutRow> {
    let last = groups.saturating_sub(1);
    let mut rows: Vec<HoldoutRow> = (0..=last)
        .map(|frequency| HoldoutRow {
            frequency,
            or_more: frequency == last,
            customers: 0,
            actual: 0.0,
            predicted: 0.0,
        })
        .collect();
    for (summary, actual) in customers {
        let row = &mut rows[summary.frequency.min(last) as usize];
        row.customers += 1;
        row.actual += f64::from(*actual);
        row.predicted += params.expected_orders(summary, days).unwrap_or(0.0);
    }
    rows.retain(|row| row.customers > 0);
    for row in &mut rows {
        row.actual /= row.customers as f64;
        row.predicted /= row.customers as f64;
    }
    rows
}
