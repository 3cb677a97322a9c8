//! Recording assessments: current tiers, their history, segments, and the
//! all-or-nothing transaction.

use serde_json::{Map, json};
use tiercare_store::{
    AssessmentHeader, AssessmentOutcome, AssessmentRow, CurrentSegment, CurrentTier, SegmentChange,
    Store, StoreError, TierChange, TierDecision,
};

use crate::fixture::{NOW, dump, new_store, seed_customers};

const DAY: i64 = 86_400;
const T1: i64 = NOW + DAY;
const T2: i64 = NOW + 2 * DAY;
const T3: i64 = NOW + 3 * DAY;

fn rowid(store: &Store, id: &str) -> i64 {
    store.customer(id).unwrap().unwrap().id
}

fn header(at: i64, version: &str) -> AssessmentHeader {
    AssessmentHeader {
        at,
        ruleset_version: version.into(),
        started_at: at + 5,
        finished_at: at + 65,
        rule_errors: 0,
    }
}

fn decision(store: &Store, id: &str, tier: &str, reason: &str) -> TierDecision {
    let mut scores = Map::new();
    scores.insert("potential".into(), json!(tier.len()));
    TierDecision {
        customer_rowid: rowid(store, id),
        tier: tier.into(),
        reason: reason.into(),
        reasons: json!([{ "tier": tier, "rule": reason }]),
        scores,
        ..TierDecision::default()
    }
}

fn segments(decision: TierDecision, segments: &[(&str, Option<&str>)]) -> TierDecision {
    TierDecision {
        segments: segments
            .iter()
            .map(|(set, segment)| (set.to_string(), segment.map(String::from)))
            .collect(),
        ..decision
    }
}

#[test]
fn history_is_written_only_on_change_and_since_only_moves_then() {
    let (_dir, _path, mut store) = new_store();
    seed_customers(&mut store, &["ann", "bob", "cy"]);
    assert_eq!(store.last_assessment().unwrap(), None);
    assert!(store.tier_counts().unwrap().is_empty());

    let first = [
        decision(&store, "ann", "A", "top 80% of revenue"),
        decision(&store, "bob", "B", "potential"),
    ];
    let outcome = store.record_assessment(&header(T1, "v1"), &first).unwrap();
    assert_eq!(
        outcome,
        AssessmentOutcome {
            assessment_id: 1,
            customers: 2,
            changed: 2
        }
    );

    let second = [
        decision(&store, "ann", "A", "still top"),
        TierDecision {
            pending_tier: Some("C".into()),
            pending_count: 1,
            pending_since: Some(T2),
            ..decision(&store, "bob", "B", "held by hysteresis")
        },
    ];
    let outcome = store.record_assessment(&header(T2, "v1"), &second).unwrap();
    assert_eq!(outcome.changed, 0);
    // The held downgrade keeps when it was first asked for, and the next assessment's
    // features carry it.
    let held = store.current_tier("bob").unwrap().unwrap();
    assert_eq!(
        (
            held.pending_tier.as_deref(),
            held.pending_count,
            held.pending_since
        ),
        (Some("C"), 1, Some(T2))
    );
    let features = store
        .customer_features(T2 + 1, tiercare_store::Window::All, "bob")
        .unwrap()
        .unwrap();
    assert_eq!(
        (features.pending_downgrade, features.pending_since),
        (1, Some(T2))
    );

    let third = [
        TierDecision {
            pinned: true,
            ..decision(&store, "ann", "A", "pinned")
        },
        decision(&store, "bob", "C", "fell below 95%"),
    ];
    let outcome = store.record_assessment(&header(T3, "v2"), &third).unwrap();
    assert_eq!(
        outcome,
        AssessmentOutcome {
            assessment_id: 3,
            customers: 2,
            changed: 1
        }
    );

    // ann: one history row, her since is the first assessment's `at`, the
    // rest is the latest assessment's.
    assert_eq!(
        store.tier_history("ann").unwrap(),
        [TierChange {
            at: T1,
            assessment_id: 1,
            from_tier: None,
            to_tier: "A".into(),
            reason: "top 80% of revenue".into(),
        }]
    );
    assert_eq!(
        store.current_tier("ann").unwrap(),
        Some(CurrentTier {
            tier: "A".into(),
            since: T1,
            assessment_id: 3,
            pending_tier: None,
            pending_count: 0,
            pending_since: None,
            pinned: true,
            scores: third[0].scores.clone(),
            reasons: json!([{ "tier": "A", "rule": "pinned" }]),
        })
    );

    // bob: newest first; the pending state of the second assessment is
    // replaced by the third's.
    assert_eq!(
        store.tier_history("bob").unwrap(),
        [
            TierChange {
                at: T3,
                assessment_id: 3,
                from_tier: Some("B".into()),
                to_tier: "C".into(),
                reason: "fell below 95%".into(),
            },
            TierChange {
                at: T1,
                assessment_id: 1,
                from_tier: None,
                to_tier: "B".into(),
                reason: "potential".into(),
            },
        ]
    );
    let bob = store.current_tier("bob").unwrap().unwrap();
    assert_eq!((bob.tier.as_str(), bob.since), ("C", T3));
    assert_eq!(
        (bob.pending_tier, bob.pending_count, bob.pending_since),
        (None, 0, None)
    );

    // cy was never assessed.
    assert_eq!(store.current_tier("cy").unwrap(), None);
    assert!(store.tier_history("cy").unwrap().is_empty());

    assert_eq!(
        store.tier_counts().unwrap(),
        [("A".to_string(), 1), ("C".to_string(), 1)]
    );
    assert_eq!(
        store.last_assessment().unwrap(),
        Some(AssessmentRow {
            id: 3,
            at: T3,
            ruleset_version: "v2".into(),
            started_at: T3 + 5,
            finished_at: T3 + 65,
            customers: 2,
            changed: 1,
            rule_errors: 0,
        })
    );
}

