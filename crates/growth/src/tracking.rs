//! Cumulative repeat purchases week by week, actual against BG/NBD's expectation (the paper's
//! tracking chart, its Figure 4): for a cohort of customers, the repeat purchase days they made
//! by the end of each week, and the model's expectation of them, the sum over the customers of
//! `E[X(t)]` for each one's own time `t` since their first purchase.

use serde::Serialize;

use crate::{BgNbd, Summary};

/// One week of the chart.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TrackingWeek {
    /// 1 for the week starting on the cohort's first purchase day.
    pub week: u32,
    /// Its last day (a day number; the last week may be shorter than seven days).
    pub end_day: i64,
    /// Repeat purchase days of the cohort up to and including `end_day`.
    pub actual: u64,
    /// Σ over the cohort of `E[X(end_day − first day)]` (0 for a customer not yet acquired).
    pub expected: f64,
}

impl BgNbd {
    /// `E[X(t)]`: the expected purchase days of a customer in the `days` days after their first
    /// purchase (the paper's equation 9),
    /// `(a+b−1)/(a−1) [1 − (α/(α+t))^r ₂F₁(r, b; a+b−1; t/(α+t))]`: the conditional expectation
    /// of a customer with no repeat purchase and no time observed. `None` where it is undefined.
    #[must_use]
    pub fn expected_orders_of_new(&self, days: f64) -> Option<f64> {
        let new = Summary {
            frequency: 0,
            recency: 0,
            age: 0,
            repeat_mean_value: None,
        };
        self.expected_orders(&new, days)
    }
}

/// The chart for a cohort: `first_days` holds each customer's first purchase day, `repeat_days`
/// every repeat purchase day of every customer (a day after their first, each customer's days
/// distinct), and the weeks run from the earliest first day to `last_day` inclusive. `None`
/// when BG/NBD's expectation is undefined, or there is no customer.
#[must_use]
pub fn cumulative_repeat_purchases(
    params: &BgNbd,
    first_days: &[i64],
    repeat_days: &[i64],
    last_day: i64,
) -> Option<Vec<TrackingWeek>> {
    let start = *first_days.iter().min()?;
    if last_day < start {
        return None;
    }
    let span = usize::try_from(last_day - start).ok()? + 1;
    // Customers by first day, and repeat purchase days by day, from `start`.
    let mut acquired = vec![0_u64; span];
    for &day in first_days {
        acquired[usize::try_from(day - start).ok()?] += 1;
    }
    let mut repeats = vec![0_u64; span];
    for &day in repeat_days.iter().filter(|&&d| d <= last_day) {
        repeats[usize::try_from(day - start).ok()?] += 1;
    }
    // `E[X(t)]` for every whole number of days the chart needs.
    let expected: Vec<f64> = (0..span)
        .map(|t| params.expected_orders_of_new(t as f64))
        .collect::<Option<_>>()?;
    let weeks = span.div_ceil(7);
    let mut rows = Vec::with_capacity(weeks);
    let mut actual = 0_u64;
    for week in 0..weeks {
        let end = (week * 7 + 6).min(span - 1);
        actual += repeats[week * 7..=end].iter().sum::<u64>();
        let expected_total: f64 = acquired[..=end]
            .iter()
            .enumerate()
            .filter(|(_, count)| **count > 0)
            .map(|(first, count)| *count as f64 * expected[end - first])
            .sum();
        rows.push(TrackingWeek {
            week: u32::try_from(week + 1).unwrap_or(u32::MAX),
            end_day: start + i64::try_from(end).ok()?,
            actual,
            expected: expected_total,
        });
    }
    Some(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weeks_count_repeats_and_sum_each_customers_own_expectation() {
        let params = BgNbd {
            r: 0.243,
            alpha: 30.9,
            a: 0.793,
            b: 2.426,
        };
        // Two customers from day 100, one from day 108; repeats on days 103, 110, 111, 115.
        let rows =
            cumulative_repeat_purchases(&params, &[100, 100, 108], &[103, 110, 111, 115], 115)
                .unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(
            rows.iter()
                .map(|r| (r.week, r.end_day, r.actual))
                .collect::<Vec<_>>(),
            [(1, 106, 1), (2, 113, 3), (3, 115, 4)]
        );
        let e = |t: f64| params.expected_orders_of_new(t).unwrap();
        assert_eq!(rows[0].expected, 2.0 * e(6.0));
        assert_eq!(rows[1].expected, 2.0 * e(13.0) + e(5.0));
        assert_eq!(rows[2].expected, 2.0 * e(15.0) + e(7.0));
        assert_eq!(e(0.0), 0.0);
        assert!(cumulative_repeat_purchases(&params, &[], &[], 115).is_none());
    }
}
