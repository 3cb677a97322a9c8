//! The staff customers pages through the router, over a real workspace and SQLite file: who
//! sees which customers, who may pin, log contacts and forget, and what the database and the
//! audit then hold.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::connect_info::MockConnectInfo;
use axum::http::{Request, StatusCode, header};
use tempfile::TempDir;
use tiercare_scheduler::http_config::HttpConfig;
use tiercare_scheduler::mail::TokenSigner;
use tiercare_scheduler::staff::session_hash;
use tiercare_scheduler::workspace::Workspace;
use tiercare_store::{
    CustomerRecord, ImportAudit, ImportKind, ImportOptions, ManagerRecord, StaffRole, Store,
};
use tiercare_web::{AppState, router};
use tower::ServiceExt;

/// The server's clock.
const NOW: i64 = 1_800_000_000;

struct Staffed {
    _dir: TempDir,
    workspace: Workspace,
    app: Router,
}

/// A workspace with customers C01..C07 (C03 and C06 owned by `m2`, the rest by `m1`; C01's
/// name tries to inject HTML) and signed-in accounts `admin`, `m1` (manager m1), `m2`
/// (manager m2) and `viewer`, whose session cookie is `cookie-LOGIN` and CSRF token
/// `csrf-LOGIN`.
fn staffed() -> Staffed {
    let dir = tempfile::tempdir().unwrap();
    let (workspace, _) = Workspace::init(dir.path(), chrono_tz::UTC).unwrap();
    let mut store = workspace.open_store_for_writing().unwrap();
    let mut session = store
        .import(ImportKind::Managers, ImportOptions::default())
        .unwrap();
    for (line, id) in [(2, "m1"), (3, "m2")] {
        let manager = ManagerRecord {
            external_id: id.to_owned(),
            name: format!("Manager {id}"),
            ..ManagerRecord::default()
        };
        session.manager(line, &manager).unwrap();
    }
    session.commit(&ImportAudit::default()).unwrap();
    let mut session = store
        .import(ImportKind::Customers, ImportOptions::default())
        .unwrap();
    for i in 1..=7_u64 {
        let record = CustomerRecord {
            external_id: format!("C{i:02}"),
            name: Some(if i == 1 {
                "<script>alert(1)</script>Ada".to_owned()
            } else {
                format!("Customer {i}")
            }),
            email: Some(format!("c{i}@example.com")),
            owner: Some(if i % 3 == 0 { "m2" } else { "m1" }.to_owned()),
            ..CustomerRecord::default()
        };
        session.customer(i + 1, &record).unwrap();
    }
    session.commit(&ImportAudit::default()).unwrap();
    for (login, role, manager) in [
        ("admin", StaffRole::Admin, None),
        ("m1", StaffRole::Manager, Some("m1")),
        ("m2", StaffRole::Manager, Some("m2")),
        ("viewer", StaffRole::Viewer, None),
    ] {
        let user = store
            .add_staff_user(login, role, manager, "$argon2id$unused", NOW - 60)
            .unwrap();
        store
            .start_staff_session(
                &session_hash(&format!("cookie-{login}")),
                user.id,
                &format!("csrf-{login}"),
                None,
                "127.0.0.1",
                NOW - 60,
            )
            .unwrap();
    }
    let signer = TokenSigner::new(b"0123456789abcdef-secret", None).unwrap();
    store.set_address_keys(signer.address_keys().clone());
    let state = AppState::new(store, signer, HttpConfig::default(), || NOW)
        .with_workspace(workspace.clone());
    let peer: SocketAddr = "127.0.0.1:4000".parse().unwrap();
    Staffed {
        _dir: dir,
        workspace,
        app: router(Arc::new(state)).layer(MockConnectInfo(peer)),
    }
}

impl Staffed {
    async fn call(&self, request: Request<Body>) -> (StatusCode, String) {
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let location = response
            .headers()
            .get(header::LOCATION)
            .map(|value| value.to_str().unwrap().to_owned());
        let body = axum::body::to_bytes(response.into_body(), 1 << 24)
            .await
            .unwrap();
        let body = String::from_utf8_lossy(&body).into_owned();
        (status, location.unwrap_or(body))
    }