#[test]
fn the_pending_state_is_stored_while_the_tier_is_kept() {
    let (_dir, _path, mut store) = new_store();
    seed_customers(&mut store, &["bob"]);
    let first = [decision(&store, "bob", "B", "potential")];
    store.record_assessment(&header(T1, "v1"), &first).unwrap();
    let second = [TierDecision {
        pending_tier: Some("C".into()),
        pending_count: 2,
        ..decision(&store, "bob", "B", "held")
    }];
    store.record_assessment(&header(T2, "v1"), &second).unwrap();
    let bob = store.current_tier("bob").unwrap().unwrap();
    assert_eq!(
        (bob.tier.as_str(), bob.since, bob.assessment_id),
        ("B", T1, 2)
    );
    assert_eq!(
        (bob.pending_tier.as_deref(), bob.pending_count),
        (Some("C"), 2)
    );
}

#[test]
fn an_identical_decision_leaves_the_row_as_it_was() {
    let (_dir, _path, mut store) = new_store();
    seed_customers(&mut store, &["bob"]);
    let same = [decision(&store, "bob", "B", "potential")];
    store.record_assessment(&header(T1, "v1"), &same).unwrap();
    let outcome = store.record_assessment(&header(T2, "v1"), &same).unwrap();
    assert_eq!(outcome.changed, 0);
    let bob = store.current_tier("bob").unwrap().unwrap();
    assert_eq!(
        (bob.since, bob.assessment_id),
        (T1, 1),
        "nothing changed, so the second assessment did not rewrite the row"
    );
    assert_eq!(store.tier_history("bob").unwrap().len(), 1);
}

