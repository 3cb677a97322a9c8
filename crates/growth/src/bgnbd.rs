//! BG/NBD (Fader, Hardie and Lee, "Counting Your Customers the Easy Way", Marketing Science
//! 24(2), 2005): purchases while alive are Poisson with rate λ ~ Gamma(r, α); after each purchase
//! the customer drops out with probability p ~ Beta(a, b). Times are in days.

use serde::{Deserialize, Serialize};

use crate::optimize::minimize;
use crate::special::{digamma, ln_gamma, ln_hyp2f1};
use crate::{FitQuality, GrowthError, Summary};

/// The fewest customers a BG/NBD fit accepts.
pub const MIN_CUSTOMERS: u64 = 30;
/// The fewest repeat buyers (customers with a repeat purchase day) a fit accepts: `a` and `b`
/// are identified only through them.
pub const MIN_REPEAT_BUYERS: u64 = 10;

/// Fitted BG/NBD parameters (`alpha` in days).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BgNbd {
    /// Shape of the purchase-rate Gamma.
    pub r: f64,
    /// Scale of the purchase-rate Gamma, in days.
    pub alpha: f64,
    /// First shape of the dropout Beta.
    pub a: f64,
    /// Second shape of the dropout Beta.
    pub b: f64,
}

/// A BG/NBD fit: the parameters and how well they fit.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BgNbdFit {
    /// The maximum-likelihood parameters.
    pub params: BgNbd,
    /// The log-likelihood there, customers and iterations.
    pub quality: FitQuality,
}

impl BgNbd {
    /// The log-likelihood of one customer's summary (the paper's equation 6, in its
    /// `A1 + A2 + ln(exp(A3) + δ exp(A4))` form).
    #[must_use]
    pub fn log_likelihood(&self, s: &Summary) -> f64 {
        let x = f64::from(s.frequency);
        let (r, alpha, a, b) = (self.r, self.alpha, self.a, self.b);
        let a1 = ln_gamma(r + x) - ln_gamma(r) + r * alpha.ln();
        let a2 = ln_gamma(a + b) + ln_gamma(b + x) - ln_gamma(b) - ln_gamma(a + b + x);
        let a3 = -(r + x) * (alpha + f64::from(s.age)).ln();
        let rest = if s.frequency > 0 {
            let a4 = a.ln() - (b + x - 1.0).ln() - (r + x) * (alpha + f64::from(s.recency)).ln();
            log_add_exp(a3, a4)
        } else {
            a3
        };
        a1 + a2 + rest
    }

    /// The probability that the customer is still alive at the end of the period (the paper's
    /// equation 13): `1 / (1 + δ(x>0) a/(b+x-1) ((α+T)/(α+t_x))^(r+x))`.
    #[must_use]
    pub fn p_alive(&self, s: &Summary) -> f64 {
        if s.frequency == 0 {
            return 1.0;
        }
        let x = f64::from(s.frequency);
        let log_odds = (self.a / (self.b + x - 1.0)).ln()
            + (self.r + x)
                * ((self.alpha + f64::from(s.age)) / (self.alpha + f64::from(s.recency))).ln();
        1.0 / (1.0 + log_odds.exp())
    }

    /// The expected number of purchase days in the next `days` days (the paper's equation 10):
    ///
    /// `E[Y(t) | x, t_x, T] = ((a+b+x-1)/(a-1)) [1 - ((α+T)/(α+T+t))^(r+x) ₂F₁(r+x, b+x;
    /// a+b+x-1; t/(α+T+t))] / (1 + δ(x>0) a/(b+x-1) ((α+T)/(α+t_x))^(r+x))`.
    ///
    /// `None` where the formula is undefined (`a = 1`, or `a + b <= 1` for a customer without
    /// repeats) or the hypergeometric series does not settle.
    #[must_use]
    pub fn expected_orders(&self, s: &Summary, days: f64) -> Option<f64> {
        if days <= 0.0 {
            return Some(0.0);
        }
        let x = f64::from(s.frequency);
        let (r, alpha, a, b) = (self.r, self.alpha, self.a, self.b);
        let age = f64::from(s.age);
        let c = a + b + x - 1.0;
        if (a - 1.0).abs() < 1e-12 || c <= 0.0 {
            return None;
        }
        let z = days / (alpha + age + days);
        let ln_hyp = ln_hyp2f1(r + x, b + x, c, z)?;
        let second = -(ln_hyp + (r + x) * (-z).ln_1p()).exp_m1();
        let numerator = c / (a - 1.0) * second;
        let denominator = if s.frequency > 0 {
            1.0 + a / (b + x - 1.0) * ((alpha + age) / (alpha + f64::from(s.recency))).powf(r + x)
        } else {
            1.0
        };
        let value = numerator / denominator;
        value.is_finite().then_some(value.max(0.0))
    }
}

