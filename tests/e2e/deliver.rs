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
