//! `tiercare report` end to end: the real binary on a workspace with two assessments.

use crate::common;

use common::Workspace;

/// A quickstart workspace assessed twice, a month apart.
fn assessed() -> Workspace {
    let ws = Workspace::with_quickstart();
    // A manager whose name would be markup if it were not escaped.
    let managers = ws.write(
        "more-managers.csv",
        "manager_id,name,email,role,capacity,active\n\
         mallory,<img src=x onerror=alert(1)>,m@example.com,junior,1,true\n",
    );
    ws.run(&["import", "managers", &managers]).assert_code(0);
    ws.run(&["assess", "--at", "2025-05-01"]).assert_code(0);
    ws.run(&["assess", "--at", "2025-06-01"]).assert_code(0);
    ws
}

#[test]
fn without_an_assessment_the_report_says_what_to_do() {
    let ws = Workspace::with_quickstart();
    let out = ws.run(&["report"]);
    out.assert_code(2);
    out.assert_stderr_contains("run `tiercare assess` first");
}

#[test]
fn the_summary_fits_80_columns_and_agrees_with_the_assessment() {
    let ws = assessed();
    let out = ws.run(&["report", "--at", "2025-06-02"]);
    out.assert_code(0);
    for heading in [
        "Customers and revenue per tier",
        "RFM grid",
        "Tier moves since 2025-04-30 23:00 UTC",
        "Follow-up work per tier",
        "Managers: customers owned against capacity",
        "E-mails per rule",
        "care programme (a plain comparison, not a causal claim)",
    ] {
        out.assert_stdout_contains(heading);
    }
    for line in out.stdout.lines() {
        assert!(
            line.chars().count() <= 80,
            "{} columns: {line:?}",
            line.chars().count()
        );
    }
    assert!(!out.stdout.contains('\x1b'), "colour without a terminal");

    // The JSON figures agree with what the assessment recorded.
    let report = ws.run(&["report", "--at", "2025-06-02", "--json"]);
    report.assert_code(0);
    let figures = report.json();
    let tiered = ws.count("SELECT count(*) FROM customer_tiers");
    assert_eq!(figures["customers"], tiered);
    for tier in figures["tiers"].as_array().unwrap() {
        let id = tier["id"].as_str().unwrap();
        let stored = ws.count(&format!(
            "SELECT count(*) FROM customer_tiers WHERE tier = '{id}'"
        ));
        assert_eq!(tier["customers"], stored, "tier {id}");
    }
    let assess = ws.run(&["assess", "--dry-run", "--at", "2025-06-01", "--json"]);
    assess.assert_code(0);
    let revenue: f64 = assess.json()["tiers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["revenue"].as_f64().unwrap())
        .sum();
    assert!((figures["revenue"].as_f64().unwrap() - revenue).abs() < 1e-6);
    // The moves since the previous assessment add up to every tiered customer.
    let moved: u64 = figures["moves"]["counts"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|row| row.as_array().unwrap().iter())
        .map(|n| n.as_u64().unwrap())
        .sum();
    assert_eq!(moved as i64, tiered);
    assert_eq!(figures["trend"].as_array().unwrap().len(), 2);

    // As of the first assessment, there is no previous one.
    let early = ws.run(&["report", "--at", "2025-05-15", "--json"]);
    early.assert_code(0);
    assert!(early.json()["moves"]["previous"].is_null());
}

#[test]
fn the_html_file_is_self_contained_and_escapes_customer_data() {
    let ws = assessed();
    let out = ws.run(&["report", "--at", "2025-06-02", "--out", "report.html"]);
    out.assert_code(0);
    out.assert_stdout_contains("wrote report.html");
    let page = std::fs::read_to_string(ws.path("report.html")).unwrap();
    assert!(page.starts_with("<!DOCTYPE html>"));
    for section in [
        "id=\"tiers\"",
        "id=\"pareto\"",
        "id=\"rfm\"",
        "id=\"moves\"",
        "id=\"work\"",
        "id=\"emails\"",
        "id=\"care\"",
    ] {
        assert!(page.contains(section), "no {section}");
    }
    // No network: nothing to fetch, and a policy that forbids it.
    assert!(!page.contains("src=\"http") && !page.contains("href=\"http"));
    assert!(page.contains("default-src 'none'"));
    assert!(page.contains("&lt;img src=x onerror=alert(1)&gt;"));
    assert!(!page.contains("<img src=x"));
    // No temporary file left beside it.
    let names: Vec<String> = std::fs::read_dir(ws.root())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!names.iter().any(|n| n.ends_with(".tmp")), "{names:?}");
}
