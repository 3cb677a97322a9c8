//! Outgoing webhooks against a real receiver on loopback: Python's `http.server` in the tests'
//! venv, checking every signature with the `standardwebhooks` package (independent of
//! tiercare's signing). Events are queued by the real binary (`assess`, the daemon's sends) and
//! delivered by the daemon's dispatcher; nothing sleeps to wait, each test polls what the
//! receiver recorded or `tiercare status --json` until a deadline.

use crate::common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::daemon::{DEADLINE, Daemon, status};
use common::run_in;
use serde_json::Value;

/// The endpoint's signing secret (the Standard Webhooks libraries' example).
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const SECRET_ENV: &str = "TIERCARE_TEST_WEBHOOK_SECRET";

/// The receiver, killed at drop.
struct Receiver {
    child: Child,
    folder: PathBuf,
    port: u16,
}

impl Receiver {
    fn start(folder: &Path) -> Receiver {
        let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-venv/bin/python");
        let ready = Command::new(&python)
            .args(["-c", "import standardwebhooks"])
            .status()
            .is_ok_and(|status| status.success());
        assert!(
            ready,
            "the tests' Python venv lacks the `standardwebhooks` package: run `bash .ci/deps`"
        );
        std::fs::create_dir_all(folder).unwrap();
        let script = folder.join("receiver.py");
        std::fs::write(&script, include_str!("webhooks_receiver.py")).unwrap();
        let child = Command::new(&python)
            .arg(&script)
            .arg(SECRET)
            .arg(folder)
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + DEADLINE;
        let port = loop {
            if let Ok(text) = std::fs::read_to_string(folder.join("port")) {
                break text.trim().parse().unwrap();
            }
            assert!(Instant::now() < deadline, "the receiver did not start");
            std::thread::sleep(Duration::from_millis(20));
        };
        Receiver {
            child,
            folder: folder.to_owned(),
            port,
        }
    }

    fn set_mode(&self, mode: &str) {
        std::fs::write(self.folder.join("mode"), mode).unwrap();
    }

