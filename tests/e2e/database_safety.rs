//! The database file's safety end to end, on real files: a damaged database is never written
//! (every writing command refuses it and leaves it byte for byte as it was), `backup` makes a
//! verified copy that `doctor` passes while `doctor` reports the damaged file, and `customer
//! forget` leaves no byte of the customer's personal data in the database file or its WAL.

use crate::common;

use std::path::Path;

use common::{Run, Workspace, quickstart};
use smtp_sink::{Script, SmtpSink};

/// Overwrites two pages in the middle of the database at `path` with bytes from a fixed seed
/// (xorshift), as a disk or a copy gone wrong would. The database must be checkpointed first,
/// so the pages hold what the database is.
fn damage(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    let page = 4096;
    let pages = bytes.len() / page;
    assert!(
        pages > 8,
        "a database of {pages} pages is too small to damage in the middle"
    );
    let start = pages / 2 * page;
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    for byte in &mut bytes[start..start + 2 * page] {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        *byte = state as u8;
    }
    std::fs::write(path, bytes).unwrap();
}

/// Copies the WAL into the database file and empties it, as a quiet database is.
fn checkpoint(path: &Path) {
    let conn = rusqlite::Connection::open(path).unwrap();
    let busy: i64 = conn
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| row.get(0))
        .unwrap();
    assert_eq!(busy, 0);
}

/// The bytes of the database file and of its WAL (`None` when there is none).
fn files(path: &Path) -> (Vec<u8>, Option<Vec<u8>>) {
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    (std::fs::read(path).unwrap(), std::fs::read(wal).ok())
}

/// Asserts that `run` refused a damaged database with one plain message that names what to do.
fn assert_refused(args: &[&str], run: &Run) {
    assert_eq!(
        run.code, 2,
        "{args:?} should refuse the damaged database\n--- stdout\n{}\n--- stderr\n{}",
        run.stdout, run.stderr
    );
    assert_eq!(
        run.stderr.matches("is damaged").count(),
        1,
        "{args:?}: the damage is said once\n{}",
        run.stderr
    );
    assert!(
        run.stderr.matches("malformed").count() <= 1,
        "{args:?}: SQLite's words repeat\n{}",
        run.stderr
    );
    for what_to_do in ["tiercare doctor", "tiercare backup", "nothing was written"] {
        assert!(
            run.stderr.contains(what_to_do),
            "{args:?}: the message lacks {what_to_do:?}\n{}",
            run.stderr
        );
    }
}

#[test]
fn every_writing_command_refuses_a_damaged_database_and_leaves_it_unchanged() {
    let ws = Workspace::with_quickstart();
    ws.run(&["assess", "--at", "2025-11-01"]).assert_code(0);
    ws.run(&["followups", "record", "--until", "2025-11-02"])
        .assert_code(0);
    let db = ws.path("tiercare.db");
    checkpoint(&db);
    damage(&db);
    let conn = rusqlite::Connection::open(&db).unwrap();
    let found: rusqlite::Result<String> = conn.query_row("PRAGMA quick_check", [], |r| r.get(0));
    assert!(
        !matches!(found.as_deref(), Ok("ok")),
        "the damage must be one SQLite can see"
    );
    drop(conn);
    let before = files(&db);

    let customers = quickstart("customers");
    let root = ws.root_str().to_owned();
    // Every command of src/cli.rs that writes to the database.
    let commands: Vec<Vec<&str>> = vec![
        vec!["import", "customers", &customers],
        vec!["demo", &root, "--customers", "10", "--days", "0"],
        vec!["assess", "--at", "2025-11-01"],
        vec!["pin", "C001", "A", "--reason", "key account"],
        vec!["unpin", "C001"],
        vec!["followups", "record", "--until", "2025-11-03"],
        vec!["tasks", "done", "1"],
        vec!["tasks", "snooze", "1", "--until", "2099-01-01"],
        vec!["owners", "assign"],
        vec!["run", "--once"],
        vec!["send"],
        vec!["outbox", "retry", "1"],
        vec!["outbox", "cancel", "1"],
        vec!["unsubscribe", "someone@example.com"],
        vec!["customer", "forget", "C001"],
    ];
    for args in &commands {
        let run = ws.run(args);
        assert_refused(args, &run);
        assert!(
            files(&db) == before,
            "{args:?} changed the damaged database or its WAL"
        );
    }
    // Commands that only read may read what they can (that is how data is rescued), and say
    // the database is damaged when they hit a broken page; they write nothing either.
    let readers: [&[&str]; 5] = [
        &["customer", "show", "C001"],
        &["explain", "C001"],
        &["report"],
        &["status"],
        &["outbox", "list"],
    ];
    for args in readers {
        let run = ws.run(args);
        if run.code != 0 {
            assert_eq!(
                run.stderr.matches("is damaged").count(),
                1,
                "{args:?}: a failed read says the database is damaged, once\n{}",
                run.stderr
            );
        }
        assert!(
            files(&db) == before,
            "{args:?} changed the damaged database or its WAL"
        );
    }
}

