//! Data rights end to end: `tiercare customer show|export|forget` on the quickstart data, with
//! emails in the outbox.

use crate::common;

use common::Workspace;
use serde_json::Value;

/// C005 has orders, two complaints and feedback in the quickstart files.
const ID: &str = "C005";

fn email_and_name(ws: &Workspace) -> (String, String) {
    ws.query_one("SELECT email, name FROM customers WHERE external_id = 'C005'")
}

/// A queued and a sent email to C005, as the outbox holds them.
fn add_emails(ws: &Workspace, email: &str, name: &str) {
    let conn = rusqlite::Connection::open(ws.path("tiercare.db")).unwrap();
    let customer: i64 = conn
        .query_row(
            "SELECT id FROM customers WHERE external_id = ?1",
            [ID],
            |r| r.get(0),
        )
        .unwrap();
    for (n, state, sent_at) in [(1, "queued", None), (2, "sent", Some(1_760_000_100_i64))] {
        conn.execute(
            "INSERT INTO outbox (customer_id, rule_id, template, recipient_kind, to_address, \
             message_id, subject, body_text, body_html, state, due_at, attempts, created_at, \
             sent_at, updated_at) VALUES (?1, 'c-care-mail', 'care', 'customer', ?2, ?3, ?4, ?5, \
             ?6, ?7, 1760000000, 0, 1760000000, ?8, 1760000000)",
            rusqlite::params![
                customer,
                email,
                format!("<m{n}@tiercare.invalid>"),
                format!("Hello {name}"),
                format!("Dear {name}"),
                format!("<p>Dear {name}</p>"),
                state,
                sent_at,
            ],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO outbox_events (outbox_id, at, from_state, to_state, detail) \
             VALUES (last_insert_rowid(), 1760000000, NULL, 'queued', ?1)",
            [format!("to {email}")],
        )
        .unwrap();
    }
}

#[test]
fn show_and_export_cover_everything_held() {
    let ws = Workspace::with_quickstart();
    ws.run(&["assess", "--at", "2025-11-01"]).assert_code(0);
    let (email, name) = email_and_name(&ws);
    add_emails(&ws, &email, &name);

    let show = ws.run(&["customer", "show", ID]);
    show.assert_code(0);
    show.assert_stdout_contains(&format!("customer {ID}"));
    show.assert_stdout_contains(&email);
    show.assert_stdout_contains("complaints: 2 (1 open)");
    show.assert_stdout_contains("emails: 2");
    show.assert_stdout_contains("feedback: 1 (mean score");

    let export = ws.run(&["customer", "export", ID]).json();
    assert_eq!(export["customer"]["external_id"], ID);
    assert_eq!(export["customer"]["email"], email.as_str());
    let count = |key: &str| export[key].as_array().map_or(0, Vec::len);
    assert!(count("orders") > 0);
    assert!(export["orders"][0]["lines"].is_array());
    assert_eq!(count("complaints"), 2);
    assert_eq!(count("feedback"), 1);
    assert_eq!(count("emails"), 2);
    assert_eq!(count("email_events"), 2);
    assert!(export["tier"]["tier"].is_string(), "{}", export["tier"]);
    assert!(count("tier_history") >= 1);
    assert_eq!(export["email_suppressed"], false);

    let unknown = ws.run(&["customer", "export", "NOPE"]);
    unknown.assert_code(2);
    unknown.assert_stderr_contains("NOPE");
}

