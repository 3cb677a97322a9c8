//! The staff customers list of a 1,000,000-customer workspace, served through the real router
//! (session check, scheduler call, SQLite query, HTML): the first page, a page deep in the
//! list, a manager's own customers, searches (through the trigram index, and one of two
//! characters, which has no trigram), and one customer's page. Issue #17 asks for under
//! 200 ms a page.
//!
//! Run with `cargo bench -p tiercare-bench --bench staff` (building the workspace takes a
//! minute: 1,000,000 customers of 1,000 managers, a quarter of them with orders drawn from the
//! BG/NBD process). Set
//! `TIERCARE_BENCH_CUSTOMERS` for another size.

use std::hint::black_box;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::connect_info::MockConnectInfo;
use axum::http::{Request, StatusCode, header};
use criterion::{Criterion, criterion_group, criterion_main};
use tiercare_scheduler::assess::{AssessOptions, RuleSource, assess};
use tiercare_scheduler::http_config::HttpConfig;
use tiercare_scheduler::mail::TokenSigner;
use tiercare_scheduler::staff::session_hash;
use tiercare_scheduler::workspace::Workspace;
use tiercare_store::{
    CustomerRecord, ImportAudit, ImportKind, ImportOptions, ManagerRecord, OrderRecord, StaffRole,
};
use tiercare_web::{AppState, router};
use tower::ServiceExt;

const MANAGERS: u64 = 1_000;
const NOW: i64 = 1_800_000_000;

