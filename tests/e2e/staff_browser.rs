//! The staff workspace (`/staff/`) of `tiercare serve`, in headless Chromium through WebDriver
//! and with raw HTTP: a manager signs in and completes a task (the database shows it done and
//! the audit row); the server refuses a viewer's POST that carries a valid session and CSRF
//! token; forged cross-site POSTs are refused; logins are rate limited; sessions end when idle
//! or too old. Screenshots of the dashboard and the tasks page at 1280 and 360 pixels go to
//! `target/staff-screenshots/`.

use crate::common;

use common::browser::Driver;
use common::staff::{PASSWORD, StaffWorkspace, screenshot_dir};

const OVERDUE: &str = "Call about the renewal";
const TODAY: &str = "Send the spring catalogue";
const BOBS: &str = "Visit the workshop";

#[test]
fn a_manager_signs_in_sees_only_their_tasks_and_completes_one() {
    let ws = StaffWorkspace::start("");
    let driver = Driver::start();
    let browser = driver.session("en-GB,en", 1280);
    browser.sign_in(&ws.base, "alice", PASSWORD);
    browser.wait_text("h1", "Dashboard");
    browser.assert_fields_labelled();
    let dashboard = browser.text("main");
    assert!(
        dashboard.contains(OVERDUE) && dashboard.contains(TODAY),
        "{dashboard}"
    );
    assert!(
        !dashboard.contains(BOBS),
        "a manager sees another's task:\n{dashboard}"
    );
    // The report's headline: the latest assessment's tiers and moves (first assignments).
    assert!(
        dashboard.contains("Moves of the latest assessment") && dashboard.contains("(new)"),
        "{dashboard}"
    );
    browser.screenshot(&screenshot_dir().join("dashboard-1280.png"));

    browser.open(&format!("{}/staff/tasks", ws.base));
    browser.wait_text("h1", "My tasks");
    browser.assert_fields_labelled();
    let page = browser.text("main");
    assert!(!page.contains(BOBS), "{page}");
    // Overdue first.
    assert!(
        page.find(OVERDUE).unwrap() < page.find(TODAY).unwrap(),
        "{page}"
    );
    browser.screenshot(&screenshot_dir().join("tasks-1280.png"));
    browser.set_width(360);
    browser.assert_fits(360);
    browser.screenshot(&screenshot_dir().join("tasks-360.png"));
    browser.open(&format!("{}/staff/", ws.base));
    browser.wait_text("h1", "Dashboard");
    browser.assert_fits(360);
    browser.screenshot(&screenshot_dir().join("dashboard-360.png"));
    browser.set_width(1280);

    let id = ws.task_id(OVERDUE);
    browser.open(&format!("{}/staff/tasks", ws.base));
    browser.type_into(&format!("#note-{id}"), "Renewed for two years");
    browser.click(&format!("form[action=\"/staff/tasks/{id}/done\"] button"));
    browser.wait_text(".notice", "Saved.");
    let (status, done_by, note): (String, String, String) = ws
        .db()
        .query_row(
            "SELECT status, done_by, note FROM tasks WHERE id = ?1",
            [id],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )
        .unwrap();
    assert_eq!(
        (status.as_str(), done_by.as_str(), note.as_str()),
        ("done", "alice", "Renewed for two years")
    );
    assert_eq!(
        ws.count(&format!(
            "SELECT count(*) FROM staff_audit WHERE login = 'alice' AND action = 'task.done' \
             AND object = 'task:{id}'"
        )),
        1
    );
    // The audit keeps no free text: the note's length only.
    assert_eq!(
        ws.count("SELECT count(*) FROM staff_audit WHERE details LIKE '%Renewed%'"),
        0
    );

    // In Simplified Chinese, by the browser's language.
    let chinese = driver.session("zh-CN,zh", 1280);
    chinese.sign_in(&ws.base, "root", PASSWORD);
    chinese.wait_text("h1", "概览");
    chinese.open(&format!("{}/staff/tasks", ws.base));
    chinese.wait_text("h1", "任务");
    // The admin sees everyone's tasks and may reassign.
    assert!(chinese.text("main").contains(BOBS));
    chinese.assert_fields_labelled();
    chinese.screenshot(&screenshot_dir().join("tasks-admin-zh-1280.png"));
}

