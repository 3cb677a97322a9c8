//! The summary statistics of one customer's purchase history that BG/NBD and Gamma-Gamma need.

use serde::Serialize;

/// One customer's history up to the end of a calibration period, in whole days, counting at most
/// one purchase per day (the literature's rule: same-day orders are one purchase, their amounts
/// summed).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Summary {
    /// `x`: repeat purchase days (purchase days after the first).
    pub frequency: u32,
    /// `t_x`: days from the first purchase day to the last (0 without repeats).
    pub recency: u32,
    /// `T`: days from the first purchase day to the end of the period.
    pub age: u32,
    /// The mean amount of the repeat purchase days (`None` without repeats): Gamma-Gamma's `m`.
    pub repeat_mean_value: Option<f64>,
}

/// Summarises one customer's purchases `(day, amount)` (days as day numbers in the
/// workspace's zone, any order) up to and including `end_day`. `None` when the customer has no
/// purchase by then. Purchases after `end_day` are ignored.
#[must_use]
pub fn summarize(purchases: &[(i64, f64)], end_day: i64) -> Option<Summary> {
    let mut days: Vec<(i64, f64)> = purchases
        .iter()
        .copied()
        .filter(|&(d, _)| d <= end_day)
        .collect();
    days.sort_by_key(|&(d, _)| d);
    let first = days.first()?.0;
    let mut distinct: Vec<(i64, f64)> = Vec::with_capacity(days.len());
    for (day, amount) in days {
        match distinct.last_mut() {
            Some((d, sum)) if *d == day => *sum += amount,
            _ => distinct.push((day, amount)),
        }
    }
    let repeats = &distinct[1..];
    let last = distinct.last().map_or(first, |&(d, _)| d);
    let days_between = |from: i64, to: i64| u32::try_from(to - from).unwrap_or(u32::MAX);
    Some(Summary {
        frequency: u32::try_from(repeats.len()).unwrap_or(u32::MAX),
        recency: days_between(first, last),
        age: days_between(first, end_day),
        repeat_mean_value: (!repeats.is_empty())
            .then(|| repeats.iter().map(|&(_, a)| a).sum::<f64>() / repeats.len() as f64),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_day_purchases_are_one_and_later_ones_are_ignored() {
        let s = summarize(
            &[
                (12, 5.0),
                (10, 1.0),
                (12, 3.0),
                (10, 2.0),
                (20, 4.0),
                (31, 9.0),
            ],
            30,
        )
        .unwrap();
        assert_eq!((s.frequency, s.recency, s.age), (2, 10, 20));
        assert_eq!(s.repeat_mean_value, Some(6.0));
        let once = summarize(&[(7, 1.0), (7, 2.0)], 9).unwrap();
        assert_eq!(
            (
                once.frequency,
                once.recency,
                once.age,
                once.repeat_mean_value
            ),
            (0, 0, 2, None)
        );
        assert_eq!(summarize(&[(31, 9.0)], 30), None);
    }
}
