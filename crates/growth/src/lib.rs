//! tiercare's growth models: what a customer's purchase history says about their future.
//!
//! From each customer's purchase days ([`summarize`]: frequency `x`, recency `t_x`, age `T`, in
//! days, at most one purchase a day), [`bgnbd::fit`] fits BG/NBD (is the customer still active,
//! how many purchases next) and [`gamma_gamma::fit`] fits Gamma-Gamma (how much per purchase);
//! [`predict`] combines them per customer into `p_alive`, expected orders, expected order value,
//! a discounted 12-month [`clv`] and a growth potential. A fit the data cannot support is a
//! [`GrowthError`] saying why, never a panic or made-up parameters.
//!
//! Validated on the CDNOW sample against the BG/NBD paper's estimates and against `lifetimes`
//! (`tests/cdnow.rs`).
//!
//! # What this crate must never do
//!
//! - **No IO, no clock.** It gets purchase days and amounts and an end day, and returns numbers;
//!   the scheduler reads the orders and decides the days (in the workspace's zone).
//! - **No dependence on the rest of tiercare**, so the engine and the scheduler can both use it.

pub mod bgnbd;
pub mod gamma_gamma;
mod holdout;
mod optimize;
mod special;
mod summary;
mod tracking;
mod value;

use serde::{Deserialize, Serialize};

pub use bgnbd::{BgNbd, BgNbdFit};
pub use gamma_gamma::{GammaGamma, GammaGammaFit};
pub use holdout::{HoldoutRow, holdout_by_frequency};
pub use special::{ln_gamma, ln_hyp2f1};
pub use summary::{Summary, summarize};
pub use tracking::{TrackingWeek, cumulative_repeat_purchases};
pub use value::{
    DAYS_PER_MONTH, DEFAULT_MONTHLY_DISCOUNT, Expectations, Prediction, Wanted, YEAR_DAYS, clv,
    discounted_orders, predict, predict_from,
};

/// A fitted log-parameter beyond ±this (a parameter below 1e-13 or above 3e13) means the
/// likelihood ran off to a boundary: the data do not identify the model.
const MAX_LOG_PARAMETER: f64 = 30.0;

/// A fit that has not converged with a log-parameter beyond this (a factor of 3.3 million) is
/// walking towards a boundary: reported as degenerate rather than slow.
const RUNAWAY_LOG_PARAMETER: f64 = 15.0;

/// The optimisers search inside `|log-parameter| <= MAX_LOG_PARAMETER + 1`: a likelihood that
/// keeps rising towards a boundary then converges against the wall, and the fit reports
/// [`GrowthError::Degenerate`] instead of walking until its iterations run out.
fn outside_bounds(t: &[f64]) -> bool {
    t.iter().any(|v| v.abs() > MAX_LOG_PARAMETER + 1.0)
}

/// Whether an optimiser's result is a fit of `model` (log-parameters named `names`): not
/// converged is [`GrowthError::Degenerate`] when the largest log-parameter ran away towards a
/// boundary, else [`GrowthError::NotConverged`]; converged, any log-parameter beyond
/// `MAX_LOG_PARAMETER` is degenerate.
fn check_minimum(
    model: &'static str,
    names: &[&'static str],
    found: &optimize::Minimum,
) -> Result<(), GrowthError> {
    if !found.converged {
        // Still walking after the budget: towards a boundary (degenerate) or along a ridge.
        let (name, t) = names
            .iter()
            .zip(&found.x)
            .max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))
            .expect("parameters");
        if t.abs() > RUNAWAY_LOG_PARAMETER {
            return Err(GrowthError::Degenerate {
                model,
                parameter: name,
                value: t.exp(),
            });
        }
        return Err(GrowthError::NotConverged {
            model,
            iterations: found.iterations,
        });
    }
    for (name, t) in names.iter().zip(&found.x) {
        if t.abs() > MAX_LOG_PARAMETER {
            return Err(GrowthError::Degenerate {
                model,
                parameter: name,
                value: t.exp(),
            });
        }
    }
    Ok(())
}

/// How a fit went.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FitQuality {
    /// The maximised log-likelihood (times in days).
    pub log_likelihood: f64,
    /// Customers fitted.
    pub customers: u64,
    /// Of them, customers with at least one repeat purchase day.
    pub repeat_buyers: u64,
    /// Optimiser iterations.
    pub iterations: u32,
}

/// Why a model could not be fitted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GrowthError {
    /// Too few customers with a purchase to fit anything.
    #[error(
        "too few customers with an order to fit the growth models: {found}, at least {needed} needed"
    )]
    TooFewCustomers {
        /// Customers found.
        found: u64,
        /// The minimum.
        needed: u64,
    },
    /// Too few customers who bought on more than one day.
    #[error(
        "too few repeat buyers (customers with orders on two or more days) to fit the growth models: {found}, at least {needed} needed"
    )]
    TooFewRepeatBuyers {
        /// Repeat buyers found.
        found: u64,
        /// The minimum.
        needed: u64,
    },
    /// The optimiser ran out of iterations.
    #[error("the {model} fit did not converge in {iterations} iterations")]
    NotConverged {
        /// `BG/NBD` or `Gamma-Gamma`.
        model: &'static str,
        /// Iterations spent.
        iterations: u32,
    },
    /// The likelihood is maximised at a boundary: the data do not identify the model.
    #[error(
        "the {model} fit is degenerate: {parameter} = {value:e} (the purchase history does not identify the model)"
    )]
    Degenerate {
        /// `BG/NBD` or `Gamma-Gamma`.
        model: &'static str,
        /// The parameter at the boundary.
        parameter: &'static str,
        /// Its value.
        value: f64,
    },
}
