//! Tests of the demo data generator: determinism, native format, field validity, the Pareto
//! property and spec validation.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use tiercare_scheduler::demo::{DemoError, DemoFiles, DemoSpec, DemoStats, write_demo};

/// A spec ending mid-day, so "never after `end`" is tested on a partial day.
fn spec(customers: u64, seed: u64) -> DemoSpec {
    DemoSpec {
        customers,
        seed,
        end: end(),
        ..DemoSpec::default()
    }
}

/// The end used by [`spec`]: 2025-03-14T10:30:15Z.
fn end() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2025-03-14T10:30:15Z")
        .expect("valid time")
        .with_timezone(&Utc)
}

/// Writes a data set into `dir`, checking progress reports along the way.
fn generate(dir: &Path, spec: &DemoSpec) -> (DemoFiles, DemoStats) {
    let mut reported = Vec::new();
    let result = write_demo(dir, spec, &mut |done| reported.push(done)).expect("demo written");
    assert!(
        reported.windows(2).all(|pair| pair[0] < pair[1]),
        "progress goes up: {reported:?}"
    );
    assert_eq!(
        reported.last(),
        Some(&spec.customers),
        "progress ends at all"
    );
    result
}

/// A CSV file read back with the `csv` crate (which rejects rows of the wrong length).
struct Table {
    header: Vec<String>,
    records: Vec<csv::StringRecord>,
}

/// One row of a [`Table`], indexed by column name.
struct Row<'a> {
    header: &'a [String],
    record: &'a csv::StringRecord,
}

impl<'a> Row<'a> {
    fn get(&self, column: &str) -> &'a str {
        let position = self
            .header
            .iter()
            .position(|name| name == column)
            .unwrap_or_else(|| panic!("no column {column}"));
        &self.record[position]
    }
}

impl std::fmt::Debug for Row<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.record.fmt(f)
    }
}

impl Table {
    fn rows(&self) -> impl Iterator<Item = Row<'_>> {
        self.records.iter().map(|record| Row {
            header: &self.header,
            record,
        })
    }

    fn len(&self) -> usize {
        self.records.len()
    }
}

fn read(path: &Path) -> Table {
    let mut reader = csv::Reader::from_path(path).expect("file opens");
    let header: Vec<String> = reader
        .headers()
        .expect("header")
        .iter()
        .map(str::to_owned)
        .collect();
    let records = reader
        .records()
        .map(|record| {
            let record = record.unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert_eq!(record.len(), header.len(), "{}: {record:?}", path.display());
            record
        })
        .collect();
    Table { header, records }
}

fn time(text: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%SZ")
        .unwrap_or_else(|e| panic!("bad time {text:?}: {e}"))
}

fn ids<'a>(table: &'a Table, column: &str) -> BTreeSet<&'a str> {
    let ids: BTreeSet<&str> = table.rows().map(|row| row.get(column)).collect();
    assert_eq!(ids.len(), table.len(), "{column} is unique");
    ids
}

#[test]
fn same_seed_gives_identical_bytes_and_another_seed_does_not() {
    let dirs = [(); 3].map(|()| tempfile::tempdir().expect("temp dir"));
    let (first, _) = generate(dirs[0].path(), &spec(2000, 7));
    let (again, _) = generate(dirs[1].path(), &spec(2000, 7));
    let (other, _) = generate(dirs[2].path(), &spec(2000, 8));
    let pairs = |files: &DemoFiles| {
        [
            files.managers.clone(),
            files.customers.clone(),
            files.orders.clone(),
            files.interactions.clone(),
            files.complaints.clone(),
            files.feedback.clone(),
        ]
    };
    for ((a, b), c) in pairs(&first).iter().zip(pairs(&again)).zip(pairs(&other)) {
        let (a_bytes, b_bytes) = (fs::read(a).expect("read"), fs::read(&b).expect("read"));
        assert_eq!(a_bytes, b_bytes, "{} differs between runs", a.display());
        assert_ne!(
            a_bytes,
            fs::read(&c).expect("read"),
            "{} is the same for another seed",
            a.display()
        );
    }
}

#[test]
fn files_have_native_headers_and_the_counts_returned() {
    let dir = tempfile::tempdir().expect("temp dir");
    let target = dir.path().join("nested").join("demo");
    let (files, stats) = generate(&target, &spec(1000, 42));
    let expected: [(&Path, &str, u64); 6] = [
        (
            &files.managers,
            "manager_id,name,email,role,capacity,active,timezone",
            stats.managers,
        ),
        (
            &files.customers,
            "customer_id,name,email,phone,birthday,region,owner,timezone,consent_email,\
             consent_sms,industry,potential,relationship",
            stats.customers,
        ),
        (
            &files.orders,
            "order_id,customer_id,ordered_at,amount",
            stats.orders,
        ),
        (
            &files.interactions,
            "interaction_id,customer_id,kind,occurred_at,by,note",
            stats.interactions,
        ),
        (
            &files.complaints,
            "complaint_id,customer_id,opened_at,resolved_at,severity,subject",
            stats.complaints,
        ),
        (
            &files.feedback,
            "feedback_id,customer_id,given_at,score,comment",
            stats.feedback,
        ),
    ];
    for (path, header, count) in expected {
        assert!(
            path.starts_with(&target),
            "{} is in the target",
            path.display()
        );
        let text = fs::read_to_string(path).expect("utf-8 file");
        assert_eq!(text.lines().next(), Some(header), "{}", path.display());
        let table = read(path);
        assert_eq!(table.header.join(","), header, "{}", path.display());
        assert_eq!(table.len() as u64, count, "{}", path.display());
        assert!(count > 0, "{} has rows", path.display());
    }
    assert_eq!(stats.customers, 1000);
    assert_eq!(stats.managers, 4, "at least 4 managers");
}

