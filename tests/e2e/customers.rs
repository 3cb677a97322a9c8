//! End-to-end tests of `tiercare customers`: the list matches what `assess` decided and the
//! database holds; filters, sort, paging; CSV read back by a real CSV parser.

use crate::common;

use std::collections::BTreeSet;
use std::path::PathBuf;

use common::Run;

/// A 300-customer demo workspace (no simulated days), assessed at its end.
struct Demo {
    _tmp: tempfile::TempDir,
    root: PathBuf,
}

const AT: &str = "2025-07-01";

impl Demo {
    fn new() -> Demo {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("shop");
        common::run_in(
            tmp.path(),
            &[
                "demo",
                root.to_str().unwrap(),
                "--customers",
                "300",
                "--end",
                "2025-06-30",
                "--days",
                "0",
            ],
        )
        .assert_code(0);
        Demo { _tmp: tmp, root }
    }

    fn run(&self, args: &[&str]) -> Run {
        common::run_in(&self.root, args)
    }

    fn ids(&self, sql: &str) -> BTreeSet<String> {
        let db = rusqlite::Connection::open(self.root.join("tiercare.db")).unwrap();
        let mut stmt = db.prepare(sql).unwrap();
        stmt.query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    /// Runs `customers ARGS --csv` and parses the output with the `csv` crate.
    fn csv(&self, args: &[&str]) -> (Vec<String>, Vec<csv::StringRecord>) {
        let mut all = vec!["customers", "--at", AT, "--csv"];
        all.extend_from_slice(args);
        let run = self.run(&all);
        run.assert_code(0);
        let mut reader = csv::Reader::from_reader(run.stdout.as_bytes());
        let header = reader
            .headers()
            .unwrap()
            .iter()
            .map(str::to_owned)
            .collect();
        let records = reader.records().collect::<Result<Vec<_>, _>>().unwrap();
        (header, records)
    }
}

fn ids(records: &[csv::StringRecord]) -> BTreeSet<String> {
    records.iter().map(|record| record[0].to_owned()).collect()
}

#[test]
fn customers_lists_exactly_the_tier_assess_counted_filters_sorts_and_pages() {
    let demo = Demo::new();
    let assessed = demo.run(&["assess", "--at", AT, "--json"]);
    assessed.assert_code(0);
    let report = assessed.json();
    let counted_a = report["tiers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|tier| tier["tier"] == "A")
        .map(|tier| tier["customers"].as_u64().unwrap())
        .unwrap();
    assert!(counted_a > 0, "{report}");

    // --tier A: exactly assess's count and the database's A customers.
    let (header, records) = demo.csv(&["--tier", "A"]);
    assert_eq!(
        header,
        [
            "id",
            "name",
            "email",
            "tier",
            "segments",
            "owner",
            "owner_name",
            "orders_total",
            "revenue_total",
            "last_order_at",
            "last_contact_at"
        ]
    );
    assert_eq!(records.len() as u64, counted_a);
    assert_eq!(
        ids(&records),
        demo.ids(
            "SELECT c.external_id FROM customers c JOIN customer_tiers t ON t.customer_id = c.id \
             WHERE t.tier = 'A'"
        )
    );
    assert!(records.iter().all(|record| &record[3] == "A"));
    assert!(
        records
            .iter()
            .all(|record| record[2].contains('@') && !record[1].is_empty())
    );

    // --where in the rules' language, with a feature and the stored tier.
    let (_, records) = demo.csv(&["--where", "tier == \"A\" && orders_total >= 10"]);
    assert_eq!(
        ids(&records),
        demo.ids(
            "SELECT c.external_id FROM customers c JOIN customer_tiers t ON t.customer_id = c.id \
             WHERE t.tier = 'A' AND (SELECT count(*) FROM orders o WHERE o.customer_id = c.id) >= 10"
        )
    );
    assert!(!records.is_empty());

    // --owner by manager name, and the not-contacted filter.
    let (manager_id, manager_name): (String, String) = {
        let db = rusqlite::Connection::open(demo.root.join("tiercare.db")).unwrap();
        db.query_row(
            "SELECT m.external_id, m.name FROM managers m \
             WHERE EXISTS (SELECT 1 FROM customers c WHERE c.owner = m.external_id) \
             ORDER BY m.external_id LIMIT 1",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .unwrap()
    };
    let owned = demo.ids(&format!(
        "SELECT external_id FROM customers WHERE owner = '{manager_id}'"
    ));
    let (_, by_name) = demo.csv(&["--owner", &manager_name]);
    assert_eq!(ids(&by_name), owned);
    let (_, by_id) = demo.csv(&["--owner", &manager_id]);
    assert_eq!(ids(&by_id), owned);
    let (_, quiet) = demo.csv(&["--owner", &manager_id, "--not-contacted-for", "60"]);
    let cutoff = "(strftime('%s', '2025-07-01') - 60 * 86400)";
    assert_eq!(
        ids(&quiet),
        demo.ids(&format!(
            "SELECT c.external_id FROM customers c WHERE c.owner = '{manager_id}' AND NOT EXISTS \
             (SELECT 1 FROM interactions i WHERE i.customer_id = c.id AND i.occurred_at >= {cutoff})"
        ))
    );
    let (_, same) = demo.csv(&[
        "--where",
        &format!("owner == \"{manager_id}\" && days_since_last_contact > 60"),
    ]);
    assert_eq!(
        ids(&same),
        ids(&quiet),
        "the expression agrees with the filter"
    );

    // --sort descending by a column and by a feature.
    let (_, sorted) = demo.csv(&["--tier", "A", "--sort", "-revenue_total"]);
    let revenue: Vec<f64> = sorted.iter().map(|r| r[8].parse().unwrap()).collect();
    assert!(revenue.windows(2).all(|w| w[0] >= w[1]), "{revenue:?}");
    // The same order through the features pass (an expression, not the column).
    let (_, by_feature) = demo.csv(&["--tier", "A", "--sort", "-(revenue_total + 0.0)"]);
    assert_eq!(
        by_feature
            .iter()
            .map(|r| r[0].to_owned())
            .collect::<Vec<_>>(),
        sorted.iter().map(|r| r[0].to_owned()).collect::<Vec<_>>()
    );
    let (_, by_rank) = demo.csv(&["--sort", "revenue_rank", "--limit", "5"]);
    let top: Vec<String> = by_rank.iter().map(|r| r[0].to_owned()).collect();
    let (_, all) = demo.csv(&["--sort", "-revenue_window"]);
    assert_eq!(top.len(), 5);
    assert_eq!(
        top,
        all[..5].iter().map(|r| r[0].to_owned()).collect::<Vec<_>>(),
        "rank 1 is the highest revenue"
    );

    // Paging: two pages are the whole, and the table says how many more there are.
    let (_, first) = demo.csv(&["--tier", "A", "--limit", "4"]);
    let (_, rest) = demo.csv(&["--tier", "A", "--offset", "4"]);
    assert_eq!(first.len(), 4);
    let mut pages = ids(&first);
    pages.extend(ids(&rest));
    assert_eq!(pages, ids(&records_of(&demo, &["--tier", "A"])));
    let table = demo.run(&["customers", "--tier", "A", "--limit", "4"]);
    table.assert_code(0);
    table.assert_stdout_contains(&format!(
        "4 of {counted_a} matching customers shown; {} more",
        counted_a - 4
    ));

    // JSON Lines: one object per customer.
    let jsonl = demo.run(&["customers", "--tier", "A", "--jsonl"]);
    jsonl.assert_code(0);
    let objects: Vec<serde_json::Value> = jsonl
        .stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(objects.len() as u64, counted_a);
    assert!(objects.iter().all(|object| object["tier"] == "A"));
}

fn records_of(demo: &Demo, args: &[&str]) -> Vec<csv::StringRecord> {
    demo.csv(args).1
}

#[test]
fn customers_refuses_an_unknown_feature_with_a_suggestion() {
    let ws = common::Workspace::with_quickstart();
    let out = ws.run(&["customers", "--where", "days_since_last_contct > 60"]);
    out.assert_code(2);
    out.assert_stderr_contains("did you mean `days_since_last_contact`");
}

#[test]
fn customers_csv_quotes_names_with_commas_and_quotes() {
    let ws = common::Workspace::new();
    let file = ws.write(
        "people.csv",
        "customer_id,name,email\nc1,\"Smith, \"\"Jo\"\"\",jo@example.com\nc2,Plain,p@example.com\n",
    );
    ws.run(&["import", "customers", &file]).assert_code(0);
    let out = ws.run(&["customers", "--csv"]);
    out.assert_code(0);
    let mut reader = csv::Reader::from_reader(out.stdout.as_bytes());
    let records = reader.records().collect::<Result<Vec<_>, _>>().unwrap();
    assert_eq!(records.len(), 2);
    assert_eq!(&records[0][1], "Smith, \"Jo\"");
    assert_eq!(&records[0][2], "jo@example.com");
}

/// The ids of the customers whose external id, name or e-mail address contains each of
/// `queries`, computed by Python from the rows of `db`: both sides lowered in ASCII only (as
/// SQLite's `lower()` does), in row id order. A computation apart from SQLite's search.
fn python_substring_matches(
    db: &std::path::Path,
    queries: &[&str],
) -> std::collections::BTreeMap<String, Vec<String>> {
    let python =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-venv/bin/python");
    assert!(
        python.exists(),
        "the tests' Python venv is missing: run `bash .ci/deps`"
    );
    let script = "\
import json, sqlite3, string, sys
lower = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)
rows = sqlite3.connect(sys.argv[1]).execute(
    'SELECT external_id, name, email FROM customers ORDER BY id').fetchall()
out = {}
for query in json.loads(sys.argv[2]):
    q = query.strip().translate(lower)
    out[query] = [r[0] for r in rows
                  if any(f is not None and q in f.translate(lower) for f in r)]
print(json.dumps(out))
";
    let output = std::process::Command::new(python)
        .args(["-c", script])
        .arg(db)
        .arg(serde_json::to_string(queries).unwrap())
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn search_finds_exactly_what_python_finds_by_substring_chinese_names_included() {
    let ws = common::Workspace::new();
    let surnames = ["王", "李", "张", "欧阳", "Zoë", "ÄRGER", "Smith", "O'Brien"];
    let given = [
        "伟",
        "小明",
        "秀英",
        "Ada",
        "ZOË",
        "jürgen",
        "Ann-Marie",
        "Lü",
    ];
    let mut csv = String::from("customer_id,name,email\n");
    for i in 0..3_000_usize {
        let name = if i % 17 == 0 {
            String::new()
        } else {
            format!(
                "{}{}{}",
                surnames[i % surnames.len()],
                if i % 3 == 0 { " " } else { "" },
                given[(i / 5) % given.len()]
            )
        };
        let email = if i % 13 == 0 {
            String::new()
        } else {
            format!(
                "{}{i}@{}",
                ["wang", "Li", "ZOE", "smith"][i % 4],
                ["Example.com", "qq.com", "Mail.CN"][i % 3]
            )
        };
        csv.push_str(&format!("K{i:05},{name},{email}\n"));
    }
    let file = ws.write("people.csv", &csv);
    ws.run(&["import", "customers", &file]).assert_code(0);
    assert_eq!(ws.count("SELECT count(*) FROM customers"), 3_000);
    let queries = [
        "王",
        "欧阳",
        "王小明",
        "张 秀英",
        "阳小",
        "zoë",
        "ZOË",
        "Zoë",
        "ärger",
        "ÄRGER",
        "jürgen",
        "LÜ",
        "smith12",
        "SMITH",
        "@qq.com",
        "@example.COM",
        "mail.cn",
        "k0012",
        "K02999",
        "o'b",
        "ann-",
        "n-m",
        "%",
        "_",
        "1%",
        "  ada  ",
        "nobody here",
        "@",
        "wang3",
    ];
    let expected = python_substring_matches(&ws.path("tiercare.db"), &queries);
    for query in queries {
        let out = ws.run(&["customers", "--search", query, "--csv"]);
        out.assert_code(0);
        let mut reader = csv::Reader::from_reader(out.stdout.as_bytes());
        let found: Vec<String> = reader
            .records()
            .map(|record| record.unwrap()[0].to_owned())
            .collect();
        assert_eq!(found, expected[query], "--search {query:?}");
    }
    // Not a vacuous comparison.
    assert!(expected["王小明"].len() > 10 && expected["ÄRGER"].len() > 10);
    assert!(expected["ärger"].is_empty(), "ASCII-only case folding");
}
