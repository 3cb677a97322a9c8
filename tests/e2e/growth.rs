//! Growth features in a real assessment: the Online Retail example's rules (with their
//! `p_alive` segment) on a sample of the real data (`tests/data/online-retail-sample.csv.gz`:
//! every line of every 30th customer id, 146 customers; UCI Online Retail, CC BY 4.0), and a
//! workspace too small for the models.

use std::fs;
use std::path::Path;

use crate::common::Workspace;

/// The Online Retail example's workspace with the sample imported.
fn retail() -> Workspace {
    let ws = Workspace::new();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for entry in fs::read_dir(ws.path("rules")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            fs::remove_file(path).unwrap();
        }
    }
    fs::remove_dir_all(ws.path("rules/tests")).unwrap();
    for name in ["tiers.yaml", "rfm.yaml", "growth.yaml"] {
        fs::copy(
            root.join("examples/online-retail/rules").join(name),
            ws.path("rules").join(name),
        )
        .unwrap();
    }
    let data = root.join("tests/data/online-retail-sample.csv.gz");
    let mapping = root.join("examples/online-retail/orders.mapping.yaml");
    ws.run(&[
        "import",
        "orders",
        data.to_str().unwrap(),
        "--mapping",
        mapping.to_str().unwrap(),
    ])
    .assert_code(0);
    ws
}

