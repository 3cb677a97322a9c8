//! The recipient's pages of `tiercare serve` in a real browser: headless Chromium, driven
//! through chromedriver (WebDriver over loopback, spoken here with a few lines of HTTP), with
//! JavaScript switched off and a phone's screen. The unsubscribe button of a sent email's
//! link works (the address is suppressed), the preference page turns the email consent off,
//! every element fits the phone's width, and the pages render in English and in Simplified
//! Chinese as the browser's language asks.
//!
//! Chromium and chromedriver are Debian's `chromium` and `chromium-driver`, installed by
//! `.ci/deps`; when they are missing the test fails saying so.

use crate::common;
use crate::serve::{SECRET, SECRET_ENV, Server, add_http, free_port, links};

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::daemon::DEADLINE;
use common::{fast_tempdir, mail_workspace};
use serde_json::{Value, json};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
/// The phone's width in CSS pixels.
const PHONE_WIDTH: u32 = 360;

/// One HTTP/1.1 exchange with chromedriver; the answer's JSON `value`.
fn webdriver(port: u16, method: &str, path: &str, body: Option<Value>) -> Value {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    // chromedriver keeps the connection open: read the head, then Content-Length bytes.
    let mut answer = Vec::new();
    let mut byte = [0u8; 1];
    while !answer.ends_with(b"\r\n\r\n") {
        assert_eq!(
            stream.read(&mut byte).unwrap(),
            1,
            "chromedriver closed early"
        );
        answer.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&answer).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .map(|value| value.trim().parse().unwrap())
        .unwrap_or_else(|| panic!("{method} {path}: no Content-Length\n{head}"));
    let mut content = vec![0u8; length];
    stream.read_exact(&mut content).unwrap();
    let decoded = String::from_utf8(content).unwrap();
    let answer = &decoded;
    let value: Value = serde_json::from_str(&decoded)
        .unwrap_or_else(|err| panic!("{method} {path}: {err}\n{answer}"));
    value["value"].clone()
}

/// chromedriver on a free port, killed at drop.
struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    fn start() -> Driver {
        for path in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                Path::new(path).exists(),
                "the browser test needs {path}: install the tests' prerequisites with \
                 `bash .ci/deps` (Debian's `chromium` and `chromium-driver` packages, as root), \
                 as the README's test command does."
            );
        }
        let port = free_port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let driver = Driver { child, port };
        let deadline = Instant::now() + DEADLINE;
        while TcpStream::connect(("127.0.0.1", port)).is_err()
            || webdriver(port, "GET", "/status", None)["ready"] != true
        {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        driver
    }

    /// A headless Chromium session on a phone's screen, JavaScript off, asking for `languages`.
    fn session(&self, languages: &str) -> Session {
        let profile = tempfile::tempdir().unwrap();
        // With JavaScript off, chromedriver cannot tell when a page has loaded (it asks the
        // page): it is told not to wait, and the test polls for what it expects instead.
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "pageLoadStrategy": "none",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--no-first-run",
                    format!("--user-data-dir={}", profile.path().display()),
                    format!("--lang={}", languages.split(',').next().unwrap()),
                ],
                "prefs": {
                    "intl.accept_languages": languages,
                    "profile.managed_default_content_settings.javascript": 2,
                },
            },
        }}});
        let value = webdriver(self.port, "POST", "/session", Some(capabilities));
        let id = value["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {value}"))
            .to_owned();
        let session = Session {
            port: self.port,
            id,
            _profile: profile,
        };
        // A phone's screen (headless windows are at least 500 pixels wide). Not chromedriver's
        // mobile emulation: its touch clicks never reach a page without JavaScript.
        session.call(
            "POST",
            "/goog/cdp/execute",
            Some(
                json!({"cmd": "Emulation.setDeviceMetricsOverride", "params": {
                    "width": PHONE_WIDTH, "height": 740, "deviceScaleFactor": 3, "mobile": false,
                }}),
            ),
        );
        session
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Session {
    port: u16,
    id: String,
    _profile: tempfile::TempDir,
}

