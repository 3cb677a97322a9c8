//! A prepared staff workspace for the staff pages' tests: managers `alice` and `bob`, three
//! customers (assessed with the default rules), three tasks (one of alice's overdue, one of hers due today, one of bob's), staff
//! accounts `root` (admin), `alice` (manager alice) and `vera` (viewer), all with [`PASSWORD`],
//! and `tiercare serve` running on a free loopback port. [`Client`] is a raw HTTP client (curl
//! with a cookie jar) for what a browser would not send: forged posts, stale sessions.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::{command_in, fast_tempdir, run_in};

/// Every staff account's password.
pub const PASSWORD: &str = "a staff password";
/// The secret `tiercare serve` needs (it signs unsubscribe links).
const SECRET_ENV: &str = "TIERCARE_UNSUBSCRIBE_SECRET";
const SECRET: &str = "a web test secret that is long enough";

/// The workspace and its running server, stopped at drop.
pub struct StaffWorkspace {
    _dir: tempfile::TempDir,
    /// The workspace's folder.
    pub root: PathBuf,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    server: Child,
    log: PathBuf,
}

impl StaffWorkspace {
    /// Prepares the workspace with `more_http` added to `[http]` and starts the server.
    pub fn start(more_http: &str) -> StaffWorkspace {
        let dir = fast_tempdir();
        let root = dir.path().join("ws");
        run_in(dir.path(), &["init", root.to_str().unwrap()]).assert_code(0);
        std::fs::write(
            root.join("managers.csv"),
            "manager_id,name,email,role,capacity,active\n\
             alice,Alice Chen,alice@example.com,senior,200,true\n\
             bob,Bob Martin,bob@example.com,junior,2000,true\n",
        )
        .unwrap();
        std::fs::write(
            root.join("customers.csv"),
            "customer_id,name,email,owner,consent_email\n\
             C001,Acme Trading Ltd,buyer@acme.example,alice,true\n\
             C002,Blue Lantern Cafe,hello@lantern.example,alice,true\n\
             C003,Copper Works,office@copper.example,bob,true\n",
        )
        .unwrap();
        run_in(&root, &["import", "managers", "managers.csv"]).assert_code(0);
        run_in(&root, &["import", "customers", "customers.csv"]).assert_code(0);
        run_in(&root, &["assess"]).assert_code(0);
        let now = chrono::Utc::now().timestamp();
        let db = rusqlite::Connection::open(root.join("tiercare.db")).unwrap();
        for (customer, assignee, title, due) in [
            ("C001", "alice", "Call about the renewal", now - 86_400),
            ("C002", "alice", "Send the spring catalogue", now + 3_600),
            ("C003", "bob", "Visit the workshop", now + 2 * 86_400),
        ] {
            db.execute(
                "INSERT INTO tasks (customer_id, assignee, title, due_at, created_at) \
                 SELECT id, ?2, ?3, ?4, ?5 FROM customers WHERE external_id = ?1",
                rusqlite::params![customer, assignee, title, due, now - 2 * 86_400],
            )
            .unwrap();
        }
        for (login, role, manager) in [
            ("root", "admin", None),
            ("alice", "manager", Some("alice")),
            ("vera", "viewer", None),
        ] {
            let mut command = command_in(&root);
            command.args(["users", "add", login, "--role", role, "--password-stdin"]);
            if let Some(manager) = manager {
                command.args(["--manager", manager]);
            }
            let mut child = command
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .spawn()
                .unwrap();
            writeln!(child.stdin.take().unwrap(), "{PASSWORD}").unwrap();
            assert!(child.wait().unwrap().success(), "users add {login}");
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = std::fs::read_to_string(root.join("tiercare.toml")).unwrap()
            + &format!(
                "\n[http]\nlisten = \"127.0.0.1:{port}\"\npublic_url = \"http://127.0.0.1:{port}\"\n\
                 requests_per_minute = 100000\n{more_http}\n"
            );
        std::fs::write(root.join("tiercare.toml"), config).unwrap();
        let log = dir.path().join("serve.log");
        let mut server = command_in(&root)
            .arg("serve")
            .env(SECRET_ENV, SECRET)
            .env("TIERCARE_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start tiercare serve");
        let mut line = String::new();
        BufReader::new(server.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(
            line.starts_with("listening on http://127.0.0.1:"),
            "{line:?}\n--- log\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        StaffWorkspace {
            _dir: dir,
            root,
            base: format!("http://127.0.0.1:{port}"),
            server,
            log,
        }
    }

    /// A connection to the workspace's database.
    pub fn db(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.root.join("tiercare.db")).unwrap()
    }

    /// One number from the database.
    pub fn count(&self, sql: &str) -> i64 {
        self.db().query_row(sql, [], |row| row.get(0)).unwrap()
    }

    /// The id of the task titled `title`.
    pub fn task_id(&self, title: &str) -> i64 {
        self.db()
            .query_row("SELECT id FROM tasks WHERE title = ?1", [title], |row| {
                row.get(0)
            })
            .unwrap()
    }

    /// What the server logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// A raw HTTP client with its own cookie jar.
    pub fn client(&self) -> Client {
        let jar = tempfile::NamedTempFile::new().unwrap();
        Client {
            base: self.base.clone(),
            jar,
            forwarded_for: None,
        }
    }

    /// A client at the address `address`, as the reverse proxy on loopback names it
    /// (`X-Forwarded-For`).
    pub fn client_at(&self, address: &str) -> Client {
        Client {
            forwarded_for: Some(address.to_owned()),
            ..self.client()
        }
    }
}

impl Drop for StaffWorkspace {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

/// curl with a cookie jar: what a browser would send, and what it would not.
pub struct Client {
    base: String,
    jar: tempfile::NamedTempFile,
    forwarded_for: Option<String>,
}

/// An answer: the status, the `Location` header (if any) and the body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub location: Option<String>,
    pub body: String,
}

impl Client {
    /// A request to `path` with curl's `args` (the cookie jar read and written).
    pub fn request(&self, path: &str, args: &[&str]) -> Answer {
        let jar = self.jar.path().to_str().unwrap();
        let output = Command::new("curl")
            .args(["-s", "-S", "--max-time", "10", "-b", jar, "-c", jar])
            .args(["-w", "\n%{http_code} %{redirect_url}"])
            .args(
                self.forwarded_for
                    .iter()
                    .flat_map(|address| ["-H".to_owned(), format!("X-Forwarded-For: {address}")]),
            )
            .args(args)
            .arg(format!("{}{path}", self.base))
            .output()
            .expect("the web tests need curl: run `bash .ci/deps`");
        assert!(output.status.success(), "curl {path} failed: {output:?}");
        let text = String::from_utf8(output.stdout).unwrap();
        let (body, tail) = text.rsplit_once('\n').unwrap();
        let (status, location) = tail.split_once(' ').unwrap_or((tail, ""));
        Answer {
            status: status.parse().unwrap(),
            location: Some(location.trim().to_owned()).filter(|l| !l.is_empty()),
            body: body.to_owned(),
        }
    }