#[test]
fn segments_record_entering_moving_and_leaving() {
    let (_dir, _path, mut store) = new_store();
    seed_customers(&mut store, &["ann"]);
    let ann = |store: &Store, list: &[(&str, Option<&str>)]| {
        segments(decision(store, "ann", "A", "top"), list)
    };

    let first = [ann(
        &store,
        &[("rfm", Some("champions")), ("life", Some("new"))],
    )];
    store.record_assessment(&header(T1, "v1"), &first).unwrap();
    let second = [ann(
        &store,
        &[("rfm", Some("champions")), ("life", Some("regular"))],
    )];
    store.record_assessment(&header(T2, "v1"), &second).unwrap();
    // rfm: left every segment; life: not decided about, kept.
    let third = [ann(&store, &[("rfm", None)])];
    store.record_assessment(&header(T3, "v1"), &third).unwrap();

    assert_eq!(
        store.segments_of("ann").unwrap(),
        [CurrentSegment {
            segment_set: "life".into(),
            segment: "regular".into(),
            since: T2,
            assessment_id: 2,
        }]
    );
    let change =
        |at, assessment_id, set: &str, from: Option<&str>, to: Option<&str>| SegmentChange {
            at,
            assessment_id,
            segment_set: set.into(),
            from_segment: from.map(String::from),
            to_segment: to.map(String::from),
        };
    let mut history = store.segment_history("ann").unwrap();
    // Changes of one assessment come in reverse order of writing; compare
    // them as sets within an assessment.
    history.sort_by(|a, b| {
        b.at.cmp(&a.at)
            .then_with(|| a.segment_set.cmp(&b.segment_set))
    });
    assert_eq!(
        history,
        [
            change(T3, 3, "rfm", Some("champions"), None),
            change(T2, 2, "life", Some("new"), Some("regular")),
            change(T1, 1, "life", None, Some("new")),
            change(T1, 1, "rfm", None, Some("champions")),
        ]
    );

    // Coming back into the set after leaving it.
    let fourth = [ann(&store, &[("rfm", Some("loyal"))])];
    store
        .record_assessment(&header(T3 + DAY, "v1"), &fourth)
        .unwrap();
    assert_eq!(
        store.segment_history("ann").unwrap()[0],
        change(T3 + DAY, 4, "rfm", None, Some("loyal"))
    );
    assert_eq!(store.segments_of("ann").unwrap().len(), 2);
}

#[test]
fn a_decision_for_a_missing_customer_leaves_nothing_written() {
    let (_dir, path, mut store) = new_store();
    seed_customers(&mut store, &["ann", "bob"]);
    let first = [decision(&store, "ann", "B", "first")];
    store.record_assessment(&header(T1, "v1"), &first).unwrap();
    let before = dump(&path);

    // ann's change and segment come before the failure, bob's after it.
    let decisions = [
        segments(decision(&store, "ann", "A", "up"), &[("rfm", Some("x"))]),
        TierDecision {
            customer_rowid: 9999,
            ..decision(&store, "bob", "C", "ghost")
        },
        decision(&store, "bob", "C", "new"),
    ];
    let err = store
        .record_assessment(&header(T2, "v1"), &decisions)
        .unwrap_err();
    assert!(
        matches!(err, StoreError::CustomerGone { rowid: 9999 }),
        "{err:?}"
    );
    assert!(err.to_string().contains("run the assessment again"));
    assert_eq!(dump(&path), before);

    // Any other failure midway (here a tier the schema refuses) too.
    let decisions = [
        decision(&store, "ann", "A", "up"),
        decision(&store, "bob", "", "empty"),
    ];
    let err = store
        .record_assessment(&header(T2, "v1"), &decisions)
        .unwrap_err();
    assert!(matches!(err, StoreError::Sqlite(_)), "{err:?}");
    assert_eq!(dump(&path), before);

    // The same assessment without the bad decision goes through.
    let outcome = store
        .record_assessment(&header(T2, "v1"), &decisions[..1])
        .unwrap();
    assert_eq!(outcome.assessment_id, 2);
}

#[test]
fn readers_refuse_an_unknown_customer() {
    let (_dir, _path, store) = new_store();
    let err = store.tier_history("nobody").unwrap_err();
    assert!(
        matches!(&err, StoreError::UnknownCustomer { id } if id == "nobody"),
        "{err:?}"
    );
    assert!(matches!(
        store.current_tier("nobody"),
        Err(StoreError::UnknownCustomer { .. })
    ));
    assert!(matches!(
        store.segments_of("nobody"),
        Err(StoreError::UnknownCustomer { .. })
    ));
    assert!(matches!(
        store.segment_history("nobody"),
        Err(StoreError::UnknownCustomer { .. })
    ));
}

