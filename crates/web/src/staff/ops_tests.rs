//! Handler tests of the outbox, plan and rules pages over a real workspace (a SQLite file in a
//! temporary folder, the default rules): the router called without a socket, as a signed-in
//! admin, manager or viewer (sessions started in the store, as a login starts them).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::connect_info::MockConnectInfo;
use axum::http::{Request, StatusCode, header};
use tiercare_engine::RecordKind;
use tiercare_scheduler::assess::{AssessOptions, RuleSource, assess};
use tiercare_scheduler::http_config::HttpConfig;
use tiercare_scheduler::ingest::{ImportRequest, import_file};
use tiercare_scheduler::mail::TokenSigner;
use tiercare_scheduler::plan::{EVENT_LOOKBACK, PlanOptions, plan_of};
use tiercare_scheduler::staff::session_hash;
use tiercare_scheduler::workspace::Workspace;
use tiercare_store::{
    DaemonState, FollowUpAction, NewEmail, OccurrenceKey, OutboxState, PlannedFollowUp, StaffRole,
    Store,
};
use tower::ServiceExt;

use crate::AppState;

/// 2026-12-07T09:00:00Z.
const NOW: i64 = 1_796_634_000;

fn now() -> i64 {
    NOW
}

struct Fixture {
    _dir: tempfile::TempDir,
    workspace: Workspace,
    app: Router,
    state: Arc<AppState>,
}

/// A signed-in account: its cookie and CSRF token.
struct Account {
    cookie: String,
    csrf: String,
}

fn import(workspace: &Workspace, store: &mut Store, kind: RecordKind, text: &str) {
    let file = workspace.root().join(format!("{kind}.csv"));
    std::fs::write(&file, text).unwrap();
    let request = ImportRequest {
        kind,
        file: &file,
        mapping: None,
        strict: true,
        format: None,
        timezone: workspace.config().timezone,
        default_region: workspace.config().import.default_region.as_deref(),
    };
    import_file(store, &request, &mut |_| {}).unwrap();
}

/// A workspace with managers alice and bob, customers C1 (alice's) and C2, C3 (bob's),
/// assessed at `NOW`.
fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let (workspace, _) = Workspace::init(&dir.path().join("ws"), chrono_tz::UTC).unwrap();
    let mut store = workspace.open_store_for_writing().unwrap();
    import(
        &workspace,
        &mut store,
        RecordKind::Managers,
        "manager_id,name\nalice,Alice\nbob,Bob\n",
    );
    import(
        &workspace,
        &mut store,
        RecordKind::Customers,
        "customer_id,name,email,owner,consent_email,birthday\n\
         C1,Big <Buyer>,big@example.com,alice,true,1980-12-10\n\
         C2,Small Buyer,small@example.com,bob,true,1990-12-12\n\
         C3,Other,other@example.org,bob,true,1991-12-14\n",
    );
    import(
        &workspace,
        &mut store,
        RecordKind::Orders,
        "order_id,customer_id,ordered_at,amount\n\
         O1,C1,2026-06-10,9000\nO2,C2,2026-07-11,10\nO3,C3,2026-08-11,20\n",
    );
    let rules = RuleSource::read(&workspace.rules_dir(), Path::new("rules"))
        .unwrap()
        .load()
        .unwrap()
        .rules;
    let reader = workspace.open_store().unwrap();
    assess(
        &reader,
        Some(&mut store),
        &rules,
        AssessOptions {
            at: NOW,
            now: NOW,
            dry_run: false,
            growth: workspace.config().growth_settings(),
        },
    )
    .unwrap();
    let signer = TokenSigner::new(b"0123456789abcdef-secret", None).unwrap();
    store.set_address_keys(signer.address_keys().clone());
    let state =
        AppState::new(store, signer, HttpConfig::default(), now).with_workspace(workspace.clone());
    let peer: SocketAddr = "192.0.2.1:4000".parse().unwrap();
    let state = Arc::new(state);
    let app = crate::router(Arc::clone(&state)).layer(MockConnectInfo(peer));
    Fixture {
        _dir: dir,
        workspace,
        app,
        state,
    }
}

impl Fixture {
    fn store(&self) -> Store {
        self.workspace.open_store_for_writing().unwrap()
    }