/// `ln(e^x + e^y)` without overflow.
fn log_add_exp(x: f64, y: f64) -> f64 {
    let (hi, lo) = if x > y { (x, y) } else { (y, x) };
    hi + (lo - hi).exp().ln_1p()
}

/// Customers grouped by identical `(x, t_x, T)`, sorted by `x`: the likelihood is a sum over
/// groups, so a fit's cost follows the distinct summaries, not the customers.
struct Grouped {
    /// `(x, t_x, T, count)`.
    triples: Vec<(u32, u32, u32, f64)>,
    max_day: u32,
    customers: u64,
    repeat_buyers: u64,
}

impl Grouped {
    fn new(summaries: &[Summary]) -> Grouped {
        let mut keys: Vec<(u32, u32, u32)> = summaries
            .iter()
            .map(|s| (s.frequency, s.recency, s.age))
            .collect();
        keys.sort_unstable();
        let mut triples: Vec<(u32, u32, u32, f64)> = Vec::new();
        for key in keys {
            match triples.last_mut() {
                Some(last) if (last.0, last.1, last.2) == key => last.3 += 1.0,
                _ => triples.push((key.0, key.1, key.2, 1.0)),
            }
        }
        Grouped {
            max_day: triples.iter().map(|t| t.2.max(t.1)).max().unwrap_or(0),
            customers: summaries.len() as u64,
            repeat_buyers: summaries.iter().filter(|s| s.frequency > 0).count() as u64,
            triples,
        }
    }

    fn clone_empty(&self) -> Grouped {
        Grouped {
            triples: Vec::new(),
            max_day: self.max_day,
            customers: self.customers,
            repeat_buyers: self.repeat_buyers,
        }
    }

