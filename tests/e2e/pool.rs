//! End-to-end tests of the public pool (公海): a month of the daemon in simulated time (one
//! `run --once` per day) on a real workspace reclaims exactly the customers the rules name, as
//! computed independently here from the database's raw rows before each day's run: a warning
//! first, never a pinned or protected customer, never back to the previous owner within the
//! no-return period, claim caps respected; and `tiercare pool` lists the pool and countdowns.

use std::collections::{BTreeMap, BTreeSet};

use crate::common;

use common::Workspace;

const DAY: i64 = 86_400;
const WARN: i64 = 3 * DAY;
const NO_RETURN: i64 = 20 * DAY;

/// The test's pool rules (A: 10 days without a follow-up; B: 15 days without one, or 25 without
/// an order), replacing the default `rules/pool.yaml`.
const POOL: &str = "\
pool:
  warn_before: 3d
  warn_task: true
  no_return: 20d
  claims_per_day: 1
  protect: { pinned: true, attribute: vip }
  tiers:
    A: { no_followup: 10d }
    B: { no_followup: 15d, no_order: 25d }
";

/// `YYYY-MM-DD HH:MM:SS` (UTC) of a unix time, by SQLite.
fn text(unix: i64) -> String {
    rusqlite::Connection::open_in_memory()
        .unwrap()
        .query_row("SELECT datetime(?1, 'unixepoch')", [unix], |row| row.get(0))
        .unwrap()
}

/// RFC 3339 of a unix time.
fn rfc3339(unix: i64) -> String {
    format!("{}Z", text(unix).replace(' ', "T"))
}

/// A workspace with managers, customers in A, B and C (owned, pinned, protected, unowned),
/// orders before `base` and interactions during the month; assessed at `base`, without the
/// nightly reassessment (tiers stay put, so the test's computation and the daemon's agree).
fn workspace(base: i64) -> Workspace {
    let ws = Workspace::new();
    let tiers = std::fs::read_to_string(ws.path("rules/tiers.yaml")).unwrap();
    let tiers: String = tiers
        .lines()
        .filter(|line| !line.trim_start().starts_with("reassess:"))
        .map(|line| format!("{line}\n"))
        .collect();
    std::fs::write(ws.path("rules/tiers.yaml"), tiers).unwrap();
    std::fs::write(ws.path("rules/pool.yaml"), POOL).unwrap();
    let managers = ws.write(
        "managers.csv",
        "manager_id,name,role,active\ns1,Senior One,senior,true\ns2,Senior Two,senior,true\n\
         j1,Junior One,junior,true\nj2,Junior Two,junior,true\n",
    );
    // A: a1-a4 owned, u1-u4 unowned (10,000 each: 80% of the revenue); B: b1-b3 (5,000);
    // C: c1-c5 (900).
    let owned = [
        ("a1", "s1", ""),
        ("a2", "s1", ""),
        ("a3", "s2", ""),
        ("a4", "s2", "true"),
        ("b1", "j1", ""),
        ("b2", "j1", ""),
        ("b3", "j2", ""),
        ("c1", "j2", ""),
    ];
    let mut customers = "customer_id,name,owner,vip\n".to_owned();
    for (id, owner, vip) in owned {
        customers.push_str(&format!("{id},Customer {id},{owner},{vip}\n"));
    }
    for id in ["u1", "u2", "u3", "u4", "c2", "c3", "c4", "c5"] {
        customers.push_str(&format!("{id},Customer {id},,\n"));
    }
    let customers = ws.write("customers.csv", &customers);
    let mut orders = "order_id,customer_id,ordered_at,amount\n".to_owned();
    let amounts = [
        ("a1", 10_000.0),
        ("a2", 10_000.0),
        ("a3", 10_000.0),
        ("a4", 10_000.0),
        ("u1", 10_000.0),
        ("u2", 10_100.0),
        ("u3", 10_200.0),
        ("u4", 10_300.0),
        ("b1", 5_000.0),
        ("b2", 5_000.0),
        ("b3", 5_000.0),
        ("c1", 900.0),
        ("c2", 900.0),
        ("c3", 900.0),
        ("c4", 900.0),
        ("c5", 900.0),
    ];
    for (n, (id, amount)) in amounts.iter().enumerate() {
        orders.push_str(&format!(
            "O{n},{id},{},{amount}\n",
            &text(base - 40 * DAY + n as i64 * 3_600)[..16]
        ));
    }
    let orders = ws.write("orders.csv", &orders);
    // a2's owner calls on day 5 (a follow-up); b3 is called by someone else (not one).
    let interactions = ws.write(
        "interactions.csv",
        &format!(
            "interaction_id,customer_id,kind,occurred_at,by\n\
             I1,a2,call,{},s1\nI2,b3,call,{},s1\n",
            &text(base + 5 * DAY + 10 * 3_600)[..16],
            &text(base + 2 * DAY + 10 * 3_600)[..16],
        ),
    );
    ws.run(&["import", "managers", &managers]).assert_code(0);
    ws.run(&["import", "customers", &customers]).assert_code(0);
    ws.run(&["import", "orders", &orders]).assert_code(0);
    ws.run(&["import", "interactions", &interactions])
        .assert_code(0);
    ws.run(&["assess", "--at", &rfc3339(base)]).assert_code(0);
    ws.run(&["pin", "a3", "A", "--reason", "strategic account"])
        .assert_code(0);
    ws
}

