//! Upserting customers.

use chrono::NaiveDate;
use serde_json::json;
use tiercare_store::{
    CustomerRecord, ImportKind, Outcome, RowError, RowRejection, Store, TableCounts,
};

use crate::fixture::{NOW, customer, import_at, new_store, options};

fn import_customers(store: &mut Store, now: i64, records: &[CustomerRecord]) -> Vec<Outcome> {
    import_at(
        store,
        ImportKind::Customers,
        options("customers.csv"),
        now,
        |session| {
            (2..)
                .zip(records)
                .map(|(line, rec)| session.customer(line, rec).expect("customer accepted"))
                .collect()
        },
    )
}

fn attributes(value: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
    match value {
        serde_json::Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

fn full_record() -> CustomerRecord {
    CustomerRecord {
        external_id: "C1".into(),
        name: Some("Ada Lovelace".into()),
        email: Some("ada@example.com".into()),
        phone: Some("+44 20 7946 0000".into()),
        birthday: NaiveDate::from_ymd_opt(1815, 12, 10),
        region: Some("London".into()),
        owner: Some("M1".into()),
        timezone: Some("Europe/London".into()),
        consent_email: Some(true),
        consent_sms: None,
        consent_phone: Some(false),
        attributes: attributes(json!({"segment": "b2b", "employees": 12})),
    }
}

#[test]
fn a_new_customer_is_inserted_with_defaults_for_what_is_not_given() {
    let (_dir, _path, mut store) = new_store();
    let outcomes = import_customers(&mut store, NOW, &[full_record(), customer("C2", "Bo")]);
    assert_eq!(outcomes, [Outcome::Inserted, Outcome::Inserted]);

    let ada = store.customer("C1").unwrap().unwrap();
    assert_eq!(ada.external_id, "C1");
    assert_eq!(ada.name.as_deref(), Some("Ada Lovelace"));
    assert_eq!(ada.email.as_deref(), Some("ada@example.com"));
    assert_eq!(ada.phone.as_deref(), Some("+44 20 7946 0000"));
    assert_eq!(ada.birthday, NaiveDate::from_ymd_opt(1815, 12, 10));
    assert_eq!(ada.region.as_deref(), Some("London"));
    assert_eq!(ada.owner.as_deref(), Some("M1"));
    assert_eq!(ada.timezone.as_deref(), Some("Europe/London"));
    assert!(ada.consent_email && !ada.consent_sms && !ada.consent_phone);
    assert_eq!(
        ada.attributes,
        attributes(json!({"segment": "b2b", "employees": 12}))
    );
    assert_eq!((ada.created_at, ada.updated_at), (NOW, NOW));

    let bo = store.customer("C2").unwrap().unwrap();
    assert_eq!(bo.email, None);
    assert_eq!(bo.birthday, None);
    assert!(!bo.consent_email);
    assert!(bo.attributes.is_empty());
    assert_eq!(store.customer("C3").unwrap(), None);

    // The birthday is stored as ISO text, as the schema promises.
    let json = serde_json::to_value(&ada).unwrap();
    assert_eq!(json["birthday"], "1815-12-10");
}

#[test]
fn the_same_data_again_is_unchanged_and_keeps_updated_at() {
    let (_dir, path, mut store) = new_store();
    import_customers(&mut store, NOW, &[full_record()]);
    let before = crate::fixture::dump(&path);

    let again = import_customers(&mut store, NOW + 3600, &[full_record()]);
    assert_eq!(again, [Outcome::Unchanged]);
    let ada = store.customer("C1").unwrap().unwrap();
    assert_eq!(ada.updated_at, NOW);

    // Only the second audit row differs.
    let after = crate::fixture::dump(&path);
    let without_imports = |dump: Vec<String>| {
        dump.into_iter()
            .filter(|l| !l.starts_with("imports:"))
            .collect::<Vec<_>>()
    };
    assert_eq!(without_imports(after), without_imports(before));
}

#[test]
fn a_change_updates_and_none_keeps_what_is_stored() {
    let (_dir, _path, mut store) = new_store();
    import_customers(&mut store, NOW, &[full_record()]);

    // A file with only the e-mail column: the rest must survive.
    let email_only = CustomerRecord {
        external_id: "C1".into(),
        email: Some("ada@analytical.example".into()),
        ..CustomerRecord::default()
    };
    let later = NOW + 86_400;
    assert_eq!(
        import_customers(&mut store, later, &[email_only]),
        [Outcome::Updated]
    );

    let ada = store.customer("C1").unwrap().unwrap();
    assert_eq!(ada.email.as_deref(), Some("ada@analytical.example"));
    assert_eq!(ada.name.as_deref(), Some("Ada Lovelace"));
    assert_eq!(ada.birthday, NaiveDate::from_ymd_opt(1815, 12, 10));
    assert_eq!(ada.owner.as_deref(), Some("M1"));
    assert!(ada.consent_email, "None must keep the stored consent");
    assert_eq!(
        ada.attributes,
        attributes(json!({"segment": "b2b", "employees": 12}))
    );
    assert_eq!((ada.created_at, ada.updated_at), (NOW, later));

    // An explicit `false` is a change.
    let withdraw = CustomerRecord {
        external_id: "C1".into(),
        consent_email: Some(false),
        ..CustomerRecord::default()
    };
    assert_eq!(
        import_customers(&mut store, later, std::slice::from_ref(&withdraw)),
        [Outcome::Updated]
    );
    assert!(!store.customer("C1").unwrap().unwrap().consent_email);
    assert_eq!(
        import_customers(&mut store, later, &[withdraw]),
        [Outcome::Unchanged]
    );

    // Each field on its own counts as a change.
    let changes = [
        CustomerRecord {
            name: Some("A. Lovelace".into()),
            ..CustomerRecord::default()
        },
        CustomerRecord {
            phone: Some("+44 1".into()),
            ..CustomerRecord::default()
        },
        CustomerRecord {
            birthday: NaiveDate::from_ymd_opt(1815, 12, 11),
            ..CustomerRecord::default()
        },
        CustomerRecord {
            region: Some("Surrey".into()),
            ..CustomerRecord::default()
        },
        CustomerRecord {
            owner: Some("M2".into()),
            ..CustomerRecord::default()
        },
        CustomerRecord {
            timezone: Some("UTC".into()),
            ..CustomerRecord::default()
        },
        CustomerRecord {
            consent_sms: Some(true),
            ..CustomerRecord::default()
        },
        CustomerRecord {
            consent_phone: Some(true),
            ..CustomerRecord::default()
        },
    ];
    for change in changes {
        let change = CustomerRecord {
            external_id: "C1".into(),
            ..change
        };
        assert_eq!(
            import_customers(&mut store, later, std::slice::from_ref(&change)),
            [Outcome::Updated],
            "{change:?}"
        );
        assert_eq!(
            import_customers(&mut store, later, &[change]),
            [Outcome::Unchanged]
        );
    }
}

#[test]
fn attributes_merge_key_by_key() {
    let (_dir, _path, mut store) = new_store();
    import_customers(&mut store, NOW, &[full_record()]);

    let more = CustomerRecord {
        external_id: "C1".into(),
        attributes: attributes(json!({"employees": 40, "vip": true})),
        ..CustomerRecord::default()
    };
    assert_eq!(
        import_customers(&mut store, NOW + 1, std::slice::from_ref(&more)),
        [Outcome::Updated]
    );
    let ada = store.customer("C1").unwrap().unwrap();
    assert_eq!(
        ada.attributes,
        attributes(json!({"segment": "b2b", "employees": 40, "vip": true}))
    );
    assert_eq!(ada.updated_at, NOW + 1);

    // Keys already holding these values: nothing to do.
    assert_eq!(
        import_customers(&mut store, NOW + 2, &[more]),
        [Outcome::Unchanged]
    );
    assert_eq!(store.customer("C1").unwrap().unwrap().updated_at, NOW + 1);
}

#[test]
fn a_duplicate_id_in_one_import_is_rejected_with_the_first_line() {
    let (_dir, _path, mut store) = new_store();
    let results = import_at(
        &mut store,
        ImportKind::Customers,
        options("customers.csv"),
        NOW,
        |session| {
            vec![
                session.customer(2, &customer("C1", "Ada")),
                session.customer(3, &customer("C2", "Bo")),
                session.customer(7, &customer("C1", "Ada again")),
            ]
        },
    );
    assert!(matches!(results[0], Ok(Outcome::Inserted)));
    match &results[2] {
        Err(RowError::Rejected(rejection)) => assert_eq!(
            rejection,
            &RowRejection {
                column: Some("customer_id"),
                reason: "duplicate customer_id 'C1' (first seen on line 2)".into(),
            }
        ),
        other => panic!("expected a rejection, got {other:?}"),
    }
    assert_eq!(
        store.customer("C1").unwrap().unwrap().name.as_deref(),
        Some("Ada"),
        "the duplicate must not overwrite the first row"
    );

    // The same id in the next import is an ordinary update, not a duplicate.
    let again = import_at(
        &mut store,
        ImportKind::Customers,
        options("customers.csv"),
        NOW,
        |session| session.customer(2, &customer("C1", "Ada L.")).unwrap(),
    );
    assert_eq!(again, Outcome::Updated);
}

#[test]
fn bad_customer_rows_are_rejected_by_column() {
    let (_dir, _path, mut store) = new_store();
    let rejected = import_at(
        &mut store,
        ImportKind::Customers,
        options("customers.csv"),
        NOW,
        |session| {
            let empty_id = session.customer(2, &customer("  ", "Nobody"));
            let far_future = CustomerRecord {
                birthday: NaiveDate::from_ymd_opt(12_000, 1, 1),
                ..customer("C9", "Future")
            };
            let bad_birthday = session.customer(3, &far_future);
            [empty_id, bad_birthday].map(|result| match result {
                Err(RowError::Rejected(rejection)) => rejection.column,
                other => panic!("expected a rejection, got {other:?}"),
            })
        },
    );
    assert_eq!(rejected, [Some("customer_id"), Some("birthday")]);
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
            revenue: 0.0
        }
    );
}
