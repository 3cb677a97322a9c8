//! End-to-end tests of the managers' reminders and leave: a simulated month of the demo sends
//! one digest per manager per working day at their local time, listing the tasks the database
//! holds for them (the mail folder parsed with Python's `email`); a manager on leave gets no new
//! customers, tasks or digest, and their work can be reassigned; a `kill -9` in the middle sends
//! no digest twice.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use chrono::{DateTime, Datelike, NaiveDate, Timelike, Weekday};
use chrono_tz::Tz;

use crate::common;
use common::Workspace;
use common::daemon::Daemon;

/// The tests' Python (`.ci/deps` makes it), or a failure saying to run `.ci/deps`.
fn python() -> PathBuf {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-venv/bin/python");
    assert!(
        python.exists(),
        "the tests' Python venv is missing: run `bash .ci/deps`"
    );
    python
}

/// Every message of a mail folder, parsed by Python's `email` package: `(to, date (unix),
/// subject, text)`.
const PARSE_FOLDER: &str = r#"
import email, email.policy, email.utils, json, pathlib, sys
out = []
for path in sorted(pathlib.Path(sys.argv[1]).glob("*.eml")):
    msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    body = msg.get_body(preferencelist=("plain",))
    out.append({
        "to": str(msg["To"]),
        "date": int(email.utils.parsedate_to_datetime(msg["Date"]).timestamp()),
        "subject": str(msg["Subject"]),
        "text": body.get_content() if body is not None else "",
        "message_id": str(msg["Message-ID"]),
    })
print(json.dumps(out))
"#;

#[derive(Debug)]
struct Message {
    to: String,
    date: i64,
    text: String,
    message_id: String,
}

