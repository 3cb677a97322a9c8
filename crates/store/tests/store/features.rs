//! Customer features on a small population whose every value is worked out
//! by hand below: window boundaries, Pareto ranks and shares with ties, the
//! customer who crosses 80%, quintile scores with ties, customers without
//! orders, complaints and feedback relative to `at`, and the stored tier.
//!
//! `at` is noon on 2024-03-11; the window is 30 days. Customers are imported
//! in the order cat, bob, ann, dan, eve, fay, gus, ivy (ten days before
//! `at`) and hal (two days after `at`), so rowid order differs from
//! external-id order and ties in revenue are broken by the external id.
//!
//! | customer | orders (amount @ days before at)       | window revenue | last order |
//! |----------|----------------------------------------|----------------|------------|
//! | ann      | 450 @ 1, 100 @ 40, 999 @ -1 (after at) | 450            | 1 day      |
//! | bob      | 200 @ 0 (= at), 200 @ 30 (= window start) | 200         | 0 days     |
//! | cat      | 120 @ 5, 80 @ 6                        | 200            | 5 days     |
//! | dan      | 60 @ 5 days + 1 hour, 40 @ 20          | 100            | 5 days     |
//! | eve      | 50 @ 29                                | 50             | 29 days    |
//! | fay      | 300 @ 100                              | 0              | 100 days   |
//! | gus      | 70 @ -5 (after at)                     | 0              | never      |
//! | hal, ivy | none                                   | 0              | never      |
//!
//! Total window revenue 1000. Pareto order: ann, bob, cat (tie with bob on
//! 200, "bob" < "cat"), dan, eve, then the zeros fay, gus, hal, ivy.
//! Cumulative shares: ann 0 → .45, bob .45 → .65, cat .65 → .85 (crosses
//! 80%), dan .85 → .95, eve .95 → 1.
//!
//! Scored population (an order <= at): ann, bob, cat, dan, eve, fay; N = 6,
//! score = 1 + floor(5 × below / 6), so below 0..5 gives 1, 1, 2, 3, 4, 5.
//! - R (days 1, 0, 5, 5, 29, 100; worse = more days): below 4, 5, 2, 2, 1, 0
//!   → 4, 5, 2, 2, 1, 1.
//! - F (orders in window 1, 1, 2, 2, 1, 0): below 1, 1, 4, 4, 1, 0
//!   → 1, 1, 4, 4, 1, 1.
//! - M (450, 200, 200, 100, 50, 0): below 5, 3, 3, 2, 1, 0 → 5, 3, 3, 2, 1, 1.

use std::collections::BTreeMap;
use std::fmt::Debug;

use serde_json::{Map, Value, json};
use tiercare_store::{
    AssessmentHeader, ComplaintRecord, CustomerFeatures, CustomerRecord, FeatureSummary,
    FeedbackRecord, ImportKind, InteractionRecord, NEVER_DAYS, Store, TierDecision, Window,
};

use crate::fixture::{import_at, new_store, options, order};

const DAY: i64 = 86_400;
/// 2024-03-11T12:00:00Z.
const AT: i64 = 1_710_158_400;
/// When the first customers were imported.
const CREATED: i64 = AT - 10 * DAY;
/// When hal was imported: after `at`.
const HAL_CREATED: i64 = AT + 2 * DAY;
const WINDOW: Window = Window::Seconds(30 * DAY);

/// The customers in the order of the expected-value arrays.
const ORDER: [&str; 9] = [
    "ann", "bob", "cat", "dan", "eve", "fay", "gus", "hal", "ivy",
];

fn customer(id: &str) -> CustomerRecord {
    CustomerRecord {
        external_id: id.into(),
        ..CustomerRecord::default()
    }
}

fn interaction(id: &str, customer: &str, kind: &str, at: i64) -> InteractionRecord {
    InteractionRecord {
        external_id: Some(id.into()),
        customer_external_id: customer.into(),
        kind: kind.into(),
        occurred_at: at,
        by: None,
        note: None,
    }
}

