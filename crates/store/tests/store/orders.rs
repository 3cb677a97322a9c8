//! Upserting orders and their lines.

use rusqlite::Connection;
use tiercare_store::{
    ImportAudit, ImportKind, ImportOptions, OrderRecord, Outcome, RowError, RowRejection, Store,
};

use crate::fixture::{NOW, import_at, item, new_store, options, order, seed_customers};

fn import_orders(store: &mut Store, records: &[OrderRecord]) -> Vec<Result<Outcome, RowError>> {
    import_at(
        store,
        ImportKind::Orders,
        options("orders.csv"),
        NOW,
        |session| {
            (2..)
                .zip(records)
                .map(|(line, rec)| session.order(line, rec))
                .collect()
        },
    )
}

fn outcomes(results: Vec<Result<Outcome, RowError>>) -> Vec<Outcome> {
    results
        .into_iter()
        .map(|result| result.expect("order accepted"))
        .collect()
}

fn rejection(result: &Result<Outcome, RowError>) -> &RowRejection {
    match result {
        Err(RowError::Rejected(rejection)) => rejection,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

fn three_orders() -> Vec<OrderRecord> {
    vec![
        order("O1", "C1", NOW - 300, 120.0),
        order("O2", "C1", NOW - 200, 80.5),
        order("O3", "C2", NOW - 100, 10.0),
    ]
}

#[test]
fn importing_the_same_orders_twice_does_not_double_revenue() {
    let (_dir, _path, mut store) = new_store();
    seed_customers(&mut store, &["C1", "C2"]);

    let first = outcomes(import_orders(&mut store, &three_orders()));
    assert_eq!(first, [Outcome::Inserted; 3]);
    let counts = store.counts().unwrap();
    assert_eq!((counts.orders, counts.revenue), (3, 210.5));

    let second = outcomes(import_orders(&mut store, &three_orders()));
    assert_eq!(second, [Outcome::Unchanged; 3]);
    let counts = store.counts().unwrap();
    assert_eq!((counts.orders, counts.revenue), (3, 210.5));
}

#[test]
fn a_later_file_updates_changed_orders_and_adds_new_ones() {
    let (_dir, _path, mut store) = new_store();
    seed_customers(&mut store, &["C1", "C2"]);
    import_orders(&mut store, &three_orders());

    let mut later = three_orders();
    later[1].amount = 90.5; // corrected amount
    later[2].customer_external_id = "C1".into(); // moved to another customer
    later.push(order("O4", "C2", NOW, 5.0));
    let results = outcomes(import_orders(&mut store, &later));
    assert_eq!(
        results,
        [
            Outcome::Unchanged,
            Outcome::Updated,
            Outcome::Updated,
            Outcome::Inserted
        ]
    );
    let counts = store.counts().unwrap();
    assert_eq!((counts.orders, counts.revenue), (4, 225.5));
    let c1: Vec<_> = store
        .orders_of("C1")
        .unwrap()
        .into_iter()
        .map(|o| (o.external_id, o.amount))
        .collect();
    assert_eq!(
        c1,
        [
            ("O1".into(), 120.0),
            ("O2".into(), 90.5),
            ("O3".into(), 10.0)
        ]
    );
    assert_eq!(store.orders_of("C2").unwrap().len(), 1);
    assert!(store.orders_of("nobody").unwrap().is_empty());
}

#[test]
fn order_lines_are_stored_and_replaced_when_they_change() {
    let (_dir, _path, mut store) = new_store();
    seed_customers(&mut store, &["C1"]);
    let mut with_lines = order("O1", "C1", NOW, 50.0);
    with_lines.items = vec![item("PEN", 10.0, 2.0), item("INK", 2.0, 15.0)];
    assert_eq!(
        outcomes(import_orders(&mut store, &[with_lines.clone()])),
        [Outcome::Inserted]
    );

    let stored = &store.orders_of("C1").unwrap()[0];
    assert_eq!(stored.item_count, 2);
    assert_eq!(stored.items, with_lines.items);

    // Same lines: unchanged. Different lines: all replaced.
    assert_eq!(
        outcomes(import_orders(&mut store, &[with_lines.clone()])),
        [Outcome::Unchanged]
    );
    let mut new_lines = with_lines.clone();
    new_lines.items = vec![
        item("PEN", 10.0, 2.0),
        item("INK", 3.0, 10.0),
        item("PAD", 1.0, 0.0),
    ];
    assert_eq!(
        outcomes(import_orders(&mut store, &[new_lines.clone()])),
        [Outcome::Updated]
    );
    let stored = &store.orders_of("C1").unwrap()[0];
    assert_eq!(stored.items, new_lines.items);
    assert_eq!(stored.item_count, 3);
    assert_eq!(store.counts().unwrap().order_items, 3);

    // A changed description alone is a change too.
    let mut described = new_lines.clone();
    described.items[2].description = Some("A5 pad".into());
    assert_eq!(
        outcomes(import_orders(&mut store, &[described.clone()])),
        [Outcome::Updated]
    );
    assert_eq!(store.orders_of("C1").unwrap()[0].items, described.items);

    // A file without lines keeps the stored ones.
    let no_lines = order("O1", "C1", NOW, 50.0);
    assert_eq!(
        outcomes(import_orders(&mut store, &[no_lines])),
        [Outcome::Unchanged]
    );
    let stored = &store.orders_of("C1").unwrap()[0];
    assert_eq!((stored.item_count, stored.items.len()), (3, 3));
}

#[test]
fn an_unknown_customer_is_rejected_unless_asked_to_create_it() {
    let (_dir, path, mut store) = new_store();
    seed_customers(&mut store, &["C1"]);
    let mut stranger = order("O9", "C404", NOW, 99.0);
    stranger.customer_name = Some("Walk-in".into());
    stranger.customer_region = Some("North".into());

    let results = import_orders(&mut store, &[stranger.clone()]);
    assert_eq!(
        rejection(&results[0]),
        &RowRejection {
            column: Some("customer_id"),
            reason: "unknown customer 'C404': import customers first, or set \
                     create_customers: true in the mapping"
                .into(),
        }
    );
    assert_eq!(store.counts().unwrap().orders, 0);

    let create = ImportOptions {
        create_missing_customers: true,
        source: "orders.csv".into(),
    };
    let mut second = stranger.clone();
    second.external_id = "O10".into();
    let mut session = store.import_at(ImportKind::Orders, create, NOW).unwrap();
    assert_eq!(session.order(2, &stranger).unwrap(), Outcome::Inserted);
    assert_eq!(session.order(3, &second).unwrap(), Outcome::Inserted);
    assert_eq!(
        session.order(4, &order("O11", "C1", NOW, 1.0)).unwrap(),
        Outcome::Inserted
    );
    assert_eq!(session.customers_created(), 1, "created once, then found");
    session
        .commit(&ImportAudit {
            rows_read: 3,
            imported: 3,
            ..ImportAudit::default()
        })
        .unwrap();

    let created = store.customer("C404").unwrap().unwrap();
    assert_eq!(created.name.as_deref(), Some("Walk-in"));
    assert_eq!(created.region.as_deref(), Some("North"));
    assert_eq!(created.created_at, NOW);
    assert_eq!(store.orders_of("C404").unwrap().len(), 2);

    let raw = Connection::open(&path).unwrap();
    let audit: (String, String, i64, i64, i64, i64) = raw
        .query_row(
            "SELECT kind, source, started_at, rows_read, imported, customers_created \
             FROM imports ORDER BY id DESC LIMIT 1",
            [],
            |row| {
                Ok((
                    row.get(0)?,
                    row.get(1)?,
                    row.get(2)?,
                    row.get(3)?,
                    row.get(4)?,
                    row.get(5)?,
                ))
            },
        )
        .unwrap();
    assert_eq!(audit, ("orders".into(), "orders.csv".into(), NOW, 3, 3, 1));
}

#[test]
fn a_duplicate_order_in_one_file_is_rejected_with_the_first_line() {
    let (_dir, _path, mut store) = new_store();
    seed_customers(&mut store, &["C1"]);
    // Both into an empty table (inserted without lookups) and into a
    // non-empty one (looked up), the second O1 must be caught.
    for round in 0..2 {
        let results = import_orders(
            &mut store,
            &[
                order("O1", "C1", NOW, 10.0),
                order("O2", "C1", NOW, 20.0),
                order("O1", "C1", NOW, 30.0),
            ],
        );
        assert!(results[0].is_ok() && results[1].is_ok(), "round {round}");
        assert_eq!(
            rejection(&results[2]),
            &RowRejection {
                column: Some("order_id"),
                reason: "duplicate order_id 'O1' (first seen on line 2)".into(),
            }
        );
        let counts = store.counts().unwrap();
        assert_eq!((counts.orders, counts.revenue), (2, 30.0), "round {round}");
    }
}

#[test]
fn bad_order_rows_are_rejected_by_column() {
    let (_dir, _path, mut store) = new_store();
    seed_customers(&mut store, &["C1"]);
    let mut bad_line = order("O3", "C1", NOW, 1.0);
    bad_line.items = vec![item("X", f64::INFINITY, 1.0)];
    let results = import_orders(
        &mut store,
        &[
            order("", "C1", NOW, 1.0),
            order("O1", "", NOW, 1.0),
            order("O2", "C1", NOW, f64::NAN),
            bad_line,
        ],
    );
    let columns: Vec<_> = results.iter().map(|r| rejection(r).column).collect();
    assert_eq!(
        columns,
        [
            Some("order_id"),
            Some("customer_id"),
            Some("amount"),
            Some("quantity")
        ]
    );
    assert_eq!(store.counts().unwrap().orders, 0);
}

#[test]
fn a_rejected_repeat_never_creates_its_customer() {
    let (_dir, _path, mut store) = new_store();
    seed_customers(&mut store, &["C1"]);
    let create = ImportOptions {
        create_missing_customers: true,
        source: "orders.csv".into(),
    };
    // Once into an empty orders table, once into a filled one.
    for round in 0..2 {
        let mut session = store
            .import_at(ImportKind::Orders, create.clone(), NOW)
            .unwrap();
        session.order(2, &order("O1", "C1", NOW, 10.0)).unwrap();
        let repeat = session.order(3, &order("O1", "C-new", NOW, 10.0));
        assert_eq!(
            rejection(&repeat).reason,
            "duplicate order_id 'O1' (first seen on line 2)",
            "round {round}"
        );
        assert_eq!(session.customers_created(), 0);
        session.commit(&ImportAudit::default()).unwrap();
        assert_eq!(store.customer("C-new").unwrap(), None);
    }
}
