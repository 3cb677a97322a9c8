//! Satisfaction surveys end to end: a `survey:` follow-up's e-mail goes through a real SMTP
//! server on loopback (`smtp-sink`), Python's `email` package parses what it received and takes
//! the score links from the text part, curl follows one (a GET changes nothing) and posts the
//! answer through `tiercare serve`; the answer is feedback (a second answer replaces the first),
//! `satisfaction_last` moves, a `low_satisfaction` follow-up fires after the low score, and a
//! forged token records nothing.

use std::path::{Path, PathBuf};
use std::process::Command;

use smtp_sink::{Script, SmtpSink};

use crate::common::{Run, command_in, fast_tempdir, followups_record_json, run_in};
use crate::serve::{SECRET, SECRET_ENV, Server, add_http, curl, free_port};

const QUESTION: &str = "How likely are you to recommend us to a friend?";

fn python() -> PathBuf {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-venv/bin/python");
    assert!(
        python.exists(),
        "the tests' Python venv is missing: run `bash .ci/deps`"
    );
    python
}

/// A workspace whose only follow-ups are an NPS survey (every customer, 09:00 daily, through
/// the default `survey` template) and a tag on a low score, sending through SMTP on `smtp`, with
/// its answer pages on `port`; one customer, `C0000`, who agreed to email.
fn survey_workspace(dir: &Path, smtp: u16, port: u16) -> PathBuf {
    let root = dir.join("ws");
    run_in(dir, &["init", root.to_str().unwrap()]).assert_code(0);
    std::fs::remove_file(root.join("rules/followups.yaml")).unwrap();
    std::fs::write(
        root.join("rules/ask.yaml"),
        format!(
            "followups:\n  - id: ask\n    cron: \"0 9 * * *\"\n    max_delay: 3650d\n    \
             survey: {{ template: survey, kind: nps, id: quarterly, question: \"{QUESTION}\" }}\n  \
             - id: low-score\n    on: {{ event: low_satisfaction, below: 5 }}\n    \
             tag: unhappy\n"
        ),
    )
    .unwrap();
    let config = std::fs::read_to_string(root.join("tiercare.toml")).unwrap();
    let config = config.replace("transport = \"folder\"", "transport = \"smtp\"")
        + &format!(
            "\n[mail.smtp]\nhost = \"127.0.0.1\"\nport = {smtp}\nsecurity = \"none\"\n\
             connections = 1\n"
        );
    std::fs::write(root.join("tiercare.toml"), config).unwrap();
    add_http(&root, port, "");
    std::fs::write(
        root.join("customers.csv"),
        "customer_id,name,email,consent_email\nC0000,Ada Lovelace,ada@example.com,true\n",
    )
    .unwrap();
    run_in(&root, &["import", "customers", "customers.csv"]).assert_code(0);
    root
}

