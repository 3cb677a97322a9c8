//! Customer value from the two models: discounted CLV and growth potential.

use serde::Serialize;

use crate::{BgNbd, GammaGamma, Summary};

/// Days in a month for [`clv`] (as `lifetimes`' `customer_lifetime_value` with `freq="D"`).
pub const DAYS_PER_MONTH: f64 = 30.0;
/// The default monthly discount rate: 1% a month (about 12.7% a year), `lifetimes`' default.
pub const DEFAULT_MONTHLY_DISCOUNT: f64 = 0.01;
/// The horizon of [`Prediction::past_value`] and of the predicted value in `growth_potential`.
pub const YEAR_DAYS: f64 = 365.0;

/// The discounted value of the next `months` months:
/// `Σ_{k=1..months} E[M] (E[Y(30k)] - E[Y(30(k-1))]) / (1 + d)^k`, with `E[Y]` BG/NBD's expected
/// purchase days, `E[M]` Gamma-Gamma's expected order value and `d` the monthly discount rate:
/// each month's expected purchases valued at the end of that month (`lifetimes`' formula),
/// computed as `E[M]` times [`discounted_orders`]. `None` where BG/NBD's expectation is undefined.
#[must_use]
pub fn clv(
    bgnbd: &BgNbd,
    gamma_gamma: &GammaGamma,
    s: &Summary,
    months: u32,
    monthly_discount: f64,
) -> Option<f64> {
    discounted_orders(bgnbd, s, months, monthly_discount)
        .map(|orders| gamma_gamma.expected_order_value(s) * orders)
}

/// The discounted expected purchase days of the next `months` months,
/// `Σ_{k=1..months} (E[Y(30k)] - E[Y(30(k-1))]) / (1 + d)^k`: [`clv`] without the order value,
/// a function of `(x, t_x, T)` alone. `None` where BG/NBD's expectation is undefined.
#[must_use]
pub fn discounted_orders(
    bgnbd: &BgNbd,
    s: &Summary,
    months: u32,
    monthly_discount: f64,
) -> Option<f64> {
    let mut total = 0.0;
    let mut before = 0.0;
    for k in 1..=months {
        let upto = bgnbd.expected_orders(s, DAYS_PER_MONTH * f64::from(k))?;
        total += (upto - before) / (1.0 + monthly_discount).powf(f64::from(k));
        before = upto;
    }
    Some(total)
}

/// Which of a [`Prediction`]'s costly values to compute (each needs BG/NBD's ₂F₁ series, the
/// 12-month value twelve of them); the others are none. An assessment computes only what its
/// rules read; `explain` computes everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wanted {
    /// [`Prediction::expected_orders_90d`].
    pub expected_orders_90d: bool,
    /// [`Prediction::clv_12m`].
    pub clv_12m: bool,
    /// [`Prediction::growth_potential`].
    pub growth_potential: bool,
}

impl Wanted {
    /// Every value.
    pub const ALL: Wanted = Wanted {
        expected_orders_90d: true,
        clv_12m: true,
        growth_potential: true,
    };
}

/// The BG/NBD part of a [`Prediction`]: a function of the customer's `(x, t_x, T)` alone, so
/// customers with the same triple share it (an assessment computes it once per distinct triple).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Expectations {
    /// [`BgNbd::p_alive`].
    pub p_alive: f64,
    /// Expected purchase days in the next 90 days (none when not wanted or undefined).
    pub expected_orders_90d: Option<f64>,
    /// Expected purchase days in the next [`YEAR_DAYS`] (none when not wanted or undefined).
    pub expected_orders_year: Option<f64>,
    /// [`discounted_orders`] over 12 months (none when not wanted or undefined).
    pub discounted_orders_12m: Option<f64>,
}

impl Expectations {
    /// Computes what `wanted` asks for (`p_alive` always: it is cheap).
    #[must_use]
    pub fn new(bgnbd: &BgNbd, s: &Summary, monthly_discount: f64, wanted: Wanted) -> Self {
        Expectations {
            p_alive: bgnbd.p_alive(s),
            expected_orders_90d: if wanted.expected_orders_90d {
                bgnbd.expected_orders(s, 90.0)
            } else {
                None
            },
            expected_orders_year: if wanted.growth_potential {
                bgnbd.expected_orders(s, YEAR_DAYS)
            } else {
                None
            },
            discounted_orders_12m: if wanted.clv_12m {
                discounted_orders(bgnbd, s, 12, monthly_discount)
            } else {
                None
            },
        }
    }
}