#[test]
fn backup_makes_a_verified_copy_that_passes_doctor_and_doctor_reports_damage() {
    let ws = Workspace::with_quickstart();
    ws.run(&["assess", "--at", "2025-11-01"]).assert_code(0);
    let copy = ws.path("backup.db");
    let copy = copy.to_str().unwrap();

    // A writer in the middle of a transaction, as the daemon may be: the backup neither waits
    // for it nor copies what it has not committed.
    let writer = rusqlite::Connection::open(ws.path("tiercare.db")).unwrap();
    writer
        .execute_batch(
            "BEGIN IMMEDIATE; INSERT INTO managers (external_id, name, active, created_at, \
             updated_at) VALUES ('UNCOMMITTED', 'Not yet', 1, 0, 0);",
        )
        .unwrap();
    let run = ws.run(&["backup", copy]);
    run.assert_code(0);
    run.assert_stdout_contains("verified");
    run.assert_stdout_contains("bytes");
    writer.execute_batch("COMMIT").unwrap();
    drop(writer);
    let copied = rusqlite::Connection::open(copy).unwrap();
    let uncommitted: i64 = copied
        .query_row(
            "SELECT count(*) FROM managers WHERE external_id = 'UNCOMMITTED'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(uncommitted, 0, "the copy is the snapshot before the write");
    drop(copied);
    // Never over an existing file, unless asked.
    let again = ws.run(&["backup", copy]);
    again.assert_code(2);
    again.assert_stderr_contains("--force");
    let json = ws.run(&["backup", copy, "--force", "--json"]);
    json.assert_code(0);
    assert!(json.json()["bytes"].as_u64().unwrap() > 0);

    let doctor = ws.run(&["doctor", copy]);
    doctor.assert_code(0);
    doctor.assert_stdout_contains("healthy");
    let report = ws.run(&["doctor", "--json", "--full"]).json();
    assert_eq!(report["healthy"], true, "{report}");
    assert_eq!(report["is_tiercare"], true);
    assert_eq!(report["schema_version"], report["supported_version"]);
    assert_eq!(report["daemon"]["running"], false);

    let db = ws.path("tiercare.db");
    checkpoint(&db);
    damage(&db);
    let doctor = ws.run(&["doctor"]);
    doctor.assert_code(1);
    doctor.assert_stdout_contains("NOT HEALTHY");
    doctor.assert_stdout_contains("damaged");
    doctor.assert_stdout_contains("tiercare backup");
    doctor.assert_stdout_contains(".recover");
    let report = ws.run(&["doctor", "--json"]).json();
    assert_eq!(report["healthy"], false, "{report}");
    assert!(!report["problems"].as_array().unwrap().is_empty());

    // Restoring the copy as doctor says brings the workspace back.
    std::fs::copy(copy, &db).unwrap();
    ws.run(&["doctor"]).assert_code(0);
    ws.run(&["pin", "C001", "A", "--reason", "restored"])
        .assert_code(0);
}

/// The forgotten customer's personal data, as it is written in the files below.
const NAME: &str = "Zebediah Quillfeather";
const EMAIL: &str = "zeb.quill@example.org";
const ADDRESS: &str = "17 Marrowbone Lane, Dorking";
const PHONE: &str = "+44 1306 555 0199";

/// Where `needle` occurs in `bytes`, if anywhere.
fn find(bytes: &[u8], needle: &str) -> Option<usize> {
    bytes
        .windows(needle.len())
        .position(|window| window == needle.as_bytes())
}

/// Follow-ups for every customer: an email and a task for their owner, at 10:00 every day.
const RULES: &str = "\
followups:
  - id: hello
    tiers: [A, B, C]
    cron: \"0 10 * * *\"
    email: { template: hello }
  - id: call
    tiers: [A, B, C]
    cron: \"0 10 * * *\"
    task: { assignee: owner, title: \"Call {{ customer.name }}\", due: 3d }
";

const TEMPLATE: &str = "\
subject: Hello {{ customer.name }}
--- text
Dear {{ customer.name }},
thank you for shopping with us.
";

const SECRET_ENV: &str = "TIERCARE_TEST_UNSUBSCRIBE_SECRET";

/// Runs the binary in the workspace with the unsubscribe secret set.
fn run(ws: &Workspace, args: &[&str]) -> Run {
    Run::of(
        common::command_in(ws.root())
            .args(args)
            .env(SECRET_ENV, "a test secret that is long enough"),
    )
}

#[test]
fn forgetting_leaves_no_trace_in_the_file_or_its_wal() {
    let sink = SmtpSink::start(
        // Its 550 quotes the address, as real servers do.
        Script::accept_all().reject_rcpt(EMAIL),
    )
    .unwrap();
    let ws = Workspace::new();
    ws.write(
        "tiercare.toml",
        &format!(
            "[workspace]\ntimezone = \"UTC\"\n\n[mail]\ntransport = \"smtp\"\n\
             from = \"Care Team <care@shop.example>\"\n\
             unsubscribe_url = \"https://shop.example/unsubscribe\"\n\
             unsubscribe_secret_env = \"{SECRET_ENV}\"\n\n\
             [mail.smtp]\nhost = \"127.0.0.1\"\nport = {}\nsecurity = \"none\"\n\
             timeout_seconds = 1\n",
            sink.port()
        ),
    );
    ws.write("rules/followups.yaml", RULES);
    ws.write("templates/hello.eml.j2", TEMPLATE);
    let db = ws.path("tiercare.db");
    // A connection held open the whole time, as a running daemon holds one: the WAL is then
    // never deleted when a command ends, and keeps the page versions written since.
    let daemon_like = rusqlite::Connection::open(&db).unwrap();
    run(&ws, &["import", "managers", &quickstart("managers")]).assert_code(0);
    let customers = ws.write(
        "customers.csv",
        &format!(
            "customer_id,name,email,phone,owner,consent_email,address\n\
             C900,{NAME},{EMAIL},{PHONE},alice,true,\"{ADDRESS}\"\n\
             C901,Other Person,other@example.net,,alice,true,\"1 High Street\"\n"
        ),
    );
    run(&ws, &["import", "customers", &customers]).assert_code(0);
    let orders = ws.write(
        "orders.csv",
        "order_id,customer_id,ordered_at,amount\nO1,C900,2025-05-01,120.00\n\
         O2,C901,2025-05-02,80.00\n",
    );
    run(&ws, &["import", "orders", &orders]).assert_code(0);
    let interactions = ws.write(
        "interactions.csv",
        &format!(
            "interaction_id,customer_id,kind,occurred_at,by,note\n\
             I1,C900,call,2025-05-05 10:00,alice,\"Called {NAME} about a parcel for {ADDRESS}\"\n"
        ),
    );
    run(&ws, &["import", "interactions", &interactions]).assert_code(0);
    run(&ws, &["assess", "--at", "2025-06-02T00:00:00Z"]).assert_code(0);
    // An email and a task for each; the server refuses C900's address, quoting it, as real
    // servers do: the reply lands in the email's error, its event and its follow-up's reason.
    run(
        &ws,
        &common::followups_record_json("2025-06-02T00:00:00Z", "2025-06-03T00:00:00Z"),
    )
    .assert_code(0);
    run(&ws, &["send", "--at", "2025-06-03T00:00:00Z"]).assert_code(1);
    let bounce: String = ws.query_one(
        "SELECT status_reason FROM followups WHERE rule_id = 'hello' AND status = 'cancelled'",
    );
    assert!(
        bounce.contains(EMAIL),
        "the bounce quotes the address: {bounce}"
    );
    let task: i64 = ws.count(
        "SELECT t.id FROM tasks t JOIN customers c ON c.id = t.customer_id \
         WHERE c.external_id = 'C900'",
    );
    run(
        &ws,
        &[
            "tasks",
            "done",
            &task.to_string(),
            "--note",
            &format!("spoke to {NAME}"),
        ],
    )
    .assert_code(0);

    let forget = run(&ws, &["customer", "forget", "C900", "--json"]);
    forget.assert_code(0);

    let (file, wal) = files(&db);
    for needle in [
        NAME,
        "Zebediah",
        "Quillfeather",
        EMAIL,
        ADDRESS,
        "Marrowbone",
        PHONE,
        // as stored: E.164
        "+4413065550199",
    ] {
        if let Some(at) = find(&file, needle) {
            panic!("tiercare.db holds {needle:?} at byte {at}");
        }
        if let Some(at) = wal.as_deref().and_then(|w| find(w, needle)) {
            panic!("tiercare.db-wal holds {needle:?} at byte {at}");
        }
    }
    // The other customer is untouched, and the business facts stay.
    assert!(find(&file, "other@example.net").is_some());
    assert_eq!(ws.count("SELECT count(*) FROM orders"), 2);
    assert_eq!(forget.json()["wal_truncated"], true, "{}", forget.stdout);
    drop(daemon_like);
}