    /// Signs `login` in with `role` (a session started as a login starts it).
    fn account(&self, login: &str, role: StaffRole, manager: Option<&str>) -> Account {
        let mut store = self.store();
        let user = store
            .add_staff_user(login, role, manager, "$argon2id$unused", NOW - 60)
            .unwrap();
        let cookie = format!("{:0>64}", user.id);
        let csrf = format!("csrf-{login}-{:0>40}", user.id);
        store
            .start_staff_session(
                &session_hash(&cookie),
                user.id,
                &csrf,
                None,
                "test",
                NOW - 60,
            )
            .unwrap();
        Account { cookie, csrf }
    }

    /// Queues an e-mail (rule `rule`) to `customer` due at `NOW`; returns its id.
    fn queue(&self, customer: &str, rule: &str, address: &str) -> i64 {
        let mut store = self.store();
        let mut session = store.begin_followups(NOW, "v1").unwrap();
        let planned = PlannedFollowUp {
            key: OccurrenceKey::new(rule, customer, NOW),
            scheduled_at: NOW,
            action: FollowUpAction::Email {
                template: "care".into(),
                survey: None,
                coupon: None,
            },
            reason: format!("{rule} fired"),
            skip: None,
        };
        let address = address.to_owned();
        let mut compose = move |_: &tiercare_store::EmailRecipient| {
            Ok(NewEmail {
                message_id: format!("<{rule}.{customer}@test.invalid>"),
                to_address: address.clone(),
                subject: "Hello <there>".into(),
                text: "Hi\nthere".into(),
                html: None,
            })
        };
        let id = session
            .record_with_email(&planned, Some(&mut compose))
            .unwrap()
            .outbox_id
            .unwrap();
        session.finish().unwrap();
        id
    }

    async fn call(&self, request: Request<Body>) -> (StatusCode, String, Option<String>) {
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let location = response
            .headers()
            .get(header::LOCATION)
            .map(|value| value.to_str().unwrap().to_owned());
        let body = axum::body::to_bytes(response.into_body(), 1 << 24)
            .await
            .unwrap();
        (
            status,
            String::from_utf8_lossy(&body).into_owned(),
            location,
        )
    }

    async fn get(&self, account: &Account, uri: &str) -> (StatusCode, String) {
        let (status, body, _) = self
            .call(
                Request::get(uri)
                    .header(header::COOKIE, format!("tiercare_staff={}", account.cookie))
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        (status, body)
    }

    async fn post(&self, account: &Account, uri: &str) -> (StatusCode, Option<String>) {
        let (status, _, location) = self
            .call(
                Request::post(uri)
                    .header(header::COOKIE, format!("tiercare_staff={}", account.cookie))
                    .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .header("sec-fetch-site", "same-origin")
                    .body(Body::from(format!("_csrf={}", account.csrf)))
                    .unwrap(),
            )
            .await;
        (status, location)
    }

    /// `POST uri` with the account's token: the status and the page.
    async fn post_page(&self, account: &Account, uri: &str) -> (StatusCode, String) {
        self.post_form(account, uri, "note=x").await
    }

    /// `POST uri` with the account's token and the form fields `form` (URL-encoded): the
    /// status and the page.
    async fn post_form(&self, account: &Account, uri: &str, form: &str) -> (StatusCode, String) {
        let (status, body, _) = self
            .call(
                Request::post(uri)
                    .header(header::COOKIE, format!("tiercare_staff={}", account.cookie))
                    .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .header("sec-fetch-site", "same-origin")
                    .body(Body::from(format!("_csrf={}&{form}", account.csrf)))
                    .unwrap(),
            )
            .await;
        (status, body)
    }

    fn state_of(&self, id: i64) -> OutboxState {
        self.store().outbox_email(id).unwrap().unwrap().state
    }
}

#[tokio::test]
async fn an_admin_retries_and_cancels_a_manager_sees_and_cancels_their_own_a_viewer_changes_nothing()
 {
    let f = fixture();
    let failed = f.queue("C1", "care", "big@example.com");
    let bobs = f.queue("C2", "care", "small@example.com");
    let other = f.queue("C1", "offer", "big@example.com");
    {
        let mut store = f.store();
        let claim = store.claim_due(NOW, 1).unwrap();
        assert_eq!(claim.emails[0].id, failed);
        store
            .mark_failed(failed, NOW, "550 <big@example.com> no such user", false)
            .unwrap();
    }
    let admin = f.account("root", StaffRole::Admin, None);
    let bob = f.account("bob", StaffRole::Manager, Some("bob"));
    let viewer = f.account("eve", StaffRole::Viewer, None);

    // The failed list: escaped, the failed e-mail alone.
    let (status, page) = f.get(&admin, "/staff/outbox?state=failed").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains(&format!("data-id=\"{failed}\"")), "{page}");
    assert!(!page.contains(&format!("data-id=\"{bobs}\"")));
    assert!(page.contains("Hello &lt;there&gt;") && !page.contains("<there>"));
    assert!(page.contains("550 &lt;big@example.com&gt; no such user"));
    assert!(page.contains("data-state=\"failed\">1<"), "{page}");
    let (status, _) = f.get(&admin, "/staff/outbox?state=bogus").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (_, page) = f.get(&admin, "/staff/outbox?lang=zh-CN").await;
    assert!(
        page.contains("<h1>发件箱</h1>") && page.contains("最近错误"),
        "{page}"
    );