    /// Minus the mean log-likelihood per customer the triples stand for, over log-parameters.
    fn objective(&self) -> impl Fn(&[f64]) -> f64 + '_ {
        let scratch = std::cell::RefCell::new(Vec::new());
        let weight: f64 = self.triples.iter().map(|t| t.3).sum();
        move |t: &[f64]| {
            if crate::outside_bounds(t) {
                return f64::INFINITY;
            }
            -self.log_likelihood(&unpack(t), &mut scratch.borrow_mut()) / weight
        }
    }

    /// The gradient of minus the mean log-likelihood with respect to the log-parameters.
    fn gradient(&self, t: &[f64]) -> [f64; 4] {
        let BgNbd { r, alpha, a, b } = unpack(t);
        let (dg_r, dg_ab, dg_b) = (digamma(r), digamma(a + b), digamma(b));
        let inv: Vec<f64> = (0..=self.max_day)
            .map(|d| 1.0 / (alpha + f64::from(d)))
            .collect();
        let ln: Vec<f64> = (0..=self.max_day)
            .map(|d| (alpha + f64::from(d)).ln())
            .collect();
        let (ln_a, ln_alpha) = (a.ln(), alpha.ln());
        let mut g = [0.0; 4];
        let mut weight = 0.0;
        let mut current_x = u32::MAX;
        let mut head = [0.0; 4];
        let mut ln_a_over = 0.0;
        for &(x_days, recency, age, count) in &self.triples {
            let x = f64::from(x_days);
            if x_days != current_x {
                current_x = x_days;
                let dg_abx = digamma(a + b + x);
                head = [
                    digamma(r + x) - dg_r + ln_alpha,
                    r / alpha,
                    dg_ab - dg_abx,
                    dg_ab + digamma(b + x) - dg_b - dg_abx,
                ];
                ln_a_over = if x_days > 0 {
                    ln_a - (b + x - 1.0).ln()
                } else {
                    0.0
                };
            }
            let (age, recency) = (age as usize, recency as usize);
            let rx = r + x;
            let mut d = head;
            if x_days > 0 {
                // w: the share of the "dropped out after the last purchase" term.
                let a3 = -rx * ln[age];
                let a4 = ln_a_over - rx * ln[recency];
                let w = 1.0 / (1.0 + (a3 - a4).exp());
                d[0] -= (1.0 - w) * ln[age] + w * ln[recency];
                d[1] -= rx * ((1.0 - w) * inv[age] + w * inv[recency]);
                d[2] += w / a;
                d[3] -= w / (b + x - 1.0);
            } else {
                d[0] -= ln[age];
                d[1] -= rx * inv[age];
            }
            for k in 0..4 {
                g[k] += count * d[k];
            }
            weight += count;
        }
        let p = [r, alpha, a, b];
        std::array::from_fn(|k| -g[k] * p[k] / weight)
    }

    /// Newton's method on the log-parameters from `start`, with the Hessian from differences of
    /// `curvature`'s analytic gradient (an even sample of these data: the same mean
    /// likelihood's curvature at a fraction of the cost) and a halving line search:
    /// `Some((point, value, iterations))` once the step is negligible, `None` if the Hessian is
    /// not positive definite on the way.
    fn newton(&self, start: &[f64], curvature: &Grouped) -> Option<(Vec<f64>, f64, u32)> {
        crate::optimize::newton_with_curvature(
            self.objective(),
            |x| self.gradient(x),
            |x| curvature.gradient(x),
            start,
        )
        .map(|found| (found.x, found.value, found.iterations))
    }

    /// The total log-likelihood at `p`.
    fn log_likelihood(&self, p: &BgNbd, ln_alpha_plus: &mut Vec<f64>) -> f64 {
        let (r, alpha, a, b) = (p.r, p.alpha, p.a, p.b);
        ln_alpha_plus.clear();
        ln_alpha_plus.extend((0..=self.max_day).map(|d| (alpha + f64::from(d)).ln()));
        let (ln_a, ln_r_alpha) = (a.ln(), r * alpha.ln());
        let (lg_r, lg_ab, lg_b) = (ln_gamma(r), ln_gamma(a + b), ln_gamma(b));
        let mut total = 0.0;
        let mut current_x = u32::MAX;
        let (mut head, mut ln_a_over) = (0.0, 0.0);
        for &(x_days, recency, age, count) in &self.triples {
            let x = f64::from(x_days);
            if x_days != current_x {
                current_x = x_days;
                head = ln_gamma(r + x) - lg_r + ln_r_alpha + lg_ab + ln_gamma(b + x)
                    - lg_b
                    - ln_gamma(a + b + x);
                ln_a_over = if x_days > 0 {
                    ln_a - (b + x - 1.0).ln()
                } else {
                    0.0
                };
            }
            let a3 = -(r + x) * ln_alpha_plus[age as usize];
            let rest = if x_days > 0 {
                log_add_exp(a3, ln_a_over - (r + x) * ln_alpha_plus[recency as usize])
            } else {
                a3
            };
            total += count * (head + rest);
        }
        total
    }
}

/// Above this many distinct summaries, a fit starts on an even sample of them.
const SAMPLE_TRIPLES: usize = 20_000;

fn unpack(t: &[f64]) -> BgNbd {
    BgNbd {
        r: t[0].exp(),
        alpha: t[1].exp(),
        a: t[2].exp(),
        b: t[3].exp(),
    }
}

/// Fits BG/NBD by maximum likelihood: Nelder-Mead on the logarithms of `(r, α, a, b)` from
/// `r = a = b = 1`, `α` a tenth of the oldest customer's age (`lifetimes`' start), restarted
/// from its result until it stops improving.
///
/// # Errors
///
/// [`GrowthError::TooFewCustomers`], [`GrowthError::TooFewRepeatBuyers`] when the data cannot
/// identify the model; [`GrowthError::NotConverged`] or [`GrowthError::Degenerate`] when the
/// optimiser could not settle on finite parameters.
pub fn fit(summaries: &[Summary]) -> Result<BgNbdFit, GrowthError> {
    fit_with_sample(summaries, SAMPLE_TRIPLES)
}