/// A workspace of `customers` customers in `dir`, and the router serving it with the signed-in
/// accounts `admin` and `m0500` (cookies `cookie-admin`, `cookie-m0500`).
fn staffed(dir: &std::path::Path, customers: u64) -> Router {
    let started = Instant::now();
    let (workspace, _) = Workspace::init(dir, chrono_tz::UTC).expect("workspace");
    let mut store = workspace.open_store_for_writing().expect("store");
    let mut session = store
        .import_at(ImportKind::Managers, ImportOptions::default(), NOW)
        .expect("import");
    for m in 0..MANAGERS {
        let manager = ManagerRecord {
            external_id: format!("m{m:04}"),
            name: format!("Manager {m}"),
            ..ManagerRecord::default()
        };
        session.manager(m + 2, &manager).expect("manager");
    }
    session.commit(&ImportAudit::default()).expect("commit");
    let mut session = store
        .import_at(ImportKind::Customers, ImportOptions::default(), NOW)
        .expect("import");
    for i in 0..customers {
        let customer = CustomerRecord {
            external_id: format!("C{i:07}"),
            name: Some(format!("Customer {i}")),
            email: Some(format!("c{i}@example.com")),
            owner: Some(format!("m{:04}", i % MANAGERS)),
            ..CustomerRecord::default()
        };
        session.customer(i + 2, &customer).expect("customer");
    }
    session.commit(&ImportAudit::default()).expect("commit");
    let mut session = store
        .import_at(ImportKind::Orders, ImportOptions::default(), NOW)
        .expect("import");
    // A quarter of the customers bought: a first order, then repeats drawn from the BG/NBD
    // process (so that the assessment's growth fit converges and the customer page reads the
    // stored fit, as in a workspace in use), with varied amounts for Gamma-Gamma.
    let mut draw = Draw::new();
    let mut line = 2;
    for i in (0..customers).step_by(4) {
        let history = draw.history();
        for (n, (days_ago, amount)) in history.into_iter().enumerate() {
            let order = OrderRecord {
                external_id: format!("O{i:07}-{n}"),
                customer_external_id: format!("C{i:07}"),
                ordered_at: NOW - 86_400 * days_ago,
                amount,
                ..OrderRecord::default()
            };
            session.order(line, &order).expect("order");
            line += 1;
        }
    }
    session.commit(&ImportAudit::default()).expect("commit");
    // One assessment, as a workspace in use has had: it stores the growth fit the customer
    // page's explanation reuses.
    let rules = RuleSource::read(&workspace.rules_dir(), Path::new("rules"))
        .and_then(|source| source.load())
        .expect("rules")
        .rules;
    let reader = workspace.open_store().expect("reader");
    let options = AssessOptions {
        at: NOW,
        now: NOW,
        dry_run: false,
        growth: workspace.config().growth_settings(),
    };
    let report = assess(&reader, Some(&mut store), &rules, options).expect("assess");
    eprintln!("staff bench: assessed, growth {:?}", report.growth);
    if !matches!(
        report.growth,
        Some(tiercare_scheduler::growth::GrowthOutcome::Fitted(_))
    ) {
        eprintln!(
            "staff bench: WARNING: the growth fit did not converge; the customer page does not time the stored-fit path"
        );
    }
    for (login, role, manager) in [
        ("admin", StaffRole::Admin, None),
        ("m0500", StaffRole::Manager, Some("m0500")),
    ] {
        let user = store
            .add_staff_user(login, role, manager, "$argon2id$unused", NOW - 60)
            .expect("user");
        store
            .start_staff_session(
                &session_hash(&format!("cookie-{login}")),
                user.id,
                "csrf",
                None,
                "127.0.0.1",
                NOW - 60,
            )
            .expect("session");
    }
    eprintln!(
        "staff bench: {customers} customers built in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let signer = TokenSigner::new(b"0123456789abcdef-bench", None).expect("signer");
    // The per-client rate limit is not what is measured.
    let config = HttpConfig {
        requests_per_minute: 1_000_000,
        ..HttpConfig::default()
    };
    let state = AppState::new(store, signer, config, || NOW).with_workspace(workspace);
    let peer: SocketAddr = "127.0.0.1:4000".parse().expect("address");
    router(Arc::new(state)).layer(MockConnectInfo(peer))
}

/// Purchase histories drawn from the BG/NBD process (r = 0.25, α = 30 days, a = 0.8, b = 2.5,
/// as `crates/growth/benches/fit.rs`) with a small deterministic generator, first purchases
/// spread over 700 days.
struct Draw(u64);

impl Draw {
    fn new() -> Draw {
        Draw(0x9E37_79B9_7F4A_7C15)
    }

    fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1_u64 << 53) as f64
    }

    /// Marsaglia-Tsang, with the boost for a shape under 1.
    fn gamma(&mut self, shape: f64, scale: f64) -> f64 {
        let (boost, shape) = if shape < 1.0 {
            (self.uniform().powf(1.0 / shape), shape + 1.0)
        } else {
            (1.0, shape)
        };
        let d = shape - 1.0 / 3.0;
        let c = 1.0 / (9.0 * d).sqrt();
        loop {
            let z = (-2.0 * self.uniform().max(1e-300).ln()).sqrt()
                * (2.0 * std::f64::consts::PI * self.uniform()).cos();
            let v = (1.0 + c * z).powi(3);
            if v > 0.0 && self.uniform().max(1e-300).ln() < 0.5 * z * z + d - d * v - d * v.ln() {
                return boost * d * v * scale;
            }
        }
    }

    /// One customer's orders: (days before `NOW`, amount), the first purchase first.
    fn history(&mut self) -> Vec<(i64, f64)> {
        let age = 1.0 + (self.uniform() * 700.0).floor();
        let rate = self.gamma(0.25, 1.0 / 30.0);
        let (ga, gb) = (self.gamma(0.8, 1.0), self.gamma(2.5, 1.0));
        let dropout = ga / (ga + gb);
        let mut orders = vec![(
            age as i64,
            10.0 + (self.uniform() * 9_000.0).round() / 100.0,
        )];
        let mut t = 0.0;
        while self.uniform() >= dropout {
            t += -self.uniform().max(1e-300).ln() / rate;
            if t > age {
                break;
            }
            let amount = 10.0 + (self.uniform() * 4_000.0).round() / 100.0;
            orders.push(((age - t).floor() as i64, amount));
        }
        orders
    }
}