#[test]
fn forget_erases_personal_data_cancels_mail_suppresses_the_address_once() {
    let ws = Workspace::with_quickstart();
    ws.run(&["assess", "--at", "2025-11-01"]).assert_code(0);
    let (email, name) = email_and_name(&ws);
    add_emails(&ws, &email, &name);
    let orders_before = ws.count("SELECT count(*) FROM orders");

    let run = ws.run(&["customer", "forget", ID, "--by", "dpo", "--json"]);
    run.assert_code(0);
    let report = run.json();
    assert_eq!(report["already_forgotten"], false);
    assert_eq!(report["profile_erased"], true);
    assert_eq!(report["emails_cancelled"], 1);
    assert_eq!(report["emails_erased"], 2);
    assert_eq!(report["addresses_suppressed"], 1);
    assert!(
        report["free_texts_erased"].as_u64().unwrap() >= 3,
        "{report}"
    );

    // Nothing personal is left anywhere in what is held, and nothing in the database mentions
    // the name or the address.
    let export = ws.run(&["customer", "export", ID]);
    export.assert_code(0);
    assert!(!export.stdout.contains(&email), "{}", export.stdout);
    assert!(!export.stdout.contains(&name), "{}", export.stdout);
    let json: Value = export.json();
    assert_eq!(
        json["email_suppressed"], false,
        "no address left to look up"
    );
    assert_eq!(
        json["emails"].as_array().unwrap().len(),
        0,
        "unlinked from the customer"
    );
    for (table, column) in [
        ("customers", "name"),
        ("customers", "email"),
        ("outbox", "to_address"),
        ("outbox", "subject"),
        ("outbox", "body_text"),
        ("outbox_events", "detail"),
        ("complaints", "subject"),
        ("feedback", "comment"),
    ] {
        let hits = ws.count(&format!(
            "SELECT count(*) FROM {table} WHERE {column} LIKE '%{}%' OR {column} LIKE '%{}%'",
            email.replace('\'', "''"),
            name.replace('\'', "''")
        ));
        assert_eq!(hits, 0, "{table}.{column} still holds personal data");
    }
    // Pending mail is cancelled with an event; the sent one stays sent, erased.
    assert_eq!(
        ws.count("SELECT count(*) FROM outbox WHERE state = 'cancelled' AND customer_id IS NULL"),
        1
    );
    assert_eq!(
        ws.count("SELECT count(*) FROM outbox_events WHERE to_state = 'cancelled'"),
        1
    );
    assert_eq!(
        ws.count("SELECT count(*) FROM outbox WHERE state = 'sent' AND body_html IS NULL"),
        1
    );
    // The address is suppressed by hash only; the business facts stay.
    let hash: String =
        ws.query_one("SELECT address_hash FROM suppressions WHERE reason = 'forgotten'");
    assert_eq!(hash, tiercare_store::address_hash(&email));
    assert_eq!(ws.count("SELECT count(*) FROM orders"), orders_before);
    // One audit row, without personal data.
    let (by, detail): (String, String) =
        ws.query_one("SELECT by_whom, detail FROM privacy_requests");
    assert_eq!(by, "dpo");
    assert!(
        !detail.contains(&email) && !detail.contains(&name),
        "{detail}"
    );

    // Forgetting again changes nothing: no new audit row, no new suppression.
    let again = ws.run(&["customer", "forget", ID]);
    again.assert_code(0);
    again.assert_stdout_contains("nothing to erase");
    assert_eq!(ws.count("SELECT count(*) FROM privacy_requests"), 1);
    assert_eq!(ws.count("SELECT count(*) FROM suppressions"), 1);

    // A later import with the same address does not bring it back, nor the consent.
    let reimport = ws.write(
        "again.csv",
        &format!("customer_id,email,consent_email\n{ID},{email},true\n"),
    );
    let run = ws.run(&["import", "customers", &reimport]);
    run.assert_code(0);
    run.assert_stdout_contains("1 kept forgotten");
    let json = ws.run(&["customer", "export", ID]).json();
    assert_eq!(json["customer"]["email"], Value::Null);
    assert_eq!(json["customer"]["consent_email"], 0);
}

/// The personal fields of customer `id`, as stored, as a JSON array.
fn personal_fields(ws: &Workspace, id: &str) -> String {
    ws.query_one(&format!(
        "SELECT json_array(name, email, phone, birthday, attributes, consent_email, \
         consent_sms, consent_phone) FROM customers WHERE external_id = '{id}'"
    ))
}

