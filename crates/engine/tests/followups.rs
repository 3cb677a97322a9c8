//! Snapshot tests for follow-up rules: every `tests/fixtures/followups/NAME.yaml` (one rule file
//! with `tiering` and `followups`) is loaded by its own test, `fixture::NAME`, and what
//! `tiercare check` and `plan` would print must equal the insta snapshot
//! `tests/snapshots/followups/NAME.snap` (a new fixture must be added to the `fixtures!` list).
//! Comment lines at the top may say
//!
//! - `# references: templates=a,b; managers=alice; roles=senior`: run [`check_references`];
//! - `# pool`: print the `pool` section as loaded;
//! - `# plan: FROM TO ZONE TIER`: plan `[FROM, TO)` (RFC 3339) in workspace zone ZONE for a
//!   customer in TIER (`-`: none), with the features of a `# customer: {json}` line.
//!
//! After a deliberate change, `INSTA_UPDATE=always cargo test -p tiercare-engine --test followups`
//! rewrites the snapshots (or `cargo insta review` shows each change to accept). Below,
//! unit-level tests of the planner through the public API.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::{assert_all_listed, assert_fixture_snapshot, fixture_names, snapshot};
use tiercare_engine::{
    FollowUpState, References, RuleFile, check_references, load_rules, plan_customer, render_all,
};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/followups")
}

fn time(text: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|_| panic!("an RFC 3339 time: {text}"))
        .timestamp()
}

