//! `tiercare serve` and the web server inside `tiercare run`, with real clients on loopback:
//! curl posts the exact one-click link of a sent `.eml` (RFC 8058), a GET changes nothing, a
//! token that is not valid gets 200 and changes nothing, the preference page turns a consent
//! off, and the server of `tiercare run` stops with the daemon.

use crate::common;

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::daemon::{DEADLINE, Daemon};
use common::{command_in, fast_tempdir, followups_record_json, mail_workspace, run_in};
use mail_parser::MessageParser;

pub const SECRET_ENV: &str = "TIERCARE_UNSUBSCRIBE_SECRET";
pub const SECRET: &str = "a web test secret that is long enough";

/// A port free on loopback now (bound, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Adds `[http]` on `port` (also the public URL, on loopback) to the workspace's settings.
pub fn add_http(root: &Path, port: u16, more: &str) {
    let path = root.join("tiercare.toml");
    let config = std::fs::read_to_string(&path).unwrap()
        + &format!(
            "\n[http]\nlisten = \"127.0.0.1:{port}\"\npublic_url = \"http://127.0.0.1:{port}\"\n\
             {more}"
        );
    std::fs::write(path, config).unwrap();
}

/// `tiercare serve` in the background, killed at drop if still running.
pub struct Server {
    child: Child,
    log: PathBuf,
}

impl Server {
    /// Starts it in `root` and waits for its "listening on" line.
    pub fn start(root: &Path) -> Server {
        Server::start_env(root, &[])
    }