    /// `GET path`.
    pub fn get(&self, path: &str) -> Answer {
        self.request(path, &[])
    }

    /// `POST path` with the urlencoded `form` and extra `headers` (`Name: value`).
    pub fn post(&self, path: &str, form: &str, headers: &[&str]) -> Answer {
        let mut args: Vec<&str> = vec!["--data", form];
        for header in headers {
            args.extend(["-H", header]);
        }
        self.request(path, &args)
    }

    /// The `_csrf` value of the first form on the page at `path`.
    pub fn csrf_token(&self, path: &str) -> String {
        let page = self.get(path).body;
        page.split("name=\"_csrf\" value=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap_or_else(|| panic!("no _csrf field on {path}:\n{page}"))
            .to_owned()
    }

    /// Signs in as `login` with `password` through the login form; the answer to the POST.
    pub fn sign_in(&self, login: &str, password: &str) -> Answer {
        let token = self.csrf_token("/staff/login");
        self.post(
            "/staff/login",
            &format!(
                "_csrf={token}&login={login}&password={}",
                password.replace(' ', "+")
            ),
            &[],
        )
    }

    /// The session cookie's value in the jar.
    pub fn session_cookie(&self) -> Option<String> {
        std::fs::read_to_string(self.jar.path())
            .unwrap()
            .lines()
            .filter(|line| !line.starts_with('#') || line.starts_with("#HttpOnly_"))
            .find_map(|line| {
                let fields: Vec<&str> = line.split('\t').collect();
                (fields.len() == 7 && fields[5] == "tiercare_staff").then(|| fields[6].to_owned())
            })
    }
}

/// Where the screenshots go: `target/staff-screenshots/`.
pub fn screenshot_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/staff-screenshots")
}