    async fn get(&self, login: &str, uri: &str) -> (StatusCode, String) {
        self.call(
            Request::get(uri)
                .header(header::COOKIE, format!("tiercare_staff=cookie-{login}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
    }

    async fn post(&self, login: &str, uri: &str, form: &str) -> (StatusCode, String) {
        self.call(
            Request::post(uri)
                .header(header::COOKIE, format!("tiercare_staff=cookie-{login}"))
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(format!("_csrf=csrf-{login}&{form}")))
                .unwrap(),
        )
        .await
    }

    fn store(&self) -> Store {
        self.workspace.open_store().unwrap()
    }
}

fn listed(page: &str) -> Vec<String> {
    (1..=7)
        .map(|i| format!("C{i:02}"))
        .filter(|id| page.contains(&format!("/staff/customers/{id}\"")))
        .collect()
}

#[tokio::test]
async fn a_manager_sees_only_their_own_customers_in_the_list_and_the_csv() {
    let staffed = staffed();
    let (status, page) = staffed.get("m1", "/staff/customers").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(listed(&page), ["C01", "C02", "C04", "C05", "C07"]);
    assert!(!page.contains("<script>alert"), "{page}");
    // Asking for another owner changes nothing: the scope is the server's.
    let (_, page) = staffed.get("m1", "/staff/customers?owner=m2").await;
    assert_eq!(listed(&page), ["C01", "C02", "C04", "C05", "C07"]);
    let (status, csv) = staffed.get("m1", "/staff/customers.csv?owner=m2").await;
    assert_eq!(status, StatusCode::OK);
    let ids: Vec<&str> = csv
        .split("\r\n")
        .skip(1)
        .filter(|line| !line.is_empty())
        .map(|line| line.split(',').next().unwrap())
        .collect();
    assert_eq!(ids, ["C01", "C02", "C04", "C05", "C07"]);
    // An admin sees everyone, and may filter by owner and search.
    let (_, page) = staffed.get("admin", "/staff/customers").await;
    assert_eq!(listed(&page).len(), 7);
    let (_, page) = staffed.get("admin", "/staff/customers?owner=m2").await;
    assert_eq!(listed(&page), ["C03", "C06"]);
    let (_, page) = staffed
        .get("admin", "/staff/customers?q=C6%40EXAMPLE")
        .await;
    assert_eq!(listed(&page), ["C06"]);
}

#[tokio::test]
async fn another_managers_customer_is_not_found_for_a_manager() {
    let staffed = staffed();
    let (status, page) = staffed.get("m1", "/staff/customers/C02").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("Customer 2"));
    let (other, _) = staffed.get("m1", "/staff/customers/C03").await;
    let (missing, _) = staffed.get("m1", "/staff/customers/C99").await;
    assert_eq!(other, StatusCode::NOT_FOUND);
    assert_eq!(missing, StatusCode::NOT_FOUND);
    // Nor can they change it.
    let (status, _) = staffed
        .post("m1", "/staff/customers/C03/pin", "tier=A&reason=mine")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(staffed.store().pins_of("C03").unwrap().is_empty());
}

#[tokio::test]
async fn a_manager_pins_their_customer_with_a_reason_and_the_audit_records_it() {
    let staffed = staffed();
    let tier = tiercare_web::staff::customer::rule_tiers(&staffed.workspace).unwrap()[0].clone();
    let (status, location) = staffed
        .post(
            "m1",
            "/staff/customers/C02/pin",
            &format!("tier={tier}&reason=Key+account+renewal&until=2027-06-30"),
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{location}");
    assert_eq!(location, "/staff/customers/C02?done=pin");
    let store = staffed.store();
    let pins = store.pins_of("C02").unwrap();
    assert_eq!(pins.len(), 1);
    assert_eq!(pins[0].tier, tier);
    assert_eq!(pins[0].reason, "Key account renewal");
    assert_eq!(pins[0].pinned_by, "m1");
    assert_eq!(pins[0].until, Some(1_814_313_600));
    let audit = store.staff_audit(10).unwrap();
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0].entry.login, "m1");
    assert_eq!(audit[0].entry.action, "customer.pin");
    assert_eq!(audit[0].entry.object, "customer:C02");
    let (_, page) = staffed.get("m1", "/staff/customers/C02?done=pin").await;
    assert!(page.contains("Key account renewal"), "{page}");
    assert!(page.contains("takes effect at the next assessment"));
    // A pin without a reason, or to a tier the rules do not define, is refused with the page.
    let (status, page) = staffed
        .post(
            "m1",
            "/staff/customers/C02/pin",
            &format!("tier={tier}&reason=+"),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("a pin needs a reason"), "{page}");
    let (status, page) = staffed
        .post("m1", "/staff/customers/C02/pin", "tier=nope&reason=x")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("no such tier"), "{page}");
    let (status, location) = staffed.post("m1", "/staff/customers/C02/unpin", "").await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{location}");
    assert!(!staffed.store().pins_of("C02").unwrap()[0].is_active(NOW));
}