#[test]
fn decisions_in_any_order_are_recorded_the_same() {
    let (_dir, _path, mut store) = new_store();
    seed_customers(&mut store, &["ann", "bob"]);
    // bob (rowid 2) before ann (rowid 1), and ann twice: the empty-table
    // fast path must not be fooled into a second first assignment.
    let decisions = [
        segments(decision(&store, "bob", "B", "b"), &[("rfm", Some("x"))]),
        segments(decision(&store, "ann", "A", "a"), &[("rfm", Some("y"))]),
        segments(
            decision(&store, "ann", "A", "a again"),
            &[("rfm", Some("y"))],
        ),
    ];
    let outcome = store
        .record_assessment(&header(T1, "v1"), &decisions)
        .unwrap();
    assert_eq!((outcome.customers, outcome.changed), (3, 2));
    assert_eq!(store.tier_history("ann").unwrap().len(), 1);
    assert_eq!(store.tier_history("bob").unwrap().len(), 1);
    assert_eq!(store.segment_history("ann").unwrap().len(), 1);
    assert_eq!(
        store.current_tier("ann").unwrap().unwrap().reasons,
        json!([{ "tier": "A", "rule": "a again" }])
    );
}

#[test]
fn a_session_streams_decisions_while_features_are_read_elsewhere() {
    let (_dir, path, mut store) = new_store();
    seed_customers(&mut store, &["ann", "bob"]);
    let first = [decision(&store, "ann", "B", "first")];
    store.record_assessment(&header(T1, "v1"), &first).unwrap();

    // Features read through a second connection keep seeing the tiers as
    // they were before the assessment being written.
    let reader = Store::open(&path).unwrap();
    let mut session = store.begin_assessment(T2, "v2", T2 + 1).unwrap();
    assert_eq!(session.assessment_id(), 2);
    let mut seen = Vec::new();
    reader
        .for_each_features(T2, tiercare_store::Window::All, &mut |features| {
            seen.push((features.customer_id.clone(), features.previous_tier.clone()));
            let tier = if features.customer_id == "ann" {
                "A"
            } else {
                "C"
            };
            let changed = session
                .record(&TierDecision {
                    customer_rowid: features.customer_rowid,
                    tier: tier.into(),
                    reason: "streamed".into(),
                    ..TierDecision::default()
                })
                .unwrap();
            assert!(changed);
        })
        .unwrap();
    assert_eq!(
        seen,
        [
            ("ann".to_string(), "B".to_string()),
            ("bob".into(), "".into())
        ]
    );
    let outcome = session.finish(T2 + 9, 3).unwrap();
    assert_eq!(
        outcome,
        AssessmentOutcome {
            assessment_id: 2,
            customers: 2,
            changed: 2
        }
    );
    let row = store.last_assessment().unwrap().unwrap();
    assert_eq!(
        (row.at, row.started_at, row.finished_at, row.rule_errors),
        (T2, T2 + 1, T2 + 9, 3)
    );
    assert_eq!(
        reader.tier_counts().unwrap(),
        [("A".to_string(), 1), ("C".to_string(), 1)]
    );
}