/// Everything the models say about one customer.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Prediction {
    /// The customer's summary.
    pub summary: Summary,
    /// [`BgNbd::p_alive`].
    pub p_alive: f64,
    /// Expected purchase days in the next 90 days.
    pub expected_orders_90d: Option<f64>,
    /// [`GammaGamma::expected_order_value`] (`None` without a Gamma-Gamma fit).
    pub expected_order_value: Option<f64>,
    /// [`clv`] over 12 months at the given monthly discount rate.
    pub clv_12m: Option<f64>,
    /// What the customer spent in the 365 days up to the end of the period (given).
    pub past_value: f64,
    /// `expected_orders(365 days) × expected_order_value / past_value`: the next year's expected
    /// spend (undiscounted) over the past year's actual spend; 1 means "as before", 2 "twice as
    /// much". `None` when the past year's spend is not positive, the expectation is undefined
    /// or there is no Gamma-Gamma fit.
    pub growth_potential: Option<f64>,
}

/// Predicts one customer from the fits (the spend values need Gamma-Gamma's): every value.
#[must_use]
pub fn predict(
    bgnbd: &BgNbd,
    gamma_gamma: Option<&GammaGamma>,
    summary: Summary,
    past_value: f64,
    monthly_discount: f64,
) -> Prediction {
    let expectations = Expectations::new(bgnbd, &summary, monthly_discount, Wanted::ALL);
    predict_from(&expectations, gamma_gamma, summary, past_value)
}

/// Predicts one customer from their BG/NBD [`Expectations`] and the Gamma-Gamma fit: the
/// values `expectations` holds (the others none), as [`predict`] computes them.
#[must_use]
pub fn predict_from(
    expectations: &Expectations,
    gamma_gamma: Option<&GammaGamma>,
    summary: Summary,
    past_value: f64,
) -> Prediction {
    let expected_order_value = gamma_gamma.map(|g| g.expected_order_value(&summary));
    let next_year = expectations
        .expected_orders_year
        .zip(expected_order_value)
        .map(|(e, v)| e * v);
    Prediction {
        summary,
        p_alive: expectations.p_alive,
        expected_orders_90d: expectations.expected_orders_90d,
        expected_order_value,
        clv_12m: expected_order_value
            .zip(expectations.discounted_orders_12m)
            .map(|(v, orders)| v * orders),
        past_value,
        growth_potential: next_year
            .filter(|_| past_value > 0.0)
            .map(|v| v / past_value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_wanted_values_are_computed_and_they_equal_every_values() {
        let bgnbd = BgNbd {
            r: 0.243,
            alpha: 30.9,
            a: 0.793,
            b: 2.426,
        };
        let gamma_gamma = GammaGamma {
            p: 6.25,
            q: 3.74,
            gamma: 15.44,
        };
        let s = Summary {
            frequency: 3,
            recency: 120,
            age: 250,
            repeat_mean_value: Some(40.0),
        };
        let all = predict(&bgnbd, Some(&gamma_gamma), s, 90.0, 0.01);
        let only_clv = Wanted {
            expected_orders_90d: false,
            clv_12m: true,
            growth_potential: false,
        };
        let some = predict_from(
            &Expectations::new(&bgnbd, &s, 0.01, only_clv),
            Some(&gamma_gamma),
            s,
            90.0,
        );
        assert_eq!(some.clv_12m, all.clv_12m);
        assert_eq!(some.p_alive, all.p_alive);
        assert_eq!(some.expected_order_value, all.expected_order_value);
        assert_eq!(
            (some.expected_orders_90d, some.growth_potential),
            (None, None)
        );
        assert!(all.expected_orders_90d.is_some() && all.growth_potential.is_some());
        assert_eq!(
            all.clv_12m,
            clv(&bgnbd, &gamma_gamma, &s, 12, 0.01),
            "predict and clv agree"
        );
    }
}
