//! Gamma-Gamma spend (Fader, Hardie and Lee, "RFM and CLV: Using Iso-Value Curves for Customer
//! Base Analysis", JMR 2005; Fader and Hardie's note "The Gamma-Gamma Model of Monetary
//! Value", 2013): a customer's order values are Gamma(p, ν), with ν ~ Gamma(q, γ) across
//! customers. It is fitted on repeat buyers' mean repeat-day amount `m` over `x` repeat days.

use serde::{Deserialize, Serialize};

use crate::optimize::{minimize, newton};
use crate::special::{digamma, ln_gamma};
use crate::{FitQuality, GrowthError, Summary};

/// The fewest repeat buyers with a positive mean amount a Gamma-Gamma fit accepts.
pub const MIN_REPEAT_BUYERS: u64 = 10;

/// Fitted Gamma-Gamma parameters (`gamma` in the currency).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GammaGamma {
    /// Shape of an order's value.
    pub p: f64,
    /// Shape of the customers' rate Gamma.
    pub q: f64,
    /// Scale of the customers' rate Gamma (`v` in `lifetimes`).
    pub gamma: f64,
}

/// A Gamma-Gamma fit.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct GammaGammaFit {
    /// The maximum-likelihood parameters.
    pub params: GammaGamma,
    /// The log-likelihood there (`customers` and `repeat_buyers` are both the buyers fitted).
    pub quality: FitQuality,
}

impl GammaGamma {
    /// The log-likelihood of one repeat buyer with `x` repeat days of mean amount `m > 0`.
    #[must_use]
    pub fn log_likelihood(&self, x: u32, m: f64) -> f64 {
        let (p, q, g, x) = (self.p, self.q, self.gamma, f64::from(x));
        ln_gamma(p * x + q) - ln_gamma(p * x) - ln_gamma(q)
            + q * g.ln()
            + (p * x - 1.0) * m.ln()
            + p * x * x.ln()
            - (p * x + q) * (x * m + g).ln()
    }

    /// The expected value of the customer's next orders: `p (γ + x m) / (p x + q - 1)`, a
    /// weighted mean of the population mean `p γ / (q - 1)` and the customer's own mean `m`
    /// (the population mean without repeats; a non-positive `m` counts as 0).
    #[must_use]
    pub fn expected_order_value(&self, s: &Summary) -> f64 {
        let x = f64::from(s.frequency);
        let m = s.repeat_mean_value.unwrap_or(0.0).max(0.0);
        self.p * (self.gamma + x * m) / (self.p * x + self.q - 1.0)
    }
}

/// Fits Gamma-Gamma on the repeat buyers among `summaries` whose mean amount is positive
/// (Nelder-Mead on log-parameters from `p = q = γ = 1`, as `lifetimes`).
///
/// # Errors
///
/// [`GrowthError::TooFewRepeatBuyers`]; [`GrowthError::NotConverged`]; [`GrowthError::Degenerate`]
/// also when `q <= 1`, where the expected order value is infinite.
pub fn fit(summaries: &[Summary]) -> Result<GammaGammaFit, GrowthError> {
    fit_from(summaries, None)
}