/// One customer's features at `NOW` both ways, the median of 5 each: the full pass (every
/// customer's features, as `preview` and `explain` computed them before), and
/// `Store::customer_features` (one scan of the orders, counts instead of sorts). They must agree.
fn features_both_ways(dir: &Path, id: &str) {
    let workspace = Workspace::open(dir).expect("workspace");
    let window = RuleSource::read(&workspace.rules_dir(), Path::new("rules"))
        .and_then(|source| source.load())
        .expect("rules")
        .rules
        .window();
    let store = workspace.open_store().expect("store");
    let median = |f: &dyn Fn() -> tiercare_store::CustomerFeatures| {
        let mut times = Vec::new();
        let mut last = None;
        for _ in 0..5 {
            let started = Instant::now();
            last = Some(f());
            times.push(started.elapsed().as_secs_f64() * 1_000.0);
        }
        times.sort_by(f64::total_cmp);
        (times[2], last.expect("five runs"))
    };
    let (full_ms, full) = median(&|| {
        let table = store.feature_table(NOW, window).expect("table");
        store
            .features_from(&table, id)
            .expect("read")
            .expect("customer")
    });
    let (one_ms, one) = median(&|| {
        store
            .customer_features(NOW, window, id)
            .expect("read")
            .expect("customer")
    });
    assert_eq!(
        full, one,
        "the one-customer path gives the full pass's features"
    );
    eprintln!(
        "staff bench: {id}'s features: full pass median {full_ms:.2} ms, one-customer path median {one_ms:.2} ms (of 5)"
    );
}

fn get(app: &Router, runtime: &tokio::runtime::Runtime, login: &str, uri: &str) -> usize {
    let request = Request::get(uri)
        .header(header::COOKIE, format!("tiercare_staff=cookie-{login}"))
        .body(Body::empty())
        .expect("request");
    runtime.block_on(async {
        let response = app.clone().oneshot(request).await.expect("answer");
        assert_eq!(response.status(), StatusCode::OK, "{uri}");
        axum::body::to_bytes(response.into_body(), 1 << 24)
            .await
            .expect("body")
            .len()
    })
}

fn staff_customers(c: &mut Criterion) {
    let customers: u64 = std::env::var("TIERCARE_BENCH_CUSTOMERS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let app = staffed(dir.path(), customers);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let deep = format!("/staff/customers?after=C{:07}", customers * 9 / 10);
    let manager_deep = format!("/staff/customers?after=C{:07}", customers - 2 * MANAGERS);
    let scenarios = [
        ("first_page", "admin", "/staff/customers"),
        ("deep_page", "admin", deep.as_str()),
        ("manager_first_page", "m0500", "/staff/customers"),
        ("manager_last_page", "m0500", manager_deep.as_str()),
        ("owner_filter", "admin", "/staff/customers?owner=Manager+7"),
        ("search_rare", "admin", "/staff/customers?q=c999999%40"),
        ("search_common", "admin", "/staff/customers?q=example.com"),
        ("search_name", "admin", "/staff/customers?q=Customer+54321"),
        (
            "search_rare_manager",
            "m0500",
            "/staff/customers?q=c999500%40",
        ),
        ("search_two_characters", "admin", "/staff/customers?q=c9"),
        ("customer_page", "admin", "/staff/customers/C0500000"),
    ];
    // The median of 11 requests each, printed also when criterion only tests the bench
    // (`cargo test --bench staff`, a debug build: an upper bound).
    for (name, login, uri) in scenarios {
        let mut times: Vec<f64> = (0..11)
            .map(|_| {
                let started = Instant::now();
                black_box(get(&app, &runtime, login, uri));
                started.elapsed().as_secs_f64() * 1_000.0
            })
            .collect();
        times.sort_by(f64::total_cmp);
        eprintln!("staff bench: {name}: median {:.2} ms (of 11)", times[5]);
    }
    features_both_ways(dir.path(), "C0500000");
    let mut group = c.benchmark_group("staff_customers");
    group.sample_size(20);
    for (name, login, uri) in scenarios {
        group.bench_function(name, |b| {
            b.iter(|| black_box(get(&app, &runtime, login, uri)));
        });
    }
    group.finish();
}

criterion_group!(benches, staff_customers);
criterion_main!(benches);