/// [`fit`], warm-started from `previous` (the parameters of an earlier fit on similar data,
/// e.g. the previous assessment's): Newton's method on all the summaries from there (the
/// Hessian from an even sample of them above 20,000 distinct summaries), the simplex from
/// there with small steps if Newton fails. The optimum is the same as [`fit`]'s (the
/// likelihood's maximum); only the way there is shorter. `None` is [`fit`].
///
/// # Errors
///
/// As [`fit`].
pub fn fit_from(summaries: &[Summary], previous: Option<&BgNbd>) -> Result<BgNbdFit, GrowthError> {
    match previous {
        Some(p) => fit_warm(summaries, p, SAMPLE_TRIPLES),
        None => fit(summaries),
    }
}

/// [`fit_from`] with a warm start, with the Hessian's sample taken above `sample_triples`.
fn fit_warm(
    summaries: &[Summary],
    previous: &BgNbd,
    sample_triples: usize,
) -> Result<BgNbdFit, GrowthError> {
    let data = checked(summaries)?;
    let start = [previous.r, previous.alpha, previous.a, previous.b].map(f64::ln);
    if start.iter().any(|t| !t.is_finite()) || crate::outside_bounds(&start) {
        return fit_with_sample(summaries, sample_triples);
    }
    let polished = if data.triples.len() > sample_triples {
        let k = data.triples.len().div_ceil(sample_triples);
        let sample = Grouped {
            triples: data.triples.iter().step_by(k).copied().collect(),
            ..data.clone_empty()
        };
        data.newton(&start, &sample)
    } else {
        data.newton(&start, &data)
    };
    let found = match polished {
        Some((x, value, iterations)) => crate::optimize::Minimum {
            x,
            value,
            iterations,
            converged: true,
        },
        // Too far for Newton: the cold path.
        None => return fit_with_sample(summaries, sample_triples),
    };
    finish(&data, &found)
}

/// The summaries grouped, or why they cannot identify the model.
fn checked(summaries: &[Summary]) -> Result<Grouped, GrowthError> {
    let data = Grouped::new(summaries);
    if data.customers < MIN_CUSTOMERS {
        return Err(GrowthError::TooFewCustomers {
            found: data.customers,
            needed: MIN_CUSTOMERS,
        });
    }
    if data.repeat_buyers < MIN_REPEAT_BUYERS {
        return Err(GrowthError::TooFewRepeatBuyers {
            found: data.repeat_buyers,
            needed: MIN_REPEAT_BUYERS,
        });
    }
    Ok(data)
}

/// The fit at the optimiser's result, or why it is not one.
fn finish(data: &Grouped, found: &crate::optimize::Minimum) -> Result<BgNbdFit, GrowthError> {
    crate::check_minimum("BG/NBD", &["r", "alpha", "a", "b"], found)?;
    Ok(BgNbdFit {
        params: unpack(&found.x),
        quality: FitQuality {
            log_likelihood: -found.value * data.customers as f64,
            customers: data.customers,
            repeat_buyers: data.repeat_buyers,
            iterations: found.iterations,
        },
    })
}