fn complaint(
    id: &str,
    customer: &str,
    opened_at: i64,
    resolved_at: Option<i64>,
    severity: u8,
) -> ComplaintRecord {
    ComplaintRecord {
        external_id: Some(id.into()),
        customer_external_id: customer.into(),
        opened_at,
        resolved_at,
        severity,
        subject: None,
    }
}

fn feedback(id: &str, customer: &str, given_at: i64, score: f64) -> FeedbackRecord {
    FeedbackRecord {
        external_id: Some(id.into()),
        customer_external_id: customer.into(),
        given_at,
        score,
        comment: None,
    }
}

/// The population of the module documentation.
fn population(store: &mut Store) {
    let mut attributes = Map::new();
    attributes.insert("potential".into(), json!(80));
    attributes.insert("segment".into(), json!("retail"));
    let ann = CustomerRecord {
        region: Some("north".into()),
        owner: Some("M1".into()),
        timezone: Some("Europe/Berlin".into()),
        email: Some("ann@example.com".into()),
        consent_email: Some(true),
        birthday: chrono::NaiveDate::from_ymd_opt(1990, 5, 17),
        attributes,
        ..customer("ann")
    };
    let bob = CustomerRecord {
        email: Some("  ".into()),
        ..customer("bob")
    };
    let cat = CustomerRecord {
        email: Some("cat@example.com".into()),
        consent_sms: Some(true),
        ..customer("cat")
    };
    let dan = CustomerRecord {
        consent_phone: Some(true),
        ..customer("dan")
    };
    let first = [
        cat,
        bob,
        ann,
        dan,
        customer("eve"),
        customer("fay"),
        customer("gus"),
        customer("ivy"),
    ];
    import_at(
        store,
        ImportKind::Customers,
        options("customers.csv"),
        CREATED,
        |session| {
            for (line, record) in (2..).zip(&first) {
                session.customer(line, record).unwrap();
            }
        },
    );
    import_at(
        store,
        ImportKind::Customers,
        options("late.csv"),
        HAL_CREATED,
        |session| {
            session.customer(2, &customer("hal")).unwrap();
        },
    );

    let orders = [
        order("o1", "ann", AT - DAY, 450.0),
        order("o2", "ann", AT - 40 * DAY, 100.0),
        order("o3", "ann", AT + DAY, 999.0),
        order("o4", "bob", AT, 200.0),
        order("o5", "bob", AT - 30 * DAY, 200.0),
        order("o6", "cat", AT - 5 * DAY, 120.0),
        order("o7", "cat", AT - 6 * DAY, 80.0),
        order("o8", "dan", AT - 5 * DAY - 3600, 60.0),
        order("o9", "dan", AT - 20 * DAY, 40.0),
        order("o10", "eve", AT - 29 * DAY, 50.0),
        order("o11", "fay", AT - 100 * DAY, 300.0),
        order("o12", "gus", AT + 5 * DAY, 70.0),
    ];
    import_at(
        store,
        ImportKind::Orders,
        options("orders.csv"),
        HAL_CREATED,
        |session| {
            for (line, record) in (2..).zip(&orders) {
                session.order(line, record).unwrap();
            }
        },
    );

    let interactions = [
        interaction("i1", "ann", "call", AT - 2 * DAY),
        interaction("i2", "ann", "visit", AT - 31 * DAY),
        interaction("i3", "bob", "call", AT - 30 * DAY),
        interaction("i4", "ivy", "email", AT - 200 * DAY),
        interaction("i5", "ivy", "email", AT + DAY),
    ];
    import_at(
        store,
        ImportKind::Interactions,
        options("interactions.csv"),
        HAL_CREATED,
        |session| {
            for (line, record) in (2..).zip(&interactions) {
                session.interaction(line, record).unwrap();
            }
        },
    );

    let complaints = [
        complaint("k1", "cat", AT - 3 * DAY, None, 3),
        complaint("k2", "cat", AT - 50 * DAY, Some(AT - 45 * DAY), 4),
        complaint("k3", "dan", AT - 2 * DAY, Some(AT + DAY), 2),
        complaint("k4", "eve", AT - 10 * DAY, Some(AT), 1),
        complaint("k5", "fay", AT + DAY, None, 4),
    ];
    import_at(
        store,
        ImportKind::Complaints,
        options("complaints.csv"),
        HAL_CREATED,
        |session| {
            for (line, record) in (2..).zip(&complaints) {
                session.complaint(line, record).unwrap();
            }
        },
    );

    let scores = [
        feedback("f1", "ann", AT - 3 * DAY, 4.0),
        feedback("f2", "ann", AT - DAY, 5.0),
        feedback("f3", "ann", AT - 60 * DAY, 2.0),
        feedback("f4", "ann", AT + DAY, 1.0),
        feedback("f5", "bob", AT - 60 * DAY, 3.0),
        // Two at the same second: the one imported last is the latest.
        feedback("f6", "cat", AT - 4 * DAY, 2.0),
        feedback("f7", "cat", AT - 4 * DAY, 4.0),
    ];
    import_at(
        store,
        ImportKind::Feedback,
        options("feedback.csv"),
        HAL_CREATED,
        |session| {
            for (line, record) in (2..).zip(&scores) {
                session.feedback(line, record).unwrap();
            }
        },
    );
}