/// The score links of the message's text part, as Python's `email` package reads it.
fn score_links(message: &[u8], dir: &Path) -> Vec<(u8, String)> {
    let file = dir.join("received.eml");
    std::fs::write(&file, message).unwrap();
    let script = r#"
import email, email.policy, json, re, sys
message = email.message_from_binary_file(open(sys.argv[1], "rb"), policy=email.policy.default)
text = message.get_body(preferencelist=("plain",)).get_content()
links = re.findall(r"^\s*(\d+)(?: \([^)]*\))?: (http\S+/survey/\S+)$", text, re.M)
html = message.get_body(preferencelist=("html",)).get_content()
print(json.dumps({"links": [[int(s), u] for s, u in links], "subject": str(message["Subject"]),
                  "html_buttons": len(re.findall(r'<a href="[^"]*survey[^"]*" aria-label=', html))}))
"#;
    let output = Command::new(python())
        .args(["-c", script, file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let parsed: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(parsed["subject"], QUESTION);
    assert_eq!(
        parsed["html_buttons"], 11,
        "one button per score in the HTML part"
    );
    parsed["links"]
        .as_array()
        .unwrap()
        .iter()
        .map(|pair| {
            (
                u8::try_from(pair[0].as_u64().unwrap()).unwrap(),
                pair[1].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn feedback(root: &Path) -> Vec<(f64, i64, String, Option<String>)> {
    let db = rusqlite::Connection::open(root.join("tiercare.db")).unwrap();
    let mut stmt = db
        .prepare("SELECT score, answer, survey, comment FROM feedback ORDER BY id")
        .unwrap();
    stmt.query_map([], |row| {
        Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

/// The customers whose `satisfaction_last` is `score` now (`tiercare customers --where`).
fn satisfied_at(root: &Path, score: f64) -> Vec<String> {
    let listed = run_in(
        root,
        &[
            "customers",
            "--where",
            &format!("satisfaction_last == {score:.1}"),
            "--jsonl",
        ],
    );
    listed.assert_code(0);
    listed
        .stdout
        .lines()
        .map(|line| {
            let record: serde_json::Value = serde_json::from_str(line).unwrap();
            record["id"].as_str().unwrap_or_default().to_owned()
        })
        .collect()
}

fn rfc3339(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn now() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

#[test]
fn a_survey_link_answered_through_the_web_server_is_feedback_that_moves_the_features() {
    let dir = fast_tempdir();
    let sink = SmtpSink::start(Script::accept_all()).unwrap();
    let port = free_port();
    let root = survey_workspace(dir.path(), sink.port(), port);
    run_in(&root, &["check"]).assert_code(0);
    // `preview` renders the survey template with the rule's question and signed links.
    let preview = Run::of(command_in(&root).env(SECRET_ENV, SECRET).args([
        "preview",
        "survey",
        "--customer",
        "C0000",
    ]));
    preview.assert_code(0);
    preview.assert_stdout_contains(QUESTION);
    preview.assert_stdout_contains(&format!(
        "10 (extremely likely): http://127.0.0.1:{port}/survey/"
    ));
    assert!(!preview.stdout.contains("tc-survey-"), "{}", preview.stdout);
    let recorded = run_in(
        &root,
        &followups_record_json("2026-03-02T08:00:00Z", "2026-03-02T10:00:00Z"),
    );
    recorded.assert_code(0);
    assert_eq!(recorded.json()["queued"], 1, "{}", recorded.stdout);
    let sent = crate::serve::send(&root);
    assert_eq!(sent["sent"], 1, "{sent}");
    let received = sink.wait_for(1, std::time::Duration::from_secs(10));
    let links = score_links(&received[0].data, dir.path());
    assert_eq!(
        links.iter().map(|(score, _)| *score).collect::<Vec<_>>(),
        (0..=10).collect::<Vec<u8>>(),
        "{links:?}"
    );
    let prefix = format!("http://127.0.0.1:{port}/survey/");
    for (_, url) in &links {
        let token = url.strip_prefix(&prefix).unwrap_or_else(|| panic!("{url}"));
        assert!(
            !token.contains('@') && !token.contains("ada") && !token.contains("tc-survey"),
            "a token carries no personal data and no marker: {token}"
        );
    }
    let stored: String = rusqlite::Connection::open(root.join("tiercare.db"))
        .unwrap()
        .query_row("SELECT body_text FROM outbox", [], |row| row.get(0))
        .unwrap();
    assert!(
        !stored.contains(links[0].1.rsplit('/').next().unwrap()),
        "the outbox keeps no token"
    );

    let server = Server::start(&root);
    // A GET (a mail scanner, a browser) shows the question with its score chosen; no change.
    let (code, page) = curl(&[&links[9].1]);
    assert_eq!(code, 200);
    assert!(page.contains(QUESTION), "{page}");
    assert!(page.contains("value=\"9\" checked"), "{page}");
    assert!(page.contains("<textarea"), "{page}");
    assert!(feedback(&root).is_empty(), "a GET records nothing");

    // The POST records the answer: NPS 9 is 9 on the feedback scale.
    let (code, page) = curl(&["-d", "score=9", &links[9].1]);
    assert_eq!(code, 200, "{page}");
    assert!(page.contains("your answer is recorded"), "{page}");
    assert_eq!(
        feedback(&root),
        [(9.0, 9, "quarterly".to_owned(), None)],
        "{}",
        server.log()
    );
    assert_eq!(satisfied_at(&root, 9.0), ["C0000"]);
    let answered_at = now();

    // A second answer replaces the first (from another score's link, in Chinese), with a
    // comment; the feature follows.
    let (code, page) = curl(&[
        "-H",
        "Accept-Language: zh-CN",
        "-d",
        "score=2&comment=%E5%A4%AA%E6%85%A2%E4%BA%86",
        &links[3].1,
    ]);
    assert_eq!(code, 200, "{page}");
    assert!(page.contains("您的评价已更改"), "{page}");
    assert_eq!(
        feedback(&root),
        [(2.0, 2, "quarterly".to_owned(), Some("太慢了".to_owned()))]
    );
    assert_eq!(satisfied_at(&root, 2.0), ["C0000"]);
    assert!(satisfied_at(&root, 9.0).is_empty());

    // The low score fires the `low_satisfaction` follow-up.
    let low = run_in(
        &root,
        &followups_record_json(&rfc3339(answered_at - 60), &rfc3339(now() + 60)),
    );
    low.assert_code(0);
    let fired: i64 = rusqlite::Connection::open(root.join("tiercare.db"))
        .unwrap()
        .query_row(
            "SELECT count(*) FROM followups WHERE rule_id = 'low-score' AND status = 'done'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(fired, 1, "{}", low.stdout);

    // A forged token (another score on the same e-mail, or made up) records nothing.
    let token = links[10].1.strip_prefix(&prefix).unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    let forged = format!("{prefix}{}.0.{}.{}", parts[0], parts[2], parts[3]);
    for url in [
        forged.as_str(),
        &format!("{prefix}1.5.20000.{}", "0".repeat(32)),
    ] {
        let (code, page) = curl(&[url]);
        assert_eq!(code, 200);
        assert!(page.contains("not valid"), "{page}");
        let (_, page) = curl(&["-d", "score=0", url]);
        assert!(page.contains("not valid"), "{page}");
    }
    assert_eq!(feedback(&root).len(), 1);
    assert_eq!(feedback(&root)[0].1, 2, "unchanged by forgeries");

    // The report counts the e-mail and its (last) answer: one detractor, NPS -100.
    run_in(&root, &["assess"]).assert_code(0);
    let report = run_in(&root, &["report", "--json"]);
    report.assert_code(0);
    let surveys = &report.json()["surveys"];
    assert_eq!(surveys[0]["survey"], "quarterly", "{surveys}");
    assert_eq!(surveys[0]["sent"], 1, "{surveys}");
    assert_eq!(surveys[0]["answered"], 1, "{surveys}");
    assert_eq!(surveys[0]["detractors"], 1, "{surveys}");
    let text = run_in(&root, &["report"]);
    text.assert_stdout_contains("NPS -100");
    run_in(&root, &["report", "--out", "report.html"]).assert_code(0);
    let html = std::fs::read_to_string(root.join("report.html")).unwrap();
    assert!(
        html.contains("<section id=\"surveys\">") && html.contains("NPS -100"),
        "the HTML report has the surveys section"
    );
}

/// A workspace whose only follow-up, `ask-sms`, sends the CSAT survey `pickup` ("How was your
/// pickup?") by SMS at 09:00 with `templates/rate.sms.j2` (the question and `survey.link`),
/// through an HTTP provider stub, with `[http]` on a free port; `customers` (a CSV) imported.
/// Returns the temporary folder, the workspace, the stub and the port.
fn sms_survey_workspace(
    customers: &str,
) -> (
    tempfile::TempDir,
    std::path::PathBuf,
    crate::common::sms_provider::SmsProvider,
    u16,
) {
    let dir = fast_tempdir();
    let stub = crate::common::sms_provider::SmsProvider::start();
    let port = free_port();
    let root = dir.path().join("ws");
    run_in(dir.path(), &["init", root.to_str().unwrap()]).assert_code(0);
    std::fs::remove_file(root.join("rules/followups.yaml")).unwrap();
    std::fs::write(
        root.join("rules/ask.yaml"),
        "followups:\n  - id: ask-sms\n    cron: \"0 9 * * *\"\n    max_delay: 3650d\n    \
         survey: { template: rate, channel: sms, kind: csat, id: pickup, \
         question: \"How was your pickup?\" }\n",
    )
    .unwrap();
    std::fs::write(
        root.join("templates/rate.sms.j2"),
        "{{ survey.question }} {{ survey.link }}\n",
    )
    .unwrap();
    let config = std::fs::read_to_string(root.join("tiercare.toml")).unwrap();
    std::fs::write(
        root.join("tiercare.toml"),
        format!(
            "{config}\n[sms]\nprovider = \"http\"\n\n[sms.http]\nurl = \"{}\"\n\
             fields = {{ to = \"{{to}}\", message = \"{{text}}\" }}\n",
            stub.url("/send")
        ),
    )
    .unwrap();
    add_http(&root, port, "");
    std::fs::write(root.join("customers.csv"), customers).unwrap();
    run_in(&root, &["import", "customers", "customers.csv"]).assert_code(0);
    (dir, root, stub, port)
}

/// A survey by SMS: `channel: sms` sends `templates/rate.sms.j2` through the HTTP provider stub
/// with one signed link (`survey.link`); its page asks with nothing chosen and records nothing;
/// a POST without a score records nothing, one with a score is the feedback, a later one
/// replaces it; a forged token is refused; `check` counts the link in the segments.
#[test]
fn a_survey_by_sms_sends_one_link_whose_page_asks_for_the_score() {
    let (_dir, root, stub, port) = sms_survey_workspace(
        "customer_id,name,phone,region,consent_sms\nC1,Ada,+44 7700 900123,GB,true\n",
    );
    run_in(&root, &["check"]).assert_code(0);
    let recorded = run_in(
        &root,
        &followups_record_json("2026-03-02T08:00:00Z", "2026-03-02T10:00:00Z"),
    );
    recorded.assert_code(0);
    assert_eq!(recorded.json()["queued"], 1, "{}", recorded.stdout);
    crate::serve::send(&root);
    let received = stub.received();
    assert_eq!(received.len(), 1, "{received:?}");
    let text = received[0].json()["message"].as_str().unwrap().to_owned();
    let prefix = format!("http://127.0.0.1:{port}/survey/");
    let link = text
        .split_whitespace()
        .find(|word| word.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no survey link in {text}"))
        .to_owned();
    assert!(text.starts_with("How was your pickup? "), "{text}");
    let token = link.strip_prefix(&prefix).unwrap();
    assert_eq!(
        token.split('.').count(),
        3,
        "a token without a score: {token}"
    );
    assert!(!token.contains("tc-survey"), "{token}");
    let stored: (String, Option<String>) = rusqlite::Connection::open(root.join("tiercare.db"))
        .unwrap()
        .query_row("SELECT body_text, survey FROM outbox", [], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })
        .unwrap();
    assert!(!stored.0.contains(token), "the outbox keeps no token");
    assert!(
        stored.1.as_deref().is_some_and(|s| s.contains("pickup")),
        "{stored:?}"
    );

    let server = Server::start(&root);
    // The GET asks, with every score and none chosen; it records nothing.
    let (code, page) = curl(&[&link]);
    assert_eq!(code, 200);
    assert!(page.contains("How was your pickup?"), "{page}");
    for score in 1..=5 {
        assert!(page.contains(&format!("value=\"{score}\">")), "{page}");
    }
    assert!(!page.contains("checked"), "nothing preselected: {page}");
    assert!(feedback(&root).is_empty(), "a GET records nothing");
    // A POST without a score records nothing and asks again.
    let (code, page) = curl(&["-d", "comment=", &link]);
    assert_eq!(code, 200, "{page}");
    assert!(page.contains("How was your pickup?"), "{page}");
    assert!(feedback(&root).is_empty());
    // The chosen score is the feedback (CSAT 4 is 7.5), a later one replaces it.
    let (code, page) = curl(&["-d", "score=4", &link]);
    assert_eq!(code, 200, "{page}");
    assert!(page.contains("your answer is recorded"), "{page}");
    assert_eq!(
        feedback(&root),
        [(7.5, 4, "pickup".to_owned(), None)],
        "{}",
        server.log()
    );
    let (_, page) = curl(&[&link]);
    assert!(
        page.contains("value=\"4\" checked"),
        "the answer so far: {page}"
    );
    curl(&["-d", "score=2", &link]);
    assert_eq!(feedback(&root), [(2.5, 2, "pickup".to_owned(), None)]);
    // Out of the survey's range, forged or made up: nothing recorded.
    let (code, _) = curl(&["-d", "score=9", &link]);
    assert_eq!(code, 400);
    let parts: Vec<&str> = token.split('.').collect();
    for url in [
        format!("{prefix}{}.5.{}.{}", parts[0], parts[1], parts[2]),
        format!("{prefix}{}.{}.{}", parts[0].len() + 1, parts[1], parts[2]),
        format!("{prefix}1.20000.{}", "0".repeat(32)),
    ] {
        let (code, page) = curl(&[&url]);
        assert_eq!(code, 200);
        assert!(page.contains("not valid"), "{url}: {page}");
        let (_, page) = curl(&["-d", "score=5", &url]);
        assert!(page.contains("not valid"), "{url}: {page}");
    }
    assert_eq!(feedback(&root), [(2.5, 2, "pickup".to_owned(), None)]);
    drop(server);

    // `check` counts the link (public URL and token) in the segments: a question of 140
    // characters fits one segment alone, not with its link.
    let long = "x".repeat(140);
    std::fs::write(
        root.join("templates/rate.sms.j2"),
        format!("{long} {{{{ survey.link }}}}\n"),
    )
    .unwrap();
    let config = std::fs::read_to_string(root.join("tiercare.toml")).unwrap();
    std::fs::write(
        root.join("tiercare.toml"),
        config.replace("[sms]\n", "[sms]\nmax_segments = 1\n"),
    )
    .unwrap();
    let checked = run_in(&root, &["check"]);
    assert_ne!(checked.code, 0, "{}", checked.stdout);
    assert!(
        format!("{}{}", checked.stdout, checked.stderr).contains("segments"),
        "{} {}",
        checked.stdout,
        checked.stderr
    );
}

/// `preview` of an SMS template: without `--sms` when there is no e-mail template of that name,
/// an SMS survey with its link (a sample token as long as the signed one), the encoding and the
/// segments; the text the provider then receives has exactly the previewed length; a customer
/// without SMS consent is warned about.
#[test]
fn preview_shows_an_sms_survey_as_it_is_sent_with_its_segments() {
    let (_dir, root, stub, port) = sms_survey_workspace(
        "customer_id,name,phone,region,consent_sms\nC1,Ada,+44 7700 900123,GB,true\n\
         C2,Bo,+44 7700 900124,GB,false\n",
    );

    // No `rate` e-mail template: the SMS is previewed without --sms.
    let shown = run_in(&root, &["preview", "rate", "--customer", "C1"]);
    shown.assert_code(0);
    let prefix = format!("http://127.0.0.1:{port}/survey/");
    assert!(
        shown
            .stdout
            .starts_with(&format!("How was your pickup? {prefix}")),
        "{}",
        shown.stdout
    );
    shown.assert_stdout_contains("--- GSM-7, ");
    shown.assert_stdout_contains(" segment");
    let json = run_in(
        &root,
        &["preview", "rate", "--sms", "--customer", "C1", "--json"],
    );
    json.assert_code(0);
    let preview = json.json();
    assert_eq!(preview["channel"], "sms", "{preview}");
    assert!(preview["not_sendable"].is_null(), "{preview}");
    let characters = preview["length"]["characters"].as_u64().unwrap();
    assert_eq!(
        preview["text"].as_str().unwrap().chars().count() as u64,
        characters,
        "the length counts the text as rendered: {preview}"
    );
    let refused = run_in(
        &root,
        &["preview", "rate", "--sms", "--customer", "C2", "--json"],
    );
    refused.assert_code(0);
    assert!(
        refused.json()["not_sendable"]
            .as_str()
            .unwrap()
            .contains("consent_sms"),
        "{}",
        refused.stdout
    );

    // What the provider receives is the preview with the signed token in the sample's place,
    // at most as long (the sample has the longest outbox id a token carries).
    let recorded = run_in(
        &root,
        &followups_record_json("2026-03-02T08:00:00Z", "2026-03-02T10:00:00Z"),
    );
    recorded.assert_code(0);
    crate::serve::send(&root);
    let received = stub.received();
    assert_eq!(received.len(), 1, "{received:?}");
    let sent = received[0].json()["message"].as_str().unwrap().to_owned();
    let previewed = preview["text"].as_str().unwrap();
    let cut = |text: &str| text[..text.find("/survey/").unwrap() + "/survey/".len()].to_owned();
    assert_eq!(
        cut(&sent),
        cut(previewed),
        "sent {sent:?}, previewed {preview}"
    );
    assert!(
        sent.chars().count() as u64 <= characters,
        "sent {sent:?}, previewed {preview}"
    );
}