#[test]
fn assess_fits_the_models_once_stores_the_fit_and_fills_the_p_alive_segment() {
    let ws = retail();
    let out = ws.run(&["assess", "--at", "2011-12-10", "--json"]);
    out.assert_code(0);
    let report = out.json();
    let fit = &report["growth"]["fitted"];
    // 143 of the sample's 146 customer ids keep an order after the mapping's cleaning.
    assert_eq!(fit["bgnbd_quality"]["customers"], 143, "{}", out.stdout);
    let repeat = fit["bgnbd_quality"]["repeat_buyers"].as_u64().unwrap();
    assert!((10..143).contains(&repeat), "{repeat}");
    for name in ["r", "alpha", "a", "b"] {
        let value = fit["bgnbd"][name].as_f64().unwrap();
        assert!(value.is_finite() && value > 0.0, "{name} = {value}");
    }
    // Gamma-Gamma's fit (or why there is none) is reported either way; BG/NBD's features stand.
    assert!(
        fit["gamma_gamma"]["q"].as_f64().is_some_and(|q| q > 1.0)
            || fit["gamma_gamma_unavailable"].as_str().is_some(),
        "{fit}"
    );
    let activity = report["segments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["set"] == "activity")
        .unwrap()["counts"]
        .as_array()
        .unwrap()
        .clone();
    let count = |id: &str| {
        activity
            .iter()
            .find(|c| c[0] == id)
            .map_or(0, |c| c[1].as_u64().unwrap())
    };
    // Every customer with an order has a p_alive, so is in one of the two segments. (On one
    // year of this shop BG/NBD finds almost no dropout, a near 0: they are all likely active.)
    assert_eq!(
        count("likely_gone") + count("likely_active"),
        143,
        "{activity:?}"
    );
    assert_eq!(count("(none)"), 0, "{activity:?}");
    // The fit is stored with the assessment.
    assert_eq!(ws.count("SELECT count(*) FROM assessment_growth"), 1);
    let stored: String = ws.query_one("SELECT fit FROM assessment_growth");
    let stored: serde_json::Value = serde_json::from_str(&stored).unwrap();
    assert_eq!(stored["fitted"], *fit);

    // explain shows the customer's summary and values, and the fit.
    let customer: String = ws.query_one(
        "SELECT c.external_id FROM customers c JOIN orders o ON o.customer_id = c.id \
         GROUP BY c.id HAVING count(*) > 3 ORDER BY c.external_id LIMIT 1",
    );
    let explained = ws.run(&["explain", &customer, "--at", "2011-12-10"]);
    explained.assert_code(0);
    explained.assert_stdout_contains("repeat purchase days");
    explained.assert_stdout_contains("  p_alive ");
    explained.assert_stdout_contains("clv_12m");
    explained.assert_stdout_contains("growth models: BG/NBD r ");

    // The report checks the model on a holdout: fitted without the last 90 days, its
    // expectations for those days against what the customers did.
    let report = ws.run(&["report", "--at", "2011-12-10", "--json"]);
    report.assert_code(0);
    let check = &report.json()["growth_holdout"]["checked"];
    assert_eq!(check["days"], 90, "{}", report.stdout);
    let rows = check["rows"].as_array().unwrap();
    let customers: u64 = rows.iter().map(|r| r["customers"].as_u64().unwrap()).sum();
    assert!(customers > 100 && customers < 143, "{customers}");
    for row in rows {
        assert!(row["actual"].as_f64().unwrap() >= 0.0 && row["predicted"].as_f64().unwrap() > 0.0);
    }
    let page = ws.path("report.html");
    ws.run(&[
        "report",
        "--at",
        "2011-12-10",
        "--out",
        page.to_str().unwrap(),
    ])
    .assert_code(0);
    let html = fs::read_to_string(page).unwrap();
    assert!(html.contains("Growth model: predicted against actual"));
    assert!(html.contains("<th scope=\"col\">predicted</th>"));
}

#[test]
fn too_little_data_leaves_the_features_none_and_says_why() {
    let ws = Workspace::with_quickstart();
    let out = ws.run(&["assess", "--json"]);
    out.assert_code(0);
    let reason = out.json()["growth"]["unavailable"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(reason.contains("too few"), "{reason}");
    let text = ws.run(&["assess", "--dry-run"]);
    text.assert_code(0);
    text.assert_stderr_contains("growth models: too few");
    // The default growth segments read the features with `??`: nobody is in them on a guess.
    assert_eq!(
        ws.count("SELECT count(*) FROM customer_segments WHERE segment_set = 'growth'"),
        0
    );
}

/// The growth values `explain --json` shows for `customer` at 2011-12-10, and where its fit
/// comes from.
fn explained_growth(ws: &Workspace, customer: &str) -> (serde_json::Value, serde_json::Value) {
    let out = ws.run(&["explain", customer, "--at", "2011-12-10", "--json"]);
    out.assert_code(0);
    let json = out.json();
    (
        json["growth_source"].clone(),
        json["growth_prediction"].clone(),
    )
}

#[test]
fn explain_reuses_the_stored_fit_reads_only_the_customer_and_equals_the_full_fit() {
    let ws = retail();
    let customer: String = ws.query_one(
        "SELECT c.external_id FROM customers c JOIN orders o ON o.customer_id = c.id \
         GROUP BY c.id HAVING count(DISTINCT o.ordered_at / 86400) > 3 \
         ORDER BY c.external_id LIMIT 1",
    );
    // No assessment has stored a fit: explain fits over every customer's orders, and says so.
    let (source, full) = explained_growth(&ws, &customer);
    assert_eq!(source, "fitted_now");
    let text = ws.run(&["explain", &customer, "--at", "2011-12-10"]);
    text.assert_stdout_contains("fitted now over every customer's orders");

    ws.run(&["assess", "--at", "2011-12-10"]).assert_code(0);
    let (source, stored) = explained_growth(&ws, &customer);
    assert_eq!(source["stored"]["assessment_id"], 1, "{source}");
    let text = ws.run(&["explain", &customer, "--at", "2011-12-10"]);
    text.assert_stdout_contains("the fit stored with assessment #1");
    // The same values as the full path (same time, window and zone as the assessment).
    for name in [
        "p_alive",
        "expected_orders_90d",
        "expected_order_value",
        "clv_12m",
        "growth_potential",
        "past_value",
    ] {
        let (a, b) = (full[name].as_f64(), stored[name].as_f64());
        match (a, b) {
            (Some(a), Some(b)) => {
                assert!(
                    (a - b).abs() <= 1e-9 * a.abs().max(1.0),
                    "{name}: {a} vs {b}"
                )
            }
            _ => assert_eq!(a, b, "{name}: {full} vs {stored}"),
        }
    }
    assert!(stored["p_alive"].as_f64().is_some(), "{stored}");
    // Only this customer's orders are read: without everybody else's, nothing changes.
    let db = rusqlite::Connection::open(ws.path("tiercare.db")).unwrap();
    db.execute(
        "DELETE FROM orders WHERE customer_id <> \
         (SELECT id FROM customers WHERE external_id = ?1)",
        [&customer],
    )
    .unwrap();
    drop(db);
    let (_, alone) = explained_growth(&ws, &customer);
    assert_eq!(alone, stored);
}

#[test]
fn the_next_assessment_starts_its_fit_from_the_stored_one() {
    let ws = retail();
    ws.run(&["assess", "--at", "2011-12-03"]).assert_code(0);
    let out = ws.run(&["assess", "--at", "2011-12-10", "--json"]);
    out.assert_code(0);
    let warm = out.json()["growth"]["fitted"].clone();
    assert_eq!(warm["warm_start"], 1, "{warm}");
    out.assert_code(0);
    // The same optimum as a cold fit of the same data (a fresh workspace). Gamma-Gamma starts
    // cold (here it is degenerate at 2011-12-10, while a warm start from 2011-12-03's fit
    // would end at an interior local maximum): the same either way.
    let cold_ws = retail();
    let out = cold_ws.run(&["assess", "--at", "2011-12-10", "--json"]);
    let cold = out.json()["growth"]["fitted"].clone();
    assert!(cold.get("warm_start").is_none(), "{cold}");
    for (model, names) in [
        ("bgnbd", &["r", "alpha", "a", "b"][..]),
        ("gamma_gamma", &["p", "q", "gamma"][..]),
    ] {
        for name in names {
            let (w, c) = (warm[model][name].as_f64(), cold[model][name].as_f64());
            if let (Some(w), Some(c)) = (w, c) {
                assert!(
                    (w - c).abs() <= 1e-6 * c.abs(),
                    "{model}.{name}: warm {w}, cold {c}"
                );
            } else {
                assert_eq!(w, c, "{model}.{name}");
            }
        }
    }
    let iterations = |fit: &serde_json::Value| fit["bgnbd_quality"]["iterations"].as_u64().unwrap();
    // Never more work than cold. (On this sample the fit is near a boundary, a = 1e-7, where
    // Newton from the previous parameters gives up and the cold path runs: the iterations are
    // equal; the CDNOW test shows the saving on a well-identified fit.)
    assert!(
        iterations(&warm) <= iterations(&cold),
        "warm {warm}, cold {cold}"
    );
}

#[test]
fn a_rule_calling_expected_orders_segments_customers_by_the_models_expectation() {
    let ws = retail();
    fs::write(
        ws.path("rules/horizon.yaml"),
        "segments:\n\
         \x20 next_month:\n\
         \x20   - id: buyer\n\
         \x20     when: (expected_orders(30) ?? 0.0) >= 0.4\n\
         \x20 next_quarter_function:\n\
         \x20   - id: buyer\n\
         \x20     when: (expected_orders(90.0) ?? 0.0) >= 0.4\n\
         \x20 next_quarter_feature:\n\
         \x20   - id: buyer\n\
         \x20     when: (expected_orders_90d ?? 0.0) >= 0.4\n",
    )
    .unwrap();
    ws.run(&["check"]).assert_code(0);
    ws.run(&["assess", "--at", "2011-12-10"]).assert_code(0);
    let members = |set: &str| -> Vec<String> {
        let db = rusqlite::Connection::open(ws.path("tiercare.db")).unwrap();
        let mut statement = db
            .prepare(
                "SELECT c.external_id FROM customer_segments s \
                 JOIN customers c ON c.id = s.customer_id \
                 WHERE s.segment_set = ?1 AND s.segment = 'buyer' ORDER BY c.external_id",
            )
            .unwrap();
        statement
            .query_map([set], |row| row.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    let (month, quarter) = (members("next_month"), members("next_quarter_function"));
    // `expected_orders(90)` is `expected_orders_90d`; a month expects fewer orders than a quarter.
    assert_eq!(quarter, members("next_quarter_feature"));
    assert!(!month.is_empty() && month.len() < quarter.len() && quarter.len() < 143);
    assert!(month.iter().all(|id| quarter.contains(id)));
    // Each side of the line, as the stored fit computes it from the customer's summary.
    let all: Vec<String> = {
        let db = rusqlite::Connection::open(ws.path("tiercare.db")).unwrap();
        let mut statement = db
            .prepare(
                "SELECT DISTINCT c.external_id FROM customers c \
                 JOIN orders o ON o.customer_id = c.id ORDER BY c.external_id",
            )
            .unwrap();
        statement
            .query_map([], |row| row.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    let outside: Vec<&String> = all.iter().filter(|id| !month.contains(id)).collect();
    for customer in month.iter().take(3).chain(outside.into_iter().take(3)) {
        let out = ws.run(&["explain", customer, "--at", "2011-12-10", "--json"]);
        out.assert_code(0);
        let json = out.json();
        let fit = &json["growth"]["fitted"]["bgnbd"];
        let params = tiercare_growth::BgNbd {
            r: fit["r"].as_f64().unwrap(),
            alpha: fit["alpha"].as_f64().unwrap(),
            a: fit["a"].as_f64().unwrap(),
            b: fit["b"].as_f64().unwrap(),
        };
        let summary = &json["growth_summary"];
        let day = |name: &str| u32::try_from(summary[name].as_u64().unwrap()).unwrap();
        let expected = params
            .expected_orders(
                &tiercare_growth::Summary {
                    frequency: day("frequency"),
                    recency: day("recency"),
                    age: day("age"),
                    repeat_mean_value: None,
                },
                30.0,
            )
            .unwrap();
        assert_eq!(
            expected >= 0.4,
            month.contains(customer),
            "{customer}: {expected}"
        );
    }
}

#[test]
fn the_report_tracks_cumulative_repeat_purchases_against_the_models_expectation() {
    use chrono::TimeZone;
    let ws = retail();
    ws.run(&["assess", "--at", "2011-12-10"]).assert_code(0);
    let out = ws.run(&["report", "--at", "2011-12-10", "--json"]);
    out.assert_code(0);
    let check = out.json()["growth_holdout"]["checked"].clone();
    let weeks = check["tracking"].as_array().unwrap().clone();
    assert!(weeks.len() > 20, "{check}");
    // An independent computation from the orders: the calibration's customers (a purchase by
    // the calibration's end), their distinct purchase days in Europe/London up to 2011-12-10,
    // and the sum of each one's own E[X(t)] under the calibration fit.
    let zone = chrono_tz::Europe::London;
    let day = |t: i64| {
        i64::from(
            zone.timestamp_opt(t, 0)
                .unwrap()
                .date_naive()
                .to_epoch_days(),
        )
    };
    let (end_day, at_day) = (
        day(check["calibration_end"].as_i64().unwrap()),
        day(chrono::Utc
            .with_ymd_and_hms(2011, 12, 10, 0, 0, 0)
            .unwrap()
            .timestamp()),
    );
    let db = rusqlite::Connection::open(ws.path("tiercare.db")).unwrap();
    let mut statement = db
        .prepare(
            "SELECT customer_id, ordered_at FROM orders WHERE amount >= 0 ORDER BY customer_id",
        )
        .unwrap();
    let mut by_customer: std::collections::BTreeMap<i64, Vec<i64>> = Default::default();
    for row in statement
        .query_map([], |row| Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?)))
        .unwrap()
    {
        let (customer, at) = row.unwrap();
        by_customer.entry(customer).or_default().push(day(at));
    }
    let cohort: Vec<Vec<i64>> = by_customer
        .into_values()
        .map(|mut days| {
            days.retain(|&d| d <= at_day);
            days.sort_unstable();
            days.dedup();
            days
        })
        .filter(|days| days.first().is_some_and(|&first| first <= end_day))
        .collect();
    let fit = &check["bgnbd"];
    let params = tiercare_growth::BgNbd {
        r: fit["r"].as_f64().unwrap(),
        alpha: fit["alpha"].as_f64().unwrap(),
        a: fit["a"].as_f64().unwrap(),
        b: fit["b"].as_f64().unwrap(),
    };
    let start = cohort.iter().map(|days| days[0]).min().unwrap();
    assert_eq!(weeks.len() as i64, (at_day - start + 1 + 6) / 7);
    for (index, week) in weeks.iter().enumerate() {
        let last = week["end_day"].as_i64().unwrap();
        assert_eq!(last, (start + 7 * index as i64 + 6).min(at_day));
        let actual: usize = cohort
            .iter()
            .map(|days| days[1..].iter().filter(|&&d| d <= last).count())
            .sum();
        let expected: f64 = cohort
            .iter()
            .filter(|days| days[0] <= last)
            .map(|days| {
                params
                    .expected_orders_of_new((last - days[0]) as f64)
                    .unwrap()
            })
            .sum();
        assert_eq!(week["actual"].as_u64().unwrap(), actual as u64, "{week}");
        let ours = week["expected"].as_f64().unwrap();
        assert!(
            (ours - expected).abs() <= 1e-9 * expected.max(1.0),
            "{week}: {expected}"
        );
    }
    // The page draws both lines and lists the weeks.
    let page = ws.path("report.html");
    ws.run(&[
        "report",
        "--at",
        "2011-12-10",
        "--out",
        page.to_str().unwrap(),
    ])
    .assert_code(0);
    let html = fs::read_to_string(page).unwrap();
    assert!(html.contains("id=\"chart-growth-tracking\""));
    for line in ["tracking-actual", "tracking-expected"] {
        let start = html.find(&format!("id=\"{line}\" d=\"M")).unwrap();
        let path = &html[start..start + html[start..].find("\"/>").unwrap()];
        // One point per week after the origin.
        assert_eq!(path.matches(" L").count(), weeks.len(), "{line}");
    }
    let last = weeks.last().unwrap();
    let row = format!(
        "<th scope=\"row\">{}</th><td>{}</td>",
        last["week"],
        chrono::NaiveDate::from_epoch_days(last["end_day"].as_i64().unwrap() as i32).unwrap()
    );
    assert!(html.contains(&row), "{row}");
    assert!(html.contains("Cumulative repeat purchase days per week: actual and expected"));
}