impl Session {
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        webdriver(
            self.port,
            method,
            &format!("/session/{}{path}", self.id),
            body,
        )
    }

    fn open(&self, url: &str) {
        self.call("POST", "/url", Some(json!({ "url": url })));
    }

    fn find_all(&self, css: &str) -> Vec<String> {
        let found = self.call(
            "POST",
            "/elements",
            Some(json!({"using": "css selector", "value": css})),
        );
        found
            .as_array()
            .map_or(&[][..], Vec::as_slice)
            .iter()
            .map(|element| element[ELEMENT].as_str().unwrap().to_owned())
            .collect()
    }

    fn find(&self, css: &str) -> String {
        let all = self.find_all(css);
        assert_eq!(all.len(), 1, "{css}");
        all.into_iter().next().unwrap()
    }

    /// Waits (polling, with the deadline) until the element `css` has the text `expected`.
    fn wait_text(&self, css: &str, expected: &str) {
        let deadline = Instant::now() + DEADLINE;
        loop {
            // The page may be replaced between two calls (a navigation under way): an element
            // found a moment ago may be gone, which is "not yet".
            if let [element] = &self.find_all(css)[..]
                && self.call("GET", &format!("/element/{element}/text"), None) == expected
            {
                return;
            }
            assert!(Instant::now() < deadline, "{css} never read {expected:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn lang(&self) -> String {
        let html = self.find("html");
        self.call("GET", &format!("/element/{html}/attribute/lang"), None)
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    fn click(&self, css: &str) {
        let element = self.find(css);
        self.call(
            "POST",
            &format!("/element/{element}/click"),
            Some(json!({})),
        );
    }

    /// Every element of the page lies within the phone's width, and the buttons are big
    /// enough to touch.
    fn assert_fits_a_phone(&self) {
        for element in self.find_all("body *") {
            let rect = self.call("GET", &format!("/element/{element}/rect"), None);
            let right = rect["x"].as_f64().unwrap() + rect["width"].as_f64().unwrap();
            assert!(
                right <= f64::from(PHONE_WIDTH) + 0.5,
                "wider than a phone: {rect}"
            );
        }
        for button in self.find_all("button") {
            let rect = self.call("GET", &format!("/element/{button}/rect"), None);
            assert!(rect["height"].as_f64().unwrap() >= 44.0, "{rect}");
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = webdriver(self.port, "DELETE", &format!("/session/{}", self.id), None);
    }
}

fn count(root: &Path, sql: &str) -> i64 {
    let db = rusqlite::Connection::open(root.join("tiercare.db")).unwrap();
    db.query_row(sql, [], |row| row.get(0)).unwrap()
}

#[test]
fn the_pages_work_without_javascript_fit_a_phone_and_speak_both_languages() {
    let dir = fast_tempdir();
    let root = mail_workspace(dir.path(), 2, None);
    let port = free_port();
    add_http(&root, port, "");
    let sent = Command::new(env!("CARGO_BIN_EXE_tiercare"))
        .current_dir(&root)
        .env(SECRET_ENV, SECRET)
        .args(["send"])
        .status()
        .unwrap();
    assert!(sent.success());
    let links: Vec<String> = links(&root.join("mail"))
        .into_iter()
        .map(|(url, _)| url)
        .collect();
    let _server = Server::start(&root);
    let driver = Driver::start();

    // English: the link's page, then its button (a plain form POST: JavaScript is off).
    let english = driver.session("en-GB,en");
    english.open(&links[0]);
    english.wait_text("h1", "Unsubscribe");
    assert_eq!(english.lang(), "en");
    english.assert_fits_a_phone();
    assert_eq!(count(&root, "SELECT count(*) FROM suppressions"), 0);
    english.click("form button");
    english.wait_text("h1", "You are unsubscribed");
    assert_eq!(count(&root, "SELECT count(*) FROM suppressions"), 1);

    // Simplified Chinese: the preference page of the other link; stop email.
    let chinese = driver.session("zh-CN,zh");
    chinese.open(&links[1].replacen("/unsubscribe?", "/preferences?", 1));
    chinese.wait_text("h1", "您的偏好设置");
    assert_eq!(chinese.lang(), "zh-CN");
    chinese.assert_fits_a_phone();
    let consenting = "SELECT count(*) FROM customers WHERE consent_email = 1";
    assert_eq!(count(&root, consenting), 2);
    chinese.click("form:has(input[value=email]) button");
    chinese.wait_text(".notice", "您的选择已保存。");
    assert_eq!(count(&root, consenting), 1);
    chinese.assert_fits_a_phone();
}
