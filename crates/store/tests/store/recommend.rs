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
