//! Evaluating rules: decisions and their reasons, pins and hysteresis, errors that do not stop
//! other customers, snapshot reuse, sharing a rule set between threads, explanations as JSON.

use serde_json::json;
use tiercare_engine::{
    AssessmentTimes, Decision, Feature, LoadedRules, Pin, RuleFile, RuleSet, Snapshot, Window,
    load_rules, render_all,
};

const ABC: &str = r#"
tiering:
  window: 52w
  reassess: "30 2 * * *"
  tiers:
    - id: A
      label: Key accounts
      when: revenue_share_before < 0.80
    - id: B
      when: revenue_share_before < 0.95 || potential > 70
    - id: C
      when: true
  hysteresis:
    downgrade_after: 3
scores:
  potential: (attr.potential ?? 0) * 0.6 + f_score * 8
segments:
  rfm:
    - id: champions
      when: r_score >= 4 && f_score >= 4 && m_score >= 4
    - id: sleeping
      when: r_score <= 2
"#;

fn load(text: &str) -> LoadedRules {
    match load_rules(&[RuleFile::new("rules/tiers.yaml", text)]) {
        Ok(loaded) => loaded,
        Err(diagnostics) => panic!("{}", render_all(&diagnostics, false)),
    }
}

fn customer(share: f64) -> Snapshot {
    let mut snapshot = Snapshot::new();
    snapshot.set_text(Feature::CustomerId, "C-1");
    snapshot.set_float(Feature::RevenueShareBefore, share);
    snapshot
}

fn evaluate(rules: &RuleSet, snapshot: &Snapshot) -> Decision {
    rules.evaluator().evaluate(snapshot)
}

#[test]
fn rule_set_settings_are_exposed() {
    let rules = load(ABC).rules;
    assert_eq!(rules.window(), Window::Days(364));
    assert_eq!(rules.window().seconds(), Some(364 * 86_400));
    assert_eq!(
        rules.reassess().map(ToString::to_string).as_deref(),
        Some("30 2 * * *")
    );
    assert_eq!(
        rules.downgrade_after(),
        tiercare_engine::DowngradeAfter::Count(3)
    );
    let tiers: Vec<&str> = rules.tiers().map(|tier| tier.id.as_str()).collect();
    assert_eq!(tiers, ["A", "B", "C"]);
    assert_eq!(
        rules.tiers().next().unwrap().label.as_deref(),
        Some("Key accounts")
    );
    assert_eq!(rules.tier_rank("C"), Some(2));
    assert_eq!(rules.segment_sets()[0].segments.len(), 2);
    assert_eq!(rules.scores().next().unwrap().name, "potential");
    assert_eq!(
        rules.features_used(),
        [
            Feature::RevenueShareBefore,
            Feature::RScore,
            Feature::FScore,
            Feature::MScore,
            Feature::Attr
        ]
    );
    assert!(rules.uses(Feature::Attr));
    assert!(!rules.uses(Feature::OrdersTotal));
}

#[test]
fn first_matching_tier_wins_with_a_reason() {
    let rules = load(ABC).rules;
    let decision = evaluate(&rules, &customer(0.12));
    assert_eq!(decision.tier.as_deref(), Some("A"));
    assert_eq!(decision.rule_tier.as_deref(), Some("A"));
    assert_eq!(decision.reason, "A: revenue_share_before < 0.80 (0.12)");
    assert!(!decision.pinned);
    assert!(decision.errors.is_empty());
    assert_eq!(decision.scores, [("potential".to_owned(), 0.0)]);
    assert_eq!(
        decision.segments,
        [("rfm".to_owned(), Some("sleeping".to_owned()))]
    );

    let mut snapshot = customer(0.97);
    snapshot.set_attribute("potential", &json!(100));
    snapshot.set_int(Feature::FScore, 2);
    let decision = evaluate(&rules, &snapshot);
    assert_eq!(decision.tier.as_deref(), Some("B"));
    assert_eq!(
        decision.reason,
        "B: revenue_share_before < 0.95 || potential > 70 (revenue_share_before = 0.97, potential = 76.0)"
    );
    assert_eq!(decision.score("potential"), Some(76.0));

    let decision = evaluate(&rules, &customer(0.99));
    assert_eq!(decision.reason, "C: no earlier tier matched");
}

