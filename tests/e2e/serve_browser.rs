//! The recipient's pages of `tiercare serve` in a real browser: headless Chromium, driven
//! through chromedriver (WebDriver over loopback, `common::browser`), with
//! JavaScript switched off and a phone's screen. The unsubscribe button of a sent email's
//! link works (the address is suppressed), the preference page turns the email consent off,
//! every element fits the phone's width, and the pages render in English and in Simplified
//! Chinese as the browser's language asks.
//!
//! Chromium and chromedriver are Debian's `chromium` and `chromium-driver`, installed by
//! `.ci/deps`; when they are missing the test fails saying so.

use crate::common;
use crate::serve::{SECRET, SECRET_ENV, Server, add_http, free_port, links};

use std::path::Path;
use std::process::Command;

use common::browser::{Driver, Session};
use common::{fast_tempdir, mail_workspace};

/// The phone's width in CSS pixels.
const PHONE_WIDTH: u32 = 360;

/// The page's `lang` attribute.
fn lang(session: &Session) -> String {
    let html = session.find("html");
    session.attribute(&html, "lang").unwrap_or_default()
}

/// Every element of the page lies within the phone's width, and the buttons are big enough to
/// touch.
fn assert_fits_a_phone(session: &Session) {
    session.assert_fits(PHONE_WIDTH);
    session.assert_buttons_touchable();
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
    let english = driver.session_without_javascript("en-GB,en", PHONE_WIDTH);
    english.open(&links[0]);
    english.wait_text("h1", "Unsubscribe");
    assert_eq!(lang(&english), "en");
    assert_fits_a_phone(&english);
    assert_eq!(count(&root, "SELECT count(*) FROM suppressions"), 0);
    english.click("form button");
    english.wait_text("h1", "You are unsubscribed");
    assert_eq!(count(&root, "SELECT count(*) FROM suppressions"), 1);

    // Simplified Chinese: the preference page of the other link; stop email.
    let chinese = driver.session_without_javascript("zh-CN,zh", PHONE_WIDTH);
    chinese.open(&links[1].replacen("/unsubscribe?", "/preferences?", 1));
    chinese.wait_text("h1", "您的偏好设置");
    assert_eq!(lang(&chinese), "zh-CN");
    assert_fits_a_phone(&chinese);
    let consenting = "SELECT count(*) FROM customers WHERE consent_email = 1";
    assert_eq!(count(&root, consenting), 2);
    chinese.click("form:has(input[value=email]) button");
    chinese.wait_text(".notice", "您的选择已保存。");
    assert_eq!(count(&root, consenting), 1);
    assert_fits_a_phone(&chinese);
}