#[test]
fn the_server_refuses_a_viewers_post_with_a_valid_session_and_token() {
    let ws = StaffWorkspace::start("");
    let viewer = ws.client();
    assert_eq!(viewer.sign_in("vera", PASSWORD).status, 303);
    let page = viewer.get("/staff/tasks");
    assert_eq!(page.status, 200);
    assert!(page.body.contains(BOBS), "a viewer reads everyone's tasks");
    assert!(
        !page.body.contains("/done\""),
        "a viewer's page offers no change"
    );
    // The token of the viewer's own session (the logout form carries it).
    let token = viewer.csrf_token("/staff/tasks");
    let id = ws.task_id(TODAY);
    for (path, form) in [
        (format!("/staff/tasks/{id}/done"), "note=x".to_owned()),
        (
            format!("/staff/tasks/{id}/snooze"),
            "until=2099-01-01".to_owned(),
        ),
        (
            format!("/staff/tasks/{id}/reassign"),
            "assignee=bob".to_owned(),
        ),
    ] {
        let answer = viewer.post(&path, &format!("_csrf={token}&{form}"), &[]);
        assert_eq!(answer.status, 403, "{path}: {}", answer.body);
    }
    assert_eq!(
        ws.count(
            "SELECT count(*) FROM tasks WHERE status <> 'open' OR assignee <> \
                  CASE title WHEN 'Visit the workshop' THEN 'bob' ELSE 'alice' END"
        ),
        0
    );
    assert_eq!(
        ws.count("SELECT count(*) FROM staff_audit WHERE action LIKE 'task.%'"),
        0
    );

    // A manager may not change another manager's task, nor reassign.
    let alice = ws.client();
    alice.sign_in("alice", PASSWORD);
    let token = alice.csrf_token("/staff/tasks");
    let bobs = ws.task_id(BOBS);
    let answer = alice.post(
        &format!("/staff/tasks/{bobs}/done"),
        &format!("_csrf={token}"),
        &[],
    );
    assert_eq!(answer.status, 403);
    let answer = alice.post(
        &format!("/staff/tasks/{id}/reassign"),
        &format!("_csrf={token}&assignee=bob"),
        &[],
    );
    assert_eq!(answer.status, 403);
    // The same token does work for her own task (the refusals above were the role's).
    let answer = alice.post(
        &format!("/staff/tasks/{id}/snooze"),
        &format!("_csrf={token}&until=2099-01-01"),
        &[],
    );
    assert_eq!(answer.status, 303, "{}", answer.body);
    assert_eq!(
        ws.count("SELECT count(*) FROM tasks WHERE status = 'snoozed'"),
        1
    );
}

#[test]
fn forged_cross_site_posts_are_refused() {
    let ws = StaffWorkspace::start("");
    let admin = ws.client();
    assert_eq!(admin.sign_in("root", PASSWORD).status, 303);
    let token = admin.csrf_token("/staff/tasks");
    let id = ws.task_id(TODAY);
    let path = format!("/staff/tasks/{id}/done");
    let forged = [
        ("no token", "note=x".to_owned(), vec![]),
        (
            "a wrong token",
            format!("_csrf={}&note=x", "0".repeat(64)),
            vec![],
        ),
        (
            "another site's origin",
            format!("_csrf={token}&note=x"),
            vec!["Origin: https://evil.example"],
        ),
        (
            "a cross-site fetch",
            format!("_csrf={token}&note=x"),
            vec!["Sec-Fetch-Site: cross-site"],
        ),
    ];
    for (what, form, headers) in &forged {
        let answer = admin.post(&path, form, headers);
        assert_eq!(answer.status, 403, "{what}: {}", answer.body);
    }
    assert_eq!(
        ws.count("SELECT count(*) FROM tasks WHERE status = 'done'"),
        0
    );
    // Without a session at all: nothing changes, sign in first.
    let stranger = ws.client();
    let answer = stranger.post(&path, &format!("_csrf={token}"), &[]);
    assert_eq!(answer.status, 303);
    assert!(answer.location.unwrap().ends_with("/staff/login"));
    // A login form posted from another site is refused too.
    let answer = stranger.post(
        "/staff/login",
        &format!("login=root&password={}", PASSWORD.replace(' ', "+")),
        &["Origin: https://evil.example"],
    );
    assert_eq!(answer.status, 403);
    // The same POST from this site, with the token, is taken.
    let answer = admin.post(
        &path,
        &format!("_csrf={token}&note=x"),
        &[
            &format!("Origin: {}", ws.base),
            "Sec-Fetch-Site: same-origin",
        ],
    );
    assert_eq!(answer.status, 303, "{}", answer.body);
    assert_eq!(
        ws.count("SELECT count(*) FROM tasks WHERE status = 'done'"),
        1
    );
}

