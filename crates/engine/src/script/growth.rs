//! `expected_orders(days)`: BG/NBD's expected purchase days over any horizon, as a function
//! scripts call with the customer being evaluated.
//!
//! A Rhai function sees its arguments, not the caller's scope, so the customer's inputs (the
//! assessment's fitted parameters, [`Snapshot::growth_model`], and the customer's
//! `repeat_purchase_days`, `repeat_recency_days` and `purchase_age_days`) are put in a
//! thread-local for the length of one script run ([`with_customer`]) and taken away after it,
//! as the time budget is ([`crate::script::sandbox::start_budget`]). Outside a run (follow-up
//! conditions, `customers --where`, templates, a rule set's trial run) there are none and the
//! function returns none (`()`), as the growth features are none there.

use std::cell::Cell;

use rhai::{Dynamic, Engine, EvalAltResult, FLOAT, INT};
use tiercare_growth::{BgNbd, Summary};

use crate::customer::feature::Feature;
use crate::customer::snapshot::Snapshot;

/// The function's name in scripts.
pub(crate) const NAME: &str = "expected_orders";

/// The features it reads besides the fitted parameters: a rule calling it reads these (so an
/// assessment fits the models for it).
pub(crate) const INPUTS: [Feature; 3] = [
    Feature::RepeatPurchaseDays,
    Feature::RepeatRecencyDays,
    Feature::PurchaseAgeDays,
];

/// How a wrong argument's error starts (the rule set's trial run recognises it).
pub(crate) const ARGUMENT_ERROR: &str = "expected_orders(days) takes";

thread_local! {
    static CUSTOMER: Cell<Option<(BgNbd, Summary)>> = const { Cell::new(None) };
}

/// Runs `run` with `snapshot`'s customer as the one `expected_orders` answers for.
pub(crate) fn with_customer<R>(snapshot: &Snapshot, run: impl FnOnce() -> R) -> R {
    let inputs = snapshot.growth_model().and_then(|model| {
        let day = |feature| {
            snapshot
                .int(feature)
                .and_then(|value| u32::try_from(value).ok())
        };
        Some((
            *model,
            Summary {
                frequency: day(Feature::RepeatPurchaseDays)?,
                recency: day(Feature::RepeatRecencyDays)?,
                age: day(Feature::PurchaseAgeDays)?,
                repeat_mean_value: None,
            },
        ))
    });
    CUSTOMER.with(|cell| cell.set(inputs));
    let result = run();
    CUSTOMER.with(|cell| cell.set(None));
    result
}

/// `expected_orders(days)` for the current customer: a float, none without inputs, an error
/// for a horizon that is not a finite number of days `>= 0`.
fn expected_orders(days: FLOAT) -> Result<Dynamic, Box<EvalAltResult>> {
    if !days.is_finite() || days < 0.0 {
        return Err(format!("{ARGUMENT_ERROR} a number of days >= 0, not {days}").into());
    }
    Ok(CUSTOMER
        .with(Cell::get)
        .and_then(|(model, summary)| model.expected_orders(&summary, days))
        .map_or(Dynamic::UNIT, Dynamic::from_float))
}

/// Registers `expected_orders` (an int or a float of days).
pub(crate) fn register(engine: &mut Engine) {
    #[expect(clippy::cast_precision_loss, reason = "a number of days fits a float")]
    engine
        .register_fn(NAME, |days: INT| expected_orders(days as FLOAT))
        .register_fn(NAME, expected_orders);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine() -> Engine {
        crate::script::catalog::rules_engine()
    }

    fn customer(model: Option<BgNbd>, x: i64, t_x: i64, age: i64) -> Snapshot {
        let mut snapshot = Snapshot::new();
        snapshot.set_int(Feature::RepeatPurchaseDays, x);
        snapshot.set_int(Feature::RepeatRecencyDays, t_x);
        snapshot.set_int(Feature::PurchaseAgeDays, age);
        snapshot.set_growth_model(model);
        snapshot
    }

    /// The paper's CDNOW estimates, α in days.
    const CDNOW: BgNbd = BgNbd {
        r: 0.243,
        alpha: 4.414 * 7.0,
        a: 0.793,
        b: 2.426,
    };

    #[test]
    fn it_is_the_models_expectation_for_the_customer_being_evaluated() {
        let engine = engine();
        let snapshot = customer(Some(CDNOW), 2, 210, 250);
        let summary = Summary {
            frequency: 2,
            recency: 210,
            age: 250,
            repeat_mean_value: None,
        };
        for (script, days) in [
            ("expected_orders(30)", 30.0),
            ("expected_orders(30.0)", 30.0),
            ("expected_orders(7 * 52)", 364.0),
            ("expected_orders(0)", 0.0),
        ] {
            let ours = with_customer(&snapshot, || engine.eval::<FLOAT>(script).unwrap());
            assert_eq!(
                Some(ours),
                CDNOW.expected_orders(&summary, days),
                "{script}"
            );
        }
        // Longer horizons expect more.
        let (month, year) = with_customer(&snapshot, || {
            (
                engine.eval::<FLOAT>("expected_orders(30)").unwrap(),
                engine.eval::<FLOAT>("expected_orders(365)").unwrap(),
            )
        });
        assert!(0.0 < month && month < year, "{month} {year}");
    }

    #[test]
    fn it_is_none_without_a_fit_or_without_orders_and_outside_a_run() {
        let engine = engine();
        let unfitted = customer(None, 2, 210, 250);
        let mut no_orders = Snapshot::new();
        no_orders.set_growth_model(Some(CDNOW));
        for snapshot in [&unfitted, &no_orders] {
            let value = with_customer(snapshot, || {
                engine.eval::<Dynamic>("expected_orders(30)").unwrap()
            });
            assert!(value.is_unit(), "{value:?}");
        }
        let fitted = customer(Some(CDNOW), 2, 210, 250);
        with_customer(&fitted, || ());
        assert!(
            engine
                .eval::<Dynamic>("expected_orders(30)")
                .unwrap()
                .is_unit()
        );
    }

    #[test]
    fn a_negative_or_non_numeric_horizon_is_an_error() {
        let engine = engine();
        let snapshot = customer(Some(CDNOW), 2, 210, 250);
        with_customer(&snapshot, || {
            for script in ["expected_orders(-1)", "expected_orders(-0.5)"] {
                let err = engine.eval::<Dynamic>(script).unwrap_err();
                assert!(err.to_string().contains(ARGUMENT_ERROR), "{script}: {err}");
            }
            let err = engine
                .eval::<Dynamic>("expected_orders(\"30\")")
                .unwrap_err();
            assert!(
                matches!(*err, EvalAltResult::ErrorFunctionNotFound(..)),
                "{err}"
            );
        });
    }
}
