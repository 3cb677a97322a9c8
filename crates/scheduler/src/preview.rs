//! "What would change": the rules evaluated on the stored customers as an assessment would
//! evaluate them (features at a time, growth models, active pins, hysteresis, the evaluation
//! budget), compared with the tiers stored now, and nothing recorded.
//!
//! Bounded: at most `limit` customers are evaluated, taken in turn from each stored tier (the
//! sample rule sets are proven on, [`Store::sample_features`]); a workspace with no more
//! customers than that is evaluated whole. The preview says which it was, so a page can say
//! it. The staff workspace's rules page shows it; `tiercare assess --dry-run` is the whole
//! assessment without the bound.

use std::collections::BTreeMap;
use std::time::Instant;

use serde::Serialize;
use tiercare_engine::{Feature, RuleSet, Snapshot};
use tiercare_store::Store;

use crate::assess::{AssessError, Move, assessed_at, engine_pin, fill_snapshot};
use crate::growth::{Growth, GrowthSettings};

/// The most customers the staff workspace's preview evaluates.
pub const PREVIEW_LIMIT: usize = 5_000;

/// How many customers who would move a preview names, at most.
pub const PREVIEW_EXAMPLES: usize = 20;

/// What to preview.
#[derive(Debug, Clone, Copy)]
pub struct PreviewOptions {
    /// The time the customers are evaluated at (unix seconds).
    pub at: i64,
    /// The wall-clock time (unix seconds), for pins' expiry.
    pub now: i64,
    /// At most this many customers are evaluated.
    pub limit: usize,
    /// The growth models' zone and discount rate.
    pub growth: GrowthSettings,
    /// The time each customer's evaluation may take (`[rules] budget_ms`).
    pub budget: Option<tiercare_engine::Budget>,
}

/// One customer who would change tier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MoveExample {
    /// The customer's external id.
    pub customer_id: String,
    /// Their stored tier (`(new)` without one).
    pub from: String,
    /// The tier the rules give them now (`(none)` when no tier matches).
    pub to: String,
}

/// What [`preview_tier_changes`] found.
#[derive(Debug, Clone, Serialize)]
pub struct TierChangePreview {
    /// The time the customers were evaluated at (unix seconds).
    pub at: i64,
    /// The rule-set version evaluated.
    pub ruleset_version: String,
    /// Customers stored.
    pub customers: u64,
    /// Customers evaluated: all of them, or a sample of `limit`.
    pub evaluated: u64,
    /// The bound: at most this many are evaluated.
    pub limit: usize,
    /// Evaluated customers whose tier would stay.
    pub unchanged: u64,
    /// Evaluated customers whose rules failed (they would keep their stored tier).
    pub failed: u64,
    /// From one tier to another: how many of the evaluated customers would move.
    pub moves: Vec<Move>,
    /// Some of the customers who would move, at most [`PREVIEW_EXAMPLES`], in sample order.
    pub examples: Vec<MoveExample>,
    /// Wall time in milliseconds.
    pub elapsed_ms: u128,
}

impl TierChangePreview {
    /// Whether only a sample was evaluated (more customers are stored than the bound).
    pub fn sampled(&self) -> bool {
        self.evaluated < self.customers
    }
}