#[test]
fn hysteresis_holds_downgrades_until_asked_often_enough() {
    let rules = load(ABC).rules;
    let mut evaluator = rules.evaluator();
    let mut snapshot = customer(0.99);
    snapshot.set_text(Feature::PreviousTier, "A");
    let mut pending = 0;
    let mut tiers = Vec::new();
    for _ in 0..4 {
        snapshot.set_int(Feature::PendingDowngrade, pending);
        let decision = evaluator.evaluate(&snapshot);
        assert_eq!(decision.rule_tier.as_deref(), Some("C"));
        tiers.push((decision.tier.clone().unwrap(), decision.reason.clone()));
        pending = i64::from(decision.pending_count);
        if decision.tier.as_deref() == Some("C") {
            snapshot.set_text(Feature::PreviousTier, "C");
        }
    }
    assert_eq!(
        tiers,
        [
            (
                "A".to_owned(),
                "kept A: downgrade to C pending (1 of 3)".to_owned()
            ),
            (
                "A".to_owned(),
                "kept A: downgrade to C pending (2 of 3)".to_owned()
            ),
            (
                "C".to_owned(),
                "C: no earlier tier matched; down from A after 3 assessments".to_owned()
            ),
            ("C".to_owned(), "C: no earlier tier matched".to_owned()),
        ]
    );

    // An upgrade applies at once and clears the counter.
    let mut snapshot = customer(0.1);
    snapshot.set_text(Feature::PreviousTier, "C");
    snapshot.set_int(Feature::PendingDowngrade, 2);
    let decision = evaluator.evaluate(&snapshot);
    assert_eq!(decision.tier.as_deref(), Some("A"));
    assert_eq!((decision.pending_tier, decision.pending_count), (None, 0));
}

/// Runs the assessments at `times` (unix seconds) for a customer the rules keep asking to move
/// from A to C, carrying the stored state from one to the next as the store does; returns the
/// stored tier after each.
fn downgrade_runs(rules: &RuleSet, times: &[i64]) -> Vec<String> {
    let mut evaluator = rules.evaluator();
    let mut snapshot = customer(0.99);
    snapshot.set_text(Feature::PreviousTier, "A");
    let (mut pending, mut since) = (0, None);
    times
        .iter()
        .map(|&at| {
            snapshot.set_int(Feature::PendingDowngrade, pending);
            snapshot.set_times(AssessmentTimes {
                at: Some(at),
                pending_since: since,
            });
            let decision = evaluator.evaluate(&snapshot);
            pending = i64::from(decision.pending_count);
            since = decision.pending_since;
            let tier = decision.tier.unwrap();
            snapshot.set_text(Feature::PreviousTier, &tier);
            tier
        })
        .collect()
}

const T0: i64 = 1_764_547_200; // 2025-12-01 00:00 UTC
const DAY: i64 = 86_400;

#[test]
fn hysteresis_counts_at_most_one_assessment_a_day() {
    let rules = load(&ABC.replace("downgrade_after: 3", "downgrade_after: 2")).rules;
    // Two runs a minute apart (issue #13, point 8): the downgrade stays held.
    assert_eq!(downgrade_runs(&rules, &[T0, T0 + 60]), ["A", "A"]);
    // Ten runs in an hour: still held; the run a day after the first applies it.
    let mut times: Vec<i64> = (0..10).map(|n| T0 + n * 360).collect();
    times.push(T0 + DAY);
    let tiers = downgrade_runs(&rules, &times);
    assert!(tiers[..10].iter().all(|tier| tier == "A"), "{tiers:?}");
    assert_eq!(tiers[10], "C");
}

