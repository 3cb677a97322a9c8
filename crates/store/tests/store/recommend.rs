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
    let a = store.recommend(&recommender, rowid("A"), 3).unwrap();
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
    let e: Vec<String> = store
        .recommend(&recommender, rowid("E"), 3)
        .unwrap()
        .into_iter()
        .map(|r| r.sku)
        .collect();
    assert_eq!(e, ["bread", "butter", "cheese"]);

    // D's wine nobody else bought: no co-purchase, only popularity, never wine itself.
    let d: Vec<String> = store
        .recommend(&recommender, rowid("D"), 2)
        .unwrap()
        .into_iter()
        .map(|r| r.sku)
        .collect();
    assert_eq!(d, ["bread", "butter"]);
    assert!(
        store
            .recommend(&recommender, rowid("A"), 0)
            .unwrap()
            .is_empty()
    );
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
    assert!(!store.recommend(&read, customers[0], 3).unwrap().is_empty());
    for &customer in &customers {
        let (table, walk) = read.scores_both_ways(customer);
        assert_eq!(table, walk, "customer {customer}");
        assert!(!walk.is_empty(), "every customer has neighbours here");
        let fresh = store.recommender(NOW).unwrap();
        assert_eq!(
            store.recommend(&fresh, customer, 5).unwrap(),
            store.recommend(&read, customer, 5).unwrap(),
            "customer {customer}"
        );
    }
    assert_eq!(
        store.recommend(&walked, customers[1], 5).unwrap(),
        store.recommend(&read, customers[1], 5).unwrap()
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
        let mut got: Vec<(String, String)> = store
            .recommend(&recommender, rowid(customer), 5)
            .unwrap()
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

/// An order of the reference history: id, customer, time, lines.
type HistoryOrder = (String, String, i64, Vec<OrderItem>);

/// The documented method (see `Recommender`), computed naively from the orders themselves:
/// `(sku, description, score, buyers, basis)` of up to `n` products for `customer` at `at`,
/// for a workspace without tiers.
fn reference(
    orders: &[HistoryOrder],
    customer: &str,
    at: i64,
    n: usize,
) -> Vec<(String, String, f64, u64, Basis)> {
    use std::collections::{BTreeMap, BTreeSet};
    let mut bought: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    let mut buyers: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    // Per product: ((time, import position, line position), description) of its latest line
    // with a non-empty description.
    let mut described: BTreeMap<&str, ((i64, usize, usize), String)> = BTreeMap::new();
    for (position, (_, who, ordered_at, items)) in orders.iter().enumerate() {
        if *ordered_at > at {
            continue;
        }
        for (line_no, item) in items.iter().enumerate() {
            let Some(sku) = item.sku.as_deref().filter(|sku| !sku.is_empty()) else {
                continue;
            };
            bought.entry(who).or_default().insert(sku);
            buyers.entry(sku).or_default().insert(who);
            let text = item.description.as_deref().unwrap_or("").trim();
            let key = (*ordered_at, position, line_no);
            if !text.is_empty() && described.get(sku).is_none_or(|(earlier, _)| *earlier < key) {
                described.insert(sku, (key, text.to_owned()));
            }
        }
    }
    let own = bought.get(customer).cloned().unwrap_or_default();
    let mut scores: BTreeMap<&str, u64> = BTreeMap::new();
    for (other, theirs) in &bought {
        if *other == customer {
            continue;
        }
        let overlap = own.intersection(theirs).count() as u64;
        if overlap == 0 {
            continue;
        }
        for sku in theirs.difference(&own) {
            *scores.entry(sku).or_default() += overlap;
        }
    }
    let count = |sku: &str| buyers.get(sku).map_or(0, BTreeSet::len) as u64;
    let mut ranked: Vec<(&str, u64)> = scores.into_iter().collect();
    ranked.sort_by(|(a, sa), (b, sb)| {
        sb.cmp(sa)
            .then_with(|| count(b).cmp(&count(a)))
            .then_with(|| a.cmp(b))
    });
    let mut chosen: Vec<(&str, f64, Basis)> = ranked
        .into_iter()
        .take(n)
        .map(|(sku, score)| (sku, score as f64, Basis::CoPurchase))
        .collect();
    let mut popular: Vec<&str> = buyers.keys().copied().collect();
    popular.sort_by(|a, b| count(b).cmp(&count(a)).then_with(|| a.cmp(b)));
    for sku in popular {
        if chosen.len() >= n {
            break;
        }
        if !own.contains(sku) && !chosen.iter().any(|(c, _, _)| *c == sku) {
            chosen.push((sku, 0.0, Basis::PopularInTier));
        }
    }
    chosen
        .into_iter()
        .map(|(sku, score, basis)| {
            let description = described
                .get(sku)
                .map_or_else(|| sku.to_owned(), |(_, text)| text.clone());
            (sku.to_owned(), description, score, count(sku), basis)
        })
        .collect()
}

/// The recommender's product-by-product scan (the index `order_items_by_sku`) and its
/// per-product descriptions give, for every customer of a varied history at several times,
/// exactly what the documented method gives computed naively: lines without a SKU, blank and
/// padded descriptions, orders after the time, customers who bought nothing or only products
/// nobody else bought.
#[test]
fn every_customer_gets_what_the_documented_method_gives() {
    let (_dir, _path, mut store) = new_store();
    let ids: Vec<String> = (0..30).map(|n| format!("R{n:02}")).collect();
    let names: Vec<&str> = ids.iter().map(String::as_str).collect();
    seed_customers(&mut store, &names);
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = |n: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % n
    };
    let mut orders: Vec<HistoryOrder> = Vec::new();
    // R00 to R24 order; R25 to R29 never do. R24 buys only a product nobody else buys.
    for (c, customer) in ids.iter().enumerate().take(25) {
        for o in 0..=next(3) {
            let ordered_at = NOW - i64::try_from(next(6)).unwrap() * 86_400 + 86_400;
            let items: Vec<OrderItem> = (0..=next(5))
                .map(|_| {
                    let sku = if c == 24 {
                        "UNIQUE".to_owned()
                    } else {
                        format!("P{:02}", next(18))
                    };
                    let mut item = match next(5) {
                        0 => line(&sku, ""),
                        1 => line(&sku, &format!("  {sku} padded  ")),
                        _ => line(&sku, &format!("{sku} label {}", next(3))),
                    };
                    if next(12) == 0 {
                        item.sku = None;
                    }
                    item
                })
                .collect();
            orders.push((
                format!("{customer}-{o}"),
                customer.clone(),
                ordered_at,
                items,
            ));
        }
    }
    import_at(
        &mut store,
        ImportKind::Orders,
        options("o.csv"),
        NOW,
        |session| {
            for (n, (id, customer, ordered_at, items)) in (2..).zip(&orders) {
                let mut rec = order(id, customer, *ordered_at, items.len() as f64);
                rec.items = items.clone();
                session.order(n, &rec).expect("order");
            }
        },
    );
    for at in [NOW, NOW - 2 * 86_400, NOW - 10 * 86_400] {
        let recommender = store.recommender(at).unwrap();
        for customer in &ids {
            let rowid = store.customer(customer).unwrap().unwrap().id;
            let got: Vec<(String, String, f64, u64, Basis)> = store
                .recommend(&recommender, rowid, 4)
                .unwrap()
                .into_iter()
                .map(|r| (r.sku, r.description, r.score, r.buyers, r.basis))
                .collect();
            assert_eq!(
                got,
                reference(&orders, customer, at, 4),
                "customer {customer} at {at}"
            );
        }
    }
}