    // A viewer's POSTs are refused by the server, whatever the page shows.
    let (status, _) = f
        .post(&viewer, &format!("/staff/outbox/{other}/cancel"))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = f
        .post(&viewer, &format!("/staff/outbox/{failed}/retry"))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = f.post(&viewer, "/staff/outbox/resume").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(f.state_of(other), OutboxState::Queued);
    assert_eq!(f.state_of(failed), OutboxState::Failed);
    let (_, page) = f.get(&viewer, &format!("/staff/outbox/{failed}")).await;
    assert!(
        !page.contains("<form method=\"post\" action=\"/staff/outbox/"),
        "{page}"
    );

    // Bob sees his customers' e-mails only, may cancel those, never retry.
    let (_, page) = f.get(&bob, "/staff/outbox").await;
    assert!(page.contains(&format!("data-id=\"{bobs}\"")), "{page}");
    assert!(!page.contains(&format!("data-id=\"{other}\"")));
    let (status, _) = f.get(&bob, &format!("/staff/outbox/{other}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = f.post(&bob, &format!("/staff/outbox/{other}/cancel")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(f.state_of(other), OutboxState::Queued);
    let (status, _) = f.post(&bob, &format!("/staff/outbox/{failed}/retry")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, location) = f.post(&bob, &format!("/staff/outbox/{bobs}/cancel")).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(
        location.as_deref(),
        Some(format!("/staff/outbox/{bobs}?done=cancelled").as_str())
    );
    assert_eq!(f.state_of(bobs), OutboxState::Cancelled);

    // The admin retries the failed one and cancels the queued one: the store's own calls.
    let (status, _) = f
        .post(&admin, &format!("/staff/outbox/{failed}/retry"))
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(f.state_of(failed), OutboxState::Queued);
    let (status, _) = f
        .post(&admin, &format!("/staff/outbox/{other}/cancel"))
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(f.state_of(other), OutboxState::Cancelled);
    // Cancelled twice: the store's refusal, as a page.
    let (status, _) = f
        .post(&admin, &format!("/staff/outbox/{other}/cancel"))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, page) = f
        .get(&admin, &format!("/staff/outbox/{failed}?done=retried"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Queued again"), "{page}");
    assert!(
        page.contains("retried"),
        "the history shows the retry: {page}"
    );

    // Every change is in the audit, with who and what, no address.
    let audit = f.store().staff_audit(100).unwrap();
    let mut entries: Vec<(String, String, String)> = audit
        .iter()
        .map(|row| {
            (
                row.entry.login.clone(),
                row.entry.action.clone(),
                row.entry.object.clone(),
            )
        })
        .collect();
    entries.sort();
    assert_eq!(
        entries,
        [
            (
                "bob".into(),
                "outbox.cancel".into(),
                format!("outbox:{bobs}")
            ),
            (
                "root".into(),
                "outbox.cancel".into(),
                format!("outbox:{other}")
            ),
            (
                "root".into(),
                "outbox.retry".into(),
                format!("outbox:{failed}")
            ),
        ]
    );
    assert!(
        audit
            .iter()
            .all(|row| !row.entry.details.as_deref().unwrap_or("").contains('@'))
    );
}

#[tokio::test]
async fn held_emails_show_paused_domains_and_an_admin_resumes_sending() {
    let f = fixture();
    let held = f.queue("C3", "care", "other@example.org");
    let free = f.queue("C2", "care", "small@example.com");
    f.store()
        .pause_domain("example.org", NOW - 10, "421 4.7.0 slow down", 300, 3600)
        .unwrap();
    let admin = f.account("root", StaffRole::Admin, None);
    let viewer = f.account("eve", StaffRole::Viewer, None);
    let (status, page) = f.get(&admin, "/staff/outbox/held").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("example.org paused until"), "{page}");
    assert!(page.contains(&format!("data-id=\"{held}\"")), "{page}");
    assert!(!page.contains(&format!("data-id=\"{free}\"")));
    assert!(page.contains("Sending is not paused"));
    let (status, _) = f.post(&viewer, "/staff/outbox/resume").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, location) = f.post(&admin, "/staff/outbox/resume").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location.as_deref(), Some("/staff/outbox/held?done=resumed"));
    let audit = f.store().staff_audit(10).unwrap();
    assert_eq!(audit[0].entry.action, "outbox.resume");
}