#[test]
fn hysteresis_by_duration_needs_the_lower_tier_that_long() {
    let rules = load(&ABC.replace("downgrade_after: 3", "downgrade_after: 30d")).rules;
    assert_eq!(
        rules.downgrade_after(),
        tiercare_engine::DowngradeAfter::Duration(30 * DAY)
    );
    let days = [0, 0, 1, 2, 7, 14, 29, 30];
    let tiers = downgrade_runs(&rules, &days.map(|day| T0 + day * DAY));
    assert_eq!(tiers, ["A", "A", "A", "A", "A", "A", "A", "C"]);

    // The reason says since when, and an explanation shows the start.
    let mut snapshot = customer(0.99);
    snapshot.set_text(Feature::PreviousTier, "A");
    snapshot.set_int(Feature::PendingDowngrade, 3);
    snapshot.set_times(AssessmentTimes {
        at: Some(T0 + 10 * DAY),
        pending_since: Some(T0),
    });
    let decision = evaluate(&rules, &snapshot);
    assert_eq!(
        decision.reason,
        "kept A: downgrade to C pending since 2025-12-01 (30d needed)"
    );
    assert_eq!(
        (decision.pending_count, decision.pending_since),
        (4, Some(T0))
    );
    let explanation = rules.evaluator().explain(&snapshot);
    let text = explanation.render();
    assert!(
        text.contains(
            "hysteresis: previous tier A, rules say C, downgrade_after 30d, pending before 3 since 2025-12-01 00:00 UTC: downgrade from A to C held (asked for since 2025-12-01 00:00 UTC; applies after 30d)"
        ),
        "{text}"
    );
    let json = serde_json::to_value(&explanation).unwrap();
    assert_eq!(json["hysteresis"]["downgrade_after"], "30d");
    assert_eq!(json["hysteresis"]["pending_since"], T0);

    // A month with one quiet assessment in the middle: the hold starts again after it.
    let mut evaluator = rules.evaluator();
    let mut snapshot = customer(0.5);
    snapshot.set_text(Feature::PreviousTier, "A");
    snapshot.set_int(Feature::PendingDowngrade, 2);
    snapshot.set_times(AssessmentTimes {
        at: Some(T0 + 20 * DAY),
        pending_since: Some(T0),
    });
    let decision = evaluator.evaluate(&snapshot);
    assert_eq!(decision.tier.as_deref(), Some("A"));
    assert_eq!((decision.pending_count, decision.pending_since), (0, None));
}

#[test]
fn a_pin_beats_rules_and_hysteresis() {
    let rules = load(ABC).rules;
    let mut snapshot = customer(0.99);
    snapshot.set_text(Feature::PreviousTier, "B");
    snapshot.set_int(Feature::PendingDowngrade, 1);
    snapshot.set_pin(Some(Pin {
        tier: "A".into(),
        by: "alice".into(),
        reason: "strategic account".into(),
        until: Some("2026-03-01".into()),
    }));
    let decision = evaluate(&rules, &snapshot);
    assert_eq!(decision.tier.as_deref(), Some("A"));
    assert_eq!(decision.rule_tier.as_deref(), Some("C"));
    assert!(decision.pinned);
    assert_eq!(
        decision.reason,
        "pinned by alice until 2026-03-01: strategic account"
    );
    assert_eq!((decision.pending_tier, decision.pending_count), (None, 0));
}

#[test]
fn an_error_for_one_customer_does_not_stop_the_others() {
    let rules = load(
        "tiering:\n  window: all\n  tiers:\n    - id: A\n      when: orders_total / interactions_total > 1\n    - id: B\n      when: true\n",
    )
    .rules;
    let mut evaluator = rules.evaluator();
    let mut snapshot = Snapshot::new();
    let mut tiers = Vec::new();
    for (orders, interactions) in [(10, 2), (10, 0), (10, 5), (1, 0), (5, 1)] {
        snapshot.reset();
        snapshot.set_int(Feature::OrdersTotal, orders);
        snapshot.set_int(Feature::InteractionsTotal, interactions);
        let decision = evaluator.evaluate(&snapshot);
        tiers.push((decision.tier.unwrap(), decision.errors.len()));
        if interactions == 0 {
            let error = &decision.errors[0];
            assert_eq!(error.rule, "tiers[0] (A)");
            assert_eq!(error.location, "rules/tiers.yaml:5:26");
            assert!(error.message.starts_with("division by zero"), "{error}");
        }
    }
    let expected = [("A", 0), ("B", 1), ("A", 0), ("B", 1), ("A", 0)];
    assert_eq!(
        tiers,
        expected.map(|(tier, errors)| (tier.to_owned(), errors))
    );
}

