//! Coupon pools: imported codes issued oldest first, one code per (pool, customer) across
//! follow-ups, an empty pool skipping the e-mail, the code given to the composer, a redemption
//! by an order once, and the report's figures.

use tiercare_store::{
    CouponRequest, EmailRecipient, FollowUpAction, FollowUpStatus, ImportKind, NewEmail,
    PlannedFollowUp, Store,
};

use crate::fixture::{NOW, import_at, options, order};
use crate::followups::email;
use crate::outbox::seed;

const DAY: i64 = 86_400;

fn with_coupon(rule: &str, customer: &str, at: i64, pool: &str) -> PlannedFollowUp {
    let mut planned = email(rule, customer, at, "gift");
    planned.action = FollowUpAction::Email {
        template: "gift".into(),
        survey: None,
        coupon: Some(CouponRequest {
            pool: pool.into(),
            pattern: None,
            value: Some("10%".into()),
            description: None,
            expires_after_days: Some(30),
        }),
    };
    planned
}

/// Records the planned follow-ups in one session; returns each one's status and reason, and
/// the code each composed e-mail carried.
fn record(
    store: &mut Store,
    planned: &[PlannedFollowUp],
) -> Vec<(FollowUpStatus, Option<String>, Option<String>)> {
    let mut session = store.begin_followups(NOW, "v1").unwrap();
    let mut out = Vec::new();
    for (n, follow_up) in planned.iter().enumerate() {
        let mut code = None;
        let mut compose = |to: &EmailRecipient| -> Result<NewEmail, String> {
            let address = to.address.clone().ok_or("no address")?;
            code = to.coupon.as_ref().map(|c| c.code.clone());
            Ok(NewEmail {
                message_id: format!("<{}.{}.{n}@test.invalid>", follow_up.key, to.customer_id),
                to_address: address,
                subject: "Gift".into(),
                text: "Hi".into(),
                html: None,
            })
        };
        let recorded = session
            .record_with_email(follow_up, Some(&mut compose))
            .unwrap();
        out.push((recorded.status, recorded.status_reason, code));
    }
    session.finish().unwrap();
    out
}

#[test]
fn imported_codes_are_issued_once_per_customer_and_an_empty_pool_skips_the_email() {
    let (_dir, _path, mut store) = crate::fixture::new_store();
    seed(&mut store); // ann (address, consent), cyd (no address)
    let codes = [
        (2, "G-1".to_owned()),
        (3, "G-2".to_owned()),
        (4, "G-1".to_owned()),
    ];
    let imported = store.import_coupons("gift", &codes, NOW).unwrap();
    assert_eq!((imported.added, imported.unchanged), (2, 0));
    assert_eq!(imported.rejected.len(), 1);
    assert!(
        imported.rejected[0].1.contains("row 2"),
        "{:?}",
        imported.rejected
    );
    assert!(
        store
            .import_coupons("other", &[(2, "G-2".into())], NOW)
            .unwrap()
            .rejected[0]
            .1
            .contains("pool 'gift'")
    );

    let first = record(&mut store, &[with_coupon("r1", "ann", NOW, "gift")]);
    assert_eq!(first[0].0, FollowUpStatus::Planned);
    assert_eq!(first[0].2.as_deref(), Some("G-1"), "the oldest code first");
    // Another rule's e-mail of the same pool carries the same code; no address: no code taken.
    let second = record(
        &mut store,
        &[
            with_coupon("r2", "ann", NOW + DAY, "gift"),
            with_coupon("r1", "cyd", NOW, "gift"),
        ],
    );
    assert_eq!(second[0].2.as_deref(), Some("G-1"));
    assert_eq!(second[1].0, FollowUpStatus::Skipped);
    assert_eq!(store.coupons_of("ann").unwrap().len(), 1);
    assert!(store.coupons_of("cyd").unwrap().is_empty());
    let pools = store.coupon_pools(NOW, &["gift"]).unwrap();
    assert_eq!((pools[0].available, pools[0].issued), (1, 1));

    // Take the last code, then the pool is empty: skipped with the reason, nothing queued.
    store
        .import_coupons("tiny", &[(1, "T-1".into())], NOW)
        .unwrap();
    seed_more(&mut store);
    let third = record(
        &mut store,
        &[
            with_coupon("r1", "dan", NOW, "tiny"),
            with_coupon("r1", "eve", NOW, "tiny"),
        ],
    );
    assert_eq!(third[0].2.as_deref(), Some("T-1"));
    assert_eq!(third[1].0, FollowUpStatus::Skipped);
    assert!(
        third[1]
            .1
            .as_deref()
            .unwrap()
            .starts_with("coupon pool 'tiny' has no codes left"),
        "{:?}",
        third[1]
    );

    // An order with ann's code redeems it once; the report counts it with the revenue around.
    for _ in 0..2 {
        import_at(&mut store, ImportKind::Orders, options("o.csv"), NOW, |s| {
            let mut before = order("O0", "ann", NOW - 10 * DAY, 40.0);
            before.coupon_code = None;
            s.order(2, &before).unwrap();
            let mut with_code = order("O1", "ann", NOW + 5 * DAY, 80.0);
            with_code.coupon_code = Some("G-1".into());
            s.order(3, &with_code).unwrap();
            let mut stranger = order("O2", "dan", NOW + 5 * DAY, 10.0);
            stranger.coupon_code = Some("G-1".into());
            s.order(4, &stranger).unwrap();
            assert_eq!(s.redemptions().unknown, 1, "ann's code on dan's order");
        });
    }
    let ann = store.coupons_of("ann").unwrap();
    assert_eq!(ann[0].redeemed_at, Some(NOW + 5 * DAY));
    let figures = store.coupon_figures(NOW + 20 * DAY, 90).unwrap();
    let r1 = figures.iter().find(|f| f.rule_id == "r1").unwrap();
    assert_eq!((r1.issued, r1.redeemed), (2, 1));
    assert_eq!(
        (r1.redeemers_revenue_before, r1.redeemers_revenue_after),
        (40.0, 80.0)
    );
}

/// Customers dan and eve, with addresses and consent.
fn seed_more(store: &mut Store) {
    import_at(
        store,
        ImportKind::Customers,
        options("more.csv"),
        NOW,
        |s| {
            for (line, id) in (2..).zip(["dan", "eve"]) {
                s.customer(
                    line,
                    &tiercare_store::CustomerRecord {
                        external_id: id.into(),
                        email: Some(format!("{id}@example.com")),
                        consent_email: Some(true),
                        ..tiercare_store::CustomerRecord::default()
                    },
                )
                .unwrap();
            }
        },
    );
}