#[tokio::test]
async fn the_plan_page_shows_the_schedulers_plan_and_a_manager_their_part() {
    let f = fixture();
    let admin = f.account("root", StaffRole::Admin, None);
    let alice = f.account("alice", StaffRole::Manager, Some("alice"));
    let rules = RuleSource::read(&f.workspace.rules_dir(), Path::new("rules"))
        .unwrap()
        .load()
        .unwrap()
        .rules;
    let options = PlanOptions {
        from: NOW,
        to: NOW + 14 * 86_400,
        events_since: NOW - EVENT_LOOKBACK,
        timezone: chrono_tz::UTC,
    };
    let store = f.workspace.open_store().unwrap();
    for (account, owner) in [(&admin, None), (&alice, Some("alice"))] {
        let expected = plan_of(&store, &rules, options, owner).unwrap();
        assert!(owner.is_some() || expected.emails > 0, "{expected:?}");
        let (status, page) = f.get(account, "/staff/plan?days=14").await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let totals = format!(
            "data-emails=\"{}\" data-sms=\"{}\" data-tasks=\"{}\" data-other=\"{}\"",
            expected.emails, expected.sms, expected.tasks, expected.other
        );
        assert!(page.contains(&totals), "{totals} in {page}");
        for day in &expected.days {
            assert!(
                page.contains(&format!("data-day=\"{}\"", day.date)),
                "{page}"
            );
        }
        assert_eq!(page.contains("Your customers only."), owner.is_some());
    }
    let (_, page) = f.get(&admin, "/staff/plan").await;
    assert!(page.contains("The next 7 days"), "{page}");
    let (status, page) = f.get(&admin, "/staff/plan?from=yesterday-ish").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{page}");
}

#[tokio::test]
async fn the_rules_page_shows_the_files_the_running_version_and_the_reload_problems() {
    let f = fixture();
    let viewer = f.account("eve", StaffRole::Viewer, None);
    let (status, page) = f.get(&viewer, "/staff/rules").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("No daemon has run"), "{page}");
    assert!(page.contains("rules/tiers.yaml"), "{page}");
    assert!(page.contains("id=\"f0-L1\""), "{page}");

    // A reload that failed, as the daemon records it.
    let problem = "rules/tiers.yaml:3:7: unknown field `thresold`";
    f.store()
        .write_daemon_state(&DaemonState {
            pid: 1,
            started_at: NOW - 3600,
            heartbeat_at: NOW,
            ruleset_version: Some("0123abcd".into()),
            ruleset_loaded_at: Some(NOW - 3600),
            reloads: 1,
            last_reload_error: Some(problem.into()),
            last_reload_error_at: Some(NOW - 60),
            ..DaemonState::default()
        })
        .unwrap();
    let (_, page) = f.get(&viewer, "/staff/rules").await;
    assert!(page.contains("The last reload failed"), "{page}");
    assert!(page.contains(problem), "{page}");
    assert!(
        page.contains("They differ from the rules the daemon runs"),
        "{page}"
    );
    let source = RuleSource::read(&f.workspace.rules_dir(), Path::new("rules")).unwrap();
    let index = source
        .files
        .iter()
        .position(|file| file.path == "rules/tiers.yaml")
        .unwrap();
    assert!(page.contains(&format!("href=\"#f{index}-L3\"")), "{page}");

    // A broken file on disk: its problems, at their places.
    std::fs::write(f.workspace.rules_dir().join("zz-broken.yaml"), "tiers: [\n").unwrap();
    let (_, page) = f.get(&viewer, "/staff/rules").await;
    assert!(page.contains("do not compile"), "{page}");
    assert!(page.contains("rules/zz-broken.yaml:"), "{page}");
}

