//! End-to-end tests of SMS (issue #19): follow-ups with `sms:` actions recorded into the outbox
//! and sent by the real binary through a real HTTP server on 127.0.0.1 (a stub provider that
//! records what it receives) or the folder transport, with the clock driven by `send --at` or
//! a daemon's simulated clock; the phone numbers normalised to E.164 at import.

use crate::common;

use std::path::{Path, PathBuf};
use std::time::Instant;

use common::daemon::{DEADLINE, Daemon, status};
use common::sms_provider::SmsProvider;
use common::{Run, command_in, followups_record_json, run_in};

/// One SMS a day at 09:00 UTC to every customer with SMS consent, worth sending for years (no
/// delivery-gate staleness whenever the test runs).
const RULES: &str = "\
followups:
  - id: hello-sms
    cron: \"0 9 * * *\"
    timezone: UTC
    max_delay: 3650d
    sms: { template: hello }
";

const HELLO: &str = "{# a short greeting #}\n你好 {{ customer.name }}，生日快乐！\n";

fn run(root: &Path, args: &[&str]) -> Run {
    Run::of(command_in(root).args(args))
}

/// A workspace in `dir/ws` with [`RULES`] (plus `policy`), the template [`HELLO`], `[sms]`
/// settings `sms`, and the customers of `customers_csv` imported; the SMS of 09:00 on 2 March
/// 2026 recorded into the outbox. Returns the root.
fn sms_workspace(dir: &Path, sms: &str, policy: &str, customers_csv: &str) -> PathBuf {
    sms_workspace_with(
        dir,
        sms,
        &format!("{policy}{RULES}"),
        customers_csv,
        ("2026-03-02T08:00:00Z", "2026-03-02T10:00:00Z"),
    )
}

/// [`sms_workspace`] with its own rules, the SMS recorded for `range`.
fn sms_workspace_with(
    dir: &Path,
    sms: &str,
    rules: &str,
    customers_csv: &str,
    range: (&str, &str),
) -> PathBuf {
    let root = dir.join("ws");
    run_in(dir, &["init", root.to_str().unwrap()]).assert_code(0);
    std::fs::remove_file(root.join("rules/followups.yaml")).unwrap();
    std::fs::write(root.join("rules/sms.yaml"), rules).unwrap();
    std::fs::write(root.join("templates/hello.sms.j2"), HELLO).unwrap();
    let config = std::fs::read_to_string(root.join("tiercare.toml")).unwrap();
    std::fs::write(root.join("tiercare.toml"), format!("{config}\n{sms}\n")).unwrap();
    std::fs::write(root.join("customers.csv"), customers_csv).unwrap();
    run(&root, &["import", "customers", "customers.csv"]).assert_code(0);
    run(&root, &followups_record_json(range.0, range.1)).assert_code(0);
    root
}

/// `[sms]` for the generic HTTP provider at the stub: a JSON body.
fn http_provider(stub: &SmsProvider) -> String {
    format!(
        "[sms]\nprovider = \"http\"\n\n[sms.http]\nurl = \"{}\"\n\
         fields = {{ to = \"{{to}}\", message = \"{{text}}\", reference = \"{{id}}\" }}\n\
         header_env = {{ \"x-api-key\" = \"SMS_TEST_KEY\" }}\n\
         success_field = \"status\"\nsuccess_value = \"ok\"\n",
        stub.url("/send")
    )
}