fn rowid(store: &Store, id: &str) -> i64 {
    store.customer(id).unwrap().unwrap().id
}

fn decision(store: &Store, id: &str, tier: &str) -> TierDecision {
    TierDecision {
        customer_rowid: rowid(store, id),
        tier: tier.into(),
        reason: format!("rule {tier}"),
        ..TierDecision::default()
    }
}

fn header(at: i64) -> AssessmentHeader {
    AssessmentHeader {
        at,
        ruleset_version: "v1".into(),
        started_at: at,
        finished_at: at,
        rule_errors: 0,
    }
}

/// Two earlier assessments: ten days before `at` ann A and bob B; four days
/// before ann A again (her `since` stays), bob B with C pending once, cat B.
fn assess_earlier(store: &mut Store) {
    let first = [decision(store, "ann", "A"), decision(store, "bob", "B")];
    store
        .record_assessment(&header(AT - 10 * DAY), &first)
        .unwrap();
    let second = [
        decision(store, "ann", "A"),
        TierDecision {
            pending_tier: Some("C".into()),
            pending_count: 1,
            ..decision(store, "bob", "B")
        },
        decision(store, "cat", "B"),
    ];
    store
        .record_assessment(&header(AT - 4 * DAY), &second)
        .unwrap();
}

/// Every customer's features, by external id, and the visiting order.
fn features_at(
    store: &Store,
    window: Window,
) -> (
    BTreeMap<String, CustomerFeatures>,
    Vec<String>,
    FeatureSummary,
) {
    let mut all = BTreeMap::new();
    let mut visited = Vec::new();
    let summary = store
        .for_each_features(AT, window, &mut |features| {
            visited.push(features.customer_id.clone());
            all.insert(features.customer_id.clone(), features.clone());
        })
        .unwrap();
    (all, visited, summary)
}

/// Checks one feature of every customer, in [`ORDER`].
fn column<T: PartialEq + Debug>(
    all: &BTreeMap<String, CustomerFeatures>,
    name: &str,
    get: impl Fn(&CustomerFeatures) -> T,
    expected: [T; 9],
) {
    let actual: Vec<T> = ORDER.iter().map(|id| get(&all[*id])).collect();
    assert_eq!(actual, expected, "feature {name} of {ORDER:?}");
}

const NEVER: i64 = NEVER_DAYS;

