//! Recommendations on a hand-made purchase history whose right answer is worked out below.

use tiercare_store::{Basis, ImportKind, OrderItem};

use crate::fixture::{NOW, import_at, new_store, options, order, seed_customers};

fn line(sku: &str, description: &str) -> OrderItem {
    OrderItem {
        sku: Some(sku.into()),
        description: Some(description.into()),
        quantity: 1.0,
        unit_price: 1.0,
        amount: 1.0,
    }
}

/// A: bread, butter. B: bread, butter, jam. C: bread, cheese. D: wine. E: nothing.
/// F: caviar, but after the recommendation time.
#[test]
fn co_occurrence_then_popularity_as_documented() {
    let (_dir, _path, mut store) = new_store();
    seed_customers(&mut store, &["A", "B", "C", "D", "E", "F"]);
    let orders = [
        (
            "o1",
            "A",
            vec![line("bread", "Sourdough"), line("butter", "Butter")],
        ),
        (
            "o2",
            "B",
            vec![line("bread", "Sourdough"), line("butter", "Butter")],
        ),
        ("o3", "B", vec![line("jam", "Strawberry jam")]),
        (
            "o4",
            "C",
            vec![line("bread", "Sourdough"), line("cheese", "")],
        ),
        ("o5", "D", vec![line("wine", "Red wine")]),
    ];
    import_at(
        &mut store,
        ImportKind::Orders,
        options("o.csv"),
        NOW,
        |session| {
            for (n, (id, customer, items)) in (2..).zip(orders) {
                let mut rec = order(id, customer, NOW - 86_400, items.len() as f64);
                rec.items = items;
                session.order(n, &rec).expect("order");
            }
            let mut late = order("o6", "F", NOW + 86_400, 1.0);
            late.items = vec![line("caviar", "Caviar")];
            session.order(99, &late).expect("order");
        },
    );
    let recommender = store.recommender(NOW).unwrap();
    assert_eq!(recommender.products(), 5, "caviar is after the time");
    let rowid = |id: &str| store.customer(id).unwrap().unwrap().id;

    // A's neighbours: B (overlap 2: bread, butter), C (overlap 1: bread). Jam scores 2, cheese 1;
    // then wine, the only other product anyone bought.
    let a = recommender.recommend(rowid("A"), 3);
    let got: Vec<(&str, f64, Basis)> = a
        .iter()
        .map(|r| (r.sku.as_str(), r.score, r.basis))
        .collect();
    assert_eq!(
        got,
        [
            ("jam", 2.0, Basis::CoPurchase),
            ("cheese", 1.0, Basis::CoPurchase),
            ("wine", 0.0, Basis::PopularInTier),
        ]
    );
    assert_eq!(a[0].description, "Strawberry jam");
    assert_eq!(a[1].description, "cheese", "no description: the SKU");

    // E bought nothing: the most bought products (bread 3 buyers, butter 2), then the SKU order
    // among the one-buyer products.
    let e: Vec<String> = recommender
        .recommend(rowid("E"), 3)
        .into_iter()
        .map(|r| r.sku)
        .collect();
    assert_eq!(e, ["bread", "butter", "cheese"]);

    // D's wine nobody else bought: no co-purchase, only popularity, never wine itself.
    let d: Vec<String> = recommender
        .recommend(rowid("D"), 2)
        .into_iter()
        .map(|r| r.sku)
        .collect();
    assert_eq!(d, ["bread", "butter"]);
    assert!(recommender.recommend(rowid("A"), 0).is_empty());
}