#[test]
fn a_forgotten_customer_stays_forgotten_when_the_same_file_is_imported_again() {
    let ws = Workspace::with_quickstart();
    let (email, name) = email_and_name(&ws);
    let other_before = personal_fields(&ws, "C001");
    ws.run(&["customer", "forget", ID]).assert_code(0);
    let erased = personal_fields(&ws, ID);
    assert_eq!(erased, r#"[null,null,null,null,"{}",0,0,0]"#);

    // The whole customers file again, as a nightly sync would.
    let run = ws.run(&[
        "import",
        "customers",
        &common::quickstart("customers"),
        "--json",
    ]);
    run.assert_code(0);
    let report = run.json();
    assert_eq!(report["kept_forgotten"], 1, "{report}");
    let text = ws.run(&["import", "customers", &common::quickstart("customers")]);
    text.assert_code(0);
    text.assert_stdout_contains("forgotten");
    text.assert_stdout_contains("1 kept forgotten");

    // Name, email, phone, birthday, attributes and consents stay erased; the others are
    // imported as before.
    assert_eq!(personal_fields(&ws, ID), erased);
    assert_eq!(personal_fields(&ws, "C001"), other_before);
    let hits = ws.count(&format!(
        "SELECT count(*) FROM customers WHERE email = '{}' OR name = '{}'",
        email.replace('\'', "''"),
        name.replace('\'', "''")
    ));
    assert_eq!(hits, 0, "the import wrote the forgotten customer back");
    // The address stays on the suppression list (by hash), and forgetting again finds
    // nothing to erase.
    assert_eq!(
        ws.count(&format!(
            "SELECT count(*) FROM suppressions WHERE reason = 'forgotten' AND address_hash = '{}'",
            tiercare_store::address_hash(&email)
        )),
        1
    );
    ws.run(&["customer", "forget", ID])
        .assert_stdout_contains("nothing to erase");
    assert_eq!(ws.count("SELECT count(*) FROM privacy_requests"), 1);
}

#[test]
fn an_email_being_sent_is_left_alone_and_erased_by_a_second_forget() {
    let ws = Workspace::with_quickstart();
    let (email, name) = email_and_name(&ws);
    add_emails(&ws, &email, &name);
    let conn = rusqlite::Connection::open(ws.path("tiercare.db")).unwrap();
    conn.execute(
        "UPDATE outbox SET state = 'claimed', claimed_at = 1760000050 WHERE state = 'queued'",
        [],
    )
    .unwrap();
    let run = ws.run(&["customer", "forget", ID, "--json"]);
    run.assert_code(0);
    run.assert_stderr_contains("were being sent and were left alone");
    let report = run.json();
    assert_eq!(report["emails_in_flight"], 1);
    assert_eq!(report["emails_cancelled"], 0);
    assert_eq!(report["emails_erased"], 1);
    // The sender finishes; the next forget erases that email too.
    conn.execute(
        "UPDATE outbox SET state = 'sent', sent_at = 1760000060 WHERE state = 'claimed'",
        [],
    )
    .unwrap();
    let again = ws.run(&["customer", "forget", ID, "--json"]).json();
    assert_eq!(again["emails_erased"], 1, "{again}");
    assert_eq!(again["emails_in_flight"], 0);
    assert_eq!(
        ws.count(&format!(
            "SELECT count(*) FROM outbox WHERE to_address = '{}'",
            email.replace('\'', "''")
        )),
        0
    );
    assert_eq!(ws.count("SELECT count(*) FROM privacy_requests"), 2);
}

/// Customer `id`'s interactions, complaints and feedback without their free text (kinds,
/// times, severities, scores), as one JSON array.
fn event_facts(ws: &Workspace, id: &str) -> String {
    ws.query_one(&format!(
        "SELECT json_array( \
           (SELECT json_group_array(json_array(i.external_id, i.kind, i.occurred_at, i.by_manager)) \
              FROM interactions i JOIN customers c ON c.id = i.customer_id \
              WHERE c.external_id = '{id}' ORDER BY i.external_id), \
           (SELECT json_group_array(json_array(k.external_id, k.opened_at, k.resolved_at, k.severity)) \
              FROM complaints k JOIN customers c ON c.id = k.customer_id \
              WHERE c.external_id = '{id}' ORDER BY k.external_id), \
           (SELECT json_group_array(json_array(f.external_id, f.given_at, f.score)) \
              FROM feedback f JOIN customers c ON c.id = f.customer_id \
              WHERE c.external_id = '{id}' ORDER BY f.external_id))"
    ))
}

/// Customer `id`'s notes, complaint subjects and feedback comments still stored.
fn free_texts(ws: &Workspace, id: &str) -> i64 {
    ws.count(&format!(
        "SELECT (SELECT count(*) FROM interactions i JOIN customers c ON c.id = i.customer_id \
                  WHERE c.external_id = '{id}' AND i.note IS NOT NULL) \
              + (SELECT count(*) FROM complaints k JOIN customers c ON c.id = k.customer_id \
                  WHERE c.external_id = '{id}' AND k.subject IS NOT NULL) \
              + (SELECT count(*) FROM feedback f JOIN customers c ON c.id = f.customer_id \
                  WHERE c.external_id = '{id}' AND f.comment IS NOT NULL)"
    ))
}

#[test]
fn a_forgotten_customers_notes_subjects_and_comments_stay_erased_when_events_are_imported_again() {
    let ws = Workspace::with_quickstart();
    // The quickstart has C005's complaints and feedback; add notes about them too, one with
    // its own id and one keyed by its content.
    let notes = ws.write(
        "c005-interactions.csv",
        "interaction_id,customer_id,kind,occurred_at,by,note\n\
         I900,C005,call,2025-02-01 10:00,alice,Called about the damaged order\n\
         ,C005,email,2025-02-02 10:00,bob,Sent an apology to the home address\n",
    );
    ws.run(&["import", "interactions", &notes]).assert_code(0);
    assert_eq!(free_texts(&ws, ID), 5);
    let facts = event_facts(&ws, ID);
    let others = free_texts(&ws, "C001");
    assert!(others > 0);

    ws.run(&["customer", "forget", ID]).assert_code(0);
    assert_eq!(free_texts(&ws, ID), 0);

    // Every events file again, as a nightly sync would: the facts are imported, the text is not.
    let mut kept = 0;
    for (kind, file) in [
        ("interactions", common::quickstart("interactions")),
        ("complaints", common::quickstart("complaints")),
        ("feedback", common::quickstart("feedback")),
        ("interactions", notes.clone()),
    ] {
        let run = ws.run(&["import", kind, &file, "--json"]);
        run.assert_code(0);
        let report = run.json();
        assert_eq!(report["rejected"], 0, "{report}");
        kept += report["kept_forgotten"].as_u64().unwrap();
    }
    assert_eq!(kept, 5, "each row whose text was left out is counted");
    assert_eq!(free_texts(&ws, ID), 0, "an import wrote erased text back");
    for text in [
        "Order arrived damaged",
        "Refund delayed",
        "Too slow",
        "Called about the damaged order",
        "Sent an apology to the home address",
    ] {
        assert_eq!(
            ws.count(&format!(
                "SELECT (SELECT count(*) FROM interactions WHERE note = '{text}') \
                      + (SELECT count(*) FROM complaints WHERE subject = '{text}') \
                      + (SELECT count(*) FROM feedback WHERE comment = '{text}')"
            )),
            0,
            "{text:?} is back"
        );
    }
    // The facts stay as they were (no duplicates), and other customers keep their text.
    assert_eq!(event_facts(&ws, ID), facts);
    assert_eq!(free_texts(&ws, "C001"), others);

    // The text report says so too.
    let text = ws.run(&["import", "complaints", &common::quickstart("complaints")]);
    text.assert_code(0);
    text.assert_stdout_contains("2 kept forgotten");
}