#[test]
fn every_feature_matches_the_hand_computed_value() {
    let (_dir, _path, mut store) = new_store();
    population(&mut store);
    assess_earlier(&mut store);
    let (all, visited, summary) = features_at(&store, WINDOW);

    assert_eq!(
        visited,
        [
            "cat", "bob", "ann", "dan", "eve", "fay", "gus", "ivy", "hal"
        ],
        "customers are visited in rowid order"
    );
    assert_eq!(
        summary,
        FeatureSummary {
            customers: 9,
            scored: 6,
            total_revenue_window: 1000.0,
        }
    );

    // Profile.
    column(
        &all,
        "region",
        |f| f.region.clone(),
        ["north", "", "", "", "", "", "", "", ""].map(String::from),
    );
    column(
        &all,
        "owner",
        |f| f.owner.clone(),
        ["M1", "", "", "", "", "", "", "", ""].map(String::from),
    );
    column(
        &all,
        "timezone",
        |f| f.timezone.clone(),
        ["Europe/Berlin", "", "", "", "", "", "", "", ""].map(String::from),
    );
    column(
        &all,
        "has_email",
        |f| f.has_email,
        [true, false, true, false, false, false, false, false, false],
    );
    column(
        &all,
        "consent_email",
        |f| f.consent_email,
        [true, false, false, false, false, false, false, false, false],
    );
    column(
        &all,
        "consent_sms",
        |f| f.consent_sms,
        [false, false, true, false, false, false, false, false, false],
    );
    column(
        &all,
        "consent_phone",
        |f| f.consent_phone,
        [false, false, false, true, false, false, false, false, false],
    );
    column(
        &all,
        "birthday",
        |f| f.birthday.clone(),
        ["1990-05-17", "", "", "", "", "", "", "", ""].map(String::from),
    );
    column(
        &all,
        "created_at",
        |f| f.created_at,
        [
            CREATED,
            CREATED,
            CREATED,
            CREATED,
            CREATED,
            CREATED,
            CREATED,
            HAL_CREATED,
            CREATED,
        ],
    );
    assert_eq!(
        Value::Object(all["ann"].attributes.clone()),
        json!({"potential": 80, "segment": "retail"})
    );
    assert!(all["bob"].attributes.is_empty());

    // Orders: an order at `at - 30 days` is outside the window, one at `at`
    // inside, one after `at` does not exist.
    column(
        &all,
        "orders_total",
        |f| f.orders_total,
        [2, 2, 2, 2, 1, 1, 0, 0, 0],
    );
    column(
        &all,
        "revenue_total",
        |f| f.revenue_total,
        [550.0, 400.0, 200.0, 100.0, 50.0, 300.0, 0.0, 0.0, 0.0],
    );
    column(
        &all,
        "orders_window",
        |f| f.orders_window,
        [1, 1, 2, 2, 1, 0, 0, 0, 0],
    );
    column(
        &all,
        "revenue_window",
        |f| f.revenue_window,
        [450.0, 200.0, 200.0, 100.0, 50.0, 0.0, 0.0, 0.0, 0.0],
    );
    column(
        &all,
        "avg_order_window",
        |f| f.avg_order_window,
        [450.0, 200.0, 100.0, 50.0, 50.0, 0.0, 0.0, 0.0, 0.0],
    );
    column(
        &all,
        "avg_order_total",
        |f| f.avg_order_total,
        [275.0, 200.0, 100.0, 50.0, 50.0, 300.0, 0.0, 0.0, 0.0],
    );
    column(
        &all,
        "first_order_at",
        |f| f.first_order_at,
        [
            Some(AT - 40 * DAY),
            Some(AT - 30 * DAY),
            Some(AT - 6 * DAY),
            Some(AT - 20 * DAY),
            Some(AT - 29 * DAY),
            Some(AT - 100 * DAY),
            None,
            None,
            None,
        ],
    );
    column(
        &all,
        "last_order_at",
        |f| f.last_order_at,
        [
            Some(AT - DAY),
            Some(AT),
            Some(AT - 5 * DAY),
            Some(AT - 5 * DAY - 3600),
            Some(AT - 29 * DAY),
            Some(AT - 100 * DAY),
            None,
            None,
            None,
        ],
    );
    column(
        &all,
        "days_since_last_order",
        |f| f.days_since_last_order,
        [1, 0, 5, 5, 29, 100, NEVER, NEVER, NEVER],
    );
    column(
        &all,
        "days_since_first_order",
        |f| f.days_since_first_order,
        [40, 30, 6, 20, 29, 100, 0, 0, 0],
    );
    // ann's first order, bob's first order and contact, cat's creation,
    // ivy's interaction; hal was created after `at`.
    column(
        &all,
        "tenure_days",
        |f| f.tenure_days,
        [40, 30, 10, 20, 29, 100, 10, 0, 200],
    );

    // Pareto.
    column(
        &all,
        "revenue_rank",
        |f| f.revenue_rank,
        [1, 2, 3, 4, 5, 6, 7, 8, 9],
    );
    column(
        &all,
        "revenue_share",
        |f| f.revenue_share,
        [0.45, 0.2, 0.2, 0.1, 0.05, 0.0, 0.0, 0.0, 0.0],
    );
    column(
        &all,
        "revenue_share_before",
        |f| f.revenue_share_before,
        [0.0, 0.45, 0.65, 0.85, 0.95, 1.0, 1.0, 1.0, 1.0],
    );
    column(
        &all,
        "revenue_share_after",
        |f| f.revenue_share_after,
        [0.45, 0.65, 0.85, 0.95, 1.0, 1.0, 1.0, 1.0, 1.0],
    );
    let pct = |lower: f64| 100.0 * lower / 9.0;
    column(
        &all,
        "revenue_percentile",
        |f| f.revenue_percentile,
        [
            pct(8.0),
            pct(6.0),
            pct(6.0),
            pct(5.0),
            pct(4.0),
            0.0,
            0.0,
            0.0,
            0.0,
        ],
    );
    let tier_a: Vec<&str> = ORDER
        .iter()
        .copied()
        .filter(|id| all[*id].revenue_share_before < 0.80)
        .collect();
    assert_eq!(tier_a, ["ann", "bob", "cat"], "cat crosses 80% and is in A");

    // Quintiles.
    column(&all, "r_score", |f| f.r_score, [4, 5, 2, 2, 1, 1, 0, 0, 0]);
    column(&all, "f_score", |f| f.f_score, [1, 1, 4, 4, 1, 1, 0, 0, 0]);
    column(&all, "m_score", |f| f.m_score, [5, 3, 3, 2, 1, 1, 0, 0, 0]);
    column(
        &all,
        "rfm_cell",
        |f| f.rfm_cell,
        [415, 513, 243, 242, 111, 111, 0, 0, 0],
    );

    // Interactions: one exactly at the window start is outside it.
    column(
        &all,
        "interactions_window",
        |f| f.interactions_window,
        [1, 0, 0, 0, 0, 0, 0, 0, 0],
    );
    column(
        &all,
        "interactions_total",
        |f| f.interactions_total,
        [2, 1, 0, 0, 0, 0, 0, 0, 1],
    );
    column(
        &all,
        "last_contact_at",
        |f| f.last_contact_at,
        [
            Some(AT - 2 * DAY),
            Some(AT - 30 * DAY),
            None,
            None,
            None,
            None,
            None,
            None,
            Some(AT - 200 * DAY),
        ],
    );
    column(
        &all,
        "days_since_last_contact",
        |f| f.days_since_last_contact,
        [2, 30, NEVER, NEVER, NEVER, NEVER, NEVER, NEVER, 200],
    );

    // Complaints: cat's old critical one is resolved and outside the
    // window; dan's is resolved only after `at`, eve's exactly at `at`;
    // fay's is opened after `at`.
    column(
        &all,
        "complaints_open",
        |f| f.complaints_open,
        [0, 0, 1, 1, 0, 0, 0, 0, 0],
    );
    column(
        &all,
        "complaints_window",
        |f| f.complaints_window,
        [0, 0, 1, 1, 1, 0, 0, 0, 0],
    );
    column(
        &all,
        "complaints_total",
        |f| f.complaints_total,
        [0, 0, 2, 1, 1, 0, 0, 0, 0],
    );
    column(
        &all,
        "max_severity_window",
        |f| f.max_severity_window,
        [0, 0, 3, 2, 1, 0, 0, 0, 0],
    );

    // Feedback.
    column(
        &all,
        "feedback_window",
        |f| f.feedback_window,
        [2, 0, 2, 0, 0, 0, 0, 0, 0],
    );
    column(
        &all,
        "satisfaction_avg",
        |f| f.satisfaction_avg,
        [
            Some(4.5),
            None,
            Some(3.0),
            None,
            None,
            None,
            None,
            None,
            None,
        ],
    );
    column(
        &all,
        "satisfaction_last",
        |f| f.satisfaction_last,
        [
            Some(5.0),
            Some(3.0),
            Some(4.0),
            None,
            None,
            None,
            None,
            None,
            None,
        ],
    );

    // The stored tier: ann kept A since ten days, bob is B with one
    // downgrade pending, cat was assessed four days ago.
    column(
        &all,
        "previous_tier",
        |f| f.previous_tier.clone(),
        ["A", "B", "B", "", "", "", "", "", ""].map(String::from),
    );
    column(
        &all,
        "days_in_tier",
        |f| f.days_in_tier,
        [10, 10, 4, 0, 0, 0, 0, 0, 0],
    );
    column(
        &all,
        "pending_downgrade",
        |f| f.pending_downgrade,
        [0, 1, 0, 0, 0, 0, 0, 0, 0],
    );

    for id in ORDER {
        assert_eq!(all[id].customer_rowid, rowid(&store, id));
    }
}