#[tokio::test]
async fn the_preview_says_what_an_assessment_would_change_and_writes_nothing() {
    let f = fixture();
    let admin = f.account("root", StaffRole::Admin, None);
    // Just assessed: nobody moves.
    let (status, page) = f.get(&admin, "/staff/rules/preview").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("Evaluated all 3 customers."), "{page}");
    assert!(page.contains("Nobody would change tier."), "{page}");
    // A new customer with a big order: a move from (new), named.
    let mut store = f.store();
    import(
        &f.workspace,
        &mut store,
        RecordKind::Customers,
        "customer_id,name\nC9,New <One>\n",
    );
    let before = store.last_assessment().unwrap();
    drop(store);
    let (_, page) = f.get(&admin, "/staff/rules/preview").await;
    assert!(page.contains("Evaluated all 4 customers."), "{page}");
    assert!(page.contains("<td>(new)</td>"), "{page}");
    assert!(page.contains(">C9</a>"), "{page}");
    assert_eq!(
        f.store().last_assessment().unwrap(),
        before,
        "nothing recorded"
    );
}

#[tokio::test]
async fn the_customers_list_compiles_the_rules_once_per_version() {
    let f = fixture();
    let admin = f.account("root", StaffRole::Admin, None);
    for _ in 0..3 {
        let (status, page) = f.get(&admin, "/staff/customers").await;
        assert_eq!(status, StatusCode::OK);
        // The tier filter lists the rules' tiers.
        assert!(page.contains("<option value=\"A\""), "{page}");
    }
    assert_eq!(f.state.rules().compiles(), 1);
    // The rules change: the next request compiles the new version, once.
    let tiers = f.workspace.rules_dir().join("tiers.yaml");
    let text = std::fs::read_to_string(&tiers).unwrap();
    std::fs::write(&tiers, format!("{text}\n# edited\n")).unwrap();
    for _ in 0..2 {
        let (status, _) = f.get(&admin, "/staff/customers?q=Buyer").await;
        assert_eq!(status, StatusCode::OK);
    }
    assert_eq!(f.state.rules().compiles(), 2);
}

/// The ids of the e-mail rows of a page, in order.
fn row_ids(page: &str) -> Vec<i64> {
    page.split("<tr data-id=\"")
        .skip(1)
        .map(|rest| rest.split('"').next().unwrap().parse().unwrap())
        .collect()
}

#[tokio::test]
async fn held_emails_are_paged_newest_first_without_gaps_or_repeats() {
    let f = fixture();
    let mut held: Vec<i64> = (0..60)
        .map(|i| f.queue("C3", &format!("care{i}"), "other@example.org"))
        .collect();
    f.store()
        .pause_domain("example.org", NOW - 10, "421 4.7.0 slow down", 300, 3600)
        .unwrap();
    held.reverse();
    let admin = f.account("root", StaffRole::Admin, None);
    let (status, first) = f.get(&admin, "/staff/outbox/held").await;
    assert_eq!(status, StatusCode::OK);
    let first_ids = row_ids(&first);
    assert_eq!(first_ids, held[..super::outbox::PAGE]);
    let next = format!("/staff/outbox/held?before={}", first_ids.last().unwrap());
    assert!(first.contains(&next.replace('&', "&amp;")), "{first}");
    let (status, second) = f.get(&admin, &next).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(row_ids(&second), held[super::outbox::PAGE..]);
    assert!(
        !second.contains("/staff/outbox/held?before="),
        "the last page links no further"
    );
}

