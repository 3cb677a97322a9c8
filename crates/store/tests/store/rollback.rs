//! An import is all or nothing; `counts` adds up what is stored.

use tiercare_store::{
    ComplaintRecord, CustomerRecord, FeedbackRecord, ImportAudit, ImportKind, ImportOptions,
    InteractionRecord, TableCounts,
};

use crate::fixture::{
    NOW, customer, dump, import_at, item, manager, new_store, options, order, seed_customers,
    seed_manager,
};

#[test]
fn a_dropped_session_leaves_the_database_exactly_as_before() {
    let (_dir, path, mut store) = new_store();
    seed_customers(&mut store, &["C1", "C2"]);
    import_at(
        &mut store,
        ImportKind::Orders,
        options("orders.csv"),
        NOW,
        |s| {
            s.order(2, &order("O1", "C1", NOW, 10.0)).unwrap();
        },
    );
    let before = dump(&path);
    let counts_before = store.counts().unwrap();

    {
        let create = ImportOptions {
            create_missing_customers: true,
            source: "orders.csv".into(),
        };
        let mut session = store
            .import_at(ImportKind::Orders, create, NOW + 60)
            .unwrap();
        let mut changed = order("O1", "C2", NOW, 99.0);
        changed.items = vec![item("X", 1.0, 99.0)];
        session.order(2, &changed).unwrap();
        session.order(3, &order("O2", "C-new", NOW, 5.0)).unwrap();
        session.customer(4, &customer("C1", "Renamed")).unwrap();
        assert_eq!(session.customers_created(), 1);
        // Dropped without commit.
    }
    assert_eq!(dump(&path), before);
    assert_eq!(store.counts().unwrap(), counts_before);

    // The lock is released: the next import works.
    import_at(
        &mut store,
        ImportKind::Customers,
        options("c.csv"),
        NOW,
        |s| {
            s.customer(2, &customer("C3", "Cy")).unwrap();
        },
    );
    assert_eq!(store.counts().unwrap().customers, 3);
}

#[test]
fn a_dropped_bulk_import_into_empty_tables_restores_their_indexes() {
    // Imports into an empty table drop its secondary indexes and rebuild
    // them at commit; a rollback must bring them back as they were.
    let (_dir, path, mut store) = new_store();
    seed_customers(&mut store, &["C1"]);
    let before = dump(&path);
    assert!(
        before
            .iter()
            .any(|line| line.starts_with("index orders_by_customer: CREATE INDEX"))
    );
    for kind in [
        ImportKind::Orders,
        ImportKind::Interactions,
        ImportKind::Complaints,
        ImportKind::Feedback,
    ] {
        let mut session = store.import_at(kind, options("x.csv"), NOW).unwrap();
        session.order(2, &order("O1", "C1", NOW, 10.0)).unwrap();
        drop(session);
        assert_eq!(dump(&path), before, "{kind}");
    }
}

#[test]
fn a_bulk_import_leaves_the_indexes_in_place_and_used() {
    let (_dir, path, mut store) = new_store();
    seed_customers(&mut store, &["C1", "C2"]);
    let before: Vec<String> = dump(&path)
        .into_iter()
        .filter(|line| line.starts_with("index "))
        .collect();
    import_at(
        &mut store,
        ImportKind::Orders,
        options("orders.csv"),
        NOW,
        |s| {
            for n in 0..500 {
                let customer = if n % 2 == 0 { "C1" } else { "C2" };
                s.order(
                    n + 2,
                    &order(&format!("O{n}"), customer, NOW - n as i64, 1.0),
                )
                .unwrap();
            }
        },
    );
    let after: Vec<String> = dump(&path)
        .into_iter()
        .filter(|line| line.starts_with("index "))
        .collect();
    assert_eq!(after, before);

    let raw = rusqlite::Connection::open(&path).unwrap();
    let check: String = raw
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let plan: String = raw
        .query_row(
            "EXPLAIN QUERY PLAN SELECT * FROM orders WHERE customer_id = 1 ORDER BY ordered_at",
            [],
            |row| row.get(3),
        )
        .unwrap();
    assert!(plan.contains("orders_by_customer"), "{plan}");
    assert_eq!(store.orders_of("C2").unwrap().len(), 250);
}

#[test]
fn nothing_is_visible_to_other_connections_before_commit() {
    let (_dir, path, mut store) = new_store();
    let reader = tiercare_store::Store::open(&path).unwrap();
    let mut session = store
        .import_at(ImportKind::Customers, options("c.csv"), NOW)
        .unwrap();
    session.customer(2, &customer("C1", "Ada")).unwrap();
    assert_eq!(reader.counts().unwrap().customers, 0);
    session.commit(&ImportAudit::default()).unwrap();
    assert_eq!(reader.counts().unwrap().customers, 1);
}

#[test]
fn counts_add_up_every_table_and_the_revenue() {
    let (_dir, _path, mut store) = new_store();
    assert_eq!(
        store.counts().unwrap(),
        TableCounts {
            customers: 0,
            managers: 0,
            orders: 0,
            order_items: 0,
            interactions: 0,
            complaints: 0,
            feedback: 0,
            revenue: 0.0,
        }
    );
    seed_customers(&mut store, &["C1", "C2", "C3"]);
    import_at(
        &mut store,
        ImportKind::Orders,
        options("orders.csv"),
        NOW,
        |s| {
            let mut first = order("O1", "C1", NOW, 12.5);
            first.items = vec![item("A", 1.0, 10.0), item("B", 1.0, 2.5)];
            s.order(2, &first).unwrap();
            s.order(3, &order("O2", "C2", NOW, 100.0)).unwrap();
            s.order(4, &order("O3", "C2", NOW, 0.25)).unwrap();
        },
    );
    seed_manager(&mut store, &manager("M1", "Mia"));
    import_at(
        &mut store,
        ImportKind::Interactions,
        options("i.csv"),
        NOW,
        |s| {
            let rec = InteractionRecord {
                customer_external_id: "C1".into(),
                kind: "email".into(),
                occurred_at: NOW,
                ..Default::default()
            };
            s.interaction(2, &rec).unwrap();
            s.interaction(
                3,
                &InteractionRecord {
                    occurred_at: NOW + 1,
                    ..rec
                },
            )
            .unwrap();
        },
    );
    import_at(
        &mut store,
        ImportKind::Complaints,
        options("x.csv"),
        NOW,
        |s| {
            let rec = ComplaintRecord {
                customer_external_id: "C3".into(),
                opened_at: NOW,
                severity: 4,
                ..Default::default()
            };
            s.complaint(2, &rec).unwrap();
        },
    );
    import_at(
        &mut store,
        ImportKind::Feedback,
        options("f.csv"),
        NOW,
        |s| {
            for (line, score) in [(2, 1.0), (3, 2.0), (4, 3.0)] {
                let rec = FeedbackRecord {
                    customer_external_id: "C2".into(),
                    given_at: NOW,
                    score,
                    ..Default::default()
                };
                s.feedback(line, &rec).unwrap();
            }
        },
    );
    let counts = store.counts().unwrap();
    assert_eq!(
        counts,
        TableCounts {
            customers: 3,
            managers: 1,
            orders: 3,
            order_items: 2,
            interactions: 2,
            complaints: 1,
            feedback: 3,
            revenue: 112.75,
        }
    );
    let json = serde_json::to_value(&counts).unwrap();
    assert_eq!(json["revenue"], 112.75);
    assert_eq!(json["order_items"], 2);
    let _ = CustomerRecord::default();
}