#[test]
fn scripts_cannot_change_what_the_next_rule_sees() {
    let rules = load(
        "tiering:\n  window: all\n  tiers:\n    - id: A\n      when: |\n        orders_total = 100;\n        true\n    - id: B\n      when: orders_total == 1\n    - id: C\n      when: true\n",
    )
    .rules;
    let mut snapshot = Snapshot::new();
    snapshot.set_int(Feature::OrdersTotal, 1);
    let decision = evaluate(&rules, &snapshot);
    assert_eq!(decision.tier.as_deref(), Some("B"));
    assert_eq!(decision.errors.len(), 1);
    assert!(
        decision.errors[0].message.contains("constant"),
        "{}",
        decision.errors[0]
    );
}

#[test]
fn local_variables_do_not_leak_between_rules_or_customers() {
    let rules = load(
        "tiering:\n  window: all\n  tiers:\n    - id: A\n      when: |\n        let big = orders_total > 5;\n        big\n    - id: B\n      when: true\nsegments:\n  s:\n    - id: x\n      when: orders_total > 0\n",
    )
    .rules;
    let mut evaluator = rules.evaluator();
    let mut snapshot = Snapshot::new();
    for orders in [10, 1, 10, 0] {
        snapshot.set_int(Feature::OrdersTotal, orders);
        let decision = evaluator.evaluate(&snapshot);
        assert!(decision.errors.is_empty(), "{:?}", decision.errors);
        let expected = if orders > 5 { "A" } else { "B" };
        assert_eq!(decision.tier.as_deref(), Some(expected));
        assert_eq!(decision.segment("s").is_some(), orders > 0);
    }
}

#[test]
fn snapshot_reset_forgets_the_previous_customer() {
    let rules = load(ABC).rules;
    let mut evaluator = rules.evaluator();
    let mut snapshot = customer(0.97);
    snapshot.set_attribute("potential", &json!(200));
    assert_eq!(evaluator.evaluate(&snapshot).tier.as_deref(), Some("B"));
    snapshot.reset();
    snapshot.set_float(Feature::RevenueShareBefore, 0.97);
    assert_eq!(evaluator.evaluate(&snapshot).tier.as_deref(), Some("C"));
}

