//! Manual tier pins: replacing, expiring, removing, refusing.

use tiercare_store::{Pin, StoreError};

use crate::fixture::{NOW, dump, new_store, seed_customers};

const HOUR: i64 = 3600;

fn pin(tier: &str, reason: &str, created_at: i64, until: Option<i64>) -> Pin {
    Pin {
        tier: tier.into(),
        reason: reason.into(),
        pinned_by: "mia".into(),
        created_at,
        until,
        removed_at: None,
    }
}

#[test]
fn pinning_again_replaces_the_active_pin() {
    let (_dir, _path, mut store) = new_store();
    seed_customers(&mut store, &["ann", "bob"]);
    let ann = store.customer("ann").unwrap().unwrap().id;

    let first = store
        .pin_tier("ann", "A", "key account", "mia", None, NOW)
        .unwrap();
    assert_eq!(first, pin("A", "key account", NOW, None));
    let second = store
        .pin_tier("ann", " B ", " downsized ", " mia ", None, NOW + HOUR)
        .unwrap();
    assert_eq!(second, pin("B", "downsized", NOW + HOUR, None));

    let active = store.active_pins(NOW + 2 * HOUR).unwrap();
    assert_eq!(active.len(), 1);
    assert_eq!(active[&ann], second);
    assert_eq!(
        store.pins_of("ann").unwrap(),
        [
            second,
            Pin {
                removed_at: Some(NOW + HOUR),
                ..first
            }
        ]
    );
    assert!(store.pins_of("bob").unwrap().is_empty());
}

#[test]
fn a_pin_expires_at_its_until() {
    let (_dir, _path, mut store) = new_store();
    seed_customers(&mut store, &["ann"]);
    let ann = store.customer("ann").unwrap().unwrap().id;
    let until = NOW + 10 * HOUR;
    let pinned = store
        .pin_tier("ann", "A", "trial", "mia", Some(until), NOW)
        .unwrap();
    assert!(pinned.is_active(until - 1));
    assert!(!pinned.is_active(until));
    assert_eq!(store.active_pins(until - 1).unwrap()[&ann], pinned);
    assert!(store.active_pins(until).unwrap().is_empty());

    // Nothing to unpin once it expired; the pin stays as it was.
    assert_eq!(store.unpin_tier("ann", until + HOUR).unwrap(), None);
    assert_eq!(store.pins_of("ann").unwrap(), std::slice::from_ref(&pinned));

    // A new pin closes the expired one at its own end.
    let next = store
        .pin_tier("ann", "B", "renewed", "mia", None, until + 2 * HOUR)
        .unwrap();
    assert_eq!(
        store.pins_of("ann").unwrap(),
        [
            next,
            Pin {
                removed_at: Some(until),
                ..pinned
            }
        ]
    );
}

#[test]
fn unpinning_removes_the_active_pin() {
    let (_dir, _path, mut store) = new_store();
    seed_customers(&mut store, &["ann"]);
    let pinned = store
        .pin_tier(
            "ann",
            "A",
            "key account",
            "mia",
            Some(NOW + 100 * HOUR),
            NOW,
        )
        .unwrap();
    let removed = store.unpin_tier("ann", NOW + HOUR).unwrap();
    let expected = Pin {
        removed_at: Some(NOW + HOUR),
        ..pinned
    };
    assert_eq!(removed, Some(expected.clone()));
    assert!(!expected.is_active(NOW + HOUR));
    assert!(store.active_pins(NOW + HOUR).unwrap().is_empty());
    assert_eq!(store.unpin_tier("ann", NOW + 2 * HOUR).unwrap(), None);
    assert_eq!(store.pins_of("ann").unwrap(), [expected]);
}

#[test]
fn bad_pins_and_unknown_customers_are_refused_and_write_nothing() {
    let (_dir, path, mut store) = new_store();
    seed_customers(&mut store, &["ann"]);
    let before = dump(&path);

    let err = store
        .pin_tier("nobody", "A", "why", "mia", None, NOW)
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::UnknownCustomer { id } if id == "nobody"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "unknown customer 'nobody': no customer has this id; customer ids are the `customer_id` \
         values of your customer imports (check the spelling and case, or import the customer \
         first)"
    );
    assert!(matches!(
        store.unpin_tier("nobody", NOW),
        Err(StoreError::UnknownCustomer { .. })
    ));
    assert!(matches!(
        store.pins_of("nobody"),
        Err(StoreError::UnknownCustomer { .. })
    ));

    let refused = [
        (("A", "  ", "mia", None), "a pin needs a reason"),
        (("", "why", "mia", None), "the tier is empty"),
        (("A", "why", "", None), "say who pins the tier"),
        (("A", "why", "mia", Some(NOW)), "which is not after now"),
    ];
    for ((tier, reason, by, until), message) in refused {
        let err = store
            .pin_tier("ann", tier, reason, by, until, NOW)
            .unwrap_err();
        assert!(
            matches!(&err, StoreError::InvalidPin { id, .. } if id == "ann"),
            "{err:?}"
        );
        let text = err.to_string();
        assert!(
            text.starts_with("cannot pin the tier of customer 'ann': ") && text.contains(message),
            "{text}"
        );
    }
    assert_eq!(dump(&path), before);
}
