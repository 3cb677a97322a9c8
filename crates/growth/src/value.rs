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
/// each month's expected purchases valued at the end of that month (`lifetimes`' formula).
/// `None` where BG/NBD's expectation is undefined.
#[must_use]
pub fn clv(
    bgnbd: &BgNbd,
    gamma_gamma: &GammaGamma,
    s: &Summary,
    months: u32,
    monthly_discount: f64,
) -> Option<f64> {
    let value = gamma_gamma.expected_order_value(s);
    let mut total = 0.0;
    let mut before = 0.0;
    for k in 1..=months {
        let upto = bgnbd.expected_orders(s, DAYS_PER_MONTH * f64::from(k))?;
        total += value * (upto - before) / (1.0 + monthly_discount).powf(f64::from(k));
        before = upto;
    }
    Some(total)
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

/// Predicts one customer from the fits (the spend values need Gamma-Gamma's).
#[must_use]
pub fn predict(
    bgnbd: &BgNbd,
    gamma_gamma: Option<&GammaGamma>,
    summary: Summary,
    past_value: f64,
    monthly_discount: f64,
) -> Prediction {
    let expected_order_value = gamma_gamma.map(|g| g.expected_order_value(&summary));
    let next_year = bgnbd
        .expected_orders(&summary, YEAR_DAYS)
        .zip(expected_order_value)
        .map(|(e, v)| e * v);
    Prediction {
        summary,
        p_alive: bgnbd.p_alive(&summary),
        expected_orders_90d: bgnbd.expected_orders(&summary, 90.0),
        expected_order_value,
        clv_12m: gamma_gamma.and_then(|g| clv(bgnbd, g, &summary, 12, monthly_discount)),
        past_value,
        growth_potential: next_year
            .filter(|_| past_value > 0.0)
            .map(|v| v / past_value),
    }
}