/// One owned customer as the raw rows say.
struct Raw {
    id: i64,
    external: String,
    owner: String,
    tier: String,
    created_at: i64,
    vip: bool,
}

/// What the rules say a pass at `t` does, computed from the raw rows: `(warned, reclaimed)`
/// customer ids.
fn expected(ws: &Workspace, t: i64) -> (BTreeSet<String>, BTreeSet<String>) {
    let conn = rusqlite::Connection::open(ws.path("tiercare.db")).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT c.id, c.external_id, c.owner, t.tier, c.created_at, \
             coalesce(json_extract(c.attributes, '$.vip'), '') FROM customers c \
             JOIN customer_tiers t ON t.customer_id = c.id \
             WHERE c.owner IS NOT NULL AND c.owner <> ''",
        )
        .unwrap();
    let raws: Vec<Raw> = stmt
        .query_map([], |row| {
            let vip: rusqlite::types::Value = row.get(5)?;
            Ok(Raw {
                id: row.get(0)?,
                external: row.get(1)?,
                owner: row.get(2)?,
                tier: row.get(3)?,
                created_at: row.get(4)?,
                vip: matches!(vip, rusqlite::types::Value::Text(ref s) if s == "true")
                    || matches!(vip, rusqlite::types::Value::Integer(1)),
            })
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let one = |sql: &str, customer: i64, owner: &str| -> Option<i64> {
        conn.query_row(sql, rusqlite::params![customer, owner, t], |row| row.get(0))
            .unwrap()
    };
    let (mut warned, mut reclaimed) = (BTreeSet::new(), BTreeSet::new());
    for raw in raws {
        let (followup_period, order_period) = match raw.tier.as_str() {
            "A" => (10 * DAY, None),
            "B" => (15 * DAY, Some(25 * DAY)),
            _ => continue,
        };
        let pinned = one(
            "SELECT count(*) FROM tier_pins WHERE customer_id = ?1 AND ?2 = ?2 \
             AND removed_at IS NULL AND (until IS NULL OR until > ?3)",
            raw.id,
            &raw.owner,
        )
        .unwrap_or(0)
            > 0;
        if pinned || raw.vip {
            continue;
        }
        let since = one(
            "SELECT max(at) FROM owner_changes WHERE customer_id = ?1 AND to_owner = ?2 \
             AND at <= ?3",
            raw.id,
            &raw.owner,
        )
        .unwrap_or(raw.created_at);
        let called = one(
            "SELECT max(occurred_at) FROM interactions WHERE customer_id = ?1 \
             AND by_manager = ?2 AND occurred_at <= ?3",
            raw.id,
            &raw.owner,
        );
        let done = one(
            "SELECT max(done_at) FROM tasks WHERE customer_id = ?1 AND status = 'done' \
             AND (assignee = ?2 OR done_by = ?2) AND done_at <= ?3",
            raw.id,
            &raw.owner,
        );
        let ordered = one(
            "SELECT max(ordered_at) FROM orders WHERE customer_id = ?1 AND ?2 = ?2 \
             AND ordered_at <= ?3",
            raw.id,
            &raw.owner,
        );
        let followup = called.max(done).map_or(since, |f| f.max(since));
        let mut due = followup + followup_period;
        if let Some(period) = order_period {
            due = due.min(ordered.map_or(since, |o| o.max(since)) + period);
        }
        let warning: Option<i64> = conn
            .query_row(
                "SELECT warned_at FROM pool_warnings WHERE customer_id = ?1 AND owner = ?2 \
                 AND reclaim_at = ?3",
                rusqlite::params![raw.id, raw.owner, due],
                |row| row.get(0),
            )
            .ok();
        let warned_at = match warning {
            Some(at) => Some(at),
            None if t >= due - WARN => {
                warned.insert(raw.external.clone());
                Some(t)
            }
            None => None,
        };
        if warned_at.is_some_and(|w| t >= due.max(w + WARN)) {
            reclaimed.insert(raw.external.clone());
        }
    }
    (warned, reclaimed)
}

fn ids(ws: &Workspace, sql: &str, t: i64) -> BTreeSet<String> {
    let conn = rusqlite::Connection::open(ws.path("tiercare.db")).unwrap();
    let mut stmt = conn.prepare(sql).unwrap();
    stmt.query_map([t], |row| row.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// The owner audit, one line per change, for failure messages.
fn changes(ws: &Workspace) -> String {
    let conn = rusqlite::Connection::open(ws.path("tiercare.db")).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT c.external_id, coalesce(oc.from_owner, '-'), coalesce(oc.to_owner, '-'), \
             oc.kind, oc.reason, datetime(oc.at, 'unixepoch') FROM owner_changes oc \
             JOIN customers c ON c.id = oc.customer_id ORDER BY oc.id",
        )
        .unwrap();
    stmt.query_map([], |row| {
        Ok(format!(
            "{} {} -> {} {} ({}) at {}",
            row.get::<_, String>(0)?,
            row.get::<_, String>(1)?,
            row.get::<_, String>(2)?,
            row.get::<_, String>(3)?,
            row.get::<_, String>(4)?,
            row.get::<_, String>(5)?
        ))
    })
    .unwrap()
    .map(Result::unwrap)
    .collect::<Vec<_>>()
    .join("\n")
}

#[test]
fn a_month_of_the_daemon_reclaims_exactly_the_customers_the_rules_name() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    // Three days ahead, at midnight UTC: after the imports' own times, so the audit's "owner
    // since" (the import) comes before the simulated month.
    let base = (now / DAY + 3) * DAY;
    let ws = workspace(base);
    let tier_of = |id: &str| -> String {
        ws.query_one(&format!(
            "SELECT t.tier FROM customer_tiers t JOIN customers c ON c.id = t.customer_id \
             WHERE c.external_id = '{id}'"
        ))
    };
    for (id, tier) in [
        ("a1", "A"),
        ("u4", "A"),
        ("b1", "B"),
        ("b3", "B"),
        ("c1", "C"),
    ] {
        assert_eq!(tier_of(id), tier, "the fixture's tiers");
    }
    let mut all_warned = BTreeSet::new();
    let mut all_reclaimed = BTreeSet::new();
    for day in 0..31 {
        let t = base + day * DAY + 9 * 3_600;
        let (warn, reclaim) = expected(&ws, t);
        let run = ws.run(&["run", "--once", "--simulate-from", &rfc3339(t)]);
        run.assert_code(0);
        let warned = ids(
            &ws,
            "SELECT c.external_id FROM pool_warnings w JOIN customers c ON c.id = w.customer_id \
             WHERE w.warned_at = ?1",
            t,
        );
        let reclaimed = ids(
            &ws,
            "SELECT c.external_id FROM owner_changes oc JOIN customers c ON c.id = oc.customer_id \
             WHERE oc.kind = 'reclaimed' AND oc.at = ?1",
            t,
        );
        assert_eq!(warned, warn, "day {day}: warnings");
        assert_eq!(reclaimed, reclaim, "day {day}: reclaims");
        all_warned.extend(warned);
        all_reclaimed.extend(reclaimed);
    }
    // The month did something: a1 (no follow-up) and b1 went back; a2's call bought time;
    // b3's call was not by the owner; the pinned a3 and the protected a4 stayed.
    for id in ["a1", "b1", "b3"] {
        assert!(
            all_reclaimed.contains(id),
            "{id} reclaimed: {all_reclaimed:?}"
        );
    }
    for id in ["a3", "a4", "c1"] {
        assert!(
            !all_warned.contains(id),
            "{id} never warned: {all_warned:?}"
        );
        assert!(!all_reclaimed.contains(id), "{id} never reclaimed");
    }
    // Every reclaim had its warning at least warn_before earlier.
    let unwarned = ws.count(&format!(
        "SELECT count(*) FROM owner_changes oc WHERE oc.kind = 'reclaimed' AND NOT EXISTS \
         (SELECT 1 FROM pool_warnings w WHERE w.customer_id = oc.customer_id \
          AND w.owner = oc.from_owner AND w.warned_at <= oc.at - {WARN})"
    ));
    assert_eq!(unwarned, 0, "a reclaim without an earlier warning");
    // Each warning gave the owner a task, due when the customer would be reclaimed.
    let untasked = ws.count(
        "SELECT count(*) FROM pool_warnings w WHERE NOT EXISTS (SELECT 1 FROM tasks k \
         WHERE k.customer_id = w.customer_id AND k.assignee = w.owner \
         AND k.due_at = w.reclaim_at AND k.title LIKE 'Follow up with %')",
    );
    assert_eq!(untasked, 0, "a warning without its task");
    // The reason says why, in days.
    let reason: String = ws.query_one(
        "SELECT oc.reason FROM owner_changes oc JOIN customers c ON c.id = oc.customer_id \
         WHERE c.external_id = 'a1' AND oc.kind = 'reclaimed'",
    );
    assert!(
        reason.starts_with("reclaimed: no follow-up for "),
        "{reason}"
    );
    // Never back to the previous owner within the no-return period.
    let back = ws.count(&format!(
        "SELECT count(*) FROM owner_changes r JOIN owner_changes a \
         ON a.customer_id = r.customer_id AND a.id > r.id \
         WHERE r.kind = 'reclaimed' AND a.kind = 'assigned' AND a.to_owner = r.from_owner \
         AND a.at < r.at + {NO_RETURN}"
    ));
    assert_eq!(
        back,
        0,
        "a customer went back to the owner they were reclaimed from:\n{}",
        changes(&ws)
    );
    // a1, reclaimed from s1, went to the other senior.
    let a1_next: String = ws.query_one(
        "SELECT oc.to_owner FROM owner_changes oc JOIN customers c ON c.id = oc.customer_id \
         WHERE c.external_id = 'a1' AND oc.kind = 'assigned' ORDER BY oc.id LIMIT 1",
    );
    assert_eq!(a1_next, "s2");
    // Claim caps: at most one customer given to a manager per (London) day.
    let conn = rusqlite::Connection::open(ws.path("tiercare.db")).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT to_owner, date(at, 'unixepoch') FROM owner_changes WHERE kind = 'assigned'",
        )
        .unwrap();
    let mut per_day: BTreeMap<(String, String), u32> = BTreeMap::new();
    for row in stmt
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap()
    {
        *per_day.entry(row.unwrap()).or_default() += 1;
    }
    assert!(per_day.len() >= 4, "assignments happened: {per_day:?}");
    assert!(
        per_day.values().all(|&n| n <= 1),
        "a manager got more than their daily claims: {per_day:?}"
    );
    // The four unowned A customers went most valuable first: u4 (10,300) on the first day.
    let first: Vec<(String, String)> = {
        let mut stmt = conn
            .prepare(
                "SELECT c.external_id, oc.to_owner FROM owner_changes oc \
                 JOIN customers c ON c.id = oc.customer_id \
                 WHERE oc.kind = 'assigned' ORDER BY oc.at, oc.id LIMIT 2",
            )
            .unwrap();
        stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    let firsts: Vec<&str> = first.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(firsts, ["u4", "u3"], "most valuable first");
}

#[test]
fn pool_lists_the_unowned_most_valuable_first_and_the_countdowns_soonest_first() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let base = (now / DAY + 3) * DAY;
    let ws = workspace(base);
    let at = rfc3339(base);
    let out = ws.run(&["pool", "--at", &at, "--json"]);
    out.assert_code(0);
    let listing = out.json();
    let unowned: Vec<&str> = listing["unowned"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["external_id"].as_str().unwrap())
        .collect();
    assert_eq!(&unowned[..4], ["u4", "u3", "u2", "u1"], "{unowned:?}");
    let countdowns: Vec<(&str, i64)> = listing["countdowns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["customer"].as_str().unwrap(),
                c["days_left"].as_i64().unwrap(),
            )
        })
        .collect();
    let names: BTreeSet<&str> = countdowns.iter().map(|(id, _)| *id).collect();
    assert!(
        !names.contains("a3") && !names.contains("a4"),
        "{countdowns:?}"
    );
    assert!(
        names.contains("a1") && names.contains("b1"),
        "{countdowns:?}"
    );
    assert!(
        countdowns.windows(2).all(|w| w[0].1 <= w[1].1),
        "soonest first: {countdowns:?}"
    );
    let text = ws.run(&["pool", "--at", &at]);
    text.assert_code(0);
    text.assert_stdout_contains("counting down to the pool");
    // `plan` shows the warnings and reclaims the coming days would bring: a1's among them,
    // never the pinned a3's.
    let plan = ws.run(&["plan", "--from", &at, "--days", "30", "--json"]);
    plan.assert_code(0);
    let events = plan.json()["pool"].as_array().unwrap().clone();
    let has = |kind: &str, id: &str| {
        events
            .iter()
            .any(|e| e["kind"] == kind && e["customer"] == id)
    };
    assert!(has("warning", "a1") && has("reclaim", "a1"), "{events:?}");
    assert!(!has("warning", "a3") && !has("reclaim", "a4"), "{events:?}");
    let text = ws.run(&["plan", "--from", &at, "--days", "30"]);
    text.assert_stdout_contains("public pool (if nobody follows up)");
    // A one-shot reclaim at a time when a1 is overdue warns first and reclaims later.
    let late = rfc3339(base + 20 * DAY);
    let first = ws.run(&["pool", "reclaim", "--at", &late, "--json"]);
    first.assert_code(0);
    let report = first.json();
    assert!(report["warned"].as_u64().unwrap() >= 1, "{report}");
    assert_eq!(report["reclaimed"], 0, "a warning first: {report}");
    let later = rfc3339(base + 23 * DAY);
    let second = ws.run(&["pool", "reclaim", "--at", &later, "--json"]);
    second.assert_code(0);
    assert!(second.json()["reclaimed"].as_u64().unwrap() >= 1);
    let a1_owner: String =
        ws.query_one("SELECT coalesce(owner, '-') FROM customers WHERE external_id = 'a1'");
    assert_eq!(a1_owner, "-");
    // By hand: set and release, each audited with who and why.
    ws.run(&[
        "owners",
        "set",
        "a1",
        "s2",
        "--reason",
        "asked for",
        "--by",
        "lead",
    ])
    .assert_code(0);
    ws.run(&["owners", "release", "b2", "--by", "lead"])
        .assert_code(0);
    ws.run(&["owners", "set", "a1", "nobody-here"])
        .assert_code(2);
    let history = ws.run(&["owners", "history", "a1", "--json"]);
    history.assert_code(0);
    let history = history.json();
    let kinds: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["set", "reclaimed", "set"], "{history}");
    assert_eq!(history[2]["reason"], "set by hand: asked for");
    assert_eq!(history[2]["changed_by"], "lead");
    let text = ws.run(&["owners", "history", "a1"]);
    text.assert_stdout_contains("reclaimed: no follow-up for");
}