/// The first recommendation walks the customer's neighbours (what `preview` needs for one
/// customer), later ones read the co-occurrence table: the scores, and so the
/// recommendations, are the same both ways for every customer of a varied history.
#[test]
fn the_neighbour_walk_gives_the_co_occurrence_tables_scores() {
    let (_dir, _path, mut store) = new_store();
    let ids: Vec<String> = (0..40).map(|n| format!("K{n:02}")).collect();
    let names: Vec<&str> = ids.iter().map(String::as_str).collect();
    seed_customers(&mut store, &names);
    // A fixed pseudo-random history: 40 customers, 25 products, 1 to 4 orders of 1 to 6 lines.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = |n: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % n
    };
    let mut orders = Vec::new();
    for customer in &ids {
        for o in 0..=next(4) {
            let items: Vec<OrderItem> = (0..=next(6))
                .map(|_| {
                    let sku = format!("P{:02}", next(25));
                    line(&sku, &sku)
                })
                .collect();
            orders.push((format!("{customer}-{o}"), customer.clone(), items));
        }
    }
    import_at(
        &mut store,
        ImportKind::Orders,
        options("o.csv"),
        NOW,
        |session| {
            for (n, (id, customer, items)) in (2..).zip(&orders) {
                let mut rec = order(id, customer, NOW - 86_400, items.len() as f64);
                rec.items = items.clone();
                session.order(n, &rec).expect("order");
            }
        },
    );
    let walked = store.recommender(NOW).unwrap();
    let read = store.recommender(NOW).unwrap();
    let customers: Vec<i64> = read.customers().collect();
    assert_eq!(customers.len(), 40);
    // The first call walks the neighbours, and every later one reads the table it builds.
    assert!(!read.recommend(customers[0], 3).is_empty());
    for &customer in &customers {
        let (table, walk) = read.scores_both_ways(customer);
        assert_eq!(table, walk, "customer {customer}");
        assert!(!walk.is_empty(), "every customer has neighbours here");
        let fresh = store.recommender(NOW).unwrap();
        assert_eq!(
            fresh.recommend(customer, 5),
            read.recommend(customer, 5),
            "customer {customer}"
        );
    }
    assert_eq!(
        walked.recommend(customers[1], 5),
        read.recommend(customers[1], 5)
    );
}

/// A product's description is the one of its latest line by order time (then order id, then
/// line number) that has one, whatever order the orders were imported in: the recommender reads
/// the lines in order-id order, without sorting them by time.
#[test]
fn a_products_description_is_its_latest_non_empty_one_by_order_time() {
    let (_dir, _path, mut store) = new_store();
    seed_customers(&mut store, &["A", "B", "C"]);
    // Imported newest first, so the order ids run against time; the newest line of "jam" has no
    // description, and "tea" has two lines in one order.
    let orders = [
        (
            "o1",
            "A",
            NOW - 86_400,
            vec![line("jam", ""), line("tea", "Tea")],
        ),
        (
            "o2",
            "B",
            NOW - 2 * 86_400,
            vec![line("jam", "Jam, new label")],
        ),
        (
            "o3",
            "A",
            NOW - 3 * 86_400,
            vec![line("jam", "Jam, old label")],
        ),
        (
            "o4",
            "B",
            NOW - 4 * 86_400,
            vec![line("tea", "Green tea"), line("tea", "Black tea")],
        ),
    ];
    import_at(
        &mut store,
        ImportKind::Orders,
        options("o.csv"),
        NOW,
        |session| {
            for (n, (id, customer, ordered_at, items)) in (2..).zip(orders) {
                let mut rec = order(id, customer, ordered_at, items.len() as f64);
                rec.items = items;
                session.order(n, &rec).expect("order");
            }
        },
    );
    let rowid = |id: &str| store.customer(id).unwrap().unwrap().id;
    let described = |at: i64, customer: &str| -> Vec<(String, String)> {
        let recommender = store.recommender(at).unwrap();
        let mut got: Vec<(String, String)> = recommender
            .recommend(rowid(customer), 5)
            .into_iter()
            .map(|r| (r.sku, r.description))
            .collect();
        got.sort();
        got
    };
    // C bought nothing, so sees both products.
    assert_eq!(
        described(NOW, "C"),
        [
            ("jam".to_owned(), "Jam, new label".to_owned()),
            ("tea".to_owned(), "Tea".to_owned()),
        ]
    );
    // Three days ago, the newest jam line was o3's; tea's latest was the second line of o4.
    assert_eq!(
        described(NOW - 3 * 86_400, "C"),
        [
            ("jam".to_owned(), "Jam, old label".to_owned()),
            ("tea".to_owned(), "Black tea".to_owned()),
        ]
    );
}