#[test]
fn every_field_parses_at_20000_customers() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (files, stats) = generate(dir.path(), &spec(20_000, 42));
    let end = end().naive_utc();
    let start = NaiveDate::from_ymd_opt(2023, 3, 14)
        .and_then(|d| d.and_hms_opt(10, 30, 15))
        .expect("start");
    let in_window = |text: &str| {
        let t = time(text);
        assert!(start <= t && t <= end, "{text} outside [{start}, {end}]");
        t
    };
    let valid_email = |email: &str| {
        let (local, domain) = email.split_once('@').expect("email has @");
        assert_eq!(domain, "example.com", "{email}");
        assert!(
            !local.is_empty()
                && local
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.'),
            "{email}"
        );
    };

    let managers = read(&files.managers);
    assert_eq!(managers.len(), 40, "one manager per 500 customers");
    let manager_ids = ids(&managers, "manager_id");
    let seniors = managers
        .rows()
        .filter(|row| row.get("role") == "senior")
        .count();
    assert_eq!(seniors, 20, "every second manager is senior");
    for row in managers.rows() {
        valid_email(row.get("email"));
        let capacity: u32 = row.get("capacity").parse().expect("capacity");
        let range = if row.get("role") == "senior" {
            150..=300
        } else {
            500..=1500
        };
        assert!(range.contains(&capacity), "{row:?}");
        assert_eq!(row.get("active"), "true");
    }

    let customers = read(&files.customers);
    let customer_ids = ids(&customers, "customer_id");
    assert!(customer_ids.contains("C0000001") && customer_ids.contains("C0020000"));
    let (mut leap_birthdays, mut without_email, mut owned, mut consent_email) = (0, 0, 0, 0);
    let mut emails = BTreeSet::new();
    for row in customers.rows() {
        assert!(!row.get("name").trim().is_empty());
        if row.get("email").is_empty() {
            without_email += 1;
        } else {
            valid_email(row.get("email"));
            assert!(
                emails.insert(row.get("email").to_owned()),
                "duplicate email"
            );
        }
        if !row.get("birthday").is_empty() {
            let birthday = NaiveDate::parse_from_str(row.get("birthday"), "%Y-%m-%d")
                .unwrap_or_else(|e| panic!("{row:?}: {e}"));
            assert!((1950..=2005).contains(&chrono::Datelike::year(&birthday)));
            if row.get("birthday").ends_with("-02-29") {
                leap_birthdays += 1;
            }
        }
        if !row.get("owner").is_empty() {
            assert!(manager_ids.contains(row.get("owner")), "{row:?}");
            owned += 1;
        }
        row.get("timezone")
            .parse::<chrono_tz::Tz>()
            .expect("time zone");
        assert!(row.get("phone").is_empty() || row.get("phone").starts_with('+'));
        consent_email += usize::from(row.get("consent_email") == "true");
        assert!(["true", "false"].contains(&row.get("consent_sms")));
        let potential: u32 = row.get("potential").parse().expect("potential");
        assert!(potential <= 100);
        assert!(["new", "developing", "strategic"].contains(&row.get("relationship")));
        assert!(!row.get("industry").is_empty() && !row.get("region").is_empty());
    }
    assert!(leap_birthdays > 0, "some 29 February birthdays");
    assert!(
        (300..=900).contains(&without_email),
        "~3% without email: {without_email}"
    );
    assert!((4000..=8000).contains(&owned), "owners: {owned}");
    assert!(
        (16_000..=18_000).contains(&consent_email),
        "{consent_email}"
    );
    assert!(
        customers.rows().any(|r| r.get("name").starts_with("Wang ")),
        "Chinese names, family name first"
    );
    assert!(customers.rows().any(|r| r.get("name").contains('\'')));
    assert!(customers.rows().any(|r| !r.get("name").is_ascii()));

    let orders = read(&files.orders);
    ids(&orders, "order_id");
    assert!(
        orders
            .rows()
            .next()
            .is_some_and(|r| r.get("order_id") == "O000000001")
    );
    let mut last_order: BTreeMap<&str, NaiveDateTime> = BTreeMap::new();
    let mut cents: u64 = 0;
    for row in orders.rows() {
        let customer = row.get("customer_id");
        assert!(customer_ids.contains(customer));
        let at = in_window(row.get("ordered_at"));
        if let Some(previous) = last_order.insert(customer, at) {
            assert!(previous <= at, "orders of {customer} in time order");
        }
        let (units, fraction) = row.get("amount").split_once('.').expect("2 decimals");
        assert_eq!(fraction.len(), 2, "{}", row.get("amount"));
        let amount =
            units.parse::<u64>().expect("units") * 100 + fraction.parse::<u64>().expect("cents");
        assert!(amount > 0);
        cents += amount;
    }
    assert!((stats.revenue - cents as f64 / 100.0).abs() < 0.005);
    let buyers = last_order.len() as f64 / 20_000.0;
    assert!((0.9..0.99).contains(&buyers), "share with orders: {buyers}");
    let per_customer = orders.len() as f64 / 20_000.0;
    assert!(
        (9.0..11.0).contains(&per_customer),
        "orders per customer {per_customer}"
    );

    let interactions = read(&files.interactions);
    ids(&interactions, "interaction_id");
    for row in interactions.rows() {
        assert!(customer_ids.contains(row.get("customer_id")));
        in_window(row.get("occurred_at"));
        assert!(["call", "visit", "email", "meeting"].contains(&row.get("kind")));
        assert!(row.get("by").is_empty() || manager_ids.contains(row.get("by")));
    }

    let complaints = read(&files.complaints);
    ids(&complaints, "complaint_id");
    let mut open = 0;
    let mut complained = BTreeSet::new();
    for row in complaints.rows() {
        complained.insert(row.get("customer_id"));
        let opened = in_window(row.get("opened_at"));
        if row.get("resolved_at").is_empty() {
            open += 1;
        } else {
            assert!(in_window(row.get("resolved_at")) >= opened);
        }
        assert!(["low", "medium", "high", "critical"].contains(&row.get("severity")));
    }
    assert!(
        (600..=1500).contains(&complained.len()),
        "{}",
        complained.len()
    );
    let open_share = f64::from(open) / complaints.len() as f64;
    assert!(
        (0.1..0.35).contains(&open_share),
        "open complaints: {open_share}"
    );
    assert!(complaints.rows().any(|r| r.get("subject").contains(',')));

    let feedback = read(&files.feedback);
    ids(&feedback, "feedback_id");
    let (mut happy, mut unhappy) = ((0u32, 0u32), (0u32, 0u32));
    let mut gave = BTreeSet::new();
    for row in feedback.rows() {
        gave.insert(row.get("customer_id"));
        in_window(row.get("given_at"));
        let score: u32 = row.get("score").parse().expect("score");
        assert!((1..=5).contains(&score));
        let sums = if complained.contains(row.get("customer_id")) {
            &mut unhappy
        } else {
            &mut happy
        };
        *sums = (sums.0 + score, sums.1 + 1);
    }
    assert!((3000..=5000).contains(&gave.len()), "{}", gave.len());
    let mean = |(sum, n): (u32, u32)| f64::from(sum) / f64::from(n);
    assert!(
        mean(happy) > 4.0 && mean(unhappy) < 3.0,
        "{happy:?} {unhappy:?}"
    );
    assert!(feedback.rows().any(|r| r.get("comment").contains('"')));
}