    /// Every request received so far, in order.
    fn received(&self) -> Vec<Value> {
        std::fs::read_to_string(self.folder.join("received.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }

    /// Polls until `ok` holds for what was received.
    fn wait(&self, daemon: &Daemon, what: &str, ok: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let received = self.received();
            if ok(&received) {
                return received;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}\n--- received\n{received:#?}\n--- log\n{}",
                daemon.log()
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Points the workspace's webhook endpoint `crm` at `port`, for tier changes and sent emails,
/// retried a second later.
fn configure(root: &Path, port: u16) {
    let config = std::fs::read_to_string(root.join("tiercare.toml")).unwrap();
    let config = match config.find("\n[[webhooks]]") {
        Some(at) => config[..at].to_owned(),
        None => config,
    };
    std::fs::write(
        root.join("tiercare.toml"),
        format!(
            "{config}\n[[webhooks]]\nname = \"crm\"\nurl = \"http://127.0.0.1:{port}/hooks/tiercare\"\n\
             events = [\"tier.changed\", \"email.sent\"]\nsecret_env = \"{SECRET_ENV}\"\n\
             timeout_seconds = 5\nretry_base_seconds = 1\nretry_max_seconds = 2\n"
        ),
    )
    .unwrap();
}

fn daemon(root: &Path) -> Daemon {
    Daemon::start_with_env(root, "info", &[], &[(SECRET_ENV, SECRET)])
}

/// The event ids the database queued, by type.
fn queued_events(root: &Path) -> Vec<(String, String)> {
    let conn = rusqlite::Connection::open(root.join("tiercare.db")).unwrap();
    let mut stmt = conn
        .prepare("SELECT event_id, type FROM webhook_events ORDER BY id")
        .unwrap();
    stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn endpoint(status: &Value) -> &Value {
    &status["webhooks"][0]
}

/// A workspace with `customers` customers (their emails queued, long due), assessed: each got
/// a first tier, a `tier.changed` event queued for the endpoint at `port`.
fn assessed_workspace(dir: &Path, customers: usize, port: u16) -> PathBuf {
    let root = common::mail_workspace(dir, customers, None);
    configure(&root, port);
    run_in(&root, &["assess", "--at", "2026-03-01"]).assert_code(0);
    root
}

#[test]
fn tier_changes_and_sent_emails_arrive_signed_as_standard_webhooks() {
    let tmp = common::fast_tempdir();
    let receiver = Receiver::start(&tmp.path().join("receiver"));
    let root = assessed_workspace(tmp.path(), 3, receiver.port);
    let tiers = queued_events(&root);
    assert_eq!(tiers.len(), 3, "one tier change per customer: {tiers:?}");

    let mut daemon = daemon(&root);
    // The daemon sends the three emails (folder transport); each sent email is an event too.
    let received = receiver.wait(&daemon, "3 tier changes and 3 sent emails", |received| {
        received.len() >= 6
    });
    daemon.wait_status(&root, "every event delivered", |s| {
        endpoint(s)["delivered"] == 6 && endpoint(s)["queued"] == 0
    });
    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(), Some(0));

    assert_eq!(received.len(), 6, "{received:#?}");
    for request in &received {
        assert_eq!(
            request["valid"], true,
            "a signature did not verify: {request:#}"
        );
        assert_eq!(request["content_type"], "application/json");
        let kind = request["body"]["type"].as_str().unwrap();
        assert!(
            ["tier.changed", "email.sent"].contains(&kind),
            "{request:#}"
        );
    }
    let ids: Vec<&str> = received.iter().map(|r| r["id"].as_str().unwrap()).collect();
    let queued: Vec<(String, String)> = queued_events(&root);
    assert_eq!(
        ids,
        queued.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>(),
        "each event once, in the order queued"
    );
    let tier = &received[0]["body"];
    assert_eq!(tier["type"], "tier.changed");
    assert!(
        tier["timestamp"]
            .as_str()
            .unwrap()
            .starts_with("2026-03-01T"),
        "{tier:#}"
    );
    assert!(tier["data"]["customer"].as_str().unwrap().starts_with('C'));
    assert!(tier["data"]["from_tier"].is_null() && tier["data"]["to_tier"].is_string());
    let sent: Vec<&Value> = received
        .iter()
        .filter(|r| r["body"]["type"] == "email.sent")
        .collect();
    assert_eq!(sent.len(), 3);
    let email = &sent[0]["body"]["data"];
    assert!(
        email["message_id"].as_str().unwrap().starts_with('<'),
        "{email:#}"
    );
    assert_eq!(email["rule"], "hello");
    // No customer's address (c0000@example.com, ...) in a body or the log.
    let bodies = serde_json::to_string(&received).unwrap();
    let log = daemon.log();
    for i in 0..3 {
        let address = format!("c{i:04}@example.com");
        assert!(!bodies.contains(&address), "an address in a body: {bodies}");
        assert!(!log.contains(&address), "an address in the log: {log}");
    }
}

#[test]
fn a_receiver_answering_500_gets_the_same_event_again_later() {
    let tmp = common::fast_tempdir();
    let receiver = Receiver::start(&tmp.path().join("receiver"));
    receiver.set_mode("fail");
    let root = assessed_workspace(tmp.path(), 1, receiver.port);
    let daemon = daemon(&root);
    let failing = daemon.wait_status(&root, "the endpoint failing", |s| {
        endpoint(s)["failing"]["last_error"] == "HTTP 500"
    });
    assert!(
        endpoint(&failing)["failing"]["next_attempt_at"].is_string(),
        "{failing:#}"
    );
    assert_eq!(endpoint(&failing)["delivered"], 0);

    receiver.set_mode("ok");
    daemon.wait_status(&root, "the event delivered", |s| {
        endpoint(s)["delivered"].as_u64() >= Some(1) && endpoint(s)["failing"].is_null()
    });
    let received = receiver.received();
    let first = &received[0];
    let delivered = received.iter().find(|r| r["status"] == 200).unwrap();
    assert_eq!(first["status"], 500);
    assert_eq!(
        delivered["id"], first["id"],
        "the retry carries the same webhook-id"
    );
    assert_eq!(delivered["body"], first["body"], "and the same body");
    assert!(received.iter().all(|r| r["valid"] == true), "{received:#?}");
    let log = daemon.log();
    assert!(
        log.contains("webhook failed; will retry") && log.contains("HTTP 500"),
        "{log}"
    );
}

#[test]
fn kill_9_with_the_receiver_down_then_mid_delivery_loses_no_event() {
    let tmp = common::fast_tempdir();
    // Phase 1: the endpoint's port has no listener.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let down_port = closed.local_addr().unwrap().port();
    drop(closed);
    let root = assessed_workspace(tmp.path(), 20, down_port);
    let mut first = daemon(&root);
    first.wait_status(&root, "the endpoint failing", |s| {
        endpoint(s)["failing"]["attempts"].as_u64() >= Some(1)
    });
    first.signal("KILL");
    first.wait_exit();

    // Phase 2: the receiver is up but slow; kill -9 again while events are being delivered.
    let receiver = Receiver::start(&tmp.path().join("receiver"));
    receiver.set_mode("slow");
    configure(&root, receiver.port);
    let mut second = daemon(&root);
    receiver.wait(&second, "a few events", |received| received.len() >= 5);
    second.signal("KILL");
    second.wait_exit();

    // Phase 3: a restart delivers the rest.
    receiver.set_mode("ok");
    let third = daemon(&root);
    let queued = queued_events(&root);
    assert!(
        queued.len() >= 40,
        "20 tier changes and 20 sent emails: {}",
        queued.len()
    );
    third.wait_status(&root, "every event delivered", |s| {
        endpoint(s)["queued"] == 0 && status_total(s) == queued.len() as u64
    });
    let received = receiver.received();
    let mut times: HashMap<&str, usize> = HashMap::new();
    for request in &received {
        assert_eq!(request["valid"], true, "{request:#}");
        *times.entry(request["id"].as_str().unwrap()).or_default() += 1;
    }
    for (id, kind) in &queued {
        assert!(
            times.contains_key(id.as_str()),
            "{kind} event {id} never arrived"
        );
    }
    assert_eq!(times.len(), queued.len(), "only queued events arrive");
    let duplicates = received.len() - times.len();
    assert!(
        duplicates <= 1,
        "only the request in flight at the kill may arrive twice: {duplicates} duplicates"
    );
    let last = status(&root);
    assert_eq!(endpoint(&last)["dead"], 0, "{last:#}");
}

fn status_total(status: &Value) -> u64 {
    endpoint(status)["delivered"].as_u64().unwrap_or(0)
}

#[test]
fn a_dead_event_is_shown_queued_again_by_hand_and_test_sends_are_signed() {
    let tmp = common::fast_tempdir();
    let receiver = Receiver::start(&tmp.path().join("receiver"));
    receiver.set_mode("fail");
    let root = assessed_workspace(tmp.path(), 1, receiver.port);
    let config = std::fs::read_to_string(root.join("tiercare.toml")).unwrap();
    std::fs::write(
        root.join("tiercare.toml"),
        config + "give_up_after = \"1s\"\n",
    )
    .unwrap();
    // The tier change and the sent email's event both fail until given up.
    let daemon = daemon(&root);
    daemon.wait_status(&root, "both events dead", |s| {
        endpoint(s)["dead"] == 2 && endpoint(s)["queued"] == 0
    });
    let listed = run_in(&root, &["webhooks", "list", "--state", "dead", "--json"]);
    listed.assert_code(0);
    let dead = listed.json();
    let dead = dead.as_array().unwrap();
    assert_eq!(dead.len(), 2);
    assert!(
        dead.iter().all(|d| d["last_error"] == "HTTP 500"),
        "{dead:#?}"
    );
    let shown = run_in(&root, &["status"]);
    shown.assert_stdout_contains("webhook crm: queued 0, delivered 0, dead 2");

    receiver.set_mode("ok");
    let retried = run_in(&root, &["webhooks", "retry", "--json"]);
    retried.assert_code(0);
    assert_eq!(retried.json()["retried"], 2);
    daemon.wait_status(&root, "the events delivered", |s| {
        endpoint(s)["delivered"] == 2
    });
    let received = receiver.received();
    for event in dead {
        assert!(
            received
                .iter()
                .any(|r| r["id"] == event["event_id"] && r["status"] == 200),
            "{event:#} not delivered after the retry"
        );
    }

    // A test event, outside the queue, signed with the same secret.
    let test = common::command_in(&root)
        .args(["webhooks", "test", "crm"])
        .env(SECRET_ENV, SECRET)
        .output()
        .unwrap();
    assert!(
        test.status.success(),
        "{}",
        String::from_utf8_lossy(&test.stderr)
    );
    let received = receiver.received();
    let last = received.last().unwrap();
    assert_eq!(
        (&last["body"]["type"], &last["valid"]),
        (&Value::from("webhook.test"), &Value::from(true))
    );
    // Without the secret it says which variable to set.
    let missing = run_in(&root, &["webhooks", "test", "crm"]);
    missing.assert_code(2);
    missing.assert_stderr_contains(SECRET_ENV);
}