#[test]
fn one_customers_features_are_computed_over_everyone() {
    let (_dir, _path, mut store) = new_store();
    population(&mut store);
    assess_earlier(&mut store);
    let (all, _, _) = features_at(&store, WINDOW);
    for id in ORDER {
        let one = store.customer_features(AT, WINDOW, id).unwrap();
        assert_eq!(one.as_ref(), Some(&all[id]), "{id}");
    }
    assert_eq!(store.customer_features(AT, WINDOW, "nobody").unwrap(), None);
}

#[test]
fn a_helper_connection_for_the_event_tables_gives_the_same_features() {
    let (_dir, path, mut store) = new_store();
    population(&mut store);
    assess_earlier(&mut store);
    let (all, visited, summary) = features_at(&store, WINDOW);
    // The hand-computed values above have interactions, complaints and feedback, so a helper
    // scanning those tables on its own thread must reproduce every one of them.
    let mut helper = Store::open(&path).unwrap();
    let mut split = BTreeMap::new();
    let mut split_visited = Vec::new();
    let split_summary = store
        .for_each_features_with(AT, WINDOW, Some(&mut helper), true, &mut |features| {
            split_visited.push(features.customer_id.clone());
            split.insert(features.customer_id.clone(), features.clone());
        })
        .unwrap();
    assert_eq!(split, all);
    assert_eq!(split_visited, visited);
    assert_eq!(split_summary, summary);
    assert!(all.values().any(|f| f.interactions_total > 0));
    assert!(all.values().any(|f| f.complaints_total > 0));
    assert!(all.values().any(|f| f.feedback_window > 0));

    // Without attributes, every other feature is the same and the attributes stay empty.
    assert!(all.values().any(|f| !f.attributes.is_empty()));
    let mut bare = BTreeMap::new();
    store
        .for_each_features_with(AT, WINDOW, None, false, &mut |features| {
            assert!(features.attributes.is_empty(), "{}", features.customer_id);
            bare.insert(features.customer_id.clone(), features.clone());
        })
        .unwrap();
    for (id, features) in &mut split {
        features.attributes.clear();
        assert_eq!(Some(&*features), bare.get(id), "{id}");
    }
}