fn sql_rows(root: &Path, sql: &str) -> Vec<(String, String)> {
    let db = rusqlite::Connection::open(root.join("tiercare.db")).unwrap();
    let mut stmt = db.prepare(sql).unwrap();
    stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn send_at(root: &Path, at: &str) -> Run {
    let out = Run::of(
        command_in(root)
            .args(["send", "--at", at])
            .env("SMS_TEST_KEY", "k-123"),
    );
    out.assert_code(0);
    out
}

/// The `reference` ({id}) of each request the stub received.
fn references(stub: &SmsProvider) -> Vec<String> {
    stub.received()
        .iter()
        .map(|r| r.json()["reference"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn chinese_text_arrives_intact_as_json_with_the_key_from_the_environment() {
    let tmp = common::fast_tempdir();
    let stub = SmsProvider::start();
    let root = sms_workspace(
        tmp.path(),
        &http_provider(&stub),
        "",
        "customer_id,name,phone,region,consent_sms\nC1,李娜,138 1234 5678,CN,true\n",
    );
    let sent = send_at(&root, "2026-03-02T10:00:00Z");
    sent.assert_stdout_contains("sent 1 of 1 claimed SMS via http");
    let received = stub.received();
    assert_eq!(received.len(), 1, "{received:?}");
    let request = &received[0];
    assert_eq!(
        (request.method.as_str(), request.path.as_str()),
        ("POST", "/send")
    );
    assert_eq!(request.header("x-api-key"), Some("k-123"));
    let body = request.json();
    assert_eq!(body["to"], "+8613812345678");
    assert_eq!(body["message"], "你好 李娜，生日快乐！");
    assert!(body["reference"].as_str().unwrap().starts_with("sms-"));
    assert_eq!(
        sql_rows(&root, "SELECT state, channel FROM outbox"),
        [("sent".to_owned(), "sms".to_owned())]
    );
    // Sent once: a second run sends nothing more.
    send_at(&root, "2026-03-02T11:00:00Z");
    assert_eq!(stub.received().len(), 1);
}

#[test]
fn twilio_gets_its_form_with_basic_auth_and_the_text_intact() {
    let tmp = common::fast_tempdir();
    let stub = SmsProvider::start();
    stub.set_status(201);
    let sms = format!(
        "[sms]\nprovider = \"twilio\"\n\n[sms.twilio]\naccount_sid = \"AC123\"\n\
         auth_token_env = \"SMS_TEST_KEY\"\nfrom = \"+15550001111\"\nbase_url = \"{}\"\n",
        stub.url("")
    );
    let root = sms_workspace(
        tmp.path(),
        &sms,
        "",
        "customer_id,name,phone,consent_sms\nC1,王芳,+86 139-0000-1111,true\n",
    );
    send_at(&root, "2026-03-02T10:00:00Z");
    let received = stub.received();
    assert_eq!(received.len(), 1);
    let request = &received[0];
    assert_eq!(request.path, "/2010-04-01/Accounts/AC123/Messages.json");
    // "AC123:k-123" in base64.
    assert_eq!(
        request.header("authorization"),
        Some("Basic QUMxMjM6ay0xMjM=")
    );
    let form = request.form();
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(field("To"), Some("+8613900001111"));
    assert_eq!(field("From"), Some("+15550001111"));
    assert_eq!(field("Body"), Some("你好 王芳，生日快乐！"));
}

#[test]
fn no_sms_without_consent_and_none_to_a_suppressed_number() {
    let tmp = common::fast_tempdir();
    let stub = SmsProvider::start();
    let root = sms_workspace(
        tmp.path(),
        &http_provider(&stub),
        "",
        "customer_id,name,phone,consent_sms\n\
         C1,Ann,+44 20 7946 0001,true\n\
         C2,Bob,+44 20 7946 0002,true\n\
         C3,Cat,+44 20 7946 0003,true\n\
         C4,Dan,+44 20 7946 0004,false\n",
    );
    // C4 never agreed: the planner skipped them, nothing was queued.
    assert_eq!(
        sql_rows(
            &root,
            "SELECT f.status, f.status_reason FROM followups f JOIN customers c \
             ON c.id = f.customer_id WHERE c.external_id = 'C4'"
        ),
        [("skipped".to_owned(), "consent".to_owned())]
    );
    // After the SMS were queued: C2 withdraws consent, C3's number is suppressed.
    std::fs::write(
        root.join("withdraw.csv"),
        "customer_id,name,phone,consent_sms\nC2,Bob,+44 20 7946 0002,false\n",
    )
    .unwrap();
    run(&root, &["import", "customers", "withdraw.csv"]).assert_code(0);
    run(&root, &["unsubscribe", "+44 (20) 7946-0003"]).assert_code(0);
    send_at(&root, "2026-03-02T10:00:00Z");
    let to: Vec<String> = stub
        .received()
        .iter()
        .map(|r| r.json()["to"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(to, ["+442079460001"]);
    assert_eq!(
        sql_rows(
            &root,
            "SELECT c.external_id || ':' || o.state, coalesce(o.last_error, '') FROM outbox o \
             JOIN customers c ON c.id = o.customer_id ORDER BY c.external_id"
        ),
        [
            ("C1:sent".to_owned(), String::new()),
            (
                "C2:suppressed".to_owned(),
                "the customer does not consent to SMS".to_owned()
            ),
            (
                "C3:suppressed".to_owned(),
                "the phone number is on the suppression list".to_owned()
            ),
        ]
    );
}

#[test]
fn never_at_night_in_the_customers_zone() {
    let tmp = common::fast_tempdir();
    let stub = SmsProvider::start();
    // 09:00 on each customer's clock; sent only 09:00-20:00 there, for SMS as for email.
    let rules = "contact_policy:\n  send_window: { hours: \"09:00-20:00\" }\n\
                 followups:\n  - id: hello-sms\n    cron: \"0 9 * * *\"\n    max_delay: 3650d\n    \
                 sms: { template: hello }\n";
    let root = sms_workspace_with(
        tmp.path(),
        &http_provider(&stub),
        rules,
        "customer_id,name,phone,timezone,consent_sms\n\
         L1,Lou,+44 20 7946 0001,Europe/London,true\n\
         A1,Ana,+1 415 555 2671,America/Los_Angeles,true\n",
        ("2026-03-02T00:00:00Z", "2026-03-03T00:00:00Z"),
    );
    // 09:00 in London is 09:00 UTC; in Los Angeles 17:00 UTC: at 10:00 UTC only Lou's is due.
    send_at(&root, "2026-03-02T10:00:00Z");
    let to = |stub: &SmsProvider| -> Vec<String> {
        stub.received()
            .iter()
            .map(|r| r.json()["to"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(to(&stub), ["+442079460001"]);
    // The delivery gate holds it at night too: due (the row made due by hand), sent at 02:00
    // on her clock, it is deferred to 09:00 there, never sent.
    let db = rusqlite::Connection::open(root.join("tiercare.db")).unwrap();
    db.execute(
        "UPDATE outbox SET due_at = unixepoch('2026-03-02T10:00:00Z') WHERE to_address = '+14155552671'",
        [],
    )
    .unwrap();
    drop(db);
    send_at(&root, "2026-03-02T10:00:00Z");
    assert_eq!(to(&stub), ["+442079460001"], "an SMS at night");
    let (state, due): (String, String) = sql_rows(
        &root,
        "SELECT state, datetime(due_at, 'unixepoch') FROM outbox WHERE to_address = '+14155552671'",
    )[0]
    .clone();
    assert_eq!(
        (state.as_str(), due.as_str()),
        ("deferred", "2026-03-02 17:00:00")
    );
    // At 09:00 on her clock it goes.
    send_at(&root, "2026-03-02T17:00:00Z");
    assert_eq!(to(&stub), ["+442079460001", "+14155552671"]);
}

#[test]
fn the_folder_transport_writes_each_sms_once_even_after_a_crash_mid_send() {
    let tmp = common::fast_tempdir();
    let root = sms_workspace(
        tmp.path(),
        "",
        "",
        "customer_id,name,phone,consent_sms\nC1,Ann,+44 20 7946 0001,true\nC2,Bob,+44 20 7946 0002,true\n",
    );
    send_at(&root, "2026-03-02T10:00:00Z");
    let files = || -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(root.join("sms"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    let written = files();
    assert_eq!(written.len(), 2, "{written:?}");
    let text = std::fs::read_to_string(root.join("sms").join(&written[0])).unwrap();
    assert!(text.contains("生日快乐"), "{text}");
    // A sender killed between the hand-over and its outcome: the row is left claimed and
    // handed over. The next send resends it (same id) and the folder sees it is there.
    let db = rusqlite::Connection::open(root.join("tiercare.db")).unwrap();
    db.execute(
        "UPDATE outbox SET state = 'claimed', sent_at = NULL, claimed_at = updated_at, \
         handed_at = updated_at WHERE id = (SELECT min(id) FROM outbox)",
        [],
    )
    .unwrap();
    drop(db);
    let again = send_at(&root, "2026-03-02T11:00:00Z");
    // Found in the folder, not written again.
    again.assert_stdout_contains("1 already delivered before");
    assert_eq!(files(), written);
    assert_eq!(
        std::fs::read_to_string(root.join("sms").join(&written[0])).unwrap(),
        text
    );
    assert_eq!(
        sql_rows(
            &root,
            "SELECT state, cast(recoveries AS TEXT) FROM outbox ORDER BY id"
        ),
        [
            ("sent".to_owned(), "1".to_owned()),
            ("sent".to_owned(), "0".to_owned())
        ]
    );
}

#[test]
fn each_sms_reaches_the_provider_once_across_a_kill_9_of_the_daemon() {
    const CUSTOMERS: usize = 300;
    let tmp = common::fast_tempdir();
    let stub = SmsProvider::start();
    // A provider that takes a few milliseconds per message, so the kill lands mid-run.
    stub.set_delay_ms(3);
    let mut csv = String::from("customer_id,name,phone,consent_sms\n");
    for i in 0..CUSTOMERS {
        csv.push_str(&format!("C{i:04},Customer {i},+4420794{i:05},true\n"));
    }
    let root = sms_workspace(tmp.path(), &http_provider(&stub), "", &csv);
    let env = [("SMS_TEST_KEY", "k-123")];
    let mut first = Daemon::start_env(&root, &env, &["--simulate-from", "2026-03-02T10:00:00Z"]);
    let deadline = Instant::now() + DEADLINE;
    while stub.received().len() < 40 {
        assert!(Instant::now() < deadline, "nothing sent\n{}", first.log());
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    first.signal("KILL");
    assert_eq!(first.wait_exit(), None);
    let killed = status(&root);
    // `status` counts SMS under `sms`, apart from the e-mails under `outbox`.
    let sent_before = killed["sms"]["sent"].as_u64().unwrap_or(0);
    assert!(
        sent_before < CUSTOMERS as u64,
        "all sent before the kill: {killed:#}"
    );
    let in_flight = killed["sms"]["claimed"].as_u64().unwrap_or(0);

    let second = Daemon::start_env(&root, &env, &["--simulate-from", "2026-03-02T10:05:00Z"]);
    let done = second.wait_status(&root, "every SMS sent", |s| {
        s["sms"]["sent"].as_u64() == Some(CUSTOMERS as u64)
    });
    let ids = references(&stub);
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), CUSTOMERS, "an SMS was lost");
    // One SMS at a time: at most the one in flight at the kill can arrive twice (with the same
    // id, so a provider that deduplicates drops it), and it is reported.
    let duplicates = (ids.len() - unique.len()) as u64;
    let reported = done["outbox_recovered"].as_u64().unwrap_or(0);
    assert!(
        duplicates <= 1 && duplicates <= reported && reported <= in_flight.max(1),
        "duplicates {duplicates}, reported {reported}, in flight {in_flight}\n{}",
        second.log()
    );
    assert!(!second.log().contains("+4420794"), "a number in the log");
}

#[test]
fn check_reports_each_sms_templates_encoding_and_segments_and_refuses_a_long_one() {
    let tmp = common::fast_tempdir();
    let root = sms_workspace(
        tmp.path(),
        "[sms]\nmax_segments = 2\n",
        "",
        "customer_id,name,phone,consent_sms\nC1,Ann,+44 20 7946 0001,true\n",
    );
    std::fs::write(
        root.join("templates/plain.sms.j2"),
        "Hi {{ customer.first_name }}, your order ships today. Reply STOP to opt out. {x}\n",
    )
    .unwrap();
    let ok = run(&root, &["check"]);
    ok.assert_code(0);
    ok.assert_stdout_contains("templates/hello.sms.j2: SMS UCS-2");
    ok.assert_stdout_contains("1 segment");
    ok.assert_stdout_contains("templates/plain.sms.j2: SMS GSM-7");
    // 3 segments of Chinese with a limit of 2: an error at the file, and a follow-up naming
    // an SMS template that does not exist is one at its line.
    std::fs::write(root.join("templates/long.sms.j2"), "生日快乐".repeat(40)).unwrap();
    std::fs::write(
        root.join("rules/more.yaml"),
        "followups:\n  - id: typo\n    cron: \"0 9 * * *\"\n    sms: { template: helo }\n",
    )
    .unwrap();
    let bad = run(&root, &["check"]);
    bad.assert_code(1);
    bad.assert_stderr_contains("templates/long.sms.j2:1:1");
    bad.assert_stderr_contains("needs 3 segments");
    bad.assert_stderr_contains("rules/more.yaml:4:");
    bad.assert_stderr_contains("SMS template `helo`, which does not exist");
}

#[test]
fn import_stores_phones_in_e164_and_rejects_a_row_whose_number_cannot_be_read() {
    let tmp = common::fast_tempdir();
    let root = sms_workspace(
        tmp.path(),
        "[import]\ndefault_region = \"CN\"\n",
        "",
        "customer_id,name,phone,region\n\
         C1,Ann,138 1234 5678,\n\
         C2,Bob,(415) 555-2671,US\n\
         C3,Cat,+44 20 7946 0003,CN\n",
    );
    assert_eq!(
        sql_rows(
            &root,
            "SELECT external_id, phone FROM customers ORDER BY external_id"
        ),
        [
            ("C1".to_owned(), "+8613812345678".to_owned()),
            ("C2".to_owned(), "+14155552671".to_owned()),
            ("C3".to_owned(), "+442079460003".to_owned()),
        ]
    );
    std::fs::write(
        root.join("bad.csv"),
        "customer_id,name,phone\nC4,Dan,call me maybe\nC5,Eve,+86 139 0000 1111\n",
    )
    .unwrap();
    let out = run(&root, &["import", "customers", "bad.csv"]);
    let said = format!("{}{}", out.stdout, out.stderr);
    for needle in ["line 2", "phone", "not a phone number"] {
        assert!(said.contains(needle), "no {needle:?} in\n{said}");
    }
    assert_eq!(
        sql_rows(
            &root,
            "SELECT external_id, phone FROM customers WHERE external_id IN ('C4', 'C5')"
        ),
        [("C5".to_owned(), "+8613900001111".to_owned())]
    );
}

#[test]
fn a_429_is_retried_later_and_a_400_fails_for_good() {
    let tmp = common::fast_tempdir();
    let stub = SmsProvider::start();
    stub.set_status(429);
    let root = sms_workspace(
        tmp.path(),
        &http_provider(&stub),
        "",
        "customer_id,name,phone,consent_sms\nC1,Ann,+44 20 7946 0001,true\nC2,Bob,+44 20 7946 0002,true\n",
    );
    send_at(&root, "2026-03-02T10:00:00Z");
    assert_eq!(stub.received().len(), 2);
    let states = || {
        sql_rows(
            &root,
            "SELECT state, coalesce(last_error, '') FROM outbox ORDER BY id",
        )
    };
    assert_eq!(
        states(),
        [
            ("deferred".to_owned(), "deferred: HTTP 429".to_owned()),
            ("deferred".to_owned(), "deferred: HTTP 429".to_owned())
        ]
    );
    // Not due again at once (backoff); after it, the provider refuses the number: failed.
    send_at(&root, "2026-03-02T10:00:01Z");
    assert_eq!(stub.received().len(), 2, "retried before its backoff");
    stub.set_status(400);
    let failed = Run::of(
        command_in(&root)
            .args(["send", "--json", "--at", "2026-03-03T10:00:00Z"])
            .env("SMS_TEST_KEY", "k-123"),
    );
    failed.assert_code(1);
    assert_eq!(stub.received().len(), 4);
    // `send --json` reports the SMS run beside the emails'.
    let report = failed.json();
    assert_eq!(report["sms"]["failed"], 2, "{report}");
    assert_eq!(report["sms"]["provider"], "http", "{report}");
    assert_eq!(
        states(),
        [
            ("failed".to_owned(), "failed: HTTP 400".to_owned()),
            ("failed".to_owned(), "failed: HTTP 400".to_owned())
        ]
    );
    // A failed SMS is never sent again by `send`.
    send_at(&root, "2026-03-04T10:00:00Z");
    assert_eq!(stub.received().len(), 4);
}

/// The ledger, the report, the plan and `status` count an SMS as an SMS, never as an e-mail
/// (issue #19: SMS follow-ups were stored with the ledger kind `email`).
#[test]
fn sms_are_counted_apart_from_emails_in_the_ledger_report_plan_and_status() {
    let tmp = common::fast_tempdir();
    let stub = SmsProvider::start();
    let root = sms_workspace(
        tmp.path(),
        &http_provider(&stub),
        "",
        "customer_id,name,phone,region,consent_sms\nC1,Ann,+4915112345678,DE,true\n",
    );
    send_at(&root, "2026-03-02T10:00:00Z");
    assert_eq!(stub.received().len(), 1);
    assert_eq!(
        sql_rows(&root, "SELECT rule_id, kind FROM followups"),
        [("hello-sms".to_owned(), "sms".to_owned())]
    );

    let status = status(&root);
    assert_eq!(status["sms"]["sent"], 1, "{status:#}");
    assert_eq!(status["outbox"]["sent"], 0, "{status:#}");

    run(&root, &["assess", "--at", "2026-03-02T11:00:00Z"]).assert_code(0);
    // The outbox rows were written now (the real clock), so the report is as of now.
    let report = run(&root, &["report", "--json"]);
    report.assert_code(0);
    let report = report.json();
    assert_eq!(report["emails"], serde_json::json!([]), "{report:#}");
    assert_eq!(report["sms"][0]["rule_id"], "hello-sms", "{report:#}");
    assert_eq!(report["sms"][0]["sent"], 1, "{report:#}");

    let plan = run(
        &root,
        &[
            "plan",
            "--from",
            "2026-03-03T00:00:00Z",
            "--days",
            "2",
            "--json",
        ],
    );
    plan.assert_code(0);
    let plan = plan.json();
    assert_eq!(
        (&plan["emails"], &plan["sms"], &plan["other"]),
        (
            &serde_json::json!(0),
            &serde_json::json!(2),
            &serde_json::json!(0)
        ),
        "{plan:#}"
    );
}

#[test]
fn a_running_daemon_keeps_the_last_good_sms_template_and_swaps_in_a_good_edit() {
    let tmp = common::fast_tempdir();
    // An SMS every hour; the daemon's clock runs 600 times real time (an hour in 6 s).
    let rules = "followups:\n  - id: hourly-sms\n    cron: \"0 * * * *\"\n    timezone: UTC\n    \
                 max_delay: 3650d\n    sms: { template: hello }\n";
    let root = sms_workspace_with(
        tmp.path(),
        "",
        rules,
        "customer_id,name,phone,consent_sms\nC1,Ada,+442079460001,true\n",
        ("2026-03-02T08:00:30Z", "2026-03-02T08:00:40Z"),
    );
    let config = std::fs::read_to_string(root.join("tiercare.toml")).unwrap();
    assert!(config.contains("\n[daemon]\n"), "{config}");
    std::fs::write(
        root.join("tiercare.toml"),
        config.replace("\n[daemon]\n", "\n[daemon]\nsettle_ms = 300\n"),
    )
    .unwrap();
    let template = root.join("templates/hello.sms.j2");
    let texts = || {
        sql_rows(
            &root,
            "SELECT message_id, body_text FROM outbox ORDER BY id",
        )
    };
    let daemon = Daemon::start(
        &root,
        &["--simulate-from", "2026-03-02T08:01:00Z", "--speed", "600"],
    );
    daemon.wait_status(&root, "the daemon's first pass", |s| {
        s["running"] == true && common::unix(&s["daemon"]["last_tick_at"]).is_some()
    });
    assert!(texts().is_empty(), "{:?}", texts());

    // A misspelt variable, saved before 09:00: refused, and `status` says where.
    std::fs::write(&template, "Hi {{ customer.nmae }}!\n").unwrap();
    let failed = daemon.wait_status(&root, "the reload error", |s| {
        s["daemon"]["last_reload_error"].is_string()
    });
    let problems = failed["reload_problems"].to_string();
    assert!(
        problems.contains("templates/hello.sms.j2:1:"),
        "{failed:#}\n{}",
        daemon.log()
    );
    assert_eq!(failed["daemon"]["reloads"], 1);
    run(&root, &["status"]).assert_stdout_contains("templates/hello.sms.j2:1:");

    // 09:00 comes: the SMS is the last good template's.
    let deadline = Instant::now() + DEADLINE;
    while texts().is_empty() {
        assert!(
            Instant::now() < deadline,
            "no SMS at 09:00\n{}",
            daemon.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let first = texts();
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(first[0].1, "你好 Ada，生日快乐！");

    // A good edit is swapped in, and the 10:00 SMS is its.
    std::fs::write(&template, "Hello again, {{ customer.name }}!\n").unwrap();
    daemon.wait_status(&root, "the good edit active", |s| {
        s["daemon"]["reloads"] == 2 && s["daemon"]["last_reload_error"].is_null()
    });
    let deadline = Instant::now() + DEADLINE;
    while texts().len() < 2 {
        assert!(
            Instant::now() < deadline,
            "no SMS at 10:00\n{}",
            daemon.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(texts()[1].1, "Hello again, Ada!");
}

/// `[sms]` for Aliyun at the stub, the `hello` template mapped to `SMS_123` with the
/// customer's name as its `name` parameter.
fn aliyun_provider(stub: &SmsProvider) -> String {
    format!(
        "[sms]\nprovider = \"aliyun\"\n\n[sms.aliyun]\naccess_key_id_env = \"ALIYUN_TEST_ID\"\n\
         access_key_secret_env = \"ALIYUN_TEST_SECRET\"\nsign_name = \"天天好店\"\n\
         endpoint = \"{}\"\n\n[sms.aliyun.templates.hello]\ncode = \"SMS_123\"\n\
         params = {{ name = \"{{{{ customer.name }}}}\", shop = \"Tiercare & Co\" }}\n",
        stub.url("/")
    )
}

const ALIYUN_SECRET: &str = "s3cr3t/+=";

fn send_aliyun(root: &Path, at: &str) -> Run {
    Run::of(
        command_in(root)
            .args(["send", "--json", "--at", at])
            .env("ALIYUN_TEST_ID", "LTAI-test")
            .env("ALIYUN_TEST_SECRET", ALIYUN_SECRET),
    )
}

/// Recomputes Aliyun's RPC signature v1 of a received form body with Python's `hmac`,
/// `hashlib` and `urllib.parse`, written from Aliyun's documentation apart from tiercare's
/// code: `None` when the body's `Signature` is right, else what Python computed.
fn python_signature_mismatch(body: &str, secret: &str) -> Option<String> {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-venv/bin/python");
    assert!(
        python.exists(),
        "the tests' Python venv is missing: run `bash .ci/deps`"
    );
    const SCRIPT: &str = r#"
import base64, hashlib, hmac, sys, urllib.parse
secret = sys.argv[1]
fields = urllib.parse.parse_qsl(sys.stdin.read(), keep_blank_values=True, strict_parsing=True)
given = [v for k, v in fields if k == "Signature"]
params = sorted((k, v) for k, v in fields if k != "Signature")
enc = lambda s: urllib.parse.quote(s, safe="~")
canonical = "&".join(enc(k) + "=" + enc(v) for k, v in params)
to_sign = "POST&" + enc("/") + "&" + enc(canonical)
digest = hmac.new((secret + "&").encode(), to_sign.encode(), hashlib.sha1).digest()
expected = base64.b64encode(digest).decode()
print("OK" if given == [expected] else "expected " + expected + " got " + repr(given))
"#;
    let mut child = std::process::Command::new(python)
        .args(["-c", SCRIPT, secret])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "python failed: {out:?}");
    let said = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    (said != "OK").then_some(said)
}

#[test]
fn aliyun_gets_a_signed_send_sms_with_the_mapped_template_and_its_params() {
    let tmp = common::fast_tempdir();
    let stub = SmsProvider::start();
    stub.set_answer(
        r#"{"Message":"OK","RequestId":"F655A8D5","Code":"OK","BizId":"900619746936498440^{n}"}"#,
    );
    let root = sms_workspace(
        tmp.path(),
        &aliyun_provider(&stub),
        "",
        "customer_id,name,phone,consent_sms\nC1,李娜,+86 138 1234 5678,true\n\
         C2,Ann Lee,+44 20 7946 0001,true\n",
    );
    let sent = send_aliyun(&root, "2026-03-02T10:00:00Z");
    sent.assert_code(0);
    assert_eq!(sent.json()["sms"]["provider"], "aliyun", "{}", sent.stdout);
    assert_eq!(sent.json()["sms"]["sent"], 2, "{}", sent.stdout);
    let received = stub.received();
    assert_eq!(received.len(), 2, "{received:?}");
    let mut numbers = Vec::new();
    for request in &received {
        assert_eq!(
            (request.method.as_str(), request.path.as_str()),
            ("POST", "/")
        );
        assert_eq!(
            python_signature_mismatch(&request.body, ALIYUN_SECRET),
            None,
            "{}",
            request.body
        );
        let form = request.form();
        let field = |name: &str| {
            form.iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_else(|| panic!("no {name} in {form:?}"))
        };
        assert_eq!(field("Action"), "SendSms");
        assert_eq!(field("Version"), "2017-05-25");
        assert_eq!(field("AccessKeyId"), "LTAI-test");
        assert_eq!(field("SignatureMethod"), "HMAC-SHA1");
        assert_eq!(field("SignName"), "天天好店");
        assert_eq!(field("TemplateCode"), "SMS_123");
        assert!(field("OutId").starts_with("sms-"));
        let param: serde_json::Value = serde_json::from_str(&field("TemplateParam")).unwrap();
        let name = param["name"].as_str().unwrap().to_owned();
        assert_eq!(param["shop"], "Tiercare & Co");
        numbers.push((field("PhoneNumbers"), name));
    }
    numbers.sort();
    // Mainland numbers without +86, others with their country code and no +.
    assert_eq!(
        numbers,
        [
            ("13812345678".to_owned(), "李娜".to_owned()),
            ("442079460001".to_owned(), "Ann Lee".to_owned()),
        ]
    );
    // A wrong secret is caught by the independent check.
    assert!(python_signature_mismatch(&received[0].body, "other").is_some());
    // Sent, the BizId recorded as the provider's id; never again.
    let rows = sql_rows(&root, "SELECT state, coalesce(last_error, '') FROM outbox");
    assert!(rows.iter().all(|(state, _)| state == "sent"), "{rows:?}");
    let db = rusqlite::Connection::open(root.join("tiercare.db")).unwrap();
    let receipts: String = db
        .query_row(
            "SELECT group_concat(detail, '|') FROM outbox_events WHERE to_state = 'sent'",
            [],
            |row| row.get(0),
        )
        .unwrap_or_default();
    assert!(receipts.contains("900619746936498440^"), "{receipts}");
    send_aliyun(&root, "2026-03-02T11:00:00Z").assert_code(0);
    assert_eq!(stub.received().len(), 2);
}

#[test]
fn aliyun_throttling_is_retried_and_an_illegal_number_fails_for_good() {
    let tmp = common::fast_tempdir();
    let stub = SmsProvider::start();
    stub.set_answer(r#"{"Code":"isv.BUSINESS_LIMIT_CONTROL","Message":"触发分钟级流控"}"#);
    let root = sms_workspace(
        tmp.path(),
        &aliyun_provider(&stub),
        "",
        "customer_id,name,phone,consent_sms\nC1,Ann,+86 138 1234 5678,true\n",
    );
    let states = || {
        sql_rows(
            &root,
            "SELECT state, coalesce(last_error, '') FROM outbox ORDER BY id",
        )
    };
    send_aliyun(&root, "2026-03-02T10:00:00Z").assert_code(0);
    assert_eq!(stub.received().len(), 1);
    assert_eq!(
        states(),
        [(
            "deferred".to_owned(),
            "deferred: HTTP 200 isv.BUSINESS_LIMIT_CONTROL".to_owned()
        )]
    );
    // Retried after its backoff; Aliyun now refuses the number: failed, never sent again.
    stub.set_answer(r#"{"Code":"isv.MOBILE_NUMBER_ILLEGAL","Message":"非法手机号"}"#);
    let failed = send_aliyun(&root, "2026-03-03T10:00:00Z");
    failed.assert_code(1);
    assert_eq!(stub.received().len(), 2);
    assert_eq!(failed.json()["sms"]["failed"], 1, "{}", failed.stdout);
    assert_eq!(
        states(),
        [(
            "failed".to_owned(),
            "failed: HTTP 200 isv.MOBILE_NUMBER_ILLEGAL".to_owned()
        )]
    );
    send_aliyun(&root, "2026-03-04T10:00:00Z");
    assert_eq!(stub.received().len(), 2);
}

#[test]
fn check_reports_an_sms_rule_whose_template_aliyun_cannot_send() {
    let tmp = common::fast_tempdir();
    let stub = SmsProvider::start();
    let root = sms_workspace(
        tmp.path(),
        &aliyun_provider(&stub),
        "",
        "customer_id,name,phone,consent_sms\nC1,Ann,+44 20 7946 0001,true\n",
    );
    run(&root, &["check"]).assert_code(0);
    std::fs::write(
        root.join("templates/bye.sms.j2"),
        "Bye {{ customer.name }}\n",
    )
    .unwrap();
    std::fs::write(
        root.join("rules/more.yaml"),
        "followups:\n  - id: bye\n    cron: \"0 9 * * *\"\n    sms: { template: bye }\n",
    )
    .unwrap();
    let bad = run(&root, &["check"]);
    bad.assert_code(1);
    bad.assert_stderr_contains("rules/more.yaml:4:");
    bad.assert_stderr_contains("has no [sms.aliyun.templates.bye]");
    // Mapped, but a parameter names a variable the context lacks: an error at its section.
    let config = std::fs::read_to_string(root.join("tiercare.toml")).unwrap();
    std::fs::write(
        root.join("tiercare.toml"),
        format!(
            "{config}\n[sms.aliyun.templates.bye]\ncode = \"SMS_456\"\n\
             params = {{ name = \"{{{{ customer.nickname }}}}\" }}\n"
        ),
    )
    .unwrap();
    let param = run(&root, &["check"]);
    param.assert_code(1);
    param.assert_stderr_contains("tiercare.toml:");
    param.assert_stderr_contains("[sms.aliyun.templates.bye] parameter `name` does not render");
    assert!(
        !param.stderr.contains("has no [sms.aliyun"),
        "{}",
        param.stderr
    );
}

#[test]
fn aliyun_without_an_answer_in_time_is_unknown_not_resent() {
    let tmp = common::fast_tempdir();
    let stub = SmsProvider::start();
    stub.set_answer(r#"{"Code":"OK","BizId":"1^{n}"}"#);
    stub.set_delay_ms(2500);
    let sms = aliyun_provider(&stub).replace(
        "provider = \"aliyun\"\n",
        "provider = \"aliyun\"\ntimeout_seconds = 1\n",
    );
    let root = sms_workspace(
        tmp.path(),
        &sms,
        "",
        "customer_id,name,phone,consent_sms\nC1,Ann,+86 138 1234 5678,true\n",
    );
    let out = send_aliyun(&root, "2026-03-02T10:00:00Z");
    assert_eq!(out.json()["sms"]["unknown"], 1, "{}", out.stdout);
    let rows = sql_rows(&root, "SELECT state, coalesce(last_error, '') FROM outbox");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].0, "unknown", "{rows:?}");
    send_aliyun(&root, "2026-03-03T10:00:00Z");
    assert_eq!(stub.received().len(), 1);
}