#[test]
fn logins_are_limited_per_account_and_per_client_alike_for_every_refusal() {
    let ws = StaffWorkspace::start("");
    let client = ws.client_at("203.0.113.7");
    let wrong = client.sign_in("alice", "not the password");
    assert_eq!(wrong.status, 401);
    // An unknown login reads exactly like a wrong password.
    let unknown = client.sign_in("nobody", PASSWORD);
    assert_eq!(unknown.status, 401);
    let message = |answer: &common::staff::Answer| {
        answer
            .body
            .split("role=\"alert\">")
            .nth(1)
            .map(|rest| rest.split('<').next().unwrap().to_owned())
    };
    assert_eq!(message(&wrong), message(&unknown));
    assert!(message(&wrong).is_some());
    for _ in 0..4 {
        assert_eq!(client.sign_in("alice", "still not it").status, 401);
    }
    // Five failures: the account is locked, the right password answers as a wrong one.
    let locked = client.sign_in("alice", PASSWORD);
    assert_eq!(locked.status, 401);
    assert_eq!(message(&locked), message(&wrong));
    assert!(client.session_cookie().is_none());
    // Another account from another client still signs in.
    assert_eq!(
        ws.client_at("198.51.100.9")
            .sign_in("root", PASSWORD)
            .status,
        303
    );
    // Twenty failures from one client lock that client out for every account.
    for i in 0..14 {
        assert_eq!(client.sign_in(&format!("guess{i}"), "guess").status, 401);
    }
    assert_eq!(client.sign_in("vera", PASSWORD).status, 401);
    assert_eq!(
        ws.client_at("198.51.100.9")
            .sign_in("vera", PASSWORD)
            .status,
        303
    );
    assert!(!ws.log().contains(PASSWORD), "the log holds a password");
}

#[test]
fn sessions_end_when_idle_or_too_old_and_the_id_changes_at_login() {
    let ws = StaffWorkspace::start("staff_idle_minutes = 30\nstaff_session_hours = 12");
    let client = ws.client();
    // Each sign-in gets a new session id (signing in again from a browser that has one
    // replaces it: the scheduler's `login_rotates_limits_and_expires`).
    assert_eq!(client.sign_in("alice", PASSWORD).status, 303);
    let first = client.session_cookie().expect("a session cookie");
    let other = ws.client();
    assert_eq!(other.sign_in("alice", PASSWORD).status, 303);
    assert_ne!(Some(first), other.session_cookie());
    assert_eq!(ws.count("SELECT count(*) FROM staff_sessions"), 2);
    let token = other.csrf_token("/staff/");
    assert_eq!(
        other
            .post("/staff/logout", &format!("_csrf={token}"), &[])
            .status,
        303
    );
    assert_eq!(ws.count("SELECT count(*) FROM staff_sessions"), 1);
    assert_eq!(client.get("/staff/").status, 200);
    // Idle for 31 minutes (the stored last-seen time moved back, the server's clock is real).
    ws.db()
        .execute(
            "UPDATE staff_sessions SET last_seen = last_seen - 31 * 60",
            [],
        )
        .unwrap();
    let answer = client.get("/staff/");
    assert_eq!(answer.status, 303);
    assert!(answer.location.unwrap().ends_with("/staff/login"));
    assert_eq!(ws.count("SELECT count(*) FROM staff_sessions"), 0);

    // Busy, but signed in 12 hours ago.
    assert_eq!(client.sign_in("alice", PASSWORD).status, 303);
    assert_eq!(client.get("/staff/").status, 200);
    ws.db()
        .execute(
            "UPDATE staff_sessions SET created_at = created_at - 12 * 3600",
            [],
        )
        .unwrap();
    assert_eq!(client.get("/staff/").status, 303);

    // Logout ends the session on the server, not just the cookie.
    assert_eq!(client.sign_in("alice", PASSWORD).status, 303);
    let cookie = client.session_cookie().unwrap();
    let token = client.csrf_token("/staff/");
    assert_eq!(
        client
            .post("/staff/logout", &format!("_csrf={token}"), &[])
            .status,
        303
    );
    assert_eq!(ws.count("SELECT count(*) FROM staff_sessions"), 0);
    let replay = ws.client();
    let answer = replay.request(
        "/staff/",
        &["-H", &format!("Cookie: tiercare_staff={cookie}")],
    );
    assert_eq!(answer.status, 303);
}