#[test]
fn an_all_time_window_counts_everything_up_to_at() {
    let (_dir, _path, mut store) = new_store();
    population(&mut store);
    let (all, _, summary) = features_at(&store, Window::All);
    assert_eq!(summary.total_revenue_window, 1600.0);
    assert_eq!(summary.scored, 6);
    column(
        &all,
        "orders_window",
        |f| f.orders_window,
        [2, 2, 2, 2, 1, 1, 0, 0, 0],
    );
    column(
        &all,
        "revenue_window",
        |f| f.revenue_window,
        [550.0, 400.0, 200.0, 100.0, 50.0, 300.0, 0.0, 0.0, 0.0],
    );
    // 550, 400, 300 (fay), 200, 100, 50, then gus, hal, ivy.
    column(
        &all,
        "revenue_rank",
        |f| f.revenue_rank,
        [1, 2, 4, 5, 6, 3, 7, 8, 9],
    );
    column(
        &all,
        "interactions_window",
        |f| f.interactions_window,
        [2, 1, 0, 0, 0, 0, 0, 0, 1],
    );
    column(
        &all,
        "complaints_window",
        |f| f.complaints_window,
        [0, 0, 2, 1, 1, 0, 0, 0, 0],
    );
    column(
        &all,
        "max_severity_window",
        |f| f.max_severity_window,
        [0, 0, 4, 2, 1, 0, 0, 0, 0],
    );
    column(
        &all,
        "satisfaction_avg",
        |f| f.satisfaction_avg,
        [
            Some(11.0 / 3.0),
            Some(3.0),
            Some(3.0),
            None,
            None,
            None,
            None,
            None,
            None,
        ],
    );
    // Never assessed.
    column(
        &all,
        "previous_tier",
        |f| f.previous_tier.clone(),
        ["", "", "", "", "", "", "", "", ""].map(String::from),
    );
}