    /// The same, with the environment variables `vars` set too.
    pub fn start_env(root: &Path, vars: &[(&str, &str)]) -> Server {
        let log = root.with_extension("serve.log");
        let mut child = command_in(root)
            .arg("serve")
            .env(SECRET_ENV, SECRET)
            .envs(vars.iter().copied())
            .env("TIERCARE_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start tiercare serve");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(
            line.starts_with("listening on http://127.0.0.1:"),
            "{line:?}\n--- log\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        Server { child, log }
    }

    /// Everything it logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// curl with `args`: the status code and the body.
pub fn curl(args: &[&str]) -> (u16, String) {
    let output = Command::new("curl")
        .args(["-s", "-S", "--max-time", "10", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("the web tests need curl: install the tests' prerequisites with `bash .ci/deps`");
    assert!(output.status.success(), "curl {args:?} failed: {output:?}");
    let text = String::from_utf8(output.stdout).unwrap();
    let (body, code) = text.rsplit_once('\n').unwrap();
    (code.parse().unwrap(), body.to_owned())
}

/// The one-click link of each `.eml` in `folder`, with the message's plain text.
pub fn links(folder: &Path) -> Vec<(String, String)> {
    let mut files: Vec<_> = std::fs::read_dir(folder)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "eml"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|file| {
            let raw = std::fs::read(file).unwrap();
            let message = MessageParser::default().parse(&raw).unwrap();
            let header = |name: &str| {
                message
                    .header_raw(name)
                    .unwrap_or_else(|| panic!("no {name} in {}", file.display()))
                    .trim()
                    .to_owned()
            };
            assert_eq!(
                header("List-Unsubscribe-Post"),
                "List-Unsubscribe=One-Click"
            );
            let value = header("List-Unsubscribe").replace(['\r', '\n'], "");
            let url = value
                .split(['<', '>'])
                .find(|part| part.starts_with("http"))
                .unwrap_or_else(|| panic!("no HTTP link in {value}"))
                .trim()
                .to_owned();
            (url, message.body_text(0).unwrap().into_owned())
        })
        .collect()
}

pub fn suppressions(root: &Path) -> i64 {
    let db = rusqlite::Connection::open(root.join("tiercare.db")).unwrap();
    db.query_row("SELECT count(*) FROM suppressions", [], |row| row.get(0))
        .unwrap()
}

pub fn send(root: &Path) -> serde_json::Value {
    let run = Command::new(env!("CARGO_BIN_EXE_tiercare"))
        .current_dir(root)
        .env_remove("TIERCARE_HOME")
        .env(SECRET_ENV, SECRET)
        .args(["send", "--json"])
        .output()
        .unwrap();
    assert!(run.status.success(), "{run:?}");
    serde_json::from_slice(&run.stdout).unwrap()
}

#[test]
fn curl_posting_the_exact_link_of_a_sent_eml_suppresses_before_the_next_send() {
    let dir = fast_tempdir();
    let root = mail_workspace(dir.path(), 3, None);
    let port = free_port();
    add_http(&root, port, "");
    let sent = send(&root);
    assert_eq!(sent["sent"], 3, "{sent}");
    let links = links(&root.join("mail"));
    assert_eq!(links.len(), 3);
    for (url, text) in &links {
        assert!(
            url.starts_with(&format!("http://127.0.0.1:{port}/unsubscribe?token=")),
            "{url}"
        );
        // The body's link is exactly the header's.
        assert!(
            text.contains("To unsubscribe from these emails, open ")
                && text.split_whitespace().any(|word| word == url),
            "{text}"
        );
    }
    let db = rusqlite::Connection::open(root.join("tiercare.db")).unwrap();
    let customer_of = |url: &str| -> String {
        let token = url.split("token=").nth(1).unwrap();
        let outbox: i64 = token.split('.').nth(1).unwrap().parse().unwrap();
        db.query_row(
            "SELECT c.external_id FROM outbox o JOIN customers c ON c.id = o.customer_id \
             WHERE o.id = ?1",
            [outbox],
            |row| row.get(0),
        )
        .unwrap()
    };

    let server = Server::start(&root);
    // A GET (a link scanner, a browser) shows the button and changes nothing.
    let (code, page) = curl(&[&links[0].0]);
    assert_eq!(code, 200);
    assert!(page.contains("<form method=\"post\""), "{page}");
    assert!(
        page.contains("name=\"List-Unsubscribe\" value=\"One-Click\""),
        "{page}"
    );
    assert!(!page.contains("<script"), "{page}");
    assert_eq!(suppressions(&root), 0);

    // Tokens that are not valid: 200, nothing changes.
    let forged = links[0].0.replacen("token=", "token=0", 1);
    for url in [
        forged.as_str(),
        &format!("http://127.0.0.1:{port}/unsubscribe?token=nonsense"),
        &format!("http://127.0.0.1:{port}/unsubscribe"),
    ] {
        let (code, _) = curl(&["-X", "POST", "--data", "List-Unsubscribe=One-Click", url]);
        assert_eq!(code, 200, "{url}");
    }
    assert_eq!(suppressions(&root), 0);

    // The mailbox provider's one-click POST of the exact link: suppressed at once.
    let (code, _) = curl(&[
        "-X",
        "POST",
        "--data",
        "List-Unsubscribe=One-Click",
        &links[0].0,
    ]);
    assert_eq!(code, 200);
    assert_eq!(suppressions(&root), 1);
    // The same POST as multipart/form-data (RFC 8058 allows both), for another customer.
    let (code, _) = curl(&["-F", "List-Unsubscribe=One-Click", &links[1].0]);
    assert_eq!(code, 200);
    assert_eq!(suppressions(&root), 2);
    // Stored under a keyed hash, never the plain SHA-256 of the address.
    for i in 0..3 {
        let plain = tiercare_store::address_hash(&format!("c{i}@example.com"));
        let found: i64 = db
            .query_row(
                "SELECT count(*) FROM suppressions WHERE address_hash = ?1",
                [&plain],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(found, 0);
    }
    let reasons: Vec<String> = db
        .prepare("SELECT reason || ':' || source FROM suppressions")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(reasons, ["unsubscribe:web:one-click"; 2]);

    // The preference page of the third: stop email (the consent), through the page's form.
    let preferences = links[2].0.replacen("/unsubscribe?", "/preferences?", 1);
    let (code, page) = curl(&[&preferences]);
    assert_eq!(code, 200);
    assert!(page.contains("name=\"stop\" value=\"email\""), "{page}");
    let (code, page) = curl(&["--data", "stop=email", &preferences]);
    assert_eq!(code, 200);
    assert!(page.contains("You do not receive our emails."), "{page}");
    let third = customer_of(&links[2].0);
    let consent: i64 = db
        .query_row(
            "SELECT consent_email FROM customers WHERE external_id = ?1",
            [&third],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(consent, 0);

    // The next emails: nobody who unsubscribed or withdrew consent is sent one.
    let recorded = run_in(
        &root,
        &followups_record_json("2026-03-03T08:00:00Z", "2026-03-03T10:00:00Z"),
    );
    recorded.assert_code(0);
    // The planner leaves out the customer who withdrew consent; the outbox's claim skips the
    // two unsubscribed addresses.
    assert_eq!(recorded.json()["queued"], 2, "{}", recorded.stdout);
    let sent = send(&root);
    assert_eq!(sent["sent"], 0, "{sent}");
    assert_eq!(sent["suppressed"], 2, "{sent}");

    // Stopping email on the page also suppressed the address: a later import of the shop's
    // export, which still says consent_email=true, turns the column back on but cannot make
    // tiercare write to them again.
    assert_eq!(suppressions(&root), 3);
    run_in(&root, &["import", "customers", "customers.csv"]).assert_code(0);
    let recorded = run_in(
        &root,
        &followups_record_json("2026-03-10T08:00:00Z", "2026-03-10T10:00:00Z"),
    );
    recorded.assert_code(0);
    let sent = send(&root);
    assert_eq!(sent["sent"], 0, "{sent}");

    // The access log names routes, never tokens or addresses.
    let log = server.log();
    assert!(log.contains("route=/unsubscribe"), "{log}");
    assert!(!log.contains("token="), "{log}");
    assert!(!log.contains("@example.com"), "{log}");
}

#[test]
fn the_server_inside_run_stops_with_the_daemon() {
    let dir = fast_tempdir();
    let root = mail_workspace(dir.path(), 1, None);
    let port = free_port();
    add_http(&root, port, "language = \"zh-CN\"\n");
    let mut daemon = Daemon::start_env(&root, &[(SECRET_ENV, SECRET)], &[]);
    let url = format!("http://127.0.0.1:{port}/unsubscribe?token=x");
    let deadline = Instant::now() + DEADLINE;
    let page = loop {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            let (code, page) = curl(&[&url]);
            assert_eq!(code, 200);
            break page;
        }
        assert!(
            Instant::now() < deadline,
            "the server did not start\n{}",
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(page.contains("<html lang=\"zh-CN\">"), "{page}");
    assert!(page.contains("退订"), "{page}");
    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(), Some(0), "{}", daemon.log());
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "still listening after the daemon stopped"
    );
    assert!(
        !daemon.lines_with("web server stopped").is_empty(),
        "{}",
        daemon.log()
    );
}

#[test]
fn serve_without_the_secret_says_what_to_set() {
    let dir = fast_tempdir();
    let root = mail_workspace(dir.path(), 1, None);
    add_http(&root, free_port(), "");
    let run = common::Run::of(command_in(&root).arg("serve").env_remove(SECRET_ENV));
    run.assert_code(2);
    run.assert_stderr_contains("TIERCARE_UNSUBSCRIBE_SECRET");
}