fn time_text(seconds: i64) -> String {
    chrono::DateTime::from_timestamp(seconds, 0)
        .expect("a time")
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn render(name: &str, text: &str) -> String {
    let files = [RuleFile::new(name, text)];
    let loaded = match load_rules(&files) {
        Err(diagnostics) => return render_all(&diagnostics, false),
        Ok(loaded) => loaded,
    };
    let mut out = render_all(&loaded.warnings, false);
    let header: Vec<&str> = text
        .lines()
        .take_while(|line| line.starts_with('#'))
        .collect();
    let mut customer = "{}";
    for line in &header {
        if let Some(json) = line.strip_prefix("# customer: ") {
            customer = json;
        }
    }
    for line in &header {
        if let Some(lists) = line.strip_prefix("# references: ") {
            let mut templates = Vec::new();
            let mut managers = Vec::new();
            let mut roles = Vec::new();
            for part in lists.split(';') {
                let (kind, names) = part.trim().split_once('=').expect("kind=names");
                let names: Vec<&str> = names.split(',').map(str::trim).collect();
                match kind {
                    "templates" => templates = names,
                    "managers" => managers = names,
                    "roles" => roles = names,
                    other => panic!("unknown reference kind {other}"),
                }
            }
            let references = References {
                sms_templates: None,
                templates: &templates,
                managers: &managers,
                roles: &roles,
            };
            out.push_str(&render_all(
                &check_references(&loaded.rules, &references),
                false,
            ));
        } else if *line == "# pool" {
            let pool = loaded.rules.pool();
            out.push_str(&format!(
                "pool: no_return {}s, claims_per_day {:?}, protect pinned {} attribute {:?}, warn_task {}\n",
                pool.no_return,
                pool.claims_per_day,
                pool.protect_pinned,
                pool.protect_attribute,
                pool.warn_task
            ));
            for tier in &pool.tiers {
                out.push_str(&format!(
                    "  {} at {}:{}: no_followup {:?}s, no_order {:?}s, warn_before {}s\n",
                    tier.tier,
                    tier.location.line,
                    tier.location.column,
                    tier.no_followup,
                    tier.no_order,
                    tier.warn_before
                ));
            }
        } else if let Some(args) = line.strip_prefix("# plan: ") {
            let args: Vec<&str> = args.split_whitespace().collect();
            let [from, to, zone, tier] = args[..] else {
                panic!("# plan: FROM TO ZONE TIER");
            };
            let state = FollowUpState {
                tier: (tier != "-").then(|| tier.to_owned()),
                ..FollowUpState::default()
            };
            let plan = plan_customer(
                &loaded.rules,
                &snapshot(customer),
                &state,
                time(from),
                time(to),
                zone.parse().expect("a zone"),
            );
            for action in &plan.actions {
                out.push_str(&format!(
                    "planned {} at {} [{}]: {} ({})\n",
                    action.rule_id,
                    time_text(action.scheduled_at),
                    action.occurrence_key,
                    action.action.describe(),
                    action.reason
                ));
                for moved in &action.moved {
                    out.push_str(&format!(
                        "  moved by {} from {} to {}\n",
                        moved.why,
                        time_text(moved.from),
                        time_text(moved.to)
                    ));
                }
            }
            for skipped in &plan.skipped {
                out.push_str(&format!(
                    "skipped {} [{}]: {:?}\n",
                    skipped.rule_id, skipped.occurrence_key, skipped.skipped
                ));
            }
            for error in &plan.errors {
                out.push_str(&format!("error: {error}\n"));
            }
            for note in &plan.notes {
                out.push_str(&format!("note: {note}\n"));
            }
        }
    }
    if out.is_empty() {
        out.push_str("ok\n");
    }
    out
}

/// Loads the fixture `NAME.yaml` and checks what it prints against its snapshot.
fn check_fixture(name: &str) {
    let file = format!("{name}.yaml");
    let text = fs::read_to_string(fixtures().join(&file)).expect("read fixture");
    let actual = render(&file, &text);
    assert_fixture_snapshot(
        "followups",
        name,
        Some(&format!("followups/{file}")),
        &actual,
    );
}

/// One test per fixture.
mod fixture {
    crate::fixtures! { super::check_fixture:
        assignment_references,
        bad_assignee,
        bad_assignment,
        bad_every,
        bad_max_delay,
        bad_reminders,
        bad_pool,
        dst,
        duplicate_id,
        invalid_cron,
        policy_moves,
        reminders_references,
        pool,
        runtime_failure,
        survey_problems,
        survey_unknown_template,
        trigger_and_action_problems,
        unknown_template,
        unknown_timezone,
        zero_cap,
    }
}

#[test]
fn every_fixture_has_its_own_test() {
    let on_disk = fixture_names(&fixtures(), |path| {
        (path.extension()? == "yaml").then(|| path.file_stem()?.to_str().map(str::to_owned))?
    });
    assert_all_listed(&on_disk, fixture::FIXTURES);
}

const TIERS: &str = "tiering:\n  window: 365d\n  tiers:\n    - id: A\n      when: revenue_window > 1000.0\n    - id: B\n      when: revenue_window > 100.0\n    - id: C\n      when: true\n";

fn rules(followups: &str) -> tiercare_engine::RuleSet {
    let text = format!("{TIERS}{followups}");
    match load_rules(&[RuleFile::new("rules/f.yaml", text)]) {
        Ok(loaded) => loaded.rules,
        Err(diagnostics) => panic!("{}", render_all(&diagnostics, false)),
    }
}

#[test]
fn planning_twice_gives_the_same_keys() {
    let rules = rules(
        "followups:\n  - id: review\n    every: 30d\n    task: { assignee: owner, title: Review }\n  - id: care\n    cron: \"0 10 * * *\"\n    email: { template: care }\n",
    );
    let customer = snapshot(r#"{"customer_id": "c1", "has_email": true, "consent_email": true}"#);
    let state = FollowUpState::default();
    let tz = chrono_tz::Europe::Berlin;
    let first = plan_customer(
        &rules,
        &customer,
        &state,
        time("2024-06-01T00:00:00Z"),
        time("2024-07-01T00:00:00Z"),
        tz,
    );
    // An hour later, the same month: the same occurrences, the same keys.
    let second = plan_customer(
        &rules,
        &customer,
        &state,
        time("2024-06-01T01:00:00Z"),
        time("2024-07-01T00:00:00Z"),
        tz,
    );
    // Occurrences at or after the later start keep their keys (one before it was the first
    // plan's to record: the recorder plans from its last tick, so it is never skipped).
    let keys = |plan: &tiercare_engine::Plan| -> Vec<String> {
        plan.actions
            .iter()
            .filter(|a| a.occurrence_at >= time("2024-06-01T01:00:00Z"))
            .map(|a| a.occurrence_key.clone())
            .collect()
    };
    assert!(!keys(&first).is_empty());
    assert_eq!(keys(&first), keys(&second));
    // A review that never fired comes once in its first period, at this customer's staggered
    // time (so a new rule does not put every customer's review on one day); care daily.
    let review: Vec<i64> = first
        .actions
        .iter()
        .filter(|a| a.rule_id == "review")
        .map(|a| a.occurrence_at)
        .collect();
    assert_eq!(review.len(), 1, "{first:#?}");
    assert_eq!(first.actions.len(), 31, "{first:#?}");
    assert!(
        first
            .actions
            .iter()
            .all(|a| a.occurrence_key.ends_with(":c1"))
    );
    // The review, once fired, comes back 30 days later.
    let state = FollowUpState {
        last_fired: vec![("review".to_owned(), review[0])],
        ..FollowUpState::default()
    };
    let later = plan_customer(
        &rules,
        &customer,
        &state,
        review[0] + 1,
        review[0] + 61 * 86_400,
        tz,
    );
    let reviews: Vec<i64> = later
        .actions
        .iter()
        .filter(|a| a.rule_id == "review")
        .map(|a| a.occurrence_at)
        .collect();
    assert_eq!(reviews, [review[0] + 30 * 86_400, review[0] + 60 * 86_400]);
}

#[test]
fn a_planner_reused_over_zones_and_ranges_plans_as_a_fresh_one() {
    // The planner keeps each cron rule's firings per zone and range: a customer in another
    // zone, or another range, must not get the firings of the one before.
    let rules = rules(
        "followups:\n  - id: review\n    every: 30d\n    task: { assignee: owner, title: Review }\n  - id: care\n    cron: \"0 10 * * *\"\n    email: { template: care }\n  - id: monthly\n    cron: \"0 9 1 * *\"\n    email: { template: care }\n",
    );
    let state = FollowUpState::default();
    let mut planner = rules.planner();
    let ranges = [
        (time("2024-06-01T00:00:00Z"), time("2024-07-01T00:00:00Z")),
        (time("2024-06-01T00:00:00Z"), time("2024-06-02T00:00:00Z")),
        (time("2024-06-03T06:00:00Z"), time("2024-06-03T12:00:00Z")),
    ];
    for (from, to) in ranges {
        for zone in ["", "Asia/Tokyo", "America/New_York", "Asia/Tokyo", ""] {
            let customer = snapshot(&format!(
                r#"{{"customer_id": "c-{zone}", "has_email": true, "consent_email": true, "timezone": "{zone}"}}"#
            ));
            let reused = planner.plan(&customer, &state, from, to, chrono_tz::Europe::Berlin);
            let fresh = plan_customer(
                &rules,
                &customer,
                &state,
                from,
                to,
                chrono_tz::Europe::Berlin,
            );
            assert_eq!(
                format!("{reused:?}"),
                format!("{fresh:?}"),
                "{zone} {from}..{to}"
            );
        }
    }
}

#[test]
fn an_overdue_cadence_fires_once() {
    let rules = rules(
        "followups:\n  - id: review\n    every: 7d\n    task: { assignee: owner, title: Review }\n",
    );
    let state = FollowUpState {
        last_fired: vec![("review".to_owned(), time("2024-01-01T00:00:00Z"))],
        ..FollowUpState::default()
    };
    let plan = plan_customer(
        &rules,
        &snapshot("{}"),
        &state,
        time("2024-06-01T00:00:00Z"),
        time("2024-06-02T00:00:00Z"),
        chrono_tz::UTC,
    );
    assert_eq!(plan.actions.len(), 1, "{plan:#?}");
    let action = &plan.actions[0];
    assert!(action.occurrence_at <= time("2024-06-01T00:00:00Z"));
    assert!(action.occurrence_at > time("2024-05-25T00:00:00Z"));
    assert_eq!(action.scheduled_at, time("2024-06-01T00:00:00Z"));
}

#[test]
fn events_fire_on_tier_and_segment_changes_complaints_and_low_scores() {
    use tiercare_engine::{CustomerEvent, EventKind};
    let text = format!(
        "{TIERS}segments:\n  rfm:\n    - id: at_risk\n      when: r_score <= 2\nfollowups:\n  - id: entered-a\n    tiers: [A]\n    on: tier_entered\n    tag: entered-a\n  - id: down\n    on: tier_down\n    tag: down\n  - id: risk\n    on: {{ event: segment_entered, set: rfm, segment: at_risk }}\n    tag: risk\n  - id: complaint\n    on: complaint\n    notify_owner: {{ template: complaint }}\n  - id: unhappy\n    on: {{ event: low_satisfaction, below: 3 }}\n    task: {{ assignee: \"role:senior\", title: Call back, due: 1d }}\n  - id: anniversary\n    on: anniversary\n    tag: anniversary\n"
    );
    let rules = load_rules(&[RuleFile::new("f.yaml", text)])
        .map_err(|d| render_all(&d, false))
        .expect("loads")
        .rules;
    let at = |text: &str| time(text);
    let state = FollowUpState {
        tier: Some("A".to_owned()),
        events: vec![
            CustomerEvent {
                at: at("2024-06-02T10:00:00Z"),
                kind: EventKind::TierChanged {
                    from: Some("B".into()),
                    to: Some("A".into()),
                },
            },
            CustomerEvent {
                at: at("2024-06-03T10:00:00Z"),
                kind: EventKind::SegmentChanged {
                    set: "rfm".into(),
                    from: None,
                    to: Some("at_risk".into()),
                },
            },
            CustomerEvent {
                at: at("2024-06-04T10:00:00Z"),
                kind: EventKind::Complaint,
            },
            CustomerEvent {
                at: at("2024-06-05T10:00:00Z"),
                kind: EventKind::Feedback { score: 2.0 },
            },
            CustomerEvent {
                at: at("2024-06-05T11:00:00Z"),
                kind: EventKind::Feedback { score: 4.0 },
            },
            CustomerEvent {
                at: at("2024-06-06T10:00:00Z"),
                kind: EventKind::TierChanged {
                    from: Some("A".into()),
                    to: Some("C".into()),
                },
            },
        ],
        ..FollowUpState::default()
    };
    let customer = snapshot(r#"{"customer_id": "c9", "first_order_at": "2020-06-03T12:00:00Z"}"#);
    let plan = plan_customer(
        &rules,
        &customer,
        &state,
        at("2024-06-01T00:00:00Z"),
        at("2024-06-08T00:00:00Z"),
        chrono_tz::UTC,
    );
    let fired: Vec<(&str, String)> = plan
        .actions
        .iter()
        .map(|a| (a.rule_id.as_str(), time_text(a.scheduled_at)))
        .collect();
    let expected = [
        ("entered-a", "2024-06-02T10:00:00Z"),
        ("anniversary", "2024-06-03T09:00:00Z"),
        ("risk", "2024-06-03T10:00:00Z"),
        ("complaint", "2024-06-04T10:00:00Z"),
        ("unhappy", "2024-06-05T10:00:00Z"),
        ("down", "2024-06-06T10:00:00Z"),
    ];
    let expected: Vec<(&str, String)> = expected
        .iter()
        .map(|(rule, at)| (*rule, (*at).to_owned()))
        .collect();
    assert_eq!(fired, expected, "{plan:#?}");
}

#[test]
fn the_default_programme_never_pesters_a_c_customer() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let (files, _) = common::read_rule_set(&root, "rules");
    let rules = load_rules(&files)
        .map_err(|d| render_all(&d, false))
        .expect("loads")
        .rules;
    let customer = snapshot(
        r#"{"customer_id": "c", "timezone": "Asia/Shanghai", "has_email": true, "consent_email": true,
            "birthday": "1992-02-29", "last_order_at": "2023-11-01T00:00:00Z", "days_since_last_contact": 40}"#,
    );
    let state = FollowUpState {
        tier: Some("C".to_owned()),
        ..FollowUpState::default()
    };
    let plan = plan_customer(
        &rules,
        &customer,
        &state,
        time("2024-01-01T00:00:00Z"),
        time("2025-01-01T00:00:00Z"),
        chrono_tz::UTC,
    );
    assert!(plan.errors.is_empty(), "{:?}", plan.errors);
    let mut emails: Vec<i64> = plan
        .actions
        .iter()
        .filter(|a| a.action.contacts_customer())
        .map(|a| a.scheduled_at)
        .collect();
    emails.sort_unstable();
    assert!(emails.len() >= 12, "{plan:#?}");
    for pair in emails.windows(2) {
        assert!(
            pair[1] - pair[0] >= 5 * 86_400,
            "C customers get one email per 5 days at most"
        );
    }
    let shanghai = chrono_tz::Asia::Shanghai;
    for at in &emails {
        let local = chrono::DateTime::from_timestamp(*at, 0)
            .unwrap()
            .with_timezone(&shanghai);
        use chrono::{Datelike, Timelike};
        assert!((9..18).contains(&local.hour()), "{local}");
        assert!(local.weekday().number_from_monday() <= 5, "{local}");
    }
    assert!(
        plan.actions.iter().any(|a| a.rule_id == "c-birthday"),
        "{plan:#?}"
    );
    assert!(plan.actions.iter().any(|a| a.rule_id == "c-win-back"));
}

/// Issue #13, point 7: a win-back sent 10 days ago, and new data (the same customer id, other
/// orders) that moves the occurrence date far from the first one.
#[test]
fn once_per_counts_from_what_the_customer_was_given_not_occurrence_dates() {
    use tiercare_engine::{Given, Skipped};
    let rules = rules(
        "followups:\n  - id: win-back\n    on: { event: no_order, after: 120d }\n    re_entry: { once_per: 180d }\n    tag: win-back\n",
    );
    let from = time("2026-12-07T00:00:00Z");
    let first = time("2026-08-01T00:00:00Z"); // the first occurrence (old data)
    let sent = from - 10 * 86_400;
    // The new data's last order makes the occurrence 2025-09-01 + 120 days = 2025-12-30, seven
    // months before the first: occurrence dates are more than 180 days apart.
    let customer = snapshot(r#"{"customer_id": "c1", "last_order_at": "2025-09-01T00:00:00Z"}"#);
    let state = FollowUpState {
        last_fired: vec![("win-back".to_owned(), first)],
        given: vec![Given {
            rule_id: "win-back".to_owned(),
            occurrence_at: first,
            at: sent,
        }],
        ..FollowUpState::default()
    };
    let plan = plan_customer(
        &rules,
        &customer,
        &state,
        from,
        from + 30 * 86_400,
        chrono_tz::UTC,
    );
    assert!(plan.actions.is_empty(), "{plan:#?}");
    assert_eq!(plan.skipped.len(), 1, "{plan:#?}");
    assert_eq!(
        plan.skipped[0].skipped,
        Skipped::ReEntry {
            last: first,
            given: Some(sent)
        }
    );
    assert_eq!(plan.skipped[0].skipped.name(), "re_entry");

    // Given 200 days ago: the window is over, the new occurrence is planned.
    let state = FollowUpState {
        given: vec![Given {
            rule_id: "win-back".to_owned(),
            occurrence_at: first,
            at: from - 200 * 86_400,
        }],
        ..state
    };
    let plan = plan_customer(
        &rules,
        &customer,
        &state,
        from,
        from + 30 * 86_400,
        chrono_tz::UTC,
    );
    assert_eq!(plan.actions.len(), 1, "{plan:#?}");
    assert_eq!(plan.actions[0].scheduled_at, from);
}

#[test]
fn once_means_once_for_the_customer_and_replanning_finds_its_own_occurrence() {
    use tiercare_engine::Given;
    let rules = rules(
        "followups:\n  - id: hello\n    on: { event: no_order, after: 30d }\n    re_entry: once\n    tag: hello\n",
    );
    let from = time("2026-12-07T00:00:00Z");
    let customer = snapshot(r#"{"customer_id": "c1", "last_order_at": "2026-10-01T00:00:00Z"}"#);
    let occurrence = time("2026-10-31T00:00:00Z");
    // Given for another occurrence (the ledger lost track of it as fired: only the outbox has
    // it): nothing more, ever.
    let other = FollowUpState {
        given: vec![Given {
            rule_id: "hello".to_owned(),
            occurrence_at: occurrence - 400 * 86_400,
            at: from - 300 * 86_400,
        }],
        ..FollowUpState::default()
    };
    let plan = plan_customer(
        &rules,
        &customer,
        &other,
        from,
        from + 86_400,
        chrono_tz::UTC,
    );
    assert!(plan.actions.is_empty(), "{plan:#?}");
    // Given for this very occurrence: planning again plans the same key (the ledger dedupes).
    let same = FollowUpState {
        last_fired: vec![("hello".to_owned(), occurrence)],
        given: vec![Given {
            rule_id: "hello".to_owned(),
            occurrence_at: occurrence,
            at: from - 86_400,
        }],
        ..FollowUpState::default()
    };
    let plan = plan_customer(
        &rules,
        &customer,
        &same,
        from,
        from + 86_400,
        chrono_tz::UTC,
    );
    assert_eq!(plan.actions.len(), 1, "{plan:#?}");
    assert_eq!(plan.actions[0].occurrence_at, occurrence);
}

/// Issue #13, point 8: A→B→A→B→A within weeks; the upgrade welcome (`once_per: 90d`) goes once.
#[test]
fn a_flapping_customer_gets_the_upgrade_welcome_once_in_its_window() {
    use tiercare_engine::{CustomerEvent, EventKind, Given};
    let rules = rules(
        "followups:\n  - id: welcome-upgrade\n    on: tier_up\n    re_entry: { once_per: 90d }\n    tag: welcome\n",
    );
    let day = 86_400;
    let start = time("2026-10-01T00:00:00Z");
    let change = |at: i64, from: &str, to: &str| CustomerEvent {
        at,
        kind: EventKind::TierChanged {
            from: Some(from.into()),
            to: Some(to.into()),
        },
    };
    // First welcome, recorded and sent.
    let first = plan_customer(
        &rules,
        &snapshot(r#"{"customer_id": "c1"}"#),
        &FollowUpState {
            tier: Some("A".into()),
            events: vec![change(start, "B", "A")],
            ..FollowUpState::default()
        },
        start,
        start + day,
        chrono_tz::UTC,
    );
    assert_eq!(first.actions.len(), 1, "{first:#?}");
    // Two and five weeks later the customer is upgraded again (after downgrades in between).
    for weeks in [2, 5] {
        let at = start + weeks * 7 * day;
        let plan = plan_customer(
            &rules,
            &snapshot(r#"{"customer_id": "c1"}"#),
            &FollowUpState {
                tier: Some("A".into()),
                last_fired: vec![("welcome-upgrade".into(), start)],
                given: vec![Given {
                    rule_id: "welcome-upgrade".into(),
                    occurrence_at: start,
                    at: start,
                }],
                events: vec![change(at - 7 * day, "A", "B"), change(at, "B", "A")],
                ..FollowUpState::default()
            },
            at,
            at + day,
            chrono_tz::UTC,
        );
        assert!(plan.actions.is_empty(), "week {weeks}: {plan:#?}");
        assert_eq!(plan.skipped.len(), 1, "week {weeks}: {plan:#?}");
    }
}

#[test]
fn only_survey_follow_ups_may_use_a_template_that_reads_survey() {
    let templates = tiercare_engine::load_templates(&[
        tiercare_engine::TemplateFile::new(
            "templates/ask.eml.j2",
            "subject: {{ survey.question }}\n--- text\n{% for l in survey.links %}{{ l.url }}\n{% endfor %}",
        ),
        tiercare_engine::TemplateFile::new(
            "templates/care.eml.j2",
            "subject: Hi\n--- text\nHello\n",
        ),
    ]);
    assert!(
        templates.diagnostics.is_empty(),
        "{:?}",
        templates.diagnostics
    );
    let rules = rules(
        "followups:\n  - id: ok\n    cron: \"0 10 * * *\"\n    survey: { template: ask, kind: nps, question: Q?, id: q }\n  - id: wrong\n    cron: \"0 10 * * *\"\n    email: { template: ask }\n  - id: no-links\n    cron: \"0 10 * * *\"\n    survey: { template: care, kind: csat, question: Q?, id: q }\n",
    );
    let found = tiercare_engine::check_survey_templates(&rules, &templates.templates);
    let text = render_all(&found, false);
    assert_eq!(found.len(), 2, "{text}");
    assert!(
        text.contains("rules/f.yaml:16:24:")
            && text.contains("error: follow-up `wrong` uses template `ask`, which reads `survey`"),
        "{text}"
    );
    assert!(
        text.contains(
            "warning: survey `no-links` uses template `care`, which shows no `survey` links"
        ),
        "{text}"
    );
}

#[test]
fn sms_count_against_the_sms_caps_and_emails_against_the_email_caps() {
    // Two SMS rules and an email rule at the same time each day; one message a day per channel,
    // and one SMS a week.
    let rules = rules(
        "contact_policy:\n  caps: { day: 1 }\n  sms_caps: { week: 1 }\nfollowups:\n  \
         - id: mail\n    cron: \"0 9 * * *\"\n    email: { template: care }\n  \
         - id: text-a\n    cron: \"0 9 * * *\"\n    sms: { template: hello }\n  \
         - id: text-b\n    cron: \"0 9 * * *\"\n    sms: { template: hello }\n",
    );
    let customer = snapshot(r#"{"has_email": true, "consent_email": true, "consent_sms": true}"#);
    let plan = plan_customer(
        &rules,
        &customer,
        &FollowUpState::default(),
        time("2024-06-03T00:00:00Z"),
        time("2024-06-06T00:00:00Z"),
        chrono_tz::UTC,
    );
    let planned: Vec<(String, i64)> = plan
        .actions
        .iter()
        .map(|a| (a.rule_id.clone(), a.scheduled_at))
        .collect();
    let day = |d: u32| time(&format!("2024-06-0{d}T09:00:00Z"));
    // An email each day beside the SMS (caps apart), and the week's one SMS on the first day.
    assert_eq!(
        planned,
        [
            ("mail".to_owned(), day(3)),
            ("text-a".to_owned(), day(3)),
            ("mail".to_owned(), day(4)),
            ("mail".to_owned(), day(5)),
        ],
        "{plan:#?}"
    );
    // SMS already sent this week count; without consent_sms, no SMS at all.
    let texted = FollowUpState {
        sms_contacts: vec![time("2024-06-03T08:00:00Z")],
        ..FollowUpState::default()
    };
    let plan = plan_customer(
        &rules,
        &customer,
        &texted,
        time("2024-06-03T00:00:00Z"),
        time("2024-06-04T00:00:00Z"),
        chrono_tz::UTC,
    );
    assert_eq!(plan.actions.len(), 1, "{plan:#?}");
    assert_eq!(plan.actions[0].rule_id, "mail");
    let no_sms = snapshot(r#"{"has_email": true, "consent_email": true}"#);
    let plan = plan_customer(
        &rules,
        &no_sms,
        &FollowUpState::default(),
        time("2024-06-03T00:00:00Z"),
        time("2024-06-04T00:00:00Z"),
        chrono_tz::UTC,
    );
    assert_eq!(plan.actions.len(), 1, "{plan:#?}");
    assert!(
        plan.skipped
            .iter()
            .filter(|s| s.rule_id.starts_with("text"))
            .all(|s| s.skipped.name() == "consent")
    );
}