#[test]
fn without_revenue_every_share_is_zero_and_ties_go_by_external_id() {
    let (_dir, _path, mut store) = new_store();
    import_at(
        &mut store,
        ImportKind::Customers,
        options("c.csv"),
        CREATED,
        |session| {
            for (line, id) in (2..).zip(["b", "c", "a"]) {
                session.customer(line, &customer(id)).unwrap();
            }
        },
    );
    let mut seen = Vec::new();
    let summary = store
        .for_each_features(AT, WINDOW, &mut |f| {
            seen.push((
                f.customer_id.clone(),
                f.revenue_rank,
                f.revenue_share,
                f.revenue_share_before,
                f.revenue_share_after,
                f.revenue_percentile,
                f.rfm_cell,
            ));
        })
        .unwrap();
    assert_eq!(
        summary,
        FeatureSummary {
            customers: 3,
            scored: 0,
            total_revenue_window: 0.0
        }
    );
    let row = |id: &str, rank| (id.to_string(), rank, 0.0, 0.0, 0.0, 0.0, 0);
    assert_eq!(seen, [row("b", 2), row("c", 3), row("a", 1)]);

    let empty = Store::open_in_memory().unwrap();
    let summary = empty
        .for_each_features(AT, Window::All, &mut |_| panic!("no customers"))
        .unwrap();
    assert_eq!(summary, FeatureSummary::default());
}

