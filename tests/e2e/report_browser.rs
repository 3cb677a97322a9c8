//! The HTML report in a real browser: headless Chromium opens the file from disk, and the test
//! checks there were no script errors or blocked loads, that every chart drew (a non-zero box
//! and its marks), that the page fits a phone's width, and takes screenshots.
//!
//! Chromium is Debian's `chromium` package, installed by `.ci/deps` (the first half of the test
//! command); when `/usr/bin/chromium` is missing the test fails saying so. The page reports its
//! own verdict: a small inline script records errors
//! from the start and, after loading, writes `data-errors`, `data-charts` and `data-fits` on
//! `<html>`, which `--dump-dom` shows.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Workspace, run_in};

const CHROMIUM: &str = "/usr/bin/chromium";

/// Chromium's path, or a failure that says how to get it: tests never install packages.
fn chromium() -> &'static str {
    assert!(
        Path::new(CHROMIUM).exists(),
        "the browser test needs Debian's Chromium at {CHROMIUM}: install the tests' \
         prerequisites with `bash .ci/deps` (Debian's `chromium` and `chromium-driver` \
         packages, as root), as the README's test command does."
    );
    CHROMIUM
}

/// Runs headless Chromium on `page` with `extra` arguments (a window size, a screenshot or
/// `--dump-dom`) and returns its stdout and stderr.
fn run_chromium(page: &Path, extra: &[&str]) -> (String, String) {
    let profile = tempfile::tempdir().unwrap();
    let url = format!("file://{}", page.display());
    let output = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--hide-scrollbars",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=5000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg(&url)
        .output()
        .expect("run chromium");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        output.status.success(),
        "chromium failed ({}):\n{stderr}",
        output.status
    );
    (stdout, stderr)
}

/// The value of the attribute `name` on the dumped `<html>` element, unescaped.
fn html_attribute(dom: &str, name: &str) -> String {
    let start = dom.find("<html").expect("an <html> element");
    let end = start + dom[start..].find('>').expect("the end of <html>");
    let tag = &dom[start..end];
    let needle = format!("{name}=\"");
    let from = tag
        .find(&needle)
        .unwrap_or_else(|| panic!("<html> has no {name}: the page's check did not run\n{tag}"))
        + needle.len();
    let value = &tag[from..from + tag[from..].find('"').expect("a closing quote")];
    value
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// A small demo workspace with follow-ups and two assessments, and its report.
fn report_file() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("demo");
    let dir = root.to_str().unwrap();
    run_in(
        tmp.path(),
        &["demo", dir, "--customers", "400", "--end", "2025-06-30"],
    )
    .assert_code(0);
    let ws = |args: &[&str]| {
        let mut all = vec!["--workspace", dir];
        all.extend_from_slice(args);
        run_in(tmp.path(), &all)
    };
    ws(&[
        "followups",
        "record",
        "--from",
        "2025-06-01",
        "--until",
        "2025-07-01",
    ])
    .assert_code(0);
    ws(&["assess", "--at", "2025-07-31"]).assert_code(0);
    let page = root.join("report.html");
    // Follow-ups are recorded at the wall clock's time, so the report is for now.
    ws(&["report", "--out", page.to_str().unwrap()]).assert_code(0);
    (tmp, page)
}

fn check_drawn(dom: &str, page_text: &str) -> Vec<serde_json::Value> {
    let errors: Vec<String> = serde_json::from_str(&html_attribute(dom, "data-errors")).unwrap();
    assert!(errors.is_empty(), "errors in the page: {errors:?}");
    let charts: Vec<serde_json::Value> =
        serde_json::from_str(&html_attribute(dom, "data-charts")).unwrap();
    let in_file = page_text.matches("<svg class=\"chart\"").count();
    assert!(in_file >= 9, "only {in_file} charts in the report");
    assert_eq!(charts.len(), in_file, "every chart is reported: {charts:?}");
    for chart in &charts {
        assert!(
            chart["width"].as_u64().unwrap() > 0 && chart["height"].as_u64().unwrap() > 0,
            "a chart with an empty box: {chart}"
        );
        assert!(
            chart["marks"].as_u64().unwrap() > 0,
            "a chart without marks: {chart}"
        );
    }
    charts
}