#[tokio::test]
async fn the_stores_refusals_are_in_chinese_on_chinese_pages() {
    let f = fixture();
    let email = f.queue("C1", "care", "big@example.com");
    let admin = f.account("root", StaffRole::Admin, None);
    let (status, _) = f
        .post(&admin, &format!("/staff/outbox/{email}/cancel"))
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    // Cancelled twice: the store refuses; in English its own words, in Chinese the same facts.
    let (status, page) = f
        .post_page(&admin, &format!("/staff/outbox/{email}/cancel?lang=en"))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(
        page.contains("is cancelled: it cannot be cancelled"),
        "{page}"
    );
    let (status, page) = f
        .post_page(&admin, &format!("/staff/outbox/{email}/cancel?lang=zh-CN"))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(
        page.contains(&format!("邮件 #{email} 的状态是“已取消”，不能取消。")),
        "{page}"
    );
    assert!(!page.contains("it cannot be"), "{page}");
    // A task done twice.
    let task = f
        .store()
        .add_task(
            &tiercare_store::NewTask {
                customer_id: "C1".into(),
                assignee: "alice".into(),
                title: "Call".into(),
                due_at: NOW + 3600,
                note: None,
            },
            NOW,
        )
        .unwrap();
    let (status, _) = f
        .post_page(&admin, &format!("/staff/tasks/{}/done", task.id))
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, page) = f
        .post_page(&admin, &format!("/staff/tasks/{}/done?lang=zh-CN", task.id))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(
        page.contains(&format!("任务 #{} 已由 root 于", task.id))
            && page.contains("完成，无需更改"),
        "{page}"
    );
    let (status, page) = f
        .post_page(&admin, "/staff/tasks/999/done?lang=zh-CN")
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(page.contains("没有编号为 #999 的任务。"), "{page}");
}

#[tokio::test]
async fn the_customer_pages_pin_and_contact_refusals_are_in_chinese_on_chinese_pages() {
    let f = fixture();
    let admin = f.account("root", StaffRole::Admin, None);
    // A pin without a reason: the store refuses; the page says so in the page's language.
    let (status, page) = f
        .post_form(&admin, "/staff/customers/C1/pin?lang=en", "tier=A&reason=")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{page}");
    assert!(page.contains("a pin needs a reason"), "{page}");
    let (status, page) = f
        .post_form(
            &admin,
            "/staff/customers/C1/pin?lang=zh-CN",
            "tier=A&reason=",
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{page}");
    assert!(page.contains("锁定需要理由"), "{page}");
    assert!(!page.contains("a pin needs a reason"), "{page}");
    // A pin ending before now, shown on the workspace's clock.
    let (status, page) = f
        .post_form(
            &admin,
            "/staff/customers/C1/pin?lang=zh-CN",
            "tier=A&reason=key&until=2026-01-01",
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{page}");
    assert!(
        page.contains("结束时间 2026-01-01 00:00 不晚于现在（2026-12-07 09:00）"),
        "{page}"
    );
    assert!(!page.contains("which is not after now"), "{page}");
    // A call logged with a forgotten customer.
    f.store().forget_customer("C3", "root", NOW).unwrap();
    let (status, page) = f
        .post_form(
            &admin,
            "/staff/customers/C3/contact?lang=zh-CN",
            "kind=call&note=hello",
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{page}");
    assert!(page.contains("该客户已被遗忘"), "{page}");
    assert!(!page.contains("data-rights request"), "{page}");
}

#[tokio::test]
async fn the_dashboard_counts_sms_apart_from_e_mails() {
    let f = fixture();
    let admin = f.account("root", StaffRole::Admin, None);
    f.queue("C1", "care", "big@example.com");
    {
        let mut store = f.store();
        let mut session = store.begin_followups(NOW, "v1").unwrap();
        let planned = PlannedFollowUp {
            key: OccurrenceKey::new("text", "C2", NOW),
            scheduled_at: NOW,
            action: FollowUpAction::Sms {
                template: "hello".into(),
                survey: None,
            },
            reason: "text fired".into(),
            skip: None,
        };
        let mut compose_sms = |_: &tiercare_store::EmailRecipient| {
            Ok(NewEmail {
                message_id: "<text.C2@test.invalid>".into(),
                to_address: "+8613800000000".into(),
                subject: String::new(),
                text: "Hello".into(),
                html: None,
            })
        };
        let recorded = session
            .record_with_messages(&planned, None, Some(&mut compose_sms))
            .unwrap();
        assert!(recorded.outbox_id.is_some());
        session.finish().unwrap();
    }
    let (status, page) = f.get(&admin, "/staff/").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let emails = page.split("<h2>E-mails</h2>").nth(1).unwrap();
    let (emails, sms) = emails.split_once("<h2>SMS</h2>").expect("an SMS section");
    assert!(
        emails.contains("<span class=\"value\">1</span>queued"),
        "one e-mail queued, not two: {emails}"
    );
    assert!(
        sms.contains("<span class=\"value\">1</span>queued"),
        "{sms}"
    );
}
