//! A small WebDriver client for browser tests: Debian's `chromedriver` on a free loopback port,
//! headless Chromium sessions, and the few commands the tests use (open, find, type, click,
//! read, window size, phone emulation, screenshots). WebDriver is JSON over HTTP/1.1; the few
//! lines of HTTP are spoken here, so the tests need no async client.
//!
//! Chromium and chromedriver are Debian's `chromium` and `chromium-driver`, installed by
//! `.ci/deps`; when they are missing, [`Driver::start`] fails saying so.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};

use super::daemon::DEADLINE;

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One HTTP/1.1 exchange with chromedriver: the answer's JSON `value`.
pub fn webdriver(port: u16, method: &str, path: &str, body: Option<Value>) -> Value {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
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
    let value: Value = serde_json::from_slice(&content).unwrap_or_else(|err| {
        panic!(
            "{method} {path}: {err}\n{}",
            String::from_utf8_lossy(&content)
        )
    });
    value["value"].clone()
}

/// chromedriver on a free port, stopped at drop.
pub struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    /// Starts chromedriver and waits (polling, with the deadline) until it is ready.
    pub fn start() -> Driver {
        for path in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                Path::new(path).exists(),
                "the browser test needs {path}: run `bash .ci/deps` (it installs Debian's \
                 `chromium` and `chromium-driver` packages, as root)"
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

    /// A headless Chromium session asking for `languages` (e.g. `en-GB,en`), in a window
    /// `width` CSS pixels wide.
    pub fn session(&self, languages: &str, width: u32) -> Session {
        self.new_session(languages, width, true)
    }

    /// The same with JavaScript switched off, as a recipient's mail client or a cautious
    /// browser has it: chromedriver cannot then tell when a page has loaded (it asks the
    /// page), so it is told not to wait, and the test polls for what it expects
    /// ([`Session::wait_text`]).
    pub fn session_without_javascript(&self, languages: &str, width: u32) -> Session {
        self.new_session(languages, width, false)
    }

    fn new_session(&self, languages: &str, width: u32, javascript: bool) -> Session {
        let profile = tempfile::tempdir().unwrap();
        let mut prefs = json!({ "intl.accept_languages": languages });
        if !javascript {
            prefs["profile.managed_default_content_settings.javascript"] = json!(2);
        }
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "pageLoadStrategy": if javascript { "normal" } else { "none" },
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--no-first-run", "--hide-scrollbars",
                    format!("--user-data-dir={}", profile.path().display()),
                    format!("--lang={}", languages.split(',').next().unwrap()),
                ],
                "prefs": prefs,
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
        session.set_width(width);
        session
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One browser session, deleted at drop.
pub struct Session {
    port: u16,
    id: String,
    _profile: tempfile::TempDir,
}

impl Session {
    /// A WebDriver command of this session.
    pub fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        webdriver(
            self.port,
            method,
            &format!("/session/{}{path}", self.id),
            body,
        )
    }

    /// Lays pages out `width` CSS pixels wide (a phone's 360 too: headless windows are at
    /// least 500 pixels wide, so narrower widths are emulated).
    pub fn set_width(&self, width: u32) {
        self.call(
            "POST",
            "/goog/cdp/execute",
            Some(
                json!({"cmd": "Emulation.setDeviceMetricsOverride", "params": {
                    "width": width, "height": if width < 600 { 740 } else { 900 },
                    "deviceScaleFactor": 1, "mobile": false,
                }}),
            ),
        );
    }

    /// Opens `url` and waits until it has loaded.
    pub fn open(&self, url: &str) {
        self.call("POST", "/url", Some(json!({ "url": url })));
    }

    /// The current URL.
    pub fn url(&self) -> String {
        self.call("GET", "/url", None)
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The elements matching `css`.
    pub fn find_all(&self, css: &str) -> Vec<String> {
        let found = self.call(
            "POST",
            "/elements",
            Some(json!({"using": "css selector", "value": css})),
        );
        found
            .as_array()
            .map_or(&[][..], Vec::as_slice)
            .iter()
            .filter_map(|element| element[ELEMENT].as_str().map(str::to_owned))
            .collect()
    }

    /// The one element matching `css`.
    pub fn find(&self, css: &str) -> String {
        let all = self.find_all(css);
        assert_eq!(all.len(), 1, "{css} matched {} elements", all.len());
        all.into_iter().next().unwrap()
    }

    /// The text of the one element matching `css`.
    pub fn text(&self, css: &str) -> String {
        let element = self.find(css);
        self.call("GET", &format!("/element/{element}/text"), None)
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// An attribute of `element`.
    pub fn attribute(&self, element: &str, name: &str) -> Option<String> {
        self.call("GET", &format!("/element/{element}/attribute/{name}"), None)
            .as_str()
            .map(str::to_owned)
    }

    /// Types `text` into the one element matching `css`.
    pub fn type_into(&self, css: &str, text: &str) {
        let element = self.find(css);
        self.call(
            "POST",
            &format!("/element/{element}/value"),
            Some(json!({ "text": text })),
        );
    }

    /// Clicks the one element matching `css`.
    pub fn click(&self, css: &str) {
        let element = self.find(css);
        self.call(
            "POST",
            &format!("/element/{element}/click"),
            Some(json!({})),
        );
    }

    /// Waits (polling, with the deadline) until the one element `css` reads `expected`.
    pub fn wait_text(&self, css: &str, expected: &str) {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let [element] = &self.find_all(css)[..]
                && self.call("GET", &format!("/element/{element}/text"), None) == expected
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{css} never read {expected:?} (at {})",
                self.url()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Signs in at `base`/staff/login as `login` with `password`, and waits for the dashboard.
    pub fn sign_in(&self, base: &str, login: &str, password: &str) {
        self.open(&format!("{base}/staff/login"));
        self.type_into("#login", login);
        self.type_into("#password", password);
        self.click("form button[type=submit]");
        let deadline = Instant::now() + DEADLINE;
        while !self.url().ends_with("/staff/") {
            assert!(
                Instant::now() < deadline,
                "not signed in: {}\n{}",
                self.url(),
                self.text("body")
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Every form field that is not hidden has a `<label for>` naming it.
    pub fn assert_fields_labelled(&self) {
        for field in self.find_all("input:not([type=hidden]), select, textarea") {
            let id = self
                .attribute(&field, "id")
                .expect("a form field without an id cannot be labelled");
            assert_eq!(
                self.find_all(&format!("label[for=\"{id}\"]")).len(),
                1,
                "field #{id} has no label"
            );
        }
    }

    /// No element of the page reaches past `width` CSS pixels (nothing to scroll sideways).
    pub fn assert_fits(&self, width: u32) {
        for element in self.find_all("body *") {
            let rect = self.call("GET", &format!("/element/{element}/rect"), None);
            let right = rect["x"].as_f64().unwrap() + rect["width"].as_f64().unwrap();
            assert!(
                right <= f64::from(width) + 0.5,
                "wider than {width} px: {rect}"
            );
        }
    }

    /// Every button is at least 44 CSS pixels high: big enough to touch.
    pub fn assert_buttons_touchable(&self) {
        for button in self.find_all("button") {
            let rect = self.call("GET", &format!("/element/{button}/rect"), None);
            assert!(rect["height"].as_f64().unwrap() >= 44.0, "{rect}");
        }
    }

    /// Saves a screenshot of the whole page (as laid out at the current width) to `path`.
    pub fn screenshot(&self, path: &Path) {
        let metrics = self.call(
            "POST",
            "/goog/cdp/execute",
            Some(json!({"cmd": "Page.getLayoutMetrics", "params": {}})),
        );
        let size = &metrics["cssContentSize"];
        let shot = self.call(
            "POST",
            "/goog/cdp/execute",
            Some(json!({"cmd": "Page.captureScreenshot", "params": {
                "format": "png", "captureBeyondViewport": true,
                "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1},
            }})),
        );
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().expect("a screenshot"))
            .unwrap();
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(path, png).unwrap();
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = webdriver(self.port, "DELETE", &format!("/session/{}", self.id), None);
    }
}
