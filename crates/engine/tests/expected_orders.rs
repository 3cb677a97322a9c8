//! `expected_orders(days)` in rules against `lifetimes`' BG/NBD on the CDNOW sample: every tenth
//! customer of the paper's 39-week calibration, at horizons of 1 day to a year, evaluated as
//! scores of a rule set on lifetimes' own fitted parameters, agree to 1e-6 relative. The
//! reference values (`tests/data/expected_orders_cdnow.csv`) were computed once by
//! `tests/reference/expected_orders_cdnow.py` (how to rerun it is in the script).

use std::path::Path;

use tiercare_engine::{Feature, RuleFile, Snapshot, load_rules, render_all};
use tiercare_growth::BgNbd;

const HORIZONS: [&str; 6] = ["1", "7.0", "30", "90", "180", "365"];

#[test]
fn expected_orders_agrees_with_lifetimes_on_cdnow_at_every_horizon() {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/expected_orders_cdnow.csv"),
    )
    .unwrap();
    let mut lines = text.lines();
    let params: Vec<f64> = lines
        .next()
        .unwrap()
        .trim_start_matches("# ")
        .split(' ')
        .map(|pair| pair.split_once('=').unwrap().1.parse().unwrap())
        .collect();
    let model = BgNbd {
        r: params[0],
        alpha: params[1],
        a: params[2],
        b: params[3],
    };
    assert_eq!(
        lines.next().unwrap(),
        "id,frequency,recency,T,e1,e7,e30,e90,e180,e365"
    );
    let mut yaml =
        String::from("tiering:\n  window: all\n  tiers:\n    - id: A\n      when: true\nscores:\n");
    for (k, days) in HORIZONS.iter().enumerate() {
        yaml.push_str(&format!("  h{k}: expected_orders({days}) ?? -1.0\n"));
    }
    let rules = match load_rules(&[RuleFile::new("rules/horizons.yaml", &yaml)]) {
        Ok(loaded) => loaded.rules,
        Err(diagnostics) => panic!("{}", render_all(&diagnostics, false)),
    };
    // Calling the function reads the model's inputs, so an assessment computes them.
    for feature in [
        Feature::RepeatPurchaseDays,
        Feature::RepeatRecencyDays,
        Feature::PurchaseAgeDays,
    ] {
        assert!(rules.uses(feature), "{feature}");
    }
    let mut evaluator = rules.evaluator();
    let (mut customers, mut worst) = (0, 0.0_f64);
    for line in lines {
        let cols: Vec<f64> = line.split(',').map(|c| c.parse().unwrap()).collect();
        let mut snapshot = Snapshot::new();
        snapshot.set_int(Feature::RepeatPurchaseDays, cols[1] as i64);
        snapshot.set_int(Feature::RepeatRecencyDays, cols[2] as i64);
        snapshot.set_int(Feature::PurchaseAgeDays, cols[3] as i64);
        snapshot.set_growth_model(Some(model));
        let decision = evaluator.evaluate(&snapshot);
        assert!(decision.errors.is_empty(), "{:?}", decision.errors);
        for (k, theirs) in cols[4..].iter().enumerate() {
            let ours = decision.scores[k].1;
            let relative = (ours - theirs).abs() / theirs.abs();
            worst = worst.max(relative);
            assert!(
                relative <= 1e-6,
                "customer {}: expected_orders({}) ours {ours}, lifetimes {theirs}",
                cols[0],
                HORIZONS[k]
            );
        }
        customers += 1;
    }
    assert_eq!(customers, 236);
    eprintln!("largest relative difference: {worst:e}");
}