#[test]
fn top_fifth_of_customers_bring_most_revenue() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (files, stats) = generate(dir.path(), &spec(20_000, 42));
    let mut revenue: BTreeMap<String, f64> = read(&files.customers)
        .rows()
        .map(|row| (row.get("customer_id").to_owned(), 0.0))
        .collect();
    for row in read(&files.orders).rows() {
        let amount: f64 = row.get("amount").parse().expect("amount");
        *revenue
            .get_mut(row.get("customer_id"))
            .expect("known customer") += amount;
    }
    let mut sorted: Vec<f64> = revenue.into_values().collect();
    sorted.sort_by(|a, b| b.total_cmp(a));
    let total: f64 = sorted.iter().sum();
    let top: f64 = sorted[..sorted.len() / 5].iter().sum();
    let share = top / total;
    assert!((0.65..=0.90).contains(&share), "top 20% share {share}");
    assert!(
        sorted[0] / total < 0.05,
        "largest customer {}",
        sorted[0] / total
    );
    assert!((total - stats.revenue).abs() / total < 1e-9);
}

#[test]
fn invalid_specs_are_refused_before_writing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let target = dir.path().join("never");
    let bad = [
        spec(0, 1),
        spec(100_000_001, 1),
        DemoSpec {
            years: 0,
            ..spec(10, 1)
        },
        DemoSpec {
            orders_per_customer: f64::NAN,
            ..spec(10, 1)
        },
        DemoSpec {
            orders_per_customer: -1.0,
            ..spec(10, 1)
        },
    ];
    for spec in bad {
        let result = write_demo(&target, &spec, &mut |_| {});
        assert!(
            matches!(result, Err(DemoError::InvalidSpec(_))),
            "{spec:?}: {result:?}"
        );
    }
    assert!(!target.exists(), "nothing written for an invalid spec");
}