#[test]
fn a_session_is_spoiled_by_an_error_and_a_dropped_one_writes_nothing() {
    let (_dir, path, mut store) = new_store();
    seed_customers(&mut store, &["ann"]);
    let before = dump(&path);
    let ann = decision(&store, "ann", "A", "a");

    let session = store.begin_assessment(T1, "v1", T1);
    let mut session = session.unwrap();
    session.record(&ann).unwrap();
    drop(session);
    assert_eq!(dump(&path), before);

    let mut session = store.begin_assessment(T1, "v1", T1).unwrap();
    let ghost = TierDecision {
        customer_rowid: 77,
        ..ann.clone()
    };
    assert!(matches!(
        session.record(&ghost),
        Err(StoreError::CustomerGone { rowid: 77 })
    ));
    assert!(matches!(
        session.record(&ann),
        Err(StoreError::AssessmentAborted { .. })
    ));
    let err = session.finish(T1, 0).unwrap_err();
    assert!(
        matches!(err, StoreError::AssessmentAborted { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("nothing was written"));
    assert_eq!(dump(&path), before);
}

/// A decision for the `i`th of many customers, with two segment sets.
fn many(store: &Store, id: &str, tier: &str, s1: &str, s2: Option<&str>) -> TierDecision {
    segments(
        decision(store, id, tier, &format!("{tier} for {id}")),
        &[("s1", Some(s1)), ("s2", s2)],
    )
}

#[test]
fn assessments_larger_than_a_write_batch_record_every_row_and_change() {
    // Rows are written many to a statement while decisions arrive in customer order: more
    // customers than several statements hold, with changes, entries and leaves of segment
    // sets, must come out exactly as one row at a time would.
    let (_dir, _path, mut store) = new_store();
    let ids: Vec<String> = (0..700).map(|i| format!("c{i:04}")).collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    seed_customers(&mut store, &refs);
    let tier = |i: usize, round: usize| {
        ["A", "B", "C"][(i + usize::from(round == 2 && i.is_multiple_of(7))) % 3]
    };
    let s1 = |i: usize, round: usize| {
        if round == 2 && i.is_multiple_of(4) {
            "y"
        } else {
            ["x", "z"][i % 2]
        }
    };
    let s2 = |i: usize, round: usize| (round == 1 && i.is_multiple_of(5)).then_some("in");

    for round in [1, 2] {
        let decisions: Vec<TierDecision> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| many(&store, id, tier(i, round), s1(i, round), s2(i, round)))
            .collect();
        let outcome = store
            .record_assessment(&header(if round == 1 { T1 } else { T2 }, "v1"), &decisions)
            .unwrap();
        let changed = if round == 1 {
            700
        } else {
            (0..700).filter(|i| i % 7 == 0).count()
        };
        assert_eq!((outcome.customers, outcome.changed), (700, changed as u64));
    }

    let mut counts = std::collections::BTreeMap::new();
    for (i, id) in ids.iter().enumerate() {
        *counts.entry(tier(i, 2).to_owned()).or_insert(0_u64) += 1;
        let current = store.current_tier(id).unwrap().unwrap();
        assert_eq!(current.tier, tier(i, 2), "{id}");
        let moved = i % 7 == 0;
        assert_eq!(current.since, if moved { T2 } else { T1 }, "{id}");
        assert_eq!(
            current.reasons,
            json!([{ "tier": tier(i, 2), "rule": format!("{} for {id}", tier(i, 2)) }])
        );
        let history = store.tier_history(id).unwrap();
        assert_eq!(history.len(), 1 + usize::from(moved), "{id}");
        assert_eq!(history.last().unwrap().from_tier, None);
        if moved {
            assert_eq!(history[0].from_tier.as_deref(), Some(tier(i, 1)));
            assert_eq!(history[0].to_tier, tier(i, 2));
        }

        let segments: Vec<(String, String, i64)> = store
            .segments_of(id)
            .unwrap()
            .into_iter()
            .map(|s| (s.segment_set, s.segment, s.since))
            .collect();
        let s1_since = if s1(i, 1) == s1(i, 2) { T1 } else { T2 };
        assert_eq!(
            segments,
            [("s1".to_owned(), s1(i, 2).to_owned(), s1_since)],
            "{id}"
        );
        let changes: Vec<(i64, String, Option<String>, Option<String>)> = store
            .segment_history(id)
            .unwrap()
            .into_iter()
            .map(|c| (c.at, c.segment_set, c.from_segment, c.to_segment))
            .collect();
        let mut expected = Vec::new();
        if s1(i, 1) != s1(i, 2) {
            expected.push((
                T2,
                "s1".to_owned(),
                Some(s1(i, 1).to_owned()),
                Some("y".to_owned()),
            ));
        }
        if i % 5 == 0 {
            expected.push((T2, "s2".to_owned(), Some("in".to_owned()), None));
            expected.push((T1, "s2".to_owned(), None, Some("in".to_owned())));
        }
        expected.push((T1, "s1".to_owned(), None, Some(s1(i, 1).to_owned())));
        let mut changes_sorted = changes;
        changes_sorted.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        expected.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        assert_eq!(changes_sorted, expected, "{id}");
    }
    assert_eq!(
        store.tier_counts().unwrap(),
        counts.into_iter().collect::<Vec<_>>()
    );
}
