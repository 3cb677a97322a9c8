//! Landing in the inbox (#23) on the real binary: DKIM signatures checked by an independent
//! verifier (Python's dkimpy, keys given through its `dnsfunc` hook from `tiercare mail dns`),
//! over the folder transport and through a real SMTP server on loopback (aiosmtpd); the list
//! headers; per-domain pacing against a server that answers 421 for one domain; and the
//! reputation guard that pauses sending after a burst of hard bounces.

use crate::common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Run, command_in, fast_tempdir, mail_workspace, run_in};

const SECRET_ENV: &str = "TIERCARE_TEST_UNSUBSCRIBE_SECRET";
const SECRET: &str = "a test secret that is long enough";

/// The tests' Python (`.ci/deps` makes it), or a failure saying to run `.ci/deps`.
fn python() -> PathBuf {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-venv/bin/python");
    let ready = python.exists()
        && Command::new(&python)
            .args(["-c", "import aiosmtpd, dkim, nacl"])
            .status()
            .is_ok_and(|status| status.success());
    assert!(
        ready,
        "the tests' Python venv with aiosmtpd, dkimpy and PyNaCl is missing: run `bash .ci/deps`"
    );
    python
}

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/e2e/data")
        .join(name)
}

/// Adds `lines` to the `[mail]` section and `tail` at the end of the workspace's settings.
fn configure(root: &Path, lines: &str, tail: &str) {
    let path = root.join("tiercare.toml");
    let config = std::fs::read_to_string(&path).unwrap();
    let config = config.replacen("[mail]\n", &format!("[mail]\n{lines}\n"), 1) + "\n" + tail;
    std::fs::write(path, config).unwrap();
}

/// Care emails with Chinese text in the subject and the bodies (text and HTML).
fn chinese_template(root: &Path) {
    std::fs::write(
        root.join("templates/care.eml.j2"),
        "subject: 您好 {{ customer.name }}，感谢您的惠顾\n--- text\n亲爱的 {{ customer.name }}：\n\
         感谢您一直以来的支持。祝您购物愉快！\n--- html\n<html><body><p>亲爱的 {{ customer.name }}：</p>\
         <p>感谢您一直以来的支持。</p></body></html>\n",
    )
    .unwrap();
}

fn run(root: &Path, args: &[&str]) -> Run {
    Run::of(command_in(root).args(args).env(SECRET_ENV, SECRET))
}

/// Writes `tiercare mail dns --json`'s DKIM record where the verifier reads it.
fn dns_records(root: &Path) -> PathBuf {
    let out = run(root, &["mail", "dns", "--json"]);
    out.assert_code(0);
    let records = out.json();
    let mut map = serde_json::Map::new();
    for record in records.as_array().unwrap() {
        map.insert(
            record["name"].as_str().unwrap().to_owned(),
            record["value"].clone(),
        );
    }
    assert!(
        map.keys().any(|name| name.contains("._domainkey.")),
        "no DKIM record in {records}"
    );
    let path = root.join("dns.json");
    std::fs::write(&path, serde_json::Value::Object(map).to_string()).unwrap();
    path
}

/// Runs dkimpy over `messages`; every one must verify, with List-Unsubscribe signed.
fn assert_verified(python: &Path, records: &Path, messages: &[PathBuf], one_click: bool) {
    assert!(!messages.is_empty());
    let out = Command::new(python)
        .arg(data("dkim_verify.py"))
        .arg(records)
        .args(messages)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "dkimpy refused:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in stdout.lines() {
        let signed = line.rsplit(' ').next().unwrap();
        let signed: Vec<&str> = signed.split(':').collect();
        for header in [
            "from",
            "to",
            "subject",
            "date",
            "message-id",
            "list-unsubscribe",
        ] {
            assert!(signed.contains(&header), "{header} not signed: {line}");
        }
        if one_click {
            assert!(signed.contains(&"list-unsubscribe-post"), "{line}");
        }
    }
}