#[tokio::test]
async fn a_viewers_changes_are_refused_by_the_server() {
    let staffed = staffed();
    let (status, page) = staffed.get("viewer", "/staff/customers/C02").await;
    assert_eq!(status, StatusCode::OK);
    assert!(!page.contains("/staff/customers/C02/pin"), "{page}");
    for (path, form) in [
        ("pin", "tier=A&reason=x"),
        ("unpin", ""),
        ("contact", "kind=call&note=x"),
        ("forget", "confirm=C02"),
    ] {
        let (status, _) = staffed
            .post("viewer", &format!("/staff/customers/C02/{path}"), form)
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
    }
    let store = staffed.store();
    assert!(store.pins_of("C02").unwrap().is_empty());
    let export = store.export_customer("C02").unwrap();
    assert!(export["interactions"].as_array().unwrap().is_empty());
    assert_eq!(export["customer"]["name"], "Customer 2");
    assert!(store.staff_audit(10).unwrap().is_empty());
}

#[tokio::test]
async fn a_logged_call_is_a_contact_of_the_customer() {
    let staffed = staffed();
    let (status, location) = staffed
        .post(
            "m1",
            "/staff/customers/C04/contact",
            "kind=call&date=2026-12-01&note=Asked+about+%3Cb%3Eprices%3C%2Fb%3E",
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{location}");
    let export = staffed.store().export_customer("C04").unwrap();
    let contacts = export["interactions"].as_array().unwrap();
    assert_eq!(contacts.len(), 1);
    assert_eq!(contacts[0]["kind"], "call");
    assert_eq!(contacts[0]["by_manager"], "m1");
    assert_eq!(contacts[0]["occurred_at"], 1_796_083_200);
    let (_, page) = staffed.get("m1", "/staff/customers/C04").await;
    assert!(
        page.contains("Asked about &lt;b&gt;prices&lt;/b&gt;"),
        "{page}"
    );
    let (status, page) = staffed
        .post(
            "m1",
            "/staff/customers/C04/contact",
            "kind=call&date=1st+of+May",
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("YYYY-MM-DD"));
}

#[tokio::test]
async fn only_an_admin_forgets_and_only_after_typing_the_id() {
    let staffed = staffed();
    let (status, _) = staffed.get("m1", "/staff/customers/C02/forget").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = staffed
        .post("m1", "/staff/customers/C02/forget", "confirm=C02")
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, page) = staffed.get("admin", "/staff/customers/C02/forget").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("name=\"confirm\""), "{page}");
    let (status, _) = staffed
        .post("admin", "/staff/customers/C02/forget", "confirm=C2")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        staffed.store().export_customer("C02").unwrap()["customer"]["name"],
        "Customer 2"
    );
    let (status, location) = staffed
        .post("admin", "/staff/customers/C02/forget", "confirm=C02")
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{location}");
    let store = staffed.store();
    let export = store.export_customer("C02").unwrap();
    assert!(export["customer"]["name"].is_null(), "{export}");
    assert_eq!(export["privacy_requests"].as_array().unwrap().len(), 1);
    let audit = store.staff_audit(10).unwrap();
    assert_eq!(audit[0].entry.action, "customer.forget");
    assert_eq!(audit[0].entry.login, "admin");
}

#[tokio::test]
async fn pages_follow_one_another_without_gaps_and_speak_chinese() {
    let staffed = staffed();
    // 7 customers, 50 a page: one page, no next link.
    let (_, page) = staffed.get("admin", "/staff/customers").await;
    assert!(!page.contains("rel=\"next\""));
    let (_, page) = staffed.get("admin", "/staff/customers?after=C05").await;
    assert_eq!(listed(&page), ["C06", "C07"]);
    assert!(page.contains("First page"));
    let (_, page) = staffed
        .get("admin", "/staff/customers?sort=-name&offset=5")
        .await;
    // By name descending: Customer 7..2, then the <script> one: the 6th and 7th.
    assert_eq!(listed(&page), ["C01", "C02"]);
    let (_, page) = staffed.get("admin", "/staff/customers?lang=zh-CN").await;
    assert!(page.contains("导出 CSV"), "{page}");
    let (_, page) = staffed
        .get("admin", "/staff/customers/C02?lang=zh-CN")
        .await;
    assert!(page.contains("等级及原因"), "{page}");
}