#[test]
fn the_report_draws_every_chart_without_errors_on_a_desktop_and_a_phone() {
    let (_tmp, page) = report_file();
    let text = std::fs::read_to_string(&page).unwrap();

    let (dom, stderr) = run_chromium(&page, &["--window-size=1280,900", "--dump-dom"]);
    for chart in check_drawn(&dom, &text) {
        assert_eq!(chart["cut"], serde_json::json!([]), "labels cut: {chart}");
    }
    assert!(
        !stderr.contains("Uncaught"),
        "a script error in Chromium's log:\n{stderr}"
    );
    assert_eq!(html_attribute(&dom, "data-fits"), "true");

    // A phone: 360 CSS pixels wide, nothing wider than the screen. Headless windows are at
    // least 500 pixels wide, so the phone is an iframe of that size.
    let phone = phone_frame(&page, 844);
    let (dom, _) = run_chromium(&phone, &["--allow-file-access-from-files", "--dump-dom"]);
    let charts = check_drawn(&dom, &text);
    for chart in &charts {
        assert!(
            chart["width"].as_u64().unwrap() <= PHONE,
            "too wide: {chart}"
        );
    }
    // The workload chart's labels fit in its box, and its text is readable (at least 11
    // pixels once the chart is scaled to the phone's width).
    let workload = charts
        .iter()
        .find(|chart| chart["id"] == "chart-workload")
        .expect("the workload chart");
    assert_eq!(
        workload["cut"],
        serde_json::json!([]),
        "labels cut: {workload}"
    );
    assert!(
        workload["font"].as_f64().unwrap() >= 11.0,
        "text too small on a phone: {workload}"
    );
    assert_eq!(
        html_attribute(&dom, "data-fits"),
        "true",
        "the page scrolls sideways on a phone"
    );

    // Screenshots, to look at: target/tmp/report-desktop.png and report-phone.png.
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let tall_phone = phone_frame(&page, 9000);
    for (name, target, size) in [
        ("report-desktop.png", &page, "--window-size=1280,5200"),
        ("report-phone.png", &tall_phone, "--window-size=500,9000"),
    ] {
        let shot = shots.join(name);
        let _ = std::fs::remove_file(&shot);
        run_chromium(
            target,
            &[
                size,
                "--allow-file-access-from-files",
                &format!("--screenshot={}", shot.display()),
            ],
        );
        let png = std::fs::read(&shot).unwrap();
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "{name} is not a PNG");
        assert!(
            png.len() > 50_000,
            "{name} is nearly empty: {} bytes",
            png.len()
        );
    }
}

/// The phone's width in CSS pixels.
const PHONE: u64 = 360;

/// A page beside `report` that shows it in a [`PHONE`]-wide iframe `height` pixels tall, and
/// copies the report's verdict onto its own `<html>` once the report has loaded.
fn phone_frame(report: &Path, height: u32) -> PathBuf {
    let frame = report.with_file_name(format!("phone-{height}.html"));
    let name = report.file_name().unwrap().to_str().unwrap();
    std::fs::write(
        &frame,
        format!(
            "<!DOCTYPE html><html><body style=\"margin:0\">\
             <iframe id=\"phone\" src=\"{name}\" style=\"width:{PHONE}px;height:{height}px;border:0\"></iframe>\
             <script>document.getElementById('phone').addEventListener('load',function(){{\
             var d=this.contentDocument.documentElement;\
             ['data-errors','data-charts','data-fits'].forEach(function(a){{\
             document.documentElement.setAttribute(a,d.getAttribute(a))}})}});</script></body></html>"
        ),
    )
    .unwrap();
    frame
}

#[test]
fn the_check_catches_a_script_error_and_a_blocked_network_load() {
    // The same page with a broken script and an image from the network: the page's own check
    // must report both, or the test above would prove nothing.
    let ws = Workspace::with_quickstart();
    ws.run(&["assess", "--at", "2025-06-01"]).assert_code(0);
    ws.run(&["report", "--at", "2025-06-02", "--out", "report.html"])
        .assert_code(0);
    let text = std::fs::read_to_string(ws.path("report.html")).unwrap();
    let broken = text.replacen("</head>", "<script>notAFunction();</script></head>", 1);
    let broken = broken.replacen(
        "<main>",
        "<main><img alt=\"\" src=\"https://example.invalid/pixel.png\">",
        1,
    );
    let page = ws.path("broken.html");
    std::fs::write(&page, broken).unwrap();
    let (dom, _) = run_chromium(&page, &["--dump-dom"]);
    let errors: Vec<String> = serde_json::from_str(&html_attribute(&dom, "data-errors")).unwrap();
    assert!(
        errors.iter().any(|e| e.contains("notAFunction")),
        "{errors:?}"
    );
    assert!(
        errors.iter().any(|e| e.contains("example.invalid")),
        "{errors:?}"
    );
}