/// [`fit`], warm-started from `previous` (an earlier fit's parameters on similar data, e.g. the
/// previous assessment's): the simplex starts there with small steps (0.05 in log-parameters
/// instead of 0.5), Newton first. Where the likelihood has one maximum, the same optimum as
/// [`fit`]; but where it rises towards a boundary (degenerate: [`fit`] reports it) and also has
/// an interior local maximum, a warm start near that one ends there: callers that must report
/// degeneracy honestly use [`fit`] (the scheduler does). `None` is [`fit`].
///
/// # Errors
///
/// As [`fit`].
pub fn fit_from(
    summaries: &[Summary],
    previous: Option<&GammaGamma>,
) -> Result<GammaGammaFit, GrowthError> {
    let mut pairs: Vec<(u32, f64)> = summaries
        .iter()
        .filter_map(|s| Some((s.frequency, s.repeat_mean_value?)))
        .filter(|&(x, m)| x > 0 && m > 0.0 && m.is_finite())
        .collect();
    let buyers = pairs.len() as u64;
    if buyers < MIN_REPEAT_BUYERS {
        return Err(GrowthError::TooFewRepeatBuyers {
            found: buyers,
            needed: MIN_REPEAT_BUYERS,
        });
    }
    pairs.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
    // (x, m, count) and the parts of the likelihood that are linear in p or constant.
    let mut groups: Vec<(f64, f64, f64)> = Vec::new();
    for (x, m) in pairs {
        match groups.last_mut() {
            Some(g) if g.0 == f64::from(x) && g.1 == m => g.2 += 1.0,
            _ => groups.push((f64::from(x), m, 1.0)),
        }
    }
    let mut by_x: Vec<(f64, f64)> = Vec::new();
    for &(x, _, c) in &groups {
        match by_x.last_mut() {
            Some(g) if g.0 == x => g.1 += c,
            _ => by_x.push((x, c)),
        }
    }
    let sum_x_ln_m: f64 = groups.iter().map(|&(x, m, c)| c * x * m.ln()).sum();
    let sum_ln_m: f64 = groups.iter().map(|&(_, m, c)| c * m.ln()).sum();
    let sum_x_ln_x: f64 = by_x.iter().map(|&(x, c)| c * x * x.ln()).sum();
    let n = buyers as f64;
    let log_likelihood = |p: f64, q: f64, g: f64| {
        let (lg_q, ln_g) = (ln_gamma(q), g.ln());
        let mut total = p * (sum_x_ln_m + sum_x_ln_x) - sum_ln_m;
        for &(x, c) in &by_x {
            total += c * (ln_gamma(p * x + q) - ln_gamma(p * x) - lg_q + q * ln_g);
        }
        for &(x, m, c) in &groups {
            total -= c * (p * x + q) * (x * m + g).ln();
        }
        total
    };
    let objective = |t: &[f64]| {
        if crate::outside_bounds(t) {
            return f64::INFINITY;
        }
        -log_likelihood(t[0].exp(), t[1].exp(), t[2].exp()) / n
    };
    let warm = previous
        .map(|g| [g.p, g.q, g.gamma].map(f64::ln))
        .filter(|t| t.iter().all(|v| v.is_finite()) && !crate::outside_bounds(t));
    // The gradient of the objective in log-parameters.
    let gradient = |t: &[f64]| -> [f64; 3] {
        let (p, q, g) = (t[0].exp(), t[1].exp(), t[2].exp());
        let (dg_q, ln_g) = (digamma(q), g.ln());
        let mut d = [sum_x_ln_m + sum_x_ln_x, 0.0, 0.0];
        for &(x, c) in &by_x {
            let dg_pxq = digamma(p * x + q);
            d[0] += c * x * (dg_pxq - digamma(p * x));
            d[1] += c * (dg_pxq - dg_q + ln_g);
            d[2] += c * q / g;
        }
        for &(x, m, c) in &groups {
            let ln_xmg = (x * m + g).ln();
            d[0] -= c * x * ln_xmg;
            d[1] -= c * ln_xmg;
            d[2] -= c * (p * x + q) / (x * m + g);
        }
        [-d[0] * p / n, -d[1] * q / n, -d[2] * g / n]
    };
    // Newton from the warm start; else the simplex (from the warm start with small steps, or
    // from p = q = γ = 1), polished by Newton so that every way ends at the same optimum.
    let direct = warm.and_then(|start| newton(objective, gradient, &start));
    let found = match direct {
        Some(found) => found,
        None => {
            let walked = match warm {
                Some(start) => minimize(objective, &start, 0.05),
                None => minimize(objective, &[0.0, 0.0, 0.0], 0.5),
            };
            match newton(objective, gradient, &walked.x).filter(|_| walked.converged) {
                Some(mut polished) => {
                    polished.iterations += walked.iterations;
                    polished
                }
                None => walked,
            }
        }
    };
    crate::check_minimum("Gamma-Gamma", &["p", "q", "gamma"], &found)?;
    let params = GammaGamma {
        p: found.x[0].exp(),
        q: found.x[1].exp(),
        gamma: found.x[2].exp(),
    };
    if params.q <= 1.0 {
        return Err(GrowthError::Degenerate {
            model: "Gamma-Gamma",
            parameter: "q",
            value: params.q,
        });
    }
    Ok(GammaGammaFit {
        params,
        quality: FitQuality {
            log_likelihood: -found.value * n,
            customers: buyers,
            repeat_buyers: buyers,
            iterations: found.iterations,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn too_few_buyers_with_positive_amounts_is_refused() {
        let s = Summary {
            frequency: 2,
            recency: 5,
            age: 9,
            repeat_mean_value: Some(-1.0),
        };
        assert_eq!(
            fit(&[s; 50]).unwrap_err(),
            GrowthError::TooFewRepeatBuyers {
                found: 0,
                needed: MIN_REPEAT_BUYERS
            }
        );
    }

    #[test]
    fn expected_value_shrinks_towards_the_population_mean() {
        let g = GammaGamma {
            p: 6.25,
            q: 3.74,
            gamma: 15.44,
        };
        let none = Summary {
            frequency: 0,
            recency: 0,
            age: 9,
            repeat_mean_value: None,
        };
        let population = g.p * g.gamma / (g.q - 1.0);
        assert!((g.expected_order_value(&none) - population).abs() < 1e-12);
        let big = Summary {
            frequency: 10,
            recency: 5,
            age: 9,
            repeat_mean_value: Some(100.0),
        };
        let value = g.expected_order_value(&big);
        assert!(population < value && value < 100.0);
    }
}