fn eml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .map(|entry| entry.unwrap().path())
                .filter(|path| path.extension().is_some_and(|ext| ext == "eml"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

#[test]
fn rsa_signatures_of_the_folder_transport_verify_with_dkimpy() {
    let python = python();
    let dir = fast_tempdir();
    let root = mail_workspace(dir.path(), 3, None);
    chinese_template(&root);
    std::fs::copy(data("dkim-rsa2048.pem"), root.join("dkim.pem")).unwrap();
    configure(
        &root,
        "list_id = \"care.shop.example\"",
        "[mail.dkim]\ndomain = \"shop.example\"\nselector = \"s2026\"\nkey_file = \"dkim.pem\"\n",
    );
    // A key others can read is a warning of `check`; a private one is not.
    use std::os::unix::fs::PermissionsExt;
    let key = root.join("dkim.pem");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let check = run(&root, &["check"]);
    check.assert_code(0);
    check.assert_stderr_contains("can be read by other users: `chmod 600` it");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let check = run(&root, &["check"]);
    assert!(!check.stderr.contains("chmod"), "{}", check.stderr);
    let records = dns_records(&root);
    let dns = run(&root, &["mail", "dns"]);
    dns.assert_stdout_contains("s2026._domainkey.shop.example. IN TXT \"v=DKIM1; k=rsa; p=");
    dns.assert_stdout_contains("_dmarc.shop.example. IN TXT");
    let sent = run(&root, &["send", "--json"]);
    sent.assert_code(0);
    assert_eq!(sent.json()["sent"], 3, "{}", sent.stdout);
    let messages = eml_files(&root.join("mail"));
    assert_eq!(messages.len(), 3);
    assert_verified(&python, &records, &messages, false);
    let text = std::fs::read_to_string(&messages[0]).unwrap();
    assert!(
        text.starts_with(
            "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=shop.example; s=s2026;"
        ),
        "{text}"
    );
    assert!(
        text.contains("\r\nList-Id: <care.shop.example>\r\n"),
        "{text}"
    );
    assert!(text.contains("\r\nPrecedence: bulk\r\n"), "{text}");
    assert!(!text.contains("Auto-Submitted"), "{text}");
    // The Chinese subject and body are really there (encoded), and survive verification.
    let parsed = mail_parser::MessageParser::default()
        .parse(text.as_bytes())
        .unwrap();
    assert!(
        parsed.subject().unwrap().starts_with("您好 Customer"),
        "{:?}",
        parsed.subject()
    );
    assert!(
        parsed
            .body_text(0)
            .unwrap()
            .contains("感谢您一直以来的支持")
    );
}

/// aiosmtpd on loopback, writing what it receives into a folder.
struct Aiosmtpd {
    child: Child,
    port: u16,
    folder: PathBuf,
}

impl Aiosmtpd {
    fn start(python: &Path, folder: PathBuf) -> Aiosmtpd {
        std::fs::create_dir_all(&folder).unwrap();
        let mut child = Command::new(python)
            .arg(data("smtp_to_folder.py"))
            .arg(&folder)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("no port: {line:?}"));
        Aiosmtpd {
            child,
            port,
            folder,
        }
    }

    /// The messages received, waiting up to 10 s for `n` of them.
    fn wait_for(&self, n: usize) -> Vec<PathBuf> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let files = eml_files(&self.folder);
            if files.len() >= n || Instant::now() > deadline {
                return files;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Aiosmtpd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn ed25519_signatures_through_a_real_smtp_server_verify_with_dkimpy() {
    let python = python();
    let dir = fast_tempdir();
    let server = Aiosmtpd::start(&python, dir.path().join("received"));
    let root = mail_workspace(dir.path(), 2, Some((server.port, 1, "")));
    chinese_template(&root);
    let key = std::fs::read_to_string(data("dkim-ed25519.pem")).unwrap();
    configure(
        &root,
        &format!(
            "unsubscribe_url = \"https://shop.example/unsubscribe\"\n\
             unsubscribe_secret_env = \"{SECRET_ENV}\""
        ),
        "[mail.dkim]\nselector = \"ed1\"\nkey_env = \"TIERCARE_TEST_DKIM_KEY\"\n",
    );
    let with_key = |args: &[&str]| {
        Run::of(
            command_in(&root)
                .args(args)
                .env(SECRET_ENV, SECRET)
                .env("TIERCARE_TEST_DKIM_KEY", &key),
        )
    };
    // Without the key in the environment, sending refuses to start, saying what to set.
    let refused = run(&root, &["send"]);
    refused.assert_code(2);
    refused.assert_stderr_contains("TIERCARE_TEST_DKIM_KEY");
    let out = with_key(&["mail", "dns", "--json"]);
    out.assert_code(0);
    let record = &out.json()[0];
    // The domain defaults to the sender's (care@example.com).
    assert_eq!(
        record["name"], "ed1._domainkey.example.com",
        "{}",
        out.stdout
    );
    assert!(
        record["value"]
            .as_str()
            .unwrap()
            .starts_with("v=DKIM1; k=ed25519; p=")
    );
    let records = dir.path().join("dns.json");
    std::fs::write(
        &records,
        serde_json::json!({ "ed1._domainkey.example.com": record["value"] }).to_string(),
    )
    .unwrap();
    let sent = with_key(&["send", "--json"]);
    sent.assert_code(0);
    assert_eq!(sent.json()["sent"], 2, "{}", sent.stdout);
    let messages = server.wait_for(2);
    assert_eq!(messages.len(), 2);
    assert_verified(&python, &records, &messages, true);
}

#[test]
fn a_bad_key_is_refused_at_start_and_by_check() {
    let dir = fast_tempdir();
    let root = mail_workspace(dir.path(), 1, None);
    std::fs::write(
        root.join("dkim.pem"),
        "-----BEGIN PRIVATE KEY-----\nnot base64 at all!\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    configure(
        &root,
        "",
        "[mail.dkim]\nselector = \"s1\"\nkey_file = \"dkim.pem\"\n",
    );
    let sent = run_in(&root, &["send"]);
    sent.assert_code(2);
    sent.assert_stderr_contains("dkim.pem is not a PEM private key");
    assert_eq!(eml_files(&root.join("mail")).len(), 0, "nothing sent");
    let check = run_in(&root, &["check"]);
    check.assert_code(1);
    check.assert_stderr_contains("[mail.dkim]");
}

#[test]
fn check_warns_about_smtp_without_dkim() {
    let dir = fast_tempdir();
    let root = mail_workspace(dir.path(), 1, Some((2525, 1, "")));
    let check = run_in(&root, &["check"]);
    check.assert_code(0);
    check.assert_stderr_contains("mail goes by SMTP without DKIM");
}

/// `send --at` times, after the emails `mail_workspace`-style setups queue (09:00, 2 March 2026).
const SEND_AT: &str = "2026-03-03T00:00:00Z";

/// `common::mail_workspace_for` with one SMTP connection.
fn workspace_for(dir: &Path, addresses: &[&str], smtp: Option<(u16, &str)>) -> PathBuf {
    common::mail_workspace_for(
        dir,
        addresses,
        smtp.map(|(port, settings)| (port, 1, settings)),
    )
}

fn send_at(root: &Path, at: &str) -> serde_json::Value {
    let out = run_in(root, &["send", "--at", at, "--json"]);
    assert!(
        out.code == 0 || out.code == 1,
        "{}\n{}",
        out.stdout,
        out.stderr
    );
    out.json()
}

/// How many RCPT commands the server got for `domain`.
fn rcpts_to(sink: &smtp_sink::SmtpSink, domain: &str) -> usize {
    sink.commands()
        .iter()
        .filter(|command| {
            command.to_ascii_uppercase().starts_with("RCPT")
                && command
                    .to_ascii_lowercase()
                    .contains(&format!("@{domain}>"))
        })
        .count()
}

#[test]
fn a_421_from_one_domain_pauses_that_domain_only_and_a_restart_honours_it() {
    let sink =
        smtp_sink::SmtpSink::start(smtp_sink::Script::accept_all().throttle_domain("slow.example"))
            .unwrap();
    let dir = fast_tempdir();
    let addresses = [
        "s0@slow.example",
        "f0@fast.example",
        "s1@slow.example",
        "f1@fast.example",
        "s2@slow.example",
        "f2@fast.example",
        "s3@slow.example",
        "f3@fast.example",
    ];
    let root = workspace_for(dir.path(), &addresses, Some((sink.port(), "")));
    let report = send_at(&root, SEND_AT);
    // Every fast.example email went in the same run; slow.example was tried once.
    assert_eq!(report["sent"], 4, "{report}");
    assert_eq!(report["deferred"], 1, "{report}");
    assert_eq!(report["paced"], 3, "{report}");
    let released: i64 = rusqlite::Connection::open(root.join("tiercare.db"))
        .unwrap()
        .query_row(
            "SELECT count(*) FROM outbox_events WHERE to_state = 'queued' \
             AND detail LIKE '%receiving domain asked to slow down%'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(released, 3, "each held email says why in `outbox show`");
    assert_eq!(rcpts_to(&sink, "slow.example"), 1, "{:?}", sink.commands());
    let received = sink.received();
    assert_eq!(received.len(), 4);
    assert!(
        received
            .iter()
            .all(|m| m.rcpt_to[0].ends_with("@fast.example"))
    );
    assert!(
        report["domains_paused"][0]
            .as_str()
            .unwrap()
            .starts_with("slow.example paused until 2026-03-03 00:05 UTC (421 4.7.28; 1 in a row)"),
        "{report}"
    );
    // A new process a minute later honours the pause: slow.example is not tried.
    let report = send_at(&root, "2026-03-03T00:01:00Z");
    assert_eq!(report["sent"], 0, "{report}");
    assert_eq!(rcpts_to(&sink, "slow.example"), 1);
    let status = run_in(&root, &["status", "--json"]);
    status.assert_code(0);
    let paused = &status.json()["sending"]["domains_paused"];
    // `status` reads the real clock, long after the simulated send: the pause is over there.
    assert!(paused.as_array().unwrap().is_empty(), "{paused}");
    // Once the pause is over, slow.example gets its mail (the server accepts it again).
    sink.set_script(smtp_sink::Script::accept_all()).unwrap();
    let report = send_at(&root, "2026-03-03T01:00:00Z");
    assert_eq!(report["sent"], 4, "{report}");
    assert_eq!(sink.received().len(), 8);
    let left: i64 = rusqlite::Connection::open(root.join("tiercare.db"))
        .unwrap()
        .query_row("SELECT count(*) FROM mail_domain_pauses", [], |row| {
            row.get(0)
        })
        .unwrap();
    assert_eq!(left, 0, "a delivery forgets the domain's strikes");
}

#[test]
fn per_domain_rate_limits_hold_one_domain_and_let_the_others_flow() {
    let dir = fast_tempdir();
    let root = workspace_for(
        dir.path(),
        &[
            "a0@a.example",
            "a1@a.example",
            "a2@a.example",
            "b0@b.example",
            "b1@b.example",
            "b2@b.example",
        ],
        None,
    );
    configure(&root, "", "[mail.domains.\"a.example\"]\nper_minute = 1\n");
    let report = send_at(&root, SEND_AT);
    assert_eq!(report["sent"], 4, "{report}");
    assert_eq!(report["paced"], 2, "{report}");
    // Counted from the outbox: the next process, a second later, sends nothing to a.example.
    let report = send_at(&root, "2026-03-03T00:00:01Z");
    assert_eq!(report["sent"], 0, "{report}");
    let report = send_at(&root, "2026-03-03T00:01:00Z");
    assert_eq!(report["sent"], 1, "{report}");
}

#[test]
fn a_burst_of_hard_bounces_pauses_sending_and_status_says_why() {
    let mut script = smtp_sink::Script::accept_all();
    for i in 0..4 {
        script = script.reject_rcpt(format!("gone{i}@example.com"));
    }
    let sink = smtp_sink::SmtpSink::start(script).unwrap();
    let dir = fast_tempdir();
    let mut addresses: Vec<String> = (0..4).map(|i| format!("gone{i}@example.com")).collect();
    addresses.extend((0..6).map(|i| format!("fine{i}@example.com")));
    let addresses: Vec<&str> = addresses.iter().map(String::as_str).collect();
    let root = workspace_for(
        dir.path(),
        &addresses,
        Some((
            sink.port(),
            "[mail.outbox]\nbatch_size = 2\n\n[mail.reputation]\nmin_sends = 4\n",
        )),
    );
    // Sent now (the emails are long due): `status` reads the real clock.
    let report = run_in(&root, &["send", "--json"]).json();
    assert_eq!(report["sent"], 0, "{report}");
    assert_eq!(report["hard_bounces"], 4, "{report}");
    assert!(
        report["paused"]
            .as_str()
            .unwrap()
            .contains("hard bounces are 100.0% of the sends (4 of 4"),
        "{report}"
    );
    assert_eq!(sink.received().len(), 0, "nothing after the burst went out");
    let again = run_in(&root, &["send"]);
    again.assert_stderr_contains("sending is paused: hard bounces are 100.0% of the sends");
    assert_eq!(
        rcpts_to(&sink, "example.com"),
        4,
        "no more attempts while paused"
    );
    let status = run_in(&root, &["status"]);
    status.assert_code(0);
    status
        .assert_stdout_contains("sending is paused: hard bounces are 100.0% of the sends (4 of 4");
    status.assert_stdout_contains("hard_bounce_percent = 5");
    status.assert_stdout_contains("hello: 4 sends, 4 hard bounces");
    let figures = &run_in(&root, &["status", "--json"]).json()["sending"]["figures"];
    assert_eq!(figures["hard_bounces"], 4, "{figures}");
    // Resumed by hand, the six good addresses get their mail.
    let resumed = run_in(&root, &["outbox", "resume"]);
    resumed.assert_code(0);
    resumed.assert_stdout_contains("sending resumed");
    let report = run_in(&root, &["send", "--json"]).json();
    assert_eq!(report["sent"], 6, "{report}");
    // The report shows the rates per programme (rule) and per day.
    run_in(&root, &["assess"]).assert_code(0);
    let report = run_in(&root, &["report"]);
    report.assert_code(0);
    report.assert_stdout_contains("Sending reputation, last 30 days");
    let (_, reputation) = report.stdout.split_once("Sending reputation").unwrap();
    let line = reputation
        .lines()
        .find(|line| line.trim_start().starts_with("hello "))
        .unwrap_or_else(|| panic!("{}", report.stdout));
    assert!(line.contains(" 10 ") && line.contains("40.0%"), "{line}");
    let page = root.join("report.html");
    run_in(&root, &["report", "--out", page.to_str().unwrap()]).assert_code(0);
    let page = std::fs::read_to_string(page).unwrap();
    assert!(page.contains("Sending reputation per rule, last 30 days"));
    assert!(
        page.contains("<td>40.0%</td>"),
        "the rule's hard bounce rate in the page"
    );
}

#[test]
fn a_warm_up_caps_each_day_by_its_schedule() {
    let dir = fast_tempdir();
    let addresses: Vec<String> = (0..7).map(|i| format!("w{i}@example.com")).collect();
    let addresses: Vec<&str> = addresses.iter().map(String::as_str).collect();
    let root = workspace_for(dir.path(), &addresses, None);
    configure(
        &root,
        "",
        "[mail.warmup]\nstart = \"2026-03-03\"\ndaily = [2, 4]\n",
    );
    let day_one = send_at(&root, SEND_AT);
    assert_eq!(day_one["sent"], 2, "{day_one}");
    assert_eq!(day_one["rate_limited"], 5, "{day_one}");
    assert_eq!(send_at(&root, "2026-03-03T12:00:00Z")["sent"], 0);
    // Day two: 4 in any 24 hours.
    assert_eq!(send_at(&root, "2026-03-04T00:00:01Z")["sent"], 4);
    // After the schedule, no cap.
    assert_eq!(send_at(&root, "2026-03-05T00:00:01Z")["sent"], 1);
    // A date that is not one is refused with what to write.
    configure(&root, "", "");
    let config = std::fs::read_to_string(root.join("tiercare.toml"))
        .unwrap()
        .replace("start = \"2026-03-03\"", "start = \"March\"");
    std::fs::write(root.join("tiercare.toml"), config).unwrap();
    let refused = run_in(&root, &["send"]);
    refused.assert_code(2);
    refused.assert_stderr_contains(
        "[mail.warmup] start \"March\" must be a date such as \"2026-12-01\"",
    );
}
