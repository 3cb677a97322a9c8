//! The growth models' part of `assess` and `explain`: the fit (or why there is none) and one
//! customer's summary and predicted values.

use tiercare_scheduler::assess::CustomerExplanation;
use tiercare_scheduler::growth::{FitSource, GrowthOutcome};

use crate::output::Output;

/// One line on the fit after an assessment's table; a warning with the reason for a model that
/// could not be fitted.
pub(crate) fn print_fit(outcome: Option<&GrowthOutcome>, out: &Output) {
    match outcome {
        Some(GrowthOutcome::Fitted(fit)) => {
            let b = &fit.bgnbd;
            let q = &fit.bgnbd_quality;
            out.line(&format!(
                "  growth models: BG/NBD r {:.3} alpha {:.2} d a {:.3} b {:.3} (log-likelihood {:.1}, {} customers, {} repeat buyers, {} iterations)",
                b.r, b.alpha, b.a, b.b, q.log_likelihood, q.customers, q.repeat_buyers, q.iterations,
            ));
            if let Some(id) = fit.warm_start {
                out.line(&format!(
                    "  (optimisers warm-started from assessment #{id}'s parameters)"
                ));
            }
            if let (Some(g), Some(q)) = (&fit.gamma_gamma, &fit.gamma_gamma_quality) {
                out.line(&format!(
                    "  Gamma-Gamma p {:.3} q {:.3} gamma {:.3} (log-likelihood {:.1}, {} repeat buyers, {} iterations) · discount {}%/month",
                    g.p,
                    g.q,
                    g.gamma,
                    q.log_likelihood,
                    q.customers,
                    q.iterations,
                    fit.monthly_discount * 100.0
                ));
            }
            if let Some(reason) = &fit.gamma_gamma_unavailable {
                out.warn(&format!("growth models: {reason}"));
            }
        }
        Some(GrowthOutcome::Unavailable(reason)) => out.warn(&format!("growth models: {reason}")),
        None => {}
    }
}

/// `explain`'s growth section.
pub(crate) fn print_customer(explained: &CustomerExplanation, out: &Output) {
    out.heading("growth");
    match explained.growth_source {
        FitSource::Stored { assessment_id, at } => {
            let when = chrono::DateTime::from_timestamp(at, 0)
                .map_or_else(|| at.to_string(), |t| t.format("%Y-%m-%d %H:%M UTC").to_string());
            out.line(&format!(
                "  models: the fit stored with assessment #{assessment_id} (at {when})"
            ));
        }
        FitSource::FittedNow => out.line(
            "  models: fitted now over every customer's orders (no assessment has stored a fit yet: `tiercare assess` stores one)",
        ),
    }
    match &explained.growth_summary {
        Some(s) => out.line(&format!(
            "  frequency {} repeat purchase days · recency {} days · age {} days",
            s.frequency, s.recency, s.age
        )),
        None => out.line("  no order in the rules' window: no growth values"),
    }
    if let Some(p) = &explained.growth_prediction {
        let opt = |v: Option<f64>, digits: usize| {
            v.map_or_else(|| "none".to_owned(), |v| format!("{v:.digits$}"))
        };
        out.line(&format!(
            "  p_alive {:.3} · expected_orders_90d {} · expected_order_value {} · clv_12m {} · growth_potential {} (past 365 days: {:.2})",
            p.p_alive,
            opt(p.expected_orders_90d, 3),
            opt(p.expected_order_value, 2),
            opt(p.clv_12m, 2),
            opt(p.growth_potential, 2),
            p.past_value,
        ));
    }
    print_fit(explained.growth.as_ref(), out);
}