/// [`fit`], with the simplex's walk made on an even sample of the distinct summaries when
/// there are more than `sample_triples` of them (every k-th, with its weight), and the optimum
/// polished by Newton's method on all of them (the simplex on all of them if Newton fails).
/// [`fit`] samples above 20,000.
///
/// # Errors
///
/// As [`fit`].
pub fn fit_with_sample(
    summaries: &[Summary],
    sample_triples: usize,
) -> Result<BgNbdFit, GrowthError> {
    let data = checked(summaries)?;
    let start_alpha = (f64::from(data.max_day) / 10.0).max(1.0);
    let mut start = vec![0.0, start_alpha.ln(), 0.0, 0.0];
    let mut step = 0.5;
    let mut sample_iterations = 0;
    let mut polished = None;
    if data.triples.len() > sample_triples {
        // Many distinct summaries: the long walk from the generic start is made on an even
        // sample of them (every k-th, weights kept), and Newton polishes on all of them (a
        // handful of passes instead of a simplex's hundreds); the simplex is the fallback.
        let k = data.triples.len().div_ceil(sample_triples);
        let sample = Grouped {
            triples: data.triples.iter().step_by(k).copied().collect(),
            ..data.clone_empty()
        };
        let found = minimize(sample.objective(), &start, step);
        sample_iterations = found.iterations;
        if found.converged {
            polished = data.newton(&found.x, &sample);
            start = found.x;
            step = 0.05;
        }
    }
    let mut found = match polished {
        Some((x, value, iterations)) => crate::optimize::Minimum {
            x,
            value,
            iterations,
            converged: true,
        },
        None => {
            // The simplex on all of them, polished by Newton (the curvature of all of them:
            // this is the small-data path), so that cold and warm starts end at one optimum.
            let walked = minimize(data.objective(), &start, step);
            match data.newton(&walked.x, &data).filter(|_| walked.converged) {
                Some((x, value, iterations)) => crate::optimize::Minimum {
                    x,
                    value,
                    iterations: walked.iterations + iterations,
                    converged: true,
                },
                None => walked,
            }
        }
    };
    found.iterations += sample_iterations;
    finish(&data, &found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(frequency: u32, recency: u32, age: u32) -> Summary {
        Summary {
            frequency,
            recency,
            age,
            repeat_mean_value: None,
        }
    }

    #[test]
    fn grouped_likelihood_equals_the_sum_over_customers() {
        let p = BgNbd {
            r: 0.24,
            alpha: 30.9,
            a: 0.79,
            b: 2.43,
        };
        let customers = [
            s(0, 0, 30),
            s(2, 20, 30),
            s(0, 0, 30),
            s(5, 28, 60),
            s(2, 20, 30),
        ];
        let direct: f64 = customers.iter().map(|c| p.log_likelihood(c)).sum();
        let grouped = Grouped::new(&customers).log_likelihood(&p, &mut Vec::new());
        assert!((direct - grouped).abs() < 1e-10, "{direct} vs {grouped}");
    }

    #[test]
    fn the_analytic_gradient_matches_differences_of_the_likelihood() {
        let customers = [
            s(0, 0, 30),
            s(2, 20, 30),
            s(0, 0, 90),
            s(5, 28, 60),
            s(1, 3, 200),
        ];
        let data = Grouped::new(&customers);
        let f = data.objective();
        let t = [-1.4, 3.4, -0.23, 0.89];
        let g = data.gradient(&t);
        for k in 0..4 {
            let (mut up, mut down) = (t.to_vec(), t.to_vec());
            up[k] += 1e-6;
            down[k] -= 1e-6;
            let numeric = (f(&up) - f(&down)) / 2e-6;
            assert!((g[k] - numeric).abs() < 1e-6, "{k}: {} vs {numeric}", g[k]);
        }
    }

    #[test]
    fn too_little_data_is_refused_with_the_reason() {
        let few = vec![s(1, 3, 9); 10];
        assert_eq!(
            fit(&few).unwrap_err(),
            GrowthError::TooFewCustomers {
                found: 10,
                needed: MIN_CUSTOMERS
            }
        );
        let no_repeats = vec![s(0, 0, 9); 100];
        assert_eq!(
            fit(&no_repeats).unwrap_err(),
            GrowthError::TooFewRepeatBuyers {
                found: 0,
                needed: MIN_REPEAT_BUYERS
            }
        );
    }

    #[test]
    fn expected_orders_grow_with_the_horizon_and_p_alive_falls_with_silence() {
        let p = BgNbd {
            r: 0.24,
            alpha: 30.9,
            a: 0.79,
            b: 2.43,
        };
        let e30 = p.expected_orders(&s(3, 100, 120), 30.0).unwrap();
        let e90 = p.expected_orders(&s(3, 100, 120), 90.0).unwrap();
        assert!(0.0 < e30 && e30 < e90);
        assert!(p.p_alive(&s(3, 100, 120)) > p.p_alive(&s(3, 100, 300)));
        assert_eq!(p.p_alive(&s(0, 0, 300)), 1.0);
    }
}