#[test]
fn a_rule_set_is_shared_between_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<RuleSet>();
    let rules = load(ABC).rules;
    let shares: Vec<f64> = (0..200).map(|i| f64::from(i) / 200.0).collect();
    let single: Vec<Option<String>> = {
        let mut evaluator = rules.evaluator();
        shares
            .iter()
            .map(|share| evaluator.evaluate(&customer(*share)).tier)
            .collect()
    };
    let parallel: Vec<Option<String>> = std::thread::scope(|scope| {
        let halves: Vec<_> = shares
            .chunks(100)
            .map(|chunk| {
                let rules = &rules;
                scope.spawn(move || {
                    let mut evaluator = rules.evaluator();
                    chunk
                        .iter()
                        .map(|share| evaluator.evaluate(&customer(*share)).tier)
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        halves
            .into_iter()
            .flat_map(|half| half.join().expect("no panic"))
            .collect()
    });
    assert_eq!(single, parallel);
    assert_eq!(
        single.iter().filter(|t| t.as_deref() == Some("A")).count(),
        160
    );
}

#[test]
fn explanations_serialize_every_step() {
    let rules = load(ABC).rules;
    let mut snapshot = customer(0.86);
    snapshot.set_int(Feature::RScore, 5);
    snapshot.set_text(Feature::PreviousTier, "A");
    let explanation = rules.evaluator().explain(&snapshot);
    assert_eq!(explanation.decision.tier.as_deref(), Some("A"));
    assert_eq!(explanation.tiers.len(), 3);
    assert!(explanation.tiers[1].chosen);
    let value = serde_json::to_value(&explanation).expect("serializes");
    assert_eq!(value["customer_id"], "C-1");
    assert_eq!(value["rules_version"], rules.version());
    assert_eq!(value["tiers"][0]["result"], "false");
    assert_eq!(
        value["tiers"][0]["variables"][0]["name"],
        "revenue_share_before"
    );
    assert_eq!(value["tiers"][0]["variables"][0]["value"], 0.86);
    assert_eq!(value["tiers"][1]["result"], "true");
    assert_eq!(value["tiers"][2]["result"], "true");
    assert_eq!(value["tiers"][2]["chosen"], false);
    assert_eq!(value["segments"][0]["matched"], serde_json::Value::Null);
    assert_eq!(value["scores"][0]["value"], 0.0);
    assert_eq!(value["hysteresis"]["previous_tier"], "A");
    assert_eq!(
        value["hysteresis"]["verdict"],
        "downgrade from A to B held (1 of 3 assessments; at most one counts per day)"
    );
    assert_eq!(value["decision"]["pending_tier"], "B");
    assert_eq!(value["decision"]["pending_count"], 1);
    let text = explanation.render();
    assert!(
        text.starts_with(
            "customer C-1: tier A\n  reason: kept A: downgrade to B pending (1 of 3)\n"
        ),
        "{text}"
    );
}

#[test]
fn a_failed_score_fails_what_reads_it() {
    let rules = load(
        "tiering:\n  window: all\n  tiers:\n    - id: A\n      when: share > 0.5\n    - id: B\n      when: true\nscores:\n  share: ratio(orders_window, orders_total) + 1 / orders_total\n",
    )
    .rules;
    let decision = evaluate(&rules, &Snapshot::new());
    assert_eq!(decision.tier.as_deref(), Some("B"));
    assert!(decision.score("share").unwrap().is_nan());
    let rules_failed: Vec<&str> = decision.errors.iter().map(|e| e.rule.as_str()).collect();
    assert_eq!(rules_failed, ["scores.share", "tiers[0] (A)"]);
    assert_eq!(
        decision.errors[1].message,
        "uses score `share`, which failed"
    );

    let mut snapshot = Snapshot::new();
    snapshot.set_int(Feature::OrdersTotal, 2);
    snapshot.set_int(Feature::OrdersWindow, 1);
    let decision = evaluate(&rules, &snapshot);
    assert_eq!(decision.score("share"), Some(0.5));
    assert_eq!(decision.tier.as_deref(), Some("B"));
}

#[test]
fn files_that_are_not_rules_and_empty_rule_sets_are_refused() {
    let err = load_rules(&[]).unwrap_err();
    assert_eq!(err[0].message, "no rule files");
    let err = load_rules(&[
        RuleFile::new("rules/tiers.yaml", ABC),
        RuleFile::new("rules/notes.txt", "hello"),
    ])
    .unwrap_err();
    assert_eq!(
        render_all(&err, false),
        "rules/notes.txt:1:1: error: not a rule file\n  hint: rule files end in `.yaml` (rules) or `.rhai` (function libraries)\n"
    );
}

#[test]
fn warnings_come_back_with_the_rules() {
    let loaded =
        load("tiering:\n  window: all\n  tiers:\n    - id: A\n      when: orders_total > 0\n");
    assert_eq!(loaded.warnings.len(), 1);
    assert!(
        loaded.warnings[0]
            .message
            .starts_with("some customers may get no tier")
    );
    let decision = evaluate(&loaded.rules, &Snapshot::new());
    assert_eq!(
        (decision.tier, decision.reason.as_str()),
        (None, "no tier matched")
    );
}