fn parse_folder(folder: &Path) -> Vec<Message> {
    let output = Command::new(python())
        .args(["-c", PARSE_FOLDER, folder.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let parsed: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    parsed
        .as_array()
        .unwrap()
        .iter()
        .map(|m| Message {
            to: m["to"].as_str().unwrap().to_owned(),
            date: m["date"].as_i64().unwrap(),
            text: m["text"].as_str().unwrap().to_owned(),
            message_id: m["message_id"].as_str().unwrap().to_owned(),
        })
        .collect()
}

/// The task ids a digest lists under "Overdue" and "Due today".
fn listed_tasks(text: &str) -> BTreeSet<i64> {
    let mut ids = BTreeSet::new();
    let text = text.replace("\r\n", "\n");
    for block in text.split("\n\n") {
        let first = block.trim_start().lines().next().unwrap_or_default();
        if !(first.starts_with("Overdue (") || first.starts_with("Due today (")) {
            continue;
        }
        for line in block.lines().skip(1) {
            if let Some(rest) = line.trim_start().strip_prefix("- #") {
                let id: String = rest.chars().take_while(char::is_ascii_digit).collect();
                ids.insert(id.parse().unwrap());
            }
        }
    }
    ids
}

/// `(manager id, e-mail, zone)` of every manager.
fn managers(db: &rusqlite::Connection) -> Vec<(String, String, Tz)> {
    let mut stmt = db
        .prepare("SELECT external_id, email, coalesce(timezone, 'Europe/London') FROM managers")
        .unwrap();
    stmt.query_map([], |row| {
        let zone: String = row.get(2)?;
        Ok((row.get(0)?, row.get(1)?, zone.parse::<Tz>().unwrap()))
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

#[test]
fn a_simulated_month_sends_one_digest_per_manager_per_working_day_at_their_hour() {
    let tmp = tempfile::tempdir().unwrap();
    let run = common::run_in(
        tmp.path(),
        &[
            "demo",
            "shop",
            "--customers",
            "200",
            "--seed",
            "11",
            "--end",
            "2025-11-01",
            "--json",
        ],
    );
    run.assert_code(0);
    let simulated = run.json()["simulated"].clone();
    assert_eq!(
        simulated["errors"].as_array().unwrap().len(),
        0,
        "{simulated}"
    );
    let root = tmp.path().join("shop");
    let db = rusqlite::Connection::open(root.join("tiercare.db")).unwrap();
    let managers = managers(&db);
    assert!(
        managers
            .iter()
            .any(|(_, _, tz)| *tz == chrono_tz::Asia::Shanghai),
        "the demo has managers in two zones"
    );

    // The days simulated: from the end of 1 November (London) for 30 days.
    let from = DateTime::parse_from_rfc3339("2025-11-01T23:59:59Z")
        .unwrap()
        .timestamp();
    let until = from + 30 * 86_400;
    let working_days = |tz: Tz| -> BTreeSet<NaiveDate> {
        let mut days = BTreeSet::new();
        let mut day = NaiveDate::from_ymd_opt(2025, 11, 1).unwrap();
        while day <= NaiveDate::from_ymd_opt(2025, 12, 3).unwrap() {
            let slot = day
                .and_hms_opt(8, 30, 0)
                .unwrap()
                .and_local_timezone(tz)
                .unwrap()
                .timestamp();
            if !matches!(day.weekday(), Weekday::Sat | Weekday::Sun) && slot > from && slot <= until
            {
                days.insert(day);
            }
            day = day.succ_opt().unwrap();
        }
        days
    };

    let messages = parse_folder(&root.join("mail"));
    let mut digests = 0;
    for (id, address, tz) in &managers {
        // Every working day was decided once (the database's unique key), none on a weekend.
        let mut stmt = db
            .prepare(
                "SELECT local_day, created_at, outbox_id FROM manager_digests \
                 WHERE manager = ?1 ORDER BY local_day",
            )
            .unwrap();
        let decided: Vec<(String, i64, Option<i64>)> = stmt
            .query_map([id], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let days: BTreeSet<NaiveDate> = decided
            .iter()
            .map(|(day, _, _)| day.parse().unwrap())
            .collect();
        assert_eq!(days.len(), decided.len(), "{id}: a day decided twice");
        assert_eq!(days, working_days(*tz), "{id} ({tz})");
        let queued = decided
            .iter()
            .filter(|(_, _, outbox)| outbox.is_some())
            .count();

        // The e-mails they received: one per queued digest, each sent at 08:30 on their clock
        // and on its day, listing exactly the tasks the database held for them then.
        let mine: Vec<&Message> = messages.iter().filter(|m| m.to.contains(address)).collect();
        assert_eq!(mine.len(), queued, "{id}: one e-mail per queued digest");
        let mut seen_days = BTreeSet::new();
        for message in mine {
            let local = DateTime::from_timestamp(message.date, 0)
                .unwrap()
                .with_timezone(tz);
            assert_eq!(
                (local.hour(), local.minute()),
                (8, 30),
                "{id}: a digest at {local}"
            );
            assert!(seen_days.insert(local.date_naive()), "{id}: two on {local}");
            let end_of_day = local
                .date_naive()
                .succ_opt()
                .unwrap()
                .and_hms_opt(0, 0, 0)
                .unwrap()
                .and_local_timezone(*tz)
                .unwrap()
                .timestamp();
            let mut stmt = db
                .prepare(
                    "SELECT id FROM tasks WHERE assignee = ?1 AND created_at <= ?2 \
                     AND due_at < ?3 AND (done_at IS NULL OR done_at > ?2)",
                )
                .unwrap();
            let expected: BTreeSet<i64> = stmt
                .query_map(rusqlite::params![id, message.date, end_of_day], |row| {
                    row.get(0)
                })
                .unwrap()
                .map(Result::unwrap)
                .collect();
            assert_eq!(
                listed_tasks(&message.text),
                expected,
                "{id} on {local}:\n{}",
                message.text
            );
            digests += 1;
        }
    }
    assert!(digests >= 20, "{digests} digests");
}

/// A second senior manager beside the quickstart's alice, with little spare capacity.
const DORA: &str = "manager_id,name,email,role,capacity,active\n\
    dora,Dora Li,dora@example.com,senior,10,true\n";

const BIG_BUYER: &str = "customer_id,name,email,timezone,consent_email\n\
    N001,New Big Buyer,big@example.com,Europe/London,true\n";
const BIG_ORDER: &str =
    "order_id,customer_id,ordered_at,amount\nN-O1,N001,2025-05-01 10:00,90000\n";

#[test]
fn a_manager_on_leave_gets_no_new_customers_or_tasks_and_their_work_can_be_reassigned() {
    let ws = Workspace::with_quickstart();
    for (kind, name, text) in [
        ("managers", "dora.csv", DORA),
        ("customers", "new.csv", BIG_BUYER),
        ("orders", "new-orders.csv", BIG_ORDER),
    ] {
        let file = ws.write(name, text);
        ws.run(&["import", kind, &file]).assert_code(0);
    }
    ws.run(&["assess", "--at", "2025-06-02"]).assert_code(0);
    // alice is on leave from June on, until further notice.
    ws.run(&["managers", "leave", "alice", "--from", "2025-06-01"])
        .assert_code(0);
    let alice_tasks_before = ws.count("SELECT count(*) FROM tasks WHERE assignee = 'alice'");

    let out = ws.run(&common::followups_record_json("2025-06-02", "2025-07-02"));
    out.assert_code(0);
    // The new key account went to the available senior manager, not to alice (who has the
    // most spare capacity).
    let owner: String = ws.query_one("SELECT owner FROM customers WHERE external_id = 'N001'");
    assert_eq!(owner, "dora");
    // No new task for alice: her customers' reviews went to dora.
    assert_eq!(
        ws.count("SELECT count(*) FROM tasks WHERE assignee = 'alice'"),
        alice_tasks_before
    );
    let for_alices_customers = ws.count(
        "SELECT count(*) FROM tasks t JOIN customers c ON c.id = t.customer_id \
         WHERE c.owner = 'alice' AND t.assignee = 'dora'",
    );
    assert!(
        for_alices_customers >= 1,
        "alice's customers' tasks go to dora"
    );

    // Her customers move to dora with --customers; then she owns none.
    let moved = ws
        .run(&[
            "managers",
            "reassign",
            "alice",
            "--to",
            "dora",
            "--customers",
            "--json",
        ])
        .json();
    assert!(
        !moved["customers"].as_array().unwrap().is_empty(),
        "{moved}"
    );
    assert_eq!(
        ws.count("SELECT count(*) FROM customers WHERE owner = 'alice'"),
        0
    );
    assert_eq!(
        ws.count("SELECT count(*) FROM tasks WHERE assignee = 'alice' AND status <> 'done'"),
        0
    );
    // Reassigning to a manager who is away is refused, and writes nothing.
    ws.run(&["managers", "deactivate", "dora"]).assert_code(0);
    let refused = ws.run(&["managers", "reassign", "bob", "--to", "dora"]);
    refused.assert_code(2);
    refused.assert_stderr_contains("inactive");
}

#[test]
fn a_kill_9_in_the_middle_sends_no_digest_twice() {
    let tmp = tempfile::tempdir().unwrap();
    common::run_in(
        tmp.path(),
        &[
            "demo",
            "shop",
            "--customers",
            "120",
            "--seed",
            "5",
            "--end",
            "2025-11-02",
            "--days",
            "0",
        ],
    )
    .assert_code(0);
    let root = tmp.path().join("shop");
    let db_path = root.join("tiercare.db");
    let digests = || {
        rusqlite::Connection::open(&db_path)
            .unwrap()
            .query_row("SELECT count(*) FROM manager_digests", [], |row| {
                row.get::<_, i64>(0)
            })
            .unwrap_or(0)
    };
    // Monday 3 November, a simulated minute per real second from 08:29 London: the London
    // managers' digests fall due a minute in. Killed as soon as one is decided.
    let mut daemon = Daemon::start(
        &root,
        &["--simulate-from", "2025-11-03T08:29:00Z", "--speed", "60"],
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while digests() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "no digest decided\n{}",
            daemon.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    daemon.signal("KILL");
    daemon.wait_exit();
    // Started again later the same day, and again: every digest decided and sent once.
    for at in ["2025-11-03T09:00:00Z", "2025-11-03T12:00:00Z"] {
        common::run_in(&root, &["run", "--once", "--simulate-from", at]).assert_code(0);
    }
    let db = rusqlite::Connection::open(&db_path).unwrap();
    let managers = managers(&db);
    let messages = parse_folder(&root.join("mail"));
    let mut per_manager: BTreeMap<&str, usize> = BTreeMap::new();
    for message in &messages {
        if let Some((id, _, _)) = managers.iter().find(|(_, a, _)| message.to.contains(a)) {
            *per_manager.entry(id).or_default() += 1;
        }
    }
    let queued: i64 = db
        .query_row(
            "SELECT count(*) FROM manager_digests WHERE outbox_id IS NOT NULL",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert!(queued >= 1);
    assert_eq!(
        per_manager.values().sum::<usize>() as i64,
        queued,
        "{per_manager:?}"
    );
    assert!(per_manager.values().all(|n| *n == 1), "{per_manager:?}");
    let ids: BTreeSet<&str> = messages.iter().map(|m| m.message_id.as_str()).collect();
    assert_eq!(ids.len(), messages.len());
    // `status` counts them.
    let status = common::run_in(&root, &["status"]);
    status.assert_code(0);
    status.assert_stdout_contains(&format!(
        "managers' digests (24 h to the last tick): {queued} sent"
    ));
}