/// A pseudo-random workspace with many ties: 90 customers imported in an order unlike their
/// external ids', revenues from a handful of amounts (whole and fractional, so sums depend on
/// their order), refunds, orders after `AT`, at the window's edges and never. Each customer's
/// own features equal the full pass's, bit for bit, at several times and windows.
#[test]
fn one_customers_features_equal_the_full_pass_for_everyone_ties_included() {
    let (_dir, _path, mut store) = new_store();
    let mut state: u64 = 0x853c_49e6_748f_ea9b;
    let mut next = |n: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % n
    };
    // External ids in a scrambled order, so rowid order is not external-id order.
    let ids: Vec<String> = (0..90_u64)
        .map(|i| format!("X{:03}", (i * 37) % 90))
        .collect();
    import_at(
        &mut store,
        ImportKind::Customers,
        options("c.csv"),
        AT - 400 * DAY,
        |session| {
            for (line, id) in (2..).zip(&ids) {
                session.customer(line, &customer(id)).unwrap();
            }
        },
    );
    let amounts = [10.0, 10.0, 0.1, 0.2, 0.3, 25.5, -5.0, 0.0, 1e-3, 7.25];
    let mut orders = Vec::new();
    for (c, id) in ids.iter().enumerate() {
        // A third of the customers never order.
        if c % 3 == 2 {
            continue;
        }
        for o in 0..=next(4) {
            let amount = amounts[usize::try_from(next(10)).unwrap()];
            let ordered_at = match next(6) {
                0 => AT - WINDOW.seconds().unwrap(),
                1 => AT + DAY,
                2 => AT,
                _ => {
                    AT - i64::try_from(next(90)).unwrap() * DAY
                        - i64::try_from(next(u64::try_from(DAY).unwrap())).unwrap()
                }
            };
            orders.push(order(&format!("{id}-{o}"), id, ordered_at, amount));
        }
    }
    import_at(
        &mut store,
        ImportKind::Orders,
        options("o.csv"),
        AT,
        |session| {
            for (line, record) in (2..).zip(&orders) {
                session.order(line, record).unwrap();
            }
        },
    );
    for (at, window) in [
        (AT, WINDOW),
        (AT, Window::All),
        (AT - 45 * DAY + 3_600, WINDOW),
        (AT + 2 * DAY, Window::Seconds(7 * DAY)),
    ] {
        let mut all = BTreeMap::new();
        store
            .for_each_features(at, window, &mut |features| {
                all.insert(features.customer_id.clone(), features.clone());
            })
            .unwrap();
        assert_eq!(all.len(), ids.len());
        let tied = all
            .values()
            .filter(|f| {
                f.revenue_window != 0.0
                    && all
                        .values()
                        .filter(|g| g.revenue_window == f.revenue_window)
                        .count()
                        > 1
            })
            .count();
        assert!(tied > 2, "the history has ties of non-zero revenue");
        for (id, full) in &all {
            let one = store.customer_features(at, window, id).unwrap();
            assert_eq!(one.as_ref(), Some(full), "{id} at {at} with {window:?}");
        }
    }
}

/// Nothing is kept between two reads: an order imported between them moves the rank.
#[test]
fn an_order_imported_between_two_reads_moves_the_rank() {
    let (_dir, _path, mut store) = new_store();
    import_at(
        &mut store,
        ImportKind::Customers,
        options("c.csv"),
        AT - DAY,
        |session| {
            for (line, id) in (2..).zip(["A", "B"]) {
                session.customer(line, &customer(id)).unwrap();
            }
        },
    );
    import_at(
        &mut store,
        ImportKind::Orders,
        options("o.csv"),
        AT,
        |session| {
            session.order(2, &order("o1", "A", AT - DAY, 50.0)).unwrap();
            session.order(3, &order("o2", "B", AT - DAY, 20.0)).unwrap();
        },
    );
    let rank = |store: &Store| {
        let features = store.customer_features(AT, WINDOW, "B").unwrap().unwrap();
        (features.revenue_rank, features.revenue_share)
    };
    assert_eq!(rank(&store), (2, 20.0 / 70.0));
    import_at(
        &mut store,
        ImportKind::Orders,
        options("o2.csv"),
        AT,
        |session| {
            session.order(2, &order("o3", "B", AT - DAY, 40.0)).unwrap();
        },
    );
    assert_eq!(rank(&store), (1, 60.0 / 110.0));
}
