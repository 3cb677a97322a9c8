//! Rules proven on real customers before they act.
//!
//! Compiling a rule set runs it once on a customer without data; many failures only show on
//! real data (a recursion as deep as a customer's order count, a string as long as their
//! history, a condition that takes 20 ms per customer). So `check` (in a workspace with a
//! database) and every daemon reload also run the rule set on a sample of the workspace's real
//! customers, spread over the stored tiers ([`Store::sample_features`], `[rules] sample`), under
//! the evaluation budget (`[rules] budget_ms`), and refuse it if any rule fails for any of them:
//! one error per failing rule, at its `path:line:col`, naming the customer. Rules slower than
//! `[rules] slow_ms` for a sampled customer are warnings with the time measured.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use tiercare_engine::{Diagnostic, Feature, RuleSet, Snapshot};
use tiercare_store::{Store, StoreError};

use crate::assess::fill_snapshot;
use crate::config::RulesConfig;

/// What running a rule set on the sample found.
#[derive(Debug, Clone, Default)]
pub struct Proof {
    /// Customers the rules ran on.
    pub customers: usize,
    /// One error per rule that failed for a sampled customer (the rule set must be refused).
    pub errors: Vec<Diagnostic>,
    /// One warning per rule slower than `slow_ms` for a sampled customer.
    pub warnings: Vec<Diagnostic>,
}

/// Runs `rules` at `at` on up to `config.sample` customers of `store`, under the evaluation
/// budget, and reports every rule that fails and every rule slower than `config.slow_ms`.
///
/// # Errors
/// When the database cannot be read.
pub fn prove_on_sample(
    store: &Store,
    rules: &RuleSet,
    config: &RulesConfig,
    at: i64,
) -> Result<Proof, StoreError> {
    let window = rules.window();
    let sample = store.sample_features(at, window, config.sample, rules.uses(Feature::Attr))?;
    let mut evaluator = rules.evaluator();
    evaluator.set_budget(Some(config.budget()));
    evaluator.set_profile(Some(Instant::now));
    let mut snapshot = Snapshot::new();
    // Rule → (location, message, first customer, customers).
    let mut failures: BTreeMap<String, (String, String, String, usize)> = BTreeMap::new();
    for features in &sample {
        fill_snapshot(&mut snapshot, features);
        let decision = evaluator.evaluate(&snapshot);
        for error in decision.errors {
            failures
                .entry(error.rule)
                .and_modify(|failure| failure.3 += 1)
                .or_insert((
                    error.location,
                    error.message,
                    features.customer_id.clone(),
                    1,
                ));
        }
    }
    let errors = failures
        .into_iter()
        .map(|(rule, (location, message, customer, count))| {
            let others = match count {
                1 => String::new(),
                n => format!(" (and {} more of the {} sampled)", n - 1, sample.len()),
            };
            located(
                &location,
                Severity::Error,
                format!("{rule} fails for customer {customer}{others}: {message}"),
            )
            .with_hint(
                "it would fail in every assessment for such customers; `tiercare explain CUSTOMER` shows their values",
            )
        })
        .collect();
    let slow = Duration::from_millis(config.slow_ms);
    let warnings = evaluator
        .take_profile()
        .into_iter()
        .filter(|time| time.slowest > slow)
        .map(|time| {
            located(
                &time.location,
                Severity::Warning,
                format!(
                    "{} is slow: {:.1} ms for customer {} (warning above {} ms; the budget is {} ms per customer)",
                    time.rule,
                    time.slowest.as_secs_f64() * 1000.0,
                    time.customer,
                    config.slow_ms,
                    config.budget_ms
                ),
            )
        })
        .collect();
    Ok(Proof {
        customers: sample.len(),
        errors,
        warnings,
    })
}

enum Severity {
    Error,
    Warning,
}

/// A diagnostic at `location` (`path:line:col`, as rule errors carry it).
fn located(location: &str, severity: Severity, message: String) -> Diagnostic {
    let mut parts = location.rsplitn(3, ':');
    let column = parts.next().and_then(|c| c.parse().ok());
    let line = parts.next().and_then(|l| l.parse().ok());
    let (path, line, column) = match (line, column, parts.next()) {
        (Some(line), Some(column), Some(path)) => (path, line, column),
        _ => (location, 1, 1),
    };
    match severity {
        Severity::Error => Diagnostic::error(path, line, column, message),
        Severity::Warning => Diagnostic::warning(path, line, column, message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_split_into_path_line_and_column() {
        let d = located("rules/a:b.yaml:12:5", Severity::Error, "m".to_owned());
        assert_eq!(
            (d.path.as_str(), d.line, d.column),
            ("rules/a:b.yaml", 12, 5)
        );
        let d = located("somewhere", Severity::Warning, "m".to_owned());
        assert_eq!((d.path.as_str(), d.line, d.column), ("somewhere", 1, 1));
    }
}