/// Evaluates `rules` on up to `options.limit` customers of `store` at `options.at` and
/// compares each one's tier with the stored one. Writes nothing.
///
/// # Errors
/// When the database cannot be read.
pub fn preview_tier_changes(
    store: &Store,
    rules: &RuleSet,
    options: PreviewOptions,
) -> Result<TierChangePreview, AssessError> {
    let started = Instant::now();
    let window = rules.window();
    let customers = store.customer_count()?;
    let sample =
        store.sample_features(options.at, window, options.limit, rules.uses(Feature::Attr))?;
    let sampled = started.elapsed();
    // Only tiers are compared: the growth models are fitted (a pass over every order and an
    // optimisation, most of a preview's time) only when a tier or a score reads them.
    let growth = if crate::growth::FEATURES.iter().any(|f| rules.tiers_use(*f)) {
        Growth::compute(
            store,
            options.at,
            window,
            options.growth,
            crate::growth::wanted(|f| rules.tiers_use(f)),
        )?
    } else {
        Growth::default()
    };
    let read = started.elapsed();
    let pins = store.active_pins(options.now)?;
    let mut evaluator = rules.evaluator();
    evaluator.set_budget(options.budget);
    let mut snapshot = Snapshot::new();
    let mut moves: BTreeMap<(String, String), u64> = BTreeMap::new();
    let mut examples = Vec::new();
    let (mut unchanged, mut failed) = (0, 0);
    for features in &sample {
        fill_snapshot(&mut snapshot, features);
        growth.fill(&mut snapshot, features.customer_rowid);
        assessed_at(&mut snapshot, options.at);
        snapshot.set_pin(pins.get(&features.customer_rowid).map(engine_pin));
        let decision = evaluator.evaluate(&snapshot);
        if !decision.errors.is_empty() {
            failed += 1;
            continue;
        }
        let to = decision.tier.as_deref().unwrap_or("(none)");
        if features.previous_tier == to {
            unchanged += 1;
            continue;
        }
        let from = if features.previous_tier.is_empty() {
            "(new)"
        } else {
            features.previous_tier.as_str()
        };
        *moves.entry((from.to_owned(), to.to_owned())).or_default() += 1;
        if examples.len() < PREVIEW_EXAMPLES {
            examples.push(MoveExample {
                customer_id: features.customer_id.clone(),
                from: from.to_owned(),
                to: to.to_owned(),
            });
        }
    }
    let mut moves: Vec<Move> = moves
        .into_iter()
        .map(|((from, to), customers)| Move {
            from,
            to,
            customers,
        })
        .collect();
    moves.sort_by_key(|m| std::cmp::Reverse(m.customers));
    tracing::debug!(
        customers,
        evaluated = sample.len(),
        features_ms = sampled.as_millis(),
        growth_ms = (read - sampled).as_millis(),
        total_ms = started.elapsed().as_millis(),
        "tier changes previewed"
    );
    Ok(TierChangePreview {
        at: options.at,
        ruleset_version: rules.version().to_owned(),
        customers,
        evaluated: sample.len() as u64,
        limit: options.limit,
        unchanged,
        failed,
        moves,
        examples,
        elapsed_ms: started.elapsed().as_millis(),
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use tiercare_engine::RecordKind;

    use super::*;
    use crate::assess::{AssessOptions, RuleSource, assess};
    use crate::test_support::import;
    use crate::workspace::Workspace;

    /// 2025-06-02T00:00:00Z.
    const AT: i64 = 1_748_822_400;

    #[test]
    fn a_preview_matches_a_dry_run_writes_nothing_and_states_its_bound() {
        let tmp = tempfile::tempdir().unwrap();
        let (workspace, _) = Workspace::init(&tmp.path().join("ws"), chrono_tz::UTC).unwrap();
        let mut store = workspace.open_store().unwrap();
        let mut customers = String::from("customer_id,name\n");
        let mut orders = String::from("order_id,customer_id,ordered_at,amount\n");
        for i in 0..40 {
            customers.push_str(&format!("C{i},Customer {i}\n"));
            orders.push_str(&format!(
                "O{i},C{i},2025-03-{:02},{}\n",
                i % 28 + 1,
                i * i * 10
            ));
        }
        import(&workspace, &mut store, RecordKind::Customers, &customers);
        import(&workspace, &mut store, RecordKind::Orders, &orders);
        let rules = RuleSource::read(&workspace.rules_dir(), Path::new("rules"))
            .unwrap()
            .load()
            .unwrap()
            .rules;
        let options = PreviewOptions {
            at: AT,
            now: AT,
            limit: 1_000,
            growth: GrowthSettings::default(),
            budget: None,
        };
        // Nobody has a tier yet: everyone would move from (new), as a dry run says.
        let preview = preview_tier_changes(&store, &rules, options).unwrap();
        let dry = assess(
            &store,
            None,
            &rules,
            AssessOptions {
                at: AT,
                now: AT,
                dry_run: true,
                growth: GrowthSettings::default(),
            },
        )
        .unwrap();
        assert_eq!((preview.customers, preview.evaluated), (40, 40));
        // The default rules read the growth features in segments only: no fit for tiers.
        assert!(rules.uses(Feature::PAlive) && !rules.tiers_use(Feature::PAlive));
        assert!(!preview.sampled());
        let counts = |moves: &[Move]| {
            let mut counts: Vec<(String, String, u64)> = moves
                .iter()
                .map(|m| (m.from.clone(), m.to.clone(), m.customers))
                .collect();
            counts.sort();
            counts
        };
        assert_eq!(counts(&preview.moves), counts(&dry.moves));
        assert_eq!(preview.examples.len(), PREVIEW_EXAMPLES);
        assert!(preview.examples.iter().all(|e| e.from == "(new)"));
        assert_eq!(store.last_assessment().unwrap(), None, "nothing recorded");

        // Once assessed, the same rules move nobody.
        let mut writer = workspace.open_store().unwrap();
        assess(
            &store,
            Some(&mut writer),
            &rules,
            AssessOptions {
                at: AT,
                now: AT,
                dry_run: false,
                growth: GrowthSettings::default(),
            },
        )
        .unwrap();
        let preview = preview_tier_changes(&store, &rules, options).unwrap();
        assert_eq!((preview.unchanged, preview.moves.len()), (40, 0));

        // A bound below the population: a sample, said so.
        let bounded = preview_tier_changes(
            &store,
            &rules,
            PreviewOptions {
                limit: 10,
                ..options
            },
        )
        .unwrap();
        assert_eq!((bounded.evaluated, bounded.limit), (10, 10));
        assert!(bounded.sampled());
    }
}
